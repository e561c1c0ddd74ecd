//! The privileged interface a dom0 toolstack uses: `domctl`, `sysctl`, and the
//! hypercalls a domain builder makes on another domain's behalf (memory, page tables,
//! event channels, grant tables).
//!
//! Layouts are Xen 4.17's (`domctl`/`sysctl` interface version 0x15, from
//! [`xen_abi::domctl`] and [`xen_abi::sysctl`]), so a toolstack written against this
//! module runs on real Xen 4.17 as well as on this project's hypervisor.
//!
//! Every function returns `Result<_, Errno>` and never panics. Arguments the hypervisor
//! reads or writes are the caller's own memory (locals or exclusively borrowed slices)
//! for the duration of one synchronous hypercall; nothing here keeps a reference into
//! memory the hypervisor writes while the guest runs. A non-privileged caller gets
//! `EPERM` from the hypervisor; on the host every call returns `ENOSYS`.
//!
//! Building a PV domain the way Xen's toolstack does, in order: [`createdomain`],
//! [`max_vcpus`], [`max_mem`], [`set_address_size`] (64), [`populate_physmap`] (MFNs
//! come back in the array for PV), map its frames with [`mmu_update`] and
//! `foreigndom = domid` to load the kernel and write page tables, [`pin_table_foreign`]
//! the L4, [`evtchn_alloc_unbound`] for its console and store rings,
//! [`gnttab_setup_table`], [`setvcpucontext`], [`unpause`].

use xen_abi::domctl::*;
use xen_abi::errno::{Errno, E2BIG, EINVAL, ESRCH};
use xen_abi::event_channel::{EvtchnAllocUnbound, EvtchnPort, EVTCHNOP_ALLOC_UNBOUND};
use xen_abi::grant_table::*;
use xen_abi::hypercall as nr;
use xen_abi::memory::*;
use xen_abi::mm::*;
use xen_abi::sysctl::*;
use xen_abi::xen::{DomId, VcpuGuestContext, XenDomainHandle};

pub use crate::hypercall::mmu_update;

// ---------------------------------------------------------------------------------------
// The two hypercalls
// ---------------------------------------------------------------------------------------

/// `domctl(op)` (hypercall 36). The hypervisor reads `op` and, for ops with OUT fields,
/// writes it back; `op.interface_version` must be 0x15 (`XenDomctl::new` sets it).
///
/// Ops whose payload carries guest handles (`setvcpucontext`, `vcpuaffinity`,
/// `scheduler_op` per-vCPU...) are reached through the typed wrappers below, which
/// supply live buffers; through this function such a handle must be 0 or point at
/// memory the caller owns. Other handles are the hypervisor's to check (`EFAULT`).
pub fn domctl(op: &mut XenDomctl) -> Result<u64, Errno> {
    // SAFETY: `op` is a live, exclusively borrowed 144-byte `xen_domctl` that the
    // hypervisor reads and writes during this synchronous call. Guest handles inside it
    // are addresses the hypervisor validates like any guest pointer; writes through them
    // land in this domain's own memory, which is the caller's contract (see above).
    unsafe { crate::hypercall::call(nr::DOMCTL, op as *mut XenDomctl as u64, 0, 0, 0, 0) }
}

/// `sysctl(op)` (hypercall 35); as [`domctl`], with a 136-byte `xen_sysctl`.
pub fn sysctl(op: &mut XenSysctl) -> Result<u64, Errno> {
    // SAFETY: as in `domctl`: `op` is live and exclusively borrowed for the call.
    unsafe { crate::hypercall::call(nr::SYSCTL, op as *mut XenSysctl as u64, 0, 0, 0, 0) }
}

/// Issue a domctl with a payload, returning the whole struct (payload decoded by the
/// caller with `payload()`).
fn domctl_with<T: xen_abi::wire::Wire>(
    cmd: u32,
    domid: DomId,
    payload: &T,
) -> Result<XenDomctl, Errno> {
    let mut op = XenDomctl::new(cmd, domid, payload);
    domctl(&mut op)?;
    Ok(op)
}

fn domctl_bare(cmd: u32, domid: DomId) -> Result<(), Errno> {
    domctl(&mut XenDomctl::bare(cmd, domid)).map(|_| ())
}

fn sysctl_with<T: xen_abi::wire::Wire>(cmd: u32, payload: &T) -> Result<XenSysctl, Errno> {
    let mut op = XenSysctl::new(cmd, payload);
    sysctl(&mut op)?;
    Ok(op)
}

/// A slice length as the `u32` count the ABI carries (`E2BIG` if it does not fit).
fn len32(n: usize) -> Result<u32, Errno> {
    u32::try_from(n).map_err(|_| E2BIG)
}

// ---------------------------------------------------------------------------------------
// sysctl
// ---------------------------------------------------------------------------------------

/// `XEN_SYSCTL_physinfo`: CPUs, memory and capabilities of the host (`xl info`).
pub fn physinfo() -> Result<XenSysctlPhysinfo, Errno> {
    Ok(sysctl_with(XEN_SYSCTL_PHYSINFO, &XenSysctlPhysinfo::default())?.payload())
}

/// `XEN_SYSCTL_sched_id`: the default pool's scheduler (`XEN_SCHEDULER_*`).
pub fn sched_id() -> Result<u32, Errno> {
    Ok(
        sysctl_with(XEN_SYSCTL_SCHED_ID, &XenSysctlSchedId::default())?
            .payload::<XenSysctlSchedId>()
            .sched_id,
    )
}

/// `XEN_SYSCTL_getdomaininfolist`: fill `buf` with the domains whose id is >= `first`,
/// in id order; returns how many were written (`xl list`).
pub fn getdomaininfolist(first: DomId, buf: &mut [XenDomctlGetdomaininfo]) -> Result<usize, Errno> {
    let req = XenSysctlGetdomaininfolist {
        first_domain: first,
        max_domains: len32(buf.len())?,
        buffer: buf.as_mut_ptr() as u64,
        ..Default::default()
    };
    let op = sysctl_with(XEN_SYSCTL_GETDOMAININFOLIST, &req)?;
    let n = op.payload::<XenSysctlGetdomaininfolist>().num_domains as usize;
    // Never trust a count larger than the buffer we gave.
    Ok(n.min(buf.len()))
}

/// `XEN_SYSCTL_readconsole`: copy the hypervisor's console ring into `buf` (`xl dmesg`).
///
/// `from`: `Some(index)` reads from that ring index (incremental), `None` from the
/// oldest byte kept. `clear` empties the ring afterwards. Returns the bytes written and
/// the index to pass next time.
pub fn readconsole(buf: &mut [u8], from: Option<u32>, clear: bool) -> Result<(usize, u32), Errno> {
    let req = XenSysctlReadconsole {
        clear: clear as u8,
        incremental: from.is_some() as u8,
        index: from.unwrap_or(0),
        buffer: buf.as_mut_ptr() as u64,
        count: len32(buf.len())?,
        ..Default::default()
    };
    let out: XenSysctlReadconsole = sysctl_with(XEN_SYSCTL_READCONSOLE, &req)?.payload();
    Ok(((out.count as usize).min(buf.len()), out.index))
}

/// `XEN_SYSCTL_getcpuinfo`: idle time of each physical CPU; returns how many were filled.
pub fn getcpuinfo(buf: &mut [XenSysctlCpuinfo]) -> Result<usize, Errno> {
    let req = XenSysctlGetcpuinfo {
        max_cpus: len32(buf.len())?,
        info: buf.as_mut_ptr() as u64,
        ..Default::default()
    };
    let out: XenSysctlGetcpuinfo = sysctl_with(XEN_SYSCTL_GETCPUINFO, &req)?.payload();
    Ok((out.nr_cpus as usize).min(buf.len()))
}

/// `XEN_SYSCTL_cputopoinfo`: core/socket/node of each CPU; returns the number of CPUs
/// Xen knows (entries beyond `buf.len()` are not written).
pub fn cputopoinfo(buf: &mut [XenSysctlCputopo]) -> Result<usize, Errno> {
    let req = XenSysctlCputopoinfo {
        num_cpus: len32(buf.len())?,
        cputopo: if buf.is_empty() {
            0
        } else {
            buf.as_mut_ptr() as u64
        },
        ..Default::default()
    };
    Ok(sysctl_with(XEN_SYSCTL_CPUTOPOINFO, &req)?
        .payload::<XenSysctlCputopoinfo>()
        .num_cpus as usize)
}

/// `XEN_SYSCTL_cpupool_op(INFO)`: the first pool with id >= `pool`; its CPUs are written
/// to `cpumap` (bit n = CPU n).
pub fn cpupool_info(pool: u32, cpumap: &mut [u8]) -> Result<XenSysctlCpupoolOp, Errno> {
    let req = XenSysctlCpupoolOp {
        op: XEN_SYSCTL_CPUPOOL_OP_INFO,
        cpupool_id: pool,
        cpumap: bitmap(cpumap)?,
        ..Default::default()
    };
    Ok(sysctl_with(XEN_SYSCTL_CPUPOOL_OP, &req)?.payload())
}

/// `XEN_SYSCTL_scheduler_op(getinfo)` for the credit scheduler of `pool`.
pub fn sched_credit_pool_get(pool: u32) -> Result<XenSysctlCreditSchedule, Errno> {
    let req = XenSysctlSchedulerOp {
        cpupool_id: pool,
        sched_id: XEN_SCHEDULER_CREDIT,
        cmd: XEN_SYSCTL_SCHEDOP_GETINFO,
        ..Default::default()
    };
    Ok(sysctl_with(XEN_SYSCTL_SCHEDULER_OP, &req)?
        .payload::<XenSysctlSchedulerOp>()
        .u
        .get())
}

/// `XEN_SYSCTL_scheduler_op(putinfo)` for the credit scheduler of `pool`.
pub fn sched_credit_pool_set(pool: u32, params: &XenSysctlCreditSchedule) -> Result<(), Errno> {
    let mut req = XenSysctlSchedulerOp {
        cpupool_id: pool,
        sched_id: XEN_SCHEDULER_CREDIT,
        cmd: XEN_SYSCTL_SCHEDOP_PUTINFO,
        ..Default::default()
    };
    req.u.set(params);
    sysctl_with(XEN_SYSCTL_SCHEDULER_OP, &req).map(|_| ())
}

// ---------------------------------------------------------------------------------------
// domctl: lifecycle and information
// ---------------------------------------------------------------------------------------

/// A PV domain configuration with Xen's toolstack defaults: `vcpus` vCPUs, 1023 event
/// channels, 32 grant frames, 1024 maptrack frames, grant tables v1.
pub fn pv_config(vcpus: u32, handle: XenDomainHandle) -> XenDomctlCreatedomain {
    XenDomctlCreatedomain {
        handle,
        max_vcpus: vcpus,
        max_evtchn_port: 1023,
        max_grant_frames: 32,
        max_maptrack_frames: 1024,
        grant_opts: xen_domctl_grant_version(1),
        ..Default::default()
    }
}

/// `XEN_DOMCTL_createdomain`: create a paused domain. `domid` 0 (or any id >=
/// `DOMID_FIRST_RESERVED`) lets the hypervisor choose; returns the id.
pub fn createdomain(domid: DomId, config: &XenDomctlCreatedomain) -> Result<DomId, Errno> {
    Ok(domctl_with(XEN_DOMCTL_CREATEDOMAIN, domid, config)?.domain)
}

/// `XEN_DOMCTL_destroydomain`: kill the domain and free its memory.
pub fn destroydomain(domid: DomId) -> Result<(), Errno> {
    domctl_bare(XEN_DOMCTL_DESTROYDOMAIN, domid)
}

/// `XEN_DOMCTL_pausedomain`.
pub fn pause(domid: DomId) -> Result<(), Errno> {
    domctl_bare(XEN_DOMCTL_PAUSEDOMAIN, domid)
}

/// `XEN_DOMCTL_unpausedomain`.
pub fn unpause(domid: DomId) -> Result<(), Errno> {
    domctl_bare(XEN_DOMCTL_UNPAUSEDOMAIN, domid)
}

/// `XEN_DOMCTL_getdomaininfo` for exactly `domid` (`ESRCH` if it does not exist).
///
/// Xen 4.17 answers with the first domain whose id is >= the one asked (and `ESRCH` only
/// when there is none); this wrapper refuses another domain's answer with `ESRCH`, as
/// libxc's `xc_domain_getinfo_single` does.
pub fn getdomaininfo(domid: DomId) -> Result<XenDomctlGetdomaininfo, Errno> {
    let info: XenDomctlGetdomaininfo = domctl_with(
        XEN_DOMCTL_GETDOMAININFO,
        domid,
        &XenDomctlGetdomaininfo::default(),
    )?
    .payload();
    if info.domain == domid {
        Ok(info)
    } else {
        Err(ESRCH)
    }
}

/// `XEN_DOMCTL_max_mem`: the domain's memory limit, KiB.
pub fn max_mem(domid: DomId, max_kib: u64) -> Result<(), Errno> {
    domctl_with(
        XEN_DOMCTL_MAX_MEM,
        domid,
        &XenDomctlMaxMem { max_memkb: max_kib },
    )
    .map(|_| ())
}

/// `XEN_DOMCTL_max_vcpus`: must equal `createdomain`'s `max_vcpus`.
pub fn max_vcpus(domid: DomId, max: u32) -> Result<(), Errno> {
    domctl_with(XEN_DOMCTL_MAX_VCPUS, domid, &XenDomctlMaxVcpus { max }).map(|_| ())
}

/// `XEN_DOMCTL_setvcpucontext`: load a vCPU's initial state (the domain is paused).
pub fn setvcpucontext(domid: DomId, vcpu: u32, ctxt: &VcpuGuestContext) -> Result<(), Errno> {
    let req = XenDomctlVcpucontext {
        vcpu,
        ctxt: ctxt as *const VcpuGuestContext as u64,
        ..Default::default()
    };
    domctl_with(XEN_DOMCTL_SETVCPUCONTEXT, domid, &req).map(|_| ())
}

/// `XEN_DOMCTL_getvcpucontext`: read a vCPU's state into `ctxt` (the domain must be
/// paused or the vCPU not running).
pub fn getvcpucontext(domid: DomId, vcpu: u32, ctxt: &mut VcpuGuestContext) -> Result<(), Errno> {
    let req = XenDomctlVcpucontext {
        vcpu,
        ctxt: ctxt as *mut VcpuGuestContext as u64,
        ..Default::default()
    };
    domctl_with(XEN_DOMCTL_GETVCPUCONTEXT, domid, &req).map(|_| ())
}

/// `XEN_DOMCTL_getvcpuinfo`: online/blocked/running, CPU time and the CPU it is on.
pub fn getvcpuinfo(domid: DomId, vcpu: u32) -> Result<XenDomctlGetvcpuinfo, Errno> {
    let req = XenDomctlGetvcpuinfo {
        vcpu,
        ..Default::default()
    };
    Ok(domctl_with(XEN_DOMCTL_GETVCPUINFO, domid, &req)?.payload())
}

/// `XEN_DOMCTL_settimeoffset`: seconds added to the domain's wallclock.
pub fn settimeoffset(domid: DomId, seconds: i64) -> Result<(), Errno> {
    let req = XenDomctlSettimeoffset {
        time_offset_seconds: seconds,
    };
    domctl_with(XEN_DOMCTL_SETTIMEOFFSET, domid, &req).map(|_| ())
}

/// `XEN_DOMCTL_setdomainhandle`: set the domain's UUID.
pub fn setdomainhandle(domid: DomId, handle: XenDomainHandle) -> Result<(), Errno> {
    domctl_with(
        XEN_DOMCTL_SETDOMAINHANDLE,
        domid,
        &XenDomctlSetdomainhandle { handle },
    )
    .map(|_| ())
}

/// `XEN_DOMCTL_set_address_size`: 64 for a 64-bit PV guest (the builder's `x86_compat`).
pub fn set_address_size(domid: DomId, bits: u32) -> Result<(), Errno> {
    domctl_with(
        XEN_DOMCTL_SET_ADDRESS_SIZE,
        domid,
        &XenDomctlAddressSize { size: bits },
    )
    .map(|_| ())
}

/// `XEN_DOMCTL_hypercall_init`: fill the domain's page `gmfn` with hypercall stubs. A PV
/// domain is not translated, so `gmfn` is the frame's MFN (a PFN gets `EINVAL` on Xen).
pub fn hypercall_init(domid: DomId, gmfn: u64) -> Result<(), Errno> {
    domctl_with(
        XEN_DOMCTL_HYPERCALL_INIT,
        domid,
        &XenDomctlHypercallInit { gmfn },
    )
    .map(|_| ())
}

/// An `xenctl_bitmap` over `bits` (its length in bits must fit a u32).
fn bitmap(bits: &mut [u8]) -> Result<XenctlBitmap, Errno> {
    let nr_bits = bits
        .len()
        .checked_mul(8)
        .and_then(|b| u32::try_from(b).ok())
        .ok_or(E2BIG)?;
    Ok(XenctlBitmap {
        bitmap: if bits.is_empty() {
            0
        } else {
            bits.as_mut_ptr() as u64
        },
        nr_bits,
        _pad: 0,
    })
}

/// `XEN_DOMCTL_setvcpuaffinity` (hard affinity): pin `vcpu` to the CPUs set in `cpus`
/// (bit n = CPU n). On return `cpus` holds the effective affinity.
pub fn set_vcpu_affinity(domid: DomId, vcpu: u32, cpus: &mut [u8]) -> Result<(), Errno> {
    let req = XenDomctlVcpuaffinity {
        vcpu,
        flags: XEN_VCPUAFFINITY_HARD,
        cpumap_hard: bitmap(cpus)?,
        cpumap_soft: XenctlBitmap::default(),
    };
    domctl_with(XEN_DOMCTL_SETVCPUAFFINITY, domid, &req).map(|_| ())
}

/// `XEN_DOMCTL_getvcpuaffinity`: the hard and soft affinity of `vcpu` into the two maps.
pub fn get_vcpu_affinity(
    domid: DomId,
    vcpu: u32,
    hard: &mut [u8],
    soft: &mut [u8],
) -> Result<(), Errno> {
    let req = XenDomctlVcpuaffinity {
        vcpu,
        flags: XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT,
        cpumap_hard: bitmap(hard)?,
        cpumap_soft: bitmap(soft)?,
    };
    domctl_with(XEN_DOMCTL_GETVCPUAFFINITY, domid, &req).map(|_| ())
}

fn sched_op(
    domid: DomId,
    sched: u32,
    cmd: u32,
    p: &XenDomctlSchedCredit,
) -> Result<XenDomctlSchedCredit, Errno> {
    let mut req = XenDomctlSchedulerOp {
        sched_id: sched,
        cmd,
        ..Default::default()
    };
    req.u.set(p);
    Ok(domctl_with(XEN_DOMCTL_SCHEDULER_OP, domid, &req)?
        .payload::<XenDomctlSchedulerOp>()
        .u
        .get())
}

/// `XEN_DOMCTL_scheduler_op(getinfo)` with the credit scheduler: weight and cap
/// (`xl sched-credit`). `EINVAL` if the domain's pool runs another scheduler.
pub fn sched_credit_get(domid: DomId) -> Result<XenDomctlSchedCredit, Errno> {
    sched_op(
        domid,
        XEN_SCHEDULER_CREDIT,
        XEN_DOMCTL_SCHEDOP_GETINFO,
        &XenDomctlSchedCredit::default(),
    )
}

/// `XEN_DOMCTL_scheduler_op(putinfo)` with the credit scheduler. A zero weight leaves
/// the weight unchanged (Xen's rule); cap is in % of one CPU (0 = no cap).
pub fn sched_credit_set(domid: DomId, params: &XenDomctlSchedCredit) -> Result<(), Errno> {
    sched_op(
        domid,
        XEN_SCHEDULER_CREDIT,
        XEN_DOMCTL_SCHEDOP_PUTINFO,
        params,
    )
    .map(|_| ())
}

/// `XEN_DOMCTL_scheduler_op(getinfo)` with credit2 (same layout as credit).
pub fn sched_credit2_get(domid: DomId) -> Result<XenDomctlSchedCredit, Errno> {
    sched_op(
        domid,
        XEN_SCHEDULER_CREDIT2,
        XEN_DOMCTL_SCHEDOP_GETINFO,
        &XenDomctlSchedCredit::default(),
    )
}

/// `XEN_DOMCTL_scheduler_op(putinfo)` with credit2.
pub fn sched_credit2_set(domid: DomId, params: &XenDomctlSchedCredit) -> Result<(), Errno> {
    sched_op(
        domid,
        XEN_SCHEDULER_CREDIT2,
        XEN_DOMCTL_SCHEDOP_PUTINFO,
        params,
    )
    .map(|_| ())
}

// ---------------------------------------------------------------------------------------
// Memory of another domain
// ---------------------------------------------------------------------------------------

fn reservation(
    cmd: u32,
    domid: DomId,
    order: u32,
    list: *mut u64,
    n: usize,
) -> Result<usize, Errno> {
    if order > 18 {
        return Err(EINVAL);
    }
    let mut r = XenMemoryReservation {
        extent_start: list as u64,
        nr_extents: n as u64,
        extent_order: order,
        mem_flags: 0,
        domid,
        _pad: [0; 3],
    };
    // SAFETY: `r` is a live reservation; `list` points at `n` u64 the caller owns
    // (exclusively borrowed by every public caller), which the hypervisor reads and, for
    // populate/increase, writes during this synchronous call.
    let done = unsafe { crate::hypercall::memory_op(cmd, &mut r as *mut _ as *mut u8) }?;
    Ok((done as usize).min(n))
}

/// `XENMEM_populate_physmap` on `domid`: back the pseudo-physical frames listed in
/// `pfns` (each the first PFN of a `2^order`-page extent). For a PV domain Xen writes
/// each extent's first MFN back in place of its PFN. Returns the extents done (fewer
/// than asked means out of memory or over `max_mem`).
pub fn populate_physmap(domid: DomId, order: u32, pfns: &mut [u64]) -> Result<usize, Errno> {
    reservation(
        XENMEM_POPULATE_PHYSMAP,
        domid,
        order,
        pfns.as_mut_ptr(),
        pfns.len(),
    )
}

/// `XENMEM_increase_reservation` on `domid`: allocate `mfns.len()` extents, their first
/// MFNs written to `mfns`. Returns the extents done.
pub fn increase_reservation(domid: DomId, order: u32, mfns: &mut [u64]) -> Result<usize, Errno> {
    reservation(
        XENMEM_INCREASE_RESERVATION,
        domid,
        order,
        mfns.as_mut_ptr(),
        mfns.len(),
    )
}

/// `XENMEM_decrease_reservation` on `domid`: release the extents whose first GMFN is in
/// `gmfns` (read only). A PV domain is not translated: its GMFNs are MFNs (Xen 4.17
/// skips a PFN that is not a frame of the domain, counting it as not done). Returns the
/// extents done.
pub fn decrease_reservation(domid: DomId, order: u32, gmfns: &mut [u64]) -> Result<usize, Errno> {
    reservation(
        XENMEM_DECREASE_RESERVATION,
        domid,
        order,
        gmfns.as_mut_ptr(),
        gmfns.len(),
    )
}

fn domid_op(cmd: u32, domid: DomId) -> Result<u64, Errno> {
    let mut d = domid;
    // SAFETY: these commands take a pointer to a `domid_t`, which `d` is.
    unsafe { crate::hypercall::memory_op(cmd, &mut d as *mut DomId as *mut u8) }
}

/// `XENMEM_current_reservation`: pages the domain has.
pub fn current_reservation(domid: DomId) -> Result<u64, Errno> {
    domid_op(XENMEM_CURRENT_RESERVATION, domid)
}

/// `XENMEM_maximum_reservation`: the domain's page limit.
pub fn maximum_reservation(domid: DomId) -> Result<u64, Errno> {
    domid_op(XENMEM_MAXIMUM_RESERVATION, domid)
}

/// `XENMEM_maximum_gpfn`: the domain's highest PFN.
pub fn maximum_gpfn(domid: DomId) -> Result<u64, Errno> {
    domid_op(XENMEM_MAXIMUM_GPFN, domid)
}

// ---------------------------------------------------------------------------------------
// Page tables of another domain
// ---------------------------------------------------------------------------------------

fn ext_foreign(cmd: u32, mfn: u64, dom: DomId) -> Result<(), Errno> {
    let op = [MmuextOp {
        cmd,
        _pad: 0,
        arg1: mfn,
        arg2: 0,
    }];
    // SAFETY: pin/unpin validate and type-lock a frame of `dom`; they change no mapping
    // of ours and carry no guest pointer.
    unsafe { crate::hypercall::mmuext_op(&op, dom) }.map(|_| ())
}

/// `MMUEXT_PIN_L{1..4}_TABLE` of frame `mfn` owned by `dom` (the builder pins the new
/// domain's L4 before `setvcpucontext`).
pub fn pin_table_foreign(level: u32, mfn: u64, dom: DomId) -> Result<(), Errno> {
    let cmd = match level {
        1 => MMUEXT_PIN_L1_TABLE,
        2 => MMUEXT_PIN_L2_TABLE,
        3 => MMUEXT_PIN_L3_TABLE,
        4 => MMUEXT_PIN_L4_TABLE,
        _ => return Err(EINVAL),
    };
    ext_foreign(cmd, mfn, dom)
}

/// `MMUEXT_UNPIN_TABLE` of frame `mfn` owned by `dom`.
pub fn unpin_table_foreign(mfn: u64, dom: DomId) -> Result<(), Errno> {
    ext_foreign(MMUEXT_UNPIN_TABLE, mfn, dom)
}

// ---------------------------------------------------------------------------------------
// Event channels and grant tables for another domain
// ---------------------------------------------------------------------------------------

/// `EVTCHNOP_alloc_unbound` in domain `dom` (privileged for `dom != DOMID_SELF`): a port
/// of `dom` that `remote` may bind (a new domain's console and store channels).
pub fn evtchn_alloc_unbound(dom: DomId, remote: DomId) -> Result<EvtchnPort, Errno> {
    let mut op = EvtchnAllocUnbound {
        dom,
        remote_dom: remote,
        port: 0,
    };
    // SAFETY: `op` is the live struct EVTCHNOP_alloc_unbound takes.
    unsafe {
        crate::hypercall::event_channel_op(EVTCHNOP_ALLOC_UNBOUND, &mut op as *mut _ as *mut u8)
    }?;
    Ok(op.port)
}

/// A grant op's `GNTST_*` status as an [`Errno`].
pub const fn gntst_errno(status: i16) -> Result<(), Errno> {
    use xen_abi::errno::*;
    match status {
        GNTST_OKAY => Ok(()),
        GNTST_BAD_DOMAIN => Err(ESRCH),
        GNTST_BAD_GNTREF | GNTST_BAD_HANDLE | GNTST_BAD_VIRT_ADDR | GNTST_BAD_DEV_ADDR
        | GNTST_BAD_COPY_ARG | GNTST_BAD_PAGE => Err(EINVAL),
        GNTST_PERMISSION_DENIED => Err(EPERM),
        GNTST_NO_DEVICE_SPACE | GNTST_NO_SPACE => Err(ENOSPC),
        GNTST_ADDRESS_TOO_BIG => Err(E2BIG),
        GNTST_EAGAIN => Err(EAGAIN),
        _ => Err(EIO),
    }
}

/// `grant_table_op(cmd, ops, n)` over a slice; per-op `status` stays in the slice.
fn gnttab_batch<T>(cmd: u32, ops: &mut [T]) -> Result<(), Errno> {
    let n = len32(ops.len())?;
    // SAFETY: `ops` is a live, exclusively borrowed array of the struct `cmd` takes
    // (each caller pairs them), read and written by the hypervisor during the call.
    unsafe { crate::hypercall::grant_table_op(cmd, ops.as_mut_ptr() as *mut u8, n) }.map(|_| ())
}

/// `GNTTABOP_setup_table` for `dom`: grow its grant table to `frames.len()` frames and
/// write their frame numbers (MFNs for PV) to `frames`.
pub fn gnttab_setup_table(dom: DomId, frames: &mut [u64]) -> Result<(), Errno> {
    let mut op = [GnttabSetupTable {
        dom,
        nr_frames: len32(frames.len())?,
        frame_list: frames.as_mut_ptr() as u64,
        ..Default::default()
    }];
    gnttab_batch(GNTTABOP_SETUP_TABLE, &mut op)?;
    gntst_errno(op[0].status)
}

/// `GNTTABOP_query_size` for `dom`: (current frames, maximum frames).
pub fn gnttab_query_size(dom: DomId) -> Result<(u32, u32), Errno> {
    let mut op = [GnttabQuerySize {
        dom,
        ..Default::default()
    }];
    gnttab_batch(GNTTABOP_QUERY_SIZE, &mut op)?;
    gntst_errno(op[0].status)?;
    Ok((op[0].nr_frames, op[0].max_nr_frames))
}

/// `GNTTABOP_map_grant_ref` of several grants; each op's `status`, `handle` and
/// `dev_bus_addr` are filled in.
///
/// # Safety
/// With `GNTMAP_host_map`, each `host_addr` is a virtual address of ours whose mapping
/// is replaced: no Rust reference may point into those pages, and they must stay
/// unused by anything else until unmapped.
pub unsafe fn gnttab_map_batch(ops: &mut [GnttabMapGrantRef]) -> Result<(), Errno> {
    gnttab_batch(GNTTABOP_MAP_GRANT_REF, ops)
}

/// `GNTTABOP_map_grant_ref` of one grant `gref` of `dom` at `host_addr` with `flags`
/// (`GNTMAP_host_map`, `GNTMAP_readonly`...): returns the handle to unmap with.
///
/// # Safety
/// As for [`gnttab_map_batch`].
pub unsafe fn gnttab_map(
    host_addr: u64,
    flags: u32,
    gref: GrantRef,
    dom: DomId,
) -> Result<GrantHandle, Errno> {
    let mut op = [GnttabMapGrantRef {
        host_addr,
        flags,
        ref_: gref,
        dom,
        ..Default::default()
    }];
    gnttab_batch(GNTTABOP_MAP_GRANT_REF, &mut op)?;
    gntst_errno(op[0].status)?;
    Ok(op[0].handle)
}

/// `GNTTABOP_unmap_grant_ref` of several mappings; per-op `status` filled in.
///
/// # Safety
/// The pages at each `host_addr` become unmapped: nothing may use them afterwards.
pub unsafe fn gnttab_unmap_batch(ops: &mut [GnttabUnmapGrantRef]) -> Result<(), Errno> {
    gnttab_batch(GNTTABOP_UNMAP_GRANT_REF, ops)
}

/// `GNTTABOP_unmap_grant_ref` of one mapping made by [`gnttab_map`].
///
/// # Safety
/// As for [`gnttab_unmap_batch`].
pub unsafe fn gnttab_unmap(host_addr: u64, handle: GrantHandle) -> Result<(), Errno> {
    let mut op = [GnttabUnmapGrantRef {
        host_addr,
        handle,
        ..Default::default()
    }];
    gnttab_batch(GNTTABOP_UNMAP_GRANT_REF, &mut op)?;
    gntst_errno(op[0].status)
}

/// `GNTTABOP_copy` of several segments; per-op `status` filled in. Each side is a grant
/// reference (with `GNTCOPY_*_gref`) or a frame of the named domain; local frames must
/// be our own, so no Rust reference is involved.
pub fn gnttab_copy_batch(ops: &mut [GnttabCopy]) -> Result<(), Errno> {
    gnttab_batch(GNTTABOP_COPY, ops)
}

/// `GNTTABOP_copy` of one segment.
pub fn gnttab_copy(op: &GnttabCopy) -> Result<(), Errno> {
    let mut ops = [*op];
    gnttab_batch(GNTTABOP_COPY, &mut ops)?;
    gntst_errno(ops[0].status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::errno::{ENOSPC, ENOSYS, EPERM};

    #[test]
    fn host_calls_fail_with_enosys() {
        assert_eq!(physinfo(), Err(ENOSYS));
        assert_eq!(getdomaininfo(0), Err(ENOSYS));
        assert_eq!(createdomain(0, &pv_config(1, [0; 16])), Err(ENOSYS));
        let mut b = [XenDomctlGetdomaininfo::default(); 4];
        assert_eq!(getdomaininfolist(0, &mut b), Err(ENOSYS));
        let mut pfns = [0u64; 4];
        assert_eq!(populate_physmap(1, 0, &mut pfns), Err(ENOSYS));
        assert_eq!(populate_physmap(1, 40, &mut pfns), Err(EINVAL));
        assert_eq!(pin_table_foreign(5, 0, 1), Err(EINVAL));
        let mut c = [0u8; 64];
        assert_eq!(readconsole(&mut c, None, false), Err(ENOSYS));
    }

    #[test]
    fn grant_status_mapping() {
        assert_eq!(gntst_errno(GNTST_OKAY), Ok(()));
        assert_eq!(gntst_errno(GNTST_PERMISSION_DENIED), Err(EPERM));
        assert_eq!(gntst_errno(GNTST_BAD_DOMAIN), Err(ESRCH));
        assert_eq!(gntst_errno(GNTST_NO_SPACE), Err(ENOSPC));
        assert_eq!(gntst_errno(-99), Err(xen_abi::errno::EIO));
    }

    #[test]
    fn pv_defaults() {
        let c = pv_config(2, [1; 16]);
        assert_eq!((c.flags, c.max_vcpus, c.grant_opts), (0, 2, 1));
    }
}
