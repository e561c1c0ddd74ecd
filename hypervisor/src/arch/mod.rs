//! x86_64 mechanism. Everything with `unsafe` and hardware access lives under here.
pub mod acpi;
pub mod apic;
pub mod cpu;
pub mod entry;
pub mod gdt;
pub mod ioapic;
pub mod percpu;
pub mod power;
pub mod rtc;
pub mod timer;
pub mod trampoline;
pub mod x86;
