//! Stalled consumers (`run --stalled-consumers N`): a stream whose header says it waits reads nothing until the
//! other streams of its group (one broker repetition) have all their bytes, as a client that stopped reading would;
//! the other streams of the group tell the sink's `Stalls` when their last byte is in. A waiting stream waits at most
//! the sink's idle timeout.

use crate::experiment::wire::{Stall, StreamHeader};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Groups older than this are forgotten (a run that died leaves its group behind).
const FORGET: Duration = Duration::from_secs(600);
/// The most groups remembered at once; the oldest go first.
const MOST: usize = 4096;

/// How many streams of each group have all their bytes.
#[derive(Debug, Default)]
pub struct Stalls {
    groups: Mutex<HashMap<String, (u32, Instant)>>,
    changed: Condvar,
}

impl Stalls {
    /// One more stream of `group` has all its bytes.
    pub fn done(&self, group: &str) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        groups.retain(|_, (_, at)| now.duration_since(*at) < FORGET);
        if groups.len() >= MOST
            && let Some(oldest) = groups.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone())
        {
            groups.remove(&oldest);
        }
        let entry = groups.entry(group.to_string()).or_insert((0, now));
        entry.0 += 1;
        entry.1 = now;
        self.changed.notify_all();
    }

    /// Waits until `others` streams of `group` have all their bytes, or `limit` has passed; true when they have.
    pub fn wait(&self, group: &str, others: u32, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if groups.get(group).is_some_and(|(n, _)| *n >= others) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            groups = self
                .changed
                .wait_timeout(groups, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Tells `Stalls` when a stream that counts for a group has all its bytes.
#[derive(Debug)]
pub struct Whole {
    pub total: u64,
    pub group: String,
    pub stalls: Arc<Stalls>,
}

/// The stall of a stream whose header has one (see `enter`); a wait in vain is logged and the stream goes on.
pub fn begin(header: &StreamHeader, stalls: &Arc<Stalls>, limit: Duration) -> Option<Whole> {
    let stall = header.stall.as_ref()?;
    enter(stall, header.total_bytes(), stalls, limit).unwrap_or_else(|why| {
        super::log::say(format_args!(
            "stream {} of run {}: {why}",
            header.plan.index,
            header.run_id.escape_debug()
        ));
        None
    })
}

/// What a stream of a stall group does: the waiting ones wait now (after the ack and any handshake, before the
/// first byte is read); the others get the `Whole` that tells the group when they are done.
pub fn enter(stall: &Stall, total: u64, stalls: &Arc<Stalls>, limit: Duration) -> Result<Option<Whole>, String> {
    if stall.waits {
        return match stalls.wait(&stall.group, stall.others, limit) {
            true => Ok(None),
            false => Err(format!(
                "a stalled stream waited {} for the other {} streams of its repetition, in vain",
                humantime::format_duration(limit),
                stall.others
            )),
        };
    }
    Ok(Some(Whole {
        total,
        group: stall.group.clone(),
        stalls: Arc::clone(stalls),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_stream_goes_on_once_the_others_are_whole_and_not_before() {
        let stalls = Arc::new(Stalls::default());
        assert!(!stalls.wait("g", 2, Duration::from_millis(20)));
        let s = Arc::clone(&stalls);
        let waiter = std::thread::spawn(move || s.wait("g", 2, Duration::from_secs(30)));
        stalls.done("g");
        stalls.done("other");
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        stalls.done("g");
        assert!(waiter.join().unwrap());
    }
}
