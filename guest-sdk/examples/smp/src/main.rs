//! Example PV guest for multi-vCPU domains: brings up every vCPU the domain has
//! (`vcpus=` in its config) with `guest_sdk::smp::start_vcpu`, keeps each one busy
//! counting, and once a second prints how far each got:
//!
//! ```text
//! smp: 4 vCPUs up
//! smp: second 1: 912345 877654 901234 899999
//! smp: all 4 vCPUs ran in each of the last 3 seconds
//! ```
//!
//! The verdict line is computed: a vCPU whose count did not move in a second means it
//! did not run. `stop=N` on the command line powers the domain off after N seconds
//! (default: run until destroyed). Only vCPU 0 prints; the others only count.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("smp is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod guest {
    use alloc::boxed::Box;
    use core::sync::atomic::{AtomicU64, Ordering};
    use guest_sdk::{println, sched, smp, time, StartInfo};

    guest_sdk::entry!(guest_main);

    const MAX: usize = 64;
    const STACK: usize = 64 * 1024;
    /// How many seconds in a row every vCPU must have run for the verdict.
    const WINDOW: usize = 3;

    static COUNTS: [AtomicU64; MAX] = [const { AtomicU64::new(0) }; MAX];

    extern "C" fn worker(vcpu: u32) -> ! {
        let c = &COUNTS[vcpu as usize % MAX];
        loop {
            c.fetch_add(1, Ordering::Relaxed);
            core::hint::spin_loop();
        }
    }

    fn arg(cmdline: &[u8], key: &str) -> Option<u64> {
        let v = cmdline
            .split(|&b| b == b' ' || b == 0)
            .find_map(|w| w.strip_prefix(key.as_bytes())?.strip_prefix(b"="))?;
        core::str::from_utf8(v).ok()?.parse().ok()
    }

    fn guest_main(si: &'static StartInfo) {
        let stop = arg(si.cmd_line_bytes(), "stop").unwrap_or(0);
        let n = (smp::vcpu_count() as usize).min(MAX);
        for v in 1..n {
            let stack = Box::leak(Box::new([0u8; STACK]));
            let top = stack.as_ptr() as u64 + STACK as u64;
            if let Err(e) = smp::start_vcpu(v as u32, worker, top) {
                println!("smp: cannot start vCPU {v}: {e:?}");
                return;
            }
        }
        let up = (0..n as u32)
            .filter(|&v| v == 0 || smp::is_up(v) == Ok(true))
            .count();
        println!("smp: {up} vCPUs up");
        let mut last = [0u64; MAX];
        let mut streak = 0usize;
        let mut verdict = false;
        let mut next = time::system_time_ns() + 1_000_000_000;
        let mut second = 0u64;
        loop {
            // vCPU 0 counts too, and looks at the clock between rounds.
            for _ in 0..10_000 {
                COUNTS[0].fetch_add(1, Ordering::Relaxed);
                core::hint::spin_loop();
            }
            if time::system_time_ns() < next {
                continue;
            }
            next += 1_000_000_000;
            second += 1;
            let mut line = alloc::string::String::new();
            let mut all_moved = true;
            for (v, l) in last.iter_mut().enumerate().take(n) {
                let c = COUNTS[v].load(Ordering::Relaxed);
                all_moved &= c > *l;
                line.push_str(&alloc::format!(" {}", c - *l));
                *l = c;
            }
            println!("smp: second {second}:{line}");
            streak = if all_moved { streak + 1 } else { 0 };
            if streak >= WINDOW && !verdict {
                verdict = true;
                println!("smp: all {n} vCPUs ran in each of the last {WINDOW} seconds");
            }
            if stop != 0 && second >= stop {
                if !verdict {
                    println!("smp: FAILED: not every vCPU ran for {WINDOW} seconds in a row");
                }
                sched::poweroff();
            }
        }
    }
}
