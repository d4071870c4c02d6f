//! A broker case's consumers in the notes: how evenly the network threads served them (each consumer's MB/s, the
//! slowest and the fastest, Jain's index) and how long the slowest took beside the median one, and a flag when a
//! consumer got less than half the median consumer's MB/s in some repetition.

use super::{CaseFlag, CaseSummary};
use crate::base::model::Flag;
use crate::base::units::format_rate_mb_s;
use crate::results::record::Row;

/// Adds the consumers' line to a broker case's notes, and the flag where a consumer fell behind.
pub fn explain(case: &mut CaseSummary, rows: &[&Row]) {
    let Some(consumers) = case.key.consumers else { return };
    let m = &case.metrics;
    if let (Some(lo), Some(hi), Some(jain), Some(slow), Some(mid)) = (
        m.consumer_min_mb_s,
        m.consumer_max_mb_s,
        m.consumer_jain,
        m.consumer_slowest_s,
        m.consumer_median_s,
    ) {
        let stalled = rows
            .iter()
            .find_map(|r| r.stalled_consumers)
            .map(|n| format!(" ({n} told to stall)"))
            .unwrap_or_default();
        let plural = |n: u32, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let advice = format!(
            "{}{stalled} over {}: each got {} to {} (medians over repetitions of the \
             slowest and the fastest), Jain's index {:.3}; the slowest consumer took {:.3} s, the median one {:.3} s",
            plural(consumers.count, "consumer"),
            plural(case.key.threads, "network thread"),
            format_rate_mb_s(lo.median),
            format_rate_mb_s(hi.median),
            jain.median,
            slow.median,
            mid.median
        );
        case.advice.push(advice);
    }
    let behind = rows
        .iter()
        .filter(|r| r.is_ok() && r.flags.has(Flag::ConsumerBehind))
        .count();
    if behind > 0 {
        let advice = format!(
            "in {behind} of {} repetition(s) a consumer got less than half the median consumer's MB/s: see \
             consumers.csv for which, and its last byte beside the others'",
            case.ok_runs
        );
        case.flag(CaseFlag::ConsumerBehind, advice);
    }
}

/// What the table's broker cases mean, under its legend (nothing when it has none).
pub fn legend(cases: &[CaseSummary]) -> &'static str {
    match cases.iter().any(|c| c.key.consumers.is_some()) {
        true => {
            "broker-X →N = a broker's network threads serving the whole file to each of N consumers; its median is \
             every consumer's bytes over the time to the last one's last byte, its vs sf the ratio to broker-sendfile \
             with the same consumers, network threads and fetch size; chunk = the fetch size (sendfile paths) or \
             the size of each read (read paths).\n"
        }
        false => "",
    }
}
