//! Example PV guest: a CPU hog. It never blocks and never yields, so the CPU time it
//! gets (`xl vcpu-list`, `xl list` Time(s)) is what the scheduler gives it: weights,
//! caps and pinning (`xl sched-credit`, `xl vcpu-pin`) show in it directly.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("spin is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

#[cfg(target_os = "none")]
mod guest {
    use guest_sdk::StartInfo;

    guest_sdk::entry!(guest_main);

    fn guest_main(_si: &'static StartInfo) {
        loop {
            core::hint::spin_loop();
        }
    }
}
