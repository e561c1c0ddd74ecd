//! `xen/io/netif.h`: the split network device's ring entries and constants.
//!
//! # Rings
//! A vif has two rings (one page each, one event channel when `feature-split-event-channels`
//! is not used): the **tx** ring carries packets from the guest (frontend) to the backend,
//! the **rx** ring carries packets from the backend to the guest.
//!
//! - tx: a slot is `union { netif_tx_request; netif_tx_response }` (12 bytes,
//!   [`NETIF_TX_SRING_ENTRY_SIZE`]). A packet is a first request whose `size` is the
//!   **whole packet's** length, followed by more requests while `NETTXF_more_data` is set
//!   (each `size` is that slot's fragment). When the first request has
//!   `NETTXF_extra_info`, the next slot(s) are [`NetifExtraInfo`]s read from the request
//!   slot's bytes (they chain with [`XEN_NETIF_EXTRA_FLAG_MORE`]), and the data slots
//!   follow them. Every slot, extra-info slots included, gets exactly one response:
//!   extra-info slots get [`NETIF_RSP_NULL`].
//! - rx: a slot is `union { netif_rx_request; netif_rx_response }` (8 bytes,
//!   [`NETIF_RX_SRING_ENTRY_SIZE`]). The frontend posts empty buffers (id + grant); the
//!   backend answers one with a [`NetifRxResponse`] whose `status` is the number of bytes
//!   it put in that buffer at `offset` (or a negative `NETIF_RSP_*` error), with
//!   `NETRXF_more_data` on all but the last buffer of a packet.
//!
//! # The extra-info union
//! `struct netif_extra_info` ends in a 6-byte union (`gso`, `mcast`, `hash`, `pad`). As
//! elsewhere in this crate there are no Rust unions: the union is [`NetifExtraUnion`]
//! (6 bytes, aligned as C's), and each member is its own struct ([`NetifExtraGso`],
//! [`NetifExtraMcast`], [`NetifExtraHash`]) read or written through
//! [`Wire`](crate::wire::Wire) with the accessors on [`NetifExtraInfo`].

use crate::grant_table::GrantRef;
use crate::io::ring::{ring_size, RingIdx, XEN_PAGE_SIZE};
use crate::wire::{wire, Wire};

/// `XEN_NETIF_NR_SLOTS_MIN`: the number of slots (data requests) a packet may use that
/// every backend must accept (Linux's `XEN_NETBK_LEGACY_SLOTS_MAX`; its
/// `fatal_skb_slots` default).
pub const XEN_NETIF_NR_SLOTS_MIN: usize = 18;
/// Linux netback's name for [`XEN_NETIF_NR_SLOTS_MIN`]: the most data slots a tx packet
/// may use before it is dropped.
pub const XEN_NETBK_LEGACY_SLOTS_MAX: usize = XEN_NETIF_NR_SLOTS_MIN;

/// `_NETTXF_csum_blank`: bit number.
pub const _NETTXF_CSUM_BLANK: u16 = 0;
/// `NETTXF_csum_blank`: the protocol checksum field is blank (the backend completes it).
pub const NETTXF_CSUM_BLANK: u16 = 1 << _NETTXF_CSUM_BLANK;
/// `_NETTXF_data_validated`: bit number.
pub const _NETTXF_DATA_VALIDATED: u16 = 1;
/// `NETTXF_data_validated`: the packet data has been validated against its checksum.
pub const NETTXF_DATA_VALIDATED: u16 = 1 << _NETTXF_DATA_VALIDATED;
/// `_NETTXF_more_data`: bit number.
pub const _NETTXF_MORE_DATA: u16 = 2;
/// `NETTXF_more_data`: the packet continues in the next request.
pub const NETTXF_MORE_DATA: u16 = 1 << _NETTXF_MORE_DATA;
/// `_NETTXF_extra_info`: bit number.
pub const _NETTXF_EXTRA_INFO: u16 = 3;
/// `NETTXF_extra_info`: the next slot holds a [`NetifExtraInfo`].
pub const NETTXF_EXTRA_INFO: u16 = 1 << _NETTXF_EXTRA_INFO;

/// `XEN_NETIF_MAX_TX_SIZE`: the largest packet a tx request chain may describe.
pub const XEN_NETIF_MAX_TX_SIZE: u32 = 0xFFFF;

/// `struct netif_tx_request`: one slot of a packet the guest transmits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifTxRequest {
    /// Grant of the page holding this fragment.
    pub gref: GrantRef,
    /// Offset of the fragment in the page.
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    /// Echoed in the response.
    pub id: u16,
    /// First request of a packet: the packet's total length; later ones: this fragment's.
    pub size: u16,
}
const _: () = assert!(core::mem::size_of::<NetifTxRequest>() == 12);
wire!(NetifTxRequest {
    gref,
    offset,
    flags,
    id,
    size
});

/// `XEN_NETIF_EXTRA_TYPE_NONE`: never used (invalid).
pub const XEN_NETIF_EXTRA_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_EXTRA_TYPE_GSO`: `u.gso`.
pub const XEN_NETIF_EXTRA_TYPE_GSO: u8 = 1;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`: `u.mcast`.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`: `u.mcast`.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// `XEN_NETIF_EXTRA_TYPE_HASH`: `u.hash`.
pub const XEN_NETIF_EXTRA_TYPE_HASH: u8 = 4;
/// `XEN_NETIF_EXTRA_TYPE_MAX`: types are below this.
pub const XEN_NETIF_EXTRA_TYPE_MAX: u8 = 5;

/// `_XEN_NETIF_EXTRA_FLAG_MORE`: bit number.
pub const _XEN_NETIF_EXTRA_FLAG_MORE: u8 = 0;
/// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra-info slot follows.
pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1 << _XEN_NETIF_EXTRA_FLAG_MORE;

/// `XEN_NETIF_GSO_TYPE_NONE`.
pub const XEN_NETIF_GSO_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_GSO_TYPE_TCPV4`.
pub const XEN_NETIF_GSO_TYPE_TCPV4: u8 = 1;
/// `XEN_NETIF_GSO_TYPE_TCPV6`.
pub const XEN_NETIF_GSO_TYPE_TCPV6: u8 = 2;

/// `netif_extra_info.u.gso`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifExtraGso {
    /// Maximum payload size of each segment (e.g. the TCP MSS).
    pub size: u16,
    /// `XEN_NETIF_GSO_TYPE_*`.
    pub type_: u8,
    /// Future expansion (zero).
    pub pad: u8,
    /// `XEN_NETIF_GSO_FEAT_*` (none defined; zero).
    pub features: u16,
}
const _: () = assert!(core::mem::size_of::<NetifExtraGso>() == 6);
wire!(NetifExtraGso {
    size,
    type_,
    pad,
    features
});

/// `netif_extra_info.u.mcast`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifExtraMcast {
    /// The multicast Ethernet address.
    pub addr: [u8; 6],
}
const _: () = assert!(core::mem::size_of::<NetifExtraMcast>() == 6);
wire!(NetifExtraMcast { addr });

/// `netif_extra_info.u.hash`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifExtraHash {
    /// `_XEN_NETIF_CTRL_HASH_TYPE_*` (the bit number).
    pub type_: u8,
    /// `XEN_NETIF_CTRL_HASH_ALGORITHM_*`.
    pub algorithm: u8,
    /// The hash value (little-endian bytes).
    pub value: [u8; 4],
}
const _: () = assert!(core::mem::size_of::<NetifExtraHash>() == 6);
wire!(NetifExtraHash {
    type_,
    algorithm,
    value
});

/// `netif_extra_info.u`: the 6-byte union, as bytes aligned as C's (`uint16_t pad[3]`).
#[repr(C, align(2))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifExtraUnion(pub [u8; 6]);
const _: () = assert!(core::mem::size_of::<NetifExtraUnion>() == 6);

impl Wire for NetifExtraUnion {
    fn put(&self, out: &mut [u8]) {
        out[..6].copy_from_slice(&self.0);
    }
    fn get(b: &[u8]) -> Self {
        let mut u = [0u8; 6];
        u.copy_from_slice(&b[..6]);
        Self(u)
    }
}

impl NetifExtraUnion {
    /// A union holding `v` (zero-padded).
    pub fn of<T: Wire>(v: &T) -> Self {
        const {
            assert!(
                core::mem::size_of::<T>() <= 6,
                "payload larger than the union"
            )
        };
        let mut u = Self::default();
        v.put(&mut u.0);
        u
    }
    /// Read the union as `T`.
    pub fn get_as<T: Wire>(&self) -> T {
        const {
            assert!(
                core::mem::size_of::<T>() <= 6,
                "payload larger than the union"
            )
        };
        T::get(&self.0)
    }
}

/// `struct netif_extra_info`: an extra-info slot (on the tx ring after a request with
/// `NETTXF_extra_info`, on the rx ring after a response with `NETRXF_extra_info`). It is
/// read from and written to the bytes of a request/response slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifExtraInfo {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    pub type_: u8,
    /// `XEN_NETIF_EXTRA_FLAG_*`.
    pub flags: u8,
    /// The member `type_` selects.
    pub u: NetifExtraUnion,
}
const _: () = assert!(core::mem::size_of::<NetifExtraInfo>() == 8);
wire!(NetifExtraInfo { type_, flags, u });

impl NetifExtraInfo {
    /// `u.gso`.
    pub fn gso(&self) -> NetifExtraGso {
        self.u.get_as()
    }
    /// `u.mcast`.
    pub fn mcast(&self) -> NetifExtraMcast {
        self.u.get_as()
    }
    /// `u.hash`.
    pub fn hash(&self) -> NetifExtraHash {
        self.u.get_as()
    }
    /// A GSO extra.
    pub fn new_gso(gso: &NetifExtraGso, flags: u8) -> Self {
        Self {
            type_: XEN_NETIF_EXTRA_TYPE_GSO,
            flags,
            u: NetifExtraUnion::of(gso),
        }
    }
    /// A multicast add/delete extra (`type_` is `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`/`DEL`).
    pub fn new_mcast(type_: u8, addr: [u8; 6], flags: u8) -> Self {
        Self {
            type_,
            flags,
            u: NetifExtraUnion::of(&NetifExtraMcast { addr }),
        }
    }
    /// A hash extra.
    pub fn new_hash(hash: &NetifExtraHash, flags: u8) -> Self {
        Self {
            type_: XEN_NETIF_EXTRA_TYPE_HASH,
            flags,
            u: NetifExtraUnion::of(hash),
        }
    }
    /// The extra as it sits in a tx ring slot (the remaining 4 bytes zero).
    pub fn to_tx_slot(&self) -> NetifTxRequest {
        let mut b = [0u8; NETIF_TX_SRING_ENTRY_SIZE];
        self.put(&mut b);
        NetifTxRequest::get(&b)
    }
    /// Read a tx ring slot (copied out as a request) as an extra.
    pub fn from_tx_slot(slot: &NetifTxRequest) -> Self {
        let mut b = [0u8; NETIF_TX_SRING_ENTRY_SIZE];
        slot.put(&mut b);
        Self::get(&b)
    }
    /// The extra as it sits in an rx ring slot (a response slot's bytes).
    pub fn to_rx_slot(&self) -> NetifRxResponse {
        let mut b = [0u8; NETIF_RX_SRING_ENTRY_SIZE];
        self.put(&mut b);
        NetifRxResponse::get(&b)
    }
    /// Read an rx ring response slot as an extra.
    pub fn from_rx_slot(slot: &NetifRxResponse) -> Self {
        let mut b = [0u8; NETIF_RX_SRING_ENTRY_SIZE];
        slot.put(&mut b);
        Self::get(&b)
    }
}

/// `struct netif_tx_response`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifTxResponse {
    /// The request's `id`.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}
const _: () = assert!(core::mem::size_of::<NetifTxResponse>() == 4);
wire!(NetifTxResponse { id, status });

/// `struct netif_rx_request`: an empty buffer the guest posts for a received packet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifRxRequest {
    /// Echoed in the response.
    pub id: u16,
    /// Padding (zero).
    pub pad: u16,
    /// Grant of the (writable) buffer page.
    pub gref: GrantRef,
}
const _: () = assert!(core::mem::size_of::<NetifRxRequest>() == 8);
wire!(NetifRxRequest { id, pad, gref });

/// `_NETRXF_data_validated`: bit number.
pub const _NETRXF_DATA_VALIDATED: u16 = 0;
/// `NETRXF_data_validated`: the packet data has been validated against its checksum.
pub const NETRXF_DATA_VALIDATED: u16 = 1 << _NETRXF_DATA_VALIDATED;
/// `_NETRXF_csum_blank`: bit number.
pub const _NETRXF_CSUM_BLANK: u16 = 1;
/// `NETRXF_csum_blank`: the protocol checksum field is blank.
pub const NETRXF_CSUM_BLANK: u16 = 1 << _NETRXF_CSUM_BLANK;
/// `_NETRXF_more_data`: bit number.
pub const _NETRXF_MORE_DATA: u16 = 2;
/// `NETRXF_more_data`: the packet continues in the next response.
pub const NETRXF_MORE_DATA: u16 = 1 << _NETRXF_MORE_DATA;
/// `_NETRXF_extra_info`: bit number.
pub const _NETRXF_EXTRA_INFO: u16 = 3;
/// `NETRXF_extra_info`: the next slot holds a [`NetifExtraInfo`].
pub const NETRXF_EXTRA_INFO: u16 = 1 << _NETRXF_EXTRA_INFO;
/// `_NETRXF_gso_prefix`: bit number.
pub const _NETRXF_GSO_PREFIX: u16 = 4;
/// `NETRXF_gso_prefix`: this slot holds only GSO prefix data (obsolete).
pub const NETRXF_GSO_PREFIX: u16 = 1 << _NETRXF_GSO_PREFIX;

/// `struct netif_rx_response`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifRxResponse {
    /// The request's `id`.
    pub id: u16,
    /// Offset of the data in the buffer page.
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// Bytes in this buffer (> 0), or a negative `NETIF_RSP_*`.
    pub status: i16,
}
const _: () = assert!(core::mem::size_of::<NetifRxResponse>() == 8);
wire!(NetifRxResponse {
    id,
    offset,
    flags,
    status
});

/// `NETIF_RSP_DROPPED`.
pub const NETIF_RSP_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`.
pub const NETIF_RSP_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`.
pub const NETIF_RSP_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`: the response to an extra-info slot.
pub const NETIF_RSP_NULL: i16 = 1;

/// Linux's name (`include/xen/interface/io/netif.h`) for [`NETIF_RSP_DROPPED`].
pub const XEN_NETIF_RSP_DROPPED: i16 = NETIF_RSP_DROPPED;
/// Linux's name for [`NETIF_RSP_ERROR`].
pub const XEN_NETIF_RSP_ERROR: i16 = NETIF_RSP_ERROR;
/// Linux's name for [`NETIF_RSP_OKAY`].
pub const XEN_NETIF_RSP_OKAY: i16 = NETIF_RSP_OKAY;
/// Linux's name for [`NETIF_RSP_NULL`].
pub const XEN_NETIF_RSP_NULL: i16 = NETIF_RSP_NULL;

/// `sizeof(union netif_tx_sring_entry)`: one tx ring slot.
pub const NETIF_TX_SRING_ENTRY_SIZE: usize = 12;
/// `sizeof(union netif_rx_sring_entry)`: one rx ring slot.
pub const NETIF_RX_SRING_ENTRY_SIZE: usize = 8;
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<NetifTxRequest>() <= NETIF_TX_SRING_ENTRY_SIZE);
    assert!(size_of::<NetifTxResponse>() <= NETIF_TX_SRING_ENTRY_SIZE);
    assert!(size_of::<NetifExtraInfo>() <= NETIF_TX_SRING_ENTRY_SIZE);
    assert!(size_of::<NetifRxRequest>() <= NETIF_RX_SRING_ENTRY_SIZE);
    assert!(size_of::<NetifRxResponse>() <= NETIF_RX_SRING_ENTRY_SIZE);
    assert!(size_of::<NetifExtraInfo>() <= NETIF_RX_SRING_ENTRY_SIZE);
};

/// `union netif_tx_sring_entry`, as bytes (aligned as C's: 4).
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifTxSringEntry(pub [u8; NETIF_TX_SRING_ENTRY_SIZE]);
const _: () = assert!(core::mem::size_of::<NetifTxSringEntry>() == NETIF_TX_SRING_ENTRY_SIZE);

/// `union netif_rx_sring_entry`, as bytes (aligned as C's: 4).
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifRxSringEntry(pub [u8; NETIF_RX_SRING_ENTRY_SIZE]);
const _: () = assert!(core::mem::size_of::<NetifRxSringEntry>() == NETIF_RX_SRING_ENTRY_SIZE);

/// `struct netif_tx_sring` as C declares it (`ring[1]`), for layout checks.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetifTxSring {
    pub req_prod: RingIdx,
    pub req_event: RingIdx,
    pub rsp_prod: RingIdx,
    pub rsp_event: RingIdx,
    /// `pvt.pvt_pad`.
    pub pvt: [u8; 4],
    /// `__pad`.
    pub pad: [u8; 44],
    /// The first entry.
    pub ring: [NetifTxSringEntry; 1],
}
const _: () = assert!(core::mem::offset_of!(NetifTxSring, ring) == 64);

/// `struct netif_rx_sring` as C declares it (`ring[1]`), for layout checks.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetifRxSring {
    pub req_prod: RingIdx,
    pub req_event: RingIdx,
    pub rsp_prod: RingIdx,
    pub rsp_event: RingIdx,
    /// `pvt.pvt_pad`.
    pub pvt: [u8; 4],
    /// `__pad`.
    pub pad: [u8; 44],
    /// The first entry.
    pub ring: [NetifRxSringEntry; 1],
}
const _: () = assert!(core::mem::offset_of!(NetifRxSring, ring) == 64);

/// `__CONST_RING_SIZE(netif_tx, 4096)` (Linux's `NET_TX_RING_SIZE`): 256.
pub const NET_TX_RING_SIZE: u32 = ring_size(XEN_PAGE_SIZE, NETIF_TX_SRING_ENTRY_SIZE);
const _: () = assert!(NET_TX_RING_SIZE == 256);
/// `__CONST_RING_SIZE(netif_rx, 4096)` (Linux's `NET_RX_RING_SIZE`): 256.
pub const NET_RX_RING_SIZE: u32 = ring_size(XEN_PAGE_SIZE, NETIF_RX_SRING_ENTRY_SIZE);
const _: () = assert!(NET_RX_RING_SIZE == 256);

// ---- The optional control ring (`feature-ctrl-ring`): layouts and constants only. ----

/// `_XEN_NETIF_CTRL_HASH_TYPE_IPV4`.
pub const _XEN_NETIF_CTRL_HASH_TYPE_IPV4: u32 = 0;
/// `XEN_NETIF_CTRL_HASH_TYPE_IPV4`.
pub const XEN_NETIF_CTRL_HASH_TYPE_IPV4: u32 = 1 << _XEN_NETIF_CTRL_HASH_TYPE_IPV4;
/// `_XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP`.
pub const _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP: u32 = 1;
/// `XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP`.
pub const XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP: u32 = 1 << _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
/// `_XEN_NETIF_CTRL_HASH_TYPE_IPV6`.
pub const _XEN_NETIF_CTRL_HASH_TYPE_IPV6: u32 = 2;
/// `XEN_NETIF_CTRL_HASH_TYPE_IPV6`.
pub const XEN_NETIF_CTRL_HASH_TYPE_IPV6: u32 = 1 << _XEN_NETIF_CTRL_HASH_TYPE_IPV6;
/// `_XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP`.
pub const _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP: u32 = 3;
/// `XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP`.
pub const XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP: u32 = 1 << _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;
/// `XEN_NETIF_CTRL_HASH_ALGORITHM_NONE`.
pub const XEN_NETIF_CTRL_HASH_ALGORITHM_NONE: u8 = 0;
/// `XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ`.
pub const XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ: u8 = 1;

/// `XEN_NETIF_CTRL_TYPE_INVALID`.
pub const XEN_NETIF_CTRL_TYPE_INVALID: u16 = 0;
/// `XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS`.
pub const XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS: u16 = 1;
/// `XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS`.
pub const XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS: u16 = 2;
/// `XEN_NETIF_CTRL_TYPE_SET_HASH_KEY`.
pub const XEN_NETIF_CTRL_TYPE_SET_HASH_KEY: u16 = 3;
/// `XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE`.
pub const XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE: u16 = 4;
/// `XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE`.
pub const XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE: u16 = 5;
/// `XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING`.
pub const XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING: u16 = 6;
/// `XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM`.
pub const XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM: u16 = 7;
/// `XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE`.
pub const XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE: u16 = 8;
/// `XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING`.
pub const XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING: u16 = 9;
/// `XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING`.
pub const XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING: u16 = 10;

/// `XEN_NETIF_CTRL_STATUS_SUCCESS`.
pub const XEN_NETIF_CTRL_STATUS_SUCCESS: u32 = 0;
/// `XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED`.
pub const XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED: u32 = 1;
/// `XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER`.
pub const XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER: u32 = 2;
/// `XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW`.
pub const XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW: u32 = 3;

/// `_XEN_NETIF_CTRLF_GREF_readonly`.
pub const _XEN_NETIF_CTRLF_GREF_READONLY: u16 = 0;
/// `XEN_NETIF_CTRLF_GREF_readonly`.
pub const XEN_NETIF_CTRLF_GREF_READONLY: u16 = 1 << _XEN_NETIF_CTRLF_GREF_READONLY;

/// `struct xen_netif_ctrl_request`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenNetifCtrlRequest {
    pub id: u16,
    /// `XEN_NETIF_CTRL_TYPE_*`.
    pub type_: u16,
    pub data: [u32; 3],
}
const _: () = assert!(core::mem::size_of::<XenNetifCtrlRequest>() == 16);
wire!(XenNetifCtrlRequest { id, type_, data });

/// `struct xen_netif_ctrl_response`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenNetifCtrlResponse {
    pub id: u16,
    /// `XEN_NETIF_CTRL_TYPE_*`.
    pub type_: u16,
    /// `XEN_NETIF_CTRL_STATUS_*`.
    pub status: u32,
    pub data: u32,
}
const _: () = assert!(core::mem::size_of::<XenNetifCtrlResponse>() == 12);
wire!(XenNetifCtrlResponse {
    id,
    type_,
    status,
    data
});

/// `struct xen_netif_gref`: an entry of the grant-mapping control operations.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenNetifGref {
    pub ref_: GrantRef,
    /// `XEN_NETIF_CTRLF_GREF_*`.
    pub flags: u16,
    /// `XEN_NETIF_CTRL_STATUS_*`.
    pub status: u16,
}
const _: () = assert!(core::mem::size_of::<XenNetifGref>() == 8);
wire!(XenNetifGref {
    ref_,
    flags,
    status
});

/// `sizeof(union xen_netif_ctrl_sring_entry)`.
pub const XEN_NETIF_CTRL_SRING_ENTRY_SIZE: usize = 16;
/// `__CONST_RING_SIZE(xen_netif_ctrl, 4096)`: 128.
pub const XEN_NETIF_CTRL_RING_SIZE: u32 = ring_size(XEN_PAGE_SIZE, XEN_NETIF_CTRL_SRING_ENTRY_SIZE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_request_layout() {
        let r = NetifTxRequest {
            gref: 0x0102_0304,
            offset: 0x0506,
            flags: NETTXF_MORE_DATA | NETTXF_EXTRA_INFO,
            id: 0x0708,
            size: 1514,
        };
        let mut b = [0u8; 12];
        r.put(&mut b);
        assert_eq!(&b[..4], &[4, 3, 2, 1]);
        assert_eq!(&b[4..6], &[6, 5]);
        assert_eq!(&b[6..8], &[12, 0]);
        assert_eq!(&b[8..10], &[8, 7]);
        assert_eq!(&b[10..12], &1514u16.to_le_bytes());
        assert_eq!(NetifTxRequest::get(&b), r);
    }

    #[test]
    fn extra_info_in_a_tx_slot() {
        let g = NetifExtraGso {
            size: 1448,
            type_: XEN_NETIF_GSO_TYPE_TCPV4,
            pad: 0,
            features: 0,
        };
        let e = NetifExtraInfo::new_gso(&g, XEN_NETIF_EXTRA_FLAG_MORE);
        let slot = e.to_tx_slot();
        let mut b = [0u8; 12];
        slot.put(&mut b);
        assert_eq!(&b[..4], &[1, 1, 0xa8, 0x05]);
        assert_eq!(b[4], XEN_NETIF_GSO_TYPE_TCPV4);
        assert_eq!(&b[8..], &[0; 4]);
        let back = NetifExtraInfo::from_tx_slot(&slot);
        assert_eq!(back, e);
        assert_eq!(back.gso(), g);
        let m = NetifExtraInfo::new_mcast(XEN_NETIF_EXTRA_TYPE_MCAST_ADD, [1, 2, 3, 4, 5, 6], 0);
        assert_eq!(m.mcast().addr, [1, 2, 3, 4, 5, 6]);
        assert_eq!(NetifExtraInfo::from_rx_slot(&m.to_rx_slot()), m);
        let h = NetifExtraHash {
            type_: 1,
            algorithm: XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
            value: [9, 8, 7, 6],
        };
        assert_eq!(NetifExtraInfo::new_hash(&h, 0).hash(), h);
    }

    #[test]
    fn ring_sizes() {
        assert_eq!(NET_TX_RING_SIZE, 256);
        assert_eq!(NET_RX_RING_SIZE, 256);
        assert_eq!(XEN_NETIF_CTRL_RING_SIZE, 128);
        assert_eq!(core::mem::align_of::<NetifExtraInfo>(), 2);
    }
}
