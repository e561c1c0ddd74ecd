//! Memory hypercalls: `memory_op`, and the PV MMU (`mmu_update`, `mmuext_op`,
//! `update_va_mapping`) whose rules live in `hv_core::mm`.

use crate::domain::Domain;
use crate::hypercall::Ret;
use crate::pv::{self, After};
use xen_abi::errno::*;

/// Where the read-only M2P table is in every guest (`MACH2PHYS_VIRT_START`).
pub const M2P_VIRT: u64 = xen_abi::mm::MACH2PHYS_VIRT_START;

fn wr(d: &Domain, vi: usize, va: u64, b: &[u8]) -> Result<(), Errno> {
    let v = d.vcpus.get(vi).ok_or(EINVAL)?;
    crate::guest_mem::copy_to_guest(pv::current_l4(v), va, b).map_err(|_| EFAULT)
}

fn rd<const N: usize>(d: &Domain, vi: usize, va: u64) -> Result<[u8; N], Errno> {
    let v = d.vcpus.get(vi).ok_or(EINVAL)?;
    let mut b = [0u8; N];
    crate::guest_mem::copy_from_guest(pv::current_l4(v), va, &mut b).map_err(|_| EFAULT)?;
    Ok(b)
}

/// `memory_op` sub-ops a PV kernel asks at boot.
pub fn memory_op(d: &mut Domain, vi: usize, a: [u64; 5]) -> Result<u64, Errno> {
    use xen_abi::memory::*;
    // The low 6 bits are the sub-op; the rest is a continuation's start extent.
    let op = (a[0] & 0x3f) as u32;
    match op {
        XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION => {
            let b: [u8; 2] = rd(d, vi, a[1])?;
            let dom = u16::from_le_bytes(b);
            if dom != xen_abi::xen::DOMID_SELF && dom != d.id {
                return Err(if d.privileged { ESRCH } else { EPERM });
            }
            Ok(if op == XENMEM_CURRENT_RESERVATION {
                d.tot_pages
            } else {
                d.max_pages
            })
        }
        XENMEM_MAXIMUM_RAM_PAGE => Ok(crate::mem::MAX_FRAMES as u64 - 1),
        XENMEM_MAXIMUM_GPFN => Ok(d.tot_pages.saturating_sub(1)),
        XENMEM_MEMORY_MAP | XENMEM_MACHINE_MEMORY_MAP => {
            let b: [u8; 16] = rd(d, vi, a[1])?;
            let nr = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let buf = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
            let mut entries: heapless::Vec<(u64, u64, u32), 128> = heapless::Vec::new();
            if op == XENMEM_MACHINE_MEMORY_MAP {
                if !d.privileged {
                    return Err(EPERM);
                }
                for r in crate::start::boot_info().memory.iter() {
                    let _ = entries.push((r.start, r.len, r.kind));
                }
            } else {
                // A PV guest's pseudo-physical map is one RAM range.
                let _ = entries.push((0, d.tot_pages * 4096, 1));
            }
            let n = entries.len().min(nr as usize);
            for (i, (start, len, kind)) in entries.iter().take(n).enumerate() {
                let mut e = [0u8; 20];
                e[..8].copy_from_slice(&start.to_le_bytes());
                e[8..16].copy_from_slice(&len.to_le_bytes());
                e[16..20].copy_from_slice(&kind.to_le_bytes());
                wr(d, vi, buf.wrapping_add(i as u64 * 20), &e)?;
            }
            wr(d, vi, a[1], &(n as u32).to_le_bytes())?;
            Ok(0)
        }
        XENMEM_MACHPHYS_MAPPING => {
            let mut out = [0u8; 24];
            let max_mfn = crate::mem::MAX_FRAMES as u64 - 1;
            out[..8].copy_from_slice(&M2P_VIRT.to_le_bytes());
            out[8..16].copy_from_slice(&(M2P_VIRT + (max_mfn + 1) * 8).to_le_bytes());
            out[16..24].copy_from_slice(&max_mfn.to_le_bytes());
            wr(d, vi, a[1], &out)?;
            Ok(0)
        }
        _ => Err(ENOSYS),
    }
}

pub fn mmu_update(_d: &mut Domain, _vi: usize, _a: [u64; 5]) -> (Ret, After) {
    (Ret::Err(ENOSYS), After::Resume)
}

pub fn mmuext_op(_d: &mut Domain, _vi: usize, _a: [u64; 5]) -> (Ret, After) {
    (Ret::Err(ENOSYS), After::Resume)
}

pub fn update_va_mapping(_d: &mut Domain, _vi: usize, _a: [u64; 5]) -> (Ret, After) {
    (Ret::Err(ENOSYS), After::Resume)
}
