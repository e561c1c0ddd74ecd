//! Several domUs at once, driven through dom0's `xl` as a user would (issue 3): two
//! domUs exchange data through an interdomain event channel and a granted page, three
//! domains created from config files are listed, pausing a printing guest stops its
//! output, and a crashing guest is restarted per `on_crash` while another keeps
//! printing.
//!
//! The guests: `ticker` (prints `ticker: tick N` every second), `pingpong` (`ping.cfg`
//! is the server, `pong.cfg` the client; each prints a verdict it computed,
//! `pingpong: server|client PASS|FAIL ...`) and `crasher` (faults after 3 ticks,
//! `on_crash = "restart"`).

use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(90);
/// The ping-pong, its checks and its benchmarks under TCG.
const PINGPONG: Duration = Duration::from_secs(300);

fn boot(name: &str, hv: &str) -> Session {
    let mut s = Session::start(
        &format!("{name}-{hv}"),
        &dom0_args(hv, 2, "console=com1 dom0_mem=128M"),
    );
    s.expect("xl> ", T);
    s
}

/// `xl create FILE [overrides]`, which must succeed.
fn create(s: &mut Session, args: &str) {
    let out = s.xl(&format!("xl create {args}"), T);
    assert!(out.contains("Parsing config from"), "{out}");
    assert!(
        !out.contains("error") && !out.contains("Failed"),
        "xl create {args}:\n{out}"
    );
}

fn domid(s: &mut Session, name: &str) -> u32 {
    let out = s.xl(&format!("xl domid {name}"), T);
    out.lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no domid for {name}: {out:?}"))
}

/// Attach to `dom`'s console for `for_how_long`, detach, and return what it printed
/// (what was logged since the last attach comes first).
fn console_for(s: &mut Session, dom: &str, for_how_long: Duration) -> String {
    s.send(&format!("xl console {dom}\n"));
    std::thread::sleep(for_how_long);
    s.send("\x1d");
    s.expect("xl> ", T)
}

/// The numbers of the `ticker: tick N` lines in `text`.
fn ticks(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.split_once("ticker: tick ")?.1.trim().parse().ok())
        .collect()
}

/// Wait on `dom`'s console for its `pingpong: <role> PASS|FAIL` line; the line.
fn verdict(s: &mut Session, dom: &str, role: &str) -> String {
    s.send(&format!("xl console {dom}\n"));
    let needle = format!("pingpong: {role} ");
    let line = loop {
        s.expect(&needle, PINGPONG);
        let rest = s.expect("\n", T);
        if rest.starts_with("PASS") || rest.starts_with("FAIL") {
            break format!("{needle}{}", rest.trim_end());
        }
    };
    s.send("\x1d");
    s.expect("xl> ", T);
    line
}

/// (a) Two domUs exchange data: an interdomain event channel and a granted page,
/// mapped and copied, each side checking what the other wrote.
fn ping_pong(hv: &str) {
    let mut s = boot("pingpong", hv);
    create(&mut s, "/etc/xen/ping.cfg");
    assert_eq!(
        domid(&mut s, "ping"),
        1,
        "ping.cfg/pong.cfg name their peers by id: ping must be domain 1 on a fresh dom0"
    );
    create(&mut s, "/etc/xen/pong.cfg");
    assert_eq!(domid(&mut s, "pong"), 2, "pong must be domain 2");
    let client = verdict(&mut s, "pong", "client");
    let server = verdict(&mut s, "ping", "server");
    println!("[{hv}] {client}\n[{hv}] {server}");
    for (who, v) in [("client", &client), ("server", &server)] {
        assert!(
            v.contains(" PASS "),
            "[{hv}] {who}: {v}\n----- transcript -----\n{}",
            s.output
        );
    }
    assert!(client.contains("rounds=1000"), "{client}");
    // The client's benchmark lines came through its console ring too.
    for b in ["evtchn_pingpong", "grant_map_unmap", "grant_copy_4k"] {
        assert!(
            s.output.contains(&format!("bench: {b} cycles=")),
            "[{hv}] no {b} line:\n{}",
            s.output
        );
    }
    let list = s.xl("xl list", T);
    assert!(list.contains("ping ") && list.contains("pong "), "{list}");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn two_domus_exchange_data_by_event_channel_and_grant_on_ours() {
    ping_pong("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn two_domus_exchange_data_by_event_channel_and_grant_on_real_xen_4_17() {
    ping_pong("xen-4.17");
}

/// (b) Three domains created from config files all appear in `xl list`, with their
/// own ids and memory, next to dom0.
fn three_domains(hv: &str) {
    let mut s = boot("three", hv);
    // ping and pong first: their configs name each other as domains 1 and 2.
    create(&mut s, "/etc/xen/ping.cfg");
    create(&mut s, "/etc/xen/pong.cfg");
    create(&mut s, "/etc/xen/ticker.cfg");
    let list = s.xl("xl list", T);
    let mut ids = Vec::new();
    for name in ["Domain-0", "ticker", "ping", "pong"] {
        let line = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("[{hv}] {name} not listed:\n{list}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        let id: u32 = cols[1].parse().expect("id column");
        ids.push(id);
        if name != "Domain-0" {
            assert_eq!(cols[2], "32", "[{hv}] {name}'s memory:\n{list}");
            assert_eq!(cols[3], "1", "[{hv}] {name}'s vCPUs:\n{list}");
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4, "[{hv}] ids not distinct: {ids:?}\n{list}");
    assert_eq!(ids[0], 0);
    // All three are alive: each answers on its console.
    s.send("xl console ticker\n");
    s.expect("ticker: tick", T);
    s.send("\x1d");
    s.expect("xl> ", T);
    let v = verdict(&mut s, "pong", "client");
    assert!(v.contains(" PASS "), "[{hv}] {v}");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn three_domains_from_config_files_are_listed_on_ours() {
    three_domains("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn three_domains_from_config_files_are_listed_on_real_xen_4_17() {
    three_domains("xen-4.17");
}

/// (c) Pausing a printing guest stops its output; unpausing resumes it.
fn pause_stops_output(hv: &str) {
    let mut s = boot("pause", hv);
    create(&mut s, "/etc/xen/ticker.cfg");
    s.send("xl console ticker\n");
    s.expect("ticker: tick 2", T);
    s.send("\x1d");
    s.expect("xl> ", T);
    let running = ticks(&console_for(&mut s, "ticker", Duration::from_secs(4)));
    assert!(
        running.len() >= 2,
        "[{hv}] a running ticker prints about once a second, got {running:?}"
    );
    s.xl("xl pause ticker", T);
    // Drain what it printed before the pause (twice: the backend may lag a poll).
    let before: Vec<u64> = [
        console_for(&mut s, "ticker", Duration::from_millis(500)),
        console_for(&mut s, "ticker", Duration::from_secs(1)),
    ]
    .iter()
    .flat_map(|t| ticks(t))
    .collect();
    let last = before.iter().chain(&running).copied().max().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(4));
    let paused = ticks(&console_for(&mut s, "ticker", Duration::from_secs(1)));
    assert!(
        paused.is_empty(),
        "[{hv}] a paused guest printed {paused:?} (last tick before the pause: {last})"
    );
    s.xl("xl unpause ticker", T);
    let resumed = ticks(&console_for(&mut s, "ticker", Duration::from_secs(4)));
    assert!(
        resumed.len() >= 2 && resumed.iter().all(|&n| n > last),
        "[{hv}] after unpause: {resumed:?} (last before the pause: {last})"
    );
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn pause_stops_a_guests_output_and_unpause_resumes_it_on_ours() {
    pause_stops_output("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn pause_stops_a_guests_output_and_unpause_resumes_it_on_real_xen_4_17() {
    pause_stops_output("xen-4.17");
}

/// (d) A domU that faults is reported and restarted per `on_crash`, twice, while
/// ticker keeps printing.
fn crash_restarts(hv: &str) {
    let mut s = boot("crash", hv);
    create(&mut s, "/etc/xen/ticker.cfg");
    create(&mut s, "/etc/xen/crasher.cfg");
    let first = domid(&mut s, "crasher");
    let t0 = ticks(&console_for(&mut s, "ticker", Duration::from_secs(1)));
    // Reported on dom0's console by the toolstack.
    s.expect(
        &format!("xl: domain {first} (crasher) has shut down, reason code 3 (crash): restart"),
        T,
    );
    s.expect("(crasher) has shut down, reason code 3 (crash): restart", T);
    s.expect("xl> ", T);
    let list = s.xl("xl list", T);
    assert!(
        list.lines().any(|l| l.starts_with("crasher ")),
        "[{hv}] crasher not restarted:\n{list}"
    );
    let again = domid(&mut s, "crasher");
    assert!(
        again > first,
        "[{hv}] restarted as a new domain: {first} -> {again}"
    );
    // The restarted guest runs from the start.
    s.send("xl console crasher\n");
    s.expect("crasher: started", T);
    s.send("\x1d");
    s.expect("xl> ", T);
    // ticker kept printing all along, in order, and still does.
    let t1 = ticks(&console_for(&mut s, "ticker", Duration::from_secs(3)));
    assert!(
        t1.len() >= 4 && t1.windows(2).all(|w| w[1] == w[0] + 1),
        "[{hv}] ticker's ticks during the crashes: {t1:?}"
    );
    assert!(
        t0.last()
            .is_none_or(|&a| t1.first().is_some_and(|&b| b == a + 1)),
        "[{hv}] ticker lost or repeated ticks: {t0:?} then {t1:?}"
    );
    let list = s.xl("xl list", T);
    assert!(list.lines().any(|l| l.starts_with("ticker ")), "{list}");
    assert!(list.contains("Domain-0"), "{list}");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn crashing_domu_is_restarted_while_others_keep_printing_on_ours() {
    crash_restarts("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn crashing_domu_is_restarted_while_others_keep_printing_on_real_xen_4_17() {
    crash_restarts("xen-4.17");
}

/// Per-vCPU (CPU, state, Time(s)) of `name` from `xl vcpu-list`.
fn vcpu_rows(s: &mut Session, name: &str) -> Vec<(u32, String, f64)> {
    let out = s.xl(&format!("xl vcpu-list {name}"), T);
    out.lines()
        .filter(|l| l.starts_with(&format!("{name} ")))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.get(3)?.parse().ok()?,
                f.get(4)?.to_string(),
                f.get(5)?.parse().ok()?,
            ))
        })
        .collect()
}

/// (e) With 4 CPUs, a 4-vCPU domain runs on all of them: the guest brings its vCPUs up
/// and sees each one make progress every second (its own verdict), and `xl vcpu-list`
/// shows the four together accumulating more than three CPUs' worth of time, which
/// fewer than four CPUs cannot give.
fn four_vcpus(hv: &str) {
    let mut s = Session::start(
        &format!("smp-{hv}"),
        &dom0_args(hv, 4, "console=com1 dom0_mem=128M"),
    );
    s.expect("xl> ", T);
    create(&mut s, "/etc/xen/smp.cfg");
    s.send("xl console smp\n");
    s.expect("smp: 4 vCPUs up", T);
    let verdict = s.expect(" seconds", T);
    s.send("\x1d");
    s.expect("xl> ", T);
    assert!(
        verdict.contains("smp: all 4 vCPUs ran in each of the last 3 seconds"),
        "[{hv}] the guest's verdict:\n{verdict}"
    );
    let before = vcpu_rows(&mut s, "smp");
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let after = vcpu_rows(&mut s, "smp");
    let wall = t0.elapsed().as_secs_f64();
    assert_eq!(before.len(), 4, "[{hv}] vcpu-list rows: {before:?}");
    assert_eq!(after.len(), 4, "[{hv}] vcpu-list rows: {after:?}");
    let deltas: Vec<f64> = before.iter().zip(&after).map(|(b, a)| a.2 - b.2).collect();
    let sum: f64 = deltas.iter().sum();
    eprintln!("[{hv}] over {wall:.1} s the vCPUs ran {deltas:?} s; rows now {after:?}");
    assert!(
        deltas.iter().all(|&d| d > 0.5 * wall),
        "[{hv}] every vCPU runs most of the time: {deltas:?} over {wall:.1} s"
    );
    assert!(
        sum > 3.0 * wall,
        "[{hv}] 4 vCPUs ran {sum:.1} s in {wall:.1} s: not on 4 CPUs at once ({deltas:?})"
    );
    let cpus: std::collections::BTreeSet<u32> = after.iter().map(|r| r.0).collect();
    assert!(cpus.iter().all(|&c| c < 4), "[{hv}] CPUs {cpus:?}");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_four_vcpu_domain_runs_on_all_four_cpus_on_ours() {
    four_vcpus("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_four_vcpu_domain_runs_on_all_four_cpus_on_real_xen_4_17() {
    four_vcpus("xen-4.17");
}

/// (f) `xl reboot` restarts a guest per `on_reboot` (a new domain of the same name),
/// `xl shutdown` ends it per `on_poweroff`, and a wrong name is an error that changes
/// nothing.
fn reboot_and_shutdown(hv: &str) {
    let mut s = boot("reboot", hv);
    create(&mut s, "/etc/xen/ticker.cfg");
    let first = domid(&mut s, "ticker");
    let out = s.xl("xl reboot ticker", T);
    assert!(
        out.contains(&format!("Rebooting domain {first}")),
        "[{hv}] {out}"
    );
    s.expect(
        &format!("xl: domain {first} (ticker) has shut down, reason code 1 (reboot): restart"),
        T,
    );
    s.expect("xl> ", T);
    let again = domid(&mut s, "ticker");
    assert!(
        again > first,
        "[{hv}] rebooted as a new domain: {first} -> {again}"
    );
    let t = ticks(&console_for(&mut s, "ticker", Duration::from_secs(3)));
    assert!(
        !t.is_empty() && t[0] <= 3,
        "[{hv}] the rebooted ticker starts over: {t:?}"
    );
    let bad = s.xl("xl shutdown nosuch", T);
    assert!(
        bad.contains("nosuch is an invalid domain identifier"),
        "[{hv}] {bad}"
    );
    let out = s.xl("xl shutdown ticker", T);
    assert!(
        out.contains(&format!("Shutting down domain {again}")),
        "[{hv}] {out}"
    );
    s.expect(
        &format!("xl: domain {again} (ticker) has shut down, reason code 0 (poweroff): destroy"),
        T,
    );
    s.expect("xl> ", T);
    let list = s.xl("xl list", T);
    assert!(
        !list.contains("ticker"),
        "[{hv}] still listed after shutdown:\n{list}"
    );
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xl_reboot_restarts_and_xl_shutdown_ends_a_guest_on_ours() {
    reboot_and_shutdown("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn xl_reboot_restarts_and_xl_shutdown_ends_a_guest_on_real_xen_4_17() {
    reboot_and_shutdown("xen-4.17");
}
