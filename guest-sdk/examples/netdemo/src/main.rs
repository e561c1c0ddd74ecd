//! Example PV guest for issue 5: a real network interface. Opens `vif 0` through
//! netfront (pv-drivers' `NetDevice` over `pv_drivers::sdk::SdkEnv`), runs smoltcp on it
//! (`pv_drivers::tcpip`), with the address from its vif's `ip=` setting (the backend's
//! `ip` node) or else from DHCP, then, by its command line:
//!
//! - `http=PORT`: an HTTP/1.0 server answering every `GET` with a page naming the
//!   domain (`curl http://ADDR:PORT/`), forever;
//! - `serve=PORT`: an `nb` server (`pv_drivers::nb`: sink, give, echo), forever;
//! - `send=A.B.C.D:PORT bytes=N`: send N bytes of the `nb` pattern to a server, which
//!   checks them; `get=...` receive them and check them here; `rr=A.B.C.D:PORT count=N`:
//!   N one-byte round trips. Prints the verdict and a `bench:` line, then powers off
//!   (or stays up with `stay=1`).
//!
//! - `hostile=SECS`: a netfront that lies to netback (`hostile.rs`);
//! - `hotplug=1 serve=PORT`: start without a vif, wait for one to be attached, serve
//!   `nb` on it, close it when it is detached (`hotplug.rs`).
//!
//! Console lines (computed verdicts, for the system tests): `netdemo: mac M`,
//! `netdemo: address A.B.C.D/N`, `netdemo: http on port P`, `netdemo: served ...`,
//! `netdemo: PASS ...` / `netdemo: FAIL: <why>`, `netdemo: done`.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("netdemo is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

#[cfg(target_os = "none")]
mod hostile;
#[cfg(target_os = "none")]
mod hotplug;

#[cfg(target_os = "none")]
mod guest {
    extern crate alloc;

    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;

    use guest_sdk::xenbus::Nodes;
    use guest_sdk::{println, xenbus, StartInfo};
    use pv_drivers::nb::{Client, Op, Server};
    use pv_drivers::netfront::{NetDevice, Options};
    use pv_drivers::sdk::SdkEnv;
    use pv_drivers::tcpip::{Addressing, Ipv4Address, Ipv4Cidr, NetStack};
    use smoltcp::iface::SocketHandle;

    guest_sdk::entry!(guest_main);

    pub(crate) type Stack = NetStack<NetDevice<SdkEnv>>;

    fn arg<'a>(cmd: &'a [u8], key: &str) -> Option<&'a str> {
        cmd.split(|&b| b == b' ')
            .find_map(|w| w.strip_prefix(key.as_bytes())?.strip_prefix(b"="))
            .and_then(|v| core::str::from_utf8(v).ok())
    }

    pub(crate) fn now_ns() -> u64 {
        guest_sdk::time::system_time_ns()
    }

    fn ipv4(s: &str) -> Option<Ipv4Address> {
        let mut a = [0u8; 4];
        let mut it = s.split('.');
        for b in a.iter_mut() {
            *b = it.next()?.parse().ok()?;
        }
        if it.next().is_some() {
            return None;
        }
        Some(Ipv4Address::new(a[0], a[1], a[2], a[3]))
    }

    /// The backend's `ip` value: `A.B.C.D[/N] [GATEWAY]`.
    pub(crate) fn addressing(ip: Option<String>) -> Result<Addressing, String> {
        let Some(ip) = ip else {
            return Ok(Addressing::Dhcp);
        };
        let mut words = ip.split_ascii_whitespace();
        let first = words.next().ok_or("empty ip")?;
        let (a, n) = match first.split_once('/') {
            Some((a, n)) => (a, n.parse::<u8>().map_err(|_| "bad prefix")?),
            None => (first, 24),
        };
        let addr = ipv4(a).ok_or("bad address")?;
        let gateway = match words.next() {
            Some(g) => Some(ipv4(g).ok_or("bad gateway")?),
            None => None,
        };
        Ok(Addressing::Static {
            cidr: Ipv4Cidr::new(addr, n),
            gateway,
        })
    }

    /// Poll the stack and wait for the device or the stack's next timer (at most
    /// `max_ns`).
    pub(crate) fn step(stack: &mut Stack, max_ns: u64) {
        let ms = now_ns() / 1_000_000;
        stack.poll(ms);
        let delay = stack
            .poll_delay_ms(ms)
            .map_or(max_ns, |d| (d * 1_000_000).min(max_ns));
        if delay > 0 {
            let _ = stack.nic().wait(now_ns() + delay);
        }
        // What arrived goes into the sockets before the caller looks (else a reply would
        // wait for the stack's next timer, such as a delayed ACK's 10 ms).
        stack.poll(now_ns() / 1_000_000);
    }

    fn page(domid: &str, addr: &str) -> String {
        let body = format!(
            "<html><body><h1>Hello from netdemo</h1>\n<p>Xen PV domain {domid}, address {addr}, served by smoltcp over netfront.</p></body></html>\n"
        );
        format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    /// An HTTP/1.0 server on `port`: each connection gets the page after its request
    /// line, then is closed.
    fn http(stack: &mut Stack, port: u16, domid: &str) -> ! {
        let addr = stack.ipv4().map(|c| format!("{c}")).unwrap_or_default();
        let body = page(domid, &addr);
        let mut socks: Vec<(SocketHandle, Vec<u8>, usize)> = Vec::new();
        for _ in 0..4 {
            match stack.tcp_listen(port) {
                Ok(h) => socks.push((h, Vec::new(), 0)),
                Err(e) => println!("netdemo: FAIL: listen {port}: {e:?}"),
            }
        }
        println!("netdemo: http on port {port}");
        let mut served = 0u64;
        loop {
            step(stack, 1_000_000_000);
            for (h, req, sent) in socks.iter_mut() {
                let s = stack.tcp(*h);
                if s.can_recv() {
                    let mut buf = [0u8; 512];
                    if let Ok(n) = s.recv_slice(&mut buf) {
                        req.extend_from_slice(&buf[..n.min(buf.len())]);
                        req.truncate(4096);
                    }
                }
                let complete = req.windows(4).any(|w| w == b"\r\n\r\n")
                    || req.windows(2).any(|w| w == b"\n\n");
                if complete && *sent < body.len() && s.can_send() {
                    *sent += s.send_slice(&body.as_bytes()[*sent..]).unwrap_or(0);
                    if *sent == body.len() {
                        s.close();
                        served += 1;
                        let line = req.split(|&b| b == b'\r' || b == b'\n').next();
                        println!(
                            "netdemo: served {} ({})",
                            core::str::from_utf8(line.unwrap_or(b"")).unwrap_or("?"),
                            served
                        );
                    }
                }
                if !s.is_open() {
                    s.abort();
                    let _ = s.listen(port);
                    req.clear();
                    *sent = 0;
                }
            }
        }
    }

    fn serve(stack: &mut Stack, port: u16) -> ! {
        let mut srv = match Server::new(stack, port) {
            Ok(s) => s,
            Err(e) => {
                println!("netdemo: FAIL: listen {port}: {e:?}");
                guest_sdk::sched::poweroff();
            }
        };
        println!("netdemo: nb server on port {port}");
        loop {
            step(stack, 1_000_000_000);
            while let Some(o) = srv.step(stack) {
                println!(
                    "netdemo: served {:?} {} of {} intact: {}",
                    o.op,
                    o.good,
                    o.count,
                    if o.ok { "PASS" } else { "FAIL" }
                );
                stack.poll(now_ns() / 1_000_000);
            }
        }
    }

    fn client(stack: &mut Stack, target: &str, op: Op, count: u64) -> Result<String, String> {
        let (ip, port) = target.split_once(':').ok_or("target: A.B.C.D:PORT")?;
        let ip = ipv4(ip).ok_or("target: bad address")?;
        let port: u16 = port.parse().map_err(|_| "target: bad port")?;
        let deadline = now_ns() + 120_000_000_000;
        let t0 = guest_sdk::time::rdtsc();
        let mut c = Client::new(stack, ip, port, op, count).map_err(|e| format!("{e:?}"))?;
        let r = loop {
            stack.poll(now_ns() / 1_000_000);
            if let Some(r) = c.step(stack) {
                break r;
            }
            if now_ns() > deadline {
                return Err(format!("timed out at {} of {count}", c.progress()));
            }
            step(stack, 10_000_000);
        };
        let cycles = guest_sdk::time::rdtsc() - t0;
        // Let the close go out.
        for _ in 0..10 {
            step(stack, 1_000_000);
        }
        c.finish(stack);
        let o = r.map_err(|e| format!("{e:?}"))?;
        if !o.ok {
            return Err(format!("{:?}: {} of {} intact", o.op, o.good, o.count));
        }
        let (name, per, iters) = match op {
            Op::Echo => (String::from("tcp_rr"), cycles / count.max(1), count),
            _ => (format!("tcp_stream_{}k", count / 1000), cycles, 1),
        };
        Ok(format!(
            "netdemo: PASS {:?} {} of {} intact to {target}\nbench: {name} cycles={per} min={per} max={per} iters={iters}",
            o.op, o.good, o.count
        ))
    }

    fn guest_main(si: &'static StartInfo) {
        let cmd = si.cmd_line_bytes();
        let xb = match xenbus::xenbus() {
            Ok(xb) => xb,
            Err(e) => {
                println!("netdemo: FAIL: no xenstore: {e}");
                return;
            }
        };
        let domid = xb
            .read_string("domid")
            .unwrap_or_else(|_| String::from("?"));
        if let Some(secs) = arg(cmd, "hostile").and_then(|s| s.parse().ok()) {
            crate::hostile::run(xb, secs);
        }
        if arg(cmd, "hotplug") == Some("1") {
            let port = arg(cmd, "serve")
                .and_then(|p| p.parse().ok())
                .unwrap_or(5001);
            crate::hotplug::run(xb, port);
            if arg(cmd, "stay") == Some("1") {
                loop {
                    guest_sdk::sched::block();
                }
            }
            return;
        }
        let dev = match NetDevice::open(SdkEnv::new(xb), "0", Options::default()) {
            Ok(d) => d,
            Err(e) => {
                println!("netdemo: FAIL: cannot open vif 0: {e:?}");
                return;
            }
        };
        let mac = dev.mac();
        println!(
            "netdemo: mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
        );
        let be = String::from(dev.nodes().1);
        let ip = xb.read_string(&format!("{be}/ip")).ok();
        let addressing = match addressing(ip) {
            Ok(a) => a,
            Err(e) => {
                println!("netdemo: FAIL: ip: {e}");
                return;
            }
        };
        let seed = guest_sdk::time::rdtsc()
            ^ u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0]);
        let mut stack = NetStack::new(dev, addressing, seed, now_ns() / 1_000_000);
        // An address first (DHCP may take a few seconds).
        let deadline = now_ns() + 30_000_000_000;
        while stack.ipv4().is_none() {
            if now_ns() > deadline {
                println!("netdemo: FAIL: no address from DHCP");
                return;
            }
            step(&mut stack, 100_000_000);
        }
        if let Some(c) = stack.ipv4() {
            println!("netdemo: address {c}");
        }
        if let Some(p) = arg(cmd, "http").and_then(|p| p.parse().ok()) {
            http(&mut stack, p, &domid);
        }
        if let Some(p) = arg(cmd, "serve").and_then(|p| p.parse().ok()) {
            serve(&mut stack, p);
        }
        let bytes = arg(cmd, "bytes")
            .and_then(|b| b.parse().ok())
            .unwrap_or(10_000_000u64);
        let count = arg(cmd, "count")
            .and_then(|b| b.parse().ok())
            .unwrap_or(1000u64);
        let r = if let Some(t) = arg(cmd, "send") {
            client(&mut stack, t, Op::Sink, bytes)
        } else if let Some(t) = arg(cmd, "get") {
            client(&mut stack, t, Op::Give, bytes)
        } else if let Some(t) = arg(cmd, "rr") {
            client(&mut stack, t, Op::Echo, count)
        } else {
            Err(String::from(
                "nothing to do: http=PORT, serve=PORT, send=|get=|rr=A.B.C.D:PORT",
            ))
        };
        match r {
            Ok(s) => println!("{s}"),
            Err(e) => println!("netdemo: FAIL: {e}"),
        }
        let s = stack.nic().stats();
        println!(
            "netdemo: tx {} packets, rx {} packets",
            s.tx_packets, s.rx_packets
        );
        println!("netdemo: done");
        if arg(cmd, "stay") == Some("1") {
            loop {
                guest_sdk::sched::block();
            }
        }
    }
}
