//! The xenstore nodes of the block protocol (`blkif.h`'s "Feature and Parameter
//! Negotiation"), parsed from and formatted to their string values. No xenstore client:
//! the caller reads and writes the nodes.
//!
//! Numbers are decimal. Parsing is strict (optional surrounding ASCII whitespace or
//! trailing NULs, then digits only) and total: a value from a hostile peer gives a
//! [`KeyError`], never a panic.
//!
//! `sectors` is read, as Linux's blkfront reads it and Linux's blkback writes it, in
//! 512-byte units whatever `sector-size` says.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use xen_abi::event_channel::EvtchnPort;
use xen_abi::grant_table::GrantRef;
use xen_abi::io::blkif::{BLKIF_SECTOR_SIZE, VDISK_READONLY};
use xen_abi::io::protocols::{
    XEN_IO_PROTO_ABI_ARM, XEN_IO_PROTO_ABI_X86_32, XEN_IO_PROTO_ABI_X86_64,
};

/// Backend node: capacity in 512-byte sectors.
pub const KEY_SECTORS: &str = "sectors";
/// Backend node: logical sector size in bytes.
pub const KEY_SECTOR_SIZE: &str = "sector-size";
/// Backend node: physical sector size in bytes (optional).
pub const KEY_PHYSICAL_SECTOR_SIZE: &str = "physical-sector-size";
/// Backend node: `VDISK_*` bits.
pub const KEY_INFO: &str = "info";
/// Backend node: `BLKIF_OP_FLUSH_DISKCACHE` offered.
pub const KEY_FEATURE_FLUSH_CACHE: &str = "feature-flush-cache";
/// Backend node: `BLKIF_OP_WRITE_BARRIER` offered.
pub const KEY_FEATURE_BARRIER: &str = "feature-barrier";
/// Backend node: `BLKIF_OP_DISCARD` offered.
pub const KEY_FEATURE_DISCARD: &str = "feature-discard";
/// Backend node: `BLKIF_DISCARD_SECURE` honoured.
pub const KEY_DISCARD_SECURE: &str = "discard-secure";
/// Backend node: `BLKIF_OP_INDIRECT` offered, with this many segments at most.
pub const KEY_FEATURE_MAX_INDIRECT_SEGMENTS: &str = "feature-max-indirect-segments";
/// Frontend node: grant reference of the (single) ring page.
pub const KEY_RING_REF: &str = "ring-ref";
/// Frontend node: event channel port.
pub const KEY_EVENT_CHANNEL: &str = "event-channel";
/// Frontend node: ring ABI (`XEN_IO_PROTO_ABI_*`).
pub const KEY_PROTOCOL: &str = "protocol";

/// A node is missing or its value does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// A required node is absent.
    Missing(&'static str),
    /// A node's value is malformed or out of range.
    Invalid(&'static str),
}

fn trim(s: &str) -> &str {
    s.trim_end_matches('\0')
        .trim_matches(|c: char| c.is_ascii_whitespace())
}

/// A decimal `u64`.
pub fn parse_u64(s: &str) -> Option<u64> {
    let s = trim(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A decimal `u32`.
pub fn parse_u32(s: &str) -> Option<u32> {
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

/// A boolean node: a decimal number, nonzero is true (as `xenbus_read_unsigned`).
pub fn parse_bool(s: &str) -> Option<bool> {
    parse_u64(s).map(|v| v != 0)
}

/// `sector-size`/`physical-sector-size`: a power of two, at least 512.
pub fn parse_sector_size(s: &str) -> Option<u32> {
    parse_u32(s).filter(|v| v.is_power_of_two() && *v as usize >= BLKIF_SECTOR_SIZE)
}

/// The frontend's `protocol` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `x86_64-abi`: this ABI (also the default when the node is absent).
    X86_64,
    /// `x86_32-abi`: a different ring layout, not supported here.
    X86_32,
    /// `arm-abi`.
    Arm,
    /// Anything else.
    Unknown,
}

impl Protocol {
    /// Parse a `protocol` value.
    pub fn parse(s: &str) -> Self {
        match trim(s) {
            XEN_IO_PROTO_ABI_X86_64 => Self::X86_64,
            XEN_IO_PROTO_ABI_X86_32 => Self::X86_32,
            XEN_IO_PROTO_ABI_ARM => Self::Arm,
            _ => Self::Unknown,
        }
    }
    /// Whether the ring layout is this crate's (x86_64).
    pub fn is_native(self) -> bool {
        self == Self::X86_64
    }
    /// The node's value.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Self::X86_64 => Some(XEN_IO_PROTO_ABI_X86_64),
            Self::X86_32 => Some(XEN_IO_PROTO_ABI_X86_32),
            Self::Arm => Some(XEN_IO_PROTO_ABI_ARM),
            Self::Unknown => None,
        }
    }
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

/// What a backend announces about the disk (read by the frontend at connect time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    /// `sectors`: capacity in 512-byte sectors.
    pub sectors: u64,
    /// `sector-size`: logical block size in bytes.
    pub sector_size: u32,
    /// `physical-sector-size` (defaults to `sector-size`).
    pub physical_sector_size: u32,
    /// `info`: `VDISK_*` bits.
    pub info: u32,
    /// `feature-flush-cache`.
    pub feature_flush_cache: bool,
    /// `feature-barrier`.
    pub feature_barrier: bool,
    /// `feature-discard`.
    pub feature_discard: bool,
    /// `discard-secure`.
    pub discard_secure: bool,
    /// `feature-max-indirect-segments` (0: absent).
    pub max_indirect_segments: u32,
}

impl Default for BackendInfo {
    fn default() -> Self {
        Self {
            sectors: 0,
            sector_size: BLKIF_SECTOR_SIZE as u32,
            physical_sector_size: BLKIF_SECTOR_SIZE as u32,
            info: 0,
            feature_flush_cache: false,
            feature_barrier: false,
            feature_discard: false,
            discard_secure: false,
            max_indirect_segments: 0,
        }
    }
}

impl BackendInfo {
    /// `info & VDISK_READONLY`.
    pub fn read_only(&self) -> bool {
        self.info & VDISK_READONLY != 0
    }

    /// Capacity in bytes (`None` if it overflows).
    pub fn capacity_bytes(&self) -> Option<u64> {
        self.sectors.checked_mul(BLKIF_SECTOR_SIZE as u64)
    }

    /// Read the backend's nodes through `read(key)` (the value of `<backend>/key`, or
    /// `None` if absent). `sectors`, `info` and `sector-size` are required, as for
    /// Linux's blkfront; the `feature-*` nodes default to off.
    pub fn from_xenstore<F, S>(mut read: F) -> Result<Self, KeyError>
    where
        F: FnMut(&str) -> Option<S>,
        S: AsRef<str>,
    {
        let sectors = parse_u64(required(&mut read, KEY_SECTORS)?.as_ref())
            .ok_or(KeyError::Invalid(KEY_SECTORS))?;
        let info = parse_u32(required(&mut read, KEY_INFO)?.as_ref())
            .ok_or(KeyError::Invalid(KEY_INFO))?;
        let sector_size = parse_sector_size(required(&mut read, KEY_SECTOR_SIZE)?.as_ref())
            .ok_or(KeyError::Invalid(KEY_SECTOR_SIZE))?;
        let physical_sector_size = optional(
            &mut read,
            KEY_PHYSICAL_SECTOR_SIZE,
            parse_sector_size,
            sector_size,
        )?;
        Ok(Self {
            sectors,
            sector_size,
            physical_sector_size,
            info,
            feature_flush_cache: optional(&mut read, KEY_FEATURE_FLUSH_CACHE, parse_bool, false)?,
            feature_barrier: optional(&mut read, KEY_FEATURE_BARRIER, parse_bool, false)?,
            feature_discard: optional(&mut read, KEY_FEATURE_DISCARD, parse_bool, false)?,
            discard_secure: optional(&mut read, KEY_DISCARD_SECURE, parse_bool, false)?,
            max_indirect_segments: optional(
                &mut read,
                KEY_FEATURE_MAX_INDIRECT_SEGMENTS,
                parse_u32,
                0,
            )?,
        })
    }

    /// The nodes a backend writes for this info (features only when offered).
    pub fn to_xenstore(&self) -> Vec<(&'static str, String)> {
        let mut v = alloc::vec![
            (KEY_SECTORS, self.sectors.to_string()),
            (KEY_INFO, self.info.to_string()),
            (KEY_SECTOR_SIZE, self.sector_size.to_string()),
            (
                KEY_PHYSICAL_SECTOR_SIZE,
                self.physical_sector_size.to_string()
            ),
            (
                KEY_FEATURE_FLUSH_CACHE,
                u8::from(self.feature_flush_cache).to_string()
            ),
            (
                KEY_FEATURE_BARRIER,
                u8::from(self.feature_barrier).to_string()
            ),
            (
                KEY_FEATURE_DISCARD,
                u8::from(self.feature_discard).to_string()
            ),
        ];
        if self.feature_discard {
            v.push((
                KEY_DISCARD_SECURE,
                u8::from(self.discard_secure).to_string(),
            ));
        }
        if self.max_indirect_segments > 0 {
            v.push((
                KEY_FEATURE_MAX_INDIRECT_SEGMENTS,
                self.max_indirect_segments.to_string(),
            ));
        }
        v
    }
}

/// What a frontend announces about its ring (read by the backend to connect).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontendInfo {
    /// `ring-ref`.
    pub ring_ref: GrantRef,
    /// `event-channel`.
    pub event_channel: EvtchnPort,
    /// `protocol` (default x86_64).
    pub protocol: Protocol,
}

impl FrontendInfo {
    /// Read the frontend's nodes through `read(key)`. `ring-ref` and `event-channel` are
    /// required; `protocol` defaults to native. The caller refuses a non-native
    /// protocol ([`Protocol::is_native`]).
    pub fn from_xenstore<F, S>(mut read: F) -> Result<Self, KeyError>
    where
        F: FnMut(&str) -> Option<S>,
        S: AsRef<str>,
    {
        let ring_ref = parse_u32(required(&mut read, KEY_RING_REF)?.as_ref())
            .ok_or(KeyError::Invalid(KEY_RING_REF))?;
        let event_channel = parse_u32(required(&mut read, KEY_EVENT_CHANNEL)?.as_ref())
            .ok_or(KeyError::Invalid(KEY_EVENT_CHANNEL))?;
        let protocol = read(KEY_PROTOCOL).map_or(Protocol::X86_64, |s| Protocol::parse(s.as_ref()));
        Ok(Self {
            ring_ref,
            event_channel,
            protocol,
        })
    }

    /// The nodes a frontend writes.
    pub fn to_xenstore(&self) -> Vec<(&'static str, String)> {
        let mut v = alloc::vec![
            (KEY_RING_REF, self.ring_ref.to_string()),
            (KEY_EVENT_CHANNEL, self.event_channel.to_string()),
        ];
        if let Some(p) = self.protocol.as_str() {
            v.push((KEY_PROTOCOL, p.to_string()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("123"), Some(123));
        assert_eq!(parse_u64(" 123\n"), Some(123));
        assert_eq!(parse_u64("123\0"), Some(123));
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("+1"), None);
        assert_eq!(parse_u64("0x10"), None);
        assert_eq!(parse_u64("18446744073709551616"), None);
        assert_eq!(parse_u32("4294967296"), None);
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_sector_size("4096"), Some(4096));
        assert_eq!(parse_sector_size("256"), None);
        assert_eq!(parse_sector_size("1000"), None);
    }

    #[test]
    fn backend_round_trip() {
        let info = BackendInfo {
            sectors: 1 << 21,
            sector_size: 4096,
            physical_sector_size: 4096,
            info: VDISK_READONLY,
            feature_flush_cache: true,
            feature_barrier: false,
            feature_discard: true,
            discard_secure: false,
            max_indirect_segments: 32,
        };
        let kv: BTreeMap<_, _> = info.to_xenstore().into_iter().collect();
        assert_eq!(kv["sectors"], "2097152");
        let back = BackendInfo::from_xenstore(|k| kv.get(k).cloned()).unwrap();
        assert_eq!(back, info);
        assert!(back.read_only());
    }

    #[test]
    fn backend_missing_and_invalid() {
        let mut kv = BTreeMap::from([("sectors", "8"), ("info", "0")]);
        assert_eq!(
            BackendInfo::from_xenstore(|k| kv.get(k).copied()),
            Err(KeyError::Missing("sector-size"))
        );
        kv.insert("sector-size", "512");
        let i = BackendInfo::from_xenstore(|k| kv.get(k).copied()).unwrap();
        assert_eq!(i.physical_sector_size, 512);
        assert!(!i.feature_flush_cache);
        kv.insert("feature-max-indirect-segments", "lots");
        assert_eq!(
            BackendInfo::from_xenstore(|k| kv.get(k).copied()),
            Err(KeyError::Invalid("feature-max-indirect-segments"))
        );
    }

    #[test]
    fn frontend_round_trip() {
        let f = FrontendInfo {
            ring_ref: 8,
            event_channel: 5,
            protocol: Protocol::X86_64,
        };
        let kv: BTreeMap<_, _> = f.to_xenstore().into_iter().collect();
        assert_eq!(kv["protocol"], "x86_64-abi");
        assert_eq!(FrontendInfo::from_xenstore(|k| kv.get(k).cloned()), Ok(f));
        let kv = BTreeMap::from([
            ("ring-ref", "9"),
            ("event-channel", "3"),
            ("protocol", "x86_32-abi"),
        ]);
        let g = FrontendInfo::from_xenstore(|k| kv.get(k).copied()).unwrap();
        assert!(!g.protocol.is_native());
        let kv = BTreeMap::from([("ring-ref", "9")]);
        assert_eq!(
            FrontendInfo::from_xenstore(|k| kv.get(k).copied()),
            Err(KeyError::Missing("event-channel"))
        );
    }
}
