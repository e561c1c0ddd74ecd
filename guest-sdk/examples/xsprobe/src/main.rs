//! Example PV guest for XenStore permissions: with `peer=N` on its command line it
//! checks, through the SDK's XenBus client, what xenstored lets it do, and prints one
//! line per check and a computed verdict:
//!
//! ```text
//! xsprobe: own name is "xsprobe-a": ok
//! xsprobe: read /local/domain/2/name: EACCES: ok
//! ...
//! xsprobe: 7 checks, 0 failed
//! ```
//!
//! Its own home is readable and its `data/` writable; its `name` is read-only; another
//! domain's keys can be neither read nor written, and the error names what xenstored
//! said. Then it waits (so a peer can probe it) until destroyed.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("xsprobe is a Xen PV guest kernel: build it with --target x86_64-unknown-none");
}

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod guest {
    use alloc::format;
    use alloc::string::String;
    use guest_sdk::xenbus::{self, Error, Nodes};
    use guest_sdk::{println, sched, StartInfo};

    guest_sdk::entry!(guest_main);

    fn arg(cmdline: &[u8], key: &str) -> Option<u64> {
        let v = cmdline
            .split(|&b| b == b' ' || b == 0)
            .find_map(|w| w.strip_prefix(key.as_bytes())?.strip_prefix(b"="))?;
        core::str::from_utf8(v).ok()?.parse().ok()
    }

    fn outcome<T: core::fmt::Debug>(r: &Result<T, Error>) -> String {
        match r {
            Ok(v) => format!("ok {v:?}"),
            Err(e) => String::from(e.name()),
        }
    }

    fn guest_main(si: &'static StartInfo) {
        let xb = match xenbus::xenbus() {
            Ok(x) => x,
            Err(e) => {
                println!("xsprobe: no XenStore: {}", e.name());
                return;
            }
        };
        let peer = arg(si.cmd_line_bytes(), "peer");
        let (mut n, mut failed) = (0u32, 0u32);
        let mut check = |what: String, good: bool| {
            n += 1;
            if !good {
                failed += 1;
            }
            println!("xsprobe: {what}: {}", if good { "ok" } else { "FAILED" });
        };
        // Relative paths are under our home, /local/domain/<us>.
        let name = xb.read_string("name");
        check(format!("own name is {:?}", name), name.is_ok());
        let w = xb.write("data/probe", b"hello");
        check(format!("write data/probe: {}", outcome(&w)), w.is_ok());
        let r = xb.read_string("data/probe");
        check(
            format!("read data/probe back: {}", outcome(&r)),
            r.as_deref() == Ok("hello"),
        );
        let w = xb.write("name", b"impostor");
        check(
            format!("write own name: {}", outcome(&w)),
            w == Err(Error::EACCES),
        );
        let w = xb.write("/tool/xsprobe", b"x");
        check(
            format!("write /tool/xsprobe: {}", outcome(&w)),
            w == Err(Error::EACCES),
        );
        if let Some(p) = peer {
            let r = xb.read_string(&format!("/local/domain/{p}/name"));
            check(
                format!("read /local/domain/{p}/name: {}", outcome(&r)),
                r == Err(Error::EACCES),
            );
            let w = xb.write(&format!("/local/domain/{p}/data/probe"), b"intruder");
            check(
                format!("write /local/domain/{p}/data/probe: {}", outcome(&w)),
                w == Err(Error::EACCES),
            );
        }
        println!("xsprobe: {n} checks, {failed} failed");
        loop {
            sched::block();
        }
    }
}
