//! Memory hypercalls: `memory_op`, and the PV MMU (`mmu_update`, `mmuext_op`,
//! `update_va_mapping`) whose rules live in `hv_core::mm`.

use crate::domain::{DomId, Domain, DomainTable};
use crate::hypercall::Ret;
use crate::mem::phys_to_virt;
use crate::pv::{self, After};
use hv_core::frame::FrameInfo;
use hv_core::mm::{Flush, MmuCtx, PhysMem, XEN_L4_SLOTS};
use spin::Mutex;
use xen_abi::errno::*;
use xen_abi::mm::{MmuUpdate, MmuextOp};

/// The host's frame table and MMU rules. Lock order: after `DOMAINS`.
pub type HostMmu = hv_core::mm::Mmu<&'static mut [FrameInfo]>;
pub static MMU: Mutex<Option<HostMmu>> = Mutex::new(None);

/// Physical memory as `hv_core::mm` sees it: the direct map.
pub struct HvMem;

fn pte_ptr(mfn: u64, idx: usize) -> *mut u64 {
    (phys_to_virt(mfn << 12) + (idx as u64 & 511) * 8) as *mut u64
}

impl PhysMem for HvMem {
    fn read_pte(&self, mfn: u64, idx: usize) -> u64 {
        // SAFETY: `hv_core::mm` only passes frames covered by the frame table (RAM below
        // MAX_PHYS, in the direct map); one aligned volatile load.
        unsafe { core::ptr::read_volatile(pte_ptr(mfn, idx)) }
    }
    fn write_pte(&mut self, mfn: u64, idx: usize, val: u64) {
        // SAFETY: as `read_pte`; one aligned 8-byte store, never torn.
        unsafe { core::ptr::write_volatile(pte_ptr(mfn, idx), val) }
    }
    fn zero_page(&mut self, mfn: u64) {
        crate::mem::zero_frame(mfn);
    }
    fn copy_page(&mut self, dst: u64, src: u64) {
        // SAFETY: both are frames of the frame table in the direct map, and distinct
        // frames never overlap; `hv_core` checked the caller may read src / write dst.
        unsafe {
            core::ptr::copy(
                phys_to_virt(src << 12) as *const u8,
                phys_to_virt(dst << 12) as *mut u8,
                4096,
            )
        }
    }
    fn set_m2p(&mut self, mfn: u64, pfn: u64) {
        crate::paging::m2p_set(mfn, pfn);
    }
    fn flush_tlbs_all(&mut self) {
        flush_everywhere();
    }
    fn foreign_map_permitted(
        &self,
        mapper: hv_core::frame::DomId,
        _owner: hv_core::frame::DomId,
        _mfn: u64,
    ) -> bool {
        // Only the control domain maps other domains' frames without a grant (the
        // domain builder, the console backend); `foreign()` checked its privilege.
        mapper == 0
    }
    fn frame_released(&mut self, mfn: u64) {
        crate::paging::m2p_set(mfn, crate::paging::INVALID_M2P);
        crate::mem::free_frame(mfn);
    }
}

fn flush_local() {
    // SAFETY: reloading CR3 with its own value only flushes non-global TLB entries.
    unsafe { core::arch::asm!("mov {t}, cr3", "mov cr3, {t}", t = out(reg) _, options(nostack)) };
}

/// Flush this CPU's whole TLB, global entries included (guest user mappings are global).
pub fn flush_local_all() {
    // SAFETY: toggling CR4.PGE flushes all TLB entries; the hypervisor stays mapped.
    unsafe {
        let cr4: u64;
        core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack));
        core::arch::asm!("mov cr4, {}", in(reg) cr4 & !(1 << 7), options(nostack));
        core::arch::asm!("mov cr4, {}", in(reg) cr4, options(nostack));
    }
}

/// IPI vector: flush everything and acknowledge.
pub const VECTOR_FLUSH: u8 = 0xf2;
static FLUSH_GEN: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static FLUSH_ACK: [core::sync::atomic::AtomicU64; crate::arch::percpu::MAX_CPUS] =
    [const { core::sync::atomic::AtomicU64::new(0) }; crate::arch::percpu::MAX_CPUS];

/// The flush IPI's handler.
pub fn flush_ipi() {
    // Read the generation before flushing: acknowledging a generation whose page-table
    // change came after our flush would let its flusher go on with our TLB stale.
    let gen = FLUSH_GEN.load(core::sync::atomic::Ordering::Acquire);
    flush_local_all();
    let cpu = crate::arch::cpu::current_id() as usize;
    if let Some(a) = FLUSH_ACK.get(cpu) {
        a.fetch_max(gen, core::sync::atomic::Ordering::AcqRel);
    }
}

/// Flush every CPU's TLB and wait until all have (P2: a frame changing type may be
/// cached writable anywhere). Other CPUs answer from guest mode, from idle, or while
/// waiting for the domain lock (which they wait for with interrupts on).
pub fn flush_everywhere() {
    use core::sync::atomic::Ordering;
    flush_local_all();
    let me = crate::arch::cpu::current_id() as usize;
    let gen = FLUSH_GEN.fetch_add(1, Ordering::AcqRel) + 1;
    let mut pending = 0u64;
    for cpu in 0..crate::arch::percpu::MAX_CPUS {
        if cpu != me && crate::smp::is_online(cpu) && crate::smp::send_ipi(cpu, VECTOR_FLUSH) {
            pending |= 1 << cpu;
        }
    }
    // A CPU that has not answered within 10 ms is asked again (an IPI is not lost on
    // hardware, but asking twice is harmless: the handler only flushes and acks). After
    // a second the silent CPUs are reported, and asked by NMI where they are (they print
    // it themselves): under an emulator on a loaded host a virtual CPU may simply not
    // have run for that long. After ten seconds the flusher goes on and says so: a stuck
    // CPU must not hang the whole host, though it may then keep a stale translation (P2).
    let start = crate::arch::timer::now_ns();
    let mut resent = start;
    let mut reported = false;
    while pending != 0 {
        // Another CPU may be flushing at the same time, waiting for us with interrupts
        // off as we wait for it: answer its request from here, or both would wait.
        let wanted = FLUSH_GEN.load(Ordering::Acquire);
        if let Some(a) = FLUSH_ACK.get(me) {
            if a.load(Ordering::Acquire) < wanted {
                flush_local_all();
                a.fetch_max(wanted, Ordering::AcqRel);
            }
        }
        for cpu in 0..crate::arch::percpu::MAX_CPUS {
            if pending & (1 << cpu) != 0
                && FLUSH_ACK
                    .get(cpu)
                    .is_some_and(|a| a.load(Ordering::Acquire) >= gen)
            {
                pending &= !(1 << cpu);
            }
        }
        if pending == 0 {
            break;
        }
        let now = crate::arch::timer::now_ns();
        if now - resent > 10_000_000 {
            resent = now;
            for cpu in 0..crate::arch::percpu::MAX_CPUS {
                if pending & (1 << cpu) != 0 {
                    crate::smp::send_ipi(cpu, VECTOR_FLUSH);
                }
            }
        }
        if !reported && now - start > 1_000_000_000 {
            reported = true;
            FLUSH_LATE.fetch_add(1, Ordering::Relaxed);
            log::warn!("mm: CPUs {pending:#x} have not acknowledged a TLB flush for 1 s");
            for cpu in 0..crate::arch::percpu::MAX_CPUS {
                if pending & (1 << cpu) != 0 {
                    log::error!(
                        "mm:   cpu{cpu} was last at: {}",
                        crate::traps::what_doing(cpu)
                    );
                }
            }
            crate::traps::REPORT_REQUESTED.fetch_or(pending, Ordering::AcqRel);
            crate::arch::apic::nmi_others();
        }
        if now - start > 10_000_000_000 {
            FLUSH_ABANDONED.fetch_add(1, Ordering::Relaxed);
            log::error!("mm: gave up waiting for CPUs {pending:#x} to flush their TLBs");
            break;
        }
        core::hint::spin_loop();
    }
}

/// Flushes some CPU took more than a second to acknowledge, and flushes abandoned after
/// ten seconds (a healthy host has none; the log says which CPU and where it was).
pub static FLUSH_LATE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
pub static FLUSH_ABANDONED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn invlpg(va: u64) {
    // SAFETY: invalidating a TLB entry has no memory effect.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) va, options(nostack)) };
}

/// Perform a flush decision.
pub fn perform(f: Flush) {
    match f {
        Flush::None => {}
        Flush::Local | Flush::All => flush_local(),
        Flush::PageLocal(va) | Flush::PageAll(va) => invlpg(va),
        // SAFETY: wbinvd writes back caches; no memory-safety effect.
        Flush::Cache => unsafe { core::arch::asm!("wbinvd", options(nostack)) },
    }
}

/// Create the frame table for frames `0..=max_mfn`. Boot CPU, once, after `paging::init`.
pub fn init(max_mfn: u64) -> Result<(), &'static str> {
    let n = (max_mfn + 1) as usize;
    let bytes = n * core::mem::size_of::<FrameInfo>();
    let frames = bytes.div_ceil(4096);
    let mfn = crate::mem::alloc_contiguous(frames, 1).ok_or("no memory for the frame table")?;
    let base = phys_to_virt(mfn << 12) as *mut FrameInfo;
    for i in 0..n {
        // SAFETY: the frames were just allocated for the table and are large enough
        // for `n` entries; each entry is initialised before the slice is made.
        unsafe { base.add(i).write(FrameInfo::FREE) };
    }
    // SAFETY: `n` initialised entries in hypervisor-only memory, used from now on only
    // through this slice (behind `MMU`); it lives for the rest of the hypervisor's life.
    let table: &'static mut [FrameInfo] = unsafe { core::slice::from_raw_parts_mut(base, n) };
    let mut xen = [0u64; XEN_L4_SLOTS];
    let master = crate::paging::master_l4();
    for (i, e) in xen.iter_mut().enumerate() {
        *e = HvMem.read_pte(master, xen_abi::mm::HYPERVISOR_L4_FIRST + i);
    }
    *MMU.lock() = Some(hv_core::mm::Mmu::new(table, xen));
    Ok(())
}

/// Run `f` on the host MMU.
pub fn with_mmu<R>(f: impl FnOnce(&mut HostMmu) -> R) -> Option<R> {
    MMU.lock().as_mut().map(f)
}

/// The domain the `foreigndom` argument names for the frames, for a caller `d`. Its
/// upper half names the page tables' owner plus one (Xen's `pt_dom`): only the caller's
/// own tables are served (no device-model targets), another domain's is `-EPERM` and
/// one that does not exist `-ESRCH`, as Xen answers.
fn foreign(d: &Domain, foreigndom: u64, exists: impl Fn(u16) -> bool) -> Result<u16, Errno> {
    let pt_dom = (foreigndom >> 16) & 0xffff;
    if pt_dom != 0 {
        let owner = (pt_dom - 1) as u16;
        if owner != d.id {
            return Err(if exists(owner) { EPERM } else { ESRCH });
        }
    }
    let f = foreigndom as u16;
    if f == xen_abi::xen::DOMID_SELF || f == d.id {
        Ok(d.id)
    } else if !d.privileged {
        // The privilege check comes before anything else about the target (H8).
        Err(EPERM)
    } else if exists(f) {
        Ok(f)
    } else {
        Err(ESRCH)
    }
}

/// How many requests one `mmu_update`/`mmuext_op` call handles before a continuation.
const BATCH: u64 = 512;
/// Xen's `MMU_UPDATE_PREEMPTED`: marks `count` in a continuation.
const PREEMPTED: u64 = 1 << 62;

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

fn domain_ids(t: &DomainTable) -> heapless::Vec<u16, 64> {
    t.doms.iter().map(|d| d.id).take(64).collect()
}

/// `memory_op`: reservations (possibly on another domain: privileged), then the sub-ops
/// that concern the caller only.
pub fn memory_op(t: &mut DomainTable, me: DomId, vi: usize, a: [u64; 5]) -> Ret {
    use xen_abi::memory::*;
    let op = (a[0] & 0x3f) as u32;
    match op {
        XENMEM_POPULATE_PHYSMAP | XENMEM_INCREASE_RESERVATION | XENMEM_DECREASE_RESERVATION => {
            reservation(t, me, vi, a)
        }
        XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION => {
            let Some(caller) = t.get(me) else {
                return Ret::Err(ESRCH);
            };
            let b: [u8; 2] = match rd(caller, vi, a[1]) {
                Ok(b) => b,
                Err(e) => return Ret::Err(e),
            };
            let dom = u16::from_le_bytes(b);
            let target = if dom == xen_abi::xen::DOMID_SELF {
                me
            } else {
                dom
            };
            if target != me && !caller.privileged {
                return Ret::Err(EPERM);
            }
            match t.get(target) {
                Some(d) => Ret::Value(if op == XENMEM_CURRENT_RESERVATION {
                    d.tot_pages
                } else {
                    d.max_pages
                }),
                None => Ret::Err(ESRCH),
            }
        }
        _ => match t.get(me) {
            Some(d) => own_memory_op(d, vi, a).into(),
            None => Ret::Err(ESRCH),
        },
    }
}

/// Extents handled per call before a continuation.
const EXTENT_BATCH: u64 = 512;
/// Where the continuation's start extent goes in the command word (`MEMOP_EXTENT_SHIFT`).
const MEMOP_EXTENT_SHIFT: u32 = 6;

/// `XENMEM_{populate_physmap,increase_reservation,decrease_reservation}`.
///
/// For a PV domain, populate takes guest pfns in `extent_start` and writes back the
/// machine frames it allocated; increase only allocates; decrease takes machine frames.
/// Only order-0 extents. The domain may not exceed `max_pages` (Xen returns the number
/// of extents done, and no error).
fn reservation(t: &mut DomainTable, me: DomId, vi: usize, a: [u64; 5]) -> Ret {
    use xen_abi::memory::*;
    let op = (a[0] & 0x3f) as u32;
    let start = a[0] >> MEMOP_EXTENT_SHIFT;
    let Some(caller) = t.get(me) else {
        return Ret::Err(ESRCH);
    };
    let Some(l4) = caller.vcpus.get(vi).map(|v| pv::current_l4(v)) else {
        return Ret::Err(EINVAL);
    };
    let privileged = caller.privileged;
    let b: [u8; 32] = match rd(caller, vi, a[1]) {
        Ok(b) => b,
        Err(e) => return Ret::Err(e),
    };
    let q = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    let (extents, nr, order) = (q(0), q(8), u32::from_le_bytes([b[16], b[17], b[18], b[19]]));
    let dom = u16::from_le_bytes([b[24], b[25]]);
    let target = if dom == xen_abi::xen::DOMID_SELF {
        me
    } else {
        dom
    };
    if target != me && !privileged {
        return Ret::Err(EPERM);
    }
    if order != 0 {
        return Ret::Err(EINVAL);
    }
    if start > nr {
        return Ret::Err(EINVAL);
    }
    let Some(d) = t.get(target) else {
        return Ret::Err(ESRCH);
    };
    let mut done = start;
    let end = nr.min(start.saturating_add(EXTENT_BATCH));
    let mut guard = MMU.lock();
    let Some(mmu) = guard.as_mut() else {
        return Ret::Err(ENOSYS);
    };
    while done < end {
        let slot = extents.wrapping_add(done * 8);
        let mut word = [0u8; 8];
        if op != XENMEM_INCREASE_RESERVATION
            && crate::guest_mem::copy_from_guest(l4, slot, &mut word).is_err()
        {
            return Ret::Err(EFAULT);
        }
        let value = u64::from_le_bytes(word);
        if op == XENMEM_DECREASE_RESERVATION {
            if mmu.release_allocation(&mut HvMem, value, target).is_err() {
                break;
            }
            d.tot_pages = d.tot_pages.saturating_sub(1);
        } else {
            if d.tot_pages >= d.max_pages {
                log::debug!(target: "guest", "d{target}: over-allocation ({} >= {})", d.tot_pages + 1, d.max_pages);
                break;
            }
            let Some(mfn) = crate::mem::alloc_frame() else {
                break;
            };
            if mmu
                .assign(mfn, hv_core::frame::Owner::Domain(target))
                .is_err()
            {
                crate::mem::free_frame(mfn);
                break;
            }
            if op == XENMEM_POPULATE_PHYSMAP {
                crate::paging::m2p_set(mfn, value);
            }
            d.tot_pages += 1;
            if crate::guest_mem::copy_to_guest(l4, slot, &mfn.to_le_bytes()).is_err() {
                // Xen keeps the page and reports the fault.
                return Ret::Err(EFAULT);
            }
        }
        done += 1;
    }
    if done == end && end < nr {
        return Ret::Continue([
            (a[0] & 0x3f) | (done << MEMOP_EXTENT_SHIFT),
            a[1],
            a[2],
            a[3],
            a[4],
        ]);
    }
    Ret::Value(done)
}

/// `memory_op` sub-ops a PV kernel asks at boot.
fn own_memory_op(d: &mut Domain, vi: usize, a: [u64; 5]) -> Result<u64, Errno> {
    use xen_abi::memory::*;
    // The low 6 bits are the sub-op; the rest is a continuation's start extent.
    let op = (a[0] & 0x3f) as u32;
    match op {
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

/// Shared loop of `mmu_update` and `mmuext_op`: `(reqs, count, done_ptr, foreigndom)`.
fn batch<T: crate::guest_mem::Pod>(
    exists: &[u16],
    d: &mut Domain,
    vi: usize,
    a: [u64; 5],
    size: u64,
    mut one: impl FnMut(&mut HostMmu, &mut Domain, MmuCtx, &T) -> Result<Flush, Errno>,
) -> Ret {
    let (reqs, count, done_ptr) = (a[0], a[1] & !PREEMPTED, a[2]);
    let Some(v) = d.vcpus.get(vi) else {
        return Ret::Err(EINVAL);
    };
    let l4 = pv::current_l4(v);
    let ctx = match foreign(d, a[3], |f| exists.contains(&f)) {
        Ok(pg) => MmuCtx {
            caller: d.id,
            pt_owner: d.id,
            pg_owner: pg,
        },
        Err(e) => return Ret::Err(e),
    };
    let mut flush = Flush::None;
    let mut done = 0u64;
    let mut result = Ok(());
    {
        let mut guard = MMU.lock();
        let Some(mmu) = guard.as_mut() else {
            return Ret::Err(ENOSYS);
        };
        while done < count.min(BATCH) {
            let req: T = match crate::guest_mem::read(l4, reqs.wrapping_add(done * size)) {
                Ok(r) => r,
                Err(_) => {
                    result = Err(EFAULT);
                    break;
                }
            };
            match one(mmu, d, ctx, &req) {
                Ok(f) => flush = flush.merge(f),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            done += 1;
        }
    }
    perform(flush);
    if let Some(v) = d.vcpus.get(vi) {
        if done_ptr != 0 {
            // Xen adds to *done across continuations; we report this call's progress.
            let prev: u64 = if a[1] & PREEMPTED != 0 {
                crate::guest_mem::read::<u32>(pv::current_l4(v), done_ptr)
                    .map(u64::from)
                    .unwrap_or(0)
            } else {
                0
            };
            if crate::guest_mem::copy_to_guest(
                pv::current_l4(v),
                done_ptr,
                &((prev + done) as u32).to_le_bytes(),
            )
            .is_err()
            {
                return Ret::Err(EFAULT);
            }
        }
    }
    match result {
        Err(e) => Ret::Err(e),
        Ok(()) if done < count => Ret::Continue([
            reqs.wrapping_add(done * size),
            (count - done) | PREEMPTED,
            done_ptr,
            a[3],
            a[4],
        ]),
        Ok(()) => Ret::Value(0),
    }
}

/// `mmu_update(reqs, count, done, foreigndom)`.
pub fn mmu_update(t: &mut DomainTable, dom: DomId, vi: usize, a: [u64; 5]) -> (Ret, After) {
    let ids = domain_ids(t);
    let Some(d) = t.get(dom) else {
        return (Ret::Err(ESRCH), After::Stopped);
    };
    let r = batch::<MmuUpdate>(&ids, d, vi, a, 16, |mmu, _d, ctx, req| {
        mmu.mmu_update(&mut HvMem, ctx, req)
    });
    (r, After::Resume)
}

/// `mmuext_op(ops, count, done, foreigndom)`.
pub fn mmuext_op(t: &mut DomainTable, dom: DomId, vi: usize, a: [u64; 5]) -> (Ret, After) {
    let ids = domain_ids(t);
    let Some(d) = t.get(dom) else {
        return (Ret::Err(ESRCH), After::Stopped);
    };
    let r = batch::<MmuextOp>(&ids, d, vi, a, 24, |mmu, d, ctx, op| {
        let v = d.vcpus.get_mut(vi).ok_or(EINVAL)?;
        let f = mmu.mmuext_op(&mut HvMem, ctx, &mut v.mm, op)?;
        if matches!(
            op.cmd,
            xen_abi::mm::MMUEXT_NEW_BASEPTR | xen_abi::mm::MMUEXT_NEW_USER_BASEPTR
        ) {
            // The base pointer of the current mode may have changed: reload it.
            pv::load_mode(v);
        }
        Ok(f)
    });
    (r, After::Resume)
}

/// `update_va_mapping(va, val, flags)`.
pub fn update_va_mapping(d: &mut Domain, vi: usize, a: [u64; 5]) -> (Ret, After) {
    let Some(v) = d.vcpus.get(vi) else {
        return (Ret::Err(EINVAL), After::Stopped);
    };
    let r = with_mmu(|mmu| mmu.update_va_mapping(&mut HvMem, d.id, &v.mm, a[0], a[1], a[2]));
    match r {
        Some(Ok(f)) => {
            perform(f);
            (Ret::Value(0), After::Resume)
        }
        Some(Err(e)) => (Ret::Err(e), After::Resume),
        None => (Ret::Err(ENOSYS), After::Resume),
    }
}
