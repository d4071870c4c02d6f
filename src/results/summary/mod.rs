//! From rows to cases: each metric's median, min and max per case (`Metrics`, one typed field per metric), the
//! throughput's median with its interval, the ratio to serial sendfile paired round by round with its interval
//! (`vs sf`), and the flags that tell a reader not to trust a number too far (too short, too spread, two modes,
//! cache not as labelled, failed repetitions, a strategy that fell back, a pacing congestion control on loopback,
//! MSG_ZEROCOPY sends the kernel copied anyway, a receiver that limited the case: see `receiver`; a `--link` path's
//! rate that did: see `link`; what the machine
//! did while a spread case ran: see `noise`). Used for summary.json, the terminal table and the charts; reads rows
//! only, so a summary can be rebuilt from any runs.csv.

mod consumers;
mod flags;
mod limit;
mod link;
mod noise;
mod receiver;

pub use flags::CaseFlag;

use crate::base::model::{CaseKey, Cc, Flag, Labeler, Named, Strategy, Transport};
use crate::base::units::{format_bytes, format_rate_mb_s};
use crate::results::record::{PairKey, Row};
pub use crate::results::stats::Stat;
use crate::results::stats::{DEFAULT_SAME_WITHIN, Estimate, Modes, Verdict, modes, paired_ratios};
use crate::results::table::{Align, Table};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A wall time under this is too short to time well.
pub const SHORT_RUN_S: f64 = 0.2;
/// (max - min) / median above this is too spread to quote one number.
pub const WIDE_SPREAD: f64 = 0.20;

type Extract = fn(&Row) -> Option<f64>;

/// Declares the metrics once: a typed field of `Metrics` each (a misspelt metric does not compile), its name in
/// summary.json, and how to read it off a row (None: not measured, left out, never 0).
macro_rules! metrics {
    ($($(#[$doc:meta])* $name:ident = $extract:expr;)+) => {
        /// Each metric's median, min and max over a case's ok repetitions; a metric no row measured is absent.
        /// Per-GB figures are per 10^9 bytes moved, every pass counted.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct Metrics {
            $($(#[$doc])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $name: Option<Stat>,)+
        }

        impl Metrics {
            /// Over `rows` (the ok repetitions of one case).
            pub fn of(rows: &[&Row]) -> Metrics {
                Metrics {
                    $($name: {
                        let f: Extract = $extract;
                        Stat::of(&rows.iter().filter_map(|r| f(r)).collect::<Vec<f64>>())
                    },)+
                }
            }
        }
    };
}

metrics! {
    /// MB/s (10^6 bytes per second), every pass counted.
    throughput_mb_s = |r| Some(r.throughput_mb_s);
    throughput_gbit_s = |r| Some(r.throughput_gbit_s);
    wall_s = |r| Some(r.wall_s);
    send_s = |r| Some(r.send_s);
    recv_s = |r| r.recv_s;
    resident_before_ratio = |r| Some(r.resident_before_ratio);
    sender_cpu_s_per_gb = |r| r.per_gb(r.sender_user_s + r.sender_sys_s);
    sender_user_s_per_gb = |r| r.per_gb(r.sender_user_s);
    sender_sys_s_per_gb = |r| r.per_gb(r.sender_sys_s);
    /// A JVM strategy: its sending threads' CPU (the whole JVM's is `sender_cpu_s_per_gb`).
    jvm_send_cpu_s_per_gb = |r| r.per_gb(r.jvm_send_cpu_s?);
    sink_cpu_s_per_gb = |r| r.per_gb(r.sink_user_s? + r.sink_sys_s?);
    sink_user_s_per_gb = |r| r.per_gb(r.sink_user_s?);
    /// The receiving threads' CPU over the wall time of one core per stream: near 1, the receiver was the
    /// bottleneck. Checking threads (`--verify-on thread`) run beside them and are left out.
    sink_busy_ratio = receiver::busy;
    softirq_s_per_gb = |r| r.per_gb(r.softirq_s);
    /// Sender, sink and softirq CPU per GB.
    cpu_s_per_gb = |r| r.per_gb(
        r.sender_user_s + r.sender_sys_s + r.sink_user_s.unwrap_or(0.0) + r.sink_sys_s.unwrap_or(0.0) + r.softirq_s,
    );
    sender_ctxsw_per_gb = |r| r.per_gb((r.sender_voluntary_ctxsw + r.sender_involuntary_ctxsw) as f64);
    sink_ctxsw_per_gb = |r| r.per_gb((r.sink_voluntary_ctxsw? + r.sink_involuntary_ctxsw?) as f64);
    system_ctxsw_per_gb = |r| r.per_gb(r.system_ctxsw as f64);
    syscalls_per_gb = |r| r.per_gb(r.syscalls as f64);
    user_copy_bytes_per_gb = |r| r.per_gb(r.user_copy_bytes as f64);
    minor_faults = |r| Some(r.minor_faults as f64);
    major_faults = |r| Some(r.major_faults as f64);
    call_p50_us = |r| Some(r.call_p50_us);
    call_p99_us = |r| Some(r.call_p99_us);
    call_max_us = |r| Some(r.call_max_us);
    zerocopy_copied_ratio = |r| r.zerocopy_copied_ratio;
    /// `--rx-mode zerocopy`: the share of the bytes the kernel mapped into the sink.
    rx_zerocopy_mapped_ratio = |r| r.rx_zerocopy_mapped_ratio;
    /// Steal, over the timed section, as a share of all CPUs' time.
    steal_ratio = |r| Some(r.steal_s? / (r.wall_s * f64::from(r.logical_cpus.max(1)))).filter(|x| x.is_finite());
    /// The connections' own view (TCP_INFO): round trip, congestion window, retransmissions, pacing and delivery.
    tcp_rtt_us = |r| r.tcp_rtt_us;
    tcp_cwnd_segs = |r| r.tcp_cwnd_segs;
    tcp_total_retrans = |r| r.tcp_total_retrans.map(|n| n as f64);
    tcp_pacing_rate_mb_s = |r| r.tcp_pacing_rate_mb_s;
    tcp_delivery_rate_mb_s = |r| r.tcp_delivery_rate_mb_s;
    /// Shares of the timed section: busy (data to send), stalled by the receiver's window, by the send buffer.
    tcp_busy_ratio = |r| r.tcp_busy_ratio;
    tcp_rwnd_limited_ratio = |r| r.tcp_rwnd_limited_ratio;
    tcp_sndbuf_limited_ratio = |r| r.tcp_sndbuf_limited_ratio;
    /// A broker's consumers: the slowest and fastest consumer's MB/s, Jain's fairness index over them, and the time
    /// the slowest consumer took beside the median one's.
    consumer_min_mb_s = |r| r.consumer_min_mb_s;
    consumer_max_mb_s = |r| r.consumer_max_mb_s;
    consumer_jain = |r| r.consumer_jain;
    consumer_slowest_s = |r| r.consumer_slowest_s;
    consumer_median_s = |r| r.consumer_median_s;
    /// `--link` paths with a rate: the share of it the payload moved at (`link-bound` from 90%).
    link_rate_ratio = |r| Some(r.throughput_gbit_s * 1e9 / r.link_rate_bit_s? as f64);
    /// Run-queue waits of the sender's and the sink's threads over the timed section.
    runq_wait_ratio = |r| {
        let wait = r.sender_runq_wait_s? + r.sink_runq_wait_s.unwrap_or(0.0);
        (r.wall_s > 0.0).then(|| wait / r.wall_s)
    };
}

/// One case over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseSummary {
    pub case_id: String,
    /// What the case is (strategy, threads, chunk, layout, cache, congestion control, receiver, verify, queue
    /// depth).
    #[serde(flatten)]
    pub key: CaseKey,
    /// Paths that really ran (more than one only if a fallback happened in some repetitions).
    pub paths: Vec<Strategy>,
    /// Why a path differed from the strategy, as the kernel or the library said (empty without a fallback).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback_reasons: Vec<String>,
    /// Sizes of the file sent and pass counts (one size; more than one pass count where a later round raised it).
    pub file_bytes: Vec<u64>,
    pub passes: Vec<u32>,
    pub ok_runs: usize,
    pub failed_runs: usize,
    /// Ok repetitions whose timed section lasted under `SHORT_RUN_S` (flagged `short-run` in runs.csv): a faster
    /// mode than the pass count was set for. They are kept and counted in `ok_runs`, the median and `vs sf`, so
    /// that the faster mode is not selected out.
    pub short_runs: usize,
    pub metrics: Metrics,
    /// The median MB/s with its distribution-free interval (`stats`).
    pub throughput_mb_s: Option<Estimate>,
    /// The ratio to serial sendfile with the same chunk, cache, receiver and congestion control: one ratio per
    /// round both ran in, their median and its interval. None for sendfile itself and where it did not run.
    pub vs_sendfile: Option<Estimate>,
    /// What `vs_sendfile`'s interval says (`same` within `--same-within`, `not-distinguishable`, `above` or `below`
    /// 1) and its real level: the table's `=`, `≈` or no mark.
    pub vs_sendfile_verdict: Option<Verdict>,
    /// The two clusters of a case whose repetitions fall into two (flag `bimodal`).
    pub modes: Option<Modes>,
    /// What limited the flow, as the kernel's TCP_INFO timers saw it (None: not recorded).
    pub limit: Option<limit::Limit>,
    pub flags: Vec<CaseFlag>,
    pub advice: Vec<String>,
}

impl CaseSummary {
    fn flag(&mut self, flag: CaseFlag, advice: String) {
        if !self.flags.contains(&flag) {
            self.flags.push(flag);
        }
        self.advice.push(advice);
    }

    /// This case is its own baseline (serial sendfile).
    pub fn is_baseline(&self) -> bool {
        self.key.sendfile_baseline() == self.key
    }
}

/// Each case's ok repetitions' MB/s by what pairs them (their round).
fn by_round(rows: &[&Row]) -> BTreeMap<PairKey, f64> {
    let mut map = BTreeMap::new();
    for r in rows.iter().filter(|r| r.is_ok()) {
        map.entry(r.pair_key()).or_insert(r.throughput_mb_s);
    }
    map
}

/// Each case's ratios to its sendfile baseline, one per round both ran in (cases without a baseline among the rows,
/// and the baselines themselves, are left out). `vs sf` is their median; `compare` pools them across sets.
pub fn ratios_to_sendfile(rows: &[Row]) -> BTreeMap<CaseKey, Vec<f64>> {
    let mut groups: BTreeMap<CaseKey, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        groups.entry(row.key()).or_default().push(row);
    }
    let rounds: BTreeMap<CaseKey, BTreeMap<PairKey, f64>> = groups.iter().map(|(k, r)| (*k, by_round(r))).collect();
    rounds
        .iter()
        .filter_map(|(k, mine)| {
            let base = k.sendfile_baseline();
            (base != *k).then(|| Some((*k, paired_ratios(mine, rounds.get(&base)?))))?
        })
        .collect()
}

/// The values `--repeat auto` decides each case on: its ratios to sendfile where its baseline is among the rows,
/// else its ok repetitions' MB/s (what `CaseSummary::deciding` estimates).
pub fn deciding_values(rows: &[Row]) -> BTreeMap<CaseKey, Vec<f64>> {
    let mut values = ratios_to_sendfile(rows);
    values.retain(|_, v| !v.is_empty());
    let paired: BTreeSet<CaseKey> = values.keys().copied().collect();
    for r in rows.iter().filter(|r| r.is_ok() && !paired.contains(&r.key())) {
        values.entry(r.key()).or_default().push(r.throughput_mb_s);
    }
    values
}

/// Groups rows by case (in the order cases first appear) and summarises each, judging ratios against
/// `DEFAULT_SAME_WITHIN`.
pub fn summarise(rows: &[Row]) -> Vec<CaseSummary> {
    summarise_within(rows, DEFAULT_SAME_WITHIN)
}

/// `summarise`, judging each `vs sf` against `same_within` (`--same-within`).
pub fn summarise_within(rows: &[Row], same_within: f64) -> Vec<CaseSummary> {
    let mut order: Vec<CaseKey> = Vec::new();
    let mut groups: BTreeMap<CaseKey, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        let key = row.key();
        if !groups.contains_key(&key) {
            order.push(key);
        }
        groups.entry(key).or_default().push(row);
    }
    let ratios = ratios_to_sendfile(rows);
    let mut cases: Vec<CaseSummary> = order
        .iter()
        .map(|k| {
            let vs = ratios.get(k).and_then(|r| Estimate::of_median(r));
            let mut case = summarise_case(*k, &groups[k], vs);
            case.vs_sendfile_verdict = vs.map(|e| e.verdict(same_within));
            case
        })
        .collect();
    receiver::compare(&mut cases, &groups);
    link::judge(&mut cases, &groups, same_within);
    for c in &mut cases {
        limit::judge(c);
    }
    for c in &mut cases {
        noise::explain(c, &groups[&c.key]);
        consumers::explain(c, &groups[&c.key]);
    }
    cases
}

fn distinct<T: Ord + Clone>(values: impl Iterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = values.collect();
    v.sort();
    v.dedup();
    v
}

fn summarise_case(key: CaseKey, rows: &[&Row], vs_sendfile: Option<Estimate>) -> CaseSummary {
    let ok: Vec<&Row> = rows.iter().copied().filter(|r| r.is_ok()).collect();
    let mb_s: Vec<f64> = ok.iter().map(|r| r.throughput_mb_s).collect();
    let mut case = CaseSummary {
        case_id: key.id(),
        key,
        paths: distinct(rows.iter().map(|r| r.path)),
        fallback_reasons: distinct(
            rows.iter()
                .filter(|r| !r.fallback_reason.is_empty())
                .map(|r| r.fallback_reason.clone()),
        ),
        file_bytes: distinct(rows.iter().map(|r| r.file_bytes)),
        passes: distinct(ok.iter().map(|r| r.passes)),
        ok_runs: ok.len(),
        failed_runs: rows.len() - ok.len(),
        short_runs: ok.iter().filter(|r| r.wall_s < SHORT_RUN_S).count(),
        metrics: Metrics::of(&ok),
        throughput_mb_s: Estimate::of_median(&mb_s),
        vs_sendfile,
        vs_sendfile_verdict: None,
        modes: modes(&mb_s),
        limit: None,
        flags: Vec::new(),
        advice: Vec::new(),
    };
    flag(&mut case, rows);
    case
}

/// Every flag of a case: how far its numbers can be trusted, then what ran and under what.
fn flag(case: &mut CaseSummary, rows: &[&Row]) {
    flag_numbers(case, rows);
    flag_conditions(case, rows);
}

/// Failed repetitions, too short a timed section, two modes or too wide a spread.
fn flag_numbers(case: &mut CaseSummary, rows: &[&Row]) {
    if case.failed_runs > 0 {
        let statuses: Vec<&str> = rows.iter().filter(|r| !r.is_ok()).map(|r| r.status.name()).collect();
        let advice = format!(
            "{} repetition(s) failed ({}); see the error column",
            case.failed_runs,
            statuses.join(", ")
        );
        case.flag(CaseFlag::Failed(case.failed_runs), advice);
    }
    if let Some(wall) = case.metrics.wall_s
        && wall.median < SHORT_RUN_S
    {
        let advice = format!(
            "median timed section {:.3} s is under {SHORT_RUN_S} s: leave --passes at auto and raise --min-time",
            wall.median
        );
        case.flag(CaseFlag::ShortRun, advice);
    } else if case.short_runs > 0 {
        let advice = format!(
            "{} of {} repetitions lasted under {SHORT_RUN_S} s (a faster mode than the pass count was set for; later \
             rounds got more passes): kept and counted, so that the faster mode is not selected out, though so short \
             a timed section is timed less well (flagged short-run in runs.csv){}",
            case.short_runs,
            case.ok_runs,
            if case.is_baseline() {
                "; the other cases' vs sf divide by them in their rounds"
            } else {
                ""
            }
        );
        case.flag(CaseFlag::Short(case.short_runs), advice);
    }
    if let Some(m) = case.modes {
        let advice = format!(
            "bimodal: {} repetition(s) near {}, {} near {}; the median ({}) describes neither: quote both modes, or \
             find what switches them (see the notes below and --cc)",
            m.low_count,
            format_rate_mb_s(m.low_median),
            m.high_count,
            format_rate_mb_s(m.high_median),
            case.metrics
                .throughput_mb_s
                .map_or_else(String::new, |t| format_rate_mb_s(t.median)),
        );
        case.flag(CaseFlag::Bimodal, advice);
    } else if let Some(t) = case.metrics.throughput_mb_s
        && case.ok_runs >= 2
        && t.spread() > WIDE_SPREAD
    {
        let reach = case.throughput_mb_s.map_or_else(String::new, |e| {
            format!(
                ", and the median's interval reaches ±{:.0}%",
                e.relative_reach() * 100.0
            )
        });
        let advice = format!(
            "runs spread {:.0}% (max-min over the median, which grows with the number of repetitions){reach}: more \
             rounds (--repeat, or --repeat auto) narrow the median's interval, not the spread; a quieter machine, \
             pinning (--sender-cpus) or a longer --min-time narrow the spread",
            t.spread() * 100.0
        );
        case.flag(CaseFlag::Spread, advice);
    }
}

/// The conditions a case ran under that its label does not show: the cache, the kernel's copies, a fallback, a
/// pacing congestion control, the pass cap, an emulator.
fn flag_conditions(case: &mut CaseSummary, rows: &[&Row]) {
    let has = |f: Flag| rows.iter().any(|r| r.flags.has(f));
    if has(Flag::ResidencyMismatch) {
        let advice = format!(
            "the page cache was not {} as labelled (see resident_before_ratio)",
            case.key.cache
        );
        case.flag(CaseFlag::ResidencyMismatch, advice);
    }
    if let Some(copied) = case.metrics.zerocopy_copied_ratio
        && copied.median > 0.0
    {
        let advice = format!(
            "the kernel copied {:.0}% of the zero-copy sends anyway (always so on loopback): not a zero-copy result",
            copied.median * 100.0
        );
        case.flag(CaseFlag::ZerocopyCopied, advice);
    }
    if let Some(why) = rows
        .iter()
        .find(|r| !r.rx_fallback_reason.is_empty())
        .map(|r| &r.rx_fallback_reason)
    {
        let advice = format!("the sink could not receive zero-copy and copied everything: {why}");
        case.flag(CaseFlag::Fallback, advice);
    } else if let Some(mapped) = case.metrics.rx_zerocopy_mapped_ratio
        && mapped.median < 0.5
    {
        let advice = format!(
            "the kernel mapped {:.0}% of the bytes into the sink (zerocopy) and copied the rest: it maps only whole \
             pages of payload (on loopback, --netns-mtu {} makes segments whole pages) that are neither compound nor \
             owned by a file or a process, i.e. pages a NIC received into; over loopback or veth the sender's own \
             pages (page cache, socket buffers) never qualify on kernels with the 2024 check (6.8, and stable \
             kernels since), and only the fresh pages that loopback copies zero-copy sends (msg-zerocopy, \
             io-uring-send-zc) into can",
            mapped.median * 100.0,
            crate::experiment::netns::ZEROCOPY_MTU_IPV4
        );
        case.flag(CaseFlag::Fallback, advice);
    }
    if case.paths.iter().any(|p| *p != case.key.strategy) {
        let paths: Vec<String> = case.paths.iter().map(|p| p.to_string()).collect();
        let why = match case.fallback_reasons.as_slice() {
            [] => String::new(),
            reasons => format!(" ({})", reasons.join("; ")),
        };
        let advice = format!("{} ran as {}{why}", case.key.strategy, paths.join(" / "));
        case.flag(CaseFlag::Fallback, advice);
    }
    if let Some(cc) = case.key.cc.filter(Cc::paces)
        && rows.iter().any(|r| r.transport == Transport::Loopback)
    {
        let advice = format!(
            "{cc} paces every flow, loopback too: a single stream goes at the pace {cc} finds, not at what the \
             sender can do (single-stream sendfile ran 3x faster under cubic on this project's VM); --cc cubic,{cc} \
             measures both"
        );
        case.flag(CaseFlag::Paced, advice);
    }
    if has(Flag::PassesCapped) {
        let advice = format!(
            "{} passes (the cap) still lasted under --min-time: the file is too small to time here; use a bigger --size",
            crate::base::model::Passes::CAP
        );
        case.flag(CaseFlag::PassesCapped, advice);
    }
    if has(Flag::Emulated) {
        let advice =
            "measured under an emulator (QEMU's TCG): these numbers are the emulator's, not the kernel's".to_string();
        case.flag(CaseFlag::Emulated, advice);
    }
}

/// The `vs sf` cell: the paired ratio and its interval, `base` for sendfile itself.
fn vs_cell(c: &CaseSummary) -> String {
    match (&c.vs_sendfile, c.is_baseline()) {
        (_, true) => "base".into(),
        (Some(e), false) => e.ratio_text(c.vs_sendfile_verdict.map_or(DEFAULT_SAME_WITHIN, |v| v.same_within)),
        (None, false) => "-".into(),
    }
}

/// The line above the table: the congestion control the cases ran under.
pub fn cc_line(cases: &[CaseSummary]) -> String {
    let ccs: BTreeSet<Option<Cc>> = cases.iter().map(|c| c.key.cc).collect();
    let names: Vec<String> = ccs
        .iter()
        .map(|c| c.map_or_else(|| "not recorded".to_string(), |c| c.to_string()))
        .collect();
    // Over a --link path pacing is what the algorithm is for: only loopback cases are flagged.
    let paced = cases.iter().any(|c| c.flags.contains(&CaseFlag::Paced));
    format!(
        "congestion control: {}{}\n",
        names.join(", "),
        if paced {
            " (paces even loopback: see the notes)"
        } else {
            ""
        }
    )
}

/// The table of a result folder's runs.csv (`xferbench table DIR`), each `vs sf` judged against `same_within`.
pub fn table_of_dir(dir: &std::path::Path, same_within: f64) -> anyhow::Result<String> {
    let rows = crate::results::record::read_rows(dir)?;
    anyhow::ensure!(!rows.is_empty(), "'{}' has no rows", dir.join("runs.csv").display());
    Ok(table(&summarise_within(&rows, same_within)))
}

/// The terminal table: one line per case, then the notes and what the columns mean.
pub fn table(cases: &[CaseSummary]) -> String {
    let t = case_table(cases);
    table_text(cases, &t)
}

/// The table's cells, one row per case, for any writer (the terminal's, report.html's).
pub fn case_table(cases: &[CaseSummary]) -> Table {
    let labeler = Labeler::new(cases.iter().map(|c| &c.key)).without_chunk_and_cache();
    let mut t = Table::new([
        ("case", Align::Left),
        ("chunk", Align::Right),
        ("cache", Align::Right),
        ("n", Align::Right),
        ("passes", Align::Right),
        ("median", Align::Right),
        ("spread", Align::Right),
        ("vs sf [interval]", Align::Left),
        ("CPU s/GB", Align::Right),
        ("snd s/GB", Align::Right),
        ("ctxsw/GB", Align::Right),
        ("flags", Align::Left),
    ]);
    let fmt_opt = |v: Option<f64>, prec: usize| v.map(|x| format!("{x:.prec$}")).unwrap_or_else(|| "-".into());
    for c in cases {
        let m = &c.metrics;
        let ctxsw = match (m.sender_ctxsw_per_gb, m.sink_ctxsw_per_gb) {
            (Some(a), Some(b)) => Some(a.median + b.median),
            (Some(a), None) => Some(a.median),
            _ => None,
        };
        let passes = c.passes.iter().map(u32::to_string).collect::<Vec<_>>().join("/");
        let median = m.throughput_mb_s.map_or_else(
            || "failed".into(),
            // A bimodal median is never shown without its mark: the note gives both modes.
            |s| format_rate_mb_s(s.median) + if c.modes.is_some() { "*" } else { "" },
        );
        t.row([
            labeler.label(&c.key),
            format_bytes(c.key.chunk_bytes),
            c.key.cache.to_string(),
            c.ok_runs.to_string(),
            if passes.is_empty() { "-".into() } else { passes },
            median,
            m.throughput_mb_s
                .map_or_else(|| "-".into(), |s| format!("{:.0}%", s.spread() * 100.0)),
            vs_cell(c),
            fmt_opt(m.cpu_s_per_gb.map(|s| s.median), 3),
            fmt_opt(m.sender_cpu_s_per_gb.map(|s| s.median), 3),
            fmt_opt(ctxsw, 0),
            c.flags.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" "),
        ]);
    }
    t
}

/// The table for a terminal, with the line above it, the notes and the legend under it.
fn table_text(cases: &[CaseSummary], t: &Table) -> String {
    let mut out = cc_line(cases);
    out.push_str(&t.terminal());
    out.push_str(&notes(cases));
    out.push_str(&legend(cases));
    out.push_str(consumers::legend(cases));
    out
}

/// What the columns mean, with the margin the `=` mark was judged against.
fn legend(cases: &[CaseSummary]) -> String {
    let within = cases
        .iter()
        .find_map(|c| c.vs_sendfile_verdict.map(|v| v.same_within))
        .unwrap_or(DEFAULT_SAME_WITHIN);
    format!(
        "\nmedian = MB/s (10^6 bytes/s) over ok repetitions, every pass of the file counted (* two modes: see the \
         notes); n = ok repetitions (short:N = N of them under {SHORT_RUN_S} s, counted); passes = times the file \
         went per repetition; spread = (max-min)/median; vs sf = the median of the per-round ratios to serial \
         sendfile with the same chunk, cache, receiver and congestion control, with the interval that holds the \
         true median with at least 95% (order statistics; with fewer than 6 rounds the whole range, its real level \
         after it, floored); = the interval lies within {} of 1.00 (--same-within): the same as sendfile \
         within that margin; ≈ the interval holds 1.00 but reaches beyond the margin: not distinguishable from \
         sendfile here, and not shown the same; CPU s/GB = sender + sink + softirq CPU seconds per 10^9 bytes; snd \
         = sender only.\n",
        crate::results::stats::margin_text(within)
    )
}

/// The notes under the table: each piece of advice once, naming every case it holds for by whatever sets it
/// apart, then what limited each flow.
pub fn notes(cases: &[CaseSummary]) -> String {
    let mut out = String::new();
    // One note per piece of advice, naming every case it holds for by whatever sets it apart.
    let named = Labeler::new(cases.iter().map(|c| &c.key));
    let mut notes: Vec<(String, Vec<String>)> = Vec::new();
    for c in cases {
        let label = named.label(&c.key);
        for a in &c.advice {
            match notes.iter_mut().find(|(text, _)| text == a) {
                Some((_, labels)) => labels.push(label.clone()),
                None => notes.push((a.clone(), vec![label.clone()])),
            }
        }
    }
    let limits: Vec<String> = cases
        .iter()
        .filter_map(|c| Some(format!("{}: {}", named.label(&c.key), c.limit?.words())))
        .collect();
    if !notes.is_empty() || !limits.is_empty() {
        out.push_str("\nNotes:\n");
        for (text, labels) in notes {
            out.push_str(&format!("  {}: {text}\n", labels.join(", ")));
        }
        if !limits.is_empty() {
            out.push_str(&format!(
                "  what limited each flow, as TCP saw it (TCP_INFO; stalls of the worst connection): {}\n",
                limits.join("; ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
