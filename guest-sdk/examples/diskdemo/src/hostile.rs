//! `hostile=SECS`: a blkfront that lies. It connects to `xvda` as blkfront does (ring,
//! event channel, XenBus states), then until its `data/hostile-stop` node appears (or
//! `SECS` seconds at most) puts volleys of malformed
//! requests on the ring — grant references it never granted, a read into a page it
//! granted read-only, sectors past the end of the disk (and a start sector that
//! overflows), `nr_segments` 0 and above 11, `first_sect > last_sect`, `last_sect > 7`,
//! unknown operations, a discard the backend does not offer, indirect requests with too
//! many segments, none, an ungranted segment page or a bad inner operation — and checks
//! that each gets exactly one response with the status blkback (and Linux's
//! xen-blkback) gives it: `BLKIF_RSP_ERROR` for a malformed request,
//! `BLKIF_RSP_EOPNOTSUPP` for an operation it does not know or offer. After each volley
//! a valid write, flush and read of one page must succeed and read back what was
//! written. Prints `blkhostile: PASS (N rounds, M bad requests refused)` or
//! `blkhostile: FAIL: <why>`, then `blkhostile: done`.

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use guest_sdk::println;
use guest_sdk::xenbus::Xenbus;
use pv_drivers::blkfront::{
    BlkfrontEnv, STATE_CLOSED, STATE_CLOSING, STATE_CONNECTED, STATE_INITIALISED, STATE_INIT_WAIT,
};
use pv_drivers::blkif::{BlkFrontRing, Request};
use pv_drivers::ring::SharedPage;
use xen_abi::grant_table::GrantRef;
use xen_abi::io::blkif::{
    BlkifRequest, BlkifRequestDiscard, BlkifRequestIndirect, BlkifRequestSegment, BlkifResponse,
    BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ,
    BLKIF_OP_RESERVED_1, BLKIF_OP_WRITE, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY,
    BLKIF_SEGS_PER_INDIRECT_FRAME,
};
use xen_abi::xen::DomId;

use pv_drivers::sdk::{Page, SdkEnv};

const NODE: &str = "device/vbd/51712";
const HANDLE: u16 = 51712;
const SEC: u64 = 1_000_000_000;

/// Our side of the connection.
struct Conn {
    env: SdkEnv,
    backend: String,
    ring: BlkFrontRing<Page>,
    port: u32,
    /// Disk size in 512-byte sectors.
    sectors: u64,
    /// The backend's `feature-max-indirect-segments` (0: none).
    max_indirect: u32,
    /// A page granted read-write, for the valid I/O.
    data: Page,
    data_ref: GrantRef,
    /// A page granted read-only (a read into it must fail).
    ro_ref: GrantRef,
    /// A page of indirect segments, granted read-only.
    ind: Page,
    ind_ref: GrantRef,
    grants: Vec<GrantRef>,
}

fn seg(gref: GrantRef, first: u8, last: u8) -> BlkifRequestSegment {
    BlkifRequestSegment {
        gref,
        first_sect: first,
        last_sect: last,
        _pad: 0,
    }
}

fn rw(op: u8, id: u64, sector: u64, segs: &[BlkifRequestSegment], nr: u8) -> Request {
    let mut r = BlkifRequest {
        operation: op,
        nr_segments: nr,
        handle: HANDLE,
        id,
        sector_number: sector,
        ..Default::default()
    };
    for (d, s) in r.seg.iter_mut().zip(segs) {
        *d = *s;
    }
    Request::Rw(r)
}

fn indirect(id: u64, op: u8, nr: u16, sector: u64, gref: GrantRef) -> Request {
    let mut grefs = [0; 8];
    grefs[0] = gref;
    Request::Indirect(BlkifRequestIndirect {
        operation: BLKIF_OP_INDIRECT,
        indirect_op: op,
        nr_segments: nr,
        id,
        sector_number: sector,
        handle: HANDLE,
        indirect_grefs: grefs,
        ..Default::default()
    })
}

fn u64_of(v: Option<String>) -> Option<u64> {
    v?.trim_end_matches('\0').trim().parse().ok()
}

fn connect(env: SdkEnv) -> Result<Conn, String> {
    let rd = |env: &SdkEnv, p: &str| env.xs_read(p).map_err(|e| format!("read {p}: {e:?}"));
    let backend = rd(&env, &format!("{NODE}/backend"))?
        .ok_or("no xvda")?
        .trim_end_matches('\0')
        .to_string();
    let beid = u64_of(rd(&env, &format!("{NODE}/backend-id"))?).ok_or("no backend-id")?;
    let beid = DomId::try_from(beid).map_err(|_| "bad backend-id")?;
    env.wait_state(&backend, &|s| s >= STATE_INIT_WAIT, 10 * SEC)
        .map_err(|e| format!("backend InitWait: {e:?}"))?;
    let page = env.alloc_page().map_err(|e| format!("page: {e:?}"))?;
    let ring = BlkFrontRing::init(page).map_err(|e| format!("ring: {e:?}"))?;
    let mut grants = Vec::new();
    let ring_ref = env
        .grant(ring.page(), beid, false)
        .map_err(|e| format!("grant: {e:?}"))?;
    grants.push(ring_ref);
    let port = env
        .alloc_evtchn(beid)
        .map_err(|e| format!("evtchn: {e:?}"))?;
    env.xs_write_all(&[
        (format!("{NODE}/ring-ref"), ring_ref.to_string()),
        (format!("{NODE}/event-channel"), port.to_string()),
        (format!("{NODE}/protocol"), "x86_64-abi".to_string()),
    ])
    .map_err(|e| format!("write nodes: {e:?}"))?;
    env.switch_state(NODE, STATE_INITIALISED)
        .map_err(|e| format!("state: {e:?}"))?;
    let s = env
        .wait_state(
            &backend,
            &|s| s == STATE_CONNECTED || s >= STATE_CLOSING,
            10 * SEC,
        )
        .map_err(|e| format!("backend Connected: {e:?}"))?;
    if s != STATE_CONNECTED {
        return Err(format!("backend went to state {s}"));
    }
    let sectors = u64_of(rd(&env, &format!("{backend}/sectors"))?).ok_or("no sectors")?;
    let max_indirect = u64_of(rd(
        &env,
        &format!("{backend}/feature-max-indirect-segments"),
    )?)
    .unwrap_or(0) as u32;
    let page = || env.alloc_page().map_err(|e| format!("page: {e:?}"));
    let (data, ro, ind) = (page()?, page()?, page()?);
    let mut grant = |p: &Page, ro: bool| -> Result<GrantRef, String> {
        let r = env
            .grant(p, beid, ro)
            .map_err(|e| format!("grant: {e:?}"))?;
        grants.push(r);
        Ok(r)
    };
    let data_ref = grant(&data, false)?;
    let ro_ref = grant(&ro, true)?;
    let ind_ref = grant(&ind, true)?;
    // The read-only page is never touched again, but its grant must stay.
    core::mem::forget(ro);
    env.switch_state(NODE, STATE_CONNECTED)
        .map_err(|e| format!("state: {e:?}"))?;
    Ok(Conn {
        env,
        backend,
        ring,
        port,
        sectors,
        max_indirect,
        data,
        data_ref,
        ro_ref,
        ind,
        ind_ref,
        grants,
    })
}

impl Conn {
    /// Put `reqs` on the ring, notify, and collect exactly one response for each (by
    /// id): `Err` on a missing, duplicate or unknown response.
    fn submit(&mut self, reqs: &[Request]) -> Result<Vec<BlkifResponse>, String> {
        for r in reqs {
            self.ring
                .put_request(&r.encode())
                .map_err(|e| format!("ring: {e:?}"))?;
        }
        if self.ring.push_requests_and_check_notify() {
            self.env.notify(self.port);
        }
        let mut got: Vec<Option<BlkifResponse>> = alloc::vec![None; reqs.len()];
        let mut n = 0;
        let deadline = self.env.now_ns() + 10 * SEC;
        while n < reqs.len() {
            let mut rsps = Vec::new();
            self.ring
                .consume_responses(|r| rsps.push(r))
                .map_err(|e| format!("ring: {e:?}"))?;
            if rsps.is_empty() {
                if self
                    .ring
                    .final_check_for_responses()
                    .map_err(|e| format!("ring: {e:?}"))?
                {
                    continue;
                }
                if self.env.now_ns() >= deadline {
                    let missing: Vec<u64> = reqs
                        .iter()
                        .zip(&got)
                        .filter(|(_, g)| g.is_none())
                        .map(|(r, _)| r.id())
                        .collect();
                    return Err(format!("no response to request ids {missing:?}"));
                }
                self.env.wait_event(self.port, deadline);
                continue;
            }
            for rsp in rsps {
                let Some(k) = reqs.iter().position(|r| r.id() == rsp.id) else {
                    return Err(format!("a response for unknown id {:#x}", rsp.id));
                };
                if got[k].is_some() {
                    return Err(format!("two responses for id {:#x}", rsp.id));
                }
                got[k] = Some(rsp);
                n += 1;
            }
        }
        Ok(got.into_iter().flatten().collect())
    }

    /// The malformed requests of one volley: (what, request, expected status).
    fn volley(&self, round: u64) -> Vec<(&'static str, Request, i16)> {
        let id = |k: u64| (round << 16) | k;
        let never = self.data_ref + 300;
        let d = self.data_ref;
        let n = self.sectors;
        let rd = BLKIF_OP_READ;
        let wr = BLKIF_OP_WRITE;
        let err = BLKIF_RSP_ERROR;
        let nosup = BLKIF_RSP_EOPNOTSUPP;
        let mut v: Vec<(&'static str, Request, i16)> = alloc::vec![
            (
                "read, ungranted gref",
                rw(rd, id(1), 0, &[seg(never, 0, 7)], 1),
                err
            ),
            (
                "write, ungranted gref",
                rw(wr, id(2), 0, &[seg(never, 0, 7)], 1),
                err
            ),
            (
                "read, gref beyond the table",
                rw(rd, id(3), 0, &[seg(0xfff_fff0, 0, 7)], 1),
                err
            ),
            (
                "write, gref beyond the table",
                rw(wr, id(4), 0, &[seg(0x7fff_ffff, 0, 7)], 1),
                err
            ),
            (
                "read into a read-only grant",
                rw(rd, id(5), 0, &[seg(self.ro_ref, 0, 7)], 1),
                err
            ),
            (
                "read at the end of the disk",
                rw(rd, id(6), n, &[seg(d, 0, 0)], 1),
                err
            ),
            (
                "write across the end",
                rw(wr, id(7), n - 4, &[seg(d, 0, 7)], 1),
                err
            ),
            (
                "read, sector overflows",
                rw(rd, id(8), u64::MAX - 3, &[seg(d, 0, 7)], 1),
                err
            ),
            ("read, 0 segments", rw(rd, id(9), 0, &[], 0), err),
            ("write, 0 segments", rw(wr, id(10), 0, &[], 0), err),
            (
                "write, 12 segments",
                rw(wr, id(11), 0, &[seg(d, 0, 7); 11], 12),
                err
            ),
            (
                "read, 255 segments",
                rw(rd, id(12), 0, &[seg(d, 0, 7); 11], 255),
                err
            ),
            (
                "read, first_sect > last_sect",
                rw(rd, id(13), 0, &[seg(d, 5, 2)], 1),
                err
            ),
            (
                "write, last_sect 8",
                rw(wr, id(14), 0, &[seg(d, 0, 8)], 1),
                err
            ),
            (
                "read, last_sect 255",
                rw(rd, id(15), 0, &[seg(d, 7, 255)], 1),
                err
            ),
            (
                "unknown operation 0x77",
                {
                    Request::Other(BlkifRequest {
                        operation: 0x77,
                        nr_segments: 1,
                        id: id(16),
                        ..Default::default()
                    })
                },
                nosup
            ),
            (
                "reserved operation 4",
                Request::Other(BlkifRequest {
                    operation: BLKIF_OP_RESERVED_1,
                    id: id(17),
                    ..Default::default()
                }),
                nosup
            ),
            (
                "discard, not offered",
                Request::Discard(BlkifRequestDiscard {
                    operation: BLKIF_OP_DISCARD,
                    id: id(18),
                    nr_sectors: n,
                    ..Default::default()
                }),
                nosup
            ),
        ];
        if self.max_indirect == 0 {
            v.push((
                "indirect, not offered",
                indirect(id(19), rd, 1, 0, self.ind_ref),
                nosup,
            ));
        } else {
            let too_many = u16::try_from(self.max_indirect + 1).unwrap_or(u16::MAX);
            v.extend([
                (
                    "indirect, too many segments",
                    indirect(id(19), rd, too_many, 0, self.ind_ref),
                    err,
                ),
                (
                    "indirect, 65535 segments",
                    indirect(id(20), wr, u16::MAX, 0, self.ind_ref),
                    err,
                ),
                (
                    "indirect, 0 segments",
                    indirect(id(21), rd, 0, 0, self.ind_ref),
                    err,
                ),
                (
                    "indirect, ungranted segment page",
                    indirect(id(22), rd, 1, 0, never),
                    err,
                ),
                (
                    "indirect, inner operation flush",
                    indirect(id(23), BLKIF_OP_FLUSH_DISKCACHE, 1, 0, self.ind_ref),
                    err,
                ),
                (
                    "indirect, segments past the end",
                    indirect(id(24), rd, 2, n - 8, self.ind_ref),
                    err,
                ),
                (
                    "indirect, segment with an ungranted gref",
                    indirect(id(25), wr, 3, 0, self.ind_ref),
                    err,
                ),
            ]);
        }
        v
    }

    /// Fill the indirect page: segments 0 and 1 whole pages of the data page, segment 2
    /// an ungranted page.
    fn fill_indirect(&self) {
        let never = self.data_ref + 300;
        let mut page = alloc::vec![0u8; 4096];
        let segs = [
            seg(self.data_ref, 0, 7),
            seg(self.data_ref, 0, 7),
            seg(never, 0, 7),
        ];
        for (k, s) in segs.iter().enumerate().take(BLKIF_SEGS_PER_INDIRECT_FRAME) {
            let o = k * 8;
            page[o..o + 4].copy_from_slice(&s.gref.to_le_bytes());
            page[o + 4] = s.first_sect;
            page[o + 5] = s.last_sect;
        }
        self.ind.write_bytes(0, &page);
    }

    /// One page written at `sector`, flushed, read back: the data must match.
    fn valid_io(&mut self, round: u64, sector: u64) -> Result<(), String> {
        let mut want = alloc::vec![0u8; 4096];
        for (i, w) in want.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&crate::pattern_word(sector ^ (round << 32), i as u64).to_le_bytes());
        }
        self.data.write_bytes(0, &want);
        let id = (round << 16) | 0xff00;
        let d = self.data_ref;
        for (what, req) in [
            ("write", rw(BLKIF_OP_WRITE, id, sector, &[seg(d, 0, 7)], 1)),
            ("flush", rw(BLKIF_OP_FLUSH_DISKCACHE, id + 1, 0, &[], 0)),
        ] {
            let r = self.submit(&[req])?;
            if r[0].status != BLKIF_RSP_OKAY {
                return Err(format!("valid {what} answered {}", r[0].status));
            }
        }
        self.data.write_bytes(0, &[0u8; 4096]);
        let r = self.submit(&[rw(BLKIF_OP_READ, id + 2, sector, &[seg(d, 0, 7)], 1)])?;
        if r[0].status != BLKIF_RSP_OKAY {
            return Err(format!("valid read answered {}", r[0].status));
        }
        let mut got = alloc::vec![0u8; 4096];
        self.data.read_bytes(0, &mut got);
        if got != want {
            return Err(format!("read back other data at sector {sector}"));
        }
        Ok(())
    }

    /// Closing, wait for the backend, Closed, end the grants, close the channel.
    fn close(self) -> Result<(), String> {
        self.env
            .switch_state(NODE, STATE_CLOSING)
            .map_err(|e| format!("state: {e:?}"))?;
        let s = self
            .env
            .wait_state(&self.backend, &|s| s >= STATE_CLOSING, 10 * SEC);
        let _ = self.env.switch_state(NODE, STATE_CLOSED);
        s.map_err(|e| format!("backend closing: {e:?}"))?;
        // Wait (bounded) for the backend to let go of the ring before ending its grant.
        let _ = self
            .env
            .wait_state(&self.backend, &|s| s >= STATE_CLOSED, 10 * SEC);
        let deadline = self.env.now_ns() + 2 * SEC;
        for g in &self.grants {
            while !self.env.end_grant(*g) {
                if self.env.now_ns() > deadline {
                    // The backend may still reach the pages: never free them.
                    core::mem::forget(self.ring);
                    core::mem::forget(self.data);
                    core::mem::forget(self.ind);
                    return Err(format!("grant {g} still in use after close"));
                }
                guest_sdk::sched::yield_now();
            }
        }
        self.env.close_evtchn(self.port);
        // The pages whose grants ended go with `self`.
        Ok(())
    }
}

/// The whole run; `Ok((rounds, refused))`.
fn run_inner(xb: &'static Xenbus, secs: u64) -> Result<(u64, u64), String> {
    let env = SdkEnv::new(xb);
    let start = env.now_ns();
    let mut c = connect(env)?;
    println!(
        "blkhostile: connected: {} sectors, max indirect segments {}",
        c.sectors, c.max_indirect
    );
    if c.sectors < 16 {
        return Err("disk too small".into());
    }
    c.fill_indirect();
    let mut refused = 0u64;
    let mut round = 0u64;
    loop {
        let v = c.volley(round);
        let reqs: Vec<Request> = v.iter().map(|(_, r, _)| *r).collect();
        let rsps = c.submit(&reqs)?;
        for ((what, req, want), rsp) in v.iter().zip(&rsps) {
            debug_assert_eq!(req.id(), rsp.id);
            if round == 0 {
                println!("blkhostile: {what}: status {}", rsp.status);
            }
            if rsp.status != *want {
                return Err(format!(
                    "{what}: status {} (wanted {want}) in round {round}",
                    rsp.status
                ));
            }
            refused += 1;
        }
        let sector = (round * 8) % (c.sectors - 8);
        c.valid_io(round, sector)
            .map_err(|e| format!("round {round}: {e}"))?;
        round += 1;
        // Until told to stop (the test writes the node once the other guests are done),
        // or `secs` at most.
        if let Ok(Some(_)) = c.env.xs_read("data/hostile-stop") {
            println!("blkhostile: stopped by data/hostile-stop after {round} rounds");
            break;
        }
        if c.env.now_ns().saturating_sub(start) >= secs * SEC {
            println!("blkhostile: ran {secs} s, {round} rounds");
            break;
        }
    }
    // Nothing more may come: every request was answered once.
    let deadline = c.env.now_ns() + SEC / 5;
    while c.env.now_ns() < deadline {
        c.env.wait_event(c.port, deadline);
    }
    let mut stray = 0;
    c.ring
        .consume_responses(|_| stray += 1)
        .map_err(|e| format!("ring: {e:?}"))?;
    if stray != 0 {
        return Err(format!("{stray} responses nobody asked for"));
    }
    c.close()?;
    Ok((round, refused))
}

/// `hostile=SECS`: run, print the verdict.
pub fn run(xb: &'static Xenbus, secs: u64) {
    match run_inner(xb, secs) {
        Ok((rounds, refused)) => {
            println!("blkhostile: PASS ({rounds} rounds, {refused} bad requests refused)")
        }
        Err(why) => println!("blkhostile: FAIL: {why}"),
    }
    println!("blkhostile: done");
}
