//! Access to a domain's `shared_info` page, which the guest maps writable.
//!
//! The page is hypervisor-allocated and owned by the domain; the hypervisor reaches it
//! through the direct map with volatile and locked accesses only, never a reference,
//! because the guest may change it at any moment. Offsets are Xen 4.17's (checked
//! against the headers in `xen-abi`'s conformance test).

use crate::mem::phys_to_virt;

pub const VCPU_INFO_SIZE: u64 = 64;
pub const MAX_LEGACY_VCPUS: u32 = 32;
const UPCALL_PENDING: u64 = 0;
const UPCALL_MASK: u64 = 1;
const PENDING_SEL: u64 = 8;
const ARCH_CR2: u64 = 16;
const TIME: u64 = 32;
const EVTCHN_PENDING: u64 = 2048;
const EVTCHN_MASK: u64 = 2560;
const WC_VERSION: u64 = 3072;
const WC_SEC: u64 = 3076;
const WC_NSEC: u64 = 3080;
const WC_SEC_HI: u64 = 3084;
const ARCH_MAX_PFN: u64 = 3088;

/// What [`SharedInfo::set_pending`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetPending {
    /// The port was not pending before (Xen checks its pollers only then).
    pub newly: bool,
    /// The vCPU's upcall became pending: kick it (`vcpu_kick`).
    pub kick: bool,
}

/// A domain's shared_info frame.
#[derive(Clone, Copy, Debug)]
pub struct SharedInfo {
    base: u64,
}

fn lock_bts(addr: u64, bit: u32) -> bool {
    let old: u8;
    // SAFETY: `addr` is an 8-byte-aligned address inside a shared_info page in the
    // direct map (callers pass offsets below 4096); `lock bts` is atomic against the
    // guest's own accesses.
    unsafe {
        core::arch::asm!("lock bts qword ptr [{a}], {b}", "setc {o}", a = in(reg) addr, b = in(reg) u64::from(bit), o = out(reg_byte) old, options(nostack));
    }
    old != 0
}

fn lock_btr(addr: u64, bit: u32) -> bool {
    let old: u8;
    // SAFETY: as `lock_bts`.
    unsafe {
        core::arch::asm!("lock btr qword ptr [{a}], {b}", "setc {o}", a = in(reg) addr, b = in(reg) u64::from(bit), o = out(reg_byte) old, options(nostack));
    }
    old != 0
}

impl SharedInfo {
    pub fn new(mfn: u64) -> SharedInfo {
        SharedInfo {
            base: phys_to_virt(mfn << 12),
        }
    }

    fn rd8(&self, off: u64) -> u8 {
        // SAFETY: `off` < 4096 (constants above); the page is mapped in the direct map.
        unsafe { core::ptr::read_volatile((self.base + off) as *const u8) }
    }
    fn wr8(&self, off: u64, v: u8) {
        // SAFETY: as `rd8`; the guest may race, which the ABI allows for these fields.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u8, v) }
    }
    fn wr32(&self, off: u64, v: u32) {
        // SAFETY: as `wr8`, and `off` is 4-byte aligned.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u32, v) }
    }
    fn rd32(&self, off: u64) -> u32 {
        // SAFETY: as `rd8`, and `off` is 4-byte aligned.
        unsafe { core::ptr::read_volatile((self.base + off) as *const u32) }
    }
    fn wr64(&self, off: u64, v: u64) {
        // SAFETY: as `wr8`, and `off` is 8-byte aligned.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u64, v) }
    }
    fn rd64(&self, off: u64) -> u64 {
        // SAFETY: as `rd8`, and `off` is 8-byte aligned.
        unsafe { core::ptr::read_volatile((self.base + off) as *const u64) }
    }

    fn vcpu(v: u32) -> u64 {
        u64::from(v.min(MAX_LEGACY_VCPUS - 1)) * VCPU_INFO_SIZE
    }

    pub fn upcall_pending(&self, v: u32) -> bool {
        self.rd8(Self::vcpu(v) + UPCALL_PENDING) != 0
    }
    pub fn set_upcall_pending(&self, v: u32, on: bool) {
        self.wr8(Self::vcpu(v) + UPCALL_PENDING, on as u8)
    }
    pub fn upcall_mask(&self, v: u32) -> bool {
        self.rd8(Self::vcpu(v) + UPCALL_MASK) != 0
    }
    pub fn set_upcall_mask(&self, v: u32, on: bool) {
        self.wr8(Self::vcpu(v) + UPCALL_MASK, on as u8)
    }
    pub fn set_cr2(&self, v: u32, cr2: u64) {
        self.wr64(Self::vcpu(v) + ARCH_CR2, cr2)
    }

    /// Xen's 2-level `evtchn_set_pending` for `port`, delivered to vCPU `v`.
    pub fn set_pending(&self, v: u32, port: u32) -> SetPending {
        let word = u64::from(port / 64) * 8;
        if lock_bts(self.base + EVTCHN_PENDING + word, port % 64) {
            return SetPending::default();
        }
        let kick = self.rd64(EVTCHN_MASK + word) & (1 << (port % 64)) == 0
            && !lock_bts(self.base + Self::vcpu(v) + PENDING_SEL, port / 64)
            && self.mark_upcall_pending(v);
        SetPending { newly: true, kick }
    }

    /// Xen's `vcpu_mark_events_pending`: set `evtchn_upcall_pending`; true if it was
    /// clear (the vCPU must then be kicked).
    pub fn mark_upcall_pending(&self, v: u32) -> bool {
        let addr = self.base + Self::vcpu(v) + UPCALL_PENDING;
        // SAFETY: `addr` is a byte inside the shared_info page in the direct map (as
        // `rd8`); an atomic exchange is what the guest's own accesses expect.
        let old = unsafe {
            (*(addr as *const core::sync::atomic::AtomicU8))
                .swap(1, core::sync::atomic::Ordering::SeqCst)
        };
        old == 0
    }

    pub fn is_pending(&self, port: u32) -> bool {
        self.rd64(EVTCHN_PENDING + u64::from(port / 64) * 8) & (1 << (port % 64)) != 0
    }

    /// `EVTCHNOP_unmask`: clear the mask, and raise the upcall if the port is pending.
    pub fn unmask(&self, v: u32, port: u32) -> bool {
        let word = u64::from(port / 64) * 8;
        if !lock_btr(self.base + EVTCHN_MASK + word, port % 64) {
            // Was not masked; nothing to do.
        }
        self.is_pending(port)
            && !lock_bts(self.base + Self::vcpu(v) + PENDING_SEL, port / 64)
            && self.mark_upcall_pending(v)
    }

    /// Clear the pending bit of `port` (when it is closed).
    pub fn clear_pending(&self, port: u32) {
        lock_btr(
            self.base + EVTCHN_PENDING + u64::from(port / 64) * 8,
            port % 64,
        );
    }

    /// Write vCPU `v`'s `vcpu_time_info` with Xen's version protocol.
    pub fn set_time(&self, v: u32, tsc: u64, system_ns: u64, mul: u32, shift: i8) {
        let t = Self::vcpu(v) + TIME;
        let ver = self.rd32(t).wrapping_add(1) | 1;
        self.wr32(t, ver);
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.wr64(t + 8, tsc);
        self.wr64(t + 16, system_ns);
        self.wr32(t + 24, mul);
        self.wr8(t + 28, shift as u8);
        // XEN_PVCLOCK_TSC_STABLE_BIT: one TSC scale for all CPUs.
        self.wr8(t + 29, 1);
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.wr32(t, ver.wrapping_add(1));
    }

    /// Write the wallclock (time of day at system time 0) with the version protocol.
    pub fn set_wallclock(&self, sec: u64, nsec: u32) {
        let ver = self.rd32(WC_VERSION).wrapping_add(1) | 1;
        self.wr32(WC_VERSION, ver);
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.wr32(WC_SEC, sec as u32);
        self.wr32(WC_NSEC, nsec);
        self.wr32(WC_SEC_HI, (sec >> 32) as u32);
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.wr32(WC_VERSION, ver.wrapping_add(1));
    }

    pub fn set_max_pfn(&self, max_pfn: u64) {
        self.wr64(ARCH_MAX_PFN, max_pfn)
    }
}
