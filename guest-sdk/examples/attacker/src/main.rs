//! Example PV guest for the isolation tests: a domU that attacks the hypervisor and
//! reports, for each attack, whether the hypervisor refused it the way Xen 4.17 does.
//!
//! Command line (`extra=` in its `xl.cfg`):
//! - `attack=all` (the default): every attack the domain survives, in order; one line per
//!   attack, `attacker: NAME refused (HOW)` or `attacker: NAME: UNEXPECTED WHAT`, then
//!   `attacker: all N attacks refused` or `attacker: FAILED k of N`.
//! - `attack=NAME`: one of those attacks alone, or one of the fatal ones (`stack`,
//!   `stack_unmapped`, `nohandler`, `wild`, `bad_iret`; see [`fatal`]), which must end with
//!   the domain crashed by the hypervisor (`SHUTDOWN_crash`).
//! - `delay=N`: wait N seconds first (so that a config with `on_crash="restart"` does not
//!   restart in a tight loop).
//! - `then=poweroff`: power off after the non-fatal attacks (default: stay idle, blocked,
//!   until destroyed, so that the console and `xl list` can be looked at).
//!
//! # Design principles
//! 1. The verdict is computed by the guest against Xen 4.17's answer for each attack,
//!    read from Xen's source (stable-4.17; each module names the functions) and checked
//!    by running this guest on Xen 4.17: the same errno, or, where Xen accepts the call
//!    (a trap handler at a hypervisor address...), proof that nothing was gained (the
//!    handler faults in ring 3). A different answer is `UNEXPECTED`, with Xen's.
//! 2. An attack that was wrongly accepted is undone at once where that is possible
//!    (a mapping restored, a pin dropped), so that the next attacks still run.
//! 3. Faults the attacks provoke are caught by guarded blocks ([`support`]); any other
//!    fault crashes the domain, as the SDK's default handler does.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("attacker is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod args;
#[cfg(target_os = "none")]
mod channels;
#[cfg(target_os = "none")]
mod cpu;
#[cfg(target_os = "none")]
mod fatal;
#[cfg(target_os = "none")]
mod mmu;
#[cfg(target_os = "none")]
mod privops;
#[cfg(target_os = "none")]
mod support;

#[cfg(target_os = "none")]
mod guest {
    use crate::support::{self, Outcome};
    use crate::{args, channels, cpu, fatal, mmu, privops};
    use guest_sdk::{println, sched, StartInfo};

    guest_sdk::entry!(guest_main);

    /// An attack the domain survives: its name and the function that runs it.
    type Attack = (&'static str, fn() -> Outcome);

    /// In the order `attack=all` runs them: the least destructive first, so that if one
    /// takes the machine down the lines before it have been printed.
    const ATTACKS: [Attack; 33] = [
        ("unknown_ops", args::unknown_ops),
        ("bad_pointers_misc", args::bad_pointers_misc),
        ("bad_pointer_reservation", args::bad_pointer_reservation),
        ("console_io", args::console_io),
        ("bad_pointers_channels", args::bad_pointers_channels),
        ("bad_trap_table", args::bad_trap_table),
        ("multicalls", args::multicalls),
        ("segment_base", cpu::segment_base),
        ("trap_table", cpu::trap_table),
        ("callbacks", cpu::callbacks),
        ("stack_switch", cpu::stack_switch),
        ("iret", cpu::iret),
        ("gdt", cpu::gdt),
        ("update_descriptor", cpu::update_descriptor),
        ("map_xen_frame", mmu::map_xen_frame),
        ("map_mmio", mmu::map_mmio),
        ("writable_page_tables", mmu::writable_page_tables),
        ("xen_slots", mmu::xen_slots),
        ("write_xen_frames", mmu::write_xen_frames),
        ("pin_non_tables", mmu::pin_non_tables),
        ("mmuext_misc", mmu::mmuext_misc),
        ("uvm_xen_range", mmu::uvm_xen_range),
        ("bad_request_lists", mmu::bad_request_lists),
        ("done_in_m2p", mmu::done_in_m2p),
        ("huge_counts", mmu::huge_counts),
        ("scan", mmu::scan),
        ("evtchn_bad_ports", channels::evtchn_bad_ports),
        ("evtchn_bad_vcpus", channels::evtchn_bad_vcpus),
        ("evtchn_exhaust", channels::evtchn_exhaust),
        ("gnttab_refs", channels::gnttab_refs),
        ("gnttab_tables", channels::gnttab_tables),
        ("gnttab_copies", channels::gnttab_copies),
        ("evtchn_other_domains", channels::evtchn_other_domains),
    ];

    /// The privileged attacks run last (a wrong answer there can stop dom0).
    const PRIVILEGED: [Attack; 6] = [
        ("debugreg", privops::debugreg),
        ("foreign_mmu", privops::foreign_mmu),
        ("memory_op", privops::memory_op),
        ("sysctl", privops::sysctl),
        ("domctl", privops::domctl),
        ("remote_shutdown", privops::remote_shutdown),
    ];

    /// The value of `key=` in a whitespace-separated command line.
    fn arg<'a>(cmdline: &'a [u8], key: &str) -> Option<&'a str> {
        cmdline
            .split(|&b| b == b' ' || b == 0)
            .find_map(|w| w.strip_prefix(key.as_bytes())?.strip_prefix(b"="))
            .and_then(|v| core::str::from_utf8(v).ok())
    }

    /// Run one attack and print its verdict; whether it was refused as on Xen 4.17.
    fn run(name: &str, attack: fn() -> Outcome) -> bool {
        match attack() {
            Ok(how) => {
                println!("attacker: {name} refused ({how})");
                true
            }
            Err(why) => {
                println!("attacker: {name}: UNEXPECTED {why}");
                false
            }
        }
    }

    fn all() -> impl Iterator<Item = &'static Attack> {
        ATTACKS.iter().chain(PRIVILEGED.iter())
    }

    fn guest_main(si: &'static StartInfo) {
        // Events stay masked throughout (the attacks replace the event callback; Xen may
        // start a vCPU with events unmasked and the console backend sends events).
        guest_sdk::events::disable();
        support::install();
        let cmd = si.cmd_line_bytes();
        let which = arg(cmd, "attack").unwrap_or("all");
        println!(
            "attacker: started, attack={which}, cmdline \"{}\"",
            guest_sdk::console::Ascii(cmd)
        );
        if let Some(secs) = arg(cmd, "delay").and_then(|v| v.parse::<u64>().ok()) {
            support::sleep_ns(secs.saturating_mul(1_000_000_000));
        }
        let chosen: alloc::vec::Vec<&Attack> = match which {
            "all" => all().collect(),
            name => all().filter(|(n, _)| *n == name).collect(),
        };
        if chosen.is_empty() {
            fatal::run(which);
            let names: alloc::vec::Vec<&str> = all()
                .map(|(n, _)| *n)
                .chain(fatal::FATAL.iter().map(|(n, _)| *n))
                .collect();
            println!(
                "attacker: unknown attack {which:?}; known: all {}",
                names.join(" ")
            );
        } else {
            let n = chosen.len();
            let failed = chosen
                .into_iter()
                .filter(|(name, a)| !run(name, *a))
                .count();
            if failed == 0 {
                println!("attacker: all {n} attacks refused");
            } else {
                println!("attacker: FAILED {failed} of {n}");
            }
        }
        cpu::quiesce_events();
        support::drain_console(3_000_000_000);
        if arg(cmd, "then") == Some("poweroff") {
            sched::poweroff();
        }
        loop {
            sched::block();
        }
    }
}
