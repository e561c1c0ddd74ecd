//! Per-CPU stacks and data, the way Xen lays them out.
//!
//! Each CPU owns one `STACK_SIZE`-aligned block. From any stack pointer on it,
//! `rsp & !(STACK_SIZE - 1)` finds the block, and the `CpuInfo` at its top. The block
//! (low to high addresses):
//!
//! ```text
//!   [0,   4K)   guard (never used)
//!   [4K,  8K)   IST 1: #DF
//!   [8K, 12K)   IST 2: NMI
//!   [12K,16K)   IST 3: #MC
//!   [16K, ...)  the primary stack, growing down to 16K
//!   CpuInfo     at the very top; its first field is the guest register frame, so an
//!               interrupt from guest mode (TSS.RSP0 = end of that frame) and the
//!               syscall stub both build the guest's frame exactly there.
//! ```
//!
//! Lock order (documented once, here): `domain table` → `domain` → `mm` (frame table)
//! → `evtchn` → `console`. A lock is never taken while one later in the order is held.

use core::cell::UnsafeCell;
use core::mem::{offset_of, size_of};

pub const MAX_CPUS: usize = 16;
pub const STACK_SIZE: usize = 64 * 1024;
pub const IST_DF: usize = 1;
pub const IST_NMI: usize = 2;
pub const IST_MC: usize = 3;

/// The register frame of an interrupted context: Xen's `cpu_user_regs` prefix.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub error_code: u32,
    pub vector: u32,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}
const _: () = assert!(size_of::<Regs>() == 21 * 8);

/// `vector` of a frame built by the syscall stub (Xen's `TRAP_syscall`).
pub const VECTOR_SYSCALL: u32 = 256;

/// Data at the top of each CPU's stack.
#[repr(C)]
pub struct CpuInfo {
    /// The frame of the guest context this CPU entered from (fixed place).
    pub guest_regs: Regs,
    /// Scratch: the guest's `rsp` saved by this CPU's syscall stub. Must follow
    /// `guest_regs` directly (the stub relies on it).
    pub syscall_rsp: u64,
    /// This CPU's logical id.
    pub cpu_id: u64,
    /// The vCPU running here (an index into the domain table), or `u64::MAX` when idle.
    pub current: u64,
    /// Local APIC id.
    pub apic_id: u64,
    /// What this CPU is doing (a `&'static &'static str`, 0 for nothing in
    /// particular): shown by the fault report.
    pub doing: u64,
}

pub const CPUINFO_SIZE: usize = size_of::<CpuInfo>();
pub const SYSCALL_RSP_OFFSET: usize = offset_of!(CpuInfo, syscall_rsp);
const _: () = assert!(SYSCALL_RSP_OFFSET == size_of::<Regs>());
const _: () = assert!(CPUINFO_SIZE.is_multiple_of(16));

#[repr(C, align(65536))]
pub struct StackBlock(UnsafeCell<[u8; STACK_SIZE]>);
const _: () = assert!(core::mem::align_of::<StackBlock>() == STACK_SIZE);

/// Every CPU's stack block. Only ever accessed through raw pointers.
#[repr(C)]
pub struct Stacks(pub [StackBlock; MAX_CPUS]);

// SAFETY: each block is used only by its own CPU (through raw pointers, never
// references to the bytes), so sharing the array between CPUs is sound.
unsafe impl Sync for Stacks {}

#[no_mangle]
pub static PERCPU_STACKS: Stacks =
    Stacks([const { StackBlock(UnsafeCell::new([0; STACK_SIZE])) }; MAX_CPUS]);

/// Base address of CPU `cpu`'s block.
pub fn block(cpu: usize) -> u64 {
    PERCPU_STACKS.0[cpu].0.get() as u64
}

/// Address of CPU `cpu`'s `CpuInfo`.
pub fn cpu_info_ptr(cpu: usize) -> *mut CpuInfo {
    (block(cpu) + (STACK_SIZE - CPUINFO_SIZE) as u64) as *mut CpuInfo
}

/// TSS.RSP0 of CPU `cpu`: the end of its guest frame.
pub fn rsp0(cpu: usize) -> u64 {
    block(cpu) + (STACK_SIZE - CPUINFO_SIZE + size_of::<Regs>()) as u64
}

/// Top of the IST stack `ist` (1..=3) of CPU `cpu`.
pub fn ist_top(cpu: usize, ist: usize) -> u64 {
    block(cpu) + ((ist + 1) * 4096) as u64
}

/// Top of the primary stack (just below `CpuInfo`).
pub fn stack_top(cpu: usize) -> u64 {
    block(cpu) + (STACK_SIZE - CPUINFO_SIZE) as u64
}

/// The `CpuInfo` of the CPU running this code.
pub fn this_cpu() -> *mut CpuInfo {
    let rsp: u64;
    // SAFETY: reading rsp has no side effects.
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags))
    };
    let start = block(0);
    if !(start..start + (MAX_CPUS * STACK_SIZE) as u64).contains(&rsp) {
        // Only the boot CPU ever runs on the boot stack.
        return cpu_info_ptr(0);
    }
    let base = rsp & !(STACK_SIZE as u64 - 1);
    (base + (STACK_SIZE - CPUINFO_SIZE) as u64) as *mut CpuInfo
}

/// True if this code runs on one of the per-CPU stacks (false on the boot stack).
pub fn on_percpu_stack() -> bool {
    let rsp: u64;
    // SAFETY: reading rsp has no side effects.
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags))
    };
    let start = block(0);
    let end = start + (MAX_CPUS * STACK_SIZE) as u64;
    (start..end).contains(&rsp)
}

/// This CPU's fixed guest frame (`CpuInfo::guest_regs`).
pub fn this_cpu_guest_frame() -> *mut Regs {
    // `guest_regs` is the first field of CpuInfo.
    this_cpu() as *mut Regs
}
