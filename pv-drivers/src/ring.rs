//! Xen's generic shared ring (`xen/io/ring.h`) as safe Rust.
//!
//! A ring lives in memory shared with a peer domain that may be hostile. The ring code
//! here reaches that memory only through [`SharedPage`] (a bounds-checked, copy-in /
//! copy-out interface; the kernel implementation uses volatile accesses), and:
//! - reads a producer index once per batch ([`BackRing::poll_requests`],
//!   [`FrontRing::poll_responses`]), checks it against the private indices and latches
//!   the ring as broken ([`RingError`]) when it claims more entries than can exist;
//! - masks every index with `size - 1` before turning it into an offset, so no value the
//!   peer writes can move an access outside the ring area;
//! - copies each entry out of the shared page into a local value before anyone looks at
//!   it (`RING_COPY_REQUEST`), so the peer cannot change it under the reader.
//!
//! Names follow `ring.h`: [`FrontRing`] has the frontend's private `req_prod_pvt` and
//! `rsp_cons`, [`BackRing`] the backend's `rsp_prod_pvt` and `req_cons`; the
//! `*_and_check_notify` and `final_check_for_*` methods are the macros of the same names,
//! including the event-index rule: a producer notifies exactly when the consumer's
//! `*_event` mark lies in `(old, new]` of the producer index it just published.

use core::marker::PhantomData;
use core::mem::size_of;
use core::sync::atomic::{fence, AtomicU32, Ordering};

use alloc::boxed::Box;
use alloc::vec::Vec;

use xen_abi::io::ring::{
    entry_offset, ring_size, RingIdx, SRING_HEADER_SIZE, SRING_PVT, SRING_REQ_EVENT,
    SRING_REQ_PROD, SRING_RSP_EVENT, SRING_RSP_PROD,
};
use xen_abi::wire::Wire;

/// Memory shared with a peer: the ring page(s).
///
/// Every access is a copy. Implementations must not assume the content is stable
/// between two calls (the peer writes concurrently). Offsets passed by the ring code are
/// always in range (`off + len <= size()`) and 4-aligned for the `u32` accessors; an
/// implementation may panic otherwise (that would be a bug here, not peer input).
pub trait SharedPage {
    /// Size of the shared area in bytes (one or more 4 KiB pages).
    fn size(&self) -> usize;
    /// Read the little-endian `u32` at `off` (a single, untorn access).
    fn read_u32(&self, off: usize) -> u32;
    /// Write the little-endian `u32` at `off` (a single, untorn access).
    fn write_u32(&self, off: usize, val: u32);
    /// Copy `out.len()` bytes from `off`.
    fn read_bytes(&self, off: usize, out: &mut [u8]);
    /// Copy `data` to `off`.
    fn write_bytes(&self, off: usize, data: &[u8]);
    /// Full memory barrier (`xen_mb`).
    fn fence(&self);
    /// Read barrier (`xen_rmb`); a compiler barrier suffices on x86.
    fn read_fence(&self) {
        self.fence()
    }
    /// Write barrier (`xen_wmb`); a compiler barrier suffices on x86.
    fn write_fence(&self) {
        self.fence()
    }
}

impl<T: SharedPage + ?Sized> SharedPage for &T {
    fn size(&self) -> usize {
        (**self).size()
    }
    fn read_u32(&self, off: usize) -> u32 {
        (**self).read_u32(off)
    }
    fn write_u32(&self, off: usize, val: u32) {
        (**self).write_u32(off, val)
    }
    fn read_bytes(&self, off: usize, out: &mut [u8]) {
        (**self).read_bytes(off, out)
    }
    fn write_bytes(&self, off: usize, data: &[u8]) {
        (**self).write_bytes(off, data)
    }
    fn fence(&self) {
        (**self).fence()
    }
    fn read_fence(&self) {
        (**self).read_fence()
    }
    fn write_fence(&self) {
        (**self).write_fence()
    }
}

/// A heap-backed [`SharedPage`] for host tests and for rings both ends of which live in
/// one address space. Made of atomic words, so it is `Sync`: two threads can drive the
/// two ends of a ring over one `HeapPage`. Panics on an out-of-range offset.
#[derive(Debug)]
pub struct HeapPage {
    words: Box<[AtomicU32]>,
    size: usize,
}

impl HeapPage {
    /// `size` zero bytes (rounded up to a multiple of 4).
    pub fn new(size: usize) -> Self {
        let n = size.div_ceil(4);
        let words: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
        Self {
            words: words.into_boxed_slice(),
            size: n * 4,
        }
    }

    /// One zeroed 4 KiB page.
    pub fn page() -> Self {
        Self::new(xen_abi::io::ring::XEN_PAGE_SIZE)
    }

    fn byte(&self, i: usize) -> u8 {
        (self.words[i / 4].load(Ordering::Relaxed) >> (8 * (i % 4))) as u8
    }

    fn set_byte(&self, i: usize, b: u8) {
        let shift = 8 * (i % 4);
        let w = &self.words[i / 4];
        let mut cur = w.load(Ordering::Relaxed);
        loop {
            let new = (cur & !(0xff << shift)) | (u32::from(b) << shift);
            match w.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(v) => cur = v,
            }
        }
    }
}

impl SharedPage for HeapPage {
    fn size(&self) -> usize {
        self.size
    }
    fn read_u32(&self, off: usize) -> u32 {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.size,
            "read_u32 at {off}"
        );
        self.words[off / 4].load(Ordering::Relaxed)
    }
    fn write_u32(&self, off: usize, val: u32) {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.size,
            "write_u32 at {off}"
        );
        self.words[off / 4].store(val, Ordering::Relaxed)
    }
    fn read_bytes(&self, off: usize, out: &mut [u8]) {
        assert!(
            off <= self.size && out.len() <= self.size - off,
            "read_bytes at {off}"
        );
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.byte(off + i);
        }
    }
    fn write_bytes(&self, off: usize, data: &[u8]) {
        assert!(
            off <= self.size && data.len() <= self.size - off,
            "write_bytes at {off}"
        );
        let mut i = 0;
        while i < data.len() {
            let at = off + i;
            if at.is_multiple_of(4) && data.len() - i >= 4 {
                let v = u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
                self.words[at / 4].store(v, Ordering::Relaxed);
                i += 4;
            } else {
                self.set_byte(at, data[i]);
                i += 1;
            }
        }
    }
    fn fence(&self) {
        fence(Ordering::SeqCst)
    }
    fn read_fence(&self) {
        fence(Ordering::Acquire)
    }
    fn write_fence(&self) {
        fence(Ordering::Release)
    }
}

/// Largest ring entry supported (bytes); blkif's is 112.
pub const MAX_ENTRY_SIZE: usize = 256;

/// The types a ring carries (`DEFINE_RING_TYPES(name, req, rsp)`).
pub trait RingProtocol {
    /// The request as it is copied out of a slot (may be the raw slot bytes when the
    /// request is itself a union, as blkif's is).
    type Req: Wire;
    /// The response.
    type Rsp: Wire;
    /// `sizeof(union name_sring_entry)`: the slot size, at most [`MAX_ENTRY_SIZE`].
    const ENTRY_SIZE: usize;
}

/// Why a ring refused to go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The shared area cannot hold a header and one entry.
    TooSmall,
    /// The frontend's `req_prod` claims requests that cannot exist
    /// (`RING_REQUEST_PROD_OVERFLOW`, or `req_prod` behind `req_cons`). The ring is broken.
    RequestOverflow {
        req_prod: RingIdx,
        req_cons: RingIdx,
        rsp_prod_pvt: RingIdx,
    },
    /// The backend's `rsp_prod` claims more responses than requests are outstanding
    /// (`RING_RESPONSE_PROD_OVERFLOW` and stricter). The ring is broken.
    ResponseOverflow {
        rsp_prod: RingIdx,
        rsp_cons: RingIdx,
        req_prod_pvt: RingIdx,
    },
    /// No free request slot (`RING_FULL`).
    Full,
    /// A backend tried to push a response with no consumed request left to answer.
    NoRequestToAnswer,
}

const fn check_protocol<T: RingProtocol>() {
    assert!(T::ENTRY_SIZE > 0 && T::ENTRY_SIZE <= MAX_ENTRY_SIZE);
    assert!(size_of::<T::Req>() <= T::ENTRY_SIZE);
    assert!(size_of::<T::Rsp>() <= T::ENTRY_SIZE);
}

fn nr_ents<P: SharedPage, T: RingProtocol>(page: &P) -> Result<u32, RingError> {
    const { check_protocol::<T>() };
    match ring_size(page.size(), T::ENTRY_SIZE) {
        0 => Err(RingError::TooSmall),
        n => Ok(n),
    }
}

fn read_entry<P: SharedPage, E: Wire>(page: &P, idx: RingIdx, size: u32, entry: usize) -> E {
    let mut buf = [0u8; MAX_ENTRY_SIZE];
    page.read_bytes(entry_offset(idx, size, entry), &mut buf[..size_of::<E>()]);
    E::get(&buf)
}

fn write_entry<P: SharedPage, E: Wire>(page: &P, idx: RingIdx, size: u32, entry: usize, v: &E) {
    let mut buf = [0u8; MAX_ENTRY_SIZE];
    v.put(&mut buf);
    page.write_bytes(entry_offset(idx, size, entry), &buf[..size_of::<E>()]);
}

/// `SHARED_RING_INIT`: producers 0, event marks 1, `pvt` and padding zero.
pub fn shared_ring_init<P: SharedPage>(page: &P) {
    page.write_u32(SRING_REQ_PROD, 0);
    page.write_u32(SRING_RSP_PROD, 0);
    page.write_u32(SRING_REQ_EVENT, 1);
    page.write_u32(SRING_RSP_EVENT, 1);
    page.write_bytes(SRING_PVT, &[0; SRING_HEADER_SIZE - SRING_PVT]);
}

/// The event-index rule of `RING_PUSH_*_AND_CHECK_NOTIFY`: notify when `event` is in
/// `(old, new]` (modulo 2^32).
pub fn need_notify(old: RingIdx, new: RingIdx, event: RingIdx) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// The frontend's end of a ring (`struct name_front_ring`).
#[derive(Debug)]
pub struct FrontRing<P, T> {
    page: P,
    nr_ents: u32,
    req_prod_pvt: RingIdx,
    rsp_cons: RingIdx,
    /// `rsp_prod` as read by the last poll: responses up to here may be taken.
    rsp_avail: RingIdx,
    broken: Option<RingError>,
    _t: PhantomData<T>,
}

impl<P: SharedPage, T: RingProtocol> FrontRing<P, T> {
    /// `XEN_FRONT_RING_INIT`: initialise the shared ring and attach at index 0.
    pub fn init(page: P) -> Result<Self, RingError> {
        let r = Self::attach(page, 0)?;
        shared_ring_init(&r.page);
        Ok(r)
    }

    /// `FRONT_RING_ATTACH`: attach to an already initialised shared ring at index `idx`.
    pub fn attach(page: P, idx: RingIdx) -> Result<Self, RingError> {
        let nr_ents = nr_ents::<P, T>(&page)?;
        Ok(Self {
            page,
            nr_ents,
            req_prod_pvt: idx,
            rsp_cons: idx,
            rsp_avail: idx,
            broken: None,
            _t: PhantomData,
        })
    }

    /// The shared memory.
    pub fn page(&self) -> &P {
        &self.page
    }
    /// `RING_SIZE`.
    pub fn size(&self) -> u32 {
        self.nr_ents
    }
    /// Private request producer index.
    pub fn req_prod_pvt(&self) -> RingIdx {
        self.req_prod_pvt
    }
    /// Private response consumer index.
    pub fn rsp_cons(&self) -> RingIdx {
        self.rsp_cons
    }
    /// Why the ring is broken, if it is. A broken ring refuses everything.
    pub fn broken(&self) -> Option<RingError> {
        self.broken
    }
    /// `RING_FREE_REQUESTS`.
    pub fn free_requests(&self) -> u32 {
        self.nr_ents - self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }
    /// `RING_FULL`.
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    fn ok(&self) -> Result<(), RingError> {
        self.broken.map_or(Ok(()), Err)
    }

    /// Copy `req` into the next free slot (`RING_GET_REQUEST` + `req_prod_pvt++`).
    /// Not visible to the backend until a push.
    pub fn put_request(&mut self, req: &T::Req) -> Result<(), RingError> {
        self.ok()?;
        if self.is_full() {
            return Err(RingError::Full);
        }
        write_entry(
            &self.page,
            self.req_prod_pvt,
            self.nr_ents,
            T::ENTRY_SIZE,
            req,
        );
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// `RING_PUSH_REQUESTS`.
    pub fn push_requests(&mut self) {
        self.page.write_fence();
        self.page.write_u32(SRING_REQ_PROD, self.req_prod_pvt);
    }

    /// `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`: publish, then tell whether the backend
    /// asked to be notified (its `req_event` is among the newly published indices).
    pub fn push_requests_and_check_notify(&mut self) -> bool {
        let old = self.page.read_u32(SRING_REQ_PROD);
        let new = self.req_prod_pvt;
        self.page.write_fence();
        self.page.write_u32(SRING_REQ_PROD, new);
        self.page.fence();
        need_notify(old, new, self.page.read_u32(SRING_REQ_EVENT))
    }

    /// Read `rsp_prod` once, check it, and return how many responses may now be taken
    /// (`XEN_RING_NR_UNCONSUMED_RESPONSES` with `RING_RESPONSE_PROD_OVERFLOW`). A
    /// backend claiming more responses than requests are outstanding breaks the ring.
    pub fn poll_responses(&mut self) -> Result<u32, RingError> {
        self.ok()?;
        let rsp_prod = self.page.read_u32(SRING_RSP_PROD);
        let n = rsp_prod.wrapping_sub(self.rsp_cons);
        if n > self.req_prod_pvt.wrapping_sub(self.rsp_cons) || n > self.nr_ents {
            let e = RingError::ResponseOverflow {
                rsp_prod,
                rsp_cons: self.rsp_cons,
                req_prod_pvt: self.req_prod_pvt,
            };
            self.broken = Some(e);
            return Err(e);
        }
        self.page.read_fence();
        self.rsp_avail = rsp_prod;
        Ok(n)
    }

    /// Copy out the next response of the last poll (`RING_COPY_RESPONSE`,
    /// `rsp_cons++`), or `None` when that batch is used up.
    pub fn take_response(&mut self) -> Option<T::Rsp> {
        if self.broken.is_some() || self.rsp_cons == self.rsp_avail {
            return None;
        }
        let r = read_entry(&self.page, self.rsp_cons, self.nr_ents, T::ENTRY_SIZE);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Some(r)
    }

    /// Poll and hand every available response to `f`; returns how many.
    pub fn consume_responses(&mut self, mut f: impl FnMut(T::Rsp)) -> Result<u32, RingError> {
        let n = self.poll_responses()?;
        while let Some(r) = self.take_response() {
            f(r);
        }
        Ok(n)
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: true if responses are waiting; otherwise set
    /// `rsp_event = rsp_cons + 1` (ask to be notified of the next one) and check again.
    pub fn final_check_for_responses(&mut self) -> Result<bool, RingError> {
        if self.poll_responses()? > 0 {
            return Ok(true);
        }
        self.page
            .write_u32(SRING_RSP_EVENT, self.rsp_cons.wrapping_add(1));
        self.page.fence();
        Ok(self.poll_responses()? > 0)
    }
}

/// The backend's end of a ring (`struct name_back_ring`).
#[derive(Debug)]
pub struct BackRing<P, T> {
    page: P,
    nr_ents: u32,
    rsp_prod_pvt: RingIdx,
    req_cons: RingIdx,
    /// `req_prod` as read by the last poll: requests up to here may be taken.
    req_avail: RingIdx,
    broken: Option<RingError>,
    _t: PhantomData<T>,
}

impl<P: SharedPage, T: RingProtocol> BackRing<P, T> {
    /// `BACK_RING_INIT`: attach at index 0 (the frontend initialised the shared ring).
    pub fn init(page: P) -> Result<Self, RingError> {
        Self::attach(page, 0)
    }

    /// `BACK_RING_ATTACH` at index `idx`.
    pub fn attach(page: P, idx: RingIdx) -> Result<Self, RingError> {
        let nr_ents = nr_ents::<P, T>(&page)?;
        Ok(Self {
            page,
            nr_ents,
            rsp_prod_pvt: idx,
            req_cons: idx,
            req_avail: idx,
            broken: None,
            _t: PhantomData,
        })
    }

    /// The shared memory.
    pub fn page(&self) -> &P {
        &self.page
    }
    /// `RING_SIZE`.
    pub fn size(&self) -> u32 {
        self.nr_ents
    }
    /// Private response producer index.
    pub fn rsp_prod_pvt(&self) -> RingIdx {
        self.rsp_prod_pvt
    }
    /// Private request consumer index.
    pub fn req_cons(&self) -> RingIdx {
        self.req_cons
    }
    /// Why the ring is broken, if it is. A broken ring refuses everything.
    pub fn broken(&self) -> Option<RingError> {
        self.broken
    }

    fn ok(&self) -> Result<(), RingError> {
        self.broken.map_or(Ok(()), Err)
    }

    /// Read `req_prod` once, check it, and return how many requests may now be taken
    /// (`XEN_RING_NR_UNCONSUMED_REQUESTS`). A `req_prod` more than the ring size past
    /// `rsp_prod_pvt` (`RING_REQUEST_PROD_OVERFLOW`) or behind `req_cons` breaks the ring.
    pub fn poll_requests(&mut self) -> Result<u32, RingError> {
        self.ok()?;
        let req_prod = self.page.read_u32(SRING_REQ_PROD);
        let pending = req_prod.wrapping_sub(self.req_cons);
        if req_prod.wrapping_sub(self.rsp_prod_pvt) > self.nr_ents || pending > self.nr_ents {
            let e = RingError::RequestOverflow {
                req_prod,
                req_cons: self.req_cons,
                rsp_prod_pvt: self.rsp_prod_pvt,
            };
            self.broken = Some(e);
            return Err(e);
        }
        self.page.read_fence();
        self.req_avail = req_prod;
        let room = self.nr_ents - self.req_cons.wrapping_sub(self.rsp_prod_pvt);
        Ok(pending.min(room))
    }

    /// `RING_HAS_UNCONSUMED_REQUESTS`, as a count: [`poll_requests`](Self::poll_requests).
    pub fn unconsumed_requests(&mut self) -> Result<u32, RingError> {
        self.poll_requests()
    }

    /// Copy out the next request of the last poll (`RING_COPY_REQUEST`, `req_cons++`),
    /// or `None` when that batch is used up or no response slot would be left for it
    /// (`RING_REQUEST_CONS_OVERFLOW`).
    pub fn take_request(&mut self) -> Option<T::Req> {
        if self.broken.is_some()
            || self.req_cons == self.req_avail
            || self.req_cons.wrapping_sub(self.rsp_prod_pvt) >= self.nr_ents
        {
            return None;
        }
        let r = read_entry(&self.page, self.req_cons, self.nr_ents, T::ENTRY_SIZE);
        self.req_cons = self.req_cons.wrapping_add(1);
        Some(r)
    }

    /// Copy `rsp` into the next response slot (`rsp_prod_pvt++`); there must be a
    /// consumed request it answers. Not visible to the frontend until a push.
    pub fn put_response(&mut self, rsp: &T::Rsp) -> Result<(), RingError> {
        self.ok()?;
        if self.rsp_prod_pvt == self.req_cons {
            return Err(RingError::NoRequestToAnswer);
        }
        write_entry(
            &self.page,
            self.rsp_prod_pvt,
            self.nr_ents,
            T::ENTRY_SIZE,
            rsp,
        );
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// `RING_PUSH_RESPONSES`.
    pub fn push_responses(&mut self) {
        self.page.write_fence();
        self.page.write_u32(SRING_RSP_PROD, self.rsp_prod_pvt);
    }

    /// `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`: publish, then tell whether the frontend
    /// asked to be notified (its `rsp_event` is among the newly published indices).
    pub fn push_responses_and_check_notify(&mut self) -> bool {
        let old = self.page.read_u32(SRING_RSP_PROD);
        let new = self.rsp_prod_pvt;
        self.page.write_fence();
        self.page.write_u32(SRING_RSP_PROD, new);
        self.page.fence();
        need_notify(old, new, self.page.read_u32(SRING_RSP_EVENT))
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: true if requests are waiting; otherwise set
    /// `req_event = req_cons + 1` (ask to be notified of the next one) and check again.
    pub fn final_check_for_requests(&mut self) -> Result<bool, RingError> {
        if self.poll_requests()? > 0 {
            return Ok(true);
        }
        self.page
            .write_u32(SRING_REQ_EVENT, self.req_cons.wrapping_add(1));
        self.page.fence();
        Ok(self.poll_requests()? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy protocol: 8-byte requests, 4-byte responses in 8-byte slots.
    #[derive(Debug)]
    struct Toy;
    impl RingProtocol for Toy {
        type Req = u64;
        type Rsp = u32;
        const ENTRY_SIZE: usize = 8;
    }

    #[test]
    fn sizes() {
        let p = HeapPage::page();
        let f = FrontRing::<_, Toy>::init(&p).unwrap();
        assert_eq!(f.size(), 256, "(4096-64)/8 = 504 -> 256");
        assert_eq!(p.read_u32(SRING_REQ_EVENT), 1);
        let small = HeapPage::new(64);
        assert_eq!(
            FrontRing::<_, Toy>::init(&small).unwrap_err(),
            RingError::TooSmall
        );
    }

    #[test]
    fn round_trip_and_notify() {
        let p = HeapPage::page();
        let mut f = FrontRing::<_, Toy>::init(&p).unwrap();
        let mut b = BackRing::<_, Toy>::init(&p).unwrap();
        f.put_request(&7).unwrap();
        f.put_request(&8).unwrap();
        assert!(
            f.push_requests_and_check_notify(),
            "req_event = 1 is in (0, 2]"
        );
        assert_eq!(b.poll_requests(), Ok(2));
        assert_eq!(b.take_request(), Some(7));
        assert_eq!(b.take_request(), Some(8));
        assert_eq!(b.take_request(), None);
        assert_eq!(b.final_check_for_requests(), Ok(false));
        assert_eq!(p.read_u32(SRING_REQ_EVENT), 3);
        b.put_response(&70).unwrap();
        b.put_response(&80).unwrap();
        assert_eq!(b.put_response(&90), Err(RingError::NoRequestToAnswer));
        assert!(b.push_responses_and_check_notify());
        let mut got = Vec::new();
        assert_eq!(f.consume_responses(|r| got.push(r)), Ok(2));
        assert_eq!(got, [70, 80]);
        // No new rsp_event was set: the next response does not notify.
        f.put_request(&9).unwrap();
        assert!(
            f.push_requests_and_check_notify(),
            "req_event = 3 is in (2, 3]"
        );
        assert_eq!(b.poll_requests(), Ok(1));
        assert_eq!(b.take_request(), Some(9));
        b.put_response(&90).unwrap();
        assert!(!b.push_responses_and_check_notify(), "rsp_event still 1");
        assert_eq!(f.final_check_for_responses(), Ok(true));
        assert_eq!(f.take_response(), Some(90));
        assert_eq!(f.final_check_for_responses(), Ok(false));
        assert_eq!(p.read_u32(SRING_RSP_EVENT), 4);
    }

    #[test]
    fn full_ring() {
        let p = HeapPage::page();
        let mut f = FrontRing::<_, Toy>::init(&p).unwrap();
        for i in 0..256 {
            f.put_request(&i).unwrap();
        }
        assert!(f.is_full());
        assert_eq!(f.put_request(&0), Err(RingError::Full));
    }

    #[test]
    fn hostile_indices_break_the_ring() {
        let p = HeapPage::page();
        let mut f = FrontRing::<_, Toy>::init(&p).unwrap();
        let mut b = BackRing::<_, Toy>::init(&p).unwrap();
        p.write_u32(SRING_REQ_PROD, 257);
        assert!(matches!(
            b.poll_requests(),
            Err(RingError::RequestOverflow { req_prod: 257, .. })
        ));
        assert_eq!(b.take_request(), None);
        assert!(b.broken().is_some());
        p.write_u32(SRING_RSP_PROD, 1);
        assert!(matches!(
            f.poll_responses(),
            Err(RingError::ResponseOverflow { rsp_prod: 1, .. })
        ));
        assert!(f.put_request(&1).is_err());
    }

    #[test]
    fn req_prod_moved_backwards_is_refused() {
        let p = HeapPage::page();
        let mut f = FrontRing::<_, Toy>::init(&p).unwrap();
        let mut b = BackRing::<_, Toy>::init(&p).unwrap();
        for i in 0..4 {
            f.put_request(&i).unwrap();
        }
        f.push_requests();
        assert_eq!(b.poll_requests(), Ok(4));
        while b.take_request().is_some() {}
        p.write_u32(SRING_REQ_PROD, 2);
        assert!(b.poll_requests().is_err());
    }

    #[test]
    fn notify_rule() {
        assert!(need_notify(0, 1, 1));
        assert!(!need_notify(1, 2, 1));
        assert!(need_notify(u32::MAX, 1, 0), "wraps");
        assert!(!need_notify(5, 5, 5), "nothing new");
    }
}
