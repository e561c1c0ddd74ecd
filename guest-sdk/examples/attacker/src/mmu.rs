//! Page-table attacks: mappings of frames that are not ours, writable mappings of page
//! tables, the hypervisor's L4 slots, pinning and base pointers on frames that are not
//! page tables of ours, `update_va_mapping` into the hypervisor's range, and malformed
//! `mmu_update`/`mmuext_op` requests (bad pointers, huge counts, unknown commands).
//!
//! The expected answers are Xen 4.17's (`xen/arch/x86/mm.c`, stable-4.17):
//! `get_page_from_l1e` gives `-EBUSY` for a frame owned by someone else or by nobody and
//! for a writable mapping of a page table ("could_not_pin"), `-EPERM` for a frame that is
//! not RAM or belongs to `dom_io` ("non-privileged attempt to map MMIO space");
//! `mod_l4_entry` gives `-EINVAL` for the hypervisor's slots; `do_mmu_update` gives
//! `-EINVAL` when the page-table frame is not the caller's ("Could not get page for
//! normal update") and `-ENOSYS` for an unknown command; `guest_handle_okay` gives
//! `-EFAULT` for a request list in the hypervisor's range or non-canonical.

use crate::support::*;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use guest_sdk::hypercall;
use guest_sdk::mm::{self, make_pte, pte_mfn, PAGE_KERNEL, PAGE_KERNEL_RO};
use xen_abi::errno::*;
use xen_abi::hypercall as nr;
use xen_abi::mm::*;
use xen_abi::xen::DOMID_SELF;

/// A scratch page and the L1 entry that maps it: the PTE the attacks rewrite.
struct Scratch {
    page: Page,
    pte: u64,
    maddr: u64,
}

fn scratch() -> Result<Scratch, String> {
    let page = Page::alloc()?;
    let (pte, maddr) = page.pte()?;
    Ok(Scratch { page, pte, maddr })
}

/// `mmu_update` of the PTE at `maddr`; a refused update that was accepted is undone.
fn try_pte(maddr: u64, new: u64, old: u64) -> Result<u64, Errno> {
    let r = mm::set_pte(maddr, new);
    if r.is_ok() {
        let _ = mm::set_pte(maddr, old);
        let _ = mm::tlb_flush_local();
    }
    r.map(|_| 0)
}

fn one_req(ptr: u64, val: u64, foreigndom: u16) -> Result<u64, Errno> {
    hypercall::mmu_update(&[MmuUpdate { ptr, val }], foreigndom).map(|_| 0)
}

fn ext(cmd: u32, arg1: u64, arg2: u64) -> Result<u64, Errno> {
    let op = [MmuextOp {
        cmd,
        _pad: 0,
        arg1,
        arg2,
    }];
    // SAFETY: every op issued here must be refused; if one is wrongly accepted it
    // changes a frame's type or our base pointer, which the attack then reports (and
    // undoes where it can). No guest pointer is passed.
    unsafe { hypercall::mmuext_op(&op, DOMID_SELF) }.map(|_| 0)
}

/// Read-only and writable mappings of a hypervisor frame (an L3 behind our L4's
/// hypervisor slots): `-EBUSY` (owner is not us).
pub fn map_xen_frame() -> Outcome {
    let s = scratch()?;
    let xen = xen_frame()?;
    all_agree(&[
        (
            format!("read-only map of mfn {xen:#x}"),
            try_pte(s.maddr, make_pte(xen, PAGE_KERNEL_RO), s.pte),
            Err(EBUSY),
        ),
        (
            format!("writable map of mfn {xen:#x}"),
            try_pte(s.maddr, make_pte(xen, PAGE_KERNEL), s.pte),
            Err(EBUSY),
        ),
    ])
}

/// Mappings of what is not RAM of ours: the local APIC page, the VGA text buffer (low
/// 1 MiB: `dom_io`'s), a frame far beyond RAM: `-EPERM` each.
pub fn map_mmio() -> Outcome {
    let s = scratch()?;
    let cases = [
        ("local APIC mfn 0xfee00", 0xfee00u64),
        ("VGA mfn 0xb8", 0xb8),
        ("huge mfn 0x7fffffffff", 0x7f_ffff_ffff),
    ];
    let v: Vec<_> = cases
        .iter()
        .map(|&(what, mfn)| {
            (
                what.into(),
                try_pte(s.maddr, make_pte(mfn, PAGE_KERNEL_RO), s.pte),
                Err(EPERM),
            )
        })
        .collect();
    all_agree(&v)
}

/// Every `step`-th frame of the machine that is not ours, mapped read-only: none may be
/// mapped (Xen: `-EBUSY` for RAM of another owner or of nobody, `-EPERM` for I/O).
pub fn scan() -> Outcome {
    const STEP: u64 = 13;
    let s = scratch()?;
    // SAFETY: XENMEM_maximum_ram_page takes no argument.
    let max = unsafe {
        hcall(
            nr::MEMORY_OP,
            [xen_abi::memory::XENMEM_MAXIMUM_RAM_PAGE as u64, 0, 0, 0, 0],
        )
    }
    .map_err(|e| format!("XENMEM_maximum_ram_page: -{}", e.0))?;
    let shared_info_mfn = guest_sdk::start_info().shared_info >> 12;
    let (mut tried, mut ebusy, mut eperm) = (0u64, 0u64, 0u64);
    let mut bad = Vec::new();
    let mut mfn = 1;
    while mfn <= max {
        if mfn != shared_info_mfn && !own(mfn) {
            tried += 1;
            match try_pte(s.maddr, make_pte(mfn, PAGE_KERNEL_RO), s.pte) {
                Err(EBUSY) => ebusy += 1,
                Err(EPERM) => eperm += 1,
                r => {
                    if bad.len() < 8 {
                        bad.push(format!("mfn {mfn:#x}: {}", show(r)));
                    }
                }
            }
        }
        mfn += STEP;
    }
    if !bad.is_empty() {
        return Err(format!(
            "{} of {tried} frames not ours were not refused with -EBUSY/-EPERM (Xen 4.17's answers): {}",
            tried - ebusy - eperm,
            bad.join("; ")
        ));
    }
    if tried == 0 {
        return Err("no frame to try".into());
    }
    Ok(format!(
        "{tried} frames up to {max:#x} not ours: -16 EBUSY x{ebusy}, -1 EPERM x{eperm}"
    ))
}

/// Writable mappings of our own page tables (the L1 mapping the scratch page, our L4):
/// `-EBUSY`; a writable self-map (linear) L4 entry: `-EINVAL`.
pub fn writable_page_tables() -> Outcome {
    let s = scratch()?;
    let l4 = l4_mfn()?;
    let (l2e, _) = mm::walk(s.page.va, 2).ok_or("no L2 entry")?;
    let l1 = pte_mfn(l2e);
    let free = (1..HYPERVISOR_L4_FIRST)
        .rev()
        .find(|&i| table_entry(l4, i) == 0)
        .ok_or("no free L4 slot")?;
    all_agree(&[
        (
            "writable map of our L1".into(),
            try_pte(s.maddr, make_pte(l1, PAGE_KERNEL), s.pte),
            Err(EBUSY),
        ),
        (
            "writable map of our L4".into(),
            try_pte(s.maddr, make_pte(l4, PAGE_KERNEL), s.pte),
            Err(EBUSY),
        ),
        (
            format!("writable linear L4 entry in slot {free}"),
            try_pte(
                (l4 << 12) + free as u64 * 8,
                make_pte(l4, PTE_PRESENT | PTE_RW | PTE_USER | PTE_ACCESSED),
                0,
            ),
            Err(EINVAL),
        ),
    ])
}

/// Writes into our L4's hypervisor slots 256..271: our kernel L3 into each, and zero
/// into each (which would unmap the hypervisor under our CR3): `-EINVAL` for all 32.
pub fn xen_slots() -> Outcome {
    let l4 = l4_mfn()?;
    let kernel_l4e = table_entry(l4, mm::table_index(guest_sdk::KERNEL_BASE, 4));
    let mut v = Vec::new();
    for slot in HYPERVISOR_L4_FIRST..=HYPERVISOR_L4_LAST {
        let old = table_entry(l4, slot);
        let maddr = (l4 << 12) + slot as u64 * 8;
        v.push((
            format!("slot {slot} := our L3"),
            try_pte(maddr, kernel_l4e, old),
            Err(EINVAL),
        ));
        v.push((
            format!("slot {slot} := 0"),
            try_pte(maddr, 0, old),
            Err(EINVAL),
        ));
    }
    all_agree(&v)
}

/// `mmu_update` requests whose page-table frame is the hypervisor's (a PTE write and an
/// M2P update): `-EINVAL`; an unknown request type (`ptr & 7 == 7`): `-ENOSYS`.
pub fn write_xen_frames() -> Outcome {
    let s = scratch()?;
    let xen = xen_frame()?;
    all_agree(&[
        (
            format!("PTE write into mfn {xen:#x}"),
            one_req(xen << 12, 0, DOMID_SELF),
            Err(EINVAL),
        ),
        (
            format!("MMU_MACHPHYS_UPDATE of mfn {xen:#x}"),
            one_req((xen << 12) | MMU_MACHPHYS_UPDATE, 0, DOMID_SELF),
            Err(EINVAL),
        ),
        (
            "request type 7".into(),
            one_req(s.maddr | 7, s.pte, DOMID_SELF),
            Err(ENOSYS),
        ),
    ])
}

/// `MMUEXT_PIN_L4_TABLE` of what is not a page table: a page mapped writable, a
/// read-only page whose entry 0 points at a hypervisor frame, the hypervisor frame
/// itself; `MMUEXT_NEW_BASEPTR` to the hypervisor frame: `-EINVAL` each. A pin that is
/// wrongly accepted is undone.
pub fn pin_non_tables() -> Outcome {
    let xen = xen_frame()?;
    let rw = Page::alloc()?;
    rw.set(0, 0x1234_5678_9abc_d000);
    let bad = Page::alloc()?;
    bad.set(
        0,
        make_pte(xen, PTE_PRESENT | PTE_RW | PTE_USER | PTE_ACCESSED),
    );
    bad.remap(false)
        .map_err(|e| format!("remapping a page read-only: -{}", e.0))?;
    let pin = |mfn: u64| {
        let r = ext(MMUEXT_PIN_L4_TABLE, mfn, 0);
        if r.is_ok() {
            let _ = ext(MMUEXT_UNPIN_TABLE, mfn, 0);
        }
        r
    };
    let cases = [
        (
            "pin L4: writable data page".into(),
            pin(rw.mfn),
            Err(EINVAL),
        ),
        (
            "pin L4: page pointing at a hypervisor frame".into(),
            pin(bad.mfn),
            Err(EINVAL),
        ),
        (
            format!("pin L4: hypervisor mfn {xen:#x}"),
            pin(xen),
            Err(EINVAL),
        ),
        (
            format!("pin L1: hypervisor mfn {xen:#x}"),
            {
                let r = ext(MMUEXT_PIN_L1_TABLE, xen, 0);
                if r.is_ok() {
                    let _ = ext(MMUEXT_UNPIN_TABLE, xen, 0);
                }
                r
            },
            Err(EINVAL),
        ),
        (
            format!("new_baseptr: hypervisor mfn {xen:#x}"),
            ext(MMUEXT_NEW_BASEPTR, xen, 0),
            Err(EINVAL),
        ),
    ];
    let _ = bad.remap(true);
    all_agree(&cases)
}

/// `MMUEXT_SET_LDT` at the hypervisor's address: `-EINVAL`; an unknown `mmuext_op`
/// command: `-ENOSYS`.
pub fn mmuext_misc() -> Outcome {
    all_agree(&[
        (
            "set_ldt at the M2P".into(),
            ext(MMUEXT_SET_LDT, M2P, 1),
            Err(EINVAL),
        ),
        (
            "set_ldt at Xen text".into(),
            ext(MMUEXT_SET_LDT, XEN_TEXT & !0xfff, 1),
            Err(EINVAL),
        ),
        ("mmuext cmd 99".into(), ext(99, 0, 0), Err(ENOSYS)),
    ])
}

/// `update_va_mapping` of one of our frames at the hypervisor's addresses and at a
/// non-canonical one: `-EINVAL` (`map_guest_l1e` refuses `!__addr_ok`).
pub fn uvm_xen_range() -> Outcome {
    let p = Page::alloc()?;
    let v: Vec<_> = BAD_POINTERS
        .iter()
        .map(|&(what, va)| {
            let va = va & !0xfff;
            // SAFETY: the hypervisor must refuse; if it maps our page there, nothing of
            // ours refers to that address.
            let r = unsafe {
                hypercall::update_va_mapping(va, make_pte(p.mfn, PAGE_KERNEL), UVMF_INVLPG)
            };
            (format!("at {what} {va:#x}"), r.map(|_| 0), Err(EINVAL))
        })
        .collect();
    all_agree(&v)
}

/// `mmu_update` and `mmuext_op` whose request list is in the hypervisor's range or
/// non-canonical: `-EFAULT`.
pub fn bad_request_lists() -> Outcome {
    let mut v = Vec::new();
    for (what, ptr) in BAD_POINTERS {
        let mut done = 0u32;
        let done_p = &mut done as *mut u32 as u64;
        // SAFETY: the request list is a pointer the hypervisor must refuse; `done` is ours.
        let r = unsafe { hcall(nr::MMU_UPDATE, [ptr, 1, done_p, DOMID_SELF as u64, 0]) };
        v.push((format!("mmu_update list at {what}"), r, Err(EFAULT)));
        // SAFETY: as above.
        let r = unsafe { hcall(nr::MMUEXT_OP, [ptr, 1, done_p, DOMID_SELF as u64, 0]) };
        v.push((format!("mmuext_op list at {what}"), r, Err(EFAULT)));
    }
    all_agree(&v)
}

/// `mmu_update` whose `done` pointer is the M2P (readable by us, never writable): Xen
/// performs the (legal, no-op) update, cannot write `done` and returns 0; the M2P entry
/// it would have overwritten must not change.
pub fn done_in_m2p() -> Outcome {
    let s = scratch()?;
    let before = peek(M2P).ok_or("cannot read M2P[0]")?;
    let req = [MmuUpdate {
        ptr: s.maddr,
        val: s.pte,
    }];
    // SAFETY: `req` is live; `done` points at the read-only M2P, which the hypervisor
    // must not write.
    let r = unsafe {
        hcall(
            nr::MMU_UPDATE,
            [req.as_ptr() as u64, 1, M2P, DOMID_SELF as u64, 0],
        )
    };
    let after = peek(M2P).ok_or("cannot read M2P[0]")?;
    if after != before {
        return Err(format!(
            "the hypervisor wrote `done` into its M2P: entry 0 {before:#x} -> {after:#x} (result {})",
            show(r)
        ));
    }
    match mismatch("mmu_update with done in the M2P", r, Ok(0)) {
        None => Ok("accepted as on Xen 4.17 (the update is legal), M2P untouched".into()),
        Some(m) => Err(format!("{m}; M2P untouched")),
    }
}

/// `mmu_update` and `mmuext_op` with count 0xffffffff over a list whose first entry is
/// legal and whose second lies in an unmapped guard page: `-EFAULT` at the guard, not
/// a run through memory.
pub fn huge_counts() -> Outcome {
    let s = scratch()?;
    let g = guarded_page()?;
    // mmu_update: 16-byte requests; the last one of the page is a legal no-op.
    let at = g.va + PAGE_SIZE - 16;
    // SAFETY: `at` is the last 16 bytes of our own guarded page; no reference into it.
    unsafe {
        (at as *mut u64).write_volatile(s.maddr);
        ((at + 8) as *mut u64).write_volatile(s.pte);
    }
    // SAFETY: the list is ours up to the guard page, which the hypervisor must not
    // read past (it faults there); `done` is null.
    let r1 = unsafe { hcall(nr::MMU_UPDATE, [at, 0xffff_ffff, 0, DOMID_SELF as u64, 0]) };
    // mmuext_op: 24-byte ops; the last one of the page is a local TLB flush.
    let at = g.va + PAGE_SIZE - 24;
    // SAFETY: as above.
    unsafe {
        (at as *mut u32).write_volatile(MMUEXT_TLB_FLUSH_LOCAL);
        ((at + 8) as *mut u64).write_volatile(0);
        ((at + 16) as *mut u64).write_volatile(0);
    }
    // SAFETY: as above.
    let r2 = unsafe { hcall(nr::MMUEXT_OP, [at, 0xffff_ffff, 0, DOMID_SELF as u64, 0]) };
    all_agree(&[
        ("mmu_update x 0xffffffff".into(), r1, Err(EFAULT)),
        ("mmuext_op x 0xffffffff".into(), r2, Err(EFAULT)),
    ])
}
