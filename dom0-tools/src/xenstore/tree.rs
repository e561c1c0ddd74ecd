//! The node store, the per-domain node counts, and transactions.
//!
//! Transactions follow C xenstored's optimistic scheme (`xenstored_transaction.c`):
//! every write stamps the node with a fresh value of a global generation counter. The
//! first time a transaction touches a node (reading it, or finding it absent) it copies
//! the node and remembers its generation; later accesses see the copy, writes change the
//! copy. Commit fails with `EAGAIN` if any touched node's generation differs from the
//! remembered one, i.e. someone else changed (or created, or removed) it meanwhile;
//! otherwise the copies of modified nodes replace the global ones. Since every operation
//! reads a node (and, to create or remove one, its parent) before writing it, a commit
//! is exactly the transaction's operations replayed atomically at commit time.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::perms::{Perms, PERM_NONE};
use super::Error;

/// `sizeof(struct xs_tdb_record_hdr)`: C's per-node record header, which counts against
/// the entry size quota together with the perms, value and child list.
const RECORD_HDR: usize = 24;
/// `sizeof(struct xs_permissions)`.
const RECORD_PERM: usize = 8;

/// One node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The value: any bytes.
    pub value: Vec<u8>,
    /// Its permissions.
    pub perms: Perms,
    /// Child names (last components), in creation order as C lists them.
    pub children: Vec<String>,
    /// Global generation count of the last write (C's `node->generation`).
    pub generation: u64,
}

impl Node {
    /// C's record size (`write_node_raw`'s `data.dsize`), checked against
    /// [`super::Quota::entry_size`] for unprivileged writers.
    pub fn record_size(&self) -> usize {
        RECORD_HDR
            + RECORD_PERM * self.perms.len()
            + self.value.len()
            + self.children.iter().map(|c| c.len() + 1).sum::<usize>()
    }

    /// The child list as on the wire: each name NUL-terminated.
    pub fn children_wire(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for c in &self.children {
            v.extend_from_slice(c.as_bytes());
            v.push(0);
        }
        v
    }
}

/// The committed store.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
    /// Nodes owned per domain (C's `domain->nbentry`), kept equal to a recount.
    owned: BTreeMap<u32, u32>,
    generation: u64,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

impl Tree {
    /// C's `setup_structure`: `/`, `/tool` and `/tool/xenstored`, owned by dom0 (`n0`).
    pub fn new() -> Tree {
        let mut t = Tree {
            nodes: BTreeMap::new(),
            owned: BTreeMap::new(),
            generation: 0,
        };
        for (path, child) in [
            ("/", "tool"),
            ("/tool", "xenstored"),
            ("/tool/xenstored", ""),
        ] {
            let children = if child.is_empty() {
                Vec::new()
            } else {
                alloc::vec![child.to_string()]
            };
            let node = Node {
                value: Vec::new(),
                perms: Perms::owned_by(0, PERM_NONE),
                children,
                generation: 0,
            };
            t.store(path, Some(node));
        }
        t
    }

    /// The committed node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Every committed node, by path.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// Nodes `domid` owns.
    pub fn owned(&self, domid: u32) -> u32 {
        self.owned.get(&domid).copied().unwrap_or(0)
    }

    /// A fresh generation count.
    pub(crate) fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// Replaces (or removes) the node at `path`, keeping the owner counts.
    pub(crate) fn store(&mut self, path: &str, node: Option<Node>) {
        let new_owner = node.as_ref().map(|n| n.perms.owner());
        let old = match node {
            Some(n) => self.nodes.insert(path.to_string(), n),
            None => self.nodes.remove(path),
        };
        if let Some(o) = old {
            let e = self.owned.entry(o.perms.owner()).or_insert(0);
            *e = e.saturating_sub(1);
            if *e == 0 {
                self.owned.remove(&o.perms.owner());
            }
        }
        if let Some(o) = new_owner {
            *self.owned.entry(o).or_insert(0) += 1;
        }
    }
}

/// What a transaction knows about one node it touched (C's `struct accessed_node`).
#[derive(Clone, Debug)]
struct Access {
    /// First-access order, for firing watches in C's order at commit.
    order: usize,
    /// Generation of the committed node at first access; `None` if it was absent.
    generation: Option<u64>,
    /// Permissions of the committed node at first access (watch checks at commit).
    orig_perms: Option<Perms>,
    /// The transaction's view of the node.
    view: Option<Node>,
    modified: bool,
    /// A watch event is due at commit: `Some(exact)`.
    fire: Option<bool>,
}

/// An open transaction.
#[derive(Clone, Debug, Default)]
pub struct Tx {
    accessed: BTreeMap<String, Access>,
}

/// A watch event a committed transaction owes: the node, whether only exact watches
/// fire, and the permissions the node had when the transaction first touched it.
pub(crate) type DueEvent = (String, bool, Option<Perms>);

impl Tx {
    /// Change in each domain's owned-node count that committing would make.
    pub(crate) fn owner_delta(&self, tree: &Tree) -> BTreeMap<u32, i64> {
        let mut d = BTreeMap::new();
        for (path, a) in self.accessed.iter().filter(|(_, a)| a.modified) {
            if let Some(n) = tree.get(path) {
                *d.entry(n.perms.owner()).or_insert(0) -= 1;
            }
            if let Some(n) = &a.view {
                *d.entry(n.perms.owner()).or_insert(0) += 1;
            }
        }
        d
    }

    /// `finalize_transaction`: `EAGAIN` if any touched node changed, else applies the
    /// modified nodes and returns the watch events due, in first-access order.
    pub(crate) fn commit(self, tree: &mut Tree) -> Result<Vec<DueEvent>, Error> {
        for (path, a) in &self.accessed {
            if tree.get(path).map(|n| n.generation) != a.generation {
                return Err(Error::EAGAIN);
            }
        }
        let mut list: Vec<(String, Access)> = self.accessed.into_iter().collect();
        list.sort_by_key(|(_, a)| a.order);
        let mut due = Vec::new();
        for (path, a) in list {
            if a.modified {
                let node = a.view.map(|mut n| {
                    n.generation = tree.next_generation();
                    n
                });
                tree.store(&path, node);
            }
            if let Some(exact) = a.fire {
                due.push((path, exact, a.orig_perms));
            }
        }
        Ok(due)
    }
}

/// A watch event an operation caused: the node, whether only exact watches fire, and
/// the permission lists of which one must grant a watcher read access (C's
/// `watch_permitted`: the node, its parent, or its old permissions).
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub path: String,
    pub exact: bool,
    pub perms: Vec<Perms>,
}

/// The store as one request sees it: the committed tree, or a transaction's view of it.
pub(crate) struct View<'a> {
    pub tree: &'a mut Tree,
    pub tx: Option<&'a mut Tx>,
    /// Limit on nodes a transaction may touch (`quota_trans_nodes`), for unprivileged
    /// connections.
    pub tx_limit: Option<usize>,
    /// Changes made outside a transaction; inside one they are queued on it.
    pub changes: Vec<Change>,
}

impl View<'_> {
    /// `read_node`: the node as this request sees it. In a transaction, the first access
    /// records the node (`ENOSPC` past the transaction's node quota).
    pub fn get(&mut self, path: &str) -> Result<Option<Node>, Error> {
        let Some(tx) = self.tx.as_deref_mut() else {
            return Ok(self.tree.get(path).cloned());
        };
        if let Some(a) = tx.accessed.get(path) {
            return Ok(a.view.clone());
        }
        if self.tx_limit.is_some_and(|l| tx.accessed.len() >= l) {
            return Err(Error::ENOSPC);
        }
        let node = self.tree.get(path).cloned();
        let access = Access {
            order: tx.accessed.len(),
            generation: node.as_ref().map(|n| n.generation),
            orig_perms: node.as_ref().map(|n| n.perms.clone()),
            view: node.clone(),
            modified: false,
            fire: None,
        };
        tx.accessed.insert(path.to_string(), access);
        Ok(node)
    }

    /// Writes (`Some`) or deletes (`None`) a node; every write gets a new generation.
    /// Callers have read the node first.
    pub fn set(&mut self, path: &str, node: Option<Node>) {
        let node = node.map(|mut n| {
            n.generation = self.tree.next_generation();
            n
        });
        match self.tx.as_deref_mut() {
            None => self.tree.store(path, node),
            Some(tx) => {
                if let Some(a) = tx.accessed.get_mut(path) {
                    a.view = node;
                    a.modified = true;
                }
            }
        }
    }

    /// Nodes `domid` would own if this request's view were committed.
    pub fn owned(&self, domid: u32) -> u32 {
        let base = i64::from(self.tree.owned(domid));
        let delta = self.tx.as_deref().map_or(0, |tx| {
            tx.owner_delta(self.tree).get(&domid).copied().unwrap_or(0)
        });
        u32::try_from((base + delta).max(0)).unwrap_or(u32::MAX)
    }

    /// `fire_watches`: outside a transaction the event is due now; inside, it is queued
    /// on the node (`queue_watches`: a non-exact event replaces an exact one).
    pub fn changed(&mut self, path: &str, exact: bool, perms: Vec<Perms>) {
        match self.tx.as_deref_mut() {
            None => self.changes.push(Change {
                path: path.to_string(),
                exact,
                perms,
            }),
            Some(tx) => {
                if let Some(a) = tx.accessed.get_mut(path) {
                    a.fire = Some(a.fire.map_or(exact, |e| e && exact));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(owner: u32, value: &[u8]) -> Node {
        Node {
            value: value.to_vec(),
            perms: Perms::owned_by(owner, PERM_NONE),
            children: Vec::new(),
            generation: 0,
        }
    }

    fn view<'a>(tree: &'a mut Tree, tx: Option<&'a mut Tx>) -> View<'a> {
        View {
            tree,
            tx,
            tx_limit: None,
            changes: Vec::new(),
        }
    }

    #[test]
    fn initial_structure_and_counts() {
        let t = Tree::new();
        assert_eq!(t.owned(0), 3);
        assert_eq!(t.get("/").unwrap().children, ["tool"]);
        assert_eq!(leaf(0, b"abc").record_size(), 24 + 8 + 3);
    }

    #[test]
    fn transaction_isolation_and_conflict() {
        let mut t = Tree::new();
        let mut tx = Tx::default();
        {
            let mut v = view(&mut t, Some(&mut tx));
            assert_eq!(v.get("/x").unwrap(), None);
            v.set("/x", Some(leaf(1, b"1")));
            assert_eq!(v.get("/x").unwrap().unwrap().value, b"1");
            assert_eq!(v.owned(1), 1);
        }
        assert!(t.get("/x").is_none(), "not visible outside");
        // A clean commit applies the write.
        let mut t2 = t.clone();
        tx.clone().commit(&mut t2).unwrap();
        assert_eq!(t2.get("/x").unwrap().value, b"1");
        assert_eq!(t2.owned(1), 1);
        // Someone else creates /x meanwhile: conflict, nothing applied.
        view(&mut t, None).set("/x", Some(leaf(2, b"2")));
        assert_eq!(tx.commit(&mut t), Err(Error::EAGAIN));
        assert_eq!(t.get("/x").unwrap().value, b"2");
        assert_eq!((t.owned(1), t.owned(2)), (0, 1));
    }

    #[test]
    fn transaction_node_limit() {
        let mut t = Tree::new();
        let mut tx = Tx::default();
        let mut v = view(&mut t, Some(&mut tx));
        v.tx_limit = Some(2);
        v.get("/a").unwrap();
        v.get("/b").unwrap();
        v.get("/a").unwrap();
        assert_eq!(v.get("/c"), Err(Error::ENOSPC));
    }
}
