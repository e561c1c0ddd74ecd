//! Write Xen PV guest kernels in Rust.
#![cfg_attr(target_os = "none", no_std)]
