//! Per-CPU identity.
use super::percpu;

/// The logical id of the CPU running this code (0 = the boot CPU, also while it still
/// runs on the boot stack).
pub fn current_id() -> u32 {
    if percpu::on_percpu_stack() {
        // SAFETY: on a per-CPU stack, `this_cpu` points at this CPU's CpuInfo, whose
        // `cpu_id` is written once at bring-up before the CPU runs on that stack.
        unsafe { (*percpu::this_cpu()).cpu_id as u32 }
    } else {
        0
    }
}
