//! The block backend against a model: random requests (well-formed, malformed and raw
//! bytes) on a model disk and grant table. A request the spec accepts does exactly the
//! model's disk operations and grant copies; one it refuses changes nothing and is
//! answered `BLKIF_RSP_ERROR` or `BLKIF_RSP_EOPNOTSUPP`.
// Helpers outside #[test] fns unwrap too: a test that unwraps fails loudly.
#![allow(clippy::unwrap_used)]

mod common;

use common::{DiskOp, MemDisk, MemGrants};
use proptest::prelude::*;
use pv_drivers::blkif::{Backend, BackendFeatures, BlkBackRing, BlkFrontRing, Geometry};
use pv_drivers::ring::HeapPage;
use xen_abi::io::blkif::*;
use xen_abi::wire::{Opaque, Wire};

const DOM: u16 = 5;
/// Grant references 1..=20 are writable frames, 21..=24 read-only, others absent.
const RO_FIRST: u32 = 21;
const LAST_GREF: u32 = 24;
/// Indirect pages are granted (read-only) at 100.., 104 and up absent.
const IND_FIRST: u32 = 100;

fn frame(g: u32) -> Vec<u8> {
    (0..4096).map(|i| (g as usize * 31 + i * 3) as u8).collect()
}

fn grants() -> MemGrants {
    // Made once: debug builds are slow at byte loops.
    static G: std::sync::OnceLock<MemGrants> = std::sync::OnceLock::new();
    G.get_or_init(|| {
        let mut g = MemGrants::new(DOM);
        for r in 1..=LAST_GREF {
            g.grant(r, frame(r), r >= RO_FIRST);
        }
        g
    })
    .clone()
}

/// Disk size in 512-byte sectors.
const DISK_SECTORS: u64 = 2048;

/// A change that may make a well-formed request malformed.
#[derive(Clone, Debug)]
enum Mutation {
    /// Replace `nr_segments`.
    NrSegments(u16),
    /// Replace one segment (index modulo the count) with arbitrary values.
    Segment(usize, u32, u8, u8),
    /// Use a read-only or absent grant in one segment.
    Gref(usize, u32),
    /// Replace the start sector.
    Sector(u64),
    /// Move the start sector up by this many sectors (past the end if it was last).
    SectorPlus(u64),
    /// Replace the operation byte (`indirect_op` for indirect requests).
    Op(u8),
    /// Leave the last indirect page ungranted.
    DropIndirectPage,
}

fn mutation() -> impl Strategy<Value = Option<Mutation>> {
    prop_oneof![
        6 => Just(None),
        1 => (0u16..=14).prop_map(|n| Some(Mutation::NrSegments(n))),
        1 => (0u16..=5000).prop_map(|n| Some(Mutation::NrSegments(n))),
        1 => (any::<usize>(), 0u32..30, 0u8..10, 0u8..10)
            .prop_map(|(i, g, a, b)| Some(Mutation::Segment(i, g, a, b))),
        1 => (any::<usize>(), RO_FIRST..=LAST_GREF + 3)
            .prop_map(|(i, g)| Some(Mutation::Gref(i, g))),
        1 => prop_oneof![DISK_SECTORS - 40..DISK_SECTORS + 8, any::<u64>(), 0u64..64]
            .prop_map(|s| Some(Mutation::Sector(s))),
        1 => (1u64..=8).prop_map(|n| Some(Mutation::SectorPlus(n))),
        1 => (0u8..10).prop_map(|o| Some(Mutation::Op(o))),
        1 => Just(Some(Mutation::DropIndirectPage)),
    ]
}

/// A well-formed segment for logical sectors of `lbs` 512-byte units.
fn clean_seg(lbs: u8) -> impl Strategy<Value = BlkifRequestSegment> {
    let per_page = 8 / lbs;
    (1u32..RO_FIRST, 0..per_page, 0..per_page).prop_map(move |(g, a, b)| BlkifRequestSegment {
        gref: g,
        first_sect: a.min(b) * lbs,
        last_sect: (a.max(b) + 1) * lbs - 1,
        _pad: 0,
    })
}

/// A start sector leaving room for `total` sectors, aligned to `lbs`.
fn place(total: u64, frac: u64, lbs: u64) -> u64 {
    let room = DISK_SECTORS.saturating_sub(total);
    (room * frac / 100) / lbs * lbs
}

fn apply_seg(segs: &mut [BlkifRequestSegment], m: &Mutation) {
    let n = segs.len();
    match *m {
        Mutation::Segment(i, g, a, b) if n > 0 => {
            segs[i % n] = BlkifRequestSegment {
                gref: g,
                first_sect: a,
                last_sect: b,
                _pad: 0,
            }
        }
        Mutation::Gref(i, g) if n > 0 => segs[i % n].gref = g,
        _ => {}
    }
}

/// A request slot plus, for an indirect request, the indirect pages to grant.
#[derive(Clone, Debug)]
struct Gen {
    entry: BlkifSringEntry,
    indirect: Vec<(u32, Vec<u8>)>,
}

fn rw(lbs: u8) -> impl Strategy<Value = Gen> {
    (
        prop_oneof![Just(0u8), Just(1), Just(2), Just(3)],
        any::<u64>(),
        proptest::collection::vec(clean_seg(lbs), 1..=11),
        prop_oneof![0u64..=100, Just(100)],
        mutation(),
    )
        .prop_map(move |(op, id, mut segs, frac, m)| {
            let total: u64 = segs
                .iter()
                .map(|s| u64::from(s.last_sect - s.first_sect + 1))
                .sum();
            let mut r = BlkifRequest {
                operation: op,
                nr_segments: segs.len() as u8,
                handle: 0x300,
                id,
                sector_number: place(total, frac, u64::from(lbs)),
                ..Default::default()
            };
            if let Some(m) = &m {
                apply_seg(&mut segs, m);
                match *m {
                    Mutation::NrSegments(n) => r.nr_segments = n as u8,
                    Mutation::Sector(s) => r.sector_number = s,
                    Mutation::SectorPlus(n) => r.sector_number += n,
                    Mutation::Op(o) => r.operation = o,
                    _ => {}
                }
            }
            for (d, s) in r.seg.iter_mut().zip(&segs) {
                *d = *s;
            }
            Gen {
                entry: Opaque::of(&r),
                indirect: vec![],
            }
        })
}

fn indirect(lbs: u8) -> impl Strategy<Value = Gen> {
    (
        prop_oneof![Just(0u8), Just(1)],
        any::<u64>(),
        proptest::collection::vec(clean_seg(lbs), 1..=40),
        // Sometimes many more segments (repeating the generated ones): two pages.
        prop_oneof![3 => Just(None), 1 => (500usize..=700).prop_map(Some)],
        prop_oneof![0u64..=100, Just(100)],
        mutation(),
    )
        .prop_map(move |(op, id, segs, many, frac, m)| {
            let mut segs: Vec<BlkifRequestSegment> = match many {
                // One sector each, so 700 of them still fit the disk.
                Some(n) => (0..n)
                    .map(|i| {
                        let s = segs[i % segs.len()];
                        BlkifRequestSegment {
                            last_sect: s.first_sect + lbs - 1,
                            ..s
                        }
                    })
                    .collect(),
                None => segs,
            };
            let total: u64 = segs
                .iter()
                .map(|s| u64::from(s.last_sect - s.first_sect + 1))
                .sum();
            let mut r = BlkifRequestIndirect {
                operation: BLKIF_OP_INDIRECT,
                indirect_op: op,
                nr_segments: segs.len() as u16,
                id,
                sector_number: place(total, frac, u64::from(lbs)),
                handle: 0x300,
                ..Default::default()
            };
            let mut drop_page = false;
            if let Some(m) = &m {
                apply_seg(&mut segs, m);
                match *m {
                    Mutation::NrSegments(n) => r.nr_segments = n,
                    Mutation::Sector(s) => r.sector_number = s,
                    Mutation::SectorPlus(n) => r.sector_number += n,
                    Mutation::Op(o) => r.indirect_op = o,
                    Mutation::DropIndirectPage => drop_page = true,
                    _ => {}
                }
            }
            let npages = indirect_pages(usize::from(r.nr_segments)).min(8);
            let mut pages = Vec::new();
            for p in 0..npages {
                let gref = IND_FIRST + p as u32;
                r.indirect_grefs[p] = gref;
                let mut page = vec![0u8; 4096];
                for (s, out) in segs.iter().skip(p * 512).zip(page.chunks_exact_mut(8)) {
                    s.put(out);
                }
                if !(drop_page && p == npages - 1) {
                    pages.push((gref, page));
                }
            }
            Gen {
                entry: Opaque::of(&r),
                indirect: pages,
            }
        })
}

fn discard(lbs: u8) -> impl Strategy<Value = Gen> {
    (
        any::<u64>(),
        0u64..=64,
        prop_oneof![0u64..=100, Just(100)],
        0u8..4,
        mutation(),
    )
        .prop_map(move |(id, n, frac, flag, m)| {
            let nr = n * u64::from(lbs);
            let mut r = BlkifRequestDiscard {
                operation: BLKIF_OP_DISCARD,
                flag,
                handle: 0x300,
                id,
                sector_number: place(nr, frac, u64::from(lbs)),
                nr_sectors: nr,
                ..Default::default()
            };
            match m {
                Some(Mutation::Sector(s)) => r.sector_number = s,
                Some(Mutation::SectorPlus(n)) => r.sector_number += n,
                Some(Mutation::NrSegments(x)) => r.nr_sectors = u64::from(x),
                Some(Mutation::Segment(_, _, _, b)) => r.nr_sectors = u64::MAX - u64::from(b),
                _ => {}
            }
            Gen {
                entry: Opaque::of(&r),
                indirect: vec![],
            }
        })
}

fn raw() -> impl Strategy<Value = Gen> {
    proptest::collection::vec(any::<u8>(), BLKIF_SRING_ENTRY_SIZE).prop_map(|b| {
        let mut e = Opaque::ZERO;
        e.0.copy_from_slice(&b);
        Gen {
            entry: e,
            indirect: vec![],
        }
    })
}

fn request(lbs: u8) -> impl Strategy<Value = Gen> {
    prop_oneof![5 => rw(lbs), 3 => indirect(lbs), 2 => discard(lbs), 1 => raw()]
}

#[derive(Clone, Debug)]
struct Setup {
    features: BackendFeatures,
    sector_size: u32,
    read_only: bool,
    disk_discard: bool,
    fail_io: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.8),
        any::<bool>(),
        prop_oneof![1 => Just(0u32), 1 => Just(16), 3 => Just(64), 3 => Just(1000), 1 => Just(5000)],
        prop_oneof![4 => Just(512u32), 1 => Just(1024), 2 => Just(4096)],
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.03),
    )
        .prop_map(|(flush, barrier, discard, secure, max_ind, ss, ro, dd, fail)| Setup {
            features: BackendFeatures {
                flush_cache: flush,
                barrier,
                discard,
                discard_secure: secure,
                max_indirect_segments: max_ind,
            },
            sector_size: ss,
            read_only: ro,
            disk_discard: dd,
            fail_io: fail,
        })
}

/// A setup and a request generated for its sector size.
fn case() -> impl Strategy<Value = (Setup, Gen)> {
    setup().prop_flat_map(|s| {
        let lbs = (s.sector_size / 512) as u8;
        (Just(s), request(lbs))
    })
}

/// What the spec says a request does.
struct Expect {
    /// Validation passes (whatever execution then does).
    valid: bool,
    operation: u8,
    status: i16,
    ops: Vec<DiskOp>,
    disk: Vec<u8>,
    grants: MemGrants,
}

/// The spec, written independently of the backend: validate, then perform.
fn oracle(s: &Setup, g: &Gen, disk: &MemDisk, grants: &MemGrants) -> Expect {
    let b = &g.entry.0;
    let op = b[0];
    let mut x = Expect {
        valid: false,
        operation: op,
        status: BLKIF_RSP_ERROR,
        ops: vec![],
        disk: disk.data.clone(),
        grants: grants.clone(),
    };
    let cap = disk.data.len() as u64 / 512;
    let lbs = u64::from(s.sector_size / 512);
    let f = s.features;
    let ro = s.read_only;
    // Segments -> (gref, page offset, len, disk offset) or None if invalid.
    let layout = |sector: u64, segs: &[BlkifRequestSegment]| -> Option<Vec<(u32, usize, usize)>> {
        if !sector.is_multiple_of(lbs) {
            return None;
        }
        let mut total = 0u64;
        let mut out = vec![];
        for sg in segs {
            if sg.first_sect > sg.last_sect || sg.last_sect > 7 {
                return None;
            }
            let n = u64::from(sg.last_sect - sg.first_sect + 1);
            if n % lbs != 0 {
                return None;
            }
            total += n;
            out.push((sg.gref, sg.first_sect as usize * 512, n as usize * 512));
        }
        (sector.checked_add(total)? <= cap).then_some(out)
    };
    let (write, flush, sector, segs): (bool, bool, u64, Vec<BlkifRequestSegment>) = match op {
        0..=3 => {
            let r = BlkifRequest::get(b);
            if (op == 2 && !f.barrier) || (op == 3 && !f.flush_cache) {
                x.status = BLKIF_RSP_EOPNOTSUPP;
                return x;
            }
            let n = r.nr_segments as usize;
            if n > 11 || (n == 0 && op < 2) {
                return x;
            }
            if n == 0 {
                x.valid = true;
                x.ops.push(DiskOp::Flush);
                x.status = if s.fail_io {
                    BLKIF_RSP_ERROR
                } else {
                    BLKIF_RSP_OKAY
                };
                return x;
            }
            (op != 0, op >= 2, r.sector_number, r.seg[..n].to_vec())
        }
        6 => {
            let r = BlkifRequestIndirect::get(b);
            let max = (f.max_indirect_segments as usize).min(4096);
            if max == 0 {
                x.status = BLKIF_RSP_EOPNOTSUPP;
                return x;
            }
            x.operation = r.indirect_op;
            let n = r.nr_segments as usize;
            if r.indirect_op > 1 || n == 0 || n > max {
                return x;
            }
            let mut segs = vec![];
            for p in 0..n.div_ceil(512) {
                let Some(page) = grants.frames.get(&r.indirect_grefs[p]) else {
                    return x;
                };
                for c in page.data.chunks_exact(8).take(n - p * 512) {
                    segs.push(BlkifRequestSegment::get(c));
                }
            }
            (r.indirect_op == 1, false, r.sector_number, segs)
        }
        5 => {
            let r = BlkifRequestDiscard::get(b);
            if !f.discard {
                x.status = BLKIF_RSP_EOPNOTSUPP;
                return x;
            }
            if ro || r.sector_number % lbs != 0 || r.nr_sectors % lbs != 0 {
                return x;
            }
            match r.sector_number.checked_add(r.nr_sectors) {
                Some(end) if end <= cap => {}
                _ => return x,
            }
            let (off, len) = (r.sector_number * 512, r.nr_sectors * 512);
            let secure = f.discard_secure && r.flag & 1 != 0;
            x.valid = true;
            x.ops.push(DiskOp::Discard(off, len, secure));
            if s.disk_discard {
                x.disk[off as usize..(off + len) as usize].fill(0);
                x.status = BLKIF_RSP_OKAY;
            } else {
                x.status = BLKIF_RSP_EOPNOTSUPP;
            }
            return x;
        }
        _ => {
            x.status = BLKIF_RSP_EOPNOTSUPP;
            return x;
        }
    };
    let Some(lay) = layout(sector, &segs) else {
        return x;
    };
    if write && ro {
        return x;
    }
    x.valid = true;
    let off = sector * 512;
    let total: usize = lay.iter().map(|l| l.2).sum();
    if write {
        let mut data = vec![];
        for &(gref, po, len) in &lay {
            match grants.frames.get(&gref) {
                Some(fr) => data.extend_from_slice(&fr.data[po..po + len]),
                None => return x,
            }
        }
        x.ops.push(DiskOp::Write(off, data.clone()));
        if s.fail_io {
            return x;
        }
        x.disk[off as usize..off as usize + total].copy_from_slice(&data);
        if flush {
            x.ops.push(DiskOp::Flush);
        }
        x.status = BLKIF_RSP_OKAY;
    } else {
        x.ops.push(DiskOp::Read(off, total));
        if s.fail_io {
            return x;
        }
        let mut pos = off as usize;
        for &(gref, po, len) in &lay {
            match x.grants.frames.get_mut(&gref) {
                Some(fr) if !fr.readonly => {
                    fr.data[po..po + len].copy_from_slice(&disk.data[pos..pos + len]);
                }
                _ => return x,
            }
            pos += len;
        }
        x.status = BLKIF_RSP_OKAY;
    }
    x
}

fn disk_for(s: &Setup) -> MemDisk {
    let mut d = MemDisk::new(DISK_SECTORS as usize * 512, s.sector_size);
    d.read_only = s.read_only;
    d.discard = s.disk_discard;
    d.fail_io = s.fail_io;
    d
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn backend_matches_the_model((s, g) in case()) {
        let mut disk = disk_for(&s);
        let mut gr = grants();
        for (gref, page) in &g.indirect {
            gr.grant(*gref, page.clone(), true);
        }
        let x = oracle(&s, &g, &disk, &gr);
        let be = Backend::new(s.features, DOM);
        // Validation alone accepts exactly what the spec accepts, within the disk.
        match be.plan(&Geometry::of(&disk), &g.entry, &mut gr.clone()) {
            Ok(v) => {
                prop_assert!(x.valid, "accepted an invalid request: {:?}", v);
                if let Some((off, len)) = v.plan.range() {
                    prop_assert!(off + len <= DISK_SECTORS * 512);
                }
                prop_assert!(!(v.plan.writes() && s.read_only));
            }
            Err(r) => {
                prop_assert!(!x.valid, "refused a valid request: {:?}", r);
                prop_assert_eq!(r.status, x.status);
            }
        }
        let rsp = be.handle(&g.entry, &mut gr, &mut disk);
        prop_assert_eq!(rsp.id, u64::get(&g.entry.0[8..]));
        prop_assert_eq!(rsp.operation, x.operation);
        prop_assert_eq!(rsp.status, x.status);
        prop_assert_eq!(&disk.log, &x.ops);
        prop_assert!(disk.data == x.disk, "disk contents differ from the model");
        prop_assert!(gr.frames == x.grants.frames, "granted frames differ from the model");
        if x.ops.is_empty() {
            prop_assert!(rsp.status != BLKIF_RSP_OKAY, "nothing done, nothing okay");
        }
    }

    /// A hostile frontend controls the whole ring page: servicing it never panics,
    /// never touches the disk outside its range (MemDisk would panic), and either
    /// answers or reports a broken ring.
    #[test]
    fn service_survives_a_hostile_page(
        s in setup(),
        words in proptest::collection::vec((0usize..1024, any::<u32>()), 0..64),
        reqs in proptest::collection::vec(request(1), 0..8),
        req_prod in prop_oneof![0u32..40, any::<u32>()],
    ) {
        let page = HeapPage::page();
        let mut front = BlkFrontRing::init(&page).unwrap();
        for g in &reqs {
            let _ = front.put_request(&g.entry);
        }
        front.push_requests();
        use pv_drivers::ring::SharedPage;
        for (w, v) in &words {
            page.write_u32(w * 4, *v);
        }
        if req_prod != 0 {
            page.write_u32(0, req_prod);
        }
        let mut disk = disk_for(&s);
        let mut gr = grants();
        let be = Backend::new(s.features, DOM);
        let mut back = BlkBackRing::init(&page).unwrap();
        match be.service(&mut back, &mut gr, &mut disk, 64) {
            Ok(done) => prop_assert!(done.handled <= 32),
            Err(e) => prop_assert_eq!(back.broken(), Some(e)),
        }
    }
}

#[test]
fn flush_answers_after_the_flush() {
    let s = Setup {
        features: BackendFeatures {
            flush_cache: true,
            ..Default::default()
        },
        sector_size: 512,
        read_only: false,
        disk_discard: false,
        fail_io: false,
    };
    let mut disk = disk_for(&s);
    let mut gr = grants();
    let be = Backend::new(s.features, DOM);
    let mut r = BlkifRequest {
        operation: BLKIF_OP_FLUSH_DISKCACHE,
        nr_segments: 1,
        id: 77,
        sector_number: 8,
        ..Default::default()
    };
    r.seg[0] = BlkifRequestSegment {
        gref: 3,
        first_sect: 0,
        last_sect: 7,
        _pad: 0,
    };
    let rsp = be.handle(&Opaque::of(&r), &mut gr, &mut disk);
    assert_eq!(rsp.status, BLKIF_RSP_OKAY);
    assert_eq!(rsp.id, 77);
    assert_eq!(disk.log.last(), Some(&DiskOp::Flush));
    assert_eq!(&disk.data[4096..8192], &frame(3)[..]);
    // Without data, on a read-only disk too.
    disk.read_only = true;
    disk.log.clear();
    r.nr_segments = 0;
    let rsp = be.handle(&Opaque::of(&r), &mut gr, &mut disk);
    assert_eq!(rsp.status, BLKIF_RSP_OKAY);
    assert_eq!(disk.log, [DiskOp::Flush]);
    // A failing flush is an error.
    disk.fail_io = true;
    let rsp = be.handle(&Opaque::of(&r), &mut gr, &mut disk);
    assert_eq!(rsp.status, BLKIF_RSP_ERROR);
}

#[test]
fn specific_refusals() {
    let be = Backend::new(
        BackendFeatures {
            max_indirect_segments: 32,
            ..Default::default()
        },
        DOM,
    );
    let mut disk = MemDisk::new(64 * 512, 512);
    let mut gr = grants();
    let mut r = BlkifRequest {
        operation: BLKIF_OP_READ,
        nr_segments: 1,
        id: 1,
        sector_number: 63,
        ..Default::default()
    };
    r.seg[0] = BlkifRequestSegment {
        gref: 1,
        first_sect: 0,
        last_sect: 0,
        _pad: 0,
    };
    let mut go = |r: &BlkifRequest| be.handle(&Opaque::of(r), &mut gr, &mut disk).status;
    assert_eq!(go(&r), BLKIF_RSP_OKAY, "the last sector");
    r.seg[0].last_sect = 1;
    assert_eq!(go(&r), BLKIF_RSP_ERROR, "one past the end");
    r.sector_number = 0;
    r.seg[0].first_sect = 2;
    assert_eq!(go(&r), BLKIF_RSP_ERROR, "first > last");
    r.seg[0] = BlkifRequestSegment {
        gref: 1,
        first_sect: 0,
        last_sect: 8,
        _pad: 0,
    };
    assert_eq!(go(&r), BLKIF_RSP_ERROR, "last_sect 8");
    r.seg[0].last_sect = 7;
    r.nr_segments = 0;
    assert_eq!(go(&r), BLKIF_RSP_ERROR, "no segments");
    r.nr_segments = 12;
    assert_eq!(go(&r), BLKIF_RSP_ERROR, "12 segments");
    r.nr_segments = 1;
    r.operation = BLKIF_OP_FLUSH_DISKCACHE;
    assert_eq!(go(&r), BLKIF_RSP_EOPNOTSUPP, "flush not offered");
    r.operation = BLKIF_OP_RESERVED_1;
    assert_eq!(go(&r), BLKIF_RSP_EOPNOTSUPP);
    r.operation = BLKIF_OP_WRITE;
    r.seg[0].gref = 21;
    assert_eq!(
        go(&r),
        BLKIF_RSP_OKAY,
        "writes may come from read-only grants"
    );
    r.operation = BLKIF_OP_READ;
    assert_eq!(go(&r), BLKIF_RSP_ERROR, "reads need writable grants");
    r.seg[0].gref = 999;
    assert_eq!(go(&r), BLKIF_RSP_ERROR, "unknown grant");
    let ind = BlkifRequestIndirect {
        operation: BLKIF_OP_INDIRECT,
        indirect_op: BLKIF_OP_READ,
        nr_segments: 33,
        indirect_grefs: [1, 0, 0, 0, 0, 0, 0, 0],
        ..Default::default()
    };
    let st = be.handle(&Opaque::of(&ind), &mut gr, &mut disk).status;
    assert_eq!(st, BLKIF_RSP_ERROR, "more than the advertised 32");
}
