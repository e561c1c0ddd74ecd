//! The dom0 ramdisk: a cpio archive in the "newc" format (`070701`, and `070702` whose
//! checksum field is ignored), as `cpio -H newc` and the Linux initramfs write it.
//!
//! Each member is a 110-byte ASCII header (magic, then 13 fields of 8 hex digits), its
//! NUL-terminated name, padding to 4 bytes, the data, padding to 4 bytes. The archive ends
//! with the member `TRAILER!!!`. Nothing here trusts the archive: every size is checked
//! against the buffer, and a malformed member ends the walk with an [`Error`].

use alloc::string::String;
use alloc::vec::Vec;

/// Size of a newc header.
pub const HEADER_LEN: usize = 110;
/// Name of the member that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";
/// `S_IFMT` / `S_IFREG` / `S_IFDIR` of the mode field.
pub const S_IFMT: u32 = 0o170000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;

/// Why an archive could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A member at this offset does not start with `070701`/`070702`.
    BadMagic(usize),
    /// A header field at this offset is not 8 hex digits.
    BadField(usize),
    /// A member at this offset runs past the end of the archive.
    Truncated(usize),
    /// A member's name is not UTF-8 or lacks its NUL.
    BadName(usize),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::BadMagic(o) => write!(f, "not a newc cpio member at offset {o}"),
            Error::BadField(o) => write!(f, "bad cpio header field at offset {o}"),
            Error::Truncated(o) => write!(f, "cpio member at offset {o} is truncated"),
            Error::BadName(o) => write!(f, "bad cpio member name at offset {o}"),
        }
    }
}

/// One member of the archive, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The name as stored (`etc/xen/hello.cfg`, `./boot/hello`...).
    pub name: &'a str,
    /// The mode (type and permissions).
    pub mode: u32,
    /// The contents.
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// Whether it is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
}

/// A path without leading `/` and `./`, so `/etc/xen/a.cfg`, `./etc/xen/a.cfg` and
/// `etc/xen/a.cfg` name the same member.
pub fn normalize(path: &str) -> &str {
    let mut p = path;
    loop {
        if let Some(r) = p.strip_prefix('/') {
            p = r;
        } else if let Some(r) = p.strip_prefix("./") {
            p = r;
        } else {
            return p;
        }
    }
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn hex_field(buf: &[u8], at: usize) -> Result<u32, Error> {
    let f = buf.get(at..at + 8).ok_or(Error::Truncated(at))?;
    let mut v: u32 = 0;
    for &c in f {
        let d = (c as char).to_digit(16).ok_or(Error::BadField(at))?;
        v = (v << 4) | d;
    }
    Ok(v)
}

/// Iterator over an archive's members, up to the trailer (or the end of the buffer).
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    buf: &'a [u8],
    off: usize,
    done: bool,
}

/// The members of `buf`.
pub fn entries(buf: &[u8]) -> Entries<'_> {
    Entries {
        buf,
        off: 0,
        done: false,
    }
}

impl<'a> Entries<'a> {
    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, Error> {
        let o = self.off;
        // Trailing zero padding (archives are often padded to 512 bytes) ends the walk.
        let rest = self.buf.get(o..).unwrap_or(&[]);
        if rest.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let h = rest.get(..HEADER_LEN).ok_or(Error::Truncated(o))?;
        if h.get(..6) != Some(b"070701".as_slice()) && h.get(..6) != Some(b"070702".as_slice()) {
            return Err(Error::BadMagic(o));
        }
        let field = |i: usize| hex_field(self.buf, o + 6 + i * 8);
        let mode = field(1)?;
        let filesize = field(6)? as usize;
        let namesize = field(11)? as usize;
        let name_start = o + HEADER_LEN;
        let name_end = name_start
            .checked_add(namesize)
            .ok_or(Error::Truncated(o))?;
        let name_bytes = self
            .buf
            .get(name_start..name_end)
            .ok_or(Error::Truncated(o))?;
        let (nul, name_bytes) = name_bytes.split_last().ok_or(Error::BadName(o))?;
        if *nul != 0 {
            return Err(Error::BadName(o));
        }
        let name = core::str::from_utf8(name_bytes).map_err(|_| Error::BadName(o))?;
        let data_start = align4(name_end);
        let data_end = data_start
            .checked_add(filesize)
            .ok_or(Error::Truncated(o))?;
        if name == TRAILER {
            return Ok(None);
        }
        let data = self
            .buf
            .get(data_start..data_end)
            .ok_or(Error::Truncated(o))?;
        self.off = align4(data_end);
        Ok(Some(Entry { name, mode, data }))
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The regular file at `path` (leading `/` or `./` ignored on both sides).
pub fn find<'a>(buf: &'a [u8], path: &str) -> Result<Option<Entry<'a>>, Error> {
    let want = normalize(path);
    for e in entries(buf) {
        let e = e?;
        if normalize(e.name) == want && e.is_file() {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// The names of the regular files, in archive order.
pub fn list(buf: &[u8]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for e in entries(buf) {
        let e = e?;
        if e.is_file() {
            out.push(String::from(normalize(e.name)));
        }
    }
    Ok(out)
}

/// Writes a newc archive of `(name, mode, data)` members and the trailer (tests and
/// tools; the xtask has its own std copy).
pub fn write(members: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let push = |out: &mut Vec<u8>, ino: usize, name: &str, mode: u32, data: &[u8]| {
        let fields = [
            ino as u32,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(alloc::format!("{f:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(align4(out.len()), 0);
        out.extend_from_slice(data);
        out.resize(align4(out.len()), 0);
    };
    for (i, (name, mode, data)) in members.iter().enumerate() {
        push(&mut out, i + 1, name, *mode, data);
    }
    push(&mut out, 0, TRAILER, 0, &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        write(&[
            ("etc", S_IFDIR | 0o755, b""),
            ("etc/xen/hello.cfg", S_IFREG | 0o644, b"name=\"hello\"\n"),
            ("boot/hello", S_IFREG | 0o755, b"\x7fELF12345"),
        ])
    }

    #[test]
    fn reads_what_it_writes() {
        let a = sample();
        assert_eq!(a.len() % 4, 0);
        let names = list(&a).unwrap();
        assert_eq!(names, ["etc/xen/hello.cfg", "boot/hello"]);
        let e = find(&a, "/etc/xen/hello.cfg").unwrap().unwrap();
        assert_eq!(e.data, b"name=\"hello\"\n");
        let e = find(&a, "./boot/hello").unwrap().unwrap();
        assert_eq!(e.data, b"\x7fELF12345");
        assert_eq!(find(&a, "etc").unwrap(), None);
        assert_eq!(find(&a, "nope").unwrap(), None);
    }

    #[test]
    fn padding_after_trailer_and_empty() {
        let mut a = sample();
        a.extend_from_slice(&[0; 512]);
        assert_eq!(list(&a).unwrap().len(), 2);
        assert_eq!(list(&[]).unwrap().len(), 0);
        assert_eq!(list(&[0; 100]).unwrap().len(), 0);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(list(b"hello world").unwrap_err(), Error::Truncated(0));
        let mut bad = vec![b'x'; 200];
        assert_eq!(list(&bad).unwrap_err(), Error::BadMagic(0));
        bad[..6].copy_from_slice(b"070701");
        assert!(matches!(list(&bad).unwrap_err(), Error::BadField(_)));
    }

    #[test]
    fn every_truncation_is_an_error_or_a_prefix() {
        let a = sample();
        for n in 0..a.len() {
            // Never panics; either an error or some prefix of the members.
            let _ = list(&a[..n]);
            for e in entries(&a[..n]).flatten() {
                assert!(e.name.len() < 64);
            }
        }
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let mut a = write(&[("f", S_IFREG, b"abc")]);
        // filesize field = FFFFFFFF
        a[6 + 6 * 8..6 + 7 * 8].copy_from_slice(b"FFFFFFFF");
        assert_eq!(list(&a).unwrap_err(), Error::Truncated(0));
        let mut a = write(&[("f", S_IFREG, b"abc")]);
        a[6 + 11 * 8..6 + 12 * 8].copy_from_slice(b"FFFFFFFF");
        assert_eq!(list(&a).unwrap_err(), Error::Truncated(0));
    }
}
