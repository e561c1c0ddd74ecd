//! The boot CPU's path from the trampoline to the first guest.

use crate::arch::{self, power};
use crate::{cmdline, mem, multiboot};
use core::fmt::Write;
use log::{info, warn};

/// The boot information, copied out of the loader's structures.
pub static BOOT_INFO: spin::Once<multiboot::BootInfo> = spin::Once::new();

/// The boot information (parsed before anything else runs).
pub fn boot_info() -> &'static multiboot::BootInfo {
    match BOOT_INFO.get() {
        Some(b) => b,
        None => power::off(power::Reason::HypervisorFailure),
    }
}

/// The hypervisor's own command line (without the image name).
pub fn hv_cmdline() -> &'static str {
    cmdline::skip_image_name(&boot_info().cmdline)
}

/// Entered from `boot` on the boot stack, in long mode on the boot page tables.
pub fn start(magic: u32, info: u32) -> ! {
    crate::console::init();
    crate::println!(
        "\n hypervisor {} -- a Xen 4.17-compatible PV hypervisor",
        env!("CARGO_PKG_VERSION")
    );
    let reader = |pa: u64, buf: &mut [u8]| {
        for (i, b) in buf.iter_mut().enumerate() {
            let a = pa.wrapping_add(i as u64);
            *b = if a < mem::MAX_PHYS {
                // SAFETY: the direct map covers all of the first 4 GiB (boot page
                // tables); reading loader structures there has no side effects.
                unsafe { core::ptr::read_volatile(mem::phys_to_virt(a) as *const u8) }
            } else {
                0
            };
        }
    };
    let bi = match multiboot::parse(magic, u64::from(info), &reader) {
        Ok(bi) => bi,
        Err(e) => {
            crate::println!("hypervisor: cannot boot: bad loader information: {e:?}");
            power::off(power::Reason::HypervisorFailure);
        }
    };
    let bi = BOOT_INFO.call_once(|| bi);
    let opts = cmdline::parse(cmdline::skip_image_name(&bi.cmdline), |w| {
        crate::println!("hypervisor: unknown option '{w}' ignored")
    });
    crate::console::init_log(opts.log_level);
    crate::sched::IDLE_POLL_NS.store(
        opts.idle_poll_us * 1000,
        core::sync::atomic::Ordering::Relaxed,
    );
    info!(
        "loader: {:?} {}, command line '{}'",
        bi.loader, bi.loader_name, bi.cmdline
    );
    for r in bi.memory.iter() {
        info!(
            "memory: {:#014x}-{:#014x} type {}",
            r.start,
            r.start + r.len,
            r.kind
        );
    }
    for (i, m) in bi.modules.iter().enumerate() {
        info!("module {i}: {:#x}-{:#x} '{}'", m.start, m.end, m.cmdline);
    }
    mem::init(bi);
    if !crate::heap::init() {
        crate::println!("hypervisor: cannot boot: no memory for the heap");
        power::off(power::Reason::HypervisorFailure);
    }
    let (free, total) = mem::stats();
    info!(
        "frames: {} MiB usable, {} MiB free",
        total / 256,
        free / 256
    );
    let max_mfn = bi
        .memory
        .iter()
        .filter(|r| r.kind == multiboot::MEM_AVAILABLE)
        .map(|r| (r.start.saturating_add(r.len).min(mem::MAX_PHYS) / 4096).saturating_sub(1))
        .max()
        .unwrap_or(0);
    if let Err(e) = crate::paging::init(max_mfn).and_then(|()| crate::mm::init(max_mfn)) {
        crate::println!("hypervisor: cannot boot: {e}");
        power::off(power::Reason::HypervisorFailure);
    }
    info!("frame table and M2P for {} frames", max_mfn + 1);

    arch::entry::init_idt();
    crate::smp::init_boot_cpu();
    // SMP: bring up the other CPUs (ACPI MADT) and park them in their idle loops.
    crate::smp::start_aps(&opts);
    let _ = writeln!(crate::console::Console, "hypervisor: boot CPU up");
    if opts.selftest_fault {
        // `selftest=fault`: prove the fatal path (registers, activity, all CPUs stopped,
        // failure status) on demand.
        crate::traps::doing(&"the boot self-test (selftest=fault)");
        // SAFETY: `ud2` raises #UD in the hypervisor on purpose; the handler never returns.
        unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
    }
    if bi.modules.is_empty() {
        warn!("no dom0 kernel module given: nothing to run");
        power::off(power::Reason::HypervisorFailure);
    }
    crate::dom0::build(bi, &opts)
}

/// The panic path: print, stop everything, exit QEMU with a failure status.
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    let cpu = crate::arch::cpu::current_id();
    let _ = writeln!(
        crate::console::PanicConsole,
        "\n*** HYPERVISOR PANIC on CPU{cpu}: {info}"
    );
    crate::smp::stop_others();
    power::off(power::Reason::HypervisorFailure)
}
