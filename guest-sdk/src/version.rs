//! `xen_version` queries.

use xen_abi::errno::Errno;
use xen_abi::version::*;

/// The hypervisor's version: (major, minor).
pub fn version() -> Result<(u16, u16), Errno> {
    // SAFETY: XENVER_version takes no buffer.
    let v = unsafe { crate::hypercall::xen_version(XENVER_VERSION, core::ptr::null_mut()) }?;
    Ok(split_version(v))
}

/// Split `XENVER_version`'s `major << 16 | minor`.
pub const fn split_version(v: u64) -> (u16, u16) {
    ((v >> 16) as u16, v as u16)
}

/// The extraversion string buffer (NUL-padded), e.g. `".3"`.
pub fn extraversion() -> Result<XenExtraversion, Errno> {
    let mut buf: XenExtraversion = [0; XEN_EXTRAVERSION_LEN];
    // SAFETY: `buf` is a writable `xen_extraversion_t`.
    unsafe { crate::hypercall::xen_version(XENVER_EXTRAVERSION, buf.as_mut_ptr()) }?;
    Ok(buf)
}

/// The capabilities string buffer, e.g. `"xen-3.0-x86_64 hvm-3.0-x86_32 ..."`.
pub fn capabilities() -> Result<XenCapabilitiesInfo, Errno> {
    let mut buf: XenCapabilitiesInfo = [0; XEN_CAPABILITIES_INFO_LEN];
    // SAFETY: `buf` is a writable `xen_capabilities_info_t`.
    unsafe { crate::hypercall::xen_version(XENVER_CAPABILITIES, buf.as_mut_ptr()) }?;
    Ok(buf)
}

/// The `XENFEAT_*` bits of feature submap `idx`.
pub fn features(idx: u32) -> Result<u32, Errno> {
    let mut fi = XenFeatureInfo {
        submap_idx: idx,
        submap: 0,
    };
    // SAFETY: `fi` is a writable `xen_feature_info`.
    unsafe {
        crate::hypercall::xen_version(
            XENVER_GET_FEATURES,
            &mut fi as *mut XenFeatureInfo as *mut u8,
        )
    }?;
    Ok(fi.submap)
}

/// Start of the hypervisor's virtual area.
pub fn virt_start() -> Result<u64, Errno> {
    let mut p = XenPlatformParameters::default();
    // SAFETY: `p` is a writable `xen_platform_parameters`.
    unsafe {
        crate::hypercall::xen_version(
            XENVER_PLATFORM_PARAMETERS,
            &mut p as *mut XenPlatformParameters as *mut u8,
        )
    }?;
    Ok(p.virt_start)
}

/// The page size the hypervisor uses.
pub fn pagesize() -> Result<u64, Errno> {
    // SAFETY: XENVER_pagesize takes no buffer.
    unsafe { crate::hypercall::xen_version(XENVER_PAGESIZE, core::ptr::null_mut()) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn split() {
        assert_eq!(super::split_version(0x0004_0011), (4, 17));
    }
}
