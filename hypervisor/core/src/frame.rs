//! The frame table: owner, type and reference counts of every machine frame.
//!
//! This is Xen's `struct page_info` (`count_info` + `type_info`) as a plain state
//! machine. Each frame has:
//! - an **owner** ([`Owner`]): free, a domain, the hypervisor, or I/O (MMIO, never RAM
//!   a domain can be given);
//! - a general **refcount**: one for the allocation itself (`allocated`, Xen's
//!   `PGC_allocated`), one per page-table entry mapping or referencing it, one per pin,
//!   one per vCPU base pointer, one per mechanism-held use (LDT/GDT, later grants);
//! - a **type** ([`PageType`]) with a **type count**, a `validated` flag and a `pinned`
//!   flag. The type can change only while the type count is 0 (P2).
//!
//! Only the raw transitions live here; [`crate::mm::Mmu`] wraps them into the public
//! `get_page_type`/`put_page_type` pair, which also (de)validates page-table contents,
//! and the one release path (`Mmu::put_page`). All arithmetic is checked: an overflow
//! refuses the operation (XSA-249), it never wraps.
//!
//! Concurrency: every operation takes `&mut self`. The hypervisor keeps the whole MMU
//! state (`Mmu`, hence this table) behind **one lock per host** for now, so no atomics.
//! Making it per-frame lock-free later means packing `(type, count, flags)` in one
//! `AtomicU64` as Xen does, and re-checking XSA-401's ordering.

use xen_abi::errno::{Errno, EBUSY, EINVAL};

/// Domain identifier (`domid_t`).
pub type DomId = u16;

/// Who owns a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Owner {
    /// Free (in the hypervisor's allocator, or never assigned).
    #[default]
    None,
    /// Memory of a domain.
    Domain(DomId),
    /// The hypervisor's own memory: never mappable by a guest.
    Hypervisor,
    /// `DOMID_IO`: MMIO and special ranges; mappable only with I/O-memory permission,
    /// and no reference is counted for such mappings.
    Io,
}

/// A frame's type (Xen's `PGT_*`). The discriminants order the page-table levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PageType {
    #[default]
    None,
    L1,
    L2,
    L3,
    L4,
    /// GDT/LDT page: validated as descriptors.
    SegDesc,
    /// Mapped writable somewhere (by a guest PTE or a mechanism use).
    Writable,
}

impl PageType {
    /// 1..=4 for page tables, `None` otherwise.
    pub fn pt_level(self) -> Option<u8> {
        match self {
            PageType::L1 => Some(1),
            PageType::L2 => Some(2),
            PageType::L3 => Some(3),
            PageType::L4 => Some(4),
            _ => None,
        }
    }

    /// The page-table type of `level` (1..=4).
    pub fn from_level(level: u8) -> Option<PageType> {
        match level {
            1 => Some(PageType::L1),
            2 => Some(PageType::L2),
            3 => Some(PageType::L3),
            4 => Some(PageType::L4),
            _ => None,
        }
    }

    /// Types whose contents must be validated before the first type reference is
    /// usable (page tables and descriptor tables).
    pub fn needs_validation(self) -> bool {
        matches!(
            self,
            PageType::L1 | PageType::L2 | PageType::L3 | PageType::L4 | PageType::SegDesc
        )
    }
}

/// One frame's bookkeeping (Xen's `struct page_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FrameInfo {
    owner: Owner,
    allocated: bool,
    refcount: u32,
    ty: PageType,
    type_count: u32,
    validated: bool,
    pinned: bool,
    /// Flush epoch at which the type count last dropped to 0 (0: never). The frame may
    /// be in some CPU's TLB iff this equals the table's current epoch.
    stale_epoch: u64,
}

impl FrameInfo {
    /// A free frame (the value to fill a fresh table with).
    pub const FREE: FrameInfo = FrameInfo {
        owner: Owner::None,
        allocated: false,
        refcount: 0,
        ty: PageType::None,
        type_count: 0,
        validated: false,
        pinned: false,
        stale_epoch: 0,
    };

    pub fn owner(&self) -> Owner {
        self.owner
    }
    /// The allocation reference is held (Xen's `PGC_allocated`).
    pub fn allocated(&self) -> bool {
        self.allocated
    }
    pub fn refcount(&self) -> u32 {
        self.refcount
    }
    pub fn page_type(&self) -> PageType {
        self.ty
    }
    pub fn type_count(&self) -> u32 {
        self.type_count
    }
    pub fn validated(&self) -> bool {
        self.validated
    }
    pub fn pinned(&self) -> bool {
        self.pinned
    }
    /// Owned by domain `d`.
    pub fn owned_by(&self, d: DomId) -> bool {
        self.owner == Owner::Domain(d)
    }
    /// A validated page table of level 1..=4 in use (type count above 0).
    pub fn is_live_table(&self) -> Option<u8> {
        if self.validated && self.type_count > 0 {
            self.ty.pt_level()
        } else {
            None
        }
    }
}

/// What the caller of [`FrameTable::get_page_type`] must do next.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypeGot {
    /// The reference is usable now.
    Ready,
    /// First reference of a type that needs its contents audited: validate, then call
    /// `validation_done`. `flush` says stale TLB entries must be flushed first (P2).
    Validate { flush: bool },
    /// First reference of a type without contents to audit (Writable) after a type
    /// change: stale TLB entries must be flushed (P2) before the frame is used.
    Flush,
}

/// What the caller of [`FrameTable::put_page_type`] must do next.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypePut {
    Done,
    /// The last reference of a validated page table was dropped: the references its
    /// entries hold must be dropped now (`validated` is already clear).
    Devalidate(PageType),
}

/// The frame table over caller-provided storage (`&mut [FrameInfo]`, `Vec<FrameInfo>`,
/// a boot-time array...). Frames are indexed by machine frame number.
#[derive(Debug)]
pub struct FrameTable<S> {
    frames: S,
    /// Number of global TLB flushes done on the policy's request, plus one. A frame whose
    /// `stale_epoch` equals it may still be cached in a TLB (Xen's tlbflush timestamps).
    epoch: u64,
}

impl<S: AsRef<[FrameInfo]> + AsMut<[FrameInfo]>> FrameTable<S> {
    /// A table over `frames`; every entry should start as [`FrameInfo::FREE`].
    pub fn new(frames: S) -> Self {
        FrameTable { frames, epoch: 1 }
    }

    /// Some CPU may still cache a mapping (or a paging-structure entry) of `mfn`: its
    /// type count dropped to 0 after the last global flush. The allocator must flush
    /// TLBs before handing a released frame with this property to another owner.
    pub fn tlb_stale(&self, mfn: u64) -> bool {
        self.get(mfn).is_some_and(|f| f.stale_epoch == self.epoch)
    }

    /// Record that every CPU's TLB was flushed (all frames stop being stale).
    pub fn tlb_flushed(&mut self) {
        self.epoch = self.epoch.saturating_add(1);
    }

    /// Number of frames covered (valid mfns are `0..len`).
    pub fn len(&self) -> u64 {
        self.frames.as_ref().len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.frames.as_ref().is_empty()
    }

    /// The frame `mfn`, if it is covered by the table.
    pub fn get(&self, mfn: u64) -> Option<&FrameInfo> {
        self.frames.as_ref().get(usize::try_from(mfn).ok()?)
    }

    fn get_mut(&mut self, mfn: u64) -> Option<&mut FrameInfo> {
        self.frames.as_mut().get_mut(usize::try_from(mfn).ok()?)
    }

    /// All frames, indexed by mfn.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &FrameInfo)> {
        self.frames
            .as_ref()
            .iter()
            .enumerate()
            .map(|(i, f)| (i as u64, f))
    }

    /// Give a free frame to `owner`. A domain's frame starts with the allocation
    /// reference (refcount 1, `allocated`); hypervisor and I/O frames hold no refs.
    /// Staleness is kept: the allocator must have flushed before reusing a stale frame.
    pub fn assign(&mut self, mfn: u64, owner: Owner) -> Result<(), Errno> {
        let f = self.get_mut(mfn).ok_or(EINVAL)?;
        if f.owner != Owner::None || f.refcount != 0 || owner == Owner::None {
            return Err(EBUSY);
        }
        *f = FrameInfo {
            owner,
            stale_epoch: f.stale_epoch,
            ..FrameInfo::FREE
        };
        if let Owner::Domain(_) = owner {
            f.allocated = true;
            f.refcount = 1;
        }
        Ok(())
    }

    /// Take a general reference on a frame owned by `owner` (Xen's `get_page`).
    /// Fails with `EINVAL` if the frame does not exist or is not `owner`'s, and on
    /// refcount overflow (XSA-249).
    pub fn get_page(&mut self, mfn: u64, owner: DomId) -> Result<(), Errno> {
        let f = self.get_mut(mfn).ok_or(EINVAL)?;
        // A domain frame always holds at least one reference while owned; a frame at
        // 0 is being freed and cannot be revived.
        if !f.owned_by(owner) || f.refcount == 0 {
            return Err(EINVAL);
        }
        f.refcount = f.refcount.checked_add(1).ok_or(EINVAL)?;
        Ok(())
    }

    /// Drop a general reference. Returns `true` when it was the last one: the frame is
    /// then reset to free (owner `None`) and the caller must hand it back to the
    /// allocator. Crate-private: the one release path is `Mmu::put_page`.
    #[must_use]
    pub(crate) fn put_page(&mut self, mfn: u64) -> bool {
        let Some(f) = self.get_mut(mfn) else {
            return false;
        };
        match f.refcount {
            0 => false, // never taken: nothing to drop (an internal bug, not guest input)
            1 => {
                *f = FrameInfo {
                    stale_epoch: f.stale_epoch,
                    ..FrameInfo::FREE
                };
                true
            }
            n => {
                f.refcount = n - 1;
                false
            }
        }
    }

    /// Drop the allocation reference (domain teardown, decrease_reservation). Returns
    /// `Some(released)` if it was held.
    #[must_use]
    pub(crate) fn take_allocation(&mut self, mfn: u64) -> bool {
        match self.get_mut(mfn) {
            Some(f) if f.allocated => {
                f.allocated = false;
                true
            }
            _ => false,
        }
    }

    /// Take a type reference of type `ty` (Xen's `_get_page_type`, minus validation).
    ///
    /// - type count 0: the type may change; if it does, `validated` is cleared. A type
    ///   needing validation returns `Validate` (the caller validates, then calls
    ///   `validation_done`); a type change to `Writable`/`None` of a frame that may be
    ///   in stale TLBs returns `Flush`.
    /// - type count > 0: the type must match and be validated, else `EINVAL`.
    ///
    /// The caller holds a general reference on the frame.
    pub(crate) fn get_page_type(&mut self, mfn: u64, ty: PageType) -> Result<TypeGot, Errno> {
        let epoch = self.epoch;
        let f = self.get_mut(mfn).ok_or(EINVAL)?;
        let count = f.type_count.checked_add(1).ok_or(EINVAL)?;
        if f.type_count > 0 {
            if f.ty != ty || !f.validated {
                return Err(EINVAL);
            }
            f.type_count = count;
            return Ok(TypeGot::Ready);
        }
        let changed = f.ty != ty;
        let flush = changed && f.stale_epoch == epoch;
        if changed {
            f.ty = ty;
            f.validated = false;
            f.pinned = false;
        }
        f.type_count = count;
        if ty.needs_validation() {
            if f.validated {
                return Ok(TypeGot::Ready);
            }
            return Ok(TypeGot::Validate { flush });
        }
        f.validated = true;
        Ok(if flush {
            TypeGot::Flush
        } else {
            TypeGot::Ready
        })
    }

    /// Finish the validation started by `get_page_type`. On failure the type reference
    /// is given back and the frame is left untyped (Xen: `type_info = 0`).
    pub(crate) fn validation_done(&mut self, mfn: u64, ok: bool) {
        if let Some(f) = self.get_mut(mfn) {
            if ok {
                f.validated = true;
            } else {
                *f = FrameInfo {
                    ty: PageType::None,
                    type_count: 0,
                    validated: false,
                    pinned: false,
                    ..*f
                };
            }
        }
    }

    /// Drop a type reference (Xen's `_put_page_type`). When the count reaches 0 the frame
    /// becomes TLB-stale; a validated page table returns `Devalidate` and is no longer
    /// validated (its entries' references must be dropped by the caller).
    pub(crate) fn put_page_type(&mut self, mfn: u64) -> TypePut {
        let epoch = self.epoch;
        let Some(f) = self.get_mut(mfn) else {
            return TypePut::Done;
        };
        match f.type_count {
            0 => TypePut::Done, // internal bug: nothing held
            1 => {
                f.type_count = 0;
                f.pinned = false;
                f.stale_epoch = epoch;
                if f.validated && f.ty.needs_validation() {
                    f.validated = false;
                    TypePut::Devalidate(f.ty)
                } else {
                    TypePut::Done
                }
            }
            n => {
                f.type_count = n - 1;
                TypePut::Done
            }
        }
    }

    /// Set the pinned flag; `EINVAL` if already pinned (Xen's `test_and_set_bit`).
    pub(crate) fn set_pinned(&mut self, mfn: u64) -> Result<(), Errno> {
        let f = self.get_mut(mfn).ok_or(EINVAL)?;
        if f.pinned {
            return Err(EINVAL);
        }
        f.pinned = true;
        Ok(())
    }

    /// Clear the pinned flag; `EINVAL` if it was not set.
    pub(crate) fn clear_pinned(&mut self, mfn: u64) -> Result<(), Errno> {
        let f = self.get_mut(mfn).ok_or(EINVAL)?;
        if !f.pinned {
            return Err(EINVAL);
        }
        f.pinned = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: usize) -> FrameTable<Vec<FrameInfo>> {
        FrameTable::new(vec![FrameInfo::FREE; n])
    }

    #[test]
    fn assign_get_put_release() {
        let mut t = table(4);
        t.assign(1, Owner::Domain(3)).unwrap();
        assert_eq!(t.get(1).unwrap().refcount(), 1);
        assert_eq!(t.assign(1, Owner::Domain(4)), Err(EBUSY));
        assert_eq!(t.get_page(1, 4), Err(EINVAL));
        assert_eq!(t.get_page(9, 3), Err(EINVAL));
        t.get_page(1, 3).unwrap();
        assert!(!t.put_page(1));
        assert!(t.take_allocation(1));
        assert!(!t.take_allocation(1));
        assert!(t.put_page(1));
        assert_eq!(t.get(1).unwrap().owner(), Owner::None);
        assert_eq!(t.get_page(1, 3), Err(EINVAL));
    }

    #[test]
    fn refcount_overflow_refuses() {
        let mut t = table(2);
        t.assign(1, Owner::Domain(1)).unwrap();
        t.frames[1].refcount = u32::MAX;
        assert_eq!(t.get_page(1, 1), Err(EINVAL));
        assert_eq!(t.get(1).unwrap().refcount(), u32::MAX);
        t.frames[1].type_count = u32::MAX;
        t.frames[1].ty = PageType::Writable;
        t.frames[1].validated = true;
        assert_eq!(t.get_page_type(1, PageType::Writable), Err(EINVAL));
    }

    #[test]
    fn type_changes_only_at_zero() {
        let mut t = table(2);
        t.assign(1, Owner::Domain(1)).unwrap();
        assert_eq!(t.get_page_type(1, PageType::Writable), Ok(TypeGot::Ready));
        assert_eq!(t.get_page_type(1, PageType::L1), Err(EINVAL));
        assert_eq!(t.put_page_type(1), TypePut::Done);
        assert!(t.tlb_stale(1));
        // Type change after a writable use: validate, flushing stale TLBs first.
        assert_eq!(
            t.get_page_type(1, PageType::L1),
            Ok(TypeGot::Validate { flush: true })
        );
        assert_eq!(
            t.get_page_type(1, PageType::L1),
            Err(EINVAL),
            "not validated yet"
        );
        t.validation_done(1, true);
        assert_eq!(t.get_page_type(1, PageType::L1), Ok(TypeGot::Ready));
        assert_eq!(t.get_page_type(1, PageType::Writable), Err(EINVAL));
        assert_eq!(t.put_page_type(1), TypePut::Done);
        assert_eq!(t.put_page_type(1), TypePut::Devalidate(PageType::L1));
        assert!(!t.get(1).unwrap().validated());
    }
}
