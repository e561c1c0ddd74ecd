//! End to end on the host: the SDK's XenBus client (a domU, domain 1) against dom0's
//! xenstored core, through one shared `xenstore_domain_interface` page in memory.
//!
//! The client writes requests into the page; the "dom0 side" cuts them out with
//! [`ConnIo::read_message`], runs them through [`Server::handle`] and writes the replies
//! and watch events back with [`ConnIo::write_pending`], as dom0's event loop does. Time
//! passes only on the dom0 side: each wait of the client runs one round of it, and a round
//! with nothing to do may run the next step of a script of dom0 requests (the toolstack
//! or a backend acting meanwhile); with nothing left, the client's deadline has passed.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use dom0_tools::xenstore::{ConnIo, Msg, Quota, Server};
use guest_sdk::xenbus::state::{
    device_node, read_backend, read_frontend, read_state, switch_state, wait_for_state,
    wait_for_state_where,
};
use guest_sdk::xenbus::{
    Access, Client, Deadline, Error, Nodes, Perm, RingMemory, Waiter, XenStore, XenbusState,
};
use xen_abi::xs_wire::*;

const DOMU: u32 = 1;
const FRONT: &str = "/local/domain/1/device/vif/0";
const BACK: &str = "/local/domain/0/backend/vif/1/0";

type Page = Rc<RefCell<Box<XenstoreDomainInterface>>>;

/// The guest's view of the shared page.
struct GuestPage(Page);

impl RingMemory for GuestPage {
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

/// dom0: xenstored and the domU's connection.
struct Dom0 {
    server: Server,
    io: ConnIo,
    page: Page,
    /// Requests dom0 makes when the domU's ring is idle, one per round.
    script: VecDeque<(u32, Vec<u8>)>,
    /// Watch events for dom0's own connection.
    dom0_events: Vec<Msg>,
    next_req: u32,
    /// Types of the domU's requests, in order.
    seen: Vec<u32>,
}

impl Dom0 {
    fn route(&mut self, msgs: Vec<Msg>) {
        for m in msgs {
            match m.to {
                DOMU => self.io.push(&m),
                _ => self.dom0_events.push(m),
            }
        }
    }

    /// A dom0 request; its reply payload, or the error name.
    fn request(&mut self, type_: u32, payload: &[u8]) -> Result<Vec<u8>, String> {
        self.next_req += 1;
        let hdr = XsdSockmsg {
            type_,
            req_id: self.next_req,
            tx_id: 0,
            len: payload.len() as u32,
        };
        let out = self.server.handle(0, hdr, payload);
        let reply = out
            .msgs
            .iter()
            .find(|m| m.to == 0 && m.hdr.req_id == self.next_req && m.hdr.type_ != XS_WATCH_EVENT)
            .cloned()
            .expect("a reply");
        self.route(out.msgs);
        match reply.hdr.type_ {
            XS_ERROR => Err(String::from_utf8_lossy(&reply.payload).into_owned()),
            _ => Ok(reply.payload),
        }
    }

    fn write(&mut self, path: &str, value: &str) {
        let p = [path.as_bytes(), b"\0", value.as_bytes()].concat();
        self.request(XS_WRITE, &p).expect("dom0 write");
    }

    fn read(&mut self, path: &str) -> Result<Vec<u8>, String> {
        self.request(XS_READ, &cstr(path))
    }

    fn set_perms(&mut self, path: &str, perms: &[&str]) {
        let mut p = cstr(path);
        for x in perms {
            p.extend(cstr(x));
        }
        self.request(XS_SET_PERMS, &p).expect("dom0 set_perms");
    }

    /// One round of dom0's event loop for the domU's ring.
    fn step(&mut self) -> bool {
        let cons_before = self.page.borrow().req_cons;
        let mut progress = false;
        loop {
            let got = self.io.read_message(&mut **self.page.borrow_mut());
            match got {
                Ok(Some((hdr, payload))) => {
                    self.seen.push(hdr.type_);
                    let out = self.server.handle(DOMU, hdr, &payload);
                    self.route(out.msgs);
                    progress = true;
                }
                Ok(None) => break,
                Err(e) => panic!("the SDK client broke the ring: {e:?}"),
            }
        }
        // Taking part of a message off the ring is progress too (it made room).
        progress |= self.page.borrow().req_cons != cons_before;
        if !progress && !self.io.has_output() {
            if let Some((type_, payload)) = self.script.pop_front() {
                self.request(type_, &payload)
                    .expect("scripted dom0 request");
                progress = true;
            }
        }
        let wrote = self
            .io
            .write_pending(&mut **self.page.borrow_mut())
            .expect("the SDK client keeps the ring sane");
        progress || wrote > 0
    }
}

/// Waits by running dom0; "the deadline passes" when dom0 has nothing left to do.
struct Dom0Waiter {
    dom0: Rc<RefCell<Dom0>>,
    notifies: Cell<u64>,
}

impl Waiter for Dom0Waiter {
    fn notify(&self) {
        self.notifies.set(self.notifies.get() + 1);
    }
    fn deadline(&self, timeout: Option<Duration>) -> Deadline {
        timeout.map_or(Deadline::NEVER, |_| Deadline(1))
    }
    fn wait(&self, _deadline: Deadline) -> bool {
        self.dom0.borrow_mut().step()
    }
    fn expired(&self, _deadline: Deadline) -> bool {
        false
    }
}

fn cstr(s: &str) -> Vec<u8> {
    [s.as_bytes(), b"\0"].concat()
}

type Guest = Client<GuestPage, Dom0Waiter>;

/// xenstored with domain 1 introduced, its home and a vif made as `xl` makes them.
fn setup() -> (Guest, Rc<RefCell<Dom0>>) {
    let page: Page = Rc::new(RefCell::new(Box::default()));
    let dom0 = Rc::new(RefCell::new(Dom0 {
        server: Server::new(Quota::default()),
        io: ConnIo::new(),
        page: page.clone(),
        script: VecDeque::new(),
        dom0_events: Vec::new(),
        next_req: 0,
        seen: Vec::new(),
    }));
    {
        let mut d = dom0.borrow_mut();
        d.request(XS_INTRODUCE, b"1\x004242\x003\x00")
            .expect("dom0 setup");
        d.request(XS_MKDIR, &cstr("/local/domain/1"))
            .expect("dom0 setup");
        d.set_perms("/local/domain/1", &["n1"]);
        d.write("/local/domain/1/name", "guest");
        // The frontend's node, owned by the domU, readable by the backend's domain; the
        // backend's node, owned by dom0, readable by the domU. As xl: the permissions
        // first, so the keys written below inherit them.
        d.request(XS_MKDIR, &cstr(FRONT)).expect("dom0 setup");
        d.set_perms(FRONT, &["n1", "r0"]);
        d.request(XS_MKDIR, &cstr(BACK)).expect("dom0 setup");
        d.set_perms(BACK, &["n0", "r1"]);
        for (k, v) in [
            ("backend", BACK),
            ("backend-id", "0"),
            ("state", "1"),
            ("handle", "0"),
        ] {
            d.write(&format!("{FRONT}/{k}"), v);
        }
        for (k, v) in [("frontend", FRONT), ("frontend-id", "1"), ("state", "1")] {
            d.write(&format!("{BACK}/{k}"), v);
        }
    }
    let waiter = Dom0Waiter {
        dom0: dom0.clone(),
        notifies: Cell::new(0),
    };
    (Client::new(GuestPage(page), waiter), dom0)
}

#[test]
fn node_operations_against_xenstored() {
    let (xb, dom0) = setup();
    assert_eq!(xb.get_domain_path(1).unwrap(), "/local/domain/1");
    assert_eq!(xb.read_string("name").unwrap(), "guest");
    assert_eq!(xb.read_string("/local/domain/1/name").unwrap(), "guest");
    assert_eq!(xb.read("data/x"), Err(Error::ENOENT));
    xb.write("data/x", b"hello").unwrap();
    xb.write("data/y", b"").unwrap();
    xb.mkdir("data/z").unwrap();
    assert_eq!(xb.directory("data").unwrap(), ["x", "y", "z"]);
    assert_eq!(
        dom0.borrow_mut().read("/local/domain/1/data/x").unwrap(),
        b"hello"
    );
    assert!(xb.exists("data/z").unwrap());
    xb.rm("data/z").unwrap();
    assert!(!xb.exists("data/z").unwrap());
    assert_eq!(xb.directory("data").unwrap(), ["x", "y"]);
    xb.write("data/n", b" 17").unwrap();
    assert_eq!(xb.read_u64("data/n"), Ok(17));
    assert_eq!(xb.read_feature("data/nothing"), Ok(0));
    // Other domains' nodes are out of reach.
    assert_eq!(xb.read("/local/domain/0/secret"), Err(Error::EACCES));
    assert_eq!(xb.write("/local/domain/2/x", b"1"), Err(Error::EACCES));
    assert_eq!(xb.mkdir("/tool"), Err(Error::EACCES));
    assert_eq!(xb.read("bad//path"), Err(Error::EINVAL));
    // Permissions.
    let own = Perm {
        domid: 1,
        access: Access::None,
    };
    assert_eq!(xb.get_perms("data/x").unwrap(), [own]);
    let shared = [
        own,
        Perm {
            domid: 0,
            access: Access::Read,
        },
    ];
    xb.set_perms("data/x", &shared).unwrap();
    assert_eq!(xb.get_perms("data/x").unwrap(), shared);
    // Only dom0 gives a node away.
    let give = [Perm {
        domid: 2,
        access: Access::None,
    }];
    assert_eq!(xb.set_perms("data/x", &give), Err(Error::EPERM));
    assert!(xb.waiter().notifies.get() > 0);
}

#[test]
fn big_values_and_listings_in_parts() {
    let (xb, dom0) = setup();
    let value: Vec<u8> = (0..1500).map(|i| b'a' + (i % 26) as u8).collect();
    xb.write("blob", &value).unwrap();
    assert_eq!(xb.read("blob").unwrap(), value);
    // A directory too long for one reply (made by dom0, beyond a domU's quotas).
    let names: Vec<String> = (0..400).map(|i| format!("child-number-{i:04}")).collect();
    {
        let mut d = dom0.borrow_mut();
        for n in &names {
            d.write(&format!("/local/domain/1/big/{n}"), "");
        }
    }
    let listed = xb.directory("big").unwrap();
    assert_eq!(listed, names);
    let parts = dom0
        .borrow()
        .seen
        .iter()
        .filter(|&&t| t == XS_DIRECTORY_PART)
        .count();
    assert!(parts >= 2, "fetched in {parts} parts after E2BIG");
    // Values up to the payload limit come back whole across the 1 KiB ring.
    let long: String = "v".repeat(3000);
    dom0.borrow_mut().write("/local/domain/1/long", &long);
    assert_eq!(xb.read_string("long").unwrap(), long);
}

#[test]
fn transactions_commit_conflict_and_retry() {
    let (xb, dom0) = setup();
    xb.write("counter", b"1").unwrap();
    let tx = xb.transaction_start().unwrap();
    assert_eq!(tx.read("counter").unwrap(), b"1");
    tx.write("counter", b"2").unwrap();
    assert_eq!(xb.read("counter").unwrap(), b"1", "invisible before commit");
    xb.transaction_end(tx, true).unwrap();
    assert_eq!(xb.read("counter").unwrap(), b"2");

    // dom0 changes the node under an open transaction: the commit fails with EAGAIN.
    let tx = xb.transaction_start().unwrap();
    tx.read("counter").unwrap();
    tx.write("counter", b"3").unwrap();
    dom0.borrow_mut().write("/local/domain/1/counter", "10");
    assert_eq!(xb.transaction_end(tx, true), Err(Error::EAGAIN));
    assert_eq!(xb.read("counter").unwrap(), b"10");

    // The helper starts over: an increment that lost a race the first time.
    let mut attempts = 0;
    let v = xb
        .transaction(|tx| {
            attempts += 1;
            let n = tx.read_u64("counter")?;
            if attempts == 1 {
                dom0.borrow_mut().write("/local/domain/1/counter", "20");
            }
            tx.write("counter", (n + 1).to_string().as_bytes())?;
            Ok(n + 1)
        })
        .unwrap();
    assert_eq!((attempts, v), (2, 21));
    assert_eq!(xb.read("counter").unwrap(), b"21");

    // An error inside aborts: nothing is written.
    let r: Result<(), Error> = xb.transaction(|tx| {
        tx.write("counter", b"99")?;
        tx.read("missing").map(drop)
    });
    assert_eq!(r, Err(Error::ENOENT));
    assert_eq!(xb.read("counter").unwrap(), b"21");
    assert_eq!(dom0.borrow().server.transaction_count(DOMU), 0);
}

#[test]
fn watches_report_changes() {
    let (xb, dom0) = setup();
    let none = Some(Duration::ZERO);
    xb.watch("data", "t1").unwrap();
    xb.watch("/local/domain/1/name", "t2").unwrap();
    // Each new watch fires once; relative watches report relative paths.
    assert_eq!(
        xb.next_watch_event(none),
        Some(("data".into(), "t1".into()))
    );
    assert_eq!(
        xb.next_watch_event(none),
        Some(("/local/domain/1/name".into(), "t2".into()))
    );
    assert_eq!(xb.next_watch_event(none), None);
    // A change by dom0, delivered while the guest waits.
    dom0.borrow_mut()
        .script
        .push_back((XS_WRITE, b"/local/domain/1/data/k\0v".to_vec()));
    assert_eq!(
        xb.next_watch_event(Some(Duration::from_secs(1))),
        Some(("data/k".into(), "t1".into()))
    );
    // Events that arrive while a request waits for its reply are kept.
    xb.write("data/j", b"1").unwrap();
    xb.write("name", b"renamed").unwrap();
    assert_eq!(
        xb.next_watch_event(none),
        Some(("data/j".into(), "t1".into()))
    );
    assert_eq!(
        xb.next_watch_event(none),
        Some(("/local/domain/1/name".into(), "t2".into()))
    );
    xb.unwatch("data", "t1").unwrap();
    xb.write("data/i", b"1").unwrap();
    assert_eq!(xb.next_watch_event(none), None);
    assert_eq!(xb.unwatch("data", "t1"), Err(Error::ENOENT));
    assert_eq!(dom0.borrow().server.watch_count(DOMU), 1);
    assert_eq!(xb.watch("/local/domain/1/name", "t2"), Err(Error::EEXIST));
}

#[test]
fn a_frontend_meets_its_backend() {
    let (xb, dom0) = setup();
    let node = device_node("vif", "0");
    let be = read_backend(&xb, &node).unwrap();
    assert_eq!((be.path.as_str(), be.domid), (BACK, 0));
    assert_eq!(read_frontend(&xb, &be.path).unwrap().path, FRONT);
    assert_eq!(read_state(&xb, &be.path), Ok(XenbusState::Initialising));

    // The backend publishes its features and goes to InitWait while we wait.
    {
        let mut d = dom0.borrow_mut();
        d.script
            .push_back((XS_WRITE, format!("{BACK}/feature-sg\x001").into_bytes()));
        d.script
            .push_back((XS_WRITE, format!("{BACK}/state\x002").into_bytes()));
    }
    let wait = Some(Duration::from_secs(5));
    assert_eq!(
        wait_for_state(&xb, &be.path, XenbusState::InitWait, wait),
        Ok(XenbusState::InitWait)
    );
    assert_eq!(xb.read_feature(&format!("{}/feature-sg", be.path)), Ok(1));
    assert_eq!(
        xb.read_feature(&format!("{}/feature-gso-tcpv4", be.path)),
        Ok(0)
    );

    // Our rings, in one transaction, then Initialised.
    xb.transaction(|tx| {
        tx.write(&format!("{node}/tx-ring-ref"), b"8")?;
        tx.write(&format!("{node}/rx-ring-ref"), b"9")?;
        tx.write(&format!("{node}/event-channel"), b"5")
    })
    .unwrap();
    switch_state(&xb, &node, XenbusState::Initialised).unwrap();
    assert_eq!(
        dom0.borrow_mut().read(&format!("{FRONT}/state")).unwrap(),
        b"3"
    );
    assert_eq!(
        dom0.borrow_mut()
            .read(&format!("{FRONT}/tx-ring-ref"))
            .unwrap(),
        b"8"
    );

    // The backend connects.
    dom0.borrow_mut()
        .script
        .push_back((XS_WRITE, format!("{BACK}/state\x004").into_bytes()));
    assert_eq!(
        wait_for_state_where(&xb, &be.path, |s| s >= XenbusState::Connected, wait),
        Ok(XenbusState::Connected)
    );
    switch_state(&xb, &node, XenbusState::Connected).unwrap();
    assert_eq!(read_state(&xb, &node), Ok(XenbusState::Connected));

    // Nothing more happens: a wait for Closed times out, and leaves no watch behind.
    assert_eq!(
        wait_for_state(
            &xb,
            &be.path,
            XenbusState::Closed,
            Some(Duration::from_millis(10))
        ),
        Err(Error::Timeout)
    );
    assert_eq!(dom0.borrow().server.watch_count(DOMU), 0);

    // The toolstack removed the device: switching state no longer recreates it.
    dom0.borrow_mut().request(XS_RM, &cstr(FRONT)).unwrap();
    assert_eq!(
        switch_state(&xb, &node, XenbusState::Closing),
        Err(Error::ENOENT)
    );
    assert_eq!(dom0.borrow_mut().read(FRONT), Err("ENOENT\0".to_string()));
}

#[test]
fn transaction_quota_errors_come_back_by_name() {
    let (xb, _dom0) = setup();
    let open: Vec<_> = (0..Quota::default().transactions)
        .map(|_| xb.transaction_start().unwrap())
        .collect();
    assert_eq!(xb.transaction_start().map(|t| t.id()), Err(Error::ENOSPC));
    for tx in open {
        xb.transaction_end(tx, false).unwrap();
    }
    assert!(xb.transaction_start().is_ok());
}
