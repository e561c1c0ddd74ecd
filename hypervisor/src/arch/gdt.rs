//! Per-CPU GDT in Xen's layout, and the TSS.
//!
//! Entries 0..FIRST_RESERVED (14 pages) belong to the guest (`set_gdt` copies its
//! validated descriptors there); the hypervisor's own descriptors sit from entry 7168,
//! so the selectors are Xen's: `0xe008` hypervisor code, `0xe010` hypervisor data,
//! `0xe023`/`0xe02b`/`0xe033` the guests' flat ring-3 segments, `0xe040` the TSS.

use super::percpu::{self, MAX_CPUS};
use core::cell::UnsafeCell;
use core::mem::size_of;

pub const GDT_ENTRIES: usize = 8192;
/// First GDT entry reserved to the hypervisor (Xen's `FIRST_RESERVED_GDT_ENTRY`).
pub const FIRST_RESERVED: usize = 14 * 512;

pub const HYPERVISOR_CS: u16 = 0xe008;
pub const HYPERVISOR_DS: u16 = 0xe010;
pub const TSS_SEL: u16 = 0xe040;

/// The 64-bit TSS.
#[repr(C, packed(4))]
pub struct Tss {
    _r0: u32,
    pub rsp: [u64; 3],
    _r1: u64,
    pub ist: [u64; 7],
    _r2: u64,
    _r3: u16,
    pub iomap_base: u16,
}
const _: () = assert!(size_of::<Tss>() == 104);

#[repr(C, align(4096))]
pub struct Gdt(pub UnsafeCell<[u64; GDT_ENTRIES]>);

pub struct Tables {
    gdts: [Gdt; MAX_CPUS],
    tss: [UnsafeCell<Tss>; MAX_CPUS],
}

// SAFETY: each CPU's GDT and TSS are written only by that CPU during its own bring-up
// (or by the CPU that holds its vCPU's lock for guest descriptors), through raw pointers.
unsafe impl Sync for Tables {}

static TABLES: Tables = Tables {
    gdts: [const { Gdt(UnsafeCell::new([0; GDT_ENTRIES])) }; MAX_CPUS],
    tss: [const {
        UnsafeCell::new(Tss {
            _r0: 0,
            rsp: [0; 3],
            _r1: 0,
            ist: [0; 7],
            _r2: 0,
            _r3: 0,
            iomap_base: 104,
        })
    }; MAX_CPUS],
};

/// Pointer to CPU `cpu`'s GDT.
pub fn gdt_ptr(cpu: usize) -> *mut [u64; GDT_ENTRIES] {
    TABLES.gdts[cpu].0.get()
}

/// Fill and load CPU `cpu`'s GDT and TSS. Runs on that CPU, once, at bring-up.
pub fn load(cpu: usize) {
    let tss = TABLES.tss[cpu].get();
    // SAFETY: this CPU is being brought up; nothing else uses its TSS yet, and the
    // pointer is valid for the life of the hypervisor (a static).
    unsafe {
        (*tss).rsp[0] = percpu::rsp0(cpu);
        (*tss).ist[percpu::IST_DF - 1] = percpu::ist_top(cpu, percpu::IST_DF);
        (*tss).ist[percpu::IST_NMI - 1] = percpu::ist_top(cpu, percpu::IST_NMI);
        (*tss).ist[percpu::IST_MC - 1] = percpu::ist_top(cpu, percpu::IST_MC);
        (*tss).iomap_base = size_of::<Tss>() as u16;
    }
    let g = gdt_ptr(cpu);
    let tss_base = tss as u64;
    let tss_limit = (size_of::<Tss>() - 1) as u64;
    let r = FIRST_RESERVED;
    // SAFETY: as above, the GDT is this CPU's own and not loaded yet (or reloaded by
    // the same CPU); the writes stay inside the 8192-entry array.
    unsafe {
        (*g)[r] = 0;
        (*g)[r + 1] = 0x00af_9b00_0000_ffff; // 0xe008: 64-bit code, DPL 0
        (*g)[r + 2] = 0x00cf_9300_0000_ffff; // 0xe010: data, DPL 0
        (*g)[r + 3] = 0; // 0xe018: unused (Xen's ring-1 code)
        (*g)[r + 4] = 0x00cf_fb00_0000_ffff; // 0xe023: 32-bit code, DPL 3
        (*g)[r + 5] = 0x00cf_f300_0000_ffff; // 0xe02b: data, DPL 3
        (*g)[r + 6] = 0x00af_fb00_0000_ffff; // 0xe033: 64-bit code, DPL 3
        (*g)[r + 7] = 0;
        // 0xe040: 64-bit available TSS (type 9), present.
        (*g)[r + 8] = (tss_limit & 0xffff)
            | ((tss_base & 0xff_ffff) << 16)
            | (0x89 << 40)
            | (((tss_limit >> 16) & 0xf) << 48)
            | (((tss_base >> 24) & 0xff) << 56);
        (*g)[r + 9] = tss_base >> 32;
    }
    #[repr(C, packed)]
    struct Ptr {
        limit: u16,
        base: u64,
    }
    let ptr = Ptr {
        limit: (GDT_ENTRIES * 8 - 1) as u16,
        base: g as u64,
    };
    // SAFETY: the GDT just filled has valid code/data/TSS descriptors at the selectors
    // loaded here; the far return reloads CS with the hypervisor's 64-bit code segment.
    unsafe {
        core::arch::asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov {tmp:e}, {ds}",
            "mov ds, {tmp:e}",
            "mov es, {tmp:e}",
            "mov ss, {tmp:e}",
            "xor {tmp:e}, {tmp:e}",
            "mov fs, {tmp:e}",
            "mov gs, {tmp:e}",
            "mov {tmp:e}, {tss}",
            "ltr {tmp:x}",
            ptr = in(reg) &ptr,
            cs = const HYPERVISOR_CS as u64,
            ds = const HYPERVISOR_DS as u32,
            tss = const TSS_SEL as u32,
            tmp = out(reg) _,
        );
    }
}
