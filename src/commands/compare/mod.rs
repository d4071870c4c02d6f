//! Lines up result sets (folders holding `runs.csv`, typically from different kernels or machines): the same
//! case measured in each, its median throughput, the ratio to the first set, and whether the difference is
//! beyond the noise of the repetitions. Everything comes from `runs.csv`, so sets from any machine compare.
//!
//! A case is the experiment (`CaseKey`: strategy, threads, chunk, layout, cache, receiver, ...), not the bytes:
//! sets made with different file sizes or pass counts line up, and each side's size and passes are shown.
//! The first set is the baseline; its cases that no other set has are left out of the table and counted below it.

mod chart;
mod command;
mod differs;
mod gate;
mod json;

pub use command::command;

use crate::base::model::{CaseKey, Cc, Flag, Labeler};
use crate::base::units::format_bytes;
use crate::commands::plot;
use crate::results::record::Row;
use crate::results::stats::{Estimate, Says, margin_text, median, percent_floor, ratio_interval};
use crate::results::table::{Align, Table};
use anyhow::Context;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

/// One case of one result set.
pub(crate) struct Measured {
    /// MB/s of each ok repetition.
    pub mb_s: Vec<f64>,
    /// The file sizes and pass counts it was measured with.
    pub file_bytes: BTreeSet<u64>,
    pub passes: BTreeSet<u32>,
}

/// One result folder, its rows grouped by case.
pub(crate) struct ResultSet {
    pub name: String,
    pub describe: String,
    pub cases: BTreeMap<CaseKey, Measured>,
    /// Each case's ratios to sendfile, one per round (`summary::ratios_to_sendfile`).
    pub ratios: BTreeMap<CaseKey, Vec<f64>>,
    /// Its rows were measured under an emulator.
    pub emulated: bool,
    /// Where and how it was measured, for "what differs".
    facts: differs::Facts,
}

impl ResultSet {
    /// Groups `rows` by case; with `one_cc`, every set ran under one congestion control each and the cases line up
    /// without it (what differs names it instead).
    fn new(dir: &Path, name: String, rows: &[Row], one_cc: bool) -> Self {
        let describe = format!(
            "host {}, kernel {}, {}, {} logical CPUs, congestion control {}",
            plot::distinct(rows, |r| r.host.clone()),
            plot::distinct(rows, |r| r.kernel.clone()),
            plot::distinct(rows, |r| r.cpu_model.clone()),
            plot::distinct(rows, |r| r.logical_cpus.to_string()),
            plot::distinct(rows, |r| cc_text(r.congestion_control)),
        );
        let mut cases: BTreeMap<CaseKey, Measured> = BTreeMap::new();
        for row in rows {
            let mut key = row.key();
            if one_cc {
                key.cc = None;
            }
            let m = cases.entry(key).or_insert_with(|| Measured {
                mb_s: Vec::new(),
                file_bytes: BTreeSet::new(),
                passes: BTreeSet::new(),
            });
            m.mb_s.push(row.throughput_mb_s);
            m.file_bytes.insert(row.file_bytes);
            m.passes.insert(row.passes);
        }
        let ratios = crate::results::summary::ratios_to_sendfile(rows)
            .into_iter()
            .map(|(mut k, v)| {
                if one_cc {
                    k.cc = None;
                }
                (k, v)
            })
            .collect();
        ResultSet {
            name,
            describe,
            cases,
            ratios,
            emulated: rows.iter().any(|r: &Row| r.flags.has(Flag::Emulated)),
            facts: differs::Facts::load(dir, rows),
        }
    }

    /// Up to five of this set's cases in words, for the error when nothing matches.
    fn sample(&self) -> String {
        let mut listed: Vec<String> = self.cases.keys().take(5).map(|k| k.to_string()).collect();
        if self.cases.len() > listed.len() {
            listed.push(format!("and {} more", self.cases.len() - listed.len()));
        }
        format!("{} cases ({})", self.cases.len(), listed.join("; "))
    }
}

/// A congestion control for people; rows from before xferbench recorded it say so.
pub(crate) fn cc_text(cc: Option<Cc>) -> String {
    cc.map_or_else(|| "not recorded".to_string(), |c| c.to_string())
}

/// Short names for the sets: folder names, or the whole path where two folders share a name.
fn names(dirs: &[PathBuf]) -> Vec<String> {
    let base = |d: &PathBuf| {
        d.canonicalize()
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| d.display().to_string())
    };
    let bases: Vec<String> = dirs.iter().map(base).collect();
    bases
        .iter()
        .zip(dirs)
        .map(|(b, d)| {
            if bases.iter().filter(|o| *o == b).count() > 1 {
                d.display().to_string()
            } else {
                b.clone()
            }
        })
        .collect()
}

/// Whether two sets of repetitions differ beyond their noise: the ratio of their medians (other over base) and
/// the exact rank interval of the ratio between them (`stats::ratio_interval`), judged against 1 and the margin
/// `--same-within`. It says "differs" of two sets from one distribution at most 1 - its level of the time, at
/// every size it decides (a simulation test holds it to that). In JSON, `verdict` names the variant and its fields
/// (`estimate`, `same_within`, or `ratio`, `base`, `other`) sit beside it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// The interval leaves out 1, and does not lie within the margin.
    Differs { estimate: Estimate },
    /// The interval holds 1 but reaches beyond the margin: not distinguishable, and not shown the same.
    NotDistinguishable { estimate: Estimate },
    /// The interval lies within the margin: the same within `same_within`.
    Same { estimate: Estimate, same_within: f64 },
    /// The sets are too small for any interval to reach 95% (3 a side, or fewer): the ratio of medians alone.
    TooFew {
        ratio: Option<f64>,
        base: usize,
        other: usize,
    },
}

/// `yes [1.05–1.15] 97%`, `no [0.93–1.08] 96%`, `the same within ±5% [0.98–1.03] 96%`, `too few to tell (n=3 and
/// 3)`: the words of compare.md, each interval with its real level, floored.
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let interval = |e: &Estimate| format!("[{:.2}–{:.2}] {}", e.lo, e.hi, percent_floor(e.level));
        match self {
            Verdict::Differs { estimate } => write!(f, "yes {}", interval(estimate)),
            Verdict::NotDistinguishable { estimate } => write!(f, "no {}", interval(estimate)),
            Verdict::Same { estimate, same_within } => {
                write!(
                    f,
                    "the same within {} {}",
                    margin_text(*same_within),
                    interval(estimate)
                )
            }
            Verdict::TooFew { base, other, .. } => write!(f, "too few to tell (n={base} and {other})"),
        }
    }
}

impl Verdict {
    /// The ratio of medians, other over base.
    pub fn ratio(&self) -> Option<f64> {
        match self {
            Verdict::Differs { estimate }
            | Verdict::NotDistinguishable { estimate }
            | Verdict::Same { estimate, .. } => Some(estimate.median),
            Verdict::TooFew { ratio, .. } => *ratio,
        }
    }
}

/// Whether `other` differs from `base` beyond the noise, or is the same within `same_within`: the exact rank
/// interval of the ratio between them, where the sets are large enough for one to reach 95%.
pub fn verdict(base: &[f64], other: &[f64], same_within: f64) -> Verdict {
    let Some(estimate) = ratio_interval(base, other) else {
        let ratio = match (median(base), median(other)) {
            (Some(a), Some(b)) if a > 0.0 => Some(b / a),
            _ => None,
        };
        return Verdict::TooFew {
            ratio,
            base: base.len(),
            other: other.len(),
        };
    };
    match estimate.verdict(same_within).says {
        Says::Same => Verdict::Same { estimate, same_within },
        Says::NotDistinguishable | Says::NoInterval => Verdict::NotDistinguishable { estimate },
        Says::Above | Says::Below => Verdict::Differs { estimate },
    }
}

/// The result sets of `dirs`, and the cases the first shares with any other (in key order).
pub(crate) fn load(dirs: &[PathBuf]) -> anyhow::Result<(Vec<ResultSet>, Vec<CaseKey>)> {
    anyhow::ensure!(
        dirs.len() >= 2,
        "compare needs at least two result folders, got {}",
        dirs.len()
    );
    let rows: Vec<Vec<Row>> = dirs.iter().map(|d| plot::ok_rows(d)).collect::<anyhow::Result<_>>()?;
    // Sets that each ran under one congestion control line up case by case whatever it was ("what differs" leads
    // with it); a set that varied it (--cc cubic,bbr) keeps it in every case.
    let one_cc = rows
        .iter()
        .all(|rs| rs.iter().map(|r| r.congestion_control).collect::<BTreeSet<_>>().len() <= 1);
    let sets: Vec<ResultSet> = names(dirs)
        .into_iter()
        .zip(dirs.iter().zip(&rows))
        .map(|(name, (dir, rows))| ResultSet::new(dir, name, rows, one_cc))
        .collect();
    let (first, others) = sets.split_first().context("no result set")?;
    for other in others {
        if !first.cases.keys().any(|c| other.cases.contains_key(c)) {
            anyhow::bail!(
                "no case in common between {} and {}: {} has {}, {} has {}",
                first.name,
                other.name,
                first.name,
                first.sample(),
                other.name,
                other.sample()
            );
        }
    }
    // In key order: warm before cold, serial before parallel.
    let common: Vec<CaseKey> = first
        .cases
        .keys()
        .filter(|c| others.iter().any(|o| o.cases.contains_key(*c)))
        .copied()
        .collect();
    Ok((sets, common))
}

/// Compares the result folders and returns the Markdown, each verdict judged against `same_within`
/// (`--same-within`); with `out`, writes it there with the charts and report.html (`write_out`).
pub fn compare_dirs(dirs: &[PathBuf], out: Option<&Path>, same_within: f64) -> anyhow::Result<String> {
    let (sets, common) = load(dirs)?;
    let markdown = document(&sets, &common, same_within);
    if let Some(out) = out {
        write_out(out, &sets, &common, &markdown, same_within)?;
    }
    Ok(markdown)
}

/// Writes `compare.md`, the charts (`compare`, `compare-ratio`, PNG and SVG) and report.html into `out`.
pub(crate) fn write_out(
    out: &Path,
    sets: &[ResultSet],
    common: &[CaseKey],
    markdown: &str,
    same_within: f64,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create '{}'", out.display()))?;
    let md = out.join("compare.md");
    std::fs::write(&md, markdown).with_context(|| format!("cannot write '{}'", md.display()))?;
    let labeler = Labeler::new(common);
    let labels: Vec<String> = common.iter().map(|k| labeler.label(k)).collect();
    let bars = chart::CompareChart::new(sets, common, labels.clone());
    let ratios = chart::ratio_chart(sets, common, labels, same_within);
    plot::render(out, &bars)?;
    plot::render(out, &ratios)?;
    let svgs = vec![
        (ratios.stem.clone(), plot::svg(&ratios)?),
        ("compare".to_string(), plot::svg(&bars)?),
    ];
    crate::commands::report::write_comparison(out, markdown, &svgs)?;
    Ok(())
}

/// The receiver, verification, queue depth, congestion control and link of a case, in words: what tells cases apart
/// beyond the columns.
fn more(k: &CaseKey) -> String {
    let mut parts = vec![match k.receiver {
        Some((mode, buffer)) => format!("rx {mode} {}", format_bytes(buffer)),
        None => "rx theirs".to_string(),
    }];
    if k.verify {
        parts.push("verified".into());
    }
    if let Some(d) = k.queue_depth {
        parts.push(format!("depth {d}"));
    }
    if let Some(cc) = k.cc {
        parts.push(cc.to_string());
    }
    if !k.link.is_loopback() {
        parts.push(format!("over {}", k.link));
    }
    parts.join(", ")
}

/// `1.20 GB × 4` (or every size and count, where rows of several were mixed).
fn bytes_and_passes(m: &Measured) -> String {
    let sizes: Vec<String> = m.file_bytes.iter().map(|b| format_bytes(*b)).collect();
    let passes: Vec<String> = m.passes.iter().map(u32::to_string).collect();
    format!("{} × {}", sizes.join("/"), passes.join("/"))
}

/// "What differs": for each set after the first, every item of where and how it was measured that is not the
/// first set's: the congestion control first, then the kernel.
fn what_differs(md: &mut String, sets: &[ResultSet]) {
    let first = &sets[0];
    let _ = writeln!(md, "\n## What differs\n");
    for other in &sets[1..] {
        let found = differs::between(&first.facts, &other.facts);
        if found.is_empty() {
            let _ = writeln!(
                md,
                "`{}` against `{}`: nothing recorded differs.\n",
                other.name, first.name
            );
            continue;
        }
        let _ = writeln!(
            md,
            "`{}` against `{}` ({} item(s)):\n",
            other.name,
            first.name,
            found.len()
        );
        let mut t = Table::new([
            ("item", Align::Left),
            (first.name.as_str(), Align::Left),
            (other.name.as_str(), Align::Left),
        ]);
        for d in &found {
            t.row([d.item.clone(), d.left.clone(), d.right.clone()]);
        }
        md.push_str(&t.markdown());
        md.push('\n');
    }
    let missing: Vec<&str> = sets
        .iter()
        .filter(|s| s.facts.record.is_none())
        .map(|s| s.name.as_str())
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(
            md,
            "No environment record in `{}` (a set from before xferbench kept one): only what its rows carry is \
             compared.\n",
            missing.join("`, `")
        );
    }
}

/// Whether the sets agree on each case's ratio to sendfile: every set's paired ratio and interval, the median of
/// all their per-round ratios pooled, how far the sets' medians spread, and how many sets' intervals hold the
/// pooled median (with intervals at 95%, about 19 of 20 should, when the sets measured the same thing).
fn agreement(sets: &[ResultSet], common: &[CaseKey], same_within: f64) -> String {
    let cases: Vec<&CaseKey> = common
        .iter()
        .filter(|k| sets.iter().any(|s| s.ratios.contains_key(k)))
        .collect();
    if cases.is_empty() {
        return String::new();
    }
    let labeler = Labeler::new(cases.iter().copied());
    let mut columns: Vec<(String, Align)> = vec![("case".into(), Align::Left)];
    columns.extend(sets.iter().map(|s| (format!("{} vs sf", s.name), Align::Left)));
    columns.extend(
        ["pooled median", "spread of the sets' medians", "intervals holding it"].map(|h| (h.to_string(), Align::Right)),
    );
    let mut t = Table::new(columns);
    for k in cases {
        let per_set: Vec<Option<Estimate>> = sets
            .iter()
            .map(|s| s.ratios.get(k).and_then(|r| Estimate::of_median(r)))
            .collect();
        let pooled: Vec<f64> = sets.iter().filter_map(|s| s.ratios.get(k)).flatten().copied().collect();
        let Some(pooled) = median(&pooled) else { continue };
        let medians: Vec<f64> = per_set.iter().flatten().map(|e| e.median).collect();
        let spread = crate::results::stats::Stat::of(&medians).map_or(0.0, |s| s.spread());
        let with_interval: Vec<&Estimate> = per_set.iter().flatten().filter(|e| e.n >= 2).collect();
        let holding = with_interval.iter().filter(|e| e.holds(pooled)).count();
        let mut cells = vec![labeler.label(k)];
        cells.extend(
            per_set
                .iter()
                .map(|e| e.map_or_else(|| "—".into(), |e| e.ratio_text(same_within))),
        );
        cells.push(format!("{pooled:.2}x"));
        cells.push(format!("{:.0}%", spread * 100.0));
        cells.push(format!("{holding} of {}", with_interval.len()));
        t.row(cells);
    }
    format!(
        "\n## Ratios to sendfile, set by set\n\nEach set's `vs sf` (the median of its per-round ratios to serial \
         sendfile, with its interval), the median of every set's per-round ratios pooled, the spread of the sets' \
         medians ((max-min)/median), and how many sets' intervals hold the pooled median.\n\n{}",
        t.markdown()
    )
}

/// One row per common case: its medians in each set, the ratio to the first and whether it differs.
fn cases_table(sets: &[ResultSet], common: &[CaseKey], same_within: f64) -> Table {
    let (first, others) = (&sets[0], &sets[1..]);
    let base_head = format!("{} MB/s (n, file × passes)", first.name);
    let mut columns: Vec<(String, Align)> = [
        ("strategy", Align::Left),
        ("threads", Align::Right),
        ("chunk", Align::Right),
        ("layout", Align::Left),
        ("cache", Align::Left),
        ("receiver", Align::Left),
    ]
    .map(|(h, a)| (h.to_string(), a))
    .to_vec();
    columns.push((base_head, Align::Right));
    for o in others {
        columns.push((format!("{} MB/s (n, file × passes)", o.name), Align::Right));
        columns.push((format!("{} ratio", o.name), Align::Right));
        columns.push((format!("{} differs [interval] level", o.name), Align::Left));
    }
    let mut t = Table::new(columns);
    let cell = |m: &Measured| {
        let med = median(&m.mb_s).unwrap_or(0.0);
        format!("{med:.0} (n={}, {})", m.mb_s.len(), bytes_and_passes(m))
    };
    for k in common {
        let base = &first.cases[k];
        let mut cells = vec![
            k.strategy.to_string(),
            k.threads.to_string(),
            format_bytes(k.chunk_bytes),
            k.layout.to_string(),
            k.cache.to_string(),
            more(k),
            cell(base),
        ];
        for o in others {
            match o.cases.get(k) {
                Some(m) => {
                    let v = verdict(&base.mb_s, &m.mb_s, same_within);
                    cells.push(cell(m));
                    cells.push(v.ratio().map_or_else(|| "n/a".into(), |r| format!("{r:.2}")));
                    cells.push(v.to_string());
                }
                None => cells.extend(["—", "—", "—"].map(String::from)),
            }
        }
        t.row(cells);
    }
    t
}

/// The markdown: which sets, what differs between them, then one row per common case.
pub(crate) fn document(sets: &[ResultSet], common: &[CaseKey], same_within: f64) -> String {
    let first = &sets[0];
    let mut md = String::from("# xferbench compare\n\nResult sets (ratios are against the first):\n\n");
    for (i, set) in sets.iter().enumerate() {
        let _ = writeln!(md, "{}. `{}`: {}", i + 1, set.name, set.describe);
    }
    let emulated: Vec<&str> = sets.iter().filter(|s| s.emulated).map(|s| s.name.as_str()).collect();
    if !emulated.is_empty() {
        let _ = writeln!(
            md,
            "\n**Emulated:** `{}` was measured under an emulator (QEMU's TCG): its numbers measure the emulator, not \
             the kernel, and its ratios say nothing about the kernel.",
            emulated.join("`, `")
        );
    }
    what_differs(&mut md, sets);
    md.push_str("## Cases\n\n");
    md.push_str(&cases_table(sets, common, same_within).markdown());
    let _ = write!(md, "{}", agreement(sets, common, same_within));
    let _ = writeln!(
        md,
        "\nMB/s: median over the ok repetitions (MB = 10^6 bytes; every pass of the file counted). ratio: the other \
         set's median over the first's. \"differs\": whether the interval of the ratio between the sets leaves out \
         1.00 (the exact rank interval of the pairwise ratios, behind the Wilcoxon rank-sum test: at least {} \
         whatever the distribution, its real level after it, floored; it says \"yes\" of two sets from one \
         distribution at most 1 - that level of the time); \"the same within {}\": the interval lies within that \
         margin of 1.00 (--same-within); too few to tell where no interval reaches {} (3 repetitions a side, or \
         fewer).",
        percent_floor(crate::results::stats::LEVEL),
        margin_text(same_within),
        percent_floor(crate::results::stats::LEVEL),
    );
    let only_first = first.cases.len() - common.len();
    if only_first > 0 {
        let _ = writeln!(
            md,
            "\n{only_first} case(s) of `{}` appear in no other set and are left out.",
            first.name
        );
    }
    md
}

#[cfg(test)]
mod tests;
