//! Guest descriptor tables: `set_gdt` and `update_descriptor`.
//!
//! A guest's GDT frames are typed `SegDesc` by `hv_core::mm` (validated: no system
//! descriptors, DPL raised to 3; read-only to the guest from then on), and their
//! descriptors are copied into entries `0..FIRST_RESERVED` of the CPU's GDT, below the
//! hypervisor's own entries.

use crate::arch::gdt::{self, FIRST_RESERVED};
use crate::domain::{Domain, Vcpu};
use crate::mm::{HvMem, MMU};
use crate::pv;
use hv_core::frame::PageType;
use hv_core::mm::PhysMem;
use xen_abi::errno::*;

/// Most GDT frames a guest may give (`FIRST_RESERVED` entries, 512 per frame).
pub const MAX_GDT_FRAMES: usize = FIRST_RESERVED / 512;

/// How many guest entries each CPU's GDT holds now (so a switch touches only those).
static LOADED: [core::sync::atomic::AtomicUsize; crate::arch::percpu::MAX_CPUS] =
    [const { core::sync::atomic::AtomicUsize::new(0) }; crate::arch::percpu::MAX_CPUS];

/// Load vCPU `v`'s GDT descriptors into this CPU's GDT: its entries, and zeroes where
/// the previous vCPU had more. Most guests have none, so most switches write nothing.
pub fn load_guest_gdt(v: &Vcpu) {
    use core::sync::atomic::Ordering;
    let cpu = crate::arch::cpu::current_id() as usize;
    let g = gdt::gdt_ptr(cpu);
    let want = (v.gdt_ents as usize).min(FIRST_RESERVED);
    let had = LOADED
        .get(cpu)
        .map(|l| l.swap(want, Ordering::Relaxed))
        .unwrap_or(FIRST_RESERVED);
    for i in 0..want.max(had).min(FIRST_RESERVED) {
        let frame = i / 512;
        let val = if i < v.gdt_ents as usize {
            v.gdt_frames
                .get(frame)
                .map(|&mfn| HvMem.read_pte(mfn, i % 512))
                .unwrap_or(0)
        } else {
            0
        };
        // SAFETY: this CPU's own GDT, guest part (below FIRST_RESERVED); the values
        // come from validated SegDesc frames, so they are data/code descriptors of DPL 3.
        unsafe { (*g)[i] = val };
    }
}

/// `set_gdt(frame_list, entries)`.
pub fn set_gdt(d: &mut Domain, vi: usize, frame_list: u64, entries: u64) -> Result<u64, Errno> {
    if entries > FIRST_RESERVED as u64 {
        return Err(EINVAL);
    }
    let nr = (entries as usize).div_ceil(512);
    let v = d.vcpus.get(vi).ok_or(EINVAL)?;
    let mut frames: heapless::Vec<u64, MAX_GDT_FRAMES> = heapless::Vec::new();
    for i in 0..nr as u64 {
        let mfn: u64 = pv::read_arg(v, frame_list.wrapping_add(i * 8))?;
        frames.push(mfn).map_err(|_| EINVAL)?;
    }
    install_gdt(d, vi, &frames, entries as u32)?;
    if let Some(v) = d.vcpus.get(vi) {
        load_guest_gdt(v);
    }
    Ok(0)
}

/// Make `frames` (holding `entries` descriptors) vCPU `vi`'s GDT: type them SegDesc
/// (validating them), then drop the old ones. Does not load it on this CPU.
pub fn install_gdt(d: &mut Domain, vi: usize, frames: &[u64], entries: u32) -> Result<(), Errno> {
    if entries as usize > FIRST_RESERVED || frames.len() != (entries as usize).div_ceil(512) {
        return Err(EINVAL);
    }
    let frames: heapless::Vec<u64, MAX_GDT_FRAMES> = frames.iter().copied().collect();
    let id = d.id;
    {
        let mut guard = MMU.lock();
        let mmu = guard.as_mut().ok_or(ENOSYS)?;
        for (i, &mfn) in frames.iter().enumerate() {
            if let Err(e) = mmu.get_page_and_type(&mut HvMem, mfn, id, PageType::SegDesc) {
                for &taken in &frames[..i] {
                    mmu.put_page_and_type(&mut HvMem, taken);
                }
                return Err(e);
            }
        }
        // The new table holds; release the old one.
        let v = d.vcpus.get_mut(vi).ok_or(EINVAL)?;
        for &old in v.gdt_frames.iter() {
            mmu.put_page_and_type(&mut HvMem, old);
        }
        v.gdt_frames = frames;
        v.gdt_ents = entries;
    }
    Ok(())
}

/// Drop vCPU `vi`'s GDT references (domain teardown).
pub fn release_gdt(d: &mut Domain, vi: usize) {
    let Some(v) = d.vcpus.get_mut(vi) else { return };
    if let Some(mmu) = MMU.lock().as_mut() {
        for &f in v.gdt_frames.iter() {
            mmu.put_page_and_type(&mut HvMem, f);
        }
    }
    v.gdt_frames.clear();
    v.gdt_ents = 0;
}

/// `update_descriptor(ma, desc)`.
pub fn update_descriptor(d: &mut Domain, vi: usize, ma: u64, desc: u64) -> Result<u64, Errno> {
    if ma & 7 != 0 {
        return Err(EINVAL);
    }
    let desc = hv_core::mm::check_descriptor(desc)?;
    let (mfn, idx) = (ma >> 12, ((ma & 0xfff) / 8) as usize);
    let id = d.id;
    {
        let mut guard = MMU.lock();
        let mmu = guard.as_mut().ok_or(ENOSYS)?;
        let is_desc = mmu.frames().get(mfn).is_some_and(|f| {
            f.owned_by(id) && f.page_type() == PageType::SegDesc && f.type_count() > 0
        });
        let ty = if is_desc {
            PageType::SegDesc
        } else {
            PageType::Writable
        };
        mmu.get_page_and_type(&mut HvMem, mfn, id, ty)?;
        HvMem.write_pte(mfn, idx, desc);
        mmu.put_page_and_type(&mut HvMem, mfn);
    }
    if let Some(v) = d.vcpus.get(vi) {
        if v.gdt_frames.contains(&mfn) {
            load_guest_gdt(v);
        }
    }
    Ok(0)
}
