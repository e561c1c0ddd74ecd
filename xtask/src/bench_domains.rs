//! `cargo xtask bench` (two-domain part, issue 3): event-channel ping-pong between two
//! domUs, grant map+unmap and grant copy of 4 KiB, on this project's hypervisor and on
//! the real Xen 4.17, with the same dom0, ramdisk and guests in the same QEMU.
//!
//! Same method as `bench.rs` (docs/perf.md): QEMU with `-icount shift=0,sleep=off`, so
//! `rdtsc` counts executed instructions, one CPU. dom0 boots with its ramdisk; we type
//! `xl create /etc/xen/ping.cfg`, `xl create /etc/xen/pong.cfg` and `xl console pong`
//! into its console, and read the client's `bench: NAME cycles=AVG min=MIN max=MAX
//! iters=N` lines (net of an empty `rdtsc` pair) until `bench: done`. The table is
//! printed and appended to `docs/perf.md` as its own section (the existing table is
//! left alone). Std only; needs `hypervisor`, `xen-4.17`, `dom0` and `ramdisk.cpio`
//! (with `pingpong` and the two configs) in `images`.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Upper bound on one step (boot, a create, the whole ping-pong); only catches hangs.
const TIMEOUT: Duration = Duration::from_secs(900);

/// The client's benchmarks, in table order.
const NAMES: &[&str] = &[
    "evtchn_pingpong",
    "grant_map_unmap",
    "grant_copy_4k",
    "domain_create_first_output",
];

/// One `bench:` line: (name, avg, min, max, iters).
pub(crate) type Sample = (String, u64, u64, u64, u64);

/// Parse `bench: NAME cycles=A min=B max=C iters=D` anywhere in `line`.
pub fn parse_line(line: &str) -> Option<Sample> {
    let rest = &line[line.find("bench: ")? + "bench: ".len()..];
    let mut words = rest.split_whitespace();
    let name = words.next()?.to_string();
    let mut v = [None; 4];
    for w in words {
        let (k, n) = w.split_once('=')?;
        let i = ["cycles", "min", "max", "iters"]
            .iter()
            .position(|x| *x == k)?;
        v[i] = n.parse().ok();
    }
    Some((name, v[0]?, v[1]?, v[2]?, v[3]?))
}

/// QEMU arguments: `hv` with dom0 and its ramdisk, one CPU, instruction counting.
pub fn qemu_args(hv: &Path, dom0: &Path, ramdisk: &Path) -> Vec<String> {
    let esc = |p: &Path| p.display().to_string().replace(',', ",,");
    [
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        "512",
        "-smp",
        "1",
        "-icount",
        "shift=0,sleep=off",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=4",
        "-kernel",
        &hv.display().to_string(),
        "-append",
        "console=com1 dom0_mem=128M",
        "-initrd",
        &format!("{} dom0,{}", esc(dom0), esc(ramdisk)),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub(crate) struct Qemu {
    child: Child,
    rx: mpsc::Receiver<Vec<u8>>,
    pub(crate) out: String,
    pub(crate) pos: usize,
}

impl Qemu {
    pub(crate) fn start(args: &[String]) -> Result<Qemu, String> {
        let mut child = Command::new("qemu-system-x86_64")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
        let mut so = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = so.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Ok(Qemu {
            child,
            rx,
            out: String::new(),
            pos: 0,
        })
    }

    pub(crate) fn send(&mut self, s: &str) -> Result<(), String> {
        let stdin = self.child.stdin.as_mut().ok_or("no stdin")?;
        stdin
            .write_all(s.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("typing into QEMU: {e}"))
    }

    /// Wait for the first of `needles` after what was consumed; returns its index.
    pub(crate) fn expect(&mut self, needles: &[&str]) -> Result<usize, String> {
        let until = Instant::now() + TIMEOUT;
        loop {
            let hay = &self.out[self.pos..];
            if let Some((i, at, len)) = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| hay.find(n).map(|at| (i, at, n.len())))
                .min_by_key(|x| x.1)
            {
                self.pos += at + len;
                return Ok(i);
            }
            let now = Instant::now();
            if now >= until {
                return Err(format!("timed out waiting for {needles:?}"));
            }
            match self.rx.recv_timeout(until - now) {
                Ok(b) => self
                    .out
                    .push_str(&String::from_utf8_lossy(&b).replace('\r', "")),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("QEMU exited while waiting for {needles:?}"))
                }
            }
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One boot: the client's samples by name.
fn measure(hv: &Path, images: &Path) -> Result<Vec<Sample>, String> {
    let args = qemu_args(hv, &images.join("dom0"), &images.join("ramdisk.cpio"));
    let mut q = Qemu::start(&args)?;
    let step = |q: &mut Qemu, what: &str| -> Result<(), String> {
        q.send(&format!("{what}\n"))?;
        q.expect(&["xl> "]).map(|_| ())
    };
    q.expect(&["xl> "])?;
    step(&mut q, "xl create /etc/xen/ping.cfg")?;
    step(&mut q, "xl create /etc/xen/pong.cfg")?;
    let from = q.pos;
    q.send("xl console pong\n")?;
    match q.expect(&["bench: done", "pingpong: client FAIL"])? {
        0 => {}
        _ => {
            let _ = q.expect(&["\n"]);
            let line = q.out[from..q.pos].lines().last().unwrap_or("").to_string();
            return Err(format!("the client failed: {line}"));
        }
    }
    let mut got: Vec<Sample> = Vec::new();
    for l in q.out[from..q.pos].lines() {
        if let Some(s) = parse_line(l) {
            if !got.iter().any(|g| g.0 == s.0) {
                got.push(s);
            }
        }
    }
    // Domain creation: dom0 creates hello 5 times, timing each from the start of the
    // create to its first console output, and destroys it.
    q.send("\x1d")?;
    q.expect(&["xl> "])?;
    let from = q.pos;
    step(&mut q, "bench-create /etc/xen/hello.cfg 5")?;
    match q.out[from..q.pos].lines().find_map(parse_line) {
        Some(s) => got.push(s),
        None => {
            let said = q.out[from..q.pos].trim().to_string();
            return Err(format!("bench-create gave no figure: {said}"));
        }
    }
    Ok(got)
}

fn cell(r: &Result<Vec<Sample>, String>, name: &str) -> (String, Option<u64>) {
    match r {
        Ok(v) => match v.iter().find(|s| s.0 == name) {
            Some(s) => (format!("{} (min {}, max {})", s.1, s.2, s.3), Some(s.1)),
            None => ("missing".into(), None),
        },
        Err(_) => ("failed".into(), None),
    }
}

/// The markdown table, ours vs Xen 4.17.
pub fn table(ours: &Result<Vec<Sample>, String>, xen: &Result<Vec<Sample>, String>) -> String {
    let mut t = String::from(
        "| between domains | ours (instructions) | Xen 4.17 (instructions) | ours / Xen |\n|---|---|---|---|\n",
    );
    for n in NAMES {
        let (a, av) = cell(ours, n);
        let (b, bv) = cell(xen, n);
        let ratio = match (av, bv) {
            (Some(a), Some(b)) if b > 0 => format!("{:.2}", a as f64 / b as f64),
            _ => "-".into(),
        };
        let _ = writeln!(t, "| {n} | {a} | {b} | {ratio} |");
    }
    t
}

/// Boot both hypervisors, print the table and append it to `docs/perf.md`.
pub fn bench_domains(root: &Path, images: &Path) -> Result<(), String> {
    for f in ["hypervisor", "xen-4.17", "dom0", "ramdisk.cpio"] {
        if !images.join(f).is_file() {
            return Err(format!(
                "no {} (run `cargo xtask build`)",
                images.join(f).display()
            ));
        }
    }
    let ours = measure(&images.join("hypervisor"), images);
    let xen = measure(&images.join("xen-4.17"), images);
    if let (Err(a), Err(b)) = (&ours, &xen) {
        return Err(format!("no results: ours: {a}; Xen 4.17: {b}"));
    }
    let tbl = table(&ours, &xen);
    println!("{tbl}");
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut doc = format!(
        "\n## Between two domains (issue 3), recorded at {secs} (Unix time)\n\n\
         dom0 creates `ping` (server) and `pong` (client) from `/etc/xen/ping.cfg` and\n\
         `pong.cfg`; the client times, with `rdtsc` under `-icount shift=0,sleep=off` on one\n\
         CPU (instructions executed by the whole machine, both domains and the hypervisor),\n\
         an event-channel round trip to the server (it answers each ping), a grant map +\n\
         unmap of the server's page, and a 4 KiB `GNTTABOP_copy` from it. Averages, net of\n\
         an empty `rdtsc` pair. Then dom0's `bench-create /etc/xen/hello.cfg 5` creates\n\
         `hello` five times, each time from the start of the create (config parsing, domain\n\
         build, unpause) to the first byte on its console ring as dom0's console backend\n\
         sees it, and destroys it (`domain_create_first_output`).\n\n{tbl}\n"
    );
    for (who, r) in [("ours", &ours), ("Xen 4.17", &xen)] {
        if let Err(e) = r {
            let _ = writeln!(doc, "{who}: {e}\n");
        }
    }
    let shown = |p: &Path| {
        p.strip_prefix(root)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    };
    let _ = writeln!(
        doc,
        "Command line (ours; Xen 4.17 with `-kernel {}`):\n\n```\nqemu-system-x86_64 {}\n```",
        shown(&images.join("xen-4.17")),
        qemu_args(
            Path::new(&shown(&images.join("hypervisor"))),
            Path::new(&shown(&images.join("dom0"))),
            Path::new(&shown(&images.join("ramdisk.cpio")))
        )
        .join(" ")
    );
    let perf = root.join("docs/perf.md");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&perf)
        .map_err(|e| format!("{}: {e}", perf.display()))?;
    f.write_all(doc.as_bytes())
        .map_err(|e| format!("{}: {e}", perf.display()))?;
    match (ours, xen) {
        (Ok(_), Ok(_)) => Ok(()),
        (Err(e), _) => Err(format!("ours failed: {e}")),
        (_, Err(e)) => Err(format!("Xen 4.17 failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bench_lines_and_tabulates() {
        let s = parse_line("(d2) bench: grant_copy_4k cycles=900 min=850 max=4000 iters=200");
        assert_eq!(s, Some(("grant_copy_4k".into(), 900, 850, 4000, 200)));
        assert_eq!(parse_line("bench: done"), None);
        let ours = Ok(vec![("evtchn_pingpong".into(), 2000, 1900, 3000, 1000)]);
        let xen = Ok(vec![("evtchn_pingpong".into(), 1000, 900, 2000, 1000)]);
        let t = table(&ours, &xen);
        assert!(
            t.contains(
                "| evtchn_pingpong | 2000 (min 1900, max 3000) | 1000 (min 900, max 2000) | 2.00 |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| grant_copy_4k | missing | missing | - |"),
            "{t}"
        );
        let a = qemu_args(Path::new("hv"), Path::new("d0"), Path::new("r"));
        assert!(a.join(" ").contains("-icount shift=0,sleep=off"));
    }
}
