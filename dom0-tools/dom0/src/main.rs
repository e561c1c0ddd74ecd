//! The control domain: boots as dom0, reads its ramdisk (a cpio archive of guest
//! kernels and `xl.cfg` files), and runs an `xl` shell on its console with the domain
//! builder, xenstored and the PV console backend behind it.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("dom0 is a Xen PV kernel: build it with --target x86_64-unknown-none");
}

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod blkback;
#[cfg(target_os = "none")]
mod builder;
#[cfg(target_os = "none")]
mod commands;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod disk;
#[cfg(target_os = "none")]
mod foreign;
#[cfg(target_os = "none")]
mod net;
#[cfg(target_os = "none")]
mod netbench;
#[cfg(target_os = "none")]
mod nic;
#[cfg(target_os = "none")]
mod xenstored;

#[cfg(target_os = "none")]
use core::sync::atomic::AtomicBool;

/// Serial input arrived (VIRQ_CONSOLE).
#[cfg(target_os = "none")]
pub static INPUT_EVENT: AtomicBool = AtomicBool::new(true);
/// A domU's console ring was notified.
#[cfg(target_os = "none")]
pub static RING_EVENT: AtomicBool = AtomicBool::new(true);
/// A domain shut down or died (VIRQ_DOM_EXC).
#[cfg(target_os = "none")]
pub static DOMEXC_EVENT: AtomicBool = AtomicBool::new(true);

#[cfg(target_os = "none")]
mod guest {
    use super::{DOMEXC_EVENT, INPUT_EVENT, RING_EVENT};
    use crate::commands::Dom0;
    use core::sync::atomic::Ordering;
    use guest_sdk::{events, println, sched, StartInfo};
    use xen_abi::xen::{SIF_MOD_START_PFN, VIRQ_CONSOLE, VIRQ_DOM_EXC, VIRQ_TIMER};

    guest_sdk::entry!(guest_main);

    fn on_input(_port: u32) {
        INPUT_EVENT.store(true, Ordering::Release);
    }

    fn on_domexc(_port: u32) {
        DOMEXC_EVENT.store(true, Ordering::Release);
    }

    /// The network's timer (dom0's TCP/IP stack) expired.
    fn on_timer(_port: u32) {
        crate::net::NET_EVENT.store(true, Ordering::Release);
    }

    fn ramdisk(si: &StartInfo) -> &'static [u8] {
        if si.mod_start == 0 || si.mod_len == 0 {
            return &[];
        }
        if si.flags & SIF_MOD_START_PFN != 0 {
            println!("dom0: the ramdisk is not mapped (SIF_MOD_START_PFN): not supported yet");
            return &[];
        }
        // SAFETY: the hypervisor mapped the module at `mod_start` for `mod_len` bytes in
        // the start-of-day region (no SIF_MOD_START_PFN); nothing writes it afterwards.
        unsafe { core::slice::from_raw_parts(si.mod_start as *const u8, si.mod_len as usize) }
    }

    fn bind(virq: u32, handler: fn(u32)) {
        match events::bind_virq(virq, 0) {
            Ok(port) => {
                if events::set_handler(port, handler).is_err() || events::unmask(port).is_err() {
                    println!("dom0: cannot handle VIRQ {virq} (port {port})");
                }
            }
            Err(e) => println!("dom0: cannot bind VIRQ {virq}: {e:?}"),
        }
    }

    fn guest_main(si: &'static StartInfo) {
        // All of dom0's memory for its heap (xenstored, backends, disk overlays), not
        // only the start-of-day padding.
        if let Err(e) = guest_sdk::heap::grow(u64::MAX) {
            println!("dom0: heap not grown ({e:?}): start-of-day padding only");
        }
        let rd = ramdisk(si);
        let mut d = Dom0::new(rd);
        d.banner();
        bind(VIRQ_CONSOLE, on_input);
        bind(VIRQ_DOM_EXC, on_domexc);
        bind(VIRQ_TIMER, on_timer);
        d.prompt();
        loop {
            // Check for work with events masked, then block: SCHEDOP_block unmasks
            // and returns at once if an event is already pending, so none is lost.
            events::disable();
            let input = INPUT_EVENT.swap(false, Ordering::AcqRel);
            let ring = RING_EVENT.swap(false, Ordering::AcqRel);
            let exc = DOMEXC_EVENT.swap(false, Ordering::AcqRel);
            let store = crate::xenstored::STORE_EVENT.swap(false, Ordering::AcqRel);
            let disk = crate::disk::DISK_EVENT.swap(false, Ordering::AcqRel);
            let blk = crate::blkback::BLK_EVENT.swap(false, Ordering::AcqRel);
            let net = crate::net::NET_EVENT.swap(false, Ordering::AcqRel);
            if !(input || ring || exc || store || disk || blk || net) {
                sched::block();
                continue;
            }
            events::enable();
            if disk {
                d.disk_event();
            }
            if store || blk {
                d.poll_store();
            }
            if net || store {
                d.net_event();
            }
            if ring || exc {
                d.poll_consoles();
            }
            if exc {
                d.domain_exceptions();
            }
            if input {
                d.read_input();
            }
        }
    }
}
