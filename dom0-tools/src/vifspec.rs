//! `vif = [ '...' ]` entries of `xl.cfg` (Xen's `xl-network-configuration`): comma-
//! separated `key=value` settings, parsed as xl's `parse_nic_config` does, with libxl's
//! defaults (`bridge=xenbr0`, a random MAC in Xen's OUI `00:16:3e`, MTU 1500).
//!
//! Where xl only warns and goes on (a malformed `mac`, an unknown key), this toolstack
//! refuses the entry with xl's message: a domain silently given another MAC than the one
//! configured is harder to debug than one that was not created.
//!
//! `ip=` is passed to the guest as the backend's `ip` node (Mini-OS's netfront reads it
//! there): `A.B.C.D`, or `A.B.C.D/N`, optionally followed by a gateway
//! (`ip=10.0.0.2/24 10.0.0.1`). A guest without `ip` configures itself by DHCP.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A MAC address.
pub type Mac = [u8; 6];

/// One parsed `vif` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VifSpec {
    /// `mac=`; `None` asks for a random one ([`VifSpec::mac_or`]).
    pub mac: Option<Mac>,
    /// `bridge=` (default `xenbr0`).
    pub bridge: String,
    /// `ip=`, as given.
    pub ip: Option<String>,
    /// `vifname=`: the backend interface's name (default `vif<domid>.<devid>`).
    pub vifname: Option<String>,
    /// `mtu=` (default 1500).
    pub mtu: u32,
    /// `devid=`: the device number (default: the entry's index).
    pub devid: Option<u32>,
    /// `model=` (accepted; HVM only in Xen, so unused for PV).
    pub model: Option<String>,
    /// `rate=` (accepted, not enforced yet: reported by `network-list`).
    pub rate: Option<String>,
    /// `trusted` / `untrusted` (default trusted, as libxl).
    pub trusted: bool,
}

impl Default for VifSpec {
    fn default() -> Self {
        Self {
            mac: None,
            bridge: "xenbr0".into(),
            ip: None,
            vifname: None,
            mtu: 1500,
            devid: None,
            model: None,
            rate: None,
            trusted: true,
        }
    }
}

/// Keys xl accepts that mean nothing for a PV vif served by this dom0 (scripts,
/// COLO replication, driver domains by name): accepted and ignored.
const IGNORED: &[&str] = &["script", "gatewaydev", "netdev", "backend", "accel"];

impl VifSpec {
    /// Parse one entry (xl's messages for what it refuses).
    pub fn parse(spec: &str) -> Result<VifSpec, String> {
        let mut v = VifSpec::default();
        for token in spec.split(',') {
            let token = token.trim();
            if token.is_empty() {
                continue;
            }
            match token.split_once('=') {
                Some((k, val)) => {
                    let val = val.trim();
                    match k.trim() {
                        "mac" => {
                            let mac = parse_mac(val)
                                .ok_or_else(|| "Invalid parameter `mac'.".to_string())?;
                            if mac[0] & 1 != 0 {
                                return Err(format!(
                                    "Invalid parameter `mac': {val} is a multicast address"
                                ));
                            }
                            v.mac = Some(mac);
                        }
                        "bridge" if !val.is_empty() => v.bridge = val.to_string(),
                        "ip" => {
                            check_ip(val)?;
                            v.ip = Some(val.to_string());
                        }
                        "vifname" => v.vifname = Some(val.to_string()),
                        "model" => v.model = Some(val.to_string()),
                        "rate" => v.rate = Some(val.to_string()),
                        "type" => {
                            match val {
                                "vif" => {}
                                "ioemu" => return Err(
                                    "trying to create PV or PVH guest with an emulated interface"
                                        .into(),
                                ),
                                _ => return Err("Invalid parameter `type'.".into()),
                            }
                        }
                        "mtu" => match val.parse::<u32>() {
                            Ok(m) if (68..=65535).contains(&m) => v.mtu = m,
                            _ => return Err(format!("Invalid parameter `mtu': {val}")),
                        },
                        "devid" => match val.parse::<u32>() {
                            Ok(d) => v.devid = Some(d),
                            Err(_) => return Err(format!("Invalid parameter `devid': {val}")),
                        },
                        k if IGNORED.contains(&k) || k.starts_with("colo_") => {}
                        _ => return Err(format!("unrecognized argument `{token}'")),
                    }
                }
                None => match token {
                    "trusted" => v.trusted = true,
                    "untrusted" => v.trusted = false,
                    _ => return Err(format!("unrecognized argument `{token}'")),
                },
            }
        }
        Ok(v)
    }

    /// The configured MAC, or one in Xen's OUI from `random` (libxl's rule: the fourth
    /// byte's top bit clear).
    pub fn mac_or(&self, random: [u8; 3]) -> Mac {
        self.mac
            .unwrap_or([0x00, 0x16, 0x3e, random[0] & 0x7f, random[1], random[2]])
    }
}

/// `00:16:3e:12:34:56` (also with `-`); two hex digits or one per byte.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(mac)
}

/// `00:16:3e:12:34:56`.
pub fn format_mac(m: &Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// An IPv4 address with an optional prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address.
    pub addr: [u8; 4],
    /// The prefix length (24 when not given).
    pub prefix: u8,
}

/// A static address for a guest: `A.B.C.D[/N] [GATEWAY]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticIp {
    /// The guest's address.
    pub cidr: Ipv4Cidr,
    /// The default gateway, if given.
    pub gateway: Option<[u8; 4]>,
}

/// Parse `A.B.C.D`.
pub fn parse_ipv4(s: &str) -> Option<[u8; 4]> {
    let mut a = [0u8; 4];
    let mut parts = s.split('.');
    for b in a.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *b = p.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(a)
}

/// Parse the `ip` value: `A.B.C.D[/N] [GATEWAY]`.
pub fn parse_static_ip(s: &str) -> Option<StaticIp> {
    let mut words = s.split_ascii_whitespace();
    let first = words.next()?;
    let (addr, prefix) = match first.split_once('/') {
        Some((a, n)) => (a, n.parse::<u8>().ok().filter(|n| (1..=32).contains(n))?),
        None => (first, 24),
    };
    let addr = parse_ipv4(addr)?;
    let gateway = match words.next() {
        Some(g) => Some(parse_ipv4(g)?),
        None => None,
    };
    if words.next().is_some() {
        return None;
    }
    Some(StaticIp {
        cidr: Ipv4Cidr { addr, prefix },
        gateway,
    })
}

fn check_ip(val: &str) -> Result<(), String> {
    parse_static_ip(val)
        .map(|_| ())
        .ok_or_else(|| format!("Invalid parameter `ip': `{val}' (A.B.C.D[/N] [GATEWAY])"))
}

/// Every entry of a `vif` list, or the first error; entries without `devid` get their
/// index, and two entries may not share a device number.
pub fn parse_all(entries: &[String]) -> Result<Vec<VifSpec>, String> {
    let mut out: Vec<VifSpec> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let mut v = VifSpec::parse(e)?;
        let id = v.devid.unwrap_or(i as u32);
        if out.iter().any(|o| o.devid == Some(id)) {
            return Err(format!("two vifs with device number {id}"));
        }
        v.devid = Some(id);
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_defaults() {
        let v = VifSpec::parse("mac=00:16:3e:01:02:0a, bridge=xenbr1, ip=10.0.0.2/24 10.0.0.1")
            .unwrap();
        assert_eq!(v.mac, Some([0, 0x16, 0x3e, 1, 2, 10]));
        assert_eq!(v.bridge, "xenbr1");
        assert_eq!(
            parse_static_ip(v.ip.as_deref().unwrap()),
            Some(StaticIp {
                cidr: Ipv4Cidr {
                    addr: [10, 0, 0, 2],
                    prefix: 24
                },
                gateway: Some([10, 0, 0, 1])
            })
        );
        let d = VifSpec::parse("").unwrap();
        assert_eq!(
            (d.bridge.as_str(), d.mtu, d.mac, d.trusted),
            ("xenbr0", 1500, None, true)
        );
        assert_eq!(d.mac_or([0xff, 2, 3]), [0, 0x16, 0x3e, 0x7f, 2, 3]);
        let u = VifSpec::parse("untrusted, script=vif-bridge, mtu=9000, type=vif").unwrap();
        assert!(!u.trusted);
        assert_eq!(u.mtu, 9000);
    }

    #[test]
    fn refusals_use_xls_words() {
        assert_eq!(
            VifSpec::parse("mac=00:16:3e:zz:00:01").unwrap_err(),
            "Invalid parameter `mac'."
        );
        assert!(VifSpec::parse("mac=01:00:5e:00:00:01")
            .unwrap_err()
            .contains("multicast"));
        assert!(VifSpec::parse("mac=00:16:3e:00:01").is_err());
        assert!(VifSpec::parse("mac=00:16:3e:00:01:02:03").is_err());
        assert_eq!(
            VifSpec::parse("colour=red").unwrap_err(),
            "unrecognized argument `colour=red'"
        );
        assert!(VifSpec::parse("type=ioemu")
            .unwrap_err()
            .contains("emulated"));
        assert!(VifSpec::parse("ip=10.0.0.300").is_err());
        assert!(VifSpec::parse("ip=10.0.0.3/33").is_err());
        assert!(VifSpec::parse("mtu=20").is_err());
    }

    #[test]
    fn mac_round_trip_and_devids() {
        let m = [0x00, 0x16, 0x3e, 0xab, 0x0c, 0xff];
        assert_eq!(parse_mac(&format_mac(&m)), Some(m));
        assert_eq!(parse_mac("0-16-3e-ab-c-ff"), Some(m));
        let all = parse_all(&["bridge=a".into(), "devid=5".into(), "".into()]).unwrap();
        let ids: Vec<u32> = all.iter().map(|v| v.devid.unwrap()).collect();
        assert_eq!(ids, vec![0, 5, 2]);
        assert!(parse_all(&["devid=1".into(), "".into()])
            .unwrap_err()
            .contains("device number 1"));
    }
}
