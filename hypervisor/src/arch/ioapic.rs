//! The I/O APICs: device interrupts (GSIs) to vectors on CPU 0.
//!
//! At boot every pin is masked. A GSI given to the control domain
//! (`PHYSDEVOP_map_pirq`, `EVTCHNOP_bind_pirq`) gets vector `VECTOR_GSI_BASE + gsi`,
//! fixed delivery to CPU 0 in physical mode, and the trigger mode and polarity of the
//! MADT's interrupt source override (or `PHYSDEVOP_setup_gsi`), else ISA's defaults
//! (edge, active high) below 16 and PCI's (level, active low) above. Policy (who owns
//! a GSI, when a pin is unmasked) is `hv_core::pirq`; this module only writes the
//! registers.
//!
//! Lock: `IOAPICS` is a leaf (it takes no other lock) and is taken by interrupt
//! handlers too, always with interrupts off.

use crate::acpi::{self, IrqOverride, Madt};
use crate::mem;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;

/// Vector of GSI `g` is `VECTOR_GSI_BASE + g` (0x30..0x6f: below the guests' `int
/// 0x80` and the hypervisor's IPIs at 0xf0.., above the remapped 8259s).
pub const VECTOR_GSI_BASE: u8 = 0x30;
/// GSIs we route (vectors 0x30..0x6f).
pub const MAX_GSIS: u32 = 64;

const REG_VERSION: u32 = 1;
const REG_REDIR: u32 = 0x10;
const RTE_MASKED: u32 = 1 << 16;
const RTE_LEVEL: u32 = 1 << 15;
const RTE_ACTIVE_LOW: u32 = 1 << 13;

#[derive(Clone, Copy)]
struct Chip {
    /// Direct-map address of the register window.
    va: u64,
    gsi_base: u32,
    pins: u32,
}

struct IoApics {
    chips: heapless::Vec<Chip, { acpi::MAX_IOAPICS }>,
    /// (level, active low) per GSI.
    signal: [(bool, bool); MAX_GSIS as usize],
}

static IOAPICS: Mutex<IoApics> = Mutex::new(IoApics {
    chips: heapless::Vec::new(),
    signal: [(false, false); MAX_GSIS as usize],
});
/// Number of GSIs routed (0: no I/O APIC).
static NR_GSIS: AtomicU32 = AtomicU32::new(0);
/// GSIs the hypervisor keeps (bit per GSI): the timer's and COM1's.
static RESERVED: AtomicU32 = AtomicU32::new(0);
/// The local APIC ID of CPU 0 (the destination of every GSI).
static DEST: AtomicU32 = AtomicU32::new(0);

impl Chip {
    fn read(&self, reg: u32) -> u32 {
        // SAFETY: `va` is the I/O APIC's register window in the direct map (made
        // uncached by `init`); IOREGSEL at +0 selects, IOWIN at +0x10 reads. Callers hold
        // `IOAPICS`, so the select/read pair is not interleaved with another CPU's.
        unsafe {
            core::ptr::write_volatile(self.va as *mut u32, reg);
            core::ptr::read_volatile((self.va + 0x10) as *const u32)
        }
    }

    fn write(&self, reg: u32, val: u32) {
        // SAFETY: as `read`; writing I/O APIC registers touches no memory.
        unsafe {
            core::ptr::write_volatile(self.va as *mut u32, reg);
            core::ptr::write_volatile((self.va + 0x10) as *mut u32, val);
        }
    }
}

impl IoApics {
    fn chip(&self, gsi: u32) -> Option<(Chip, u32)> {
        self.chips
            .iter()
            .find(|c| gsi >= c.gsi_base && gsi - c.gsi_base < c.pins)
            .map(|c| (*c, gsi - c.gsi_base))
    }

    fn set_mask(&self, gsi: u32, masked: bool) {
        let Some((c, pin)) = self.chip(gsi) else {
            return;
        };
        let lo = c.read(REG_REDIR + 2 * pin);
        let lo = if masked {
            lo | RTE_MASKED
        } else {
            lo & !RTE_MASKED
        };
        c.write(REG_REDIR + 2 * pin, lo);
    }

    /// Program `gsi`'s redirection entry (vector, CPU 0, signal), masked.
    fn program(&self, gsi: u32) {
        let Some((c, pin)) = self.chip(gsi) else {
            return;
        };
        let (level, low) = self
            .signal
            .get(gsi as usize)
            .copied()
            .unwrap_or((false, false));
        let mut lo = (u32::from(VECTOR_GSI_BASE) + gsi) | RTE_MASKED;
        if level {
            lo |= RTE_LEVEL;
        }
        if low {
            lo |= RTE_ACTIVE_LOW;
        }
        c.write(REG_REDIR + 2 * pin, RTE_MASKED);
        c.write(REG_REDIR + 2 * pin + 1, DEST.load(Ordering::Relaxed) << 24);
        c.write(REG_REDIR + 2 * pin, lo);
    }
}

/// Make the direct map's 2 MiB page holding `pa` uncached (PCD|PWT), if it is in the
/// top 32 MiB below 4 GiB, where x86 machines keep their interrupt controllers and no
/// RAM. Boot CPU, before the other CPUs start (their TLBs are still empty).
fn make_uncached(pa: u64) {
    if !(0xfe00_0000..0x1_0000_0000).contains(&pa) {
        return;
    }
    const PCD_PWT: u64 = (1 << 4) | (1 << 3);
    const PSE: u64 = 1 << 7;
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack)) };
    let entry = |table: u64, i: u64| mem::phys_to_virt((table & 0x000f_ffff_ffff_f000) + i * 8);
    let va = mem::phys_to_virt(pa);
    // SAFETY: the current L4 and the direct map's L3/L2 are the hypervisor's own tables,
    // mapped in the direct map; the walk reads entries at in-range indices and rewrites
    // one 2 MiB leaf of the direct map that maps MMIO (checked above), changing only its
    // cache attributes, then flushes it from this CPU's TLB.
    unsafe {
        let l4e = core::ptr::read_volatile(entry(cr3, (va >> 39) & 511) as *const u64);
        if l4e & 1 == 0 {
            return;
        }
        let l3e = core::ptr::read_volatile(entry(l4e, (va >> 30) & 511) as *const u64);
        if l3e & 1 == 0 || l3e & PSE != 0 {
            return;
        }
        let l2p = entry(l3e, (va >> 21) & 511) as *mut u64;
        let l2e = core::ptr::read_volatile(l2p);
        if l2e & 1 == 0 || l2e & PSE == 0 {
            return;
        }
        core::ptr::write_volatile(l2p, l2e | PCD_PWT);
        core::arch::asm!("invlpg [{}]", in(reg) va, options(nostack));
    }
}

/// Find the I/O APICs in the MADT, map them uncached, mask every pin, and record the
/// GSIs the hypervisor keeps. Boot CPU, once, interrupts off, before the other CPUs.
pub fn init(madt: Option<&Madt>) {
    let Some(m) = madt else {
        log::warn!("ioapic: no MADT: no device interrupts");
        return;
    };
    DEST.store(super::apic::id(), Ordering::Relaxed);
    let mut g = IOAPICS.lock();
    let mut nr = 0u32;
    for io in m.ioapics.iter() {
        let pa = u64::from(io.addr);
        if pa == 0 || pa >= mem::MAX_PHYS {
            continue;
        }
        make_uncached(pa);
        let mut c = Chip {
            va: mem::phys_to_virt(pa),
            gsi_base: io.gsi_base,
            pins: 0,
        };
        c.pins = ((c.read(REG_VERSION) >> 16) & 0xff) + 1;
        for pin in 0..c.pins {
            c.write(REG_REDIR + 2 * pin, RTE_MASKED);
        }
        log::info!(
            "ioapic: id {} at {:#x}, GSIs {}..{}",
            io.id,
            pa,
            c.gsi_base,
            c.gsi_base + c.pins - 1
        );
        nr = nr.max(c.gsi_base.saturating_add(c.pins));
        let _ = g.chips.push(c);
    }
    let ovr: &[IrqOverride] = &m.overrides;
    for gsi in 0..MAX_GSIS {
        if let Some(s) = g.signal.get_mut(gsi as usize) {
            *s = acpi::gsi_signal(ovr, gsi);
        }
    }
    let mut reserved = 0u32;
    for irq in [0u8, 2, 4] {
        for gsi in [u32::from(irq), acpi::isa_irq_to_gsi(ovr, irq)] {
            if gsi < 32 {
                reserved |= 1 << gsi;
            }
        }
    }
    RESERVED.store(reserved, Ordering::Relaxed);
    NR_GSIS.store(nr.min(MAX_GSIS), Ordering::Release);
}

/// GSIs that may be given to a guest are `0..nr_gsis()`.
pub fn nr_gsis() -> u32 {
    NR_GSIS.load(Ordering::Acquire)
}

/// Whether the hypervisor keeps `gsi` (the timer's, COM1's).
pub fn reserved(gsi: u32) -> bool {
    gsi < 32 && RESERVED.load(Ordering::Relaxed) & (1 << gsi) != 0
}

/// `PHYSDEVOP_setup_gsi`: record how `gsi` signals (used when it is next programmed).
pub fn set_signal(gsi: u32, level: bool, active_low: bool) {
    if let Some(s) = IOAPICS.lock().signal.get_mut(gsi as usize) {
        *s = (level, active_low);
    }
}

/// Whether `gsi` is level-triggered.
pub fn is_level(gsi: u32) -> bool {
    IOAPICS.lock().signal.get(gsi as usize).is_some_and(|s| s.0)
}

/// Program `gsi`'s entry (vector, CPU 0, its signal) and leave it masked.
pub fn route(gsi: u32) {
    if gsi < nr_gsis() {
        IOAPICS.lock().program(gsi);
    }
}

pub fn mask(gsi: u32) {
    IOAPICS.lock().set_mask(gsi, true);
}

pub fn unmask(gsi: u32) {
    if gsi < nr_gsis() && !reserved(gsi) {
        IOAPICS.lock().set_mask(gsi, false);
    }
}

/// The GSI whose vector `v` is, if it is a device vector.
pub fn vector_to_gsi(v: u8) -> Option<u32> {
    let g = u32::from(v.checked_sub(VECTOR_GSI_BASE)?);
    (g < nr_gsis()).then_some(g)
}
