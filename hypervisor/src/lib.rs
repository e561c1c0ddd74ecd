//! PV hypervisor mechanism: traps, paging, vCPU switch, hypercall entry.
//!
//! # Design principles
//! 1. Policy lives in `hv-core`; this crate only performs validated effects.
//! 2. `unsafe` is confined to `arch/` and guest-memory access; each block says why.
//! 3. The pure parts (command line, multiboot parsing) build and test on the host.
#![cfg_attr(target_os = "none", no_std)]

pub mod acpi;
pub mod cmdline;
pub mod multiboot;
#[cfg(target_os = "none")]
pub mod paging;
pub mod time;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod control;
#[cfg(target_os = "none")]
pub mod debugreg;
#[cfg(target_os = "none")]
pub mod desc;
#[cfg(target_os = "none")]
mod dom0;
#[cfg(target_os = "none")]
pub mod domain;
#[cfg(target_os = "none")]
pub mod emulate;
#[cfg(target_os = "none")]
pub mod events;
#[cfg(target_os = "none")]
pub mod gnttab;
#[cfg(target_os = "none")]
pub mod guest_mem;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
pub mod hypercall;
#[cfg(target_os = "none")]
pub mod irq;
#[cfg(target_os = "none")]
pub mod mem;
#[cfg(target_os = "none")]
pub mod mm;
#[cfg(target_os = "none")]
pub mod pv;
#[cfg(target_os = "none")]
pub mod sched;
#[cfg(target_os = "none")]
pub mod shinfo;
#[cfg(target_os = "none")]
pub mod smp;
#[cfg(target_os = "none")]
mod start;
#[cfg(target_os = "none")]
pub mod traps;

#[cfg(target_os = "none")]
pub use start::{panic, start};
