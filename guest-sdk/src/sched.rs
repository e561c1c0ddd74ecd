//! `sched_op`: yield, block, poll, shutdown.

use xen_abi::errno::Errno;
use xen_abi::sched::*;

/// Give up the CPU to another runnable vCPU.
pub fn yield_now() {
    // SAFETY: SCHEDOP_yield takes no argument.
    let _ = unsafe { crate::hypercall::sched_op(SCHEDOP_YIELD, core::ptr::null_mut()) };
}

/// Block until an event is pending. Xen unmasks event delivery (clears
/// `evtchn_upcall_mask`) as part of blocking, so the upcall runs before this returns.
pub fn block() {
    // SAFETY: SCHEDOP_block takes no argument.
    let _ = unsafe { crate::hypercall::sched_op(SCHEDOP_BLOCK, core::ptr::null_mut()) };
}

/// Block until one of `ports` is pending or system time reaches `timeout_ns` (0: never).
pub fn poll(ports: &[u32], timeout_ns: u64) -> Result<(), Errno> {
    let mut p = SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: ports.len() as u32,
        _pad: 0,
        timeout: timeout_ns,
    };
    // SAFETY: `p` and the `ports` array it points at are live for the call.
    unsafe { crate::hypercall::sched_op(SCHEDOP_POLL, &mut p as *mut SchedPoll as *mut u8) }
        .map(|_| ())
}

/// `SCHEDOP_shutdown` with `reason` (`SHUTDOWN_*`). Does not return; if the hypervisor
/// refuses, spins yielding.
pub fn shutdown(reason: u32) -> ! {
    let mut arg = SchedShutdown { reason };
    loop {
        // SAFETY: `arg` is a live `sched_shutdown`.
        let _ = unsafe {
            crate::hypercall::sched_op(SCHEDOP_SHUTDOWN, &mut arg as *mut SchedShutdown as *mut u8)
        };
        yield_now();
    }
}

/// Power the domain off.
pub fn poweroff() -> ! {
    shutdown(SHUTDOWN_POWEROFF)
}

/// Ask for a reboot.
pub fn reboot() -> ! {
    shutdown(SHUTDOWN_REBOOT)
}

/// Crash the domain (what a panic does).
pub fn crash() -> ! {
    shutdown(SHUTDOWN_CRASH)
}
