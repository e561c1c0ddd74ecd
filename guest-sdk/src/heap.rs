//! A heap over the start-of-day padding: from the end of the bootstrap stack to the end
//! of the initial 4 MiB-aligned region (at least 512 KiB, all mapped by the builder).

#[cfg(target_os = "none")]
extern crate alloc;

use linked_list_allocator::LockedHeap;

/// The SDK heap. With the `global-allocator` feature (bare metal) it serves `alloc`.
#[cfg_attr(
    all(target_os = "none", feature = "global-allocator"),
    global_allocator
)]
pub static HEAP: LockedHeap = LockedHeap::empty();

/// Hand `[start, end)` to the heap. Called once at boot.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
pub(crate) fn init(start: u64, end: u64) {
    if end <= start {
        return;
    }
    // SAFETY: `[start, end)` is mapped, writable, and used by nothing else: xen.h's
    // start-of-day layout guarantees the padding after the bootstrap stack up to the
    // region end, and the SDK calls this once, before the guest's main.
    unsafe { HEAP.lock().init(start as *mut u8, (end - start) as usize) };
}

/// (used, free) bytes.
pub fn usage() -> (usize, usize) {
    let h = HEAP.lock();
    (h.used(), h.free())
}

/// Where the heap's growth goes: the pseudo-physical frames after the start-of-day
/// region, mapped at `KERNEL_BASE + pfn * 4096` like the region itself. New L1 tables
/// are taken from the top frames, which stay mapped read-only (so `mm::walk` can read
/// them); the heap gets the frames below them, contiguous with its current end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrowPlan {
    /// First frame to map (the region's end; 2 MiB-aligned).
    pub first: u64,
    /// Frames for the heap: `first..heap_end`.
    pub heap_end: u64,
    /// Frames for the L1 tables: `heap_end..end` (one per 512 frames of `first..end`).
    pub end: u64,
}

impl GrowPlan {
    /// Plan mapping up to `want` more heap frames after `first`, of `nr_pages` in all,
    /// within the 1 GiB the kernel's L2 table covers. `None` if nothing fits.
    pub fn new(first: u64, nr_pages: u64, want: u64) -> Option<GrowPlan> {
        const L2_SPAN: u64 = 512 * 512;
        if !first.is_multiple_of(512) {
            return None;
        }
        let end_max = nr_pages.min(L2_SPAN);
        let avail = end_max.checked_sub(first)?;
        // The fewest tables `t` that map the heap and themselves: t * 512 >= heap + t.
        for t in 1..=avail {
            let heap = want.min(avail.checked_sub(t)?);
            if heap == 0 {
                return None;
            }
            if t * 512 >= heap + t {
                return Some(GrowPlan {
                    first,
                    heap_end: first + heap,
                    end: first + heap + t,
                });
            }
        }
        None
    }

    /// L1 tables needed: one per 512 frames of `first..end`.
    pub fn tables(&self) -> u64 {
        self.end - self.heap_end
    }
}

/// Map more of the domain's memory and give it to the heap: up to `max_bytes`, as much
/// as the domain has. Returns the bytes added. Call once, early (the SDK does not).
#[cfg(target_os = "none")]
pub fn grow(max_bytes: u64) -> Result<u64, xen_abi::errno::Errno> {
    use crate::mm;
    use xen_abi::errno::{EINVAL, ENOMEM};
    use xen_abi::mm::{MmuUpdate, MMU_NORMAL_PT_UPDATE, PTE_NX};
    use xen_abi::xen::DOMID_SELF;
    let si = crate::start_info();
    let b = crate::entry::boot_info();
    let region_end = crate::entry::region_end(crate::entry::bootstrap_end(si, b.initial_rsp));
    let first = mm::virt_to_pfn(region_end);
    let plan = GrowPlan::new(first, si.nr_pages, max_bytes / 4096).ok_or(ENOMEM)?;
    // A scratch page of the current heap, remapped to zero each new table.
    let layout = core::alloc::Layout::from_size_align(4096, 4096).map_err(|_| EINVAL)?;
    // SAFETY: non-zero size; freed below once its own frame is mapped back.
    let scratch = unsafe { alloc::alloc::alloc(layout) };
    if scratch.is_null() {
        return Err(ENOMEM);
    }
    let scratch_va = scratch as u64;
    let (own_pte, scratch_pte) = mm::walk(scratch_va, 1).ok_or(EINVAL)?;
    let mfn = |pfn: u64| mm::pfn_to_mfn(pfn).ok_or(EINVAL);
    let result = (|| {
        // 1. Zero every new table through the scratch mapping, then map the scratch page
        //    back: no writable mapping of a table remains.
        for t in plan.heap_end..plan.end {
            mm::set_pte(scratch_pte, mm::make_pte(mfn(t)?, mm::PAGE_KERNEL))?;
            mm::invlpg_local(scratch_va)?;
            // SAFETY: the scratch VA maps frame `t` (ours, not yet a table) writable.
            unsafe { core::ptr::write_bytes(scratch, 0, 4096) };
        }
        mm::set_pte(scratch_pte, own_pte)?;
        mm::invlpg_local(scratch_va)?;
        // 2. Hook each table into the kernel's L2 (the hypervisor validates it as an L1).
        for (i, t) in (plan.heap_end..plan.end).enumerate() {
            let va = mm::pfn_to_virt(plan.first + i as u64 * 512);
            let (l2e, l2e_maddr) = mm::walk(va, 2).ok_or(EINVAL)?;
            if l2e & xen_abi::mm::PTE_PRESENT != 0 {
                return Err(EINVAL);
            }
            mm::set_pte(l2e_maddr, mm::make_pte(mfn(t)?, mm::PAGE_KERNEL))?;
        }
        // 3. Fill them: heap frames writable (no execute), the tables read-only.
        let mut batch = [MmuUpdate::default(); 512];
        let mut n = 0;
        for pfn in plan.first..plan.end {
            let table = plan.heap_end + (pfn - plan.first) / 512;
            let flags = if pfn < plan.heap_end {
                mm::PAGE_KERNEL | PTE_NX
            } else {
                mm::PAGE_KERNEL_RO | PTE_NX
            };
            let slot = (pfn - plan.first) % 512;
            let req = MmuUpdate {
                ptr: ((mfn(table)? << 12) + slot * 8) | MMU_NORMAL_PT_UPDATE,
                val: mm::make_pte(mfn(pfn)?, flags),
            };
            if n == batch.len() {
                crate::hypercall::mmu_update(&batch, DOMID_SELF)?;
                n = 0;
            }
            if let Some(slot) = batch.get_mut(n) {
                *slot = req;
                n += 1;
            }
        }
        if n > 0 {
            crate::hypercall::mmu_update(batch.get(..n).unwrap_or(&[]), DOMID_SELF)?;
        }
        Ok(())
    })();
    // SAFETY: `scratch` came from `alloc` with this layout and maps its own frame again
    // (step 1 restored it before anything else could fail after remapping it).
    unsafe { alloc::alloc::dealloc(scratch, layout) };
    result?;
    let bytes = (plan.heap_end - plan.first) * 4096;
    // SAFETY: `[region_end, region_end + bytes)` is now mapped writable, used by
    // nothing, and starts exactly where the heap ends (the region's end).
    unsafe { HEAP.lock().extend(bytes as usize) };
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::GrowPlan;

    #[test]
    fn plans_leave_room_for_their_tables() {
        // 128 MiB dom0, region ending at 8 MiB.
        let p = GrowPlan::new(2048, 32768, u64::MAX).unwrap();
        assert_eq!(p.first, 2048);
        assert_eq!(p.end, 32768);
        assert!(p.tables() * 512 >= p.end - p.first, "{p:?}");
        assert!(
            (p.tables() - 1) * 512 < p.end - p.first,
            "no spare table: {p:?}"
        );
        // Asked for less: exactly that much heap.
        let q = GrowPlan::new(2048, 32768, 1000).unwrap();
        assert_eq!(q.heap_end - q.first, 1000);
        assert_eq!(q.tables(), 2);
        // Nothing left, misaligned, or past the L2's gigabyte.
        assert_eq!(GrowPlan::new(2048, 2048, 10), None);
        assert_eq!(GrowPlan::new(2047, 32768, 10), None);
        let big = GrowPlan::new(2048, 1 << 20, u64::MAX).unwrap();
        assert!(big.end <= 512 * 512);
    }
}
