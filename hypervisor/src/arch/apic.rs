//! Local APIC (xAPIC, MMIO at the address in IA32_APIC_BASE, via the direct map).
use super::x86;

const IA32_APIC_BASE: u32 = 0x1b;

fn base() -> u64 {
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU.
    let pa = unsafe { x86::rdmsr(IA32_APIC_BASE) } & 0x000f_ffff_ffff_f000;
    crate::mem::phys_to_virt(pa)
}

/// Read a local APIC register.
pub fn read(reg: u32) -> u32 {
    // SAFETY: `base()` is the APIC's MMIO page through the direct map (uncached by the
    // APIC's own decoding); `reg` is a register offset below 4 KiB.
    unsafe { core::ptr::read_volatile((base() + u64::from(reg)) as *const u32) }
}

/// Write a local APIC register.
pub fn write(reg: u32, val: u32) {
    // SAFETY: as `read`; APIC register writes do not touch memory.
    unsafe { core::ptr::write_volatile((base() + u64::from(reg)) as *mut u32, val) }
}

pub const REG_ID: u32 = 0x20;
pub const REG_EOI: u32 = 0xb0;
pub const REG_SVR: u32 = 0xf0;
pub const REG_ICR_LO: u32 = 0x300;
pub const REG_ICR_HI: u32 = 0x310;
pub const REG_LVT_TIMER: u32 = 0x320;
pub const REG_TIMER_INIT: u32 = 0x380;
pub const REG_TIMER_CUR: u32 = 0x390;
pub const REG_TIMER_DIV: u32 = 0x3e0;

pub fn eoi() {
    write(REG_EOI, 0);
}

pub fn id() -> u32 {
    read(REG_ID) >> 24
}

/// Enable this CPU's local APIC (spurious vector 0xff).
pub fn enable() {
    // SAFETY: IA32_APIC_BASE exists; setting the global enable bit is harmless.
    unsafe {
        let v = x86::rdmsr(IA32_APIC_BASE);
        x86::wrmsr(IA32_APIC_BASE, v | (1 << 11));
    }
    write(REG_SVR, 0x1ff);
}

fn wait_icr() {
    while read(REG_ICR_LO) & (1 << 12) != 0 {
        core::hint::spin_loop();
    }
}

/// Send an IPI with `icr_lo` to APIC `dest`.
pub fn ipi(dest: u32, icr_lo: u32) {
    wait_icr();
    write(REG_ICR_HI, dest << 24);
    write(REG_ICR_LO, icr_lo);
    wait_icr();
}

/// NMI to all other CPUs.
pub fn nmi_others() {
    // shorthand all-excluding-self (0b11 << 18), delivery mode NMI (0b100 << 8)
    wait_icr();
    write(REG_ICR_LO, (0b11 << 18) | (0b100 << 8) | (1 << 14));
}
