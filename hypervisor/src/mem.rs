//! Physical memory: the direct map and the frame allocator.
//!
//! All RAM below `MAX_PHYS` is mapped at `DIRECTMAP_BASE` (Xen's 1:1 map, L4 slot 262,
//! supervisor-only). The allocator is a bitmap over that range behind one lock ("heap",
//! after `mm` in the lock order: it takes no other lock).

use crate::multiboot::{BootInfo, MEM_AVAILABLE};
use spin::Mutex;

pub const DIRECTMAP_BASE: u64 = 0xFFFF_8300_0000_0000;
/// The boot page tables map the first 4 GiB; memory above is not used yet.
pub const MAX_PHYS: u64 = 4 << 30;
pub const MAX_FRAMES: usize = (MAX_PHYS >> 12) as usize;
pub const PAGE_SIZE: u64 = 4096;
/// The image's virtual base minus its physical load address.
pub const IMAGE_OFFSET: u64 = 0xFFFF_82D0_4000_0000;

/// The direct-map address of physical address `pa`.
pub const fn phys_to_virt(pa: u64) -> u64 {
    DIRECTMAP_BASE + pa
}

/// The physical address of a hypervisor-image or direct-map virtual address.
pub fn virt_to_phys(va: u64) -> u64 {
    if (IMAGE_OFFSET..IMAGE_OFFSET + (1 << 30)).contains(&va) {
        va - IMAGE_OFFSET
    } else {
        va - DIRECTMAP_BASE
    }
}

struct Bitmap {
    /// Bit set = frame free.
    bits: [u64; MAX_FRAMES / 64],
    free: usize,
    total: usize,
    hint: usize,
}

static ALLOC: Mutex<Bitmap> = Mutex::new(Bitmap {
    bits: [0; MAX_FRAMES / 64],
    free: 0,
    total: 0,
    hint: 0,
});

impl Bitmap {
    fn set_free(&mut self, mfn: usize, free: bool) {
        let (w, b) = (mfn / 64, mfn % 64);
        let Some(word) = self.bits.get_mut(w) else {
            return;
        };
        let was = *word & (1 << b) != 0;
        if free && !was {
            *word |= 1 << b;
            self.free += 1;
        } else if !free && was {
            *word &= !(1 << b);
            self.free -= 1;
        }
    }

    fn is_free(&self, mfn: usize) -> bool {
        self.bits
            .get(mfn / 64)
            .is_some_and(|w| w & (1 << (mfn % 64)) != 0)
    }
}

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

/// Hand every available frame to the allocator, except the first MiB (BIOS, the AP
/// trampoline), the hypervisor image and the boot modules.
pub fn init(bi: &BootInfo) {
    let mut a = ALLOC.lock();
    for r in bi.memory.iter().filter(|r| r.kind == MEM_AVAILABLE) {
        let start = r.start.div_ceil(PAGE_SIZE);
        let end = (r.start.saturating_add(r.len).min(MAX_PHYS)) / PAGE_SIZE;
        for mfn in start..end {
            a.set_free(mfn as usize, true);
        }
    }
    let mut reserve = |from: u64, to: u64| {
        for mfn in from / PAGE_SIZE..to.div_ceil(PAGE_SIZE) {
            a.set_free(mfn as usize, false);
        }
    };
    reserve(0, 1 << 20);
    // Only the addresses of the linker symbols are taken.
    let (s, e) = (
        core::ptr::addr_of!(__image_start) as u64,
        core::ptr::addr_of!(__image_end) as u64,
    );
    reserve(virt_to_phys(s), virt_to_phys(e));
    for m in bi.modules.iter() {
        reserve(m.start, m.end);
    }
    a.total = a.free;
}

/// (free, total) frames.
pub fn stats() -> (usize, usize) {
    let a = ALLOC.lock();
    (a.free, a.total)
}

/// Allocate one zeroed frame; returns its mfn.
pub fn alloc_frame() -> Option<u64> {
    alloc_contiguous(1, 1)
}

/// Allocate `n` zeroed, physically contiguous frames aligned to `align` frames.
pub fn alloc_contiguous(n: usize, align: usize) -> Option<u64> {
    let mut a = ALLOC.lock();
    if n == 0 || a.free < n {
        return None;
    }
    let align = align.max(1);
    let mut start = a.hint.next_multiple_of(align);
    let mut wrapped = false;
    loop {
        if start + n > MAX_FRAMES {
            if wrapped {
                return None;
            }
            wrapped = true;
            start = 0;
            continue;
        }
        match (start..start + n).find(|&m| !a.is_free(m)) {
            None => break,
            Some(busy) => start = (busy + 1).next_multiple_of(align),
        }
    }
    for m in start..start + n {
        a.set_free(m, false);
    }
    a.hint = start + n;
    drop(a);
    for m in start..start + n {
        zero_frame(m as u64);
    }
    Some(start as u64)
}

/// Give a frame back. It must have been allocated and be unreferenced.
pub fn free_frame(mfn: u64) {
    let mut a = ALLOC.lock();
    a.set_free(mfn as usize, true);
}

/// Zero a frame through the direct map.
pub fn zero_frame(mfn: u64) {
    let va = phys_to_virt(mfn * PAGE_SIZE) as *mut u8;
    // SAFETY: `mfn` is RAM below MAX_PHYS, mapped writable in the direct map; the frame
    // is owned by the caller (just allocated, or being scrubbed before reuse), so no
    // Rust reference aliases it.
    unsafe { core::ptr::write_bytes(va, 0, PAGE_SIZE as usize) };
}
