//! `cargo xtask bench` (network part, issue 5): TCP throughput (10 MB, checked byte by
//! byte by the receiver) and request/response latency (one-byte round trips), domU to
//! domU and domU to dom0 through netfront, netback and the bridge, against the same
//! exchanges over dom0's own loopback (two smoltcp stacks inside dom0 joined by a
//! wire), on this project's hypervisor and on the real Xen 4.17. Same method as the
//! rest (`-icount shift=0,sleep=off`, one CPU: `rdtsc` counts instructions of the whole
//! machine, idle time warped to the next timer).
//!
//! dom0's `netbench loopback` gives the baseline; `netdemo-server.cfg` (an `nb` server
//! at 10.0.2.21:5001) serves dom0's `netbench get|rr` (domU to dom0) and
//! `netdemo-client.cfg`'s guest (domU to domU). Appended to `docs/perf.md`.

use crate::bench_domains::{parse_line, qemu_args, Qemu, Sample};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// The three paths measured.
#[derive(Debug, Default)]
pub struct NetRun {
    loopback: Vec<Sample>,
    to_dom0: Vec<Sample>,
    domu_domu: Vec<Sample>,
}

const STREAM: &str = "tcp_stream_10000k";
const RR: &str = "tcp_rr";

/// The `bench:` lines printed between `from` and the current position.
fn samples(q: &Qemu, from: usize) -> Vec<Sample> {
    q.out[from..q.pos].lines().filter_map(parse_line).collect()
}

/// One exchange at dom0's prompt that must print a PASS; its `bench:` lines.
fn dom0_cmd(q: &mut Qemu, cmd: &str, done: &str) -> Result<Vec<Sample>, String> {
    eprintln!("xtask: bench net: {cmd}");
    let from = q.pos;
    q.send(&format!("{cmd}\n"))?;
    match q.expect(&[done, "netbench: FAIL", "netdemo: FAIL", "usage:"])? {
        0 => {
            // The bench lines may come after `done` (dom0 prints its report last).
            q.expect(&["xl> "])?;
            Ok(samples(q, from))
        }
        _ => {
            let _ = q.expect(&["\n"]);
            Err(format!(
                "`{cmd}` failed: {}",
                q.out[from..q.pos].lines().last().unwrap_or("")
            ))
        }
    }
}

/// One boot: the three paths.
fn measure(hv: &Path, images: &Path) -> Result<NetRun, String> {
    let args = qemu_args(hv, &images.join("dom0"), &images.join("ramdisk.cpio"));
    let mut q = Qemu::start(&args)?;
    q.expect(&["xl> "])?;
    let mut r = NetRun {
        loopback: dom0_cmd(
            &mut q,
            "netbench loopback 10000000",
            "netbench: loopback done",
        )?,
        ..NetRun::default()
    };
    q.expect(&["xl> "])?;
    q.send("xl create /etc/xen/netdemo-server.cfg\n")?;
    q.expect(&["xl> "])?;
    // Let it boot before the first connection (whose SYN would otherwise wait for
    // ARP and TCP's retransmission timers).
    std::thread::sleep(std::time::Duration::from_secs(5));
    // Until the server answers (its boot and DHCP-free static address take a moment).
    let mut up = false;
    for _ in 0..30 {
        if dom0_cmd(&mut q, "netbench rr 10.0.2.21 5001 3", "netbench: PASS").is_ok() {
            up = true;
            break;
        }
    }
    if !up {
        return Err("the nb server guest did not answer".into());
    }
    r.to_dom0.extend(dom0_cmd(
        &mut q,
        "netbench get 10.0.2.21 5001 10000000",
        "netbench: PASS",
    )?);
    r.to_dom0.extend(dom0_cmd(
        &mut q,
        "netbench rr 10.0.2.21 5001 1000",
        "netbench: PASS",
    )?);
    r.domu_domu.extend(dom0_cmd(
        &mut q,
        "xl create -c /etc/xen/netdemo-client.cfg",
        "netdemo: done",
    )?);
    r.domu_domu.extend(dom0_cmd(
        &mut q,
        "xl create -c /etc/xen/netdemo-client.cfg 'cmdline=\"rr=10.0.2.21:5001 count=1000\"'",
        "netdemo: done",
    )?);
    Ok(r)
}

fn value(v: &[Sample], name: &str) -> Option<u64> {
    v.iter().find(|s| s.0 == name).map(|s| s.1)
}

/// The markdown table for one hypervisor's run.
pub fn table(r: &Result<NetRun, String>) -> String {
    let mut t = String::from(
        "| exchange | dom0 loopback | domU to dom0 | domU to domU | domU-domU / loopback |\n|---|---|---|---|---|\n",
    );
    for (n, what) in [
        (STREAM, "10 MB stream (instructions)"),
        (RR, "1-byte round trip (instructions)"),
    ] {
        let (l, d, u) = match r {
            Ok(r) => (
                value(&r.loopback, n),
                value(&r.to_dom0, n),
                value(&r.domu_domu, n),
            ),
            Err(_) => (None, None, None),
        };
        let show = |v: Option<u64>| v.map_or("failed".to_string(), |v| v.to_string());
        let ratio = match (l, u) {
            (Some(l), Some(u)) if l > 0 => format!("{:.2}", u as f64 / l as f64),
            _ => "-".into(),
        };
        let _ = writeln!(
            t,
            "| {what} | {} | {} | {} | {ratio} |",
            show(l),
            show(d),
            show(u)
        );
    }
    t
}

/// Boot both hypervisors, print the tables, append them to `docs/perf.md`.
pub fn bench_net(root: &Path, images: &Path) -> Result<(), String> {
    let mut results = Vec::new();
    for hv in ["hypervisor", "xen-4.17"] {
        results.push((hv, measure(&images.join(hv), images)));
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut doc = format!(
        "\n## Networking (issue 5), recorded at {secs} (Unix time)\n\n\
         TCP between smoltcp stacks (`pv_drivers::nb`: the receiver checks every byte).\n\
         dom0 loopback: `netbench loopback` (two stacks inside dom0, no hypervisor on the\n\
         path); domU to dom0: dom0's `netbench get|rr` against `netdemo-server.cfg`'s\n\
         guest; domU to domU: `netdemo-client.cfg`'s guest against the same server. Each\n\
         path crosses netfront, netback (grant copies) and the `xenbr0` bridge in dom0.\n\
         Instructions (`rdtsc` under `-icount shift=0,sleep=off`, one CPU), whole machine.\n"
    );
    for (hv, r) in &results {
        let t = table(r);
        println!("{hv}:\n{t}");
        let _ = write!(
            doc,
            "\n{}:\n\n{t}",
            if *hv == "hypervisor" {
                "Ours"
            } else {
                "Xen 4.17"
            }
        );
        if let Err(e) = r {
            let _ = writeln!(doc, "\n{hv}: {e}");
        }
    }
    let perf = root.join("docs/perf.md");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&perf)
        .map_err(|e| format!("{}: {e}", perf.display()))?;
    f.write_all(doc.as_bytes())
        .map_err(|e| format!("{}: {e}", perf.display()))?;
    match results
        .iter()
        .find_map(|(hv, r)| r.as_ref().err().map(|e| (hv, e)))
    {
        Some((hv, e)) => Err(format!("{hv} failed: {e}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabulates_paths_against_loopback() {
        let s = |n: &str, v: u64| (n.to_string(), v, v, v, 1);
        let r = NetRun {
            loopback: vec![s(STREAM, 1000), s(RR, 10)],
            to_dom0: vec![s(STREAM, 2000)],
            domu_domu: vec![s(STREAM, 3000), s(RR, 40)],
        };
        let t = table(&Ok(r));
        assert!(
            t.contains("| 10 MB stream (instructions) | 1000 | 2000 | 3000 | 3.00 |"),
            "{t}"
        );
        assert!(
            t.contains("| 1-byte round trip (instructions) | 10 | failed | 40 | 4.00 |"),
            "{t}"
        );
        let t = table(&Err("x".into()));
        assert!(t.contains("| failed | failed | failed | - |"), "{t}");
    }
}
