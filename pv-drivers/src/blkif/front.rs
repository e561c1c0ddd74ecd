//! blkfront's core: request ids, building requests, matching responses.
//!
//! The caller's I/O buffer is a run of 4 KiB pages starting `buf_page_offset` bytes into
//! its first page. [`Frontend::plan_io`] splits a disk byte range into [`IoChunk`]s, each
//! one request: a run of segments, one per buffer page (or part of one), at most 11
//! ([`BLKIF_MAX_SEGMENTS_PER_REQUEST`]), or up to the negotiated indirect maximum when
//! the backend offers `feature-max-indirect-segments` (then a chunk of more than 11
//! segments becomes a `BLKIF_OP_INDIRECT` request). The caller grants each page a chunk
//! names and calls [`Frontend::start_io`], which allocates an id and builds the slot
//! bytes ([`Submission`]); for an indirect request it also fills the indirect pages
//! ([`Submission::fill_indirect_page`]) the caller granted, before pushing the slot.
//!
//! Addressing is Linux blkfront's: `sector_number` and `first_sect`/`last_sect` are in
//! 512-byte units; offsets, lengths and the buffer's in-page offset must be multiples of
//! the backend's logical `sector-size`.
//!
//! [`Frontend::complete`] matches a response to its request by id. Ids are slot indices
//! `0..ring size` from a free list, so at most a ring's worth of requests are in flight
//! and a started request always finds a free ring slot. A response with an id that is out
//! of range, not in flight (a duplicate), or with the wrong operation is reported as a
//! [`FrontError`], never a panic.

use alloc::vec::Vec;

use xen_abi::grant_table::GrantRef;
use xen_abi::io::blkif::{
    indirect_pages, BlkifRequest, BlkifRequestDiscard, BlkifRequestIndirect, BlkifRequestSegment,
    BlkifResponse, BlkifSringEntry, BlkifVdev, BLKIF_DISCARD_SECURE, BLKIF_MAX_INDIRECT_SEGMENTS,
    BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT,
    BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_OKAY, BLKIF_SECTOR_SIZE,
    BLKIF_SEGS_PER_INDIRECT_FRAME,
};
use xen_abi::io::ring::XEN_PAGE_SIZE;
use xen_abi::wire::{Opaque, Wire};

use super::xenbus::BackendInfo;

/// Why the frontend refused a call or a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontError {
    /// The backend's `sector-size` is not a power of two in 512..=4096.
    BadSectorSize(u32),
    /// The ring has no entries.
    NoRing,
    /// Every id is in flight: wait for a response.
    Busy,
    /// A zero-length transfer.
    Empty,
    /// Offset, length or buffer offset not a multiple of the logical sector size.
    Unaligned,
    /// The range ends past the disk (or overflows).
    OutOfRange,
    /// A write to a read-only disk.
    ReadOnly,
    /// The backend does not offer this operation (flush, discard).
    Unsupported,
    /// A chunk this frontend cannot send (too many or no segments, or not one of its own).
    BadChunk,
    /// The number of grant references given does not match the chunk.
    GrantCount { expected: usize, got: usize },
    /// A response whose id was never a valid id.
    UnknownId(u64),
    /// A response for an id not in flight (a duplicate or stale response).
    DuplicateId(u64),
    /// A response whose operation is not its request's (the request stays in flight).
    WrongOperation { id: u64, expected: u8, got: u8 },
}

/// One segment of a chunk: sectors `first_sect..=last_sect` of buffer page `page`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentPlan {
    /// Page index in the caller's buffer (0 is the page holding its first byte).
    pub page: usize,
    /// First 512-byte sector in the page (inclusive).
    pub first_sect: u8,
    /// Last 512-byte sector in the page (inclusive).
    pub last_sect: u8,
}

impl SegmentPlan {
    /// Byte offset in the page.
    pub fn page_offset(&self) -> usize {
        usize::from(self.first_sect) * BLKIF_SECTOR_SIZE
    }
    /// Bytes.
    pub fn len(&self) -> usize {
        (usize::from(self.last_sect) + 1 - usize::from(self.first_sect)) * BLKIF_SECTOR_SIZE
    }
    /// Never true for a planned segment.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One request's worth of a transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoChunk {
    /// Write (else read).
    pub write: bool,
    /// Start on the disk, in 512-byte sectors.
    pub sector_number: u64,
    /// Start of this chunk in the caller's buffer, in bytes from the buffer's first byte.
    pub buf_offset: usize,
    /// Bytes.
    pub len: usize,
    /// The segments, in order (contiguous in the buffer and on the disk).
    pub segments: Vec<SegmentPlan>,
}

impl IoChunk {
    /// Whether this chunk goes as a `BLKIF_OP_INDIRECT` request.
    pub fn is_indirect(&self) -> bool {
        self.segments.len() > BLKIF_MAX_SEGMENTS_PER_REQUEST
    }
    /// Indirect pages the caller must grant for it (0 for a direct request).
    pub fn indirect_pages(&self) -> usize {
        if self.is_indirect() {
            indirect_pages(self.segments.len())
        } else {
            0
        }
    }
}

/// A request ready to be put on the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    /// Its id.
    pub id: u64,
    /// The slot bytes to put on the ring ([`BlkFrontRing::put_request`]).
    ///
    /// [`BlkFrontRing::put_request`]: crate::ring::FrontRing::put_request
    pub entry: BlkifSringEntry,
    /// For an indirect request, all its segments (to be written to the indirect pages
    /// with [`fill_indirect_page`](Self::fill_indirect_page) before the slot is pushed).
    pub indirect_segments: Vec<BlkifRequestSegment>,
}

impl Submission {
    /// Number of indirect pages (0 for a direct request).
    pub fn indirect_pages(&self) -> usize {
        indirect_pages(self.indirect_segments.len())
    }

    /// Encode indirect page `index` into `page` (at least 4096 bytes; the unused tail
    /// is zeroed). Does nothing for an index past the last page.
    pub fn fill_indirect_page(&self, index: usize, page: &mut [u8]) {
        let Some(page) = page.get_mut(..XEN_PAGE_SIZE) else {
            return;
        };
        page.fill(0);
        let segs = self
            .indirect_segments
            .chunks(BLKIF_SEGS_PER_INDIRECT_FRAME)
            .nth(index)
            .unwrap_or(&[]);
        for (s, out) in segs.iter().zip(page.chunks_exact_mut(8)) {
            s.put(out);
        }
    }
}

/// A finished request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion<T> {
    /// Its id (now free again).
    pub id: u64,
    /// The response's operation.
    pub operation: u8,
    /// `BLKIF_RSP_*` as the backend sent it.
    pub status: i16,
    /// What the caller attached when starting it.
    pub token: T,
}

impl<T> Completion<T> {
    /// `BLKIF_RSP_OKAY`.
    pub fn is_ok(&self) -> bool {
        self.status == BLKIF_RSP_OKAY
    }
}

#[derive(Debug)]
struct InFlight<T> {
    /// The operation the response must carry (`indirect_op` for indirect requests).
    operation: u8,
    indirect: bool,
    token: T,
}

/// blkfront's protocol logic for one ring. `T` is what the caller attaches to each
/// request (a buffer handle, the grants to end) and gets back on completion.
#[derive(Debug)]
pub struct Frontend<T> {
    info: BackendInfo,
    handle: BlkifVdev,
    max_segments: usize,
    slots: Vec<Option<InFlight<T>>>,
    free: Vec<u32>,
}

impl<T> Frontend<T> {
    /// A frontend for a backend that announced `info`, device `handle` (the
    /// `virtual-device` number), over a ring of `ring_size` entries, using at most
    /// `max_indirect` segments per indirect request (Linux's `max_indirect_segments`
    /// module parameter; 0 never uses indirect requests).
    pub fn new(
        info: BackendInfo,
        handle: BlkifVdev,
        ring_size: u32,
        max_indirect: u32,
    ) -> Result<Self, FrontError> {
        let ss = info.sector_size as usize;
        if !ss.is_power_of_two() || !(BLKIF_SECTOR_SIZE..=XEN_PAGE_SIZE).contains(&ss) {
            return Err(FrontError::BadSectorSize(info.sector_size));
        }
        if ring_size == 0 {
            return Err(FrontError::NoRing);
        }
        let indirect = (info.max_indirect_segments.min(max_indirect) as usize)
            .min(BLKIF_MAX_INDIRECT_SEGMENTS);
        let max_segments = indirect.max(BLKIF_MAX_SEGMENTS_PER_REQUEST);
        Ok(Self {
            info,
            handle,
            max_segments,
            slots: (0..ring_size).map(|_| None).collect(),
            // Pop from the end: hand out 0 first.
            free: (0..ring_size).rev().collect(),
        })
    }

    /// What the backend announced.
    pub fn info(&self) -> &BackendInfo {
        &self.info
    }
    /// Most segments in one request (11, or the negotiated indirect maximum).
    pub fn max_segments(&self) -> usize {
        self.max_segments
    }
    /// Whether requests of more than 11 segments go as indirect requests.
    pub fn uses_indirect(&self) -> bool {
        self.max_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST
    }
    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }
    /// Ids free.
    pub fn free_ids(&self) -> usize {
        self.free.len()
    }

    /// Split a transfer of `len` bytes at disk byte `offset`, to or from a buffer that
    /// starts `buf_page_offset` bytes into its first page, into requests.
    pub fn plan_io(
        &self,
        write: bool,
        offset: u64,
        len: usize,
        buf_page_offset: usize,
    ) -> Result<Vec<IoChunk>, FrontError> {
        if write && self.info.read_only() {
            return Err(FrontError::ReadOnly);
        }
        if len == 0 {
            return Err(FrontError::Empty);
        }
        let ss = self.info.sector_size as usize;
        if !offset.is_multiple_of(ss as u64)
            || !len.is_multiple_of(ss)
            || !buf_page_offset.is_multiple_of(ss)
        {
            return Err(FrontError::Unaligned);
        }
        if buf_page_offset >= XEN_PAGE_SIZE {
            return Err(FrontError::Unaligned);
        }
        let end = offset
            .checked_add(len as u64)
            .ok_or(FrontError::OutOfRange)?;
        let cap = self.info.sectors.saturating_mul(BLKIF_SECTOR_SIZE as u64);
        if end > cap {
            return Err(FrontError::OutOfRange);
        }
        let mut chunks: Vec<IoChunk> = Vec::new();
        let mut pos = 0usize; // bytes of the buffer done
        let mut in_page = buf_page_offset;
        let mut page = 0usize;
        while pos < len {
            let n = (XEN_PAGE_SIZE - in_page).min(len - pos);
            let seg = SegmentPlan {
                page,
                first_sect: (in_page / BLKIF_SECTOR_SIZE) as u8,
                last_sect: ((in_page + n) / BLKIF_SECTOR_SIZE - 1) as u8,
            };
            match chunks.last_mut() {
                Some(c) if c.segments.len() < self.max_segments => {
                    c.segments.push(seg);
                    c.len += n;
                }
                _ => chunks.push(IoChunk {
                    write,
                    sector_number: (offset + pos as u64) / BLKIF_SECTOR_SIZE as u64,
                    buf_offset: pos,
                    len: n,
                    segments: alloc::vec![seg],
                }),
            }
            pos += n;
            in_page = 0;
            page += 1;
        }
        Ok(chunks)
    }

    fn alloc(&mut self, operation: u8, indirect: bool, token: T) -> Result<u64, FrontError> {
        let id = self.free.pop().ok_or(FrontError::Busy)?;
        // Every free id is < slots.len().
        if let Some(slot) = self.slots.get_mut(id as usize) {
            *slot = Some(InFlight {
                operation,
                indirect,
                token,
            });
        }
        Ok(u64::from(id))
    }

    /// Start the request for `chunk` (from [`plan_io`](Self::plan_io)): `grefs` grants
    /// the buffer page of each segment, `indirect_grefs` the chunk's indirect pages.
    pub fn start_io(
        &mut self,
        chunk: &IoChunk,
        grefs: &[GrantRef],
        indirect_grefs: &[GrantRef],
        token: T,
    ) -> Result<Submission, FrontError> {
        let n = chunk.segments.len();
        if n == 0 || n > self.max_segments {
            return Err(FrontError::BadChunk);
        }
        if chunk.write && self.info.read_only() {
            return Err(FrontError::ReadOnly);
        }
        if grefs.len() != n {
            return Err(FrontError::GrantCount {
                expected: n,
                got: grefs.len(),
            });
        }
        if indirect_grefs.len() != chunk.indirect_pages() {
            return Err(FrontError::GrantCount {
                expected: chunk.indirect_pages(),
                got: indirect_grefs.len(),
            });
        }
        let op = if chunk.write {
            BLKIF_OP_WRITE
        } else {
            BLKIF_OP_READ
        };
        let segs = chunk
            .segments
            .iter()
            .zip(grefs)
            .map(|(s, &gref)| BlkifRequestSegment {
                gref,
                first_sect: s.first_sect,
                last_sect: s.last_sect,
                _pad: 0,
            });
        if chunk.is_indirect() {
            let id = self.alloc(op, true, token)?;
            let mut r = BlkifRequestIndirect {
                operation: BLKIF_OP_INDIRECT,
                indirect_op: op,
                nr_segments: n as u16, // n <= 4096
                id,
                sector_number: chunk.sector_number,
                handle: self.handle,
                ..Default::default()
            };
            for (d, s) in r.indirect_grefs.iter_mut().zip(indirect_grefs) {
                *d = *s;
            }
            Ok(Submission {
                id,
                entry: Opaque::of(&r),
                indirect_segments: segs.collect(),
            })
        } else {
            let id = self.alloc(op, false, token)?;
            let mut r = BlkifRequest {
                operation: op,
                nr_segments: n as u8, // n <= 11
                handle: self.handle,
                id,
                sector_number: chunk.sector_number,
                ..Default::default()
            };
            for (d, s) in r.seg.iter_mut().zip(segs) {
                *d = s;
            }
            Ok(Submission {
                id,
                entry: Opaque::of(&r),
                indirect_segments: Vec::new(),
            })
        }
    }

    /// The cache-flush operation the backend offers: `BLKIF_OP_FLUSH_DISKCACHE` if
    /// `feature-flush-cache`, else `BLKIF_OP_WRITE_BARRIER` if `feature-barrier` (as
    /// Linux's blkfront chooses), else none.
    pub fn flush_op(&self) -> Option<u8> {
        if self.info.feature_flush_cache {
            Some(BLKIF_OP_FLUSH_DISKCACHE)
        } else if self.info.feature_barrier {
            Some(BLKIF_OP_WRITE_BARRIER)
        } else {
            None
        }
    }

    /// Start a cache flush (no data): answered once everything written before is
    /// durable.
    pub fn start_flush(&mut self, token: T) -> Result<Submission, FrontError> {
        let op = self.flush_op().ok_or(FrontError::Unsupported)?;
        let id = self.alloc(op, false, token)?;
        let r = BlkifRequest {
            operation: op,
            nr_segments: 0,
            handle: self.handle,
            id,
            ..Default::default()
        };
        Ok(Submission {
            id,
            entry: Opaque::of(&r),
            indirect_segments: Vec::new(),
        })
    }

    /// Start a discard of `len` bytes at disk byte `offset` (`feature-discard`).
    pub fn start_discard(
        &mut self,
        offset: u64,
        len: u64,
        secure: bool,
        token: T,
    ) -> Result<Submission, FrontError> {
        if !self.info.feature_discard {
            return Err(FrontError::Unsupported);
        }
        if self.info.read_only() {
            return Err(FrontError::ReadOnly);
        }
        let ss = u64::from(self.info.sector_size);
        if len == 0 {
            return Err(FrontError::Empty);
        }
        if !offset.is_multiple_of(ss) || !len.is_multiple_of(ss) {
            return Err(FrontError::Unaligned);
        }
        let end = offset.checked_add(len).ok_or(FrontError::OutOfRange)?;
        if end / BLKIF_SECTOR_SIZE as u64 > self.info.sectors {
            return Err(FrontError::OutOfRange);
        }
        let id = self.alloc(BLKIF_OP_DISCARD, false, token)?;
        let r = BlkifRequestDiscard {
            operation: BLKIF_OP_DISCARD,
            flag: if secure && self.info.discard_secure {
                BLKIF_DISCARD_SECURE
            } else {
                0
            },
            handle: self.handle,
            id,
            sector_number: offset / BLKIF_SECTOR_SIZE as u64,
            nr_sectors: len / BLKIF_SECTOR_SIZE as u64,
            ..Default::default()
        };
        Ok(Submission {
            id,
            entry: Opaque::of(&r),
            indirect_segments: Vec::new(),
        })
    }

    /// Give back a started request that was never put on the ring.
    pub fn cancel(&mut self, id: u64) -> Option<T> {
        let idx = u32::try_from(id).ok()?;
        let f = self.slots.get_mut(idx as usize)?.take()?;
        self.free.push(idx);
        Some(f.token)
    }

    /// Match a response (copied out of the ring) to its request and free its id.
    pub fn complete(&mut self, rsp: &BlkifResponse) -> Result<Completion<T>, FrontError> {
        let id = rsp.id;
        let idx = u32::try_from(id)
            .ok()
            .filter(|&i| (i as usize) < self.slots.len())
            .ok_or(FrontError::UnknownId(id))?;
        let slot = self
            .slots
            .get_mut(idx as usize)
            .ok_or(FrontError::UnknownId(id))?;
        let f = slot.as_ref().ok_or(FrontError::DuplicateId(id))?;
        let op_ok =
            rsp.operation == f.operation || (f.indirect && rsp.operation == BLKIF_OP_INDIRECT);
        if !op_ok {
            return Err(FrontError::WrongOperation {
                id,
                expected: f.operation,
                got: rsp.operation,
            });
        }
        let f = slot.take().ok_or(FrontError::DuplicateId(id))?;
        self.free.push(idx);
        Ok(Completion {
            id,
            operation: rsp.operation,
            status: rsp.status,
            token: f.token,
        })
    }
}
