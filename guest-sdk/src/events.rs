//! Event channels (2-level ABI): callbacks, the upcall dispatcher, and port operations.
//!
//! At boot the SDK registers its event and failsafe callbacks with `callback_op`,
//! with `CALLBACKF_mask_events`, and leaves events masked (`evtchn_upcall_mask = 1`, as
//! the hypervisor starts vCPUs). A guest binds ports, installs handlers with
//! [`set_handler`], then calls [`enable`]. The upcall scans `evtchn_pending_sel` and the
//! pending/mask bitmaps, clears each pending bit and calls the port's handler.

use core::sync::atomic::{AtomicUsize, Ordering};
use xen_abi::callback::*;
use xen_abi::errno::Errno;
use xen_abi::event_channel::*;
use xen_abi::xen::{DomId, DOMID_SELF};

pub use xen_abi::event_channel::EvtchnPort;

/// Ports `0..MAX_HANDLED_PORTS` can have handlers.
pub const MAX_HANDLED_PORTS: usize = 1024;

/// An event handler, called with the port that fired (events masked).
pub type EventHandler = fn(EvtchnPort);

static HANDLERS: [AtomicUsize; MAX_HANDLED_PORTS] =
    [const { AtomicUsize::new(0) }; MAX_HANDLED_PORTS];

/// Register the event upcall and failsafe callbacks.
pub fn init() -> Result<(), Errno> {
    let (event, failsafe) = callback_addresses();
    crate::hypercall::callback_register(&CallbackRegister {
        type_: CALLBACKTYPE_EVENT,
        flags: CALLBACKF_MASK_EVENTS,
        _pad: 0,
        address: event,
    })?;
    crate::hypercall::callback_register(&CallbackRegister {
        type_: CALLBACKTYPE_FAILSAFE,
        flags: CALLBACKF_MASK_EVENTS,
        _pad: 0,
        address: failsafe,
    })
}

/// Call `handler` when `port` fires. Ports above [`MAX_HANDLED_PORTS`] are refused.
pub fn set_handler(port: EvtchnPort, handler: EventHandler) -> Result<(), Errno> {
    let slot = HANDLERS.get(port as usize).ok_or(xen_abi::errno::ENOSPC)?;
    slot.store(handler as usize, Ordering::Release);
    Ok(())
}

/// Unmask event delivery on vCPU 0, and trigger the upcall if one is already pending.
pub fn enable() {
    if let Some(m) = crate::shared::upcall_mask(0) {
        m.store(0, Ordering::SeqCst);
        if crate::shared::upcall_pending(0).map(|p| p.load(Ordering::SeqCst)) == Some(1) {
            // Any hypercall returns through the event check: use a cheap one.
            let _ = crate::version::version();
        }
    }
}

/// Mask event delivery on vCPU 0; returns whether it was unmasked before.
pub fn disable() -> bool {
    crate::shared::upcall_mask(0).is_some_and(|m| m.swap(1, Ordering::SeqCst) == 0)
}

/// `EVTCHNOP_alloc_unbound`: a port in our domain that `remote` may bind.
pub fn alloc_unbound(remote: DomId) -> Result<EvtchnPort, Errno> {
    let mut op = EvtchnAllocUnbound {
        dom: DOMID_SELF,
        remote_dom: remote,
        port: 0,
    };
    op_call(EVTCHNOP_ALLOC_UNBOUND, &mut op)?;
    Ok(op.port)
}

/// `EVTCHNOP_bind_interdomain`: connect to `remote_port` of `remote`.
pub fn bind_interdomain(remote: DomId, remote_port: EvtchnPort) -> Result<EvtchnPort, Errno> {
    let mut op = EvtchnBindInterdomain {
        remote_dom: remote,
        _pad: 0,
        remote_port,
        local_port: 0,
    };
    op_call(EVTCHNOP_BIND_INTERDOMAIN, &mut op)?;
    Ok(op.local_port)
}

/// `EVTCHNOP_bind_virq`: bind `virq` on `vcpu`.
pub fn bind_virq(virq: u32, vcpu: u32) -> Result<EvtchnPort, Errno> {
    let mut op = EvtchnBindVirq {
        virq,
        vcpu,
        port: 0,
    };
    op_call(EVTCHNOP_BIND_VIRQ, &mut op)?;
    Ok(op.port)
}

/// `EVTCHNOP_bind_ipi`: a port for IPIs to `vcpu`.
pub fn bind_ipi(vcpu: u32) -> Result<EvtchnPort, Errno> {
    let mut op = EvtchnBindIpi { vcpu, port: 0 };
    op_call(EVTCHNOP_BIND_IPI, &mut op)?;
    Ok(op.port)
}

/// `EVTCHNOP_send`: notify the other end of `port`.
pub fn send(port: EvtchnPort) -> Result<(), Errno> {
    op_call(EVTCHNOP_SEND, &mut EvtchnSend { port })
}

/// `EVTCHNOP_close`.
pub fn close(port: EvtchnPort) -> Result<(), Errno> {
    if let Some(slot) = HANDLERS.get(port as usize) {
        slot.store(0, Ordering::Release);
    }
    op_call(EVTCHNOP_CLOSE, &mut EvtchnClose { port })
}

/// `EVTCHNOP_reset`: close every port of `dom` (`DOMID_SELF`, or, for a privileged
/// caller, a domain it paused). Handlers of the caller's own ports are dropped too.
pub fn reset(dom: DomId) -> Result<(), Errno> {
    op_call(EVTCHNOP_RESET, &mut EvtchnReset { dom })?;
    if dom == DOMID_SELF {
        for slot in HANDLERS.iter() {
            slot.store(0, Ordering::Release);
        }
    }
    Ok(())
}

/// `EVTCHNOP_unmask`: clear `port`'s mask bit; the hypervisor re-raises it if pending.
pub fn unmask(port: EvtchnPort) -> Result<(), Errno> {
    op_call(EVTCHNOP_UNMASK, &mut EvtchnUnmask { port })
}

/// Set `port`'s mask bit in `shared_info`.
pub fn mask(port: EvtchnPort) {
    let (w, b) = bit(port);
    if let Some(word) = crate::shared::mask_word(w) {
        word.fetch_or(1 << b, Ordering::SeqCst);
    }
}

/// Whether `port` is pending in `shared_info`.
pub fn is_pending(port: EvtchnPort) -> bool {
    let (w, b) = bit(port);
    crate::shared::pending_word(w).is_some_and(|word| word.load(Ordering::SeqCst) & (1 << b) != 0)
}

/// Clear `port`'s pending bit.
pub fn clear_pending(port: EvtchnPort) {
    let (w, b) = bit(port);
    if let Some(word) = crate::shared::pending_word(w) {
        word.fetch_and(!(1 << b), Ordering::SeqCst);
    }
}

/// `EVTCHNOP_status`.
pub fn status(port: EvtchnPort) -> Result<EvtchnStatus, Errno> {
    let mut op = EvtchnStatus {
        dom: DOMID_SELF,
        port,
        ..EvtchnStatus::default()
    };
    op_call(EVTCHNOP_STATUS, &mut op)?;
    Ok(op)
}

/// (word, bit) of a port in the 2-level bitmaps.
pub const fn bit(port: EvtchnPort) -> (usize, u32) {
    (port as usize / 64, port % 64)
}

fn op_call<T>(cmd: u32, op: &mut T) -> Result<(), Errno> {
    // SAFETY: every caller passes the struct type that `cmd` takes, live and writable.
    unsafe { crate::hypercall::event_channel_op(cmd, op as *mut T as *mut u8) }.map(|_| ())
}

/// The 2-level scan: for each selector bit, the pending-and-unmasked ports of that word.
/// `take_sel` swaps the selector to 0; `pending`/`mask` read words; `clear` clears a bit.
pub fn scan(
    take_sel: impl Fn() -> u64,
    pending: impl Fn(usize) -> u64,
    mask: impl Fn(usize) -> u64,
    clear: impl Fn(EvtchnPort),
    mut fire: impl FnMut(EvtchnPort),
) {
    let mut sel = take_sel();
    while sel != 0 {
        let w = sel.trailing_zeros() as usize;
        sel &= sel - 1;
        let mut bits = pending(w) & !mask(w);
        while bits != 0 {
            let b = bits.trailing_zeros();
            bits &= bits - 1;
            let port = (w * 64) as u32 + b;
            clear(port);
            fire(port);
        }
    }
}

/// Rust side of the event upcall (events are masked while it runs).
#[cfg_attr(target_os = "none", no_mangle)]
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
extern "C" fn sdk_event_dispatch(_frame: &mut crate::traps::TrapFrame) {
    let (Some(pending_flag), Some(sel)) = (
        crate::shared::upcall_pending(0),
        crate::shared::pending_sel(0),
    ) else {
        return;
    };
    while pending_flag.swap(0, Ordering::SeqCst) != 0 {
        scan(
            || sel.swap(0, Ordering::SeqCst),
            |w| crate::shared::pending_word(w).map_or(0, |a| a.load(Ordering::SeqCst)),
            |w| crate::shared::mask_word(w).map_or(!0, |a| a.load(Ordering::SeqCst)),
            clear_pending,
            |port| {
                let h = HANDLERS
                    .get(port as usize)
                    .map_or(0, |s| s.load(Ordering::Acquire));
                if h != 0 {
                    // SAFETY: non-zero slots only hold an `EventHandler` from `set_handler`.
                    let f: EventHandler = unsafe { core::mem::transmute::<usize, EventHandler>(h) };
                    f(port);
                }
            },
        );
    }
}

/// Rust side of the failsafe callback: a return to the guest failed (bad segment).
#[cfg_attr(target_os = "none", no_mangle)]
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
extern "C" fn sdk_failsafe(frame: *const u64) {
    // Frame (after rcx, r11): ds, es, fs, gs, rip, cs, rflags, rsp, ss.
    // SAFETY: the stub passes the bounce frame the hypervisor just built on our stack.
    let rip = unsafe { frame.add(4).read() };
    crate::println!("guest-sdk: failsafe callback (bad segment on return) at rip {rip:#x}");
    crate::sched::crash();
}

#[cfg(target_os = "none")]
pub(crate) fn callback_addresses() -> (u64, u64) {
    extern "C" {
        static sdk_hypervisor_callback: u8;
        static sdk_failsafe_callback: u8;
    }
    // `&raw const` takes the addresses without reading.
    (
        (&raw const sdk_hypervisor_callback) as u64,
        (&raw const sdk_failsafe_callback) as u64,
    )
}

#[cfg(not(target_os = "none"))]
pub(crate) fn callback_addresses() -> (u64, u64) {
    (0, 0)
}

// The event and failsafe entry stubs live in `traps.rs`'s asm block (they share its
// save/restore macros).

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    #[test]
    fn scan_fires_pending_unmasked_ports_in_order_and_clears_them() {
        let pending = RefCell::new([0u64; 64]);
        pending.borrow_mut()[0] = 0b1010;
        pending.borrow_mut()[3] = 1 << 5;
        let mut mask = [0u64; 64];
        mask[0] = 0b1000; // port 3 masked
        let sel = Cell::new(0b1001u64);
        let mut fired = Vec::new();
        scan(
            || sel.replace(0),
            |w| pending.borrow()[w],
            |w| mask[w],
            |p| pending.borrow_mut()[p as usize / 64] &= !(1 << (p % 64)),
            |p| fired.push(p),
        );
        assert_eq!(fired, vec![1, 3 * 64 + 5]);
        assert_eq!(pending.borrow()[0], 0b1000, "masked port stays pending");
        assert_eq!(bit(200), (3, 8));
    }
}
