//! A TCP/IP stack over any Ethernet device: [`smoltcp`] wired to a [`Nic`] (netfront in
//! a guest, the bridge's host port in dom0, or an in-memory wire in tests).
//!
//! [`NetStack`] owns the device, smoltcp's `Interface` and its sockets, and configures
//! the address statically ([`Addressing::Static`], from `ip=` in the guest's `vif`
//! entry) or by DHCP ([`Addressing::Dhcp`]). Time is passed in by the caller (ms of a
//! monotonic clock), so the stack is pure and host-tested: two stacks joined by a
//! [`Wire`] talk TCP in this module's tests.
//!
//! Blocking helpers ([`NetStack::run_until`]) take the kernel's clock and wait function
//! as closures; a PV guest passes `guest_sdk::time` and an event-channel wait.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::{dhcpv4, tcp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint};

pub use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

/// An Ethernet device: one frame in, one frame out, never blocking.
pub trait Nic {
    /// The device's MAC address.
    fn mac(&self) -> [u8; 6];
    /// The largest IP packet (1500 for Ethernet).
    fn mtu(&self) -> usize {
        1500
    }
    /// Send one frame (Ethernet header included); false if the device has no room for
    /// it now (the frame is dropped, as a full NIC queue drops).
    fn send(&mut self, frame: &[u8]) -> bool;
    /// Whether a full-sized frame would be taken now. While it is not, the stack keeps
    /// its data queued in the sockets instead of handing frames to be dropped (which
    /// would cost a retransmission timeout).
    fn can_send(&self) -> bool {
        true
    }
    /// Give the next received frame to `f`; false if none is waiting.
    fn recv(&mut self, f: &mut dyn FnMut(&[u8])) -> bool;
}

/// The largest Ethernet frame the stack sends or takes (1500 + 14 header bytes).
pub const MAX_FRAME: usize = 1514;

/// smoltcp's view of a [`Nic`].
struct Phy<'a, N: Nic>(&'a mut N);

/// A received frame, copied out of the device.
pub struct Rx(Vec<u8>);

/// The right to send one frame.
pub struct Tx<'a, N: Nic>(&'a mut N);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl<N: Nic> TxToken for Tx<'_, N> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = [0u8; MAX_FRAME];
        let len = len.min(MAX_FRAME);
        let r = f(&mut buf[..len]);
        let _ = self.0.send(&buf[..len]);
        r
    }
}

impl<N: Nic> Device for Phy<'_, N> {
    type RxToken<'b>
        = Rx
    where
        Self: 'b;
    type TxToken<'b>
        = Tx<'b, N>
    where
        Self: 'b;

    fn receive(&mut self, _t: Instant) -> Option<(Rx, Tx<'_, N>)> {
        let mut got: Option<Vec<u8>> = None;
        if !self.0.recv(&mut |f| got = Some(f.to_vec())) {
            return None;
        }
        got.map(|f| (Rx(f), Tx(&mut *self.0)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<Tx<'_, N>> {
        self.0.can_send().then_some(Tx(&mut *self.0))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = self.0.mtu() + 14;
        c
    }
}

/// How the stack gets its IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// Ask a DHCP server on the link.
    Dhcp,
    /// This address and prefix, and this default gateway if any.
    Static {
        /// The address and prefix length.
        cidr: Ipv4Cidr,
        /// The default route.
        gateway: Option<Ipv4Address>,
    },
}

/// Why a socket call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// No address yet (DHCP has not answered).
    NoAddress,
    /// smoltcp refused (bad endpoint, socket state).
    Refused,
    /// The connection was reset or closed before the operation completed.
    Closed,
    /// The deadline passed.
    Timeout,
}

/// A TCP/IP stack on one device.
pub struct NetStack<N: Nic> {
    nic: N,
    iface: Interface,
    sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    next_port: u16,
}

/// TCP buffer size per direction for sockets made by [`NetStack::tcp_socket`].
pub const TCP_BUFFER: usize = 64 * 1024;

impl<N: Nic> NetStack<N> {
    /// A stack on `nic`, `seed` making its TCP sequence numbers and ports differ from
    /// boot to boot.
    pub fn new(mut nic: N, addressing: Addressing, seed: u64, now_ms: u64) -> Self {
        let mac = EthernetAddress(nic.mac());
        let mut config = Config::new(HardwareAddress::Ethernet(mac));
        config.random_seed = seed;
        let iface = Interface::new(
            config,
            &mut Phy(&mut nic),
            Instant::from_millis(now_ms as i64),
        );
        let mut s = NetStack {
            nic,
            iface,
            sockets: SocketSet::new(Vec::new()),
            dhcp: None,
            next_port: 49152 + (seed % 8192) as u16,
        };
        match addressing {
            Addressing::Dhcp => {
                let h = s.sockets.add(dhcpv4::Socket::new());
                s.dhcp = Some(h);
            }
            Addressing::Static { cidr, gateway } => s.set_ipv4(Some(cidr), gateway),
        }
        s
    }

    fn set_ipv4(&mut self, cidr: Option<Ipv4Cidr>, gateway: Option<Ipv4Address>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            if let Some(c) = cidr {
                let _ = addrs.push(IpCidr::Ipv4(c));
            }
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(gw) = gateway {
            let _ = self.iface.routes_mut().add_default_ipv4_route(gw);
        }
    }

    /// The device.
    pub fn nic(&mut self) -> &mut N {
        &mut self.nic
    }

    /// The device back, the stack and its sockets dropped (to close it).
    pub fn into_nic(self) -> N {
        self.nic
    }

    /// Our IPv4 address, once we have one.
    pub fn ipv4(&self) -> Option<Ipv4Cidr> {
        #[allow(unreachable_patterns)] // IPv6 may be enabled by another crate
        self.iface.ip_addrs().iter().find_map(|a| match a {
            IpCidr::Ipv4(c) => Some(*c),
            _ => None,
        })
    }

    /// Process what the device received and what the sockets want to send. True if
    /// some socket's state may have changed.
    pub fn poll(&mut self, now_ms: u64) -> bool {
        let t = Instant::from_millis(now_ms as i64);
        let r = self
            .iface
            .poll(t, &mut Phy(&mut self.nic), &mut self.sockets);
        if let Some(h) = self.dhcp {
            let ev = self.sockets.get_mut::<dhcpv4::Socket>(h).poll();
            match ev {
                Some(dhcpv4::Event::Configured(c)) => {
                    let (a, r) = (c.address, c.router);
                    self.set_ipv4(Some(a), r);
                }
                Some(dhcpv4::Event::Deconfigured) => self.set_ipv4(None, None),
                None => {}
            }
        }
        r == PollResult::SocketStateChanged
    }

    /// How long until the stack wants to be polled again without new input (ms), if it
    /// has timers running.
    pub fn poll_delay_ms(&mut self, now_ms: u64) -> Option<u64> {
        self.iface
            .poll_delay(Instant::from_millis(now_ms as i64), &self.sockets)
            .map(|d| d.total_millis())
    }

    /// A TCP socket with [`TCP_BUFFER`]-byte buffers.
    pub fn tcp_socket(&mut self) -> SocketHandle {
        let rx = tcp::SocketBuffer::new(vec![0u8; TCP_BUFFER]);
        let tx = tcp::SocketBuffer::new(vec![0u8; TCP_BUFFER]);
        self.sockets.add(tcp::Socket::new(rx, tx))
    }

    /// A TCP socket listening on `port`.
    pub fn tcp_listen(&mut self, port: u16) -> Result<SocketHandle, NetError> {
        let h = self.tcp_socket();
        self.tcp(h).listen(port).map_err(|_| NetError::Refused)?;
        Ok(h)
    }

    /// A TCP socket connecting to `addr:port` (from an ephemeral port).
    pub fn tcp_connect(&mut self, addr: Ipv4Address, port: u16) -> Result<SocketHandle, NetError> {
        if self.ipv4().is_none() {
            return Err(NetError::NoAddress);
        }
        let h = self.tcp_socket();
        let local = self.next_port;
        self.next_port = if local >= 65000 { 49152 } else { local + 1 };
        let remote = IpEndpoint::new(IpAddress::Ipv4(addr), port);
        let cx = self.iface.context();
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        s.connect(cx, remote, local)
            .map_err(|_| NetError::Refused)?;
        Ok(h)
    }

    /// The TCP socket `h`.
    pub fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    /// Forget socket `h` (abort it first if still open).
    pub fn remove(&mut self, h: SocketHandle) {
        self.sockets.remove(h);
    }

    /// Poll until `done` says so or `deadline_ms` passes. `now` reads the clock (ms);
    /// `wait(until_ms)` waits for the device or the clock (a spurious return is fine).
    pub fn run_until(
        &mut self,
        now: &dyn Fn() -> u64,
        wait: &dyn Fn(u64),
        deadline_ms: u64,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> Result<(), NetError> {
        loop {
            let t = now();
            self.poll(t);
            if done(self) {
                return Ok(());
            }
            if t >= deadline_ms {
                return Err(NetError::Timeout);
            }
            let next = self
                .poll_delay_ms(t)
                .map_or(deadline_ms, |d| t.saturating_add(d.max(1)))
                .min(deadline_ms);
            wait(next);
        }
    }
}

/// One end of an in-memory Ethernet cable (tests, and dom0's loopback benchmark).
#[derive(Debug, Default)]
pub struct Wire {
    mac: [u8; 6],
    /// Frames this end sent, for the other end.
    pub out: VecDeque<Vec<u8>>,
    /// Frames for this end.
    pub inbox: VecDeque<Vec<u8>>,
}

impl Wire {
    /// An end with address `mac`.
    pub fn new(mac: [u8; 6]) -> Wire {
        Wire {
            mac,
            ..Default::default()
        }
    }

    /// Move what `a` sent to `b` and the other way round; the number of frames moved.
    pub fn exchange(a: &mut Wire, b: &mut Wire) -> usize {
        let n = a.out.len() + b.out.len();
        b.inbox.extend(a.out.drain(..));
        a.inbox.extend(b.out.drain(..));
        n
    }
}

impl Nic for Wire {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn send(&mut self, frame: &[u8]) -> bool {
        self.out.push_back(frame.to_vec());
        true
    }
    fn recv(&mut self, f: &mut dyn FnMut(&[u8])) -> bool {
        match self.inbox.pop_front() {
            Some(fr) => {
                f(&fr);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (NetStack<Wire>, NetStack<Wire>) {
        let a = NetStack::new(
            Wire::new([0, 0x16, 0x3e, 0, 0, 1]),
            Addressing::Static {
                cidr: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 1), 24),
                gateway: None,
            },
            1,
            0,
        );
        let b = NetStack::new(
            Wire::new([0, 0x16, 0x3e, 0, 0, 2]),
            Addressing::Static {
                cidr: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 2), 24),
                gateway: None,
            },
            2,
            0,
        );
        (a, b)
    }

    /// Poll both stacks and move frames until `done` or a step limit.
    fn run(
        a: &mut NetStack<Wire>,
        b: &mut NetStack<Wire>,
        t: &mut u64,
        mut done: impl FnMut(&mut NetStack<Wire>, &mut NetStack<Wire>) -> bool,
    ) -> bool {
        for _ in 0..200_000 {
            a.poll(*t);
            b.poll(*t);
            Wire::exchange(a.nic(), b.nic());
            if done(a, b) {
                return true;
            }
            *t += 1;
        }
        false
    }

    #[test]
    fn tcp_carries_a_megabyte_intact() {
        let (mut a, mut b) = pair();
        let mut t = 0;
        let l = b.tcp_listen(5000).unwrap();
        let c = a.tcp_connect(Ipv4Address::new(10, 0, 0, 2), 5000).unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut sent = 0usize;
        let mut got: Vec<u8> = Vec::new();
        assert!(run(&mut a, &mut b, &mut t, |a, b| {
            let s = a.tcp(c);
            if s.can_send() && sent < data.len() {
                sent += s.send_slice(&data[sent..]).unwrap();
            }
            if sent == data.len() && s.send_queue() == 0 {
                s.close();
            }
            let r = b.tcp(l);
            while r.can_recv() {
                r.recv(|buf| {
                    got.extend_from_slice(buf);
                    (buf.len(), ())
                })
                .unwrap();
            }
            got.len() == data.len()
        }));
        assert!(got == data, "the received bytes differ");
    }

    #[test]
    fn connecting_to_a_closed_port_is_reset() {
        let (mut a, mut b) = pair();
        let mut t = 0;
        let c = a.tcp_connect(Ipv4Address::new(10, 0, 0, 2), 81).unwrap();
        assert!(run(&mut a, &mut b, &mut t, |a, _| !a.tcp(c).is_open()));
        assert!(!a.tcp(c).may_send());
    }

    #[test]
    fn no_address_no_connect() {
        let mut s = NetStack::new(Wire::new([0, 0x16, 0x3e, 0, 0, 9]), Addressing::Dhcp, 3, 0);
        assert_eq!(s.ipv4(), None);
        assert_eq!(
            s.tcp_connect(Ipv4Address::new(10, 0, 0, 2), 80).err(),
            Some(NetError::NoAddress)
        );
        // The DHCP client asks: a DISCOVER goes out (UDP 68 -> 67, broadcast).
        s.poll(0);
        let f = s.nic().out.pop_front().expect("a DHCP discover");
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
    }

    /// A wire that takes only `room` frames until it is drained.
    struct Narrow {
        w: Wire,
        room: usize,
        refused: usize,
    }

    impl Nic for Narrow {
        fn mac(&self) -> [u8; 6] {
            self.w.mac()
        }
        fn send(&mut self, f: &[u8]) -> bool {
            if self.w.out.len() >= self.room {
                self.refused += 1;
                return false;
            }
            self.w.send(f)
        }
        fn recv(&mut self, f: &mut dyn FnMut(&[u8])) -> bool {
            self.w.recv(f)
        }
        fn can_send(&self) -> bool {
            self.w.out.len() < self.room
        }
    }

    #[test]
    fn a_full_device_holds_data_back_instead_of_dropping_it() {
        let cidr = |l| Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, l), 24);
        let mut a = NetStack::new(
            Narrow {
                w: Wire::new([0, 0x16, 0x3e, 0, 0, 1]),
                room: 2,
                refused: 0,
            },
            Addressing::Static {
                cidr: cidr(1),
                gateway: None,
            },
            1,
            0,
        );
        let mut b = NetStack::new(
            Wire::new([0, 0x16, 0x3e, 0, 0, 2]),
            Addressing::Static {
                cidr: cidr(2),
                gateway: None,
            },
            2,
            0,
        );
        let l = b.tcp_listen(5000).unwrap();
        let c = a.tcp_connect(Ipv4Address::new(10, 0, 0, 2), 5000).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let (mut sent, mut got) = (0usize, Vec::new());
        for t in 0..100_000 {
            a.poll(t);
            b.poll(t);
            Wire::exchange(&mut a.nic().w, b.nic());
            let s = a.tcp(c);
            if s.can_send() && sent < data.len() {
                sent += s.send_slice(&data[sent..]).unwrap();
            }
            let r = b.tcp(l);
            while r.can_recv() {
                r.recv(|buf| {
                    got.extend_from_slice(buf);
                    (buf.len(), ())
                })
                .unwrap();
            }
            if got.len() == data.len() {
                break;
            }
        }
        assert!(got == data, "{} of {} bytes arrived", got.len(), data.len());
        // Nothing was handed to the device while it was full (so nothing was lost).
        assert_eq!(a.nic().refused, 0);
    }

    #[test]
    fn garbage_frames_are_ignored() {
        let (mut a, _) = pair();
        for n in [0usize, 1, 13, 14, 60, 1514, 3000] {
            let f: Vec<u8> = (0..n).map(|i| (i * 31 + n) as u8).collect();
            a.nic().inbox.push_back(f);
        }
        a.poll(0);
        assert!(a.nic().inbox.is_empty());
    }
}
