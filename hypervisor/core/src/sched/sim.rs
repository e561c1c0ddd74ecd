//! A simulated machine that drives a [`Scheduler`] exactly as the mechanism must: ticks
//! every `TICK_NS` on every CPU, slice timers, and scheduling IPIs delivered at once.
//! The host tests use it; it also documents the mechanism's side of the contract.

extern crate alloc;

use super::{CpuMask, Scheduler, VcpuRef, VcpuState, TICK_NS};
use alloc::vec;
use alloc::vec::Vec;

/// An invariant the scheduler broke (see the module docs of `sched`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// S1: current on two CPUs.
    TwoCpus { vcpu: VcpuRef },
    /// S1: current on a CPU outside its affinity.
    Affinity { vcpu: VcpuRef, cpu: u32 },
    /// S2: current although blocked, paused, offline, parked or unknown.
    NotRunnable { vcpu: VcpuRef, cpu: u32 },
    /// S3: `cpu` idles while `vcpu` could run there.
    Idle { cpu: u32, vcpu: VcpuRef },
    /// IPIs kept bouncing without settling.
    NoQuiescence,
}

#[derive(Clone, Debug)]
pub struct Machine {
    pub sched: Scheduler,
    pub now: u64,
    /// Slice timer per CPU (0 = not armed).
    deadline: Vec<u64>,
    /// Set when `deliver` could not settle.
    unsettled: bool,
}

impl Machine {
    pub fn new(nr_cpus: u32) -> Machine {
        let sched = Scheduler::new(nr_cpus);
        let n = sched.nr_cpus() as usize;
        Machine {
            sched,
            now: 0,
            deadline: vec![0; n],
            unsettled: false,
        }
    }

    /// Deliver scheduling IPIs (and those they cause) until none is left.
    pub fn deliver(&mut self, kicks: CpuMask) {
        let mut pending = kicks;
        for _ in 0..64 {
            if pending.is_empty() {
                return;
            }
            let mut next = CpuMask::EMPTY;
            for cpu in pending.iter() {
                let d = self.sched.schedule(cpu, self.now);
                if let Some(dl) = self.deadline.get_mut(cpu as usize) {
                    *dl = if d.slice_ns == 0 {
                        0
                    } else {
                        self.now.saturating_add(d.slice_ns)
                    };
                }
                next = next.union(d.kick);
            }
            pending = next;
        }
        self.unsettled = !pending.is_empty();
    }

    /// Run the machine until `end` (ns): ticks, slice timers, IPIs.
    pub fn run_until(&mut self, end: u64) {
        while self.now < end {
            let next_tick = (self.now / TICK_NS + 1).saturating_mul(TICK_NS);
            let next_dl = self
                .deadline
                .iter()
                .copied()
                .filter(|&d| d != 0)
                .min()
                .unwrap_or(u64::MAX);
            let t = next_tick.min(next_dl).min(end).max(self.now);
            self.now = t;
            let mut kicks = CpuMask::EMPTY;
            if t % TICK_NS == 0 {
                for cpu in 0..self.sched.nr_cpus() {
                    let r = self.sched.tick(cpu, t);
                    kicks = kicks.union(r.kick);
                    if r.resched {
                        kicks = kicks.union(CpuMask::single(cpu));
                    }
                }
            }
            for (cpu, &d) in self.deadline.iter().enumerate() {
                if d != 0 && d <= t {
                    kicks = kicks.union(CpuMask::single(cpu as u32));
                }
            }
            self.deliver(kicks);
        }
    }

    /// The first broken invariant, if any.
    pub fn check(&self) -> Option<Violation> {
        if self.unsettled {
            return Some(Violation::NoQuiescence);
        }
        let n = self.sched.nr_cpus();
        let mut seen: Vec<VcpuRef> = Vec::new();
        for cpu in 0..n {
            let Some(v) = self.sched.current(cpu) else {
                continue;
            };
            if seen.contains(&v) {
                return Some(Violation::TwoCpus { vcpu: v });
            }
            seen.push(v);
            let Some(info) = self.sched.vcpu_info(v) else {
                return Some(Violation::NotRunnable { vcpu: v, cpu });
            };
            if !info.affinity.contains(cpu) {
                return Some(Violation::Affinity { vcpu: v, cpu });
            }
            if info.state != VcpuState::Running(cpu) || info.parked {
                return Some(Violation::NotRunnable { vcpu: v, cpu });
            }
        }
        for cpu in (0..n).filter(|&c| self.sched.current(c).is_none()) {
            for v in self.sched.vcpus() {
                let Some(info) = self.sched.vcpu_info(v) else {
                    continue;
                };
                if info.state == VcpuState::Runnable && !info.parked && info.affinity.contains(cpu)
                {
                    return Some(Violation::Idle { cpu, vcpu: v });
                }
            }
        }
        None
    }
}
