//! From rows to cases: median, min and max of each metric per case, the speed-up against serial sendfile, and
//! the flags that tell a reader not to trust a number too far (too short, too spread, cache not as labelled,
//! failed repetitions, a strategy that fell back, MSG_ZEROCOPY sends the kernel copied anyway, a receiver that
//! limited the case: see `receiver`). Used for summary.json and the terminal table; reads rows only, so a
//! summary can be rebuilt from any runs.csv.

mod flags;
mod receiver;

pub use flags::CaseFlag;

use crate::model::{CaseKey, Flag, Labeler, Named};
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseSummary {
    pub case_id: String,
    /// What the case is (strategy, threads, chunk, layout, cache, receiver, verify, queue depth).
    #[serde(flatten)]
    pub key: CaseKey,
    /// Paths that really ran (more than one only if a fallback happened in some repetitions).
    pub paths: Vec<String>,
    /// Sizes of the file sent and pass counts (one each, unless rows of different runs were mixed).
    pub file_bytes: Vec<u64>,
    pub passes: Vec<u32>,
    pub ok_runs: usize,
    pub failed_runs: usize,
    /// Metric name (as in runs.csv, plus `_per_gb` derivatives) to its statistics over ok runs.
    pub metrics: BTreeMap<String, Stat>,
    /// Median MB/s over the median MB/s of serial sendfile with the same chunk, cache and receiver.
    pub speedup_vs_sendfile: Option<f64>,
    pub flags: Vec<CaseFlag>,
    pub advice: Vec<String>,
}

impl CaseSummary {
    pub fn metric(&self, name: &str) -> Option<Stat> {
        self.metrics.get(name).copied()
    }

    fn flag(&mut self, flag: CaseFlag, advice: String) {
        if !self.flags.contains(&flag) {
            self.flags.push(flag);
        }
        self.advice.push(advice);
    }
}

type Extract = fn(&Row) -> Option<f64>;

/// Metrics summarised per case, by name. Per-GB figures are per 10^9 bytes moved, every pass counted.
const METRICS: &[(&str, Extract)] = &[
    ("throughput_mb_s", |r| Some(r.throughput_mb_s)),
    ("throughput_gbit_s", |r| Some(r.throughput_gbit_s)),
    ("wall_s", |r| Some(r.wall_s)),
    ("send_s", |r| Some(r.send_s)),
    ("recv_s", |r| r.recv_s),
    ("resident_before_ratio", |r| Some(r.resident_before_ratio)),
    ("sender_cpu_s_per_gb", |r| r.per_gb(r.sender_user_s + r.sender_sys_s)),
    ("sender_user_s_per_gb", |r| r.per_gb(r.sender_user_s)),
    ("sink_cpu_s_per_gb", |r| r.per_gb(r.sink_user_s? + r.sink_sys_s?)),
    ("sink_user_s_per_gb", |r| r.per_gb(r.sink_user_s?)),
    // The receiving threads' CPU over the wall time of one core per stream: near 1, the receiver was the
    // bottleneck. Checking threads (`--verify-on thread`) run beside them and are left out.
    ("sink_busy_ratio", |r| {
        let cpu = r.sink_user_s? + r.sink_sys_s? - r.sink_checker_cpu_s.unwrap_or(0.0);
        (r.wall_s > 0.0).then(|| cpu / (r.wall_s * f64::from(r.threads.max(1))))
    }),
    ("softirq_s_per_gb", |r| r.per_gb(r.softirq_s)),
    ("cpu_s_per_gb", |r| {
        r.per_gb(
            r.sender_user_s + r.sender_sys_s + r.sink_user_s.unwrap_or(0.0) + r.sink_sys_s.unwrap_or(0.0) + r.softirq_s,
        )
    }),
    ("sender_ctxsw_per_gb", |r| {
        r.per_gb((r.sender_voluntary_ctxsw + r.sender_involuntary_ctxsw) as f64)
    }),
    ("sink_ctxsw_per_gb", |r| {
        r.per_gb((r.sink_voluntary_ctxsw? + r.sink_involuntary_ctxsw?) as f64)
    }),
    ("system_ctxsw_per_gb", |r| r.per_gb(r.system_ctxsw as f64)),
    ("syscalls_per_gb", |r| r.per_gb(r.syscalls as f64)),
    ("user_copy_bytes_per_gb", |r| r.per_gb(r.user_copy_bytes as f64)),
    ("minor_faults", |r| Some(r.minor_faults as f64)),
    ("major_faults", |r| Some(r.major_faults as f64)),
    ("call_p50_us", |r| Some(r.call_p50_us)),
    ("call_p99_us", |r| Some(r.call_p99_us)),
    ("call_max_us", |r| Some(r.call_max_us)),
    ("zerocopy_copied_ratio", |r| r.zerocopy_copied_ratio),
];

/// Groups rows by case (in the order cases first appear) and summarises each.
pub fn summarise(rows: &[Row]) -> Vec<CaseSummary> {
    let mut order: Vec<CaseKey> = Vec::new();
    let mut groups: BTreeMap<CaseKey, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        let key = row.key();
        if !groups.contains_key(&key) {
            order.push(key);
        }
        groups.entry(key).or_default().push(row);
    }
    let mut cases: Vec<CaseSummary> = order.iter().map(|k| summarise_case(*k, &groups[k])).collect();
    let baselines: BTreeMap<CaseKey, f64> = cases
        .iter()
        .filter_map(|c| Some((c.key, c.metric("throughput_mb_s")?.median)))
        .collect();
    for c in &mut cases {
        if let (Some(base), Some(t)) = (baselines.get(&c.key.sendfile_baseline()), c.metric("throughput_mb_s")) {
            c.speedup_vs_sendfile = Some(t.median / base);
        }
    }
    receiver::compare(&mut cases);
    cases
}

fn distinct<T: Ord + Clone>(values: impl Iterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = values.collect();
    v.sort();
    v.dedup();
    v
}

fn summarise_case(key: CaseKey, rows: &[&Row]) -> CaseSummary {
    let ok: Vec<&Row> = rows.iter().copied().filter(|r| r.is_ok()).collect();
    let mut metrics = BTreeMap::new();
    for (name, f) in METRICS {
        let values: Vec<f64> = ok.iter().filter_map(|r| f(r)).collect();
        if let Some(s) = Stat::of(&values) {
            metrics.insert(name.to_string(), s);
        }
    }
    let mut case = CaseSummary {
        case_id: key.id(),
        key,
        paths: distinct(rows.iter().map(|r| r.path.clone())),
        file_bytes: distinct(rows.iter().map(|r| r.file_bytes)),
        passes: distinct(ok.iter().map(|r| r.passes)),
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
    let has = |f: Flag| rows.iter().any(|r| r.flags.has(f));
    if case.failed_runs > 0 {
        let statuses: Vec<&str> = rows.iter().filter(|r| !r.is_ok()).map(|r| r.status.name()).collect();
        let advice = format!(
            "{} repetition(s) failed ({}); see the error column",
            case.failed_runs,
            statuses.join(", ")
        );
        case.flag(CaseFlag::Failed(case.failed_runs), advice);
    }
    if let Some(wall) = case.metric("wall_s")
        && wall.median < SHORT_RUN_S
    {
        let advice = format!(
            "median timed section {:.3} s is under {SHORT_RUN_S} s: leave --passes at auto and raise --min-time",
            wall.median
        );
        case.flag(CaseFlag::ShortRun, advice);
    }
    if let Some(t) = case.metric("throughput_mb_s")
        && case.ok_runs >= 2
        && t.spread() > WIDE_SPREAD
    {
        let advice = format!(
            "runs spread {:.0}% around the median: add --repeat, raise --min-time, quiet the machine, or pin with \
             --sender-cpus",
            t.spread() * 100.0
        );
        case.flag(CaseFlag::Spread, advice);
    }
    if has(Flag::ResidencyMismatch) {
        let advice = format!(
            "the page cache was not {} as labelled (see resident_before_ratio)",
            case.key.cache
        );
        case.flag(CaseFlag::ResidencyMismatch, advice);
    }
    if let Some(copied) = case.metric("zerocopy_copied_ratio")
        && copied.median > 0.0
    {
        let advice = format!(
            "the kernel copied {:.0}% of the zero-copy sends anyway (always so on loopback): not a zero-copy result",
            copied.median * 100.0
        );
        case.flag(CaseFlag::ZerocopyCopied, advice);
    }
    if case.paths.iter().any(|p| p != case.key.strategy.name()) {
        let advice = format!("{} ran as {}", case.key.strategy, case.paths.join(" / "));
        case.flag(CaseFlag::Fallback, advice);
    }
    if has(Flag::PassesCapped) {
        let advice = format!(
            "{} passes (the cap) still lasted under --min-time: the file is too small to time here; use a bigger --size",
            crate::model::Passes::CAP
        );
        case.flag(CaseFlag::PassesCapped, advice);
    }
    if has(Flag::Emulated) {
        let advice =
            "measured under an emulator (QEMU's TCG): these numbers are the emulator's, not the kernel's".to_string();
        case.flag(CaseFlag::Emulated, advice);
    }
}

/// The terminal table: one line per case.
pub fn table(cases: &[CaseSummary]) -> String {
    let labeler = Labeler::new(cases.iter().map(|c| &c.key)).without_chunk_and_cache();
    let labels: Vec<String> = cases.iter().map(|c| labeler.label(&c.key)).collect();
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0).max(34);
    let mut out = String::new();
    let header = format!(
        "{:<width$} {:>9} {:>5} {:>3} {:>6} {:>11} {:>7} {:>8} {:>9} {:>9} {:>9}  {}\n",
        "case",
        "chunk",
        "cache",
        "n",
        "passes",
        "median",
        "spread",
        "vs sf",
        "CPU s/GB",
        "snd s/GB",
        "ctxsw/GB",
        "flags"
    );
    out.push_str(&header);
    out.push_str(&"-".repeat(header.len().saturating_sub(1).max(110)));
    out.push('\n');
    for (c, label) in cases.iter().zip(&labels) {
        let t = c.metric("throughput_mb_s");
        let fmt_opt = |v: Option<f64>, prec: usize| v.map(|x| format!("{x:.prec$}")).unwrap_or_else(|| "-".into());
        let ctxsw = match (c.metric("sender_ctxsw_per_gb"), c.metric("sink_ctxsw_per_gb")) {
            (Some(a), Some(b)) => Some(a.median + b.median),
            (Some(a), None) => Some(a.median),
            _ => None,
        };
        let passes = c.passes.iter().map(u32::to_string).collect::<Vec<_>>().join("/");
        let flags: Vec<String> = c.flags.iter().map(|f| f.to_string()).collect();
        out.push_str(&format!(
            "{:<width$} {:>9} {:>5} {:>3} {:>6} {:>11} {:>7} {:>8} {:>9} {:>9} {:>9}  {}\n",
            label,
            format_bytes(c.key.chunk_bytes),
            c.key.cache,
            c.ok_runs,
            if passes.is_empty() { "-".into() } else { passes },
            t.map(|s| format_rate_mb_s(s.median)).unwrap_or_else(|| "failed".into()),
            t.map(|s| format!("{:.0}%", s.spread() * 100.0))
                .unwrap_or_else(|| "-".into()),
            c.speedup_vs_sendfile
                .map(|s| format!("{s:.2}x"))
                .unwrap_or_else(|| "-".into()),
            fmt_opt(c.metric("cpu_s_per_gb").map(|s| s.median), 3),
            fmt_opt(c.metric("sender_cpu_s_per_gb").map(|s| s.median), 3),
            fmt_opt(ctxsw, 0),
            flags.join(" "),
        ));
    }
    let advice: Vec<String> = cases
        .iter()
        .flat_map(|c| c.advice.iter().map(move |a| format!("  {}: {a}", c.key)))
        .collect();
    if !advice.is_empty() {
        out.push_str("\nNotes:\n");
        out.push_str(&advice.join("\n"));
        out.push('\n');
    }
    out.push_str(
        "\nmedian = MB/s (10^6 bytes/s) over ok repetitions, every pass of the file counted; passes = times the file \
         went per repetition; spread = (max-min)/median; vs sf = against serial sendfile; CPU s/GB = sender + sink + \
         softirq CPU seconds per 10^9 bytes; snd = sender only.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn row(strategy: &str, mb_s: f64, status: Status) -> Row {
        let strategy: crate::model::Strategy = strategy.parse().unwrap();
        Row {
            strategy,
            path: strategy.to_string(),
            threads: if strategy.parallel { 4 } else { 1 },
            layout: if strategy.parallel {
                crate::model::Layout::Striped
            } else {
                crate::model::Layout::Single
            },
            rx_mode: Some(crate::model::RxMode::Copy),
            rx_buffer_bytes: Some(1 << 18),
            chunk_bytes: 10,
            file_bytes: 1_000_000_000,
            passes: 1,
            throughput_mb_s: mb_s,
            wall_s: 1000.0 / mb_s,
            status,
            ..Row::default()
        }
    }

    #[test]
    fn medians_speedups_and_flags() {
        let rows = vec![
            row("sendfile", 1000.0, Status::Ok),
            row("sendfile", 1100.0, Status::Ok),
            row("sendfile", 1050.0, Status::Ok),
            row("parallel-sendfile", 3000.0, Status::Ok),
            row("parallel-sendfile", 2000.0, Status::Ok),
            row("parallel-sendfile", 0.0, Status::ConnectionReset),
        ];
        let cases = summarise(&rows);
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].metric("throughput_mb_s").unwrap().median, 1050.0);
        assert_eq!(cases[1].ok_runs, 2);
        assert_eq!(cases[1].failed_runs, 1);
        assert!((cases[1].speedup_vs_sendfile.unwrap() - 2500.0 / 1050.0).abs() < 1e-9);
        assert!(cases[1].flags.contains(&CaseFlag::Spread));
        assert!(cases[1].flags.contains(&CaseFlag::Failed(1)));
        assert!(!cases[0].flags.contains(&CaseFlag::Spread));
        let text = table(&cases);
        assert!(text.contains("2.38x"), "{text}");
        assert!(text.contains("failed:1"), "{text}");
    }

    #[test]
    fn short_runs_are_flagged() {
        let rows = vec![row("sendfile", 10_000.0, Status::Ok)];
        assert!(summarise(&rows)[0].flags.contains(&CaseFlag::ShortRun));
    }

    #[test]
    fn per_gb_figures_count_every_pass() {
        let mut r = row("sendfile", 1000.0, Status::Ok);
        r.passes = 4;
        r.sender_sys_s = 2.0;
        let cases = summarise(&[r]);
        assert_eq!(cases[0].metric("sender_cpu_s_per_gb").unwrap().median, 0.5);
        assert_eq!(cases[0].passes, [4]);
    }

    #[test]
    fn cases_one_field_apart_stay_apart() {
        let base = row("sendfile", 1000.0, Status::Ok);
        let variants = [
            Row {
                cache: crate::model::Cache::Cold,
                ..base.clone()
            },
            Row {
                chunk_bytes: 20,
                ..base.clone()
            },
            Row {
                rx_mode: Some(crate::model::RxMode::Trunc),
                ..base.clone()
            },
            Row {
                rx_buffer_bytes: Some(1 << 20),
                ..base.clone()
            },
            Row {
                verify: true,
                ..base.clone()
            },
            Row {
                queue_depth: Some(8),
                ..base.clone()
            },
        ];
        for v in variants {
            let cases = summarise(&[base.clone(), v.clone()]);
            assert_eq!(cases.len(), 2, "{v:?}");
            let json = serde_json::to_value(&cases).unwrap();
            assert_ne!(json[0]["case_id"], json[1]["case_id"]);
            let text = table(&cases);
            let lines: Vec<&str> = text.lines().skip(2).take(2).collect();
            assert_ne!(lines[0], lines[1]);
        }
    }
}
