//! One network thread: one epoll loop (level-triggered, as Java's selector) over the non-blocking sockets of its
//! consumers. Each time a consumer's socket is writable the thread sends it the rest of its current fetch, until
//! the fetch has gone or the socket is full, and moves on to the next ready consumer; a consumer whose socket stays
//! full (one that stopped reading) is simply not ready, and holds back nobody else.

use super::paths::{Calls, Path, Progress};
use crate::experiment::probe::{Noise, Sched};
use crate::experiment::strategy::streams::read_notice;
use crate::experiment::strategy::{CallStats, Control, SendError};
use crate::experiment::tcp::TcpInfo;
use crate::experiment::wire::PassNotice;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Longest the stop flag, a failure elsewhere and the deadline go unchecked while every socket is full.
const WAIT_MS: u16 = 200;

/// Where a consumer is within a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Sending,
    /// Its last pass has gone; its path's end (a TLS close_notify) is still to go.
    Ending,
    Done,
}

/// One consumer: its connection, its path, and how far it has got.
pub struct Consumer<'a> {
    pub index: u32,
    pub sock: &'a TcpStream,
    pub path: Box<dyn Path>,
    /// Bytes one pass carries (the whole file).
    pub per_pass: u64,
    passes_left: u32,
    at: u64,
    fetch_left: u64,
    stage: Stage,
    last_sent: Option<Instant>,
}

impl<'a> Consumer<'a> {
    pub fn new(index: u32, sock: &'a TcpStream, path: Box<dyn Path>, per_pass: u64) -> Consumer<'a> {
        Consumer {
            index,
            sock,
            path,
            per_pass,
            passes_left: 0,
            at: 0,
            fetch_left: 0,
            stage: Stage::Done,
            last_sent: None,
        }
    }
}

/// What a span asks of every consumer.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub passes: u32,
    /// Wait for the sink's notice of the last pass.
    pub notices: bool,
    /// The stream's last span: end each stream (TLS close_notify).
    pub last: bool,
    pub fetch_bytes: u64,
    /// Bytes sent so far by every consumer of the case, for the progress line.
    pub sent: &'a AtomicU64,
}

/// What one consumer brings back from a span.
pub struct ConsumerDone {
    pub index: u32,
    /// The sink's notice of its last pass and when it came (with notices), or why it failed.
    pub result: Result<Option<(PassNotice, Instant)>, SendError>,
    /// When its last byte of the span went into the socket.
    pub sent: Option<Instant>,
    pub tcp: Option<TcpInfo>,
}

/// What one network thread brings back from a span.
pub struct ThreadDone {
    pub started: Instant,
    pub noise: Noise,
    pub consumers: Vec<ConsumerDone>,
}

/// What a visit to one ready consumer came to.
enum Visit {
    /// A fetch went: on to the next ready consumer (this one stays ready).
    Moved,
    /// Its socket is full.
    Blocked,
    /// Nothing more to send this span.
    Done,
}

/// Runs one network thread's share of a span, from the release on; `sched` was read before the release.
pub fn serve(consumers: &mut [Consumer], stats: &mut CallStats, ask: &Ask, ctl: &Control, sched: &Sched) -> ThreadDone {
    let started = Instant::now();
    for c in consumers.iter_mut() {
        (c.passes_left, c.at, c.fetch_left, c.stage) = (ask.passes, 0, ask.fetch_bytes, Stage::Sending);
        c.last_sent = None;
    }
    let mut results: Vec<Result<(), SendError>> = vec![Ok(()); consumers.len()];
    if let Err(e) = run_loop(consumers, &mut results, stats, ask, ctl) {
        for (c, r) in consumers.iter().zip(results.iter_mut()) {
            if c.stage != Stage::Done && r.is_ok() {
                *r = Err(e.clone());
            }
        }
    }
    let noise = Noise::between(sched, &Sched::thread());
    let consumers = consumers
        .iter()
        .zip(results)
        .map(|(c, result)| {
            // Back to blocking: the notices and the reports are read with timeouts of their own.
            let back = c.sock.set_nonblocking(false);
            let result = result.and_then(|()| {
                back.map_err(|e| SendError::Setup(format!("cannot make the socket blocking again: {e}")))?;
                match ask.notices {
                    true => Ok(Some((read_notice(c.sock, ctl)?, Instant::now()))),
                    false => Ok(None),
                }
            });
            ConsumerDone {
                index: c.index,
                result,
                sent: c.last_sent,
                tcp: crate::experiment::tcp::tcp_info(c.sock).ok(),
            }
        })
        .collect();
    ThreadDone {
        started,
        noise,
        consumers,
    }
}

/// The epoll loop until every consumer is done or has failed; an error that ends them all (stop, deadline, a
/// failure elsewhere, epoll itself) is returned.
fn run_loop(
    consumers: &mut [Consumer],
    results: &mut [Result<(), SendError>],
    stats: &mut CallStats,
    ask: &Ask,
    ctl: &Control,
) -> Result<(), SendError> {
    let setup = |what: &str, e: nix::errno::Errno| SendError::Setup(format!("{what}: {e}"));
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| setup("epoll_create", e))?;
    for (i, c) in consumers.iter().enumerate() {
        c.sock
            .set_nonblocking(true)
            .map_err(|e| SendError::Setup(format!("cannot make the socket non-blocking: {e}")))?;
        epoll
            .add(c.sock, EpollEvent::new(EpollFlags::EPOLLOUT, i as u64))
            .map_err(|e| setup("epoll_ctl", e))?;
    }
    let mut open = consumers.len();
    let mut events = vec![EpollEvent::empty(); consumers.len().max(1)];
    let mut calls = Calls { stats };
    while open > 0 {
        ctl.check()?;
        let ready = calls.count("epoll_wait", || epoll.wait(&mut events, EpollTimeout::from(WAIT_MS)))?;
        for ev in &events[..ready.unwrap_or(0)] {
            let i = ev.data() as usize;
            let c = &mut consumers[i];
            let visit = match c.stage {
                Stage::Done => continue,
                _ => visit(c, &mut calls, ask),
            };
            match visit {
                Ok(Visit::Moved | Visit::Blocked) => continue,
                Ok(Visit::Done) => {}
                Err(e) => {
                    c.stage = Stage::Done;
                    results[i] = Err(e);
                    // One consumer's failure fails the repetition: the others stop at once too.
                    ctl.abort.store(true, Ordering::Relaxed);
                }
            }
            let _ = epoll.delete(c.sock);
            open -= 1;
        }
    }
    Ok(())
}

/// Sends one ready consumer the rest of its fetch, or as much as its socket takes.
fn visit(c: &mut Consumer, calls: &mut Calls, ask: &Ask) -> Result<Visit, SendError> {
    let copies = c.path.user_copies();
    loop {
        match c.stage {
            Stage::Done => return Ok(Visit::Done),
            Stage::Ending => {
                return match c.path.end(calls, c.sock)? {
                    Progress::Blocked => Ok(Visit::Blocked),
                    Progress::Sent(_) => {
                        c.stage = Stage::Done;
                        c.last_sent = Some(Instant::now());
                        Ok(Visit::Done)
                    }
                };
            }
            Stage::Sending => {}
        }
        if c.at == c.per_pass {
            // A pass is whole; a fetch never runs across the end of the file.
            c.last_sent = Some(Instant::now());
            c.passes_left -= 1;
            if c.passes_left == 0 {
                c.stage = if ask.last { Stage::Ending } else { Stage::Done };
                continue;
            }
            (c.at, c.fetch_left) = (0, ask.fetch_bytes);
            return Ok(Visit::Moved);
        }
        let len = c.fetch_left.min(c.per_pass - c.at);
        match c.path.send(calls, c.sock, c.at, len)? {
            Progress::Blocked => return Ok(Visit::Blocked),
            Progress::Sent(n) => {
                c.at += n;
                c.fetch_left -= n;
                calls.stats.bytes += n;
                calls.stats.user_copy_bytes += n * copies;
                ask.sent.fetch_add(n, Ordering::Relaxed);
                if c.fetch_left == 0 {
                    c.fetch_left = ask.fetch_bytes;
                    if c.at < c.per_pass {
                        return Ok(Visit::Moved);
                    }
                }
            }
        }
    }
}
