//! `grant_table_op` hypercall and v1 grant entries (`xen/grant_table.h`).
//!
//! `grant_table_op(cmd, uop, count)`: `uop` is an array of `count` op structs.

use crate::xen::DomId;

/// `grant_ref_t`.
pub type GrantRef = u32;
/// `grant_handle_t`.
pub type GrantHandle = u32;

pub const GNTTABOP_MAP_GRANT_REF: u32 = 0;
pub const GNTTABOP_UNMAP_GRANT_REF: u32 = 1;
pub const GNTTABOP_SETUP_TABLE: u32 = 2;
pub const GNTTABOP_DUMP_TABLE: u32 = 3;
pub const GNTTABOP_TRANSFER: u32 = 4;
pub const GNTTABOP_COPY: u32 = 5;
pub const GNTTABOP_QUERY_SIZE: u32 = 6;
pub const GNTTABOP_UNMAP_AND_REPLACE: u32 = 7;
pub const GNTTABOP_SET_VERSION: u32 = 8;
pub const GNTTABOP_GET_STATUS_FRAMES: u32 = 9;
pub const GNTTABOP_GET_VERSION: u32 = 10;
pub const GNTTABOP_SWAP_GRANT_REF: u32 = 11;
pub const GNTTABOP_CACHE_FLUSH: u32 = 12;

pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
pub const GNTTAB_RESERVED_CONSOLE: u32 = 0;
pub const GNTTAB_RESERVED_XENSTORE: u32 = 1;

/// `GrantEntryV1::flags`.
pub const GTF_INVALID: u16 = 0;
pub const GTF_PERMIT_ACCESS: u16 = 1;
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
pub const GTF_TRANSITIVE: u16 = 3;
pub const GTF_TYPE_MASK: u16 = 3;
pub const GTF_READONLY: u16 = 1 << 2;
pub const GTF_READING: u16 = 1 << 3;
pub const GTF_WRITING: u16 = 1 << 4;
pub const GTF_PWT: u16 = 1 << 5;
pub const GTF_PCD: u16 = 1 << 6;
pub const GTF_PAT: u16 = 1 << 7;
pub const GTF_SUB_PAGE: u16 = 1 << 8;
pub const GTF_TRANSFER_COMMITTED: u16 = 1 << 2;
pub const GTF_TRANSFER_COMPLETED: u16 = 1 << 3;

/// Map flags (`GNTMAP_*`).
pub const GNTMAP_DEVICE_MAP: u32 = 1 << 0;
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
pub const GNTMAP_READONLY: u32 = 1 << 2;
pub const GNTMAP_APPLICATION_MAP: u32 = 1 << 3;
pub const GNTMAP_CONTAINS_PTE: u32 = 1 << 4;

/// `GnttabCopy::flags`.
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;

/// Per-op status codes (`GNTST_*`).
pub const GNTST_OKAY: i16 = 0;
pub const GNTST_GENERAL_ERROR: i16 = -1;
pub const GNTST_BAD_DOMAIN: i16 = -2;
pub const GNTST_BAD_GNTREF: i16 = -3;
pub const GNTST_BAD_HANDLE: i16 = -4;
pub const GNTST_BAD_VIRT_ADDR: i16 = -5;
pub const GNTST_BAD_DEV_ADDR: i16 = -6;
pub const GNTST_NO_DEVICE_SPACE: i16 = -7;
pub const GNTST_PERMISSION_DENIED: i16 = -8;
pub const GNTST_BAD_PAGE: i16 = -9;
pub const GNTST_BAD_COPY_ARG: i16 = -10;
pub const GNTST_ADDRESS_TOO_BIG: i16 = -11;
pub const GNTST_EAGAIN: i16 = -12;
pub const GNTST_NO_SPACE: i16 = -13;

/// `struct grant_entry_v1`: one entry of a domain's v1 grant table (shared memory,
/// written by the granting guest, `flags` updated by the hypervisor).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntryV1 {
    /// `GTF_*` (type, permissions, and the hypervisor's reading/writing bits).
    pub flags: u16,
    /// Domain allowed to use the grant.
    pub domid: DomId,
    /// Frame (GFN) being granted, or the frame transferred.
    pub frame: u32,
}
const _: () = assert!(core::mem::size_of::<GrantEntryV1>() == 8);

/// `struct gnttab_map_grant_ref`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabMapGrantRef {
    /// IN: virtual address (or PTE machine address with `GNTMAP_contains_pte`).
    pub host_addr: u64,
    /// IN: `GNTMAP_*`.
    pub flags: u32,
    /// IN: grant reference.
    pub ref_: GrantRef,
    /// IN: granting domain.
    pub dom: DomId,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// OUT: handle for unmap.
    pub handle: GrantHandle,
    /// OUT: bus address (`GNTMAP_device_map`).
    pub dev_bus_addr: u64,
}
const _: () = assert!(core::mem::size_of::<GnttabMapGrantRef>() == 32);

/// `struct gnttab_unmap_grant_ref`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabUnmapGrantRef {
    /// IN: address the grant is mapped at.
    pub host_addr: u64,
    /// IN: device bus address.
    pub dev_bus_addr: u64,
    /// IN: handle from the map.
    pub handle: GrantHandle,
    /// OUT: `GNTST_*`.
    pub status: i16,
    pub _pad: u16,
}
const _: () = assert!(core::mem::size_of::<GnttabUnmapGrantRef>() == 24);

/// `struct gnttab_setup_table`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabSetupTable {
    /// IN: domain (`DOMID_SELF`).
    pub dom: DomId,
    pub _pad: u16,
    /// IN: number of grant-table frames wanted.
    pub nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    pub _pad2: [u16; 3],
    /// IN: guest handle of a `xen_pfn_t` array; OUT: the frames (MFNs for PV).
    pub frame_list: u64,
}
const _: () = assert!(core::mem::size_of::<GnttabSetupTable>() == 24);

/// `struct gnttab_dump_table`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabDumpTable {
    pub dom: DomId,
    pub status: i16,
}
const _: () = assert!(core::mem::size_of::<GnttabDumpTable>() == 4);

/// `struct gnttab_transfer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabTransfer {
    /// IN: frame to give away.
    pub mfn: u64,
    /// IN: receiving domain.
    pub domid: DomId,
    pub _pad: u16,
    /// IN: its `GTF_accept_transfer` grant.
    pub ref_: GrantRef,
    /// OUT: `GNTST_*`.
    pub status: i16,
    pub _pad2: [u16; 3],
}
const _: () = assert!(core::mem::size_of::<GnttabTransfer>() == 24);

/// `struct gnttab_copy_ptr`: one side of a grant copy. `u` is a grant ref (with
/// `GNTCOPY_*_gref`) or a GMFN.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabCopyPtr {
    /// IN: grant ref (low 32 bits) or GMFN.
    pub u: u64,
    /// IN: domain owning the frame.
    pub domid: DomId,
    /// IN: byte offset in the page.
    pub offset: u16,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<GnttabCopyPtr>() == 16);

/// `struct gnttab_copy`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabCopy {
    pub source: GnttabCopyPtr,
    pub dest: GnttabCopyPtr,
    /// IN: bytes to copy (within one page on both sides).
    pub len: u16,
    /// IN: `GNTCOPY_*`.
    pub flags: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    pub _pad: u16,
}
const _: () = assert!(core::mem::size_of::<GnttabCopy>() == 40);

/// `struct gnttab_query_size`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabQuerySize {
    /// IN: domain.
    pub dom: DomId,
    pub _pad: u16,
    /// OUT: current frames.
    pub nr_frames: u32,
    /// OUT: maximum frames.
    pub max_nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    pub _pad2: u16,
}
const _: () = assert!(core::mem::size_of::<GnttabQuerySize>() == 16);

/// `struct gnttab_unmap_and_replace`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabUnmapAndReplace {
    pub host_addr: u64,
    pub new_addr: u64,
    pub handle: GrantHandle,
    pub status: i16,
    pub _pad: u16,
}
const _: () = assert!(core::mem::size_of::<GnttabUnmapAndReplace>() == 24);

/// `struct gnttab_set_version` (IN/OUT).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabSetVersion {
    pub version: u32,
}
const _: () = assert!(core::mem::size_of::<GnttabSetVersion>() == 4);

/// `struct gnttab_get_version`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabGetVersion {
    pub dom: DomId,
    pub pad: u16,
    pub version: u32,
}
const _: () = assert!(core::mem::size_of::<GnttabGetVersion>() == 8);
