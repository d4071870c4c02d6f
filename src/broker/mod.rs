//! A broker's shape (`broker-<method>`): one hot file served whole to each of many consumers by a few network
//! threads, as a Kafka broker serves a log segment from the page cache. Consumers are dealt to the threads in turn
//! (consumer k to thread k mod N, as Kafka's acceptor hands connections to its processors); each thread is one epoll
//! loop over its consumers' non-blocking sockets (`serve`), sending each writable consumer at most one fetch
//! (`--fetch-size`) before it moves on; how the bytes go is the method's `Path` (`paths`).
//!
//! What is not emulated: no fetch requests travel (a consumer's next fetch is served as soon as its socket takes
//! it, with no request round trip and no request-handler thread), and every consumer starts at the file's start.
//!
//! The room sits above `experiment` (it builds on its strategies' pieces: TLS sessions, kTLS, the stream plans, the
//! span a repetition is measured over) and below `commands`, whose runner drives it like `Streams`.

mod paths;
mod serve;

use crate::base::model::Method;
use crate::experiment::probe::{Counters, Noise, Sched, Snapshot};
use crate::experiment::strategy::streams::{Limits, Span, pin_current_thread, show_progress};
use crate::experiment::strategy::{CallStats, Control, SendError};
use anyhow::Context as _;
use serve::{Ask, Consumer, ThreadDone};
use std::fs::File;
use std::net::TcpStream;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How a broker case is shaped.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub network_threads: u32,
    /// The most one visit sends to one consumer.
    pub fetch_bytes: u64,
    /// Bytes asked of each read by the read paths.
    pub read_bytes: u64,
}

/// The consumers of a case, dealt to their network threads, with their paths set up.
pub struct Broker<'a> {
    /// Per network thread: its consumers, and its counts.
    threads: Vec<(Vec<Consumer<'a>>, CallStats)>,
    fetch_bytes: u64,
}

impl<'a> Broker<'a> {
    /// Opens the file once per consumer and builds each consumer's path (a TLS method on its connection's
    /// session, from `sessions`); `file_bytes` is what one pass carries.
    pub fn prepare(
        method: Method,
        path: &std::path::Path,
        file_bytes: u64,
        socks: &'a [TcpStream],
        shape: Shape,
        sessions: Vec<Option<rustls::ClientConnection>>,
    ) -> anyhow::Result<Broker<'a>> {
        let n = (shape.network_threads.max(1) as usize).min(socks.len().max(1));
        let mut threads: Vec<(Vec<Consumer>, CallStats)> = (0..n).map(|_| (Vec::new(), CallStats::default())).collect();
        let sessions = sessions.into_iter().chain(std::iter::repeat_with(|| None));
        for (k, (sock, session)) in socks.iter().zip(sessions).enumerate() {
            let file = File::open(path).with_context(|| format!("cannot open '{}'", path.display()))?;
            let p = paths::prepare(method, file, sock, usize::try_from(shape.read_bytes)?, session)?;
            let (consumers, stats) = &mut threads[k % n];
            // What path runs and with which cipher is settled by the set-up: recorded here, not in the loop.
            if stats.fallback.is_none() {
                stats.fallback = p.fallback();
            }
            if stats.tls_cipher.is_none() {
                stats.tls_cipher = p.tls_cipher();
            }
            consumers.push(Consumer::new(k as u32, sock, p, file_bytes));
        }
        Ok(Broker {
            threads,
            fetch_bytes: shape.fetch_bytes,
        })
    }

    /// Sends `passes` passes of the file to every consumer, each network thread over its own; with `notices`,
    /// each consumer then waits for the sink's word that its last pass arrived; with `last`, each stream ends.
    pub fn run(&mut self, passes: u32, notices: bool, last: bool, limits: Limits) -> anyhow::Result<Span> {
        let barrier = Barrier::new(self.threads.len() + 1);
        let abort = AtomicBool::new(false);
        let (sent, done) = (AtomicU64::new(0), AtomicBool::new(false));
        let ask = Ask {
            passes,
            notices,
            last,
            fetch_bytes: self.fetch_bytes,
            sent: &sent,
        };
        let ctl = Control {
            deadline: limits.deadline,
            stop: limits.stop,
            abort: &abort,
            sent: None,
        };
        let (threads, before) = std::thread::scope(|scope| -> anyhow::Result<_> {
            let mut handles = Vec::with_capacity(self.threads.len());
            for (consumers, stats) in self.threads.iter_mut() {
                let (barrier, ask, ctl) = (&barrier, &ask, &ctl);
                handles.push(scope.spawn(move || {
                    if let Some(cpus) = limits.cpus {
                        pin_current_thread(cpus);
                    }
                    let sched = Sched::thread();
                    barrier.wait();
                    serve::serve(consumers, stats, ask, ctl, &sched)
                }));
            }
            let before = Snapshot::take();
            barrier.wait();
            let monitor = limits.progress.then(|| scope.spawn(|| show_progress(&sent, &done)));
            let threads: Vec<ThreadDone> = handles
                .into_iter()
                .map(|h| h.join().expect("network threads do not panic"))
                .collect();
            done.store(true, Ordering::Relaxed);
            if let Some(m) = monitor {
                let _ = m.join();
            }
            Ok((threads, before?))
        })?;
        let sender = Counters::process().since(&before.process());
        let after = if notices { Some(Snapshot::take()?) } else { None };
        Ok(span(before, sender, after, threads))
    }

    /// Every network thread's counts merged.
    pub fn stats(&self) -> CallStats {
        let mut all = CallStats::default();
        self.threads.iter().for_each(|(_, s)| all.merge(s));
        all
    }
}

/// The span from the network threads' returns, its per-stream parts in consumer order, the errors with their cause
/// first.
fn span(before: Snapshot, sender: Counters, after: Option<Snapshot>, threads: Vec<ThreadDone>) -> Span {
    let now = std::time::Instant::now();
    let mut noise = Noise::default();
    threads.iter().for_each(|t| noise.add(&t.noise));
    let started = threads.iter().map(|t| t.started).min().unwrap_or(now);
    let mut consumers: Vec<serve::ConsumerDone> = threads.into_iter().flat_map(|t| t.consumers).collect();
    consumers.sort_by_key(|c| c.index);
    let n = consumers.len();
    let last_sent = consumers.iter().filter_map(|c| c.sent).max().unwrap_or(started);
    let mut span = Span {
        before,
        sender,
        started,
        last_sent,
        after,
        notices: Vec::with_capacity(n),
        errors: Vec::new(),
        noise,
        tcp: Vec::with_capacity(n),
    };
    for c in consumers {
        span.tcp.push(c.tcp);
        match c.result {
            Ok(notice) => span.notices.push(notice),
            Err(e) => {
                span.notices.push(None);
                span.errors.push((c.index, e));
            }
        }
    }
    span.errors.sort_by_key(|(_, e)| matches!(e, SendError::Interrupted));
    span
}
