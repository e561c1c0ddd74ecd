//! PV block devices (issue 4): guests with `disk = [...]` get a disk through blkfront
//! (in the guest) and blkback (in dom0), checked by typing `xl` commands into dom0 as a
//! user would, on ours and on real Xen 4.17. The guest (`diskdemo`) computes its own
//! verdicts: it mounts the FAT image and appends to `LOG.TXT`, or writes and checks a
//! pattern derived from each sector's number over the whole disk.

use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(120);

fn boot(name: &str, hv: &str) -> Session {
    let mut s = Session::start(
        &format!("{name}-{hv}"),
        &dom0_args(hv, 2, "console=com1 dom0_mem=128M"),
    );
    s.expect("xl> ", T);
    s
}

/// `xl create -c ARGS` of a guest that powers off by itself; what it printed.
fn run_to_poweroff(s: &mut Session, args: &str) -> String {
    s.send(&format!("xl create -c {args}\n"));
    let out = s.expect("reason code 0 (poweroff)", T);
    s.expect("xl> ", T);
    out
}

/// `xl create -c ARGS` of a guest started with `stay=1`: wait for `diskdemo: done`,
/// detach, destroy it; what it printed.
fn run_and_destroy(s: &mut Session, args: &str, name: &str) -> String {
    s.send(&format!("xl create -c {args}\n"));
    let out = s.expect("diskdemo: done", T);
    s.send("\x1d");
    s.expect("xl> ", T);
    s.xl(&format!("xl destroy {name}"), T);
    out
}

/// A FAT filesystem on a PV disk: the guest lists it and appends a line to LOG.TXT; a
/// second guest of the same disk finds the first one's line (the backend kept it).
fn filesystem_persists(hv: &str) {
    let mut s = boot("blk-fat", hv);
    let first = run_to_poweroff(&mut s, "/etc/xen/diskdemo.cfg");
    assert!(
        first.contains("diskdemo: xvda 4608 sectors of 512 bytes"),
        "[{hv}]\n{first}"
    );
    assert!(
        first.contains("diskdemo: ls: README.TXT"),
        "[{hv}]\n{first}"
    );
    assert!(
        first.contains("diskdemo: LOG.TXT has 1 lines"),
        "[{hv}]\n{first}"
    );
    assert!(!first.contains("FAIL"), "[{hv}]\n{first}");
    let second = run_to_poweroff(&mut s, "/etc/xen/diskdemo.cfg");
    assert!(
        second.contains("diskdemo: LOG.TXT has 2 lines"),
        "[{hv}]\n{second}"
    );
    // Nothing of the two guests is left in blkback's part of the store (the empty
    // `vbd` directory stays, as with libxl).
    let be = s.xl("xenstore-ls /local/domain/0/backend", T);
    assert!(
        !be.lines()
            .any(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())),
        "[{hv}] backend entries left:\n{be}"
    );
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_fat_filesystem_on_a_pv_disk_persists_across_guests_on_ours() {
    filesystem_persists("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_fat_filesystem_on_a_pv_disk_persists_across_guests_on_real_xen_4_17() {
    filesystem_persists("xen-4.17");
}

/// A pattern over the whole disk, written and flushed by one guest, read back intact by
/// a new guest; attached read-only, the disk refuses writes and keeps its data; a guest
/// destroyed in the middle of writing leaves the backend working for the next.
fn pattern_and_read_only(hv: &str) {
    let mut s = boot("blk-pattern", hv);
    let w = run_and_destroy(&mut s, "/etc/xen/diskdemo-pattern-write.cfg", "diskdemo-pw");
    assert!(
        w.contains("diskdemo: pattern written 1024 sectors"),
        "[{hv}]\n{w}"
    );
    let c = run_and_destroy(&mut s, "/etc/xen/diskdemo-pattern-check.cfg", "diskdemo-pc");
    assert!(
        c.contains("diskdemo: pattern check PASS (1024 sectors)"),
        "[{hv}]\n{c}"
    );

    let ro = "'disk=[\"format=raw, vdev=xvda, access=ro, target=/images/scratch.img\"]'";
    let out = run_and_destroy(
        &mut s,
        &format!("/etc/xen/diskdemo-pattern-write.cfg {ro}"),
        "diskdemo-pw",
    );
    assert!(out.contains("diskdemo: read-only=true"), "[{hv}]\n{out}");
    assert!(
        out.contains("diskdemo: FAIL"),
        "[{hv}] a read-only disk took writes:\n{out}"
    );
    let c = run_and_destroy(&mut s, "/etc/xen/diskdemo-pattern-check.cfg", "diskdemo-pc");
    assert!(
        c.contains("pattern check PASS"),
        "[{hv}] data changed:\n{c}"
    );

    // Destroyed mid-write: the backend is torn down and serves the next guest.
    s.send("xl create /etc/xen/diskdemo-pattern-write.cfg\n");
    s.expect("xl> ", T);
    std::thread::sleep(Duration::from_millis(300));
    s.xl("xl destroy diskdemo-pw", T);
    let list = s.xl("xl list", T);
    assert!(!list.contains("diskdemo"), "[{hv}]\n{list}");
    let w = run_and_destroy(&mut s, "/etc/xen/diskdemo-pattern-write.cfg", "diskdemo-pw");
    assert!(w.contains("pattern written 1024 sectors"), "[{hv}]\n{w}");
    let c = run_and_destroy(&mut s, "/etc/xen/diskdemo-pattern-check.cfg", "diskdemo-pc");
    assert!(c.contains("pattern check PASS"), "[{hv}]\n{c}");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_pattern_survives_guests_and_read_only_disks_refuse_writes_on_ours() {
    pattern_and_read_only("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_pattern_survives_guests_and_read_only_disks_refuse_writes_on_real_xen_4_17() {
    pattern_and_read_only("xen-4.17");
}

/// `xl block-attach` on a running guest adds the device (the guest's `device/vbd` node
/// and the backend waiting for it), `xl block-list` shows it in xl's columns,
/// `xl block-detach` removes it; bad input is refused.
fn attach_detach(hv: &str) {
    let mut s = boot("blk-attach", hv);
    let out = s.xl("xl create /etc/xen/ticker.cfg", T);
    assert!(!out.contains("error"), "[{hv}] {out}");
    let id: u32 = s
        .xl("xl domid ticker", T)
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .expect("ticker's id");
    let out = s.xl(
        "xl block-attach ticker format=raw, vdev=xvdb, access=ro, target=/images/scratch.img",
        T,
    );
    assert!(!out.contains("error"), "[{hv}] {out}");
    let list = s.xl("xl block-list ticker", T);
    assert!(
        list.starts_with("Vdev  BE  handle state evt-ch ring-ref BE-path"),
        "[{hv}]\n{list}"
    );
    let row =
        format!("51728 0   {id:<6} 2     -1     -1       /local/domain/0/backend/vbd/{id}/51728");
    assert!(list.contains(&row), "[{hv}] no {row:?} in:\n{list}");
    let fe = s.xl(
        &format!("xenstore-ls /local/domain/{id}/device/vbd/51728"),
        T,
    );
    assert!(
        fe.contains(&format!(
            "backend = \"/local/domain/0/backend/vbd/{id}/51728\""
        )),
        "[{hv}]\n{fe}"
    );
    let be = s.xl(
        &format!("xenstore-read /local/domain/0/backend/vbd/{id}/51728/mode"),
        T,
    );
    assert!(be.starts_with("r"), "[{hv}] {be}");
    let dup = s.xl(
        "xl block-attach ticker vdev=xvdb, target=/images/scratch.img",
        T,
    );
    assert!(dup.contains("already exists"), "[{hv}] {dup}");
    let bad = s.xl(
        "xl block-attach ticker vdev=xvdc, target=/images/nosuch.img",
        T,
    );
    assert!(bad.contains("No such file or directory"), "[{hv}] {bad}");
    let bad = s.xl(
        "xl block-attach ticker vdev=sdz, target=/images/scratch.img",
        T,
    );
    assert!(bad.contains("invalid vdev"), "[{hv}] {bad}");

    let out = s.xl("xl block-detach ticker xvdb", T);
    assert!(out.trim_end().ends_with("xl>"), "[{hv}] {out}");
    let list = s.xl("xl block-list ticker", T);
    assert!(!list.contains("51728"), "[{hv}] still listed:\n{list}");
    let gone = s.xl(
        &format!("xenstore-read /local/domain/{id}/device/vbd/51728/backend"),
        T,
    );
    assert!(gone.contains("couldn't read path"), "[{hv}] {gone}");
    let none = s.xl("xl block-detach ticker xvdb", T);
    assert!(none.contains("Device xvdb not connected"), "[{hv}] {none}");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn block_attach_list_and_detach_on_a_running_guest_on_ours() {
    attach_detach("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn block_attach_list_and_detach_on_a_running_guest_on_real_xen_4_17() {
    attach_detach("xen-4.17");
}

/// `diskdemo`'s pattern: word `i` of sector `s` (a copy of the guest's `pattern_word`).
fn pattern_word(sector: u64, i: u64) -> u64 {
    let mut z = (sector * 64 + i).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A guest's disk served from a real disk: a file on the host behind QEMU's
/// virtio-blk, which dom0 drives (`target=/dev/vda`). A guest writes the pattern over
/// its whole disk and flushes; a new guest reads it back; after the machine is gone
/// the host finds every sector of it in the file, with ordinary file reads.
fn guest_disk_on_a_host_file(hv: &str) {
    const SECTORS: u64 = 4096;
    let dir = std::env::temp_dir().join(format!("hv-blk-test-{}-{hv}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("guest.raw");
    std::fs::write(&file, vec![0x5a_u8; (SECTORS * 512) as usize]).expect("disk file");
    let mut args = dom0_args(hv, 2, "console=com1 dom0_mem=128M");
    args.extend([
        "-drive".into(),
        format!("file={},format=raw,if=none,id=vd0", file.display()),
        "-device".into(),
        "virtio-blk-pci,drive=vd0".into(),
    ]);
    let mut s = Session::start(&format!("blk-host-{hv}"), &args);
    let banner = s.expect("xl> ", T);
    assert!(
        banner.contains("(/dev/vda)"),
        "[{hv}] dom0 found no disk:\n{banner}"
    );
    let disk = "'disk=[\"format=raw, vdev=xvda, access=rw, target=/dev/vda\"]'";
    let w = run_and_destroy(
        &mut s,
        &format!("/etc/xen/diskdemo-pattern-write.cfg {disk}"),
        "diskdemo-pw",
    );
    assert!(
        w.contains(&format!("diskdemo: xvda {SECTORS} sectors")),
        "[{hv}]\n{w}"
    );
    assert!(
        w.contains(&format!("pattern written {SECTORS} sectors")),
        "[{hv}]\n{w}"
    );
    let c = run_and_destroy(
        &mut s,
        &format!("/etc/xen/diskdemo-pattern-check.cfg {disk}"),
        "diskdemo-pc",
    );
    assert!(c.contains("pattern check PASS"), "[{hv}]\n{c}");
    drop(s);
    let img = std::fs::read(&file).expect("read the disk file back");
    assert_eq!(img.len() as u64, SECTORS * 512);
    for (k, w) in img.chunks_exact(8).enumerate() {
        let (sector, i) = (k as u64 / 64, k as u64 % 64);
        let got = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        assert_eq!(
            got,
            pattern_word(sector, i),
            "[{hv}] word {i} of sector {sector}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_guest_disk_on_virtio_blk_reaches_the_host_file_on_ours() {
    guest_disk_on_a_host_file("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_guest_disk_on_virtio_blk_reaches_the_host_file_on_real_xen_4_17() {
    guest_disk_on_a_host_file("xen-4.17");
}

/// Attach to `dom`'s console until `needle` appears, detach; what it printed (what was
/// logged since the last attach comes first).
fn console_until(s: &mut Session, dom: &str, needle: &str) -> String {
    s.send(&format!("xl console {dom}\n"));
    let mut out = s.expect(needle, T);
    s.send("\x1d");
    out.push_str(&s.expect("xl> ", T));
    out
}

/// The id of domain `name`.
fn domid(s: &mut Session, name: &str) -> u32 {
    s.xl(&format!("xl domid {name}"), T)
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no id for {name}"))
}

/// No guest's entries are left in blkback's part of the store.
fn no_backend_entries(s: &mut Session, hv: &str) {
    let be = s.xl("xenstore-ls /local/domain/0/backend", T);
    assert!(
        !be.lines()
            .any(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())),
        "[{hv}] backend entries left:\n{be}"
    );
}

/// A hostile blkfront (diskdemo `hostile=`) puts malformed requests on its ring while a
/// well-behaved guest writes and checks its pattern on another disk: each bad request
/// is refused exactly once (the hostile guest's own verdict), its valid I/O in between
/// still works, the other guest is unaffected, and blkback serves a new guest after.
fn hostile_frontend(hv: &str) {
    let mut s = boot("blk-hostile", hv);
    let out = s.xl("xl create /etc/xen/diskdemo-hostile.cfg", T);
    assert!(!out.contains("rror"), "[{hv}] {out}");
    let id = domid(&mut s, "diskdemo-hostile");
    let first = console_until(&mut s, "diskdemo-hostile", "blkhostile: connected");
    assert!(!first.contains("FAIL"), "[{hv}]\n{first}");
    // While it hammers blkback, another guest writes and reads its whole disk.
    let w = run_and_destroy(&mut s, "/etc/xen/diskdemo-pattern-write.cfg", "diskdemo-pw");
    assert!(w.contains("pattern written 1024 sectors"), "[{hv}]\n{w}");
    let c = run_and_destroy(&mut s, "/etc/xen/diskdemo-pattern-check.cfg", "diskdemo-pc");
    assert!(
        c.contains("pattern check PASS (1024 sectors)"),
        "[{hv}]\n{c}"
    );
    s.xl(
        &format!("xenstore-write /local/domain/{id}/data/hostile-stop 1"),
        T,
    );
    let v = console_until(&mut s, "diskdemo-hostile", "blkhostile: done");
    assert!(v.contains("blkhostile: PASS"), "[{hv}]\n{first}{v}");
    // It was still at it when the other guest finished.
    assert!(
        v.contains("blkhostile: stopped by data/hostile-stop"),
        "[{hv}]\n{v}"
    );
    for line in [
        "blkhostile: read, ungranted gref: status -1",
        "blkhostile: read into a read-only grant: status -1",
        "blkhostile: unknown operation 0x77: status -2",
        "blkhostile: indirect, too many segments: status -1",
    ] {
        assert!(
            format!("{first}{v}").contains(line),
            "[{hv}] no {line:?}:\n{first}{v}"
        );
    }
    s.xl("xl destroy diskdemo-hostile", T);
    no_backend_entries(&mut s, hv);
    // blkback still serves a new guest.
    let f = run_to_poweroff(&mut s, "/etc/xen/diskdemo.cfg");
    assert!(f.contains("diskdemo: LOG.TXT has 1 lines"), "[{hv}]\n{f}");
    assert!(!f.contains("FAIL"), "[{hv}]\n{f}");
    no_backend_entries(&mut s, hv);
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_hostile_blkfront_hurts_no_other_domain_on_ours() {
    hostile_frontend("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_hostile_blkfront_hurts_no_other_domain_on_real_xen_4_17() {
    hostile_frontend("xen-4.17");
}

/// A guest writes the pattern over its disk, flushes, says the flush was acknowledged,
/// and crashes (a page fault with no handler of its own) with the disk connected; with
/// `on_crash = "destroy"` it goes away, and a new guest of the same disk finds every
/// sector of the pattern.
fn acknowledged_writes_survive_a_crash(hv: &str) {
    let mut s = boot("blk-crash", hv);
    s.send("xl create -c /etc/xen/diskdemo-crash.cfg\n");
    let out = s.expect("reason code 3 (crash)", T);
    s.expect("xl> ", T);
    assert!(
        out.contains("diskdemo: pattern written 1024 sectors"),
        "[{hv}]\n{out}"
    );
    assert!(
        out.contains("diskdemo: flush acknowledged, crashing"),
        "[{hv}]\n{out}"
    );
    assert!(!out.contains("did not fault"), "[{hv}]\n{out}");
    let list = s.xl("xl list", T);
    assert!(!list.contains("diskdemo"), "[{hv}]\n{list}");
    no_backend_entries(&mut s, hv);
    let c = run_and_destroy(&mut s, "/etc/xen/diskdemo-pattern-check.cfg", "diskdemo-pc");
    assert!(
        c.contains("pattern check PASS (1024 sectors)"),
        "[{hv}]\n{c}"
    );
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn acknowledged_writes_survive_a_guest_crash_on_ours() {
    acknowledged_writes_survive_a_crash("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn acknowledged_writes_survive_a_guest_crash_on_real_xen_4_17() {
    acknowledged_writes_survive_a_crash("xen-4.17");
}

/// A guest started without a disk watches `device/vbd`: `xl block-attach` gives it
/// one, which it connects, mounts and lists; `xl block-detach` takes it away, and the
/// guest closes it (blkfront's close path) and sees the node go.
fn hot_attach(hv: &str) {
    let mut s = boot("blk-hotplug", hv);
    let out = s.xl("xl create /etc/xen/diskdemo-hotplug.cfg", T);
    assert!(!out.contains("rror"), "[{hv}] {out}");
    let id = domid(&mut s, "diskdemo-hp");
    console_until(&mut s, "diskdemo-hp", "diskdemo: watching device/vbd");
    let out = s.xl(
        "xl block-attach diskdemo-hp format=raw, vdev=xvdb, access=rw, target=/images/fat.img",
        T,
    );
    assert!(!out.contains("rror"), "[{hv}] {out}");
    let fs = console_until(&mut s, "diskdemo-hp", "diskdemo: LOG.TXT has");
    for line in [
        "diskdemo: hot-attached xvdb (51728)",
        "diskdemo: xvdb 4608 sectors of 512 bytes",
        "diskdemo: ls: README.TXT",
        "diskdemo: LOG.TXT has 1 lines",
    ] {
        assert!(fs.contains(line), "[{hv}] no {line:?}:\n{fs}");
    }
    assert!(!fs.contains("FAIL"), "[{hv}]\n{fs}");
    let list = s.xl("xl block-list diskdemo-hp", T);
    let row = format!("51728 0   {id:<6} 4 ");
    assert!(list.contains(&row), "[{hv}] no {row:?} in:\n{list}");
    let out = s.xl("xl block-detach diskdemo-hp xvdb", T);
    assert!(out.trim_end().ends_with("xl>"), "[{hv}] {out}");
    let end = console_until(&mut s, "diskdemo-hp", "diskdemo: done");
    for line in [
        "diskdemo: backend Closing, closing xvdb",
        "diskdemo: xvdb closed",
        "diskdemo: device/vbd/51728 removed",
    ] {
        assert!(end.contains(line), "[{hv}] no {line:?}:\n{fs}{end}");
    }
    assert!(!end.contains("FAIL"), "[{hv}]\n{end}");
    let list = s.xl("xl block-list diskdemo-hp", T);
    assert!(!list.contains("51728"), "[{hv}] still listed:\n{list}");
    s.xl("xl destroy diskdemo-hp", T);
    no_backend_entries(&mut s, hv);
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_running_guest_notices_a_hot_attached_disk_on_ours() {
    hot_attach("hypervisor");
}

#[test]
#[ignore = "needs the images: run `cargo xtask test`"]
fn a_running_guest_notices_a_hot_attached_disk_on_real_xen_4_17() {
    hot_attach("xen-4.17");
}
