//! `hotplug=1 serve=PORT`: a guest started without a network interface notices one
//! attached while it runs. It watches `device/vif` in XenStore; when a device node
//! appears (`xl network-attach`) and is complete (its `state` written last by the
//! toolstack), it connects netfront to it, takes its address (the backend's `ip`, else
//! DHCP) and serves `nb` on PORT; every 200 ms it looks at the backend's state, and when
//! the backend starts closing (`xl network-detach`) it closes the device (netfront's
//! close path) and waits for the node to go.
//!
//! Console lines: `netdemo: watching device/vif`, `netdemo: hot-attached vif N`,
//! `netdemo: mac M`, `netdemo: address A.B.C.D/N`, `netdemo: nb server on port P`,
//! `netdemo: served ...`, `netdemo: backend Closing, closing vif N`,
//! `netdemo: vif N closed`, `netdemo: device/vif/N removed`, or
//! `netdemo: FAIL: <why>`; then `netdemo: done`.

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use guest_sdk::println;
use guest_sdk::xenbus::{Nodes, XenStore, Xenbus};
use pv_drivers::nb::Server;
use pv_drivers::netfront::{
    NetDevice, Options, STATE_CLOSED, STATE_CLOSING, STATE_CONNECTED, STATE_UNKNOWN,
};
use pv_drivers::sdk::SdkEnv;
use pv_drivers::tcpip::NetStack;

use crate::guest::{addressing, now_ns, step};

const TOKEN: &str = "netdemo/vif";
const BE_TOKEN: &str = "netdemo/vif-backend";

/// The complete device nodes under `device/vif` now.
fn devices(xb: &Xenbus) -> Vec<u32> {
    let Ok(ids) = xb.directory("device/vif") else {
        return Vec::new();
    };
    ids.iter()
        .filter(|id| xb.read_string(&format!("device/vif/{id}/state")).is_ok())
        .filter_map(|id| id.parse().ok())
        .collect()
}

fn state_name(s: u32) -> String {
    match s {
        STATE_CLOSING => String::from("Closing"),
        STATE_CLOSED => String::from("Closed"),
        s => format!("state {s}"),
    }
}

fn run_inner(xb: &'static Xenbus, port: u16) -> Result<(), String> {
    xb.watch("device/vif", TOKEN)
        .map_err(|e| format!("watch device/vif: {e}"))?;
    println!("netdemo: watching device/vif");
    let id = loop {
        if let Some(&id) = devices(xb).first() {
            break id;
        }
        let _ = xb.watch_event_until(xb.deadline(None), &|_, t| t == TOKEN);
    };
    let _ = xb.unwatch("device/vif", TOKEN);
    println!("netdemo: hot-attached vif {id}");
    let dev = NetDevice::open(SdkEnv::new(xb), &format!("{id}"), Options::default())
        .map_err(|e| format!("cannot open vif {id}: {e:?}"))?;
    let mac = dev.mac();
    println!(
        "netdemo: mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    );
    let ip = xb.read_string(&format!("{}/ip", dev.nodes().1)).ok();
    let addressing = addressing(ip).map_err(|e| format!("ip: {e}"))?;
    let seed = guest_sdk::time::rdtsc() ^ u64::from(mac[5]);
    let mut stack = NetStack::new(dev, addressing, seed, now_ns() / 1_000_000);
    let deadline = now_ns() + 30_000_000_000;
    while stack.ipv4().is_none() {
        if now_ns() > deadline {
            return Err(String::from("no address from DHCP"));
        }
        step(&mut stack, 100_000_000);
    }
    if let Some(c) = stack.ipv4() {
        println!("netdemo: address {c}");
    }
    // Watch the backend's state rather than reading it on every turn: a read is a
    // round trip to xenstored, which stalls this loop whenever dom0 is busy (dom0's
    // `netbench` runs its client without serving the store).
    let be_state = format!("{}/state", stack.nic().nodes().1);
    xb.watch(&be_state, BE_TOKEN)
        .map_err(|e| format!("watch {be_state}: {e}"))?;
    // xenstored fires a new watch once at once: take that event now, while the store
    // is surely served, so the loop reads the state only when the backend changes it.
    let _ = xb.watch_event_until(xb.deadline(Some(Duration::from_secs(1))), &|_, t| {
        t == BE_TOKEN
    });
    let mut look = !matches!(stack.nic().backend_state(), Ok(STATE_CONNECTED));
    let mut srv = Server::new(&mut stack, port).map_err(|e| format!("listen {port}: {e:?}"))?;
    println!("netdemo: nb server on port {port}");
    let mut next_look = 0;
    let state = loop {
        step(&mut stack, 200_000_000);
        while let Some(o) = srv.step(&mut stack) {
            println!(
                "netdemo: served {:?} {} of {} intact: {}",
                o.op,
                o.good,
                o.count,
                if o.ok { "PASS" } else { "FAIL" }
            );
            stack.poll(now_ns() / 1_000_000);
        }
        if stack.nic().is_broken() {
            return Err(format!("vif {id} broke"));
        }
        if now_ns() >= next_look {
            next_look = now_ns() + 200_000_000;
            let now = xb.deadline(Some(Duration::ZERO));
            look |= xb.watch_event_until(now, &|_, t| t == BE_TOKEN).is_some();
            if look {
                match stack.nic().backend_state() {
                    Ok(s) if s >= STATE_CLOSING || s == STATE_UNKNOWN => break Ok(s),
                    Ok(_) => look = false,
                    // Ask again next time.
                    Err(e) => println!("netdemo: reading {be_state}: {e:?}"),
                }
            }
        }
    };
    let _ = xb.unwatch(&be_state, BE_TOKEN);
    let state = state.map_or_else(
        |e: pv_drivers::netfront::Error| format!("{e:?}"),
        state_name,
    );
    println!("netdemo: backend {state}, closing vif {id}");
    let dev = stack.into_nic();
    dev.close().map_err(|e| format!("close vif {id}: {e:?}"))?;
    println!("netdemo: vif {id} closed");
    // The toolstack removes the node once both ends are closed.
    xb.watch("device/vif", TOKEN)
        .map_err(|e| format!("watch device/vif: {e}"))?;
    let deadline = xb.deadline(Some(Duration::from_secs(30)));
    while devices(xb).contains(&id) {
        if xb.watch_event_until(deadline, &|_, t| t == TOKEN).is_none() {
            return Err(format!("device/vif/{id} still there"));
        }
    }
    let _ = xb.unwatch("device/vif", TOKEN);
    println!("netdemo: device/vif/{id} removed");
    Ok(())
}

/// `hotplug=1`: run, print the verdict.
pub fn run(xb: &'static Xenbus, port: u16) {
    if let Err(why) = run_inner(xb, port) {
        println!("netdemo: FAIL: {why}");
    }
    println!("netdemo: done");
}
