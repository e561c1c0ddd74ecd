//! Write 64-bit Xen PV guest kernels in Rust: entry, hypercalls, events, memory, console.
//!
//! A guest is a `no_std`, `no_main` binary for `x86_64-unknown-none` that names its main
//! function with [`entry!`] and links with the SDK's linker script (see
//! `docs/writing-a-guest.md`). The same binary runs on real Xen 4.17 and on this project's
//! hypervisor: the SDK speaks only the Xen PV ABI defined in `xen-abi`.
//!
//! # Design principles
//! 1. Memory the hypervisor writes concurrently (`shared_info`, `vcpu_info`, time) is read
//!    and written with volatile or atomic accesses through raw pointers, never through Rust
//!    references.
//! 2. Every hypercall has a typed wrapper returning `Result<_, Errno>`; raw numbers stay in
//!    [`hypercall`].
//! 3. Pure logic (time scaling, page-table indexing, date formatting, error decoding) is
//!    ordinary Rust, tested on the host with `cargo test`; only the instructions that need a
//!    PV guest (`syscall` through the hypercall page, the entry stubs) are gated with
//!    `#[cfg(target_os = "none")]`. On the host every hypercall returns `Err(ENOSYS)`.
//! 4. `unsafe` is confined to the arch glue (entry, trap stubs, hypercall page) and to the
//!    shared-page accessors; each block says why it is sound.
#![cfg_attr(target_os = "none", no_std)]

pub mod conring;
pub mod console;
pub mod cpuid;
pub mod entry;
pub mod events;
pub mod grant;
#[cfg(feature = "heap")]
pub mod heap;
pub mod hypercall;
pub mod mm;
pub mod privileged;
pub mod sched;
pub mod shared;
pub mod smp;
pub mod time;
pub mod traps;
pub mod version;
pub mod xenbus;

#[cfg(all(target_os = "none", feature = "panic-handler"))]
mod panic;

pub use entry::{start_info, StartInfo};
pub use xen_abi;
pub use xen_abi::errno::Errno;

/// Virtual address the SDK's linker script links guests at (`XEN_ELFNOTE_VIRT_BASE`).
/// Pseudo-physical frame `n` of the start-of-day region is mapped at
/// `KERNEL_BASE + n * 4096`.
pub const KERNEL_BASE: u64 = 0xFFFF_FFFF_8000_0000;
