//! The hypervisor's share of every address space: L4 slots 256..271.
//!
//! - slot 256: the read-only machine-to-phys table (M2P) at `MACH2PHYS_VIRT_START`,
//!   user-readable so that guests can translate frames, never writable by them;
//! - slot 261: the hypervisor image (supervisor only);
//! - slot 262: the direct map of RAM (supervisor only).
//!
//! `MASTER_L4` holds these entries; every guest L4 gets a copy of slots 256..271
//! (`install_hypervisor_slots`), and guest updates to them are refused by `hv_core::mm`.

use crate::mem::{self, phys_to_virt};
use core::sync::atomic::{AtomicU64, Ordering};
use xen_abi::mm::{HYPERVISOR_L4_FIRST, HYPERVISOR_L4_LAST, PTE_PRESENT, PTE_PSE, PTE_USER};

/// Frame of the master L4 (0 until `init`).
static MASTER_L4: AtomicU64 = AtomicU64::new(0);
/// Physical base of the M2P array and its number of entries.
static M2P_BASE: AtomicU64 = AtomicU64::new(0);
static M2P_ENTRIES: AtomicU64 = AtomicU64::new(0);

/// Xen's `INVALID_M2P_ENTRY`.
pub const INVALID_M2P: u64 = u64::MAX;

extern "C" {
    static boot_pml4: u8;
}

fn read_entry(table_mfn: u64, i: usize) -> u64 {
    // SAFETY: `table_mfn` is a page-table frame the hypervisor owns (the boot L4 or
    // one it allocated), mapped in the direct map; `i` < 512.
    unsafe {
        core::ptr::read_volatile((phys_to_virt(table_mfn << 12) + (i as u64) * 8) as *const u64)
    }
}

fn write_entry(table_mfn: u64, i: usize, val: u64) {
    // SAFETY: as `read_entry`; the frame is not a guest's (or is being built and not yet
    // visible to its guest), so the hypervisor may write it.
    unsafe {
        core::ptr::write_volatile(
            (phys_to_virt(table_mfn << 12) + (i as u64) * 8) as *mut u64,
            val,
        )
    }
}

/// Build the master L4 and the M2P for `max_mfn` frames. Boot CPU, once.
pub fn init(max_mfn: u64) -> Result<(), &'static str> {
    let boot = mem::virt_to_phys(core::ptr::addr_of!(boot_pml4) as u64) >> 12;
    let master = mem::alloc_frame().ok_or("no memory for the master L4")?;
    for i in HYPERVISOR_L4_FIRST..=HYPERVISOR_L4_LAST {
        write_entry(master, i, read_entry(boot, i));
    }
    // The M2P: 8 bytes per frame, in 2 MiB pages.
    let entries = max_mfn + 1;
    let bytes = entries * 8;
    let chunks = bytes.div_ceil(2 << 20);
    if chunks > 512 {
        return Err("too much memory for the M2P");
    }
    let base =
        mem::alloc_contiguous((chunks * 512) as usize, 512).ok_or("no memory for the M2P")?;
    for i in 0..entries {
        // SAFETY: the M2P frames were just allocated for this array; index i < entries
        // fits in `chunks` 2 MiB pages.
        unsafe {
            core::ptr::write_volatile((phys_to_virt(base << 12) + i * 8) as *mut u64, INVALID_M2P)
        };
    }
    let l3 = mem::alloc_frame().ok_or("no memory for the M2P tables")?;
    let l2 = mem::alloc_frame().ok_or("no memory for the M2P tables")?;
    for c in 0..chunks {
        write_entry(
            l2,
            c as usize,
            ((base + c * 512) << 12) | PTE_PRESENT | PTE_USER | PTE_PSE,
        );
    }
    write_entry(l3, 0, (l2 << 12) | PTE_PRESENT | PTE_USER);
    write_entry(
        master,
        HYPERVISOR_L4_FIRST,
        (l3 << 12) | PTE_PRESENT | PTE_USER,
    );
    // The boot L4 (used while no guest runs) sees the M2P too.
    write_entry(
        boot,
        HYPERVISOR_L4_FIRST,
        (l3 << 12) | PTE_PRESENT | PTE_USER,
    );
    M2P_BASE.store(base << 12, Ordering::Release);
    M2P_ENTRIES.store(entries, Ordering::Release);
    MASTER_L4.store(master, Ordering::Release);
    Ok(())
}

/// The master L4's frame.
pub fn master_l4() -> u64 {
    MASTER_L4.load(Ordering::Acquire)
}

/// Copy the hypervisor's slots 256..271 into the guest L4 `l4_mfn`.
pub fn install_hypervisor_slots(l4_mfn: u64) {
    let master = MASTER_L4.load(Ordering::Acquire);
    for i in HYPERVISOR_L4_FIRST..=HYPERVISOR_L4_LAST {
        write_entry(l4_mfn, i, read_entry(master, i));
    }
}

/// Set the M2P entry of `mfn`.
pub fn m2p_set(mfn: u64, pfn: u64) {
    if mfn < M2P_ENTRIES.load(Ordering::Acquire) {
        let base = M2P_BASE.load(Ordering::Acquire);
        // SAFETY: `mfn` is inside the M2P array allocated in `init`.
        unsafe { core::ptr::write_volatile((phys_to_virt(base) + mfn * 8) as *mut u64, pfn) };
    }
}

/// The M2P entry of `mfn`.
pub fn m2p_get(mfn: u64) -> u64 {
    if mfn < M2P_ENTRIES.load(Ordering::Acquire) {
        let base = M2P_BASE.load(Ordering::Acquire);
        // SAFETY: as `m2p_set`.
        unsafe { core::ptr::read_volatile((phys_to_virt(base) + mfn * 8) as *const u64) }
    } else {
        INVALID_M2P
    }
}
