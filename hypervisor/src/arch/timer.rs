//! Time: the TSC is the clock, calibrated against the PIT (channel 2, the speaker
//! gate, which needs no interrupt) or, without a PIT, the ACPI PM timer; each CPU's
//! local APIC timer, calibrated at the same time, is its one-shot deadline timer.
//!
//! `now_ns()` is one formula on every CPU (same scale, same boot-time TSC offset),
//! so it is consistent across CPUs as far as their TSCs are (the invariant TSCs of
//! modern CPUs and of QEMU are; `smp` warns when an AP's TSC is behind the boot CPU's).

use super::apic;
use super::percpu::MAX_CPUS;
use super::x86;
use core::sync::atomic::{AtomicU64, Ordering};
use log::{info, warn};
use x86_64::instructions::port::Port;

/// The local APIC timer's vector.
pub const VECTOR_TIMER: u8 = 0xf0;

const PIT_HZ: u64 = 1_193_182;
const PM_TIMER_HZ: u64 = 3_579_545;
/// One calibration run: 50 ms (a 16-bit PIT count reaches 54.9 ms at most).
const CAL_MS: u64 = 50;
const CAL_RUNS: usize = 3;
/// APIC timer divide configuration value for "divide by 16".
const APIC_DIV_16: u32 = 0b0011;
const LVT_MASKED: u32 = 1 << 16;
/// Deadlines this close (or closer) count as reached: the APIC timer's rounding.
const SLOP_NS: u64 = 10_000;

static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
/// APIC timer ticks per millisecond (divide by 16).
static APIC_KHZ: AtomicU64 = AtomicU64::new(0);
/// The TSC value that is time zero.
static TSC_BOOT: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick, as a 32.32 fixed-point number.
static NS_PER_TSC_32: AtomicU64 = AtomicU64::new(0);
/// Each CPU's pending deadline (ns; 0 = none).
static DEADLINE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// TSC ticks per millisecond (0 before `init`).
pub fn tsc_khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed)
}

/// Local APIC timer ticks per millisecond at the divider we use (0 before `init`).
pub fn apic_khz() -> u64 {
    APIC_KHZ.load(Ordering::Relaxed)
}

/// Nanoseconds since the boot CPU calibrated the clock (0 before that).
pub fn now_ns() -> u64 {
    tsc_to_ns(x86::rdtsc())
}

/// The system time of TSC value `tsc`.
pub fn tsc_to_ns(tsc: u64) -> u64 {
    let d = tsc.saturating_sub(TSC_BOOT.load(Ordering::Relaxed));
    let ns = (u128::from(d) * u128::from(NS_PER_TSC_32.load(Ordering::Relaxed))) >> 32;
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Spin for at least `us` microseconds (TSC; before calibration, a generous guess).
pub fn udelay(us: u64) {
    let khz = match tsc_khz() {
        0 => 10_000_000, // 10 GHz: longer than asked on any real CPU
        k => k,
    };
    let t0 = x86::rdtsc();
    let ticks = us.saturating_mul(khz) / 1000;
    while x86::rdtsc().wrapping_sub(t0) < ticks {
        core::hint::spin_loop();
    }
}

fn inb(port: u16) -> u8 {
    // SAFETY: only called for the PIT's port 0x61 (system control port B); reading it
    // has no side effects.
    unsafe { Port::<u8>::new(port).read() }
}

/// Start the APIC timer counting down from its maximum, masked (for calibration).
fn apic_count_start() {
    apic::write(apic::REG_LVT_TIMER, LVT_MASKED | u32::from(VECTOR_TIMER));
    apic::write(apic::REG_TIMER_DIV, APIC_DIV_16);
    apic::write(apic::REG_TIMER_INIT, u32::MAX);
}

fn apic_count_elapsed() -> u64 {
    u64::from(u32::MAX - apic::read(apic::REG_TIMER_CUR))
}

/// One PIT channel-2 one-shot of `ms` milliseconds: (TSC ticks, APIC ticks) it took,
/// or `None` if the PIT never signalled (no PIT).
fn measure_pit(ms: u64) -> Option<(u64, u64)> {
    let latch = u16::try_from(PIT_HZ * ms / 1000).ok()?;
    // SAFETY: ports 0x61 (speaker gate), 0x43 (PIT mode) and 0x42 (PIT channel 2) are
    // the legacy timer's, owned by the hypervisor and never given to guests; channel 2
    // drives only the speaker (kept off), so this touches no memory and no interrupt.
    unsafe {
        let v = inb(0x61);
        Port::<u8>::new(0x61).write((v & !0x02) | 0x01);
        Port::<u8>::new(0x43).write(0xb0); // channel 2, lo/hi byte, mode 0, binary
        Port::<u8>::new(0x42).write(latch as u8);
        Port::<u8>::new(0x42).write((latch >> 8) as u8);
    }
    apic_count_start();
    let t0 = x86::rdtsc();
    let mut spins: u64 = 0;
    while inb(0x61) & 0x20 == 0 {
        spins += 1;
        if spins > 50_000_000 {
            return None;
        }
    }
    let t1 = x86::rdtsc();
    let a = apic_count_elapsed();
    Some((t1.wrapping_sub(t0), a))
}

fn pm_timer_read(port: u16, mask: u32) -> u32 {
    // SAFETY: the FADT's PM timer port: a read-only counter of the ACPI block, which
    // the hypervisor owns.
    unsafe { Port::<u32>::new(port).read() & mask }
}

/// As `measure_pit`, against the ACPI PM timer.
fn measure_pm_timer(ms: u64) -> Option<(u64, u64)> {
    let (port, bits) = super::acpi::pm_timer()?;
    let mask = if bits == 32 { u32::MAX } else { 0xff_ffff };
    let want = PM_TIMER_HZ * ms / 1000;
    let p0 = pm_timer_read(port, mask);
    // Start at an edge of the PM clock.
    let mut spins: u64 = 0;
    while pm_timer_read(port, mask) == p0 {
        spins += 1;
        if spins > 10_000_000 {
            return None;
        }
    }
    let p0 = pm_timer_read(port, mask);
    apic_count_start();
    let t0 = x86::rdtsc();
    loop {
        let p = pm_timer_read(port, mask);
        if u64::from(p.wrapping_sub(p0) & mask) >= want {
            break;
        }
        spins += 1;
        if spins > 500_000_000 {
            return None;
        }
    }
    let t1 = x86::rdtsc();
    Some((t1.wrapping_sub(t0), apic_count_elapsed()))
}

/// Calibrate the TSC and the APIC timer and start the clock (boot CPU, once, after
/// `acpi::init` and with interrupts off). Returns false if nothing could be measured;
/// the clock then assumes 1 GHz.
pub fn init() -> bool {
    let (_, _, _, edx) = x86::cpuid(0x8000_0007, 0);
    if edx & (1 << 8) == 0 {
        info!("timer: the TSC is not invariant; system time may drift with CPU frequency");
    }
    let mut best: Option<(u64, u64)> = None;
    let mut source = "PIT";
    for _ in 0..CAL_RUNS {
        let Some(m) = measure_pit(CAL_MS) else {
            best = None;
            break;
        };
        // The smallest TSC count is the one least stretched by late polling.
        if best.is_none_or(|b| m.0 < b.0) {
            best = Some(m);
        }
    }
    if best.is_none() {
        source = "ACPI PM timer";
        for _ in 0..CAL_RUNS {
            if let Some(m) = measure_pm_timer(CAL_MS) {
                if best.is_none_or(|b| m.0 < b.0) {
                    best = Some(m);
                }
            }
        }
    }
    // Stop the APIC timer we let run.
    apic::write(apic::REG_TIMER_INIT, 0);
    let ok = best.is_some();
    let (tsc, apic_ticks) = best.unwrap_or((CAL_MS * 1_000_000, CAL_MS * 62_500));
    if !ok {
        warn!("timer: no PIT and no ACPI PM timer: assuming a 1 GHz TSC, 62.5 MHz APIC timer");
        source = "a guess";
    }
    let tsc_khz = (tsc / CAL_MS).max(1);
    let apic_khz = (apic_ticks / CAL_MS).max(1);
    TSC_KHZ.store(tsc_khz, Ordering::Relaxed);
    APIC_KHZ.store(apic_khz, Ordering::Relaxed);
    NS_PER_TSC_32.store((1_000_000u64 << 32) / tsc_khz, Ordering::Relaxed);
    TSC_BOOT.store(x86::rdtsc(), Ordering::SeqCst);
    info!(
        "timer: TSC {}.{:03} MHz, APIC timer {}.{:03} MHz (/16), calibrated against the {source}",
        tsc_khz / 1000,
        tsc_khz % 1000,
        apic_khz / 1000,
        apic_khz % 1000,
    );
    ok
}

/// Check the clock against the PIT: how long 100 ms of PIT take by `now_ns()`.
/// Returns that time in ns, or `None` without a PIT.
pub fn check_against_pit() -> Option<u64> {
    let t0 = now_ns();
    measure_pit(CAL_MS)?;
    measure_pit(CAL_MS)?;
    let dt = now_ns() - t0;
    apic::write(apic::REG_TIMER_INIT, 0);
    Some(dt)
}

/// Set up this CPU's APIC timer (one-shot, vector `VECTOR_TIMER`, stopped).
pub fn init_this_cpu() {
    apic::write(apic::REG_TIMER_INIT, 0);
    apic::write(apic::REG_TIMER_DIV, APIC_DIV_16);
    apic::write(apic::REG_LVT_TIMER, u32::from(VECTOR_TIMER));
}

fn this_cpu() -> usize {
    super::cpu::current_id() as usize
}

/// Program the APIC timer to fire at `deadline` ns (at once if it has passed). The
/// 32-bit counter may not reach far deadlines; then it fires early and `expired`
/// re-arms it.
fn arm(deadline: u64) {
    let delta = deadline.saturating_sub(now_ns());
    let ticks = (u128::from(delta) * u128::from(apic_khz())).div_ceil(1_000_000);
    let ticks = u32::try_from(ticks).unwrap_or(u32::MAX).max(1);
    apic::write(apic::REG_LVT_TIMER, u32::from(VECTOR_TIMER));
    apic::write(apic::REG_TIMER_INIT, ticks);
}

/// Set this CPU's one-shot deadline to `deadline` ns of system time; 0 cancels it.
/// The timer interrupt then runs `crate::irq::timer_tick`. Call with interrupts off
/// (or from the interrupt itself).
pub fn set_deadline(deadline: u64) {
    let cpu = this_cpu();
    let Some(slot) = DEADLINE.get(cpu) else {
        return;
    };
    slot.store(deadline, Ordering::Relaxed);
    if deadline == 0 {
        apic::write(apic::REG_TIMER_INIT, 0);
    } else {
        arm(deadline);
    }
}

/// The deadline pending on this CPU (0: none).
pub fn deadline() -> u64 {
    DEADLINE
        .get(this_cpu())
        .map_or(0, |d| d.load(Ordering::Relaxed))
}

/// On a timer interrupt on `cpu`: true if its deadline has been reached (it is then
/// cleared and the caller runs the tick); false if the timer fired early (re-armed)
/// or no deadline is pending (a stale interrupt).
pub fn expired(cpu: usize) -> bool {
    let Some(slot) = DEADLINE.get(cpu) else {
        return false;
    };
    let d = slot.load(Ordering::Relaxed);
    if d == 0 {
        return false;
    }
    if now_ns().saturating_add(SLOP_NS) < d {
        arm(d);
        return false;
    }
    slot.store(0, Ordering::Relaxed);
    true
}
