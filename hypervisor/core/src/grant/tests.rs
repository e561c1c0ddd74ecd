//! Unit tests: each refusal, and the references and status bits around each success.

use super::*;
use crate::frame::FrameInfo;
use crate::mm::{MmuCtx, PTE_GNTTAB};
use xen_abi::mm::*;

const N: usize = 32;
/// Granter.
const D1: DomId = 1;
/// Mapper with a full page-table hierarchy (VA maps).
const D2: DomId = 2;
/// Another domain with one pinned L1 (contains_pte maps).
const D3: DomId = 3;
const GT1: u64 = 20; // D1's grant-table frame
const L4: u64 = 8;
const L1: u64 = 11; // D2's L1, mapping VAs 0..2 MiB
const L1_D3: u64 = 16;
const VA: u64 = 0x5000;

#[derive(Clone, PartialEq, Eq, Debug)]
struct Fake {
    mem: Vec<[u64; 512]>,
    released: Vec<u64>,
    flushes: usize,
    /// Make this many compare-exchanges fail (a granter racing us).
    cas_fail: u32,
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
    fn flush_tlbs_all(&mut self) {
        self.flushes += 1;
    }
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
        if self.cas_fail > 0 {
            // The granter flips an unrelated bit (GTF_PWT) just before our exchange.
            self.cas_fail -= 1;
            *w ^= u64::from(GTF_PWT);
            return *w as u32;
        }
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
        let bytes: Vec<u8> = self.mem[src as usize]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let mut d: Vec<u8> = self.mem[dst as usize]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        d[dst_off..dst_off + len].copy_from_slice(&bytes[src_off..src_off + len]);
        for (i, c) in d.chunks(8).enumerate() {
            self.mem[dst as usize][i] = u64::from_le_bytes(c.try_into().unwrap());
        }
    }
}

fn byte(m: &Fake, mfn: u64, off: usize) -> u8 {
    m.mem[mfn as usize][off / 8].to_le_bytes()[off % 8]
}

fn entry(flags: u16, domid: DomId, frame: u64) -> u64 {
    u64::from(flags) | u64::from(domid) << 16 | frame << 32
}

struct W {
    mmu: Mmu<Vec<FrameInfo>>,
    m: Fake,
    g: Grants,
    v2: VcpuMm,
    v3: VcpuMm,
}

type Snap = (Vec<FrameInfo>, Grants, Fake);

impl W {
    fn new() -> W {
        let mut w = W {
            mmu: Mmu::new(vec![FrameInfo::FREE; N], [0; 16]),
            m: Fake {
                mem: vec![[0; 512]; N],
                released: Vec::new(),
                flushes: 0,
                cas_fail: 0,
            },
            g: Grants::new(),
            v2: VcpuMm::new(),
            v3: VcpuMm::new(),
        };
        for mfn in 1..20 {
            let d = match mfn {
                1..=7 => D1,
                8..=15 => D2,
                _ => D3,
            };
            w.mmu.assign(mfn, Owner::Domain(d)).unwrap();
        }
        for d in [D1, D2, D3] {
            w.g.create_domain(d, GrantLimits::XEN_DEFAULT).unwrap();
        }
        for (d, f) in [(D1, GT1), (D2, 21), (D3, 22)] {
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
            assert_eq!(req.grow, 1);
            w.g.perform_setup_table(&mut w.mmu, &mut w.m, req, &[f])
                .unwrap();
        }
        // D2: L4 8 -> L3 9 -> L2 10 -> L1 11 at VA 0.
        w.m.mem[8][0] = 9 << 12 | PTE_PRESENT | PTE_RW;
        w.m.mem[9][0] = 10 << 12 | PTE_PRESENT | PTE_RW;
        w.m.mem[10][0] = 11 << 12 | PTE_PRESENT | PTE_RW;
        w.mmu.build_pin_l4(&mut w.m, D2, &mut w.v2, L4).unwrap();
        let pin = MmuextOp {
            cmd: MMUEXT_PIN_L1_TABLE,
            arg1: L1_D3,
            ..Default::default()
        };
        w.mmu
            .mmuext_op(&mut w.m, MmuCtx::local(D3), &mut w.v3, &pin)
            .unwrap();
        w
    }

    fn grant(&mut self, gref: u32, flags: u16, domid: DomId, frame: u64) {
        self.m.mem[GT1 as usize][gref as usize] = entry(flags, domid, frame);
    }

    fn flags(&self, gref: u32) -> u16 {
        self.m.mem[GT1 as usize][gref as usize] as u16
    }

    fn f(&self, mfn: u64) -> FrameInfo {
        *self.mmu.frames().get(mfn).unwrap()
    }

    fn snap(&self) -> Snap {
        (
            self.mmu.frames().iter().map(|(_, f)| *f).collect(),
            self.g.clone(),
            self.m.clone(),
        )
    }

    fn map_op(&mut self, mapper: DomId, op: GnttabMapGrantRef) -> Result<Mapped, GntError> {
        let req = self.g.decode_map(mapper, &op)?;
        let v = if mapper == D2 { self.v2 } else { self.v3 };
        self.g.perform_map(&mut self.mmu, &mut self.m, &v, req)
    }

    fn map(&mut self, gref: u32, flags: u32) -> Result<Mapped, GntError> {
        self.map_op(
            D2,
            GnttabMapGrantRef {
                host_addr: VA,
                flags,
                ref_: gref,
                dom: D1,
                ..Default::default()
            },
        )
    }

    /// Map refused with `e`, changing nothing.
    fn map_refused(&mut self, mapper: DomId, op: GnttabMapGrantRef, e: GntError) {
        let before = self.snap();
        assert_eq!(self.map_op(mapper, op), Err(e), "{op:?}");
        assert!(self.snap() == before, "failed map changed state: {op:?}");
    }

    fn unmap(&mut self, mapper: DomId, handle: u32, host_addr: u64) -> Result<(), GntError> {
        let op = GnttabUnmapGrantRef {
            host_addr,
            handle,
            ..Default::default()
        };
        let req = self.g.decode_unmap(mapper, &op)?;
        let u = self.g.perform_unmap(&mut self.mmu, &mut self.m, req)?;
        self.g.complete_unmap(&mut self.mmu, &mut self.m, u);
        Ok(())
    }

    fn copy(&mut self, caller: DomId, op: GnttabCopy) -> Result<(), GntError> {
        let req = self.g.decode_copy(caller, &op)?;
        self.g.perform_copy(&mut self.mmu, &mut self.m, req)
    }
}

fn map_op(gref: u32, dom: DomId, host_addr: u64, flags: u32) -> GnttabMapGrantRef {
    GnttabMapGrantRef {
        host_addr,
        flags,
        ref_: gref,
        dom,
        ..Default::default()
    }
}

#[test]
fn statuses_are_negative() {
    use GntError::*;
    for e in [
        General,
        BadDomain,
        BadGntref,
        BadHandle,
        PermissionDenied,
        BadPage,
        BadCopyArg,
        NoSpace,
    ] {
        assert!(e.status() < 0, "{e:?}");
    }
}

#[test]
fn map_writable_takes_refs_and_unmap_gives_them_back() {
    let mut w = W::new();
    w.grant(3, GTF_PERMIT_ACCESS, D2, 2);
    let before = w.snap();
    let m = w.map(3, GNTMAP_HOST_MAP).unwrap();
    assert_eq!(m.dev_bus_addr, 2 << 12);
    assert_eq!(m.flush, Flush::None);
    let f = w.f(2);
    assert_eq!(
        (f.refcount(), f.page_type(), f.type_count()),
        (2, PageType::Writable, 1)
    );
    let pte = w.m.mem[L1 as usize][5];
    assert_eq!(pte & PTE_ADDR_MASK, 2 << 12);
    assert_ne!(pte & PTE_GNTTAB, 0);
    assert_ne!(pte & PTE_RW, 0);
    assert_eq!(w.flags(3), GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING);
    let a = *w.g.table(D1).unwrap().active(3).unwrap();
    assert_eq!((a.mapper, a.frame, a.readers, a.writers), (D2, 2, 0, 1));
    // P1: the granter cannot make it a page table while it is mapped writable.
    let pin = MmuextOp {
        cmd: MMUEXT_PIN_L1_TABLE,
        arg1: 2,
        ..Default::default()
    };
    let mut v1 = VcpuMm::new();
    assert!(w
        .mmu
        .mmuext_op(&mut w.m, MmuCtx::local(D1), &mut v1, &pin)
        .is_err());
    // Two-phase unmap: the PTE goes first, the references after the flush.
    let op = GnttabUnmapGrantRef {
        host_addr: VA,
        handle: m.handle,
        ..Default::default()
    };
    let u =
        w.g.unmap_grant_ref(&mut w.mmu, &mut w.m, D2, &mut op.clone())
            .unwrap();
    assert_eq!(u.flush(), Flush::PageAll(VA));
    assert_eq!(w.m.mem[L1 as usize][5], 0);
    assert_eq!(w.f(2).refcount(), 2, "refs held until complete_unmap");
    w.g.complete_unmap(&mut w.mmu, &mut w.m, u);
    assert_eq!(w.g.table(D2).unwrap().nr_mappings(), 0);
    assert!(w.g.table(D1).unwrap().actives().next().is_none());
    assert!(
        w.snap().0 != before.0,
        "the frame is now typed Writable (count 0)"
    );
    assert_eq!(w.flags(3), GTF_PERMIT_ACCESS);
    assert_eq!((w.f(2).refcount(), w.f(2).type_count()), (1, 0));
}

#[test]
fn map_readonly_takes_no_type_ref() {
    let mut w = W::new();
    w.grant(4, GTF_PERMIT_ACCESS | GTF_READONLY, D2, 3);
    let m = w.map(4, GNTMAP_HOST_MAP | GNTMAP_READONLY).unwrap();
    assert_eq!((w.f(3).refcount(), w.f(3).type_count()), (2, 0));
    assert_eq!(w.m.mem[L1 as usize][5] & PTE_RW, 0);
    assert_eq!(w.flags(4), GTF_PERMIT_ACCESS | GTF_READONLY | GTF_READING);
    // The granter may still use it as a page table (it is mapped read-only).
    w.unmap(D2, m.handle, VA).unwrap();
    assert_eq!(w.flags(4), GTF_PERMIT_ACCESS | GTF_READONLY);
    assert_eq!(w.f(3).refcount(), 1);
}

#[test]
fn map_refusals_change_nothing() {
    let mut w = W::new();
    w.grant(1, GTF_PERMIT_ACCESS, D2, 2);
    w.grant(2, GTF_PERMIT_ACCESS | GTF_READONLY, D2, 2);
    w.grant(3, GTF_PERMIT_ACCESS, D3, 2); // for another domain
    w.grant(4, 0, D2, 2); // not (or no longer) granted
    w.grant(5, GTF_TRANSITIVE, D2, 2);
    w.grant(6, GTF_PERMIT_ACCESS | GTF_SUB_PAGE, D2, 2);
    w.grant(7, GTF_PERMIT_ACCESS, D2, 9); // D2's own frame, not D1's
    w.grant(8, GTF_PERMIT_ACCESS, D2, 0); // hypervisor frame
    w.grant(9, GTF_PERMIT_ACCESS, D2, 999); // no such frame
    w.grant(10, GTF_ACCEPT_TRANSFER, D2, 2);
    use GntError::*;
    let h = GNTMAP_HOST_MAP;
    w.map_refused(D2, map_op(512, D1, VA, h), BadGntref); // past the table
    w.map_refused(D2, map_op(u32::MAX, D1, VA, h), BadGntref);
    w.map_refused(D2, map_op(3, D1, VA, h), General); // wrong domid in the entry
    w.map_refused(D2, map_op(4, D1, VA, h), General); // no permit_access
    w.map_refused(D2, map_op(2, D1, VA, h), General); // r/o grant mapped writable
    w.map_refused(D2, map_op(5, D1, VA, h), General); // transitive
    w.map_refused(D2, map_op(6, D1, VA, h), General); // sub-page
    w.map_refused(D2, map_op(10, D1, VA, h), General); // transfer entry
    w.map_refused(D2, map_op(7, D1, VA, h), BadPage);
    w.map_refused(D2, map_op(8, D1, VA, h | GNTMAP_READONLY), BadPage);
    w.map_refused(D2, map_op(9, D1, VA, h), BadPage);
    w.map_refused(D2, map_op(1, D1, VA, 0), BadGntref); // neither host nor device map
    w.map_refused(D2, map_op(1, D1, VA, GNTMAP_DEVICE_MAP), General);
    w.map_refused(D2, map_op(1, D1, VA, h | GNTMAP_DEVICE_MAP), General);
    w.map_refused(D2, map_op(1, 77, VA, h), BadDomain);
    w.map_refused(D2, map_op(1, DOMID_SELF, VA, h), BadDomain);
    w.map_refused(D2, map_op(1, D1, 0x4000_0000, h), General); // no L1 there
    w.map_refused(D2, map_op(1, D1, 0xffff_8000_0000_0000, h), General); // Xen's range
                                                                         // G3: contains_pte must be aligned and inside a live L1 of the mapper.
    let pte = |mfn: u64, idx: u64| (mfn << 12) | (idx * 8);
    let c = h | GNTMAP_CONTAINS_PTE;
    w.map_refused(D3, map_op(3, D1, pte(L1_D3, 1) + 4, c), General);
    w.map_refused(D3, map_op(3, D1, pte(17, 1), c), General); // D3's frame, not an L1
    w.map_refused(D3, map_op(3, D1, pte(L1, 1), c), General); // D2's L1
    w.map_refused(D3, map_op(3, D1, pte(999, 1), c), General);
    // The granted frame is a page table: no writable map of it (P1).
    let mut v1 = VcpuMm::new();
    let pin = MmuextOp {
        cmd: MMUEXT_PIN_L1_TABLE,
        arg1: 2,
        ..Default::default()
    };
    w.mmu
        .mmuext_op(&mut w.m, MmuCtx::local(D1), &mut v1, &pin)
        .unwrap();
    w.map_refused(D2, map_op(1, D1, VA, h), General);
    // Read-only is fine.
    let m = w.map(1, h | GNTMAP_READONLY).unwrap();
    w.unmap(D2, m.handle, VA).unwrap();
    // An entry pinned by another domain: refused even if the entry now names us.
    let m3 = w
        .map_op(D3, map_op(3, D1, pte(L1_D3, 1), c | GNTMAP_READONLY))
        .unwrap();
    w.grant(3, GTF_PERMIT_ACCESS | GTF_READING, D2, 2);
    w.map_refused(D2, map_op(3, D1, VA, h | GNTMAP_READONLY), General);
    w.grant(3, GTF_PERMIT_ACCESS | GTF_READING, D3, 2);
    w.unmap(D3, m3.handle, pte(L1_D3, 1)).unwrap();
}

#[test]
fn contains_pte_map_and_unmap() {
    let mut w = W::new();
    w.grant(1, GTF_PERMIT_ACCESS, D3, 4);
    let addr = (L1_D3 << 12) | (7 * 8);
    let m = w
        .map_op(
            D3,
            map_op(
                1,
                D1,
                addr,
                GNTMAP_HOST_MAP | GNTMAP_CONTAINS_PTE | GNTMAP_APPLICATION_MAP,
            ),
        )
        .unwrap();
    let pte = w.m.mem[L1_D3 as usize][7];
    assert_eq!(
        pte & (PTE_PRESENT | PTE_RW | PTE_USER | PTE_GNTTAB | PTE_ADDR_MASK),
        PTE_PRESENT | PTE_RW | PTE_USER | PTE_GNTTAB | 4 << 12
    );
    assert_eq!(w.unmap(D3, m.handle, addr + 8), Err(GntError::General));
    w.unmap(D3, m.handle, addr).unwrap();
    assert_eq!(w.m.mem[L1_D3 as usize][7], 0);
    assert_eq!(w.f(4).refcount(), 1);
}

#[test]
fn map_over_an_ordinary_pte_drops_its_refs() {
    let mut w = W::new();
    // D2 maps its own frame 12 at VA (index 5 of L1 11), read-write.
    let req = MmuUpdate {
        ptr: (L1 << 12) | (5 * 8),
        val: 12 << 12 | PTE_PRESENT | PTE_RW,
    };
    w.mmu.mmu_update(&mut w.m, MmuCtx::local(D2), &req).unwrap();
    assert_eq!((w.f(12).refcount(), w.f(12).type_count()), (2, 1));
    w.grant(1, GTF_PERMIT_ACCESS, D2, 2);
    let m = w.map(1, GNTMAP_HOST_MAP).unwrap();
    assert_eq!(m.flush, Flush::PageAll(VA));
    assert_eq!((w.f(12).refcount(), w.f(12).type_count()), (1, 0));
    // A second map on the same PTE is refused (the grant PTE is never replaced).
    let before = w.snap();
    assert_eq!(w.map(1, GNTMAP_HOST_MAP), Err(GntError::General));
    assert!(w.snap() == before);
    w.unmap(D2, m.handle, VA).unwrap();
}

#[test]
fn unmap_refusals() {
    let mut w = W::new();
    w.grant(1, GTF_PERMIT_ACCESS, D2, 2);
    let m = w.map(1, GNTMAP_HOST_MAP).unwrap();
    let before = w.snap();
    // Another domain's handle space: D3 has no mapping at all.
    assert_eq!(w.unmap(D3, m.handle, VA), Err(GntError::BadHandle));
    assert_eq!(w.unmap(D2, m.handle + 1, VA), Err(GntError::BadHandle));
    assert_eq!(w.unmap(D2, u32::MAX, VA), Err(GntError::BadHandle));
    // The address is not the map's (G2).
    assert_eq!(w.unmap(D2, m.handle, VA + 0x1000), Err(GntError::General));
    assert!(w.snap() == before);
    // host_addr 0: Xen does nothing and says okay.
    w.unmap(D2, m.handle, 0).unwrap();
    assert!(w.snap() == before);
    w.unmap(D2, m.handle, VA).unwrap();
    // Stale handle.
    let before = w.snap();
    assert_eq!(w.unmap(D2, m.handle, VA), Err(GntError::BadHandle));
    assert!(w.snap() == before);
}

#[test]
fn guest_cannot_overwrite_a_grant_pte_and_devalidation_leaves_refs_to_the_grant() {
    let mut w = W::new();
    w.grant(1, GTF_PERMIT_ACCESS, D3, 2);
    let addr = (L1_D3 << 12) | (3 * 8);
    let m = w
        .map_op(
            D3,
            map_op(1, D1, addr, GNTMAP_HOST_MAP | GNTMAP_CONTAINS_PTE),
        )
        .unwrap();
    let req = MmuUpdate { ptr: addr, val: 0 };
    assert_eq!(
        w.mmu.mmu_update(&mut w.m, MmuCtx::local(D3), &req),
        Err(EINVAL)
    );
    // Unpin the L1: the grant PTE dies with the table; the grant keeps its references.
    let unpin = MmuextOp {
        cmd: MMUEXT_UNPIN_TABLE,
        arg1: L1_D3,
        ..Default::default()
    };
    w.mmu
        .mmuext_op(&mut w.m, MmuCtx::local(D3), &mut w.v3, &unpin)
        .unwrap();
    assert_eq!((w.f(2).refcount(), w.f(2).type_count()), (2, 1));
    // It cannot be revalidated with the stale grant PTE in it.
    let pin = MmuextOp {
        cmd: MMUEXT_PIN_L1_TABLE,
        arg1: L1_D3,
        ..Default::default()
    };
    assert!(w
        .mmu
        .mmuext_op(&mut w.m, MmuCtx::local(D3), &mut w.v3, &pin)
        .is_err());
    // The unmap succeeds without writing into the dead table.
    let stale = w.m.mem[L1_D3 as usize][3];
    w.unmap(D3, m.handle, addr).unwrap();
    assert_eq!(w.m.mem[L1_D3 as usize][3], stale);
    assert_eq!((w.f(2).refcount(), w.f(2).type_count()), (1, 0));
}

#[test]
fn revoke_while_mapped_frees_nothing_and_refuses_new_maps() {
    let mut w = W::new();
    w.grant(1, GTF_PERMIT_ACCESS, D2, 2);
    let m = w.map(1, GNTMAP_HOST_MAP).unwrap();
    // The granter clears permit_access (keeping the hypervisor's status bits).
    w.grant(1, GTF_READING | GTF_WRITING, D2, 2);
    // ... and gives the frame back: it must not be freed while mapped.
    w.mmu.release_allocation(&mut w.m, 2, D1).unwrap();
    assert!(!w.m.released.contains(&2));
    assert_eq!(w.f(2).owner(), Owner::Domain(D1));
    assert_eq!(
        w.map(1, GNTMAP_HOST_MAP | GNTMAP_READONLY),
        Err(GntError::General)
    );
    w.unmap(D2, m.handle, VA).unwrap();
    assert_eq!(w.m.released, vec![2]);
    assert_eq!(w.flags(1), 0);
}

#[test]
fn copy_between_grants_and_local_frames() {
    let mut w = W::new();
    w.grant(1, GTF_PERMIT_ACCESS | GTF_READONLY, D2, 2);
    w.grant(2, GTF_PERMIT_ACCESS, D2, 3);
    w.m.mem[2][0] = 0x1122_3344_5566_7788;
    let before = w.snap();
    let side = |u: u64, domid: DomId, offset: u16| GnttabCopyPtr {
        u,
        domid,
        offset,
        _pad: 0,
    };
    let op = |src, dst, len, flags| GnttabCopy {
        source: src,
        dest: dst,
        len,
        flags,
        ..Default::default()
    };
    // gref -> local frame 12 of D2.
    w.copy(
        D2,
        op(
            side(1, D1, 1),
            side(12, DOMID_SELF, 4093),
            3,
            GNTCOPY_SOURCE_GREF,
        ),
    )
    .unwrap();
    assert_eq!((byte(&w.m, 12, 4093), byte(&w.m, 12, 4095)), (0x77, 0x55));
    // local -> gref, and gref -> gref.
    w.copy(
        D2,
        op(
            side(12, DOMID_SELF, 4093),
            side(2, D1, 0),
            3,
            GNTCOPY_DEST_GREF,
        ),
    )
    .unwrap();
    assert_eq!(byte(&w.m, 3, 0), 0x77);
    w.copy(
        D2,
        op(
            side(1, D1, 0),
            side(2, D1, 8),
            8,
            GNTCOPY_SOURCE_GREF | GNTCOPY_DEST_GREF,
        ),
    )
    .unwrap();
    assert_eq!(w.m.mem[3][1], 0x1122_3344_5566_7788);
    // Everything is released after each copy.
    assert!(w.g.table(D1).unwrap().actives().next().is_none());
    assert_eq!(w.flags(1), GTF_PERMIT_ACCESS | GTF_READONLY);
    assert_eq!(w.flags(2), GTF_PERMIT_ACCESS);
    let after = w.snap();
    for mfn in [2, 3, 12] {
        assert_eq!(after.0[mfn].refcount(), before.0[mfn].refcount());
        assert_eq!(after.0[mfn].type_count(), 0);
    }
    // len 0 is fine, at any offset up to 4096.
    w.copy(D2, op(side(1, D1, 4096), side(2, D1, 4096), 0, 3))
        .unwrap();

    use GntError::*;
    let mut refused = |caller, o: GnttabCopy, e| {
        let before = w.snap();
        assert_eq!(w.copy(caller, o), Err(e), "{o:?}");
        assert!(w.snap() == before, "{o:?}");
    };
    refused(
        D2,
        op(side(1, D1, 4000), side(12, DOMID_SELF, 0), 97, 1),
        BadCopyArg,
    );
    refused(
        D2,
        op(side(1, D1, 0), side(12, DOMID_SELF, 4095), 2, 1),
        BadCopyArg,
    );
    refused(
        D2,
        op(side(1, D1, 4097), side(12, DOMID_SELF, 0), 0, 1),
        BadCopyArg,
    );
    // A frame side must say DOMID_SELF (even with the caller's own id).
    refused(
        D2,
        op(side(1, D1, 0), side(12, D2, 0), 1, 1),
        PermissionDenied,
    );
    refused(
        D2,
        op(side(1, 77, 0), side(12, DOMID_SELF, 0), 1, 1),
        BadDomain,
    );
    refused(
        D2,
        op(side(600, D1, 0), side(12, DOMID_SELF, 0), 1, 1),
        BadGntref,
    );
    // Writing into a read-only grant; the grant is for D2, not D3.
    refused(
        D2,
        op(side(12, DOMID_SELF, 0), side(1, D1, 0), 1, 2),
        General,
    );
    refused(
        D3,
        op(side(1, D1, 0), side(16, DOMID_SELF, 0), 1, 1),
        General,
    );
    // Local frames must be the caller's; never write a page table (P1).
    refused(
        D2,
        op(side(1, D1, 0), side(2, DOMID_SELF, 0), 1, 1),
        BadPage,
    );
    refused(
        D2,
        op(side(1, D1, 0), side(L1, DOMID_SELF, 0), 1, 1),
        General,
    );
    refused(
        D2,
        op(side(999, DOMID_SELF, 0), side(12, DOMID_SELF, 0), 1, 0),
        BadPage,
    );
}

#[test]
fn set_status_retries_then_gives_up() {
    let mut w = W::new();
    w.grant(1, GTF_PERMIT_ACCESS, D2, 2);
    w.m.cas_fail = CAS_RETRIES - 1;
    let m = w.map(1, GNTMAP_HOST_MAP).unwrap();
    w.unmap(D2, m.handle, VA).unwrap();
    w.m.cas_fail = CAS_RETRIES;
    assert_eq!(w.map(1, GNTMAP_HOST_MAP), Err(GntError::General));
    assert!(w.g.table(D1).unwrap().active(1).is_none());
    assert_eq!(w.f(2).refcount(), 1);
}

#[test]
fn setup_and_query() {
    let mut w = W::new();
    let op = |dom, nr_frames| GnttabSetupTable {
        dom,
        nr_frames,
        ..Default::default()
    };
    assert_eq!(
        w.g.decode_setup_table(D1, false, &op(DOMID_SELF, 65)),
        Err(GntError::General)
    );
    assert_eq!(
        w.g.decode_setup_table(D2, false, &op(D1, 1)),
        Err(GntError::PermissionDenied)
    );
    assert_eq!(
        w.g.decode_setup_table(D2, true, &op(99, 1)),
        Err(GntError::BadDomain)
    );
    let req = w.g.decode_setup_table(D2, true, &op(D1, 3)).unwrap();
    assert_eq!((req.dom, req.grow), (D1, 2));
    // Not free, duplicated or too few frames: refused, nothing changed.
    for bad in [&[23u64, 1][..], &[23, 23], &[23]] {
        let before = w.snap();
        assert_eq!(
            w.g.perform_setup_table(&mut w.mmu, &mut w.m, req, bad),
            Err(GntError::General)
        );
        assert!(w.snap() == before);
    }
    w.m.mem[24][9] = 0xdead;
    w.g.perform_setup_table(&mut w.mmu, &mut w.m, req, &[23, 24])
        .unwrap();
    assert_eq!(w.g.table(D1).unwrap().frames(), &[GT1, 23, 24]);
    assert_eq!(w.m.mem[24][9], 0, "table frames are zeroed");
    let f = w.f(24);
    assert_eq!(
        (f.owner(), f.refcount(), f.page_type(), f.type_count()),
        (Owner::Domain(D1), 2, PageType::Writable, 1)
    );
    // Shrinking is a no-op.
    let req =
        w.g.decode_setup_table(D1, false, &op(DOMID_SELF, 1))
            .unwrap();
    assert_eq!(req.grow, 0);
    let q = GnttabQuerySize {
        dom: DOMID_SELF,
        ..Default::default()
    };
    assert_eq!(w.g.query_size(D1, false, &q), Ok((3, 64)));
    let q = GnttabQuerySize {
        dom: D1,
        ..Default::default()
    };
    assert_eq!(
        w.g.query_size(D2, false, &q),
        Err(GntError::PermissionDenied)
    );
    assert_eq!(w.g.query_size(D2, true, &q), Ok((3, 64)));
    // A grant in the third frame works.
    w.m.mem[24][5] = entry(GTF_PERMIT_ACCESS, D2, 2);
    let m = w.map(2 * 512 + 5, GNTMAP_HOST_MAP).unwrap();
    w.unmap(D2, m.handle, VA).unwrap();
}

#[test]
fn maptrack_limit() {
    let mut w = W::new();
    w.g = Grants::new();
    w.g.create_domain(D1, GrantLimits::XEN_DEFAULT).unwrap();
    w.g.create_domain(
        D3,
        GrantLimits {
            max_grant_frames: 1,
            max_maptrack: 1,
        },
    )
    .unwrap();
    let req =
        w.g.decode_setup_table(
            D1,
            false,
            &GnttabSetupTable {
                dom: D1,
                nr_frames: 1,
                ..Default::default()
            },
        )
        .unwrap();
    w.g.perform_setup_table(&mut w.mmu, &mut w.m, req, &[25])
        .unwrap();
    w.m.mem[25][1] = entry(GTF_PERMIT_ACCESS, D3, 2);
    let c = GNTMAP_HOST_MAP | GNTMAP_CONTAINS_PTE | GNTMAP_READONLY;
    let m = w.map_op(D3, map_op(1, D1, L1_D3 << 12, c)).unwrap();
    w.map_refused(D3, map_op(1, D1, L1_D3 << 12 | 8, c), GntError::NoSpace);
    w.unmap(D3, m.handle, L1_D3 << 12).unwrap();
    w.map_op(D3, map_op(1, D1, L1_D3 << 12 | 8, c)).unwrap();
}

#[test]
fn release_mappings_is_bounded_and_destroy_waits() {
    let mut w = W::new();
    for gref in 1..6 {
        w.grant(gref, GTF_PERMIT_ACCESS, D3, u64::from(gref));
        let addr = (L1_D3 << 12) | (u64::from(gref) * 8);
        w.map_op(
            D3,
            map_op(gref, D1, addr, GNTMAP_HOST_MAP | GNTMAP_CONTAINS_PTE),
        )
        .unwrap();
    }
    assert_eq!(w.g.destroy_domain(&mut w.mmu, &mut w.m, D1), Err(EBUSY));
    assert_eq!(w.g.destroy_domain(&mut w.mmu, &mut w.m, D3), Err(EBUSY));
    let mut calls = 0;
    while !w.g.release_mappings(&mut w.mmu, &mut w.m, D3, 2).unwrap() {
        calls += 1;
        assert!(calls < 10);
    }
    assert_eq!(calls, 2);
    for gref in 1..6u32 {
        assert_eq!(w.m.mem[L1_D3 as usize][gref as usize], 0);
        assert_eq!(w.f(u64::from(gref)).refcount(), 1);
        assert_eq!(w.flags(gref), GTF_PERMIT_ACCESS);
    }
    assert_eq!(
        w.g.release_mappings(&mut w.mmu, &mut w.m, 99, 2),
        Err(EINVAL)
    );
    // Destroy: the table frames lose the table's references; relinquish frees them.
    w.g.destroy_domain(&mut w.mmu, &mut w.m, D1).unwrap();
    assert_eq!((w.f(GT1).refcount(), w.f(GT1).type_count()), (1, 0));
    w.mmu.relinquish(&mut w.m, D1, []);
    assert!(w.m.released.contains(&GT1));
}

#[test]
fn commands_and_versions() {
    assert_eq!(
        decode_cmd(GNTTABOP_MAP_GRANT_REF),
        Ok(GnttabCmd::MapGrantRef)
    );
    assert_eq!(decode_cmd(GNTTABOP_COPY), Ok(GnttabCmd::Copy));
    for c in [
        GNTTABOP_DUMP_TABLE,
        GNTTABOP_TRANSFER,
        GNTTABOP_UNMAP_AND_REPLACE,
        GNTTABOP_GET_STATUS_FRAMES,
        GNTTABOP_SWAP_GRANT_REF,
        GNTTABOP_CACHE_FLUSH,
        99,
    ] {
        assert_eq!(decode_cmd(c), Err(ENOSYS));
    }
    assert_eq!(set_version(1), Ok(1));
    assert_eq!(set_version(2), Err(ENOSYS));
    assert_eq!(set_version(0), Err(EINVAL));
}

#[test]
fn op_wrappers_fill_status() {
    let mut w = W::new();
    w.grant(1, GTF_PERMIT_ACCESS, D2, 2);
    let mut op = map_op(1, D1, VA, GNTMAP_HOST_MAP);
    let v2 = w.v2;
    assert_eq!(
        w.g.map_grant_ref(&mut w.mmu, &mut w.m, D2, &v2, &mut op),
        Flush::None
    );
    assert_eq!((op.status, op.dev_bus_addr), (GNTST_OKAY, 2 << 12));
    let mut bad = map_op(1, D1, VA, 0);
    w.g.map_grant_ref(&mut w.mmu, &mut w.m, D2, &v2, &mut bad);
    assert_eq!(bad.status, GNTST_BAD_GNTREF);
    let mut un = GnttabUnmapGrantRef {
        host_addr: VA,
        handle: op.handle,
        ..Default::default()
    };
    let u =
        w.g.unmap_grant_ref(&mut w.mmu, &mut w.m, D2, &mut un)
            .unwrap();
    assert_eq!(un.status, GNTST_OKAY);
    w.g.complete_unmap(&mut w.mmu, &mut w.m, u);
    assert!(w
        .g
        .unmap_grant_ref(&mut w.mmu, &mut w.m, D2, &mut un)
        .is_none());
    assert_eq!(un.status, GNTST_BAD_HANDLE);
    let mut c = GnttabCopy {
        len: 4097,
        ..Default::default()
    };
    c.source.domid = DOMID_SELF;
    c.dest.domid = DOMID_SELF;
    w.g.copy(&mut w.mmu, &mut w.m, D2, &mut c);
    assert_eq!(c.status, GNTST_BAD_COPY_ARG);
}
