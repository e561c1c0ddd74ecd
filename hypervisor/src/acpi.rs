//! ACPI tables, the pure part: RSDP, RSDT/XSDT, MADT, FADT and the DSDT's `_S5_`.
//!
//! Firmware tables are input like any other: every length and offset is checked
//! against the bytes actually there, nothing here indexes out of range or panics,
//! and a malformed table is skipped (with what was learnt before it kept). The
//! hardware side (where the bytes come from, the power-off writes) is in
//! `arch::acpi`; everything here works over byte slices and is tested on the host.
#![forbid(unsafe_code)]

/// Most local APICs we record (the rest are counted in `Madt::dropped`).
pub const MAX_LAPICS: usize = 256;
/// Largest table we look at (the DSDT of a big server is a few hundred KiB).
pub const MAX_TABLE_LEN: usize = 4 << 20;
/// Most RSDT/XSDT entries we follow.
pub const MAX_SDT_ENTRIES: usize = 256;

pub const SDT_HEADER_LEN: usize = 36;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No "RSD PTR " with a good checksum where we looked.
    NoRsdp,
    /// The RSDT/XSDT is missing, unmapped, or has the wrong signature.
    BadRoot,
    /// A table is shorter than its header or than its own fixed fields.
    Truncated(&'static str),
    /// A table has a signature other than the one expected.
    WrongSignature,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The byte sum of `b` (ACPI checksums make it zero).
pub fn checksum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |a, &x| a.wrapping_add(x))
}

/// What the RSDP says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    pub revision: u8,
    pub rsdt: u32,
    /// The XSDT (ACPI 2.0+, extended checksum good, address non-zero).
    pub xsdt: Option<u64>,
}

/// Decode an RSDP at the start of `b` (at least 20 bytes; 36 for ACPI 2.0+).
pub fn parse_rsdp(b: &[u8]) -> Option<Rsdp> {
    let v1 = b.get(..20)?;
    if &v1[..8] != b"RSD PTR " || checksum(v1) != 0 {
        return None;
    }
    let revision = v1[15];
    let rsdt = u32_at(v1, 16)?;
    let mut xsdt = None;
    if revision >= 2 {
        let len = u32_at(b, 20).unwrap_or(0) as usize;
        if let Some(v2) = b.get(..len).filter(|_| len >= 36) {
            if checksum(v2) == 0 {
                xsdt = u64_at(v2, 24).filter(|&a| a != 0);
            }
        }
    }
    Some(Rsdp {
        revision,
        rsdt,
        xsdt,
    })
}

/// Offset of the first valid RSDP in `area` (searched on 16-byte boundaries).
pub fn scan_rsdp(area: &[u8]) -> Option<usize> {
    (0..area.len())
        .step_by(16)
        .find(|&off| area.get(off..).and_then(parse_rsdp).is_some())
}

/// A system description table's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdtHeader {
    pub signature: [u8; 4],
    pub length: u32,
    pub revision: u8,
}

/// Decode the 36-byte header at the start of `b`.
pub fn parse_header(b: &[u8]) -> Option<SdtHeader> {
    let h = b.get(..SDT_HEADER_LEN)?;
    Some(SdtHeader {
        signature: h.get(..4)?.try_into().ok()?,
        length: u32_at(h, 4)?,
        revision: h[8],
    })
}

/// The table addresses listed by an RSDT (`wide == false`, 32-bit entries) or an
/// XSDT (`wide`, 64-bit entries); at most `MAX_SDT_ENTRIES`.
pub fn sdt_entries(table: &[u8], wide: bool) -> impl Iterator<Item = u64> + '_ {
    let step = if wide { 8 } else { 4 };
    let body = table.get(SDT_HEADER_LEN..).unwrap_or(&[]);
    body.chunks_exact(step)
        .take(MAX_SDT_ENTRIES)
        .map(move |c| {
            if wide {
                u64_at(c, 0).unwrap_or(0)
            } else {
                u64::from(u32_at(c, 0).unwrap_or(0))
            }
        })
        .filter(|&a| a != 0)
}

/// An enabled local APIC from the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalApic {
    pub apic_id: u32,
    /// ACPI processor UID.
    pub uid: u32,
    /// Listed by an x2APIC entry (type 9).
    pub x2apic: bool,
}

/// What the MADT says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Madt {
    /// The local APICs' physical address (with the type-5 override applied).
    pub lapic_addr: u64,
    /// PCAT_COMPAT: the machine also has dual 8259s.
    pub pcat_compat: bool,
    /// The enabled local APICs, in table order, without duplicates.
    pub lapics: heapless::Vec<LocalApic, MAX_LAPICS>,
    /// Enabled local APICs beyond `MAX_LAPICS`.
    pub dropped: usize,
    /// Entries whose length was impossible (the walk stopped at the first).
    pub malformed: bool,
    /// The I/O APICs (type 1), in table order.
    pub ioapics: heapless::Vec<IoApic, MAX_IOAPICS>,
    /// Interrupt source overrides (type 2): ISA IRQ → GSI with its signalling.
    pub overrides: heapless::Vec<IrqOverride, MAX_OVERRIDES>,
}

/// Most I/O APICs and interrupt source overrides kept.
pub const MAX_IOAPICS: usize = 8;
pub const MAX_OVERRIDES: usize = 16;

/// An I/O APIC from the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    /// Physical address of its register window.
    pub addr: u32,
    /// The GSI of its pin 0.
    pub gsi_base: u32,
}

/// How an interrupt line signals (MPS INTI flags; `None` = the bus's default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqOverride {
    /// The ISA IRQ (bus 0).
    pub source: u8,
    pub gsi: u32,
    /// `Some(true)` active low, `Some(false)` active high.
    pub active_low: Option<bool>,
    /// `Some(true)` level, `Some(false)` edge.
    pub level: Option<bool>,
}

/// Trigger and polarity of a GSI: the override for it if any, else ISA's defaults
/// (edge, active high) below 16 and PCI's (level, active low) above.
/// Returns `(level, active_low)`.
pub fn gsi_signal(overrides: &[IrqOverride], gsi: u32) -> (bool, bool) {
    let isa = gsi < 16;
    let o = overrides.iter().find(|o| o.gsi == gsi);
    let level = o.and_then(|o| o.level).unwrap_or(!isa);
    let low = o.and_then(|o| o.active_low).unwrap_or(!isa);
    (level, low)
}

/// The GSI an ISA IRQ arrives on (identity unless overridden).
pub fn isa_irq_to_gsi(overrides: &[IrqOverride], irq: u8) -> u32 {
    overrides
        .iter()
        .find(|o| o.source == irq)
        .map_or(u32::from(irq), |o| o.gsi)
}

const MADT_IOAPIC: u8 = 1;
const MADT_ISO: u8 = 2;
const MADT_LAPIC: u8 = 0;
const MADT_LAPIC_OVERRIDE: u8 = 5;
const MADT_X2APIC: u8 = 9;
const MADT_ENABLED: u32 = 1;

/// Parse a MADT ("APIC") table: the whole table, header included.
pub fn parse_madt(table: &[u8]) -> Result<Madt, Error> {
    let h = parse_header(table).ok_or(Error::Truncated("MADT header"))?;
    if &h.signature != b"APIC" {
        return Err(Error::WrongSignature);
    }
    // Trust the smaller of the stated length and the bytes we have.
    let table = table.get(..h.length as usize).unwrap_or(table);
    let mut m = Madt {
        lapic_addr: u64::from(u32_at(table, 36).ok_or(Error::Truncated("MADT"))?),
        pcat_compat: u32_at(table, 40).ok_or(Error::Truncated("MADT"))? & 1 != 0,
        ..Madt::default()
    };
    let mut off = 44usize;
    while let Some(&[ty, len]) = table.get(off..off + 2) {
        let len = usize::from(len);
        let Some(e) = table.get(off..off + len).filter(|_| len >= 2) else {
            m.malformed = true;
            break;
        };
        let found = match ty {
            MADT_LAPIC if len >= 8 => Some((
                LocalApic {
                    apic_id: u32::from(e[3]),
                    uid: u32::from(e[2]),
                    x2apic: false,
                },
                u32_at(e, 4).unwrap_or(0),
            )),
            MADT_X2APIC if len >= 16 => Some((
                LocalApic {
                    apic_id: u32_at(e, 4).unwrap_or(0),
                    uid: u32_at(e, 12).unwrap_or(0),
                    x2apic: true,
                },
                u32_at(e, 8).unwrap_or(0),
            )),
            MADT_IOAPIC if len >= 12 => {
                let io = IoApic {
                    id: e[2],
                    addr: u32_at(e, 4).unwrap_or(0),
                    gsi_base: u32_at(e, 8).unwrap_or(0),
                };
                let _ = m.ioapics.push(io);
                None
            }
            MADT_ISO if len >= 10 => {
                let flags = u16::from_le_bytes([e[8], e[9]]);
                let o = IrqOverride {
                    source: e[3],
                    gsi: u32_at(e, 4).unwrap_or(0),
                    active_low: match flags & 3 {
                        1 => Some(false),
                        3 => Some(true),
                        _ => None,
                    },
                    level: match (flags >> 2) & 3 {
                        1 => Some(false),
                        3 => Some(true),
                        _ => None,
                    },
                };
                if e[2] == 0 {
                    let _ = m.overrides.push(o);
                }
                None
            }
            MADT_LAPIC_OVERRIDE if len >= 12 => {
                if let Some(a) = u64_at(e, 4) {
                    m.lapic_addr = a;
                }
                None
            }
            _ => None,
        };
        if let Some((lapic, flags)) = found {
            let dup = m.lapics.iter().any(|l| l.apic_id == lapic.apic_id);
            if flags & MADT_ENABLED != 0 && !dup && m.lapics.push(lapic).is_err() {
                m.dropped += 1;
            }
        }
        off += len;
    }
    Ok(m)
}

/// A register block in I/O port space (the only kind the power-off path drives).
pub type Port = u16;

/// What we use of the FADT ("FACP").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fadt {
    /// Physical address of the DSDT (X_DSDT when present).
    pub dsdt: u64,
    /// SMI command port and the value that switches the chipset to ACPI mode.
    pub smi_cmd: u32,
    pub acpi_enable: u8,
    pub pm1a_cnt: Option<Port>,
    pub pm1b_cnt: Option<Port>,
    /// The ACPI PM timer (3.579545 MHz) and whether it counts 32 bits (else 24).
    pub pm_tmr: Option<Port>,
    pub pm_tmr_32bit: bool,
    /// HW_REDUCED_ACPI: no PM1 blocks; sleep goes through other registers.
    pub hw_reduced: bool,
}

/// A Generic Address Structure at `off`, if it names system I/O space.
fn gas_port(t: &[u8], off: usize) -> Option<Option<Port>> {
    let g = t.get(off..off + 12)?;
    let addr = u64_at(g, 4)?;
    if addr == 0 {
        return Some(None);
    }
    // Address space 1 = system I/O. Memory-mapped PM blocks are not supported.
    Some(if g[0] == 1 {
        Port::try_from(addr).ok()
    } else {
        None
    })
}

fn legacy_port(t: &[u8], off: usize) -> Option<Port> {
    u32_at(t, off)
        .filter(|&p| p != 0)
        .and_then(|p| Port::try_from(p).ok())
}

/// Parse a FADT ("FACP"): the whole table, header included.
pub fn parse_fadt(table: &[u8]) -> Result<Fadt, Error> {
    let h = parse_header(table).ok_or(Error::Truncated("FADT header"))?;
    if &h.signature != b"FACP" {
        return Err(Error::WrongSignature);
    }
    let t = table.get(..h.length as usize).unwrap_or(table);
    // ACPI 1.0's FADT is 116 bytes; everything we need before the flags is there.
    if t.len() < 116 {
        return Err(Error::Truncated("FADT"));
    }
    let flags = u32_at(t, 112).unwrap_or(0);
    let mut f = Fadt {
        dsdt: u64::from(u32_at(t, 40).unwrap_or(0)),
        smi_cmd: u32_at(t, 48).unwrap_or(0),
        acpi_enable: t[52],
        pm1a_cnt: legacy_port(t, 64),
        pm1b_cnt: legacy_port(t, 68),
        pm_tmr: legacy_port(t, 76).filter(|_| t[91] >= 4),
        pm_tmr_32bit: flags & (1 << 8) != 0,
        hw_reduced: flags & (1 << 20) != 0,
    };
    // ACPI 2.0+ extended fields win where present and non-zero.
    if let Some(x) = u64_at(t, 140).filter(|&a| a != 0) {
        f.dsdt = x;
    }
    if let Some(Some(p)) = gas_port(t, 172) {
        f.pm1a_cnt = Some(p);
    }
    if let Some(Some(p)) = gas_port(t, 184) {
        f.pm1b_cnt = Some(p);
    }
    if let Some(Some(p)) = gas_port(t, 208) {
        f.pm_tmr = Some(p);
    }
    Ok(f)
}

/// The SLP_TYPa and SLP_TYPb values of a sleep state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SleepType {
    pub a: u8,
    pub b: u8,
}

/// Decode one AML integer of the kind `_Sx_` packages hold: ZeroOp, OneOp, or
/// BytePrefix + byte (Word/DWord prefixes are accepted and cut to their low byte).
/// Returns the value and the bytes used.
fn aml_small_int(b: &[u8]) -> Option<(u8, usize)> {
    match *b.first()? {
        0x00 => Some((0, 1)),
        0x01 => Some((1, 1)),
        0x0a => Some((*b.get(1)?, 2)),
        0x0b => Some((*b.get(1)?, 3)).filter(|_| b.len() >= 3),
        0x0c => Some((*b.get(1)?, 5)).filter(|_| b.len() >= 5),
        _ => None,
    }
}

/// Find `Name(_S5_, Package(){ a, b, ... })` in an AML byte stream (the DSDT, header
/// included or not). A byte scan, as most small kernels do, not an AML interpreter:
/// it takes the first `_S5_` that is preceded by NameOp and followed by PackageOp.
pub fn find_s5(aml: &[u8]) -> Option<SleepType> {
    let mut i = 0usize;
    while let Some(pos) = aml
        .get(i..)?
        .windows(4)
        .position(|w| w == b"_S5_")
        .map(|p| p + i)
    {
        i = pos + 1;
        // NameOp directly before, or NameOp then the root prefix '\'.
        let name_op = pos >= 1 && aml[pos - 1] == 0x08
            || pos >= 2 && aml[pos - 1] == b'\\' && aml[pos - 2] == 0x08;
        if !name_op || aml.get(pos + 4) != Some(&0x12) {
            continue;
        }
        // PackageOp PkgLength NumElements elements...
        let Some(&lead) = aml.get(pos + 5) else {
            continue;
        };
        let pkglen_bytes = 1 + usize::from(lead >> 6);
        let elems = pos + 5 + pkglen_bytes + 1;
        let Some((a, used)) = aml.get(elems..).and_then(aml_small_int) else {
            continue;
        };
        let b = aml
            .get(elems + used..)
            .and_then(aml_small_int)
            .map_or(0, |(b, _)| b);
        return Some(SleepType { a, b });
    }
    None
}

/// Everything we learnt from the ACPI tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    pub rsdp: Option<Rsdp>,
    pub madt: Option<Madt>,
    pub fadt: Option<Fadt>,
    pub s5: Option<SleepType>,
    /// Signatures of tables whose checksum was wrong (used anyway, as Linux does).
    pub bad_checksums: heapless::Vec<[u8; 4], 8>,
}

/// Walk the tables from the RSDP at `rsdp_pa`. `map(pa, len)` gives the `len` bytes
/// of physical memory at `pa`, or `None` if they cannot be read.
pub fn parse_tables<'a>(
    rsdp_pa: u64,
    map: impl Fn(u64, usize) -> Option<&'a [u8]>,
) -> Result<Tables, Error> {
    let rsdp = map(rsdp_pa, 36)
        .or_else(|| map(rsdp_pa, 20))
        .and_then(parse_rsdp)
        .ok_or(Error::NoRsdp)?;
    let mut t = Tables {
        rsdp: Some(rsdp),
        ..Tables::default()
    };
    // A whole table at `pa`, its length taken (bounded) from its header.
    let table = |pa: u64, t: &mut Tables| -> Option<&'a [u8]> {
        let h = parse_header(map(pa, SDT_HEADER_LEN)?)?;
        let len = h.length as usize;
        if !(SDT_HEADER_LEN..=MAX_TABLE_LEN).contains(&len) {
            return None;
        }
        let b = map(pa, len)?;
        if checksum(b) != 0 {
            let _ = t.bad_checksums.push(h.signature);
        }
        Some(b)
    };
    let (root, wide) = match rsdp.xsdt.and_then(|x| table(x, &mut t)) {
        Some(x) => (x, true),
        None => (
            table(u64::from(rsdp.rsdt), &mut t).ok_or(Error::BadRoot)?,
            false,
        ),
    };
    let want: &[u8; 4] = if wide { b"XSDT" } else { b"RSDT" };
    if root.get(..4) != Some(&want[..]) {
        return Err(Error::BadRoot);
    }
    for pa in sdt_entries(root, wide) {
        let Some(b) = table(pa, &mut t) else {
            continue;
        };
        match b.get(..4) {
            Some(b"APIC") if t.madt.is_none() => t.madt = parse_madt(b).ok(),
            Some(b"FACP") if t.fadt.is_none() => t.fadt = parse_fadt(b).ok(),
            _ => {}
        }
    }
    if let Some(dsdt) = t.fadt.map(|f| f.dsdt).filter(|&d| d != 0) {
        if let Some(b) = table(dsdt, &mut t) {
            t.s5 = find_s5(b.get(SDT_HEADER_LEN..).unwrap_or(&[]));
        }
    }
    Ok(t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point
mod tests {
    use super::*;

    fn fix_checksum(t: &mut [u8], at: usize) {
        t[at] = 0;
        t[at] = 0u8.wrapping_sub(checksum(t));
    }

    fn sdt(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; SDT_HEADER_LEN];
        t[..4].copy_from_slice(sig);
        let len = (SDT_HEADER_LEN + body.len()) as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        t[8] = 2;
        t.extend_from_slice(body);
        fix_checksum(&mut t, 9);
        t
    }

    fn madt_body(entries: &[&[u8]]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        for e in entries {
            b.extend_from_slice(e);
        }
        b
    }

    const LAPIC0: [u8; 8] = [0, 8, 0, 0, 1, 0, 0, 0];
    const LAPIC1: [u8; 8] = [0, 8, 1, 1, 1, 0, 0, 0];
    const LAPIC_OFF: [u8; 8] = [0, 8, 2, 2, 0, 0, 0, 0];
    const IOAPIC: [u8; 12] = [1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0];
    const X2APIC_300: [u8; 16] = [9, 16, 0, 0, 0x2c, 1, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0];

    #[test]
    fn madt_lists_enabled_lapics() {
        let t = sdt(
            b"APIC",
            &madt_body(&[&LAPIC0, &IOAPIC, &LAPIC1, &LAPIC_OFF, &X2APIC_300]),
        );
        let m = parse_madt(&t).unwrap();
        assert_eq!(m.lapic_addr, 0xfee0_0000);
        assert!(m.pcat_compat);
        let ids: Vec<_> = m
            .lapics
            .iter()
            .map(|l| (l.apic_id, l.uid, l.x2apic))
            .collect();
        assert_eq!(ids, vec![(0, 0, false), (1, 1, false), (300, 7, true)]);
        assert!(!m.malformed);
    }

    #[test]
    fn madt_ioapics_and_overrides() {
        // QEMU's i440fx: IRQ0 -> GSI2 (conforming), IRQ5/9/10/11 level, active high.
        let iso = |src: u8, gsi: u32, flags: u16| {
            let mut e = vec![2u8, 10, 0, src];
            e.extend_from_slice(&gsi.to_le_bytes());
            e.extend_from_slice(&flags.to_le_bytes());
            e
        };
        let (i0, i5, i9, bad_bus) = (iso(0, 2, 0), iso(5, 5, 0xd), iso(9, 9, 0xd), {
            let mut e = iso(7, 7, 0xf);
            e[2] = 1;
            e
        });
        let io2: [u8; 12] = [1, 12, 1, 0, 0, 0x10, 0xc0, 0xfe, 24, 0, 0, 0];
        let short_io: [u8; 4] = [1, 4, 0, 0];
        let t = sdt(
            b"APIC",
            &madt_body(&[&LAPIC0, &IOAPIC, &i0, &i5, &i9, &bad_bus, &io2, &short_io]),
        );
        let m = parse_madt(&t).unwrap();
        assert_eq!(
            m.ioapics.as_slice(),
            &[
                IoApic {
                    id: 0,
                    addr: 0xfec0_0000,
                    gsi_base: 0
                },
                IoApic {
                    id: 1,
                    addr: 0xfec0_1000,
                    gsi_base: 24
                }
            ]
        );
        assert_eq!(m.overrides.len(), 3, "only bus 0 (ISA) overrides are kept");
        let o = &m.overrides;
        assert_eq!(isa_irq_to_gsi(o, 0), 2);
        assert_eq!(isa_irq_to_gsi(o, 4), 4);
        // Conforming flags on IRQ0's override: ISA defaults.
        assert_eq!(gsi_signal(o, 2), (false, false));
        assert_eq!(gsi_signal(o, 4), (false, false));
        // Level, active high from the override.
        assert_eq!(gsi_signal(o, 5), (true, false));
        assert_eq!(gsi_signal(o, 9), (true, false));
        // A PCI GSI without override: level, active low.
        assert_eq!(gsi_signal(o, 16), (true, true));
        assert_eq!(gsi_signal(o, 11), (false, false));
    }

    #[test]
    fn madt_arbitrary_entries_never_panic() {
        // Pseudo-random entry streams (types 0..=10, any length): the walk stays in
        // bounds and the lists stay bounded.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut body = Vec::new();
            for _ in 0..(x % 40) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let ty = (x >> 33) as u8 % 11;
                let len = (x >> 40) as u8 % 20;
                let mut e = vec![ty, len];
                e.extend((0..len.saturating_sub(2)).map(|i| (x >> (i % 56)) as u8));
                body.extend(e);
            }
            let t = sdt(b"APIC", &madt_body(&[&body]));
            let m = parse_madt(&t).unwrap();
            assert!(m.ioapics.len() <= MAX_IOAPICS && m.overrides.len() <= MAX_OVERRIDES);
            for g in 0..30 {
                let _ = gsi_signal(&m.overrides, g);
            }
        }
    }

    #[test]
    fn madt_duplicates_and_override() {
        let ovr: [u8; 12] = [5, 12, 0, 0, 0, 0, 0xd0, 0xfe, 0, 0, 0, 0];
        let x2_0: [u8; 16] = [9, 16, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        let t = sdt(b"APIC", &madt_body(&[&LAPIC0, &x2_0, &ovr]));
        let m = parse_madt(&t).unwrap();
        assert_eq!(m.lapics.len(), 1);
        assert_eq!(m.lapic_addr, 0xfed0_0000);
    }

    #[test]
    fn madt_malformed_entries_stop_the_walk() {
        // A zero-length entry would loop forever; an entry past the end is cut.
        let zero: [u8; 2] = [0, 0];
        let t = sdt(b"APIC", &madt_body(&[&LAPIC0, &zero, &LAPIC1]));
        let m = parse_madt(&t).unwrap();
        assert_eq!(m.lapics.len(), 1);
        assert!(m.malformed);
        let long: [u8; 4] = [0, 200, 1, 1];
        let t = sdt(b"APIC", &madt_body(&[&LAPIC0, &long]));
        let m = parse_madt(&t).unwrap();
        assert_eq!(m.lapics.len(), 1);
        assert!(m.malformed);
        // A short type-0 entry is skipped, not read past.
        let short: [u8; 4] = [0, 4, 3, 3];
        let t = sdt(b"APIC", &madt_body(&[&short, &LAPIC1]));
        assert_eq!(parse_madt(&t).unwrap().lapics.len(), 1);
    }

    #[test]
    fn madt_length_field_lies() {
        let mut t = sdt(b"APIC", &madt_body(&[&LAPIC0, &LAPIC1]));
        // Claims more than there is: parse what is there.
        t[4..8].copy_from_slice(&10_000u32.to_le_bytes());
        assert_eq!(parse_madt(&t).unwrap().lapics.len(), 2);
        // Claims less: the second entry is outside the table.
        t[4..8].copy_from_slice(&(36u32 + 8 + 8 + 4).to_le_bytes());
        let m = parse_madt(&t).unwrap();
        assert_eq!(m.lapics.len(), 1);
        assert!(m.malformed);
        assert!(parse_madt(&t[..20]).is_err());
        assert!(parse_madt(&t[..40]).is_err());
    }

    #[test]
    fn madt_too_many_cpus() {
        let mut entries = Vec::new();
        for i in 0..300u32 {
            let mut e = [9u8, 16, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
            e[4..8].copy_from_slice(&i.to_le_bytes());
            entries.push(e);
        }
        let refs: Vec<&[u8]> = entries.iter().map(|e| &e[..]).collect();
        let m = parse_madt(&sdt(b"APIC", &madt_body(&refs))).unwrap();
        assert_eq!(m.lapics.len(), MAX_LAPICS);
        assert_eq!(m.dropped, 300 - MAX_LAPICS);
    }

    /// A FADT with PM1a_CNT 0x604, PM timer 0x608, DSDT at `dsdt`.
    fn fadt(dsdt: u32, extended: bool) -> Vec<u8> {
        let mut b = vec![0u8; if extended { 244 } else { 116 } - SDT_HEADER_LEN];
        let at = |o: usize| o - SDT_HEADER_LEN;
        b[at(40)..at(44)].copy_from_slice(&dsdt.to_le_bytes());
        b[at(48)..at(52)].copy_from_slice(&0xb2u32.to_le_bytes());
        b[at(52)] = 0xf1;
        b[at(64)..at(68)].copy_from_slice(&0x604u32.to_le_bytes());
        b[at(76)..at(80)].copy_from_slice(&0x608u32.to_le_bytes());
        b[at(91)] = 4;
        b[at(112)..at(116)].copy_from_slice(&(1u32 << 8).to_le_bytes());
        if extended {
            // X_PM1a_CNT_BLK: system I/O, 16 bits, port 0x1804.
            b[at(172)] = 1;
            b[at(173)] = 16;
            b[at(176)..at(184)].copy_from_slice(&0x1804u64.to_le_bytes());
            // X_PM_TMR_BLK in memory space: ignored, the legacy port stays.
            b[at(208)] = 0;
            b[at(212)..at(220)].copy_from_slice(&0xfed0_0000u64.to_le_bytes());
        }
        sdt(b"FACP", &b)
    }

    #[test]
    fn fadt_fields() {
        let f = parse_fadt(&fadt(0x1234, false)).unwrap();
        assert_eq!(f.dsdt, 0x1234);
        assert_eq!(f.pm1a_cnt, Some(0x604));
        assert_eq!(f.pm1b_cnt, None);
        assert_eq!(f.pm_tmr, Some(0x608));
        assert!(f.pm_tmr_32bit);
        assert_eq!((f.smi_cmd, f.acpi_enable), (0xb2, 0xf1));
        let f = parse_fadt(&fadt(0x1234, true)).unwrap();
        assert_eq!(f.pm1a_cnt, Some(0x1804));
        assert_eq!(f.pm_tmr, Some(0x608));
        assert!(parse_fadt(&fadt(0x1234, false)[..100]).is_err());
    }

    #[test]
    fn s5_forms() {
        // Name(_S5_, Package(4){ 0x05, 0x05, 0, 0 }) with BytePrefix.
        let a = [
            0x10, 0x08, b'_', b'S', b'5', b'_', 0x12, 0x0a, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0, 0,
        ];
        assert_eq!(find_s5(&a), Some(SleepType { a: 5, b: 5 }));
        // QEMU's: Name(\_S5, Package(4){ Zero, Zero, Zero, Zero }).
        let q = [
            0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0, 0, 0, 0,
        ];
        assert_eq!(find_s5(&q), Some(SleepType { a: 0, b: 0 }));
        // A two-byte PkgLength, OneOp values, and a decoy _S5_ (a method call) first.
        let m = [
            b'_', b'S', b'5', b'_', 0x70, 0x08, b'_', b'S', b'5', b'_', 0x12, 0x40, 0x01, 0x02,
            0x01, 0x01,
        ];
        assert_eq!(find_s5(&m), Some(SleepType { a: 1, b: 1 }));
        // Cut short anywhere: no panic, no answer.
        for n in 0..a.len() {
            let r = find_s5(&a[..n]);
            assert!(r.is_none() || n >= 11, "{n}: {r:?}");
        }
        assert_eq!(find_s5(b"nothing"), None);
    }

    #[test]
    fn rsdp_scan() {
        let mut area = vec![0u8; 256];
        let mut r = [0u8; 36];
        r[..8].copy_from_slice(b"RSD PTR ");
        r[15] = 2;
        r[16..20].copy_from_slice(&0x1000u32.to_le_bytes());
        r[20..24].copy_from_slice(&36u32.to_le_bytes());
        r[24..32].copy_from_slice(&0x2000u64.to_le_bytes());
        fix_checksum(&mut r[..20], 8);
        fix_checksum(&mut r, 32);
        area[0x40..0x40 + 36].copy_from_slice(&r);
        // A copy with a bad checksum earlier on is skipped.
        area[0x10..0x18].copy_from_slice(b"RSD PTR ");
        assert_eq!(scan_rsdp(&area), Some(0x40));
        let p = parse_rsdp(&area[0x40..]).unwrap();
        assert_eq!(p.rsdt, 0x1000);
        assert_eq!(p.xsdt, Some(0x2000));
        // Bad extended checksum: fall back to the RSDT only.
        area[0x40 + 33] ^= 0xff;
        assert_eq!(parse_rsdp(&area[0x40..]).unwrap().xsdt, None);
        assert_eq!(scan_rsdp(&area[..0x48]), None);
    }

    /// A small physical memory with RSDP → XSDT → {MADT, FACP → DSDT}.
    #[test]
    fn whole_walk() {
        let mut mem = vec![0u8; 0x10000];
        let put = |mem: &mut Vec<u8>, at: usize, b: &[u8]| mem[at..at + b.len()].copy_from_slice(b);
        let madt = sdt(b"APIC", &madt_body(&[&LAPIC0, &LAPIC1, &LAPIC_OFF]));
        let f = fadt(0x4000, false);
        let dsdt = sdt(
            b"DSDT",
            &[
                0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x0a, 0x07, 0, 0, 0,
            ],
        );
        let mut xsdt_body = Vec::new();
        xsdt_body.extend_from_slice(&0x2000u64.to_le_bytes());
        xsdt_body.extend_from_slice(&0xdead_0000u64.to_le_bytes()); // unmapped: skipped
        xsdt_body.extend_from_slice(&0x3000u64.to_le_bytes());
        let xsdt = sdt(b"XSDT", &xsdt_body);
        let mut r = [0u8; 36];
        r[..8].copy_from_slice(b"RSD PTR ");
        r[15] = 2;
        r[20..24].copy_from_slice(&36u32.to_le_bytes());
        r[24..32].copy_from_slice(&0x1000u64.to_le_bytes());
        fix_checksum(&mut r[..20], 8);
        fix_checksum(&mut r, 32);
        put(&mut mem, 0x100, &r);
        put(&mut mem, 0x1000, &xsdt);
        put(&mut mem, 0x2000, &madt);
        let mut f = f;
        f[50] ^= 1; // break the FADT's checksum: reported, still used
        put(&mut mem, 0x3000, &f);
        put(&mut mem, 0x4000, &dsdt);
        let map = |pa: u64, len: usize| mem.get(pa as usize..(pa as usize).checked_add(len)?);
        let t = parse_tables(0x100, map).unwrap();
        assert_eq!(t.madt.as_ref().unwrap().lapics.len(), 2);
        assert_eq!(t.fadt.unwrap().pm1a_cnt, Some(0x604));
        assert_eq!(t.s5, Some(SleepType { a: 7, b: 0 }));
        assert_eq!(&t.bad_checksums[..], &[*b"FACP"]);
        assert_eq!(parse_tables(0x200, map), Err(Error::NoRsdp));
    }

    #[test]
    fn hostile_root_table() {
        let mut mem = vec![0u8; 0x3000];
        let mut r = [0u8; 20];
        r[..8].copy_from_slice(b"RSD PTR ");
        r[16..20].copy_from_slice(&0x1000u32.to_le_bytes());
        fix_checksum(&mut r, 8);
        mem[..20].copy_from_slice(&r);
        // An RSDT claiming 4 GiB.
        mem[0x1000..0x1004].copy_from_slice(b"RSDT");
        mem[0x1004..0x1008].copy_from_slice(&u32::MAX.to_le_bytes());
        let map = |pa: u64, len: usize| mem.get(pa as usize..(pa as usize).checked_add(len)?);
        assert_eq!(parse_tables(0, map), Err(Error::BadRoot));
    }
}
