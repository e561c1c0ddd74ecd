//! Where every interrupt, exception and syscall lands (from `arch::entry`).
//!
//! From guest mode (CS RPL 3) events go to `pv`; from the hypervisor itself an
//! exception is fatal: print the registers and what the CPU was doing, stop all CPUs,
//! power off with `Reason::HypervisorFailure`.

use crate::arch::percpu::{Regs, VECTOR_SYSCALL};
use crate::arch::{power, x86};
use core::fmt::Write;

pub const EXC_NAMES: [&str; 32] = [
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved 15",
    "#MF x87 error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD error",
    "#VE virtualization",
    "#CP control protection",
    "reserved 22",
    "reserved 23",
    "reserved 24",
    "reserved 25",
    "reserved 26",
    "reserved 27",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved 31",
];

static IDLE: &str = "nothing in particular";

/// Record what this CPU is doing (shown if it faults). Cheap: one store into this
/// CPU's `CpuInfo`, found from the stack pointer.
pub fn doing(what: &'static &'static str) {
    let info = crate::arch::percpu::this_cpu();
    // SAFETY: `this_cpu` is this CPU's own CpuInfo; only this CPU writes `doing`.
    unsafe { (*info).doing = what as *const &str as u64 };
}

pub(crate) fn what_doing(cpu: usize) -> &'static str {
    let info = crate::arch::percpu::cpu_info_ptr(cpu);
    // SAFETY: reading a word of a CpuInfo (a static); it is 0 or was stored by `doing`
    // from a `&'static &'static str`.
    let p = unsafe { core::ptr::read_volatile(&(*info).doing) };
    if p == 0 {
        IDLE
    } else {
        // SAFETY: as above, `p` came from a `&'static &'static str`.
        unsafe { *(p as *const &'static str) }
    }
}

/// Entered from the stubs with the saved frame; returns the frame to resume.
pub fn dispatch(r: &mut Regs) -> *mut Regs {
    // An NMI can arrive while a guest runs: the fatal path's stop request comes first.
    if r.vector == 2 && crate::smp::nmi_stop_requested() {
        crate::smp::stopped_halt();
    }
    if r.vector == 2 {
        // Not a stop request: a report request (or a stray NMI), in guest or hypervisor
        // mode alike; back to where it hit.
        report_if_asked(r);
        return r as *mut Regs;
    }
    let from_guest = r.cs & 3 == 3;
    let vector = r.vector;
    if from_guest || vector == VECTOR_SYSCALL {
        return crate::pv::guest_event(r);
    }
    match vector {
        0..=31 => fatal(r),
        _ => {
            crate::irq::handle(r.vector);
            r as *mut Regs
        }
    }
}

/// CPUs asked (by a CPU waiting for them) to say where they are at their next NMI.
pub static REPORT_REQUESTED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// At an NMI: if asked, print where this CPU was interrupted (lock-free console).
fn report_if_asked(r: &Regs) {
    use core::sync::atomic::Ordering;
    let cpu = crate::arch::cpu::current_id() as usize;
    let bit = 1u64 << (cpu % 64);
    if REPORT_REQUESTED.load(Ordering::Acquire) & bit == 0 {
        return;
    }
    let mut c = crate::console::PanicConsole;
    let _ = writeln!(
        c,
        "(hv) cpu{cpu} at NMI: rip {:#x} cs {:#x} rflags {:#x} ({}), last at: {}",
        r.rip,
        r.cs,
        r.rflags,
        if r.cs & 3 == 3 { "guest" } else { "hypervisor" },
        what_doing(cpu)
    );
    REPORT_REQUESTED.fetch_and(!bit, Ordering::AcqRel);
}

/// Print everything about a hypervisor fault, stop all CPUs and power off.
pub fn fatal(r: &Regs) -> ! {
    let cpu = crate::arch::cpu::current_id() as usize;
    let name = EXC_NAMES
        .get(r.vector as usize)
        .copied()
        .unwrap_or("interrupt");
    let mut c = crate::console::PanicConsole;
    let _ = writeln!(
        c,
        "\n*** HYPERVISOR FAULT on CPU{cpu}: vector {} ({name}), error code {:#x}",
        r.vector, r.error_code
    );
    let _ = writeln!(c, "*** while: {}", what_doing(cpu));
    dump_regs(r);
    crate::smp::stop_others();
    let _ = writeln!(c, "*** system halted; powering off");
    power::off(power::Reason::HypervisorFailure)
}

/// Print a register frame.
pub fn dump_regs(r: &Regs) {
    let mut c = crate::console::PanicConsole;
    let _ = writeln!(
        c,
        "RIP {:#018x}  CS {:#06x}  RFLAGS {:#010x}",
        r.rip, r.cs, r.rflags
    );
    let _ = writeln!(
        c,
        "RSP {:#018x}  SS {:#06x}  CR2 {:#018x}  CR3 {:#018x}",
        r.rsp,
        r.ss,
        x86::cr2(),
        x86::cr3()
    );
    let _ = writeln!(
        c,
        "RAX {:#018x}  RBX {:#018x}  RCX {:#018x}",
        r.rax, r.rbx, r.rcx
    );
    let _ = writeln!(
        c,
        "RDX {:#018x}  RSI {:#018x}  RDI {:#018x}",
        r.rdx, r.rsi, r.rdi
    );
    let _ = writeln!(
        c,
        "RBP {:#018x}  R8  {:#018x}  R9  {:#018x}",
        r.rbp, r.r8, r.r9
    );
    let _ = writeln!(
        c,
        "R10 {:#018x}  R11 {:#018x}  R12 {:#018x}",
        r.r10, r.r11, r.r12
    );
    let _ = writeln!(
        c,
        "R13 {:#018x}  R14 {:#018x}  R15 {:#018x}",
        r.r13, r.r14, r.r15
    );
}
