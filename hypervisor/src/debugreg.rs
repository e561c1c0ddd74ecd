//! Guest debug registers: `set_debugreg`/`get_debugreg` and `mov %dbN` emulation.
//!
//! Values are audited as Xen's `set_debugreg` does (SECURITY.md D5, XSA-12/444): no
//! breakpoint address in the hypervisor's range or non-canonical, no reserved DR7 bits,
//! no general-detect. They are kept per vCPU and read back; they are not loaded into
//! the hardware, so guest breakpoints do not fire (documented limitation).

use crate::domain::Vcpu;
use xen_abi::errno::*;
use xen_abi::mm::{HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};

/// DR6 bits that always read as 1, and DR7's.
const DR6_ONES: u64 = 0xffff_0ff0;
const DR7_ONES: u64 = 0x400;
/// DR7: reserved bits (11, 12, 14, 15, 32..63) and general detect (13).
const DR7_BAD: u64 = (0b11011 << 11) | (0xffff_ffff << 32);

/// Decode and check a value for debug register `reg`; returns what to store.
pub fn check(reg: u32, value: u64) -> Result<u64, Errno> {
    match reg {
        0..=3 => {
            let top = value >> 47;
            if (top != 0 && top != 0x1ffff)
                || (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&value)
            {
                return Err(EPERM);
            }
            Ok(value)
        }
        6 => {
            if value >> 32 != 0 {
                return Err(EPERM);
            }
            Ok(value | DR6_ONES)
        }
        7 => {
            if value & DR7_BAD != 0 {
                return Err(EPERM);
            }
            Ok(value | DR7_ONES)
        }
        _ => Err(EINVAL),
    }
}

/// `set_debugreg(reg, value)`.
pub fn set(v: &mut Vcpu, reg: u64, value: u64) -> Result<u64, Errno> {
    let r = u32::try_from(reg).map_err(|_| EINVAL)?;
    let val = check(r, value)?;
    let slot = v.debugreg.get_mut(r as usize).ok_or(EINVAL)?;
    *slot = val;
    Ok(0)
}

/// `get_debugreg(reg)`.
pub fn get(v: &Vcpu, reg: u64) -> Result<u64, Errno> {
    match reg {
        0..=3 | 6 | 7 => v.debugreg.get(reg as usize).copied().ok_or(EINVAL),
        _ => Err(EINVAL),
    }
}
