//! System tests: boot the real images under QEMU and read the serial console as a user
//! would. They need `cargo xtask build` first, so a plain `cargo test` skips them
//! (`#[ignore]`); `cargo xtask test` runs them with `--ignored`.

use std::time::Duration;
use tests::*;

const BOOT: Duration = Duration::from_secs(60);

/// The lines `hello` prints, in order, whatever hypervisor it runs on.
const HELLO_LINES: &[&str] = &[
    "hello: Hello from a PV guest",
    "hello: hypervisor version 4.17",
    "hello: memory 64 MiB",
    "hello: time advanced by",
    "hello: powering off",
];

fn boot_hello(cpus: u32) {
    let args = hv_kernel_args(
        cpus,
        "console=com1 dom0_mem=64M loglvl=info",
        &image("hello"),
        "hello",
        None,
    );
    let mut s = Session::start(&format!("hello-{cpus}cpu"), &args);
    s.expect("Xen 4.17-compatible PV hypervisor", BOOT);
    s.expect(&format!("smp: {cpus} CPUs online"), BOOT);
    for line in HELLO_LINES {
        s.expect(line, BOOT);
    }
    s.expect("hypervisor: dom0 halted: powering off", BOOT);
    assert_eq!(
        s.wait_exit(BOOT),
        EXIT_POWEROFF,
        "exit status should say poweroff"
    );
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn hello_boots_as_dom0_multiboot1_one_cpu() {
    boot_hello(1);
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn hello_boots_as_dom0_multiboot1_four_cpus() {
    boot_hello(4);
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn hello_boots_from_grub_iso_multiboot2() {
    for cpus in [1u32, 4] {
        let args: Vec<String> = [
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-m",
            "512",
            "-smp",
            &cpus.to_string(),
            "-cdrom",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([image("hypervisor.iso").display().to_string()])
        .collect();
        let mut s = Session::start(&format!("grub-iso-{cpus}cpu"), &args);
        s.expect("loader: Multiboot2", BOOT);
        s.expect(&format!("smp: {cpus} CPUs online"), BOOT);
        // The ISO's GRUB entry gives dom0 the default memory (all but a reserve).
        for line in HELLO_LINES.iter().map(|l| {
            if l.starts_with("hello: memory") {
                "hello: memory "
            } else {
                l
            }
        }) {
            s.expect(line, BOOT);
        }
        assert_eq!(s.wait_exit(BOOT), EXIT_POWEROFF);
    }
}

/// dom0's shutdown reason decides how the machine stops, and QEMU's exit status says it.
#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn dom0_reboot_and_crash_give_distinct_exit_statuses() {
    for (arg, said, status) in [
        (
            "reboot",
            "hypervisor: dom0 rebooted: rebooting machine",
            EXIT_REBOOT,
        ),
        (
            "crash",
            "hypervisor: dom0 crashed: powering off (crash)",
            EXIT_CRASH,
        ),
    ] {
        let args = hv_kernel_args(
            1,
            "console=com1 dom0_mem=64M",
            &image("hello"),
            &format!("hello {arg}"),
            None,
        );
        let mut s = Session::start(&format!("hello-{arg}"), &args);
        s.expect("hello: breakpoint handled", BOOT);
        s.expect(said, BOOT);
        assert_eq!(s.wait_exit(BOOT), status, "exit status after dom0 {arg}");
    }
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_kernel_without_xen_notes_is_refused() {
    // The hypervisor image itself is an ELF file with no Xen notes.
    let args = hv_kernel_args(1, "console=com1", &image("hypervisor"), "not-a-guest", None);
    let mut s = Session::start("refuse-non-xen", &args);
    s.expect("not a Xen PV kernel", BOOT);
    assert_eq!(s.wait_exit(BOOT), EXIT_HV_FAILURE);
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn hello_prints_the_same_on_real_xen_4_17() {
    let xen = image("xen-4.17");
    let args: Vec<String> = [
        "-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "1", "-kernel",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        xen.display().to_string(),
        "-append".into(),
        "console=com1 dom0_mem=64M".into(),
        "-initrd".into(),
        format!("{} hello", image("hello").display()),
    ])
    .collect();
    let mut s = Session::start("hello-on-xen", &args);
    for line in HELLO_LINES {
        s.expect(line, BOOT);
    }
}

/// The PV CPU and MMU test guest: traps and `iret`, a user-mode system call, the page
/// table updates the hypervisor must refuse (with Xen's error codes), event channels,
/// timers, bad hypercalls. It computes its own verdict and powers off only if all pass.
fn pvcpu_on_ours(cpus: u32) {
    let args = hv_kernel_args(
        cpus,
        "console=com1 dom0_mem=64M",
        &image("pvcpu"),
        "pvcpu",
        None,
    );
    let mut s = Session::start(&format!("pvcpu-{cpus}cpu"), &args);
    let verdict = s.expect(" failed", BOOT);
    assert!(
        verdict.contains(" 0 failed"),
        "pvcpu reported failures:\n{}",
        s.output
    );
    assert!(
        !s.output.contains(": FAIL"),
        "a check failed:\n{}",
        s.output
    );
    assert_eq!(s.wait_exit(BOOT), EXIT_POWEROFF);
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn pvcpu_checks_pass_on_one_cpu() {
    pvcpu_on_ours(1);
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn pvcpu_checks_pass_on_four_cpus() {
    pvcpu_on_ours(4);
}

/// The same guest on real Xen 4.17: the reference the checks were written against.
#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn pvcpu_checks_pass_on_real_xen_4_17() {
    let args: Vec<String> = [
        "-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "1", "-kernel",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        image("xen-4.17").display().to_string(),
        "-append".into(),
        "console=com1 dom0_mem=64M".into(),
        "-initrd".into(),
        format!("{} pvcpu", image("pvcpu").display()),
    ])
    .collect();
    let mut s = Session::start("pvcpu-on-xen", &args);
    let verdict = s.expect(" failed", BOOT);
    assert!(
        verdict.contains(" 0 failed"),
        "pvcpu failed on Xen:\n{}",
        s.output
    );
}

/// A fault inside the hypervisor: registers and activity printed, every CPU stopped,
/// QEMU's status says the hypervisor failed (`selftest=fault` faults on purpose).
#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_hypervisor_fault_is_reported_and_stops_the_machine() {
    let args = hv_kernel_args(
        4,
        "console=com1 selftest=fault",
        &image("hello"),
        "hello",
        None,
    );
    let mut s = Session::start("selftest-fault", &args);
    s.expect("smp: 4 CPUs online", BOOT);
    s.expect(
        "HYPERVISOR FAULT on CPU0: vector 6 (#UD invalid opcode)",
        BOOT,
    );
    s.expect("while: the boot self-test", BOOT);
    s.expect("RIP 0xffff82d0", BOOT);
    s.expect("system halted", BOOT);
    assert_eq!(s.wait_exit(BOOT), EXIT_HV_FAILURE);
    assert!(!s.output.contains("hello:"), "dom0 must not have run");
}
