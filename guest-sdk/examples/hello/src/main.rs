//! Example PV guest: greeting, hypervisor version, memory, time, then power off.
//!
//! Every line starts with `hello: ` so tests can grep for it.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hello is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

#[cfg(target_os = "none")]
mod guest {
    use guest_sdk::console::{c_str, Ascii};
    use guest_sdk::{println, StartInfo};

    guest_sdk::entry!(guest_main);

    fn guest_main(si: &'static StartInfo) {
        println!("hello: Hello from a PV guest");
        match guest_sdk::version::version() {
            Ok((major, minor)) => {
                let extra = guest_sdk::version::extraversion().unwrap_or_default();
                let extra = Ascii(c_str(&extra));
                println!("hello: hypervisor version {major}.{minor}{extra}");
                println!("hello: extraversion \"{extra}\"");
            }
            Err(e) => println!("hello: xen_version failed: {e:?}"),
        }
        if let Ok(caps) = guest_sdk::version::capabilities() {
            println!("hello: capabilities {}", Ascii(c_str(&caps)));
        }
        println!(
            "hello: start_info magic \"{}\" flags {:#x} nr_pages {:#x} shared_info {:#x}",
            Ascii(c_str(&si.magic)),
            si.flags,
            si.nr_pages,
            si.shared_info
        );
        println!(
            "hello: start_info pt_base {:#x} nr_pt_frames {} mfn_list {:#x} mod_start {:#x} mod_len {:#x}",
            si.pt_base, si.nr_pt_frames, si.mfn_list, si.mod_start, si.mod_len
        );
        println!(
            "hello: start_info store_mfn {:#x} store_evtchn {} console {:#x}/{} first_p2m_pfn {:#x} nr_p2m_frames {}",
            si.store_mfn,
            si.store_evtchn,
            si.console_mfn,
            si.console_evtchn,
            si.first_p2m_pfn,
            si.nr_p2m_frames
        );
        println!("hello: cmdline \"{}\"", Ascii(si.cmd_line_bytes()));
        println!("hello: memory {} MiB", (si.nr_pages * 4096) >> 20);

        let vendor = guest_sdk::cpuid::vendor(guest_sdk::cpuid::cpuid(0, 0));
        println!("hello: cpuid vendor {}", Ascii(&vendor));

        // Two readings of system time with some work in between (bounded, so a broken
        // clock cannot hang the guest).
        let t0 = guest_sdk::time::system_time_ns();
        let mut t1 = t0;
        for _ in 0..2_000_000u32 {
            guest_sdk::sched::yield_now();
            t1 = guest_sdk::time::system_time_ns();
            if t1.saturating_sub(t0) >= 1_000_000 {
                break;
            }
        }
        println!("hello: system time {t0} ns then {t1} ns");
        println!("hello: time advanced by {} ns", t1.saturating_sub(t0));
        match guest_sdk::time::wallclock() {
            Some((sec, nsec)) => println!(
                "hello: wallclock {sec}.{nsec:09} s ({})",
                guest_sdk::time::utc(sec)
            ),
            None => println!("hello: wallclock unavailable"),
        }

        // A breakpoint goes out through the trap table and back with the iret hypercall.
        // SAFETY: `int3` only raises #BP, which the SDK's default handler reports and
        // resumes after.
        unsafe { core::arch::asm!("int3") };
        println!("hello: breakpoint handled, back from iret");

        // How to end, from the command line: `reboot`, `crash`, or power off (default).
        let words = si.cmd_line_bytes().split(|&b| b == b' ');
        let mut end = b"poweroff".as_slice();
        for w in words {
            if w == b"reboot" || w == b"crash" {
                end = w;
            }
        }
        match end {
            b"reboot" => {
                println!("hello: rebooting");
                guest_sdk::sched::reboot()
            }
            b"crash" => {
                println!("hello: crashing on purpose");
                guest_sdk::sched::crash()
            }
            _ => println!("hello: powering off"),
        }
    }
}
