//! Property test of the pirq state machine together with the event-channel table, as
//! the hypervisor drives them (map, bind, interrupt, EOI, close, unmap, destroy), against
//! a model of the I/O APIC pins: a port and a pirq are bound one to one (Q1), unbinding
//! and unmapping leave nothing behind (Q2), EOI unmasks only what an interrupt masked for
//! that pirq (Q3), a failed operation changes nothing (Q4), and a level-triggered pin
//! never delivers twice without an EOI in between.

use hv_core::evtchn::{self, Closed, State};
use hv_core::pirq::{Pin, Table, Trigger};
use proptest::prelude::*;
use std::collections::BTreeMap;

const NR_GSIS: u32 = 12;
const RESERVED: [u32; 3] = [0, 2, 4];

#[derive(Clone, Debug)]
enum Op {
    Map { gsi: i32, want: i32 },
    Unmap { pirq: u32 },
    Bind { pirq: u32 },
    Close { port: u32 },
    Interrupt { gsi: u32 },
    Eoi { pirq: u32 },
    Destroy,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (-2i32..14, prop_oneof![Just(-1i32), -2i32..14])
            .prop_map(|(gsi, want)| Op::Map { gsi, want }),
        (0u32..14).prop_map(|pirq| Op::Unmap { pirq }),
        (0u32..14).prop_map(|pirq| Op::Bind { pirq }),
        (0u32..10).prop_map(|port| Op::Close { port }),
        (0u32..14).prop_map(|gsi| Op::Interrupt { gsi }),
        (0u32..14).prop_map(|pirq| Op::Eoi { pirq }),
        Just(Op::Destroy),
    ]
}

fn trigger(gsi: u32) -> Trigger {
    if gsi % 2 == 1 {
        Trigger::Level
    } else {
        Trigger::Edge
    }
}

/// The pins: unmasked or not. Masked at start.
struct Pins(BTreeMap<u32, bool>);

impl Pins {
    fn apply(&mut self, p: Pin) {
        match p {
            Pin::Keep => {}
            Pin::Mask(g) => {
                self.0.insert(g, false);
            }
            Pin::Unmask(g) => {
                self.0.insert(g, true);
            }
        }
    }
    fn unmasked(&self, g: u32) -> bool {
        self.0.get(&g).copied().unwrap_or(false)
    }
}

fn check(t: &Table, ev: &evtchn::Table, pins: &Pins) {
    let mut ports = std::collections::BTreeSet::new();
    let mut gsis = std::collections::BTreeSet::new();
    for e in t.entries() {
        assert!(gsis.insert(e.gsi), "a GSI mapped twice");
        assert_eq!(e.pirq, e.gsi);
        assert!(!RESERVED.contains(&e.gsi));
        if let Some(p) = e.port {
            assert!(ports.insert(p), "a port bound to two pirqs (Q1)");
            assert_eq!(t.pirq_of_port(p), Some(e.pirq));
            assert_eq!(
                ev.get(p).map(|c| c.state),
                Some(State::Pirq { pirq: e.pirq }),
                "pirq and port disagree (Q1)"
            );
        } else {
            assert!(!e.awaiting_eoi, "an unbound pirq awaits an EOI (Q2)");
            assert!(!pins.unmasked(e.gsi), "an unbound pirq's pin is unmasked");
        }
        if e.awaiting_eoi {
            assert!(!pins.unmasked(e.gsi), "a pin awaiting EOI is unmasked");
        }
    }
    // Pins of unmapped GSIs are masked.
    for g in 0..NR_GSIS + 2 {
        if t.pirq_of_gsi(g).is_none() {
            assert!(
                !pins.unmasked(g),
                "the pin of unmapped GSI {g} is unmasked (Q2)"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn pirq_state_machine(ops in proptest::collection::vec(op(), 1..60)) {
        let mut t = Table::new();
        let mut ev = evtchn::Table::new(8);
        let mut pins = Pins(BTreeMap::new());
        for o in ops {
            let before = (t.clone(), ev.clone());
            match o {
                Op::Map { gsi, want } => {
                    let tr = trigger(gsi.max(0) as u32);
                    let r = t.map_gsi(gsi, want, tr, NR_GSIS, |g| RESERVED.contains(&g));
                    match r {
                        Ok(p) => {
                            prop_assert_eq!(p as i32, gsi);
                            prop_assert!(want == -1 || want == gsi);
                        }
                        Err(_) => prop_assert_eq!((&t, &ev), (&before.0, &before.1), "Q4"),
                    }
                }
                Op::Unmap { pirq } => match t.unmap(pirq) {
                    Ok((gsi, _port)) => {
                        pins.apply(Pin::Mask(gsi));
                        prop_assert!(t.get(pirq).is_none());
                    }
                    Err(_) => prop_assert_eq!((&t, &ev), (&before.0, &before.1), "Q4"),
                },
                Op::Bind { pirq } => {
                    // As events.rs: check, allocate the port, then bind.
                    match t.can_bind(pirq) {
                        Ok(()) => {
                            if let Ok(port) = ev.bind_pirq(pirq) {
                                let pin = t.bind(pirq, port);
                                prop_assert!(pin.is_ok());
                                pins.apply(pin.unwrap_or(Pin::Keep));
                            }
                        }
                        Err(_) => prop_assert_eq!((&t, &ev), (&before.0, &before.1), "Q4"),
                    }
                }
                Op::Close { port } => match evtchn::close_in(&mut ev, 0, port, None) {
                    Ok(Closed::Pirq { .. }) => {
                        pins.apply(t.unbind_port(port));
                        prop_assert!(t.pirq_of_port(port).is_none());
                    }
                    Ok(_) => prop_assert!(t.pirq_of_port(port).is_none()),
                    Err(_) => prop_assert_eq!((&t, &ev), (&before.0, &before.1), "Q4"),
                },
                Op::Interrupt { gsi } => {
                    // Only an unmasked pin interrupts; a level pin is masked in the
                    // handler, before the table is consulted.
                    if pins.unmasked(gsi) {
                        let level = t.get(gsi).is_some_and(|e| e.trigger == Trigger::Level);
                        if level {
                            pins.apply(Pin::Mask(gsi));
                        }
                        let (port, pin) = t.interrupt(gsi);
                        pins.apply(pin);
                        let e = t.get(gsi).copied();
                        prop_assert!(e.is_some());
                        prop_assert_eq!(port, e.and_then(|e| e.port));
                        if level {
                            prop_assert!(!pins.unmasked(gsi), "level pin unmasked before EOI");
                        }
                    }
                }
                Op::Eoi { pirq } => {
                    let waiting = t.get(pirq).is_some_and(|e| e.awaiting_eoi);
                    match t.eoi(pirq) {
                        Ok(pin) => {
                            if waiting {
                                prop_assert!(matches!(pin, Pin::Unmask(g) if g == pirq), "Q3");
                            } else {
                                prop_assert_eq!(pin, Pin::Keep, "Q3: EOI unmasked a pin it did not mask");
                            }
                            pins.apply(pin);
                            // A second EOI does nothing.
                            prop_assert_eq!(t.eoi(pirq), Ok(Pin::Keep));
                        }
                        Err(_) => prop_assert_eq!((&t, &ev), (&before.0, &before.1), "Q4"),
                    }
                }
                Op::Destroy => {
                    for g in t.clear() {
                        pins.apply(Pin::Mask(g));
                    }
                    let ports: Vec<u32> = ev.ports().map(|(p, _)| p).collect();
                    for p in ports {
                        ev.force_close(p);
                    }
                    prop_assert_eq!(t.entries().count(), 0);
                }
            }
            check(&t, &ev, &pins);
        }
    }
}

#[test]
fn level_pirq_masked_until_eoi() {
    let mut t = Table::new();
    let mut ev = evtchn::Table::new(8);
    assert_eq!(t.map_gsi(11, -1, Trigger::Level, 24, |g| g == 4), Ok(11));
    assert_eq!(t.map_gsi(11, 11, Trigger::Level, 24, |g| g == 4), Ok(11));
    assert_eq!(
        t.map_gsi(4, -1, Trigger::Edge, 24, |g| g == 4),
        Err(xen_abi::errno::EBUSY)
    );
    assert_eq!(
        t.map_gsi(24, -1, Trigger::Edge, 24, |_| false),
        Err(xen_abi::errno::EINVAL)
    );
    assert_eq!(
        t.map_gsi(-1, -1, Trigger::Edge, 24, |_| false),
        Err(xen_abi::errno::EINVAL)
    );
    assert_eq!(t.needs_eoi(11), Ok(true));
    let port = ev.bind_pirq(11).unwrap_or(0);
    assert_eq!(t.bind(11, port), Ok(Pin::Unmask(11)));
    assert_eq!(t.can_bind(11), Err(xen_abi::errno::EEXIST));
    assert_eq!(t.can_bind(12), Err(xen_abi::errno::EPERM));
    assert_eq!(t.interrupt(11), (Some(port), Pin::Mask(11)));
    assert_eq!(t.eoi(11), Ok(Pin::Unmask(11)));
    assert_eq!(t.eoi(11), Ok(Pin::Keep));
    assert_eq!(t.unbind_port(port), Pin::Mask(11));
    assert_eq!(t.eoi(11), Ok(Pin::Keep));
    assert_eq!(t.unmap(11), Ok((11, None)));
    assert_eq!(t.unmap(11), Err(xen_abi::errno::EINVAL));
}
