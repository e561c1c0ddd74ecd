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
//! vCPU (and the 10 ms tick), and it wakes vCPUs wherever they are. Every CPU ticks
//! every 10 ms (the policy's tick); a running vCPU's slice end is armed too.
//!
//! Which vCPU to run is the policy's decision: one `hv_core::sched::Scheduler` for the
//! host (credit1: weights, caps, hard affinity, boost), behind `POLICY`. The mechanism
//! tells it everything that changes who may run (domains and vCPUs coming and going,
//! pause, block, wake, parameters, affinity), ticks it on every CPU's 10 ms tick, calls
//! `schedule` where a CPU must reconsider what it runs, and sends a scheduling IPI
//! (`resched`) to every CPU in the masks it returns. `RunState` stays the mechanism's
//! record; a decision the mechanism cannot carry out (a vCPU it has down, blocked without
//! work, paused or gone) is reported back to the policy and the CPU decides again.

use crate::arch::percpu::{self, Regs, MAX_CPUS};
use crate::arch::{power, x86};
use crate::domain::{self, DomId, DomainTable, RunState, Shutdown, DOMAINS};
use crate::shinfo::SharedInfo;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use hv_core::sched::{CpuMask, PollWait, Scheduler, VcpuRef, VcpuState};
use xen_abi::errno::Errno;

/// Tick while a guest runs (time slices) and on the timer CPU.
pub const TICK_NS: u64 = 10_000_000;
/// IPI vector that makes a CPU re-examine its vCPU (event check).
pub const VECTOR_KICK: u8 = 0xf1;

/// When the running vCPU's slice ends, per CPU.
static SLICE_END: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// When the policy is next ticked, per CPU.
static TICK_AT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
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

/// The scheduling policy of the whole host. Lock order: right after `DOMAINS`, and only
/// ever taken while `DOMAINS` is held, so it is never contended (interrupt handlers that
/// got `DOMAINS` with `try_lock` may take it). Created by [`init`] once every CPU is
/// online (the other CPUs wait for it before they schedule); on first use otherwise.
static POLICY: spin::Mutex<Option<Scheduler>> = spin::Mutex::new(None);

/// Set once the policy exists for every CPU brought up (`init`).
static READY: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Create the policy for CPUs `0..nr_cpus`: the boot CPU, once every other CPU is online
/// and before any of them schedules (they wait for [`ready`]). Created lazily on first
/// use it would count only the CPUs up by then.
pub fn init(nr_cpus: u32) {
    *POLICY.lock() = Some(Scheduler::new(nr_cpus));
    READY.store(true, Ordering::Release);
}

/// Whether [`init`] ran.
pub fn ready() -> bool {
    READY.load(Ordering::Acquire)
}

/// Run `f` on the policy. The caller holds `DOMAINS`.
fn with_policy<R>(f: impl FnOnce(&mut Scheduler) -> R) -> R {
    let mut g = POLICY.lock();
    let s = g.get_or_insert_with(|| Scheduler::new(crate::smp::online_count()));
    f(s)
}

/// Send a scheduling IPI to every CPU of `mask` (this one only gets the flag).
fn kick(mask: CpuMask) {
    for cpu in mask.iter() {
        let cpu = cpu as usize;
        if crate::smp::is_online(cpu) {
            resched(cpu);
        }
    }
}

fn vref(dom: DomId, vi: usize) -> VcpuRef {
    VcpuRef {
        dom,
        vcpu: vi as u32,
    }
}

/// The CPU vCPU `vi` of `dom` runs on, or last ran on (Xen's `v->processor`).
pub fn vcpu_cpu(dom: DomId, vi: usize) -> Option<u32> {
    with_policy(|s| s.vcpu_info(vref(dom, vi)).map(|i| i.cpu))
}

/// Domain `d` was just added to the table (dom0's build, `createdomain`): the policy
/// learns it, its vCPUs (those not down are brought up) and whether it is paused.
pub fn domain_created(d: &domain::Domain) {
    let kicks = with_policy(|s| {
        let mut kicks = CpuMask::EMPTY;
        if s.add_domain(d.id).is_err() {
            return kicks;
        }
        if d.paused {
            kicks = kicks.union(s.pause(d.id).unwrap_or_default());
        }
        for (vi, v) in d.vcpus.iter().enumerate() {
            let r = vref(d.id, vi);
            if s.add_vcpu(r, CpuMask(v.affinity)).is_ok() && v.state != RunState::Down {
                kicks = kicks.union(s.vcpu_up(r).unwrap_or_default());
            }
        }
        kicks
    });
    kick(kicks);
}

/// Domain `dom` left the table (destroyed; none of its vCPUs runs anywhere).
pub fn domain_destroyed(dom: DomId) {
    kick(with_policy(|s| s.remove_domain(dom)).unwrap_or_default());
}

/// `pause_count` went from 0 to 1: none of the domain's vCPUs may run.
pub fn pause(dom: DomId) {
    kick(with_policy(|s| s.pause(dom)).unwrap_or_default());
}

/// `pause_count` went back to 0.
pub fn unpause(dom: DomId) {
    kick(with_policy(|s| s.unpause(dom)).unwrap_or_default());
}

/// vCPU `vi` of `d` came online (`setvcpucontext` with VGCF_online, `VCPUOP_up`): its
/// `RunState` is no longer `Down`.
pub fn vcpu_online(d: &domain::Domain, vi: usize) {
    let r = vref(d.id, vi);
    kick(with_policy(|s| s.vcpu_up(r)).unwrap_or_default());
}

/// vCPU `vi` of `d` went down (`VCPUOP_down`): its `RunState` is `Down`.
pub fn vcpu_offline(d: &domain::Domain, vi: usize) {
    let r = vref(d.id, vi);
    kick(with_policy(|s| s.vcpu_down(r)).unwrap_or_default());
}

/// `xl sched-credit -w weight -c cap`, already decoded (no "unchanged" values left).
/// Fails (changing nothing) if the policy refuses them.
pub fn set_params(dom: DomId, weight: u32, cap: u32) -> Result<(), Errno> {
    kick(with_policy(|s| s.set_params(dom, weight, cap))?);
    Ok(())
}

/// `xl vcpu-pin`: new hard affinity of vCPU `vi` (fails, changing nothing, if no CPU
/// of `mask` is online).
pub fn set_affinity(dom: DomId, vi: usize, mask: u64) -> Result<(), Errno> {
    kick(with_policy(|s| {
        s.set_affinity(vref(dom, vi), CpuMask(mask))
    })?);
    Ok(())
}

/// Whether vCPU `vi` of `d` has work: runnable, or blocked with an event or poll hit
/// (which makes it runnable in `RunState`; the caller tells the policy).
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
            let woken = event_arrived(&sh, v);
            if woken {
                v.state = RunState::Runnable;
                v.poll = PollWait::Off;
                v.poll_deadline = 0;
            }
            woken
        }
    }
}

/// Whether what a blocked (or blocking) vCPU waits for is there. `SCHEDOP_block`: an
/// unmasked upcall. `SCHEDOP_poll`: its poll ended before it blocked (`wake`), or its
/// one port is pending; a poll of any port ends by `wake` alone (a port that *becomes*
/// pending, Xen's `evtchn_check_pollers`), not by one pending from before.
fn event_arrived(sh: &SharedInfo, v: &domain::Vcpu) -> bool {
    match v.poll {
        PollWait::Off => sh.upcall_pending(v.id) && !sh.upcall_mask(v.id),
        PollWait::Woken => true,
        PollWait::Port(p) => sh.is_pending(p),
        PollWait::Any => false,
    }
}

/// Blocked vCPUs whose event arrived without a wake (a safety net: every event path
/// calls `wake`) become runnable, through the policy's `wake`.
fn promote(t: &mut DomainTable) {
    let mut kicks = CpuMask::EMPTY;
    for d in t.doms.iter_mut() {
        for vi in 0..d.vcpus.len() {
            let blocked = d
                .vcpus
                .get(vi)
                .is_some_and(|v| v.state == RunState::Blocked);
            if blocked && has_work(d, vi) {
                let r = vref(d.id, vi);
                kicks = kicks.union(with_policy(|s| s.wake(r)).unwrap_or_default());
            }
        }
    }
    kick(kicks);
}

/// What the mechanism must tell the policy about a vCPU it decided to run but cannot.
enum Refuse {
    Block,
    Down,
    Pause,
    Gone,
}

/// The policy's choice for `cpu` (and its slice), checked against the mechanism's
/// record: a vCPU that cannot run is reported (block, down, pause, gone) and the CPU
/// decides again, each time with one vCPU fewer to choose from. Kicks the CPUs the
/// policy names.
fn decide(t: &mut DomainTable, cpu: usize) -> (Option<(DomId, u32)>, u64) {
    promote(t);
    let now = crate::events::now_ns();
    let mut kicks = CpuMask::EMPTY;
    let out = with_policy(|s| loop {
        let dec = s.schedule(cpu as u32, now);
        kicks = kicks.union(dec.kick);
        let Some(r) = dec.next else {
            break (None, 0);
        };
        let vi = r.vcpu as usize;
        let refuse = match t.get(r.dom) {
            None => Refuse::Gone,
            Some(d) => match d.vcpus.get(vi).map(|v| v.state) {
                None => Refuse::Gone,
                Some(_) if d.paused => Refuse::Pause,
                Some(_) if d.shutdown.is_some() => Refuse::Block,
                Some(RunState::Down) => Refuse::Down,
                Some(RunState::Blocked) if !has_work(d, vi) => Refuse::Block,
                Some(_) => break (Some((r.dom, r.vcpu)), dec.slice_ns),
            },
        };
        let more = match refuse {
            Refuse::Block => s.block(r),
            Refuse::Down => s.vcpu_down(r),
            Refuse::Pause => s.pause(r.dom),
            Refuse::Gone => s.remove_vcpu(r).or_else(|_| s.remove_domain(r.dom)),
        };
        kicks = kicks.union(more.unwrap_or_default());
    });
    kicks.0 &= !CpuMask::single(cpu as u32).0;
    kick(kicks);
    out
}

/// Start a slice of `slice_ns` on `cpu` (0: none, the tick alone reconsiders).
fn start_slice(cpu: usize, slice_ns: u64) {
    if let Some(s) = SLICE_END.get(cpu) {
        let end = if slice_ns == 0 {
            u64::MAX
        } else {
            crate::events::now_ns().saturating_add(slice_ns)
        };
        s.store(end, Ordering::Relaxed);
    }
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
}

/// An event or timer for vCPU `vi` of `d`: a blocked vCPU becomes runnable (through the
/// policy's `wake`, which kicks the CPU that will run it); one running on another CPU is
/// made to look at its events now.
pub fn wake(d: &mut domain::Domain, vi: usize) {
    let dom = d.id;
    let stopped = d.shutdown.is_some();
    let Some(v) = d.vcpus.get_mut(vi) else { return };
    let was = v.state;
    // A poll ends (Xen's `vcpu_unblock`), also one set up by a vCPU not blocked yet.
    v.poll = v.poll.wake(was == RunState::Blocked);
    if was == RunState::Blocked {
        v.state = RunState::Runnable;
        v.poll_deadline = 0;
    }
    match v.running_on {
        Some(cpu) if cpu != this_cpu() => {
            // Running elsewhere: make that CPU look at its pending events now.
            crate::smp::send_ipi(cpu, VECTOR_KICK);
        }
        // Running: the policy has it current, nothing to tell it.
        Some(_) => return,
        None => {}
    }
    if v.state != RunState::Runnable || stopped {
        return;
    }
    let r = vref(dom, vi);
    let kicks = with_policy(|s| {
        if was == RunState::Runnable
            && s.vcpu_info(r)
                .is_some_and(|i| i.state == VcpuState::Offline)
        {
            // Brought up (`VCPUOP_up`) by a caller that only set `RunState`.
            s.vcpu_up(r)
        } else {
            s.wake(r)
        }
    });
    kick(kicks.unwrap_or_default());
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
            if let Some(f) = NEED_RESCHED.get(cpu) {
                f.store(false, Ordering::Release);
            }
            crate::events::deliver_pending_pirqs(&mut doms);
            deferred_timer_work(&mut doms, cpu);
            let (next, slice_ns) = decide(&mut doms, cpu);
            if let Some((dom, vi)) = next {
                // SAFETY: `frame` is this CPU's guest frame; no guest runs on this CPU
                // now (we are idle), so nothing else uses it.
                let f = unsafe { &mut *frame };
                load(&mut doms, dom, vi, f);
                start_slice(cpu, slice_ns);
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
    let cpu = this_cpu();
    let poll = IDLE_POLL_NS.load(Ordering::Relaxed);
    if poll != 0 {
        if let Some(taken) = crate::irq::TAKEN.get(cpu) {
            let seen = taken.load(Ordering::Relaxed);
            let until = crate::arch::timer::now_ns() + poll;
            // SAFETY: as below: handlers run on this stack and return.
            unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
            while taken.load(Ordering::Relaxed) == seen && crate::arch::timer::now_ns() < until {
                core::hint::spin_loop();
            }
            // SAFETY: back to interrupts off before deciding.
            unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
            if taken.load(Ordering::Relaxed) != seen {
                return;
            }
        }
    }
    // SAFETY: interrupt handlers run on this stack below us and return; the idle path is
    // the one place in hypervisor context where interrupts are enabled.
    unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}

/// How long an idle CPU polls for an interrupt before it halts (0: halt at once), set
/// from `idle_poll_us=`. A device completion or an IPI that comes within the window is
/// taken without the halt and wake-up (and, under QEMU's `-icount sleep=off`, without
/// the clock jumping to the next timer deadline while the device works in real time).
pub static IDLE_POLL_NS: core::sync::atomic::AtomicU64 =
    core::sync::atomic::AtomicU64::new(200_000);

/// Program this CPU's timer: the slice end or tick while a guest runs; on CPU 0 also
/// the earliest guest timer anywhere.
fn arm(t: &mut DomainTable, cpu: usize) {
    let now = crate::events::now_ns();
    // The policy's tick is due at `TICK_AT`, not 10 ms from whenever this runs: a CPU
    // that passes here more often than every 10 ms (a guest blocking and waking fast)
    // would otherwise push its tick back for ever, and with it credit accounting,
    // guest timers and dom0's console input.
    let tick = TICK_AT
        .get(cpu)
        .map_or(now + TICK_NS, |t| t.load(Ordering::Relaxed))
        .min(now + TICK_NS);
    let mut next = u64::MAX;
    if current().is_some() {
        next = tick;
        if let Some(s) = SLICE_END.get(cpu) {
            next = next.min(s.load(Ordering::Relaxed));
        }
    }
    if cpu == 0 {
        next = next.min(tick);
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
    crate::events::deliver_pending_pirqs(&mut doms);
    deferred_timer_work(&mut doms, cpu);
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
        // SCHEDOP_block/poll: the vCPU blocks unless its event is already there.
        if let Some(d) = doms.get(domid) {
            let sh = SharedInfo::new(d.shared_info_mfn);
            if let Some(v) = d.vcpus.get_mut(vid as usize) {
                if event_arrived(&sh, v) {
                    v.poll = PollWait::Off;
                    v.poll_deadline = 0;
                } else {
                    v.state = RunState::Blocked;
                    let r = vref(domid, vid as usize);
                    let mut k = with_policy(|s| s.block(r)).unwrap_or_default();
                    k.0 &= !CpuMask::single(cpu as u32).0;
                    kick(k);
                }
            }
        }
    }
    loop {
        let cur = current();
        let (next, slice_ns) = decide(&mut doms, cpu);
        if next != cur {
            if let Some((d, v)) = cur {
                save(&mut doms, d, v, regs);
            }
            set_current(None);
            if let Some((d, v)) = next {
                load(&mut doms, d, v, regs);
            }
        }
        start_slice(cpu, slice_ns);
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

/// The timer interrupt: the policy's 10 ms tick on every CPU (a reschedule here, IPIs
/// to the CPUs it names); on CPU 0, fire every due guest timer (waking vCPUs anywhere);
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
        // The lock is busy (perhaps held by this CPU's interrupted path): this CPU's next
        // pass through `exit` or the run loop does the work, so a tick is late by one
        // guest entry at most, never skipped. Skipping it starved everyone: under a
        // storm of hypercalls the lock is nearly always taken, and then no tick burnt
        // credit, no guest timer fired and dom0's console input never arrived.
        if let Some(p) = TIMER_PENDING.get(cpu) {
            p.store(true, Ordering::Release);
        }
        return;
    };
    timer_work(&mut doms, cpu, now);
}

/// Timer work an interrupt could not do because `DOMAINS` was taken, per CPU.
static TIMER_PENDING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Do this CPU's deferred timer work, if any (`DOMAINS` held). One atomic swap when
/// there is none: called on every way back to a guest.
fn deferred_timer_work(doms: &mut DomainTable, cpu: usize) {
    if TIMER_PENDING
        .get(cpu)
        .is_some_and(|p| p.swap(false, Ordering::AcqRel))
    {
        timer_work(doms, cpu, crate::events::now_ns());
    }
}

/// The timer's work with `DOMAINS` held: the policy's tick, guest timers and dom0's
/// console input (CPU 0), then the next deadline.
fn timer_work(doms: &mut DomainTable, cpu: usize, now: u64) {
    // The policy's 10 ms tick (credit burn, boost end, accounting); the timer may fire
    // more often (guest timers, short slices).
    if let Some(at) = TICK_AT.get(cpu) {
        if now >= at.load(Ordering::Relaxed) {
            at.store(now + TICK_NS, Ordering::Relaxed);
            let out = with_policy(|s| s.tick(cpu as u32, now));
            if out.resched {
                if let Some(f) = NEED_RESCHED.get(cpu) {
                    f.store(true, Ordering::Release);
                }
            }
            kick(out.kick);
        }
    }
    if cpu == 0 {
        for d in doms.doms.iter_mut() {
            crate::events::fire_timers(d, now);
            if console_virq_port(d).is_some() && crate::console::input_ready() {
                crate::events::send_virq(d, 0, xen_abi::xen::VIRQ_CONSOLE);
            }
        }
    }
    arm(doms, cpu);
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
        let n = d.vcpus.len();
        let mut kicks = CpuMask::EMPTY;
        with_policy(|s| {
            for vi in 0..n {
                kicks = kicks.union(s.block(vref(domid, vi)).unwrap_or_default());
            }
        });
        kick(kicks);
        log::info!("d{domid}: stopped ({reason:?})");
    }
    if let Some(d0) = doms.get(0) {
        crate::events::send_virq(d0, 0, xen_abi::xen::VIRQ_DOM_EXC);
    }
}
