//! Building dom0 from the first boot module, the way Xen's `dom0_construct_pv` does.
//!
//! The policy (which ELF kernels are acceptable, where each start-of-day element goes,
//! what the boot page tables contain) is `hv_core::elf` and `hv_core::build`; this file
//! allocates the memory, copies bytes and hands the result to `hv_core::mm` to validate
//! and pin, exactly as the guest will find it.

extern crate alloc;

use crate::arch::power;
use crate::domain::{Domain, Vcpu};
use crate::mem::phys_to_virt;
use crate::mm::{HvMem, MMU};
use crate::shinfo::SharedInfo;
use crate::{cmdline, mem, multiboot, paging, println};
use alloc::boxed::Box;
use alloc::vec::Vec;
use hv_core::build::{self as plan, Dom0Layout};
use hv_core::frame::Owner;
use xen_abi::mm::{FLAT_KERNEL_CS, FLAT_KERNEL_SS};

fn fail(why: &str) -> ! {
    println!("hypervisor: cannot build dom0: {why}");
    crate::smp::stop_others();
    power::off(power::Reason::HypervisorFailure)
}

/// Copy `bytes` to dom0's virtual address `va` inside the initial mapping.
fn copy_in(l: &Dom0Layout, p2m: &[u64], va: u64, bytes: &[u8]) -> Result<(), &'static str> {
    let mut done = 0usize;
    while done < bytes.len() {
        let cur = va + done as u64;
        let pfn = l
            .pfn_of(cur)
            .ok_or("a segment lies outside the initial mapping")?;
        let mfn = *p2m
            .get(pfn as usize)
            .ok_or("a segment lies past dom0's memory")?;
        let off = (cur & 0xfff) as usize;
        let n = (4096 - off).min(bytes.len() - done);
        // SAFETY: `mfn` is a frame just allocated for dom0 (not running yet, so nothing
        // else accesses it), mapped in the direct map; `off + n <= 4096`.
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes[done..].as_ptr(),
                (phys_to_virt(mfn << 12) + off as u64) as *mut u8,
                n,
            );
        }
        done += n;
    }
    Ok(())
}

/// Copy `len` bytes from physical `src` (a boot module) to dom0's pfns from `pfn`.
fn copy_module_to_pfns(p2m: &[u64], mut pfn: u64, src: u64, len: u64) -> Result<(), &'static str> {
    let mut done = 0u64;
    while done < len {
        let mfn = *p2m
            .get(pfn as usize)
            .ok_or("the ramdisk does not fit in dom0's memory")?;
        let n = (len - done).min(4096);
        // SAFETY: the module's memory is reserved from the allocator and only read here;
        // the destination is a fresh dom0 frame; n <= 4096.
        unsafe {
            core::ptr::copy_nonoverlapping(
                phys_to_virt(src + done) as *const u8,
                phys_to_virt(mfn << 12) as *mut u8,
                n as usize,
            )
        };
        done += n;
        pfn += 1;
    }
    Ok(())
}

/// How much memory dom0 gets: `dom0_mem=`, or, as Xen does, what is free less a
/// reserve of min(1/16, 128 MiB) for the hypervisor.
fn dom0_pages(opts: &cmdline::Options) -> u64 {
    let (free, _) = mem::stats();
    let free = free as u64;
    match opts.dom0_mem {
        Some(bytes) => (bytes / 4096).min(free.saturating_sub(64)),
        None => free - (free / 16).min(128 << 8),
    }
}

pub fn build(bi: &multiboot::BootInfo, opts: &cmdline::Options) -> ! {
    crate::traps::doing(&"building dom0");
    let Some(kmod) = bi.modules.first() else {
        fail("no kernel module")
    };
    let klen = (kmod.end - kmod.start) as usize;
    // SAFETY: the module's frames are reserved from the allocator (never handed out),
    // mapped in the direct map, and nothing writes them while dom0 is built.
    let image: &[u8] =
        unsafe { core::slice::from_raw_parts(phys_to_virt(kmod.start) as *const u8, klen) };
    let kernel = match hv_core::elf::parse_kernel(image) {
        Ok(k) => k,
        Err(e) => fail(e.describe()),
    };
    let initrd = bi.modules.get(1);
    let initrd_len = initrd.map(|m| m.end - m.start).unwrap_or(0);
    let nr_pages = dom0_pages(opts);
    let layout = match plan::compute_layout(&kernel.info, nr_pages, initrd_len) {
        Ok(l) => l,
        Err(e) => fail(e.describe()),
    };
    log::info!(
        "dom0: {} MiB, kernel {:#x}-{:#x}, p2m {:#x}, start info {:#x}, page tables {:#x} ({} frames), stack {:#x}, end {:#x}, entry {:#x}",
        nr_pages / 256,
        layout.kernel.start,
        layout.kernel.end,
        layout.p2m.start,
        layout.start_info.start,
        layout.page_tables.start,
        layout.nr_pt_frames,
        layout.stack.start,
        layout.v_end,
        layout.entry
    );

    // Memory: one frame at a time (a PV guest's memory need not be contiguous).
    let mut p2m: Vec<u64> = Vec::new();
    if p2m.try_reserve_exact(nr_pages as usize).is_err() {
        fail("no memory for dom0's p2m");
    }
    for _ in 0..nr_pages {
        match mem::alloc_frame() {
            Some(mfn) => p2m.push(mfn),
            None => fail("not enough memory for dom0_mem"),
        }
    }
    if let Err(e) = plan::check_p2m(&layout, &p2m) {
        fail(e.describe());
    }
    let shared_info_mfn = mem::alloc_frame().unwrap_or_else(|| fail("no memory for shared_info"));
    {
        let mut guard = MMU.lock();
        let Some(mmu) = guard.as_mut() else {
            fail("no frame table")
        };
        for (pfn, &mfn) in p2m.iter().enumerate() {
            if mmu.assign(mfn, Owner::Domain(0)).is_err() {
                fail("a frame for dom0 was already in use");
            }
            paging::m2p_set(mfn, pfn as u64);
        }
        if mmu.assign(shared_info_mfn, Owner::Domain(0)).is_err() {
            fail("the shared_info frame was already in use");
        }
    }

    // The kernel, then the ramdisk.
    for seg in kernel.segments() {
        if copy_in(&layout, &p2m, seg.vaddr, kernel.segment_bytes(&seg)).is_err() {
            fail("a kernel segment lies outside the initial mapping");
        }
        // Frames are zeroed when allocated, so the zero-fill (bss) is already done.
    }
    if let Some(m) = initrd {
        let first_pfn = match layout.initrd_pfn {
            Some(p) => p,
            None => fail("no place for the ramdisk"),
        };
        if let Err(e) = copy_module_to_pfns(&p2m, first_pfn, m.start, initrd_len) {
            fail(e);
        }
    }

    // The p2m list (`mfn_list`), the boot page tables, the hypercall page.
    let mut bytes = [0u8; 8];
    for (pfn, &mfn) in p2m.iter().enumerate() {
        bytes.copy_from_slice(&mfn.to_le_bytes());
        if copy_in(&layout, &p2m, layout.p2m.start + pfn as u64 * 8, &bytes).is_err() {
            fail("the p2m list lies outside the initial mapping");
        }
    }
    plan::generate_page_tables(&layout, &p2m, |w| {
        if let Some(&mfn) = p2m.get(w.table_pfn as usize) {
            // SAFETY: a dom0 page-table frame (zeroed, not yet validated or visible to
            // the guest); index < 512; one aligned 8-byte store.
            unsafe {
                core::ptr::write_volatile(
                    (phys_to_virt(mfn << 12) + u64::from(w.index & 511) * 8) as *mut u64,
                    w.value,
                )
            };
        }
    });
    let l4_mfn = p2m
        .get(layout.pt_pfn() as usize)
        .copied()
        .unwrap_or_else(|| fail("no L4"));
    paging::install_hypervisor_slots(l4_mfn);
    if let Some(hp) = layout.hypercall_page {
        let page = plan::hypercall_page();
        if copy_in(&layout, &p2m, hp, &page).is_err() {
            fail("the hypercall page lies outside the kernel");
        }
    }

    // start_info.
    let f = layout.start_info_fields(3);
    let mut si = xen_abi::xen::StartInfo::ZERO;
    si.magic = f.magic;
    si.nr_pages = f.nr_pages;
    si.shared_info = shared_info_mfn << 12;
    si.flags = f.flags;
    si.pt_base = f.pt_base;
    si.nr_pt_frames = f.nr_pt_frames;
    si.mfn_list = f.mfn_list;
    si.mod_start = f.mod_start;
    si.mod_len = f.mod_len;
    si.first_p2m_pfn = f.first_p2m_pfn;
    si.nr_p2m_frames = f.nr_p2m_frames;
    // Multiboot1 loaders put the module's file name first; multiboot2 (GRUB) does not.
    let cl = match bi.loader {
        multiboot::Loader::Multiboot1 => cmdline::skip_image_name(&kmod.cmdline),
        multiboot::Loader::Multiboot2 => kmod.cmdline.as_str(),
    };
    si.cmd_line = plan::start_info_cmdline(cl.as_bytes());
    // SAFETY: StartInfo is a #[repr(C)] struct of integers; viewing it as bytes is sound.
    let si_bytes = unsafe {
        core::slice::from_raw_parts(&si as *const _ as *const u8, core::mem::size_of_val(&si))
    };
    if copy_in(&layout, &p2m, layout.start_info.start, si_bytes).is_err() {
        fail("start_info lies outside the initial mapping");
    }

    // shared_info: events masked on every vCPU until the guest unmasks them; time.
    let sh = SharedInfo::new(shared_info_mfn);
    for v in 0..crate::shinfo::MAX_LEGACY_VCPUS {
        sh.set_upcall_mask(v, true);
    }
    crate::time::publish_wallclock(&sh);
    crate::time::publish_vcpu_time(&sh, 0);

    let mut v = Vcpu::new(0);
    let regs = layout.initial_regs();
    v.regs.rip = regs.rip;
    v.regs.rsp = regs.rsp;
    v.regs.rsi = regs.rsi;
    v.regs.cs = u64::from(FLAT_KERNEL_CS);
    v.regs.ss = u64::from(FLAT_KERNEL_SS);
    v.regs.rflags = 0x202;
    v.kernel_ss = u64::from(FLAT_KERNEL_SS);
    v.kernel_mode = true;
    v.initialised = true;
    {
        let mut guard = MMU.lock();
        let Some(mmu) = guard.as_mut() else {
            fail("no frame table")
        };
        if let Err(e) = mmu.build_pin_l4(&mut HvMem, 0, &mut v.mm, l4_mfn) {
            log::error!("dom0: boot page tables refused: error {}", e.0);
            fail("the boot page tables do not validate");
        }
    }
    if crate::gnttab::create_domain(0, 64).is_err() {
        fail("no grant table for dom0");
    }
    let mut cmdline = heapless::String::new();
    let _ = cmdline.push_str(cl);
    let d = Box::new(Domain {
        id: 0,
        privileged: true,
        vcpus: alloc::vec![v],
        shared_info_mfn,
        max_pages: nr_pages,
        tot_pages: nr_pages,
        vm_assist: 0,
        shutdown: None,
        paused: false,
        pause_count: 0,
        dying: false,
        max_vcpus: 1,
        handle: [0; 16],
        time_offset: 0,
        weight: 256,
        cap: 0,
        evtchn: hv_core::evtchn::Table::new(hv_core::evtchn::NR_EVENT_CHANNELS),
        pirqs: hv_core::pirq::Table::new(),
        cmdline,
    });
    let mut d = d;
    if let Some(v) = d.vcpus.first_mut() {
        v.state = crate::domain::RunState::Runnable;
    }
    {
        let mut t = crate::domain::lock();
        t.doms.push(d);
        if let Some(d) = t.get(0) {
            crate::sched::domain_created(d);
        }
    }
    drop(p2m);
    log::info!("d0v0: starting");
    crate::sched::run_loop()
}
