//! The PV CPU: what happens when a guest traps, makes a hypercall or is interrupted.
use crate::arch::percpu::Regs;

pub fn guest_event(regs: &mut Regs) -> *mut Regs {
    crate::traps::fatal(regs)
}
