//! The legacy virtio-pci transport (virtio 1.x §4.1.4.8, `linux/virtio_pci.h`): a block
//! of registers at the start of the device's I/O BAR0.
//!
//! | offset | size | register |
//! |---|---|---|
//! | 0x00 | 32 | device features (r) |
//! | 0x04 | 32 | driver (guest) features (rw) |
//! | 0x08 | 32 | queue address: PFN of the selected queue, 4096-byte units (rw) |
//! | 0x0c | 16 | queue size (r) |
//! | 0x0e | 16 | queue select (rw) |
//! | 0x10 | 16 | queue notify (w) |
//! | 0x12 | 8 | device status (rw; writing 0 resets) |
//! | 0x13 | 8 | ISR status (r; reading acknowledges) |
//! | 0x14 | | device-specific configuration (MSI-X disabled, as dom0 leaves it) |

use core::fmt;

use super::queue::Virtqueue;
use super::{features, status, DmaRegion, PortIo};

/// Register offsets in the legacy I/O BAR.
pub mod regs {
    /// Device features (32 bits, read-only).
    pub const DEVICE_FEATURES: u16 = 0x00;
    /// Driver features (32 bits).
    pub const DRIVER_FEATURES: u16 = 0x04;
    /// Queue address as a page frame number (32 bits).
    pub const QUEUE_PFN: u16 = 0x08;
    /// Queue size (16 bits, read-only).
    pub const QUEUE_SIZE: u16 = 0x0c;
    /// Queue select (16 bits).
    pub const QUEUE_SELECT: u16 = 0x0e;
    /// Queue notify (16 bits: the queue index).
    pub const QUEUE_NOTIFY: u16 = 0x10;
    /// Device status (8 bits).
    pub const STATUS: u16 = 0x12;
    /// ISR status (8 bits, read-to-clear).
    pub const ISR: u16 = 0x13;
    /// Device-specific configuration, when MSI-X is disabled.
    pub const CONFIG: u16 = 0x14;
}

/// Shift from a queue's machine address to the queue address register.
pub const QUEUE_ADDR_SHIFT: u32 = 12;

/// The ISR status byte: why the device interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Isr(pub u8);

impl Isr {
    /// A queue has used buffers.
    pub fn queue(self) -> bool {
        self.0 & 1 != 0
    }
    /// The device configuration changed (e.g. the disk was resized).
    pub fn config_changed(self) -> bool {
        self.0 & 2 != 0
    }
}

/// What the transport could not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    /// The device status did not read back 0 after a reset.
    ResetFailed(u8),
    /// The device refused a status bit (did not read it back).
    StatusRefused(u8),
    /// The selected queue does not exist (size 0).
    NoQueue(u16),
    /// The queue address did not read back as written.
    QueueAddress(u16),
    /// The queue was built with a different size than the device reports.
    QueueSizeMismatch {
        /// The queue index.
        queue: u16,
        /// What the device reports.
        device: u16,
        /// What the queue has.
        driver: u16,
    },
    /// The device asked for a reset (`NEEDS_RESET`) or is otherwise failed.
    DeviceFailed(u8),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::ResetFailed(s) => write!(f, "device did not reset (status {s:#x})"),
            TransportError::StatusRefused(s) => write!(f, "device refused status {s:#x}"),
            TransportError::NoQueue(q) => write!(f, "queue {q} does not exist"),
            TransportError::QueueAddress(q) => write!(f, "queue {q} address did not stick"),
            TransportError::QueueSizeMismatch {
                queue,
                device,
                driver,
            } => write!(
                f,
                "queue {queue}: device size {device}, driver built {driver}"
            ),
            TransportError::DeviceFailed(s) => write!(f, "device failed (status {s:#x})"),
        }
    }
}

/// The legacy register block of one device at I/O port `base`.
#[derive(Debug)]
pub struct LegacyTransport<P: PortIo> {
    io: P,
    base: u16,
}

impl<P: PortIo> LegacyTransport<P> {
    /// The device whose BAR0 starts at port `base` (see [`super::probe_pci`]).
    pub fn new(io: P, base: u16) -> LegacyTransport<P> {
        LegacyTransport { io, base }
    }

    /// The first port of the register block.
    pub fn base(&self) -> u16 {
        self.base
    }

    /// Gives the port accessor back.
    pub fn into_inner(self) -> P {
        self.io
    }

    fn port(&self, off: u16) -> u16 {
        self.base.wrapping_add(off)
    }

    /// Reads the device status.
    pub fn status(&mut self) -> u8 {
        let p = self.port(regs::STATUS);
        self.io.in8(p)
    }

    /// Writes the device status.
    pub fn set_status(&mut self, s: u8) {
        let p = self.port(regs::STATUS);
        self.io.out8(p, s)
    }

    /// Adds `bits` to the device status and checks they stuck.
    pub fn add_status(&mut self, bits: u8) -> Result<(), TransportError> {
        let s = self.status();
        self.set_status(s | bits);
        let now = self.status();
        if now & bits != bits {
            return Err(TransportError::StatusRefused(bits));
        }
        Ok(())
    }

    /// Resets the device (status 0: it forgets features and queues, stops DMA) and
    /// checks it reads back 0.
    pub fn reset(&mut self) -> Result<(), TransportError> {
        self.set_status(0);
        for _ in 0..1000 {
            match self.status() {
                0 => return Ok(()),
                _ => core::hint::spin_loop(),
            }
        }
        Err(TransportError::ResetFailed(self.status()))
    }

    /// Tells the device the driver gave up on it (`FAILED`).
    pub fn set_failed(&mut self) {
        let s = self.status();
        self.set_status(s | status::FAILED);
    }

    /// The device's feature bits.
    pub fn device_features(&mut self) -> u32 {
        let p = self.port(regs::DEVICE_FEATURES);
        self.io.in32(p)
    }

    /// Writes the driver's feature bits.
    pub fn set_driver_features(&mut self, f: u32) {
        let p = self.port(regs::DRIVER_FEATURES);
        self.io.out32(p, f)
    }

    /// Selects queue `q` for the queue registers.
    pub fn select_queue(&mut self, q: u16) {
        let p = self.port(regs::QUEUE_SELECT);
        self.io.out16(p, q)
    }

    /// The size of queue `q` as the device reports it (0: no such queue).
    pub fn queue_size(&mut self, q: u16) -> u16 {
        self.select_queue(q);
        let p = self.port(regs::QUEUE_SIZE);
        self.io.in16(p)
    }

    /// The page frame number of queue `q` (0: not set up).
    pub fn queue_pfn(&mut self, q: u16) -> u32 {
        self.select_queue(q);
        let p = self.port(regs::QUEUE_PFN);
        self.io.in32(p)
    }

    /// Sets the page frame number of queue `q` (0 releases the queue).
    pub fn set_queue_pfn(&mut self, q: u16, pfn: u32) {
        self.select_queue(q);
        let p = self.port(regs::QUEUE_PFN);
        self.io.out32(p, pfn)
    }

    /// Notifies the device that queue `q` has new buffers.
    pub fn notify(&mut self, q: u16) {
        let p = self.port(regs::QUEUE_NOTIFY);
        self.io.out16(p, q)
    }

    /// Reads (and so acknowledges) the ISR status: call it from the interrupt handler.
    pub fn read_isr(&mut self) -> Isr {
        let p = self.port(regs::ISR);
        Isr(self.io.in8(p))
    }

    /// Reads a byte of device-specific configuration.
    pub fn config_read8(&mut self, off: u16) -> u8 {
        let p = self.port(regs::CONFIG.wrapping_add(off));
        self.io.in8(p)
    }

    /// Reads a 16-bit field of device-specific configuration.
    pub fn config_read16(&mut self, off: u16) -> u16 {
        let p = self.port(regs::CONFIG.wrapping_add(off));
        self.io.in16(p)
    }

    /// Reads a 32-bit field of device-specific configuration.
    pub fn config_read32(&mut self, off: u16) -> u32 {
        let p = self.port(regs::CONFIG.wrapping_add(off));
        self.io.in32(p)
    }

    /// Reads a 64-bit field of device-specific configuration: two 32-bit reads, repeated
    /// until two rounds agree (the legacy interface has no generation counter).
    pub fn config_read64(&mut self, off: u16) -> u64 {
        let mut prev = None;
        for _ in 0..4 {
            let lo = u64::from(self.config_read32(off));
            let hi = u64::from(self.config_read32(off.wrapping_add(4)));
            let v = hi << 32 | lo;
            if prev == Some(v) {
                return v;
            }
            prev = Some(v);
        }
        prev.unwrap_or(0)
    }

    /// Writes a byte of device-specific configuration.
    pub fn config_write8(&mut self, off: u16, v: u8) {
        let p = self.port(regs::CONFIG.wrapping_add(off));
        self.io.out8(p, v)
    }

    /// The first half of initialisation: reset, `ACKNOWLEDGE`, `DRIVER`, then accept
    /// the device's features that are in `wanted` (never `VIRTIO_F_BAD_FEATURE`).
    /// Returns the accepted features. On error the device is marked `FAILED`.
    pub fn begin_init(&mut self, wanted: u32) -> Result<u32, TransportError> {
        let r = (|| {
            self.reset()?;
            self.add_status(status::ACKNOWLEDGE)?;
            self.add_status(status::DRIVER)?;
            let accepted = self.device_features() & wanted & !features::BAD_FEATURE;
            self.set_driver_features(accepted);
            Ok(accepted)
        })();
        if r.is_err() {
            self.set_failed();
        }
        r
    }

    /// Gives queue `q` to the device: checks the device reports the size the queue was
    /// built with, writes its PFN and checks it reads back.
    pub fn setup_queue<D: DmaRegion>(
        &mut self,
        q: u16,
        vq: &Virtqueue<D>,
    ) -> Result<(), TransportError> {
        let device = self.queue_size(q);
        if device == 0 {
            return Err(TransportError::NoQueue(q));
        }
        if device != vq.size() {
            return Err(TransportError::QueueSizeMismatch {
                queue: q,
                device,
                driver: vq.size(),
            });
        }
        self.set_queue_pfn(q, vq.pfn());
        if self.queue_pfn(q) != vq.pfn() {
            return Err(TransportError::QueueAddress(q));
        }
        Ok(())
    }

    /// The last step of initialisation: `DRIVER_OK`. The device may use its queues from
    /// now on.
    pub fn driver_ok(&mut self) -> Result<(), TransportError> {
        self.add_status(status::DRIVER_OK)?;
        let s = self.status();
        if s & (status::NEEDS_RESET | status::FAILED) != 0 {
            return Err(TransportError::DeviceFailed(s));
        }
        Ok(())
    }
}
