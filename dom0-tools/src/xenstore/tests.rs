//! The request processor, request by request, against C xenstored's behaviour.

use super::*;

fn send(s: &mut Server, d: u32, type_: u32, tx: u32, payload: &[u8]) -> Outcome {
    let hdr = XsdSockmsg {
        type_,
        req_id: 77,
        tx_id: tx,
        len: payload.len() as u32,
    };
    s.handle(d, hdr, payload)
}

/// The reply to the requester: `Ok(payload)` or `Err(error name)`.
fn reply(o: &Outcome, d: u32, type_: u32) -> Result<Vec<u8>, String> {
    let r = o
        .msgs
        .iter()
        .find(|m| m.to == d && m.hdr.type_ != XS_WATCH_EVENT);
    let r = r.expect("a reply");
    assert_eq!((r.hdr.req_id, r.hdr.len as usize), (77, r.payload.len()));
    if r.hdr.type_ == XS_ERROR {
        let name = r.payload.strip_suffix(b"\0").expect("NUL-terminated");
        return Err(String::from_utf8(name.to_vec()).unwrap());
    }
    assert_eq!(r.hdr.type_, type_);
    Ok(r.payload.clone())
}

fn req(s: &mut Server, d: u32, type_: u32, payload: &[u8]) -> Result<Vec<u8>, String> {
    reply(&send(s, d, type_, 0, payload), d, type_)
}

fn events(o: &Outcome) -> Vec<(u32, String)> {
    o.msgs
        .iter()
        .filter(|m| m.hdr.type_ == XS_WATCH_EVENT)
        .map(|m| {
            let s = String::from_utf8(m.payload.clone()).unwrap();
            (m.to, s.trim_end_matches('\0').replace('\0', " "))
        })
        .collect()
}

fn ev(to: u32, s: &str) -> (u32, String) {
    (to, s.to_string())
}

fn ok() -> Result<Vec<u8>, String> {
    Ok(b"OK\0".to_vec())
}

fn err(name: &str) -> Result<Vec<u8>, String> {
    Err(name.to_string())
}

fn write(s: &mut Server, d: u32, path: &str, value: &str) -> Result<Vec<u8>, String> {
    req(
        s,
        d,
        XS_WRITE,
        &[path.as_bytes(), b"\0", value.as_bytes()].concat(),
    )
}

fn read(s: &mut Server, d: u32, path: &str) -> Result<Vec<u8>, String> {
    req(s, d, XS_READ, &cstr(path))
}

fn set_perms(s: &mut Server, d: u32, path: &str, perms: &[&str]) -> Result<Vec<u8>, String> {
    let mut p = cstr(path);
    for x in perms {
        p.extend(cstr(x));
    }
    req(s, d, XS_SET_PERMS, &p)
}

/// A server with domains 1 and 2 introduced and their homes made as `xl` does.
fn setup() -> Server {
    let mut s = Server::default();
    for d in [1u32, 2] {
        let o = send(
            &mut s,
            0,
            XS_INTRODUCE,
            0,
            format!("{d}\0{}\0{}\0", 100 + d, 3).as_bytes(),
        );
        assert_eq!(reply(&o, 0, XS_INTRODUCE), ok());
        assert_eq!(
            o.domain,
            Some(DomainEvent::Introduced {
                domid: d,
                mfn: 100 + u64::from(d),
                port: 3,
                fresh: true
            })
        );
        let home = domain_path(d);
        assert_eq!(req(&mut s, 0, XS_MKDIR, &cstr(&home)), ok());
        assert_eq!(set_perms(&mut s, 0, &home, &[&format!("n{d}")]), ok());
    }
    s
}

#[test]
fn nodes_values_and_directories() {
    let mut s = setup();
    assert_eq!(write(&mut s, 1, "data/x", "hello"), ok());
    assert_eq!(
        read(&mut s, 1, "/local/domain/1/data/x"),
        Ok(b"hello".to_vec())
    );
    assert_eq!(read(&mut s, 1, "data"), Ok(vec![]), "parent made, empty");
    assert_eq!(write(&mut s, 1, "data/y", ""), ok());
    assert_eq!(
        req(&mut s, 1, XS_DIRECTORY, b"data\0"),
        Ok(b"x\0y\0".to_vec())
    );
    assert_eq!(
        req(&mut s, 1, XS_MKDIR, b"data/x\0"),
        ok(),
        "existing is fine"
    );
    assert_eq!(read(&mut s, 1, "data/x"), Ok(b"hello".to_vec()));
    // Binary values, NULs included.
    assert_eq!(write(&mut s, 1, "bin", "a\0b"), ok());
    assert_eq!(read(&mut s, 1, "bin"), Ok(b"a\0b".to_vec()));
    // rm is recursive; a missing node is fine if its parent exists.
    assert_eq!(req(&mut s, 1, XS_RM, b"data\0"), ok());
    assert_eq!(read(&mut s, 1, "data/x"), err("ENOENT"));
    assert_eq!(req(&mut s, 1, XS_RM, b"data\0"), ok());
    assert_eq!(req(&mut s, 1, XS_RM, b"data/x\0"), err("ENOENT"));
    assert_eq!(req(&mut s, 0, XS_RM, b"/\0"), err("EINVAL"));
    assert_eq!(
        req(&mut s, 1, XS_GET_DOMAIN_PATH, b"5\0"),
        Ok(b"/local/domain/5\0".to_vec())
    );
    // The initial structure.
    assert_eq!(
        req(&mut s, 0, XS_DIRECTORY, b"/\0"),
        Ok(b"tool\0local\0".to_vec())
    );
    assert_eq!(
        req(&mut s, 0, XS_DIRECTORY, b"/tool\0"),
        Ok(b"xenstored\0".to_vec())
    );
}

#[test]
fn malformed_requests_get_errors() {
    let mut s = setup();
    for (t, p, e) in [
        (XS_READ, &b"/a"[..], "EINVAL"),          // no NUL
        (XS_READ, b"/a\0b\0", "EINVAL"),          // two args
        (XS_READ, b"", "EINVAL"),                 // nothing
        (XS_READ, b"/a/\0", "EINVAL"),            // trailing slash
        (XS_READ, b"/a//b\0", "EINVAL"),          // double slash
        (XS_READ, b"/a b\0", "EINVAL"),           // bad char
        (XS_READ, b"@releaseDomain\0", "EINVAL"), // special names are not nodes
        (XS_WRITE, b"/a", "EINVAL"),              // no NUL after the path
        (XS_WATCH, b"/a\0", "EINVAL"),            // no token
        (XS_TRANSACTION_END, b"X\0", "EINVAL"),
        (XS_SET_PERMS, b"/a\0", "EINVAL"), // no perms
        (XS_SET_PERMS, b"/a\0q1\0", "EINVAL"),
        (XS_WATCH_EVENT, b"", "ENOSYS"),
        (XS_ERROR, b"", "ENOSYS"),
        (20, b"", "ENOSYS"), // XS_RESTRICT, removed
        (XS_TYPE_COUNT, b"", "ENOSYS"),
        (XS_INVALID, b"", "ENOSYS"),
        (u32::MAX, b"", "ENOSYS"),
        (XS_INTRODUCE, b"3\0", "EINVAL"),
        (XS_INTRODUCE, b"3\x00100\x000\0", "EINVAL"), // port 0
        (XS_DIRECTORY_PART, b"/\0", "EINVAL"),
        (XS_CONTROL, b"print\0", "EINVAL"),
    ] {
        assert_eq!(req(&mut s, 0, t, p), err(e), "type {t} {p:?}");
    }
    // Header length disagreeing with the payload.
    let hdr = XsdSockmsg {
        type_: XS_READ,
        req_id: 77,
        tx_id: 0,
        len: 99,
    };
    assert_eq!(reply(&s.handle(0, hdr, b"/\0"), 0, XS_READ), err("EINVAL"));
    // Unknown transaction.
    assert_eq!(
        reply(&send(&mut s, 1, XS_READ, 5, b"/\0"), 1, XS_READ),
        err("ENOENT")
    );
    // Unknown connections are ignored.
    assert_eq!(send(&mut s, 9, XS_READ, 0, b"/\0"), Outcome::default());
}

#[test]
fn permissions_as_c() {
    let mut s = setup();
    // dom0's nodes are `n0`: domUs can neither see nor guess them.
    assert_eq!(write(&mut s, 0, "/secret/key", "x"), ok());
    assert_eq!(read(&mut s, 1, "/secret/key"), err("EACCES"));
    assert_eq!(read(&mut s, 1, "/secret/none"), err("EACCES"), "not ENOENT");
    assert_eq!(write(&mut s, 1, "/secret/key", "y"), err("EACCES"));
    assert_eq!(req(&mut s, 1, XS_DIRECTORY, b"/\0"), err("EACCES"));
    // In its home a domain may do anything; what it creates it owns.
    assert_eq!(write(&mut s, 1, "a/b", "v"), ok());
    assert_eq!(req(&mut s, 1, XS_GET_PERMS, b"a/b\0"), Ok(b"n1\0".to_vec()));
    assert_eq!(read(&mut s, 1, "nothere"), err("ENOENT"));
    assert_eq!(read(&mut s, 2, "/local/domain/1/nothere"), err("EACCES"));
    // Share read with dom2 (owner keeps everything); dom2 reads but cannot write.
    assert_eq!(set_perms(&mut s, 1, "a/b", &["n1", "r2"]), ok());
    assert_eq!(read(&mut s, 2, "/local/domain/1/a/b"), Ok(b"v".to_vec()));
    assert_eq!(write(&mut s, 2, "/local/domain/1/a/b", "w"), err("EACCES"));
    assert_eq!(
        req(&mut s, 2, XS_GET_PERMS, b"/local/domain/1/a/b\0"),
        Ok(b"n1\0r2\0".to_vec())
    );
    // Only dom0 may give a node away; only the owner may change perms.
    assert_eq!(set_perms(&mut s, 1, "a/b", &["n2"]), err("EPERM"));
    assert_eq!(
        set_perms(&mut s, 2, "/local/domain/1/a/b", &["b2"]),
        err("EACCES")
    );
    assert_eq!(set_perms(&mut s, 0, "/local/domain/1/a/b", &["b2"]), ok());
    assert_eq!(
        write(&mut s, 1, "a/b", "mine?"),
        ok(),
        "b2: everyone else rw"
    );
    assert_eq!(
        req(&mut s, 1, XS_SET_PERMS, b"a/b\0n1\0"),
        err("EACCES"),
        "not owner"
    );
    // A node dom0 creates under a domain's home keeps the home's owner.
    assert_eq!(write(&mut s, 0, "/local/domain/1/from0", "x"), ok());
    assert_eq!(
        req(&mut s, 0, XS_GET_PERMS, b"/local/domain/1/from0\0"),
        Ok(b"n1\0".to_vec())
    );
    // Device model: XS_SET_TARGET gives dom2 dom1's rights.
    assert_eq!(req(&mut s, 0, XS_SET_TARGET, b"2\x001\0"), ok());
    assert_eq!(read(&mut s, 2, "/local/domain/1/from0"), Ok(b"x".to_vec()));
    assert_eq!(req(&mut s, 1, XS_SET_TARGET, b"2\x001\0"), err("EACCES"));
    assert_eq!(req(&mut s, 0, XS_SET_TARGET, b"2\x007\0"), err("ENOENT"));
}

#[test]
fn watches_fire_on_changes_below() {
    let mut s = setup();
    // Registration: ack, then the initial event.
    let o = send(&mut s, 1, XS_WATCH, 0, b"dev\0tok\0");
    assert_eq!(reply(&o, 1, XS_WATCH), ok());
    assert_eq!(o.msgs.last().map(|m| m.hdr.type_), Some(XS_WATCH_EVENT));
    assert_eq!(
        events(&o),
        [ev(1, "dev tok")],
        "relative path reported relative"
    );
    assert_eq!(req(&mut s, 1, XS_WATCH, b"dev\0tok\0"), err("EEXIST"));
    let o = send(&mut s, 0, XS_WATCH, 0, b"/local\0all\0");
    assert_eq!(events(&o), [ev(0, "/local all")]);
    // A write below fires both; the requester's event comes before its reply.
    let o = send(&mut s, 1, XS_WRITE, 0, b"dev/vif/0\0x");
    assert_eq!(
        events(&o),
        [
            ev(0, "/local/domain/1/dev/vif/0 all"),
            ev(1, "dev/vif/0 tok")
        ]
    );
    assert_eq!(o.msgs.last().map(|m| m.hdr.type_), Some(XS_WRITE));
    // dom2 watching dom1's node gets nothing it cannot read.
    assert_eq!(req(&mut s, 2, XS_WATCH, b"/local/domain/1\0spy\0"), ok());
    let o = send(&mut s, 1, XS_WRITE, 0, b"dev/vif/0\0y");
    assert!(!events(&o).iter().any(|e| e.0 == 2));
    // rm: each removed node fires the watches on exactly it; the removed root also
    // fires the watches above it.
    assert_eq!(write(&mut s, 1, "dev/vif/0/mac", "m"), ok());
    assert_eq!(req(&mut s, 1, XS_WATCH, b"dev/vif/0/mac\0leaf\0"), ok());
    let o = send(&mut s, 1, XS_RM, 0, b"dev/vif\0");
    let mut e = events(&o);
    e.sort();
    assert_eq!(
        e,
        [
            ev(0, "/local/domain/1/dev/vif all"),
            ev(1, "dev/vif tok"),
            ev(1, "dev/vif/0/mac leaf"),
        ]
    );
    // Unwatch by the same (relative) name.
    assert_eq!(req(&mut s, 1, XS_UNWATCH, b"dev\0tok\0"), ok());
    assert_eq!(req(&mut s, 1, XS_UNWATCH, b"dev\0tok\0"), err("ENOENT"));
    assert_eq!(s.watch_count(1), 1);
    assert_eq!(req(&mut s, 1, XS_RESET_WATCHES, b""), ok());
    assert_eq!(s.watch_count(1), 0);
    // Duplicate events in one request are sent once.
    assert_eq!(req(&mut s, 0, XS_WATCH, b"/\0all\0"), ok());
    let o = send(&mut s, 0, XS_WRITE, 0, b"/local/z\0");
    assert_eq!(events(&o), [ev(0, "/local/z all")]);
}

#[test]
fn special_watches_introduce_release() {
    let mut s = Server::default();
    assert_eq!(req(&mut s, 0, XS_WATCH, b"@introduceDomain\0i\0"), ok());
    assert_eq!(req(&mut s, 0, XS_WATCH, b"@releaseDomain\0r\0"), ok());
    let o = send(&mut s, 0, XS_INTRODUCE, 0, b"1\x00123\x005\0");
    assert_eq!(events(&o), [ev(0, "@introduceDomain i")]);
    assert!(s.is_introduced(1));
    assert_eq!(
        req(&mut s, 0, XS_IS_DOMAIN_INTRODUCED, b"1\0"),
        Ok(b"T\0".to_vec())
    );
    assert_eq!(
        req(&mut s, 0, XS_IS_DOMAIN_INTRODUCED, b"2\0"),
        Ok(b"F\0".to_vec())
    );
    assert_eq!(
        req(&mut s, 1, XS_INTRODUCE, b"2\x00123\x005\0"),
        err("EACCES")
    );
    assert_eq!(
        req(&mut s, 1, XS_IS_DOMAIN_INTRODUCED, b"1\0"),
        err("EACCES")
    );
    // dom1 may not watch the special names until dom0 allows it.
    assert_eq!(req(&mut s, 1, XS_WATCH, b"@releaseDomain\0r1\0"), ok());
    let o = send(&mut s, 0, XS_INTRODUCE, 0, b"2\x00123\x005\0");
    assert_eq!(events(&o), [ev(0, "@introduceDomain i")]);
    assert_eq!(
        req(&mut s, 1, XS_SET_PERMS, b"@releaseDomain\0r1\0"),
        err("EACCES")
    );
    assert_eq!(
        req(&mut s, 0, XS_SET_PERMS, b"@releaseDomain\0n0\0r1\0"),
        ok()
    );
    assert_eq!(req(&mut s, 0, XS_SET_PERMS, b"@other\0n0\0"), err("EINVAL"));
    // Re-introducing resets the connection.
    let o = send(&mut s, 0, XS_INTRODUCE, 0, b"1\x00123\x006\0");
    assert!(events(&o).is_empty());
    assert_eq!(s.watch_count(1), 0);
    assert_eq!(req(&mut s, 1, XS_WATCH, b"@releaseDomain\0r1\0"), ok());
    // Release: dom1 (allowed now) and dom0 hear of it.
    let o = send(&mut s, 0, XS_RELEASE, 0, b"2\0");
    assert_eq!(reply(&o, 0, XS_RELEASE), ok());
    assert_eq!(o.domain, Some(DomainEvent::Released { domid: 2 }));
    assert_eq!(
        events(&o),
        [ev(0, "@releaseDomain r"), ev(1, "@releaseDomain r1")]
    );
    assert_eq!(req(&mut s, 0, XS_RELEASE, b"2\0"), err("ENOENT"));
    assert_eq!(req(&mut s, 0, XS_RELEASE, b"0\0"), err("EINVAL"));
    // Shutdown fires once until resumed.
    assert_eq!(s.domain_shutdown(1).len(), 2);
    assert!(s.domain_shutdown(1).is_empty());
    assert_eq!(req(&mut s, 0, XS_RESUME, b"1\0"), ok());
    assert_eq!(s.domain_shutdown(1).len(), 2);
    // Releasing dom1 drops it from the special perms.
    s.release_domain(1);
    assert_eq!(s.release_perms, Perms::owned_by(0, PERM_NONE));
}

#[test]
fn release_removes_what_the_domain_still_owns() {
    let mut s = setup();
    assert_eq!(write(&mut s, 1, "a/b", "x"), ok());
    assert_eq!(write(&mut s, 0, "/shared/by1", "x"), ok());
    assert_eq!(set_perms(&mut s, 0, "/shared/by1", &["b1"]), ok());
    assert_eq!(write(&mut s, 0, "/shared/by1/by0", "x"), ok());
    assert_eq!(set_perms(&mut s, 0, "/shared/by1/by0", &["n0"]), ok());
    assert_eq!(req(&mut s, 0, XS_WATCH, b"/shared\0w\0"), ok());
    assert_eq!(s.tree().owned(1), 4);
    let o = send(&mut s, 0, XS_RELEASE, 0, b"1\0");
    assert_eq!(s.tree().owned(1), 0);
    assert!(s.tree().get("/local/domain/1").is_none());
    assert!(
        s.tree().get("/shared/by1/by0").is_none(),
        "below an orphan goes too"
    );
    assert!(events(&o).contains(&ev(0, "/shared/by1 w")));
    // With keep_orphans, dom0 adopts them instead.
    let mut s = setup();
    s.keep_orphans = true;
    assert_eq!(write(&mut s, 2, "a", "x"), ok());
    s.release_domain(2);
    assert_eq!(
        s.tree().get("/local/domain/2/a").map(|n| n.perms.owner()),
        Some(0)
    );
    assert_eq!(s.tree().owned(2), 0);
}

#[test]
fn transactions_isolate_and_conflict() {
    let mut s = setup();
    let start = |s: &mut Server, d| -> u32 {
        let r = req(s, d, XS_TRANSACTION_START, b"\0").unwrap();
        String::from_utf8(r)
            .unwrap()
            .trim_end_matches('\0')
            .parse()
            .unwrap()
    };
    let t = start(&mut s, 1);
    assert_eq!(t, 1);
    let o = send(&mut s, 1, XS_WRITE, t, b"x\x001");
    assert_eq!(reply(&o, 1, XS_WRITE), ok());
    assert_eq!(o.msgs[0].hdr.tx_id, t, "tx_id echoed");
    assert_eq!(read(&mut s, 1, "x"), err("ENOENT"), "invisible outside");
    assert_eq!(
        reply(&send(&mut s, 1, XS_READ, t, b"x\0"), 1, XS_READ),
        Ok(b"1".to_vec())
    );
    assert_eq!(
        reply(&send(&mut s, 1, XS_TRANSACTION_START, t, b"\0"), 1, 0),
        err("EBUSY")
    );
    // Watches fire at commit.
    assert_eq!(req(&mut s, 0, XS_WATCH, b"/local/domain/1\0w\0"), ok());
    let o = send(&mut s, 1, XS_TRANSACTION_END, t, b"T\0");
    assert_eq!(reply(&o, 1, XS_TRANSACTION_END), ok());
    assert_eq!(events(&o), [ev(0, "/local/domain/1/x w")]);
    assert_eq!(read(&mut s, 1, "x"), Ok(b"1".to_vec()));
    assert_eq!(
        reply(&send(&mut s, 1, XS_READ, t, b"x\0"), 1, XS_READ),
        err("ENOENT")
    );
    // A conflicting change makes commit fail with EAGAIN and apply nothing.
    let t = start(&mut s, 1);
    assert_eq!(
        reply(&send(&mut s, 1, XS_READ, t, b"x\0"), 1, XS_READ),
        Ok(b"1".to_vec())
    );
    assert_eq!(
        reply(&send(&mut s, 1, XS_WRITE, t, b"y\0t"), 1, XS_WRITE),
        ok()
    );
    assert_eq!(write(&mut s, 0, "/local/domain/1/x", "2"), ok());
    let o = send(&mut s, 1, XS_TRANSACTION_END, t, b"T\0");
    assert_eq!(reply(&o, 1, XS_TRANSACTION_END), err("EAGAIN"));
    assert!(events(&o).is_empty());
    assert_eq!(read(&mut s, 1, "y"), err("ENOENT"));
    assert_eq!(s.transaction_count(1), 0, "ended even so");
    // Abort discards.
    let t = start(&mut s, 1);
    assert_eq!(reply(&send(&mut s, 1, XS_RM, t, b"x\0"), 1, XS_RM), ok());
    let o = send(&mut s, 1, XS_TRANSACTION_END, t, b"F\0");
    assert_eq!(reply(&o, 1, XS_TRANSACTION_END), ok());
    assert_eq!(read(&mut s, 1, "x"), Ok(b"2".to_vec()));
    assert_eq!(
        reply(&send(&mut s, 1, XS_TRANSACTION_END, 0, b"T\0"), 1, 0),
        err("ENOENT")
    );
    // Limit per connection.
    for _ in 0..10 {
        start(&mut s, 2);
    }
    assert_eq!(req(&mut s, 2, XS_TRANSACTION_START, b"\0"), err("ENOSPC"));
    assert_eq!(req(&mut s, 2, XS_RESET_WATCHES, b""), ok());
    assert_eq!(s.transaction_count(2), 0);
}

#[test]
fn quotas() {
    let quota = Quota {
        nodes: 5,
        watches: 2,
        ..Quota::default()
    };
    let mut s = setup();
    s.quota = quota;
    // dom1 owns its home: 4 more nodes, then ENOSPC, for a whole path at once too.
    assert_eq!(write(&mut s, 1, "a/b/c", ""), ok());
    assert_eq!(write(&mut s, 1, "d/e", ""), err("ENOSPC"));
    assert_eq!(write(&mut s, 1, "d", ""), ok());
    assert_eq!(write(&mut s, 1, "e", ""), err("ENOSPC"));
    assert_eq!(s.tree().owned(1), 5);
    assert!(
        s.tree().get("/local/domain/1/d/e").is_none(),
        "failed request left nothing"
    );
    // In a transaction too, and again at commit.
    assert_eq!(req(&mut s, 1, XS_RM, b"d\0"), ok());
    let t = 1;
    assert_eq!(
        req(&mut s, 1, XS_TRANSACTION_START, b"\0"),
        Ok(b"1\0".to_vec())
    );
    assert_eq!(
        reply(&send(&mut s, 1, XS_WRITE, t, b"t1\0"), 1, XS_WRITE),
        ok()
    );
    assert_eq!(
        reply(&send(&mut s, 1, XS_WRITE, t, b"t2\0"), 1, XS_WRITE),
        err("ENOSPC")
    );
    assert_eq!(write(&mut s, 1, "d", ""), ok());
    assert_eq!(
        reply(&send(&mut s, 1, XS_TRANSACTION_END, t, b"T\0"), 1, 0),
        err("ENOSPC")
    );
    // dom0 has no quota.
    assert_eq!(write(&mut s, 0, "/local/domain/1/f/g/h", ""), ok());
    // Watches.
    assert_eq!(req(&mut s, 1, XS_WATCH, b"a\x001\0"), ok());
    assert_eq!(req(&mut s, 1, XS_WATCH, b"a\x002\0"), ok());
    assert_eq!(req(&mut s, 1, XS_WATCH, b"a\x003\0"), err("E2BIG"));
    // Entry size: header 24 + one perm 8 + value must stay below 2048.
    assert_eq!(write(&mut s, 1, "a/b/c", &"v".repeat(2048 - 32 - 1)), ok());
    assert_eq!(
        write(&mut s, 1, "a/b/c", &"v".repeat(2048 - 32)),
        err("ENOSPC")
    );
    assert_eq!(
        write(&mut s, 0, "/local/domain/1/a/b/c", &"v".repeat(4000)),
        ok()
    );
    // Permission entries.
    let six = ["n1", "r2", "r3", "r4", "r5", "r6"];
    assert_eq!(set_perms(&mut s, 1, "a/b", &six), err("ENOSPC"));
    assert_eq!(set_perms(&mut s, 1, "a/b", &six[..5]), ok());
    assert_eq!(
        set_perms(&mut s, 0, "a/b", &six),
        err("ENOENT"),
        "dom0's a/b is absent"
    );
}

#[test]
fn directory_part_and_big_replies() {
    let mut s = Server::default();
    let names: Vec<String> = (0..300).map(|i| format!("child-number-{i:04}")).collect();
    for n in &names {
        assert_eq!(write(&mut s, 0, &format!("/big/{n}"), ""), ok());
    }
    // 300 names of 18 bytes: more than a payload, so XS_DIRECTORY says E2BIG.
    assert_eq!(req(&mut s, 0, XS_DIRECTORY, b"/big\0"), err("E2BIG"));
    let mut all = Vec::new();
    let mut gens = Vec::new();
    let mut off = 0;
    loop {
        let r = req(
            &mut s,
            0,
            XS_DIRECTORY_PART,
            format!("/big\0{off}\0").as_bytes(),
        )
        .unwrap();
        assert!(r.len() <= XENSTORE_PAYLOAD_MAX);
        let nul = r.iter().position(|&b| b == 0).unwrap();
        gens.push(r[..nul].to_vec());
        let rest = &r[nul + 1..];
        if rest.ends_with(b"\0\0") || rest == b"\0" {
            all.extend_from_slice(&rest[..rest.len() - 1]);
            break;
        }
        off += rest.len();
        all.extend_from_slice(rest);
    }
    let want: Vec<u8> = names.iter().flat_map(|n| cstr(n)).collect();
    assert_eq!(all, want);
    assert!(
        gens.windows(2).all(|w| w[0] == w[1]),
        "same generation throughout"
    );
    let past = req(&mut s, 0, XS_DIRECTORY_PART, b"/big\x0099999\0").unwrap();
    assert!(past.ends_with(b"\0\0"));
}

#[test]
fn error_table() {
    assert_eq!(Error::EINVAL.name(), "EINVAL");
    assert_eq!(Error::EPERM.name(), "EPERM");
    assert_eq!(Error::E2BIG.errno(), xen_abi::errno::E2BIG);
    assert_eq!(Error::EAGAIN.errno(), xen_abi::errno::EAGAIN);
    assert_eq!(atoi(b" -1x"), u32::MAX);
    assert_eq!(atoi(b"+42"), 42);
    assert_eq!(atoi(b"z"), 0);
}

#[test]
fn transaction_events_merge_as_c() {
    let mut s = setup();
    assert_eq!(write(&mut s, 0, "/x/y", "1"), ok());
    assert_eq!(req(&mut s, 0, XS_WATCH, b"/x\0w\0"), ok());
    assert_eq!(
        req(&mut s, 0, XS_TRANSACTION_START, b"\0"),
        Ok(b"1\0".to_vec())
    );
    // /x/y is queued non-exact by the write, then exact by the rm of /x: stays
    // non-exact, so the watch on /x hears of /x/y too (queue_watches).
    assert_eq!(
        reply(&send(&mut s, 0, XS_WRITE, 1, b"/x/y\x002"), 0, XS_WRITE),
        ok()
    );
    assert_eq!(reply(&send(&mut s, 0, XS_RM, 1, b"/x\0"), 0, XS_RM), ok());
    let o = send(&mut s, 0, XS_TRANSACTION_END, 1, b"T\0");
    assert_eq!(events(&o), [ev(0, "/x/y w"), ev(0, "/x w")]);
    assert!(s.tree().get("/x").is_none());
}
