//! The shared-info page: mapping it, and volatile/atomic access to its fields.
//!
//! The hypervisor writes this page while we run, so it is only touched through raw
//! pointers (`read_volatile`, or atomics for the event bitmaps), never through Rust
//! references.

use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};
use xen_abi::errno::Errno;
use xen_abi::mm::{PTE_ACCESSED, PTE_DIRTY, PTE_PRESENT, PTE_RW, PTE_USER, UVMF_INVLPG};
use xen_abi::xen::{SharedInfo, StartInfo, VcpuInfo, VcpuTimeInfo};

static SHARED: AtomicPtr<SharedInfo> = AtomicPtr::new(core::ptr::null_mut());

/// Map the shared-info frame (`start_info.shared_info`, a machine address) over the SDK's
/// reserved page.
pub fn init(si: &StartInfo) -> Result<(), Errno> {
    let va = reserved_page();
    let pte = (si.shared_info & xen_abi::mm::PTE_ADDR_MASK)
        | PTE_PRESENT
        | PTE_RW
        | PTE_USER
        | PTE_ACCESSED
        | PTE_DIRTY;
    // SAFETY: `va` is the SDK's own page-aligned .bss page, reserved for this purpose and
    // never referenced by Rust code, so remapping it invalidates nothing.
    unsafe { crate::hypercall::update_va_mapping(va, pte, UVMF_INVLPG) }?;
    SHARED.store(va as *mut SharedInfo, Ordering::Release);
    Ok(())
}

#[cfg(target_os = "none")]
fn reserved_page() -> u64 {
    extern "C" {
        static sdk_shared_info_page: u8;
    }
    // `&raw const` takes the address without reading.
    (&raw const sdk_shared_info_page) as u64
}

#[cfg(not(target_os = "none"))]
fn reserved_page() -> u64 {
    0
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    ".pushsection .bss.sdk_shared_info, \"aw\", @nobits",
    ".balign 4096",
    ".globl sdk_shared_info_page",
    "sdk_shared_info_page:",
    ".skip 4096",
    ".popsection",
);

/// The mapped shared-info page, or `None` before [`init`].
pub fn shared_info() -> Option<*mut SharedInfo> {
    let p = SHARED.load(Ordering::Acquire);
    (!p.is_null()).then_some(p)
}

/// `&shared_info.vcpu_info[vcpu]` as a raw pointer.
pub fn vcpu_info(vcpu: usize) -> Option<*mut VcpuInfo> {
    let s = shared_info()?;
    if vcpu >= xen_abi::xen::XEN_LEGACY_MAX_VCPUS {
        return None;
    }
    // SAFETY: `s` points at the mapped shared-info page and `vcpu` is in bounds, so the
    // projection stays inside it; no reference is created.
    Some(unsafe { (&raw mut (*s).vcpu_info).cast::<VcpuInfo>().add(vcpu) })
}

/// A consistent copy of `vcpu`'s `vcpu_time_info` (version protocol: retry while the
/// version is odd or changed during the read), with the TSC read inside the window.
pub fn read_time_info(vcpu: usize) -> Option<(VcpuTimeInfo, u64)> {
    let v = vcpu_info(vcpu)?;
    // SAFETY: `v` points into the mapped shared-info page.
    let t = unsafe { &raw const (*v).time };
    loop {
        // SAFETY: volatile reads of plain integers inside the mapped page.
        let v1 = unsafe { (&raw const (*t).version).read_volatile() };
        if v1 & 1 != 0 {
            core::hint::spin_loop();
            continue;
        }
        core::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: as above; a torn copy is discarded by the version check below.
        let copy = unsafe { t.read_volatile() };
        let tsc = crate::time::rdtsc();
        core::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: as above.
        let v2 = unsafe { (&raw const (*t).version).read_volatile() };
        if v1 == v2 {
            return Some((copy, tsc));
        }
    }
}

/// A consistent read of the wallclock at system time 0: (seconds, nanoseconds).
pub fn read_wallclock_base() -> Option<(u64, u32)> {
    let s = shared_info()?;
    loop {
        // SAFETY: volatile reads of integers inside the mapped shared-info page.
        unsafe {
            let v1 = (&raw const (*s).wc_version).read_volatile();
            if v1 & 1 != 0 {
                core::hint::spin_loop();
                continue;
            }
            core::sync::atomic::fence(Ordering::Acquire);
            let lo = (&raw const (*s).wc_sec).read_volatile() as u64;
            let hi = (&raw const (*s).wc_sec_hi).read_volatile() as u64;
            let nsec = (&raw const (*s).wc_nsec).read_volatile();
            core::sync::atomic::fence(Ordering::Acquire);
            if (&raw const (*s).wc_version).read_volatile() == v1 {
                return Some((hi << 32 | lo, nsec));
            }
        }
    }
}

/// Word `i` of `evtchn_pending` as an atomic.
pub fn pending_word(i: usize) -> Option<&'static AtomicU64> {
    let s = shared_info()?;
    if i >= xen_abi::xen::XEN_ULONG_BITS {
        return None;
    }
    // SAFETY: in-bounds, 8-byte aligned u64 inside the mapped page, which stays mapped
    // for the domain's life; shared with the hypervisor only through atomic operations.
    Some(unsafe { AtomicU64::from_ptr((&raw mut (*s).evtchn_pending).cast::<u64>().add(i)) })
}

/// Word `i` of `evtchn_mask` as an atomic.
pub fn mask_word(i: usize) -> Option<&'static AtomicU64> {
    let s = shared_info()?;
    if i >= xen_abi::xen::XEN_ULONG_BITS {
        return None;
    }
    // SAFETY: as in `pending_word`.
    Some(unsafe { AtomicU64::from_ptr((&raw mut (*s).evtchn_mask).cast::<u64>().add(i)) })
}

/// `vcpu_info[vcpu].evtchn_pending_sel` as an atomic.
pub fn pending_sel(vcpu: usize) -> Option<&'static AtomicU64> {
    let v = vcpu_info(vcpu)?;
    // SAFETY: aligned u64 inside the mapped page (see `pending_word`).
    Some(unsafe { AtomicU64::from_ptr(&raw mut (*v).evtchn_pending_sel) })
}

/// `vcpu_info[vcpu].evtchn_upcall_pending` as an atomic.
pub fn upcall_pending(vcpu: usize) -> Option<&'static AtomicU8> {
    let v = vcpu_info(vcpu)?;
    // SAFETY: a u8 inside the mapped page (see `pending_word`).
    Some(unsafe { AtomicU8::from_ptr(&raw mut (*v).evtchn_upcall_pending) })
}

/// `vcpu_info[vcpu].evtchn_upcall_mask` as an atomic.
pub fn upcall_mask(vcpu: usize) -> Option<&'static AtomicU8> {
    let v = vcpu_info(vcpu)?;
    // SAFETY: a u8 inside the mapped page (see `pending_word`).
    Some(unsafe { AtomicU8::from_ptr(&raw mut (*v).evtchn_upcall_mask) })
}

/// `vcpu_info[vcpu].arch.cr2`: the faulting address of the last `#PF`.
pub fn cr2(vcpu: usize) -> Option<u64> {
    let v = vcpu_info(vcpu)?;
    // SAFETY: volatile read of an integer inside the mapped page.
    Some(unsafe { (&raw const (*v).arch.cr2).read_volatile() })
}
