//! Hardware interrupts taken in hypervisor context (the idle loop, or any time
//! interrupts are on in the hypervisor): the local APIC timer, the event-check IPI,
//! device interrupts from the I/O APIC (for the control domain's pirqs), spurious
//! interrupts.
//!
//! Nothing here logs or waits for a lock: an interrupt may arrive while its CPU holds
//! the console lock. Device interrupts take the I/O APIC's leaf lock and only
//! `try_lock` `DOMAINS`.

use crate::arch::percpu::{Regs, MAX_CPUS};
use crate::arch::{apic, cpu, timer};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The local APIC timer (each CPU's one-shot deadline).
pub const VECTOR_TIMER: u8 = timer::VECTOR_TIMER;
/// "Look at your pending work": sent to wake an idle CPU; the handler only returns.
pub const VECTOR_EVENT_CHECK: u8 = 0xf1;
/// The local APIC's spurious vector (SVR); never acknowledged.
pub const VECTOR_SPURIOUS: u8 = 0xff;

/// The period of the idle tick (`start_tick`).
pub const TICK_NS: u64 = 10_000_000;

/// Per-CPU counters, for tests and the debug console.
pub static TIMER_TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
pub static EVENT_CHECKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Device interrupts (I/O APIC GSIs) taken.
pub static DEVICE_IRQS: AtomicU64 = AtomicU64::new(0);
/// Interrupts on vectors nobody handles (acknowledged and dropped).
pub static UNEXPECTED: AtomicU64 = AtomicU64::new(0);
/// Interrupts taken, per CPU (the idle loop's poll watches its own).
pub static TAKEN: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// CPUs whose `timer_tick` re-arms a periodic tick.
static TICKING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Where the legacy 8259 PICs' IRQs 0..15 land once remapped (they stay masked; only
/// their spurious IRQ 7 and 15 can still arrive, and are counted as unexpected).
pub const VECTOR_LEGACY_PIC: u8 = 0x20;

/// Remap the legacy 8259 PICs away from the exception vectors and mask all their
/// lines. The BIOS leaves them at vectors 8..15 with the PIT on IRQ 0, so the first
/// `sti` would otherwise take the PIT's tick as a double fault. Boot CPU, once,
/// interrupts off.
pub fn disable_legacy_pic() {
    let steps: [(u16, u8); 10] = [
        (0x20, 0x11), // ICW1: edge, cascade, ICW4 follows
        (0xa0, 0x11),
        (0x21, VECTOR_LEGACY_PIC), // ICW2: vector bases
        (0xa1, VECTOR_LEGACY_PIC + 8),
        (0x21, 0x04), // ICW3: slave on IRQ 2
        (0xa1, 0x02),
        (0x21, 0x01), // ICW4: 8086 mode
        (0xa1, 0x01),
        (0x21, 0xff), // OCW1: mask everything
        (0xa1, 0xff),
    ];
    for (port, val) in steps {
        // SAFETY: ports 0x20/0x21/0xa0/0xa1 are the legacy PICs, owned by the
        // hypervisor and never given to guests; programming them touches no memory.
        unsafe { crate::arch::x86::outb(port, val) };
    }
}

/// Entered from `traps::dispatch` for vectors 32..=255 taken in hypervisor mode.
// The signature predates `handle`; `traps::dispatch` can call `handle(r.vector)` on
// the frame it already dereferences, and this wrapper then goes.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn interrupt(regs: *mut Regs) -> *mut Regs {
    // SAFETY: `regs` is the frame the entry stub just built on this CPU's stack
    // (traps::dispatch's contract); only its `vector` field is read.
    let vector = unsafe { (*regs).vector };
    handle(vector);
    regs
}

/// Handle hardware interrupt `vector` (32..=255) on this CPU, interrupts off.
pub fn handle(vector: u32) {
    let cpu = cpu::current_id() as usize;
    if let Some(t) = TAKEN.get(cpu) {
        t.fetch_add(1, Ordering::Relaxed);
    }
    match u8::try_from(vector) {
        Ok(VECTOR_SPURIOUS) => {} // no EOI for the spurious vector
        Ok(VECTOR_TIMER) => {
            apic::eoi();
            if timer::expired(cpu) {
                timer_tick(cpu);
            }
        }
        Ok(crate::mm::VECTOR_FLUSH) => {
            apic::eoi();
            crate::mm::flush_ipi();
        }
        Ok(VECTOR_EVENT_CHECK) => {
            apic::eoi();
            if let Some(c) = EVENT_CHECKS.get(cpu) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(v) if crate::arch::ioapic::vector_to_gsi(v).is_some() => {
            // A device interrupt (I/O APIC, CPU 0): masked if level-triggered, then
            // delivered to the owner's pirq port (`events::gsi_interrupt`).
            apic::eoi();
            if let Some(gsi) = crate::arch::ioapic::vector_to_gsi(v) {
                DEVICE_IRQS.fetch_add(1, Ordering::Relaxed);
                crate::events::gsi_interrupt(gsi);
            }
        }
        _ => {
            apic::eoi();
            UNEXPECTED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The timer hook: runs on `cpu`, interrupts off, when its deadline has passed.
/// For now it counts and, on CPUs with the idle tick on, re-arms it; the scheduler
/// goes here.
pub fn timer_tick(cpu: usize) {
    if let Some(c) = TIMER_TICKS.get(cpu) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    if TICKING.get(cpu).is_some_and(|t| t.load(Ordering::Relaxed)) {
        timer::set_deadline(timer::now_ns() + TICK_NS);
    }
    // Guest timers of the vCPU this CPU runs.
    crate::sched::timer_fired();
    // Device interrupts whose delivery found `DOMAINS` taken.
    crate::events::deliver_pirqs_try();
}

/// Start a periodic `TICK_NS` tick on this CPU.
pub fn start_tick() {
    let cpu = cpu::current_id() as usize;
    if let Some(t) = TICKING.get(cpu) {
        t.store(true, Ordering::Relaxed);
        timer::set_deadline(timer::now_ns() + TICK_NS);
    }
}

/// Stop this CPU's periodic tick (and any pending deadline).
pub fn stop_tick() {
    let cpu = cpu::current_id() as usize;
    if let Some(t) = TICKING.get(cpu) {
        t.store(false, Ordering::Relaxed);
    }
    timer::set_deadline(0);
}
