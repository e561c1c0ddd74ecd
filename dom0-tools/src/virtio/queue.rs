//! The split virtqueue in the legacy layout (virtio 1.x §2.7, legacy §2.7.2 / the
//! 0.9.5 `vring`): a descriptor table, the driver's avail ring and, on the next 4 KiB
//! boundary, the device's used ring, all in one machine-contiguous [`DmaRegion`] whose
//! page frame number is what the legacy transport's queue address register takes.
//!
//! The driver keeps its own shadow of everything it owns (free list, chain lengths,
//! indices): the ring memory is only written for the device and read for what the
//! device reports (used ring, its flags and `avail_event`). Anything the device reports
//! that cannot be true — a used index more than the in-flight chains ahead, a used id
//! out of range or not the head of an in-flight chain — marks the queue broken and is
//! returned as an error; the caller then resets the device ([`Virtqueue::reset`]).
//!
//! Heads are reused, so "the head of an in-flight chain" is checked against when the
//! entry was published: before making a chain available the driver reads `used.idx`,
//! and a used entry at an earlier position cannot be that chain's (the device published
//! it before it could have seen the chain). Without this, a bogus id naming a head that
//! was free when the device wrote it would be taken for the completion of whatever
//! chain reused that head before the entry was popped — a completion the device never
//! made.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::{DmaRegion, PAGE_SIZE};

/// Descriptor flag: the chain continues in `next`.
pub const VRING_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes this buffer (otherwise it reads it).
pub const VRING_DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer holds a table of indirect descriptors (not used here).
pub const VRING_DESC_F_INDIRECT: u16 = 4;
/// Avail-ring flag: the driver does not want interrupts.
pub const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used-ring flag: the device does not want notifications.
pub const VRING_USED_F_NO_NOTIFY: u16 = 1;
/// Largest queue the split layout allows.
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// Size of one descriptor (`addr: u64, len: u32, flags: u16, next: u16`).
pub const DESC_SIZE: usize = 16;
/// Size of one used element (`id: u32, len: u32`).
pub const USED_ELEM_SIZE: usize = 8;

/// Where each part of a queue of `size` entries lies in its region (legacy layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Number of descriptors / ring entries (a power of two).
    pub size: u16,
    /// Offset of the descriptor table (0).
    pub desc: usize,
    /// Offset of the avail ring: `flags, idx, ring[size], used_event`.
    pub avail: usize,
    /// Offset of the used ring, 4 KiB aligned: `flags, idx, ring[size], avail_event`.
    pub used: usize,
    /// Bytes the queue needs, a whole number of pages.
    pub total: usize,
}

const fn align_up(x: usize, a: usize) -> usize {
    (x + a - 1) & !(a - 1)
}

impl Layout {
    /// The legacy layout of a queue of `size` entries; `size` must be a power of two
    /// between 1 and 32768 (the device reports it; anything else is refused).
    pub fn legacy(size: u16) -> Result<Layout, QueueError> {
        if size == 0 || !size.is_power_of_two() || size > MAX_QUEUE_SIZE {
            return Err(QueueError::BadSize(size));
        }
        let n = usize::from(size);
        let avail = DESC_SIZE * n;
        let avail_end = avail + 4 + 2 * n + 2;
        let used = align_up(avail_end, PAGE_SIZE);
        let used_end = used + 4 + USED_ELEM_SIZE * n + 2;
        Ok(Layout {
            size,
            desc: 0,
            avail,
            used,
            total: align_up(used_end, PAGE_SIZE),
        })
    }

    fn desc_off(&self, i: u16) -> usize {
        self.desc + DESC_SIZE * usize::from(i)
    }
    fn avail_idx_off(&self) -> usize {
        self.avail + 2
    }
    fn avail_ring_off(&self, slot: u16) -> usize {
        self.avail + 4 + 2 * usize::from(slot)
    }
    fn used_event_off(&self) -> usize {
        self.avail + 4 + 2 * usize::from(self.size)
    }
    fn used_idx_off(&self) -> usize {
        self.used + 2
    }
    fn used_elem_off(&self, slot: u16) -> usize {
        self.used + 4 + USED_ELEM_SIZE * usize::from(slot)
    }
    fn avail_event_off(&self) -> usize {
        self.used + 4 + USED_ELEM_SIZE * usize::from(self.size)
    }
}

/// What went wrong with a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The device reported a queue size that is 0, not a power of two or too large.
    BadSize(u16),
    /// The region is smaller than the layout needs.
    RegionTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        have: usize,
    },
    /// The region is not page-aligned and machine-contiguous (at this offset).
    NotContiguous(usize),
    /// The queue's page frame number does not fit the legacy 32-bit register.
    AddressTooHigh(u64),
    /// A chain with no buffers.
    EmptyChain,
    /// A zero-length buffer.
    ZeroLength,
    /// A device-readable buffer after a device-writable one (the spec orders them).
    BadOrder,
    /// A chain longer than the whole queue: it can never be added.
    ChainTooLong(usize),
    /// Not enough free descriptors now; retry after completions.
    Full,
    /// The device moved `used.idx` further than there are chains in flight.
    UsedIdxJump {
        /// The index the device wrote.
        used_idx: u16,
        /// The driver's last seen index.
        last_used: u16,
        /// Chains in flight.
        in_flight: u16,
    },
    /// The device returned a used id that is not the head of an in-flight chain.
    BadUsedId(u32),
    /// The queue was marked broken by an earlier device error; reset the device.
    Broken,
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::BadSize(s) => write!(f, "bad queue size {s}"),
            QueueError::RegionTooSmall { need, have } => {
                write!(f, "queue memory too small: {have} bytes, need {need}")
            }
            QueueError::NotContiguous(o) => {
                write!(
                    f,
                    "queue memory not page-aligned and contiguous at offset {o:#x}"
                )
            }
            QueueError::AddressTooHigh(a) => write!(f, "queue at {a:#x} above the legacy limit"),
            QueueError::EmptyChain => f.write_str("empty buffer chain"),
            QueueError::ZeroLength => f.write_str("zero-length buffer"),
            QueueError::BadOrder => f.write_str("device-readable buffer after a writable one"),
            QueueError::ChainTooLong(n) => write!(f, "chain of {n} buffers longer than the queue"),
            QueueError::Full => f.write_str("queue full"),
            QueueError::UsedIdxJump {
                used_idx,
                last_used,
                in_flight,
            } => write!(
                f,
                "device moved used.idx from {last_used} to {used_idx} with {in_flight} in flight"
            ),
            QueueError::BadUsedId(id) => write!(f, "device returned bad used id {id}"),
            QueueError::Broken => f.write_str("queue broken by an earlier device error"),
        }
    }
}

/// One buffer of a chain: machine address, length, and whether the device writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buf {
    /// Machine address of the first byte.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// Device-writable (`VRING_DESC_F_WRITE`).
    pub writable: bool,
}

/// A chain the device has finished with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Used {
    /// Head descriptor of the chain (what [`Virtqueue::add`] returned).
    pub head: u16,
    /// Bytes the device says it wrote. Untrusted: a hint only.
    pub len: u32,
}

/// `vring_need_event`: whether moving the avail index from `old` to `new` crosses the
/// device's `event` index.
pub const fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

/// A split virtqueue over a [`DmaRegion`].
#[derive(Debug)]
pub struct Virtqueue<D: DmaRegion> {
    mem: D,
    layout: Layout,
    event_idx: bool,
    /// Shadow `next` links: the free list, and the order of each chain.
    next: Vec<u16>,
    /// For a head of an in-flight chain, its length; 0 otherwise.
    chain_len: Vec<u16>,
    /// For a head of an in-flight chain, the first used-ring position (counted like
    /// `popped`) its completion can take: the device had published `used.idx` up to
    /// there before the chain was made available.
    first_used: Vec<u64>,
    /// Used entries popped since the queue was (re)started: the position of the next
    /// one, without wrapping.
    popped: u64,
    free_head: u16,
    num_free: u16,
    in_flight: u16,
    avail_idx: u16,
    avail_flags: u16,
    kick_old: u16,
    added: u32,
    last_used: u16,
    broken: bool,
}

impl<D: DmaRegion> Virtqueue<D> {
    /// A queue of `size` entries (as the device reported) in `mem`, which must be at least
    /// [`Layout::total`] bytes, page-aligned and machine-contiguous, with a page frame
    /// number below 2^32. `event_idx`: `VIRTIO_RING_F_EVENT_IDX` was negotiated.
    /// The memory is zeroed.
    pub fn new(mut mem: D, size: u16, event_idx: bool) -> Result<Virtqueue<D>, QueueError> {
        let layout = Layout::legacy(size)?;
        if mem.len() < layout.total {
            return Err(QueueError::RegionTooSmall {
                need: layout.total,
                have: mem.len(),
            });
        }
        let base = mem.machine_addr(0);
        if !base.is_multiple_of(PAGE_SIZE as u64) {
            return Err(QueueError::NotContiguous(0));
        }
        for off in (0..layout.total).step_by(PAGE_SIZE) {
            if mem.machine_addr(off) != base.wrapping_add(off as u64) {
                return Err(QueueError::NotContiguous(off));
            }
        }
        if (base >> 12) > u64::from(u32::MAX) {
            return Err(QueueError::AddressTooHigh(base));
        }
        let zeros = [0u8; 256];
        for off in (0..layout.total).step_by(zeros.len()) {
            let n = zeros.len().min(layout.total - off);
            mem.write(off, &zeros[..n]);
        }
        mem.fence();
        let n = usize::from(size);
        Ok(Virtqueue {
            mem,
            layout,
            event_idx,
            next: (1..=n).map(|i| (i % n) as u16).collect(),
            chain_len: vec![0; n],
            first_used: vec![0; n],
            popped: 0,
            free_head: 0,
            num_free: size,
            in_flight: 0,
            avail_idx: 0,
            avail_flags: 0,
            kick_old: 0,
            added: 0,
            last_used: 0,
            broken: false,
        })
    }

    /// The layout in use.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Number of entries.
    pub fn size(&self) -> u16 {
        self.layout.size
    }

    /// Free descriptors.
    pub fn num_free(&self) -> u16 {
        self.num_free
    }

    /// The head the next [`Virtqueue::add`] will use, if any descriptor is free.
    pub fn peek_free_head(&self) -> Option<u16> {
        (!self.broken && self.num_free > 0).then_some(self.free_head)
    }

    /// Chains added and not yet returned by the device.
    pub fn in_flight(&self) -> u16 {
        self.in_flight
    }

    /// Whether a device error broke the queue.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Whether `VIRTIO_RING_F_EVENT_IDX` is in use.
    pub fn event_idx(&self) -> bool {
        self.event_idx
    }

    /// Machine address of the queue.
    pub fn machine_base(&self) -> u64 {
        self.mem.machine_addr(0)
    }

    /// What the legacy queue address register takes: machine address >> 12.
    pub fn pfn(&self) -> u32 {
        (self.mem.machine_addr(0) >> 12) as u32
    }

    /// The ring memory.
    pub fn region(&self) -> &D {
        &self.mem
    }

    /// Gives the ring memory back (the device must be reset first).
    pub fn into_region(self) -> D {
        self.mem
    }

    /// Adds a chain of buffers (device-readable ones first) and makes it available.
    /// Returns its head descriptor, which [`Virtqueue::pop_used`] reports back. The
    /// device is not notified: call [`Virtqueue::should_notify`] after a batch.
    /// Reads `used.idx` first: used entries already published cannot complete this chain.
    pub fn add(&mut self, bufs: &[Buf]) -> Result<u16, QueueError> {
        if self.broken {
            return Err(QueueError::Broken);
        }
        if bufs.is_empty() {
            return Err(QueueError::EmptyChain);
        }
        if bufs.len() > usize::from(self.layout.size) {
            return Err(QueueError::ChainTooLong(bufs.len()));
        }
        if bufs.len() > usize::from(self.num_free) {
            return Err(QueueError::Full);
        }
        if bufs.iter().any(|b| b.len == 0) {
            return Err(QueueError::ZeroLength);
        }
        if bufs.windows(2).any(|w| w[0].writable && !w[1].writable) {
            return Err(QueueError::BadOrder);
        }
        let head = self.free_head;
        let mut cur = head;
        for (i, b) in bufs.iter().enumerate() {
            let last = i + 1 == bufs.len();
            let nxt = self.next[usize::from(cur)];
            let mut flags = if b.writable { VRING_DESC_F_WRITE } else { 0 };
            if !last {
                flags |= VRING_DESC_F_NEXT;
            }
            let off = self.layout.desc_off(cur);
            self.mem.write_u64(off, b.addr);
            self.mem.write_u32(off + 8, b.len);
            self.mem.write_u16(off + 12, flags);
            self.mem.write_u16(off + 14, if last { 0 } else { nxt });
            cur = nxt;
        }
        // `cur` is the descriptor after the chain's last: the rest of the free list.
        self.free_head = cur;
        self.num_free -= bufs.len() as u16;
        // Entries the device has already published cannot be this chain's completion.
        // A sane device is at most the chains already in flight ahead of the driver;
        // if it is further, it misbehaved already, and popping up to there fails anyway.
        let ahead = self
            .mem
            .read_u16(self.layout.used_idx_off())
            .wrapping_sub(self.last_used);
        self.first_used[usize::from(head)] = self.popped + u64::from(ahead);
        self.chain_len[usize::from(head)] = bufs.len() as u16;
        self.in_flight += 1;

        let slot = self.avail_idx & (self.layout.size - 1);
        self.mem.write_u16(self.layout.avail_ring_off(slot), head);
        // Descriptors and ring entry before the index that publishes them, and the
        // `used.idx` load above before it too.
        self.mem.fence();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.mem
            .write_u16(self.layout.avail_idx_off(), self.avail_idx);
        self.added += 1;
        Ok(head)
    }

    /// Whether the device must be notified of the chains added since the last call
    /// (legacy: unless the device set `VRING_USED_F_NO_NOTIFY`; with event index: if the
    /// new avail index passed the device's `avail_event`). Resets the batch.
    pub fn should_notify(&mut self) -> bool {
        // The avail index store before the device's flags/event loads.
        self.mem.fence();
        let old = self.kick_old;
        let new = self.avail_idx;
        let added = self.added;
        self.kick_old = new;
        self.added = 0;
        if added == 0 {
            return false;
        }
        if added >= 0xffff {
            return true;
        }
        if self.event_idx {
            let event = self.mem.read_u16(self.layout.avail_event_off());
            need_event(event, new, old)
        } else {
            self.mem.read_u16(self.layout.used) & VRING_USED_F_NO_NOTIFY == 0
        }
    }

    /// Whether the device has returned chains not yet popped.
    pub fn has_used(&self) -> bool {
        !self.broken && self.mem.read_u16(self.layout.used_idx_off()) != self.last_used
    }

    /// Takes the next chain the device returned, if any, and frees its descriptors.
    pub fn pop_used(&mut self) -> Result<Option<Used>, QueueError> {
        if self.broken {
            return Err(QueueError::Broken);
        }
        let used_idx = self.mem.read_u16(self.layout.used_idx_off());
        if used_idx == self.last_used {
            return Ok(None);
        }
        if used_idx.wrapping_sub(self.last_used) > self.in_flight {
            self.broken = true;
            return Err(QueueError::UsedIdxJump {
                used_idx,
                last_used: self.last_used,
                in_flight: self.in_flight,
            });
        }
        // The index load before the element loads.
        self.mem.fence();
        let off = self
            .layout
            .used_elem_off(self.last_used & (self.layout.size - 1));
        let id = self.mem.read_u32(off);
        let len = self.mem.read_u32(off + 4);
        // The head of a chain in flight, made available before this entry was published
        // (an entry published earlier names a head that was free then, whatever reused
        // it since).
        let head = match u16::try_from(id) {
            Ok(h)
                if h < self.layout.size
                    && self.chain_len[usize::from(h)] != 0
                    && self.first_used[usize::from(h)] <= self.popped =>
            {
                h
            }
            _ => {
                self.broken = true;
                return Err(QueueError::BadUsedId(id));
            }
        };
        self.free_chain(head);
        self.last_used = self.last_used.wrapping_add(1);
        self.popped += 1;
        // With event index, interrupts are asked for by moving `used_event` along; while
        // they are disabled it stays put (the device interrupts at most once more).
        if self.event_idx && self.avail_flags & VRING_AVAIL_F_NO_INTERRUPT == 0 {
            self.mem
                .write_u16(self.layout.used_event_off(), self.last_used);
            self.mem.fence();
        }
        Ok(Some(Used { head, len }))
    }

    fn free_chain(&mut self, head: u16) {
        let n = self.chain_len[usize::from(head)];
        self.chain_len[usize::from(head)] = 0;
        let mut last = head;
        for _ in 1..n {
            last = self.next[usize::from(last)];
        }
        self.next[usize::from(last)] = self.free_head;
        self.free_head = head;
        self.num_free += n;
        self.in_flight -= 1;
    }

    /// Asks the device not to interrupt (a hint it may ignore).
    pub fn disable_interrupts(&mut self) {
        self.avail_flags |= VRING_AVAIL_F_NO_INTERRUPT;
        self.mem.write_u16(self.layout.avail, self.avail_flags);
    }

    /// Asks the device to interrupt again. Returns whether used entries are already
    /// waiting (they may have arrived while interrupts were off: pop them now).
    pub fn enable_interrupts(&mut self) -> bool {
        self.avail_flags &= !VRING_AVAIL_F_NO_INTERRUPT;
        self.mem.write_u16(self.layout.avail, self.avail_flags);
        if self.event_idx {
            self.mem
                .write_u16(self.layout.used_event_off(), self.last_used);
        }
        self.mem.fence();
        self.has_used()
    }

    /// After the device was reset: forgets every chain in flight (returned, heads
    /// ascending), zeroes the rings and starts afresh, not broken. The queue address must
    /// then be given to the device again.
    pub fn reset(&mut self) -> Vec<u16> {
        let heads = (0..self.layout.size)
            .filter(|&h| self.chain_len[usize::from(h)] != 0)
            .collect();
        let n = usize::from(self.layout.size);
        let zeros = [0u8; 256];
        for off in (0..self.layout.total).step_by(zeros.len()) {
            let k = zeros.len().min(self.layout.total - off);
            self.mem.write(off, &zeros[..k]);
        }
        self.mem.fence();
        self.next = (1..=n).map(|i| (i % n) as u16).collect();
        self.chain_len = vec![0; n];
        self.first_used = vec![0; n];
        self.popped = 0;
        self.free_head = 0;
        self.num_free = self.layout.size;
        self.in_flight = 0;
        self.avail_idx = 0;
        self.avail_flags = 0;
        self.kick_old = 0;
        self.added = 0;
        self.last_used = 0;
        self.broken = false;
        heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A contiguous region at machine address `base`.
    #[derive(Debug)]
    struct Mem {
        base: u64,
        bytes: Vec<u8>,
    }
    impl DmaRegion for Mem {
        fn len(&self) -> usize {
            self.bytes.len()
        }
        fn machine_addr(&self, off: usize) -> u64 {
            self.base + off as u64
        }
        fn read(&self, off: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.bytes[off..off + buf.len()]);
        }
        fn write(&mut self, off: usize, data: &[u8]) {
            self.bytes[off..off + data.len()].copy_from_slice(data);
        }
        fn fence(&self) {}
    }

    fn mem(size: u16) -> Mem {
        Mem {
            base: 0x10_0000,
            bytes: vec![0xaa; Layout::legacy(size).unwrap().total],
        }
    }

    #[test]
    fn layout_matches_vring_size() {
        // Linux's vring_size(256, 4096) = 12 KiB minus padding of the used ring.
        let l = Layout::legacy(256).unwrap();
        assert_eq!((l.desc, l.avail, l.used, l.total), (0, 4096, 8192, 12288));
        let l = Layout::legacy(128).unwrap();
        assert_eq!((l.avail, l.used, l.total), (2048, 4096, 8192));
        let l = Layout::legacy(1024).unwrap();
        assert_eq!((l.avail, l.used, l.total), (16384, 20480, 32768));
        for bad in [0, 3, 100, 65535] {
            assert_eq!(Layout::legacy(bad), Err(QueueError::BadSize(bad)));
        }
    }

    #[test]
    fn region_checks() {
        let m = Mem {
            base: 0x1234,
            bytes: vec![0; 8192],
        };
        assert_eq!(
            Virtqueue::new(m, 128, false).unwrap_err(),
            QueueError::NotContiguous(0)
        );
        let m = Mem {
            base: 0x1000,
            bytes: vec![0; 4096],
        };
        assert!(matches!(
            Virtqueue::new(m, 128, false).unwrap_err(),
            QueueError::RegionTooSmall { need: 8192, .. }
        ));
        let m = Mem {
            base: 1 << 44,
            bytes: vec![0; 8192],
        };
        assert!(matches!(
            Virtqueue::new(m, 128, false).unwrap_err(),
            QueueError::AddressTooHigh(_)
        ));
    }

    fn device_complete(q: &mut Virtqueue<Mem>, id: u32, used_idx: u16) {
        let l = q.layout;
        let slot = used_idx.wrapping_sub(1) & (l.size - 1);
        q.mem.write_u32(l.used_elem_off(slot), id);
        q.mem.write_u32(l.used_elem_off(slot) + 4, 0);
        q.mem.write_u16(l.used_idx_off(), used_idx);
    }

    #[test]
    fn chains_descriptors_and_recycling() {
        let mut q = Virtqueue::new(mem(4), 4, false).unwrap();
        let bufs = [
            Buf {
                addr: 0x5000,
                len: 16,
                writable: false,
            },
            Buf {
                addr: 0x6000,
                len: 512,
                writable: true,
            },
            Buf {
                addr: 0x7000,
                len: 1,
                writable: true,
            },
        ];
        let h = q.add(&bufs).unwrap();
        assert_eq!(h, 0);
        let l = q.layout;
        let d = |q: &Virtqueue<Mem>, i: u16| {
            let o = l.desc_off(i);
            (
                q.mem.read_u64(o),
                q.mem.read_u32(o + 8),
                q.mem.read_u16(o + 12),
                q.mem.read_u16(o + 14),
            )
        };
        assert_eq!(d(&q, 0), (0x5000, 16, VRING_DESC_F_NEXT, 1));
        assert_eq!(
            d(&q, 1),
            (0x6000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2)
        );
        assert_eq!(d(&q, 2), (0x7000, 1, VRING_DESC_F_WRITE, 0));
        assert_eq!(q.mem.read_u16(l.avail_idx_off()), 1);
        assert_eq!(q.mem.read_u16(l.avail_ring_off(0)), 0);
        assert_eq!(q.num_free(), 1);
        assert_eq!(q.add(&bufs).unwrap_err(), QueueError::Full);
        assert!(q.should_notify());
        assert!(!q.should_notify());
        assert_eq!(q.pop_used().unwrap(), None);
        device_complete(&mut q, 0, 1);
        assert_eq!(q.pop_used().unwrap(), Some(Used { head: 0, len: 0 }));
        assert_eq!((q.num_free(), q.in_flight()), (4, 0));
        // The free list now starts with the freed chain.
        assert_eq!(q.add(&bufs[..1]).unwrap(), 0);
        assert_eq!(q.add(&bufs[..1]).unwrap(), 1);
        assert_eq!(q.add(&bufs[..2]).unwrap(), 2);
        assert_eq!(q.num_free(), 0);
    }

    #[test]
    fn add_rejects() {
        let mut q = Virtqueue::new(mem(4), 4, false).unwrap();
        let r = Buf {
            addr: 1,
            len: 1,
            writable: false,
        };
        let w = Buf {
            writable: true,
            ..r
        };
        assert_eq!(q.add(&[]), Err(QueueError::EmptyChain));
        assert_eq!(q.add(&[r; 5]), Err(QueueError::ChainTooLong(5)));
        assert_eq!(q.add(&[w, r]), Err(QueueError::BadOrder));
        assert_eq!(q.add(&[Buf { len: 0, ..r }]), Err(QueueError::ZeroLength));
        assert_eq!(q.num_free(), 4);
    }

    #[test]
    fn no_notify_flag_and_event_idx() {
        let b = [Buf {
            addr: 1,
            len: 1,
            writable: false,
        }];
        let mut q = Virtqueue::new(mem(8), 8, false).unwrap();
        let used = q.layout.used;
        q.mem.write_u16(used, VRING_USED_F_NO_NOTIFY);
        q.add(&b).unwrap();
        assert!(!q.should_notify());

        let mut q = Virtqueue::new(mem(8), 8, true).unwrap();
        let ev = q.layout.avail_event_off();
        q.add(&b).unwrap(); // avail 0 -> 1, avail_event 0: crossed.
        assert!(q.should_notify());
        q.mem.write_u16(ev, 5);
        q.add(&b).unwrap(); // 1 -> 2: device waits for 5.
        assert!(!q.should_notify());
        q.mem.write_u16(ev, 2);
        q.add(&b).unwrap(); // 2 -> 3 crosses 2.
        assert!(q.should_notify());
        assert!(need_event(0xffff, 0, 0xfffe));
        assert!(!need_event(0xffff, 0xfffe, 0xfffd));
        // Popping publishes used_event, unless interrupts are off.
        device_complete(&mut q, 0, 1);
        q.pop_used().unwrap().unwrap();
        assert_eq!(q.mem.read_u16(q.layout.used_event_off()), 1);
        q.disable_interrupts();
        assert_eq!(q.mem.read_u16(q.layout.avail), VRING_AVAIL_F_NO_INTERRUPT);
        device_complete(&mut q, 1, 2);
        q.pop_used().unwrap().unwrap();
        assert_eq!(q.mem.read_u16(q.layout.used_event_off()), 1);
        assert!(!q.enable_interrupts());
        assert_eq!(q.mem.read_u16(q.layout.used_event_off()), 2);
        assert_eq!(q.mem.read_u16(q.layout.avail), 0);
        device_complete(&mut q, 2, 3);
        assert!(q.enable_interrupts(), "a completion is already waiting");
    }

    #[test]
    fn device_misbehaviour_breaks_the_queue() {
        let b = [Buf {
            addr: 1,
            len: 1,
            writable: false,
        }];
        let mut q = Virtqueue::new(mem(8), 8, false).unwrap();
        q.add(&b).unwrap();
        device_complete(&mut q, 0, 2);
        assert!(matches!(
            q.pop_used(),
            Err(QueueError::UsedIdxJump { used_idx: 2, .. })
        ));
        assert_eq!(q.pop_used(), Err(QueueError::Broken));
        assert_eq!(q.add(&b), Err(QueueError::Broken));
        assert_eq!(q.reset(), [0]);

        for bad in [1u32, 8, 0xffff_ffff, 0x1_0000] {
            q.add(&b).unwrap();
            device_complete(&mut q, bad, 1);
            assert_eq!(q.pop_used(), Err(QueueError::BadUsedId(bad)));
            assert_eq!(q.reset(), [0]);
        }
        // A non-head id of an in-flight chain is refused too.
        q.add(&[b[0], b[0]]).unwrap();
        device_complete(&mut q, 1, 1);
        assert_eq!(q.pop_used(), Err(QueueError::BadUsedId(1)));
    }

    #[test]
    fn stale_used_id_of_a_reused_head_is_refused() {
        let b = [Buf {
            addr: 1,
            len: 1,
            writable: false,
        }];
        let mut q = Virtqueue::new(mem(8), 8, false).unwrap();
        let h = q.add(&b).unwrap();
        device_complete(&mut q, u32::from(h), 1);
        assert_eq!(q.pop_used().unwrap().unwrap().head, h);
        // The device names the now free head again, then the driver reuses the head
        // before popping that entry: the entry predates the new chain, so it is bogus.
        device_complete(&mut q, u32::from(h), 2);
        assert_eq!(q.add(&b).unwrap(), h);
        assert_eq!(q.pop_used(), Err(QueueError::BadUsedId(u32::from(h))));
        assert_eq!(q.reset(), [h]);

        // Entries published before a chain was added still complete the chains that
        // were in flight then, and the new chain's own completion is accepted.
        let a = q.add(&b).unwrap();
        device_complete(&mut q, u32::from(a), 1);
        let c = q.add(&b).unwrap();
        device_complete(&mut q, u32::from(c), 2);
        assert_eq!(q.pop_used().unwrap().unwrap().head, a);
        assert_eq!(q.pop_used().unwrap().unwrap().head, c);
        // Out of order, across a reused head.
        let d = q.add(&b).unwrap();
        let e = q.add(&b).unwrap();
        device_complete(&mut q, u32::from(e), 3);
        assert_eq!(q.pop_used().unwrap().unwrap().head, e);
        let f = q.add(&b).unwrap();
        assert_eq!(f, e);
        device_complete(&mut q, u32::from(f), 4);
        device_complete(&mut q, u32::from(d), 5);
        assert_eq!(q.pop_used().unwrap().unwrap().head, f);
        assert_eq!(q.pop_used().unwrap().unwrap().head, d);
        assert_eq!(q.in_flight(), 0);
    }

    #[test]
    fn index_wraps() {
        let b = [Buf {
            addr: 1,
            len: 1,
            writable: true,
        }];
        let mut q = Virtqueue::new(mem(2), 2, true).unwrap();
        for i in 1..=70_000u32 {
            let h = q.add(&b).unwrap();
            device_complete(&mut q, u32::from(h), i as u16);
            assert_eq!(q.pop_used().unwrap().unwrap().head, h);
        }
        assert_eq!(q.in_flight(), 0);
    }
}
