//! The client end of the xenstore ring (`xen/io/xs_wire.h`), pure and host-tested.
//!
//! The store page is a `xenstore_domain_interface`: the guest produces requests into `req`
//! (advancing `req_prod`) and consumes replies and watch events from `rsp` (advancing
//! `rsp_cons`). Indices are free-running `u32`s masked with `XENSTORE_RING_SIZE - 1`.
//!
//! The server is not trusted. [`XsConn`] reads each of the server's indices once per step,
//! into a local, and refuses a producer more than a ring ahead of its consumer as a broken
//! ring; every position is masked before use; a header announcing more than
//! `XENSTORE_PAYLOAD_MAX` bytes breaks the connection; a reply that names another request
//! is dropped; nothing the server writes can make it panic or touch memory outside the page.
//! Its own indices (`req_prod`, `rsp_cons`) are kept in private copies, so a server that
//! scribbles on them cannot move the client's cursor.
//!
//! The page is reached through [`RingMemory`], so the same code runs over a mapped page
//! (volatile accesses, see `machine.rs`) and over a byte buffer in tests.

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{fence, Ordering};

use xen_abi::xs_wire::{
    mask_xenstore_idx, XenstoreDomainInterface, XsdSockmsg, XENSTORE_PAYLOAD_MAX,
    XENSTORE_RING_SIZE, XSD_SOCKMSG_SIZE, XS_ERROR, XS_WATCH_EVENT,
};

use super::{Error, RingFault};

/// Bytes of the page the protocol uses (`sizeof(struct xenstore_domain_interface)`).
pub const PAGE_BYTES: usize = size_of::<XenstoreDomainInterface>();
/// Offset of `req` in the page.
pub const OFF_REQ: usize = offset_of!(XenstoreDomainInterface, req);
/// Offset of `rsp` in the page.
pub const OFF_RSP: usize = offset_of!(XenstoreDomainInterface, rsp);
/// Offset of `req_cons` in the page.
pub const OFF_REQ_CONS: usize = offset_of!(XenstoreDomainInterface, req_cons);
/// Offset of `req_prod` in the page.
pub const OFF_REQ_PROD: usize = offset_of!(XenstoreDomainInterface, req_prod);
/// Offset of `rsp_cons` in the page.
pub const OFF_RSP_CONS: usize = offset_of!(XenstoreDomainInterface, rsp_cons);
/// Offset of `rsp_prod` in the page.
pub const OFF_RSP_PROD: usize = offset_of!(XenstoreDomainInterface, rsp_prod);
/// Offset of `server_features` in the page.
pub const OFF_SERVER_FEATURES: usize = offset_of!(XenstoreDomainInterface, server_features);
/// Offset of `connection` in the page.
pub const OFF_CONNECTION: usize = offset_of!(XenstoreDomainInterface, connection);
/// Offset of `error` in the page.
pub const OFF_ERROR: usize = offset_of!(XenstoreDomainInterface, error);

/// Watch events kept while nobody asks for them; beyond this the oldest is dropped.
pub const MAX_QUEUED_EVENTS: usize = 256;

/// Access to the store page, by byte offset into a `xenstore_domain_interface`.
///
/// The client only passes offsets with `off + len <= PAGE_BYTES` (and 4-aligned ones for
/// the `u32` accessors); implementations must still not panic on others (read zeros,
/// ignore writes). An implementation over memory the server writes concurrently must use
/// volatile or atomic accesses through raw pointers, each access exactly once.
pub trait RingMemory {
    /// Reads the little-endian `u32` at `off`, once.
    fn read_u32(&self, off: usize) -> u32;
    /// Writes the `u32` at `off`.
    fn write_u32(&mut self, off: usize, val: u32);
    /// Copies the page's bytes `[off, off + buf.len())` into `buf`.
    fn read_bytes(&self, off: usize, buf: &mut [u8]);
    /// Copies `data` to the page's bytes from `off`.
    fn write_bytes(&mut self, off: usize, data: &[u8]);
    /// A full memory barrier, between index and data accesses (Linux's `virt_mb()`).
    fn barrier(&self) {
        fence(Ordering::SeqCst);
    }
}

/// A byte buffer as the page (tests, or a copy of one).
impl RingMemory for [u8] {
    fn read_u32(&self, off: usize) -> u32 {
        match self.get(off..off.saturating_add(4)) {
            Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
            _ => 0,
        }
    }
    fn write_u32(&mut self, off: usize, val: u32) {
        if let Some(dst) = self.get_mut(off..off.saturating_add(4)) {
            dst.copy_from_slice(&val.to_le_bytes());
        }
    }
    fn read_bytes(&self, off: usize, buf: &mut [u8]) {
        match self.get(off..off.saturating_add(buf.len())) {
            Some(src) => buf.copy_from_slice(src),
            None => buf.fill(0),
        }
    }
    fn write_bytes(&mut self, off: usize, data: &[u8]) {
        if let Some(dst) = self.get_mut(off..off.saturating_add(data.len())) {
            dst.copy_from_slice(data);
        }
    }
}

impl RingMemory for Vec<u8> {
    fn read_u32(&self, off: usize) -> u32 {
        self.as_slice().read_u32(off)
    }
    fn write_u32(&mut self, off: usize, val: u32) {
        self.as_mut_slice().write_u32(off, val)
    }
    fn read_bytes(&self, off: usize, buf: &mut [u8]) {
        self.as_slice().read_bytes(off, buf)
    }
    fn write_bytes(&mut self, off: usize, data: &[u8]) {
        self.as_mut_slice().write_bytes(off, data)
    }
}

impl<T: RingMemory + ?Sized> RingMemory for &mut T {
    fn read_u32(&self, off: usize) -> u32 {
        (**self).read_u32(off)
    }
    fn write_u32(&mut self, off: usize, val: u32) {
        (**self).write_u32(off, val)
    }
    fn read_bytes(&self, off: usize, buf: &mut [u8]) {
        (**self).read_bytes(off, buf)
    }
    fn write_bytes(&mut self, off: usize, data: &[u8]) {
        (**self).write_bytes(off, data)
    }
    fn barrier(&self) {
        (**self).barrier()
    }
}

impl<T: RingMemory + ?Sized> RingMemory for Box<T> {
    fn read_u32(&self, off: usize) -> u32 {
        (**self).read_u32(off)
    }
    fn write_u32(&mut self, off: usize, val: u32) {
        (**self).write_u32(off, val)
    }
    fn read_bytes(&self, off: usize, buf: &mut [u8]) {
        (**self).read_bytes(off, buf)
    }
    fn write_bytes(&mut self, off: usize, data: &[u8]) {
        (**self).write_bytes(off, data)
    }
    fn barrier(&self) {
        (**self).barrier()
    }
}

/// The typed page (what dom0's xenstored serves in host tests), by byte offset.
impl RingMemory for XenstoreDomainInterface {
    fn read_u32(&self, off: usize) -> u32 {
        match off {
            OFF_REQ_CONS => self.req_cons,
            OFF_REQ_PROD => self.req_prod,
            OFF_RSP_CONS => self.rsp_cons,
            OFF_RSP_PROD => self.rsp_prod,
            OFF_SERVER_FEATURES => self.server_features,
            OFF_CONNECTION => self.connection,
            OFF_ERROR => self.error,
            _ => 0,
        }
    }
    fn write_u32(&mut self, off: usize, val: u32) {
        let field = match off {
            OFF_REQ_CONS => &mut self.req_cons,
            OFF_REQ_PROD => &mut self.req_prod,
            OFF_RSP_CONS => &mut self.rsp_cons,
            OFF_RSP_PROD => &mut self.rsp_prod,
            OFF_SERVER_FEATURES => &mut self.server_features,
            OFF_CONNECTION => &mut self.connection,
            OFF_ERROR => &mut self.error,
            _ => return,
        };
        *field = val;
    }
    fn read_bytes(&self, off: usize, buf: &mut [u8]) {
        let src = ring_range(off, buf.len()).and_then(|(rsp, r)| match rsp {
            false => self.req.get(r),
            true => self.rsp.get(r),
        });
        match src {
            Some(src) => buf.copy_from_slice(src),
            None => buf.fill(0),
        }
    }
    fn write_bytes(&mut self, off: usize, data: &[u8]) {
        let dst = ring_range(off, data.len()).and_then(|(rsp, r)| match rsp {
            false => self.req.get_mut(r),
            true => self.rsp.get_mut(r),
        });
        if let Some(dst) = dst {
            dst.copy_from_slice(data);
        }
    }
}

/// Which array (`false`: `req`, `true`: `rsp`) and range a byte span of the page is in.
fn ring_range(off: usize, len: usize) -> Option<(bool, core::ops::Range<usize>)> {
    let within = |base: usize| {
        let start = off.checked_sub(base)?;
        let end = start.checked_add(len)?;
        (end <= XENSTORE_RING_SIZE).then_some(start..end)
    };
    within(OFF_RSP)
        .map(|r| (true, r))
        .or_else(|| within(OFF_REQ).map(|r| (false, r)))
}

/// A watch firing: the node that changed (or the watched special name) and the token
/// given to `watch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The path that changed, as the server names it.
    pub path: String,
    /// The watch's token.
    pub token: String,
}

/// What one [`XsConn::poll`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pumped {
    /// Bytes taken from the `rsp` ring (the caller notifies the server when non-zero:
    /// it may be waiting for room).
    pub consumed: usize,
    /// The reply to the awaited request, when it arrived: its payload, or the error it
    /// carried (`XS_ERROR`, or [`Error::BadReply`] for a reply of the wrong type).
    pub reply: Option<Result<Vec<u8>, Error>>,
}

/// Counters of what the client threw away, for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Discards {
    /// Replies naming no awaited request (late replies to timed-out requests, or junk).
    pub stale_replies: u64,
    /// Watch events dropped because the queue was full.
    pub events_overflowed: u64,
    /// Watch events without a `path\0token` payload.
    pub malformed_events: u64,
}

/// The client's side of one store ring: framing, request ids, reply matching and the
/// queue of watch events. It never blocks: the caller moves bytes with [`XsConn::flush`]
/// and [`XsConn::poll`] and waits for the server's event in between.
#[derive(Debug)]
pub struct XsConn<R> {
    ring: R,
    /// Private copies of the indices this side owns.
    req_prod: u32,
    rsp_cons: u32,
    next_id: u32,
    /// Request bytes not yet on the ring (the tail of a request whose wait timed out is
    /// kept and sent before the next one, so the request stream stays framed).
    out: Vec<u8>,
    out_sent: usize,
    /// The message being received: header bytes so far, then the payload.
    hdr: [u8; XSD_SOCKMSG_SIZE],
    hdr_len: usize,
    body: Option<(XsdSockmsg, Vec<u8>)>,
    events: VecDeque<WatchEvent>,
    discards: Discards,
    fault: Option<RingFault>,
}

impl<R: RingMemory> XsConn<R> {
    /// Starts using `ring`, taking this side's indices as they are on the page (zero on a
    /// fresh page).
    pub fn new(ring: R) -> XsConn<R> {
        let req_prod = ring.read_u32(OFF_REQ_PROD);
        let rsp_cons = ring.read_u32(OFF_RSP_CONS);
        XsConn {
            ring,
            req_prod,
            rsp_cons,
            next_id: 1,
            out: Vec::new(),
            out_sent: 0,
            hdr: [0; XSD_SOCKMSG_SIZE],
            hdr_len: 0,
            body: None,
            events: VecDeque::new(),
            discards: Discards::default(),
            fault: None,
        }
    }

    /// The page.
    pub fn ring(&self) -> &R {
        &self.ring
    }

    #[cfg(test)]
    pub(crate) fn ring_mut_for_tests(&mut self) -> &mut R {
        &mut self.ring
    }

    /// Why the connection is unusable, if it is: once the framing is lost or the server
    /// reported an error on the page, every call fails with [`Error::Broken`].
    pub fn fault(&self) -> Option<RingFault> {
        self.fault
    }

    /// What was thrown away so far.
    pub fn discards(&self) -> Discards {
        self.discards
    }

    /// Whether request bytes are still waiting for room on the ring.
    pub fn has_unsent(&self) -> bool {
        self.out_sent < self.out.len()
    }

    /// Queues a request of `type_` in transaction `tx_id` (0: none) whose payload is the
    /// concatenation of `parts`, and returns its `req_id`. Nothing is written yet.
    pub fn queue_request(&mut self, type_: u32, tx_id: u32, parts: &[&[u8]]) -> Result<u32, Error> {
        self.check()?;
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        if len > XENSTORE_PAYLOAD_MAX {
            return Err(Error::E2BIG);
        }
        let req_id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let hdr = XsdSockmsg {
            type_,
            req_id,
            tx_id,
            len: len as u32, // <= XENSTORE_PAYLOAD_MAX
        };
        if !self.has_unsent() {
            self.out.clear();
            self.out_sent = 0;
        }
        self.out.reserve(XSD_SOCKMSG_SIZE + len);
        self.out.extend_from_slice(&hdr.to_bytes());
        for p in parts {
            self.out.extend_from_slice(p);
        }
        Ok(req_id)
    }

    /// Writes as many queued request bytes as the ring has room for; returns how many
    /// (notify the server when non-zero).
    pub fn flush(&mut self) -> Result<usize, Error> {
        self.check()?;
        let pending = self.out.get(self.out_sent..).unwrap_or(&[]);
        if pending.is_empty() {
            return Ok(0);
        }
        let cons = self.ring.read_u32(OFF_REQ_CONS);
        let used = self.req_prod.wrapping_sub(cons) as usize;
        if used > XENSTORE_RING_SIZE {
            return Err(self.fail(RingFault::BadIndex));
        }
        let n = (XENSTORE_RING_SIZE - used).min(pending.len());
        if n == 0 {
            return Ok(0);
        }
        // Write the data only after reading the consumer index.
        self.ring.barrier();
        let pos = mask_xenstore_idx(self.req_prod);
        let first = n.min(XENSTORE_RING_SIZE - pos);
        let (a, b) = pending.split_at(n).0.split_at(first);
        self.ring.write_bytes(OFF_REQ + pos, a);
        self.ring.write_bytes(OFF_REQ, b);
        // The data before the index that publishes it.
        self.ring.barrier();
        self.req_prod = self.req_prod.wrapping_add(n as u32);
        self.ring.write_u32(OFF_REQ_PROD, self.req_prod);
        self.out_sent += n;
        if !self.has_unsent() {
            self.out.clear();
            self.out_sent = 0;
        }
        Ok(n)
    }

    /// Reads what the server wrote: watch events are queued, replies to other requests
    /// dropped, until the reply to `want` (`(req_id, type)`) arrives or the ring is empty.
    /// Messages after that reply stay on the ring for the next call.
    pub fn poll(&mut self, want: Option<(u32, u32)>) -> Result<Pumped, Error> {
        self.check()?;
        let mut out = Pumped::default();
        let result = self.receive(want, &mut out);
        if out.consumed > 0 {
            // Our reads of the data before the index that frees the space.
            self.ring.barrier();
            self.ring.write_u32(OFF_RSP_CONS, self.rsp_cons);
        }
        result.map(|()| out)
    }

    fn receive(&mut self, want: Option<(u32, u32)>, out: &mut Pumped) -> Result<(), Error> {
        while out.reply.is_none() {
            let prod = self.ring.read_u32(OFF_RSP_PROD);
            let avail = prod.wrapping_sub(self.rsp_cons) as usize;
            if avail > XENSTORE_RING_SIZE {
                return Err(self.fail(RingFault::BadIndex));
            }
            if avail == 0 {
                return Ok(());
            }
            // The data only after the index that announced it.
            self.ring.barrier();
            let n = match self.body.as_mut() {
                None => {
                    let want = (XSD_SOCKMSG_SIZE - self.hdr_len).min(avail);
                    let end = self.hdr_len + want;
                    if let Some(dst) = self.hdr.get_mut(self.hdr_len..end) {
                        copy_in(&self.ring, self.rsp_cons, dst);
                    }
                    self.hdr_len = end;
                    want
                }
                Some((hdr, body)) => {
                    let start = body.len();
                    let want = (hdr.len as usize).saturating_sub(start).min(avail);
                    body.resize(start + want, 0);
                    if let Some(dst) = body.get_mut(start..) {
                        copy_in(&self.ring, self.rsp_cons, dst);
                    }
                    want
                }
            };
            self.rsp_cons = self.rsp_cons.wrapping_add(n as u32);
            out.consumed += n;
            if self.body.is_none() && self.hdr_len == XSD_SOCKMSG_SIZE {
                self.hdr_len = 0;
                let hdr = XsdSockmsg::from_bytes(&self.hdr);
                if hdr.len as usize > XENSTORE_PAYLOAD_MAX {
                    return Err(self.fail(RingFault::TooLong));
                }
                self.body = Some((hdr, Vec::with_capacity(hdr.len as usize)));
            }
            if self
                .body
                .as_ref()
                .is_some_and(|(h, b)| b.len() == h.len as usize)
            {
                if let Some((hdr, body)) = self.body.take() {
                    out.reply = self.deliver(hdr, body, want);
                }
            }
        }
        Ok(())
    }

    /// Files one whole message: an event is queued, the awaited reply returned.
    fn deliver(
        &mut self,
        hdr: XsdSockmsg,
        body: Vec<u8>,
        want: Option<(u32, u32)>,
    ) -> Option<Result<Vec<u8>, Error>> {
        if hdr.type_ == XS_WATCH_EVENT {
            self.queue_event(&body);
            return None;
        }
        match want {
            Some((id, type_)) if hdr.req_id == id => Some(match hdr.type_ {
                XS_ERROR => Err(Error::from_wire(&body)),
                t if t == type_ => Ok(body),
                _ => Err(Error::BadReply),
            }),
            _ => {
                self.discards.stale_replies += 1;
                None
            }
        }
    }

    fn queue_event(&mut self, body: &[u8]) {
        let mut strings = body.split(|&b| b == 0);
        let (Some(path), Some(token), true) = (strings.next(), strings.next(), body.contains(&0))
        else {
            self.discards.malformed_events += 1;
            return;
        };
        let ev = WatchEvent {
            path: String::from_utf8_lossy(path).into_owned(),
            token: String::from_utf8_lossy(token).into_owned(),
        };
        // Watchers re-read what they watch, so one queued copy of an event is enough
        // (xenstored drops duplicates the same way).
        if self.events.contains(&ev) {
            return;
        }
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
            self.discards.events_overflowed += 1;
        }
        self.events.push_back(ev);
    }

    /// Takes the oldest queued watch event for which `filter(path, token)` holds.
    pub fn pop_event_where(&mut self, filter: &dyn Fn(&str, &str) -> bool) -> Option<WatchEvent> {
        let i = self.events.iter().position(|e| filter(&e.path, &e.token))?;
        self.events.remove(i)
    }

    /// Drops the queued watch events of `token`.
    pub fn purge_events(&mut self, token: &str) {
        self.events.retain(|e| e.token != token);
    }

    /// Queued watch events.
    pub fn queued_events(&self) -> usize {
        self.events.len()
    }

    /// Fails if the connection is broken, or the server has set the page's `error`.
    fn check(&mut self) -> Result<(), Error> {
        if let Some(f) = self.fault {
            return Err(Error::Broken(f));
        }
        match self.ring.read_u32(OFF_ERROR) {
            0 => Ok(()),
            code => Err(self.fail(RingFault::Server(code))),
        }
    }

    fn fail(&mut self, f: RingFault) -> Error {
        self.fault = Some(f);
        Error::Broken(f)
    }
}

/// Reads `buf.len()` reply bytes from free-running index `idx`, across the wrap.
fn copy_in<R: RingMemory>(ring: &R, idx: u32, buf: &mut [u8]) {
    let pos = mask_xenstore_idx(idx);
    let first = buf.len().min(XENSTORE_RING_SIZE - pos);
    let (a, b) = buf.split_at_mut(first);
    ring.read_bytes(OFF_RSP + pos, a);
    ring.read_bytes(OFF_RSP, b);
}
