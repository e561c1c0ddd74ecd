//! `sysctl` hypercall (`xen/sysctl.h`, interface version 0x15): host-wide queries and
//! control by a privileged domain (`xl info`, `xl list`, `xl dmesg`, `xl sched-*`).
//!
//! `sysctl(&xen_sysctl)`: one argument, a guest pointer to a [`XenSysctl`] (136 bytes),
//! read whole and written back whole. `XenSysctl::u` is the C union of sub-op structs
//! as an 8-aligned 128-byte [`Opaque`]; build with [`XenSysctl::new`], read results with
//! [`XenSysctl::payload`].
//!
//! Xen checks `interface_version == XEN_SYSCTL_INTERFACE_VERSION` first (`-EACCES`
//! otherwise), then that the caller is privileged (`-EPERM`).

pub use crate::domctl::{
    XenctlBitmap, XEN_SCHEDULER_ARINC653, XEN_SCHEDULER_CREDIT, XEN_SCHEDULER_CREDIT2,
    XEN_SCHEDULER_NULL, XEN_SCHEDULER_RTDS,
};
use crate::wire::{wire, Opaque, Wire};
use crate::xen::DomId;

/// `XEN_SYSCTL_INTERFACE_VERSION` of Xen 4.17.
pub const XEN_SYSCTL_INTERFACE_VERSION: u32 = 0x15;

// ---------------------------------------------------------------------------------------
// Commands (`XEN_SYSCTL_*`)
// ---------------------------------------------------------------------------------------

/// [`XenSysctlReadconsole`]: the hypervisor's console ring (`xl dmesg`).
pub const XEN_SYSCTL_READCONSOLE: u32 = 1;
pub const XEN_SYSCTL_TBUF_OP: u32 = 2;
/// [`XenSysctlPhysinfo`] (OUT): `xl info`.
pub const XEN_SYSCTL_PHYSINFO: u32 = 3;
/// [`XenSysctlSchedId`] (OUT).
pub const XEN_SYSCTL_SCHED_ID: u32 = 4;
pub const XEN_SYSCTL_PERFC_OP: u32 = 5;
/// [`XenSysctlGetdomaininfolist`]: `xl list`.
pub const XEN_SYSCTL_GETDOMAININFOLIST: u32 = 6;
pub const XEN_SYSCTL_DEBUG_KEYS: u32 = 7;
/// [`XenSysctlGetcpuinfo`].
pub const XEN_SYSCTL_GETCPUINFO: u32 = 8;
pub const XEN_SYSCTL_AVAILHEAP: u32 = 9;
pub const XEN_SYSCTL_GET_PMSTAT: u32 = 10;
pub const XEN_SYSCTL_CPU_HOTPLUG: u32 = 11;
pub const XEN_SYSCTL_PM_OP: u32 = 12;
pub const XEN_SYSCTL_PAGE_OFFLINE_OP: u32 = 14;
pub const XEN_SYSCTL_LOCKPROF_OP: u32 = 15;
/// [`XenSysctlCputopoinfo`].
pub const XEN_SYSCTL_CPUTOPOINFO: u32 = 16;
/// [`XenSysctlNumainfo`].
pub const XEN_SYSCTL_NUMAINFO: u32 = 17;
/// [`XenSysctlCpupoolOp`].
pub const XEN_SYSCTL_CPUPOOL_OP: u32 = 18;
/// [`XenSysctlSchedulerOp`].
pub const XEN_SYSCTL_SCHEDULER_OP: u32 = 19;
pub const XEN_SYSCTL_COVERAGE_OP: u32 = 20;
pub const XEN_SYSCTL_PSR_CMT_OP: u32 = 21;
pub const XEN_SYSCTL_PCITOPOINFO: u32 = 22;
pub const XEN_SYSCTL_PSR_ALLOC: u32 = 23;
pub const XEN_SYSCTL_GET_CPU_LEVELLING_CAPS: u32 = 25;
pub const XEN_SYSCTL_GET_CPU_FEATURESET: u32 = 26;
pub const XEN_SYSCTL_LIVEPATCH_OP: u32 = 27;
pub const XEN_SYSCTL_GET_CPU_POLICY: u32 = 29;

// ---------------------------------------------------------------------------------------
// struct xen_sysctl
// ---------------------------------------------------------------------------------------

/// Size of the `u` union of `struct xen_sysctl`.
pub const XEN_SYSCTL_UNION_SIZE: usize = 128;

/// `struct xen_sysctl`: one system-control request. IN/OUT.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctl {
    /// IN: `XEN_SYSCTL_*`.
    pub cmd: u32,
    /// IN: [`XEN_SYSCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    /// IN/OUT: the sub-op struct, 8-aligned.
    pub u: Opaque<XEN_SYSCTL_UNION_SIZE>,
}
const _: () = assert!(core::mem::size_of::<XenSysctl>() == 136);
const _: () = assert!(core::mem::offset_of!(XenSysctl, u) == 8);

impl XenSysctl {
    /// A request `cmd` with `payload` in the union (the rest zero).
    pub fn new<T: Wire>(cmd: u32, payload: &T) -> Self {
        Self {
            cmd,
            interface_version: XEN_SYSCTL_INTERFACE_VERSION,
            u: Opaque::of(payload),
        }
    }

    /// Decode the union as a `T`.
    pub fn payload<T: Wire>(&self) -> T {
        self.u.get()
    }

    /// Replace the union's contents with `v`.
    pub fn set_payload<T: Wire>(&mut self, v: &T) {
        self.u.set(v);
    }
}

// ---------------------------------------------------------------------------------------
// Sub-op structs
// ---------------------------------------------------------------------------------------

/// `struct xen_sysctl_readconsole`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlReadconsole {
    /// IN: non-zero clears the ring after reading.
    pub clear: u8,
    /// IN: non-zero starts at `index` (else at the oldest byte kept).
    pub incremental: u8,
    pub pad0: u8,
    pub pad1: u8,
    /// IN: start index (with `incremental`); OUT: index after the last byte read.
    pub index: u32,
    /// IN: guest handle of the buffer.
    pub buffer: u64,
    /// IN: buffer size; OUT: bytes written.
    pub count: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<XenSysctlReadconsole>() == 24);
wire!(XenSysctlReadconsole {
    clear,
    incremental,
    pad0,
    pad1,
    index,
    buffer,
    count,
    _pad
});

/// `XenSysctlPhysinfo::capabilities` (`XEN_SYSCTL_PHYSCAP_*`).
pub const XEN_SYSCTL_PHYSCAP_HVM: u32 = 1 << 0;
pub const XEN_SYSCTL_PHYSCAP_PV: u32 = 1 << 1;
pub const XEN_SYSCTL_PHYSCAP_DIRECTIO: u32 = 1 << 2;
pub const XEN_SYSCTL_PHYSCAP_HAP: u32 = 1 << 3;
pub const XEN_SYSCTL_PHYSCAP_SHADOW: u32 = 1 << 4;
pub const XEN_SYSCTL_PHYSCAP_IOMMU_HAP_PT_SHARE: u32 = 1 << 5;
pub const XEN_SYSCTL_PHYSCAP_VMTRACE: u32 = 1 << 6;
pub const XEN_SYSCTL_PHYSCAP_VPMU: u32 = 1 << 7;
pub const XEN_SYSCTL_PHYSCAP_GNTTAB_V1: u32 = 1 << 8;
pub const XEN_SYSCTL_PHYSCAP_GNTTAB_V2: u32 = 1 << 9;
pub const XEN_SYSCTL_PHYSCAP_MAX: u32 = XEN_SYSCTL_PHYSCAP_GNTTAB_V2;

/// `struct xen_sysctl_physinfo` (OUT).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlPhysinfo {
    pub threads_per_core: u32,
    pub cores_per_socket: u32,
    /// CPUs online.
    pub nr_cpus: u32,
    /// Largest possible CPU id.
    pub max_cpu_id: u32,
    /// NUMA nodes online.
    pub nr_nodes: u32,
    pub max_node_id: u32,
    pub cpu_khz: u32,
    /// `XEN_SYSCTL_PHYSCAP_*`.
    pub capabilities: u32,
    /// Arch-specific capabilities (none on x86 in 4.17).
    pub arch_capabilities: u32,
    pub pad: u32,
    /// Pages of RAM the hypervisor manages.
    pub total_pages: u64,
    /// Pages free.
    pub free_pages: u64,
    /// Pages waiting to be scrubbed.
    pub scrub_pages: u64,
    /// Pages claimed but not allocated.
    pub outstanding_pages: u64,
    /// Largest possible MFN.
    pub max_mfn: u64,
    /// CPUID feature words of the boot CPU (`xl info`'s `hw_caps`).
    pub hw_cap: [u32; 8],
}
const _: () = assert!(core::mem::size_of::<XenSysctlPhysinfo>() == 112);
wire!(XenSysctlPhysinfo {
    threads_per_core,
    cores_per_socket,
    nr_cpus,
    max_cpu_id,
    nr_nodes,
    max_node_id,
    cpu_khz,
    capabilities,
    arch_capabilities,
    pad,
    total_pages,
    free_pages,
    scrub_pages,
    outstanding_pages,
    max_mfn,
    hw_cap,
});

/// `struct xen_sysctl_sched_id` (OUT).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlSchedId {
    /// `XEN_SCHEDULER_*` of the default pool.
    pub sched_id: u32,
}
const _: () = assert!(core::mem::size_of::<XenSysctlSchedId>() == 4);
wire!(XenSysctlSchedId { sched_id });

/// `struct xen_sysctl_getdomaininfolist`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlGetdomaininfolist {
    /// IN: lowest domain id to report.
    pub first_domain: DomId,
    pub _pad: u16,
    /// IN: capacity of `buffer`, in entries.
    pub max_domains: u32,
    /// IN: guest handle of a [`crate::domctl::XenDomctlGetdomaininfo`] array.
    pub buffer: u64,
    /// OUT: entries written (domains in id order).
    pub num_domains: u32,
    pub _pad2: u32,
}
const _: () = assert!(core::mem::size_of::<XenSysctlGetdomaininfolist>() == 24);
wire!(XenSysctlGetdomaininfolist {
    first_domain,
    _pad,
    max_domains,
    buffer,
    num_domains,
    _pad2
});

/// `struct xen_sysctl_cpuinfo`: one element of `getcpuinfo`'s array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlCpuinfo {
    /// Idle time of the CPU, ns.
    pub idletime: u64,
}
const _: () = assert!(core::mem::size_of::<XenSysctlCpuinfo>() == 8);
wire!(XenSysctlCpuinfo { idletime });

/// `struct xen_sysctl_getcpuinfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlGetcpuinfo {
    /// IN: capacity of `info`.
    pub max_cpus: u32,
    pub _pad: u32,
    /// IN: guest handle of a [`XenSysctlCpuinfo`] array.
    pub info: u64,
    /// OUT: entries written.
    pub nr_cpus: u32,
    pub _pad2: u32,
}
const _: () = assert!(core::mem::size_of::<XenSysctlGetcpuinfo>() == 24);
wire!(XenSysctlGetcpuinfo {
    max_cpus,
    _pad,
    info,
    nr_cpus,
    _pad2
});

/// `XEN_INVALID_{CORE,SOCKET,NODE}_ID`.
pub const XEN_INVALID_CORE_ID: u32 = !0;
pub const XEN_INVALID_SOCKET_ID: u32 = !0;
pub const XEN_INVALID_NODE_ID: u32 = !0;

/// `struct xen_sysctl_cputopo`: one element of `cputopoinfo`'s array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlCputopo {
    pub core: u32,
    pub socket: u32,
    pub node: u32,
}
const _: () = assert!(core::mem::size_of::<XenSysctlCputopo>() == 12);
wire!(XenSysctlCputopo { core, socket, node });

/// `struct xen_sysctl_cputopoinfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlCputopoinfo {
    /// IN: capacity of `cputopo` (a null handle asks for the count); OUT: entries.
    pub num_cpus: u32,
    pub _pad: u32,
    /// IN: guest handle of a [`XenSysctlCputopo`] array.
    pub cputopo: u64,
}
const _: () = assert!(core::mem::size_of::<XenSysctlCputopoinfo>() == 16);
wire!(XenSysctlCputopoinfo {
    num_cpus,
    _pad,
    cputopo
});

/// `struct xen_sysctl_meminfo`: one element of `numainfo`'s `meminfo` array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlMeminfo {
    pub memsize: u64,
    pub memfree: u64,
}
const _: () = assert!(core::mem::size_of::<XenSysctlMeminfo>() == 16);
wire!(XenSysctlMeminfo { memsize, memfree });

/// `struct xen_sysctl_numainfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlNumainfo {
    /// IN: capacity (both handles null asks for the count); OUT: nodes.
    pub num_nodes: u32,
    pub _pad: u32,
    /// IN: guest handle of a [`XenSysctlMeminfo`] array.
    pub meminfo: u64,
    /// IN: guest handle of a `u32` array of `num_nodes²` distances.
    pub distance: u64,
}
const _: () = assert!(core::mem::size_of::<XenSysctlNumainfo>() == 24);
wire!(XenSysctlNumainfo {
    num_nodes,
    _pad,
    meminfo,
    distance
});

/// `XenSysctlCpupoolOp::op`.
pub const XEN_SYSCTL_CPUPOOL_OP_CREATE: u32 = 1;
pub const XEN_SYSCTL_CPUPOOL_OP_DESTROY: u32 = 2;
pub const XEN_SYSCTL_CPUPOOL_OP_INFO: u32 = 3;
pub const XEN_SYSCTL_CPUPOOL_OP_ADDCPU: u32 = 4;
pub const XEN_SYSCTL_CPUPOOL_OP_RMCPU: u32 = 5;
pub const XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN: u32 = 6;
pub const XEN_SYSCTL_CPUPOOL_OP_FREEINFO: u32 = 7;
pub const XEN_SYSCTL_CPUPOOL_PAR_ANY: u32 = 0xFFFF_FFFF;

/// `struct xen_sysctl_cpupool_op`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlCpupoolOp {
    /// IN: `XEN_SYSCTL_CPUPOOL_OP_*`.
    pub op: u32,
    /// IN (create/destroy/info/add/rm/move), OUT (create, info: the first pool with an
    /// id >= the one asked).
    pub cpupool_id: u32,
    /// IN (create), OUT (info).
    pub sched_id: u32,
    /// IN (movedomain).
    pub domid: u32,
    /// IN (addcpu/rmcpu).
    pub cpu: u32,
    /// OUT (info): domains in the pool.
    pub n_dom: u32,
    /// OUT (info, freeinfo): the pool's (or the free) CPUs.
    pub cpumap: XenctlBitmap,
}
const _: () = assert!(core::mem::size_of::<XenSysctlCpupoolOp>() == 40);
wire!(XenSysctlCpupoolOp {
    op,
    cpupool_id,
    sched_id,
    domid,
    cpu,
    n_dom,
    cpumap
});

/// `XenSysctlSchedulerOp::cmd`.
pub const XEN_SYSCTL_SCHEDOP_PUTINFO: u32 = 0;
pub const XEN_SYSCTL_SCHEDOP_GETINFO: u32 = 1;
/// Limits of the credit schedulers' parameters.
pub const XEN_SYSCTL_SCHED_RATELIMIT_MAX: u32 = 500_000;
pub const XEN_SYSCTL_SCHED_RATELIMIT_MIN: u32 = 100;
pub const XEN_SYSCTL_CSCHED_TSLICE_MAX: u32 = 1000;
pub const XEN_SYSCTL_CSCHED_TSLICE_MIN: u32 = 1;
pub const XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US: u32 = 100 * 1000;

/// `struct xen_sysctl_credit_schedule`: pool-wide credit parameters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlCreditSchedule {
    /// Time slice, ms.
    pub tslice_ms: u32,
    /// Context-switch rate limit, us.
    pub ratelimit_us: u32,
    /// Cache-hot migration delay, us.
    pub vcpu_migr_delay_us: u32,
}
const _: () = assert!(core::mem::size_of::<XenSysctlCreditSchedule>() == 12);
wire!(XenSysctlCreditSchedule {
    tslice_ms,
    ratelimit_us,
    vcpu_migr_delay_us
});

/// `struct xen_sysctl_credit2_schedule`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlCredit2Schedule {
    pub ratelimit_us: u32,
}
const _: () = assert!(core::mem::size_of::<XenSysctlCredit2Schedule>() == 4);
wire!(XenSysctlCredit2Schedule { ratelimit_us });

/// `struct xen_sysctl_scheduler_op`. `u` holds a [`XenSysctlCreditSchedule`],
/// [`XenSysctlCredit2Schedule`] or an ARINC653 schedule handle (`u64`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSysctlSchedulerOp {
    /// IN: CPU pool whose scheduler is targeted.
    pub cpupool_id: u32,
    /// IN: `XEN_SCHEDULER_*` (must be the pool's, else `-EINVAL`).
    pub sched_id: u32,
    /// IN: `XEN_SYSCTL_SCHEDOP_*`.
    pub cmd: u32,
    pub _pad: u32,
    /// IN/OUT: the parameters.
    pub u: Opaque<16>,
}
const _: () = assert!(core::mem::size_of::<XenSysctlSchedulerOp>() == 32);
wire!(XenSysctlSchedulerOp {
    cpupool_id,
    sched_id,
    cmd,
    _pad,
    u
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physinfo_offsets_in_the_union() {
        let p = XenSysctlPhysinfo {
            nr_cpus: 2,
            total_pages: 0x1_0000_0001,
            hw_cap: [0xaabb_ccdd; 8],
            ..Default::default()
        };
        let s = XenSysctl::new(XEN_SYSCTL_PHYSINFO, &p);
        assert_eq!(s.interface_version, 0x15);
        assert_eq!(s.u.0[8..12], [2, 0, 0, 0]);
        assert_eq!(s.u.0[40..48], [1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(s.u.0[80..84], [0xdd, 0xcc, 0xbb, 0xaa]);
        assert_eq!(s.payload::<XenSysctlPhysinfo>(), p);
    }
}
