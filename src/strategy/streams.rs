//! Drives one method over every connection of a case: one thread per connection, each with its own file
//! descriptor, released together by a barrier so that set-up (open, buffers, mappings, thread start) stays out of
//! the timed section.

use super::{CallStats, Control, Method, SendError, SendOptions, prepare};
use crate::probe::{Counters, Snapshot};
use crate::wire::StreamPlan;
use anyhow::Context;
use std::fs::File;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What the streams of one case did.
#[derive(Debug)]
pub struct Outcome {
    /// Every stream's counts merged.
    pub stats: CallStats,
    /// Streams that failed, with why; the first is the cause, later ones often follow from it.
    pub errors: Vec<(u32, SendError)>,
    /// System snapshot taken just before the streams were released.
    pub before: Snapshot,
    /// The sender process (all threads) from release to the last stream's end.
    pub sender: Counters,
    /// Release time (the start of the timed section) and the last stream's end.
    pub released: Instant,
    pub finished: Instant,
}

/// CPUs to pin sender threads to.
pub type CpuList = [usize];

/// When a case must end, and where its threads run.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    pub deadline: Instant,
    /// The run's stop flag (SIGINT, SIGTERM).
    pub stop: &'a AtomicBool,
    /// CPUs to pin every sender thread to.
    pub cpus: Option<&'a CpuList>,
}

/// Sends every plan over its connection, one thread each.
pub fn run(
    method: Method,
    path: &Path,
    plans: &[StreamPlan],
    socks: &[TcpStream],
    opts: &SendOptions,
    limits: Limits,
) -> anyhow::Result<Outcome> {
    let Limits { deadline, stop, cpus } = limits;
    assert_eq!(plans.len(), socks.len(), "one plan per connection");
    let mut senders = Vec::with_capacity(plans.len());
    for _ in plans {
        let file = File::open(path).with_context(|| format!("cannot open '{}'", path.display()))?;
        senders.push(prepare(method, file, opts)?);
    }
    let barrier = Barrier::new(plans.len() + 1);
    let abort = AtomicBool::new(false);
    let (results, before, released) = std::thread::scope(|scope| -> anyhow::Result<_> {
        let mut handles = Vec::with_capacity(plans.len());
        for ((mut sender, sock), plan) in senders.into_iter().zip(socks).zip(plans) {
            let (barrier, abort) = (&barrier, &abort);
            handles.push(scope.spawn(move || {
                if let Some(cpus) = cpus {
                    pin_current_thread(cpus);
                }
                let ctl = Control { deadline, stop, abort };
                let mut stats = CallStats::default();
                barrier.wait();
                let result = sender.send(sock, plan, &mut stats, &ctl);
                if result.is_err() {
                    abort.store(true, Ordering::Relaxed);
                }
                (stats, result)
            }));
        }
        let before = Snapshot::take();
        let released = Instant::now();
        barrier.wait();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("sender threads do not panic"))
            .collect();
        Ok((results, before?, released))
    })?;
    let finished = Instant::now();
    let sender = Counters::process().since(&before.process());
    let mut stats = CallStats::default();
    let mut errors = Vec::new();
    for (i, (s, r)) in results.into_iter().enumerate() {
        stats.merge(&s);
        if let Err(e) = r {
            errors.push((i as u32, e));
        }
    }
    // The cause first: streams stopped by a sibling's failure report `Interrupted` after it.
    errors.sort_by_key(|(_, e)| matches!(e, SendError::Interrupted));
    Ok(Outcome {
        stats,
        errors,
        before,
        sender,
        released,
        finished,
    })
}

/// Pins the calling thread to `cpus`; a failure (a CPU not in this cgroup) is reported, not fatal.
pub fn pin_current_thread(cpus: &CpuList) {
    use nix::sched::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    for &c in cpus {
        let _ = set.set(c);
    }
    if let Err(e) = sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
        eprintln!("xferbench: warning: cannot pin to CPUs {cpus:?}: {e}");
    }
}
