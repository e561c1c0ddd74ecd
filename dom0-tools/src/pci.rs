//! PCI configuration space: the addressing of configuration mechanism #1 (I/O ports
//! `0xCF8`/`0xCFC`), bus enumeration, type-0 header parsing, BAR sizing, the
//! capability list and the command register.
//!
//! Everything here runs over two small traits the kernel glue implements: [`PortIo`]
//! (the `in`/`out` instructions dom0 may execute with its I/O privilege) and
//! [`ConfigSpace`] (32-bit configuration reads and writes; [`Mechanism1`] implements it
//! over any [`PortIo`]). Values read from a device are never trusted to be sane: a
//! capability list that loops or points into the header, a 64-bit BAR in the last slot,
//! or an all-ones BAR are reported, never followed blindly.

use alloc::vec::Vec;
use core::fmt;

/// The `in`/`out` instructions, as the kernel glue provides them.
///
/// Implemented for `&mut P` too, so one port accessor can serve several users in turn.
pub trait PortIo {
    /// `inb`.
    fn in8(&mut self, port: u16) -> u8;
    /// `inw`.
    fn in16(&mut self, port: u16) -> u16;
    /// `inl`.
    fn in32(&mut self, port: u16) -> u32;
    /// `outb`.
    fn out8(&mut self, port: u16, val: u8);
    /// `outw`.
    fn out16(&mut self, port: u16, val: u16);
    /// `outl`.
    fn out32(&mut self, port: u16, val: u32);
}

impl<P: PortIo + ?Sized> PortIo for &mut P {
    fn in8(&mut self, port: u16) -> u8 {
        (**self).in8(port)
    }
    fn in16(&mut self, port: u16) -> u16 {
        (**self).in16(port)
    }
    fn in32(&mut self, port: u16) -> u32 {
        (**self).in32(port)
    }
    fn out8(&mut self, port: u16, val: u8) {
        (**self).out8(port, val)
    }
    fn out16(&mut self, port: u16, val: u16) {
        (**self).out16(port, val)
    }
    fn out32(&mut self, port: u16, val: u32) {
        (**self).out32(port, val)
    }
}

/// A PCI function's address: bus, device (0..32), function (0..8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    bus: u8,
    dev: u8,
    func: u8,
}

impl Bdf {
    /// The function `bus:dev.func`; `None` if `dev >= 32` or `func >= 8`.
    pub const fn new(bus: u8, dev: u8, func: u8) -> Option<Bdf> {
        if dev < 32 && func < 8 {
            Some(Bdf { bus, dev, func })
        } else {
            None
        }
    }

    /// The bus number.
    pub const fn bus(self) -> u8 {
        self.bus
    }

    /// The device number (0..32).
    pub const fn dev(self) -> u8 {
        self.dev
    }

    /// The function number (0..8).
    pub const fn func(self) -> u8 {
        self.func
    }

    /// The value written to `0xCF8` to reach the dword holding register `off`:
    /// `0x8000_0000 | bus << 16 | dev << 11 | func << 8 | off & 0xfc`.
    pub const fn config_address(self, off: u8) -> u32 {
        0x8000_0000
            | (self.bus as u32) << 16
            | (self.dev as u32) << 11
            | (self.func as u32) << 8
            | (off & 0xfc) as u32
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{:x}", self.bus, self.dev, self.func)
    }
}

/// 32-bit access to PCI configuration space (the first 256 bytes of each function).
///
/// `off` is a byte offset; implementations use `off & 0xfc`. The 8- and 16-bit helpers
/// are built on the 32-bit primitives. The narrow *writes* are read-modify-write of the
/// whole dword, so they must not be used on a dword holding write-1-to-clear bits the
/// caller does not mean to clear (the status register shares a dword with the command
/// register: use [`set_command`] for that one).
pub trait ConfigSpace {
    /// Reads the dword at `off & 0xfc`.
    fn read32(&mut self, bdf: Bdf, off: u8) -> u32;
    /// Writes the dword at `off & 0xfc`.
    fn write32(&mut self, bdf: Bdf, off: u8, val: u32);

    /// Reads the 16-bit register at `off & 0xfe`.
    fn read16(&mut self, bdf: Bdf, off: u8) -> u16 {
        let shift = u32::from(off & 2) * 8;
        (self.read32(bdf, off) >> shift) as u16
    }

    /// Reads the byte at `off`.
    fn read8(&mut self, bdf: Bdf, off: u8) -> u8 {
        let shift = u32::from(off & 3) * 8;
        (self.read32(bdf, off) >> shift) as u8
    }

    /// Writes the 16-bit register at `off & 0xfe` (read-modify-write of its dword).
    fn write16(&mut self, bdf: Bdf, off: u8, val: u16) {
        let shift = u32::from(off & 2) * 8;
        let old = self.read32(bdf, off);
        let new = (old & !(0xffff << shift)) | u32::from(val) << shift;
        self.write32(bdf, off, new);
    }

    /// Writes the byte at `off` (read-modify-write of its dword).
    fn write8(&mut self, bdf: Bdf, off: u8, val: u8) {
        let shift = u32::from(off & 3) * 8;
        let old = self.read32(bdf, off);
        let new = (old & !(0xff << shift)) | u32::from(val) << shift;
        self.write32(bdf, off, new);
    }
}

impl<C: ConfigSpace + ?Sized> ConfigSpace for &mut C {
    fn read32(&mut self, bdf: Bdf, off: u8) -> u32 {
        (**self).read32(bdf, off)
    }
    fn write32(&mut self, bdf: Bdf, off: u8, val: u32) {
        (**self).write32(bdf, off, val)
    }
}

/// The configuration address port of mechanism #1.
pub const CONFIG_ADDRESS: u16 = 0xcf8;
/// The configuration data port of mechanism #1.
pub const CONFIG_DATA: u16 = 0xcfc;

/// Configuration mechanism #1 over I/O ports `0xCF8`/`0xCFC`.
///
/// The address/data pair is not atomic: the caller serialises users (dom0 is the only
/// one touching these ports, and drives them from one CPU).
#[derive(Debug)]
pub struct Mechanism1<P: PortIo> {
    io: P,
}

impl<P: PortIo> Mechanism1<P> {
    /// Configuration access through `io`.
    pub fn new(io: P) -> Mechanism1<P> {
        Mechanism1 { io }
    }

    /// Gives the port accessor back.
    pub fn into_inner(self) -> P {
        self.io
    }
}

impl<P: PortIo> ConfigSpace for Mechanism1<P> {
    fn read32(&mut self, bdf: Bdf, off: u8) -> u32 {
        self.io.out32(CONFIG_ADDRESS, bdf.config_address(off));
        self.io.in32(CONFIG_DATA)
    }

    fn write32(&mut self, bdf: Bdf, off: u8, val: u32) {
        self.io.out32(CONFIG_ADDRESS, bdf.config_address(off));
        self.io.out32(CONFIG_DATA, val);
    }
}

/// Register offsets of the configuration header.
pub mod reg {
    /// Vendor ID (16 bits).
    pub const VENDOR_ID: u8 = 0x00;
    /// Device ID (16 bits).
    pub const DEVICE_ID: u8 = 0x02;
    /// Command register (16 bits).
    pub const COMMAND: u8 = 0x04;
    /// Status register (16 bits, write-1-to-clear error bits).
    pub const STATUS: u8 = 0x06;
    /// Revision ID (8 bits).
    pub const REVISION: u8 = 0x08;
    /// Programming interface (8 bits).
    pub const PROG_IF: u8 = 0x09;
    /// Subclass (8 bits).
    pub const SUBCLASS: u8 = 0x0a;
    /// Class code (8 bits).
    pub const CLASS: u8 = 0x0b;
    /// Header type (8 bits; bit 7: multi-function device).
    pub const HEADER_TYPE: u8 = 0x0e;
    /// First base address register; BAR `i` is at `0x10 + 4 * i`.
    pub const BAR0: u8 = 0x10;
    /// Subsystem vendor ID (type 0 header).
    pub const SUBSYSTEM_VENDOR_ID: u8 = 0x2c;
    /// Subsystem ID (type 0 header).
    pub const SUBSYSTEM_ID: u8 = 0x2e;
    /// Capabilities pointer (8 bits) when [`super::STATUS_CAP_LIST`] is set.
    pub const CAP_PTR: u8 = 0x34;
    /// Interrupt line (8 bits, written by firmware: the legacy IRQ).
    pub const INTERRUPT_LINE: u8 = 0x3c;
    /// Interrupt pin (8 bits: 0 none, 1..=4 INTA#..INTD#).
    pub const INTERRUPT_PIN: u8 = 0x3d;
}

/// Command register: I/O space decode.
pub const CMD_IO: u16 = 1 << 0;
/// Command register: memory space decode.
pub const CMD_MEMORY: u16 = 1 << 1;
/// Command register: bus master (the device may DMA).
pub const CMD_BUS_MASTER: u16 = 1 << 2;
/// Command register: INTx emulation disabled.
pub const CMD_INTX_DISABLE: u16 = 1 << 10;
/// Status register: the capability list is present.
pub const STATUS_CAP_LIST: u16 = 1 << 4;

/// Vendor ID read from an absent function.
pub const VENDOR_NONE: u16 = 0xffff;

/// What enumeration reads of a present function, without side effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciFunction {
    /// Where it is.
    pub bdf: Bdf,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Class code.
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// Revision ID.
    pub revision: u8,
    /// Header layout (`header type & 0x7f`: 0 device, 1 PCI bridge, 2 CardBus bridge).
    pub header_type: u8,
    /// Function 0's header says the device has several functions.
    pub multifunction: bool,
    /// Subsystem vendor ID (type 0 headers; 0 otherwise).
    pub subsystem_vendor: u16,
    /// Subsystem ID (type 0 headers; 0 otherwise). For a transitional virtio device,
    /// the virtio device type.
    pub subsystem: u16,
    /// Interrupt line (the legacy IRQ firmware routed the pin to; 0xff unknown).
    pub interrupt_line: u8,
    /// Interrupt pin (0 none, 1..=4 INTA#..INTD#).
    pub interrupt_pin: u8,
}

/// Reads the identification of `bdf`; `None` if no function answers there.
pub fn read_function<C: ConfigSpace + ?Sized>(cs: &mut C, bdf: Bdf) -> Option<PciFunction> {
    let id = cs.read32(bdf, reg::VENDOR_ID);
    let vendor = id as u16;
    if vendor == VENDOR_NONE || vendor == 0 {
        return None;
    }
    let class_rev = cs.read32(bdf, reg::REVISION);
    let hdr = cs.read8(bdf, reg::HEADER_TYPE);
    let header_type = hdr & 0x7f;
    let (subsystem_vendor, subsystem) = if header_type == 0 {
        let s = cs.read32(bdf, reg::SUBSYSTEM_VENDOR_ID);
        (s as u16, (s >> 16) as u16)
    } else {
        (0, 0)
    };
    let irq = cs.read32(bdf, reg::INTERRUPT_LINE);
    Some(PciFunction {
        bdf,
        vendor,
        device: (id >> 16) as u16,
        revision: class_rev as u8,
        prog_if: (class_rev >> 8) as u8,
        subclass: (class_rev >> 16) as u8,
        class: (class_rev >> 24) as u8,
        header_type,
        multifunction: hdr & 0x80 != 0,
        subsystem_vendor,
        subsystem,
        interrupt_line: irq as u8,
        interrupt_pin: (irq >> 8) as u8,
    })
}

/// Every present function on buses 0..=255, in bus/device/function order.
///
/// Functions 1..8 of a device are probed only when function 0 is present and has the
/// multi-function bit set in its header type. Reads only: no BAR is sized here (sizing
/// briefly turns decoding off, which is for devices dom0 is about to drive).
pub fn enumerate<C: ConfigSpace + ?Sized>(cs: &mut C) -> Vec<PciFunction> {
    let mut found = Vec::new();
    for bus in 0..=255u8 {
        for dev in 0..32u8 {
            let Some(bdf0) = Bdf::new(bus, dev, 0) else {
                continue;
            };
            let Some(f0) = read_function(cs, bdf0) else {
                continue;
            };
            let multi = f0.multifunction;
            found.push(f0);
            if multi {
                for func in 1..8u8 {
                    if let Some(f) = Bdf::new(bus, dev, func).and_then(|b| read_function(cs, b)) {
                        found.push(f);
                    }
                }
            }
        }
    }
    found
}

/// A decoded base address register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    /// I/O ports `port .. port + size`.
    Io {
        /// First port.
        port: u32,
        /// Number of ports (a power of two).
        size: u32,
    },
    /// Memory `addr .. addr + size`.
    Memory {
        /// Bus (guest-physical) address.
        addr: u64,
        /// Size in bytes (a power of two).
        size: u64,
        /// Prefetchable.
        prefetchable: bool,
        /// A 64-bit BAR (it also uses the next BAR slot).
        is_64bit: bool,
    },
}

/// One implemented BAR of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarInfo {
    /// Slot 0..6 (the low half of a 64-bit BAR).
    pub index: u8,
    /// Its decoded value.
    pub bar: Bar,
}

/// Why configuration space could not be used as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PciError {
    /// No function answers at this address.
    NoDevice(Bdf),
    /// The header type has no BARs of the kind asked (e.g. a CardBus bridge).
    UnsupportedHeader(Bdf, u8),
    /// BAR `index` says it is 64-bit but is the last slot.
    Bar64InLastSlot(Bdf, u8),
    /// BAR `index` has the reserved memory type `0b11`.
    ReservedBarType(Bdf, u8),
    /// The capability list loops or points into the header; the offset is where.
    BadCapabilityList(Bdf, u8),
}

impl fmt::Display for PciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PciError::NoDevice(b) => write!(f, "{b}: no device"),
            PciError::UnsupportedHeader(b, t) => write!(f, "{b}: unsupported header type {t:#x}"),
            PciError::Bar64InLastSlot(b, i) => write!(f, "{b}: BAR{i} is 64-bit in the last slot"),
            PciError::ReservedBarType(b, i) => write!(f, "{b}: BAR{i} has a reserved type"),
            PciError::BadCapabilityList(b, o) => {
                write!(f, "{b}: malformed capability list at {o:#04x}")
            }
        }
    }
}

/// Sets and clears bits of the command register, returns the old value.
///
/// Written as a 32-bit store with the status half zero, so the status register's
/// write-1-to-clear bits are left alone.
pub fn set_command<C: ConfigSpace + ?Sized>(cs: &mut C, bdf: Bdf, set: u16, clear: u16) -> u16 {
    let old = cs.read16(bdf, reg::COMMAND);
    let new = (old & !clear) | set;
    cs.write32(bdf, reg::COMMAND, u32::from(new));
    old
}

/// Enables I/O decode and bus mastering, and clears INTx-disable (the legacy interrupt
/// is what dom0 receives as an event channel). Returns the old command value.
pub fn enable_io_bus_master<C: ConfigSpace + ?Sized>(cs: &mut C, bdf: Bdf) -> u16 {
    set_command(cs, bdf, CMD_IO | CMD_BUS_MASTER, CMD_INTX_DISABLE)
}

/// Number of BAR slots for a header type (6 for devices, 2 for PCI bridges).
fn bar_slots(header_type: u8) -> Option<u8> {
    match header_type & 0x7f {
        0 => Some(6),
        1 => Some(2),
        _ => None,
    }
}

/// Writes all-ones to the BAR dword at `off`, reads back the mask, restores the value.
fn size_dword<C: ConfigSpace + ?Sized>(cs: &mut C, bdf: Bdf, off: u8) -> (u32, u32) {
    let orig = cs.read32(bdf, off);
    cs.write32(bdf, off, 0xffff_ffff);
    let mask = cs.read32(bdf, off);
    cs.write32(bdf, off, orig);
    (orig, mask)
}

/// Reads and sizes every implemented BAR of `bdf`.
///
/// The sizing procedure: save the command register, turn I/O and memory decode off,
/// for each BAR write all-ones, read the size mask back and restore the original value
/// (both halves of a 64-bit BAR), then restore the command register. Unimplemented
/// BARs (mask 0) are left out. The function must not be in use by anyone else meanwhile.
pub fn read_bars<C: ConfigSpace + ?Sized>(cs: &mut C, bdf: Bdf) -> Result<Vec<BarInfo>, PciError> {
    if cs.read16(bdf, reg::VENDOR_ID) == VENDOR_NONE {
        return Err(PciError::NoDevice(bdf));
    }
    let hdr = cs.read8(bdf, reg::HEADER_TYPE) & 0x7f;
    let slots = bar_slots(hdr).ok_or(PciError::UnsupportedHeader(bdf, hdr))?;
    let old_cmd = set_command(cs, bdf, 0, CMD_IO | CMD_MEMORY);
    let result = size_bars(cs, bdf, slots);
    cs.write32(bdf, reg::COMMAND, u32::from(old_cmd));
    result
}

fn size_bars<C: ConfigSpace + ?Sized>(
    cs: &mut C,
    bdf: Bdf,
    slots: u8,
) -> Result<Vec<BarInfo>, PciError> {
    let mut bars = Vec::new();
    let mut i = 0u8;
    while i < slots {
        let off = reg::BAR0 + 4 * i;
        let (orig, mask) = size_dword(cs, bdf, off);
        if orig & 1 == 1 {
            // I/O BAR: bits 1:0 are flags; the lowest writable address bit is the size.
            let m = mask & 0xffff_fffc;
            if m != 0 {
                bars.push(BarInfo {
                    index: i,
                    bar: Bar::Io {
                        port: orig & 0xffff_fffc,
                        size: m & m.wrapping_neg(),
                    },
                });
            }
            i += 1;
            continue;
        }
        let prefetchable = orig & 0x8 != 0;
        match (orig >> 1) & 3 {
            // 32-bit (0b00), or "below 1 MiB" (0b01), decoded as 32-bit.
            0 | 1 => {
                let m = mask & 0xffff_fff0;
                if m != 0 {
                    bars.push(BarInfo {
                        index: i,
                        bar: Bar::Memory {
                            addr: u64::from(orig & 0xffff_fff0),
                            size: u64::from(m & m.wrapping_neg()),
                            prefetchable,
                            is_64bit: false,
                        },
                    });
                }
                i += 1;
            }
            2 => {
                if i + 1 >= slots {
                    return Err(PciError::Bar64InLastSlot(bdf, i));
                }
                let (orig_hi, mask_hi) = size_dword(cs, bdf, off + 4);
                let m = u64::from(mask & 0xffff_fff0) | u64::from(mask_hi) << 32;
                if m != 0 {
                    bars.push(BarInfo {
                        index: i,
                        bar: Bar::Memory {
                            addr: u64::from(orig & 0xffff_fff0) | u64::from(orig_hi) << 32,
                            size: m & m.wrapping_neg(),
                            prefetchable,
                            is_64bit: true,
                        },
                    });
                }
                i += 2;
            }
            _ => return Err(PciError::ReservedBarType(bdf, i)),
        }
    }
    Ok(bars)
}

/// One entry of the capability list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// Capability ID (e.g. 0x05 MSI, 0x09 vendor-specific, 0x10 PCIe, 0x11 MSI-X).
    pub id: u8,
    /// Its offset in configuration space.
    pub offset: u8,
}

/// Capability ID of MSI-X.
pub const CAP_ID_MSIX: u8 = 0x11;
/// Capability ID of vendor-specific capabilities (virtio's modern layout).
pub const CAP_ID_VENDOR: u8 = 0x09;

/// The capability list of `bdf`; empty if the status register says there is none.
///
/// Bounded whatever the device says: a pointer below 0x40 (into the header) or back to
/// an entry already visited is reported as [`PciError::BadCapabilityList`], and at most
/// 48 entries (the dwords after the header) are walked.
pub fn capabilities<C: ConfigSpace + ?Sized>(
    cs: &mut C,
    bdf: Bdf,
) -> Result<Vec<Capability>, PciError> {
    let mut caps = Vec::new();
    if cs.read16(bdf, reg::STATUS) & STATUS_CAP_LIST == 0 {
        return Ok(caps);
    }
    let mut visited = [0u64; 4];
    let mut ptr = cs.read8(bdf, reg::CAP_PTR) & 0xfc;
    while ptr != 0 {
        let (word, bit) = (usize::from(ptr / 64), ptr % 64);
        if ptr < 0x40 || visited[word] & (1 << bit) != 0 {
            return Err(PciError::BadCapabilityList(bdf, ptr));
        }
        visited[word] |= 1 << bit;
        let hdr = cs.read16(bdf, ptr);
        caps.push(Capability {
            id: hdr as u8,
            offset: ptr,
        });
        ptr = ((hdr >> 8) as u8) & 0xfc;
    }
    Ok(caps)
}

/// The offset of the first capability `id`, tolerating a malformed list (entries before
/// the fault are searched).
pub fn find_capability<C: ConfigSpace + ?Sized>(cs: &mut C, bdf: Bdf, id: u8) -> Option<u8> {
    if cs.read16(bdf, reg::STATUS) & STATUS_CAP_LIST == 0 {
        return None;
    }
    let mut visited = [0u64; 4];
    let mut ptr = cs.read8(bdf, reg::CAP_PTR) & 0xfc;
    while ptr >= 0x40 {
        let (word, bit) = (usize::from(ptr / 64), ptr % 64);
        if visited[word] & (1 << bit) != 0 {
            return None;
        }
        visited[word] |= 1 << bit;
        let hdr = cs.read16(bdf, ptr);
        if hdr as u8 == id {
            return Some(ptr);
        }
        ptr = ((hdr >> 8) as u8) & 0xfc;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn address_and_display() {
        let b = Bdf::new(0, 4, 0).unwrap();
        assert_eq!(format!("{b}"), "00:04.0");
        assert_eq!(b.config_address(0x3d), 0x8000_0000 | 4 << 11 | 0x3c);
        let b = Bdf::new(0xab, 31, 7).unwrap();
        assert_eq!(format!("{b}"), "ab:1f.7");
        assert_eq!(b.config_address(0x10), 0x80ab_ff10);
        assert!(Bdf::new(0, 32, 0).is_none());
        assert!(Bdf::new(0, 0, 8).is_none());
    }

    struct Ports {
        addr: u32,
        log: Vec<(u16, u32)>,
    }
    impl PortIo for Ports {
        fn in8(&mut self, _: u16) -> u8 {
            0
        }
        fn in16(&mut self, _: u16) -> u16 {
            0
        }
        fn in32(&mut self, port: u16) -> u32 {
            assert_eq!(port, CONFIG_DATA);
            self.addr
        }
        fn out8(&mut self, _: u16, _: u8) {}
        fn out16(&mut self, _: u16, _: u16) {}
        fn out32(&mut self, port: u16, val: u32) {
            if port == CONFIG_ADDRESS {
                self.addr = val;
            }
            self.log.push((port, val));
        }
    }

    #[test]
    fn mechanism1_ports() {
        let mut m = Mechanism1::new(Ports {
            addr: 0,
            log: Vec::new(),
        });
        let b = Bdf::new(1, 2, 3).unwrap();
        assert_eq!(m.read32(b, 0x0e), b.config_address(0x0c));
        // 8/16-bit helpers pick the lane out of the dword.
        assert_eq!(m.read16(b, 0x02), (b.config_address(0) >> 16) as u16);
        assert_eq!(m.read8(b, 0x01), (b.config_address(0) >> 8) as u8);
        m.write32(b, 0x10, 0xdead_beef);
        let p = m.into_inner();
        assert_eq!(
            p.log[p.log.len() - 2..],
            [
                (CONFIG_ADDRESS, b.config_address(0x10)),
                (CONFIG_DATA, 0xdead_beef)
            ]
        );
    }
}
