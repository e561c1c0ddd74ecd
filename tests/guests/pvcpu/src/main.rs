//! Test guest: the PV CPU and MMU of the hypervisor it runs on, with a computed verdict.
//!
//! Each check is one function named after what it pins; it prints
//! `pvcpu: <name>: PASS` or `pvcpu: <name>: FAIL <why>`. The guest ends with
//! `pvcpu: N passed, M failed` and `SCHEDOP_shutdown(poweroff)` when all passed,
//! `SCHEDOP_shutdown(crash)` otherwise.
//!
//! # Design principles
//! 1. The same binary runs on real Xen 4.17 (the reference) and on this project's
//!    hypervisor; every expected value (error codes, errnos, selectors) was observed on
//!    Xen 4.17 first, and the comment next to it says how.
//! 2. A check asserts what it observed; nothing is hard-coded to pass. A check that can
//!    leave the guest in a bad state (a refused update that was wrongly accepted) undoes it
//!    before it reports.
//! 3. Faulting instructions are bracketed by labels recorded in [`faults`]; the trap
//!    handlers only resume at those labels and crash the domain on any other fault.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("pvcpu is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod checks;
#[cfg(target_os = "none")]
mod faults;
#[cfg(target_os = "none")]
mod mmu;
#[cfg(target_os = "none")]
mod user;

#[cfg(target_os = "none")]
mod guest {
    use alloc::string::String;
    use guest_sdk::{println, StartInfo};

    guest_sdk::entry!(guest_main);

    /// The outcome of one check: `Err` carries why it failed.
    pub type Outcome = Result<(), String>;

    /// Fail the check with a formatted reason unless `cond` holds.
    #[macro_export]
    macro_rules! ensure {
        ($cond:expr, $($why:tt)+) => {
            if !$cond {
                return Err(alloc::format!($($why)+));
            }
        };
    }

    /// A check: its name and the function that runs it.
    type Check = (&'static str, fn() -> Outcome);

    const CHECKS: [Check; 12] = [
        ("int3", crate::checks::int3),
        ("ud", crate::checks::ud),
        ("gp", crate::checks::gp),
        ("pf", crate::checks::pf),
        ("cpuid", crate::checks::cpuid),
        ("user-syscall", crate::user::user_syscall),
        ("mmu-refusals", crate::mmu::mmu_refusals),
        ("evtchn-loopback", crate::checks::evtchn_loopback),
        ("timer", crate::checks::timer),
        ("poll", crate::checks::poll),
        ("evtchn-reset", crate::checks::evtchn_reset),
        ("bad-hypercall", crate::checks::bad_hypercall),
    ];

    fn guest_main(_si: &'static StartInfo) {
        crate::faults::install();
        let (mut passed, mut failed) = (0u32, 0u32);
        for (name, check) in CHECKS {
            match check() {
                Ok(()) => {
                    passed += 1;
                    println!("pvcpu: {name}: PASS");
                }
                Err(why) => {
                    failed += 1;
                    println!("pvcpu: {name}: FAIL {why}");
                }
            }
        }
        println!("pvcpu: {passed} passed, {failed} failed");
        if failed == 0 {
            guest_sdk::sched::poweroff();
        } else {
            guest_sdk::sched::crash();
        }
    }
}
