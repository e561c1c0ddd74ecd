//! System-test helpers: boot an image under QEMU, read its serial console as a user
//! would, type into it, and collect the exit status.
//!
//! QEMU runs with `isa-debug-exit`, so the hypervisor's power-off tells us what happened;
//! the statuses are `EXIT_*` below (QEMU exits with `(value << 1) | 1`).
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// QEMU's exit status when dom0 powered off.
pub const EXIT_POWEROFF: i32 = (0x10 << 1) | 1;
/// QEMU's exit status when dom0 asked for a reboot.
pub const EXIT_REBOOT: i32 = (0x11 << 1) | 1;
/// QEMU's exit status when dom0 crashed.
pub const EXIT_CRASH: i32 = (0x12 << 1) | 1;
/// QEMU's exit status when the hypervisor itself failed (fault, panic).
pub const EXIT_HV_FAILURE: i32 = (0x13 << 1) | 1;

/// Where `cargo xtask build` put the images (`HV_IMAGES`, or `target/images`).
pub fn images_dir() -> PathBuf {
    match std::env::var_os("HV_IMAGES") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/images"),
    }
}

/// A path in the images folder, which must exist.
pub fn image(name: &str) -> PathBuf {
    let p = images_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask build` first",
        p.display()
    );
    p
}

/// A running QEMU whose serial console we read.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Vec<u8>>,
    /// Everything read so far.
    pub output: String,
    /// How far `expect` has consumed `output`.
    pos: usize,
    /// How far the hypervisor-health watchdog has read `output` (whole lines).
    scanned: usize,
    name: String,
}

/// Lines that mean the hypervisor broke an invariant, whatever the test is about: any
/// session that prints one fails.
const ALARMS: &[&str] = &["gave up waiting for CPUs"];

impl Session {
    /// Start `qemu-system-x86_64` with `args` (serial on stdio is added here).
    pub fn start(name: &str, args: &[String]) -> Session {
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-no-reboot",
        ])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .expect("cannot start qemu-system-x86_64 (apt-get install qemu-system-x86)");
        let mut out = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Session {
            child,
            stdin,
            rx,
            output: String::new(),
            pos: 0,
            scanned: 0,
            name: name.to_string(),
        }
    }

    fn pump(&mut self, until: Instant) -> bool {
        let now = Instant::now();
        if now >= until {
            return false;
        }
        match self.rx.recv_timeout(until - now) {
            Ok(bytes) => {
                self.output
                    .push_str(&String::from_utf8_lossy(&bytes).replace('\r', ""));
                if let Some(nl) = self.output[self.scanned..].rfind('\n') {
                    let end = self.scanned + nl + 1;
                    let alarm = ALARMS
                        .iter()
                        .find(|a| self.output[self.scanned..end].contains(*a));
                    self.scanned = end;
                    if let Some(a) = alarm {
                        self.fail(&format!("the hypervisor printed {a:?}"));
                    }
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Wait until `needle` appears after what earlier `expect`s consumed; return the
    /// text up to and including it. Panics with the whole transcript on timeout.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let until = Instant::now() + timeout;
        loop {
            if let Some(i) = self.output[self.pos..].find(needle) {
                let end = self.pos + i + needle.len();
                let got = self.output[self.pos..end].to_string();
                self.pos = end;
                return got;
            }
            if !self.pump(until) && Instant::now() >= until {
                self.fail(&format!(
                    "timed out after {timeout:?} waiting for {needle:?}"
                ));
            }
        }
    }

    /// Type `text` into the serial console.
    pub fn send(&mut self, text: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(text.as_bytes());
            let _ = stdin.flush();
        }
    }

    /// Wait for QEMU to exit and return its status code.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let until = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait on qemu") {
                while self.pump(Instant::now() + Duration::from_millis(50)) {}
                return code(status);
            }
            if Instant::now() >= until {
                self.fail(&format!("QEMU still running after {timeout:?}"));
            }
            self.pump(Instant::now() + Duration::from_millis(50));
        }
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        panic!(
            "[{}] {}\n----- console transcript -----\n{}\n------------------------------",
            self.name, why, self.output
        );
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn code(status: ExitStatus) -> i32 {
    status.code().unwrap_or(-1)
}

/// QEMU arguments to boot our hypervisor with `-kernel` (multiboot1).
pub fn hv_kernel_args(
    cpus: u32,
    hv_cmdline: &str,
    dom0: &Path,
    dom0_cmdline: &str,
    ramdisk: Option<&Path>,
) -> Vec<String> {
    let mut initrd = format!("{} {}", dom0.display(), dom0_cmdline);
    if let Some(r) = ramdisk {
        initrd.push_str(&format!(",{}", r.display()));
    }
    vec![
        "-accel".into(),
        "tcg".into(),
        "-cpu".into(),
        "max".into(),
        "-m".into(),
        "512".into(),
        "-smp".into(),
        cpus.to_string(),
        "-kernel".into(),
        image("hypervisor").display().to_string(),
        "-append".into(),
        hv_cmdline.into(),
        "-initrd".into(),
        initrd,
    ]
}

/// QEMU arguments to boot dom0 (the toolstack) with its ramdisk on `hv` ("hypervisor"
/// or "xen-4.17").
pub fn dom0_args(hv: &str, cpus: u32, hv_cmdline: &str) -> Vec<String> {
    vec![
        "-accel".into(),
        "tcg".into(),
        "-cpu".into(),
        "max".into(),
        "-m".into(),
        "512".into(),
        "-smp".into(),
        cpus.to_string(),
        "-kernel".into(),
        image(hv).display().to_string(),
        "-append".into(),
        hv_cmdline.into(),
        "-initrd".into(),
        format!(
            "{} dom0,{}",
            image("dom0").display(),
            image("ramdisk.cpio").display()
        ),
    ]
}

impl Session {
    /// Type an `xl` command line at dom0's prompt and return what it printed up to the
    /// next prompt.
    pub fn xl(&mut self, line: &str, timeout: Duration) -> String {
        self.send(&format!("{line}\n"));
        let out = self.expect("xl> ", timeout);
        out.split_once('\n')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or(out)
    }
}
