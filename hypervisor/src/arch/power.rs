//! Power off: QEMU's `isa-debug-exit` when present (so test runs end with a status
//! that says what happened), then ACPI-style ports, then halt.

use super::x86;

/// Why the machine stops; the value written to `isa-debug-exit` (QEMU exits with
/// `(value << 1) | 1`: 33, 35, 37, 39).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    Poweroff = 0x10,
    Reboot = 0x11,
    Crash = 0x12,
    HypervisorFailure = 0x13,
}

/// Stop the machine. Other CPUs must already be stopped or halted.
pub fn off(reason: Reason) -> ! {
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit when present and unused otherwise;
    // writing it has no effect on memory.
    unsafe { x86::outl(0xf4, reason as u32) };
    if reason == Reason::Reboot {
        // SAFETY: 0xcf9 is the PCI reset control register; 0x06 asks for a hard reset.
        unsafe { x86::outb(0xcf9, 0x06) };
    } else {
        super::acpi::poweroff();
        // SAFETY: 0x604 is QEMU's PIIX4 ACPI PM1a control (SLP_EN | S5) and 0xb004
        // the older one; on other machines these ports are unused.
        unsafe {
            x86::outw(0x604, 0x2000);
            x86::outw(0xb004, 0x2000);
        }
    }
    x86::halt_forever()
}
