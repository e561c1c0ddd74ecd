//! Hypervisor policy as pure, host-tested Rust.
//!
//! # Design principles
//! 1. No hardware access and no `unsafe`: every decision the hypervisor makes about guest
//!    input is a function here, tested on the host with unit and property tests.
//! 2. Decode and validate first (`decode_*`), perform only when nothing can fail
//!    (`perform_*`).
//! 3. Guest input never panics: bad input is an `Errno` for the guest, or a domain crash.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
pub mod build;
pub mod elf;
pub mod evtchn;
pub mod frame;
pub mod grant;
pub mod mm;
pub mod pirq;
pub mod sched;
