//! Grant tables, v1: who may map or copy which frame of another domain.
//!
//! A granting domain writes `grant_entry_v1 { flags, domid, frame }` entries into its
//! shared grant-table frames; a grantee names `(granter, ref)` to map the frame into its
//! address space (`GNTTABOP_map_grant_ref`), unmap it by the handle it got back, or copy
//! bytes to/from it (`GNTTABOP_copy`). This module is the policy: the per-domain table
//! (shared frames, active entries with pin counts, maptrack handles, limits) and every
//! decision, over the PV MMU ([`crate::mm::Mmu`]) and a memory accessor ([`GrantMem`]).
//!
//! # Rules (SECURITY.md §1.2)
//! - **G1**: a pin (map or copy) succeeds only if the entry says `GTF_permit_access`,
//!   names the pinning domain, and is not `GTF_readonly` for a write pin. The check and
//!   the setting of `_GTF_reading`/`_GTF_writing` are **one compare-exchange** on the
//!   entry's 32-bit `flags | domid << 16` word, retried at most [`CAS_RETRIES`] times
//!   (Xen's `_set_status_v1`). Unlike Xen, the entry is re-checked on *every* pin, not
//!   only the first: a granter that revoked an entry while it is mapped gets no new map.
//! - **P1/G1**: each host mapping holds a general reference on the frame (so it is never
//!   freed while mapped) and, when writable, a `Writable` type reference (so it never
//!   becomes a page table while mapped writable). The PTE itself (`PTE_GNTTAB`) holds
//!   none: see [`Mmu::install_grant_l1e`]. Revocation while mapped changes no count.
//! - **G2**: an unmap names a handle of the caller's own maptrack and the host address of
//!   that map; the PTE cleared is exactly the one the map wrote (slot, frame and flags).
//!   Unmap is two-phase, as Xen's `unmap_common`/`unmap_common_complete`: the PTE goes
//!   first, the mechanism flushes TLBs, then [`Grants::complete_unmap`] drops the pins.
//! - **G3**: with `GNTMAP_contains_pte` the PTE address is 8-byte aligned and inside a
//!   live L1 the mapper owns.
//! - **G4**: v1 only, no version switch; table frames are given back only by
//!   [`Grants::destroy_domain`], which refuses while any entry is pinned.
//! - **G5**: [`Grants::release_mappings`] tears a domain's mappings down in bounded,
//!   restartable steps.
//! - **G6**: every error is a [`GntError`], whose [`GntError::status`] is negative.
//! - **G7**: copies have `offset + len <= 4096` on both sides, `len == 0` is fine; one op
//!   is O(1) + one page of bytes, and the mechanism preempts every
//!   [`OPS_PER_PREEMPT_CHECK`] ops with a continuation.
//!
//! Refused in v1: `GNTMAP_device_map`, transitive grants and sub-page grants (the entry
//! type must be exactly `GTF_permit_access`), version 2, transfer, unmap-and-replace,
//! swap, cache flush, status frames, I/O-memory grants.
//!
//! Concurrency: everything takes `&mut self`; the mechanism holds the one MMU/grant lock
//! per host. The only thing racing us is the granting guest writing its entries, which
//! is why every read of an entry word is one atomic access through [`GrantMem`].

extern crate alloc;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::frame::{DomId, Owner, PageType};
use crate::mm::{Flush, Mmu, PhysMem, VcpuMm};
use xen_abi::errno::{Errno, EBUSY, EEXIST, EINVAL, ENOSYS};
use xen_abi::grant_table::*;
use xen_abi::mm::{ENTRIES_PER_TABLE, PAGE_SHIFT, PAGE_SIZE, PTE_AVAIL_MASK, PTE_RW, PTE_USER};
use xen_abi::xen::DOMID_SELF;

/// v1 entries per grant-table frame (4096 / 8).
pub const ENTRIES_PER_FRAME: u32 = (PAGE_SIZE / 8) as u32;
/// Compare-exchange attempts on a guest-writable entry before giving up (Xen: 5).
pub const CAS_RETRIES: u32 = 5;
/// The mechanism checks for preemption (and makes a continuation) at least this often
/// in a batch of grant ops (Xen checks after every op; each op here is bounded).
pub const OPS_PER_PREEMPT_CHECK: u32 = 16;
/// Bit position of `GNTMAP_guest_avail0` (the map flags' bits 16.. go to PTE bits 9..11).
const GNTMAP_GUEST_AVAIL_SHIFT: u32 = 16;

/// Why a grant op failed. Each is one of Xen's `GNTST_*` codes, all negative (G6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GntError {
    /// `GNTST_general_error`: bad entry, bad flags, address or frame state.
    General,
    /// `GNTST_bad_domain`: no such domain (or it has no grant table).
    BadDomain,
    /// `GNTST_bad_gntref`: ref out of range, or neither host nor device map asked.
    BadGntref,
    /// `GNTST_bad_handle`: not a live handle of the caller's maptrack.
    BadHandle,
    /// `GNTST_permission_denied`: not allowed to act on that domain or frame.
    PermissionDenied,
    /// `GNTST_bad_page`: the granted (or local) frame is not the domain's RAM.
    BadPage,
    /// `GNTST_bad_copy_arg`: copy beyond the page.
    BadCopyArg,
    /// `GNTST_no_space`: the maptrack is full.
    NoSpace,
}

impl GntError {
    /// The `GNTST_*` status the guest sees (always negative).
    pub const fn status(self) -> i16 {
        match self {
            GntError::General => GNTST_GENERAL_ERROR,
            GntError::BadDomain => GNTST_BAD_DOMAIN,
            GntError::BadGntref => GNTST_BAD_GNTREF,
            GntError::BadHandle => GNTST_BAD_HANDLE,
            GntError::PermissionDenied => GNTST_PERMISSION_DENIED,
            GntError::BadPage => GNTST_BAD_PAGE,
            GntError::BadCopyArg => GNTST_BAD_COPY_ARG,
            GntError::NoSpace => GNTST_NO_SPACE,
        }
    }
}

fn status_of<T>(r: &Result<T, GntError>) -> i16 {
    match r {
        Ok(_) => GNTST_OKAY,
        Err(e) => e.status(),
    }
}

/// Grant-table memory as the policy needs it: the physical memory of the MMU, plus
/// atomic accesses to v1 entries and byte copies. `mfn` is always a grant-table frame
/// (for entries) or a frame the policy holds a reference on (for copies); `off` is a
/// multiple of 8 below 4096. The hypervisor implements it over its direct map.
pub trait GrantMem: PhysMem {
    /// One atomic 32-bit load of `flags | domid << 16` of the entry at byte `off`.
    fn gnt_header(&self, mfn: u64, off: usize) -> u32;
    /// Atomic 32-bit compare-exchange of that word; returns the value found (== `old`
    /// on success).
    fn gnt_cmpxchg_header(&mut self, mfn: u64, off: usize, old: u32, new: u32) -> u32;
    /// One atomic 32-bit load of the entry's `frame` (byte `off + 4`).
    fn gnt_frame(&self, mfn: u64, off: usize) -> u32;
    /// Atomically clear `bits` in the entry's `flags` (`lock and`: cannot fail).
    fn gnt_clear_flags(&mut self, mfn: u64, off: usize, bits: u16);
    /// Copy `len` bytes from `src` at `src_off` to `dst` at `dst_off` (both ranges are
    /// inside their page; the frames may be the same: memmove semantics). `len > 0`.
    fn copy_bytes(&mut self, dst: u64, dst_off: usize, src: u64, src_off: usize, len: usize);
}

/// Per-domain limits (Xen's `max_grant_frames`, `max_maptrack_frames`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantLimits {
    /// Maximum grant-table frames (`GNTTABOP_setup_table`'s bound).
    pub max_grant_frames: u32,
    /// Maximum simultaneous mappings (maptrack handles) the domain may hold.
    pub max_maptrack: u32,
}

impl GrantLimits {
    /// Xen 4.17's defaults: 64 grant frames, 1024 maptrack frames of 512 handles.
    pub const XEN_DEFAULT: GrantLimits = GrantLimits {
        max_grant_frames: 64,
        max_maptrack: 1024 * 512,
    };
}

/// Active-entry bookkeeping of one pinned grant (Xen's `active_grant_entry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Active {
    /// The domain holding the pins (v1 names one grantee per entry).
    pub mapper: DomId,
    /// The frame pinned (read from the entry at the first pin).
    pub frame: u64,
    /// Read-only pins (host maps; copies while in progress).
    pub readers: u32,
    /// Writable pins.
    pub writers: u32,
}

/// One live host mapping in the mapper's maptrack (Xen's `grant_mapping`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub granter: DomId,
    pub gref: GrantRef,
    pub frame: u64,
    pub writable: bool,
    /// `host_addr` of the map (a VA, or the PTE's machine address with contains_pte).
    pub host_addr: u64,
    pub contains_pte: bool,
    /// Where the PTE was written, and its exact value.
    pub l1: u64,
    pub idx: u16,
    pub pte: u64,
}

/// The granting side of a domain's table.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shared {
    dom: DomId,
    max_frames: u32,
    /// Grant-table frames (MFNs), each held by the table with a general and a Writable
    /// type reference (so the guest can neither free nor retype them).
    frames: Vec<u64>,
    active: BTreeMap<GrantRef, Active>,
}

/// The mapping side of a domain's table.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Maptrack {
    dom: DomId,
    max: u32,
    entries: Vec<Option<Mapping>>,
    /// Free handles, reused oldest first (delays reuse of a just-freed handle).
    free: VecDeque<GrantHandle>,
    live: u32,
    /// PTE slot `(l1, idx)` -> the handle whose map wrote the grant PTE there last.
    slots: BTreeMap<(u64, u16), GrantHandle>,
    /// Where `release_mappings` resumes.
    cursor: u32,
}

/// One domain's grant table: its shared entries (as granter) and maptrack (as mapper).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantTable {
    shared: Shared,
    maptrack: Maptrack,
}

impl GrantTable {
    pub fn dom(&self) -> DomId {
        self.shared.dom
    }
    /// Current grant-table frames (MFNs), in order.
    pub fn frames(&self) -> &[u64] {
        &self.shared.frames
    }
    pub fn max_frames(&self) -> u32 {
        self.shared.max_frames
    }
    /// Number of grant refs (`frames * 512`).
    pub fn nr_entries(&self) -> u32 {
        self.shared.nr_entries()
    }
    /// The active entry of `gref`, if pinned.
    pub fn active(&self, gref: GrantRef) -> Option<&Active> {
        self.shared.active.get(&gref)
    }
    /// All pinned entries of this table.
    pub fn actives(&self) -> impl Iterator<Item = (GrantRef, &Active)> {
        self.shared.active.iter().map(|(r, a)| (*r, a))
    }
    /// The live mapping of `handle` in this domain's maptrack.
    pub fn mapping(&self, handle: GrantHandle) -> Option<&Mapping> {
        self.maptrack.get(handle)
    }
    /// All live mappings of this domain (as mapper).
    pub fn mappings(&self) -> impl Iterator<Item = (GrantHandle, &Mapping)> {
        self.maptrack
            .entries
            .iter()
            .enumerate()
            .filter_map(|(h, m)| m.as_ref().map(|m| (h as GrantHandle, m)))
    }
    /// Number of live mappings.
    pub fn nr_mappings(&self) -> u32 {
        self.maptrack.live
    }
}

impl Shared {
    fn nr_entries(&self) -> u32 {
        (self.frames.len() as u32).saturating_mul(ENTRIES_PER_FRAME)
    }

    /// Frame and byte offset of entry `gref`.
    fn entry(&self, gref: GrantRef) -> Option<(u64, usize)> {
        let frame = self.frames.get((gref / ENTRIES_PER_FRAME) as usize)?;
        Some((*frame, (gref % ENTRIES_PER_FRAME) as usize * 8))
    }
}

impl Maptrack {
    fn get(&self, h: GrantHandle) -> Option<&Mapping> {
        self.entries.get(h as usize).and_then(Option::as_ref)
    }

    fn has_space(&self) -> bool {
        !self.free.is_empty() || (self.entries.len() as u64) < u64::from(self.max)
    }

    fn insert(&mut self, m: Mapping) -> Option<GrantHandle> {
        let h = match self.free.pop_front() {
            Some(h) => h,
            None if (self.entries.len() as u64) < u64::from(self.max) => {
                self.entries.push(None);
                (self.entries.len() - 1) as GrantHandle
            }
            None => return None,
        };
        *self.entries.get_mut(h as usize)? = Some(m);
        self.live += 1;
        self.slots.insert((m.l1, m.idx), h);
        Some(h)
    }

    fn remove(&mut self, h: GrantHandle) -> Option<Mapping> {
        let m = self.entries.get_mut(h as usize)?.take()?;
        self.live -= 1;
        self.free.push_back(h);
        if self.slots.get(&(m.l1, m.idx)) == Some(&h) {
            self.slots.remove(&(m.l1, m.idx));
        }
        Some(m)
    }

    /// The PTE at the mapping's slot was written by this handle (no later map replaced
    /// it after the table had been devalidated).
    fn owns_slot(&self, h: GrantHandle, m: &Mapping) -> bool {
        self.slots.get(&(m.l1, m.idx)) == Some(&h)
    }
}

// ---- pins: the one place that checks an entry and takes frame references -----------

/// Xen's `_set_status_v1`: check the entry and set `_GTF_reading` (and `_GTF_writing`)
/// in one compare-exchange. Nothing is changed on failure.
fn set_status<M: GrantMem>(
    mem: &mut M,
    (mfn, off): (u64, usize),
    ldom: DomId,
    readonly: bool,
    map: bool,
) -> Result<(), GntError> {
    let mask = GTF_TYPE_MASK | if map { GTF_SUB_PAGE } else { 0 };
    let mut cur = mem.gnt_header(mfn, off);
    for _ in 0..CAS_RETRIES {
        let flags = cur as u16;
        let domid = (cur >> 16) as u16;
        if flags & mask != GTF_PERMIT_ACCESS || domid != ldom {
            return Err(GntError::General);
        }
        let mut nf = flags | GTF_READING;
        if !readonly {
            if flags & GTF_READONLY != 0 {
                return Err(GntError::General);
            }
            nf |= GTF_WRITING;
        }
        if nf == flags {
            return Ok(());
        }
        let new = (cur & 0xffff_0000) | u32::from(nf);
        let prev = mem.gnt_cmpxchg_header(mfn, off, cur, new);
        if prev == cur {
            return Ok(());
        }
        cur = prev;
    }
    Err(GntError::General) // "shared grant entry is unstable"
}

/// Xen's `reduce_status_for_pin`: clear the status bits no pin needs any more.
fn reduce_status<M: GrantMem>(
    mem: &mut M,
    (mfn, off): (u64, usize),
    left: Option<&Active>,
    readonly: bool,
) {
    let (readers, writers) = left.map_or((0, 0), |a| (a.readers, a.writers));
    let mut clear = 0;
    if readers == 0 && writers == 0 {
        clear |= GTF_READING;
    }
    if !readonly && writers == 0 {
        clear |= GTF_WRITING;
    }
    if clear != 0 {
        mem.gnt_clear_flags(mfn, off, clear);
    }
}

/// Take the references one pin holds on `frame` of `owner`: a general one, plus a
/// Writable type reference for a write pin. Nothing is held on failure.
fn get_frame_refs<S, M>(
    mmu: &mut Mmu<S>,
    mem: &mut M,
    frame: u64,
    owner: DomId,
    readonly: bool,
    first: bool,
) -> Result<(), GntError>
where
    S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
    M: PhysMem,
{
    // Xen: get_paged_frame() on the first pin (bad_page), then "could not pin".
    mmu.get_page(frame, owner).map_err(|_| {
        if first {
            GntError::BadPage
        } else {
            GntError::General
        }
    })?;
    if !readonly && mmu.get_page_type(mem, frame, PageType::Writable).is_err() {
        mmu.put_page(mem, frame);
        return Err(GntError::General);
    }
    Ok(())
}

fn put_frame_refs<S, M>(mmu: &mut Mmu<S>, mem: &mut M, frame: u64, readonly: bool)
where
    S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
    M: PhysMem,
{
    if !readonly {
        mmu.put_page_type(mem, frame);
    }
    mmu.put_page(mem, frame);
}

impl Shared {
    /// Pin `gref` for `ldom` (G1): check the entry and set its status bits atomically,
    /// take the frame references, count the pin. Returns the frame. Nothing is changed
    /// on failure (the status bits are restored).
    fn pin<S, M>(
        &mut self,
        mmu: &mut Mmu<S>,
        mem: &mut M,
        gref: GrantRef,
        ldom: DomId,
        readonly: bool,
        map: bool,
    ) -> Result<u64, GntError>
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        let loc = self.entry(gref).ok_or(GntError::BadGntref)?;
        let old = self.active.get(&gref).copied();
        let mut new = old.unwrap_or(Active {
            mapper: ldom,
            frame: 0,
            readers: 0,
            writers: 0,
        });
        if new.mapper != ldom {
            return Err(GntError::General);
        }
        let count = if readonly {
            &mut new.readers
        } else {
            &mut new.writers
        };
        *count = count.checked_add(1).ok_or(GntError::General)?;
        set_status(mem, loc, ldom, readonly, map)?;
        if old.is_none() {
            // Read after `_GTF_reading` is set: the granter must not change it now.
            new.frame = u64::from(mem.gnt_frame(loc.0, loc.1));
        }
        if let Err(e) = get_frame_refs(mmu, mem, new.frame, self.dom, readonly, old.is_none()) {
            reduce_status(mem, loc, old.as_ref(), readonly);
            return Err(e);
        }
        self.active.insert(gref, new);
        Ok(new.frame)
    }

    /// Drop one pin of `gref` taken by [`Self::pin`] (and its frame references).
    fn unpin<S, M>(&mut self, mmu: &mut Mmu<S>, mem: &mut M, gref: GrantRef, readonly: bool)
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        let Some(mut a) = self.active.get(&gref).copied() else {
            return; // internal bug: nothing pinned
        };
        let count = if readonly {
            &mut a.readers
        } else {
            &mut a.writers
        };
        if *count == 0 {
            return; // internal bug: no pin of that kind
        }
        *count -= 1;
        put_frame_refs(mmu, mem, a.frame, readonly);
        let left = if a.readers == 0 && a.writers == 0 {
            self.active.remove(&gref);
            None
        } else {
            self.active.insert(gref, a);
            Some(a)
        };
        if let Some(loc) = self.entry(gref) {
            reduce_status(mem, loc, left.as_ref(), readonly);
        }
    }
}

// ---- requests -------------------------------------------------------------------------

/// `GNTTABOP_setup_table`, decoded: grow `dom`'s table to `nr_frames`; the mechanism
/// allocates `grow` free frames and passes them to [`Grants::perform_setup_table`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupTable {
    pub dom: DomId,
    pub nr_frames: u32,
    pub grow: u32,
}

/// Where a map writes its PTE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapTarget {
    /// The L1 entry mapping this VA in the mapper's current kernel page tables.
    Va(u64),
    /// `GNTMAP_contains_pte`: entry `idx` of the L1 frame `l1` (G3: aligned).
    Pte { l1: u64, idx: usize },
}

/// `GNTTABOP_map_grant_ref`, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapReq {
    pub mapper: DomId,
    pub granter: DomId,
    pub gref: GrantRef,
    pub readonly: bool,
    pub host_addr: u64,
    pub target: MapTarget,
    /// PTE flags asked for (`PTE_RW`, `PTE_USER`, available bits).
    pub pte_flags: u64,
}

/// A successful map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapped {
    pub handle: GrantHandle,
    /// Machine address of the frame (Xen returns it in `dev_bus_addr`).
    pub dev_bus_addr: u64,
    /// TLB work: a present entry was replaced.
    pub flush: Flush,
}

/// `GNTTABOP_unmap_grant_ref`, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnmapReq {
    pub mapper: DomId,
    pub handle: GrantHandle,
    pub host_addr: u64,
}

/// First half of an unmap: the PTE is gone and the handle is free; the pins and frame
/// references are still held. The mechanism performs [`Unmapped::flush`] (the mapper's
/// TLBs), then hands this to [`Grants::complete_unmap`]. Only this module makes one.
#[must_use = "complete_unmap must be called after the TLB flush, or the pins leak"]
#[derive(Debug, PartialEq, Eq)]
pub struct Unmapped {
    pending: Option<(DomId, GrantRef, bool)>,
    flush: Flush,
}

impl Unmapped {
    pub fn flush(&self) -> Flush {
        self.flush
    }
}

/// One side of a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopySide {
    /// Grant `gref` of `dom` (the caller must be its grantee).
    Gref {
        dom: DomId,
        gref: GrantRef,
        offset: u16,
    },
    /// The caller's own frame.
    Local { mfn: u64, offset: u16 },
}

/// `GNTTABOP_copy`, decoded (bounds already checked: G7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyReq {
    pub caller: DomId,
    pub src: CopySide,
    pub dst: CopySide,
    pub len: u16,
}

/// The supported `grant_table_op` commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GnttabCmd {
    MapGrantRef,
    UnmapGrantRef,
    SetupTable,
    Copy,
    QuerySize,
    SetVersion,
    GetVersion,
}

/// Decode `grant_table_op`'s `cmd`: the rest (dump, transfer, unmap-and-replace,
/// status frames, swap, cache flush) is `ENOSYS`.
pub fn decode_cmd(cmd: u32) -> Result<GnttabCmd, Errno> {
    Ok(match cmd {
        GNTTABOP_MAP_GRANT_REF => GnttabCmd::MapGrantRef,
        GNTTABOP_UNMAP_GRANT_REF => GnttabCmd::UnmapGrantRef,
        GNTTABOP_SETUP_TABLE => GnttabCmd::SetupTable,
        GNTTABOP_COPY => GnttabCmd::Copy,
        GNTTABOP_QUERY_SIZE => GnttabCmd::QuerySize,
        GNTTABOP_SET_VERSION => GnttabCmd::SetVersion,
        GNTTABOP_GET_VERSION => GnttabCmd::GetVersion,
        _ => return Err(ENOSYS),
    })
}

/// `GNTTABOP_set_version`: only v1 exists. Xen with `max_version == 1` answers a request
/// for v2 with `ENOSYS` ("behave as before set_version was introduced"), anything else
/// but 1 with `EINVAL`. Returns the version to write back.
pub fn set_version(version: u32) -> Result<u32, Errno> {
    match version {
        1 => Ok(1),
        2 => Err(ENOSYS),
        _ => Err(EINVAL),
    }
}

/// `DOMID_SELF` means the caller.
pub fn resolve_dom(caller: DomId, dom: DomId) -> DomId {
    if dom == DOMID_SELF {
        caller
    } else {
        dom
    }
}

// ---- the host's grant tables ------------------------------------------------------------

/// Every domain's grant table (behind the mechanism's one MMU/grant lock).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Sorted by domain id.
    tables: Vec<GrantTable>,
}

impl Grants {
    pub fn new() -> Self {
        Grants { tables: Vec::new() }
    }

    fn index(&self, d: DomId) -> Option<usize> {
        self.tables.binary_search_by_key(&d, |t| t.shared.dom).ok()
    }

    pub fn table(&self, d: DomId) -> Option<&GrantTable> {
        self.tables.get(self.index(d)?)
    }

    fn table_mut(&mut self, d: DomId) -> Option<&mut GrantTable> {
        let i = self.index(d)?;
        self.tables.get_mut(i)
    }

    /// `mapper`'s maptrack and `granter`'s shared side (possibly the same domain).
    fn pair(&mut self, mapper: DomId, granter: DomId) -> Option<(&mut Maptrack, &mut Shared)> {
        let i = self.index(mapper)?;
        let j = self.index(granter)?;
        if i == j {
            let t = self.tables.get_mut(i)?;
            return Some((&mut t.maptrack, &mut t.shared));
        }
        if i < j {
            let (a, b) = self.tables.split_at_mut(j);
            Some((&mut a.get_mut(i)?.maptrack, &mut b.first_mut()?.shared))
        } else {
            let (a, b) = self.tables.split_at_mut(i);
            Some((&mut b.first_mut()?.maptrack, &mut a.get_mut(j)?.shared))
        }
    }

    /// Give domain `d` an empty grant table (no frames yet). `EEXIST` if it has one.
    pub fn create_domain(&mut self, d: DomId, limits: GrantLimits) -> Result<(), Errno> {
        let pos = match self.tables.binary_search_by_key(&d, |t| t.shared.dom) {
            Ok(_) => return Err(EEXIST),
            Err(p) => p,
        };
        self.tables.insert(
            pos,
            GrantTable {
                shared: Shared {
                    dom: d,
                    max_frames: limits.max_grant_frames,
                    frames: Vec::new(),
                    active: BTreeMap::new(),
                },
                maptrack: Maptrack {
                    dom: d,
                    max: limits.max_maptrack,
                    entries: Vec::new(),
                    free: VecDeque::new(),
                    live: 0,
                    slots: BTreeMap::new(),
                    cursor: 0,
                },
            },
        );
        Ok(())
    }

    // ---- setup_table / query_size --------------------------------------------------------

    /// Decode `GNTTABOP_setup_table` (the mechanism checked `count == 1` and the
    /// `frame_list` handle). `privileged`: the caller may act on other domains (Xen's
    /// `XSM_TARGET`).
    pub fn decode_setup_table(
        &self,
        caller: DomId,
        privileged: bool,
        op: &GnttabSetupTable,
    ) -> Result<SetupTable, GntError> {
        let dom = resolve_dom(caller, op.dom);
        let t = self.table(dom).ok_or(GntError::BadDomain)?;
        if dom != caller && !privileged {
            return Err(GntError::PermissionDenied);
        }
        if op.nr_frames > t.shared.max_frames {
            return Err(GntError::General);
        }
        let have = t.shared.frames.len() as u32;
        Ok(SetupTable {
            dom,
            nr_frames: op.nr_frames,
            grow: op.nr_frames.saturating_sub(have),
        })
    }

    /// Grow the table with `new_frames` (exactly `req.grow` free frames from the
    /// allocator): each is given to the domain, zeroed, and held by the table with a
    /// general and a Writable type reference. Afterwards the first `req.nr_frames` of
    /// [`GrantTable::frames`] are the guest's answer. `General` (nothing changed) if the
    /// frames are not `grow` distinct free frames (a mechanism bug).
    pub fn perform_setup_table<S, M>(
        &mut self,
        mmu: &mut Mmu<S>,
        mem: &mut M,
        req: SetupTable,
        new_frames: &[u64],
    ) -> Result<(), GntError>
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        let t = self.table_mut(req.dom).ok_or(GntError::BadDomain)?;
        let have = t.shared.frames.len() as u64;
        let ok = new_frames.len() as u64 == u64::from(req.grow)
            && have + u64::from(req.grow) <= u64::from(t.shared.max_frames)
            && new_frames.iter().enumerate().all(|(i, &m)| {
                mmu.frames()
                    .get(m)
                    .is_some_and(|f| f.owner() == Owner::None && f.refcount() == 0)
                    && !new_frames.get(..i).is_some_and(|p| p.contains(&m))
            });
        if !ok {
            return Err(GntError::General);
        }
        for &m in new_frames {
            if mmu.assign(m, Owner::Domain(req.dom)).is_err() {
                continue; // checked above
            }
            mem.zero_page(m);
            if mmu
                .get_page_and_type(mem, m, req.dom, PageType::Writable)
                .is_ok()
            {
                t.shared.frames.push(m);
            } else {
                // Cannot happen for a fresh frame; give it back rather than hold nothing.
                let _ = mmu.release_allocation(mem, m, req.dom);
            }
        }
        Ok(())
    }

    /// `GNTTABOP_query_size`: `(nr_frames, max_nr_frames)`.
    pub fn query_size(
        &self,
        caller: DomId,
        privileged: bool,
        op: &GnttabQuerySize,
    ) -> Result<(u32, u32), GntError> {
        let dom = resolve_dom(caller, op.dom);
        let t = self.table(dom).ok_or(GntError::BadDomain)?;
        if dom != caller && !privileged {
            return Err(GntError::PermissionDenied);
        }
        Ok((t.shared.frames.len() as u32, t.shared.max_frames))
    }

    // ---- map ------------------------------------------------------------------------------

    /// Decode `GNTTABOP_map_grant_ref` from `caller`: flags (host map required, device
    /// map refused), the granter, maptrack space, the ref's range and (G3) the PTE
    /// address's alignment. In Xen's order of checks.
    pub fn decode_map(&self, caller: DomId, op: &GnttabMapGrantRef) -> Result<MapReq, GntError> {
        if op.flags & (GNTMAP_HOST_MAP | GNTMAP_DEVICE_MAP) == 0 {
            return Err(GntError::BadGntref); // Xen: "bad flags in grant map op"
        }
        if op.flags & GNTMAP_DEVICE_MAP != 0 {
            return Err(GntError::General); // no device (bus-address) mappings in v1
        }
        // Xen looks the granter up by id: DOMID_SELF is not accepted here.
        let granter = self.table(op.dom).ok_or(GntError::BadDomain)?;
        let mapper = self.table(caller).ok_or(GntError::BadDomain)?;
        if !mapper.maptrack.has_space() {
            return Err(GntError::NoSpace);
        }
        if op.ref_ >= granter.shared.nr_entries() {
            return Err(GntError::BadGntref);
        }
        let readonly = op.flags & GNTMAP_READONLY != 0;
        let target = if op.flags & GNTMAP_CONTAINS_PTE != 0 {
            if !op.host_addr.is_multiple_of(8) {
                return Err(GntError::General); // XSA-227
            }
            MapTarget::Pte {
                l1: op.host_addr >> PAGE_SHIFT,
                idx: ((op.host_addr & (PAGE_SIZE - 1)) >> 3) as usize,
            }
        } else {
            MapTarget::Va(op.host_addr)
        };
        let mut pte_flags = (u64::from(op.flags >> GNTMAP_GUEST_AVAIL_SHIFT) << 9) & PTE_AVAIL_MASK;
        if !readonly {
            pte_flags |= PTE_RW;
        }
        if op.flags & GNTMAP_APPLICATION_MAP != 0 {
            pte_flags |= PTE_USER;
        }
        Ok(MapReq {
            mapper: caller,
            granter: op.dom,
            gref: op.ref_,
            readonly,
            host_addr: op.host_addr,
            target,
            pte_flags,
        })
    }

    /// Perform a decoded map: find the L1 slot (`vcpu`'s kernel page tables for a VA),
    /// pin the entry (G1, P1: frame references), write the grant PTE, record the handle.
    /// The remaining failures depend on the guests' memory (the entry, the frame, the
    /// page tables); each leaves everything as it was.
    pub fn perform_map<S, M>(
        &mut self,
        mmu: &mut Mmu<S>,
        mem: &mut M,
        vcpu: &VcpuMm,
        req: MapReq,
    ) -> Result<Mapped, GntError>
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        let (l1, idx) = match req.target {
            MapTarget::Va(va) => mmu.find_l1e(mem, vcpu, va).map_err(|_| GntError::General)?,
            MapTarget::Pte { l1, idx } => (l1, idx),
        };
        // Check the slot before pinning, so that a bad address changes nothing at all.
        let slot_ok = idx < ENTRIES_PER_TABLE
            && mmu
                .frames()
                .get(l1)
                .is_some_and(|f| f.owned_by(req.mapper) && f.is_live_table() == Some(1))
            && {
                let old = mem.read_pte(l1, idx);
                old & (xen_abi::mm::PTE_PRESENT | crate::mm::PTE_GNTTAB)
                    != xen_abi::mm::PTE_PRESENT | crate::mm::PTE_GNTTAB
            };
        if !slot_ok {
            return Err(GntError::General);
        }
        let (mt, sh) = self
            .pair(req.mapper, req.granter)
            .ok_or(GntError::BadDomain)?;
        if !mt.has_space() {
            return Err(GntError::NoSpace);
        }
        let frame = sh.pin(mmu, mem, req.gref, req.mapper, req.readonly, true)?;
        let (pte, replaced) =
            match mmu.install_grant_l1e(mem, req.mapper, l1, idx, frame, req.pte_flags) {
                Ok(x) => x,
                Err(_) => {
                    sh.unpin(mmu, mem, req.gref, req.readonly);
                    return Err(GntError::General);
                }
            };
        let m = Mapping {
            granter: req.granter,
            gref: req.gref,
            frame,
            writable: !req.readonly,
            host_addr: req.host_addr,
            contains_pte: matches!(req.target, MapTarget::Pte { .. }),
            l1,
            idx: idx as u16,
            pte,
        };
        let Some(handle) = mt.insert(m) else {
            // Checked above; undo rather than leave an untracked PTE.
            let _ = mmu.remove_grant_l1e(mem, req.mapper, l1, idx, pte);
            sh.unpin(mmu, mem, req.gref, req.readonly);
            return Err(GntError::NoSpace);
        };
        let flush = match (replaced, req.target) {
            (false, _) => Flush::None,
            (true, MapTarget::Va(va)) => Flush::PageAll(va),
            (true, MapTarget::Pte { .. }) => Flush::All,
        };
        Ok(Mapped {
            handle,
            dev_bus_addr: frame << PAGE_SHIFT,
            flush,
        })
    }

    /// `map_grant_ref` for one op: decode, perform, fill `status`, `handle` and
    /// `dev_bus_addr`. Returns the TLB work for the mechanism.
    pub fn map_grant_ref<S, M>(
        &mut self,
        mmu: &mut Mmu<S>,
        mem: &mut M,
        caller: DomId,
        vcpu: &VcpuMm,
        op: &mut GnttabMapGrantRef,
    ) -> Flush
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        let r = self
            .decode_map(caller, op)
            .and_then(|req| self.perform_map(mmu, mem, vcpu, req));
        op.status = status_of(&r);
        match r {
            Ok(m) => {
                op.handle = m.handle;
                op.dev_bus_addr = m.dev_bus_addr;
                m.flush
            }
            Err(_) => Flush::None,
        }
    }

    // ---- unmap ----------------------------------------------------------------------------

    /// Decode `GNTTABOP_unmap_grant_ref` from `caller`: the handle must be live in the
    /// caller's own maptrack (G2). `dev_bus_addr` is ignored (no device maps).
    pub fn decode_unmap(
        &self,
        caller: DomId,
        op: &GnttabUnmapGrantRef,
    ) -> Result<UnmapReq, GntError> {
        let t = self.table(caller).ok_or(GntError::BadHandle)?;
        t.maptrack.get(op.handle).ok_or(GntError::BadHandle)?;
        Ok(UnmapReq {
            mapper: caller,
            handle: op.handle,
            host_addr: op.host_addr,
        })
    }

    /// First half of an unmap (G2): `host_addr` must be the map's; the PTE is cleared if
    /// it is still the one the map wrote (if its L1 is no longer a live table of the
    /// mapper, the PTE is dead and nothing is written); the handle is freed. A
    /// `host_addr` of 0 does nothing and succeeds, as in Xen. `General` (nothing
    /// changed) if the address differs or the live PTE is not the map's.
    pub fn perform_unmap<S, M>(
        &mut self,
        mmu: &mut Mmu<S>,
        mem: &mut M,
        req: UnmapReq,
    ) -> Result<Unmapped, GntError>
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        let mt = &mut self
            .table_mut(req.mapper)
            .ok_or(GntError::BadHandle)?
            .maptrack;
        let m = *mt.get(req.handle).ok_or(GntError::BadHandle)?;
        if req.host_addr == 0 {
            return Ok(Unmapped {
                pending: None,
                flush: Flush::None,
            });
        }
        if req.host_addr != m.host_addr {
            return Err(GntError::General);
        }
        if mt.owns_slot(req.handle, &m) {
            mmu.remove_grant_l1e(mem, req.mapper, m.l1, m.idx as usize, m.pte)
                .map_err(|_| GntError::General)?;
        }
        mt.remove(req.handle);
        Ok(Unmapped {
            pending: Some((m.granter, m.gref, m.writable)),
            flush: if m.contains_pte {
                Flush::All
            } else {
                Flush::PageAll(m.host_addr)
            },
        })
    }

    /// Second half of an unmap, after the mechanism flushed the mapper's TLBs: drop the
    /// pin and its frame references, clear the status bits no pin needs.
    pub fn complete_unmap<S, M>(&mut self, mmu: &mut Mmu<S>, mem: &mut M, u: Unmapped)
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        if let Some((granter, gref, writable)) = u.pending {
            if let Some(t) = self.table_mut(granter) {
                t.shared.unpin(mmu, mem, gref, !writable);
            }
        }
    }

    /// `unmap_grant_ref` for one op: decode, perform, fill `status`. The mechanism
    /// batches the returned tokens: flush (merged [`Unmapped::flush`]), then
    /// [`Self::complete_unmap`] each.
    pub fn unmap_grant_ref<S, M>(
        &mut self,
        mmu: &mut Mmu<S>,
        mem: &mut M,
        caller: DomId,
        op: &mut GnttabUnmapGrantRef,
    ) -> Option<Unmapped>
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        let r = self
            .decode_unmap(caller, op)
            .and_then(|req| self.perform_unmap(mmu, mem, req));
        op.status = status_of(&r);
        r.ok()
    }

    // ---- copy -----------------------------------------------------------------------------

    /// Decode `GNTTABOP_copy` from `caller` (G7): a frame side must be `DOMID_SELF`
    /// (`PermissionDenied`), a gref side names an existing domain (`DOMID_SELF` allowed)
    /// and a ref in range, and `offset + len <= 4096` on both sides (`BadCopyArg`).
    pub fn decode_copy(&self, caller: DomId, op: &GnttabCopy) -> Result<CopyReq, GntError> {
        let side = |p: &GnttabCopyPtr, is_gref: bool| -> Result<CopySide, GntError> {
            if !is_gref {
                if p.domid != DOMID_SELF {
                    return Err(GntError::PermissionDenied);
                }
                return Ok(CopySide::Local {
                    mfn: p.u,
                    offset: p.offset,
                });
            }
            let dom = resolve_dom(caller, p.domid);
            self.table(dom).ok_or(GntError::BadDomain)?;
            Ok(CopySide::Gref {
                dom,
                gref: p.u as u32, // the union's `ref` is its low 32 bits
                offset: p.offset,
            })
        };
        let src = side(&op.source, op.flags & GNTCOPY_SOURCE_GREF != 0)?;
        let dst = side(&op.dest, op.flags & GNTCOPY_DEST_GREF != 0)?;
        for s in [src, dst] {
            if let CopySide::Gref { dom, gref, .. } = s {
                if self.table(dom).is_none_or(|t| gref >= t.nr_entries()) {
                    return Err(GntError::BadGntref);
                }
            }
        }
        let end = |o: u16| u64::from(o) + u64::from(op.len) > PAGE_SIZE;
        if end(op.source.offset) || end(op.dest.offset) {
            return Err(GntError::BadCopyArg);
        }
        Ok(CopyReq {
            caller,
            src,
            dst,
            len: op.len,
        })
    }

    /// Pin one side of a copy; returns the frame.
    fn acquire<S, M>(
        &mut self,
        mmu: &mut Mmu<S>,
        mem: &mut M,
        caller: DomId,
        side: CopySide,
        readonly: bool,
    ) -> Result<u64, GntError>
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        match side {
            CopySide::Gref { dom, gref, .. } => {
                let t = self.table_mut(dom).ok_or(GntError::BadDomain)?;
                t.shared.pin(mmu, mem, gref, caller, readonly, false)
            }
            CopySide::Local { mfn, .. } => {
                get_frame_refs(mmu, mem, mfn, caller, readonly, true)?;
                Ok(mfn)
            }
        }
    }

    fn release<S, M>(&mut self, mmu: &mut Mmu<S>, mem: &mut M, side: CopySide, readonly: bool)
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        match side {
            CopySide::Gref { dom, gref, .. } => {
                if let Some(t) = self.table_mut(dom) {
                    t.shared.unpin(mmu, mem, gref, readonly);
                }
            }
            CopySide::Local { mfn, .. } => put_frame_refs(mmu, mem, mfn, readonly),
        }
    }

    /// Perform a decoded copy: pin the source read-only and the destination writable
    /// (a Writable type reference: never a page table, P1), copy, release both. Each
    /// failure leaves everything as it was.
    pub fn perform_copy<S, M>(
        &mut self,
        mmu: &mut Mmu<S>,
        mem: &mut M,
        req: CopyReq,
    ) -> Result<(), GntError>
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        let src = self.acquire(mmu, mem, req.caller, req.src, true)?;
        let dst = match self.acquire(mmu, mem, req.caller, req.dst, false) {
            Ok(d) => d,
            Err(e) => {
                self.release(mmu, mem, req.src, true);
                return Err(e);
            }
        };
        let off = |s: CopySide| match s {
            CopySide::Gref { offset, .. } | CopySide::Local { offset, .. } => offset as usize,
        };
        if req.len > 0 {
            mem.copy_bytes(dst, off(req.dst), src, off(req.src), req.len as usize);
        }
        self.release(mmu, mem, req.dst, false);
        self.release(mmu, mem, req.src, true);
        Ok(())
    }

    /// `gnttab_copy` for one op: decode, perform, fill `status`.
    pub fn copy<S, M>(&mut self, mmu: &mut Mmu<S>, mem: &mut M, caller: DomId, op: &mut GnttabCopy)
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        let r = self
            .decode_copy(caller, op)
            .and_then(|req| self.perform_copy(mmu, mem, req));
        op.status = status_of(&r);
    }

    // ---- teardown -------------------------------------------------------------------------

    /// Domain teardown, as mapper (Xen's `gnttab_release_mappings`, G5): release up to
    /// `budget` maptrack slots of `d` from where the last call stopped: clear each grant
    /// PTE still live, flush all TLBs once, then drop the pins. Returns `Ok(true)` when
    /// `d` has no mapping left, `Ok(false)` if the caller must call again (continuation).
    /// `EINVAL` if `d` has no table.
    pub fn release_mappings<S, M>(
        &mut self,
        mmu: &mut Mmu<S>,
        mem: &mut M,
        d: DomId,
        budget: u32,
    ) -> Result<bool, Errno>
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: GrantMem,
    {
        let mt = &mut self.table_mut(d).ok_or(EINVAL)?.maptrack;
        let mut done = Vec::new();
        for _ in 0..budget {
            if mt.live == 0 {
                break;
            }
            let len = mt.entries.len() as u32;
            let h = if mt.cursor < len { mt.cursor } else { 0 };
            mt.cursor = h.saturating_add(1);
            let Some(m) = mt.get(h).copied() else {
                continue;
            };
            if mt.owns_slot(h, &m) {
                // A mismatch cannot happen (grant PTEs are only ours to change); if it
                // did, the PTE is not this map's and is left alone.
                let _ = mmu.remove_grant_l1e(mem, d, m.l1, m.idx as usize, m.pte);
            }
            mt.remove(h);
            done.push(m);
        }
        let finished = mt.live == 0;
        if finished {
            mt.cursor = 0;
        }
        if !done.is_empty() {
            mem.flush_tlbs_all();
        }
        for m in done {
            if let Some(t) = self.table_mut(m.granter) {
                t.shared.unpin(mmu, mem, m.gref, !m.writable);
            }
        }
        Ok(finished)
    }

    /// Destroy `d`'s table: `EBUSY` while `d` maps anything or anything is pinned in
    /// its entries (G4: table frames are never freed under a mapping; the mechanism
    /// keeps the dying domain as a zombie until then). Drops the table's references on
    /// its frames (their allocation references go with `Mmu::relinquish`).
    pub fn destroy_domain<S, M>(
        &mut self,
        mmu: &mut Mmu<S>,
        mem: &mut M,
        d: DomId,
    ) -> Result<(), Errno>
    where
        S: AsRef<[crate::frame::FrameInfo]> + AsMut<[crate::frame::FrameInfo]>,
        M: PhysMem,
    {
        let i = self.index(d).ok_or(EINVAL)?;
        let t = self.tables.get(i).ok_or(EINVAL)?;
        if t.maptrack.live > 0 || !t.shared.active.is_empty() {
            return Err(EBUSY);
        }
        let t = self.tables.remove(i);
        for m in t.shared.frames {
            mmu.put_page_and_type(mem, m);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
