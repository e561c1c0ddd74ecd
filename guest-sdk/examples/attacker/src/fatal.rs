//! Attacks the domain does not survive, one per run (`attack=NAME`). Each must end with
//! the domain crashed (`SHUTDOWN_crash`, handled by the toolstack per `on_crash`) and
//! the hypervisor and every other domain running on.
//!
//! - `stack`: the stack pointer in the hypervisor's range (its direct map), then a
//!   fault: the exception frame cannot be written (Xen's `create_bounce_frame` refuses
//!   a stack in its range: `domain_crash`).
//! - `stack_unmapped`: the stack pointer on an unmapped page, then a fault: writing
//!   the frame faults (`domain_crash`).
//! - `nohandler`: the whole trap table cleared (`set_trap_table(NULL)`), then a page
//!   fault: no handler to deliver it to (Xen: "Unhandled page fault", `domain_crash`).
//! - `wild`: a jump to the hypervisor's text: it must not run; the hypervisor delivers a
//!   page fault at that address, which our handler reports before crashing the domain.
//! - `bad_iret`: the `iret` hypercall with its frame pointer (the stack) in the hypervisor's
//!   range: the frame cannot be read (Xen: "Fault while reading IRET context",
//!   `domain_crash`).
//!
//! If the domain is still running afterwards, it says so (`UNEXPECTED`) and powers off
//! (reason 0, not 3), which the tests catch.

use crate::support::*;
use guest_sdk::traps::{self, Resume, TrapFrame};
use guest_sdk::{println, sched};

/// The fatal attacks: name and what it does.
pub const FATAL: [(&str, &str); 5] = [
    (
        "stack",
        "stack pointer in the hypervisor's direct map, then ud2",
    ),
    (
        "stack_unmapped",
        "stack pointer on an unmapped page, then ud2",
    ),
    ("nohandler", "trap table cleared, then a page fault"),
    ("wild", "jump to the hypervisor's text"),
    (
        "bad_iret",
        "iret hypercall with its frame in the hypervisor's direct map",
    ),
];

/// Called if a fatal attack returns: the hypervisor let the domain go on.
#[no_mangle]
extern "C" fn attacker_survived() -> ! {
    println!("attacker: fatal attack: UNEXPECTED: the domain is still running after it");
    drain_console(2_000_000_000);
    sched::poweroff()
}

fn on_any_fault(f: &mut TrapFrame) -> Resume {
    println!(
        "attacker: fatal attack: UNEXPECTED: the hypervisor delivered vector {} (error {:#x}) at rip {:#x} with rsp {:#x}",
        f.vector, f.error_code, f.rip, f.rsp
    );
    drain_console(2_000_000_000);
    sched::poweroff()
}

fn on_wild_fault(f: &mut TrapFrame) -> Resume {
    let cr2 = guest_sdk::shared::cr2(0).unwrap_or(0);
    if f.vector == u64::from(traps::PAGE_FAULT) && f.rip == XEN_TEXT && cr2 == XEN_TEXT {
        println!(
            "attacker: wild: the hypervisor delivered #PF (error {:#x}) at rip {:#x}: its code did not run; crashing the domain",
            f.error_code, f.rip
        );
    } else {
        println!(
            "attacker: wild: UNEXPECTED: vector {} at rip {:#x} cr2 {cr2:#x} (expected #PF at {XEN_TEXT:#x})",
            f.vector, f.rip
        );
    }
    drain_console(2_000_000_000);
    Resume::Crash
}

/// Run fatal attack `name` (one of [`FATAL`]); returns only if the name is unknown.
pub fn run(name: &str) {
    let Some(&(_, what)) = FATAL.iter().find(|(n, _)| *n == name) else {
        return;
    };
    println!("attacker: {name}: {what}; the hypervisor must crash this domain");
    for v in 0..32u8 {
        traps::set_handler(v, on_any_fault);
    }
    drain_console(3_000_000_000);
    // SAFETY: (each arm) the code never returns to Rust: either the hypervisor crashes
    // the domain, or a handler above reports and shuts the domain down, or (if the
    // hypervisor lets the code go on) it restores the stack pointer it saved in r12 and
    // calls `attacker_survived`, which shuts the domain down.
    unsafe {
        match name {
            "stack" => core::arch::asm!(
                "mov %rsp, %r12",
                "mov {sp}, %rsp",
                "ud2",
                "mov %r12, %rsp",
                "and $-16, %rsp",
                "call attacker_survived",
                sp = in(reg) DIRECTMAP,
                options(att_syntax, noreturn)
            ),
            "stack_unmapped" => core::arch::asm!(
                "mov %rsp, %r12",
                "mov {sp}, %rsp",
                "ud2",
                "mov %r12, %rsp",
                "and $-16, %rsp",
                "call attacker_survived",
                sp = in(reg) UNMAPPED + 0x1000,
                options(att_syntax, noreturn)
            ),
            "nohandler" => {
                let r = hcall(xen_abi::hypercall::SET_TRAP_TABLE, [0; 5]);
                if r.is_err() {
                    println!(
                        "attacker: nohandler: set_trap_table(NULL) refused: {}",
                        show(r)
                    );
                }
                core::arch::asm!(
                    "mov ({a}), %rax",
                    "and $-16, %rsp",
                    "call attacker_survived",
                    a = in(reg) UNMAPPED,
                    options(att_syntax, noreturn)
                )
            }
            "wild" => {
                traps::set_handler(traps::PAGE_FAULT, on_wild_fault);
                core::arch::asm!(
                    "call *{t}",
                    "and $-16, %rsp",
                    "call attacker_survived",
                    t = in(reg) XEN_TEXT,
                    options(att_syntax, noreturn)
                )
            }
            "bad_iret" => core::arch::asm!(
                "mov %rsp, %r12",
                "mov {sp}, %rsp",
                "mov ${iret}, %eax",
                "syscall",
                "mov %r12, %rsp",
                "and $-16, %rsp",
                "call attacker_survived",
                sp = in(reg) DIRECTMAP,
                iret = const xen_abi::hypercall::IRET,
                options(att_syntax, noreturn)
            ),
            _ => {}
        }
    }
}
