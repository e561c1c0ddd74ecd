//! CPU bring-up: the boot CPU's own set-up, and stopping other CPUs on a fatal error.

use crate::arch::{apic, entry, gdt, percpu, x86};
use core::sync::atomic::{AtomicU32, Ordering};

const MSR_EFER: u32 = 0xC000_0080;
const MSR_STAR: u32 = 0xC000_0081;
const MSR_LSTAR: u32 = 0xC000_0082;
const MSR_CSTAR: u32 = 0xC000_0083;
const MSR_SFMASK: u32 = 0xC000_0084;

/// CPUs that finished their bring-up.
pub static ONLINE: AtomicU32 = AtomicU32::new(0);

/// Per-CPU set-up common to the boot CPU and the others: GDT/TSS, IDT, syscall MSRs,
/// control registers, local APIC.
pub fn init_this_cpu(cpu: usize) {
    let info = percpu::cpu_info_ptr(cpu);
    // SAFETY: CPU `cpu` is being brought up by itself; its CpuInfo is not used by anyone
    // else yet. Writes through the raw pointer, no reference kept.
    unsafe {
        (*info).cpu_id = cpu as u64;
        (*info).current = u64::MAX;
    }
    gdt::load(cpu);
    entry::load_idt();
    let (_, _, _, edx81) = x86::cpuid(0x8000_0001, 0);
    let nx = edx81 & (1 << 20) != 0;
    // SAFETY: EFER/STAR/LSTAR/SFMASK exist on every x86_64 CPU; the values enable
    // syscall into this CPU's stub with the hypervisor's selectors, and mask IF, TF,
    // DF, NT, AC and IOPL on entry (SECURITY.md D2).
    unsafe {
        let efer = x86::rdmsr(MSR_EFER) | 1 | if nx { 1 << 11 } else { 0 };
        x86::wrmsr(MSR_EFER, efer);
        x86::wrmsr(
            MSR_STAR,
            (0xe023u64 << 48) | (u64::from(gdt::HYPERVISOR_CS) << 32),
        );
        x86::wrmsr(MSR_LSTAR, entry::syscall_stub(cpu));
        x86::wrmsr(MSR_CSTAR, 0);
        x86::wrmsr(MSR_SFMASK, 0x0004_4700 | (3 << 12));
    }
    // CR4: PGE, OSFXSR, OSXMMEXCPT so guests can use SSE. CR0: MP, NE; clear EM and TS.
    // SAFETY: these bits only enable features every x86_64 CPU has.
    unsafe {
        let mut cr4: u64;
        core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack));
        cr4 |= (1 << 7) | (1 << 9) | (1 << 10);
        core::arch::asm!("mov cr4, {}", in(reg) cr4, options(nostack));
        let mut cr0: u64;
        core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack));
        cr0 = (cr0 | (1 << 1) | (1 << 5)) & !((1 << 2) | (1 << 3));
        core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nostack));
    }
    apic::enable();
    // SAFETY: as above; recording the APIC id in this CPU's own CpuInfo.
    unsafe { (*info).apic_id = u64::from(apic::id()) };
    ONLINE.fetch_add(1, Ordering::SeqCst);
}

/// Set up the boot CPU (CPU 0).
pub fn init_boot_cpu() {
    init_this_cpu(0);
}

/// Bring up the other CPUs. (Single-CPU for now: the APs stay in the firmware.)
pub fn start_aps(_opts: &crate::cmdline::Options) {}

/// Stop every other CPU (NMI broadcast): used on the fatal path.
pub fn stop_others() {
    if ONLINE.load(Ordering::Relaxed) > 1 {
        apic::nmi_others();
    }
}
