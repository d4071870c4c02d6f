//! Snapshots of what the kernel counts, taken before and after a timed section, and their difference.
//!
//! The sender's own CPU, faults and context switches come from getrusage(RUSAGE_SELF): it sums every thread,
//! those that already exited included, at microsecond resolution (/proc/PID/stat counts in 10 ms ticks and
//! /proc/PID/status only the main thread's switches). System-wide softirq time and context switches come from
//! /proc/stat through procfs: loopback TCP does much of its work in softirq, which no process is charged for.

use nix::sys::resource::{Usage, UsageWho, getrusage};
use procfs::{CurrentSI, KernelStats};

/// Counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    usage: Counters,
    softirq_ticks: u64,
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
            system_ctxsw: self.system_ctxsw.saturating_sub(earlier.system_ctxsw),
            tcp_retrans_segs: match (self.tcp_retrans_segs, earlier.tcp_retrans_segs) {
                (Some(now), Some(then)) => Some(now.saturating_sub(then)),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_burnt_shows_up() {
        let before = Snapshot::take().unwrap();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 60 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let d = Snapshot::take().unwrap().since(&before);
        assert!(d.process.user_s + d.process.sys_s > 0.03, "{d:?}");
        assert!(d.system_ctxsw > 0 || d.process.involuntary_ctxsw == 0);
    }
}
