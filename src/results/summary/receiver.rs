//! Who limited a case, the sender or the receiver: receive modes set side by side, and the two rules that flag
//! a case `receiver-bound`. Both say what coincided with the case's rate, from at least `SIDE_MIN` repetitions:
//!
//! 1. Same sender, cheaper receiver: when the same case (strategy, threads, chunk, layout, cache, file) ran with
//!    more than one `--rx-mode`, the MB/s of a mode that skips the receiver's copy (trunc, splice) is divided by
//!    `copy`'s round by round; when that paired ratio's interval lies above 1 and its median reaches `MODE_GAIN`,
//!    the copy case is flagged: the same sender went faster whenever the receiver did not copy.
//! 2. Busy receiver: when the sink's stream threads were on a CPU for a median of at least `BUSY_RATIO` of the wall
//!    time each (sink CPU seconds / (wall seconds x streams), a per-second rate, the `sink_busy_ratio` metric), the
//!    receiver had no time to spare while the case ran, whatever the mode.

use super::{CaseFlag, CaseSummary, by_round};
use crate::base::model::{CaseKey, RxMode};
use crate::base::units::format_rate_mb_s;
use crate::results::record::Row;
use crate::results::stats::{Estimate, paired_ratios, percent_floor};
use std::collections::BTreeMap;

/// A mode without the receiver's copy this much faster than `copy` (the paired ratio's median, its interval above
/// 1) means the receiver limited `copy`.
pub const MODE_GAIN: f64 = 1.25;
/// Sink threads busy this fraction of the wall time (one core each) means the receiver limited the case.
pub const BUSY_RATIO: f64 = 0.9;
/// Fewest repetitions (or paired rounds) a side for either rule.
pub const SIDE_MIN: usize = 3;

/// The receiving threads' CPU over the wall time of one core per stream (the `sink_busy_ratio` metric): near 1,
/// the receiver was busy all along. Checking threads (`--verify-on thread`) run beside them and are left out.
pub fn busy(r: &Row) -> Option<f64> {
    let cpu = r.sink_user_s? + r.sink_sys_s? - r.sink_checker_cpu_s.unwrap_or(0.0);
    (r.wall_s > 0.0).then(|| cpu / (r.wall_s * f64::from(r.connections())))
}

fn rx(case: &CaseSummary) -> String {
    case.key.receiver.map_or("theirs".into(), |(m, _)| m.to_string())
}

/// Rule 2 for one case, from its rows.
fn busy_receiver(case: &mut CaseSummary, rows: &[&Row]) {
    let values: Vec<f64> = rows.iter().filter(|r| r.is_ok()).filter_map(|r| busy(r)).collect();
    let Some(e) = Estimate::of_median(&values) else { return };
    if e.n >= SIDE_MIN && e.median >= BUSY_RATIO {
        let advice = format!(
            "sink threads on a CPU {:.0}% of the wall time (median of {} repetitions, {:.0}-{:.0}% at {}; rx {}): the \
             receiver had no time to spare while this case ran",
            e.median * 100.0,
            e.n,
            e.lo * 100.0,
            e.hi * 100.0,
            percent_floor(e.level),
            rx(case)
        );
        case.flag(CaseFlag::ReceiverBound, advice);
    }
}

/// Applies both rules and adds one comparison line per group of cases that differ only by receive mode.
pub fn compare(cases: &mut [CaseSummary], rows: &BTreeMap<CaseKey, Vec<&Row>>) {
    for case in cases.iter_mut() {
        if let Some(r) = rows.get(&case.key) {
            busy_receiver(case, r);
        }
    }
    let mut groups: BTreeMap<CaseKey, Vec<usize>> = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        if c.key.receiver.is_some() {
            groups.entry(c.key.without_rx_mode()).or_default().push(i);
        }
    }
    let mode = |c: &CaseSummary| c.key.receiver.map(|(m, _)| m);
    for members in groups.values().filter(|m| m.len() > 1) {
        let rate = |i: usize| cases[i].metrics.throughput_mb_s.map(|s| s.median);
        let line = members
            .iter()
            .map(|&i| {
                let r = rate(i).map(format_rate_mb_s).unwrap_or_else(|| "failed".into());
                format!("{} {r}", rx(&cases[i]))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let copy = members.iter().copied().find(|&i| mode(&cases[i]) == Some(RxMode::Copy));
        let first = copy.unwrap_or(members[0]);
        cases[first].advice.push(format!("receive modes: {line}"));
        let Some(c) = copy else { continue };
        let rounds = |i: usize| rows.get(&cases[i].key).map(|r| by_round(r)).unwrap_or_default();
        let copy_rounds = rounds(c);
        // The cheaper mode whose paired ratio to copy is largest.
        let best = members
            .iter()
            .copied()
            .filter(|&i| mode(&cases[i]) != Some(RxMode::Copy))
            .filter_map(|i| Some((i, Estimate::of_median(&paired_ratios(&rounds(i), &copy_rounds))?)))
            .max_by(|a, b| a.1.median.total_cmp(&b.1.median));
        if let Some((b, e)) = best
            && e.n >= SIDE_MIN
            && e.lo > 1.0
            && e.median >= MODE_GAIN
        {
            let advice = format!(
                "the same sender moved {} the MB/s with rx {} (paired by round, {} rounds, {}): it went faster \
                 whenever the receiver skipped its copy",
                e.interval_text(crate::results::stats::DEFAULT_SAME_WITHIN),
                rx(&cases[b]),
                e.n,
                percent_floor(e.level)
            );
            cases[c].flag(CaseFlag::ReceiverBound, advice);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::base::model::Status;
    use crate::results::record::Row;
    use crate::results::summary::{CaseFlag, summarise};

    fn row(rx: &str, mb_s: f64, sink_cpu_s: f64, round: u32) -> Row {
        Row {
            path: "sendfile".parse().unwrap(),
            threads: 1,
            rx_mode: Some(rx.parse().unwrap()),
            rx_buffer_bytes: Some(1 << 18),
            file_bytes: 1_000_000_000,
            passes: 1,
            round,
            repetition: round,
            throughput_mb_s: mb_s,
            wall_s: 1000.0 / mb_s,
            sink_user_s: Some(0.0),
            sink_sys_s: Some(sink_cpu_s),
            status: Status::Ok,
            ..Row::default()
        }
    }

    /// `rounds` rounds of copy and of `other`, each MB/s and sink CPU seconds jittering a little per round.
    fn pairs(rounds: u32, other: &str, copy_mb_s: f64, other_mb_s: f64) -> Vec<Row> {
        (1..=rounds)
            .flat_map(|r| {
                let j = 1.0 + 0.02 * f64::from(r % 3);
                [row("copy", copy_mb_s * j, 0.5, r), row(other, other_mb_s / j, 0.1, r)]
            })
            .collect()
    }

    #[test]
    fn a_faster_cheap_receiver_flags_copy() {
        let cases = summarise(&pairs(4, "trunc", 600.0, 3000.0));
        assert!(cases[0].flags.contains(&CaseFlag::ReceiverBound), "{:?}", cases[0]);
        let advice = cases[0].advice.join("\n");
        assert!(advice.contains("receive modes: copy 612 MB/s"), "{advice}");
        assert!(
            advice.contains("with rx trunc (paired by round, 4 rounds, 87%)"),
            "{advice}"
        );
        assert!(!cases[1].flags.contains(&CaseFlag::ReceiverBound));
        // One or two rounds a side are too few, however far apart.
        let cases = summarise(&pairs(2, "trunc", 600.0, 3000.0));
        assert!(
            !cases[0].flags.contains(&CaseFlag::ReceiverBound),
            "{:?}",
            cases[0].flags
        );
    }

    #[test]
    fn modes_alike_flag_nothing() {
        let cases = summarise(&pairs(6, "splice", 1000.0, 1100.0));
        assert!(cases.iter().all(|c| !c.flags.contains(&CaseFlag::ReceiverBound)));
        assert!(cases[0].advice.iter().any(|a| a.starts_with("receive modes:")));
    }

    #[test]
    fn a_busy_sink_is_flagged_alone() {
        // 1 GB at 1000 MB/s is 1 s of wall; 0.95 s of sink CPU on one stream, in three repetitions.
        let busy: Vec<Row> = (1..=3).map(|r| row("copy", 1000.0, 0.95, r)).collect();
        let cases = summarise(&busy);
        assert!(cases[0].flags.contains(&CaseFlag::ReceiverBound), "{:?}", cases[0]);
        assert!(
            cases[0].advice[0].contains("median of 3 repetitions"),
            "{:?}",
            cases[0].advice
        );
        // One repetition is too few; an idle sink is no flag.
        assert!(summarise(&busy[..1])[0].flags.is_empty());
        let idle: Vec<Row> = (1..=3).map(|r| row("copy", 1000.0, 0.5, r)).collect();
        assert!(summarise(&idle)[0].flags.is_empty(), "{:?}", summarise(&idle)[0].flags);
    }
}
