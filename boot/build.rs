//! Passes the linker script to the hypervisor image (Tock's `set_and_track_linker_script`).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
        // The code is position independent (the target's default), but the image is
        // linked at its one fixed address: no dynamic relocations, no PIE.
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
    println!("cargo:rerun-if-changed={dir}/link.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
