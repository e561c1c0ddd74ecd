//! Isolation, tested as a user would through dom0's `xl`: "a domU that faults without a
//! handler, corrupts its own stack, or attacks the hypervisor is crashed and handled by
//! its `on_crash` action; every other domain, dom0 included, keeps running."
//!
//! The attacker is `guest-sdk/examples/attacker`: with `attack=all` it runs every attack
//! it survives (page tables mapping frames that are not its own, the hypervisor's L4
//! slots, pointers into the hypervisor's range, huge counts, unknown hypercalls,
//! privileged operations, other domains' event channels and grants, trap handlers and
//! descriptors aimed at ring 0, forged `iret` frames...) and compares each answer with
//! Xen 4.17's, printing `attacker: NAME refused (...)` or `attacker: NAME: UNEXPECTED
//! ...`, then `attacker: all N attacks refused` or `attacker: FAILED k of N`. With a fatal
//! attack (`stack`, `stack_unmapped`, `nohandler`, `wild`, `bad_iret`) it must end
//! crashed. Configs: `attacker.cfg` (all), `attacker-fatal.cfg` (one fatal attack,
//! `on_crash = "destroy"`), `attacker-restart.cfg` (the stack attack, `on_crash =
//! "restart"`). The witness is `ticker` (`ticker: tick N` every second).
//!
//! Each scenario runs on ours and on the real Xen 4.17 (the reference).

use std::time::{Duration, Instant};
use tests::*;

const T: Duration = Duration::from_secs(90);
/// All the attacks under TCG (the frame scan and the port exhaustion dominate).
const ATTACKS: Duration = Duration::from_secs(600);

/// The fatal attacks `attacker-fatal.cfg` takes as `extra="attack=NAME"`.
const FATAL: [&str; 5] = ["stack", "stack_unmapped", "nohandler", "wild", "bad_iret"];

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

fn free_memory(s: &mut Session) -> u64 {
    let out = s.xl("xl info free_memory", T);
    out.lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no free_memory in {out:?}"))
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

/// The rows of `xl list` by name: (name, id, state).
fn list(s: &mut Session) -> Vec<(String, u32, String)> {
    let out = s.xl("xl list", T);
    out.lines()
        .skip_while(|l| !l.starts_with("Name"))
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            Some((
                c.first()?.to_string(),
                c.get(1)?.parse().ok()?,
                c.get(4)?.to_string(),
            ))
        })
        .collect()
}

/// Start the witness and return the ticks it printed so far (at least one).
fn start_witness(s: &mut Session) -> Vec<u64> {
    create(s, "/etc/xen/ticker.cfg");
    s.send("xl console ticker\n");
    s.expect("ticker: tick 2", T);
    s.send("\x1d");
    s.expect("xl> ", T);
    let t = ticks(&console_for(s, "ticker", Duration::from_secs(1)));
    assert!(!t.is_empty(), "ticker printed nothing");
    t
}

/// The witness printed on while we looked away for `elapsed`: its ticks since `before`
/// follow on without a gap, there are about as many as seconds went by (a third at
/// least, under TCG), and it still prints now.
fn witness_kept_ticking(s: &mut Session, hv: &str, before: &[u64], elapsed: Duration) {
    let after = ticks(&console_for(s, "ticker", Duration::from_secs(3)));
    let last = before.last().copied().unwrap_or(0);
    assert!(
        after.first() == Some(&(last + 1)) && after.windows(2).all(|w| w[1] == w[0] + 1),
        "[{hv}] the witness lost or repeated ticks: {before:?} then {after:?}"
    );
    let secs = elapsed.as_secs();
    assert!(
        after.len() as u64 >= secs / 3 && after.len() >= 3,
        "[{hv}] the witness printed {} ticks in {secs} s: {after:?}",
        after.len()
    );
}

/// dom0 answers and lists the domains we expect (and not those we do not).
fn listed(
    s: &mut Session,
    hv: &str,
    present: &[&str],
    absent: &[&str],
) -> Vec<(String, u32, String)> {
    let rows = list(s);
    for name in present {
        assert!(
            rows.iter().any(|(n, _, _)| n == name),
            "[{hv}] {name} not listed: {rows:?}"
        );
    }
    for name in absent {
        assert!(
            !rows.iter().any(|(n, _, _)| n == name),
            "[{hv}] {name} still listed: {rows:?}"
        );
    }
    rows
}

/// The attacker's verdict lines up to its summary; whether it said all were refused.
fn attack_verdicts(s: &mut Session) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    loop {
        s.expect("attacker: ", ATTACKS);
        let rest = s.expect("\n", T);
        let line = format!("attacker: {}", rest.trim_end());
        let done = rest.starts_with("all ") || rest.starts_with("FAILED ");
        lines.push(line);
        if done {
            return (lines, rest.starts_with("all "));
        }
    }
}

/// Attacks whose answer on ours still differs from Xen 4.17's, every one of them still
/// refused (docs/conformance.md lists Xen's answer and why): `update_va_mapping_
/// otherdomain` is -ENOSYS (Xen -EPERM); memory_op on dom0 and bad reservation pointers
/// are -EPERM/-EFAULT (Xen: 0 extents done); a done counter in the M2P is -EFAULT (Xen
/// ignores it); the VGA frame is -EBUSY (Xen -EPERM); trap handlers and callbacks at
/// the hypervisor's addresses are refused up front (Xen accepts them and the guest
/// faults there); status of a port past the allocated ones reads closed (Xen -EINVAL);
/// a never-granted ref of dom0 is GNTST_bad_gntref (Xen GNTST_general_error); remote
/// shutdown of a missing domain checks privilege first (SECURITY.md H8; Xen -ESRCH).
const KNOWN_DIFFERENCES: &[&str] = &[
    "foreign_mmu",
    "memory_op",
    "bad_pointer_reservation",
    "done_in_m2p",
    "map_mmio",
    "trap_table",
    "callbacks",
    "evtchn_bad_ports",
    "gnttab_refs",
    "remote_shutdown",
];

/// (a) `attack=all`: every attack is refused as Xen 4.17 refuses it; the witness keeps
/// ticking all along, dom0 answers `xl list`, the attacker itself is still alive
/// (nothing it did was fatal), and destroying it gives all its memory back.
fn all_attacks_refused(hv: &str) {
    let mut s = boot("isolation-all", hv);
    let before = start_witness(&mut s);
    let free = free_memory(&mut s);
    let t0 = Instant::now();
    s.send("xl create -c /etc/xen/attacker.cfg\n");
    s.expect("attacker: started, attack=all", T);
    let (lines, all_refused) = attack_verdicts(&mut s);
    s.send("\x1d");
    s.expect("xl> ", T);
    let elapsed = t0.elapsed();
    for l in &lines {
        println!("[{hv}] {l}");
    }
    let rows = listed(&mut s, hv, &["Domain-0", "ticker", "attacker"], &[]);
    let state = rows
        .iter()
        .find(|(n, _, _)| n == "attacker")
        .map(|(_, _, st)| st.clone())
        .unwrap_or_default();
    assert!(
        !state.contains('c') && !state.contains('s'),
        "[{hv}] the attacker is {state:?} after surviving every attack"
    );
    witness_kept_ticking(&mut s, hv, &before, elapsed);
    let out = s.xl("xl destroy attacker", T);
    assert!(!out.contains("failed"), "{out}");
    listed(&mut s, hv, &["Domain-0", "ticker"], &["attacker"]);
    assert_eq!(
        free_memory(&mut s),
        free,
        "[{hv}] memory after destroying the attacker"
    );
    // Last, so that the isolation checks above run whatever the verdicts. On ours, the
    // answers still known to differ from Xen 4.17's (docs/conformance.md, "Attacker"):
    // each is refused, with another errno or stricter; any other difference fails.
    let known: &[&str] = if hv == "hypervisor" {
        KNOWN_DIFFERENCES
    } else {
        &[]
    };
    for l in lines.iter().filter(|l| l.contains("UNEXPECTED")) {
        println!("[{hv}] known difference: {l}");
    }
    let unexpected: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("UNEXPECTED"))
        .filter(|l| {
            !known
                .iter()
                .any(|k| l.starts_with(&format!("attacker: {k}: UNEXPECTED")))
        })
        .collect();
    assert!(
        unexpected.is_empty() && (all_refused || !known.is_empty()),
        "[{hv}] attacks not refused as on Xen 4.17:\n{}\n----- all verdicts -----\n{}",
        unexpected
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        lines.join("\n")
    );
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn attacks_are_refused_and_other_domains_run_on_ours() {
    all_attacks_refused("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn attacks_are_refused_and_other_domains_run_on_real_xen_4_17() {
    all_attacks_refused("xen-4.17");
}

/// (b) Each fatal attack, one domain each (`on_crash = "destroy"`): the domain is
/// crashed (reason code 3) and destroyed; nothing it printed says it went on; the
/// witness ticks all along, dom0 answers, and the memory comes back every time.
fn fatal_attacks_crash_only_the_attacker(hv: &str) {
    let mut s = boot("isolation-fatal", hv);
    let before = start_witness(&mut s);
    let free = free_memory(&mut s);
    let t0 = Instant::now();
    for attack in FATAL {
        s.send(&format!(
            "xl create -c /etc/xen/attacker-fatal.cfg 'extra=\"attack={attack}\"'\n"
        ));
        s.expect(&format!("attacker: started, attack={attack}"), T);
        s.expect(&format!("attacker: {attack}: "), T);
        let upto = s.expect("(attacker-fatal) has shut down, reason code ", T);
        let code = s.expect("\n", T);
        s.expect("xl> ", T);
        assert!(
            code.starts_with("3 (crash): destroy"),
            "[{hv}] {attack}: the attacker shut down with reason code {}",
            code.trim_end()
        );
        assert!(
            !upto.contains("UNEXPECTED"),
            "[{hv}] {attack}: the attacker went on:\n{upto}"
        );
        if attack == "wild" {
            assert!(
                upto.contains("its code did not run"),
                "[{hv}] wild: no page fault at the hypervisor's text reported:\n{upto}"
            );
        }
        listed(&mut s, hv, &["Domain-0", "ticker"], &["attacker-fatal"]);
        assert_eq!(
            free_memory(&mut s),
            free,
            "[{hv}] memory after the {attack} attacker was crashed and destroyed"
        );
    }
    witness_kept_ticking(&mut s, hv, &before, t0.elapsed());
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn fatal_attacks_crash_only_the_attacker_on_ours() {
    fatal_attacks_crash_only_the_attacker("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn fatal_attacks_crash_only_the_attacker_on_real_xen_4_17() {
    fatal_attacks_crash_only_the_attacker("xen-4.17");
}

/// (b) The stack attack with `on_crash = "restart"`: crashed and restarted as a new
/// domain, twice; destroyed, it is gone and its memory is back; the witness ticks on.
fn crashed_attacker_is_restarted(hv: &str) {
    let mut s = boot("isolation-restart", hv);
    let before = start_witness(&mut s);
    let free = free_memory(&mut s);
    let t0 = Instant::now();
    create(&mut s, "/etc/xen/attacker-restart.cfg");
    let first = list(&mut s)
        .into_iter()
        .find(|(n, _, _)| n == "attacker-restart")
        .map(|(_, id, _)| id)
        .unwrap_or_else(|| panic!("[{hv}] attacker-restart not listed"));
    s.expect(
        &format!(
            "xl: domain {first} (attacker-restart) has shut down, reason code 3 (crash): restart"
        ),
        T,
    );
    s.expect(
        "(attacker-restart) has shut down, reason code 3 (crash): restart",
        T,
    );
    s.expect("xl> ", T);
    let rows = listed(&mut s, hv, &["Domain-0", "ticker", "attacker-restart"], &[]);
    let again = rows
        .iter()
        .find(|(n, _, _)| n == "attacker-restart")
        .map(|(_, id, _)| *id)
        .unwrap_or(0);
    assert!(
        again > first + 1,
        "[{hv}] restarted twice as new domains: {first} -> {again}"
    );
    let out = s.xl("xl destroy attacker-restart", T);
    assert!(!out.contains("failed"), "{out}");
    listed(&mut s, hv, &["Domain-0", "ticker"], &["attacker-restart"]);
    assert_eq!(
        free_memory(&mut s),
        free,
        "[{hv}] memory after destroying the restarted attacker"
    );
    witness_kept_ticking(&mut s, hv, &before, t0.elapsed());
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn crashed_attacker_is_restarted_per_on_crash_on_ours() {
    crashed_attacker_is_restarted("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn crashed_attacker_is_restarted_per_on_crash_on_real_xen_4_17() {
    crashed_attacker_is_restarted("xen-4.17");
}
