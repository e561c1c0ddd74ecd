//! The PV CPU: what happens when a guest traps, makes a hypercall or is interrupted.
//!
//! Entered from `traps::dispatch` with the guest's frame. For a hypercall the frame is
//! the CPU's fixed guest frame (`CpuInfo::guest_regs`); so is it for every exception
//! or interrupt taken from guest mode except the IST ones (NMI, #DF, #MC).
//!
//! Exceptions and events reach the guest as Xen's bounce frames (see `bounce`), and the
//! guest returns with the `iret` hypercall (`do_iret`).

use crate::arch::percpu::{self, Regs, VECTOR_SYSCALL};
use crate::domain::{self, Domain, Shutdown, Vcpu};
use crate::guest_mem;
use crate::shinfo::SharedInfo;
use xen_abi::errno::{Errno, EFAULT, EINVAL};
use xen_abi::mm::{
    FLAT_KERNEL_CS, FLAT_KERNEL_SS, FLAT_USER_CS, FLAT_USER_SS, HYPERVISOR_VIRT_END,
    HYPERVISOR_VIRT_START,
};

const EFLAGS_TF: u64 = 1 << 8;
const EFLAGS_IF: u64 = 1 << 9;
const EFLAGS_DF: u64 = 1 << 10;
const EFLAGS_IOPL: u64 = 3 << 12;
const EFLAGS_NT: u64 = 1 << 14;
const EFLAGS_RF: u64 = 1 << 16;
const EFLAGS_VM: u64 = 1 << 17;
const EFLAGS_AC: u64 = 1 << 18;

/// `VGCF_in_syscall` in `iret_context.flags`.
const VGCF_IN_SYSCALL: u64 = 1 << 8;

/// Exceptions that push an error code.
fn has_error_code(v: u32) -> bool {
    matches!(v, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// What to do after handling a guest event.
pub enum After {
    /// Return to the guest with the frame as it is now.
    Resume,
    /// The vCPU blocked (`SCHEDOP_block`, `hlt`): idle until it has work.
    Block,
    /// The domain stopped (shutdown or crash).
    Stopped,
    /// A multicall reached an `iret`: perform it on the vCPU's frame; the batch ends
    /// there (XSA-213: nothing after it may run with kernel privilege).
    Iret,
}

/// The address space the vCPU is in now.
pub fn current_l4(v: &Vcpu) -> u64 {
    if v.kernel_mode {
        v.kernel_l4()
    } else {
        v.user_l4()
    }
}

/// Crash `d` (an ABI violation or an undeliverable fault). Rate-limited log.
pub fn crash(d: &mut Domain, why: &str) {
    if d.shutdown.is_none() {
        log::warn!(target: "guest", "d{}: crashed: {why}", d.id);
        d.shutdown = Some(Shutdown::Crashed);
    }
}

/// Switch between guest kernel and user mode: page tables and GS base.
pub fn toggle_guest_mode(v: &mut Vcpu) {
    v.kernel_mode = !v.kernel_mode;
    load_mode(v);
}

/// Load the hardware state for the vCPU's current mode (CR3, GS base).
pub fn load_mode(v: &Vcpu) {
    let l4 = current_l4(v);
    let gs = if v.kernel_mode {
        v.gs_base_kernel
    } else {
        v.gs_base_user
    };
    // SAFETY: `l4` is a validated L4 table of this domain (new_baseptr/new_user_baseptr
    // took a type reference) which contains the hypervisor's slots, so the hypervisor
    // stays mapped after the switch; GS_BASE takes any canonical value (checked by
    // set_segment_base).
    unsafe {
        core::arch::asm!("mov cr3, {}", in(reg) l4 << 12, options(nostack));
        crate::arch::x86::wrmsr(0xC000_0101, gs);
        crate::arch::x86::wrmsr(0xC000_0100, v.fs_base);
    }
}

/// A bounce frame could not be written (bad kernel stack): the domain must be crashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Undeliverable;

/// Build a Xen bounce frame on the guest kernel stack and point the vCPU at `handler`.
///
/// Frame, low to high: RCX, R11, [error code], RIP, CS (saved upcall mask in bits
/// 32..39; RPL cleared in kernel mode), RFLAGS (IF = events were unmasked), RSP, SS.
pub fn bounce(
    d: &mut Domain,
    vi: usize,
    regs: &mut Regs,
    handler: u64,
    error_code: Option<u32>,
    mask_events: bool,
) -> Result<(), Undeliverable> {
    let sh = SharedInfo::new(d.shared_info_mfn);
    let Some(v) = d.vcpus.get_mut(vi) else {
        return Err(Undeliverable);
    };
    if handler == 0 {
        return Err(Undeliverable);
    }
    let mut cs = regs.cs & 0xffff;
    let sp = if v.kernel_mode {
        cs &= !3;
        regs.rsp
    } else {
        toggle_guest_mode(v);
        v.kernel_sp
    };
    let sp = sp & !0xf;
    if (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END + 60).contains(&sp) {
        return Err(Undeliverable);
    }
    let vid = v.id;
    let saved_mask = sh.upcall_mask(vid);
    if mask_events {
        sh.set_upcall_mask(vid, true);
    }
    let rflags = (regs.rflags & !EFLAGS_IF) | if saved_mask { 0 } else { EFLAGS_IF };
    let mut frame = [0u64; 8];
    let mut n = 0;
    frame[n] = regs.rcx;
    n += 1;
    frame[n] = regs.r11;
    n += 1;
    if let Some(ec) = error_code {
        frame[n] = u64::from(ec);
        n += 1;
    }
    frame[n..n + 5].copy_from_slice(&[
        regs.rip,
        cs | (u64::from(saved_mask) << 32),
        rflags,
        regs.rsp,
        regs.ss,
    ]);
    n += 5;
    let base = sp.wrapping_sub(8 * n as u64);
    let mut bytes = [0u8; 64];
    for (i, w) in frame[..n].iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    if guest_mem::copy_to_guest(v.kernel_l4(), base, &bytes[..n * 8]).is_err() {
        return Err(Undeliverable);
    }
    regs.rflags &= !(EFLAGS_AC | EFLAGS_VM | EFLAGS_RF | EFLAGS_NT | EFLAGS_TF);
    regs.ss = u64::from(FLAT_KERNEL_SS);
    regs.rsp = base;
    regs.cs = u64::from(FLAT_KERNEL_CS);
    regs.rip = handler;
    Ok(())
}

/// Deliver exception `vector` to the guest through its trap table, or crash it.
pub fn inject(d: &mut Domain, vi: usize, regs: &mut Regs, vector: u32, error_code: Option<u32>) {
    let Some(v) = d.vcpus.get(vi) else { return };
    let ti = v.traps.get(vector as usize).copied().unwrap_or_default();
    if ti.address == 0 {
        let name = crate::traps::EXC_NAMES
            .get(vector as usize)
            .copied()
            .unwrap_or("trap");
        log::warn!(target: "guest", "d{}v{}: unhandled {name} at {:#x} (no handler registered)", d.id, vi, regs.rip);
        crate::traps::dump_regs(regs);
        crash(d, "unhandled exception");
        return;
    }
    let mask = ti.flags & 4 != 0;
    if bounce(d, vi, regs, ti.address, error_code, mask).is_err() {
        crash(d, "cannot deliver an exception (bad kernel stack)");
    }
}

/// Xen's `iret` hypercall: return from a bounce frame.
fn do_iret(d: &mut Domain, vi: usize, regs: &mut Regs) -> Result<u64, ()> {
    let sh = SharedInfo::new(d.shared_info_mfn);
    let Some(v) = d.vcpus.get_mut(vi) else {
        return Err(());
    };
    let mut b = [0u8; 72];
    guest_mem::copy_from_guest(current_l4(v), regs.rsp, &mut b).map_err(|_| ())?;
    let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let (rax, r11, rcx, flags, rip, cs, rflags, rsp, ss) =
        (w(0), w(1), w(2), w(3), w(4), w(5), w(6), w(7), w(8));
    if cs & 3 == 3 && v.kernel_mode {
        if v.user_l4() == 0 {
            return Err(());
        }
        toggle_guest_mode(v);
    }
    regs.rip = rip;
    regs.cs = cs | 3;
    regs.rflags = (rflags & !(EFLAGS_IOPL | EFLAGS_VM)) | EFLAGS_IF;
    regs.rsp = rsp;
    regs.ss = ss | 3;
    if flags & VGCF_IN_SYSCALL == 0 {
        regs.r11 = r11;
        regs.rcx = rcx;
    }
    sh.set_upcall_mask(v.id, rflags & EFLAGS_IF == 0);
    Ok(rax)
}

/// The entry from `traps::dispatch` for anything taken from guest mode.
pub fn guest_event(regs: &mut Regs) -> *mut Regs {
    let info = percpu::this_cpu();
    // SAFETY: `this_cpu` is this CPU's CpuInfo; `current` is only written by this CPU.
    let cur = unsafe { (*info).current };
    let Some((domid, vid)) = domain::unpack_current(cur) else {
        crate::traps::fatal(regs);
    };
    let vector = regs.vector;
    match vector {
        // An NMI that is not a stop request: nothing to do.
        2 => return regs as *mut Regs,
        8 | 18 => crate::traps::fatal(regs),
        _ => {}
    }
    // A device interrupt or IPI that arrived while the guest ran is handled before
    // waiting for `DOMAINS`: the flush IPI in particular must be answered even when the
    // CPU holding `DOMAINS` is the one waiting for the answer (its vector stays in
    // service until handled, so spinning with interrupts on does not let it in).
    if vector >= 32 && vector != VECTOR_SYSCALL && vector != 0x80 {
        crate::irq::handle(vector);
        return finish(domid, vid, regs, After::Resume);
    }
    let mut doms = domain::lock();
    if doms.get(domid).is_none() {
        crate::traps::fatal(regs)
    }
    let vi = vid as usize;
    let after = match vector {
        VECTOR_SYSCALL => syscall(&mut doms, domid, vi, regs),
        0..=31 => match doms.get(domid) {
            Some(d) => exception(d, vi, regs),
            None => After::Stopped,
        },
        0x80 => {
            if let Some(d) = doms.get(domid) {
                software_interrupt(d, vi, regs, 0x80);
            }
            After::Resume
        }
        // External interrupts were handled above.
        _ => After::Resume,
    };
    drop(doms);
    finish(domid, vid, regs, after)
}

/// Common exit (no lock held): handle a stopped domain or a blocked vCPU, deliver
/// pending events, re-arm the timer, sanitise the frame.
pub fn finish(domid: crate::domain::DomId, vid: u32, regs: &mut Regs, after: After) -> *mut Regs {
    crate::sched::exit(domid, vid, regs, matches!(after, After::Block))
}

/// Before returning to the guest: a non-canonical return address (a `syscall` at the end
/// of the lower half, XSA-7) becomes a #GP for the guest, with that address in its frame,
/// instead of a fault in the hypervisor's `iretq`; then pending events are delivered.
pub fn deliver_events(d: &mut Domain, vi: usize, regs: &mut Regs) {
    let top = regs.rip >> 47;
    if top != 0 && top != 0x1ffff {
        inject(d, vi, regs, 13, Some(0));
    }
    deliver_upcall(d, vi, regs);
}

/// If the vCPU has an event upcall pending and unmasked, bounce to its callback.
fn deliver_upcall(d: &mut Domain, vi: usize, regs: &mut Regs) {
    let sh = SharedInfo::new(d.shared_info_mfn);
    let Some(v) = d.vcpus.get(vi) else { return };
    let vid = v.id;
    let cb = v.event_callback;
    if cb == 0 || sh.upcall_mask(vid) || !sh.upcall_pending(vid) {
        return;
    }
    if bounce(d, vi, regs, cb, None, true).is_err() {
        crash(d, "cannot deliver an event upcall (bad kernel stack)");
    }
}

/// Make the frame safe to `iretq` to: ring 3 selectors, IF on, IOPL 0, NT/VM off.
pub fn sanitise(regs: &mut Regs) {
    regs.cs = if regs.cs & 0xffff == u64::from(FLAT_USER_CS)
        || regs.cs & 0xffff == u64::from(FLAT_KERNEL_CS & !3)
    {
        u64::from(FLAT_USER_CS)
    } else if regs.cs & 0xffff == 0xe023 {
        0xe023
    } else {
        u64::from(FLAT_USER_CS)
    };
    // 64-bit PV guests have one stack segment, the flat ring-3 one.
    regs.ss = u64::from(FLAT_USER_SS);
    regs.rflags =
        (regs.rflags & !(EFLAGS_IOPL | EFLAGS_NT | EFLAGS_VM | EFLAGS_RF)) | EFLAGS_IF | 0x2;
    // A non-canonical RIP would fault in iretq at ring 0 (on Intel): refuse it here.
    let top = regs.rip >> 47;
    if top != 0 && top != 0x1ffff {
        regs.rip = 0;
    }
}

fn syscall(
    t: &mut crate::domain::DomainTable,
    domid: crate::domain::DomId,
    vi: usize,
    regs: &mut Regs,
) -> After {
    let Some(d) = t.get(domid) else {
        return After::Stopped;
    };
    let kernel = d.vcpus.get(vi).is_some_and(|v| v.kernel_mode);
    if !kernel {
        // A system call from guest user mode goes to the guest kernel's callback.
        let (cb, mask) = match d.vcpus.get(vi) {
            Some(v) => (v.syscall_callback, v.syscall_masks_events),
            None => return After::Stopped,
        };
        if bounce(d, vi, regs, cb, None, mask).is_err() {
            crash(d, "system call from user mode with no syscall callback");
            return After::Stopped;
        }
        regs.rflags &= !EFLAGS_DF;
        return After::Resume;
    }
    let nr = regs.rax;
    if nr == xen_abi::hypercall::IRET {
        return match do_iret(d, vi, regs) {
            Ok(rax) => {
                regs.rax = rax;
                After::Resume
            }
            Err(()) => {
                crash(d, "bad iret frame");
                After::Stopped
            }
        };
    }
    let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8];
    let (ret, after) = crate::hypercall::dispatch(t, domid, vi, nr, args, 0);
    if matches!(after, After::Iret) {
        let Some(d) = t.get(domid) else {
            return After::Stopped;
        };
        return match do_iret(d, vi, regs) {
            Ok(rax) => {
                regs.rax = rax;
                After::Resume
            }
            Err(()) => {
                crash(d, "bad iret frame");
                After::Stopped
            }
        };
    }
    match ret {
        crate::hypercall::Ret::Value(v) => regs.rax = v,
        crate::hypercall::Ret::Err(e) => regs.rax = e.to_ret(),
        crate::hypercall::Ret::Restart => {
            regs.rip = regs.rip.wrapping_sub(2);
            regs.rax = nr;
        }
        crate::hypercall::Ret::Continue(new_args) => {
            // Re-execute the `syscall` with updated arguments (a continuation).
            regs.rip = regs.rip.wrapping_sub(2);
            regs.rax = nr;
            regs.rdi = new_args[0];
            regs.rsi = new_args[1];
            regs.rdx = new_args[2];
            regs.r10 = new_args[3];
            regs.r8 = new_args[4];
        }
    }
    after
}

fn software_interrupt(d: &mut Domain, vi: usize, regs: &mut Regs, vector: u32) {
    let ti = d
        .vcpus
        .get(vi)
        .and_then(|v| v.traps.get(vector as usize).copied())
        .unwrap_or_default();
    let kernel = d.vcpus.get(vi).is_some_and(|v| v.kernel_mode);
    if !permit_softint(ti.flags, kernel) {
        // Not allowed from ring 3: a #GP with the IDT error code, as hardware would.
        regs.rip = regs.rip.wrapping_sub(2);
        inject(d, vi, regs, 13, Some((vector << 3) | 2));
        return;
    }
    inject(d, vi, regs, vector, None);
}

fn exception(d: &mut Domain, vi: usize, regs: &mut Regs) -> After {
    let vector = regs.vector;
    let ec = if has_error_code(vector) {
        Some(regs.error_code)
    } else {
        None
    };
    match vector {
        6 if crate::emulate::forced_cpuid(d, vi, regs) => return After::Resume,
        7 => {
            // #NM: the guest asked for lazy FPU switching with fpu_taskswitch(1).
            crate::arch::x86::clts();
            if let Some(v) = d.vcpus.get_mut(vi) {
                if v.fpu_ts {
                    v.fpu_ts = false;
                    inject(d, vi, regs, 7, None);
                }
            }
            return After::Resume;
        }
        13 => {
            if regs.error_code & 3 == 2 {
                // `int N` through a DPL-0 gate: a software interrupt the guest may allow.
                let n = int_vector(d, vi, regs);

                let ti = d
                    .vcpus
                    .get(vi)
                    .and_then(|v| v.traps.get(n as usize).copied())
                    .unwrap_or_default();
                let kernel = d.vcpus.get(vi).is_some_and(|v| v.kernel_mode);
                if permit_softint(ti.flags, kernel) && ti.address != 0 {
                    regs.rip = regs.rip.wrapping_add(2);
                    inject(d, vi, regs, n, None);
                    return After::Resume;
                }
            } else if regs.error_code == 0 {
                match crate::emulate::privileged_op(d, vi, regs) {
                    crate::emulate::Emulated::Done => return After::Resume,
                    crate::emulate::Emulated::No => {}
                }
            }
        }
        14 => {
            let cr2 = crate::arch::x86::cr2();
            let Some(v) = d.vcpus.get(vi) else {
                return After::Stopped;
            };
            SharedInfo::new(d.shared_info_mfn).set_cr2(v.id, cr2);
            // The guest kernel runs in ring 3, so hardware always sets the user bit:
            // report it as the guest sees its own privilege (Xen's pv_inject_event).
            const PFEC_USER: u32 = 1 << 2;
            let ec = (regs.error_code & !PFEC_USER) | if v.kernel_mode { 0 } else { PFEC_USER };
            inject(d, vi, regs, 14, Some(ec));
            return After::Resume;
        }
        _ => {}
    }
    inject(d, vi, regs, vector, ec);

    After::Resume
}

/// Xen's `permit_softint` for 64-bit PV: guest kernel mode counts as ring 1, so a
/// trap-table entry of DPL ≥ 1 may be raised with `int` from the kernel, DPL 3 from user.
fn permit_softint(flags: u8, kernel_mode: bool) -> bool {
    u32::from(flags & 3) >= if kernel_mode { 1 } else { 3 }
}

/// The vector of an `int N` that raised #GP with the IDT flag. Hardware reports
/// `N << 3 | 2`; QEMU's TCG reports `N * 16 + 2` in long mode (so real Xen under TCG
/// misroutes these). The instruction itself (`cd NN`) settles it.
fn int_vector(d: &Domain, vi: usize, regs: &Regs) -> u32 {
    let from_ec = regs.error_code >> 3;
    let mut b = [0u8; 2];
    let fetched = d
        .vcpus
        .get(vi)
        .is_some_and(|v| guest_mem::copy_from_guest(current_l4(v), regs.rip, &mut b).is_ok());
    if fetched
        && b[0] == 0xcd
        && (u32::from(b[1]) == from_ec || u32::from(b[1]) == regs.error_code >> 4)
    {
        u32::from(b[1])
    } else {
        from_ec
    }
}

/// Read a guest struct for a hypercall, mapping faults to `-EFAULT`.
pub fn read_arg<T: guest_mem::Pod>(v: &Vcpu, va: u64) -> Result<T, Errno> {
    guest_mem::read(current_l4(v), va).map_err(|_| EFAULT)
}

/// Write a hypercall result struct back to the guest.
pub fn write_arg<T: guest_mem::Pod>(v: &Vcpu, va: u64, val: &T) -> Result<(), Errno> {
    guest_mem::write(current_l4(v), va, val).map_err(|_| EFAULT)
}

/// A canonical address outside the hypervisor's range.
pub fn guest_addr_ok(va: u64) -> Result<(), Errno> {
    let top = va >> 47;
    if (top != 0 && top != 0x1ffff) || (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&va) {
        Err(EINVAL)
    } else {
        Ok(())
    }
}
