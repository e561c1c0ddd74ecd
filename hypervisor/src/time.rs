//! Guest time: Xen's `vcpu_time_info` scale and the wallclock.
//!
//! System time is nanoseconds since boot from the TSC (`arch::timer`); guests
//! extrapolate it from `tsc_timestamp`, `system_time`, `tsc_to_system_mul` and
//! `tsc_shift` exactly as on Xen.

/// Xen's `set_time_scale`: (mul, shift) with ns = ((tsc << shift) * mul) >> 32
/// (a negative shift shifts right).
pub fn time_scale(ticks_per_sec: u64) -> (u32, i8) {
    let mut tps64 = ticks_per_sec.max(1);
    let mut shift: i32 = 0;
    while tps64 > 2_000_000_000 {
        tps64 >>= 1;
        shift -= 1;
    }
    let mut tps32 = tps64 as u32;
    while tps32 <= 1_000_000_000 {
        tps32 <<= 1;
        shift += 1;
    }
    let mul = ((1_000_000_000u64 << 32) / u64::from(tps32)) as u32;
    (mul, shift as i8)
}

/// Apply a scale to a TSC delta, as guests do.
pub fn scale_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let d = if shift >= 0 {
        delta << shift
    } else {
        delta >> (-shift)
    };
    ((u128::from(d) * u128::from(mul)) >> 32) as u64
}

/// Seconds since the epoch from a CMOS date (year 2000+).
pub fn epoch_seconds(year: u64, month: u64, day: u64, h: u64, m: u64, s: u64) -> u64 {
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + h * 3600 + m * 60 + s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_matches_frequency() {
        for hz in [
            1_000_000_000u64,
            2_500_000_000,
            3_000_000_000,
            100_000_000,
            24_000_000,
        ] {
            let (mul, shift) = time_scale(hz);
            let ns = scale_delta(hz, mul, shift);
            assert!(
                (999_999_000..=1_000_001_000).contains(&ns),
                "{hz} Hz gave {ns} ns per second"
            );
        }
    }

    #[test]
    fn epoch() {
        assert_eq!(epoch_seconds(2000, 1, 1, 0, 0, 0), 946_684_800);
        assert_eq!(epoch_seconds(2026, 11, 22, 3, 21, 0), 1_795_317_660);
    }
}

/// Publish the wallclock (from the RTC at boot) into a domain's shared_info.
#[cfg(target_os = "none")]
pub fn publish_wallclock(sh: &crate::shinfo::SharedInfo) {
    let boot = boot_epoch();
    sh.set_wallclock(boot.0, boot.1);
}

/// Publish vCPU `v`'s time scale (`vcpu_time_info`) into a domain's shared_info.
#[cfg(target_os = "none")]
pub fn publish_vcpu_time(sh: &crate::shinfo::SharedInfo, v: u32) {
    let tsc = crate::arch::x86::rdtsc();
    let now = crate::arch::timer::tsc_to_ns(tsc);
    let (mul, shift) = time_scale(crate::arch::timer::tsc_khz().saturating_mul(1000));
    sh.set_time(v, tsc, now, mul, shift);
}

/// Wall time (seconds, nanoseconds) at system time 0, from the RTC read once.
#[cfg(target_os = "none")]
fn boot_epoch() -> (u64, u32) {
    static BOOT: spin::Once<(u64, u32)> = spin::Once::new();
    *BOOT.call_once(|| {
        let now_ns = crate::arch::timer::now_ns();
        let rtc_ns = crate::arch::rtc::read_epoch().saturating_mul(1_000_000_000);
        let boot = rtc_ns.saturating_sub(now_ns);
        (boot / 1_000_000_000, (boot % 1_000_000_000) as u32)
    })
}
