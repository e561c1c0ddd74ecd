//! Xen 4.17's x86_64 PV guest ABI, the only thing hypervisor and guests share.
//!
//! # Design principles
//! 1. Every layout matches Xen 4.17's public headers (`libxen-dev`) byte for byte; each
//!    struct carries compile-time size asserts, and `tests/abi_conformance.rs` compares
//!    sizes and offsets with a C program compiled against the real headers.
//! 2. No `Option`, `bool` or Rust enums in guest-shared structs: integers with named
//!    constants, as the C headers have them.
//! 3. No code with effects: this crate is data and constants only.
#![no_std]
#![forbid(unsafe_code)]

pub mod callback;
pub mod console;
pub mod domctl;
pub mod elfnote;
pub mod errno;
pub mod event_channel;
pub mod grant_table;
pub mod hypercall;
pub mod io;
pub mod memory;
pub mod mm;
pub mod physdev;
pub mod sched;
pub mod sysctl;
pub mod vcpu;
pub mod version;
pub mod wire;
pub mod xen;
pub mod xs_wire;

pub use errno::Errno;
pub use xen::DomId;
