//! A small ELF64 reader for PV kernels: the header, `PT_LOAD` segments and the Xen ELF
//! notes (`xen/include/public/elfnote.h`), interpreted as libelf's `elf_xen_parse` and
//! `elf_xen_addr_calc_check` do (`tools/libs/guest/xg_dom_elfloader.c`,
//! `xen/common/libelf/libelf-dominfo.c`).
//!
//! Every offset and size read from the file is checked against the buffer; nothing here
//! panics on a hostile image.

use alloc::string::String;
use alloc::vec::Vec;
use xen_abi::elfnote::*;

/// Why a kernel image was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not an ELF file.
    NotElf,
    /// Not a 64-bit little-endian x86_64 executable.
    Unsupported(&'static str),
    /// A header or segment lies outside the file.
    Truncated(&'static str),
    /// The Xen notes are missing or inconsistent.
    Notes(&'static str),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::NotElf => f.write_str("not an ELF image"),
            Error::Unsupported(w) => write!(f, "unsupported ELF image: {w}"),
            Error::Truncated(w) => write!(f, "truncated ELF image: {w}"),
            Error::Notes(w) => write!(f, "bad Xen ELF notes: {w}"),
        }
    }
}

/// A `PT_LOAD` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Offset of its bytes in the file.
    pub offset: u64,
    /// Bytes in the file.
    pub filesz: u64,
    /// Bytes in memory (the rest is zero).
    pub memsz: u64,
    /// Physical address (libelf loads by `p_paddr`).
    pub paddr: u64,
    /// Virtual address.
    pub vaddr: u64,
}

/// What the domain builder needs from a PV kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// `e_entry`.
    pub elf_entry: u64,
    /// The `PT_LOAD` segments.
    pub segments: Vec<Segment>,
    /// `XEN_ELFNOTE_GUEST_OS`.
    pub guest_os: String,
    /// `XEN_ELFNOTE_LOADER`.
    pub loader: String,
    /// `XEN_ELFNOTE_XEN_VERSION`.
    pub xen_version: String,
    /// `XEN_ELFNOTE_FEATURES`.
    pub features: String,
    /// `XEN_ELFNOTE_VIRT_BASE`.
    pub virt_base: u64,
    /// `XEN_ELFNOTE_PADDR_OFFSET` (defaults to `virt_base`).
    pub paddr_offset: u64,
    /// Entry point: `XEN_ELFNOTE_ENTRY`, else `e_entry`.
    pub virt_entry: u64,
    /// `XEN_ELFNOTE_HYPERCALL_PAGE` (virtual), if any.
    pub hypercall_page: Option<u64>,
    /// `XEN_ELFNOTE_INIT_P2M`, if any.
    pub init_p2m: Option<u64>,
    /// First virtual address of the kernel (`virt_kstart`).
    pub virt_kstart: u64,
    /// End of the kernel in memory (`virt_kend`).
    pub virt_kend: u64,
}

fn rd<const N: usize>(buf: &[u8], at: u64, what: &'static str) -> Result<[u8; N], Error> {
    let at = usize::try_from(at).map_err(|_| Error::Truncated(what))?;
    let s = buf
        .get(at..at.checked_add(N).ok_or(Error::Truncated(what))?)
        .ok_or(Error::Truncated(what))?;
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    Ok(a)
}
fn u16_at(b: &[u8], at: u64, w: &'static str) -> Result<u16, Error> {
    rd::<2>(b, at, w).map(u16::from_le_bytes)
}
fn u32_at(b: &[u8], at: u64, w: &'static str) -> Result<u32, Error> {
    rd::<4>(b, at, w).map(u32::from_le_bytes)
}
fn u64_at(b: &[u8], at: u64, w: &'static str) -> Result<u64, Error> {
    rd::<8>(b, at, w).map(u64::from_le_bytes)
}

/// The bytes of `[off, off+len)` of `buf`.
pub fn range(buf: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let s = usize::try_from(off).ok()?;
    let e = s.checked_add(usize::try_from(len).ok()?)?;
    buf.get(s..e)
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const MAX_PHDRS: u16 = 64;
const MAX_NOTES: usize = 256;

/// Walks the notes in `data`, calling `f(name, type, desc)`.
fn notes(data: &[u8], mut f: impl FnMut(&[u8], u32, &[u8])) {
    let mut off = 0usize;
    for _ in 0..MAX_NOTES {
        let hdr = |i: usize| -> Option<u32> {
            let s = data.get(off + i * 4..off + i * 4 + 4)?;
            Some(u32::from_le_bytes(s.try_into().ok()?))
        };
        let (Some(namesz), Some(descsz), Some(ty)) = (hdr(0), hdr(1), hdr(2)) else {
            return;
        };
        let name_at = off + 12;
        let Some(name_end) = name_at.checked_add(namesz as usize) else {
            return;
        };
        let desc_at = (name_end + 3) & !3;
        let Some(desc_end) = desc_at.checked_add(descsz as usize) else {
            return;
        };
        let (Some(name), Some(desc)) = (data.get(name_at..name_end), data.get(desc_at..desc_end))
        else {
            return;
        };
        f(name, ty, desc);
        off = (desc_end + 3) & !3;
    }
}

fn note_num(desc: &[u8]) -> Option<u64> {
    match desc.len() {
        4 => Some(u64::from(u32::from_le_bytes(desc.try_into().ok()?))),
        8 => Some(u64::from_le_bytes(desc.try_into().ok()?)),
        _ => None,
    }
}

fn note_str(desc: &[u8]) -> String {
    let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
    String::from_utf8_lossy(desc.get(..end).unwrap_or(desc)).into_owned()
}

/// Parses a PV kernel image.
pub fn parse(img: &[u8]) -> Result<Kernel, Error> {
    if img.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(Error::NotElf);
    }
    let ident = rd::<16>(img, 0, "ident")?;
    if ident[4] != 2 {
        return Err(Error::Unsupported("not ELFCLASS64"));
    }
    if ident[5] != 1 {
        return Err(Error::Unsupported("not little-endian"));
    }
    let e_type = u16_at(img, 16, "e_type")?;
    if e_type != 2 {
        return Err(Error::Unsupported("not an executable (ET_EXEC)"));
    }
    if u16_at(img, 18, "e_machine")? != 62 {
        return Err(Error::Unsupported("not x86_64"));
    }
    let elf_entry = u64_at(img, 24, "e_entry")?;
    let phoff = u64_at(img, 32, "e_phoff")?;
    let phentsize = u16_at(img, 54, "e_phentsize")?;
    let phnum = u16_at(img, 56, "e_phnum")?;
    if phentsize < 56 {
        return Err(Error::Unsupported("bad e_phentsize"));
    }
    if phnum == 0 || phnum > MAX_PHDRS {
        return Err(Error::Unsupported("bad e_phnum"));
    }
    let mut segments = Vec::new();
    let mut k = Kernel {
        elf_entry,
        segments: Vec::new(),
        guest_os: String::new(),
        loader: String::new(),
        xen_version: String::new(),
        features: String::new(),
        virt_base: 0,
        paddr_offset: 0,
        virt_entry: 0,
        hypercall_page: None,
        init_p2m: None,
        virt_kstart: 0,
        virt_kend: 0,
    };
    let (mut have_base, mut have_off, mut have_entry, mut any_note) = (false, false, false, false);
    for i in 0..u64::from(phnum) {
        let ph = phoff
            .checked_add(i * u64::from(phentsize))
            .ok_or(Error::Truncated("program header"))?;
        let p_type = u32_at(img, ph, "program header")?;
        let offset = u64_at(img, ph + 8, "program header")?;
        let vaddr = u64_at(img, ph + 16, "program header")?;
        let paddr = u64_at(img, ph + 24, "program header")?;
        let filesz = u64_at(img, ph + 32, "program header")?;
        let memsz = u64_at(img, ph + 40, "program header")?;
        if p_type == PT_LOAD {
            if filesz > memsz {
                return Err(Error::Unsupported("segment file size above memory size"));
            }
            range(img, offset, filesz).ok_or(Error::Truncated("segment"))?;
            paddr
                .checked_add(memsz)
                .ok_or(Error::Unsupported("segment wraps"))?;
            if memsz > 0 {
                segments.push(Segment {
                    offset,
                    filesz,
                    memsz,
                    paddr,
                    vaddr,
                });
            }
        } else if p_type == PT_NOTE {
            let data = range(img, offset, filesz).ok_or(Error::Truncated("note segment"))?;
            notes(data, |name, ty, desc| {
                if name != XEN_ELFNOTE_NAME.as_slice() && name != b"Xen" {
                    return;
                }
                any_note = true;
                match ty {
                    XEN_ELFNOTE_GUEST_OS => k.guest_os = note_str(desc),
                    XEN_ELFNOTE_LOADER => k.loader = note_str(desc),
                    XEN_ELFNOTE_XEN_VERSION => k.xen_version = note_str(desc),
                    XEN_ELFNOTE_FEATURES => k.features = note_str(desc),
                    XEN_ELFNOTE_VIRT_BASE => {
                        if let Some(v) = note_num(desc) {
                            k.virt_base = v;
                            have_base = true;
                        }
                    }
                    XEN_ELFNOTE_PADDR_OFFSET => {
                        if let Some(v) = note_num(desc) {
                            k.paddr_offset = v;
                            have_off = true;
                        }
                    }
                    XEN_ELFNOTE_ENTRY => {
                        if let Some(v) = note_num(desc) {
                            k.virt_entry = v;
                            have_entry = true;
                        }
                    }
                    XEN_ELFNOTE_HYPERCALL_PAGE => k.hypercall_page = note_num(desc),
                    XEN_ELFNOTE_INIT_P2M => k.init_p2m = note_num(desc),
                    _ => {}
                }
            });
        }
    }
    if !any_note {
        return Err(Error::Notes("no Xen ELF notes (not a PV kernel)"));
    }
    if k.loader != "generic" && !k.loader.is_empty() {
        return Err(Error::Notes("LOADER is not \"generic\""));
    }
    if !k.xen_version.is_empty() && k.xen_version != "xen-3.0" {
        return Err(Error::Notes("XEN_VERSION is not \"xen-3.0\""));
    }
    if segments.is_empty() {
        return Err(Error::Unsupported("no loadable segment"));
    }
    if !have_base {
        // libelf's default for a missing VIRT_BASE.
        k.virt_base = 0;
    }
    if !have_off {
        k.paddr_offset = k.virt_base;
    }
    if !have_entry {
        k.virt_entry = elf_entry;
    }
    let pstart = segments.iter().map(|s| s.paddr).min().unwrap_or(0);
    let pend = segments
        .iter()
        .map(|s| s.paddr.saturating_add(s.memsz))
        .max()
        .unwrap_or(0);
    let virt_offset = k.virt_base.wrapping_sub(k.paddr_offset);
    k.virt_kstart = pstart.wrapping_add(virt_offset);
    k.virt_kend = pend.wrapping_add(virt_offset);
    if k.virt_kstart < k.virt_base || k.virt_kend < k.virt_kstart {
        return Err(Error::Notes("kernel below VIRT_BASE"));
    }
    if k.virt_entry < k.virt_kstart || k.virt_entry >= k.virt_kend {
        return Err(Error::Notes("entry point outside the kernel"));
    }
    if let Some(h) = k.hypercall_page {
        if h < k.virt_kstart || h >= k.virt_kend || h & 0xfff != 0 {
            return Err(Error::Notes("hypercall page outside the kernel"));
        }
    }
    // The kernel must stay clear of the hypervisor's hole and of the canonical gap.
    if k.virt_base < 0xFFFF_8800_0000_0000 && k.virt_kend > 0x0000_8000_0000_0000 {
        return Err(Error::Notes("kernel overlaps the hypervisor's area"));
    }
    k.segments = segments;
    Ok(k)
}

impl Kernel {
    /// Virtual address a segment is loaded at (libelf loads by `p_paddr`).
    pub fn load_addr(&self, s: &Segment) -> u64 {
        s.paddr
            .wrapping_add(self.virt_base.wrapping_sub(self.paddr_offset))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn note(out: &mut Vec<u8>, ty: u32, desc: &[u8]) {
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(b"Xen\0");
        out.extend_from_slice(desc);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }

    /// An image like the SDK's: one text segment of `text` bytes and a bss, at
    /// 0xffffffff80000000, with the SDK's notes.
    pub fn sample(text: usize, bss: u64) -> Vec<u8> {
        let base = 0xffff_ffff_8000_0000u64;
        let mut n = Vec::new();
        note(&mut n, XEN_ELFNOTE_GUEST_OS, b"rust-guest-sdk\0");
        note(&mut n, XEN_ELFNOTE_XEN_VERSION, b"xen-3.0\0");
        note(&mut n, XEN_ELFNOTE_LOADER, b"generic\0");
        note(&mut n, XEN_ELFNOTE_VIRT_BASE, &base.to_le_bytes());
        note(&mut n, XEN_ELFNOTE_PADDR_OFFSET, &base.to_le_bytes());
        note(&mut n, XEN_ELFNOTE_ENTRY, &(base + 0x10).to_le_bytes());
        note(
            &mut n,
            XEN_ELFNOTE_HYPERCALL_PAGE,
            &(base + 0x1000).to_le_bytes(),
        );
        let mut img = vec![0u8; 0x1000];
        img[..4].copy_from_slice(b"\x7fELF");
        img[4] = 2;
        img[5] = 1;
        img[6] = 1;
        img[16..18].copy_from_slice(&2u16.to_le_bytes());
        img[18..20].copy_from_slice(&62u16.to_le_bytes());
        img[24..32].copy_from_slice(&(base + 0x10).to_le_bytes());
        img[32..40].copy_from_slice(&64u64.to_le_bytes());
        img[54..56].copy_from_slice(&56u16.to_le_bytes());
        img[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph = |img: &mut Vec<u8>, at: usize, ty: u32, off: u64, addr: u64, fs: u64, ms: u64| {
            img[at..at + 4].copy_from_slice(&ty.to_le_bytes());
            img[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            img[at + 16..at + 24].copy_from_slice(&addr.to_le_bytes());
            img[at + 24..at + 32].copy_from_slice(&addr.to_le_bytes());
            img[at + 32..at + 40].copy_from_slice(&fs.to_le_bytes());
            img[at + 40..at + 48].copy_from_slice(&ms.to_le_bytes());
        };
        let note_off = 0x800u64;
        img[0x800..0x800 + n.len()].copy_from_slice(&n);
        ph(
            &mut img,
            64,
            PT_LOAD,
            0x1000,
            base,
            text as u64,
            text as u64 + bss,
        );
        ph(
            &mut img,
            120,
            PT_NOTE,
            note_off,
            0,
            n.len() as u64,
            n.len() as u64,
        );
        img.extend((0..text).map(|i| (i % 251) as u8));
        img
    }

    #[test]
    fn parses_sdk_like_image() {
        let img = sample(0x2345, 0x5000);
        let k = parse(&img).unwrap();
        assert_eq!(k.guest_os, "rust-guest-sdk");
        assert_eq!(k.virt_base, 0xffff_ffff_8000_0000);
        assert_eq!(k.virt_entry, k.virt_base + 0x10);
        assert_eq!(k.hypercall_page, Some(k.virt_base + 0x1000));
        assert_eq!(k.virt_kstart, k.virt_base);
        assert_eq!(k.virt_kend, k.virt_base + 0x2345 + 0x5000);
        assert_eq!(k.segments.len(), 1);
        assert_eq!(k.load_addr(&k.segments[0]), k.virt_base);
    }

    #[test]
    fn refuses_bad_images() {
        assert_eq!(parse(b"hello"), Err(Error::NotElf));
        let img = sample(0x100, 0);
        for n in 0..img.len() {
            assert!(parse(&img[..n]).is_err());
        }
        let mut bad = sample(0x100, 0);
        bad[4] = 1;
        assert!(matches!(parse(&bad), Err(Error::Unsupported(_))));
        // Segment past the end of the file.
        let mut bad = sample(0x100, 0);
        bad[64 + 32..64 + 40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn fuzz_never_panics() {
        let img = sample(0x300, 0x100);
        let mut x: u32 = 12345;
        for _ in 0..3000 {
            let mut m = img.clone();
            for _ in 0..4 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (x as usize >> 4) % 0x900;
                m[at] = (x >> 24) as u8;
            }
            let _ = parse(&m);
        }
    }
}
