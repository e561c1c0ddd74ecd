//! The XenStore wire protocol (`xen/io/xs_wire.h`): message types, the message header,
//! the error table and the shared ring page between a domain and xenstored.
//!
//! A message is an [`XsdSockmsg`] header (four little-endian `u32`s) followed by `len`
//! bytes of payload, usually NUL-terminated strings. Errors travel as strings (the
//! names in [`XSD_ERRORS`], NUL-terminated) in an `XS_ERROR` reply, "for portability".

use crate::errno::{self, Errno};

// `enum xsd_sockmsg_type`.
/// `XS_CONTROL` (also `XS_DEBUG`): xenstored control commands (privileged).
pub const XS_CONTROL: u32 = 0;
/// `XS_DEBUG`: the old name of `XS_CONTROL`.
pub const XS_DEBUG: u32 = XS_CONTROL;
/// `XS_DIRECTORY`: list a node's children.
pub const XS_DIRECTORY: u32 = 1;
/// `XS_READ`: read a node's value.
pub const XS_READ: u32 = 2;
/// `XS_GET_PERMS`: read a node's permissions.
pub const XS_GET_PERMS: u32 = 3;
/// `XS_WATCH`: register a watch (`path\0token\0`).
pub const XS_WATCH: u32 = 4;
/// `XS_UNWATCH`: remove a watch (`path\0token\0`).
pub const XS_UNWATCH: u32 = 5;
/// `XS_TRANSACTION_START`: start a transaction; the reply is its id as a string.
pub const XS_TRANSACTION_START: u32 = 6;
/// `XS_TRANSACTION_END`: `T\0` commits, `F\0` aborts.
pub const XS_TRANSACTION_END: u32 = 7;
/// `XS_INTRODUCE`: `domid\0mfn\0port\0`, tells xenstored about a new domain.
pub const XS_INTRODUCE: u32 = 8;
/// `XS_RELEASE`: `domid\0`, xenstored forgets a domain.
pub const XS_RELEASE: u32 = 9;
/// `XS_GET_DOMAIN_PATH`: `domid\0`, replies `/local/domain/<domid>`.
pub const XS_GET_DOMAIN_PATH: u32 = 10;
/// `XS_WRITE`: `path\0value` (the value is not NUL-terminated).
pub const XS_WRITE: u32 = 11;
/// `XS_MKDIR`: create a node with an empty value if missing.
pub const XS_MKDIR: u32 = 12;
/// `XS_RM`: remove a node and everything below it.
pub const XS_RM: u32 = 13;
/// `XS_SET_PERMS`: `path\0perm\0perm\0...`.
pub const XS_SET_PERMS: u32 = 14;
/// `XS_WATCH_EVENT`: xenstored to client, `path\0token\0`.
pub const XS_WATCH_EVENT: u32 = 15;
/// `XS_ERROR`: the reply to a failed request, an error name from [`XSD_ERRORS`].
pub const XS_ERROR: u32 = 16;
/// `XS_IS_DOMAIN_INTRODUCED`: `domid\0`, replies `T\0` or `F\0`.
pub const XS_IS_DOMAIN_INTRODUCED: u32 = 17;
/// `XS_RESUME`: `domid\0`, clears a domain's shutdown state.
pub const XS_RESUME: u32 = 18;
/// `XS_SET_TARGET`: `domid\0target\0`, a device model gets its target's rights.
pub const XS_SET_TARGET: u32 = 19;
// 20 was XS_RESTRICT, removed.
/// `XS_RESET_WATCHES`: drop all of the connection's watches and transactions.
pub const XS_RESET_WATCHES: u32 = XS_SET_TARGET + 2;
/// `XS_DIRECTORY_PART`: `path\0offset\0`, a directory listing in chunks.
pub const XS_DIRECTORY_PART: u32 = 22;
/// `XS_TYPE_COUNT`: number of valid types.
pub const XS_TYPE_COUNT: u32 = 23;
/// `XS_INVALID`: guaranteed to remain an invalid type.
pub const XS_INVALID: u32 = 0xffff;

/// `XS_WRITE_NONE`: legacy write flag string.
pub const XS_WRITE_NONE: &str = "NONE";
/// `XS_WRITE_CREATE`: legacy write flag string.
pub const XS_WRITE_CREATE: &str = "CREATE";
/// `XS_WRITE_CREATE_EXCL`: legacy write flag string.
pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";

/// `struct xsd_errors`: an errno value and its name as sent on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XsdError {
    /// `errnum` (a POSIX errno; Xen's values are the same).
    pub errnum: Errno,
    /// `errstring`, e.g. `"ENOENT"`.
    pub errstring: &'static str,
}

const fn e(errnum: Errno, errstring: &'static str) -> XsdError {
    XsdError { errnum, errstring }
}

/// `xsd_errors[]`, in Xen's order ("new errors should be added at the end"). C xenstored
/// replies `EINVAL` for an error not in this table.
pub const XSD_ERRORS: [XsdError; 16] = [
    e(errno::EINVAL, "EINVAL"),
    e(errno::EACCES, "EACCES"),
    e(errno::EEXIST, "EEXIST"),
    e(errno::EISDIR, "EISDIR"),
    e(errno::ENOENT, "ENOENT"),
    e(errno::ENOMEM, "ENOMEM"),
    e(errno::ENOSPC, "ENOSPC"),
    e(errno::EIO, "EIO"),
    e(errno::ENOTEMPTY, "ENOTEMPTY"),
    e(errno::ENOSYS, "ENOSYS"),
    e(errno::EROFS, "EROFS"),
    e(errno::EBUSY, "EBUSY"),
    e(errno::EAGAIN, "EAGAIN"),
    e(errno::EISCONN, "EISCONN"),
    e(errno::E2BIG, "E2BIG"),
    e(errno::EPERM, "EPERM"),
];

/// `struct xsd_sockmsg`: the header in front of every message.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XsdSockmsg {
    /// `type`: one of the `XS_*` values.
    pub type_: u32,
    /// `req_id`: request identifier, echoed in the daemon's response.
    pub req_id: u32,
    /// `tx_id`: transaction id (0 if not related to a transaction).
    pub tx_id: u32,
    /// `len`: length of the payload following the header.
    pub len: u32,
}
const _: () = assert!(core::mem::size_of::<XsdSockmsg>() == XSD_SOCKMSG_SIZE);

/// `sizeof(struct xsd_sockmsg)`.
pub const XSD_SOCKMSG_SIZE: usize = 16;

impl XsdSockmsg {
    /// The header as it travels on the ring (little-endian, x86's order).
    pub fn to_bytes(&self) -> [u8; XSD_SOCKMSG_SIZE] {
        let mut b = [0u8; XSD_SOCKMSG_SIZE];
        for (chunk, v) in b
            .chunks_exact_mut(4)
            .zip([self.type_, self.req_id, self.tx_id, self.len])
        {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Decodes a header read from the ring.
    pub fn from_bytes(b: &[u8; XSD_SOCKMSG_SIZE]) -> XsdSockmsg {
        let w = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        XsdSockmsg {
            type_: w(0),
            req_id: w(4),
            tx_id: w(8),
            len: w(12),
        }
    }
}

/// `enum xs_watch_type`: index of the path in a watch event's strings.
pub const XS_WATCH_PATH: u32 = 0;
/// `enum xs_watch_type`: index of the token in a watch event's strings.
pub const XS_WATCH_TOKEN: u32 = 1;

/// `XENSTORE_RING_SIZE`: bytes in each direction of the shared page.
pub const XENSTORE_RING_SIZE: usize = 1024;
/// `XENSTORE_RING_IDX`: free-running ring index.
pub type XenstoreRingIdx = u32;

/// `MASK_XENSTORE_IDX(idx)`: position of a free-running index in the ring.
pub const fn mask_xenstore_idx(idx: XenstoreRingIdx) -> usize {
    idx as usize & (XENSTORE_RING_SIZE - 1)
}

/// `struct xenstore_domain_interface`: the page a domain shares with xenstored.
///
/// The guest produces requests into `req` and consumes replies from `rsp`; indices are
/// free-running and masked with [`mask_xenstore_idx`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenstoreDomainInterface {
    /// Requests to the xenstore daemon.
    pub req: [u8; XENSTORE_RING_SIZE],
    /// Replies and asynchronous watch events.
    pub rsp: [u8; XENSTORE_RING_SIZE],
    /// Daemon's consumer index into `req`.
    pub req_cons: XenstoreRingIdx,
    /// Guest's producer index into `req`.
    pub req_prod: XenstoreRingIdx,
    /// Guest's consumer index into `rsp`.
    pub rsp_cons: XenstoreRingIdx,
    /// Daemon's producer index into `rsp`.
    pub rsp_prod: XenstoreRingIdx,
    /// Bitmap of `XENSTORE_SERVER_FEATURE_*` the server supports.
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` or `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `XENSTORE_ERROR_*`: why the server stopped serving the ring.
    pub error: u32,
}
const _: () = assert!(core::mem::size_of::<XenstoreDomainInterface>() == 2076);

impl Default for XenstoreDomainInterface {
    fn default() -> Self {
        XenstoreDomainInterface {
            req: [0; XENSTORE_RING_SIZE],
            rsp: [0; XENSTORE_RING_SIZE],
            req_cons: 0,
            req_prod: 0,
            rsp_cons: 0,
            rsp_prod: 0,
            server_features: 0,
            connection: XENSTORE_CONNECTED,
            error: XENSTORE_ERROR_NONE,
        }
    }
}

/// `XENSTORE_PAYLOAD_MAX`: the largest payload of one message ("violating this is very
/// bad": xenstored drops the connection).
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`: longest absolute path ("violating these just gets you an
/// error back").
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`: longest path relative to `/local/domain/<domid>/`.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// `XENSTORE_SERVER_FEATURE_RECONNECTION`: the ring can be reconnected.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// `XENSTORE_SERVER_FEATURE_ERROR`: the `error` field is present.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;

/// `XENSTORE_CONNECTED`: the steady state.
pub const XENSTORE_CONNECTED: u32 = 0;
/// `XENSTORE_RECONNECT`: reconnect in progress.
pub const XENSTORE_RECONNECT: u32 = 1;

/// `XENSTORE_ERROR_NONE`: no error.
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// `XENSTORE_ERROR_COMM`: communication problem.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// `XENSTORE_ERROR_RINGIDX`: invalid ring index.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// `XENSTORE_ERROR_PROTO`: protocol violation (payload too long).
pub const XENSTORE_ERROR_PROTO: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip() {
        let h = XsdSockmsg {
            type_: XS_WRITE,
            req_id: 0x0102_0304,
            tx_id: 7,
            len: 9,
        };
        let b = h.to_bytes();
        assert_eq!(&b[..4], &[11, 0, 0, 0]);
        assert_eq!(&b[4..8], &[4, 3, 2, 1]);
        assert_eq!(XsdSockmsg::from_bytes(&b), h);
    }

    #[test]
    fn error_names_match_errno() {
        // The wire names are C's `#x` of the errno macro: check each against our table.
        let names = [
            (errno::EINVAL, "EINVAL"),
            (errno::EACCES, "EACCES"),
            (errno::E2BIG, "E2BIG"),
            (errno::EPERM, "EPERM"),
        ];
        for (n, s) in names {
            assert!(XSD_ERRORS.iter().any(|x| x.errnum == n && x.errstring == s));
        }
        assert_eq!(XSD_ERRORS[0].errstring, "EINVAL");
        assert_eq!(mask_xenstore_idx(1025), 1);
    }
}
