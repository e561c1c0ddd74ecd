//! Placeholder.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod guest {
    guest_sdk::entry!(guest_main);
    fn guest_main(_si: &'static guest_sdk::StartInfo) {}
}
