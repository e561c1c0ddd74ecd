//! `event_channel_op` hypercall (`xen/event_channel.h`): 2-level event channels.
//!
//! `event_channel_op(cmd, arg)` with `arg` pointing at the op struct named below.

use crate::xen::DomId;
pub use crate::xen::{
    EVTCHN_2L_NR_CHANNELS, NR_VIRQS, VIRQ_ARCH_0, VIRQ_ARGO, VIRQ_CONSOLE, VIRQ_CON_RING,
    VIRQ_DEBUG, VIRQ_DEBUGGER, VIRQ_DOM_EXC, VIRQ_ENOMEM, VIRQ_MEM_EVENT, VIRQ_PCPU_STATE,
    VIRQ_TBUF, VIRQ_TIMER, VIRQ_XENOPROF, VIRQ_XENPMU,
};

/// `evtchn_port_t`.
pub type EvtchnPort = u32;

/// [`EvtchnBindInterdomain`].
pub const EVTCHNOP_BIND_INTERDOMAIN: u32 = 0;
/// [`EvtchnBindVirq`].
pub const EVTCHNOP_BIND_VIRQ: u32 = 1;
/// [`EvtchnBindPirq`].
pub const EVTCHNOP_BIND_PIRQ: u32 = 2;
/// [`EvtchnClose`].
pub const EVTCHNOP_CLOSE: u32 = 3;
/// [`EvtchnSend`].
pub const EVTCHNOP_SEND: u32 = 4;
/// [`EvtchnStatus`].
pub const EVTCHNOP_STATUS: u32 = 5;
/// [`EvtchnAllocUnbound`].
pub const EVTCHNOP_ALLOC_UNBOUND: u32 = 6;
/// [`EvtchnBindIpi`].
pub const EVTCHNOP_BIND_IPI: u32 = 7;
/// [`EvtchnBindVcpu`].
pub const EVTCHNOP_BIND_VCPU: u32 = 8;
/// [`EvtchnUnmask`].
pub const EVTCHNOP_UNMASK: u32 = 9;
/// [`EvtchnReset`].
pub const EVTCHNOP_RESET: u32 = 10;
pub const EVTCHNOP_INIT_CONTROL: u32 = 11;
pub const EVTCHNOP_EXPAND_ARRAY: u32 = 12;
pub const EVTCHNOP_SET_PRIORITY: u32 = 13;

/// `EvtchnStatus::status` values.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
pub const EVTCHNSTAT_PIRQ: u32 = 3;
pub const EVTCHNSTAT_VIRQ: u32 = 4;
pub const EVTCHNSTAT_IPI: u32 = 5;

/// `EvtchnBindPirq::flags`: the pirq may be shared.
pub const BIND_PIRQ_WILL_SHARE: u32 = 1;

/// `EVTCHNOP_alloc_unbound`: allocate a port in `dom` that `remote_dom` may bind.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnAllocUnbound {
    /// IN: domain to allocate in (`DOMID_SELF` unless privileged).
    pub dom: DomId,
    /// IN: domain allowed to bind.
    pub remote_dom: DomId,
    /// OUT: the fresh port.
    pub port: EvtchnPort,
}
const _: () = assert!(core::mem::size_of::<EvtchnAllocUnbound>() == 8);

/// `EVTCHNOP_bind_interdomain`: connect to `remote_port` of `remote_dom`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindInterdomain {
    /// IN: remote domain.
    pub remote_dom: DomId,
    pub _pad: u16,
    /// IN: its unbound port allocated for us.
    pub remote_port: EvtchnPort,
    /// OUT: our new local port.
    pub local_port: EvtchnPort,
}
const _: () = assert!(core::mem::size_of::<EvtchnBindInterdomain>() == 12);

/// `EVTCHNOP_bind_virq`: bind a `VIRQ_*` on a vCPU to a new port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVirq {
    /// IN: `VIRQ_*`.
    pub virq: u32,
    /// IN: vCPU to deliver on.
    pub vcpu: u32,
    /// OUT: the new port.
    pub port: EvtchnPort,
}
const _: () = assert!(core::mem::size_of::<EvtchnBindVirq>() == 12);

/// `EVTCHNOP_bind_pirq`: bind a physical IRQ (privileged).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindPirq {
    /// IN: the pirq.
    pub pirq: u32,
    /// IN: `BIND_PIRQ__WILL_SHARE`.
    pub flags: u32,
    /// OUT: the new port.
    pub port: EvtchnPort,
}
const _: () = assert!(core::mem::size_of::<EvtchnBindPirq>() == 12);

/// `EVTCHNOP_bind_ipi`: a port for IPIs to `vcpu`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindIpi {
    /// IN: vCPU to deliver on.
    pub vcpu: u32,
    /// OUT: the new port.
    pub port: EvtchnPort,
}
const _: () = assert!(core::mem::size_of::<EvtchnBindIpi>() == 8);

/// `EVTCHNOP_close`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnClose {
    /// IN: port to close.
    pub port: EvtchnPort,
}
const _: () = assert!(core::mem::size_of::<EvtchnClose>() == 4);

/// `EVTCHNOP_send`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnSend {
    /// IN: local port to notify through.
    pub port: EvtchnPort,
}
const _: () = assert!(core::mem::size_of::<EvtchnSend>() == 4);

/// `EVTCHNOP_status`. The C union `u` is flattened to two words: `u.unbound.dom`,
/// `u.interdomain.dom`, `u.pirq`, `u.virq` are the first word (dom in its low 16 bits),
/// `u.interdomain.port` the second.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnStatus {
    /// IN: domain owning the port.
    pub dom: DomId,
    pub _pad: u16,
    /// IN: the port.
    pub port: EvtchnPort,
    /// OUT: `EVTCHNSTAT_*`.
    pub status: u32,
    /// OUT: vCPU the port is bound to.
    pub vcpu: u32,
    /// OUT: remote dom (unbound, interdomain), pirq or virq.
    pub u0: u32,
    /// OUT: remote port (interdomain).
    pub u1: u32,
}
const _: () = assert!(core::mem::size_of::<EvtchnStatus>() == 24);

/// `EVTCHNOP_bind_vcpu`: deliver `port` on `vcpu`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVcpu {
    /// IN: the port.
    pub port: EvtchnPort,
    /// IN: the vCPU.
    pub vcpu: u32,
}
const _: () = assert!(core::mem::size_of::<EvtchnBindVcpu>() == 8);

/// `EVTCHNOP_unmask`: clear the mask bit and re-raise the upcall if pending.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnUnmask {
    /// IN: the port.
    pub port: EvtchnPort,
}
const _: () = assert!(core::mem::size_of::<EvtchnUnmask>() == 4);

/// `EVTCHNOP_reset`: close all of `dom`'s ports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnReset {
    /// IN: the domain.
    pub dom: DomId,
}
const _: () = assert!(core::mem::size_of::<EvtchnReset>() == 2);

/// `struct evtchn_op` (compat hypercall 16): `cmd` then the op, in a 32-byte union
/// (the union's alignment is 4, so the op starts at offset 4).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnOp {
    /// IN: `EVTCHNOP_*`.
    pub cmd: u32,
    /// IN/OUT: the op struct's bytes.
    pub u: [u32; 6],
}
const _: () = assert!(core::mem::size_of::<EvtchnOp>() == 28);
