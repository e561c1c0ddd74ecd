//! The xenstore nodes of the network protocol (`netif.h`'s "Feature and Parameter
//! Negotiation"), parsed from and formatted to their string values, and the MAC address
//! format (`00:16:3e:xx:xx:xx`). No xenstore client: the caller reads and writes the
//! nodes.
//!
//! Parsing is strict and total (see [`crate::blkif::xenbus`]): a value from a hostile
//! peer gives a [`KeyError`], never a panic. Boolean `feature-*` nodes default to off
//! when absent, except `feature-rx-copy`'s counterpart on the frontend: a frontend
//! that does not write `request-rx-copy = 1` asks for page flipping, which this backend
//! (like Linux's since 3.x) refuses.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use xen_abi::event_channel::EvtchnPort;
use xen_abi::grant_table::GrantRef;

pub use crate::blkif::xenbus::{parse_bool, parse_u32, KeyError};

/// Frontend node: grant reference of the tx ring page.
pub const KEY_TX_RING_REF: &str = "tx-ring-ref";
/// Frontend node: grant reference of the rx ring page.
pub const KEY_RX_RING_REF: &str = "rx-ring-ref";
/// Frontend node: the single event channel of both rings.
pub const KEY_EVENT_CHANNEL: &str = "event-channel";
/// Frontend node: tx ring's event channel (`feature-split-event-channels`).
pub const KEY_EVENT_CHANNEL_TX: &str = "event-channel-tx";
/// Frontend node: rx ring's event channel (`feature-split-event-channels`).
pub const KEY_EVENT_CHANNEL_RX: &str = "event-channel-rx";
/// Frontend node: the backend must copy into posted buffers (1), not flip pages.
pub const KEY_REQUEST_RX_COPY: &str = "request-rx-copy";
/// Frontend node: the frontend sets `rsp_event` on the rx ring (mandatory for Linux).
pub const KEY_FEATURE_RX_NOTIFY: &str = "feature-rx-notify";
/// Both: scatter-gather (packets over several slots).
pub const KEY_FEATURE_SG: &str = "feature-sg";
/// Both: TCPv4 segmentation offload.
pub const KEY_FEATURE_GSO_TCPV4: &str = "feature-gso-tcpv4";
/// Both: TCPv6 segmentation offload.
pub const KEY_FEATURE_GSO_TCPV6: &str = "feature-gso-tcpv6";
/// Both: no IPv4 checksum offload (checksums are always complete).
pub const KEY_FEATURE_NO_CSUM_OFFLOAD: &str = "feature-no-csum-offload";
/// Both: IPv6 checksum offload.
pub const KEY_FEATURE_IPV6_CSUM_OFFLOAD: &str = "feature-ipv6-csum-offload";
/// Both: multicast control (`XEN_NETIF_EXTRA_TYPE_MCAST_*` extras).
pub const KEY_FEATURE_MULTICAST_CONTROL: &str = "feature-multicast-control";
/// Backend node: copying into posted rx buffers offered.
pub const KEY_FEATURE_RX_COPY: &str = "feature-rx-copy";
/// Backend node: page flipping offered (always 0 here).
pub const KEY_FEATURE_RX_FLIP: &str = "feature-rx-flip";
/// Backend node: split event channels offered.
pub const KEY_FEATURE_SPLIT_EVENT_CHANNELS: &str = "feature-split-event-channels";
/// Backend node: most queues (absent: 1).
pub const KEY_MULTI_QUEUE_MAX_QUEUES: &str = "multi-queue-max-queues";
/// Both (written by the toolstack): the vif's MAC address.
pub const KEY_MAC: &str = "mac";
/// Backend node (written by the toolstack): the vif's handle (its index).
pub const KEY_HANDLE: &str = "handle";

/// Parse a MAC address: six two-digit hex bytes separated by `:` (case-insensitive;
/// surrounding whitespace or trailing NULs allowed).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let s = s
        .trim_end_matches('\0')
        .trim_matches(|c: char| c.is_ascii_whitespace());
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Format a MAC address as `00:16:3e:0a:0b:0c` (lower-case).
pub fn format_mac(mac: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

fn required<F, S>(read: &mut F, key: &'static str) -> Result<S, KeyError>
where
    F: FnMut(&str) -> Option<S>,
{
    read(key).ok_or(KeyError::Missing(key))
}

fn optional<F, S, V>(
    read: &mut F,
    key: &'static str,
    parse: impl Fn(&str) -> Option<V>,
    default: V,
) -> Result<V, KeyError>
where
    F: FnMut(&str) -> Option<S>,
    S: AsRef<str>,
{
    match read(key) {
        None => Ok(default),
        Some(v) => parse(v.as_ref()).ok_or(KeyError::Invalid(key)),
    }
}

fn bool_node(key: &'static str, v: bool) -> (&'static str, String) {
    (key, u8::from(v).to_string())
}

/// What a backend announces (read by the frontend).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    /// `mac` in the backend's directory (optional: the frontend's own `mac` rules).
    pub mac: Option<[u8; 6]>,
    /// `handle` (optional).
    pub handle: Option<u32>,
    /// `feature-rx-copy`: required by this frontend.
    pub feature_rx_copy: bool,
    /// `feature-rx-flip` (always written 0).
    pub feature_rx_flip: bool,
    /// `feature-sg`.
    pub feature_sg: bool,
    /// `feature-gso-tcpv4`.
    pub feature_gso_tcpv4: bool,
    /// `feature-gso-tcpv6`.
    pub feature_gso_tcpv6: bool,
    /// `feature-no-csum-offload`.
    pub feature_no_csum_offload: bool,
    /// `feature-ipv6-csum-offload`.
    pub feature_ipv6_csum_offload: bool,
    /// `feature-multicast-control`.
    pub feature_multicast_control: bool,
    /// `feature-split-event-channels`.
    pub feature_split_event_channels: bool,
    /// `multi-queue-max-queues` (1 when absent).
    pub max_queues: u32,
}

impl Default for BackendInfo {
    fn default() -> Self {
        Self {
            mac: None,
            handle: None,
            feature_rx_copy: true,
            feature_rx_flip: false,
            feature_sg: false,
            feature_gso_tcpv4: false,
            feature_gso_tcpv6: false,
            feature_no_csum_offload: false,
            feature_ipv6_csum_offload: false,
            feature_multicast_control: false,
            feature_split_event_channels: false,
            max_queues: 1,
        }
    }
}

impl BackendInfo {
    /// Read the backend's nodes through `read(key)`. All are optional (features default
    /// off, `multi-queue-max-queues` to 1); a present node must parse.
    pub fn from_xenstore<F, S>(mut read: F) -> Result<Self, KeyError>
    where
        F: FnMut(&str) -> Option<S>,
        S: AsRef<str>,
    {
        let r = &mut read;
        Ok(Self {
            mac: optional(r, KEY_MAC, |s| parse_mac(s).map(Some), None)?,
            handle: optional(r, KEY_HANDLE, |s| parse_u32(s).map(Some), None)?,
            feature_rx_copy: optional(r, KEY_FEATURE_RX_COPY, parse_bool, false)?,
            feature_rx_flip: optional(r, KEY_FEATURE_RX_FLIP, parse_bool, false)?,
            feature_sg: optional(r, KEY_FEATURE_SG, parse_bool, false)?,
            feature_gso_tcpv4: optional(r, KEY_FEATURE_GSO_TCPV4, parse_bool, false)?,
            feature_gso_tcpv6: optional(r, KEY_FEATURE_GSO_TCPV6, parse_bool, false)?,
            feature_no_csum_offload: optional(r, KEY_FEATURE_NO_CSUM_OFFLOAD, parse_bool, false)?,
            feature_ipv6_csum_offload: optional(
                r,
                KEY_FEATURE_IPV6_CSUM_OFFLOAD,
                parse_bool,
                false,
            )?,
            feature_multicast_control: optional(
                r,
                KEY_FEATURE_MULTICAST_CONTROL,
                parse_bool,
                false,
            )?,
            feature_split_event_channels: optional(
                r,
                KEY_FEATURE_SPLIT_EVENT_CHANNELS,
                parse_bool,
                false,
            )?,
            max_queues: optional(
                r,
                KEY_MULTI_QUEUE_MAX_QUEUES,
                |s| parse_u32(s).filter(|&n| n > 0),
                1,
            )?,
        })
    }

    /// The nodes a backend writes (`mac` and `handle` only when known).
    pub fn to_xenstore(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Some(m) = &self.mac {
            v.push((KEY_MAC, format_mac(m)));
        }
        if let Some(h) = self.handle {
            v.push((KEY_HANDLE, h.to_string()));
        }
        v.extend([
            bool_node(KEY_FEATURE_RX_COPY, self.feature_rx_copy),
            bool_node(KEY_FEATURE_RX_FLIP, self.feature_rx_flip),
            bool_node(KEY_FEATURE_SG, self.feature_sg),
            bool_node(KEY_FEATURE_GSO_TCPV4, self.feature_gso_tcpv4),
            bool_node(KEY_FEATURE_GSO_TCPV6, self.feature_gso_tcpv6),
            bool_node(KEY_FEATURE_NO_CSUM_OFFLOAD, self.feature_no_csum_offload),
            bool_node(
                KEY_FEATURE_IPV6_CSUM_OFFLOAD,
                self.feature_ipv6_csum_offload,
            ),
            bool_node(
                KEY_FEATURE_MULTICAST_CONTROL,
                self.feature_multicast_control,
            ),
            bool_node(
                KEY_FEATURE_SPLIT_EVENT_CHANNELS,
                self.feature_split_event_channels,
            ),
            (KEY_MULTI_QUEUE_MAX_QUEUES, self.max_queues.to_string()),
        ]);
        v
    }
}

/// The frontend's event channel(s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventChannels {
    /// `event-channel`: one port for both rings.
    Single(EvtchnPort),
    /// `event-channel-tx` and `event-channel-rx`.
    Split { tx: EvtchnPort, rx: EvtchnPort },
}

/// What a frontend announces about its rings (read by the backend to connect).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontendInfo {
    /// `tx-ring-ref`.
    pub tx_ring_ref: GrantRef,
    /// `rx-ring-ref`.
    pub rx_ring_ref: GrantRef,
    /// `event-channel`, or the split pair.
    pub event_channels: EventChannels,
    /// `request-rx-copy` (the backend refuses a frontend without it).
    pub request_rx_copy: bool,
    /// `feature-rx-notify`.
    pub feature_rx_notify: bool,
    /// `feature-sg`.
    pub feature_sg: bool,
    /// `feature-gso-tcpv4`.
    pub feature_gso_tcpv4: bool,
    /// `feature-gso-tcpv6`.
    pub feature_gso_tcpv6: bool,
    /// `feature-no-csum-offload`: the frontend wants complete checksums.
    pub feature_no_csum_offload: bool,
    /// `feature-ipv6-csum-offload`.
    pub feature_ipv6_csum_offload: bool,
    /// `feature-multicast-control`.
    pub feature_multicast_control: bool,
}

impl FrontendInfo {
    /// What this crate's netfront writes: one event channel, copy mode, rx notify, no
    /// offloads (checksums complete both ways), scatter-gather as asked.
    pub fn new(tx_ring_ref: GrantRef, rx_ring_ref: GrantRef, port: EvtchnPort, sg: bool) -> Self {
        Self {
            tx_ring_ref,
            rx_ring_ref,
            event_channels: EventChannels::Single(port),
            request_rx_copy: true,
            feature_rx_notify: true,
            feature_sg: sg,
            feature_gso_tcpv4: false,
            feature_gso_tcpv6: false,
            feature_no_csum_offload: true,
            feature_ipv6_csum_offload: false,
            feature_multicast_control: false,
        }
    }

    /// Read the frontend's nodes through `read(key)`. `tx-ring-ref`, `rx-ring-ref` and an
    /// event channel (`event-channel`, or both split nodes) are required; the features
    /// default to off. The backend refuses `request_rx_copy == false` itself.
    pub fn from_xenstore<F, S>(mut read: F) -> Result<Self, KeyError>
    where
        F: FnMut(&str) -> Option<S>,
        S: AsRef<str>,
    {
        let r = &mut read;
        let tx_ring_ref = parse_u32(required(r, KEY_TX_RING_REF)?.as_ref())
            .ok_or(KeyError::Invalid(KEY_TX_RING_REF))?;
        let rx_ring_ref = parse_u32(required(r, KEY_RX_RING_REF)?.as_ref())
            .ok_or(KeyError::Invalid(KEY_RX_RING_REF))?;
        let event_channels = match r(KEY_EVENT_CHANNEL) {
            Some(v) => EventChannels::Single(
                parse_u32(v.as_ref()).ok_or(KeyError::Invalid(KEY_EVENT_CHANNEL))?,
            ),
            None => {
                let tx = r(KEY_EVENT_CHANNEL_TX).ok_or(KeyError::Missing(KEY_EVENT_CHANNEL))?;
                let tx = parse_u32(tx.as_ref()).ok_or(KeyError::Invalid(KEY_EVENT_CHANNEL_TX))?;
                let rx = parse_u32(required(r, KEY_EVENT_CHANNEL_RX)?.as_ref())
                    .ok_or(KeyError::Invalid(KEY_EVENT_CHANNEL_RX))?;
                EventChannels::Split { tx, rx }
            }
        };
        Ok(Self {
            tx_ring_ref,
            rx_ring_ref,
            event_channels,
            request_rx_copy: optional(r, KEY_REQUEST_RX_COPY, parse_bool, false)?,
            feature_rx_notify: optional(r, KEY_FEATURE_RX_NOTIFY, parse_bool, false)?,
            feature_sg: optional(r, KEY_FEATURE_SG, parse_bool, false)?,
            feature_gso_tcpv4: optional(r, KEY_FEATURE_GSO_TCPV4, parse_bool, false)?,
            feature_gso_tcpv6: optional(r, KEY_FEATURE_GSO_TCPV6, parse_bool, false)?,
            feature_no_csum_offload: optional(r, KEY_FEATURE_NO_CSUM_OFFLOAD, parse_bool, false)?,
            feature_ipv6_csum_offload: optional(
                r,
                KEY_FEATURE_IPV6_CSUM_OFFLOAD,
                parse_bool,
                false,
            )?,
            feature_multicast_control: optional(
                r,
                KEY_FEATURE_MULTICAST_CONTROL,
                parse_bool,
                false,
            )?,
        })
    }

    /// The nodes a frontend writes.
    pub fn to_xenstore(&self) -> Vec<(&'static str, String)> {
        let mut v = alloc::vec![
            (KEY_TX_RING_REF, self.tx_ring_ref.to_string()),
            (KEY_RX_RING_REF, self.rx_ring_ref.to_string()),
        ];
        match self.event_channels {
            EventChannels::Single(p) => v.push((KEY_EVENT_CHANNEL, p.to_string())),
            EventChannels::Split { tx, rx } => {
                v.push((KEY_EVENT_CHANNEL_TX, tx.to_string()));
                v.push((KEY_EVENT_CHANNEL_RX, rx.to_string()));
            }
        }
        v.extend([
            bool_node(KEY_REQUEST_RX_COPY, self.request_rx_copy),
            bool_node(KEY_FEATURE_RX_NOTIFY, self.feature_rx_notify),
            bool_node(KEY_FEATURE_SG, self.feature_sg),
            bool_node(KEY_FEATURE_GSO_TCPV4, self.feature_gso_tcpv4),
            bool_node(KEY_FEATURE_GSO_TCPV6, self.feature_gso_tcpv6),
            bool_node(KEY_FEATURE_NO_CSUM_OFFLOAD, self.feature_no_csum_offload),
            bool_node(
                KEY_FEATURE_IPV6_CSUM_OFFLOAD,
                self.feature_ipv6_csum_offload,
            ),
            bool_node(
                KEY_FEATURE_MULTICAST_CONTROL,
                self.feature_multicast_control,
            ),
        ]);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("00:16:3e:0A:0b:ff"),
            Some([0, 0x16, 0x3e, 0x0a, 0x0b, 0xff])
        );
        assert_eq!(
            parse_mac(" 00:16:3e:00:00:01\n\0"),
            Some([0, 0x16, 0x3e, 0, 0, 1])
        );
        for bad in [
            "",
            "00:16:3e:00:00",
            "00:16:3e:00:00:01:02",
            "00:16:3e:00:00:1",
            "00:16:3e:00:00:001",
            "00-16-3e-00-00-01",
            "00:16:3e:00:00:g1",
            "+0:16:3e:00:00:01",
            "00:16:3e:00:00:01:",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
        let m = [0, 0x16, 0x3e, 0xab, 0xcd, 0x0e];
        assert_eq!(format_mac(&m), "00:16:3e:ab:cd:0e");
        assert_eq!(parse_mac(&format_mac(&m)), Some(m));
    }

    #[test]
    fn frontend_round_trip() {
        let f = FrontendInfo::new(9, 10, 5, true);
        let kv: BTreeMap<_, _> = f.to_xenstore().into_iter().collect();
        assert_eq!(kv["tx-ring-ref"], "9");
        assert_eq!(kv["rx-ring-ref"], "10");
        assert_eq!(kv["event-channel"], "5");
        assert_eq!(kv["request-rx-copy"], "1");
        assert_eq!(kv["feature-rx-notify"], "1");
        assert_eq!(kv["feature-no-csum-offload"], "1");
        assert_eq!(FrontendInfo::from_xenstore(|k| kv.get(k).cloned()), Ok(f));
        let split = FrontendInfo {
            event_channels: EventChannels::Split { tx: 3, rx: 4 },
            ..f
        };
        let kv: BTreeMap<_, _> = split.to_xenstore().into_iter().collect();
        assert!(!kv.contains_key("event-channel"));
        assert_eq!(
            FrontendInfo::from_xenstore(|k| kv.get(k).cloned()),
            Ok(split)
        );
    }

    #[test]
    fn frontend_missing_and_invalid() {
        let mut kv = BTreeMap::from([("tx-ring-ref", "8"), ("rx-ring-ref", "9")]);
        assert_eq!(
            FrontendInfo::from_xenstore(|k| kv.get(k).copied()),
            Err(KeyError::Missing("event-channel"))
        );
        kv.insert("event-channel-tx", "3");
        assert_eq!(
            FrontendInfo::from_xenstore(|k| kv.get(k).copied()),
            Err(KeyError::Missing("event-channel-rx"))
        );
        kv.insert("event-channel", "x");
        assert_eq!(
            FrontendInfo::from_xenstore(|k| kv.get(k).copied()),
            Err(KeyError::Invalid("event-channel"))
        );
        kv.insert("event-channel", "3");
        let f = FrontendInfo::from_xenstore(|k| kv.get(k).copied()).unwrap();
        assert!(!f.request_rx_copy, "absent: flipping asked for");
        kv.insert("feature-sg", "yes");
        assert_eq!(
            FrontendInfo::from_xenstore(|k| kv.get(k).copied()),
            Err(KeyError::Invalid("feature-sg"))
        );
        kv.remove("tx-ring-ref");
        assert_eq!(
            FrontendInfo::from_xenstore(|k| kv.get(k).copied()),
            Err(KeyError::Missing("tx-ring-ref"))
        );
    }

    #[test]
    fn backend_round_trip() {
        let b = BackendInfo {
            mac: Some([0, 0x16, 0x3e, 1, 2, 3]),
            handle: Some(0),
            feature_sg: true,
            feature_no_csum_offload: true,
            ..BackendInfo::default()
        };
        let kv: BTreeMap<_, _> = b.to_xenstore().into_iter().collect();
        assert_eq!(kv["mac"], "00:16:3e:01:02:03");
        assert_eq!(kv["feature-rx-copy"], "1");
        assert_eq!(kv["feature-rx-flip"], "0");
        assert_eq!(BackendInfo::from_xenstore(|k| kv.get(k).cloned()), Ok(b));
        let empty: BTreeMap<&str, &str> = BTreeMap::new();
        let e = BackendInfo::from_xenstore(|k| empty.get(k).copied()).unwrap();
        assert!(!e.feature_rx_copy);
        assert_eq!(e.max_queues, 1);
        let kv = BTreeMap::from([("mac", "nope")]);
        assert_eq!(
            BackendInfo::from_xenstore(|k| kv.get(k).copied()),
            Err(KeyError::Invalid("mac"))
        );
        let kv = BTreeMap::from([("multi-queue-max-queues", "0")]);
        assert_eq!(
            BackendInfo::from_xenstore(|k| kv.get(k).copied()),
            Err(KeyError::Invalid("multi-queue-max-queues"))
        );
    }
}
