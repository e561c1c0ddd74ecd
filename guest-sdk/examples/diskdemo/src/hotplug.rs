//! `hotplug=1`: a guest started without a disk notices one attached while it runs. It
//! watches `device/vbd` in XenStore; when a device node appears (`xl block-attach`) and
//! is complete (its `state` written last by the toolstack), it connects blkfront to it,
//! mounts the FAT filesystem, lists it and appends to `LOG.TXT`; then it watches the
//! backend's state, and when the backend starts closing (`xl block-detach`) it closes
//! the device (blkfront's close path) and waits for the node to go.
//!
//! Console lines: `diskdemo: watching device/vbd`, `diskdemo: hot-attached xvdX (ID)`,
//! the filesystem lines of the default mode, `diskdemo: backend closing, closing xvdX`,
//! `diskdemo: xvdX closed`, `diskdemo: device/vbd/ID removed`, or
//! `diskdemo: FAIL: <why>`.

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use guest_sdk::println;
use guest_sdk::xenbus::state::wait_for_state_where;
use guest_sdk::xenbus::{Nodes, XenStore, Xenbus, XenbusState};
use pv_drivers::blkfront::{BlockDevice, Options};

use pv_drivers::sdk::SdkEnv;

const TOKEN: &str = "diskdemo/vbd";

/// `xvdb` for 51728 (`202 << 8 | n << 4`), the number otherwise.
fn name_of(id: u32) -> String {
    if id >> 8 == 202 && id & 15 == 0 {
        format!("xvd{}", char::from(b'a' + ((id >> 4) & 15) as u8))
    } else {
        format!("{id}")
    }
}

/// The complete device nodes under `device/vbd` now.
fn devices(xb: &Xenbus) -> Vec<u32> {
    let Ok(ids) = xb.directory("device/vbd") else {
        return Vec::new();
    };
    ids.iter()
        .filter(|id| xb.read_string(&format!("device/vbd/{id}/state")).is_ok())
        .filter_map(|id| id.parse().ok())
        .collect()
}

fn run_inner(xb: &'static Xenbus) -> Result<(), String> {
    xb.watch("device/vbd", TOKEN)
        .map_err(|e| format!("watch device/vbd: {e}"))?;
    println!("diskdemo: watching device/vbd");
    let id = loop {
        if let Some(&id) = devices(xb).first() {
            break id;
        }
        let _ = xb.watch_event_until(xb.deadline(None), &|_, t| t == TOKEN);
    };
    let name = name_of(id);
    println!("diskdemo: hot-attached {name} ({id})");
    let dev = BlockDevice::open(SdkEnv::new(xb), &format!("{id}"), Options::default())
        .map_err(|e| format!("cannot open {name}: {e:?}"))?;
    println!(
        "diskdemo: {name} {} sectors of {} bytes",
        dev.sectors(),
        dev.sector_size()
    );
    let (dev, r) = crate::guest::filesystem(dev);
    r?;
    // Now wait for the toolstack to take it away.
    let backend = String::from(dev.nodes().1);
    let s = wait_for_state_where(xb, &backend, |s| s >= XenbusState::Closing, None)
        .map_err(|e| format!("waiting for the backend to close: {e}"))?;
    println!("diskdemo: backend {s:?}, closing {name}");
    dev.close().map_err(|e| format!("close {name}: {e:?}"))?;
    println!("diskdemo: {name} closed");
    // The toolstack removes the node once both ends are closed.
    let deadline = xb.deadline(Some(Duration::from_secs(30)));
    while devices(xb).contains(&id) {
        if xb.watch_event_until(deadline, &|_, t| t == TOKEN).is_none() {
            return Err(format!("device/vbd/{id} still there"));
        }
    }
    println!("diskdemo: device/vbd/{id} removed");
    let _ = xb.unwatch("device/vbd", TOKEN);
    Ok(())
}

/// `hotplug=1`: run, print the verdict.
pub fn run(xb: &'static Xenbus) {
    if let Err(why) = run_inner(xb) {
        println!("diskdemo: FAIL: {why}");
    }
}
