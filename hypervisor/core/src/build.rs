//! dom0's start-of-day layout, boot page tables and hypercall page, as Xen 4.17 builds them.
//!
//! Pure policy for the mechanism's dom0 builder, following `dom0_construct_pv`
//! (`xen/arch/x86/pv/dom0_build.c`) and the "Start-of-day memory layout" comment of
//! `xen/xen.h`. The flow is decode-then-perform (STYLE.md item 6):
//!
//! 1. [`crate::elf::parse_kernel`] validates the image;
//! 2. [`compute_layout`] decides every address and frame, or refuses (nothing allocated);
//! 3. [`check_p2m`] validates the pfn-to-mfn list the mechanism allocated;
//! 4. the `perform` side is infallible: [`for_each_table_frame`] (frames to zero and type),
//!    [`generate_page_tables`] (entries to write), [`hypercall_page`], [`StartInfoFields`].
//!
//! Pseudo-physical layout (identical to Xen): the initial mapping `[v_start, v_end)` is
//! backed by pfns `0..(v_end - v_start) / 4096` in order (pfn = (va - v_start) / 4096);
//! the rest of the initial power-of-two allocation follows, then the initrd when it is
//! not mapped (`MOD_START_PFN`), then, with `INIT_P2M`, the p2m list and its page tables
//! from [`Dom0Layout::first_p2m_pfn`], then the rest up to `nr_pages`.
//!
//! Not reproduced from Xen: it maps a large `INIT_P2M` list with 2 MiB / 1 GiB pages when
//! aligned and at least that big (dom0 of 1 GiB or more); we always use 4 KiB pages, since
//! the p2m we are given need not be contiguous. So `nr_p2m_frames` differs from Xen's for
//! such a dom0 (more L1 frames), and nothing else does.

use crate::elf::KernelInfo;

/// Bytes in a page.
pub const PAGE_SIZE: u64 = 4096;
/// `sizeof(struct start_info)` on x86_64.
pub const START_INFO_SIZE: u64 = 1168;
/// `sizeof(struct dom0_vga_console_info)`: Xen reserves it after `start_info` for dom0.
pub const DOM0_VGA_CONSOLE_INFO_SIZE: u64 = 40;
/// First address of the hypervisor's reserved range (L4 slot 256).
pub const HYPERVISOR_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
/// End of the hypervisor's reserved range (L4 slot 272).
pub const HYPERVISOR_VIRT_END: u64 = 0xFFFF_8800_0000_0000;
/// L4 slots the hypervisor fills itself in every guest L4 (`256..272`); never written here.
pub const HYPERVISOR_L4_SLOTS: core::ops::Range<usize> = 256..272;

/// `start_info.flags`: `SIF_PRIVILEGED`.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `start_info.flags`: `SIF_INITDOMAIN`.
pub const SIF_INITDOMAIN: u32 = 1 << 1;
/// `start_info.flags`: `SIF_MOD_START_PFN`.
pub const SIF_MOD_START_PFN: u32 = 1 << 3;
/// `start_info.flags`: `SIF_PM_MASK`.
pub const SIF_PM_MASK: u32 = 0xFF << 8;

const PTE_PRESENT: u64 = 1 << 0;
const PTE_RW: u64 = 1 << 1;
const PTE_USER: u64 = 1 << 2;
const PTE_ACCESSED: u64 = 1 << 5;
const PTE_DIRTY: u64 = 1 << 6;
/// Xen's `_PAGE_GUEST_KERNEL` software bit (flag bit 12, PTE bit 52), which Xen sets in
/// every L1 entry of dom0's boot tables (seen in guest-visible entries on real Xen).
pub const PTE_GUEST_KERNEL: u64 = 1 << 52;
/// Xen's `L1_PROT`: present, RW, accessed, user (PV kernels run in ring 3).
pub const L1_PROT: u64 = PTE_PRESENT | PTE_RW | PTE_ACCESSED | PTE_USER | PTE_GUEST_KERNEL;
/// `L1_PROT` without RW: how the page-table frames themselves are mapped.
pub const L1_PROT_RO: u64 = L1_PROT & !PTE_RW;
/// L1 entries of `INIT_P2M` data pages (`L1_PROT | _PAGE_DIRTY`).
pub const L1_PROT_P2M: u64 = L1_PROT | PTE_DIRTY;
/// Xen's `L2_PROT`, `L3_PROT`, `L4_PROT`: present, RW, accessed, dirty, user.
pub const UPPER_PROT: u64 = PTE_PRESENT | PTE_RW | PTE_ACCESSED | PTE_USER | PTE_DIRTY;
/// Largest machine frame number a PTE can hold (40-bit pfn field).
pub const MAX_MFN: u64 = (1 << 40) - 1;

const L2_SHIFT: u32 = 21;
const L3_SHIFT: u32 = 30;
const L4_SHIFT: u32 = 39;
const SZ_4M: u64 = 1 << 22;
const SZ_512K: u64 = 512 << 10;
/// Bottom of the upper canonical half.
const UPPER_HALF: u64 = 0xFFFF_8000_0000_0000;
/// End of the lower canonical half.
const LOWER_HALF_END: u64 = 0x0000_8000_0000_0000;

/// Why dom0 cannot be built with this kernel and memory size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// An address computation overflowed (kernel, initrd or p2m too large or too high).
    AddressOverflow,
    /// "Domain 0 allocation is too small for kernel image".
    TooSmallForKernel,
    /// "Dom0 allocation too small for initial P->M table".
    TooSmallForP2m,
    /// "DOM0 image overlaps with Xen private area" (or the `INIT_P2M` list does).
    OverlapsHypervisor,
    /// The initial mapping or the p2m list is not canonical.
    NonCanonical,
    /// "DOM0 P->M table overlaps initial mapping".
    P2mOverlapsInitialMapping,
    /// "Invalid HYPERCALL_PAGE field in ELF notes" (outside the kernel or unaligned).
    BadHypercallPage,
    /// The p2m list is shorter than `nr_pages`.
    P2mTooShort,
    /// `pfn`'s mfn does not fit in a PTE.
    BadMfn { pfn: u64 },
}

impl BuildError {
    /// A line for the hypervisor's log.
    pub fn describe(&self) -> &'static str {
        match self {
            BuildError::AddressOverflow => {
                "the kernel, ramdisk or p2m list is too large or too high"
            }
            BuildError::TooSmallForKernel => "dom0's memory is too small for the kernel image",
            BuildError::TooSmallForP2m => "dom0's memory is too small for the initial p2m table",
            BuildError::OverlapsHypervisor => "the dom0 image overlaps the hypervisor's area",
            BuildError::NonCanonical => "the initial mapping or p2m list is not canonical",
            BuildError::P2mOverlapsInitialMapping => "the p2m list overlaps the initial mapping",
            BuildError::BadHypercallPage => "invalid HYPERCALL_PAGE in the ELF notes",
            BuildError::P2mTooShort => "the p2m list is shorter than dom0's memory",
            BuildError::BadMfn { .. } => "a frame of dom0 does not fit in a page-table entry",
        }
    }
}

/// A virtual range `[start, end)`; empty when `start == end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VRange {
    pub start: u64,
    pub end: u64,
}

/// Where everything goes: what Xen prints as "VIRTUAL MEMORY ARRANGEMENT", plus the
/// pseudo-physical facts derived from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dom0Layout {
    /// "TOTAL": the initial mapping, `[virt_base, 4 MiB-aligned end with >= 512 KiB pad)`.
    pub v_start: u64,
    pub v_end: u64,
    /// "Loaded kernel".
    pub kernel: VRange,
    /// "Init. ramdisk" (empty when there is none or it is not mapped).
    pub initrd: VRange,
    /// "Phys-Mach map" (`start_info.mfn_list`); outside `[v_start, v_end)` with `INIT_P2M`.
    pub p2m: VRange,
    /// "Start info" (the `start_info` plus the dom0 VGA console info after it).
    pub start_info: VRange,
    /// "Page tables" (`pt_base`).
    pub page_tables: VRange,
    /// "Boot stack" (`rsp` = `stack.end`).
    pub stack: VRange,
    /// `nr_pt_frames`: page-table frames of the initial mapping.
    pub nr_pt_frames: u64,
    /// Pages dom0 owns in total.
    pub nr_pages: u64,
    /// Initrd length in bytes (0 if none).
    pub initrd_len: u64,
    /// First pfn of the initrd (mapped: inside the initial mapping; unmapped: after the
    /// initial allocation), if there is one.
    pub initrd_pfn: Option<u64>,
    /// Xen's first allocation: `2^order` pages covering the initial mapping minus the initrd.
    pub initial_alloc_pages: u64,
    /// `start_info.first_p2m_pfn`: first pfn after the initial allocation and the initrd.
    pub first_p2m_pfn: u64,
    /// `start_info.nr_p2m_frames`: p2m pages and their page tables (`INIT_P2M` only).
    pub nr_p2m_frames: u64,
    /// Whether the p2m list is mapped separately at the `INIT_P2M` address.
    pub p2m_separate: bool,
    /// `rip` at start of day.
    pub entry: u64,
    /// Where to copy [`hypercall_page`], if the kernel asked for one.
    pub hypercall_page: Option<u64>,
}

/// The registers dom0's vCPU 0 starts with (others zero; CS/SS/DS are the flat kernel
/// selectors, `rflags` = IF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitialRegs {
    pub rip: u64,
    pub rsp: u64,
    pub rsi: u64,
}

fn round_up(x: u64, a: u64) -> Option<u64> {
    Some(x.checked_add(a - 1)? & !(a - 1))
}

fn pages(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE_SIZE)
}

/// Number of `1 << shift` blocks touched by `[lo, hi)` (Xen's `NR()` macro).
fn nr_blocks(lo: u64, hi: u64, shift: u32) -> Option<u64> {
    let mask = (1u64 << shift) - 1;
    let hi_up = (u128::from(hi) + u128::from(mask)) & !u128::from(mask);
    Some(((hi_up - u128::from(lo & !mask)) >> shift) as u64)
}

/// Whether `[start, end)` lies in one canonical half.
fn canonical(start: u64, end: u64) -> bool {
    start <= end && (end <= LOWER_HALF_END || start >= UPPER_HALF)
}

fn overlaps_hypervisor(start: u64, end: u64) -> bool {
    start < HYPERVISOR_VIRT_END && end > HYPERVISOR_VIRT_START
}

/// Computes dom0's layout as `dom0_construct_pv` does, for `nr_pages` pages of memory and
/// an initrd of `initrd_len` bytes (0 for none). The vCPU count does not enter it (Xen's
/// neither). Refuses what Xen refuses (panics, for most of these).
pub fn compute_layout(
    info: &KernelInfo,
    nr_pages: u64,
    initrd_len: u64,
) -> Result<Dom0Layout, BuildError> {
    use BuildError::AddressOverflow as Ovf;
    let v_start = info.virt_base;
    let kernel = VRange {
        start: info.virt_kstart,
        end: info.virt_kend,
    };
    let kend_up = round_up(kernel.end, PAGE_SIZE).ok_or(Ovf)?;
    let (initrd, vphysmap_start) = if info.unmapped_initrd {
        (VRange { start: 0, end: 0 }, kend_up)
    } else {
        let end = kend_up.checked_add(initrd_len).ok_or(Ovf)?;
        (
            VRange {
                start: kend_up,
                end,
            },
            round_up(end, PAGE_SIZE).ok_or(Ovf)?,
        )
    };
    let p2m_bytes = nr_pages.checked_mul(8).ok_or(Ovf)?;
    let vphysmap_end = if info.p2m_base.is_some() {
        vphysmap_start
    } else {
        vphysmap_start.checked_add(p2m_bytes).ok_or(Ovf)?
    };
    let si_start = round_up(vphysmap_end, PAGE_SIZE).ok_or(Ovf)?;
    let si_end = si_start.checked_add(START_INFO_SIZE).ok_or(Ovf)?;
    let vpt_start = round_up(si_end, PAGE_SIZE).ok_or(Ovf)?;
    let start_info = VRange {
        start: si_start,
        end: si_end + DOM0_VGA_CONSOLE_INFO_SIZE,
    };

    // The simultaneous equations, solved by Xen's exhaustive search.
    let mut nr_pt: u64 = 2;
    let (vpt_end, v_end) = loop {
        let vpt_end = nr_pt
            .checked_mul(PAGE_SIZE)
            .and_then(|b| vpt_start.checked_add(b))
            .ok_or(Ovf)?;
        let vstack_end = vpt_end.checked_add(PAGE_SIZE).ok_or(Ovf)?;
        let mut v_end = round_up(vstack_end, SZ_4M).ok_or(Ovf)?;
        if v_end - vstack_end < SZ_512K {
            v_end = v_end.checked_add(SZ_4M).ok_or(Ovf)?;
        }
        let need = 1
            + nr_blocks(v_start, v_end, L4_SHIFT).ok_or(Ovf)?
            + nr_blocks(v_start, v_end, L3_SHIFT).ok_or(Ovf)?
            + nr_blocks(v_start, v_end, L2_SHIFT).ok_or(Ovf)?;
        if need <= nr_pt {
            break (vpt_end, v_end);
        }
        nr_pt += 1;
    };

    if !canonical(v_start, v_end) {
        return Err(BuildError::NonCanonical);
    }
    if overlaps_hypervisor(v_start, v_end) {
        return Err(BuildError::OverlapsHypervisor);
    }

    // The first allocation: 2^order pages for the mapping minus the (separately
    // allocated) initrd.
    let initrd_pages = pages(initrd_len);
    let mut count = v_end - v_start;
    if !info.unmapped_initrd {
        count -= initrd_pages * PAGE_SIZE;
    }
    let alloc_pages = pages(count).checked_next_power_of_two().ok_or(Ovf)?;
    if alloc_pages.checked_add(initrd_pages).ok_or(Ovf)? > nr_pages {
        return Err(BuildError::TooSmallForKernel);
    }
    let first_p2m_pfn = alloc_pages + initrd_pages;
    let initrd_pfn = match (initrd_len, info.unmapped_initrd) {
        (0, _) => None,
        (_, false) => Some((initrd.start - v_start) / PAGE_SIZE),
        (_, true) => Some(alloc_pages),
    };

    let (p2m, p2m_separate) = match info.p2m_base {
        Some(base) => {
            let end = base.checked_add(p2m_bytes).ok_or(Ovf)?;
            (VRange { start: base, end }, true)
        }
        None => (
            VRange {
                start: vphysmap_start,
                end: vphysmap_end,
            },
            false,
        ),
    };

    let mut layout = Dom0Layout {
        v_start,
        v_end,
        kernel,
        initrd,
        p2m,
        start_info,
        page_tables: VRange {
            start: vpt_start,
            end: vpt_end,
        },
        stack: VRange {
            start: vpt_end,
            end: vpt_end + PAGE_SIZE,
        },
        nr_pt_frames: nr_pt,
        nr_pages,
        initrd_len,
        initrd_pfn,
        initial_alloc_pages: alloc_pages,
        first_p2m_pfn,
        nr_p2m_frames: 0,
        p2m_separate,
        entry: info.virt_entry,
        hypercall_page: info.virt_hypercall,
    };

    if let Some(hc) = info.virt_hypercall {
        // Xen only checks [v_start, v_end) and writes 4 KiB there; we also insist on a
        // page-aligned page inside the kernel, so it cannot land on our own structures.
        if hc % PAGE_SIZE != 0 || hc < kernel.start || hc >= kend_up {
            return Err(BuildError::BadHypercallPage);
        }
    }

    if p2m_separate {
        // setup_pv_physmap's checks.
        if v_start <= p2m.end && p2m.start <= v_end {
            return Err(BuildError::P2mOverlapsInitialMapping);
        }
        let p2m_end_up = round_up(p2m.end, PAGE_SIZE).ok_or(Ovf)?;
        if !canonical(p2m.start, p2m_end_up) {
            return Err(BuildError::NonCanonical);
        }
        if overlaps_hypervisor(p2m.start, p2m_end_up) {
            return Err(BuildError::OverlapsHypervisor);
        }
        let mut frames = 0u64;
        let mut ok = true;
        walk_p2m(&layout, |step| {
            if let P2mStep::Check { remaining } = step {
                // d->tot_pages + remaining + 3 > nr_pages → panic.
                if first_p2m_pfn + frames + remaining + 3 > nr_pages {
                    ok = false;
                }
            } else {
                frames += 1;
            }
        });
        if !ok {
            return Err(BuildError::TooSmallForP2m);
        }
        layout.nr_p2m_frames = frames;
    }
    Ok(layout)
}

impl Dom0Layout {
    /// The pfn backing `va` in the initial mapping, if it is inside it.
    pub fn pfn_of(&self, va: u64) -> Option<u64> {
        (va >= self.v_start && va < self.v_end).then(|| (va - self.v_start) / PAGE_SIZE)
    }

    /// Pages of the initial mapping (`(v_end - v_start) / 4096`): pfns `0..this`.
    pub fn initial_mapping_pages(&self) -> u64 {
        (self.v_end - self.v_start) / PAGE_SIZE
    }

    /// First pfn of the page-table frames (`pt_base`'s pfn); the L4 is this frame.
    pub fn pt_pfn(&self) -> u64 {
        (self.page_tables.start - self.v_start) / PAGE_SIZE
    }

    /// The pfns that must be mapped read-only (the initial page-table frames).
    pub fn read_only_pfns(&self) -> core::ops::Range<u64> {
        self.pt_pfn()..self.pt_pfn() + self.nr_pt_frames
    }

    /// The initial register values of vCPU 0.
    pub fn initial_regs(&self) -> InitialRegs {
        InitialRegs {
            rip: self.entry,
            rsp: self.stack.end,
            rsi: self.start_info.start,
        }
    }

    /// The `start_info` values this layout decides. `pm_bits` is Xen's
    /// `xen_processor_pmbits` (it reports 3 = Cx|Px when dom0 controls power management).
    pub fn start_info_fields(&self, pm_bits: u8) -> StartInfoFields {
        let mut magic = [0u8; 32];
        if let Some(m) = magic.get_mut(..14) {
            m.copy_from_slice(b"xen-3.0-x86_64");
        }
        let mut flags = SIF_PRIVILEGED | SIF_INITDOMAIN | ((u32::from(pm_bits) << 8) & SIF_PM_MASK);
        let (mut mod_start, mut mod_len) = (0, 0);
        if self.initrd_len != 0 {
            mod_len = self.initrd_len;
            if self.initrd.start != 0 {
                mod_start = self.initrd.start;
            } else {
                flags |= SIF_MOD_START_PFN;
                mod_start = self.initrd_pfn.unwrap_or(0);
            }
        }
        StartInfoFields {
            magic,
            nr_pages: self.nr_pages,
            flags,
            pt_base: self.page_tables.start,
            nr_pt_frames: self.nr_pt_frames,
            mfn_list: self.p2m.start,
            mod_start,
            mod_len,
            first_p2m_pfn: self.first_p2m_pfn,
            nr_p2m_frames: self.nr_p2m_frames,
        }
    }

    // --- the initial mapping's table frames, in Xen's allocation order ---
    // Frame 0 is the L4; then for each 2 MiB chunk of [v_start, v_end): its L1, then a
    // new L2 if the chunk starts a new 1 GiB (or is the first), then a new L3 if it starts
    // a new 512 GiB (or is the first).

    fn c0(&self) -> u64 {
        self.v_start >> L2_SHIFT
    }
    fn c_last(&self) -> u64 {
        (self.v_end - 1) >> L2_SHIFT
    }
    /// Index (from `pt_pfn`) of the L1 of chunk `c`.
    fn l1_index(&self, c: u64) -> u64 {
        let c0 = self.c0();
        if c == c0 {
            return 1;
        }
        let prev = c - 1;
        let n2 = (prev >> 9) - (c0 >> 9) + 1;
        let n3 = (prev >> 18) - (c0 >> 18) + 1;
        1 + (c - c0) + n2 + n3
    }
    /// The initial table of `level` (1..=4) covering `va`, if the initial mapping has one.
    fn initial_table(&self, level: u8, va: u64) -> Option<u64> {
        let (c0, cl) = (self.c0(), self.c_last());
        let base = self.pt_pfn();
        match level {
            4 => Some(base),
            3 => {
                let s = va >> L4_SHIFT;
                (s >= c0 >> 18 && s <= cl >> 18).then(|| base + self.l1_index(c0.max(s << 18)) + 2)
            }
            2 => {
                let g = va >> L3_SHIFT;
                (g >= c0 >> 9 && g <= cl >> 9).then(|| base + self.l1_index(c0.max(g << 9)) + 1)
            }
            _ => {
                let c = va >> L2_SHIFT;
                (c >= c0 && c <= cl).then(|| base + self.l1_index(c))
            }
        }
    }
}

/// The `start_info` fields the layout decides; the mechanism adds `shared_info` (machine
/// address), `store_*`/`console` and the command line ([`start_info_cmdline`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfoFields {
    /// "xen-3.0-x86_64", NUL-padded.
    pub magic: [u8; 32],
    pub nr_pages: u64,
    /// `SIF_PRIVILEGED | SIF_INITDOMAIN` (+ `SIF_MOD_START_PFN`, + pm bits).
    pub flags: u32,
    pub pt_base: u64,
    pub nr_pt_frames: u64,
    pub mfn_list: u64,
    pub mod_start: u64,
    pub mod_len: u64,
    pub first_p2m_pfn: u64,
    pub nr_p2m_frames: u64,
}

/// `start_info.cmd_line`: `cmdline` truncated to 1023 bytes and NUL-padded (`strlcpy`).
pub fn start_info_cmdline(cmdline: &[u8]) -> [u8; 1024] {
    let mut out = [0u8; 1024];
    let n = cmdline
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(cmdline.len())
        .min(1023);
    if let (Some(d), Some(s)) = (out.get_mut(..n), cmdline.get(..n)) {
        d.copy_from_slice(s);
    }
    out
}

/// A page-table frame the mechanism must zero and give the page type `level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFrame {
    pub pfn: u64,
    /// 4 = L4 (pin it), 3, 2, 1.
    pub level: u8,
    /// Part of the initial mapping's tables (mapped read-only), or of the separate
    /// `INIT_P2M` mapping (not mapped at all).
    pub initial: bool,
}

/// One entry to write: `table[index] = value` in the frame of pfn `table_pfn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PteWrite {
    pub table_pfn: u64,
    pub index: u16,
    pub value: u64,
}

enum P2mStep {
    /// Before each p2m page: Xen's memory check (pages of the list still to map).
    Check { remaining: u64 },
    /// A new table of `level`, entry `index` of `parent` to point at it.
    Table {
        pfn: u64,
        level: u8,
        parent: u64,
        index: u16,
    },
    /// A p2m data page at `va`.
    Data { pfn: u64, l1: u64, index: u16 },
}

fn idx(va: u64, shift: u32) -> u16 {
    ((va >> shift) & 511) as u16
}

/// `setup_pv_physmap`'s walk, with 4 KiB pages only (see the module docs).
fn walk_p2m(l: &Dom0Layout, mut f: impl FnMut(P2mStep)) {
    let mut next = l.first_p2m_pfn;
    let end = l.p2m.end.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let mut va = l.p2m.start & !(PAGE_SIZE - 1);
    // Tables allocated here, keyed by the address bits they cover.
    let mut l3: Option<(u64, u64)> = None;
    let mut l2: Option<(u64, u64)> = None;
    let mut l1: Option<(u64, u64)> = None;
    let l4 = l.pt_pfn();
    while va < end {
        f(P2mStep::Check {
            remaining: (end - va) / PAGE_SIZE,
        });
        let k3 = va >> L4_SHIFT;
        let t3 = match (l.initial_table(3, va), l3) {
            (Some(t), _) => t,
            (None, Some((k, t))) if k == k3 => t,
            _ => {
                let t = next;
                next += 1;
                f(P2mStep::Table {
                    pfn: t,
                    level: 3,
                    parent: l4,
                    index: idx(va, L4_SHIFT),
                });
                l3 = Some((k3, t));
                t
            }
        };
        let k2 = va >> L3_SHIFT;
        let t2 = match (l.initial_table(2, va), l2) {
            (Some(t), _) => t,
            (None, Some((k, t))) if k == k2 => t,
            _ => {
                let t = next;
                next += 1;
                f(P2mStep::Table {
                    pfn: t,
                    level: 2,
                    parent: t3,
                    index: idx(va, L3_SHIFT),
                });
                l2 = Some((k2, t));
                t
            }
        };
        let k1 = va >> L2_SHIFT;
        let t1 = match (l.initial_table(1, va), l1) {
            (Some(t), _) => t,
            (None, Some((k, t))) if k == k1 => t,
            _ => {
                let t = next;
                next += 1;
                f(P2mStep::Table {
                    pfn: t,
                    level: 1,
                    parent: t2,
                    index: idx(va, L3_SHIFT - 9),
                });
                l1 = Some((k1, t));
                t
            }
        };
        let pfn = next;
        next += 1;
        f(P2mStep::Data {
            pfn,
            l1: t1,
            index: idx(va, 12),
        });
        va += PAGE_SIZE;
    }
}

/// Visits every page-table frame of the boot tables, in Xen's allocation order: the
/// initial mapping's `nr_pt_frames` (pfns `pt_pfn()..`), then the `INIT_P2M` mapping's.
pub fn for_each_table_frame(l: &Dom0Layout, mut f: impl FnMut(TableFrame)) {
    let base = l.pt_pfn();
    f(TableFrame {
        pfn: base,
        level: 4,
        initial: true,
    });
    let (c0, cl) = (l.c0(), l.c_last());
    for c in c0..=cl {
        let i = l.l1_index(c);
        let frame = |off: u64, level| TableFrame {
            pfn: base + i + off,
            level,
            initial: true,
        };
        f(frame(0, 1));
        if c == c0 || c % 512 == 0 {
            f(frame(1, 2));
            if c == c0 || c % (512 * 512) == 0 {
                f(frame(2, 3));
            }
        }
    }
    if l.p2m_separate {
        walk_p2m(l, |s| {
            if let P2mStep::Table { pfn, level, .. } = s {
                f(TableFrame {
                    pfn,
                    level,
                    initial: false,
                })
            }
        });
    }
}

/// Checks the pfn-to-mfn list the mechanism allocated for dom0: at least `nr_pages`
/// entries, each a valid frame number. After this, [`generate_page_tables`] cannot fail.
pub fn check_p2m(l: &Dom0Layout, p2m: &[u64]) -> Result<(), BuildError> {
    let n = usize::try_from(l.nr_pages).map_err(|_| BuildError::P2mTooShort)?;
    let list = p2m.get(..n).ok_or(BuildError::P2mTooShort)?;
    match list.iter().position(|&m| m > MAX_MFN) {
        Some(pfn) => Err(BuildError::BadMfn { pfn: pfn as u64 }),
        None => Ok(()),
    }
}

/// Every entry of dom0's boot page tables, as `(table pfn, index, value)` writes into
/// frames the caller has zeroed (see [`for_each_table_frame`]). `p2m` maps pfn → mfn and
/// must have passed [`check_p2m`] (an unchecked short list yields entries for mfn 0).
///
/// All entries are user-accessible (the PV kernel runs in ring 3) and writable, except the
/// L1 entries mapping the initial page-table frames, which are read-only. L4 slots
/// [`HYPERVISOR_L4_SLOTS`] are never written: the hypervisor fills them with its own
/// entries (M2P, linear map...) after copying these.
pub fn generate_page_tables(l: &Dom0Layout, p2m: &[u64], mut emit: impl FnMut(PteWrite)) {
    let mfn = |pfn: u64| {
        usize::try_from(pfn)
            .ok()
            .and_then(|i| p2m.get(i))
            .copied()
            .unwrap_or(0)
    };
    let entry = |pfn: u64, prot: u64| (mfn(pfn) << 12) | prot;
    let ro = l.read_only_pfns();
    let mut va = l.v_start & !(PAGE_SIZE - 1);
    let mut pfn = 0u64;
    while va < l.v_end {
        let first = va == l.v_start;
        // initial_table() is Some for every va of the initial mapping.
        let t = |level| l.initial_table(level, va).unwrap_or(0);
        if first || va.is_multiple_of(1 << L2_SHIFT) {
            emit(PteWrite {
                table_pfn: t(2),
                index: idx(va, L2_SHIFT),
                value: entry(t(1), UPPER_PROT),
            });
            if first || va.is_multiple_of(1 << L3_SHIFT) {
                emit(PteWrite {
                    table_pfn: t(3),
                    index: idx(va, L3_SHIFT),
                    value: entry(t(2), UPPER_PROT),
                });
                if first || va.is_multiple_of(1 << L4_SHIFT) {
                    emit(PteWrite {
                        table_pfn: t(4),
                        index: idx(va, L4_SHIFT),
                        value: entry(t(3), UPPER_PROT),
                    });
                }
            }
        }
        let prot = if ro.contains(&pfn) {
            L1_PROT_RO
        } else {
            L1_PROT
        };
        emit(PteWrite {
            table_pfn: t(1),
            index: idx(va, 12),
            value: entry(pfn, prot),
        });
        pfn += 1;
        va += PAGE_SIZE;
    }
    if l.p2m_separate {
        walk_p2m(l, |s| match s {
            P2mStep::Table {
                pfn, parent, index, ..
            } => emit(PteWrite {
                table_pfn: parent,
                index,
                value: entry(pfn, UPPER_PROT),
            }),
            P2mStep::Data { pfn, l1, index } => emit(PteWrite {
                table_pfn: l1,
                index,
                value: entry(pfn, L1_PROT_P2M),
            }),
            P2mStep::Check { .. } => {}
        });
    }
}

/// Visits the pfns holding the p2m list, in list order (page `i` of the list holds entries
/// `512*i..512*i+512`): inside the initial mapping, or the `INIT_P2M` data pages.
pub fn for_each_p2m_page(l: &Dom0Layout, mut f: impl FnMut(u64)) {
    if l.p2m_separate {
        walk_p2m(l, |s| {
            if let P2mStep::Data { pfn, .. } = s {
                f(pfn)
            }
        });
    } else {
        let first = (l.p2m.start - l.v_start) / PAGE_SIZE;
        for i in 0..pages(l.p2m.end - l.p2m.start) {
            f(first + i);
        }
    }
}

/// The hypercall page Xen writes for a 64-bit PV guest (`pv_ring3_init_hypercall_page`):
/// 128 stubs of 32 bytes, `push %rcx; push %r11; mov $nr,%eax; syscall; pop %r11;
/// pop %rcx; ret`, except `iret` (23), which is jumped to: `push %rcx; push %r11;
/// push %rax; mov $23,%eax; syscall`. The rest is `int3` (0xcc).
pub const fn hypercall_page() -> [u8; 4096] {
    const IRET: usize = 23;
    let mut p = [0xccu8; 4096];
    let mut i = 0;
    while i < 128 {
        let o = i * 32;
        let nr = (i as u32).to_le_bytes();
        p[o] = 0x51; // push %rcx
        p[o + 1] = 0x41; // push %r11
        p[o + 2] = 0x53;
        if i == IRET {
            p[o + 3] = 0x50; // push %rax
            p[o + 4] = 0xb8; // mov $23, %eax
            p[o + 5] = nr[0];
            p[o + 6] = nr[1];
            p[o + 7] = nr[2];
            p[o + 8] = nr[3];
            p[o + 9] = 0x0f; // syscall
            p[o + 10] = 0x05;
        } else {
            p[o + 3] = 0xb8; // mov $i, %eax
            p[o + 4] = nr[0];
            p[o + 5] = nr[1];
            p[o + 6] = nr[2];
            p[o + 7] = nr[3];
            p[o + 8] = 0x0f; // syscall
            p[o + 9] = 0x05;
            p[o + 10] = 0x41; // pop %r11
            p[o + 11] = 0x5b;
            p[o + 12] = 0x59; // pop %rcx
            p[o + 13] = 0xc3; // ret
        }
        i += 1;
    }
    p
}
