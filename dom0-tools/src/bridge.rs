//! A software Ethernet bridge: the policy dom0's netback uses to join the guests' vifs
//! and the physical NIC, as Linux's `xenbr0` does.
//!
//! - Ports come and go at runtime ([`Bridge::add_port`], [`Bridge::remove_port`]); a
//!   [`PortId`] is never reused, so a stale id addresses nothing.
//! - [`Bridge::input`] validates a frame (14..=1514 bytes, 1518 with an 802.1Q tag; a
//!   source MAC that is zero, multicast or broadcast is dropped), learns its source MAC
//!   on the ingress port and forwards it: a known unicast destination goes to that port
//!   only, broadcast, multicast and unknown unicast are flooded to every other port.
//!   Nothing is ever sent back to the ingress port: a destination learned there is
//!   dropped (Linux's "filtered"). IEEE 802.1D link-local groups (`01:80:c2:00:00:0x`,
//!   STP and friends) are never forwarded, as Linux does by default.
//! - The forwarding database (FDB) ages entries out (300 s by default) and is bounded
//!   (1024 learned entries by default): when full, the entry seen longest ago is evicted,
//!   so a guest flooding random source MACs cannot grow dom0's memory.
//! - A port may have its MAC pinned ([`Bridge::set_port_mac`], for a vif whose MAC is
//!   configured): frames from it with another source MAC are dropped (anti-spoofing), and
//!   the MAC is a static FDB entry that learning on other ports does not move.
//! - Each port has a bounded output queue (frames and bytes, [`QueueLimits`]): a full
//!   queue drops the frame for that port only. The port's driver takes frames with
//!   [`Bridge::pop`] (or looks first with [`Bridge::peek`]).
//!
//! Time is the caller's monotonic clock in nanoseconds; a clock that steps back is
//! treated as standing still.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub use crate::vifspec::Mac;

/// Length of the Ethernet header (destination, source, EtherType).
pub const ETH_HLEN: usize = 14;
/// Largest untagged frame without FCS (1500-byte MTU).
pub const ETH_FRAME_MAX: usize = 1514;
/// Length of an 802.1Q tag.
pub const VLAN_HLEN: usize = 4;
/// Largest frame with one 802.1Q tag.
pub const ETH_FRAME_MAX_VLAN: usize = ETH_FRAME_MAX + VLAN_HLEN;
/// The 802.1Q TPID.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Default FDB ageing time: 300 s, as Linux.
pub const DEFAULT_AGEING_NS: u64 = 300_000_000_000;
/// Default bound of learned FDB entries.
pub const DEFAULT_FDB_MAX: usize = 1024;
/// The broadcast address.
pub const BROADCAST: Mac = [0xff; 6];

/// Whether `m` is a group (multicast or broadcast) address.
pub fn is_multicast(m: &Mac) -> bool {
    m[0] & 1 != 0
}

/// Whether `m` can be a station's source address: not zero, not a group address.
pub fn is_valid_source(m: &Mac) -> bool {
    !is_multicast(m) && *m != [0; 6]
}

/// Whether `m` is an IEEE 802.1D reserved link-local group (`01:80:c2:00:00:00..0f`).
pub fn is_link_local(m: &Mac) -> bool {
    m[..5] == [0x01, 0x80, 0xc2, 0x00, 0x00] && m[5] & 0xf0 == 0
}

/// A bridge port. Never reused after [`Bridge::remove_port`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(u32);

impl PortId {
    /// The number (`brctl showmacs`' port number).
    pub fn number(self) -> u32 {
        self.0
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Bounds of a port's output queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most frames queued.
    pub frames: usize,
    /// Most bytes queued (sum of frame lengths).
    pub bytes: usize,
}

impl QueueLimits {
    /// 256 frames, 256 KiB.
    pub const DEFAULT: QueueLimits = QueueLimits {
        frames: 256,
        bytes: 256 * 1024,
    };
}

impl Default for QueueLimits {
    fn default() -> QueueLimits {
        QueueLimits::DEFAULT
    }
}

/// Per-port counters. `rx` is what the port gave the bridge, `tx` what the bridge queued
/// for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received and accepted (valid, not spoofed), forwarded or not.
    pub rx_frames: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames dropped on input, for any [`DropReason`] (those accepted but not forwarded
    /// are in `rx_frames` too).
    pub rx_dropped: u64,
    /// Of those, frames too short or too long.
    pub rx_malformed: u64,
    /// Of those, frames with a zero or group source MAC.
    pub rx_bad_source: u64,
    /// Of those, frames whose source MAC is not the port's pinned MAC.
    pub rx_spoofed: u64,
    /// Frames queued on this port.
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames for this port dropped because its queue was full (or shrunk).
    pub tx_dropped: u64,
}

/// Why [`Bridge::input`] dropped a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The ingress port does not exist (any more).
    NoSuchPort,
    /// Shorter than an Ethernet header.
    TooShort(usize),
    /// Longer than 1514 bytes (1518 with an 802.1Q tag).
    TooLong(usize),
    /// The source MAC is zero, multicast or broadcast.
    BadSource,
    /// The source MAC is not the ingress port's pinned MAC.
    Spoofed,
    /// The destination was learned on the ingress port: it is already there.
    LocalDestination,
    /// An 802.1D link-local group destination: never forwarded.
    LinkLocal,
}

/// What [`Bridge::input`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not forwarded anywhere.
    Dropped(DropReason),
    /// A known unicast destination: queued on that port, unless its queue was full.
    Unicast {
        /// The destination's port.
        to: PortId,
        /// Whether it was queued (false: the port's queue was full).
        queued: bool,
    },
    /// Flooded to every other port.
    Flooded {
        /// Ports it was queued on.
        queued: usize,
        /// Ports whose queue was full.
        full: usize,
    },
}

/// What the bridge refused to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeError {
    /// No such port.
    NoSuchPort(PortId),
    /// A pinned MAC must be a valid source address (not zero, not a group).
    InvalidMac(Mac),
    /// The MAC is already pinned to another port.
    MacPinned(Mac, PortId),
    /// Queue limits of zero frames or bytes.
    BadLimits,
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = |m: &Mac| crate::vifspec::format_mac(m);
        match self {
            BridgeError::NoSuchPort(p) => write!(f, "bridge: no port {p}"),
            BridgeError::InvalidMac(mac) => write!(f, "bridge: invalid station MAC {}", m(mac)),
            BridgeError::MacPinned(mac, p) => {
                write!(f, "bridge: MAC {} already belongs to port {p}", m(mac))
            }
            BridgeError::BadLimits => f.write_str("bridge: queue limits must be positive"),
        }
    }
}

/// One FDB entry, as [`Bridge::fdb`] lists it (`brctl showmacs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdbEntry {
    /// The station.
    pub mac: Mac,
    /// Where it was learned (or pinned).
    pub port: PortId,
    /// Nanoseconds since it was last seen (0 for static entries).
    pub age_ns: u64,
    /// A pinned MAC: never aged out, evicted or moved.
    pub is_static: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    port: PortId,
    last_seen: u64,
    /// Key in `by_touch` (dynamic entries); `None` for static ones.
    touch: Option<u64>,
}

#[derive(Debug)]
struct Port {
    name: String,
    pinned: Option<Mac>,
    limits: QueueLimits,
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    stats: PortStats,
}

impl Port {
    /// Queues a copy of `frame` if it fits. Returns whether it did.
    fn enqueue(&mut self, frame: &[u8]) -> bool {
        if self.queue.len() >= self.limits.frames
            || self.queued_bytes.saturating_add(frame.len()) > self.limits.bytes
        {
            self.stats.tx_dropped += 1;
            return false;
        }
        self.queue.push_back(frame.to_vec());
        self.queued_bytes += frame.len();
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += frame.len() as u64;
        true
    }

    /// Drops the oldest frames until the queue fits its limits.
    fn trim(&mut self) {
        while self.queue.len() > self.limits.frames || self.queued_bytes > self.limits.bytes {
            match self.queue.pop_front() {
                Some(f) => {
                    self.queued_bytes -= f.len();
                    self.stats.tx_dropped += 1;
                }
                None => break,
            }
        }
    }
}

/// A software Ethernet bridge.
#[derive(Debug)]
pub struct Bridge {
    ports: BTreeMap<PortId, Port>,
    next_port: u32,
    fdb: BTreeMap<Mac, Entry>,
    /// Dynamic entries by last touch, oldest first: the eviction and ageing order.
    by_touch: BTreeMap<u64, Mac>,
    next_touch: u64,
    fdb_max: usize,
    ageing_ns: u64,
    now: u64,
    evictions: u64,
}

impl Default for Bridge {
    fn default() -> Bridge {
        Bridge::new()
    }
}

impl Bridge {
    /// An empty bridge with the default ageing time and FDB bound.
    pub fn new() -> Bridge {
        Bridge::with_limits(DEFAULT_FDB_MAX, DEFAULT_AGEING_NS)
    }

    /// An empty bridge learning at most `fdb_max` MACs, each forgotten `ageing_ns` after
    /// it was last seen (0: forget at once, a hub).
    pub fn with_limits(fdb_max: usize, ageing_ns: u64) -> Bridge {
        Bridge {
            ports: BTreeMap::new(),
            next_port: 1,
            fdb: BTreeMap::new(),
            by_touch: BTreeMap::new(),
            next_touch: 0,
            fdb_max,
            ageing_ns,
            now: 0,
            evictions: 0,
        }
    }

    /// The ageing time.
    pub fn ageing_ns(&self) -> u64 {
        self.ageing_ns
    }

    /// Changes the ageing time (`brctl setageing`); takes effect at the next input.
    pub fn set_ageing_ns(&mut self, ns: u64) {
        self.ageing_ns = ns;
    }

    /// The bound of learned entries.
    pub fn fdb_max(&self) -> usize {
        self.fdb_max
    }

    /// Learned entries evicted because the FDB was full.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Adds a port with the default queue limits and no pinned MAC.
    pub fn add_port(&mut self, name: &str) -> PortId {
        let id = PortId(self.next_port);
        self.next_port = self.next_port.wrapping_add(1);
        self.ports.insert(
            id,
            Port {
                name: String::from(name),
                pinned: None,
                limits: QueueLimits::DEFAULT,
                queue: VecDeque::new(),
                queued_bytes: 0,
                stats: PortStats::default(),
            },
        );
        id
    }

    /// Removes a port: drops its queue and forgets every MAC learned or pinned on it.
    pub fn remove_port(&mut self, port: PortId) -> Result<(), BridgeError> {
        self.ports
            .remove(&port)
            .ok_or(BridgeError::NoSuchPort(port))?;
        let gone: Vec<Mac> = self
            .fdb
            .iter()
            .filter(|(_, e)| e.port == port)
            .map(|(m, _)| *m)
            .collect();
        for m in gone {
            self.forget(&m);
        }
        Ok(())
    }

    /// The ports, in the order they were added.
    pub fn ports(&self) -> impl Iterator<Item = PortId> + '_ {
        self.ports.keys().copied()
    }

    /// Number of ports.
    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    /// A port's name.
    pub fn port_name(&self, port: PortId) -> Option<&str> {
        self.ports.get(&port).map(|p| p.name.as_str())
    }

    /// Looks a port up by name.
    pub fn port_by_name(&self, name: &str) -> Option<PortId> {
        self.ports
            .iter()
            .find(|(_, p)| p.name == name)
            .map(|(id, _)| *id)
    }

    /// A port's counters.
    pub fn stats(&self, port: PortId) -> Option<PortStats> {
        self.ports.get(&port).map(|p| p.stats)
    }

    /// A port's pinned MAC.
    pub fn port_mac(&self, port: PortId) -> Option<Mac> {
        self.ports.get(&port).and_then(|p| p.pinned)
    }

    /// Pins (`Some`) or unpins (`None`) a port's MAC. While pinned, frames from the port
    /// with another source MAC are dropped, and the MAC is a static FDB entry pointing
    /// at the port (replacing whatever was learned for it).
    pub fn set_port_mac(&mut self, port: PortId, mac: Option<Mac>) -> Result<(), BridgeError> {
        if !self.ports.contains_key(&port) {
            return Err(BridgeError::NoSuchPort(port));
        }
        if let Some(m) = mac {
            if !is_valid_source(&m) {
                return Err(BridgeError::InvalidMac(m));
            }
            if let Some((&other, _)) = self
                .ports
                .iter()
                .find(|(id, p)| **id != port && p.pinned == Some(m))
            {
                return Err(BridgeError::MacPinned(m, other));
            }
        }
        let old = self.ports.get_mut(&port).and_then(|p| p.pinned.take());
        if let Some(o) = old {
            self.forget(&o);
        }
        if let Some(m) = mac {
            self.forget(&m);
            self.fdb.insert(
                m,
                Entry {
                    port,
                    last_seen: self.now,
                    touch: None,
                },
            );
            if let Some(p) = self.ports.get_mut(&port) {
                p.pinned = Some(m);
            }
        }
        Ok(())
    }

    /// Sets a port's queue limits; frames beyond new, smaller limits are dropped, oldest
    /// first, and counted.
    pub fn set_queue_limits(
        &mut self,
        port: PortId,
        limits: QueueLimits,
    ) -> Result<(), BridgeError> {
        if limits.frames == 0 || limits.bytes == 0 {
            return Err(BridgeError::BadLimits);
        }
        let p = self
            .ports
            .get_mut(&port)
            .ok_or(BridgeError::NoSuchPort(port))?;
        p.limits = limits;
        p.trim();
        Ok(())
    }

    /// A port's queue limits.
    pub fn queue_limits(&self, port: PortId) -> Option<QueueLimits> {
        self.ports.get(&port).map(|p| p.limits)
    }

    /// Frames and bytes queued on a port.
    pub fn queued(&self, port: PortId) -> Option<(usize, usize)> {
        self.ports
            .get(&port)
            .map(|p| (p.queue.len(), p.queued_bytes))
    }

    /// The oldest frame queued on a port, without taking it.
    pub fn peek(&self, port: PortId) -> Option<&[u8]> {
        self.ports
            .get(&port)
            .and_then(|p| p.queue.front())
            .map(Vec::as_slice)
    }

    /// Takes the oldest frame queued on a port.
    pub fn pop(&mut self, port: PortId) -> Option<Vec<u8>> {
        let p = self.ports.get_mut(&port)?;
        let f = p.queue.pop_front()?;
        p.queued_bytes -= f.len();
        Some(f)
    }

    /// Drops everything queued on a port (e.g. its frontend disconnected); returns how
    /// many frames. Not counted as drops.
    pub fn flush_queue(&mut self, port: PortId) -> usize {
        match self.ports.get_mut(&port) {
            Some(p) => {
                p.queued_bytes = 0;
                core::mem::take(&mut p.queue).len()
            }
            None => 0,
        }
    }

    /// Number of FDB entries (learned and static).
    pub fn fdb_len(&self) -> usize {
        self.fdb.len()
    }

    /// Number of learned (dynamic) FDB entries: at most [`Bridge::fdb_max`].
    pub fn fdb_learned(&self) -> usize {
        self.by_touch.len()
    }

    /// Where `mac` is, if known and not aged out at `now_ns`.
    pub fn lookup(&self, mac: &Mac, now_ns: u64) -> Option<PortId> {
        let now = now_ns.max(self.now);
        self.fdb
            .get(mac)
            .filter(|e| e.touch.is_none() || !self.expired(e.last_seen, now))
            .map(|e| e.port)
    }

    /// The FDB at `now_ns`, by MAC (`brctl showmacs`), without aged-out entries.
    pub fn fdb(&self, now_ns: u64) -> Vec<FdbEntry> {
        let now = now_ns.max(self.now);
        self.fdb
            .iter()
            .filter(|(_, e)| e.touch.is_none() || !self.expired(e.last_seen, now))
            .map(|(m, e)| FdbEntry {
                mac: *m,
                port: e.port,
                age_ns: if e.touch.is_some() {
                    now - e.last_seen
                } else {
                    0
                },
                is_static: e.touch.is_none(),
            })
            .collect()
    }

    /// Forgets every learned entry (`brctl` flush); pinned MACs stay.
    pub fn flush_fdb(&mut self) {
        let learned: Vec<Mac> = self.by_touch.values().copied().collect();
        for m in learned {
            self.fdb.remove(&m);
        }
        self.by_touch.clear();
    }

    fn expired(&self, last_seen: u64, now: u64) -> bool {
        now.saturating_sub(last_seen) >= self.ageing_ns
    }

    /// Advances the clock to `now_ns` (never backwards) and forgets entries aged out.
    pub fn expire(&mut self, now_ns: u64) {
        self.now = self.now.max(now_ns);
        // Last-seen times are non-decreasing in touch order: the expired entries are a
        // prefix of `by_touch`.
        while let Some((&t, &m)) = self.by_touch.iter().next() {
            let Some(e) = self.fdb.get(&m) else {
                self.by_touch.remove(&t);
                continue;
            };
            if !self.expired(e.last_seen, self.now) {
                break;
            }
            self.forget(&m);
        }
    }

    fn forget(&mut self, mac: &Mac) {
        if let Some(e) = self.fdb.remove(mac) {
            if let Some(t) = e.touch {
                self.by_touch.remove(&t);
            }
        }
    }

    /// Records that `mac` was seen on `port` now.
    fn learn(&mut self, mac: Mac, port: PortId) {
        let touch = self.next_touch;
        match self.fdb.get_mut(&mac) {
            // Pinned elsewhere (or here): static, not moved.
            Some(e) if e.touch.is_none() => return,
            Some(e) => {
                if let Some(old) = e.touch {
                    self.by_touch.remove(&old);
                }
                e.port = port;
                e.last_seen = self.now;
                e.touch = Some(touch);
            }
            None => {
                if self.fdb_max == 0 {
                    return;
                }
                while self.by_touch.len() >= self.fdb_max {
                    let Some((_, oldest)) = self.by_touch.pop_first() else {
                        break;
                    };
                    self.fdb.remove(&oldest);
                    self.evictions += 1;
                }
                self.fdb.insert(
                    mac,
                    Entry {
                        port,
                        last_seen: self.now,
                        touch: Some(touch),
                    },
                );
            }
        }
        self.by_touch.insert(touch, mac);
        self.next_touch += 1;
    }

    /// Checks a frame's length: `Ok` or the reason to drop it.
    pub fn check_frame(frame: &[u8]) -> Result<(), DropReason> {
        let len = frame.len();
        if len < ETH_HLEN {
            return Err(DropReason::TooShort(len));
        }
        let tagged = u16::from_be_bytes([frame[12], frame[13]]) == ETHERTYPE_VLAN;
        let max = if tagged {
            ETH_FRAME_MAX_VLAN
        } else {
            ETH_FRAME_MAX
        };
        if len > max {
            return Err(DropReason::TooLong(len));
        }
        Ok(())
    }

    /// A frame `port` received at `now_ns`: validates it, learns its source and queues it
    /// where it must go.
    pub fn input(&mut self, port: PortId, frame: &[u8], now_ns: u64) -> Verdict {
        self.expire(now_ns);
        let Some(p) = self.ports.get_mut(&port) else {
            return Verdict::Dropped(DropReason::NoSuchPort);
        };
        let checked = Bridge::check_frame(frame).and_then(|()| {
            let src = mac_at(frame, 6);
            if !is_valid_source(&src) {
                Err(DropReason::BadSource)
            } else if p.pinned.is_some_and(|m| m != src) {
                Err(DropReason::Spoofed)
            } else {
                Ok(())
            }
        });
        if let Err(reason) = checked {
            p.stats.rx_dropped += 1;
            match reason {
                DropReason::TooShort(_) | DropReason::TooLong(_) => p.stats.rx_malformed += 1,
                DropReason::BadSource => p.stats.rx_bad_source += 1,
                _ => p.stats.rx_spoofed += 1,
            }
            return Verdict::Dropped(reason);
        }
        p.stats.rx_frames += 1;
        p.stats.rx_bytes += frame.len() as u64;
        let dst = mac_at(frame, 0);
        let src = mac_at(frame, 6);
        self.learn(src, port);
        if is_link_local(&dst) {
            return self.drop_forward(port, DropReason::LinkLocal);
        }
        if !is_multicast(&dst) {
            if let Some(to) = self.fdb.get(&dst).map(|e| e.port) {
                if to == port {
                    return self.drop_forward(port, DropReason::LocalDestination);
                }
                let queued = self.ports.get_mut(&to).is_some_and(|p| p.enqueue(frame));
                return Verdict::Unicast { to, queued };
            }
        }
        let (mut queued, mut full) = (0, 0);
        for (_, p) in self.ports.iter_mut().filter(|(id, _)| **id != port) {
            if p.enqueue(frame) {
                queued += 1;
            } else {
                full += 1;
            }
        }
        Verdict::Flooded { queued, full }
    }

    /// A valid frame the bridge chose not to forward: counted as an input drop.
    fn drop_forward(&mut self, port: PortId, reason: DropReason) -> Verdict {
        if let Some(p) = self.ports.get_mut(&port) {
            p.stats.rx_dropped += 1;
        }
        Verdict::Dropped(reason)
    }
}

/// The MAC at `off` of a frame at least `off + 6` bytes long.
fn mac_at(frame: &[u8], off: usize) -> Mac {
    let mut m = [0u8; 6];
    if let Some(s) = frame.get(off..off + 6) {
        m.copy_from_slice(s);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const A: Mac = [0x00, 0x16, 0x3e, 0, 0, 0xa];
    const B: Mac = [0x00, 0x16, 0x3e, 0, 0, 0xb];
    const C: Mac = [0x00, 0x16, 0x3e, 0, 0, 0xc];
    const MCAST: Mac = [0x01, 0x00, 0x5e, 0, 0, 1];
    const SEC: u64 = 1_000_000_000;

    fn frame(dst: Mac, src: Mac, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len.max(ETH_HLEN)];
        f[0..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        for (i, b) in f.iter_mut().enumerate().skip(ETH_HLEN) {
            *b = i as u8;
        }
        f.truncate(len);
        f
    }

    fn drain(b: &mut Bridge, p: PortId) -> Vec<Vec<u8>> {
        core::iter::from_fn(|| b.pop(p)).collect()
    }

    #[test]
    fn learning_and_forwarding() {
        let mut b = Bridge::new();
        let (p1, p2, p3) = (
            b.add_port("vif1.0"),
            b.add_port("vif2.0"),
            b.add_port("eth0"),
        );
        assert_eq!(b.port_by_name("eth0"), Some(p3));
        assert_eq!(b.port_name(p1), Some("vif1.0"));
        // Unknown destination: flooded to the others, source learned.
        let f = frame(B, A, 60);
        assert_eq!(b.input(p1, &f, 0), Verdict::Flooded { queued: 2, full: 0 });
        assert_eq!(drain(&mut b, p1), Vec::<Vec<u8>>::new());
        assert_eq!(drain(&mut b, p2), core::slice::from_ref(&f));
        assert_eq!(drain(&mut b, p3), core::slice::from_ref(&f));
        assert_eq!(b.lookup(&A, 0), Some(p1));
        // The reply goes to p1 only.
        let r = frame(A, B, 100);
        assert_eq!(
            b.input(p2, &r, SEC),
            Verdict::Unicast {
                to: p1,
                queued: true
            }
        );
        assert_eq!(b.queued(p1), Some((1, 100)));
        assert_eq!(b.queued(p3), Some((0, 0)));
        assert_eq!(b.peek(p1), Some(&r[..]));
        assert_eq!(b.pop(p1), Some(r));
        // Broadcast and multicast flood even when known.
        assert!(matches!(
            b.input(p1, &frame(BROADCAST, A, 60), SEC),
            Verdict::Flooded { queued: 2, .. }
        ));
        assert!(matches!(
            b.input(p1, &frame(MCAST, A, 60), SEC),
            Verdict::Flooded { queued: 2, .. }
        ));
        // A destination on the ingress port is filtered.
        assert_eq!(
            b.input(p1, &frame(A, C, 60), SEC),
            Verdict::Dropped(DropReason::LocalDestination)
        );
        // Now C is on p1; it moves to p3 when seen there.
        assert_eq!(b.lookup(&C, SEC), Some(p1));
        b.input(p3, &frame(BROADCAST, C, 60), 2 * SEC);
        assert_eq!(b.lookup(&C, 2 * SEC), Some(p3));
        let s = b.stats(p1).unwrap();
        assert_eq!((s.rx_frames, s.rx_dropped, s.tx_frames), (4, 1, 2));
        assert_eq!(s.rx_bytes, 60 * 4);
    }

    #[test]
    fn validation() {
        let mut b = Bridge::new();
        let (p1, p2) = (b.add_port("a"), b.add_port("b"));
        let cases = [
            (frame(B, A, 13), DropReason::TooShort(13)),
            (frame(B, A, 1515), DropReason::TooLong(1515)),
            (frame(B, MCAST, 60), DropReason::BadSource),
            (frame(B, BROADCAST, 60), DropReason::BadSource),
            (frame(B, [0; 6], 60), DropReason::BadSource),
            (
                frame([0x01, 0x80, 0xc2, 0, 0, 0], A, 60),
                DropReason::LinkLocal,
            ),
        ];
        for (f, why) in cases {
            assert_eq!(b.input(p1, &f, 0), Verdict::Dropped(why));
        }
        assert!(matches!(
            b.input(p1, &frame(B, A, 14), 0),
            Verdict::Flooded { .. }
        ));
        assert!(matches!(
            b.input(p1, &frame(B, A, 1514), 0),
            Verdict::Flooded { .. }
        ));
        let mut tagged = frame(B, A, 1518);
        tagged[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        assert!(matches!(b.input(p1, &tagged, 0), Verdict::Flooded { .. }));
        tagged.push(0);
        assert_eq!(
            b.input(p1, &tagged, 0),
            Verdict::Dropped(DropReason::TooLong(1519))
        );
        let s = b.stats(p1).unwrap();
        assert_eq!(
            (s.rx_malformed, s.rx_bad_source, s.rx_dropped, s.rx_frames),
            (3, 3, 7, 4)
        );
        assert_eq!(b.stats(p2).unwrap().tx_frames, 3);
        assert_eq!(
            b.input(PortId(99), &frame(B, A, 60), 0),
            Verdict::Dropped(DropReason::NoSuchPort)
        );
        // Bad sources were not learned.
        assert_eq!(b.fdb_len(), 1);
    }

    #[test]
    fn ageing_and_fdb_listing() {
        let mut b = Bridge::with_limits(16, 10 * SEC);
        let (p1, p2) = (b.add_port("a"), b.add_port("b"));
        b.input(p1, &frame(BROADCAST, A, 60), SEC);
        b.input(p2, &frame(BROADCAST, B, 60), 5 * SEC);
        assert_eq!(
            b.fdb(6 * SEC),
            [
                FdbEntry {
                    mac: A,
                    port: p1,
                    age_ns: 5 * SEC,
                    is_static: false
                },
                FdbEntry {
                    mac: B,
                    port: p2,
                    age_ns: SEC,
                    is_static: false
                }
            ]
        );
        // A ages out at 11 s; B is still known.
        assert_eq!(b.lookup(&A, 11 * SEC), None);
        assert_eq!(b.fdb(11 * SEC).len(), 1);
        assert!(matches!(
            b.input(p2, &frame(A, B, 60), 11 * SEC),
            Verdict::Flooded { .. }
        ));
        assert_eq!(b.fdb_len(), 1);
        // Seeing a station refreshes it; the clock never runs backwards.
        b.input(p2, &frame(BROADCAST, B, 60), 3 * SEC);
        assert_eq!(b.fdb(11 * SEC)[0].age_ns, 0);
        b.expire(21 * SEC);
        assert_eq!(b.fdb_len(), 0);
        // Ageing 0: a hub.
        b.set_ageing_ns(0);
        b.input(p1, &frame(BROADCAST, A, 60), 30 * SEC);
        assert!(matches!(
            b.input(p2, &frame(A, B, 60), 30 * SEC),
            Verdict::Flooded { .. }
        ));
    }

    #[test]
    fn fdb_is_bounded_oldest_evicted() {
        let mut b = Bridge::with_limits(4, 300 * SEC);
        let (p1, _p2) = (b.add_port("a"), b.add_port("b"));
        let mac = |i: u8| [0x02, 0, 0, 0, 0, i];
        for i in 1..=4 {
            b.input(p1, &frame(BROADCAST, mac(i), 60), u64::from(i));
        }
        // Refresh 1: 2 is now the oldest.
        b.input(p1, &frame(BROADCAST, mac(1), 60), 10);
        b.input(p1, &frame(BROADCAST, mac(5), 60), 11);
        assert_eq!(b.fdb_len(), 4);
        assert_eq!(b.lookup(&mac(2), 11), None);
        assert!(b.lookup(&mac(1), 11).is_some());
        assert_eq!(b.evictions(), 1);
        for i in 0..=255u8 {
            b.input(p1, &frame(BROADCAST, [0x02, 1, 0, 0, 0, i], 60), 20);
        }
        assert_eq!(b.fdb_learned(), 4);
        b.flush_fdb();
        assert_eq!(b.fdb_len(), 0);
    }

    #[test]
    fn pinned_mac_anti_spoofing() {
        let mut b = Bridge::new();
        let (g1, g2, up) = (
            b.add_port("vif1.0"),
            b.add_port("vif2.0"),
            b.add_port("eth0"),
        );
        b.set_port_mac(g1, Some(A)).unwrap();
        assert_eq!(b.port_mac(g1), Some(A));
        assert_eq!(
            b.set_port_mac(g2, Some(A)),
            Err(BridgeError::MacPinned(A, g1))
        );
        assert_eq!(
            b.set_port_mac(g2, Some(MCAST)),
            Err(BridgeError::InvalidMac(MCAST))
        );
        assert_eq!(
            b.set_port_mac(PortId(77), Some(C)),
            Err(BridgeError::NoSuchPort(PortId(77)))
        );
        // The pinned MAC is reachable before g1 sent anything.
        assert_eq!(
            b.input(up, &frame(A, C, 60), 0),
            Verdict::Unicast {
                to: g1,
                queued: true
            }
        );
        // g1 may not send as B.
        assert_eq!(
            b.input(g1, &frame(C, B, 60), 0),
            Verdict::Dropped(DropReason::Spoofed)
        );
        assert_eq!(b.stats(g1).unwrap().rx_spoofed, 1);
        assert_eq!(b.lookup(&B, 0), None);
        // Another port claiming A does not move the static entry.
        b.input(g2, &frame(BROADCAST, A, 60), 0);
        assert_eq!(b.lookup(&A, 0), Some(g1));
        // Static entries never age.
        let later = 10_000 * SEC;
        assert_eq!(b.lookup(&A, later), Some(g1));
        assert!(b.fdb(later).iter().any(|e| e.mac == A && e.is_static));
        // Unpinned: g1 may send as anything again, and A is forgotten.
        b.set_port_mac(g1, None).unwrap();
        assert_eq!(b.lookup(&A, later), None);
        assert!(matches!(
            b.input(g1, &frame(C, B, 60), later),
            Verdict::Flooded { .. }
        ));
        // Re-pinning a learned MAC makes it static on the pinned port.
        b.set_port_mac(g2, Some(B)).unwrap();
        assert_eq!(b.lookup(&B, later), Some(g2));
        b.set_port_mac(g2, Some(C)).unwrap();
        assert_eq!(b.lookup(&B, later), None);
        assert_eq!(b.lookup(&C, later), Some(g2));
    }

    #[test]
    fn queues_are_bounded_per_port() {
        let mut b = Bridge::new();
        let (p1, p2, p3) = (b.add_port("a"), b.add_port("b"), b.add_port("c"));
        b.set_queue_limits(
            p2,
            QueueLimits {
                frames: 2,
                bytes: 1000,
            },
        )
        .unwrap();
        assert_eq!(
            b.set_queue_limits(
                p2,
                QueueLimits {
                    frames: 0,
                    bytes: 1
                }
            ),
            Err(BridgeError::BadLimits)
        );
        for _ in 0..3 {
            b.input(p1, &frame(BROADCAST, A, 400), 0);
        }
        // p2 took two (800 bytes), p3 all three.
        assert_eq!(b.queued(p2), Some((2, 800)));
        assert_eq!(b.queued(p3), Some((3, 1200)));
        assert_eq!(b.stats(p2).unwrap().tx_dropped, 1);
        assert_eq!(
            b.input(p1, &frame(BROADCAST, A, 400), 0),
            Verdict::Flooded { queued: 1, full: 1 }
        );
        b.pop(p2);
        // 400 + 700 > 1000: dropped by bytes.
        assert_eq!(
            b.input(p1, &frame(BROADCAST, A, 700), 0),
            Verdict::Flooded { queued: 1, full: 1 }
        );
        // Shrinking drops the oldest.
        b.set_queue_limits(
            p3,
            QueueLimits {
                frames: 1,
                bytes: 1000,
            },
        )
        .unwrap();
        assert_eq!(b.queued(p3), Some((1, 700)));
        assert_eq!(b.flush_queue(p3), 1);
        assert_eq!(b.queued(p3), Some((0, 0)));
    }

    #[test]
    fn removing_a_port_forgets_it() {
        let mut b = Bridge::new();
        let (p1, p2) = (b.add_port("a"), b.add_port("b"));
        b.set_port_mac(p1, Some(A)).unwrap();
        b.input(p1, &frame(BROADCAST, A, 60), 0);
        b.input(p2, &frame(BROADCAST, B, 60), 0);
        b.input(p2, &frame(BROADCAST, C, 60), 0);
        assert_eq!(b.fdb_len(), 3);
        b.remove_port(p2).unwrap();
        assert_eq!(b.remove_port(p2), Err(BridgeError::NoSuchPort(p2)));
        assert_eq!(b.fdb(0).iter().map(|e| e.mac).collect::<Vec<_>>(), [A]);
        assert_eq!(b.queued(p2), None);
        assert_eq!(b.pop(p2), None);
        // Ids are not reused.
        let p3 = b.add_port("b");
        assert_ne!(p3, p2);
        assert_eq!(b.ports().collect::<Vec<_>>(), [p1, p3]);
        b.remove_port(p1).unwrap();
        assert_eq!(b.fdb_len(), 0);
        // A's MAC can now be pinned elsewhere.
        b.set_port_mac(p3, Some(A)).unwrap();
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            BridgeError::MacPinned(A, PortId(3)).to_string(),
            "bridge: MAC 00:16:3e:00:00:0a already belongs to port 3"
        );
    }

    // -----------------------------------------------------------------------------------
    // Properties.

    /// A small pool of addresses so that learning, moving and eviction all happen.
    fn pool_mac(i: u8) -> Mac {
        match i % 10 {
            7 => BROADCAST,
            8 => MCAST,
            9 => [0; 6],
            k => [0x02, 0, 0, 0, 0, k],
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add,
        Remove(u8),
        Pin(u8, Option<u8>),
        Limits(u8, usize, usize),
        Input {
            port: u8,
            dst: u8,
            src: u8,
            len: usize,
            dt: u64,
        },
        Pop(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => Just(Op::Add),
            1 => any::<u8>().prop_map(Op::Remove),
            1 => (any::<u8>(), proptest::option::of(0u8..7)).prop_map(|(p, m)| Op::Pin(p, m)),
            1 => (any::<u8>(), 1usize..6, 1usize..3000).prop_map(|(p, f, b)| Op::Limits(p, f, b)),
            12 => (any::<u8>(), 0u8..10, 0u8..10, prop_oneof![Just(10usize), 14usize..200, Just(1514), Just(1600)], 0u64..4)
                .prop_map(|(port, dst, src, len, dt)| Op::Input { port, dst, src, len, dt }),
            4 => any::<u8>().prop_map(Op::Pop),
        ]
    }

    /// A model port: id, pinned MAC, queue limits, queue.
    type MPort = (PortId, Option<Mac>, QueueLimits, VecDeque<Vec<u8>>);

    /// The reference: learning and forwarding as plainly as possible.
    #[derive(Debug, Default)]
    struct Model {
        /// Live ports in creation order: (id, pinned, limits, queue).
        ports: Vec<MPort>,
        /// Learned: mac -> (port, last seen, touch order).
        learned: HashMap<Mac, (PortId, u64, u64)>,
        touch: u64,
        now: u64,
    }

    const MODEL_MAX: usize = 3;
    const MODEL_AGE: u64 = 6;

    impl Model {
        fn pinned_port(&self, m: &Mac) -> Option<PortId> {
            self.ports.iter().find(|p| p.1 == Some(*m)).map(|p| p.0)
        }
        fn port(&mut self, id: PortId) -> Option<&mut MPort> {
            self.ports.iter_mut().find(|p| p.0 == id)
        }
        fn enqueue(q: &mut MPort, f: &[u8]) {
            let bytes: usize = q.3.iter().map(Vec::len).sum();
            if q.3.len() < q.2.frames && bytes + f.len() <= q.2.bytes {
                q.3.push_back(f.to_vec());
            }
        }
        fn input(&mut self, port: PortId, f: &[u8]) {
            self.learned.retain(|_, e| self.now - e.1 < MODEL_AGE);
            let Some(pinned) = self.port(port).map(|p| p.1) else {
                return;
            };
            if f.len() < 14 || f.len() > 1514 {
                return;
            }
            let dst = mac_at(f, 0);
            let src = mac_at(f, 6);
            if src[0] & 1 != 0 || src == [0; 6] || pinned.is_some_and(|m| m != src) {
                return;
            }
            if self.pinned_port(&src).is_none() {
                if !self.learned.contains_key(&src) && self.learned.len() == MODEL_MAX {
                    let oldest = *self.learned.iter().min_by_key(|(_, e)| e.2).unwrap().0;
                    self.learned.remove(&oldest);
                }
                self.learned.insert(src, (port, self.now, self.touch));
                self.touch += 1;
            }
            if dst[0] & 1 == 0 {
                let known = self
                    .pinned_port(&dst)
                    .or_else(|| self.learned.get(&dst).map(|e| e.0));
                if let Some(to) = known {
                    if to != port {
                        let q = self.port(to).unwrap();
                        Model::enqueue(q, f);
                    }
                    return;
                }
            }
            for q in self.ports.iter_mut().filter(|p| p.0 != port) {
                Model::enqueue(q, f);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// The bridge agrees with the reference model, and its invariants hold after
        /// every step.
        #[test]
        fn bridge_matches_model(ops in prop::collection::vec(op(), 1..120)) {
            let mut b = Bridge::with_limits(MODEL_MAX, MODEL_AGE);
            let mut m = Model::default();
            let mut all: Vec<PortId> = Vec::new();
            for _ in 0..3 {
                let id = b.add_port("p");
                all.push(id);
                m.ports.push((id, None, QueueLimits::DEFAULT, VecDeque::new()));
            }
            let pick = |all: &Vec<PortId>, i: u8| all[usize::from(i) % all.len()];
            for op in ops {
                match op {
                    Op::Add => {
                        let id = b.add_port("p");
                        prop_assert!(!all.contains(&id));
                        all.push(id);
                        m.ports.push((id, None, QueueLimits::DEFAULT, VecDeque::new()));
                    }
                    Op::Remove(i) => {
                        let id = pick(&all, i);
                        let live = m.port(id).is_some();
                        prop_assert_eq!(b.remove_port(id).is_ok(), live);
                        m.ports.retain(|p| p.0 != id);
                        m.learned.retain(|_, e| e.0 != id);
                    }
                    Op::Pin(i, mac) => {
                        let id = pick(&all, i);
                        let mac = mac.map(pool_mac);
                        let r = b.set_port_mac(id, mac);
                        let ok = m.port(id).is_some()
                            && mac.is_none_or(|x| m.pinned_port(&x).is_none_or(|o| o == id));
                        prop_assert_eq!(r.is_ok(), ok, "{:?}", r);
                        if ok {
                            if let Some(x) = mac {
                                m.learned.remove(&x);
                            }
                            m.port(id).unwrap().1 = mac;
                        }
                    }
                    Op::Limits(i, frames, bytes) => {
                        let id = pick(&all, i);
                        let l = QueueLimits { frames, bytes };
                        prop_assert_eq!(b.set_queue_limits(id, l).is_ok(), m.port(id).is_some());
                        if let Some(p) = m.port(id) {
                            p.2 = l;
                            while p.3.len() > frames || p.3.iter().map(Vec::len).sum::<usize>() > bytes {
                                p.3.pop_front();
                            }
                        }
                    }
                    Op::Input { port, dst, src, len, dt } => {
                        let id = pick(&all, port);
                        m.now += dt;
                        let f = frame(pool_mac(dst), pool_mac(src), len);
                        let before: Vec<(PortId, usize)> = b.ports().map(|p| (p, b.stats(p).unwrap().tx_frames as usize)).collect();
                        b.input(id, &f, m.now);
                        m.input(id, &f);
                        // Never back to the ingress port.
                        for (p, n) in before {
                            if p == id {
                                prop_assert_eq!(b.stats(p).unwrap().tx_frames as usize, n);
                            }
                        }
                    }
                    Op::Pop(i) => {
                        let id = pick(&all, i);
                        let want = m.port(id).and_then(|p| p.3.pop_front());
                        prop_assert_eq!(b.pop(id), want);
                    }
                }
                // Same queues everywhere.
                for p in &m.ports {
                    let (n, bytes) = b.queued(p.0).unwrap();
                    prop_assert_eq!(n, p.3.len());
                    prop_assert_eq!(bytes, p.3.iter().map(Vec::len).sum::<usize>());
                    prop_assert_eq!(b.peek(p.0), p.3.front().map(Vec::as_slice));
                    // Queue memory within its limits.
                    prop_assert!(n <= p.2.frames && bytes <= p.2.bytes);
                }
                prop_assert_eq!(b.port_count(), m.ports.len());
                // Same FDB.
                let mut want: Vec<(Mac, PortId)> = m.learned.iter()
                    .filter(|(_, e)| m.now - e.1 < MODEL_AGE)
                    .map(|(k, e)| (*k, e.0))
                    .chain(m.ports.iter().filter_map(|p| p.1.map(|x| (x, p.0))))
                    .collect();
                want.sort();
                let got: Vec<(Mac, PortId)> = b.fdb(m.now).iter().map(|e| (e.mac, e.port)).collect();
                prop_assert_eq!(got, want);
                // The FDB is bounded, and points only at live ports.
                prop_assert!(b.fdb_learned() <= MODEL_MAX);
                prop_assert!(b.fdb_len() <= MODEL_MAX + b.port_count());
                for e in b.fdb(0) {
                    prop_assert!(b.port_name(e.port).is_some());
                }
            }
        }

        /// A unicast frame to a learned MAC reaches exactly that port, and a flood
        /// reaches every port but the ingress one.
        #[test]
        fn unicast_reaches_exactly_the_learned_port(
            n in 2usize..8, at in any::<u8>(), from in any::<u8>(), len in 14usize..1515,
        ) {
            let mut b = Bridge::new();
            let ports: Vec<PortId> = (0..n).map(|_| b.add_port("p")).collect();
            let at = ports[usize::from(at) % n];
            let from = ports[usize::from(from) % n];
            b.input(at, &frame(BROADCAST, A, 60), 0);
            for &p in &ports {
                let got = drain(&mut b, p).len();
                prop_assert_eq!(got, usize::from(p != at));
            }
            let f = frame(A, B, len);
            let v = b.input(from, &f, 1);
            if from == at {
                prop_assert_eq!(v, Verdict::Dropped(DropReason::LocalDestination));
            } else {
                prop_assert_eq!(v, Verdict::Unicast { to: at, queued: true });
            }
            for &p in &ports {
                let got = drain(&mut b, p);
                if p == at && from != at {
                    prop_assert_eq!(got, vec![f.clone()]);
                } else {
                    prop_assert!(got.is_empty());
                }
            }
        }

        /// Flooding random sources never grows the FDB past its bound, and arbitrary
        /// bytes never panic.
        #[test]
        fn arbitrary_frames(frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 1..200), max in 0usize..8) {
            let mut b = Bridge::with_limits(max, 1000);
            let p = [b.add_port("a"), b.add_port("b")];
            for (i, f) in frames.iter().enumerate() {
                b.input(p[i % 2], f, i as u64);
                prop_assert!(b.fdb_learned() <= max);
                prop_assert!(b.fdb_len() <= max);
            }
        }
    }
}
