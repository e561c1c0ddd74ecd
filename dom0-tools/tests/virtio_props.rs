//! The PCI and virtio-blk driver logic against fakes written here: a configuration space
//! with a few devices (a multi-function one, a 64-bit BAR, a looping capability list), and
//! a legacy virtio-blk device that reads the queue out of fake machine memory, serves a
//! model disk, completes requests in random order and, when asked to, misbehaves.
//!
//! Properties: with a well-behaved device every request completes exactly once with the
//! right status and data, and the disk ends as the model says; with a misbehaving device
//! the driver never panics, reports the misbehaviour as an error, and after a reset every
//! request was either completed once or handed back as lost, never both.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use dom0_tools::pci::{self, Bar, Bdf, ConfigSpace, PciError, PortIo};
use dom0_tools::virtio::blk::{
    self, BlkError, BlkProbe, Completion, ReqKind, ReqStatus, Request, Segment, Token, VirtioBlk,
};
use dom0_tools::virtio::legacy::{LegacyTransport, TransportError};
use dom0_tools::virtio::queue::QueueError;
use dom0_tools::virtio::{self, features, status, DmaRegion, ProbeError};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// A tiny deterministic RNG for the fake device's choices.

#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    /// True with probability `per_mille`/1000.
    fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }
}

// ---------------------------------------------------------------------------------------
// Fake machine memory and the fake legacy virtio-blk device.

const PAGE: usize = 4096;
const MBASE: u64 = 0x40_0000;
const MPAGES: usize = 320;
const IO_BASE: u16 = 0xc040;
const DEVICE_ID: &[u8; 20] = b"QM00001-fake-serial\0";

#[derive(Debug, Clone)]
struct DevParams {
    queue_size: u16,
    capacity: u64,
    host_features: u32,
    size_max: u32,
    seg_max: u32,
    blk_size: u32,
    /// Per mille chance, on each driver memory read, that the device does some work.
    tick: u32,
    /// Per mille chance, while not using event index, to toggle polling mode.
    polling: u32,
    ioerr: u32,
    garbage_status: u32,
    misbehave: u32,
}

impl DevParams {
    fn simple(queue_size: u16, capacity: u64) -> DevParams {
        DevParams {
            queue_size,
            capacity,
            host_features: blk::feature::SEG_MAX
                | blk::feature::BLK_SIZE
                | blk::feature::FLUSH
                | features::RING_EVENT_IDX
                | features::BAD_FEATURE
                | features::ANY_LAYOUT,
            size_max: 0,
            seg_max: u32::from(queue_size) - 2,
            blk_size: 512,
            tick: 300,
            polling: 0,
            ioerr: 0,
            garbage_status: 0,
            misbehave: 0,
        }
    }
}

#[derive(Debug, Clone)]
struct DevReq {
    head: u16,
    ty: u32,
    sector: u64,
    data: Vec<(u64, u32)>,
    status_addr: u64,
}

#[derive(Debug)]
struct Dev {
    p: DevParams,
    guest_features: u32,
    pfn: u32,
    queue_sel: u16,
    status: u8,
    isr: u8,
    status_log: Vec<u8>,
    last_avail: u16,
    used_idx: u16,
    polling: bool,
    pending: Vec<DevReq>,
    disk: Vec<u8>,
    stalled: bool,
    violations: Vec<String>,
    /// Each completion written to the used ring, in order.
    log: VecDeque<Done>,
    misbehaved: u32,
    flushes: u32,
    notifies: u32,
}

/// A completion as the device made it: request type, first data address, status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Done {
    ty: u32,
    addr: Option<u64>,
    status: u8,
}

#[derive(Debug)]
struct World {
    mem: Vec<u8>,
    dev: Dev,
    rng: Rng,
}

fn used_off(n: u16) -> u64 {
    let n = u64::from(n);
    (16 * n + 6 + 2 * n).div_ceil(PAGE as u64) * PAGE as u64
}

impl World {
    fn new(p: DevParams, seed: u64) -> World {
        let mut rng = Rng(seed | 1);
        let disk = (0..p.capacity as usize * 512)
            .map(|_| rng.next() as u8)
            .collect();
        World {
            mem: vec![0; MPAGES * PAGE],
            dev: Dev {
                p,
                guest_features: 0,
                pfn: 0,
                queue_sel: 0,
                status: 0,
                isr: 0,
                status_log: Vec::new(),
                last_avail: 0,
                used_idx: 0,
                polling: false,
                pending: Vec::new(),
                disk,
                stalled: false,
                violations: Vec::new(),
                log: VecDeque::new(),
                misbehaved: 0,
                flushes: 0,
                notifies: 0,
            },
            rng,
        }
    }

    fn in_mem(&self, addr: u64, len: usize) -> Option<usize> {
        let off = addr.checked_sub(MBASE)? as usize;
        (off + len <= self.mem.len()).then_some(off)
    }

    /// Device DMA read; outside machine memory is a driver bug.
    fn dma_read(&mut self, addr: u64, buf: &mut [u8]) {
        match self.in_mem(addr, buf.len()) {
            Some(o) => buf.copy_from_slice(&self.mem[o..o + buf.len()]),
            None => self.dev.violations.push(format!("DMA read at {addr:#x}")),
        }
    }

    fn dma_write(&mut self, addr: u64, data: &[u8]) {
        match self.in_mem(addr, data.len()) {
            Some(o) => self.mem[o..o + data.len()].copy_from_slice(data),
            None => self.dev.violations.push(format!("DMA write at {addr:#x}")),
        }
    }

    fn r16(&mut self, addr: u64) -> u16 {
        let mut b = [0; 2];
        self.dma_read(addr, &mut b);
        u16::from_le_bytes(b)
    }
    fn r32(&mut self, addr: u64) -> u32 {
        let mut b = [0; 4];
        self.dma_read(addr, &mut b);
        u32::from_le_bytes(b)
    }
    fn r64(&mut self, addr: u64) -> u64 {
        let mut b = [0; 8];
        self.dma_read(addr, &mut b);
        u64::from_le_bytes(b)
    }
    fn w16(&mut self, addr: u64, v: u16) {
        self.dma_write(addr, &v.to_le_bytes())
    }
    fn w32(&mut self, addr: u64, v: u32) {
        self.dma_write(addr, &v.to_le_bytes())
    }

    fn qbase(&self) -> u64 {
        u64::from(self.dev.pfn) << 12
    }

    fn running(&self) -> bool {
        self.dev.status & status::DRIVER_OK != 0 && self.dev.pfn != 0
    }

    fn event_idx(&self) -> bool {
        self.dev.guest_features & features::RING_EVENT_IDX != 0
    }

    /// Heads the driver has made available and the device has not returned.
    fn heads_in_flight(&mut self) -> BTreeSet<u16> {
        let n = self.dev.p.queue_size;
        let base = self.qbase();
        let mut s: BTreeSet<u16> = self.dev.pending.iter().map(|r| r.head).collect();
        let avail_idx = self.r16(base + 16 * u64::from(n) + 2);
        let mut i = self.dev.last_avail;
        while i != avail_idx {
            let head = self.r16(base + 16 * u64::from(n) + 4 + 2 * u64::from(i % n));
            s.insert(head);
            i = i.wrapping_add(1);
        }
        s
    }

    /// Takes the newly available chains, checking they are what virtio-blk expects.
    fn fetch(&mut self) {
        if !self.running() {
            return;
        }
        let n = self.dev.p.queue_size;
        let base = self.qbase();
        let avail = base + 16 * u64::from(n);
        let avail_idx = self.r16(avail + 2);
        if avail_idx.wrapping_sub(self.dev.last_avail) > n {
            self.dev.violations.push("avail.idx ran ahead".into());
            return;
        }
        while self.dev.last_avail != avail_idx {
            let head = self.r16(avail + 4 + 2 * u64::from(self.dev.last_avail % n));
            self.dev.last_avail = self.dev.last_avail.wrapping_add(1);
            if let Some(r) = self.parse_chain(head) {
                if self.dev.pending.iter().any(|p| p.head == r.head) {
                    self.dev
                        .violations
                        .push(format!("head {head} made available twice"));
                }
                self.dev.pending.push(r);
            }
        }
        if self.event_idx() {
            let ev = base + used_off(n) + 4 + 8 * u64::from(n);
            let v = self.dev.last_avail;
            self.w16(ev, v);
        }
    }

    fn parse_chain(&mut self, head: u16) -> Option<DevReq> {
        let n = self.dev.p.queue_size;
        let base = self.qbase();
        if head >= n {
            self.dev
                .violations
                .push(format!("avail head {head} out of range"));
            return None;
        }
        let mut descs = Vec::new();
        let mut i = head;
        loop {
            if descs.len() >= usize::from(n) {
                self.dev.violations.push("descriptor loop".into());
                return None;
            }
            let d = base + 16 * u64::from(i);
            let (addr, len, flags, next) = (
                self.r64(d),
                self.r32(d + 8),
                self.r16(d + 12),
                self.r16(d + 14),
            );
            descs.push((addr, len, flags));
            if flags & 1 == 0 {
                break;
            }
            if next >= n {
                self.dev.violations.push("next out of range".into());
                return None;
            }
            i = next;
        }
        let bad = |w: &mut World, m: &str| {
            w.dev
                .violations
                .push(format!("chain {head}: {m}: {descs:x?}"));
            None
        };
        if descs.len() < 2 {
            return bad(self, "too short");
        }
        let (haddr, hlen, hflags) = descs[0];
        let (saddr, slen, sflags) = descs[descs.len() - 1];
        if hlen != 16 || hflags & 2 != 0 {
            return bad(self, "bad header descriptor");
        }
        if slen != 1 || sflags & 2 == 0 {
            return bad(self, "bad status descriptor");
        }
        if descs.iter().any(|d| d.2 & 4 != 0) {
            return bad(self, "indirect descriptor");
        }
        let ty = self.r32(haddr);
        let sector = self.r64(haddr + 8);
        let data: Vec<(u64, u32)> = descs[1..descs.len() - 1]
            .iter()
            .map(|d| (d.0, d.1))
            .collect();
        let want_write = match ty {
            blk::req_type::IN | blk::req_type::GET_ID => Some(true),
            blk::req_type::OUT => Some(false),
            blk::req_type::FLUSH => None,
            _ => return bad(self, "unknown type"),
        };
        match want_write {
            None if !data.is_empty() => return bad(self, "flush with data"),
            Some(_) if data.is_empty() => return bad(self, "no data"),
            Some(w)
                if descs[1..descs.len() - 1]
                    .iter()
                    .any(|d| (d.2 & 2 != 0) != w) =>
            {
                return bad(self, "data direction")
            }
            _ => {}
        }
        let total: u64 = data.iter().map(|d| u64::from(d.1)).sum();
        if matches!(ty, blk::req_type::IN | blk::req_type::OUT) {
            if !total.is_multiple_of(512) || sector + total / 512 > self.dev.p.capacity {
                return bad(self, "bad range");
            }
            if data.len() > self.dev.p.seg_max as usize
                && self.dev.p.host_features & blk::feature::SEG_MAX != 0
            {
                return bad(self, "more than seg_max");
            }
            if self.dev.guest_features & blk::feature::SIZE_MAX != 0
                && data.iter().any(|d| d.1 > self.dev.p.size_max)
            {
                return bad(self, "segment above size_max");
            }
        }
        Some(DevReq {
            head,
            ty,
            sector,
            data,
            status_addr: saddr,
        })
    }

    /// Some device work, as if time passed: maybe toggle polling, fetch, complete one.
    fn tick(&mut self) {
        if !self.running() {
            return;
        }
        if !self.event_idx() && self.rng.chance(self.dev.p.polling) {
            self.dev.polling = !self.dev.polling;
            let flags = self.qbase() + used_off(self.dev.p.queue_size);
            self.w16(flags, u16::from(self.dev.polling));
            // Like QEMU re-enabling notifications: look again afterwards.
            self.fetch();
        }
        if self.dev.polling {
            self.fetch();
        }
        self.complete_one();
    }

    fn complete_one(&mut self) {
        if self.dev.stalled || self.dev.pending.is_empty() || !self.running() {
            return;
        }
        let n = self.dev.p.queue_size;
        let used = self.qbase() + used_off(n);
        if self.rng.chance(self.dev.p.misbehave) {
            self.dev.misbehaved += 1;
            if self.rng.chance(500) {
                // A used id that is not the head of any chain in flight.
                let inflight = self.heads_in_flight();
                let id = if self.rng.chance(500) {
                    u32::from(n) + self.rng.below(u64::from(u32::MAX - u32::from(n))) as u32
                } else {
                    let free: Vec<u16> = (0..n).filter(|h| !inflight.contains(h)).collect();
                    u32::from(free[self.rng.below(free.len() as u64) as usize])
                };
                let slot = u64::from(self.dev.used_idx % n);
                self.w32(used + 4 + 8 * slot, id);
                self.w32(used + 8 + 8 * slot, 0x1000);
                self.dev.used_idx = self.dev.used_idx.wrapping_add(1);
            } else {
                // A jump the driver cannot take for a real one.
                let j = u64::from(n) + 1 + self.rng.below(65535 - 2 * u64::from(n));
                self.dev.used_idx = self.dev.used_idx.wrapping_add(j as u16);
            }
            let v = self.dev.used_idx;
            self.w16(used + 2, v);
            self.dev.isr |= 1;
            return;
        }
        let k = self.rng.below(self.dev.pending.len() as u64) as usize;
        let r = self.dev.pending.swap_remove(k);
        let mut written = 1u32;
        let status = if self.rng.chance(self.dev.p.garbage_status) {
            // Either an invalid status byte, or none written at all.
            if self.rng.chance(500) {
                None
            } else {
                Some(3 + self.rng.below(250) as u8)
            }
        } else if self.rng.chance(self.dev.p.ioerr) {
            Some(blk::status_byte::IOERR)
        } else {
            let mut pos = (r.sector * 512) as usize;
            match r.ty {
                blk::req_type::IN => {
                    for &(a, l) in &r.data {
                        let chunk = self.dev.disk[pos..pos + l as usize].to_vec();
                        self.dma_write(a, &chunk);
                        pos += l as usize;
                        written += l;
                    }
                }
                blk::req_type::OUT => {
                    for &(a, l) in &r.data {
                        let mut chunk = vec![0; l as usize];
                        self.dma_read(a, &mut chunk);
                        self.dev.disk[pos..pos + l as usize].copy_from_slice(&chunk);
                        pos += l as usize;
                    }
                }
                blk::req_type::FLUSH => self.dev.flushes += 1,
                _ => {
                    let (a, l) = r.data[0];
                    let k = (l as usize).min(20);
                    self.dma_write(a, &DEVICE_ID[..k]);
                    written += k as u32;
                }
            }
            Some(blk::status_byte::OK)
        };
        if let Some(s) = status {
            self.dma_write(r.status_addr, &[s]);
        }
        let slot = u64::from(self.dev.used_idx % n);
        self.w32(used + 4 + 8 * slot, u32::from(r.head));
        self.w32(used + 8 + 8 * slot, written);
        self.dev.used_idx = self.dev.used_idx.wrapping_add(1);
        let v = self.dev.used_idx;
        self.w16(used + 2, v);
        self.dev.isr |= 1;
        self.dev.log.push_back(Done {
            ty: r.ty,
            addr: r.data.first().map(|d| d.0),
            status: status.unwrap_or(blk::STATUS_UNWRITTEN),
        });
    }

    fn reset_device(&mut self) {
        let d = &mut self.dev;
        d.guest_features = 0;
        d.pfn = 0;
        d.queue_sel = 0;
        d.status = 0;
        d.isr = 0;
        d.last_avail = 0;
        d.used_idx = 0;
        d.polling = false;
        d.pending.clear();
        d.log.clear();
    }

    fn config_bytes(&self) -> [u8; 40] {
        let mut c = [0u8; 40];
        c[0..8].copy_from_slice(&self.dev.p.capacity.to_le_bytes());
        c[8..12].copy_from_slice(&self.dev.p.size_max.to_le_bytes());
        c[12..16].copy_from_slice(&self.dev.p.seg_max.to_le_bytes());
        c[16..20].copy_from_slice(&[0x10, 0, 16, 63]);
        c[20..24].copy_from_slice(&self.dev.p.blk_size.to_le_bytes());
        c
    }

    fn port_read(&mut self, port: u16, width: usize) -> u32 {
        let Some(off) = port.checked_sub(IO_BASE) else {
            self.dev.violations.push(format!("in from port {port:#x}"));
            return !0;
        };
        let w = width as u16;
        match (off, w) {
            (0x00, 4) => self.dev.p.host_features,
            (0x04, 4) => self.dev.guest_features,
            (0x08, 4) => {
                if self.dev.queue_sel == 0 {
                    self.dev.pfn
                } else {
                    0
                }
            }
            (0x0c, 2) => {
                if self.dev.queue_sel == 0 {
                    u32::from(self.dev.p.queue_size)
                } else {
                    0
                }
            }
            (0x0e, 2) => u32::from(self.dev.queue_sel),
            (0x12, 1) => u32::from(self.dev.status),
            (0x13, 1) => u32::from(std::mem::take(&mut self.dev.isr)),
            (o, w) if o >= 0x14 && usize::from(o - 0x14) + usize::from(w) <= 40 => {
                let c = self.config_bytes();
                let s = usize::from(o - 0x14);
                let mut b = [0u8; 4];
                b[..usize::from(w)].copy_from_slice(&c[s..s + usize::from(w)]);
                u32::from_le_bytes(b)
            }
            _ => {
                self.dev
                    .violations
                    .push(format!("in{} from +{off:#x}", width * 8));
                !0
            }
        }
    }

    fn port_write(&mut self, port: u16, width: usize, val: u32) {
        let Some(off) = port.checked_sub(IO_BASE) else {
            self.dev.violations.push(format!("out to port {port:#x}"));
            return;
        };
        match (off, width) {
            (0x04, 4) => {
                if self.dev.status & status::DRIVER_OK != 0 {
                    self.dev.violations.push("features after DRIVER_OK".into());
                }
                if val & !self.dev.p.host_features != 0 {
                    self.dev
                        .violations
                        .push(format!("accepted unoffered features {val:#x}"));
                }
                if val & features::BAD_FEATURE != 0 {
                    self.dev.violations.push("accepted BAD_FEATURE".into());
                }
                self.dev.guest_features = val;
            }
            (0x08, 4) => {
                if self.dev.queue_sel == 0 {
                    self.dev.pfn = val;
                }
            }
            (0x0e, 2) => self.dev.queue_sel = val as u16,
            (0x10, 2) => {
                if val != 0 {
                    self.dev.violations.push(format!("notify of queue {val}"));
                }
                self.dev.notifies += 1;
                if self.dev.polling {
                    self.dev
                        .violations
                        .push("notified despite VRING_USED_F_NO_NOTIFY".into());
                }
                self.fetch();
            }
            (0x12, 1) => {
                let v = val as u8;
                self.dev.status_log.push(v);
                if v == 0 {
                    self.reset_device();
                } else {
                    self.dev.status = v;
                }
            }
            _ => self
                .dev
                .violations
                .push(format!("out{} to +{off:#x}", width * 8)),
        }
    }
}

type Shared = Rc<RefCell<World>>;

/// The device's I/O ports.
#[derive(Debug, Clone)]
struct Ports(Shared);

impl PortIo for Ports {
    fn in8(&mut self, port: u16) -> u8 {
        self.0.borrow_mut().port_read(port, 1) as u8
    }
    fn in16(&mut self, port: u16) -> u16 {
        self.0.borrow_mut().port_read(port, 2) as u16
    }
    fn in32(&mut self, port: u16) -> u32 {
        self.0.borrow_mut().port_read(port, 4)
    }
    fn out8(&mut self, port: u16, val: u8) {
        self.0.borrow_mut().port_write(port, 1, val.into())
    }
    fn out16(&mut self, port: u16, val: u16) {
        self.0.borrow_mut().port_write(port, 2, val.into())
    }
    fn out32(&mut self, port: u16, val: u32) {
        self.0.borrow_mut().port_write(port, 4, val)
    }
}

/// Driver memory: a list of machine pages. Each read gives the device a chance to work.
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
        let mut w = self.world.borrow_mut();
        let t = w.dev.p.tick;
        if w.rng.chance(t) {
            w.tick();
        }
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

/// Hands out machine pages: contiguous runs for queues, shuffled ones otherwise.
#[derive(Debug)]
struct Pages {
    free: Vec<u64>,
}

impl Pages {
    fn new(rng: &mut Rng) -> Pages {
        let mut free: Vec<u64> = (0..MPAGES as u64)
            .map(|i| MBASE + i * PAGE as u64)
            .collect();
        // Keep the first 16 pages for contiguous allocations; shuffle the rest.
        for i in (17..free.len()).rev() {
            let j = 16 + rng.below((i - 15) as u64) as usize;
            free.swap(i, j);
        }
        Pages { free }
    }
    fn contiguous(&mut self, n: usize) -> Vec<u64> {
        self.free.drain(..n).collect()
    }
    fn take(&mut self, n: usize) -> Option<Vec<u64>> {
        (self.free.len() > n).then(|| self.free.split_off(self.free.len() - n))
    }
    fn give(&mut self, pages: Vec<u64>) {
        self.free.extend(pages);
    }
}

fn region(world: &Shared, pages: Vec<u64>, len: usize) -> Region {
    assert!(len <= pages.len() * PAGE);
    Region {
        world: world.clone(),
        pages,
        len,
    }
}

struct Rig {
    world: Shared,
    pages: Pages,
    blk: VirtioBlk<Ports, Region>,
}

fn start(
    world: &Shared,
    pages: &mut Pages,
    bounce: usize,
) -> Result<VirtioBlk<Ports, Region>, BlkError> {
    let probe = BlkProbe::new(LegacyTransport::new(Ports(world.clone()), IO_BASE))?;
    let ql = probe.queue_bytes();
    let q = region(world, pages.contiguous(ql / PAGE), ql);
    let sl = probe.scratch_bytes(bounce);
    let s = region(world, pages.take(sl.div_ceil(PAGE)).expect("pages"), sl);
    probe.start(q, s)
}

fn rig(p: DevParams, seed: u64, bounce: usize) -> Rig {
    let world = Rc::new(RefCell::new(World::new(p, seed)));
    let mut rng = Rng(seed.rotate_left(17) | 1);
    let mut pages = Pages::new(&mut rng);
    let blk = start(&world, &mut pages, bounce).expect("device starts");
    Rig { world, pages, blk }
}

fn pattern(fill: u8, sector: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            fill ^ (sector as u8).wrapping_mul(31) ^ (i as u8).wrapping_mul(7) ^ (i >> 9) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Initialisation.

#[test]
fn init_sequence_and_features() {
    let r = rig(DevParams::simple(128, 2048), 1, 4096);
    let w = r.world.borrow();
    assert_eq!(w.dev.status_log, [0, 1, 3, 7]);
    assert_eq!(
        w.dev.guest_features,
        blk::feature::SEG_MAX
            | blk::feature::BLK_SIZE
            | blk::feature::FLUSH
            | features::RING_EVENT_IDX
    );
    assert_eq!(w.dev.pfn, (MBASE >> 12) as u32);
    assert!(w.dev.violations.is_empty(), "{:?}", w.dev.violations);
    let c = r.blk.config();
    assert_eq!(c.capacity, 2048);
    assert_eq!(c.seg_max, Some(126));
    assert_eq!(c.blk_size, Some(512));
    assert_eq!(c.size_max, None);
    assert!(c.flush && !c.read_only);
    assert_eq!(r.blk.queue_size(), 128);
    assert!(r.blk.queue().event_idx());
}

#[test]
fn probe_refuses_bad_queue_sizes() {
    for (size, want) in [
        (0u16, BlkError::Transport(TransportError::NoQueue(0))),
        (2, BlkError::QueueTooSmall(2)),
        (100, BlkError::Queue(QueueError::BadSize(100))),
        (65535, BlkError::Queue(QueueError::BadSize(65535))),
    ] {
        let world = Rc::new(RefCell::new(World::new(
            DevParams::simple(size.max(4), 8),
            2,
        )));
        world.borrow_mut().dev.p.queue_size = size;
        let e = BlkProbe::new(LegacyTransport::new(Ports(world.clone()), IO_BASE)).unwrap_err();
        assert_eq!(e, want);
        assert_ne!(
            world.borrow().dev.status & status::FAILED,
            0,
            "FAILED set for {size}"
        );
    }
}

/// A device whose status register ignores writes.
#[derive(Debug)]
struct DeafPorts;
impl PortIo for DeafPorts {
    fn in8(&mut self, _: u16) -> u8 {
        0
    }
    fn in16(&mut self, _: u16) -> u16 {
        0
    }
    fn in32(&mut self, _: u16) -> u32 {
        !0
    }
    fn out8(&mut self, _: u16, _: u8) {}
    fn out16(&mut self, _: u16, _: u16) {}
    fn out32(&mut self, _: u16, _: u32) {}
}

#[test]
fn probe_refuses_a_deaf_device() {
    assert_eq!(
        BlkProbe::new(LegacyTransport::new(DeafPorts, IO_BASE)).unwrap_err(),
        BlkError::Transport(TransportError::StatusRefused(status::ACKNOWLEDGE))
    );
}

#[test]
fn start_checks_memory() {
    let world = Rc::new(RefCell::new(World::new(DevParams::simple(64, 64), 3)));
    let mut rng = Rng(5);
    let mut pages = Pages::new(&mut rng);
    // Queue memory that is not machine-contiguous.
    let probe = BlkProbe::new(LegacyTransport::new(Ports(world.clone()), IO_BASE)).unwrap();
    let ql = probe.queue_bytes();
    let q = region(&world, pages.take(ql / PAGE).unwrap(), ql);
    let s = region(&world, pages.take(1).unwrap(), PAGE);
    assert!(matches!(
        probe.start(q, s).unwrap_err(),
        BlkError::Queue(QueueError::NotContiguous(_))
    ));
    assert_ne!(world.borrow().dev.status & status::FAILED, 0);
    // Scratch too small for the slots.
    let probe = BlkProbe::new(LegacyTransport::new(Ports(world.clone()), IO_BASE)).unwrap();
    let q = region(&world, pages.contiguous(ql / PAGE), ql);
    let s = region(&world, pages.take(1).unwrap(), 100);
    assert!(matches!(
        probe.start(q, s).unwrap_err(),
        BlkError::ScratchTooSmall {
            need: 4096,
            have: 100
        }
    ));
}

// ---------------------------------------------------------------------------------------
// Synchronous API.

#[test]
fn sync_read_write_flush_id() {
    let mut p = DevParams::simple(16, 256);
    p.host_features |= blk::feature::SIZE_MAX;
    p.size_max = 1000; // not a multiple of 512: segments get split oddly
    p.seg_max = 3;
    let mut r = rig(p, 7, 3 * PAGE + 512);
    let data = pattern(0x5a, 10, 40 * 512);
    r.blk.write_sectors(10, &data).unwrap();
    let mut back = vec![0; data.len()];
    r.blk.read_sectors(10, &mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(&r.world.borrow().dev.disk[10 * 512..50 * 512], &data[..]);
    r.blk.flush().unwrap();
    assert_eq!(r.world.borrow().dev.flushes, 1);
    assert_eq!(&r.blk.get_id().unwrap(), DEVICE_ID);
    // The last sector, and one past it.
    let mut one = [0u8; 512];
    r.blk.read_sectors(255, &mut one).unwrap();
    assert_eq!(
        r.blk.read_sectors(256, &mut one),
        Err(BlkError::OutOfRange {
            sector: 256,
            count: 1,
            capacity: 256
        })
    );
    assert_eq!(
        r.blk.read_sectors(u64::MAX, &mut one).unwrap_err(),
        BlkError::OutOfRange {
            sector: u64::MAX,
            count: 1,
            capacity: 256
        }
    );
    assert_eq!(
        r.blk.read_sectors(0, &mut one[..100]),
        Err(BlkError::BadLength(100))
    );
    assert_eq!(r.blk.write_sectors(0, &[]), Err(BlkError::BadLength(0)));
    let w = r.world.borrow();
    assert!(w.dev.violations.is_empty(), "{:?}", w.dev.violations);
}

#[test]
fn read_only_and_no_flush() {
    let mut p = DevParams::simple(8, 16);
    p.host_features = blk::feature::RO;
    let mut r = rig(p, 9, PAGE);
    assert!(r.blk.config().read_only);
    assert_eq!(r.blk.write_sectors(0, &[0; 512]), Err(BlkError::ReadOnly));
    assert_eq!(
        r.blk.submit(&Request::Write {
            sector: 0,
            bufs: &[Segment {
                addr: MBASE,
                len: 512
            }]
        }),
        Err(BlkError::ReadOnly)
    );
    // No write cache: flush has nothing to do, and cannot be submitted.
    r.blk.flush().unwrap();
    assert_eq!(
        r.blk.submit(&Request::Flush),
        Err(BlkError::FlushUnsupported)
    );
    assert_eq!(r.world.borrow().dev.notifies, 0);
}

#[test]
fn sync_errors_from_the_device() {
    let mut p = DevParams::simple(8, 16);
    p.ioerr = 1000;
    let mut r = rig(p, 11, PAGE);
    let mut b = [0u8; 512];
    assert_eq!(
        r.blk.read_sectors(0, &mut b),
        Err(BlkError::Io(ReqStatus::IoErr))
    );
    r.world.borrow_mut().dev.p.ioerr = 0;
    r.world.borrow_mut().dev.p.garbage_status = 1000;
    for _ in 0..8 {
        match r.blk.read_sectors(0, &mut b) {
            Err(BlkError::Io(ReqStatus::Bad(s))) => assert!(s >= 3),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn timeout_then_recovery() {
    let mut r = rig(DevParams::simple(8, 16), 13, PAGE);
    r.blk.set_poll_limit(200);
    r.world.borrow_mut().dev.stalled = true;
    let mut b = [0u8; 512];
    assert_eq!(r.blk.read_sectors(3, &mut b), Err(BlkError::Timeout));
    // The bounce buffer still belongs to the stalled request.
    assert_eq!(r.blk.read_sectors(3, &mut b), Err(BlkError::BounceBusy));
    assert_eq!(r.blk.get_id(), Err(BlkError::BounceBusy));
    r.world.borrow_mut().dev.stalled = false;
    r.blk.set_poll_limit(1 << 20);
    // Once the device catches up, the abandoned request is reaped and dropped.
    for _ in 0..1000 {
        r.world.borrow_mut().tick();
    }
    r.blk.read_sectors(3, &mut b).unwrap();
    assert_eq!(&b[..], &r.world.borrow().dev.disk[3 * 512..4 * 512]);
    assert_eq!(r.blk.complete(), Ok(None));
    assert_eq!(r.blk.in_flight(), 0);
}

#[test]
fn isr_acknowledge() {
    let mut r = rig(DevParams::simple(8, 16), 15, PAGE);
    assert!(!r.blk.ack_interrupt().queue());
    let mut b = [0u8; 512];
    r.blk.read_sectors(0, &mut b).unwrap();
    assert!(r.blk.ack_interrupt().queue());
    assert!(!r.blk.ack_interrupt().queue());
}

#[test]
fn async_request_checks() {
    let mut p = DevParams::simple(8, 64);
    p.seg_max = 2;
    p.host_features |= blk::feature::SIZE_MAX;
    p.size_max = 4096;
    let mut r = rig(p, 17, 0);
    let seg = |n| Segment {
        addr: MBASE + 0x8_0000,
        len: n,
    };
    assert_eq!(
        r.blk.submit(&Request::Read {
            sector: 0,
            bufs: &[seg(512); 3]
        }),
        Err(BlkError::TooManySegments { given: 3, max: 2 })
    );
    assert_eq!(
        r.blk.submit(&Request::Read {
            sector: 0,
            bufs: &[seg(8192)]
        }),
        Err(BlkError::SegmentTooLarge(8192))
    );
    assert_eq!(
        r.blk.submit(&Request::Read {
            sector: 0,
            bufs: &[seg(511)]
        }),
        Err(BlkError::BadLength(511))
    );
    assert_eq!(
        r.blk.submit(&Request::Read {
            sector: 0,
            bufs: &[]
        }),
        Err(BlkError::BadLength(0))
    );
    assert_eq!(
        r.blk.submit(&Request::Read {
            sector: 0,
            bufs: &[seg(256), seg(0), seg(256)]
        }),
        Err(BlkError::BadLength(512))
    );
    assert_eq!(
        r.blk.submit(&Request::GetId { buf: seg(0) }),
        Err(BlkError::BadLength(0))
    );
    // No bounce buffer: the synchronous API says so.
    let mut b = [0u8; 512];
    assert_eq!(r.blk.read_sectors(0, &mut b), Err(BlkError::NoBounce));
    // Fill the queue: 8 descriptors, 3 per request.
    let t1 = r
        .blk
        .submit(&Request::Read {
            sector: 0,
            bufs: &[seg(512)],
        })
        .unwrap();
    let t2 = r
        .blk
        .submit(&Request::Read {
            sector: 1,
            bufs: &[seg(512)],
        })
        .unwrap();
    assert_ne!(t1, t2);
    assert_eq!(
        r.blk.submit(&Request::Read {
            sector: 2,
            bufs: &[seg(512)]
        }),
        Err(BlkError::Queue(QueueError::Full))
    );
    let t3 = r.blk.submit(&Request::Flush).unwrap();
    assert!(t3.index() < 8);
    r.blk.kick();
    let mut got = BTreeSet::new();
    for _ in 0..10_000 {
        r.world.borrow_mut().tick();
        if let Some(c) = r.blk.complete().unwrap() {
            assert_eq!(c.status, ReqStatus::Ok);
            assert!(got.insert(c.token));
        }
    }
    assert_eq!(got, BTreeSet::from([t1, t2, t3]));
}

#[test]
fn reset_hands_back_lost_tokens_and_reprobe_works() {
    let mut r = rig(DevParams::simple(8, 64), 19, PAGE);
    r.world.borrow_mut().dev.stalled = true;
    let seg = Segment {
        addr: MBASE + 0x8_0000,
        len: 512,
    };
    let t1 = r
        .blk
        .submit(&Request::Read {
            sector: 0,
            bufs: &[seg],
        })
        .unwrap();
    let t2 = r.blk.submit(&Request::Flush).unwrap();
    r.blk.kick();
    let mut lost = r.blk.reset();
    lost.sort();
    let mut want = vec![t1, t2];
    want.sort();
    assert_eq!(lost, want);
    assert_eq!(r.blk.submit(&Request::Flush), Err(BlkError::Reset));
    assert_eq!(r.blk.complete(), Err(BlkError::Reset));
    assert_eq!(r.world.borrow().dev.pfn, 0);
    // Probe again over the same memory.
    r.world.borrow_mut().dev.stalled = false;
    let (p, q, s) = r.blk.into_parts();
    let mut blk = BlkProbe::new(LegacyTransport::new(p, IO_BASE))
        .unwrap()
        .start(q, s)
        .unwrap();
    let mut b = [0u8; 512];
    blk.read_sectors(5, &mut b).unwrap();
    assert_eq!(&b[..], &r.world.borrow().dev.disk[5 * 512..6 * 512]);
}

// ---------------------------------------------------------------------------------------
// The model test: asynchronous and synchronous requests against a random device.

#[derive(Debug, Clone)]
enum Op {
    Read {
        sector: u64,
        n: u8,
        split: bool,
    },
    Write {
        sector: u64,
        n: u8,
        split: bool,
        fill: u8,
    },
    Flush,
    GetId,
    Kick,
    Complete,
    Device(u8),
    SyncRead {
        sector: u64,
        n: u16,
    },
    SyncWrite {
        sector: u64,
        n: u16,
        fill: u8,
    },
    SyncFlush,
    SyncGetId,
    Ack,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u64>(), 1u8..=24, any::<bool>()).prop_map(|(sector, n, split)| Op::Read { sector, n, split }),
        4 => (any::<u64>(), 1u8..=24, any::<bool>(), any::<u8>())
            .prop_map(|(sector, n, split, fill)| Op::Write { sector, n, split, fill }),
        1 => Just(Op::Flush),
        1 => Just(Op::GetId),
        3 => Just(Op::Kick),
        4 => Just(Op::Complete),
        3 => (1u8..8).prop_map(Op::Device),
        1 => (any::<u64>(), 1u16..=40).prop_map(|(sector, n)| Op::SyncRead { sector, n }),
        1 => (any::<u64>(), 1u16..=40, any::<u8>()).prop_map(|(sector, n, fill)| Op::SyncWrite { sector, n, fill }),
        1 => Just(Op::SyncFlush),
        1 => Just(Op::SyncGetId),
        1 => Just(Op::Ack),
    ]
}

fn dev_params(misbehave: bool) -> impl Strategy<Value = DevParams> {
    (
        2u32..=8,
        64u64..=1024,
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        prop_oneof![Just(512u32), Just(1000), Just(4096), Just(65536)],
        1u32..=40,
        (20u32..=600, 0u32..=300),
        (0u32..=100, 0u32..=100),
        0u32..=60,
    )
        .prop_map(
            move |(
                qlog,
                capacity,
                (evi, flush, sizem, segm),
                size_max,
                seg_max,
                (tick, polling),
                (ioerr, garbage),
                mis,
            )| {
                let mut host_features =
                    features::BAD_FEATURE | features::ANY_LAYOUT | blk::feature::BLK_SIZE;
                if evi {
                    host_features |= features::RING_EVENT_IDX;
                }
                if flush {
                    host_features |= blk::feature::FLUSH;
                }
                if sizem {
                    host_features |= blk::feature::SIZE_MAX;
                }
                if segm {
                    host_features |= blk::feature::SEG_MAX;
                }
                DevParams {
                    queue_size: 1 << qlog,
                    capacity,
                    host_features,
                    size_max,
                    seg_max,
                    blk_size: 512,
                    tick,
                    polling,
                    ioerr,
                    garbage_status: garbage,
                    misbehave: if misbehave { mis } else { 0 },
                }
            },
        )
}

/// What the test remembers about a request in flight.
#[derive(Debug)]
struct Outstanding {
    kind: ReqKind,
    sector: u64,
    sectors: u64,
    segs: Vec<Segment>,
    pages: Vec<u64>,
    /// For reads and GET_ID, what the data must be.
    expect: Option<Vec<u8>>,
}

struct Model {
    world: Shared,
    pages: Pages,
    blk: Option<VirtioBlk<Ports, Region>>,
    disk: Vec<u8>,
    out: BTreeMap<Token, Outstanding>,
    submitted: u64,
    completed: u64,
    lost: u64,
    errors: u64,
    sync_ok: u64,
    misbehaving: bool,
}

impl Model {
    fn new(p: DevParams, seed: u64, bounce: usize) -> Model {
        let misbehaving = p.misbehave > 0;
        let mut r = rig(p, seed, bounce);
        // The device works on about one read in 50 at worst: a request still pending
        // after this many polls was never noticed by the device (a missed notification).
        r.blk.set_poll_limit(200_000);
        let disk = r.world.borrow().dev.disk.clone();
        Model {
            world: r.world,
            pages: r.pages,
            blk: Some(r.blk),
            disk,
            out: BTreeMap::new(),
            submitted: 0,
            completed: 0,
            lost: 0,
            errors: 0,
            sync_ok: 0,
            misbehaving,
        }
    }

    fn blk(&mut self) -> &mut VirtioBlk<Ports, Region> {
        self.blk.as_mut().expect("driver present")
    }

    fn overlaps(&self, sector: u64, n: u64, write: bool) -> bool {
        self.out.values().any(|o| {
            (write || o.kind == ReqKind::Write)
                && o.sectors > 0
                && sector < o.sector + o.sectors
                && o.sector < sector + n
        })
    }

    fn read_mem(&self, segs: &[Segment]) -> Vec<u8> {
        let w = self.world.borrow();
        let mut v = Vec::new();
        for s in segs {
            let o = (s.addr - MBASE) as usize;
            v.extend_from_slice(&w.mem[o..o + s.len as usize]);
        }
        v
    }

    fn write_mem(&self, segs: &[Segment], data: &[u8]) {
        let mut w = self.world.borrow_mut();
        let mut pos = 0;
        for s in segs {
            let o = (s.addr - MBASE) as usize;
            w.mem[o..o + s.len as usize].copy_from_slice(&data[pos..pos + s.len as usize]);
            pos += s.len as usize;
        }
    }

    /// Takes the device's word for sectors whose fate is unknown (failed or lost writes).
    fn sync_range(&mut self, sector: u64, n: u64) {
        let w = self.world.borrow();
        let r = sector as usize * 512..(sector + n) as usize * 512;
        self.disk[r.clone()].copy_from_slice(&w.dev.disk[r]);
    }

    /// Buffers for `len` bytes on fresh pages: a page (or two halves of one) per
    /// segment, cut further to the device's `size_max`.
    fn buffers(&mut self, len: usize, split: bool) -> Option<(Vec<Segment>, Vec<u64>)> {
        let pages = self.pages.take(len.div_ceil(PAGE))?;
        let cap = self.blk().config().size_max.unwrap_or(u32::MAX) as usize;
        let mut segs = Vec::new();
        let mut left = len;
        for &p in &pages {
            let in_page = left.min(PAGE);
            let mut off = 0;
            let pieces = if split && in_page > 512 {
                vec![512, in_page - 512]
            } else {
                vec![in_page]
            };
            for piece in pieces {
                let mut rest = piece;
                while rest > 0 {
                    let n = rest.min(cap);
                    segs.push(Segment {
                        addr: p + off as u64,
                        len: n as u32,
                    });
                    off += n;
                    rest -= n;
                }
            }
            left -= in_page;
        }
        Some((segs, pages))
    }

    fn clamp(&mut self, sector: u64, n: u64) -> (u64, u64) {
        let cap = self.blk().capacity();
        let n = n.min(cap);
        (sector % (cap - n + 1), n)
    }

    fn submit(&mut self, kind: ReqKind, sector: u64, n: u64, split: bool, fill: u8) {
        let (sector, n) = match kind {
            ReqKind::Read | ReqKind::Write => self.clamp(sector, n),
            _ => (0, 0),
        };
        if self.overlaps(sector, n, kind == ReqKind::Write) {
            return;
        }
        let len = match kind {
            ReqKind::GetId => 20,
            ReqKind::Flush => 0,
            _ => n as usize * 512,
        };
        let (segs, pages) = if len > 0 {
            match self.buffers(len, split) {
                Some(b) => b,
                None => return,
            }
        } else {
            (Vec::new(), Vec::new())
        };
        let data = pattern(fill, sector, len);
        if kind == ReqKind::Write {
            self.write_mem(&segs, &data);
        }
        let req = match kind {
            ReqKind::Read => Request::Read {
                sector,
                bufs: &segs,
            },
            ReqKind::Write => Request::Write {
                sector,
                bufs: &segs,
            },
            ReqKind::Flush => Request::Flush,
            ReqKind::GetId => Request::GetId { buf: segs[0] },
        };
        let max_segs = self.blk().max_segments();
        let flush = self.blk().config().flush;
        let result = self.blk().submit(&req);
        match result {
            Ok(t) => {
                assert!(t.index() < usize::from(self.blk().queue_size()));
                let expect = match kind {
                    ReqKind::Read => Some(self.disk[sector as usize * 512..][..len].to_vec()),
                    ReqKind::GetId => Some(DEVICE_ID.to_vec()),
                    ReqKind::Write => {
                        self.disk[sector as usize * 512..][..len].copy_from_slice(&data);
                        None
                    }
                    ReqKind::Flush => None,
                };
                let prev = self.out.insert(
                    t,
                    Outstanding {
                        kind,
                        sector,
                        sectors: n,
                        segs,
                        pages,
                        expect,
                    },
                );
                assert!(prev.is_none(), "token {t:?} handed out twice");
                self.submitted += 1;
            }
            Err(e) => {
                self.pages.give(pages);
                match e {
                    BlkError::Queue(QueueError::Full | QueueError::ChainTooLong(_)) => {}
                    BlkError::TooManySegments { given, max } => {
                        assert_eq!(max, max_segs);
                        assert!(given > max && segs.len() == given);
                    }
                    BlkError::FlushUnsupported => assert!(!flush),
                    BlkError::Queue(QueueError::Broken) => self.driver_error(e),
                    e => panic!("unexpected submit error {e:?}"),
                }
            }
        }
    }

    fn on_completion(&mut self, c: Completion) {
        let o = self
            .out
            .remove(&c.token)
            .unwrap_or_else(|| panic!("completion of unknown token {c:?}"));
        assert_eq!(c.kind, o.kind);
        {
            // Match the device's record: by data address (unique among outstanding
            // requests), or for flushes any flush with the same status.
            let mut w = self.world.borrow_mut();
            let addr = o.segs.first().map(|s| s.addr);
            let i = w
                .dev
                .log
                .iter()
                .position(|d| {
                    d.addr == addr && (addr.is_some() || ReqStatus::from_byte(d.status) == c.status)
                })
                .unwrap_or_else(|| panic!("{c:?} was never completed by the device"));
            let d = w.dev.log.remove(i).expect("entry");
            assert_eq!(c.status, ReqStatus::from_byte(d.status), "{c:?}");
        }
        if c.status == ReqStatus::Ok {
            if let Some(e) = &o.expect {
                assert!(self.read_mem(&o.segs) == *e, "data of {c:?} differs");
            }
        } else if o.kind == ReqKind::Write {
            self.sync_range(o.sector, o.sectors);
        }
        self.completed += 1;
        self.pages.give(o.pages);
    }

    fn complete_all(&mut self) {
        loop {
            match self.blk().complete() {
                Ok(Some(c)) => self.on_completion(c),
                Ok(None) => break,
                Err(e) => {
                    self.driver_error(e);
                    break;
                }
            }
        }
    }

    /// The device broke the queue: reset as the glue would, check what is handed back,
    /// and start a new driver instance over the same memory.
    fn driver_error(&mut self, e: BlkError) {
        assert!(self.misbehaving, "error from a well-behaved device: {e:?}");
        assert!(
            matches!(
                e,
                BlkError::Queue(
                    QueueError::BadUsedId(_) | QueueError::UsedIdxJump { .. } | QueueError::Broken
                )
            ),
            "{e:?}"
        );
        assert!(
            self.world.borrow().dev.misbehaved > 0,
            "{e:?} but the device behaved"
        );
        self.errors += 1;
        // Completions the driver already took off the ring are still delivered.
        let mut early = Vec::new();
        let lost: BTreeSet<Token> = self.blk().reset().into_iter().collect();
        while let Ok(Some(c)) = self.blk().complete() {
            early.push(c);
        }
        for c in early {
            // The device log was cleared by the reset; check token and data only.
            let o = self.out.remove(&c.token).expect("known token");
            assert!(!lost.contains(&c.token));
            if o.kind == ReqKind::Write || c.status != ReqStatus::Ok {
                self.sync_range(o.sector, o.sectors);
            }
            self.completed += 1;
            self.pages.give(o.pages);
        }
        assert_eq!(self.blk().complete(), Err(BlkError::Reset));
        let outstanding: BTreeSet<Token> = self.out.keys().copied().collect();
        assert_eq!(
            lost, outstanding,
            "lost tokens are exactly the uncompleted ones"
        );
        for t in lost {
            let o = self.out.remove(&t).expect("outstanding");
            if o.kind == ReqKind::Write {
                self.sync_range(o.sector, o.sectors);
            }
            self.pages.give(o.pages);
            self.lost += 1;
        }
        let (p, q, s) = self.blk.take().expect("driver").into_parts();
        let mut blk = BlkProbe::new(LegacyTransport::new(p, IO_BASE))
            .expect("probe again")
            .start(q, s)
            .expect("restart");
        blk.set_poll_limit(200_000);
        self.blk = Some(blk);
    }

    /// After a synchronous request, forget the device's records of it (the test does
    /// not see its token): data requests on the bounce buffer, and a flush with the
    /// status the synchronous flush returned.
    fn forget_sync_log(&mut self, flush: Option<ReqStatus>) {
        let addrs: BTreeSet<u64> = self
            .out
            .values()
            .filter_map(|o| o.segs.first().map(|s| s.addr))
            .collect();
        let mut w = self.world.borrow_mut();
        w.dev
            .log
            .retain(|d| d.addr.is_none_or(|a| addrs.contains(&a)));
        if let Some(st) = flush {
            if let Some(i) = w
                .dev
                .log
                .iter()
                .position(|d| d.addr.is_none() && ReqStatus::from_byte(d.status) == st)
            {
                w.dev.log.remove(i);
            }
        }
    }

    fn sync_result(&mut self, r: Result<(), BlkError>, flush: bool) -> bool {
        match r {
            Ok(()) => {
                self.sync_ok += 1;
                self.forget_sync_log(flush.then_some(ReqStatus::Ok));
                true
            }
            Err(BlkError::Io(s)) => {
                assert_ne!(s, ReqStatus::Ok);
                self.forget_sync_log(flush.then_some(s));
                false
            }
            // Asynchronous requests fill the queue.
            Err(BlkError::Queue(QueueError::Full)) => false,
            Err(e @ BlkError::Queue(_)) => {
                self.driver_error(e);
                false
            }
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Read { sector, n, split } => self.submit(ReqKind::Read, sector, n.into(), split, 0),
            Op::Write {
                sector,
                n,
                split,
                fill,
            } => self.submit(ReqKind::Write, sector, n.into(), split, fill),
            Op::Flush => self.submit(ReqKind::Flush, 0, 0, false, 0),
            Op::GetId => self.submit(ReqKind::GetId, 0, 0, false, 0),
            Op::Kick => self.blk().kick(),
            Op::Complete => self.complete_all(),
            Op::Device(k) => {
                for _ in 0..k {
                    self.world.borrow_mut().tick();
                }
            }
            Op::Ack => {
                self.blk().ack_interrupt();
            }
            Op::SyncRead { sector, n } => {
                let (sector, n) = self.clamp(sector, n.into());
                if self.overlaps(sector, n, false) {
                    return;
                }
                let mut buf = vec![0; n as usize * 512];
                let r = self.blk().read_sectors(sector, &mut buf);
                if self.sync_result(r, false) {
                    assert!(
                        buf == self.disk[sector as usize * 512..][..buf.len()],
                        "sync read differs"
                    );
                }
            }
            Op::SyncWrite { sector, n, fill } => {
                let (sector, n) = self.clamp(sector, n.into());
                if self.overlaps(sector, n, true) {
                    return;
                }
                let data = pattern(fill, sector, n as usize * 512);
                let r = self.blk().write_sectors(sector, &data);
                if self.sync_result(r, false) {
                    self.disk[sector as usize * 512..][..data.len()].copy_from_slice(&data);
                } else {
                    self.sync_range(sector, n);
                }
            }
            Op::SyncFlush => {
                let before = self.world.borrow().dev.flushes;
                let r = self.blk().flush();
                let flush = self.blk().config().flush;
                if self.sync_result(r, flush) && flush {
                    assert!(self.world.borrow().dev.flushes > before);
                }
            }
            Op::SyncGetId => {
                let r = self.blk().get_id();
                match r {
                    Ok(id) => {
                        assert_eq!(&id, DEVICE_ID);
                        self.sync_result(Ok(()), false);
                    }
                    Err(e) => {
                        self.sync_result(Err(e), false);
                    }
                }
            }
        }
    }

    /// Lets the device finish everything; every request must then have completed.
    fn drain(&mut self) {
        for _ in 0..2000 {
            if self.out.is_empty() {
                break;
            }
            self.blk().kick();
            for _ in 0..8 {
                self.world.borrow_mut().tick();
            }
            self.complete_all();
        }
        assert!(
            self.out.is_empty(),
            "requests never completed (missed notification?): {:?}",
            self.out.keys()
        );
    }

    fn check_end(&mut self) {
        let w = self.world.borrow();
        assert!(
            w.dev.violations.is_empty(),
            "device saw: {:?}",
            w.dev.violations
        );
        assert!(w.dev.disk == self.disk, "disk differs from the model");
        assert_eq!(self.submitted, self.completed + self.lost);
        if !self.misbehaving {
            assert_eq!((self.errors, self.lost), (0, 0));
        }
    }
}

fn run(p: DevParams, seed: u64, bounce: usize, ops: Vec<Op>) -> Model {
    let mut m = Model::new(p, seed, bounce);
    for op in ops {
        m.apply(op);
    }
    m.drain();
    m.check_end();
    m
}

/// A fixed workload, to check the model test really exercises what it claims.
fn fixed_ops(rng: &mut Rng, n: usize) -> Vec<Op> {
    (0..n)
        .map(|_| match rng.below(14) {
            0..=2 => Op::Read {
                sector: rng.next(),
                n: 1 + rng.below(16) as u8,
                split: rng.chance(500),
            },
            3..=5 => Op::Write {
                sector: rng.next(),
                n: 1 + rng.below(16) as u8,
                split: rng.chance(500),
                fill: rng.next() as u8,
            },
            6 => Op::Flush,
            7 => Op::Kick,
            8 | 9 => Op::Complete,
            10 => Op::Device(1 + rng.below(6) as u8),
            11 => Op::SyncRead {
                sector: rng.next(),
                n: 1 + rng.below(30) as u16,
            },
            12 => Op::SyncWrite {
                sector: rng.next(),
                n: 1 + rng.below(30) as u16,
                fill: rng.next() as u8,
            },
            _ => Op::GetId,
        })
        .collect()
}

#[test]
fn model_test_exercises_completions_and_misbehaviour() {
    for (evi, polling) in [(true, 0), (false, 0), (false, 200)] {
        let mut p = DevParams::simple(32, 512);
        if !evi {
            p.host_features &= !features::RING_EVENT_IDX;
        }
        p.polling = polling;
        p.ioerr = 20;
        let m = run(p.clone(), 21, 2 * PAGE, fixed_ops(&mut Rng(99), 3000));
        assert!(
            m.completed > 500 && m.sync_ok > 100,
            "{} {}",
            m.completed,
            m.sync_ok
        );
        let notifies = m.world.borrow().dev.notifies;
        assert!(notifies > 0);
        if polling > 0 || evi {
            // Notifications were suppressed some of the time.
            assert!(
                u64::from(notifies) < m.submitted,
                "{notifies} {}",
                m.submitted
            );
        }
        p.misbehave = 5;
        let m = run(p, 23, 2 * PAGE, fixed_ops(&mut Rng(77), 3000));
        assert!(
            m.errors > 3 && m.lost > 0 && m.completed > 100,
            "{} {} {}",
            m.errors,
            m.lost,
            m.completed
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    /// A well-behaved device completing in random order: every request completes exactly
    /// once, with the status the device gave and the data the model disk holds.
    #[test]
    fn every_request_completes_once_with_the_right_data(
        p in dev_params(false),
        seed in any::<u64>(),
        bounce in prop_oneof![Just(512usize), Just(4096), Just(3 * 4096 + 1024)],
        ops in prop::collection::vec(op(), 1..160),
    ) {
        let m = run(p, seed, bounce, ops);
        prop_assert_eq!(m.lost, 0);
    }

    /// A device that sometimes returns bad used ids or jumps its used index: no panic,
    /// the misbehaviour is an error, and after a reset each request was either completed
    /// once or handed back as lost.
    #[test]
    fn misbehaving_device_never_panics_the_driver(
        p in dev_params(true),
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..160),
    ) {
        run(p, seed, 2 * 4096, ops);
    }

    /// The device reports any queue size and any configuration: probing fails cleanly or
    /// yields a driver whose limits the sync API copes with.
    #[test]
    fn probe_any_device_config(
        size in any::<u16>(),
        features in any::<u32>(),
        capacity in any::<u64>(),
        size_max in any::<u32>(),
        seg_max in any::<u32>(),
        seed in any::<u64>(),
    ) {
        let mut p = DevParams::simple(8, 16);
        p.queue_size = size;
        p.host_features = features;
        p.size_max = size_max;
        p.seg_max = seg_max;
        let world = Rc::new(RefCell::new(World::new(p, seed)));
        // The model disk is small; the device claims any capacity.
        world.borrow_mut().dev.p.capacity = capacity;
        let mut pages = Pages::new(&mut Rng(seed | 1));
        match BlkProbe::new(LegacyTransport::new(Ports(world.clone()), IO_BASE)) {
            Err(_) => prop_assert_ne!(world.borrow().dev.status & status::FAILED, 0),
            Ok(probe) => {
                prop_assert!(size.is_power_of_two() && (4..=32768).contains(&size));
                let ql = probe.queue_bytes();
                if ql / PAGE > 16 {
                    return Ok(());
                }
                let q = region(&world, pages.contiguous(ql / PAGE), ql);
                let sl = probe.scratch_bytes(4096);
                let s = region(&world, pages.take(sl.div_ceil(PAGE)).unwrap(), sl);
                let mut blk = probe.start(q, s).unwrap();
                prop_assert_eq!(blk.capacity(), capacity);
                world.borrow_mut().dev.p.capacity = 16;
                let mut b = [0u8; 1024];
                match blk.read_sectors(0, &mut b) {
                    Ok(()) => prop_assert!(capacity >= 2),
                    Err(BlkError::OutOfRange { .. }) => prop_assert!(capacity < 2),
                    Err(e) => prop_assert!(false, "{:?}", e),
                }
                prop_assert!(world.borrow().dev.violations.is_empty(), "{:?}", world.borrow().dev.violations);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// PCI: a fake configuration space.

#[derive(Debug, Clone)]
struct FakeFn {
    cfg: Vec<u8>,
    /// Per BAR dword: the bits software can write (0: unimplemented, reads 0).
    bar_mask: [u32; 6],
    /// Per BAR dword: the read-only low bits (I/O, type, prefetchable).
    bar_flags: [u32; 6],
}

impl FakeFn {
    fn new(vendor: u16, device: u16, class: u8, subclass: u8, header: u8) -> FakeFn {
        let mut f = FakeFn {
            cfg: vec![0; 256],
            bar_mask: [0; 6],
            bar_flags: [0; 6],
        };
        f.put16(0, vendor);
        f.put16(2, device);
        f.cfg[0x0b] = class;
        f.cfg[0x0a] = subclass;
        f.cfg[0x08] = 0x01;
        f.cfg[0x0e] = header;
        f
    }
    fn put16(&mut self, off: usize, v: u16) {
        self.cfg[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn put32(&mut self, off: usize, v: u32) {
        self.cfg[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn get32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.cfg[off..off + 4].try_into().expect("4 bytes"))
    }
    fn io_bar(mut self, i: usize, port: u32, size: u32, decode16: bool) -> FakeFn {
        let mut mask = !(size - 1) & !3;
        if decode16 {
            mask &= 0xffff;
        }
        self.bar_mask[i] = mask;
        self.bar_flags[i] = 1;
        self.put32(0x10 + 4 * i, port | 1);
        self
    }
    fn mem_bar(mut self, i: usize, addr: u32, size: u32, prefetch: bool) -> FakeFn {
        self.bar_mask[i] = !(size - 1) & !0xf;
        self.bar_flags[i] = if prefetch { 8 } else { 0 };
        self.put32(0x10 + 4 * i, addr | self.bar_flags[i]);
        self
    }
    fn mem64_bar(mut self, i: usize, addr: u64, size: u64, prefetch: bool) -> FakeFn {
        let mask = !(size - 1);
        self.bar_mask[i] = mask as u32 & !0xf;
        self.bar_flags[i] = 4 | if prefetch { 8 } else { 0 };
        self.bar_mask[i + 1] = (mask >> 32) as u32;
        self.put32(0x10 + 4 * i, addr as u32 | self.bar_flags[i]);
        self.put32(0x14 + 4 * i, (addr >> 32) as u32);
        self
    }
    /// A capability list: (offset, id, next).
    fn caps(mut self, first: u8, list: &[(u8, u8, u8)]) -> FakeFn {
        self.cfg[0x06] |= 0x10;
        self.cfg[0x34] = first;
        for &(off, id, next) in list {
            self.cfg[usize::from(off)] = id;
            self.cfg[usize::from(off) + 1] = next;
        }
        self
    }
    fn irq(mut self, line: u8, pin: u8) -> FakeFn {
        self.cfg[0x3c] = line;
        self.cfg[0x3d] = pin;
        self
    }
    fn subsystem(mut self, vendor: u16, id: u16) -> FakeFn {
        self.put16(0x2c, vendor);
        self.put16(0x2e, id);
        self
    }
}

#[derive(Debug, Default)]
struct FakePci {
    fns: BTreeMap<(u8, u8, u8), FakeFn>,
    violations: Vec<String>,
    accesses: u64,
}

fn key(b: Bdf) -> (u8, u8, u8) {
    (b.bus(), b.dev(), b.func())
}

fn bdf(b: u8, d: u8, f: u8) -> Bdf {
    Bdf::new(b, d, f).expect("valid bdf")
}

impl ConfigSpace for FakePci {
    fn read32(&mut self, bdf: Bdf, off: u8) -> u32 {
        self.accesses += 1;
        match self.fns.get(&key(bdf)) {
            Some(f) => f.get32(usize::from(off & 0xfc)),
            None => !0,
        }
    }
    fn write32(&mut self, bdf: Bdf, off: u8, val: u32) {
        self.accesses += 1;
        let Some(f) = self.fns.get_mut(&key(bdf)) else {
            return;
        };
        let off = usize::from(off & 0xfc);
        match off {
            0x04 => {
                let cmd = val as u16 & 0x0407;
                let status =
                    u16::from_le_bytes([f.cfg[6], f.cfg[7]]) & !((val >> 16) as u16 & 0xf900);
                f.put16(4, cmd);
                f.put16(6, status);
            }
            0x10..=0x24 => {
                let i = (off - 0x10) / 4;
                let cmd = f.cfg[4] & 3;
                if val == !0 && cmd != 0 {
                    self.violations
                        .push(format!("{bdf}: BAR{i} sized with decode on ({cmd:#x})"));
                }
                let v = (val & f.bar_mask[i]) | f.bar_flags[i];
                f.put32(off, v);
            }
            0x3c => f.cfg[0x3c] = val as u8,
            _ => {}
        }
    }
}

/// The same configuration space behind ports 0xCF8/0xCFC.
#[derive(Debug)]
struct PciPorts {
    pci: FakePci,
    addr: u32,
}

impl PortIo for PciPorts {
    fn in8(&mut self, _: u16) -> u8 {
        panic!("8-bit config access")
    }
    fn in16(&mut self, _: u16) -> u16 {
        panic!("16-bit config access")
    }
    fn in32(&mut self, port: u16) -> u32 {
        assert_eq!(port, pci::CONFIG_DATA);
        assert_ne!(self.addr & 0x8000_0000, 0, "enable bit");
        assert_eq!(self.addr & 3, 0);
        let a = self.addr;
        self.pci.read32(
            bdf(
                (a >> 16) as u8,
                ((a >> 11) & 31) as u8,
                ((a >> 8) & 7) as u8,
            ),
            a as u8,
        )
    }
    fn out8(&mut self, _: u16, _: u8) {
        panic!("8-bit config access")
    }
    fn out16(&mut self, _: u16, _: u16) {
        panic!("16-bit config access")
    }
    fn out32(&mut self, port: u16, val: u32) {
        match port {
            pci::CONFIG_ADDRESS => self.addr = val,
            pci::CONFIG_DATA => {
                let a = self.addr;
                self.pci.write32(
                    bdf(
                        (a >> 16) as u8,
                        ((a >> 11) & 31) as u8,
                        ((a >> 8) & 7) as u8,
                    ),
                    a as u8,
                    val,
                )
            }
            p => panic!("port {p:#x}"),
        }
    }
}

/// Something like QEMU's `pc` machine with a few extras.
fn machine() -> FakePci {
    let mut pci = FakePci::default();
    let mut add = |b: u8, d: u8, f: u8, func: FakeFn| {
        pci.fns.insert((b, d, f), func);
    };
    add(0, 0, 0, FakeFn::new(0x8086, 0x1237, 6, 0, 0));
    // PIIX3: a multi-function device with functions 0, 1 and 3.
    add(0, 1, 0, FakeFn::new(0x8086, 0x7000, 6, 1, 0x80));
    add(
        0,
        1,
        1,
        FakeFn::new(0x8086, 0x7010, 1, 1, 0).io_bar(4, 0xc0a0, 16, true),
    );
    add(0, 1, 3, FakeFn::new(0x8086, 0x7113, 6, 0x80, 0).irq(9, 1));
    add(
        0,
        2,
        0,
        FakeFn::new(0x1234, 0x1111, 3, 0, 0)
            .mem_bar(0, 0xfd00_0000, 16 << 20, true)
            .mem_bar(2, 0xfebf_0000, 4096, false),
    );
    // Function 1 answers but function 0 does not say multi-function: not enumerated.
    add(0, 3, 0, FakeFn::new(0x10ec, 0x8139, 2, 0, 0));
    add(0, 3, 1, FakeFn::new(0x10ec, 0x8139, 2, 0, 0));
    // The transitional virtio-blk, as QEMU lays it out.
    add(
        0,
        4,
        0,
        FakeFn::new(0x1af4, 0x1001, 1, 0, 0)
            .subsystem(0x1af4, 2)
            .io_bar(0, 0xc040, 0x40, false)
            .mem_bar(1, 0xfebf_1000, 4096, false)
            .mem64_bar(4, 0x8_0000_0000, 16384, true)
            .caps(
                0x98,
                &[(0x98, 0x11, 0x84), (0x84, 0x09, 0x70), (0x70, 0x09, 0)],
            )
            .irq(11, 1),
    );
    // A modern-only virtio-blk.
    add(
        0,
        5,
        0,
        FakeFn::new(0x1af4, 0x1042, 1, 0, 0).mem64_bar(4, 0xc000_0000, 16384, true),
    );
    // Looping capability list, and one pointing into the header.
    add(
        0,
        6,
        0,
        FakeFn::new(0x1b36, 0x0001, 0xff, 0, 0)
            .caps(0x40, &[(0x40, 0x05, 0x50), (0x50, 0x10, 0x40)]),
    );
    add(
        0,
        7,
        0,
        FakeFn::new(0x1b36, 0x0002, 0xff, 0, 0).caps(0x10, &[]),
    );
    // A 64-bit BAR in the last slot.
    let mut last = FakeFn::new(0x1b36, 0x0003, 0xff, 0, 0);
    last.bar_mask[5] = 0xffff_fff0;
    last.bar_flags[5] = 4;
    last.put32(0x24, 4);
    add(0, 8, 0, last);
    // A bridge and a device behind it; the last possible slot of the last bus.
    add(
        0,
        0x1e,
        0,
        FakeFn::new(0x8086, 0x244e, 6, 4, 1).mem_bar(0, 0xfe00_0000, 4096, false),
    );
    add(
        1,
        0,
        0,
        FakeFn::new(0x1af4, 0x1000, 2, 0, 0)
            .subsystem(0x1af4, 1)
            .io_bar(0, 0xd000, 0x20, false),
    );
    add(0xff, 0x1f, 0, FakeFn::new(0x1b36, 0x0010, 0xff, 0, 0x80));
    add(0xff, 0x1f, 7, FakeFn::new(0x1b36, 0x0011, 0xff, 0, 0));
    pci
}

#[test]
fn enumeration_finds_what_is_there() {
    let mut pci = machine();
    let found: Vec<String> = pci::enumerate(&mut pci)
        .iter()
        .map(|f| f.bdf.to_string())
        .collect();
    assert_eq!(
        found,
        [
            "00:00.0", "00:01.0", "00:01.1", "00:01.3", "00:02.0", "00:03.0", "00:04.0", "00:05.0",
            "00:06.0", "00:07.0", "00:08.0", "00:1e.0", "01:00.0", "ff:1f.0", "ff:1f.7"
        ]
    );
    // Through the I/O ports too, with the same answer.
    let mut m = pci::Mechanism1::new(PciPorts {
        pci: machine(),
        addr: 0,
    });
    assert_eq!(pci::enumerate(&mut m).len(), found.len());
    let f = pci::enumerate(&mut pci)
        .into_iter()
        .find(|f| f.bdf == bdf(0, 4, 0))
        .unwrap();
    assert_eq!(
        (
            f.vendor,
            f.device,
            f.class,
            f.subclass,
            f.revision,
            f.header_type,
            f.multifunction
        ),
        (0x1af4, 0x1001, 1, 0, 1, 0, false)
    );
    assert_eq!(
        (
            f.subsystem_vendor,
            f.subsystem,
            f.interrupt_line,
            f.interrupt_pin
        ),
        (0x1af4, 2, 11, 1)
    );
    assert!(pci.violations.is_empty());
}

#[test]
fn bars_are_sized_with_decode_off_and_restored() {
    let mut pci = machine();
    let b = bdf(0, 4, 0);
    // Firmware left decoding on, and an error bit set in the status register.
    pci.fns.get_mut(&(0, 4, 0)).unwrap().cfg[4] = 3;
    pci.fns.get_mut(&(0, 4, 0)).unwrap().cfg[7] = 0x80;
    let before = pci.fns[&(0, 4, 0)].cfg.clone();
    let bars = pci::read_bars(&mut pci, b).unwrap();
    assert_eq!(
        bars.iter().map(|b| (b.index, b.bar)).collect::<Vec<_>>(),
        [
            (
                0,
                Bar::Io {
                    port: 0xc040,
                    size: 0x40
                }
            ),
            (
                1,
                Bar::Memory {
                    addr: 0xfebf_1000,
                    size: 4096,
                    prefetchable: false,
                    is_64bit: false
                }
            ),
            (
                4,
                Bar::Memory {
                    addr: 0x8_0000_0000,
                    size: 16384,
                    prefetchable: true,
                    is_64bit: true
                }
            ),
        ]
    );
    assert!(pci.violations.is_empty(), "{:?}", pci.violations);
    assert_eq!(
        pci.fns[&(0, 4, 0)].cfg,
        before,
        "BARs, command and status restored"
    );

    // 16-bit I/O decode (upper mask bits read 0), a 16 MiB prefetchable BAR.
    assert_eq!(
        pci::read_bars(&mut pci, bdf(0, 1, 1)).unwrap()[0].bar,
        Bar::Io {
            port: 0xc0a0,
            size: 16
        }
    );
    assert_eq!(
        pci::read_bars(&mut pci, bdf(0, 2, 0)).unwrap()[0].bar,
        Bar::Memory {
            addr: 0xfd00_0000,
            size: 16 << 20,
            prefetchable: true,
            is_64bit: false
        }
    );
    // A bridge has two BAR slots.
    assert_eq!(pci::read_bars(&mut pci, bdf(0, 0x1e, 0)).unwrap().len(), 1);
    assert_eq!(
        pci::read_bars(&mut pci, bdf(0, 8, 0)),
        Err(PciError::Bar64InLastSlot(bdf(0, 8, 0), 5))
    );
    assert_eq!(
        pci::read_bars(&mut pci, bdf(0, 9, 0)),
        Err(PciError::NoDevice(bdf(0, 9, 0)))
    );
    assert!(pci::read_bars(&mut pci, bdf(0, 0, 0)).unwrap().is_empty());
}

#[test]
fn capability_lists() {
    let mut pci = machine();
    let caps = pci::capabilities(&mut pci, bdf(0, 4, 0)).unwrap();
    assert_eq!(
        caps.iter().map(|c| (c.id, c.offset)).collect::<Vec<_>>(),
        [(0x11, 0x98), (0x09, 0x84), (0x09, 0x70)]
    );
    assert_eq!(
        pci::find_capability(&mut pci, bdf(0, 4, 0), pci::CAP_ID_MSIX),
        Some(0x98)
    );
    assert_eq!(pci::find_capability(&mut pci, bdf(0, 4, 0), 0x05), None);
    assert!(pci::capabilities(&mut pci, bdf(0, 0, 0))
        .unwrap()
        .is_empty());
    let lp = bdf(0, 6, 0);
    assert_eq!(
        pci::capabilities(&mut pci, lp),
        Err(PciError::BadCapabilityList(lp, 0x40))
    );
    assert_eq!(pci::find_capability(&mut pci, lp, 0x10), Some(0x50));
    assert_eq!(pci::find_capability(&mut pci, lp, 0x99), None);
    let hd = bdf(0, 7, 0);
    assert_eq!(
        pci::capabilities(&mut pci, hd),
        Err(PciError::BadCapabilityList(hd, 0x10))
    );
    assert_eq!(pci::find_capability(&mut pci, hd, 0x99), None);
}

#[test]
fn probe_virtio_devices() {
    let mut pci = machine();
    let fns = pci::enumerate(&mut pci);
    let get = |b: Bdf| *fns.iter().find(|f| f.bdf == b).unwrap();
    pci.fns.get_mut(&(0, 4, 0)).unwrap().cfg[5] = 0x04; // INTx disabled by firmware
    pci.fns.get_mut(&(0, 4, 0)).unwrap().cfg[7] = 0x80; // an error bit in status
    let d = virtio::probe_pci(&mut pci, &get(bdf(0, 4, 0))).unwrap();
    assert_eq!(
        d,
        virtio::LegacyPciDevice {
            bdf: bdf(0, 4, 0),
            kind: virtio::DeviceType::Blk,
            io_base: 0xc040,
            io_size: 0x40,
            interrupt_line: 11,
            interrupt_pin: 1,
        }
    );
    let f = &pci.fns[&(0, 4, 0)];
    assert_eq!(
        u16::from_le_bytes([f.cfg[4], f.cfg[5]]),
        pci::CMD_IO | pci::CMD_BUS_MASTER
    );
    assert_eq!(f.cfg[7], 0x80, "status error bits left alone");
    let net = virtio::probe_pci(&mut pci, &get(bdf(1, 0, 0))).unwrap();
    assert_eq!((net.kind, net.io_base), (virtio::DeviceType::Net, 0xd000));

    let e = virtio::probe_pci(&mut pci, &get(bdf(0, 5, 0))).unwrap_err();
    assert_eq!(
        e,
        ProbeError::ModernOnly(bdf(0, 5, 0), virtio::DeviceType::Blk, 0x1042)
    );
    assert_eq!(
        e.to_string(),
        "00:05.0: virtio-blk 1af4:1042 is modern-only, not supported: dom0 drives the legacy \
         virtio-pci interface (give QEMU `disable-legacy=off`, or put the device on a \
         conventional PCI bus)"
    );
    assert!(matches!(
        virtio::probe_pci(&mut pci, &get(bdf(0, 2, 0))),
        Err(ProbeError::NotVirtio(_, 0x1234, 0x1111))
    ));
    assert!(pci.violations.is_empty(), "{:?}", pci.violations);
}

proptest! {
    /// Any configuration space contents: enumeration, BAR sizing and capability walks
    /// terminate without panicking, with bounded work.
    #[test]
    fn pci_never_hangs_or_panics(
        fns in prop::collection::vec(
            ((0u8..4, 0u8..32, 0u8..8), prop::collection::vec(any::<u8>(), 256), any::<[u32; 6]>(), any::<[u32; 6]>()),
            0..6,
        ),
    ) {
        let mut pci = FakePci::default();
        for ((b, d, f), cfg, mask, flags) in fns {
            pci.fns.insert((b, d, f), FakeFn { cfg, bar_mask: mask, bar_flags: flags });
        }
        let present: BTreeSet<(u8, u8, u8)> = pci.fns.keys().copied().collect();
        let found = pci::enumerate(&mut pci);
        for f in &found {
            prop_assert!(present.contains(&key(f.bdf)));
            let before = pci.accesses;
            let _ = pci::read_bars(&mut pci, f.bdf);
            let _ = pci::capabilities(&mut pci, f.bdf);
            let _ = pci::find_capability(&mut pci, f.bdf, 0x42);
            let _ = virtio::probe_pci(&mut pci, f);
            prop_assert!(pci.accesses - before < 400, "{} accesses", pci.accesses - before);
        }
        // Function 0 of each present device is always found.
        for &(b, d, f) in &present {
            let vendor = u16::from_le_bytes([pci.fns[&(b, d, f)].cfg[0], pci.fns[&(b, d, f)].cfg[1]]);
            if f == 0 && vendor != 0xffff && vendor != 0 {
                prop_assert!(found.iter().any(|x| key(x.bdf) == (b, d, 0)));
            }
        }
    }
}
