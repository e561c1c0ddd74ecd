//! PV networking (issue 5): guests with `vif = [...]` get a network interface through
//! netfront (in the guest) and netback + the bridge `xenbr0` (in dom0), checked by
//! typing commands into dom0 as a user would, on ours and on real Xen 4.17 (same
//! dom0). The guests (`netdemo`) compute their own verdicts: the `nb` receiver checks
//! every byte it gets and says so.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use tests::*;

const T: Duration = Duration::from_secs(120);
/// For a 10 MB transfer under CI-like load.
const LONG: Duration = Duration::from_secs(300);

fn boot_with(name: &str, hv: &str, extra: &[String]) -> Session {
    let mut args = dom0_args(hv, 2, "console=com1 dom0_mem=128M");
    args.extend(extra.iter().cloned());
    let mut s = Session::start(&format!("{name}-{hv}"), &args);
    s.expect("xl> ", T);
    s
}

fn boot(name: &str, hv: &str) -> Session {
    boot_with(name, hv, &[])
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

/// The id of domain `name`.
fn domid(s: &mut Session, name: &str) -> u32 {
    s.xl(&format!("xl domid {name}"), T)
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no id for {name}"))
}

/// Attach to `dom`'s console until `needle` appears, detach; what it printed (what was
/// logged since the last attach comes first).
fn console_until(s: &mut Session, dom: &str, needle: &str, timeout: Duration) -> String {
    s.send(&format!("xl console {dom}\n"));
    let mut out = s.expect(needle, timeout);
    s.send("\x1d");
    out.push_str(&s.expect("xl> ", T));
    out
}

/// `xl create -c ARGS` of a guest that powers off by itself; what it printed.
fn run_to_poweroff(s: &mut Session, args: &str, timeout: Duration) -> String {
    s.send(&format!("xl create -c {args}\n"));
    let out = s.expect("reason code 0 (poweroff)", timeout);
    s.expect("xl> ", T);
    out
}

/// No guest's entries are left in netback's part of the store.
fn no_backend_entries(s: &mut Session, hv: &str) {
    let be = s.xl("xenstore-ls /local/domain/0/backend", T);
    assert!(
        !be.lines()
            .any(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())),
        "[{hv}] backend entries left:\n{be}"
    );
}

/// A plain HTTP/1.0 GET of `/` from 127.0.0.1:`port`, retried until a whole answer
/// comes (QEMU's forwarding accepts the connection before the guest is up, then drops
/// it) or `within` passes: (status line, body).
fn http_get(port: u16, within: Duration) -> Result<(String, String), String> {
    let until = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < until {
        let r = (|| -> std::io::Result<String> {
            let mut c = TcpStream::connect(("127.0.0.1", port))?;
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            c.write_all(b"GET / HTTP/1.0\r\nHost: netdemo\r\n\r\n")?;
            let mut resp = Vec::new();
            c.read_to_end(&mut resp)?;
            Ok(String::from_utf8_lossy(&resp).into_owned())
        })();
        match r {
            Ok(resp) if resp.contains("\r\n\r\n") => {
                let (head, body) = resp.split_once("\r\n\r\n").unwrap_or_default();
                let status = head.lines().next().unwrap_or_default().to_string();
                return Ok((status, body.to_string()));
            }
            Ok(resp) => last = format!("incomplete answer {resp:?}"),
            Err(e) => last = format!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(last)
}

/// The host fetches a page from a guest's web server through QEMU's user network: its
/// forwarded port reaches 10.0.2.20:80 over dom0's virtio-net NIC, the bridge and the
/// guest's vif. dom0 took its own address from QEMU's DHCP server and learned the
/// guest's MAC on the bridge.
fn host_fetches_a_page(hv: &str) {
    let port = free_port();
    let nic = [
        "-nic".to_string(),
        format!("user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-10.0.2.20:80"),
    ];
    let mut s = boot_with("net-http", hv, &nic);
    let out = s.xl("xl create /etc/xen/netdemo-http.cfg", T);
    assert!(!out.contains("rror"), "[{hv}] {out}");
    let id = domid(&mut s, "web");
    let t0 = Instant::now();
    let got = http_get(port, Duration::from_secs(60));
    let (status, body) = match got {
        Ok(r) => r,
        Err(e) => {
            let c = console_until(&mut s, "web", "netdemo:", T);
            panic!("[{hv}] no page from 127.0.0.1:{port} in 60 s: {e}\nguest:\n{c}");
        }
    };
    eprintln!("[{hv}] page after {:?}", t0.elapsed());
    assert_eq!(status, "HTTP/1.0 200 OK", "[{hv}]\n{body}");
    assert!(
        body.contains(&format!("Xen PV domain {id}, address 10.0.2.20/24")),
        "[{hv}] {body}"
    );
    let c = console_until(&mut s, "web", "netdemo: served GET / HTTP/1.0", T);
    assert!(!c.contains("FAIL"), "[{hv}]\n{c}");
    // dom0's own address came from QEMU's DHCP server (10.0.2.15, its first lease).
    let mut ifc = String::new();
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        ifc = s.xl("ifconfig", T);
        if !ifc.contains("waiting for DHCP") {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(ifc.contains("xenbr0: inet 10.0.2.15/24"), "[{hv}]\n{ifc}");
    assert!(ifc.contains("eth0: virtio-net"), "[{hv}]\n{ifc}");
    let macs = s.xl("brctl showmacs xenbr0", T);
    assert!(macs.contains("00:16:3e:00:00:20"), "[{hv}]\n{macs}");
    s.xl("xl destroy web", T);
    no_backend_entries(&mut s, hv);
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn the_host_fetches_a_page_from_a_guest_web_server_on_ours() {
    host_fetches_a_page("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn the_host_fetches_a_page_from_a_guest_web_server_on_real_xen_4_17() {
    host_fetches_a_page("xen-4.17");
}

/// Two guests exchange 10 MB over TCP each way through the bridge: the client sends
/// the `nb` pattern and the server checks every byte and answers; then the server
/// sends it and the client checks it.
fn two_guests_exchange(hv: &str) {
    let mut s = boot("net-pair", hv);
    let out = s.xl("xl create /etc/xen/netdemo-server.cfg", T);
    assert!(!out.contains("rror"), "[{hv}] {out}");
    console_until(&mut s, "nbserver", "netdemo: nb server on port 5001", T);
    let t0 = Instant::now();
    let c = run_to_poweroff(&mut s, "/etc/xen/netdemo-client.cfg", LONG);
    eprintln!("[{hv}] 10 MB guest to guest: {:?}", t0.elapsed());
    assert!(
        c.contains("netdemo: PASS Sink 10000000 of 10000000 intact to 10.0.2.21:5001"),
        "[{hv}]\n{c}"
    );
    let t0 = Instant::now();
    let c = run_to_poweroff(
        &mut s,
        "/etc/xen/netdemo-client.cfg 'cmdline=\"get=10.0.2.21:5001 bytes=10000000\"'",
        LONG,
    );
    eprintln!("[{hv}] 10 MB guest from guest: {:?}", t0.elapsed());
    assert!(
        c.contains("netdemo: PASS Give 10000000 of 10000000 intact to 10.0.2.21:5001"),
        "[{hv}]\n{c}"
    );
    let srv = console_until(&mut s, "nbserver", "netdemo: served Give", T);
    assert!(
        srv.contains("netdemo: served Sink 10000000 of 10000000 intact: PASS"),
        "[{hv}]\n{srv}"
    );
    assert!(!srv.contains("FAIL"), "[{hv}]\n{srv}");
    // A pair destroyed in the middle of a 100 MB transfer leaves netback and the bridge
    // working for the next pair.
    s.xl(
        "xl create /etc/xen/netdemo-client.cfg 'cmdline=\"send=10.0.2.21:5001 bytes=100000000\"'",
        T,
    );
    console_until(&mut s, "nbclient", "netdemo: address", T);
    std::thread::sleep(Duration::from_millis(500));
    let list = s.xl("brctl show", T);
    s.xl("xl destroy nbclient", T);
    s.xl("xl destroy nbserver", T);
    let cid_gone = s.xl("brctl show", T);
    assert!(
        cid_gone.lines().filter(|l| l.contains("netback:")).count() == 0,
        "[{hv}] vifs left on the bridge:\n{list}\n{cid_gone}"
    );
    no_backend_entries(&mut s, hv);
    let out = s.xl("xl create /etc/xen/netdemo-server.cfg", T);
    assert!(!out.contains("rror"), "[{hv}] {out}");
    console_until(&mut s, "nbserver", "netdemo: nb server on port 5001", T);
    let c = run_to_poweroff(
        &mut s,
        "/etc/xen/netdemo-client.cfg 'cmdline=\"send=10.0.2.21:5001 bytes=1000000\"'",
        LONG,
    );
    assert!(
        c.contains("netdemo: PASS Sink 1000000 of 1000000 intact to 10.0.2.21:5001"),
        "[{hv}] after a pair was destroyed mid-transfer:\n{c}"
    );
    s.xl("xl destroy nbserver", T);
    no_backend_entries(&mut s, hv);
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn two_guests_exchange_10_mb_over_tcp_on_ours() {
    two_guests_exchange("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn two_guests_exchange_10_mb_over_tcp_on_real_xen_4_17() {
    two_guests_exchange("xen-4.17");
}

/// `brctl show`'s counters of `port` (`vifD.N`, `dom0`, `eth0`): its bridge line and
/// its netback line (vifs only).
fn counters(show: &str, port: &str) -> (Option<String>, Option<String>) {
    let bridge = show
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{port}: rx ")))
        .map(str::to_string);
    let netback = show
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{port} netback: ")))
        .map(str::to_string);
    (bridge, netback)
}

/// The number before `what` in `line` ("12 malformed").
fn number_before(line: &str, what: &str) -> u64 {
    let i = line
        .find(what)
        .unwrap_or_else(|| panic!("no {what:?} in {line:?}"));
    line[..i]
        .split(|c: char| !c.is_ascii_digit())
        .rfind(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number before {what:?} in {line:?}"))
}

/// A hostile netfront (netdemo `hostile=`) puts malformed tx requests on its ring and
/// floods the bridge with broadcast and spoofed frames while two other guests move
/// 10 MB: each bad request is answered exactly once (its own verdict), the pair's
/// transfer is intact, the drops are counted on the hostile vif only; then it breaks
/// its ring, and netback disconnects it alone: a new guest still connects.
fn hostile_netfront(hv: &str) {
    let mut s = boot("net-hostile", hv);
    let out = s.xl("xl create /etc/xen/netdemo-hostile.cfg", T);
    assert!(!out.contains("rror"), "[{hv}] {out}");
    let hid = domid(&mut s, "nethostile");
    let first = console_until(&mut s, "nethostile", "nethostile: round 1 done", T);
    assert!(!first.contains("FAIL"), "[{hv}]\n{first}");
    for line in [
        "nethostile: ungranted gref: status -1",
        "nethostile: 19 data slots: status -1",
        "nethostile: 18 data slots (the most): status 0",
        "nethostile: extra type 5: status -1",
        "nethostile: a more_data chain that never ends: status -1",
    ] {
        assert!(first.contains(line), "[{hv}] no {line:?}:\n{first}");
    }
    let out = s.xl("xl create /etc/xen/netdemo-server.cfg", T);
    assert!(!out.contains("rror"), "[{hv}] {out}");
    let sid = domid(&mut s, "nbserver");
    console_until(&mut s, "nbserver", "netdemo: nb server on port 5001", T);
    let t0 = Instant::now();
    let c = run_to_poweroff(&mut s, "/etc/xen/netdemo-client.cfg", LONG);
    eprintln!("[{hv}] 10 MB next to the hostile guest: {:?}", t0.elapsed());
    assert!(
        c.contains("netdemo: PASS Sink 10000000 of 10000000 intact to 10.0.2.21:5001"),
        "[{hv}]\n{c}"
    );
    // The drops, on the hostile vif only.
    let show = s.xl("brctl show", T);
    let (hb, hn) = counters(&show, &format!("vif{hid}.0"));
    let (sb, sn) = counters(&show, &format!("vif{sid}.0"));
    let (hb, hn, sb, sn) = match (hb, hn, sb, sn) {
        (Some(a), Some(b), Some(c), Some(d)) => (a, b, c, d),
        _ => panic!("[{hv}] missing counters:\n{show}"),
    };
    assert!(
        number_before(&hb, "dropped), tx") > 0,
        "[{hv}] no spoofed frame dropped:\n{show}"
    );
    assert!(number_before(&hn, "malformed") > 0, "[{hv}]\n{show}");
    assert!(number_before(&hn, "grant errors") > 0, "[{hv}]\n{show}");
    assert_eq!(number_before(&sb, "dropped), tx"), 0, "[{hv}]\n{show}");
    assert_eq!(number_before(&sn, "malformed"), 0, "[{hv}]\n{show}");
    assert_eq!(number_before(&sn, "grant errors"), 0, "[{hv}]\n{show}");
    // Stop it: its verdict, then its broken ring.
    s.xl(
        &format!("xenstore-write /local/domain/{hid}/data/hostile-stop 1"),
        T,
    );
    let v = console_until(&mut s, "nethostile", "nethostile: done", T);
    assert!(v.contains("nethostile: PASS"), "[{hv}]\n{first}{v}");
    assert!(
        v.contains("nethostile: stopped by data/hostile-stop"),
        "[{hv}] it was not still at it:\n{v}"
    );
    assert!(
        v.contains("nethostile: req_prod 1000 ahead: 0 responses in 2 s"),
        "[{hv}]\n{v}"
    );
    let broken = format!("netback: domain {hid} vif 0: broken tx ring");
    assert!(
        s.output.contains(&broken),
        "[{hv}] no {broken:?}:\n{}",
        s.output
    );
    // It is disconnected and told so: backend Closed, the reason in its error node.
    let be = format!("/local/domain/0/backend/vif/{hid}/0");
    let st = s.xl(&format!("xenstore-read {be}/state"), T);
    assert!(st.starts_with("6\n"), "[{hv}] backend state {st:?}");
    let err = s.xl(&format!("xenstore-read {be}/error"), T);
    assert!(err.contains("broken tx ring"), "[{hv}] {err}");
    let show = s.xl("brctl show", T);
    let (hb, hn) = counters(&show, &format!("vif{hid}.0"));
    let (sb, _) = counters(&show, &format!("vif{sid}.0"));
    assert!(hb.is_none(), "[{hv}] hostile port still bridged:\n{show}");
    assert!(sb.is_some(), "[{hv}] the server's port went too:\n{show}");
    // netback counted exactly the bad packets the guest says it sent and saw refused.
    let hn = hn.unwrap_or_else(|| panic!("[{hv}] no netback line:\n{show}"));
    let refused = number_before(
        v.lines()
            .find(|l| l.starts_with("nethostile: PASS"))
            .unwrap_or_default(),
        "bad packets refused",
    );
    assert_eq!(
        number_before(&hn, "malformed") + number_before(&hn, "grant errors"),
        refused,
        "[{hv}]\n{v}\n{show}"
    );
    // A new guest connects to the server.
    let c = run_to_poweroff(
        &mut s,
        "/etc/xen/netdemo-client.cfg 'cmdline=\"send=10.0.2.21:5001 bytes=1000000\"'",
        T,
    );
    assert!(
        c.contains("netdemo: PASS Sink 1000000 of 1000000 intact to 10.0.2.21:5001"),
        "[{hv}]\n{c}"
    );
    s.xl("xl destroy nethostile", T);
    s.xl("xl destroy nbserver", T);
    no_backend_entries(&mut s, hv);
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_hostile_netfront_hurts_no_other_domain_on_ours() {
    hostile_netfront("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_hostile_netfront_hurts_no_other_domain_on_real_xen_4_17() {
    hostile_netfront("xen-4.17");
}

/// The device rows of `xl network-list`'s output.
fn rows(list: &str) -> usize {
    list.lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .count()
}

/// A guest started without a vif watches `device/vif`: `xl network-attach` gives it
/// one, which it connects and serves `nb` on, and dom0 sends it 100 kB; `xl
/// network-detach` takes it away, and the guest closes it (netfront's close path) and
/// sees the node go. Bad specifications are refused and change nothing.
fn hot_attach(hv: &str) {
    let mut s = boot("net-hotplug", hv);
    let out = s.xl("xl create /etc/xen/netdemo-hotplug.cfg", T);
    assert!(!out.contains("rror"), "[{hv}] {out}");
    let id = domid(&mut s, "nethp");
    console_until(&mut s, "nethp", "netdemo: watching device/vif", T);
    let bad = s.xl("xl network-attach nethp mac=zz", T);
    assert!(bad.contains("Invalid parameter `mac'."), "[{hv}] {bad}");
    let bad = s.xl("xl network-attach nethp bridge=xenbr9", T);
    assert!(
        bad.contains("bridge xenbr9 does not exist") && bad.contains("libxl_device_nic_add failed"),
        "[{hv}] {bad}"
    );
    let list = s.xl("xl network-list nethp", T);
    assert!(list.starts_with("Idx BE Mac Addr."), "[{hv}]\n{list}");
    assert_eq!(rows(&list), 0, "[{hv}] not just the header:\n{list}");
    let fe = s.xl(&format!("xenstore-ls /local/domain/{id}/device"), T);
    assert!(!fe.contains("vif"), "[{hv}]\n{fe}");

    let out = s.xl(
        "xl network-attach nethp ip=10.0.2.30/24 mac=00:16:3e:00:00:30",
        T,
    );
    assert!(!out.contains("rror"), "[{hv}] {out}");
    let up = console_until(&mut s, "nethp", "netdemo: nb server on port 5001", T);
    for line in [
        "netdemo: hot-attached vif 0",
        "netdemo: mac 00:16:3e:00:00:30",
        "netdemo: address 10.0.2.30/24",
    ] {
        assert!(up.contains(line), "[{hv}] no {line:?}:\n{up}");
    }
    let list = s.xl("xl network-list nethp", T);
    assert!(
        list.lines().any(|l| l.starts_with("0 ")
            && l.contains("00:16:3e:00:00:30")
            && l.contains(&format!("/local/domain/0/backend/vif/{id}/0"))),
        "[{hv}]\n{list}"
    );
    let nb = s.xl("netbench send 10.0.2.30 5001 100000", T);
    if !(nb.contains("netbench: PASS") && nb.contains("Sink 100000 of 100000 intact")) {
        let show = s.xl("brctl show", T);
        let macs = s.xl("brctl showmacs xenbr0", T);
        let ifc = s.xl("ifconfig", T);
        let c = console_until(&mut s, "nethp", "netdemo:", T);
        panic!("[{hv}]\n{nb}\n{show}\n{macs}\n{ifc}\nguest:\n{c}");
    }
    let out = s.xl("xl network-detach nethp 0", T);
    assert!(!out.contains("rror"), "[{hv}] {out}");
    let end = console_until(&mut s, "nethp", "netdemo: done", T);
    for line in [
        "netdemo: served Sink 100000 of 100000 intact: PASS",
        "netdemo: backend Closing, closing vif 0",
        "netdemo: vif 0 closed",
        "netdemo: device/vif/0 removed",
    ] {
        assert!(end.contains(line), "[{hv}] no {line:?}:\n{up}{end}");
    }
    assert!(!end.contains("FAIL"), "[{hv}]\n{end}");
    let list = s.xl("xl network-list nethp", T);
    assert_eq!(rows(&list), 0, "[{hv}] still listed:\n{list}");
    let none = s.xl("xl network-detach nethp 0", T);
    assert!(none.contains("Unknown device 0."), "[{hv}] {none}");
    s.xl("xl destroy nethp", T);
    no_backend_entries(&mut s, hv);
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_running_guest_notices_a_hot_attached_vif_on_ours() {
    hot_attach("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_running_guest_notices_a_hot_attached_vif_on_real_xen_4_17() {
    hot_attach("xen-4.17");
}
