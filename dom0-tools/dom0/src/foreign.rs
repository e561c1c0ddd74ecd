//! Mapping another domain's frames into dom0: a *slot* is one page of dom0's heap
//! whose PTE is pointed at a foreign frame with `mmu_update(foreigndom = domid)` and
//! later restored to the heap frame it had. Slots live in the start-of-day region, so
//! their L1 entries are found with `mm::walk`.
//!
//! Also what the backends share: [`CopyGrants`] (granted data moved with
//! `GNTTABOP_copy` through a bounce page, never mapped) and [`RingPage`] (a frontend's
//! ring page mapped in a slot, reached only by volatile accesses).

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::sync::atomic::{fence, Ordering};
use guest_sdk::mm;
use guest_sdk::Errno;
use pv_drivers::blkif::{GrantError, Grants};
use pv_drivers::ring::SharedPage;
use xen_abi::errno::{EINVAL, ENOMEM};
use xen_abi::grant_table::{GnttabCopy, GnttabCopyPtr, GNTCOPY_DEST_GREF, GNTCOPY_SOURCE_GREF};
use xen_abi::mm::{MmuUpdate, MMU_NORMAL_PT_UPDATE};
use xen_abi::xen::{DomId, DOMID_SELF};

/// One page of dom0's address space that can show a foreign frame.
#[derive(Debug)]
pub struct Slot {
    va: u64,
    pte_maddr: u64,
    own_pte: u64,
    mapped: bool,
    /// The grant handle when the slot shows a granted frame ([`Slot::map_grant`]).
    grant: Option<u32>,
}

impl Slot {
    /// A new slot over a fresh, page-aligned heap page (freed on drop once unmapped).
    pub fn new() -> Result<Slot, Errno> {
        let layout = Layout::from_size_align(4096, 4096).map_err(|_| EINVAL)?;
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc_zeroed(layout) };
        if p.is_null() {
            return Err(ENOMEM);
        }
        let va = p as u64;
        let (own_pte, pte_maddr) = mm::walk(va, 1).ok_or(EINVAL)?;
        Ok(Slot {
            va,
            pte_maddr,
            own_pte,
            mapped: false,
            grant: None,
        })
    }

    /// Shows frame `mfn` of `dom` (writable) at this slot; returns its address.
    pub fn map(&mut self, dom: DomId, mfn: u64) -> Result<u64, Errno> {
        if self.mapped {
            self.unmap()?;
        }
        let req = [MmuUpdate {
            ptr: self.pte_maddr | MMU_NORMAL_PT_UPDATE,
            val: mm::make_pte(mfn, mm::PAGE_KERNEL),
        }];
        guest_sdk::privileged::mmu_update(&req, dom)?;
        self.mapped = true;
        mm::invlpg_local(self.va)?;
        Ok(self.va)
    }

    /// Shows the frame `dom` granted as `gref` at this slot (`GNTTABOP_map_grant_ref`
    /// with `GNTMAP_host_map`); returns its address.
    pub fn map_grant(&mut self, dom: DomId, gref: u32, readonly: bool) -> Result<u64, Errno> {
        if self.mapped {
            self.unmap()?;
        }
        let mut flags = xen_abi::grant_table::GNTMAP_HOST_MAP;
        if readonly {
            flags |= xen_abi::grant_table::GNTMAP_READONLY;
        }
        // SAFETY: the slot's page is ours alone and no Rust reference points into it;
        // its mapping is replaced until `unmap`.
        let handle = unsafe { guest_sdk::privileged::gnttab_map(self.va, flags, gref, dom) }?;
        self.grant = Some(handle);
        self.mapped = true;
        // Xen does not flush the old translation of `host_addr` on a grant map.
        mm::invlpg_local(self.va)?;
        Ok(self.va)
    }

    /// Puts dom0's own frame back (dropping the reference to the foreign frame).
    pub fn unmap(&mut self) -> Result<(), Errno> {
        if !self.mapped {
            return Ok(());
        }
        if let Some(handle) = self.grant {
            // SAFETY: the grant mapping made by `map_grant` at our own page; nothing
            // uses it after this (the caller dropped every user of the ring).
            unsafe { guest_sdk::privileged::gnttab_unmap(self.va, handle) }?;
            self.grant = None;
        }
        let req = [MmuUpdate {
            ptr: self.pte_maddr | MMU_NORMAL_PT_UPDATE,
            val: self.own_pte,
        }];
        guest_sdk::privileged::mmu_update(&req, DOMID_SELF)?;
        self.mapped = false;
        mm::invlpg_local(self.va)
    }

    /// Copies `data` (at most a page) to the start of frame `mfn` of `dom`, zeroing the
    /// rest of the page, and unmaps it.
    pub fn write_page(&mut self, dom: DomId, mfn: u64, data: &[u8]) -> Result<(), Errno> {
        let n = data.len().min(4096);
        let va = self.map(dom, mfn)?;
        // SAFETY: `va` maps a whole frame (writable) that only this slot maps in dom0;
        // the foreign domain is paused and not yet running; `n` <= 4096.
        unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), va as *mut u8, n);
            core::ptr::write_bytes((va as *mut u8).add(n), 0, 4096 - n);
        }
        self.unmap()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Never leak a foreign reference (it would keep a destroyed domain alive), and
        // give the page back only once it is dom0's own again.
        if self.unmap().is_ok() {
            if let Ok(layout) = Layout::from_size_align(4096, 4096) {
                // SAFETY: `va` came from `alloc_zeroed` with this layout and maps its
                // own frame again; nothing else refers to it.
                unsafe { dealloc(self.va as *mut u8, layout) };
            }
        }
    }
}

/// Granted data moved with `GNTTABOP_copy` through one bounce page of dom0's.
pub struct CopyGrants {
    bounce: *mut u8,
    bounce_mfn: u64,
}

impl CopyGrants {
    /// A bounce page of dom0's heap (never freed: one per backend, for dom0's life).
    pub fn new() -> Option<CopyGrants> {
        let layout = Layout::from_size_align(4096, 4096).ok()?;
        // SAFETY: non-zero size; the page is never freed (one per dom0).
        let p = unsafe { alloc_zeroed(layout) };
        if p.is_null() {
            return None;
        }
        let bounce_mfn = mm::virt_to_mfn(p as u64)?;
        Some(CopyGrants {
            bounce: p,
            bounce_mfn,
        })
    }

    fn copy(&self, op: GnttabCopy) -> Result<(), GrantError> {
        match guest_sdk::privileged::gnttab_copy(&op) {
            Ok(()) => Ok(()),
            Err(e) => Err(GrantError(-(e.0.min(i16::MAX as i32) as i16))),
        }
    }
}

impl Grants for CopyGrants {
    fn copy_from(
        &mut self,
        domid: u16,
        gref: u32,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), GrantError> {
        if offset + buf.len() > 4096 {
            return Err(GrantError(-1));
        }
        self.copy(GnttabCopy {
            source: GnttabCopyPtr {
                u: u64::from(gref),
                domid,
                offset: offset as u16,
                ..Default::default()
            },
            dest: GnttabCopyPtr {
                u: self.bounce_mfn,
                domid: DOMID_SELF,
                offset: 0,
                ..Default::default()
            },
            len: buf.len() as u16,
            flags: GNTCOPY_SOURCE_GREF,
            ..Default::default()
        })?;
        // SAFETY: the bounce page is ours, 4096 bytes; the hypervisor wrote it during
        // the copy hypercall, which has returned; `buf.len()` <= 4096.
        unsafe { core::ptr::copy_nonoverlapping(self.bounce, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn copy_to(
        &mut self,
        domid: u16,
        gref: u32,
        offset: usize,
        data: &[u8],
    ) -> Result<(), GrantError> {
        if offset + data.len() > 4096 {
            return Err(GrantError(-1));
        }
        // SAFETY: as in `copy_from`; nothing else uses the bounce page.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.bounce, data.len()) };
        self.copy(GnttabCopy {
            source: GnttabCopyPtr {
                u: self.bounce_mfn,
                domid: DOMID_SELF,
                offset: 0,
                ..Default::default()
            },
            dest: GnttabCopyPtr {
                u: u64::from(gref),
                domid,
                offset: offset as u16,
                ..Default::default()
            },
            len: data.len() as u16,
            flags: GNTCOPY_DEST_GREF,
            ..Default::default()
        })
    }
}

/// The frontend's ring page, mapped in dom0 through its grant: shared with the guest,
/// so every access is volatile through the raw pointer.
pub struct RingPage(pub *mut u8);

impl SharedPage for RingPage {
    fn size(&self) -> usize {
        4096
    }
    fn read_u32(&self, off: usize) -> u32 {
        if off + 4 > 4096 {
            return 0;
        }
        // SAFETY: in the mapped page (checked), 4-aligned (ring fields are).
        unsafe { (self.0.add(off) as *const u32).read_volatile() }
    }
    fn write_u32(&self, off: usize, val: u32) {
        if off + 4 <= 4096 {
            // SAFETY: as in `read_u32`.
            unsafe { (self.0.add(off) as *mut u32).write_volatile(val) }
        }
    }
    fn read_bytes(&self, off: usize, out: &mut [u8]) {
        if off + out.len() > 4096 {
            return;
        }
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: in the mapped page (checked above).
            *b = unsafe { self.0.add(off + i).read_volatile() };
        }
    }
    fn write_bytes(&self, off: usize, data: &[u8]) {
        if off + data.len() > 4096 {
            return;
        }
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: in the mapped page (checked above).
            unsafe { self.0.add(off + i).write_volatile(b) };
        }
    }
    fn fence(&self) {
        fence(Ordering::SeqCst);
    }
}
