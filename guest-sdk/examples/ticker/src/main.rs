//! Example PV guest for the toolstack: prints `ticker: tick N` every second, forever,
//! on its PV console ring (`start_info.console`, what `xl console` shows), and echoes
//! what is typed into it (`ticker: got 'x'`). Lines start with `ticker: ` for tests.
//!
//! Output goes through the SDK's `println!` (the console ring for a domU); input comes
//! from `guest_sdk::conring`, woken by the console event channel.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("ticker is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

#[cfg(target_os = "none")]
mod guest {
    use core::sync::atomic::{AtomicBool, Ordering};
    use guest_sdk::{conring, events, hypercall, println, sched, time, StartInfo};
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

    fn guest_main(si: &'static StartInfo) {
        let ring = conring::ring();
        if let Some(r) = ring {
            let _ = events::set_handler(r.port(), on_console);
            let _ = events::unmask(r.port());
        }
        let Ok(tport) = events::bind_virq(VIRQ_TIMER, 0) else {
            println!("ticker: cannot bind VIRQ_TIMER");
            return;
        };
        let _ = events::set_handler(tport, on_timer);
        let _ = events::unmask(tport);
        println!(
            "ticker: started, {} MiB, cmdline \"{}\"",
            (si.nr_pages * 4096) >> 20,
            guest_sdk::console::Ascii(si.cmd_line_bytes())
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
                if let Some(r) = ring {
                    let mut buf = [0u8; 64];
                    let k = r.read(&mut buf);
                    for &b in buf.iter().take(k) {
                        println!("ticker: got {:?}", b as char);
                    }
                }
            }
            if TICK.swap(false, Ordering::AcqRel) {
                let now = time::system_time_ns();
                if now >= next {
                    n += 1;
                    println!("ticker: tick {n}");
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
