//! Guest user mode: a user address space, `iret` to ring 3, `syscall` back to the kernel.
//!
//! How a 64-bit PV kernel runs user code (Xen's `do_iret`, `toggle_guest_mode`,
//! `lstar_enter`/`switch_to_kernel`; Linux's `xen_iret` and `xen_syscall_target`):
//! - the user address space is a separate L4, installed with `MMUEXT_NEW_USER_BASEPTR`;
//! - `stack_switch(ss, sp)` names the kernel stack Xen switches to on a bounce from user
//!   mode;
//! - the `iret` hypercall with a frame whose `cs` has RPL 3 switches the vCPU to user
//!   mode and the user L4; the upcall mask is restored from the frame's `rflags.IF`;
//! - a `syscall` in user mode switches back to kernel mode and the kernel L4 and bounces
//!   to the `CALLBACKTYPE_syscall` callback on that stack, frame `rcx, r11, rip, cs,
//!   rflags, rsp, ss` with the user's `cs` (RPL 3; a bounce in kernel mode has RPL 0).
//!
//! The kernel side here does not return to user mode: the syscall callback records the
//! frame and resumes the kernel where [`pvcpu_enter_user`] was called, like a
//! `longjmp`. A fault in user mode does the same through [`escape`].

use crate::ensure;
use crate::guest::Outcome;
use crate::mmu::Page;
use alloc::format;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use guest_sdk::mm::{make_pte, table_index};
use guest_sdk::traps::TrapFrame;
use guest_sdk::xen_abi::callback::{CallbackRegister, CALLBACKF_MASK_EVENTS, CALLBACKTYPE_SYSCALL};
use guest_sdk::xen_abi::errno::Errno;
use guest_sdk::xen_abi::mm::{
    FLAT_KERNEL_SS, FLAT_USER_CS, FLAT_USER_SS, PTE_ACCESSED, PTE_DIRTY, PTE_PRESENT, PTE_RW,
    PTE_USER,
};

/// Where the user task's code and data pages are mapped in the user address space.
const UVA_CODE: u64 = 0x40_0000;
const UVA_DATA: u64 = 0x40_1000;
/// A value only the user address space can read (first word of the data page).
const USER_MAGIC: u64 = 0x5573_6572_4d6f_6465;

/// The user task: `movabs $UVA_DATA, %rbx; mov (%rbx), %rax; syscall; ud2`.
const fn user_code() -> [u8; 17] {
    let a = UVA_DATA.to_le_bytes();
    [
        0x48, 0xbb, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], // movabs $UVA_DATA, %rbx
        0x48, 0x8b, 0x03, // mov (%rbx), %rax
        0x0f, 0x05, // syscall
        0x0f, 0x0b, // ud2 (only reached if syscall returned to user mode)
    ]
}
/// Address of the instruction after the user's `syscall`.
const USER_AFTER_SYSCALL: u64 = UVA_CODE + 15;

/// How [`pvcpu_enter_user`] came back.
const BACK_BY_SYSCALL: u64 = 1;
const BACK_BY_FAULT: u64 = 2;

static IN_USER: AtomicBool = AtomicBool::new(false);
/// Kernel `rsp` saved by `pvcpu_enter_user` (after pushing the callee-saved registers).
static SAVED_RSP: AtomicU64 = AtomicU64::new(0);
/// The syscall bounce frame: rcx, r11, rip, cs, rflags, rsp, ss.
static SYS_FRAME: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];
/// The user's rax at the syscall.
static USER_RAX: AtomicU64 = AtomicU64::new(0);

extern "C" {
    /// Enter guest user mode at `rip` with stack `rsp`; returns `BACK_BY_*` when the
    /// kernel regains control.
    fn pvcpu_enter_user(rip: u64, rsp: u64) -> u64;
    static pvcpu_syscall_entry: u8;
    static pvcpu_user_fault_return: u8;
    static pvcpu_kstack_top: u8;
}

/// Whether a user task is running (faults with RPL 3 belong to it).
pub fn in_user() -> bool {
    IN_USER.load(SeqCst)
}

/// A fault in user mode: return to the kernel where `pvcpu_enter_user` was called.
/// The `iret` with a kernel-context `cs` (RPL 0) keeps the vCPU in kernel mode.
pub fn escape(f: &mut TrapFrame) {
    f.rip = (&raw const pvcpu_user_fault_return) as u64;
    f.cs = crate::checks::KERNEL_CONTEXT_CS;
    f.rsp = SAVED_RSP.load(SeqCst);
    f.ss = FLAT_KERNEL_SS as u64;
}

core::arch::global_asm!(
    ".pushsection .bss.pvcpu_kstack, \"aw\", @nobits",
    ".balign 16",
    ".skip 16384",
    ".globl pvcpu_kstack_top",
    "pvcpu_kstack_top:",
    ".popsection",
    ".pushsection .text.pvcpu_user, \"ax\", @progbits",
    ".globl pvcpu_enter_user",
    "pvcpu_enter_user:",
    "push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15",
    "mov %rsp, {saved}(%rip)",
    // iret_context above rax/r11/rcx (pushed by the stub): flags, rip, cs, rflags, rsp,
    // ss. rflags.IF = 0 keeps events masked while in user mode.
    "push ${user_ss}",
    "push %rsi",
    "push $0x2",
    "push ${user_cs}",
    "push %rdi",
    "push $0",
    "jmp sdk_hypercall_page + {iret} * 32",
    // Back in kernel mode: drop whatever stack we are on, restore the caller's.
    "pvcpu_back_to_kernel:",
    "mov {saved}(%rip), %rsp",
    "pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx",
    "ret",
    // The syscall callback: frame rcx, r11, rip, cs, rflags, rsp, ss on the stack_switch
    // stack; the user's other registers are live.
    ".balign 16",
    ".globl pvcpu_syscall_entry",
    "pvcpu_syscall_entry:",
    "mov %rax, {urax}(%rip)",
    "mov 0(%rsp), %rax; mov %rax, {frame}+0(%rip)",
    "mov 8(%rsp), %rax; mov %rax, {frame}+8(%rip)",
    "mov 16(%rsp), %rax; mov %rax, {frame}+16(%rip)",
    "mov 24(%rsp), %rax; mov %rax, {frame}+24(%rip)",
    "mov 32(%rsp), %rax; mov %rax, {frame}+32(%rip)",
    "mov 40(%rsp), %rax; mov %rax, {frame}+40(%rip)",
    "mov 48(%rsp), %rax; mov %rax, {frame}+48(%rip)",
    "mov ${by_syscall}, %eax",
    "jmp pvcpu_back_to_kernel",
    ".globl pvcpu_user_fault_return",
    "pvcpu_user_fault_return:",
    "mov ${by_fault}, %eax",
    "jmp pvcpu_back_to_kernel",
    ".popsection",
    saved = sym SAVED_RSP,
    urax = sym USER_RAX,
    frame = sym SYS_FRAME,
    user_ss = const FLAT_USER_SS,
    user_cs = const FLAT_USER_CS,
    iret = const guest_sdk::xen_abi::hypercall::IRET,
    by_syscall = const BACK_BY_SYSCALL,
    by_fault = const BACK_BY_FAULT,
    options(att_syntax),
);

/// Build the user address space: L4 -> L3 -> L2 -> L1 -> {code (RO), data (RW)}, all
/// user-accessible, pinned as an L4 and installed as the user base pointer.
fn build_user_space() -> Result<u64, alloc::string::String> {
    let e = |what: &'static str| move |e: Errno| format!("{what}: -{}", e.0);
    let mut pages = [None; 6];
    for p in pages.iter_mut() {
        *p = Page::alloc();
    }
    let [Some(l4), Some(l3), Some(l2), Some(l1), Some(code), Some(data)] = pages else {
        return Err("out of pages".into());
    };
    for (i, b) in user_code().iter().enumerate() {
        // SAFETY: `i < 17`, inside our own freshly allocated page.
        unsafe { (code.va as *mut u8).add(i).write_volatile(*b) };
    }
    data.set(0, USER_MAGIC);
    let table = PTE_PRESENT | PTE_RW | PTE_USER | PTE_ACCESSED;
    l4.set(table_index(UVA_CODE, 4), make_pte(l3.mfn, table));
    l3.set(table_index(UVA_CODE, 3), make_pte(l2.mfn, table));
    l2.set(table_index(UVA_CODE, 2), make_pte(l1.mfn, table));
    l1.set(
        table_index(UVA_CODE, 1),
        make_pte(code.mfn, PTE_PRESENT | PTE_USER | PTE_ACCESSED),
    );
    l1.set(
        table_index(UVA_DATA, 1),
        make_pte(
            data.mfn,
            PTE_PRESENT | PTE_RW | PTE_USER | PTE_ACCESSED | PTE_DIRTY,
        ),
    );
    // A page table must have no writable mapping before it is validated.
    for t in [l4, l3, l2, l1] {
        t.remap(false).map_err(e("remapping a table read-only"))?;
    }
    guest_sdk::mm::pin_table(4, l4.mfn).map_err(e("MMUEXT_PIN_L4_TABLE"))?;
    guest_sdk::mm::new_user_baseptr(l4.mfn).map_err(e("MMUEXT_NEW_USER_BASEPTR"))?;
    Ok(l4.mfn)
}

/// Drop to user mode with the `iret` hypercall; the user task reads a value only its
/// address space maps and executes `syscall`; the syscall callback runs in kernel mode,
/// entered from user mode (frame `cs` RPL 3), and returns to the kernel.
pub fn user_syscall() -> Outcome {
    let e = |what: &'static str| move |e: Errno| format!("{what}: -{}", e.0);
    crate::faults::reset();
    build_user_space()?;
    let kstack = (&raw const pvcpu_kstack_top) as u64;
    guest_sdk::hypercall::stack_switch(FLAT_KERNEL_SS as u64, kstack).map_err(e("stack_switch"))?;
    guest_sdk::hypercall::callback_register(&CallbackRegister {
        type_: CALLBACKTYPE_SYSCALL,
        flags: CALLBACKF_MASK_EVENTS,
        _pad: 0,
        address: (&raw const pvcpu_syscall_entry) as u64,
    })
    .map_err(e("callback_op(register syscall)"))?;

    let mask = guest_sdk::shared::upcall_mask(0).ok_or("no vcpu_info")?;
    let mask_before = mask.load(SeqCst);
    for slot in SYS_FRAME.iter() {
        slot.store(0, SeqCst);
    }
    USER_RAX.store(0, SeqCst);
    IN_USER.store(true, SeqCst);
    // SAFETY:
    // 1. The user address space built above maps the user task's code and stack; the
    //    user task only reads its data page and executes `syscall`.
    // 2. Control comes back here only through `pvcpu_back_to_kernel`, which restores the
    //    callee-saved registers and this stack; the syscall callback and `escape` are the
    //    only ways back, both in kernel mode.
    let how = unsafe { pvcpu_enter_user(UVA_CODE, UVA_DATA + 4096 - 64) };
    IN_USER.store(false, SeqCst);
    mask.store(mask_before, SeqCst);

    if how == BACK_BY_FAULT {
        let s = crate::faults::last();
        return Err(format!(
            "user task faulted: vector {} error {:#x} rip {:#x} cs {:#x} cr2 {:#x}",
            s.vector, s.error_code, s.rip, s.cs, s.cr2
        ));
    }
    ensure!(how == BACK_BY_SYSCALL, "came back with {how}");
    let f: [u64; 7] = core::array::from_fn(|i| SYS_FRAME.get(i).map_or(0, |a| a.load(SeqCst)));
    let [rcx, _r11, rip, cs, _rflags, rsp, ss] = f;
    ensure!(
        cs & 0xffff == FLAT_USER_CS as u64 && cs & 3 == 3,
        "syscall frame cs {cs:#x}: not user mode (expected {:#x})",
        FLAT_USER_CS
    );
    ensure!(
        ss & 0xffff == FLAT_USER_SS as u64,
        "syscall frame ss {ss:#x} (expected {:#x})",
        FLAT_USER_SS
    );
    ensure!(
        rip == USER_AFTER_SYSCALL && rcx == USER_AFTER_SYSCALL,
        "syscall frame rip {rip:#x} rcx {rcx:#x} (expected {USER_AFTER_SYSCALL:#x})"
    );
    ensure!(
        rsp == UVA_DATA + 4096 - 64,
        "syscall frame rsp {rsp:#x} (expected the user stack)"
    );
    let urax = USER_RAX.load(SeqCst);
    ensure!(
        urax == USER_MAGIC,
        "user task read {urax:#x} from its data page (expected {USER_MAGIC:#x})"
    );
    ensure!(
        crate::faults::total() == 0,
        "{} faults during the user task",
        crate::faults::total()
    );
    Ok(())
}
