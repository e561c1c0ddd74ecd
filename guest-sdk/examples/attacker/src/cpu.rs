//! The PV CPU: trap handlers and callbacks at the hypervisor's addresses, descriptor
//! tables granting ring 0 or holding call gates into the hypervisor, a kernel stack in
//! the hypervisor's range, non-canonical segment bases, `iret` frames with a ring-0 code
//! selector.
//!
//! Xen 4.17's answers (`xen/arch/x86/pv/`): `set_trap_table` and `callback_op` refuse
//! only non-canonical addresses (`-EINVAL`) and accept one in the hypervisor's range: the
//! guest then faults when it jumps there in ring 3 (we check that it does); an unknown
//! callback type is `-ENOSYS`. `check_descriptor` raises a code/data segment's DPL to 3
//! (accepted), refuses a call gate whose target is not a guest selector; `set_gdt`
//! refuses a frame that is mapped writable or not ours (`-EINVAL`), as does
//! `update_descriptor` (also for a misaligned address). `stack_switch` takes any value
//! (the stack is only used on a switch from user mode). `set_segment_base` refuses a
//! non-canonical base (`-EINVAL`). `iret` forces RPL 3 on the code selector; a selector
//! the CPU refuses becomes a fault or Xen's failsafe callback for the guest.

use crate::guarded;
use crate::support::*;
use alloc::format;
use alloc::string::String;
use guest_sdk::hypercall;
use guest_sdk::traps;
use xen_abi::callback::*;
use xen_abi::errno::*;
use xen_abi::hypercall as nr;
use xen_abi::mm::{FLAT_KERNEL_CS, FLAT_KERNEL_SS};
use xen_abi::xen::TrapInfo;

/// `set_trap_table` with a non-canonical `#BP` handler (`-EINVAL`) and with one at the
/// hypervisor's text (Xen accepts it; `int3` must then fault at that address in ring 3,
/// never run it). The SDK's table is installed again afterwards.
pub fn trap_table() -> Outcome {
    let entry = |address| {
        [
            TrapInfo {
                vector: traps::BREAKPOINT,
                flags: 3 | xen_abi::xen::TI_IF,
                cs: FLAT_KERNEL_CS,
                _pad: 0,
                address,
            },
            TrapInfo::default(),
        ]
    };
    let nc = hypercall::set_trap_table(&entry(NONCANON)).map(|_| 0);
    let _ = traps::init();
    if let Some(m) = mismatch("non-canonical #BP handler", nc, Err(EINVAL)) {
        return Err(m);
    }
    let xen = hypercall::set_trap_table(&entry(XEN_TEXT)).map(|_| 0);
    if let Some(m) = mismatch("#BP handler at Xen text", xen, Ok(0)) {
        let _ = traps::init();
        return Err(format!("non-canonical: -22 EINVAL as Xen; {m}"));
    }
    reset_seen();
    // SAFETY: `int3` goes to the handler just installed; running hypervisor code in
    // ring 3 faults and the fault resumes after the guarded block.
    unsafe { guarded!("int3") };
    let s = seen();
    let _ = traps::init();
    if s.count == 0 {
        return Err(
            "int3 with the #BP handler at Xen text: nothing delivered, yet we went on".into(),
        );
    }
    if s.vector != 14 || s.rip != XEN_TEXT {
        return Err(format!(
            "int3 with the #BP handler at Xen text: vector {} at rip {:#x} (expected #PF at {XEN_TEXT:#x})",
            s.vector, s.rip
        ));
    }
    Ok(format!(
        "non-canonical: errno -22 EINVAL; at Xen text: accepted as on Xen 4.17, and int3 faulted there in ring 3 (#PF error {:#x})",
        s.error_code
    ))
}

fn register(type_: u16, address: u64) -> Result<u64, Errno> {
    hypercall::callback_register(&CallbackRegister {
        type_,
        flags: CALLBACKF_MASK_EVENTS,
        _pad: 0,
        address,
    })
    .map(|_| 0)
}

/// `callback_op(register)` of a non-canonical event callback (`-EINVAL`), of callback
/// type 99 (`-ENOSYS`), and of an event callback at the hypervisor's text (Xen accepts;
/// the upcall must then fault there in ring 3). The SDK's callbacks come back after.
pub fn callbacks() -> Outcome {
    let nc = register(CALLBACKTYPE_EVENT, NONCANON);
    let unknown = register(99, 0x1000);
    restore_callbacks();
    let first = all_agree(&[
        ("non-canonical event callback".into(), nc, Err(EINVAL)),
        ("callback type 99".into(), unknown, Err(ENOSYS)),
    ]);
    let xen = register(CALLBACKTYPE_EVENT, XEN_TEXT);
    if let Some(m) = mismatch("event callback at Xen text", xen, Ok(0)) {
        restore_callbacks();
        return Err(match first {
            Ok(_) => m,
            Err(f) => format!("{f}; {m}"),
        });
    }
    // Report the first part's mismatches (if any) together with the trigger's result.
    let first = first.map_err(|f| format!("{f}; event callback at Xen text accepted"));
    // A loopback channel: send on one end leaves the other pending, unmasked.
    let ev = |what: &'static str| move |e: Errno| format!("{what}: -{}", e.0);
    let a =
        guest_sdk::events::alloc_unbound(xen_abi::xen::DOMID_SELF).map_err(ev("alloc_unbound"))?;
    let b = guest_sdk::events::bind_interdomain(xen_abi::xen::DOMID_SELF, a)
        .map_err(ev("bind_interdomain"))?;
    let _ = guest_sdk::events::unmask(a);
    let _ = guest_sdk::events::send(b);
    let mask = guest_sdk::shared::upcall_mask(0).ok_or("no vcpu_info")?;
    reset_seen();
    // SAFETY: unmasking events with an upcall pending makes the hypervisor deliver it on
    // the way back from the hypercall (a harmless xen_version), at the callback in the
    // hypervisor's text; running it in ring 3 faults and the fault resumes after the
    // guarded block. The registers a hypercall clobbers are declared.
    unsafe {
        guarded!(
            ["movb $0, (%rcx)", "call *%rdx"],
            inout("rcx") mask.as_ptr() => _,
            inout("rdx") stub(nr::XEN_VERSION) => _,
            inout("rdi") 0u64 => _,
            inout("rsi") 0u64 => _,
            out("rax") _,
            out("r8") _,
            out("r10") _,
        )
    };
    let s = seen();
    guest_sdk::events::disable();
    restore_callbacks();
    guest_sdk::events::clear_pending(a);
    let _ = guest_sdk::events::close(a);
    let _ = guest_sdk::events::close(b);
    quiesce_events();
    let first = first?;
    if s.count == 0 {
        return Err(format!(
            "{first}; event callback at Xen text: accepted, but no upcall and no fault"
        ));
    }
    if s.vector != 14 || s.rip != XEN_TEXT {
        return Err(format!(
            "{first}; upcall with the callback at Xen text: vector {} at rip {:#x} (expected #PF at {XEN_TEXT:#x})",
            s.vector, s.rip
        ));
    }
    Ok(format!(
        "{first}; at Xen text: accepted as on Xen 4.17, and the upcall faulted there in ring 3"
    ))
}

/// Nothing pending for vCPU 0 any more (after attacks that raised events).
pub fn quiesce_events() {
    if let Some(p) = guest_sdk::shared::upcall_pending(0) {
        p.store(0, core::sync::atomic::Ordering::SeqCst);
    }
    if let Some(s) = guest_sdk::shared::pending_sel(0) {
        s.store(0, core::sync::atomic::Ordering::SeqCst);
    }
}

/// A 16-byte 64-bit call gate to `sel:offset` with DPL 3: (low, high).
fn call_gate(sel: u64, offset: u64) -> (u64, u64) {
    let low = (offset & 0xffff)
        | (sel << 16)
        | (0xc << 40)
        | (3 << 45)
        | (1 << 47)
        | ((offset >> 16) & 0xffff) << 48;
    (low, offset >> 32)
}

fn set_gdt(frames: &[u64], entries: u64) -> Result<u64, Errno> {
    // SAFETY: `frames` is a live array the hypervisor only reads.
    unsafe { hcall(nr::SET_GDT, [frames.as_ptr() as u64, entries, 0, 0, 0]) }
}

/// `set_gdt` with a 64-bit code and a data segment of DPL 0: Xen accepts them with the
/// DPL raised to 3 (read back from the frame, and loading the data selector into `%ds`
/// from our ring must work); with a call gate to the hypervisor's code selector, with a
/// frame still mapped writable, with a hypervisor frame, with 7169 entries: `-EINVAL`.
pub fn gdt() -> Outcome {
    let xen = xen_frame()?;
    let gate = Page::alloc()?;
    let (lo, hi) = call_gate(XEN_CS, XEN_TEXT);
    gate.set(2, lo);
    gate.set(3, hi);
    gate.remap(false)
        .map_err(|e| format!("remap read-only: -{}", e.0))?;
    let writable = Page::alloc()?;
    let cases = [
        (
            "call gate to 0xe008:Xen text".into(),
            set_gdt(&[gate.mfn], 512),
            Err(EINVAL),
        ),
        (
            "frame mapped writable".into(),
            set_gdt(&[writable.mfn], 512),
            Err(EINVAL),
        ),
        (
            format!("hypervisor mfn {xen:#x}"),
            set_gdt(&[xen], 512),
            Err(EINVAL),
        ),
        (
            "7169 entries".into(),
            set_gdt(&[writable.mfn; 16], 7169),
            Err(EINVAL),
        ),
    ];
    let _ = set_gdt(&[], 0);
    let _ = gate.remap(true);
    let refusals = all_agree(&cases)?;

    // DPL 0 segments: accepted with DPL 3.
    const CODE64_DPL0: u64 = 0x0020_9a00_0000_0000;
    const DATA_DPL0: u64 = 0x00cf_9200_0000_ffff;
    let ring0 = Page::alloc()?;
    ring0.set(1, CODE64_DPL0);
    ring0.set(2, DATA_DPL0);
    ring0
        .remap(false)
        .map_err(|e| format!("remap read-only: -{}", e.0))?;
    let r = set_gdt(&[ring0.mfn], 512);
    if let Some(m) = mismatch("DPL 0 code and data segments", r, Ok(0)) {
        let _ = set_gdt(&[], 0);
        let _ = ring0.remap(true);
        return Err(format!("{refusals}; {m}"));
    }
    let (code, data) = (ring0.get(1), ring0.get(2));
    let dpl = |d: u64| (d >> 45) & 3;
    reset_seen();
    let ds_after: u64;
    // SAFETY: loads selector 0x13 (our GDT entry 2, RPL 3) into %ds and reads it back,
    // then puts the null selector back (64-bit code ignores %ds). If the descriptor
    // still had DPL 0 the load faults and resumes after the block.
    unsafe {
        guarded!(
            ["mov $0x13, %eax", "movw %ax, %ds", "movl %ds, %eax"],
            out("rax") ds_after,
        );
        core::arch::asm!("movw {0:x}, %ds", in(reg) 0u16, options(att_syntax, nostack));
    }
    let s = seen();
    let _ = set_gdt(&[], 0);
    let _ = ring0.remap(true);
    if dpl(code) != 3 || dpl(data) != 3 {
        return Err(format!(
            "{refusals}; DPL 0 segments accepted but kept DPL {} (code {code:#x}) and {} (data {data:#x}) in the frame",
            dpl(code),
            dpl(data)
        ));
    }
    if s.count != 0 {
        return Err(format!(
            "{refusals}; DPL 0 segments: loading selector 0x13 from our ring faulted (vector {}, error {:#x}): the CPU still sees DPL 0",
            s.vector, s.error_code
        ));
    }
    Ok(format!(
        "{refusals}; DPL 0 segments accepted as on Xen 4.17 with DPL forced to 3 (%ds loaded {:#x})",
        ds_after & 0xffff
    ))
}

/// `update_descriptor` of a call gate into one of our pages, of a null descriptor into
/// a hypervisor frame, of a null descriptor at a misaligned address: `-EINVAL`.
pub fn update_descriptor() -> Outcome {
    let xen = xen_frame()?;
    let p = Page::alloc()?;
    let (lo, _) = call_gate(XEN_CS, XEN_TEXT);
    // SAFETY: values only (a machine address and a descriptor).
    let upd = |ma: u64, d: u64| unsafe { hcall(nr::UPDATE_DESCRIPTOR, [ma, d, 0, 0, 0]) };
    all_agree(&[
        (
            "call gate into our page".into(),
            upd(p.mfn << 12, lo),
            Err(EINVAL),
        ),
        (
            format!("null descriptor into hypervisor mfn {xen:#x}"),
            upd(xen << 12, 0),
            Err(EINVAL),
        ),
        (
            "misaligned address".into(),
            upd((p.mfn << 12) + 4, 0),
            Err(EINVAL),
        ),
    ])
}

/// `stack_switch` to a stack in the hypervisor's range: Xen accepts any value (the
/// kernel stack is only used on a switch from user mode, which this guest never makes;
/// the bounce-frame checks are exercised by `attack=stack`).
pub fn stack_switch() -> Outcome {
    let r = hypercall::stack_switch(u64::from(FLAT_KERNEL_SS), DIRECTMAP).map(|_| 0);
    let sp: u64;
    // SAFETY: reads the stack pointer.
    unsafe { core::arch::asm!("mov %rsp, {}", out(reg) sp, options(att_syntax, nomem, nostack)) };
    let _ = hypercall::stack_switch(u64::from(FLAT_KERNEL_SS), sp & !0xf);
    match mismatch("stack_switch to the direct map", r, Ok(0)) {
        None => Ok("accepted as on Xen 4.17 (unused in kernel mode)".into()),
        Some(m) => Err(m),
    }
}

/// `set_segment_base` of FS, user GS and kernel GS to a non-canonical base: `-EINVAL`.
pub fn segment_base() -> Outcome {
    use guest_sdk::hypercall::{SEGBASE_FS, SEGBASE_GS_KERNEL, SEGBASE_GS_USER};
    let set = |w: u32| hypercall::set_segment_base(w, NONCANON).map(|_| 0);
    all_agree(&[
        ("FS".into(), set(SEGBASE_FS), Err(EINVAL)),
        ("user GS".into(), set(SEGBASE_GS_USER), Err(EINVAL)),
        ("kernel GS".into(), set(SEGBASE_GS_KERNEL), Err(EINVAL)),
    ])
}

/// What became of a forged `iret`.
struct IretResult {
    cs_after: u64,
    faults: Seen,
    failsafes: u64,
    failsafe_cs: u64,
}

/// `iret` (through the hypercall page) to the next instruction, with code selector
/// `cs`, our stack and events left masked.
fn forged_iret(cs: u64) -> Result<IretResult, String> {
    catch_failsafe().map_err(|e| format!("registering our failsafe callback: -{}", e.0))?;
    reset_seen();
    // SAFETY: builds an iret_context (flags, rip = the resume label, cs, rflags with IF
    // clear, rsp = our current stack, ss) below our stack and jumps to the iret stub,
    // which adds rax/r11/rcx. Whatever the hypervisor does with the selector, we come
    // back at the resume label (directly, through the fault handler or through our
    // failsafe callback) with our stack; rax, rcx, rdx are declared clobbered.
    unsafe {
        guarded!(
            [
                "mov %rsp, %rax",
                "pushq ${ss}",
                "push %rax",
                "pushfq",
                "andq $-513, (%rsp)",
                "push %rcx",
                "lea 9f(%rip), %rax",
                "push %rax",
                "pushq $0",
                "jmp *%rdx",
            ],
            ss = const FLAT_KERNEL_SS,
            inout("rcx") cs => _,
            inout("rdx") stub(nr::IRET) => _,
            out("rax") _,
        )
    };
    let cs_after: u64;
    // SAFETY: reads the code selector we run with.
    unsafe {
        core::arch::asm!("movl %cs, {0:e}", out(reg) cs_after, options(att_syntax, nomem, nostack))
    };
    let r = IretResult {
        cs_after: cs_after & 0xffff,
        faults: seen(),
        failsafes: failsafes(),
        failsafe_cs: FAILSAFE_CS.load(core::sync::atomic::Ordering::SeqCst),
    };
    restore_callbacks();
    Ok(r)
}

/// `iret` with our kernel code selector at RPL 0 (0xe030): Xen forces RPL 3 and we go
/// on with 0xe033; with the hypervisor's own code selector (0xe008): the CPU refuses
/// 0xe00b, so the guest gets a fault or its failsafe callback, or the selector is
/// replaced with a guest one; in every case we run on in ring 3.
pub fn iret() -> Outcome {
    let k = forged_iret(u64::from(FLAT_KERNEL_CS & !3))?;
    if k.cs_after & 3 != 3 {
        return Err(format!(
            "after iret with cs 0xe030 we run with cs {:#x}",
            k.cs_after
        ));
    }
    if k.faults.count != 0 || k.failsafes != 0 || k.cs_after != u64::from(FLAT_KERNEL_CS) {
        return Err(format!(
            "iret with cs 0xe030: cs {:#x}, {} faults (vector {}), {} failsafe callbacks (Xen 4.17: cs 0xe033, no fault)",
            k.cs_after, k.faults.count, k.faults.vector, k.failsafes
        ));
    }
    let x = forged_iret(XEN_CS)?;
    if x.cs_after & 3 != 3 {
        return Err(format!(
            "after iret with cs 0xe008 we run with cs {:#x}",
            x.cs_after
        ));
    }
    let how = if x.failsafes != 0 {
        format!("failsafe callback (cs {:#x})", x.failsafe_cs)
    } else if x.faults.count != 0 {
        format!(
            "vector {} error {:#x}",
            x.faults.vector, x.faults.error_code
        )
    } else {
        format!("returned with cs {:#x}", x.cs_after)
    };
    Ok(format!(
        "cs 0xe030 came back as 0xe033 as on Xen 4.17; cs 0xe008: {how}, running on with cs {:#x}",
        x.cs_after
    ))
}
