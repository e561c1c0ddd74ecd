//! Entry and exit: the IDT, the 256 vector stubs, the per-CPU syscall stubs and the
//! common save/restore path. Everything funnels into `crate::traps::dispatch`, which
//! gets the saved frame and returns the frame to resume (the same one, or another
//! vCPU's after a switch).
//!
//! The stubs are minimal (SECURITY.md D2): they save registers, clear DF, and call Rust.
//! Exit is always `iretq`, whose frame `traps` has sanitised (no SYSRET: XSA-7).

use super::gdt::HYPERVISOR_CS;
use super::percpu::{self, Regs, CPUINFO_SIZE, MAX_CPUS, STACK_SIZE, SYSCALL_RSP_OFFSET};
use core::cell::UnsafeCell;
use core::mem::size_of;

core::arch::global_asm!(
    r#"
    .section .text.entry, "ax"
    .code64

    /* 256 stubs of 16 bytes each, vector N at vector_stubs + 16*N. */
    .balign 16
    .global vector_stubs
vector_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
        movl $vec, 4(%rsp)
    .else
        push $0
        movl $vec, 4(%rsp)
    .endif
        jmp common_entry
    .set vec, vec + 1
    .endr

common_entry:
    push %rdi
    push %rsi
    push %rdx
    push %rcx
    push %rax
    push %r8
    push %r9
    push %r10
    push %r11
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    cld
    mov %rsp, %rbx
    and $-16, %rsp
    mov %rbx, %rdi
    call hv_trap_dispatch
    mov %rax, %rsp
    .global restore_frame
restore_frame:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rax
    pop %rcx
    pop %rdx
    pop %rsi
    pop %rdi
    add $8, %rsp
    iretq

    /*
     * One syscall stub per CPU (LSTAR differs per CPU): save the guest rsp into that
     * CPU's CpuInfo.syscall_rsp, switch to the CPU's guest frame, build the frame.
     */
    .balign 32
    .global syscall_stubs
syscall_stubs:
    .set cpu, 0
    .rept {max_cpus}
    .balign 32
        mov %rsp, PERCPU_STACKS + (cpu * {stack_size}) + {stack_size} - {cpuinfo_size} + {syscall_rsp_off}(%rip)
        movabs $(PERCPU_STACKS + (cpu * {stack_size}) + {stack_size} - {cpuinfo_size} + {syscall_rsp_off}), %rsp
        jmp syscall_common
    .set cpu, cpu + 1
    .endr

syscall_common:
    /* rsp = &CpuInfo.syscall_rsp = end of the guest frame. */
    push ${user_ss}
    push 8(%rsp)
    push %r11
    push ${user_cs}
    push %rcx
    push $0
    movl ${vector_syscall}, 4(%rsp)
    jmp common_entry
    "#,
    max_cpus = const MAX_CPUS,
    stack_size = const STACK_SIZE,
    cpuinfo_size = const CPUINFO_SIZE,
    syscall_rsp_off = const SYSCALL_RSP_OFFSET,
    user_ss = const xen_abi::mm::FLAT_USER_SS as u64,
    user_cs = const xen_abi::mm::FLAT_USER_CS as u64,
    vector_syscall = const percpu::VECTOR_SYSCALL,
    options(att_syntax)
);

extern "C" {
    static vector_stubs: u8;
    static syscall_stubs: u8;
    fn restore_frame() -> !;
}

#[no_mangle]
extern "C" fn hv_trap_dispatch(regs: *mut Regs) -> *mut Regs {
    // SAFETY: `regs` points to the frame the entry stub just pushed on this CPU's stack
    // (aligned, complete); nothing else references it while the handler runs.
    let r = unsafe { &mut *regs };
    crate::traps::dispatch(r)
}

/// Resume the context saved in `frame` (restore registers, `iretq`).
///
/// # Safety
/// `frame` must point to a complete, sanitised `Regs` on this CPU's stack block (its
/// guest frame, or a frame built for the idle context), and nothing on the current
/// stack above it may be needed again.
pub unsafe fn resume(frame: *mut Regs) -> ! {
    // SAFETY: per the contract, `frame` is a valid frame; restore_frame pops it and
    // irets, never returning here.
    unsafe {
        core::arch::asm!(
            "mov rsp, {f}",
            "jmp {r}",
            f = in(reg) frame,
            r = sym restore_frame,
            options(noreturn)
        )
    }
}

/// The address of CPU `cpu`'s syscall stub (its LSTAR value).
pub fn syscall_stub(cpu: usize) -> u64 {
    // Only the address of the extern static is taken, never its value.
    (core::ptr::addr_of!(syscall_stubs) as u64) + (cpu as u64) * 32
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    off_lo: u16,
    sel: u16,
    ist: u8,
    flags: u8,
    off_mid: u16,
    off_hi: u32,
    _r: u32,
}
const _: () = assert!(size_of::<Gate>() == 16);

#[repr(C, align(4096))]
struct Idt(UnsafeCell<[Gate; 256]>);
// SAFETY: written once by the boot CPU before any other CPU loads it; read-only after.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new(
    [Gate {
        off_lo: 0,
        sel: 0,
        ist: 0,
        flags: 0,
        off_mid: 0,
        off_hi: 0,
        _r: 0,
    }; 256],
));

/// Vectors a guest may raise with `int N` from ring 3: #BP, #OF and Xen's 0x80.
fn guest_dpl3(vector: usize) -> bool {
    matches!(vector, 3 | 4 | 0x80)
}

/// Fill the IDT (boot CPU, once).
pub fn init_idt() {
    // Only the address of the extern static is taken.
    let base = core::ptr::addr_of!(vector_stubs) as u64;
    let idt = IDT.0.get();
    for v in 0..256usize {
        let addr = base + 16 * v as u64;
        let dpl: u8 = if guest_dpl3(v) { 3 } else { 0 };
        let ist = match v {
            2 => percpu::IST_NMI as u8,
            8 => percpu::IST_DF as u8,
            18 => percpu::IST_MC as u8,
            _ => 0,
        };
        let gate = Gate {
            off_lo: addr as u16,
            sel: HYPERVISOR_CS,
            ist,
            // present, interrupt gate (type 0xE): IF cleared on entry.
            flags: 0x80 | (dpl << 5) | 0x0e,
            off_mid: (addr >> 16) as u16,
            off_hi: (addr >> 32) as u32,
            _r: 0,
        };
        // SAFETY: the boot CPU fills the IDT before any CPU loads it; `v < 256`.
        unsafe { (*idt)[v] = gate };
    }
}

/// Load the IDT on this CPU.
pub fn load_idt() {
    #[repr(C, packed)]
    struct Ptr {
        limit: u16,
        base: u64,
    }
    let ptr = Ptr {
        limit: (256 * 16 - 1) as u16,
        base: IDT.0.get() as u64,
    };
    // SAFETY: the IDT is filled (init_idt ran on the boot CPU first) and static.
    unsafe {
        core::arch::asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags))
    };
}
