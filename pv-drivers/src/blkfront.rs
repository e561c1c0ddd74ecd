//! blkfront: a guest's virtual disk (`device/vbd/<id>`) as a [`BlockDevice`] with
//! `read`/`write`/`flush`, over the [`Frontend`] and [`BlkFrontRing`] cores.
//!
//! Everything the driver needs from the kernel — XenStore, pages shared with the
//! backend, grants, the event channel and a clock — comes through [`BlkfrontEnv`], so the
//! driver is safe code, host-tested here against [`Backend`](crate::blkif::Backend) (the
//! same core dom0's blkback uses). A PV guest implements the trait over `guest-sdk`
//! (`guest_sdk::xenbus`, `guest_sdk::grant`, `guest_sdk::events`, `sched::poll`):
//! [`crate::sdk::SdkEnv`]. (The SDK cannot use this crate, which sits above it, hence
//! the trait.)
//!
//! # Connecting (Xen's XenBus protocol, as Linux's blkfront does it)
//! 1. Read `device/vbd/<id>/backend` and `backend-id`; wait for the backend's `InitWait`
//!    (it has published the disk and its features).
//! 2. Allocate the ring page and initialise it, grant it to the backend, allocate an
//!    unbound event channel for it, write `ring-ref`, `event-channel` and
//!    `protocol = x86_64-abi` (together, in a transaction where the store has them), and
//!    switch our `state` to `Initialised`.
//! 3. Wait for the backend's `Connected`; read `sectors`, `info`, `sector-size`,
//!    `feature-flush-cache`, `feature-barrier`, `feature-max-indirect-segments`; grant the
//!    bounce pages (and the indirect pages when the backend takes indirect requests);
//!    switch to `Connected`.
//!
//! [`BlockDevice::close`] switches to `Closing`, waits (bounded) for the backend to close,
//! switches to `Closed`, ends every grant and closes the event channel. A page whose grant
//! the backend still holds is leaked, never reused or freed.
//!
//! # I/O
//! Data goes through bounce pages granted to the backend once, at connect (the caller's
//! buffers are never granted). A transfer is cut into requests of up to
//! `max_segments` pages (11, or the negotiated indirect maximum); as many as the free
//! bounce pages, ids and ring slots allow are put on the ring and pushed together, then
//! responses are collected (waiting on the event channel, with a timeout) and more are
//! submitted, so several requests are in flight at once.
//!
//! The backend is untrusted: a bad response (unknown or duplicate id, wrong operation) or
//! a broken ring index fails the call and latches the device as broken; nothing panics.
//! A request that times out also breaks the device (its pages stay granted).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use xen_abi::grant_table::GrantRef;
use xen_abi::io::blkif::{BlkifResponse, BLKIF_RSP_OKAY, BLKIF_SECTOR_SIZE};
use xen_abi::io::protocols::XEN_IO_PROTO_ABI_X86_64;
use xen_abi::io::ring::XEN_PAGE_SIZE;
use xen_abi::DomId;

use crate::blkif::xenbus::{BackendInfo, KeyError, KEY_EVENT_CHANNEL, KEY_PROTOCOL, KEY_RING_REF};
use crate::blkif::{BlkFrontRing, FrontError, Frontend};
use crate::ring::{RingError, SharedPage};

pub use crate::env::{
    EnvError, FrontendEnv as BlkfrontEnv, STATE_CLOSED, STATE_CLOSING, STATE_CONNECTED,
    STATE_INITIALISED, STATE_INITIALISING, STATE_INIT_WAIT, STATE_UNKNOWN,
};

/// Why a block device call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No such device name (`xvdX` or a number), or no `device/vbd/<id>` node.
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
    /// The frontend core refused (unaligned, out of range, read-only disk...).
    Front(FrontError),
    /// The ring is broken (a backend index out of range) or full beyond repair.
    Ring(RingError),
    /// The backend answered a request with this `BLKIF_RSP_*` status.
    Io(i16),
    /// The device failed before (a timeout or a protocol error) and is unusable; close it.
    Broken,
    /// Closed, but this many grants were still held by the backend (their pages leaked).
    GrantsInUse(usize),
}

impl From<FrontError> for Error {
    fn from(e: FrontError) -> Self {
        Error::Front(e)
    }
}

impl From<RingError> for Error {
    fn from(e: RingError) -> Self {
        Error::Ring(e)
    }
}

/// Tunables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Bounce pages granted to the backend (the most data in flight, in pages).
    pub bounce_pages: usize,
    /// Most segments per indirect request (Linux's `max_indirect_segments`, 32); 0 never
    /// uses indirect requests. Capped by the backend's offer and by `bounce_pages`.
    pub max_indirect_segments: u32,
    /// How long to wait for the backend at connect, and for each response.
    pub timeout_ns: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bounce_pages: 128,
            max_indirect_segments: 32,
            timeout_ns: 30_000_000_000,
        }
    }
}

/// The `virtual-device` number of a disk name: `xvda`.. `xvdp` as `(202 << 8) | n << 4`,
/// later `xvd` disks (`xvdq`, `xvdaa`...) in the extended form `(1 << 28) | n << 8`, as
/// Linux's blkfront and libxl number them; a decimal number is taken as it is.
pub fn vdev_of(name: &str) -> Option<u32> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return name.parse().ok();
    }
    let letters = name.strip_prefix("xvd")?;
    if letters.is_empty() || letters.len() > 3 || !letters.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    // Bijective base 26: a=0 .. z=25, aa=26...
    let mut n: u32 = 0;
    for b in letters.bytes() {
        n = n * 26 + u32::from(b - b'a') + 1;
    }
    let n = n - 1;
    if n < 16 {
        Some((202 << 8) | (n << 4))
    } else if n < (1 << 20) {
        Some((1 << 28) | (n << 8))
    } else {
        None
    }
}

/// What a request carries besides its id: its pages and where its data goes.
#[derive(Debug)]
struct Token {
    /// Bounce pages (indices into the pool), one per segment.
    pages: Vec<usize>,
    /// Indirect pages (indices into the indirect pool).
    indirect: Vec<usize>,
    /// Where its data starts in the caller's buffer.
    pos: usize,
    /// Bytes.
    len: usize,
}

/// A granted page of ours.
#[derive(Debug)]
struct Granted<P> {
    page: P,
    gref: GrantRef,
}

/// The caller's buffer of a transfer.
enum Buf<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

/// A connected virtual disk.
#[derive(Debug)]
pub struct BlockDevice<E: BlkfrontEnv> {
    env: E,
    node: String,
    backend: String,
    backend_id: DomId,
    devid: u32,
    opts: Options,
    ring: Option<BlkFrontRing<E::Page>>,
    ring_ref: Option<GrantRef>,
    port: Option<u32>,
    front: Frontend<Token>,
    pool: Vec<Granted<E::Page>>,
    free_pages: Vec<usize>,
    indirect: Vec<Granted<E::Page>>,
    free_indirect: Vec<usize>,
    broken: bool,
    max_in_flight: usize,
}

impl<E: BlkfrontEnv> BlockDevice<E> {
    /// Connect to disk `dev` (`"xvda"`, or its `virtual-device` number as a string).
    pub fn open(env: E, dev: &str, opts: Options) -> Result<Self, Error> {
        let devid = vdev_of(dev).ok_or(Error::NoDevice)?;
        let node = format!("device/vbd/{devid}");
        let backend = env
            .xs_read(&format!("{node}/backend"))
            .map_err(Error::Store)?
            .ok_or(Error::NoDevice)?;
        let backend = backend.trim_end_matches('\0').to_string();
        let backend_id = env
            .xs_read(&format!("{node}/backend-id"))
            .map_err(Error::Store)?
            .ok_or(Error::BadNode(KeyError::Missing("backend-id")))?;
        let backend_id = crate::blkif::xenbus::parse_u32(&backend_id)
            .and_then(|v| DomId::try_from(v).ok())
            .filter(|&d| d < xen_abi::xen::DOMID_FIRST_RESERVED)
            .ok_or(Error::BadNode(KeyError::Invalid("backend-id")))?;
        if backend.is_empty() {
            return Err(Error::BadNode(KeyError::Invalid("backend")));
        }
        let handle = u16::try_from(devid & 0xffff).unwrap_or(0);
        let front = Frontend::new(BackendInfo::default(), handle, 1, 0)?;
        let mut dev = BlockDevice {
            env,
            node,
            backend,
            backend_id,
            devid,
            opts,
            ring: None,
            ring_ref: None,
            port: None,
            front,
            pool: Vec::new(),
            free_pages: Vec::new(),
            indirect: Vec::new(),
            free_indirect: Vec::new(),
            broken: false,
            max_in_flight: 0,
        };
        match dev.connect() {
            Ok(()) => Ok(dev),
            Err(e) => {
                // Tell the backend we give up (as xenbus_dev_fatal does), then let go of
                // what we set up. The connect error is what the caller needs.
                let _ = dev.env.switch_state(&dev.node, STATE_CLOSING);
                let _ = dev.teardown();
                Err(e)
            }
        }
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
        // The ring.
        let page = self.env.alloc_page().map_err(Error::Resources)?;
        let ring = BlkFrontRing::init(page)?;
        let gref = self
            .env
            .grant(ring.page(), self.backend_id, false)
            .map_err(Error::Resources)?;
        let ring_size = ring.size();
        self.ring = Some(ring);
        self.ring_ref = Some(gref);
        let port = self
            .env
            .alloc_evtchn(self.backend_id)
            .map_err(Error::Resources)?;
        self.port = Some(port);
        let n = &self.node;
        self.env
            .xs_write_all(&[
                (format!("{n}/{KEY_RING_REF}"), gref.to_string()),
                (format!("{n}/{KEY_EVENT_CHANNEL}"), port.to_string()),
                (
                    format!("{n}/{KEY_PROTOCOL}"),
                    XEN_IO_PROTO_ABI_X86_64.to_string(),
                ),
            ])
            .map_err(Error::Store)?;
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
        // What the backend announced (Linux's blkfront_connect).
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
        if info.sectors == 0 {
            return Err(Error::BadNode(KeyError::Invalid("sectors")));
        }
        let pages = self.opts.bounce_pages.max(1);
        let max_indirect = self
            .opts
            .max_indirect_segments
            .min(u32::try_from(pages).unwrap_or(u32::MAX));
        let handle = u16::try_from(self.devid & 0xffff).unwrap_or(0);
        self.front = Frontend::new(info, handle, ring_size, max_indirect)?;
        // The bounce pages, read-write (the backend writes read data into them).
        for i in 0..pages {
            let page = self.env.alloc_page().map_err(Error::Resources)?;
            let gref = self
                .env
                .grant(&page, self.backend_id, false)
                .map_err(Error::Resources)?;
            self.pool.push(Granted { page, gref });
            self.free_pages.push(i);
        }
        // Indirect pages: one per indirect request that can be in flight (each carries
        // at most 512 segments, one page of them), read-only to the backend.
        if self.front.uses_indirect() {
            let n = (pages / self.front.max_segments().max(1)).max(1);
            for i in 0..n {
                let page = self.env.alloc_page().map_err(Error::Resources)?;
                let gref = self
                    .env
                    .grant(&page, self.backend_id, true)
                    .map_err(Error::Resources)?;
                self.indirect.push(Granted { page, gref });
                self.free_indirect.push(i);
            }
        }
        self.env
            .switch_state(&self.node, STATE_CONNECTED)
            .map_err(Error::Store)?;
        Ok(())
    }

    /// Logical sectors on the disk (of [`sector_size`](Self::sector_size) bytes).
    pub fn sectors(&self) -> u64 {
        let info = self.front.info();
        info.sectors
            .saturating_mul(BLKIF_SECTOR_SIZE as u64)
            .checked_div(u64::from(info.sector_size))
            .unwrap_or(0)
    }

    /// The logical sector size in bytes: offsets and lengths are in its multiples.
    pub fn sector_size(&self) -> u32 {
        self.front.info().sector_size
    }

    /// Whether the disk is read-only (`info & VDISK_READONLY`).
    pub fn read_only(&self) -> bool {
        self.front.info().read_only()
    }

    /// What the backend announced.
    pub fn info(&self) -> &BackendInfo {
        self.front.info()
    }

    /// Most segments (pages) one request carries: 11, or the negotiated indirect maximum.
    pub fn max_segments(&self) -> usize {
        self.front.max_segments()
    }

    /// Whether the backend offers a cache flush (`feature-flush-cache` or
    /// `feature-barrier`).
    pub fn has_flush(&self) -> bool {
        self.front.flush_op().is_some()
    }

    /// The most requests that were in flight at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// The shared ring's indices as they are now, for diagnostics: `[req_prod,
    /// req_event, rsp_prod, rsp_event]` (`None` once closed).
    pub fn ring_indices(&self) -> Option<[u32; 4]> {
        use xen_abi::io::ring::{SRING_REQ_EVENT, SRING_REQ_PROD, SRING_RSP_EVENT, SRING_RSP_PROD};
        let p = self.ring.as_ref()?.page();
        Some(
            [
                SRING_REQ_PROD,
                SRING_REQ_EVENT,
                SRING_RSP_PROD,
                SRING_RSP_EVENT,
            ]
            .map(|o| p.read_u32(o)),
        )
    }

    /// The event channel port (`None` once closed).
    pub fn port(&self) -> Option<u32> {
        self.port
    }

    /// The device node (`device/vbd/<id>`) and the backend's node.
    pub fn nodes(&self) -> (&str, &str) {
        (&self.node, &self.backend)
    }

    /// The environment.
    pub fn env(&self) -> &E {
        &self.env
    }

    /// Read `buf.len()` bytes (a multiple of the sector size) from logical sector
    /// `sector`.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.transfer(sector, Buf::Read(buf))
    }

    /// Write `buf` (a multiple of the sector size) at logical sector `sector`.
    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), Error> {
        self.transfer(sector, Buf::Write(buf))
    }

    /// Make every completed write durable (`BLKIF_OP_FLUSH_DISKCACHE`, or a write
    /// barrier). Without either feature the backend offers nothing more durable: `Ok`.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        if self.front.flush_op().is_none() {
            return Ok(());
        }
        let sub = self.front.start_flush(Token {
            pages: Vec::new(),
            indirect: Vec::new(),
            pos: 0,
            len: 0,
        })?;
        let ring = self.ring.as_mut().ok_or(Error::Broken)?;
        if let Err(e) = ring.put_request(&sub.entry) {
            self.front.cancel(sub.id);
            return Err(e.into());
        }
        self.push();
        let mut status = BLKIF_RSP_OKAY;
        while self.front.in_flight() > 0 {
            self.collect(&mut Buf::Write(&[]), &mut status)?;
        }
        match status {
            BLKIF_RSP_OKAY => Ok(()),
            s => Err(Error::Io(s)),
        }
    }

    fn push(&mut self) {
        let notify = self
            .ring
            .as_mut()
            .is_some_and(|r| r.push_requests_and_check_notify());
        self.max_in_flight = self.max_in_flight.max(self.front.in_flight());
        if let (true, Some(port)) = (notify, self.port) {
            self.env.notify(port);
        }
    }

    fn transfer(&mut self, sector: u64, mut buf: Buf<'_>) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        let r = self.transfer_batches(sector, &mut buf);
        // Never leave requests of this buffer in flight: a later call would collect them
        // into its own buffer. (A broken device has stopped collecting for good.)
        if r.is_err() && !self.broken && self.front.in_flight() > 0 {
            // Requests put on the ring but not yet published go out first.
            self.push();
            if let Err(e) = self.drain(&mut buf) {
                self.broken = true;
                return Err(e);
            }
        }
        r
    }

    fn transfer_batches(&mut self, sector: u64, buf: &mut Buf<'_>) -> Result<(), Error> {
        let (write, total) = match &*buf {
            Buf::Read(b) => (false, b.len()),
            Buf::Write(b) => (true, b.len()),
        };
        if total == 0 {
            return Ok(());
        }
        let ss = u64::from(self.sector_size());
        let offset = sector
            .checked_mul(ss)
            .ok_or(Error::Front(FrontError::OutOfRange))?;
        // One request per piece: never more pages than the pool holds.
        let piece = self.front.max_segments().min(self.pool.len()).max(1) * XEN_PAGE_SIZE;
        let mut pos = 0usize;
        let mut status = BLKIF_RSP_OKAY;
        while (pos < total && status == BLKIF_RSP_OKAY) || self.front.in_flight() > 0 {
            let mut submitted = false;
            while pos < total && status == BLKIF_RSP_OKAY {
                let n = piece.min(total - pos);
                let start = offset
                    .checked_add(pos as u64)
                    .ok_or(Error::Front(FrontError::OutOfRange))?;
                let chunks = self.front.plan_io(write, start, n, 0)?;
                let [chunk] = chunks.as_slice() else {
                    return Err(Error::Front(FrontError::BadChunk));
                };
                let segs = chunk.segments.len();
                let ind = chunk.indirect_pages();
                let ring_full = self.ring.as_ref().is_none_or(|r| r.is_full());
                if self.free_pages.len() < segs
                    || self.free_indirect.len() < ind
                    || ring_full
                    || self.front.free_ids() == 0
                {
                    break;
                }
                // The pages stay in the free lists until the request is started.
                let (fp, fi) = (self.free_pages.len(), self.free_indirect.len());
                let pages: Vec<usize> = self.free_pages.get(fp - segs..).unwrap_or(&[]).to_vec();
                let indirect: Vec<usize> =
                    self.free_indirect.get(fi - ind..).unwrap_or(&[]).to_vec();
                let grefs: Vec<GrantRef> = pages
                    .iter()
                    .filter_map(|&i| self.pool.get(i).map(|g| g.gref))
                    .collect();
                let igrefs: Vec<GrantRef> = indirect
                    .iter()
                    .filter_map(|&i| self.indirect.get(i).map(|g| g.gref))
                    .collect();
                if let Buf::Write(data) = &*buf {
                    for (k, (&p, seg)) in pages.iter().zip(&chunk.segments).enumerate() {
                        let from = pos + k * XEN_PAGE_SIZE;
                        if let (Some(g), Some(src)) =
                            (self.pool.get(p), data.get(from..from + seg.len()))
                        {
                            g.page.write_bytes(seg.page_offset(), src);
                        }
                    }
                }
                let token = Token {
                    pages,
                    indirect,
                    pos,
                    len: n,
                };
                let sub = self.front.start_io(chunk, &grefs, &igrefs, token)?;
                self.free_pages.truncate(fp - segs);
                self.free_indirect.truncate(fi - ind);
                let mut page_buf = alloc::vec![0u8; XEN_PAGE_SIZE];
                for i in 0..sub.indirect_pages() {
                    sub.fill_indirect_page(i, &mut page_buf);
                    if let Some(g) = igrefs
                        .get(i)
                        .and_then(|r| self.indirect.iter().find(|g| g.gref == *r))
                    {
                        g.page.write_bytes(0, &page_buf);
                    }
                }
                let put = self
                    .ring
                    .as_mut()
                    .ok_or(Error::Broken)
                    .and_then(|r| r.put_request(&sub.entry).map_err(Error::from));
                if let Err(e) = put {
                    if let Some(t) = self.front.cancel(sub.id) {
                        self.release(&t);
                    }
                    return Err(e);
                }
                pos += n;
                submitted = true;
            }
            if submitted {
                self.push();
            }
            if self.front.in_flight() > 0 {
                self.collect(buf, &mut status)?;
            } else if pos < total && status == BLKIF_RSP_OKAY {
                // Nothing in flight and nothing could be submitted: the pool cannot hold
                // one request (cannot happen with the piece size above).
                return Err(Error::Resources(EnvError::Failed(0)));
            }
        }
        match status {
            BLKIF_RSP_OKAY => Ok(()),
            s => Err(Error::Io(s)),
        }
    }

    fn release(&mut self, t: &Token) {
        self.free_pages.extend_from_slice(&t.pages);
        self.free_indirect.extend_from_slice(&t.indirect);
    }

    /// Collect everything in flight (after an error).
    fn drain(&mut self, buf: &mut Buf<'_>) -> Result<(), Error> {
        let mut status = BLKIF_RSP_OKAY;
        while self.front.in_flight() > 0 {
            self.collect(buf, &mut status)?;
        }
        Ok(())
    }

    /// Wait for at least one response and complete every one available; the first
    /// error status is kept in `status`.
    fn collect(&mut self, buf: &mut Buf<'_>, status: &mut i16) -> Result<(), Error> {
        let port = self.port.ok_or(Error::Broken)?;
        let deadline = self.env.now_ns().saturating_add(self.opts.timeout_ns);
        loop {
            let mut rsps: Vec<BlkifResponse> = Vec::new();
            let ring = self.ring.as_mut().ok_or(Error::Broken)?;
            let polled = ring.consume_responses(|r| rsps.push(r));
            if let Err(e) = polled {
                self.broken = true;
                return Err(e.into());
            }
            if rsps.is_empty() {
                match ring.final_check_for_responses() {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => {
                        self.broken = true;
                        return Err(e.into());
                    }
                }
                if self.env.now_ns() >= deadline {
                    self.broken = true;
                    return Err(Error::Timeout);
                }
                self.env.wait_event(port, deadline);
                continue;
            }
            for rsp in rsps {
                let c = match self.front.complete(&rsp) {
                    Ok(c) => c,
                    Err(e) => {
                        self.broken = true;
                        return Err(e.into());
                    }
                };
                if c.status != BLKIF_RSP_OKAY && *status == BLKIF_RSP_OKAY {
                    *status = c.status;
                }
                if let (true, Buf::Read(out)) = (c.is_ok(), &mut *buf) {
                    let t = &c.token;
                    for (k, &p) in t.pages.iter().enumerate() {
                        let from = t.pos + k * XEN_PAGE_SIZE;
                        let n = XEN_PAGE_SIZE.min(t.len.saturating_sub(k * XEN_PAGE_SIZE));
                        if let (Some(g), Some(dst)) =
                            (self.pool.get(p), out.get_mut(from..from + n))
                        {
                            g.page.read_bytes(0, dst);
                        }
                    }
                }
                self.release(&c.token);
            }
            return Ok(());
        }
    }

    /// Disconnect: `Closing`, wait (bounded) for the backend to close, `Closed`; end
    /// every grant and close the event channel. Pages the backend still holds are leaked
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
        // Closed either way: a backend that does not answer only delays us.
        self.env
            .switch_state(&self.node, STATE_CLOSED)
            .map_err(Error::Store)?;
        s.map(drop).map_err(wait_error)
    }

    /// End every grant (retrying briefly while the backend holds one), free the pages
    /// whose grants ended, leak the others; close the event channel. Returns how many
    /// grants could not be ended.
    fn teardown(&mut self) -> usize {
        let deadline = self.env.now_ns().saturating_add(1_000_000_000);
        let env = &self.env;
        let end = |gref: GrantRef| -> bool {
            loop {
                if env.end_grant(gref) {
                    return true;
                }
                let now = env.now_ns();
                if now >= deadline {
                    return false;
                }
                // Nothing to wait on but time: the port may or may not fire.
                if let Some(p) = self.port {
                    env.wait_event(p, now.saturating_add(1_000_000).min(deadline));
                }
            }
        };
        let mut leaked = 0;
        for g in self.pool.drain(..).chain(self.indirect.drain(..)) {
            if !end(g.gref) {
                leaked += 1;
                core::mem::forget(g.page);
            }
        }
        if let Some(ring) = self.ring.take() {
            match self.ring_ref.take() {
                Some(r) if !end(r) => {
                    leaked += 1;
                    core::mem::forget(ring);
                }
                _ => drop(ring),
            }
        }
        self.free_pages.clear();
        self.free_indirect.clear();
        if let Some(p) = self.port.take() {
            self.env.close_evtchn(p);
        }
        self.broken = true;
        leaked
    }
}

impl<E: BlkfrontEnv> Drop for BlockDevice<E> {
    /// A device dropped without [`close`](BlockDevice::close) still ends its grants
    /// (leaking what the backend holds), so no page the backend can reach is reused.
    fn drop(&mut self) {
        if self.ring.is_some() || !self.pool.is_empty() || self.port.is_some() {
            let _ = self.env.switch_state(&self.node, STATE_CLOSED);
            self.teardown();
        }
    }
}

fn wait_error(e: EnvError) -> Error {
    match e {
        EnvError::Timeout => Error::Timeout,
        e => Error::Store(e),
    }
}

#[cfg(test)]
#[path = "blkfront_tests.rs"]
mod tests;
