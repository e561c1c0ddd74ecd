//! blkfront against the backend core of dom0's blkback, over a fake store, grant table
//! and clock: the XenBus handshake, I/O with many requests in flight, indirect
//! requests, errors, a hostile backend, and teardown.

use super::*;
use crate::blkif::{Backend, BackendFeatures, BlkBackRing, Disk, DiskError, GrantError, Grants};
use crate::ring::HeapPage;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use xen_abi::io::blkif::{BLKIF_OP_READ, BLKIF_RSP_ERROR, VDISK_READONLY};

const FE: &str = "device/vbd/51712";
const BE: &str = "/local/domain/0/backend/vbd/1/51712";
const ME: DomId = 1;

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

#[derive(Default)]
struct World {
    store: BTreeMap<String, String>,
    grants: BTreeMap<GrantRef, Entry>,
    next_gref: GrantRef,
    ports: Vec<u32>,
    next_port: u32,
    notified: usize,
    disk: Vec<u8>,
    features: BackendFeatures,
    ring: Option<BlkBackRing<TPage>>,
    clock: u64,
    fail_io: bool,
    refuse: bool,
    stall: bool,
    hold_grants: bool,
    bogus_response: bool,
    max_batch: u32,
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

    /// What blkback does, one look at a time.
    fn step(&mut self) {
        let (fs, bs) = (self.state(FE), self.state(BE));
        match (bs, fs) {
            (STATE_INIT_WAIT, STATE_INITIALISED) if self.refuse => {
                self.set_state(BE, STATE_CLOSING)
            }
            (STATE_INIT_WAIT, STATE_INITIALISED) if !self.stall => {
                let gref: GrantRef = self.store[&format!("{FE}/ring-ref")].parse().unwrap();
                let port: u32 = self.store[&format!("{FE}/event-channel")].parse().unwrap();
                assert!(self.ports.contains(&port));
                assert_eq!(self.store[&format!("{FE}/protocol")], "x86_64-abi");
                let e = &self.grants[&gref];
                assert!(
                    e.domid == 0 && !e.readonly,
                    "ring granted read-write to dom0"
                );
                self.ring = Some(BlkBackRing::attach(TPage(e.page.clone()), 0).unwrap());
                self.set_state(BE, STATE_CONNECTED);
            }
            (b, STATE_CLOSING | STATE_CLOSED) if b != STATE_CLOSED => {
                self.ring = None;
                self.set_state(BE, STATE_CLOSED);
            }
            _ => {}
        }
        if let Some(mut ring) = self.ring.take() {
            if let Ok(n) = ring.unconsumed_requests() {
                self.max_batch = self.max_batch.max(n);
            }
            let backend = Backend::new(self.features, ME);
            let mut grants = GrantView(&self.grants);
            let mut disk = MemDisk {
                data: &mut self.disk,
                ro: self.store[&format!("{BE}/info")] == "4",
                fail: self.fail_io,
            };
            let _ = backend.service(&mut ring, &mut grants, &mut disk, 1 << 20);
            if self.bogus_response {
                // Answer a request that was never made (force a consumed slot).
                ring.page()
                    .write_u32(xen_abi::io::ring::SRING_REQ_PROD, ring.req_cons() + 1);
                let _ = ring.poll_requests();
                let _ = ring.take_request();
                let _ = ring.put_response(&crate::blkif::response(999, BLKIF_OP_READ, 0));
                ring.push_responses();
            }
            self.ring = Some(ring);
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

struct MemDisk<'a> {
    data: &'a mut Vec<u8>,
    ro: bool,
    fail: bool,
}

impl Disk for MemDisk<'_> {
    fn sectors(&self) -> u64 {
        self.data.len() as u64 / 512
    }
    fn read_only(&self) -> bool {
        self.ro
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        if self.fail {
            return Err(DiskError::Io);
        }
        let o = offset as usize;
        buf.copy_from_slice(&self.data[o..o + buf.len()]);
        Ok(())
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        if self.fail {
            return Err(DiskError::Io);
        }
        let o = offset as usize;
        self.data[o..o + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
}

#[derive(Clone)]
struct Fake(Rc<RefCell<World>>);

impl BlkfrontEnv for Fake {
    type Page = TPage;

    fn xs_read(&self, path: &str) -> Result<Option<String>, EnvError> {
        Ok(self.0.borrow().store.get(path).cloned())
    }
    fn xs_write_all(&self, nodes: &[(String, String)]) -> Result<(), EnvError> {
        let mut w = self.0.borrow_mut();
        for (k, v) in nodes {
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

/// A 4 MiB disk behind a backend in `InitWait`, as blkback sets it up.
fn world(max_indirect: u32, info: u32) -> Fake {
    let mut w = World {
        disk: vec![0; 4 << 20],
        features: BackendFeatures {
            flush_cache: true,
            max_indirect_segments: max_indirect,
            ..Default::default()
        },
        ..Default::default()
    };
    for (k, v) in [
        (format!("{FE}/backend"), BE.to_string()),
        (format!("{FE}/backend-id"), "0".into()),
        (format!("{FE}/state"), "1".into()),
        (format!("{BE}/sectors"), "8192".into()),
        (format!("{BE}/sector-size"), "512".into()),
        (format!("{BE}/info"), info.to_string()),
        (format!("{BE}/feature-flush-cache"), "1".into()),
        (format!("{BE}/state"), "2".into()),
    ] {
        w.store.insert(k, v);
    }
    if max_indirect > 0 {
        w.store.insert(
            format!("{BE}/feature-max-indirect-segments"),
            max_indirect.to_string(),
        );
    }
    Fake(Rc::new(RefCell::new(w)))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ seed)
        .collect()
}

#[test]
fn connects_as_linux_blkfront_does() {
    let f = world(256, 0);
    let dev = BlockDevice::open(f.clone(), "xvda", Options::default()).unwrap();
    {
        let w = f.0.borrow();
        assert_eq!(w.state(FE), STATE_CONNECTED);
        assert_eq!(w.state(BE), STATE_CONNECTED);
        let gref: GrantRef = w.store[&format!("{FE}/ring-ref")].parse().unwrap();
        assert!(w.grants.contains_key(&gref));
        let port: u32 = w.store[&format!("{FE}/event-channel")].parse().unwrap();
        assert_eq!(w.ports, vec![port]);
        assert_eq!(w.store[&format!("{FE}/protocol")], "x86_64-abi");
    }
    assert_eq!(dev.sectors(), 8192);
    assert_eq!(dev.sector_size(), 512);
    assert!(!dev.read_only());
    assert!(dev.has_flush());
    assert_eq!(dev.max_segments(), 32, "our cap, below the backend's 256");
    assert_eq!(dev.nodes(), (FE, BE));
    dev.close().unwrap();
    let w = f.0.borrow();
    assert_eq!(w.state(FE), STATE_CLOSED);
    assert_eq!(w.state(BE), STATE_CLOSED);
    assert!(w.grants.is_empty(), "every grant ended");
    assert!(w.ports.is_empty(), "event channel closed");
}

#[test]
fn round_trip_with_indirect_requests_many_in_flight() {
    let f = world(256, 0);
    let mut dev = BlockDevice::open(f.clone(), "xvda", Options::default()).unwrap();
    let data = pattern(1 << 20, 1);
    dev.write(100, &data).unwrap();
    dev.flush().unwrap();
    assert_eq!(
        &f.0.borrow().disk[100 * 512..100 * 512 + data.len()],
        &data[..]
    );
    let mut back = vec![0u8; data.len()];
    dev.read(100, &mut back).unwrap();
    assert_eq!(back, data);
    assert!(dev.max_in_flight() >= 4, "{}", dev.max_in_flight());
    assert!(f.0.borrow().max_batch >= 2, "the backend saw batches");
    assert!(f.0.borrow().notified > 0);
    // Odd sizes and the last sector.
    let small = pattern(1536, 9);
    dev.write(8189, &small).unwrap();
    let mut b = vec![0u8; 1536];
    dev.read(8189, &mut b).unwrap();
    assert_eq!(b, small);
    dev.close().unwrap();
    assert!(f.0.borrow().grants.is_empty());
}

#[test]
fn without_indirect_requests_carry_11_segments() {
    let f = world(0, 0);
    let mut dev = BlockDevice::open(f.clone(), "51712", Options::default()).unwrap();
    assert_eq!(dev.max_segments(), 11);
    let data = pattern(300 << 10, 3);
    dev.write(8, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    dev.read(8, &mut back).unwrap();
    assert_eq!(back, data);
    assert!(dev.max_in_flight() >= 4);
    dev.close().unwrap();
}

#[test]
fn a_small_pool_still_moves_everything() {
    let f = world(256, 0);
    let opts = Options {
        bounce_pages: 3,
        ..Options::default()
    };
    let mut dev = BlockDevice::open(f.clone(), "xvda", opts).unwrap();
    let data = pattern(100 << 10, 5);
    dev.write(0, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    dev.read(0, &mut back).unwrap();
    assert_eq!(back, data);
    dev.close().unwrap();
}

#[test]
fn read_only_disk_refuses_writes() {
    let f = world(0, VDISK_READONLY);
    let mut dev = BlockDevice::open(f.clone(), "xvda", Options::default()).unwrap();
    assert!(dev.read_only());
    assert_eq!(
        dev.write(0, &[0; 512]),
        Err(Error::Front(FrontError::ReadOnly))
    );
    f.0.borrow_mut().disk[..4].copy_from_slice(b"FAT!");
    let mut b = [0u8; 512];
    dev.read(0, &mut b).unwrap();
    assert_eq!(&b[..4], b"FAT!");
    dev.close().unwrap();
    assert!(f.0.borrow().grants.is_empty());
}

#[test]
fn bad_arguments_are_refused() {
    let f = world(0, 0);
    let mut dev = BlockDevice::open(f, "xvda", Options::default()).unwrap();
    let mut b = [0u8; 100];
    assert_eq!(
        dev.read(0, &mut b),
        Err(Error::Front(FrontError::Unaligned))
    );
    let mut b = [0u8; 1024];
    assert_eq!(
        dev.read(8191, &mut b),
        Err(Error::Front(FrontError::OutOfRange))
    );
    assert_eq!(
        dev.read(u64::MAX, &mut b),
        Err(Error::Front(FrontError::OutOfRange))
    );
    assert_eq!(dev.read(0, &mut []), Ok(()));
    dev.read(0, &mut b).unwrap();
    dev.close().unwrap();
}

#[test]
fn backend_errors_are_reported_and_the_device_goes_on() {
    let f = world(0, 0);
    let mut dev = BlockDevice::open(f.clone(), "xvda", Options::default()).unwrap();
    f.0.borrow_mut().fail_io = true;
    assert_eq!(
        dev.write(0, &pattern(64 << 10, 0)),
        Err(Error::Io(BLKIF_RSP_ERROR))
    );
    f.0.borrow_mut().fail_io = false;
    let mut b = [0u8; 4096];
    dev.read(0, &mut b).unwrap();
    dev.close().unwrap();
}

#[test]
fn a_response_to_no_request_breaks_the_device() {
    let f = world(0, 0);
    let mut dev = BlockDevice::open(f.clone(), "xvda", Options::default()).unwrap();
    f.0.borrow_mut().bogus_response = true;
    let mut b = [0u8; 512];
    let r = dev.read(0, &mut b);
    assert!(
        matches!(r, Err(Error::Front(_)) | Err(Error::Ring(_))),
        "{r:?}"
    );
    assert_eq!(dev.read(0, &mut b), Err(Error::Broken));
    f.0.borrow_mut().bogus_response = false;
    dev.close().unwrap();
    assert!(f.0.borrow().grants.is_empty());
}

#[test]
fn backend_closing_instead_of_connecting_fails_cleanly() {
    let f = world(0, 0);
    f.0.borrow_mut().refuse = true;
    let r = BlockDevice::open(f.clone(), "xvda", Options::default());
    assert_eq!(r.err(), Some(Error::BackendState(STATE_CLOSING)));
    let w = f.0.borrow();
    assert!(w.grants.is_empty());
    assert!(w.ports.is_empty());
    assert_eq!(w.state(FE), STATE_CLOSING);
}

#[test]
fn backend_that_never_connects_times_out() {
    let f = world(0, 0);
    f.0.borrow_mut().stall = true;
    let r = BlockDevice::open(f.clone(), "xvda", Options::default());
    assert_eq!(r.err(), Some(Error::Timeout));
    assert!(f.0.borrow().grants.is_empty());
}

#[test]
fn missing_or_bad_backend_nodes_fail_cleanly() {
    let f = world(0, 0);
    f.0.borrow_mut().store.remove(&format!("{BE}/sectors"));
    let r = BlockDevice::open(f.clone(), "xvda", Options::default());
    assert_eq!(r.err(), Some(Error::BadNode(KeyError::Missing("sectors"))));
    assert!(f.0.borrow().grants.is_empty());

    let f = world(0, 0);
    f.0.borrow_mut()
        .store
        .insert(format!("{BE}/sector-size"), "513".into());
    let r = BlockDevice::open(f.clone(), "xvda", Options::default());
    assert_eq!(
        r.err(),
        Some(Error::BadNode(KeyError::Invalid("sector-size")))
    );

    let f = world(0, 0);
    f.0.borrow_mut()
        .store
        .insert(format!("{FE}/backend-id"), "65535".into());
    let r = BlockDevice::open(f, "xvda", Options::default());
    assert_eq!(
        r.err(),
        Some(Error::BadNode(KeyError::Invalid("backend-id")))
    );

    let f = world(0, 0);
    assert_eq!(
        BlockDevice::open(f.clone(), "xvdb", Options::default()).err(),
        Some(Error::NoDevice)
    );
    assert_eq!(
        BlockDevice::open(f, "sda", Options::default()).err(),
        Some(Error::NoDevice)
    );
}

#[test]
fn grants_the_backend_holds_are_leaked_not_freed() {
    let f = world(0, 0);
    let opts = Options {
        bounce_pages: 4,
        ..Options::default()
    };
    let dev = BlockDevice::open(f.clone(), "xvda", opts).unwrap();
    f.0.borrow_mut().hold_grants = true;
    assert_eq!(dev.close(), Err(Error::GrantsInUse(5)));
    assert_eq!(
        f.0.borrow().grants.len(),
        5,
        "ring + 4 bounce pages still granted"
    );
}

#[test]
fn dropping_without_close_ends_the_grants() {
    let f = world(256, 0);
    let dev = BlockDevice::open(f.clone(), "xvda", Options::default()).unwrap();
    drop(dev);
    let w = f.0.borrow();
    assert!(w.grants.is_empty());
    assert!(w.ports.is_empty());
    assert_eq!(w.state(FE), STATE_CLOSED);
}

#[test]
fn vdev_names() {
    assert_eq!(vdev_of("xvda"), Some(51712));
    assert_eq!(vdev_of("xvdb"), Some(51728));
    assert_eq!(vdev_of("xvdp"), Some((202 << 8) | (15 << 4)));
    assert_eq!(vdev_of("xvdq"), Some((1 << 28) | (16 << 8)));
    assert_eq!(vdev_of("xvdaa"), Some((1 << 28) | (26 << 8)));
    assert_eq!(vdev_of("768"), Some(768));
    assert_eq!(vdev_of("xvd"), None);
    assert_eq!(vdev_of("xvdA"), None);
    assert_eq!(vdev_of("hda"), None);
    assert_eq!(vdev_of(""), None);
    assert_eq!(vdev_of("99999999999999999999"), None);
}

#[test]
fn a_transfer_that_fails_half_way_leaves_nothing_in_flight() {
    let f = world(256, 0);
    let mut dev = BlockDevice::open(f.clone(), "xvda", Options::default()).unwrap();
    let data = pattern(64 << 10, 4);
    dev.write(7000, &data).unwrap();
    // The first 128 KiB piece is in range and goes out; the second is not.
    let mut big = vec![0u8; 300 << 10];
    assert_eq!(
        dev.read(7800, &mut big),
        Err(Error::Front(FrontError::OutOfRange))
    );
    assert_eq!(dev.front.in_flight(), 0);
    assert_eq!(dev.free_pages.len(), dev.pool.len());
    let mut back = vec![0u8; data.len()];
    dev.read(7000, &mut back).unwrap();
    assert_eq!(back, data);
    dev.close().unwrap();
}

#[test]
fn random_reads_and_writes_match_a_shadow_disk() {
    for (max_indirect, pool) in [(0, 16), (256, 40), (256, 128), (8, 5)] {
        let f = world(max_indirect, 0);
        let opts = Options {
            bounce_pages: pool,
            ..Options::default()
        };
        let mut dev = BlockDevice::open(f.clone(), "xvda", opts).unwrap();
        let mut shadow = vec![0u8; 4 << 20];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for round in 0..150 {
            let sectors = 1 + next(700);
            let at = next(8192 - sectors);
            let len = sectors as usize * 512;
            let o = at as usize * 512;
            if next(2) == 0 {
                let data = pattern(len, round as u8);
                dev.write(at, &data).unwrap();
                shadow[o..o + len].copy_from_slice(&data);
            } else {
                let mut b = vec![0u8; len];
                dev.read(at, &mut b).unwrap();
                assert!(b == shadow[o..o + len], "round {round}: {at}+{sectors}");
            }
            assert_eq!(dev.front.in_flight(), 0);
        }
        assert_eq!(f.0.borrow().disk, shadow);
        dev.close().unwrap();
        assert!(f.0.borrow().grants.is_empty());
    }
}
