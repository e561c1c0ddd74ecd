//! Property tests of the generic shared ring: honest peers exchange random batches
//! without loss, duplication or missed notifications; a hostile peer writing arbitrary
//! indices and bytes only ever gets a reported error.
// Helpers outside #[test] fns unwrap too: a test that unwraps fails loudly.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use pv_drivers::ring::{BackRing, FrontRing, HeapPage, RingError, RingProtocol, SharedPage};
use xen_abi::io::ring::{SRING_REQ_EVENT, SRING_REQ_PROD, SRING_RSP_EVENT, SRING_RSP_PROD};

/// 8-byte requests and responses in 16-byte slots (responses overwrite requests).
#[derive(Debug)]
struct P16;
impl RingProtocol for P16 {
    type Req = u64;
    type Rsp = u64;
    const ENTRY_SIZE: usize = 16;
}

fn rsp_for(req: u64) -> u64 {
    req.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xabcd
}

/// `event` is among the indices `(old, new]` just published: ring.h's rule, counted.
fn expect_notify(old: u32, new: u32, event: u32) -> bool {
    (1..=new.wrapping_sub(old)).any(|k| old.wrapping_add(k) == event)
}

#[derive(Clone, Debug)]
enum Act {
    FrontPut(u32),
    FrontPush,
    FrontTake(u32),
    FrontFinal,
    BackTake(u32),
    BackRespond(u32),
    BackPush,
    BackFinal,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        (0u32..12).prop_map(Act::FrontPut),
        Just(Act::FrontPush),
        (0u32..12).prop_map(Act::FrontTake),
        Just(Act::FrontFinal),
        (0u32..12).prop_map(Act::BackTake),
        (0u32..12).prop_map(Act::BackRespond),
        Just(Act::BackPush),
        Just(Act::BackFinal),
    ]
}

/// Both ends plus the model of what each has seen.
struct Pair<'a> {
    f: FrontRing<&'a HeapPage, P16>,
    b: BackRing<&'a HeapPage, P16>,
    page: &'a HeapPage,
    next_req: u64,
    back_seen: u64,
    to_answer: Vec<u64>,
    answered: u64,
    front_seen: u64,
    back_asleep: bool,
    front_asleep: bool,
}

impl<'a> Pair<'a> {
    /// Both ends attached at `start` (to cover index wrap-around).
    fn new(page: &'a HeapPage, start: u32) -> Self {
        page.write_u32(SRING_REQ_PROD, start);
        page.write_u32(SRING_RSP_PROD, start);
        page.write_u32(SRING_REQ_EVENT, start.wrapping_add(1));
        page.write_u32(SRING_RSP_EVENT, start.wrapping_add(1));
        Self {
            f: FrontRing::attach(page, start).unwrap(),
            b: BackRing::attach(page, start).unwrap(),
            page,
            next_req: 0,
            back_seen: 0,
            to_answer: Vec::new(),
            answered: 0,
            front_seen: 0,
            back_asleep: false,
            front_asleep: false,
        }
    }

    fn step(&mut self, a: &Act) {
        let size = self.f.size();
        match *a {
            Act::FrontPut(n) => {
                for _ in 0..n {
                    let free = self.f.free_requests();
                    let r = self.f.put_request(&self.next_req);
                    if free == 0 {
                        assert_eq!(r, Err(RingError::Full));
                    } else {
                        assert_eq!(r, Ok(()));
                        self.next_req += 1;
                    }
                }
            }
            Act::FrontPush => {
                let old = self.page.read_u32(SRING_REQ_PROD);
                let event = self.page.read_u32(SRING_REQ_EVENT);
                let new = self.f.req_prod_pvt();
                let notify = self.f.push_requests_and_check_notify();
                assert_eq!(
                    notify,
                    expect_notify(old, new, event),
                    "{old} {new} {event}"
                );
                if self.back_asleep && new != old {
                    assert!(notify, "a sleeping backend must be woken");
                }
                if notify {
                    self.back_asleep = false;
                }
            }
            Act::BackTake(n) => {
                let avail = self.b.poll_requests().unwrap();
                assert!(avail <= size);
                for _ in 0..n {
                    match self.b.take_request() {
                        Some(r) => {
                            assert_eq!(r, self.back_seen, "requests in order, none lost");
                            self.back_seen += 1;
                            self.to_answer.push(r);
                        }
                        None => break,
                    }
                }
            }
            Act::BackRespond(n) => {
                for _ in 0..n {
                    let r = self.b.put_response(&rsp_for(self.answered));
                    if self.to_answer.is_empty() {
                        assert_eq!(r, Err(RingError::NoRequestToAnswer));
                    } else {
                        assert_eq!(r, Ok(()));
                        let req = self.to_answer.remove(0);
                        assert_eq!(req, self.answered);
                        self.answered += 1;
                    }
                }
            }
            Act::BackPush => {
                let old = self.page.read_u32(SRING_RSP_PROD);
                let event = self.page.read_u32(SRING_RSP_EVENT);
                let new = self.b.rsp_prod_pvt();
                let notify = self.b.push_responses_and_check_notify();
                assert_eq!(notify, expect_notify(old, new, event));
                if self.front_asleep && new != old {
                    assert!(notify, "a sleeping frontend must be woken");
                }
                if notify {
                    self.front_asleep = false;
                }
            }
            Act::FrontTake(n) => {
                self.f.poll_responses().unwrap();
                for _ in 0..n {
                    match self.f.take_response() {
                        Some(r) => {
                            assert_eq!(r, rsp_for(self.front_seen), "responses in order");
                            self.front_seen += 1;
                        }
                        None => break,
                    }
                }
            }
            Act::BackFinal => {
                let work = self.b.final_check_for_requests().unwrap();
                let published = self.page.read_u32(SRING_REQ_PROD);
                assert_eq!(work, published != self.b.req_cons());
                if !work {
                    assert_eq!(
                        self.page.read_u32(SRING_REQ_EVENT),
                        self.b.req_cons().wrapping_add(1)
                    );
                    self.back_asleep = true;
                }
            }
            Act::FrontFinal => {
                let work = self.f.final_check_for_responses().unwrap();
                let published = self.page.read_u32(SRING_RSP_PROD);
                assert_eq!(work, published != self.f.rsp_cons());
                if !work {
                    self.front_asleep = true;
                }
            }
        }
        // Private indices stay within a ring of each other.
        assert!(self.f.req_prod_pvt().wrapping_sub(self.f.rsp_cons()) <= size);
        assert!(self.b.req_cons().wrapping_sub(self.b.rsp_prod_pvt()) <= size);
        assert!(self.front_seen <= self.answered);
        assert!(self.answered <= self.back_seen);
        assert!(self.back_seen <= self.next_req);
    }

    /// Push and drain everything: every request gets exactly one response.
    fn drain(&mut self) {
        self.step(&Act::FrontPush);
        loop {
            self.step(&Act::BackTake(u32::MAX));
            let n = self.to_answer.len() as u32;
            self.step(&Act::BackRespond(n));
            self.step(&Act::BackPush);
            self.step(&Act::FrontTake(u32::MAX));
            if self.front_seen == self.next_req {
                break;
            }
        }
        assert_eq!(self.back_seen, self.next_req);
        assert_eq!(self.answered, self.next_req);
        assert_eq!(self.f.free_requests(), self.f.size());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn honest_exchange(
        slots in prop_oneof![Just(1usize), Just(2), Just(8), Just(11), Just(252)],
        start in prop_oneof![Just(0u32), Just(u32::MAX - 5), any::<u32>()],
        acts in proptest::collection::vec(act(), 0..200),
    ) {
        let page = HeapPage::new(64 + slots * 16);
        let mut p = Pair::new(&page, start);
        for a in &acts {
            p.step(a);
        }
        p.drain();
    }
}

#[derive(Clone, Debug)]
enum Hostile {
    /// The peer writes a header word.
    Index(usize, u32),
    /// The peer writes arbitrary bytes anywhere.
    Bytes(usize, Vec<u8>),
    /// The honest side does something.
    Own(Act),
}

fn hostile(page_size: usize) -> impl Strategy<Value = Hostile> {
    prop_oneof![
        2 => ((0usize..4).prop_map(|w| w * 4), prop_oneof![any::<u32>(), 0u32..40])
            .prop_map(|(o, v)| Hostile::Index(o, v)),
        1 => (0..page_size, proptest::collection::vec(any::<u8>(), 0..32))
            .prop_map(move |(o, b)| {
                let o = o.min(page_size - b.len());
                Hostile::Bytes(o, b)
            }),
        6 => act().prop_map(Hostile::Own),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A hostile frontend: the backend never panics, never reads outside the ring
    /// (HeapPage panics on that), never takes more than a ring of unanswered requests,
    /// and stays broken once it reported a bad index.
    #[test]
    fn hostile_frontend(
        slots in prop_oneof![Just(1usize), Just(8), Just(252)],
        ops in proptest::collection::vec(hostile(64 + 252 * 16), 0..300),
    ) {
        let page = HeapPage::new(64 + slots * 16);
        let size_bytes = page.size();
        let mut b = BackRing::<_, P16>::init(&page).unwrap();
        let size = b.size();
        let mut unanswered = 0u32;
        for op in &ops {
            match op {
                Hostile::Index(o, v) => page.write_u32(*o, *v),
                Hostile::Bytes(o, bytes) => {
                    let o = (*o).min(size_bytes - bytes.len());
                    page.write_bytes(o, bytes);
                }
                Hostile::Own(Act::BackTake(n)) => {
                    let was_broken = b.broken().is_some();
                    let req_prod = page.read_u32(SRING_REQ_PROD);
                    // ring.h's RING_REQUEST_PROD_OVERFLOW, and req_prod behind req_cons.
                    let bogus = req_prod.wrapping_sub(b.rsp_prod_pvt()) > size
                        || req_prod.wrapping_sub(b.req_cons()) > size;
                    match b.poll_requests() {
                        Ok(avail) => {
                            prop_assert!(!was_broken && !bogus);
                            prop_assert!(avail <= size - unanswered);
                            prop_assert_eq!(
                                avail,
                                req_prod.wrapping_sub(b.req_cons()).min(size - unanswered)
                            );
                        }
                        Err(e) => {
                            prop_assert!(was_broken || bogus);
                            prop_assert_eq!(Some(e), b.broken());
                        }
                    }
                    for _ in 0..*n {
                        if b.take_request().is_none() {
                            break;
                        }
                        unanswered += 1;
                    }
                    if b.broken().is_none() {
                        // Only published requests were taken: req_cons did not pass
                        // the req_prod the backend read.
                        let req_prod = page.read_u32(SRING_REQ_PROD);
                        prop_assert!(req_prod.wrapping_sub(b.req_cons()) <= size);
                    }
                }
                Hostile::Own(Act::BackRespond(n)) => {
                    for _ in 0..*n {
                        if b.put_response(&1).is_ok() {
                            unanswered -= 1;
                        }
                    }
                }
                Hostile::Own(Act::BackPush) => {
                    b.push_responses_and_check_notify();
                }
                Hostile::Own(Act::BackFinal) => {
                    let _ = b.final_check_for_requests();
                }
                Hostile::Own(_) => {}
            }
            prop_assert!(unanswered <= size);
            prop_assert_eq!(b.req_cons().wrapping_sub(b.rsp_prod_pvt()), unanswered);
            if b.broken().is_some() {
                prop_assert!(b.take_request().is_none());
                prop_assert!(b.poll_requests().is_err());
            }
        }
    }

    /// A hostile backend: the frontend never panics, never consumes more responses than
    /// it has requests outstanding, and stays broken once it reported a bad index.
    #[test]
    fn hostile_backend(
        slots in prop_oneof![Just(1usize), Just(8), Just(252)],
        ops in proptest::collection::vec(hostile(64 + 252 * 16), 0..300),
    ) {
        let page = HeapPage::new(64 + slots * 16);
        let size_bytes = page.size();
        let mut f = FrontRing::<_, P16>::init(&page).unwrap();
        let size = f.size();
        for op in &ops {
            match op {
                Hostile::Index(o, v) => page.write_u32(*o, *v),
                Hostile::Bytes(o, bytes) => {
                    let o = (*o).min(size_bytes - bytes.len());
                    page.write_bytes(o, bytes);
                }
                Hostile::Own(Act::FrontPut(n)) => {
                    for _ in 0..*n {
                        let _ = f.put_request(&7);
                    }
                }
                Hostile::Own(Act::FrontPush) => {
                    f.push_requests_and_check_notify();
                }
                Hostile::Own(Act::FrontTake(n)) => {
                    if let Err(e) = f.poll_responses() {
                        prop_assert_eq!(Some(e), f.broken());
                    }
                    for _ in 0..*n {
                        if f.take_response().is_none() {
                            break;
                        }
                    }
                    if f.broken().is_none() {
                        // Only published responses were taken.
                        let rsp_prod = page.read_u32(SRING_RSP_PROD);
                        prop_assert!(rsp_prod.wrapping_sub(f.rsp_cons()) <= size);
                    }
                }
                Hostile::Own(Act::FrontFinal) => {
                    let _ = f.final_check_for_responses();
                }
                Hostile::Own(_) => {}
            }
            let outstanding = f.req_prod_pvt().wrapping_sub(f.rsp_cons());
            prop_assert!(outstanding <= size);
            if f.broken().is_some() {
                prop_assert!(f.take_response().is_none());
                prop_assert!(f.put_request(&1).is_err());
            }
        }
    }
}

/// Two threads, one per end, with event channels modelled as flags: the event-index
/// protocol loses no wake-up under real concurrency.
#[test]
fn threaded_exchange_loses_no_wakeup() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    const N: u64 = 20_000;
    let page = HeapPage::new(64 + 8 * 16);
    let mut f = FrontRing::<_, P16>::init(&page).unwrap();
    let mut b = BackRing::<_, P16>::init(&page).unwrap();
    let to_back = AtomicBool::new(false);
    let to_front = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(60);
    let wait = |flag: &AtomicBool| {
        while !flag.swap(false, Ordering::AcqRel) {
            assert!(Instant::now() < deadline, "lost wake-up");
            std::thread::yield_now();
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            // Backend: serve until N answered, sleeping on the event when idle.
            let mut answered = 0u64;
            while answered < N {
                b.poll_requests().unwrap();
                while let Some(r) = b.take_request() {
                    assert_eq!(r, answered);
                    b.put_response(&rsp_for(r)).unwrap();
                    answered += 1;
                }
                if b.push_responses_and_check_notify() {
                    to_front.store(true, Ordering::Release);
                }
                if answered < N && !b.final_check_for_requests().unwrap() {
                    wait(&to_back);
                }
            }
        });
        // Frontend: keep the ring full, sleep when it is and nothing came back.
        let mut sent = 0u64;
        let mut got = 0u64;
        while got < N {
            while sent < N && !f.is_full() {
                f.put_request(&sent).unwrap();
                sent += 1;
            }
            if f.push_requests_and_check_notify() {
                to_back.store(true, Ordering::Release);
            }
            f.poll_responses().unwrap();
            while let Some(r) = f.take_response() {
                assert_eq!(r, rsp_for(got));
                got += 1;
            }
            if got < N && (f.is_full() || sent == N) && !f.final_check_for_responses().unwrap() {
                wait(&to_front);
            }
        }
    });
}
