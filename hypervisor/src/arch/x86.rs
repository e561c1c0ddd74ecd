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

/// Write a 16-bit value to I/O port `port`.
///
/// # Safety
/// As `outb`.
pub unsafe fn outw(port: u16, val: u16) {
    // SAFETY: the caller guarantees the port write is harmless to memory safety.
    unsafe { x86_64::instructions::port::Port::new(port).write(val) }
}

/// Read CR2 (the faulting address of the last #PF).
pub fn cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// Read CR3.
pub fn cr3() -> u64 {
    let (frame, flags) = x86_64::registers::control::Cr3::read_raw();
    frame.start_address().as_u64() | u64::from(flags)
}

/// Read a model-specific register.
///
/// # Safety
/// `msr` must exist on this CPU (or the read faults in the hypervisor).
pub unsafe fn rdmsr(msr: u32) -> u64 {
    // SAFETY: the caller guarantees the MSR exists.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
}

/// Write a model-specific register.
///
/// # Safety
/// `msr` must exist and `val` must not break memory safety (e.g. EFER, LSTAR values
/// the hypervisor chose).
pub unsafe fn wrmsr(msr: u32, val: u64) {
    // SAFETY: the caller guarantees the write is sound.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).write(val) }
}

/// Read the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// `cpuid(leaf, subleaf)` → (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Clear CR0.TS.
pub fn clts() {
    // SAFETY: clearing TS only re-enables FPU instructions; no memory effect.
    unsafe { core::arch::asm!("clts", options(nomem, nostack)) };
}

/// Set CR0.TS (the next FPU instruction raises #NM).
pub fn stts() {
    // SAFETY: setting TS only makes FPU instructions fault; no memory effect.
    unsafe {
        let mut cr0: u64;
        core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack));
        cr0 |= 1 << 3;
        core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nostack));
    }
}
