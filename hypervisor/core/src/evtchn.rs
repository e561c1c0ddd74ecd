//! Event channels (2-level ABI): the per-domain port table and its state machine.
//!
//! Pure policy: which ports exist, what they are bound to, and whom a `send` notifies.
//! The pending and mask bits live in the guest's `shared_info` and are the mechanism's
//! business; every operation here returns what the mechanism must do.
//!
//! Invariants (checked by the property test in `tests/evtchn_props.rs`):
//! - E1: a port is valid only below the table's limit and once allocated; port 0 is
//!   never handed out.
//! - E2: an interdomain pair is symmetric: if A:p is bound to B:q then B:q is bound to
//!   A:p; closing either end turns the other into `Unbound` for the closer's domain.
//! - E3: an operation that fails changes nothing.

extern crate alloc;

use alloc::vec::Vec;
use xen_abi::errno::{Errno, EEXIST, EINVAL, ENOSPC, ESRCH};

pub type DomId = u16;
pub type Port = u32;

/// Ports of the 2-level ABI on 64-bit guests: 64 words of 64 bits.
pub const NR_EVENT_CHANNELS: u32 = 64 * 64;
/// VIRQs (`xen.h`: `NR_VIRQS`).
pub const NR_VIRQS: u32 = 24;
/// VIRQs that are per-vCPU (may be bound on any vCPU): TIMER, DEBUG, XENOPROF, XENPMU.
pub fn virq_is_percpu(virq: u32) -> bool {
    matches!(virq, 0 | 1 | 6 | 13)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Free,
    /// Allocated, waiting for `remote` to bind it.
    Unbound {
        remote: DomId,
    },
    Interdomain {
        remote: DomId,
        remote_port: Port,
    },
    Virq {
        virq: u32,
    },
    Ipi,
    /// Bound to a physical IRQ (`EVTCHNOP_bind_pirq`; the pirq table is `crate::pirq`).
    Pirq {
        pirq: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    pub state: State,
    /// vCPU notified when the port becomes pending.
    pub vcpu: u32,
}

const FREE: Channel = Channel {
    state: State::Free,
    vcpu: 0,
};

/// One domain's port table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    chans: Vec<Channel>,
    limit: u32,
}

/// What the mechanism must do after a `send`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// Nothing to deliver (an unbound port: Xen drops the event silently).
    None,
    /// Mark `port` pending in domain `dom`, for its vCPU `vcpu`.
    Port { dom: DomId, port: Port, vcpu: u32 },
}

impl Table {
    /// A table allowing ports `1..limit` (`limit` ≤ `NR_EVENT_CHANNELS`).
    pub fn new(limit: u32) -> Table {
        Table {
            chans: Vec::new(),
            limit: limit.min(NR_EVENT_CHANNELS),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The channel at `port`, if it is valid and allocated (E1).
    pub fn get(&self, port: Port) -> Option<&Channel> {
        if port == 0 || port >= self.limit {
            return None;
        }
        self.chans
            .get(port as usize)
            .filter(|c| c.state != State::Free)
    }

    fn get_mut(&mut self, port: Port) -> Option<&mut Channel> {
        if port == 0 || port >= self.limit {
            return None;
        }
        self.chans
            .get_mut(port as usize)
            .filter(|c| c.state != State::Free)
    }

    /// Lowest free port ≥ 1.
    fn free_port(&self) -> Result<Port, Errno> {
        let in_use = self.chans.len() as u32;
        for p in 1..in_use.min(self.limit) {
            if self
                .chans
                .get(p as usize)
                .is_some_and(|c| c.state == State::Free)
            {
                return Ok(p);
            }
        }
        let next = in_use.max(1);
        if next < self.limit {
            Ok(next)
        } else {
            Err(ENOSPC)
        }
    }

    fn install(&mut self, port: Port, ch: Channel) {
        let idx = port as usize;
        if self.chans.len() <= idx {
            self.chans.resize(idx + 1, FREE);
        }
        if let Some(slot) = self.chans.get_mut(idx) {
            *slot = ch;
        }
    }

    /// `EVTCHNOP_alloc_unbound`: a port that `remote` may later bind.
    pub fn alloc_unbound(&mut self, remote: DomId) -> Result<Port, Errno> {
        let p = self.free_port()?;
        self.install(
            p,
            Channel {
                state: State::Unbound { remote },
                vcpu: 0,
            },
        );
        Ok(p)
    }

    /// `EVTCHNOP_bind_virq`. `bound` says whether this vCPU already has `virq` bound.
    pub fn bind_virq(
        &mut self,
        virq: u32,
        vcpu: u32,
        nr_vcpus: u32,
        bound: bool,
    ) -> Result<Port, Errno> {
        // Xen's order: the VIRQ, a global VIRQ on another vCPU, then the vCPU.
        if virq >= NR_VIRQS || (!virq_is_percpu(virq) && vcpu != 0) {
            return Err(EINVAL);
        }
        if vcpu >= nr_vcpus {
            return Err(ENOENT_OR_EINVAL);
        }
        if bound {
            return Err(EEXIST);
        }
        let p = self.free_port()?;
        self.install(
            p,
            Channel {
                state: State::Virq { virq },
                vcpu,
            },
        );
        Ok(p)
    }

    /// `EVTCHNOP_bind_pirq`: a port for `pirq`, notifying vCPU 0. The caller checked
    /// that the pirq is mapped and not bound yet (`pirq::Table::can_bind`).
    pub fn bind_pirq(&mut self, pirq: u32) -> Result<Port, Errno> {
        let p = self.free_port()?;
        self.install(
            p,
            Channel {
                state: State::Pirq { pirq },
                vcpu: 0,
            },
        );
        Ok(p)
    }

    /// `EVTCHNOP_bind_ipi`.
    pub fn bind_ipi(&mut self, vcpu: u32, nr_vcpus: u32) -> Result<Port, Errno> {
        if vcpu >= nr_vcpus {
            return Err(ENOENT_OR_EINVAL);
        }
        let p = self.free_port()?;
        self.install(
            p,
            Channel {
                state: State::Ipi,
                vcpu,
            },
        );
        Ok(p)
    }

    /// `EVTCHNOP_bind_vcpu`: only VIRQ (per-CPU ones excluded), interdomain, unbound
    /// and IPI... Xen allows interdomain, unbound and global VIRQs.
    pub fn bind_vcpu(&mut self, port: Port, vcpu: u32, nr_vcpus: u32) -> Result<(), Errno> {
        if vcpu >= nr_vcpus {
            return Err(ENOENT_OR_EINVAL);
        }
        let ch = self.get_mut(port).ok_or(EINVAL)?;
        match ch.state {
            State::Virq { virq } if virq_is_percpu(virq) => Err(EINVAL),
            State::Ipi => Err(EINVAL),
            _ => {
                ch.vcpu = vcpu;
                Ok(())
            }
        }
    }

    /// `EVTCHNOP_status`.
    pub fn status(&self, port: Port) -> Result<Channel, Errno> {
        if port >= self.limit {
            return Err(EINVAL);
        }
        Ok(self.chans.get(port as usize).copied().unwrap_or(FREE))
    }

    /// What `send` on `port` of domain `me` notifies (no state change).
    pub fn send(&self, me: DomId, port: Port) -> Result<Notify, Errno> {
        let ch = self.get(port).ok_or(EINVAL)?;
        match ch.state {
            State::Interdomain {
                remote,
                remote_port,
            } => Ok(Notify::Port {
                dom: remote,
                port: remote_port,
                vcpu: u32::MAX,
            }),
            State::Ipi => Ok(Notify::Port {
                dom: me,
                port,
                vcpu: ch.vcpu,
            }),
            State::Unbound { .. } => Ok(Notify::None),
            _ => Err(EINVAL),
        }
    }

    /// Free `port` whatever its state, with no peer to update (the peer domain is
    /// gone). Returns whether it was allocated.
    pub fn force_close(&mut self, port: Port) -> bool {
        let was = self.get(port).is_some();
        if was {
            self.install(port, FREE);
        }
        was
    }

    /// Iterate over allocated ports.
    pub fn ports(&self) -> impl Iterator<Item = (Port, &Channel)> {
        self.chans
            .iter()
            .enumerate()
            .filter(|(_, c)| c.state != State::Free)
            .map(|(p, c)| (p as Port, c))
    }
}

/// Xen returns `-ENOENT` for a bad vCPU id in bind_ipi/bind_vcpu.
const ENOENT_OR_EINVAL: Errno = xen_abi::errno::ENOENT;

/// Outcome of closing a port, for the mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    Plain,
    /// A VIRQ binding went away: clear the vCPU's VIRQ slot.
    Virq {
        virq: u32,
        vcpu: u32,
    },
    /// A pirq binding went away: unbind it in the pirq table (and mask its pin).
    Pirq {
        pirq: u32,
    },
}

/// Close `port` in a single table whose interdomain peer (if any) lives in `peer`.
///
/// `peer` is `None` when the port is not interdomain or the peer is the same domain
/// (then the peer end is in `t` too).
pub fn close_in(
    t: &mut Table,
    me: DomId,
    port: Port,
    peer: Option<&mut Table>,
) -> Result<Closed, Errno> {
    let ch = *t.get(port).ok_or(EINVAL)?;
    let out = match ch.state {
        State::Free => return Err(EINVAL),
        State::Unbound { .. } | State::Ipi => Closed::Plain,
        State::Virq { virq } => Closed::Virq {
            virq,
            vcpu: ch.vcpu,
        },
        State::Pirq { pirq } => Closed::Pirq { pirq },
        State::Interdomain {
            remote,
            remote_port,
        } => {
            let peer_table: &mut Table = match peer {
                Some(p) => p,
                None if remote == me => &mut *t,
                None => return Err(ESRCH),
            };
            let pch = peer_table.get_mut(remote_port).ok_or(EINVAL)?;
            if pch.state
                != (State::Interdomain {
                    remote: me,
                    remote_port: port,
                })
            {
                return Err(EINVAL);
            }
            pch.state = State::Unbound { remote: me };
            Closed::Plain
        }
    };
    t.install(port, FREE);
    Ok(out)
}

/// `EVTCHNOP_bind_interdomain`: domain `me` binds `remote_port` of `remote` (which must
/// be `Unbound` for `me`). Returns the local port. Both tables change, or neither.
pub fn bind_interdomain(
    local: &mut Table,
    me: DomId,
    remote_table: Option<&mut Table>,
    remote: DomId,
    remote_port: Port,
) -> Result<Port, Errno> {
    let lp = local.free_port()?;
    match remote_table {
        Some(rt) => {
            let rch = rt.get_mut(remote_port).ok_or(EINVAL)?;
            if rch.state != (State::Unbound { remote: me }) {
                return Err(EINVAL);
            }
            rch.state = State::Interdomain {
                remote: me,
                remote_port: lp,
            };
        }
        None => {
            // Loopback: both ends in `local`.
            if remote != me {
                return Err(ESRCH);
            }
            if remote_port == lp {
                return Err(EINVAL);
            }
            let rch = local.get_mut(remote_port).ok_or(EINVAL)?;
            if rch.state != (State::Unbound { remote: me }) {
                return Err(EINVAL);
            }
            rch.state = State::Interdomain {
                remote: me,
                remote_port: lp,
            };
        }
    }
    local.install(
        lp,
        Channel {
            state: State::Interdomain {
                remote,
                remote_port,
            },
            vcpu: 0,
        },
    );
    Ok(lp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_send_close() {
        let mut t = Table::new(64);
        let p = t.alloc_unbound(0).unwrap();
        assert_eq!(p, 1);
        assert_eq!(t.send(0, p), Ok(Notify::None));
        assert_eq!(close_in(&mut t, 0, p, None), Ok(Closed::Plain));
        assert_eq!(t.send(0, p), Err(EINVAL));
        assert_eq!(close_in(&mut t, 0, p, None), Err(EINVAL));
        assert_eq!(t.alloc_unbound(0), Ok(1), "freed ports are reused");
    }

    #[test]
    fn port_zero_and_limit_invalid() {
        let mut t = Table::new(4);
        assert_eq!(t.send(0, 0), Err(EINVAL));
        assert_eq!(t.send(0, 4), Err(EINVAL));
        assert_eq!(t.send(0, u32::MAX), Err(EINVAL));
        for _ in 1..4 {
            t.alloc_unbound(0).unwrap();
        }
        assert_eq!(t.alloc_unbound(0), Err(ENOSPC));
    }

    #[test]
    fn virq_rules() {
        let mut t = Table::new(64);
        assert_eq!(t.bind_virq(NR_VIRQS, 0, 1, false), Err(EINVAL));
        assert_eq!(
            t.bind_virq(2, 1, 2, false),
            Err(EINVAL),
            "global VIRQ on vCPU 1"
        );
        let p = t.bind_virq(0, 1, 2, false).unwrap();
        assert_eq!(t.bind_virq(0, 1, 2, true), Err(EEXIST));
        assert_eq!(t.send(0, p), Err(EINVAL), "VIRQ ports cannot be sent on");
        assert_eq!(
            close_in(&mut t, 0, p, None),
            Ok(Closed::Virq { virq: 0, vcpu: 1 })
        );
    }

    #[test]
    fn loopback_interdomain() {
        let mut t = Table::new(64);
        let a = t.alloc_unbound(7).unwrap();
        // Domain 7 is not us: loopback bind refused.
        assert_eq!(bind_interdomain(&mut t, 0, None, 0, a), Err(EINVAL));
        let b = t.alloc_unbound(0).unwrap();
        let c = bind_interdomain(&mut t, 0, None, 0, b).unwrap();
        assert_eq!(
            t.send(0, c),
            Ok(Notify::Port {
                dom: 0,
                port: b,
                vcpu: u32::MAX
            })
        );
        assert_eq!(
            t.send(0, b),
            Ok(Notify::Port {
                dom: 0,
                port: c,
                vcpu: u32::MAX
            })
        );
        close_in(&mut t, 0, c, None).unwrap();
        assert_eq!(t.get(b).unwrap().state, State::Unbound { remote: 0 });
    }

    #[test]
    fn two_domains() {
        let mut t1 = Table::new(64);
        let mut t2 = Table::new(64);
        let p1 = t1.alloc_unbound(2).unwrap();
        // Domain 3 may not bind a port reserved for domain 2.
        assert_eq!(
            bind_interdomain(&mut t2, 3, Some(&mut t1), 1, p1),
            Err(EINVAL)
        );
        let p2 = bind_interdomain(&mut t2, 2, Some(&mut t1), 1, p1).unwrap();
        assert_eq!(
            t1.send(1, p1),
            Ok(Notify::Port {
                dom: 2,
                port: p2,
                vcpu: u32::MAX
            })
        );
        close_in(&mut t1, 1, p1, Some(&mut t2)).unwrap();
        assert_eq!(t2.get(p2).unwrap().state, State::Unbound { remote: 1 });
    }
}
