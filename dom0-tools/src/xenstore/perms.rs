//! Node permissions, Xen's model (`xs_perm_to_string`, `xs_strings_to_perms`,
//! `perm_for_conn`).
//!
//! A node has a non-empty list of `(domid, access)` entries. The first names the owner
//! and gives the access of every domain not listed later; the following entries give
//! named domains their own access. The owner, the privileged domain (dom0) and a device
//! model acting for the owner (`XS_SET_TARGET`) may do everything.

use alloc::format;
use alloc::vec::Vec;

use super::Error;

/// `XS_PERM_NONE`.
pub const PERM_NONE: u8 = 0;
/// `XS_PERM_READ`.
pub const PERM_READ: u8 = 1;
/// `XS_PERM_WRITE`.
pub const PERM_WRITE: u8 = 2;
/// `XS_PERM_OWNER`: only ever computed, never stored (owner of the node, or privileged).
pub const PERM_OWNER: u8 = 8;
const ALL: u8 = PERM_READ | PERM_WRITE | PERM_OWNER;

/// `struct xs_permissions`: one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    /// The domain the entry is about.
    pub id: u32,
    /// `PERM_READ | PERM_WRITE` bits.
    pub access: u8,
}

/// A node's permission list; never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Perms(Vec<Perm>);

impl Perms {
    /// `n0`-style: owned by `owner`, `access` for everyone else.
    pub fn owned_by(owner: u32, access: u8) -> Perms {
        Perms(alloc::vec![Perm { id: owner, access }])
    }

    /// A list from entries; `None` if empty.
    pub fn from_entries(entries: Vec<Perm>) -> Option<Perms> {
        (!entries.is_empty()).then_some(Perms(entries))
    }

    /// The entries, owner first.
    pub fn entries(&self) -> &[Perm] {
        &self.0
    }

    /// The owning domain.
    pub fn owner(&self) -> u32 {
        self.0.first().map_or(0, |p| p.id)
    }

    /// Replaces the owner, keeping the default access (`construct_node`).
    pub fn set_owner(&mut self, owner: u32) {
        if let Some(p) = self.0.first_mut() {
            p.id = owner;
        }
    }

    /// Drops a released domain: its entries go, and if it owned the list dom0 takes over
    /// (`remove_domid_from_perm`).
    pub fn remove_domain(&mut self, domid: u32) {
        if self.owner() == domid {
            self.set_owner(0);
        }
        let mut first = true;
        self.0
            .retain(|p| core::mem::take(&mut first) || p.id != domid);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a list has an owner.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The wire form: `r1\0n0\0...`, each entry NUL-terminated (`perms_to_strings`).
    pub fn to_wire(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for p in &self.0 {
            let c = match p.access & (PERM_READ | PERM_WRITE) {
                PERM_READ => 'r',
                PERM_WRITE => 'w',
                PERM_NONE => 'n',
                _ => 'b',
            };
            // C prints the id with `%i`.
            v.extend_from_slice(format!("{c}{}", p.id as i32).as_bytes());
            v.push(0);
        }
        v
    }

    /// Parses one entry per string (`xs_strings_to_perms`): `r`, `w`, `b` or `n`, then a
    /// domid in C `strtol(.., 0)` syntax (decimal, `0x` hex or `0` octal), nothing after.
    pub fn parse(strings: &[&[u8]]) -> Result<Perms, Error> {
        let mut v = Vec::with_capacity(strings.len());
        for s in strings {
            let (&c, num) = s.split_first().ok_or(Error::EINVAL)?;
            let access = match c {
                b'r' => PERM_READ,
                b'w' => PERM_WRITE,
                b'b' => PERM_READ | PERM_WRITE,
                b'n' => PERM_NONE,
                _ => return Err(Error::EINVAL),
            };
            v.push(Perm {
                id: parse_c_uint(num).ok_or(Error::EINVAL)?,
                access,
            });
        }
        Perms::from_entries(v).ok_or(Error::EINVAL)
    }
}

/// An unsigned number as `strtol(s, &end, 0)` reads it with `*end == 0` required.
fn parse_c_uint(s: &[u8]) -> Option<u32> {
    let (digits, radix) = if let Some(h) = s.strip_prefix(b"0x").or(s.strip_prefix(b"0X")) {
        (h, 16)
    } else if s.len() > 1 && s.first() == Some(&b'0') {
        (s.get(1..)?, 8)
    } else {
        (s, 10)
    };
    let text = core::str::from_utf8(digits).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, radix).ok()
}

/// Who is asking: a connection's domain and, for a device model, its target domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Who {
    /// The connection's domain.
    pub domid: u32,
    /// `XS_SET_TARGET`: the domain this one acts for.
    pub target: Option<u32>,
}

impl Who {
    /// `domain_is_unprivileged`: everyone but dom0 (C's `priv_domid` is also 0).
    pub fn unprivileged(&self) -> bool {
        self.domid != 0
    }

    fn is(&self, id: u32) -> bool {
        id == self.domid || self.target == Some(id)
    }

    /// `perm_for_conn`: the access bits (with `PERM_OWNER`) this connection has.
    pub fn access(&self, perms: &Perms) -> u8 {
        if !self.unprivileged() || self.is(perms.owner()) {
            return ALL;
        }
        let named = perms.0.iter().skip(1).find(|p| self.is(p.id));
        named
            .or(perms.0.first())
            .map_or(PERM_NONE, |p| p.access & ALL)
    }

    /// Whether the connection may read a node with these permissions.
    pub fn can_read(&self, perms: &Perms) -> bool {
        self.access(perms) & PERM_READ != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Perms, Error> {
        let parts: Vec<&[u8]> = s.split(',').map(str::as_bytes).collect();
        Perms::parse(&parts)
    }

    #[test]
    fn wire_round_trip() {
        let p = parse("n0,r1,w2,b3").unwrap();
        assert_eq!(p.to_wire(), b"n0\0r1\0w2\0b3\0");
        assert_eq!(parse("r0x10").unwrap().owner(), 16);
        assert_eq!(parse("r010").unwrap().owner(), 8);
        for bad in ["", "x1", "r", "r1a", "r-1", "r 1", "r99999999999"] {
            assert_eq!(parse(bad), Err(Error::EINVAL), "{bad:?}");
        }
    }

    #[test]
    fn access_rules() {
        let p = parse("r5,w6,n7").unwrap();
        let who = |domid, target| Who { domid, target };
        assert_eq!(who(0, None).access(&p), ALL, "dom0 can do all");
        assert_eq!(who(5, None).access(&p), ALL, "owner can do all");
        assert_eq!(who(6, None).access(&p), PERM_WRITE);
        assert_eq!(who(7, None).access(&p), PERM_NONE);
        assert_eq!(who(8, None).access(&p), PERM_READ, "default");
        assert_eq!(who(9, Some(5)).access(&p), ALL, "device model of the owner");
        assert_eq!(who(9, Some(6)).access(&p), PERM_WRITE);
    }

    #[test]
    fn release_cleans_up() {
        let mut p = parse("r5,w6,n5").unwrap();
        p.remove_domain(5);
        assert_eq!(p.to_wire(), b"r0\0w6\0");
    }
}
