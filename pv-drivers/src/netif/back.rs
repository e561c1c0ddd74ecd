//! netback's core: take packets from a guest's tx ring, give packets to its rx ring.
//!
//! The guest is untrusted. Every packet's slots are read out of the ring first
//! ([`TxChain`]), then validated as a whole ([`Backend::validate_tx`]) before any grant
//! is touched, then gathered through [`Grants`]. Every slot gets exactly one
//! response: the first and the data slots `NETIF_RSP_OKAY` or `NETIF_RSP_ERROR`,
//! extra-info slots `NETIF_RSP_NULL`. A malformed packet is answered `NETIF_RSP_ERROR`
//! and dropped, counted in [`NetStats`]; nothing a guest writes stops the backend
//! (where Linux's xen-netback calls `xenvif_fatal_tx_err` and disables the vif, this
//! backend drops the packet; only a broken ring index, [`RingError`], is fatal).
//!
//! The validation rules are Linux's (`drivers/net/xen-netback/netback.c`):
//! - `xenvif_get_extras`: each extra-info slot's type is in
//!   `1..XEN_NETIF_EXTRA_TYPE_MAX` ("Invalid extra type"); the chain of extras must be
//!   complete in the published requests ("Missing extra info"). Stricter here: a type
//!   appears at most once, so at most 4 extras.
//! - `xenvif_set_skb_gso`: a GSO extra has a nonzero `size` ("GSO size must not be
//!   zero") and type TCPv4 or TCPv6 ("Bad GSO type"), and is only accepted when
//!   offered ([`BackendConfig::gso`]).
//! - `xenvif_count_requests`: the data slots after the first (`NETTXF_more_data`
//!   chain) must be complete in the published requests ("Asked for %d slots but
//!   exceeds this limit"); a packet uses at most [`XEN_NETIF_NR_SLOTS_MIN`] (18) data
//!   slots (`XEN_NETBK_LEGACY_SLOTS_MAX`, "Too many slots"); each following slot's
//!   `size` is at most what remains of the first slot's total ("Invalid tx request,
//!   slot size %u > remaining size %u"); each slot's `offset + size <= 4096` ("Cross
//!   page boundary").
//! - `xenvif_tx_build_gops`: the first slot's own data (the total minus the following
//!   slots) is at least `ETH_HLEN` = 14 bytes ("Bad packet size") and does not cross
//!   its page.
//! - Multicast control (`XEN_NETIF_EXTRA_TYPE_MCAST_ADD`/`DEL`): the request carries
//!   no packet; it is answered `OKAY` (or `ERROR` when
//!   [`BackendConfig::multicast_control`] is off) and reported as a [`TxEvent`].
//!
//! Receive ([`Backend::deliver_rx`]) copies a packet into buffers the guest posted on
//! the rx ring, one page per slot from offset 0, `NETRXF_more_data` on all but the last;
//! with too few buffers posted it consumes nothing and says so ([`RxError::NoBuffers`]).

use alloc::vec;
use alloc::vec::Vec;

use xen_abi::grant_table::GrantRef;
use xen_abi::io::netif::{
    NetifExtraGso, NetifExtraHash, NetifExtraInfo, NetifRxResponse, NetifTxRequest,
    NetifTxResponse, NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETRXF_CSUM_BLANK,
    NETRXF_DATA_VALIDATED, NETRXF_MORE_DATA, NETTXF_CSUM_BLANK, NETTXF_DATA_VALIDATED,
    NETTXF_EXTRA_INFO, NETTXF_MORE_DATA, XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_TYPE_GSO,
    XEN_NETIF_EXTRA_TYPE_HASH, XEN_NETIF_EXTRA_TYPE_MAX, XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
    XEN_NETIF_EXTRA_TYPE_MCAST_DEL, XEN_NETIF_GSO_TYPE_TCPV4, XEN_NETIF_GSO_TYPE_TCPV6,
    XEN_NETIF_NR_SLOTS_MIN,
};
use xen_abi::io::ring::{RingIdx, SRING_REQ_EVENT, XEN_PAGE_SIZE};
use xen_abi::DomId;

use super::{slots_for, GrantError, Grants, NetRxBackRing, NetTxBackRing, ETH_HLEN, MAX_PACKET};
use crate::ring::{RingError, SharedPage};

/// Most extra-info slots in one packet: one of each type.
pub const MAX_EXTRAS: usize = XEN_NETIF_EXTRA_TYPE_MAX as usize - 1;

/// What the backend offers the frontend (the `feature-*` nodes it writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    /// Most data slots per tx packet (`XEN_NETIF_NR_SLOTS_MIN`, 18; values above 18 are
    /// treated as 18, 0 as 1).
    pub max_slots: usize,
    /// `feature-gso-tcpv4`/`tcpv6`: accept GSO extras (the packet is handed on with its
    /// [`TxPacket::gso`]; segmenting it is the caller's job).
    pub gso: bool,
    /// `feature-multicast-control`: accept multicast add/delete requests.
    pub multicast_control: bool,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            max_slots: XEN_NETIF_NR_SLOTS_MIN,
            gso: false,
            multicast_control: false,
        }
    }
}

/// Counters. "tx" is the guest's transmit direction (its tx ring), "rx" its receive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Packets taken from the tx ring and handed on.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Malformed tx requests answered `NETIF_RSP_ERROR` and dropped.
    pub tx_dropped: u64,
    /// Well-formed tx packets whose grants could not be copied (answered `ERROR`).
    pub tx_errors: u64,
    /// Multicast control requests.
    pub tx_mcast: u64,
    /// Packets given to the guest.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Packets not given: too few buffers posted, or empty/oversized.
    pub rx_dropped: u64,
    /// Packets whose copy into a posted buffer failed (answered with an error status).
    pub rx_errors: u64,
}

/// The slots of one tx packet, as read off the ring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxChain {
    /// The first request (its `size` is the whole packet's).
    pub first: NetifTxRequest,
    /// The extra-info slots (raw; decode with [`NetifExtraInfo::from_tx_slot`]).
    pub extras: Vec<NetifTxRequest>,
    /// The data slots after the first.
    pub more: Vec<NetifTxRequest>,
    /// Whether the chain ended inside the published requests.
    pub complete: bool,
}

impl TxChain {
    /// Slots taken from the ring (each needs one response).
    pub fn slots(&self) -> usize {
        1 + self.extras.len() + self.more.len()
    }

    /// The responses for every slot, in ring order: `status` for the first and data
    /// slots, `NETIF_RSP_NULL` for extra-info slots.
    pub fn responses(&self, status: i16) -> Vec<NetifTxResponse> {
        let mut v = Vec::with_capacity(self.slots());
        v.push(NetifTxResponse {
            id: self.first.id,
            status,
        });
        v.extend(self.extras.iter().map(|_| NetifTxResponse {
            id: 0,
            status: NETIF_RSP_NULL,
        }));
        v.extend(
            self.more
                .iter()
                .map(|r| NetifTxResponse { id: r.id, status }),
        );
        v
    }
}

/// Why a tx packet was refused (before any grant was touched, except
/// [`TxReject::Grant`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxReject {
    /// The extra-info or `more_data` chain runs past the published requests.
    Incomplete,
    /// An extra-info slot of type 0 or `>= XEN_NETIF_EXTRA_TYPE_MAX`.
    BadExtraType(u8),
    /// Two extra-info slots of one type.
    DuplicateExtra(u8),
    /// A GSO extra not offered, with size 0, or of an unknown type.
    BadGso,
    /// A multicast request while multicast control is not offered.
    McastNotOffered,
    /// More data slots than [`BackendConfig::max_slots`].
    TooManySlots(usize),
    /// A following slot is larger than what remains of the packet's total.
    SizeMismatch,
    /// `offset + size > 4096` in a slot.
    CrossesPage,
    /// The first slot holds fewer than 14 bytes (no Ethernet header).
    TooShort,
    /// A grant copy failed.
    Grant(GrantError),
}

/// One data fragment of a validated packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxFragment {
    /// The granted page.
    pub gref: GrantRef,
    /// Offset in the page.
    pub offset: usize,
    /// Bytes (`offset + len <= 4096`).
    pub len: usize,
}

/// What a validated tx chain carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxPlan {
    /// A packet of `len` bytes made of `fragments`, in order.
    Packet {
        fragments: Vec<TxFragment>,
        len: usize,
        /// `NETTXF_csum_blank | NETTXF_data_validated` of the first slot.
        flags: u16,
        gso: Option<NetifExtraGso>,
        hash: Option<NetifExtraHash>,
    },
    /// A multicast filter change (no packet).
    Mcast { add: bool, addr: [u8; 6] },
}

/// A packet from the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxPacket {
    /// The frame, Ethernet header first.
    pub data: Vec<u8>,
    /// `NETTXF_csum_blank | NETTXF_data_validated` as the guest set them.
    pub flags: u16,
    /// The GSO extra, when the guest sent one (and it was offered).
    pub gso: Option<NetifExtraGso>,
    /// The hash extra, when the guest sent one.
    pub hash: Option<NetifExtraHash>,
}

/// What the tx ring produced, handed to the caller of [`Backend::service_tx`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxEvent {
    /// A packet to forward.
    Packet(TxPacket),
    /// Add (`add`) or remove a multicast address from the vif's filter.
    Mcast { add: bool, addr: [u8; 6] },
}

/// What [`Backend::service_tx`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxServiced {
    /// Packets (good or bad) answered.
    pub handled: usize,
    /// The frontend asked to be notified: send an event.
    pub notify: bool,
    /// The budget ran out with requests still waiting: call again.
    pub more: bool,
}

/// Why a packet was not given to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxError {
    /// The packet is empty or longer than 65535 bytes (dropped).
    BadPacket,
    /// The guest posted fewer buffers than the packet needs (`needed`); nothing was
    /// consumed. The backend asked to be notified when enough are posted: queue the
    /// packet and retry then, or drop it.
    NoBuffers { needed: usize },
    /// The rx ring is broken (hostile `req_prod`).
    Ring(RingError),
}

impl From<RingError> for RxError {
    fn from(e: RingError) -> Self {
        RxError::Ring(e)
    }
}

/// What [`Backend::deliver_rx`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxSent {
    /// Buffers (slots) used.
    pub slots: usize,
    /// Whether every copy succeeded (else the guest got error statuses).
    pub ok: bool,
    /// The frontend asked to be notified: send an event.
    pub notify: bool,
}

/// netback's protocol logic for one vif.
#[derive(Clone, Debug)]
pub struct Backend {
    domid: DomId,
    config: BackendConfig,
    stats: NetStats,
}

impl Backend {
    /// A backend for frontend domain `domid`.
    pub fn new(domid: DomId, config: BackendConfig) -> Self {
        Self {
            domid,
            config,
            stats: NetStats::default(),
        }
    }

    /// The frontend's domain.
    pub fn domid(&self) -> DomId {
        self.domid
    }
    /// What the backend offers.
    pub fn config(&self) -> BackendConfig {
        self.config
    }
    /// The counters.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    fn max_slots(&self) -> usize {
        self.config.max_slots.clamp(1, XEN_NETIF_NR_SLOTS_MIN)
    }

    /// Read the slots of the next packet off the ring: `None` if no request is waiting.
    /// Reads the extra-info chain and the `more_data` chain; when either runs past the
    /// published requests (after one fresh look at `req_prod`), the chain is returned
    /// with `complete == false`. At most a ring's worth of slots is read.
    pub fn read_chain<P: SharedPage>(
        ring: &mut NetTxBackRing<P>,
    ) -> Result<Option<TxChain>, RingError> {
        let Some(first) = next_request(ring)? else {
            return Ok(None);
        };
        let mut chain = TxChain {
            first,
            ..TxChain::default()
        };
        if first.flags & NETTXF_EXTRA_INFO != 0 {
            loop {
                let Some(slot) = next_request(ring)? else {
                    return Ok(Some(chain));
                };
                chain.extras.push(slot);
                if NetifExtraInfo::from_tx_slot(&slot).flags & XEN_NETIF_EXTRA_FLAG_MORE == 0 {
                    break;
                }
            }
        }
        let mut more = first.flags & NETTXF_MORE_DATA != 0;
        while more {
            let Some(slot) = next_request(ring)? else {
                return Ok(Some(chain));
            };
            more = slot.flags & NETTXF_MORE_DATA != 0;
            chain.more.push(slot);
        }
        chain.complete = true;
        Ok(Some(chain))
    }

    /// Check a chain (see the module documentation) and say what it carries. Touches
    /// nothing.
    pub fn validate_tx(&self, chain: &TxChain) -> Result<TxPlan, TxReject> {
        if !chain.complete {
            return Err(TxReject::Incomplete);
        }
        // xenvif_get_extras.
        let mut seen = [false; MAX_EXTRAS];
        let (mut gso, mut hash, mut mcast) = (None, None, None);
        for slot in &chain.extras {
            let e = NetifExtraInfo::from_tx_slot(slot);
            if e.type_ == 0 || e.type_ >= XEN_NETIF_EXTRA_TYPE_MAX {
                return Err(TxReject::BadExtraType(e.type_));
            }
            let s = seen
                .get_mut(usize::from(e.type_ - 1))
                .ok_or(TxReject::BadExtraType(e.type_))?;
            if *s {
                return Err(TxReject::DuplicateExtra(e.type_));
            }
            *s = true;
            match e.type_ {
                XEN_NETIF_EXTRA_TYPE_GSO => {
                    // xenvif_set_skb_gso.
                    let g = e.gso();
                    if !self.config.gso
                        || g.size == 0
                        || !matches!(g.type_, XEN_NETIF_GSO_TYPE_TCPV4 | XEN_NETIF_GSO_TYPE_TCPV6)
                    {
                        return Err(TxReject::BadGso);
                    }
                    gso = Some(g);
                }
                XEN_NETIF_EXTRA_TYPE_HASH => hash = Some(e.hash()),
                XEN_NETIF_EXTRA_TYPE_MCAST_ADD => mcast = Some((true, e.mcast().addr)),
                XEN_NETIF_EXTRA_TYPE_MCAST_DEL => mcast = Some((false, e.mcast().addr)),
                _ => return Err(TxReject::BadExtraType(e.type_)),
            }
        }
        if let Some((add, addr)) = mcast {
            // Linux answers a multicast request before looking at any data slot.
            if !self.config.multicast_control {
                return Err(TxReject::McastNotOffered);
            }
            return Ok(TxPlan::Mcast { add, addr });
        }
        // xenvif_count_requests.
        let slots = 1 + chain.more.len();
        if slots > self.max_slots() {
            return Err(TxReject::TooManySlots(slots));
        }
        let mut remaining = usize::from(chain.first.size);
        let mut fragments = Vec::with_capacity(slots);
        fragments.push(TxFragment {
            gref: chain.first.gref,
            offset: usize::from(chain.first.offset),
            len: 0,
        });
        for r in &chain.more {
            let size = usize::from(r.size);
            if size > remaining {
                return Err(TxReject::SizeMismatch);
            }
            remaining -= size;
            let f = TxFragment {
                gref: r.gref,
                offset: usize::from(r.offset),
                len: size,
            };
            if f.offset + f.len > XEN_PAGE_SIZE {
                return Err(TxReject::CrossesPage);
            }
            fragments.push(f);
        }
        // xenvif_tx_build_gops: the first slot's own part.
        if remaining < ETH_HLEN {
            return Err(TxReject::TooShort);
        }
        if let Some(f) = fragments.first_mut() {
            f.len = remaining;
            if f.offset + f.len > XEN_PAGE_SIZE {
                return Err(TxReject::CrossesPage);
            }
        }
        let len = usize::from(chain.first.size);
        debug_assert!(len <= MAX_PACKET);
        Ok(TxPlan::Packet {
            fragments,
            len,
            flags: chain.first.flags & (NETTXF_CSUM_BLANK | NETTXF_DATA_VALIDATED),
            gso,
            hash,
        })
    }

    /// Copy a validated packet's fragments out of the guest's grants.
    pub fn gather<G: Grants + ?Sized>(
        &self,
        fragments: &[TxFragment],
        len: usize,
        grants: &mut G,
    ) -> Result<Vec<u8>, GrantError> {
        let mut data = vec![0u8; len];
        let mut pos = 0;
        for f in fragments {
            if f.len == 0 {
                continue;
            }
            let dst = data.get_mut(pos..pos + f.len).ok_or(GrantError(-1))?;
            grants.copy_from(self.domid, f.gref, f.offset, dst)?;
            pos += f.len;
        }
        Ok(data)
    }

    /// Validate and gather one chain; the status for its slots and what it carried.
    pub fn handle_tx<G: Grants + ?Sized>(
        &mut self,
        chain: &TxChain,
        grants: &mut G,
    ) -> (i16, Result<TxEvent, TxReject>) {
        let ev = match self.validate_tx(chain) {
            Ok(TxPlan::Packet {
                fragments,
                len,
                flags,
                gso,
                hash,
            }) => match self.gather(&fragments, len, grants) {
                Ok(data) => Ok(TxEvent::Packet(TxPacket {
                    data,
                    flags,
                    gso,
                    hash,
                })),
                Err(e) => Err(TxReject::Grant(e)),
            },
            Ok(TxPlan::Mcast { add, addr }) => Ok(TxEvent::Mcast { add, addr }),
            Err(r) => Err(r),
        };
        match &ev {
            Ok(TxEvent::Packet(p)) => {
                self.stats.tx_packets += 1;
                self.stats.tx_bytes += p.data.len() as u64;
            }
            Ok(TxEvent::Mcast { .. }) => self.stats.tx_mcast += 1,
            Err(TxReject::Grant(_)) => self.stats.tx_errors += 1,
            Err(_) => self.stats.tx_dropped += 1,
        }
        let status = if ev.is_ok() {
            NETIF_RSP_OKAY
        } else {
            NETIF_RSP_ERROR
        };
        (status, ev)
    }

    /// Take up to `budget` packets off the tx ring (netback's `xenvif_tx_action` loop:
    /// read, validate, gather, answer every slot, push, `RING_FINAL_CHECK_FOR_REQUESTS`)
    /// and hand each good one to `deliver`. Notify the frontend when
    /// [`TxServiced::notify`]; call again when [`TxServiced::more`]. A broken ring
    /// (hostile `req_prod`) is reported and stays broken.
    pub fn service_tx<P: SharedPage, G: Grants + ?Sized>(
        &mut self,
        ring: &mut NetTxBackRing<P>,
        grants: &mut G,
        budget: usize,
        mut deliver: impl FnMut(TxEvent),
    ) -> Result<TxServiced, RingError> {
        let mut done = TxServiced::default();
        loop {
            ring.poll_requests()?;
            while done.handled < budget {
                let Some(chain) = Self::read_chain(ring)? else {
                    break;
                };
                let (status, ev) = self.handle_tx(&chain, grants);
                for rsp in chain.responses(status) {
                    ring.put_response(&rsp)?;
                }
                done.handled += 1;
                if let Ok(ev) = ev {
                    deliver(ev);
                }
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

    /// Give `packet` to the guest: take `ceil(len / 4096)` posted rx buffers, copy one
    /// page of the packet into each (offset 0), answer each (`status` = bytes in that
    /// buffer, `NETRXF_more_data` on all but the last; `flags` — `NETRXF_data_validated`
    /// and/or `NETRXF_csum_blank` — on the first), push and tell whether to notify.
    ///
    /// With too few buffers posted nothing is consumed, `req_event` is set so that the
    /// frontend notifies when enough are there, and [`RxError::NoBuffers`] says so. A
    /// failed copy answers every slot of the packet `NETIF_RSP_ERROR` (the chain stays
    /// intact, so the guest drops exactly this packet).
    pub fn deliver_rx<P: SharedPage, G: Grants + ?Sized>(
        &mut self,
        ring: &mut NetRxBackRing<P>,
        grants: &mut G,
        packet: &[u8],
        flags: u16,
    ) -> Result<RxSent, RxError> {
        if packet.is_empty() || packet.len() > MAX_PACKET {
            self.stats.rx_dropped += 1;
            return Err(RxError::BadPacket);
        }
        let needed = slots_for(packet.len());
        if let Err(e) = self.wait_for_buffers(ring, needed) {
            if matches!(e, RxError::NoBuffers { .. }) {
                self.stats.rx_dropped += 1;
            }
            return Err(e);
        }
        let mut ok = true;
        let mut rsps = Vec::with_capacity(needed);
        for (i, chunk) in packet.chunks(XEN_PAGE_SIZE).enumerate() {
            // wait_for_buffers saw `needed` requests available with room to answer.
            let Some(req) = ring.take_request() else {
                return Err(RxError::Ring(RingError::NoRequestToAnswer));
            };
            if ok && grants.copy_to(self.domid, req.gref, 0, chunk).is_err() {
                ok = false;
            }
            let mut f = if i + 1 < needed { NETRXF_MORE_DATA } else { 0 };
            if i == 0 {
                f |= flags & (NETRXF_DATA_VALIDATED | NETRXF_CSUM_BLANK);
            }
            rsps.push(NetifRxResponse {
                id: req.id,
                offset: 0,
                flags: f,
                // chunk.len() <= 4096.
                status: chunk.len() as i16,
            });
        }
        for mut r in rsps {
            if !ok {
                r.status = NETIF_RSP_ERROR;
            }
            ring.put_response(&r)?;
        }
        let notify = ring.push_responses_and_check_notify();
        if ok {
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += packet.len() as u64;
        } else {
            self.stats.rx_errors += 1;
        }
        Ok(RxSent {
            slots: needed,
            ok,
            notify,
        })
    }

    /// Whether `needed` rx buffers are posted; if not, ask to be notified when they are
    /// (`req_event = req_cons + needed`, as netback's `xenvif_rx_ring_slots_available`).
    pub fn wait_for_buffers<P: SharedPage>(
        &self,
        ring: &mut NetRxBackRing<P>,
        needed: usize,
    ) -> Result<(), RxError> {
        let have = ring.poll_requests()? as usize;
        if have >= needed {
            return Ok(());
        }
        let want: RingIdx = ring.req_cons().wrapping_add(needed as RingIdx);
        ring.page().write_u32(SRING_REQ_EVENT, want);
        ring.page().fence();
        if ring.poll_requests()? as usize >= needed {
            return Ok(());
        }
        Err(RxError::NoBuffers { needed })
    }
}

/// The next request, looking at `req_prod` again once when the last batch is used up.
fn next_request<P: SharedPage>(
    ring: &mut NetTxBackRing<P>,
) -> Result<Option<NetifTxRequest>, RingError> {
    if let Some(r) = ring.take_request() {
        return Ok(Some(r));
    }
    ring.poll_requests()?;
    Ok(ring.take_request())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netif::{NetRxFrontRing, NetTxFrontRing};
    use crate::ring::HeapPage;
    use std::collections::BTreeMap;
    use xen_abi::io::netif::NetifRxRequest;

    const DOM: DomId = 3;

    #[derive(Default)]
    struct G(BTreeMap<GrantRef, Vec<u8>>);

    impl Grants for G {
        fn copy_from(
            &mut self,
            d: DomId,
            g: GrantRef,
            off: usize,
            buf: &mut [u8],
        ) -> Result<(), GrantError> {
            assert_eq!(d, DOM);
            assert!(off + buf.len() <= 4096);
            let p = self.0.get(&g).ok_or(GrantError(-3))?;
            buf.copy_from_slice(&p[off..off + buf.len()]);
            Ok(())
        }
        fn copy_to(
            &mut self,
            d: DomId,
            g: GrantRef,
            off: usize,
            data: &[u8],
        ) -> Result<(), GrantError> {
            assert_eq!(d, DOM);
            assert!(off + data.len() <= 4096);
            let p = self.0.get_mut(&g).ok_or(GrantError(-3))?;
            p[off..off + data.len()].copy_from_slice(data);
            Ok(())
        }
    }

    fn req(gref: u32, offset: u16, flags: u16, id: u16, size: u16) -> NetifTxRequest {
        NetifTxRequest {
            gref,
            offset,
            flags,
            id,
            size,
        }
    }

    fn run(
        slots: &[NetifTxRequest],
        cfg: BackendConfig,
        g: &mut G,
    ) -> (Vec<TxEvent>, Vec<NetifTxResponse>, Backend) {
        let p = HeapPage::page();
        let mut f = NetTxFrontRing::init(&p).unwrap();
        let mut b = NetTxBackRing::init(&p).unwrap();
        for s in slots {
            f.put_request(s).unwrap();
        }
        f.push_requests();
        let mut be = Backend::new(DOM, cfg);
        let mut evs = Vec::new();
        be.service_tx(&mut b, g, 100, |e| evs.push(e)).unwrap();
        let mut rsps = Vec::new();
        f.consume_responses(|r| rsps.push(r)).unwrap();
        (evs, rsps, be)
    }

    fn grants() -> G {
        let mut g = G::default();
        for r in 1..=4u32 {
            g.0.insert(r, (0..4096).map(|i| (i as u32 * r) as u8).collect());
        }
        g
    }

    #[test]
    fn a_two_slot_packet_with_an_extra() {
        let mut g = grants();
        let gso = NetifExtraGso {
            size: 1448,
            type_: XEN_NETIF_GSO_TYPE_TCPV4,
            pad: 0,
            features: 0,
        };
        let slots = [
            req(
                1,
                100,
                NETTXF_MORE_DATA | NETTXF_EXTRA_INFO | NETTXF_CSUM_BLANK,
                7,
                300,
            ),
            NetifExtraInfo::new_gso(&gso, 0).to_tx_slot(),
            req(2, 0, 0, 8, 100),
        ];
        let cfg = BackendConfig {
            gso: true,
            ..Default::default()
        };
        let (evs, rsps, be) = run(&slots, cfg, &mut g);
        let mut want = g.0[&1][100..300].to_vec();
        want.extend_from_slice(&g.0[&2][..100]);
        assert_eq!(
            evs,
            [TxEvent::Packet(TxPacket {
                data: want,
                flags: NETTXF_CSUM_BLANK,
                gso: Some(gso),
                hash: None
            })]
        );
        assert_eq!(
            rsps,
            [
                NetifTxResponse { id: 7, status: 0 },
                NetifTxResponse { id: 0, status: 1 },
                NetifTxResponse { id: 8, status: 0 }
            ]
        );
        assert_eq!(be.stats().tx_packets, 1);
        assert_eq!(be.stats().tx_bytes, 300);
        // Not offered: dropped.
        let (evs, rsps, be) = run(&slots, BackendConfig::default(), &mut g);
        assert!(evs.is_empty());
        assert_eq!(
            rsps.iter().map(|r| r.status).collect::<Vec<_>>(),
            [-1, 1, -1]
        );
        assert_eq!(be.stats().tx_dropped, 1);
    }

    #[test]
    fn malformed_packets_are_answered_and_dropped() {
        let cases: Vec<(Vec<NetifTxRequest>, TxReject)> = vec![
            (vec![req(1, 0, 0, 1, 13)], TxReject::TooShort),
            (vec![req(1, 4090, 0, 1, 60)], TxReject::CrossesPage),
            (
                vec![req(1, 0, NETTXF_MORE_DATA, 1, 100), req(2, 0, 0, 2, 200)],
                TxReject::SizeMismatch,
            ),
            (
                vec![req(1, 0, NETTXF_MORE_DATA, 1, 100), req(2, 4000, 0, 2, 97)],
                TxReject::CrossesPage,
            ),
            (
                vec![req(1, 0, NETTXF_MORE_DATA, 1, 100), req(2, 0, 0, 2, 90)],
                TxReject::TooShort,
            ),
            (
                vec![req(1, 0, NETTXF_EXTRA_INFO, 1, 100), req(0, 0, 0, 0, 0)],
                TxReject::BadExtraType(0),
            ),
            (
                vec![req(1, 0, NETTXF_EXTRA_INFO, 1, 100), req(9, 0, 0, 0, 0)],
                TxReject::BadExtraType(9),
            ),
            (
                vec![req(1, 0, NETTXF_MORE_DATA, 1, 100)],
                TxReject::Incomplete,
            ),
            (
                vec![req(1, 0, NETTXF_EXTRA_INFO, 1, 100)],
                TxReject::Incomplete,
            ),
            (vec![req(99, 0, 0, 1, 100)], TxReject::Grant(GrantError(-3))),
        ];
        for (slots, why) in cases {
            let mut g = grants();
            let be = Backend::new(DOM, BackendConfig::default());
            let p = HeapPage::page();
            let mut f = NetTxFrontRing::init(&p).unwrap();
            let mut b = NetTxBackRing::init(&p).unwrap();
            for s in &slots {
                f.put_request(s).unwrap();
            }
            f.push_requests();
            let chain = Backend::read_chain(&mut b).unwrap().unwrap();
            let mut be2 = be.clone();
            assert_eq!(be2.handle_tx(&chain, &mut g).1, Err(why), "{slots:?}");
            let (evs, rsps, be) = run(&slots, BackendConfig::default(), &mut g);
            assert!(evs.is_empty());
            assert_eq!(rsps.len(), slots.len(), "one response per slot");
            assert_eq!(rsps[0].status, NETIF_RSP_ERROR);
            assert_eq!(be.stats().tx_dropped + be.stats().tx_errors, 1);
        }
    }

    #[test]
    fn slot_limit() {
        let mut g = grants();
        let mut slots = vec![req(1, 0, NETTXF_MORE_DATA, 0, 18 * 100)];
        for i in 1..18u16 {
            let fl = if i < 17 { NETTXF_MORE_DATA } else { 0 };
            slots.push(req(2, 0, fl, i, 100));
        }
        let (evs, rsps, _) = run(&slots, BackendConfig::default(), &mut g);
        assert_eq!(evs.len(), 1, "18 slots are fine");
        assert!(rsps.iter().all(|r| r.status == 0));
        slots[17].flags = NETTXF_MORE_DATA;
        slots.push(req(2, 0, 0, 18, 0));
        let (evs, rsps, be) = run(&slots, BackendConfig::default(), &mut g);
        assert!(evs.is_empty(), "19 are not");
        assert_eq!(rsps.len(), 19);
        assert!(rsps.iter().all(|r| r.status == -1));
        assert_eq!(be.stats().tx_dropped, 1);
    }

    #[test]
    fn multicast_requests() {
        let mut g = grants();
        let slots = [
            req(0, 0, NETTXF_EXTRA_INFO, 4, 0),
            NetifExtraInfo::new_mcast(XEN_NETIF_EXTRA_TYPE_MCAST_ADD, [1, 0, 0x5e, 0, 0, 1], 0)
                .to_tx_slot(),
        ];
        let cfg = BackendConfig {
            multicast_control: true,
            ..Default::default()
        };
        let (evs, rsps, _) = run(&slots, cfg, &mut g);
        assert_eq!(
            evs,
            [TxEvent::Mcast {
                add: true,
                addr: [1, 0, 0x5e, 0, 0, 1]
            }]
        );
        assert_eq!(rsps[0], NetifTxResponse { id: 4, status: 0 });
        let (evs, rsps, _) = run(&slots, BackendConfig::default(), &mut g);
        assert!(evs.is_empty());
        assert_eq!(rsps[0].status, -1);
    }

    #[test]
    fn rx_delivery() {
        let mut g = G::default();
        for r in 10..13u32 {
            g.0.insert(r, vec![0; 4096]);
        }
        let p = HeapPage::page();
        let mut f = NetRxFrontRing::init(&p).unwrap();
        let mut b = NetRxBackRing::init(&p).unwrap();
        let mut be = Backend::new(DOM, BackendConfig::default());
        let pkt: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        assert_eq!(
            be.deliver_rx(&mut b, &mut g, &pkt, 0),
            Err(RxError::NoBuffers { needed: 2 })
        );
        assert_eq!(p.read_u32(SRING_REQ_EVENT), 2, "notify when 2 are posted");
        for (id, gref) in [(5u16, 10u32), (6, 11)] {
            f.put_request(&NetifRxRequest { id, pad: 0, gref }).unwrap();
        }
        assert!(f.push_requests_and_check_notify());
        let sent = be
            .deliver_rx(&mut b, &mut g, &pkt, NETRXF_DATA_VALIDATED)
            .unwrap();
        assert_eq!(sent.slots, 2);
        assert!(sent.ok && sent.notify);
        let mut rsps = Vec::new();
        f.consume_responses(|r| rsps.push(r)).unwrap();
        assert_eq!(
            rsps,
            [
                NetifRxResponse {
                    id: 5,
                    offset: 0,
                    flags: NETRXF_MORE_DATA | NETRXF_DATA_VALIDATED,
                    status: 4096
                },
                NetifRxResponse {
                    id: 6,
                    offset: 0,
                    flags: 0,
                    status: 904
                }
            ]
        );
        assert_eq!(&g.0[&10][..], &pkt[..4096]);
        assert_eq!(&g.0[&11][..904], &pkt[4096..]);
        assert_eq!(be.stats().rx_packets, 1);
        assert_eq!(be.stats().rx_dropped, 1);
        // A bad grant: error statuses, chain intact.
        f.put_request(&NetifRxRequest {
            id: 1,
            pad: 0,
            gref: 99,
        })
        .unwrap();
        f.push_requests();
        let sent = be.deliver_rx(&mut b, &mut g, &pkt[..60], 0).unwrap();
        assert!(!sent.ok);
        let mut rsps = Vec::new();
        f.consume_responses(|r| rsps.push(r)).unwrap();
        assert_eq!(rsps[0].status, NETIF_RSP_ERROR);
        assert_eq!(be.stats().rx_errors, 1);
        assert_eq!(
            be.deliver_rx(&mut b, &mut g, &[], 0),
            Err(RxError::BadPacket)
        );
        assert_eq!(
            be.deliver_rx(&mut b, &mut g, &vec![0; 65536], 0),
            Err(RxError::BadPacket)
        );
    }
}
