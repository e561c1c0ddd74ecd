//! The block frontend: splitting covers exactly the requested range; a whole
//! frontend/ring/backend/disk stack moves data like a plain byte array; hostile
//! responses are reported, never a panic.
// Helpers outside #[test] fns unwrap too: a test that unwraps fails loudly.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{MemDisk, MemGrants};
use proptest::prelude::*;
use pv_drivers::blkif::{
    Backend, BackendFeatures, BackendInfo, BlkBackRing, BlkFrontRing, FrontError, Frontend, IoChunk,
};
use pv_drivers::ring::HeapPage;
use xen_abi::io::blkif::*;

fn info(sector_size: u32, sectors: u64, max_indirect: u32, ro: bool) -> BackendInfo {
    BackendInfo {
        sectors,
        sector_size,
        physical_sector_size: sector_size,
        info: if ro { VDISK_READONLY } else { 0 },
        feature_flush_cache: true,
        max_indirect_segments: max_indirect,
        ..Default::default()
    }
}

/// Check `chunks` cover exactly `len` bytes at `offset` from a buffer starting
/// `bpo` bytes into its first page.
fn check_cover(fe: &Frontend<()>, chunks: &[IoChunk], offset: u64, len: usize, bpo: usize) {
    let lbs = (fe.info().sector_size / 512) as u64;
    let mut pos = 0usize;
    for c in chunks {
        assert_eq!(c.buf_offset, pos, "chunks are contiguous in the buffer");
        assert_eq!(
            c.sector_number * 512,
            offset + pos as u64,
            "and on the disk"
        );
        assert_eq!(c.sector_number % lbs, 0);
        assert!(!c.segments.is_empty() && c.segments.len() <= fe.max_segments());
        assert!(c.segments.len() <= 11 || fe.uses_indirect());
        assert_eq!(c.is_indirect(), c.segments.len() > 11);
        assert!(c.indirect_pages() <= BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
        let mut clen = 0;
        for s in &c.segments {
            assert!(s.first_sect <= s.last_sect && s.last_sect <= 7);
            assert_eq!(u64::from(s.last_sect - s.first_sect + 1) % lbs, 0);
            // The segment's first byte is the next byte of the buffer.
            assert_eq!(s.page * 4096 + s.page_offset(), bpo + pos + clen);
            clen += s.len();
        }
        assert_eq!(clen, c.len);
        pos += c.len;
    }
    assert_eq!(pos, len, "the whole range, nothing more");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn split_covers_exactly_the_range(
        ss in prop_oneof![Just(512u32), Just(1024), Just(4096)],
        max_ind in prop_oneof![Just(0u32), Just(11), Just(12), Just(32), Just(600), Just(9999)],
        wanted in prop_oneof![Just(0u32), Just(32), Just(4096)],
        offset in 0u64..(1 << 24),
        len in 0usize..(3 << 20),
        bpo in 0usize..4096,
        aligned in prop::bool::weighted(0.9),
        write in any::<bool>(),
        ro in prop::bool::weighted(0.1),
    ) {
        let sectors = 1u64 << 16; // 32 MiB
        let fe: Frontend<()> = Frontend::new(info(ss, sectors, max_ind, ro), 0, 32, wanted).unwrap();
        let a = ss as usize;
        let (offset, len, bpo) = if aligned {
            (offset / a as u64 * a as u64, len / a * a, bpo / a * a)
        } else {
            (offset, len, bpo)
        };
        let r = fe.plan_io(write, offset, len, bpo);
        let ok_alignment = offset % a as u64 == 0 && len % a == 0 && bpo % a == 0;
        let in_range = offset + len as u64 <= sectors * 512;
        match r {
            Ok(chunks) => {
                prop_assert!(!(write && ro) && len > 0 && ok_alignment && in_range);
                check_cover(&fe, &chunks, offset, len, bpo);
                let segs: usize = chunks.iter().map(|c| c.segments.len()).sum();
                prop_assert_eq!(segs, (bpo + len).div_ceil(4096), "one segment per page");
                let expect_max = if max_ind.min(wanted) > 11 { max_ind.min(wanted).min(4096) as usize } else { 11 };
                prop_assert_eq!(fe.max_segments(), expect_max);
            }
            Err(FrontError::ReadOnly) => prop_assert!(write && ro),
            Err(FrontError::Empty) => prop_assert_eq!(len, 0),
            Err(FrontError::Unaligned) => prop_assert!(!ok_alignment),
            Err(FrontError::OutOfRange) => prop_assert!(!in_range),
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }
}

/// The guest's side of the end-to-end test: buffer pages granted in `grants`.
struct Guest {
    fe: Frontend<(usize, Vec<u32>)>,
    ring: BlkFrontRing<&'static HeapPage>,
    next_gref: u32,
}

#[derive(Clone, Debug)]
struct Io {
    write: bool,
    offset: u64,
    len: usize,
    bpo: usize,
    seed: u8,
}

fn io(ss: usize, sectors: u64) -> impl Strategy<Value = Io> {
    let cap = sectors as usize * 512;
    (
        any::<bool>(),
        0..cap / ss,
        1usize..200,
        0..4096 / ss,
        any::<u8>(),
    )
        .prop_map(move |(write, o, n, b, seed)| {
            let offset = (o * ss) as u64;
            let len = (n * ss).min(cap - o * ss).max(ss);
            Io {
                write,
                offset,
                len,
                bpo: b * ss,
                seed,
            }
        })
}

/// Run the backend until the frontend got every response for `pending` chunks; copy
/// read data back into `buf`.
#[allow(clippy::too_many_arguments)]
fn settle(
    g: &mut Guest,
    be: &Backend,
    back: &mut BlkBackRing<&'static HeapPage>,
    grants: &mut MemGrants,
    disk: &mut MemDisk,
    chunks: &[IoChunk],
    buf: &mut [u8],
    bpo: usize,
) {
    while g.fe.in_flight() > 0 {
        be.service(back, grants, disk, 1000).unwrap();
        g.ring.poll_responses().unwrap();
        while let Some(rsp) = g.ring.take_response() {
            let c = g.fe.complete(&rsp).unwrap();
            assert!(c.is_ok(), "status {}", c.status);
            let (ci, grefs) = c.token;
            let chunk = &chunks[ci];
            // `buf` holds the whole first page: the data starts at `bpo`.
            let mut pos = bpo + chunk.buf_offset;
            for (s, gref) in chunk.segments.iter().zip(&grefs) {
                let f = grants.frames.remove(gref).unwrap();
                if !chunk.write {
                    buf[pos..pos + s.len()]
                        .copy_from_slice(&f.data[s.page_offset()..s.page_offset() + s.len()]);
                }
                pos += s.len();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn end_to_end_matches_a_byte_array(
        ss in prop_oneof![Just(512usize), Just(4096)],
        max_ind in prop_oneof![Just(0u32), Just(32)],
        ios in proptest::collection::vec(io(512, 1024), 1..12),
    ) {
        let sectors = 1024u64;
        let page: &'static HeapPage = Box::leak(Box::new(HeapPage::page()));
        let mut disk = MemDisk::new(sectors as usize * 512, ss as u32);
        let mut model = disk.data.clone();
        let features = BackendFeatures { flush_cache: true, max_indirect_segments: max_ind, ..Default::default() };
        let be = Backend::new(features, 9);
        let mut grants = MemGrants::new(9);
        let mut back = BlkBackRing::init(page).unwrap();
        let ring = BlkFrontRing::init(page).unwrap();
        let size = ring.size();
        let mut g = Guest {
            fe: Frontend::new(info(ss as u32, sectors, max_ind, false), 0x300, size, 4096).unwrap(),
            ring,
            next_gref: 1,
        };
        for io in &ios {
            // Align the generated I/O to this disk's sector size.
            let offset = io.offset / ss as u64 * ss as u64;
            let len = (io.len / ss * ss).max(ss).min(sectors as usize * 512 - offset as usize);
            let bpo = io.bpo / ss * ss;
            let mut buf: Vec<u8> = (0..bpo + len).map(|i| (i as u8) ^ io.seed).collect();
            let chunks = g.fe.plan_io(io.write, offset, len, bpo).unwrap();
            for (ci, chunk) in chunks.iter().enumerate() {
                if g.fe.free_ids() == 0 || g.ring.is_full() {
                    settle(&mut g, &be, &mut back, &mut grants, &mut disk, &chunks, &mut buf, bpo);
                }
                // Grant each segment's page (the whole page, as a guest would).
                let mut grefs = vec![];
                for s in &chunk.segments {
                    let start = s.page * 4096;
                    let mut frame = vec![0u8; 4096];
                    for (i, b) in frame.iter_mut().enumerate() {
                        if let Some(v) = buf.get(start + i) {
                            *b = *v;
                        }
                    }
                    grants.grant(g.next_gref, frame, io.write);
                    grefs.push(g.next_gref);
                    g.next_gref += 1;
                }
                let mut ind = vec![];
                for _ in 0..chunk.indirect_pages() {
                    ind.push(g.next_gref);
                    g.next_gref += 1;
                }
                let sub = g.fe.start_io(chunk, &grefs, &ind, (ci, grefs.clone())).unwrap();
                for (i, gref) in ind.iter().enumerate() {
                    let mut p = vec![0u8; 4096];
                    sub.fill_indirect_page(i, &mut p);
                    grants.grant(*gref, p, true);
                }
                g.ring.put_request(&sub.entry).unwrap();
                g.ring.push_requests_and_check_notify();
            }
            settle(&mut g, &be, &mut back, &mut grants, &mut disk, &chunks, &mut buf, bpo);
            let (o, l) = (offset as usize, len);
            if io.write {
                model[o..o + l].copy_from_slice(&buf[bpo..bpo + l]);
            } else {
                prop_assert!(buf[bpo..bpo + l] == model[o..o + l], "read returns the model's bytes");
            }
            prop_assert!(disk.data == model);
        }
        // A flush goes through too.
        let sub = g.fe.start_flush((usize::MAX, vec![])).unwrap();
        g.ring.put_request(&sub.entry).unwrap();
        g.ring.push_requests();
        be.service(&mut back, &mut grants, &mut disk, 10).unwrap();
        g.ring.poll_responses().unwrap();
        let rsp = g.ring.take_response().unwrap();
        let c = g.fe.complete(&rsp).unwrap();
        prop_assert!(c.is_ok());
        prop_assert_eq!(c.operation, BLKIF_OP_FLUSH_DISKCACHE);
        prop_assert_eq!(g.fe.in_flight(), 0);
    }

    /// Whatever a hostile backend answers, `complete` reports or accepts it, and the
    /// id bookkeeping stays consistent.
    #[test]
    fn hostile_responses_are_reported(
        started in 0usize..40,
        rsps in proptest::collection::vec((prop_oneof![0u64..40, any::<u64>()], 0u8..8, any::<i16>()), 0..80),
    ) {
        let mut fe: Frontend<u64> = Frontend::new(info(512, 1 << 20, 64, false), 0, 32, 64).unwrap();
        let mut live: BTreeMap<u64, u8> = BTreeMap::new();
        for i in 0..started {
            let write = i % 3 == 0;
            let chunks = fe.plan_io(write, 0, 4096 * (1 + i % 20), 0).unwrap();
            let c = &chunks[0];
            let grefs: Vec<u32> = (0..c.segments.len() as u32).collect();
            let ind: Vec<u32> = (0..c.indirect_pages() as u32).collect();
            match fe.start_io(c, &grefs, &ind, i as u64) {
                Ok(sub) => {
                    live.insert(sub.id, if write { BLKIF_OP_WRITE } else { BLKIF_OP_READ });
                }
                Err(e) => {
                    prop_assert_eq!(e, FrontError::Busy);
                    prop_assert_eq!(fe.in_flight(), 32);
                }
            }
        }
        for (id, op, status) in rsps {
            let rsp = BlkifResponse { id, operation: op, status, ..Default::default() };
            match fe.complete(&rsp) {
                Ok(c) => {
                    let want = live.remove(&id);
                    prop_assert!(want == Some(op) || op == BLKIF_OP_INDIRECT);
                    prop_assert_eq!(c.status, status);
                }
                Err(FrontError::UnknownId(x)) => {
                    prop_assert_eq!(x, id);
                    prop_assert!(id >= 32);
                }
                Err(FrontError::DuplicateId(x)) => {
                    prop_assert_eq!(x, id);
                    prop_assert!(!live.contains_key(&id));
                }
                Err(FrontError::WrongOperation { id: x, expected, got }) => {
                    prop_assert_eq!(x, id);
                    prop_assert_eq!(live.get(&id), Some(&expected));
                    prop_assert_eq!(got, op);
                }
                Err(e) => prop_assert!(false, "unexpected {:?}", e),
            }
            prop_assert_eq!(fe.in_flight(), live.len());
        }
    }
}

#[test]
fn ids_are_reused_and_bounded() {
    let mut fe: Frontend<u32> = Frontend::new(info(512, 1 << 20, 0, false), 0, 4, 0).unwrap();
    let chunk = &fe.plan_io(false, 0, 512, 0).unwrap()[0];
    let chunk = chunk.clone();
    let ids: Vec<u64> = (0..4)
        .map(|i| fe.start_io(&chunk, &[1], &[], i).unwrap().id)
        .collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    assert_eq!(fe.start_io(&chunk, &[1], &[], 9), Err(FrontError::Busy));
    let rsp = |id| BlkifResponse {
        id,
        operation: BLKIF_OP_READ,
        status: BLKIF_RSP_OKAY,
        ..Default::default()
    };
    assert_eq!(fe.complete(&rsp(2)).unwrap().token, 2);
    assert_eq!(fe.complete(&rsp(2)), Err(FrontError::DuplicateId(2)));
    assert_eq!(fe.complete(&rsp(4)), Err(FrontError::UnknownId(4)));
    assert_eq!(
        fe.complete(&rsp(u64::MAX)),
        Err(FrontError::UnknownId(u64::MAX))
    );
    assert_eq!(fe.start_io(&chunk, &[1], &[], 5).unwrap().id, 2);
    assert_eq!(fe.cancel(2), Some(5));
    assert_eq!(fe.cancel(2), None);
    assert_eq!(
        fe.start_io(&chunk, &[1, 2], &[], 0),
        Err(FrontError::GrantCount {
            expected: 1,
            got: 2
        })
    );
}

#[test]
fn indirect_request_layout() {
    let mut fe: Frontend<()> = Frontend::new(info(512, 1 << 20, 1024, false), 7, 32, 1024).unwrap();
    // 600 pages: one indirect request of 600 segments on 2 indirect pages.
    let chunks = fe.plan_io(true, 4096, 600 * 4096, 0).unwrap();
    assert_eq!(chunks.len(), 1);
    let c = &chunks[0];
    assert!(c.is_indirect());
    assert_eq!(c.indirect_pages(), 2);
    let grefs: Vec<u32> = (100..700).collect();
    let sub = fe.start_io(c, &grefs, &[1, 2], ()).unwrap();
    assert_eq!(sub.entry.0[0], BLKIF_OP_INDIRECT);
    assert_eq!(sub.entry.0[1], BLKIF_OP_WRITE);
    assert_eq!(&sub.entry.0[2..4], &600u16.to_le_bytes());
    assert_eq!(
        &sub.entry.0[16..24],
        &8u64.to_le_bytes(),
        "sector 8 = byte 4096"
    );
    assert_eq!(&sub.entry.0[24..26], &7u16.to_le_bytes(), "handle");
    assert_eq!(&sub.entry.0[28..36], &[1, 0, 0, 0, 2, 0, 0, 0]);
    let mut p = vec![0xffu8; 4096];
    sub.fill_indirect_page(1, &mut p);
    // Segment 512 is the first of page 1: gref 612, sectors 0..=7.
    assert_eq!(&p[..8], &[0x64, 0x02, 0, 0, 0, 7, 0, 0]);
    assert_eq!(&p[88 * 8..], &vec![0u8; 4096 - 88 * 8][..], "tail zeroed");
}

#[test]
fn flush_and_discard_need_the_feature() {
    let mut i = info(512, 100, 0, false);
    i.feature_flush_cache = false;
    let mut fe: Frontend<()> = Frontend::new(i, 0, 32, 0).unwrap();
    assert_eq!(fe.start_flush(()), Err(FrontError::Unsupported));
    assert_eq!(
        fe.start_discard(0, 512, false, ()),
        Err(FrontError::Unsupported)
    );
    i.feature_barrier = true;
    i.feature_discard = true;
    let mut fe: Frontend<()> = Frontend::new(i, 0, 32, 0).unwrap();
    assert_eq!(
        fe.start_flush(()).unwrap().entry.0[0],
        BLKIF_OP_WRITE_BARRIER
    );
    let d = fe.start_discard(1024, 2048, true, ()).unwrap();
    assert_eq!(d.entry.0[0], BLKIF_OP_DISCARD);
    assert_eq!(d.entry.0[1], 0, "secure only if discard-secure");
    assert_eq!(&d.entry.0[16..24], &2u64.to_le_bytes());
    assert_eq!(&d.entry.0[24..32], &4u64.to_le_bytes());
    assert_eq!(
        fe.start_discard(0, 101 * 512, false, ()),
        Err(FrontError::OutOfRange)
    );
    assert_eq!(
        Frontend::<()>::new(info(256, 1, 0, false), 0, 32, 0).unwrap_err(),
        FrontError::BadSectorSize(256)
    );
}
