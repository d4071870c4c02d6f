//! What the machine did while a spread or bimodal case ran: its slow repetitions set beside its fast ones on what
//! each row records of the rest of the machine, each as a rate of the repetition's own timed section so that
//! repetitions of different lengths compare (run-queue waits and steal as shares of the time, migrations per
//! second, whether a single sender and its sink shared a CPU). A difference counts when the exact rank interval of
//! it between the two sides (`stats::difference_interval`, at 95%) lies above 0 and it is large besides; that needs
//! at least `SIDE_MIN` repetitions a side (3 and 3 reach 90% at most, so in practice 4 a side, or 3 and 5). The
//! note says what coincided with the slow repetitions, not what caused them, or that nothing recorded tells them
//! apart, or that there were too few to tell.

use super::{CaseFlag, CaseSummary};
use crate::results::record::Row;
use crate::results::stats::{difference_interval, median, percent_floor};
use std::collections::BTreeSet;

/// A share of the timed section (run-queue wait, steal) counts when the slow repetitions had this much more of it
/// than the fast ones, and at least `SHARE_FLOOR` of their time.
const FACTOR: f64 = 1.5;
const SHARE_FLOOR: f64 = 0.03;
/// Fewest repetitions on each side (slow, fast) for any comparison.
const SIDE_MIN: usize = 3;

fn cpus(text: &str) -> BTreeSet<u32> {
    text.split(',').filter_map(|c| c.trim().parse().ok()).collect()
}

/// A single sender thread and the sink's thread were seen on one CPU.
fn shared_cpu(r: &Row) -> Option<bool> {
    let (s, k) = (cpus(&r.sender_cpus_seen), cpus(&r.sink_cpus_seen));
    (r.connections() == 1 && !s.is_empty() && !k.is_empty()).then(|| !s.is_disjoint(&k))
}

fn share(v: Option<f64>, r: &Row) -> Option<f64> {
    (r.wall_s > 0.0).then(|| v.map(|x| x / r.wall_s)).flatten()
}

fn wait_share(r: &Row) -> Option<f64> {
    share(r.sender_runq_wait_s.map(|s| s + r.sink_runq_wait_s.unwrap_or(0.0)), r)
}

fn steal_share(r: &Row) -> Option<f64> {
    share(r.steal_s.map(|s| s / f64::from(r.logical_cpus.max(1))), r)
}

/// Migrations of the sender's and the sink's threads per second of the timed section.
fn moves_per_s(r: &Row) -> Option<f64> {
    share(
        r.sender_migrations.map(|s| (s + r.sink_migrations.unwrap_or(0)) as f64),
        r,
    )
}

/// The slow and the fast repetitions of a case.
struct Sides<'a> {
    slow: Vec<&'a Row>,
    fast: Vec<&'a Row>,
}

/// A rate the slow repetitions had more of, beyond the noise: (slow median, fast median, the interval of the
/// difference in words).
struct More {
    slow: f64,
    fast: f64,
    interval: String,
}

impl Sides<'_> {
    /// Where the interval of slow minus fast of `f` lies above 0.
    fn more(&self, f: impl Fn(&Row) -> Option<f64>, unit: impl Fn(f64) -> String) -> Option<More> {
        let s: Vec<f64> = self.slow.iter().filter_map(|r| f(r)).collect();
        let q: Vec<f64> = self.fast.iter().filter_map(|r| f(r)).collect();
        if s.len() < SIDE_MIN || q.len() < SIDE_MIN {
            return None;
        }
        let d = difference_interval(&q, &s)?;
        (d.lo > 0.0).then(|| More {
            slow: median(&s).unwrap_or(0.0),
            fast: median(&q).unwrap_or(0.0),
            interval: format!(
                "{} more, {} to {} at {}",
                unit(d.median),
                unit(d.lo),
                unit(d.hi),
                percent_floor(d.level)
            ),
        })
    }
}

/// Each thing recorded that the slow repetitions had more of, in words.
fn coincided(sides: &Sides) -> Vec<String> {
    let mut found = Vec::new();
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    if let Some(m) = sides.more(wait_share, |x| format!("{:.0} points", x * 100.0))
        && m.slow >= SHARE_FLOOR
        && m.slow >= FACTOR * m.fast
    {
        found.push(format!(
            "the slow repetitions' threads waited on a run queue for {} of their timed section, the fast ones' {} ({}): \
             the slow repetitions coincided with waiting for a CPU",
            pct(m.slow),
            pct(m.fast),
            m.interval
        ));
    }
    if let Some(m) = sides.more(steal_share, |x| format!("{:.0} points", x * 100.0))
        && m.slow >= SHARE_FLOOR
        && m.slow >= FACTOR * m.fast
    {
        found.push(format!(
            "the hypervisor took {} of the CPUs' time during the slow repetitions (steal; the fast ones: {}; {})",
            pct(m.slow),
            pct(m.fast),
            m.interval
        ));
    }
    let together = |rs: &[&Row]| rs.iter().filter(|r| shared_cpu(r) == Some(true)).count();
    let counted = |rs: &[&Row]| rs.iter().filter(|r| shared_cpu(r).is_some()).count();
    let (ts, ns, tf, nf) = (
        together(&sides.slow),
        counted(&sides.slow),
        together(&sides.fast),
        counted(&sides.fast),
    );
    if ns >= SIDE_MIN && nf >= SIDE_MIN && ts as f64 / ns as f64 >= tf as f64 / nf as f64 + 0.5 {
        found.push(format!(
            "sender and sink ran on one CPU in {ts} of {ns} slow repetitions and {tf} of {nf} fast ones (pinning them \
             apart, --sender-cpus and --sink-cpus, tells whether it matters)"
        ));
    }
    if let Some(m) = sides.more(moves_per_s, |x| format!("{x:.1}/s"))
        && m.slow >= 2.0 * m.fast
    {
        found.push(format!(
            "the slow repetitions' threads moved between CPUs {:.1} times a second (median; the fast ones {:.1}; {})",
            m.slow, m.fast, m.interval
        ));
    }
    found
}

/// Adds a line to a spread or bimodal case saying what coincided with its slow repetitions, if anything recorded
/// did.
pub fn explain(case: &mut CaseSummary, rows: &[&Row]) {
    if !case
        .flags
        .iter()
        .any(|f| matches!(f, CaseFlag::Spread | CaseFlag::Bimodal))
    {
        return;
    }
    let ok: Vec<&Row> = rows.iter().copied().filter(|r| r.is_ok()).collect();
    if !ok.iter().any(|r| r.sender_runq_wait_s.is_some() || r.steal_s.is_some()) {
        return; // a set from before xferbench recorded the machine's noise
    }
    // Slow and fast: either side of the gap between the modes, else of the median.
    let cut = match (case.modes, case.metrics.throughput_mb_s) {
        (Some(m), _) => (m.low_median * m.high_median).sqrt(),
        (None, Some(t)) => t.median,
        _ => return,
    };
    let (slow, fast): (Vec<&Row>, Vec<&Row>) = ok.iter().partition(|r| r.throughput_mb_s < cut);
    let sides = Sides { slow, fast };
    let (ns, nf) = (sides.slow.len(), sides.fast.len());
    let line = if ns < SIDE_MIN || nf < SIDE_MIN {
        format!(
            "{ns} slow and {nf} fast repetition(s): too few on a side ({SIDE_MIN} at least) to tell what coincided with \
             the slow ones"
        )
    } else {
        let found = coincided(&sides);
        if found.is_empty() {
            format!(
                "what xferbench records of the machine (run-queue waits, steal, migrations, CPUs) does not tell the \
                 {ns} slow repetitions from the {nf} fast ones"
            )
        } else {
            found.join("; ")
        }
    };
    case.advice.push(line);
}
