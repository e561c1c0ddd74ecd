//! Example PV guest for `on_crash`: prints `crasher: tick N` once a second on its
//! console ring, and after `crash-after=N` ticks (default 3, from its command line)
//! writes to an unmapped address. It installs no page-fault handler, so the SDK's
//! default handler prints the frame and crashes the domain (`SHUTDOWN_crash`), which
//! the toolstack handles per the config's `on_crash`.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("crasher is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

#[cfg(target_os = "none")]
#[path = "../../pingpong/src/ring.rs"]
mod ring;

#[cfg(target_os = "none")]
mod guest {
    use crate::ring::{arg, num, Ring};
    use guest_sdk::{events, hypercall, sched, time, StartInfo};
    use xen_abi::xen::VIRQ_TIMER;

    guest_sdk::entry!(guest_main);

    /// An address no PV guest has mapped (the first page).
    const BAD_ADDRESS: u64 = 0x10;

    fn guest_main(si: &'static StartInfo) {
        let r = Ring::from_start_info(si);
        let cmd = si.cmd_line_bytes();
        let after = arg(cmd, "crash-after").and_then(num).unwrap_or(3);
        r.say(format_args!(
            "crasher: started, crashing after {after} ticks, cmdline \"{}\"",
            guest_sdk::console::Ascii(cmd)
        ));
        let Ok(tport) = events::bind_virq(VIRQ_TIMER, 0) else {
            r.say(format_args!("crasher: cannot bind VIRQ_TIMER"));
            return;
        };
        let mut next = time::system_time_ns();
        for n in 1..=after {
            next += 1_000_000_000;
            let _ = hypercall::set_timer_op(next);
            while time::system_time_ns() < next {
                let _ = sched::poll(&[tport], next);
                events::clear_pending(tport);
            }
            r.say(format_args!("crasher: tick {n}"));
        }
        r.say(format_args!(
            "crasher: crashing on purpose (write to {BAD_ADDRESS:#x})"
        ));
        // SAFETY: deliberately faults: the page at BAD_ADDRESS is not mapped, so the
        // write never happens and no Rust-visible memory changes; the #PF handler
        // crashes the domain and does not return here.
        unsafe {
            core::arch::asm!(
                "mov qword ptr [{a}], 1",
                a = in(reg) BAD_ADDRESS,
                options(nostack)
            );
        }
        r.say(format_args!(
            "crasher: FAIL: the write to {BAD_ADDRESS:#x} did not fault"
        ));
    }
}
