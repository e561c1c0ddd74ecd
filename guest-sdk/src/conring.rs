//! The console ring frontend (`xen/io/console.h`): how a domU talks to its console.
//!
//! A domU's `start_info` names a console page (`console_mfn`) and an event channel
//! (`console_evtchn`); the backend in dom0 (xenconsoled on Xen, `dom0-tools` here) reads
//! `out` and writes `in`. `console_io` is for the hardware domain only (Xen's release
//! builds refuse it to domUs), so the SDK's `print!` uses this ring whenever it exists.
//!
//! The page is shared with the backend: it is accessed only through volatile reads and
//! writes of its indices and bytes, never a Rust reference, and the peer's index is read
//! once per operation and checked against the ring size (a broken backend cannot make us
//! read or write outside the page).

use core::mem::offset_of;
use core::sync::atomic::{fence, Ordering};
use xen_abi::console::{XenconsInterface, XENCONS_IN_SIZE, XENCONS_OUT_SIZE};

/// The ring of this domain, if it has one (a domU with a console page).
#[derive(Clone, Copy, Debug)]
pub struct Ring {
    page: u64,
    port: u32,
}

static RING: spin::Once<Option<Ring>> = spin::Once::new();

/// This domain's console ring: `None` for dom0 or a domain built without one.
pub fn ring() -> Option<Ring> {
    #[cfg(target_os = "none")]
    {
        *RING.call_once(|| {
            let si = crate::entry::start_info();
            if si.flags & xen_abi::xen::SIF_INITDOMAIN != 0 || si.console_mfn == 0 {
                return None;
            }
            let page = crate::mm::pfn_to_virt(crate::mm::mfn_to_pfn(si.console_mfn));
            Some(Ring {
                page,
                port: si.console_evtchn,
            })
        })
    }
    #[cfg(not(target_os = "none"))]
    {
        *RING.call_once(|| None)
    }
}

impl Ring {
    /// The console event channel (bind a handler to it to learn about input).
    pub fn port(&self) -> u32 {
        self.port
    }

    fn idx(&self, off: usize) -> *mut u32 {
        (self.page + off as u64) as *mut u32
    }

    /// Write all of `bytes` to the backend, waiting (yielding) while the ring is full.
    pub fn write(&self, bytes: &[u8]) {
        let cons_p = self.idx(offset_of!(XenconsInterface, out_cons));
        let prod_p = self.idx(offset_of!(XenconsInterface, out_prod));
        let out = self.idx(offset_of!(XenconsInterface, out)) as *mut u8;
        let mut sent = 0;
        while sent < bytes.len() {
            // SAFETY: the indices are u32 fields of this domain's console page, mapped at
            // start of day (in the initial mapping); the backend writes `out_cons`
            // concurrently, hence volatile accesses and no references.
            let (cons, prod) = unsafe { (cons_p.read_volatile(), prod_p.read_volatile()) };
            let used = prod.wrapping_sub(cons) as usize;
            if used >= XENCONS_OUT_SIZE {
                // Full (or a backend that moved `out_cons` beyond us): let it catch up.
                let _ = crate::events::send(self.port);
                crate::sched::yield_now();
                continue;
            }
            let n = (XENCONS_OUT_SIZE - used).min(bytes.len() - sent);
            for i in 0..n {
                let at = (prod as usize + i) & (XENCONS_OUT_SIZE - 1);
                // SAFETY: `at` < XENCONS_OUT_SIZE, inside the page's `out` array.
                unsafe { out.add(at).write_volatile(bytes[sent + i]) };
            }
            // The bytes before the index that publishes them.
            fence(Ordering::Release);
            // SAFETY: as above; this domain is the only producer of `out`.
            unsafe { prod_p.write_volatile(prod.wrapping_add(n as u32)) };
            sent += n;
        }
        let _ = crate::events::send(self.port);
    }

    /// Read what the backend sent (typed input), up to `buf.len()` bytes.
    pub fn read(&self, buf: &mut [u8]) -> usize {
        let cons_p = self.idx(offset_of!(XenconsInterface, in_cons));
        let prod_p = self.idx(offset_of!(XenconsInterface, in_prod));
        let inb = self.idx(offset_of!(XenconsInterface, in_)) as *const u8;
        // SAFETY: as in `write`; the indices are read once.
        let (cons, prod) = unsafe { (cons_p.read_volatile(), prod_p.read_volatile()) };
        let avail = prod.wrapping_sub(cons) as usize;
        if avail > XENCONS_IN_SIZE {
            // A producer index past the ring: a broken backend; read nothing.
            return 0;
        }
        fence(Ordering::Acquire);
        let n = avail.min(buf.len());
        for (i, b) in buf.iter_mut().take(n).enumerate() {
            let at = (cons as usize + i) & (XENCONS_IN_SIZE - 1);
            // SAFETY: `at` < XENCONS_IN_SIZE, inside the page's `in` array.
            *b = unsafe { inb.add(at).read_volatile() };
        }
        // SAFETY: as above; this domain is the only consumer of `in`.
        unsafe { cons_p.write_volatile(cons.wrapping_add(n as u32)) };
        if n > 0 {
            let _ = crate::events::send(self.port);
        }
        n
    }
}
