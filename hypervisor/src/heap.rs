//! The hypervisor's heap (`alloc`): a fixed region taken from the frame allocator at
//! boot, managed by `linked_list_allocator`. Domains, vCPUs and their tables live here.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Heap size: 8 MiB.
const HEAP_FRAMES: usize = 2048;

/// Take the heap's memory from the frame allocator. Boot CPU, once, before any `alloc`.
pub fn init() -> bool {
    let Some(mfn) = crate::mem::alloc_contiguous(HEAP_FRAMES, 1) else {
        return false;
    };
    let start = crate::mem::phys_to_virt(mfn * 4096) as *mut u8;
    // SAFETY: the frames were just allocated for the heap alone, are mapped writable in
    // the direct map, and `init` runs once before any allocation.
    unsafe { HEAP.lock().init(start, HEAP_FRAMES * 4096) };
    true
}
