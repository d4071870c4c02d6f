//! What each consumer of a broker case got, from the sink's reports (and, with cold passes, its notices): its
//! bytes, the time from the release of the network threads to its first and last byte, its MB/s; and over the
//! consumers, the slowest and fastest MB/s, Jain's fairness index, the slowest consumer's time beside the median
//! one's (what an operator feels), and a flag when one got less than half the median consumer's MB/s.

use super::context::Clock;
use crate::base::model::{CaseKey, Flag};
use crate::experiment::strategy::streams::Span;
use crate::experiment::wire::StreamReport;
use crate::results::record::{ConsumerRow, Row};
use crate::results::stats::{jain, median};
use std::time::Instant;

/// A consumer whose MB/s is under this share of the median consumer's is behind (`consumer-behind`).
pub const BEHIND: f64 = 0.5;

/// One consumer's times over the spans, in seconds from each span's release (summed over cold spans).
fn times(k: usize, spans: &[Span], report: &(StreamReport, Instant), clock: &Clock) -> (Option<f64>, Option<f64>) {
    let s = |ns: i128| Some(ns.max(0) as f64 / 1e9);
    let (r, arrived) = report;
    if spans.len() == 1 && spans[0].notices.get(k).is_none_or(Option::is_none) {
        let start = clock.of(spans[0].started);
        let first = r
            .first_byte_ns
            .and_then(|t| s(clock.sink(t, r.report_ns, *arrived) - start));
        let last = r
            .last_byte_ns
            .and_then(|t| s(clock.sink(t, r.report_ns, *arrived) - start));
        return (first, last);
    }
    // Passes apart: each span's notice holds the pass's own first and last byte.
    let mut first = None;
    let mut last = 0i128;
    for span in spans {
        let Some(Some((n, at))) = span.notices.get(k) else {
            return (first, None);
        };
        let start = clock.of(span.started);
        first = first.or_else(|| s(clock.sink(n.first_byte_ns, n.notice_ns, *at) - start));
        last += (clock.sink(n.last_byte_ns, n.notice_ns, *at) - start).max(0);
    }
    (first, s(last))
}

/// Fills the row's consumer columns and its consumers.csv lines.
pub fn fill(row: &mut Row, case: &CaseKey, spans: &[Span], reports: &[(StreamReport, Instant)], same_clock: bool) {
    let clock = Clock::new(same_clock);
    let threads = case.threads.min(case.connections()).max(1);
    let stalled = row.stalled_consumers.unwrap_or(0);
    for report in reports {
        let k = report.0.stream;
        let (first, last) = times(k as usize, spans, report, &clock);
        row.consumer_rows.push(ConsumerRow {
            run_id: row.run_id.clone(),
            case_id: row.case_id.clone(),
            round: row.round,
            repetition: row.repetition,
            consumer: k,
            network_thread: k % threads,
            bytes: report.0.bytes,
            first_byte_s: first,
            last_byte_s: last,
            mb_s: last.filter(|&t| t > 0.0).map(|t| report.0.bytes as f64 / 1e6 / t),
            stalled: k < stalled,
        });
    }
    summarise(row);
}

/// The consumer columns from the row's consumers: only when every consumer of the case reported a time.
fn summarise(row: &mut Row) {
    let rates: Option<Vec<f64>> = row.consumer_rows.iter().map(|c| c.mb_s).collect();
    let times: Option<Vec<f64>> = row.consumer_rows.iter().map(|c| c.last_byte_s).collect();
    let complete = row.consumer_rows.len() == row.consumers.unwrap_or(0) as usize;
    let (Some(rates), Some(times), true) = (rates, times, complete) else {
        return;
    };
    row.consumer_min_mb_s = rates.iter().copied().reduce(f64::min);
    row.consumer_max_mb_s = rates.iter().copied().reduce(f64::max);
    row.consumer_jain = jain(&rates);
    row.consumer_slowest_s = times.iter().copied().reduce(f64::max);
    row.consumer_median_s = median(&times);
    if let (Some(min), Some(mid)) = (row.consumer_min_mb_s, median(&rates))
        && min < BEHIND * mid
    {
        row.add_flag(Flag::ConsumerBehind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(k: u32, bytes: u64, last_byte_s: f64) -> ConsumerRow {
        ConsumerRow {
            consumer: k,
            bytes,
            last_byte_s: Some(last_byte_s),
            mb_s: Some(bytes as f64 / 1e6 / last_byte_s),
            ..ConsumerRow::default()
        }
    }

    #[test]
    fn fairness_and_the_slowest_consumer_have_their_known_values() {
        // Four consumers of 100 MB: three in 1 s, one in 4 s (25 MB/s, a quarter of the median 100 MB/s).
        let mut row = Row {
            consumers: Some(4),
            consumer_rows: vec![
                consumer(0, 100_000_000, 1.0),
                consumer(1, 100_000_000, 1.0),
                consumer(2, 100_000_000, 4.0),
                consumer(3, 100_000_000, 1.0),
            ],
            ..Row::default()
        };
        summarise(&mut row);
        assert_eq!(row.consumer_min_mb_s, Some(25.0));
        assert_eq!(row.consumer_max_mb_s, Some(100.0));
        assert_eq!(row.consumer_slowest_s, Some(4.0));
        assert_eq!(row.consumer_median_s, Some(1.0));
        // (325)^2 / (4 * (3 * 100^2 + 25^2)) = 105625 / 122500.
        assert!((row.consumer_jain.unwrap() - 105_625.0 / 122_500.0).abs() < 1e-12);
        assert!(row.flags.has(Flag::ConsumerBehind));

        // Every consumer alike: Jain 1, nobody behind; a consumer at 60% of the median is not behind either.
        let mut fair = Row {
            consumers: Some(3),
            consumer_rows: vec![
                consumer(0, 50_000_000, 0.5),
                consumer(1, 50_000_000, 0.5),
                consumer(2, 30_000_000, 0.5),
            ],
            ..Row::default()
        };
        summarise(&mut fair);
        assert_eq!(fair.consumer_min_mb_s, Some(60.0));
        assert!(!fair.flags.has(Flag::ConsumerBehind));
        assert!(fair.consumer_jain.unwrap() < 1.0);

        // A consumer missing: no columns at all rather than a summary of part of them.
        let mut part = Row {
            consumers: Some(3),
            consumer_rows: vec![consumer(0, 1, 1.0)],
            ..Row::default()
        };
        summarise(&mut part);
        assert_eq!((part.consumer_jain, part.consumer_slowest_s), (None, None));
    }
}
