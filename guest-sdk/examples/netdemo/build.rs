//! Link with the guest SDK's linker script when building the bare-metal guest.

fn main() {
    // Only the bare-metal build is a PV kernel; a host build (clippy, `cargo build
    // --workspace`) is an ordinary program that links normally.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let script = std::env::var("DEP_GUEST_SDK_LINKER_SCRIPT")
            .expect("guest-sdk publishes its linker script");
        println!("cargo:rustc-link-arg-bins=-T{script}");
        // A fixed-address executable, not the target's default static PIE: the domain
        // builder loads segments at their link addresses and applies no relocations.
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rerun-if-changed={script}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
