//! xenstored in dom0: the pure server (`dom0_tools::xenstore`) wired to each domain's
//! store page and event channel, plus dom0's own in-process connection (domain 0) for the
//! toolstack and the `xenstore-*` commands.
//!
//! A domain is served once the toolstack introduces it (`XS_INTRODUCE` with the store
//! frame and the guest's store port, as libxl does after building it): its page is mapped
//! in a [`Slot`], dom0 binds its end of the channel, and every event on it (or any
//! [`Xenstored::poll`]) moves whole requests from the ring to the server and replies and
//! watch events back. A guest that breaks its ring is ignored from then on (C's
//! `ignore_connection`); releasing the domain unmaps everything.

use crate::foreign::Slot;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};
use dom0_tools::xenstore::{ConnIo, DomainEvent, Msg, Outcome, Server, XsRing};
use guest_sdk::events;
use xen_abi::xs_wire::*;

/// A store event arrived (any domain's store channel).
pub static STORE_EVENT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

fn on_event(_port: u32) {
    STORE_EVENT.store(true, Ordering::Release);
}

/// A domain's store page, mapped in dom0, shared with the guest: every access is
/// volatile through the raw pointer, never a Rust reference.
struct Page(*mut XenstoreDomainInterface);

impl Page {
    fn field(&self, off: usize) -> *mut u32 {
        // In bounds: `off` is the offset of a u32 field of the 2072-byte interface.
        (self.0 as *mut u8).wrapping_add(off) as *mut u32
    }
    fn get(&self, off: usize) -> u32 {
        // SAFETY: the page stays mapped while `self` lives (its `Conn` owns the slot);
        // the guest writes the indices concurrently, hence a volatile aligned read.
        unsafe { self.field(off).read_volatile() }
    }
    fn set(&self, off: usize, v: u32) {
        // SAFETY: as in `get`; dom0 owns these fields' updates (the server side).
        unsafe { self.field(off).write_volatile(v) }
    }
}

impl XsRing for Page {
    fn req_indices(&self) -> (u32, u32) {
        let cons = self.get(core::mem::offset_of!(XenstoreDomainInterface, req_cons));
        let prod = self.get(core::mem::offset_of!(XenstoreDomainInterface, req_prod));
        // Read the data only after the producer index (C's xen_mb()).
        fence(Ordering::SeqCst);
        (cons, prod)
    }
    fn rsp_indices(&self) -> (u32, u32) {
        let cons = self.get(core::mem::offset_of!(XenstoreDomainInterface, rsp_cons));
        let prod = self.get(core::mem::offset_of!(XenstoreDomainInterface, rsp_prod));
        fence(Ordering::SeqCst);
        (cons, prod)
    }
    fn read_req(&self, pos: usize, buf: &mut [u8]) {
        let base = core::mem::offset_of!(XenstoreDomainInterface, req);
        if pos + buf.len() > XENSTORE_RING_SIZE {
            return;
        }
        for (i, b) in buf.iter_mut().enumerate() {
            let p = (self.0 as *const u8).wrapping_add(base + pos + i);
            // SAFETY: inside the mapped page (`pos + len` checked against the ring).
            *b = unsafe { p.read_volatile() };
        }
    }
    fn write_rsp(&mut self, pos: usize, data: &[u8]) {
        let base = core::mem::offset_of!(XenstoreDomainInterface, rsp);
        if pos + data.len() > XENSTORE_RING_SIZE {
            return;
        }
        for (i, &b) in data.iter().enumerate() {
            let p = (self.0 as *mut u8).wrapping_add(base + pos + i);
            // SAFETY: inside the mapped page (`pos + len` checked against the ring).
            unsafe { p.write_volatile(b) };
        }
    }
    fn set_req_cons(&mut self, cons: u32) {
        fence(Ordering::SeqCst);
        self.set(
            core::mem::offset_of!(XenstoreDomainInterface, req_cons),
            cons,
        );
    }
    fn set_rsp_prod(&mut self, prod: u32) {
        fence(Ordering::SeqCst);
        self.set(
            core::mem::offset_of!(XenstoreDomainInterface, rsp_prod),
            prod,
        );
    }
    fn set_error(&mut self, error: u32) {
        self.set(core::mem::offset_of!(XenstoreDomainInterface, error), error);
    }
}

/// One introduced domU.
struct Conn {
    _slot: Slot,
    page: Page,
    /// dom0's end of the store channel.
    port: u32,
    io: ConnIo,
    broken: bool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = events::close(self.port);
    }
}

/// The daemon.
pub struct Xenstored {
    server: Server,
    conns: BTreeMap<u32, Conn>,
    next_req: u32,
    /// Watch events for dom0's own connection: (path, token).
    pub dom0_events: Vec<(String, String)>,
}

/// A failed request: Xen's error name (`ENOENT`, `EACCES`...).
pub type XsError = String;

impl Xenstored {
    pub fn new() -> Xenstored {
        Xenstored {
            server: Server::default(),
            conns: BTreeMap::new(),
            next_req: 1,
            dom0_events: Vec::new(),
        }
    }

    /// A request from dom0's own connection, answered at once: the reply payload or the
    /// error name.
    pub fn request(&mut self, type_: u32, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        let req_id = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        let hdr = XsdSockmsg {
            type_,
            req_id,
            tx_id,
            len: payload.len() as u32,
        };
        let outcome = self.server.handle(0, hdr, payload);
        let mut reply = None;
        self.dispatch(outcome, |m| {
            if m.hdr.req_id == req_id && m.hdr.type_ != XS_WATCH_EVENT && reply.is_none() {
                reply = Some(m.clone());
                true
            } else {
                false
            }
        });
        match reply {
            Some(m) if m.hdr.type_ == XS_ERROR => Err(String::from_utf8_lossy(
                m.payload.strip_suffix(b"\0").unwrap_or(&m.payload),
            )
            .into_owned()),
            Some(m) => Ok(m.payload),
            None => Err("EIO".into()),
        }
    }

    /// `XS_READ` from dom0.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        self.request(XS_READ, 0, &nul(path))
    }

    /// `XS_WRITE` from dom0.
    /// The value at `path` as a (lossily decoded) string, `None` if absent.
    pub fn read_string(&mut self, path: &str) -> Option<String> {
        self.read(path)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The value at `path` as a number, `None` if absent or not one.
    pub fn read_u32(&mut self, path: &str) -> Option<u32> {
        self.read_string(path)?.trim().parse().ok()
    }

    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        let mut p = nul(path);
        p.extend_from_slice(value);
        self.request(XS_WRITE, 0, &p).map(|_| ())
    }

    /// `XS_MKDIR` from dom0.
    pub fn mkdir(&mut self, path: &str) -> Result<(), XsError> {
        self.request(XS_MKDIR, 0, &nul(path)).map(|_| ())
    }

    /// `XS_RM` from dom0.
    pub fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.request(XS_RM, 0, &nul(path)).map(|_| ())
    }

    /// `XS_DIRECTORY` from dom0: the children's names.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let r = self.request(XS_DIRECTORY, 0, &nul(path))?;
        Ok(split(&r))
    }

    /// `XS_GET_PERMS` from dom0, as the textual entries (`n0`, `r1`...).
    pub fn get_perms(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let r = self.request(XS_GET_PERMS, 0, &nul(path))?;
        Ok(split(&r))
    }

    /// `XS_SET_PERMS` from dom0 (`entries` like `["n0", "r3"]`).
    pub fn set_perms(&mut self, path: &str, entries: &[&str]) -> Result<(), XsError> {
        let mut p = nul(path);
        for e in entries {
            p.extend_from_slice(e.as_bytes());
            p.push(0);
        }
        self.request(XS_SET_PERMS, 0, &p).map(|_| ())
    }

    /// Route an outcome: messages for dom0 go to `mine` (which says whether it took
    /// them; watch events it leaves are queued in `dom0_events`), others to their
    /// domain's ring; connection changes are applied.
    fn dispatch(&mut self, outcome: Outcome, mut mine: impl FnMut(&Msg) -> bool) {
        for m in outcome.msgs.iter() {
            if m.to == 0 {
                if !mine(m) && m.hdr.type_ == XS_WATCH_EVENT {
                    let parts = split(&m.payload);
                    if let [path, token, ..] = parts.as_slice() {
                        self.dom0_events.push((path.clone(), token.clone()));
                    }
                }
            } else if let Some(c) = self.conns.get_mut(&m.to) {
                c.io.push(m);
            }
        }
        match outcome.domain {
            Some(DomainEvent::Introduced {
                domid, mfn, port, ..
            }) => self.connect(domid, mfn, port),
            Some(DomainEvent::Released { domid }) => {
                self.conns.remove(&domid);
            }
            None => {}
        }
        self.flush();
    }

    fn connect(&mut self, domid: u32, mfn: u64, remote_port: u32) {
        self.conns.remove(&domid);
        let Ok(dom) = u16::try_from(domid) else {
            return;
        };
        let mut slot = match Slot::new() {
            Ok(s) => s,
            Err(e) => return log(domid, "no slot", e),
        };
        let va = match slot.map(dom, mfn) {
            Ok(va) => va,
            Err(e) => return log(domid, "cannot map the store page", e),
        };
        let port = match events::bind_interdomain(dom, remote_port) {
            Ok(p) => p,
            Err(e) => return log(domid, "cannot bind the store channel", e),
        };
        let _ = events::set_handler(port, on_event);
        let _ = events::unmask(port);
        let page = Page(va as *mut XenstoreDomainInterface);
        // A fresh connection: nothing in flight either way (C's introduce).
        for off in [
            core::mem::offset_of!(XenstoreDomainInterface, req_cons),
            core::mem::offset_of!(XenstoreDomainInterface, req_prod),
            core::mem::offset_of!(XenstoreDomainInterface, rsp_cons),
            core::mem::offset_of!(XenstoreDomainInterface, rsp_prod),
            core::mem::offset_of!(XenstoreDomainInterface, error),
        ] {
            page.set(off, 0);
        }
        self.conns.insert(
            domid,
            Conn {
                _slot: slot,
                page,
                port,
                io: ConnIo::new(),
                broken: false,
            },
        );
    }

    /// Serve every domain: read whole requests, handle them, write what fits.
    pub fn poll(&mut self) {
        let ids: Vec<u32> = self.conns.keys().copied().collect();
        for id in ids {
            let before = self.conns.get(&id).map(|c| c.page.req_indices().0);
            // Bounded per pass so one guest cannot starve the others or the shell.
            for _ in 0..64 {
                let Some(c) = self.conns.get_mut(&id) else {
                    break;
                };
                if c.broken {
                    break;
                }
                match c.io.read_message(&mut c.page) {
                    Ok(Some((hdr, payload))) => {
                        let outcome = self.server.handle(id, hdr, &payload);
                        self.dispatch(outcome, |_| false);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        c.broken = true;
                        self.server.ignore_connection(id);
                        break;
                    }
                }
            }
            // Requests consumed: the guest may be waiting for room in its ring.
            if let Some(c) = self.conns.get(&id) {
                if Some(c.page.req_indices().0) != before {
                    let _ = events::send(c.port);
                }
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        for (id, c) in self.conns.iter_mut() {
            if c.broken {
                continue;
            }
            match c.io.write_pending(&mut c.page) {
                Ok(0) => {}
                Ok(_) => {
                    let _ = events::send(c.port);
                }
                Err(_) => {
                    c.broken = true;
                    self.server.ignore_connection(*id);
                }
            }
        }
    }

    /// `XS_INTRODUCE domid mfn port` from dom0 (what libxl does once a domain is built).
    pub fn introduce(&mut self, domid: u32, mfn: u64, port: u32) -> Result<(), XsError> {
        let p = alloc::format!("{domid}\0{mfn}\0{port}\0");
        self.request(XS_INTRODUCE, 0, p.as_bytes()).map(|_| ())
    }

    /// `XS_RELEASE domid` from dom0 (the domain is gone).
    pub fn release(&mut self, domid: u32) -> Result<(), XsError> {
        let r = self.request(XS_RELEASE, 0, alloc::format!("{domid}\0").as_bytes());
        self.conns.remove(&domid);
        r.map(|_| ())
    }

    /// The domain shut down: `@releaseDomain` watchers hear of it (C's `check_domains`).
    pub fn domain_shutdown(&mut self, domid: u32) {
        let msgs = self.server.domain_shutdown(domid);
        self.dispatch(Outcome { msgs, domain: None }, |_| false);
    }

    /// Whether `domid` has a store connection.
    pub fn is_introduced(&self, domid: u32) -> bool {
        self.server.is_introduced(domid)
    }
}

impl dom0_tools::fmt::StoreView for Xenstored {
    fn directory(&mut self, path: &str) -> Result<Vec<String>, String> {
        Xenstored::directory(self, path)
    }
    fn read(&mut self, path: &str) -> Result<Vec<u8>, String> {
        Xenstored::read(self, path)
    }
    fn perms(&mut self, path: &str) -> Result<Vec<String>, String> {
        self.get_perms(path)
    }
}

fn log(domid: u32, what: &str, e: guest_sdk::Errno) {
    guest_sdk::println!("xenstored: domain {domid}: {what}: {e:?}");
}

/// `s` NUL-terminated.
fn nul(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

/// NUL-separated strings.
fn split(b: &[u8]) -> Vec<String> {
    b.split(|&c| c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}
