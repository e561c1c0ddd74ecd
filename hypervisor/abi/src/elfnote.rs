//! ELF note types in the `"Xen"` note namespace (`xen/elfnote.h`).
//!
//! A PV kernel carries `PT_NOTE` notes named `"Xen"` (namesz 4) whose type is one of
//! these. String notes are NUL-terminated; numeric notes are a native u64 (or u32).

pub const XEN_ELFNOTE_INFO: u32 = 0;
/// Entry point virtual address (u64).
pub const XEN_ELFNOTE_ENTRY: u32 = 1;
/// Virtual address of the page the hypervisor fills with hypercall stubs (u64).
pub const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;
/// Virtual base of the kernel (u64); virtual = physical + `VIRT_BASE - PADDR_OFFSET`.
pub const XEN_ELFNOTE_VIRT_BASE: u32 = 3;
/// Offset subtracted from ELF physical addresses (u64).
pub const XEN_ELFNOTE_PADDR_OFFSET: u32 = 4;
/// The Xen version the kernel expects, "xen-3.0" (string).
pub const XEN_ELFNOTE_XEN_VERSION: u32 = 5;
/// Guest OS name (string).
pub const XEN_ELFNOTE_GUEST_OS: u32 = 6;
/// Guest OS version (string).
pub const XEN_ELFNOTE_GUEST_VERSION: u32 = 7;
/// Loader: "generic" (string).
pub const XEN_ELFNOTE_LOADER: u32 = 8;
/// PAE mode: "yes", "no", "bimodal" (string; irrelevant for 64-bit guests).
pub const XEN_ELFNOTE_PAE_MODE: u32 = 9;
/// Required/optional features, '|'-separated, '!' = required (string).
pub const XEN_ELFNOTE_FEATURES: u32 = 10;
pub const XEN_ELFNOTE_BSD_SYMTAB: u32 = 11;
/// Lowest hypervisor virtual address (32-bit guests only).
pub const XEN_ELFNOTE_HV_START_LOW: u32 = 12;
pub const XEN_ELFNOTE_L1_MFN_VALID: u32 = 13;
pub const XEN_ELFNOTE_SUSPEND_CANCEL: u32 = 14;
/// Virtual address where the builder maps the initial P2M list (u64).
pub const XEN_ELFNOTE_INIT_P2M: u32 = 15;
/// The kernel understands `SIF_MOD_START_PFN` (u32 1).
pub const XEN_ELFNOTE_MOD_START_PFN: u32 = 16;
/// Bitmap of `XENFEAT_*` the kernel supports (u32).
pub const XEN_ELFNOTE_SUPPORTED_FEATURES: u32 = 17;
/// 32-bit PVH entry point (u32).
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
pub const XEN_ELFNOTE_MAX: u32 = XEN_ELFNOTE_PHYS32_ENTRY;

pub const XEN_ELFNOTE_CRASH_INFO: u32 = 0x0100_0001;
pub const XEN_ELFNOTE_CRASH_REGS: u32 = 0x0100_0002;
pub const XEN_ELFNOTE_DUMPCORE_NONE: u32 = 0x0200_0000;
pub const XEN_ELFNOTE_DUMPCORE_HEADER: u32 = 0x0200_0001;
pub const XEN_ELFNOTE_DUMPCORE_XEN_VERSION: u32 = 0x0200_0002;
pub const XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION: u32 = 0x0200_0003;

/// The note name (with its NUL) of every Xen note.
pub const XEN_ELFNOTE_NAME: &[u8; 4] = b"Xen\0";
