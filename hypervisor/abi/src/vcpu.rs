//! `vcpu_op` hypercall (`xen/vcpu.h`): bring vCPUs up/down, timers, runstate.
//!
//! `vcpu_op(cmd, vcpuid, arg)`.

/// Arg: [`crate::xen::VcpuGuestContext`] (IN) for an offline vCPU.
pub const VCPUOP_INITIALISE: u32 = 0;
pub const VCPUOP_UP: u32 = 1;
pub const VCPUOP_DOWN: u32 = 2;
/// Returns 1 if the vCPU is up.
pub const VCPUOP_IS_UP: u32 = 3;
/// Arg: [`VcpuRunstateInfo`] (OUT).
pub const VCPUOP_GET_RUNSTATE_INFO: u32 = 4;
/// Arg: [`VcpuRegisterRunstateMemoryArea`] (IN).
pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u32 = 5;
/// Arg: [`VcpuSetPeriodicTimer`] (IN).
pub const VCPUOP_SET_PERIODIC_TIMER: u32 = 6;
pub const VCPUOP_STOP_PERIODIC_TIMER: u32 = 7;
/// Arg: [`VcpuSetSingleshotTimer`] (IN).
pub const VCPUOP_SET_SINGLESHOT_TIMER: u32 = 8;
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u32 = 9;
/// Arg: [`VcpuRegisterVcpuInfo`] (IN).
pub const VCPUOP_REGISTER_VCPU_INFO: u32 = 10;
pub const VCPUOP_SEND_NMI: u32 = 11;
/// Arg: [`VcpuGetPhysid`] (OUT).
pub const VCPUOP_GET_PHYSID: u32 = 12;
/// Arg: [`VcpuRegisterTimeMemoryArea`] (IN).
pub const VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA: u32 = 13;

pub const RUNSTATE_RUNNING: i32 = 0;
pub const RUNSTATE_RUNNABLE: i32 = 1;
pub const RUNSTATE_BLOCKED: i32 = 2;
pub const RUNSTATE_OFFLINE: i32 = 3;
/// `XEN_RUNSTATE_UPDATE`: set in `state_entry_time` while the area is being updated.
pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;

/// `VcpuSetSingleshotTimer::flags`: fail with `-ETIME` if the timeout is in the past.
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1 << 0;

/// `struct vcpu_runstate_info` (OUT).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuRunstateInfo {
    /// `RUNSTATE_*`.
    pub state: i32,
    pub _pad: u32,
    /// System time when `state` was entered.
    pub state_entry_time: u64,
    /// Nanoseconds spent in each `RUNSTATE_*`.
    pub time: [u64; 4],
}
const _: () = assert!(core::mem::size_of::<VcpuRunstateInfo>() == 48);

/// `struct vcpu_register_runstate_memory_area` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuRegisterRunstateMemoryArea {
    /// IN: guest virtual address of a [`VcpuRunstateInfo`].
    pub addr: u64,
}
const _: () = assert!(core::mem::size_of::<VcpuRegisterRunstateMemoryArea>() == 8);

/// `struct vcpu_set_periodic_timer` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuSetPeriodicTimer {
    /// IN: period in ns.
    pub period_ns: u64,
}
const _: () = assert!(core::mem::size_of::<VcpuSetPeriodicTimer>() == 8);

/// `struct vcpu_set_singleshot_timer` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuSetSingleshotTimer {
    /// IN: absolute system time (ns) at which `VIRQ_TIMER` fires.
    pub timeout_abs_ns: u64,
    /// IN: `VCPU_SSHOTTMR_*`.
    pub flags: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<VcpuSetSingleshotTimer>() == 16);

/// `struct vcpu_register_vcpu_info` (IN): move this vCPU's `vcpu_info` to guest memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuRegisterVcpuInfo {
    /// IN: machine frame holding the new `vcpu_info`.
    pub mfn: u64,
    /// IN: offset in that frame.
    pub offset: u32,
    pub rsvd: u32,
}
const _: () = assert!(core::mem::size_of::<VcpuRegisterVcpuInfo>() == 16);

/// `struct vcpu_get_physid` (OUT).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuGetPhysid {
    /// OUT: APIC id in bits 0..31, ACPI id in bits 32..63.
    pub phys_id: u64,
}
const _: () = assert!(core::mem::size_of::<VcpuGetPhysid>() == 8);

/// `struct vcpu_register_time_memory_area` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuRegisterTimeMemoryArea {
    /// IN: guest virtual address of a `vcpu_time_info`.
    pub addr: u64,
}
const _: () = assert!(core::mem::size_of::<VcpuRegisterTimeMemoryArea>() == 8);
