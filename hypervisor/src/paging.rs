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
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __image_end: u8;
}

const PTE_GLOBAL: u64 = 1 << 8;
const PTE_NX: u64 = 1 << 63;
const PTE_RW: u64 = 1 << 1;

/// Replace the boot mappings of slots 261 (image) and 262 (direct map): the direct map
/// becomes non-executable, and the image W^X (text RX, rodata R, data and bss RW),
/// all global. Runs on the boot CPU before the other CPUs start.
fn harden(boot: u64) -> Result<(), &'static str> {
    let (_, _, _, edx) = crate::arch::x86::cpuid(0x8000_0001, 0);
    let nx = if edx & (1 << 20) != 0 {
        // SAFETY: EFER exists on every x86_64 CPU; NXE only enables the NX bit.
        unsafe {
            crate::arch::x86::wrmsr(
                0xC000_0080,
                crate::arch::x86::rdmsr(0xC000_0080) | (1 << 11),
            )
        };
        PTE_NX
    } else {
        0
    };
    // Direct map: 4 GiB with 2 MiB pages.
    let dm_pdpt = mem::alloc_frame().ok_or("no memory for page tables")?;
    for g in 0..(mem::MAX_PHYS >> 30) {
        let pd = mem::alloc_frame().ok_or("no memory for page tables")?;
        for i in 0..512u64 {
            let pa = (g << 30) | (i << 21);
            write_entry(
                pd,
                i as usize,
                pa | PTE_PRESENT | PTE_RW | PTE_PSE | PTE_GLOBAL | nx,
            );
        }
        write_entry(dm_pdpt, g as usize, (pd << 12) | PTE_PRESENT | PTE_RW);
    }
    // The image: 4 KiB pages with per-section rights.
    let va = |s: *const u8| s as u64;
    let (start, text_end, ro_end, end) = (
        va(core::ptr::addr_of!(__image_start)),
        va(core::ptr::addr_of!(__text_end)),
        va(core::ptr::addr_of!(__rodata_end)),
        va(core::ptr::addr_of!(__image_end)),
    );
    let base = mem::IMAGE_OFFSET; // maps physical 0 (slot 261, L3 index 321)
    let pages = (end - base).div_ceil(4096);
    if pages > 512 * 512 {
        return Err("the hypervisor image is too large");
    }
    let img_pdpt = mem::alloc_frame().ok_or("no memory for page tables")?;
    let img_pd = mem::alloc_frame().ok_or("no memory for page tables")?;
    let mut page = (start - base) / 4096;
    while page < pages {
        let (l2i, l1i) = ((page / 512) as usize, (page % 512) as usize);
        let mut l1 = read_entry(img_pd, l2i) >> 12 & 0xf_ffff_ffff;
        if read_entry(img_pd, l2i) & PTE_PRESENT == 0 {
            l1 = mem::alloc_frame().ok_or("no memory for page tables")?;
            write_entry(img_pd, l2i, (l1 << 12) | PTE_PRESENT | PTE_RW);
        }
        let v = base + page * 4096;
        let rights = if v < text_end {
            0
        } else if v < ro_end {
            nx
        } else {
            PTE_RW | nx
        };
        write_entry(
            l1,
            l1i,
            ((page * 4096) & !0xfff) | PTE_PRESENT | PTE_GLOBAL | rights,
        );
        page += 1;
    }
    let l3i = ((base >> 30) & 511) as usize;
    write_entry(img_pdpt, l3i, (img_pd << 12) | PTE_PRESENT | PTE_RW);
    let slot = |a: u64| ((a >> 39) & 511) as usize;
    write_entry(boot, slot(base), (img_pdpt << 12) | PTE_PRESENT | PTE_RW);
    write_entry(
        boot,
        slot(mem::DIRECTMAP_BASE),
        (dm_pdpt << 12) | PTE_PRESENT | PTE_RW,
    );
    // SAFETY: the new tables map the image at the same addresses (with narrower rights
    // that match what each section is used for) and the direct map identically, so the
    // code running now stays mapped; toggling CR4.PGE flushes global entries too.
    unsafe {
        let cr4: u64;
        core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack));
        core::arch::asm!("mov cr4, {}", in(reg) cr4 & !(1 << 7), options(nostack));
        core::arch::asm!("mov {t}, cr3", "mov cr3, {t}", t = out(reg) _, options(nostack));
        core::arch::asm!("mov cr4, {}", in(reg) cr4 | (1 << 7), options(nostack));
    }
    Ok(())
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
    harden(boot)?;
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
