//! netfront: a guest's virtual network interface (`device/vif/<id>`) as a
//! [`NetDevice`]: one frame in, one frame out, non-blocking, over the [`TxFrontend`] /
//! [`RxFrontend`] cores and the two rings.
//!
//! Everything the driver needs from the kernel comes through [`FrontendEnv`] (the same
//! trait blkfront uses), so the driver is safe code, host-tested against
//! [`netif::Backend`](crate::netif::Backend), the core dom0's netback uses.
//!
//! # Connecting (Xen's XenBus protocol, as Linux's netfront does it)
//! 1. Read `device/vif/<id>/backend`, `backend-id` and `mac`; wait for the backend's
//!    `InitWait`, read its features (`feature-rx-copy` is required: this frontend only
//!    does copy mode, as Linux's).
//! 2. Allocate, initialise and grant the tx and rx ring pages, allocate one event
//!    channel, grant the tx bounce pages (read-only) and the rx buffer pages
//!    (read-write) and post every rx buffer; write `tx-ring-ref`, `rx-ring-ref`,
//!    `event-channel`, `request-rx-copy = 1`, `feature-rx-notify = 1`, `feature-sg`,
//!    `feature-no-csum-offload = 1` (checksums are always complete) in one
//!    transaction; switch to `Initialised`.
//! 3. Wait for the backend's `Connected`; switch to `Connected`.
//!
//! [`NetDevice::close`] switches to `Closing`, waits (bounded) for the backend, switches
//! to `Closed` (unless the toolstack already removed the device's directory), ends
//! every grant and closes the event channel; a page whose grant the
//! backend still holds is leaked, never reused.
//!
//! # Data
//! [`NetDevice::transmit`] copies a frame into granted bounce pages (one slot per page,
//! from offset 0; a frame over one page needs the backend's `feature-sg`) and pushes it;
//! it never waits: no free page, id or ring slot is [`Error::Busy`].
//! [`NetDevice::poll`] reaps tx responses (freeing bounce pages), assembles received
//! frames into a queue, and posts the rx buffers again (pages granted once, reused).
//! [`NetDevice::receive`] / [`NetDevice::receive_with`] take a frame from that queue.
//! [`NetDevice::wait`] blocks on the event channel until something may have arrived.
//!
//! The backend is untrusted: a response with an unknown or duplicate id, an rx extra
//! slot we never asked for, or a broken ring index latches the device as broken
//! ([`Error::Broken`] afterwards); nothing panics.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use xen_abi::grant_table::GrantRef;
use xen_abi::io::netif::{NetifRxResponse, NetifTxResponse, NET_RX_RING_SIZE};
use xen_abi::io::ring::XEN_PAGE_SIZE;
use xen_abi::DomId;

pub use crate::env::{
    EnvError, FrontendEnv, STATE_CLOSED, STATE_CLOSING, STATE_CONNECTED, STATE_INITIALISED,
    STATE_INIT_WAIT, STATE_UNKNOWN,
};
use crate::netif::xenbus::{parse_mac, parse_u32, BackendInfo, FrontendInfo, KeyError, KEY_MAC};
use crate::netif::{FrontError, NetRxFrontRing, NetTxFrontRing, RxFrontend, RxOutcome, TxFrontend};
use crate::ring::{RingError, SharedPage};

/// Why a network device call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not a vif index, or no `device/vif/<id>` node.
    NoDevice,
    /// A XenStore operation failed.
    Store(EnvError),
    /// The device node or the backend's nodes are missing or malformed.
    BadNode(KeyError),
    /// The backend went to this state instead of the one we waited for.
    BackendState(u32),
    /// The backend did not answer in time.
    Timeout,
    /// Pages, grants or the event channel could not be had.
    Resources(EnvError),
    /// No free bounce page, id or tx ring slot now: poll and retry (or drop the frame).
    Busy,
    /// The frame is too short, or too long for this device.
    Front(FrontError),
    /// The ring is broken (a backend index out of range).
    Ring(RingError),
    /// The device failed before (a protocol error from the backend) and is unusable.
    Broken,
    /// Closed, but this many grants were still held by the backend (pages leaked).
    GrantsInUse(usize),
}

impl From<RingError> for Error {
    fn from(e: RingError) -> Self {
        Error::Ring(e)
    }
}

/// Tunables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Tx bounce pages (the most frame pages in flight to the backend).
    pub tx_pages: usize,
    /// Rx buffers (pages) kept posted (at most the rx ring's 256).
    pub rx_buffers: usize,
    /// Received frames held until [`NetDevice::receive`] takes them; more are dropped.
    pub rx_queue: usize,
    /// Offer and use scatter-gather (frames over one page), when the backend does.
    pub sg: bool,
    /// How long to wait for the backend at connect and close.
    pub timeout_ns: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tx_pages: 64,
            rx_buffers: 64,
            rx_queue: 128,
            sg: true,
            timeout_ns: 30_000_000_000,
        }
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames handed to the backend.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Tx slots the backend answered with an error.
    pub tx_errors: u64,
    /// Transmits refused with [`Error::Busy`].
    pub tx_busy: u64,
    /// Frames received.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Received chains dropped (error status, bad offset/size, too many slots).
    pub rx_dropped: u64,
    /// Frames dropped because the receive queue was full.
    pub rx_overflow: u64,
}

/// A granted page of ours.
#[derive(Debug)]
struct Granted<P> {
    page: P,
    gref: GrantRef,
}

/// A connected virtual network interface.
#[derive(Debug)]
pub struct NetDevice<E: FrontendEnv> {
    env: E,
    node: String,
    backend: String,
    backend_id: DomId,
    opts: Options,
    mac: [u8; 6],
    info: BackendInfo,
    tx_ring: Option<NetTxFrontRing<E::Page>>,
    tx_ring_ref: Option<GrantRef>,
    rx_ring: Option<NetRxFrontRing<E::Page>>,
    rx_ring_ref: Option<GrantRef>,
    port: Option<u32>,
    tx: TxFrontend<usize>,
    tx_pages: Vec<Granted<E::Page>>,
    tx_free: Vec<usize>,
    rx: RxFrontend<usize>,
    rx_pages: Vec<Granted<E::Page>>,
    rx_idle: Vec<usize>,
    queue: VecDeque<Vec<u8>>,
    stats: Stats,
    broken: bool,
}

impl<E: FrontendEnv> NetDevice<E> {
    /// Connect to vif `id` (its index, `"0"` for the first).
    pub fn open(env: E, id: &str, opts: Options) -> Result<Self, Error> {
        let devid = parse_u32(id)
            .filter(|_| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(Error::NoDevice)?;
        let node = format!("device/vif/{devid}");
        let backend = env
            .xs_read(&format!("{node}/backend"))
            .map_err(Error::Store)?
            .ok_or(Error::NoDevice)?;
        let backend = backend.trim_end_matches('\0').to_string();
        if backend.is_empty() {
            return Err(Error::BadNode(KeyError::Invalid("backend")));
        }
        let backend_id = env
            .xs_read(&format!("{node}/backend-id"))
            .map_err(Error::Store)?
            .ok_or(Error::BadNode(KeyError::Missing("backend-id")))?;
        let backend_id = parse_u32(&backend_id)
            .and_then(|v| DomId::try_from(v).ok())
            .filter(|&d| d < xen_abi::xen::DOMID_FIRST_RESERVED)
            .ok_or(Error::BadNode(KeyError::Invalid("backend-id")))?;
        let mac = env
            .xs_read(&format!("{node}/{KEY_MAC}"))
            .map_err(Error::Store)?
            .ok_or(Error::BadNode(KeyError::Missing(KEY_MAC)))?;
        let mac = parse_mac(&mac).ok_or(Error::BadNode(KeyError::Invalid(KEY_MAC)))?;
        let mut dev = NetDevice {
            env,
            node,
            backend,
            backend_id,
            opts,
            mac,
            info: BackendInfo::default(),
            tx_ring: None,
            tx_ring_ref: None,
            rx_ring: None,
            rx_ring_ref: None,
            port: None,
            tx: TxFrontend::new(1, 1).map_err(Error::Front)?,
            tx_pages: Vec::new(),
            tx_free: Vec::new(),
            rx: RxFrontend::new(1).map_err(Error::Front)?,
            rx_pages: Vec::new(),
            rx_idle: Vec::new(),
            queue: VecDeque::new(),
            stats: Stats::default(),
            broken: false,
        };
        match dev.connect() {
            Ok(()) => Ok(dev),
            Err(e) => {
                let _ = dev.env.switch_state(&dev.node, STATE_CLOSING);
                let _ = dev.teardown();
                Err(e)
            }
        }
    }

    fn grant_page(&self, readonly: bool) -> Result<Granted<E::Page>, Error> {
        let page = self.env.alloc_page().map_err(Error::Resources)?;
        let gref = self
            .env
            .grant(&page, self.backend_id, readonly)
            .map_err(Error::Resources)?;
        Ok(Granted { page, gref })
    }

    fn connect(&mut self) -> Result<(), Error> {
        let t = self.opts.timeout_ns;
        let s = self
            .env
            .wait_state(&self.backend, &|s| s >= STATE_INIT_WAIT, t)
            .map_err(wait_error)?;
        if s >= STATE_CLOSING {
            return Err(Error::BackendState(s));
        }
        let mut store_err = None;
        let be = self.backend.clone();
        let info = BackendInfo::from_xenstore(|k| match self.env.xs_read(&format!("{be}/{k}")) {
            Ok(v) => v,
            Err(e) => {
                store_err.get_or_insert(e);
                None
            }
        });
        if let Some(e) = store_err {
            return Err(Error::Store(e));
        }
        let info = info.map_err(Error::BadNode)?;
        if !info.feature_rx_copy {
            return Err(Error::BadNode(KeyError::Invalid("feature-rx-copy")));
        }
        self.info = info;
        // The rings.
        let page = self.env.alloc_page().map_err(Error::Resources)?;
        let tx_ring = NetTxFrontRing::init(page)?;
        let tx_ref = self
            .env
            .grant(tx_ring.page(), self.backend_id, false)
            .map_err(Error::Resources);
        let tx_size = tx_ring.size();
        self.tx_ring = Some(tx_ring);
        self.tx_ring_ref = Some(tx_ref?);
        let page = self.env.alloc_page().map_err(Error::Resources)?;
        let rx_ring = NetRxFrontRing::init(page)?;
        let rx_ref = self
            .env
            .grant(rx_ring.page(), self.backend_id, false)
            .map_err(Error::Resources);
        let rx_size = rx_ring.size();
        self.rx_ring = Some(rx_ring);
        self.rx_ring_ref = Some(rx_ref?);
        let port = self
            .env
            .alloc_evtchn(self.backend_id)
            .map_err(Error::Resources)?;
        self.port = Some(port);
        let sg = self.opts.sg && self.info.feature_sg;
        self.tx = TxFrontend::new(tx_size, if sg { 18 } else { 1 }).map_err(Error::Front)?;
        self.rx = RxFrontend::new(rx_size).map_err(Error::Front)?;
        // Bounce pages (read-only to the backend) and rx buffers (read-write).
        for i in 0..self.opts.tx_pages.max(1) {
            let g = self.grant_page(true)?;
            self.tx_pages.push(g);
            self.tx_free.push(i);
        }
        let nrx = self
            .opts
            .rx_buffers
            .clamp(1, NET_RX_RING_SIZE.min(rx_size) as usize);
        for i in 0..nrx {
            let g = self.grant_page(false)?;
            self.rx_pages.push(g);
            self.rx_idle.push(i);
        }
        self.refill_rx(false)?;
        // The keys, together.
        let n = &self.node;
        let nodes: Vec<(String, String)> = FrontendInfo::new(
            self.tx_ring_ref.unwrap_or(0),
            self.rx_ring_ref.unwrap_or(0),
            port,
            self.opts.sg,
        )
        .to_xenstore()
        .into_iter()
        .map(|(k, v)| (format!("{n}/{k}"), v))
        .collect();
        self.env.xs_write_all(&nodes).map_err(Error::Store)?;
        self.env
            .switch_state(&self.node, STATE_INITIALISED)
            .map_err(Error::Store)?;
        let s = self
            .env
            .wait_state(
                &self.backend,
                &|s| s == STATE_CONNECTED || s >= STATE_CLOSING,
                t,
            )
            .map_err(wait_error)?;
        if s != STATE_CONNECTED {
            return Err(Error::BackendState(s));
        }
        self.env
            .switch_state(&self.node, STATE_CONNECTED)
            .map_err(Error::Store)?;
        Ok(())
    }

    /// The MAC address (the `mac` node of our device directory).
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }
    /// What the backend announced.
    pub fn backend_info(&self) -> &BackendInfo {
        &self.info
    }
    /// The longest frame [`transmit`](Self::transmit) takes (4096 without
    /// scatter-gather).
    pub fn max_frame(&self) -> usize {
        self.tx.max_frame()
    }
    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// The event channel port (`None` once closed).
    pub fn port(&self) -> Option<u32> {
        self.port
    }
    /// The device node (`device/vif/<id>`) and the backend's node.
    pub fn nodes(&self) -> (&str, &str) {
        (&self.node, &self.backend)
    }
    /// The environment.
    pub fn env(&self) -> &E {
        &self.env
    }
    /// Whether the device failed and must be closed.
    pub fn is_broken(&self) -> bool {
        self.broken
    }
    /// The backend's XenBus state now (one store read; `STATE_UNKNOWN` when its
    /// `state` node is gone or malformed). A connected device whose backend went to
    /// `Closing` or beyond (`xl network-detach`, the backend shutting down) should be
    /// [`close`](Self::close)d: the backend waits for that before it lets go.
    pub fn backend_state(&self) -> Result<u32, Error> {
        let v = self
            .env
            .xs_read(&format!("{}/state", self.backend))
            .map_err(Error::Store)?;
        Ok(v.and_then(|s| parse_u32(s.trim_end_matches('\0').trim()))
            .unwrap_or(STATE_UNKNOWN))
    }
    /// Whether the backend is going away ([`backend_state`](Self::backend_state) is
    /// `Closing`, `Closed` or unknown): time to [`close`](Self::close). A store error
    /// (say a request timed out while dom0 was busy) is not taken for an answer: it
    /// reads as `false`, ask again later. One store read (a round trip to xenstored):
    /// look when a watch on the backend's `state` fires rather than on every poll.
    pub fn backend_closing(&self) -> bool {
        matches!(self.backend_state(), Ok(s) if s >= STATE_CLOSING || s == STATE_UNKNOWN)
    }
    /// Tx slots awaiting the backend's answer.
    pub fn tx_in_flight(&self) -> usize {
        self.tx.in_flight()
    }
    /// Rx buffers posted to the backend.
    pub fn rx_posted(&self) -> usize {
        self.rx.posted()
    }
    /// Frames waiting in the receive queue.
    pub fn rx_pending(&self) -> usize {
        self.queue.len()
    }

    fn fail<T>(&mut self, e: Error) -> Result<T, Error> {
        self.broken = true;
        Err(e)
    }

    /// Whether a frame of `len` bytes could be sent now (after a [`poll`](Self::poll)).
    pub fn can_transmit(&self, len: usize) -> bool {
        let Ok(n) = self.tx.slots_needed(len) else {
            return false;
        };
        !self.broken
            && self.tx_free.len() >= n
            && self.tx.free_ids() >= n
            && self
                .tx_ring
                .as_ref()
                .is_some_and(|r| r.free_requests() as usize >= n)
    }

    /// Send one frame (Ethernet header included), without waiting. Reaps finished
    /// transmits first; [`Error::Busy`] when there is no room now.
    pub fn transmit(&mut self, frame: &[u8]) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        self.reap_tx()?;
        let n = self.tx.slots_needed(frame.len()).map_err(Error::Front)?;
        if !self.can_transmit(frame.len()) {
            self.stats.tx_busy += 1;
            return Err(Error::Busy);
        }
        let at = self.tx_free.len() - n;
        let idx: Vec<usize> = self.tx_free.get(at..).unwrap_or(&[]).to_vec();
        let mut pages = Vec::with_capacity(n);
        for (&i, chunk) in idx.iter().zip(frame.chunks(XEN_PAGE_SIZE)) {
            let Some(g) = self.tx_pages.get(i) else {
                return self.fail(Error::Broken);
            };
            g.page.write_bytes(0, chunk);
            pages.push((g.gref, i));
        }
        let reqs = self
            .tx
            .start_tx(frame.len(), pages, 0)
            .map_err(Error::Front)?;
        self.tx_free.truncate(at);
        let Some(ring) = self.tx_ring.as_mut() else {
            return self.fail(Error::Broken);
        };
        for r in &reqs {
            if let Err(e) = ring.put_request(r) {
                // Cannot happen (room was checked); the ring is in an unknown state.
                return self.fail(e.into());
            }
        }
        let notify = ring.push_requests_and_check_notify();
        if let (true, Some(p)) = (notify, self.port) {
            self.env.notify(p);
        }
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += frame.len() as u64;
        Ok(())
    }

    fn reap_tx(&mut self) -> Result<(), Error> {
        let Some(ring) = self.tx_ring.as_mut() else {
            return self.fail(Error::Broken);
        };
        let mut rsps: Vec<NetifTxResponse> = Vec::new();
        if let Err(e) = ring.consume_responses(|r| rsps.push(r)) {
            return self.fail(e.into());
        }
        for r in rsps {
            match self.tx.complete(&r) {
                Ok(Some(c)) => {
                    if !c.is_ok() {
                        self.stats.tx_errors += 1;
                    }
                    self.tx_free.push(c.token);
                }
                Ok(None) => {}
                Err(e) => return self.fail(Error::Front(e)),
            }
        }
        Ok(())
    }

    fn reap_rx(&mut self) -> Result<(), Error> {
        let Some(ring) = self.rx_ring.as_mut() else {
            return self.fail(Error::Broken);
        };
        let mut rsps: Vec<NetifRxResponse> = Vec::new();
        if let Err(e) = ring.consume_responses(|r| rsps.push(r)) {
            return self.fail(e.into());
        }
        for r in rsps {
            let pages = &self.rx_pages;
            let got = self.rx.complete(&r, |&i, off, out| {
                if let Some(g) = pages.get(i) {
                    g.page.read_bytes(off, out);
                }
            });
            match got {
                Ok((idx, outcome)) => {
                    self.rx_idle.push(idx);
                    match outcome {
                        RxOutcome::Pending => {}
                        RxOutcome::Dropped => self.stats.rx_dropped += 1,
                        RxOutcome::Frame(f) => {
                            if self.queue.len() >= self.opts.rx_queue.max(1) {
                                self.stats.rx_overflow += 1;
                            } else {
                                self.stats.rx_packets += 1;
                                self.stats.rx_bytes += f.data.len() as u64;
                                self.queue.push_back(f.data);
                            }
                        }
                    }
                }
                Err(e) => return self.fail(Error::Front(e)),
            }
        }
        Ok(())
    }

    /// Post every idle rx buffer again.
    fn refill_rx(&mut self, notify: bool) -> Result<(), Error> {
        if self.rx_idle.is_empty() {
            return Ok(());
        }
        let Some(ring) = self.rx_ring.as_mut() else {
            return self.fail(Error::Broken);
        };
        while let Some(&i) = self.rx_idle.last() {
            let Some(g) = self.rx_pages.get(i) else {
                return self.fail(Error::Broken);
            };
            if ring.is_full() || self.rx.free_ids() == 0 {
                break;
            }
            let req = match self.rx.post(g.gref, i) {
                Ok(r) => r,
                Err(e) => return self.fail(Error::Front(e)),
            };
            if let Err(e) = ring.put_request(&req) {
                return self.fail(e.into());
            }
            self.rx_idle.pop();
        }
        let kick = ring.push_requests_and_check_notify();
        if let (true, true, Some(p)) = (notify, kick, self.port) {
            self.env.notify(p);
        }
        Ok(())
    }

    /// Reap tx responses, assemble received frames into the queue, post the rx buffers
    /// again, and ask to be notified of the next responses.
    pub fn poll(&mut self) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        // Responses are bounded by what we posted: a few rounds always settle.
        for _ in 0..4 {
            self.reap_tx()?;
            self.reap_rx()?;
            self.refill_rx(true)?;
            let more_tx = match self.tx_ring.as_mut().map(|r| r.final_check_for_responses()) {
                Some(Ok(m)) => m,
                Some(Err(e)) => return self.fail(e.into()),
                None => return self.fail(Error::Broken),
            };
            let more_rx = match self.rx_ring.as_mut().map(|r| r.final_check_for_responses()) {
                Some(Ok(m)) => m,
                Some(Err(e)) => return self.fail(e.into()),
                None => return self.fail(Error::Broken),
            };
            if !more_tx && !more_rx {
                break;
            }
        }
        Ok(())
    }

    /// Take the next received frame into `buf`: `Some(frame length)` (only
    /// `min(length, buf.len())` bytes are copied: give a buffer of at least
    /// [`max_frame`](Self::max_frame) or 1514 bytes), `None` when nothing is waiting.
    /// Polls when the queue is empty.
    pub fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.receive_with(|f| {
            let n = f.len().min(buf.len());
            if let (Some(d), Some(s)) = (buf.get_mut(..n), f.get(..n)) {
                d.copy_from_slice(s);
            }
            f.len()
        })
    }

    /// Hand the next received frame to `f`, `None` when nothing is waiting. Polls when
    /// the queue is empty.
    pub fn receive_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if self.queue.is_empty() && !self.broken {
            let _ = self.poll();
        }
        self.queue.pop_front().map(|frame| f(&frame))
    }

    /// Block until the backend may have answered or sent something, or the clock
    /// reaches `deadline_ns`; then poll. Returns at once when frames are queued.
    pub fn wait(&mut self, deadline_ns: u64) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        self.poll()?;
        if !self.queue.is_empty() {
            return Ok(());
        }
        let Some(port) = self.port else {
            return self.fail(Error::Broken);
        };
        if self.env.now_ns() < deadline_ns {
            self.env.wait_event(port, deadline_ns);
        }
        self.poll()
    }

    /// Disconnect: `Closing`, wait (bounded) for the backend, `Closed`; end every grant
    /// and close the event channel. Pages the backend still holds are leaked
    /// ([`Error::GrantsInUse`]).
    pub fn close(mut self) -> Result<(), Error> {
        let r = self.disconnect();
        let leaked = self.teardown();
        r?;
        match leaked {
            0 => Ok(()),
            n => Err(Error::GrantsInUse(n)),
        }
    }

    fn disconnect(&mut self) -> Result<(), Error> {
        self.env
            .switch_state(&self.node, STATE_CLOSING)
            .map_err(Error::Store)?;
        let s = self.env.wait_state(
            &self.backend,
            &|s| s >= STATE_CLOSING || s == STATE_UNKNOWN,
            self.opts.timeout_ns,
        );
        if let Err(e) = self.env.switch_state(&self.node, STATE_CLOSED) {
            // A toolstack may remove the device's directory as soon as the backend has
            // closed (dom0's netback does on our `Closing`): then there is nobody left
            // to tell, and the close is complete.
            if !matches!(self.env.xs_read(&format!("{}/state", self.node)), Ok(None)) {
                return Err(Error::Store(e));
            }
        }
        s.map(drop).map_err(wait_error)
    }

    /// End every grant (retrying briefly while the backend holds one), free the pages
    /// whose grants ended, leak the others; close the event channel. Returns how many
    /// grants could not be ended.
    fn teardown(&mut self) -> usize {
        let deadline = self.env.now_ns().saturating_add(1_000_000_000);
        let env = &self.env;
        let port = self.port;
        let end = |gref: GrantRef| -> bool {
            loop {
                if env.end_grant(gref) {
                    return true;
                }
                let now = env.now_ns();
                if now >= deadline {
                    return false;
                }
                if let Some(p) = port {
                    env.wait_event(p, now.saturating_add(1_000_000).min(deadline));
                }
            }
        };
        let mut leaked = 0;
        for g in self.tx_pages.drain(..).chain(self.rx_pages.drain(..)) {
            if !end(g.gref) {
                leaked += 1;
                core::mem::forget(g.page);
            }
        }
        if let Some(ring) = self.tx_ring.take() {
            match self.tx_ring_ref.take() {
                Some(r) if !end(r) => {
                    leaked += 1;
                    core::mem::forget(ring);
                }
                _ => drop(ring),
            }
        }
        if let Some(ring) = self.rx_ring.take() {
            match self.rx_ring_ref.take() {
                Some(r) if !end(r) => {
                    leaked += 1;
                    core::mem::forget(ring);
                }
                _ => drop(ring),
            }
        }
        self.tx.drain();
        self.rx.drain();
        self.tx_free.clear();
        self.rx_idle.clear();
        self.queue.clear();
        if let Some(p) = self.port.take() {
            self.env.close_evtchn(p);
        }
        self.broken = true;
        leaked
    }
}

impl<E: FrontendEnv> Drop for NetDevice<E> {
    /// A device dropped without [`close`](NetDevice::close) still ends its grants
    /// (leaking what the backend holds), so no page the backend can reach is reused.
    fn drop(&mut self) {
        if self.tx_ring.is_some()
            || self.rx_ring.is_some()
            || !self.tx_pages.is_empty()
            || !self.rx_pages.is_empty()
            || self.port.is_some()
        {
            let _ = self.env.switch_state(&self.node, STATE_CLOSED);
            self.teardown();
        }
    }
}

/// smoltcp (through [`crate::tcpip`]) over a netfront device.
impl<E: FrontendEnv> crate::tcpip::Nic for NetDevice<E> {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn send(&mut self, frame: &[u8]) -> bool {
        self.transmit(frame).is_ok()
    }
    fn can_send(&self) -> bool {
        self.can_transmit(crate::tcpip::MAX_FRAME)
    }
    fn recv(&mut self, f: &mut dyn FnMut(&[u8])) -> bool {
        self.receive_with(|d| f(d)).is_some()
    }
}

fn wait_error(e: EnvError) -> Error {
    match e {
        EnvError::Timeout => Error::Timeout,
        e => Error::Store(e),
    }
}

#[cfg(test)]
#[path = "netfront_tests.rs"]
mod tests;
