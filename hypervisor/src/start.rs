//! The boot CPU's path from the trampoline to the first guest.

use crate::println;

/// Entered from `boot` on the boot stack, in long mode on the boot page tables.
pub fn start(magic: u32, info: u32) -> ! {
    crate::console::init();
    println!("hypervisor: starting (loader magic {magic:#x}, info at {info:#x})");
    crate::arch::x86::halt_forever()
}

/// The panic path: print, stop everything, exit QEMU with a failure status.
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    use core::fmt::Write;
    let _ = writeln!(
        crate::console::PanicConsole,
        "\n*** hypervisor PANIC: {info}"
    );
    crate::arch::x86::halt_forever()
}
