//! Property test of the event-channel state machine over random operation sequences
//! across three domains: interdomain bindings stay symmetric (E2), a failed operation
//! changes nothing (E3), port 0 and ports past the limit are never valid (E1).

use hv_core::evtchn::{bind_interdomain, close_in, Notify, State, Table};
use proptest::prelude::*;

const DOMS: usize = 3;
const LIMIT: u32 = 16;

#[derive(Clone, Debug)]
enum Op {
    AllocUnbound {
        dom: usize,
        remote: u16,
    },
    BindInterdomain {
        dom: usize,
        remote: usize,
        port: u32,
    },
    BindVirq {
        dom: usize,
        virq: u32,
        vcpu: u32,
    },
    BindIpi {
        dom: usize,
        vcpu: u32,
    },
    Close {
        dom: usize,
        port: u32,
    },
    Send {
        dom: usize,
        port: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let dom = 0..DOMS;
    // Mostly the low ports that are actually allocated; sometimes anything, including 0
    // and ports past the limit.
    let port = prop_oneof![8 => 0u32..5, 1 => 0..LIMIT + 2];
    prop_oneof![
        (dom.clone(), 0u16..DOMS as u16).prop_map(|(dom, remote)| Op::AllocUnbound { dom, remote }),
        (dom.clone(), 0..DOMS, port.clone()).prop_map(|(dom, remote, port)| Op::BindInterdomain {
            dom,
            remote,
            port
        }),
        (dom.clone(), 0u32..26, 0u32..3).prop_map(|(dom, virq, vcpu)| Op::BindVirq {
            dom,
            virq,
            vcpu
        }),
        (dom.clone(), 0u32..3).prop_map(|(dom, vcpu)| Op::BindIpi { dom, vcpu }),
        (dom.clone(), port.clone()).prop_map(|(dom, port)| Op::Close { dom, port }),
        (dom, port).prop_map(|(dom, port)| Op::Send { dom, port }),
    ]
}

/// Two distinct mutable tables out of the array.
fn pair(t: &mut [Table], a: usize, b: usize) -> (&mut Table, &mut Table) {
    assert_ne!(a, b);
    if a < b {
        let (l, r) = t.split_at_mut(b);
        (&mut l[a], &mut r[0])
    } else {
        let (l, r) = t.split_at_mut(a);
        (&mut r[0], &mut l[b])
    }
}

fn apply(t: &mut [Table], op: &Op) -> bool {
    match *op {
        Op::AllocUnbound { dom, remote } => t[dom].alloc_unbound(remote).is_ok(),
        Op::BindInterdomain { dom, remote, port } => {
            if dom == remote {
                bind_interdomain(&mut t[dom], dom as u16, None, remote as u16, port).is_ok()
            } else {
                let (l, r) = pair(t, dom, remote);
                bind_interdomain(l, dom as u16, Some(r), remote as u16, port).is_ok()
            }
        }
        Op::BindVirq { dom, virq, vcpu } => {
            let bound = t[dom]
                .ports()
                .any(|(_, c)| c.state == State::Virq { virq } && c.vcpu == vcpu);
            t[dom].bind_virq(virq, vcpu, 2, bound).is_ok()
        }
        Op::BindIpi { dom, vcpu } => t[dom].bind_ipi(vcpu, 2).is_ok(),
        Op::Close { dom, port } => {
            let peer = match t[dom].get(port).map(|c| c.state) {
                Some(State::Interdomain { remote, .. }) if remote as usize != dom => {
                    Some(remote as usize)
                }
                _ => None,
            };
            match peer {
                Some(p) => {
                    let (l, r) = pair(t, dom, p);
                    close_in(l, dom as u16, port, Some(r)).is_ok()
                }
                None => close_in(&mut t[dom], dom as u16, port, None).is_ok(),
            }
        }
        Op::Send { dom, port } => {
            let r = t[dom].send(dom as u16, port);
            if let Ok(Notify::Port {
                dom: d, port: p, ..
            }) = r
            {
                // The notified port exists in the notified domain.
                assert!(
                    t[d as usize].get(p).is_some(),
                    "send notifies a port that does not exist"
                );
            }
            r.is_ok()
        }
    }
}

fn check(t: &[Table]) {
    for (d, table) in t.iter().enumerate() {
        assert!(table.get(0).is_none(), "E1: port 0 valid");
        assert!(table.get(LIMIT).is_none(), "E1: port past limit valid");
        for (p, c) in table.ports() {
            assert!(p > 0 && p < LIMIT);
            if let State::Interdomain {
                remote,
                remote_port,
            } = c.state
            {
                let peer = t[remote as usize]
                    .get(remote_port)
                    .expect("E2: peer port exists");
                assert_eq!(
                    peer.state,
                    State::Interdomain {
                        remote: d as u16,
                        remote_port: p
                    },
                    "E2: interdomain binding is symmetric"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn evtchn_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let mut t: Vec<Table> = (0..DOMS).map(|_| Table::new(LIMIT)).collect();
        for op in &ops {
            let before = t.clone();
            let ok = apply(&mut t, op);
            if !ok {
                prop_assert_eq!(&before, &t, "E3: failed {:?} changed state", op);
            }
            check(&t);
        }
    }
}
