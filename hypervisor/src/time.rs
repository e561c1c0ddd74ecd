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
