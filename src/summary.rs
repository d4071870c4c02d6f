//! From rows to cases: median, min and max of each metric per case, the speed-up against serial sendfile, and
//! the flags that tell a reader not to trust a number too far (too short, too spread, cache not as labelled,
//! failed repetitions, a strategy that fell back, MSG_ZEROCOPY sends the kernel copied anyway, a receiver that
//! limited the case: see `receiver`). Used for summary.json and the terminal table; reads rows only, so a
//! summary can be rebuilt from any runs.csv.

mod receiver;

use crate::record::Row;
use crate::units::{format_bytes, format_rate_mb_s};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A wall time under this is too short to time well.
pub const SHORT_RUN_S: f64 = 0.2;
/// (max - min) / median above this is too spread to quote one number.
pub const WIDE_SPREAD: f64 = 0.20;

/// Median, min and max of one metric over a case's ok repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn of(values: &[f64]) -> Option<Stat> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// (max - min) / median.
    pub fn spread(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }
}

/// One case over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseSummary {
    pub case_id: String,
    pub strategy: String,
    /// Paths that really ran (more than one only if a fallback happened in some repetitions).
    pub paths: Vec<String>,
    pub threads: u32,
    pub chunk_bytes: u64,
    pub layout: String,
    pub cache: String,
    pub rx_mode: String,
    pub file_bytes: u64,
    pub ok_runs: usize,
    pub failed_runs: usize,
    /// Metric name (as in runs.csv, plus `_per_gb` derivatives) to its statistics over ok runs.
    pub metrics: BTreeMap<String, Stat>,
    /// Median MB/s over the median MB/s of serial sendfile with the same chunk, cache and receiver.
    pub speedup_vs_sendfile: Option<f64>,
    pub flags: Vec<String>,
    pub advice: Vec<String>,
}

impl CaseSummary {
    pub fn metric(&self, name: &str) -> Option<Stat> {
        self.metrics.get(name).copied()
    }
}

type Extract = fn(&Row) -> Option<f64>;

fn per_gb(row: &Row, v: f64) -> Option<f64> {
    (row.file_bytes > 0).then(|| v / (row.file_bytes as f64 / 1e9))
}

/// Metrics summarised per case, by name.
const METRICS: &[(&str, Extract)] = &[
    ("throughput_mb_s", |r| Some(r.throughput_mb_s)),
    ("throughput_gbit_s", |r| Some(r.throughput_gbit_s)),
    ("wall_s", |r| Some(r.wall_s)),
    ("send_s", |r| Some(r.send_s)),
    ("recv_s", |r| r.recv_s),
    ("resident_before_ratio", |r| Some(r.resident_before_ratio)),
    ("sender_cpu_s_per_gb", |r| per_gb(r, r.sender_user_s + r.sender_sys_s)),
    ("sink_cpu_s_per_gb", |r| per_gb(r, r.sink_user_s? + r.sink_sys_s?)),
    // The receiving threads' CPU over the wall time of one core per stream: near 1, the receiver was the
    // bottleneck. Checking threads (`--verify-on thread`) run beside them and are left out.
    ("sink_busy_ratio", |r| {
        let cpu = r.sink_user_s? + r.sink_sys_s? - r.sink_checker_cpu_s.unwrap_or(0.0);
        (r.wall_s > 0.0).then(|| cpu / (r.wall_s * f64::from(r.threads.max(1))))
    }),
    ("softirq_s_per_gb", |r| per_gb(r, r.softirq_s)),
    ("cpu_s_per_gb", |r| {
        per_gb(
            r,
            r.sender_user_s + r.sender_sys_s + r.sink_user_s.unwrap_or(0.0) + r.sink_sys_s.unwrap_or(0.0) + r.softirq_s,
        )
    }),
    ("sender_ctxsw_per_gb", |r| {
        per_gb(r, (r.sender_voluntary_ctxsw + r.sender_involuntary_ctxsw) as f64)
    }),
    ("sink_ctxsw_per_gb", |r| {
        per_gb(r, (r.sink_voluntary_ctxsw? + r.sink_involuntary_ctxsw?) as f64)
    }),
    ("system_ctxsw_per_gb", |r| per_gb(r, r.system_ctxsw as f64)),
    ("syscalls_per_gb", |r| per_gb(r, r.syscalls as f64)),
    ("user_copy_bytes", |r| Some(r.user_copy_bytes as f64)),
    ("minor_faults", |r| Some(r.minor_faults as f64)),
    ("major_faults", |r| Some(r.major_faults as f64)),
    ("call_p50_us", |r| Some(r.call_p50_us)),
    ("call_p99_us", |r| Some(r.call_p99_us)),
    ("call_max_us", |r| Some(r.call_max_us)),
    ("zerocopy_copied_ratio", |r| r.zerocopy_copied_ratio),
];

/// Groups rows by case (first appearance order) and summarises each.
pub fn summarise(rows: &[Row]) -> Vec<CaseSummary> {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        let key = row.case_id.as_str();
        if !groups.contains_key(key) {
            order.push(key);
        }
        groups.entry(key).or_default().push(row);
    }
    let mut cases: Vec<CaseSummary> = order.iter().map(|k| summarise_case(&groups[k])).collect();
    let baselines: BTreeMap<(u64, String, String, u64), f64> = cases
        .iter()
        .filter(|c| c.strategy == "sendfile")
        .filter_map(|c| {
            Some((
                (c.chunk_bytes, c.cache.clone(), c.rx_mode.clone(), c.file_bytes),
                c.metric("throughput_mb_s")?.median,
            ))
        })
        .collect();
    for c in &mut cases {
        let key = (c.chunk_bytes, c.cache.clone(), c.rx_mode.clone(), c.file_bytes);
        if let (Some(base), Some(t)) = (baselines.get(&key), c.metric("throughput_mb_s")) {
            c.speedup_vs_sendfile = Some(t.median / base);
        }
    }
    receiver::compare(&mut cases);
    cases
}

fn summarise_case(rows: &[&Row]) -> CaseSummary {
    let first = rows[0];
    let ok: Vec<&Row> = rows.iter().copied().filter(|r| r.is_ok()).collect();
    let mut metrics = BTreeMap::new();
    for (name, f) in METRICS {
        let values: Vec<f64> = ok.iter().filter_map(|r| f(r)).collect();
        if let Some(s) = Stat::of(&values) {
            metrics.insert(name.to_string(), s);
        }
    }
    let mut paths: Vec<String> = rows.iter().map(|r| r.path.clone()).collect();
    paths.dedup();
    paths.sort();
    paths.dedup();
    let mut case = CaseSummary {
        case_id: first.case_id.clone(),
        strategy: first.strategy.clone(),
        paths,
        threads: first.threads,
        chunk_bytes: first.chunk_bytes,
        layout: first.layout.clone(),
        cache: first.cache.clone(),
        rx_mode: first.rx_mode.clone(),
        file_bytes: first.file_bytes,
        ok_runs: ok.len(),
        failed_runs: rows.len() - ok.len(),
        metrics,
        speedup_vs_sendfile: None,
        flags: Vec::new(),
        advice: Vec::new(),
    };
    flag(&mut case, rows);
    case
}

fn flag(case: &mut CaseSummary, rows: &[&Row]) {
    if case.failed_runs > 0 {
        let statuses: Vec<&str> = rows.iter().filter(|r| !r.is_ok()).map(|r| r.status.as_str()).collect();
        case.flags.push(format!("failed:{}", case.failed_runs));
        case.advice.push(format!(
            "{} repetition(s) failed ({}); see the error column",
            case.failed_runs,
            statuses.join(", ")
        ));
    }
    if let Some(wall) = case.metric("wall_s")
        && wall.median < SHORT_RUN_S
    {
        case.flags.push("short-run".into());
        case.advice.push(format!(
            "median run {:.3} s is under {SHORT_RUN_S} s: use a bigger --size",
            wall.median
        ));
    }
    if let Some(t) = case.metric("throughput_mb_s")
        && case.ok_runs >= 2
        && t.spread() > WIDE_SPREAD
    {
        case.flags.push("spread".into());
        case.advice.push(format!(
            "runs spread {:.0}% around the median: add --repeat, quiet the machine, or pin with --sender-cpus",
            t.spread() * 100.0
        ));
    }
    if rows
        .iter()
        .any(|r| r.flags.split(';').any(|f| f == "residency-mismatch"))
    {
        case.flags.push("residency-mismatch".into());
        case.advice.push(format!(
            "the page cache was not {} as labelled (see resident_before_ratio)",
            case.cache
        ));
    }
    if let Some(copied) = case.metric("zerocopy_copied_ratio")
        && copied.median > 0.0
    {
        case.flags.push("zerocopy-copied".into());
        case.advice.push(format!(
            "the kernel copied {:.0}% of the MSG_ZEROCOPY sends anyway (always so on loopback): not a zero-copy result",
            copied.median * 100.0
        ));
    }
    if case.paths.iter().any(|p| p != &case.strategy) {
        case.flags.push("fallback".into());
        case.advice
            .push(format!("{} ran as {}", case.strategy, case.paths.join(" / ")));
    }
}

/// The terminal table: one line per case.
pub fn table(cases: &[CaseSummary]) -> String {
    let mut out = String::new();
    let header = format!(
        "{:<34} {:>9} {:>5} {:>3} {:>11} {:>7} {:>8} {:>9} {:>9} {:>9}  {}\n",
        "case", "chunk", "cache", "n", "median", "spread", "vs sf", "CPU s/GB", "snd s/GB", "ctxsw/GB", "flags"
    );
    out.push_str(&header);
    out.push_str(&"-".repeat(header.len().saturating_sub(1).max(110)));
    out.push('\n');
    for c in cases {
        let label = if c.strategy.starts_with("parallel-") {
            format!("{} x{} {}", c.strategy, c.threads, c.layout)
        } else {
            c.strategy.clone()
        };
        let label = if !c.rx_mode.is_empty() && c.rx_mode != "copy" {
            format!("{label} rx:{}", c.rx_mode)
        } else {
            label
        };
        let t = c.metric("throughput_mb_s");
        let fmt_opt = |v: Option<f64>, prec: usize| v.map(|x| format!("{x:.prec$}")).unwrap_or_else(|| "-".into());
        let ctxsw = match (c.metric("sender_ctxsw_per_gb"), c.metric("sink_ctxsw_per_gb")) {
            (Some(a), Some(b)) => Some(a.median + b.median),
            (Some(a), None) => Some(a.median),
            _ => None,
        };
        out.push_str(&format!(
            "{:<34} {:>9} {:>5} {:>3} {:>11} {:>7} {:>8} {:>9} {:>9} {:>9}  {}\n",
            label,
            format_bytes(c.chunk_bytes),
            c.cache,
            c.ok_runs,
            t.map(|s| format_rate_mb_s(s.median)).unwrap_or_else(|| "failed".into()),
            t.map(|s| format!("{:.0}%", s.spread() * 100.0))
                .unwrap_or_else(|| "-".into()),
            c.speedup_vs_sendfile
                .map(|s| format!("{s:.2}x"))
                .unwrap_or_else(|| "-".into()),
            fmt_opt(c.metric("cpu_s_per_gb").map(|s| s.median), 3),
            fmt_opt(c.metric("sender_cpu_s_per_gb").map(|s| s.median), 3),
            fmt_opt(ctxsw, 0),
            c.flags.join(" "),
        ));
    }
    let advice: Vec<String> = cases
        .iter()
        .flat_map(|c| {
            c.advice
                .iter()
                .map(move |a| format!("  {} ({} {}): {a}", c.strategy, c.cache, format_bytes(c.chunk_bytes)))
        })
        .collect();
    if !advice.is_empty() {
        out.push_str("\nNotes:\n");
        out.push_str(&advice.join("\n"));
        out.push('\n');
    }
    out.push_str(
        "\nmedian = MB/s (10^6 bytes/s) over ok repetitions; spread = (max-min)/median; vs sf = against serial \
         sendfile; CPU s/GB = sender + sink + softirq CPU seconds per 10^9 bytes; snd = sender only.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(strategy: &str, mb_s: f64, status: &str) -> Row {
        Row {
            case_id: format!("{strategy}/x"),
            strategy: strategy.into(),
            path: strategy.into(),
            cache: "warm".into(),
            rx_mode: "copy".into(),
            chunk_bytes: 10,
            file_bytes: 1_000_000_000,
            throughput_mb_s: mb_s,
            wall_s: 1000.0 / mb_s,
            status: status.into(),
            ..Row::default()
        }
    }

    #[test]
    fn medians_speedups_and_flags() {
        let rows = vec![
            row("sendfile", 1000.0, "ok"),
            row("sendfile", 1100.0, "ok"),
            row("sendfile", 1050.0, "ok"),
            row("parallel-sendfile", 3000.0, "ok"),
            row("parallel-sendfile", 2000.0, "ok"),
            row("parallel-sendfile", 0.0, "connection-reset"),
        ];
        let cases = summarise(&rows);
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].metric("throughput_mb_s").unwrap().median, 1050.0);
        assert_eq!(cases[1].ok_runs, 2);
        assert_eq!(cases[1].failed_runs, 1);
        assert!((cases[1].speedup_vs_sendfile.unwrap() - 2500.0 / 1050.0).abs() < 1e-9);
        assert!(cases[1].flags.contains(&"spread".to_string()));
        assert!(cases[1].flags.contains(&"failed:1".to_string()));
        assert!(!cases[0].flags.contains(&"spread".to_string()));
        let text = table(&cases);
        assert!(text.contains("2.38x"), "{text}");
    }

    #[test]
    fn short_runs_are_flagged() {
        let rows = vec![row("sendfile", 10_000.0, "ok")];
        assert!(summarise(&rows)[0].flags.contains(&"short-run".to_string()));
    }
}
