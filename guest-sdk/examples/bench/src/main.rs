//! Benchmark guest: path lengths of hypercalls and page-table updates.
//!
//! Run under QEMU with `-icount shift=0,sleep=off`, where the TSC advances with executed
//! instructions, so a `rdtsc` difference is a path length (instructions), not wall time
//! (see `docs/perf.md`). The same binary runs as dom0 on this project's hypervisor and on
//! real Xen 4.17; `cargo xtask bench` runs both and compares.
//!
//! Each operation is timed individually, `rdtsc; op; rdtsc`, over [`ITERS`] iterations
//! after [`WARMUP`] untimed ones; per-iteration set-up that is not part of the operation
//! (clearing a pending bit) runs outside the timed window. The average cost of an empty
//! `rdtsc; rdtsc` pair is subtracted. Output, one machine-readable line per result:
//!
//! ```text
//! bench: rdtsc_pair cycles=2 min=2 max=2 iters=10000
//! bench: null_hypercall cycles=345 min=340 max=9000 iters=10000
//! bench: done
//! ```
//!
//! `cycles` is the net average; `min`/`max` are net per-iteration extremes (an interrupt
//! the hypervisor takes during one iteration shows up in `max` and slightly in the
//! average, never in `min`).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("bench is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

/// Timed iterations per operation.
pub const ITERS: u32 = 10_000;
/// Untimed iterations before them (caches, TLB, branch state, lazy set-up in the hypervisor).
pub const WARMUP: u32 = 1_000;

/// Accumulated per-iteration costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Sum of the timed iterations' costs.
    pub total: u64,
    /// Cheapest iteration.
    pub min: u64,
    /// Most expensive iteration.
    pub max: u64,
    /// Number of timed iterations.
    pub n: u32,
}

impl Stats {
    /// No samples yet.
    pub const EMPTY: Stats = Stats {
        total: 0,
        min: u64::MAX,
        max: 0,
        n: 0,
    };

    /// Add one sample.
    pub fn add(&mut self, cycles: u64) {
        self.total += cycles;
        self.min = self.min.min(cycles);
        self.max = self.max.max(cycles);
        self.n += 1;
    }

    /// Average, rounded to the nearest integer (0 with no samples).
    pub fn avg(&self) -> u64 {
        if self.n == 0 {
            0
        } else {
            (self.total + self.n as u64 / 2) / self.n as u64
        }
    }

    /// (average, min, max) with `base` (the empty-pair cost) taken off, saturating at 0;
    /// all 0 with no samples.
    pub fn net(&self, base: &Stats) -> (u64, u64, u64) {
        if self.n == 0 {
            return (0, 0, 0);
        }
        let b = base.avg();
        (
            self.avg().saturating_sub(b),
            self.min.saturating_sub(b),
            self.max.saturating_sub(b),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_average_and_net() {
        let mut s = Stats::EMPTY;
        for c in [10, 12, 14] {
            s.add(c);
        }
        assert_eq!((s.avg(), s.min, s.max, s.n), (12, 10, 14, 3));
        let mut base = Stats::EMPTY;
        base.add(3);
        assert_eq!(s.net(&base), (9, 7, 11));
        assert_eq!(Stats::EMPTY.avg(), 0);
        assert_eq!(Stats::EMPTY.net(&s), (0, 0, 0));
    }
}

#[cfg(target_os = "none")]
mod guest {
    use super::{Stats, ITERS, WARMUP};
    use core::hint::black_box;
    use guest_sdk::mm::{self, make_pte, PAGE_KERNEL, PAGE_KERNEL_RO};
    use guest_sdk::xen_abi::mm::{
        MmuUpdate, MMU_NORMAL_PT_UPDATE, PAGE_SHIFT, PTE_ACCESSED, PTE_PRESENT, PTE_RW, PTE_USER,
        UVMF_INVLPG,
    };
    use guest_sdk::xen_abi::version::XENVER_VERSION;
    use guest_sdk::xen_abi::xen::DOMID_SELF;
    use guest_sdk::{events, hypercall, println, Errno, StartInfo};

    guest_sdk::entry!(guest_main);

    /// Where the scratch L1 is hooked in: 512 MiB above the kernel base, in the kernel's
    /// L2 table but far from the start-of-day region (which ends at a 4 MiB boundary a few
    /// MiB above the base).
    const SCRATCH_VA: u64 = guest_sdk::KERNEL_BASE + (512 << 20);
    /// The page `mmu_update` remaps (scratch L1 slot 0).
    const MMU_VA: u64 = SCRATCH_VA;
    /// The page `update_va_mapping` remaps (scratch L1 slot 1).
    const UVA_VA: u64 = SCRATCH_VA + 4096;

    /// Marker words written into the two data frames to check the final mappings.
    const MARK_A: u64 = 0xA5A5_0000_0000_000A;
    const MARK_B: u64 = 0xA5A5_0000_0000_000B;

    // Three page-aligned .bss pages of our own: the scratch L1 and two data frames. Rust
    // code never forms references to them; they are reached through raw addresses only.
    core::arch::global_asm!(
        ".pushsection .bss.bench_pages, \"aw\", @nobits",
        ".balign 4096",
        ".globl bench_scratch_l1",
        "bench_scratch_l1: .skip 4096",
        ".globl bench_frame_a",
        "bench_frame_a: .skip 4096",
        ".globl bench_frame_b",
        "bench_frame_b: .skip 4096",
        ".popsection",
    );

    fn page_va(which: u8) -> u64 {
        extern "C" {
            static bench_scratch_l1: u8;
            static bench_frame_a: u8;
            static bench_frame_b: u8;
        }
        // `&raw const` takes the addresses without reading.
        match which {
            0 => (&raw const bench_scratch_l1) as u64,
            1 => (&raw const bench_frame_a) as u64,
            _ => (&raw const bench_frame_b) as u64,
        }
    }

    /// The TSC; under `-icount shift=0` it counts executed instructions.
    #[inline(always)]
    fn rdtsc() -> u64 {
        let (lo, hi): (u32, u32);
        // SAFETY: `rdtsc` only writes edx:eax; a PV guest may execute it (if the
        // hypervisor traps it, it emulates it). No `nomem`: the compiler must not move
        // memory accesses of the timed operation across it.
        unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nostack)) };
        (hi as u64) << 32 | lo as u64
    }

    /// Time `op(i)` for `WARMUP + ITERS` iterations, recording the last `ITERS`;
    /// `setup(i)` runs before each, outside the timed window.
    #[inline(always)]
    fn measure(mut setup: impl FnMut(u32), mut op: impl FnMut(u32)) -> Stats {
        let mut s = Stats::EMPTY;
        for i in 0..WARMUP + ITERS {
            setup(i);
            let t0 = rdtsc();
            op(i);
            let t1 = rdtsc();
            if i >= WARMUP {
                s.add(t1.wrapping_sub(t0));
            }
        }
        s
    }

    fn report(name: &str, s: &Stats, base: &Stats) {
        let (avg, min, max) = s.net(base);
        println!(
            "bench: {name} cycles={avg} min={min} max={max} iters={}",
            s.n
        );
    }

    /// The scratch address space: an L1 of our own hooked into the kernel's L2 at
    /// [`SCRATCH_VA`], and two data frames.
    struct Scratch {
        l1_mfn: u64,
        mfn_a: u64,
        mfn_b: u64,
    }

    fn setup_scratch() -> Result<Scratch, &'static str> {
        let (l1_va, a_va, b_va) = (page_va(0), page_va(1), page_va(2));
        let l1_mfn = mm::virt_to_mfn(l1_va).ok_or("no MFN for the scratch L1")?;
        let mfn_a = mm::virt_to_mfn(a_va).ok_or("no MFN for frame A")?;
        let mfn_b = mm::virt_to_mfn(b_va).ok_or("no MFN for frame B")?;
        // SAFETY: the three pages are ours (.bss, reserved above) and still mapped
        // writable; nothing else refers to them.
        unsafe {
            core::ptr::write_bytes(l1_va as *mut u8, 0, 4096);
            (a_va as *mut u64).write_volatile(MARK_A);
            (b_va as *mut u64).write_volatile(MARK_B);
        }
        // A page table may not be mapped writable: make our mapping of the L1 read-only.
        // SAFETY: we hold no references into the L1 page, and only read it from now on.
        unsafe {
            hypercall::update_va_mapping(l1_va, make_pte(l1_mfn, PAGE_KERNEL_RO), UVMF_INVLPG)
        }
        .map_err(|_| "making the scratch L1 read-only failed")?;
        mm::pin_table(1, l1_mfn).map_err(|_| "pinning the scratch L1 failed")?;
        let (l2e, l2e_maddr) = mm::walk(SCRATCH_VA, 2).ok_or("no L2 table at SCRATCH_VA")?;
        if l2e & PTE_PRESENT != 0 {
            return Err("the L2 slot at SCRATCH_VA is already in use");
        }
        mm::set_pte(
            l2e_maddr,
            make_pte(l1_mfn, PTE_PRESENT | PTE_RW | PTE_USER | PTE_ACCESSED),
        )
        .map_err(|_| "hooking the scratch L1 into the L2 failed")?;
        Ok(Scratch {
            l1_mfn,
            mfn_a,
            mfn_b,
        })
    }

    /// Read the marker word through `va`.
    fn marker(va: u64) -> u64 {
        // SAFETY: `va` is a scratch slot mapping frame A or B (just set, and flushed),
        // readable; the read is volatile because the mapping changes behind Rust's back.
        unsafe { (va as *const u64).read_volatile() }
    }

    fn bench_mmu(base: &Stats) -> Result<(), &'static str> {
        let s = setup_scratch()?;
        let ptes = [
            make_pte(s.mfn_a, PAGE_KERNEL),
            make_pte(s.mfn_b, PAGE_KERNEL),
        ];

        // (b) mmu_update of one PTE: scratch L1 slot 0, alternating frames A and B.
        let slot0 = (s.l1_mfn << PAGE_SHIFT) + mm::table_index(MMU_VA, 1) as u64 * 8;
        let reqs = [
            [MmuUpdate {
                ptr: slot0 | MMU_NORMAL_PT_UPDATE,
                val: ptes[0],
            }],
            [MmuUpdate {
                ptr: slot0 | MMU_NORMAL_PT_UPDATE,
                val: ptes[1],
            }],
        ];
        let mut failed: Option<Errno> = None;
        let st = measure(
            |_| {},
            |i| {
                if let Err(e) = hypercall::mmu_update(&reqs[(i & 1) as usize], DOMID_SELF) {
                    failed = Some(e);
                }
            },
        );
        if let Some(e) = failed {
            println!("bench: mmu_update failed: {e:?}");
            return Err("mmu_update failed");
        }
        report("mmu_update", &st, base);

        // (c) update_va_mapping of one PTE with UVMF_INVLPG: scratch L1 slot 1.
        let st = measure(
            |_| {},
            |i| {
                // SAFETY: UVA_VA is our scratch slot; no references into it exist.
                let r = unsafe {
                    hypercall::update_va_mapping(UVA_VA, ptes[(i & 1) as usize], UVMF_INVLPG)
                };
                if let Err(e) = r {
                    failed = Some(e);
                }
            },
        );
        if let Some(e) = failed {
            println!("bench: update_va_mapping failed: {e:?}");
            return Err("update_va_mapping failed");
        }
        report("update_va_mapping", &st, base);

        // Check that both paths really changed the mappings.
        mm::set_pte(slot0, ptes[0]).map_err(|_| "mmu_update (check) failed")?;
        mm::invlpg_local(MMU_VA).map_err(|_| "invlpg (check) failed")?;
        // SAFETY: UVA_VA is our scratch slot; no references into it exist.
        unsafe { hypercall::update_va_mapping(UVA_VA, ptes[1], UVMF_INVLPG) }
            .map_err(|_| "update_va_mapping (check) failed")?;
        let (a, b) = (marker(MMU_VA), marker(UVA_VA));
        if a != MARK_A || b != MARK_B {
            println!("bench: mapping check failed: read {a:#x} {b:#x}");
            return Err("mapping check failed");
        }
        println!("bench: mapping check ok");
        Ok(())
    }

    fn bench_evtchn(base: &Stats) -> Result<(), Errno> {
        // A loopback channel: `a` unbound for ourselves, `b` bound to it. Sending on `b`
        // makes `a` pending; both are masked (and so are events as a whole), so there is
        // no upcall. The pending bit is cleared before each send, outside the timed window,
        // so every send takes the full set-pending path.
        let a = events::alloc_unbound(DOMID_SELF)?;
        let b = events::bind_interdomain(DOMID_SELF, a)?;
        events::mask(a);
        events::mask(b);
        let mut failed = None;
        let st = measure(
            |_| events::clear_pending(a),
            |_| {
                if let Err(e) = events::send(b) {
                    failed = Some(e);
                }
            },
        );
        if let Some(e) = failed {
            return Err(e);
        }
        if !events::is_pending(a) {
            println!("bench: evtchn_send check failed: port {a} not pending");
        }
        report("evtchn_send", &st, base);
        events::clear_pending(a);
        let _ = events::close(b);
        let _ = events::close(a);
        Ok(())
    }

    fn guest_main(_si: &'static StartInfo) {
        match guest_sdk::version::version() {
            Ok((major, minor)) => println!("bench: hypervisor {major}.{minor}"),
            Err(e) => println!("bench: xen_version failed: {e:?}"),
        }
        println!("bench: iters={ITERS} warmup={WARMUP}");

        // The empty pair, subtracted from everything else.
        let base = measure(|_| {}, |_| {});
        println!(
            "bench: rdtsc_pair cycles={} min={} max={} iters={}",
            base.avg(),
            base.min,
            base.max,
            base.n
        );

        // (a) the null hypercall: xen_version(XENVER_version) reads a constant.
        let st = measure(
            |_| {},
            |_| {
                // SAFETY: XENVER_version takes no buffer.
                let r = unsafe { hypercall::xen_version(XENVER_VERSION, core::ptr::null_mut()) };
                black_box(r.ok());
            },
        );
        report("null_hypercall", &st, &base);

        if let Err(e) = bench_mmu(&base) {
            println!("bench: page-table benchmarks skipped: {e}");
        }
        if let Err(e) = bench_evtchn(&base) {
            println!("bench: evtchn_send failed: {e:?}");
        }
        println!("bench: done");
    }
}
