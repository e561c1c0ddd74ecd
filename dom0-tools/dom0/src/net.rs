//! dom0's network: netback for every guest's vifs (`vif = [...]` in `xl.cfg`), the
//! software bridge `xenbr0` joining them (`dom0_tools::bridge`), dom0's own interface on
//! that bridge (a smoltcp stack, `pv_drivers::tcpip`), and QEMU's virtio-net when dom0
//! has one (`crate::nic`), so guests reach each other, dom0 and the world.
//!
//! Per vif, as libxl and Linux's xen-netback do it through XenStore:
//! 1. at create (or `xl network-attach`), the frontend directory
//!    `/local/domain/<d>/device/vif/<n>` (`backend`, `backend-id`, `handle`, `mac`,
//!    `state = 1`) and the backend directory `/local/domain/0/backend/vif/<d>/<n>`
//!    (`frontend`, `mac`, `bridge`, `ip` when given, features, `state = 2`);
//! 2. once the frontend is `Connected` (or `Initialised`): map its tx and rx ring grants,
//!    bind its event channel, add a bridge port pinned to the vif's MAC (a guest cannot
//!    send as anyone else), `state = 4`;
//! 3. frontend `Closing`/`Closed`, `xl network-detach`, or the domain gone: the port
//!    leaves the bridge (its learned addresses with it), rings unmapped, `state = 6`.
//!
//! Packets are copied with `GNTTABOP_copy` through a bounce page (never mapped): the
//! guest's tx slots are validated as a whole by `pv_drivers::netif::Backend` before
//! anything is copied, and a malformed packet is answered and dropped. Frames for a
//! guest wait in its bridge port's bounded queue until it posts receive buffers.

use crate::foreign::{CopyGrants, RingPage, Slot};
use crate::xenstored::Xenstored;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use dom0_tools::bridge::{Bridge, PortId};
use dom0_tools::vifspec::{format_mac, Mac, VifSpec};
use guest_sdk::events;
use pv_drivers::netif::{
    Backend, BackendConfig, BackendInfo, EventChannels, FrontendInfo, NetRxBackRing, NetTxBackRing,
    RxError, TxEvent,
};
use pv_drivers::tcpip::{Addressing, Ipv4Address, Ipv4Cidr, NetStack, Wire};

/// A vif's event channel fired, the NIC interrupted, or the stack's timer expired.
pub static NET_EVENT: AtomicBool = AtomicBool::new(false);

fn on_event(_port: u32) {
    NET_EVENT.store(true, Ordering::Release);
}

/// XenBus states (`xen/io/xenbus.h`).
const INITIALISING: u32 = 1;
const INIT_WAIT: u32 = 2;
const INITIALISED: u32 = 3;
const CONNECTED: u32 = 4;
const CLOSING: u32 = 5;
const CLOSED: u32 = 6;

/// The one bridge.
pub const BRIDGE: &str = "xenbr0";
/// Packets taken from one guest's tx ring per pass (a busy guest cannot starve others).
const TX_BUDGET: usize = 64;
/// dom0's address on the bridge when there is no DHCP server (no NIC).
pub const DOM0_STATIC: ([u8; 4], u8) = ([10, 0, 2, 15], 24);

/// A connected vif.
struct Conn {
    tx: NetTxBackRing<RingPage>,
    rx: NetRxBackRing<RingPage>,
    port: u32,
    /// Keep the rings mapped; dropped (unmapped) after them.
    _tx_slot: Slot,
    _rx_slot: Slot,
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = events::close(self.port);
    }
}

/// One vif of one domain.
struct Vif {
    domid: u16,
    devid: u32,
    mac: Mac,
    fe: String,
    be: String,
    backend: Backend,
    conn: Option<Conn>,
    /// The bridge port while connected.
    bport: Option<PortId>,
    state: u32,
    /// `xl network-detach` asked for it to go once the guest has closed it.
    detaching: bool,
    /// Its ring broke (a hostile index): disconnected, `Closed` to be published.
    broke: Option<String>,
}

/// dom0's network.
pub struct Net {
    bridge: Bridge,
    vifs: Vec<Vif>,
    grants: Option<CopyGrants>,
    /// dom0's own interface on the bridge.
    host: NetStack<Wire>,
    host_port: PortId,
    /// QEMU's NIC, when dom0 has one.
    nic: Option<(crate::nic::Nic, PortId)>,
    /// Whether dom0's address comes from DHCP (a NIC is there).
    dhcp: bool,
    /// `netbench serve`'s server, stepped by every pump.
    server: Option<pv_drivers::nb::Server>,
}

/// Wait (events enabled) until a network event or `deadline_ns`: for commands that
/// drive the network themselves (`netbench`).
pub fn wait(deadline_ns: u64) {
    let _ = guest_sdk::hypercall::set_timer_op(deadline_ns);
    events::disable();
    if NET_EVENT.swap(false, Ordering::AcqRel) {
        events::enable();
        return;
    }
    // SCHEDOP_block unmasks and returns at once if an event is already pending.
    guest_sdk::sched::block();
    NET_EVENT.store(false, Ordering::Release);
}

fn now_ns() -> u64 {
    guest_sdk::time::system_time_ns()
}

fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

impl Net {
    /// The bridge with dom0's interface on it, and the NIC when there is one (probed
    /// after the disks, with which it may share an interrupt line).
    pub fn new(disks: &crate::disk::Disks) -> Net {
        let mut bridge = Bridge::new();
        let seed = guest_sdk::time::rdtsc();
        let nic = crate::nic::Nic::probe(disks);
        let dhcp = nic.is_some();
        // dom0's interface: a locally administered MAC, fixed so hosts learn it once.
        let host_mac: Mac = [0x02, 0x16, 0x3e, 0, 0, 1];
        let addressing = if dhcp {
            Addressing::Dhcp
        } else {
            Addressing::Static {
                cidr: Ipv4Cidr::new(
                    Ipv4Address::new(
                        DOM0_STATIC.0[0],
                        DOM0_STATIC.0[1],
                        DOM0_STATIC.0[2],
                        DOM0_STATIC.0[3],
                    ),
                    DOM0_STATIC.1,
                ),
                gateway: None,
            }
        };
        let host = NetStack::new(Wire::new(host_mac), addressing, seed, now_ms());
        let host_port = bridge.add_port("dom0");
        let _ = bridge.set_port_mac(host_port, Some(host_mac));
        let nic = nic.map(|n| {
            let p = bridge.add_port("eth0");
            (n, p)
        });
        Net {
            bridge,
            vifs: Vec::new(),
            grants: CopyGrants::new(),
            host,
            host_port,
            nic,
            dhcp,
            server: None,
        }
    }

    /// `netbench serve PORT`: an `nb` server on dom0's interface.
    pub fn serve(&mut self, port: u16) -> Result<(), pv_drivers::tcpip::NetError> {
        self.server = Some(pv_drivers::nb::Server::new(&mut self.host, port)?);
        Ok(())
    }

    /// dom0's address, once it has one.
    pub fn address(&self) -> Option<Ipv4Cidr> {
        self.host.ipv4()
    }

    /// dom0's own stack (for its network commands).
    pub fn host(&mut self) -> &mut NetStack<Wire> {
        &mut self.host
    }

    /// Whether domain `domid` has vif `devid`.
    pub fn has(&self, domid: u16, devid: u32) -> bool {
        self.vifs
            .iter()
            .any(|v| v.domid == domid && v.devid == devid)
    }

    /// The next free device number of `domid`.
    pub fn next_devid(&self, domid: u16) -> u32 {
        (0..).find(|n| !self.has(domid, *n)).unwrap_or(0)
    }

    /// Set up vif `spec` (device `devid`, address `mac`) for domain `domid`: the frontend
    /// and backend directories and the backend's announcement (InitWait).
    pub fn add(
        &mut self,
        xs: &mut Xenstored,
        domid: u16,
        devid: u32,
        spec: &VifSpec,
        mac: Mac,
    ) -> Result<(), String> {
        if spec.bridge != BRIDGE {
            return Err(format!(
                "bridge {} does not exist (this dom0 has {BRIDGE})",
                spec.bridge
            ));
        }
        if self.has(domid, devid) {
            return Err(format!("device {devid} already exists"));
        }
        let nic_mac = self.nic.as_ref().map(|(n, _)| n.mac());
        if mac == self.host_mac() || Some(mac) == nic_mac {
            return Err(format!("MAC {} is dom0's own", format_mac(&mac)));
        }
        if let Some(v) = self.vifs.iter().find(|v| v.mac == mac) {
            return Err(format!(
                "MAC {} is already used by domain {} vif {}",
                format_mac(&mac),
                v.domid,
                v.devid
            ));
        }
        let fe = format!("/local/domain/{domid}/device/vif/{devid}");
        let be = format!("/local/domain/0/backend/vif/{domid}/{devid}");
        let e = |r: Result<(), String>, what: &str| r.map_err(|err| format!("{what}: {err}"));
        let guest = [format!("n{domid}"), String::from("r0")];
        let dom0 = [String::from("n0"), format!("r{domid}")];
        let guest: Vec<&str> = guest.iter().map(String::as_str).collect();
        let dom0: Vec<&str> = dom0.iter().map(String::as_str).collect();
        e(xs.mkdir(&fe), &fe)?;
        e(xs.set_perms(&fe, &guest), &fe)?;
        e(xs.mkdir(&be), &be)?;
        e(xs.set_perms(&be, &dom0), &be)?;
        let mac_s = format_mac(&mac);
        let fe_keys = [
            ("backend", be.clone()),
            ("backend-id", String::from("0")),
            ("handle", devid.to_string()),
            ("mac", mac_s.clone()),
            ("mtu", spec.mtu.to_string()),
            ("state", INITIALISING.to_string()),
        ];
        for (k, v) in fe_keys {
            let p = format!("{fe}/{k}");
            e(xs.write(&p, v.as_bytes()), &p)?;
        }
        let announce = BackendInfo {
            mac: Some(mac),
            handle: Some(devid),
            feature_rx_copy: true,
            feature_rx_flip: false,
            feature_sg: true,
            // No checksum offload: frames always carry complete checksums.
            feature_no_csum_offload: true,
            ..BackendInfo::default()
        };
        let mut be_keys: Vec<(String, String)> = alloc::vec![
            ("frontend".into(), fe.clone()),
            ("frontend-id".into(), domid.to_string()),
            ("online".into(), "1".into()),
            ("script".into(), "vif-bridge".into()),
            ("bridge".into(), spec.bridge.clone()),
            ("type".into(), "vif".into()),
            ("mtu".into(), spec.mtu.to_string()),
        ];
        if let Some(ip) = &spec.ip {
            be_keys.push(("ip".into(), ip.clone()));
        }
        if let Some(r) = &spec.rate {
            be_keys.push(("rate".into(), r.clone()));
        }
        be_keys.extend(
            announce
                .to_xenstore()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
        );
        be_keys.push(("state".into(), INIT_WAIT.to_string()));
        for (k, v) in be_keys {
            let p = format!("{be}/{k}");
            e(xs.write(&p, v.as_bytes()), &p)?;
        }
        self.vifs.push(Vif {
            domid,
            devid,
            mac,
            fe,
            be,
            backend: Backend::new(domid, BackendConfig::default()),
            conn: None,
            bport: None,
            state: INIT_WAIT,
            detaching: false,
            broke: None,
        });
        Ok(())
    }

    /// The vif of `domid` named by `dev`: a device number, or a MAC (it has a `:`).
    pub fn find_devid(&self, domid: u16, dev: &str) -> Option<u32> {
        if dev.contains(':') {
            let mac = dom0_tools::vifspec::parse_mac(dev)?;
            self.vifs
                .iter()
                .find(|v| v.domid == domid && v.mac == mac)
                .map(|v| v.devid)
        } else {
            let n = dev.parse::<u32>().ok()?;
            self.has(domid, n).then_some(n)
        }
    }

    /// `xl network-detach`: ask the guest to let go (backend `Closing`); the vif goes
    /// once the frontend is closed, or at once when it never connected.
    pub fn detach(&mut self, xs: &mut Xenstored, domid: u16, devid: u32) -> bool {
        let Some(v) = self
            .vifs
            .iter_mut()
            .find(|v| v.domid == domid && v.devid == devid)
        else {
            return false;
        };
        v.detaching = true;
        if v.conn.is_none() {
            v.state = CLOSED;
        } else {
            set_state(xs, v, CLOSING);
        }
        self.reap(xs);
        true
    }

    fn disconnect(bridge: &mut Bridge, v: &mut Vif) {
        v.conn = None;
        if let Some(p) = v.bport.take() {
            let _ = bridge.remove_port(p);
        }
    }

    /// Remove detached vifs that are closed: their nodes on both sides.
    fn reap(&mut self, xs: &mut Xenstored) {
        let bridge = &mut self.bridge;
        self.vifs.retain_mut(|v| {
            if !(v.detaching && v.state == CLOSED) {
                return true;
            }
            Self::disconnect(bridge, v);
            let _ = xs.rm(&v.be);
            let _ = xs.rm(&v.fe);
            false
        });
    }

    /// Domain `domid` is gone: drop its vifs, their ports and backend directories.
    pub fn remove_domain(&mut self, xs: &mut Xenstored, domid: u16) {
        let bridge = &mut self.bridge;
        self.vifs.retain_mut(|v| {
            if v.domid != domid {
                return true;
            }
            Self::disconnect(bridge, v);
            let _ = xs.rm(&v.be);
            false
        });
        let _ = xs.rm(&format!("/local/domain/0/backend/vif/{domid}"));
    }

    /// Follow the frontends' states (connect, disconnect) after a store event.
    pub fn poll_store(&mut self, xs: &mut Xenstored) {
        for v in self.vifs.iter_mut() {
            if let Some(why) = v.broke.take() {
                let _ = xs.write(&format!("{}/error", v.be), why.as_bytes());
                set_state(xs, v, CLOSED);
                continue;
            }
            let fe_state = xs.read_u32(&format!("{}/state", v.fe)).unwrap_or(CLOSED);
            match (v.conn.is_some(), fe_state) {
                (false, INITIALISED | CONNECTED) if v.state == INIT_WAIT => match connect(xs, v) {
                    Ok(c) => {
                        v.conn = Some(c);
                        let name = format!("vif{}.{}", v.domid, v.devid);
                        let p = self.bridge.add_port(&name);
                        // Anti-spoofing: frames from the vif must carry its MAC.
                        if let Err(e) = self.bridge.set_port_mac(p, Some(v.mac)) {
                            let _ = self.bridge.remove_port(p);
                            v.conn = None;
                            let _ = xs.write(&format!("{}/error", v.be), format!("{e}").as_bytes());
                            set_state(xs, v, CLOSED);
                            continue;
                        }
                        v.bport = Some(p);
                        set_state(xs, v, CONNECTED);
                        NET_EVENT.store(true, Ordering::Release);
                    }
                    Err(e) => {
                        guest_sdk::println!(
                            "netback: domain {} vif {}: cannot connect: {e}",
                            v.domid,
                            v.devid
                        );
                        let _ = xs.write(&format!("{}/error", v.be), e.as_bytes());
                        set_state(xs, v, CLOSED);
                    }
                },
                // Linux's xen-netback and libxl's order: the frontend's Closing is
                // answered with Closing (rings unmapped, off the bridge), and Closed is
                // published, and a detached vif's nodes removed, only once the frontend
                // is Closed, so its own last write still finds its directory.
                (true, CLOSING) => {
                    Self::disconnect(&mut self.bridge, v);
                    set_state(xs, v, CLOSING);
                }
                (true, CLOSED) => {
                    Self::disconnect(&mut self.bridge, v);
                    set_state(xs, v, CLOSED);
                }
                (false, CLOSED) if v.detaching || v.state == CLOSING => set_state(xs, v, CLOSED),
                _ => {}
            }
        }
        self.reap(xs);
    }

    /// Move packets until nothing moves: guests' tx rings, the NIC and dom0's stack into
    /// the bridge; the bridge's queues out to guests' rx rings, the NIC and dom0's
    /// stack. Then arm the timer for dom0's stack. True if a vif broke (its `Closed`
    /// is published by the next [`Net::poll_store`]).
    pub fn pump(&mut self) -> bool {
        let mut broke = false;
        let Some(grants) = self.grants.as_mut() else {
            return false;
        };
        // Bounded: a flooding guest may keep every ring full; dom0 goes back to its
        // shell and other devices between passes (NET_EVENT stays set for more).
        for round in 0..8 {
            let now = now_ns();
            let mut moved = 0usize;
            // Guests' transmissions.
            for v in self.vifs.iter_mut() {
                let (Some(c), Some(p)) = (v.conn.as_mut(), v.bport) else {
                    continue;
                };
                let bridge = &mut self.bridge;
                let r = v.backend.service_tx(&mut c.tx, grants, TX_BUDGET, |ev| {
                    if let TxEvent::Packet(pkt) = ev {
                        let _ = bridge.input(p, &pkt.data, now);
                    }
                });
                match r {
                    Ok(s) => {
                        moved += s.handled;
                        if s.notify {
                            let _ = events::send(c.port);
                        }
                        if s.more {
                            NET_EVENT.store(true, Ordering::Release);
                        }
                    }
                    Err(e) => {
                        guest_sdk::println!(
                            "netback: domain {} vif {}: broken tx ring ({e:?}), disconnected",
                            v.domid,
                            v.devid
                        );
                        v.broke = Some(format!("broken tx ring: {e:?}"));
                        Self::disconnect(&mut self.bridge, v);
                        broke = true;
                    }
                }
            }
            // The NIC's receptions.
            if let Some((nic, p)) = self.nic.as_mut() {
                let bridge = &mut self.bridge;
                moved += nic.receive(|f| {
                    let _ = bridge.input(*p, f, now);
                });
            }
            // dom0's stack.
            self.host.poll(now / 1_000_000);
            if let Some(srv) = self.server.as_mut() {
                if let Some(o) = srv.step(&mut self.host) {
                    guest_sdk::println!(
                        "netbench: served {:?} {} of {} intact: {}",
                        o.op,
                        o.good,
                        o.count,
                        if o.ok { "PASS" } else { "FAIL" }
                    );
                }
            }
            while let Some(f) = self.host.nic().out.pop_front() {
                let _ = self.bridge.input(self.host_port, &f, now);
                moved += 1;
            }
            // Deliveries.
            while let Some(f) = self.bridge.pop(self.host_port) {
                self.host.nic().inbox.push_back(f);
                moved += 1;
            }
            if let Some((nic, p)) = self.nic.as_mut() {
                while let Some(f) = self.bridge.peek(*p) {
                    if !nic.transmit(f) {
                        break;
                    }
                    let _ = self.bridge.pop(*p);
                    moved += 1;
                }
            }
            for v in self.vifs.iter_mut() {
                let (Some(c), Some(p)) = (v.conn.as_mut(), v.bport) else {
                    continue;
                };
                let mut notify = false;
                let mut ring_err = None;
                while let Some(f) = self.bridge.peek(p) {
                    let needed = f.len().div_ceil(4096);
                    match v.backend.wait_for_buffers(&mut c.rx, needed) {
                        Ok(()) => {}
                        // The guest notifies when it posts more (req_event is set).
                        Err(RxError::NoBuffers { .. }) => break,
                        Err(_) => break,
                    }
                    match v.backend.deliver_rx(&mut c.rx, grants, f, 0) {
                        Ok(s) => notify |= s.notify,
                        Err(RxError::NoBuffers { .. }) => break,
                        Err(RxError::Ring(e)) => {
                            ring_err = Some(e);
                            break;
                        }
                        Err(RxError::BadPacket) => {}
                    }
                    let _ = self.bridge.pop(p);
                    moved += 1;
                }
                if notify {
                    let _ = events::send(c.port);
                }
                if let Some(e) = ring_err {
                    guest_sdk::println!(
                        "netback: domain {} vif {}: broken rx ring ({e:?}), disconnected",
                        v.domid,
                        v.devid
                    );
                    v.broke = Some(format!("broken rx ring: {e:?}"));
                    Self::disconnect(&mut self.bridge, v);
                    broke = true;
                }
            }
            if moved == 0 {
                break;
            }
            if round == 7 {
                NET_EVENT.store(true, Ordering::Release);
            }
        }
        // Wake up for dom0's stack's timers (TCP retransmissions, DHCP).
        let now = now_ms();
        if let Some(d) = self.host.poll_delay_ms(now) {
            let at = (now + d.max(1)) * 1_000_000;
            let _ = guest_sdk::hypercall::set_timer_op(at);
        }
        broke
    }

    /// `xl network-list DOMAIN`: xl's columns, one line per vif.
    pub fn list(&self, xs: &mut Xenstored, domid: u16) -> String {
        let mut o = String::new();
        for v in self.vifs.iter().filter(|v| v.domid == domid) {
            let fe_num = |xs: &mut Xenstored, k: &str| -> i64 {
                xs.read_u32(&format!("{}/{k}", v.fe)).map_or(-1, i64::from)
            };
            let evtch = fe_num(xs, "event-channel");
            let tx = fe_num(xs, "tx-ring-ref");
            let rx = fe_num(xs, "rx-ring-ref");
            o.push_str(&format!(
                "{:<3} {:<2} {} {:>6} {:>5} {:>6} {:>5}/{:<11} {:<30}\n",
                v.devid,
                0,
                format_mac(&v.mac),
                v.devid,
                v.state,
                evtch,
                tx,
                rx,
                v.be
            ));
        }
        o
    }

    /// `brctl show` and `brctl showmacs xenbr0`, and each port's counters.
    pub fn describe(&self, macs: bool) -> String {
        let mut o = String::new();
        if macs {
            o.push_str("port no\tmac addr\t\t\tis local?\tageing timer\n");
            for e in self.bridge.fdb(now_ns()) {
                o.push_str(&format!(
                    "{:>3}\t{}\t{}\t\t{:>4}.{:02}\n",
                    e.port.number(),
                    format_mac(&e.mac),
                    if e.is_static { "yes" } else { "no" },
                    e.age_ns / 1_000_000_000,
                    (e.age_ns / 10_000_000) % 100
                ));
            }
            return o;
        }
        o.push_str("bridge name\tbridge id\t\tSTP enabled\tinterfaces\n");
        let names: Vec<&str> = self
            .bridge
            .ports()
            .filter_map(|p| self.bridge.port_name(p))
            .collect();
        o.push_str(&format!(
            "{BRIDGE}\t\t8000.02163e000001\tno\t\t{}\n",
            names.join("\n\t\t\t\t\t\t\t")
        ));
        for p in self.bridge.ports() {
            if let (Some(n), Some(s)) = (self.bridge.port_name(p), self.bridge.stats(p)) {
                o.push_str(&format!(
                    "  {n}: rx {} frames {} bytes ({} dropped), tx {} frames {} bytes ({} dropped)\n",
                    s.rx_frames, s.rx_bytes, s.rx_dropped, s.tx_frames, s.tx_bytes, s.tx_dropped
                ));
            }
        }
        for v in self.vifs.iter() {
            let s = v.backend.stats();
            o.push_str(&format!(
                "  vif{}.{} netback: tx {} packets, {} malformed, {} grant errors; rx {} packets, {} dropped\n",
                v.domid, v.devid, s.tx_packets, s.tx_dropped, s.tx_errors, s.rx_packets, s.rx_dropped
            ));
        }
        o
    }

    /// dom0's interface, for `ifconfig`.
    pub fn ifconfig(&self) -> String {
        let addr = match self.host.ipv4() {
            Some(c) => format!("{c}"),
            None if self.dhcp => String::from("(waiting for DHCP)"),
            None => String::from("(none)"),
        };
        let nic = match &self.nic {
            Some((n, _)) => format!("eth0: virtio-net {} in {BRIDGE}\n", format_mac(&n.mac())),
            None => String::from("eth0: none (no virtio-net device)\n"),
        };
        format!(
            "{BRIDGE}: inet {addr} ether {}\n{nic}",
            format_mac(&self.host_mac())
        )
    }

    fn host_mac(&self) -> Mac {
        [0x02, 0x16, 0x3e, 0, 0, 1]
    }
}

fn set_state(xs: &mut Xenstored, v: &mut Vif, state: u32) {
    v.state = state;
    let _ = xs.write(&format!("{}/state", v.be), state.to_string().as_bytes());
}

/// Map the frontend's rings and bind its channel.
fn connect(xs: &mut Xenstored, v: &mut Vif) -> Result<Conn, String> {
    let fe = v.fe.clone();
    let info = FrontendInfo::from_xenstore(|k| xs.read_string(&format!("{fe}/{k}")))
        .map_err(|e| format!("frontend keys: {e:?}"))?;
    if !info.request_rx_copy {
        return Err(String::from(
            "the frontend wants page flipping (no request-rx-copy)",
        ));
    }
    let evtchn = match info.event_channels {
        EventChannels::Single(p) => p,
        EventChannels::Split { .. } => {
            return Err(String::from("split event channels were not offered"))
        }
    };
    let mut tx_slot = Slot::new().map_err(|e| format!("no slot: {e:?}"))?;
    let tx_va = tx_slot
        .map_grant(v.domid, info.tx_ring_ref, false)
        .map_err(|e| format!("mapping tx-ring-ref {}: {e:?}", info.tx_ring_ref))?;
    let mut rx_slot = Slot::new().map_err(|e| format!("no slot: {e:?}"))?;
    let rx_va = rx_slot
        .map_grant(v.domid, info.rx_ring_ref, false)
        .map_err(|e| format!("mapping rx-ring-ref {}: {e:?}", info.rx_ring_ref))?;
    let tx = NetTxBackRing::attach(RingPage(tx_va as *mut u8), 0)
        .map_err(|e| format!("tx ring: {e:?}"))?;
    let rx = NetRxBackRing::attach(RingPage(rx_va as *mut u8), 0)
        .map_err(|e| format!("rx ring: {e:?}"))?;
    let port = events::bind_interdomain(v.domid, evtchn)
        .map_err(|e| format!("binding event-channel {evtchn}: {e:?}"))?;
    let _ = events::set_handler(port, on_event);
    let _ = events::unmask(port);
    Ok(Conn {
        tx,
        rx,
        port,
        _tx_slot: tx_slot,
        _rx_slot: rx_slot,
    })
}
