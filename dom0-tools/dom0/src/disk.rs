//! dom0's physical disks: QEMU's transitional virtio-blk over PCI, driven by
//! `dom0_tools::virtio` with the kernel glue here, the way a Xen PV dom0 does it:
//!
//! - port I/O: dom0 raises its virtual IOPL (`PHYSDEVOP_set_iopl`); its `in`/`out`
//!   instructions then trap and the hypervisor performs them for the control domain
//!   (ours and Xen 4.17 alike);
//! - the interrupt: the function's INTx line (config space `interrupt_line`, a GSI) is
//!   mapped as a pirq (`PHYSDEVOP_map_pirq`, pirq = GSI) and bound to an event channel
//!   (`EVTCHNOP_bind_pirq`); on the event dom0 reads the ISR (which lowers the line),
//!   takes every completion, then `PHYSDEVOP_eoi` (a level-triggered line stays masked
//!   in the hypervisor until then);
//! - DMA: PV guests see machine frames, so a buffer the device reads or writes must be
//!   machine-contiguous (legacy virtio also wants the queue's frame number in 32 bits).
//!   dom0 allocates page-aligned memory from its heap, which lies in the start-of-day
//!   region, and looks through its P2M (`start_info.mfn_list`) for a run of pages whose
//!   machine frames are consecutive. Both hypervisors build dom0 from large contiguous
//!   extents, so a short run is found at once; the allocation is a few pages larger than
//!   needed so the run can start anywhere in it. This works unchanged on real Xen, with
//!   no hypercall beyond the P2M (Linux uses `XENMEM_exchange` for the same purpose,
//!   which our hypervisor does not need to offer for this).
//!
//! Requests are submitted asynchronously and completed from the interrupt: the shell's
//! `blkdev` commands wait for the disk's event (with a poll timeout as a safety net, which
//! `blkdev list` reports as `timeouts`).

extern crate alloc;

use alloc::alloc::Layout;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{RefCell, RefMut};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use dom0_tools::pci::{self, Bdf, Mechanism1, PortIo};
use dom0_tools::virtio::blk::{BlkProbe, Completion, ReqStatus, Request, Segment, VirtioBlk};
use dom0_tools::virtio::legacy::LegacyTransport;
use dom0_tools::virtio::{self, DeviceType, DmaRegion};
use guest_sdk::{events, println, sched};
use xen_abi::errno::Errno;
use xen_abi::event_channel::{EvtchnBindPirq, EVTCHNOP_BIND_PIRQ};
use xen_abi::physdev::*;

/// A disk's pirq fired (set by the event handler, consumed by the main loop or a
/// waiting command).
pub static DISK_EVENT: AtomicBool = AtomicBool::new(false);

/// Most disks served.
const MAX_DISKS: usize = 32;
/// Each disk's event-channel port (0: none), by disk index.
static PORTS: [AtomicU32; MAX_DISKS] = [const { AtomicU32::new(0) }; MAX_DISKS];
/// Disks whose event fired and was not served yet (bit per disk index).
static PENDING: AtomicU32 = AtomicU32::new(0);

fn on_disk_event(port: u32) {
    // A line shared with the NIC: it looks at its device too.
    crate::net::NET_EVENT.store(true, Ordering::Release);
    // Disks sharing an interrupt line share the pirq and its port: all are served.
    for (i, p) in PORTS.iter().enumerate() {
        if p.load(Ordering::Acquire) == port {
            PENDING.fetch_or(1 << i, Ordering::AcqRel);
            DISK_EVENT.store(true, Ordering::Release);
        }
    }
}

/// Whether disk `i`'s event fired (and forget it).
fn take_pending(i: usize) -> bool {
    let bit = 1u32 << i;
    PENDING.fetch_and(!bit, Ordering::AcqRel) & bit != 0
}

const PAGE: usize = 4096;
const SECTOR: usize = 512;
/// The data buffer each disk does its I/O through (64 sectors per request).
const DATA_BYTES: usize = 32 * 1024;
/// How long a command waits for the disk's interrupt before polling the ring anyway.
const WAIT_NS: u64 = 2_000_000_000;

/// `in`/`out` with the I/O privilege dom0 raised (the hypervisor emulates them).
#[derive(Clone, Copy, Debug, Default)]
pub struct HwIo;

impl PortIo for HwIo {
    fn in8(&mut self, port: u16) -> u8 {
        let v: u8;
        // SAFETY: dom0 raised its virtual IOPL; the instruction traps and the hypervisor
        // performs it (or refuses with #GP for ports it keeps). No memory is touched.
        unsafe {
            core::arch::asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack))
        };
        v
    }
    fn in16(&mut self, port: u16) -> u16 {
        let v: u16;
        // SAFETY: as `in8`.
        unsafe {
            core::arch::asm!("in ax, dx", out("ax") v, in("dx") port, options(nomem, nostack))
        };
        v
    }
    fn in32(&mut self, port: u16) -> u32 {
        let v: u32;
        // SAFETY: as `in8`.
        unsafe {
            core::arch::asm!("in eax, dx", out("eax") v, in("dx") port, options(nomem, nostack))
        };
        v
    }
    fn out8(&mut self, port: u16, val: u8) {
        // SAFETY: as `in8`.
        unsafe {
            core::arch::asm!("out dx, al", in("dx") port, in("al") val, options(nomem, nostack))
        };
    }
    fn out16(&mut self, port: u16, val: u16) {
        // SAFETY: as `in8`.
        unsafe {
            core::arch::asm!("out dx, ax", in("dx") port, in("ax") val, options(nomem, nostack))
        };
    }
    fn out32(&mut self, port: u16, val: u32) {
        // SAFETY: as `in8`.
        unsafe {
            core::arch::asm!("out dx, eax", in("dx") port, in("eax") val, options(nomem, nostack))
        };
    }
}

/// Machine-contiguous memory in dom0's heap, never freed (devices keep its address).
#[derive(Debug)]
pub struct Dma {
    va: u64,
    maddr: u64,
    len: usize,
}

/// The first `pages`-long run of consecutive machine frames below 2^32 in `mfns`.
fn find_run(mfns: &[Option<u64>], pages: usize) -> Option<usize> {
    (0..mfns.len().checked_sub(pages)? + 1).find(|&i| {
        let Some(Some(first)) = mfns.get(i).copied() else {
            return false;
        };
        (0..pages).all(|k| {
            mfns.get(i + k)
                .copied()
                .flatten()
                .is_some_and(|m| m == first + k as u64 && m < (1 << 32))
        })
    })
}

impl Dma {
    /// `len` bytes (rounded up to pages), zeroed, machine-contiguous, frames below 2^32.
    pub fn alloc(len: usize) -> Option<Dma> {
        let pages = len.div_ceil(PAGE).max(1);
        for slack in [2usize, 16, 64] {
            let total = (pages + slack) * PAGE;
            let layout = Layout::from_size_align(total, PAGE).ok()?;
            // SAFETY: `layout` has a non-zero size.
            let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
            if p.is_null() {
                return None;
            }
            let base = p as u64;
            let mfns: Vec<Option<u64>> = (0..pages + slack)
                .map(|i| guest_sdk::mm::virt_to_mfn(base + (i * PAGE) as u64))
                .collect();
            if let Some(i) = find_run(&mfns, pages) {
                let va = base + (i * PAGE) as u64;
                let maddr = mfns.get(i).copied().flatten()? << 12;
                // The allocation is kept for good (the device holds its address).
                return Some(Dma {
                    va,
                    maddr,
                    len: pages * PAGE,
                });
            }
            // SAFETY: `p` came from `alloc_zeroed` with this layout and is not used.
            unsafe { alloc::alloc::dealloc(p, layout) };
        }
        None
    }
}

impl DmaRegion for Dma {
    fn len(&self) -> usize {
        self.len
    }
    fn machine_addr(&self, off: usize) -> u64 {
        self.maddr + off as u64
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        let n = buf.len().min(self.len.saturating_sub(off));
        for (i, b) in buf.iter_mut().take(n).enumerate() {
            // SAFETY: `off + i < len`: inside the allocation this region owns, which
            // stays mapped; volatile because the device writes it behind our back.
            *b = unsafe { core::ptr::read_volatile((self.va + (off + i) as u64) as *const u8) };
        }
    }
    fn write(&mut self, off: usize, data: &[u8]) {
        let n = data.len().min(self.len.saturating_sub(off));
        for (i, b) in data.iter().take(n).enumerate() {
            // SAFETY: as `read`; `&mut self` makes this the only writer on our side.
            unsafe { core::ptr::write_volatile((self.va + (off + i) as u64) as *mut u8, *b) };
        }
    }
    fn fence(&self) {
        // SAFETY: `mfence` only orders memory accesses.
        unsafe { core::arch::asm!("mfence", options(nostack)) };
    }
}

pub(crate) fn physdev<T>(cmd: u32, arg: &mut T) -> Result<u64, Errno> {
    // SAFETY: `arg` is the live, correctly laid-out struct `cmd` takes (xen-abi types).
    unsafe { guest_sdk::hypercall::physdev_op(cmd, arg as *mut T as *mut u8) }
}

/// `PHYSDEVOP_set_iopl`.
fn set_iopl(iopl: u32) -> Result<(), Errno> {
    physdev(PHYSDEVOP_SET_IOPL, &mut PhysdevSetIopl { iopl }).map(|_| ())
}

/// `PHYSDEVOP_map_pirq` of GSI `gsi` into dom0 itself, asking for pirq = GSI.
pub(crate) fn map_gsi(gsi: u32) -> Result<u32, Errno> {
    let mut m = PhysdevMapPirq {
        domid: xen_abi::xen::DOMID_SELF,
        type_: MAP_PIRQ_TYPE_GSI,
        index: gsi as i32,
        pirq: gsi as i32,
        ..PhysdevMapPirq::default()
    };
    physdev(PHYSDEVOP_MAP_PIRQ, &mut m)?;
    Ok(m.pirq as u32)
}

/// `EVTCHNOP_bind_pirq`.
pub(crate) fn bind_pirq(pirq: u32) -> Result<u32, Errno> {
    let mut b = EvtchnBindPirq {
        pirq,
        flags: 0,
        port: 0,
    };
    // SAFETY: `b` is the struct EVTCHNOP_bind_pirq takes, live for the call.
    unsafe {
        guest_sdk::hypercall::event_channel_op(
            EVTCHNOP_BIND_PIRQ,
            &mut b as *mut EvtchnBindPirq as *mut u8,
        )
    }?;
    Ok(b.port)
}

/// `PHYSDEVOP_irq_status_query`: whether the pirq needs `PHYSDEVOP_eoi`.
fn needs_eoi(pirq: u32) -> Result<bool, Errno> {
    let mut q = PhysdevIrqStatusQuery {
        irq: pirq,
        flags: 0,
    };
    physdev(PHYSDEVOP_IRQ_STATUS_QUERY, &mut q)?;
    Ok(q.flags & XENIRQSTAT_NEEDS_EOI != 0)
}

/// `PHYSDEVOP_eoi`.
pub(crate) fn eoi(pirq: u32) {
    let _ = physdev(PHYSDEVOP_EOI, &mut PhysdevEoi { irq: pirq });
}

/// One disk.
pub struct Disk {
    index: usize,
    bdf: Bdf,
    blk: VirtioBlk<HwIo, Dma>,
    data: Dma,
    pirq: u32,
    port: u32,
    /// Interrupts handled, requests completed, waits that timed out.
    irqs: u64,
    requests: u64,
    timeouts: u64,
    /// Completions taken in the interrupt path, waiting for their submitter.
    done: Vec<Completion>,
}

impl Disk {
    /// The disk's interrupt: acknowledge (lowers the line), take completions, EOI.
    fn interrupt(&mut self) {
        self.irqs += 1;
        let _ = self.blk.ack_interrupt();
        while let Ok(Some(c)) = self.blk.complete() {
            self.done.push(c);
        }
        eoi(self.pirq);
    }

    /// Submit `req`, kick, and wait for its completion (interrupt-driven).
    fn run(&mut self, req: &Request<'_>) -> Result<Completion, String> {
        let tok = self.blk.submit(req).map_err(|e| format!("{e}"))?;
        self.blk.kick();
        let mut waits = 0u32;
        loop {
            if let Some(i) = self.done.iter().position(|c| c.token == tok) {
                let c = self.done.swap_remove(i);
                self.requests += 1;
                return match c.status {
                    ReqStatus::Ok => Ok(c),
                    s => Err(format!("request failed: {s:?}")),
                };
            }
            events::disable();
            if take_pending(self.index) {
                events::enable();
                self.interrupt();
                continue;
            }
            let deadline = guest_sdk::time::system_time_ns() + WAIT_NS;
            let _ = sched::poll(&[self.port], deadline);
            let fired = events::is_pending(self.port);
            events::enable();
            if !fired && PENDING.load(Ordering::Acquire) & (1 << self.index) == 0 {
                // No interrupt in time: look at the ring anyway.
                self.timeouts += 1;
                while let Ok(Some(c)) = self.blk.complete() {
                    self.done.push(c);
                }
                waits += 1;
                if waits > 8 {
                    return Err(String::from("the disk does not answer"));
                }
            }
        }
    }

    /// `blkdev irqhold`: a level-triggered line the guest has not EOIed stays quiet in
    /// the hypervisor even while the device keeps it asserted, and fires again as soon
    /// as the guest EOIs without having quietened the device.
    fn irqhold(&mut self) -> Result<String, String> {
        let segs = self.segments(SECTOR);
        events::disable();
        PENDING.fetch_and(!(1 << self.index), Ordering::AcqRel);
        let tok = self
            .blk
            .submit(&Request::Read {
                sector: 0,
                bufs: &segs,
            })
            .map_err(|e| format!("{e}"))?;
        self.blk.kick();
        let wait = |ns: u64, port: u32| {
            let _ = sched::poll(&[port], guest_sdk::time::system_time_ns() + ns);
            let p = events::is_pending(port);
            events::clear_pending(port);
            p
        };
        let first = wait(WAIT_NS, self.port);
        // The device's ISR is not read: its line stays asserted.
        let held = wait(300_000_000, self.port);
        eoi(self.pirq);
        let again = wait(WAIT_NS, self.port);
        // Now quieten the device, take the completion, EOI.
        self.irqs += 1;
        let _ = self.blk.ack_interrupt();
        while let Ok(Some(c)) = self.blk.complete() {
            self.done.push(c);
        }
        eoi(self.pirq);
        events::enable();
        let done = match self.done.iter().position(|c| c.token == tok) {
            Some(i) => {
                self.done.swap_remove(i);
                self.requests += 1;
                "completed"
            }
            None => "not completed",
        };
        let yn = |b: bool| if b { "yes" } else { "no" };
        Ok(format!(
            "blkdev: irqhold: fired {}, again before EOI {}, again after EOI {}, {done}\n",
            yn(first),
            yn(held),
            yn(again)
        ))
    }

    fn segments(&self, bytes: usize) -> Vec<Segment> {
        (0..bytes.div_ceil(PAGE))
            .map(|i| Segment {
                addr: self.data.machine_addr(i * PAGE),
                len: (bytes - i * PAGE).min(PAGE) as u32,
            })
            .collect()
    }

    fn check_range(&self, sector: u64, count: u64) -> Result<(), String> {
        let cap = self.blk.capacity();
        if count == 0 || sector.checked_add(count).is_none_or(|e| e > cap) {
            return Err(format!(
                "sectors {sector}+{count} are outside the disk (0..{cap})"
            ));
        }
        Ok(())
    }

    /// Read `count` sectors at `sector`, calling `f(lba, bytes)` per sector.
    fn read(
        &mut self,
        sector: u64,
        count: u64,
        mut f: impl FnMut(u64, &[u8]),
    ) -> Result<(), String> {
        self.check_range(sector, count)?;
        let per = (DATA_BYTES / SECTOR) as u64;
        let mut s = sector;
        let mut buf = alloc::vec![0u8; DATA_BYTES];
        while s < sector + count {
            let n = per.min(sector + count - s);
            let bytes = n as usize * SECTOR;
            let segs = self.segments(bytes);
            self.run(&Request::Read {
                sector: s,
                bufs: &segs,
            })?;
            self.data.read(0, &mut buf[..bytes]);
            for (i, chunk) in buf[..bytes].chunks(SECTOR).enumerate() {
                f(s + i as u64, chunk);
            }
            s += n;
        }
        Ok(())
    }

    /// Write `count` sectors at `sector`, `f(lba, buf)` filling each.
    fn write(
        &mut self,
        sector: u64,
        count: u64,
        mut f: impl FnMut(u64, &mut [u8]),
    ) -> Result<(), String> {
        self.check_range(sector, count)?;
        let per = (DATA_BYTES / SECTOR) as u64;
        let mut s = sector;
        let mut buf = alloc::vec![0u8; DATA_BYTES];
        while s < sector + count {
            let n = per.min(sector + count - s);
            let bytes = n as usize * SECTOR;
            for (i, chunk) in buf[..bytes].chunks_mut(SECTOR).enumerate() {
                f(s + i as u64, chunk);
            }
            self.data.write(0, &buf[..bytes]);
            let segs = self.segments(bytes);
            self.run(&Request::Write {
                sector: s,
                bufs: &segs,
            })?;
            s += n;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        if !self.blk.config().flush {
            return Ok(());
        }
        self.run(&Request::Flush).map(|_| ())
    }

    /// `blkdev bench DISK`: what diskdemo's `bench=1` measures through blkfront, done by
    /// dom0 on the disk directly (same pages, same order, same `bench:` lines).
    fn bench(&mut self) -> Result<String, String> {
        const ITERS: u64 = 256;
        let pages = (self.sectors() / 8).min(1024);
        if pages == 0 {
            return Err(String::from("blkdev: disk too small for the benchmark"));
        }
        let mut buf = alloc::vec![0u8; 4096];
        let mut out = String::new();
        for (name, write, random) in [
            ("seq_read", false, false),
            ("seq_write", true, false),
            ("rand_read", false, true),
            ("rand_write", true, true),
        ] {
            let (mut sum, mut min, mut max) = (0u64, u64::MAX, 0u64);
            let mut x = 0x2545_f491_4f6c_dd1d_u64;
            for i in 0..ITERS {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let page = if random { x % pages } else { i % pages };
                let t0 = guest_sdk::time::rdtsc();
                if write {
                    self.write_at(page * 4096, &buf)?;
                } else {
                    self.read_at(page * 4096, &mut buf)?;
                }
                let dt = guest_sdk::time::rdtsc().wrapping_sub(t0);
                sum += dt;
                min = min.min(dt);
                max = max.max(dt);
            }
            out += &format!(
                "bench: blk_{name}_4k cycles={} min={min} max={max} iters={ITERS}\n",
                sum / ITERS
            );
        }
        out.push_str("bench: done\n");
        Ok(out)
    }

    /// Capacity in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.blk.capacity()
    }

    /// Read `buf` at byte `offset` (both multiples of 512), for blkback.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let (sector, count) = sectors_of(offset, buf.len())?;
        self.read(sector, count, |lba, b| {
            let at = (lba - sector) as usize * SECTOR;
            if let Some(dst) = buf.get_mut(at..at + SECTOR) {
                dst.copy_from_slice(b);
            }
        })
    }

    /// Write `data` at byte `offset` (both multiples of 512), for blkback.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), String> {
        let (sector, count) = sectors_of(offset, data.len())?;
        self.write(sector, count, |lba, b| {
            let at = (lba - sector) as usize * SECTOR;
            if let Some(src) = data.get(at..at + SECTOR) {
                b.copy_from_slice(src);
            }
        })
    }

    /// Flush the device's write cache (if it has one), for blkback.
    pub fn flush_all(&mut self) -> Result<(), String> {
        self.flush()
    }
}

/// The sectors a 512-aligned byte range covers.
fn sectors_of(offset: u64, len: usize) -> Result<(u64, u64), String> {
    if !offset.is_multiple_of(SECTOR as u64) || !len.is_multiple_of(SECTOR) || len == 0 {
        return Err(String::from("unaligned range"));
    }
    Ok((offset / SECTOR as u64, (len / SECTOR) as u64))
}

/// SplitMix64: the pattern generator `blkdev fill`/`check` and the system test share.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Sector `lba`'s contents under pattern `seed`: 64 little-endian words,
/// word j = splitmix64(seed * 0x9e3779b97f4a7c15 ^ (lba << 8) ^ j).
fn pattern(seed: u64, lba: u64, out: &mut [u8]) {
    for (j, w) in out.chunks_mut(8).enumerate() {
        let v = splitmix64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (lba << 8) ^ j as u64);
        w.copy_from_slice(&v.to_le_bytes()[..w.len()]);
    }
}

/// FNV-1a 64 over the bytes read (what `blkdev read` prints).
fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Every disk dom0 found.
#[derive(Default)]
pub struct Disks {
    /// Shared with blkback, which serves guests from them (`target=/dev/vdX`).
    disks: Vec<Rc<RefCell<Disk>>>,
}

impl Disks {
    /// The event-channel port already bound to `pirq` by a disk (a shared line).
    pub fn port_for_pirq(&self, pirq: u32) -> Option<u32> {
        self.disks
            .iter()
            .filter_map(|d| d.try_borrow().ok())
            .find(|d| d.pirq == pirq)
            .map(|d| d.port)
    }

    /// Find and start every transitional virtio-blk on the PCI bus, with its interrupt
    /// bound to an event channel; one line per disk.
    pub fn probe() -> Disks {
        let mut d = Disks::default();
        if set_iopl(1).is_err() {
            println!("dom0: no I/O privilege: no disks");
            return d;
        }
        let mut cs = Mechanism1::new(HwIo);
        for f in pci::enumerate(&mut cs) {
            if virtio::identify(&f) != Some(virtio::VirtioPciId::Transitional(DeviceType::Blk)) {
                continue;
            }
            if d.disks.len() >= MAX_DISKS {
                break;
            }
            match start(&mut cs, &f, &d.disks) {
                Ok(disk) => {
                    println!(
                        "dom0: disk {} virtio-blk, {} sectors of 512 bytes, pirq {} port {} (/dev/vd{})",
                        disk.bdf,
                        disk.blk.capacity(),
                        disk.pirq,
                        disk.port,
                        char::from(b'a' + d.disks.len() as u8)
                    );
                    d.disks.push(Rc::new(RefCell::new(disk)));
                }
                Err(e) => println!("dom0: disk {}: {e}", f.bdf),
            }
        }
        d
    }

    /// A disk's event fired: serve the disks whose port fired.
    pub fn interrupt(&mut self) {
        for d in self.disks.iter() {
            // A disk busy in a request (blkback) takes its own interrupts.
            if let Ok(mut d) = d.try_borrow_mut() {
                if take_pending(d.index) {
                    d.interrupt();
                }
            }
        }
    }

    fn find(&mut self, name: &str) -> Result<RefMut<'_, Disk>, String> {
        let n = name.strip_prefix("disk").unwrap_or(name);
        let i = match n.parse::<usize>() {
            Ok(i) => Some(i),
            Err(_) => self
                .disks
                .iter()
                .position(|d| format!("{}", d.borrow().bdf) == name),
        };
        i.and_then(|i| self.disks.get(i))
            .and_then(|d| d.try_borrow_mut().ok())
            .ok_or_else(|| format!("blkdev: no disk '{name}' (see blkdev list)"))
    }

    /// The disk Linux would call `path` (`/dev/vda` is the first found, `/dev/vdb` the
    /// second...), for blkback to serve a guest from.
    pub fn by_dev(&self, path: &str) -> Option<Rc<RefCell<Disk>>> {
        let letter = path.strip_prefix("/dev/vd")?;
        let [c] = letter.as_bytes() else {
            return None;
        };
        let i = c.checked_sub(b'a')? as usize;
        self.disks.get(i).cloned()
    }

    /// `blkdev SUBCOMMAND ARGS...`: prints its result.
    pub fn command(&mut self, args: &[String]) {
        match self.run_command(args) {
            Ok(s) => guest_sdk::console::write_bytes(s.as_bytes()),
            Err(e) => println!("{e}"),
        }
    }

    fn run_command(&mut self, args: &[String]) -> Result<String, String> {
        const USAGE: &str = "usage: blkdev list | read DISK SECTOR [COUNT] | write DISK SECTOR TEXT | fill DISK SECTOR COUNT SEED | check DISK SECTOR COUNT SEED | flush DISK | bench DISK | irqtest | irqhold DISK";
        let num = |i: usize| -> Result<u64, String> {
            let w = args.get(i).ok_or(USAGE)?;
            let r = match w.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => w.parse::<u64>(),
            };
            r.map_err(|_| format!("blkdev: '{w}' is not a number"))
        };
        let sub = args.first().map(String::as_str).unwrap_or("list");
        match sub {
            "list" => {
                let mut s = String::new();
                if self.disks.is_empty() {
                    s.push_str("blkdev: no disks\n");
                }
                for (i, d) in self.disks.iter().enumerate() {
                    let d = d.borrow();
                    let eoi = match needs_eoi(d.pirq) {
                        Ok(true) => "needs EOI",
                        Ok(false) => "no EOI",
                        Err(_) => "status unknown",
                    };
                    s += &format!(
                        "disk{i} {} virtio-blk {} sectors, pirq {} ({eoi}) port {}, interrupts {}, requests {}, timeouts {}\n",
                        d.bdf,
                        d.blk.capacity(),
                        d.pirq,
                        d.port,
                        d.irqs,
                        d.requests,
                        d.timeouts
                    );
                }
                Ok(s)
            }
            "read" => {
                let mut disk = self.find(args.get(1).ok_or(USAGE)?)?;
                let sector = num(2)?;
                let count = if args.len() > 3 { num(3)? } else { 1 };
                let mut h = FNV_OFFSET;
                let mut dump = String::new();
                disk.read(sector, count, |lba, b| {
                    h = fnv1a(h, b);
                    if count == 1 {
                        for (i, line) in b.chunks(16).enumerate() {
                            dump += &format!("{:08x}:", lba * 512 + i as u64 * 16);
                            for x in line {
                                dump += &format!(" {x:02x}");
                            }
                            dump.push_str("  ");
                            dump.extend(line.iter().map(|&c| {
                                if (0x20..0x7f).contains(&c) {
                                    c as char
                                } else {
                                    '.'
                                }
                            }));
                            dump.push('\n');
                        }
                    }
                })?;
                Ok(format!(
                    "{dump}blkdev: read {count} sectors at {sector}: fnv1a {h:016x}\n"
                ))
            }
            "write" => {
                let mut disk = self.find(args.get(1).ok_or(USAGE)?)?;
                let sector = num(2)?;
                let text = args
                    .get(3..)
                    .filter(|t| !t.is_empty())
                    .ok_or(USAGE)?
                    .join(" ");
                let bytes = text.as_bytes();
                let count = bytes.len().div_ceil(SECTOR).max(1) as u64;
                disk.write(sector, count, |lba, b| {
                    b.fill(0);
                    let off = (lba - sector) as usize * SECTOR;
                    if let Some(src) = bytes.get(off..) {
                        let n = src.len().min(SECTOR);
                        b[..n].copy_from_slice(&src[..n]);
                    }
                })?;
                Ok(format!(
                    "blkdev: wrote {} bytes at sector {sector}\n",
                    bytes.len()
                ))
            }
            "fill" => {
                let mut disk = self.find(args.get(1).ok_or(USAGE)?)?;
                let (sector, count, seed) = (num(2)?, num(3)?, num(4)?);
                disk.write(sector, count, |lba, b| pattern(seed, lba, b))?;
                Ok(format!(
                    "blkdev: filled {count} sectors at {sector} with seed {seed}\n"
                ))
            }
            "check" => {
                let mut disk = self.find(args.get(1).ok_or(USAGE)?)?;
                let (sector, count, seed) = (num(2)?, num(3)?, num(4)?);
                let mut want = [0u8; SECTOR];
                let (mut bad, mut first) = (0u64, None);
                disk.read(sector, count, |lba, b| {
                    pattern(seed, lba, &mut want);
                    if b != want {
                        bad += 1;
                        first.get_or_insert(lba);
                    }
                })?;
                Ok(match first {
                    None => format!(
                        "blkdev: check {count} sectors at {sector} seed {seed}: OK\n"
                    ),
                    Some(f) => format!(
                        "blkdev: check {count} sectors at {sector} seed {seed}: MISMATCH in {bad} sectors, first {f}\n"
                    ),
                })
            }
            "irqtest" => {
                let mut out = irqtest(self.disks.first().map(|d| d.borrow().pirq));
                if let Some(d) = self.disks.first() {
                    let d = d.borrow();
                    out += &match events::status(d.port) {
                        Ok(st) => format!(
                            "irqtest: status of port {}: state {} pirq {} vcpu {}\n",
                            d.port, st.status, st.u0, st.vcpu
                        ),
                        Err(e) => format!("irqtest: status of port {}: {e:?}\n", d.port),
                    };
                }
                Ok(out)
            }
            "irqhold" => self.find(args.get(1).ok_or(USAGE)?)?.irqhold(),
            "bench" => {
                let mut disk = self.find(args.get(1).ok_or(USAGE)?)?;
                disk.bench()
            }
            "flush" => {
                let mut disk = self.find(args.get(1).ok_or(USAGE)?)?;
                disk.flush()?;
                Ok(String::from("blkdev: flushed\n"))
            }
            _ => Err(String::from(USAGE)),
        }
    }
}

/// `blkdev irqtest`: the pirq hypercalls with bad arguments, and what each returned
/// (anything that unexpectedly succeeded is undone).
fn irqtest(disk_pirq: Option<u32>) -> String {
    let mut out = String::new();
    let mut line = |what: &str, r: Result<u64, Errno>| {
        out += &format!(
            "irqtest: {what}: {}\n",
            match r {
                Ok(v) => format!("ok {v}"),
                Err(e) => format!("{e:?}"),
            }
        );
    };
    let map = |index: i32, pirq: i32, type_: i32| {
        let mut m = PhysdevMapPirq {
            domid: xen_abi::xen::DOMID_SELF,
            type_,
            index,
            pirq,
            ..PhysdevMapPirq::default()
        };
        let r = physdev(PHYSDEVOP_MAP_PIRQ, &mut m);
        if r.is_ok() && Some(m.pirq as u32) != disk_pirq {
            let mut u = PhysdevUnmapPirq {
                domid: xen_abi::xen::DOMID_SELF,
                _pad: 0,
                pirq: m.pirq,
            };
            let _ = physdev(PHYSDEVOP_UNMAP_PIRQ, &mut u);
        }
        r.map(|_| m.pirq as u64)
    };
    line("map GSI 1000", map(1000, -1, MAP_PIRQ_TYPE_GSI));
    line("map GSI -5", map(-5, -1, MAP_PIRQ_TYPE_GSI));
    line("map type 77", map(11, -1, 77));
    if let Some(p) = disk_pirq {
        line(
            "map the disk's GSI again",
            map(p as i32, p as i32, MAP_PIRQ_TYPE_GSI),
        );
        line("bind the disk's pirq again", bind_pirq(p).map(u64::from));
    }
    line("bind unmapped pirq 60", bind_pirq(60).map(u64::from));
    line(
        "eoi unmapped pirq 60",
        physdev(PHYSDEVOP_EOI, &mut PhysdevEoi { irq: 60 }),
    );
    line(
        "status of pirq 100000",
        physdev(
            PHYSDEVOP_IRQ_STATUS_QUERY,
            &mut PhysdevIrqStatusQuery {
                irq: 100_000,
                flags: 0,
            },
        ),
    );
    line(
        "unmap unmapped pirq 60",
        physdev(
            PHYSDEVOP_UNMAP_PIRQ,
            &mut PhysdevUnmapPirq {
                domid: xen_abi::xen::DOMID_SELF,
                _pad: 0,
                pirq: 60,
            },
        ),
    );
    out
}

/// Bring up one function: BAR0, the virtio handshake, the queue, the interrupt.
fn start(
    cs: &mut Mechanism1<HwIo>,
    f: &pci::PciFunction,
    others: &[Rc<RefCell<Disk>>],
) -> Result<Disk, String> {
    let index = others.len();
    let dev = virtio::probe_pci(cs, f).map_err(|e| format!("{e}"))?;
    let gsi = u32::from(dev.interrupt_line);
    if dev.interrupt_pin == 0 || gsi == 0xff {
        return Err(String::from("no INTx interrupt line"));
    }
    let probe =
        BlkProbe::new(LegacyTransport::new(HwIo, dev.io_base)).map_err(|e| format!("{e}"))?;
    let queue = Dma::alloc(probe.queue_bytes());
    let scratch = Dma::alloc(probe.scratch_bytes(0));
    let data = Dma::alloc(DATA_BYTES);
    let (Some(queue), Some(scratch), Some(data)) = (queue, scratch, data) else {
        probe.fail();
        return Err(String::from("no machine-contiguous memory for the queue"));
    };
    if gsi >= 16 {
        // A PCI GSI: level, active low (what ACPI's _PRT says on PCs). Xen wants it
        // before the pin is used; an already programmed pin is -EEXIST there.
        let mut g = PhysdevSetupGsi {
            gsi: gsi as i32,
            triggering: 1,
            polarity: 1,
            _pad: 0,
        };
        let _ = physdev(PHYSDEVOP_SETUP_GSI, &mut g);
    }
    // A line shared with a disk found earlier: its pirq (= GSI) and port serve both.
    let shared = others
        .iter()
        .map(|o| o.borrow())
        .find(|o| o.pirq == gsi)
        .map(|o| (o.pirq, o.port));
    let (pirq, port) = match shared {
        Some(pp) => pp,
        None => {
            let pirq = map_gsi(gsi).map_err(|e| format!("map_pirq GSI {gsi}: {e:?}"))?;
            let port = bind_pirq(pirq).map_err(|e| format!("bind_pirq {pirq}: {e:?}"))?;
            (pirq, port)
        }
    };
    if let Some(p) = PORTS.get(index) {
        p.store(port, Ordering::Release);
    }
    events::set_handler(port, on_disk_event).map_err(|e| format!("handler: {e:?}"))?;
    let blk = probe.start(queue, scratch).map_err(|e| format!("{e}"))?;
    events::unmask(port).map_err(|e| format!("unmask port {port}: {e:?}"))?;
    Ok(Disk {
        index,
        bdf: dev.bdf,
        blk,
        data,
        pirq,
        port,
        irqs: 0,
        requests: 0,
        timeouts: 0,
        done: Vec::new(),
    })
}
