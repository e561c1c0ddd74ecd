//! Time: system time (ns since the hypervisor booted) from `vcpu_time_info` and the TSC,
//! and the wallclock from `shared_info`.

use xen_abi::xen::VcpuTimeInfo;

/// Read the TSC.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `rdtsc` only writes edx:eax; PV guests may execute it (Xen's default
    // TSC mode does not trap it, and if it does, Xen emulates it).
    unsafe {
        core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack));
    }
    (hi as u64) << 32 | lo as u64
}

/// `((delta << shift) * mul) >> 32`, the pvclock scaling (negative shift shifts right).
pub const fn scale_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let d = if shift < 0 {
        delta >> (-(shift as i32)) as u32
    } else {
        delta << shift as u32
    };
    ((d as u128 * mul as u128) >> 32) as u64
}

/// System time in ns for TSC value `tsc` under parameters `t`.
pub const fn system_time_at(t: &VcpuTimeInfo, tsc: u64) -> u64 {
    let delta = tsc.wrapping_sub(t.tsc_timestamp);
    t.system_time
        .wrapping_add(scale_delta(delta, t.tsc_to_system_mul, t.tsc_shift))
}

/// Current system time in ns (vCPU 0's time info); 0 before `shared_info` is mapped.
pub fn system_time_ns() -> u64 {
    match crate::shared::read_time_info(0) {
        Some((t, tsc)) => system_time_at(&t, tsc),
        None => 0,
    }
}

/// TSC frequency in Hz implied by the time parameters of vCPU 0.
pub fn tsc_hz() -> Option<u64> {
    let (t, _) = crate::shared::read_time_info(0)?;
    if t.tsc_to_system_mul == 0 {
        return None;
    }
    let hz = (1_000_000_000u128 << 32) / t.tsc_to_system_mul as u128;
    Some(if t.tsc_shift < 0 {
        (hz << (-(t.tsc_shift as i32)) as u32) as u64
    } else {
        (hz >> t.tsc_shift as u32) as u64
    })
}

/// Wallclock now: (seconds, nanoseconds) since the Unix epoch.
pub fn wallclock() -> Option<(u64, u32)> {
    let (sec, nsec) = crate::shared::read_wallclock_base()?;
    Some(add_ns(sec, nsec, system_time_ns()))
}

/// `(sec, nsec) + ns`, normalised.
pub const fn add_ns(sec: u64, nsec: u32, ns: u64) -> (u64, u32) {
    let total = nsec as u64 + ns;
    (sec + total / 1_000_000_000, (total % 1_000_000_000) as u32)
}

/// A UTC calendar time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Unix seconds to a UTC calendar date (proleptic Gregorian; Howard Hinnant's algorithm).
pub const fn utc(secs: u64) -> Utc {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    Utc {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem / 60 % 60) as u32,
        second: (rem % 60) as u32,
    }
}

impl core::fmt::Display for Utc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_matches_pvclock_formula() {
        // 2 GHz TSC: mul = 2^31 (0.5 ns per tick), shift 0.
        assert_eq!(scale_delta(2_000, 1 << 31, 0), 1_000);
        // shift +1 doubles, -1 halves before multiplying.
        assert_eq!(scale_delta(1_000, 1 << 31, 1), 1_000);
        assert_eq!(scale_delta(4_000, 1 << 31, -1), 1_000);
        // No overflow for large deltas.
        assert_eq!(scale_delta(u64::MAX >> 1, 1 << 31, 0), (u64::MAX >> 2));
    }

    #[test]
    fn system_time_adds_scaled_delta() {
        let t = VcpuTimeInfo {
            tsc_timestamp: 1_000,
            system_time: 5_000,
            tsc_to_system_mul: 1 << 31,
            ..VcpuTimeInfo::default()
        };
        assert_eq!(system_time_at(&t, 3_000), 6_000);
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0).to_string(), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400).to_string(), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_718_000_000).to_string(), "2024-06-10 06:13:20 UTC");
        assert_eq!(add_ns(1, 999_999_999, 2), (2, 1));
    }
}
