//! ACPI, the hardware side: find the RSDP, read the tables through the direct map
//! (the parsing is `crate::acpi`, pure and host-tested), and ACPI S5 power-off.

use crate::acpi::{self, Tables};
use crate::mem;
use log::{info, warn};
use x86_64::instructions::port::Port;

static TABLES: spin::Once<Tables> = spin::Once::new();

/// `len` bytes of physical memory at `pa` through the direct map, if they lie in it.
///
/// Only used for firmware tables and the BIOS areas, which nothing writes while we
/// read them, and only for the duration of `init`.
fn phys_bytes<'a>(pa: u64, len: usize) -> Option<&'a [u8]> {
    let end = pa.checked_add(len as u64)?;
    if len == 0 || end > mem::MAX_PHYS {
        return None;
    }
    // SAFETY:
    // 1. [pa, end) is below MAX_PHYS, all of which the boot page tables map (readable)
    //    at the direct map; `len` is bounded by the callers (acpi::MAX_TABLE_LEN).
    // 2. The bytes are firmware tables or BIOS areas: nothing writes them while `init`
    //    runs (the boot CPU is alone, and the frame allocator never hands out the
    //    first MiB or non-RAM ranges), so no `&mut` aliases the slice while it lives.
    Some(unsafe { core::slice::from_raw_parts(mem::phys_to_virt(pa) as *const u8, len) })
}

/// Where the RSDP is: the loader's copy (multiboot2), else the BIOS areas (the first
/// KiB of the EBDA, then 0xE0000..0xFFFFF).
fn find_rsdp(from_loader: Option<u64>) -> Option<u64> {
    if let Some(pa) = from_loader {
        if phys_bytes(pa, 36)
            .or_else(|| phys_bytes(pa, 20))
            .and_then(acpi::parse_rsdp)
            .is_some()
        {
            return Some(pa);
        }
        warn!("acpi: the loader's RSDP at {pa:#x} is not valid; scanning the BIOS areas");
    }
    let ebda = phys_bytes(0x40e, 2)
        .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])) << 4)
        .filter(|&e| (0x8_0000..0xa_0000).contains(&e));
    let areas = [ebda.map(|e| (e, 1024)), Some((0xe_0000, 0x2_0000))];
    areas.into_iter().flatten().find_map(|(base, len)| {
        let area = phys_bytes(base, len)?;
        acpi::scan_rsdp(area).map(|off| base + off as u64)
    })
}

/// Find and parse the ACPI tables (boot CPU, once). Without ACPI the machine is
/// taken as one CPU with the default power-off ports.
pub fn init(rsdp_from_loader: Option<u64>) -> &'static Tables {
    TABLES.call_once(|| {
        let Some(rsdp) = find_rsdp(rsdp_from_loader) else {
            warn!("acpi: no RSDP found: one CPU, no ACPI power-off");
            return Tables::default();
        };
        match acpi::parse_tables(rsdp, phys_bytes) {
            Ok(t) => {
                report(rsdp, &t);
                t
            }
            Err(e) => {
                warn!("acpi: RSDP at {rsdp:#x}: {e:?}: one CPU, no ACPI power-off");
                Tables::default()
            }
        }
    })
}

fn report(rsdp: u64, t: &Tables) {
    if let Some(r) = t.rsdp {
        info!(
            "acpi: RSDP at {rsdp:#x} revision {}, {}",
            r.revision,
            if r.xsdt.is_some() { "XSDT" } else { "RSDT" }
        );
    }
    for sig in t.bad_checksums.iter() {
        warn!(
            "acpi: table {} has a bad checksum (used anyway)",
            core::str::from_utf8(sig).unwrap_or("????")
        );
    }
    match &t.madt {
        Some(m) => {
            info!(
                "acpi: MADT: local APICs at {:#x}, {} enabled{}",
                m.lapic_addr,
                m.lapics.len(),
                if m.malformed {
                    " (malformed entries cut)"
                } else {
                    ""
                }
            );
            for l in m.lapics.iter() {
                log::debug!(
                    "acpi:   APIC id {:#x} uid {}{}",
                    l.apic_id,
                    l.uid,
                    if l.x2apic { " (x2APIC entry)" } else { "" }
                );
            }
            if m.dropped > 0 {
                warn!("acpi: MADT: {} more local APICs ignored", m.dropped);
            }
        }
        None => warn!("acpi: no MADT: one CPU"),
    }
    match (&t.fadt, &t.s5) {
        (Some(f), s5) => info!(
            "acpi: FADT: PM1a_CNT {:x?} PM1b_CNT {:x?} PM timer {:x?}{}, S5 {:?}",
            f.pm1a_cnt,
            f.pm1b_cnt,
            f.pm_tmr,
            if f.pm_tmr_32bit { " (32-bit)" } else { "" },
            s5
        ),
        (None, _) => warn!("acpi: no FADT"),
    }
}

/// The tables, if `init` ran.
pub fn tables() -> Option<&'static Tables> {
    TABLES.get()
}

/// The ACPI PM timer's port and width in bits, if the FADT gives one.
pub fn pm_timer() -> Option<(u16, u32)> {
    let f = tables()?.fadt?;
    Some((f.pm_tmr?, if f.pm_tmr_32bit { 32 } else { 24 }))
}

const SLP_EN: u16 = 1 << 13;
const SCI_EN: u16 = 1;

/// Enter S5 (soft off) through the FADT's PM1 control blocks and the DSDT's `_S5_`
/// values. Returns only if that did not work (no ACPI, hardware-reduced ACPI, or the
/// machine is still running a while later); the caller then tries other ways.
/// Other CPUs should be stopped first. Lock-free, usable on the fatal path.
pub fn poweroff() {
    let Some(t) = tables() else { return };
    let (Some(f), Some(s5)) = (t.fadt, t.s5) else {
        return;
    };
    let Some(pm1a) = f.pm1a_cnt.filter(|_| !f.hw_reduced) else {
        return;
    };
    // SAFETY: the PM1 control ports and the SMI command port come from the FADT and
    // belong to the chipset's ACPI block, which the hypervisor owns (dom0 is never
    // given them); writing them switches the chipset to ACPI mode and then sleeps,
    // and touches no memory.
    unsafe {
        let mut cnt = Port::<u16>::new(pm1a);
        if cnt.read() & SCI_EN == 0 && f.smi_cmd != 0 && f.acpi_enable != 0 {
            if let Ok(smi) = u16::try_from(f.smi_cmd) {
                Port::<u8>::new(smi).write(f.acpi_enable);
                for _ in 0..1_000_000 {
                    if cnt.read() & SCI_EN != 0 {
                        break;
                    }
                    core::hint::spin_loop();
                }
            }
        }
        if let Some(pm1b) = f.pm1b_cnt {
            let mut b = Port::<u16>::new(pm1b);
            let v = b.read() & !(7 << 10);
            b.write(v | (u16::from(s5.b & 7) << 10) | SLP_EN);
        }
        let v = cnt.read() & !(7 << 10);
        cnt.write(v | (u16::from(s5.a & 7) << 10) | SLP_EN);
    }
    // Give the chipset a moment; if we are still here, S5 did not take.
    for _ in 0..10_000_000 {
        core::hint::spin_loop();
    }
}
