//! Property test of `SCHEDOP_poll`'s wake rule (`hv_core::sched::PollWait`) against Xen
//! 4.17's (`do_poll`, `evtchn_check_pollers`, `vcpu_unblock`), driven the way the
//! mechanism drives it: a poll is set up, the vCPU may be woken before it blocks
//! (`wake(false)`), blocks unless its poll ended, and is woken by a port of its domain
//! becoming pending (if `woken_by`), a kick or its timeout. Reference: a poll of one
//! port ends when that port becomes pending, a poll of any other number of ports when
//! any port does; a kick or the timeout ends either. Checked after every step: the vCPU
//! is blocked exactly when it set up a poll, blocked, and nothing that ends it came.

use hv_core::sched::PollWait;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// `SCHEDOP_poll` of these ports (none pending: it is set up).
    Poll(Vec<u32>),
    /// The mechanism's `exit(block)`: blocks unless the poll already ended.
    Block,
    /// Port becomes pending (was not before).
    Event(u32),
    /// Upcall became pending (`vcpu_kick`) or the poll timeout fired.
    Kick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop::collection::vec(0u32..6, 0..4).prop_map(Op::Poll),
        Just(Op::Block),
        (0u32..6).prop_map(Op::Event),
        Just(Op::Kick),
    ]
}

/// The mechanism's state of one vCPU.
#[derive(Default)]
struct Vcpu {
    poll: PollWait,
    blocked: bool,
}

impl Vcpu {
    fn wake(&mut self) {
        self.poll = self.poll.wake(self.blocked);
        self.blocked = false;
    }
}

/// The reference: what the poll waits for (`None`: not in a poll), whether the vCPU
/// got to block, and whether the poll ended.
#[derive(Default)]
struct Model {
    wants: Option<Option<u32>>,
    blocked: bool,
    ended: bool,
}

proptest! {
    #[test]
    fn a_poll_ends_exactly_as_on_xen(ops in prop::collection::vec(op(), 1..60)) {
        let mut v = Vcpu::default();
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Poll(ports) => {
                    if m.wants.is_some() {
                        // Blocked, or on its way to block: no hypercall.
                        continue;
                    }
                    prop_assert!(!v.blocked && v.poll == PollWait::Off);
                    v.poll = PollWait::armed(ports.len(), ports.first().copied().unwrap_or(0));
                    m = Model {
                        wants: Some(if ports.len() == 1 { Some(ports[0]) } else { None }),
                        blocked: false,
                        ended: false,
                    };
                }
                Op::Block => {
                    if v.blocked || m.wants.is_none() || m.blocked {
                        continue;
                    }
                    // `event_arrived` for a poll: ended before blocking (a pending
                    // single port is re-checked there too, but it ended the poll anyway).
                    if v.poll == PollWait::Woken {
                        v.poll = PollWait::Off;
                    } else {
                        prop_assert!(v.poll.polling());
                        v.blocked = true;
                    }
                    m.blocked = true;
                    if m.ended {
                        m.wants = None;
                    }
                }
                Op::Event(p) => {
                    if v.poll.woken_by(p) {
                        v.wake();
                    }
                    if let Some(w) = m.wants {
                        if w.is_none_or(|q| q == p) {
                            m.ended = true;
                        }
                    }
                }
                Op::Kick => {
                    v.wake();
                    if m.wants.is_some() {
                        m.ended = true;
                    }
                }
            }
            if m.ended && m.blocked {
                m.wants = None;
            }
            // Blocked exactly when it polls, blocked, and nothing ended the poll.
            let want_blocked = m.wants.is_some() && m.blocked && !m.ended;
            prop_assert_eq!(v.blocked, want_blocked);
            // A vCPU that runs again is not left polling.
            if !v.blocked && m.wants.is_none() {
                prop_assert!(!v.poll.polling());
            }
        }
    }
}

#[test]
fn one_port_is_woken_by_that_port_only_any_other_number_by_any_port() {
    let one = PollWait::armed(1, 7);
    assert!(one.woken_by(7) && !one.woken_by(8));
    for n in [0, 2, 3, 128] {
        let any = PollWait::armed(n, 7);
        assert!(any.woken_by(7) && any.woken_by(8) && any.woken_by(0));
    }
    assert!(!PollWait::Off.woken_by(7) && !PollWait::Woken.woken_by(7));
    assert_eq!(one.wake(false), PollWait::Woken);
    assert_eq!(one.wake(true), PollWait::Off);
    assert_eq!(PollWait::Off.wake(false), PollWait::Off);
}
