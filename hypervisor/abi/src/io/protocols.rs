//! `xen/io/protocols.h`: the values of the frontend's `protocol` xenstore node.

/// `XEN_IO_PROTO_ABI_X86_32`.
pub const XEN_IO_PROTO_ABI_X86_32: &str = "x86_32-abi";
/// `XEN_IO_PROTO_ABI_X86_64`.
pub const XEN_IO_PROTO_ABI_X86_64: &str = "x86_64-abi";
/// `XEN_IO_PROTO_ABI_ARM`.
pub const XEN_IO_PROTO_ABI_ARM: &str = "arm-abi";
/// `XEN_IO_PROTO_ABI_NATIVE` on x86_64 (the default when `protocol` is absent).
pub const XEN_IO_PROTO_ABI_NATIVE: &str = XEN_IO_PROTO_ABI_X86_64;
