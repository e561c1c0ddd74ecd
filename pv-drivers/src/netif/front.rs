//! netfront's core: tx ids and requests, tx completions, rx buffer posting and the
//! reassembly of received frames.
//!
//! Ids on both rings are slot indices `0..ring size` from free lists, so at most a
//! ring's worth of requests is outstanding per ring and a started request always finds
//! a free ring slot.
//!
//! - tx: [`TxFrontend::start_tx`] builds the requests of one frame placed from offset 0
//!   of its pages (one slot when it fits a page; else a `NETTXF_more_data` chain whose
//!   first `size` is the whole frame's); each slot has its own id and token (the
//!   caller's bounce page). [`TxFrontend::complete`] matches a response.
//! - rx: [`RxFrontend::post`] allocates an id for a buffer the caller granted;
//!   [`RxFrontend::complete`] matches a response, hands the buffer back, and assembles
//!   `NETRXF_more_data` chains into frames, dropping a chain with any bad slot
//!   (`status <= 0`, `offset + status > 4096`, more than 18 slots) as Linux's
//!   `xennet_get_responses` does.
//!
//! The backend is untrusted: a response with an unknown or duplicate id, or one the
//! frontend never asked for (an rx extra-info slot), is a [`FrontError`], never a panic.

use alloc::vec::Vec;

use xen_abi::grant_table::GrantRef;
use xen_abi::io::netif::{
    NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse, NETIF_RSP_NULL,
    NETIF_RSP_OKAY, NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED, NETRXF_EXTRA_INFO, NETRXF_MORE_DATA,
    NETTXF_MORE_DATA, XEN_NETIF_NR_SLOTS_MIN,
};
use xen_abi::io::ring::XEN_PAGE_SIZE;

use super::{slots_for, ETH_HLEN, MAX_PACKET};

/// Why the frontend refused a call or a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontError {
    /// The ring has no entries.
    NoRing,
    /// Not enough free ids (the ring is full): reap responses and retry.
    Busy,
    /// A frame shorter than an Ethernet header.
    TooShort,
    /// A frame longer than 65535 bytes, or needing more slots than the backend takes.
    TooLong,
    /// The number of pages given does not match the frame.
    PageCount { expected: usize, got: usize },
    /// A response whose id was never a valid id.
    UnknownId(u16),
    /// A response for an id not outstanding (a duplicate or stale response).
    DuplicateId(u16),
    /// An rx response with `NETRXF_extra_info`, which this frontend never asked for.
    UnexpectedExtra,
}

struct Ids<T> {
    slots: Vec<Option<T>>,
    free: Vec<u16>,
}

impl<T> Ids<T> {
    fn new(size: u32) -> Result<Self, FrontError> {
        // Ids are u16: a ring of more than 65536 entries would need more.
        let size = u16::try_from(size.min(1 << 15)).map_err(|_| FrontError::NoRing)?;
        if size == 0 {
            return Err(FrontError::NoRing);
        }
        Ok(Self {
            slots: (0..size).map(|_| None).collect(),
            free: (0..size).rev().collect(),
        })
    }
    fn alloc(&mut self, token: T) -> Result<u16, FrontError> {
        let id = self.free.pop().ok_or(FrontError::Busy)?;
        if let Some(s) = self.slots.get_mut(usize::from(id)) {
            *s = Some(token);
        }
        Ok(id)
    }
    fn take(&mut self, id: u16) -> Result<T, FrontError> {
        let slot = self
            .slots
            .get_mut(usize::from(id))
            .ok_or(FrontError::UnknownId(id))?;
        let t = slot.take().ok_or(FrontError::DuplicateId(id))?;
        self.free.push(id);
        Ok(t)
    }
    fn outstanding(&self) -> usize {
        self.slots.len() - self.free.len()
    }
    fn drain(&mut self) -> Vec<T> {
        let mut v = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if let Some(t) = s.take() {
                v.push(t);
                self.free.push(i as u16);
            }
        }
        v
    }
}

/// A finished tx slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxCompletion<T> {
    /// Its id (free again).
    pub id: u16,
    /// `NETIF_RSP_*` as the backend sent it.
    pub status: i16,
    /// What the caller attached to the slot.
    pub token: T,
}

impl<T> TxCompletion<T> {
    /// `NETIF_RSP_OKAY`.
    pub fn is_ok(&self) -> bool {
        self.status == NETIF_RSP_OKAY
    }
}

/// netfront's transmit side for one tx ring.
pub struct TxFrontend<T> {
    ids: Ids<T>,
    max_slots: usize,
}

impl<T> core::fmt::Debug for TxFrontend<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TxFrontend")
            .field("outstanding", &self.ids.outstanding())
            .field("max_slots", &self.max_slots)
            .finish()
    }
}

impl<T> TxFrontend<T> {
    /// A frontend over a tx ring of `ring_size` entries; frames take at most
    /// `max_slots` slots (1 without `feature-sg`; capped at 18).
    pub fn new(ring_size: u32, max_slots: usize) -> Result<Self, FrontError> {
        Ok(Self {
            ids: Ids::new(ring_size)?,
            max_slots: max_slots.clamp(1, XEN_NETIF_NR_SLOTS_MIN),
        })
    }

    /// Slots outstanding.
    pub fn in_flight(&self) -> usize {
        self.ids.outstanding()
    }
    /// Ids free.
    pub fn free_ids(&self) -> usize {
        self.ids.free.len()
    }
    /// Most slots per frame.
    pub fn max_slots(&self) -> usize {
        self.max_slots
    }
    /// The longest frame this frontend sends.
    pub fn max_frame(&self) -> usize {
        (self.max_slots * XEN_PAGE_SIZE).min(MAX_PACKET)
    }

    /// Check a frame length; the slots (pages) it needs.
    pub fn slots_needed(&self, len: usize) -> Result<usize, FrontError> {
        if len < ETH_HLEN {
            return Err(FrontError::TooShort);
        }
        if len > self.max_frame() {
            return Err(FrontError::TooLong);
        }
        Ok(slots_for(len))
    }

    /// Build the requests of a frame of `len` bytes, laid out from offset 0 of the
    /// pages `pages` (grant reference and the caller's token for each, one per
    /// [`slots_needed`](Self::slots_needed)). `flags` (`NETTXF_csum_blank`,
    /// `NETTXF_data_validated`) go on the first request. Either every slot gets an id
    /// or none does.
    pub fn start_tx(
        &mut self,
        len: usize,
        pages: Vec<(GrantRef, T)>,
        flags: u16,
    ) -> Result<Vec<NetifTxRequest>, FrontError> {
        let n = self.slots_needed(len)?;
        if pages.len() != n {
            return Err(FrontError::PageCount {
                expected: n,
                got: pages.len(),
            });
        }
        if self.ids.free.len() < n {
            return Err(FrontError::Busy);
        }
        let mut reqs = Vec::with_capacity(n);
        for (i, (gref, token)) in pages.into_iter().enumerate() {
            let id = self.ids.alloc(token)?;
            let more = if i + 1 < n { NETTXF_MORE_DATA } else { 0 };
            // First: the whole frame's length (<= 65535); then each page's part.
            let size = if i == 0 {
                len
            } else {
                (len - i * XEN_PAGE_SIZE).min(XEN_PAGE_SIZE)
            };
            reqs.push(NetifTxRequest {
                gref,
                offset: 0,
                flags: more | if i == 0 { flags } else { 0 },
                id,
                size: size as u16,
            });
        }
        Ok(reqs)
    }

    /// Give back the slots of requests that were never put on the ring.
    pub fn cancel(&mut self, reqs: &[NetifTxRequest]) -> Vec<T> {
        reqs.iter()
            .filter_map(|r| self.ids.take(r.id).ok())
            .collect()
    }

    /// Match a response: `Ok(None)` for a `NETIF_RSP_NULL` (an extra-info slot's
    /// answer, skipped as Linux's netfront does).
    pub fn complete(
        &mut self,
        rsp: &NetifTxResponse,
    ) -> Result<Option<TxCompletion<T>>, FrontError> {
        if rsp.status == NETIF_RSP_NULL {
            return Ok(None);
        }
        let token = self.ids.take(rsp.id)?;
        Ok(Some(TxCompletion {
            id: rsp.id,
            status: rsp.status,
            token,
        }))
    }

    /// Every outstanding slot's token (at teardown).
    pub fn drain(&mut self) -> Vec<T> {
        self.ids.drain()
    }
}

/// A received frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxFrame {
    /// The frame, Ethernet header first.
    pub data: Vec<u8>,
    /// `NETRXF_data_validated | NETRXF_csum_blank` of the first slot.
    pub flags: u16,
}

/// What one rx response completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    /// Part of a frame; more slots follow.
    Pending,
    /// A whole frame.
    Frame(RxFrame),
    /// The end of a chain with a bad slot (error status, bad offset/size, too many
    /// slots): the frame is dropped.
    Dropped,
}

#[derive(Debug, Default)]
struct Partial {
    data: Vec<u8>,
    flags: u16,
    slots: usize,
    bad: bool,
}

/// netfront's receive side for one rx ring.
pub struct RxFrontend<T> {
    ids: Ids<T>,
    partial: Option<Partial>,
}

impl<T> core::fmt::Debug for RxFrontend<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RxFrontend")
            .field("posted", &self.ids.outstanding())
            .field("partial", &self.partial)
            .finish()
    }
}

impl<T> RxFrontend<T> {
    /// A frontend over an rx ring of `ring_size` entries.
    pub fn new(ring_size: u32) -> Result<Self, FrontError> {
        Ok(Self {
            ids: Ids::new(ring_size)?,
            partial: None,
        })
    }

    /// Buffers posted and not yet answered.
    pub fn posted(&self) -> usize {
        self.ids.outstanding()
    }
    /// Ids free (buffers that could still be posted).
    pub fn free_ids(&self) -> usize {
        self.ids.free.len()
    }
    /// Whether a frame is half received.
    pub fn in_frame(&self) -> bool {
        self.partial.is_some()
    }

    /// The request posting the buffer `gref` (the caller's `token`, e.g. its page).
    pub fn post(&mut self, gref: GrantRef, token: T) -> Result<NetifRxRequest, FrontError> {
        let id = self.ids.alloc(token)?;
        Ok(NetifRxRequest { id, pad: 0, gref })
    }

    /// Give back the buffer of a request that was never put on the ring.
    pub fn cancel(&mut self, req: &NetifRxRequest) -> Option<T> {
        self.ids.take(req.id).ok()
    }

    /// Match a response: the buffer comes back (to be posted again) with what it
    /// completed. `read(token, offset, out)` copies `out.len()` bytes at `offset` of the
    /// buffer's page (called only with `offset + out.len() <= 4096`).
    pub fn complete(
        &mut self,
        rsp: &NetifRxResponse,
        read: impl FnOnce(&T, usize, &mut [u8]),
    ) -> Result<(T, RxOutcome), FrontError> {
        if rsp.flags & NETRXF_EXTRA_INFO != 0 {
            return Err(FrontError::UnexpectedExtra);
        }
        let token = self.ids.take(rsp.id)?;
        let p = self.partial.get_or_insert_with(|| Partial {
            flags: rsp.flags & (NETRXF_DATA_VALIDATED | NETRXF_CSUM_BLANK),
            ..Partial::default()
        });
        p.slots += 1;
        let off = usize::from(rsp.offset);
        let good = rsp.status > 0
            && off + rsp.status as usize <= XEN_PAGE_SIZE
            && p.slots <= XEN_NETIF_NR_SLOTS_MIN
            && !p.bad;
        if good {
            let len = rsp.status as usize;
            let at = p.data.len();
            p.data.resize(at + len, 0);
            if let Some(dst) = p.data.get_mut(at..) {
                read(&token, off, dst);
            }
        } else {
            p.bad = true;
            p.data = Vec::new();
        }
        if rsp.flags & NETRXF_MORE_DATA != 0 {
            return Ok((token, RxOutcome::Pending));
        }
        let outcome = match self.partial.take() {
            Some(p) if !p.bad => RxOutcome::Frame(RxFrame {
                data: p.data,
                flags: p.flags,
            }),
            _ => RxOutcome::Dropped,
        };
        Ok((token, outcome))
    }

    /// Every posted buffer's token (at teardown).
    pub fn drain(&mut self) -> Vec<T> {
        self.partial = None;
        self.ids.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_requests_and_completions() {
        let mut f = TxFrontend::<u32>::new(4, 18).unwrap();
        assert_eq!(f.start_tx(13, vec![(1, 0)], 0), Err(FrontError::TooShort));
        assert_eq!(f.slots_needed(65536), Err(FrontError::TooLong));
        let r = f.start_tx(60, vec![(9, 90)], 1).unwrap();
        assert_eq!(
            r,
            [NetifTxRequest {
                gref: 9,
                offset: 0,
                flags: 1,
                id: 0,
                size: 60
            }]
        );
        assert_eq!(
            f.start_tx(5000, vec![(1, 1)], 0),
            Err(FrontError::PageCount {
                expected: 2,
                got: 1
            })
        );
        let r = f.start_tx(5000, vec![(1, 10), (2, 20)], 0).unwrap();
        assert_eq!(r[0].flags, NETTXF_MORE_DATA);
        assert_eq!((r[0].size, r[1].size, r[1].flags), (5000, 904, 0));
        assert_eq!(f.in_flight(), 3);
        assert_eq!(
            f.start_tx(5000, vec![(1, 10), (2, 20)], 0),
            Err(FrontError::Busy),
            "one id left"
        );
        assert_eq!(f.in_flight(), 3, "nothing half-allocated");
        assert_eq!(
            f.complete(&NetifTxResponse {
                id: 1,
                status: NETIF_RSP_NULL
            }),
            Ok(None)
        );
        let c = f
            .complete(&NetifTxResponse { id: 1, status: 0 })
            .unwrap()
            .unwrap();
        assert_eq!((c.token, c.is_ok()), (10, true));
        assert_eq!(
            f.complete(&NetifTxResponse { id: 1, status: 0 }),
            Err(FrontError::DuplicateId(1))
        );
        assert_eq!(
            f.complete(&NetifTxResponse { id: 4, status: 0 }),
            Err(FrontError::UnknownId(4))
        );
        let mut left = f.drain();
        left.sort();
        assert_eq!(left, [20, 90]);
        assert_eq!(f.in_flight(), 0);
        let f1 = TxFrontend::<u32>::new(4, 1).unwrap();
        assert_eq!(f1.slots_needed(4097), Err(FrontError::TooLong));
    }

    fn rsp(id: u16, offset: u16, flags: u16, status: i16) -> NetifRxResponse {
        NetifRxResponse {
            id,
            offset,
            flags,
            status,
        }
    }

    #[test]
    fn rx_reassembly() {
        let mut f = RxFrontend::<u8>::new(8).unwrap();
        for g in 0..4u8 {
            f.post(u32::from(g), g).unwrap();
        }
        let read = |t: &u8, off: usize, out: &mut [u8]| {
            for (i, b) in out.iter_mut().enumerate() {
                *b = t.wrapping_mul(16).wrapping_add((off + i) as u8);
            }
        };
        let (t, o) = f
            .complete(
                &rsp(0, 10, NETRXF_MORE_DATA | NETRXF_DATA_VALIDATED, 3),
                read,
            )
            .unwrap();
        assert_eq!((t, o), (0, RxOutcome::Pending));
        assert!(f.in_frame());
        let (t, o) = f.complete(&rsp(1, 0, 0, 2), read).unwrap();
        assert_eq!(t, 1);
        assert_eq!(
            o,
            RxOutcome::Frame(RxFrame {
                data: vec![10, 11, 12, 16, 17],
                flags: NETRXF_DATA_VALIDATED
            })
        );
        // An error in a chain drops the whole chain, and the buffers come back.
        let (_, o) = f.complete(&rsp(2, 0, NETRXF_MORE_DATA, -1), read).unwrap();
        assert_eq!(o, RxOutcome::Pending);
        assert_eq!(
            f.complete(&rsp(3, 0, 0, 100), read).unwrap().1,
            RxOutcome::Dropped
        );
        assert_eq!(f.posted(), 0);
        for mut bad in [
            rsp(0, 4000, 0, 97),
            rsp(0, 0, 0, 0),
            rsp(0, 65535, 0, i16::MAX),
        ] {
            bad.id = f.post(0, 0).unwrap().id;
            assert_eq!(f.complete(&bad, read).unwrap().1, RxOutcome::Dropped);
        }
        assert_eq!(
            f.complete(&rsp(0, 0, 0, 1), read),
            Err(FrontError::DuplicateId(0))
        );
        assert_eq!(
            f.complete(&rsp(9, 0, 0, 1), read),
            Err(FrontError::UnknownId(9))
        );
        let id = f.post(0, 0).unwrap().id;
        assert_eq!(
            f.complete(&rsp(id, 0, NETRXF_EXTRA_INFO, 1), read),
            Err(FrontError::UnexpectedExtra)
        );
    }

    #[test]
    fn rx_chains_longer_than_18_are_dropped() {
        let mut f = RxFrontend::<()>::new(32).unwrap();
        for _ in 0..19 {
            f.post(1, ()).unwrap();
        }
        for id in 0..18 {
            let o = f
                .complete(&rsp(id, 0, NETRXF_MORE_DATA, 1), |_, _, _| {})
                .unwrap()
                .1;
            assert_eq!(o, RxOutcome::Pending);
        }
        assert_eq!(
            f.complete(&rsp(18, 0, 0, 1), |_, _, _| {}).unwrap().1,
            RxOutcome::Dropped
        );
    }
}
