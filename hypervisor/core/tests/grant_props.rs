//! Property test of grant tables v1 over random sequences of grant / revoke / map /
//! unmap / copy / page-table pin / frame release / teardown steps across three domains
//! on a 32-frame machine. Each domain has one grant-table frame and one pinned L1; maps
//! use `GNTMAP_contains_pte` into the mapper's L1 (or elsewhere, to be refused).
//!
//! After every step, recomputed from scratch:
//! - pins: each active entry's readers/writers equal the live mappings of that ref,
//!   held by the entry's mapper, of that frame; no mapping without an active entry;
//! - status bits: `_GTF_reading` iff pinned, `_GTF_writing` iff pinned writable;
//! - exact counts: refcount = allocation + L1 pin + table hold + grant mappings + plain
//!   PTEs of live L1s; type count = pin + table hold + writable mappings + RW PTEs;
//! - no mapped frame is freed or changes owner; no frame is both writable-mapped (by a
//!   grant or a PTE) and a page table (P1); every grant PTE in a live L1 is exactly the
//!   one a live mapping of that L1's owner wrote;
//! - a failed step changes nothing (frame table, grant state, memory).
//!
//! At the end every domain's mappings are released (bounded steps), every count is back
//! to baseline and the status bits are clear; then all tables are destroyed and all
//! domains relinquished: every frame is free.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failed unwrap is a failed test"
)]

use hv_core::frame::{DomId, FrameInfo, Owner, PageType};
use hv_core::grant::{GntError, GrantLimits, GrantMem, Grants};
use hv_core::mm::{Mmu, MmuCtx, PhysMem, VcpuMm, PTE_GNTTAB};
use proptest::prelude::*;
use xen_abi::grant_table::*;
use xen_abi::mm::*;
use xen_abi::xen::DOMID_SELF;

const N: usize = 32;
const DOMS: [DomId; 3] = [1, 2, 3];
const GREFS: u32 = 4;
/// Grant-table frame and L1 of each domain.
const GT: [u64; 3] = [24, 25, 26];
const L1: [u64; 3] = [7, 14, 21];

fn initial_owner(mfn: u64) -> Owner {
    match mfn {
        0 => Owner::Hypervisor,
        1..=7 => Owner::Domain(1),
        8..=14 => Owner::Domain(2),
        15..=21 => Owner::Domain(3),
        _ => Owner::None,
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct Fake {
    mem: Vec<[u64; 512]>,
    released: Vec<u64>,
}

impl PhysMem for Fake {
    fn read_pte(&self, mfn: u64, idx: usize) -> u64 {
        self.mem[mfn as usize][idx]
    }
    fn write_pte(&mut self, mfn: u64, idx: usize, val: u64) {
        self.mem[mfn as usize][idx] = val;
    }
    fn zero_page(&mut self, mfn: u64) {
        self.mem[mfn as usize] = [0; 512];
    }
    fn copy_page(&mut self, dst: u64, src: u64) {
        self.mem[dst as usize] = self.mem[src as usize];
    }
    fn set_m2p(&mut self, _: u64, _: u64) {}
    fn flush_tlbs_all(&mut self) {}
    fn frame_released(&mut self, mfn: u64) {
        self.released.push(mfn);
    }
}

impl GrantMem for Fake {
    fn gnt_header(&self, mfn: u64, off: usize) -> u32 {
        self.mem[mfn as usize][off / 8] as u32
    }
    fn gnt_cmpxchg_header(&mut self, mfn: u64, off: usize, old: u32, new: u32) -> u32 {
        let w = &mut self.mem[mfn as usize][off / 8];
        let cur = *w as u32;
        if cur == old {
            *w = (*w & !0xffff_ffff) | u64::from(new);
        }
        cur
    }
    fn gnt_frame(&self, mfn: u64, off: usize) -> u32 {
        (self.mem[mfn as usize][off / 8] >> 32) as u32
    }
    fn gnt_clear_flags(&mut self, mfn: u64, off: usize, bits: u16) {
        self.mem[mfn as usize][off / 8] &= !u64::from(bits);
    }
    fn copy_bytes(&mut self, dst: u64, dst_off: usize, src: u64, src_off: usize, len: usize) {
        let s: Vec<u8> = self.mem[src as usize]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let mut d: Vec<u8> = self.mem[dst as usize]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        d[dst_off..dst_off + len].copy_from_slice(&s[src_off..src_off + len]);
        for (i, c) in d.chunks(8).enumerate() {
            self.mem[dst as usize][i] = u64::from_le_bytes(c.try_into().unwrap());
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// The granter writes entry `gref` (keeping the hypervisor's status bits).
    Grant {
        dom: usize,
        gref: u32,
        flags: u16,
        to: DomId,
        frame: u64,
    },
    Map {
        /// Preceded by a fitting grant from the granter (a separate step).
        fresh: Option<(u16, u64)>,
        mapper: usize,
        granter: DomId,
        gref: u32,
        /// Frame holding the PTE (usually the mapper's L1) and entry index.
        l1: u64,
        idx: u64,
        misalign: bool,
        flags: u32,
    },
    Unmap {
        mapper: usize,
        /// The pick-th live handle of the mapper, or (if past them) a raw handle.
        pick: u32,
        addr_ok: bool,
    },
    Copy {
        caller: usize,
        src: (bool, DomId, u64, u16),
        dst: (bool, DomId, u64, u16),
        len: u16,
    },
    PinL1 {
        dom: usize,
        mfn: u64,
    },
    Unpin {
        dom: usize,
        mfn: u64,
    },
    ReleaseAlloc {
        dom: usize,
        mfn: u64,
    },
    Release {
        dom: usize,
        budget: u32,
    },
}

fn dom_id() -> impl Strategy<Value = DomId> + Clone {
    prop_oneof![12 => 1u16..=3, 1 => Just(DOMID_SELF), 1 => Just(9u16)]
}

/// First frame of each domain (its 7 frames: 6 data frames, then its L1).
const BASE: [u64; 3] = [1, 8, 15];

/// Mostly one of `dom`'s own frames (`sel` 0..7), sometimes any frame number.
fn frame_of(dom: usize, sel: u64) -> u64 {
    if sel < 7 {
        BASE[dom] + sel
    } else {
        sel - 7
    }
}

fn frame_sel() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![10 => 0u64..7, 1 => 7u64..(7 + N as u64 + 2)]
}

fn op() -> impl Strategy<Value = Op> {
    let d = 0..3usize;
    let flags = prop_oneof![
        6 => Just(GTF_PERMIT_ACCESS),
        3 => Just(GTF_PERMIT_ACCESS | GTF_READONLY),
        2 => Just(0u16),
        1 => any::<u16>(),
    ];
    let map_flags = prop_oneof![
        12 => prop::bool::ANY.prop_map(|ro| GNTMAP_HOST_MAP
            | GNTMAP_CONTAINS_PTE
            | if ro { GNTMAP_READONLY } else { 0 }),
        1 => Just(GNTMAP_CONTAINS_PTE),
        1 => Just(GNTMAP_HOST_MAP | GNTMAP_CONTAINS_PTE | GNTMAP_DEVICE_MAP),
    ];
    // (is a gref, domid for a gref side, gref or frame selector, offset)
    let side = (
        prop::bool::ANY,
        dom_id(),
        prop_oneof![3 => 0u64..GREFS as u64 + 1, 2 => frame_sel()],
        prop_oneof![6 => 0u16..16, 1 => 4080u16..4100],
    );
    prop_oneof![
        6 => (d.clone(), 0..GREFS, flags, prop_oneof![10 => 1u16..=3, 1 => Just(4u16)], frame_sel())
            .prop_map(|(dom, gref, flags, to, sel)| Op::Grant {
                dom,
                gref,
                flags,
                to,
                frame: frame_of(dom, sel),
            }),
        8 => (d.clone(), dom_id(), 0..GREFS + 1, prop_oneof![10 => Just(None), 1 => frame_sel().prop_map(Some)],
              0u64..4, prop::bool::weighted(0.03), map_flags,
              prop::option::weighted(0.6, (prop_oneof![3 => Just(GTF_PERMIT_ACCESS), 1 => Just(GTF_PERMIT_ACCESS | GTF_READONLY)], 0u64..6)))
            .prop_map(|(mapper, granter, gref, l1, idx, misalign, flags, fresh)| Op::Map {
                fresh,
                mapper,
                granter,
                gref,
                l1: l1.map_or(L1[mapper], |s| frame_of(mapper, s)),
                idx,
                misalign,
                flags,
            }),
        6 => (d.clone(), prop_oneof![4 => 0u32..2, 1 => 0u32..8], prop::bool::weighted(0.9))
            .prop_map(|(mapper, pick, addr_ok)| Op::Unmap { mapper, pick, addr_ok }),
        4 => (d.clone(), side.clone(), side, prop_oneof![6 => 0u16..16, 1 => 0u16..5000])
            .prop_map(|(caller, src, dst, len)| {
                // A frame side names one of the caller's frames, as DOMID_SELF, mostly.
                let fix = |(g, dom, u, off): (bool, DomId, u64, u16)| {
                    if g {
                        (g, dom, u, off)
                    } else {
                        let dom = if dom == 9 { DOMS[caller] } else { DOMID_SELF };
                        (g, dom, frame_of(caller, u), off)
                    }
                };
                Op::Copy { caller, src: fix(src), dst: fix(dst), len }
            }),
        1 => (d.clone(), frame_sel()).prop_map(|(dom, s)| Op::PinL1 { dom, mfn: frame_of(dom, s) }),
        1 => (d.clone(), frame_sel()).prop_map(|(dom, s)| Op::Unpin { dom, mfn: frame_of(dom, s) }),
        1 => (d.clone(), frame_sel()).prop_map(|(dom, s)| Op::ReleaseAlloc { dom, mfn: frame_of(dom, s) }),
        1 => (d, 1u32..4).prop_map(|(dom, budget)| Op::Release { dom, budget }),
    ]
}

struct World {
    mmu: Mmu<Vec<FrameInfo>>,
    m: Fake,
    g: Grants,
    v: [VcpuMm; 3],
}

fn mmuext(w: &mut World, dom: usize, cmd: u32, mfn: u64) -> Result<(), xen_abi::Errno> {
    let op = MmuextOp {
        cmd,
        arg1: mfn,
        ..Default::default()
    };
    w.mmu
        .mmuext_op(&mut w.m, MmuCtx::local(DOMS[dom]), &mut w.v[dom], &op)
        .map(|_| ())
}

fn world() -> World {
    let mut w = World {
        mmu: Mmu::new(vec![FrameInfo::FREE; N], [0; 16]),
        m: Fake {
            mem: vec![[0; 512]; N],
            released: Vec::new(),
        },
        g: Grants::new(),
        v: [VcpuMm::new(); 3],
    };
    for mfn in 0..N as u64 {
        if initial_owner(mfn) != Owner::None {
            w.mmu.assign(mfn, initial_owner(mfn)).unwrap();
        }
    }
    for (i, d) in DOMS.into_iter().enumerate() {
        w.g.create_domain(d, GrantLimits::XEN_DEFAULT).unwrap();
        let req =
            w.g.decode_setup_table(
                d,
                false,
                &GnttabSetupTable {
                    dom: DOMID_SELF,
                    nr_frames: 1,
                    ..Default::default()
                },
            )
            .unwrap();
        w.g.perform_setup_table(&mut w.mmu, &mut w.m, req, &[GT[i]])
            .unwrap();
        mmuext(&mut w, i, MMUEXT_PIN_L1_TABLE, L1[i]).unwrap();
    }
    w
}

/// Apply one step; `Ok(true)` if it succeeded, `Ok(false)` if it was refused.
fn apply(w: &mut World, op: &Op) -> bool {
    match *op {
        Op::Grant {
            dom,
            gref,
            flags,
            to,
            frame,
        } => {
            let e = &mut w.m.mem[GT[dom] as usize][gref as usize];
            let status = *e & u64::from(GTF_READING | GTF_WRITING);
            let flags = u64::from(flags & !(GTF_READING | GTF_WRITING));
            *e = status | flags | u64::from(to) << 16 | frame << 32;
            true
        }
        Op::Map {
            fresh: _,
            mapper,
            granter,
            gref,
            l1,
            idx,
            misalign,
            flags,
        } => {
            let op = GnttabMapGrantRef {
                host_addr: (l1 << 12) | (idx * 8) | if misalign { 4 } else { 0 },
                flags,
                ref_: gref,
                dom: granter,
                ..Default::default()
            };
            let v = w.v[mapper];
            let r =
                w.g.decode_map(DOMS[mapper], &op)
                    .and_then(|req| w.g.perform_map(&mut w.mmu, &mut w.m, &v, req));
            match r {
                Err(e) => assert!(e.status() < 0),
                // G1: the entry permits access, names the mapper, and is writable if
                // the map is.
                Ok(_) => {
                    let g = usize::from(granter - 1);
                    let e = w.m.mem[GT[g] as usize][gref as usize];
                    let fl = e as u16;
                    assert_eq!(fl & (GTF_TYPE_MASK | GTF_SUB_PAGE), GTF_PERMIT_ACCESS);
                    assert_eq!((e >> 16) as u16, DOMS[mapper], "entry names the mapper");
                    assert!(flags & GNTMAP_READONLY != 0 || fl & GTF_READONLY == 0);
                }
            }
            r.is_ok()
        }
        Op::Unmap {
            mapper,
            pick,
            addr_ok,
        } => {
            let d = DOMS[mapper];
            let t = w.g.table(d).unwrap();
            let live: Vec<_> = t.mappings().map(|(h, m)| (h, m.host_addr)).collect();
            let (handle, addr) = match live.get(pick as usize) {
                Some(&(h, a)) => (h, if addr_ok { a } else { a ^ 8 }),
                None => (pick, 8),
            };
            let op = GnttabUnmapGrantRef {
                host_addr: addr,
                handle,
                ..Default::default()
            };
            match w
                .g
                .decode_unmap(d, &op)
                .and_then(|req| w.g.perform_unmap(&mut w.mmu, &mut w.m, req))
            {
                Ok(u) => {
                    w.g.complete_unmap(&mut w.mmu, &mut w.m, u);
                    true
                }
                Err(e) => {
                    assert!(e.status() < 0);
                    false
                }
            }
        }
        Op::Copy {
            caller,
            src,
            dst,
            len,
        } => {
            let ptr = |(_, domid, u, offset): (bool, DomId, u64, u16)| GnttabCopyPtr {
                u,
                domid,
                offset,
                _pad: 0,
            };
            let mut flags = 0;
            if src.0 {
                flags |= GNTCOPY_SOURCE_GREF;
            }
            if dst.0 {
                flags |= GNTCOPY_DEST_GREF;
            }
            let op = GnttabCopy {
                source: ptr(src),
                dest: ptr(dst),
                len,
                flags,
                ..Default::default()
            };
            let r =
                w.g.decode_copy(DOMS[caller], &op)
                    .and_then(|req| w.g.perform_copy(&mut w.mmu, &mut w.m, req));
            match r {
                Err(GntError::BadCopyArg) => {
                    assert!(
                        u64::from(len) + u64::from(src.3.max(dst.3)) > 4096,
                        "BadCopyArg only out of bounds"
                    );
                    false
                }
                Err(e) => {
                    assert!(e.status() < 0);
                    false
                }
                Ok(()) => {
                    assert!(u64::from(len) + u64::from(src.3.max(dst.3)) <= 4096);
                    true
                }
            }
        }
        Op::PinL1 { dom, mfn } => mmuext(w, dom, MMUEXT_PIN_L1_TABLE, mfn).is_ok(),
        Op::Unpin { dom, mfn } => mmuext(w, dom, MMUEXT_UNPIN_TABLE, mfn).is_ok(),
        Op::ReleaseAlloc { dom, mfn } => {
            // Never the L1s or table frames: keep the world usable.
            if L1.contains(&mfn) || GT.contains(&mfn) {
                return false;
            }
            w.mmu.release_allocation(&mut w.m, mfn, DOMS[dom]).is_ok()
        }
        Op::Release { dom, budget } => {
            w.g.release_mappings(&mut w.mmu, &mut w.m, DOMS[dom], budget)
                .unwrap();
            true
        }
    }
}

/// A map with a fresh grant is two steps: the granter's write, then the map.
fn expand(op: &Op) -> Vec<Op> {
    match *op {
        Op::Map {
            fresh: Some((flags, sel)),
            mapper,
            granter,
            gref,
            ..
        } if (1..=3).contains(&granter) && gref < GREFS => {
            let g = usize::from(granter - 1);
            vec![
                Op::Grant {
                    dom: g,
                    gref,
                    flags,
                    to: DOMS[mapper],
                    frame: frame_of(g, sel),
                },
                op.clone(),
            ]
        }
        _ => vec![op.clone()],
    }
}

type FrameState = (Owner, bool, u32, Option<(PageType, bool)>, u32, bool);
type Snap = (Vec<FrameState>, Grants, Fake);

/// A frame's state as far as safety goes: with no type reference and no pin, the type
/// it last had (and whether it was validated) means nothing, and a failed validation
/// may clear it (forcing a re-validation later), so it is not compared.
fn normalized(f: FrameInfo) -> FrameState {
    let typed = (f.type_count() > 0 || f.pinned()).then_some((f.page_type(), f.validated()));
    (
        f.owner(),
        f.allocated(),
        f.refcount(),
        typed,
        f.type_count(),
        f.pinned(),
    )
}

fn snap(w: &World) -> Snap {
    (
        w.mmu.frames().iter().map(|(_, f)| normalized(*f)).collect(),
        w.g.clone(),
        w.m.clone(),
    )
}

fn check(w: &World) -> Result<(), TestCaseError> {
    let frames = w.mmu.frames();
    let mut refs = [0u32; N];
    let mut tys = [0u32; N];
    let mut writable = [false; N];
    // Allocation, pins, table holds.
    for (mfn, f) in frames.iter() {
        let i = mfn as usize;
        refs[i] += u32::from(f.allocated());
        if f.pinned() {
            refs[i] += 1;
            tys[i] += 1;
        }
    }
    for (i, d) in DOMS.into_iter().enumerate() {
        let t = w.g.table(d).unwrap();
        prop_assert_eq!(t.frames(), &[GT[i]][..]);
        refs[GT[i] as usize] += 1;
        tys[GT[i] as usize] += 1;
    }
    // Grant mappings, and their agreement with the active entries.
    let mut pins = std::collections::BTreeMap::<(DomId, u32), (DomId, u64, u32, u32)>::new();
    for d in DOMS {
        for (_, m) in w.g.table(d).unwrap().mappings() {
            let f = frames.get(m.frame).unwrap();
            prop_assert_eq!(
                f.owner(),
                Owner::Domain(m.granter),
                "mapped frame changed owner"
            );
            prop_assert!(f.refcount() > 0);
            refs[m.frame as usize] += 1;
            if m.writable {
                tys[m.frame as usize] += 1;
                writable[m.frame as usize] = true;
            }
            let e = pins
                .entry((m.granter, m.gref))
                .or_insert((d, m.frame, 0, 0));
            prop_assert_eq!((e.0, e.1), (d, m.frame), "one mapper and frame per ref");
            if m.writable {
                e.3 += 1;
            } else {
                e.2 += 1;
            }
        }
    }
    for (i, d) in DOMS.into_iter().enumerate() {
        let t = w.g.table(d).unwrap();
        for (gref, a) in t.actives() {
            let want = pins.remove(&(d, gref));
            prop_assert_eq!(
                want,
                Some((a.mapper, a.frame, a.readers, a.writers)),
                "pins of d{} ref {}",
                d,
                gref
            );
        }
        // Status bits.
        for gref in 0..GREFS {
            let fl = w.m.mem[GT[i] as usize][gref as usize] as u16;
            let a = t.active(gref);
            prop_assert_eq!(
                fl & GTF_READING != 0,
                a.is_some(),
                "reading d{} ref {}",
                d,
                gref
            );
            prop_assert_eq!(
                fl & GTF_WRITING != 0,
                a.is_some_and(|a| a.writers > 0),
                "writing d{} ref {}",
                d,
                gref
            );
        }
    }
    prop_assert!(pins.is_empty(), "mappings without active entry: {:?}", pins);
    // Entries of live L1s.
    for (mfn, f) in frames.iter() {
        if f.is_live_table() != Some(1) {
            continue;
        }
        let Owner::Domain(d) = f.owner() else {
            prop_assert!(false, "live table without owner");
            unreachable!()
        };
        for idx in 0..512 {
            let e = w.m.mem[mfn as usize][idx];
            if e & PTE_PRESENT == 0 {
                continue;
            }
            let target = (e & PTE_ADDR_MASK) >> 12;
            if e & PTE_GNTTAB != 0 {
                let owner =
                    w.g.table(d)
                        .unwrap()
                        .mappings()
                        .filter(|(_, m)| m.l1 == mfn && usize::from(m.idx) == idx && m.pte == e)
                        .count();
                prop_assert_eq!(
                    owner,
                    1,
                    "grant PTE {:#x} in L1 {} not one mapping's",
                    e,
                    mfn
                );
                continue;
            }
            let Some(t) = frames.get(target) else {
                continue;
            };
            if !matches!(t.owner(), Owner::Domain(_)) {
                continue;
            }
            refs[target as usize] += 1;
            if e & PTE_RW != 0 {
                tys[target as usize] += 1;
                writable[target as usize] = true;
            }
        }
    }
    for (mfn, f) in frames.iter() {
        let i = mfn as usize;
        if !matches!(f.owner(), Owner::Domain(_)) {
            continue;
        }
        prop_assert_eq!(f.refcount(), refs[i], "refcount of {}", mfn);
        prop_assert_eq!(f.type_count(), tys[i], "type count of {}", mfn);
        if writable[i] {
            prop_assert_eq!(f.page_type(), PageType::Writable, "P1 on {}", mfn);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn grant_invariants_hold(ops in prop::collection::vec(op(), 1..60)) {
        let mut w = world();
        check(&w)?;
        for op in ops.iter().flat_map(expand) {
            let op = &op;
            let before = snap(&w);
            let ok = apply(&mut w, op);
            if !ok {
                let after = snap(&w);
                prop_assert!(after.0 == before.0, "failed {:?} changed frames", op);
                prop_assert!(after.1 == before.1, "failed {:?} changed grants", op);
                prop_assert!(after.2 == before.2, "failed {:?} changed memory", op);
            }
            check(&w)?;
        }
        // Teardown of every mapper, in bounded steps.
        for d in DOMS {
            let mut steps = 0;
            while !w.g.release_mappings(&mut w.mmu, &mut w.m, d, 2).unwrap() {
                steps += 1;
                prop_assert!(steps < 100);
                check(&w)?;
            }
        }
        check(&w)?;
        for (i, d) in DOMS.into_iter().enumerate() {
            let t = w.g.table(d).unwrap();
            prop_assert_eq!(t.nr_mappings(), 0);
            prop_assert!(t.actives().next().is_none());
            for gref in 0..GREFS {
                let fl = w.m.mem[GT[i] as usize][gref as usize] as u16;
                prop_assert_eq!(fl & (GTF_READING | GTF_WRITING), 0);
            }
        }
        // Baseline: nothing but allocation, pins and table holds (check() recounted it
        // with no mapping left). Destroy everything: every frame is free.
        for (i, d) in DOMS.into_iter().enumerate() {
            w.g.destroy_domain(&mut w.mmu, &mut w.m, d).unwrap();
            let mut v = w.v[i];
            w.mmu.relinquish(&mut w.m, d, [&mut v]);
        }
        for (mfn, f) in w.mmu.frames().iter() {
            if mfn == 0 {
                continue;
            }
            prop_assert_eq!((f.owner(), f.refcount(), f.type_count()), (Owner::None, 0, 0), "frame {}", mfn);
        }
        let mut rel = w.m.released.clone();
        rel.sort_unstable();
        let n = rel.len();
        rel.dedup();
        prop_assert_eq!(rel.len(), n, "a frame released twice");
    }
}
