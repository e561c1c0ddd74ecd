//! `hostile=SECS`: a netfront that lies. It connects to `vif 0` as netfront does (tx
//! and rx rings, one event channel, the XenBus states; it never posts a receive
//! buffer), then, until its `data/hostile-stop` node appears (or `SECS` seconds at
//! most), runs rounds of:
//!
//! - a volley of malformed tx requests, between valid ones: grant references it never
//!   granted (and beyond the table), offsets and sizes crossing the page, sizes 0 and
//!   13 (no Ethernet header), a `more_data` chain of 19 slots (one more than
//!   `XEN_NETIF_NR_SLOTS_MIN`; the 18-slot one next to it must pass), following slots
//!   larger than what remains or crossing their page, a first slot left with fewer than
//!   14 bytes, extra-info slots of type 0, 5 and 200, a GSO and a multicast extra the
//!   backend did not offer, two extras of one type, duplicate ids, and a chain (of data
//!   slots, or of extras) that never ends. It checks that every slot gets exactly one
//!   response, in order, with the status netback gives it (`NETIF_RSP_ERROR` for each
//!   slot of a malformed packet, `NETIF_RSP_NULL` for its extra-info slots,
//!   `NETIF_RSP_OKAY` for the valid ones);
//! - a flood filling the ring with valid broadcast frames and frames with spoofed
//!   source MACs (another guest's, and made-up ones), as fast as the backend answers
//!   (netback takes them all; the bridge drops the spoofed ones).
//!
//! Then it prints its verdict, `nethostile: PASS (R rounds, B bad packets refused, F
//! frames flooded)` or `nethostile: FAIL: <why>`, and breaks its tx ring for good:
//! `req_prod` 1000 past what it wrote, then a check that no response comes (netback
//! must disconnect this vif, and only it). `nethostile: done`; it stays up.

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use guest_sdk::println;
use guest_sdk::xenbus::Xenbus;
use pv_drivers::netfront::{
    FrontendEnv, STATE_CLOSING, STATE_CONNECTED, STATE_INITIALISED, STATE_INIT_WAIT,
};
use pv_drivers::netif::xenbus::parse_mac;
use pv_drivers::netif::{FrontendInfo, NetRxFrontRing, NetTxFrontRing};
use pv_drivers::ring::SharedPage;
use pv_drivers::sdk::{Page, SdkEnv};
use xen_abi::grant_table::GrantRef;
use xen_abi::io::netif::{
    NetifExtraGso, NetifExtraHash, NetifExtraInfo, NetifTxRequest, NetifTxResponse,
    NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETTXF_EXTRA_INFO, NETTXF_MORE_DATA,
    XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_TYPE_MCAST_ADD, XEN_NETIF_GSO_TYPE_TCPV4,
};
use xen_abi::io::ring::SRING_REQ_PROD;
use xen_abi::xen::DomId;

const NODE: &str = "device/vif/0";
const SEC: u64 = 1_000_000_000;
const OK: i16 = NETIF_RSP_OKAY;
const ERR: i16 = NETIF_RSP_ERROR;
const NULL: i16 = NETIF_RSP_NULL;
/// Where the frames are in the frame page.
const VALID_AT: u16 = 0;
const SPOOF_AT: u16 = 1024;
/// The nbserver guest's MAC (`netdemo-server.cfg`): the spoofed frames claim it.
const VICTIM: [u8; 6] = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x21];
/// Frames per flood (the ring has 256 slots).
const FLOOD: usize = 240;

/// Our side of the connection.
struct Conn {
    env: SdkEnv,
    tx: NetTxFrontRing<Page>,
    /// Granted to netback (it maps it); no buffer is ever posted.
    _rx: NetRxFrontRing<Page>,
    port: u32,
    mac: [u8; 6],
    /// A page of frames, granted read-only.
    frames: Page,
    frames_ref: GrantRef,
    next_id: u16,
}

fn connect(env: SdkEnv) -> Result<Conn, String> {
    let rd = |env: &SdkEnv, p: &str| -> Result<String, String> {
        env.xs_read(p)
            .map_err(|e| format!("read {p}: {e:?}"))?
            .map(|v| v.trim_end_matches('\0').to_string())
            .ok_or_else(|| format!("no {p}"))
    };
    let backend = rd(&env, &format!("{NODE}/backend"))?;
    let beid: DomId = rd(&env, &format!("{NODE}/backend-id"))?
        .trim()
        .parse()
        .map_err(|_| "bad backend-id")?;
    let mac = parse_mac(&rd(&env, &format!("{NODE}/mac"))?).ok_or("bad mac")?;
    env.wait_state(&backend, &|s| s >= STATE_INIT_WAIT, 10 * SEC)
        .map_err(|e| format!("backend InitWait: {e:?}"))?;
    let page = || env.alloc_page().map_err(|e| format!("page: {e:?}"));
    let tx = NetTxFrontRing::init(page()?).map_err(|e| format!("tx ring: {e:?}"))?;
    let rx = NetRxFrontRing::init(page()?).map_err(|e| format!("rx ring: {e:?}"))?;
    let grant = |p: &Page, ro: bool| env.grant(p, beid, ro).map_err(|e| format!("grant: {e:?}"));
    let tx_ref = grant(tx.page(), false)?;
    let rx_ref = grant(rx.page(), false)?;
    let frames = page()?;
    let frames_ref = grant(&frames, true)?;
    let port = env
        .alloc_evtchn(beid)
        .map_err(|e| format!("evtchn: {e:?}"))?;
    let nodes: Vec<(String, String)> = FrontendInfo::new(tx_ref, rx_ref, port, true)
        .to_xenstore()
        .into_iter()
        .map(|(k, v)| (format!("{NODE}/{k}"), v))
        .collect();
    env.xs_write_all(&nodes)
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
    env.switch_state(NODE, STATE_CONNECTED)
        .map_err(|e| format!("state: {e:?}"))?;
    // A valid broadcast frame of ours, and one claiming to be the victim.
    let frame = |src: &[u8; 6], text: &[u8]| {
        let mut f = [0u8; 60];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(src);
        f[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental ethertype
        f[14..14 + text.len()].copy_from_slice(text);
        f
    };
    frames.write_bytes(usize::from(VALID_AT), &frame(&mac, b"nethostile: flood"));
    frames.write_bytes(usize::from(SPOOF_AT), &frame(&VICTIM, b"nethostile: spoof"));
    Ok(Conn {
        env,
        tx,
        _rx: rx,
        port,
        mac,
        frames,
        frames_ref,
        next_id: 1,
    })
}

/// One slot.
fn slot(gref: GrantRef, offset: u16, flags: u16, id: u16, size: u16) -> NetifTxRequest {
    NetifTxRequest {
        gref,
        offset,
        flags,
        id,
        size,
    }
}

/// One packet's slots and the responses netback must give them, in order.
struct Case {
    what: &'static str,
    slots: Vec<NetifTxRequest>,
    expect: Vec<NetifTxResponse>,
    /// Packets (1, or 2 for the duplicate ids).
    packets: u64,
}

impl Conn {
    fn id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// A case from (gref, offset, flags, size) data slots and raw extras (after the
    /// first slot); every data slot answered `status`, every extra `NULL`.
    fn case(
        &mut self,
        what: &'static str,
        data: &[(GrantRef, u16, u16, u16)],
        extras: &[NetifTxRequest],
        status: i16,
    ) -> Case {
        let mut slots = Vec::new();
        let mut expect = Vec::new();
        for (k, &(g, off, flags, size)) in data.iter().enumerate() {
            let id = self.id();
            slots.push(slot(g, off, flags, id, size));
            expect.push(NetifTxResponse { id, status });
            if k == 0 {
                for x in extras {
                    slots.push(*x);
                    expect.push(NetifTxResponse {
                        id: 0,
                        status: NULL,
                    });
                }
            }
        }
        Case {
            what,
            slots,
            expect,
            packets: 1,
        }
    }

    fn volley(&mut self, round: u64) -> Vec<Case> {
        let f = self.frames_ref;
        let never = f + 300;
        let (m, x) = (NETTXF_MORE_DATA, NETTXF_EXTRA_INFO);
        let v = VALID_AT;
        let extra = |t: u8, flags: u8| {
            let mut e = NetifExtraInfo::new_mcast(XEN_NETIF_EXTRA_TYPE_MCAST_ADD, [0; 6], flags);
            e.type_ = t;
            e.to_tx_slot()
        };
        let gso = NetifExtraInfo::new_gso(
            &NetifExtraGso {
                size: 1448,
                type_: XEN_NETIF_GSO_TYPE_TCPV4,
                pad: 0,
                features: 0,
            },
            0,
        )
        .to_tx_slot();
        let mcast =
            NetifExtraInfo::new_mcast(XEN_NETIF_EXTRA_TYPE_MCAST_ADD, [1, 0, 0x5e, 0, 0, 1], 0)
                .to_tx_slot();
        let hash = |flags| {
            NetifExtraInfo::new_hash(
                &NetifExtraHash {
                    type_: 1,
                    algorithm: 1,
                    value: [1, 2, 3, 4],
                },
                flags,
            )
            .to_tx_slot()
        };
        let chain = |n: usize, each: u16| -> Vec<(GrantRef, u16, u16, u16)> {
            let total = each * n as u16;
            (0..n)
                .map(|k| {
                    let flags = if k + 1 < n { m } else { 0 };
                    (f, v, flags, if k == 0 { total } else { each })
                })
                .collect()
        };
        let mut c = alloc::vec![
            self.case("a valid frame", &[(f, v, 0, 60)], &[], OK),
            self.case("ungranted gref", &[(never, 0, 0, 60)], &[], ERR),
            self.case(
                "gref beyond the table",
                &[(0xffff_fff0, 0, 0, 60)],
                &[],
                ERR
            ),
            self.case("offset 4000 size 200", &[(f, 4000, 0, 200)], &[], ERR),
            self.case("offset 4096 size 14", &[(f, 4096, 0, 14)], &[], ERR),
            self.case("size 0", &[(f, v, 0, 0)], &[], ERR),
            self.case("size 13", &[(f, v, 0, 13)], &[], ERR),
            self.case("19 data slots", &chain(19, 60), &[], ERR),
            self.case("18 data slots (the most)", &chain(18, 60), &[], OK),
            self.case(
                "a following slot larger than the rest",
                &[(f, v, m, 100), (f, v, 0, 200)],
                &[],
                ERR
            ),
            self.case(
                "a following slot crossing its page",
                &[(f, v, m, 200), (f, 4000, 0, 140)],
                &[],
                ERR
            ),
            self.case(
                "a first slot of 10 bytes",
                &[(f, v, m, 70), (f, v, 0, 60)],
                &[],
                ERR
            ),
            self.case("extra type 0", &[(f, v, x, 60)], &[extra(0, 0)], ERR),
            self.case("extra type 5", &[(f, v, x, 60)], &[extra(5, 0)], ERR),
            self.case("extra type 200", &[(f, v, x, 60)], &[extra(200, 0)], ERR),
            self.case("GSO extra, not offered", &[(f, v, x, 60)], &[gso], ERR),
            self.case(
                "multicast add, not offered",
                &[(f, v, x, 60)],
                &[mcast],
                ERR
            ),
            self.case(
                "two hash extras",
                &[(f, v, x, 60)],
                &[hash(XEN_NETIF_EXTRA_FLAG_MORE), hash(0)],
                ERR
            ),
        ];
        // Duplicate ids: two packets with one id, each answered once.
        for (what, g, status) in [
            ("duplicate ids, ungranted", never, ERR),
            ("duplicate ids, valid", f, OK),
        ] {
            let id = self.id();
            c.push(Case {
                what,
                slots: alloc::vec![slot(g, v, 0, id, 60), slot(g, v, 0, id, 60)],
                expect: alloc::vec![NetifTxResponse { id, status }; 2],
                packets: 2,
            });
        }
        c.push(self.case("a valid frame after them", &[(f, v, 0, 60)], &[], OK));
        // Last: a chain that never ends (past what is published).
        if round.is_multiple_of(2) {
            let mut d = chain(4, 60);
            if let Some(last) = d.last_mut() {
                last.2 = m;
            }
            c.push(self.case("a more_data chain that never ends", &d, &[], ERR));
        } else {
            c.push(self.case(
                "an extra-info chain that never ends",
                &[(f, v, x, 60)],
                &[hash(XEN_NETIF_EXTRA_FLAG_MORE)],
                ERR,
            ));
        }
        c
    }

    /// Publish `slots`, notify, and collect exactly `n` responses (10 s at most).
    fn exchange(
        &mut self,
        slots: &[NetifTxRequest],
        n: usize,
    ) -> Result<Vec<NetifTxResponse>, String> {
        for s in slots {
            self.tx.put_request(s).map_err(|e| format!("ring: {e:?}"))?;
        }
        if self.tx.push_requests_and_check_notify() {
            self.env.notify(self.port);
        }
        let mut got = Vec::with_capacity(n);
        let deadline = self.env.now_ns() + 10 * SEC;
        while got.len() < n {
            self.tx
                .consume_responses(|r| got.push(r))
                .map_err(|e| format!("ring: {e:?}"))?;
            if got.len() >= n {
                break;
            }
            if self
                .tx
                .final_check_for_responses()
                .map_err(|e| format!("ring: {e:?}"))?
            {
                continue;
            }
            if self.env.now_ns() >= deadline {
                return Err(format!("{} of {n} responses after 10 s", got.len()));
            }
            self.env.wait_event(self.port, deadline);
        }
        Ok(got)
    }

    /// One volley; the bad packets refused.
    fn malformed(&mut self, round: u64) -> Result<u64, String> {
        let cases = self.volley(round);
        let slots: Vec<NetifTxRequest> = cases.iter().flat_map(|c| c.slots.clone()).collect();
        let want: usize = cases.iter().map(|c| c.expect.len()).sum();
        let got = self.exchange(&slots, want)?;
        if got.len() != want {
            return Err(format!("{} responses to {want} slots", got.len()));
        }
        let mut at = 0;
        let mut bad = 0;
        for c in &cases {
            let g = got.get(at..at + c.expect.len()).unwrap_or(&[]);
            if g != c.expect.as_slice() {
                return Err(format!(
                    "round {round}, {}: responses {:?}, expected {:?}",
                    c.what,
                    g.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>(),
                    c.expect
                        .iter()
                        .map(|r| (r.id, r.status))
                        .collect::<Vec<_>>()
                ));
            }
            if round == 0 {
                let st = c.expect.first().map_or(0, |r| r.status);
                println!("nethostile: {}: status {st}", c.what);
            }
            if c.expect.first().is_some_and(|r| r.status == ERR) {
                bad += c.packets;
            }
            at += c.expect.len();
        }
        Ok(bad)
    }

    /// A ring full of valid broadcast frames, every other one with a spoofed source.
    fn flood(&mut self, round: u64) -> Result<u64, String> {
        let mut slots = Vec::with_capacity(FLOOD);
        for k in 0..FLOOD {
            let id = self.id();
            let at = if k.is_multiple_of(2) {
                VALID_AT
            } else {
                SPOOF_AT
            };
            slots.push(slot(self.frames_ref, at, 0, id, 60));
        }
        // The spoofed source changes every round: a made-up one on odd rounds.
        let src = if round.is_multiple_of(2) {
            VICTIM
        } else {
            [0x02, 0x66, 0, 0, (round >> 8) as u8, round as u8]
        };
        self.frames.write_bytes(usize::from(SPOOF_AT) + 6, &src);
        let got = self.exchange(&slots, FLOOD)?;
        for (s, r) in slots.iter().zip(&got) {
            if r.id != s.id || r.status != OK {
                return Err(format!(
                    "flood: slot id {} answered id {} status {}",
                    s.id, r.id, r.status
                ));
            }
        }
        Ok(FLOOD as u64)
    }

    /// Anything answered late, or twice?
    fn stray(&mut self) -> Result<(), String> {
        let until = self.env.now_ns() + SEC / 5;
        let mut n = 0u32;
        while self.env.now_ns() < until {
            self.tx
                .consume_responses(|_| n += 1)
                .map_err(|e| format!("ring: {e:?}"))?;
            self.env.wait_event(self.port, until);
        }
        if n > 0 {
            return Err(format!("{n} responses nobody asked for"));
        }
        Ok(())
    }
}

fn hammer(c: &mut Conn, secs: u64) -> Result<(u64, u64, u64), String> {
    let end = c.env.now_ns() + secs * SEC;
    let (mut rounds, mut bad, mut flooded) = (0u64, 0u64, 0u64);
    loop {
        bad += c.malformed(rounds)?;
        flooded += c.flood(rounds)?;
        rounds += 1;
        if rounds == 1 {
            println!("nethostile: round 1 done");
        }
        if let Ok(Some(_)) = c.env.xs_read("data/hostile-stop") {
            println!("nethostile: stopped by data/hostile-stop after {rounds} rounds");
            break;
        }
        if c.env.now_ns() >= end {
            println!("nethostile: {secs} s are up after {rounds} rounds");
            break;
        }
    }
    c.stray()?;
    Ok((rounds, bad, flooded))
}

/// `hostile=SECS`: run, print the verdict, break the ring; stay up.
pub fn run(xb: &'static Xenbus, secs: u64) -> ! {
    match connect(SdkEnv::new(xb)) {
        Err(why) => println!("nethostile: FAIL: {why}"),
        Ok(mut c) => {
            let m = c.mac;
            println!(
                "nethostile: connected, mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            );
            match hammer(&mut c, secs) {
                Ok((r, b, f)) => println!(
                    "nethostile: PASS ({r} rounds, {b} bad packets refused, {f} frames flooded)"
                ),
                Err(why) => println!("nethostile: FAIL: {why}"),
            }
            // A req_prod far past what we wrote: a broken ring.
            let prod = c.tx.req_prod_pvt().wrapping_add(1000);
            c.tx.page().write_fence();
            c.tx.page().write_u32(SRING_REQ_PROD, prod);
            c.env.notify(c.port);
            let until = c.env.now_ns() + 2 * SEC;
            let mut n = 0u32;
            while c.env.now_ns() < until {
                let _ = c.tx.consume_responses(|_| n += 1);
                c.env.wait_event(c.port, until);
            }
            println!("nethostile: req_prod 1000 ahead: {n} responses in 2 s");
        }
    }
    println!("nethostile: done");
    loop {
        guest_sdk::sched::block();
    }
}
