//! `domctl` hypercall (`xen/domctl.h`, interface version 0x15): domain management by a
//! privileged domain (the toolstack in dom0).
//!
//! `domctl(&xen_domctl)`: one argument, a guest pointer to a [`XenDomctl`] (144 bytes),
//! which the hypervisor reads whole and writes back whole when the op has OUT fields.
//! `XenDomctl::u` is the C union of sub-op structs, kept as an 8-aligned 128-byte
//! [`Opaque`] block: build it with [`XenDomctl::new`] and read results with
//! [`XenDomctl::payload`]. Every sub-op struct defined here implements [`Wire`].
//!
//! Xen checks `interface_version == XEN_DOMCTL_INTERFACE_VERSION` first (`-EACCES`
//! otherwise), then that the caller is privileged (`-EPERM`).

use crate::wire::{wire, Opaque, Wire};
use crate::xen::{DomId, XenDomainHandle};

/// `XEN_DOMCTL_INTERFACE_VERSION` of Xen 4.17.
pub const XEN_DOMCTL_INTERFACE_VERSION: u32 = 0x15;

// ---------------------------------------------------------------------------------------
// Commands (`XEN_DOMCTL_*`): the payload struct is named on each.
// ---------------------------------------------------------------------------------------

/// [`XenDomctlCreatedomain`]; `domain` IN (0 or >= `DOMID_FIRST_RESERVED`: allocate one)
/// and OUT (the new id).
pub const XEN_DOMCTL_CREATEDOMAIN: u32 = 1;
/// No payload. May return `-ERESTART`-style continuations internally; the caller sees 0.
pub const XEN_DOMCTL_DESTROYDOMAIN: u32 = 2;
/// No payload.
pub const XEN_DOMCTL_PAUSEDOMAIN: u32 = 3;
/// No payload.
pub const XEN_DOMCTL_UNPAUSEDOMAIN: u32 = 4;
/// [`XenDomctlGetdomaininfo`] (OUT). Returns the first domain with id >= `domain`.
pub const XEN_DOMCTL_GETDOMAININFO: u32 = 5;
/// [`XenDomctlVcpuaffinity`].
pub const XEN_DOMCTL_SETVCPUAFFINITY: u32 = 9;
/// `struct xen_domctl_shadow_op` (not defined here).
pub const XEN_DOMCTL_SHADOW_OP: u32 = 10;
/// [`XenDomctlMaxMem`].
pub const XEN_DOMCTL_MAX_MEM: u32 = 11;
/// [`XenDomctlVcpucontext`] (IN: `ctxt` points at a `vcpu_guest_context`).
pub const XEN_DOMCTL_SETVCPUCONTEXT: u32 = 12;
/// [`XenDomctlVcpucontext`] (`ctxt` is filled).
pub const XEN_DOMCTL_GETVCPUCONTEXT: u32 = 13;
/// [`XenDomctlGetvcpuinfo`].
pub const XEN_DOMCTL_GETVCPUINFO: u32 = 14;
/// [`XenDomctlMaxVcpus`].
pub const XEN_DOMCTL_MAX_VCPUS: u32 = 15;
/// [`XenDomctlSchedulerOp`].
pub const XEN_DOMCTL_SCHEDULER_OP: u32 = 16;
/// [`XenDomctlSetdomainhandle`].
pub const XEN_DOMCTL_SETDOMAINHANDLE: u32 = 17;
/// [`XenDomctlSetdebugging`].
pub const XEN_DOMCTL_SETDEBUGGING: u32 = 18;
/// [`XenDomctlIrqPermission`].
pub const XEN_DOMCTL_IRQ_PERMISSION: u32 = 19;
/// [`XenDomctlIomemPermission`].
pub const XEN_DOMCTL_IOMEM_PERMISSION: u32 = 20;
/// [`XenDomctlIoportPermission`].
pub const XEN_DOMCTL_IOPORT_PERMISSION: u32 = 21;
/// [`XenDomctlHypercallInit`]: fill a frame of the domain with hypercall stubs.
pub const XEN_DOMCTL_HYPERCALL_INIT: u32 = 22;
/// [`XenDomctlSettimeoffset`].
pub const XEN_DOMCTL_SETTIMEOFFSET: u32 = 24;
/// [`XenDomctlVcpuaffinity`] (OUT bitmaps).
pub const XEN_DOMCTL_GETVCPUAFFINITY: u32 = 25;
pub const XEN_DOMCTL_REAL_MODE_AREA: u32 = 26;
pub const XEN_DOMCTL_RESUMEDOMAIN: u32 = 27;
pub const XEN_DOMCTL_SENDTRIGGER: u32 = 28;
pub const XEN_DOMCTL_SUBSCRIBE: u32 = 29;
pub const XEN_DOMCTL_GETHVMCONTEXT: u32 = 33;
pub const XEN_DOMCTL_SETHVMCONTEXT: u32 = 34;
/// [`XenDomctlAddressSize`] (64 for a 64-bit PV guest).
pub const XEN_DOMCTL_SET_ADDRESS_SIZE: u32 = 35;
/// [`XenDomctlAddressSize`].
pub const XEN_DOMCTL_GET_ADDRESS_SIZE: u32 = 36;
pub const XEN_DOMCTL_ASSIGN_DEVICE: u32 = 37;
pub const XEN_DOMCTL_BIND_PT_IRQ: u32 = 38;
pub const XEN_DOMCTL_MEMORY_MAPPING: u32 = 39;
pub const XEN_DOMCTL_IOPORT_MAPPING: u32 = 40;
pub const XEN_DOMCTL_SET_EXT_VCPUCONTEXT: u32 = 42;
pub const XEN_DOMCTL_GET_EXT_VCPUCONTEXT: u32 = 43;
pub const XEN_DOMCTL_SET_OPT_FEATURE: u32 = 44;
pub const XEN_DOMCTL_TEST_ASSIGN_DEVICE: u32 = 45;
pub const XEN_DOMCTL_SET_TARGET: u32 = 46;
pub const XEN_DOMCTL_DEASSIGN_DEVICE: u32 = 47;
pub const XEN_DOMCTL_UNBIND_PT_IRQ: u32 = 48;
pub const XEN_DOMCTL_GET_DEVICE_GROUP: u32 = 50;
pub const XEN_DOMCTL_DEBUG_OP: u32 = 54;
pub const XEN_DOMCTL_GETHVMCONTEXT_PARTIAL: u32 = 55;
pub const XEN_DOMCTL_VM_EVENT_OP: u32 = 56;
pub const XEN_DOMCTL_MEM_SHARING_OP: u32 = 57;
/// [`XenDomctlTscInfo`].
pub const XEN_DOMCTL_GETTSCINFO: u32 = 59;
/// [`XenDomctlTscInfo`].
pub const XEN_DOMCTL_SETTSCINFO: u32 = 60;
pub const XEN_DOMCTL_GETPAGEFRAMEINFO3: u32 = 61;
pub const XEN_DOMCTL_SETVCPUEXTSTATE: u32 = 62;
pub const XEN_DOMCTL_GETVCPUEXTSTATE: u32 = 63;
pub const XEN_DOMCTL_SET_ACCESS_REQUIRED: u32 = 64;
pub const XEN_DOMCTL_AUDIT_P2M: u32 = 65;
/// [`XenDomctlSetVirqHandler`].
pub const XEN_DOMCTL_SET_VIRQ_HANDLER: u32 = 66;
pub const XEN_DOMCTL_SET_BROKEN_PAGE_P2M: u32 = 67;
/// [`XenDomctlNodeaffinity`].
pub const XEN_DOMCTL_SETNODEAFFINITY: u32 = 68;
/// [`XenDomctlNodeaffinity`].
pub const XEN_DOMCTL_GETNODEAFFINITY: u32 = 69;
pub const XEN_DOMCTL_CACHEFLUSH: u32 = 71;
pub const XEN_DOMCTL_GET_VCPU_MSRS: u32 = 72;
pub const XEN_DOMCTL_SET_VCPU_MSRS: u32 = 73;
pub const XEN_DOMCTL_SETVNUMAINFO: u32 = 74;
pub const XEN_DOMCTL_PSR_CMT_OP: u32 = 75;
pub const XEN_DOMCTL_MONITOR_OP: u32 = 77;
pub const XEN_DOMCTL_PSR_ALLOC: u32 = 78;
pub const XEN_DOMCTL_SOFT_RESET: u32 = 79;
pub const XEN_DOMCTL_VUART_OP: u32 = 81;
pub const XEN_DOMCTL_GET_CPU_POLICY: u32 = 82;
pub const XEN_DOMCTL_SET_CPU_POLICY: u32 = 83;
pub const XEN_DOMCTL_VMTRACE_OP: u32 = 84;
pub const XEN_DOMCTL_GET_PAGING_MEMPOOL_SIZE: u32 = 85;
pub const XEN_DOMCTL_SET_PAGING_MEMPOOL_SIZE: u32 = 86;
pub const XEN_DOMCTL_GDBSX_GUESTMEMIO: u32 = 1000;
pub const XEN_DOMCTL_GDBSX_PAUSEVCPU: u32 = 1001;
pub const XEN_DOMCTL_GDBSX_UNPAUSEVCPU: u32 = 1002;
pub const XEN_DOMCTL_GDBSX_DOMSTATUS: u32 = 1003;

// ---------------------------------------------------------------------------------------
// struct xen_domctl
// ---------------------------------------------------------------------------------------

/// Size of the `u` union of `struct xen_domctl`.
pub const XEN_DOMCTL_UNION_SIZE: usize = 128;

/// `struct xen_domctl`: one domain-control request. IN/OUT.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctl {
    /// IN: `XEN_DOMCTL_*`.
    pub cmd: u32,
    /// IN: [`XEN_DOMCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    /// IN: target domain. OUT for `createdomain` (the new id).
    pub domain: DomId,
    pub _pad: [u16; 3],
    /// IN/OUT: the sub-op struct (see each command), 8-aligned.
    pub u: Opaque<XEN_DOMCTL_UNION_SIZE>,
}
const _: () = assert!(core::mem::size_of::<XenDomctl>() == 144);
const _: () = assert!(core::mem::offset_of!(XenDomctl, u) == 16);

impl XenDomctl {
    /// A request `cmd` on `domain` with `payload` in the union (the rest zero).
    pub fn new<T: Wire>(cmd: u32, domain: DomId, payload: &T) -> Self {
        Self {
            cmd,
            interface_version: XEN_DOMCTL_INTERFACE_VERSION,
            domain,
            _pad: [0; 3],
            u: Opaque::of(payload),
        }
    }

    /// A request with no payload (pause, unpause, destroy...).
    pub fn bare(cmd: u32, domain: DomId) -> Self {
        Self {
            cmd,
            interface_version: XEN_DOMCTL_INTERFACE_VERSION,
            domain,
            _pad: [0; 3],
            u: Opaque::ZERO,
        }
    }

    /// Decode the union as a `T` (after the hypercall, for OUT fields).
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

/// `struct xen_arch_domainconfig` (x86, `xen/arch-x86/xen.h`). A PV guest uses 0 for
/// both (no emulated devices).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenArchDomainconfig {
    /// IN: `XEN_X86_EMU_*` (must be 0 for PV, or `XEN_X86_EMU_PIT` alone).
    pub emulation_flags: u32,
    /// IN: `XEN_X86_MSR_RELAXED`.
    pub misc_flags: u32,
}
const _: () = assert!(core::mem::size_of::<XenArchDomainconfig>() == 8);
wire!(XenArchDomainconfig {
    emulation_flags,
    misc_flags
});

pub const XEN_X86_EMU_LAPIC: u32 = 1 << 0;
pub const XEN_X86_EMU_HPET: u32 = 1 << 1;
pub const XEN_X86_EMU_PM: u32 = 1 << 2;
pub const XEN_X86_EMU_RTC: u32 = 1 << 3;
pub const XEN_X86_EMU_IOAPIC: u32 = 1 << 4;
pub const XEN_X86_EMU_PIC: u32 = 1 << 5;
pub const XEN_X86_EMU_VGA: u32 = 1 << 6;
pub const XEN_X86_EMU_IOMMU: u32 = 1 << 7;
pub const XEN_X86_EMU_PIT: u32 = 1 << 8;
pub const XEN_X86_EMU_USE_PIRQ: u32 = 1 << 9;
pub const XEN_X86_EMU_VPCI: u32 = 1 << 10;
pub const XEN_X86_EMU_ALL: u32 = 0x7ff;
pub const XEN_X86_MSR_RELAXED: u32 = 1 << 0;

/// `XenDomctlCreatedomain::flags` (`XEN_DOMCTL_CDF_*`). 0 is a PV domain.
pub const XEN_DOMCTL_CDF_HVM: u32 = 1 << 0;
pub const XEN_DOMCTL_CDF_HAP: u32 = 1 << 1;
pub const XEN_DOMCTL_CDF_S3_INTEGRITY: u32 = 1 << 2;
pub const XEN_DOMCTL_CDF_OOS_OFF: u32 = 1 << 3;
pub const XEN_DOMCTL_CDF_XS_DOMAIN: u32 = 1 << 4;
pub const XEN_DOMCTL_CDF_IOMMU: u32 = 1 << 5;
pub const XEN_DOMCTL_CDF_NESTED_VIRT: u32 = 1 << 6;
pub const XEN_DOMCTL_CDF_VPMU: u32 = 1 << 7;
pub const XEN_DOMCTL_CDF_MAX: u32 = XEN_DOMCTL_CDF_VPMU;
pub const XEN_DOMCTL_IOMMU_NO_SHAREPT: u32 = 1 << 0;
pub const XEN_DOMCTL_IOMMU_MAX: u32 = XEN_DOMCTL_IOMMU_NO_SHAREPT;
/// `XenDomctlCreatedomain::grant_opts`: grant-table version in the low 4 bits.
pub const XEN_DOMCTL_GRANT_VERSION_MASK: u32 = 0xf;
/// `XEN_DOMCTL_GRANT_version(v)`.
pub const fn xen_domctl_grant_version(v: u32) -> u32 {
    v & XEN_DOMCTL_GRANT_VERSION_MASK
}

/// `struct xen_domctl_createdomain` (IN), `XEN_DOMCTL_createdomain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlCreatedomain {
    /// IN: XSM security id (0 without XSM).
    pub ssidref: u32,
    /// IN: the domain's UUID.
    pub handle: XenDomainHandle,
    /// IN: `XEN_DOMCTL_CDF_*` (0 = PV).
    pub flags: u32,
    /// IN: `XEN_DOMCTL_IOMMU_*`.
    pub iommu_opts: u32,
    /// IN: number of vCPUs (>= 1).
    pub max_vcpus: u32,
    /// IN: highest event-channel port the domain may use.
    pub max_evtchn_port: u32,
    /// IN: grant-table frames (< 0: the hypervisor's default).
    pub max_grant_frames: i32,
    /// IN: maptrack frames (< 0: the hypervisor's default).
    pub max_maptrack_frames: i32,
    /// IN: `XEN_DOMCTL_GRANT_version(v)` (1 or 2; 0 is refused by Xen 4.17).
    pub grant_opts: u32,
    /// IN: per-vCPU trace buffer bytes (0 = none).
    pub vmtrace_size: u32,
    /// IN: CPU pool (0 = the default pool).
    pub cpupool_id: u32,
    /// IN: arch configuration.
    pub arch: XenArchDomainconfig,
}
const _: () = assert!(core::mem::size_of::<XenDomctlCreatedomain>() == 64);
wire!(XenDomctlCreatedomain {
    ssidref,
    handle,
    flags,
    iommu_opts,
    max_vcpus,
    max_evtchn_port,
    max_grant_frames,
    max_maptrack_frames,
    grant_opts,
    vmtrace_size,
    cpupool_id,
    arch,
});

/// `XenDomctlGetdomaininfo::flags` (`XEN_DOMINF_*`).
pub const XEN_DOMINF_DYING: u32 = 1 << 0;
pub const XEN_DOMINF_HVM_GUEST: u32 = 1 << 1;
pub const XEN_DOMINF_SHUTDOWN: u32 = 1 << 2;
pub const XEN_DOMINF_PAUSED: u32 = 1 << 3;
pub const XEN_DOMINF_BLOCKED: u32 = 1 << 4;
pub const XEN_DOMINF_RUNNING: u32 = 1 << 5;
pub const XEN_DOMINF_DEBUGGED: u32 = 1 << 6;
pub const XEN_DOMINF_XS_DOMAIN: u32 = 1 << 7;
pub const XEN_DOMINF_HAP: u32 = 1 << 8;
/// The guest's `SHUTDOWN_*` code is `(flags >> XEN_DOMINF_SHUTDOWNSHIFT) &
/// XEN_DOMINF_SHUTDOWNMASK` when `XEN_DOMINF_SHUTDOWN` is set.
pub const XEN_DOMINF_SHUTDOWNMASK: u32 = 255;
pub const XEN_DOMINF_SHUTDOWNSHIFT: u32 = 16;
/// `XenDomctlGetdomaininfo::max_vcpu_id` of a domain with no vCPUs.
pub const XEN_INVALID_MAX_VCPU_ID: u32 = !0;

/// `struct xen_domctl_getdomaininfo` (OUT): `XEN_DOMCTL_getdomaininfo`, and the
/// element type of `XEN_SYSCTL_getdomaininfolist`'s buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlGetdomaininfo {
    /// OUT: the domain (also echoed in `XenDomctl::domain`).
    pub domain: DomId,
    pub pad1: u16,
    /// OUT: `XEN_DOMINF_*`, plus the shutdown code in bits 16..23. Xen 4.17 stores
    /// `shutdown_code << 16` with `shutdown_code = ~0` until the guest shuts down, so a
    /// live domain reads `0xffff_0000 | XEN_DOMINF_*`.
    pub flags: u32,
    /// OUT: pages allocated to the domain.
    pub tot_pages: u64,
    /// OUT: its limit (`XEN_DOMCTL_max_mem` in pages).
    pub max_pages: u64,
    /// OUT: pages claimed but not yet allocated.
    pub outstanding_pages: u64,
    /// OUT: shared (copy-on-write) pages.
    pub shr_pages: u64,
    /// OUT: paged-out pages.
    pub paged_pages: u64,
    /// OUT: GMFN (MFN for PV) of its shared-info page.
    pub shared_info_frame: u64,
    /// OUT: CPU time used, ns.
    pub cpu_time: u64,
    /// OUT: vCPUs currently online.
    pub nr_online_vcpus: u32,
    /// OUT: highest vCPU id ([`XEN_INVALID_MAX_VCPU_ID`] if none).
    pub max_vcpu_id: u32,
    /// OUT: XSM security id.
    pub ssidref: u32,
    /// OUT: UUID.
    pub handle: XenDomainHandle,
    /// OUT: CPU pool.
    pub cpupool: u32,
    /// OUT: guest physical address bits.
    pub gpaddr_bits: u8,
    pub pad2: [u8; 7],
    /// OUT: arch configuration.
    pub arch_config: XenArchDomainconfig,
}
const _: () = assert!(core::mem::size_of::<XenDomctlGetdomaininfo>() == 112);
wire!(XenDomctlGetdomaininfo {
    domain,
    pad1,
    flags,
    tot_pages,
    max_pages,
    outstanding_pages,
    shr_pages,
    paged_pages,
    shared_info_frame,
    cpu_time,
    nr_online_vcpus,
    max_vcpu_id,
    ssidref,
    handle,
    cpupool,
    gpaddr_bits,
    pad2,
    arch_config,
});

impl XenDomctlGetdomaininfo {
    /// The `SHUTDOWN_*` code, when the domain has shut down.
    pub const fn shutdown_code(&self) -> Option<u32> {
        if self.flags & XEN_DOMINF_SHUTDOWN != 0 {
            Some((self.flags >> XEN_DOMINF_SHUTDOWNSHIFT) & XEN_DOMINF_SHUTDOWNMASK)
        } else {
            None
        }
    }
}

/// `struct xenctl_bitmap` (`xen/xen.h`, tools only): a guest buffer of bits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenctlBitmap {
    /// IN: guest handle of a byte array (bit `n` is byte `n / 8`, bit `n % 8`).
    pub bitmap: u64,
    /// IN: number of bits the buffer holds.
    pub nr_bits: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<XenctlBitmap>() == 16);
wire!(XenctlBitmap {
    bitmap,
    nr_bits,
    _pad
});

/// `struct xen_domctl_max_mem` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlMaxMem {
    /// IN: the domain's memory limit, KiB.
    pub max_memkb: u64,
}
const _: () = assert!(core::mem::size_of::<XenDomctlMaxMem>() == 8);
wire!(XenDomctlMaxMem { max_memkb });

/// `struct xen_domctl_vcpucontext`: `XEN_DOMCTL_{set,get}vcpucontext`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlVcpucontext {
    /// IN: the vCPU.
    pub vcpu: u32,
    pub _pad: u32,
    /// IN: guest handle of a [`crate::xen::VcpuGuestContext`] (read for set, written for
    /// get; 0 for set resets the vCPU).
    pub ctxt: u64,
}
const _: () = assert!(core::mem::size_of::<XenDomctlVcpucontext>() == 16);
wire!(XenDomctlVcpucontext { vcpu, _pad, ctxt });

/// `struct xen_domctl_getvcpuinfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlGetvcpuinfo {
    /// IN: the vCPU.
    pub vcpu: u32,
    /// OUT: online (not hot-unplugged)?
    pub online: u8,
    /// OUT: blocked waiting for an event?
    pub blocked: u8,
    /// OUT: running on a CPU now?
    pub running: u8,
    pub _pad: u8,
    /// OUT: CPU time used, ns.
    pub cpu_time: u64,
    /// OUT: the physical CPU it is on (or last ran on).
    pub cpu: u32,
    pub _pad2: u32,
}
const _: () = assert!(core::mem::size_of::<XenDomctlGetvcpuinfo>() == 24);
wire!(XenDomctlGetvcpuinfo {
    vcpu,
    online,
    blocked,
    running,
    _pad,
    cpu_time,
    cpu,
    _pad2
});

/// `struct xen_domctl_nodeaffinity`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlNodeaffinity {
    /// IN (set) / OUT (get): NUMA nodes.
    pub nodemap: XenctlBitmap,
}
const _: () = assert!(core::mem::size_of::<XenDomctlNodeaffinity>() == 16);
wire!(XenDomctlNodeaffinity { nodemap });

/// `XenDomctlVcpuaffinity::flags`.
pub const XEN_VCPUAFFINITY_HARD: u32 = 1 << 0;
pub const XEN_VCPUAFFINITY_SOFT: u32 = 1 << 1;
pub const XEN_VCPUAFFINITY_FORCE: u32 = 1 << 2;

/// `struct xen_domctl_vcpuaffinity`: `XEN_DOMCTL_{set,get}vcpuaffinity`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlVcpuaffinity {
    /// IN: the vCPU.
    pub vcpu: u32,
    /// IN: `XEN_VCPUAFFINITY_*`.
    pub flags: u32,
    /// IN/OUT (set: the effective hard affinity back) / OUT (get).
    pub cpumap_hard: XenctlBitmap,
    /// IN/OUT / OUT, as `cpumap_hard`.
    pub cpumap_soft: XenctlBitmap,
}
const _: () = assert!(core::mem::size_of::<XenDomctlVcpuaffinity>() == 40);
wire!(XenDomctlVcpuaffinity {
    vcpu,
    flags,
    cpumap_hard,
    cpumap_soft
});

/// `struct xen_domctl_max_vcpus` (IN): must equal `createdomain`'s `max_vcpus`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlMaxVcpus {
    pub max: u32,
}
const _: () = assert!(core::mem::size_of::<XenDomctlMaxVcpus>() == 4);
wire!(XenDomctlMaxVcpus { max });

/// Scheduler ids (`XEN_SCHEDULER_*`).
pub const XEN_SCHEDULER_CREDIT: u32 = 5;
pub const XEN_SCHEDULER_CREDIT2: u32 = 6;
pub const XEN_SCHEDULER_ARINC653: u32 = 7;
pub const XEN_SCHEDULER_RTDS: u32 = 8;
pub const XEN_SCHEDULER_NULL: u32 = 9;

/// `XenDomctlSchedulerOp::cmd`.
pub const XEN_DOMCTL_SCHEDOP_PUTINFO: u32 = 0;
pub const XEN_DOMCTL_SCHEDOP_GETINFO: u32 = 1;
pub const XEN_DOMCTL_SCHEDOP_PUTVCPUINFO: u32 = 2;
pub const XEN_DOMCTL_SCHEDOP_GETVCPUINFO: u32 = 3;
/// `XenDomctlSchedRtds::flags`.
pub const XEN_DOMCTL_SCHEDRT_EXTRA: u32 = 1 << 0;

/// `struct xen_domctl_sched_credit`: weight (1..=65535, default 256) and cap (% of one
/// CPU, 0 = none).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlSchedCredit {
    pub weight: u16,
    pub cap: u16,
}
const _: () = assert!(core::mem::size_of::<XenDomctlSchedCredit>() == 4);
wire!(XenDomctlSchedCredit { weight, cap });

/// `struct xen_domctl_sched_credit2`: same layout as credit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlSchedCredit2 {
    pub weight: u16,
    pub cap: u16,
}
const _: () = assert!(core::mem::size_of::<XenDomctlSchedCredit2>() == 4);
wire!(XenDomctlSchedCredit2 { weight, cap });

/// `struct xen_domctl_sched_rtds`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlSchedRtds {
    /// Period, us.
    pub period: u32,
    /// Budget, us.
    pub budget: u32,
    /// `XEN_DOMCTL_SCHEDRT_*`.
    pub flags: u32,
}
const _: () = assert!(core::mem::size_of::<XenDomctlSchedRtds>() == 12);
wire!(XenDomctlSchedRtds {
    period,
    budget,
    flags
});

/// `struct xen_domctl_schedparam_vcpu`: one element of the per-vCPU array (RTDS). The
/// union `u` of credit/credit2/rtds is flattened to its three words.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlSchedparamVcpu {
    /// IN/OUT: the parameters (as [`XenDomctlSchedRtds`], or credit in the first word).
    pub u: [u32; 3],
    /// IN: the vCPU.
    pub vcpuid: u32,
}
const _: () = assert!(core::mem::size_of::<XenDomctlSchedparamVcpu>() == 16);
wire!(XenDomctlSchedparamVcpu { u, vcpuid });

/// The `v` member of `XenDomctlSchedulerOp`'s union (per-vCPU ops).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlSchedVcpus {
    /// IN: guest handle of a [`XenDomctlSchedparamVcpu`] array.
    pub vcpus: u64,
    /// IN: elements; OUT: elements processed.
    pub nr_vcpus: u32,
    pub padding: u32,
}
const _: () = assert!(core::mem::size_of::<XenDomctlSchedVcpus>() == 16);
wire!(XenDomctlSchedVcpus {
    vcpus,
    nr_vcpus,
    padding
});

/// `struct xen_domctl_scheduler_op`. `u` holds a [`XenDomctlSchedCredit`],
/// [`XenDomctlSchedCredit2`], [`XenDomctlSchedRtds`] or [`XenDomctlSchedVcpus`]; use
/// [`Opaque::get`]/[`Opaque::set`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlSchedulerOp {
    /// IN: `XEN_SCHEDULER_*` (must match the domain's pool's scheduler, else `-EINVAL`).
    pub sched_id: u32,
    /// IN: `XEN_DOMCTL_SCHEDOP_*`.
    pub cmd: u32,
    /// IN/OUT: the parameters.
    pub u: Opaque<16>,
}
const _: () = assert!(core::mem::size_of::<XenDomctlSchedulerOp>() == 24);
wire!(XenDomctlSchedulerOp { sched_id, cmd, u });

/// `struct xen_domctl_setdomainhandle` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlSetdomainhandle {
    pub handle: XenDomainHandle,
}
const _: () = assert!(core::mem::size_of::<XenDomctlSetdomainhandle>() == 16);
wire!(XenDomctlSetdomainhandle { handle });

/// `struct xen_domctl_setdebugging` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlSetdebugging {
    pub enable: u8,
}
const _: () = assert!(core::mem::size_of::<XenDomctlSetdebugging>() == 1);
wire!(XenDomctlSetdebugging { enable });

/// `struct xen_domctl_irq_permission` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlIrqPermission {
    pub pirq: u32,
    /// Non-zero allows, zero revokes.
    pub allow_access: u8,
    pub pad: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<XenDomctlIrqPermission>() == 8);
wire!(XenDomctlIrqPermission {
    pirq,
    allow_access,
    pad
});

/// `struct xen_domctl_iomem_permission` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlIomemPermission {
    /// First machine frame of the range.
    pub first_mfn: u64,
    /// Frames in the range (> 0).
    pub nr_mfns: u64,
    /// Non-zero allows, zero revokes.
    pub allow_access: u8,
    pub _pad: [u8; 7],
}
const _: () = assert!(core::mem::size_of::<XenDomctlIomemPermission>() == 24);
wire!(XenDomctlIomemPermission {
    first_mfn,
    nr_mfns,
    allow_access,
    _pad
});

/// `struct xen_domctl_ioport_permission` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlIoportPermission {
    pub first_port: u32,
    pub nr_ports: u32,
    /// Non-zero allows, zero revokes.
    pub allow_access: u8,
    pub _pad: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<XenDomctlIoportPermission>() == 12);
wire!(XenDomctlIoportPermission {
    first_port,
    nr_ports,
    allow_access,
    _pad
});

/// `struct xen_domctl_hypercall_init` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlHypercallInit {
    /// GMFN of the domain's page to fill with hypercall stubs (the MFN for PV, which is
    /// not translated).
    pub gmfn: u64,
}
const _: () = assert!(core::mem::size_of::<XenDomctlHypercallInit>() == 8);
wire!(XenDomctlHypercallInit { gmfn });

/// `struct xen_domctl_settimeoffset` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlSettimeoffset {
    /// Seconds added to the domain's wallclock.
    pub time_offset_seconds: i64,
}
const _: () = assert!(core::mem::size_of::<XenDomctlSettimeoffset>() == 8);
wire!(XenDomctlSettimeoffset {
    time_offset_seconds
});

/// `struct xen_domctl_address_size`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlAddressSize {
    /// Guest address width, bits (64 for a 64-bit PV guest, 32 for compat).
    pub size: u32,
}
const _: () = assert!(core::mem::size_of::<XenDomctlAddressSize>() == 4);
wire!(XenDomctlAddressSize { size });

/// `struct xen_domctl_tsc_info` (`XEN_DOMCTL_{get,set}tscinfo`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlTscInfo {
    pub tsc_mode: u32,
    pub gtsc_khz: u32,
    pub incarnation: u32,
    pub pad: u32,
    pub elapsed_nsec: u64,
}
const _: () = assert!(core::mem::size_of::<XenDomctlTscInfo>() == 24);
wire!(XenDomctlTscInfo {
    tsc_mode,
    gtsc_khz,
    incarnation,
    pad,
    elapsed_nsec
});

/// `struct xen_domctl_set_virq_handler` (IN): route a global VIRQ to this domain.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlSetVirqHandler {
    pub virq: u32,
}
const _: () = assert!(core::mem::size_of::<XenDomctlSetVirqHandler>() == 4);
wire!(XenDomctlSetVirqHandler { virq });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn createdomain_round_trips_through_the_union() {
        let c = XenDomctlCreatedomain {
            handle: [7; 16],
            max_vcpus: 2,
            max_evtchn_port: 1023,
            max_grant_frames: 32,
            max_maptrack_frames: -1,
            grant_opts: xen_domctl_grant_version(1),
            ..Default::default()
        };
        let d = XenDomctl::new(XEN_DOMCTL_CREATEDOMAIN, 0, &c);
        assert_eq!(d.interface_version, 0x15);
        assert_eq!(d.payload::<XenDomctlCreatedomain>(), c);
        // max_vcpus at offset 28 of the union, little-endian.
        assert_eq!(d.u.0[28..32], [2, 0, 0, 0]);
        assert_eq!(d.u.0[40..44], [0xff; 4]);
        assert_eq!(d.u.0[64..], [0; 64]);
    }

    #[test]
    fn scheduler_op_nests_credit() {
        let mut s = XenDomctlSchedulerOp {
            sched_id: XEN_SCHEDULER_CREDIT,
            cmd: XEN_DOMCTL_SCHEDOP_PUTINFO,
            u: Opaque::ZERO,
        };
        s.u.set(&XenDomctlSchedCredit {
            weight: 512,
            cap: 50,
        });
        let d = XenDomctl::new(XEN_DOMCTL_SCHEDULER_OP, 3, &s);
        let back: XenDomctlSchedulerOp = d.payload();
        assert_eq!(back.u.get::<XenDomctlSchedCredit>().weight, 512);
        assert_eq!(d.u.0[8..12], [0, 2, 50, 0]);
    }

    #[test]
    fn shutdown_code() {
        let mut i = XenDomctlGetdomaininfo {
            flags: XEN_DOMINF_SHUTDOWN | (3 << XEN_DOMINF_SHUTDOWNSHIFT),
            ..Default::default()
        };
        assert_eq!(i.shutdown_code(), Some(3));
        i.flags = XEN_DOMINF_RUNNING;
        assert_eq!(i.shutdown_code(), None);
    }
}
