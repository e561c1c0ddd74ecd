//! Developer commands: `cargo xtask build|run|test|iso`.
//!
//! - `build`: the hypervisor image and the guests, for `x86_64-unknown-none`, into
//!   `target/images/`.
//! - `run [--cpus N] [--guest NAME] [--iso] [--xen] [--disk FILE]... [--no-net]
//!   [--fwd HOSTPORT=ADDR:PORT]...`: build, then boot the hypervisor (or, with `--xen`,
//!   the real Xen 4.17 as the reference) in QEMU with dom0, the `xl` toolstack, and its
//!   ramdisk of example guests (`--guest hello` boots an example guest as dom0
//!   instead); console on this terminal (Ctrl-A X quits QEMU). dom0 gets a virtio-net
//!   NIC on QEMU's user network, with the host's 127.0.0.1:8080 forwarded to
//!   10.0.2.20:80 (the `netdemo-http.cfg` web server) unless `--fwd` says otherwise.
//! - `test`: formatting, clippy, host tests, then the system tests under QEMU.
//! - `iso`: a GRUB (multiboot2) ISO at `target/images/hypervisor.iso`.
//! - `bench [hypercalls|domains|blk|net]...`: path lengths on ours and on Xen 4.17, all
//!   parts or those named (`docs/perf.md`).

mod bench;
mod bench_blk;
mod bench_domains;
mod bench_net;
mod prereq;
mod ramdisk;
mod xenref;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Bare-metal packages: (package, binary, image name in target/images).
const IMAGES: &[(&str, &str, &str)] = &[
    ("boot", "hypervisor", "hypervisor"),
    ("guest-hello", "hello", "hello"),
    ("guest-bench", "bench", "bench"),
    ("guest-pvcpu", "pvcpu", "pvcpu"),
    ("dom0", "dom0", "dom0"),
    ("guest-ticker", "ticker", "ticker"),
    ("guest-spin", "spin", "spin"),
    ("guest-pingpong", "pingpong", "pingpong"),
    ("guest-crasher", "crasher", "crasher"),
    ("guest-attacker", "attacker", "attacker"),
    ("guest-smp", "smp", "smp"),
    ("guest-diskdemo", "diskdemo", "diskdemo"),
    ("guest-netdemo", "netdemo", "netdemo"),
    ("guest-xsprobe", "xsprobe", "xsprobe"),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, or `target/` in the workspace).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => root().join("target"),
    }
}

fn images_dir() -> PathBuf {
    target_dir().join("images")
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed ({status})"))
    }
}

fn build() -> Result<(), String> {
    prereq::ensure()?;
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--target", "x86_64-unknown-none"]);
    for (pkg, _, _) in IMAGES {
        cmd.args(["-p", pkg]);
    }
    run(&mut cmd)?;
    let out = images_dir();
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    // The reference: Debian's Xen 4.17, fetched into .cache/xen (never installed).
    let xen = xenref::xen_image(&root().join(".cache/xen"))?;
    std::fs::copy(&xen, out.join("xen-4.17"))
        .map_err(|e| format!("copy {}: {e}", xen.display()))?;
    for (_, bin, name) in IMAGES {
        let src = target_dir().join("x86_64-unknown-none/release").join(bin);
        std::fs::copy(&src, out.join(name)).map_err(|e| format!("copy {}: {e}", src.display()))?;
    }
    // dom0's ramdisk: the guests and their xl.cfg files.
    ramdisk::build_ramdisk(&out, &out.join("ramdisk.cpio"))?;
    Ok(())
}

fn iso() -> Result<PathBuf, String> {
    build()?;
    let dir = images_dir().join("iso");
    let boot = dir.join("boot");
    std::fs::create_dir_all(boot.join("grub")).map_err(|e| e.to_string())?;
    std::fs::copy(images_dir().join("hypervisor"), boot.join("hypervisor"))
        .map_err(|e| e.to_string())?;
    std::fs::copy(images_dir().join("hello"), boot.join("dom0")).map_err(|e| e.to_string())?;
    std::fs::write(
        boot.join("grub/grub.cfg"),
        "set timeout=0\nset default=0\nserial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n\
         menuentry \"hypervisor\" {\n    multiboot2 /boot/hypervisor console=com1\n    module2 /boot/dom0 dom0\n    boot\n}\n",
    )
    .map_err(|e| e.to_string())?;
    let iso = images_dir().join("hypervisor.iso");
    let out = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(&iso)
        .arg(&dir)
        .output()
        .map_err(|e| format!("grub-mkrescue: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "grub-mkrescue failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(iso)
}

struct RunOpts {
    cpus: u32,
    guest: String,
    iso: bool,
    append: String,
    /// Boot the guest as dom0 on the real Xen 4.17 instead (the reference).
    xen: bool,
    /// Raw disk files given to QEMU as virtio-blk (dom0's /dev/vda, /dev/vdb...).
    disks: Vec<String>,
    /// Give dom0 a virtio-net NIC on QEMU's user network (default on).
    net: bool,
    /// Host ports forwarded into the guest network: (host port, guest address, port).
    fwds: Vec<(u16, String, u16)>,
}

/// The forward `cargo xtask run` sets up unless told otherwise: the host's port 8080 to
/// the web server of `/etc/xen/netdemo-http.cfg`.
const DEFAULT_FWD: (u16, &str, u16) = (8080, "10.0.2.20", 80);

fn parse_fwd(v: &str) -> Option<(u16, String, u16)> {
    let (h, g) = v.split_once('=')?;
    let (a, p) = g.rsplit_once(':')?;
    Some((h.parse().ok()?, a.to_string(), p.parse().ok()?))
}

fn parse_run(args: &[String]) -> Result<RunOpts, String> {
    let mut o = RunOpts {
        cpus: 2,
        guest: "dom0".into(),
        iso: false,
        xen: false,
        append: String::new(),
        disks: Vec::new(),
        net: true,
        fwds: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cpus" => {
                o.cpus = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--cpus needs a number")?
            }
            "--guest" => o.guest = it.next().ok_or("--guest needs a name")?.clone(),
            "--xen" => o.xen = true,
            "--iso" => o.iso = true,
            "--append" => o.append = it.next().ok_or("--append needs text")?.clone(),
            "--disk" => o
                .disks
                .push(it.next().ok_or("--disk needs a file")?.clone()),
            "--no-net" => o.net = false,
            "--fwd" => o.fwds.push(
                it.next()
                    .and_then(|v| parse_fwd(v))
                    .ok_or("--fwd needs HOSTPORT=ADDR:PORT (e.g. 8080=10.0.2.20:80)")?,
            ),
            other => return Err(format!("unknown option {other}; see `cargo xtask help`")),
        }
    }
    Ok(o)
}

fn run_system(args: &[String]) -> Result<(), String> {
    let o = parse_run(args)?;
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args([
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        "512",
        "-nographic",
        "-no-reboot",
    ])
    .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
    .args(["-smp", &o.cpus.to_string()]);
    for (i, d) in o.disks.iter().enumerate() {
        if !Path::new(d).is_file() {
            return Err(format!(
                "--disk {d}: no such file (make one with `truncate -s 64M {d}`)"
            ));
        }
        qemu.args([
            "-drive".to_string(),
            format!("file={},format=raw,if=none,id=vd{i}", d.replace(',', ",,")),
            "-device".to_string(),
            format!("virtio-blk-pci,drive=vd{i}"),
        ]);
    }
    if o.net {
        let mut fwds = o.fwds.clone();
        if fwds.is_empty() {
            let (h, a, p) = DEFAULT_FWD;
            // A busy port would stop QEMU from starting: go without the forward then.
            if std::net::TcpListener::bind(("127.0.0.1", h)).is_ok() {
                fwds.push((h, a.to_string(), p));
            } else {
                eprintln!("xtask: host port {h} is busy: no forward to {a}:{p} (use --fwd)");
            }
        }
        let mut nic = String::from("user,model=virtio-net-pci");
        for (h, a, p) in &fwds {
            nic.push_str(&format!(",hostfwd=tcp:127.0.0.1:{h}-{a}:{p}"));
            eprintln!("xtask: host 127.0.0.1:{h} -> guest {a}:{p}");
        }
        qemu.args(["-nic", &nic]);
    }
    if o.iso {
        let iso = iso()?;
        qemu.arg("-cdrom").arg(iso);
    } else {
        build()?;
        let guest = images_dir().join(&o.guest);
        if !guest.exists() {
            return Err(format!("no guest image {}", guest.display()));
        }
        let hv = if o.xen {
            images_dir().join("xen-4.17")
        } else {
            images_dir().join("hypervisor")
        };
        qemu.arg("-kernel").arg(hv);
        // dom0 gets 128 MiB unless told otherwise; the rest is for the guests it creates.
        let mem = if o.append.contains("dom0_mem=") {
            ""
        } else {
            "dom0_mem=128M"
        };
        qemu.arg("-append")
            .arg(format!("console=com1 {mem} {}", o.append).trim());
        // The toolstack gets its ramdisk (guest kernels and /etc/xen/*.cfg) as module 2.
        let mut initrd = format!("{} {}", guest.display(), o.guest);
        if o.guest == "dom0" {
            initrd.push_str(&format!(",{}", images_dir().join("ramdisk.cpio").display()));
        }
        qemu.arg("-initrd").arg(initrd);
    }
    eprintln!("xtask: booting (Ctrl-A X quits QEMU)");
    let status = qemu.status().map_err(|e| format!("qemu: {e}"))?;
    let code = status.code().unwrap_or(-1);
    let what = match code {
        33 => "dom0 powered off",
        35 => "dom0 rebooted",
        37 => "dom0 crashed",
        39 => "the hypervisor failed",
        _ => "QEMU exited",
    };
    eprintln!("xtask: {what} (QEMU status {code})");
    Ok(())
}

fn test() -> Result<(), String> {
    build()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo()
        .args(["clippy", "--release", "--target", "x86_64-unknown-none"])
        .args(IMAGES.iter().flat_map(|(p, _, _)| ["-p", p]))
        .args(["--", "-D", "warnings"]))?;
    // Host unit, property and conformance tests.
    run(cargo().args(["test", "--workspace"]))?;
    // System tests under QEMU (ignored by a plain `cargo test`: they need the images).
    iso()?;
    run(cargo()
        .args([
            "test",
            "-p",
            "tests",
            "--",
            "--ignored",
            "--test-threads",
            "1",
        ])
        .env("HV_IMAGES", images_dir()))?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => build(),
        Some("run") => run_system(&args[1..]),
        Some("test") => test(),
        Some("iso") => iso().map(|p| println!("{}", p.display())),
        Some("bench") => {
            // `bench [hypercalls|domains|blk|net]...`: all parts, or those named.
            let parts: Vec<&str> = args[1..].iter().map(String::as_str).collect();
            let want = |p: &str| parts.is_empty() || parts.contains(&p);
            let (r, i) = (root(), images_dir());
            build()
                .and_then(|()| {
                    if want("hypercalls") {
                        bench::bench(&r, &i)
                    } else {
                        Ok(())
                    }
                })
                .and_then(|()| {
                    if want("domains") {
                        bench_domains::bench_domains(&r, &i)
                    } else {
                        Ok(())
                    }
                })
                .and_then(|()| {
                    if want("blk") {
                        bench_blk::bench_blk(&r, &i)
                    } else {
                        Ok(())
                    }
                })
                .and_then(|()| {
                    if want("net") {
                        bench_net::bench_net(&r, &i)
                    } else {
                        Ok(())
                    }
                })
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\
                 \n  build                 build the hypervisor and guest images into target/images\
                 \n  run [--cpus N] [--guest NAME] [--iso] [--xen] [--append 'hv options'] [--disk FILE]...\
                 \n      [--no-net] [--fwd HOSTPORT=ADDR:PORT]...\
                 \n                        boot them in QEMU, console on this terminal\
                 \n  test                  fmt, clippy, host tests, system tests under QEMU\
                 \n  iso                   make a GRUB (multiboot2) ISO\
                 \n  bench [hypercalls|domains|blk|net]...\
                 \n                        path lengths, ours vs Xen 4.17, under QEMU -icount (docs/perf.md)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_options() {
        let a = |v: &[&str]| parse_run(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let o = a(&["--no-net", "--fwd", "9000=10.0.2.21:5001"]).unwrap();
        assert!(!o.net);
        assert_eq!(o.fwds, vec![(9000, "10.0.2.21".to_string(), 5001)]);
        assert!(a(&[]).unwrap().net);
        assert!(a(&["--fwd", "9000"]).is_err());
        assert!(a(&["--fwd", "x=10.0.2.21:80"]).is_err());
    }
}
