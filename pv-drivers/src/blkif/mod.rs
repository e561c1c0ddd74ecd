//! The split block device protocol (`xen/io/blkif.h`): the pure core of blkfront and
//! blkback.
//!
//! - [`Blkif`] is the ring protocol ([`BlkFrontRing`], [`BlkBackRing`]); a slot is copied
//!   out as raw bytes ([`BlkifSringEntry`]) and decoded with [`Request::decode`].
//! - [`back`]: validate a request into a [`back::Plan`] (or refuse it with
//!   `BLKIF_RSP_ERROR`/`BLKIF_RSP_EOPNOTSUPP`), then execute it over [`Grants`] and
//!   [`Disk`].
//! - [`front`]: request ids, splitting a byte range into requests, matching responses.
//! - [`xenbus`]: the xenstore nodes of the protocol, parsed from and formatted to strings.
//!
//! Sector numbers on the wire are always in 512-byte units
//! ([`BLKIF_SECTOR_SIZE`](xen_abi::io::blkif::BLKIF_SECTOR_SIZE)), as Linux does; the
//! backend's `sector-size` is the logical block size requests must be aligned to.

pub mod back;
pub mod front;
pub mod xenbus;

pub use back::{
    Backend, BackendFeatures, Disk, DiskError, Geometry, GrantError, Grants, Plan, PlannedSegment,
    Rejected, Serviced, ValidRequest,
};
pub use front::{Completion, FrontError, Frontend, IoChunk, SegmentPlan, Submission};
pub use xenbus::{BackendInfo, FrontendInfo, KeyError, Protocol};

use xen_abi::io::blkif::{
    BlkifRequest, BlkifRequestDiscard, BlkifRequestIndirect, BlkifResponse, BlkifSringEntry,
    BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE,
    BLKIF_OP_WRITE_BARRIER, BLKIF_SRING_ENTRY_SIZE,
};
use xen_abi::wire::Opaque;

use crate::ring::{BackRing, FrontRing, RingProtocol};

/// The blkif ring: slots of 112 bytes, requests copied out as raw slot bytes.
#[derive(Clone, Copy, Debug)]
pub struct Blkif;

impl RingProtocol for Blkif {
    type Req = BlkifSringEntry;
    type Rsp = BlkifResponse;
    const ENTRY_SIZE: usize = BLKIF_SRING_ENTRY_SIZE;
}

/// `blkif_front_ring_t`.
pub type BlkFrontRing<P> = FrontRing<P, Blkif>;
/// `blkif_back_ring_t`.
pub type BlkBackRing<P> = BackRing<P, Blkif>;

/// A request slot read as the variant its `operation` byte selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `BLKIF_OP_READ`, `WRITE`, `WRITE_BARRIER` or `FLUSH_DISKCACHE`.
    Rw(BlkifRequest),
    /// `BLKIF_OP_DISCARD`.
    Discard(BlkifRequestDiscard),
    /// `BLKIF_OP_INDIRECT`.
    Indirect(BlkifRequestIndirect),
    /// Any other operation, read as a `blkif_request` (for its `id`).
    Other(BlkifRequest),
}

impl Request {
    /// Decode a slot copied out of the ring. Total: any bytes decode to something.
    pub fn decode(entry: &BlkifSringEntry) -> Self {
        match entry.0[0] {
            BLKIF_OP_READ | BLKIF_OP_WRITE | BLKIF_OP_WRITE_BARRIER | BLKIF_OP_FLUSH_DISKCACHE => {
                Self::Rw(entry.get())
            }
            BLKIF_OP_DISCARD => Self::Discard(entry.get()),
            BLKIF_OP_INDIRECT => Self::Indirect(entry.get()),
            _ => Self::Other(entry.get()),
        }
    }

    /// The slot bytes of this request (unused bytes zero).
    pub fn encode(&self) -> BlkifSringEntry {
        match self {
            Self::Rw(r) | Self::Other(r) => Opaque::of(r),
            Self::Discard(r) => Opaque::of(r),
            Self::Indirect(r) => Opaque::of(r),
        }
    }

    /// The guest's `id` (at the same offset in every variant).
    pub fn id(&self) -> u64 {
        match self {
            Self::Rw(r) | Self::Other(r) => r.id,
            Self::Discard(r) => r.id,
            Self::Indirect(r) => r.id,
        }
    }

    /// `operation`.
    pub fn operation(&self) -> u8 {
        match self {
            Self::Rw(r) | Self::Other(r) => r.operation,
            Self::Discard(r) => r.operation,
            Self::Indirect(r) => r.operation,
        }
    }
}

/// A `blkif_response`.
pub fn response(id: u64, operation: u8, status: i16) -> BlkifResponse {
    BlkifResponse {
        id,
        operation,
        status,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_by_operation() {
        let r = BlkifRequestDiscard {
            operation: BLKIF_OP_DISCARD,
            id: 5,
            nr_sectors: 9,
            ..Default::default()
        };
        let e = Opaque::of(&r);
        assert_eq!(Request::decode(&e), Request::Discard(r));
        assert_eq!(Request::decode(&e).id(), 5);
        let mut e = e;
        e.0[0] = 200;
        assert!(matches!(Request::decode(&e), Request::Other(_)));
        assert_eq!(Request::decode(&e).id(), 5);
    }
}
