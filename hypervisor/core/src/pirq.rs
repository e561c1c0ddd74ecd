//! Physical IRQs given to the control domain: the per-domain pirq table (Xen's
//! `struct pirq` with `arch.irq` and `evtchn`), as a pure state machine.
//!
//! A pirq names a GSI (`PHYSDEVOP_map_pirq`, pirq = GSI as Xen does for the hardware
//! domain), may be bound to one event-channel port (`EVTCHNOP_bind_pirq`), and, for a
//! level-triggered GSI, stays masked from the interrupt until the guest's
//! `PHYSDEVOP_eoi` (Xen's `ACKTYPE_UNMASK`): a screaming device line cannot storm the
//! hypervisor. The mechanism programs the I/O APIC as each operation's result says.
//!
//! Invariants (checked by `tests/pirq_props.rs`):
//! - Q1: a port is bound to at most one pirq, a pirq to at most one port, a GSI to at
//!   most one pirq, and `pirq_of_port` / `port_of` agree both ways.
//! - Q2: an unbound or unmapped pirq leaves no state behind: not awaiting EOI, no port.
//! - Q3: `eoi` unmasks only a pin that `interrupt` masked for that same pirq, once.
//! - Q4: an operation that fails changes nothing.

extern crate alloc;

use alloc::vec::Vec;
use xen_abi::errno::{Errno, EBUSY, EEXIST, EINVAL, ENOSPC, EPERM};

pub type Pirq = u32;
pub type Gsi = u32;
pub type Port = u32;

/// Pirq numbers a domain may name: Xen's hardware domain has `nr_irqs_gsi` plus 256
/// (`extra_dom0_irqs`); beyond, the pirq hypercalls say `-EINVAL`.
pub fn nr_pirqs(nr_gsis: u32) -> u32 {
    nr_gsis + 256
}

/// Most pirqs one domain may map.
pub const MAX_PIRQS: usize = 64;

/// How a GSI signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Edge,
    Level,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub pirq: Pirq,
    pub gsi: Gsi,
    pub trigger: Trigger,
    /// The event-channel port it is bound to.
    pub port: Option<Port>,
    /// Level-triggered: the pin was masked by an interrupt and waits for the guest's EOI.
    pub awaiting_eoi: bool,
}

/// What the mechanism must do to the I/O APIC pin after an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pin {
    /// Leave it as it is.
    Keep,
    /// Mask `gsi`.
    Mask(Gsi),
    /// Unmask `gsi`.
    Unmask(Gsi),
}

/// One domain's pirqs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    entries: Vec<Entry>,
}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    pub fn get(&self, pirq: Pirq) -> Option<&Entry> {
        self.entries.iter().find(|e| e.pirq == pirq)
    }

    fn get_mut(&mut self, pirq: Pirq) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.pirq == pirq)
    }

    /// The pirq mapped to `gsi`, if any.
    pub fn pirq_of_gsi(&self, gsi: Gsi) -> Option<Pirq> {
        self.entries.iter().find(|e| e.gsi == gsi).map(|e| e.pirq)
    }

    /// The pirq bound to `port`, if any.
    pub fn pirq_of_port(&self, port: Port) -> Option<Pirq> {
        self.entries
            .iter()
            .find(|e| e.port == Some(port))
            .map(|e| e.pirq)
    }

    /// Every mapped pirq.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// `PHYSDEVOP_map_pirq` with `MAP_PIRQ_TYPE_GSI`: `want` is the pirq the caller asked
    /// for (-1: any), `nr_gsis` the number of GSIs the I/O APICs have, `reserved` the
    /// GSIs the hypervisor keeps. The pirq is the GSI (Xen's choice for the hardware
    /// domain); mapping a GSI again returns its pirq.
    pub fn map_gsi(
        &mut self,
        gsi: i32,
        want: i32,
        trigger: Trigger,
        nr_gsis: u32,
        reserved: impl Fn(Gsi) -> bool,
    ) -> Result<Pirq, Errno> {
        let gsi = u32::try_from(gsi).map_err(|_| EINVAL)?;
        if gsi >= nr_gsis {
            return Err(EINVAL);
        }
        if reserved(gsi) {
            return Err(EBUSY);
        }
        if want != -1 && want != gsi as i32 {
            // Xen: a pirq already mapped to another IRQ is -EEXIST; a free pirq other
            // than the GSI is refused here (we only offer pirq = GSI).
            return Err(if want >= 0 && self.get(want as u32).is_some() {
                EEXIST
            } else {
                EINVAL
            });
        }
        if let Some(p) = self.pirq_of_gsi(gsi) {
            return Ok(p);
        }
        if self.entries.len() >= MAX_PIRQS {
            return Err(ENOSPC);
        }
        self.entries.push(Entry {
            pirq: gsi,
            gsi,
            trigger,
            port: None,
            awaiting_eoi: false,
        });
        Ok(gsi)
    }

    /// `PHYSDEVOP_unmap_pirq`: the pirq goes, its port binding with it (as Xen's forced
    /// unbind: the port stays a pirq port that never fires). Returns the GSI (to mask)
    /// and the port it was bound to.
    pub fn unmap(&mut self, pirq: Pirq) -> Result<(Gsi, Option<Port>), Errno> {
        let i = self
            .entries
            .iter()
            .position(|e| e.pirq == pirq)
            .ok_or(EINVAL)?;
        let e = self.entries.swap_remove(i);
        Ok((e.gsi, e.port))
    }

    /// Whether `bind` would succeed (so the port is allocated only then). An unmapped
    /// pirq is `-EPERM`, as Xen's `pirq_access_permitted` (the caller checks the range).
    pub fn can_bind(&self, pirq: Pirq) -> Result<(), Errno> {
        let e = self.get(pirq).ok_or(EPERM)?;
        if e.port.is_some() {
            return Err(EEXIST);
        }
        Ok(())
    }

    /// `EVTCHNOP_bind_pirq` once the port exists: returns the pin to unmask.
    pub fn bind(&mut self, pirq: Pirq, port: Port) -> Result<Pin, Errno> {
        self.can_bind(pirq)?;
        if self.pirq_of_port(port).is_some() {
            return Err(EBUSY);
        }
        let e = self.get_mut(pirq).ok_or(EINVAL)?;
        e.port = Some(port);
        e.awaiting_eoi = false;
        Ok(Pin::Unmask(e.gsi))
    }

    /// The port was closed: unbind its pirq (if any) and mask the pin.
    pub fn unbind_port(&mut self, port: Port) -> Pin {
        match self.entries.iter_mut().find(|e| e.port == Some(port)) {
            Some(e) => {
                e.port = None;
                e.awaiting_eoi = false;
                Pin::Mask(e.gsi)
            }
            None => Pin::Keep,
        }
    }

    /// The GSI interrupted: the port to set pending, if bound. A level-triggered pin
    /// stays masked until `eoi` (the mechanism masked it in the handler); with no
    /// port bound the pin stays masked.
    pub fn interrupt(&mut self, gsi: Gsi) -> (Option<Port>, Pin) {
        let Some(e) = self.entries.iter_mut().find(|e| e.gsi == gsi) else {
            return (None, Pin::Mask(gsi));
        };
        match (e.port, e.trigger) {
            (None, _) => (None, Pin::Mask(gsi)),
            (Some(p), Trigger::Level) => {
                e.awaiting_eoi = true;
                (Some(p), Pin::Mask(gsi))
            }
            (Some(p), Trigger::Edge) => (Some(p), Pin::Keep),
        }
    }

    /// `PHYSDEVOP_eoi`: unmask the pin if an interrupt masked it for this pirq.
    pub fn eoi(&mut self, pirq: Pirq) -> Result<Pin, Errno> {
        let e = self.get_mut(pirq).ok_or(EINVAL)?;
        if e.awaiting_eoi && e.port.is_some() {
            e.awaiting_eoi = false;
            Ok(Pin::Unmask(e.gsi))
        } else {
            Ok(Pin::Keep)
        }
    }

    /// `PHYSDEVOP_irq_status_query`: whether the guest must `PHYSDEVOP_eoi`.
    pub fn needs_eoi(&self, pirq: Pirq) -> Result<bool, Errno> {
        let e = self.get(pirq).ok_or(EINVAL)?;
        Ok(e.trigger == Trigger::Level)
    }

    /// The domain dies: every pirq goes; returns the GSIs to mask.
    pub fn clear(&mut self) -> Vec<Gsi> {
        self.entries.drain(..).map(|e| e.gsi).collect()
    }
}
