//! The network protocol cores: any bytes in tx ring slots are answered one response per
//! slot and never panic the backend; valid frames go front → back (tx) and back →
//! front (rx) byte-exactly over shared rings and a fake grant table; hostile responses
//! are reported by the frontend, never a panic.
// Helpers outside #[test] fns unwrap too: a test that unwraps fails loudly.
#![allow(clippy::unwrap_used)]

mod common;

use common::MemGrants;
use proptest::prelude::*;
use pv_drivers::netif::{
    Backend, BackendConfig, FrontError, NetRxBackRing, NetRxFrontRing, NetTxBackRing,
    NetTxFrontRing, RxError, RxFrontend, RxOutcome, TxEvent, TxFrontend,
};
use pv_drivers::ring::HeapPage;
use xen_abi::io::netif::*;
use xen_abi::wire::Wire;

const DOM: u16 = 7;

/// The fake frontend's pages: grefs 1..=`n` writable frames of a pattern.
fn grants(n: u32) -> MemGrants {
    let mut g = MemGrants::new(DOM);
    for r in 1..=n {
        g.grant(
            r,
            (0..4096).map(|i| (i * 7 + r as usize) as u8).collect(),
            false,
        );
    }
    g
}

/// A slot: raw bytes, sometimes with the chaining flags forced on or off.
fn slot() -> impl Strategy<Value = NetifTxRequest> {
    (
        any::<[u8; 12]>(),
        prop_oneof![Just(None), (0u16..16).prop_map(Some)],
        prop_oneof![Just(None), (0u32..10).prop_map(Some)],
        prop_oneof![Just(None), (0u16..=4096).prop_map(Some)],
    )
        .prop_map(|(b, flags, gref, size)| {
            let mut r = NetifTxRequest::get(&b);
            if let Some(f) = flags {
                r.flags = f;
            }
            if let Some(g) = gref {
                r.gref = g;
            }
            if let Some(s) = size {
                r.size = s;
                r.offset %= 4096 - s.min(4095);
            }
            r
        })
}

fn frame(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any slots: every one answered exactly once (responses are in slot order:
    /// NULL for an extra slot, else the slot's id), the ring fully consumed, good
    /// packets counted.
    #[test]
    fn any_tx_slots_get_one_response_each(
        slots in proptest::collection::vec(slot(), 1..=256),
        gso in any::<bool>(),
        mcast in any::<bool>(),
    ) {
        let p = HeapPage::page();
        let mut f = NetTxFrontRing::init(&p).unwrap();
        let mut b = NetTxBackRing::init(&p).unwrap();
        for s in &slots {
            f.put_request(s).unwrap();
        }
        f.push_requests();
        let mut g = grants(8);
        let cfg = BackendConfig { gso, multicast_control: mcast, ..Default::default() };
        let mut be = Backend::new(DOM, cfg);
        let mut events = 0u64;
        let done = be.service_tx(&mut b, &mut g, usize::MAX, |e| {
            if let TxEvent::Packet(p) = &e {
                assert!(p.data.len() >= 14);
            }
            events += 1;
        }).unwrap();
        prop_assert!(!done.more);
        prop_assert_eq!(b.req_cons(), slots.len() as u32);
        let mut rsps = Vec::new();
        f.consume_responses(|r| rsps.push(r)).unwrap();
        prop_assert_eq!(rsps.len(), slots.len());
        for (r, s) in rsps.iter().zip(&slots) {
            prop_assert!(r.status == NETIF_RSP_NULL || r.id == s.id);
            prop_assert!(matches!(r.status, NETIF_RSP_NULL | NETIF_RSP_OKAY | NETIF_RSP_ERROR));
        }
        let st = be.stats();
        prop_assert_eq!(st.tx_packets + st.tx_mcast, events);
        prop_assert_eq!(done.handled as u64, events + st.tx_dropped + st.tx_errors);
        // The pages are only read.
        prop_assert_eq!(g.frames, grants(8).frames);
    }

    /// Frames through TxFrontend → tx ring → Backend arrive byte-exactly, and every
    /// slot's id comes back OKAY.
    #[test]
    fn tx_round_trip(
        lens in proptest::collection::vec(prop_oneof![14usize..=1514, 14usize..=65535], 1..6),
        seed in any::<u64>(),
        flags in 0u16..4,
    ) {
        let p = HeapPage::page();
        let mut ring = NetTxFrontRing::init(&p).unwrap();
        let mut back = NetTxBackRing::init(&p).unwrap();
        let mut fe = TxFrontend::<u32>::new(ring.size(), 18).unwrap();
        let mut g = MemGrants::new(DOM);
        let mut next = 1u32;
        let frames: Vec<Vec<u8>> =
            lens.iter().enumerate().map(|(i, &n)| frame(n, seed ^ i as u64)).collect();
        for fr in &frames {
            let mut pages = Vec::new();
            for chunk in fr.chunks(4096) {
                let mut page = vec![0u8; 4096];
                page[..chunk.len()].copy_from_slice(chunk);
                g.grant(next, page, true);
                pages.push((next, next));
                next += 1;
            }
            for r in fe.start_tx(fr.len(), pages, flags).unwrap() {
                ring.put_request(&r).unwrap();
            }
        }
        ring.push_requests();
        let mut be = Backend::new(DOM, BackendConfig::default());
        let mut got = Vec::new();
        be.service_tx(&mut back, &mut g, usize::MAX, |e| got.push(e)).unwrap();
        prop_assert_eq!(got.len(), frames.len());
        for (e, fr) in got.iter().zip(&frames) {
            let TxEvent::Packet(p) = e else { panic!("{e:?}") };
            prop_assert_eq!(&p.data, fr);
            prop_assert_eq!(p.flags, flags);
        }
        let mut done = 0;
        ring.consume_responses(|r| {
            let c = fe.complete(&r).unwrap().unwrap();
            assert!(c.is_ok());
            done += 1;
        }).unwrap();
        prop_assert_eq!(done, next - 1);
        prop_assert_eq!(fe.in_flight(), 0);
    }

    /// Frames through Backend::deliver_rx → rx ring → RxFrontend arrive byte-exactly,
    /// with buffers reposted as they come back.
    #[test]
    fn rx_round_trip(
        lens in proptest::collection::vec(prop_oneof![1usize..=1514, 1usize..=65535], 1..8),
        buffers in 16usize..=40,
        seed in any::<u64>(),
        validated in any::<bool>(),
    ) {
        let p = HeapPage::page();
        let mut ring = NetRxFrontRing::init(&p).unwrap();
        let mut back = NetRxBackRing::init(&p).unwrap();
        let mut fe = RxFrontend::<u32>::new(ring.size()).unwrap();
        let mut g = MemGrants::new(DOM);
        for gref in 1..=buffers as u32 {
            g.grant(gref, vec![0; 4096], false);
            ring.put_request(&fe.post(gref, gref).unwrap()).unwrap();
        }
        ring.push_requests();
        let frames: Vec<Vec<u8>> =
            lens.iter().enumerate().map(|(i, &n)| frame(n, seed ^ i as u64)).collect();
        let flags = if validated { NETRXF_DATA_VALIDATED } else { 0 };
        let mut be = Backend::new(DOM, BackendConfig::default());
        let mut got = Vec::new();
        for fr in &frames {
            let mut tries = 0;
            loop {
                match be.deliver_rx(&mut back, &mut g, fr, flags) {
                    Ok(s) => { prop_assert!(s.ok); break; }
                    Err(RxError::NoBuffers { needed }) => {
                        prop_assert!(needed > 0 && tries < 2);
                        tries += 1;
                    }
                    Err(e) => panic!("{e:?}"),
                }
                // The guest takes what arrived and posts the buffers again.
                let mut rsps = Vec::new();
                ring.consume_responses(|r| rsps.push(r)).unwrap();
                for r in rsps {
                    let (gref, out) = fe.complete(&r, |&gr, off, out| {
                        out.copy_from_slice(&g.frames[&gr].data[off..off + out.len()]);
                    }).unwrap();
                    match out {
                        RxOutcome::Frame(f) => got.push(f),
                        RxOutcome::Pending => {}
                        RxOutcome::Dropped => panic!("dropped"),
                    }
                    ring.put_request(&fe.post(gref, gref).unwrap()).unwrap();
                }
                ring.push_requests();
            }
        }
        let mut rsps = Vec::new();
        ring.consume_responses(|r| rsps.push(r)).unwrap();
        for r in rsps {
            let (_, out) = fe.complete(&r, |&gr, off, out| {
                out.copy_from_slice(&g.frames[&gr].data[off..off + out.len()]);
            }).unwrap();
            if let RxOutcome::Frame(f) = out {
                got.push(f);
            }
        }
        prop_assert_eq!(got.len(), frames.len());
        for (g, f) in got.iter().zip(&frames) {
            prop_assert_eq!(&g.data, f);
            prop_assert_eq!(g.flags, flags);
        }
        prop_assert!(!fe.in_frame());
        prop_assert_eq!(be.stats().rx_packets, frames.len() as u64);
    }

    /// Hostile responses to a frontend with some requests outstanding: each is taken or
    /// refused with an error, never a panic, and ids stay consistent.
    #[test]
    fn hostile_responses_never_panic(
        tx in proptest::collection::vec(any::<[u8; 4]>(), 0..64),
        rx in proptest::collection::vec(any::<[u8; 8]>(), 0..64),
    ) {
        let mut t = TxFrontend::<u16>::new(256, 18).unwrap();
        for i in 0..20u16 {
            t.start_tx(100, vec![(1, i)], 0).unwrap();
        }
        for b in &tx {
            match t.complete(&NetifTxResponse::get(b)) {
                Ok(_) | Err(FrontError::UnknownId(_)) | Err(FrontError::DuplicateId(_)) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        prop_assert!(t.in_flight() <= 20);
        let mut r = RxFrontend::<u16>::new(256).unwrap();
        for i in 0..20u16 {
            r.post(1, i).unwrap();
        }
        for b in &rx {
            let _ = r.complete(&NetifRxResponse::get(b), |_, off, out| {
                assert!(off + out.len() <= 4096);
            });
        }
        prop_assert!(r.posted() <= 20);
    }
}
