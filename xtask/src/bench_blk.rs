//! `cargo xtask bench` (block part, issue 4): 4 KiB sequential and random reads and
//! writes by a domU through blkfront/blkback, against dom0 doing the same on the same
//! disk directly (QEMU's virtio-blk over a scratch file), as a ratio, on this project's
//! hypervisor and on the real Xen 4.17. Same method as the rest (`-icount
//! shift=0,sleep=off`, one CPU: `rdtsc` counts instructions of the whole machine).
//!
//! dom0's `blkdev bench 0` gives the direct figures; `xl create -c
//! /etc/xen/diskdemo-bench.cfg` (diskdemo with `bench=1` on `target=/dev/vda`) the
//! guest's. Appended to `docs/perf.md` as its own section.

use crate::bench_domains::{parse_line, qemu_args, Qemu, Sample};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

const NAMES: &[&str] = &[
    "blk_seq_read_4k",
    "blk_seq_write_4k",
    "blk_rand_read_4k",
    "blk_rand_write_4k",
];

/// The `bench:` lines printed between `from` and the current position.
fn samples(q: &Qemu, from: usize) -> Vec<Sample> {
    let mut got: Vec<Sample> = Vec::new();
    for l in q.out[from..q.pos].lines() {
        if let Some(s) = parse_line(l) {
            if !got.iter().any(|g| g.0 == s.0) {
                got.push(s);
            }
        }
    }
    got
}

/// One boot: (dom0 direct, domU through blkfront).
fn measure(hv: &Path, images: &Path, disk: &Path) -> Result<(Vec<Sample>, Vec<Sample>), String> {
    let mut args = qemu_args(hv, &images.join("dom0"), &images.join("ramdisk.cpio"));
    args.extend([
        "-drive".into(),
        format!("file={},format=raw,if=none,id=vd0", disk.display()),
        "-device".into(),
        "virtio-blk-pci,drive=vd0".into(),
    ]);
    let mut q = Qemu::start(&args)?;
    q.expect(&["xl> "])?;
    let from = q.pos;
    q.send("blkdev bench 0\n")?;
    q.expect(&["bench: done", "blkdev: "])?;
    let direct = samples(&q, from);
    q.expect(&["xl> "])?;
    let from = q.pos;
    q.send("xl create -c /etc/xen/diskdemo-bench.cfg\n")?;
    q.expect(&["bench: done", "diskdemo: FAIL"])?;
    let guest = samples(&q, from);
    Ok((direct, guest))
}

fn value(v: &[Sample], name: &str) -> Option<u64> {
    v.iter().find(|s| s.0 == name).map(|s| s.1)
}

/// The markdown table for one hypervisor's run.
pub fn table(r: &Result<(Vec<Sample>, Vec<Sample>), String>) -> String {
    let mut t = String::from(
        "| 4 KiB operation | dom0 direct (instructions) | domU via blkfront (instructions) | domU / dom0 |\n|---|---|---|---|\n",
    );
    for n in NAMES {
        let (d, g) = match r {
            Ok((d, g)) => (value(d, n), value(g, n)),
            Err(_) => (None, None),
        };
        let show = |v: Option<u64>| v.map_or("failed".to_string(), |v| v.to_string());
        let ratio = match (d, g) {
            (Some(d), Some(g)) if d > 0 => format!("{:.2}", g as f64 / d as f64),
            _ => "-".into(),
        };
        let _ = writeln!(t, "| {n} | {} | {} | {ratio} |", show(d), show(g));
    }
    t
}

/// Boot both hypervisors with a scratch disk, print the tables, append them to
/// `docs/perf.md`.
pub fn bench_blk(root: &Path, images: &Path) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("xtask-bench-blk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let disk = dir.join("disk.raw");
    let mut results = Vec::new();
    for hv in ["hypervisor", "xen-4.17"] {
        std::fs::write(&disk, vec![0u8; 8 << 20])
            .map_err(|e| format!("{}: {e}", disk.display()))?;
        results.push((hv, measure(&images.join(hv), images, &disk)));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut doc = format!(
        "\n## Block devices (issue 4), recorded at {secs} (Unix time)\n\n\
         QEMU gets an 8 MiB scratch file as virtio-blk, which dom0 drives; dom0's `blkdev\n\
         bench 0` times 256 4 KiB reads and writes on it directly (sequential, then at\n\
         pseudo-random pages), then `diskdemo` (`/etc/xen/diskdemo-bench.cfg`, `bench=1`)\n\
         times the same through blkfront and blkback on `target=/dev/vda`. Averages in\n\
         instructions (`rdtsc` under `-icount shift=0,sleep=off`, one CPU), whole machine.\n"
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
    fn tabulates_direct_against_guest() {
        let d = vec![("blk_seq_read_4k".into(), 1000, 900, 2000, 256)];
        let g = vec![("blk_seq_read_4k".into(), 3000, 2900, 4000, 256)];
        let t = table(&Ok((d, g)));
        assert!(
            t.contains("| blk_seq_read_4k | 1000 | 3000 | 3.00 |"),
            "{t}"
        );
        assert!(
            t.contains("| blk_rand_write_4k | failed | failed | - |"),
            "{t}"
        );
    }
}
