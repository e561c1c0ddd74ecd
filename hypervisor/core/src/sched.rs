//! vCPU scheduling policy: a credit scheduler with Xen credit1's semantics.
//!
//! Pure and deterministic: the mechanism calls these functions with the time it read and
//! performs what they return (context switch, slice timer, IPIs). There is no clock and no
//! randomness in here, so a call sequence always gives the same decisions.
//!
//! # Model (Xen's `credit.c`, `xl sched-credit`)
//! - Each domain has a `weight` (1..=65535, default 256) and a `cap` (percent of one CPU,
//!   0 = none). As in credit1, the weight counts per *active* vCPU: every period
//!   (`PERIOD_NS`, 30 ms) `nr_cpus * PERIOD_NS` credits (1 credit = 1 ns of CPU) are shared
//!   among active vCPUs in proportion to their domain's weight, no vCPU earning more than one
//!   CPU (and a capped domain no more than its cap); what cannot be used goes to the others
//!   (water-filling, credit1's `credit_peak`/`credit_xtra`). Running burns credit 1:1.
//! - Priorities: `Boost` (just woken from blocking with credit left, until its first tick),
//!   `Under` (credit >= 0), `Over` (credit < 0). A CPU runs the best eligible vCPU: highest
//!   priority, then most credit (credit1: round robin within a priority; ordering by
//!   credit keeps shares accurate with several CPUs), then longest waiting. Credit bounds: below `-2*TSLICE_NS`
//!   is forgiven; a vCPU that is not runnable with more than `TSLICE_NS` stops earning and
//!   keeps half (credit1); a runnable one keeps at most `2*TSLICE_NS`. (credit1's tighter
//!   bounds on runnable vCPUs lose credit and skew shares towards equal.)
//! - Caps are a per-period budget (`cap * PERIOD_NS / 100` ns for the whole domain): when a
//!   domain has used it, its vCPUs are *parked* until the accounting that refills it; an
//!   overrun is carried over as debt. Slices of capped vCPUs end when the budget would.
//! - vCPUs run only on CPUs of their hard affinity (`xl vcpu-pin`). One queue for the
//!   whole machine (an O(vCPUs) scan per decision) stands in for credit1's per-CPU queues
//!   and work stealing, so no CPU idles while a vCPU that may run there waits.
//!
//! # How the mechanism drives it
//! Every operation that changes who may run returns a [`CpuMask`] of CPUs to send a
//! scheduling IPI to; on each of those CPUs (and on block/yield, on the slice timer, and
//! when [`Scheduler::tick`] says so) the mechanism calls [`Scheduler::schedule`] and
//! switches to `Decision::next` (`None` = the CPU's idle vCPU, which halts).
//!
//! Invariants (checked by `tests/sched_props.rs` after every step):
//! - S1: a vCPU is current on at most one CPU, and only on a CPU of its affinity.
//! - S2: a blocked, paused, offline or parked vCPU is not current after its CPU rescheduled.
//! - S3: once IPIs are delivered, no CPU is idle while an eligible vCPU that may run there
//!   waits (work conservation, within caps).
//! - S4: busy vCPUs get CPU in proportion to weight (water-filled), within 10%.
//! - S5: an operation that fails changes nothing.

extern crate alloc;

use alloc::vec::Vec;
use xen_abi::errno::{Errno, EEXIST, EINVAL, ESRCH};
use xen_abi::xen::DomId;

/// Scheduler tick: credit burn and boost expiry (credit1: 10 ms).
pub const TICK_NS: u64 = 10_000_000;
/// Default timeslice (credit1: 30 ms).
pub const TSLICE_NS: u64 = 30_000_000;
/// Accounting period (credit1: one timeslice, 30 ms).
pub const PERIOD_NS: u64 = 30_000_000;
/// Shortest slice handed to a capped vCPU whose budget is nearly spent.
pub const MIN_SLICE_NS: u64 = 100_000;
pub const DEFAULT_WEIGHT: u32 = 256;
pub const MIN_WEIGHT: u32 = 1;
pub const MAX_WEIGHT: u32 = 65535;
/// CPUs a [`CpuMask`] can name.
pub const MAX_CPUS: u32 = 64;

/// A vCPU: domain and vCPU number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VcpuRef {
    pub dom: DomId,
    pub vcpu: u32,
}

/// A set of CPUs `0..64` (affinity masks, CPUs to kick).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuMask(pub u64);

impl CpuMask {
    pub const EMPTY: CpuMask = CpuMask(0);

    /// CPUs `0..n`.
    pub fn first_n(n: u32) -> CpuMask {
        if n >= 64 {
            CpuMask(u64::MAX)
        } else {
            CpuMask((1u64 << n) - 1)
        }
    }

    /// `{cpu}`, or empty if `cpu` is not below 64.
    pub fn single(cpu: u32) -> CpuMask {
        CpuMask(1u64.checked_shl(cpu).unwrap_or(0))
    }

    pub fn contains(self, cpu: u32) -> bool {
        self.0 & CpuMask::single(cpu).0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, o: CpuMask) -> CpuMask {
        CpuMask(self.0 | o.0)
    }

    pub fn intersect(self, o: CpuMask) -> CpuMask {
        CpuMask(self.0 & o.0)
    }

    /// Lowest CPU in the set.
    pub fn first(self) -> Option<u32> {
        (self.0 != 0).then(|| self.0.trailing_zeros())
    }

    /// The CPUs in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..64u32).filter(move |&c| self.contains(c))
    }
}

/// Scheduling class, lowest first (`Ord`): credit1's `TS_OVER < TS_UNDER < TS_BOOST`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Over,
    Under,
    Boost,
}

/// What a vCPU in `SCHEDOP_poll` waits for: Xen 4.17's `v->poll_evtchn` with the vCPU's
/// bit in its domain's `poll_mask` (`do_poll`, `evtchn_check_pollers`, `vcpu_unblock`).
///
/// A poll of exactly one port is ended by that port becoming pending; a poll of any
/// other number of ports (none included) by *any* port of the domain becoming pending
/// (Xen remembers one port only). Either is also ended by a kick (the vCPU's upcall
/// becoming pending, `vcpu_mark_events_pending`) and by its timeout. A port that was
/// already pending is not "becoming pending": it ends nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PollWait {
    /// Not polling.
    #[default]
    Off,
    /// `nr_ports == 1`: that port.
    Port(u32),
    /// `nr_ports != 1`: any port of the domain.
    Any,
    /// Ended (a port, a kick, the timeout) after `SCHEDOP_poll` set it up but before
    /// the vCPU blocked: it must not block (Xen: `_VPF_blocked` already cleared).
    Woken,
}

impl PollWait {
    /// The wait `SCHEDOP_poll` of `nr_ports` ports, the first `first`, sets up once none
    /// of them is pending.
    pub fn armed(nr_ports: usize, first: u32) -> PollWait {
        if nr_ports == 1 {
            PollWait::Port(first)
        } else {
            PollWait::Any
        }
    }

    /// Set up and not yet ended.
    pub fn polling(self) -> bool {
        matches!(self, PollWait::Port(_) | PollWait::Any)
    }

    /// Whether `port` of the vCPU's domain becoming pending ends it
    /// (`evtchn_check_pollers`: `poll_evtchn <= 0 || poll_evtchn == port`).
    pub fn woken_by(self, port: u32) -> bool {
        match self {
            PollWait::Port(p) => p == port,
            PollWait::Any => true,
            PollWait::Off | PollWait::Woken => false,
        }
    }

    /// What a wake (an awaited port, a kick, the timeout) leaves: `Woken` if the vCPU
    /// was polling and had not blocked yet, `Off` once it blocked (it runs again) or if
    /// it was not polling.
    pub fn wake(self, blocked: bool) -> PollWait {
        if self.polling() && !blocked {
            PollWait::Woken
        } else if blocked {
            PollWait::Off
        } else {
            self
        }
    }
}

/// What `xl vcpu-list` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuState {
    /// Ready, waiting for a CPU (possibly parked by its cap).
    Runnable,
    /// Current on this CPU.
    Running(u32),
    /// Blocked (`SCHEDOP_block`/`poll`) until an event or timer wakes it.
    Blocked,
    /// Its domain is paused.
    Paused,
    /// Down (`VCPUOP_down`, or never brought up).
    Offline,
}

/// Per-vCPU accounting for `xl vcpu-list` / `xl list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuInfo {
    pub state: VcpuState,
    /// The CPU it runs on, or last ran on (the first of its affinity if never).
    pub cpu: u32,
    /// Total run time, ns.
    pub run_ns: u64,
    pub credit: i64,
    pub priority: Priority,
    /// Hard affinity.
    pub affinity: CpuMask,
    /// Held back by its domain's cap until the next accounting period.
    pub parked: bool,
}

/// Per-domain parameters for `xl sched-credit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomParams {
    pub weight: u32,
    /// Percent of one CPU; 0 = no cap.
    pub cap: u32,
}

/// What a CPU runs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// `None`: the idle vCPU (halt until an IPI or the tick).
    pub next: Option<VcpuRef>,
    /// Arm the slice timer to call `schedule` again after this long; 0 = no slice timer.
    pub slice_ns: u64,
    /// Other CPUs to send a scheduling IPI to (work left waiting that they may run).
    pub kick: CpuMask,
}

/// What the periodic tick asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickOutcome {
    /// Call `schedule` on this CPU now.
    pub resched: bool,
    /// Other CPUs to send a scheduling IPI to.
    pub kick: CpuMask,
}

#[derive(Clone, Debug)]
struct Dom {
    id: DomId,
    weight: u32,
    cap: u32,
    paused: bool,
    parked: bool,
    /// Capped domains: ns used in this period, including carried-over debt.
    cap_used: u64,
    /// Accounting scratch: active vCPUs.
    nr_active: u64,
}

impl Dom {
    /// The cap as ns of CPU per period (0 = uncapped).
    fn budget(&self) -> u64 {
        u64::from(self.cap).saturating_mul(PERIOD_NS) / 100
    }
}

#[derive(Clone, Debug)]
struct Vcpu {
    r: VcpuRef,
    affinity: CpuMask,
    online: bool,
    blocked: bool,
    boost: bool,
    yielded: bool,
    /// Earns credit at accounting (credit1's active list).
    active: bool,
    credit: i64,
    run_ns: u64,
    on_cpu: Option<u32>,
    last_cpu: u32,
    /// Queue position: lower waited longer.
    seq: u64,
    /// Accounting scratch.
    income: u64,
    saturated: bool,
}

#[derive(Clone, Debug, Default)]
struct Cpu {
    curr: Option<VcpuRef>,
    started: u64,
    slice_end: u64,
    /// An IPI is on its way: don't count this idle CPU as free for other work.
    tickled: bool,
}

/// The scheduler of the whole machine.
#[derive(Clone, Debug)]
pub struct Scheduler {
    nr_cpus: u32,
    doms: Vec<Dom>,
    vcpus: Vec<Vcpu>,
    cpus: Vec<Cpu>,
    seq: u64,
    next_acct: Option<u64>,
    kicks: CpuMask,
}

/// Order of candidates for a CPU: class (priority, yield), credit, waited longest.
type PickKey = (u8, i64, core::cmp::Reverse<u64>);

fn priority(v: &Vcpu) -> Priority {
    if v.boost {
        Priority::Boost
    } else if v.credit >= 0 {
        Priority::Under
    } else {
        Priority::Over
    }
}

fn to_i64(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

impl Scheduler {
    /// A scheduler for CPUs `0..nr_cpus` (clamped to `1..=MAX_CPUS`), all online.
    pub fn new(nr_cpus: u32) -> Scheduler {
        let nr_cpus = nr_cpus.clamp(1, MAX_CPUS);
        Scheduler {
            nr_cpus,
            doms: Vec::new(),
            vcpus: Vec::new(),
            cpus: (0..nr_cpus).map(|_| Cpu::default()).collect(),
            seq: 0,
            next_acct: None,
            kicks: CpuMask::EMPTY,
        }
    }

    pub fn nr_cpus(&self) -> u32 {
        self.nr_cpus
    }

    fn online(&self) -> CpuMask {
        CpuMask::first_n(self.nr_cpus)
    }

    // ---- lookups -------------------------------------------------------------------

    fn dom_idx(&self, dom: DomId) -> Option<usize> {
        self.doms.iter().position(|d| d.id == dom)
    }

    fn vcpu_idx(&self, v: VcpuRef) -> Option<usize> {
        self.vcpus.iter().position(|x| x.r == v)
    }

    fn dom_of(&self, v: &Vcpu) -> Option<&Dom> {
        self.doms.iter().find(|d| d.id == v.r.dom)
    }

    fn bump_seq(&mut self) -> u64 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Not blocked, online, domain not paused (may still be parked).
    fn runnable(&self, v: &Vcpu) -> bool {
        v.online && !v.blocked && self.dom_of(v).is_some_and(|d| !d.paused)
    }

    /// May be picked at all: runnable and not parked.
    fn schedulable(&self, v: &Vcpu) -> bool {
        v.online && !v.blocked && self.dom_of(v).is_some_and(|d| !d.paused && !d.parked)
    }

    /// May be picked by `cpu` now.
    fn eligible(&self, v: &Vcpu, cpu: u32) -> bool {
        self.schedulable(v) && v.affinity.contains(cpu) && v.on_cpu.is_none_or(|c| c == cpu)
    }

    fn idle_mask(&self) -> CpuMask {
        let mut m = 0u64;
        for (c, cpu) in self.cpus.iter().enumerate() {
            if cpu.curr.is_none() {
                m |= CpuMask::single(c as u32).0;
            }
        }
        CpuMask(m)
    }

    fn tickled_mask(&self) -> CpuMask {
        let mut m = 0u64;
        for (c, cpu) in self.cpus.iter().enumerate() {
            if cpu.tickled {
                m |= CpuMask::single(c as u32).0;
            }
        }
        CpuMask(m)
    }

    fn kick(&mut self, cpu: u32) {
        self.kicks = self.kicks.union(CpuMask::single(cpu));
    }

    /// Kick the CPUs a vCPU is current on (it must leave).
    fn kick_running(&mut self, i: usize) {
        if let Some(c) = self.vcpus.get(i).and_then(|v| v.on_cpu) {
            self.kick(c);
        }
    }

    /// Give every waiting vCPU an idle CPU of its affinity that will reschedule, as far as
    /// there are some (greedy; each `schedule` repeats it for what is left).
    fn tickle_idlers(&mut self) {
        let free = self.idle_mask().intersect(self.online());
        if free.is_empty() {
            return;
        }
        let mut used = CpuMask::EMPTY;
        for i in 0..self.vcpus.len() {
            let Some(v) = self.vcpus.get(i) else { break };
            if v.on_cpu.is_some() || !self.schedulable(v) {
                continue;
            }
            let avail = v.affinity.intersect(free).0 & !used.0;
            if avail == 0 {
                continue;
            }
            let tickled = avail & self.tickled_mask().0;
            let pool = CpuMask(if tickled != 0 { tickled } else { avail });
            let c = if pool.contains(v.last_cpu) {
                v.last_cpu
            } else {
                pool.first().unwrap_or(0)
            };
            used = used.union(CpuMask::single(c));
            if let Some(cpu) = self.cpus.get_mut(c as usize) {
                if !cpu.tickled {
                    cpu.tickled = true;
                    self.kicks = self.kicks.union(CpuMask::single(c));
                }
            }
        }
    }

    fn take_kicks(&mut self) -> CpuMask {
        self.tickle_idlers();
        core::mem::take(&mut self.kicks)
    }

    // ---- domains and vCPUs ---------------------------------------------------------

    /// A new domain with default parameters (weight 256, no cap), not paused.
    pub fn add_domain(&mut self, dom: DomId) -> Result<(), Errno> {
        if self.dom_idx(dom).is_some() {
            return Err(EEXIST);
        }
        self.doms.push(Dom {
            id: dom,
            weight: DEFAULT_WEIGHT,
            cap: 0,
            paused: false,
            parked: false,
            cap_used: 0,
            nr_active: 0,
        });
        Ok(())
    }

    /// Destroy a domain and its vCPUs; returns the CPUs that must stop running them.
    pub fn remove_domain(&mut self, dom: DomId) -> Result<CpuMask, Errno> {
        let d = self.dom_idx(dom).ok_or(ESRCH)?;
        while let Some(i) = self.vcpus.iter().position(|v| v.r.dom == dom) {
            self.drop_vcpu(i);
        }
        self.doms.remove(d);
        Ok(self.take_kicks())
    }

    /// A new vCPU of an existing domain, offline until [`Scheduler::vcpu_up`].
    pub fn add_vcpu(&mut self, v: VcpuRef, affinity: CpuMask) -> Result<(), Errno> {
        self.dom_idx(v.dom).ok_or(ESRCH)?;
        if self.vcpu_idx(v).is_some() {
            return Err(EEXIST);
        }
        let affinity = self.check_affinity(affinity)?;
        let seq = self.bump_seq();
        self.vcpus.push(Vcpu {
            r: v,
            affinity,
            online: false,
            blocked: false,
            boost: false,
            yielded: false,
            active: false,
            credit: 0,
            run_ns: 0,
            on_cpu: None,
            last_cpu: affinity.first().unwrap_or(0),
            seq,
            income: 0,
            saturated: false,
        });
        Ok(())
    }

    fn drop_vcpu(&mut self, i: usize) {
        if i >= self.vcpus.len() {
            return;
        }
        let v = self.vcpus.remove(i);
        if let Some(c) = v.on_cpu {
            if let Some(cpu) = self.cpus.get_mut(c as usize) {
                cpu.curr = None;
            }
            self.kick(c);
        }
    }

    /// Remove one vCPU; returns the CPUs that must stop running it.
    pub fn remove_vcpu(&mut self, v: VcpuRef) -> Result<CpuMask, Errno> {
        let i = self.vcpu_idx(v).ok_or(ESRCH)?;
        self.drop_vcpu(i);
        Ok(self.take_kicks())
    }

    fn check_affinity(&self, mask: CpuMask) -> Result<CpuMask, Errno> {
        let m = mask.intersect(self.online());
        if m.is_empty() {
            return Err(EINVAL);
        }
        Ok(m)
    }

    /// `xl sched-credit -d dom -w weight -c cap`: weight 1..=65535, cap 0..=100*nr_cpus.
    pub fn set_params(&mut self, dom: DomId, weight: u32, cap: u32) -> Result<CpuMask, Errno> {
        let d = self.dom_idx(dom).ok_or(ESRCH)?;
        if !(MIN_WEIGHT..=MAX_WEIGHT).contains(&weight) || cap > 100 * self.nr_cpus {
            return Err(EINVAL);
        }
        let Some(dm) = self.doms.get_mut(d) else {
            return Err(ESRCH);
        };
        dm.weight = weight;
        if dm.cap != cap {
            dm.cap = cap;
            dm.cap_used = dm.cap_used.min(dm.budget());
            dm.parked = cap != 0 && dm.cap_used >= dm.budget();
        }
        if cap == 0 {
            dm.cap_used = 0;
            dm.parked = false;
        }
        if dm.parked {
            for i in 0..self.vcpus.len() {
                if self.vcpus.get(i).is_some_and(|v| v.r.dom == dom) {
                    self.kick_running(i);
                }
            }
        }
        Ok(self.take_kicks())
    }

    pub fn dom_params(&self, dom: DomId) -> Option<DomParams> {
        self.dom_of_id(dom).map(|d| DomParams {
            weight: d.weight,
            cap: d.cap,
        })
    }

    fn dom_of_id(&self, dom: DomId) -> Option<&Dom> {
        self.doms.iter().find(|d| d.id == dom)
    }

    /// `xl vcpu-pin`: new hard affinity (restricted to online CPUs; none left = EINVAL).
    /// The returned kicks include the vCPU's current CPU if it must migrate now.
    pub fn set_affinity(&mut self, v: VcpuRef, mask: CpuMask) -> Result<CpuMask, Errno> {
        let i = self.vcpu_idx(v).ok_or(ESRCH)?;
        let mask = self.check_affinity(mask)?;
        let Some(x) = self.vcpus.get_mut(i) else {
            return Err(ESRCH);
        };
        x.affinity = mask;
        if x.on_cpu.is_some_and(|c| !mask.contains(c)) {
            self.kick_running(i);
        }
        Ok(self.take_kicks())
    }

    /// `VCPUOP_up`.
    pub fn vcpu_up(&mut self, v: VcpuRef) -> Result<CpuMask, Errno> {
        let i = self.vcpu_idx(v).ok_or(ESRCH)?;
        if let Some(x) = self.vcpus.get_mut(i) {
            if !x.online {
                x.online = true;
                x.blocked = false;
                self.seq = self.seq.wrapping_add(1);
                x.seq = self.seq;
            }
        }
        Ok(self.take_kicks())
    }

    /// `VCPUOP_down`.
    pub fn vcpu_down(&mut self, v: VcpuRef) -> Result<CpuMask, Errno> {
        let i = self.vcpu_idx(v).ok_or(ESRCH)?;
        if let Some(x) = self.vcpus.get_mut(i) {
            x.online = false;
            x.boost = false;
        }
        self.kick_running(i);
        Ok(self.take_kicks())
    }

    /// `SCHEDOP_block` (or `poll`): the vCPU waits for an event or timer. The mechanism then
    /// calls `schedule` on the vCPU's CPU (also returned).
    pub fn block(&mut self, v: VcpuRef) -> Result<CpuMask, Errno> {
        let i = self.vcpu_idx(v).ok_or(ESRCH)?;
        if let Some(x) = self.vcpus.get_mut(i) {
            x.blocked = true;
            x.boost = false;
            x.yielded = false;
        }
        self.kick_running(i);
        Ok(self.take_kicks())
    }

    /// An event or timer for a blocked vCPU: it becomes runnable, boosted if it has credit
    /// (credit1), and the returned CPU gets an IPI: an idle CPU of its affinity (its last
    /// one first), else the CPU running the lowest-priority vCPU below it. Waking a vCPU
    /// that is not blocked does nothing.
    pub fn wake(&mut self, v: VcpuRef) -> Result<CpuMask, Errno> {
        let i = self.vcpu_idx(v).ok_or(ESRCH)?;
        let Some(x) = self.vcpus.get(i) else {
            return Err(ESRCH);
        };
        if !x.blocked {
            return Ok(self.take_kicks());
        }
        let parked = self.dom_of(x).is_some_and(|d| d.parked);
        let seq = self.bump_seq();
        let Some(x) = self.vcpus.get_mut(i) else {
            return Err(ESRCH);
        };
        x.blocked = false;
        x.seq = seq;
        x.boost = x.credit >= 0 && !parked;
        let (aff, on_cpu) = (x.affinity, x.on_cpu);
        let prio = priority(x);
        let schedulable = self.vcpus.get(i).is_some_and(|x| self.schedulable(x));
        if on_cpu.is_none() && schedulable {
            let free = aff.intersect(self.idle_mask()).0 & !self.tickled_mask().0;
            if free == 0 {
                // No idle CPU for it: preempt the lowest-priority vCPU below it.
                let mut best: Option<(Priority, i64, u32)> = None;
                for c in aff.intersect(self.online()).iter() {
                    let Some(cur) = self.cpus.get(c as usize).and_then(|cp| cp.curr) else {
                        continue;
                    };
                    let Some(u) = self.vcpus.iter().find(|u| u.r == cur) else {
                        continue;
                    };
                    let key = (priority(u), u.credit, c);
                    if key.0 < prio && best.is_none_or(|b| key < b) {
                        best = Some(key);
                    }
                }
                if let Some((_, _, c)) = best {
                    self.kick(c);
                }
            }
        }
        Ok(self.take_kicks())
    }

    /// `SCHEDOP_yield`: at its CPU's next `schedule`, the vCPU goes behind every other
    /// vCPU of its priority and of the one below (credit1 puts it behind one lower).
    pub fn yield_vcpu(&mut self, v: VcpuRef) -> Result<CpuMask, Errno> {
        let i = self.vcpu_idx(v).ok_or(ESRCH)?;
        if let Some(x) = self.vcpus.get_mut(i) {
            x.yielded = true;
        }
        self.kick_running(i);
        Ok(self.take_kicks())
    }

    /// `xl pause`: none of the domain's vCPUs runs until `unpause`.
    pub fn pause(&mut self, dom: DomId) -> Result<CpuMask, Errno> {
        let d = self.dom_idx(dom).ok_or(ESRCH)?;
        if let Some(dm) = self.doms.get_mut(d) {
            dm.paused = true;
        }
        for i in 0..self.vcpus.len() {
            if self.vcpus.get(i).is_some_and(|v| v.r.dom == dom) {
                self.kick_running(i);
            }
        }
        Ok(self.take_kicks())
    }

    /// `xl unpause`.
    pub fn unpause(&mut self, dom: DomId) -> Result<CpuMask, Errno> {
        let d = self.dom_idx(dom).ok_or(ESRCH)?;
        if let Some(dm) = self.doms.get_mut(d) {
            dm.paused = false;
        }
        Ok(self.take_kicks())
    }

    // ---- time ----------------------------------------------------------------------

    /// Charge the vCPU current on CPU `c` for the time since it started or was last
    /// charged.
    fn charge(&mut self, c: usize, now: u64) {
        let Some(cpu) = self.cpus.get_mut(c) else {
            return;
        };
        let ran = now.saturating_sub(cpu.started);
        cpu.started = cpu.started.max(now);
        let Some(cur) = cpu.curr else { return };
        let Some(i) = self.vcpu_idx(cur) else { return };
        let Some(v) = self.vcpus.get_mut(i) else {
            return;
        };
        v.run_ns = v.run_ns.saturating_add(ran);
        v.credit = v.credit.saturating_sub(to_i64(ran));
        if ran > 0 {
            v.active = true;
        }
        let Some(d) = self.dom_idx(cur.dom) else {
            return;
        };
        let Some(dm) = self.doms.get_mut(d) else {
            return;
        };
        if dm.cap != 0 {
            dm.cap_used = dm.cap_used.saturating_add(ran);
            if !dm.parked && dm.cap_used >= dm.budget() {
                dm.parked = true;
                for i in 0..self.vcpus.len() {
                    if self.vcpus.get(i).is_some_and(|v| v.r.dom == cur.dom) {
                        self.kick_running(i);
                    }
                }
            }
        }
    }

    /// The periodic tick of `cpu` (every `TICK_NS`): charge the current vCPU, end its boost,
    /// run the accounting when a period is due, and say whether to reschedule.
    pub fn tick(&mut self, cpu: u32, now: u64) -> TickOutcome {
        let c = cpu as usize;
        if c >= self.cpus.len() {
            return TickOutcome {
                resched: false,
                kick: CpuMask::EMPTY,
            };
        }
        match self.next_acct {
            None => self.next_acct = Some(now.saturating_add(PERIOD_NS)),
            Some(t) if now >= t => {
                self.account();
                let next = if now - t >= PERIOD_NS { now } else { t };
                self.next_acct = Some(next.saturating_add(PERIOD_NS));
            }
            Some(_) => {}
        }
        self.charge(c, now);
        let curr = self.cpus.get(c).and_then(|x| x.curr);
        let slice_end = self.cpus.get(c).map_or(0, |x| x.slice_end);
        let resched = match curr.and_then(|r| self.vcpu_idx(r)) {
            None => self.vcpus.iter().any(|v| self.eligible(v, cpu)),
            Some(i) => {
                if let Some(v) = self.vcpus.get_mut(i) {
                    v.boost = false;
                }
                match self.vcpus.get(i) {
                    None => true,
                    Some(v) => {
                        let p = priority(v);
                        !self.eligible(v, cpu)
                            || now >= slice_end
                            || self.vcpus.iter().any(|w| {
                                w.on_cpu.is_none() && self.eligible(w, cpu) && priority(w) > p
                            })
                    }
                }
            }
        };
        let mut kick = self.take_kicks();
        kick.0 &= !CpuMask::single(cpu).0;
        TickOutcome { resched, kick }
    }

    /// Credit accounting for one period (credit1's `csched_acct`).
    fn account(&mut self) {
        // Refill cap budgets, carrying over debt (at most one period's worth).
        for d in self.doms.iter_mut() {
            d.nr_active = 0;
            if d.cap != 0 {
                let b = d.budget();
                d.cap_used = d.cap_used.saturating_sub(b).min(b);
                d.parked = d.cap_used >= b;
            } else {
                d.parked = false;
                d.cap_used = 0;
            }
        }
        for v in self.vcpus.iter() {
            if v.active {
                if let Some(d) = self.doms.iter_mut().find(|d| d.id == v.r.dom) {
                    d.nr_active = d.nr_active.saturating_add(1);
                }
            }
        }
        // Water-fill nr_cpus * PERIOD_NS among active vCPUs by weight, each up to its peak.
        let mut remaining = u128::from(self.nr_cpus) * u128::from(PERIOD_NS);
        for v in self.vcpus.iter_mut() {
            v.income = 0;
            v.saturated = !v.active;
        }
        for _ in 0..=self.vcpus.len() {
            let mut wsum: u128 = 0;
            for v in self.vcpus.iter().filter(|v| !v.saturated) {
                wsum += u128::from(self.dom_of(v).map_or(0, |d| d.weight));
            }
            if wsum == 0 {
                break;
            }
            let mut taken: u128 = 0;
            let mut any = false;
            for i in 0..self.vcpus.len() {
                let Some(v) = self.vcpus.get(i) else { break };
                if v.saturated {
                    continue;
                }
                let (w, peak) = match self.dom_of(v) {
                    Some(d) => (u128::from(d.weight), u128::from(peak(d))),
                    None => (0, 0),
                };
                let fair = remaining * w / wsum;
                if fair >= peak {
                    if let Some(v) = self.vcpus.get_mut(i) {
                        v.income = u64::try_from(peak).unwrap_or(u64::MAX);
                        v.saturated = true;
                    }
                    taken += peak;
                    any = true;
                }
            }
            remaining = remaining.saturating_sub(taken);
            if !any {
                for i in 0..self.vcpus.len() {
                    let Some(v) = self.vcpus.get(i) else { break };
                    if v.saturated {
                        continue;
                    }
                    let w = u128::from(self.dom_of(v).map_or(0, |d| d.weight));
                    let fair = u64::try_from(remaining * w / wsum).unwrap_or(u64::MAX);
                    if let Some(v) = self.vcpus.get_mut(i) {
                        v.income = fair;
                    }
                }
                break;
            }
        }
        let lo = -to_i64(2 * TSLICE_NS);
        let hi = to_i64(TSLICE_NS);
        for i in 0..self.vcpus.len() {
            let runnable = self.vcpus.get(i).is_some_and(|v| self.runnable(v));
            let Some(v) = self.vcpus.get_mut(i).filter(|v| v.active) else {
                continue;
            };
            v.credit = v.credit.saturating_add(to_i64(v.income));
            if v.credit < lo {
                v.credit = lo;
            } else if v.credit > hi && !runnable {
                // Not using its credit: stop earning, keep half (credit1).
                v.active = false;
                v.credit /= 2;
            } else if v.credit > 2 * hi {
                // Runnable but unable to use its share (pinned, capped): bound the hoard.
                v.credit = 2 * hi;
            }
        }
        // Parked domains may have been released; parked running vCPUs must leave.
        for i in 0..self.vcpus.len() {
            let parked = self
                .vcpus
                .get(i)
                .and_then(|v| self.dom_of(v))
                .is_some_and(|d| d.parked);
            if parked {
                self.kick_running(i);
            }
        }
    }

    /// Pick what `cpu` runs from `now`: charges the previous vCPU for its run, then takes
    /// the best eligible vCPU (the previous one included). Call it on the slice timer, when
    /// `tick` says so, after block/yield, and on a scheduling IPI.
    pub fn schedule(&mut self, cpu: u32, now: u64) -> Decision {
        let c = cpu as usize;
        if c >= self.cpus.len() {
            return Decision {
                next: None,
                slice_ns: 0,
                kick: CpuMask::EMPTY,
            };
        }
        self.charge(c, now);
        let prev = self.cpus.get_mut(c).and_then(|x| {
            x.tickled = false;
            x.curr.take()
        });
        let seq = self.bump_seq();
        let mut prev_yielded = false;
        if let Some(p) = prev.and_then(|p| self.vcpu_idx(p)) {
            if let Some(v) = self.vcpus.get_mut(p) {
                v.on_cpu = None;
                v.seq = seq;
                prev_yielded = v.yielded;
                v.yielded = false;
            }
        }
        // Best eligible: (priority, most credit, waited longest); a yielding vCPU one
        // class down.
        let mut best: Option<(usize, PickKey)> = None;
        for (i, v) in self.vcpus.iter().enumerate() {
            if !self.eligible(v, cpu) {
                continue;
            }
            let mut class = priority(v) as u8 * 2 + 1;
            if prev_yielded && Some(v.r) == prev {
                class = class.saturating_sub(3);
            }
            let key = (class, v.credit, core::cmp::Reverse(v.seq));
            if best.is_none_or(|(_, b)| key > b) {
                best = Some((i, key));
            }
        }
        let mut next = None;
        let mut slice_ns = 0;
        if let Some((i, _)) = best {
            let running_same_dom = |s: &Scheduler, dom: DomId| {
                s.vcpus
                    .iter()
                    .filter(|w| w.r.dom == dom && w.on_cpu.is_some())
                    .count() as u64
            };
            if let Some(v) = self.vcpus.get_mut(i) {
                v.on_cpu = Some(cpu);
                v.last_cpu = cpu;
                next = Some(v.r);
            }
            slice_ns = TSLICE_NS;
            if let Some(r) = next {
                if let Some(d) = self.dom_of_id(r.dom) {
                    if d.cap != 0 {
                        let left = d.budget().saturating_sub(d.cap_used);
                        let share = left / running_same_dom(self, r.dom).max(1);
                        slice_ns = slice_ns.min(share).max(MIN_SLICE_NS);
                    }
                }
            }
        }
        if let Some(x) = self.cpus.get_mut(c) {
            x.curr = next;
            x.started = now;
            x.slice_end = now.saturating_add(slice_ns);
        }
        let mut kick = self.take_kicks();
        kick.0 &= !CpuMask::single(cpu).0;
        Decision {
            next,
            slice_ns,
            kick,
        }
    }

    // ---- queries -------------------------------------------------------------------

    /// The vCPU current on `cpu` (`None` = idle).
    pub fn current(&self, cpu: u32) -> Option<VcpuRef> {
        self.cpus.get(cpu as usize).and_then(|c| c.curr)
    }

    /// All vCPUs, in creation order.
    pub fn vcpus(&self) -> impl Iterator<Item = VcpuRef> + '_ {
        self.vcpus.iter().map(|v| v.r)
    }

    pub fn vcpu_info(&self, r: VcpuRef) -> Option<VcpuInfo> {
        let v = self.vcpus.iter().find(|v| v.r == r)?;
        let d = self.dom_of(v)?;
        let state = if !v.online {
            VcpuState::Offline
        } else if d.paused {
            VcpuState::Paused
        } else if v.blocked {
            VcpuState::Blocked
        } else if let Some(c) = v.on_cpu {
            VcpuState::Running(c)
        } else {
            VcpuState::Runnable
        };
        Some(VcpuInfo {
            state,
            cpu: v.on_cpu.unwrap_or(v.last_cpu),
            run_ns: v.run_ns,
            credit: v.credit,
            priority: priority(v),
            affinity: v.affinity,
            parked: d.parked,
        })
    }

    /// Total run time of a domain's vCPUs (`xl list` Time(s)).
    pub fn dom_run_ns(&self, dom: DomId) -> u64 {
        self.vcpus
            .iter()
            .filter(|v| v.r.dom == dom)
            .fold(0u64, |a, v| a.saturating_add(v.run_ns))
    }

    /// Whether `runnable` holds for `r` (test helper for the mechanism's assertions).
    pub fn is_runnable(&self, r: VcpuRef) -> bool {
        self.vcpus
            .iter()
            .find(|v| v.r == r)
            .is_some_and(|v| self.runnable(v))
    }
}

/// Most credit a vCPU of `d` earns per period: one CPU, or its share of the cap.
fn peak(d: &Dom) -> u64 {
    if d.cap == 0 {
        return PERIOD_NS;
    }
    let n = d.nr_active.max(1);
    PERIOD_NS.min(d.budget().div_ceil(n))
}

pub mod sim;

#[cfg(test)]
mod tests;
