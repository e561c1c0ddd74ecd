//! Grant tables (v1): the `grant_table_op` hypercall around `hv_core::grant`.
//!
//! The grant entries live in frames the granting guest writes; the hypervisor reads
//! and updates their header words only with locked instructions through the direct
//! map (`GrantMem` for `HvMem`). Lock order: `DOMAINS` → `MMU` → `GRANTS`.

use crate::domain::{DomId, DomainTable};
use crate::hypercall::Ret;
use crate::mem::phys_to_virt;
use crate::mm::{HvMem, MMU};
use crate::pv;
use hv_core::grant::{GnttabCmd, GrantLimits, GrantMem, Grants};
use hv_core::mm::Flush;
use spin::Mutex;
use xen_abi::errno::*;
use xen_abi::grant_table::*;

/// Every domain's grant table.
pub static GRANTS: Mutex<Option<Grants>> = Mutex::new(None);

fn entry_addr(mfn: u64, off: usize) -> u64 {
    phys_to_virt(mfn << 12) + (off as u64 & 0xff8)
}

impl GrantMem for HvMem {
    fn gnt_header(&self, mfn: u64, off: usize) -> u32 {
        // SAFETY: `mfn` is a grant-table frame of the frame table (in the direct map) and
        // `off` is an entry's offset (8-aligned, masked below 4096): an aligned 32-bit
        // volatile load, atomic on x86.
        unsafe { core::ptr::read_volatile(entry_addr(mfn, off) as *const u32) }
    }
    fn gnt_cmpxchg_header(&mut self, mfn: u64, off: usize, old: u32, new: u32) -> u32 {
        let found: u32;
        // SAFETY: as `gnt_header`; `lock cmpxchg` is atomic against the guest's writes.
        unsafe {
            core::arch::asm!("lock cmpxchg dword ptr [{p}], {n:e}", p = in(reg) entry_addr(mfn, off), n = in(reg) new, inout("eax") old => found, options(nostack));
        }
        found
    }
    fn gnt_frame(&self, mfn: u64, off: usize) -> u32 {
        // SAFETY: as `gnt_header`, for the entry's frame word (offset 4).
        unsafe { core::ptr::read_volatile((entry_addr(mfn, off) + 4) as *const u32) }
    }
    fn gnt_clear_flags(&mut self, mfn: u64, off: usize, bits: u16) {
        // SAFETY: as `gnt_header`; a locked 16-bit `and` on the flags word.
        unsafe {
            core::arch::asm!("lock and word ptr [{p}], {m:x}", p = in(reg) entry_addr(mfn, off), m = in(reg) !bits, options(nostack));
        }
    }
    fn copy_bytes(&mut self, dst: u64, dst_off: usize, src: u64, src_off: usize, len: usize) {
        if dst_off.saturating_add(len) > 4096 || src_off.saturating_add(len) > 4096 {
            return;
        }
        // SAFETY: both frames are in the direct map; `hv_core` checked the caller's rights
        // to both and the bounds (also checked above); `copy` tolerates overlap.
        unsafe {
            core::ptr::copy(
                (phys_to_virt(src << 12) + src_off as u64) as *const u8,
                (phys_to_virt(dst << 12) + dst_off as u64) as *mut u8,
                len,
            )
        }
    }
}

/// Give domain `d` an (empty) grant table.
pub fn create_domain(d: DomId, max_frames: u32) -> Result<(), Errno> {
    let mut g = GRANTS.lock();
    let grants = g.get_or_insert_with(Grants::new);
    let mut limits = GrantLimits::XEN_DEFAULT;
    limits.max_grant_frames = max_frames.clamp(1, limits.max_grant_frames);
    grants.create_domain(d, limits)
}

/// Tear down `d`'s grant state: its own mappings (bounded steps), then its table.
/// Returns Ok(true) while work remains or others still map its grants.
pub fn destroy_domain(d: DomId) -> Result<bool, Errno> {
    let mut mg = MMU.lock();
    let mmu = mg.as_mut().ok_or(ENOSYS)?;
    let mut g = GRANTS.lock();
    let Some(grants) = g.as_mut() else {
        return Ok(false);
    };
    if grants.table(d).is_none() {
        return Ok(false);
    }
    // `release_mappings` says whether it finished; if not, come back for more.
    if !grants.release_mappings(mmu, &mut HvMem, d, 64)? {
        return Ok(true);
    }
    match grants.destroy_domain(mmu, &mut HvMem, d) {
        Ok(()) => Ok(false),
        Err(e) if e == EBUSY => Ok(true),
        Err(e) => Err(e),
    }
}

const BATCH: u32 = 64;

/// `grant_table_op(cmd, uop, count)`.
pub fn grant_table_op(t: &mut DomainTable, me: DomId, vi: usize, a: [u64; 5]) -> Ret {
    let (cmd, uop, count) = (a[0] as u32, a[1], a[2] as u32);
    let Some(d) = t.get(me) else {
        return Ret::Err(ESRCH);
    };
    let privileged = d.privileged;
    let Some(v) = d.vcpus.get(vi) else {
        return Ret::Err(EINVAL);
    };
    let l4 = pv::current_l4(v);
    let vmm = v.mm;
    let cmd = match hv_core::grant::decode_cmd(cmd) {
        Ok(c) => c,
        Err(e) => return Ret::Err(e),
    };
    // As Xen's do_grant_table_op: a count that is negative as an int is refused before
    // anything is read, and the table sub-ops take exactly one argument.
    if (count as i32) < 0
        || (matches!(cmd, GnttabCmd::SetupTable | GnttabCmd::QuerySize) && count != 1)
    {
        return Ret::Err(EINVAL);
    }
    let mut mg = MMU.lock();
    let Some(mmu) = mg.as_mut() else {
        return Ret::Err(ENOSYS);
    };
    let mut gg = GRANTS.lock();
    let Some(grants) = gg.as_mut() else {
        return Ret::Err(ENOSYS);
    };
    let n = count.min(BATCH);
    macro_rules! each {
        ($ty:ty, $size:expr, |$op:ident| $body:block) => {{
            for i in 0..u64::from(n) {
                let va = uop.wrapping_add(i * $size);
                let mut $op: $ty = match crate::guest_mem::read(l4, va) {
                    Ok(o) => o,
                    Err(_) => return Ret::Err(EFAULT),
                };
                $body
                if crate::guest_mem::write(l4, va, &$op).is_err() {
                    return Ret::Err(EFAULT);
                }
            }
        }};
    }
    match cmd {
        GnttabCmd::SetupTable => each!(GnttabSetupTable, 24, |op| {
            op.status = match grants.decode_setup_table(me, privileged, &op) {
                Err(e) => e.status(),
                Ok(req) => {
                    let mut frames: heapless::Vec<u64, 64> = heapless::Vec::new();
                    let mut ok = true;
                    for _ in 0..req.grow {
                        match crate::mem::alloc_frame() {
                            Some(f) if frames.push(f).is_ok() => {}
                            Some(f) => {
                                crate::mem::free_frame(f);
                                ok = false;
                            }
                            None => ok = false,
                        }
                    }
                    let r = if ok {
                        grants.perform_setup_table(mmu, &mut HvMem, req, &frames)
                    } else {
                        Err(hv_core::grant::GntError::General)
                    };
                    match r {
                        Ok(()) => {
                            let list = grants.table(req.dom).map(|t| t.frames()).unwrap_or(&[]);
                            let mut status = GNTST_OKAY;
                            for (j, &f) in list.iter().take(req.nr_frames as usize).enumerate() {
                                if crate::guest_mem::write(
                                    l4,
                                    op.frame_list.wrapping_add(j as u64 * 8),
                                    &f,
                                )
                                .is_err()
                                {
                                    status = GNTST_BAD_VIRT_ADDR;
                                }
                            }
                            status
                        }
                        Err(e) => {
                            for f in frames {
                                crate::mem::free_frame(f);
                            }
                            e.status()
                        }
                    }
                }
            };
        }),
        GnttabCmd::QuerySize => each!(GnttabQuerySize, 16, |op| {
            match grants.query_size(me, privileged, &op) {
                Ok((nr, max)) => {
                    op.nr_frames = nr;
                    op.max_nr_frames = max;
                    op.status = GNTST_OKAY;
                }
                Err(e) => op.status = e.status(),
            }
        }),
        GnttabCmd::MapGrantRef => {
            let mut flush = Flush::None;
            each!(GnttabMapGrantRef, 32, |op| {
                flush = flush.merge(grants.map_grant_ref(mmu, &mut HvMem, me, &vmm, &mut op));
            });
            crate::mm::perform(flush);
        }
        GnttabCmd::UnmapGrantRef => {
            let mut tokens: heapless::Vec<hv_core::grant::Unmapped, 64> = heapless::Vec::new();
            let mut flush = Flush::None;
            each!(GnttabUnmapGrantRef, 24, |op| {
                if let Some(tok) = grants.unmap_grant_ref(mmu, &mut HvMem, me, &mut op) {
                    flush = flush.merge(tok.flush());
                    if let Err(tok) = tokens.push(tok) {
                        grants.complete_unmap(mmu, &mut HvMem, tok);
                    }
                }
            });
            // The mappings are gone from the page tables: flush, then drop the pins.
            crate::mm::perform(flush);
            if !matches!(flush, Flush::None) {
                crate::mm::flush_everywhere();
            }
            for tok in tokens {
                grants.complete_unmap(mmu, &mut HvMem, tok);
            }
        }
        GnttabCmd::Copy => each!(GnttabCopy, 40, |op| {
            grants.copy(mmu, &mut HvMem, me, &mut op);
        }),
        GnttabCmd::SetVersion => {
            let mut b = [0u8; 4];
            if crate::guest_mem::copy_from_guest(l4, uop, &mut b).is_err() {
                return Ret::Err(EFAULT);
            }
            match hv_core::grant::set_version(u32::from_le_bytes(b)) {
                Ok(v) => {
                    if crate::guest_mem::copy_to_guest(l4, uop, &v.to_le_bytes()).is_err() {
                        return Ret::Err(EFAULT);
                    }
                }
                Err(e) => return Ret::Err(e),
            }
        }
        GnttabCmd::GetVersion => {
            // struct gnttab_get_version { domid_t dom; uint16_t pad; uint32_t version; }
            let mut b = [0u8; 8];
            if crate::guest_mem::copy_from_guest(l4, uop, &mut b).is_err() {
                return Ret::Err(EFAULT);
            }
            b[4..8].copy_from_slice(&1u32.to_le_bytes());
            if crate::guest_mem::copy_to_guest(l4, uop, &b).is_err() {
                return Ret::Err(EFAULT);
            }
        }
    }
    if count > n {
        let size = match cmd {
            GnttabCmd::SetupTable => 24,
            GnttabCmd::QuerySize => 16,
            GnttabCmd::MapGrantRef => 32,
            GnttabCmd::UnmapGrantRef => 24,
            GnttabCmd::Copy => 40,
            _ => 0,
        };
        return Ret::Continue([
            a[0],
            uop.wrapping_add(u64::from(n) * size),
            u64::from(count - n),
            a[3],
            a[4],
        ]);
    }
    Ret::Value(0)
}
