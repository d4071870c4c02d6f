//! Admission: the sink's main thread accepts every connection and holds it in one event loop (epoll) until its
//! whole header is in. Only then does a connection cost a thread, and only if the header passes (magic, version,
//! limits, token): anything else is refused by the loop itself, at once.
//!
//! A stranger can open connections and send nothing, or a byte a second, for free; what keeps them from blocking
//! the sink is that the header phase is bounded twice over. Each connection has `header_timeout` from its accept
//! to deliver its whole header, however it trickles. And the phase holds at most `max_pending` connections: when a
//! new one arrives to a full table, the oldest connection of the source that holds the most is dropped. A run
//! sends its header at once after connecting (one round trip) and opens its streams one after another, so it
//! holds at most one place at a time: a flood from another host never pushes it out, and one from its own host
//! only if the flood opens `max_pending` connections while that one header is on its way. Streams already
//! admitted have their threads and their own cap (`listen::MAX_OPEN`); nothing in this loop touches them.

use crate::experiment::wire::{HeaderReader, StreamHeader};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The header phase's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From accept to the header's last byte.
    pub header_timeout: Duration,
    /// Connections in the header phase at once.
    pub max_pending: usize,
}

/// A connection whose header is in and parsed; the sink decides whether it becomes a stream.
pub struct Arrival {
    pub sock: TcpStream,
    pub peer: String,
    pub header: StreamHeader,
}

/// Where a connection comes from, for sharing out the header phase: an IPv4 address, or an IPv6 /64 (what one
/// host is usually given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4(u32),
    V6(u64),
}

impl Source {
    fn of(addr: &SocketAddr) -> Source {
        match addr.ip().to_canonical() {
            IpAddr::V4(ip) => Source::V4(ip.to_bits()),
            IpAddr::V6(ip) => Source::V6((ip.to_bits() >> 64) as u64),
        }
    }
}

struct Pending {
    sock: TcpStream,
    peer: SocketAddr,
    since: Instant,
    reader: HeaderReader,
}

/// The epoll token of the listening socket; connections are numbered from 0 in order of arrival.
const LISTENER: u64 = u64::MAX;
/// Accepts per wake-up, so that reading headers is never starved by a flood of connects.
const ACCEPT_BATCH: usize = 256;
/// How long the listener rests when the process has no file descriptor left and nothing to drop.
const FD_REST: Duration = Duration::from_millis(100);

/// The header phase: the listener, every connection still sending its header, and when each arrived.
pub struct Admission {
    epoll: Epoll,
    listener: TcpListener,
    limits: Limits,
    /// In order of arrival, which is also the order of their deadlines.
    pending: BTreeMap<u64, Pending>,
    by_source: HashMap<Source, BTreeSet<u64>>,
    next: u64,
    listener_rests_until: Option<Instant>,
    log: super::log::Log,
}

impl Admission {
    pub fn new(listener: TcpListener, limits: Limits) -> std::io::Result<Admission> {
        listener.set_nonblocking(true)?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(&listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))?;
        Ok(Admission {
            epoll,
            listener,
            limits,
            pending: BTreeMap::new(),
            by_source: HashMap::new(),
            next: 0,
            listener_rests_until: None,
            log: super::log::Log::default(),
        })
    }

    /// Serves forever: each connection whose header is in goes to `admit`, which starts its stream or gives the
    /// socket back with the reason it is refused; `refusal` is the line a refused connection is sent.
    pub fn serve(
        &mut self,
        refusal: impl Fn(&str) -> Vec<u8>,
        mut admit: impl FnMut(Arrival) -> Result<(), (TcpStream, String)>,
    ) -> std::io::Result<()> {
        let mut events = vec![EpollEvent::empty(); 512];
        loop {
            let now = Instant::now();
            let n = match self.epoll.wait(&mut events, self.wake_in(now)) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => return Err(e.into()),
            };
            for event in &events[..n] {
                match event.data() {
                    LISTENER => self.accept_some(&refusal, &mut admit),
                    seq => self.read(seq, &refusal, &mut admit),
                }
            }
            let now = Instant::now();
            self.expire(now);
            self.rest_over(now);
            self.log.tick(now);
        }
    }

    /// How long epoll may sleep: until the oldest header's deadline, the listener's rest, or the log's next
    /// summary, whichever is first.
    fn wake_in(&self, now: Instant) -> EpollTimeout {
        let deadline = self
            .pending
            .values()
            .next()
            .map(|p| p.since + self.limits.header_timeout);
        let wake = [deadline, self.listener_rests_until, self.log.due()]
            .into_iter()
            .flatten()
            .min();
        match wake {
            None => EpollTimeout::NONE,
            // Rounded up to the millisecond, so that a deadline is never woken for a moment too early.
            Some(at) => {
                let ms = at.saturating_duration_since(now).as_micros().div_ceil(1000);
                EpollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(EpollTimeout::MAX)
            }
        }
    }

    /// Accepts what is waiting, up to a batch, and reads each new connection's header as far as it has come.
    fn accept_some(
        &mut self,
        refusal: &impl Fn(&str) -> Vec<u8>,
        admit: &mut impl FnMut(Arrival) -> Result<(), (TcpStream, String)>,
    ) {
        for _ in 0..ACCEPT_BATCH {
            let (sock, peer) = match self.listener.accept() {
                Ok(conn) => conn,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    // No descriptor left for the connection waiting: the oldest header-phase one makes room, or,
                    // with none, the listener rests a moment (it would wake epoll at once, over and over).
                    match self.pending.keys().next().copied() {
                        Some(oldest) => {
                            self.drop_pending(oldest, Leave::PushedOut("the sink ran out of file descriptors"));
                            continue;
                        }
                        None => {
                            self.log.line(format_args!("accept: {e}; pausing {FD_REST:?}"));
                            self.rest();
                            return;
                        }
                    }
                }
                // ECONNABORTED and the like: that connection is gone, the next may be fine.
                Err(_) => continue,
            };
            if sock.set_nonblocking(true).is_err() {
                continue;
            }
            if self.pending.len() >= self.limits.max_pending
                && let Some(victim) = self.victim()
            {
                self.drop_pending(
                    victim,
                    Leave::PushedOut("pushed out of the header phase by newer connections"),
                );
            }
            let seq = self.next;
            self.next += 1;
            if self
                .epoll
                .add(
                    &sock,
                    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, seq),
                )
                .is_err()
            {
                continue;
            }
            self.by_source.entry(Source::of(&peer)).or_default().insert(seq);
            self.pending.insert(
                seq,
                Pending {
                    sock,
                    peer,
                    since: Instant::now(),
                    reader: HeaderReader::default(),
                },
            );
            // A sender writes its header right after connecting: it is often here already.
            self.read(seq, refusal, admit);
        }
    }

    /// The connection to drop for a newcomer: the oldest of the source holding the most places (oldest first
    /// among equals).
    fn victim(&self) -> Option<u64> {
        self.by_source
            .values()
            .filter_map(|seqs| Some((seqs.len(), *seqs.first()?)))
            .max_by(|(n1, s1), (n2, s2)| n1.cmp(n2).then(s2.cmp(s1)))
            .map(|(_, seq)| seq)
    }

    /// Reads what has arrived of `seq`'s header, never past it; hands a whole header on, refuses a bad one.
    fn read(
        &mut self,
        seq: u64,
        refusal: &impl Fn(&str) -> Vec<u8>,
        admit: &mut impl FnMut(Arrival) -> Result<(), (TcpStream, String)>,
    ) {
        let Some(p) = self.pending.get_mut(&seq) else { return };
        let outcome = loop {
            let space = p.reader.space();
            match (&p.sock).read(space) {
                Ok(0) => break Err(Leave::Closed),
                Ok(n) => match p.reader.advance(n) {
                    Ok(Some(header)) => break Ok(header),
                    Ok(None) => continue,
                    Err(e) => break Err(Leave::Refused(e.to_string())),
                },
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(Leave::Failed(e.to_string())),
            }
        };
        match outcome {
            Ok(header) => {
                let p = self.take(seq).expect("pending");
                let _ = self.epoll.delete(&p.sock);
                let peer = p.peer.to_string();
                let arrival = Arrival {
                    peer: peer.clone(),
                    header,
                    sock: p.sock,
                };
                if let Err((sock, why)) = admit(arrival) {
                    send_now(&sock, &refusal(&why));
                    self.log.rejected(&peer, &why, |d| d.refused += 1);
                }
            }
            Err(Leave::Refused(why)) => {
                if let Some(p) = self.pending.get(&seq) {
                    send_now(&p.sock, &refusal(&why));
                }
                self.drop_pending(seq, Leave::Refused(why));
            }
            Err(other) => self.drop_pending(seq, other),
        }
    }

    /// Closes every connection whose header did not come in time.
    fn expire(&mut self, now: Instant) {
        let limit = self.limits.header_timeout;
        while let Some((&seq, p)) = self.pending.iter().next() {
            if now < p.since + limit {
                break;
            }
            self.drop_pending(seq, Leave::TimedOut(limit));
        }
    }

    /// Takes `seq` out of the header phase (its socket goes with it).
    fn take(&mut self, seq: u64) -> Option<Pending> {
        let p = self.pending.remove(&seq)?;
        let source = Source::of(&p.peer);
        if let Some(seqs) = self.by_source.get_mut(&source) {
            seqs.remove(&seq);
            if seqs.is_empty() {
                self.by_source.remove(&source);
            }
        }
        Some(p)
    }

    fn drop_pending(&mut self, seq: u64, why: Leave) {
        let Some(p) = self.take(seq) else { return };
        // Closing the descriptor takes it out of epoll too.
        let peer = p.peer.to_string();
        drop(p);
        match why {
            Leave::TimedOut(limit) => self.log.rejected(
                &peer,
                &format!("no complete header within {}", humantime::format_duration(limit)),
                |d| d.timed_out += 1,
            ),
            Leave::PushedOut(why) => self.log.rejected(&peer, why, |d| d.pushed_out += 1),
            Leave::Refused(why) => self.log.rejected(&peer, &why, |d| d.refused += 1),
            Leave::Closed => self
                .log
                .rejected(&peer, "closed before sending a complete header", |d| d.closed += 1),
            Leave::Failed(e) => self
                .log
                .rejected(&peer, &format!("no complete header ({e})"), |d| d.closed += 1),
        }
    }

    fn rest(&mut self) {
        if self.listener_rests_until.is_none() && self.epoll.delete(&self.listener).is_ok() {
            self.listener_rests_until = Some(Instant::now() + FD_REST);
        }
    }

    fn rest_over(&mut self, now: Instant) {
        if self.listener_rests_until.is_some_and(|t| now >= t) {
            self.listener_rests_until = None;
            let _ = self
                .epoll
                .add(&self.listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER));
        }
    }
}

/// Why a connection left the header phase without becoming a stream.
enum Leave {
    TimedOut(Duration),
    PushedOut(&'static str),
    Refused(String),
    Closed,
    Failed(String),
}

/// Sends `line` if the socket takes it at once, else nothing: a refusal never waits on its peer.
fn send_now(sock: &TcpStream, line: &[u8]) {
    use nix::sys::socket::{MsgFlags, send};
    let _ = send(sock.as_raw_fd(), line, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL);
}
