//! Scheduling mechanism: which vCPU each CPU runs, the context switch, idling, and what
//! happens when a domain stops.
//!
//! Every CPU enters guests through `run_loop` (the boot CPU after building dom0, the
//! others from their bring-up). A vCPU's context lives in `Vcpu::regs`/`fpu` while it is
//! not running and in the CPU's guest frame (`CpuInfo::guest_regs`) and registers while
//! it is. On the way back to a guest (`exit`), the CPU keeps its vCPU, or saves it and
//! loads another one, or idles with interrupts on and no lock held until one is runnable.
//!
//! Guest timers: CPU 0 is the timer CPU; its deadline is the earliest guest timer of any
//! vCPU (and the 10 ms tick), and it wakes vCPUs wherever they are. Every CPU running a
//! guest ticks every 10 ms for time slices.
//!
//! Which vCPU to run is `pick`'s decision: round-robin among runnable vCPUs allowed on
//! this CPU (interim policy; weights and caps arrive with `hv_core::sched`).

use crate::arch::percpu::{self, Regs, MAX_CPUS};
use crate::arch::{power, x86};
use crate::domain::{self, DomId, DomainTable, RunState, Shutdown, DOMAINS};
use crate::shinfo::SharedInfo;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Length of a time slice.
pub const SLICE_NS: u64 = 30_000_000;
/// Tick while a guest runs (time slices) and on the timer CPU.
pub const TICK_NS: u64 = 10_000_000;
/// IPI vector that makes a CPU re-examine its vCPU (event check).
pub const VECTOR_KICK: u8 = 0xf1;

/// When the running vCPU's slice ends, per CPU.
static SLICE_END: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Round-robin cursor of `pick`, per CPU.
static CURSOR: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
/// Set when a CPU must reconsider what it runs (slice over, a vCPU woke for it, its
/// vCPU's domain was paused); cleared by the slow path of `exit`.
static NEED_RESCHED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Set when a guest timer changed, so the timer CPU re-arms on its way out.
static TIMER_DIRTY: AtomicBool = AtomicBool::new(false);

/// Ask CPU `cpu` to reconsider what it runs (and kick it if it is another CPU).
pub fn resched(cpu: usize) {
    if let Some(f) = NEED_RESCHED.get(cpu) {
        f.store(true, Ordering::Release);
    }
    if cpu != this_cpu() {
        crate::smp::send_ipi(cpu, VECTOR_KICK);
    }
}

/// A guest timer changed: the timer CPU (0) must re-arm.
pub fn timer_changed() {
    TIMER_DIRTY.store(true, Ordering::Release);
    if this_cpu() != 0 {
        crate::smp::send_ipi(0, VECTOR_KICK);
    }
}

fn this_cpu() -> usize {
    crate::arch::cpu::current_id() as usize
}

/// What this CPU runs now.
fn current() -> Option<(DomId, u32)> {
    // SAFETY: `this_cpu` is this CPU's CpuInfo; `current` is only written by this CPU.
    domain::unpack_current(unsafe { (*percpu::this_cpu()).current })
}

fn set_current(cur: Option<(DomId, u32)>) {
    let v = cur
        .map(|(d, v)| domain::pack_current(d, v))
        .unwrap_or(u64::MAX);
    // SAFETY: as `current`.
    unsafe { (*percpu::this_cpu()).current = v };
}

/// Whether vCPU `vi` of `d` has work: runnable, or blocked with an event or poll hit.
fn has_work(d: &mut domain::Domain, vi: usize) -> bool {
    if d.shutdown.is_some() || d.paused {
        return false;
    }
    let sh = SharedInfo::new(d.shared_info_mfn);
    let Some(v) = d.vcpus.get_mut(vi) else {
        return false;
    };
    match v.state {
        RunState::Runnable => true,
        RunState::Down => false,
        RunState::Blocked => {
            let polling = !v.poll_ports.is_empty() || v.poll_deadline != 0;
            let woken = if polling {
                v.poll_ports.iter().any(|&p| sh.is_pending(p))
            } else {
                sh.upcall_pending(v.id) && !sh.upcall_mask(v.id)
            };
            if woken {
                v.state = RunState::Runnable;
                v.poll_ports.clear();
                v.poll_deadline = 0;
            }
            woken
        }
    }
}

/// The interim policy: the next runnable vCPU allowed on `cpu` and not running
/// elsewhere, round-robin from this CPU's cursor; `prefer` (the current one) is kept
/// if nothing else waits.
fn pick(t: &mut DomainTable, cpu: usize, prefer: Option<(DomId, u32)>) -> Option<(DomId, u32)> {
    let mut cands: heapless::Vec<(DomId, u32), 64> = heapless::Vec::new();
    for d in t.doms.iter_mut() {
        for vi in 0..d.vcpus.len() {
            let free = d.vcpus.get(vi).is_some_and(|v| {
                (v.running_on.is_none() || v.running_on == Some(cpu))
                    && v.affinity & (1 << cpu) != 0
            });
            if free && has_work(d, vi) {
                let _ = cands.push((d.id, vi as u32));
            }
        }
    }
    if cands.is_empty() {
        return None;
    }
    let start = CURSOR
        .get(cpu)
        .map(|c| c.fetch_add(1, Ordering::Relaxed))
        .unwrap_or(0);
    let others: heapless::Vec<(DomId, u32), 64> = cands
        .iter()
        .copied()
        .filter(|c| Some(*c) != prefer)
        .collect();
    if others.is_empty() {
        return prefer;
    }
    others.get(start % others.len()).copied()
}

/// Save the context of vCPU (dom, vi) running on this CPU from `frame`.
fn save(t: &mut DomainTable, dom: DomId, vi: u32, frame: &Regs) {
    let Some(d) = t.get(dom) else { return };
    let Some(v) = d.vcpus.get_mut(vi as usize) else {
        return;
    };
    v.regs = *frame;
    v.run_ns = v
        .run_ns
        .saturating_add(crate::events::now_ns().saturating_sub(v.run_start));
    // SAFETY: `fpu` is a 512-byte, 16-byte-aligned area owned by this vCPU; fxsave64
    // writes exactly that. CR0.TS is cleared first so it cannot fault.
    unsafe {
        x86::clts();
        core::arch::asm!("fxsave64 [{}]", in(reg) v.fpu.0.as_mut_ptr(), options(nostack));
    }
    v.running_on = None;
}

/// Load vCPU (dom, vi) onto this CPU: registers into `frame`, FPU, address space, GDT.
fn load(t: &mut DomainTable, dom: DomId, vi: u32, frame: &mut Regs) {
    let cpu = this_cpu();
    let Some(d) = t.get(dom) else { return };
    let sh = SharedInfo::new(d.shared_info_mfn);
    let Some(v) = d.vcpus.get_mut(vi as usize) else {
        return;
    };
    *frame = v.regs;
    // SAFETY: as in `save`; fxrstor64 reads the vCPU's own saved (or initial) area,
    // whose reserved MXCSR bits are kept clear by fxsave and the initial state.
    unsafe {
        x86::clts();
        core::arch::asm!("fxrstor64 [{}]", in(reg) v.fpu.0.as_ptr(), options(nostack));
    }
    if v.fpu_ts {
        x86::stts();
    }
    v.running_on = Some(cpu);
    v.run_start = crate::events::now_ns();
    crate::pv::load_mode(v);
    // Guest user mappings are global: a new address space on this CPU needs them gone.
    crate::mm::flush_local_all();
    crate::desc::load_guest_gdt(v);
    crate::time::publish_vcpu_time(&sh, v.id);
    set_current(Some((dom, vi)));
    if let Some(s) = SLICE_END.get(cpu) {
        s.store(crate::events::now_ns() + SLICE_NS, Ordering::Relaxed);
    }
}

/// Make vCPU `vi` of `d` runnable and make sure some CPU will run it soon.
pub fn wake(d: &mut domain::Domain, vi: usize) {
    let Some(v) = d.vcpus.get_mut(vi) else { return };
    if v.state == RunState::Blocked {
        v.state = RunState::Runnable;
        v.poll_ports.clear();
        v.poll_deadline = 0;
    }
    let me = this_cpu();
    match v.running_on {
        Some(cpu) if cpu != me => {
            // Running elsewhere: make that CPU look at its pending events now.
            crate::smp::send_ipi(cpu, VECTOR_KICK);
        }
        Some(_) => {}
        None => {
            // Kick an idle CPU it may run on; else this one, if allowed, reconsiders.
            let affinity = v.affinity;
            for cpu in 0..MAX_CPUS {
                if cpu != me
                    && affinity & (1 << cpu) != 0
                    && crate::smp::is_online(cpu)
                    && cpu_idle(cpu)
                {
                    resched(cpu);
                    return;
                }
            }
            if affinity & (1 << me) != 0 {
                resched(me);
            }
        }
    }
}

fn cpu_idle(cpu: usize) -> bool {
    // SAFETY: reading another CPU's `current` word; a stale value only costs a spurious
    // or missing kick, which the tick repairs.
    unsafe { core::ptr::read_volatile(&(*percpu::cpu_info_ptr(cpu)).current) == u64::MAX }
}

/// Enter the run loop on this CPU (never returns): run whatever is runnable, idle
/// otherwise. The boot CPU calls this after building dom0; the others after bring-up.
pub fn run_loop() -> ! {
    let frame = percpu::this_cpu_guest_frame();
    set_current(None);
    // The 10 ms base tick on every CPU (time slices, and guest timers on CPU 0).
    crate::irq::start_tick();
    loop {
        let cpu = this_cpu();
        {
            let mut doms = domain::lock();
            if let Some((dom, vi)) = pick(&mut doms, cpu, None) {
                // SAFETY: `frame` is this CPU's guest frame; no guest runs on this CPU
                // now (we are idle), so nothing else uses it.
                let f = unsafe { &mut *frame };
                load(&mut doms, dom, vi, f);
                if let Some(d) = doms.get(dom) {
                    crate::pv::deliver_events(d, vi as usize, f);
                }
                arm(&mut doms, cpu);
                crate::pv::sanitise(f);
                drop(doms);
                // SAFETY: the frame holds the loaded vCPU's complete, sanitised context;
                // this idle stack is abandoned (reset on the next entry).
                unsafe { crate::arch::entry::resume(frame) }
            }
            arm(&mut doms, cpu);
        }
        idle_wait();
    }
}

/// Wait for an interrupt with no lock held. `sti; hlt` cannot lose a wake-up:
/// interrupts are taken only once `hlt` has started.
fn idle_wait() {
    // SAFETY: interrupt handlers run on this stack below us and return; the idle path is
    // the one place in hypervisor context where interrupts are enabled.
    unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}

/// Program this CPU's timer: the slice end or tick while a guest runs; on CPU 0 also
/// the earliest guest timer anywhere.
fn arm(t: &mut DomainTable, cpu: usize) {
    let now = crate::events::now_ns();
    let mut next = u64::MAX;
    if current().is_some() {
        next = now + TICK_NS;
    }
    if cpu == 0 {
        next = next.min(now + TICK_NS);
        for d in t.doms.iter() {
            for v in d.vcpus.iter() {
                for dl in [v.timer_deadline, v.poll_deadline] {
                    if dl != 0 {
                        next = next.min(dl);
                    }
                }
            }
        }
    }
    if next != u64::MAX {
        crate::arch::timer::set_deadline(next.max(now + 50_000));
    }
}

/// The way back to the guest (`pv::finish`): keep the current vCPU, switch, or idle.
/// Returns the frame to resume (this CPU's guest frame).
pub fn exit(domid: DomId, vid: u32, regs: &mut Regs, block: bool) -> *mut Regs {
    let cpu = this_cpu();
    let mut doms = domain::lock();
    // Fast path: the vCPU goes on running here.
    if !block
        && !NEED_RESCHED
            .get(cpu)
            .is_some_and(|f| f.load(Ordering::Acquire))
    {
        if let Some(d) = doms.get(domid) {
            let runnable = d
                .vcpus
                .get(vid as usize)
                .is_some_and(|v| v.state == RunState::Runnable);
            if d.shutdown.is_none() && !d.paused && runnable {
                crate::pv::deliver_events(d, vid as usize, regs);
                if d.shutdown.is_none() {
                    if cpu == 0 && TIMER_DIRTY.swap(false, Ordering::AcqRel) {
                        arm(&mut doms, cpu);
                    }
                    crate::pv::sanitise(regs);
                    return regs as *mut Regs;
                }
            }
        }
    }
    if let Some(f) = NEED_RESCHED.get(cpu) {
        f.store(false, Ordering::Release);
    }
    // Stop the domain if it asked to or was crashed.
    let stopped = doms.get(domid).is_none_or(|d| d.shutdown.is_some());
    if stopped {
        drop(doms);
        domain_stopped(domid, regs);
        doms = domain::lock();
    } else if block {
        if let Some(v) = doms.get(domid).and_then(|d| d.vcpus.get_mut(vid as usize)) {
            v.state = RunState::Blocked;
        }
    }
    loop {
        let cur = current();
        let slice_over = SLICE_END
            .get(cpu)
            .is_some_and(|s| crate::events::now_ns() >= s.load(Ordering::Relaxed));
        let keep = cur.filter(|&(d, v)| doms.get(d).is_some_and(|dd| has_work(dd, v as usize)));
        let next = if keep.is_some() && !slice_over {
            keep
        } else {
            pick(&mut doms, cpu, keep)
        };
        if next != cur {
            if let Some((d, v)) = cur {
                save(&mut doms, d, v, regs);
            }
            set_current(None);
            if let Some((d, v)) = next {
                load(&mut doms, d, v, regs);
            }
        } else if let Some(s) = SLICE_END.get(cpu) {
            if slice_over {
                s.store(crate::events::now_ns() + SLICE_NS, Ordering::Relaxed);
            }
        }
        if let Some((d, v)) = next {
            let Some(dd) = doms.get(d) else { continue };
            crate::pv::deliver_events(dd, v as usize, regs);
            if dd.shutdown.is_some() {
                drop(doms);
                domain_stopped(d, regs);
                doms = domain::lock();
                continue;
            }
            arm(&mut doms, cpu);
            crate::pv::sanitise(regs);
            return regs as *mut Regs;
        }
        // Nothing to run here: idle with no lock held, then look again.
        arm(&mut doms, cpu);
        drop(doms);
        idle_wait();
        doms = domain::lock();
    }
}

/// The timer interrupt: on CPU 0, fire every due guest timer (waking vCPUs anywhere);
/// dom0's console input raises VIRQ_CONSOLE.
pub fn timer_fired() {
    let cpu = this_cpu();
    let now = crate::events::now_ns();
    // In an interrupt handler: never wait for the lock. Whoever holds it re-arms this
    // CPU's timer on its way out (`arm`), so a skipped tick is only late, not lost.
    // Slice over: reconsider at the next way out.
    if current().is_some()
        && SLICE_END
            .get(cpu)
            .is_some_and(|s| now >= s.load(Ordering::Relaxed))
    {
        if let Some(f) = NEED_RESCHED.get(cpu) {
            f.store(true, Ordering::Release);
        }
    }
    let Some(mut doms) = DOMAINS.try_lock() else {
        return;
    };
    if cpu == 0 {
        for d in doms.doms.iter_mut() {
            crate::events::fire_timers(d, now);
            if console_virq_port(d).is_some() && crate::console::input_ready() {
                crate::events::send_virq(d, 0, xen_abi::xen::VIRQ_CONSOLE);
            }
        }
    }
    arm(&mut doms, cpu);
}

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

/// Domain `domid` stopped (shutdown or crash). For dom0, the machine follows it.
pub fn domain_stopped(domid: DomId, regs: &mut Regs) {
    let reason = domain::lock().get(domid).and_then(|d| d.shutdown);
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
    // Another domain: its vCPUs stop running; the toolstack decides what happens next.
    let mut doms = domain::lock();
    if let Some(d) = doms.get(domid) {
        for v in d.vcpus.iter_mut() {
            if v.state != RunState::Down {
                v.state = RunState::Blocked;
            }
        }
        log::info!("d{domid}: stopped ({reason:?})");
    }
    if let Some(d0) = doms.get(0) {
        crate::events::send_virq(d0, 0, xen_abi::xen::VIRQ_DOM_EXC);
    }
}
