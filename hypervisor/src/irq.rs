//! Hardware interrupts taken in hypervisor context (the idle loop).
use crate::arch::percpu::Regs;

pub fn interrupt(regs: *mut Regs) -> *mut Regs {
    crate::arch::apic::eoi();
    regs
}
