//! The XenBus device state machine (`xen/io/xenbus.h`) and the helpers split drivers use
//! to meet their other end through XenStore.
//!
//! A frontend's device node is `device/<type>/<id>` in its home (e.g.
//! `/local/domain/3/device/vif/0`); it names its backend in `backend` (a path) and
//! `backend-id` (a domid), and the backend's node names the frontend the same way
//! (`frontend`, `frontend-id`). Each end publishes its [`XenbusState`] in its node's
//! `state` key and watches the other end's. The usual frontend sequence: wait for the
//! backend's `InitWait`, read its features, write the ring references and event channel
//! (in a transaction), switch to `Initialised` (or straight to `Connected`), wait for the
//! backend's `Connected`.

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use xen_abi::xen::{DomId, DOMID_FIRST_RESERVED};

use super::{parse_u64, Error, Nodes, XenStore};

/// `enum xenbus_state`: where a device end is in the connection handshake. XenStore holds
/// it as a decimal string in the end's `state` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum XenbusState {
    /// 0: no state (also what a missing or unreadable `state` key reads as).
    Unknown = 0,
    /// 1: setting up.
    Initialising = 1,
    /// 2: waiting for information from the other end (a backend that published its
    /// features).
    InitWait = 2,
    /// 3: this end's information is published (a frontend's rings).
    Initialised = 3,
    /// 4: connected.
    Connected = 4,
    /// 5: going down.
    Closing = 5,
    /// 6: closed.
    Closed = 6,
    /// 7: reconfiguring.
    Reconfiguring = 7,
    /// 8: reconfigured.
    Reconfigured = 8,
}

impl XenbusState {
    /// Every state, in numeric order.
    pub const ALL: [XenbusState; 9] = [
        XenbusState::Unknown,
        XenbusState::Initialising,
        XenbusState::InitWait,
        XenbusState::Initialised,
        XenbusState::Connected,
        XenbusState::Closing,
        XenbusState::Closed,
        XenbusState::Reconfiguring,
        XenbusState::Reconfigured,
    ];

    /// The state numbered `v`.
    pub const fn from_u32(v: u32) -> Option<XenbusState> {
        match v {
            0 => Some(XenbusState::Unknown),
            1 => Some(XenbusState::Initialising),
            2 => Some(XenbusState::InitWait),
            3 => Some(XenbusState::Initialised),
            4 => Some(XenbusState::Connected),
            5 => Some(XenbusState::Closing),
            6 => Some(XenbusState::Closed),
            7 => Some(XenbusState::Reconfiguring),
            8 => Some(XenbusState::Reconfigured),
            _ => None,
        }
    }

    /// Parses a `state` value: a decimal number, surrounding whitespace and a trailing
    /// NUL allowed.
    pub fn parse(value: &[u8]) -> Option<XenbusState> {
        parse_u64(value)
            .and_then(|v| u32::try_from(v).ok())
            .and_then(XenbusState::from_u32)
    }

    /// The value written to a `state` key (`"4"`).
    pub const fn as_wire(self) -> &'static str {
        match self {
            XenbusState::Unknown => "0",
            XenbusState::Initialising => "1",
            XenbusState::InitWait => "2",
            XenbusState::Initialised => "3",
            XenbusState::Connected => "4",
            XenbusState::Closing => "5",
            XenbusState::Closed => "6",
            XenbusState::Reconfiguring => "7",
            XenbusState::Reconfigured => "8",
        }
    }

    /// The name Linux's `xenbus_strstate` prints (`"Connected"`).
    pub const fn name(self) -> &'static str {
        match self {
            XenbusState::Unknown => "Unknown",
            XenbusState::Initialising => "Initialising",
            XenbusState::InitWait => "InitWait",
            XenbusState::Initialised => "Initialised",
            XenbusState::Connected => "Connected",
            XenbusState::Closing => "Closing",
            XenbusState::Closed => "Closed",
            XenbusState::Reconfiguring => "Reconfiguring",
            XenbusState::Reconfigured => "Reconfigured",
        }
    }
}

impl fmt::Display for XenbusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<u32> for XenbusState {
    type Error = u32;
    fn try_from(v: u32) -> Result<XenbusState, u32> {
        XenbusState::from_u32(v).ok_or(v)
    }
}

/// `dir/key` (without doubling a `/`).
pub fn join(dir: &str, key: &str) -> String {
    format!("{}/{key}", dir.strip_suffix('/').unwrap_or(dir))
}

/// A frontend's device node, relative to its home: `device/<kind>/<id>`.
pub fn device_node(kind: &str, id: &str) -> String {
    format!("device/{kind}/{id}")
}

/// The ids of this domain's devices of `kind` (`directory("device/<kind>")`; none if the
/// directory is missing).
pub fn list_devices<S: Nodes + ?Sized>(xb: &S, kind: &str) -> Result<Vec<String>, Error> {
    match xb.directory(&format!("device/{kind}")) {
        Err(Error::ENOENT) => Ok(Vec::new()),
        r => r,
    }
}

/// The state in `<node>/state`: `Unknown` when the key is missing, unreadable or not a
/// state (as Linux's `xenbus_read_driver_state`); transport failures are errors.
pub fn read_state<S: Nodes + ?Sized>(xb: &S, node: &str) -> Result<XenbusState, Error> {
    match xb.read(&join(node, "state")) {
        Ok(v) => Ok(XenbusState::parse(&v).unwrap_or(XenbusState::Unknown)),
        Err(Error::ENOENT | Error::EACCES) => Ok(XenbusState::Unknown),
        Err(e) => Err(e),
    }
}

/// Publishes `state` in `<node>/state`, in a transaction (Linux's
/// `xenbus_switch_state`). A node without a `state` key has been removed by the
/// toolstack: that fails with `ENOENT` and writes nothing. Writing the state the node
/// already has is skipped (it would fire the other end's watch for nothing).
pub fn switch_state<S: XenStore>(xb: &S, node: &str, state: XenbusState) -> Result<(), Error> {
    let path = join(node, "state");
    xb.transaction(|tx| {
        let current = tx.read(&path)?;
        if XenbusState::parse(&current) == Some(state) {
            return Ok(());
        }
        tx.write(&path, state.as_wire().as_bytes())
    })
}

static NEXT_TOKEN: AtomicU32 = AtomicU32::new(0);

/// Waits until the other end's state (`<otherend>/state`) is `wanted`, through a watch;
/// fails with `Timeout` after `timeout` (`None`: waits for ever).
pub fn wait_for_state<S: XenStore>(
    xb: &S,
    otherend: &str,
    wanted: XenbusState,
    timeout: Option<Duration>,
) -> Result<XenbusState, Error> {
    wait_for_state_where(xb, otherend, |s| s == wanted, timeout)
}

/// Waits until the other end's state satisfies `done` (e.g. `|s| s >= Connected`, to also
/// notice a backend that went to `Closing`), and returns it.
pub fn wait_for_state_where<S: XenStore>(
    xb: &S,
    otherend: &str,
    done: impl Fn(XenbusState) -> bool,
    timeout: Option<Duration>,
) -> Result<XenbusState, Error> {
    let deadline = xb.deadline(timeout);
    let path = join(otherend, "state");
    let token = format!(
        "guest-sdk/state/{}",
        NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
    );
    xb.watch(&path, &token)?;
    let result = loop {
        match read_state(xb, otherend) {
            Ok(s) if done(s) => break Ok(s),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
        if xb.watch_event_until(deadline, &|_, t| t == token).is_none() {
            // One last look: the change may have come with the deadline.
            break match read_state(xb, otherend) {
                Ok(s) if done(s) => Ok(s),
                Ok(_) => Err(Error::Timeout),
                Err(e) => Err(e),
            };
        }
    };
    // The watch is gone with the connection if the ring broke; nothing else to do.
    let _ = xb.unwatch(&path, &token);
    result
}

/// The other end of a device node: where its node is and which domain serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherEnd {
    /// Its node (`/local/domain/0/backend/vif/3/0`).
    pub path: String,
    /// Its domain.
    pub domid: DomId,
}

/// Reads `<node>/<path_key>` and `<node>/<id_key>` (a domid below
/// `DOMID_FIRST_RESERVED`, else `Parse`).
pub fn read_otherend<S: Nodes + ?Sized>(
    xb: &S,
    node: &str,
    path_key: &str,
    id_key: &str,
) -> Result<OtherEnd, Error> {
    let path = xb.read_string(&join(node, path_key))?;
    let domid = xb.read_u64(&join(node, id_key))?;
    let domid = DomId::try_from(domid)
        .ok()
        .filter(|&d| d < DOMID_FIRST_RESERVED)
        .ok_or(Error::Parse)?;
    if path.is_empty() {
        return Err(Error::Parse);
    }
    Ok(OtherEnd { path, domid })
}

/// A frontend's backend: `backend` and `backend-id` of its device node.
pub fn read_backend<S: Nodes + ?Sized>(xb: &S, node: &str) -> Result<OtherEnd, Error> {
    read_otherend(xb, node, "backend", "backend-id")
}

/// A backend's frontend: `frontend` and `frontend-id` of its device node.
pub fn read_frontend<S: Nodes + ?Sized>(xb: &S, node: &str) -> Result<OtherEnd, Error> {
    read_otherend(xb, node, "frontend", "frontend-id")
}
