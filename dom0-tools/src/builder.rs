//! The pure half of the PV domain builder: the start-of-day layout of a new 64-bit PV
//! domain, as libxenguest's `xg_dom_x86.c` lays out a domU, the bootstrap page tables,
//! `start_info` and the initial vCPU context. The dom0 kernel does the hypercalls
//! (`createdomain`, `populate_physmap`, foreign mappings...) and copies what this
//! module computes into the new domain's frames.
//!
//! Layout, in pseudo-physical frames from `virt_base` (frame `n` at `virt_base + n*4K`):
//! kernel (`virt_kstart..virt_kend`), P2M list (`nr_pages` u64), `start_info`, XenStore
//! ring, console ring, page tables (L4, L3s, L2s, L1s), one page of boot stack, then
//! at least 512 KiB of padding up to the next 4 MiB boundary: everything up to there is
//! mapped (page-table frames read-only), as `xen.h` promises.

use crate::elf::Kernel;
use xen_abi::xen::{StartInfo, VcpuGuestContext, VGCF_IN_KERNEL, VGCF_ONLINE};

/// Page size.
pub const PAGE: u64 = 4096;
/// PTE flags of an upper-level table entry and of a writable page.
pub const PTE_RW_FLAGS: u64 = 0x67; // present | rw | user | accessed | dirty
/// PTE flags of a read-only page (page-table frames).
pub const PTE_RO_FLAGS: u64 = 0x25; // present | user | accessed
/// `FLAT_KERNEL_CS` / `FLAT_KERNEL_SS` (x86_64).
pub const FLAT_KERNEL_CS: u16 = 0xe033;
/// See [`FLAT_KERNEL_CS`].
pub const FLAT_KERNEL_SS: u16 = 0xe02b;
/// What libxl adds to `maxmem` for `XEN_DOMCTL_max_mem` (`LIBXL_MAXMEM_CONSTANT`, KiB).
pub const MAXMEM_SLACK_KIB: u64 = 1024;

/// Why a domain cannot be laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The boot region needs more pages than the domain has.
    TooSmall {
        /// Pages the start-of-day region needs.
        need: u64,
        /// Pages the domain has.
        have: u64,
    },
    /// Addresses that cannot be mapped (overflow, hypervisor hole).
    BadAddress,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::TooSmall { need, have } => write!(
                f,
                "not enough memory: the boot image needs {} KiB, the domain has {} KiB",
                need * 4,
                have * 4
            ),
            Error::BadAddress => f.write_str("kernel addresses cannot be mapped"),
        }
    }
}

/// Number of page tables of each level needed to map `[start, end)`.
pub fn count_tables(start: u64, end: u64) -> [u64; 4] {
    let last = end - 1;
    let n = |shift: u32| (last >> shift) - (start >> shift) + 1;
    // [L4, L3, L2, L1]: an L(k) table covers 4K << (9*k).
    [1, n(39), n(30), n(21)]
}

/// The start-of-day layout of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `XEN_ELFNOTE_VIRT_BASE`: virtual address of pseudo-physical frame 0.
    pub virt_base: u64,
    /// Pages the domain has.
    pub nr_pages: u64,
    /// First frame after the kernel.
    pub kernel_end_pfn: u64,
    /// First frame of the P2M list.
    pub p2m_pfn: u64,
    /// Frames of the P2M list.
    pub p2m_pages: u64,
    /// `start_info`.
    pub start_info_pfn: u64,
    /// XenStore ring.
    pub xenstore_pfn: u64,
    /// Console ring.
    pub console_pfn: u64,
    /// First page-table frame (the L4).
    pub pt_pfn: u64,
    /// Tables per level, [L4, L3, L2, L1].
    pub tables: [u64; 4],
    /// Page-table frames (sum of `tables`).
    pub nr_pt: u64,
    /// Boot stack page.
    pub stack_pfn: u64,
    /// Frames mapped from `virt_base` (end of the 4 MiB-aligned region).
    pub mapped_pages: u64,
}

impl Layout {
    /// Lays out a domain of `nr_pages` pages for `kernel`.
    pub fn new(kernel: &Kernel, nr_pages: u64) -> Result<Layout, Error> {
        let vb = kernel.virt_base;
        if vb & (PAGE - 1) != 0 || kernel.virt_kend < vb {
            return Err(Error::BadAddress);
        }
        let kernel_end_pfn = (kernel.virt_kend - vb).div_ceil(PAGE);
        let p2m_pfn = kernel_end_pfn;
        let p2m_pages = (nr_pages * 8).div_ceil(PAGE);
        let start_info_pfn = p2m_pfn + p2m_pages;
        let xenstore_pfn = start_info_pfn + 1;
        let console_pfn = xenstore_pfn + 1;
        let pt_pfn = console_pfn + 1;
        // Grow the page tables until they map the region that holds them (libxc's
        // count_pgtables loop).
        let mut nr_pt = 1;
        let (tables, stack_pfn, mapped_pages) = loop {
            let stack_pfn = pt_pfn + nr_pt;
            let boot_end = stack_pfn + 1;
            // At least 512 KiB of padding, to the next 4 MiB boundary (1024 pages).
            let mapped_pages = (boot_end + 128).div_ceil(1024) * 1024;
            let end = mapped_pages
                .checked_mul(PAGE)
                .and_then(|b| vb.checked_add(b))
                .ok_or(Error::BadAddress)?;
            let tables = count_tables(vb, end);
            let need: u64 = tables.iter().sum();
            if need <= nr_pt {
                break (tables, stack_pfn, mapped_pages);
            }
            nr_pt = need;
        };
        // Keep clear of the hypervisor's area and the non-canonical hole.
        let end = vb + mapped_pages * PAGE;
        if (vb < 0xFFFF_8800_0000_0000 && end > 0x0000_8000_0000_0000) || end - 1 < vb {
            return Err(Error::BadAddress);
        }
        if mapped_pages > nr_pages {
            return Err(Error::TooSmall {
                need: mapped_pages,
                have: nr_pages,
            });
        }
        Ok(Layout {
            virt_base: vb,
            nr_pages,
            kernel_end_pfn,
            p2m_pfn,
            p2m_pages,
            start_info_pfn,
            xenstore_pfn,
            console_pfn,
            pt_pfn,
            tables,
            nr_pt,
            stack_pfn,
            mapped_pages,
        })
    }

    /// Virtual address of frame `pfn`.
    pub fn va(&self, pfn: u64) -> u64 {
        self.virt_base + pfn * PAGE
    }

    /// Frame of the first table of `level` (4..=1).
    fn first_table(&self, level: usize) -> u64 {
        let [l4, l3, l2, _] = self.tables;
        self.pt_pfn
            + match level {
                4 => 0,
                3 => l4,
                2 => l4 + l3,
                _ => l4 + l3 + l2,
            }
    }

    /// Whether `pfn` is a page-table frame (mapped read-only).
    pub fn is_pt(&self, pfn: u64) -> bool {
        pfn >= self.pt_pfn && pfn < self.pt_pfn + self.nr_pt
    }

    /// The contents of page-table frame `pt_pfn + index`, entries holding
    /// `mfn_of(pfn)`. `None` if `index` is past the tables.
    pub fn table(&self, index: u64, mfn_of: &dyn Fn(u64) -> u64) -> Option<[u64; 512]> {
        let pfn = self.pt_pfn + index;
        if !self.is_pt(pfn) {
            return None;
        }
        let mut t = [0u64; 512];
        let level = (1..=4usize)
            .rev()
            .find(|&l| pfn >= self.first_table(l) && (l == 1 || pfn < self.first_table(l - 1)))?;
        let nth = pfn - self.first_table(level);
        let start = self.virt_base;
        let end = self.virt_base + self.mapped_pages * PAGE;
        // Each table of `level` covers `span` bytes; the n-th one covers the n-th
        // span-aligned block touching [start, end).
        let shift = 12 + 9 * level as u32;
        let block = ((start >> shift) + nth) << shift;
        let child_shift = shift - 9;
        for (i, e) in t.iter_mut().enumerate() {
            let va = block.wrapping_add((i as u64) << child_shift);
            let va = if level == 4 && i >= 256 {
                // Sign-extend the upper half.
                va | 0xFFFF_0000_0000_0000
            } else {
                va
            };
            if va < start & !((1u64 << child_shift) - 1) || va >= end {
                continue;
            }
            if level == 1 {
                let p = (va - start) / PAGE;
                let flags = if self.is_pt(p) {
                    PTE_RO_FLAGS
                } else {
                    PTE_RW_FLAGS
                };
                *e = (mfn_of(p) << 12) | flags;
            } else {
                let child_nth = (va >> child_shift) - (start >> child_shift);
                let child = self.first_table(level - 1) + child_nth;
                *e = (mfn_of(child) << 12) | PTE_RW_FLAGS;
            }
        }
        Some(t)
    }

    /// `start_info` for the new domain.
    #[allow(clippy::too_many_arguments)]
    pub fn start_info(
        &self,
        shared_info_maddr: u64,
        store_mfn: u64,
        store_evtchn: u32,
        console_mfn: u64,
        console_evtchn: u32,
        cmdline: &str,
    ) -> StartInfo {
        let mut si = StartInfo {
            magic: [0; 32],
            nr_pages: self.nr_pages,
            shared_info: shared_info_maddr,
            flags: 0,
            _pad0: 0,
            store_mfn,
            store_evtchn,
            _pad1: 0,
            console_mfn,
            console_evtchn,
            _pad2: 0,
            pt_base: self.va(self.pt_pfn),
            nr_pt_frames: self.nr_pt,
            mfn_list: self.va(self.p2m_pfn),
            mod_start: 0,
            mod_len: 0,
            cmd_line: [0; xen_abi::xen::MAX_GUEST_CMDLINE],
            first_p2m_pfn: 0,
            nr_p2m_frames: 0,
        };
        let magic = b"xen-3.0-x86_64";
        si.magic[..magic.len()].copy_from_slice(magic);
        // Truncated to leave the NUL, as libxc's strncpy + explicit NUL.
        let n = cmdline.len().min(si.cmd_line.len() - 1);
        if let (Some(d), Some(s)) = (si.cmd_line.get_mut(..n), cmdline.as_bytes().get(..n)) {
            d.copy_from_slice(s);
        }
        si
    }

    /// The boot vCPU's context (libxc's `vcpu_x86_64`): `l4_mfn` is the pinned L4.
    pub fn vcpu_context(&self, entry: u64, l4_mfn: u64) -> VcpuGuestContext {
        // SAFETY-free zero init: every field is an integer or array of integers.
        let mut c = VcpuGuestContext::ZERO;
        c.flags = VGCF_IN_KERNEL | VGCF_ONLINE;
        c.user_regs.rip = entry;
        c.user_regs.rsp = self.va(self.stack_pfn + 1);
        c.user_regs.rsi = self.va(self.start_info_pfn);
        c.user_regs.rflags = 1 << 9;
        c.user_regs.cs = FLAT_KERNEL_CS;
        c.user_regs.ss = FLAT_KERNEL_SS;
        c.kernel_ss = u64::from(FLAT_KERNEL_SS);
        c.kernel_sp = c.user_regs.rsp;
        c.ctrlreg[3] = xen_abi::xen::xen_pfn_to_cr3(l4_mfn);
        c
    }
}

/// The P2M page `index`: entries `512*index ..` of `mfns` (zero past its end).
pub fn p2m_page(mfns: &[u64], index: u64) -> [u64; 512] {
    let mut p = [0u64; 512];
    let start = (index as usize).saturating_mul(512);
    if let Some(src) = mfns.get(start..) {
        for (d, s) in p.iter_mut().zip(src) {
            *d = *s;
        }
    }
    p
}

/// A page worth of bytes of segment data: for the kernel frame `pfn`, the bytes that go
/// at each offset, from the ELF `img` (zero where nothing is loaded).
pub fn kernel_page(kernel: &Kernel, img: &[u8], pfn: u64, out: &mut [u8; 4096]) {
    out.fill(0);
    let page_va = kernel.virt_base.wrapping_add(pfn * PAGE);
    for s in &kernel.segments {
        let seg_va = kernel.load_addr(s);
        // File bytes of this segment: [seg_va, seg_va + filesz).
        let lo = seg_va.max(page_va);
        let hi = seg_va.saturating_add(s.filesz).min(page_va + PAGE);
        if lo >= hi {
            continue;
        }
        let src_off = s.offset + (lo - seg_va);
        let (Some(src), Some(dst)) = (
            crate::elf::range(img, src_off, hi - lo),
            out.get_mut((lo - page_va) as usize..(hi - page_va) as usize),
        ) else {
            continue;
        };
        dst.copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf;

    fn kernel(text: usize, bss: u64) -> (Vec<u8>, Kernel) {
        let img = elf::tests::sample(text, bss);
        let k = elf::parse(&img).unwrap();
        (img, k)
    }

    #[test]
    fn small_domain_layout() {
        let (_, k) = kernel(0x2345, 0x5000);
        let l = Layout::new(&k, 8192).unwrap();
        assert_eq!(l.kernel_end_pfn, 8);
        assert_eq!(l.p2m_pfn, 8);
        assert_eq!(l.p2m_pages, 16);
        assert_eq!(l.start_info_pfn, 24);
        assert_eq!((l.xenstore_pfn, l.console_pfn, l.pt_pfn), (25, 26, 27));
        // 4 MiB mapped at 0xffffffff80000000: one L4, L3, L2 and two L1s.
        assert_eq!(l.tables, [1, 1, 1, 2]);
        assert_eq!(l.nr_pt, 5);
        assert_eq!(l.stack_pfn, 32);
        assert_eq!(l.mapped_pages, 1024);
        assert!(l.mapped_pages - (l.stack_pfn + 1) >= 128);
    }

    #[test]
    fn too_small_and_big() {
        let (_, k) = kernel(0x1800, 0);
        assert!(matches!(Layout::new(&k, 512), Err(Error::TooSmall { .. })));
        // 1 GiB: P2M of 512 pages pushes the region past 4 MiB.
        let l = Layout::new(&k, 262_144).unwrap();
        assert_eq!(l.p2m_pages, 512);
        assert_eq!(l.mapped_pages, 1024);
        let l = Layout::new(&k, 1 << 20).unwrap();
        assert_eq!(l.p2m_pages, 2048);
        assert_eq!(l.mapped_pages, 3072);
        assert_eq!(l.tables, [1, 1, 1, 6]);
    }

    #[test]
    fn tables_map_the_region() {
        let (_, k) = kernel(0x2345, 0x5000);
        let l = Layout::new(&k, 8192).unwrap();
        let mfn_of = |pfn: u64| 0x10000 + pfn;
        // Walk every mapped page through the tables.
        let tables: Vec<[u64; 512]> = (0..l.nr_pt).map(|i| l.table(i, &mfn_of).unwrap()).collect();
        assert!(l.table(l.nr_pt, &mfn_of).is_none());
        let by_mfn = |mfn: u64| &tables[(mfn - 0x10000 - l.pt_pfn) as usize];
        let mut mapped = 0;
        for t in &tables {
            mapped += t.iter().filter(|&&e| e != 0).count();
        }
        // L4:1 + L3:1 + L2:2 + L1s:1024 entries.
        assert_eq!(mapped, 1 + 1 + 2 + 1024);
        for pfn in 0..l.mapped_pages + 5 {
            let va = l.va(pfn);
            let mut t = &tables[0];
            let mut ok = true;
            for level in (2..=4u32).rev() {
                let e = t[((va >> (12 + 9 * (level - 1))) & 511) as usize];
                if e == 0 {
                    ok = false;
                    break;
                }
                assert_eq!(e & 0xfff, PTE_RW_FLAGS);
                t = by_mfn(e >> 12);
            }
            let e = if ok {
                t[((va >> 12) & 511) as usize]
            } else {
                0
            };
            if pfn < l.mapped_pages {
                assert_eq!(e >> 12, 0x10000 + pfn, "pfn {pfn}");
                let ro = l.is_pt(pfn);
                assert_eq!(e & 0xfff, if ro { PTE_RO_FLAGS } else { PTE_RW_FLAGS });
            } else {
                assert_eq!(e, 0);
            }
        }
    }

    #[test]
    fn kernel_pages_copy_file_bytes() {
        let (img, k) = kernel(0x1800, 0x3000);
        let mut p = [0u8; 4096];
        kernel_page(&k, &img, 0, &mut p);
        assert_eq!(&p[..], &img[0x1000..0x2000]);
        kernel_page(&k, &img, 1, &mut p);
        assert_eq!(&p[..0x800], &img[0x2000..0x2800]);
        assert!(p[0x800..].iter().all(|&b| b == 0));
        kernel_page(&k, &img, 2, &mut p);
        assert!(p.iter().all(|&b| b == 0));
    }

    #[test]
    fn start_info_and_context() {
        let (_, k) = kernel(0x1800, 0);
        let l = Layout::new(&k, 4096).unwrap();
        let si = l.start_info(0x1234000, 0x55, 2, 0x66, 1, "console=hvc0 x");
        assert_eq!(&si.magic[..15], b"xen-3.0-x86_64\0");
        assert_eq!(si.pt_base, l.va(l.pt_pfn));
        assert_eq!(si.mfn_list, l.va(l.p2m_pfn));
        assert_eq!(&si.cmd_line[..15], b"console=hvc0 x\0");
        let long = "a".repeat(5000);
        let si = l.start_info(0, 0, 0, 0, 0, &long);
        assert_eq!(si.cmd_line[1023], 0);
        let c = l.vcpu_context(k.virt_entry, 0x999);
        assert_eq!(c.ctrlreg[3], 0x999000);
        assert_eq!(c.user_regs.rsi, l.va(l.start_info_pfn));
        assert_eq!(c.user_regs.rsp, l.va(l.stack_pfn + 1));
        assert_eq!(p2m_page(&[1, 2, 3], 0)[..4], [1, 2, 3, 0]);
        assert_eq!(p2m_page(&[1, 2, 3], 1)[0], 0);
    }
}
