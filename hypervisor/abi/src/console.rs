//! `console_io` hypercall (`xen/xen.h`) and the PV console ring (`xen/io/console.h`).

/// `CONSOLEIO_write`: `console_io(CONSOLEIO_write, count, buffer)`.
pub const CONSOLEIO_WRITE: u32 = 0;
/// `CONSOLEIO_read`: `console_io(CONSOLEIO_read, count, buffer)`, returns bytes read.
pub const CONSOLEIO_READ: u32 = 1;

/// `XENCONS_RING_IDX`.
pub type XenconsRingIdx = u32;

/// Size of `XenconsInterface::in_`.
pub const XENCONS_IN_SIZE: usize = 1024;
/// Size of `XenconsInterface::out`.
pub const XENCONS_OUT_SIZE: usize = 2048;

/// `struct xencons_interface`: the console ring page shared by a domU and its backend.
///
/// Indices are free-running; mask with the ring size (`MASK_XENCONS_IDX`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenconsInterface {
    /// Backend to guest bytes (produced by the backend).
    pub in_: [u8; XENCONS_IN_SIZE],
    /// Guest to backend bytes (produced by the guest).
    pub out: [u8; XENCONS_OUT_SIZE],
    /// Guest's consumer index into `in_`.
    pub in_cons: XenconsRingIdx,
    /// Backend's producer index into `in_`.
    pub in_prod: XenconsRingIdx,
    /// Backend's consumer index into `out`.
    pub out_cons: XenconsRingIdx,
    /// Guest's producer index into `out`.
    pub out_prod: XenconsRingIdx,
}
const _: () = assert!(core::mem::size_of::<XenconsInterface>() == 3088);

/// `MASK_XENCONS_IDX` for the `in` ring.
pub const fn mask_in(idx: XenconsRingIdx) -> usize {
    idx as usize & (XENCONS_IN_SIZE - 1)
}
/// `MASK_XENCONS_IDX` for the `out` ring.
pub const fn mask_out(idx: XenconsRingIdx) -> usize {
    idx as usize & (XENCONS_OUT_SIZE - 1)
}
