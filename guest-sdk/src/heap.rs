//! A heap over the start-of-day padding: from the end of the bootstrap stack to the end
//! of the initial 4 MiB-aligned region (at least 512 KiB, all mapped by the builder).

use linked_list_allocator::LockedHeap;

/// The SDK heap. With the `global-allocator` feature (bare metal) it serves `alloc`.
#[cfg_attr(
    all(target_os = "none", feature = "global-allocator"),
    global_allocator
)]
pub static HEAP: LockedHeap = LockedHeap::empty();

/// Hand `[start, end)` to the heap. Called once at boot.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
pub(crate) fn init(start: u64, end: u64) {
    if end <= start {
        return;
    }
    // SAFETY: `[start, end)` is mapped, writable, and used by nothing else: xen.h's
    // start-of-day layout guarantees the padding after the bootstrap stack up to the
    // region end, and the SDK calls this once, before the guest's main.
    unsafe { HEAP.lock().init(start as *mut u8, (end - start) as usize) };
}

/// (used, free) bytes.
pub fn usage() -> (usize, usize) {
    let h = HEAP.lock();
    (h.used(), h.free())
}
