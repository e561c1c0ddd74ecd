//! The control domain's `xl` toolstack, driven through dom0's console as a user would.
//! Each scenario runs on our hypervisor and on real Xen 4.17 (the reference), which
//! must behave the same.

use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(90);

fn free_memory(s: &mut Session) -> u64 {
    let out = s.xl("xl info free_memory", T);
    out.lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no free_memory in {out:?}"))
}

/// Boot dom0, create the ticker guest, list it, attach to its console and type into it,
/// pause and unpause it, destroy it: memory comes back.
fn create_console_destroy(hv: &str) {
    let mut s = Session::start(
        &format!("xl-{hv}"),
        &dom0_args(hv, 2, "console=com1 dom0_mem=128M"),
    );
    s.expect("xl> ", T);
    let list = s.xl("xl list", T);
    assert!(
        list.contains("Name                                        ID   Mem VCPUs\tState\tTime(s)"),
        "{list}"
    );
    assert!(
        list.contains("Domain-0                                     0   128     1"),
        "{list}"
    );
    let before = free_memory(&mut s);
    let out = s.xl("xl create /etc/xen/ticker.cfg", T);
    assert!(
        out.contains("Parsing config from /etc/xen/ticker.cfg"),
        "{out}"
    );
    let list = s.xl("xl list", T);
    assert!(
        list.lines()
            .any(|l| l.starts_with("ticker ") && l.contains(" 32     1")),
        "ticker not listed:\n{list}"
    );
    assert!(
        free_memory(&mut s) < before,
        "creating a domain uses memory"
    );
    // Its console: output, then our input echoed by the guest, then Ctrl-] back.
    s.send("xl console ticker\n");
    s.expect("ticker: tick", T);
    s.send("q");
    s.expect("ticker: got 'q'", T);
    s.send("\x1d");
    s.expect("xl> ", T);
    s.xl("xl pause ticker", T);
    let list = s.xl("xl list", T);
    assert!(
        list.lines().any(|l| l.starts_with("ticker ")
            && l.split_whitespace()
                .nth(4)
                .is_some_and(|st| st.chars().nth(2) == Some('p'))),
        "not paused:\n{list}"
    );
    s.xl("xl unpause ticker", T);
    let out = s.xl("xl destroy ticker", T);
    assert!(!out.contains("failed"), "{out}");
    let list = s.xl("xl list", T);
    assert!(
        !list.contains("ticker"),
        "still listed after destroy:\n{list}"
    );
    assert_eq!(
        free_memory(&mut s),
        before,
        "a destroyed domain gives back all its memory"
    );
    // Bad input is an xl error, never the end of dom0.
    let out = s.xl("xl destroy nosuch", T);
    assert!(
        out.contains("nosuch is an invalid domain identifier"),
        "{out}"
    );
    let out = s.xl("xl frobnicate", T);
    assert!(out.contains("command not implemented"), "{out}");
    let list = s.xl("xl list", T);
    assert!(list.contains("Domain-0"), "dom0 still answers:\n{list}");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xl_create_console_pause_destroy_on_ours() {
    create_console_destroy("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xl_create_console_pause_destroy_on_real_xen_4_17() {
    create_console_destroy("xen-4.17");
}

/// Destroy and re-create a domain many times: free memory is unchanged at the end.
#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xl_create_destroy_fifty_times_leaks_nothing() {
    let mut s = Session::start(
        "xl-loop",
        &dom0_args("hypervisor", 2, "console=com1 dom0_mem=128M"),
    );
    s.expect("xl> ", T);
    let before = free_memory(&mut s);
    for i in 0..50 {
        let out = s.xl("xl create /etc/xen/ticker.cfg", T);
        assert!(out.contains("Parsing config"), "round {i}: {out}");
        let out = s.xl("xl destroy ticker", T);
        assert!(!out.contains("failed"), "round {i}: {out}");
    }
    let list = s.xl("xl list", T);
    assert!(!list.contains("ticker"), "{list}");
    assert_eq!(
        free_memory(&mut s),
        before,
        "memory after 50 create/destroy rounds"
    );
}

/// `xl sched-credit`: a new domain has weight 256 and no cap; `-w`/`-c` change one
/// parameter and leave the other; values out of range are refused and change nothing.
/// `xl vcpu-pin` sets the hard affinity `xl vcpu-list` shows.
fn sched_credit(hv: &str) {
    let mut s = Session::start(
        &format!("xl-sched-{hv}"),
        // Xen 4.17 defaults to credit2; ours is credit1 only.
        &dom0_args(hv, 2, "console=com1 dom0_mem=128M sched=credit"),
    );
    s.expect("xl> ", T);
    let out = s.xl("xl create /etc/xen/ticker.cfg", T);
    assert!(out.contains("Parsing config"), "{out}");
    let row = |out: &str, name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let out = s.xl("xl sched-credit", T);
    assert!(out.contains("Cpupool Pool-0: tslice=30ms"), "{out}");
    assert!(
        out.contains("Name                                ID Weight  Cap"),
        "{out}"
    );
    assert_eq!(
        row(&out, "Domain-0"),
        ["Domain-0", "0", "256", "0"],
        "{out}"
    );
    assert_eq!(row(&out, "ticker")[2..], ["256", "0"], "{out}");
    s.xl("xl sched-credit -d ticker -w 512", T);
    s.xl("xl sched-credit -d ticker -c 50", T);
    let out = s.xl("xl sched-credit -d ticker", T);
    assert_eq!(row(&out, "ticker")[2..], ["512", "50"], "{out}");
    let out = s.xl("xl sched-credit -d ticker -w 70000", T);
    assert!(out.contains("Cpu weight out of range"), "{out}");
    let out = s.xl("xl sched-credit -d ticker -c 500", T);
    assert!(out.contains("Cpu cap out of range"), "{out}");
    s.xl("xl sched-credit -d ticker -c 0", T);
    let out = s.xl("xl sched-credit -d ticker", T);
    assert_eq!(row(&out, "ticker")[2..], ["512", "0"], "{out}");
    // `xl vcpu-pin`: hard affinity, shown by `xl vcpu-list`.
    let out = s.xl("xl vcpu-pin ticker 0 1", T);
    assert!(!out.contains("error"), "{out}");
    let out = s.xl("xl vcpu-list ticker", T);
    assert_eq!(row(&out, "ticker")[6], "1", "{out}");
    let out = s.xl("xl vcpu-pin ticker all 0-1", T);
    assert!(!out.contains("error"), "{out}");
    let out = s.xl("xl vcpu-list ticker", T);
    assert_eq!(row(&out, "ticker")[6], "all", "{out}");
    // The guest still runs: its console ticks.
    s.send("xl console ticker\n");
    s.expect("ticker: tick", T);
    s.send("\x1d");
    s.expect("xl> ", T);
    let out = s.xl("xl destroy ticker", T);
    assert!(!out.contains("failed"), "{out}");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xl_sched_credit_on_ours() {
    sched_credit("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xl_sched_credit_on_real_xen_4_17() {
    sched_credit("xen-4.17");
}

/// An SDK guest as a domU prints on its console ring: `xl create -c` shows it, on ours
/// and on Xen 4.17 alike, and the domain is destroyed when it powers off (on_poweroff).
fn hello_as_domu(hv: &str) {
    let mut s = Session::start(
        &format!("hello-domu-{hv}"),
        &dom0_args(hv, 2, "console=com1 dom0_mem=128M"),
    );
    s.expect("xl> ", T);
    s.send("xl create -c /etc/xen/hello.cfg\n");
    s.expect("hello: Hello from a PV guest", T);
    s.expect("hello: memory 32 MiB", T);
    s.expect("hello: breakpoint handled, back from iret", T);
    s.expect("has shut down, reason code 0 (poweroff): destroy", T);
    let list = s.xl("xl list", T);
    assert!(
        !list.contains("hello"),
        "powered-off domain still listed:\n{list}"
    );
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn hello_runs_as_a_domu_on_ours() {
    hello_as_domu("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn hello_runs_as_a_domu_on_real_xen_4_17() {
    hello_as_domu("xen-4.17");
}

/// Looking inside domains: `xl list -l` (each domain's configuration as JSON, dom0's
/// stub included), `xl create -n` (the JSON, nothing created), and `xenctx` (a paused
/// read of a vCPU's registers through `XEN_DOMCTL_getvcpucontext`), with its errors for a
/// vCPU that does not exist or was never brought up. The guest runs on afterwards.
fn inspect(hv: &str) {
    let mut s = Session::start(
        &format!("inspect-{hv}"),
        &dom0_args(hv, 2, "console=com1 dom0_mem=128M"),
    );
    s.expect("xl> ", T);
    let out = s.xl("xl create /etc/xen/ticker.cfg vcpus=2", T);
    assert!(!out.contains("error"), "[{hv}] {out}");
    let id: u32 = s
        .xl("xl domid ticker", T)
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .expect("ticker's id");

    let long = s.xl("xl list -l", T);
    for needle in [
        "\"domid\": 0,",
        "\"name\": \"Domain-0\"",
        &format!("\"domid\": {id},"),
        "\"name\": \"ticker\"",
        "\"kernel\": \"/boot/ticker\"",
        "\"cmdline\": \"ticker demo\"",
        "\"max_vcpus\": 2,",
        "\"on_crash\": \"restart\"",
    ] {
        assert!(
            long.contains(needle),
            "[{hv}] no {needle} in xl list -l:\n{long}"
        );
    }
    assert!(long.starts_with("[\n") && long.contains("\n]\n"), "{long}");
    let one = s.xl("xl list -l ticker", T);
    assert!(
        one.contains("\"name\": \"ticker\"") && !one.contains("Domain-0"),
        "{one}"
    );

    let dry = s.xl("xl create -n /etc/xen/hello.cfg", T);
    assert!(
        dry.contains("\"domid\": null") && dry.contains("\"name\": \"hello\""),
        "{dry}"
    );
    assert!(
        !s.xl("xl list", T).contains("hello"),
        "[{hv}] create -n created a domain"
    );

    let ctx = s.xl(&format!("xenctx {id}"), T);
    let rip = ctx
        .lines()
        .find_map(|l| l.strip_prefix("rip: "))
        .unwrap_or_else(|| panic!("[{hv}] no rip in:\n{ctx}"));
    let rip = u64::from_str_radix(rip.trim(), 16).expect("rip in hex");
    assert!(
        rip >= 0xffff_ffff_8000_0000,
        "[{hv}] ticker's rip {rip:#x} is outside its kernel:\n{ctx}"
    );
    assert!(
        ctx.contains(" cs: e033\t ss: e02b"),
        "[{hv}] selectors:\n{ctx}"
    );
    assert!(ctx.contains("flags: "), "{ctx}");
    let all = s.xl(&format!("xenctx -a {id} 0"), T);
    let cr3 = all
        .lines()
        .find_map(|l| l.strip_prefix("cr3: "))
        .unwrap_or_else(|| panic!("[{hv}] no cr3 in:\n{all}"));
    assert_ne!(u64::from_str_radix(cr3.trim(), 16).ok(), Some(0), "{all}");
    let down = s.xl(&format!("xenctx {id} 1"), T);
    assert!(
        down.contains("No data available"),
        "[{hv}] vCPU 1 never up:\n{down}"
    );
    let none = s.xl(&format!("xenctx {id} 7"), T);
    assert!(none.contains("Invalid argument"), "[{hv}] vCPU 7:\n{none}");

    // The pause around xenctx was undone: ticker still ticks.
    s.send("xl console ticker\n");
    let first = s.expect("ticker: tick ", T);
    let _ = first;
    s.expect("ticker: tick ", T);
    s.send("\x1d");
    s.expect("xl> ", T);
    let list = s.xl("xl list ticker", T);
    assert!(
        !list.contains("--p---") && list.contains("ticker"),
        "[{hv}] {list}"
    );
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xl_list_long_create_dryrun_and_xenctx_on_ours() {
    inspect("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xl_list_long_create_dryrun_and_xenctx_on_real_xen_4_17() {
    inspect("xen-4.17");
}
