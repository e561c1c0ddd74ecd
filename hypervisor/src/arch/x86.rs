//! Thin wrappers over x86 instructions.

/// Halt until the next interrupt.
pub fn hlt() {
    x86_64::instructions::hlt();
}

/// Write `val` to I/O port `port`.
///
/// # Safety
/// The port must be one the hypervisor owns and writing `val` must not break memory
/// safety (e.g. no DMA set-up).
pub unsafe fn outb(port: u16, val: u8) {
    // SAFETY: the caller guarantees the port write is harmless to memory safety.
    unsafe { x86_64::instructions::port::Port::new(port).write(val) }
}

/// Write a 32-bit value to I/O port `port`.
///
/// # Safety
/// As `outb`.
pub unsafe fn outl(port: u16, val: u32) {
    // SAFETY: the caller guarantees the port write is harmless to memory safety.
    unsafe { x86_64::instructions::port::Port::new(port).write(val) }
}

/// Stop this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
