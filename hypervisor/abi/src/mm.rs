//! PV memory management: `mmu_update`, `mmuext_op`, `update_va_mapping` (`xen/xen.h`),
//! x86 page-table entry bits, and the fixed virtual layout a 64-bit PV guest sees
//! (`xen/arch-x86/xen-x86_64.h`).

/// `mmu_update` request kinds, in the low 2 bits of `MmuUpdate::ptr`.
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;
pub const MMU_MACHPHYS_UPDATE: u64 = 1;
pub const MMU_PT_UPDATE_PRESERVE_AD: u64 = 2;
pub const MMU_PT_UPDATE_NO_TRANSLATE: u64 = 3;

/// `struct mmu_update`: one request of the `mmu_update` hypercall.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuUpdate {
    /// IN: machine address of the PTE (or frame, for MACHPHYS) | request kind.
    pub ptr: u64,
    /// IN: the new value.
    pub val: u64,
}
const _: () = assert!(core::mem::size_of::<MmuUpdate>() == 16);

pub const MMUEXT_PIN_L1_TABLE: u32 = 0;
pub const MMUEXT_PIN_L2_TABLE: u32 = 1;
pub const MMUEXT_PIN_L3_TABLE: u32 = 2;
pub const MMUEXT_PIN_L4_TABLE: u32 = 3;
pub const MMUEXT_UNPIN_TABLE: u32 = 4;
pub const MMUEXT_NEW_BASEPTR: u32 = 5;
pub const MMUEXT_TLB_FLUSH_LOCAL: u32 = 6;
pub const MMUEXT_INVLPG_LOCAL: u32 = 7;
pub const MMUEXT_TLB_FLUSH_MULTI: u32 = 8;
pub const MMUEXT_INVLPG_MULTI: u32 = 9;
pub const MMUEXT_TLB_FLUSH_ALL: u32 = 10;
pub const MMUEXT_INVLPG_ALL: u32 = 11;
pub const MMUEXT_FLUSH_CACHE: u32 = 12;
pub const MMUEXT_SET_LDT: u32 = 13;
pub const MMUEXT_NEW_USER_BASEPTR: u32 = 15;
pub const MMUEXT_CLEAR_PAGE: u32 = 16;
pub const MMUEXT_COPY_PAGE: u32 = 17;
pub const MMUEXT_FLUSH_CACHE_GLOBAL: u32 = 18;
pub const MMUEXT_MARK_SUPER: u32 = 19;
pub const MMUEXT_UNMARK_SUPER: u32 = 20;

/// `struct mmuext_op`: one request of the `mmuext_op` hypercall.
///
/// `arg1` is a union of `mfn` and `linear_addr`; `arg2` a union of `nr_ents`,
/// `vcpumask` (a guest handle) and `src_mfn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuextOp {
    /// IN: `MMUEXT_*`.
    pub cmd: u32,
    pub _pad: u32,
    /// IN: mfn (pin, new_baseptr, clear/copy page) or linear address (invlpg, set_ldt).
    pub arg1: u64,
    /// IN: nr_ents (set_ldt), vcpumask pointer (multi flushes) or src_mfn (copy_page).
    pub arg2: u64,
}
const _: () = assert!(core::mem::size_of::<MmuextOp>() == 24);

/// `update_va_mapping` flags.
pub const UVMF_NONE: u64 = 0;
pub const UVMF_TLB_FLUSH: u64 = 1;
pub const UVMF_INVLPG: u64 = 2;
pub const UVMF_FLUSHTYPE_MASK: u64 = 3;
pub const UVMF_MULTI: u64 = 0;
pub const UVMF_LOCAL: u64 = 0;
pub const UVMF_ALL: u64 = 1 << 2;

/// x86 page-table entry bits.
pub const PTE_PRESENT: u64 = 1 << 0;
pub const PTE_RW: u64 = 1 << 1;
pub const PTE_USER: u64 = 1 << 2;
pub const PTE_PWT: u64 = 1 << 3;
pub const PTE_PCD: u64 = 1 << 4;
pub const PTE_ACCESSED: u64 = 1 << 5;
pub const PTE_DIRTY: u64 = 1 << 6;
/// PSE in L2/L3 entries; PAT in L1 entries.
pub const PTE_PSE: u64 = 1 << 7;
pub const PTE_GLOBAL: u64 = 1 << 8;
/// Bits 9..11 are available to software (Xen lets the guest use them).
pub const PTE_AVAIL_MASK: u64 = 0x7 << 9;
pub const PTE_NX: u64 = 1 << 63;
/// The frame-number field of a 4 KiB entry (52-bit physical addresses).
pub const PTE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
pub const ENTRIES_PER_TABLE: usize = 512;

/// Virtual layout of a 64-bit PV guest's address space (`xen-x86_64.h`).
///
/// `HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END` (L4 slots 256..271) belongs to the
/// hypervisor in every address space; the read-only M2P table starts at its base.
pub const HYPERVISOR_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
pub const HYPERVISOR_VIRT_END: u64 = 0xFFFF_8800_0000_0000;
pub const MACH2PHYS_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
pub const MACH2PHYS_VIRT_END: u64 = 0xFFFF_8040_0000_0000;
/// First and last L4 slot reserved to the hypervisor (inclusive).
pub const HYPERVISOR_L4_FIRST: usize = 256;
pub const HYPERVISOR_L4_LAST: usize = 271;

/// `FLAT_KERNEL_*` / `FLAT_USER_*` selectors of 64-bit PV guests.
pub const FLAT_RING3_CS32: u16 = 0xe023;
pub const FLAT_RING3_CS64: u16 = 0xe033;
pub const FLAT_RING3_DS32: u16 = 0xe02b;
pub const FLAT_RING3_DS64: u16 = 0x0000;
pub const FLAT_RING3_SS32: u16 = 0xe02b;
pub const FLAT_RING3_SS64: u16 = 0xe02b;
pub const FLAT_KERNEL_CS64: u16 = FLAT_RING3_CS64;
pub const FLAT_KERNEL_DS64: u16 = FLAT_RING3_DS64;
pub const FLAT_KERNEL_SS64: u16 = FLAT_RING3_SS64;
pub const FLAT_KERNEL_CS: u16 = FLAT_KERNEL_CS64;
pub const FLAT_KERNEL_SS: u16 = FLAT_KERNEL_SS64;
pub const FLAT_USER_CS64: u16 = FLAT_RING3_CS64;
pub const FLAT_USER_DS64: u16 = FLAT_RING3_DS64;
pub const FLAT_USER_SS64: u16 = FLAT_RING3_SS64;
pub const FLAT_USER_CS: u16 = FLAT_USER_CS64;
pub const FLAT_USER_SS: u16 = FLAT_USER_SS64;
