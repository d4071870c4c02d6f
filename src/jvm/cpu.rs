//! What the JVM's process and its sending threads cost, read from /proc before and after a timed section (this
//! process cannot getrusage another). The whole JVM: user and system time, minor and major faults from
//! /proc/PID/stat (every thread, exited ones included; in clock ticks, 10 ms on most kernels), and context switches
//! summed over /proc/PID/task/*/status (threads that exit within the section lose theirs; the JVM's threads live
//! on). Its sending threads apart: CPU time and run-queue wait in nanoseconds (/proc/PID/task/TID/schedstat),
//! migrations (`se.nr_migrations` of .../sched) and the CPU each was last on (.../stat).

use crate::experiment::probe::{Counters, Noise};
use std::collections::BTreeMap;

/// The JVM at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// User and system clock ticks, minor and major faults of the whole process.
    ticks: (u64, u64),
    faults: (u64, u64),
    /// Voluntary and involuntary switches of each thread.
    switches: BTreeMap<i32, (u64, u64)>,
    /// Each sending thread (in the order asked).
    senders: Vec<Thread>,
}

/// One sending thread at one instant.
#[derive(Debug, Clone, Copy, Default)]
struct Thread {
    cpu_ns: Option<u64>,
    runq_wait_ns: Option<u64>,
    migrations: Option<u64>,
    cpu: Option<u32>,
}

/// The fields of a /proc stat line after the command's closing parenthesis (field 3, the state, is index 0).
fn stat_fields(text: &str) -> Vec<&str> {
    text.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// Field `n` (1-based, as proc(5) numbers them) of a stat line's fields.
fn field(fields: &[&str], n: usize) -> Option<u64> {
    fields.get(n.checked_sub(3)?)?.parse().ok()
}

fn read(path: String) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

impl Snapshot {
    /// Reads the JVM `pid` and its sending threads `tids` now.
    pub fn take(pid: i32, tids: &[i32]) -> Snapshot {
        let stat = read(format!("/proc/{pid}/stat")).unwrap_or_default();
        let f = stat_fields(&stat);
        let at = |n| field(&f, n).unwrap_or(0);
        let mut snap = Snapshot {
            ticks: (at(14), at(15)),
            faults: (at(10), at(12)),
            ..Snapshot::default()
        };
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for tid in tasks
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            {
                if let Some(s) = read(format!("/proc/{pid}/task/{tid}/status")) {
                    let count = |key: &str| {
                        s.lines()
                            .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
                            .unwrap_or(0)
                    };
                    let pair = (count("voluntary_ctxt_switches:"), count("nonvoluntary_ctxt_switches:"));
                    snap.switches.insert(tid, pair);
                }
            }
        }
        snap.senders = tids.iter().map(|&tid| Thread::take(pid, tid)).collect();
        snap
    }

    /// From `earlier` to `self`: the whole JVM, its sending threads' CPU seconds (None where /proc lacked them),
    /// and what the scheduler did to the sending threads.
    pub fn since(&self, earlier: &Snapshot) -> (Counters, Option<f64>, Noise) {
        let tick = procfs::ticks_per_second() as f64;
        let mut process = Counters {
            user_s: self.ticks.0.saturating_sub(earlier.ticks.0) as f64 / tick,
            sys_s: self.ticks.1.saturating_sub(earlier.ticks.1) as f64 / tick,
            minor_faults: self.faults.0.saturating_sub(earlier.faults.0),
            major_faults: self.faults.1.saturating_sub(earlier.faults.1),
            ..Counters::default()
        };
        for (tid, (v, n)) in &self.switches {
            // A thread born within the section counts from zero.
            let (v0, n0) = earlier.switches.get(tid).copied().unwrap_or((0, 0));
            process.voluntary_ctxsw += v.saturating_sub(v0);
            process.involuntary_ctxsw += n.saturating_sub(n0);
        }
        let mut noise = Noise::default();
        let mut cpu_ns: Option<u64> = Some(0);
        for (a, b) in earlier.senders.iter().zip(&self.senders) {
            let d = |f: fn(&Thread) -> Option<u64>| Some(f(b)?.saturating_sub(f(a)?));
            cpu_ns = cpu_ns.zip(d(|t| t.cpu_ns)).map(|(x, y)| x + y);
            noise.add(&Noise {
                runq_wait_s: d(|t| t.runq_wait_ns).map(|ns| ns as f64 / 1e9),
                migrations: d(|t| t.migrations),
                cpus: [a.cpu, b.cpu].into_iter().flatten().collect(),
            });
        }
        let cpu_s = cpu_ns.filter(|_| !self.senders.is_empty()).map(|ns| ns as f64 / 1e9);
        (process, cpu_s, noise)
    }
}

impl Thread {
    fn take(pid: i32, tid: i32) -> Thread {
        let base = format!("/proc/{pid}/task/{tid}");
        let schedstat = read(format!("{base}/schedstat")).unwrap_or_default();
        let mut s = schedstat.split_whitespace().map(|x| x.parse::<u64>().ok());
        let (cpu_ns, runq_wait_ns) = (s.next().flatten(), s.next().flatten());
        let migrations = read(format!("{base}/sched")).and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("se.nr_migrations"))
                .and_then(|l| l.rsplit(':').next()?.trim().parse().ok())
        });
        let stat = read(format!("{base}/stat")).unwrap_or_default();
        Thread {
            cpu_ns,
            runq_wait_ns,
            migrations,
            cpu: field(&stat_fields(&stat), 39).map(|c| c as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_of_this_process_shows_its_cpu() {
        let pid = std::process::id() as i32;
        let (to_main, from_worker) = std::sync::mpsc::channel();
        let (to_worker, from_main) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            to_main.send(nix::unistd::gettid().as_raw()).unwrap();
            from_main.recv().unwrap();
            // 60 ms of this thread's own CPU, however long a loaded machine makes it wait for one.
            let cpu = || nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
            let t = cpu();
            let mut x = 1u64;
            while std::time::Duration::from(cpu() - t) < std::time::Duration::from_millis(60) {
                x = x.wrapping_mul(3).wrapping_add(1);
            }
            std::hint::black_box(x);
            to_main.send(0).unwrap();
            from_main.recv().unwrap();
        });
        let tid = from_worker.recv().unwrap();
        let a = Snapshot::take(pid, &[tid]);
        to_worker.send(()).unwrap();
        from_worker.recv().unwrap();
        let b = Snapshot::take(pid, &[tid]);
        to_worker.send(()).unwrap();
        worker.join().unwrap();
        let (process, threads, noise) = b.since(&a);
        let threads = threads.expect("schedstat is readable");
        assert!((0.06..5.0).contains(&threads), "{threads}");
        assert!(process.user_s + process.sys_s >= 0.04, "{process:?}");
        assert!(!noise.cpus.is_empty());
        assert_eq!(field(&stat_fields("1 (a (b) c) S 1 2"), 4), Some(1));
    }
}
