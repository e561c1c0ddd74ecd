//! Reference runs on the real Xen 4.17: fetch Debian's hypervisor binary into a cache,
//! and boot a PV kernel on it as dom0 under QEMU.
//!
//! Facts this module relies on (checked with Debian's 4.17.7 build):
//! - `apt-get download xen-hypervisor-4.17-amd64` fetches the .deb without installing it;
//!   `dpkg -x` unpacks it; `boot/xen-4.17-amd64.gz` gunzips to a 32-bit multiboot ELF
//!   that QEMU's `-kernel` boots directly.
//! - Xen logs on COM1 (`console=com1`) with a `(XEN) ` prefix; dom0's `console_io` writes
//!   appear on the same serial line, unprefixed.
//! - QEMU's `-initrd "a,b"` passes multiboot modules: the first is the dom0 kernel, the
//!   second its `start_info` module (ramdisk). Text after a space in a module's string is
//!   that module's command line (dom0's `start_info.cmd_line`).
//! - When dom0 shuts down, Xen prints one of [`DOM0_EXIT_MARKERS`]. On poweroff Xen only
//!   *halts* ("Hardware Dom0 halted: halting machine"): QEMU keeps running, so a runner
//!   must watch the log and stop QEMU itself. Reboot restarts the machine, which
//!   `-no-reboot` turns into a QEMU exit.
#![allow(dead_code)] // A library of helpers for main.rs; not every caller uses every item.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The Debian package holding Xen 4.17.
pub const XEN_PACKAGE: &str = "xen-hypervisor-4.17-amd64";

/// Memory given to dom0 in reference runs (Xen would otherwise give it nearly all of
/// the machine's RAM).
pub const DOM0_MEM: &str = "dom0_mem=64M,max:64M";

/// Lines Xen prints when dom0 shuts down (`xen/common/shutdown.c`, `hwdom_shutdown`),
/// with the `SHUTDOWN_*` reason each stands for.
pub const DOM0_EXIT_MARKERS: &[(&str, &str)] = &[
    ("Hardware Dom0 halted: halting machine", "poweroff"),
    ("Hardware Dom0 shutdown: rebooting machine", "reboot"),
    ("Hardware Dom0 crashed", "crash"),
    (
        "Hardware Dom0 shutdown: watchdog rebooting machine",
        "watchdog",
    ),
    ("Hardware domain 0 did unsupported soft reset", "soft_reset"),
    ("Hardware Dom0 shutdown (unknown reason", "unknown"),
];

/// If `line` is Xen's report of dom0 shutting down, the reason ("poweroff", "crash"...).
pub fn dom0_exit(line: &str) -> Option<&'static str> {
    DOM0_EXIT_MARKERS
        .iter()
        .find(|(marker, _)| line.contains(marker))
        .map(|&(_, reason)| reason)
}

/// The real Xen 4.17 image (`<cache>/xen`), downloading and unpacking Debian's package
/// into `cache` (e.g. `.cache/xen` under the repository root) when it is not there yet.
pub fn xen_image(cache: &Path) -> Result<PathBuf, String> {
    let image = cache.join("xen");
    if image.is_file() {
        return Ok(image);
    }
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;

    let deb = match find_deb(cache)? {
        Some(deb) => deb,
        None => {
            let status = Command::new("apt-get")
                .args(["download", XEN_PACKAGE])
                .current_dir(cache)
                .status()
                .map_err(|e| format!("cannot run apt-get: {e} (is this a Debian system?)"))?;
            if !status.success() {
                return Err(format!(
                    "`apt-get download {XEN_PACKAGE}` failed ({status}); \
                     try `sudo apt-get update` first"
                ));
            }
            find_deb(cache)?.ok_or_else(|| {
                format!(
                    "apt-get download left no {XEN_PACKAGE}_*.deb in {}",
                    cache.display()
                )
            })?
        }
    };

    let unpacked = cache.join("x");
    let status = Command::new("dpkg")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .status()
        .map_err(|e| format!("cannot run dpkg: {e}"))?;
    if !status.success() {
        return Err(format!("`dpkg -x {}` failed ({status})", deb.display()));
    }

    let gz = find_in(&unpacked.join("boot"), |name| {
        name.starts_with("xen-4.17") && name.ends_with("-amd64.gz")
    })?
    .ok_or_else(|| format!("no boot/xen-4.17*-amd64.gz in {}", deb.display()))?;

    // gunzip to a temporary name, then rename, so an interrupted run leaves no bad image.
    let tmp = cache.join("xen.partial");
    let out =
        std::fs::File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let status = Command::new("gzip")
        .arg("-dc")
        .arg(&gz)
        .stdout(out)
        .status()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    if !status.success() {
        return Err(format!("`gzip -dc {}` failed ({status})", gz.display()));
    }
    std::fs::rename(&tmp, &image)
        .map_err(|e| format!("cannot rename to {}: {e}", image.display()))?;
    Ok(image)
}

fn find_deb(cache: &Path) -> Result<Option<PathBuf>, String> {
    let prefix = format!("{XEN_PACKAGE}_");
    find_in(cache, |name| {
        name.starts_with(&prefix) && name.ends_with(".deb")
    })
}

fn find_in(dir: &Path, want: impl Fn(&str) -> bool) -> Result<Option<PathBuf>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&want))
        .collect();
    found.sort();
    Ok(found.pop())
}

/// QEMU's `-initrd` takes a comma-separated module list; a comma inside a path is
/// written `,,`.
fn qemu_module(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// Arguments for `qemu-system-x86_64` to boot `xen` with `kernel` as dom0 (and
/// `module` as dom0's `start_info` module) on `cpus` CPUs. Serial (Xen's log and dom0's
/// console) goes to stdio; with `-nographic`, Ctrl-A X quits.
///
/// `-cpu max` gives Xen the features it requires of a TCG CPU; `-no-reboot` turns a
/// reboot into a QEMU exit. A poweroff only halts (see [`DOM0_EXIT_MARKERS`]).
pub fn qemu_args(xen: &Path, kernel: &Path, module: Option<&Path>, cpus: u32) -> Vec<String> {
    let mut initrd = qemu_module(kernel);
    if let Some(m) = module {
        initrd.push(',');
        initrd.push_str(&qemu_module(m));
    }
    [
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        "512",
        "-smp",
        &cpus.max(1).to_string(),
        "-nographic",
        "-no-reboot",
        "-kernel",
        &xen.display().to_string(),
        "-append",
        &format!("console=com1 {DOM0_MEM} loglvl=all guest_loglvl=all"),
        "-initrd",
        &initrd,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Result of a reference run.
#[derive(Debug)]
pub struct RefRun {
    /// Everything QEMU printed (Xen's log and dom0's console), line by line.
    pub lines: Vec<String>,
    /// How dom0 ended (an entry of [`DOM0_EXIT_MARKERS`]), or `None` on timeout/exit.
    pub exit: Option<&'static str>,
}

/// Boot `kernel` as dom0 on the real Xen, echoing the serial output when `echo` is
/// set, until Xen reports dom0's shutdown, QEMU exits, or `timeout` passes; then stop
/// QEMU.
pub fn run(
    xen: &Path,
    kernel: &Path,
    module: Option<&Path>,
    cpus: u32,
    timeout: Duration,
    echo: bool,
) -> Result<RefRun, String> {
    let mut child = Command::new("qemu-system-x86_64")
        .args(qemu_args(xen, kernel, module, cpus))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
    let stdout = child.stdout.take().ok_or("qemu has no stdout")?;
    let (rx, reader) = crate::xenref::line_reader(stdout);

    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    let mut exit = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left) {
            Ok(line) => {
                if echo {
                    println!("{line}");
                }
                exit = dom0_exit(&line);
                lines.push(line);
                if exit.is_some() {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // Our own child: stop it (Xen halts rather than powering off).
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    Ok(RefRun { lines, exit })
}

/// Read `stdout` line by line on a thread (`\r` trimmed): the lines arrive on the
/// receiver until the stream ends; join the handle after the child exits.
pub fn line_reader(
    stdout: std::process::ChildStdout,
) -> (mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            if tx.send(text).is_err() {
                break;
            }
        }
    });
    (rx, reader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_boot_xen_with_dom0_and_module() {
        let a = qemu_args(
            Path::new("/c/xen"),
            Path::new("/k/hel,lo"),
            Some(Path::new("/m/rd")),
            2,
        );
        let at = |flag: &str| {
            a.iter()
                .position(|x| x == flag)
                .and_then(|i| a.get(i + 1))
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(at("-kernel"), "/c/xen");
        assert_eq!(at("-initrd"), "/k/hel,,lo,/m/rd");
        assert_eq!(at("-smp"), "2");
        assert_eq!(at("-cpu"), "max");
        assert!(at("-append").starts_with("console=com1 dom0_mem="));
        assert!(a.iter().any(|x| x == "-no-reboot"));
    }

    #[test]
    fn exit_markers() {
        assert_eq!(
            dom0_exit("(XEN) Hardware Dom0 halted: halting machine"),
            Some("poweroff")
        );
        assert_eq!(
            dom0_exit("(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds."),
            Some("crash")
        );
        assert_eq!(dom0_exit("hello: powering off"), None);
    }
}
