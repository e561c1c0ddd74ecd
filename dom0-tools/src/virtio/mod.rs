//! Virtio devices QEMU gives dom0, driven through the legacy (transitional) virtio-pci
//! interface: the [`queue`] (split virtqueue, legacy layout), the [`legacy`] transport
//! over an I/O BAR, and the [`blk`] driver.
//!
//! The kernel glue implements two traits: [`PortIo`] (`in`/`out`) and [`DmaRegion`]
//! (memory dom0 allocated, whose machine addresses it knows); everything else is pure.
//! The device is treated as untrusted-ish: whatever it writes to the used ring or
//! reports in its registers is checked and turned into an error, never a panic or an
//! access out of the memory the driver validated.
//!
//! Typical bring-up of a disk (see [`blk::BlkProbe`]):
//! 1. [`crate::pci::enumerate`], then [`identify`] each function; [`probe_pci`] the
//!    first [`VirtioPciId::Transitional`] block device (I/O BAR0, I/O + bus master on);
//! 2. [`blk::BlkProbe::new`] over a [`legacy::LegacyTransport`] at that BAR: reset,
//!    ACKNOWLEDGE, DRIVER, features, config, queue size;
//! 3. allocate [`blk::BlkProbe::queue_bytes`] of machine-contiguous page-aligned memory and
//!    a scratch area, then [`blk::BlkProbe::start`]: queue PFN, DRIVER_OK.

pub mod blk;
pub mod legacy;
pub mod net;
pub mod queue;

use core::fmt;

pub use crate::pci::PortIo;
use crate::pci::{self, Bar, Bdf, ConfigSpace, PciError, PciFunction};

/// Memory the driver shares with a device: dom0 allocated it and knows the machine
/// address of each byte (what the device, doing DMA, sees).
///
/// Offsets are within `0..len()`; the drivers only access offsets they validated against
/// `len()` when they were built, so implementations may treat an out-of-range access as
/// a bug. Reads must really read the memory each time (the device changes it behind the
/// program's back: volatile accesses in the kernel). Multi-byte values are little-endian
/// (legacy virtio uses the guest's byte order; dom0 is x86).
pub trait DmaRegion {
    /// Size in bytes.
    fn len(&self) -> usize;
    /// Whether the region is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The machine address of byte `off`. Within one 4 KiB page of the region addresses
    /// are contiguous; across pages they need not be (the drivers check where they must).
    fn machine_addr(&self, off: usize) -> u64;
    /// Copies `buf.len()` bytes at `off` out of the region.
    fn read(&self, off: usize, buf: &mut [u8]);
    /// Copies `data` into the region at `off`.
    fn write(&mut self, off: usize, data: &[u8]);
    /// A full memory barrier (`mfence`): orders the accesses before it against those
    /// after it, as the device observes them.
    fn fence(&self);

    /// Reads a little-endian `u16` at `off`.
    fn read_u16(&self, off: usize) -> u16 {
        let mut b = [0; 2];
        self.read(off, &mut b);
        u16::from_le_bytes(b)
    }
    /// Reads a little-endian `u32` at `off`.
    fn read_u32(&self, off: usize) -> u32 {
        let mut b = [0; 4];
        self.read(off, &mut b);
        u32::from_le_bytes(b)
    }
    /// Reads a little-endian `u64` at `off`.
    fn read_u64(&self, off: usize) -> u64 {
        let mut b = [0; 8];
        self.read(off, &mut b);
        u64::from_le_bytes(b)
    }
    /// Writes a little-endian `u16` at `off`.
    fn write_u16(&mut self, off: usize, v: u16) {
        self.write(off, &v.to_le_bytes())
    }
    /// Writes a little-endian `u32` at `off`.
    fn write_u32(&mut self, off: usize, v: u32) {
        self.write(off, &v.to_le_bytes())
    }
    /// Writes a little-endian `u64` at `off`.
    fn write_u64(&mut self, off: usize, v: u64) {
        self.write(off, &v.to_le_bytes())
    }
}

/// Page size of the legacy interface (queue PFN units, used-ring alignment).
pub const PAGE_SIZE: usize = 4096;

/// Device status bits (virtio 1.x §2.1).
pub mod status {
    /// The guest noticed the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest knows how to drive it.
    pub const DRIVER: u8 = 2;
    /// The driver is ready.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation done (modern only; not used by the legacy interface).
    pub const FEATURES_OK: u8 = 8;
    /// The device hit an error and needs a reset.
    pub const NEEDS_RESET: u8 = 0x40;
    /// The driver gave up on the device.
    pub const FAILED: u8 = 0x80;
}

/// Transport-level feature bits (the low 32 bits are all the legacy interface has).
pub mod features {
    /// Notify even when the avail ring is empty (legacy).
    pub const NOTIFY_ON_EMPTY: u32 = 1 << 24;
    /// Buffers may be laid out freely across descriptors (legacy).
    pub const ANY_LAYOUT: u32 = 1 << 27;
    /// Indirect descriptors.
    pub const RING_INDIRECT_DESC: u32 = 1 << 28;
    /// `used_event`/`avail_event` notification suppression.
    pub const RING_EVENT_IDX: u32 = 1 << 29;
    /// Legacy devices offer this to catch drivers that accept everything: never accept it.
    pub const BAD_FEATURE: u32 = 1 << 30;
}

/// Vendor ID of virtio PCI devices.
pub const VIRTIO_VENDOR: u16 = 0x1af4;
/// Transitional virtio-net.
pub const DEVICE_NET_TRANSITIONAL: u16 = 0x1000;
/// Transitional virtio-blk.
pub const DEVICE_BLK_TRANSITIONAL: u16 = 0x1001;
/// Modern-only virtio-net (0x1040 + type 1).
pub const DEVICE_NET_MODERN: u16 = 0x1041;
/// Modern-only virtio-blk (0x1040 + type 2).
pub const DEVICE_BLK_MODERN: u16 = 0x1042;

/// Virtio device types (virtio 1.x §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// Network card (type 1).
    Net,
    /// Block device (type 2).
    Blk,
    /// Anything else, by virtio type number.
    Other(u16),
}

impl DeviceType {
    /// From a virtio device type number.
    pub fn from_type(t: u16) -> DeviceType {
        match t {
            1 => DeviceType::Net,
            2 => DeviceType::Blk,
            t => DeviceType::Other(t),
        }
    }
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceType::Net => f.write_str("virtio-net"),
            DeviceType::Blk => f.write_str("virtio-blk"),
            DeviceType::Other(t) => write!(f, "virtio device type {t}"),
        }
    }
}

/// What a virtio PCI function is, from its IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioPciId {
    /// A transitional device (IDs 0x1000..=0x103f): has the legacy interface dom0 drives.
    Transitional(DeviceType),
    /// A modern-only device (IDs 0x1040..=0x107f): not supported.
    ModernOnly(DeviceType),
}

/// Classifies a PCI function; `None` if it is not a virtio device.
///
/// For transitional devices the type comes from the device ID (0x1000 net, 0x1001 blk,
/// 0x1002 balloon, ...), falling back to the subsystem ID, which virtio sets to the type.
pub fn identify(f: &PciFunction) -> Option<VirtioPciId> {
    if f.vendor != VIRTIO_VENDOR {
        return None;
    }
    match f.device {
        DEVICE_NET_TRANSITIONAL => Some(VirtioPciId::Transitional(DeviceType::Net)),
        DEVICE_BLK_TRANSITIONAL => Some(VirtioPciId::Transitional(DeviceType::Blk)),
        0x1002..=0x103f => Some(VirtioPciId::Transitional(DeviceType::from_type(
            f.subsystem,
        ))),
        d @ 0x1040..=0x107f => Some(VirtioPciId::ModernOnly(DeviceType::from_type(d - 0x1040))),
        _ => None,
    }
}

/// A virtio PCI function ready for the legacy transport: I/O and bus mastering enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyPciDevice {
    /// Where it is.
    pub bdf: Bdf,
    /// What it is.
    pub kind: DeviceType,
    /// First port of BAR0 (the legacy register block).
    pub io_base: u16,
    /// Size of BAR0 in ports.
    pub io_size: u32,
    /// Interrupt line firmware routed INTx to (0xff unknown).
    pub interrupt_line: u8,
    /// Interrupt pin (1..=4 INTA#..INTD#, 0 none).
    pub interrupt_pin: u8,
}

/// Why a virtio PCI function cannot be driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeError {
    /// Not a virtio device at all.
    NotVirtio(Bdf, u16, u16),
    /// A modern-only device: dom0 drives the legacy interface only.
    ModernOnly(Bdf, DeviceType, u16),
    /// BAR0 is missing, not an I/O BAR, too small or above port 0xffff.
    NoIoBar0(Bdf),
    /// Configuration space misbehaved.
    Pci(PciError),
}

impl From<PciError> for ProbeError {
    fn from(e: PciError) -> ProbeError {
        ProbeError::Pci(e)
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::NotVirtio(b, v, d) => write!(f, "{b}: {v:04x}:{d:04x} is not virtio"),
            ProbeError::ModernOnly(b, t, d) => write!(
                f,
                "{b}: {t} {VIRTIO_VENDOR:04x}:{d:04x} is modern-only, not supported: \
                 dom0 drives the legacy virtio-pci interface (give QEMU \
                 `disable-legacy=off`, or put the device on a conventional PCI bus)"
            ),
            ProbeError::NoIoBar0(b) => write!(f, "{b}: virtio device without an I/O BAR0"),
            ProbeError::Pci(e) => e.fmt(f),
        }
    }
}

/// Size of the legacy register block without MSI-X: 0x14 bytes of common registers.
pub const LEGACY_COMMON_SIZE: u32 = 0x14;

/// Gets a transitional virtio function ready for [`legacy::LegacyTransport`]: sizes its
/// BARs, checks BAR0 is an I/O BAR below 0x10000, enables I/O decode and bus mastering.
pub fn probe_pci<C: ConfigSpace + ?Sized>(
    cs: &mut C,
    f: &PciFunction,
) -> Result<LegacyPciDevice, ProbeError> {
    let kind = match identify(f) {
        None => return Err(ProbeError::NotVirtio(f.bdf, f.vendor, f.device)),
        Some(VirtioPciId::ModernOnly(t)) => return Err(ProbeError::ModernOnly(f.bdf, t, f.device)),
        Some(VirtioPciId::Transitional(t)) => t,
    };
    let bars = pci::read_bars(cs, f.bdf)?;
    let (port, size) = bars
        .iter()
        .find_map(|b| match (b.index, b.bar) {
            (0, Bar::Io { port, size }) => Some((port, size)),
            _ => None,
        })
        .ok_or(ProbeError::NoIoBar0(f.bdf))?;
    let io_base = u16::try_from(port).map_err(|_| ProbeError::NoIoBar0(f.bdf))?;
    if size < LEGACY_COMMON_SIZE || u32::from(io_base) + size > 0x1_0000 || io_base == 0 {
        return Err(ProbeError::NoIoBar0(f.bdf));
    }
    pci::enable_io_bus_master(cs, f.bdf);
    Ok(LegacyPciDevice {
        bdf: f.bdf,
        kind,
        io_base,
        io_size: size,
        interrupt_line: f.interrupt_line,
        interrupt_pin: f.interrupt_pin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn func(vendor: u16, device: u16, subsystem: u16) -> PciFunction {
        PciFunction {
            bdf: Bdf::new(0, 4, 0).unwrap(),
            vendor,
            device,
            class: 1,
            subclass: 0,
            prog_if: 0,
            revision: 0,
            header_type: 0,
            multifunction: false,
            subsystem_vendor: VIRTIO_VENDOR,
            subsystem,
            interrupt_line: 11,
            interrupt_pin: 1,
        }
    }

    #[test]
    fn ids() {
        assert_eq!(
            identify(&func(0x1af4, 0x1001, 2)),
            Some(VirtioPciId::Transitional(DeviceType::Blk))
        );
        assert_eq!(
            identify(&func(0x1af4, 0x1000, 1)),
            Some(VirtioPciId::Transitional(DeviceType::Net))
        );
        assert_eq!(
            identify(&func(0x1af4, 0x1042, 0)),
            Some(VirtioPciId::ModernOnly(DeviceType::Blk))
        );
        assert_eq!(
            identify(&func(0x1af4, 0x1041, 0)),
            Some(VirtioPciId::ModernOnly(DeviceType::Net))
        );
        assert_eq!(
            identify(&func(0x1af4, 0x1005, 4)),
            Some(VirtioPciId::Transitional(DeviceType::Other(4)))
        );
        assert_eq!(identify(&func(0x8086, 0x1001, 2)), None);
        assert_eq!(identify(&func(0x1af4, 0x1100, 2)), None);
    }

    #[test]
    fn modern_only_message() {
        struct NoCs;
        impl ConfigSpace for NoCs {
            fn read32(&mut self, _: Bdf, _: u8) -> u32 {
                unreachable!()
            }
            fn write32(&mut self, _: Bdf, _: u8, _: u32) {
                unreachable!()
            }
        }
        let e = probe_pci(&mut NoCs, &func(0x1af4, 0x1042, 0)).unwrap_err();
        let msg = format!("{e}");
        assert!(msg.starts_with("00:04.0: virtio-blk 1af4:1042 is modern-only, not supported"));
        assert!(msg.contains("disable-legacy=off"));
    }
}
