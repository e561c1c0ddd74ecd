//! `callback_op` hypercall (`xen/callback.h`): register event, failsafe, syscall and NMI
//! entry points.

/// `CALLBACKOP_register`: argument is a [`CallbackRegister`].
pub const CALLBACKOP_REGISTER: u32 = 0;
/// `CALLBACKOP_unregister`: argument is a [`CallbackUnregister`].
pub const CALLBACKOP_UNREGISTER: u32 = 1;

/// Event upcall (`evtchn_upcall_pending` became set and events are unmasked).
pub const CALLBACKTYPE_EVENT: u16 = 0;
/// Failsafe: returning to the guest failed (bad segment); frame has ds/es/fs/gs too.
pub const CALLBACKTYPE_FAILSAFE: u16 = 1;
/// `syscall` from 64-bit guest user mode.
pub const CALLBACKTYPE_SYSCALL: u16 = 2;
/// Deprecated sysenter number.
pub const CALLBACKTYPE_SYSENTER_DEPRECATED: u16 = 3;
/// NMI.
pub const CALLBACKTYPE_NMI: u16 = 4;
/// `sysenter` from 32-bit guest user mode.
pub const CALLBACKTYPE_SYSENTER: u16 = 5;
/// `syscall` from 32-bit guest user mode.
pub const CALLBACKTYPE_SYSCALL32: u16 = 7;

/// `CALLBACKF_mask_events`: mask events (set `evtchn_upcall_mask`) on callback entry.
pub const CALLBACKF_MASK_EVENTS: u16 = 1 << 0;

/// `struct callback_register` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallbackRegister {
    /// IN: `CALLBACKTYPE_*`.
    pub type_: u16,
    /// IN: `CALLBACKF_*`.
    pub flags: u16,
    pub _pad: u32,
    /// IN: entry point (`xen_callback_t`, a virtual address on x86_64).
    pub address: u64,
}
const _: () = assert!(core::mem::size_of::<CallbackRegister>() == 16);

/// `struct callback_unregister` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallbackUnregister {
    /// IN: `CALLBACKTYPE_*`.
    pub type_: u16,
    pub _unused: u16,
}
const _: () = assert!(core::mem::size_of::<CallbackUnregister>() == 4);
