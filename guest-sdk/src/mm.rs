//! Page-table and memory helpers over `mmu_update`, `update_va_mapping` and `mmuext_op`.
//!
//! A PV guest sees machine frames: its page tables hold MFNs, `start_info.mfn_list` is
//! the P2M (pseudo-physical frame to MFN) and the read-only M2P table at
//! `MACH2PHYS_VIRT_START` maps back. Page tables are read-only to the guest; every
//! change goes through the hypervisor, which validates it.

use xen_abi::errno::Errno;
use xen_abi::mm::*;
use xen_abi::xen::DOMID_SELF;

/// L4/L3/L2/L1 table index of `va` at `level` (4..=1).
pub const fn table_index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

/// The four table indices of `va`, L4 first.
pub const fn indices(va: u64) -> [usize; 4] {
    [
        table_index(va, 4),
        table_index(va, 3),
        table_index(va, 2),
        table_index(va, 1),
    ]
}

/// Machine frame number in a page-table entry.
pub const fn pte_mfn(pte: u64) -> u64 {
    (pte & PTE_ADDR_MASK) >> PAGE_SHIFT
}

/// A page-table entry mapping `mfn` with `flags`.
pub const fn make_pte(mfn: u64, flags: u64) -> u64 {
    (mfn << PAGE_SHIFT) & PTE_ADDR_MASK | flags
}

/// Flags for an ordinary writable kernel data page.
pub const PAGE_KERNEL: u64 = PTE_PRESENT | PTE_RW | PTE_USER | PTE_ACCESSED | PTE_DIRTY;
/// Flags for a read-only kernel page (e.g. a page table mapping).
pub const PAGE_KERNEL_RO: u64 = PTE_PRESENT | PTE_USER | PTE_ACCESSED;

/// Pseudo-physical frame of a start-of-day virtual address (the region maps frames
/// 1:1 from [`crate::KERNEL_BASE`]).
pub const fn virt_to_pfn(va: u64) -> u64 {
    (va - crate::KERNEL_BASE) >> PAGE_SHIFT
}

/// Virtual address of a pseudo-physical frame in the start-of-day region.
pub const fn pfn_to_virt(pfn: u64) -> u64 {
    crate::KERNEL_BASE + (pfn << PAGE_SHIFT)
}

/// MFN of pseudo-physical frame `pfn`, from the P2M list in `start_info.mfn_list`.
pub fn pfn_to_mfn(pfn: u64) -> Option<u64> {
    let si = crate::start_info();
    if pfn >= si.nr_pages {
        return None;
    }
    // SAFETY: `mfn_list` is a mapped array of `nr_pages` u64 set up by the domain
    // builder; `pfn` is in bounds. Volatile: the guest may update it elsewhere.
    Some(unsafe {
        (si.mfn_list as *const u64)
            .add(pfn as usize)
            .read_volatile()
    })
}

/// PFN of machine frame `mfn`, from the hypervisor's read-only M2P table.
pub fn mfn_to_pfn(mfn: u64) -> u64 {
    // SAFETY: the M2P is mapped read-only at MACH2PHYS_VIRT_START in every PV guest; Xen
    // maps all of it (entries of frames not ours read as garbage, not a fault). The
    // hypervisor may update it concurrently, hence volatile.
    unsafe {
        (MACH2PHYS_VIRT_START as *const u64)
            .add(mfn as usize)
            .read_volatile()
    }
}

/// MFN backing a start-of-day virtual address.
pub fn virt_to_mfn(va: u64) -> Option<u64> {
    pfn_to_mfn(virt_to_pfn(va))
}

/// Read the page-table entry at `level` on the walk to `va`, starting from the boot L4
/// (`start_info.pt_base`). Tables must lie in the start-of-day region (as the bootstrap
/// tables do). Returns the entry and its machine address.
pub fn walk(va: u64, level: u32) -> Option<(u64, u64)> {
    let mut table_va = crate::start_info().pt_base;
    let mut table_mfn = virt_to_mfn(table_va)?;
    for l in (level..=4).rev() {
        let idx = table_index(va, l);
        // SAFETY: `table_va` maps a page-table page (read-only for us); reading is fine.
        let pte = unsafe { (table_va as *const u64).add(idx).read_volatile() };
        let maddr = (table_mfn << PAGE_SHIFT) + idx as u64 * 8;
        if l == level {
            return Some((pte, maddr));
        }
        if pte & PTE_PRESENT == 0 || pte & PTE_PSE != 0 {
            return None;
        }
        table_mfn = pte_mfn(pte);
        table_va = pfn_to_virt(mfn_to_pfn(table_mfn));
    }
    None
}

/// Set the PTE at machine address `pte_maddr` to `val` with `mmu_update`.
pub fn set_pte(pte_maddr: u64, val: u64) -> Result<(), Errno> {
    let req = [MmuUpdate {
        ptr: pte_maddr | MMU_NORMAL_PT_UPDATE,
        val,
    }];
    crate::hypercall::mmu_update(&req, DOMID_SELF).map(|_| ())
}

/// Map machine frame `mfn` at `va` (whose L1 table must exist) and flush it locally.
///
/// # Safety
/// The caller owns `va`'s page and holds no references into the old mapping.
pub unsafe fn map_mfn(va: u64, mfn: u64, flags: u64) -> Result<(), Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { crate::hypercall::update_va_mapping(va, make_pte(mfn, flags), UVMF_INVLPG) }
}

/// Unmap `va` (write a zero PTE) and flush it locally.
///
/// # Safety
/// As for [`map_mfn`].
pub unsafe fn unmap(va: u64) -> Result<(), Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { crate::hypercall::update_va_mapping(va, 0, UVMF_INVLPG) }
}

fn ext(cmd: u32, arg1: u64, arg2: u64) -> MmuextOp {
    MmuextOp {
        cmd,
        _pad: 0,
        arg1,
        arg2,
    }
}

/// Pin `mfn` as a page table of `level` (1..=4).
pub fn pin_table(level: u32, mfn: u64) -> Result<(), Errno> {
    let cmd = match level {
        1 => MMUEXT_PIN_L1_TABLE,
        2 => MMUEXT_PIN_L2_TABLE,
        3 => MMUEXT_PIN_L3_TABLE,
        4 => MMUEXT_PIN_L4_TABLE,
        _ => return Err(xen_abi::errno::EINVAL),
    };
    // SAFETY: pinning validates and type-locks the frame; it changes no mapping.
    unsafe { crate::hypercall::mmuext_op(&[ext(cmd, mfn, 0)], DOMID_SELF) }.map(|_| ())
}

/// Unpin page table `mfn`.
pub fn unpin_table(mfn: u64) -> Result<(), Errno> {
    // SAFETY: unpinning changes no mapping.
    unsafe { crate::hypercall::mmuext_op(&[ext(MMUEXT_UNPIN_TABLE, mfn, 0)], DOMID_SELF) }
        .map(|_| ())
}

/// Switch the kernel L4 to `mfn`.
///
/// # Safety
/// The new address space must map everything the caller will touch, code and stack
/// included.
pub unsafe fn new_baseptr(mfn: u64) -> Result<(), Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { crate::hypercall::mmuext_op(&[ext(MMUEXT_NEW_BASEPTR, mfn, 0)], DOMID_SELF) }
        .map(|_| ())
}

/// Set the user-mode L4 to `mfn` (0 for none).
pub fn new_user_baseptr(mfn: u64) -> Result<(), Errno> {
    // SAFETY: the user L4 is only used in guest user mode; kernel mappings are untouched.
    unsafe { crate::hypercall::mmuext_op(&[ext(MMUEXT_NEW_USER_BASEPTR, mfn, 0)], DOMID_SELF) }
        .map(|_| ())
}

/// Flush this vCPU's TLB.
pub fn tlb_flush_local() -> Result<(), Errno> {
    // SAFETY: flushing changes no mapping.
    unsafe { crate::hypercall::mmuext_op(&[ext(MMUEXT_TLB_FLUSH_LOCAL, 0, 0)], DOMID_SELF) }
        .map(|_| ())
}

/// Invalidate `va` in this vCPU's TLB.
pub fn invlpg_local(va: u64) -> Result<(), Errno> {
    // SAFETY: invalidation changes no mapping.
    unsafe { crate::hypercall::mmuext_op(&[ext(MMUEXT_INVLPG_LOCAL, va, 0)], DOMID_SELF) }
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_of_kernel_base() {
        assert_eq!(indices(crate::KERNEL_BASE), [511, 510, 0, 0]);
        assert_eq!(indices(0xFFFF_8000_0000_0000), [256, 0, 0, 0]);
        assert_eq!(indices(0x0000_0000_0020_3000), [0, 0, 1, 3]);
    }

    #[test]
    fn pte_round_trip() {
        let pte = make_pte(0x1234, PAGE_KERNEL);
        assert_eq!(pte_mfn(pte), 0x1234);
        assert_eq!(pte & 0xfff, PAGE_KERNEL);
        assert_eq!(virt_to_pfn(pfn_to_virt(77)), 77);
    }
}
