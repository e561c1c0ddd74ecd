//! PV hypervisor mechanism: traps, paging, vCPU switch, hypercall entry.
//!
//! # Design principles
//! 1. Policy lives in `hv-core`; this crate only performs validated effects.
//! 2. `unsafe` is confined to `arch/` and guest-memory access; each block says why.
#![cfg_attr(target_os = "none", no_std)]
