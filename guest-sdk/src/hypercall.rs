//! Hypercalls through the hypercall page, and typed wrappers.
//!
//! Xen fills the page named by `XEN_ELFNOTE_HYPERCALL_PAGE` with 32-byte stubs
//! (`push %rcx; push %r11; mov $nr,%eax; syscall; pop %r11; pop %rcx; ret`). A hypercall
//! is a `call` to `hypercall_page + nr * 32` with arguments in `rdi rsi rdx r10 r8`; the
//! result comes back in `rax`, negative values `-4095..=-1` being `-errno`. Xen may
//! clobber the argument registers, so all five are marked clobbered.

use xen_abi::callback::{CallbackRegister, CALLBACKOP_REGISTER};
use xen_abi::errno::Errno;
#[cfg(not(target_os = "none"))]
use xen_abi::errno::ENOSYS;
use xen_abi::hypercall as nr;
use xen_abi::mm::{MmuUpdate, MmuextOp};
use xen_abi::xen::{DomId, MulticallEntry, TrapInfo};

/// Decode a hypercall's `rax`: `-4095..=-1` is `-errno`, anything else success.
pub const fn decode(ret: i64) -> Result<u64, Errno> {
    if ret < 0 && ret >= -4095 {
        Err(Errno(-ret as i32))
    } else {
        Ok(ret as u64)
    }
}

/// Address of the hypercall page (in the kernel image).
#[cfg(target_os = "none")]
pub fn hypercall_page() -> u64 {
    extern "C" {
        static sdk_hypercall_page: u8;
    }
    // `&raw const` takes the address of the extern static without reading it.
    (&raw const sdk_hypercall_page) as u64
}

/// Issue hypercall `nr` with five arguments; returns the raw `rax`.
///
/// # Safety
/// The arguments must be valid for that hypercall: pointers must point at memory of the
/// types the hypercall reads and writes, owned by the caller for the duration of the call.
#[cfg(target_os = "none")]
#[inline]
pub unsafe fn raw(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    let stub = hypercall_page() + nr * xen_abi::hypercall::HYPERCALL_STUB_SIZE as u64;
    let ret: i64;
    // SAFETY:
    // 1. `stub` is inside the hypercall page Xen filled at domain build; the stub saves
    //    and restores rcx/r11 and returns with `ret`, so only rax and the argument
    //    registers (which Xen may clobber) change, all declared here.
    // 2. The caller guarantees the arguments are valid for the hypercall (memory effects
    //    are covered by asm!'s default memory clobber).
    // 3. The target has no red zone, so the `call`'s push does not corrupt live data.
    unsafe {
        core::arch::asm!(
            "call rax",
            inlateout("rax") stub => ret,
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _,
            inlateout("r8") a5 => _,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

/// Host stand-in: there is no hypervisor, every hypercall fails with `ENOSYS`.
///
/// # Safety
/// Always safe on the host; `unsafe` only to match the bare-metal signature.
#[cfg(not(target_os = "none"))]
pub unsafe fn raw(_nr: u64, _a1: u64, _a2: u64, _a3: u64, _a4: u64, _a5: u64) -> i64 {
    -(ENOSYS.0 as i64)
}

/// Issue a hypercall and decode its result.
///
/// # Safety
/// As for [`raw`].
#[inline]
pub unsafe fn call(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    decode(unsafe { raw(nr, a1, a2, a3, a4, a5) })
}

/// `console_io(CONSOLEIO_write, len, buf)`: write bytes to the hypervisor console.
pub fn console_write(buf: &[u8]) -> Result<(), Errno> {
    // SAFETY: `buf` is a live slice of `buf.len()` readable bytes.
    unsafe {
        call(
            nr::CONSOLE_IO,
            xen_abi::console::CONSOLEIO_WRITE as u64,
            buf.len() as u64,
            buf.as_ptr() as u64,
            0,
            0,
        )
    }
    .map(|_| ())
}

/// `console_io(CONSOLEIO_read, len, buf)`: read bytes (dom0); returns how many.
pub fn console_read(buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is a live, exclusively borrowed slice of `buf.len()` writable bytes.
    unsafe {
        call(
            nr::CONSOLE_IO,
            xen_abi::console::CONSOLEIO_READ as u64,
            buf.len() as u64,
            buf.as_mut_ptr() as u64,
            0,
            0,
        )
    }
    .map(|n| n as usize)
}

/// `xen_version(cmd, arg)`.
///
/// # Safety
/// `arg` must be null or point at a writable buffer of the size `cmd` fills.
pub unsafe fn xen_version(cmd: u32, arg: *mut u8) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { call(nr::XEN_VERSION, cmd as u64, arg as u64, 0, 0, 0) }
}

/// `sched_op(cmd, arg)`.
///
/// # Safety
/// `arg` must be null or point at the struct `cmd` takes.
pub unsafe fn sched_op(cmd: u32, arg: *mut u8) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { call(nr::SCHED_OP, cmd as u64, arg as u64, 0, 0, 0) }
}

/// `event_channel_op(cmd, arg)`.
///
/// # Safety
/// `arg` must point at the struct `cmd` takes.
pub unsafe fn event_channel_op(cmd: u32, arg: *mut u8) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { call(nr::EVENT_CHANNEL_OP, cmd as u64, arg as u64, 0, 0, 0) }
}

/// `memory_op(cmd, arg)`.
///
/// # Safety
/// `arg` must point at the struct `cmd` takes, and any guest handles in it must be valid.
pub unsafe fn memory_op(cmd: u32, arg: *mut u8) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { call(nr::MEMORY_OP, cmd as u64, arg as u64, 0, 0, 0) }
}

/// `vcpu_op(cmd, vcpu, arg)`.
///
/// # Safety
/// `arg` must be null or point at the struct `cmd` takes.
pub unsafe fn vcpu_op(cmd: u32, vcpu: u32, arg: *mut u8) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { call(nr::VCPU_OP, cmd as u64, vcpu as u64, arg as u64, 0, 0) }
}

/// `physdev_op(cmd, arg)`.
///
/// # Safety
/// `arg` must point at the struct `cmd` takes.
pub unsafe fn physdev_op(cmd: u32, arg: *mut u8) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { call(nr::PHYSDEV_OP, cmd as u64, arg as u64, 0, 0, 0) }
}

/// `grant_table_op(cmd, uop, count)`.
///
/// # Safety
/// `uop` must point at `count` structs of the type `cmd` takes.
pub unsafe fn grant_table_op(cmd: u32, uop: *mut u8, count: u32) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    unsafe {
        call(
            nr::GRANT_TABLE_OP,
            cmd as u64,
            uop as u64,
            count as u64,
            0,
            0,
        )
    }
}

/// `set_trap_table(table)`: install the virtual IDT. `table` must end with an entry
/// whose `address` is 0 (it is checked here).
pub fn set_trap_table(table: &[TrapInfo]) -> Result<(), Errno> {
    if table.last().map(|t| t.address) != Some(0) {
        return Err(xen_abi::errno::EINVAL);
    }
    // SAFETY: `table` is a live, zero-terminated array of `TrapInfo`.
    unsafe { call(nr::SET_TRAP_TABLE, table.as_ptr() as u64, 0, 0, 0, 0) }.map(|_| ())
}

/// `callback_op(CALLBACKOP_register, cb)`.
pub fn callback_register(cb: &CallbackRegister) -> Result<(), Errno> {
    // SAFETY: `cb` is a live `CallbackRegister` the hypervisor only reads.
    unsafe {
        call(
            nr::CALLBACK_OP,
            CALLBACKOP_REGISTER as u64,
            cb as *const CallbackRegister as u64,
            0,
            0,
            0,
        )
    }
    .map(|_| ())
}

/// `set_callbacks(event, failsafe, syscall)` (the older interface).
pub fn set_callbacks(event: u64, failsafe: u64, syscall: u64) -> Result<(), Errno> {
    // SAFETY: addresses only; the hypervisor validates them as guest addresses.
    unsafe { call(nr::SET_CALLBACKS, event, failsafe, syscall, 0, 0) }.map(|_| ())
}

/// `stack_switch(ss, sp)`: the kernel stack for bounces from guest user mode.
pub fn stack_switch(ss: u64, sp: u64) -> Result<(), Errno> {
    // SAFETY: values only.
    unsafe { call(nr::STACK_SWITCH, ss, sp, 0, 0, 0) }.map(|_| ())
}

/// `mmu_update(reqs, count, &done, foreigndom)`: returns how many were done.
pub fn mmu_update(reqs: &[MmuUpdate], foreigndom: DomId) -> Result<u32, Errno> {
    let mut done: u32 = 0;
    // SAFETY: `reqs` is a live array the hypervisor reads; `done` is a live u32 it writes.
    unsafe {
        call(
            nr::MMU_UPDATE,
            reqs.as_ptr() as u64,
            reqs.len() as u64,
            &mut done as *mut u32 as u64,
            foreigndom as u64,
            0,
        )
    }
    .map(|_| done)
}

/// `mmuext_op(ops, count, &done, foreigndom)`: returns how many were done.
///
/// # Safety
/// Ops that carry guest pointers (`vcpumask` of the `*_MULTI` ops) must point at live
/// memory; page-table ops change the address space the caller runs in.
pub unsafe fn mmuext_op(ops: &[MmuextOp], foreigndom: DomId) -> Result<u32, Errno> {
    let mut done: u32 = 0;
    // SAFETY: `ops` is live and `done` writable; the rest is the caller's contract.
    unsafe {
        call(
            nr::MMUEXT_OP,
            ops.as_ptr() as u64,
            ops.len() as u64,
            &mut done as *mut u32 as u64,
            foreigndom as u64,
            0,
        )
    }
    .map(|_| done)
}

/// `update_va_mapping(va, pte, flags)`: replace the L1 entry mapping `va`.
///
/// # Safety
/// Changing a mapping can pull memory out from under live references: the caller must
/// own `va`'s page and have no references into it that outlive the change.
pub unsafe fn update_va_mapping(va: u64, pte: u64, flags: u64) -> Result<(), Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { call(nr::UPDATE_VA_MAPPING, va, pte, flags, 0, 0) }.map(|_| ())
}

/// `multicall(calls, count)`: each entry's `result` is filled in.
///
/// # Safety
/// Every entry must be a valid hypercall by the rules of that hypercall.
pub unsafe fn multicall(calls: &mut [MulticallEntry]) -> Result<(), Errno> {
    // SAFETY: forwarded to the caller; the array is live and writable.
    unsafe {
        call(
            nr::MULTICALL,
            calls.as_mut_ptr() as u64,
            calls.len() as u64,
            0,
            0,
            0,
        )
    }
    .map(|_| ())
}

/// `set_timer_op(timeout)`: one-shot `VIRQ_TIMER` at absolute system time `timeout` ns
/// (0 cancels).
pub fn set_timer_op(timeout_ns: u64) -> Result<(), Errno> {
    // SAFETY: value only.
    unsafe { call(nr::SET_TIMER_OP, timeout_ns, 0, 0, 0, 0) }.map(|_| ())
}

/// `vm_assist(cmd, type)`.
pub fn vm_assist(cmd: u32, type_: u32) -> Result<(), Errno> {
    // SAFETY: values only.
    unsafe { call(nr::VM_ASSIST, cmd as u64, type_ as u64, 0, 0, 0) }.map(|_| ())
}

/// `set_segment_base(which, base)`.
pub fn set_segment_base(which: u32, base: u64) -> Result<(), Errno> {
    // SAFETY: values only.
    unsafe { call(nr::SET_SEGMENT_BASE, which as u64, base, 0, 0, 0) }.map(|_| ())
}

/// `set_segment_base` selectors.
pub const SEGBASE_FS: u32 = 0;
pub const SEGBASE_GS_USER: u32 = 1;
pub const SEGBASE_GS_KERNEL: u32 = 2;
pub const SEGBASE_GS_USER_SEL: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_splits_errors_from_values() {
        assert_eq!(decode(0), Ok(0));
        assert_eq!(decode(0x4_0011), Ok(0x4_0011));
        assert_eq!(decode(-22), Err(xen_abi::errno::EINVAL));
        assert_eq!(decode(-4095), Err(Errno(4095)));
        assert_eq!(decode(-4096), Ok((-4096i64) as u64));
    }

    #[test]
    fn host_hypercalls_fail_with_enosys() {
        use xen_abi::errno::ENOSYS;
        assert_eq!(console_write(b"x"), Err(ENOSYS));
        assert_eq!(set_trap_table(&[TrapInfo::default()]), Err(ENOSYS));
        assert_eq!(
            set_trap_table(&[TrapInfo {
                address: 1,
                ..TrapInfo::default()
            }]),
            Err(xen_abi::errno::EINVAL)
        );
    }
}
