//! XenStore (issue 4): dom0's xenstored, seen through the `xenstore-*` tools typed into
//! dom0's console, as a user would, on ours and on real Xen 4.17 (the same dom0 image
//! runs xenstored there too).

use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(90);

fn boot(name: &str, hv: &str) -> Session {
    let mut s = Session::start(
        &format!("{name}-{hv}"),
        &dom0_args(hv, 2, "console=com1 dom0_mem=128M"),
    );
    s.expect("xl> ", T);
    s
}

/// A command's output without the prompt that follows it.
fn run(s: &mut Session, line: &str) -> String {
    let out = s.xl(line, T);
    out.trim_end()
        .trim_end_matches("xl>")
        .trim_end()
        .to_string()
}

fn domid(s: &mut Session, name: &str) -> u32 {
    let out = s.xl(&format!("xl domid {name}"), T);
    out.lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no domid for {name}: {out:?}"))
}

/// A created domain gets libxl's entries; dom0 reads, writes, lists and removes keys;
/// the guest's own subtrees are its own; destroying the domain removes its entries.
fn store_tools(hv: &str) {
    let mut s = boot("xenstore", hv);
    let out = s.xl("xl create /etc/xen/ticker.cfg", T);
    assert!(!out.contains("error"), "[{hv}] {out}");
    let id = domid(&mut s, "ticker");
    let dom = format!("/local/domain/{id}");

    let ls = s.xl(&format!("xenstore-ls {dom}"), T);
    for line in [
        "name = \"ticker\"".to_string(),
        format!("domid = \"{id}\""),
        "console = \"\"".into(),
        " type = \"xenconsoled\"".into(),
        "store = \"\"".into(),
        "memory = \"\"".into(),
        " target = \"32768\"".into(),
    ] {
        assert!(
            ls.lines().any(|l| l == line),
            "[{hv}] no line {line:?} in:\n{ls}"
        );
    }
    assert_eq!(run(&mut s, &format!("xenstore-read {dom}/name")), "ticker");
    let vm = run(&mut s, &format!("xenstore-read {dom}/vm"));
    let vm = vm.as_str();
    assert!(vm.starts_with("/vm/"), "[{hv}] vm path {vm:?}");
    assert_eq!(run(&mut s, &format!("xenstore-read {vm}/name")), "ticker");

    // Ownership: data/ is the guest's, the rest dom0's, readable by the guest.
    let perms = s.xl(&format!("xenstore-ls -f -p {dom}"), T);
    assert!(
        perms.contains(&format!("{dom}/data = \"\"  (n{id})")),
        "[{hv}] data/ not the guest's:\n{perms}"
    );
    assert!(
        perms.contains(&format!("{dom}/name = \"ticker\"  (n0,r{id})")),
        "[{hv}] name not read-only for the guest:\n{perms}"
    );

    // Write, read back, list, remove.
    assert_eq!(
        run(
            &mut s,
            "xenstore-write /tool/test/a hello /tool/test/b \"two words\""
        ),
        ""
    );
    assert_eq!(run(&mut s, "xenstore-read /tool/test/a"), "hello");
    assert_eq!(
        run(&mut s, "xenstore-read -p /tool/test/b"),
        "/tool/test/b: two words"
    );
    let list = run(&mut s, "xenstore-list /tool/test");
    assert_eq!(
        list.split_whitespace().collect::<Vec<_>>(),
        ["a", "b"],
        "[{hv}] {list}"
    );
    assert_eq!(run(&mut s, "xenstore-rm /tool/test"), "");
    let gone = s.xl("xenstore-read /tool/test/a", T);
    assert!(
        gone.contains("couldn't read path /tool/test/a"),
        "[{hv}] {gone}"
    );
    let usage = s.xl("xenstore-write /x", T);
    assert!(usage.starts_with("Usage: xenstore-write"), "[{hv}] {usage}");

    // Destroying the domain removes its entries.
    s.xl("xl destroy ticker", T);
    let after = s.xl(&format!("xenstore-read {dom}/name"), T);
    assert!(
        after.contains("couldn't read path"),
        "[{hv}] left behind:\n{after}"
    );
    let vm_left = s.xl(&format!("xenstore-read {vm}/name"), T);
    assert!(
        vm_left.contains("couldn't read path"),
        "[{hv}] /vm left behind:\n{vm_left}"
    );
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xenstore_tools_and_domain_entries_on_ours() {
    store_tools("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xenstore_tools_and_domain_entries_on_real_xen_4_17() {
    store_tools("xen-4.17");
}

/// Two domUs and XenStore's permissions: each reads and writes its own keys, may not
/// change its name, and can neither read nor write the other's keys (xenstored says
/// `EACCES`); each guest computes its verdict.
fn permissions_between_domus(hv: &str) {
    let mut s = boot("xsperm", hv);
    let out = s.xl("xl create /etc/xen/xsprobe.cfg 'name=\"xsprobe-a\"'", T);
    assert!(!out.contains("error"), "[{hv}] {out}");
    let a = domid(&mut s, "xsprobe-a");
    let out = s.xl(
        &format!("xl create /etc/xen/xsprobe.cfg 'name=\"xsprobe-b\"' 'cmdline=\"peer={a}\"'"),
        T,
    );
    assert!(!out.contains("error"), "[{hv}] {out}");
    s.send("xl console xsprobe-b\n");
    let verdict = s.expect(" failed", T);
    s.send("\x1d");
    s.expect("xl> ", T);
    assert!(
        verdict.contains("xsprobe: 7 checks, 0 failed"),
        "[{hv}] the guest's checks:\n{verdict}"
    );
    assert!(
        verdict.contains(&format!("read /local/domain/{a}/name: EACCES: ok")),
        "[{hv}] {verdict}"
    );
    // What b wrote in its own data/ is there; a's name is unchanged.
    let b = domid(&mut s, "xsprobe-b");
    assert_eq!(
        run(
            &mut s,
            &format!("xenstore-read /local/domain/{b}/data/probe")
        ),
        "hello"
    );
    assert_eq!(
        run(&mut s, &format!("xenstore-read /local/domain/{a}/name")),
        "xsprobe-a"
    );
    // a wrote its own probe value; b's "intruder" never landed.
    assert_eq!(
        run(
            &mut s,
            &format!("xenstore-read /local/domain/{a}/data/probe")
        ),
        "hello",
        "[{hv}] b wrote into a's data"
    );
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xenstore_permissions_hold_between_two_domus_on_ours() {
    permissions_between_domus("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xenstore_permissions_hold_between_two_domus_on_real_xen_4_17() {
    permissions_between_domus("xen-4.17");
}
