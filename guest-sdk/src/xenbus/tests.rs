//! Host tests: the ring and framing against a fake server (well-behaved, then hostile),
//! the operations against a small in-memory store, and the state machine helpers.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;
use std::{format, vec};

use super::ring::*;
use super::state::*;
use super::*;

// ---- the fake server ---------------------------------------------------------------

/// The page as a byte buffer both sides reach.
#[derive(Clone)]
struct SharedPage(Rc<RefCell<Vec<u8>>>);

impl RingMemory for SharedPage {
    fn read_u32(&self, off: usize) -> u32 {
        self.0.borrow().read_u32(off)
    }
    fn write_u32(&mut self, off: usize, val: u32) {
        self.0.borrow_mut().write_u32(off, val)
    }
    fn read_bytes(&self, off: usize, buf: &mut [u8]) {
        self.0.borrow().read_bytes(off, buf)
    }
    fn write_bytes(&mut self, off: usize, data: &[u8]) {
        self.0.borrow_mut().write_bytes(off, data)
    }
}

/// What a handler may do: queue messages or raw bytes, or scribble on the page.
struct Out {
    bytes: Vec<u8>,
    page: Rc<RefCell<Vec<u8>>>,
}

impl Out {
    fn msg(&mut self, type_: u32, req_id: u32, tx_id: u32, payload: &[u8]) {
        let h = XsdSockmsg {
            type_,
            req_id,
            tx_id,
            len: payload.len() as u32,
        };
        self.bytes.extend_from_slice(&h.to_bytes());
        self.bytes.extend_from_slice(payload);
    }
    fn reply(&mut self, h: &XsdSockmsg, payload: &[u8]) {
        self.msg(h.type_, h.req_id, h.tx_id, payload);
    }
    fn ok(&mut self, h: &XsdSockmsg) {
        self.reply(h, b"OK\0");
    }
    fn error(&mut self, h: &XsdSockmsg, name: &str) {
        self.msg(XS_ERROR, h.req_id, h.tx_id, format!("{name}\0").as_bytes());
    }
    fn event(&mut self, path: &str, token: &str) {
        self.msg(
            XS_WATCH_EVENT,
            0,
            0,
            format!("{path}\0{token}\0").as_bytes(),
        );
    }
    fn set(&mut self, off: usize, v: u32) {
        self.page.borrow_mut().write_u32(off, v);
    }
    fn get(&self, off: usize) -> u32 {
        self.page.borrow().read_u32(off)
    }
}

type Handler = Box<dyn FnMut(&mut Out, XsdSockmsg, &[u8])>;
type Idle = Box<dyn FnMut(&mut Out) -> bool>;

struct Server {
    page: Rc<RefCell<Vec<u8>>>,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    handler: Handler,
    /// Take requests off the ring (false: a server that stopped reading).
    consume: bool,
    received: Vec<(XsdSockmsg, Vec<u8>)>,
    /// Run when a step finds nothing else to do (another domain changing the store).
    idle: Option<Idle>,
}

impl Server {
    /// One round: take requests, answer whole ones, write what fits. Whether anything
    /// happened.
    fn step(&mut self) -> bool {
        let mut progress = false;
        if self.consume {
            let mut p = self.page.borrow_mut();
            let (mut cons, prod) = (p.read_u32(OFF_REQ_CONS), p.read_u32(OFF_REQ_PROD));
            // (A server that broke its own index reads nothing.)
            while cons != prod && prod.wrapping_sub(cons) as usize <= XENSTORE_RING_SIZE {
                let mut b = [0u8];
                p.read_bytes(OFF_REQ + mask_xenstore_idx(cons), &mut b);
                self.inbuf.push(b[0]);
                cons = cons.wrapping_add(1);
                progress = true;
            }
            p.write_u32(OFF_REQ_CONS, cons);
        }
        let mut out = Out {
            bytes: std::mem::take(&mut self.out),
            page: self.page.clone(),
        };
        while self.inbuf.len() >= XSD_SOCKMSG_SIZE {
            let h = XsdSockmsg::from_bytes(self.inbuf[..16].try_into().unwrap());
            let end = 16 + h.len as usize;
            if self.inbuf.len() < end {
                break;
            }
            let payload = self.inbuf[16..end].to_vec();
            self.inbuf.drain(..end);
            self.received.push((h, payload.clone()));
            (self.handler)(&mut out, h, &payload);
            progress = true;
        }
        if !progress && out.bytes.is_empty() {
            if let Some(idle) = self.idle.as_mut() {
                progress |= idle(&mut out);
            }
        }
        self.out = out.bytes;
        let mut p = self.page.borrow_mut();
        let (cons, mut prod) = (p.read_u32(OFF_RSP_CONS), p.read_u32(OFF_RSP_PROD));
        let used = prod.wrapping_sub(cons) as usize;
        let n = XENSTORE_RING_SIZE.saturating_sub(used).min(self.out.len());
        for b in self.out.drain(..n) {
            p.write_bytes(OFF_RSP + mask_xenstore_idx(prod), &[b]);
            prod = prod.wrapping_add(1);
        }
        p.write_u32(OFF_RSP_PROD, prod);
        progress || n > 0
    }
}

/// Time passes only in the server: a wait runs one server step, and "the deadline
/// passed" when the server had nothing to do.
struct FakeWaiter {
    server: Rc<RefCell<Server>>,
    notifies: Cell<usize>,
    /// Looks at the clock before the deadline counts as passed (default: never).
    waits_left: Cell<usize>,
}

impl Waiter for FakeWaiter {
    fn notify(&self) {
        self.notifies.set(self.notifies.get() + 1);
    }
    fn deadline(&self, timeout: Option<Duration>) -> Deadline {
        timeout.map_or(Deadline::NEVER, |_| Deadline(1))
    }
    fn wait(&self, deadline: Deadline) -> bool {
        !self.expired(deadline) && self.server.borrow_mut().step()
    }
    fn expired(&self, _deadline: Deadline) -> bool {
        self.waits_left.get() == 0 || {
            self.waits_left.set(self.waits_left.get() - 1);
            false
        }
    }
}

type TestClient = Client<SharedPage, FakeWaiter>;

struct Rig {
    xb: TestClient,
    server: Rc<RefCell<Server>>,
    page: Rc<RefCell<Vec<u8>>>,
}

impl Rig {
    fn new(handler: Handler) -> Rig {
        Rig::with_page(vec![0; PAGE_BYTES], handler)
    }

    fn with_page(page: Vec<u8>, handler: Handler) -> Rig {
        let page = Rc::new(RefCell::new(page));
        let server = Rc::new(RefCell::new(Server {
            page: page.clone(),
            inbuf: Vec::new(),
            out: Vec::new(),
            handler,
            consume: true,
            received: Vec::new(),
            idle: None,
        }));
        let waiter = FakeWaiter {
            server: server.clone(),
            notifies: Cell::new(0),
            waits_left: Cell::new(usize::MAX),
        };
        Rig {
            xb: Client::new(SharedPage(page.clone()), waiter),
            server,
            page,
        }
    }

    fn received(&self) -> Vec<(XsdSockmsg, Vec<u8>)> {
        self.server.borrow().received.clone()
    }

    fn fault(&self) -> Option<RingFault> {
        self.xb.with_conn(|c| c.fault())
    }
}

/// A server answering every request with `OK` (a read with `value`).
fn echo(value: Vec<u8>) -> Handler {
    Box::new(move |out, h, _| match h.type_ {
        XS_READ => out.reply(&h, &value),
        _ => out.ok(&h),
    })
}

// ---- a tiny store for the operations -----------------------------------------------

#[derive(Default)]
struct Mini {
    nodes: BTreeMap<String, Vec<u8>>,
    perms: BTreeMap<String, Vec<u8>>,
    watches: Vec<(String, String)>,
    next_tx: u32,
    /// Commits that fail with EAGAIN before one succeeds.
    eagain_commits: u32,
    /// `XS_DIRECTORY` says E2BIG; `XS_DIRECTORY_PART` gives this many names a part.
    dir_parts: Option<usize>,
    /// Bump the generation after the first part (once).
    regenerate_once: bool,
    generation: u32,
    writes: usize,
    ends: Vec<(u32, bool)>,
}

fn strs(p: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = p
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    v.pop();
    v
}

impl Mini {
    fn children(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{dir}/");
        let mut names: Vec<String> = self
            .nodes
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or("").to_string())
            .collect();
        names.dedup();
        names
    }

    fn fire(&self, out: &mut Out, path: &str) {
        for (w, t) in &self.watches {
            if path == w || path.starts_with(&format!("{w}/")) {
                out.event(path, t);
            }
        }
    }

    fn handle(&mut self, out: &mut Out, h: XsdSockmsg, p: &[u8]) {
        let s = strs(p);
        let first = s.first().cloned().unwrap_or_default();
        match h.type_ {
            XS_READ => match self.nodes.get(&first) {
                Some(v) => out.reply(&h, &v.clone()),
                None => out.error(&h, "ENOENT"),
            },
            XS_WRITE => {
                let value = p[first.len() + 1..].to_vec();
                self.nodes.insert(first.clone(), value);
                self.writes += 1;
                self.fire(out, &first);
                out.ok(&h);
            }
            XS_MKDIR => {
                self.nodes.entry(first.clone()).or_default();
                out.ok(&h);
            }
            XS_RM => {
                let prefix = format!("{first}/");
                self.nodes
                    .retain(|k, _| *k != first && !k.starts_with(&prefix));
                self.fire(out, &first);
                out.ok(&h);
            }
            XS_DIRECTORY => {
                if !self.nodes.contains_key(&first) {
                    return out.error(&h, "ENOENT");
                }
                if self.dir_parts.is_some() {
                    return out.error(&h, "E2BIG");
                }
                let body: Vec<u8> = self
                    .children(&first)
                    .iter()
                    .flat_map(|c| format!("{c}\0").into_bytes())
                    .collect();
                out.reply(&h, &body);
            }
            XS_DIRECTORY_PART => {
                let all: Vec<u8> = self
                    .children(&first)
                    .iter()
                    .flat_map(|c| format!("{c}\0").into_bytes())
                    .collect();
                let off: usize = s[1].parse().unwrap();
                let per = self.dir_parts.unwrap_or(usize::MAX);
                let mut body = format!("{}\0", self.generation).into_bytes();
                let tail = &all[off.min(all.len())..];
                let mut take = 0;
                for _ in 0..per {
                    match tail[take..].iter().position(|&b| b == 0) {
                        Some(i) => take += i + 1,
                        None => break,
                    }
                }
                body.extend_from_slice(&tail[..take]);
                if take == tail.len() {
                    body.push(0);
                }
                if self.regenerate_once {
                    self.regenerate_once = false;
                    self.generation += 1;
                }
                out.reply(&h, &body);
            }
            XS_GET_PERMS => match self.perms.get(&first) {
                Some(v) => out.reply(&h, &v.clone()),
                None if self.nodes.contains_key(&first) => out.reply(&h, b"n0\0"),
                None => out.error(&h, "ENOENT"),
            },
            XS_SET_PERMS => {
                self.perms
                    .insert(first.clone(), p[first.len() + 1..].to_vec());
                out.ok(&h);
            }
            XS_WATCH => {
                self.watches.push((s[0].clone(), s[1].clone()));
                out.ok(&h);
                out.event(&s[0], &s[1]);
            }
            XS_UNWATCH => {
                let before = self.watches.len();
                self.watches.retain(|(w, t)| !(*w == s[0] && *t == s[1]));
                match self.watches.len() < before {
                    true => out.ok(&h),
                    false => out.error(&h, "ENOENT"),
                }
            }
            XS_TRANSACTION_START => {
                self.next_tx += 1;
                out.reply(&h, format!("{}\0", self.next_tx).as_bytes());
            }
            XS_TRANSACTION_END => {
                let commit = p == b"T\0";
                self.ends.push((h.tx_id, commit));
                if commit && self.eagain_commits > 0 {
                    self.eagain_commits -= 1;
                    return out.error(&h, "EAGAIN");
                }
                out.ok(&h);
            }
            XS_GET_DOMAIN_PATH => {
                out.reply(&h, format!("/local/domain/{first}\0").as_bytes());
            }
            _ => out.error(&h, "ENOSYS"),
        }
    }
}

fn mini_rig() -> (Rig, Rc<RefCell<Mini>>) {
    let mini = Rc::new(RefCell::new(Mini::default()));
    let m = mini.clone();
    let rig = Rig::new(Box::new(move |out, h, p| m.borrow_mut().handle(out, h, p)));
    (rig, mini)
}

// ---- framing -----------------------------------------------------------------------

#[test]
fn requests_are_framed_and_replies_matched() {
    let rig = Rig::new(echo(b"value".to_vec()));
    rig.xb.write("data/key", b"v\0x").unwrap();
    assert_eq!(rig.xb.read("data/key").unwrap(), b"value");
    assert_eq!(rig.xb.read_string("data/key").unwrap(), "value");
    let got = rig.received();
    let (h0, p0) = &got[0];
    assert_eq!((h0.type_, h0.tx_id, h0.len), (XS_WRITE, 0, 12));
    assert_eq!(p0, b"data/key\0v\0x");
    let (h1, p1) = &got[1];
    assert_eq!((h1.type_, h1.len), (XS_READ, 9));
    assert_eq!(p1, b"data/key\0");
    assert_eq!(h1.req_id, h0.req_id.wrapping_add(1), "ids advance");
    let page = rig.page.borrow();
    assert_eq!(page.read_u32(OFF_REQ_PROD), 16 + 12 + 2 * (16 + 9));
    assert_eq!(page.read_u32(OFF_RSP_CONS), page.read_u32(OFF_RSP_PROD));
    assert!(rig.xb.waiter().notifies.get() >= 2);
}

#[test]
fn indices_wrap_and_big_messages_stream_through_the_small_ring() {
    let mut page = vec![0u8; PAGE_BYTES];
    let start = u32::MAX - 700;
    for off in [OFF_REQ_CONS, OFF_REQ_PROD, OFF_RSP_CONS, OFF_RSP_PROD] {
        page.write_u32(off, start);
    }
    let big: Vec<u8> = (0..XENSTORE_PAYLOAD_MAX).map(|i| (i * 7) as u8).collect();
    let rig = Rig::with_page(page, echo(big.clone()));
    for round in 0..10 {
        let value: Vec<u8> = (0..4000 - round).map(|i| (i + round) as u8).collect();
        rig.xb.write("k", &value).unwrap();
        assert_eq!(rig.xb.read("k").unwrap(), big);
        let got = rig.received();
        let (h, p) = &got[got.len() - 2];
        assert_eq!(h.type_, XS_WRITE);
        assert_eq!(&p[2..], &value[..]);
    }
    let page = rig.page.borrow();
    assert!(page.read_u32(OFF_REQ_PROD) < start, "the u32 index wrapped");
    assert_eq!(rig.fault(), None);
}

#[test]
fn watch_events_between_replies_are_queued_in_order_once() {
    let rig = Rig::new(Box::new(|out, h, _| {
        out.event("/a", "t1");
        out.event("/b", "t2");
        out.event("/a", "t1"); // a duplicate of a queued event
        out.msg(XS_WATCH_EVENT, 0, 0, b"no-nul"); // malformed
        out.reply(&h, b"x");
        out.event("/c", "t3"); // after the reply: stays on the ring
    }));
    assert_eq!(rig.xb.read("k").unwrap(), b"x");
    assert_eq!(rig.xb.with_conn(|c| c.queued_events()), 2);
    let zero = Some(Duration::ZERO);
    assert_eq!(
        rig.xb.next_watch_event(zero),
        Some(("/a".into(), "t1".into()))
    );
    assert_eq!(
        rig.xb.next_watch_event(zero),
        Some(("/b".into(), "t2".into()))
    );
    assert_eq!(
        rig.xb.next_watch_event(zero),
        Some(("/c".into(), "t3".into()))
    );
    assert_eq!(rig.xb.next_watch_event(zero), None);
    assert_eq!(rig.xb.with_conn(|c| c.discards().malformed_events), 1);
}

#[test]
fn the_event_queue_is_bounded_dropping_the_oldest() {
    let rig = Rig::new(Box::new(|out, h, _| {
        for i in 0..MAX_QUEUED_EVENTS + 44 {
            out.event(&format!("/n{i}"), "t");
        }
        out.reply(&h, b"");
    }));
    rig.xb.read("k").unwrap();
    rig.xb.with_conn(|c| {
        assert_eq!(c.queued_events(), MAX_QUEUED_EVENTS);
        assert_eq!(c.discards().events_overflowed, 44);
    });
    let first = rig.xb.next_watch_event(Some(Duration::ZERO)).unwrap();
    assert_eq!(first.0, "/n44");
}

#[test]
fn events_can_be_taken_by_token_and_purged() {
    let rig = Rig::new(Box::new(|out, h, _| {
        out.event("/a", "mine");
        out.event("/b", "theirs");
        out.event("/c", "mine");
        out.reply(&h, b"");
    }));
    rig.xb.read("k").unwrap();
    let d = rig.xb.deadline(Some(Duration::ZERO));
    let ev = rig.xb.watch_event_until(d, &|_, t| t == "theirs");
    assert_eq!(ev, Some(("/b".into(), "theirs".into())));
    rig.xb.purge_watch_events("mine");
    assert_eq!(rig.xb.next_watch_event(Some(Duration::ZERO)), None);
}

#[test]
fn error_replies_decode_to_xens_names() {
    let names = [
        ("EINVAL", Error::EINVAL),
        ("EACCES", Error::EACCES),
        ("EEXIST", Error::EEXIST),
        ("EISDIR", Error::EISDIR),
        ("ENOENT", Error::ENOENT),
        ("ENOMEM", Error::ENOMEM),
        ("ENOSPC", Error::ENOSPC),
        ("EIO", Error::EIO),
        ("ENOTEMPTY", Error::ENOTEMPTY),
        ("ENOSYS", Error::ENOSYS),
        ("EROFS", Error::EROFS),
        ("EBUSY", Error::EBUSY),
        ("EAGAIN", Error::EAGAIN),
        ("EISCONN", Error::EISCONN),
        ("E2BIG", Error::E2BIG),
        ("EPERM", Error::EPERM),
        ("EQUOTA", Error::EQUOTA),
        ("EWHATEVER", Error::EINVAL),
        ("", Error::EINVAL),
    ];
    let next = Rc::new(RefCell::new(String::new()));
    let n = next.clone();
    let rig = Rig::new(Box::new(move |out, h, _| out.error(&h, &n.borrow())));
    for (name, err) in names {
        *next.borrow_mut() = name.to_string();
        assert_eq!(rig.xb.read("k"), Err(err), "{name}");
        if !name.is_empty() && name != "EWHATEVER" {
            assert_eq!(err.name(), name);
        }
    }
    // Without the NUL too.
    assert_eq!(Error::from_wire(b"ENOENT"), Error::ENOENT);
    assert_eq!(Error::ENOENT.errno(), xen_abi::errno::ENOENT);
    assert_eq!(Error::E2BIG.errno(), xen_abi::errno::E2BIG);
    assert_eq!(Error::Timeout.errno(), xen_abi::errno::ETIMEDOUT);
    assert_eq!(
        Error::Broken(RingFault::BadIndex).errno(),
        xen_abi::errno::EIO
    );
    assert_eq!(format!("{}", Error::EAGAIN), "EAGAIN");
}

// ---- a hostile server --------------------------------------------------------------

#[test]
fn replies_with_another_req_id_are_dropped() {
    let rig = Rig::new(Box::new(|out, h, _| {
        out.msg(h.type_, h.req_id.wrapping_add(100), 0, b"not yours");
        out.msg(h.type_, h.req_id.wrapping_sub(1), 0, b"stale");
        out.reply(&h, b"yours");
    }));
    assert_eq!(rig.xb.read("k").unwrap(), b"yours");
    assert_eq!(rig.xb.with_conn(|c| c.discards().stale_replies), 2);

    let rig = Rig::new(Box::new(|out, h, _| {
        out.msg(h.type_, h.req_id ^ 1, 0, b"never yours");
    }));
    assert_eq!(rig.xb.read("k"), Err(Error::Timeout));
    assert_eq!(rig.fault(), None, "a timeout does not break the ring");
}

#[test]
fn a_reply_of_the_wrong_type_is_a_bad_reply() {
    let rig = Rig::new(Box::new(|out, h, _| match h.type_ {
        XS_READ => out.msg(XS_DIRECTORY, h.req_id, 0, b"a\0b\0"),
        _ => out.reply(&h, b"7\0"),
    }));
    assert_eq!(rig.xb.read("k"), Err(Error::BadReply));
    // The connection goes on.
    assert_eq!(rig.xb.transaction_start().map(|t| t.id()), Ok(7));
    // A transaction id that is not a number, or 0, is a bad reply too.
    let rig = Rig::new(Box::new(|out, h, _| out.reply(&h, b"0\0")));
    assert_eq!(
        rig.xb.transaction_start().map(|t| t.id()),
        Err(Error::BadReply)
    );
    let rig = Rig::new(Box::new(|out, h, _| out.reply(&h, b"x\0")));
    assert_eq!(
        rig.xb.transaction_start().map(|t| t.id()),
        Err(Error::BadReply)
    );
}

#[test]
fn a_producer_more_than_a_ring_ahead_breaks_the_ring() {
    for bad in [XENSTORE_RING_SIZE as u32 + 1, 5000, u32::MAX, 0x8000_0000] {
        let rig = Rig::new(Box::new(move |out, _, _| {
            let cons = out.get(OFF_RSP_CONS);
            out.set(OFF_RSP_PROD, cons.wrapping_add(bad));
        }));
        let broken = Err(Error::Broken(RingFault::BadIndex));
        assert_eq!(rig.xb.read("k"), broken);
        assert_eq!(rig.xb.write("k", b"v"), broken.map(drop), "it stays broken");
        assert_eq!(rig.xb.next_watch_event(Some(Duration::ZERO)), None);
    }
}

#[test]
fn a_consumer_past_the_producer_breaks_the_ring() {
    let rig = Rig::new(Box::new(|out, h, _| {
        let prod = out.get(OFF_REQ_PROD);
        out.set(OFF_REQ_CONS, prod.wrapping_add(5));
        out.ok(&h);
    }));
    // The first request goes through; the next flush sees the bad index.
    rig.xb.mkdir("a").unwrap();
    assert_eq!(rig.xb.mkdir("b"), Err(Error::Broken(RingFault::BadIndex)));
}

#[test]
fn a_server_scribbling_on_our_indices_does_not_move_us() {
    let mut conn = XsConn::new(vec![0u8; PAGE_BYTES]);
    let id = conn.queue_request(XS_READ, 0, &[b"k\0"]).unwrap();
    conn.flush().unwrap();
    let mut o = Out {
        bytes: Vec::new(),
        page: Rc::new(RefCell::new(Vec::new())),
    };
    o.msg(XS_READ, id, 0, b"value");
    let reply = o.bytes;
    // Scribble on our rsp_cons (and req_prod) after connecting: ignored.
    let mut page = std::mem::take(conn.ring_mut_for_tests());
    page.write_bytes(OFF_RSP, &reply);
    page.write_u32(OFF_RSP_PROD, reply.len() as u32);
    page.write_u32(OFF_RSP_CONS, 7);
    page.write_u32(OFF_REQ_PROD, 3);
    *conn.ring_mut_for_tests() = page;
    let got = conn.poll(Some((id, XS_READ))).unwrap();
    assert_eq!(got.reply, Some(Ok(b"value".to_vec())));
    assert_eq!(got.consumed, reply.len());
    assert_eq!(conn.ring().read_u32(OFF_RSP_CONS), reply.len() as u32);
    conn.queue_request(XS_READ, 0, &[b"k\0"]).unwrap();
    conn.flush().unwrap();
    assert_eq!(conn.ring().read_u32(OFF_REQ_PROD), 36);
}

#[test]
fn an_oversized_header_breaks_the_ring() {
    let rig = Rig::new(Box::new(|out, h, _| {
        let hdr = XsdSockmsg {
            len: XENSTORE_PAYLOAD_MAX as u32 + 1,
            ..h
        };
        out.bytes.extend_from_slice(&hdr.to_bytes());
    }));
    assert_eq!(rig.xb.read("k"), Err(Error::Broken(RingFault::TooLong)));
    assert_eq!(rig.fault(), Some(RingFault::TooLong));
}

#[test]
fn the_servers_error_field_breaks_the_ring() {
    let rig = Rig::new(Box::new(|out, h, _| {
        out.set(OFF_ERROR, xen_abi::xs_wire::XENSTORE_ERROR_PROTO);
        out.ok(&h);
    }));
    assert_eq!(rig.xb.read("k"), Err(Error::Broken(RingFault::Server(3))));
    assert_eq!(rig.xb.read("k"), Err(Error::Broken(RingFault::Server(3))));
}

#[test]
fn a_truncated_reply_times_out_and_the_stream_resynchronises() {
    let rest = Rc::new(RefCell::new(Vec::new()));
    let r = rest.clone();
    let rig = Rig::new(Box::new(move |out, h, _| {
        let full = {
            let mut o = Out {
                bytes: Vec::new(),
                page: out.page.clone(),
            };
            o.reply(&h, b"0123456789");
            o.bytes
        };
        if h.req_id == 1 {
            // Half of it now, the rest with the next reply.
            out.bytes.extend_from_slice(&full[..20]);
            *r.borrow_mut() = full[20..].to_vec();
        } else {
            out.bytes.extend(r.borrow_mut().drain(..));
            out.bytes.extend_from_slice(&full);
        }
    }));
    assert_eq!(rig.xb.read("k"), Err(Error::Timeout));
    assert_eq!(rig.xb.read("k").unwrap(), b"0123456789");
    assert_eq!(rig.xb.with_conn(|c| c.discards().stale_replies), 1);
}

#[test]
fn a_request_the_server_did_not_take_is_finished_before_the_next() {
    let rig = Rig::new(echo(b"r".to_vec()));
    rig.server.borrow_mut().consume = false;
    let value = vec![b'x'; 3000];
    assert_eq!(rig.xb.write("big", &value), Err(Error::Timeout));
    assert!(rig.xb.with_conn(|c| c.has_unsent()));
    rig.server.borrow_mut().consume = true;
    assert_eq!(rig.xb.read("k").unwrap(), b"r");
    let got = rig.received();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].0.type_, &got[0].1[4..]), (XS_WRITE, &value[..]));
    assert_eq!(got[1].0.type_, XS_READ);
    assert_eq!(rig.xb.with_conn(|c| c.discards().stale_replies), 1);
}

#[test]
fn bad_requests_are_refused_before_the_ring() {
    let rig = Rig::new(echo(Vec::new()));
    let too_big = vec![0u8; XENSTORE_PAYLOAD_MAX];
    assert_eq!(rig.xb.write("k", &too_big), Err(Error::E2BIG));
    assert_eq!(rig.xb.read("a\0b"), Err(Error::EINVAL));
    assert_eq!(rig.xb.watch("a", "t\0"), Err(Error::EINVAL));
    assert!(rig.received().is_empty());
    assert_eq!(rig.page.borrow().read_u32(OFF_REQ_PROD), 0);
    // Exactly the maximum goes.
    let max = vec![0u8; XENSTORE_PAYLOAD_MAX - 2];
    rig.xb.write("k", &max).unwrap();
}

/// xorshift64*, for reproducible garbage.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn garbage_from_the_server_never_panics() {
    let rng = Rc::new(RefCell::new(Rng(0x1234_5678_9abc_def1)));
    for round in 0..300u32 {
        let mut page = vec![0u8; PAGE_BYTES];
        {
            let mut r = rng.borrow_mut();
            if round.is_multiple_of(3) {
                for b in page.iter_mut() {
                    *b = r.next() as u8;
                }
                page.write_u32(OFF_ERROR, 0);
            }
        }
        let r = rng.clone();
        let rig = Rig::with_page(
            page,
            Box::new(move |out, h, _| {
                let mut r = r.borrow_mut();
                for _ in 0..(r.next() % 4) {
                    match r.next() % 6 {
                        0 => {
                            let v = r.next() as u32;
                            out.set(OFF_RSP_PROD, v);
                        }
                        1 => {
                            let v = r.next() as u32;
                            out.set(OFF_REQ_CONS, v);
                        }
                        2 => {
                            // A header with random fields, some aimed at us.
                            let t = [h.type_, XS_ERROR, XS_WATCH_EVENT, r.next() as u32];
                            let hdr = XsdSockmsg {
                                type_: t[(r.next() % 4) as usize],
                                req_id: if r.next().is_multiple_of(2) {
                                    h.req_id
                                } else {
                                    r.next() as u32
                                },
                                tx_id: r.next() as u32,
                                len: (r.next() % 5000) as u32,
                            };
                            out.bytes.extend_from_slice(&hdr.to_bytes());
                        }
                        3 => {
                            let n = r.next() % 300;
                            for _ in 0..n {
                                out.bytes.push(r.next() as u8);
                            }
                        }
                        4 => out.reply(&h, b"ok\0"),
                        _ => out.event("/x", "\u{7f}"),
                    }
                }
            }),
        );
        for _ in 0..5 {
            let _ = rig.xb.read("k");
            let _ = rig.xb.directory("d");
            let _ = rig.xb.transaction(|tx| tx.write("k", b"v"));
            let _ = rig.xb.next_watch_event(Some(Duration::ZERO));
        }
    }
}

#[test]
fn a_server_that_never_stops_talking_cannot_hold_a_request_past_its_deadline() {
    let rig = Rig::new(Box::new(|_, _, _| {}));
    // Every step, a new watch event; never the reply.
    let mut n = 0u64;
    rig.server.borrow_mut().idle = Some(Box::new(move |out| {
        n += 1;
        out.event(&format!("/flood/{n}"), "t");
        true
    }));
    rig.xb.waiter().waits_left.set(1000);
    assert_eq!(rig.xb.read("k"), Err(Error::Timeout));
    rig.xb
        .with_conn(|c| assert_eq!(c.queued_events(), MAX_QUEUED_EVENTS));
    // Waiting for an event that never comes among the flood ends too.
    rig.xb.waiter().waits_left.set(1000);
    let d = rig.xb.deadline(Some(Duration::from_secs(1)));
    assert_eq!(rig.xb.watch_event_until(d, &|_, t| t == "other"), None);
}

// ---- operations against the tiny store ---------------------------------------------

#[test]
fn node_operations() {
    let (rig, mini) = mini_rig();
    let xb = &rig.xb;
    assert_eq!(xb.read("d/a"), Err(Error::ENOENT));
    assert!(!xb.exists("d/a").unwrap());
    xb.write("d/a", b"1").unwrap();
    xb.write("d/b", b" 42\n").unwrap();
    xb.mkdir("d").unwrap();
    xb.mkdir("d/c").unwrap();
    assert!(xb.exists("d/a").unwrap());
    assert_eq!(xb.directory("d").unwrap(), ["a", "b", "c"]);
    assert_eq!(xb.directory("d/c").unwrap(), Vec::<String>::new());
    assert_eq!(xb.read_u64("d/b"), Ok(42));
    assert_eq!(xb.read_u64("d/c"), Err(Error::Parse));
    assert_eq!(xb.read_feature("d/a"), Ok(1));
    assert_eq!(xb.read_feature("d/nope"), Ok(0));
    assert_eq!(xb.read_feature("d/c"), Ok(0));
    xb.rm("d").unwrap();
    assert_eq!(xb.read("d/a"), Err(Error::ENOENT));
    assert_eq!(xb.get_domain_path(7).unwrap(), "/local/domain/7");
    assert_eq!(mini.borrow().writes, 2);
}

#[test]
fn read_string_refuses_bad_utf8() {
    let rig = Rig::new(echo(vec![0xff, 0xfe]));
    assert_eq!(rig.xb.read_string("k"), Err(Error::Parse));
}

#[test]
fn permissions_round_trip() {
    let (rig, _) = mini_rig();
    rig.xb.mkdir("n").unwrap();
    assert_eq!(
        rig.xb.get_perms("n").unwrap(),
        [Perm {
            domid: 0,
            access: Access::None
        }]
    );
    let perms = [
        Perm {
            domid: 3,
            access: Access::None,
        },
        Perm {
            domid: 0,
            access: Access::Read,
        },
        Perm {
            domid: 5,
            access: Access::Both,
        },
        Perm {
            domid: 9,
            access: Access::Write,
        },
    ];
    rig.xb.set_perms("n", &perms).unwrap();
    assert_eq!(rig.xb.get_perms("n").unwrap(), perms);
    let got = rig.received();
    let set = &got[got.len() - 2];
    assert_eq!(
        (set.0.type_, &set.1[..]),
        (XS_SET_PERMS, &b"n\0n3\0r0\0b5\0w9\0"[..])
    );
    for bad in ["", "x1", "r", "r-1", "r70000", "b1x"] {
        assert_eq!(Perm::parse(bad), None, "{bad}");
    }
    let rig = Rig::new(Box::new(|out, h, _| out.reply(&h, b"n0\0q1\0")));
    assert_eq!(rig.xb.get_perms("n"), Err(Error::BadReply));
}

#[test]
fn long_directories_come_in_parts() {
    let (rig, mini) = mini_rig();
    for i in 0..10 {
        rig.xb.write(&format!("big/child{i}"), b"").unwrap();
    }
    rig.xb.mkdir("big").unwrap();
    let want: Vec<String> = rig.xb.directory("big").unwrap();
    assert_eq!(want.len(), 10);
    mini.borrow_mut().dir_parts = Some(3);
    assert_eq!(rig.xb.directory("big").unwrap(), want);
    // The node changed between parts: start over.
    mini.borrow_mut().regenerate_once = true;
    assert_eq!(rig.xb.directory("big").unwrap(), want);
    let parts = rig
        .received()
        .iter()
        .filter(|(h, _)| h.type_ == XS_DIRECTORY_PART)
        .count();
    // 4 parts; then 2 until the generation changed, and 4 again.
    assert_eq!(parts, 4 + 2 + 4);
    // An empty directory in parts.
    rig.xb.mkdir("empty").unwrap();
    assert_eq!(rig.xb.directory("empty").unwrap(), Vec::<String>::new());
}

#[test]
fn a_directory_part_that_does_not_end_at_a_name_is_a_bad_reply() {
    let rig = Rig::new(Box::new(|out, h, _| match h.type_ {
        XS_DIRECTORY => out.error(&h, "E2BIG"),
        _ => out.reply(&h, b"1\0abc"),
    }));
    assert_eq!(rig.xb.directory("d"), Err(Error::BadReply));
    // A server that never finishes is cut off.
    let rig = Rig::new(Box::new(|out, h, _| match h.type_ {
        XS_DIRECTORY => out.error(&h, "E2BIG"),
        _ => out.reply(&h, &[&b"1\0"[..], &[b'n'; 4000], b"\0"].concat()),
    }));
    assert_eq!(rig.xb.directory("d"), Err(Error::BadReply));
}

#[test]
fn transactions_retry_on_eagain() {
    let (rig, mini) = mini_rig();
    mini.borrow_mut().eagain_commits = 2;
    let mut calls = 0;
    let v = rig
        .xb
        .transaction(|tx| {
            calls += 1;
            tx.write("k", b"v")?;
            Ok(tx.id())
        })
        .unwrap();
    assert_eq!(calls, 3);
    assert_eq!(v, 3);
    assert_eq!(mini.borrow().ends, [(1, true), (2, true), (3, true)]);
    let writes: Vec<u32> = rig
        .received()
        .iter()
        .filter(|(h, _)| h.type_ == XS_WRITE)
        .map(|(h, _)| h.tx_id)
        .collect();
    assert_eq!(writes, [1, 2, 3]);

    // A failure in the body aborts.
    let r: Result<(), Error> = rig.xb.transaction(|_| Err(Error::EACCES));
    assert_eq!(r, Err(Error::EACCES));
    assert_eq!(mini.borrow().ends.last(), Some(&(4, false)));

    // EAGAIN for ever gives up.
    mini.borrow_mut().eagain_commits = u32::MAX;
    assert_eq!(rig.xb.transaction(|_| Ok(())), Err(Error::EAGAIN));
    assert_eq!(
        mini.borrow().ends.len(),
        4 + MAX_TRANSACTION_ATTEMPTS as usize
    );

    // By hand.
    mini.borrow_mut().eagain_commits = 0;
    let tx = rig.xb.transaction_start().unwrap();
    tx.mkdir("m").unwrap();
    rig.xb.transaction_end(tx, false).unwrap();
}

#[test]
fn watches() {
    let (rig, mini) = mini_rig();
    rig.xb.watch("w", "tok").unwrap();
    // xenstored fires a new watch once.
    assert_eq!(
        rig.xb.next_watch_event(Some(Duration::ZERO)),
        Some(("w".into(), "tok".into()))
    );
    rig.xb.write("w/x", b"1").unwrap();
    rig.xb.write("other", b"1").unwrap();
    assert_eq!(
        rig.xb.next_watch_event(Some(Duration::ZERO)),
        Some(("w/x".into(), "tok".into()))
    );
    assert_eq!(rig.xb.next_watch_event(Some(Duration::ZERO)), None);
    rig.xb.write("w/y", b"1").unwrap();
    rig.xb.unwatch("w", "tok").unwrap();
    assert!(mini.borrow().watches.is_empty());
    assert_eq!(
        rig.xb.next_watch_event(Some(Duration::ZERO)),
        None,
        "purged"
    );
    assert_eq!(rig.xb.unwatch("w", "tok"), Err(Error::ENOENT));
    let got = rig.received();
    assert_eq!(got[0].1, b"w\0tok\0");
}

#[test]
fn request_timeout_setting() {
    let rig = Rig::new(echo(Vec::new()));
    assert_eq!(rig.xb.request_timeout(), Some(DEFAULT_REQUEST_TIMEOUT));
    rig.xb.set_request_timeout(None);
    assert_eq!(rig.xb.request_timeout(), None);
    rig.xb.set_request_timeout(Some(Duration::from_millis(5)));
    assert_eq!(rig.xb.request_timeout(), Some(Duration::from_millis(5)));
}

#[test]
fn the_typed_page_is_a_ring_memory_too() {
    let mut p = XenstoreDomainInterface::default();
    p.write_u32(OFF_RSP_PROD, 9);
    p.write_bytes(OFF_RSP + 1020, b"abcd");
    p.write_bytes(OFF_REQ, b"xy");
    p.write_bytes(OFF_RSP + 1022, b"too long"); // out of the array: ignored
    assert_eq!(p.rsp_prod, 9);
    assert_eq!(&p.rsp[1020..], b"abcd");
    assert_eq!(&p.req[..2], b"xy");
    let mut b = [0u8; 4];
    p.read_bytes(OFF_RSP + 1020, &mut b);
    assert_eq!(&b, b"abcd");
    p.read_bytes(PAGE_BYTES, &mut b);
    assert_eq!(b, [0; 4]);
    assert_eq!(p.read_u32(3), 0);
}

// ---- the state machine -------------------------------------------------------------

#[test]
fn states_parse_and_format_as_xenstore_holds_them() {
    for (i, s) in XenbusState::ALL.iter().enumerate() {
        assert_eq!(*s as u32, i as u32);
        assert_eq!(XenbusState::from_u32(i as u32), Some(*s));
        assert_eq!(s.as_wire(), i.to_string());
        assert_eq!(XenbusState::parse(s.as_wire().as_bytes()), Some(*s));
        assert_eq!(XenbusState::try_from(i as u32), Ok(*s));
    }
    assert_eq!(XenbusState::parse(b"4\0"), Some(XenbusState::Connected));
    assert_eq!(XenbusState::parse(b" 6\n"), Some(XenbusState::Closed));
    for bad in [
        &b""[..],
        b"9",
        b"-1",
        b"x",
        b"4x",
        b"0x4",
        b"99999999999999999999",
    ] {
        assert_eq!(XenbusState::parse(bad), None, "{bad:?}");
    }
    assert_eq!(XenbusState::try_from(9), Err(9));
    assert_eq!(XenbusState::InitWait.name(), "InitWait");
    assert_eq!(format!("{}", XenbusState::Connected), "Connected");
    assert!(XenbusState::Closing > XenbusState::Connected);
}

#[test]
fn switch_state_writes_in_a_transaction() {
    let (rig, mini) = mini_rig();
    let node = device_node("vif", "0");
    assert_eq!(node, "device/vif/0");
    assert_eq!(
        switch_state(&rig.xb, &node, XenbusState::Initialising),
        Err(Error::ENOENT),
        "a removed device is left alone"
    );
    rig.xb.write("device/vif/0/state", b"1").unwrap();
    switch_state(&rig.xb, &node, XenbusState::Connected).unwrap();
    assert_eq!(rig.xb.read("device/vif/0/state").unwrap(), b"4");
    let w = rig
        .received()
        .iter()
        .rfind(|(h, _)| h.type_ == XS_WRITE)
        .map(|(h, p)| (h.tx_id, p.clone()))
        .unwrap();
    // Transaction 1 was the attempt on the missing node.
    assert_eq!(w, (2, b"device/vif/0/state\x004".to_vec()));
    let writes = mini.borrow().writes;
    switch_state(&rig.xb, &node, XenbusState::Connected).unwrap();
    assert_eq!(mini.borrow().writes, writes, "same state: no write");
    assert_eq!(read_state(&rig.xb, &node), Ok(XenbusState::Connected));
    assert_eq!(read_state(&rig.xb, "device/none"), Ok(XenbusState::Unknown));
    rig.xb.write("device/vif/0/state", b"junk").unwrap();
    assert_eq!(read_state(&rig.xb, &node), Ok(XenbusState::Unknown));
}

#[test]
fn wait_for_state_follows_the_other_end() {
    let (rig, mini) = mini_rig();
    let be = "/local/domain/0/backend/vif/1/0";
    mini.borrow_mut()
        .nodes
        .insert(format!("{be}/state"), b"2".to_vec());
    // The backend moves to Connected a few idle steps later.
    let m = mini.clone();
    let mut ticks = 0;
    rig.server.borrow_mut().idle = Some(Box::new(move |out| {
        ticks += 1;
        if ticks == 3 {
            let path = format!("{be}/state");
            let mut m = m.borrow_mut();
            m.nodes.insert(path.clone(), b"4".to_vec());
            m.fire(out, &path);
            return true;
        }
        ticks < 3
    }));
    let got = wait_for_state(
        &rig.xb,
        be,
        XenbusState::Connected,
        Some(Duration::from_secs(1)),
    );
    assert_eq!(got, Ok(XenbusState::Connected));
    assert!(mini.borrow().watches.is_empty(), "the watch is removed");
    assert_eq!(rig.xb.with_conn(|c| c.queued_events()), 0);
    // Already there: returns at once.
    let got = wait_for_state_where(&rig.xb, be, |s| s >= XenbusState::Connected, None);
    assert_eq!(got, Ok(XenbusState::Connected));
    // Never there: times out.
    let got = wait_for_state(
        &rig.xb,
        be,
        XenbusState::Closed,
        Some(Duration::from_millis(1)),
    );
    assert_eq!(got, Err(Error::Timeout));
    assert!(mini.borrow().watches.is_empty());
}

#[test]
fn device_nodes_name_their_other_end() {
    let (rig, _) = mini_rig();
    let node = "device/vbd/768";
    rig.xb
        .write(&join(node, "backend"), b"/local/domain/0/backend/vbd/1/768")
        .unwrap();
    rig.xb.write(&join(node, "backend-id"), b"0").unwrap();
    assert_eq!(
        read_backend(&rig.xb, node),
        Ok(OtherEnd {
            path: "/local/domain/0/backend/vbd/1/768".into(),
            domid: 0
        })
    );
    rig.xb.write(&join(node, "backend-id"), b"32752").unwrap();
    assert_eq!(read_backend(&rig.xb, node), Err(Error::Parse));
    assert_eq!(read_frontend(&rig.xb, node), Err(Error::ENOENT));
    rig.xb.write("device/vbd/832/state", b"1").unwrap();
    rig.xb.mkdir("device/vbd").unwrap();
    assert_eq!(list_devices(&rig.xb, "vbd").unwrap(), ["768", "832"]);
    assert_eq!(list_devices(&rig.xb, "vif").unwrap(), Vec::<String>::new());
    assert_eq!(join("a/", "b"), "a/b");
}
