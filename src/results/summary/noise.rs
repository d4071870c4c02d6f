//! What the machine did while a spread or bimodal case ran: its slow repetitions set beside its fast ones on what
//! each row records of the rest of the machine (run-queue waits of the sender's and the sink's threads, steal,
//! migrations, and whether a single sender and its sink ran on one CPU). A line of advice names what tells them
//! apart, or says that nothing recorded does.

use super::{CaseFlag, CaseSummary};
use crate::results::record::Row;
use crate::results::stats::median;
use std::collections::BTreeSet;

/// A share of the timed section (run-queue wait, steal) counts when the slow repetitions had this much more of it
/// than the fast ones, and at least `SHARE_FLOOR` of their time.
const FACTOR: f64 = 1.5;
const SHARE_FLOOR: f64 = 0.03;

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

fn median_of(rows: &[&Row], f: impl Fn(&Row) -> Option<f64>) -> Option<f64> {
    median(&rows.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
}

/// Adds a line to a spread or bimodal case saying what set its slow repetitions apart, if anything recorded did.
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
    if slow.is_empty() || fast.is_empty() {
        return;
    }
    let mut found = Vec::new();
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    if let (Some(s), Some(f)) = (median_of(&slow, wait_share), median_of(&fast, wait_share))
        && s >= SHARE_FLOOR
        && s >= FACTOR * f
    {
        found.push(format!(
            "the slow repetitions' threads waited on a run queue for {} of their timed section (the fast ones' {}): \
             something else wanted these CPUs",
            pct(s),
            pct(f)
        ));
    }
    if let (Some(s), Some(f)) = (median_of(&slow, steal_share), median_of(&fast, steal_share))
        && s >= SHARE_FLOOR
        && s >= FACTOR * f
    {
        found.push(format!(
            "the hypervisor took {} of the CPUs' time during the slow repetitions (steal; the fast ones: {})",
            pct(s),
            pct(f)
        ));
    }
    let together = |rs: &[&Row]| rs.iter().filter(|r| shared_cpu(r) == Some(true)).count();
    let counted = |rs: &[&Row]| rs.iter().filter(|r| shared_cpu(r).is_some()).count();
    let (ts, ns, tf, nf) = (together(&slow), counted(&slow), together(&fast), counted(&fast));
    if ns > 0 && nf > 0 && ts as f64 / ns as f64 >= tf as f64 / nf as f64 + 0.5 {
        found.push(format!(
            "sender and sink ran on one CPU in {ts} of {ns} slow repetitions and {tf} of {nf} fast ones: pin them \
             apart (--sender-cpus, --sink-cpus)"
        ));
    }
    let moves = |r: &Row| Some((r.sender_migrations? + r.sink_migrations.unwrap_or(0)) as f64);
    if let (Some(s), Some(f)) = (median_of(&slow, moves), median_of(&fast, moves))
        && s >= 2.0 * f + 2.0
    {
        found.push(format!(
            "the slow repetitions' threads moved between CPUs {s:.0} times (median; the fast ones {f:.0})"
        ));
    }
    let line = if found.is_empty() {
        format!(
            "what xferbench records of the machine (run-queue waits, steal, migrations, CPUs) does not tell the {} \
             slow repetitions from the {} fast ones",
            slow.len(),
            fast.len()
        )
    } else {
        found.join("; ")
    };
    case.advice.push(line);
}
