//! `cargo xtask bench`: path lengths of hypercalls and page-table updates, on this
//! project's hypervisor and on the real Xen 4.17, with the same guest in the same QEMU.
//!
//! The bench guest (`guest-sdk/examples/bench`) times each operation with `rdtsc`. QEMU
//! runs with `-icount shift=0,sleep=off`: the guest's TSC advances by one per executed
//! instruction, so the numbers are path lengths (instructions), deterministic and
//! independent of the host's speed, not wall time. See DESIGN.md §5.
//!
//! Each hypervisor is booted [`RUNS`] times to check that the numbers repeat. The result
//! table goes to stdout and, with the command lines, date, QEMU version and commit, to
//! `docs/perf.md`.
//!
//! Self-contained (std only): it needs only the images in `images` (`hypervisor`,
//! `xen-4.17`, `bench`), made by `cargo xtask build`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Boots per hypervisor (the second checks that the numbers repeat; skipped when the
/// first fails).
pub const RUNS: usize = 2;

/// Upper bound on one boot (a run normally takes seconds; this only catches hangs, and
/// is generous so that a slow machine never fails the benchmark).
pub const TIMEOUT: Duration = Duration::from_secs(600);

/// The guest's last line.
const DONE: &str = "bench: done";

/// Lines after which a boot is over even without [`DONE`]: Xen's reports of dom0's end
/// (`xen/common/shutdown.c`; on poweroff Xen halts and QEMU keeps running) and ours.
const END_MARKERS: &[&str] = &[
    "Hardware Dom0 halted",
    "Hardware Dom0 shutdown",
    "Hardware Dom0 crashed",
    "Hardware domain 0 did unsupported soft reset",
    "Panic on CPU",
    "hypervisor: dom0 ",
    "HYPERVISOR PANIC",
];

/// Boot-log lines worth recording next to the numbers: what Xen enabled on this CPU
/// (mitigations on the hypercall path, XPTI page-table isolation for 64-bit PV).
const SETTINGS: &[&str] = &[
    "Xen settings:",
    "Support for PV VMs:",
    "XPTI (64-bit PV only):",
    "PV L1TF shadowing:",
];

/// The empty `rdtsc` pair the guest subtracts; reported, but not a benchmark.
const RDTSC_PAIR: &str = "rdtsc_pair";

/// One `bench: NAME cycles=N min=N max=N iters=N` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Net average per operation (empty rdtsc pair subtracted), in TSC ticks.
    pub cycles: u64,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub iters: Option<u64>,
}

/// Parse a `bench:` result line (anywhere in `line`: the serial console may prefix it).
pub fn parse_line(line: &str) -> Option<(String, Sample)> {
    let rest = &line[line.find("bench: ")? + "bench: ".len()..];
    let mut words = rest.split_whitespace();
    let name = words.next()?;
    if name.contains('=') {
        return None;
    }
    let mut kv = BTreeMap::new();
    for w in words {
        let (k, v) = w.split_once('=')?;
        kv.insert(k, v.parse::<u64>().ok()?);
    }
    Some((
        name.to_string(),
        Sample {
            cycles: *kv.get("cycles")?,
            min: kv.get("min").copied(),
            max: kv.get("max").copied(),
            iters: kv.get("iters").copied(),
        },
    ))
}

/// What one boot produced.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// Results in the order the guest printed them.
    pub results: Vec<(String, Sample)>,
    /// The guest printed [`DONE`].
    pub done: bool,
    /// How the boot ended (for reports).
    pub ended: String,
    /// The last non-empty output line before the end (for reports).
    pub last_line: String,
    /// The guest's parameters, from its `bench: iters=N warmup=M` line.
    pub params: Option<String>,
    /// The hypervisor's boot-log lines about settings that change its paths (Xen's
    /// speculative-mitigation summary), without the `(XEN)` prefix.
    pub settings: Vec<String>,
}

impl Run {
    fn get(&self, op: &str) -> Option<&Sample> {
        self.results.iter().find(|(n, _)| n == op).map(|(_, s)| s)
    }

    /// Feed one output line; returns true when the boot is over.
    pub fn feed(&mut self, line: &str) -> bool {
        let t = line.trim();
        if !t.is_empty() {
            self.last_line = t.chars().take(160).collect();
        }
        if let Some(r) = parse_line(line) {
            self.results.push(r);
        } else if let Some(i) = line.find("bench: iters=") {
            self.params = Some(line[i + "bench: ".len()..].trim().to_string());
        } else if SETTINGS.iter().any(|k| line.contains(k)) {
            let t = line.trim_start_matches("(XEN)").trim();
            self.settings.push(t.to_string());
        }
        if line.contains(DONE) {
            self.done = true;
            self.ended = "guest finished".into();
            return true;
        }
        if let Some(m) = END_MARKERS.iter().find(|m| line.contains(*m)) {
            self.ended = format!("stopped at \"{m}\"");
            return true;
        }
        false
    }

    /// Why this boot gave no (or incomplete) results.
    pub fn failure(&self) -> Option<String> {
        if self.done && !self.results.is_empty() {
            return None;
        }
        Some(if self.last_line.is_empty() {
            self.ended.clone()
        } else {
            format!("{}; last output: {}", self.ended, self.last_line)
        })
    }
}

/// A hypervisor to measure.
struct Target {
    /// Column title.
    title: &'static str,
    /// Short name for messages and the determinism note.
    short: &'static str,
    image: PathBuf,
}

/// QEMU arguments: `hv` as the multiboot kernel, the bench guest as dom0.
pub fn qemu_args(hv: &Path, guest: &Path) -> Vec<String> {
    let module = format!("{} bench", guest.display().to_string().replace(',', ",,"));
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
        "-nographic",
        "-no-reboot",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=4",
        "-kernel",
        &hv.display().to_string(),
        "-append",
        "console=com1 dom0_mem=64M",
        "-initrd",
        &module,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A command line as one could paste it into a shell.
pub fn shell_line(prog: &str, args: &[String]) -> String {
    let mut s = prog.to_string();
    for a in args {
        s.push(' ');
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+".contains(c))
        {
            s.push_str(a);
        } else {
            s.push('\'');
            s.push_str(&a.replace('\'', r"'\''"));
            s.push('\'');
        }
    }
    s
}

/// Boot once and collect the `bench:` lines.
fn run_once(args: &[String], echo_prefix: &str) -> Result<Run, String> {
    let mut child = Command::new("qemu-system-x86_64")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
    let stdout = child.stdout.take().ok_or("qemu has no stdout")?;
    let mut stderr = child.stderr.take().ok_or("qemu has no stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (rx, reader) = crate::xenref::line_reader(stdout);

    let deadline = Instant::now() + TIMEOUT;
    let mut run = Run::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            run.ended = format!("timed out after {} s", TIMEOUT.as_secs());
            break;
        }
        match rx.recv_timeout(left) {
            Ok(line) => {
                if parse_line(&line).is_some() {
                    eprintln!("{echo_prefix}{}", line.trim());
                }
                if run.feed(&line) {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                run.ended = format!("timed out after {} s", TIMEOUT.as_secs());
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                run.ended = "QEMU exited".into();
                break;
            }
        }
    }
    // Our own child: stop it if it is still running (Xen halts instead of powering off).
    let exited = child.try_wait().ok().flatten();
    if exited.is_none() {
        let _ = child.kill();
    }
    let status = child.wait().ok();
    let _ = reader.join();
    let err = err_reader.join().unwrap_or_default();
    if exited.is_some() {
        if let Some(code) = status.and_then(|s| s.code()) {
            run.ended = format!("{} (status {code})", run.ended);
        }
        if let Some(l) = err.lines().find(|l| !l.contains("warning")) {
            run.ended = format!("{}: {}", run.ended, l.trim());
        }
    }
    Ok(run)
}

/// Run `target` [`RUNS`] times; `Err` if it could not be started at all.
fn measure(target: &Target, guest: &Path) -> Result<Vec<Run>, String> {
    if !target.image.is_file() {
        return Err(format!("no image {}", target.image.display()));
    }
    let args = qemu_args(&target.image, guest);
    let mut runs = Vec::new();
    for i in 1..=RUNS {
        eprintln!("xtask bench: {} run {i}/{RUNS}", target.short);
        let run = run_once(&args, &format!("  {} #{i}: ", target.short))?;
        let failed = run.failure();
        runs.push(run);
        if let Some(why) = failed {
            // A boot that failed (or hung until the timeout) would only fail again.
            eprintln!("xtask bench: {} run {i} incomplete: {why}", target.short);
            break;
        }
    }
    Ok(runs)
}

/// What the table needs of one hypervisor: its first complete run, or why there is none.
fn first_ok(runs: &Result<Vec<Run>, String>) -> Result<&Run, String> {
    match runs {
        Err(e) => Err(e.clone()),
        Ok(runs) => runs.iter().find(|r| r.failure().is_none()).ok_or_else(|| {
            runs.first()
                .and_then(Run::failure)
                .unwrap_or_else(|| "no runs".into())
        }),
    }
}

/// Operations in the order the guests printed them (rdtsc pair last).
fn operations(runs: &[&Run]) -> Vec<String> {
    let mut ops: Vec<String> = Vec::new();
    for r in runs {
        for (n, _) in &r.results {
            if n != RDTSC_PAIR && !ops.contains(n) {
                ops.push(n.clone());
            }
        }
    }
    if runs.iter().any(|r| r.get(RDTSC_PAIR).is_some()) {
        ops.push(RDTSC_PAIR.into());
    }
    ops
}

/// ours/xen to two decimals.
pub fn ratio(ours: u64, xen: u64) -> Option<String> {
    (xen != 0).then(|| format!("{:.2}", ours as f64 / xen as f64))
}

/// The markdown result table (and the per-iteration extremes).
pub fn table(ours: Result<&Run, String>, xen: Result<&Run, String>) -> String {
    let present: Vec<&Run> = [&ours, &xen]
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    let ops = operations(&present);
    let cell = |r: &Result<&Run, String>, op: &str| -> (String, String) {
        match r {
            Err(_) => ("did not run".into(), "".into()),
            Ok(run) => match run.get(op) {
                None => ("—".into(), "".into()),
                Some(s) => (
                    s.cycles.to_string(),
                    match (s.min, s.max) {
                        (Some(a), Some(b)) => format!("{a} / {b}"),
                        _ => "".into(),
                    },
                ),
            },
        }
    };
    let mut t = String::new();
    t.push_str("| operation | ours (cycles) | Xen 4.17 (cycles) | ours/Xen | ours min / max | Xen min / max |\n");
    t.push_str("|---|---:|---:|---:|---:|---:|\n");
    for op in &ops {
        let (o, omm) = cell(&ours, op);
        let (x, xmm) = cell(&xen, op);
        let r = match (
            ours.as_ref().ok().and_then(|r| r.get(op)),
            xen.as_ref().ok().and_then(|r| r.get(op)),
        ) {
            (Some(a), Some(b)) => ratio(a.cycles, b.cycles).unwrap_or_else(|| "—".into()),
            _ => "—".into(),
        };
        let label = if op == RDTSC_PAIR {
            "(empty rdtsc pair, subtracted from the rows above)".to_string()
        } else {
            op.clone()
        };
        let _ = writeln!(t, "| {label} | {o} | {x} | {r} | {omm} | {xmm} |");
    }
    if let Err(e) = &ours {
        let _ = writeln!(t, "\nours: did not run ({e})");
    }
    if let Err(e) = &xen {
        let _ = writeln!(t, "\nXen 4.17: did not run ({e})");
    }
    t
}

/// Whether the runs of one hypervisor gave the same numbers.
pub fn repeatability(name: &str, runs: &Result<Vec<Run>, String>) -> String {
    let Ok(runs) = runs else {
        return format!("{name}: not run.");
    };
    let ok: Vec<&Run> = runs.iter().filter(|r| r.failure().is_none()).collect();
    if ok.len() < 2 {
        return format!(
            "{name}: {} complete run(s) of {}, nothing to compare.",
            ok.len(),
            runs.len()
        );
    }
    let first = ok[0];
    let mut diffs = Vec::new();
    for (i, r) in ok.iter().enumerate().skip(1) {
        for (op, s) in &first.results {
            match r.get(op) {
                Some(t) if t == s => {}
                Some(t) => diffs.push(format!(
                    "run {} {op}: {} (min {:?} max {:?}) vs {} (min {:?} max {:?})",
                    i + 1,
                    t.cycles,
                    t.min,
                    t.max,
                    s.cycles,
                    s.min,
                    s.max
                )),
                None => diffs.push(format!("run {} has no {op}", i + 1)),
            }
        }
    }
    if diffs.is_empty() {
        format!(
            "{name}: all {} runs gave identical numbers (average, min and max of every operation).",
            ok.len()
        )
    } else {
        format!("{name}: the runs differ from run 1: {}.", diffs.join("; "))
    }
}

/// Which operations had iterations dearer than their cheapest (an interrupt or other
/// hypervisor work landing inside the timed window).
pub fn outliers(name: &str, run: &Result<&Run, String>) -> Option<String> {
    let run = run.as_ref().ok()?;
    let spread: Vec<String> = run
        .results
        .iter()
        .filter_map(|(op, s)| match (s.min, s.max) {
            (Some(a), Some(b)) if b > a => Some(format!("{op} (max − min = {})", b - a)),
            _ => None,
        })
        .collect();
    Some(if spread.is_empty() {
        format!("{name}: every iteration of every operation cost the same (min = max).")
    } else {
        format!(
            "{name}: some iterations cost more than the cheapest in {}; the averages \
             include them.",
            spread.join(", ")
        )
    })
}

/// `(year, month, day)` of a day count since 1970-01-01 (proleptic Gregorian).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        s / 3600,
        (s % 3600) / 60
    )
}

fn command_output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn qemu_version() -> String {
    command_output(Command::new("qemu-system-x86_64").arg("--version"))
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn commit(root: &Path) -> String {
    let head = command_output(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(root),
    )
    .unwrap_or_else(|| "unknown".into());
    let dirty = command_output(
        Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .current_dir(root),
    )
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    }
}

/// A path relative to `root` when it is inside it (for stable command lines in the doc).
fn rel(root: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| p.to_path_buf())
}

/// How the numbers are made and what they mean (the doc's second half).
fn method(params: &str) -> String {
    format!(
        "\
## What the numbers mean

QEMU runs in software emulation (TCG) with `-icount shift=0,sleep=off`: the virtual
clock, and with it the guest's TSC, advances by exactly one tick per executed guest
instruction. A `cycles` figure is therefore a **path length in instructions** (guest and
hypervisor instructions between the two `rdtsc`s), not wall time and not real-CPU
cycles: a cache miss, a TLB miss or a slow instruction (`syscall`, `sysret`, `invlpg`,
`wrmsr`) costs one tick like any `mov`. Use the numbers to compare how much work each
hypervisor does per operation, not to predict timings on hardware.

The bench guest (`guest-sdk/examples/bench`, the same binary on both hypervisors) times
each operation individually, `rdtsc; op; rdtsc`, for the iterations it reports
(`{params}`: timed iterations after untimed warm-up ones), and subtracts the
average cost of an empty `rdtsc` pair (shown in the last row). `ours`/`Xen 4.17` are the net averages; min / max are the net
cheapest and dearest single iterations.

| operation | what is timed |
|---|---|
| null_hypercall | `xen_version(XENVER_version, NULL)` through the hypercall page: entry, dispatch, exit |
| mmu_update | `mmu_update` of one `MMU_NORMAL_PT_UPDATE` in a pinned scratch L1 of the guest, remapping one page alternately to two frames of its own |
| update_va_mapping | `update_va_mapping(va, pte, UVMF_INVLPG)` of another slot in that L1, alternating the same two frames |
| evtchn_send | `EVTCHNOP_send` on a loopback channel (`alloc_unbound` + `bind_interdomain` to ourselves), both ports masked and events masked, so no upcall; the pending bit is cleared before each send, outside the timed window |

Caveats:

- A hypervisor's own interrupts (timer ticks, softirqs) that land inside a timed window
  are counted in that iteration: they show up as a `max` far above `min`, and move the
  average by a little. `min` is the pure path.
- `rdtsc` runs natively in the guest on both hypervisors when the empty pair costs a
  few ticks (the last row); if a hypervisor trapped and emulated it, the pair would cost
  hundreds and the subtraction would be less exact.
- The numbers depend on the QEMU version (how it counts instructions) and on the
  features of its `-cpu max` (which paths a hypervisor picks: XPTI, speculation
  mitigations, PCID). Compare the columns of one run of this command, not numbers from
  different machines or QEMU versions.
- Xen 4.17 is Debian's build, booted with `console=com1 dom0_mem=64M` and otherwise
  default options, so it applies the mitigations it chooses for this CPU (its settings,
  from its boot log, are listed under Results). They are part of its path length.
"
    )
}

/// Boot the bench guest on our hypervisor and on Xen 4.17, print the table, and write
/// it to `docs/perf.md`.
pub fn bench(root: &Path, images: &Path) -> Result<(), String> {
    let guest = images.join("bench");
    if !guest.is_file() {
        return Err(format!(
            "no bench guest at {} (run `cargo xtask build`)",
            guest.display()
        ));
    }
    let ours_t = Target {
        title: "ours",
        short: "ours",
        image: images.join("hypervisor"),
    };
    let xen_t = Target {
        title: "Xen 4.17",
        short: "xen",
        image: images.join("xen-4.17"),
    };
    let ours_runs = measure(&ours_t, &guest);
    let xen_runs = measure(&xen_t, &guest);

    let ours = first_ok(&ours_runs);
    let xen = first_ok(&xen_runs);
    if ours.is_err() && xen.is_err() {
        return Err(format!(
            "no results: ours: {}; Xen 4.17: {}",
            ours.err().unwrap_or_default(),
            xen.err().unwrap_or_default()
        ));
    }
    let tbl = table(ours.clone(), xen.clone());
    let mut rep = vec![
        repeatability(ours_t.title, &ours_runs),
        repeatability(xen_t.title, &xen_runs),
    ];
    rep.extend(outliers(ours_t.title, &ours));
    rep.extend(outliers(xen_t.title, &xen));
    println!("{tbl}");
    for r in &rep {
        println!("{r}");
    }

    // Paths relative to the repository in the recorded command lines.
    let rel_args = |t: &Target| qemu_args(&rel(root, &t.image), &rel(root, &guest));
    let mut doc = String::new();
    doc.push_str("# Performance: path lengths, ours vs. Xen 4.17\n\n");
    doc.push_str(
        "Generated by `cargo xtask bench` (`xtask/src/bench.rs`); do not edit by hand, re-run it.\n\n",
    );
    doc.push_str("## Results\n\n");
    let _ = writeln!(doc, "- date: {}", now_utc());
    let _ = writeln!(doc, "- commit: {}", commit(root));
    let _ = writeln!(doc, "- QEMU: {}", qemu_version());
    let _ = writeln!(
        doc,
        "- each hypervisor is booted {RUNS} times (a failed first boot is not repeated); \
         the table shows the first complete run\n"
    );
    doc.push_str(&tbl);
    if let Ok(x) = &xen {
        if !x.settings.is_empty() {
            doc.push_str("\nXen 4.17's settings on this CPU (from its boot log):\n\n");
            for l in &x.settings {
                let _ = writeln!(doc, "- `{l}`");
            }
        }
    }
    doc.push_str("\nRepeatability and spread:\n\n");
    for r in &rep {
        let _ = writeln!(doc, "- {r}");
    }
    doc.push_str(
        "\n## Commands\n\nFrom the repository root, after `cargo xtask build`:\n\n```sh\n",
    );
    let _ = writeln!(
        doc,
        "# ours\n{}",
        shell_line("qemu-system-x86_64", &rel_args(&ours_t))
    );
    let _ = writeln!(
        doc,
        "# Xen 4.17 (halts after dom0 powers off: stop QEMU after `bench: done`)\n{}",
        shell_line("qemu-system-x86_64", &rel_args(&xen_t))
    );
    doc.push_str("```\n\n");
    let params = [&ours, &xen]
        .iter()
        .find_map(|r| r.as_ref().ok().and_then(|r| r.params.clone()))
        .unwrap_or_else(|| "parameters not reported".into());
    doc.push_str(&method(&params));

    let path = root.join("docs/perf.md");
    std::fs::write(&path, doc).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("xtask bench: wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(lines: &[&str]) -> Run {
        let mut r = Run::default();
        for l in lines {
            if r.feed(l) {
                break;
            }
        }
        r
    }

    #[test]
    fn parses_result_lines() {
        let (n, s) = parse_line("bench: mmu_update cycles=1155 min=1155 max=3126 iters=10000")
            .expect("a result line");
        assert_eq!(n, "mmu_update");
        assert_eq!(
            s,
            Sample {
                cycles: 1155,
                min: Some(1155),
                max: Some(3126),
                iters: Some(10000)
            }
        );
        assert!(parse_line("bench: iters=10000 warmup=1000").is_none());
        assert!(parse_line("bench: hypervisor 4.17").is_none());
        assert!(parse_line("bench: done").is_none());
        assert!(parse_line("(XEN) bench: x cycles=abc").is_none());
        assert_eq!(
            parse_line("\x1b[0mbench: null_hypercall cycles=7").map(|(_, s)| s.cycles),
            Some(7)
        );
    }

    #[test]
    fn run_ends_at_done_or_marker() {
        let r = run_of(&[
            "(XEN) booting",
            "bench: null_hypercall cycles=10 min=9 max=20 iters=5",
            "bench: done",
            "bench: late cycles=1",
        ]);
        assert!(r.done);
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.failure(), None);

        let r = run_of(&[
            "(XEN)   XPTI (64-bit PV only): Dom0 disabled, DomU disabled (without PCID)",
            "bench: iters=10 warmup=2",
            "bench: done",
        ]);
        assert_eq!(
            r.settings,
            ["XPTI (64-bit PV only): Dom0 disabled, DomU disabled (without PCID)"]
        );
        assert_eq!(r.params.as_deref(), Some("iters=10 warmup=2"));

        let r = run_of(&[
            "bench: null_hypercall cycles=10",
            "(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds.",
        ]);
        assert!(!r.done);
        let f = r.failure().expect("a crash is a failure");
        assert!(f.contains("Hardware Dom0 crashed"), "{f}");
    }

    #[test]
    fn table_with_both_and_with_ours_missing() {
        let xen = run_of(&[
            "bench: rdtsc_pair cycles=3",
            "bench: null_hypercall cycles=200 min=200 max=400",
            "bench: done",
        ]);
        let ours = run_of(&[
            "bench: rdtsc_pair cycles=3",
            "bench: null_hypercall cycles=300 min=300 max=300",
            "bench: done",
        ]);
        let t = table(Ok(&ours), Ok(&xen));
        assert!(
            t.contains("| null_hypercall | 300 | 200 | 1.50 | 300 / 300 | 200 / 400 |"),
            "{t}"
        );
        let rows: Vec<&str> = t.lines().filter(|l| l.starts_with("| ")).collect();
        assert!(rows.last().is_some_and(|l| l.contains("rdtsc")), "{t}");

        let t = table(Err("no image".into()), Ok(&xen));
        assert!(
            t.contains("| null_hypercall | did not run | 200 | — |"),
            "{t}"
        );
        assert!(t.contains("ours: did not run (no image)"), "{t}");
    }

    #[test]
    fn repeatability_reports_identical_and_different_runs() {
        let a = run_of(&["bench: op cycles=5 min=5 max=5", "bench: done"]);
        let b = run_of(&["bench: op cycles=6 min=5 max=9", "bench: done"]);
        assert!(repeatability("x", &Ok(vec![a.clone(), a.clone()])).contains("identical"));
        let d = repeatability("x", &Ok(vec![a, b]));
        assert!(d.contains("differ") && d.contains("op: 6"), "{d}");
    }

    #[test]
    fn outliers_name_the_spread() {
        let a = run_of(&["bench: op cycles=5 min=5 max=5", "bench: done"]);
        let b = run_of(&["bench: op cycles=6 min=5 max=9", "bench: done"]);
        let o = outliers("x", &Ok(&a)).unwrap_or_default();
        assert!(o.contains("min = max"), "{o}");
        let o = outliers("x", &Ok(&b)).unwrap_or_default();
        assert!(o.contains("op (max − min = 4)"), "{o}");
        assert_eq!(outliers("x", &Err("no".into())), None);
    }

    #[test]
    fn ratio_and_shell_line() {
        assert_eq!(ratio(337, 288).as_deref(), Some("1.17"));
        assert_eq!(ratio(1, 0), None);
        let s = shell_line("q", &["-append".into(), "console=com1 dom0_mem=64M".into()]);
        assert_eq!(s, "q -append 'console=com1 dom0_mem=64M'");
    }

    #[test]
    fn qemu_args_match_the_method() {
        let a = qemu_args(Path::new("images/hv"), Path::new("images/bench"));
        let s = shell_line("qemu-system-x86_64", &a);
        assert!(s.contains("-icount shift=0,sleep=off"), "{s}");
        assert!(s.contains("-smp 1"), "{s}");
        assert!(s.contains("-initrd 'images/bench bench'"), "{s}");
        assert!(s.contains("-append 'console=com1 dom0_mem=64M'"), "{s}");
        assert!(s.contains("isa-debug-exit,iobase=0xf4,iosize=4"), "{s}");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
