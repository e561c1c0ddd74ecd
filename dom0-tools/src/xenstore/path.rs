//! Node names, as C xenstored checks and rewrites them (`canonicalize`,
//! `is_valid_nodename`, `get_parent`, `is_child` in `xenstored_core.c`/`_watch.c`).
//!
//! A name is absolute (`/a/b`) or relative to the connection's home
//! `/local/domain/<domid>`; names starting with `@` are the special watch names and are
//! never nodes.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use xen_abi::xs_wire::XENSTORE_REL_PATH_MAX;

/// `/local/domain/<domid>`: a domain's home, where its relative names live.
pub fn domain_path(domid: u32) -> String {
    format!("/local/domain/{domid}")
}

/// `canonicalize`: an absolute or `@` name as is, a relative one under the domain's home.
pub fn canonicalize(domid: u32, name: &[u8]) -> Vec<u8> {
    match name.first() {
        Some(b'/') | Some(b'@') => name.to_vec(),
        _ => {
            let mut v = domain_path(domid).into_bytes();
            v.push(b'/');
            v.extend_from_slice(name);
            v
        }
    }
}

/// `valid_chars`: what a node name may contain.
fn valid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@')
}

/// Offset just past `/local/domain/<up to 5 digits>/`, the part of a name that does not
/// count against the relative-path limit (C: `sscanf("/local/domain/%5u/%n")`).
fn local_offset(name: &[u8]) -> usize {
    const PFX: &[u8] = b"/local/domain/";
    let Some(rest) = name.strip_prefix(PFX) else {
        return 0;
    };
    let digits = rest
        .iter()
        .take(5)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits > 0 && rest.get(digits) == Some(&b'/') {
        PFX.len() + digits + 1
    } else {
        0
    }
}

/// `is_valid_nodename`: absolute, no trailing `/` (but `/` itself), no `//`, at most
/// `XENSTORE_REL_PATH_MAX` bytes past a `/local/domain/<id>/` prefix, and only
/// `[A-Za-z0-9-/_@]`. Returns the name as a string when valid.
pub fn valid_node_name(name: &[u8]) -> Option<String> {
    let ok = name.first() == Some(&b'/')
        && (name.len() == 1 || name.last() != Some(&b'/'))
        && !name.windows(2).any(|w| w == b"//")
        && name.len() <= local_offset(name) + XENSTORE_REL_PATH_MAX
        && name.iter().all(|&c| valid_char(c));
    // Valid names are ASCII, so this never fails.
    ok.then(|| String::from_utf8(name.to_vec()).ok()).flatten()
}

/// `get_parent`: `/a/b` -> `/a`, `/a` -> `/`, `/` -> `/`.
pub fn parent(name: &str) -> &str {
    match name.get(1..).and_then(|s| s.rfind('/')) {
        Some(i) => name.get(..i + 1).unwrap_or("/"),
        None => "/",
    }
}

/// `basename`: the last component (empty for `/`).
pub fn basename(name: &str) -> &str {
    name.rfind('/')
        .and_then(|i| name.get(i + 1..))
        .unwrap_or("")
}

/// `child_name`: `parent/child`, without doubling the root's slash.
pub fn child(parent: &str, base: &str) -> String {
    if parent == "/" {
        format!("/{base}")
    } else {
        format!("{parent}/{base}")
    }
}

/// `is_child`: whether `child` is `parent` or below it (everything is below `/`).
pub fn is_child(child: &[u8], parent: &[u8]) -> bool {
    if parent == b"/" {
        return true;
    }
    match child.strip_prefix(parent) {
        Some(rest) => rest.is_empty() || rest.first() == Some(&b'/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(s: &str) -> bool {
        valid_node_name(s.as_bytes()).is_some()
    }

    #[test]
    fn validation_as_c() {
        for ok in ["/", "/a", "/a/b-c_d@e", "/local/domain/7/x", "/0/Z"] {
            assert!(valid(ok), "{ok}");
        }
        for bad in [
            "", "a", "/a/", "//", "/a//b", "/a b", "/a.b", "/\u{e9}", "@x",
        ] {
            assert!(!valid(bad), "{bad:?}");
        }
        let long = format!("/{}", "a".repeat(XENSTORE_REL_PATH_MAX - 1));
        assert!(valid(&long));
        assert!(!valid(&format!("{long}b")));
        // The domain's home prefix does not count against the limit.
        let rel = format!("/local/domain/12345/{}", "a".repeat(XENSTORE_REL_PATH_MAX));
        assert!(valid(&rel));
        assert!(!valid(&format!("{rel}b")));
        let six = format!("/local/domain/123456/{}", "a".repeat(XENSTORE_REL_PATH_MAX));
        assert!(!valid(&six));
    }

    #[test]
    fn names() {
        assert_eq!(canonicalize(3, b"dev/x"), b"/local/domain/3/dev/x");
        assert_eq!(canonicalize(3, b"/abs"), b"/abs");
        assert_eq!(canonicalize(3, b"@releaseDomain"), b"@releaseDomain");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "/");
        assert_eq!(basename("/a/bc"), "bc");
        assert_eq!(child("/", "a"), "/a");
        assert_eq!(child("/a", "b"), "/a/b");
        assert!(is_child(b"/a/b", b"/a"));
        assert!(is_child(b"/a", b"/a"));
        assert!(!is_child(b"/ab", b"/a"));
        assert!(is_child(b"/ab", b"/"));
    }
}
