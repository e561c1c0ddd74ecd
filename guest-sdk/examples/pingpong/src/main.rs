//! Example PV guests for issue 3: two domUs exchange data through an interdomain event
//! channel and a granted page, both mapped and copied, and time it.
//!
//! Started twice, without xenstore: `extra = "role=server peer=2"` (`/etc/xen/ping.cfg`)
//! and `extra = "role=client peer=1"` (`/etc/xen/pong.cfg`). Domain ids are assigned in
//! creation order, so on a fresh dom0 `ping` is 1 and `pong` is 2; each learns the
//! other's id from its command line.
//!
//! The rendezvous, at the agreed grant reference [`GREF`] (the first one after Xen's
//! reserved entries):
//! 1. The server fills a page with a pattern and its checksum, allocates an unbound
//!    event channel for the peer, writes the port and then [`MAGIC`] into the page, and
//!    grants it (read-write) to the peer in its own grant table (`GNTTABOP_setup_table`
//!    on itself, the frame mapped and the entry written as Linux's `gnttab` does).
//! 2. The client maps the grant, retrying while the server is not there yet (bounded),
//!    reads the port and binds it (`EVTCHNOP_bind_interdomain`). It checks the server's
//!    data read through the mapping and through `GNTTABOP_copy`, writes its own data
//!    through the mapping and through a copy (each with its checksum), then plays
//!    `rounds` event ping-pongs, times grant map+unmap and a 4 KiB grant copy, unmaps,
//!    and sends a last event.
//! 3. The server answers each ping, then on the last event checks the client's data
//!    and that the grant is no longer in use, and revokes it.
//!
//! Each prints a computed verdict on its console ring: `pingpong: server PASS ...` or
//! `pingpong: client FAIL: <why>`, and the client prints `bench:` lines
//! (`bench: NAME cycles=AVG min=MIN max=MAX iters=N`, net of an empty `rdtsc` pair),
//! then `bench: done`. Both then stay up (idle) so their consoles can be read.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("pingpong is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

#[cfg(target_os = "none")]
mod ring;

#[cfg(target_os = "none")]
mod guest {
    use crate::ring::{arg, num, Ring};
    use core::cell::UnsafeCell;
    use core::sync::atomic::{fence, AtomicU16, Ordering};
    use guest_sdk::{events, mm, privileged as p, sched, time, StartInfo};
    use xen_abi::grant_table::*;
    use xen_abi::xen::{DomId, DOMID_SELF};

    guest_sdk::entry!(guest_main);

    /// The agreed grant reference: the first after `GNTTAB_NR_RESERVED_ENTRIES`.
    const GREF: GrantRef = GNTTAB_NR_RESERVED_ENTRIES;
    /// Written last by the server: the page is ready.
    const MAGIC: u32 = 0x676e_6970;

    // Layout of the shared page (byte offsets).
    const W_MAGIC: usize = 0;
    const W_PORT: usize = 4;
    const W_SRVSUM: usize = 8;
    const W_MAPSUM: usize = 12;
    const W_COPYSUM: usize = 16;
    const W_ROUNDS: usize = 20;
    const W_READY: usize = 24;
    /// Ping-pong sequence numbers: the client's last ping, the server's last pong.
    const W_PING: usize = 28;
    const W_PONG: usize = 32;
    /// The client sets it when it has finished and unmapped (written by grant copy).
    const W_DONE: usize = 36;
    /// Written by the client through its mapping.
    const MAP_AREA: (usize, usize) = (1024, 1536);
    /// Written by the client with `GNTTABOP_copy`.
    const COPY_AREA: (usize, usize) = (1536, 2048);
    /// The server's pattern.
    const SRV_AREA: (usize, usize) = (2048, 4096);

    const SECOND: u64 = 1_000_000_000;

    /// A page of our image whose mapping we may replace; never referenced from Rust,
    /// only through raw pointers.
    #[repr(C, align(4096))]
    struct Page(UnsafeCell<[u8; 4096]>);

    // SAFETY: only accessed through raw pointers (volatile), by our single vCPU.
    unsafe impl Sync for Page {}

    impl Page {
        const fn new() -> Page {
            Page(UnsafeCell::new([0; 4096]))
        }
        fn va(&self) -> u64 {
            self.0.get() as u64
        }
    }

    /// Server: where our grant-table frame is mapped.
    static GNTTAB: Page = Page::new();
    /// Server: the granted page.
    static DATA: Page = Page::new();
    /// Client: where the server's page is mapped for the whole exchange.
    static MAP: Page = Page::new();
    /// Client: where it is mapped and unmapped in the benchmark.
    static BENCH: Page = Page::new();
    /// Client: a local page for the copies.
    static LOCAL: Page = Page::new();

    fn rd32(va: u64, off: usize) -> u32 {
        // SAFETY: `va` is one of our mapped pages (start of day or a grant mapping
        // that is live while the caller uses it); the offset is kept inside it and
        // aligned. Volatile: the other domain writes it concurrently.
        unsafe { ((va + (off & 0xffc) as u64) as *const u32).read_volatile() }
    }

    fn wr32(va: u64, off: usize, v: u32) {
        // SAFETY: as for `rd32`; the page is mapped writable.
        unsafe { ((va + (off & 0xffc) as u64) as *mut u32).write_volatile(v) }
    }

    fn rd8(va: u64, off: usize) -> u8 {
        // SAFETY: as for `rd32`.
        unsafe { ((va + (off & 0xfff) as u64) as *const u8).read_volatile() }
    }

    fn wr8(va: u64, off: usize, v: u8) {
        // SAFETY: as for `wr32`.
        unsafe { ((va + (off & 0xfff) as u64) as *mut u8).write_volatile(v) }
    }

    /// FNV-1a over bytes `[from, to)` of the page at `va`.
    fn checksum(va: u64, (from, to): (usize, usize)) -> u32 {
        (from..to).fold(0x811c_9dc5u32, |h, i| {
            (h ^ u32::from(rd8(va, i))).wrapping_mul(0x0100_0193)
        })
    }

    /// Fill bytes `[from, to)` with a xorshift sequence from `seed`.
    fn fill(va: u64, (from, to): (usize, usize), seed: u64) {
        let mut x = seed | 1;
        for i in from..to {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            wr8(va, i, (x >> 24) as u8);
        }
    }

    fn seed() -> u64 {
        time::rdtsc() ^ time::system_time_ns().rotate_left(17)
    }

    /// Wait (bounded) until word `off` of the page at `va` reads `want`, sleeping in
    /// `SCHEDOP_poll` on `port`. Events only wake us: the shared word is the truth, so a
    /// coalesced or stale event (Xen marks a freshly bound port pending) cannot confuse
    /// the count. The pending bit is cleared after each wake-up, before the re-check.
    fn wait_for(va: u64, off: usize, want: u32, port: u32, timeout_ns: u64) -> bool {
        let deadline = time::system_time_ns() + timeout_ns;
        loop {
            if rd32(va, off) == want {
                return true;
            }
            let now = time::system_time_ns();
            if now >= deadline {
                return false;
            }
            let _ = sched::poll(&[port], deadline.min(now + SECOND));
            events::clear_pending(port);
        }
    }

    #[derive(Clone, Copy)]
    struct Stats {
        n: u64,
        sum: u64,
        min: u64,
        max: u64,
    }

    impl Stats {
        const EMPTY: Stats = Stats {
            n: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        };
        fn add(&mut self, v: u64) {
            self.n += 1;
            self.sum += v;
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        fn report(&self, r: &Ring, name: &str, base: u64) {
            if self.n == 0 {
                return;
            }
            r.say(format_args!(
                "bench: {name} cycles={} min={} max={} iters={}",
                (self.sum / self.n).saturating_sub(base),
                self.min.saturating_sub(base),
                self.max.saturating_sub(base),
                self.n
            ));
        }
    }

    fn grant_entry_flags(entry_va: u64) -> &'static AtomicU16 {
        // SAFETY: `entry_va` is the 2-aligned `flags` field of a grant entry in our
        // grant-table frame, mapped for the rest of our life (never unmapped); the
        // hypervisor updates it atomically, as we do.
        unsafe { AtomicU16::from_ptr(entry_va as *mut u16) }
    }

    fn server(r: &Ring, peer: DomId) -> Result<u32, &'static str> {
        let mut frames = [0u64; 1];
        p::gnttab_setup_table(DOMID_SELF, &mut frames).map_err(|_| "setup_table failed")?;
        // SAFETY: GNTTAB is a page of our image that nothing references; its mapping is
        // replaced by our grant-table frame for the rest of our life.
        unsafe { mm::map_mfn(GNTTAB.va(), frames[0], mm::PAGE_KERNEL) }
            .map_err(|_| "cannot map our grant table")?;
        let data = DATA.va();
        fill(data, SRV_AREA, seed());
        wr32(data, W_SRVSUM, checksum(data, SRV_AREA));
        // Xen lets a port name a remote domain that does not exist yet; retry (bounded)
        // in case a hypervisor wants the peer to exist first.
        let deadline = time::system_time_ns() + 120 * SECOND;
        let mut refused = 0u32;
        let port = loop {
            match events::alloc_unbound(peer) {
                Ok(p) => break p,
                Err(_) if time::system_time_ns() < deadline => {
                    refused += 1;
                    sched::yield_now();
                }
                Err(_) => return Err("alloc_unbound failed"),
            }
        };
        if refused > 0 {
            r.say(format_args!(
                "pingpong: server: alloc_unbound for domain {peer} was refused {refused} times first"
            ));
        }
        wr32(data, W_PORT, port);
        fence(Ordering::Release);
        wr32(data, W_MAGIC, MAGIC);
        let mfn = mm::virt_to_mfn(data).ok_or("no frame for the data page")?;
        let frame = u32::try_from(mfn).map_err(|_| "frame above 2^32")?;
        let entry = GNTTAB.va() + u64::from(GREF) * 8;
        // SAFETY: fields of grant entry GREF in our mapped grant-table frame (8-byte
        // entries, GREF < 512): domid at +2, frame at +4, written before the flags.
        unsafe {
            ((entry + 2) as *mut u16).write_volatile(peer);
            ((entry + 4) as *mut u32).write_volatile(frame);
        }
        fence(Ordering::Release);
        grant_entry_flags(entry).store(GTF_PERMIT_ACCESS, Ordering::SeqCst);
        r.say(format_args!(
            "pingpong: server granted gref {GREF} (frame {mfn:#x}) and port {port} to domain {peer}"
        ));

        // The client maps, binds, writes its data, sets READY, then pings.
        let deadline = time::system_time_ns() + 120 * SECOND;
        while rd32(data, W_READY) == 0 {
            if time::system_time_ns() >= deadline {
                return Err("the client never came");
            }
            let _ = sched::poll(&[port], time::system_time_ns() + SECOND / 10);
        }
        let rounds = rd32(data, W_ROUNDS);
        for i in 1..=rounds {
            if !wait_for(data, W_PING, i, port, 30 * SECOND) {
                return Err("a ping was lost");
            }
            wr32(data, W_PONG, i);
            events::send(port).map_err(|_| "send failed")?;
        }
        // The client has finished and unmapped.
        if !wait_for(data, W_DONE, 1, port, 300 * SECOND) {
            return Err("no final word from the client");
        }
        if checksum(data, SRV_AREA) != rd32(data, W_SRVSUM) {
            return Err("our data changed");
        }
        if checksum(data, MAP_AREA) != rd32(data, W_MAPSUM) {
            return Err("the client's data written through its mapping is wrong");
        }
        if checksum(data, COPY_AREA) != rd32(data, W_COPYSUM) {
            return Err("the client's data written by grant copy is wrong");
        }
        // Revoke: only possible when no mapping or copy is in progress (the client's
        // last copy may still be finishing: a bounded wait).
        let deadline = time::system_time_ns() + 5 * SECOND;
        while grant_entry_flags(entry)
            .compare_exchange(GTF_PERMIT_ACCESS, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            if time::system_time_ns() >= deadline {
                return Err("the grant is still in use after the client unmapped it");
            }
            sched::yield_now();
        }
        events::close(port).map_err(|_| "close failed")?;
        Ok(rounds)
    }

    fn copy(op: GnttabCopy) -> Result<(), &'static str> {
        p::gnttab_copy(&op).map_err(|_| "grant copy failed")
    }

    fn client(r: &Ring, peer: DomId, rounds: u32, iters: u32) -> Result<(), &'static str> {
        let map = MAP.va();
        let local = LOCAL.va();
        let map_orig = mm::virt_to_mfn(map).ok_or("no frame for MAP")?;
        let bench_orig = mm::virt_to_mfn(BENCH.va()).ok_or("no frame for BENCH")?;
        let local_mfn = mm::virt_to_mfn(local).ok_or("no frame for LOCAL")?;

        // Map the server's page, retrying (bounded) until it has granted it.
        let deadline = time::system_time_ns() + 120 * SECOND;
        let mut tries = 0u32;
        let handle = loop {
            tries += 1;
            // SAFETY: MAP is a page of our image nothing references; its mapping is
            // replaced by the grant until we unmap it below.
            match unsafe { p::gnttab_map(map, GNTMAP_HOST_MAP, GREF, peer) } {
                Ok(h) => break h,
                Err(_) if time::system_time_ns() < deadline => sched::yield_now(),
                Err(_) => return Err("the server's grant never appeared"),
            }
        };
        if rd32(map, W_MAGIC) != MAGIC {
            return Err("no magic in the granted page");
        }
        let rport = rd32(map, W_PORT);
        let port = events::bind_interdomain(peer, rport).map_err(|_| "bind_interdomain failed")?;
        events::clear_pending(port);
        r.say(format_args!(
            "pingpong: client mapped gref {GREF} of domain {peer} after {tries} tries, bound port {rport} as {port}"
        ));

        // The server's data, read through the mapping and through a copy.
        let srvsum = rd32(map, W_SRVSUM);
        if checksum(map, SRV_AREA) != srvsum {
            return Err("server data read through the mapping is wrong");
        }
        copy(GnttabCopy {
            source: GnttabCopyPtr {
                u: u64::from(GREF),
                domid: peer,
                offset: 0,
                _pad: 0,
            },
            dest: GnttabCopyPtr {
                u: local_mfn,
                domid: DOMID_SELF,
                offset: 0,
                _pad: 0,
            },
            len: 4096,
            flags: GNTCOPY_SOURCE_GREF,
            ..Default::default()
        })?;
        if checksum(local, SRV_AREA) != srvsum
            || checksum(local, (0, 4096)) != checksum(map, (0, 4096))
        {
            return Err("server data read by grant copy is wrong");
        }
        // Ours, written through the mapping and by a copy.
        fill(map, MAP_AREA, seed());
        wr32(map, W_MAPSUM, checksum(map, MAP_AREA));
        let len = COPY_AREA.1 - COPY_AREA.0;
        fill(local, (0, len), seed() ^ 0x5555);
        copy(GnttabCopy {
            source: GnttabCopyPtr {
                u: local_mfn,
                domid: DOMID_SELF,
                offset: 0,
                _pad: 0,
            },
            dest: GnttabCopyPtr {
                u: u64::from(GREF),
                domid: peer,
                offset: COPY_AREA.0 as u16,
                _pad: 0,
            },
            len: len as u16,
            flags: GNTCOPY_DEST_GREF,
            ..Default::default()
        })?;
        let copysum = checksum(local, (0, len));
        if checksum(map, COPY_AREA) != copysum {
            return Err("data copied into the grant does not show through the mapping");
        }
        wr32(map, W_COPYSUM, copysum);
        wr32(map, W_ROUNDS, rounds);
        fence(Ordering::Release);
        wr32(map, W_READY, 1);

        // An empty rdtsc pair: subtracted from every measurement.
        let mut pair = Stats::EMPTY;
        for _ in 0..1000 {
            let t0 = time::rdtsc();
            let t1 = time::rdtsc();
            pair.add(t1.wrapping_sub(t0));
        }
        let base = pair.min;
        pair.report(r, "rdtsc_pair", 0);

        // Event-channel ping-pong: one round trip per sample.
        let mut pp = Stats::EMPTY;
        for i in 1..=rounds {
            let t0 = time::rdtsc();
            wr32(map, W_PING, i);
            events::send(port).map_err(|_| "send failed")?;
            if !wait_for(map, W_PONG, i, port, 30 * SECOND) {
                return Err("a pong was lost");
            }
            pp.add(time::rdtsc().wrapping_sub(t0));
        }
        pp.report(r, "evtchn_pingpong", base);

        // Grant map + unmap of the server's page at a second address.
        let bench = BENCH.va();
        let mut mu = Stats::EMPTY;
        for i in 0..iters {
            let t0 = time::rdtsc();
            // SAFETY: BENCH is a page of our image nothing references; mapped and
            // unmapped here, restored below.
            let h = unsafe { p::gnttab_map(bench, GNTMAP_HOST_MAP, GREF, peer) }
                .map_err(|_| "benchmark map failed")?;
            if i == 0 && rd32(bench, W_MAGIC) != MAGIC {
                return Err("second mapping shows other data");
            }
            // SAFETY: the mapping just made; nothing uses it afterwards.
            unsafe { p::gnttab_unmap(bench, h) }.map_err(|_| "benchmark unmap failed")?;
            mu.add(time::rdtsc().wrapping_sub(t0));
        }
        mu.report(r, "grant_map_unmap", base);

        // Grant copy of 4 KiB from the server's page into ours.
        let op = GnttabCopy {
            source: GnttabCopyPtr {
                u: u64::from(GREF),
                domid: peer,
                offset: 0,
                _pad: 0,
            },
            dest: GnttabCopyPtr {
                u: local_mfn,
                domid: DOMID_SELF,
                offset: 0,
                _pad: 0,
            },
            len: 4096,
            flags: GNTCOPY_SOURCE_GREF,
            ..Default::default()
        };
        let mut cp = Stats::EMPTY;
        for _ in 0..iters {
            let t0 = time::rdtsc();
            copy(op)?;
            cp.add(time::rdtsc().wrapping_sub(t0));
        }
        cp.report(r, "grant_copy_4k", base);
        if checksum(local, SRV_AREA) != srvsum {
            return Err("server data read by the benchmark copies is wrong");
        }
        r.say(format_args!("bench: done"));

        // Give the page back and restore our own frames at both addresses.
        // SAFETY: the mapping made above; nothing uses MAP until it is restored.
        unsafe { p::gnttab_unmap(map, handle) }.map_err(|_| "unmap failed")?;
        // SAFETY: our own frames back at our own pages, which nothing references.
        unsafe {
            mm::map_mfn(map, map_orig, mm::PAGE_KERNEL).map_err(|_| "cannot restore MAP")?;
            mm::map_mfn(bench, bench_orig, mm::PAGE_KERNEL).map_err(|_| "cannot restore BENCH")?;
        }
        // Tell the server, through a copy now that the mapping is gone.
        wr32(local, 0, 1);
        copy(GnttabCopy {
            source: GnttabCopyPtr {
                u: local_mfn,
                domid: DOMID_SELF,
                offset: 0,
                _pad: 0,
            },
            dest: GnttabCopyPtr {
                u: u64::from(GREF),
                domid: peer,
                offset: W_DONE as u16,
                _pad: 0,
            },
            len: 4,
            flags: GNTCOPY_DEST_GREF,
            ..Default::default()
        })?;
        events::send(port).map_err(|_| "final send failed")?;
        Ok(())
    }

    fn guest_main(si: &'static StartInfo) {
        // No upcalls while we work: we poll the ports ourselves, and the SDK's upcall
        // would consume their pending bits (a domU may start with upcalls unmasked).
        events::disable();
        let r = Ring::from_start_info(si);
        let cmd = si.cmd_line_bytes();
        r.say(format_args!(
            "pingpong: started, cmdline \"{}\"",
            guest_sdk::console::Ascii(cmd)
        ));
        let role = arg(cmd, "role").unwrap_or(b"");
        let peer = arg(cmd, "peer")
            .and_then(num)
            .and_then(|v| DomId::try_from(v).ok());
        let rounds = arg(cmd, "rounds")
            .and_then(num)
            .unwrap_or(1000)
            .min(1 << 20) as u32;
        let iters = arg(cmd, "iters").and_then(num).unwrap_or(200).min(1 << 20) as u32;
        match (role, peer) {
            (b"server", Some(peer)) => match server(&r, peer) {
                Ok(n) => r.say(format_args!(
                    "pingpong: server PASS peer={peer} rounds={n} mapped=ok copied=ok revoked=ok"
                )),
                Err(why) => r.say(format_args!("pingpong: server FAIL: {why}")),
            },
            (b"client", Some(peer)) => match client(&r, peer, rounds, iters) {
                Ok(()) => r.say(format_args!(
                    "pingpong: client PASS peer={peer} rounds={rounds} mapped=ok copied=ok"
                )),
                Err(why) => r.say(format_args!("pingpong: client FAIL: {why}")),
            },
            _ => r.say(format_args!(
                "pingpong: FAIL: need role=server|client and peer=<domid> on the command line"
            )),
        }
        // Stay up so the console can be read; a domain that powers off is destroyed.
        loop {
            sched::block();
        }
    }
}
