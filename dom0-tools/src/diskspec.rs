//! `disk = [ '...' ]` entries of `xl.cfg`, as Xen's `xl-disk-configuration.txt` (and
//! libxlu's disk parser) define them: comma-separated `key=value` settings, or the
//! positional form `target, format, vdev, access`; `target=` must come last because
//! the target may contain commas. Plus the virtual-device number blkfront sees
//! (`xvda` = 51712).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// How the guest may use the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `rw`/`w` (the default).
    ReadWrite,
    /// `ro`/`r`.
    ReadOnly,
}

/// One parsed disk specification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// `target`: the backing file or device.
    pub target: String,
    /// `format` (`raw` is the only one served).
    pub format: String,
    /// `vdev`: the name the guest sees (`xvda`).
    pub vdev: String,
    /// `access`.
    pub access: Access,
    /// `devtype=cdrom` (or the `:cdrom` suffix on vdev).
    pub cdrom: bool,
}

impl DiskSpec {
    /// Parse one entry (libxlu's messages for what it refuses).
    pub fn parse(spec: &str) -> Result<DiskSpec, String> {
        let mut target: Option<String> = None;
        let mut format = None;
        let mut vdev: Option<String> = None;
        let mut access = None;
        let mut cdrom = false;
        let mut positional = 0;
        let mut rest = spec;
        while !rest.trim().is_empty() {
            let trimmed = rest.trim_start();
            // `target=` takes everything after it.
            if let Some(t) = trimmed.strip_prefix("target=") {
                target = Some(t.trim().to_string());
                break;
            }
            let (word, next) = match trimmed.split_once(',') {
                Some((w, n)) => (w.trim(), n),
                None => (trimmed.trim(), ""),
            };
            rest = next;
            if word.is_empty() {
                positional += 1;
                continue;
            }
            match word.split_once('=') {
                Some((k, v)) => {
                    let v = v.trim();
                    match k.trim() {
                        "format" => format = Some(v.to_string()),
                        "vdev" => vdev = Some(v.to_string()),
                        "access" => access = Some(parse_access(v)?),
                        "devtype" => cdrom = v == "cdrom",
                        "backendtype" | "backend" | "script" | "discard" | "no-discard"
                        | "direct-io-safe" | "colo" => {}
                        other => return Err(format!("unknown disk setting `{other}' in `{spec}'")),
                    }
                }
                None if word == "cdrom" => cdrom = true,
                None => {
                    match positional {
                        0 => target = Some(word.to_string()),
                        1 => format = Some(word.to_string()),
                        2 => vdev = Some(word.to_string()),
                        3 => access = Some(parse_access(word)?),
                        _ => return Err(format!("too many positional parameters in `{spec}'")),
                    }
                    positional += 1;
                }
            }
        }
        let mut vdev = vdev.ok_or_else(|| format!("no vdev specified in `{spec}'"))?;
        if let Some(v) = vdev.strip_suffix(":cdrom") {
            cdrom = true;
            vdev = v.to_string();
        }
        if devid(&vdev).is_none() {
            return Err(format!("invalid vdev `{vdev}' in `{spec}'"));
        }
        let format = format.unwrap_or_else(|| "raw".into());
        if format != "raw" {
            return Err(format!(
                "disk format `{format}' is not supported (only raw)"
            ));
        }
        Ok(DiskSpec {
            target: target.unwrap_or_default(),
            format,
            vdev,
            access: access.unwrap_or(if cdrom {
                Access::ReadOnly
            } else {
                Access::ReadWrite
            }),
            cdrom,
        })
    }

    /// The virtual-device number (`xvda` = 202:0 = 51712).
    pub fn devid(&self) -> u32 {
        devid(&self.vdev).unwrap_or(0)
    }
}

fn parse_access(v: &str) -> Result<Access, String> {
    match v {
        "rw" | "w" => Ok(Access::ReadWrite),
        "ro" | "r" => Ok(Access::ReadOnly),
        _ => Err(format!("invalid access mode `{v}'")),
    }
}

/// Xen's virtual-device numbering (`docs/misc/vbd-interface.txt`): `xvdX` with X a
/// letter sequence (`a`..`z`, `aa`...) is disk N: `202 << 8 | N << 4` for N < 16,
/// `1 << 28 | N << 8` above; `d<N>` is the same disk N. Partitions are not devices here.
pub fn devid(vdev: &str) -> Option<u32> {
    let n = if let Some(letters) = vdev.strip_prefix("xvd") {
        if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_lowercase()) {
            return None;
        }
        let mut n: u32 = 0;
        for b in letters.bytes() {
            n = n.checked_mul(26)?.checked_add(u32::from(b - b'a') + 1)?;
        }
        n - 1
    } else if let Some(d) = vdev.strip_prefix('d') {
        d.parse::<u32>().ok()?
    } else {
        return None;
    };
    if n < 16 {
        Some((202 << 8) | (n << 4))
    } else if n < (1 << 20) {
        Some((1 << 28) | (n << 8))
    } else {
        None
    }
}

/// Every entry of a `disk` list, or the first error.
pub fn parse_all(entries: &[String]) -> Result<Vec<DiskSpec>, String> {
    entries.iter().map(|e| DiskSpec::parse(e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_and_positional_forms() {
        let d =
            DiskSpec::parse("format=raw, vdev=xvda, access=rw, target=/images/a,b.img").unwrap();
        assert_eq!(d.target, "/images/a,b.img");
        assert_eq!(
            (d.vdev.as_str(), d.access, d.devid()),
            ("xvda", Access::ReadWrite, 51712)
        );
        let p = DiskSpec::parse("/images/x.img,raw,xvdb,ro").unwrap();
        assert_eq!(
            (p.target.as_str(), p.vdev.as_str(), p.access, p.devid()),
            ("/images/x.img", "xvdb", Access::ReadOnly, 51728)
        );
        let c = DiskSpec::parse("vdev=xvdc:cdrom, target=/images/iso").unwrap();
        assert!(c.cdrom && c.access == Access::ReadOnly);
    }

    #[test]
    fn refusals() {
        assert!(DiskSpec::parse("format=raw, target=/x")
            .unwrap_err()
            .contains("no vdev"));
        assert!(DiskSpec::parse("vdev=hda, target=/x")
            .unwrap_err()
            .contains("invalid vdev"));
        assert!(DiskSpec::parse("vdev=xvda, access=rx, target=/x").is_err());
        assert!(DiskSpec::parse("vdev=xvda, format=qcow2, target=/x")
            .unwrap_err()
            .contains("not supported"));
        assert!(DiskSpec::parse("vdev=xvda, colour=red").is_err());
    }

    #[test]
    fn devids_follow_vbd_interface() {
        assert_eq!(devid("xvda"), Some(51712));
        assert_eq!(devid("xvdp"), Some((202 << 8) | (15 << 4)));
        assert_eq!(devid("xvdq"), Some((1 << 28) | (16 << 8)));
        assert_eq!(devid("xvdaa"), Some((1 << 28) | (26 << 8)));
        assert_eq!(devid("d1"), Some(51728));
        assert_eq!(devid("xvd"), None);
        assert_eq!(devid("xvdA"), None);
        assert_eq!(devid("sda"), None);
    }
}
