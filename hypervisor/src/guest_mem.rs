//! Guest memory access: guest pointers are allegations, checked on every access.
//!
//! A guest virtual address is translated by walking the guest's own page tables in
//! software (through the direct map), requiring at every level what the guest itself
//! would need from ring 3: present, user, and writable for writes. Bytes are then
//! copied through the direct map with volatile accesses. No Rust reference into guest
//! memory is ever created, and a bad pointer is `-EFAULT`, never a hypervisor fault.

use crate::mem::{phys_to_virt, MAX_PHYS};
use xen_abi::errno::{Errno, EFAULT};
use xen_abi::mm::{
    HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START, PTE_ADDR_MASK, PTE_PRESENT, PTE_PSE, PTE_RW,
    PTE_USER,
};

fn read_pte(table_pa: u64, idx: u64) -> u64 {
    // SAFETY: `table_pa` is a frame below MAX_PHYS (checked by the caller), mapped in
    // the direct map; a volatile read of an aligned u64 has no other effect.
    unsafe { core::ptr::read_volatile(phys_to_virt(table_pa + idx * 8) as *const u64) }
}

fn canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1ffff
}

/// Translate `va` in the address space rooted at `l4_mfn`; returns the physical address.
pub fn translate(l4_mfn: u64, va: u64, write: bool) -> Result<u64, Errno> {
    if !canonical(va) || (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&va) {
        return Err(EFAULT);
    }
    let need = PTE_PRESENT | PTE_USER | if write { PTE_RW } else { 0 };
    let mut table = l4_mfn << 12;
    for level in (1..=4).rev() {
        if table >= MAX_PHYS {
            return Err(EFAULT);
        }
        let idx = (va >> (12 + 9 * (level - 1))) & 511;
        let e = read_pte(table, idx);
        if e & need != need {
            return Err(EFAULT);
        }
        if level > 1 && e & PTE_PSE != 0 {
            // Superpages are never validated in PV guests (XSA-148): refuse.
            return Err(EFAULT);
        }
        table = e & PTE_ADDR_MASK;
    }
    if table >= MAX_PHYS {
        return Err(EFAULT);
    }
    Ok(table | (va & 0xfff))
}

/// Copy `buf.len()` bytes from guest `va` into `buf`.
pub fn copy_from_guest(l4_mfn: u64, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
    let mut done = 0usize;
    while done < buf.len() {
        let cur = va.checked_add(done as u64).ok_or(EFAULT)?;
        let pa = translate(l4_mfn, cur, false)?;
        let chunk = (4096 - (cur & 0xfff) as usize).min(buf.len() - done);
        for i in 0..chunk {
            // SAFETY: `pa..pa+chunk` stays within one frame below MAX_PHYS that the
            // guest may read (checked by `translate`); volatile byte reads.
            buf[done + i] =
                unsafe { core::ptr::read_volatile(phys_to_virt(pa + i as u64) as *const u8) };
        }
        done += chunk;
    }
    Ok(())
}

/// Copy `data` to guest `va` (which the guest must be able to write).
pub fn copy_to_guest(l4_mfn: u64, va: u64, data: &[u8]) -> Result<(), Errno> {
    // Check the whole range first, so that a fault writes nothing.
    let mut off = 0usize;
    while off < data.len() {
        let cur = va.checked_add(off as u64).ok_or(EFAULT)?;
        translate(l4_mfn, cur, true)?;
        off += 4096 - (cur & 0xfff) as usize;
    }
    let mut done = 0usize;
    while done < data.len() {
        let cur = va + done as u64;
        let pa = translate(l4_mfn, cur, true)?;
        let chunk = (4096 - (cur & 0xfff) as usize).min(data.len() - done);
        for i in 0..chunk {
            // SAFETY: as in `copy_from_guest`, and the guest maps this frame writable,
            // so it is not a page table or other frame the hypervisor relies on (P1).
            unsafe {
                core::ptr::write_volatile(phys_to_virt(pa + i as u64) as *mut u8, data[done + i])
            };
        }
        done += chunk;
    }
    Ok(())
}

/// Types made only of integers, so any bytes are a valid value.
///
/// # Safety
/// Implement only for `#[repr(C)]` structs whose fields are integers (or arrays of
/// them), with no padding the compiler could rely on.
pub unsafe trait Pod: Copy + Default {}

// SAFETY: all of these are integers or #[repr(C)] structs of integers (xen-abi's rule).
unsafe impl Pod for u64 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for xen_abi::mm::MmuUpdate {}
// SAFETY: as above.
unsafe impl Pod for xen_abi::mm::MmuextOp {}

/// Read a `T` from guest `va`.
pub fn read<T: Pod>(l4_mfn: u64, va: u64) -> Result<T, Errno> {
    let mut v = T::default();
    // SAFETY: `T: Pod`, so viewing it as bytes and filling them with any values is sound;
    // the slice covers exactly `v`.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(&mut v as *mut T as *mut u8, core::mem::size_of::<T>())
    };
    copy_from_guest(l4_mfn, va, bytes)?;
    Ok(v)
}

/// Write a `T` to guest `va`.
pub fn write<T: Pod>(l4_mfn: u64, va: u64, v: &T) -> Result<(), Errno> {
    // SAFETY: `T: Pod` has no padding, so all its bytes are initialised.
    let bytes = unsafe {
        core::slice::from_raw_parts(v as *const T as *const u8, core::mem::size_of::<T>())
    };
    copy_to_guest(l4_mfn, va, bytes)
}
// SAFETY: #[repr(C)] structs of integers and byte arrays with explicit padding fields
// (their layouts are checked against Xen's headers by xen-abi's conformance test).
unsafe impl Pod for xen_abi::domctl::XenDomctl {}
// SAFETY: as above.
unsafe impl Pod for xen_abi::sysctl::XenSysctl {}
// SAFETY: as above (grant-table op structs, explicit padding).
unsafe impl Pod for xen_abi::grant_table::GnttabSetupTable {}
// SAFETY: as above.
unsafe impl Pod for xen_abi::grant_table::GnttabQuerySize {}
// SAFETY: as above.
unsafe impl Pod for xen_abi::grant_table::GnttabMapGrantRef {}
// SAFETY: as above.
unsafe impl Pod for xen_abi::grant_table::GnttabUnmapGrantRef {}
// SAFETY: as above.
unsafe impl Pod for xen_abi::grant_table::GnttabCopy {}
