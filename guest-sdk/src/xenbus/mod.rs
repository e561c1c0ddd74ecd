//! XenBus: the guest side of XenStore (`xen/io/xs_wire.h`), and the XenBus device state
//! machine split drivers use to meet their other end.
//!
//! A domU's `start_info` names its store page (`store_mfn`, a frame of the start-of-day
//! region) and event channel (`store_evtchn`). The page carries two byte rings: requests to
//! xenstored and its replies and watch events. The layers:
//! - [`ring`]: [`XsConn`], the client end of the ring over [`RingMemory`] — framing,
//!   request ids, matching a reply to its request, queueing watch events, and refusing
//!   whatever a broken or hostile server writes. Pure, tested on the host.
//! - [`Client`]: a connection, `XsConn` behind a `spin` mutex, plus a [`Waiter`] (how to
//!   notify the server and wait for it). On bare metal [`Xenbus`] is the client over the
//!   mapped store page that waits with `SCHEDOP_poll`; [`Xenbus::from_start_info`] makes
//!   one and [`xenbus()`] is this domain's.
//! - [`Nodes`] and [`XenStore`]: the operations (read, write, mkdir, rm, directory,
//!   permissions, watches, transactions), written once over "send a request, get its
//!   reply". [`Txn`] is a transaction, with the same node operations.
//! - [`state`]: [`XenbusState`] and the helpers a frontend uses (`switch_state`,
//!   `wait_for_state`, reading `backend`/`backend-id`, feature keys).
//!
//! Bring the traits into scope to use a client: `use guest_sdk::xenbus::{Nodes, XenStore};`.
//!
//! # Concurrency
//! One request is in flight at a time: a call holds the client's lock from sending its
//! request until its reply arrives (or its timeout, [`DEFAULT_REQUEST_TIMEOUT`] unless
//! changed with [`Client::set_request_timeout`]), so calls from several vCPUs run one after
//! another. Waiting for a watch event does not hold the lock between checks. Do not call
//! the client from an event handler that may interrupt a call on the same vCPU: the lock
//! is a spin lock.
//!
//! # Events
//! On bare metal the store port is *masked* when the client is made, and the client waits
//! with `SCHEDOP_poll`, which wakes on the pending bit whatever the mask: do not unmask the
//! port or give it a handler (the upcall would clear the pending bit the poll waits for).
//!
//! # Timeouts
//! A request whose reply does not come in time fails with [`Error::Timeout`]. Its reply,
//! if it comes later, is recognised by its `req_id` and dropped; a request the server had
//! not even taken off the ring is sent in full before the next one, so the stream stays
//! framed. Whether the server carried it out is unknown, as with any timeout.
//!
//! Needs `alloc` (the `heap` feature, on by default).
#![cfg(feature = "heap")]

extern crate alloc;

pub mod ring;
pub mod state;

#[cfg(target_os = "none")]
mod machine;
#[cfg(test)]
mod tests;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use xen_abi::errno::{self, Errno};
use xen_abi::xen::DomId;
use xen_abi::xs_wire::*;

pub use ring::{Discards, Pumped, RingMemory, WatchEvent, XsConn, PAGE_BYTES};
pub use state::{OtherEnd, XenbusState};

#[cfg(target_os = "none")]
pub use machine::{xenbus, EvtchnWaiter, PageRing, Xenbus};

/// How long a request waits for its reply unless changed.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// [`XenStore::transaction`] gives up after this many `EAGAIN`s in a row.
pub const MAX_TRANSACTION_ATTEMPTS: u32 = 64;

/// Why the ring can no longer be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingFault {
    /// A producer index more than a ring ahead of its consumer.
    BadIndex,
    /// A message header announcing more than `XENSTORE_PAYLOAD_MAX` bytes.
    TooLong,
    /// The server set the page's `error` field (`XENSTORE_ERROR_*`).
    Server(u32),
}

/// A XenStore error: one of Xen's `xsd_errors` names from an `XS_ERROR` reply (plus
/// oxenstored's `EQUOTA`), or a failure on this side.
#[allow(clippy::upper_case_acronyms)] // Xen's names, as they travel on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    EINVAL,
    EACCES,
    EEXIST,
    EISDIR,
    ENOENT,
    ENOMEM,
    ENOSPC,
    EIO,
    ENOTEMPTY,
    ENOSYS,
    EROFS,
    EBUSY,
    EAGAIN,
    EISCONN,
    E2BIG,
    EPERM,
    /// oxenstored's quota error (C xenstored says `ENOSPC` or `E2BIG`).
    EQUOTA,
    /// No reply before the deadline.
    Timeout,
    /// The ring is unusable (a broken or hostile server); permanent for this client.
    Broken(RingFault),
    /// A reply of the wrong type, or a payload that is not what its request returns.
    BadReply,
    /// A value that does not parse as what was asked for (e.g. [`Nodes::read_u64`]).
    Parse,
    /// This domain has no store ring (dom0, or `store_mfn` 0 or not in the start-of-day
    /// region).
    NoStore,
}

const WIRE_ERRORS: [(Error, &str); 17] = [
    (Error::EINVAL, "EINVAL"),
    (Error::EACCES, "EACCES"),
    (Error::EEXIST, "EEXIST"),
    (Error::EISDIR, "EISDIR"),
    (Error::ENOENT, "ENOENT"),
    (Error::ENOMEM, "ENOMEM"),
    (Error::ENOSPC, "ENOSPC"),
    (Error::EIO, "EIO"),
    (Error::ENOTEMPTY, "ENOTEMPTY"),
    (Error::ENOSYS, "ENOSYS"),
    (Error::EROFS, "EROFS"),
    (Error::EBUSY, "EBUSY"),
    (Error::EAGAIN, "EAGAIN"),
    (Error::EISCONN, "EISCONN"),
    (Error::E2BIG, "E2BIG"),
    (Error::EPERM, "EPERM"),
    (Error::EQUOTA, "EQUOTA"),
];

impl Error {
    /// Decodes an `XS_ERROR` payload (`"ENOENT\0"`). A name Xen does not define reads as
    /// `EINVAL`, as Linux's xenbus does.
    pub fn from_wire(payload: &[u8]) -> Error {
        let name = payload.split(|&b| b == 0).next().unwrap_or(&[]);
        WIRE_ERRORS
            .iter()
            .find(|(_, n)| n.as_bytes() == name)
            .map_or(Error::EINVAL, |&(e, _)| e)
    }

    /// The name: the wire name for server errors (`"ENOENT"`), a description otherwise.
    pub fn name(self) -> &'static str {
        match self {
            Error::Timeout => "timed out",
            Error::Broken(_) => "broken ring",
            Error::BadReply => "bad reply",
            Error::Parse => "unparsable value",
            Error::NoStore => "no xenstore ring",
            e => WIRE_ERRORS
                .iter()
                .find(|(x, _)| *x == e)
                .map_or("EINVAL", |&(_, n)| n),
        }
    }

    /// The errno: the same-named one for server errors, `ETIMEDOUT` for a timeout, `EIO`
    /// for a broken ring or a bad reply, `EINVAL` for a bad value, `ENODEV` without a ring.
    pub fn errno(self) -> Errno {
        match self {
            Error::EQUOTA => errno::ENOSPC,
            Error::Timeout => errno::ETIMEDOUT,
            Error::Broken(_) | Error::BadReply => errno::EIO,
            Error::Parse => errno::EINVAL,
            Error::NoStore => errno::ENODEV,
            e => XSD_ERRORS
                .iter()
                .find(|x| x.errstring == e.name())
                .map_or(errno::EINVAL, |x| x.errnum),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Broken(RingFault::BadIndex) => f.write_str("broken ring (bad index)"),
            Error::Broken(RingFault::TooLong) => f.write_str("broken ring (oversized message)"),
            Error::Broken(RingFault::Server(c)) => write!(f, "broken ring (server error {c})"),
            e => f.write_str(e.name()),
        }
    }
}

/// An absolute time in system-time nanoseconds (`SCHEDOP_poll`'s convention); 0: never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline(pub u64);

impl Deadline {
    /// No deadline.
    pub const NEVER: Deadline = Deadline(0);
}

/// How a [`Client`] tells the server about new data and waits for its answer.
pub trait Waiter {
    /// Notify the server (after publishing `req_prod` or `rsp_cons`).
    fn notify(&self);
    /// The deadline `timeout` from now (`None`: never).
    fn deadline(&self, timeout: Option<Duration>) -> Deadline;
    /// Wait until the server may have written something or freed room (a spurious return
    /// is fine), or `deadline` comes. Returns `false`, without waiting, if `deadline` had
    /// already passed when called.
    fn wait(&self, deadline: Deadline) -> bool;
    /// Whether `deadline` has passed (checked even while bytes keep moving, so a server
    /// that never stops talking cannot hold a caller past its deadline).
    fn expired(&self, deadline: Deadline) -> bool;
}

/// The node operations, over "send a request of `type_`, return its reply's payload".
/// Implemented by the clients (outside any transaction) and by [`Txn`].
///
/// Paths are absolute (`/local/domain/3/name`) or relative to the domain's home
/// (`device/vif/0` is `/local/domain/<self>/device/vif/0`); a path or token containing a
/// NUL byte is refused with `EINVAL`, a request over `XENSTORE_PAYLOAD_MAX` with `E2BIG`.
pub trait Nodes {
    /// Sends one request and returns the reply's payload (or its error).
    fn call(&self, type_: u32, payload: &[&[u8]]) -> Result<Vec<u8>, Error>;

    /// `XS_READ`: the node's value.
    fn read(&self, path: &str) -> Result<Vec<u8>, Error> {
        self.call(XS_READ, &[arg(path)?, b"\0"])
    }

    /// The node's value as UTF-8 (`Parse` if it is not).
    fn read_string(&self, path: &str) -> Result<String, Error> {
        String::from_utf8(self.read(path)?).map_err(|_| Error::Parse)
    }

    /// The node's value as a decimal `u64` (surrounding whitespace allowed).
    fn read_u64(&self, path: &str) -> Result<u64, Error> {
        parse_u64(&self.read(path)?).ok_or(Error::Parse)
    }

    /// A feature key (`feature-persistent`, `multi-queue-max-queues`...): its number, or
    /// 0 if the key is missing or not a number, as Linux's `xenbus_read_unsigned` does.
    /// Transport failures (timeout, broken ring) are still errors.
    fn read_feature(&self, path: &str) -> Result<u64, Error> {
        match self.read_u64(path) {
            Ok(v) => Ok(v),
            Err(Error::ENOENT | Error::EACCES | Error::Parse) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Whether the node exists (and may be read).
    fn exists(&self, path: &str) -> Result<bool, Error> {
        match self.read(path) {
            Ok(_) => Ok(true),
            Err(Error::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `XS_WRITE`: sets the node's value, creating it and missing parents.
    fn write(&self, path: &str, value: &[u8]) -> Result<(), Error> {
        self.call(XS_WRITE, &[arg(path)?, b"\0", value]).map(drop)
    }

    /// `XS_MKDIR`: creates the node with an empty value if it is missing.
    fn mkdir(&self, path: &str) -> Result<(), Error> {
        self.call(XS_MKDIR, &[arg(path)?, b"\0"]).map(drop)
    }

    /// `XS_RM`: removes the node and everything below it.
    fn rm(&self, path: &str) -> Result<(), Error> {
        self.call(XS_RM, &[arg(path)?, b"\0"]).map(drop)
    }

    /// `XS_DIRECTORY`: the names of the node's children. A listing too long for one reply
    /// (`E2BIG`) is fetched in parts with `XS_DIRECTORY_PART`, as Linux does.
    fn directory(&self, path: &str) -> Result<Vec<String>, Error> {
        match self.call(XS_DIRECTORY, &[arg(path)?, b"\0"]) {
            Ok(reply) => Ok(split_strings(&reply)),
            Err(Error::E2BIG) => directory_in_parts(self, path),
            Err(e) => Err(e),
        }
    }

    /// `XS_GET_PERMS`: the node's permissions; the first names the owner (and what every
    /// domain not listed may do).
    fn get_perms(&self, path: &str) -> Result<Vec<Perm>, Error> {
        let reply = self.call(XS_GET_PERMS, &[arg(path)?, b"\0"])?;
        split_strings(&reply)
            .iter()
            .map(|s| Perm::parse(s).ok_or(Error::BadReply))
            .collect()
    }

    /// `XS_SET_PERMS`: replaces the node's permissions (the first entry is the owner).
    fn set_perms(&self, path: &str, perms: &[Perm]) -> Result<(), Error> {
        let mut list = Vec::new();
        for p in perms {
            list.extend_from_slice(p.to_wire().as_bytes());
            list.push(0);
        }
        self.call(XS_SET_PERMS, &[arg(path)?, b"\0", &list])
            .map(drop)
    }
}

/// A connection to xenstored: the non-transactional operations, watches and transactions.
pub trait XenStore: Nodes {
    /// Sends one request of `type_` in transaction `tx_id` (0: none); returns the reply's
    /// payload or its error.
    fn request(&self, tx_id: u32, type_: u32, payload: &[&[u8]]) -> Result<Vec<u8>, Error>;

    /// The deadline `timeout` from now, on this client's clock (`None`: never).
    fn deadline(&self, timeout: Option<Duration>) -> Deadline;

    /// Waits until a watch event for which `filter(path, token)` holds arrives, or
    /// `deadline` comes (`None`; also when the ring is broken). Events not matching stay
    /// queued for others.
    fn watch_event_until(
        &self,
        deadline: Deadline,
        filter: &dyn Fn(&str, &str) -> bool,
    ) -> Option<(String, String)>;

    /// Drops the queued events of watches with `token`.
    fn purge_watch_events(&self, token: &str);

    /// The next watch event `(path, token)`, waiting up to `timeout` (`None`: for ever,
    /// `Some(ZERO)`: only what has arrived).
    fn next_watch_event(&self, timeout: Option<Duration>) -> Option<(String, String)> {
        self.watch_event_until(self.deadline(timeout), &|_, _| true)
    }

    /// `XS_WATCH`: reports changes at or below `path` as events with `token`. xenstored
    /// fires a new watch once straight away.
    fn watch(&self, path: &str, token: &str) -> Result<(), Error> {
        self.request(0, XS_WATCH, &[arg(path)?, b"\0", arg(token)?, b"\0"])
            .map(drop)
    }

    /// `XS_UNWATCH`: removes the watch and drops its queued events.
    fn unwatch(&self, path: &str, token: &str) -> Result<(), Error> {
        let r = self.request(0, XS_UNWATCH, &[arg(path)?, b"\0", arg(token)?, b"\0"]);
        self.purge_watch_events(token);
        r.map(drop)
    }

    /// `XS_TRANSACTION_START`.
    fn transaction_start(&self) -> Result<Txn<'_, Self>, Error>
    where
        Self: Sized,
    {
        let reply = self.request(0, XS_TRANSACTION_START, &[b"\0"])?;
        let id = parse_u64(&reply)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| v != 0)
            .ok_or(Error::BadReply)?;
        Ok(Txn { store: self, id })
    }

    /// `XS_TRANSACTION_END`: commits (`commit`) or aborts the transaction. A commit that
    /// conflicted with another change fails with `EAGAIN`: start over.
    fn transaction_end(&self, tx: Txn<'_, Self>, commit: bool) -> Result<(), Error>
    where
        Self: Sized,
    {
        let flag: &[u8] = if commit { b"T\0" } else { b"F\0" };
        self.request(tx.id, XS_TRANSACTION_END, &[flag]).map(drop)
    }

    /// Runs `f` in a transaction and commits it, starting over while the transaction
    /// (or `f`) fails with `EAGAIN`, up to [`MAX_TRANSACTION_ATTEMPTS`] times. When `f`
    /// fails otherwise the transaction is aborted and its error returned.
    fn transaction<T, F>(&self, mut f: F) -> Result<T, Error>
    where
        Self: Sized,
        F: FnMut(&Txn<'_, Self>) -> Result<T, Error>,
    {
        for _ in 0..MAX_TRANSACTION_ATTEMPTS {
            let tx = self.transaction_start()?;
            match f(&tx) {
                Ok(v) => match self.transaction_end(tx, true) {
                    Ok(()) => return Ok(v),
                    Err(Error::EAGAIN) => continue,
                    Err(e) => return Err(e),
                },
                Err(e) => {
                    // The abort's own failure changes nothing for the caller.
                    let _ = self.transaction_end(tx, false);
                    if e != Error::EAGAIN {
                        return Err(e);
                    }
                }
            }
        }
        Err(Error::EAGAIN)
    }

    /// `XS_GET_DOMAIN_PATH`: the home of `domid` (`/local/domain/<domid>`).
    fn get_domain_path(&self, domid: DomId) -> Result<String, Error> {
        let reply = self.request(
            0,
            XS_GET_DOMAIN_PATH,
            &[domid.to_string().as_bytes(), b"\0"],
        )?;
        let s = reply.split(|&b| b == 0).next().unwrap_or(&[]);
        String::from_utf8(s.to_vec()).map_err(|_| Error::BadReply)
    }
}

/// An open transaction: node operations on it see a snapshot and take effect together at
/// [`XenStore::transaction_end`].
#[must_use = "end a transaction with transaction_end"]
#[derive(Debug)]
pub struct Txn<'a, S: ?Sized> {
    store: &'a S,
    id: u32,
}

impl<S: ?Sized> Txn<'_, S> {
    /// The transaction id xenstored gave.
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl<S: XenStore + ?Sized> Nodes for Txn<'_, S> {
    fn call(&self, type_: u32, payload: &[&[u8]]) -> Result<Vec<u8>, Error> {
        self.store.request(self.id, type_, payload)
    }
}

/// What a domain may do with a node (`n`, `r`, `w`, `b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `n`: nothing.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    Write,
    /// `b`: both.
    Both,
}

/// One permission entry: `domid`'s access. In a node's list the first entry names the
/// owner (who may do everything) and what domains not listed may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    /// The domain.
    pub domid: DomId,
    /// Its access.
    pub access: Access,
}

impl Perm {
    /// Parses a wire entry (`"r3"`).
    pub fn parse(s: &str) -> Option<Perm> {
        let mut c = s.chars();
        let access = match c.next()? {
            'n' => Access::None,
            'r' => Access::Read,
            'w' => Access::Write,
            'b' => Access::Both,
            _ => return None,
        };
        let rest = c.as_str();
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Perm {
            domid: rest.parse().ok()?,
            access,
        })
    }

    /// The wire entry (`"r3"`).
    pub fn to_wire(&self) -> String {
        let c = match self.access {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::Both => 'b',
        };
        alloc::format!("{c}{}", self.domid)
    }
}

/// A path or token as a request argument: no NUL inside.
fn arg(s: &str) -> Result<&[u8], Error> {
    match s.as_bytes().contains(&0) {
        true => Err(Error::EINVAL),
        false => Ok(s.as_bytes()),
    }
}

/// A decimal number with optional surrounding whitespace (and a trailing NUL).
pub(crate) fn parse_u64(b: &[u8]) -> Option<u64> {
    let b = b.strip_suffix(b"\0").unwrap_or(b).trim_ascii();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(b).ok()?.parse().ok()
}

/// `a\0b\0` (the last NUL optional) as `["a", "b"]`.
fn split_strings(b: &[u8]) -> Vec<String> {
    let b = b.strip_suffix(b"\0").unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Most bytes of child names [`Nodes::directory`] collects in parts before calling the
/// server's answer a bad reply.
const MAX_DIRECTORY_BYTES: usize = 1 << 20;

/// `XS_DIRECTORY_PART` (`path\0offset\0` -> `generation\0names...`, an extra `\0` after
/// the last part), starting over if the node changes in between (its generation).
fn directory_in_parts<N: Nodes + ?Sized>(n: &N, path: &str) -> Result<Vec<String>, Error> {
    'again: for _ in 0..8 {
        let mut generation: Option<Vec<u8>> = None;
        let mut names = Vec::new();
        let mut offset = 0usize;
        loop {
            let off = offset.to_string();
            let reply = n.call(
                XS_DIRECTORY_PART,
                &[arg(path)?, b"\0", off.as_bytes(), b"\0"],
            )?;
            let nul = reply.iter().position(|&b| b == 0).ok_or(Error::BadReply)?;
            let (gen, rest) = reply.split_at(nul);
            let rest = rest.get(1..).unwrap_or(&[]);
            match &generation {
                None => generation = Some(gen.to_vec()),
                Some(g) if g != gen => continue 'again,
                Some(_) => {}
            }
            let last = rest.is_empty() || rest == b"\0" || rest.ends_with(b"\0\0");
            let chunk = if last {
                rest.strip_suffix(b"\0").unwrap_or(rest)
            } else if rest.ends_with(b"\0") {
                rest
            } else {
                return Err(Error::BadReply); // a part must end at a name's end
            };
            names.extend(split_strings(chunk));
            offset += chunk.len();
            if last {
                return Ok(names);
            }
            if offset > MAX_DIRECTORY_BYTES {
                return Err(Error::BadReply);
            }
        }
    }
    Err(Error::EAGAIN)
}

/// Rounds of moving bytes one look at the ring takes at most.
const PUMP_ROUNDS: usize = 16;

/// A XenStore client: an [`XsConn`] over `R` behind a spin lock, and a [`Waiter`].
/// See the module documentation for its concurrency rules.
pub struct Client<R, W> {
    conn: spin::Mutex<XsConn<R>>,
    waiter: W,
    /// Request timeout in ns; `u64::MAX`: none.
    timeout_ns: AtomicU64,
}

impl<R, W> fmt::Debug for Client<R, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("timeout_ns", &self.timeout_ns.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<R: RingMemory, W: Waiter> Client<R, W> {
    /// A client over `ring` (a store page) that waits with `waiter`.
    pub fn new(ring: R, waiter: W) -> Client<R, W> {
        Client {
            conn: spin::Mutex::new(XsConn::new(ring)),
            waiter,
            timeout_ns: AtomicU64::new(DEFAULT_REQUEST_TIMEOUT.as_nanos() as u64),
        }
    }

    /// How long each request waits for its reply (`None`: for ever).
    pub fn set_request_timeout(&self, timeout: Option<Duration>) {
        let ns = timeout.map_or(u64::MAX, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
        });
        self.timeout_ns.store(ns, Ordering::Relaxed);
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Option<Duration> {
        match self.timeout_ns.load(Ordering::Relaxed) {
            u64::MAX => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// The waiter.
    pub fn waiter(&self) -> &W {
        &self.waiter
    }

    /// Runs `f` on the connection, under the lock (diagnostics: its fault, discards).
    pub fn with_conn<T>(&self, f: impl FnOnce(&mut XsConn<R>) -> T) -> T {
        f(&mut self.conn.lock())
    }

    /// Moves bytes both ways until neither moves (or a few rounds: a server may never
    /// stop); notifies the server if any did.
    fn pump(&self, c: &mut XsConn<R>) -> Result<(), Error> {
        let mut moved = false;
        for _ in 0..PUMP_ROUNDS {
            let wrote = c.flush()?;
            let read = c.poll(None)?.consumed;
            if wrote == 0 && read == 0 {
                break;
            }
            moved = true;
        }
        if moved {
            self.waiter.notify();
        }
        Ok(())
    }
}

impl<R: RingMemory, W: Waiter> XenStore for Client<R, W> {
    fn request(&self, tx_id: u32, type_: u32, payload: &[&[u8]]) -> Result<Vec<u8>, Error> {
        let mut c = self.conn.lock();
        let deadline = self.waiter.deadline(self.request_timeout());
        let id = c.queue_request(type_, tx_id, payload)?;
        loop {
            let wrote = c.flush()?;
            let got = c.poll(Some((id, type_)))?;
            if wrote > 0 || got.consumed > 0 {
                self.waiter.notify();
            }
            if let Some(reply) = got.reply {
                return reply;
            }
            let timed_out = match wrote > 0 || got.consumed > 0 {
                true => self.waiter.expired(deadline),
                false => !self.waiter.wait(deadline),
            };
            if timed_out {
                return Err(Error::Timeout);
            }
        }
    }

    fn deadline(&self, timeout: Option<Duration>) -> Deadline {
        self.waiter.deadline(timeout)
    }

    fn watch_event_until(
        &self,
        deadline: Deadline,
        filter: &dyn Fn(&str, &str) -> bool,
    ) -> Option<(String, String)> {
        loop {
            {
                let mut c = self.conn.lock();
                // Take in what arrived; a broken ring still hands out what it queued.
                let _ = self.pump(&mut c);
                if let Some(e) = c.pop_event_where(filter) {
                    return Some((e.path, e.token));
                }
                if c.fault().is_some() {
                    return None;
                }
            }
            if !self.waiter.wait(deadline) {
                return None;
            }
        }
    }

    fn purge_watch_events(&self, token: &str) {
        self.conn.lock().purge_events(token);
    }
}

impl<R: RingMemory, W: Waiter> Nodes for Client<R, W> {
    fn call(&self, type_: u32, payload: &[&[u8]]) -> Result<Vec<u8>, Error> {
        self.request(0, type_, payload)
    }
}
