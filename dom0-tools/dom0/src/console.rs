//! The PV console backend (xenconsoled's job): for each domU, its console ring page
//! mapped in dom0, the interdomain event channel bound to the guest's console port, and
//! a log of output not yet shown. Output is shown only while `xl console` is attached.
//!
//! The ring is shared with the guest: indices are read once (volatile), checked with
//! `conring::readable`/`writable` (a producer more than a ring ahead is refused, XSA-155
//! style), masked with the ring size, and data is read only after the index (acquire).

use crate::foreign::Slot;
use core::sync::atomic::{fence, Ordering};
use dom0_tools::conring::{self, OutputLog};
use guest_sdk::{events, Errno};
use xen_abi::console::{XenconsInterface, XENCONS_IN_SIZE, XENCONS_OUT_SIZE};
use xen_abi::xen::DomId;

/// Bytes of output kept per domain while nobody is attached.
pub const LOG_BYTES: usize = 16 * 1024;

/// One domU's console.
#[derive(Debug)]
pub struct Console {
    slot: Slot,
    ring: *mut XenconsInterface,
    /// dom0's end of the console event channel.
    pub port: u32,
    /// Output not yet shown.
    pub log: OutputLog,
}

fn on_event(_port: u32) {
    crate::RING_EVENT.store(true, Ordering::Release);
}

impl Console {
    /// Maps frame `mfn` of `dom` and binds to its console port `remote_port`.
    pub fn connect(dom: DomId, mfn: u64, remote_port: u32) -> Result<Console, Errno> {
        let mut slot = Slot::new()?;
        let va = slot.map(dom, mfn)?;
        let port = events::bind_interdomain(dom, remote_port)?;
        events::set_handler(port, on_event)?;
        events::unmask(port)?;
        Ok(Console {
            slot,
            ring: va as *mut XenconsInterface,
            port,
            log: OutputLog::new(LOG_BYTES),
        })
    }

    fn field(&self, off: usize) -> *mut u32 {
        // In-bounds: `off` is one of the four index fields of the 3088-byte struct.
        (self.ring as *mut u8).wrapping_add(off) as *mut u32
    }

    /// Moves the guest's new output into `out`; returns whether anything was read.
    pub fn drain(&mut self, out: &mut alloc::vec::Vec<u8>) -> bool {
        let cons_p = self.field(core::mem::offset_of!(XenconsInterface, out_cons));
        let prod_p = self.field(core::mem::offset_of!(XenconsInterface, out_prod));
        // SAFETY: both point at index fields of the ring page mapped by `slot` for as
        // long as `self` lives; the guest may write them concurrently, hence volatile
        // reads of aligned u32s.
        let (cons, prod) = unsafe { (cons_p.read_volatile(), prod_p.read_volatile()) };
        let Some(n) = conring::readable(cons, prod, XENCONS_OUT_SIZE as u32) else {
            // A broken ring: consume nothing, read nothing.
            return false;
        };
        if n == 0 {
            return false;
        }
        fence(Ordering::Acquire);
        let base = self.field(core::mem::offset_of!(XenconsInterface, out)) as *const u8;
        for i in 0..n {
            let at = conring::mask(cons.wrapping_add(i), XENCONS_OUT_SIZE as u32);
            // SAFETY: `at` < XENCONS_OUT_SIZE, inside the `out` array of the mapped page.
            out.push(unsafe { base.add(at).read_volatile() });
        }
        fence(Ordering::Release);
        // SAFETY: as above; we are the only consumer.
        unsafe { cons_p.write_volatile(cons.wrapping_add(n)) };
        let _ = events::send(self.port);
        true
    }

    /// Sends typed bytes to the guest; returns how many fit in its input ring.
    pub fn input(&mut self, bytes: &[u8]) -> usize {
        let cons_p = self.field(core::mem::offset_of!(XenconsInterface, in_cons));
        let prod_p = self.field(core::mem::offset_of!(XenconsInterface, in_prod));
        // SAFETY: index fields of the mapped ring page, read once.
        let (cons, prod) = unsafe { (cons_p.read_volatile(), prod_p.read_volatile()) };
        let Some(space) = conring::writable(cons, prod, XENCONS_IN_SIZE as u32) else {
            return 0;
        };
        let n = bytes.len().min(space as usize);
        let base = self.field(core::mem::offset_of!(XenconsInterface, in_)) as *mut u8;
        for (i, &b) in bytes.iter().take(n).enumerate() {
            let at = conring::mask(prod.wrapping_add(i as u32), XENCONS_IN_SIZE as u32);
            // SAFETY: `at` < XENCONS_IN_SIZE, inside the `in` array of the mapped page.
            unsafe { base.add(at).write_volatile(b) };
        }
        fence(Ordering::Release);
        // SAFETY: as above; we are the only producer.
        unsafe { prod_p.write_volatile(prod.wrapping_add(n as u32)) };
        let _ = events::send(self.port);
        n
    }

    /// Unbinds and unmaps (before the domain is destroyed).
    pub fn disconnect(mut self) {
        let _ = events::close(self.port);
        let _ = self.slot.unmap();
    }
}
