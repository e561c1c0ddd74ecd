//! Example PV guest for the toolstack: prints `ticker: tick N` every second, forever,
//! on its PV console ring (`start_info.console`, what `xl console` shows), and echoes
//! what is typed into it (`ticker: got 'x'`). Lines start with `ticker: ` for tests.
//!
//! A minimal console-ring frontend lives here until the SDK grows one: write to `out`,
//! advance `out_prod` after the data (release), notify the event channel; read `in`
//! between `in_cons` and `in_prod`.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("ticker is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

#[cfg(target_os = "none")]
mod guest {
    use core::fmt::Write;
    use core::sync::atomic::{fence, AtomicBool, Ordering};
    use guest_sdk::{events, hypercall, mm, sched, time, StartInfo};
    use xen_abi::console::{XenconsInterface, XENCONS_IN_SIZE, XENCONS_OUT_SIZE};
    use xen_abi::xen::VIRQ_TIMER;

    guest_sdk::entry!(guest_main);

    static TICK: AtomicBool = AtomicBool::new(false);
    static INPUT: AtomicBool = AtomicBool::new(false);

    fn on_timer(_port: u32) {
        TICK.store(true, Ordering::Release);
    }

    fn on_console(_port: u32) {
        INPUT.store(true, Ordering::Release);
    }

    /// The console ring frontend.
    struct Ring {
        ring: *mut XenconsInterface,
        port: u32,
    }

    impl Ring {
        fn idx(&self, off: usize) -> *mut u32 {
            (self.ring as *mut u8).wrapping_add(off) as *mut u32
        }

        fn write(&self, bytes: &[u8]) {
            use core::mem::offset_of;
            let cons_p = self.idx(offset_of!(XenconsInterface, out_cons));
            let prod_p = self.idx(offset_of!(XenconsInterface, out_prod));
            let out = self.idx(offset_of!(XenconsInterface, out)) as *mut u8;
            let mut sent = 0;
            while sent < bytes.len() {
                // SAFETY: index fields of our console page (mapped at start of day),
                // written concurrently by the backend: volatile u32 accesses.
                let (cons, prod) = unsafe { (cons_p.read_volatile(), prod_p.read_volatile()) };
                let used = prod.wrapping_sub(cons) as usize;
                if used >= XENCONS_OUT_SIZE {
                    // Full (or a broken backend): wait for it to consume.
                    let _ = events::send(self.port);
                    sched::yield_now();
                    continue;
                }
                let n = (XENCONS_OUT_SIZE - used).min(bytes.len() - sent);
                for i in 0..n {
                    let at = (prod as usize + i) & (XENCONS_OUT_SIZE - 1);
                    // SAFETY: `at` < XENCONS_OUT_SIZE: inside the `out` array.
                    unsafe { out.add(at).write_volatile(bytes[sent + i]) };
                }
                fence(Ordering::Release);
                // SAFETY: as above; we are the only producer.
                unsafe { prod_p.write_volatile(prod.wrapping_add(n as u32)) };
                sent += n;
            }
            let _ = events::send(self.port);
        }

        fn read(&self, buf: &mut [u8]) -> usize {
            use core::mem::offset_of;
            let cons_p = self.idx(offset_of!(XenconsInterface, in_cons));
            let prod_p = self.idx(offset_of!(XenconsInterface, in_prod));
            let inb = self.idx(offset_of!(XenconsInterface, in_)) as *const u8;
            // SAFETY: index fields of our console page, read once.
            let (cons, prod) = unsafe { (cons_p.read_volatile(), prod_p.read_volatile()) };
            let avail = prod.wrapping_sub(cons) as usize;
            if avail > XENCONS_IN_SIZE {
                return 0;
            }
            fence(Ordering::Acquire);
            let n = avail.min(buf.len());
            for (i, b) in buf.iter_mut().take(n).enumerate() {
                let at = (cons as usize + i) & (XENCONS_IN_SIZE - 1);
                // SAFETY: `at` < XENCONS_IN_SIZE: inside the `in` array.
                *b = unsafe { inb.add(at).read_volatile() };
            }
            // SAFETY: as above; we are the only consumer.
            unsafe { cons_p.write_volatile(cons.wrapping_add(n as u32)) };
            let _ = events::send(self.port);
            n
        }
    }

    struct Line([u8; 128], usize);

    impl Write for Line {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for &b in s.as_bytes() {
                if let Some(slot) = self.0.get_mut(self.1) {
                    *slot = b;
                    self.1 += 1;
                }
            }
            Ok(())
        }
    }

    fn say(r: &Ring, args: core::fmt::Arguments) {
        let mut l = Line([0; 128], 0);
        let _ = l.write_fmt(args);
        let _ = l.write_str("\r\n");
        r.write(l.0.get(..l.1).unwrap_or(&[]));
        // Also on the hypervisor console (shown for dom0, or with guest_loglvl).
        guest_sdk::console::write_bytes(l.0.get(..l.1).unwrap_or(&[]));
    }

    fn guest_main(si: &'static StartInfo) {
        let pfn = mm::mfn_to_pfn(si.console_mfn);
        let ring = Ring {
            ring: mm::pfn_to_virt(pfn) as *mut XenconsInterface,
            port: si.console_evtchn,
        };
        let _ = events::set_handler(ring.port, on_console);
        let _ = events::unmask(ring.port);
        let Ok(tport) = events::bind_virq(VIRQ_TIMER, 0) else {
            say(&ring, format_args!("ticker: cannot bind VIRQ_TIMER"));
            return;
        };
        let _ = events::set_handler(tport, on_timer);
        let _ = events::unmask(tport);
        say(
            &ring,
            format_args!(
                "ticker: started, {} MiB, cmdline \"{}\"",
                (si.nr_pages * 4096) >> 20,
                guest_sdk::console::Ascii(si.cmd_line_bytes())
            ),
        );
        let mut n: u64 = 0;
        let mut next = time::system_time_ns() + 1_000_000_000;
        let _ = hypercall::set_timer_op(next);
        loop {
            events::disable();
            if !TICK.load(Ordering::Acquire) && !INPUT.load(Ordering::Acquire) {
                sched::block();
                continue;
            }
            events::enable();
            if INPUT.swap(false, Ordering::AcqRel) {
                let mut buf = [0u8; 64];
                let k = ring.read(&mut buf);
                for &b in buf.iter().take(k) {
                    say(&ring, format_args!("ticker: got {:?}", b as char));
                }
            }
            if TICK.swap(false, Ordering::AcqRel) {
                let now = time::system_time_ns();
                if now >= next {
                    n += 1;
                    say(&ring, format_args!("ticker: tick {n}"));
                    next += 1_000_000_000;
                    if next <= now {
                        next = now + 1_000_000_000;
                    }
                }
                let _ = hypercall::set_timer_op(next);
            }
        }
    }
}
