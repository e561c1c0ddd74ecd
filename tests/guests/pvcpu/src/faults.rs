//! Expected faults: labels around a faulting instruction, and the handler that resumes.
//!
//! [`probe!`](crate::probe) records the address of the instruction under test (`START`)
//! and of the instruction after it (`RESUME`), then runs it. The handler installed for
//! `#BP`, `#UD`, `#GP` and `#PF` records what the hypervisor delivered (vector, error
//! code, `rip`, `cs`, `cr2`) and, if the reported `rip` lies between the two labels,
//! resumes at `RESUME`. Any other fault in guest kernel mode is a bug: the SDK prints the
//! frame and crashes the domain. Faults from guest user mode go to
//! [`crate::user::escape`].

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};
use guest_sdk::traps::{self, Resume, TrapFrame};

/// Address of the probed instruction (0 when no probe is armed). Written by `probe!`.
pub static START: AtomicU64 = AtomicU64::new(0);
/// Address after the probed instruction, where execution resumes. Written by `probe!`.
pub static RESUME: AtomicU64 = AtomicU64::new(0);

static COUNTS: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];
static LAST: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];

/// What the hypervisor delivered for the last fault the handler saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    /// The `cs` slot of the bounce frame, without the saved upcall mask (bits 32..).
    pub cs: u64,
    /// `vcpu_info.arch.cr2` read in the handler (meaningful for `#PF`).
    pub cr2: u64,
    /// The probe's labels when it fired (0 if none was armed).
    pub start: u64,
    pub resume: u64,
}

/// Run one instruction (or a short sequence) that is expected to fault or trap; the
/// handler resumes after it. Extra `asm!` operands follow the template, each preceded
/// by a comma. Clobbers `r11`. Must be used inside an `unsafe` block.
#[macro_export]
macro_rules! probe {
    ($insn:literal $($rest:tt)*) => {
        core::arch::asm!(
            "lea 2f(%rip), %r11",
            "mov %r11, {start}(%rip)",
            "lea 3f(%rip), %r11",
            "mov %r11, {resume}(%rip)",
            "2:",
            $insn,
            "3:",
            options(att_syntax),
            start = sym $crate::faults::START,
            resume = sym $crate::faults::RESUME,
            out("r11") _
            $($rest)*
        )
    };
}

/// Install the handler for the vectors the checks provoke.
pub fn install() {
    for v in [
        traps::BREAKPOINT,
        traps::INVALID_OPCODE,
        traps::GENERAL_PROTECTION,
        traps::PAGE_FAULT,
    ] {
        traps::set_handler(v, on_fault);
    }
}

/// Forget earlier faults: counts and the last record.
pub fn reset() {
    for c in COUNTS.iter().chain(LAST.iter()) {
        c.store(0, SeqCst);
    }
}

/// How many times `vector` was delivered since [`reset`].
pub fn count(vector: u8) -> u64 {
    COUNTS.get(vector as usize).map_or(0, |c| c.load(SeqCst))
}

/// Total faults delivered since [`reset`].
pub fn total() -> u64 {
    COUNTS.iter().map(|c| c.load(SeqCst)).sum()
}

/// The last fault recorded.
pub fn last() -> Seen {
    let g = |i: usize| LAST.get(i).map_or(0, |a| a.load(SeqCst));
    Seen {
        vector: g(0),
        error_code: g(1),
        rip: g(2),
        cs: g(3),
        cr2: g(4),
        start: g(5),
        resume: g(6),
    }
}

fn on_fault(f: &mut TrapFrame) -> Resume {
    // Read cr2 first: nothing in this handler faults, but keep it next to the entry.
    let cr2 = guest_sdk::shared::cr2(0).unwrap_or(0);
    let (start, resume) = (START.load(SeqCst), RESUME.load(SeqCst));
    let record = [
        f.vector,
        f.error_code,
        f.rip,
        f.cs & 0xffff,
        cr2,
        start,
        resume,
    ];
    for (slot, v) in LAST.iter().zip(record) {
        slot.store(v, SeqCst);
    }
    if let Some(c) = COUNTS.get(f.vector as usize) {
        c.fetch_add(1, SeqCst);
    }
    if f.cs & 3 == 3 && crate::user::in_user() {
        crate::user::escape(f);
        return Resume::Continue;
    }
    if start != 0 && (start..=resume).contains(&f.rip) {
        START.store(0, SeqCst);
        f.rip = resume;
        return Resume::Continue;
    }
    Resume::Crash
}
