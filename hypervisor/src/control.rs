//! The privileged interface: `domctl` and `sysctl` (Xen 4.17 layouts, interface 0x15).
//!
//! Order of checks, as Xen's: the interface version (`-EACCES`), then the caller's
//! privilege (`-EPERM`, H8), then the target domain (`-ESRCH`), then each argument. The
//! request is copied in once; results are copied back whole, as Xen does.

extern crate alloc;

use crate::domain::{DomId, Domain, DomainTable, RunState, Vcpu};
use crate::hypercall::Ret;
use crate::mm::{HvMem, MMU};
use crate::pv;
use alloc::boxed::Box;
use core::mem::offset_of;
use hv_core::frame::Owner;
use hv_core::mm::MmuCtx;
use xen_abi::domctl::*;
use xen_abi::errno::*;
use xen_abi::sysctl::*;
use xen_abi::xen::{VcpuGuestContext, DOMID_FIRST_RESERVED};

/// Most vCPUs a domain may have.
pub const MAX_VCPUS: u32 = 64;

fn caller_l4(t: &mut DomainTable, me: DomId, vi: usize) -> Result<u64, Errno> {
    t.get(me)
        .and_then(|d| d.vcpus.get(vi))
        .map(|v| pv::current_l4(v))
        .ok_or(EINVAL)
}

/// `domctl(op)`.
pub fn domctl(t: &mut DomainTable, me: DomId, vi: usize, arg: u64) -> Ret {
    let Ok(l4) = caller_l4(t, me, vi) else {
        return Ret::Err(EINVAL);
    };
    let mut op: XenDomctl = match crate::guest_mem::read(l4, arg) {
        Ok(op) => op,
        Err(_) => return Ret::Err(EFAULT),
    };
    if op.interface_version != XEN_DOMCTL_INTERFACE_VERSION {
        return Ret::Err(EACCES);
    }
    if !t.get(me).is_some_and(|d| d.privileged) {
        return Ret::Err(EPERM);
    }
    let r = do_domctl(t, me, vi, l4, &mut op);
    match r {
        Ok(Some(cont)) => cont,
        Ok(None) => match crate::guest_mem::write(l4, arg, &op) {
            Ok(()) => Ret::Value(0),
            Err(_) => Ret::Err(EFAULT),
        },
        Err(e) => Ret::Err(e),
    }
}

fn target(t: &mut DomainTable, id: DomId) -> Result<&mut Domain, Errno> {
    t.get(id).ok_or(ESRCH)
}

/// Returns `Some(ret)` when the operation must be restarted (a continuation).
fn do_domctl(
    t: &mut DomainTable,
    me: DomId,
    vi: usize,
    l4: u64,
    op: &mut XenDomctl,
) -> Result<Option<Ret>, Errno> {
    let dom = op.domain;
    match op.cmd {
        XEN_DOMCTL_CREATEDOMAIN => {
            let c: XenDomctlCreatedomain = op.payload();
            let id = create_domain(t, dom, &c)?;
            op.domain = id;
        }
        XEN_DOMCTL_MAX_VCPUS => {
            let m: XenDomctlMaxVcpus = op.payload();
            let d = target(t, dom)?;
            if m.max != d.max_vcpus {
                return Err(EINVAL);
            }
        }
        XEN_DOMCTL_MAX_MEM => {
            let m: XenDomctlMaxMem = op.payload();
            let d = target(t, dom)?;
            d.max_pages = m.max_memkb / 4;
        }
        XEN_DOMCTL_PAUSEDOMAIN => {
            if dom == me {
                return Err(EINVAL);
            }
            let d = target(t, dom)?;
            d.pause_count = d.pause_count.checked_add(1).ok_or(EINVAL)?;
            d.paused = true;
            if d.pause_count == 1 {
                crate::sched::pause(dom);
            }
        }
        XEN_DOMCTL_UNPAUSEDOMAIN => {
            let d = target(t, dom)?;
            if d.pause_count == 0 || d.dying {
                return Err(EINVAL);
            }
            d.pause_count -= 1;
            d.paused = d.pause_count > 0;
            if !d.paused {
                crate::sched::unpause(dom);
            }
        }
        XEN_DOMCTL_DESTROYDOMAIN => {
            if dom == me || dom == 0 {
                return Err(EINVAL);
            }
            if destroy_domain(t, dom)? {
                return Ok(Some(Ret::Restart));
            }
        }
        XEN_DOMCTL_GETDOMAININFO => {
            // As Xen: the first domain whose id is at least the one asked for.
            let found = t
                .doms
                .iter()
                .map(|d| d.id)
                .filter(|&id| id >= dom)
                .min()
                .ok_or(ESRCH)?;
            let d = target(t, found)?;
            let info = domain_info(d);
            op.domain = found;
            op.set_payload(&info);
        }
        XEN_DOMCTL_SETVCPUCONTEXT => {
            let c: XenDomctlVcpucontext = op.payload();
            set_vcpu_context(t, dom, c.vcpu, c.ctxt, l4)?;
            let d = target(t, dom)?;
            let online = d
                .vcpus
                .get(c.vcpu as usize)
                .is_some_and(|v| v.state != RunState::Down);
            if online {
                crate::sched::vcpu_online(d, c.vcpu as usize);
            }
        }
        XEN_DOMCTL_GETVCPUCONTEXT => {
            let c: XenDomctlVcpucontext = op.payload();
            if dom == me && c.vcpu as usize == vi {
                // As Xen: not the calling vCPU itself (it could not be paused).
                return Err(EINVAL);
            }
            return get_vcpu_context(t, dom, c.vcpu, c.ctxt, l4).map(|r| r.map(|()| Ret::Restart));
        }
        XEN_DOMCTL_GETVCPUINFO => {
            let mut g: XenDomctlGetvcpuinfo = op.payload();
            let d = target(t, dom)?;
            let v = d.vcpus.get(g.vcpu as usize).ok_or(ESRCH)?;
            g.online = u8::from(v.state != RunState::Down);
            g.blocked = u8::from(v.state == RunState::Blocked);
            g.running = u8::from(v.running_on.is_some());
            g.cpu_time = v.cpu_time(crate::events::now_ns());
            g.cpu = match v.running_on {
                Some(cpu) => cpu as u32,
                None => crate::sched::vcpu_cpu(dom, g.vcpu as usize).unwrap_or(0),
            };
            op.set_payload(&g);
        }
        XEN_DOMCTL_SETVCPUAFFINITY | XEN_DOMCTL_GETVCPUAFFINITY => {
            let mut a: XenDomctlVcpuaffinity = op.payload();
            let d = target(t, dom)?;
            let nr = crate::smp::online_count();
            let v = d.vcpus.get_mut(a.vcpu as usize).ok_or(EINVAL)?;
            let bm = a.cpumap_hard;
            let bytes = (bm.nr_bits as usize).div_ceil(8).min(8);
            if op.cmd == XEN_DOMCTL_SETVCPUAFFINITY {
                let mut b = [0u8; 8];
                crate::guest_mem::copy_from_guest(l4, bm.bitmap, &mut b[..bytes])
                    .map_err(|_| EFAULT)?;
                let mask = u64::from_le_bytes(b) & ((1u64 << nr.min(63)) - 1).max(1);
                if mask == 0 {
                    return Err(EINVAL);
                }
                crate::sched::set_affinity(dom, a.vcpu as usize, mask)?;
                v.affinity = mask;
            }
            let out = v.affinity.to_le_bytes();
            crate::guest_mem::copy_to_guest(l4, bm.bitmap, &out[..bytes]).map_err(|_| EFAULT)?;
            a.cpumap_hard = bm;
            op.set_payload(&a);
        }
        XEN_DOMCTL_SETDOMAINHANDLE => {
            let h: XenDomctlSetdomainhandle = op.payload();
            target(t, dom)?.handle = h.handle;
        }
        XEN_DOMCTL_SETTIMEOFFSET => {
            let o: XenDomctlSettimeoffset = op.payload();
            target(t, dom)?.time_offset = o.time_offset_seconds;
        }
        XEN_DOMCTL_SET_ADDRESS_SIZE => {
            let a: XenDomctlAddressSize = op.payload();
            target(t, dom)?;
            if a.size != 64 {
                return Err(EINVAL);
            }
        }
        XEN_DOMCTL_HYPERCALL_INIT => {
            let h: XenDomctlHypercallInit = op.payload();
            target(t, dom)?;
            let mfn = h.gmfn;
            let mut guard = MMU.lock();
            let mmu = guard.as_mut().ok_or(ENOSYS)?;
            // A frame of the domain that may be written (not a page table).
            mmu.get_page_and_type(&mut HvMem, mfn, dom, hv_core::frame::PageType::Writable)
                .map_err(|_| EINVAL)?;
            let page = hv_core::build::hypercall_page();
            // SAFETY: the frame belongs to the target domain and holds a Writable type
            // reference for the duration of the copy, so it is not a page table.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    page.as_ptr(),
                    crate::mem::phys_to_virt(mfn << 12) as *mut u8,
                    4096,
                )
            };
            mmu.put_page_and_type(&mut HvMem, mfn);
        }
        XEN_DOMCTL_SCHEDULER_OP => {
            let mut s: XenDomctlSchedulerOp = op.payload();
            if s.sched_id != XEN_SCHEDULER_CREDIT {
                return Err(EINVAL);
            }
            let d = target(t, dom)?;
            let mut credit: XenDomctlSchedCredit = xen_abi::wire::Wire::get(&s.u.0);
            match s.cmd {
                XEN_DOMCTL_SCHEDOP_GETINFO => {
                    credit.weight = d.weight;
                    credit.cap = d.cap;
                }
                XEN_DOMCTL_SCHEDOP_PUTINFO => {
                    // 0 leaves the weight unchanged; 0xffff leaves the cap unchanged.
                    let weight = if credit.weight != 0 {
                        credit.weight
                    } else {
                        d.weight
                    };
                    let cap = if credit.cap != 0xffff {
                        credit.cap
                    } else {
                        d.cap
                    };
                    if u32::from(cap) > 100 * crate::smp::online_count() {
                        return Err(EINVAL);
                    }
                    crate::sched::set_params(dom, weight.into(), cap.into())?;
                    d.weight = weight;
                    d.cap = cap;
                }
                _ => return Err(EINVAL),
            }
            xen_abi::wire::Wire::put(&credit, &mut s.u.0);
            op.set_payload(&s);
        }
        _ => return Err(ENOSYS),
    }
    let _ = vi;
    Ok(None)
}

fn kick_running(d: &Domain) {
    for v in d.vcpus.iter() {
        if let Some(cpu) = v.running_on {
            crate::sched::resched(cpu);
        }
    }
}

static NEXT_ID: spin::Mutex<DomId> = spin::Mutex::new(1);

fn create_domain(
    t: &mut DomainTable,
    want: DomId,
    c: &XenDomctlCreatedomain,
) -> Result<DomId, Errno> {
    // Decode and validate first.
    if c.flags & XEN_DOMCTL_CDF_HVM != 0 {
        return Err(EOPNOTSUPP);
    }
    if c.max_vcpus == 0 || c.max_vcpus > MAX_VCPUS || c.grant_opts == 0 || c.max_grant_frames < 1 {
        return Err(EINVAL);
    }
    let id = if want != 0 {
        if want >= DOMID_FIRST_RESERVED {
            return Err(EINVAL);
        }
        if t.contains(want) {
            return Err(EEXIST);
        }
        want
    } else {
        let mut next = NEXT_ID.lock();
        let mut tries = 0u32;
        loop {
            let cand = *next;
            *next = if cand + 1 >= DOMID_FIRST_RESERVED {
                1
            } else {
                cand + 1
            };
            if !t.contains(cand) {
                break cand;
            }
            tries += 1;
            if tries > u32::from(DOMID_FIRST_RESERVED) {
                return Err(ENOMEM);
            }
        }
    };
    let evtchn_limit = c
        .max_evtchn_port
        .saturating_add(1)
        .clamp(2, hv_core::evtchn::NR_EVENT_CHANNELS);
    // Perform: the grant table, the shared_info frame, the vCPUs, the domain (created
    // paused).
    crate::gnttab::create_domain(id, c.max_grant_frames as u32)?;
    let shared = crate::mem::alloc_frame().ok_or(ENOMEM)?;
    {
        let mut guard = MMU.lock();
        let mmu = guard.as_mut().ok_or(ENOSYS)?;
        if mmu.assign(shared, Owner::Domain(id)).is_err() {
            crate::mem::free_frame(shared);
            return Err(ENOMEM);
        }
    }
    let sh = crate::shinfo::SharedInfo::new(shared);
    for v in 0..crate::shinfo::MAX_LEGACY_VCPUS {
        sh.set_upcall_mask(v, true);
    }
    crate::time::publish_wallclock(&sh);
    let mut vcpus = alloc::vec::Vec::new();
    for v in 0..c.max_vcpus {
        let mut vc = Vcpu::new(v);
        vc.state = RunState::Down;
        vcpus.push(vc);
    }
    t.doms.push(Box::new(Domain {
        id,
        privileged: false,
        vcpus,
        shared_info_mfn: shared,
        max_pages: 0,
        tot_pages: 0,
        vm_assist: 0,
        shutdown: None,
        paused: true,
        pause_count: 1,
        dying: false,
        max_vcpus: c.max_vcpus,
        handle: c.handle,
        time_offset: 0,
        weight: 256,
        cap: 0,
        evtchn: hv_core::evtchn::Table::new(evtchn_limit),
        pirqs: hv_core::pirq::Table::new(),
        cmdline: heapless::String::new(),
    }));
    // The shared_info page counts towards the domain's pages, as in Xen.
    if let Some(d) = t.get(id) {
        d.tot_pages = 1;
        crate::sched::domain_created(d);
    }
    log::info!("d{id}: created ({} vCPUs)", c.max_vcpus);
    Ok(id)
}

/// Destroy domain `id`: returns Ok(true) while its vCPUs are still on some CPU (the
/// caller retries), Ok(false) when it is gone and its memory is free.
fn destroy_domain(t: &mut DomainTable, id: DomId) -> Result<bool, Errno> {
    let d = target(t, id)?;
    if !d.dying {
        d.dying = true;
        d.paused = true;
        d.pause_count = d.pause_count.saturating_add(1);
        crate::sched::pause(id);
    }
    if d.vcpus.iter().any(|v| v.running_on.is_some()) {
        log::debug!("d{id}: destroy waits for its vCPUs to leave their CPUs");
        kick_running(d);
        return Ok(true);
    }
    // Nothing runs it any more: its grant mappings and table first (bounded steps).
    if crate::gnttab::destroy_domain(id)? {
        log::debug!("d{id}: destroy waits for its grant mappings to go");
        return Ok(true);
    }
    let d = target(t, id)?;
    // Then what else it holds.
    for vi in 0..d.vcpus.len() {
        crate::desc::release_gdt(d, vi);
        if let Some(v) = d.vcpus.get_mut(vi) {
            v.state = RunState::Down;
        }
    }
    // Its physical IRQs: unbound, pins masked.
    crate::events::release_pirqs(d);
    // Its event channels: peers' ports become unbound.
    let ports: alloc::vec::Vec<(u32, hv_core::evtchn::State)> =
        d.evtchn.ports().map(|(p, c)| (p, c.state)).collect();
    for (port, state) in ports {
        if let hv_core::evtchn::State::Interdomain { remote, .. } = state {
            if remote != id {
                if let Some((me, r)) = t.get2(id, remote) {
                    let _ =
                        hv_core::evtchn::close_in(&mut me.evtchn, id, port, Some(&mut r.evtchn));
                    continue;
                }
            }
        }
        if let Some(me) = t.get(id) {
            me.evtchn.force_close(port);
        }
    }
    let Some(pos) = t.doms.iter().position(|d| d.id == id) else {
        return Err(ESRCH);
    };
    let mut dom = t.doms.swap_remove(pos);
    crate::sched::domain_destroyed(id);
    let mut guard = MMU.lock();
    let mmu = guard.as_mut().ok_or(ENOSYS)?;
    let r = mmu.relinquish(&mut HvMem, id, dom.vcpus.iter_mut().map(|v| &mut v.mm));
    log::info!(
        "d{id}: destroyed ({} frames still referenced elsewhere)",
        r.still_referenced
    );
    Ok(false)
}

fn domain_info(d: &Domain) -> XenDomctlGetdomaininfo {
    let mut flags = match d.shutdown {
        Some(crate::domain::Shutdown::Guest(code)) => {
            XEN_DOMINF_SHUTDOWN | ((code & XEN_DOMINF_SHUTDOWNMASK) << XEN_DOMINF_SHUTDOWNSHIFT)
        }
        Some(crate::domain::Shutdown::Crashed) => {
            XEN_DOMINF_SHUTDOWN | (3 << XEN_DOMINF_SHUTDOWNSHIFT)
        }
        None => XEN_DOMINF_SHUTDOWNMASK << XEN_DOMINF_SHUTDOWNSHIFT,
    };
    if d.dying {
        flags |= XEN_DOMINF_DYING;
    }
    if d.paused {
        flags |= XEN_DOMINF_PAUSED;
    }
    let online: alloc::vec::Vec<&Box<Vcpu>> = d
        .vcpus
        .iter()
        .filter(|v| v.state != RunState::Down)
        .collect();
    if online.iter().any(|v| v.running_on.is_some()) {
        flags |= XEN_DOMINF_RUNNING;
    } else if !online.is_empty() && online.iter().all(|v| v.state == RunState::Blocked) {
        flags |= XEN_DOMINF_BLOCKED;
    }
    XenDomctlGetdomaininfo {
        domain: d.id,
        flags,
        tot_pages: d.tot_pages,
        max_pages: if d.privileged {
            u64::from(u32::MAX)
        } else {
            d.max_pages
        },
        shared_info_frame: d.shared_info_mfn,
        cpu_time: {
            let now = crate::events::now_ns();
            d.vcpus.iter().map(|v| v.cpu_time(now)).sum()
        },
        nr_online_vcpus: online.len() as u32,
        max_vcpu_id: d.vcpus.len().saturating_sub(1) as u32,
        handle: d.handle,
        gpaddr_bits: 52,
        ..Default::default()
    }
}

/// Offsets in `struct vcpu_guest_context`.
mod ctx {
    use super::*;
    use xen_abi::xen::CpuUserRegs;
    pub const SIZE: usize = core::mem::size_of::<VcpuGuestContext>();
    pub const FPU: usize = offset_of!(VcpuGuestContext, fpu_ctxt);
    pub const FLAGS: usize = offset_of!(VcpuGuestContext, flags);
    pub const REGS: usize = offset_of!(VcpuGuestContext, user_regs);
    pub const TRAPS: usize = offset_of!(VcpuGuestContext, trap_ctxt);
    pub const LDT_ENTS: usize = offset_of!(VcpuGuestContext, ldt_ents);
    pub const GDT_FRAMES: usize = offset_of!(VcpuGuestContext, gdt_frames);
    pub const GDT_ENTS: usize = offset_of!(VcpuGuestContext, gdt_ents);
    pub const KERNEL_SS: usize = offset_of!(VcpuGuestContext, kernel_ss);
    pub const KERNEL_SP: usize = offset_of!(VcpuGuestContext, kernel_sp);
    pub const CTRLREG: usize = offset_of!(VcpuGuestContext, ctrlreg);
    pub const EVENT_CB: usize = offset_of!(VcpuGuestContext, event_callback_eip);
    pub const FAILSAFE_CB: usize = offset_of!(VcpuGuestContext, failsafe_callback_eip);
    pub const SYSCALL_CB: usize = offset_of!(VcpuGuestContext, syscall_callback_eip);
    pub const VM_ASSIST: usize = offset_of!(VcpuGuestContext, vm_assist);
    pub const FS_BASE: usize = offset_of!(VcpuGuestContext, fs_base);
    pub const GS_KERNEL: usize = offset_of!(VcpuGuestContext, gs_base_kernel);
    pub const GS_USER: usize = offset_of!(VcpuGuestContext, gs_base_user);
    pub const R15: usize = REGS + offset_of!(CpuUserRegs, r15);
    pub const RIP: usize = REGS + offset_of!(CpuUserRegs, rip);
    pub const RFLAGS: usize = REGS + offset_of!(CpuUserRegs, rflags);
    pub const RSP: usize = REGS + offset_of!(CpuUserRegs, rsp);
    pub const CS: usize = REGS + offset_of!(CpuUserRegs, cs);
    pub const SS: usize = REGS + offset_of!(CpuUserRegs, ss);
    pub const LDT_BASE: usize = offset_of!(VcpuGuestContext, ldt_base);
    pub const DEBUGREG: usize = offset_of!(VcpuGuestContext, debugreg);
}

fn q(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

fn canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1ffff
}

/// `XEN_DOMCTL_setvcpucontext`: load a vCPU's initial state (the domain builder's last
/// step before unpause). Everything is checked before anything changes.
pub(crate) fn set_vcpu_context(
    t: &mut DomainTable,
    dom: DomId,
    vcpu: u32,
    ctxt: u64,
    l4: u64,
) -> Result<(), Errno> {
    let d = target(t, dom)?;
    if d.vcpus.get(vcpu as usize).is_none() {
        return Err(EINVAL);
    }
    if ctxt == 0 {
        return Err(EINVAL);
    }
    let mut b: Box<[u8; ctx::SIZE]> = Box::new([0; ctx::SIZE]);
    crate::guest_mem::copy_from_guest(l4, ctxt, &mut b[..]).map_err(|_| EFAULT)?;
    let flags = q(&b[..], ctx::FLAGS);
    let cr3 = q(&b[..], ctx::CTRLREG + 3 * 8);
    let user_cr3 = q(&b[..], ctx::CTRLREG + 8);
    let (rip, rsp) = (q(&b[..], ctx::RIP), q(&b[..], ctx::RSP));
    let callbacks = [
        q(&b[..], ctx::EVENT_CB),
        q(&b[..], ctx::FAILSAFE_CB),
        q(&b[..], ctx::SYSCALL_CB),
    ];
    let bases = [
        q(&b[..], ctx::FS_BASE),
        q(&b[..], ctx::GS_KERNEL),
        q(&b[..], ctx::GS_USER),
    ];
    let gdt_ents = q(&b[..], ctx::GDT_ENTS);
    // Validate.
    if cr3 == 0
        || !canonical(rip)
        || !canonical(rsp)
        || callbacks.iter().chain(bases.iter()).any(|&a| !canonical(a))
    {
        return Err(EINVAL);
    }
    if q(&b[..], ctx::LDT_ENTS) != 0 || gdt_ents > crate::arch::gdt::FIRST_RESERVED as u64 {
        return Err(EINVAL);
    }
    let v = d.vcpus.get_mut(vcpu as usize).ok_or(EINVAL)?;
    if v.running_on.is_some() {
        return Err(EBUSY);
    }
    // The base pointers: validated L4s of the domain (the builder pinned them).
    {
        let mut guard = MMU.lock();
        let mmu = guard.as_mut().ok_or(ENOSYS)?;
        let ctx_local = MmuCtx::local(dom);
        let mut op = xen_abi::mm::MmuextOp {
            cmd: xen_abi::mm::MMUEXT_NEW_BASEPTR,
            _pad: 0,
            arg1: cr3 >> 12,
            arg2: 0,
        };
        mmu.mmuext_op(&mut HvMem, ctx_local, &mut v.mm, &op)
            .map_err(|_| EINVAL)?;
        if user_cr3 != 0 {
            op.cmd = xen_abi::mm::MMUEXT_NEW_USER_BASEPTR;
            op.arg1 = user_cr3 >> 12;
            mmu.mmuext_op(&mut HvMem, ctx_local, &mut v.mm, &op)
                .map_err(|_| EINVAL)?;
        }
    }
    // Registers (selectors forced to the flat ring-3 ones), callbacks, traps, FPU.
    let r = |i: usize| q(&b[..], ctx::R15 + i * 8);
    v.regs = crate::arch::percpu::Regs {
        r15: r(0),
        r14: r(1),
        r13: r(2),
        r12: r(3),
        rbp: r(4),
        rbx: r(5),
        r11: r(6),
        r10: r(7),
        r9: r(8),
        r8: r(9),
        rax: r(10),
        rcx: r(11),
        rdx: r(12),
        rsi: r(13),
        rdi: r(14),
        error_code: 0,
        vector: 0,
        rip,
        cs: u64::from(xen_abi::mm::FLAT_KERNEL_CS),
        rflags: (q(&b[..], ctx::RFLAGS) & !(3 << 12)) | 0x202,
        rsp,
        ss: u64::from(xen_abi::mm::FLAT_KERNEL_SS),
    };
    v.kernel_mode = true;
    v.event_callback = callbacks[0];
    v.failsafe_callback = callbacks[1];
    v.syscall_callback = callbacks[2];
    v.failsafe_masks_events = flags & xen_abi::xen::VGCF_FAILSAFE_DISABLES_EVENTS != 0;
    v.syscall_masks_events = flags & xen_abi::xen::VGCF_SYSCALL_DISABLES_EVENTS != 0;
    v.fs_base = bases[0];
    v.gs_base_kernel = bases[1];
    v.gs_base_user = bases[2];
    v.kernel_ss = q(&b[..], ctx::KERNEL_SS) | 3;
    v.kernel_sp = q(&b[..], ctx::KERNEL_SP);
    for (vec, slot) in v.traps.iter_mut().enumerate() {
        let e = ctx::TRAPS + vec * 16;
        let addr = q(&b[..], e + 8);
        *slot = crate::domain::TrapInfo {
            address: if canonical(addr) { addr } else { 0 },
            cs: u16::from_le_bytes([b[e + 2], b[e + 3]]),
            flags: b[e + 1],
        };
    }
    v.fpu.0.copy_from_slice(&b[ctx::FPU..ctx::FPU + 512]);
    // MXCSR reserved bits would make fxrstor fault in the hypervisor.
    let mxcsr = u32::from_le_bytes([v.fpu.0[24], v.fpu.0[25], v.fpu.0[26], v.fpu.0[27]]) & 0xffbf;
    v.fpu.0[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    v.initialised = true;
    if flags & xen_abi::xen::VGCF_ONLINE != 0 || vcpu == 0 {
        v.state = RunState::Runnable;
    }
    let gdt: heapless::Vec<u64, 16> = (0..(gdt_ents as usize).div_ceil(512))
        .map(|i| q(&b[..], ctx::GDT_FRAMES + i * 8))
        .collect();
    d.vm_assist = q(&b[..], ctx::VM_ASSIST);
    if !gdt.is_empty() {
        crate::desc::install_gdt(d, vcpu as usize, &gdt, gdt_ents as u32)?;
    }
    let sh = crate::shinfo::SharedInfo::new(d.shared_info_mfn);
    crate::time::publish_vcpu_time(&sh, vcpu);
    Ok(())
}

/// `XEN_DOMCTL_getvcpucontext`: the state `setvcpucontext` takes, read back (libxc's
/// `xc_vcpu_getcontext`, used to save or inspect a domain). As Xen: `-EINVAL` for a
/// vCPU that does not exist or is the caller, `-ENODATA` for one never initialised,
/// `-EFAULT` if the buffer cannot be written. Xen pauses the vCPU for the read; here a
/// vCPU still loaded on another CPU is read once it is descheduled: if its domain is
/// paused the call restarts (`Some(())`) until then, otherwise it is `-EBUSY` (the
/// toolstack pauses a domain before reading its context).
fn get_vcpu_context(
    t: &mut DomainTable,
    dom: DomId,
    vcpu: u32,
    ctxt: u64,
    l4: u64,
) -> Result<Option<()>, Errno> {
    let d = target(t, dom)?;
    let paused = d.paused;
    let vm_assist = d.vm_assist;
    let v = d.vcpus.get(vcpu as usize).ok_or(EINVAL)?;
    if !v.initialised {
        return Err(ENODATA);
    }
    if let Some(cpu) = v.running_on {
        if !paused {
            return Err(EBUSY);
        }
        crate::sched::resched(cpu);
        return Ok(Some(()));
    }
    let mut b: Box<[u8; ctx::SIZE]> = Box::new([0; ctx::SIZE]);
    let mut put = |off: usize, val: u64| {
        if let Some(s) = b.get_mut(off..off + 8) {
            s.copy_from_slice(&val.to_le_bytes());
        }
    };
    let mut flags = xen_abi::xen::VGCF_I387_VALID;
    if v.state != RunState::Down {
        flags |= xen_abi::xen::VGCF_ONLINE;
    }
    if v.kernel_mode {
        flags |= xen_abi::xen::VGCF_IN_KERNEL;
    }
    if v.failsafe_masks_events {
        flags |= xen_abi::xen::VGCF_FAILSAFE_DISABLES_EVENTS;
    }
    if v.syscall_masks_events {
        flags |= xen_abi::xen::VGCF_SYSCALL_DISABLES_EVENTS;
    }
    put(ctx::FLAGS, flags);
    let r = &v.regs;
    let gprs = [
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx,
        r.rsi, r.rdi,
    ];
    for (i, val) in gprs.into_iter().enumerate() {
        put(ctx::R15 + i * 8, val);
    }
    put(ctx::RIP, r.rip);
    // The virtual IOPL is merged back into rflags, as Xen does.
    put(
        ctx::RFLAGS,
        (r.rflags & !(3 << 12)) | (u64::from(v.iopl & 3) << 12),
    );
    put(ctx::RSP, r.rsp);
    put(ctx::CS, r.cs & 0xffff);
    put(ctx::SS, r.ss & 0xffff);
    for (vec, slot) in v.traps.iter().enumerate() {
        if slot.address == 0 {
            continue;
        }
        let e = ctx::TRAPS + vec * 16;
        let head = u64::from(vec as u8) | (u64::from(slot.flags) << 8) | (u64::from(slot.cs) << 16);
        put(e, head);
        put(e + 8, slot.address);
    }
    let (ldt_base, ldt_ents) = v.mm.ldt();
    put(ctx::LDT_BASE, ldt_base);
    put(ctx::LDT_ENTS, u64::from(ldt_ents));
    for (i, f) in v.gdt_frames.iter().enumerate() {
        put(ctx::GDT_FRAMES + i * 8, *f);
    }
    put(ctx::GDT_ENTS, u64::from(v.gdt_ents));
    put(ctx::KERNEL_SS, v.kernel_ss);
    put(ctx::KERNEL_SP, v.kernel_sp);
    // CR0 as the guest sees it (TS from fpu_taskswitch), the base pointers as
    // `xen_pfn_to_cr3` of their machine frames.
    put(ctx::CTRLREG, crate::emulate::guest_cr0(v));
    put(ctx::CTRLREG + 4 * 8, crate::emulate::guest_cr4());
    if let Some(u) = v.mm.user_l4() {
        put(ctx::CTRLREG + 8, xen_abi::xen::xen_pfn_to_cr3(u));
    }
    if let Some(k) = v.mm.kernel_l4() {
        put(ctx::CTRLREG + 3 * 8, xen_abi::xen::xen_pfn_to_cr3(k));
    }
    for (i, dr) in v.debugreg.iter().enumerate() {
        put(ctx::DEBUGREG + i * 8, *dr);
    }
    put(ctx::EVENT_CB, v.event_callback);
    put(ctx::FAILSAFE_CB, v.failsafe_callback);
    put(ctx::SYSCALL_CB, v.syscall_callback);
    put(ctx::VM_ASSIST, vm_assist);
    put(ctx::FS_BASE, v.fs_base);
    put(ctx::GS_KERNEL, v.gs_base_kernel);
    put(ctx::GS_USER, v.gs_base_user);
    b[ctx::FPU..ctx::FPU + 512].copy_from_slice(&v.fpu.0);
    crate::guest_mem::copy_to_guest(l4, ctxt, &b[..]).map_err(|_| EFAULT)?;
    Ok(None)
}

/// `sysctl(op)`.
pub fn sysctl(t: &mut DomainTable, me: DomId, vi: usize, arg: u64) -> Ret {
    let Ok(l4) = caller_l4(t, me, vi) else {
        return Ret::Err(EINVAL);
    };
    let mut op: XenSysctl = match crate::guest_mem::read(l4, arg) {
        Ok(op) => op,
        Err(_) => return Ret::Err(EFAULT),
    };
    if op.interface_version != XEN_SYSCTL_INTERFACE_VERSION {
        return Ret::Err(EACCES);
    }
    if !t.get(me).is_some_and(|d| d.privileged) {
        return Ret::Err(EPERM);
    }
    let r = match op.cmd {
        XEN_SYSCTL_PHYSINFO => {
            let (free, total) = crate::mem::stats();
            let nr = crate::smp::online_count();
            let p = XenSysctlPhysinfo {
                threads_per_core: 1,
                cores_per_socket: nr,
                nr_cpus: nr,
                max_cpu_id: nr.saturating_sub(1),
                nr_nodes: 1,
                max_node_id: 0,
                cpu_khz: crate::arch::timer::tsc_khz() as u32,
                capabilities: XEN_SYSCTL_PHYSCAP_PV,
                total_pages: total as u64,
                free_pages: free as u64,
                max_mfn: crate::mem::MAX_FRAMES as u64 - 1,
                ..Default::default()
            };
            op.set_payload(&p);
            Ok(())
        }
        XEN_SYSCTL_SCHED_ID => {
            op.set_payload(&XenSysctlSchedId {
                sched_id: XEN_SCHEDULER_CREDIT,
            });
            Ok(())
        }
        XEN_SYSCTL_GETDOMAININFOLIST => {
            let mut g: XenSysctlGetdomaininfolist = op.payload();
            let mut ids: alloc::vec::Vec<DomId> = t
                .doms
                .iter()
                .map(|d| d.id)
                .filter(|&id| id >= g.first_domain)
                .collect();
            ids.sort_unstable();
            let mut n = 0u32;
            for id in ids.into_iter().take(g.max_domains.min(1024) as usize) {
                let Some(d) = t.get(id) else { continue };
                let info = domain_info(d);
                let mut bytes = [0u8; 112];
                xen_abi::wire::Wire::put(&info, &mut bytes);
                if crate::guest_mem::copy_to_guest(
                    l4,
                    g.buffer.wrapping_add(u64::from(n) * 112),
                    &bytes,
                )
                .is_err()
                {
                    return Ret::Err(EFAULT);
                }
                n += 1;
            }
            g.num_domains = n;
            op.set_payload(&g);
            Ok(())
        }
        XEN_SYSCTL_READCONSOLE => {
            let mut r: XenSysctlReadconsole = op.payload();
            let mut buf = alloc::vec![0u8; (r.count as usize).min(crate::console::HISTORY_SIZE)];
            let (n, next) = crate::console::HISTORY.lock().read(
                &mut buf,
                r.incremental != 0,
                r.index,
                r.clear != 0,
            );
            if crate::guest_mem::copy_to_guest(l4, r.buffer, &buf[..n]).is_err() {
                return Ret::Err(EFAULT);
            }
            r.count = n as u32;
            r.index = next;
            op.set_payload(&r);
            Ok(())
        }
        _ => Err(ENOSYS),
    };
    match r {
        Ok(()) => match crate::guest_mem::write(l4, arg, &op) {
            Ok(()) => Ret::Value(0),
            Err(_) => Ret::Err(EFAULT),
        },
        Err(e) => Ret::Err(e),
    }
}
