//! The virtual IDT: exception entry stubs, the trap table, and Rust handlers.
//!
//! Xen delivers an exception as a bounce frame on the guest kernel stack:
//! `rcx, r11, [error code,] rip, cs, rflags, rsp, ss` (lowest address first; the saved
//! upcall mask sits in bits 32..39 of the `cs` slot). Each stub pops `rcx` and `r11`,
//! pushes a zero error code when the CPU has none, pushes the vector, and saves the
//! general registers, building a [`TrapFrame`]. After the Rust handler, the stub restores
//! the registers, drops vector and error code, pushes the `iret` flags word (0) and jumps
//! to the `iret` hypercall stub, which pushes `rax, r11, rcx` to complete an
//! `iret_context`.

use core::sync::atomic::{AtomicUsize, Ordering};
use xen_abi::errno::Errno;
use xen_abi::mm::FLAT_KERNEL_CS;
use xen_abi::xen::{TrapInfo, TI_IF};

/// Register state at an exception or event, as the entry stubs save it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Exception vector (`EVENT_VECTOR` for event upcalls).
    pub vector: u64,
    /// Error code (0 if the exception has none).
    pub error_code: u64,
    pub rip: u64,
    /// Code selector; bits 32..39 hold the saved upcall mask.
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}
const _: () = assert!(core::mem::size_of::<TrapFrame>() == 22 * 8);

/// The pseudo-vector recorded in a [`TrapFrame`] for event upcalls.
pub const EVENT_VECTOR: u64 = 0x100;

/// x86 exception vectors.
pub const DIVIDE_ERROR: u8 = 0;
pub const DEBUG: u8 = 1;
pub const NMI: u8 = 2;
pub const BREAKPOINT: u8 = 3;
pub const OVERFLOW: u8 = 4;
pub const BOUND_RANGE: u8 = 5;
pub const INVALID_OPCODE: u8 = 6;
pub const DEVICE_NOT_AVAILABLE: u8 = 7;
pub const DOUBLE_FAULT: u8 = 8;
pub const INVALID_TSS: u8 = 10;
pub const SEGMENT_NOT_PRESENT: u8 = 11;
pub const STACK_FAULT: u8 = 12;
pub const GENERAL_PROTECTION: u8 = 13;
pub const PAGE_FAULT: u8 = 14;
pub const X87_FPU: u8 = 16;
pub const ALIGNMENT_CHECK: u8 = 17;
pub const MACHINE_CHECK: u8 = 18;
pub const SIMD: u8 = 19;

/// What a handler wants done after it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Return to the interrupted code (with any changes made to the frame).
    Continue,
    /// Not handled: print the frame and crash the domain.
    Crash,
}

/// A trap handler. It may edit the frame (e.g. advance `rip`).
pub type Handler = fn(&mut TrapFrame) -> Resume;

/// The vectors the SDK installs, with whether the CPU pushes an error code and the DPL.
const VECTORS: [(u8, bool, u8); 17] = [
    (DIVIDE_ERROR, false, 0),
    (DEBUG, false, 0),
    (BREAKPOINT, false, 3),
    (OVERFLOW, false, 3),
    (BOUND_RANGE, false, 0),
    (INVALID_OPCODE, false, 0),
    (DEVICE_NOT_AVAILABLE, false, 0),
    (DOUBLE_FAULT, true, 0),
    (9, false, 0),
    (INVALID_TSS, true, 0),
    (SEGMENT_NOT_PRESENT, true, 0),
    (STACK_FAULT, true, 0),
    (GENERAL_PROTECTION, true, 0),
    (PAGE_FAULT, true, 0),
    (X87_FPU, false, 0),
    (ALIGNMENT_CHECK, true, 0),
    (SIMD, false, 0),
];

static HANDLERS: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];

/// Install `handler` for `vector` (0..32); replaces the SDK's default (print and crash;
/// for `#BP`, print and continue).
pub fn set_handler(vector: u8, handler: Handler) {
    if let Some(slot) = HANDLERS.get(vector as usize) {
        slot.store(handler as usize, Ordering::Release);
    }
}

/// Name of an exception vector.
pub const fn name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        19 => "#XM SIMD error",
        EVENT_VECTOR => "event upcall",
        _ => "exception",
    }
}

/// Build the trap table for stub addresses `stub(vector)`, zero-terminated.
pub fn build_table(stub: impl Fn(u8) -> u64) -> [TrapInfo; VECTORS.len() + 1] {
    let mut t = [TrapInfo::default(); VECTORS.len() + 1];
    for (slot, &(vector, _, dpl)) in t.iter_mut().zip(VECTORS.iter()) {
        *slot = TrapInfo {
            vector,
            // Mask events in handlers, like an interrupt gate; `iret` restores the mask.
            flags: dpl | TI_IF,
            cs: FLAT_KERNEL_CS,
            _pad: 0,
            address: stub(vector),
        };
    }
    t
}

/// The SDK's trap table (zero-terminated), as installed at boot.
pub fn table() -> [TrapInfo; VECTORS.len() + 1] {
    build_table(stub_address)
}

/// Install the SDK's trap table.
pub fn init() -> Result<(), Errno> {
    crate::hypercall::set_trap_table(&table())
}

fn print_frame(f: &TrapFrame) {
    crate::println!(
        "guest-sdk: {} (vector {}) error {:#x} at rip {:#x} rsp {:#x} rflags {:#x} cs {:#x}",
        name(f.vector),
        f.vector,
        f.error_code,
        f.rip,
        f.rsp,
        f.rflags,
        f.cs
    );
    if f.vector == PAGE_FAULT as u64 {
        crate::println!("guest-sdk: cr2 {:#x}", crate::shared::cr2(0).unwrap_or(0));
    }
    crate::println!(
        "guest-sdk: rax {:#x} rbx {:#x} rcx {:#x} rdx {:#x} rsi {:#x} rdi {:#x} rbp {:#x}",
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp
    );
}

/// Rust side of the exception stubs.
#[cfg_attr(target_os = "none", no_mangle)]
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
extern "C" fn sdk_trap_dispatch(frame: &mut TrapFrame) {
    let h = HANDLERS
        .get(frame.vector as usize)
        .map(|s| s.load(Ordering::Acquire))
        .unwrap_or(0);
    let resume = if h != 0 {
        // SAFETY: non-zero slots only ever hold a `Handler` stored by `set_handler`.
        let handler: Handler = unsafe { core::mem::transmute::<usize, Handler>(h) };
        handler(frame)
    } else if frame.vector == BREAKPOINT as u64 {
        crate::println!("guest-sdk: breakpoint at rip {:#x}", frame.rip);
        Resume::Continue
    } else {
        Resume::Crash
    };
    if resume == Resume::Crash {
        print_frame(frame);
        crate::println!("guest-sdk: unhandled exception, crashing the domain");
        crate::sched::crash();
    }
}

#[cfg(target_os = "none")]
fn stub_address(vector: u8) -> u64 {
    extern "C" {
        static sdk_trap_stubs: u8;
    }
    // `&raw const` takes the address without reading. Stubs are 16-byte aligned slots.
    (&raw const sdk_trap_stubs) as u64 + vector as u64 * 16
}

#[cfg(not(target_os = "none"))]
fn stub_address(vector: u8) -> u64 {
    0x1000 + vector as u64 * 16
}

// Entry stubs: one 16-byte slot per vector 0..31 at `sdk_trap_stubs + 16 * vector`, then
// the common save/restore path. SAVE_ALL/RESTORE_ALL are shared with the event upcall.
#[cfg(target_os = "none")]
core::arch::global_asm!(
    ".macro SDK_SAVE_ALL",
    "push %rax; push %rbx; push %rcx; push %rdx; push %rsi; push %rdi; push %rbp",
    "push %r8; push %r9; push %r10; push %r11; push %r12; push %r13; push %r14; push %r15",
    ".endm",
    ".macro SDK_RESTORE_ALL",
    "pop %r15; pop %r14; pop %r13; pop %r12; pop %r11; pop %r10; pop %r9; pop %r8",
    "pop %rbp; pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rbx; pop %rax",
    ".endm",
    // Call `\\fn(frame)` with rsp 16-byte aligned; rbx (callee-saved) keeps the frame.
    ".macro SDK_CALL_WITH_FRAME fn",
    "mov %rsp, %rdi",
    "mov %rsp, %rbx",
    "and $-16, %rsp",
    "call \\fn",
    "mov %rbx, %rsp",
    ".endm",
    // Return through the iret hypercall: drop vector + error code, push flags = 0.
    ".macro SDK_IRET",
    "add $16, %rsp",
    "push $0",
    "jmp sdk_hypercall_page + {IRET} * 32",
    ".endm",
    ".pushsection .text.sdk_traps, \"ax\", @progbits",
    ".balign 16",
    ".globl sdk_trap_stubs",
    "sdk_trap_stubs:",
    ".set vec, 0",
    ".rept 32",
    ".balign 16",
    "pop %rcx",
    "pop %r11",
    // Vectors with a CPU error code: 8, 10-14, 17, 21, 29, 30.
    ".if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)",
    ".else",
    "push $0",
    ".endif",
    "push $vec",
    "jmp sdk_trap_common",
    ".set vec, vec + 1",
    ".endr",
    "sdk_trap_common:",
    "SDK_SAVE_ALL",
    "SDK_CALL_WITH_FRAME sdk_trap_dispatch",
    "SDK_RESTORE_ALL",
    "SDK_IRET",
    // Event upcall: frame `rcx, r11, rip, cs, rflags, rsp, ss`. Saved like an exception
    // with error code 0 and vector EVENT_VECTOR, and returns through the same iret path.
    ".balign 16",
    ".globl sdk_hypervisor_callback",
    "sdk_hypervisor_callback:",
    "pop %rcx",
    "pop %r11",
    "push $0",
    "push ${EVENT_VECTOR}",
    "SDK_SAVE_ALL",
    "SDK_CALL_WITH_FRAME sdk_event_dispatch",
    "SDK_RESTORE_ALL",
    "SDK_IRET",
    // Failsafe: frame `rcx, r11, ds, es, fs, gs, rip, cs, rflags, rsp, ss`; never returns.
    ".balign 16",
    ".globl sdk_failsafe_callback",
    "sdk_failsafe_callback:",
    "pop %rcx",
    "pop %r11",
    "mov %rsp, %rdi",
    "and $-16, %rsp",
    "call sdk_failsafe",
    "ud2",
    ".popsection",
    IRET = const xen_abi::hypercall::IRET,
    EVENT_VECTOR = const EVENT_VECTOR,
    options(att_syntax),
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_zero_terminated_and_masks_events() {
        let t = build_table(|v| 0x1000 + v as u64 * 16);
        assert_eq!(t.last().map(|e| e.address), Some(0));
        let pf = t
            .iter()
            .find(|e| e.vector == PAGE_FAULT)
            .copied()
            .unwrap_or_default();
        assert_eq!(pf.address, 0x1000 + 14 * 16);
        assert_eq!(pf.cs, FLAT_KERNEL_CS);
        assert_eq!(pf.flags, TI_IF);
        let bp = t
            .iter()
            .find(|e| e.vector == BREAKPOINT)
            .copied()
            .unwrap_or_default();
        assert_eq!(bp.flags & 3, 3);
    }

    #[test]
    fn frame_layout_matches_stub_pushes() {
        // rax is pushed first, so it is the highest register slot, just below `vector`.
        assert_eq!(core::mem::offset_of!(TrapFrame, rax), 14 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, vector), 15 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, rip), 17 * 8);
    }
}
