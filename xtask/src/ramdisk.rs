//! The dom0 ramdisk: a cpio "newc" archive (what `cpio -o -H newc` writes) holding the
//! guest kernels under `boot/` and their `xl.cfg` files under `etc/xen/`. dom0 reads it
//! from its `start_info` module (`dom0_tools::archive`).

use std::path::Path;

/// Guest images copied from `target/images` into `boot/`, if present (hello is required).
const KERNELS: &[&str] = &[
    "hello", "ticker", "spin", "pingpong", "crasher", "smp", "xsprobe", "attacker", "diskdemo",
    "netdemo",
];

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
    for (name, data) in disk_images()? {
        files.push((name, 0o100644, data));
    }
    let archive = newc(&files)?;
    std::fs::write(out, archive).map_err(|e| format!("{}: {e}", out.display()))
}

/// dom0's disk images, `images/<name>` in the ramdisk: the `target=/images/<name>` of
/// `disk = [...]` lines in the guests' configs.
pub fn disk_images() -> Result<Vec<(String, Vec<u8>)>, String> {
    Ok(vec![
        ("images/fat.img".to_string(), fat_image()?),
        // A blank 512 KiB disk for the pattern tests (the whole disk is overwritten).
        ("images/scratch.img".to_string(), vec![0u8; 512 << 10]),
        // A blank 64 KiB disk for the hostile blkfront (diskdemo-hostile.cfg).
        ("images/hostile.img".to_string(), vec![0u8; 64 << 10]),
    ])
}

/// Size of `images/fat.img`: 2.25 MiB, about the smallest FAT16 with 512-byte clusters
/// (4085 clusters at least) after a 64 KiB gap. dom0's blkback keeps each image in its
/// heap, so small is good.
pub const FAT_IMAGE_BYTES: usize = 2304 << 10;
/// First sector of its partition (64 KiB in).
pub const FAT_PART_START: u32 = 128;
/// `README.TXT` in it.
pub const FAT_README: &[u8] =
    b"This is xvda of the diskdemo guest: a FAT16 filesystem made by `cargo xtask build`.\r\n\
diskdemo appends a line to LOG.TXT on every boot.\r\n";

/// A small disk ([`FAT_IMAGE_BYTES`]): an MBR with one FAT16 partition (type 0x04, from sector
/// [`FAT_PART_START`] to the end, 512-byte clusters) holding `README.TXT`, formatted with
/// the `fatfs` crate.
pub fn fat_image() -> Result<Vec<u8>, String> {
    use std::io::Write as _;
    let part_sectors = (FAT_IMAGE_BYTES / 512) as u32 - FAT_PART_START;
    let mut part = std::io::Cursor::new(vec![0u8; part_sectors as usize * 512]);
    let opts = fatfs::FormatVolumeOptions::new()
        .fat_type(fatfs::FatType::Fat16)
        .bytes_per_cluster(512)
        .volume_label(*b"XENDISK    ")
        .volume_id(0x5845_4e31);
    fatfs::format_volume(&mut part, opts).map_err(|e| format!("fat.img: format: {e}"))?;
    part.set_position(0);
    {
        let fs = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new())
            .map_err(|e| format!("fat.img: mount: {e}"))?;
        let mut f = fs
            .root_dir()
            .create_file("README.TXT")
            .map_err(|e| format!("fat.img: README.TXT: {e}"))?;
        f.write_all(FAT_README)
            .map_err(|e| format!("fat.img: README.TXT: {e}"))?;
        drop(f);
        fs.unmount().map_err(|e| format!("fat.img: unmount: {e}"))?;
    }
    let mut part = part.into_inner();
    // BPB_HiddSec: the sectors before the partition.
    part[28..32].copy_from_slice(&FAT_PART_START.to_le_bytes());
    let mut img = vec![0u8; FAT_IMAGE_BYTES];
    // MBR partition entry 1: not active, CHS unused (0xfe/0xff/0xff: use LBA), FAT16 <32M.
    let entry = &mut img[446..462];
    entry[..8].copy_from_slice(&[0x00, 0xfe, 0xff, 0xff, 0x04, 0xfe, 0xff, 0xff]);
    entry[8..12].copy_from_slice(&FAT_PART_START.to_le_bytes());
    entry[12..16].copy_from_slice(&part_sectors.to_le_bytes());
    img[510] = 0x55;
    img[511] = 0xaa;
    img[FAT_PART_START as usize * 512..].copy_from_slice(&part);
    Ok(img)
}

#[cfg(test)]
mod fat_tests {
    use super::*;
    use std::cell::RefCell;
    use std::ops::ControlFlow;

    use embedded_sdmmc::{Block, BlockCount, BlockIdx, Mode, VolumeIdx};

    #[derive(Debug)]
    struct NoError;
    impl std::fmt::Display for NoError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("out of range")
        }
    }
    impl std::error::Error for NoError {}

    /// The image as the guest's `embedded-sdmmc` sees it through blkfront.
    struct Img(RefCell<Vec<u8>>);

    impl embedded_sdmmc::BlockDevice for Img {
        type Error = NoError;
        fn read(&self, blocks: &mut [Block], start: BlockIdx) -> Result<(), NoError> {
            let img = self.0.borrow();
            for (i, b) in blocks.iter_mut().enumerate() {
                let o = (start.0 as usize + i) * 512;
                b.contents
                    .copy_from_slice(img.get(o..o + 512).ok_or(NoError)?);
            }
            Ok(())
        }
        fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), NoError> {
            let mut img = self.0.borrow_mut();
            for (i, b) in blocks.iter().enumerate() {
                let o = (start.0 as usize + i) * 512;
                img.get_mut(o..o + 512)
                    .ok_or(NoError)?
                    .copy_from_slice(&b.contents);
            }
            Ok(())
        }
        fn num_blocks(&self) -> Result<BlockCount, NoError> {
            Ok(BlockCount((self.0.borrow().len() / 512) as u32))
        }
    }

    struct Clock;
    impl embedded_sdmmc::TimeSource for Clock {
        fn get_timestamp(&self) -> embedded_sdmmc::Timestamp {
            embedded_sdmmc::Timestamp::from_calendar(2026, 1, 1, 0, 0, 0).unwrap()
        }
    }

    /// What diskdemo does on one boot; returns (root listing, LOG.TXT lines after).
    fn boot(img: Vec<u8>) -> (Vec<u8>, Vec<(String, u32)>, usize) {
        let vm: embedded_sdmmc::VolumeManager<Img, Clock, 4, 4, 1> =
            embedded_sdmmc::VolumeManager::new_with_limits(Img(RefCell::new(img)), Clock, 0);
        let volume = vm.open_volume(VolumeIdx(0)).unwrap();
        let root = volume.open_root_dir().unwrap();
        let mut ls = Vec::new();
        root.iterate_dir(|e| {
            if !e.attributes.is_volume() {
                ls.push((e.name.to_string(), e.size));
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        let lines = |root: &embedded_sdmmc::Directory<'_, Img, Clock, 4, 4, 1>| match root
            .open_file_in_dir("LOG.TXT", Mode::ReadOnly)
        {
            Ok(f) => {
                let mut n = 0;
                let mut buf = [0u8; 512];
                while !f.is_eof() {
                    let got = f.read(&mut buf).unwrap();
                    n += buf[..got].iter().filter(|&&b| b == b'\n').count();
                }
                f.close().unwrap();
                n
            }
            Err(embedded_sdmmc::Error::NotFound) => 0,
            Err(e) => panic!("{e:?}"),
        };
        let before = lines(&root);
        let f = root
            .open_file_in_dir("LOG.TXT", Mode::ReadWriteCreateOrAppend)
            .unwrap();
        f.write(format!("boot {}\n", before + 1).as_bytes())
            .unwrap();
        f.close().unwrap();
        let after = lines(&root);
        root.close().unwrap();
        volume.close().unwrap();
        let (img, _) = vm.free();
        (img.0.into_inner(), ls, after)
    }

    #[test]
    fn fat_image_mounts_as_the_guest_mounts_it() {
        let img = fat_image().unwrap();
        assert_eq!(img.len(), FAT_IMAGE_BYTES);
        assert_eq!(&img[510..512], &[0x55, 0xaa]);
        let (img, ls, n) = boot(img);
        assert_eq!(
            ls,
            vec![("README.TXT".to_string(), FAT_README.len() as u32)]
        );
        assert_eq!(n, 1);
        let (img, ls, n) = boot(img);
        assert!(ls.contains(&("LOG.TXT".to_string(), 7)), "{ls:?}");
        assert_eq!(n, 2);
        // What embedded-sdmmc wrote is a valid FAT for fatfs too.
        let part = std::io::Cursor::new(img[FAT_PART_START as usize * 512..].to_vec());
        let fs = fatfs::FileSystem::new(part, fatfs::FsOptions::new()).unwrap();
        assert_eq!(fs.fat_type(), fatfs::FatType::Fat16);
        let mut log = String::new();
        std::io::Read::read_to_string(&mut fs.root_dir().open_file("LOG.TXT").unwrap(), &mut log)
            .unwrap();
        assert_eq!(log, "boot 1\nboot 2\n");
    }
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
