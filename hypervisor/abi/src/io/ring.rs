//! `xen/io/ring.h`: the generic shared ring's page layout and sizing.
//!
//! A shared ring page (`struct NAME_sring`) starts with a 64-byte header of four
//! free-running 32-bit indices (`RING_IDX`) and padding, followed by an array of entries,
//! each a union of the request and the response type. The number of entries is the
//! largest power of two that fits in the rest of the page(s) (`__RING_SIZE`), so an index
//! is turned into a slot by masking with `size - 1`.
//!
//! Indices only ever increase (wrapping at 2^32): `req_prod` is written by the frontend,
//! `rsp_prod` by the backend; `req_event`/`rsp_event` are the consumer's "notify me when
//! the producer index reaches this value" marks.

/// `RING_IDX`.
pub type RingIdx = u32;

/// `XEN_PAGE_SHIFT`: ring protocols always use 4 KiB pages.
pub const XEN_PAGE_SHIFT: u32 = 12;
/// `XEN_PAGE_SIZE`.
pub const XEN_PAGE_SIZE: usize = 1 << XEN_PAGE_SHIFT;

/// The header of every `struct NAME_sring` (the part before `ring[]`).
///
/// `pvt` is the union `{ netif.smartpoll_active; tapif_user.msg; pvt_pad[4] }`, kept as
/// its 4 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SringHeader {
    /// Frontend's published request producer index.
    pub req_prod: RingIdx,
    /// Backend wants a notification when `req_prod` passes this value.
    pub req_event: RingIdx,
    /// Backend's published response producer index.
    pub rsp_prod: RingIdx,
    /// Frontend wants a notification when `rsp_prod` passes this value.
    pub rsp_event: RingIdx,
    /// `pvt.pvt_pad`: protocol-private byte(s) (netif's `smartpoll_active`).
    pub pvt: [u8; 4],
    /// `__pad`.
    pub pad: [u8; 44],
}
const _: () = assert!(core::mem::size_of::<SringHeader>() == SRING_HEADER_SIZE);

impl SringHeader {
    /// `SHARED_RING_INIT`: producers 0, event marks 1, padding zero.
    pub const INIT: Self = Self {
        req_prod: 0,
        req_event: 1,
        rsp_prod: 0,
        rsp_event: 1,
        pvt: [0; 4],
        pad: [0; 44],
    };
}

/// `offsetof(struct NAME_sring, ring)`: 64 on x86_64 (any entry alignment up to 64).
pub const SRING_HEADER_SIZE: usize = 64;
/// Offset of `req_prod` in the page.
pub const SRING_REQ_PROD: usize = core::mem::offset_of!(SringHeader, req_prod);
/// Offset of `req_event` in the page.
pub const SRING_REQ_EVENT: usize = core::mem::offset_of!(SringHeader, req_event);
/// Offset of `rsp_prod` in the page.
pub const SRING_RSP_PROD: usize = core::mem::offset_of!(SringHeader, rsp_prod);
/// Offset of `rsp_event` in the page.
pub const SRING_RSP_EVENT: usize = core::mem::offset_of!(SringHeader, rsp_event);
/// Offset of `pvt` in the page.
pub const SRING_PVT: usize = core::mem::offset_of!(SringHeader, pvt);

/// `__RD32`: round a 32-bit value down to the nearest power of two (0 stays 0).
pub const fn rd32(x: u32) -> u32 {
    if x == 0 {
        0
    } else {
        1 << (31 - x.leading_zeros())
    }
}

/// `__CONST_RING_SIZE` / `__RING_SIZE`: how many entries of `entry_size` bytes fit in a
/// shared ring of `ring_bytes` bytes (header included), rounded down to a power of two.
/// 0 when not even one fits (or `entry_size` is 0).
pub const fn ring_size(ring_bytes: usize, entry_size: usize) -> u32 {
    if entry_size == 0 || ring_bytes <= SRING_HEADER_SIZE {
        return 0;
    }
    let n = (ring_bytes - SRING_HEADER_SIZE) / entry_size;
    if n > u32::MAX as usize {
        rd32(u32::MAX)
    } else {
        rd32(n as u32)
    }
}

/// Byte offset of slot `idx & (size - 1)` in the shared ring. `size` must be a power of
/// two (as [`ring_size`] returns); the index is masked, so any `idx` is safe.
pub const fn entry_offset(idx: RingIdx, size: u32, entry_size: usize) -> usize {
    SRING_HEADER_SIZE + (idx & size.wrapping_sub(1)) as usize * entry_size
}

/// `XEN_FLEX_RING_SIZE(order)`: size of each of the two data areas of a flex ring.
pub const fn xen_flex_ring_size(order: u32) -> usize {
    1usize << (order + XEN_PAGE_SHIFT - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_and_sizes() {
        assert_eq!(rd32(0), 0);
        assert_eq!(rd32(1), 1);
        assert_eq!(rd32(36), 32);
        assert_eq!(rd32(64), 64);
        assert_eq!(rd32(u32::MAX), 1 << 31);
        assert_eq!(ring_size(4096, 112), 32, "blkif");
        assert_eq!(ring_size(4096, 4096), 0);
        assert_eq!(ring_size(8192, 112), 64);
        assert_eq!(ring_size(64, 8), 0);
        assert_eq!(ring_size(4096, 0), 0);
        assert_eq!(entry_offset(33, 32, 112), 64 + 112);
        assert_eq!(entry_offset(u32::MAX, 32, 112), 64 + 31 * 112);
    }
}
