//! PV MMU policy: page-table validation and updates ("direct paging", Xen's `mm.c`).
//!
//! Guests own their page tables; the hypervisor validates every update. This module
//! implements `mmu_update`, `mmuext_op` and `update_va_mapping` over the frame table
//! ([`crate::frame`]) and a [`PhysMem`] trait through which page-table frames are read
//! and written (the hypervisor's direct map; a fake on the host).
//!
//! Rules enforced (SECURITY.md §1.1):
//! - **P1**: a frame of type L1..L4/SegDesc with a type count above 0 is never mapped
//!   writable: a writable L1 entry takes a `Writable` type reference on its target,
//!   which fails while the target has another type.
//! - **P2**: types change only at type count 0; if the frame may still be in a TLB
//!   (its count dropped to 0 since the last flush) [`PhysMem::flush_tlbs_all`] is called
//!   *after* the new type reference is taken and *before* the contents are validated.
//! - **P3**: entries are validated: ownership (or an explicit permission hook), a flag
//!   whitelist (no PSE/PAT/PCD/PWT/G above L1: XSA-148; no grant bit), no entry in the
//!   hypervisor's L4 slots 256..271, which validation fills with the hypervisor's own.
//! - **P4**: linear (recursive) page tables are forbidden: an Lk entry needs its target
//!   validated as L(k-1), so an entry pointing to a table of the same or a higher level
//!   fails (the type differs while its count is above 0). Levels strictly decrease
//!   along references, so (de)validation recursion is at most 4 deep and acyclic.
//! - **P6**: a successful L2..L4 update returns [`Flush::All`] (XSA-286).
//! - **P7**: checked counts; the last reference is dropped only by [`Mmu::put_page`].
//!
//! - Grant PTEs (`PTE_GNTTAB`) are written only by [`Mmu::install_grant_l1e`] and
//!   cleared by [`Mmu::remove_grant_l1e`]; they hold no references (the grant table
//!   does, [`crate::grant`]), guests cannot create or overwrite them.
//!
//! Not done: preemption of long (de)validations (P5: a single hypercall may validate
//! every frame of the domain, 512 entries each).
//!
//! Every operation takes `&mut self`: the mechanism holds the one MMU lock per host.
//! A failed operation leaves all reference counts as they were (property-tested).

use crate::frame::{DomId, FrameInfo, FrameTable, Owner, PageType, TypeGot, TypePut};
use xen_abi::errno::{Errno, EACCES, EBUSY, EINVAL, ENOSYS, EOPNOTSUPP, EPERM};
use xen_abi::mm::*;

/// `_PAGE_GUEST_KERNEL` (Xen's bit 52 of an L1 entry): a kernel-only mapping of a 64-bit
/// PV guest (which runs its kernel in ring 3, so every mapping carries `PTE_USER`).
/// Not in `xen-abi` (Xen-internal, guest-visible); defined here.
pub const PTE_GUEST_KERNEL: u64 = 1 << 52;
/// `_PAGE_GNTTAB` (bit 62): marks grant mappings; guests may not set it.
pub const PTE_GNTTAB: u64 = 1 << 62;
/// Bits 52..62, available to software.
pub const PTE_AVAIL_HIGH: u64 = 0x7ff << 52;
/// PAT bit of a 4 KiB L1 entry (same bit as PSE in L2/L3).
pub const PTE_PAT: u64 = PTE_PSE;

/// Flag bits every level allows (Xen's `~base_disallow_mask`).
const BASE_ALLOWED: u64 = PTE_PRESENT
    | PTE_RW
    | PTE_USER
    | PTE_ACCESSED
    | PTE_DIRTY
    | PTE_AVAIL_MASK
    | PTE_AVAIL_HIGH
    | PTE_NX;
const CACHE_ATTRS: u64 = PTE_PWT | PTE_PCD | PTE_PAT;
const FLAGS: u64 = !PTE_ADDR_MASK;

/// Maximum LDT entries (`MMUEXT_SET_LDT`).
pub const LDT_MAX_ENTS: u32 = 8192;

/// The number of hypervisor L4 slots (256..=271).
pub const XEN_L4_SLOTS: usize = HYPERVISOR_L4_LAST - HYPERVISOR_L4_FIRST + 1;

fn is_xen_l4_slot(idx: usize) -> bool {
    (HYPERVISOR_L4_FIRST..=HYPERVISOR_L4_LAST).contains(&idx)
}

/// Xen's `__addr_ok`: canonical and outside the hypervisor's range.
pub fn guest_addr_ok(va: u64) -> bool {
    !((1 << 47)..HYPERVISOR_VIRT_END).contains(&va)
}

fn pte_mfn(e: u64) -> u64 {
    (e & PTE_ADDR_MASK) >> PAGE_SHIFT
}

/// Physical memory and the mechanism's effects, as the policy needs them.
///
/// The hypervisor implements it over its direct map; tests use a fake. Callbacks are
/// made with the MMU lock held.
/// `read_pte`/`write_pte`/`zero_page`/`copy_page` are only called with frames covered by
/// the frame table and `idx < 512`.
pub trait PhysMem {
    /// Entry `idx` (0..512) of frame `mfn` (also used for 8-byte descriptors).
    fn read_pte(&self, mfn: u64, idx: usize) -> u64;
    /// Write entry `idx` of frame `mfn` (one aligned 8-byte store, never torn).
    fn write_pte(&mut self, mfn: u64, idx: usize, val: u64);
    /// Zero the frame (`MMUEXT_CLEAR_PAGE`).
    fn zero_page(&mut self, mfn: u64);
    /// Copy frame `src` to `dst` (`MMUEXT_COPY_PAGE`).
    fn copy_page(&mut self, dst: u64, src: u64);
    /// Set the machine-to-phys entry of `mfn` (`MMU_MACHPHYS_UPDATE`).
    fn set_m2p(&mut self, mfn: u64, pfn: u64);
    /// Flush every TLB and paging-structure cache on every CPU, synchronously, before
    /// returning (a frame is changing type and may be cached: P2, XSA-401).
    fn flush_tlbs_all(&mut self);
    /// The last reference to `mfn` was dropped: it is free; give it back to the
    /// allocator (after a flush if `FrameTable::tlb_stale(mfn)`).
    fn frame_released(&mut self, mfn: u64);
    /// `dom` may map the I/O (or out-of-table) frame `mfn` (Xen's `iomem_access_permitted`).
    fn iomem_permitted(&self, _dom: DomId, _mfn: u64) -> bool {
        false
    }
    /// `dom` may use cache attributes (PWT/PCD/PAT) in L1 entries and flush caches
    /// (Xen's `cache_flush_permitted`: domains with I/O memory).
    fn cache_attrs_permitted(&self, _dom: DomId) -> bool {
        false
    }
    /// `mapper` may map `owner`'s frame `mfn` without a grant (privileged foreign
    /// mapping). The hook for grants and foreign mappings; refused by default.
    fn foreign_map_permitted(&self, _mapper: DomId, _owner: DomId, _mfn: u64) -> bool {
        false
    }
}

/// A TLB (or cache) maintenance decision for the mechanism to perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    None,
    /// Flush this CPU's TLB (non-global entries; reload CR3 after a base-pointer change).
    Local,
    /// Flush the TLBs of every CPU the domain is dirty on.
    All,
    /// `invlpg va` on this CPU.
    PageLocal(u64),
    /// `invlpg va` on every CPU the domain is dirty on.
    PageAll(u64),
    /// Write back and invalidate caches (`wbinvd`) on all CPUs.
    Cache,
}

impl Flush {
    /// Combine two TLB decisions into one covering both (for batches). `Cache` is kept
    /// only if both are `Cache`, otherwise widened to `All` (which the mechanism performs
    /// with the cache flush if it merged one: callers do not merge `Cache`).
    pub fn merge(self, other: Flush) -> Flush {
        use Flush::*;
        match (self, other) {
            (None, x) | (x, None) => x,
            (a, b) if a == b => a,
            (All | PageAll(_) | Cache, _) | (_, All | PageAll(_) | Cache) => All,
            _ => Local,
        }
    }
}

/// A vCPU's MMU state: kernel and user base pointers (each holds a type reference of
/// type L4 and a general reference) and its LDT. Owned by the mechanism's vCPU, changed
/// only by [`Mmu`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuMm {
    kernel_l4: Option<u64>,
    user_l4: Option<u64>,
    ldt_base: u64,
    ldt_ents: u32,
}

impl VcpuMm {
    pub const fn new() -> Self {
        VcpuMm {
            kernel_l4: None,
            user_l4: None,
            ldt_base: 0,
            ldt_ents: 0,
        }
    }
    /// The kernel L4 (the CR3 of guest kernel mode).
    pub fn kernel_l4(&self) -> Option<u64> {
        self.kernel_l4
    }
    /// The user L4 (CR3 of guest user mode); `None` means "none" (Xen's 0).
    pub fn user_l4(&self) -> Option<u64> {
        self.user_l4
    }
    /// LDT linear base and entry count (0 entries: no LDT).
    pub fn ldt(&self) -> (u64, u32) {
        (self.ldt_base, self.ldt_ents)
    }
}

/// Who is asking, on whose tables, for whose frames (from `mmu_update`'s `foreigndom`).
/// The mechanism checks the caller's privilege for `pt_owner`/`pg_owner` ≠ `caller`
/// before calling (Xen's `get_pg_owner`, XSM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmuCtx {
    pub caller: DomId,
    /// Owner of the page tables being updated.
    pub pt_owner: DomId,
    /// Owner of the frames the new entries map.
    pub pg_owner: DomId,
}

impl MmuCtx {
    /// A domain acting on its own tables and frames.
    pub fn local(d: DomId) -> Self {
        MmuCtx {
            caller: d,
            pt_owner: d,
            pg_owner: d,
        }
    }
}

/// A decoded `mmu_update` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmuRequest {
    /// Write `val` into entry `idx` of frame `table`.
    PtUpdate {
        table: u64,
        idx: usize,
        val: u64,
        preserve_ad: bool,
    },
    /// Set M2P[mfn] = pfn.
    MachPhys { mfn: u64, pfn: u64 },
}

/// Decode one `struct mmu_update` (the request kind is `ptr & 7`, so the PTE address is
/// always 8-byte aligned).
pub fn decode_mmu_update(req: &MmuUpdate) -> Result<MmuRequest, Errno> {
    let cmd = req.ptr & 7;
    let addr = req.ptr & !7;
    let table = addr >> PAGE_SHIFT;
    match cmd {
        MMU_NORMAL_PT_UPDATE | MMU_PT_UPDATE_PRESERVE_AD | MMU_PT_UPDATE_NO_TRANSLATE => {
            Ok(MmuRequest::PtUpdate {
                table,
                idx: ((addr & (PAGE_SIZE - 1)) >> 3) as usize,
                val: req.val,
                preserve_ad: cmd == MMU_PT_UPDATE_PRESERVE_AD,
            })
        }
        MMU_MACHPHYS_UPDATE => Ok(MmuRequest::MachPhys {
            mfn: table,
            pfn: req.val,
        }),
        _ => Err(ENOSYS),
    }
}

/// A decoded `struct mmuext_op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmuextCmd {
    Pin {
        level: u8,
        mfn: u64,
    },
    Unpin {
        mfn: u64,
    },
    NewBaseptr {
        mfn: u64,
    },
    /// `mfn` 0: no user page table.
    NewUserBaseptr {
        mfn: u64,
    },
    TlbFlushLocal,
    InvlpgLocal {
        va: u64,
    },
    /// The vCPU mask (a guest pointer) is not read: the flush is widened to all CPUs.
    TlbFlushMulti,
    InvlpgMulti {
        va: u64,
    },
    TlbFlushAll,
    InvlpgAll {
        va: u64,
    },
    FlushCache,
    SetLdt {
        base: u64,
        ents: u32,
    },
    ClearPage {
        mfn: u64,
    },
    CopyPage {
        dst: u64,
        src: u64,
    },
}

/// Decode one `struct mmuext_op`: unknown commands are `ENOSYS`, superpage marking
/// `EOPNOTSUPP`, bad `SET_LDT` arguments `EINVAL` (as Xen).
pub fn decode_mmuext(op: &MmuextOp) -> Result<MmuextCmd, Errno> {
    use MmuextCmd::*;
    Ok(match op.cmd {
        MMUEXT_PIN_L1_TABLE => Pin {
            level: 1,
            mfn: op.arg1,
        },
        MMUEXT_PIN_L2_TABLE => Pin {
            level: 2,
            mfn: op.arg1,
        },
        MMUEXT_PIN_L3_TABLE => Pin {
            level: 3,
            mfn: op.arg1,
        },
        MMUEXT_PIN_L4_TABLE => Pin {
            level: 4,
            mfn: op.arg1,
        },
        MMUEXT_UNPIN_TABLE => Unpin { mfn: op.arg1 },
        MMUEXT_NEW_BASEPTR => NewBaseptr { mfn: op.arg1 },
        MMUEXT_NEW_USER_BASEPTR => NewUserBaseptr { mfn: op.arg1 },
        MMUEXT_TLB_FLUSH_LOCAL => TlbFlushLocal,
        MMUEXT_INVLPG_LOCAL => InvlpgLocal { va: op.arg1 },
        MMUEXT_TLB_FLUSH_MULTI => TlbFlushMulti,
        MMUEXT_INVLPG_MULTI => InvlpgMulti { va: op.arg1 },
        MMUEXT_TLB_FLUSH_ALL => TlbFlushAll,
        MMUEXT_INVLPG_ALL => InvlpgAll { va: op.arg1 },
        MMUEXT_FLUSH_CACHE | MMUEXT_FLUSH_CACHE_GLOBAL => FlushCache,
        MMUEXT_SET_LDT => {
            // `nr_ents` is the first 32 bits of the `arg2` union.
            let ents = op.arg2 as u32;
            let base = if ents == 0 { 0 } else { op.arg1 };
            if ents > LDT_MAX_ENTS
                || (ents != 0 && (base & (PAGE_SIZE - 1) != 0 || !guest_addr_ok(base)))
            {
                return Err(EINVAL);
            }
            SetLdt { base, ents }
        }
        MMUEXT_CLEAR_PAGE => ClearPage { mfn: op.arg1 },
        MMUEXT_COPY_PAGE => CopyPage {
            dst: op.arg1,
            src: op.arg2,
        },
        MMUEXT_MARK_SUPER | MMUEXT_UNMARK_SUPER => return Err(EOPNOTSUPP),
        _ => return Err(ENOSYS),
    })
}

/// Entry `idx` of the validated level-`level` table `table`.
#[derive(Clone, Copy, Debug)]
struct Slot {
    table: u64,
    level: u8,
    idx: usize,
}

/// Result of [`Mmu::relinquish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relinquished {
    /// Frames of the domain still referenced from outside it (foreign mappings,
    /// mechanism-held references): the domain stays a zombie until they go.
    pub still_referenced: u64,
}

/// The PV MMU: the frame table and the hypervisor's L4 entries.
#[derive(Debug)]
pub struct Mmu<S> {
    frames: FrameTable<S>,
    /// Entries the hypervisor puts in L4 slots 256..=271 of every validated L4.
    xen_l4: [u64; XEN_L4_SLOTS],
}

impl<S: AsRef<[FrameInfo]> + AsMut<[FrameInfo]>> Mmu<S> {
    /// An MMU over the frame table storage `frames` (all [`FrameInfo::FREE`]), with the
    /// hypervisor's L4 entries for slots 256..=271.
    pub fn new(frames: S, xen_l4: [u64; XEN_L4_SLOTS]) -> Self {
        Mmu {
            frames: FrameTable::new(frames),
            xen_l4,
        }
    }

    pub fn frames(&self) -> &FrameTable<S> {
        &self.frames
    }

    /// The hypervisor's L4 entries (slots 256..=271).
    pub fn xen_l4(&self) -> &[u64; XEN_L4_SLOTS] {
        &self.xen_l4
    }

    /// Give a free frame to `owner` (domain frames get the allocation reference).
    pub fn assign(&mut self, mfn: u64, owner: Owner) -> Result<(), Errno> {
        self.frames.assign(mfn, owner)
    }

    // ---- references: the one get/put pair and the one release path -------------------

    /// Take a general reference on `mfn`, which must be `owner`'s.
    pub fn get_page(&mut self, mfn: u64, owner: DomId) -> Result<(), Errno> {
        self.frames.get_page(mfn, owner)
    }

    /// Drop a general reference; the last one releases the frame (the one release path).
    pub fn put_page<M: PhysMem>(&mut self, mem: &mut M, mfn: u64) {
        if self.frames.put_page(mfn) {
            mem.frame_released(mfn);
        }
    }

    /// Take a type reference (the caller holds a general reference). A first reference
    /// of a page-table or descriptor type validates the contents, flushing stale TLBs
    /// first if the type changes (P2).
    pub fn get_page_type<M: PhysMem>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        ty: PageType,
    ) -> Result<(), Errno> {
        match self.frames.get_page_type(mfn, ty)? {
            TypeGot::Ready => Ok(()),
            TypeGot::Flush => {
                self.flush_all(mem);
                Ok(())
            }
            TypeGot::Validate { flush } => {
                if flush {
                    self.flush_all(mem);
                }
                let r = self.validate(mem, mfn, ty);
                self.frames.validation_done(mfn, r.is_ok());
                r
            }
        }
    }

    /// Drop a type reference; the last one of a page table drops the references its
    /// entries hold (recursively, at most 4 levels deep).
    pub fn put_page_type<M: PhysMem>(&mut self, mem: &mut M, mfn: u64) {
        if let TypePut::Devalidate(ty) = self.frames.put_page_type(mfn) {
            if let Some(level) = ty.pt_level() {
                for idx in 0..ENTRIES_PER_TABLE {
                    if level == 4 && is_xen_l4_slot(idx) {
                        continue;
                    }
                    let e = mem.read_pte(mfn, idx);
                    self.put_entry_refs(mem, level, e);
                }
            }
        }
    }

    /// `get_page` then `get_page_type`; nothing is held on failure.
    pub fn get_page_and_type<M: PhysMem>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        owner: DomId,
        ty: PageType,
    ) -> Result<(), Errno> {
        self.get_page(mfn, owner)?;
        if let Err(e) = self.get_page_type(mem, mfn, ty) {
            self.put_page(mem, mfn);
            return Err(e);
        }
        Ok(())
    }

    pub fn put_page_and_type<M: PhysMem>(&mut self, mem: &mut M, mfn: u64) {
        self.put_page_type(mem, mfn);
        self.put_page(mem, mfn);
    }

    /// Drop the allocation reference of `owner`'s frame (decrease_reservation), with
    /// the implicit unpin Xen does (XSA-252). `EINVAL` if not `owner`'s or not allocated.
    pub fn release_allocation<M: PhysMem>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        owner: DomId,
    ) -> Result<(), Errno> {
        if !self
            .frames
            .get(mfn)
            .is_some_and(|f| f.owned_by(owner) && f.allocated())
        {
            return Err(EINVAL);
        }
        if self.frames.clear_pinned(mfn).is_ok() {
            self.put_page_and_type(mem, mfn);
        }
        if self.frames.take_allocation(mfn) {
            self.put_page(mem, mfn);
        }
        Ok(())
    }

    fn flush_all<M: PhysMem>(&mut self, mem: &mut M) {
        mem.flush_tlbs_all();
        self.frames.tlb_flushed();
    }

    // ---- validation ------------------------------------------------------------------

    fn validate<M: PhysMem>(&mut self, mem: &mut M, mfn: u64, ty: PageType) -> Result<(), Errno> {
        let Some(Owner::Domain(d)) = self.frames.get(mfn).map(|f| f.owner()) else {
            return Err(EINVAL);
        };
        match ty.pt_level() {
            Some(level) => self.validate_table(mem, mfn, level, d),
            None if ty == PageType::SegDesc => validate_segdesc(mem, mfn),
            None => Ok(()),
        }
    }

    /// Xen's `promote_lN_table`: take the references of every present entry; on failure
    /// drop those taken. L4 slots 256..=271 are filled with the hypervisor's entries.
    fn validate_table<M: PhysMem>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        level: u8,
        d: DomId,
    ) -> Result<(), Errno> {
        for idx in 0..ENTRIES_PER_TABLE {
            if level == 4 && is_xen_l4_slot(idx) {
                continue;
            }
            let e = mem.read_pte(mfn, idx);
            if e & PTE_PRESENT == 0 {
                continue;
            }
            match self.get_entry_refs(mem, level, e, d, d) {
                Ok(adjusted) => {
                    if adjusted != e {
                        mem.write_pte(mfn, idx, adjusted);
                    }
                }
                Err(err) => {
                    for j in (0..idx).rev() {
                        if level == 4 && is_xen_l4_slot(j) {
                            continue;
                        }
                        let e = mem.read_pte(mfn, j);
                        self.put_entry_refs(mem, level, e);
                    }
                    return Err(err);
                }
            }
        }
        if level == 4 {
            for (i, &x) in self.xen_l4.iter().enumerate() {
                mem.write_pte(mfn, HYPERVISOR_L4_FIRST + i, x);
            }
        }
        Ok(())
    }

    /// Check a present entry `e` of a level-`level` table owned by `pt_dom` and take the
    /// references it needs (Xen's `get_page_from_lNe`). Returns the entry as it must be
    /// stored (Xen's `adjust_guest_lNe`).
    fn get_entry_refs<M: PhysMem>(
        &mut self,
        mem: &mut M,
        level: u8,
        e: u64,
        pt_dom: DomId,
        pg_dom: DomId,
    ) -> Result<u64, Errno> {
        let disallowed = e & FLAGS & !allowed_flags(level, mem.cache_attrs_permitted(pt_dom));
        if disallowed != 0 {
            return Err(EINVAL);
        }
        let target = pte_mfn(e);
        if level == 1 {
            self.get_l1_target(mem, e, target, pt_dom, pg_dom)?;
            return Ok(adjust_l1(e));
        }
        if pg_dom != pt_dom {
            return Err(EINVAL);
        }
        let ty = PageType::from_level(level - 1).ok_or(EINVAL)?;
        self.get_page_and_type(mem, target, pt_dom, ty)?;
        Ok(match level {
            4 => e | PTE_ACCESSED | PTE_USER,
            _ => e | PTE_USER,
        })
    }

    fn get_l1_target<M: PhysMem>(
        &mut self,
        mem: &mut M,
        e: u64,
        target: u64,
        pt_dom: DomId,
        pg_dom: DomId,
    ) -> Result<(), Errno> {
        let owner = match self.frames.get(target).map(|f| f.owner()) {
            // MMIO: no reference counted; needs I/O-memory permission.
            None | Some(Owner::Io) => {
                if mem.iomem_permitted(pg_dom, target) && mem.iomem_permitted(pt_dom, target) {
                    return Ok(());
                }
                return Err(EPERM);
            }
            Some(Owner::Domain(o)) if o == pg_dom => o,
            Some(Owner::Domain(o)) if mem.foreign_map_permitted(pt_dom, o, target) => o,
            Some(_) => return Err(EBUSY),
        };
        self.frames.get_page(target, owner).map_err(|_| EBUSY)?;
        if e & PTE_RW != 0 && self.get_page_type(mem, target, PageType::Writable).is_err() {
            self.put_page(mem, target);
            return Err(EBUSY);
        }
        Ok(())
    }

    /// Drop the references a present entry of a validated level-`level` table holds
    /// (Xen's `put_page_from_lNe`).
    fn put_entry_refs<M: PhysMem>(&mut self, mem: &mut M, level: u8, e: u64) {
        if e & PTE_PRESENT == 0 {
            return;
        }
        let target = pte_mfn(e);
        if level == 1 {
            if !matches!(
                self.frames.get(target).map(|f| f.owner()),
                Some(Owner::Domain(_))
            ) {
                return; // MMIO: no reference was taken
            }
            if e & PTE_GNTTAB != 0 {
                return; // a grant mapping: its references belong to the grant table
            }
            if e & PTE_RW != 0 {
                self.put_page_type(mem, target);
            }
            self.put_page(mem, target);
        } else {
            self.put_page_and_type(mem, target);
        }
    }

    // ---- entry updates ---------------------------------------------------------------

    /// Xen's `mod_lN_entry`: validate the new entry and take its references, write it,
    /// then drop the old entry's references.
    fn mod_entry<M: PhysMem>(
        &mut self,
        mem: &mut M,
        ctx: MmuCtx,
        slot: Slot,
        new: u64,
        preserve_ad: bool,
    ) -> Result<(), Errno> {
        let Slot { table, level, idx } = slot;
        if idx >= ENTRIES_PER_TABLE || (level == 4 && is_xen_l4_slot(idx)) {
            return Err(EINVAL);
        }
        if level >= 2 && ctx.pg_owner != ctx.pt_owner {
            return Err(EINVAL);
        }
        let old = mem.read_pte(table, idx);
        if level == 1 && old & (PTE_PRESENT | PTE_GNTTAB) == PTE_PRESENT | PTE_GNTTAB {
            // A grant mapping is destroyed only through the grant table (Xen injects #GP
            // and unmaps implicitly; refusing keeps the maptrack exact).
            return Err(EINVAL);
        }
        let mut new = new;
        if new & PTE_PRESENT != 0 {
            new = self.get_entry_refs(mem, level, new, ctx.pt_owner, ctx.pg_owner)?;
        }
        if preserve_ad {
            new |= old & (PTE_ACCESSED | PTE_DIRTY);
        }
        mem.write_pte(table, idx, new);
        self.put_entry_refs(mem, level, old);
        Ok(())
    }

    // ---- hypercalls ------------------------------------------------------------------

    /// One `mmu_update` request. The mechanism loops over the guest's array (copying
    /// each request in), stops at the first error, and performs the merged [`Flush`]
    /// before returning to the guest (Xen flushes after L2..L4 updates: XSA-286).
    pub fn mmu_update<M: PhysMem>(
        &mut self,
        mem: &mut M,
        ctx: MmuCtx,
        req: &MmuUpdate,
    ) -> Result<Flush, Errno> {
        match decode_mmu_update(req)? {
            MmuRequest::PtUpdate {
                table,
                idx,
                val,
                preserve_ad,
            } => self.perform_pt_update(mem, ctx, table, idx, val, preserve_ad),
            MmuRequest::MachPhys { mfn, pfn } => {
                if ctx.caller != ctx.pt_owner {
                    return Err(EPERM);
                }
                if !self
                    .frames
                    .get(mfn)
                    .is_some_and(|f| f.owned_by(ctx.pg_owner))
                {
                    return Err(EINVAL);
                }
                mem.set_m2p(mfn, pfn);
                Ok(Flush::None)
            }
        }
    }

    fn perform_pt_update<M: PhysMem>(
        &mut self,
        mem: &mut M,
        ctx: MmuCtx,
        table: u64,
        idx: usize,
        val: u64,
        preserve_ad: bool,
    ) -> Result<Flush, Errno> {
        // Hold a reference on the table frame for the duration (Xen's get_page_from_gfn).
        self.get_page(table, ctx.pt_owner)?;
        let r = match self.frames.get(table).copied() {
            Some(f) if f.is_live_table().is_some() => {
                let level = f.is_live_table().unwrap_or(1);
                self.mod_entry(mem, ctx, Slot { table, level, idx }, val, preserve_ad)
                    .map(|()| if level >= 2 { Flush::All } else { Flush::None })
            }
            // A validated descriptor page (or a table being validated): refused.
            Some(f) if f.type_count() > 0 && f.page_type() != PageType::Writable => Err(EINVAL),
            // Ordinary memory: Xen writes it as a plain store under a writable type ref.
            Some(_) => match self.get_page_type(mem, table, PageType::Writable) {
                Ok(()) => {
                    mem.write_pte(table, idx, val);
                    self.put_page_type(mem, table);
                    Ok(Flush::None)
                }
                Err(_) => Err(EINVAL),
            },
            None => Err(EINVAL),
        };
        self.put_page(mem, table);
        r
    }

    /// One `mmuext_op` for `ctx.caller`'s vCPU `vcpu`. Pin, unpin, clear and copy act on
    /// `ctx.pg_owner`'s frames (the domain builder pins a new domain's tables); the other
    /// commands need `pg_owner == caller` (`EPERM` otherwise). Base-pointer and LDT
    /// changes update `vcpu`; the mechanism loads them (returns `Flush::Local` when the
    /// current CR3 or LDT must be reloaded).
    pub fn mmuext_op<M: PhysMem>(
        &mut self,
        mem: &mut M,
        ctx: MmuCtx,
        vcpu: &mut VcpuMm,
        op: &MmuextOp,
    ) -> Result<Flush, Errno> {
        let cmd = decode_mmuext(op)?;
        self.perform_mmuext(mem, ctx, vcpu, cmd)
    }

    fn perform_mmuext<M: PhysMem>(
        &mut self,
        mem: &mut M,
        ctx: MmuCtx,
        vcpu: &mut VcpuMm,
        cmd: MmuextCmd,
    ) -> Result<Flush, Errno> {
        use MmuextCmd::*;
        let local = ctx.caller == ctx.pg_owner;
        let need_local = || if local { Ok(()) } else { Err(EPERM) };
        match cmd {
            Pin { level, mfn } => self
                .pin(mem, ctx.pg_owner, level, mfn)
                .map(|()| Flush::None),
            Unpin { mfn } => self.unpin(mem, ctx.pg_owner, mfn).map(|()| Flush::None),
            NewBaseptr { mfn } => {
                need_local()?;
                self.new_baseptr(mem, ctx.caller, vcpu, mfn)
            }
            NewUserBaseptr { mfn } => {
                need_local()?;
                self.new_user_baseptr(mem, ctx.caller, vcpu, mfn)
            }
            TlbFlushLocal => need_local().map(|()| Flush::Local),
            TlbFlushMulti | TlbFlushAll => need_local().map(|()| Flush::All),
            InvlpgLocal { va } => need_local().map(|()| {
                if guest_addr_ok(va) {
                    Flush::PageLocal(va)
                } else {
                    Flush::None
                }
            }),
            InvlpgMulti { va } | InvlpgAll { va } => need_local().map(|()| {
                if guest_addr_ok(va) {
                    Flush::PageAll(va)
                } else {
                    Flush::None
                }
            }),
            FlushCache => {
                need_local()?;
                if mem.cache_attrs_permitted(ctx.caller) {
                    Ok(Flush::Cache)
                } else {
                    Err(EACCES)
                }
            }
            SetLdt { base, ents } => {
                need_local()?;
                if vcpu.ldt_base == base && vcpu.ldt_ents == ents {
                    return Ok(Flush::None);
                }
                vcpu.ldt_base = base;
                vcpu.ldt_ents = ents;
                Ok(Flush::Local)
            }
            ClearPage { mfn } => {
                self.get_page_and_type(mem, mfn, ctx.pg_owner, PageType::Writable)
                    .map_err(|_| EINVAL)?;
                mem.zero_page(mfn);
                self.put_page_and_type(mem, mfn);
                Ok(Flush::None)
            }
            CopyPage { dst, src } => {
                self.get_page(src, ctx.pg_owner)?;
                if self
                    .get_page_and_type(mem, dst, ctx.pg_owner, PageType::Writable)
                    .is_err()
                {
                    self.put_page(mem, src);
                    return Err(EINVAL);
                }
                mem.copy_page(dst, src);
                self.put_page_and_type(mem, dst);
                self.put_page(mem, src);
                Ok(Flush::None)
            }
        }
    }

    /// `MMUEXT_PIN_Lk_TABLE`: validate as Lk, keep a type and a general reference, set
    /// the pinned flag (`EINVAL` if already pinned).
    fn pin<M: PhysMem>(
        &mut self,
        mem: &mut M,
        owner: DomId,
        level: u8,
        mfn: u64,
    ) -> Result<(), Errno> {
        let ty = PageType::from_level(level).ok_or(EINVAL)?;
        self.get_page_and_type(mem, mfn, owner, ty)?;
        if let Err(e) = self.frames.set_pinned(mfn) {
            self.put_page_and_type(mem, mfn);
            return Err(e);
        }
        Ok(())
    }

    fn unpin<M: PhysMem>(&mut self, mem: &mut M, owner: DomId, mfn: u64) -> Result<(), Errno> {
        self.get_page(mfn, owner)?;
        if let Err(e) = self.frames.clear_pinned(mfn) {
            self.put_page(mem, mfn);
            return Err(e);
        }
        self.put_page_and_type(mem, mfn);
        self.put_page(mem, mfn);
        Ok(())
    }

    /// `MMUEXT_NEW_BASEPTR` (Xen's `new_guest_cr3`): take an L4 type reference on the
    /// new table, then drop the old one's.
    fn new_baseptr<M: PhysMem>(
        &mut self,
        mem: &mut M,
        d: DomId,
        vcpu: &mut VcpuMm,
        mfn: u64,
    ) -> Result<Flush, Errno> {
        if vcpu.kernel_l4 == Some(mfn) {
            return Ok(Flush::Local);
        }
        self.get_page_and_type(mem, mfn, d, PageType::L4)?;
        if let Some(old) = vcpu.kernel_l4.replace(mfn) {
            self.put_page_and_type(mem, old);
        }
        Ok(Flush::Local)
    }

    fn new_user_baseptr<M: PhysMem>(
        &mut self,
        mem: &mut M,
        d: DomId,
        vcpu: &mut VcpuMm,
        mfn: u64,
    ) -> Result<Flush, Errno> {
        let new = if mfn == 0 { None } else { Some(mfn) };
        if vcpu.user_l4 == new {
            return Ok(Flush::None);
        }
        if let Some(m) = new {
            self.get_page_and_type(mem, m, d, PageType::L4)?;
        }
        if let Some(old) = core::mem::replace(&mut vcpu.user_l4, new) {
            self.put_page_and_type(mem, old);
        }
        Ok(Flush::None)
    }

    /// The L1 table and index mapping `va` in the vCPU's kernel address space (Xen's
    /// `map_guest_l1e`): `EINVAL` if `va` is not a guest address or a level is absent or
    /// a superpage.
    pub fn find_l1e<M: PhysMem>(
        &self,
        mem: &M,
        vcpu: &VcpuMm,
        va: u64,
    ) -> Result<(u64, usize), Errno> {
        if !guest_addr_ok(va) {
            return Err(EINVAL);
        }
        let mut table = vcpu.kernel_l4.ok_or(EINVAL)?;
        for level in [4u32, 3, 2] {
            let idx = ((va >> (PAGE_SHIFT + 9 * (level - 1))) & 511) as usize;
            let e = mem.read_pte(table, idx);
            if e & (PTE_PRESENT | PTE_PSE) != PTE_PRESENT {
                return Err(EINVAL);
            }
            table = pte_mfn(e);
        }
        Ok((table, ((va >> PAGE_SHIFT) & 511) as usize))
    }

    /// `update_va_mapping(va, val, flags)` from `d`'s vCPU `vcpu`: the same checks as a
    /// `MMU_NORMAL_PT_UPDATE` of the L1 entry mapping `va`; returns the UVMF flush. A
    /// vCPU-mask pointer in `flags` is widened to all CPUs.
    pub fn update_va_mapping<M: PhysMem>(
        &mut self,
        mem: &mut M,
        d: DomId,
        vcpu: &VcpuMm,
        va: u64,
        val: u64,
        flags: u64,
    ) -> Result<Flush, Errno> {
        let (l1, idx) = self.find_l1e(mem, vcpu, va)?;
        if !self
            .frames
            .get(l1)
            .is_some_and(|f| f.owned_by(d) && f.is_live_table() == Some(1))
        {
            return Err(EINVAL);
        }
        self.get_page(l1, d)?;
        let r = self.mod_entry(
            mem,
            MmuCtx::local(d),
            Slot {
                table: l1,
                level: 1,
                idx,
            },
            val,
            false,
        );
        self.put_page(mem, l1);
        r?;
        let scope = flags & !UVMF_FLUSHTYPE_MASK;
        Ok(match (flags & UVMF_FLUSHTYPE_MASK, scope) {
            (UVMF_TLB_FLUSH, UVMF_LOCAL) => Flush::Local,
            (UVMF_TLB_FLUSH, _) => Flush::All,
            (UVMF_INVLPG, UVMF_LOCAL) => Flush::PageLocal(va),
            (UVMF_INVLPG, _) => Flush::PageAll(va),
            _ => Flush::None,
        })
    }

    /// Domain builder: validate the boot page tables the builder wrote directly under
    /// the L4 `l4`, pin it and make it the vCPU's kernel base pointer (as Xen does for
    /// dom0). Fails, changing nothing, if the tables are inconsistent (a page table
    /// mapped writable, a frame of another domain, bad flags, a linear entry...).
    pub fn build_pin_l4<M: PhysMem>(
        &mut self,
        mem: &mut M,
        d: DomId,
        vcpu: &mut VcpuMm,
        l4: u64,
    ) -> Result<(), Errno> {
        self.pin(mem, d, 4, l4)?;
        if let Err(e) = self.new_baseptr(mem, d, vcpu, l4) {
            let _ = self.unpin(mem, d, l4);
            return Err(e);
        }
        Ok(())
    }

    /// Domain teardown (Xen's `domain_relinquish_resources`): drop every base pointer
    /// of `vcpus`, every pin and the allocation references of `d`'s frames. Each frame
    /// of `d` then ends at type count 0 and refcount 0 and is released through
    /// [`PhysMem::frame_released`], except frames still referenced from outside (counted
    /// in the result; they are released when those references go). The mechanism must
    /// drop its own references (LDT/GDT, grants) first.
    ///
    /// Not preemptible yet (P5): O(frames + 512 × tables).
    pub fn relinquish<'v, M: PhysMem>(
        &mut self,
        mem: &mut M,
        d: DomId,
        vcpus: impl IntoIterator<Item = &'v mut VcpuMm>,
    ) -> Relinquished {
        for v in vcpus {
            for l4 in [v.kernel_l4.take(), v.user_l4.take()].into_iter().flatten() {
                self.put_page_and_type(mem, l4);
            }
            v.ldt_base = 0;
            v.ldt_ents = 0;
        }
        for mfn in 0..self.frames.len() {
            if self
                .frames
                .get(mfn)
                .is_some_and(|f| f.owned_by(d) && f.pinned())
                && self.frames.clear_pinned(mfn).is_ok()
            {
                self.put_page_and_type(mem, mfn);
            }
        }
        for mfn in 0..self.frames.len() {
            if self.frames.get(mfn).is_some_and(|f| f.owned_by(d))
                && self.frames.take_allocation(mfn)
            {
                self.put_page(mem, mfn);
            }
        }
        let still_referenced = self.frames.iter().filter(|(_, f)| f.owned_by(d)).count() as u64;
        Relinquished { still_referenced }
    }
}

/// What [`Mmu::remove_grant_l1e`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantPteGone {
    /// The grant PTE was in place and is now cleared.
    Cleared,
    /// The slot is no longer in a live L1 of the mapper (the table was devalidated or
    /// freed): the PTE is dead and nothing was written.
    TableGone,
}

impl<S: AsRef<[FrameInfo]> + AsMut<[FrameInfo]>> Mmu<S> {
    // ---- grant mappings (the grant table's hooks) -------------------------------------
    //
    // A grant PTE carries `PTE_GNTTAB` and holds **no** references of its own: the grant
    // table takes them (a general reference, and a `Writable` type reference when RW) per
    // mapping and drops them after the PTE is gone. Therefore: guests cannot write the
    // bit (`allowed_flags`), validation refuses it, `mod_entry` refuses to overwrite a
    // present grant PTE, and `put_entry_refs` skips it when an L1 is devalidated (the
    // mapping is then dead; the grant table drops its references at unmap or teardown).

    /// `d`'s live (validated, type count > 0) L1 `l1`, as a grant-PTE location.
    fn grant_l1_ok(&self, d: DomId, l1: u64, idx: usize) -> bool {
        idx < ENTRIES_PER_TABLE
            && self
                .frames
                .get(l1)
                .is_some_and(|f| f.owned_by(d) && f.is_live_table() == Some(1))
    }

    /// Xen's `create_grant_pv_mapping` minus the references (the caller holds them):
    /// write a grant PTE for `mfn` into entry `idx` of `d`'s live L1 `l1`. `flags` may hold
    /// `PTE_RW`, `PTE_USER` (application map) and `PTE_AVAIL_MASK`; the entry gets
    /// `PRESENT|ACCESSED|DIRTY|NX|GNTTAB` and Xen's `adjust_guest_l1e`. The replaced entry's
    /// references are dropped (a present grant PTE is never replaced: `EINVAL`).
    /// Returns the PTE written and whether the old entry was present (the mechanism must
    /// then invalidate the old translation).
    pub fn install_grant_l1e<M: PhysMem>(
        &mut self,
        mem: &mut M,
        d: DomId,
        l1: u64,
        idx: usize,
        mfn: u64,
        flags: u64,
    ) -> Result<(u64, bool), Errno> {
        if !self.grant_l1_ok(d, l1, idx)
            || flags & !(PTE_RW | PTE_USER | PTE_AVAIL_MASK) != 0
            || mfn > (PTE_ADDR_MASK >> PAGE_SHIFT)
        {
            return Err(EINVAL);
        }
        let old = mem.read_pte(l1, idx);
        if old & (PTE_PRESENT | PTE_GNTTAB) == PTE_PRESENT | PTE_GNTTAB {
            return Err(EINVAL);
        }
        let pte = adjust_l1(
            (mfn << PAGE_SHIFT)
                | flags
                | PTE_PRESENT
                | PTE_ACCESSED
                | PTE_DIRTY
                | PTE_NX
                | PTE_GNTTAB,
        );
        mem.write_pte(l1, idx, pte);
        self.put_entry_refs(mem, 1, old);
        Ok((pte, old & PTE_PRESENT != 0))
    }

    /// Xen's `replace_grant_pv_mapping` (destroy): clear entry `idx` of `d`'s L1 `l1` if
    /// it still holds exactly `expected` (ignoring Accessed/Dirty), as created by
    /// [`Self::install_grant_l1e`] (G2). `TableGone` if `l1` is no longer a live L1 of `d`
    /// (nothing written); `EINVAL` if the entry differs.
    pub fn remove_grant_l1e<M: PhysMem>(
        &mut self,
        mem: &mut M,
        d: DomId,
        l1: u64,
        idx: usize,
        expected: u64,
    ) -> Result<GrantPteGone, Errno> {
        if !self.grant_l1_ok(d, l1, idx) {
            return Ok(GrantPteGone::TableGone);
        }
        let ad = PTE_ACCESSED | PTE_DIRTY;
        if expected & PTE_GNTTAB == 0 || mem.read_pte(l1, idx) & !ad != expected & !ad {
            return Err(EINVAL);
        }
        mem.write_pte(l1, idx, 0);
        Ok(GrantPteGone::Cleared)
    }
}

/// Flags allowed in a present entry of `level` (Xen's `lN_disallow_mask`, inverted).
fn allowed_flags(level: u8, cache_ok: bool) -> u64 {
    match level {
        1 => (BASE_ALLOWED | PTE_GLOBAL | if cache_ok { CACHE_ATTRS } else { 0 }) & !PTE_GNTTAB,
        _ => BASE_ALLOWED,
    }
}

/// Xen's `adjust_guest_l1e` for 64-bit PV: the guest kernel runs in ring 3, so a
/// kernel mapping gets `USER | GUEST_KERNEL`; a user mapping gets `USER | GLOBAL` (it
/// survives the kernel/user CR3 switch; kernel mappings do not).
fn adjust_l1(e: u64) -> u64 {
    let mut e = e;
    if e & PTE_USER == 0 {
        e |= PTE_GUEST_KERNEL | PTE_USER;
    }
    if e & PTE_GUEST_KERNEL == 0 {
        e |= PTE_GLOBAL | PTE_USER;
    }
    e
}

/// Xen's `check_descriptor` for 64-bit guests, the one rule for GDT/LDT frames and
/// `update_descriptor`: a not-present descriptor is harmless as is; a present one gets
/// DPL 3 (the guest kernel's ring); code/data segments and type-0 entries (the upper
/// half of a 16-byte descriptor, harmless on its own) are accepted; other system
/// descriptors are refused, including call gates, which Xen accepts with target checks
/// (not supported here). Returns the descriptor to store.
pub fn check_descriptor(d: u64) -> Result<u64, Errno> {
    const P: u64 = 1 << 47;
    const S: u64 = 1 << 44;
    const DPL: u64 = 3 << 45;
    const TYPE: u64 = 0xf << 40;
    if d & P == 0 {
        return Ok(d);
    }
    if d & S == 0 && d & TYPE != 0 {
        return Err(EINVAL);
    }
    Ok(d | DPL)
}

/// Validate a GDT/LDT frame: every entry by [`check_descriptor`], fixed up in place.
/// Nothing is written unless every entry passes.
fn validate_segdesc<M: PhysMem>(mem: &mut M, mfn: u64) -> Result<(), Errno> {
    for idx in 0..ENTRIES_PER_TABLE {
        check_descriptor(mem.read_pte(mfn, idx))?;
    }
    for idx in 0..ENTRIES_PER_TABLE {
        let d = mem.read_pte(mfn, idx);
        let fixed = check_descriptor(d)?;
        if fixed != d {
            mem.write_pte(mfn, idx, fixed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
