//! The domain builder: what `xl create` does through libxl and libxenguest, in the same
//! order: createdomain, max_vcpus, affinity, max_mem, set_address_size(64),
//! populate_physmap, load the kernel and write the P2M, start_info and page tables
//! through foreign mappings, hypercall page, pin the L4, event channels for the console
//! and store rings, setvcpucontext. The caller unpauses.

use crate::foreign::Slot;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use dom0_tools::builder::{kernel_page, p2m_page, Layout, MAXMEM_SLACK_KIB};
use dom0_tools::cfg::DomainConfig;
use dom0_tools::elf;
use guest_sdk::privileged as p;
use guest_sdk::Errno;
use xen_abi::xen::DomId;

/// What the builder made.
#[derive(Debug)]
pub struct Built {
    /// The new domain.
    pub domid: DomId,
    /// Its console ring frame and event channel (its end).
    pub console_mfn: u64,
    /// See `console_mfn`.
    pub console_port: u32,
    /// Its store ring frame and channel (its end), for xenstored's introduce.
    pub store_mfn: u64,
    /// See `store_mfn`.
    pub store_port: u32,
    /// The domain handle (UUID) it was created with.
    pub handle: [u8; 16],
}

fn errno(what: &str, e: Errno) -> String {
    format!("{what} failed: {e:?}")
}

fn uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    let mut x = guest_sdk::time::rdtsc() ^ 0x9E37_79B9_7F4A_7C15;
    for b in u.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    // Version 4, variant 1.
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// Builds `cfg` with kernel image `img`; the domain is left paused. On error, whatever
/// was created is destroyed.
pub fn build(cfg: &DomainConfig, img: &[u8]) -> Result<Built, String> {
    let kernel = elf::parse(img).map_err(|e| format!("{}: {e}", cfg.kernel))?;
    let nr_pages = cfg.target_memkb / 4;
    let layout = Layout::new(&kernel, nr_pages).map_err(|e| format!("{}: {e}", cfg.name))?;
    let handle = cfg.uuid.unwrap_or_else(uuid);
    let vcpus = cfg.max_vcpus.max(cfg.vcpus).max(1);
    let domid = p::createdomain(0, &p::pv_config(vcpus, handle))
        .map_err(|e| errno("XEN_DOMCTL_createdomain", e))?;
    match build_in(domid, cfg, vcpus, img, &kernel, &layout) {
        Ok(mut b) => {
            b.handle = handle;
            Ok(b)
        }
        Err(e) => {
            let _ = p::destroydomain(domid);
            Err(e)
        }
    }
}

fn build_in(
    domid: DomId,
    cfg: &DomainConfig,
    vcpus: u32,
    img: &[u8],
    kernel: &elf::Kernel,
    layout: &Layout,
) -> Result<Built, String> {
    p::max_vcpus(domid, vcpus).map_err(|e| errno("XEN_DOMCTL_max_vcpus", e))?;
    for v in 0..vcpus {
        if let Some(set) = cfg.cpus.for_vcpu(v as usize) {
            let mut map = [0u8; 32];
            for cpu in set.iter().take(256) {
                if let Some(b) = map.get_mut(cpu / 8) {
                    *b |= 1 << (cpu % 8);
                }
            }
            // xl only warns when affinity cannot be set.
            let _ = p::set_vcpu_affinity(domid, v, &mut map);
        }
    }
    p::max_mem(
        domid,
        cfg.max_memkb.max(cfg.target_memkb) + MAXMEM_SLACK_KIB,
    )
    .map_err(|e| errno("XEN_DOMCTL_max_mem", e))?;
    p::set_address_size(domid, 64).map_err(|e| errno("XEN_DOMCTL_set_address_size", e))?;

    // Memory: PFNs in, MFNs back, in chunks.
    let n = usize::try_from(layout.nr_pages).map_err(|_| String::from("too much memory"))?;
    let mut mfns: Vec<u64> = Vec::new();
    mfns.try_reserve_exact(n)
        .map_err(|_| String::from("dom0 is out of memory for the P2M"))?;
    mfns.extend(0..layout.nr_pages);
    for chunk in mfns.chunks_mut(512) {
        let want = chunk.len();
        let done = p::populate_physmap(domid, 0, chunk)
            .map_err(|e| errno("XENMEM_populate_physmap", e))?;
        if done != want {
            return Err(format!(
                "failed to allocate {} KiB for the domain (out of memory)",
                layout.nr_pages * 4
            ));
        }
    }
    let mfn_of = |pfn: u64| mfns.get(pfn as usize).copied().unwrap_or(0);

    let console_port =
        p::evtchn_alloc_unbound(domid, 0).map_err(|e| errno("EVTCHNOP_alloc_unbound", e))?;
    let store_port =
        p::evtchn_alloc_unbound(domid, 0).map_err(|e| errno("EVTCHNOP_alloc_unbound", e))?;
    let info = p::getdomaininfo(domid).map_err(|e| errno("XEN_DOMCTL_getdomaininfo", e))?;

    let mut slot = Slot::new().map_err(|e| errno("mapping slot", e))?;
    let mut page = alloc::boxed::Box::new([0u8; 4096]);
    let put = |slot: &mut Slot, pfn: u64, data: &[u8]| -> Result<(), String> {
        slot.write_page(domid, mfn_of(pfn), data)
            .map_err(|e| errno("mmu_update (foreign map)", e))
    };
    for pfn in 0..layout.kernel_end_pfn {
        kernel_page(kernel, img, pfn, &mut page);
        put(&mut slot, pfn, &page[..])?;
    }
    for i in 0..layout.p2m_pages {
        let words = p2m_page(&mfns, i);
        put(&mut slot, layout.p2m_pfn + i, as_bytes(&words))?;
    }
    let cmdline = cfg.cmdline.as_deref().unwrap_or("");
    let si = layout.start_info(
        info.shared_info_frame << 12,
        mfn_of(layout.xenstore_pfn),
        store_port,
        mfn_of(layout.console_pfn),
        console_port,
        cmdline,
    );
    put(&mut slot, layout.start_info_pfn, start_info_bytes(&si))?;
    put(&mut slot, layout.xenstore_pfn, &[])?;
    put(&mut slot, layout.console_pfn, &[])?;
    for i in 0..layout.nr_pt {
        let t = layout.table(i, &mfn_of).ok_or("page table layout")?;
        put(&mut slot, layout.pt_pfn + i, as_bytes(&t))?;
    }
    put(&mut slot, layout.stack_pfn, &[])?;
    drop(slot);

    if let Some(hp) = kernel.hypercall_page {
        let pfn = (hp - layout.virt_base) / 4096;
        p::hypercall_init(domid, mfn_of(pfn)).map_err(|e| errno("XEN_DOMCTL_hypercall_init", e))?;
    }
    let l4 = mfn_of(layout.pt_pfn);
    p::pin_table_foreign(4, l4, domid).map_err(|e| errno("MMUEXT_PIN_L4_TABLE", e))?;
    let ctxt = alloc::boxed::Box::new(layout.vcpu_context(kernel.virt_entry, l4));
    p::setvcpucontext(domid, 0, &ctxt).map_err(|e| errno("XEN_DOMCTL_setvcpucontext", e))?;
    Ok(Built {
        domid,
        console_mfn: mfn_of(layout.console_pfn),
        console_port,
        store_mfn: mfn_of(layout.xenstore_pfn),
        store_port,
        handle: [0; 16],
    })
}

fn as_bytes(words: &[u64; 512]) -> &[u8] {
    // SAFETY: a [u64; 512] is 4096 initialised bytes with no padding; u8 has alignment 1.
    unsafe { core::slice::from_raw_parts(words.as_ptr() as *const u8, 4096) }
}

fn start_info_bytes(si: &xen_abi::xen::StartInfo) -> &[u8] {
    // SAFETY: `StartInfo` is `repr(C)` with explicit padding fields and only integer
    // members, so all of its `size_of` bytes are initialised.
    unsafe {
        core::slice::from_raw_parts(
            si as *const _ as *const u8,
            core::mem::size_of::<xen_abi::xen::StartInfo>(),
        )
    }
}
