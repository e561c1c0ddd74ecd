//! `xen/io/blkif.h`: the split block device's ring entries and constants.
//!
//! # Sector units
//! `sector_number` (in every request kind), `nr_sectors` (discard) and a segment's
//! `first_sect`/`last_sect` are always counted in **512-byte** sectors
//! ([`BLKIF_SECTOR_SIZE`]), whatever logical block size the backend announces in its
//! `sector-size` node, as Linux's blkfront and blkback do. A segment addresses sectors
//! `first_sect..=last_sect` of one 4 KiB granted frame, so both are at most
//! [`BLKIF_SECTORS_PER_PAGE`]` - 1` = 7.
//!
//! # The request union
//! A ring slot holds a `union { blkif_request; blkif_response }`, and a request's bytes
//! are read as `blkif_request`, `blkif_request_discard` or `blkif_request_indirect`
//! depending on `operation` (the first byte of each). This crate has no Rust unions: each
//! variant is its own `#[repr(C)]` struct with the C layout, all implementing
//! [`Wire`](crate::wire::Wire), and a slot is [`BLKIF_SRING_ENTRY_SIZE`] bytes that are
//! decoded with the variant `operation` selects. Every variant fits in a slot.

use crate::grant_table::GrantRef;
use crate::io::ring::{ring_size, RingIdx, XEN_PAGE_SIZE};
use crate::wire::{wire, Opaque};

/// `blkif_vdev_t`.
pub type BlkifVdev = u16;
/// `blkif_sector_t`: a sector index in 512-byte units.
pub type BlkifSector = u64;

/// `BLKIF_OP_READ`.
pub const BLKIF_OP_READ: u8 = 0;
/// `BLKIF_OP_WRITE`.
pub const BLKIF_OP_WRITE: u8 = 1;
/// `BLKIF_OP_WRITE_BARRIER` (optional, `feature-barrier`).
pub const BLKIF_OP_WRITE_BARRIER: u8 = 2;
/// `BLKIF_OP_FLUSH_DISKCACHE` (optional, `feature-flush-cache`).
pub const BLKIF_OP_FLUSH_DISKCACHE: u8 = 3;
/// `BLKIF_OP_RESERVED_1` (SLES device-specific packets; never valid here).
pub const BLKIF_OP_RESERVED_1: u8 = 4;
/// `BLKIF_OP_DISCARD` (optional, `feature-discard`): a [`BlkifRequestDiscard`].
pub const BLKIF_OP_DISCARD: u8 = 5;
/// `BLKIF_OP_INDIRECT` (optional, `feature-max-indirect-segments`): a
/// [`BlkifRequestIndirect`].
pub const BLKIF_OP_INDIRECT: u8 = 6;

/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`: segments in a direct request.
pub const BLKIF_MAX_SEGMENTS_PER_REQUEST: usize = 11;
/// `BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`: indirect segment pages in an indirect request.
pub const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: usize = 8;

/// `BLKIF_DISCARD_SECURE`: [`BlkifRequestDiscard::flag`] bit.
pub const BLKIF_DISCARD_SECURE: u8 = 1 << 0;

/// `BLKIF_RSP_EOPNOTSUPP`: operation not supported.
pub const BLKIF_RSP_EOPNOTSUPP: i16 = -2;
/// `BLKIF_RSP_ERROR`: operation failed (-EIO).
pub const BLKIF_RSP_ERROR: i16 = -1;
/// `BLKIF_RSP_OKAY`.
pub const BLKIF_RSP_OKAY: i16 = 0;

/// `VDISK_CDROM`: `info` bit.
pub const VDISK_CDROM: u32 = 0x1;
/// `VDISK_REMOVABLE`: `info` bit.
pub const VDISK_REMOVABLE: u32 = 0x2;
/// `VDISK_READONLY`: `info` bit.
pub const VDISK_READONLY: u32 = 0x4;

/// log2 of the protocol's sector unit.
pub const BLKIF_SECTOR_SHIFT: u32 = 9;
/// The protocol's sector unit: 512 bytes, whatever the disk's logical block size.
pub const BLKIF_SECTOR_SIZE: usize = 1 << BLKIF_SECTOR_SHIFT;
/// 512-byte sectors in a 4 KiB frame: `first_sect`/`last_sect` are below this.
pub const BLKIF_SECTORS_PER_PAGE: usize = XEN_PAGE_SIZE / BLKIF_SECTOR_SIZE;
/// Segments one indirect page holds (Linux's `SEGS_PER_INDIRECT_FRAME`): 512.
pub const BLKIF_SEGS_PER_INDIRECT_FRAME: usize =
    XEN_PAGE_SIZE / core::mem::size_of::<BlkifRequestSegment>();
/// The most segments an indirect request can describe at all (8 pages of 512).
pub const BLKIF_MAX_INDIRECT_SEGMENTS: usize =
    BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BLKIF_SEGS_PER_INDIRECT_FRAME;

/// Indirect pages needed for `segs` segments (Linux's `INDIRECT_PAGES`).
pub const fn indirect_pages(segs: usize) -> usize {
    segs.div_ceil(BLKIF_SEGS_PER_INDIRECT_FRAME)
}

/// `struct blkif_request_segment`: one 4 KiB granted frame and the 512-byte sectors of
/// it to transfer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequestSegment {
    /// Grant reference of the I/O buffer frame.
    pub gref: GrantRef,
    /// First sector in the frame to transfer (inclusive, 0..=7).
    pub first_sect: u8,
    /// Last sector in the frame to transfer (inclusive, `first_sect..=7`).
    pub last_sect: u8,
    /// Tail padding (C's implicit padding, zero on the wire).
    pub _pad: u16,
}
const _: () = assert!(core::mem::size_of::<BlkifRequestSegment>() == 8);
wire!(BlkifRequestSegment {
    gref,
    first_sect,
    last_sect,
    _pad
});

/// `struct blkif_request`: read, write, write barrier and flush requests.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequest {
    /// `BLKIF_OP_*`.
    pub operation: u8,
    /// Number of segments in `seg` (0 only for a flush).
    pub nr_segments: u8,
    /// Device handle (only for read/write requests).
    pub handle: BlkifVdev,
    /// C's implicit padding before `id`.
    pub _pad0: u32,
    /// Private guest value, echoed in the response.
    pub id: u64,
    /// Start sector on the disk, in 512-byte units.
    pub sector_number: BlkifSector,
    /// The segments.
    pub seg: [BlkifRequestSegment; BLKIF_MAX_SEGMENTS_PER_REQUEST],
}
const _: () = assert!(core::mem::size_of::<BlkifRequest>() == 112);
wire!(BlkifRequest {
    operation,
    nr_segments,
    handle,
    _pad0,
    id,
    sector_number,
    seg
});

/// `struct blkif_request_discard`: the request when `operation == BLKIF_OP_DISCARD`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequestDiscard {
    /// [`BLKIF_OP_DISCARD`].
    pub operation: u8,
    /// [`BLKIF_DISCARD_SECURE`] or zero.
    pub flag: u8,
    /// Device handle.
    pub handle: BlkifVdev,
    /// C's implicit padding before `id`.
    pub _pad0: u32,
    /// Private guest value, echoed in the response.
    pub id: u64,
    /// Start sector, in 512-byte units.
    pub sector_number: BlkifSector,
    /// Number of contiguous 512-byte sectors to discard.
    pub nr_sectors: u64,
}
const _: () = assert!(core::mem::size_of::<BlkifRequestDiscard>() == 32);
wire!(BlkifRequestDiscard {
    operation,
    flag,
    handle,
    _pad0,
    id,
    sector_number,
    nr_sectors
});

/// `struct blkif_request_indirect`: the request when `operation == BLKIF_OP_INDIRECT`.
/// The segments are in the granted pages `indirect_grefs[..indirect_pages(nr_segments)]`,
/// each an array of [`BLKIF_SEGS_PER_INDIRECT_FRAME`] [`BlkifRequestSegment`]s.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequestIndirect {
    /// [`BLKIF_OP_INDIRECT`].
    pub operation: u8,
    /// [`BLKIF_OP_READ`] or [`BLKIF_OP_WRITE`].
    pub indirect_op: u8,
    /// Number of segments.
    pub nr_segments: u16,
    /// C's implicit padding before `id`.
    pub _pad0: u32,
    /// Private guest value, echoed in the response.
    pub id: u64,
    /// Start sector, in 512-byte units.
    pub sector_number: BlkifSector,
    /// Device handle.
    pub handle: BlkifVdev,
    /// C's implicit padding before `indirect_grefs`.
    pub _pad1: u16,
    /// Grant references of the pages holding the segments.
    pub indirect_grefs: [GrantRef; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
    /// C's implicit tail padding (x86_64 has no explicit `pad`; i386 does).
    pub _pad2: u32,
}
const _: () = assert!(core::mem::size_of::<BlkifRequestIndirect>() == 64);
wire!(BlkifRequestIndirect {
    operation,
    indirect_op,
    nr_segments,
    _pad0,
    id,
    sector_number,
    handle,
    _pad1,
    indirect_grefs,
    _pad2
});

/// `struct blkif_response`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifResponse {
    /// Copied from the request.
    pub id: u64,
    /// Copied from the request (`indirect_op` for an indirect request, as Linux does).
    pub operation: u8,
    /// C's implicit padding before `status`.
    pub _pad0: u8,
    /// `BLKIF_RSP_*`.
    pub status: i16,
    /// C's implicit tail padding.
    pub _pad1: u32,
}
const _: () = assert!(core::mem::size_of::<BlkifResponse>() == 16);
wire!(BlkifResponse {
    id,
    operation,
    _pad0,
    status,
    _pad1
});

/// `sizeof(union blkif_sring_entry)`: one ring slot.
pub const BLKIF_SRING_ENTRY_SIZE: usize = 112;
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<BlkifRequest>() <= BLKIF_SRING_ENTRY_SIZE);
    assert!(size_of::<BlkifRequestDiscard>() <= BLKIF_SRING_ENTRY_SIZE);
    assert!(size_of::<BlkifRequestIndirect>() <= BLKIF_SRING_ENTRY_SIZE);
    assert!(size_of::<BlkifResponse>() <= BLKIF_SRING_ENTRY_SIZE);
};

/// `union blkif_sring_entry`, as bytes (decode with the variant structs).
pub type BlkifSringEntry = Opaque<BLKIF_SRING_ENTRY_SIZE>;

/// `struct blkif_sring` as C declares it (`ring[1]`, really variable-length): for layout
/// checks. A ring page holds [`BLKIF_RING_SIZE`] entries after the header.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlkifSring {
    pub req_prod: RingIdx,
    pub req_event: RingIdx,
    pub rsp_prod: RingIdx,
    pub rsp_event: RingIdx,
    /// `pvt.pvt_pad`.
    pub pvt: [u8; 4],
    /// `__pad`.
    pub pad: [u8; 44],
    /// The first entry.
    pub ring: [BlkifSringEntry; 1],
}
const _: () = assert!(core::mem::offset_of!(BlkifSring, ring) == 64);

/// `__CONST_RING_SIZE(blkif, 4096)`: entries in a one-page blkif ring (32).
pub const BLKIF_RING_SIZE: u32 = ring_size(XEN_PAGE_SIZE, BLKIF_SRING_ENTRY_SIZE);
const _: () = assert!(BLKIF_RING_SIZE == 32);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Wire;

    #[test]
    fn request_round_trip_and_layout() {
        let mut r = BlkifRequest {
            operation: BLKIF_OP_WRITE,
            nr_segments: 2,
            handle: 0x0201,
            id: 0x1122_3344_5566_7788,
            sector_number: 9,
            ..Default::default()
        };
        r.seg[1] = BlkifRequestSegment {
            gref: 0xdead_beef,
            first_sect: 3,
            last_sect: 7,
            _pad: 0,
        };
        let mut b = [0xffu8; BLKIF_SRING_ENTRY_SIZE];
        r.put(&mut b);
        assert_eq!(b[0], 1);
        assert_eq!(b[1], 2);
        assert_eq!(&b[2..4], &[1, 2]);
        assert_eq!(&b[4..8], &[0; 4], "explicit padding is written as zero");
        assert_eq!(b[16], 9);
        assert_eq!(&b[32..38], &[0xef, 0xbe, 0xad, 0xde, 3, 7]);
        assert_eq!(BlkifRequest::get(&b), r);
    }

    #[test]
    fn indirect_sizes() {
        assert_eq!(BLKIF_SEGS_PER_INDIRECT_FRAME, 512);
        assert_eq!(BLKIF_MAX_INDIRECT_SEGMENTS, 4096);
        assert_eq!(indirect_pages(0), 0);
        assert_eq!(indirect_pages(1), 1);
        assert_eq!(indirect_pages(512), 1);
        assert_eq!(indirect_pages(513), 2);
        let mut b = [0u8; 64];
        let r = BlkifRequestIndirect {
            operation: BLKIF_OP_INDIRECT,
            indirect_op: BLKIF_OP_READ,
            nr_segments: 300,
            handle: 7,
            indirect_grefs: [1, 2, 3, 4, 5, 6, 7, 8],
            ..Default::default()
        };
        r.put(&mut b);
        assert_eq!(&b[2..4], &300u16.to_le_bytes());
        assert_eq!(&b[24..26], &7u16.to_le_bytes());
        assert_eq!(&b[28..32], &1u32.to_le_bytes());
        assert_eq!(BlkifRequestIndirect::get(&b), r);
    }
}
