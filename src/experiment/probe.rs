//! Snapshots of what the kernel counts, taken before and after a timed section, and their difference.
//!
//! The sender's own CPU, faults and context switches come from getrusage(RUSAGE_SELF): it sums every thread,
//! those that already exited included, at microsecond resolution (/proc/PID/stat counts in 10 ms ticks and
//! /proc/PID/status only the main thread's switches). System-wide softirq time and context switches come from
//! /proc/stat through procfs: loopback TCP does much of its work in softirq, which no process is charged for.

use nix::sys::resource::{Usage, UsageWho, getrusage};
use procfs::{CurrentSI, KernelStats};
use std::collections::BTreeSet;

/// Counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    usage: Counters,
    softirq_ticks: u64,
    /// Time the hypervisor ran others on these CPUs (None where /proc/stat has no such column).
    steal_ticks: Option<u64>,
    system_ctxsw: u64,
    /// TCP segments retransmitted in this network namespace (/proc/net/snmp), when readable.
    tcp_retrans_segs: Option<u64>,
}

/// Resource usage of the calling process (all threads) or thread.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    pub user_s: f64,
    pub sys_s: f64,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub voluntary_ctxsw: u64,
    pub involuntary_ctxsw: u64,
}

impl Counters {
    fn from_usage(u: &Usage) -> Counters {
        let secs = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        Counters {
            user_s: secs(u.user_time()),
            sys_s: secs(u.system_time()),
            minor_faults: u.minor_page_faults() as u64,
            major_faults: u.major_page_faults() as u64,
            voluntary_ctxsw: u.voluntary_context_switches() as u64,
            involuntary_ctxsw: u.involuntary_context_switches() as u64,
        }
    }

    /// The whole calling process.
    pub fn process() -> Counters {
        getrusage(UsageWho::RUSAGE_SELF)
            .map(|u| Counters::from_usage(&u))
            .unwrap_or_default()
    }

    /// The calling thread only.
    pub fn thread() -> Counters {
        getrusage(UsageWho::RUSAGE_THREAD)
            .map(|u| Counters::from_usage(&u))
            .unwrap_or_default()
    }

    /// Adds another thread's (or interval's) counters to these.
    pub fn add(&mut self, other: &Counters) {
        self.user_s += other.user_s;
        self.sys_s += other.sys_s;
        self.minor_faults += other.minor_faults;
        self.major_faults += other.major_faults;
        self.voluntary_ctxsw += other.voluntary_ctxsw;
        self.involuntary_ctxsw += other.involuntary_ctxsw;
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            user_s: (self.user_s - earlier.user_s).max(0.0),
            sys_s: (self.sys_s - earlier.sys_s).max(0.0),
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
            major_faults: self.major_faults.saturating_sub(earlier.major_faults),
            voluntary_ctxsw: self.voluntary_ctxsw.saturating_sub(earlier.voluntary_ctxsw),
            involuntary_ctxsw: self.involuntary_ctxsw.saturating_sub(earlier.involuntary_ctxsw),
        }
    }
}

/// What changed between two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Delta {
    /// The sender process, all threads.
    pub process: Counters,
    /// System-wide softirq CPU time (resolution: one clock tick, usually 10 ms, per CPU).
    pub softirq_s: f64,
    /// System-wide steal time, all CPUs (same resolution).
    pub steal_s: Option<f64>,
    /// System-wide context switches.
    pub system_ctxsw: u64,
    /// TCP segments retransmitted in the sender's network namespace (all sockets, not only the run's).
    pub tcp_retrans_segs: Option<u64>,
}

impl Delta {
    /// Adds another interval's changes to these.
    pub fn add(&mut self, other: &Delta) {
        self.process.add(&other.process);
        self.softirq_s += other.softirq_s;
        self.steal_s = match (self.steal_s, other.steal_s) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.system_ctxsw += other.system_ctxsw;
        self.tcp_retrans_segs = match (self.tcp_retrans_segs, other.tcp_retrans_segs) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
}

impl Snapshot {
    /// Takes a snapshot; /proc/stat must be readable (it is on every Linux the tool supports).
    pub fn take() -> anyhow::Result<Snapshot> {
        use anyhow::Context;
        let stat = KernelStats::current().context("cannot read /proc/stat")?;
        Ok(Snapshot {
            usage: Counters::process(),
            softirq_ticks: stat.total.softirq.unwrap_or(0),
            steal_ticks: stat.total.steal,
            system_ctxsw: stat.ctxt,
            tcp_retrans_segs: procfs::net::snmp().ok().map(|s| s.tcp_retrans_segs),
        })
    }

    /// The process part of a snapshot, for a delta taken at another moment than the system part.
    pub fn process(&self) -> Counters {
        self.usage
    }

    /// Differences from `earlier` to `self`.
    pub fn since(&self, earlier: &Snapshot) -> Delta {
        Delta {
            process: self.usage.since(&earlier.usage),
            softirq_s: self.softirq_ticks.saturating_sub(earlier.softirq_ticks) as f64
                / procfs::ticks_per_second() as f64,
            steal_s: match (self.steal_ticks, earlier.steal_ticks) {
                (Some(now), Some(then)) => Some(now.saturating_sub(then) as f64 / procfs::ticks_per_second() as f64),
                _ => None,
            },
            system_ctxsw: self.system_ctxsw.saturating_sub(earlier.system_ctxsw),
            tcp_retrans_segs: match (self.tcp_retrans_segs, earlier.tcp_retrans_segs) {
                (Some(now), Some(then)) => Some(now.saturating_sub(then)),
                _ => None,
            },
        }
    }
}

/// What the scheduler has done to the calling thread so far: how long it waited on a run queue, runnable but not
/// running (/proc/thread-self/schedstat), how often it moved to another CPU (`se.nr_migrations` of
/// /proc/thread-self/sched, where the kernel has it), and the CPU it is on now.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sched {
    runq_wait_ns: Option<u64>,
    migrations: Option<u64>,
    cpu: Option<u32>,
}

impl Sched {
    /// The calling thread's, read now (about 20 µs: outside the timed section wherever it is taken).
    pub fn thread() -> Sched {
        let runq_wait_ns = std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse().ok());
        let migrations = std::fs::read_to_string("/proc/thread-self/sched").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("se.nr_migrations"))
                .and_then(|l| l.rsplit(':').next()?.trim().parse().ok())
        });
        Sched {
            runq_wait_ns,
            migrations,
            cpu: nix::sched::sched_getcpu().ok().map(|c| c as u32),
        }
    }
}

/// What the scheduler did to some threads over an interval: run-queue waits and migrations summed, and every CPU
/// they were seen on (at the interval's start and end).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Noise {
    pub runq_wait_s: Option<f64>,
    pub migrations: Option<u64>,
    pub cpus: BTreeSet<u32>,
}

impl Noise {
    /// One thread's, from `a` to `b`.
    pub fn between(a: &Sched, b: &Sched) -> Noise {
        Noise {
            runq_wait_s: b
                .runq_wait_ns
                .zip(a.runq_wait_ns)
                .map(|(b, a)| b.saturating_sub(a) as f64 / 1e9),
            migrations: b.migrations.zip(a.migrations).map(|(b, a)| b.saturating_sub(a)),
            cpus: [a.cpu, b.cpu].into_iter().flatten().collect(),
        }
    }

    /// Adds another thread's (or interval's).
    pub fn add(&mut self, other: &Noise) {
        self.runq_wait_s = match (self.runq_wait_s, other.runq_wait_s) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.migrations = match (self.migrations, other.migrations) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.cpus.extend(&other.cpus);
    }

    /// The CPUs seen, `0,1`.
    pub fn cpus_text(&self) -> String {
        self.cpus.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cpu_burnt_shows_up() {
        // Burn 60 ms of this thread's own CPU time (however long a loaded machine takes to give it), not 60 ms of
        // the clock on the wall.
        let thread_cpu = || {
            let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
            Duration::from(t)
        };
        let before = Snapshot::take().unwrap();
        let start = thread_cpu();
        let mut x = 0u64;
        while thread_cpu() - start < Duration::from_millis(60) {
            for _ in 0..10_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
        }
        std::hint::black_box(x);
        let d = Snapshot::take().unwrap().since(&before);
        assert!(d.process.user_s + d.process.sys_s >= 0.05, "{d:?}");
        assert!(d.system_ctxsw > 0 || d.process.involuntary_ctxsw == 0);
        assert!(d.steal_s.is_some_and(|s| s >= 0.0), "{d:?}");
    }

    #[test]
    fn a_thread_that_waits_for_a_cpu_shows_its_wait() {
        // Two more busy threads than CPUs, pinned to one CPU: each must wait on the run queue.
        let pinned = |ms: u64| {
            std::thread::spawn(move || {
                crate::experiment::strategy::streams::pin_current_thread(&[0]);
                let a = Sched::thread();
                let t = std::time::Instant::now();
                let mut x = 1u64;
                while t.elapsed().as_millis() < u128::from(ms) {
                    x = x.wrapping_mul(3).wrapping_add(1);
                }
                std::hint::black_box(x);
                Noise::between(&a, &Sched::thread())
            })
        };
        let threads: Vec<_> = (0..3).map(|_| pinned(150)).collect();
        let noise: Vec<Noise> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let mut all = Noise::default();
        noise.iter().for_each(|n| all.add(n));
        if let Some(wait) = all.runq_wait_s {
            assert!(wait > 0.05, "three threads on one CPU waited only {wait} s");
        }
        assert_eq!(all.cpus_text(), "0");
    }
}
