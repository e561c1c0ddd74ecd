//! Unit tests: each refusal Xen makes, and the reference bookkeeping around it.

use super::*;
use crate::frame::FrameInfo;
use xen_abi::errno::{EBUSY, EINVAL, ENOSYS, EOPNOTSUPP, EPERM};

const N: usize = 32;
const D1: DomId = 1;
const D2: DomId = 2;
const XEN_E: u64 = 0xdead_0000 | PTE_PRESENT;

struct Fake {
    mem: Vec<[u64; 512]>,
    m2p: Vec<u64>,
    flushes: usize,
    released: Vec<u64>,
    iomem: bool,
    cache: bool,
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
    fn flush_tlbs_all(&mut self) {
        self.flushes += 1;
    }
    fn frame_released(&mut self, mfn: u64) {
        self.released.push(mfn);
    }
    fn iomem_permitted(&self, _: DomId, _: u64) -> bool {
        self.iomem
    }
    fn cache_attrs_permitted(&self, _: DomId) -> bool {
        self.cache
    }
}

struct W {
    mmu: Mmu<Vec<FrameInfo>>,
    m: Fake,
    v: VcpuMm,
}

// Frames: 0 hypervisor; 1..16 D1; 16..24 D2; 30, 31 I/O; the rest free.
// D1's boot tables: L4 1 -> L3 2 -> L2 3 -> L1 4 -> data 5 (rw), 6 (ro); L1 maps itself ro.
const L4: u64 = 1;
const L3: u64 = 2;
const L2: u64 = 3;
const L1: u64 = 4;
const VA5: u64 = 0; // va mapped to frame 5 (all indexes 0)
const VA6: u64 = 1 << 12;

fn pte(mfn: u64, flags: u64) -> u64 {
    (mfn << 12) | flags
}
const P: u64 = PTE_PRESENT;
const RW: u64 = PTE_PRESENT | PTE_RW;

fn world() -> W {
    let mut mmu = Mmu::new(vec![FrameInfo::FREE; N], [XEN_E; XEN_L4_SLOTS]);
    mmu.assign(0, Owner::Hypervisor).unwrap();
    for mfn in 1..16 {
        mmu.assign(mfn, Owner::Domain(D1)).unwrap();
    }
    for mfn in 16..24 {
        mmu.assign(mfn, Owner::Domain(D2)).unwrap();
    }
    mmu.assign(30, Owner::Io).unwrap();
    mmu.assign(31, Owner::Io).unwrap();
    let mut m = Fake {
        mem: vec![[0; 512]; N],
        m2p: vec![0; N],
        flushes: 0,
        released: vec![],
        iomem: false,
        cache: false,
    };
    m.mem[L4 as usize][0] = pte(L3, RW);
    m.mem[L3 as usize][0] = pte(L2, RW);
    m.mem[L2 as usize][0] = pte(L1, RW);
    m.mem[L1 as usize][0] = pte(5, RW);
    m.mem[L1 as usize][1] = pte(6, P);
    m.mem[L1 as usize][2] = pte(L1, P);
    W {
        mmu,
        m,
        v: VcpuMm::new(),
    }
}

fn built() -> W {
    let mut w = world();
    w.mmu.build_pin_l4(&mut w.m, D1, &mut w.v, L4).unwrap();
    w
}

impl W {
    fn f(&self, mfn: u64) -> FrameInfo {
        *self.mmu.frames().get(mfn).unwrap()
    }
    fn upd(&mut self, table: u64, idx: usize, val: u64) -> Result<Flush, Errno> {
        let req = MmuUpdate {
            ptr: (table << 12) + (idx as u64) * 8,
            val,
        };
        self.mmu.mmu_update(&mut self.m, MmuCtx::local(D1), &req)
    }
    fn ext(&mut self, cmd: u32, arg1: u64, arg2: u64) -> Result<Flush, Errno> {
        let op = MmuextOp {
            cmd,
            _pad: 0,
            arg1,
            arg2,
        };
        self.mmu
            .mmuext_op(&mut self.m, MmuCtx::local(D1), &mut self.v, &op)
    }
    fn counts(&self) -> Vec<(u32, u32)> {
        self.mmu
            .frames()
            .iter()
            .map(|(_, f)| (f.refcount(), f.type_count()))
            .collect()
    }
}

#[test]
fn build_validates_pins_and_sets_baseptr() {
    let w = built();
    assert_eq!(w.v.kernel_l4(), Some(L4));
    let l4 = w.f(L4);
    assert_eq!(
        (l4.page_type(), l4.type_count(), l4.refcount(), l4.pinned()),
        (PageType::L4, 2, 3, true)
    );
    for (mfn, ty) in [(L3, PageType::L3), (L2, PageType::L2), (L1, PageType::L1)] {
        assert_eq!(
            (
                w.f(mfn).page_type(),
                w.f(mfn).type_count(),
                w.f(mfn).validated()
            ),
            (ty, 1, true)
        );
    }
    // L1: allocation + L2 entry + its own read-only self-mapping.
    assert_eq!(w.f(L1).refcount(), 3);
    assert_eq!(
        (w.f(5).page_type(), w.f(5).type_count(), w.f(5).refcount()),
        (PageType::Writable, 1, 2)
    );
    assert_eq!((w.f(6).type_count(), w.f(6).refcount()), (0, 2));
    // Hypervisor slots filled; kernel mappings adjusted (USER | GUEST_KERNEL).
    assert!(w.m.mem[L4 as usize][256..272].iter().all(|&e| e == XEN_E));
    assert_eq!(
        w.m.mem[L1 as usize][0],
        pte(5, RW) | PTE_USER | PTE_GUEST_KERNEL
    );
    assert_eq!(w.m.mem[L2 as usize][0], pte(L1, RW) | PTE_USER);
}

#[test]
fn build_refuses_inconsistent_tables_and_changes_nothing() {
    for (table, idx, val, err) in [
        (L1, 3, pte(L2, RW), EBUSY),           // a page table mapped writable
        (L1, 3, pte(L1, RW), EBUSY),           // the L1 writable through itself
        (L1, 3, pte(17, P), EBUSY),            // a frame of another domain
        (L2, 1, pte(9, RW | PTE_PSE), EINVAL), // superpage (XSA-148)
        (L3, 1, pte(L3, RW), EINVAL),          // linear L3 -> itself
        (L4, 1, pte(L4, P), EINVAL),           // linear L4 -> itself
        (L2, 1, pte(L3, P), EINVAL),           // L2 -> L3 (higher level)
        (L4, 2, pte(0, P), EINVAL),            // hypervisor frame
    ] {
        let mut w = world();
        let before = w.counts();
        w.m.mem[table as usize][idx] = val;
        assert_eq!(
            w.mmu.build_pin_l4(&mut w.m, D1, &mut w.v, L4),
            Err(err),
            "{table}[{idx}] = {val:#x}"
        );
        assert_eq!(w.counts(), before);
        assert_eq!(w.v.kernel_l4(), None);
    }
}

#[test]
fn writable_mapping_of_any_table_is_refused() {
    let mut w = built();
    let before = w.counts();
    for t in [L1, L2, L3, L4] {
        assert_eq!(w.upd(L1, 10, pte(t, RW)), Err(EBUSY), "table {t}");
        assert_eq!(
            w.mmu
                .update_va_mapping(&mut w.m, D1, &w.v, VA6, pte(t, RW), 0),
            Err(EBUSY)
        );
    }
    assert_eq!(w.counts(), before);
    // Read-only is fine, and so is the writable mapping once it is no longer a table.
    assert_eq!(w.upd(L1, 10, pte(L2, P)), Ok(Flush::None));
    assert_eq!(w.f(L2).refcount(), 3);
}

#[test]
fn frames_of_other_domains_hypervisor_and_free_are_refused() {
    let mut w = built();
    assert_eq!(w.upd(L1, 10, pte(17, P)), Err(EBUSY));
    assert_eq!(w.upd(L1, 10, pte(0, P)), Err(EBUSY));
    assert_eq!(w.upd(L1, 10, pte(25, P)), Err(EBUSY));
    assert_eq!(w.upd(L2, 10, pte(17, P)), Err(EINVAL));
    assert_eq!(w.upd(L4, 10, pte(18, P)), Err(EINVAL));
    // Updating a table of another domain, or a frame that is not ours: EINVAL.
    assert_eq!(w.upd(17, 0, 0), Err(EINVAL));
    assert_eq!(w.upd(0, 0, 0), Err(EINVAL));
    assert_eq!(w.upd(1000, 0, 0), Err(EINVAL));
}

#[test]
fn mmio_needs_permission_and_holds_no_reference() {
    let mut w = built();
    assert_eq!(w.upd(L1, 10, pte(30, RW)), Err(EPERM));
    assert_eq!(w.upd(L1, 10, pte(1 << 30, RW)), Err(EPERM));
    w.m.iomem = true;
    assert_eq!(w.upd(L1, 10, pte(30, RW)), Ok(Flush::None));
    assert_eq!(w.f(30).refcount(), 0);
    assert_eq!(w.upd(L1, 10, 0), Ok(Flush::None));
    assert_eq!(w.f(30).refcount(), 0);
}

#[test]
fn hypervisor_slots_are_refused() {
    let mut w = built();
    w.mmu.assign(25, Owner::Domain(D1)).unwrap();
    for idx in [256, 263, 271] {
        assert_eq!(w.upd(L4, idx, pte(25, P)), Err(EINVAL));
        assert_eq!(w.upd(L4, idx, 0), Err(EINVAL));
    }
    assert!(w.m.mem[L4 as usize][256..272].iter().all(|&e| e == XEN_E));
    assert_eq!(w.upd(L4, 272, pte(25, P)), Ok(Flush::All));
    assert_eq!(w.f(25).page_type(), PageType::L3);
}

#[test]
fn linear_page_tables_are_refused() {
    let mut w = built();
    let before = w.counts();
    assert_eq!(w.upd(L4, 5, pte(L4, P)), Err(EINVAL));
    assert_eq!(w.upd(L3, 5, pte(L3, P)), Err(EINVAL));
    assert_eq!(w.upd(L3, 5, pte(L4, P)), Err(EINVAL));
    assert_eq!(w.upd(L2, 5, pte(L2, P)), Err(EINVAL));
    assert_eq!(w.upd(L2, 5, pte(L3, P)), Err(EINVAL));
    assert_eq!(w.counts(), before);
}

#[test]
fn flag_whitelist() {
    let mut w = built();
    w.mmu.assign(25, Owner::Domain(D1)).unwrap();
    assert_eq!(w.upd(L2, 5, pte(7, P | PTE_PSE)), Err(EINVAL));
    assert_eq!(w.upd(L3, 5, pte(7, P | PTE_PSE)), Err(EINVAL));
    assert_eq!(w.upd(L4, 5, pte(25, P | PTE_PSE)), Err(EINVAL));
    assert_eq!(w.upd(L2, 5, pte(7, P | PTE_GLOBAL)), Err(EINVAL));
    assert_eq!(w.upd(L2, 5, pte(7, P | PTE_PCD)), Err(EINVAL));
    assert_eq!(w.upd(L1, 10, pte(7, P | PTE_GNTTAB)), Err(EINVAL));
    assert_eq!(w.upd(L1, 10, pte(7, P | PTE_PCD)), Err(EINVAL));
    assert_eq!(w.upd(L1, 10, pte(7, P | PTE_PAT)), Err(EINVAL));
    assert_eq!(
        w.upd(
            L1,
            10,
            pte(7, P | PTE_GLOBAL | PTE_NX | PTE_AVAIL_MASK | PTE_USER)
        ),
        Ok(Flush::None)
    );
    w.m.cache = true;
    assert_eq!(
        w.upd(L1, 11, pte(7, P | PTE_PCD | PTE_PWT)),
        Ok(Flush::None)
    );
    // Non-present entries are stored as they are.
    assert_eq!(w.upd(L2, 5, 0xffff_fff0), Ok(Flush::All));
}

#[test]
fn pin_rules() {
    let mut w = built();
    // A table holding a writable mapping of itself cannot be pinned.
    w.m.mem[7][0] = pte(7, RW);
    let before = w.counts();
    assert_eq!(w.ext(MMUEXT_PIN_L1_TABLE, 7, 0), Err(EBUSY));
    assert_eq!(w.counts(), before);
    // Nor can a frame mapped writable elsewhere.
    assert_eq!(w.ext(MMUEXT_PIN_L1_TABLE, 5, 0), Err(EINVAL));
    // Pin twice -> EINVAL; unpin twice -> EINVAL.
    w.m.mem[7][0] = pte(6, RW);
    assert_eq!(w.ext(MMUEXT_PIN_L1_TABLE, 7, 0), Ok(Flush::None));
    assert_eq!(w.ext(MMUEXT_PIN_L1_TABLE, 7, 0), Err(EINVAL));
    assert_eq!(w.f(7).type_count(), 1);
    assert_eq!(w.ext(MMUEXT_PIN_L2_TABLE, 7, 0), Err(EINVAL));
    assert_eq!(w.ext(MMUEXT_UNPIN_TABLE, 7, 0), Ok(Flush::None));
    assert_eq!(w.ext(MMUEXT_UNPIN_TABLE, 7, 0), Err(EINVAL));
    assert_eq!(
        (w.f(7).type_count(), w.f(6).type_count(), w.f(7).refcount()),
        (0, 0, 1)
    );
    // Another domain's frame.
    assert_eq!(w.ext(MMUEXT_PIN_L1_TABLE, 17, 0), Err(EINVAL));
}

#[test]
fn new_baseptr_rules() {
    let mut w = built();
    assert_eq!(w.ext(MMUEXT_NEW_BASEPTR, L1, 0), Err(EINVAL));
    assert_eq!(w.ext(MMUEXT_NEW_BASEPTR, L3, 0), Err(EINVAL));
    assert_eq!(w.ext(MMUEXT_NEW_BASEPTR, 5, 0), Err(EINVAL)); // mapped writable
    assert_eq!(w.ext(MMUEXT_NEW_BASEPTR, 17, 0), Err(EINVAL));
    assert_eq!(w.v.kernel_l4(), Some(L4));
    // A fresh frame becomes an L4 (with the hypervisor's slots), the old one is dropped.
    w.m.mem[8][0] = pte(L3, P);
    assert_eq!(w.ext(MMUEXT_NEW_BASEPTR, 8, 0), Ok(Flush::Local));
    assert_eq!(
        (w.v.kernel_l4(), w.f(8).page_type(), w.f(L4).type_count()),
        (Some(8), PageType::L4, 1)
    );
    assert_eq!(w.f(L3).type_count(), 2);
    assert!(w.m.mem[8][256..272].iter().all(|&e| e == XEN_E));
    // User base pointer: 0 = none.
    assert_eq!(w.ext(MMUEXT_NEW_USER_BASEPTR, L4, 0), Ok(Flush::None));
    assert_eq!(w.f(L4).type_count(), 2);
    assert_eq!(w.ext(MMUEXT_NEW_USER_BASEPTR, 0, 0), Ok(Flush::None));
    assert_eq!((w.v.user_l4(), w.f(L4).type_count()), (None, 1));
    // Foreign callers may not switch another domain's CR3.
    let op = MmuextOp {
        cmd: MMUEXT_NEW_BASEPTR,
        _pad: 0,
        arg1: 8,
        arg2: 0,
    };
    let ctx = MmuCtx {
        caller: 0,
        pt_owner: D1,
        pg_owner: D1,
    };
    assert_eq!(w.mmu.mmuext_op(&mut w.m, ctx, &mut w.v, &op), Err(EPERM));
}

#[test]
fn entry_update_moves_references() {
    let mut w = built();
    // Unmap the writable data page: its Writable type ref and general ref go.
    assert_eq!(w.upd(L1, 0, 0), Ok(Flush::None));
    assert_eq!((w.f(5).type_count(), w.f(5).refcount()), (0, 1));
    // Remove the L3 -> L2 link: L2 and L1 lose their last type refs and are devalidated.
    assert_eq!(w.upd(L3, 0, 0), Ok(Flush::All));
    assert!(!w.f(L2).validated() && !w.f(L1).validated());
    assert_eq!(
        (w.f(6).refcount(), w.f(L1).refcount(), w.f(L2).refcount()),
        (1, 1, 1)
    );
    // Now the former L1 can be mapped writable (after a TLB flush: P2).
    let flushes = w.m.flushes;
    assert_eq!(w.upd(L4, 0, pte(L3, RW)), Ok(Flush::All)); // same target: refs unchanged
    assert_eq!(w.f(L3).type_count(), 1);
    assert_eq!(w.upd(L3, 0, pte(L2, RW)), Ok(Flush::All));
    assert_eq!(w.upd(L1, 3, pte(9, RW)), Ok(Flush::None));
    assert_eq!(w.m.flushes, flushes);
    w.upd(L2, 0, 0).unwrap();
    let mut u = w.m.mem[L1 as usize][3];
    u &= !PTE_RW;
    assert!(!w.mmu.frames().get(L1).unwrap().validated());
    // Write into the no-longer-table frame directly (plain memory), then map it writable.
    assert_eq!(w.upd(L1, 3, u), Ok(Flush::None));
    assert_eq!(w.upd(7, 0, 0), Ok(Flush::None)); // plain frame
    w.m.mem[7][0] = 0;
    w.mmu.assign(25, Owner::Domain(D1)).unwrap();
    w.upd(L2, 1, pte(7, RW)).unwrap(); // 7 becomes an L1
    assert_eq!(w.upd(7, 0, pte(L1, RW)), Ok(Flush::None));
    assert_eq!(w.f(L1).page_type(), PageType::Writable);
    assert!(
        w.m.flushes > flushes,
        "type change of a TLB-stale frame flushes first"
    );
}

#[test]
fn plain_write_refused_into_descriptor_pages() {
    let mut w = built();
    w.mmu
        .get_page_and_type(&mut w.m, 8, D1, PageType::SegDesc)
        .unwrap();
    assert_eq!(w.upd(8, 0, 0), Err(EINVAL));
    assert_eq!(w.upd(L1, 10, pte(8, RW)), Err(EBUSY));
    w.mmu.put_page_and_type(&mut w.m, 8);
    // A system descriptor other than type 0 is refused.
    w.m.mem[9][0] = (1 << 47) | (0xc << 40);
    assert_eq!(
        w.mmu.get_page_and_type(&mut w.m, 9, D1, PageType::SegDesc),
        Err(EINVAL)
    );
    // DPL is raised to 3.
    w.m.mem[9][0] = (1 << 47) | (1 << 44);
    w.mmu
        .get_page_and_type(&mut w.m, 9, D1, PageType::SegDesc)
        .unwrap();
    assert_eq!(w.m.mem[9][0] & (3 << 45), 3 << 45);
}

#[test]
fn retype_of_stale_frame_flushes_before_validation() {
    let mut w = built();
    // 7 was never used: no flush to pin it.
    let f0 = w.m.flushes;
    w.ext(MMUEXT_PIN_L1_TABLE, 7, 0).unwrap();
    assert_eq!(w.m.flushes, f0);
    // 5 was mapped writable; unmap it, then pin it as L1: flush first.
    w.upd(L1, 0, 0).unwrap();
    assert!(w.mmu.frames().tlb_stale(5));
    w.ext(MMUEXT_PIN_L1_TABLE, 5, 0).unwrap();
    assert_eq!(w.m.flushes, f0 + 1);
    assert!(!w.mmu.frames().tlb_stale(5));
}

#[test]
fn update_va_mapping_walks_the_kernel_table() {
    let mut w = built();
    assert_eq!(
        w.mmu
            .update_va_mapping(&mut w.m, D1, &w.v, VA6, pte(7, RW), UVMF_INVLPG | UVMF_ALL),
        Ok(Flush::PageAll(VA6))
    );
    assert_eq!(w.m.mem[L1 as usize][1] & PTE_ADDR_MASK, 7 << 12);
    assert_eq!((w.f(6).refcount(), w.f(7).type_count()), (1, 1));
    assert_eq!(
        w.mmu
            .update_va_mapping(&mut w.m, D1, &w.v, VA5, 0, UVMF_TLB_FLUSH),
        Ok(Flush::Local)
    );
    assert_eq!(
        w.mmu
            .update_va_mapping(&mut w.m, D1, &w.v, VA5, 0, UVMF_INVLPG),
        Ok(Flush::PageLocal(VA5))
    );
    assert_eq!(
        w.mmu
            .update_va_mapping(&mut w.m, D1, &w.v, VA5, 0, UVMF_TLB_FLUSH | 0x1000),
        Ok(Flush::All)
    );
    assert_eq!(
        w.mmu
            .update_va_mapping(&mut w.m, D1, &w.v, VA5, 0, UVMF_NONE),
        Ok(Flush::None)
    );
    // Hypervisor range, non-canonical, unmapped: EINVAL.
    for va in [
        HYPERVISOR_VIRT_START,
        HYPERVISOR_VIRT_END - 1,
        1 << 47,
        1 << 39,
    ] {
        assert_eq!(
            w.mmu.update_va_mapping(&mut w.m, D1, &w.v, va, 0, 0),
            Err(EINVAL),
            "{va:#x}"
        );
    }
    assert_eq!(
        w.mmu
            .update_va_mapping(&mut w.m, D1, &VcpuMm::new(), VA5, 0, 0),
        Err(EINVAL)
    );
    // Through a PSE L2 entry: refused (cannot exist anyway).
    assert_eq!(
        w.mmu.update_va_mapping(&mut w.m, D2, &w.v, VA5, 0, 0),
        Err(EINVAL)
    );
}

#[test]
fn machphys_update() {
    let mut w = built();
    let req = |mfn: u64, pfn| MmuUpdate {
        ptr: (mfn << 12) | MMU_MACHPHYS_UPDATE,
        val: pfn,
    };
    assert_eq!(
        w.mmu.mmu_update(&mut w.m, MmuCtx::local(D1), &req(5, 42)),
        Ok(Flush::None)
    );
    assert_eq!(w.m.m2p[5], 42);
    assert_eq!(
        w.mmu.mmu_update(&mut w.m, MmuCtx::local(D1), &req(17, 42)),
        Err(EINVAL)
    );
    assert_eq!(
        w.mmu
            .mmu_update(&mut w.m, MmuCtx::local(D1), &req(1 << 40, 42)),
        Err(EINVAL)
    );
    let foreign = MmuCtx {
        caller: 0,
        pt_owner: D1,
        pg_owner: D1,
    };
    assert_eq!(w.mmu.mmu_update(&mut w.m, foreign, &req(5, 1)), Err(EPERM));
}

#[test]
fn decode_refusals() {
    for cmd in 4..8 {
        assert_eq!(
            decode_mmu_update(&MmuUpdate {
                ptr: 0x1000 | cmd,
                val: 0
            }),
            Err(ENOSYS)
        );
    }
    let op = |cmd, arg1, arg2| MmuextOp {
        cmd,
        _pad: 0,
        arg1,
        arg2,
    };
    assert_eq!(decode_mmuext(&op(MMUEXT_MARK_SUPER, 0, 0)), Err(EOPNOTSUPP));
    assert_eq!(decode_mmuext(&op(14, 0, 0)), Err(ENOSYS));
    assert_eq!(decode_mmuext(&op(999, 0, 0)), Err(ENOSYS));
    assert_eq!(
        decode_mmuext(&op(MMUEXT_SET_LDT, 0x1000, 8193)),
        Err(EINVAL)
    );
    assert_eq!(decode_mmuext(&op(MMUEXT_SET_LDT, 0x1008, 1)), Err(EINVAL));
    assert_eq!(
        decode_mmuext(&op(MMUEXT_SET_LDT, HYPERVISOR_VIRT_START, 1)),
        Err(EINVAL)
    );
    assert_eq!(
        decode_mmuext(&op(MMUEXT_SET_LDT, 0xdead, 0)),
        Ok(MmuextCmd::SetLdt { base: 0, ents: 0 })
    );
    assert_eq!(
        decode_mmuext(&op(MMUEXT_SET_LDT, 0x2000, 16)),
        Ok(MmuextCmd::SetLdt {
            base: 0x2000,
            ents: 16
        })
    );
}

#[test]
fn flush_ops_and_ldt() {
    let mut w = built();
    assert_eq!(w.ext(MMUEXT_TLB_FLUSH_LOCAL, 0, 0), Ok(Flush::Local));
    assert_eq!(w.ext(MMUEXT_TLB_FLUSH_ALL, 0, 0), Ok(Flush::All));
    assert_eq!(
        w.ext(MMUEXT_INVLPG_LOCAL, 0x5000, 0),
        Ok(Flush::PageLocal(0x5000))
    );
    assert_eq!(
        w.ext(MMUEXT_INVLPG_ALL, 0x5000, 0),
        Ok(Flush::PageAll(0x5000))
    );
    assert_eq!(w.ext(MMUEXT_INVLPG_ALL, 1 << 63, 0), Ok(Flush::None)); // non-canonical: no-op
    assert_eq!(w.ext(MMUEXT_FLUSH_CACHE, 0, 0), Err(EACCES));
    assert_eq!(w.ext(MMUEXT_SET_LDT, 0x2000, 16), Ok(Flush::Local));
    assert_eq!(w.v.ldt(), (0x2000, 16));
    assert_eq!(w.ext(MMUEXT_SET_LDT, 0x2000, 16), Ok(Flush::None));
    assert_eq!(Flush::PageLocal(1).merge(Flush::Local), Flush::Local);
    assert_eq!(Flush::None.merge(Flush::All), Flush::All);
    assert_eq!(Flush::PageLocal(1).merge(Flush::PageAll(2)), Flush::All);
}

#[test]
fn clear_and_copy_page() {
    let mut w = built();
    w.m.mem[7][3] = 99;
    assert_eq!(w.ext(MMUEXT_COPY_PAGE, 8, 7), Ok(Flush::None));
    assert_eq!(w.m.mem[8][3], 99);
    assert_eq!(w.ext(MMUEXT_CLEAR_PAGE, 8, 0), Ok(Flush::None));
    assert_eq!(w.m.mem[8][3], 0);
    assert_eq!(w.ext(MMUEXT_CLEAR_PAGE, L1, 0), Err(EINVAL));
    assert_eq!(w.ext(MMUEXT_COPY_PAGE, L2, 7), Err(EINVAL));
    assert_eq!(w.ext(MMUEXT_COPY_PAGE, 8, 17), Err(EINVAL));
}

#[test]
fn relinquish_releases_every_frame() {
    let mut w = built();
    w.ext(MMUEXT_PIN_L1_TABLE, 7, 0).unwrap();
    w.ext(MMUEXT_NEW_USER_BASEPTR, L4, 0).unwrap();
    let mut vs = [w.v];
    let r = w.mmu.relinquish(&mut w.m, D1, vs.iter_mut());
    assert_eq!(
        r,
        Relinquished {
            still_referenced: 0
        }
    );
    assert_eq!(vs[0], VcpuMm::new());
    let mut rel = w.m.released.clone();
    rel.sort();
    assert_eq!(rel, (1..16).collect::<Vec<_>>());
    for mfn in 1..16 {
        assert_eq!(
            (w.f(mfn).owner(), w.f(mfn).refcount(), w.f(mfn).type_count()),
            (Owner::None, 0, 0)
        );
    }
    assert_eq!(w.f(17).refcount(), 1);
}

#[test]
fn foreign_pin_by_builder_and_release_allocation() {
    let mut w = world();
    let ctx = MmuCtx {
        caller: 0,
        pt_owner: D1,
        pg_owner: D1,
    };
    let mut v0 = VcpuMm::new();
    let op = MmuextOp {
        cmd: MMUEXT_PIN_L4_TABLE,
        _pad: 0,
        arg1: L4,
        arg2: 0,
    };
    assert_eq!(
        w.mmu.mmuext_op(&mut w.m, ctx, &mut v0, &op),
        Ok(Flush::None)
    );
    assert!(w.f(L4).pinned());
    // decrease_reservation of a pinned table unpins it implicitly (XSA-252).
    w.mmu.release_allocation(&mut w.m, L4, D1).unwrap();
    assert_eq!(w.f(L4).owner(), Owner::None);
    assert_eq!(w.f(L3).type_count(), 0);
    assert_eq!(w.mmu.release_allocation(&mut w.m, L4, D1), Err(EINVAL));
}

#[test]
fn check_descriptor_is_xens_rule() {
    const P: u64 = 1 << 47;
    const DPL3: u64 = 3 << 45;
    let code64 = 0x0020_9a00_0000_0000_u64; // present, S, type 0xa, L, DPL 0
    assert_eq!(
        check_descriptor(code64),
        Ok(code64 | DPL3),
        "DPL raised to 3"
    );
    let data = 0x00cf_9200_0000_ffff_u64;
    assert_eq!(check_descriptor(data), Ok(data | DPL3));
    let absent = 0x0000_0200_0000_0000_u64 | 0xffff;
    assert_eq!(
        check_descriptor(absent),
        Ok(absent),
        "not present: kept as is"
    );
    let type0 = P; // present system descriptor of type 0 (upper half of a 16-byte one)
    assert_eq!(check_descriptor(type0), Ok(type0 | DPL3));
    for ty in [0x2u64, 0x9, 0xb, 0xc, 0xe, 0xf] {
        // LDT, TSS, call/interrupt/trap gates: refused.
        assert_eq!(
            check_descriptor(P | (ty << 40)),
            Err(EINVAL),
            "type {ty:#x}"
        );
    }
}
