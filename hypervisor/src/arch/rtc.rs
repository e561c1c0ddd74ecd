//! The CMOS real-time clock: the wallclock at boot.

fn cmos(reg: u8) -> u8 {
    // SAFETY: ports 0x70/0x71 are the CMOS index/data pair, owned by the hypervisor
    // (denied to guests); reading a register has no memory effect.
    unsafe {
        x86_64::instructions::port::Port::<u8>::new(0x70).write(reg);
        x86_64::instructions::port::Port::<u8>::new(0x71).read()
    }
}

fn bcd(v: u8) -> u64 {
    u64::from((v & 0x0f) + (v >> 4) * 10)
}

/// Seconds since the epoch, read from the RTC (UTC, as QEMU and most firmware keep it).
pub fn read_epoch() -> u64 {
    // Wait for no update in progress, then read twice until stable.
    let read = || {
        let mut spins = 0;
        while cmos(0x0a) & 0x80 != 0 && spins < 1_000_000 {
            spins += 1;
            core::hint::spin_loop();
        }
        [
            cmos(0x00),
            cmos(0x02),
            cmos(0x04),
            cmos(0x07),
            cmos(0x08),
            cmos(0x09),
            cmos(0x32),
        ]
    };
    let mut a = read();
    for _ in 0..4 {
        let b = read();
        if a == b {
            break;
        }
        a = b;
    }
    let status_b = cmos(0x0b);
    let binary = status_b & 0x04 != 0;
    let conv = |v: u8| if binary { u64::from(v) } else { bcd(v) };
    let pm = a[2] & 0x80 != 0;
    let mut hour = conv(a[2] & 0x7f);
    if status_b & 0x02 == 0 {
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let century = match conv(a[6]) {
        c @ 19..=21 => c,
        _ => 20,
    };
    let year = century * 100 + conv(a[5]);
    crate::time::epoch_seconds(
        year,
        conv(a[4]).clamp(1, 12),
        conv(a[3]).clamp(1, 31),
        hour,
        conv(a[1]),
        conv(a[0]),
    )
}
