//! Granting our pages to other domains: the v1 grant table, as Linux's `gnttab` does it.
//!
//! A domain's grant table is an array of 8-byte `grant_entry_v1` (`flags`, `domid`,
//! `frame`) in frames the hypervisor owns; `GNTTABOP_setup_table` names them and the
//! guest maps them once ([`table`] does it on first use, [`GRANT_FRAMES`] frames at most).
//! Entry `r` lets domain `domid` map or copy `frame` while its `flags` say
//! `GTF_permit_access`; the hypervisor sets `GTF_reading`/`GTF_writing` while the peer
//! has it mapped (or is copying).
//!
//! - [`grant_access`] takes a free reference (the first [`GNTTAB_NR_RESERVED_ENTRIES`]
//!   are the toolstack's: never handed out), writes `domid` and `frame`, then, after a
//!   write barrier, the flags: the hypervisor never sees a valid entry with a stale frame.
//! - [`end_access`] revokes it with a compare-and-exchange of the flags to 0 that fails
//!   while `GTF_reading`/`GTF_writing` are set (Linux's
//!   `gnttab_end_foreign_access_ref`): [`InUse`] then, and the entry stays granted. Only a
//!   revoked reference goes back to the free list, and only a page whose grants were all
//!   revoked may be reused or freed.
//!
//! Entries are shared with the hypervisor: they are reached through raw pointers, with
//! volatile writes for `domid`/`frame` and atomic operations on `flags`, never through a
//! Rust reference. The free list and the entry protocol are host-tested over an ordinary
//! buffer standing in for the table.

use core::sync::atomic::{fence, AtomicU16, Ordering};

use xen_abi::errno::{Errno, EINVAL, ENOSPC};
pub use xen_abi::grant_table::GrantRef;
use xen_abi::grant_table::{
    GNTTAB_NR_RESERVED_ENTRIES, GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, GTF_WRITING,
};
use xen_abi::xen::DomId;

/// Entries of a v1 grant frame (4096 / 8).
pub const ENTRIES_PER_FRAME: u32 = 512;
/// Most grant frames [`table`] sets up and maps (512 entries each).
pub const GRANT_FRAMES: usize = 4;

/// [`end_access`] refused: the peer still has the page mapped (or is copying it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InUse;

/// The references not in use, `GNTTAB_NR_RESERVED_ENTRIES..nr_entries`. Pure.
#[derive(Debug)]
pub struct FreeList {
    /// Free references, the next one handed out last.
    free: [GrantRef; GRANT_FRAMES * ENTRIES_PER_FRAME as usize],
    len: usize,
    /// One bit per reference: set while it is handed out.
    used: [u64; GRANT_FRAMES * ENTRIES_PER_FRAME as usize / 64],
    nr_entries: u32,
}

impl FreeList {
    /// Every reference of a table of `nr_entries` (at most
    /// `GRANT_FRAMES * ENTRIES_PER_FRAME`) except the reserved ones, lowest first out.
    pub fn new(nr_entries: u32) -> FreeList {
        let nr_entries = nr_entries.min(GRANT_FRAMES as u32 * ENTRIES_PER_FRAME);
        let mut l = FreeList {
            free: [0; GRANT_FRAMES * ENTRIES_PER_FRAME as usize],
            len: 0,
            used: [0; GRANT_FRAMES * ENTRIES_PER_FRAME as usize / 64],
            nr_entries,
        };
        for r in (GNTTAB_NR_RESERVED_ENTRIES..nr_entries).rev() {
            if let Some(slot) = l.free.get_mut(l.len) {
                *slot = r;
                l.len += 1;
            }
        }
        l
    }

    /// Entries in the table (reserved ones included).
    pub fn nr_entries(&self) -> u32 {
        self.nr_entries
    }

    /// References free.
    pub fn available(&self) -> usize {
        self.len
    }

    /// Take a free reference.
    pub fn alloc(&mut self) -> Option<GrantRef> {
        self.len = self.len.checked_sub(1)?;
        let r = *self.free.get(self.len)?;
        self.set_used(r, true);
        Some(r)
    }

    /// Give back `r`. A reserved, out-of-range or already free reference is refused
    /// (`false`), so a double free cannot hand one reference out twice.
    pub fn free(&mut self, r: GrantRef) -> bool {
        if !self.is_allocated(r) {
            return false;
        }
        let Some(slot) = self.free.get_mut(self.len) else {
            return false;
        };
        *slot = r;
        self.len += 1;
        self.set_used(r, false);
        true
    }

    /// Whether `r` is handed out.
    pub fn is_allocated(&self, r: GrantRef) -> bool {
        r >= GNTTAB_NR_RESERVED_ENTRIES
            && r < self.nr_entries
            && self
                .used
                .get(r as usize / 64)
                .is_some_and(|w| w & (1 << (r % 64)) != 0)
    }

    fn set_used(&mut self, r: GrantRef, on: bool) {
        if let Some(w) = self.used.get_mut(r as usize / 64) {
            if on {
                *w |= 1 << (r % 64);
            } else {
                *w &= !(1 << (r % 64));
            }
        }
    }
}

/// The `flags` of a grant for `readonly` or read-write access.
pub const fn grant_flags(readonly: bool) -> u16 {
    if readonly {
        GTF_PERMIT_ACCESS | GTF_READONLY
    } else {
        GTF_PERMIT_ACCESS
    }
}

/// Whether `flags` say the peer has the page mapped or is copying it.
pub const fn flags_in_use(flags: u16) -> bool {
    flags & (GTF_READING | GTF_WRITING) != 0
}

/// A mapped v1 grant table and its free list.
pub struct GrantTable {
    /// First byte of the entries (`nr_entries * 8` bytes, 8-aligned).
    base: *mut u8,
    free: spin::Mutex<FreeList>,
}

impl core::fmt::Debug for GrantTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GrantTable")
            .field("base", &self.base)
            .field("nr_entries", &self.free.lock().nr_entries())
            .finish()
    }
}

// SAFETY: the table is shared memory reached only through raw pointers with volatile or
// atomic accesses; the free list is behind a lock. Any vCPU may use it.
unsafe impl Send for GrantTable {}
// SAFETY: as above.
unsafe impl Sync for GrantTable {}

impl GrantTable {
    /// A table of `nr_entries` entries at `base`.
    ///
    /// # Safety
    /// `base` must be 8-aligned and point at `nr_entries * 8` bytes that stay mapped and
    /// writable for as long as the table is used, that nothing else in this domain writes
    /// (the hypervisor may), and whose entries are not granted (flags 0).
    pub unsafe fn from_raw(base: *mut u8, nr_entries: u32) -> GrantTable {
        GrantTable {
            base,
            free: spin::Mutex::new(FreeList::new(nr_entries)),
        }
    }

    /// Entries in the table.
    pub fn nr_entries(&self) -> u32 {
        self.free.lock().nr_entries()
    }

    /// References free.
    pub fn available(&self) -> usize {
        self.free.lock().available()
    }

    /// Address of entry `r`, if it is in the table.
    fn entry(&self, r: GrantRef) -> Option<*mut u8> {
        (r < self.nr_entries()).then(|| self.base.wrapping_add(r as usize * 8))
    }

    fn flags(&self, entry: *mut u8) -> &AtomicU16 {
        // SAFETY: `entry` is an entry of the table (`Self::entry`), whose 2-aligned
        // `flags` field at offset 0 lives as long as `self` (`from_raw`'s contract); the
        // hypervisor updates it atomically, as we do, and never through a reference of
        // ours that would alias it non-atomically.
        unsafe { AtomicU16::from_ptr(entry.cast::<u16>()) }
    }

    /// Grant `domid` access to machine frame `frame` (read-only if `readonly`).
    /// `ENOSPC` when every reference is in use, `EINVAL` for a frame above 2^32.
    pub fn grant_access(
        &self,
        domid: DomId,
        frame: u64,
        readonly: bool,
    ) -> Result<GrantRef, Errno> {
        let frame = u32::try_from(frame).map_err(|_| EINVAL)?;
        let r = self.free.lock().alloc().ok_or(ENOSPC)?;
        let Some(e) = self.entry(r) else {
            self.free.lock().free(r);
            return Err(EINVAL);
        };
        // SAFETY: `e` is entry `r` of the table (in bounds, 8-aligned): `domid` at +2 and
        // `frame` at +4. The entry is ours (flags 0: free references are never granted),
        // so the hypervisor does not read these fields until the flags below say so.
        unsafe {
            e.add(2).cast::<u16>().write_volatile(domid);
            e.add(4).cast::<u32>().write_volatile(frame);
        }
        // The frame and domid before the flags that validate them (Linux's `wmb()`).
        fence(Ordering::Release);
        self.flags(e).store(grant_flags(readonly), Ordering::SeqCst);
        Ok(r)
    }

    /// Revoke `r`: refused with [`InUse`] while the peer has it mapped; otherwise the
    /// entry is cleared (so the peer can no longer map it) and `r` is free again.
    /// Revoking a reference that is not handed out does nothing.
    pub fn end_access(&self, r: GrantRef) -> Result<(), InUse> {
        if !self.free.lock().is_allocated(r) {
            return Ok(());
        }
        let Some(e) = self.entry(r) else {
            return Ok(());
        };
        let flags = self.flags(e);
        let mut cur = flags.load(Ordering::SeqCst);
        loop {
            if flags_in_use(cur) {
                return Err(InUse);
            }
            match flags.compare_exchange(cur, 0, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        self.free.lock().free(r);
        Ok(())
    }

    /// Whether the peer has `r` mapped (or is copying it) now.
    pub fn is_in_use(&self, r: GrantRef) -> bool {
        self.entry(r)
            .is_some_and(|e| flags_in_use(self.flags(e).load(Ordering::SeqCst)))
    }
}

/// This domain's grant table: `GNTTABOP_setup_table` for up to [`GRANT_FRAMES`] frames
/// (as many as `GNTTABOP_query_size` allows), mapped once over pages of the SDK's
/// image. Fails on the host (`ENOSYS`) and where the hypervisor refuses.
pub fn table() -> Result<&'static GrantTable, Errno> {
    static TABLE: spin::Once<Result<GrantTable, Errno>> = spin::Once::new();
    TABLE.call_once(map_table).as_ref().map_err(|&e| e)
}

/// Grant `domid` access to machine frame `frame` in this domain's table.
pub fn grant_access(domid: DomId, frame: u64, readonly: bool) -> Result<GrantRef, Errno> {
    table()?.grant_access(domid, frame, readonly)
}

/// Revoke `r` in this domain's table (see [`GrantTable::end_access`]).
pub fn end_access(r: GrantRef) -> Result<(), InUse> {
    match table() {
        Ok(t) => t.end_access(r),
        Err(_) => Ok(()),
    }
}

/// Whether the peer has `r` of this domain's table mapped.
pub fn is_in_use(r: GrantRef) -> bool {
    table().is_ok_and(|t| t.is_in_use(r))
}

#[cfg(target_os = "none")]
fn map_table() -> Result<GrantTable, Errno> {
    use core::cell::UnsafeCell;
    use xen_abi::xen::DOMID_SELF;

    /// Pages of our image whose mappings are replaced by the grant frames; never
    /// referenced from Rust.
    #[repr(C, align(4096))]
    struct Frames(UnsafeCell<[u8; 4096 * GRANT_FRAMES]>);
    // SAFETY: only its address is used; the memory is reached through the table's raw
    // pointers.
    unsafe impl Sync for Frames {}
    static FRAMES: Frames = Frames(UnsafeCell::new([0; 4096 * GRANT_FRAMES]));

    let (_, max) = crate::privileged::gnttab_query_size(DOMID_SELF)?;
    let want = (max as usize).clamp(1, GRANT_FRAMES);
    let mut mfns = [0u64; GRANT_FRAMES];
    let n = match crate::privileged::gnttab_setup_table(DOMID_SELF, &mut mfns[..want]) {
        Ok(()) => want,
        Err(_) => {
            crate::privileged::gnttab_setup_table(DOMID_SELF, &mut mfns[..1])?;
            1
        }
    };
    let base = FRAMES.0.get() as u64;
    for (i, &mfn) in mfns.iter().take(n).enumerate() {
        // SAFETY: the pages of FRAMES are ours and nothing references them; their
        // mapping is replaced by grant frame `i` for the rest of the domain's life.
        unsafe { crate::mm::map_mfn(base + i as u64 * 4096, mfn, crate::mm::PAGE_KERNEL) }?;
    }
    // SAFETY: `base` maps `n` grant frames, writable, for ever (FRAMES is a static never
    // otherwise used); only this table writes them. Entries not reserved start invalid.
    Ok(unsafe { GrantTable::from_raw(base as *mut u8, n as u32 * ENTRIES_PER_FRAME) })
}

#[cfg(not(target_os = "none"))]
fn map_table() -> Result<GrantTable, Errno> {
    Err(xen_abi::errno::ENOSYS)
}

/// A zeroed, page-aligned page of our heap to share with another domain, reached only
/// through volatile accesses (the peer may write it while it is granted).
///
/// Dropping it gives the memory back to the heap: end every grant of it first. If one
/// cannot be ended ([`InUse`]), [`leak`](Self::leak) it instead.
#[cfg(feature = "heap")]
#[derive(Debug)]
pub struct SharedFrame {
    va: *mut u8,
}

// SAFETY: an owned heap page, reached only through volatile accesses.
#[cfg(feature = "heap")]
unsafe impl Send for SharedFrame {}

#[cfg(feature = "heap")]
impl SharedFrame {
    /// Bytes in the page.
    pub const SIZE: usize = 4096;

    fn layout() -> core::alloc::Layout {
        // 4096 is a power of two and a multiple of itself: always a valid layout.
        core::alloc::Layout::from_size_align(Self::SIZE, Self::SIZE)
            .unwrap_or(core::alloc::Layout::new::<u8>())
    }

    /// A new zeroed page (`ENOMEM` when the heap is exhausted).
    pub fn new() -> Result<SharedFrame, Errno> {
        extern crate alloc;
        let layout = Self::layout();
        if layout.size() != Self::SIZE {
            return Err(xen_abi::errno::ENOMEM);
        }
        // SAFETY: `layout` has a non-zero size.
        let va = unsafe { alloc::alloc::alloc_zeroed(layout) };
        if va.is_null() {
            return Err(xen_abi::errno::ENOMEM);
        }
        Ok(SharedFrame { va })
    }

    /// Its virtual address.
    pub fn va(&self) -> u64 {
        self.va as u64
    }

    /// Its machine frame (what a grant names). `None` outside the start-of-day region
    /// (on the host).
    pub fn mfn(&self) -> Option<u64> {
        #[cfg(target_os = "none")]
        {
            crate::mm::virt_to_mfn(self.va())
        }
        #[cfg(not(target_os = "none"))]
        {
            None
        }
    }

    fn fits(off: usize, len: usize) -> bool {
        off.checked_add(len).is_some_and(|e| e <= Self::SIZE)
    }

    /// The `u32` at `off` (0 if `off` is not 4-aligned or not in the page).
    pub fn read_u32(&self, off: usize) -> u32 {
        if !off.is_multiple_of(4) || !Self::fits(off, 4) {
            return 0;
        }
        // SAFETY: in the page (checked) and aligned; the page is ours for `self`'s life.
        unsafe { self.va.add(off).cast::<u32>().read_volatile() }
    }

    /// Write the `u32` at `off` (ignored if not 4-aligned or not in the page).
    pub fn write_u32(&self, off: usize, val: u32) {
        if !off.is_multiple_of(4) || !Self::fits(off, 4) {
            return;
        }
        // SAFETY: as in `read_u32`; the page is writable.
        unsafe { self.va.add(off).cast::<u32>().write_volatile(val) }
    }

    /// Copy bytes from `off` (zeros where the range leaves the page).
    pub fn read_bytes(&self, off: usize, out: &mut [u8]) {
        if !Self::fits(off, out.len()) {
            out.fill(0);
            return;
        }
        let mut i = 0;
        while i < out.len() {
            let at = off + i;
            if at.is_multiple_of(8) && out.len() - i >= 8 {
                // SAFETY: `at..at + 8` is in the page (checked above) and 8-aligned.
                let v = unsafe { self.va.add(at).cast::<u64>().read_volatile() };
                if let Some(d) = out.get_mut(i..i + 8) {
                    d.copy_from_slice(&v.to_ne_bytes());
                }
                i += 8;
            } else {
                // SAFETY: `at` is in the page (checked above).
                let b = unsafe { self.va.add(at).read_volatile() };
                if let Some(d) = out.get_mut(i) {
                    *d = b;
                }
                i += 1;
            }
        }
    }

    /// Copy `data` to `off` (ignored if the range leaves the page).
    pub fn write_bytes(&self, off: usize, data: &[u8]) {
        if !Self::fits(off, data.len()) {
            return;
        }
        let mut i = 0;
        while i < data.len() {
            let at = off + i;
            match data.get(i..i + 8) {
                Some(w) if at.is_multiple_of(8) => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(w);
                    // SAFETY: `at..at + 8` is in the page (checked above) and aligned.
                    unsafe {
                        self.va
                            .add(at)
                            .cast::<u64>()
                            .write_volatile(u64::from_ne_bytes(b))
                    };
                    i += 8;
                }
                _ => {
                    let b = data.get(i).copied().unwrap_or(0);
                    // SAFETY: `at` is in the page (checked above).
                    unsafe { self.va.add(at).write_volatile(b) };
                    i += 1;
                }
            }
        }
    }

    /// Give up the page without freeing it: for a page a peer may still write (a grant
    /// that could not be ended).
    pub fn leak(self) {
        core::mem::forget(self);
    }
}

#[cfg(feature = "heap")]
impl Drop for SharedFrame {
    fn drop(&mut self) {
        extern crate alloc;
        // SAFETY: `va` came from `alloc_zeroed` with this layout and is freed once.
        unsafe { alloc::alloc::dealloc(self.va, Self::layout()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_list_skips_reserved_and_refuses_double_free() {
        let mut l = FreeList::new(16);
        assert_eq!(l.available(), 8);
        let a = l.alloc().unwrap();
        assert_eq!(a, GNTTAB_NR_RESERVED_ENTRIES, "lowest first");
        let mut got = vec![a];
        while let Some(r) = l.alloc() {
            got.push(r);
        }
        assert_eq!(got, (8..16).collect::<Vec<_>>());
        assert!(l.free(9));
        assert!(!l.free(9), "double free refused");
        assert!(!l.free(3), "reserved refused");
        assert!(!l.free(16), "out of range refused");
        assert_eq!(l.alloc(), Some(9));
        assert_eq!(l.alloc(), None);
    }

    #[test]
    fn free_list_is_capped_at_the_mapped_frames() {
        let l = FreeList::new(1 << 20);
        assert_eq!(l.nr_entries(), GRANT_FRAMES as u32 * ENTRIES_PER_FRAME);
        assert_eq!(
            l.available(),
            (GRANT_FRAMES as u32 * ENTRIES_PER_FRAME - GNTTAB_NR_RESERVED_ENTRIES) as usize
        );
    }

    fn table_over(buf: &mut [u64]) -> GrantTable {
        // SAFETY: `buf` is 8-aligned, zeroed and outlives the table in each test.
        unsafe { GrantTable::from_raw(buf.as_mut_ptr().cast(), buf.len() as u32) }
    }

    fn entry(buf: &[u64], r: GrantRef) -> (u16, u16, u32) {
        let v = buf[r as usize];
        (v as u16, (v >> 16) as u16, (v >> 32) as u32)
    }

    #[test]
    fn grant_writes_the_entry_and_end_access_revokes_it() {
        let mut buf = vec![0u64; 32];
        let t = table_over(&mut buf);
        let r = t.grant_access(7, 0x1234, false).unwrap();
        let ro = t.grant_access(7, 0x99, true).unwrap();
        assert_eq!(t.available(), 22);
        assert!(t.end_access(r).is_ok());
        assert!(t.end_access(ro).is_ok());
        assert_eq!(t.available(), 24);
        assert_eq!(entry(&buf, 8), (0, 7, 0x1234), "flags cleared, rest kept");
        assert_eq!(entry(&buf, 9), (0, 7, 0x99));
        assert!(t_frame_too_big());
    }

    fn t_frame_too_big() -> bool {
        let mut buf = vec![0u64; 16];
        let t = table_over(&mut buf);
        t.grant_access(1, 1 << 32, false) == Err(EINVAL) && t.available() == 8
    }

    #[test]
    fn entry_flags_say_permit_and_readonly() {
        let mut buf = vec![0u64; 16];
        let t = table_over(&mut buf);
        let a = t.grant_access(3, 5, true).unwrap();
        let b = t.grant_access(3, 6, false).unwrap();
        let base = buf.as_ptr();
        // SAFETY: reading the test's own buffer.
        let (ea, eb) = unsafe { (*base.add(a as usize), *base.add(b as usize)) };
        assert_eq!(ea as u16, GTF_PERMIT_ACCESS | GTF_READONLY);
        assert_eq!(eb as u16, GTF_PERMIT_ACCESS);
        assert_eq!((ea >> 16) as u16, 3);
        assert_eq!((eb >> 32) as u32, 6);
    }

    #[test]
    fn end_access_refuses_while_mapped() {
        let mut buf = vec![0u64; 16];
        let t = table_over(&mut buf);
        let r = t.grant_access(2, 42, false).unwrap();
        let flags = buf.as_mut_ptr().wrapping_add(r as usize).cast::<u16>();
        // SAFETY: the flags of entry `r` in the test's buffer, as the hypervisor would
        // set them while the peer has the page mapped.
        let f = unsafe { AtomicU16::from_ptr(flags) };
        f.fetch_or(GTF_READING, Ordering::SeqCst);
        assert!(t.is_in_use(r));
        assert_eq!(t.end_access(r), Err(InUse));
        assert_eq!(t.available(), 7, "still handed out");
        f.fetch_and(!GTF_READING, Ordering::SeqCst);
        f.fetch_or(GTF_WRITING, Ordering::SeqCst);
        assert_eq!(t.end_access(r), Err(InUse));
        f.fetch_and(!GTF_WRITING, Ordering::SeqCst);
        assert!(!t.is_in_use(r));
        assert_eq!(t.end_access(r), Ok(()));
        assert_eq!(f.load(Ordering::SeqCst), 0);
        assert_eq!(t.available(), 8);
        assert_eq!(
            t.end_access(r),
            Ok(()),
            "ending a free reference does nothing"
        );
        assert_eq!(t.available(), 8);
    }

    #[test]
    fn exhausting_the_table_is_enospc() {
        let mut buf = vec![0u64; 10];
        let t = table_over(&mut buf);
        assert!(t.grant_access(1, 1, false).is_ok());
        assert!(t.grant_access(1, 2, false).is_ok());
        assert_eq!(t.grant_access(1, 3, false), Err(ENOSPC));
    }

    #[test]
    fn host_has_no_table() {
        assert!(table().is_err());
        assert_eq!(end_access(8), Ok(()));
        assert!(!is_in_use(8));
    }

    #[test]
    fn shared_frame_accessors_stay_in_the_page() {
        let p = SharedFrame::new().unwrap();
        assert_eq!(p.va() % 4096, 0);
        p.write_u32(8, 0xdead_beef);
        assert_eq!(p.read_u32(8), 0xdead_beef);
        assert_eq!(p.read_u32(4094), 0);
        p.write_u32(4096, 1);
        let data: Vec<u8> = (0..100u8).collect();
        p.write_bytes(3, &data);
        let mut out = vec![0u8; 100];
        p.read_bytes(3, &mut out);
        assert_eq!(out, data);
        p.write_bytes(4090, &data);
        let mut tail = [1u8; 8];
        p.read_bytes(4090, &mut tail);
        assert_eq!(
            tail, [0; 8],
            "write past the end ignored, read past it zero"
        );
        assert_eq!(p.mfn(), None);
    }
}
