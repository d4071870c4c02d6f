//! Who limited a case, the sender or the receiver: receive modes set side by side, and the two rules that flag
//! a case `receiver-bound`.
//!
//! 1. Same sender, cheaper receiver: when the same case (strategy, threads, chunk, layout, cache, file) ran with
//!    more than one `--rx-mode`, and a mode that skips the receiver's copy (trunc, splice) reached at least
//!    `MODE_GAIN` times the median MB/s of `copy`, the copy case is flagged: its sender could go faster.
//! 2. Busy receiver: when the sink's stream threads were on a CPU for at least `BUSY_RATIO` of the wall time
//!    each (sink CPU seconds / (wall seconds x streams), the `sink_busy_ratio` metric), the receiver was the
//!    bottleneck whatever the mode.

use super::{CaseFlag, CaseSummary};
use crate::base::model::{CaseKey, RxMode};
use crate::base::units::format_rate_mb_s;
use std::collections::BTreeMap;

/// A mode without the receiver's copy this much faster than `copy` means the receiver limited `copy`.
pub const MODE_GAIN: f64 = 1.25;
/// Sink threads busy this fraction of the wall time (one core each) means the receiver limited the case.
pub const BUSY_RATIO: f64 = 0.9;

fn rx(case: &CaseSummary) -> String {
    case.key.receiver.map_or("theirs".into(), |(m, _)| m.to_string())
}

/// Applies both rules and adds one comparison line per group of cases that differ only by receive mode.
pub fn compare(cases: &mut [CaseSummary]) {
    for case in cases.iter_mut() {
        if let Some(busy) = case.metrics.sink_busy_ratio
            && busy.median >= BUSY_RATIO
        {
            let advice = format!(
                "sink threads busy {:.0}% of the wall time (rx {}): the receiver, not the sender, limited this case",
                busy.median * 100.0,
                rx(case)
            );
            case.flag(CaseFlag::ReceiverBound, advice);
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
        let best = members
            .iter()
            .copied()
            .filter(|&i| mode(&cases[i]) != Some(RxMode::Copy))
            .filter_map(|i| Some((i, rate(i)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let slow = copy.and_then(rate);
        let first = copy.unwrap_or(members[0]);
        cases[first].advice.push(format!("receive modes: {line}"));
        if let (Some(c), Some((b, fast)), Some(slow)) = (copy, best, slow)
            && slow > 0.0
            && fast >= MODE_GAIN * slow
        {
            let advice = format!(
                "the same sender ran {:.2}x faster with rx {}: the receiver's copy, not the sender, limited this case",
                fast / slow,
                rx(&cases[b])
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

    fn row(rx: &str, mb_s: f64, sink_cpu_s: f64) -> Row {
        Row {
            path: "sendfile".parse().unwrap(),
            threads: 1,
            rx_mode: Some(rx.parse().unwrap()),
            rx_buffer_bytes: Some(1 << 18),
            file_bytes: 1_000_000_000,
            passes: 1,
            throughput_mb_s: mb_s,
            wall_s: 1000.0 / mb_s,
            sink_user_s: Some(0.0),
            sink_sys_s: Some(sink_cpu_s),
            status: Status::Ok,
            ..Row::default()
        }
    }

    #[test]
    fn a_faster_cheap_receiver_flags_copy() {
        let cases = summarise(&[row("copy", 600.0, 0.5), row("trunc", 3000.0, 0.1)]);
        assert!(cases[0].flags.contains(&CaseFlag::ReceiverBound), "{:?}", cases[0]);
        assert!(
            cases[0]
                .advice
                .iter()
                .any(|a| a.contains("receive modes: copy 600 MB/s")),
            "{:?}",
            cases[0].advice
        );
        assert!(!cases[1].flags.contains(&CaseFlag::ReceiverBound));
    }

    #[test]
    fn modes_alike_flag_nothing() {
        let cases = summarise(&[row("copy", 1000.0, 0.5), row("splice", 1100.0, 0.3)]);
        assert!(cases.iter().all(|c| !c.flags.contains(&CaseFlag::ReceiverBound)));
        assert!(cases[0].advice.iter().any(|a| a.starts_with("receive modes:")));
    }

    #[test]
    fn a_busy_sink_is_flagged_alone() {
        // 1 GB at 1000 MB/s is 1 s of wall; 0.95 s of sink CPU on one stream.
        let cases = summarise(&[row("copy", 1000.0, 0.95)]);
        assert!(cases[0].flags.contains(&CaseFlag::ReceiverBound), "{:?}", cases[0]);
        let idle = summarise(&[row("copy", 1000.0, 0.5)]);
        assert!(idle[0].flags.is_empty(), "{:?}", idle[0].flags);
    }
}
