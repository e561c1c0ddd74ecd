//! What only the control domain may do, tried from a domU: `domctl` and `sysctl` (with
//! the right interface version, and a wrong one), `memory_op` on another domain,
//! `mmu_update`/`mmuext_op`/`update_va_mapping_otherdomain` on another domain's memory
//! or page tables, `SCHEDOP_remote_shutdown` of dom0, a debug register on the
//! hypervisor's text.
//!
//! Xen 4.17's answers: `do_domctl`/`do_sysctl` check the interface version first
//! (`-EACCES`), then XSM's dummy policy refuses a non-control domain (`-EPERM`); the
//! reservation ops return 0 extents done (no error) when XSM refuses the target
//! (`do_memory_op`), the statistics ops `-EPERM`; `xsm_mmu_update`/`xsm_mmuext_op`/
//! `xsm_update_va_mapping` give `-EPERM` (also for `DOMID_XEN`, which `get_pg_owner`
//! resolves to `dom_xen`);
//! `xsm_schedop_shutdown` `-EPERM`; `set_debugreg` refuses a breakpoint address that is
//! not a guest address with `-EPERM`.

use crate::support::*;
use alloc::format;
use alloc::vec::Vec;
use guest_sdk::mm::{make_pte, PAGE_KERNEL};
use guest_sdk::privileged as p;
use xen_abi::domctl::*;
use xen_abi::errno::*;
use xen_abi::hypercall as nr;
use xen_abi::mm::*;
use xen_abi::sysctl::*;
use xen_abi::xen::{DOMID_SELF, DOMID_XEN};

/// `domctl` on dom0 (getdomaininfo, pause, destroy, setvcpucontext), on ourselves
/// (max_mem), createdomain: `-EPERM`; with interface version 0x14: `-EACCES`.
pub fn domctl() -> Outcome {
    let me = my_domid()?;
    let mut v: Vec<Case> = Vec::new();
    let mut bad = XenDomctl::bare(XEN_DOMCTL_GETDOMAININFO, 0);
    bad.interface_version = XEN_DOMCTL_INTERFACE_VERSION - 1;
    v.push((
        "getdomaininfo(dom0), version 0x14".into(),
        p::domctl(&mut bad),
        Err(EACCES),
    ));
    for (name, cmd, dom) in [
        ("getdomaininfo(dom0)", XEN_DOMCTL_GETDOMAININFO, 0),
        ("pausedomain(dom0)", XEN_DOMCTL_PAUSEDOMAIN, 0),
        ("destroydomain(dom0)", XEN_DOMCTL_DESTROYDOMAIN, 0),
        ("setvcpucontext(dom0)", XEN_DOMCTL_SETVCPUCONTEXT, 0),
        ("max_mem(self)", XEN_DOMCTL_MAX_MEM, me),
        ("createdomain", XEN_DOMCTL_CREATEDOMAIN, 0),
    ] {
        v.push((
            name.into(),
            p::domctl(&mut XenDomctl::bare(cmd, dom)),
            Err(EPERM),
        ));
    }
    all_agree(&v)
}

/// `sysctl` physinfo, readconsole (the hypervisor's log), getdomaininfolist: `-EPERM`;
/// with interface version 0x14: `-EACCES`.
pub fn sysctl() -> Outcome {
    let mut v: Vec<Case> = Vec::new();
    let mk = |cmd: u32, version: u32| XenSysctl {
        cmd,
        interface_version: version,
        ..Default::default()
    };
    v.push((
        "physinfo, version 0x14".into(),
        p::sysctl(&mut mk(
            XEN_SYSCTL_PHYSINFO,
            XEN_SYSCTL_INTERFACE_VERSION - 1,
        )),
        Err(EACCES),
    ));
    for (name, cmd) in [
        ("physinfo", XEN_SYSCTL_PHYSINFO),
        ("readconsole", XEN_SYSCTL_READCONSOLE),
        ("getdomaininfolist", XEN_SYSCTL_GETDOMAININFOLIST),
    ] {
        v.push((
            name.into(),
            p::sysctl(&mut mk(cmd, XEN_SYSCTL_INTERFACE_VERSION)),
            Err(EPERM),
        ));
    }
    all_agree(&v)
}

/// `memory_op` on dom0: increase/decrease/populate return 0 extents done (Xen gives no
/// error), current_reservation `-EPERM`; `decrease_reservation` of a hypervisor frame
/// as if it were ours: 0 done; machine_memory_map (the host's e820): `-EPERM`.
pub fn memory_op() -> Outcome {
    use xen_abi::memory::*;
    let xen = xen_frame()?;
    let mut list = [0u64; 1];
    let to_u64 = |r: Result<usize, Errno>| r.map(|n| n as u64);
    let mut map = [0u8; 20 * 4];
    let mut mm = XenMemoryMap {
        nr_entries: 4,
        _pad: 0,
        buffer: map.as_mut_ptr() as u64,
    };
    // SAFETY: `mm` and its buffer are ours; the hypervisor must refuse anyway.
    let machine_map = unsafe {
        guest_sdk::hypercall::memory_op(XENMEM_MACHINE_MEMORY_MAP, &mut mm as *mut _ as *mut u8)
    };
    all_agree(&[
        (
            "increase_reservation(dom0, 1)".into(),
            to_u64(p::increase_reservation(0, 0, &mut list)),
            Ok(0),
        ),
        (
            "populate_physmap(dom0, 1)".into(),
            to_u64(p::populate_physmap(0, 0, &mut [0])),
            Ok(0),
        ),
        (
            "decrease_reservation(dom0, mfn 0x100)".into(),
            to_u64(p::decrease_reservation(0, 0, &mut [0x100])),
            Ok(0),
        ),
        (
            "current_reservation(dom0)".into(),
            p::current_reservation(0),
            Err(EPERM),
        ),
        (
            format!("decrease_reservation(self, hypervisor mfn {xen:#x})"),
            to_u64(p::decrease_reservation(DOMID_SELF, 0, &mut [xen])),
            Ok(0),
        ),
        ("machine_memory_map".into(), machine_map, Err(EPERM)),
    ])
}

/// Page-table operations on another domain's behalf: `mmu_update` with foreigndom 0
/// (dom0's frames), with dom0 as the page-table owner (`foreigndom = 1 << 16 |
/// DOMID_SELF`), with `DOMID_XEN`; `mmuext_op` pin for dom0; hypercall 22
/// (`update_va_mapping_otherdomain`) for dom0. The requests themselves are harmless
/// rewrites of one of our PTEs with its own value.
pub fn foreign_mmu() -> Outcome {
    let page = Page::alloc()?;
    let (pte, maddr) = page.pte()?;
    let req = |fd: u32| {
        let r = [MmuUpdate {
            ptr: maddr,
            val: pte,
        }];
        let mut done = 0u32;
        // SAFETY: `r` and `done` are ours; the request rewrites one of our PTEs with
        // its own value (harmless even if accepted).
        unsafe {
            hcall(
                nr::MMU_UPDATE,
                [
                    r.as_ptr() as u64,
                    1,
                    &mut done as *mut u32 as u64,
                    fd as u64,
                    0,
                ],
            )
        }
    };
    // SAFETY: `page` is ours and unused; the hypervisor must refuse to map it for dom0.
    let uvm_other = unsafe {
        hcall(
            nr::UPDATE_VA_MAPPING_OTHERDOMAIN,
            [page.va, make_pte(page.mfn, PAGE_KERNEL), UVMF_INVLPG, 0, 0],
        )
    };
    all_agree(&[
        ("mmu_update foreigndom 0".into(), req(0), Err(EPERM)),
        (
            "mmu_update page tables of dom0 (foreigndom 1<<16|DOMID_SELF)".into(),
            req(1 << 16 | DOMID_SELF as u32),
            Err(EPERM),
        ),
        (
            "mmu_update foreigndom DOMID_XEN".into(),
            req(DOMID_XEN as u32),
            Err(EPERM),
        ),
        (
            "mmuext_op pin L1 for dom0".into(),
            p::pin_table_foreign(1, page.mfn, 0).map(|_| 0),
            Err(EPERM),
        ),
        (
            "update_va_mapping_otherdomain(dom0)".into(),
            uvm_other,
            Err(EPERM),
        ),
    ])
}

/// `SCHEDOP_remote_shutdown` of dom0 (`-EPERM`) and of a domain that does not exist
/// (`-ESRCH`).
pub fn remote_shutdown() -> Outcome {
    let shut = |dom: u16| {
        let mut a = xen_abi::sched::SchedRemoteShutdown {
            domain_id: dom,
            _pad: 0,
            reason: xen_abi::sched::SHUTDOWN_POWEROFF,
        };
        // SAFETY: `a` is the live struct the op takes.
        unsafe {
            guest_sdk::hypercall::sched_op(
                xen_abi::sched::SCHEDOP_REMOTE_SHUTDOWN,
                &mut a as *mut _ as *mut u8,
            )
        }
    };
    all_agree(&[
        ("remote_shutdown(dom0)".into(), shut(0), Err(EPERM)),
        ("remote_shutdown(d32000)".into(), shut(32000), Err(ESRCH)),
    ])
}

/// `set_debugreg` with a breakpoint on the hypervisor's text or a non-canonical
/// address: `-EPERM`.
pub fn debugreg() -> Outcome {
    // SAFETY: values only.
    let set = |reg: u64, v: u64| unsafe { hcall(nr::SET_DEBUGREG, [reg, v, 0, 0, 0]) };
    all_agree(&[
        ("DR0 = Xen text".into(), set(0, XEN_TEXT), Err(EPERM)),
        ("DR3 = M2P".into(), set(3, M2P), Err(EPERM)),
        ("DR1 = non-canonical".into(), set(1, NONCANON), Err(EPERM)),
    ])
}
