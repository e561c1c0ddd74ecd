//! Moving messages between a domain's `xenstore_domain_interface` page and xenstored
//! (C's `readchn`/`writechn` and `handle_input`/`write_messages`).
//!
//! The page is shared with the guest, which may change it at any time: each call reads
//! the indices it needs once, into locals, and checks them before use (a producer more
//! than a ring ahead of its consumer is a corrupted ring, `XENSTORE_ERROR_RINGIDX`).
//! Positions are masked with the ring size, so no guest value can index out of the page.
//! A header announcing more than `XENSTORE_PAYLOAD_MAX` bytes is a protocol violation
//! (`XENSTORE_ERROR_PROTO`). On either error the connection is finished: the error code
//! is written to the page and the caller calls [`super::Server::ignore_connection`].

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use xen_abi::xs_wire::{
    mask_xenstore_idx, XenstoreDomainInterface, XsdSockmsg, XENSTORE_ERROR_PROTO,
    XENSTORE_ERROR_RINGIDX, XENSTORE_PAYLOAD_MAX, XENSTORE_RING_SIZE, XSD_SOCKMSG_SIZE,
    XS_WATCH_EVENT,
};

use super::Msg;

/// Access to one domain's store page. The dom0 kernel implements it over the mapped
/// page with volatile accesses; tests use [`XenstoreDomainInterface`] itself.
///
/// Ordering contract for the implementation: `set_req_cons` and `set_rsp_prod` are
/// preceded by a full memory barrier, so the guest sees the data before the index (and
/// C's `xen_mb()` after reading the indices is the implementor's too).
pub trait XsRing {
    /// `(req_cons, req_prod)`, each read once.
    fn req_indices(&self) -> (u32, u32);
    /// `(rsp_cons, rsp_prod)`, each read once.
    fn rsp_indices(&self) -> (u32, u32);
    /// Copies `req[pos..pos + buf.len()]` out; `pos + buf.len() <= XENSTORE_RING_SIZE`.
    fn read_req(&self, pos: usize, buf: &mut [u8]);
    /// Copies `data` to `rsp[pos..]`; `pos + data.len() <= XENSTORE_RING_SIZE`.
    fn write_rsp(&mut self, pos: usize, data: &[u8]);
    /// Publishes `req_cons`.
    fn set_req_cons(&mut self, cons: u32);
    /// Publishes `rsp_prod`.
    fn set_rsp_prod(&mut self, prod: u32);
    /// Sets the page's `error` field (`XENSTORE_ERROR_*`).
    fn set_error(&mut self, error: u32);
}

impl XsRing for XenstoreDomainInterface {
    fn req_indices(&self) -> (u32, u32) {
        (self.req_cons, self.req_prod)
    }
    fn rsp_indices(&self) -> (u32, u32) {
        (self.rsp_cons, self.rsp_prod)
    }
    fn read_req(&self, pos: usize, buf: &mut [u8]) {
        if let Some(src) = self.req.get(pos..pos + buf.len()) {
            buf.copy_from_slice(src);
        }
    }
    fn write_rsp(&mut self, pos: usize, data: &[u8]) {
        if let Some(dst) = self.rsp.get_mut(pos..pos + data.len()) {
            dst.copy_from_slice(data);
        }
    }
    fn set_req_cons(&mut self, cons: u32) {
        self.req_cons = cons;
    }
    fn set_rsp_prod(&mut self, prod: u32) {
        self.rsp_prod = prod;
    }
    fn set_error(&mut self, error: u32) {
        self.error = error;
    }
}

/// Why a connection's ring can no longer be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The indices are more than a ring apart.
    BadIndex,
    /// A header announced a payload over `XENSTORE_PAYLOAD_MAX`.
    TooLong,
}

impl RingError {
    /// The `XENSTORE_ERROR_*` code for the page's `error` field.
    pub fn code(self) -> u32 {
        match self {
            RingError::BadIndex => XENSTORE_ERROR_RINGIDX,
            RingError::TooLong => XENSTORE_ERROR_PROTO,
        }
    }
}

/// Bytes readable between two index copies, if consistent.
fn used(cons: u32, prod: u32) -> Option<usize> {
    let n = prod.wrapping_sub(cons) as usize;
    (n <= XENSTORE_RING_SIZE).then_some(n)
}

/// One connection's partly read request and queued output.
#[derive(Clone, Debug, Default)]
pub struct ConnIo {
    hdr: [u8; XSD_SOCKMSG_SIZE],
    hdr_used: usize,
    /// Header read, payload in progress.
    body: Option<(XsdSockmsg, Vec<u8>)>,
    /// Whole messages (header and payload) to send; `true` for watch events.
    out: VecDeque<(Vec<u8>, bool)>,
    /// Bytes of the front message already sent.
    sent: usize,
}

impl ConnIo {
    /// A connection with nothing buffered.
    pub fn new() -> ConnIo {
        ConnIo::default()
    }

    /// Consumes request bytes from the ring until one message is whole and returns it,
    /// or `None` when the ring runs dry first (what was read is kept for next time).
    pub fn read_message<R: XsRing>(
        &mut self,
        ring: &mut R,
    ) -> Result<Option<(XsdSockmsg, Vec<u8>)>, RingError> {
        let (cons, prod) = ring.req_indices();
        let Some(mut avail) = used(cons, prod) else {
            ring.set_error(RingError::BadIndex.code());
            return Err(RingError::BadIndex);
        };
        let mut idx = cons;
        if self.body.is_none() {
            let want = (XSD_SOCKMSG_SIZE - self.hdr_used).min(avail);
            let dst = self
                .hdr
                .get_mut(self.hdr_used..self.hdr_used + want)
                .unwrap_or(&mut []);
            copy_in(ring, idx, dst);
            self.hdr_used += want;
            idx = idx.wrapping_add(want as u32);
            avail -= want;
            if self.hdr_used < XSD_SOCKMSG_SIZE {
                publish(ring, cons, idx);
                return Ok(None);
            }
            let hdr = XsdSockmsg::from_bytes(&self.hdr);
            self.hdr_used = 0;
            if hdr.len as usize > XENSTORE_PAYLOAD_MAX {
                ring.set_error(RingError::TooLong.code());
                return Err(RingError::TooLong);
            }
            self.body = Some((hdr, Vec::with_capacity(hdr.len as usize)));
        }
        let Some((hdr, body)) = self.body.as_mut() else {
            return Ok(None);
        };
        let start = body.len();
        let want = (hdr.len as usize - start).min(avail);
        body.resize(start + want, 0);
        copy_in(ring, idx, body.get_mut(start..).unwrap_or(&mut []));
        idx = idx.wrapping_add(want as u32);
        publish(ring, cons, idx);
        if body.len() == hdr.len as usize {
            Ok(self.body.take())
        } else {
            Ok(None)
        }
    }

    /// Queues a message. A watch event identical to one still queued is dropped, except
    /// for the special `@` names (C's `send_event`).
    pub fn push(&mut self, msg: &Msg) {
        let mut bytes = Vec::with_capacity(XSD_SOCKMSG_SIZE + msg.payload.len());
        bytes.extend_from_slice(&msg.hdr.to_bytes());
        bytes.extend_from_slice(&msg.payload);
        let event = msg.hdr.type_ == XS_WATCH_EVENT;
        if event
            && !msg.payload.starts_with(b"@")
            && self.out.iter().any(|(b, e)| *e && *b == bytes)
        {
            return;
        }
        self.out.push_back((bytes, event));
    }

    /// Whether output is waiting for ring space.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Writes as much queued output as the ring takes; returns the bytes written (notify
    /// the guest if not zero).
    pub fn write_pending<R: XsRing>(&mut self, ring: &mut R) -> Result<usize, RingError> {
        let (cons, prod) = ring.rsp_indices();
        let Some(used) = used(cons, prod) else {
            ring.set_error(RingError::BadIndex.code());
            return Err(RingError::BadIndex);
        };
        let mut space = XENSTORE_RING_SIZE - used;
        let mut idx = prod;
        let mut written = 0;
        while space > 0 {
            let Some((front, _)) = self.out.front() else {
                break;
            };
            let rest = front.get(self.sent..).unwrap_or(&[]);
            let n = rest.len().min(space);
            copy_out(ring, idx, rest.get(..n).unwrap_or(&[]));
            idx = idx.wrapping_add(n as u32);
            space -= n;
            written += n;
            self.sent += n;
            if self.sent >= front.len() {
                self.out.pop_front();
                self.sent = 0;
            }
        }
        if written > 0 {
            ring.set_rsp_prod(idx);
        }
        Ok(written)
    }
}

/// Publishes a new consumer index if anything was consumed.
fn publish<R: XsRing>(ring: &mut R, old: u32, new: u32) {
    if new != old {
        ring.set_req_cons(new);
    }
}

/// Reads `buf.len()` request bytes starting at free-running index `idx`, across the wrap.
fn copy_in<R: XsRing>(ring: &R, idx: u32, buf: &mut [u8]) {
    let pos = mask_xenstore_idx(idx);
    let first = buf.len().min(XENSTORE_RING_SIZE - pos);
    let (a, b) = buf.split_at_mut(first);
    ring.read_req(pos, a);
    ring.read_req(0, b);
}

/// Writes `data` as response bytes starting at free-running index `idx`.
fn copy_out<R: XsRing>(ring: &mut R, idx: u32, data: &[u8]) {
    let pos = mask_xenstore_idx(idx);
    let first = data.len().min(XENSTORE_RING_SIZE - pos);
    let (a, b) = data.split_at(first);
    ring.write_rsp(pos, a);
    ring.write_rsp(0, b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec;

    /// The guest side: puts bytes in the request ring.
    fn guest_send(p: &mut XenstoreDomainInterface, bytes: &[u8]) {
        for &b in bytes {
            p.req[mask_xenstore_idx(p.req_prod)] = b;
            p.req_prod = p.req_prod.wrapping_add(1);
        }
    }

    /// The guest side: takes everything from the response ring.
    fn guest_recv(p: &mut XenstoreDomainInterface) -> Vec<u8> {
        let mut v = Vec::new();
        while p.rsp_cons != p.rsp_prod {
            v.push(p.rsp[mask_xenstore_idx(p.rsp_cons)]);
            p.rsp_cons = p.rsp_cons.wrapping_add(1);
        }
        v
    }

    fn message(type_: u32, payload: &[u8]) -> Vec<u8> {
        let hdr = XsdSockmsg {
            type_,
            req_id: 9,
            tx_id: 0,
            len: payload.len() as u32,
        };
        [&hdr.to_bytes()[..], payload].concat()
    }

    #[test]
    fn messages_across_the_wrap_and_in_pieces() {
        let mut page = Box::<XenstoreDomainInterface>::default();
        // Start near the top of the index space, so indices wrap as u32 too.
        for i in [page.req_cons, page.req_prod] {
            assert_eq!(i, 0);
        }
        page.req_cons = u32::MAX - 5;
        page.req_prod = u32::MAX - 5;
        let mut io = ConnIo::new();
        let m = message(2, b"/local/domain/1/name\0");
        guest_send(&mut page, &m[..10]);
        assert_eq!(io.read_message(&mut *page), Ok(None));
        guest_send(&mut page, &m[10..]);
        let mut second = message(1, b"/\0");
        second.truncate(17);
        guest_send(&mut page, &second);
        let (hdr, body) = io.read_message(&mut *page).unwrap().unwrap();
        assert_eq!(
            (hdr.type_, hdr.req_id, &body[..]),
            (2, 9, &b"/local/domain/1/name\0"[..])
        );
        // The second message is incomplete: its bytes are kept.
        assert_eq!(io.read_message(&mut *page), Ok(None));
        guest_send(&mut page, &message(1, b"/\0")[17..]);
        let (hdr, body) = io.read_message(&mut *page).unwrap().unwrap();
        assert_eq!((hdr.type_, &body[..]), (1, &b"/\0"[..]));
        assert_eq!(page.req_cons, page.req_prod);
    }

    #[test]
    fn bad_rings_are_reported() {
        let mut page = Box::<XenstoreDomainInterface>::default();
        page.req_prod = XENSTORE_RING_SIZE as u32 + 1;
        let mut io = ConnIo::new();
        assert_eq!(io.read_message(&mut *page), Err(RingError::BadIndex));
        assert_eq!(page.error, XENSTORE_ERROR_RINGIDX);

        let mut page = Box::<XenstoreDomainInterface>::default();
        let mut hdr = message(2, b"").to_vec();
        hdr[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX as u32 + 1).to_le_bytes());
        guest_send(&mut page, &hdr);
        assert_eq!(
            ConnIo::new().read_message(&mut *page),
            Err(RingError::TooLong)
        );
        assert_eq!(page.error, XENSTORE_ERROR_PROTO);

        let mut page = Box::<XenstoreDomainInterface>::default();
        page.rsp_cons = 5;
        page.rsp_prod = 4;
        let mut io = ConnIo::new();
        io.push(&Msg {
            to: 1,
            hdr: XsdSockmsg::default(),
            payload: vec![],
        });
        assert_eq!(io.write_pending(&mut *page), Err(RingError::BadIndex));
    }

    #[test]
    fn output_flows_as_the_guest_consumes() {
        let mut page = Box::<XenstoreDomainInterface>::default();
        let mut io = ConnIo::new();
        let big = vec![b'x'; 3000];
        let msg = |type_, payload: &[u8]| Msg {
            to: 1,
            hdr: XsdSockmsg {
                type_,
                req_id: 0,
                tx_id: 0,
                len: payload.len() as u32,
            },
            payload: payload.to_vec(),
        };
        io.push(&msg(2, &big));
        io.push(&msg(XS_WATCH_EVENT, b"/a\0t\0"));
        io.push(&msg(XS_WATCH_EVENT, b"/a\0t\0")); // duplicate: dropped
        io.push(&msg(XS_WATCH_EVENT, b"@releaseDomain\0t\0"));
        io.push(&msg(XS_WATCH_EVENT, b"@releaseDomain\0t\0")); // special: kept
        let mut got = Vec::new();
        while io.has_output() {
            assert!(io.write_pending(&mut *page).unwrap() > 0);
            assert_eq!(
                io.write_pending(&mut *page),
                Ok(0),
                "ring full until consumed"
            );
            got.extend(guest_recv(&mut page));
        }
        let want = [
            message(2, &big),
            message(XS_WATCH_EVENT, b"/a\0t\0"),
            message(XS_WATCH_EVENT, b"@releaseDomain\0t\0"),
            message(XS_WATCH_EVENT, b"@releaseDomain\0t\0"),
        ]
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m[4..8].copy_from_slice(&0u32.to_le_bytes()); // req_id 0
            m
        })
        .collect::<Vec<_>>()
        .concat();
        assert_eq!(got, want);
    }
}
