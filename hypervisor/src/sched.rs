//! Scheduling: running a vCPU, blocking it until it has work, and what happens when a
//! domain stops.
//!
//! This first scheduler runs one vCPU per CPU (dom0's vCPU 0 on the boot CPU). A
//! blocked vCPU idles its CPU in place (`sti; hlt`) with no lock held; interrupts wake
//! it (the timer fires its single-shot timer or poll timeout as a VIRQ).

use crate::arch::percpu::{self, Regs};
use crate::arch::{power, x86};
use crate::domain::{self, DomId, RunState, Shutdown, DOMAINS};
use crate::shinfo::SharedInfo;

/// Enter vCPU `vid` of domain `domid` on this CPU for the first time.
pub fn start(domid: DomId, vid: u32) -> ! {
    let frame = percpu::this_cpu_guest_frame();
    {
        let mut doms = DOMAINS.lock();
        let Some(d) = doms.get(domid) else {
            power::off(power::Reason::HypervisorFailure)
        };
        let Some(v) = d.vcpus.get_mut(vid as usize) else {
            power::off(power::Reason::HypervisorFailure)
        };
        v.state = RunState::Runnable;
        // SAFETY: `frame` is this CPU's guest frame in its CpuInfo; nothing else uses it
        // until we iret from it below.
        unsafe {
            *frame = v.regs;
            (*percpu::this_cpu()).current = domain::pack_current(domid, vid);
        }
        crate::pv::load_mode(v);
        arm_timer(d);
        // SAFETY: as above.
        crate::pv::sanitise(unsafe { &mut *frame });
    }
    log::info!("d{domid}v{vid}: starting");
    // SAFETY: the frame holds the vCPU's complete, sanitised initial context; the boot
    // stack we leave is never used again.
    unsafe { crate::arch::entry::resume(frame) }
}

/// Block vCPU `vid` of `domid` until it has an event (or its poll ends).
pub fn block(domid: DomId, vid: u32) {
    loop {
        {
            let mut doms = DOMAINS.lock();
            let Some(d) = doms.get(domid) else { return };
            if d.shutdown.is_some() {
                return;
            }
            let sh = SharedInfo::new(d.shared_info_mfn);
            let Some(v) = d.vcpus.get_mut(vid as usize) else {
                return;
            };
            let polling = !v.poll_ports.is_empty() || v.poll_deadline != 0;
            let woken = if polling {
                v.state == RunState::Runnable || v.poll_ports.iter().any(|&p| sh.is_pending(p))
            } else {
                v.state == RunState::Runnable || (sh.upcall_pending(v.id) && !sh.upcall_mask(v.id))
            };
            if woken {
                v.state = RunState::Runnable;
                v.poll_ports.clear();
                v.poll_deadline = 0;
                return;
            }
            v.state = RunState::Blocked;
            arm_timer(d);
        }
        // Wait for an interrupt with no lock held. `sti; hlt` cannot lose a wake-up:
        // interrupts are taken only after the `hlt` starts.
        // SAFETY: the hypervisor's interrupt handlers run on this stack below us and
        // return; enabling interrupts here is the one place the idle path allows them.
        unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
    }
}

/// Program this CPU's timer for the earliest deadline of `d`'s vCPUs.
pub fn arm_timer(d: &domain::Domain) {
    // dom0 with VIRQ_CONSOLE bound: poll the serial line every 10 ms.
    let console_poll = console_virq_port(d).map(|_| crate::events::now_ns() + CONSOLE_POLL_NS);
    let next = d
        .vcpus
        .iter()
        .flat_map(|v| [v.timer_deadline, v.poll_deadline])
        .filter(|&t| t != 0)
        .chain(console_poll)
        .min();
    if let Some(t) = next {
        crate::arch::timer::set_deadline(t);
    }
}

const CONSOLE_POLL_NS: u64 = 10_000_000;

/// dom0's VIRQ_CONSOLE port, if bound.
fn console_virq_port(d: &domain::Domain) -> Option<u32> {
    if !d.privileged {
        return None;
    }
    d.vcpus
        .first()
        .and_then(|v| {
            v.virq_port
                .get(xen_abi::xen::VIRQ_CONSOLE as usize)
                .copied()
        })
        .filter(|&p| p != 0)
}

/// Called when a timer was set; the deadline is programmed on the way back to the guest.
pub fn timer_changed() {}

/// The timer interrupt on this CPU: fire the due timers of the domain it runs.
pub fn timer_fired() {
    // SAFETY: `this_cpu` is this CPU's CpuInfo; `current` is only written by this CPU.
    let cur = unsafe { (*percpu::this_cpu()).current };
    let Some((domid, _)) = domain::unpack_current(cur) else {
        return;
    };
    let now = crate::events::now_ns();
    let mut doms = DOMAINS.lock();
    if let Some(d) = doms.get(domid) {
        crate::events::fire_timers(d, now);
        if console_virq_port(d).is_some() && crate::console::input_ready() {
            crate::events::send_virq(d, 0, xen_abi::xen::VIRQ_CONSOLE);
        }
        arm_timer(d);
    }
}

/// Domain `domid` stopped (shutdown or crash). For dom0, the machine follows it.
pub fn domain_stopped(domid: DomId, regs: &mut Regs) -> ! {
    let reason = DOMAINS.lock().get(domid).and_then(|d| d.shutdown);
    if domid == 0 {
        let (what, r) = match reason {
            Some(Shutdown::Guest(0)) => ("halted", power::Reason::Poweroff),
            Some(Shutdown::Guest(1)) => ("rebooted", power::Reason::Reboot),
            Some(Shutdown::Guest(3)) | Some(Shutdown::Crashed) => ("crashed", power::Reason::Crash),
            Some(Shutdown::Guest(_)) => ("shut down", power::Reason::Poweroff),
            None => ("stopped", power::Reason::Poweroff),
        };
        crate::println!(
            "hypervisor: dom0 {what}: {}",
            match r {
                power::Reason::Reboot => "rebooting machine",
                power::Reason::Crash => "powering off (crash)",
                _ => "powering off",
            }
        );
        if r == power::Reason::Crash {
            crate::traps::dump_regs(regs);
        }
        crate::smp::stop_others();
        power::off(r);
    }
    log::info!("d{domid}: stopped ({reason:?}); nothing else to run on this CPU");
    x86::halt_forever()
}
