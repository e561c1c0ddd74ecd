//! `memory_op` hypercall (`xen/memory.h`): reservations, memory maps, the M2P location.
//!
//! `memory_op(cmd, arg)`.

use crate::xen::DomId;

/// [`XenMemoryReservation`]; returns the number of extents done.
pub const XENMEM_INCREASE_RESERVATION: u32 = 0;
/// [`XenMemoryReservation`]; returns the number of extents done.
pub const XENMEM_DECREASE_RESERVATION: u32 = 1;
/// Returns the highest machine frame number.
pub const XENMEM_MAXIMUM_RAM_PAGE: u32 = 2;
/// Arg: `domid_t`; returns the domain's current pages.
pub const XENMEM_CURRENT_RESERVATION: u32 = 3;
/// Arg: `domid_t`; returns the domain's maximum pages.
pub const XENMEM_MAXIMUM_RESERVATION: u32 = 4;
/// [`XenMachphysMfnList`].
pub const XENMEM_MACHPHYS_MFN_LIST: u32 = 5;
/// [`XenMemoryReservation`] with `extent_start` holding GPFNs.
pub const XENMEM_POPULATE_PHYSMAP: u32 = 6;
/// [`XenAddToPhysmap`].
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;
/// [`XenMemoryMap`] (the domain's pseudo-physical e820).
pub const XENMEM_MEMORY_MAP: u32 = 9;
/// [`XenMemoryMap`] (the machine e820, privileged).
pub const XENMEM_MACHINE_MEMORY_MAP: u32 = 10;
/// [`XenMemoryExchange`].
pub const XENMEM_EXCHANGE: u32 = 11;
/// [`XenMachphysMapping`].
pub const XENMEM_MACHPHYS_MAPPING: u32 = 12;
/// [`XenForeignMemoryMap`] (privileged).
pub const XENMEM_SET_MEMORY_MAP: u32 = 13;
/// Arg: `domid_t`; returns the domain's highest GPFN.
pub const XENMEM_MAXIMUM_GPFN: u32 = 14;
/// [`XenRemoveFromPhysmap`].
pub const XENMEM_REMOVE_FROM_PHYSMAP: u32 = 15;
pub const XENMEM_SET_POD_TARGET: u32 = 16;
pub const XENMEM_GET_POD_TARGET: u32 = 17;
pub const XENMEM_ADD_TO_PHYSMAP_BATCH: u32 = 23;
pub const XENMEM_CLAIM_PAGES: u32 = 24;
pub const XENMEM_MACHPHYS_COMPAT_MFN_LIST: u32 = 25;
pub const XENMEM_GET_VNUMAINFO: u32 = 26;
pub const XENMEM_RESERVED_DEVICE_MEMORY_MAP: u32 = 27;
pub const XENMEM_ACQUIRE_RESOURCE: u32 = 28;

/// `XenMemoryReservation::mem_flags`: address width limit in bits 0..7.
pub const fn xenmemf_address_bits(bits: u32) -> u32 {
    bits
}
pub const XENMEMF_POPULATE_ON_DEMAND: u32 = 1 << 16;
pub const XENMEMF_EXACT_NODE_REQUEST: u32 = 1 << 17;
pub const XENMEMF_VNODE: u32 = 1 << 18;

/// `XenAddToPhysmap::space` values.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
pub const XENMAPSPACE_GMFN: u32 = 2;
pub const XENMAPSPACE_GMFN_RANGE: u32 = 3;
pub const XENMAPSPACE_GMFN_FOREIGN: u32 = 4;
pub const XENMAPSPACE_DEV_MMIO: u32 = 5;

/// `struct xen_memory_reservation` (IN; `extent_start` array is IN/OUT).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMemoryReservation {
    /// IN/OUT: guest handle of a `xen_pfn_t` array (MFNs out for increase, GPFNs in
    /// for populate/decrease).
    pub extent_start: u64,
    /// IN: number of extents.
    pub nr_extents: u64,
    /// IN: log2 of pages per extent.
    pub extent_order: u32,
    /// IN: `XENMEMF_*`.
    pub mem_flags: u32,
    /// IN: target domain (`DOMID_SELF`).
    pub domid: DomId,
    pub _pad: [u16; 3],
}
const _: () = assert!(core::mem::size_of::<XenMemoryReservation>() == 32);

/// `struct xen_memory_exchange`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMemoryExchange {
    /// IN: extents to give up.
    pub in_: XenMemoryReservation,
    /// IN/OUT: extents to receive.
    pub out: XenMemoryReservation,
    /// OUT: input extents exchanged so far.
    pub nr_exchanged: u64,
}
const _: () = assert!(core::mem::size_of::<XenMemoryExchange>() == 72);

/// `struct xen_machphys_mfn_list`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMachphysMfnList {
    /// IN: size of the array.
    pub max_extents: u32,
    pub _pad: u32,
    /// IN: guest handle of a `xen_pfn_t` array to fill with the M2P's frames.
    pub extent_start: u64,
    /// OUT: entries filled.
    pub nr_extents: u32,
    pub _pad2: u32,
}
const _: () = assert!(core::mem::size_of::<XenMachphysMfnList>() == 24);

/// `struct xen_machphys_mapping` (OUT): where the read-only M2P table is mapped.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMachphysMapping {
    /// OUT: start of the M2P mapping.
    pub v_start: u64,
    /// OUT: end of the M2P mapping (exclusive).
    pub v_end: u64,
    /// OUT: highest MFN the M2P covers.
    pub max_mfn: u64,
}
const _: () = assert!(core::mem::size_of::<XenMachphysMapping>() == 24);

/// `struct xen_add_to_physmap` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenAddToPhysmap {
    /// IN: domain.
    pub domid: DomId,
    /// IN: number of pages (`XENMAPSPACE_gmfn_range`).
    pub size: u16,
    /// IN: `XENMAPSPACE_*`.
    pub space: u32,
    /// IN: index into the space.
    pub idx: u64,
    /// IN: GPFN to map it at.
    pub gpfn: u64,
}
const _: () = assert!(core::mem::size_of::<XenAddToPhysmap>() == 24);

/// `struct xen_remove_from_physmap` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenRemoveFromPhysmap {
    pub domid: DomId,
    pub _pad: [u16; 3],
    pub gpfn: u64,
}
const _: () = assert!(core::mem::size_of::<XenRemoveFromPhysmap>() == 16);

/// `struct xen_memory_map`: an e820-style map (array of [`E820Entry`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMemoryMap {
    /// IN: capacity of `buffer` in entries; OUT: entries written.
    pub nr_entries: u32,
    pub _pad: u32,
    /// IN: guest handle of the [`E820Entry`] array.
    pub buffer: u64,
}
const _: () = assert!(core::mem::size_of::<XenMemoryMap>() == 16);

/// `struct xen_foreign_memory_map` (IN, privileged).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenForeignMemoryMap {
    pub domid: DomId,
    pub _pad: [u16; 3],
    pub map: XenMemoryMap,
}
const _: () = assert!(core::mem::size_of::<XenForeignMemoryMap>() == 24);

/// E820 types.
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;
pub const E820_ACPI: u32 = 3;
pub const E820_NVS: u32 = 4;
pub const E820_UNUSABLE: u32 = 5;

/// One e820 entry as `XENMEM_memory_map` writes it: packed, 20 bytes (Xen's
/// `struct __packed e820entry`; not in the public headers).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    /// `E820_*`.
    pub type_: u32,
}
const _: () = assert!(core::mem::size_of::<E820Entry>() == 20);
