//! The split network device protocol (`xen/io/netif.h`): the pure core of netfront and
//! netback.
//!
//! A vif has two rings sharing one event channel here (no `feature-split-event-channels`,
//! one queue):
//! - [`NetifTx`] (guest → backend): requests [`NetifTxRequest`] (an extra-info slot is
//!   read from a request's bytes, [`NetifExtraInfo::from_tx_slot`]), responses
//!   [`NetifTxResponse`]; 12-byte slots, 256 per page.
//! - [`NetifRx`] (backend → guest): requests [`NetifRxRequest`] (empty buffers the guest
//!   posts), responses [`NetifRxResponse`]; 8-byte slots, 256 per page.
//!
//! - [`back`]: netback's core: read and validate a packet's tx slots (as Linux's
//!   `xenvif_get_extras`/`xenvif_count_requests` do, but a malformed packet is answered
//!   and dropped, never fatal), gather it through [`Grants`], answer every slot; copy a
//!   packet for the guest into its posted rx buffers.
//! - [`front`]: netfront's core: tx ids, tx requests for a frame, tx response matching;
//!   rx buffer ids and reassembly of received frames.
//! - [`xenbus`]: the xenstore nodes of the protocol and the MAC address format.
//!
//! [`NetifExtraInfo::from_tx_slot`]: xen_abi::io::netif::NetifExtraInfo::from_tx_slot

pub mod back;
pub mod front;
pub mod xenbus;

pub use crate::blkif::{GrantError, Grants};
pub use back::{
    Backend, BackendConfig, NetStats, RxError, RxSent, TxChain, TxEvent, TxPacket, TxPlan,
    TxReject, TxServiced,
};
pub use front::{FrontError, RxFrame, RxFrontend, RxOutcome, TxCompletion, TxFrontend};
pub use xenbus::{BackendInfo, EventChannels, FrontendInfo, KeyError};

use xen_abi::io::netif::{
    NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse, NETIF_RX_SRING_ENTRY_SIZE,
    NETIF_TX_SRING_ENTRY_SIZE,
};
use xen_abi::io::ring::XEN_PAGE_SIZE;

use crate::ring::{BackRing, FrontRing, RingProtocol, MAX_ENTRY_SIZE};

/// The tx ring: 12-byte slots holding a `netif_tx_request` (or an extra-info) or a
/// `netif_tx_response`.
#[derive(Clone, Copy, Debug)]
pub struct NetifTx;

impl RingProtocol for NetifTx {
    type Req = NetifTxRequest;
    type Rsp = NetifTxResponse;
    const ENTRY_SIZE: usize = NETIF_TX_SRING_ENTRY_SIZE;
}

/// The rx ring: 8-byte slots holding a `netif_rx_request` or a `netif_rx_response`.
#[derive(Clone, Copy, Debug)]
pub struct NetifRx;

impl RingProtocol for NetifRx {
    type Req = NetifRxRequest;
    type Rsp = NetifRxResponse;
    const ENTRY_SIZE: usize = NETIF_RX_SRING_ENTRY_SIZE;
}

const _: () = {
    assert!(NETIF_TX_SRING_ENTRY_SIZE <= MAX_ENTRY_SIZE);
    assert!(NETIF_RX_SRING_ENTRY_SIZE <= MAX_ENTRY_SIZE);
};

/// `netif_tx_front_ring_t`.
pub type NetTxFrontRing<P> = FrontRing<P, NetifTx>;
/// `netif_tx_back_ring_t`.
pub type NetTxBackRing<P> = BackRing<P, NetifTx>;
/// `netif_rx_front_ring_t`.
pub type NetRxFrontRing<P> = FrontRing<P, NetifRx>;
/// `netif_rx_back_ring_t`.
pub type NetRxBackRing<P> = BackRing<P, NetifRx>;

/// `ETH_HLEN`: the Ethernet header, the least a packet holds (and, as Linux's netback
/// requires, the least the first tx slot holds).
pub const ETH_HLEN: usize = 14;

/// The largest packet on either ring (`XEN_NETIF_MAX_TX_SIZE`, 65535).
pub const MAX_PACKET: usize = xen_abi::io::netif::XEN_NETIF_MAX_TX_SIZE as usize;

/// Pages (one slot each, from offset 0) a packet of `len` bytes takes.
pub const fn slots_for(len: usize) -> usize {
    len.div_ceil(XEN_PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::HeapPage;
    use xen_abi::io::netif::{NET_RX_RING_SIZE, NET_TX_RING_SIZE};

    #[test]
    fn ring_sizes_match_the_header() {
        let p = HeapPage::page();
        assert_eq!(
            NetTxFrontRing::init(&p).map(|r| r.size()),
            Ok(NET_TX_RING_SIZE)
        );
        assert_eq!(
            NetRxFrontRing::init(&p).map(|r| r.size()),
            Ok(NET_RX_RING_SIZE)
        );
        assert_eq!(slots_for(0), 0);
        assert_eq!(slots_for(1514), 1);
        assert_eq!(slots_for(4097), 2);
        assert_eq!(slots_for(MAX_PACKET), 16);
    }
}
