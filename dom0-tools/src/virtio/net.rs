//! The virtio-net driver (virtio 1.x §5.1, `linux/virtio_net.h`) over the legacy
//! transport: receive queue 0, transmit queue 1, no control queue, no offloads and no
//! mergeable receive buffers, so every buffer starts with the 10-byte legacy
//! `virtio_net_hdr { flags: u8, gso_type: u8, hdr_len: u16, gso_size: u16, csum_start:
//! u16, csum_offset: u16 }`, all zero on transmit.
//!
//! Frame buffers live in one *buffer* [`DmaRegion`] the driver owns, in slots of
//! [`SLOT_SIZE`] bytes (two per page, so each slot is machine-contiguous): the first
//! `rx` slots are receive buffers, kept posted on the receive queue; the next `tx` are
//! transmit bounce buffers. Each buffer is one descriptor of header and frame when the
//! device accepts `VIRTIO_F_ANY_LAYOUT`, else two (header, then frame), as legacy
//! devices require.
//!
//! Bring-up mirrors [`super::blk::BlkProbe`]: [`NetProbe::new`] negotiates and reads the
//! MAC, the glue allocates [`NetProbe::rx_queue_bytes`], [`NetProbe::tx_queue_bytes`]
//! and [`NetProbe::buffer_bytes`], and [`NetProbe::start`] fills the receive queue and
//! sets DRIVER_OK. Then: [`VirtioNet::transmit`] (non-blocking), [`VirtioNet::receive`]
//! from the interrupt handler after [`VirtioNet::ack_interrupt`].
//!
//! The device is untrusted: a used length shorter than the header or longer than the
//! buffer is reported as [`NetError::BadUsedLen`] (the buffer is posted again, the
//! frame dropped); a used ring the queue cannot believe breaks it
//! ([`NetError::Queue`]), after which the glue calls [`VirtioNet::reset`].

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::legacy::{Isr, LegacyTransport, TransportError};
use super::queue::{Buf, Layout, QueueError, Virtqueue};
use super::{features, DmaRegion, PortIo};
use crate::vifspec::Mac;

/// Feature bits of virtio-net (legacy numbering, low 32 bits).
pub mod feature {
    /// The device handles packets with partial checksum (offload; not accepted).
    pub const CSUM: u32 = 1 << 0;
    /// The driver handles packets with partial checksum (not accepted).
    pub const GUEST_CSUM: u32 = 1 << 1;
    /// The device has a MAC address in its configuration.
    pub const MAC: u32 = 1 << 5;
    /// Mergeable receive buffers (not accepted: the header stays 10 bytes).
    pub const MRG_RXBUF: u32 = 1 << 15;
    /// The configuration has a link status field.
    pub const STATUS: u32 = 1 << 16;
    /// A control virtqueue (not used).
    pub const CTRL_VQ: u32 = 1 << 17;
}

/// Device configuration offsets (from [`super::legacy::regs::CONFIG`]).
pub mod config_off {
    /// `mac: [u8; 6]`.
    pub const MAC: u16 = 0;
    /// `status: u16` (with `VIRTIO_NET_F_STATUS`).
    pub const STATUS: u16 = 6;
}

/// Link status bits of the configuration's `status`.
pub mod link {
    /// The link is up.
    pub const UP: u16 = 1;
    /// The device asks for a gratuitous announcement (not handled).
    pub const ANNOUNCE: u16 = 2;
}

/// Receive queue index.
pub const RX_QUEUE: u16 = 0;
/// Transmit queue index.
pub const TX_QUEUE: u16 = 1;
/// Size of the legacy `virtio_net_hdr` without mergeable buffers.
pub const HDR_LEN: usize = 10;
/// Smallest frame: an Ethernet header.
pub const MIN_FRAME: usize = 14;
/// Largest frame: 1514 bytes and an 802.1Q tag, no FCS.
pub const MAX_FRAME: usize = 1518;
/// Bytes of a buffer the device may use: header and largest frame.
pub const BUF_LEN: usize = HDR_LEN + MAX_FRAME;
/// Bytes of buffer memory per buffer (two per page).
pub const SLOT_SIZE: usize = 2048;

/// The features the driver accepts when the device offers them.
pub const WANTED_FEATURES: u32 =
    feature::MAC | feature::STATUS | features::RING_EVENT_IDX | features::ANY_LAYOUT;

/// How many receive and transmit buffers to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferCounts {
    /// Receive buffers kept posted.
    pub rx: u16,
    /// Transmit bounce buffers.
    pub tx: u16,
}

impl BufferCounts {
    /// 128 receive buffers (256 KiB), 16 transmit buffers.
    pub const DEFAULT: BufferCounts = BufferCounts { rx: 128, tx: 16 };
}

impl Default for BufferCounts {
    fn default() -> BufferCounts {
        BufferCounts::DEFAULT
    }
}

/// Counters of a running device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames delivered by [`VirtioNet::receive`].
    pub rx_frames: u64,
    /// Their bytes (without the virtio header).
    pub rx_bytes: u64,
    /// Received buffers dropped: shorter than an Ethernet header, or a bad used length.
    pub rx_errors: u64,
    /// Frames handed to the device.
    pub tx_frames: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// [`VirtioNet::transmit`] calls refused with [`NetError::Busy`].
    pub tx_busy: u64,
}

/// What the network driver could not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetError {
    /// The transport failed (initialisation or a device error).
    Transport(TransportError),
    /// A queue (by index) failed; the device must be reset if it is broken.
    Queue(u16, QueueError),
    /// A queue (by index) too small for one buffer.
    QueueTooSmall(u16, u16),
    /// The device does not offer `VIRTIO_NET_F_MAC`.
    NoMac,
    /// The device's MAC is zero or a group address.
    BadMac(Mac),
    /// A memory region is smaller than needed.
    MemoryTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        have: usize,
    },
    /// Zero receive or transmit buffers.
    NoBuffers,
    /// No transmit buffer free: retry after the device completed some.
    Busy,
    /// A frame to transmit shorter than an Ethernet header.
    FrameTooShort(usize),
    /// A frame to transmit longer than [`MAX_FRAME`].
    FrameTooLong(usize),
    /// The device reported a used length that cannot be (shorter than the header or
    /// longer than the buffer) on a queue.
    BadUsedLen {
        /// The queue.
        queue: u16,
        /// What the device wrote.
        len: u32,
    },
    /// The device was reset by [`VirtioNet::reset`]; probe it again.
    Reset,
}

impl From<TransportError> for NetError {
    fn from(e: TransportError) -> NetError {
        NetError::Transport(e)
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Transport(e) => write!(f, "virtio-net: {e}"),
            NetError::Queue(q, e) => write!(f, "virtio-net: queue {q}: {e}"),
            NetError::QueueTooSmall(q, n) => {
                write!(f, "virtio-net: queue {q} of {n} entries too small")
            }
            NetError::NoMac => f.write_str("virtio-net: device has no MAC address"),
            NetError::BadMac(m) => write!(
                f,
                "virtio-net: device MAC {} is not a station address",
                crate::vifspec::format_mac(m)
            ),
            NetError::MemoryTooSmall { need, have } => {
                write!(f, "virtio-net: memory {have} bytes, need {need}")
            }
            NetError::NoBuffers => f.write_str("virtio-net: no receive or transmit buffers"),
            NetError::Busy => f.write_str("virtio-net: no transmit buffer free"),
            NetError::FrameTooShort(n) => write!(f, "virtio-net: frame of {n} bytes too short"),
            NetError::FrameTooLong(n) => write!(f, "virtio-net: frame of {n} bytes too long"),
            NetError::BadUsedLen { queue, len } => {
                write!(f, "virtio-net: device used length {len} on queue {queue}")
            }
            NetError::Reset => f.write_str("virtio-net: device was reset"),
        }
    }
}

/// Reads the MAC from the configuration, until two reads agree (the legacy interface has
/// no generation counter).
fn read_mac<P: PortIo>(t: &mut LegacyTransport<P>) -> Mac {
    let mut prev: Option<Mac> = None;
    let mut mac = [0u8; 6];
    for _ in 0..4 {
        for (i, b) in mac.iter_mut().enumerate() {
            *b = t.config_read8(config_off::MAC + i as u16);
        }
        if prev == Some(mac) {
            break;
        }
        prev = Some(mac);
    }
    mac
}

/// A virtio-net device half initialised: features negotiated, MAC and queue sizes read,
/// waiting for the glue to allocate memory of the sizes it asks for.
#[derive(Debug)]
pub struct NetProbe<P: PortIo> {
    transport: LegacyTransport<P>,
    features: u32,
    mac: Mac,
    rx_size: u16,
    tx_size: u16,
}

impl<P: PortIo> NetProbe<P> {
    /// Reset, ACKNOWLEDGE, DRIVER, accept [`WANTED_FEATURES`], read the MAC and the
    /// queue sizes. On error the device is marked FAILED.
    pub fn new(transport: LegacyTransport<P>) -> Result<NetProbe<P>, NetError> {
        NetProbe::with_features(transport, WANTED_FEATURES)
    }

    /// As [`NetProbe::new`], accepting only features in `wanted` (`VIRTIO_NET_F_MAC` is
    /// required; offloads and mergeable buffers are never accepted).
    pub fn with_features(
        mut transport: LegacyTransport<P>,
        wanted: u32,
    ) -> Result<NetProbe<P>, NetError> {
        let features = transport.begin_init(wanted & WANTED_FEATURES)?;
        let r = (|| {
            if features & feature::MAC == 0 {
                return Err(NetError::NoMac);
            }
            let mac = read_mac(&mut transport);
            if !crate::bridge::is_valid_source(&mac) {
                return Err(NetError::BadMac(mac));
            }
            let per = descs_per_buffer(features);
            let mut sizes = [0u16; 2];
            for (q, s) in [RX_QUEUE, TX_QUEUE].into_iter().zip(sizes.iter_mut()) {
                *s = transport.queue_size(q);
                if *s == 0 {
                    return Err(NetError::Transport(TransportError::NoQueue(q)));
                }
                Layout::legacy(*s).map_err(|e| NetError::Queue(q, e))?;
                if *s < per {
                    return Err(NetError::QueueTooSmall(q, *s));
                }
            }
            Ok((mac, sizes))
        })();
        match r {
            Ok((mac, [rx_size, tx_size])) => Ok(NetProbe {
                transport,
                features,
                mac,
                rx_size,
                tx_size,
            }),
            Err(e) => {
                transport.set_failed();
                Err(e)
            }
        }
    }

    /// The accepted features.
    pub fn features(&self) -> u32 {
        self.features
    }

    /// The device's MAC address.
    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// The receive queue's size, as the device reported it.
    pub fn rx_queue_size(&self) -> u16 {
        self.rx_size
    }

    /// The transmit queue's size, as the device reported it.
    pub fn tx_queue_size(&self) -> u16 {
        self.tx_size
    }

    /// Bytes of page-aligned, machine-contiguous memory the receive queue needs.
    pub fn rx_queue_bytes(&self) -> usize {
        Layout::legacy(self.rx_size).map_or(0, |l| l.total)
    }

    /// Bytes of page-aligned, machine-contiguous memory the transmit queue needs.
    pub fn tx_queue_bytes(&self) -> usize {
        Layout::legacy(self.tx_size).map_or(0, |l| l.total)
    }

    /// `want`, limited to what the queues can hold at once.
    pub fn buffers(&self, want: BufferCounts) -> BufferCounts {
        let per = descs_per_buffer(self.features);
        BufferCounts {
            rx: want.rx.min(self.rx_size / per),
            tx: want.tx.min(self.tx_size / per),
        }
    }

    /// Bytes of buffer memory for `want` (as [`NetProbe::buffers`] limits it). Need not
    /// be machine-contiguous beyond each page.
    pub fn buffer_bytes(&self, want: BufferCounts) -> usize {
        let c = self.buffers(want);
        (usize::from(c.rx) + usize::from(c.tx)) * SLOT_SIZE
    }

    /// Builds both queues, gives them to the device, posts the receive buffers, sets
    /// DRIVER_OK and notifies the receive queue. `buffers` holds [`NetProbe::buffer_bytes`]
    /// of `want`. On error the device is marked FAILED.
    pub fn start<D: DmaRegion>(
        self,
        rx_queue: D,
        tx_queue: D,
        buffers: D,
        want: BufferCounts,
    ) -> Result<VirtioNet<P, D>, NetError> {
        let counts = self.buffers(want);
        let NetProbe {
            mut transport,
            features,
            mac,
            rx_size,
            tx_size,
        } = self;
        let r = (|| {
            if counts.rx == 0 || counts.tx == 0 {
                return Err(NetError::NoBuffers);
            }
            let need = (usize::from(counts.rx) + usize::from(counts.tx)) * SLOT_SIZE;
            if buffers.len() < need {
                return Err(NetError::MemoryTooSmall {
                    need,
                    have: buffers.len(),
                });
            }
            let event_idx = features & features::RING_EVENT_IDX != 0;
            let rx = Virtqueue::new(rx_queue, rx_size, event_idx)
                .map_err(|e| NetError::Queue(RX_QUEUE, e))?;
            let tx = Virtqueue::new(tx_queue, tx_size, event_idx)
                .map_err(|e| NetError::Queue(TX_QUEUE, e))?;
            transport.setup_queue(RX_QUEUE, &rx)?;
            transport.setup_queue(TX_QUEUE, &tx)?;
            Ok((rx, tx))
        })();
        let (rx, tx) = match r {
            Ok(q) => q,
            Err(e) => {
                transport.set_failed();
                return Err(e);
            }
        };
        let mut net = VirtioNet {
            transport,
            rx,
            tx,
            bufs: buffers,
            features,
            mac,
            counts,
            rx_slot: vec![None; usize::from(rx_size)],
            tx_slot: vec![None; usize::from(tx_size)],
            tx_free: (0..counts.tx).rev().collect(),
            frame: vec![0; MAX_FRAME],
            stats: NetStats::default(),
            reset: false,
        };
        let r = (|| {
            for slot in 0..counts.rx {
                net.post_rx(slot)?;
            }
            net.transport.driver_ok()?;
            Ok(())
        })();
        if let Err(e) = r {
            net.transport.set_failed();
            return Err(e);
        }
        net.kick_rx();
        Ok(net)
    }

    /// Gives up: marks the device FAILED and returns the port accessor.
    pub fn fail(mut self) -> P {
        self.transport.set_failed();
        self.transport.into_inner()
    }
}

/// Descriptors per buffer: one with `VIRTIO_F_ANY_LAYOUT`, else header and frame apart.
fn descs_per_buffer(features: u32) -> u16 {
    if features & features::ANY_LAYOUT != 0 {
        1
    } else {
        2
    }
}

/// A running virtio-net device.
#[derive(Debug)]
pub struct VirtioNet<P: PortIo, D: DmaRegion> {
    transport: LegacyTransport<P>,
    rx: Virtqueue<D>,
    tx: Virtqueue<D>,
    bufs: D,
    features: u32,
    mac: Mac,
    counts: BufferCounts,
    /// Per receive head descriptor: the slot posted with it.
    rx_slot: Vec<Option<u16>>,
    /// Per transmit head descriptor: the slot sent with it.
    tx_slot: Vec<Option<u16>>,
    /// Transmit slots (numbered from 0) not in flight.
    tx_free: Vec<u16>,
    /// Where a received frame is copied before it is delivered.
    frame: Vec<u8>,
    stats: NetStats,
    reset: bool,
}

impl<P: PortIo, D: DmaRegion> VirtioNet<P, D> {
    /// The device's MAC address.
    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// The accepted features.
    pub fn features(&self) -> u32 {
        self.features
    }

    /// The buffers in use.
    pub fn buffer_counts(&self) -> BufferCounts {
        self.counts
    }

    /// The counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// The receive queue (for inspection).
    pub fn rx_queue(&self) -> &Virtqueue<D> {
        &self.rx
    }

    /// The transmit queue (for inspection).
    pub fn tx_queue(&self) -> &Virtqueue<D> {
        &self.tx
    }

    /// Transmit buffers free now (without reaping completions).
    pub fn tx_free(&self) -> usize {
        self.tx_free.len()
    }

    /// Whether the link status is known (`VIRTIO_NET_F_STATUS` accepted).
    pub fn has_link_status(&self) -> bool {
        self.features & feature::STATUS != 0
    }

    /// Whether the link is up; without `VIRTIO_NET_F_STATUS`, always (as the spec says).
    /// Read it again after a configuration-change interrupt.
    pub fn link_up(&mut self) -> bool {
        !self.has_link_status() || self.transport.config_read16(config_off::STATUS) & link::UP != 0
    }

    /// Reads (and so acknowledges) the ISR: call from the interrupt handler, then
    /// [`VirtioNet::receive`] (and [`VirtioNet::link_up`] if the configuration changed).
    pub fn ack_interrupt(&mut self) -> Isr {
        self.transport.read_isr()
    }

    /// Asks the device not to interrupt for either queue (polling).
    pub fn disable_interrupts(&mut self) {
        self.rx.disable_interrupts();
        self.tx.disable_interrupts();
    }

    /// Asks the device to interrupt again; `true` if used buffers are already waiting
    /// (receive or reap them now).
    pub fn enable_interrupts(&mut self) -> bool {
        let rx = self.rx.enable_interrupts();
        let tx = self.tx.enable_interrupts();
        rx || tx
    }

    fn check_live(&self) -> Result<(), NetError> {
        if self.reset {
            return Err(NetError::Reset);
        }
        if self.rx.is_broken() {
            return Err(NetError::Queue(RX_QUEUE, QueueError::Broken));
        }
        if self.tx.is_broken() {
            return Err(NetError::Queue(TX_QUEUE, QueueError::Broken));
        }
        Ok(())
    }

    /// The buffer chain of slot `slot` (offset `off` in the buffer memory), `len` bytes
    /// of header and frame.
    fn chain(&self, off: usize, len: usize, writable: bool) -> ([Buf; 2], usize) {
        let hdr = Buf {
            addr: self.bufs.machine_addr(off),
            len: len as u32,
            writable,
        };
        if descs_per_buffer(self.features) == 1 {
            return ([hdr; 2], 1);
        }
        let data = Buf {
            addr: self.bufs.machine_addr(off + HDR_LEN),
            len: (len - HDR_LEN) as u32,
            writable,
        };
        (
            [
                Buf {
                    len: HDR_LEN as u32,
                    ..hdr
                },
                data,
            ],
            2,
        )
    }

    /// Posts receive slot `slot` on the receive queue (without notifying).
    fn post_rx(&mut self, slot: u16) -> Result<(), NetError> {
        let (bufs, n) = self.chain(usize::from(slot) * SLOT_SIZE, BUF_LEN, true);
        let head = self
            .rx
            .add(&bufs[..n])
            .map_err(|e| NetError::Queue(RX_QUEUE, e))?;
        if let Some(s) = self.rx_slot.get_mut(usize::from(head)) {
            *s = Some(slot);
        }
        Ok(())
    }

    fn kick_rx(&mut self) {
        if self.rx.should_notify() {
            self.transport.notify(RX_QUEUE);
        }
    }

    /// Delivers each frame the device received to `f` (without the virtio header), posts
    /// its buffer again and notifies the device. Returns how many were delivered; at
    /// most one queue's worth per call, so a busy device cannot hold the caller forever.
    ///
    /// A used length shorter than the header or longer than the buffer is
    /// [`NetError::BadUsedLen`]: that buffer is dropped and posted again, and the next
    /// call goes on with the following ones. Frames shorter than an Ethernet header are
    /// dropped and counted in [`NetStats::rx_errors`].
    pub fn receive(&mut self, mut f: impl FnMut(&[u8])) -> Result<usize, NetError> {
        self.check_live()?;
        let mut delivered = 0;
        let r = (|| {
            for _ in 0..self.rx.size() {
                let Some(used) = self
                    .rx
                    .pop_used()
                    .map_err(|e| NetError::Queue(RX_QUEUE, e))?
                else {
                    break;
                };
                let Some(slot) = self
                    .rx_slot
                    .get_mut(usize::from(used.head))
                    .and_then(Option::take)
                else {
                    // The queue only returns heads in flight, which all have a slot.
                    return Err(NetError::Queue(
                        RX_QUEUE,
                        QueueError::BadUsedId(u32::from(used.head)),
                    ));
                };
                let len = usize::try_from(used.len).unwrap_or(usize::MAX);
                let frame_len = match len.checked_sub(HDR_LEN) {
                    Some(n) if len <= BUF_LEN => Some(n),
                    _ => None,
                };
                if let Some(n) = frame_len.filter(|&n| n >= MIN_FRAME) {
                    let off = usize::from(slot) * SLOT_SIZE + HDR_LEN;
                    self.bufs.read(off, &mut self.frame[..n]);
                }
                self.post_rx(slot)?;
                match frame_len {
                    None => {
                        self.stats.rx_errors += 1;
                        return Err(NetError::BadUsedLen {
                            queue: RX_QUEUE,
                            len: used.len,
                        });
                    }
                    Some(n) if n < MIN_FRAME => self.stats.rx_errors += 1,
                    Some(n) => {
                        self.stats.rx_frames += 1;
                        self.stats.rx_bytes += n as u64;
                        delivered += 1;
                        f(&self.frame[..n]);
                    }
                }
            }
            Ok(())
        })();
        self.kick_rx();
        r.map(|()| delivered)
    }

    /// Takes the transmit buffers the device finished with off the used ring. Returns
    /// how many.
    pub fn reap_tx(&mut self) -> Result<usize, NetError> {
        self.check_live()?;
        let mut n = 0;
        while let Some(used) = self
            .tx
            .pop_used()
            .map_err(|e| NetError::Queue(TX_QUEUE, e))?
        {
            if let Some(slot) = self
                .tx_slot
                .get_mut(usize::from(used.head))
                .and_then(Option::take)
            {
                self.tx_free.push(slot);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Sends a frame (14..=1518 bytes, without FCS): copies it to a free transmit buffer
    /// behind a zero header and notifies the device. Never waits: [`NetError::Busy`]
    /// when every transmit buffer is still with the device.
    pub fn transmit(&mut self, frame: &[u8]) -> Result<(), NetError> {
        self.check_live()?;
        if frame.len() < MIN_FRAME {
            return Err(NetError::FrameTooShort(frame.len()));
        }
        if frame.len() > MAX_FRAME {
            return Err(NetError::FrameTooLong(frame.len()));
        }
        self.reap_tx()?;
        let Some(slot) = self.tx_free.pop() else {
            self.stats.tx_busy += 1;
            return Err(NetError::Busy);
        };
        let off = (usize::from(self.counts.rx) + usize::from(slot)) * SLOT_SIZE;
        self.bufs.write(off, &[0; HDR_LEN]);
        self.bufs.write(off + HDR_LEN, frame);
        let (bufs, n) = self.chain(off, HDR_LEN + frame.len(), false);
        let head = match self.tx.add(&bufs[..n]) {
            Ok(h) => h,
            Err(e) => {
                self.tx_free.push(slot);
                return Err(NetError::Queue(TX_QUEUE, e));
            }
        };
        if let Some(s) = self.tx_slot.get_mut(usize::from(head)) {
            *s = Some(slot);
        }
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += frame.len() as u64;
        if self.tx.should_notify() {
            self.transport.notify(TX_QUEUE);
        }
        Ok(())
    }

    /// Resets the device (it stops all DMA) and retires this driver instance: every
    /// other call then fails with [`NetError::Reset`]. Probe the device again to use it.
    pub fn reset(&mut self) {
        let _ = self.transport.reset();
        self.rx.reset();
        self.tx.reset();
        self.rx_slot.iter_mut().for_each(|s| *s = None);
        self.tx_slot.iter_mut().for_each(|s| *s = None);
        self.tx_free = (0..self.counts.tx).rev().collect();
        self.reset = true;
    }

    /// Stops driving the device (reset) and gives the port accessor and memory back:
    /// (ports, receive queue, transmit queue, buffers).
    pub fn into_parts(mut self) -> (P, D, D, D) {
        let _ = self.transport.reset();
        (
            self.transport.into_inner(),
            self.rx.into_region(),
            self.tx.into_region(),
            self.bufs,
        )
    }
}

#[cfg(test)]
mod tests {
    //! Against a fake legacy virtio-net device that reads its queues out of fake machine
    //! memory, as QEMU does, and checks every chain the driver makes available.
    use super::*;
    use crate::virtio::status;
    use proptest::prelude::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    const PAGE: usize = 4096;
    const MBASE: u64 = 0x20_0000;
    const MPAGES: usize = 256;
    const IO: u16 = 0xc000;
    const MAC: Mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    #[derive(Debug)]
    struct Dev {
        host_features: u32,
        guest_features: u32,
        status: u8,
        status_log: Vec<u8>,
        isr: u8,
        sel: u16,
        size: [u16; 2],
        pfn: [u32; 2],
        last_avail: [u16; 2],
        used_idx: [u16; 2],
        notifies: [u32; 2],
        mac: Mac,
        link: u16,
        /// Transmit chains fetched and not yet completed: (head, frame).
        tx_pending: Vec<(u16, Vec<u8>)>,
        violations: Vec<String>,
    }

    #[derive(Debug)]
    struct World {
        mem: Vec<u8>,
        dev: Dev,
    }

    type Shared = Rc<RefCell<World>>;
    /// A descriptor as the device reads it: address, length, device-writable.
    type Desc = (u64, u32, bool);

    impl World {
        fn new(host_features: u32, size: [u16; 2]) -> Shared {
            Rc::new(RefCell::new(World {
                mem: vec![0; MPAGES * PAGE],
                dev: Dev {
                    host_features,
                    guest_features: 0,
                    status: 0,
                    status_log: Vec::new(),
                    isr: 0,
                    sel: 0,
                    size,
                    pfn: [0; 2],
                    last_avail: [0; 2],
                    used_idx: [0; 2],
                    notifies: [0; 2],
                    mac: MAC,
                    link: link::UP,
                    tx_pending: Vec::new(),
                    violations: Vec::new(),
                },
            }))
        }

        fn at(&mut self, addr: u64, len: usize) -> Option<usize> {
            let off = addr.checked_sub(MBASE)? as usize;
            if off + len <= self.mem.len() {
                Some(off)
            } else {
                self.dev.violations.push(format!("DMA at {addr:#x}+{len}"));
                None
            }
        }
        fn rd(&mut self, addr: u64, n: usize) -> Vec<u8> {
            match self.at(addr, n) {
                Some(o) => self.mem[o..o + n].to_vec(),
                None => vec![0; n],
            }
        }
        fn wr(&mut self, addr: u64, data: &[u8]) {
            if let Some(o) = self.at(addr, data.len()) {
                self.mem[o..o + data.len()].copy_from_slice(data);
            }
        }
        fn r16(&mut self, a: u64) -> u16 {
            u16::from_le_bytes(self.rd(a, 2).try_into().unwrap())
        }
        fn r32(&mut self, a: u64) -> u32 {
            u32::from_le_bytes(self.rd(a, 4).try_into().unwrap())
        }
        fn r64(&mut self, a: u64) -> u64 {
            u64::from_le_bytes(self.rd(a, 8).try_into().unwrap())
        }

        fn layout(&self, q: usize) -> (u64, Layout) {
            (
                u64::from(self.dev.pfn[q]) << 12,
                Layout::legacy(self.dev.size[q]).unwrap(),
            )
        }

        fn running(&self) -> bool {
            self.dev.status & status::DRIVER_OK != 0
        }

        /// The next available chain of queue `q`: (head, [(addr, len, writable)]).
        fn next_chain(&mut self, q: usize) -> Option<(u16, Vec<Desc>)> {
            let (base, l) = self.layout(q);
            let n = l.size;
            let avail_idx = self.r16(base + l.avail as u64 + 2);
            if avail_idx == self.dev.last_avail[q] {
                return None;
            }
            let slot = u64::from(self.dev.last_avail[q] % n);
            let head = self.r16(base + l.avail as u64 + 4 + 2 * slot);
            self.dev.last_avail[q] = self.dev.last_avail[q].wrapping_add(1);
            if self.dev.guest_features & features::RING_EVENT_IDX != 0 {
                let ev = base + l.used as u64 + 4 + 8 * u64::from(n);
                let v = self.dev.last_avail[q];
                self.wr(ev, &v.to_le_bytes());
            }
            let mut descs = Vec::new();
            let mut i = head;
            loop {
                if i >= n || descs.len() > usize::from(n) {
                    self.dev.violations.push(format!("bad chain at {head}"));
                    return None;
                }
                let d = base + 16 * u64::from(i);
                let (addr, len, flags, next) = (
                    self.r64(d),
                    self.r32(d + 8),
                    self.r16(d + 12),
                    self.r16(d + 14),
                );
                descs.push((addr, len, flags & 2 != 0));
                if flags & 1 == 0 {
                    break;
                }
                i = next;
            }
            let any = self.dev.guest_features & features::ANY_LAYOUT != 0;
            let want = if any { 1 } else { 2 };
            if descs.len() != want || (!any && descs[0].1 != HDR_LEN as u32) {
                self.dev
                    .violations
                    .push(format!("queue {q}: chain {descs:x?}"));
            }
            if descs.iter().any(|d| d.2 != (q == 0)) {
                self.dev
                    .violations
                    .push(format!("queue {q}: direction {descs:x?}"));
            }
            Some((head, descs))
        }

        fn push_used(&mut self, q: usize, id: u32, len: u32) {
            let (base, l) = self.layout(q);
            let slot = u64::from(self.dev.used_idx[q] % l.size);
            let e = base + l.used as u64 + 4 + 8 * slot;
            self.wr(e, &id.to_le_bytes());
            self.wr(e + 4, &len.to_le_bytes());
            self.dev.used_idx[q] = self.dev.used_idx[q].wrapping_add(1);
            let v = self.dev.used_idx[q];
            self.wr(base + l.used as u64 + 2, &v.to_le_bytes());
            self.dev.isr |= 1;
        }

        /// The wire gives the device a frame: into the next receive buffer, if any.
        /// `len_override` replaces the used length the device reports.
        fn deliver(&mut self, frame: &[u8], len_override: Option<u32>) -> bool {
            if !self.running() {
                return false;
            }
            let Some((head, descs)) = self.next_chain(0) else {
                return false;
            };
            let mut data = vec![0u8; HDR_LEN];
            data.extend_from_slice(frame);
            let cap: usize = descs.iter().map(|d| d.1 as usize).sum();
            if data.len() > cap {
                self.dev.violations.push("rx buffer too small".into());
                return false;
            }
            let mut pos = 0;
            for (a, l, _) in descs {
                let k = (l as usize).min(data.len() - pos);
                let chunk = data[pos..pos + k].to_vec();
                self.wr(a, &chunk);
                pos += k;
            }
            self.push_used(
                0,
                u32::from(head),
                len_override.unwrap_or(data.len() as u32),
            );
            true
        }

        /// Fetches every available transmit chain.
        fn fetch_tx(&mut self) {
            if !self.running() {
                return;
            }
            while let Some((head, descs)) = self.next_chain(1) {
                let mut bytes = Vec::new();
                for (a, l, _) in descs {
                    let b = self.rd(a, l as usize);
                    bytes.extend(b);
                }
                if bytes.len() < HDR_LEN || bytes[..HDR_LEN] != [0; HDR_LEN] {
                    self.dev.violations.push(format!("tx header {bytes:x?}"));
                    continue;
                }
                self.dev.tx_pending.push((head, bytes[HDR_LEN..].to_vec()));
            }
        }

        /// Completes fetched transmit chains, newest first if `reverse`; returns frames.
        fn complete_tx(&mut self, reverse: bool) -> Vec<Vec<u8>> {
            let mut p = core::mem::take(&mut self.dev.tx_pending);
            if reverse {
                p.reverse();
            }
            for (h, _) in &p {
                self.push_used(1, u32::from(*h), 0);
            }
            if reverse {
                p.reverse();
            }
            p.into_iter().map(|x| x.1).collect()
        }

        fn config(&self) -> [u8; 8] {
            let mut c = [0u8; 8];
            c[..6].copy_from_slice(&self.dev.mac);
            c[6..].copy_from_slice(&self.dev.link.to_le_bytes());
            c
        }

        fn port_read(&mut self, port: u16, w: u16) -> u32 {
            let off = port.wrapping_sub(IO);
            let q = usize::from(self.dev.sel);
            match (off, w) {
                (0x00, 4) => self.dev.host_features,
                (0x04, 4) => self.dev.guest_features,
                (0x08, 4) => self.dev.pfn.get(q).copied().unwrap_or(0),
                (0x0c, 2) => u32::from(self.dev.size.get(q).copied().unwrap_or(0)),
                (0x12, 1) => u32::from(self.dev.status),
                (0x13, 1) => u32::from(core::mem::take(&mut self.dev.isr)),
                (o, w) if (0x14..0x1c).contains(&o) && o - 0x14 + w <= 8 => {
                    let c = self.config();
                    let s = usize::from(o - 0x14);
                    let mut b = [0u8; 4];
                    b[..usize::from(w)].copy_from_slice(&c[s..s + usize::from(w)]);
                    u32::from_le_bytes(b)
                }
                _ => {
                    self.dev.violations.push(format!("in{} +{off:#x}", w * 8));
                    !0
                }
            }
        }

        fn port_write(&mut self, port: u16, w: u16, val: u32) {
            let off = port.wrapping_sub(IO);
            match (off, w) {
                (0x04, 4) => {
                    if val & !self.dev.host_features != 0 || val & features::BAD_FEATURE != 0 {
                        self.dev.violations.push(format!("features {val:#x}"));
                    }
                    self.dev.guest_features = val;
                }
                (0x08, 4) => {
                    let q = usize::from(self.dev.sel);
                    if q < 2 {
                        self.dev.pfn[q] = val;
                    }
                }
                (0x0e, 2) => self.dev.sel = val as u16,
                (0x10, 2) => {
                    if !self.running() {
                        self.dev.violations.push("notify before DRIVER_OK".into());
                    }
                    match val {
                        0 => self.dev.notifies[0] += 1,
                        1 => {
                            self.dev.notifies[1] += 1;
                            self.fetch_tx();
                        }
                        q => self.dev.violations.push(format!("notify {q}")),
                    }
                }
                (0x12, 1) => {
                    let v = val as u8;
                    self.dev.status_log.push(v);
                    self.dev.status = v;
                    if v == 0 {
                        let d = &mut self.dev;
                        d.guest_features = 0;
                        d.pfn = [0; 2];
                        d.last_avail = [0; 2];
                        d.used_idx = [0; 2];
                        d.tx_pending.clear();
                    }
                }
                _ => self.dev.violations.push(format!("out{} +{off:#x}", w * 8)),
            }
        }
    }

    #[derive(Debug)]
    struct Ports(Shared);

    impl PortIo for Ports {
        fn in8(&mut self, p: u16) -> u8 {
            self.0.borrow_mut().port_read(p, 1) as u8
        }
        fn in16(&mut self, p: u16) -> u16 {
            self.0.borrow_mut().port_read(p, 2) as u16
        }
        fn in32(&mut self, p: u16) -> u32 {
            self.0.borrow_mut().port_read(p, 4)
        }
        fn out8(&mut self, p: u16, v: u8) {
            self.0.borrow_mut().port_write(p, 1, v.into())
        }
        fn out16(&mut self, p: u16, v: u16) {
            self.0.borrow_mut().port_write(p, 2, v.into())
        }
        fn out32(&mut self, p: u16, v: u32) {
            self.0.borrow_mut().port_write(p, 4, v)
        }
    }

    /// Driver memory: a list of machine pages.
    #[derive(Debug)]
    struct Region {
        world: Shared,
        pages: Vec<u64>,
        len: usize,
    }

    impl Region {
        fn each(&self, off: usize, len: usize, mut f: impl FnMut(usize, usize, usize)) {
            assert!(
                off + len <= self.len,
                "driver accessed {off}+{len} of {}",
                self.len
            );
            let mut done = 0;
            while done < len {
                let o = off + done;
                let n = (PAGE - o % PAGE).min(len - done);
                let m = (self.pages[o / PAGE] - MBASE) as usize + o % PAGE;
                f(m, done, n);
                done += n;
            }
        }
    }

    impl DmaRegion for Region {
        fn len(&self) -> usize {
            self.len
        }
        fn machine_addr(&self, off: usize) -> u64 {
            assert!(off < self.len);
            self.pages[off / PAGE] + (off % PAGE) as u64
        }
        fn read(&self, off: usize, buf: &mut [u8]) {
            let w = self.world.borrow();
            self.each(off, buf.len(), |m, d, n| {
                buf[d..d + n].copy_from_slice(&w.mem[m..m + n])
            });
        }
        fn write(&mut self, off: usize, data: &[u8]) {
            let mut w = self.world.borrow_mut();
            self.each(off, data.len(), |m, d, n| {
                w.mem[m..m + n].copy_from_slice(&data[d..d + n])
            });
        }
        fn fence(&self) {}
    }

    /// Contiguous pages for the queues from the bottom, the buffers from the top in
    /// descending (so discontiguous) order.
    struct Alloc {
        world: Shared,
        low: u64,
        high: u64,
    }

    impl Alloc {
        fn new(world: &Shared) -> Alloc {
            Alloc {
                world: world.clone(),
                low: MBASE,
                high: MBASE + (MPAGES * PAGE) as u64,
            }
        }
        fn contiguous(&mut self, len: usize) -> Region {
            let n = len.div_ceil(PAGE);
            let pages = (0..n).map(|i| self.low + (i * PAGE) as u64).collect();
            self.low += (n * PAGE) as u64;
            Region {
                world: self.world.clone(),
                pages,
                len,
            }
        }
        fn scattered(&mut self, len: usize) -> Region {
            let n = len.div_ceil(PAGE);
            let pages = (0..n)
                .map(|_| {
                    self.high -= PAGE as u64;
                    self.high
                })
                .collect();
            Region {
                world: self.world.clone(),
                pages,
                len,
            }
        }
    }

    type Net = VirtioNet<Ports, Region>;

    fn rig_with(host_features: u32, size: [u16; 2], want: BufferCounts) -> (Shared, Net) {
        let w = World::new(host_features, size);
        let probe = NetProbe::new(LegacyTransport::new(Ports(w.clone()), IO)).unwrap();
        let mut a = Alloc::new(&w);
        let rxq = a.contiguous(probe.rx_queue_bytes());
        let txq = a.contiguous(probe.tx_queue_bytes());
        let bufs = a.scattered(probe.buffer_bytes(want));
        let net = probe.start(rxq, txq, bufs, want).unwrap();
        (w, net)
    }

    const QEMU_FEATURES: u32 = feature::MAC
        | feature::STATUS
        | feature::CSUM
        | feature::GUEST_CSUM
        | feature::MRG_RXBUF
        | feature::CTRL_VQ
        | features::RING_EVENT_IDX
        | features::ANY_LAYOUT
        | features::NOTIFY_ON_EMPTY
        | features::BAD_FEATURE;

    fn rig() -> (Shared, Net) {
        rig_with(QEMU_FEATURES, [256, 256], BufferCounts { rx: 8, tx: 4 })
    }

    fn eth(n: usize, seed: u8) -> Vec<u8> {
        let mut f: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(13) ^ seed).collect();
        let k = n.min(6);
        f[..k].copy_from_slice(&MAC[..k]);
        f
    }

    fn recv_all(net: &mut Net) -> Result<Vec<Vec<u8>>, NetError> {
        let mut got = Vec::new();
        net.receive(|f| got.push(f.to_vec()))?;
        Ok(got)
    }

    fn clean(w: &Shared) {
        let v = &w.borrow().dev.violations;
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn init_sequence() {
        let (w, net) = rig();
        {
            let d = &w.borrow().dev;
            assert_eq!(d.status_log, [0, 1, 3, 7]);
            assert_eq!(
                d.guest_features,
                feature::MAC | feature::STATUS | features::RING_EVENT_IDX | features::ANY_LAYOUT
            );
            assert_eq!(d.pfn[0], (MBASE >> 12) as u32);
            assert_ne!(d.pfn[1], 0);
            assert_eq!(d.notifies, [1, 0]);
        }
        assert_eq!(net.mac(), MAC);
        assert_eq!(net.buffer_counts(), BufferCounts { rx: 8, tx: 4 });
        assert_eq!(net.rx_queue().in_flight(), 8);
        assert_eq!(net.tx_free(), 4);
        assert!(net.has_link_status());
        clean(&w);
    }

    #[test]
    fn receive_and_repost() {
        for features in [QEMU_FEATURES, QEMU_FEATURES & !features::ANY_LAYOUT] {
            let (w, mut net) = rig_with(features, [16, 16], BufferCounts::DEFAULT);
            let per = if features & features::ANY_LAYOUT != 0 {
                1
            } else {
                2
            };
            assert_eq!(
                net.buffer_counts(),
                BufferCounts {
                    rx: 16 / per,
                    tx: 16 / per
                }
            );
            assert_eq!(recv_all(&mut net).unwrap(), Vec::<Vec<u8>>::new());
            // More frames than buffers, across several receive calls.
            let frames: Vec<Vec<u8>> = (0..40).map(|i| eth(14 + i * 37, i as u8)).collect();
            let mut got = Vec::new();
            for chunk in frames.chunks(5) {
                for f in chunk {
                    assert!(w.borrow_mut().deliver(f, None), "buffer available");
                }
                got.extend(recv_all(&mut net).unwrap());
            }
            assert_eq!(got, frames);
            let s = net.stats();
            assert_eq!(s.rx_frames, 40);
            assert_eq!(
                s.rx_bytes,
                frames.iter().map(|f| f.len() as u64).sum::<u64>()
            );
            assert_eq!(net.rx_queue().in_flight(), 16 / per);
            let largest = eth(MAX_FRAME, 9);
            assert!(w.borrow_mut().deliver(&largest, None));
            assert_eq!(recv_all(&mut net).unwrap(), [largest]);
            clean(&w);
        }
    }

    #[test]
    fn transmit_busy_and_reap() {
        for features in [QEMU_FEATURES, QEMU_FEATURES & !features::ANY_LAYOUT] {
            let (w, mut net) = rig_with(features, [8, 8], BufferCounts { rx: 2, tx: 3 });
            let frames: Vec<Vec<u8>> = (0..3).map(|i| eth(60 + i, i as u8)).collect();
            for f in &frames {
                net.transmit(f).unwrap();
            }
            assert_eq!(net.transmit(&frames[0]), Err(NetError::Busy));
            assert_eq!(net.stats().tx_busy, 1);
            assert_eq!(w.borrow_mut().complete_tx(true), frames);
            assert_eq!(net.reap_tx().unwrap(), 3);
            assert_eq!(net.tx_free(), 3);
            // Transmit reaps by itself.
            for round in 0..20u8 {
                let f = eth(MAX_FRAME - usize::from(round), round);
                net.transmit(&f).unwrap();
                assert_eq!(w.borrow_mut().complete_tx(false), [f]);
            }
            assert_eq!(net.transmit(&[0; 13]), Err(NetError::FrameTooShort(13)));
            assert_eq!(
                net.transmit(&[0; MAX_FRAME + 1]),
                Err(NetError::FrameTooLong(MAX_FRAME + 1))
            );
            assert_eq!(net.stats().tx_frames, 23);
            clean(&w);
        }
    }

    #[test]
    fn bad_used_lengths_are_errors_and_buffers_come_back() {
        let (w, mut net) = rig();
        let f = eth(100, 1);
        for bad in [0u32, 9, BUF_LEN as u32 + 1, u32::MAX] {
            assert!(w.borrow_mut().deliver(&f, Some(bad)));
            assert!(w.borrow_mut().deliver(&f, None));
            assert_eq!(
                recv_all(&mut net),
                Err(NetError::BadUsedLen { queue: 0, len: bad })
            );
            assert_eq!(recv_all(&mut net).unwrap(), core::slice::from_ref(&f));
            assert_eq!(net.rx_queue().in_flight(), 8);
        }
        // A runt is dropped and counted, not an error.
        assert!(w.borrow_mut().deliver(&f, Some(HDR_LEN as u32 + 13)));
        assert_eq!(recv_all(&mut net).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(net.stats().rx_errors, 5);
        assert_eq!(net.rx_queue().in_flight(), 8);
        clean(&w);
    }

    #[test]
    fn bad_used_ids_break_and_reset_retires() {
        let (w, mut net) = rig();
        w.borrow_mut().push_used(0, 200, 60);
        assert_eq!(
            recv_all(&mut net),
            Err(NetError::Queue(0, QueueError::BadUsedId(200)))
        );
        assert_eq!(
            net.transmit(&eth(60, 0)),
            Err(NetError::Queue(0, QueueError::Broken))
        );
        net.reset();
        assert_eq!(recv_all(&mut net), Err(NetError::Reset));
        assert_eq!(net.transmit(&eth(60, 0)), Err(NetError::Reset));
        assert_eq!(w.borrow().dev.status, 0);

        // A used index running ahead on the transmit queue.
        let (w, mut net) = rig();
        net.transmit(&eth(60, 0)).unwrap();
        w.borrow_mut().push_used(1, 0, 0);
        w.borrow_mut().push_used(1, 0, 0);
        assert!(matches!(
            net.reap_tx(),
            Err(NetError::Queue(1, QueueError::UsedIdxJump { .. }))
        ));
        let (_p, _rq, _tq, _b) = net.into_parts();
    }

    #[test]
    fn probe_errors() {
        let probe = |features: u32, size: [u16; 2], mac: Mac| {
            let w = World::new(features, size);
            w.borrow_mut().dev.mac = mac;
            let r = NetProbe::new(LegacyTransport::new(Ports(w.clone()), IO)).map(|_| ());
            let failed = w.borrow().dev.status & status::FAILED != 0;
            (r, failed)
        };
        assert_eq!(probe(QEMU_FEATURES, [8, 8], MAC), (Ok(()), false));
        assert_eq!(
            probe(QEMU_FEATURES & !feature::MAC, [8, 8], MAC),
            (Err(NetError::NoMac), true)
        );
        let mc = [1, 2, 3, 4, 5, 6];
        assert_eq!(
            probe(QEMU_FEATURES, [8, 8], mc),
            (Err(NetError::BadMac(mc)), true)
        );
        assert_eq!(
            probe(QEMU_FEATURES, [8, 0], MAC),
            (Err(NetError::Transport(TransportError::NoQueue(1))), true)
        );
        assert_eq!(
            probe(QEMU_FEATURES, [6, 8], MAC),
            (Err(NetError::Queue(0, QueueError::BadSize(6))), true)
        );
        assert_eq!(
            probe(QEMU_FEATURES & !features::ANY_LAYOUT, [8, 1], MAC),
            (Err(NetError::QueueTooSmall(1, 1)), true)
        );

        // Memory too small, no buffers.
        let w = World::new(QEMU_FEATURES, [8, 8]);
        let p = NetProbe::new(LegacyTransport::new(Ports(w.clone()), IO)).unwrap();
        let mut a = Alloc::new(&w);
        let (rq, tq) = (
            a.contiguous(p.rx_queue_bytes()),
            a.contiguous(p.tx_queue_bytes()),
        );
        let want = BufferCounts { rx: 4, tx: 4 };
        let b = a.scattered(p.buffer_bytes(want) - 1);
        assert_eq!(
            p.start(rq, tq, b, want).unwrap_err(),
            NetError::MemoryTooSmall {
                need: 8 * SLOT_SIZE,
                have: 8 * SLOT_SIZE - 1
            }
        );
        assert_ne!(w.borrow().dev.status & status::FAILED, 0);
        let p = NetProbe::new(LegacyTransport::new(Ports(w.clone()), IO)).unwrap();
        let (rq, tq) = (
            a.contiguous(p.rx_queue_bytes()),
            a.contiguous(p.tx_queue_bytes()),
        );
        let b = a.scattered(PAGE);
        assert_eq!(
            p.start(rq, tq, b, BufferCounts { rx: 0, tx: 1 })
                .unwrap_err(),
            NetError::NoBuffers
        );
    }

    #[test]
    fn link_status_and_interrupts() {
        let (w, mut net) = rig();
        assert!(net.link_up());
        w.borrow_mut().dev.link = 0;
        assert!(!net.link_up());
        let (w2, mut net2) = rig_with(
            QEMU_FEATURES & !feature::STATUS,
            [8, 8],
            BufferCounts::DEFAULT,
        );
        w2.borrow_mut().dev.link = 0;
        assert!(!net2.has_link_status());
        assert!(net2.link_up());

        net.disable_interrupts();
        assert!(!net.enable_interrupts());
        w.borrow_mut().deliver(&eth(60, 0), None);
        assert!(net.ack_interrupt().queue());
        assert!(!net.ack_interrupt().queue());
        net.disable_interrupts();
        assert!(net.enable_interrupts(), "a frame is waiting");
        assert_eq!(recv_all(&mut net).unwrap().len(), 1);
        clean(&w);
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            NetError::BadMac([1, 0, 0, 0, 0, 0xff]).to_string(),
            "virtio-net: device MAC 01:00:00:00:00:ff is not a station address"
        );
        assert_eq!(
            NetError::BadUsedLen { queue: 0, len: 3 }.to_string(),
            "virtio-net: device used length 3 on queue 0"
        );
    }

    #[derive(Debug, Clone)]
    enum Act {
        /// The wire delivers a frame of this length (clamped), maybe with a bad length.
        Deliver(usize, Option<u32>),
        Receive,
        Transmit(usize),
        CompleteTx(bool),
        /// A used entry with an arbitrary id on a queue.
        Garbage(bool, u32, u32),
    }

    fn act() -> impl Strategy<Value = Act> {
        prop_oneof![
            6 => (0usize..1600, prop::option::weighted(0.1, any::<u32>())).prop_map(|(n, l)| Act::Deliver(n, l)),
            4 => Just(Act::Receive),
            4 => (0usize..1600).prop_map(Act::Transmit),
            3 => any::<bool>().prop_map(Act::CompleteTx),
            1 => (any::<bool>(), any::<u32>(), any::<u32>()).prop_map(|(q, i, l)| Act::Garbage(q, i, l)),
        ]
    }

    proptest! {
        /// Whatever the device does, the driver never panics or touches memory outside
        /// what it owns; while the device behaves, every frame arrives intact and in
        /// order, each exactly once.
        #[test]
        fn driver_survives_any_device(
            acts in prop::collection::vec(act(), 1..150),
            any_layout in any::<bool>(),
            rx in 1u16..6, tx in 1u16..6,
        ) {
            let f = if any_layout { QEMU_FEATURES } else { QEMU_FEATURES & !features::ANY_LAYOUT };
            let (w, mut net) = rig_with(f, [16, 8], BufferCounts { rx, tx });
            let mut expect_rx: Vec<Vec<u8>> = Vec::new();
            let mut expect_tx: Vec<Vec<u8>> = Vec::new();
            let mut sent: Vec<Vec<u8>> = Vec::new();
            let mut misbehaved = false;
            for (i, a) in acts.into_iter().enumerate() {
                match a {
                    Act::Deliver(n, bad) => {
                        let fr = eth(n.clamp(14, MAX_FRAME), i as u8);
                        let bad = bad.filter(|&l| !(HDR_LEN as u32 + 14..=BUF_LEN as u32).contains(&l));
                        if w.borrow_mut().deliver(&fr, bad) && bad.is_none() {
                            expect_rx.push(fr);
                        }
                    }
                    Act::Receive => {
                        let mut got = Vec::new();
                        let r = net.receive(|x| got.push(x.to_vec()));
                        if !misbehaved {
                            // Frames before a bad length came out in order.
                            prop_assert!(got.len() <= expect_rx.len());
                            prop_assert_eq!(&got[..], &expect_rx[..got.len()]);
                            expect_rx.drain(..got.len());
                            if r.is_ok() {
                                prop_assert!(expect_rx.is_empty());
                            }
                        }
                        if let Err(NetError::Queue(..) | NetError::Reset) = r {
                            misbehaved = true;
                        }
                    }
                    Act::Transmit(n) => {
                        let fr = eth(n.max(1), i as u8);
                        match net.transmit(&fr) {
                            Ok(()) => expect_tx.push(fr),
                            Err(NetError::Busy) => prop_assert_eq!(net.tx_free(), 0),
                            Err(NetError::FrameTooShort(_)) => prop_assert!(fr.len() < 14),
                            Err(NetError::FrameTooLong(_)) => prop_assert!(fr.len() > MAX_FRAME),
                            Err(_) => prop_assert!(misbehaved),
                        }
                    }
                    Act::CompleteTx(rev) => {
                        let mut w = w.borrow_mut();
                        w.fetch_tx();
                        sent.extend(w.complete_tx(rev));
                    }
                    Act::Garbage(q, id, len) => {
                        w.borrow_mut().push_used(usize::from(q), id, len);
                        misbehaved = true;
                    }
                }
                if misbehaved && (net.rx_queue().is_broken() || net.tx_queue().is_broken()) {
                    net.reset();
                }
            }
            if !misbehaved {
                prop_assert_eq!(&sent[..], &expect_tx[..sent.len()]);
                prop_assert!(net.tx_free() <= usize::from(tx));
            }
            clean(&w);
        }
    }
}
