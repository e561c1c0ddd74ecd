//! What a frontend driver needs from the kernel: XenStore, pages shared with the
//! backend, grants, an event channel and a clock ([`FrontendEnv`]), and the XenBus
//! states (`xen/io/xenbus.h`).
//!
//! Both [`blkfront`](crate::blkfront) (which re-exports this as `BlkfrontEnv`) and
//! [`netfront`](crate::netfront) run over it, so a PV guest implements it once over
//! `guest-sdk`, and the host tests once over a fake world.

use alloc::format;
use alloc::string::{String, ToString};

use xen_abi::grant_table::GrantRef;
use xen_abi::DomId;

use crate::ring::SharedPage;

/// XenBus states (`xen/io/xenbus.h`).
pub const STATE_UNKNOWN: u32 = 0;
/// `XenbusStateInitialising`.
pub const STATE_INITIALISING: u32 = 1;
/// `XenbusStateInitWait`.
pub const STATE_INIT_WAIT: u32 = 2;
/// `XenbusStateInitialised`.
pub const STATE_INITIALISED: u32 = 3;
/// `XenbusStateConnected`.
pub const STATE_CONNECTED: u32 = 4;
/// `XenbusStateClosing`.
pub const STATE_CLOSING: u32 = 5;
/// `XenbusStateClosed`.
pub const STATE_CLOSED: u32 = 6;

/// What an environment operation failed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvError {
    /// Did not happen in time.
    Timeout,
    /// Failed (an errno, or any code the environment chooses).
    Failed(i32),
}

/// What the driver needs from the kernel. Methods take `&self`; an implementation keeps
/// its own state behind interior mutability if it needs any.
pub trait FrontendEnv {
    /// A zeroed page to share with the backend (dropping it frees it: the driver drops
    /// only pages whose grants were ended, and leaks the others).
    type Page: SharedPage;

    /// The value of a XenStore node (paths relative to our home or absolute), `None` if
    /// it does not exist.
    fn xs_read(&self, path: &str) -> Result<Option<String>, EnvError>;
    /// Write XenStore nodes, in one transaction where the store has them.
    fn xs_write_all(&self, nodes: &[(String, String)]) -> Result<(), EnvError>;
    /// Publish our XenBus `state` (`<node>/state`).
    fn switch_state(&self, node: &str, state: u32) -> Result<u32, EnvError> {
        self.xs_write_all(&[(format!("{node}/state"), state.to_string())])
            .map(|()| state)
    }
    /// Wait until `<otherend>/state` satisfies `done` (a missing or unparsable state
    /// reads as `STATE_UNKNOWN`) and return it, or `EnvError::Timeout` after
    /// `timeout_ns`.
    fn wait_state(
        &self,
        otherend: &str,
        done: &dyn Fn(u32) -> bool,
        timeout_ns: u64,
    ) -> Result<u32, EnvError>;

    /// A new zeroed shared page.
    fn alloc_page(&self) -> Result<Self::Page, EnvError>;
    /// Grant `domid` access to `page` (read-only if `readonly`).
    fn grant(&self, page: &Self::Page, domid: DomId, readonly: bool) -> Result<GrantRef, EnvError>;
    /// Revoke a grant: `false` while the peer still has it mapped (the grant stays).
    fn end_grant(&self, gref: GrantRef) -> bool;

    /// An unbound event channel port that `remote` may bind.
    fn alloc_evtchn(&self, remote: DomId) -> Result<u32, EnvError>;
    /// Notify the other end of `port`.
    fn notify(&self, port: u32);
    /// Wait until `port` may have fired or the clock reaches `deadline_ns` (a spurious
    /// return is fine; the driver re-checks the ring).
    fn wait_event(&self, port: u32, deadline_ns: u64);
    /// Close `port`.
    fn close_evtchn(&self, port: u32);
    /// A monotonic clock in nanoseconds.
    fn now_ns(&self) -> u64;
}
