//! `xen_version` hypercall (`xen/version.h`) and feature bits (`xen/features.h`).
//!
//! `xen_version(cmd, arg)`; `XENVER_version` returns `major << 16 | minor` directly.

/// Returns `major << 16 | minor` in `rax`; `arg` is ignored.
pub const XENVER_VERSION: u32 = 0;
/// Fills a [`XenExtraversion`] (e.g. ".11" or "-unstable").
pub const XENVER_EXTRAVERSION: u32 = 1;
/// Fills a [`XenCompileInfo`].
pub const XENVER_COMPILE_INFO: u32 = 2;
/// Fills a [`XenCapabilitiesInfo`] ("xen-3.0-x86_64 xen-3.0-x86_32p ...").
pub const XENVER_CAPABILITIES: u32 = 3;
/// Fills a [`XenChangesetInfo`].
pub const XENVER_CHANGESET: u32 = 4;
/// Fills a [`XenPlatformParameters`].
pub const XENVER_PLATFORM_PARAMETERS: u32 = 5;
/// Fills a [`XenFeatureInfo`] (IN `submap_idx`).
pub const XENVER_GET_FEATURES: u32 = 6;
/// Returns the page size in `rax`.
pub const XENVER_PAGESIZE: u32 = 7;
/// Fills a `xen_domain_handle_t` (the domain's UUID).
pub const XENVER_GUEST_HANDLE: u32 = 8;
/// Fills a [`XenCommandline`] (privileged).
pub const XENVER_COMMANDLINE: u32 = 9;
/// Fills a `xen_build_id` (privileged).
pub const XENVER_BUILD_ID: u32 = 10;

/// `xen_extraversion_t`.
pub type XenExtraversion = [u8; 16];
pub const XEN_EXTRAVERSION_LEN: usize = 16;
/// `xen_capabilities_info_t`.
pub type XenCapabilitiesInfo = [u8; 1024];
pub const XEN_CAPABILITIES_INFO_LEN: usize = 1024;
/// `xen_changeset_info_t`.
pub type XenChangesetInfo = [u8; 64];
pub const XEN_CHANGESET_INFO_LEN: usize = 64;
/// `xen_commandline_t`.
pub type XenCommandline = [u8; 1024];

/// `struct xen_compile_info` (OUT).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenCompileInfo {
    pub compiler: [u8; 64],
    pub compile_by: [u8; 16],
    pub compile_domain: [u8; 32],
    pub compile_date: [u8; 32],
}
const _: () = assert!(core::mem::size_of::<XenCompileInfo>() == 144);

/// `struct xen_platform_parameters` (OUT).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenPlatformParameters {
    /// OUT: start of the hypervisor's virtual area (`HYPERVISOR_VIRT_START`).
    pub virt_start: u64,
}
const _: () = assert!(core::mem::size_of::<XenPlatformParameters>() == 8);

/// `struct xen_feature_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenFeatureInfo {
    /// IN: which 32-bit submap (0..`XENFEAT_NR_SUBMAPS`).
    pub submap_idx: u32,
    /// OUT: the `XENFEAT_*` bits of that submap.
    pub submap: u32,
}
const _: () = assert!(core::mem::size_of::<XenFeatureInfo>() == 8);

/// `XENFEAT_*` bit numbers (in submap 0).
pub const XENFEAT_WRITABLE_PAGE_TABLES: u32 = 0;
pub const XENFEAT_WRITABLE_DESCRIPTOR_TABLES: u32 = 1;
pub const XENFEAT_AUTO_TRANSLATED_PHYSMAP: u32 = 2;
pub const XENFEAT_SUPERVISOR_MODE_KERNEL: u32 = 3;
pub const XENFEAT_PAE_PGDIR_ABOVE_4GB: u32 = 4;
pub const XENFEAT_MMU_PT_UPDATE_PRESERVE_AD: u32 = 5;
pub const XENFEAT_HIGHMEM_ASSIST: u32 = 6;
pub const XENFEAT_GNTTAB_MAP_AVAIL_BITS: u32 = 7;
pub const XENFEAT_HVM_CALLBACK_VECTOR: u32 = 8;
pub const XENFEAT_HVM_SAFE_PVCLOCK: u32 = 9;
pub const XENFEAT_HVM_PIRQS: u32 = 10;
pub const XENFEAT_DOM0: u32 = 11;
pub const XENFEAT_MEMORY_OP_VNODE_SUPPORTED: u32 = 13;
pub const XENFEAT_ARM_SMCCC_SUPPORTED: u32 = 14;
pub const XENFEAT_LINUX_RSDP_UNRESTRICTED: u32 = 15;
pub const XENFEAT_NOT_DIRECT_MAPPED: u32 = 16;
pub const XENFEAT_DIRECT_MAPPED: u32 = 17;
pub const XENFEAT_NR_SUBMAPS: u32 = 1;
