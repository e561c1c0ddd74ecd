//! Property test of the PV MMU policy over random operation sequences on a small machine
//! (64 frames, two domains with one vCPU each, hypervisor and I/O frames): random
//! `mmu_update`s (PT updates of every kind, M2P updates), raw guest writes to frames
//! that are not live page tables, pins, unpins, base-pointer switches,
//! `update_va_mapping` and teardown followed by a rebuild.
//!
//! After every step, recomputed from scratch by scanning every validated table:
//! - P1: no frame of type L1..L4/SegDesc with a type count is mapped writable by a
//!   present entry of a validated L1;
//! - exact counts: each frame's refcount and type count equal the recount
//!   (allocation + pin + base pointers + entries of validated tables);
//! - every present validated entry references a frame of the table's owner, with the
//!   right type (Lk -> validated L(k-1)), and no PSE above L1;
//! - the hypervisor slots of every validated L4 hold the hypervisor's entries;
//! - a failed operation changes no count; a freed frame holds nothing and was reported
//!   exactly once through `frame_released`;
//! - after `relinquish` every frame of the domain has type count 0 and refcount 0.

use hv_core::frame::{DomId, FrameInfo, Owner, PageType};
use hv_core::mm::{Mmu, MmuCtx, PhysMem, VcpuMm, XEN_L4_SLOTS};
use proptest::prelude::*;
use xen_abi::errno::Errno;
use xen_abi::mm::*;

const N: usize = 64;
const DOMS: [DomId; 2] = [1, 2];
/// Frames 1..32 belong to domain 1, 32..62 to domain 2; 0 is the hypervisor's; 62, 63 I/O.
fn initial_owner(mfn: u64) -> Owner {
    match mfn {
        0 => Owner::Hypervisor,
        1..=31 => Owner::Domain(1),
        32..=61 => Owner::Domain(2),
        _ => Owner::Io,
    }
}
const XEN_E: u64 = 0x0bad_0000 | PTE_PRESENT;

struct Fake {
    mem: Vec<[u64; 512]>,
    m2p: Vec<u64>,
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
    fn set_m2p(&mut self, mfn: u64, pfn: u64) {
        self.m2p[mfn as usize] = pfn;
    }
    fn flush_tlbs_all(&mut self) {}
    fn frame_released(&mut self, mfn: u64) {
        self.released.push(mfn);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Update {
        dom: usize,
        table: u64,
        idx: usize,
        target: u64,
        flags: u64,
        cmd: u64,
    },
    /// An update of the `pick`-th validated table of `dom` (the random search rarely
    /// names a live table by frame number otherwise).
    UpdateLive {
        dom: usize,
        pick: usize,
        idx: usize,
        target: u64,
        flags: u64,
    },
    RawWrite {
        table: u64,
        idx: usize,
        target: u64,
        flags: u64,
    },
    Pin {
        dom: usize,
        level: u32,
        mfn: u64,
    },
    Unpin {
        dom: usize,
        mfn: u64,
    },
    NewBaseptr {
        dom: usize,
        mfn: u64,
    },
    NewUserBaseptr {
        dom: usize,
        mfn: u64,
    },
    Uvm {
        dom: usize,
        va: u64,
        target: u64,
        flags: u64,
    },
    Relinquish {
        dom: usize,
    },
}

/// Mostly frames of the two domains' first few frames, sometimes anything (including
/// the hypervisor's, I/O, free and out-of-range frames).
fn frame() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 1u64..9, 4 => 32u64..38, 1 => 0u64..70]
}

fn idx() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..3, 1 => Just(255usize), 1 => 256usize..272, 1 => Just(511usize)]
}

fn flags() -> impl Strategy<Value = u64> {
    let p = PTE_PRESENT;
    prop_oneof![
        4 => Just(p),
        4 => Just(p | PTE_RW),
        2 => Just(0),
        1 => Just(p | PTE_RW | PTE_USER | PTE_ACCESSED | PTE_DIRTY | PTE_NX),
        1 => Just(p | PTE_PSE),
        1 => Just(p | PTE_RW | PTE_PSE),
        1 => Just(p | PTE_PCD),
        1 => Just(p | PTE_GLOBAL),
        1 => Just(p | (1 << 62)),
        1 => Just(p | (1 << 52)),
    ]
}

fn va() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => (0u64..2, 0u64..2, 0u64..3, 0u64..3).prop_map(|(a, b, c, d)| (a << 39) | (b << 30) | (c << 21) | (d << 12)),
        1 => Just(HYPERVISOR_VIRT_START),
        1 => Just(1u64 << 47),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let dom = prop_oneof![4 => Just(0usize), 1 => Just(1usize)];
    prop_oneof![
        12 => (dom.clone(), frame(), idx(), frame(), flags(), prop_oneof![8 => Just(0u64), 1 => Just(1u64), 1 => Just(2u64), 1 => 3u64..8])
            .prop_map(|(dom, table, idx, target, flags, cmd)| Op::Update { dom, table, idx, target, flags, cmd }),
        12 => (dom.clone(), 0usize..8, idx(), frame(), flags())
            .prop_map(|(dom, pick, idx, target, flags)| Op::UpdateLive { dom, pick, idx, target, flags }),
        4 => (frame(), idx(), frame(), flags()).prop_map(|(table, idx, target, flags)| Op::RawWrite { table, idx, target, flags }),
        4 => (dom.clone(), 0u32..5, frame()).prop_map(|(dom, level, mfn)| Op::Pin { dom, level, mfn }),
        2 => (dom.clone(), frame()).prop_map(|(dom, mfn)| Op::Unpin { dom, mfn }),
        3 => (dom.clone(), frame()).prop_map(|(dom, mfn)| Op::NewBaseptr { dom, mfn }),
        1 => (dom.clone(), prop_oneof![Just(0u64), frame()]).prop_map(|(dom, mfn)| Op::NewUserBaseptr { dom, mfn }),
        4 => (dom.clone(), va(), frame(), flags()).prop_map(|(dom, va, target, flags)| Op::Uvm { dom, va, target, flags }),
        1 => dom.prop_map(|dom| Op::Relinquish { dom }),
    ]
}

struct World {
    mmu: Mmu<Vec<FrameInfo>>,
    mem: Fake,
    vcpus: [VcpuMm; 2],
}

impl World {
    fn new() -> World {
        let mut w = World {
            mmu: Mmu::new(vec![FrameInfo::FREE; N], [XEN_E; XEN_L4_SLOTS]),
            mem: Fake {
                mem: vec![[0; 512]; N],
                m2p: vec![0; N],
                released: vec![],
            },
            vcpus: [VcpuMm::new(); 2],
        };
        for mfn in 0..N as u64 {
            w.mmu.assign(mfn, initial_owner(mfn)).expect("fresh frame");
        }
        w
    }

    fn counts(&self) -> Vec<(Owner, u32, u32, bool)> {
        self.mmu
            .frames()
            .iter()
            .map(|(_, f)| (f.owner(), f.refcount(), f.type_count(), f.pinned()))
            .collect()
    }

    /// Apply one op; returns the result of the hypercall-like ones.
    fn apply(&mut self, op: &Op) -> Option<Result<(), Errno>> {
        let ctx = |d: usize| MmuCtx::local(DOMS[d]);
        let ext = |w: &mut World, d: usize, cmd: u32, arg1: u64| {
            let op = MmuextOp {
                cmd,
                _pad: 0,
                arg1,
                arg2: 0,
            };
            w.mmu
                .mmuext_op(&mut w.mem, ctx(d), &mut w.vcpus[d], &op)
                .map(|_| ())
        };
        Some(match *op {
            Op::Update {
                dom,
                table,
                idx,
                target,
                flags,
                cmd,
            } => {
                let req = MmuUpdate {
                    ptr: (table << 12) + idx as u64 * 8 + cmd,
                    val: (target << 12) | flags,
                };
                self.mmu
                    .mmu_update(&mut self.mem, ctx(dom), &req)
                    .map(|_| ())
            }
            Op::UpdateLive {
                dom,
                pick,
                idx,
                target,
                flags,
            } => {
                let d = DOMS[dom];
                let live: Vec<u64> = self
                    .mmu
                    .frames()
                    .iter()
                    .filter(|(_, f)| f.owned_by(d) && f.is_live_table().is_some())
                    .map(|(m, _)| m)
                    .collect();
                let table = *live.get(pick % live.len().max(1))?;
                let req = MmuUpdate {
                    ptr: (table << 12) + idx as u64 * 8,
                    val: (target << 12) | flags,
                };
                self.mmu
                    .mmu_update(&mut self.mem, ctx(dom), &req)
                    .map(|_| ())
            }
            Op::RawWrite {
                table,
                idx,
                target,
                flags,
            } => {
                // The guest writes memory it can write: never a live table or descriptor page.
                let f = self.mmu.frames().get(table)?;
                if !matches!(f.owner(), Owner::Domain(_))
                    || (f.type_count() > 0 && f.page_type() != PageType::Writable)
                {
                    return None;
                }
                self.mem.mem[table as usize][idx] = (target << 12) | flags;
                return None;
            }
            Op::Pin { dom, level, mfn } => ext(self, dom, MMUEXT_PIN_L1_TABLE + level, mfn),
            Op::Unpin { dom, mfn } => ext(self, dom, MMUEXT_UNPIN_TABLE, mfn),
            Op::NewBaseptr { dom, mfn } => ext(self, dom, MMUEXT_NEW_BASEPTR, mfn),
            Op::NewUserBaseptr { dom, mfn } => ext(self, dom, MMUEXT_NEW_USER_BASEPTR, mfn),
            Op::Uvm {
                dom,
                va,
                target,
                flags,
            } => {
                let v = self.vcpus[dom];
                self.mmu
                    .update_va_mapping(&mut self.mem, DOMS[dom], &v, va, (target << 12) | flags, 0)
                    .map(|_| ())
            }
            Op::Relinquish { dom } => {
                let d = DOMS[dom];
                let r =
                    self.mmu
                        .relinquish(&mut self.mem, d, core::iter::once(&mut self.vcpus[dom]));
                assert_eq!(r.still_referenced, 0);
                for (mfn, f) in self.mmu.frames().iter() {
                    if initial_owner(mfn) == Owner::Domain(d) {
                        assert_eq!(
                            (f.owner(), f.refcount(), f.type_count()),
                            (Owner::None, 0, 0),
                            "frame {mfn} after relinquish"
                        );
                    }
                }
                // Rebuild the domain on the same frames (with stale contents).
                for mfn in 0..N as u64 {
                    if initial_owner(mfn) == Owner::Domain(d) {
                        self.mmu
                            .assign(mfn, Owner::Domain(d))
                            .expect("released frame");
                    }
                }
                return None;
            }
        })
    }

    /// Every invariant, recomputed from scratch.
    fn check(&self) {
        let frames = self.mmu.frames();
        let mut exp_ref = vec![0u32; N];
        let mut exp_type = vec![0u32; N];
        let get = |m: u64| frames.get(m);
        for (mfn, f) in frames.iter() {
            exp_ref[mfn as usize] += f.allocated() as u32 + f.pinned() as u32;
            exp_type[mfn as usize] += f.pinned() as u32;
            if f.owner() == Owner::None {
                assert_eq!(
                    (f.refcount(), f.type_count(), f.pinned()),
                    (0, 0, false),
                    "free frame {mfn} holds refs"
                );
            }
            if f.pinned() {
                assert!(
                    f.is_live_table().is_some(),
                    "pinned frame {mfn} is not a validated table"
                );
            }
        }
        for v in &self.vcpus {
            for l4 in [v.kernel_l4(), v.user_l4()].into_iter().flatten() {
                exp_ref[l4 as usize] += 1;
                exp_type[l4 as usize] += 1;
                assert_eq!(
                    get(l4).expect("base pointer in range").is_live_table(),
                    Some(4),
                    "base pointer {l4} not a validated L4"
                );
            }
        }
        for (t, f) in frames.iter() {
            let Some(level) = f.is_live_table() else {
                continue;
            };
            let Owner::Domain(d) = f.owner() else {
                panic!("table {t} not owned by a domain")
            };
            for idx in 0..512 {
                let e = self.mem.mem[t as usize][idx];
                if level == 4 && (HYPERVISOR_L4_FIRST..=HYPERVISOR_L4_LAST).contains(&idx) {
                    assert_eq!(e, XEN_E, "hypervisor slot {idx} of L4 {t}");
                    continue;
                }
                if e & PTE_PRESENT == 0 {
                    continue;
                }
                let m = (e & PTE_ADDR_MASK) >> 12;
                let tf = get(m)
                    .unwrap_or_else(|| panic!("entry {t}[{idx}] maps frame {m} out of range"));
                assert_eq!(
                    tf.owner(),
                    Owner::Domain(d),
                    "entry {t}[{idx}] maps {m} not of d{d}"
                );
                exp_ref[m as usize] += 1;
                if level == 1 {
                    if e & PTE_RW != 0 {
                        exp_type[m as usize] += 1;
                        // P1
                        assert!(
                            !(tf.page_type().needs_validation() && tf.type_count() > 0),
                            "P1: {t}[{idx}] maps {:?} frame {m} writable",
                            tf.page_type()
                        );
                        assert_eq!(tf.page_type(), PageType::Writable);
                    }
                } else {
                    assert_eq!(e & PTE_PSE, 0, "PSE in L{level} {t}[{idx}]");
                    exp_type[m as usize] += 1;
                    assert_eq!(
                        tf.is_live_table(),
                        Some(level - 1),
                        "L{level} {t}[{idx}] -> {m}: {tf:?}"
                    );
                }
            }
        }
        for (mfn, f) in frames.iter() {
            assert_eq!(
                (f.refcount(), f.type_count()),
                (exp_ref[mfn as usize], exp_type[mfn as usize]),
                "counts of frame {mfn} ({f:?})"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn mmu_invariants_hold(ops in proptest::collection::vec(op(), 1..120)) {
        let mut w = World::new();
        let mut successes = 0;
        for op in &ops {
            let before = w.counts();
            w.mem.released.clear();
            let r = w.apply(op);
            if let Some(Err(_)) = r {
                prop_assert_eq!(&w.counts(), &before, "failed {:?} changed counts", op);
            }
            if let Some(Ok(())) = r {
                successes += 1;
            }
            // Frames reported released are exactly those that became free.
            if !matches!(op, Op::Relinquish { .. }) {
                let mut freed: Vec<u64> = w.counts().iter().zip(&before).enumerate()
                    .filter(|(_, (now, was))| now.0 == Owner::None && was.0 != Owner::None)
                    .map(|(i, _)| i as u64).collect();
                freed.sort();
                let mut rel = w.mem.released.clone();
                rel.sort();
                prop_assert_eq!(rel, freed);
            }
            w.check();
        }
        let _ = successes;
    }
}

/// A deterministic scenario the random search reaches only rarely: a full 4-level
/// hierarchy built with hypercalls, then torn down.
#[test]
fn build_with_hypercalls_then_relinquish() {
    let mut w = World::new();
    let d = 0;
    let upd = |w: &mut World, t: u64, i: usize, v: u64| {
        let req = MmuUpdate {
            ptr: (t << 12) + i as u64 * 8,
            val: v,
        };
        w.mmu.mmu_update(&mut w.mem, MmuCtx::local(1), &req)
    };
    // L1 5 maps data 6 rw and itself ro; L2 4 -> 5; L3 3 -> 4; L4 2 -> 3.
    for op in [
        Op::Pin {
            dom: d,
            level: 0,
            mfn: 5,
        },
        Op::Pin {
            dom: d,
            level: 1,
            mfn: 4,
        },
        Op::Pin {
            dom: d,
            level: 2,
            mfn: 3,
        },
        Op::Pin {
            dom: d,
            level: 3,
            mfn: 2,
        },
    ] {
        assert_eq!(w.apply(&op), Some(Ok(())), "{op:?}");
    }
    upd(&mut w, 5, 0, (6 << 12) | 3).unwrap();
    upd(&mut w, 5, 1, (5 << 12) | 1).unwrap();
    upd(&mut w, 4, 0, (5 << 12) | 1).unwrap();
    upd(&mut w, 3, 0, (4 << 12) | 1).unwrap();
    upd(&mut w, 2, 0, (3 << 12) | 1).unwrap();
    assert_eq!(w.apply(&Op::NewBaseptr { dom: d, mfn: 2 }), Some(Ok(())));
    w.check();
    assert_eq!(
        w.apply(&Op::Uvm {
            dom: d,
            va: 0x1000,
            target: 7,
            flags: 3
        }),
        Some(Ok(()))
    );
    assert_eq!(w.mem.mem[5][1] & PTE_ADDR_MASK, 7 << 12);
    assert!(w
        .apply(&Op::Uvm {
            dom: d,
            va: 0x1000,
            target: 5,
            flags: 3
        })
        .unwrap()
        .is_err());
    for op in [
        Op::Unpin { dom: d, mfn: 5 },
        Op::Unpin { dom: d, mfn: 4 },
        Op::Unpin { dom: d, mfn: 3 },
    ] {
        assert_eq!(w.apply(&op), Some(Ok(())));
    }
    w.check();
    assert_eq!(w.mmu.frames().get(5).unwrap().type_count(), 1);
    w.apply(&Op::Relinquish { dom: d });
    w.check();
}
