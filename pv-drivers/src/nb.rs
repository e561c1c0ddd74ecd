//! `nb`, the little TCP test-and-benchmark protocol the example guests (`netdemo`) and
//! dom0 (`netbench`) speak: a client connects and sends a 16-byte request (`NB1`, an
//! operation byte, 4 zero bytes, a little-endian u64 count), then
//!
//! - `S` (sink): the client sends `count` bytes of [`pattern`]; the server checks every
//!   byte and answers 16 bytes: `OK` or `BAD`, padded with zeros to 8, then the number
//!   of bytes it received intact (u64 LE);
//! - `G` (give): the server sends `count` bytes of [`pattern`]; the client checks them;
//! - `E` (echo): `count` round trips of one byte, the server sending back each byte.
//!
//! Both ends are poll-driven state machines over [`NetStack`](crate::tcpip::NetStack)
//! (call `step` after each `poll`), so a guest can loop on them and dom0 can run a
//! server in its event loop. Verdicts are computed from the bytes, never assumed.

use crate::tcpip::{Ipv4Address, NetError, NetStack, Nic};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;

/// The request's magic.
pub const MAGIC: &[u8; 3] = b"NB1";
/// Request length.
pub const REQ_LEN: usize = 16;
/// Reply length (sink).
pub const REPLY_LEN: usize = 16;

/// Byte `i` of the stream (never periodic with a power of two, so a lost, repeated or
/// misplaced segment is caught).
pub fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(7) ^ (i / 251).wrapping_mul(13)) as u8
}

/// An operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Client to server, checked by the server.
    Sink,
    /// Server to client, checked by the client.
    Give,
    /// One-byte round trips.
    Echo,
}

impl Op {
    fn byte(self) -> u8 {
        match self {
            Op::Sink => b'S',
            Op::Give => b'G',
            Op::Echo => b'E',
        }
    }
    fn from_byte(b: u8) -> Option<Op> {
        match b {
            b'S' => Some(Op::Sink),
            b'G' => Some(Op::Give),
            b'E' => Some(Op::Echo),
            _ => None,
        }
    }
}

/// The request bytes.
pub fn request(op: Op, count: u64) -> [u8; REQ_LEN] {
    let mut r = [0u8; REQ_LEN];
    r[..3].copy_from_slice(MAGIC);
    r[3] = op.byte();
    r[8..].copy_from_slice(&count.to_le_bytes());
    r
}

/// Parse a request.
pub fn parse_request(r: &[u8; REQ_LEN]) -> Option<(Op, u64)> {
    if &r[..3] != MAGIC {
        return None;
    }
    let op = Op::from_byte(r[3])?;
    let mut c = [0u8; 8];
    c.copy_from_slice(&r[8..]);
    Some((op, u64::from_le_bytes(c)))
}

/// Send small segments at once (TCP_NODELAY: no Nagle), so an echo's one-byte replies
/// are not held back waiting for an acknowledgement.
fn nodelay<N: Nic>(stack: &mut NetStack<N>, sock: SocketHandle) {
    stack.tcp(sock).set_nagle_enabled(false);
}

/// What a finished exchange came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The operation.
    pub op: Op,
    /// Bytes (or round trips) asked for.
    pub count: u64,
    /// Bytes (or round trips) that arrived intact, in order.
    pub good: u64,
    /// Whether all of them did.
    pub ok: bool,
}

#[derive(Clone, Copy, Debug)]
enum SPhase {
    Header {
        got: usize,
        buf: [u8; REQ_LEN],
    },
    Sink {
        count: u64,
        done: u64,
        bad: bool,
    },
    Reply {
        out: [u8; REPLY_LEN],
        sent: usize,
        outcome: Outcome,
    },
    Give {
        count: u64,
        sent: u64,
    },
    Echo {
        count: u64,
        done: u64,
        pending: Option<u8>,
    },
    Closing {
        outcome: Option<Outcome>,
    },
}

/// A server on one port, serving one connection at a time.
pub struct Server {
    port: u16,
    sock: SocketHandle,
    phase: SPhase,
    /// Exchanges finished.
    pub served: u64,
    /// The last one's outcome.
    pub last: Option<Outcome>,
}

impl Server {
    /// Listen on `port`.
    pub fn new<N: Nic>(stack: &mut NetStack<N>, port: u16) -> Result<Server, NetError> {
        let sock = stack.tcp_listen(port)?;
        nodelay(stack, sock);
        Ok(Server {
            port,
            sock,
            phase: SPhase::Header {
                got: 0,
                buf: [0; REQ_LEN],
            },
            served: 0,
            last: None,
        })
    }

    /// Make progress; returns an outcome when an exchange finished.
    pub fn step<N: Nic>(&mut self, stack: &mut NetStack<N>) -> Option<Outcome> {
        let s = stack.tcp(self.sock);
        // A connection that went away: back to listening.
        if !s.is_open() || matches!(s.state(), State::CloseWait | State::TimeWait) {
            let finished = match self.phase {
                SPhase::Closing { outcome } => outcome,
                SPhase::Header { got: 0, .. } => None,
                _ => None,
            };
            if !s.is_listening() {
                s.abort();
                let _ = s.listen(self.port);
                self.phase = SPhase::Header {
                    got: 0,
                    buf: [0; REQ_LEN],
                };
                if let Some(o) = finished {
                    self.served += 1;
                    self.last = Some(o);
                    return Some(o);
                }
            }
            return None;
        }
        loop {
            match &mut self.phase {
                SPhase::Header { got, buf } => {
                    if !s.can_recv() {
                        return None;
                    }
                    let n = s.recv_slice(&mut buf[*got..]).unwrap_or(0);
                    *got += n;
                    if *got < REQ_LEN {
                        return None;
                    }
                    self.phase = match parse_request(buf) {
                        Some((Op::Sink, count)) => SPhase::Sink {
                            count,
                            done: 0,
                            bad: false,
                        },
                        Some((Op::Give, count)) => SPhase::Give { count, sent: 0 },
                        Some((Op::Echo, count)) => SPhase::Echo {
                            count,
                            done: 0,
                            pending: None,
                        },
                        None => {
                            s.abort();
                            SPhase::Closing { outcome: None }
                        }
                    };
                }
                SPhase::Sink { count, done, bad } => {
                    while s.can_recv() && *done < *count {
                        let (c, d) = (*count, *done);
                        let r = s.recv(|b| {
                            let take = b.len().min((c - d) as usize);
                            let mut wrong = false;
                            for (i, &x) in b[..take].iter().enumerate() {
                                if x != pattern(d + i as u64) {
                                    wrong = true;
                                }
                            }
                            (take, (take, wrong))
                        });
                        let Ok((take, wrong)) = r else { break };
                        if take == 0 {
                            break;
                        }
                        if wrong && !*bad {
                            *bad = true;
                        }
                        *done += take as u64;
                    }
                    if *done < *count {
                        return None;
                    }
                    let outcome = Outcome {
                        op: Op::Sink,
                        count: *count,
                        good: if *bad { 0 } else { *done },
                        ok: !*bad,
                    };
                    let mut out = [0u8; REPLY_LEN];
                    out[..3].copy_from_slice(if *bad { b"BAD" } else { b"OK\0" });
                    out[8..].copy_from_slice(&outcome.good.to_le_bytes());
                    self.phase = SPhase::Reply {
                        out,
                        sent: 0,
                        outcome,
                    };
                }
                SPhase::Reply { out, sent, outcome } => {
                    if s.can_send() {
                        *sent += s.send_slice(&out[*sent..]).unwrap_or(0);
                    }
                    if *sent < REPLY_LEN {
                        return None;
                    }
                    let o = *outcome;
                    s.close();
                    self.phase = SPhase::Closing { outcome: Some(o) };
                }
                SPhase::Give { count, sent } => {
                    while s.can_send() && *sent < *count {
                        let (c, d) = (*count, *sent);
                        let n = s
                            .send(|b| {
                                let take = b.len().min((c - d) as usize);
                                for (i, x) in b[..take].iter_mut().enumerate() {
                                    *x = pattern(d + i as u64);
                                }
                                (take, take)
                            })
                            .unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        *sent += n as u64;
                    }
                    if *sent < *count {
                        return None;
                    }
                    let o = Outcome {
                        op: Op::Give,
                        count: *count,
                        good: *count,
                        ok: true,
                    };
                    s.close();
                    self.phase = SPhase::Closing { outcome: Some(o) };
                }
                SPhase::Echo {
                    count,
                    done,
                    pending,
                } => {
                    loop {
                        if let Some(b) = *pending {
                            if !s.can_send() || s.send_slice(&[b]).unwrap_or(0) == 0 {
                                return None;
                            }
                            *pending = None;
                            *done += 1;
                        }
                        if *done >= *count {
                            break;
                        }
                        let mut b = [0u8; 1];
                        if !s.can_recv() || s.recv_slice(&mut b).unwrap_or(0) == 0 {
                            return None;
                        }
                        *pending = Some(b[0]);
                    }
                    let o = Outcome {
                        op: Op::Echo,
                        count: *count,
                        good: *done,
                        ok: true,
                    };
                    s.close();
                    self.phase = SPhase::Closing { outcome: Some(o) };
                }
                SPhase::Closing { .. } => return None,
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum CPhase {
    Connecting,
    Request {
        sent: usize,
    },
    Sink {
        sent: u64,
        reply: [u8; REPLY_LEN],
        got: usize,
    },
    Give {
        got: u64,
        bad: bool,
    },
    Echo {
        done: u64,
        waiting: bool,
    },
    Done(Outcome),
}

/// A client running one exchange.
pub struct Client {
    sock: SocketHandle,
    op: Op,
    count: u64,
    phase: CPhase,
}

/// How a client ended without an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The connection was refused or reset.
    Reset,
    /// The server's reply was not `OK`/`BAD`.
    BadReply,
}

impl Client {
    /// Connect to `addr:port` for `op` over `count` bytes (round trips for echo).
    pub fn new<N: Nic>(
        stack: &mut NetStack<N>,
        addr: Ipv4Address,
        port: u16,
        op: Op,
        count: u64,
    ) -> Result<Client, NetError> {
        let sock = stack.tcp_connect(addr, port)?;
        nodelay(stack, sock);
        Ok(Client {
            sock,
            op,
            count,
            phase: CPhase::Connecting,
        })
    }

    /// Round trips done so far (echo), or bytes sent/received.
    pub fn progress(&self) -> u64 {
        match self.phase {
            CPhase::Sink { sent, .. } => sent,
            CPhase::Give { got, .. } => got,
            CPhase::Echo { done, .. } => done,
            CPhase::Done(o) => o.good,
            _ => 0,
        }
    }

    /// Make progress; `Some` when the exchange finished (then the socket is closed and
    /// can be removed with [`Client::finish`]).
    pub fn step<N: Nic>(
        &mut self,
        stack: &mut NetStack<N>,
    ) -> Option<Result<Outcome, ClientError>> {
        let s = stack.tcp(self.sock);
        loop {
            match &mut self.phase {
                CPhase::Done(o) => return Some(Ok(*o)),
                CPhase::Connecting => {
                    if !s.is_open() {
                        return Some(Err(ClientError::Reset));
                    }
                    if !s.may_send() {
                        return None;
                    }
                    self.phase = CPhase::Request { sent: 0 };
                }
                CPhase::Request { sent } => {
                    if !s.is_open() {
                        return Some(Err(ClientError::Reset));
                    }
                    let req = request(self.op, self.count);
                    if s.can_send() {
                        *sent += s.send_slice(&req[*sent..]).unwrap_or(0);
                    }
                    if *sent < REQ_LEN {
                        return None;
                    }
                    self.phase = match self.op {
                        Op::Sink => CPhase::Sink {
                            sent: 0,
                            reply: [0; REPLY_LEN],
                            got: 0,
                        },
                        Op::Give => CPhase::Give { got: 0, bad: false },
                        Op::Echo => CPhase::Echo {
                            done: 0,
                            waiting: false,
                        },
                    };
                }
                CPhase::Sink { sent, reply, got } => {
                    let count = self.count;
                    while s.can_send() && *sent < count {
                        let d = *sent;
                        let n = s
                            .send(|b| {
                                let take = b.len().min((count - d) as usize);
                                for (i, x) in b[..take].iter_mut().enumerate() {
                                    *x = pattern(d + i as u64);
                                }
                                (take, take)
                            })
                            .unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        *sent += n as u64;
                    }
                    if s.can_recv() {
                        *got += s.recv_slice(&mut reply[*got..]).unwrap_or(0);
                    }
                    if *got < REPLY_LEN {
                        if !s.may_recv() && !s.can_recv() {
                            return Some(Err(ClientError::Reset));
                        }
                        return None;
                    }
                    let mut g = [0u8; 8];
                    g.copy_from_slice(&reply[8..]);
                    let good = u64::from_le_bytes(g);
                    let ok = match &reply[..3] {
                        b"OK\0" => true,
                        b"BAD" => false,
                        _ => return Some(Err(ClientError::BadReply)),
                    };
                    s.close();
                    self.phase = CPhase::Done(Outcome {
                        op: Op::Sink,
                        count,
                        good,
                        ok: ok && good == count,
                    });
                }
                CPhase::Give { got, bad } => {
                    let count = self.count;
                    while s.can_recv() && *got < count {
                        let d = *got;
                        let r = s.recv(|b| {
                            let take = b.len().min((count - d) as usize);
                            let wrong = b[..take]
                                .iter()
                                .enumerate()
                                .any(|(i, &x)| x != pattern(d + i as u64));
                            (take, (take, wrong))
                        });
                        let Ok((take, wrong)) = r else { break };
                        if take == 0 {
                            break;
                        }
                        *bad |= wrong;
                        *got += take as u64;
                    }
                    if *got < count {
                        if !s.may_recv() && !s.can_recv() {
                            return Some(Err(ClientError::Reset));
                        }
                        return None;
                    }
                    s.close();
                    self.phase = CPhase::Done(Outcome {
                        op: Op::Give,
                        count,
                        good: if *bad { 0 } else { *got },
                        ok: !*bad,
                    });
                }
                CPhase::Echo { done, waiting } => {
                    let count = self.count;
                    if *done >= count {
                        s.close();
                        let o = Outcome {
                            op: Op::Echo,
                            count,
                            good: *done,
                            ok: true,
                        };
                        self.phase = CPhase::Done(o);
                        continue;
                    }
                    let want = pattern(*done);
                    if !*waiting {
                        if !s.can_send() || s.send_slice(&[want]).unwrap_or(0) == 0 {
                            return None;
                        }
                        *waiting = true;
                    }
                    let mut b = [0u8; 1];
                    if !s.can_recv() || s.recv_slice(&mut b).unwrap_or(0) == 0 {
                        if !s.may_recv() {
                            return Some(Err(ClientError::Reset));
                        }
                        return None;
                    }
                    if b[0] != want {
                        s.close();
                        self.phase = CPhase::Done(Outcome {
                            op: Op::Echo,
                            count,
                            good: *done,
                            ok: false,
                        });
                        continue;
                    }
                    *done += 1;
                    *waiting = false;
                }
            }
        }
    }

    /// Forget the socket.
    pub fn finish<N: Nic>(self, stack: &mut NetStack<N>) {
        stack.remove(self.sock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcpip::{Addressing, Ipv4Cidr, Wire};

    fn stack(last: u8) -> NetStack<Wire> {
        NetStack::new(
            Wire::new([0, 0x16, 0x3e, 0, 0, last]),
            Addressing::Static {
                cidr: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, last), 24),
                gateway: None,
            },
            u64::from(last),
            0,
        )
    }

    /// Run a client against a server until the client finishes; optionally corrupt one
    /// byte of client-to-server payload.
    fn exchange(op: Op, count: u64, corrupt_at: Option<usize>) -> (Outcome, Option<Outcome>) {
        let (mut a, mut b) = (stack(1), stack(2));
        let mut srv = Server::new(&mut b, 7000).unwrap();
        let mut cl = Client::new(&mut a, Ipv4Address::new(10, 0, 0, 2), 7000, op, count).unwrap();
        let mut sent_bytes = 0usize;
        let mut corrupted = false;
        for t in 0..400_000u64 {
            a.poll(t);
            b.poll(t);
            // Move frames, optionally flipping a payload byte of a big frame once.
            while let Some(mut f) = a.nic().out.pop_front() {
                if let Some(at) = corrupt_at {
                    sent_bytes += f.len();
                    if !corrupted && f.len() > 200 && sent_bytes > at {
                        let i = f.len() - 10;
                        f[i] ^= 0x55;
                        corrupted = true;
                    }
                }
                b.nic().inbox.push_back(f);
            }
            while let Some(f) = b.nic().out.pop_front() {
                a.nic().inbox.push_back(f);
            }
            let so = srv.step(&mut b);
            if let Some(r) = cl.step(&mut a) {
                // Let the server see the close.
                for u in 0..200 {
                    a.poll(t + u);
                    b.poll(t + u);
                    Wire::exchange(a.nic(), b.nic());
                    srv.step(&mut b);
                }
                return (r.expect("an outcome"), so.or(srv.last));
            }
        }
        panic!("no outcome");
    }

    #[test]
    fn sink_give_and_echo_complete_and_are_checked() {
        let (o, s) = exchange(Op::Sink, 300_000, None);
        assert!(o.ok && o.good == 300_000, "{o:?}");
        assert_eq!(s.map(|s| (s.op, s.ok)), Some((Op::Sink, true)));
        let (o, _) = exchange(Op::Give, 200_000, None);
        assert!(o.ok && o.good == 200_000, "{o:?}");
        let (o, _) = exchange(Op::Echo, 50, None);
        assert!(o.ok && o.good == 50, "{o:?}");
    }

    #[test]
    fn a_corrupted_segment_is_dropped_by_tcp_and_resent() {
        // The flipped byte fails TCP's checksum: the segment is dropped and sent
        // again, and the verdict is still computed from intact bytes.
        let (o, _) = exchange(Op::Sink, 100_000, Some(20_000));
        assert!(o.ok, "{o:?}");
    }

    #[test]
    fn a_wrong_byte_from_the_client_makes_the_server_say_bad() {
        let (mut a, mut b) = (stack(1), stack(2));
        let mut srv = Server::new(&mut b, 7001).unwrap();
        let c = a.tcp_connect(Ipv4Address::new(10, 0, 0, 2), 7001).unwrap();
        let mut payload = request(Op::Sink, 1000).to_vec();
        payload.extend((0..1000u64).map(|i| if i == 500 { !pattern(i) } else { pattern(i) }));
        let mut sent = 0;
        let mut reply = [0u8; REPLY_LEN];
        let mut got = 0;
        for t in 0..100_000u64 {
            a.poll(t);
            b.poll(t);
            Wire::exchange(a.nic(), b.nic());
            srv.step(&mut b);
            let s = a.tcp(c);
            if s.can_send() && sent < payload.len() {
                sent += s.send_slice(&payload[sent..]).unwrap();
            }
            if s.can_recv() {
                got += s.recv_slice(&mut reply[got..]).unwrap();
            }
            if got == REPLY_LEN {
                break;
            }
        }
        assert_eq!(got, REPLY_LEN);
        assert_eq!(&reply[..3], b"BAD");
        assert_eq!(u64::from_le_bytes(reply[8..].try_into().unwrap()), 0);
    }

    #[test]
    fn requests_round_trip_and_garbage_is_refused() {
        for op in [Op::Sink, Op::Give, Op::Echo] {
            assert_eq!(parse_request(&request(op, 77)), Some((op, 77)));
        }
        let mut r = request(Op::Sink, 1);
        r[0] = b'X';
        assert_eq!(parse_request(&r), None);
        r = request(Op::Sink, 1);
        r[3] = b'Q';
        assert_eq!(parse_request(&r), None);
    }

    #[test]
    fn the_pattern_is_not_periodic_on_powers_of_two() {
        for p in [256u64, 512, 4096, 65536] {
            assert!((0..1000).any(|i| pattern(i) != pattern(i + p)));
        }
    }
}
