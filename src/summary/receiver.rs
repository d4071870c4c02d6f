//! Who limited a case, the sender or the receiver: receive modes set side by side, and the two rules that flag
//! a case `receiver-bound`.
//!
//! 1. Same sender, cheaper receiver: when the same case (strategy, threads, chunk, layout, cache, file) ran with
//!    more than one `--rx-mode`, and a mode that skips the receiver's copy (trunc, splice) reached at least
//!    `MODE_GAIN` times the median MB/s of `copy`, the copy case is flagged: its sender could go faster.
//! 2. Busy receiver: when the sink's stream threads were on a CPU for at least `BUSY_RATIO` of the wall time
//!    each (sink CPU seconds / (wall seconds x streams), the `sink_busy_ratio` metric), the receiver was the
//!    bottleneck whatever the mode.

use super::CaseSummary;
use crate::units::format_rate_mb_s;
use std::collections::BTreeMap;

/// A mode without the receiver's copy this much faster than `copy` means the receiver limited `copy`.
pub const MODE_GAIN: f64 = 1.25;
/// Sink threads busy this fraction of the wall time (one core each) means the receiver limited the case.
pub const BUSY_RATIO: f64 = 0.9;

pub const FLAG: &str = "receiver-bound";

/// Everything that names a case except its receive mode: strategy, threads, chunk, layout, cache, file size.
type ShapeKey = (String, u32, u64, String, String, u64);

fn mark(case: &mut CaseSummary, advice: String) {
    if !case.flags.iter().any(|f| f == FLAG) {
        case.flags.push(FLAG.into());
    }
    case.advice.push(advice);
}

/// Applies both rules and adds one comparison line per group of cases that differ only by receive mode.
pub fn compare(cases: &mut [CaseSummary]) {
    for case in cases.iter_mut() {
        if let Some(busy) = case.metric("sink_busy_ratio")
            && busy.median >= BUSY_RATIO
        {
            mark(
                case,
                format!(
                    "sink threads busy {:.0}% of the wall time (rx {}): the receiver, not the sender, limited this case",
                    busy.median * 100.0,
                    case.rx_mode
                ),
            );
        }
    }
    let mut groups: BTreeMap<ShapeKey, Vec<usize>> = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        let key = (
            c.strategy.clone(),
            c.threads,
            c.chunk_bytes,
            c.layout.clone(),
            c.cache.clone(),
            c.file_bytes,
        );
        groups.entry(key).or_default().push(i);
    }
    for members in groups.values().filter(|m| m.len() > 1) {
        let rate = |i: usize| cases[i].metric("throughput_mb_s").map(|s| s.median);
        let line = members
            .iter()
            .map(|&i| {
                let r = rate(i).map(format_rate_mb_s).unwrap_or_else(|| "failed".into());
                format!("{} {r}", cases[i].rx_mode)
            })
            .collect::<Vec<_>>()
            .join(", ");
        let copy = members.iter().copied().find(|&i| cases[i].rx_mode == "copy");
        let best = members
            .iter()
            .copied()
            .filter(|&i| cases[i].rx_mode != "copy")
            .filter_map(|i| Some((i, rate(i)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let slow = copy.and_then(rate);
        let first = copy.unwrap_or(members[0]);
        cases[first].advice.push(format!("receive modes: {line}"));
        if let (Some(c), Some((b, fast)), Some(slow)) = (copy, best, slow)
            && slow > 0.0
            && fast >= MODE_GAIN * slow
        {
            let mode = cases[b].rx_mode.clone();
            mark(
                &mut cases[c],
                format!(
                    "the same sender ran {:.2}x faster with rx {mode}: the receiver's copy, not the sender, limited this case",
                    fast / slow
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::record::Row;
    use crate::summary::summarise;

    fn row(rx: &str, mb_s: f64, sink_cpu_s: f64) -> Row {
        Row {
            case_id: format!("sendfile/{rx}"),
            strategy: "sendfile".into(),
            path: "sendfile".into(),
            threads: 1,
            cache: "warm".into(),
            rx_mode: rx.into(),
            file_bytes: 1_000_000_000,
            throughput_mb_s: mb_s,
            wall_s: 1000.0 / mb_s,
            sink_user_s: Some(0.0),
            sink_sys_s: Some(sink_cpu_s),
            status: "ok".into(),
            ..Row::default()
        }
    }

    #[test]
    fn a_faster_cheap_receiver_flags_copy() {
        let cases = summarise(&[row("copy", 600.0, 0.5), row("trunc", 3000.0, 0.1)]);
        assert!(cases[0].flags.contains(&super::FLAG.to_string()), "{:?}", cases[0]);
        assert!(
            cases[0]
                .advice
                .iter()
                .any(|a| a.contains("receive modes: copy 600 MB/s")),
            "{:?}",
            cases[0].advice
        );
        assert!(!cases[1].flags.contains(&super::FLAG.to_string()));
    }

    #[test]
    fn modes_alike_flag_nothing() {
        let cases = summarise(&[row("copy", 1000.0, 0.5), row("splice", 1100.0, 0.3)]);
        assert!(cases.iter().all(|c| !c.flags.contains(&super::FLAG.to_string())));
        assert!(cases[0].advice.iter().any(|a| a.starts_with("receive modes:")));
    }

    #[test]
    fn a_busy_sink_is_flagged_alone() {
        // 1 GB at 1000 MB/s is 1 s of wall; 0.95 s of sink CPU on one stream.
        let cases = summarise(&[row("copy", 1000.0, 0.95)]);
        assert!(cases[0].flags.contains(&super::FLAG.to_string()), "{:?}", cases[0]);
        let idle = summarise(&[row("copy", 1000.0, 0.5)]);
        assert!(idle[0].flags.is_empty(), "{:?}", idle[0].flags);
    }
}
