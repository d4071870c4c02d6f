//! Drives one method over every connection of a case: one thread per connection, each with its own file
//! descriptor and transfer, released together by a barrier so that set-up (open, buffers, mappings, thread start)
//! stays out of the timed section.
//!
//! A repetition runs as one span of `passes` passes back to back, or, when every pass must start cold, as one span
//! per pass: each stream then waits for the sink's word that the pass arrived whole (`PassNotice`), so that the
//! runner can evict the file between spans, outside the timed section.

use super::{CallStats, Control, Io, SendError, SendOptions, Transfer, prepare, send_pass};
use crate::base::model::Method;
use crate::experiment::probe::{Counters, Noise, Sched, Snapshot};
use crate::experiment::tcp::TcpInfo;
use crate::experiment::wire::{self, PassNotice, StreamPlan};
use anyhow::Context;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a case must end, and where its threads run.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    pub deadline: Instant,
    /// The run's stop flag (SIGINT, SIGTERM).
    pub stop: &'a AtomicBool,
    /// CPUs to pin every sender thread to.
    pub cpus: Option<&'a [usize]>,
    /// Show the current rate on stderr while a span runs longer than `PROGRESS_AFTER`.
    pub progress: bool,
}

/// A span that runs longer than this shows its rate as it goes (`Limits::progress`).
const PROGRESS_AFTER: Duration = Duration::from_secs(3);

/// The connections of a case with their transfers set up.
pub struct Streams<'a> {
    transfers: Vec<Box<dyn Transfer>>,
    stats: Vec<CallStats>,
    plans: &'a [StreamPlan],
    socks: &'a [TcpStream],
}

/// What one span did.
#[derive(Debug)]
pub struct Span {
    /// System snapshot taken just before the streams were released.
    pub before: Snapshot,
    /// The sender process (all threads) from release to the last stream's end.
    pub sender: Counters,
    /// When the first stream started sending after the release, and when the last one's last call returned.
    pub started: Instant,
    pub last_sent: Instant,
    /// System snapshot taken once every notice arrived (when notices were asked): the pass is whole at the sink.
    pub after: Option<Snapshot>,
    /// Per stream, the sink's notice of the span's last pass and when it arrived (when notices were asked).
    pub notices: Vec<Option<(PassNotice, Instant)>>,
    /// Streams that failed, with why; the first is the cause, later ones often follow from it.
    pub errors: Vec<(u32, SendError)>,
    /// What the scheduler did to the sender's threads over the span (run-queue waits, migrations, CPUs).
    pub noise: Noise,
    /// Each connection's TCP_INFO once its last pass of the span went (None where it could not be read).
    pub tcp: Vec<Option<TcpInfo>>,
}

/// What one stream's thread brings back from a span.
struct StreamDone {
    /// The sink's notice of the last pass and when it came (with notices), or why the stream failed.
    result: Result<Option<(PassNotice, Instant)>, SendError>,
    started: Instant,
    /// When its last call of the last pass returned.
    sent: Instant,
    noise: Noise,
    tcp: Option<TcpInfo>,
}

/// One stream's passes, from the release on: each pass through `send_pass`, the transfer's end after the last
/// (with `last`), and the sink's notice after each pass (with `notices`).
fn send_stream(
    transfer: &mut dyn Transfer,
    mut io: Io<'_>,
    plan: &StreamPlan,
    passes: u32,
    notices: bool,
    last: bool,
) -> StreamDone {
    let started = Instant::now();
    let mut sent = started;
    let result = (|| {
        let mut notice = None;
        for pass in 1..=passes {
            send_pass(transfer, &mut io, plan)?;
            if last && pass == passes {
                transfer.end(&mut io)?;
            }
            sent = Instant::now();
            if notices {
                notice = Some((read_notice(io.sock, io.ctl)?, Instant::now()));
            }
        }
        Ok(notice)
    })();
    StreamDone {
        result,
        started,
        sent,
        noise: Noise::default(),
        tcp: None,
    }
}

impl Span {
    /// The span from the streams' returns, in stream order; the errors with their cause first.
    fn gather(before: Snapshot, sender: Counters, after: Option<Snapshot>, streams: Vec<StreamDone>) -> Span {
        let now = Instant::now();
        let mut span = Span {
            before,
            sender,
            started: streams.iter().map(|s| s.started).min().unwrap_or(now),
            last_sent: streams.iter().map(|s| s.sent).max().unwrap_or(now),
            after,
            notices: Vec::with_capacity(streams.len()),
            errors: Vec::new(),
            noise: Noise::default(),
            tcp: Vec::with_capacity(streams.len()),
        };
        for (i, s) in streams.into_iter().enumerate() {
            span.noise.add(&s.noise);
            span.tcp.push(s.tcp);
            match s.result {
                Ok(n) => span.notices.push(n),
                Err(e) => {
                    span.notices.push(None);
                    span.errors.push((i as u32, e));
                }
            }
        }
        // The cause first: streams stopped by a sibling's failure report `Interrupted` after it.
        span.errors.sort_by_key(|(_, e)| matches!(e, SendError::Interrupted));
        span
    }
}

impl<'a> Streams<'a> {
    /// Opens the file once per connection and builds each connection's transfer (a TLS method on the session
    /// of its connection, from `sessions`).
    pub fn prepare(
        method: Method,
        path: &Path,
        plans: &'a [StreamPlan],
        socks: &'a [TcpStream],
        opts: &SendOptions,
        sessions: Vec<Option<rustls::ClientConnection>>,
    ) -> anyhow::Result<Streams<'a>> {
        assert_eq!(plans.len(), socks.len(), "one plan per connection");
        let mut transfers = Vec::with_capacity(plans.len());
        let sessions = sessions.into_iter().chain(std::iter::repeat_with(|| None));
        for (sock, session) in socks.iter().zip(sessions) {
            let file = File::open(path).with_context(|| format!("cannot open '{}'", path.display()))?;
            transfers.push(prepare(method, file, sock, opts, session)?);
        }
        // What path runs and with which cipher is settled by the set-up: recorded here, not in the timed loop.
        let stats = transfers
            .iter()
            .map(|t| CallStats {
                fallback: t.fallback(),
                tls_cipher: t.tls_cipher(),
                ..CallStats::default()
            })
            .collect();
        Ok(Streams {
            stats,
            transfers,
            plans,
            socks,
        })
    }

    /// Sends `passes` passes of every stream's plan, one thread per connection; with `notices`, each stream then
    /// waits for the sink's word that the last pass arrived; with `last`, each stream ends (`Transfer::end`).
    pub fn run(&mut self, passes: u32, notices: bool, last: bool, limits: Limits) -> anyhow::Result<Span> {
        let Limits {
            deadline,
            stop,
            cpus,
            progress,
        } = limits;
        let barrier = Barrier::new(self.plans.len() + 1);
        let abort = AtomicBool::new(false);
        let (sent_bytes, done) = (AtomicU64::new(0), AtomicBool::new(false));
        let work = self
            .transfers
            .iter_mut()
            .zip(self.stats.iter_mut())
            .zip(self.socks.iter().zip(self.plans));
        let (results, before) = std::thread::scope(|scope| -> anyhow::Result<_> {
            let mut handles = Vec::with_capacity(self.plans.len());
            for ((transfer, stats), (sock, plan)) in work {
                let (barrier, abort, sent_bytes) = (&barrier, &abort, &sent_bytes);
                handles.push(scope.spawn(move || {
                    if let Some(cpus) = cpus {
                        pin_current_thread(cpus);
                    }
                    let ctl = Control {
                        deadline,
                        stop,
                        abort,
                        sent: Some(sent_bytes),
                    };
                    let sched = Sched::thread();
                    barrier.wait();
                    let io = Io { sock, stats, ctl: &ctl };
                    let mut done = send_stream(transfer.as_mut(), io, plan, passes, notices, last);
                    if done.result.is_err() {
                        abort.store(true, Ordering::Relaxed);
                    }
                    done.noise = Noise::between(&sched, &Sched::thread());
                    done.tcp = crate::experiment::tcp::tcp_info(sock).ok();
                    done
                }));
            }
            let before = Snapshot::take();
            barrier.wait();
            let monitor = progress.then(|| scope.spawn(|| show_progress(&sent_bytes, &done)));
            let results: Vec<_> = handles
                .into_iter()
                .map(|h| h.join().expect("sender threads do not panic"))
                .collect();
            done.store(true, Ordering::Relaxed);
            if let Some(m) = monitor {
                let _ = m.join();
            }
            Ok((results, before?))
        })?;
        let sender = Counters::process().since(&before.process());
        let after = if notices { Some(Snapshot::take()?) } else { None };
        Ok(Span::gather(before, sender, after, results))
    }

    /// Lets go of what keeps the file's pages resident (before a pass that must start cold).
    pub fn release_pages(&mut self) {
        self.transfers.iter_mut().for_each(|t| t.release_pages());
    }

    /// Every stream's counts merged.
    pub fn stats(&self) -> CallStats {
        let mut all = CallStats::default();
        self.stats.iter().for_each(|s| all.merge(s));
        all
    }
}

/// While a span runs longer than `PROGRESS_AFTER`: one line a second on stderr with the rate of the last second and
/// what has gone so far, as iperf3's interval reports do.
fn show_progress(sent: &AtomicU64, done: &AtomicBool) {
    let start = Instant::now();
    let (mut last_t, mut last_b) = (start, 0u64);
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let now = Instant::now();
        if now.duration_since(start) < PROGRESS_AFTER || now.duration_since(last_t) < Duration::from_secs(1) {
            continue;
        }
        let b = sent.load(Ordering::Relaxed);
        let rate = (b - last_b) as f64 / 1e6 / now.duration_since(last_t).as_secs_f64();
        eprintln!(
            "    ... {} now, {} in {:.1} s",
            crate::base::units::format_rate_mb_s(rate),
            crate::base::units::format_bytes(b),
            now.duration_since(start).as_secs_f64()
        );
        (last_t, last_b) = (now, b);
    }
}

/// Longest the stop flag, a sibling's failure and the deadline go unchecked while waiting for a notice.
const SLICE: Duration = Duration::from_millis(200);

/// Waits for the sink's one-line notice of a pass, reading exactly that line (the report may follow it): what is
/// peeked before the newline is part of the line and is taken as it comes, so a sink that closes mid-line is seen
/// at once rather than peeked at until the deadline.
pub fn read_notice(sock: &TcpStream, ctl: &Control) -> Result<PassNotice, SendError> {
    let io_err = |e: std::io::Error| SendError::Io {
        call: "recv(pass notice)",
        errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    };
    let mut line = Vec::with_capacity(128);
    let mut peeked = [0u8; wire::MAX_NOTICE_BYTES];
    loop {
        ctl.check()?;
        let room = wire::MAX_NOTICE_BYTES - line.len();
        if room == 0 {
            return Err(SendError::Peer("the sink's pass notice is too long".into()));
        }
        sock.set_read_timeout(Some(SLICE)).map_err(io_err)?;
        match sock.peek(&mut peeked[..room]) {
            Ok(0) => {
                return Err(SendError::Peer(match line.is_empty() {
                    true => "the sink closed the connection before the pass's notice".into(),
                    false => "the sink closed the connection in the middle of the pass's notice".into(),
                }));
            }
            Ok(n) => {
                let end = peeked[..n].iter().position(|&b| b == b'\n');
                let take = end.map_or(n, |e| e + 1);
                let at = line.len();
                line.resize(at + take, 0);
                (&*sock).read_exact(&mut line[at..]).map_err(io_err)?;
                if end.is_some() {
                    let notice: PassNotice = serde_json::from_slice(&line)
                        .map_err(|e| SendError::Peer(format!("the sink's pass notice does not parse: {e}")))?;
                    return notice
                        .check()
                        .map(|()| notice)
                        .map_err(|why| SendError::Peer(format!("the sink's pass notice makes no sense: {why}")));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(io_err(e)),
        }
    }
}

/// Pins the calling thread to `cpus`; a failure (a CPU not in this cgroup) is reported, not fatal.
pub fn pin_current_thread(cpus: &[usize]) {
    use nix::sched::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    for &c in cpus {
        let _ = set.set(c);
    }
    if let Err(e) = sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
        eprintln!("xferbench: warning: cannot pin to CPUs {cpus:?}: {e}");
    }
}
