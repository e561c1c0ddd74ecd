//! Event channels and grant tables: ports and grants of other domains, ports and vCPUs
//! out of range, exhausting our ports, grant ops with bad references, handles, domains,
//! counts and copies into or out of frames that are not ours.
//!
//! Xen 4.17's answers (`xen/common/event_channel.c`, `grant_table.c`): a port outside the
//! domain's valid range is `-EINVAL`; binding to a remote port that is not unbound for us
//! `-EINVAL`, to a domain that does not exist `-ESRCH`; ops on another domain's table
//! (alloc_unbound, status, reset) are refused by XSM with `-EPERM`; a vCPU that does not
//! exist is `-ENOENT`; a VIRQ out of range `-EINVAL`; the table is full at
//! `max_evtchn_port` (`-ENOSPC`). Grant ops report per-op `GNTST_*` statuses: a ref never
//! granted `GNTST_general_error` (-1), a ref beyond the table `GNTST_bad_gntref` (-3), a
//! missing domain `GNTST_bad_domain` (-2), a bad handle `GNTST_bad_handle` (-4), another
//! domain's table `GNTST_permission_denied` (-8), a copy by frame from another domain
//! `GNTST_permission_denied`, a copy from/to a frame that is not ours `GNTST_bad_page`
//! (-9), a copy beyond the page `GNTST_bad_copy_arg` (-10); a negative count or a
//! `setup_table` count other than 1 is `-EINVAL`.

use crate::support::*;
use alloc::format;
use alloc::vec::Vec;
use guest_sdk::events;
use xen_abi::errno::*;
use xen_abi::event_channel::*;
use xen_abi::grant_table::*;
use xen_abi::xen::{DomId, DOMID_SELF, VIRQ_TIMER};

fn evtchn<T>(cmd: u32, arg: &mut T) -> Result<u64, Errno> {
    // SAFETY: `arg` is the live struct `cmd` takes (each caller pairs them).
    unsafe { guest_sdk::hypercall::event_channel_op(cmd, arg as *mut T as *mut u8) }
}

/// Send, close, unmask, status on ports we do not have (1000, 2^20, 2^32-1, and the
/// reserved port 0 for close): `-EINVAL`.
pub fn evtchn_bad_ports() -> Outcome {
    let mut v: Vec<Case> = Vec::new();
    for port in [1000u32, 1 << 20, u32::MAX] {
        v.push((
            format!("send({port})"),
            events::send(port).map(|_| 0),
            Err(EINVAL),
        ));
        v.push((
            format!("close({port})"),
            evtchn(EVTCHNOP_CLOSE, &mut EvtchnClose { port }),
            Err(EINVAL),
        ));
        v.push((
            format!("unmask({port})"),
            evtchn(EVTCHNOP_UNMASK, &mut EvtchnUnmask { port }),
            Err(EINVAL),
        ));
        v.push((
            format!("status(self, {port})"),
            evtchn(
                EVTCHNOP_STATUS,
                &mut EvtchnStatus {
                    dom: DOMID_SELF,
                    port,
                    ..Default::default()
                },
            ),
            Err(EINVAL),
        ));
    }
    v.push((
        "close(0)".into(),
        evtchn(EVTCHNOP_CLOSE, &mut EvtchnClose { port: 0 }),
        Err(EINVAL),
    ));
    all_agree(&v)
}

/// dom0's ports: bind_interdomain to ports 1..8 and 0xffff (none is unbound for us):
/// `-EINVAL`; to a domain that does not exist: `-ESRCH`; alloc_unbound in dom0's table,
/// status of dom0's port 1, reset of dom0's channels: `-EPERM`.
pub fn evtchn_other_domains() -> Outcome {
    let mut v: Vec<Case> = Vec::new();
    for port in (1..=8).chain([0xffff]) {
        let r = events::bind_interdomain(0, port);
        if let Ok(local) = r {
            let _ = events::close(local);
        }
        v.push((
            format!("bind_interdomain(dom0, {port})"),
            r.map(u64::from),
            Err(EINVAL),
        ));
    }
    v.push((
        "bind_interdomain(d32000, 1)".into(),
        events::bind_interdomain(32000, 1).map(u64::from),
        Err(ESRCH),
    ));
    v.push((
        "alloc_unbound in dom0".into(),
        evtchn(
            EVTCHNOP_ALLOC_UNBOUND,
            &mut EvtchnAllocUnbound {
                dom: 0,
                remote_dom: DOMID_SELF,
                port: 0,
            },
        ),
        Err(EPERM),
    ));
    v.push((
        "status(dom0, 1)".into(),
        evtchn(
            EVTCHNOP_STATUS,
            &mut EvtchnStatus {
                dom: 0,
                port: 1,
                ..Default::default()
            },
        ),
        Err(EPERM),
    ));
    v.push((
        "reset(dom0)".into(),
        evtchn(EVTCHNOP_RESET, &mut EvtchnReset { dom: 0 }),
        Err(EPERM),
    ));
    all_agree(&v)
}

/// vCPUs and VIRQs out of range: bind_virq(VIRQ_TIMER, vCPU 1000), bind_ipi(vCPU 1000),
/// bind_vcpu(port, vCPU 1000): `-ENOENT`; bind_virq(24): `-EINVAL`.
pub fn evtchn_bad_vcpus() -> Outcome {
    let port = events::alloc_unbound(DOMID_SELF).map_err(|e| format!("alloc_unbound: -{}", e.0))?;
    let cases = [
        (
            "bind_virq(VIRQ_TIMER, vcpu 1000)".into(),
            events::bind_virq(VIRQ_TIMER, 1000).map(u64::from),
            Err(ENOENT),
        ),
        (
            "bind_virq(24, vcpu 0)".into(),
            events::bind_virq(24, 0).map(u64::from),
            Err(EINVAL),
        ),
        (
            "bind_ipi(vcpu 1000)".into(),
            events::bind_ipi(1000).map(u64::from),
            Err(ENOENT),
        ),
        (
            format!("bind_vcpu({port}, vcpu 1000)"),
            evtchn(EVTCHNOP_BIND_VCPU, &mut EvtchnBindVcpu { port, vcpu: 1000 }),
            Err(ENOENT),
        ),
    ];
    let _ = events::close(port);
    all_agree(&cases)
}

/// Allocate ports until the hypervisor refuses: it must stop at our limit with
/// `-ENOSPC` (the toolstack gives domUs `max_evtchn_port` 1023), and after closing them
/// all a new one can be allocated again.
pub fn evtchn_exhaust() -> Outcome {
    const MAX_TRIES: usize = 5000;
    let mut ports = Vec::new();
    let stop = loop {
        if ports.len() >= MAX_TRIES {
            break None;
        }
        match events::alloc_unbound(DOMID_SELF) {
            Ok(p) => ports.push(p),
            Err(e) => break Some(e),
        }
    };
    let highest = ports.iter().copied().max().unwrap_or(0);
    let mut close_errors = 0;
    for &p in &ports {
        if events::close(p).is_err() {
            close_errors += 1;
        }
    }
    let again = events::alloc_unbound(DOMID_SELF);
    if let Ok(p) = again {
        let _ = events::close(p);
    }
    let n = ports.len();
    match stop {
        None => Err(format!("{MAX_TRIES} ports allocated and no limit reached")),
        Some(e) if e != ENOSPC => Err(format!(
            "after {n} ports (highest {highest}): -{} {} (Xen 4.17: -28 ENOSPC)",
            e.0,
            errno_name(e)
        )),
        Some(_) if highest > 1023 => Err(format!(
            "port {highest} allocated beyond max_evtchn_port 1023"
        )),
        Some(_) if close_errors > 0 => Err(format!("{close_errors} of {n} ports did not close")),
        Some(_) if again.is_err() => Err(format!(
            "no port after closing all: {}",
            show(again.map(u64::from))
        )),
        Some(_) => Ok(format!(
            "errno -28 ENOSPC after {n} ports (highest {highest}); all closed and reusable"
        )),
    }
}

/// `grant_table_op(cmd, ops, count)` on our array; the hypercall's result.
fn gnttab<T>(cmd: u32, ops: &mut [T], count: u32) -> Result<u64, Errno> {
    // SAFETY: `ops` is a live array of the struct `cmd` takes; the count we pass is at
    // most its length except where the hypervisor must refuse the count itself.
    unsafe { guest_sdk::hypercall::grant_table_op(cmd, ops.as_mut_ptr() as *mut u8, count) }
}

/// A grant op whose hypercall succeeded: its per-op status as the "result" (errors of
/// the hypercall itself pass through).
fn status(r: Result<u64, Errno>, st: i16) -> Result<u64, Errno> {
    r.map(|_| st as i64 as u64)
}

/// The value Xen 4.17 leaves in a per-op status.
fn gntst(st: i16) -> Result<u64, Errno> {
    Ok(st as i64 as u64)
}

fn map_one(scratch: &Page, dom: DomId, gref: GrantRef) -> Result<u64, Errno> {
    let mut op = [GnttabMapGrantRef {
        host_addr: scratch.va,
        flags: GNTMAP_HOST_MAP | GNTMAP_READONLY,
        ref_: gref,
        dom,
        ..Default::default()
    }];
    let r = gnttab(GNTTABOP_MAP_GRANT_REF, &mut op, 1);
    if r.is_ok() && op[0].status == GNTST_OKAY {
        let mut un = [GnttabUnmapGrantRef {
            host_addr: scratch.va,
            handle: op[0].handle,
            ..Default::default()
        }];
        let _ = gnttab(GNTTABOP_UNMAP_GRANT_REF, &mut un, 1);
        let _ = scratch.remap(true);
    }
    status(r, op[0].status)
}

/// Grant maps of dom0's ref 100 (never granted): `GNTST_general_error`; of ref
/// 0x7fffffff: `GNTST_bad_gntref`; from a domain that does not exist:
/// `GNTST_bad_domain`; an unmap with a handle we never got: `GNTST_bad_handle`.
pub fn gnttab_refs() -> Outcome {
    let scratch = Page::alloc()?;
    let mut un = [GnttabUnmapGrantRef {
        host_addr: scratch.va,
        handle: 12345,
        ..Default::default()
    }];
    let r = gnttab(GNTTABOP_UNMAP_GRANT_REF, &mut un, 1);
    all_agree(&[
        (
            "map dom0 ref 100".into(),
            map_one(&scratch, 0, 100),
            gntst(GNTST_GENERAL_ERROR),
        ),
        (
            "map dom0 ref 0x7fffffff".into(),
            map_one(&scratch, 0, 0x7fff_ffff),
            gntst(GNTST_BAD_GNTREF),
        ),
        (
            "map d32000 ref 1".into(),
            map_one(&scratch, 32000, 1),
            gntst(GNTST_BAD_DOMAIN),
        ),
        (
            "unmap handle 12345".into(),
            status(r, un[0].status),
            gntst(GNTST_BAD_HANDLE),
        ),
    ])
}

/// `setup_table`: for dom0 (`GNTST_permission_denied`), for ourselves with 2^32-1 frames
/// (`GNTST_general_error`); `setup_table` with count 2 and `map_grant_ref` with count
/// 2^31 (negative as Xen's `int`): `-EINVAL`. The counted ops sit at the end of a page
/// followed by an unmapped guard page, so a hypervisor that walks the count instead of
/// refusing it stops at the guard (`-EFAULT`) instead of writing statuses over our
/// memory.
pub fn gnttab_tables() -> Outcome {
    let mut frames = [0u64; 4];
    let mut setup = |dom: DomId, nr_frames: u32| {
        let mut op = [GnttabSetupTable {
            dom,
            nr_frames,
            frame_list: frames.as_mut_ptr() as u64,
            ..Default::default()
        }];
        let r = gnttab(GNTTABOP_SETUP_TABLE, &mut op, 1);
        status(r, op[0].status)
    };
    let dom0 = setup(0, 1);
    let huge = setup(DOMID_SELF, u32::MAX);
    let g = guarded_page()?;
    // One setup_table op (24 bytes) just before the guard page.
    let at = g.va + 4096 - 24;
    let op = GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: 1,
        frame_list: frames.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: `at` is the last 24 bytes of our own page; no reference into it.
    unsafe { (at as *mut GnttabSetupTable).write_volatile(op) };
    // SAFETY: one op of ours, then the guard page; the count must be refused.
    let two = unsafe {
        hcall(
            xen_abi::hypercall::GRANT_TABLE_OP,
            [GNTTABOP_SETUP_TABLE as u64, at, 2, 0, 0],
        )
    };
    // One map op (32 bytes) just before the guard page, for a ref never granted.
    let at = g.va + 4096 - 32;
    let op = GnttabMapGrantRef {
        host_addr: g.va,
        flags: GNTMAP_HOST_MAP | GNTMAP_READONLY,
        ref_: 100,
        dom: 0,
        ..Default::default()
    };
    // SAFETY: as above.
    unsafe { (at as *mut GnttabMapGrantRef).write_volatile(op) };
    // SAFETY: as above; the count must be refused.
    let negative = unsafe {
        hcall(
            xen_abi::hypercall::GRANT_TABLE_OP,
            [GNTTABOP_MAP_GRANT_REF as u64, at, 0x8000_0000, 0, 0],
        )
    };
    all_agree(&[
        (
            "setup_table(dom0)".into(),
            dom0,
            gntst(GNTST_PERMISSION_DENIED),
        ),
        (
            "setup_table(self, 0xffffffff frames)".into(),
            huge,
            gntst(GNTST_GENERAL_ERROR),
        ),
        ("setup_table count 2".into(), two, Err(EINVAL)),
        (
            "map_grant_ref count 0x80000000".into(),
            negative,
            Err(EINVAL),
        ),
    ])
}

fn copy(src: GnttabCopyPtr, dst: GnttabCopyPtr, len: u16, flags: u16) -> Result<u64, Errno> {
    let mut op = [GnttabCopy {
        source: src,
        dest: dst,
        len,
        flags,
        ..Default::default()
    }];
    let r = gnttab(GNTTABOP_COPY, &mut op, 1);
    status(r, op[0].status)
}

fn by_frame(domid: DomId, mfn: u64, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr {
        u: mfn,
        domid,
        offset,
        _pad: 0,
    }
}

/// `GNTTABOP_copy` by frame number: from a dom0 frame (`GNTST_permission_denied`), from
/// and into a hypervisor frame named as ours (`GNTST_bad_page`), and between two of our
/// pages beyond the page end (`GNTST_bad_copy_arg`). A legal copy between our pages
/// succeeds (control).
pub fn gnttab_copies() -> Outcome {
    let xen = xen_frame()?;
    let a = Page::alloc()?;
    let b = Page::alloc()?;
    a.set(0, 0x6174_7461_636b_6572);
    let legal = copy(
        by_frame(DOMID_SELF, a.mfn, 0),
        by_frame(DOMID_SELF, b.mfn, 0),
        8,
        0,
    );
    let copied = b.get(0);
    let cases = [
        (
            "legal copy between our pages".into(),
            legal,
            gntst(GNTST_OKAY),
        ),
        (
            "legal copy arrived".into(),
            Ok(copied),
            Ok(0x6174_7461_636b_6572),
        ),
        (
            "copy from dom0 mfn 0x100".into(),
            copy(by_frame(0, 0x100, 0), by_frame(DOMID_SELF, b.mfn, 0), 8, 0),
            gntst(GNTST_PERMISSION_DENIED),
        ),
        (
            format!("copy from hypervisor mfn {xen:#x}"),
            copy(
                by_frame(DOMID_SELF, xen, 0),
                by_frame(DOMID_SELF, b.mfn, 0),
                8,
                0,
            ),
            gntst(GNTST_BAD_PAGE),
        ),
        (
            format!("copy into hypervisor mfn {xen:#x}"),
            copy(
                by_frame(DOMID_SELF, a.mfn, 0),
                by_frame(DOMID_SELF, xen, 0),
                8,
                0,
            ),
            gntst(GNTST_BAD_PAGE),
        ),
        (
            "copy 4096 bytes to offset 1".into(),
            copy(
                by_frame(DOMID_SELF, a.mfn, 0),
                by_frame(DOMID_SELF, b.mfn, 1),
                4096,
                0,
            ),
            gntst(GNTST_BAD_COPY_ARG),
        ),
    ];
    all_agree(&cases)
}
