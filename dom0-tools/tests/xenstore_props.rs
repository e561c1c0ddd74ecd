//! Properties of the xenstore core under random requests by dom0, dom1 and dom2, with
//! random permissions, values, watches and transactions, through the wire API:
//! - a domain never reads a value, directory or permission list it may not read, and
//!   `ENOENT` only tells it about nodes whose nearest ancestor it may read;
//! - no domain changes a node without write access, gives a node away, or creates a
//!   node it does not own;
//! - per-domain node counts always equal a recount of the tree;
//! - watch events are exactly what a simple model of C's rules predicts;
//! - requests in a transaction change nothing outside it and fire nothing; a
//!   transaction nobody disturbed commits; a committed one equals its requests replayed
//!   at commit time (same replies, same tree), and a failed or aborted one leaves the
//!   tree as it was;
//! - malformed requests get an error reply, never a panic.

use std::collections::BTreeSet;

use dom0_tools::xenstore::*;
use proptest::prelude::*;
use xen_abi::xs_wire::*;

#[derive(Clone, Debug)]
enum Op {
    Read(String),
    Dir(String),
    GetPerms(String),
    Write(String, Vec<u8>),
    Mkdir(String),
    Rm(String),
    SetPerms(String, Vec<(u8, u32)>),
    Watch(String, u8),
    Unwatch(String, u8),
    ResetWatches,
    TxStart,
    TxEnd(bool),
    /// Any type with an arbitrary payload, outside transactions.
    Raw(u32, Vec<u8>),
}

#[derive(Clone, Debug)]
struct Step {
    dom: u32,
    op: Op,
    in_tx: bool,
}

fn path() -> impl Strategy<Value = String> {
    let comps = prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=3)
        .prop_map(|v| v.join("/"));
    (0..7u8, comps).prop_map(|(k, c)| match k {
        0 => format!("/{c}"),
        1 => format!("/local/domain/1/{c}"),
        2 => format!("/local/domain/2/{c}"),
        3 => format!("/shared/{c}"),
        4 => c, // relative to the requester's home
        5 => "/local/domain/1".into(),
        _ => "/shared".into(),
    })
}

/// Fewer names for watches, so unwatch finds them and events are frequent.
fn watch_path() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "/",
        "/shared",
        "a",
        "/local/domain/1",
        "@introduceDomain",
    ]);
    prop_oneof![4 => fixed.prop_map(String::from), 1 => path()]
}

fn op() -> impl Strategy<Value = Op> {
    let value = prop::collection::vec(prop::sample::select(vec![b'x', b'y', 0u8]), 0..4);
    let perms = prop::collection::vec((0..4u8, 0..3u32), 1..=6);
    let raw_type = prop::sample::select(vec![
        XS_CONTROL,
        XS_DIRECTORY,
        XS_READ,
        XS_GET_PERMS,
        XS_GET_DOMAIN_PATH,
        XS_WRITE,
        XS_MKDIR,
        XS_RM,
        XS_SET_PERMS,
        XS_WATCH_EVENT,
        XS_ERROR,
        XS_IS_DOMAIN_INTRODUCED,
        XS_RESUME,
        20,
        XS_DIRECTORY_PART,
        XS_TYPE_COUNT,
        XS_INVALID,
    ]);
    let raw_bytes = prop::collection::vec(
        prop::sample::select(vec![0u8, b'/', b'a', b'@', b'r', b'1', b' ', b'/']),
        0..10,
    );
    prop_oneof![
        3 => path().prop_map(Op::Read),
        1 => path().prop_map(Op::Dir),
        1 => path().prop_map(Op::GetPerms),
        5 => (path(), value).prop_map(|(p, v)| Op::Write(p, v)),
        1 => path().prop_map(Op::Mkdir),
        2 => path().prop_map(Op::Rm),
        3 => (path(), perms).prop_map(|(p, l)| Op::SetPerms(p, l)),
        2 => (watch_path(), 0..2u8).prop_map(|(p, t)| Op::Watch(p, t)),
        1 => (watch_path(), 0..2u8).prop_map(|(p, t)| Op::Unwatch(p, t)),
        1 => Just(Op::ResetWatches),
        2 => Just(Op::TxStart),
        2 => any::<bool>().prop_map(Op::TxEnd),
        1 => (raw_type, raw_bytes).prop_map(|(t, b)| Op::Raw(t, b)),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (0..3u32, op(), prop::bool::weighted(0.7)).prop_map(|(dom, op, in_tx)| Step {
        dom,
        op,
        in_tx,
    });
    prop::collection::vec(step, 1..60)
}

fn cstr(s: &str) -> Vec<u8> {
    [s.as_bytes(), b"\0"].concat()
}

fn encode(op: &Op) -> (u32, Vec<u8>) {
    match op {
        Op::Read(p) => (XS_READ, cstr(p)),
        Op::Dir(p) => (XS_DIRECTORY, cstr(p)),
        Op::GetPerms(p) => (XS_GET_PERMS, cstr(p)),
        Op::Write(p, v) => (XS_WRITE, [&cstr(p)[..], v].concat()),
        Op::Mkdir(p) => (XS_MKDIR, cstr(p)),
        Op::Rm(p) => (XS_RM, cstr(p)),
        Op::SetPerms(p, l) => {
            let mut b = cstr(p);
            for &(a, id) in l {
                b.extend(cstr(&format!("{}{id}", ["n", "r", "w", "b"][a as usize])));
            }
            (XS_SET_PERMS, b)
        }
        Op::Watch(p, t) => (XS_WATCH, [cstr(p), cstr(&format!("t{t}"))].concat()),
        Op::Unwatch(p, t) => (XS_UNWATCH, [cstr(p), cstr(&format!("t{t}"))].concat()),
        Op::ResetWatches => (XS_RESET_WATCHES, vec![]),
        Op::TxStart => (XS_TRANSACTION_START, cstr("")),
        Op::TxEnd(c) => (XS_TRANSACTION_END, cstr(if *c { "T" } else { "F" })),
        Op::Raw(t, b) => (*t, b.clone()),
    }
}

type Reply = Result<Vec<u8>, String>;

/// Sends one request; returns the reply and the watch events.
fn send(s: &mut Server, dom: u32, type_: u32, tx: u32, p: &[u8]) -> (Reply, Vec<(u32, Vec<u8>)>) {
    let hdr = XsdSockmsg {
        type_,
        req_id: 0xabc,
        tx_id: tx,
        len: p.len() as u32,
    };
    let out = s.handle(dom, hdr, p);
    let replies: Vec<&Msg> = out
        .msgs
        .iter()
        .filter(|m| m.hdr.type_ != XS_WATCH_EVENT)
        .collect();
    assert_eq!(replies.len(), 1, "one reply");
    let r = replies[0];
    assert_eq!((r.to, r.hdr.req_id, r.hdr.tx_id), (dom, 0xabc, tx));
    assert_eq!(r.hdr.len as usize, r.payload.len());
    let reply = if r.hdr.type_ == XS_ERROR {
        let name = r.payload.strip_suffix(b"\0").expect("error NUL-terminated");
        Err(String::from_utf8(name.to_vec()).expect("ASCII"))
    } else {
        assert_eq!(r.hdr.type_, type_);
        Ok(r.payload.clone())
    };
    let events = out
        .msgs
        .iter()
        .filter(|m| m.hdr.type_ == XS_WATCH_EVENT)
        .map(|m| (m.to, m.payload.clone()))
        .collect();
    (reply, events)
}

fn home(d: u32) -> String {
    format!("/local/domain/{d}")
}

fn canonical(dom: u32, p: &str) -> String {
    if p.starts_with('/') || p.starts_with('@') {
        p.to_string()
    } else {
        format!("{}/{p}", home(dom))
    }
}

fn parent(p: &str) -> &str {
    match p[1..].rfind('/') {
        Some(i) => &p[..i + 1],
        None => "/",
    }
}

fn is_child(child: &str, parent: &str) -> bool {
    parent == "/"
        || child == parent
        || (child.starts_with(parent) && child.as_bytes()[parent.len()] == b'/')
}

fn who(d: u32) -> Who {
    Who {
        domid: d,
        target: None,
    }
}

/// The nearest existing strict ancestor of `p` in `t`.
fn nearest_ancestor<'a>(t: &'a Tree, p: &str) -> &'a Node {
    let mut q = p;
    loop {
        q = parent(q);
        if let Some(n) = t.get(q) {
            return n;
        }
    }
}

/// A read-type request outside a transaction revealed only what `dom` may read.
fn check_read(pre: &Tree, dom: u32, op: &Op, reply: &Reply) -> Result<(), TestCaseError> {
    let (Op::Read(p) | Op::Dir(p) | Op::GetPerms(p)) = op else {
        return Ok(());
    };
    let c = canonical(dom, p);
    match reply {
        Ok(payload) => {
            let n = pre.get(&c).expect("a read succeeded on an existing node");
            prop_assert!(
                who(dom).can_read(&n.perms),
                "dom{dom} read {c} without permission"
            );
            let want = match op {
                Op::Read(_) => n.value.clone(),
                Op::Dir(_) => n.children_wire(),
                _ => n.perms.to_wire(),
            };
            prop_assert_eq!(payload, &want);
        }
        Err(e) if e == "ENOENT" => {
            prop_assert!(pre.get(&c).is_none());
            let anc = nearest_ancestor(pre, &c);
            prop_assert!(
                who(dom).access(&anc.perms) & PERM_READ != 0,
                "ENOENT leaked {c}"
            );
        }
        Err(e) => prop_assert!(e == "EACCES", "unexpected {e} for {c}"),
    }
    Ok(())
}

/// Every difference between `pre` and `post` is something `dom` was allowed to do.
fn check_changes(pre: &Tree, post: &Tree, dom: u32) -> Result<(), TestCaseError> {
    if dom == 0 {
        return Ok(());
    }
    let w = who(dom);
    let paths: BTreeSet<&String> = pre.iter().chain(post.iter()).map(|(p, _)| p).collect();
    for p in paths {
        match (pre.get(p), post.get(p)) {
            (Some(a), Some(b)) => {
                let acc = w.access(&a.perms);
                if a.value != b.value || a.perms != b.perms {
                    prop_assert!(acc & PERM_WRITE != 0, "dom{dom} changed {p} without write");
                }
                if a.perms != b.perms {
                    // set_perms needs ownership; a removed and re-created node is the
                    // creator's.
                    let owner_ok = b.perms.owner() == a.perms.owner() || b.perms.owner() == dom;
                    prop_assert!(owner_ok, "dom{dom} gave {p} away");
                    prop_assert!(acc & PERM_OWNER != 0 || b.perms.owner() == dom);
                }
            }
            (None, Some(b)) => {
                let anc = nearest_ancestor(pre, p);
                prop_assert!(
                    w.access(&anc.perms) & PERM_WRITE != 0,
                    "dom{dom} created {p}"
                );
                prop_assert_eq!(b.perms.owner(), dom);
            }
            (Some(_), None) => {
                let mut top = p.as_str();
                while top != "/" && post.get(parent(top)).is_none() {
                    top = parent(top);
                }
                let n = pre.get(top).expect("removed subtree root existed");
                prop_assert!(w.access(&n.perms) & PERM_WRITE != 0, "dom{dom} removed {p}");
            }
            (None, None) => {}
        }
    }
    Ok(())
}

/// Node counts match a recount, and parents and child lists agree.
fn check_tree(t: &Tree) -> Result<(), TestCaseError> {
    let mut count = std::collections::BTreeMap::<u32, u32>::new();
    for (p, n) in t.iter() {
        *count.entry(n.perms.owner()).or_default() += 1;
        for c in &n.children {
            let cp = if p == "/" {
                format!("/{c}")
            } else {
                format!("{p}/{c}")
            };
            prop_assert!(t.get(&cp).is_some(), "dangling child {cp}");
        }
        if p != "/" {
            let base = &p[p.rfind('/').unwrap_or(0) + 1..];
            let par = t.get(parent(p)).expect("parent exists");
            prop_assert_eq!(par.children.iter().filter(|c| *c == base).count(), 1);
        }
    }
    for d in 0..4 {
        prop_assert_eq!(
            t.owned(d),
            count.get(&d).copied().unwrap_or(0),
            "count of dom{}",
            d
        );
    }
    Ok(())
}

/// The model's view of one watch.
#[derive(Clone, Debug, PartialEq)]
struct W {
    dom: u32,
    node: String,
    token: String,
    relative: bool,
}

fn event(w: &W, path: &str) -> (u32, Vec<u8>) {
    let shown = match w.relative {
        true => path[home(w.dom).len()..]
            .trim_start_matches('/')
            .to_string(),
        false => path.to_string(),
    };
    (w.dom, [cstr(&shown), cstr(&w.token)].concat())
}

/// C's rules, from the trees before and after a request outside a transaction.
fn expected_events(
    op: &Op,
    dom: u32,
    pre: &Tree,
    post: &Tree,
    watches: &[W],
) -> Vec<(u32, Vec<u8>)> {
    let mut fires: Vec<(String, bool, Vec<Perms>)> = Vec::new();
    let perms = |t: &Tree, p: &str| t.get(p).map(|n| n.perms.clone());
    match op {
        Op::Write(p, _) | Op::Mkdir(p) => {
            let c = canonical(dom, p);
            if matches!(op, Op::Write(..)) || pre.get(&c).is_none() {
                let l = [perms(post, &c), perms(post, parent(&c))]
                    .into_iter()
                    .flatten();
                fires.push((c, false, l.collect()));
            }
        }
        Op::Rm(p) => {
            let c = canonical(dom, p);
            for (q, n) in pre.iter().filter(|(q, _)| is_child(q, &c)) {
                let l = [Some(n.perms.clone()), perms(pre, parent(q))]
                    .into_iter()
                    .flatten();
                fires.push((q.clone(), *q != c, l.collect()));
            }
        }
        Op::SetPerms(p, _) => {
            let c = canonical(dom, p);
            let l = [perms(pre, &c), perms(post, &c), perms(post, parent(&c))];
            fires.push((c, false, l.into_iter().flatten().collect()));
        }
        _ => {}
    }
    let mut out = BTreeSet::new();
    for (q, exact, l) in &fires {
        for w in watches {
            let hit = if *exact {
                w.node == *q
            } else {
                is_child(q, &w.node)
            };
            if hit && l.iter().any(|p| who(w.dom).can_read(p)) {
                out.insert(event(w, q));
            }
        }
    }
    out.into_iter().collect()
}

/// An event a commit sent: for a watch of the receiver with that token, on a node the
/// transaction wrote, created or removed (or one below a removed one).
fn commit_event_ok(e: &(u32, Vec<u8>), watches: &[W], touched: &[String]) -> bool {
    let mut parts = e.1.split(|&b| b == 0);
    let (Some(shown), Some(token)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (shown, token) = (
        String::from_utf8_lossy(shown),
        String::from_utf8_lossy(token),
    );
    watches
        .iter()
        .filter(|w| w.dom == e.0 && w.token == token)
        .any(|w| {
            let abs = match (w.relative, shown.is_empty()) {
                (false, _) => shown.to_string(),
                (true, true) => home(w.dom),
                (true, false) => format!("{}/{shown}", home(w.dom)),
            };
            is_child(&abs, &w.node) && touched.iter().any(|t| is_child(&abs, t))
        })
}

fn sorted(mut v: Vec<(u32, Vec<u8>)>) -> Vec<(u32, Vec<u8>)> {
    v.sort();
    v
}

/// An open transaction, as the test sees it.
struct Open {
    id: u32,
    /// The server when it started.
    start: Server,
    /// Its requests, with their replies.
    log: Vec<(Op, Reply)>,
    /// Someone else changed the tree since it started.
    disturbed: bool,
}

/// Replays a transaction's requests outside any transaction on `base`; each reply must
/// be the one the transaction got (and pass the read check). Returns the final tree.
fn replay(base: &Server, dom: u32, log: &[(Op, Reply)]) -> Result<Tree, TestCaseError> {
    let mut s = base.clone();
    for (op, want) in log {
        let pre = s.tree().clone();
        let (t, p) = encode(op);
        let (got, _) = send(&mut s, dom, t, 0, &p);
        prop_assert_eq!(&got, want, "replaying {:?}", op);
        check_read(&pre, dom, op, &got)?;
    }
    Ok(s.tree().clone())
}

/// Trees equal but for generation counts.
fn same_content(a: &Tree, b: &Tree) -> bool {
    type Content = Vec<(String, Vec<u8>, Vec<u8>, Vec<String>)>;
    let strip = |t: &Tree| -> Content {
        t.iter()
            .map(|(p, n)| {
                (
                    p.clone(),
                    n.value.clone(),
                    n.perms.to_wire(),
                    n.children.clone(),
                )
            })
            .collect()
    };
    strip(a) == strip(b)
}

fn setup() -> Server {
    let mut s = Server::default();
    for d in [1u32, 2] {
        let intro = format!("{d}\0{}\0{}\0", 1000 + d, 5);
        assert_eq!(
            send(&mut s, 0, XS_INTRODUCE, 0, intro.as_bytes()).0,
            Ok(cstr("OK"))
        );
        assert_eq!(
            send(&mut s, 0, XS_MKDIR, 0, &cstr(&home(d))).0,
            Ok(cstr("OK"))
        );
        let p = [cstr(&home(d)), cstr(&format!("n{d}"))].concat();
        assert_eq!(send(&mut s, 0, XS_SET_PERMS, 0, &p).0, Ok(cstr("OK")));
    }
    assert_eq!(
        send(&mut s, 0, XS_MKDIR, 0, &cstr("/shared")).0,
        Ok(cstr("OK"))
    );
    let p = [cstr("/shared"), cstr("b0")].concat();
    assert_eq!(send(&mut s, 0, XS_SET_PERMS, 0, &p).0, Ok(cstr("OK")));
    s
}

fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let mut s = setup();
    let mut watches: Vec<W> = Vec::new();
    let mut open: [Option<Open>; 3] = [None, None, None];
    for step in steps {
        let dom = step.dom;
        let slot = dom as usize;
        let op = &step.op;
        let (t, p) = encode(op);
        let transactional = !matches!(
            op,
            Op::Watch(..) | Op::Unwatch(..) | Op::ResetWatches | Op::Raw(..)
        );
        let tx = match (&open[slot], op) {
            (Some(o), Op::TxEnd(_) | Op::TxStart) => o.id,
            (Some(o), _) if step.in_tx && transactional => o.id,
            _ => 0,
        };
        // XS_WATCH/XS_UNWATCH ignore the transaction id: send it anyway sometimes.
        let hdr_tx = match (&open[slot], op) {
            (Some(o), Op::Watch(..) | Op::Unwatch(..)) if step.in_tx => o.id,
            _ => tx,
        };
        let pre = s.clone();
        let (reply, events) = send(&mut s, dom, t, hdr_tx, &p);
        let post = s.tree().clone();
        check_tree(&post)?;
        let changed = pre.tree().iter().ne(post.iter());

        match op {
            Op::TxStart if tx != 0 => prop_assert_eq!(reply, Err("EBUSY".into())),
            Op::TxStart => {
                let r = reply.expect("transaction start");
                let id = std::str::from_utf8(&r[..r.len() - 1])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("transaction id");
                open[slot] = Some(Open {
                    id,
                    start: s.clone(),
                    log: vec![],
                    disturbed: false,
                });
            }
            Op::TxEnd(_) if tx == 0 => prop_assert_eq!(reply, Err("ENOENT".into())),
            Op::TxEnd(commit) => {
                let o = open[slot].take().expect("open");
                match (&reply, commit) {
                    (Ok(_), true) => {
                        check_changes(pre.tree(), &post, dom)?;
                        let replayed = replay(&pre, dom, &o.log)?;
                        prop_assert!(same_content(&replayed, &post), "commit != replay");
                        // Events only for watches on what the transaction touched.
                        let touched: Vec<String> = o
                            .log
                            .iter()
                            .filter(|(_, r)| r.is_ok())
                            .filter_map(|(op, _)| match op {
                                Op::Write(p, _) | Op::Mkdir(p) | Op::Rm(p) | Op::SetPerms(p, _) => {
                                    Some(canonical(dom, p))
                                }
                                _ => None,
                            })
                            .collect();
                        for e in &events {
                            prop_assert!(commit_event_ok(e, &watches, &touched), "{:?}", e);
                        }
                    }
                    (Ok(_), false) => {
                        prop_assert!(!changed && events.is_empty());
                        if !o.disturbed {
                            replay(&o.start, dom, &o.log)?;
                        }
                    }
                    (Err(e), true) => {
                        prop_assert!(o.disturbed, "undisturbed commit failed: {}", e);
                        prop_assert!(e == "EAGAIN" || e == "ENOSPC", "{}", e);
                        prop_assert!(!changed && events.is_empty());
                    }
                    (Err(e), false) => prop_assert!(false, "abort failed: {}", e),
                }
            }
            _ if tx != 0 => {
                // Inside a transaction: nothing visible outside, nothing fired.
                prop_assert!(!changed, "transaction leaked {:?}", op);
                prop_assert!(events.is_empty());
                if let Some(o) = open[slot].as_mut() {
                    o.log.push((op.clone(), reply.clone()));
                }
            }
            _ => {
                check_changes(pre.tree(), &post, dom)?;
                check_read(pre.tree(), dom, op, &reply)?;
                match op {
                    Op::Watch(wp, tok) if reply.is_ok() => {
                        let w = W {
                            dom,
                            node: canonical(dom, wp),
                            token: format!("t{tok}"),
                            relative: !wp.starts_with('/') && !wp.starts_with('@'),
                        };
                        prop_assert_eq!(&events, &vec![event(&w, &w.node)], "initial event");
                        watches.push(w);
                    }
                    Op::Unwatch(wp, tok) if reply.is_ok() => {
                        let (node, token) = (canonical(dom, wp), format!("t{tok}"));
                        let i = watches
                            .iter()
                            .position(|w| w.dom == dom && w.node == node && w.token == token);
                        watches.remove(i.expect("model has the watch"));
                    }
                    Op::ResetWatches => {
                        watches.retain(|w| w.dom != dom);
                        open[slot] = None;
                    }
                    Op::Raw(..) => {}
                    _ => {
                        let want = match reply {
                            Ok(_) => expected_events(op, dom, pre.tree(), &post, &watches),
                            Err(_) => vec![],
                        };
                        prop_assert_eq!(sorted(events), want, "events for {:?} by dom{}", op, dom);
                    }
                }
            }
        }
        if changed {
            let committed = matches!(op, Op::TxEnd(true)) && tx != 0;
            for (i, o) in open.iter_mut().enumerate() {
                if let Some(o) = o {
                    o.disturbed |= !(committed && i == slot);
                }
            }
        }
        prop_assert_eq!(
            s.watch_count(dom),
            watches.iter().filter(|w| w.dom == dom).count()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_keep_xenstore_invariants(steps in steps()) {
        run(&steps)?;
    }
}

/// A transaction conflicts exactly when a node it read changed: the classic
/// read-modify-write race, both ways round.
#[test]
fn conflicting_transaction_never_commits() {
    for interfere in [false, true] {
        let mut s = setup();
        let (r, _) = send(&mut s, 1, XS_TRANSACTION_START, 0, b"\0");
        assert_eq!(r, Ok(cstr("1")));
        let _ = send(&mut s, 1, XS_READ, 1, b"/shared\0");
        assert_eq!(
            send(&mut s, 1, XS_WRITE, 1, b"/shared/n\x001").0,
            Ok(cstr("OK"))
        );
        if interfere {
            assert_eq!(
                send(&mut s, 2, XS_WRITE, 0, b"/shared\0v").0,
                Ok(cstr("OK"))
            );
        }
        let (r, _) = send(&mut s, 1, XS_TRANSACTION_END, 1, b"T\0");
        let want = if interfere {
            Err("EAGAIN".to_string())
        } else {
            Ok(cstr("OK"))
        };
        assert_eq!(r, want);
        assert_eq!(s.tree().get("/shared/n").is_some(), !interfere);
    }
}

proptest! {
    /// Any header and payload from any domain: one reply for a known connection, none
    /// for an unknown one, and the store stays consistent.
    #[test]
    fn garbage_requests_get_replies(
        reqs in prop::collection::vec(
            (0..4u32, prop_oneof![0..25u32, any::<u32>()], 0..3u32,
             prop::collection::vec(prop::sample::select(vec![0u8, b'/', b'a', b'@', b'T', b'1', b'n', 0xff]), 0..24),
             any::<bool>()),
            1..40)
    ) {
        let mut s = setup();
        for (dom, type_, tx, payload, bad_len) in reqs {
            let len = payload.len() as u32 + u32::from(bad_len);
            let hdr = XsdSockmsg { type_, req_id: 1, tx_id: tx, len };
            let out = s.handle(dom, hdr, &payload);
            let replies = out.msgs.iter().filter(|m| m.to == dom && m.hdr.type_ != XS_WATCH_EVENT).count();
            prop_assert_eq!(replies, usize::from(dom < 3));
            for m in &out.msgs {
                prop_assert_eq!(m.hdr.len as usize, m.payload.len());
                prop_assert!(m.payload.len() <= XENSTORE_PAYLOAD_MAX);
            }
            check_tree(s.tree())?;
        }
    }

    /// Messages come out of the request ring whole and in order, however the guest
    /// splits them and wherever the indices start.
    #[test]
    fn ring_reassembles_messages(
        start in any::<u32>(),
        msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3000), 1..6),
        chunks in prop::collection::vec(1..1500usize, 1..50),
    ) {
        let mut page = Box::<XenstoreDomainInterface>::default();
        page.req_cons = start;
        page.req_prod = start;
        let stream: Vec<u8> = msgs
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                let hdr = XsdSockmsg { type_: XS_WRITE, req_id: i as u32, tx_id: 0, len: m.len() as u32 };
                [&hdr.to_bytes()[..], m].concat()
            })
            .collect();
        let mut io = ConnIo::new();
        let (mut sent, mut got, mut chunk) = (0, Vec::new(), chunks.iter().cycle());
        while got.len() < msgs.len() {
            // The guest adds what fits of its next chunk.
            let room = XENSTORE_RING_SIZE - page.req_prod.wrapping_sub(page.req_cons) as usize;
            let n = (*chunk.next().unwrap_or(&1)).min(room).min(stream.len() - sent);
            for &b in &stream[sent..sent + n] {
                page.req[mask_xenstore_idx(page.req_prod)] = b;
                page.req_prod = page.req_prod.wrapping_add(1);
            }
            sent += n;
            while let Some((hdr, body)) = io.read_message(&mut *page).expect("good ring") {
                got.push((hdr, body));
            }
        }
        for (i, ((hdr, body), m)) in got.iter().zip(&msgs).enumerate() {
            prop_assert_eq!(hdr.req_id as usize, i);
            prop_assert_eq!(body, m);
        }
    }

    /// A guest's corrupt indices are reported, never a panic.
    #[test]
    fn corrupt_indices_are_errors(cons in any::<u32>(), prod in any::<u32>()) {
        let mut page = Box::<XenstoreDomainInterface>::default();
        page.req_cons = cons;
        page.req_prod = prod;
        page.rsp_cons = prod;
        page.rsp_prod = cons;
        let bad = prod.wrapping_sub(cons) as usize > XENSTORE_RING_SIZE;
        let mut io = ConnIo::new();
        prop_assert_eq!(io.read_message(&mut *page).is_err(), bad);
        let ev = Msg { to: 1, hdr: XsdSockmsg { type_: XS_WATCH_EVENT, req_id: 0, tx_id: 0, len: 4 }, payload: b"/a\0t".to_vec() };
        io.push(&ev);
        let rsp_bad = cons.wrapping_sub(prod) as usize > XENSTORE_RING_SIZE;
        prop_assert_eq!(io.write_pending(&mut *page).is_err(), rsp_bad);
    }
}
