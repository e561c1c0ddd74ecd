//! Event channels, VIRQs and guest timers: the mechanism around `hv_core::evtchn`.
//!
//! The port table decides; this module flips the bits in `shared_info` and wakes vCPUs.

extern crate alloc;

use crate::domain::{DomId, Domain, DomainTable};
use crate::hypercall::Ret;
use crate::pv::{self, After};
use crate::shinfo::SharedInfo;
use hv_core::evtchn::{self, Notify, State};
use xen_abi::errno::*;
use xen_abi::event_channel::*;

/// System time in ns since boot.
pub fn now_ns() -> u64 {
    crate::arch::timer::now_ns()
}

/// Mark `port` pending for vCPU `vcpu` of `d`, as Xen's `evtchn_2l_set_pending`: the
/// vCPU is kicked if its upcall became pending, and if the port was not pending before,
/// every vCPU of `d` polling it, or polling any port (`evtchn_check_pollers`), wakes.
pub fn set_pending(d: &mut Domain, vcpu: u32, port: u32) {
    let sh = SharedInfo::new(d.shared_info_mfn);
    let target = if (vcpu as usize) < d.vcpus.len() {
        vcpu
    } else {
        0
    };
    let r = sh.set_pending(target, port);
    if r.kick {
        crate::sched::wake(d, target as usize);
    }
    if r.newly {
        for vi in 0..d.vcpus.len() {
            if d.vcpus.get(vi).is_some_and(|v| v.poll.woken_by(port)) {
                crate::sched::wake(d, vi);
            }
        }
    }
}

/// Raise VIRQ `virq` on vCPU `vi` of `d` if it is bound.
pub fn send_virq(d: &mut Domain, vi: usize, virq: u32) {
    let Some(port) = d
        .vcpus
        .get(vi)
        .and_then(|v| v.virq_port.get(virq as usize).copied())
    else {
        return;
    };
    if port != 0 {
        set_pending(d, vi as u32, port);
    }
}

/// Arm (or with 0, cancel) vCPU `vi`'s single-shot timer at absolute system time `t`.
pub fn set_timer(d: &mut Domain, vi: usize, t: u64) {
    let Some(v) = d.vcpus.get_mut(vi) else { return };
    v.timer_deadline = t;
    if t == 0 {
        return;
    }
    if t <= now_ns() {
        v.timer_deadline = 0;
        send_virq(d, vi, xen_abi::xen::VIRQ_TIMER);
    } else {
        crate::sched::timer_changed();
    }
}

/// Fire every timer of `d` that is due.
pub fn fire_timers(d: &mut Domain, now: u64) {
    for vi in 0..d.vcpus.len() {
        let due = d
            .vcpus
            .get(vi)
            .is_some_and(|v| v.timer_deadline != 0 && v.timer_deadline <= now);
        if due {
            if let Some(v) = d.vcpus.get_mut(vi) {
                v.timer_deadline = 0;
            }
            send_virq(d, vi, xen_abi::xen::VIRQ_TIMER);
        }
        let poll_due = d
            .vcpus
            .get(vi)
            .is_some_and(|v| v.poll_deadline != 0 && v.poll_deadline <= now);
        if poll_due {
            if let Some(v) = d.vcpus.get_mut(vi) {
                v.poll_deadline = 0;
            }
            crate::sched::wake(d, vi);
        }
    }
}

fn rd<const N: usize>(d: &Domain, vi: usize, va: u64) -> Result<[u8; N], Errno> {
    let v = d.vcpus.get(vi).ok_or(EINVAL)?;
    let mut b = [0u8; N];
    crate::guest_mem::copy_from_guest(pv::current_l4(v), va, &mut b).map_err(|_| EFAULT)?;
    Ok(b)
}

fn wr(d: &Domain, vi: usize, va: u64, b: &[u8]) -> Result<(), Errno> {
    let v = d.vcpus.get(vi).ok_or(EINVAL)?;
    crate::guest_mem::copy_to_guest(pv::current_l4(v), va, b).map_err(|_| EFAULT)
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// `event_channel_op`: operations that may involve two domains are handled here with the
/// whole table; the rest on the caller's own table (`local_op`).
pub fn event_channel_op(
    t: &mut DomainTable,
    me: DomId,
    vi: usize,
    a: [u64; 5],
) -> Result<u64, Errno> {
    let (cmd, arg) = (a[0] as u32, a[1]);
    let caller = t.get(me).ok_or(ESRCH)?;
    let privileged = caller.privileged;
    match cmd {
        EVTCHNOP_ALLOC_UNBOUND => {
            let b: [u8; 8] = rd(caller, vi, arg)?;
            let dom = resolve(me, u16_at(&b, 0));
            let remote = resolve(me, u16_at(&b, 2));
            if dom != me && !privileged {
                return Err(EPERM);
            }
            wr(caller, vi, arg.wrapping_add(4), &[0; 4])?;
            // As Xen: the remote domain need not exist yet; only its id is recorded.
            let target = t.get(dom).ok_or(ESRCH)?;
            let port = target.evtchn.alloc_unbound(remote)?;
            let caller = t.get(me).ok_or(ESRCH)?;
            wr(caller, vi, arg.wrapping_add(4), &port.to_le_bytes())?;
            Ok(0)
        }
        EVTCHNOP_BIND_INTERDOMAIN => {
            let b: [u8; 12] = rd(caller, vi, arg)?;
            let (remote, rport) = (resolve(me, u16_at(&b, 0)), u32_at(&b, 4));
            wr(caller, vi, arg.wrapping_add(8), &[0; 4])?;
            let (port, d) = if remote == me {
                // Loopback: both ends in the caller's table.
                let port = evtchn::bind_interdomain(&mut caller.evtchn, me, None, me, rport)?;
                (port, caller)
            } else {
                let (d, r) = t.get2(me, remote).ok_or(ESRCH)?;
                let port = evtchn::bind_interdomain(
                    &mut d.evtchn,
                    me,
                    Some(&mut r.evtchn),
                    remote,
                    rport,
                )?;
                (port, d)
            };
            wr(d, vi, arg.wrapping_add(8), &port.to_le_bytes())?;
            // As Xen: the new local port starts pending, so no event sent before the
            // bind is lost.
            set_pending(d, 0, port);
            Ok(0)
        }
        EVTCHNOP_CLOSE => {
            let b: [u8; 4] = rd(caller, vi, arg)?;
            close_port(t, me, u32_at(&b, 0))?;
            Ok(0)
        }
        EVTCHNOP_RESET => {
            // As Xen's `evtchn_reset`: the caller itself, or (privileged) a domain its
            // controller paused; every port is closed as by EVTCHNOP_close.
            let b: [u8; 2] = rd(caller, vi, arg)?;
            let dom = resolve(me, u16_at(&b, 0));
            if dom != me && !privileged {
                return Err(EPERM);
            }
            let d = t.get(dom).ok_or(ESRCH)?;
            if dom != me && d.pause_count == 0 {
                return Err(EINVAL);
            }
            let ports: alloc::vec::Vec<u32> = d.evtchn.ports().map(|(p, _)| p).collect();
            for port in ports {
                close_port(t, dom, port)?;
            }
            Ok(0)
        }
        EVTCHNOP_SEND => {
            let b: [u8; 4] = rd(caller, vi, arg)?;
            match caller.evtchn.send(me, u32_at(&b, 0))? {
                Notify::None => {}
                // `vcpu` is u32::MAX for an interdomain port: the receiving port's vCPU.
                Notify::Port { dom, port, vcpu } => {
                    if let Some(r) = t.get(dom) {
                        let v = if vcpu == u32::MAX {
                            r.evtchn.get(port).map(|c| c.vcpu).unwrap_or(0)
                        } else {
                            vcpu
                        };
                        set_pending(r, v, port);
                    }
                }
            }
            Ok(0)
        }
        EVTCHNOP_STATUS => {
            let b: [u8; 24] = rd(caller, vi, arg)?;
            let dom = resolve(me, u16_at(&b, 0));
            if dom != me && !privileged {
                return Err(EPERM);
            }
            let port = u32_at(&b, 4);
            let ch = t.get(dom).ok_or(ESRCH)?.evtchn.status(port)?;
            let (status, u0, u1) = match ch.state {
                State::Free => (0u32, 0u32, 0u32),
                State::Unbound { remote } => (1, u32::from(remote), 0),
                State::Interdomain {
                    remote,
                    remote_port,
                } => (2, u32::from(remote), remote_port),
                State::Virq { virq } => (4, virq, 0),
                State::Ipi => (5, 0, 0),
                State::Pirq { pirq } => (EVTCHNSTAT_PIRQ, pirq, 0),
            };
            let mut out = b;
            out[8..12].copy_from_slice(&status.to_le_bytes());
            out[12..16].copy_from_slice(&ch.vcpu.to_le_bytes());
            out[16..20].copy_from_slice(&u0.to_le_bytes());
            out[20..24].copy_from_slice(&u1.to_le_bytes());
            let caller = t.get(me).ok_or(ESRCH)?;
            wr(caller, vi, arg, &out)?;
            Ok(0)
        }
        _ => local_op(caller, vi, a),
    }
}

/// Close `port` of `dom` (EVTCHNOP_close): an interdomain peer's end becomes unbound
/// (or, if the peer is gone, only this end is freed), a VIRQ slot is cleared, and the
/// port's pending bit goes.
fn close_port(t: &mut DomainTable, dom: DomId, port: u32) -> Result<(), Errno> {
    let d = t.get(dom).ok_or(ESRCH)?;
    let closed = match d.evtchn.get(port).map(|c| c.state) {
        Some(State::Interdomain { remote, .. }) if remote != dom => match t.get2(dom, remote) {
            Some((d, r)) => evtchn::close_in(&mut d.evtchn, dom, port, Some(&mut r.evtchn))?,
            None => {
                t.get(dom).ok_or(ESRCH)?.evtchn.force_close(port);
                evtchn::Closed::Plain
            }
        },
        _ => evtchn::close_in(&mut d.evtchn, dom, port, None)?,
    };
    let d = t.get(dom).ok_or(ESRCH)?;
    if let evtchn::Closed::Pirq { .. } = closed {
        apply_pin(d.pirqs.unbind_port(port));
    }
    if let evtchn::Closed::Virq { virq, vcpu } = closed {
        if let Some(slot) = d
            .vcpus
            .get_mut(vcpu as usize)
            .and_then(|v| v.virq_port.get_mut(virq as usize))
        {
            *slot = 0;
        }
    }
    SharedInfo::new(d.shared_info_mfn).clear_pending(port);
    Ok(())
}

/// `DOMID_SELF` means the caller.
fn resolve(me: DomId, dom: u16) -> DomId {
    if dom == xen_abi::xen::DOMID_SELF {
        me
    } else {
        dom
    }
}

/// The event-channel operations on the caller's own table.
fn local_op(d: &mut Domain, vi: usize, a: [u64; 5]) -> Result<u64, Errno> {
    let (cmd, arg) = (a[0] as u32, a[1]);
    let nr_vcpus = d.vcpus.len() as u32;
    match cmd {
        EVTCHNOP_BIND_VIRQ => {
            let b: [u8; 12] = rd(d, vi, arg)?;
            let (virq, vcpu) = (u32_at(&b, 0), u32_at(&b, 4));
            wr(d, vi, arg.wrapping_add(8), &[0; 4])?;
            let bound = d
                .vcpus
                .get(vcpu as usize)
                .and_then(|v| v.virq_port.get(virq as usize))
                .is_some_and(|&p| p != 0);
            let port = d.evtchn.bind_virq(virq, vcpu, nr_vcpus, bound)?;
            if let Some(slot) = d
                .vcpus
                .get_mut(vcpu as usize)
                .and_then(|v| v.virq_port.get_mut(virq as usize))
            {
                *slot = port;
            }
            wr(d, vi, arg.wrapping_add(8), &port.to_le_bytes())?;
            Ok(0)
        }
        EVTCHNOP_BIND_PIRQ => {
            // struct evtchn_bind_pirq { pirq; flags (BIND_PIRQ__WILL_SHARE); port OUT }.
            let b: [u8; 12] = rd(d, vi, arg)?;
            let pirq = u32_at(&b, 0);
            wr(d, vi, arg.wrapping_add(8), &[0; 4])?;
            if pirq >= hv_core::pirq::nr_pirqs(ioapic::nr_gsis()) {
                return Err(EINVAL);
            }
            d.pirqs.can_bind(pirq)?;
            let port = d.evtchn.bind_pirq(pirq)?;
            match d.pirqs.bind(pirq, port) {
                Ok(pin) => apply_pin(pin),
                Err(e) => {
                    d.evtchn.force_close(port);
                    return Err(e);
                }
            }
            wr(d, vi, arg.wrapping_add(8), &port.to_le_bytes())?;
            Ok(0)
        }
        EVTCHNOP_BIND_IPI => {
            let b: [u8; 8] = rd(d, vi, arg)?;
            wr(d, vi, arg.wrapping_add(4), &[0; 4])?;
            let port = d.evtchn.bind_ipi(u32_at(&b, 0), nr_vcpus)?;
            wr(d, vi, arg.wrapping_add(4), &port.to_le_bytes())?;
            Ok(0)
        }
        EVTCHNOP_UNMASK => {
            let b: [u8; 4] = rd(d, vi, arg)?;
            let port = u32_at(&b, 0);
            let ch = d.evtchn.get(port).copied().ok_or(EINVAL)?;
            if SharedInfo::new(d.shared_info_mfn).unmask(ch.vcpu, port) {
                crate::sched::wake(d, ch.vcpu as usize);
            }
            Ok(0)
        }
        EVTCHNOP_BIND_VCPU => {
            let b: [u8; 8] = rd(d, vi, arg)?;
            d.evtchn.bind_vcpu(u32_at(&b, 0), u32_at(&b, 4), nr_vcpus)?;
            Ok(0)
        }
        EVTCHNOP_INIT_CONTROL => {
            // Only the 2-level ABI is offered. Validate like Xen first (XSA-188: a bad
            // control frame is -EINVAL and leaves no state), then refuse: guests fall
            // back to 2-level event channels.
            let b: [u8; 16] = rd(d, vi, arg)?;
            let gfn = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            let offset = u32_at(&b, 8);
            let vcpu = u32_at(&b, 12);
            let owned =
                crate::mm::with_mmu(|m| m.frames().get(gfn).is_some_and(|f| f.owned_by(d.id)))
                    .unwrap_or(false);
            if !owned || offset & 7 != 0 || offset > 4096 - 64 || vcpu as usize >= d.vcpus.len() {
                return Err(EINVAL);
            }
            Err(ENOSYS)
        }
        _ => Err(ENOSYS),
    }
}

/// Most ports one `SCHEDOP_poll` may name (Xen's "fairly arbitrary limit").
pub const POLL_MAX_PORTS: usize = 128;

/// `SCHEDOP_poll`, as Xen 4.17's `do_poll`: returns at once if the vCPU's upcall needs
/// delivery or one of the ports is pending; otherwise blocks until one of them becomes
/// pending (with any other number than one port: until any port of the domain does),
/// the upcall is kicked, or the timeout passes.
pub fn sched_poll(d: &mut Domain, vi: usize, arg: u64) -> (Ret, After) {
    let b: [u8; 24] = match rd(d, vi, arg) {
        Ok(b) => b,
        Err(e) => return (Ret::Err(e), After::Resume),
    };
    let ports_va = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let nr = u32_at(&b, 8) as usize;
    let timeout = u64::from_le_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]);
    if nr > POLL_MAX_PORTS {
        return (Ret::Err(EINVAL), After::Resume);
    }
    // The whole array is readable (Xen's `guest_handle_okay`), or EFAULT.
    let mut pb = [0u8; POLL_MAX_PORTS * 4];
    let Some(pb) = pb.get_mut(..nr * 4) else {
        return (Ret::Err(EINVAL), After::Resume);
    };
    if nr != 0 {
        let Some(v) = d.vcpus.get(vi) else {
            return (Ret::Err(EINVAL), After::Resume);
        };
        if crate::guest_mem::copy_from_guest(pv::current_l4(v), ports_va, pb).is_err() {
            return (Ret::Err(EFAULT), After::Resume);
        }
    }
    let sh = SharedInfo::new(d.shared_info_mfn);
    let Some(v) = d.vcpus.get(vi) else {
        return (Ret::Err(EINVAL), After::Resume);
    };
    // `local_events_need_delivery`: an unmasked pending upcall ends the poll at once.
    if sh.upcall_pending(v.id) && !sh.upcall_mask(v.id) {
        return (Ret::Value(0), After::Resume);
    }
    let mut first = 0;
    for (i, p) in pb.chunks_exact(4).enumerate() {
        let port = u32_at(p, 0);
        if i == 0 {
            first = port;
        }
        if port >= d.evtchn.limit() {
            return (Ret::Err(EINVAL), After::Resume);
        }
        if sh.is_pending(port) {
            return (Ret::Value(0), After::Resume);
        }
    }
    if timeout != 0 && timeout <= now_ns() {
        return (Ret::Value(0), After::Resume);
    }
    let Some(v) = d.vcpus.get_mut(vi) else {
        return (Ret::Err(EINVAL), After::Resume);
    };
    v.poll = hv_core::sched::PollWait::armed(nr, first);
    v.poll_deadline = timeout;
    if timeout != 0 {
        crate::sched::timer_changed();
    }
    (Ret::Value(0), After::Block)
}

// ---- Physical IRQs (the control domain's device interrupts) ----
//
// The interrupt handler runs with interrupts off and may not wait for `DOMAINS`: it
// masks a level-triggered pin, marks the GSI pending here and delivers if it gets the
// lock; otherwise CPU 0's next tick delivers (`deliver_pirqs_try`).

use crate::arch::ioapic;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Owner of each GSI: domain id + 1 (0 = nobody).
static GSI_OWNER: [AtomicU32; ioapic::MAX_GSIS as usize] =
    [const { AtomicU32::new(0) }; ioapic::MAX_GSIS as usize];
/// GSIs that interrupted and were not delivered yet.
static GSI_PENDING: AtomicU64 = AtomicU64::new(0);

fn apply_pin(p: hv_core::pirq::Pin) {
    match p {
        hv_core::pirq::Pin::Keep => {}
        hv_core::pirq::Pin::Mask(g) => ioapic::mask(g),
        hv_core::pirq::Pin::Unmask(g) => ioapic::unmask(g),
    }
}

/// `PHYSDEVOP_map_pirq` (GSI) into the caller `d` itself: pirq = GSI.
pub fn map_pirq(d: &mut Domain, gsi: i32, want: i32) -> Result<u32, Errno> {
    let trigger = if u32::try_from(gsi).is_ok_and(ioapic::is_level) {
        hv_core::pirq::Trigger::Level
    } else {
        hv_core::pirq::Trigger::Edge
    };
    let owner = u32::try_from(gsi)
        .ok()
        .and_then(|g| GSI_OWNER.get(g as usize))
        .map_or(0, |o| o.load(Ordering::Acquire));
    if owner != 0 && owner != u32::from(d.id) + 1 {
        return Err(EBUSY);
    }
    let pirq = d
        .pirqs
        .map_gsi(gsi, want, trigger, ioapic::nr_gsis(), ioapic::reserved)?;
    let Some(e) = d.pirqs.get(pirq).copied() else {
        return Err(EINVAL);
    };
    if e.port.is_none() {
        ioapic::route(e.gsi);
    }
    if let Some(o) = GSI_OWNER.get(e.gsi as usize) {
        o.store(u32::from(d.id) + 1, Ordering::Release);
    }
    Ok(pirq)
}

/// Whether a domain has `gsi` mapped (its signal may not change then: Xen's
/// `PHYSDEVOP_setup_gsi` says `-EEXIST` for a programmed pin).
pub fn gsi_in_use(gsi: u32) -> bool {
    GSI_OWNER
        .get(gsi as usize)
        .is_some_and(|o| o.load(Ordering::Acquire) != 0)
}

/// `PHYSDEVOP_unmap_pirq` on the caller itself.
pub fn unmap_pirq(d: &mut Domain, pirq: u32) -> Result<(), Errno> {
    let (gsi, _port) = d.pirqs.unmap(pirq)?;
    release_gsi(gsi);
    Ok(())
}

fn release_gsi(gsi: u32) {
    ioapic::mask(gsi);
    if let Some(o) = GSI_OWNER.get(gsi as usize) {
        o.store(0, Ordering::Release);
    }
    if gsi < 64 {
        GSI_PENDING.fetch_and(!(1 << gsi), Ordering::AcqRel);
    }
}

/// `PHYSDEVOP_eoi`.
pub fn eoi_pirq(d: &mut Domain, pirq: u32) -> Result<(), Errno> {
    apply_pin(d.pirqs.eoi(pirq)?);
    Ok(())
}

/// `PHYSDEVOP_irq_status_query`: `XENIRQSTAT_needs_eoi` for a mapped level pirq.
pub fn pirq_status(d: &Domain, pirq: u32) -> Result<u32, Errno> {
    if pirq >= hv_core::pirq::nr_pirqs(ioapic::nr_gsis()) {
        return Err(EINVAL);
    }
    Ok(match d.pirqs.needs_eoi(pirq) {
        Ok(true) => xen_abi::physdev::XENIRQSTAT_NEEDS_EOI,
        _ => 0,
    })
}

/// A dying domain's pirqs: unmapped, pins masked.
pub fn release_pirqs(d: &mut Domain) {
    for gsi in d.pirqs.clear() {
        release_gsi(gsi);
    }
}

/// Device interrupt on `gsi` (interrupt handler, interrupts off, no lock held by this
/// CPU, after the local APIC's EOI).
pub fn gsi_interrupt(gsi: u32) {
    if ioapic::is_level(gsi) {
        // Keep a level line quiet until the owner's PHYSDEVOP_eoi (ACKTYPE_UNMASK).
        ioapic::mask(gsi);
    }
    if gsi < 64 {
        GSI_PENDING.fetch_or(1 << gsi, Ordering::AcqRel);
    }
    deliver_pirqs_try();
}

/// Deliver pending device interrupts if `DOMAINS` is free (never waits for it).
pub fn deliver_pirqs_try() {
    if GSI_PENDING.load(Ordering::Acquire) == 0 {
        return;
    }
    if let Some(mut t) = crate::domain::DOMAINS.try_lock() {
        deliver_pirqs(&mut t);
    }
}

/// Deliver pending device interrupts with `DOMAINS` already held (the scheduler's
/// paths call this, so an interrupt that found the lock taken waits no longer than
/// the next pass through the scheduler, not the next 10 ms tick).
pub fn deliver_pending_pirqs(t: &mut DomainTable) {
    if GSI_PENDING.load(Ordering::Acquire) != 0 {
        deliver_pirqs(t);
    }
}

/// Set the bound port of every pending GSI pending in its owner.
fn deliver_pirqs(t: &mut DomainTable) {
    let mut pending = GSI_PENDING.swap(0, Ordering::AcqRel);
    while pending != 0 {
        let gsi = pending.trailing_zeros();
        pending &= pending - 1;
        let owner = GSI_OWNER
            .get(gsi as usize)
            .map_or(0, |o| o.load(Ordering::Acquire));
        let Some(d) = owner
            .checked_sub(1)
            .and_then(|id| t.get(id as DomId))
            .filter(|d| !d.dying)
        else {
            ioapic::mask(gsi);
            continue;
        };
        let (port, pin) = d.pirqs.interrupt(gsi);
        apply_pin(pin);
        if let Some(port) = port {
            let vcpu = d.evtchn.get(port).map_or(0, |c| c.vcpu);
            set_pending(d, vcpu, port);
        }
    }
}
