//! Page-table updates the hypervisor must refuse, with Xen's error codes.
//!
//! Errnos observed on Xen 4.17.7 (Debian 4.17.7+13-g2445b30a44-0+deb12u1, `debug=n`)
//! with the command in `checks.rs`' header: each refusal was first asserted against a
//! placeholder and the failure line printed the real result, e.g.
//! `pvcpu: mmu-refusals: FAIL (a) writable mapping of an L1 table: mmu_update gave
//! Err(Errno(16)) (expected -22)`; then these constants were set and all five pass.
//! (a) a writable mapping of one of our L1 tables                  -> -EBUSY (16)
//! (b) a mapping of a frame we do not own (a hypervisor L3)        -> -EBUSY (16)
//! (c) an L4 write into the hypervisor's slots 256..271            -> -EINVAL (22)
//! (d) a writable self-referencing (linear) L4 entry               -> -EINVAL (22)
//! (e) a superpage (PSE) L2 entry                                  -> -EINVAL (22)

use crate::ensure;
use crate::guest::Outcome;
use alloc::format;
use guest_sdk::mm::{self, make_pte, pte_mfn, PAGE_KERNEL, PAGE_KERNEL_RO};
use guest_sdk::xen_abi::errno::{Errno, EBUSY, EINVAL};
use guest_sdk::xen_abi::mm::{
    HYPERVISOR_L4_FIRST, HYPERVISOR_L4_LAST, PAGE_SIZE, PTE_ACCESSED, PTE_PRESENT, PTE_PSE, PTE_RW,
    PTE_USER, UVMF_INVLPG,
};

/// (a) Xen 4.17: `get_page_from_l1e` cannot take a writable type on a page table.
pub const EXPECT_RW_PT: Errno = EBUSY;
/// (b) Xen 4.17: `get_page_from_l1e`, "pg_owner d0 l1e_owner d0, but real_pg_owner ...".
pub const EXPECT_FOREIGN: Errno = EBUSY;
/// (c) Xen 4.17: `mod_l4_entry`, "L4 update in Xen-private area".
pub const EXPECT_XEN_SLOT: Errno = EINVAL;
/// (d) Xen 4.17: `get_l4_linear_pagetable`, "Attempt to create linear p.t. with write
/// perms".
pub const EXPECT_LINEAR_RW: Errno = EINVAL;
/// (e) Xen 4.17: `get_page_from_l2e` refuses `_PAGE_PSE` for PV guests.
pub const EXPECT_PSE: Errno = EINVAL;

/// A zeroed page from the heap (the start-of-day region, so its MFN is in the P2M),
/// never freed: the checks turn some into page tables.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub va: u64,
    pub mfn: u64,
}

impl Page {
    pub fn alloc() -> Option<Page> {
        let layout =
            core::alloc::Layout::from_size_align(PAGE_SIZE as usize, PAGE_SIZE as usize).ok()?;
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
        if p.is_null() {
            return None;
        }
        let va = p as u64;
        let mfn = mm::virt_to_mfn(va)?;
        Some(Page { va, mfn })
    }

    /// Remap the page at its own address, writable or read-only.
    pub fn remap(&self, writable: bool) -> Result<(), Errno> {
        let flags = if writable {
            PAGE_KERNEL
        } else {
            PAGE_KERNEL_RO
        };
        // SAFETY: the page is ours and no Rust reference points into it.
        unsafe {
            guest_sdk::hypercall::update_va_mapping(self.va, make_pte(self.mfn, flags), UVMF_INVLPG)
        }
    }

    /// Write entry `i` (while the page is still writable).
    pub fn set(&self, i: usize, v: u64) {
        if i < 512 {
            // SAFETY: in-bounds u64 of our own mapped page; no reference into it exists.
            unsafe { (self.va as *mut u64).add(i).write_volatile(v) };
        }
    }

    pub fn get(&self, i: usize) -> u64 {
        if i < 512 {
            // SAFETY: in-bounds u64 of our own mapped page.
            unsafe { (self.va as *const u64).add(i).read_volatile() }
        } else {
            0
        }
    }
}

/// Read entry `i` of the start-of-day page table with machine frame `mfn`.
fn table_entry(mfn: u64, i: usize) -> u64 {
    let va = mm::pfn_to_virt(mm::mfn_to_pfn(mfn));
    // SAFETY: start-of-day page tables are mapped (read-only) in the start-of-day region
    // at `pfn_to_virt(pfn)`; reading is allowed. `i < 512`.
    unsafe { (va as *const u64).add(i & 511).read_volatile() }
}

fn own(mfn: u64) -> bool {
    let pfn = mm::mfn_to_pfn(mfn);
    pfn < guest_sdk::start_info().nr_pages && mm::pfn_to_mfn(pfn) == Some(mfn)
}

/// `mmu_update` of one PTE at `maddr`; if a refused update was accepted, put `old` back.
fn refused(maddr: u64, new: u64, old: u64, want: Errno, what: &str) -> Outcome {
    let r = mm::set_pte(maddr, new);
    if r.is_ok() {
        let _ = mm::set_pte(maddr, old);
        let _ = mm::tlb_flush_local();
    }
    ensure!(
        r == Err(want),
        "{what}: mmu_update gave {r:?} (expected -{})",
        want.0
    );
    Ok(())
}

/// Five updates Xen refuses, each with its errno; then a legal update still works.
pub fn mmu_refusals() -> Outcome {
    let e = |what: &'static str| move |e: Errno| format!("{what}: -{}", e.0);
    let si = guest_sdk::start_info();
    let l4_mfn = mm::virt_to_mfn(si.pt_base).ok_or("pt_base outside the P2M")?;
    let p = Page::alloc().ok_or("no free page")?;
    let q = Page::alloc().ok_or("no free page")?;
    let (q_pte, q_maddr) = mm::walk(q.va, 1).ok_or("no L1 entry for the scratch page")?;
    let (q_l2e, _) = mm::walk(q.va, 2).ok_or("no L2 entry for the scratch page")?;
    let l1_mfn = pte_mfn(q_l2e);

    // (a) map our own L1 table writable.
    refused(
        q_maddr,
        make_pte(l1_mfn, PAGE_KERNEL),
        q_pte,
        EXPECT_RW_PT,
        "(a) writable mapping of an L1 table",
    )?;

    // (b) map a frame we do not own: the L3 behind the first present hypervisor L4 slot
    // that is not our own L4 (the linear slot).
    let foreign = (HYPERVISOR_L4_FIRST..=HYPERVISOR_L4_LAST)
        .map(|i| table_entry(l4_mfn, i))
        .filter(|e| e & PTE_PRESENT != 0)
        .map(pte_mfn)
        .find(|&m| m != l4_mfn && !own(m))
        .ok_or("no hypervisor frame found in L4 slots 256..271")?;
    refused(
        q_maddr,
        make_pte(foreign, PAGE_KERNEL_RO),
        q_pte,
        EXPECT_FOREIGN,
        "(b) mapping a frame we do not own",
    )?;

    // (c) write an L4 entry in the hypervisor's slots: our kernel L3 into slot 256.
    let slot = HYPERVISOR_L4_FIRST;
    let kernel_l4e = table_entry(l4_mfn, mm::table_index(guest_sdk::KERNEL_BASE, 4));
    refused(
        (l4_mfn << 12) + slot as u64 * 8,
        kernel_l4e,
        table_entry(l4_mfn, slot),
        EXPECT_XEN_SLOT,
        "(c) L4 slot 256",
    )?;

    // (d) a writable linear (self-referencing) L4 entry in a free guest slot.
    let free = (1..HYPERVISOR_L4_FIRST)
        .rev()
        .find(|&i| table_entry(l4_mfn, i) == 0)
        .ok_or("no free L4 slot")?;
    refused(
        (l4_mfn << 12) + free as u64 * 8,
        make_pte(l4_mfn, PTE_PRESENT | PTE_RW | PTE_USER | PTE_ACCESSED),
        0,
        EXPECT_LINEAR_RW,
        "(d) writable linear L4 entry",
    )?;

    // (e) a 2 MiB superpage in a free slot of the kernel's L2, over our own frames.
    let (_, l2e_maddr) = mm::walk(guest_sdk::KERNEL_BASE, 2).ok_or("no kernel L2")?;
    let l2_mfn = l2e_maddr >> 12;
    let free = (0..512)
        .rev()
        .find(|&i| table_entry(l2_mfn, i) == 0)
        .ok_or("no free L2 slot")?;
    let base = mm::virt_to_mfn(guest_sdk::KERNEL_BASE).ok_or("kernel base outside P2M")? & !511;
    refused(
        (l2_mfn << 12) + free as u64 * 8,
        make_pte(
            base,
            PTE_PRESENT | PTE_RW | PTE_USER | PTE_ACCESSED | PTE_PSE,
        ),
        0,
        EXPECT_PSE,
        "(e) PSE L2 entry",
    )?;

    // Nothing changed behind our back.
    let now = mm::walk(q.va, 1).map(|(pte, _)| pte);
    ensure!(
        now == Some(q_pte),
        "scratch PTE now {now:x?}, was {q_pte:#x}"
    );

    // A legal update: alias `p` at `q`'s address, write through the alias, read back.
    mm::set_pte(q_maddr, make_pte(p.mfn, PAGE_KERNEL)).map_err(e("legal mmu_update"))?;
    mm::invlpg_local(q.va).map_err(e("invlpg"))?;
    let magic = 0x7076_6370_755f_6f6b;
    q.set(7, magic);
    let seen = p.get(7);
    let restore = mm::set_pte(q_maddr, q_pte);
    let _ = mm::invlpg_local(q.va);
    ensure!(
        seen == magic,
        "write through the alias read back {seen:#x} from the page"
    );
    restore.map_err(e("restoring the scratch PTE"))?;
    ensure!(q.get(7) == 0, "scratch page not restored");
    Ok(())
}
