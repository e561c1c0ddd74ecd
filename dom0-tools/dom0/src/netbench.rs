//! `netbench`: dom0's TCP tests and benchmarks, speaking the `nb` protocol
//! (`pv_drivers::nb`) with the `netdemo` guests or with itself:
//!
//! - `netbench serve PORT`: a server on dom0's interface, run by dom0's event loop (for
//!   guests' clients: domU to dom0);
//! - `netbench send|get|rr IP PORT COUNT`: dom0 as the client of a guest's server
//!   (`send`: dom0 to the guest, checked there; `get`: the guest to dom0, checked here;
//!   `rr`: COUNT one-byte round trips);
//! - `netbench loopback [BYTES]`: the same exchanges between two stacks inside dom0
//!   joined by an in-memory wire (dom0's own loopback, the baseline).
//!
//! Each prints a verdict it computed (`netbench: PASS ...` / `netbench: FAIL ...`) and
//! `bench:` lines in the format the benchmark harness reads (TSC cycles, which count
//! instructions under QEMU's `-icount`).

use crate::net::Net;
use alloc::format;
use alloc::string::String;
use guest_sdk::time::rdtsc;
use guest_sdk::{console, println};
use pv_drivers::nb::{Client, Op, Outcome, Server};
use pv_drivers::tcpip::{Addressing, Ipv4Address, Ipv4Cidr, NetStack, Wire};

const USAGE: &str = "usage: netbench serve PORT | send IP PORT BYTES | get IP PORT BYTES | rr IP PORT COUNT | loopback [BYTES]\n";

/// How long a client exchange may take.
const TIMEOUT_NS: u64 = 60_000_000_000;

fn parse_ip(s: &str) -> Option<Ipv4Address> {
    let a = dom0_tools::vifspec::parse_ipv4(s)?;
    Some(Ipv4Address::new(a[0], a[1], a[2], a[3]))
}

/// `netbench ARGS...` (the words after `netbench`). `background` serves the rest of
/// dom0 (XenStore, the other backends) while a client exchange runs.
pub fn command(net: &mut Net, a: &[&str], background: &mut dyn FnMut()) {
    match run(net, a, background) {
        Ok(s) => console::write_bytes(s.as_bytes()),
        Err(e) => console::write_bytes(e.as_bytes()),
    }
}

fn run(net: &mut Net, a: &[&str], background: &mut dyn FnMut()) -> Result<String, String> {
    let num = |i: usize| -> Result<u64, String> {
        a.get(i)
            .and_then(|w| w.parse::<u64>().ok())
            .ok_or_else(|| String::from(USAGE))
    };
    match a {
        ["serve", port] => {
            let port: u16 = port.parse().map_err(|_| String::from(USAGE))?;
            net.serve(port)
                .map(|()| format!("netbench: serving on port {port}\n"))
                .map_err(|e| format!("netbench: cannot listen on {port}: {e:?}\n"))
        }
        [op @ ("send" | "get" | "rr"), ip, port, _] => {
            let ip = parse_ip(ip).ok_or_else(|| String::from(USAGE))?;
            let port: u16 = port.parse().map_err(|_| String::from(USAGE))?;
            let count = num(3)?;
            let op = match *op {
                "send" => Op::Sink,
                "get" => Op::Give,
                _ => Op::Echo,
            };
            client(net, ip, port, op, count, background)
        }
        ["loopback"] => Ok(loopback(10_000_000)),
        ["loopback", _] => Ok(loopback(num(1)?)),
        _ => Err(String::from(USAGE)),
    }
}

fn name(op: Op, count: u64) -> String {
    match op {
        Op::Sink | Op::Give => format!("tcp_stream_{}k", count / 1000),
        Op::Echo => String::from("tcp_rr"),
    }
}

fn report(what: &str, o: &Outcome, cycles: u64) -> String {
    let verdict = if o.ok { "PASS" } else { "FAIL" };
    let per = match o.op {
        Op::Echo => cycles / o.count.max(1),
        _ => cycles,
    };
    format!(
        "netbench: {verdict} {what} {:?} {} of {} intact\nbench: {} cycles={per} min={per} max={per} iters={}\n",
        o.op,
        o.good,
        o.count,
        name(o.op, o.count),
        if o.op == Op::Echo { o.count } else { 1 }
    )
}

fn client(
    net: &mut Net,
    ip: Ipv4Address,
    port: u16,
    op: Op,
    count: u64,
    background: &mut dyn FnMut(),
) -> Result<String, String> {
    if net.address().is_none() {
        return Err(String::from(
            "netbench: dom0 has no address yet (see ifconfig)\n",
        ));
    }
    let t0 = rdtsc();
    let start = guest_sdk::time::system_time_ns();
    let mut c = Client::new(net.host(), ip, port, op, count)
        .map_err(|e| format!("netbench: cannot connect: {e:?}\n"))?;
    let r = loop {
        net.pump();
        if let Some(r) = c.step(net.host()) {
            break r;
        }
        // The client's writes go out on the next pump; wait only when nothing moved.
        net.pump();
        if let Some(r) = c.step(net.host()) {
            break r;
        }
        let now = guest_sdk::time::system_time_ns();
        if now - start > TIMEOUT_NS {
            c.finish(net.host());
            return Err(format!("netbench: FAIL timed out after {} of {count}\n", 0));
        }
        crate::net::wait(now + 10_000_000);
        // Guests' XenStore requests and disks go on meanwhile (a guest blocked on the
        // store would stall its TCP too).
        background();
    };
    let cycles = rdtsc() - t0;
    // Let the close go out.
    net.pump();
    c.finish(net.host());
    match r {
        Ok(o) => Ok(report(&format!("{ip}:{port}"), &o, cycles)),
        Err(e) => Err(format!("netbench: FAIL {e:?}\n")),
    }
}

/// Two stacks in dom0 joined by a wire: the same exchanges without any hypervisor.
fn loopback(bytes: u64) -> String {
    let st = |last: u8| {
        NetStack::new(
            Wire::new([0x02, 0, 0, 0, 0, last]),
            Addressing::Static {
                cidr: Ipv4Cidr::new(Ipv4Address::new(127, 0, 0, last), 8),
                gateway: None,
            },
            u64::from(last),
            0,
        )
    };
    let (mut a, mut b) = (st(1), st(2));
    let mut out = String::new();
    for (op, count) in [(Op::Sink, bytes), (Op::Echo, 1000)] {
        let Ok(mut srv) = Server::new(&mut b, 7000) else {
            return String::from("netbench: FAIL cannot listen\n");
        };
        let t0 = rdtsc();
        let Ok(mut c) = Client::new(&mut a, Ipv4Address::new(127, 0, 0, 2), 7000, op, count) else {
            return String::from("netbench: FAIL cannot connect\n");
        };
        let mut r = None;
        for _ in 0..50_000_000u64 {
            let ms = guest_sdk::time::system_time_ns() / 1_000_000;
            a.poll(ms);
            b.poll(ms);
            Wire::exchange(a.nic(), b.nic());
            srv.step(&mut b);
            if let Some(x) = c.step(&mut a) {
                r = Some(x);
                break;
            }
        }
        let cycles = rdtsc() - t0;
        match r {
            Some(Ok(o)) => out.push_str(&report("loopback", &o, cycles)),
            Some(Err(e)) => out.push_str(&format!("netbench: FAIL loopback {e:?}\n")),
            None => out.push_str("netbench: FAIL loopback did not finish\n"),
        }
        c.finish(&mut a);
        // Fresh stacks for the next exchange (the server's port stays in TIME-WAIT).
        a = st(1);
        b = st(2);
    }
    println!("netbench: loopback done");
    out
}
