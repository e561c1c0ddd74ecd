//! dom0 build policy: ELF/Xen-note parsing and the start-of-day layout, checked against
//! what the real Xen 4.17 (Debian 4.17.5+ `xen-4.17-amd64.gz`) printed for the same kernel.
//!
//! Reference runs: a tiny PV kernel assembled by hand in /tmp (not committed; its
//! program headers are reproduced by `tiny_kernel` below: LOAD paddr 0x1000000 memsz
//! 0x2120, LOAD paddr 0x1003000 filesz 8 memsz 0x4e28, VIRT_BASE 0xffffffff80000000,
//! PADDR_OFFSET 0, ENTRY 0xffffffff81000000, FEATURES "!writable_page_tables|
//! pae_pgdir_above_4gb", SUPPORTED_FEATURES dom0), booted with
//!   qemu-system-x86_64 -accel tcg -cpu max -m 512 -nographic -no-reboot \
//!     -kernel xen -append "console=com1 dom0_mem=<M> loglvl=all guest_loglvl=all" \
//!     -initrd "k.elf[,rd.bin]"
//! where rd.bin is 1048699 (0x10007b) bytes. The kernel printed its start_info fields.
use hv_core::build::*;
use hv_core::elf::*;
use proptest::prelude::*;

// ------------------------------------------------------------------ ELF test builder
struct Seg {
    ptype: u32,
    flags: u32,
    vaddr: u64,
    paddr: u64,
    data: Vec<u8>,
    memsz: u64,
}

fn note(ty: u32, name: &[u8], desc: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend((name.len() as u32).to_le_bytes());
    v.extend((desc.len() as u32).to_le_bytes());
    v.extend(ty.to_le_bytes());
    v.extend(name);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v.extend(desc);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}
fn xs(ty: u32, s: &str) -> Vec<u8> {
    let mut d = s.as_bytes().to_vec();
    d.push(0);
    note(ty, b"Xen\0", &d)
}
fn xq(ty: u32, v: u64) -> Vec<u8> {
    note(ty, b"Xen\0", &v.to_le_bytes())
}

/// Assembles an ELF64 with the given segments (in order, file data laid out after the
/// headers) and optional sections `(name, type, bytes)`.
fn build_elf(segs: &[Seg], sections: &[(&str, u32, Vec<u8>)], entry: u64) -> Vec<u8> {
    let phoff = 64u64;
    let mut data_off = phoff + 56 * segs.len() as u64;
    let mut body: Vec<u8> = Vec::new();
    let mut phdrs = Vec::new();
    for s in segs {
        let off = data_off + body.len() as u64;
        body.extend(&s.data);
        let mut p = Vec::new();
        p.extend(s.ptype.to_le_bytes());
        p.extend(s.flags.to_le_bytes());
        p.extend(off.to_le_bytes());
        p.extend(s.vaddr.to_le_bytes());
        p.extend(s.paddr.to_le_bytes());
        p.extend((s.data.len() as u64).to_le_bytes());
        p.extend(s.memsz.to_le_bytes());
        p.extend(8u64.to_le_bytes());
        phdrs.extend(p);
    }
    data_off += body.len() as u64;
    // sections: null, user sections, shstrtab
    let mut shstr = vec![0u8];
    let mut sec_data: Vec<u8> = Vec::new();
    let mut shdrs = vec![0u8; 64];
    let mut add = |name: &str, ty: u32, bytes: &[u8], shstr: &mut Vec<u8>| {
        let name_off = shstr.len() as u32;
        shstr.extend(name.as_bytes());
        shstr.push(0);
        let off = data_off + sec_data.len() as u64;
        sec_data.extend(bytes);
        let mut h = Vec::new();
        h.extend(name_off.to_le_bytes());
        h.extend(ty.to_le_bytes());
        h.extend(0u64.to_le_bytes());
        h.extend(0u64.to_le_bytes());
        h.extend(off.to_le_bytes());
        h.extend((bytes.len() as u64).to_le_bytes());
        h.extend([0u8; 24]);
        shdrs.extend(h);
    };
    for (n, t, b) in sections {
        add(n, *t, b, &mut shstr);
    }
    let mut shstr2 = shstr.clone();
    let name_off = shstr2.len();
    shstr2.extend(b".shstrtab\0");
    let strtab_bytes = shstr2.clone();
    add(".shstrtab", 3, &strtab_bytes, &mut shstr);
    let _ = name_off;
    let shnum = (shdrs.len() / 64) as u16;
    let shoff = data_off + sec_data.len() as u64;
    let mut e = Vec::new();
    e.extend(b"\x7fELF");
    e.extend([2, 1, 1, 0]);
    e.extend([0u8; 8]);
    e.extend(2u16.to_le_bytes());
    e.extend(62u16.to_le_bytes());
    e.extend(1u32.to_le_bytes());
    e.extend(entry.to_le_bytes());
    e.extend(phoff.to_le_bytes());
    e.extend(shoff.to_le_bytes());
    e.extend(0u32.to_le_bytes());
    e.extend(64u16.to_le_bytes());
    e.extend(56u16.to_le_bytes());
    e.extend((segs.len() as u16).to_le_bytes());
    e.extend(64u16.to_le_bytes());
    e.extend(shnum.to_le_bytes());
    e.extend((shnum - 1).to_le_bytes());
    e.extend(phdrs);
    e.extend(body);
    e.extend(sec_data);
    e.extend(shdrs);
    e
}

const VB: u64 = 0xffff_ffff_8000_0000;

fn std_notes(extra: &[Vec<u8>]) -> Vec<u8> {
    let mut n = Vec::new();
    n.extend(xs(6, "linux"));
    n.extend(xs(7, "2.6"));
    n.extend(xs(5, "xen-3.0"));
    n.extend(xq(3, VB));
    n.extend(xq(4, 0));
    n.extend(xq(1, 0xffff_ffff_8100_0000));
    n.extend(xq(2, 0xffff_ffff_8100_1000));
    n.extend(xs(10, "!writable_page_tables|pae_pgdir_above_4gb"));
    n.extend(note(17, b"Xen\0", &(1u32 << 11).to_le_bytes()));
    n.extend(xs(9, "yes"));
    n.extend(xs(8, "generic"));
    for e in extra {
        n.extend(e);
    }
    n
}

/// The reference kernel's layout (see the module doc), with `notes` in a PT_NOTE.
fn tiny_kernel(notes: Vec<u8>) -> Vec<u8> {
    let text = vec![0xebu8, 0xfe]; // jmp .
    let mut text_full = text.clone();
    text_full.resize(0x2120, 0);
    build_elf(
        &[
            Seg {
                ptype: 1,
                flags: 5,
                vaddr: 0xffff_ffff_8100_0000,
                paddr: 0x100_0000,
                data: text_full,
                memsz: 0x2120,
            },
            Seg {
                ptype: 1,
                flags: 6,
                vaddr: 0xffff_ffff_8100_3000,
                paddr: 0x100_3000,
                data: vec![1, 0, 0, 0, 0, 0, 0, 0],
                memsz: 0x4e28,
            },
            Seg {
                ptype: 4,
                flags: 4,
                vaddr: 0,
                paddr: 0,
                data: notes,
                memsz: 0,
            },
        ],
        &[],
        0xffff_ffff_8100_0000,
    )
}

fn info_of(img: &[u8]) -> KernelInfo {
    parse_kernel(img).expect("kernel accepted").info
}

// ------------------------------------------------------------------ parser tests
#[test]
fn reference_kernel_parses_like_libelf() {
    let img = tiny_kernel(std_notes(&[]));
    let k = parse_kernel(&img).unwrap();
    let i = k.info;
    assert_eq!(i.source, NoteSource::NoteSegments);
    assert_eq!(i.virt_base, VB);
    assert_eq!(i.elf_paddr_offset, 0);
    assert_eq!((i.pstart, i.pend), (0x100_0000, 0x100_7e28));
    assert_eq!(
        (i.virt_kstart, i.virt_kend),
        (0xffff_ffff_8100_0000, 0xffff_ffff_8100_7e28)
    );
    assert_eq!(i.virt_entry, 0xffff_ffff_8100_0000);
    assert_eq!(i.virt_hypercall, Some(0xffff_ffff_8100_1000));
    assert_eq!(i.features_required, 1);
    assert_eq!(i.features_supported, 1 | 1 << 4 | 1 << 11);
    assert_eq!(i.pae, PaeMode::ExtCr3);
    assert_eq!(i.loader.as_bytes(), b"generic");
    let segs: Vec<_> = k.segments().collect();
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0].vaddr, 0xffff_ffff_8100_0000);
    assert_eq!(segs[0].zero_len, 0);
    assert_eq!(k.segment_bytes(&segs[0])[..2], [0xeb, 0xfe]);
    assert_eq!(segs[1].vaddr, 0xffff_ffff_8100_3000);
    assert_eq!(segs[1].file.len(), 8);
    assert_eq!(segs[1].zero_len, 0x4e20);
}

#[test]
fn no_xen_notes_is_refused_clearly() {
    let img = tiny_kernel(note(1, b"GNU\0", &[0; 16]));
    let e = parse_kernel(&img).unwrap_err();
    assert_eq!(e, ElfError::NotXenKernel);
    assert_eq!(e.describe(), "not a Xen PV kernel: no Xen ELF notes");
}

#[test]
fn notes_in_sections_and_legacy_xen_guest() {
    // SHT_NOTE only (PT_NOTE with p_offset 0 is ignored, like libelf).
    let notes = std_notes(&[]);
    let mut text = vec![0u8; 0x1000];
    text[0] = 0xf4;
    let seg = Seg {
        ptype: 1,
        flags: 5,
        vaddr: 0xffff_ffff_8100_0000,
        paddr: 0x100_0000,
        data: text.clone(),
        memsz: 0x2000,
    };
    let img = build_elf(&[seg], &[(".note.Xen", 7, notes)], 0xffff_ffff_8100_0000);
    assert_eq!(info_of(&img).source, NoteSource::NoteSections);

    // __xen_guest: PADDR_OFFSET defaults to VIRT_BASE, HYPERCALL_PAGE is a pfn.
    let guest = b"GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xffffffff80000000,HYPERCALL_PAGE=0x1001,LOADER=generic\0".to_vec();
    let seg = Seg {
        ptype: 1,
        flags: 5,
        vaddr: 0xffff_ffff_8100_0000,
        paddr: 0xffff_ffff_8100_0000,
        data: text,
        memsz: 0x2000,
    };
    let img = build_elf(&[seg], &[("__xen_guest", 1, guest)], 0xffff_ffff_8100_0000);
    let i = info_of(&img);
    assert_eq!(i.source, NoteSource::XenGuestSection);
    assert_eq!(i.elf_paddr_offset, VB);
    assert_eq!(i.virt_kstart, 0xffff_ffff_8100_0000);
    assert_eq!(i.virt_hypercall, Some(0xffff_ffff_8100_1000));
}

#[test]
fn refusals() {
    let cases: Vec<(Vec<Vec<u8>>, ElfError)> = vec![
        (vec![xs(5, "xen-4.0")], ElfError::UnsupportedXenVersion),
        (
            vec![xs(10, "!no_such_feature")],
            ElfError::UnknownRequiredFeature,
        ),
        (
            vec![xs(10, "!supervisor_mode_kernel")],
            ElfError::UnsupportedRequiredFeature { feature: 3 },
        ),
        (vec![xq(1, 0x1234)], ElfError::EntryOrStartOutOfBounds),
        (
            vec![xq(3, 0xffff_ffff_8200_0000)],
            ElfError::EntryOrStartOutOfBounds,
        ),
        (
            vec![xq(15, 0xffff_ffff_8100_1000)],
            ElfError::P2mBaseInKernel,
        ),
    ];
    for (extra, want) in cases {
        // later notes override earlier ones, as in libelf
        let img = tiny_kernel(std_notes(&extra));
        assert_eq!(parse_kernel(&img).unwrap_err(), want, "{extra:?}");
    }
    // Neither generic loader nor linux.
    let mut n = Vec::new();
    n.extend(xs(6, "freebsd"));
    n.extend(xs(5, "xen-3.0"));
    n.extend(xs(8, "bsdloader"));
    assert_eq!(
        parse_kernel(&tiny_kernel(n)).unwrap_err(),
        ElfError::UnsupportedLoader
    );
    // SUPPORTED_FEATURES without XENFEAT_dom0.
    let mut n = Vec::new();
    n.extend(xs(8, "generic"));
    n.extend(xs(5, "xen-3.0"));
    n.extend(xq(3, VB));
    n.extend(note(17, b"Xen\0", &1u32.to_le_bytes()));
    assert_eq!(
        parse_kernel(&tiny_kernel(n)).unwrap_err(),
        ElfError::NotDom0Capable
    );
    // PADDR_OFFSET without VIRT_BASE.
    let mut n = Vec::new();
    n.extend(xs(8, "generic"));
    n.extend(xs(5, "xen-3.0"));
    n.extend(xq(4, 0));
    assert_eq!(
        parse_kernel(&tiny_kernel(n)).unwrap_err(),
        ElfError::PaddrOffsetWithoutVirtBase
    );
    // Header checks.
    let good = tiny_kernel(std_notes(&[]));
    let mut b = good.clone();
    b[4] = 1;
    assert_eq!(parse_kernel(&b).unwrap_err(), ElfError::NotElf64);
    let mut b = good.clone();
    b[5] = 2;
    assert_eq!(parse_kernel(&b).unwrap_err(), ElfError::NotLittleEndian);
    let mut b = good.clone();
    b[18] = 3;
    assert_eq!(parse_kernel(&b).unwrap_err(), ElfError::NotX86_64);
    let mut b = good.clone();
    b[16] = 3;
    assert_eq!(parse_kernel(&b).unwrap_err(), ElfError::NotExecutable);
    assert_eq!(parse_kernel(&good[..40]).unwrap_err(), ElfError::NotElf);
    // filesz > memsz in segment 1 (phdr 1 at 64+56; p_filesz at +32).
    let mut b = good.clone();
    b[64 + 56 + 32..64 + 56 + 40].copy_from_slice(&0x5000u64.to_le_bytes());
    assert_eq!(
        parse_kernel(&b).unwrap_err(),
        ElfError::SegmentFileszExceedsMemsz { index: 1 }
    );
    // file range out of image.
    let mut b = good.clone();
    b[64 + 56 + 8..64 + 56 + 16].copy_from_slice(&0xffff_fff0u64.to_le_bytes());
    assert_eq!(
        parse_kernel(&b).unwrap_err(),
        ElfError::SegmentOutOfImage { index: 1 }
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
    /// Random mutations of a valid image never panic (parse, layout, tables).
    #[test]
    fn mutations_never_panic(muts in prop::collection::vec((0usize..0x2400, any::<u8>()), 1..8),
                             trunc in prop::option::of(0usize..0x2400)) {
        let mut img = tiny_kernel(std_notes(&[xq(15, 0x80_0000_0000)]));
        for (i, v) in muts {
            let n = img.len();
            img[i % n] = v;
        }
        if let Some(t) = trunc { img.truncate(t.min(img.len())); }
        if let Ok(k) = parse_kernel(&img) {
            for s in k.segments() { let _ = k.segment_bytes(&s); }
            if let Ok(l) = compute_layout(&k.info, 16384, 4096) {
                let p2m: Vec<u64> = (0..16384).collect();
                let mut n = 0u64;
                generate_page_tables(&l, &p2m, |_| n += 1);
            }
        }
    }

    /// Arbitrary bytes never panic.
    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_kernel(&bytes);
    }
}

// ------------------------------------------------------------------ layout vs real Xen
const K: u64 = 0xffff_ffff_8100_0000;
const RD: u64 = 0x10007b;

fn vr(start: u64, end: u64) -> VRange {
    VRange { start, end }
}

/// dom0_mem=64M, no initrd. Xen printed:
///  Dom0 alloc.: 1c000000->1e000000 (8192 pages to be allocated)
///  Loaded kernel: ffffffff81000000->ffffffff81007e28
///  Phys-Mach map: ffffffff81008000->ffffffff81028000
///  Start info:    ffffffff81028000->ffffffff810284b8
///  Page tables:   ffffffff81029000->ffffffff81036000
///  Boot stack:    ffffffff81036000->ffffffff81037000
///  TOTAL:         ffffffff80000000->ffffffff81400000
///  ENTRY ADDRESS: ffffffff81000000
/// and the guest read: nr_pages 0x4000, flags 0x303, nr_pt_frames 0xd, mod 0/0,
/// first_p2m_pfn 0x2000, nr_p2m_frames 0, rsp ffffffff81037000; L4[511] -> pt frame 3,
/// L3[510] -> pt frame 2, L2[8] -> pt frame 11; L1 entries 0x0010_0000_xxxx_x067 (0x025
/// for the page tables: read-only, no D; the D bits are the CPU's).
#[test]
fn xen_64m_no_initrd() {
    let l = compute_layout(&info_of(&tiny_kernel(std_notes(&[]))), 16384, 0).unwrap();
    assert_eq!(l.kernel, vr(K, 0xffff_ffff_8100_7e28));
    assert_eq!(l.initrd, vr(0xffff_ffff_8100_8000, 0xffff_ffff_8100_8000));
    assert_eq!(l.p2m, vr(0xffff_ffff_8100_8000, 0xffff_ffff_8102_8000));
    assert_eq!(
        l.start_info,
        vr(0xffff_ffff_8102_8000, 0xffff_ffff_8102_84b8)
    );
    assert_eq!(
        l.page_tables,
        vr(0xffff_ffff_8102_9000, 0xffff_ffff_8103_6000)
    );
    assert_eq!(l.stack, vr(0xffff_ffff_8103_6000, 0xffff_ffff_8103_7000));
    assert_eq!((l.v_start, l.v_end), (VB, 0xffff_ffff_8140_0000));
    assert_eq!(l.entry, K);
    assert_eq!(l.initial_alloc_pages, 8192);
    let si = l.start_info_fields(3);
    assert_eq!(si.flags, 0x303);
    assert_eq!(si.nr_pt_frames, 13);
    assert_eq!((si.first_p2m_pfn, si.nr_p2m_frames), (0x2000, 0));
    assert_eq!((si.mod_start, si.mod_len), (0, 0));
    assert_eq!(&si.magic[..15], b"xen-3.0-x86_64\0");
    assert_eq!(l.initial_regs().rsp, 0xffff_ffff_8103_7000);

    // Table frame order and entries, with an arbitrary (reversed) p2m.
    let p2m: Vec<u64> = (0..16384u64).map(|p| 0x50000 - p).collect();
    check_p2m(&l, &p2m).unwrap();
    let mut frames = Vec::new();
    for_each_table_frame(&l, |f| frames.push(f));
    let pt = l.pt_pfn();
    assert_eq!(frames.len(), 13);
    let levels: Vec<u8> = frames.iter().map(|f| f.level).collect();
    assert_eq!(levels, [4, 1, 2, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    assert!(frames
        .iter()
        .enumerate()
        .all(|(i, f)| f.pfn == pt + i as u64));
    let mut w = std::collections::HashMap::new();
    generate_page_tables(&l, &p2m, |x| {
        assert!(
            w.insert((x.table_pfn, x.index), x.value).is_none(),
            "double write"
        );
    });
    let m = |pfn: u64| p2m[pfn as usize] << 12;
    assert_eq!(w[&(pt, 511)], m(pt + 3) | 0x67);
    assert_eq!(w[&(pt + 3, 510)], m(pt + 2) | 0x67);
    assert_eq!(w[&(pt + 2, 8)], m(pt + 11) | 0x67);
    assert_eq!(w[&(pt + 11, 0)], m(0x1000) | 0x0010_0000_0000_0027);
    assert_eq!(w[&(pt + 11, 0x29)], m(pt) | 0x0010_0000_0000_0025);
    // 5120 L1 entries + 10 L2 + 1 L3 + 1 L4, and nothing in the hypervisor's L4 slots.
    assert_eq!(w.len(), 5120 + 12);
    assert!(!w
        .keys()
        .any(|&(t, i)| t == pt && HYPERVISOR_L4_SLOTS.contains(&(i as usize))));
    let ro = w.values().filter(|v| **v & 0xfff == 0x025).count();
    assert_eq!(ro, 13);
}

/// dom0_mem=64M with a 0x10007b-byte initrd. Xen printed:
///  Dom0 alloc.: 1c000000->1e000000 (7935 pages to be allocated)
///  Init. ramdisk: ffffffff81008000->ffffffff8110807b
///  Phys-Mach map: ffffffff81109000->ffffffff81129000
///  Start info:    ffffffff81129000->ffffffff811294b8
///  Page tables:   ffffffff8112a000->ffffffff81137000
///  Boot stack:    ffffffff81137000->ffffffff81138000
///  TOTAL:         ffffffff80000000->ffffffff81400000
#[test]
fn xen_64m_initrd() {
    let l = compute_layout(&info_of(&tiny_kernel(std_notes(&[]))), 16384, RD).unwrap();
    assert_eq!(l.initrd, vr(0xffff_ffff_8100_8000, 0xffff_ffff_8110_807b));
    assert_eq!(l.p2m, vr(0xffff_ffff_8110_9000, 0xffff_ffff_8112_9000));
    assert_eq!(
        l.start_info,
        vr(0xffff_ffff_8112_9000, 0xffff_ffff_8112_94b8)
    );
    assert_eq!(
        l.page_tables,
        vr(0xffff_ffff_8112_a000, 0xffff_ffff_8113_7000)
    );
    assert_eq!(l.stack, vr(0xffff_ffff_8113_7000, 0xffff_ffff_8113_8000));
    assert_eq!(l.v_end, 0xffff_ffff_8140_0000);
    // 16384 - 8192 - 257 = 7935 pages "to be allocated".
    assert_eq!(l.nr_pages - l.initial_alloc_pages - RD.div_ceil(4096), 7935);
    let si = l.start_info_fields(0);
    assert_eq!((si.mod_start, si.mod_len), (0xffff_ffff_8100_8000, RD));
    assert_eq!(si.flags, SIF_PRIVILEGED | SIF_INITDOMAIN);
    assert_eq!(si.first_p2m_pfn, 0x2101);
}

/// MOD_START_PFN=1, 64M, same initrd: layout as without an initrd; the guest read
/// flags 0x30b, mod_start 0x2000, mod_len 0x10007b, first_p2m_pfn 0x2101.
#[test]
fn xen_64m_initrd_unmapped() {
    let i = info_of(&tiny_kernel(std_notes(&[note(
        16,
        b"Xen\0",
        &1u32.to_le_bytes(),
    )])));
    assert!(i.unmapped_initrd);
    let l = compute_layout(&i, 16384, RD).unwrap();
    assert_eq!(l.p2m, vr(0xffff_ffff_8100_8000, 0xffff_ffff_8102_8000));
    assert_eq!(
        l.page_tables,
        vr(0xffff_ffff_8102_9000, 0xffff_ffff_8103_6000)
    );
    let si = l.start_info_fields(3);
    assert_eq!(si.flags, 0x30b);
    assert_eq!((si.mod_start, si.mod_len), (0x2000, RD));
    assert_eq!((si.first_p2m_pfn, si.nr_p2m_frames), (0x2101, 0));
}

/// INIT_P2M=0x8000000000, 64M, with the initrd. Xen printed:
///  Phys-Mach map: 0000008000000000->0000008000020000
///  Start info:    ffffffff81109000->ffffffff811094b8
///  Page tables:   ffffffff8110a000->ffffffff81117000
///  Boot stack:    ffffffff81117000->ffffffff81118000
/// and the guest read first_p2m_pfn 0x2101, nr_p2m_frames 0x23 (L3+L2+L1+32 pages).
#[test]
fn xen_64m_init_p2m() {
    let i = info_of(&tiny_kernel(std_notes(&[xq(15, 0x80_0000_0000)])));
    let l = compute_layout(&i, 16384, RD).unwrap();
    assert_eq!(l.p2m, vr(0x80_0000_0000, 0x80_0002_0000));
    assert_eq!(
        l.start_info,
        vr(0xffff_ffff_8110_9000, 0xffff_ffff_8110_94b8)
    );
    assert_eq!(
        l.page_tables,
        vr(0xffff_ffff_8110_a000, 0xffff_ffff_8111_7000)
    );
    assert_eq!(l.stack, vr(0xffff_ffff_8111_7000, 0xffff_ffff_8111_8000));
    let si = l.start_info_fields(3);
    assert_eq!(si.mfn_list, 0x80_0000_0000);
    assert_eq!((si.first_p2m_pfn, si.nr_p2m_frames), (0x2101, 0x23));
    let mut frames = Vec::new();
    for_each_table_frame(&l, |f| frames.push(f));
    let extra: Vec<_> = frames
        .iter()
        .filter(|f| !f.initial)
        .map(|f| (f.pfn, f.level))
        .collect();
    assert_eq!(extra, [(0x2101, 3), (0x2102, 2), (0x2103, 1)]);
    let mut data = Vec::new();
    for_each_p2m_page(&l, |p| data.push(p));
    assert_eq!(data, (0x2104..0x2124).collect::<Vec<_>>());
    let p2m: Vec<u64> = (0..16384u64).map(|p| p + 0x1c000).collect();
    let mut w = std::collections::HashMap::new();
    generate_page_tables(&l, &p2m, |x| {
        w.insert((x.table_pfn, x.index), x.value);
    });
    assert_eq!(w[&(l.pt_pfn(), 1)], ((0x2101 + 0x1c000) << 12) | 0x67);
    assert_eq!(
        w[&(0x2103, 31)],
        ((0x2123 + 0x1c000) << 12) | 0x0010_0000_0000_0067
    );
}

/// dom0_mem=300M (76800 pages). Xen printed Phys-Mach map ffffffff81008000->ffffffff8109e000,
/// Start info ffffffff8109e000->ffffffff8109e4b8, Page tables ffffffff8109f000->
/// ffffffff810ac000, TOTAL ffffffff80000000->ffffffff81400000; with INIT_P2M the guest read
/// nr_p2m_frames 0x99 and first_p2m_pfn 0x2000.
#[test]
fn xen_300m() {
    let l = compute_layout(&info_of(&tiny_kernel(std_notes(&[]))), 76800, 0).unwrap();
    assert_eq!(l.p2m, vr(0xffff_ffff_8100_8000, 0xffff_ffff_8109_e000));
    assert_eq!(
        l.page_tables,
        vr(0xffff_ffff_8109_f000, 0xffff_ffff_810a_c000)
    );
    let i = info_of(&tiny_kernel(std_notes(&[xq(15, 0x80_0000_0000)])));
    let l = compute_layout(&i, 76800, 0).unwrap();
    assert_eq!(
        l.page_tables,
        vr(0xffff_ffff_8100_9000, 0xffff_ffff_8101_6000)
    );
    assert_eq!((l.first_p2m_pfn, l.nr_p2m_frames), (0x2000, 0x99));
}

#[test]
fn layout_refusals() {
    let i = info_of(&tiny_kernel(std_notes(&[])));
    assert_eq!(
        compute_layout(&i, 8000, 0),
        Err(BuildError::TooSmallForKernel)
    );
    let p = info_of(&tiny_kernel(std_notes(&[xq(15, 0xffff_8000_0000_0000)])));
    assert_eq!(
        compute_layout(&p, 16384, 0),
        Err(BuildError::OverlapsHypervisor)
    );
    let p = info_of(&tiny_kernel(std_notes(&[xq(
        15,
        0xffff_ffff_8000_0000 - 0x1000,
    )])));
    assert_eq!(
        compute_layout(&p, 16384, 0),
        Err(BuildError::P2mOverlapsInitialMapping)
    );
    let p = info_of(&tiny_kernel(std_notes(&[xq(15, 0x80_0000_0000)])));
    assert_eq!(compute_layout(&p, 8200, 0), Err(BuildError::TooSmallForP2m));
    let h = info_of(&tiny_kernel(std_notes(&[xq(2, 0xffff_ffff_8100_1800)])));
    assert_eq!(
        compute_layout(&h, 16384, 0),
        Err(BuildError::BadHypercallPage)
    );
    let l = compute_layout(&i, 16384, 0).unwrap();
    assert_eq!(check_p2m(&l, &[0; 100]), Err(BuildError::P2mTooShort));
    let mut p2m = vec![0u64; 16384];
    p2m[7] = 1 << 41;
    assert_eq!(check_p2m(&l, &p2m), Err(BuildError::BadMfn { pfn: 7 }));
}

#[test]
fn hypercall_page_matches_xen() {
    let p = hypercall_page();
    // __HYPERVISOR_xen_version (17)
    assert_eq!(
        p[17 * 32..17 * 32 + 14],
        [0x51, 0x41, 0x53, 0xb8, 17, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]
    );
    assert!(p[17 * 32 + 14..18 * 32].iter().all(|&b| b == 0xcc));
    // iret (23)
    assert_eq!(
        p[23 * 32..23 * 32 + 11],
        [0x51, 0x41, 0x53, 0x50, 0xb8, 23, 0, 0, 0, 0x0f, 0x05]
    );
    assert!(p[23 * 32 + 11..24 * 32].iter().all(|&b| b == 0xcc));
    assert_eq!(p[127 * 32 + 4], 127);
}

#[test]
fn cmdline_is_strlcpy() {
    let c = start_info_cmdline(b"console=hvc0 root=/dev/ram");
    assert_eq!(&c[..27], b"console=hvc0 root=/dev/ram\0");
    let long = vec![b'a'; 2000];
    let c = start_info_cmdline(&long);
    assert_eq!(c[1022], b'a');
    assert_eq!(c[1023], 0);
}
