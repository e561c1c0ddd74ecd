//! ELF64 + Xen ELF-note parser for PV kernels, as Xen 4.17's libelf does it.
//!
//! The kernel image is untrusted input: every read goes through [`Bytes`], which
//! bounds-checks with `get()` and checked arithmetic, so a malformed file is an
//! [`ElfError`], never a panic or an out-of-bounds read.
//!
//! What it reproduces (from `xen/common/libelf/libelf-{dominfo,loader,tools}.c`):
//! - loadable segments are `PT_LOAD` with any of `PF_R|PF_W|PF_X`; `pstart`/`pend` are the
//!   lowest/highest **physical** (`p_paddr`) addresses; a segment is copied to the virtual
//!   address `p_paddr + (virt_base - elf_paddr_offset)`;
//! - notes come from `PT_NOTE` segments (with `p_offset != 0`), else from `SHT_NOTE`
//!   sections, else from the legacy `__xen_guest` section string;
//! - `LOADER` must start with "generic" or `GUEST_OS` with "linux"; `XEN_VERSION` must start
//!   with "xen-3.0"; `PADDR_OFFSET` without `VIRT_BASE` is refused; `VIRT_BASE` defaults to
//!   0; `PADDR_OFFSET` defaults to 0 with notes and to `VIRT_BASE` with `__xen_guest`;
//!   `ENTRY` defaults to `e_entry`; the entry must lie in `[virt_kstart, virt_kend]`; the
//!   `INIT_P2M` base must not lie inside the kernel; an unknown `!required` feature is
//!   refused; a `SUPPORTED_FEATURES` note without `XENFEAT_dom0` is refused for dom0.
//!
//! Where we are stricter than Xen (it marks the image "broken" and carries on, or writes
//! out of range): out-of-image segments, notes or sections, `filesz > memsz`, address
//! overflow, segments totalling more than twice the kernel span, a required feature a PV
//! guest cannot have (`supervisor_mode_kernel`, `auto_translated_physmap`,
//! `hvm_callback_vector`), a 32-bit or big-endian image (Xen supports 32-bit PV only with
//! `CONFIG_PV32`; we are 64-bit only) and an image with no Xen notes at all.

use core::ops::Range;

// ---------------------------------------------------------------------------------------
// ELF constants (elf.h). Local: they are not guest ABI.
// ---------------------------------------------------------------------------------------

const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const SHT_NOTE: u32 = 7;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: u64 = 56;
const SHDR_SIZE: u64 = 64;

// Xen note types (`xen/elfnote.h`). Defined here rather than taken from `xen_abi::elfnote`,
// which was not yet exported from `xen-abi` when this was written; the values are the ABI.
const XEN_ELFNOTE_ENTRY: u32 = 1;
const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;
const XEN_ELFNOTE_VIRT_BASE: u32 = 3;
const XEN_ELFNOTE_PADDR_OFFSET: u32 = 4;
const XEN_ELFNOTE_XEN_VERSION: u32 = 5;
const XEN_ELFNOTE_GUEST_OS: u32 = 6;
const XEN_ELFNOTE_GUEST_VERSION: u32 = 7;
const XEN_ELFNOTE_LOADER: u32 = 8;
const XEN_ELFNOTE_PAE_MODE: u32 = 9;
const XEN_ELFNOTE_FEATURES: u32 = 10;
const XEN_ELFNOTE_BSD_SYMTAB: u32 = 11;
const XEN_ELFNOTE_HV_START_LOW: u32 = 12;
const XEN_ELFNOTE_INIT_P2M: u32 = 15;
const XEN_ELFNOTE_MOD_START_PFN: u32 = 16;
const XEN_ELFNOTE_SUPPORTED_FEATURES: u32 = 17;
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// `XENFEAT_*` bit numbers that libelf knows by name (`elf_xen_feature_names`).
pub const XENFEAT_WRITABLE_PAGE_TABLES: u32 = 0;
pub const XENFEAT_WRITABLE_DESCRIPTOR_TABLES: u32 = 1;
pub const XENFEAT_AUTO_TRANSLATED_PHYSMAP: u32 = 2;
pub const XENFEAT_SUPERVISOR_MODE_KERNEL: u32 = 3;
pub const XENFEAT_PAE_PGDIR_ABOVE_4GB: u32 = 4;
pub const XENFEAT_HVM_CALLBACK_VECTOR: u32 = 8;
pub const XENFEAT_DOM0: u32 = 11;

const FEATURE_NAMES: [(&[u8], u32); 7] = [
    (b"writable_page_tables", XENFEAT_WRITABLE_PAGE_TABLES),
    (
        b"writable_descriptor_tables",
        XENFEAT_WRITABLE_DESCRIPTOR_TABLES,
    ),
    (b"auto_translated_physmap", XENFEAT_AUTO_TRANSLATED_PHYSMAP),
    (b"supervisor_mode_kernel", XENFEAT_SUPERVISOR_MODE_KERNEL),
    (b"pae_pgdir_above_4gb", XENFEAT_PAE_PGDIR_ABOVE_4GB),
    (b"hvm_callback_vector", XENFEAT_HVM_CALLBACK_VECTOR),
    (b"dom0", XENFEAT_DOM0),
];

/// Required features a PV guest can never be given: such a kernel is refused.
pub const UNSUPPORTED_REQUIRED_FEATURES: u32 = (1 << XENFEAT_SUPERVISOR_MODE_KERNEL)
    | (1 << XENFEAT_AUTO_TRANSLATED_PHYSMAP)
    | (1 << XENFEAT_HVM_CALLBACK_VECTOR);

/// libelf's `ELF_MAX_TOTAL_NOTE_COUNT`.
const MAX_TOTAL_NOTES: u32 = 65536;
/// libelf's `ELF_MAX_STRING_LENGTH`.
const MAX_STRING_LEN: usize = 4096;

/// Why a kernel image was refused. Each variant names what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than an ELF64 header, or no `\x7fELF` magic.
    NotElf,
    /// `EI_CLASS` is not `ELFCLASS64`.
    NotElf64,
    /// `EI_DATA` is not `ELFDATA2LSB`.
    NotLittleEndian,
    /// `e_machine` is not `EM_X86_64`.
    NotX86_64,
    /// `e_type` is not `ET_EXEC`.
    NotExecutable,
    /// The program-header table lies outside the image or has a bad entry size.
    BadProgramHeaders,
    /// The section-header table lies outside the image or has a bad entry size.
    BadSectionHeaders,
    /// Program header `index`: `filesz > memsz`.
    SegmentFileszExceedsMemsz { index: u16 },
    /// Program header `index`: its file bytes lie outside the image.
    SegmentOutOfImage { index: u16 },
    /// Program header `index`: `paddr + memsz` (or its virtual destination) overflows.
    SegmentAddressOverflow { index: u16 },
    /// Loadable segments total more than twice the kernel's span (libelf's copy limit).
    SegmentsTooLarge,
    /// No loadable `PT_LOAD` segment.
    NoLoadableSegments,
    /// A note segment or section lies outside the image, or a note overruns it.
    BadNote,
    /// More than libelf's 65536 notes.
    TooManyNotes,
    /// A string note or `__xen_guest` has no terminator within 4096 bytes.
    StringTooLong,
    /// "not a Xen PV kernel: no Xen ELF notes" (and no `__xen_guest` section).
    NotXenKernel,
    /// `FEATURES` names an unknown feature as required (`!name`).
    UnknownRequiredFeature,
    /// A required feature a PV dom0 cannot have (see [`UNSUPPORTED_REQUIRED_FEATURES`]).
    UnsupportedRequiredFeature { feature: u32 },
    /// Neither `LOADER` starts with "generic" nor `GUEST_OS` with "linux".
    UnsupportedLoader,
    /// `XEN_VERSION` does not start with "xen-3.0".
    UnsupportedXenVersion,
    /// `PADDR_OFFSET` set but `VIRT_BASE` unset.
    PaddrOffsetWithoutVirtBase,
    /// "ELF start or entries are out of bounds": `virt_kstart > virt_kend`, the entry
    /// outside `[virt_kstart, virt_kend]`, or `virt_base > virt_kstart`.
    EntryOrStartOutOfBounds,
    /// The `INIT_P2M` base lies inside the kernel.
    P2mBaseInKernel,
    /// A `SUPPORTED_FEATURES` note without `XENFEAT_dom0`: "Kernel does not support Dom0".
    NotDom0Capable,
}

impl ElfError {
    /// A one-line explanation for the hypervisor's log.
    pub fn describe(&self) -> &'static str {
        match self {
            ElfError::NotElf => "not an ELF binary",
            ElfError::NotElf64 => "not a 64-bit ELF (ELFCLASS64 required)",
            ElfError::NotLittleEndian => "not a little-endian ELF",
            ElfError::NotX86_64 => "not an x86_64 ELF (EM_X86_64 required)",
            ElfError::NotExecutable => "not an executable ELF (ET_EXEC required)",
            ElfError::BadProgramHeaders => "program headers out of bounds",
            ElfError::BadSectionHeaders => "section headers out of bounds",
            ElfError::SegmentFileszExceedsMemsz { .. } => "segment filesz > memsz",
            ElfError::SegmentOutOfImage { .. } => "segment file range outside the image",
            ElfError::SegmentAddressOverflow { .. } => "segment address overflows",
            ElfError::SegmentsTooLarge => "program segments total more than the image span",
            ElfError::NoLoadableSegments => "no loadable segment",
            ElfError::BadNote => "malformed ELF note",
            ElfError::TooManyNotes => "too many ELF notes",
            ElfError::StringTooLong => "excessively long string",
            ElfError::NotXenKernel => "not a Xen PV kernel: no Xen ELF notes",
            ElfError::UnknownRequiredFeature => "unknown required feature in FEATURES",
            ElfError::UnsupportedRequiredFeature { .. } => {
                "kernel requires a feature a PV dom0 cannot have"
            }
            ElfError::UnsupportedLoader => {
                "will only load images built for the generic loader or Linux images"
            }
            ElfError::UnsupportedXenVersion => "will only load images built for Xen v3.0",
            ElfError::PaddrOffsetWithoutVirtBase => "ELF_PADDR_OFFSET set, VIRT_BASE unset",
            ElfError::EntryOrStartOutOfBounds => "ELF start or entries are out of bounds",
            ElfError::P2mBaseInKernel => "P->M table base is out of bounds",
            ElfError::NotDom0Capable => "kernel does not support Dom0 operation",
        }
    }
}

/// `PAE_MODE` as libelf records it (meaningless for 64-bit guests, kept for logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaeMode {
    /// No PAE note, or "no".
    No,
    /// `__xen_guest` "PAE=yes...".
    Yes,
    /// "yes" note, or `__xen_guest` "PAE=yes[extended-cr3]".
    ExtCr3,
    /// "bimodal".
    Bimodal,
}

/// A string note, copied and truncated to 32 bytes (libelf keeps 15).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NoteStr {
    bytes: [u8; 32],
    len: u8,
}

impl NoteStr {
    const EMPTY: NoteStr = NoteStr {
        bytes: [0; 32],
        len: 0,
    };

    fn from_bytes(s: &[u8]) -> NoteStr {
        let mut out = NoteStr::EMPTY;
        let n = s.len().min(out.bytes.len());
        if let (Some(dst), Some(src)) = (out.bytes.get_mut(..n), s.get(..n)) {
            dst.copy_from_slice(src);
        }
        out.len = n as u8;
        out
    }

    /// The bytes (no NUL).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl core::fmt::Debug for NoteStr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match core::str::from_utf8(self.as_bytes()) {
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "{:?}", self.as_bytes()),
        }
    }
}

/// Where the Xen parameters came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteSource {
    /// `PT_NOTE` program headers.
    NoteSegments,
    /// `SHT_NOTE` sections (no Xen note in any `PT_NOTE`).
    NoteSections,
    /// The legacy `__xen_guest` section string.
    XenGuestSection,
}

/// What libelf's `elf_xen_parse` computes (`struct elf_dom_parms`), validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelInfo {
    pub source: NoteSource,
    pub guest_os: NoteStr,
    pub guest_version: NoteStr,
    pub xen_version: NoteStr,
    pub loader: NoteStr,
    pub pae: PaeMode,
    /// `VIRT_BASE` (0 when unset): the bottom of the initial mapping (`v_start`).
    pub virt_base: u64,
    /// `PADDR_OFFSET` (default 0 with notes, `virt_base` with `__xen_guest`).
    pub elf_paddr_offset: u64,
    /// Lowest `p_paddr` of the loadable segments.
    pub pstart: u64,
    /// Highest `p_paddr + p_memsz` of the loadable segments.
    pub pend: u64,
    /// `pstart + virt_base - elf_paddr_offset`.
    pub virt_kstart: u64,
    /// `pend + virt_base - elf_paddr_offset`.
    pub virt_kend: u64,
    /// `ENTRY`, or `e_entry`.
    pub virt_entry: u64,
    /// `HYPERCALL_PAGE`, if the kernel wants one filled.
    pub virt_hypercall: Option<u64>,
    /// `INIT_P2M`: virtual address where the p2m list is to be mapped separately.
    pub p2m_base: Option<u64>,
    /// `MOD_START_PFN` non-zero: the initrd is not mapped, `mod_start` is a PFN.
    pub unmapped_initrd: bool,
    /// `HV_START_LOW` (32-bit guests only; recorded, unused).
    pub hv_start_low: Option<u64>,
    /// `PHYS32_ENTRY` (PVH only; recorded, unused).
    pub phys32_entry: Option<u32>,
    /// `BSD_SYMTAB` "yes" (recorded; the symbol table is not loaded, see the report).
    pub bsd_symtab: bool,
    /// Whether a `SUPPORTED_FEATURES` note was present.
    pub has_supported_features_note: bool,
    /// `XENFEAT_*` submap 0 the kernel supports (FEATURES names and SUPPORTED_FEATURES).
    pub features_supported: u32,
    /// `XENFEAT_*` submap 0 the kernel requires (`!name` in FEATURES).
    pub features_required: u32,
    phoff: u64,
    phnum: u16,
    phentsize: u16,
}

impl KernelInfo {
    /// `virt_base - elf_paddr_offset` (wrapping, as in C): added to `p_paddr`.
    pub fn virt_offset(&self) -> u64 {
        self.virt_base.wrapping_sub(self.elf_paddr_offset)
    }
}

/// One loadable segment: copy `image[file]` to `vaddr`, then zero `zero_len` bytes after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    /// Virtual destination in the guest: `p_paddr + virt_offset`.
    pub vaddr: u64,
    /// File bytes, already checked to lie inside the image.
    pub file: Range<usize>,
    /// `memsz - filesz`: bytes to zero after the file bytes.
    pub zero_len: u64,
}

/// A parsed, validated kernel: the image and what was learnt from it.
#[derive(Clone, Copy, Debug)]
pub struct ParsedKernel<'a> {
    pub image: &'a [u8],
    pub info: KernelInfo,
}

impl<'a> ParsedKernel<'a> {
    /// The loadable segments, in program-header order (all validated by [`parse_kernel`]).
    pub fn segments(&self) -> impl Iterator<Item = LoadSegment> + 'a {
        let image = Bytes(self.image);
        let info = self.info;
        (0..info.phnum).filter_map(move |i| {
            let ph = read_phdr(image, &info, i).ok()?;
            if !ph.loadable() {
                return None;
            }
            let start = usize::try_from(ph.offset).ok()?;
            let end = start.checked_add(usize::try_from(ph.filesz).ok()?)?;
            Some(LoadSegment {
                vaddr: ph.paddr.wrapping_add(info.virt_offset()),
                file: start..end,
                zero_len: ph.memsz.checked_sub(ph.filesz)?,
            })
        })
    }

    /// The file bytes of `seg`.
    pub fn segment_bytes(&self, seg: &LoadSegment) -> &'a [u8] {
        self.image.get(seg.file.clone()).unwrap_or(&[])
    }
}

// ---------------------------------------------------------------------------------------
// Bounds-checked reads
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn slice(&self, off: u64, len: u64) -> Option<&'a [u8]> {
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.0.get(start..end)
    }
    fn u8(&self, off: u64) -> Option<u8> {
        self.slice(off, 1)?.first().copied()
    }
    fn u16(&self, off: u64) -> Option<u16> {
        Some(u16::from_le_bytes(self.slice(off, 2)?.try_into().ok()?))
    }
    fn u32(&self, off: u64) -> Option<u32> {
        Some(u32::from_le_bytes(self.slice(off, 4)?.try_into().ok()?))
    }
    fn u64(&self, off: u64) -> Option<u64> {
        Some(u64::from_le_bytes(self.slice(off, 8)?.try_into().ok()?))
    }
}

#[derive(Clone, Copy)]
struct Phdr {
    ptype: u32,
    flags: u32,
    offset: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
}

impl Phdr {
    fn loadable(&self) -> bool {
        self.ptype == PT_LOAD && self.flags & (PF_R | PF_W | PF_X) != 0
    }
}

fn read_phdr(img: Bytes<'_>, info: &KernelInfo, i: u16) -> Result<Phdr, ElfError> {
    let base = u64::from(i)
        .checked_mul(u64::from(info.phentsize))
        .and_then(|o| o.checked_add(info.phoff))
        .ok_or(ElfError::BadProgramHeaders)?;
    let f = |o: u64| base.checked_add(o).ok_or(ElfError::BadProgramHeaders);
    let bad = ElfError::BadProgramHeaders;
    Ok(Phdr {
        ptype: img.u32(f(0)?).ok_or(bad)?,
        flags: img.u32(f(4)?).ok_or(bad)?,
        offset: img.u64(f(8)?).ok_or(bad)?,
        paddr: img.u64(f(24)?).ok_or(bad)?,
        filesz: img.u64(f(32)?).ok_or(bad)?,
        memsz: img.u64(f(40)?).ok_or(bad)?,
    })
}

#[derive(Clone, Copy)]
struct Shdr {
    name: u32,
    stype: u32,
    offset: u64,
    size: u64,
}

struct Sections {
    shoff: u64,
    shnum: u16,
    shentsize: u16,
    shstrndx: u16,
}

impl Sections {
    fn get(&self, img: Bytes<'_>, i: u16) -> Result<Shdr, ElfError> {
        let bad = ElfError::BadSectionHeaders;
        let base = u64::from(i)
            .checked_mul(u64::from(self.shentsize))
            .and_then(|o| o.checked_add(self.shoff))
            .ok_or(bad)?;
        let f = |o: u64| base.checked_add(o).ok_or(bad);
        Ok(Shdr {
            name: img.u32(f(0)?).ok_or(bad)?,
            stype: img.u32(f(4)?).ok_or(bad)?,
            offset: img.u64(f(24)?).ok_or(bad)?,
            size: img.u64(f(32)?).ok_or(bad)?,
        })
    }
}

/// Bytes of `len` at `off`, or `err`.
fn region<'a>(img: Bytes<'a>, off: u64, len: u64, err: ElfError) -> Result<&'a [u8], ElfError> {
    img.slice(off, len).ok_or(err)
}

/// The NUL-terminated string at the start of `b` (all of `b` if it has no NUL).
fn c_str(b: &[u8]) -> Result<&[u8], ElfError> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    if end > MAX_STRING_LEN {
        return Err(ElfError::StringTooLong);
    }
    Ok(b.get(..end).unwrap_or(&[]))
}

fn le_value(b: &[u8]) -> u64 {
    b.iter()
        .rev()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// Raw Xen parameters before the address checks (libelf's `elf_dom_parms` with UNSET_ADDR
/// as `None`).
#[derive(Clone, Copy)]
struct Parms {
    guest_os: NoteStr,
    guest_version: NoteStr,
    xen_version: NoteStr,
    loader: NoteStr,
    pae: PaeMode,
    bsd_symtab: bool,
    virt_base: Option<u64>,
    elf_paddr_offset: Option<u64>,
    virt_entry: Option<u64>,
    virt_hypercall: Option<u64>,
    hv_start_low: Option<u64>,
    p2m_base: Option<u64>,
    unmapped_initrd: bool,
    phys32_entry: Option<u32>,
    has_supported_features_note: bool,
    supported: u32,
    required: u32,
}

const PARMS_UNSET: Parms = Parms {
    guest_os: NoteStr::EMPTY,
    guest_version: NoteStr::EMPTY,
    xen_version: NoteStr::EMPTY,
    loader: NoteStr::EMPTY,
    pae: PaeMode::No,
    bsd_symtab: false,
    virt_base: None,
    elf_paddr_offset: None,
    virt_entry: None,
    virt_hypercall: None,
    hv_start_low: None,
    p2m_base: None,
    unmapped_initrd: false,
    phys32_entry: None,
    has_supported_features_note: false,
    supported: 0,
    required: 0,
};

/// libelf's `elf_xen_parse_features`: '|'-separated names, `!name` = required.
fn parse_features(s: &[u8], supported: &mut u32, required: &mut u32) -> Result<(), ElfError> {
    for tok in s.split(|&c| c == b'|') {
        if tok.is_empty() {
            continue;
        }
        let (req, name) = match tok.split_first() {
            Some((b'!', rest)) => (true, rest),
            _ => (false, tok),
        };
        match FEATURE_NAMES.iter().find(|(n, _)| *n == name) {
            Some(&(_, bit)) => {
                *supported |= 1 << bit;
                if req {
                    *required |= 1 << bit;
                }
            }
            None if req => return Err(ElfError::UnknownRequiredFeature),
            None => {}
        }
    }
    Ok(())
}

/// Parses the notes in `notes`; returns how many were Xen notes.
fn parse_notes(notes: &[u8], p: &mut Parms, total: &mut u32) -> Result<u32, ElfError> {
    let b = Bytes(notes);
    let mut off: u64 = 0;
    let mut xen = 0;
    let len = notes.len() as u64;
    while off < len {
        if *total >= MAX_TOTAL_NOTES {
            return Err(ElfError::TooManyNotes);
        }
        *total += 1;
        let namesz = b.u32(off).ok_or(ElfError::BadNote)?;
        let descsz = b.u32(off + 4).ok_or(ElfError::BadNote)?;
        let ntype = b.u32(off + 8).ok_or(ElfError::BadNote)?;
        let name_off = off.checked_add(12).ok_or(ElfError::BadNote)?;
        let name_pad = (u64::from(namesz) + 3) & !3;
        let desc_off = name_off.checked_add(name_pad).ok_or(ElfError::BadNote)?;
        let desc_pad = (u64::from(descsz) + 3) & !3;
        let next = desc_off.checked_add(desc_pad).ok_or(ElfError::BadNote)?;
        let name = b
            .slice(name_off, u64::from(namesz))
            .ok_or(ElfError::BadNote)?;
        let desc = b
            .slice(desc_off, u64::from(descsz))
            .ok_or(ElfError::BadNote)?;
        if c_str(name)? == b"Xen" {
            parse_xen_note(ntype, desc, p)?;
            xen += 1;
        }
        off = next;
    }
    Ok(xen)
}

/// libelf's `elf_xen_parse_note`.
fn parse_xen_note(ntype: u32, desc: &[u8], p: &mut Parms) -> Result<(), ElfError> {
    let num = || match desc.len() {
        1 | 2 | 4 | 8 => le_value(desc),
        _ => 0,
    };
    match ntype {
        XEN_ELFNOTE_LOADER => p.loader = NoteStr::from_bytes(c_str(desc)?),
        XEN_ELFNOTE_GUEST_OS => p.guest_os = NoteStr::from_bytes(c_str(desc)?),
        XEN_ELFNOTE_GUEST_VERSION => p.guest_version = NoteStr::from_bytes(c_str(desc)?),
        XEN_ELFNOTE_XEN_VERSION => p.xen_version = NoteStr::from_bytes(c_str(desc)?),
        XEN_ELFNOTE_PAE_MODE => {
            let s = c_str(desc)?;
            if s == b"yes" {
                p.pae = PaeMode::ExtCr3;
            }
            if s.windows(7).any(|w| w == b"bimodal") {
                p.pae = PaeMode::Bimodal;
            }
        }
        XEN_ELFNOTE_BSD_SYMTAB if c_str(desc)? == b"yes" => p.bsd_symtab = true,
        XEN_ELFNOTE_FEATURES => {
            parse_features(c_str(desc)?, &mut p.supported, &mut p.required)?;
        }
        XEN_ELFNOTE_VIRT_BASE => p.virt_base = Some(num()),
        XEN_ELFNOTE_ENTRY => p.virt_entry = Some(num()),
        XEN_ELFNOTE_INIT_P2M => p.p2m_base = Some(num()),
        XEN_ELFNOTE_MOD_START_PFN => p.unmapped_initrd = num() != 0,
        XEN_ELFNOTE_PADDR_OFFSET => p.elf_paddr_offset = Some(num()),
        XEN_ELFNOTE_HYPERCALL_PAGE => p.virt_hypercall = Some(num()),
        XEN_ELFNOTE_HV_START_LOW => p.hv_start_low = Some(num()),
        XEN_ELFNOTE_PHYS32_ENTRY => p.phys32_entry = Some(num() as u32),
        XEN_ELFNOTE_SUPPORTED_FEATURES => {
            p.has_supported_features_note = true;
            // elf_note_numeric_array(note, 4, 0): the first u32, if descsz is a multiple of 4.
            if desc.len().is_multiple_of(4) {
                if let Some(w) = desc.get(..4) {
                    p.supported |= le_value(w) as u32;
                }
            }
        }
        // Unknown types and the ones libelf ignores (INFO, L1_MFN_VALID, ...).
        _ => {}
    }
    Ok(())
}

/// C's `strtoull(s, NULL, 0)`: optional sign, 0x/0 prefix, stops at the first bad digit,
/// saturates on overflow.
fn strtoull(s: &[u8]) -> u64 {
    let mut i = 0;
    while matches!(s.get(i), Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)) {
        i += 1;
    }
    let mut neg = false;
    match s.get(i) {
        Some(b'+') => i += 1,
        Some(b'-') => {
            neg = true;
            i += 1
        }
        _ => {}
    }
    let mut base = 10;
    if s.get(i) == Some(&b'0') {
        if matches!(s.get(i + 1), Some(b'x' | b'X'))
            && s.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
        {
            base = 16;
            i += 2;
        } else {
            base = 8;
        }
    }
    let mut v: u64 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(i).and_then(|&c| (c as char).to_digit(base)) {
        match v
            .checked_mul(u64::from(base))
            .and_then(|x| x.checked_add(u64::from(d)))
        {
            Some(x) => v = x,
            None => overflow = true,
        }
        i += 1;
    }
    if overflow {
        u64::MAX
    } else if neg {
        v.wrapping_neg()
    } else {
        v
    }
}

/// libelf's `elf_xen_parse_guest_info`: "NAME=VALUE,NAME=VALUE,...".
fn parse_guest_info(s: &[u8], p: &mut Parms) -> Result<(), ElfError> {
    for item in s.split(|&c| c == b',') {
        if item.is_empty() {
            continue;
        }
        let (name, value) = match item.iter().position(|&c| c == b'=') {
            Some(eq) => (
                item.get(..eq).unwrap_or(&[]),
                item.get(eq + 1..).unwrap_or(&[]),
            ),
            None => (item, &[][..]),
        };
        // libelf keeps 31 name bytes and 127 value bytes.
        let name = name.get(..name.len().min(31)).unwrap_or(&[]);
        let value = value.get(..value.len().min(127)).unwrap_or(&[]);
        match name {
            b"LOADER" => p.loader = NoteStr::from_bytes(value),
            b"GUEST_OS" => p.guest_os = NoteStr::from_bytes(value),
            b"GUEST_VER" => p.guest_version = NoteStr::from_bytes(value),
            b"XEN_VER" => p.xen_version = NoteStr::from_bytes(value),
            b"PAE" => {
                if value == b"yes[extended-cr3]" {
                    p.pae = PaeMode::ExtCr3;
                } else if value.starts_with(b"yes") {
                    p.pae = PaeMode::Yes;
                }
            }
            b"BSD_SYMTAB" => p.bsd_symtab = true,
            b"VIRT_BASE" => p.virt_base = Some(strtoull(value)),
            b"VIRT_ENTRY" => p.virt_entry = Some(strtoull(value)),
            b"ELF_PADDR_OFFSET" => p.elf_paddr_offset = Some(strtoull(value)),
            b"HYPERCALL_PAGE" => p.virt_hypercall = Some(strtoull(value) << 12),
            b"FEATURES" => parse_features(value, &mut p.supported, &mut p.required)?,
            _ => {}
        }
    }
    if let (Some(base), Some(hc)) = (p.virt_base, p.virt_hypercall) {
        p.virt_hypercall = Some(hc.wrapping_add(base));
    }
    Ok(())
}

/// Parses and validates a 64-bit PV kernel image, as Xen 4.17's `elf_init`,
/// `elf_parse_binary`, `elf_xen_parse` and the checks of `dom0_construct_pv` do.
pub fn parse_kernel(image: &[u8]) -> Result<ParsedKernel<'_>, ElfError> {
    let img = Bytes(image);
    // --- ELF header ---
    if image.len() < EHDR_SIZE || image.get(..4) != Some(b"\x7fELF") {
        return Err(ElfError::NotElf);
    }
    if img.u8(4) != Some(ELFCLASS64) {
        return Err(ElfError::NotElf64);
    }
    if img.u8(5) != Some(ELFDATA2LSB) {
        return Err(ElfError::NotLittleEndian);
    }
    let hdr = |o| img.u16(o).ok_or(ElfError::NotElf);
    if hdr(18)? != EM_X86_64 {
        return Err(ElfError::NotX86_64);
    }
    if hdr(16)? != ET_EXEC {
        return Err(ElfError::NotExecutable);
    }
    let e_entry = img.u64(24).ok_or(ElfError::NotElf)?;
    let phoff = img.u64(32).ok_or(ElfError::NotElf)?;
    let shoff = img.u64(40).ok_or(ElfError::NotElf)?;
    let phentsize = hdr(54)?;
    let phnum = hdr(56)?;
    let sections = Sections {
        shoff,
        shentsize: hdr(58)?,
        shnum: hdr(60)?,
        shstrndx: hdr(62)?,
    };
    // Whole tables must lie in the image (elf_init's "phdr/shdr overflow" checks).
    if phnum > 0
        && (u64::from(phentsize) < PHDR_SIZE
            || img
                .slice(phoff, u64::from(phentsize) * u64::from(phnum))
                .is_none())
    {
        return Err(ElfError::BadProgramHeaders);
    }
    if sections.shnum > 0
        && (u64::from(sections.shentsize) < SHDR_SIZE
            || img
                .slice(
                    shoff,
                    u64::from(sections.shentsize) * u64::from(sections.shnum),
                )
                .is_none())
    {
        return Err(ElfError::BadSectionHeaders);
    }

    let mut info = KernelInfo {
        source: NoteSource::NoteSegments,
        guest_os: NoteStr::EMPTY,
        guest_version: NoteStr::EMPTY,
        xen_version: NoteStr::EMPTY,
        loader: NoteStr::EMPTY,
        pae: PaeMode::No,
        virt_base: 0,
        elf_paddr_offset: 0,
        pstart: 0,
        pend: 0,
        virt_kstart: 0,
        virt_kend: 0,
        virt_entry: 0,
        virt_hypercall: None,
        p2m_base: None,
        unmapped_initrd: false,
        hv_start_low: None,
        phys32_entry: None,
        bsd_symtab: false,
        has_supported_features_note: false,
        features_supported: 0,
        features_required: 0,
        phoff,
        phnum,
        phentsize,
    };

    // --- program headers: elf_parse_binary ---
    let mut low = u64::MAX;
    let mut high = 0u64;
    let mut total_memsz: u64 = 0;
    let mut any = false;
    for i in 0..phnum {
        let ph = read_phdr(img, &info, i)?;
        if !ph.loadable() {
            continue;
        }
        if ph.filesz > ph.memsz {
            return Err(ElfError::SegmentFileszExceedsMemsz { index: i });
        }
        if img.slice(ph.offset, ph.filesz).is_none() {
            return Err(ElfError::SegmentOutOfImage { index: i });
        }
        let end = ph
            .paddr
            .checked_add(ph.memsz)
            .ok_or(ElfError::SegmentAddressOverflow { index: i })?;
        total_memsz = total_memsz.saturating_add(ph.memsz);
        low = low.min(ph.paddr);
        high = high.max(end);
        any = true;
    }
    if !any {
        return Err(ElfError::NoLoadableSegments);
    }
    info.pstart = low;
    info.pend = high;
    // elf_load_binary's limit: segments may write the span at most twice.
    if total_memsz > (high - low).saturating_mul(2) {
        return Err(ElfError::SegmentsTooLarge);
    }

    // --- notes: elf_xen_parse ---
    let mut p = PARMS_UNSET;
    let mut total = 0u32;
    let mut xen_notes = 0u32;
    for i in 0..phnum {
        let ph = read_phdr(img, &info, i)?;
        if ph.ptype != PT_NOTE || ph.offset == 0 {
            continue;
        }
        let notes = region(img, ph.offset, ph.filesz, ElfError::BadNote)?;
        xen_notes += parse_notes(notes, &mut p, &mut total)?;
    }
    if xen_notes == 0 {
        info.source = NoteSource::NoteSections;
        for i in 1..sections.shnum {
            let sh = sections.get(img, i)?;
            if sh.stype != SHT_NOTE {
                continue;
            }
            let notes = region(img, sh.offset, sh.size, ElfError::BadNote)?;
            xen_notes += parse_notes(notes, &mut p, &mut total)?;
        }
    }
    if xen_notes == 0 {
        info.source = NoteSource::XenGuestSection;
        match find_section(img, &sections, b"__xen_guest")? {
            Some(sh) => {
                let s = region(img, sh.offset, sh.size, ElfError::BadSectionHeaders)?;
                parse_guest_info(c_str(s)?, &mut p)?;
            }
            None => return Err(ElfError::NotXenKernel),
        }
    }

    // --- elf_xen_note_check ---
    let loader_ok = p.loader.as_bytes().starts_with(b"generic");
    let os_ok = p.guest_os.as_bytes().starts_with(b"linux");
    if !loader_ok && !os_ok {
        return Err(ElfError::UnsupportedLoader);
    }
    if !p.xen_version.as_bytes().starts_with(b"xen-3.0") {
        return Err(ElfError::UnsupportedXenVersion);
    }

    // --- elf_xen_addr_calc_check ---
    if p.elf_paddr_offset.is_some() && p.virt_base.is_none() {
        return Err(ElfError::PaddrOffsetWithoutVirtBase);
    }
    let virt_base = p.virt_base.unwrap_or(0);
    let paddr_offset = p.elf_paddr_offset.unwrap_or(match info.source {
        NoteSource::XenGuestSection => virt_base,
        _ => 0,
    });
    let virt_offset = virt_base.wrapping_sub(paddr_offset);
    info.virt_kstart = info.pstart.wrapping_add(virt_offset);
    info.virt_kend = info.pend.wrapping_add(virt_offset);
    info.virt_entry = p.virt_entry.unwrap_or(e_entry);
    if info.virt_kstart > info.virt_kend
        || info.virt_entry < info.virt_kstart
        || info.virt_entry > info.virt_kend
        || virt_base > info.virt_kstart
    {
        return Err(ElfError::EntryOrStartOutOfBounds);
    }
    if let Some(b) = p.p2m_base {
        if b >= info.virt_kstart && b < info.virt_kend {
            return Err(ElfError::P2mBaseInKernel);
        }
    }

    // --- dom0_construct_pv's checks on the features ---
    if p.has_supported_features_note && p.supported & (1 << XENFEAT_DOM0) == 0 {
        return Err(ElfError::NotDom0Capable);
    }
    let bad = p.required & UNSUPPORTED_REQUIRED_FEATURES;
    if bad != 0 {
        return Err(ElfError::UnsupportedRequiredFeature {
            feature: bad.trailing_zeros(),
        });
    }

    info.guest_os = p.guest_os;
    info.guest_version = p.guest_version;
    info.xen_version = p.xen_version;
    info.loader = p.loader;
    info.pae = p.pae;
    info.virt_base = virt_base;
    info.elf_paddr_offset = paddr_offset;
    info.virt_hypercall = p.virt_hypercall;
    info.p2m_base = p.p2m_base;
    info.unmapped_initrd = p.unmapped_initrd;
    info.hv_start_low = p.hv_start_low;
    info.phys32_entry = p.phys32_entry;
    info.bsd_symtab = p.bsd_symtab;
    info.has_supported_features_note = p.has_supported_features_note;
    info.features_supported = p.supported;
    info.features_required = p.required;
    Ok(ParsedKernel { image, info })
}

/// libelf's `elf_shdr_by_name` (section names from `e_shstrndx`).
fn find_section(img: Bytes<'_>, s: &Sections, name: &[u8]) -> Result<Option<Shdr>, ElfError> {
    if s.shstrndx == 0 || s.shstrndx >= s.shnum {
        return Ok(None);
    }
    let strtab = s.get(img, s.shstrndx)?;
    for i in 1..s.shnum {
        let sh = s.get(img, i)?;
        let Some(off) = strtab.offset.checked_add(u64::from(sh.name)) else {
            continue;
        };
        let avail = strtab.size.saturating_sub(u64::from(sh.name));
        let Some(bytes) = img.slice(off, avail.min(img.0.len() as u64)) else {
            continue;
        };
        if c_str(bytes).ok() == Some(name) {
            return Ok(Some(sh));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoull_like_c() {
        assert_eq!(strtoull(b"0xC0000000"), 0xC000_0000);
        assert_eq!(strtoull(b"010"), 8);
        assert_eq!(strtoull(b"42abc"), 42);
        assert_eq!(strtoull(b"zz"), 0);
        assert_eq!(strtoull(b"0x"), 0);
        assert_eq!(strtoull(b"99999999999999999999999"), u64::MAX);
    }

    #[test]
    fn features_parse() {
        let (mut s, mut r) = (0, 0);
        parse_features(
            b"!writable_page_tables|pae_pgdir_above_4gb|bogus",
            &mut s,
            &mut r,
        )
        .unwrap();
        assert_eq!(s, 1 | (1 << 4));
        assert_eq!(r, 1);
        assert_eq!(
            parse_features(b"!bogus", &mut s, &mut r),
            Err(ElfError::UnknownRequiredFeature)
        );
    }

    #[test]
    fn guest_info_parse() {
        let mut p = PARMS_UNSET;
        parse_guest_info(
            b"GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xffffffff80000000,HYPERCALL_PAGE=0x2,LOADER=generic",
            &mut p,
        )
        .unwrap();
        assert_eq!(p.guest_os.as_bytes(), b"linux");
        assert_eq!(p.virt_base, Some(0xffff_ffff_8000_0000));
        assert_eq!(p.virt_hypercall, Some(0xffff_ffff_8000_2000));
    }
}
