//! Multiboot1 and multiboot2 boot information, parsed through a physical-memory reader.
//!
//! Pure and host-tested: the reader is a closure, so tests feed hand-built structures.
//! Everything the loader hands over is bounded (fixed-capacity lists, cut strings).

use heapless::{String, Vec};

pub const MB1_BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
pub const MB2_BOOTLOADER_MAGIC: u32 = 0x36D7_6289;

/// Kinds of memory-map entries (the multiboot/e820 numbering).
pub const MEM_AVAILABLE: u32 = 1;
pub const MEM_RESERVED: u32 = 2;
pub const MEM_ACPI_RECLAIMABLE: u32 = 3;
pub const MEM_NVS: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRegion {
    pub start: u64,
    pub len: u64,
    pub kind: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub start: u64,
    pub end: u64,
    pub cmdline: String<256>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loader {
    Multiboot1,
    Multiboot2,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootInfo {
    pub loader: Loader,
    pub cmdline: String<512>,
    pub loader_name: String<64>,
    pub memory: Vec<MemRegion, 128>,
    pub modules: Vec<Module, 8>,
    /// Physical address of the ACPI RSDP copy multiboot2 gives, if any.
    pub rsdp: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The magic in `eax` is neither multiboot1's nor multiboot2's.
    BadMagic(u32),
    /// The loader gave no memory map.
    NoMemoryMap,
    /// A structure points outside what the loader could have given.
    Malformed(&'static str),
}

/// Reads physical memory: `read(pa, buf)` fills `buf` from `pa`.
pub trait PhysReader {
    fn read(&self, pa: u64, buf: &mut [u8]);

    fn u32_at(&self, pa: u64) -> u32 {
        let mut b = [0u8; 4];
        self.read(pa, &mut b);
        u32::from_le_bytes(b)
    }

    fn u64_at(&self, pa: u64) -> u64 {
        let mut b = [0u8; 8];
        self.read(pa, &mut b);
        u64::from_le_bytes(b)
    }

    /// A NUL-terminated string at `pa`, cut at `N` bytes; non-UTF-8 bytes become `?`.
    fn cstr<const N: usize>(&self, pa: u64) -> String<N> {
        let mut s = String::new();
        let mut i = 0u64;
        while (i as usize) < N {
            let mut b = [0u8; 1];
            self.read(pa.wrapping_add(i), &mut b);
            if b[0] == 0 {
                break;
            }
            let c = if b[0].is_ascii() { b[0] as char } else { '?' };
            if s.push(c).is_err() {
                break;
            }
            i += 1;
        }
        s
    }
}

impl<F: Fn(u64, &mut [u8])> PhysReader for F {
    fn read(&self, pa: u64, buf: &mut [u8]) {
        self(pa, buf)
    }
}

/// Parse what the loader handed over in `eax` (magic) and `ebx` (info).
pub fn parse(magic: u32, info: u64, mem: &impl PhysReader) -> Result<BootInfo, Error> {
    match magic {
        MB1_BOOTLOADER_MAGIC => parse_mb1(info, mem),
        MB2_BOOTLOADER_MAGIC => parse_mb2(info, mem),
        other => Err(Error::BadMagic(other)),
    }
}

fn empty(loader: Loader) -> BootInfo {
    BootInfo {
        loader,
        cmdline: String::new(),
        loader_name: String::new(),
        memory: Vec::new(),
        modules: Vec::new(),
        rsdp: None,
    }
}

fn parse_mb1(info: u64, mem: &impl PhysReader) -> Result<BootInfo, Error> {
    let mut bi = empty(Loader::Multiboot1);
    let flags = mem.u32_at(info);
    if flags & (1 << 2) != 0 {
        bi.cmdline = mem.cstr(u64::from(mem.u32_at(info + 16)));
    }
    if flags & (1 << 9) != 0 {
        bi.loader_name = mem.cstr(u64::from(mem.u32_at(info + 64)));
    }
    if flags & (1 << 3) != 0 {
        let count = mem.u32_at(info + 20);
        let addr = u64::from(mem.u32_at(info + 24));
        for i in 0..u64::from(count.min(8)) {
            let m = addr + i * 16;
            let start = u64::from(mem.u32_at(m));
            let end = u64::from(mem.u32_at(m + 4));
            if end < start {
                return Err(Error::Malformed("module ends before it starts"));
            }
            let cmdline = mem.cstr(u64::from(mem.u32_at(m + 8)));
            let _ = bi.modules.push(Module {
                start,
                end,
                cmdline,
            });
        }
    }
    if flags & (1 << 6) == 0 {
        return Err(Error::NoMemoryMap);
    }
    let len = u64::from(mem.u32_at(info + 44));
    let addr = u64::from(mem.u32_at(info + 48));
    let mut off = 0u64;
    while off + 24 <= len + 4 {
        let e = addr + off;
        let size = u64::from(mem.u32_at(e));
        if size < 20 {
            return Err(Error::Malformed("memory map entry too small"));
        }
        let region = MemRegion {
            start: mem.u64_at(e + 4),
            len: mem.u64_at(e + 12),
            kind: mem.u32_at(e + 20),
        };
        if bi.memory.push(region).is_err() {
            break;
        }
        off += size + 4;
    }
    if bi.memory.is_empty() {
        return Err(Error::NoMemoryMap);
    }
    Ok(bi)
}

fn parse_mb2(info: u64, mem: &impl PhysReader) -> Result<BootInfo, Error> {
    let mut bi = empty(Loader::Multiboot2);
    let total = u64::from(mem.u32_at(info));
    if !(16..=(1 << 20)).contains(&total) {
        return Err(Error::Malformed("multiboot2 info size"));
    }
    let mut off = 8u64;
    while off + 8 <= total {
        let tag = info + off;
        let ty = mem.u32_at(tag);
        let size = u64::from(mem.u32_at(tag + 4));
        if size < 8 {
            return Err(Error::Malformed("multiboot2 tag size"));
        }
        match ty {
            0 => break,
            1 => bi.cmdline = mem.cstr(tag + 8),
            2 => bi.loader_name = mem.cstr(tag + 8),
            3 => {
                let start = u64::from(mem.u32_at(tag + 8));
                let end = u64::from(mem.u32_at(tag + 12));
                if end < start {
                    return Err(Error::Malformed("module ends before it starts"));
                }
                let cmdline = mem.cstr(tag + 16);
                let _ = bi.modules.push(Module {
                    start,
                    end,
                    cmdline,
                });
            }
            6 => {
                let entry_size = u64::from(mem.u32_at(tag + 8));
                if entry_size < 24 {
                    return Err(Error::Malformed("memory map entry too small"));
                }
                let mut e = tag + 16;
                while e + entry_size <= tag + size {
                    let region = MemRegion {
                        start: mem.u64_at(e),
                        len: mem.u64_at(e + 8),
                        kind: mem.u32_at(e + 16),
                    };
                    if bi.memory.push(region).is_err() {
                        break;
                    }
                    e += entry_size;
                }
            }
            // ACPI 1.0 RSDP (14) unless a 2.0+ one (15) is also given.
            14 | 15 if bi.rsdp.is_none() || ty == 15 => bi.rsdp = Some(tag + 8),
            _ => {}
        }
        off += (size + 7) & !7;
    }
    if bi.memory.is_empty() {
        return Err(Error::NoMemoryMap);
    }
    Ok(bi)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(std::vec::Vec<u8>);
    impl PhysReader for Mem {
        fn read(&self, pa: u64, buf: &mut [u8]) {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = self.0.get(pa as usize + i).copied().unwrap_or(0);
            }
        }
    }
    fn put32(m: &mut [u8], at: usize, v: u32) {
        m[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn put64(m: &mut [u8], at: usize, v: u64) {
        m[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn mb1_modules_memory_cmdline() {
        let mut m = vec![0u8; 0x4000];
        // info at 0x100
        put32(&mut m, 0x100, (1 << 2) | (1 << 3) | (1 << 6));
        put32(&mut m, 0x100 + 16, 0x800);
        m[0x800..0x800 + 12].copy_from_slice(b"console=com1");
        put32(&mut m, 0x100 + 20, 2);
        put32(&mut m, 0x100 + 24, 0x900);
        put32(&mut m, 0x900, 0x10000);
        put32(&mut m, 0x904, 0x12000);
        put32(&mut m, 0x908, 0xa00);
        m[0xa00..0xa08].copy_from_slice(b"dom0 arg");
        put32(&mut m, 0x910, 0x13000);
        put32(&mut m, 0x914, 0x13000);
        put32(&mut m, 0x918, 0xa80);
        put32(&mut m, 0x100 + 44, 48);
        put32(&mut m, 0x100 + 48, 0xb00);
        for (i, (s, l, k)) in [(0u64, 0x9fc00u64, 1u32), (0x100000, 0x1000_0000, 1)]
            .iter()
            .enumerate()
        {
            let e = 0xb00 + i * 24;
            put32(&mut m, e, 20);
            put64(&mut m, e + 4, *s);
            put64(&mut m, e + 12, *l);
            put32(&mut m, e + 20, *k);
        }
        let bi = parse(MB1_BOOTLOADER_MAGIC, 0x100, &Mem(m)).unwrap();
        assert_eq!(bi.cmdline.as_str(), "console=com1");
        assert_eq!(bi.modules.len(), 2);
        assert_eq!(bi.modules[0].start, 0x10000);
        assert_eq!(bi.modules[0].end, 0x12000);
        assert_eq!(bi.modules[0].cmdline.as_str(), "dom0 arg");
        assert_eq!(bi.modules[1].cmdline.as_str(), "");
        assert_eq!(bi.memory.len(), 2);
        assert_eq!(
            bi.memory[1],
            MemRegion {
                start: 0x100000,
                len: 0x1000_0000,
                kind: 1
            }
        );
    }

    #[test]
    fn mb2_tags() {
        let mut m = vec![0u8; 0x1000];
        let i = 0x100;
        let mut off = i + 8;
        // cmdline tag
        put32(&mut m, off, 1);
        put32(&mut m, off + 4, 8 + 6);
        m[off + 8..off + 13].copy_from_slice(b"a b c");
        off += 16;
        // module tag
        put32(&mut m, off, 3);
        put32(&mut m, off + 4, 16 + 4);
        put32(&mut m, off + 8, 0x2000);
        put32(&mut m, off + 12, 0x3000);
        m[off + 16..off + 19].copy_from_slice(b"k x");
        off += 24;
        // mmap tag, one entry
        put32(&mut m, off, 6);
        put32(&mut m, off + 4, 16 + 24);
        put32(&mut m, off + 8, 24);
        put64(&mut m, off + 16, 0x100000);
        put64(&mut m, off + 24, 0x200000);
        put32(&mut m, off + 32, 1);
        off += 40;
        put32(&mut m, off, 0);
        put32(&mut m, off + 4, 8);
        off += 8;
        put32(&mut m, i, (off - i) as u32);
        let bi = parse(MB2_BOOTLOADER_MAGIC, i as u64, &Mem(m)).unwrap();
        assert_eq!(bi.loader, Loader::Multiboot2);
        assert_eq!(bi.cmdline.as_str(), "a b c");
        assert_eq!(bi.modules[0].cmdline.as_str(), "k x");
        assert_eq!(bi.modules[0].end, 0x3000);
        assert_eq!(bi.memory[0].len, 0x200000);
    }

    #[test]
    fn bad_magic_and_missing_map() {
        let m = Mem(vec![0u8; 0x200]);
        assert_eq!(parse(0x1234, 0, &m), Err(Error::BadMagic(0x1234)));
        assert_eq!(parse(MB1_BOOTLOADER_MAGIC, 0, &m), Err(Error::NoMemoryMap));
    }
}
