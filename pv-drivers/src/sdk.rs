//! The frontends' environment in a PV guest, over guest-sdk: XenStore through
//! `guest_sdk::xenbus`, pages from the SDK heap (`grant::SharedFrame`), grants through
//! `guest_sdk::grant`, the event channel polled with `SCHEDOP_poll`. Safe code: the SDK
//! does the raw-pointer work.
//!
//! ```ignore
//! let env = pv_drivers::sdk::SdkEnv::new(guest_sdk::xenbus::xenbus()?);
//! let disk = pv_drivers::blkfront::BlockDevice::open(env, "xvda", Default::default())?;
//! ```

use alloc::string::String;
use core::sync::atomic::{fence, Ordering};
use core::time::Duration;

use crate::blkfront::{BlkfrontEnv, EnvError};
use crate::ring::SharedPage;
use guest_sdk::grant::{self, GrantRef, SharedFrame};
use guest_sdk::xenbus::state::{switch_state, wait_for_state_where};
use guest_sdk::xenbus::{Error as XsError, Nodes, XenStore, Xenbus, XenbusState};
use guest_sdk::{events, sched, time};
use xen_abi::xen::DomId;

/// A heap page shared with the backend.
#[derive(Debug)]
pub struct Page(SharedFrame);

impl SharedPage for Page {
    fn size(&self) -> usize {
        SharedFrame::SIZE
    }
    fn read_u32(&self, off: usize) -> u32 {
        self.0.read_u32(off)
    }
    fn write_u32(&self, off: usize, val: u32) {
        self.0.write_u32(off, val)
    }
    fn read_bytes(&self, off: usize, out: &mut [u8]) {
        self.0.read_bytes(off, out)
    }
    fn write_bytes(&self, off: usize, data: &[u8]) {
        self.0.write_bytes(off, data)
    }
    fn fence(&self) {
        fence(Ordering::SeqCst)
    }
    fn read_fence(&self) {
        fence(Ordering::Acquire)
    }
    fn write_fence(&self) {
        fence(Ordering::Release)
    }
}

/// The environment of a PV domU.
#[derive(Debug)]
pub struct SdkEnv {
    xb: &'static Xenbus,
}

impl SdkEnv {
    /// Over this domain's XenStore client.
    pub fn new(xb: &'static Xenbus) -> SdkEnv {
        SdkEnv { xb }
    }
}

fn xs_error(e: XsError) -> EnvError {
    match e {
        XsError::Timeout => EnvError::Timeout,
        e => EnvError::Failed(e.errno().0),
    }
}

impl BlkfrontEnv for SdkEnv {
    type Page = Page;

    fn xs_read(&self, path: &str) -> Result<Option<String>, EnvError> {
        match self.xb.read_string(path) {
            Ok(v) => Ok(Some(v)),
            Err(XsError::ENOENT) => Ok(None),
            Err(e) => Err(xs_error(e)),
        }
    }

    fn xs_write_all(&self, nodes: &[(String, String)]) -> Result<(), EnvError> {
        self.xb
            .transaction(|tx| {
                for (k, v) in nodes {
                    tx.write(k, v.as_bytes())?;
                }
                Ok(())
            })
            .map_err(xs_error)
    }

    fn switch_state(&self, node: &str, state: u32) -> Result<u32, EnvError> {
        let s = XenbusState::from_u32(state).ok_or(EnvError::Failed(22))?;
        switch_state(self.xb, node, s).map_err(xs_error)?;
        Ok(state)
    }

    fn wait_state(
        &self,
        otherend: &str,
        done: &dyn Fn(u32) -> bool,
        timeout_ns: u64,
    ) -> Result<u32, EnvError> {
        wait_for_state_where(
            self.xb,
            otherend,
            |s| done(s as u32),
            Some(Duration::from_nanos(timeout_ns)),
        )
        .map(|s| s as u32)
        .map_err(xs_error)
    }

    fn alloc_page(&self) -> Result<Page, EnvError> {
        SharedFrame::new()
            .map(Page)
            .map_err(|e| EnvError::Failed(e.0))
    }

    fn grant(&self, page: &Page, domid: DomId, readonly: bool) -> Result<GrantRef, EnvError> {
        let mfn = page.0.mfn().ok_or(EnvError::Failed(22))?;
        grant::grant_access(domid, mfn, readonly).map_err(|e| EnvError::Failed(e.0))
    }

    fn end_grant(&self, gref: GrantRef) -> bool {
        grant::end_access(gref).is_ok()
    }

    fn alloc_evtchn(&self, remote: DomId) -> Result<u32, EnvError> {
        let port = events::alloc_unbound(remote).map_err(|e| EnvError::Failed(e.0))?;
        // Polled, never delivered: the upcall would clear the pending bit we poll.
        events::mask(port);
        events::clear_pending(port);
        Ok(port)
    }

    fn notify(&self, port: u32) {
        // A failed send leaves the requests on the ring; the wait then times out.
        let _ = events::send(port);
    }

    fn wait_event(&self, port: u32, deadline_ns: u64) {
        if sched::poll(&[port], deadline_ns).is_err() {
            sched::yield_now();
        }
        // Cleared before the driver looks at the ring again: a later event sets it anew.
        events::clear_pending(port);
    }

    fn close_evtchn(&self, port: u32) {
        let _ = events::close(port);
    }

    fn now_ns(&self) -> u64 {
        time::system_time_ns()
    }
}
