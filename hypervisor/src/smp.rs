//! CPU bring-up: the boot CPU's own set-up, starting the others (ACPI MADT,
//! INIT-SIPI-SIPI through `arch::trampoline`), their idle loop, IPIs, and stopping
//! every other CPU on a fatal error.
//!
//! Logical CPU ids are dense: 0 is the boot CPU, then the MADT's enabled local APICs in
//! table order, as many as `maxcpus=` and `MAX_CPUS` allow.

use crate::arch::{acpi, apic, entry, gdt, percpu, timer, trampoline, x86};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use log::{debug, info, warn};

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

/// Each logical CPU's local APIC id (`NO_APIC`: none).
static APIC_IDS: [AtomicU32; percpu::MAX_CPUS] =
    [const { AtomicU32::new(NO_APIC) }; percpu::MAX_CPUS];
const NO_APIC: u32 = u32::MAX;
/// Bit `n`: CPU `n` finished its bring-up (and, for an AP, idles).
static ONLINE_MASK: AtomicU64 = AtomicU64::new(0);
/// The page tables APs switch to once in long mode (the boot CPU's at `start_aps`).
static AP_CR3: AtomicU64 = AtomicU64::new(0);
/// The boot CPU's TSC just before the SIPI: an AP whose TSC is lower is out of sync.
static TSC_AT_SIPI: AtomicU64 = AtomicU64::new(0);

/// How long the boot CPU waits for one AP to come online.
const AP_TIMEOUT_US: u64 = 2_000_000;
const ICR_INIT_ASSERT: u32 = (1 << 15) | (1 << 14) | (0b101 << 8);
const ICR_INIT_DEASSERT: u32 = (1 << 15) | (0b101 << 8);
const ICR_STARTUP: u32 = (1 << 14) | (0b110 << 8);
const ICR_FIXED: u32 = 1 << 14;

extern "C" {
    /// The boot page tables (boot/src/main.rs): they identity-map the first 4 GiB,
    /// which the trampoline needs while it turns paging on.
    static boot_pml4: u8;
}

/// CPU `cpu`'s local APIC id, if it is online.
pub fn apic_id(cpu: usize) -> Option<u32> {
    if !is_online(cpu) {
        return None;
    }
    APIC_IDS
        .get(cpu)
        .map(|a| a.load(Ordering::Relaxed))
        .filter(|&a| a != NO_APIC)
}

/// True if CPU `cpu` finished its bring-up.
pub fn is_online(cpu: usize) -> bool {
    cpu < percpu::MAX_CPUS && ONLINE_MASK.load(Ordering::Acquire) & (1 << cpu) != 0
}

/// The number of CPUs online.
pub fn online_count() -> u32 {
    ONLINE.load(Ordering::Acquire)
}

/// Find the ACPI tables, calibrate the timer, then bring up the other CPUs (ACPI
/// MADT) and park them in their idle loops. Boot CPU, once, interrupts off, after
/// `init_boot_cpu`.
pub fn start_aps(opts: &crate::cmdline::Options) {
    let bsp_apic = apic::id();
    APIC_IDS[0].store(bsp_apic, Ordering::Relaxed);
    let rsdp = crate::start::BOOT_INFO.get().and_then(|b| b.rsdp);
    let tables = acpi::init(rsdp);
    crate::irq::disable_legacy_pic();
    crate::arch::ioapic::init(tables.madt.as_ref());
    timer::init();
    timer::init_this_cpu();
    ONLINE_MASK.fetch_or(1, Ordering::Release);

    let limit = opts.max_cpus.map_or(percpu::MAX_CPUS, |n| {
        (n as usize).clamp(1, percpu::MAX_CPUS)
    });
    let lapics = tables.madt.as_ref().map_or(&[][..], |m| &m.lapics[..]);
    let mut next = 1usize;
    let mut not_started = 0usize;
    let mut sipi_vector = None;
    for l in lapics.iter().filter(|l| l.apic_id != bsp_apic) {
        if STOPPER.load(Ordering::SeqCst) != NO_STOPPER || next >= limit {
            not_started += 1;
            continue;
        }
        if l.apic_id > 0xff {
            warn!(
                "smp: APIC id {:#x} needs x2APIC mode, which is not supported: CPU left off",
                l.apic_id
            );
            continue;
        }
        let vector = *sipi_vector.get_or_insert_with(|| {
            check_trampoline_page();
            AP_CR3.store(x86::cr3(), Ordering::Relaxed);
            trampoline::install()
        });
        if boot_ap(next, l.apic_id, vector) {
            next += 1;
        }
    }
    if not_started > 0 {
        info!(
            "smp: {not_started} more CPUs left off (maxcpus={limit}, at most {})",
            percpu::MAX_CPUS
        );
    }
    info!("smp: {} CPUs online", online_count());
    crate::sched::init(online_count());
    self_test();
}

/// Warn if the trampoline's page is not RAM in the loader's memory map.
fn check_trampoline_page() {
    let pa = trampoline::TRAMPOLINE_PA;
    let ram = crate::start::BOOT_INFO.get().is_some_and(|b| {
        b.memory.iter().any(|r| {
            r.kind == crate::multiboot::MEM_AVAILABLE
                && r.start <= pa
                && r.start.saturating_add(r.len) >= pa + 4096
        })
    });
    if !ram {
        warn!("smp: the AP trampoline page {pa:#x} is not RAM in the memory map");
    }
}

/// Start CPU `cpu` on local APIC `apic_id`; true once it is online.
fn boot_ap(cpu: usize, apic_id: u32, vector: u8) -> bool {
    // Only the address of the linker symbol is taken.
    let boot_cr3 = crate::mem::virt_to_phys(core::ptr::addr_of!(boot_pml4) as u64);
    trampoline::set_params(boot_cr3, percpu::stack_top(cpu), cpu);
    APIC_IDS[cpu].store(apic_id, Ordering::Relaxed);
    TSC_AT_SIPI.store(x86::rdtsc(), Ordering::SeqCst);
    // INIT, then two STARTUPs (Intel SDM vol. 3 "MP initialization").
    apic::ipi(apic_id, ICR_INIT_ASSERT);
    timer::udelay(10_000);
    apic::ipi(apic_id, ICR_INIT_DEASSERT);
    for _ in 0..2 {
        if is_online(cpu) {
            break;
        }
        apic::ipi(apic_id, ICR_STARTUP | u32::from(vector));
        timer::udelay(200);
    }
    let mut waited = 0;
    while !is_online(cpu) {
        if waited >= AP_TIMEOUT_US {
            warn!("smp: CPU{cpu} (APIC id {apic_id:#x}) did not come up; left in INIT");
            apic::ipi(apic_id, ICR_INIT_ASSERT);
            APIC_IDS[cpu].store(NO_APIC, Ordering::Relaxed);
            return false;
        }
        timer::udelay(100);
        waited += 100;
    }
    true
}

/// An AP's first Rust code: on its own stack, in long mode, interrupts off.
pub(crate) fn ap_main(cpu: usize) -> ! {
    let tsc = x86::rdtsc();
    let cr3 = AP_CR3.load(Ordering::Relaxed);
    if cr3 != 0 && cr3 != x86::cr3() {
        // SAFETY: `cr3` is the boot CPU's live page tables, which map the hypervisor
        // (this code, its stacks and data) exactly as the boot tables do.
        unsafe { core::arch::asm!("mov cr3, {}", in(reg) cr3, options(nostack)) };
    }
    if STOPPER.load(Ordering::SeqCst) != NO_STOPPER {
        // Started just as another CPU stops everything: its NMI may have missed us.
        stopped_halt();
    }
    init_this_cpu(cpu);
    timer::init_this_cpu();
    if tsc < TSC_AT_SIPI.load(Ordering::SeqCst) {
        warn!("smp: CPU{cpu}'s TSC is behind the boot CPU's: system time may differ");
    }
    debug!("smp: CPU{cpu} up, APIC id {:#x}", apic::id());
    ONLINE_MASK.fetch_or(1 << cpu, Ordering::Release);
    crate::irq::start_tick();
    // The scheduling policy is sized for every CPU: wait until the boot CPU has brought
    // all of them up and created it.
    while !crate::sched::ready() {
        core::hint::spin_loop();
    }
    crate::sched::run_loop()
}

/// A CPU with nothing to run: wait for interrupts.
pub fn idle_loop() -> ! {
    loop {
        // SAFETY: `sti; hlt` atomically enables interrupts and waits (an interrupt
        // between them is held off by the STI shadow); the IDT and this CPU's APIC are
        // set up, so any interrupt lands in `traps::dispatch` and returns here.
        unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
    }
}

/// Send `vector` as a fixed IPI to CPU `cpu`. False if `cpu` is not online.
pub fn send_ipi(cpu: usize, vector: u8) -> bool {
    let Some(id) = apic_id(cpu) else {
        return false;
    };
    // The ICR is written in two halves: keep an interrupt's IPI from splitting them.
    x86_64::instructions::interrupts::without_interrupts(|| {
        apic::ipi(id, ICR_FIXED | u32::from(vector))
    });
    true
}

/// Wake CPU `cpu` from its idle loop (the event-check IPI).
pub fn kick(cpu: usize) -> bool {
    send_ipi(cpu, crate::irq::VECTOR_EVENT_CHECK)
}

/// Boot-time checks of the timer and IPIs, logged.
fn self_test() {
    use crate::irq::{EVENT_CHECKS, TIMER_TICKS};
    match timer::check_against_pit() {
        Some(ns) => info!(
            "timer: 100 ms of PIT took {}.{:03} ms of system time",
            ns / 1_000_000,
            (ns / 1000) % 1000
        ),
        None => info!("timer: no PIT to check the clock against"),
    }
    // A 10 ms deadline on this CPU, taken with interrupts on.
    let before = TIMER_TICKS[0].load(Ordering::Relaxed);
    let t0 = timer::now_ns();
    timer::set_deadline(t0 + 10_000_000);
    while TIMER_TICKS[0].load(Ordering::Relaxed) == before && timer::now_ns() - t0 < 1_000_000_000 {
        // SAFETY: as in `idle_loop`: the IDT and APIC are set up, the boot stack has
        // room for an interrupt frame.
        unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
    }
    let dt = timer::now_ns() - t0;
    timer::set_deadline(0);
    if TIMER_TICKS[0].load(Ordering::Relaxed) == before {
        warn!("timer: a 10 ms deadline did not fire within 1 s");
    } else {
        info!("timer: a 10 ms deadline fired after {} us", dt / 1000);
    }
    // An event check to every AP; their idle ticks so far.
    let n = online_count() as usize;
    for cpu in 1..n {
        kick(cpu);
    }
    timer::udelay(10_000);
    for cpu in 1..n {
        debug!(
            "smp: CPU{cpu}: {} event checks, {} idle ticks",
            EVENT_CHECKS[cpu].load(Ordering::Relaxed),
            TIMER_TICKS[cpu].load(Ordering::Relaxed)
        );
        if EVENT_CHECKS[cpu].load(Ordering::Relaxed) == 0 {
            warn!("smp: CPU{cpu} did not take its event-check IPI");
        }
    }
}

/// The CPU that is stopping the others (`NO_STOPPER`: none).
static STOPPER: AtomicU32 = AtomicU32::new(NO_STOPPER);
const NO_STOPPER: u32 = u32::MAX;
/// CPUs that halted for `stop_others`.
static STOPPED: AtomicU32 = AtomicU32::new(0);

/// Stop every other CPU (NMI broadcast): used on the fatal path. Lock-free. The first
/// CPU to call it stops the others and returns (then powers off); a CPU that calls it
/// while another is already stopping everything halts here for good.
pub fn stop_others() {
    let me = crate::arch::cpu::current_id();
    match STOPPER.compare_exchange(NO_STOPPER, me, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => {}
        Err(owner) if owner == me => return,
        Err(_) => stopped_halt(),
    }
    let others = ONLINE.load(Ordering::SeqCst).saturating_sub(1);
    if others == 0 {
        return;
    }
    apic::nmi_others();
    // Wait (at most 100 ms) for them to halt, so their output does not mix with ours.
    for _ in 0..1000 {
        if STOPPED.load(Ordering::SeqCst) >= others {
            break;
        }
        timer::udelay(100);
    }
}

/// For the NMI handler: true if another CPU called `stop_others`, so this NMI means
/// "halt now" (then call `stopped_halt`).
pub fn nmi_stop_requested() -> bool {
    let s = STOPPER.load(Ordering::SeqCst);
    s != NO_STOPPER && s != crate::arch::cpu::current_id()
}

/// Halt this CPU for good, counted as stopped for `stop_others`.
pub fn stopped_halt() -> ! {
    STOPPED.fetch_add(1, Ordering::SeqCst);
    x86::halt_forever()
}
