//! blkback's core: validate a request, then execute it.
//!
//! A request copied out of the ring is first turned into a [`ValidRequest`] by
//! [`Backend::plan`], which checks everything before anything is done: the operation
//! is known and offered, `nr_segments` is 1..=11 (0 only for a flush or barrier; up to
//! the advertised `feature-max-indirect-segments` for an indirect request), each segment
//! has `first_sect <= last_sect <= 7`, the start sector and every segment's length are
//! multiples of the logical sector size, the whole range lies within the disk, and a
//! read-only disk gets no write. Anything wrong is answered `BLKIF_RSP_ERROR` (a
//! malformed request) or `BLKIF_RSP_EOPNOTSUPP` (an operation not offered), as Linux's
//! xen-blkback does, and touches nothing.
//!
//! [`Backend::execute`] then performs the plan over [`Grants`] and [`Disk`]. A write
//! gathers all its segments from the grants before writing anything, so a grant failure
//! leaves the disk untouched; any grant failure answers `BLKIF_RSP_ERROR`. A flush
//! (and a write with the flush or barrier operation) answers only after
//! [`Disk::flush`] succeeded. Requests are executed one at a time in ring order, so a
//! barrier's ordering holds trivially.

use alloc::vec;
use alloc::vec::Vec;

use xen_abi::grant_table::GrantRef;
use xen_abi::io::blkif::{
    indirect_pages, BlkifRequestSegment, BlkifResponse, BlkifSringEntry, BLKIF_DISCARD_SECURE,
    BLKIF_MAX_INDIRECT_SEGMENTS, BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_DISCARD,
    BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE,
    BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY,
    BLKIF_SECTORS_PER_PAGE, BLKIF_SECTOR_SIZE, BLKIF_SEGS_PER_INDIRECT_FRAME,
};
use xen_abi::io::ring::XEN_PAGE_SIZE;
use xen_abi::wire::Wire;
use xen_abi::DomId;

use super::{response, BlkBackRing, Request};
use crate::ring::{RingError, SharedPage};

/// A grant operation failed (the `GNTST_*` status, or any negative value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantError(pub i16);

/// Access to frames a frontend granted, by copy (as `GNTTABOP_copy` does).
///
/// The executor only asks for ranges inside one 4 KiB frame
/// (`offset + len <= 4096`). Each call may fail independently.
pub trait Grants {
    /// Copy `buf.len()` bytes at `offset` in the frame `domid` granted as `gref` into
    /// `buf` (the grant may be read-only).
    fn copy_from(
        &mut self,
        domid: DomId,
        gref: GrantRef,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), GrantError>;
    /// Copy `data` to `offset` in the frame `domid` granted as `gref` (needs a writable
    /// grant).
    fn copy_to(
        &mut self,
        domid: DomId,
        gref: GrantRef,
        offset: usize,
        data: &[u8],
    ) -> Result<(), GrantError>;
}

/// Why a disk operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// An I/O error (answered `BLKIF_RSP_ERROR`).
    Io,
    /// The operation is not supported (answered `BLKIF_RSP_EOPNOTSUPP`).
    Unsupported,
}

/// The backing store of a virtual disk. Offsets and lengths are in bytes; the
/// executor only asks for ranges validated against [`Disk::sectors`].
pub trait Disk {
    /// Capacity in 512-byte sectors (the value of the `sectors` node).
    fn sectors(&self) -> u64;
    /// Logical sector size in bytes: a power of two, 512..=4096 (`sector-size`).
    fn sector_size(&self) -> u32 {
        BLKIF_SECTOR_SIZE as u32
    }
    /// Whether the disk refuses writes.
    fn read_only(&self) -> bool {
        false
    }
    /// Read `buf.len()` bytes at `offset`.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// Write `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError>;
    /// Make every completed write durable.
    fn flush(&mut self) -> Result<(), DiskError>;
    /// Discard `len` bytes at `offset` (securely erase them if `secure`).
    fn discard(&mut self, offset: u64, len: u64, secure: bool) -> Result<(), DiskError> {
        let _ = (offset, len, secure);
        Err(DiskError::Unsupported)
    }
}

/// What a disk looks like to validation: a snapshot of [`Disk`]'s properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Capacity in 512-byte sectors.
    pub sectors: u64,
    /// Logical sector size in bytes (power of two, 512..=4096; anything else makes
    /// every request fail).
    pub sector_size: u32,
    /// Read-only disk.
    pub read_only: bool,
}

impl Geometry {
    /// The geometry of `disk`.
    pub fn of<D: Disk + ?Sized>(disk: &D) -> Self {
        Self {
            sectors: disk.sectors(),
            sector_size: disk.sector_size(),
            read_only: disk.read_only(),
        }
    }

    /// Logical sector size in 512-byte units, if the sector size is valid.
    fn lbs_sectors(&self) -> Option<u64> {
        let s = self.sector_size as usize;
        (s.is_power_of_two() && (BLKIF_SECTOR_SIZE..=XEN_PAGE_SIZE).contains(&s))
            .then_some((s / BLKIF_SECTOR_SIZE) as u64)
    }
}

/// What the backend offers (the `feature-*` nodes it writes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendFeatures {
    /// `feature-flush-cache`: `BLKIF_OP_FLUSH_DISKCACHE`.
    pub flush_cache: bool,
    /// `feature-barrier`: `BLKIF_OP_WRITE_BARRIER`.
    pub barrier: bool,
    /// `feature-discard`: `BLKIF_OP_DISCARD`.
    pub discard: bool,
    /// `discard-secure`: honour `BLKIF_DISCARD_SECURE` (ignored otherwise).
    pub discard_secure: bool,
    /// `feature-max-indirect-segments` (0: `BLKIF_OP_INDIRECT` not offered). Values above
    /// 4096 (8 indirect pages) are treated as 4096.
    pub max_indirect_segments: u32,
}

/// One validated segment: sectors `first_sect..=last_sect` of granted frame `gref`,
/// transferred to or from `disk_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedSegment {
    /// The granted frame.
    pub gref: GrantRef,
    /// First 512-byte sector in the frame (inclusive).
    pub first_sect: u8,
    /// Last 512-byte sector in the frame (inclusive, `first_sect..=7`).
    pub last_sect: u8,
    /// Byte offset on the disk.
    pub disk_offset: u64,
}

impl PlannedSegment {
    /// Byte offset in the frame.
    pub fn page_offset(&self) -> usize {
        usize::from(self.first_sect) * BLKIF_SECTOR_SIZE
    }
    /// Bytes transferred.
    pub fn len(&self) -> usize {
        (usize::from(self.last_sect) + 1 - usize::from(self.first_sect)) * BLKIF_SECTOR_SIZE
    }
    /// Never true for a validated segment (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a validated request will do. Segments of a request are contiguous on disk
/// (`segments[i + 1].disk_offset == segments[i].disk_offset + segments[i].len()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Read the disk into the segments' frames.
    Read { segments: Vec<PlannedSegment> },
    /// Write the segments' frames to the disk, then flush if `flush` (a flush or barrier
    /// request carrying data).
    Write {
        segments: Vec<PlannedSegment>,
        flush: bool,
    },
    /// Flush the disk's cache (a flush or barrier request without data).
    Flush,
    /// Discard `len` bytes at `offset`.
    Discard { offset: u64, len: u64, secure: bool },
}

impl Plan {
    /// Whether the plan changes the disk's contents.
    pub fn writes(&self) -> bool {
        match self {
            Plan::Read { .. } | Plan::Flush => false,
            Plan::Write { .. } | Plan::Discard { .. } => true,
        }
    }

    /// The disk byte range the plan touches (`None` for a flush).
    pub fn range(&self) -> Option<(u64, u64)> {
        match self {
            Plan::Read { segments } | Plan::Write { segments, .. } => {
                let first = segments.first()?;
                let len: u64 = segments.iter().map(|s| s.len() as u64).sum();
                Some((first.disk_offset, len))
            }
            Plan::Flush => None,
            Plan::Discard { offset, len, .. } => Some((*offset, *len)),
        }
    }
}

/// A request that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidRequest {
    /// The guest's id, echoed.
    pub id: u64,
    /// The operation to echo in the response (`indirect_op` for an indirect request).
    pub operation: u8,
    /// What to do.
    pub plan: Plan,
}

impl ValidRequest {
    /// The response for this request with `status`.
    pub fn response(&self, status: i16) -> BlkifResponse {
        response(self.id, self.operation, status)
    }
}

/// A request refused before anything was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The guest's id, echoed.
    pub id: u64,
    /// The operation to echo.
    pub operation: u8,
    /// `BLKIF_RSP_ERROR` or `BLKIF_RSP_EOPNOTSUPP`.
    pub status: i16,
}

impl Rejected {
    /// The response.
    pub fn response(&self) -> BlkifResponse {
        response(self.id, self.operation, self.status)
    }
}

/// What [`Backend::service`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Serviced {
    /// Requests answered.
    pub handled: usize,
    /// The frontend asked to be notified: send an event.
    pub notify: bool,
    /// The budget ran out with requests still waiting: call again.
    pub more: bool,
}

/// blkback's protocol logic for one frontend.
#[derive(Clone, Copy, Debug)]
pub struct Backend {
    features: BackendFeatures,
    domid: DomId,
}

impl Backend {
    /// A backend offering `features` to frontend domain `domid`.
    pub fn new(features: BackendFeatures, domid: DomId) -> Self {
        Self { features, domid }
    }

    /// What the backend offers.
    pub fn features(&self) -> BackendFeatures {
        self.features
    }

    /// The frontend's domain.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    fn max_indirect(&self) -> usize {
        (self.features.max_indirect_segments as usize).min(BLKIF_MAX_INDIRECT_SEGMENTS)
    }

    /// Validate a request slot into a plan, or refuse it. Only an indirect request
    /// touches `grants` (to read its segment pages).
    pub fn plan<G: Grants + ?Sized>(
        &self,
        geom: &Geometry,
        entry: &BlkifSringEntry,
        grants: &mut G,
    ) -> Result<ValidRequest, Rejected> {
        let req = Request::decode(entry);
        let id = req.id();
        let reject = |operation: u8, status: i16| Rejected {
            id,
            operation,
            status,
        };
        match req {
            Request::Rw(r) => {
                let op = r.operation;
                let flushing = matches!(op, BLKIF_OP_FLUSH_DISKCACHE | BLKIF_OP_WRITE_BARRIER);
                if (op == BLKIF_OP_FLUSH_DISKCACHE && !self.features.flush_cache)
                    || (op == BLKIF_OP_WRITE_BARRIER && !self.features.barrier)
                {
                    return Err(reject(op, BLKIF_RSP_EOPNOTSUPP));
                }
                let n = usize::from(r.nr_segments);
                if n > BLKIF_MAX_SEGMENTS_PER_REQUEST || (n == 0 && !flushing) {
                    return Err(reject(op, BLKIF_RSP_ERROR));
                }
                if n == 0 {
                    return Ok(ValidRequest {
                        id,
                        operation: op,
                        plan: Plan::Flush,
                    });
                }
                let segments = self
                    .segments(geom, r.sector_number, &r.seg[..n])
                    .ok_or(reject(op, BLKIF_RSP_ERROR))?;
                let plan = if op == BLKIF_OP_READ {
                    Plan::Read { segments }
                } else {
                    Plan::Write {
                        segments,
                        flush: flushing,
                    }
                };
                if plan.writes() && geom.read_only {
                    return Err(reject(op, BLKIF_RSP_ERROR));
                }
                Ok(ValidRequest {
                    id,
                    operation: op,
                    plan,
                })
            }
            Request::Indirect(r) => {
                if self.max_indirect() == 0 {
                    return Err(reject(BLKIF_OP_INDIRECT, BLKIF_RSP_EOPNOTSUPP));
                }
                let op = r.indirect_op;
                let err = reject(op, BLKIF_RSP_ERROR);
                if op != BLKIF_OP_READ && op != BLKIF_OP_WRITE {
                    return Err(err);
                }
                if op == BLKIF_OP_WRITE && geom.read_only {
                    return Err(err);
                }
                let n = usize::from(r.nr_segments);
                if n == 0 || n > self.max_indirect() {
                    return Err(err);
                }
                // n <= 4096, so at most 8 pages: every index below is in range.
                let mut segs = Vec::with_capacity(n);
                let mut page = vec![0u8; XEN_PAGE_SIZE];
                for &gref in r.indirect_grefs.iter().take(indirect_pages(n)) {
                    grants
                        .copy_from(self.domid, gref, 0, &mut page)
                        .map_err(|_| err)?;
                    let want = (n - segs.len()).min(BLKIF_SEGS_PER_INDIRECT_FRAME);
                    segs.extend(
                        page.chunks_exact(core::mem::size_of::<BlkifRequestSegment>())
                            .take(want)
                            .map(BlkifRequestSegment::get),
                    );
                }
                let segments = self.segments(geom, r.sector_number, &segs).ok_or(err)?;
                let plan = if op == BLKIF_OP_READ {
                    Plan::Read { segments }
                } else {
                    Plan::Write {
                        segments,
                        flush: false,
                    }
                };
                Ok(ValidRequest {
                    id,
                    operation: op,
                    plan,
                })
            }
            Request::Discard(r) => {
                let op = BLKIF_OP_DISCARD;
                if !self.features.discard {
                    return Err(reject(op, BLKIF_RSP_EOPNOTSUPP));
                }
                let err = reject(op, BLKIF_RSP_ERROR);
                let lbs = geom.lbs_sectors().ok_or(err)?;
                if geom.read_only
                    || !r.sector_number.is_multiple_of(lbs)
                    || !r.nr_sectors.is_multiple_of(lbs)
                {
                    return Err(err);
                }
                let end = r.sector_number.checked_add(r.nr_sectors).ok_or(err)?;
                if end > geom.sectors {
                    return Err(err);
                }
                // end <= sectors, and byte offsets of a disk fit in u64 (checked anyway).
                let offset = r.sector_number.checked_mul(512).ok_or(err)?;
                let len = r.nr_sectors.checked_mul(512).ok_or(err)?;
                Ok(ValidRequest {
                    id,
                    operation: op,
                    plan: Plan::Discard {
                        offset,
                        len,
                        secure: self.features.discard_secure && r.flag & BLKIF_DISCARD_SECURE != 0,
                    },
                })
            }
            Request::Other(r) => Err(reject(r.operation, BLKIF_RSP_EOPNOTSUPP)),
        }
    }

    /// Check segments against the disk and lay them out on it.
    fn segments(
        &self,
        geom: &Geometry,
        sector_number: u64,
        segs: &[BlkifRequestSegment],
    ) -> Option<Vec<PlannedSegment>> {
        let lbs = geom.lbs_sectors()?;
        if !sector_number.is_multiple_of(lbs) {
            return None;
        }
        let mut out = Vec::with_capacity(segs.len());
        let mut sector = sector_number;
        for s in segs {
            if s.first_sect > s.last_sect || usize::from(s.last_sect) >= BLKIF_SECTORS_PER_PAGE {
                return None;
            }
            let nsec = u64::from(s.last_sect - s.first_sect) + 1;
            if !nsec.is_multiple_of(lbs) {
                return None;
            }
            out.push(PlannedSegment {
                gref: s.gref,
                first_sect: s.first_sect,
                last_sect: s.last_sect,
                disk_offset: sector.checked_mul(512)?,
            });
            sector = sector.checked_add(nsec)?;
        }
        (sector <= geom.sectors).then_some(out)
    }

    /// Perform a validated request; returns the response status.
    pub fn execute<G: Grants + ?Sized, D: Disk + ?Sized>(
        &self,
        req: &ValidRequest,
        grants: &mut G,
        disk: &mut D,
    ) -> i16 {
        // Defence in depth: the plan was validated against this disk's geometry.
        if req.plan.writes() && disk.read_only() {
            return BLKIF_RSP_ERROR;
        }
        if let Some((off, len)) = req.plan.range() {
            let cap = disk.sectors().saturating_mul(512);
            if off.checked_add(len).is_none_or(|end| end > cap) {
                return BLKIF_RSP_ERROR;
            }
        }
        let status = |r: Result<(), DiskError>| match r {
            Ok(()) => BLKIF_RSP_OKAY,
            Err(DiskError::Io) => BLKIF_RSP_ERROR,
            Err(DiskError::Unsupported) => BLKIF_RSP_EOPNOTSUPP,
        };
        match &req.plan {
            Plan::Read { segments } => {
                let Some((off, len)) = req.plan.range() else {
                    return BLKIF_RSP_ERROR;
                };
                let mut buf = vec![0u8; len as usize];
                if disk.read(off, &mut buf).is_err() {
                    return BLKIF_RSP_ERROR;
                }
                let mut pos = 0;
                for s in segments {
                    let data = &buf[pos..pos + s.len()];
                    if grants
                        .copy_to(self.domid, s.gref, s.page_offset(), data)
                        .is_err()
                    {
                        return BLKIF_RSP_ERROR;
                    }
                    pos += s.len();
                }
                BLKIF_RSP_OKAY
            }
            Plan::Write { segments, flush } => {
                let Some((off, len)) = req.plan.range() else {
                    return BLKIF_RSP_ERROR;
                };
                let mut buf = vec![0u8; len as usize];
                let mut pos = 0;
                for s in segments {
                    let data = &mut buf[pos..pos + s.len()];
                    if grants
                        .copy_from(self.domid, s.gref, s.page_offset(), data)
                        .is_err()
                    {
                        return BLKIF_RSP_ERROR;
                    }
                    pos += s.len();
                }
                if disk.write(off, &buf).is_err() {
                    return BLKIF_RSP_ERROR;
                }
                if *flush {
                    status(disk.flush())
                } else {
                    BLKIF_RSP_OKAY
                }
            }
            Plan::Flush => status(disk.flush()),
            Plan::Discard {
                offset,
                len,
                secure,
            } => status(disk.discard(*offset, *len, *secure)),
        }
    }

    /// Validate and execute one request slot; the response to push.
    pub fn handle<G: Grants + ?Sized, D: Disk + ?Sized>(
        &self,
        entry: &BlkifSringEntry,
        grants: &mut G,
        disk: &mut D,
    ) -> BlkifResponse {
        match self.plan(&Geometry::of(disk), entry, grants) {
            Ok(v) => v.response(self.execute(&v, grants, disk)),
            Err(r) => r.response(),
        }
    }

    /// Answer up to `budget` requests from `ring` (blkback's `do_block_io_op` loop:
    /// take, handle, respond, push, `RING_FINAL_CHECK_FOR_REQUESTS`). Notify the
    /// frontend when [`Serviced::notify`]; call again when [`Serviced::more`]. A broken
    /// ring (hostile `req_prod`) is reported and stays broken.
    pub fn service<P: SharedPage, G: Grants + ?Sized, D: Disk + ?Sized>(
        &self,
        ring: &mut BlkBackRing<P>,
        grants: &mut G,
        disk: &mut D,
        budget: usize,
    ) -> Result<Serviced, RingError> {
        let mut done = Serviced::default();
        loop {
            ring.poll_requests()?;
            while done.handled < budget {
                let Some(entry) = ring.take_request() else {
                    break;
                };
                let rsp = self.handle(&entry, grants, disk);
                ring.put_response(&rsp)?;
                done.handled += 1;
            }
            done.notify |= ring.push_responses_and_check_notify();
            if done.handled >= budget {
                done.more = ring.poll_requests()? > 0;
                return Ok(done);
            }
            if !ring.final_check_for_requests()? {
                return Ok(done);
            }
        }
    }
}
