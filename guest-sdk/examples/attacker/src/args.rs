//! Malformed hypercall arguments: pointers into the hypervisor's range or non-canonical,
//! huge counts, nested multicalls, unknown hypercall and sub-op numbers.
//!
//! Xen 4.17's answers: a guest handle outside the guest's range fails `copy_*_guest` or
//! `guest_handle_okay` with `-EFAULT` (`__addr_ok`); the reservation ops of `memory_op`
//! return the number of extents done instead of an error (`do_memory_op`: "return
//! start_extent"); `console_io` is the hardware domain's only (`-EPERM` for a domU in a
//! release build, before the buffer is looked at); an unknown hypercall or sub-op is
//! `-ENOSYS`; a multicall inside a multicall is `-EINVAL` ("Multicall reentry is
//! disallowed").

use crate::support::*;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use xen_abi::errno::*;
use xen_abi::hypercall as nr;
use xen_abi::xen::MulticallEntry;

/// Call `nr(cmd, ptr)` for every bad pointer; each must give `want`.
fn each_bad(
    what: &str,
    call: impl Fn(u64) -> Result<u64, Errno>,
    want: Result<u64, Errno>,
) -> Vec<Case> {
    BAD_POINTERS
        .iter()
        .map(|&(name, p)| (format!("{what} at {name}"), call(p), want))
        .collect()
}

/// Two-argument `(cmd, pointer)` hypercalls with a bad pointer: `-EFAULT`.
fn cmd_ptr(hc: u64, cmd: u32) -> impl Fn(u64) -> Result<u64, Errno> {
    // SAFETY: the only pointer is the bad one, which the hypervisor must refuse.
    move |p| unsafe { hcall(hc, [cmd as u64, p, 0, 0, 0]) }
}

/// Output buffers: `xen_version(XENVER_extraversion)`, `XENMEM_memory_map`,
/// `XENMEM_current_reservation`, `VCPUOP_set_singleshot_timer`: `-EFAULT`.
pub fn bad_pointers_misc() -> Outcome {
    let mut v = each_bad(
        "xen_version(extraversion)",
        cmd_ptr(nr::XEN_VERSION, xen_abi::version::XENVER_EXTRAVERSION),
        Err(EFAULT),
    );
    v.extend(each_bad(
        "memory_op(memory_map)",
        cmd_ptr(nr::MEMORY_OP, xen_abi::memory::XENMEM_MEMORY_MAP),
        Err(EFAULT),
    ));
    v.extend(each_bad(
        "memory_op(current_reservation)",
        cmd_ptr(nr::MEMORY_OP, xen_abi::memory::XENMEM_CURRENT_RESERVATION),
        Err(EFAULT),
    ));
    v.extend(each_bad(
        "vcpu_op(set_singleshot_timer)",
        // SAFETY: as in `cmd_ptr`.
        |p| unsafe {
            hcall(
                nr::VCPU_OP,
                [
                    xen_abi::vcpu::VCPUOP_SET_SINGLESHOT_TIMER as u64,
                    0,
                    p,
                    0,
                    0,
                ],
            )
        },
        Err(EFAULT),
    ));
    v.extend(each_bad(
        "physdev_op(set_iopl)",
        cmd_ptr(nr::PHYSDEV_OP, xen_abi::physdev::PHYSDEVOP_SET_IOPL),
        Err(EFAULT),
    ));
    v.extend(each_bad(
        "callback_op(register)",
        cmd_ptr(nr::CALLBACK_OP, xen_abi::callback::CALLBACKOP_REGISTER),
        Err(EFAULT),
    ));
    all_agree(&v)
}

/// The reservation ops of `memory_op` with the reservation struct at a bad pointer:
/// Xen returns 0 (no extent done), not an error.
pub fn bad_pointer_reservation() -> Outcome {
    use xen_abi::memory::*;
    let mut v = Vec::new();
    for (name, cmd) in [
        ("increase_reservation", XENMEM_INCREASE_RESERVATION),
        ("decrease_reservation", XENMEM_DECREASE_RESERVATION),
        ("populate_physmap", XENMEM_POPULATE_PHYSMAP),
    ] {
        v.extend(each_bad(
            &format!("memory_op({name})"),
            cmd_ptr(nr::MEMORY_OP, cmd),
            Ok(0),
        ));
    }
    all_agree(&v)
}

/// `console_io(write)` from a domU, with a buffer in the hypervisor's range: `-EPERM`
/// (only the hardware domain may use the hypervisor's console).
pub fn console_io() -> Outcome {
    let v = each_bad(
        "console_io(write, 16 bytes)",
        // SAFETY: the buffer is a pointer the hypervisor must refuse.
        |p| unsafe { hcall(nr::CONSOLE_IO, [0, 16, p, 0, 0]) },
        Err(EPERM),
    );
    all_agree(&v)
}

/// Event-channel and grant-table ops and `SCHEDOP_poll` with their argument at a bad
/// pointer, and a poll whose port list is bad: `-EFAULT`.
pub fn bad_pointers_channels() -> Outcome {
    use xen_abi::event_channel::*;
    use xen_abi::grant_table::*;
    let mut v = Vec::new();
    for (name, cmd) in [
        ("alloc_unbound", EVTCHNOP_ALLOC_UNBOUND),
        ("send", EVTCHNOP_SEND),
        ("status", EVTCHNOP_STATUS),
        ("close", EVTCHNOP_CLOSE),
    ] {
        v.extend(each_bad(
            &format!("event_channel_op({name})"),
            cmd_ptr(nr::EVENT_CHANNEL_OP, cmd),
            Err(EFAULT),
        ));
    }
    for (name, cmd) in [
        ("setup_table", GNTTABOP_SETUP_TABLE),
        ("map_grant_ref", GNTTABOP_MAP_GRANT_REF),
        ("copy", GNTTABOP_COPY),
        ("query_size", GNTTABOP_QUERY_SIZE),
    ] {
        v.extend(each_bad(
            &format!("grant_table_op({name})"),
            // SAFETY: the op array is a pointer the hypervisor must refuse.
            |p| unsafe { hcall(nr::GRANT_TABLE_OP, [cmd as u64, p, 1, 0, 0]) },
            Err(EFAULT),
        ));
    }
    v.extend(each_bad(
        "sched_op(poll) struct",
        cmd_ptr(nr::SCHED_OP, xen_abi::sched::SCHEDOP_POLL),
        Err(EFAULT),
    ));
    v.extend(each_bad(
        "sched_op(poll) port list",
        |p| {
            let mut poll = xen_abi::sched::SchedPoll {
                ports: p,
                nr_ports: 1,
                _pad: 0,
                timeout: guest_sdk::time::system_time_ns() + 1_000_000,
            };
            // SAFETY: `poll` is ours; its port list is a pointer the hypervisor must
            // refuse (and the timeout bounds the call if it does not).
            unsafe {
                guest_sdk::hypercall::sched_op(
                    xen_abi::sched::SCHEDOP_POLL,
                    &mut poll as *mut _ as *mut u8,
                )
            }
        },
        Err(EFAULT),
    ));
    all_agree(&v)
}

/// `set_trap_table` reading its table from a bad pointer: `-EFAULT` (the SDK's table is
/// installed again afterwards).
pub fn bad_trap_table() -> Outcome {
    let v = each_bad(
        "set_trap_table",
        // SAFETY: the table pointer is one the hypervisor must refuse.
        |p| unsafe { hcall(nr::SET_TRAP_TABLE, [p, 0, 0, 0, 0]) },
        Err(EFAULT),
    );
    let _ = guest_sdk::traps::init();
    all_agree(&v)
}

fn entry(op: u64, args: [u64; 6]) -> MulticallEntry {
    MulticallEntry {
        op,
        result: 0xdead,
        args,
    }
}

/// `multicall` with its list at a bad pointer: `-EFAULT`; with count 0xffffffff over a
/// list whose first entry (`xen_version`) is legal and whose second is in an unmapped
/// guard page: `-EFAULT` at the guard; a multicall inside a multicall: its entry gets
/// `-EINVAL` and the inner list is not run.
pub fn multicalls() -> Outcome {
    let mut v = each_bad(
        "multicall list",
        // SAFETY: the list pointer is one the hypervisor must refuse.
        |p| unsafe { hcall(nr::MULTICALL, [p, 1, 0, 0, 0]) },
        Err(EFAULT),
    );
    let g = guarded_page()?;
    let at = g.va + 4096 - 64;
    let e = entry(nr::XEN_VERSION, [0; 6]);
    // SAFETY: `at` is the last 64 bytes of our own page; no reference into it.
    unsafe { (at as *mut MulticallEntry).write_volatile(e) };
    // SAFETY: the list is ours up to the guard page, where the hypervisor must stop.
    let r = unsafe { hcall(nr::MULTICALL, [at, 0xffff_ffff, 0, 0, 0]) };
    v.push(("multicall x 0xffffffff".into(), r, Err(EFAULT)));

    let mut inner = [entry(nr::XEN_VERSION, [0; 6])];
    let mut outer = [entry(
        nr::MULTICALL,
        [inner.as_mut_ptr() as u64, 1, 0, 0, 0, 0],
    )];
    // SAFETY: both lists are live arrays of ours; the inner one holds a harmless call.
    let r = unsafe { guest_sdk::hypercall::multicall(&mut outer) }.map(|_| 0);
    v.push(("nested multicall: outer".into(), r, Ok(0)));
    v.push((
        "nested multicall: inner entry".into(),
        guest_sdk::hypercall::decode(outer[0].result as i64),
        Err(EINVAL),
    ));
    // SAFETY: reading our own array after the call (volatile: the hypervisor wrote it).
    let inner_result = unsafe { core::ptr::addr_of!(inner[0].result).read_volatile() };
    v.push((
        "nested multicall: inner list untouched (0xdead)".into(),
        Ok(inner_result),
        Ok(0xdead),
    ));
    all_agree(&v)
}

/// Unknown hypercall numbers (through the page: 60, 127; by `syscall`: 0x100000011
/// (xen_version with a high bit), 2^64 - 1) and unknown sub-ops of `sched_op`,
/// `event_channel_op`, `grant_table_op`, `memory_op`, `vcpu_op`, `xen_version`,
/// `physdev_op`, `callback_op`, `vm_assist`: `-ENOSYS`.
pub fn unknown_ops() -> Outcome {
    // Hypercall `nr` with a command number and no pointer.
    let call = |nr: u64, cmd: u64| {
        // SAFETY: no argument points at anything; the hypervisor must refuse the number.
        unsafe { hcall(nr, [cmd, 0, 0, 0, 0]) }
    };
    let raw = |nr: u64| {
        // SAFETY: as above, through `syscall` for numbers the hypercall page has no
        // stub for.
        unsafe { syscall_any(nr, [0; 5]) }
    };
    let v: Vec<Case> = [
        ("hypercall 60", call(60, 0)),
        ("hypercall 127", call(127, 0)),
        ("hypercall 0x100000011", raw(0x1_0000_0011)),
        ("hypercall 2^64-1", raw(u64::MAX)),
        ("sched_op 99", call(nr::SCHED_OP, 99)),
        ("event_channel_op 99", call(nr::EVENT_CHANNEL_OP, 99)),
        ("grant_table_op 99", call(nr::GRANT_TABLE_OP, 99)),
        ("memory_op 63", call(nr::MEMORY_OP, 63)),
        ("vcpu_op 99", call(nr::VCPU_OP, 99)),
        ("xen_version 99", call(nr::XEN_VERSION, 99)),
        ("physdev_op 99", call(nr::PHYSDEV_OP, 99)),
        ("callback_op 99", call(nr::CALLBACK_OP, 99)),
        ("vm_assist cmd 99", call(nr::VM_ASSIST, 99)),
    ]
    .into_iter()
    .map(|(w, r)| (String::from(w), r, Err(ENOSYS)))
    .collect();
    all_agree(&v)
}
