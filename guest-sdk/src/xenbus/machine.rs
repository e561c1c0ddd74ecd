//! The mechanism: the mapped store page, and waiting on the store event channel.

use core::time::Duration;

use xen_abi::xen::StartInfo;

use super::ring::PAGE_BYTES;
use super::{Client, Deadline, Error, RingMemory, Waiter};

/// This domain's store page, accessed with volatile reads and writes through a raw
/// pointer (xenstored writes it concurrently), never through a reference.
#[derive(Debug)]
pub struct PageRing {
    page: *mut u8,
}

// SAFETY: the page is ordinary mapped memory, valid on every vCPU of the domain; a
// `PageRing` is only used under the client's lock, and every access is volatile.
unsafe impl Send for PageRing {}

impl PageRing {
    /// The ring at `page`.
    ///
    /// # Safety
    /// `page` must be page-aligned and map, writable and for as long as the `PageRing`
    /// lives, a store page shared with xenstored; nothing else in this domain may access
    /// it.
    pub unsafe fn new(page: *mut u8) -> PageRing {
        PageRing { page }
    }

    /// Whether `[off, off + len)` is in the page.
    fn fits(off: usize, len: usize) -> bool {
        off.checked_add(len).is_some_and(|end| end <= PAGE_BYTES)
    }
}

impl RingMemory for PageRing {
    fn read_u32(&self, off: usize) -> u32 {
        if !off.is_multiple_of(4) || !Self::fits(off, 4) {
            return 0;
        }
        // SAFETY: in the page (checked) and 4-aligned (the page is page-aligned); shared
        // with the server, hence one volatile read.
        unsafe { self.page.add(off).cast::<u32>().read_volatile() }
    }

    fn write_u32(&mut self, off: usize, val: u32) {
        if !off.is_multiple_of(4) || !Self::fits(off, 4) {
            return;
        }
        // SAFETY: as in `read_u32`; the page is writable.
        unsafe { self.page.add(off).cast::<u32>().write_volatile(val) }
    }

    fn read_bytes(&self, off: usize, buf: &mut [u8]) {
        if !Self::fits(off, buf.len()) {
            buf.fill(0);
            return;
        }
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: `off + i` is in the page (checked above); volatile, as the server
            // may write concurrently.
            *b = unsafe { self.page.add(off + i).read_volatile() };
        }
    }

    fn write_bytes(&mut self, off: usize, data: &[u8]) {
        if !Self::fits(off, data.len()) {
            return;
        }
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: `off + i` is in the page (checked above), which is writable.
            unsafe { self.page.add(off + i).write_volatile(b) };
        }
    }
}

/// Waiting on the store event channel with `SCHEDOP_poll` (which wakes on the port's
/// pending bit, masked or not), notifying with `EVTCHNOP_send`.
#[derive(Clone, Copy, Debug)]
pub struct EvtchnWaiter {
    port: u32,
}

/// Longest single poll: a bound on how late a waiter notices an event another vCPU took
/// off the ring for it (that vCPU cleared the pending bit this one polls).
const POLL_SLICE_NS: u64 = 10_000_000;

impl EvtchnWaiter {
    /// Waits on `port`.
    pub fn new(port: u32) -> EvtchnWaiter {
        EvtchnWaiter { port }
    }

    /// The store port.
    pub fn port(&self) -> u32 {
        self.port
    }
}

impl Waiter for EvtchnWaiter {
    fn notify(&self) {
        // A failed send leaves the request on the ring; the wait times out.
        let _ = crate::events::send(self.port);
    }

    fn deadline(&self, timeout: Option<Duration>) -> Deadline {
        match timeout {
            None => Deadline::NEVER,
            Some(t) => {
                let ns = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
                Deadline(crate::time::system_time_ns().saturating_add(ns).max(1))
            }
        }
    }

    fn expired(&self, deadline: Deadline) -> bool {
        deadline != Deadline::NEVER && crate::time::system_time_ns() >= deadline.0
    }

    fn wait(&self, deadline: Deadline) -> bool {
        let now = crate::time::system_time_ns();
        if deadline != Deadline::NEVER && now >= deadline.0 {
            return false;
        }
        let slice = now.saturating_add(POLL_SLICE_NS);
        let until = match deadline {
            Deadline::NEVER => slice,
            Deadline(d) => d.min(slice),
        };
        if crate::sched::poll(&[self.port], until).is_err() {
            crate::sched::yield_now();
        }
        // Clear the pending bit before the caller looks at the ring again: a notification
        // after that look sets it anew and the next poll returns at once.
        crate::events::clear_pending(self.port);
        true
    }
}

/// The XenStore client of a PV domU: its store page and event channel.
pub type Xenbus = Client<PageRing, EvtchnWaiter>;

impl Xenbus {
    /// The client for the store page and event channel `si` names. The page must be one
    /// of the start-of-day frames (it is at `KERNEL_BASE + pfn * 4096`, before the boot
    /// page tables, as `xen.h`'s layout puts it); otherwise, or without a store, this
    /// fails with [`Error::NoStore`]. Masks the store port (see the module docs).
    pub fn from_start_info(si: &StartInfo) -> Result<Xenbus, Error> {
        if si.store_mfn == 0 || si.store_evtchn == 0 {
            return Err(Error::NoStore);
        }
        let pfn = crate::mm::mfn_to_pfn(si.store_mfn);
        // The M2P entry of a frame that is not ours is garbage: check the round trip.
        if crate::mm::pfn_to_mfn(pfn) != Some(si.store_mfn) {
            return Err(Error::NoStore);
        }
        let va = crate::mm::pfn_to_virt(pfn);
        let end = crate::entry::bootstrap_end(si, crate::entry::boot_info().initial_rsp);
        if va < crate::KERNEL_BASE || va.saturating_add(4096) > end {
            return Err(Error::NoStore);
        }
        crate::events::mask(si.store_evtchn);
        // SAFETY: `va` maps the store frame: it is a start-of-day frame (checked above),
        // which the domain builder maps writable at `KERNEL_BASE + pfn * 4096`; nothing
        // else in the SDK touches it.
        let ring = unsafe { PageRing::new(va as *mut u8) };
        Ok(Client::new(ring, EvtchnWaiter::new(si.store_evtchn)))
    }

    /// The store event channel.
    pub fn port(&self) -> u32 {
        self.waiter().port()
    }
}

static XENBUS: spin::Once<Result<Xenbus, Error>> = spin::Once::new();

/// This domain's XenStore client, made from `start_info` on first use.
pub fn xenbus() -> Result<&'static Xenbus, Error> {
    XENBUS
        .call_once(|| Xenbus::from_start_info(crate::entry::start_info()))
        .as_ref()
        .map_err(|&e| e)
}
