//! The dom0 ramdisk: a cpio "newc" archive (what `cpio -o -H newc` writes) holding the
//! guest kernels under `boot/` and their `xl.cfg` files under `etc/xen/`. dom0 reads it
//! from its `start_info` module (`dom0_tools::archive`).

use std::path::Path;

/// Guest images copied from `target/images` into `boot/`, if present (hello is required).
const KERNELS: &[&str] = &["hello", "ticker", "spin", "pingpong", "crasher", "smp", "xsprobe"];

fn align4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

/// Appends one newc member.
fn member(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8]) -> Result<(), String> {
    let size = u32::try_from(data.len()).map_err(|_| format!("{name}: too large for cpio"))?;
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        1, // nlink
        0, // mtime
        size,
        0, // devmajor
        0, // devminor
        0, // rdevmajor
        0, // rdevminor
        name.len() as u32 + 1,
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    align4(out);
    out.extend_from_slice(data);
    align4(out);
    Ok(())
}

/// The archive of `(path, mode, contents)` members, directories included, with the
/// trailer, padded to 512 bytes.
pub fn newc(files: &[(String, u32, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut ino = 1;
    let mut dirs: Vec<String> = Vec::new();
    for (path, mode, data) in files {
        // Parent directories first, once each.
        let mut parent = String::new();
        let comps: Vec<&str> = path.split('/').collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(c);
            if !dirs.contains(&parent) {
                member(&mut out, ino, &parent, 0o040755, &[])?;
                ino += 1;
                dirs.push(parent.clone());
            }
        }
        member(&mut out, ino, path, *mode, data)?;
        ino += 1;
    }
    member(&mut out, 0, "TRAILER!!!", 0, &[])?;
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
    Ok(out)
}

/// Writes `out`: `boot/<kernel>` for the guest kernels in `images` and
/// `etc/xen/*.cfg` from `dom0-tools/configs/`.
pub fn build_ramdisk(images: &Path, out: &Path) -> Result<(), String> {
    let mut files = Vec::new();
    for k in KERNELS {
        let p = images.join(k);
        match std::fs::read(&p) {
            Ok(data) => files.push((format!("boot/{k}"), 0o100755, data)),
            Err(e) if *k == "hello" => return Err(format!("{}: {e}", p.display())),
            Err(_) => {}
        }
    }
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dom0-tools/configs");
    let mut cfgs: Vec<_> = std::fs::read_dir(&configs)
        .map_err(|e| format!("{}: {e}", configs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cfg"))
        .collect();
    cfgs.sort();
    for c in cfgs {
        let data = std::fs::read(&c).map_err(|e| format!("{}: {e}", c.display()))?;
        let name = c
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: bad name", c.display()))?;
        files.push((format!("etc/xen/{name}"), 0o100644, data));
    }
    let archive = newc(&files)?;
    std::fs::write(out, archive).map_err(|e| format!("{}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_layout() {
        let a = newc(&[("etc/xen/a.cfg".into(), 0o100644, b"name=\"a\"\n".to_vec())]).unwrap();
        assert_eq!(a.len() % 512, 0);
        assert!(a.starts_with(b"070701"));
        let s = String::from_utf8_lossy(&a);
        let etc = s.find("etc\0").unwrap();
        let xen = s.find("etc/xen\0").unwrap();
        let cfg = s.find("etc/xen/a.cfg\0").unwrap();
        assert!(etc < xen && xen < cfg);
        assert!(s.contains("name=\"a\""));
        assert!(s.contains("TRAILER!!!"));
    }
}
