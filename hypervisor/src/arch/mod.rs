//! x86_64 mechanism. Everything with `unsafe` and hardware access lives under here.
pub mod cpu;
pub mod x86;
