//! Example PV guest for issue 4: a real disk. Opens `xvda` through blkfront
//! (pv-drivers' `BlockDevice` over the SDK, `pv_drivers::sdk::SdkEnv`), then:
//!
//! - by default, mounts the FAT filesystem on it (`embedded-sdmmc`, MBR partition 1),
//!   lists the root directory, appends `boot N` to `/LOG.TXT` (created if missing; N is
//!   the previous line count + 1), flushes, reads the file back and counts its lines;
//! - with `pattern=write` on its command line, writes a pattern derived from each
//!   sector's number over the whole disk and flushes;
//! - with `pattern=check`, reads the whole disk and checks that pattern;
//! - with `pattern=write crash=1`, writes and flushes the pattern, prints
//!   `diskdemo: flush acknowledged, crashing`, and crashes (a page fault with no handler
//!   but the SDK's) with the disk still connected;
//! - with `hostile=SECS`, is a hostile blkfront (`hostile.rs`: malformed requests on its
//!   ring, each of which must be refused exactly once; `blkhostile: PASS` / `FAIL`);
//! - with `hotplug=1`, starts without a disk and waits for one to be hot-attached
//!   (`hotplug.rs`: watches `device/vbd`, mounts and lists the FAT filesystem, closes the
//!   device when `xl block-detach` asks).
//!
//! Console lines (computed verdicts, for the system tests):
//! `diskdemo: xvda N sectors of S bytes`, `diskdemo: ls: NAME SIZE`,
//! `diskdemo: LOG.TXT has N lines`, `diskdemo: pattern written N sectors`,
//! `diskdemo: pattern check PASS` / `diskdemo: pattern check FAIL at sector X`,
//! `diskdemo: FAIL: <why>` on any error, and `diskdemo: done` before powering off (or,
//! with `stay=1` on the command line, staying up so `xl console` can read it).
//! Config: `dom0-tools/configs/diskdemo.cfg` (and `diskdemo-pattern-{write,check}.cfg`,
//! `diskdemo-crash.cfg`, `diskdemo-hostile.cfg`, `diskdemo-hotplug.cfg`).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("diskdemo is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

/// The pattern's 8-byte word `i` of sector `s` (splitmix64 of the word's position, so
/// every word of the disk differs and a misplaced sector is caught).
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
fn pattern_word(sector: u64, i: u64) -> u64 {
    let mut z = (sector * 64 + i).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(target_os = "none")]
mod hostile;
#[cfg(target_os = "none")]
mod hotplug;

#[cfg(target_os = "none")]
mod guest {
    extern crate alloc;

    use alloc::vec;
    use alloc::vec::Vec;
    use core::cell::RefCell;
    use core::fmt;
    use core::ops::ControlFlow;

    use embedded_sdmmc::{Block, BlockCount, BlockIdx, Mode, TimeSource, Timestamp, VolumeIdx};
    use guest_sdk::{println, xenbus, StartInfo};
    use pv_drivers::blkfront::{BlockDevice, Error as BlkError, Options};

    use crate::pattern_word;
    use pv_drivers::sdk::SdkEnv;

    guest_sdk::entry!(guest_main);

    type Dev = BlockDevice<SdkEnv>;

    /// A blkfront error as `embedded-sdmmc` wants it.
    #[derive(Debug)]
    struct DiskError(BlkError);

    impl fmt::Display for DiskError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    impl core::error::Error for DiskError {}

    /// The disk as `embedded-sdmmc`'s block device (512-byte blocks).
    struct Disk(RefCell<Dev>);

    impl embedded_sdmmc::BlockDevice for Disk {
        type Error = DiskError;

        fn read(&self, blocks: &mut [Block], start: BlockIdx) -> Result<(), DiskError> {
            let mut buf = vec![0u8; blocks.len() * Block::LEN];
            self.0
                .borrow_mut()
                .read(u64::from(start.0), &mut buf)
                .map_err(DiskError)?;
            for (b, src) in blocks.iter_mut().zip(buf.chunks_exact(Block::LEN)) {
                b.contents.copy_from_slice(src);
            }
            Ok(())
        }

        fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), DiskError> {
            let mut buf = Vec::with_capacity(blocks.len() * Block::LEN);
            for b in blocks {
                buf.extend_from_slice(&b.contents);
            }
            self.0
                .borrow_mut()
                .write(u64::from(start.0), &buf)
                .map_err(DiskError)
        }

        fn num_blocks(&self) -> Result<BlockCount, DiskError> {
            let n = self.0.borrow().sectors();
            Ok(BlockCount(u32::try_from(n).unwrap_or(u32::MAX)))
        }
    }

    /// File times: 2026-01-01 (the guest has no calendar worth the code here).
    struct Clock;

    impl TimeSource for Clock {
        fn get_timestamp(&self) -> Timestamp {
            Timestamp {
                year_since_1970: 56,
                zero_indexed_month: 0,
                zero_indexed_day: 0,
                hours: 0,
                minutes: 0,
                seconds: 0,
            }
        }
    }

    fn arg<'a>(cmd: &'a [u8], key: &str) -> Option<&'a [u8]> {
        cmd.split(|&b| b == b' ')
            .find_map(|w| w.strip_prefix(key.as_bytes())?.strip_prefix(b"="))
    }

    /// Mount, list, append to LOG.TXT, flush, count its lines. Gives the device back.
    pub(crate) fn filesystem(dev: Dev) -> (Dev, Result<(), alloc::string::String>) {
        use alloc::format;
        let vm: embedded_sdmmc::VolumeManager<Disk, Clock, 4, 4, 1> =
            embedded_sdmmc::VolumeManager::new_with_limits(Disk(RefCell::new(dev)), Clock, 0);
        let r = (|| -> Result<usize, alloc::string::String> {
            let e = |what: &str| {
                let what = alloc::string::String::from(what);
                move |err: embedded_sdmmc::Error<DiskError>| format!("{what}: {err:?}")
            };
            let volume = vm.open_volume(VolumeIdx(0)).map_err(e("mount"))?;
            let root = volume.open_root_dir().map_err(e("root directory"))?;
            root.iterate_dir(|entry| {
                if !entry.attributes.is_volume() {
                    println!("diskdemo: ls: {} {}", entry.name, entry.size);
                }
                ControlFlow::Continue(())
            })
            .map_err(e("ls"))?;
            let lines = |root: &embedded_sdmmc::Directory<'_, Disk, Clock, 4, 4, 1>| match root
                .open_file_in_dir("LOG.TXT", Mode::ReadOnly)
            {
                Ok(f) => {
                    let mut n = 0usize;
                    let mut buf = [0u8; 512];
                    while !f.is_eof() {
                        let got = f.read(&mut buf).map_err(e("read LOG.TXT"))?;
                        n += buf.iter().take(got).filter(|&&b| b == b'\n').count();
                        if got == 0 {
                            break;
                        }
                    }
                    f.close().map_err(e("close LOG.TXT"))?;
                    Ok(n)
                }
                Err(embedded_sdmmc::Error::NotFound) => Ok(0),
                Err(err) => Err(e("open LOG.TXT")(err)),
            };
            let before = lines(&root)?;
            let f = root
                .open_file_in_dir("LOG.TXT", Mode::ReadWriteCreateOrAppend)
                .map_err(e("open LOG.TXT for append"))?;
            f.write(format!("boot {}\n", before + 1).as_bytes())
                .map_err(e("append"))?;
            f.close().map_err(e("close after append"))?;
            // The file's clusters and directory entry are on the disk: make them durable.
            vm.device(|d| d.0.borrow_mut().flush())
                .map_err(|err| format!("flush: {err:?}"))?;
            let after = lines(&root)?;
            root.close().map_err(e("close root"))?;
            volume.close().map_err(e("unmount"))?;
            Ok(after)
        })();
        let (disk, _) = vm.free();
        let dev = disk.0.into_inner();
        match r {
            Ok(n) => {
                println!("diskdemo: LOG.TXT has {n} lines");
                (dev, Ok(()))
            }
            Err(why) => (dev, Err(why)),
        }
    }

    /// Sectors per read or write call (512 KiB): the driver splits it into requests of
    /// up to `max_segments` pages and keeps several in flight.
    const BATCH: u64 = 1024;

    fn fill(buf: &mut [u8], first: u64, ss: usize) {
        for (k, sector) in buf.chunks_exact_mut(ss).enumerate() {
            let s = first + k as u64;
            for (i, w) in sector.chunks_exact_mut(8).enumerate() {
                w.copy_from_slice(&pattern_word(s, i as u64).to_le_bytes());
            }
        }
    }

    fn pattern(dev: &mut Dev, write: bool) -> Result<(), alloc::string::String> {
        use alloc::format;
        let total = dev.sectors();
        let ss = dev.sector_size() as usize;
        let mut buf = vec![0u8; BATCH as usize * ss];
        let mut want = vec![0u8; BATCH as usize * ss];
        let mut s = 0u64;
        while s < total {
            let n = BATCH.min(total - s) as usize;
            if write {
                fill(&mut buf[..n * ss], s, ss);
                dev.write(s, &buf[..n * ss])
                    .map_err(|e| format!("write at sector {s}: {e:?}"))?;
            } else {
                dev.read(s, &mut buf[..n * ss])
                    .map_err(|e| format!("read at sector {s}: {e:?}"))?;
                fill(&mut want[..n * ss], s, ss);
                if let Some(k) =
                    (0..n).find(|&k| buf[k * ss..(k + 1) * ss] != want[k * ss..(k + 1) * ss])
                {
                    println!("diskdemo: pattern check FAIL at sector {}", s + k as u64);
                    return Ok(());
                }
            }
            s += n as u64;
        }
        if write {
            dev.flush().map_err(|e| format!("flush: {e:?}"))?;
            println!("diskdemo: pattern written {total} sectors");
        } else {
            println!("diskdemo: pattern check PASS ({total} sectors)");
        }
        Ok(())
    }

    /// `bench=1`: 4 KiB reads and writes, sequential then at pseudo-random places over
    /// the first 1024 pages of the disk (or all of it), timed with `rdtsc` (instructions
    /// under QEMU's `-icount`): `bench: blk_<kind>_4k cycles=AVG min=MIN max=MAX iters=N`,
    /// the same lines dom0's `blkdev bench` prints for its direct access.
    fn bench(dev: &mut Dev) -> Result<(), alloc::string::String> {
        use alloc::format;
        const ITERS: u64 = 256;
        let pages = (dev.sectors() / 8).min(1024);
        if pages == 0 {
            return Err("disk too small for the benchmark".into());
        }
        let mut buf = vec![0u8; 4096];
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
                let r = if write {
                    dev.write(page * 8, &buf)
                } else {
                    dev.read(page * 8, &mut buf)
                };
                let dt = guest_sdk::time::rdtsc().wrapping_sub(t0);
                r.map_err(|e| format!("{name} at page {page}: {e:?}"))?;
                sum += dt;
                min = min.min(dt);
                max = max.max(dt);
            }
            println!(
                "bench: blk_{name}_4k cycles={} min={min} max={max} iters={ITERS}",
                sum / ITERS
            );
        }
        println!("bench: done");
        Ok(())
    }

    fn guest_main(si: &'static StartInfo) {
        let cmd = si.cmd_line_bytes();
        let mode = arg(cmd, "pattern");
        let xb = match xenbus::xenbus() {
            Ok(xb) => xb,
            Err(e) => {
                println!("diskdemo: FAIL: no xenstore: {e}");
                return;
            }
        };
        let number = |key| {
            arg(cmd, key)
                .and_then(|v| core::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        if let Some(secs) = number("hostile") {
            crate::hostile::run(xb, secs);
            stay(cmd);
            return;
        }
        if number("hotplug") == Some(1) {
            crate::hotplug::run(xb);
            println!("diskdemo: done");
            stay(cmd);
            return;
        }
        let mut dev = match BlockDevice::open(SdkEnv::new(xb), "xvda", Options::default()) {
            Ok(d) => d,
            Err(e) => {
                println!("diskdemo: FAIL: cannot open xvda: {e:?}");
                return;
            }
        };
        println!(
            "diskdemo: xvda {} sectors of {} bytes",
            dev.sectors(),
            dev.sector_size()
        );
        println!(
            "diskdemo: read-only={} flush={} max-segments={}",
            dev.read_only(),
            dev.has_flush(),
            dev.max_segments()
        );
        let result = match mode {
            _ if arg(cmd, "bench") == Some(b"1") => bench(&mut dev),
            Some(b"write") => pattern(&mut dev, true),
            Some(b"check") => pattern(&mut dev, false),
            Some(_) => Err("pattern=write or pattern=check".into()),
            None => {
                let (d, r) = filesystem(dev);
                dev = d;
                r
            }
        };
        if result.is_ok() && arg(cmd, "crash") == Some(b"1") {
            crash();
        }
        if let Err(why) = result {
            println!("diskdemo: FAIL: {why}");
            if let Some([rq, rqe, rs, rse]) = dev.ring_indices() {
                println!(
                    "diskdemo: ring req_prod={rq} req_event={rqe} rsp_prod={rs} rsp_event={rse}"
                );
            }
            if let Some(port) = dev.port() {
                let st = guest_sdk::events::status(port);
                println!("diskdemo: port {port}: {st:?}");
            }
        }
        println!(
            "diskdemo: {} requests in flight at most",
            dev.max_in_flight()
        );
        match dev.close() {
            Ok(()) => println!("diskdemo: closed"),
            Err(e) => println!("diskdemo: close: {e:?}"),
        }
        println!("diskdemo: done");
        stay(cmd);
    }

    /// With `stay=1` on the command line, stay up so the console can be read (`xl
    /// console`); a domain that powers off is destroyed.
    fn stay(cmd: &[u8]) {
        if arg(cmd, "stay") == Some(b"1") {
            loop {
                guest_sdk::sched::block();
            }
        }
    }

    /// An address no PV guest has mapped (the first page).
    const BAD_ADDRESS: u64 = 0x10;

    /// `crash=1`: after the flush was acknowledged, crash for real, with the device
    /// still connected: a write to an unmapped address, whose page fault has no handler
    /// but the SDK's, which crashes the domain (`SHUTDOWN_crash`).
    fn crash() -> ! {
        println!("diskdemo: flush acknowledged, crashing (write to {BAD_ADDRESS:#x})");
        // SAFETY: deliberately faults: the page at BAD_ADDRESS is not mapped, so the
        // write never happens and no Rust-visible memory changes; the #PF handler
        // crashes the domain and does not return here.
        unsafe {
            core::arch::asm!(
                "mov qword ptr [{a}], 1",
                a = in(reg) BAD_ADDRESS,
                options(nostack)
            );
        }
        println!("diskdemo: FAIL: the write to {BAD_ADDRESS:#x} did not fault");
        guest_sdk::sched::crash()
    }
}
