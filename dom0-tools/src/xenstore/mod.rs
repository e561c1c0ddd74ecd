//! xenstored's core, pure: the store, permissions, watches, transactions, quotas and
//! domain connections of Xen 4.17's C xenstored (`tools/xenstore/xenstored_*.c`), driven
//! by whole wire messages, plus the ring I/O that cuts a domain's shared page into them.
//!
//! The dom0 event loop owns a [`Server`] and, per introduced domain, a [`ConnIo`] and the
//! mapped [`XsRing`] page:
//! 1. on the domain's event channel, [`ConnIo::read_message`] until `None`, passing each
//!    message to [`Server::handle`];
//! 2. queue every [`Msg`] of the [`Outcome`] on the addressee's [`ConnIo`] (dom0's own
//!    toolstack is connection 0) and act on [`Outcome::domain`] (map the page and bind
//!    the port of an introduced domain, unmap a released one);
//! 3. [`ConnIo::write_pending`] for each connection with output, and notify its port.
//!
//! A [`RingError`] means the guest broke the ring: call [`Server::ignore_connection`],
//! as C does.
//!
//! Errors are Xen's `xsd_errors` names: a failed request gets an `XS_ERROR` reply with
//! the name NUL-terminated. Quotas are C's (`ENOSPC` for nodes, entry size,
//! transactions; `E2BIG` for watches); C xenstored has no `EQUOTA` (that is oxenstored).
//!
//! Where this differs from C xenstored 4.17:
//! - a quota allows exactly its value, everywhere: 4.17's checks differ by one from
//!   place to place (129 watches and 11 transactions pass, a commit must stay below the
//!   node quota), and later xenstored stops one below the value; a transaction's new
//!   nodes count against the node quota when created as well as at commit;
//! - a request that fails changes nothing, so it never poisons its transaction (C fails
//!   the whole transaction with `ENOMEM` at commit after some write errors);
//! - permission entries naming a domain that no longer exists are kept (C marks them
//!   ignored, which needs the hypervisor's domain list), so the toolstack must remove a
//!   domain's nodes, as `xl` does, before the domid is reused;
//! - no memory quota, request-outstanding limit, write rate limit, `XS_CONTROL`
//!   commands (all `EINVAL`) or live update; `XS_INTRODUCE` of a domid at or above
//!   `DOMID_FIRST_RESERVED` is `EINVAL`;
//! - C's `send_event` drops an event identical to one still queued; here that check is
//!   split between [`Server::handle`] (within one request) and [`ConnIo::push`].
//!
//! As C 4.17 does (`domain_tree_remove`), releasing a domain removes the nodes it still
//! owns, firing their watches, or gives them to dom0 with [`Server::keep_orphans`]
//! (C's `-K`).

mod path;
mod perms;
mod ring;
mod tree;

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use xen_abi::errno::Errno;
use xen_abi::xen::{DOMID_FIRST_RESERVED, DOMID_SELF};
use xen_abi::xs_wire::*;

pub use path::{domain_path, valid_node_name};
pub use perms::{Perm, Perms, Who, PERM_NONE, PERM_OWNER, PERM_READ, PERM_WRITE};
pub use ring::{ConnIo, RingError, XsRing};
use tree::{Change, Tx, View};
pub use tree::{Node, Tree};

/// An error a request can fail with: Xen's `xsd_errors`, in the table's order (each
/// variant is the errno of the same name).
#[allow(clippy::upper_case_acronyms)] // Xen's names, as they go on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    EINVAL,
    EACCES,
    EEXIST,
    EISDIR,
    ENOENT,
    ENOMEM,
    ENOSPC,
    EIO,
    ENOTEMPTY,
    ENOSYS,
    EROFS,
    EBUSY,
    EAGAIN,
    EISCONN,
    E2BIG,
    EPERM,
}

impl Error {
    /// The name sent in an `XS_ERROR` reply, e.g. `"ENOENT"`.
    pub fn name(self) -> &'static str {
        XSD_ERRORS
            .get(self as usize)
            .map_or("EINVAL", |e| e.errstring)
    }

    /// The errno value.
    pub fn errno(self) -> Errno {
        XSD_ERRORS
            .get(self as usize)
            .map_or(xen_abi::errno::EINVAL, |e| e.errnum)
    }
}

/// Per-domain limits for unprivileged domains (dom0 has none), C xenstored's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Nodes a domain may own (`-E`, 1000); `ENOSPC` beyond.
    pub nodes: u32,
    /// Watches per connection (`-W`, 128); `E2BIG` beyond.
    pub watches: u32,
    /// Open transactions per connection (`-t`, 10); `ENOSPC` beyond.
    pub transactions: u32,
    /// A node record (header, perms, value, child names) must be smaller (`-S`, 2048);
    /// `ENOSPC` otherwise.
    pub entry_size: usize,
    /// Permission entries per node (`-A`, 5); `ENOSPC` beyond.
    pub perms_per_node: usize,
    /// Nodes one transaction may touch (`-Q transaction-nodes`, 1024); `ENOSPC` beyond.
    pub transaction_nodes: usize,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            nodes: 1000,
            watches: 128,
            transactions: 10,
            entry_size: 2048,
            perms_per_node: 5,
            transaction_nodes: 1024,
        }
    }
}

/// A message for a connection: a reply or a watch event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    /// The domain whose connection gets it.
    pub to: u32,
    /// Header; `len` is the payload's length.
    pub hdr: XsdSockmsg,
    /// Payload.
    pub payload: Vec<u8>,
}

/// A change to the set of connections the event loop must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainEvent {
    /// `XS_INTRODUCE`: map the domain's store page (`mfn`, or grant
    /// `GNTTAB_RESERVED_XENSTORE` as C does), bind `port`, zero the ring indices and start
    /// a fresh [`ConnIo`]. `fresh` is false when the domain was already introduced (C
    /// then resets the connection the same way).
    Introduced {
        domid: u32,
        mfn: u64,
        port: u32,
        fresh: bool,
    },
    /// `XS_RELEASE`: unmap the page, unbind the port, drop the [`ConnIo`].
    Released { domid: u32 },
}

/// What handling one request produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Messages in the order C queues them (a request's watch events before its reply,
    /// the first event of a new watch after it).
    pub msgs: Vec<Msg>,
    /// A connection to set up or tear down.
    pub domain: Option<DomainEvent>,
}

#[derive(Clone, Debug)]
struct Watch {
    /// Canonical node name, or a special `@` name.
    node: Vec<u8>,
    token: Vec<u8>,
    /// Registered with a relative name: events name nodes relative to the home.
    relative: bool,
}

#[derive(Clone, Debug)]
struct Conn {
    watches: Vec<Watch>,
    txs: BTreeMap<u32, Tx>,
    next_tx: u32,
    target: Option<u32>,
    /// Broke the ring protocol: no more requests until released.
    ignored: bool,
    /// `@releaseDomain` already fired for its shutdown.
    shutdown: bool,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            watches: Vec::new(),
            txs: BTreeMap::new(),
            next_tx: 1,
            target: None,
            ignored: false,
            shutdown: false,
        }
    }
}

/// Per-request scratch: messages so far, messages to send after the reply.
#[derive(Default)]
struct Cx {
    out: Vec<Msg>,
    post: Vec<Msg>,
    domain: Option<DomainEvent>,
}

const OK: &[u8] = b"OK\0";

/// The xenstore daemon's state.
#[derive(Clone, Debug)]
pub struct Server {
    tree: Tree,
    conns: BTreeMap<u32, Conn>,
    quota: Quota,
    /// Permissions of `@introduceDomain` and `@releaseDomain` (C: `n0` at start).
    introduce_perms: Perms,
    release_perms: Perms,
    /// On release, give a domain's remaining nodes to dom0 instead of removing them.
    pub keep_orphans: bool,
}

impl Default for Server {
    fn default() -> Self {
        Server::new(Quota::default())
    }
}

impl Server {
    /// The initial store, with dom0's connection (C's `dom0_init`).
    pub fn new(quota: Quota) -> Server {
        let mut conns = BTreeMap::new();
        conns.insert(0, Conn::new());
        Server {
            tree: Tree::new(),
            conns,
            quota,
            introduce_perms: Perms::owned_by(0, PERM_NONE),
            release_perms: Perms::owned_by(0, PERM_NONE),
            keep_orphans: false,
        }
    }

    /// The committed store.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Whether `domid` has a connection (dom0 always has).
    pub fn is_introduced(&self, domid: u32) -> bool {
        self.conns.contains_key(&domid)
    }

    /// Watches `domid`'s connection has.
    pub fn watch_count(&self, domid: u32) -> usize {
        self.conns.get(&domid).map_or(0, |c| c.watches.len())
    }

    /// Open transactions of `domid`'s connection.
    pub fn transaction_count(&self, domid: u32) -> usize {
        self.conns.get(&domid).map_or(0, |c| c.txs.len())
    }

    fn who(&self, domid: u32) -> Who {
        Who {
            domid,
            target: self.conns.get(&domid).and_then(|c| c.target),
        }
    }

    /// Handles one request from `domid`'s connection. Requests from a domain without a
    /// connection, or an ignored one, are dropped (no messages).
    pub fn handle(&mut self, domid: u32, hdr: XsdSockmsg, payload: &[u8]) -> Outcome {
        if self.conns.get(&domid).is_none_or(|c| c.ignored) {
            return Outcome::default();
        }
        let mut cx = Cx::default();
        let result = self
            .dispatch(domid, &hdr, payload, &mut cx)
            .and_then(|body| match body.len() <= XENSTORE_PAYLOAD_MAX {
                true => Ok(body),
                false => Err(Error::E2BIG),
            });
        let (type_, body) = match result {
            Ok(body) => (hdr.type_, body),
            Err(e) => {
                let mut b = e.name().as_bytes().to_vec();
                b.push(0);
                (XS_ERROR, b)
            }
        };
        cx.out.push(msg(domid, type_, hdr.req_id, hdr.tx_id, body));
        cx.out.append(&mut cx.post);
        Outcome {
            msgs: cx.out,
            domain: cx.domain,
        }
    }

    /// `process_message`: checks the type, privilege and transaction, then runs it.
    fn dispatch(
        &mut self,
        d: u32,
        hdr: &XsdSockmsg,
        payload: &[u8],
        cx: &mut Cx,
    ) -> Result<Vec<u8>, Error> {
        if hdr.len as usize != payload.len() || payload.len() > XENSTORE_PAYLOAD_MAX {
            return Err(Error::EINVAL);
        }
        // (ignores tx_id, privileged only)
        let (notid, privileged) = match hdr.type_ {
            XS_CONTROL
            | XS_INTRODUCE
            | XS_RELEASE
            | XS_IS_DOMAIN_INTRODUCED
            | XS_RESUME
            | XS_SET_TARGET => (false, true),
            XS_WATCH | XS_UNWATCH => (true, false),
            XS_DIRECTORY | XS_READ | XS_GET_PERMS | XS_TRANSACTION_START | XS_TRANSACTION_END
            | XS_GET_DOMAIN_PATH | XS_WRITE | XS_MKDIR | XS_RM | XS_SET_PERMS
            | XS_RESET_WATCHES | XS_DIRECTORY_PART => (false, false),
            _ => return Err(Error::ENOSYS),
        };
        let who = self.who(d);
        if privileged && who.unprivileged() {
            return Err(Error::EACCES);
        }
        let tx_id = if notid { 0 } else { hdr.tx_id };
        let mut tx = match tx_id {
            0 => None,
            id => {
                let conn = self.conns.get_mut(&d).ok_or(Error::EINVAL)?;
                Some(conn.txs.remove(&id).ok_or(Error::ENOENT)?)
            }
        };
        let result = self.op(who, hdr.type_, payload, &mut tx, cx);
        if let (Some(t), Some(c)) = (tx, self.conns.get_mut(&d)) {
            c.txs.insert(tx_id, t);
        }
        result
    }

    fn op(
        &mut self,
        who: Who,
        type_: u32,
        p: &[u8],
        tx: &mut Option<Tx>,
        cx: &mut Cx,
    ) -> Result<Vec<u8>, Error> {
        let d = who.domid;
        match type_ {
            XS_WATCH => self.watch(d, p, cx),
            XS_UNWATCH => {
                let [node, token] = two_strings(p)?;
                let node = path::canonicalize(d, node);
                let conn = self.conns.get_mut(&d).ok_or(Error::EINVAL)?;
                let i = conn
                    .watches
                    .iter()
                    .position(|w| w.node == node && w.token == token);
                conn.watches.remove(i.ok_or(Error::ENOENT)?);
                Ok(OK.to_vec())
            }
            XS_TRANSACTION_START => {
                if tx.is_some() {
                    return Err(Error::EBUSY); // no nested transactions
                }
                let quota = self.quota.transactions as usize;
                let conn = self.conns.get_mut(&d).ok_or(Error::EINVAL)?;
                if who.unprivileged() && conn.txs.len() >= quota {
                    return Err(Error::ENOSPC);
                }
                let id = loop {
                    let id = conn.next_tx;
                    conn.next_tx = id.wrapping_add(1);
                    if id != 0 && !conn.txs.contains_key(&id) {
                        break id;
                    }
                };
                conn.txs.insert(id, Tx::default());
                Ok(cstr(&id.to_string()))
            }
            XS_TRANSACTION_END => {
                let commit = match onearg(p) {
                    Some(b"T") => true,
                    Some(b"F") => false,
                    _ => return Err(Error::EINVAL),
                };
                let t = tx.take().ok_or(Error::ENOENT)?;
                if commit {
                    self.commit(who, t, cx)?;
                }
                Ok(OK.to_vec())
            }
            XS_INTRODUCE => self.introduce(d, p, tx, cx),
            XS_RELEASE => {
                let domid = self.onearg_domain(p)?;
                cx.out.extend(self.release_domain(domid));
                cx.domain = Some(DomainEvent::Released { domid });
                Ok(OK.to_vec())
            }
            XS_RESUME => {
                let domid = self.onearg_domain(p)?;
                if let Some(c) = self.conns.get_mut(&domid) {
                    c.shutdown = false;
                }
                Ok(OK.to_vec())
            }
            XS_SET_TARGET => {
                let s = strings(p);
                let [dom, target] = [s.first(), s.get(1)].map(|s| s.map(|s| atoi(s)));
                let (Some(dom), Some(target)) = (dom, target) else {
                    return Err(Error::EINVAL);
                };
                if !self.is_introduced(dom) || !self.is_introduced(target) {
                    return Err(Error::ENOENT);
                }
                if let Some(c) = self.conns.get_mut(&dom) {
                    c.target = Some(target);
                }
                Ok(OK.to_vec())
            }
            XS_GET_DOMAIN_PATH => {
                let domid = atoi(onearg(p).ok_or(Error::EINVAL)?);
                Ok(cstr(&domain_path(domid)))
            }
            XS_IS_DOMAIN_INTRODUCED => {
                let domid = atoi(onearg(p).ok_or(Error::EINVAL)?);
                let yes = domid == u32::from(DOMID_SELF) || self.is_introduced(domid);
                Ok(if yes { b"T\0" } else { b"F\0" }.to_vec())
            }
            XS_RESET_WATCHES => {
                if let Some(c) = self.conns.get_mut(&d) {
                    c.watches.clear();
                    c.txs.clear();
                }
                *tx = None;
                Ok(OK.to_vec())
            }
            XS_CONTROL => Err(Error::EINVAL),
            _ => self.node_op(who, type_, p, tx.as_mut(), cx),
        }
    }

    /// The requests that work on nodes, through the transaction's view if any.
    fn node_op(
        &mut self,
        who: Who,
        type_: u32,
        p: &[u8],
        tx: Option<&mut Tx>,
        cx: &mut Cx,
    ) -> Result<Vec<u8>, Error> {
        let d = who.domid;
        if type_ == XS_SET_PERMS && p.starts_with(b"@") {
            return self.set_perms_special(who, p);
        }
        let quota = self.quota;
        let mut v = View {
            tree: &mut self.tree,
            tx,
            tx_limit: who.unprivileged().then_some(quota.transaction_nodes),
            changes: Vec::new(),
        };
        let result = match type_ {
            XS_READ => get_node(&mut v, who, &node_name(d, onearg(p))?, PERM_READ).map(|n| n.value),
            XS_DIRECTORY => get_node(&mut v, who, &node_name(d, onearg(p))?, PERM_READ)
                .map(|n| n.children_wire()),
            XS_DIRECTORY_PART => directory_part(&mut v, who, p),
            XS_GET_PERMS => get_node(&mut v, who, &node_name(d, onearg(p))?, PERM_READ)
                .map(|n| n.perms.to_wire()),
            XS_WRITE => write(&mut v, who, &quota, p),
            XS_MKDIR => mkdir(&mut v, who, &quota, p),
            XS_RM => rm(&mut v, who, p),
            XS_SET_PERMS => set_perms(&mut v, who, &quota, p),
            _ => Err(Error::ENOSYS),
        };
        let changes = core::mem::take(&mut v.changes);
        for c in changes {
            self.fire(&c.path, c.exact, &c.perms, &mut cx.out);
        }
        result
    }

    /// `do_watch`: registers and fires once, after the reply.
    fn watch(&mut self, d: u32, p: &[u8], cx: &mut Cx) -> Result<Vec<u8>, Error> {
        let [raw, token] = two_strings(p)?;
        let (node, relative) = if raw.starts_with(b"@") {
            if raw.len() > XENSTORE_REL_PATH_MAX {
                return Err(Error::EINVAL);
            }
            (raw.to_vec(), false)
        } else {
            (
                node_name(d, Some(raw))?.into_bytes(),
                !raw.starts_with(b"/"),
            )
        };
        let quota = self.quota.watches as usize;
        let conn = self.conns.get_mut(&d).ok_or(Error::EINVAL)?;
        if conn
            .watches
            .iter()
            .any(|w| w.node == node && w.token == token)
        {
            return Err(Error::EEXIST);
        }
        if d != 0 && conn.watches.len() >= quota {
            return Err(Error::E2BIG);
        }
        let w = Watch {
            node,
            token: token.to_vec(),
            relative,
        };
        event(&mut cx.post, d, watch_path(&w, d, &w.node), &w.token);
        conn.watches.push(w);
        Ok(OK.to_vec())
    }

    /// `do_transaction_end` with `T`: node quota, conflicts, then apply and fire.
    fn commit(&mut self, who: Who, t: Tx, cx: &mut Cx) -> Result<(), Error> {
        if who.unprivileged() {
            for (dom, delta) in t.owner_delta(&self.tree) {
                let after = i64::from(self.tree.owned(dom)) + delta;
                if dom != 0 && delta > 0 && after > i64::from(self.quota.nodes) {
                    return Err(Error::ENOSPC);
                }
            }
        }
        for (path, exact, orig) in t.commit(&mut self.tree)? {
            // C's watch_permitted with the old permissions and the committed node.
            let mut perms: Vec<Perms> = orig.into_iter().collect();
            if let Some(n) = self.tree.get(&path) {
                perms.push(n.perms.clone());
                perms.extend(self.tree.get(path::parent(&path)).map(|n| n.perms.clone()));
            }
            self.fire(&path, exact, &perms, &mut cx.out);
        }
        Ok(())
    }

    /// `do_introduce`: `domid\0mfn\0port\0`.
    fn introduce(
        &mut self,
        d: u32,
        p: &[u8],
        tx: &mut Option<Tx>,
        cx: &mut Cx,
    ) -> Result<Vec<u8>, Error> {
        let s = strings(p);
        let (Some(dom), Some(mfn), Some(port)) = (s.first(), s.get(1), s.get(2)) else {
            return Err(Error::EINVAL);
        };
        let (domid, port) = (atoi(dom), atoi(port));
        if port == 0 || domid >= u32::from(DOMID_FIRST_RESERVED) {
            return Err(Error::EINVAL);
        }
        let mfn = core::str::from_utf8(mfn)
            .ok()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let fresh = match self.conns.get_mut(&domid) {
            // domain_conn_reset: a re-introduced domain starts over.
            Some(c) => {
                c.watches.clear();
                c.txs.clear();
                if domid == d {
                    *tx = None;
                }
                false
            }
            None => {
                self.conns.insert(domid, Conn::new());
                if domid != 0 {
                    self.fire(SPECIAL_INTRODUCE, true, &[], &mut cx.out);
                }
                true
            }
        };
        cx.domain = Some(DomainEvent::Introduced {
            domid,
            mfn,
            port,
            fresh,
        });
        Ok(OK.to_vec())
    }

    /// `onearg_domain`: a domid argument naming an introduced domain other than dom0.
    fn onearg_domain(&self, p: &[u8]) -> Result<u32, Error> {
        match atoi(onearg(p).ok_or(Error::EINVAL)?) {
            0 => Err(Error::EINVAL),
            d if self.is_introduced(d) => Ok(d),
            _ => Err(Error::ENOENT),
        }
    }

    /// `set_perms_special`: the `@` names' permissions, for who may watch them.
    fn set_perms_special(&mut self, who: Who, p: &[u8]) -> Result<Vec<u8>, Error> {
        let perms = parse_set_perms(who, &self.quota, p)?.1;
        let target = match strings(p).first() {
            Some(&SPECIAL_INTRODUCE_B) => &mut self.introduce_perms,
            Some(&SPECIAL_RELEASE_B) => &mut self.release_perms,
            _ => return Err(Error::EINVAL),
        };
        if who.access(target) & (PERM_WRITE | PERM_OWNER) != PERM_WRITE | PERM_OWNER {
            return Err(Error::EACCES);
        }
        *target = perms;
        Ok(OK.to_vec())
    }

    /// `fire_watches`: an event to every watch on `path` (or above it, unless `exact`)
    /// whose connection may read one of `perms` (special names: their own permissions).
    fn fire(&self, path: &str, exact: bool, perms: &[Perms], out: &mut Vec<Msg>) {
        let special = match path {
            SPECIAL_INTRODUCE => Some(&self.introduce_perms),
            SPECIAL_RELEASE => Some(&self.release_perms),
            _ => None,
        };
        for (&id, c) in self.conns.iter().filter(|(_, c)| !c.ignored) {
            let who = Who {
                domid: id,
                target: c.target,
            };
            let permitted = match special {
                Some(p) => who.can_read(p),
                None => !path.starts_with('@') && perms.iter().any(|p| who.can_read(p)),
            };
            if !permitted {
                continue;
            }
            for w in &c.watches {
                let hit = match exact {
                    true => w.node == path.as_bytes(),
                    false => path::is_child(path.as_bytes(), &w.node),
                };
                if hit {
                    event(out, id, watch_path(w, id, path.as_bytes()), &w.token);
                }
            }
        }
    }

    /// Forgets a domain (`XS_RELEASE`, or the event loop finding it dead, C's
    /// `check_domains`): drops its connection with its watches and transactions, removes
    /// (or with [`Server::keep_orphans`] gives dom0) the nodes it still owns, drops it from
    /// the special names' permissions and fires `@releaseDomain`. Returns the events.
    pub fn release_domain(&mut self, domid: u32) -> Vec<Msg> {
        let mut out = Vec::new();
        if domid == 0 || self.conns.remove(&domid).is_none() {
            return out;
        }
        for c in self.conns.values_mut().filter(|c| c.target == Some(domid)) {
            c.target = None;
        }
        self.remove_orphans(domid, &mut out);
        self.introduce_perms.remove_domain(domid);
        self.release_perms.remove_domain(domid);
        self.fire(SPECIAL_RELEASE, true, &[], &mut out);
        out
    }

    /// The event loop saw `domid` shut down (C's `check_domains`): fires
    /// `@releaseDomain` once, until `XS_RESUME`.
    pub fn domain_shutdown(&mut self, domid: u32) -> Vec<Msg> {
        let mut out = Vec::new();
        if let Some(c) = self.conns.get_mut(&domid).filter(|c| !c.shutdown) {
            c.shutdown = true;
            self.fire(SPECIAL_RELEASE, true, &[], &mut out);
        }
        out
    }

    /// `ignore_connection`: the domain broke its ring; drop its watches and transactions
    /// and stop serving it until it is released.
    pub fn ignore_connection(&mut self, domid: u32) {
        if let Some(c) = self.conns.get_mut(&domid) {
            c.ignored = true;
            c.watches.clear();
            c.txs.clear();
        }
    }

    /// `domain_tree_remove`: walks the tree top-down for nodes `domid` owns.
    fn remove_orphans(&mut self, domid: u32, out: &mut Vec<Msg>) {
        let mut stack = vec![String::from("/")];
        while self.tree.owned(domid) > 0 {
            let Some(path) = stack.pop() else { break };
            let Some(node) = self.tree.get(&path).cloned() else {
                continue;
            };
            if node.perms.owner() != domid {
                stack.extend(node.children.iter().rev().map(|c| path::child(&path, c)));
            } else if self.keep_orphans {
                let mut n = node.clone();
                n.perms.set_owner(0);
                self.tree.store(&path, Some(n));
                stack.extend(node.children.iter().rev().map(|c| path::child(&path, c)));
            } else {
                let mut v = View {
                    tree: &mut self.tree,
                    tx: None,
                    tx_limit: None,
                    changes: Vec::new(),
                };
                // Outside a transaction nothing here can fail.
                let _ = rm_node(&mut v, &path, node);
                let changes: Vec<Change> = core::mem::take(&mut v.changes);
                for c in changes {
                    self.fire(&c.path, c.exact, &c.perms, out);
                }
            }
        }
    }
}

const SPECIAL_INTRODUCE: &str = "@introduceDomain";
const SPECIAL_RELEASE: &str = "@releaseDomain";
const SPECIAL_INTRODUCE_B: &[u8] = SPECIAL_INTRODUCE.as_bytes();
const SPECIAL_RELEASE_B: &[u8] = SPECIAL_RELEASE.as_bytes();

fn msg(to: u32, type_: u32, req_id: u32, tx_id: u32, payload: Vec<u8>) -> Msg {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    Msg {
        to,
        hdr: XsdSockmsg {
            type_,
            req_id,
            tx_id,
            len,
        },
        payload,
    }
}

/// `send_event`: queues `path\0token\0` for `to`, dropping it if too long or, for
/// non-special names, if the same event is already queued.
fn event(out: &mut Vec<Msg>, to: u32, path: &[u8], token: &[u8]) {
    let mut payload = Vec::with_capacity(path.len() + token.len() + 2);
    payload.extend_from_slice(path);
    payload.push(0);
    payload.extend_from_slice(token);
    payload.push(0);
    if payload.len() > XENSTORE_PAYLOAD_MAX {
        return;
    }
    let dup = |m: &Msg| m.to == to && m.hdr.type_ == XS_WATCH_EVENT && m.payload == payload;
    if !path.starts_with(b"@") && out.iter().any(dup) {
        return;
    }
    out.push(msg(to, XS_WATCH_EVENT, 0, 0, payload));
}

/// `get_watch_path`: a relative watch reports names relative to the domain's home.
fn watch_path<'a>(w: &Watch, domid: u32, name: &'a [u8]) -> &'a [u8] {
    if !w.relative {
        return name;
    }
    let rest = name.get(domain_path(domid).len()..).unwrap_or(b"");
    rest.strip_prefix(b"/").unwrap_or(rest)
}

/// `get_strings`: the NUL-terminated strings at the start of `p`; an unterminated tail
/// is ignored.
fn strings(p: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = p.split(|&b| b == 0).collect();
    v.pop(); // the part after the last NUL (empty when `p` ends with one)
    v
}

/// Exactly two strings (`XS_WATCH`, `XS_UNWATCH`).
fn two_strings(p: &[u8]) -> Result<[&[u8]; 2], Error> {
    match strings(p)[..] {
        [a, b] => Ok([a, b]),
        _ => Err(Error::EINVAL),
    }
}

/// `onearg`: exactly one string, its NUL the payload's last byte.
fn onearg(p: &[u8]) -> Option<&[u8]> {
    let (&last, s) = p.split_last()?;
    (last == 0 && !s.contains(&0)).then_some(s)
}

/// C's `atoi`, as xenstored parses domids and ports: leading spaces, a sign, digits,
/// anything after ignored, wrapping to `unsigned int`.
fn atoi(s: &[u8]) -> u32 {
    let s = s.trim_ascii_start();
    let (neg, s) = match s.first() {
        Some(b'-') => (true, s.get(1..).unwrap_or(b"")),
        Some(b'+') => (false, s.get(1..).unwrap_or(b"")),
        _ => (false, s),
    };
    let n = s
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0u32, |n, &c| {
            n.wrapping_mul(10).wrapping_add(u32::from(c - b'0'))
        });
    if neg {
        n.wrapping_neg()
    } else {
        n
    }
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A request's node name, canonical and valid (`EINVAL` otherwise, or if missing).
fn node_name(d: u32, raw: Option<&[u8]>) -> Result<String, Error> {
    valid_node_name(&path::canonicalize(d, raw.ok_or(Error::EINVAL)?)).ok_or(Error::EINVAL)
}

/// `get_node`: the node if the connection has all of `want`. Otherwise `ENOENT` or
/// `EACCES`, but `EACCES` whenever the nearest existing ancestor grants none of `want`,
/// so a domain learns nothing about nodes it may not see (`errno_from_parents`).
fn get_node(v: &mut View, who: Who, path: &str, want: u8) -> Result<Node, Error> {
    let err = match v.get(path)? {
        Some(n) if who.access(&n.perms) & want == want => return Ok(n),
        Some(_) => Error::EACCES,
        None => Error::ENOENT,
    };
    let mut p = path;
    while p != "/" {
        p = path::parent(p);
        if let Some(n) = v.get(p)? {
            return Err(if who.access(&n.perms) & want != 0 {
                err
            } else {
                Error::EACCES
            });
        }
    }
    Err(Error::EACCES)
}

/// The entry size quota (`write_node_raw`).
fn check_size(who: Who, quota: &Quota, node: &Node) -> Result<(), Error> {
    match who.unprivileged() && node.record_size() >= quota.entry_size {
        true => Err(Error::ENOSPC),
        false => Ok(()),
    }
}

/// Permissions of the committed parent, for watch checks outside transactions.
fn parent_perms(v: &View, path: &str) -> Option<Perms> {
    v.tree.get(path::parent(path)).map(|n| n.perms.clone())
}

/// `create_node`: creates `path` and its missing ancestors. New nodes inherit the
/// nearest existing ancestor's permissions, owned by the creator unless it is dom0
/// (`construct_node`). Returns the new node.
fn create_node(
    v: &mut View,
    who: Who,
    quota: &Quota,
    path: &str,
    value: &[u8],
) -> Result<Node, Error> {
    let mut missing = vec![path.to_string()];
    let mut p = path::parent(path);
    let mut parent = loop {
        if let Some(n) = v.get(p)? {
            break n;
        }
        if p == "/" {
            return Err(Error::EIO); // no root: corrupt store
        }
        missing.push(p.to_string());
        p = path::parent(p);
    };
    let parent_path = p.to_string();
    if who.unprivileged() && v.owned(who.domid) as usize + missing.len() > quota.nodes as usize {
        return Err(Error::ENOSPC);
    }
    let mut perms = parent.perms.clone();
    if who.unprivileged() {
        perms.set_owner(who.domid);
    }
    // missing[0] is `path`, missing[i + 1] its parent; build top-down.
    let base = |s: &String| path::basename(s).to_string();
    parent.children.extend(missing.last().map(base));
    let mut nodes = Vec::with_capacity(missing.len());
    for (i, name) in missing.iter().enumerate().rev() {
        let node = Node {
            value: if i == 0 { value.to_vec() } else { Vec::new() },
            perms: perms.clone(),
            children: i
                .checked_sub(1)
                .and_then(|c| missing.get(c))
                .map(base)
                .into_iter()
                .collect(),
            generation: 0,
        };
        nodes.push((name, node));
    }
    check_size(who, quota, &parent)?;
    for (_, n) in &nodes {
        check_size(who, quota, n)?;
    }
    v.set(&parent_path, Some(parent));
    let mut leaf = None;
    for (name, n) in nodes {
        leaf = Some(n.clone());
        v.set(name, Some(n));
    }
    leaf.ok_or(Error::EIO)
}

/// `do_write`: `path\0value`.
fn write(v: &mut View, who: Who, quota: &Quota, p: &[u8]) -> Result<Vec<u8>, Error> {
    let raw = *strings(p).first().ok_or(Error::EINVAL)?;
    let value = p.get(raw.len() + 1..).unwrap_or(b"");
    let path = node_name(who.domid, Some(raw))?;
    let node = match get_node(v, who, &path, PERM_WRITE) {
        Ok(mut n) => {
            n.value = value.to_vec();
            check_size(who, quota, &n)?;
            v.set(&path, Some(n.clone()));
            n
        }
        Err(Error::ENOENT) => create_node(v, who, quota, &path, value)?,
        Err(e) => return Err(e),
    };
    let perms = [Some(node.perms), parent_perms(v, &path)]
        .into_iter()
        .flatten()
        .collect();
    v.changed(&path, false, perms);
    Ok(OK.to_vec())
}

/// `do_mkdir`: creates an empty node if missing; an existing one is fine.
fn mkdir(v: &mut View, who: Who, quota: &Quota, p: &[u8]) -> Result<Vec<u8>, Error> {
    let path = node_name(who.domid, onearg(p))?;
    match get_node(v, who, &path, PERM_WRITE) {
        Ok(_) => {}
        Err(Error::ENOENT) => {
            let node = create_node(v, who, quota, &path, b"")?;
            let perms = [Some(node.perms), parent_perms(v, &path)]
                .into_iter()
                .flatten()
                .collect();
            v.changed(&path, false, perms);
        }
        Err(e) => return Err(e),
    }
    Ok(OK.to_vec())
}

/// `do_rm`: a missing node is fine if its parent exists.
fn rm(v: &mut View, who: Who, p: &[u8]) -> Result<Vec<u8>, Error> {
    let path = node_name(who.domid, onearg(p))?;
    match get_node(v, who, &path, PERM_WRITE) {
        Ok(_) if path == "/" => Err(Error::EINVAL),
        Ok(node) => rm_node(v, &path, node).map(|_| OK.to_vec()),
        Err(Error::ENOENT) => match v.get(path::parent(&path))? {
            Some(_) => Ok(OK.to_vec()),
            None => Err(Error::ENOENT),
        },
        Err(e) => Err(e),
    }
}

/// `rm_node`: removes `path` and everything below, whoever owns it. Watches fire for
/// each removed node, deepest first, while it can still be seen: exactly on the nodes
/// below, and on `path` and its ancestors for `path` itself.
fn rm_node(v: &mut View, path: &str, node: Node) -> Result<(), Error> {
    let parent_path = path::parent(path);
    let mut parent = v.get(parent_path)?.ok_or(Error::EINVAL)?;
    // Post-order walk, without recursion (paths can be a thousand levels deep).
    let mut stack = vec![(path.to_string(), node, 0usize)];
    let mut gone: Vec<(String, Node)> = Vec::new();
    while let Some(top) = stack.last_mut() {
        match top.1.children.get(top.2).map(|c| path::child(&top.0, c)) {
            Some(c) => {
                top.2 += 1;
                if let Some(n) = v.get(&c)? {
                    stack.push((c, n, 0));
                }
            }
            None => gone.extend(stack.pop().map(|(p, n, _)| (p, n))),
        }
    }
    for (p, n) in &gone {
        let perms = [Some(n.perms.clone()), parent_perms(v, p)]
            .into_iter()
            .flatten()
            .collect();
        v.changed(p, p != path, perms);
    }
    for (p, _) in &gone {
        v.set(p, None);
    }
    let base = path::basename(path);
    parent.children.retain(|c| c != base);
    v.set(parent_path, Some(parent));
    Ok(())
}

/// The parts of `XS_SET_PERMS` checked before the node: count, quota, syntax.
fn parse_set_perms<'a>(who: Who, quota: &Quota, p: &'a [u8]) -> Result<(&'a [u8], Perms), Error> {
    let s = strings(p);
    let (name, list) = s.split_first().ok_or(Error::EINVAL)?;
    if list.is_empty() {
        return Err(Error::EINVAL);
    }
    if who.unprivileged() && list.len() > quota.perms_per_node {
        return Err(Error::ENOSPC);
    }
    Ok((name, Perms::parse(list)?))
}

/// `do_set_perms`: `path\0perm\0...`; needs write access and ownership, and only dom0
/// may give a node away.
fn set_perms(v: &mut View, who: Who, quota: &Quota, p: &[u8]) -> Result<Vec<u8>, Error> {
    let (raw, perms) = parse_set_perms(who, quota, p)?;
    let path = node_name(who.domid, Some(raw))?;
    let mut node = get_node(v, who, &path, PERM_WRITE | PERM_OWNER)?;
    if who.unprivileged() && perms.owner() != node.perms.owner() {
        return Err(Error::EPERM);
    }
    let old = core::mem::replace(&mut node.perms, perms.clone());
    check_size(who, quota, &node)?;
    v.set(&path, Some(node));
    let perms = [Some(old), Some(perms), parent_perms(v, &path)]
        .into_iter()
        .flatten()
        .collect();
    v.changed(&path, false, perms);
    Ok(OK.to_vec())
}

/// `send_directory_part`: `path\0offset\0`; replies the node's generation, then as many
/// child names from `offset` as fit, and an empty string once the list is complete.
fn directory_part(v: &mut View, who: Who, p: &[u8]) -> Result<Vec<u8>, Error> {
    if p.iter().filter(|&&b| b == 0).count() != 2 {
        return Err(Error::EINVAL);
    }
    let s = strings(p);
    let (Some(&raw), Some(&off)) = (s.first(), s.get(1)) else {
        return Err(Error::EINVAL);
    };
    let node = get_node(v, who, &node_name(who.domid, Some(raw))?, PERM_READ)?;
    let off = atoi(off) as usize;
    let children = node.children_wire();
    let mut out = cstr(&node.generation.to_string());
    let Some(tail) = children.get(off..).filter(|t| !t.is_empty()) else {
        out.push(0);
        return Ok(out);
    };
    let maxlen = XENSTORE_PAYLOAD_MAX - out.len() - 1;
    let mut len = 0;
    while let Some(rest) = tail.get(len..).filter(|r| !r.is_empty()) {
        let slen = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        if len + slen >= maxlen {
            break;
        }
        len += slen + 1;
    }
    out.extend_from_slice(tail.get(..len).unwrap_or(tail));
    if len >= tail.len() {
        out.push(0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
