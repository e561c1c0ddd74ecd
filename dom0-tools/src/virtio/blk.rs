//! The virtio-blk driver (virtio 1.x §5.2, `linux/virtio_blk.h`) over the legacy
//! transport, with one request queue (queue 0).
//!
//! A request is a chain of: the 16-byte header `virtio_blk_outhdr { type: u32, ioprio:
//! u32, sector: u64 }` (device-readable), the data buffers (device-readable for writes,
//! device-writable for reads and GET_ID), and a 1-byte status (device-writable). The
//! header and status of each request live in a per-descriptor slot of a *scratch*
//! [`DmaRegion`] the driver owns; the rest of the scratch region is the bounce buffer of
//! the synchronous API.
//!
//! Two ways to use it:
//! - asynchronous, for the block backend: [`VirtioBlk::submit`] (any number, each gets a
//!   [`Token`]), [`VirtioBlk::kick`] after a batch, and [`VirtioBlk::complete`] until it
//!   returns `None` (from the interrupt handler, after [`VirtioBlk::ack_interrupt`]);
//! - synchronous, for dom0's own use: [`VirtioBlk::read_sectors`],
//!   [`VirtioBlk::write_sectors`], [`VirtioBlk::flush`], [`VirtioBlk::get_id`], which
//!   submit through the bounce buffer and poll the used ring. Completions of
//!   asynchronous requests seen meanwhile are kept for [`VirtioBlk::complete`].
//!
//! After a device error ([`BlkError::Queue`] with a broken queue, or a transport error)
//! the glue calls [`VirtioBlk::reset`], which stops the device and hands back the tokens
//! that will never complete.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::legacy::{Isr, LegacyTransport, TransportError};
use super::queue::{Buf, Layout, QueueError, Virtqueue};
use super::{features, DmaRegion, PortIo, PAGE_SIZE};

/// Feature bits of virtio-blk (legacy numbering, low 32 bits).
pub mod feature {
    /// `size_max` is valid: largest segment.
    pub const SIZE_MAX: u32 = 1 << 1;
    /// `seg_max` is valid: most data segments per request.
    pub const SEG_MAX: u32 = 1 << 2;
    /// Legacy geometry is valid.
    pub const GEOMETRY: u32 = 1 << 4;
    /// The disk is read-only.
    pub const RO: u32 = 1 << 5;
    /// `blk_size` is valid.
    pub const BLK_SIZE: u32 = 1 << 6;
    /// SCSI passthrough (legacy; never accepted).
    pub const SCSI: u32 = 1 << 7;
    /// The FLUSH command exists (legacy name: WCE: the disk has a write cache).
    pub const FLUSH: u32 = 1 << 9;
    /// Topology information is valid.
    pub const TOPOLOGY: u32 = 1 << 10;
}

/// Device configuration offsets (from [`super::legacy::regs::CONFIG`]).
pub mod config_off {
    /// `capacity: u64`, in 512-byte sectors.
    pub const CAPACITY: u16 = 0;
    /// `size_max: u32`.
    pub const SIZE_MAX: u16 = 8;
    /// `seg_max: u32`.
    pub const SEG_MAX: u16 = 12;
    /// `blk_size: u32`.
    pub const BLK_SIZE: u16 = 20;
}

/// Request types.
pub mod req_type {
    /// Read.
    pub const IN: u32 = 0;
    /// Write.
    pub const OUT: u32 = 1;
    /// Flush the write cache.
    pub const FLUSH: u32 = 4;
    /// Read the 20-byte device ID string.
    pub const GET_ID: u32 = 8;
}

/// Status byte values.
pub mod status_byte {
    /// Success.
    pub const OK: u8 = 0;
    /// I/O error.
    pub const IOERR: u8 = 1;
    /// Unsupported request.
    pub const UNSUPP: u8 = 2;
}

/// Sector size of the request header's `sector` field, whatever `blk_size` is.
pub const SECTOR_SIZE: usize = 512;
/// Length of the GET_ID string.
pub const ID_BYTES: usize = 20;
/// Bytes of scratch per descriptor slot: header at 0, status at [`STATUS_OFF`].
pub const SLOT_SIZE: usize = 32;
/// Offset of the status byte in a slot.
pub const STATUS_OFF: usize = 16;
/// Status byte preset before submission: a device that completes a request without
/// writing the status is caught as [`ReqStatus::Bad`].
pub const STATUS_UNWRITTEN: u8 = 0xff;
/// Request queue index.
pub const REQUEST_QUEUE: u16 = 0;

/// The features the driver accepts when the device offers them.
pub const WANTED_FEATURES: u32 = feature::SIZE_MAX
    | feature::SEG_MAX
    | feature::RO
    | feature::BLK_SIZE
    | feature::FLUSH
    | features::RING_EVENT_IDX;

/// The device configuration, for the accepted features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlkConfig {
    /// Size in 512-byte sectors.
    pub capacity: u64,
    /// Largest data segment in bytes (`VIRTIO_BLK_F_SIZE_MAX`).
    pub size_max: Option<u32>,
    /// Most data segments per request (`VIRTIO_BLK_F_SEG_MAX`).
    pub seg_max: Option<u32>,
    /// Logical block size (`VIRTIO_BLK_F_BLK_SIZE`).
    pub blk_size: Option<u32>,
    /// Read-only disk (`VIRTIO_BLK_F_RO`).
    pub read_only: bool,
    /// FLUSH available: the disk has a write cache (`VIRTIO_BLK_F_FLUSH`).
    pub flush: bool,
}

impl BlkConfig {
    /// Reads the configuration the accepted `features` make valid.
    pub fn read<P: PortIo>(t: &mut LegacyTransport<P>, features: u32) -> BlkConfig {
        let opt = |t: &mut LegacyTransport<P>, bit: u32, off: u16| {
            (features & bit != 0).then(|| t.config_read32(off))
        };
        BlkConfig {
            capacity: t.config_read64(config_off::CAPACITY),
            // A limit of 0 is nonsense: no limit for size_max, one segment (as Linux
            // does) for seg_max.
            size_max: opt(t, feature::SIZE_MAX, config_off::SIZE_MAX).filter(|&m| m != 0),
            seg_max: opt(t, feature::SEG_MAX, config_off::SEG_MAX).map(|m| m.max(1)),
            blk_size: opt(t, feature::BLK_SIZE, config_off::BLK_SIZE),
            read_only: features & feature::RO != 0,
            flush: features & feature::FLUSH != 0,
        }
    }
}

/// What a request asks of the disk. Data buffers are machine addresses (e.g. the
/// granted guest pages the block backend mapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Read into `bufs` from 512-byte sector `sector`; total length a multiple of 512.
    Read {
        /// First sector.
        sector: u64,
        /// Destination buffers.
        bufs: &'a [Segment],
    },
    /// Write `bufs` at 512-byte sector `sector`; total length a multiple of 512.
    Write {
        /// First sector.
        sector: u64,
        /// Source buffers.
        bufs: &'a [Segment],
    },
    /// Flush the disk's write cache (only if [`BlkConfig::flush`]).
    Flush,
    /// Read the device ID string (up to 20 bytes, NUL-padded) into `buf`.
    GetId {
        /// Destination, normally 20 bytes.
        buf: Segment,
    },
}

/// A data buffer by machine address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Machine address of the first byte.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
}

/// The kind of a request, as reported back with its completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqKind {
    /// [`Request::Read`].
    Read,
    /// [`Request::Write`].
    Write,
    /// [`Request::Flush`].
    Flush,
    /// [`Request::GetId`].
    GetId,
}

/// A request in flight. Tokens are small (`index() < queue size`) so the backend can
/// keep its own table; a token is only reused after [`VirtioBlk::complete`] returned it
/// (or [`VirtioBlk::reset`] handed it back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(u16);

impl Token {
    /// An index below the queue size.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// How the device finished a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqStatus {
    /// `VIRTIO_BLK_S_OK`.
    Ok,
    /// `VIRTIO_BLK_S_IOERR`.
    IoErr,
    /// `VIRTIO_BLK_S_UNSUPP`.
    Unsupported,
    /// Any other byte, or none written (0xff): treat as an I/O error.
    Bad(u8),
}

impl ReqStatus {
    /// From the status byte.
    pub fn from_byte(b: u8) -> ReqStatus {
        match b {
            status_byte::OK => ReqStatus::Ok,
            status_byte::IOERR => ReqStatus::IoErr,
            status_byte::UNSUPP => ReqStatus::Unsupported,
            b => ReqStatus::Bad(b),
        }
    }
}

/// A finished request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// What [`VirtioBlk::submit`] returned.
    pub token: Token,
    /// What it was.
    pub kind: ReqKind,
    /// How it ended.
    pub status: ReqStatus,
    /// Bytes the device says it wrote (data + status byte). Untrusted: a hint only.
    pub written: u32,
}

/// What the block driver could not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlkError {
    /// The transport failed (initialisation or a device error).
    Transport(TransportError),
    /// The request queue failed; [`QueueError::Full`] is the only one worth retrying.
    Queue(QueueError),
    /// The device's request queue is smaller than 4 entries.
    QueueTooSmall(u16),
    /// The scratch region is smaller than the slots need.
    ScratchTooSmall {
        /// Bytes needed at least.
        need: usize,
        /// Bytes given.
        have: usize,
    },
    /// A write to a read-only disk.
    ReadOnly,
    /// FLUSH without `VIRTIO_BLK_F_FLUSH` (no write cache: nothing to flush).
    FlushUnsupported,
    /// A data length of 0 or not a multiple of 512 (read/write), or 0 (GET_ID).
    BadLength(u64),
    /// Sectors beyond the end of the disk.
    OutOfRange {
        /// First sector asked.
        sector: u64,
        /// Number of sectors asked.
        count: u64,
        /// Disk size in sectors.
        capacity: u64,
    },
    /// More data segments than the device takes.
    TooManySegments {
        /// Segments given.
        given: usize,
        /// Most allowed.
        max: usize,
    },
    /// A segment larger than `size_max`.
    SegmentTooLarge(u32),
    /// The device limits (`seg_max`, `size_max`, the bounce pages) leave no room for
    /// even one sector.
    UnusableLimits,
    /// A synchronous request ended with this status.
    Io(ReqStatus),
    /// A synchronous request did not complete within the poll limit; it still owns the
    /// bounce buffer until it does.
    Timeout,
    /// The bounce buffer is still owned by a timed-out request.
    BounceBusy,
    /// The scratch region has no bounce buffer (less than 512 bytes after the slots).
    NoBounce,
    /// The device was reset by [`VirtioBlk::reset`]; probe it again.
    Reset,
}

impl From<QueueError> for BlkError {
    fn from(e: QueueError) -> BlkError {
        BlkError::Queue(e)
    }
}

impl From<TransportError> for BlkError {
    fn from(e: TransportError) -> BlkError {
        BlkError::Transport(e)
    }
}

impl fmt::Display for BlkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlkError::Transport(e) => write!(f, "virtio-blk: {e}"),
            BlkError::Queue(e) => write!(f, "virtio-blk: {e}"),
            BlkError::QueueTooSmall(n) => write!(f, "virtio-blk: queue of {n} entries too small"),
            BlkError::ScratchTooSmall { need, have } => {
                write!(f, "virtio-blk: scratch memory {have} bytes, need {need}")
            }
            BlkError::ReadOnly => f.write_str("virtio-blk: disk is read-only"),
            BlkError::FlushUnsupported => f.write_str("virtio-blk: no flush (no write cache)"),
            BlkError::BadLength(n) => write!(f, "virtio-blk: bad data length {n}"),
            BlkError::OutOfRange {
                sector,
                count,
                capacity,
            } => write!(
                f,
                "virtio-blk: sectors {sector}+{count} beyond the end ({capacity})"
            ),
            BlkError::TooManySegments { given, max } => {
                write!(f, "virtio-blk: {given} segments, device takes {max}")
            }
            BlkError::SegmentTooLarge(n) => write!(f, "virtio-blk: segment of {n} bytes too large"),
            BlkError::UnusableLimits => f.write_str("virtio-blk: device limits unusable"),
            BlkError::Io(s) => write!(f, "virtio-blk: request failed: {s:?}"),
            BlkError::Timeout => f.write_str("virtio-blk: request timed out"),
            BlkError::BounceBusy => f.write_str("virtio-blk: bounce buffer busy"),
            BlkError::NoBounce => f.write_str("virtio-blk: no bounce buffer"),
            BlkError::Reset => f.write_str("virtio-blk: device was reset"),
        }
    }
}

/// A virtio-blk device half initialised: features negotiated, configuration and queue
/// size read, waiting for the glue to allocate memory of the sizes it asks for.
#[derive(Debug)]
pub struct BlkProbe<P: PortIo> {
    transport: LegacyTransport<P>,
    features: u32,
    config: BlkConfig,
    queue_size: u16,
}

impl<P: PortIo> BlkProbe<P> {
    /// Reset, ACKNOWLEDGE, DRIVER, accept [`WANTED_FEATURES`], read the configuration
    /// and the request queue's size. On error the device is marked FAILED.
    pub fn new(transport: LegacyTransport<P>) -> Result<BlkProbe<P>, BlkError> {
        BlkProbe::with_features(transport, WANTED_FEATURES)
    }

    /// As [`BlkProbe::new`], accepting only features in `wanted`.
    pub fn with_features(
        mut transport: LegacyTransport<P>,
        wanted: u32,
    ) -> Result<BlkProbe<P>, BlkError> {
        let features = transport.begin_init(wanted)?;
        let config = BlkConfig::read(&mut transport, features);
        let queue_size = transport.queue_size(REQUEST_QUEUE);
        let checked = if queue_size == 0 {
            Err(BlkError::Transport(TransportError::NoQueue(REQUEST_QUEUE)))
        } else if queue_size < 4 {
            Err(BlkError::QueueTooSmall(queue_size))
        } else {
            Layout::legacy(queue_size).map_err(BlkError::Queue)
        };
        if let Err(e) = checked {
            transport.set_failed();
            return Err(e);
        }
        Ok(BlkProbe {
            transport,
            features,
            config,
            queue_size,
        })
    }

    /// The accepted features.
    pub fn features(&self) -> u32 {
        self.features
    }

    /// The device configuration.
    pub fn config(&self) -> &BlkConfig {
        &self.config
    }

    /// The request queue's size, as the device reported it.
    pub fn queue_size(&self) -> u16 {
        self.queue_size
    }

    /// Bytes of page-aligned, machine-contiguous memory the request queue needs.
    pub fn queue_bytes(&self) -> usize {
        Layout::legacy(self.queue_size).map_or(0, |l| l.total)
    }

    /// Bytes of scratch memory for the request slots and a bounce buffer of `bounce`
    /// bytes (0: no synchronous API). Need not be machine-contiguous beyond each page.
    pub fn scratch_bytes(&self, bounce: usize) -> usize {
        slots_bytes(self.queue_size) + bounce
    }

    /// Builds the request queue in `queue_mem`, gives it to the device, sets DRIVER_OK.
    /// `scratch` holds the request slots (see [`BlkProbe::scratch_bytes`]). On error the
    /// device is marked FAILED.
    pub fn start<D: DmaRegion>(
        self,
        queue_mem: D,
        scratch: D,
    ) -> Result<VirtioBlk<P, D>, BlkError> {
        let BlkProbe {
            mut transport,
            features,
            config,
            queue_size,
        } = self;
        let r = (|| {
            let need = slots_bytes(queue_size);
            if scratch.len() < need {
                return Err(BlkError::ScratchTooSmall {
                    need,
                    have: scratch.len(),
                });
            }
            let event_idx = features & features::RING_EVENT_IDX != 0;
            let vq = Virtqueue::new(queue_mem, queue_size, event_idx)?;
            transport.setup_queue(REQUEST_QUEUE, &vq)?;
            transport.driver_ok()?;
            Ok(vq)
        })();
        let vq = match r {
            Ok(vq) => vq,
            Err(e) => {
                transport.set_failed();
                return Err(e);
            }
        };
        let n = usize::from(queue_size);
        Ok(VirtioBlk {
            transport,
            vq,
            scratch,
            features,
            config,
            bounce_off: slots_bytes(queue_size),
            slots: vec![None; n],
            free_tokens: (0..queue_size).rev().collect(),
            stash: VecDeque::new(),
            bounce_busy: false,
            poll_limit: DEFAULT_POLL_LIMIT,
            reset: false,
        })
    }

    /// Gives up: marks the device FAILED and returns the port accessor.
    pub fn fail(mut self) -> P {
        self.transport.set_failed();
        self.transport.into_inner()
    }
}

/// Scratch bytes for one slot per descriptor, rounded up to whole pages.
fn slots_bytes(queue_size: u16) -> usize {
    (usize::from(queue_size) * SLOT_SIZE).div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// Default number of used-ring polls before a synchronous request times out.
pub const DEFAULT_POLL_LIMIT: u64 = 1 << 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Submitted through [`VirtioBlk::submit`]: reported by [`VirtioBlk::complete`].
    Async,
    /// Submitted by the synchronous API, which is waiting for it.
    Sync,
    /// A synchronous request that timed out: dropped on completion, frees the bounce.
    Abandoned,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    kind: ReqKind,
    owner: Owner,
    token: Token,
}

/// A running virtio-blk device.
#[derive(Debug)]
pub struct VirtioBlk<P: PortIo, D: DmaRegion> {
    transport: LegacyTransport<P>,
    vq: Virtqueue<D>,
    scratch: D,
    features: u32,
    config: BlkConfig,
    bounce_off: usize,
    /// Per head descriptor: the request it heads (header and status live in the
    /// scratch slot of the same index).
    slots: Vec<Option<Pending>>,
    /// Tokens not in use. A token is live from submission until its completion is
    /// delivered, which may be after its descriptors were reused (stashed completions).
    free_tokens: Vec<u16>,
    /// Completions of asynchronous requests seen by the synchronous API.
    stash: VecDeque<Completion>,
    bounce_busy: bool,
    poll_limit: u64,
    reset: bool,
}

impl<P: PortIo, D: DmaRegion> VirtioBlk<P, D> {
    /// The device configuration.
    pub fn config(&self) -> &BlkConfig {
        &self.config
    }

    /// The accepted features.
    pub fn features(&self) -> u32 {
        self.features
    }

    /// Disk size in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.config.capacity
    }

    /// The request queue's size: tokens are below it.
    pub fn queue_size(&self) -> u16 {
        self.vq.size()
    }

    /// Requests submitted and not yet completed (including completions kept for
    /// [`VirtioBlk::complete`]).
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count() + self.stash.len()
    }

    /// The request queue (for inspection).
    pub fn queue(&self) -> &Virtqueue<D> {
        &self.vq
    }

    /// Number of used-ring polls before a synchronous request gives up.
    pub fn set_poll_limit(&mut self, polls: u64) {
        self.poll_limit = polls;
    }

    /// Reads (and so acknowledges) the ISR: call from the interrupt handler, then
    /// [`VirtioBlk::complete`] until `None`.
    pub fn ack_interrupt(&mut self) -> Isr {
        self.transport.read_isr()
    }

    /// Asks the device not to interrupt (polling).
    pub fn disable_interrupts(&mut self) {
        self.vq.disable_interrupts();
    }

    /// Asks the device to interrupt; `true` if completions are already waiting.
    pub fn enable_interrupts(&mut self) -> bool {
        self.vq.enable_interrupts() || !self.stash.is_empty()
    }

    /// Re-reads the capacity (after an ISR configuration-change interrupt).
    pub fn refresh_capacity(&mut self) -> u64 {
        self.config.capacity = self.transport.config_read64(config_off::CAPACITY);
        self.config.capacity
    }

    fn check_live(&self) -> Result<(), BlkError> {
        if self.reset {
            return Err(BlkError::Reset);
        }
        if self.vq.is_broken() {
            return Err(BlkError::Queue(QueueError::Broken));
        }
        Ok(())
    }

    fn check_data(&self, sector: u64, bufs: &[Segment]) -> Result<(), BlkError> {
        let total: u64 = bufs.iter().map(|s| u64::from(s.len)).sum();
        if total == 0
            || !total.is_multiple_of(SECTOR_SIZE as u64)
            || bufs.iter().any(|s| s.len == 0)
        {
            return Err(BlkError::BadLength(total));
        }
        let count = total / SECTOR_SIZE as u64;
        let capacity = self.config.capacity;
        if sector.checked_add(count).is_none_or(|end| end > capacity) {
            return Err(BlkError::OutOfRange {
                sector,
                count,
                capacity,
            });
        }
        let max = self.max_segments();
        if bufs.len() > max {
            return Err(BlkError::TooManySegments {
                given: bufs.len(),
                max,
            });
        }
        if let Some(sm) = self.config.size_max {
            if let Some(s) = bufs.iter().find(|s| s.len > sm) {
                return Err(BlkError::SegmentTooLarge(s.len));
            }
        }
        Ok(())
    }

    /// Most data segments one request may have: `seg_max` if the device set it, and
    /// the queue size less header and status.
    pub fn max_segments(&self) -> usize {
        let ring = usize::from(self.vq.size()) - 2;
        match self.config.seg_max {
            Some(m) => ring.min(usize::try_from(m).unwrap_or(usize::MAX)),
            None => ring,
        }
    }

    /// Adds a request to the queue and returns its token. The device is not notified
    /// until [`VirtioBlk::kick`]. `Err(Queue(Full))`: retry after completions.
    pub fn submit(&mut self, req: &Request<'_>) -> Result<Token, BlkError> {
        self.submit_as(req, Owner::Async)
    }

    fn submit_as(&mut self, req: &Request<'_>, owner: Owner) -> Result<Token, BlkError> {
        self.check_live()?;
        let (kind, ty, sector, data, writable): (_, _, _, &[Segment], _) = match *req {
            Request::Read { sector, bufs } => {
                self.check_data(sector, bufs)?;
                (ReqKind::Read, req_type::IN, sector, bufs, true)
            }
            Request::Write { sector, bufs } => {
                if self.config.read_only {
                    return Err(BlkError::ReadOnly);
                }
                self.check_data(sector, bufs)?;
                (ReqKind::Write, req_type::OUT, sector, bufs, false)
            }
            Request::Flush => {
                if !self.config.flush {
                    return Err(BlkError::FlushUnsupported);
                }
                (ReqKind::Flush, req_type::FLUSH, 0, &[], false)
            }
            Request::GetId { ref buf } => {
                if buf.len == 0 {
                    return Err(BlkError::BadLength(0));
                }
                (
                    ReqKind::GetId,
                    req_type::GET_ID,
                    0,
                    core::slice::from_ref(buf),
                    true,
                )
            }
        };
        let need = data.len() + 2;
        if need > usize::from(self.vq.num_free()) {
            return Err(BlkError::Queue(if need > usize::from(self.vq.size()) {
                QueueError::ChainTooLong(need)
            } else {
                QueueError::Full
            }));
        }
        if self.free_tokens.is_empty() {
            // Every token is held by an undelivered completion: deliver some first.
            return Err(BlkError::Queue(QueueError::Full));
        }
        // The head is the first free descriptor: its slot holds header and status.
        let head = self.peek_head()?;
        let slot = usize::from(head) * SLOT_SIZE;
        let mut hdr = [0u8; 16];
        hdr[0..4].copy_from_slice(&ty.to_le_bytes());
        hdr[8..16].copy_from_slice(&sector.to_le_bytes());
        self.scratch.write(slot, &hdr);
        self.scratch.write(slot + STATUS_OFF, &[STATUS_UNWRITTEN]);
        let mut chain = Vec::with_capacity(need);
        chain.push(Buf {
            addr: self.scratch.machine_addr(slot),
            len: 16,
            writable: false,
        });
        chain.extend(data.iter().map(|s| Buf {
            addr: s.addr,
            len: s.len,
            writable,
        }));
        chain.push(Buf {
            addr: self.scratch.machine_addr(slot + STATUS_OFF),
            len: 1,
            writable: true,
        });
        let got = self.vq.add(&chain)?;
        debug_assert_eq!(got, head);
        let token = Token(self.free_tokens.pop().unwrap_or(0));
        if let Some(s) = self.slots.get_mut(usize::from(got)) {
            *s = Some(Pending { kind, owner, token });
        }
        Ok(token)
    }

    /// The head the next [`Virtqueue::add`] will use: the free list's first entry,
    /// learnt by asking the queue.
    fn peek_head(&self) -> Result<u16, BlkError> {
        self.vq
            .peek_free_head()
            .ok_or(BlkError::Queue(QueueError::Full))
    }

    /// Notifies the device of the requests submitted since the last kick, if it wants.
    pub fn kick(&mut self) {
        if self.vq.should_notify() {
            self.transport.notify(REQUEST_QUEUE);
        }
    }

    /// Takes one finished request off the used ring (or the ones the synchronous API
    /// saw meanwhile). `Ok(None)`: nothing finished yet.
    pub fn complete(&mut self) -> Result<Option<Completion>, BlkError> {
        if let Some(c) = self.stash.pop_front() {
            self.free_tokens.push(c.token.0);
            return Ok(Some(c));
        }
        loop {
            match self.reap()? {
                None => return Ok(None),
                Some((c, Owner::Async)) => {
                    self.free_tokens.push(c.token.0);
                    return Ok(Some(c));
                }
                // A synchronous request is only reaped here after it timed out.
                Some((_, _)) => {}
            }
        }
    }

    /// Pops one used entry and turns it into a completion.
    fn reap(&mut self) -> Result<Option<(Completion, Owner)>, BlkError> {
        self.check_live()?;
        let Some(used) = self.vq.pop_used()? else {
            return Ok(None);
        };
        let Some(p) = self
            .slots
            .get_mut(usize::from(used.head))
            .and_then(Option::take)
        else {
            // The queue only returns heads of chains in flight, which all have a slot.
            return Ok(None);
        };
        let mut b = [0u8; 1];
        self.scratch
            .read(usize::from(used.head) * SLOT_SIZE + STATUS_OFF, &mut b);
        if p.owner == Owner::Abandoned {
            self.bounce_busy = false;
            self.free_tokens.push(p.token.0);
        }
        Ok(Some((
            Completion {
                token: p.token,
                kind: p.kind,
                status: ReqStatus::from_byte(b[0]),
                written: used.len,
            },
            p.owner,
        )))
    }

    /// Polls until `token` completes, keeping other completions for [`Self::complete`].
    fn wait(&mut self, token: Token) -> Result<Completion, BlkError> {
        let mut polls = 0u64;
        loop {
            match self.reap()? {
                Some((c, _)) if c.token == token => {
                    self.free_tokens.push(token.0);
                    return Ok(c);
                }
                Some((c, Owner::Async)) => self.stash.push_back(c),
                Some(_) => {}
                None => {
                    polls += 1;
                    if polls >= self.poll_limit {
                        for p in self.slots.iter_mut().flatten() {
                            if p.token == token {
                                p.owner = Owner::Abandoned;
                            }
                        }
                        self.bounce_busy = true;
                        return Err(BlkError::Timeout);
                    }
                    core::hint::spin_loop();
                }
            }
        }
    }

    /// If a timed-out request still owns the bounce buffer, takes whatever completed off
    /// the used ring (keeping asynchronous completions) to see whether it is done.
    fn reap_abandoned(&mut self) -> Result<(), BlkError> {
        while self.bounce_busy {
            match self.reap()? {
                None => break,
                Some((c, Owner::Async)) => self.stash.push_back(c),
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn sync_request(&mut self, req: &Request<'_>) -> Result<Completion, BlkError> {
        let t = self.submit_as(req, Owner::Sync)?;
        self.kick();
        let c = self.wait(t)?;
        match c.status {
            ReqStatus::Ok => Ok(c),
            s => Err(BlkError::Io(s)),
        }
    }

    fn bounce_len(&self) -> usize {
        self.scratch.len().saturating_sub(self.bounce_off)
    }

    /// Segments covering the start of the bounce buffer, for up to `want` bytes
    /// (a multiple of 512), within the device's limits. Returns them and the bytes they
    /// cover (a non-zero multiple of 512).
    fn bounce_segments(&mut self, want: usize) -> Result<(Vec<Segment>, usize), BlkError> {
        self.reap_abandoned()?;
        if self.bounce_busy {
            return Err(BlkError::BounceBusy);
        }
        let avail = self.bounce_len() / SECTOR_SIZE * SECTOR_SIZE;
        if avail == 0 {
            return Err(BlkError::NoBounce);
        }
        let want = want.min(avail);
        let max_segs = self.max_segments();
        let seg_cap = self.config.size_max.unwrap_or(u32::MAX).max(1);
        let mut segs: Vec<Segment> = Vec::new();
        let mut pos = 0usize;
        while pos < want {
            let off = self.bounce_off + pos;
            // Up to the end of this page: machine addresses are contiguous within it.
            let in_page = (PAGE_SIZE - off % PAGE_SIZE).min(want - pos);
            let addr = self.scratch.machine_addr(off);
            let mut take = in_page as u32;
            match segs.last_mut() {
                Some(last)
                    if last.addr.wrapping_add(u64::from(last.len)) == addr
                        && last.len < seg_cap =>
                {
                    take = take.min(seg_cap - last.len);
                    last.len += take;
                }
                _ => {
                    if segs.len() == max_segs {
                        break;
                    }
                    take = take.min(seg_cap);
                    segs.push(Segment { addr, len: take });
                }
            }
            pos += take as usize;
        }
        // Trim to whole sectors.
        let covered = pos / SECTOR_SIZE * SECTOR_SIZE;
        let mut excess = pos - covered;
        while excess > 0 {
            let Some(last) = segs.last_mut() else { break };
            let cut = (last.len as usize).min(excess);
            last.len -= cut as u32;
            excess -= cut;
            if last.len == 0 {
                segs.pop();
            }
        }
        if covered == 0 {
            return Err(BlkError::UnusableLimits);
        }
        Ok((segs, covered))
    }

    fn check_range(&self, sector: u64, len: usize) -> Result<(), BlkError> {
        if len == 0 || !len.is_multiple_of(SECTOR_SIZE) {
            return Err(BlkError::BadLength(len as u64));
        }
        let count = (len / SECTOR_SIZE) as u64;
        let capacity = self.config.capacity;
        if sector.checked_add(count).is_none_or(|end| end > capacity) {
            return Err(BlkError::OutOfRange {
                sector,
                count,
                capacity,
            });
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes (a multiple of 512) from 512-byte sector `sector`,
    /// through the bounce buffer, polling for completion.
    pub fn read_sectors(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        self.check_live()?;
        self.check_range(sector, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let (segs, n) = self.bounce_segments(buf.len() - done)?;
            let s = sector + (done / SECTOR_SIZE) as u64;
            self.sync_request(&Request::Read {
                sector: s,
                bufs: &segs,
            })?;
            self.scratch.read(self.bounce_off, &mut buf[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Writes `buf` (a multiple of 512 bytes) at 512-byte sector `sector`, through the
    /// bounce buffer, polling for completion. Data may sit in the disk's write cache
    /// until [`VirtioBlk::flush`].
    pub fn write_sectors(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlkError> {
        self.check_live()?;
        if self.config.read_only {
            return Err(BlkError::ReadOnly);
        }
        self.check_range(sector, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let (segs, n) = self.bounce_segments(buf.len() - done)?;
            self.scratch.write(self.bounce_off, &buf[done..done + n]);
            let s = sector + (done / SECTOR_SIZE) as u64;
            self.sync_request(&Request::Write {
                sector: s,
                bufs: &segs,
            })?;
            done += n;
        }
        Ok(())
    }

    /// Flushes the disk's write cache, polling for completion. Without
    /// `VIRTIO_BLK_F_FLUSH` the disk has no write cache and this does nothing.
    pub fn flush(&mut self) -> Result<(), BlkError> {
        self.check_live()?;
        if !self.config.flush {
            return Ok(());
        }
        self.sync_request(&Request::Flush).map(|_| ())
    }

    /// The device ID string (serial number), NUL-padded, polling for completion.
    pub fn get_id(&mut self) -> Result<[u8; ID_BYTES], BlkError> {
        self.check_live()?;
        self.reap_abandoned()?;
        if self.bounce_busy {
            return Err(BlkError::BounceBusy);
        }
        if self.bounce_len() < ID_BYTES {
            return Err(BlkError::NoBounce);
        }
        // Within one page, so one segment.
        let off = self.bounce_off;
        self.scratch.write(off, &[0; ID_BYTES]);
        let seg = Segment {
            addr: self.scratch.machine_addr(off),
            len: ID_BYTES as u32,
        };
        self.sync_request(&Request::GetId { buf: seg })?;
        let mut id = [0u8; ID_BYTES];
        self.scratch.read(off, &mut id);
        Ok(id)
    }

    /// Resets the device (it stops all DMA), retires this driver instance, and returns the tokens of asynchronous requests that will never
    /// complete (ascending). Completions already taken off the ring are still returned by
    /// [`VirtioBlk::complete`]; every other call then fails with [`BlkError::Reset`].
    /// Probe the device again to use it.
    pub fn reset(&mut self) -> Vec<Token> {
        // Even if the status does not read back 0, forget everything: the device is
        // no longer driven by this instance.
        let _ = self.transport.reset();
        let heads = self.vq.reset();
        let mut lost = Vec::new();
        for h in heads {
            if let Some(Some(p)) = self.slots.get_mut(usize::from(h)).map(Option::take) {
                if p.owner == Owner::Async {
                    lost.push(p.token);
                }
                self.free_tokens.push(p.token.0);
            }
        }
        self.slots.iter_mut().for_each(|s| *s = None);
        lost.sort();
        self.bounce_busy = false;
        self.reset = true;
        lost
    }

    /// Stops driving the device (reset) and gives the port accessor and memory back.
    pub fn into_parts(mut self) -> (P, D, D) {
        let _ = self.transport.reset();
        (
            self.transport.into_inner(),
            self.vq.into_region(),
            self.scratch,
        )
    }
}
