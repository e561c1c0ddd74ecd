//! `sched_op` hypercall (`xen/sched.h`): yield, block, shutdown, poll.

pub const SCHEDOP_YIELD: u32 = 0;
pub const SCHEDOP_BLOCK: u32 = 1;
pub const SCHEDOP_SHUTDOWN: u32 = 2;
pub const SCHEDOP_POLL: u32 = 3;
pub const SCHEDOP_REMOTE_SHUTDOWN: u32 = 4;
pub const SCHEDOP_SHUTDOWN_CODE: u32 = 5;
pub const SCHEDOP_WATCHDOG: u32 = 6;
pub const SCHEDOP_PIN_OVERRIDE: u32 = 7;

/// Shutdown reasons (`SHUTDOWN_*`).
pub const SHUTDOWN_POWEROFF: u32 = 0;
pub const SHUTDOWN_REBOOT: u32 = 1;
pub const SHUTDOWN_SUSPEND: u32 = 2;
pub const SHUTDOWN_CRASH: u32 = 3;
pub const SHUTDOWN_WATCHDOG: u32 = 4;
pub const SHUTDOWN_SOFT_RESET: u32 = 5;
pub const SHUTDOWN_MAX: u32 = 5;

/// `struct sched_shutdown` (IN): `SCHEDOP_shutdown` and `SCHEDOP_shutdown_code`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedShutdown {
    /// IN: `SHUTDOWN_*`.
    pub reason: u32,
}
const _: () = assert!(core::mem::size_of::<SchedShutdown>() == 4);

/// `struct sched_poll` (IN): block until one of `ports` is pending or `timeout`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedPoll {
    /// IN: guest handle to an array of `evtchn_port_t`.
    pub ports: u64,
    /// IN: number of ports.
    pub nr_ports: u32,
    pub _pad: u32,
    /// IN: absolute system time (ns) to give up at; 0 = none.
    pub timeout: u64,
}
const _: () = assert!(core::mem::size_of::<SchedPoll>() == 24);

/// `struct sched_remote_shutdown` (IN, privileged).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedRemoteShutdown {
    /// IN: domain to shut down.
    pub domain_id: u16,
    pub _pad: u16,
    /// IN: `SHUTDOWN_*`.
    pub reason: u32,
}
const _: () = assert!(core::mem::size_of::<SchedRemoteShutdown>() == 8);

/// `struct sched_watchdog` (IN/OUT).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedWatchdog {
    /// IN: watchdog id (0 = create new); OUT: the id created.
    pub id: u32,
    /// IN: timeout in seconds (0 = destroy).
    pub timeout: u32,
}
const _: () = assert!(core::mem::size_of::<SchedWatchdog>() == 8);
