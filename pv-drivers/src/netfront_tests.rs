//! netfront against the backend core of dom0's netback, over a fake store, grant table
//! and clock: the XenBus handshake, frames both ways (one page and scatter-gather),
//! a full tx ring, a hostile backend, and teardown.

use super::*;
use crate::netif::{
    Backend, BackendConfig, GrantError, Grants, NetRxBackRing, NetTxBackRing, RxError, TxEvent,
};
use crate::ring::HeapPage;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use xen_abi::io::netif::{NetifRxResponse, NetifTxResponse, NETRXF_EXTRA_INFO};
use xen_abi::io::ring::SRING_REQ_PROD;

const FE: &str = "device/vif/0";
const BE: &str = "/local/domain/0/backend/vif/1/0";
const ME: DomId = 1;
const MAC: [u8; 6] = [0x00, 0x16, 0x3e, 0x12, 0x34, 0x56];

#[derive(Debug, Clone)]
struct TPage(Rc<HeapPage>);

impl SharedPage for TPage {
    fn size(&self) -> usize {
        self.0.size()
    }
    fn read_u32(&self, off: usize) -> u32 {
        self.0.read_u32(off)
    }
    fn write_u32(&self, off: usize, val: u32) {
        self.0.write_u32(off, val)
    }
    fn read_bytes(&self, off: usize, out: &mut [u8]) {
        self.0.read_bytes(off, out)
    }
    fn write_bytes(&self, off: usize, data: &[u8]) {
        self.0.write_bytes(off, data)
    }
    fn fence(&self) {
        self.0.fence()
    }
}

struct Entry {
    page: Rc<HeapPage>,
    domid: DomId,
    readonly: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hostile {
    None,
    /// Answer a tx id that was never used.
    TxUnknownId,
    /// Answer an rx request twice.
    RxDuplicate,
    /// Set `NETRXF_extra_info` on an rx response.
    RxExtra,
    /// Publish more tx responses than requests.
    TxOverflow,
}

struct World {
    store: BTreeMap<String, String>,
    grants: BTreeMap<GrantRef, Entry>,
    next_gref: GrantRef,
    ports: Vec<u32>,
    next_port: u32,
    notified: usize,
    backend: Backend,
    tx: Option<NetTxBackRing<TPage>>,
    rx: Option<NetRxBackRing<TPage>>,
    /// Frames the guest sent.
    sent: Vec<Vec<u8>>,
    /// Frames for the guest, delivered when buffers are posted.
    to_guest: VecDeque<Vec<u8>>,
    clock: u64,
    stall: bool,
    hold_grants: bool,
    /// Don't service the tx ring (it fills up).
    deaf: bool,
    hostile: Hostile,
    /// Remove the frontend's directory as soon as the backend closes (toolstack).
    reap_on_close: bool,
}

impl World {
    fn state(&self, node: &str) -> u32 {
        self.store
            .get(&format!("{node}/state"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(STATE_UNKNOWN)
    }

    fn set_state(&mut self, node: &str, s: u32) {
        self.store.insert(format!("{node}/state"), s.to_string());
    }

    fn ring_page(&self, key: &str) -> TPage {
        let gref: GrantRef = self.store[&format!("{FE}/{key}")].parse().unwrap();
        let e = &self.grants[&gref];
        assert!(
            e.domid == 0 && !e.readonly,
            "ring granted read-write to dom0"
        );
        TPage(e.page.clone())
    }

    /// What netback does, one look at a time.
    fn step(&mut self) {
        let (fs, bs) = (self.state(FE), self.state(BE));
        match (bs, fs) {
            (STATE_INIT_WAIT, STATE_INITIALISED) if !self.stall => {
                let fi =
                    FrontendInfo::from_xenstore(|k| self.store.get(&format!("{FE}/{k}")).cloned())
                        .unwrap();
                assert!(fi.request_rx_copy && fi.feature_rx_notify);
                assert!(fi.feature_no_csum_offload);
                let crate::netif::EventChannels::Single(port) = fi.event_channels else {
                    panic!("split channels");
                };
                assert!(self.ports.contains(&port));
                self.tx = Some(NetTxBackRing::attach(self.ring_page("tx-ring-ref"), 0).unwrap());
                self.rx = Some(NetRxBackRing::attach(self.ring_page("rx-ring-ref"), 0).unwrap());
                self.set_state(BE, STATE_CONNECTED);
            }
            (b, STATE_CLOSING | STATE_CLOSED) if b != STATE_CLOSED => {
                self.tx = None;
                self.rx = None;
                self.set_state(BE, STATE_CLOSED);
                if self.reap_on_close {
                    self.store.retain(|k, _| !k.starts_with(FE));
                }
            }
            _ => {}
        }
        let mut grants = GrantView(&self.grants);
        if let Some(mut ring) = self.tx.take() {
            if !self.deaf {
                let sent = &mut self.sent;
                let _ = self
                    .backend
                    .service_tx(&mut ring, &mut grants, 1 << 20, |e| {
                        if let TxEvent::Packet(p) = e {
                            sent.push(p.data);
                        }
                    });
            }
            match self.hostile {
                Hostile::TxUnknownId => {
                    ring.page().write_u32(SRING_REQ_PROD, ring.req_cons() + 1);
                    let _ = ring.poll_requests();
                    let _ = ring.take_request();
                    let _ = ring.put_response(&NetifTxResponse { id: 999, status: 0 });
                    ring.push_responses();
                }
                Hostile::TxOverflow => {
                    let p = ring.page();
                    let cur = p.read_u32(xen_abi::io::ring::SRING_RSP_PROD);
                    p.write_u32(xen_abi::io::ring::SRING_RSP_PROD, cur + 5);
                }
                _ => {}
            }
            self.tx = Some(ring);
        }
        if let Some(mut ring) = self.rx.take() {
            while let Some(pkt) = self.to_guest.front() {
                match self.backend.deliver_rx(&mut ring, &mut grants, pkt, 0) {
                    Ok(_) => {
                        self.to_guest.pop_front();
                    }
                    Err(RxError::NoBuffers { .. }) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            if matches!(self.hostile, Hostile::RxDuplicate | Hostile::RxExtra)
                && ring.poll_requests().unwrap_or(0) > 0
            {
                if let Some(req) = ring.take_request() {
                    let flags = if self.hostile == Hostile::RxExtra {
                        NETRXF_EXTRA_INFO
                    } else {
                        0
                    };
                    let r = NetifRxResponse {
                        id: req.id,
                        offset: 0,
                        flags,
                        status: 20,
                    };
                    let _ = ring.put_response(&r);
                    if self.hostile == Hostile::RxDuplicate {
                        let _ = ring.take_request();
                        let _ = ring.put_response(&r);
                    }
                    ring.push_responses();
                }
            }
            self.rx = Some(ring);
        }
    }
}

struct GrantView<'a>(&'a BTreeMap<GrantRef, Entry>);

impl Grants for GrantView<'_> {
    fn copy_from(
        &mut self,
        domid: DomId,
        gref: GrantRef,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), GrantError> {
        let e = self.0.get(&gref).ok_or(GrantError(-4))?;
        assert_eq!(domid, ME);
        assert_eq!(e.domid, 0, "granted to the backend");
        e.page.read_bytes(offset, buf);
        Ok(())
    }
    fn copy_to(
        &mut self,
        domid: DomId,
        gref: GrantRef,
        offset: usize,
        data: &[u8],
    ) -> Result<(), GrantError> {
        let e = self.0.get(&gref).ok_or(GrantError(-4))?;
        assert_eq!(domid, ME);
        if e.readonly {
            return Err(GrantError(-8));
        }
        e.page.write_bytes(offset, data);
        Ok(())
    }
}

#[derive(Clone)]
struct Fake(Rc<RefCell<World>>);

impl FrontendEnv for Fake {
    type Page = TPage;

    fn xs_read(&self, path: &str) -> Result<Option<String>, EnvError> {
        Ok(self.0.borrow().store.get(path).cloned())
    }
    fn xs_write_all(&self, nodes: &[(String, String)]) -> Result<(), EnvError> {
        let mut w = self.0.borrow_mut();
        for (k, v) in nodes {
            // The device's directory is not ours to create again.
            if w.reap_on_close
                && k.starts_with(FE)
                && !w.store.contains_key(&format!("{FE}/backend"))
            {
                return Err(EnvError::Failed(2));
            }
            w.store.insert(k.clone(), v.clone());
        }
        Ok(())
    }
    fn wait_state(
        &self,
        otherend: &str,
        done: &dyn Fn(u32) -> bool,
        timeout_ns: u64,
    ) -> Result<u32, EnvError> {
        let mut w = self.0.borrow_mut();
        let deadline = w.clock + timeout_ns;
        loop {
            w.step();
            let s = w.state(otherend);
            if done(s) {
                return Ok(s);
            }
            w.clock += 1_000_000_000;
            if w.clock > deadline {
                return Err(EnvError::Timeout);
            }
        }
    }
    fn alloc_page(&self) -> Result<TPage, EnvError> {
        Ok(TPage(Rc::new(HeapPage::page())))
    }
    fn grant(&self, page: &TPage, domid: DomId, readonly: bool) -> Result<GrantRef, EnvError> {
        let mut w = self.0.borrow_mut();
        w.next_gref += 1;
        let r = w.next_gref + 7;
        w.grants.insert(
            r,
            Entry {
                page: page.0.clone(),
                domid,
                readonly,
            },
        );
        Ok(r)
    }
    fn end_grant(&self, gref: GrantRef) -> bool {
        let mut w = self.0.borrow_mut();
        if w.hold_grants {
            return false;
        }
        w.grants.remove(&gref).is_some()
    }
    fn alloc_evtchn(&self, remote: DomId) -> Result<u32, EnvError> {
        assert_eq!(remote, 0);
        let mut w = self.0.borrow_mut();
        w.next_port += 1;
        let p = w.next_port + 10;
        w.ports.push(p);
        Ok(p)
    }
    fn notify(&self, port: u32) {
        let mut w = self.0.borrow_mut();
        assert!(w.ports.contains(&port));
        w.notified += 1;
        w.step();
    }
    fn wait_event(&self, _port: u32, deadline_ns: u64) {
        let mut w = self.0.borrow_mut();
        w.step();
        w.clock = (w.clock + 1_000_000).min(deadline_ns.max(w.clock + 1));
    }
    fn close_evtchn(&self, port: u32) {
        self.0.borrow_mut().ports.retain(|&p| p != port);
    }
    fn now_ns(&self) -> u64 {
        self.0.borrow().clock
    }
}

/// A vif whose backend waits in `InitWait`, as netback sets it up.
fn world(sg: bool) -> Fake {
    let mut w = World {
        store: BTreeMap::new(),
        grants: BTreeMap::new(),
        next_gref: 0,
        ports: Vec::new(),
        next_port: 0,
        notified: 0,
        backend: Backend::new(ME, BackendConfig::default()),
        tx: None,
        rx: None,
        sent: Vec::new(),
        to_guest: VecDeque::new(),
        clock: 0,
        stall: false,
        hold_grants: false,
        deaf: false,
        hostile: Hostile::None,
        reap_on_close: false,
    };
    let be = BackendInfo {
        mac: Some(MAC),
        handle: Some(0),
        feature_sg: sg,
        ..BackendInfo::default()
    };
    for (k, v) in be.to_xenstore() {
        w.store.insert(format!("{BE}/{k}"), v);
    }
    for (k, v) in [
        (format!("{FE}/backend"), BE.to_string()),
        (format!("{FE}/backend-id"), "0".into()),
        (format!("{FE}/mac"), "00:16:3e:12:34:56".into()),
        (format!("{FE}/handle"), "0".into()),
        (format!("{FE}/state"), "1".into()),
        (format!("{BE}/state"), "2".into()),
    ] {
        w.store.insert(k, v);
    }
    Fake(Rc::new(RefCell::new(w)))
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ seed)
        .collect();
    if len >= 14 {
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&MAC);
    }
    f
}

fn small() -> Options {
    Options {
        tx_pages: 8,
        rx_buffers: 8,
        ..Options::default()
    }
}

#[test]
fn connects_as_linux_netfront_does() {
    let f = world(true);
    let dev = NetDevice::open(f.clone(), "0", Options::default()).unwrap();
    {
        let w = f.0.borrow();
        assert_eq!(w.state(FE), STATE_CONNECTED);
        assert_eq!(w.state(BE), STATE_CONNECTED);
        assert_eq!(w.store[&format!("{FE}/request-rx-copy")], "1");
        assert_eq!(w.store[&format!("{FE}/feature-rx-notify")], "1");
        assert_eq!(w.store[&format!("{FE}/feature-sg")], "1");
        let port: u32 = w.store[&format!("{FE}/event-channel")].parse().unwrap();
        assert_eq!(w.ports, vec![port]);
        // 2 rings + 64 tx + 64 rx pages.
        assert_eq!(w.grants.len(), 130);
        assert_eq!(w.grants.values().filter(|e| e.readonly).count(), 64);
    }
    assert_eq!(dev.mac(), MAC);
    assert_eq!(dev.rx_posted(), 64);
    assert_eq!(dev.max_frame(), 65535);
    assert_eq!(dev.nodes(), (FE, BE));
    dev.close().unwrap();
    let w = f.0.borrow();
    assert_eq!(w.state(FE), STATE_CLOSED);
    assert_eq!(w.state(BE), STATE_CLOSED);
    assert!(w.grants.is_empty(), "every grant ended");
    assert!(w.ports.is_empty(), "event channel closed");
}

#[test]
fn frames_both_ways() {
    let f = world(true);
    let opts = Options {
        tx_pages: 16,
        ..small()
    };
    let mut dev = NetDevice::open(f.clone(), "0", opts).unwrap();
    let sizes = [14, 60, 1514, 4096, 4097, 9000, 65535];
    for (i, &n) in sizes.iter().enumerate() {
        dev.transmit(&frame(n, i as u8)).unwrap();
        dev.poll().unwrap();
    }
    assert_eq!(dev.tx_in_flight(), 0);
    {
        let w = f.0.borrow();
        assert_eq!(w.sent.len(), sizes.len());
        for (i, (s, &n)) in w.sent.iter().zip(&sizes).enumerate() {
            assert!(*s == frame(n, i as u8), "tx frame {i} of {n} bytes");
        }
    }
    for (i, &n) in sizes.iter().enumerate().take(6) {
        f.0.borrow_mut().to_guest.push_back(frame(n, 100 + i as u8));
    }
    let mut got = Vec::new();
    let deadline = dev.env().now_ns() + 1_000_000_000;
    while got.len() < 6 && dev.env().now_ns() < deadline {
        dev.wait(deadline).unwrap();
        while let Some(fr) = dev.receive_with(|d| d.to_vec()) {
            got.push(fr);
        }
    }
    assert_eq!(got.len(), 6);
    for (i, (g, &n)) in got.iter().zip(&sizes).enumerate() {
        assert!(*g == frame(n, 100 + i as u8), "rx frame {i} of {n} bytes");
    }
    let mut buf = [0u8; 1514];
    f.0.borrow_mut().to_guest.push_back(frame(2000, 7));
    f.0.borrow_mut().step();
    dev.poll().unwrap();
    assert_eq!(dev.receive(&mut buf), Some(2000), "truncated copy");
    assert_eq!(&buf[..], &frame(2000, 7)[..1514]);
    assert_eq!(dev.receive(&mut buf), None);
    assert_eq!(dev.rx_posted(), 8, "buffers reposted");
    let s = *dev.stats();
    assert_eq!((s.tx_packets, s.rx_packets, s.rx_dropped), (7, 7, 0));
    dev.close().unwrap();
    assert!(f.0.borrow().grants.is_empty());
}

#[test]
fn without_sg_frames_fit_one_page() {
    let f = world(false);
    let mut dev = NetDevice::open(f.clone(), "0", small()).unwrap();
    assert_eq!(dev.max_frame(), 4096);
    assert_eq!(
        dev.transmit(&frame(4097, 0)),
        Err(Error::Front(FrontError::TooLong))
    );
    assert_eq!(
        dev.transmit(&frame(13, 0)),
        Err(Error::Front(FrontError::TooShort))
    );
    dev.transmit(&frame(4096, 1)).unwrap();
    dev.poll().unwrap();
    assert_eq!(f.0.borrow().sent, vec![frame(4096, 1)]);
    dev.close().unwrap();
}

#[test]
fn a_full_tx_side_is_busy_not_blocked() {
    let f = world(true);
    let mut dev = NetDevice::open(f.clone(), "0", small()).unwrap();
    f.0.borrow_mut().deaf = true;
    for i in 0..8 {
        dev.transmit(&frame(100, i)).unwrap();
    }
    assert!(!dev.can_transmit(100));
    assert_eq!(dev.transmit(&frame(100, 9)), Err(Error::Busy));
    assert_eq!(dev.stats().tx_busy, 1);
    f.0.borrow_mut().deaf = false;
    f.0.borrow_mut().step();
    dev.transmit(&frame(100, 9)).unwrap();
    dev.poll().unwrap();
    assert_eq!(f.0.borrow().sent.len(), 9);
    dev.close().unwrap();
}

#[test]
fn the_rx_queue_is_bounded() {
    let f = world(true);
    let opts = Options {
        rx_queue: 3,
        ..small()
    };
    let mut dev = NetDevice::open(f.clone(), "0", opts).unwrap();
    for i in 0..5 {
        f.0.borrow_mut().to_guest.push_back(frame(60, i));
    }
    f.0.borrow_mut().step();
    dev.poll().unwrap();
    assert_eq!(dev.rx_pending(), 3);
    assert_eq!(dev.stats().rx_overflow, 2);
    dev.close().unwrap();
}

#[test]
fn hostile_backends_break_the_device_without_panicking() {
    for h in [
        Hostile::TxUnknownId,
        Hostile::RxDuplicate,
        Hostile::RxExtra,
        Hostile::TxOverflow,
    ] {
        let f = world(true);
        let mut dev = NetDevice::open(f.clone(), "0", small()).unwrap();
        f.0.borrow_mut().hostile = h;
        let _ = dev.transmit(&frame(60, 1));
        f.0.borrow_mut().step();
        let r = dev.poll();
        assert!(
            matches!(r, Err(Error::Front(_)) | Err(Error::Ring(_))),
            "{h:?}: {r:?}"
        );
        assert!(dev.is_broken());
        assert_eq!(dev.poll(), Err(Error::Broken));
        assert_eq!(dev.transmit(&frame(60, 1)), Err(Error::Broken));
        // Frames completed before the fault may still be taken; nothing more arrives.
        let mut b = [0u8; 64];
        while dev.receive(&mut b).is_some() {}
        assert_eq!(dev.receive(&mut b), None);
        f.0.borrow_mut().hostile = Hostile::None;
        dev.close().unwrap();
        assert!(f.0.borrow().grants.is_empty(), "{h:?}");
    }
}

#[test]
fn backend_without_rx_copy_is_refused() {
    let f = world(true);
    f.0.borrow_mut()
        .store
        .insert(format!("{BE}/feature-rx-copy"), "0".into());
    let r = NetDevice::open(f.clone(), "0", small());
    assert_eq!(
        r.err(),
        Some(Error::BadNode(KeyError::Invalid("feature-rx-copy")))
    );
    let w = f.0.borrow();
    assert!(w.grants.is_empty());
    assert!(w.ports.is_empty());
    assert_eq!(w.state(FE), STATE_CLOSING);
}

#[test]
fn backend_that_never_connects_times_out() {
    let f = world(true);
    f.0.borrow_mut().stall = true;
    let r = NetDevice::open(f.clone(), "0", small());
    assert_eq!(r.err(), Some(Error::Timeout));
    assert!(f.0.borrow().grants.is_empty());
    assert!(f.0.borrow().ports.is_empty());
}

#[test]
fn missing_or_bad_nodes_fail_cleanly() {
    let f = world(true);
    f.0.borrow_mut().store.remove(&format!("{FE}/mac"));
    assert_eq!(
        NetDevice::open(f, "0", small()).err(),
        Some(Error::BadNode(KeyError::Missing("mac")))
    );
    let f = world(true);
    f.0.borrow_mut()
        .store
        .insert(format!("{FE}/mac"), "00:16:3e:12:34".into());
    assert_eq!(
        NetDevice::open(f, "0", small()).err(),
        Some(Error::BadNode(KeyError::Invalid("mac")))
    );
    let f = world(true);
    f.0.borrow_mut()
        .store
        .insert(format!("{BE}/feature-sg"), "maybe".into());
    assert_eq!(
        NetDevice::open(f.clone(), "0", small()).err(),
        Some(Error::BadNode(KeyError::Invalid("feature-sg")))
    );
    assert!(f.0.borrow().grants.is_empty());
    let f = world(true);
    assert_eq!(
        NetDevice::open(f.clone(), "1", small()).err(),
        Some(Error::NoDevice)
    );
    assert_eq!(
        NetDevice::open(f.clone(), "eth0", small()).err(),
        Some(Error::NoDevice)
    );
    assert_eq!(NetDevice::open(f, "", small()).err(), Some(Error::NoDevice));
}

#[test]
fn grants_the_backend_holds_are_leaked_not_freed() {
    let f = world(true);
    let opts = Options {
        tx_pages: 2,
        rx_buffers: 3,
        ..Options::default()
    };
    let dev = NetDevice::open(f.clone(), "0", opts).unwrap();
    f.0.borrow_mut().hold_grants = true;
    assert_eq!(dev.close(), Err(Error::GrantsInUse(7)));
    assert_eq!(f.0.borrow().grants.len(), 7);
}

#[test]
fn dropping_without_close_ends_the_grants() {
    let f = world(true);
    let dev = NetDevice::open(f.clone(), "0", small()).unwrap();
    drop(dev);
    let w = f.0.borrow();
    assert!(w.grants.is_empty());
    assert!(w.ports.is_empty());
    assert_eq!(w.state(FE), STATE_CLOSED);
}

#[test]
fn works_as_a_tcpip_nic() {
    use crate::tcpip::Nic;
    let f = world(true);
    let mut dev = NetDevice::open(f.clone(), "0", small()).unwrap();
    assert_eq!(Nic::mac(&dev), MAC);
    assert!(dev.send(&frame(60, 3)));
    f.0.borrow_mut().to_guest.push_back(frame(70, 4));
    f.0.borrow_mut().step();
    let mut got = Vec::new();
    assert!(dev.recv(&mut |d| got = d.to_vec()));
    assert_eq!(got, frame(70, 4));
    assert!(!dev.recv(&mut |_| {}));
    dev.close().unwrap();
}

#[test]
fn a_connected_device_sees_its_backend_go_to_closing() {
    let f = world(true);
    let mut dev = NetDevice::open(f.clone(), "0", small()).unwrap();
    assert_eq!(dev.backend_state(), Ok(STATE_CONNECTED));
    assert!(!dev.backend_closing());
    // `xl network-detach`: the backend asks the frontend to let go.
    f.0.borrow_mut().set_state(BE, STATE_CLOSING);
    assert_eq!(dev.backend_state(), Ok(STATE_CLOSING));
    assert!(dev.backend_closing());
    // The device still works until it is closed; closing completes the handshake.
    dev.poll().unwrap();
    dev.close().unwrap();
    let w = f.0.borrow();
    assert_eq!(w.state(FE), STATE_CLOSED);
    assert_eq!(w.state(BE), STATE_CLOSED);
    assert!(w.grants.is_empty() && w.ports.is_empty());
}

#[test]
fn a_vanished_or_garbled_backend_state_reads_as_closing() {
    let f = world(true);
    let dev = NetDevice::open(f.clone(), "0", small()).unwrap();
    f.0.borrow_mut()
        .store
        .insert(format!("{BE}/state"), "4\0".into());
    assert_eq!(dev.backend_state(), Ok(STATE_CONNECTED));
    f.0.borrow_mut()
        .store
        .insert(format!("{BE}/state"), "four".into());
    assert_eq!(dev.backend_state(), Ok(STATE_UNKNOWN));
    assert!(dev.backend_closing());
    f.0.borrow_mut().store.remove(&format!("{BE}/state"));
    assert_eq!(dev.backend_state(), Ok(STATE_UNKNOWN));
    assert!(dev.backend_closing());
    f.0.borrow_mut().set_state(BE, STATE_CONNECTED);
    assert!(!dev.backend_closing());
    drop(dev);
}

#[test]
fn a_toolstack_removing_the_device_on_close_is_a_clean_close() {
    let f = world(true);
    let dev = NetDevice::open(f.clone(), "0", small()).unwrap();
    f.0.borrow_mut().reap_on_close = true;
    f.0.borrow_mut().set_state(BE, STATE_CLOSING);
    assert!(dev.backend_closing());
    dev.close().unwrap();
    let w = f.0.borrow();
    assert!(
        !w.store.keys().any(|k| k.starts_with(FE)),
        "the directory is gone"
    );
    assert!(w.grants.is_empty() && w.ports.is_empty());
}
