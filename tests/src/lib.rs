//! System tests: the QEMU runner lives in `xtask`; this crate holds shared helpers.
#![forbid(unsafe_code)]
