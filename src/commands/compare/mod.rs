//! Lines up result sets (folders holding `runs.csv`, typically from different kernels or machines): the same
//! case measured in each, its median throughput, the ratio to the first set, and whether the difference is
//! beyond the noise of the repetitions. Everything comes from `runs.csv`, so sets from any machine compare.
//!
//! A case is the experiment (`CaseKey`: strategy, threads, chunk, layout, cache, receiver, ...), not the bytes:
//! sets made with different file sizes or pass counts line up, and each side's size and passes are shown.
//! The first set is the baseline; its cases that no other set has are left out of the table and counted below it.

mod chart;
mod differs;

use crate::base::model::{CaseKey, Cc, Flag, Labeler};
use crate::base::units::format_bytes;
use crate::commands::plot;
use crate::results::record::Row;
use crate::results::stats::{Estimate, median, ratio_of_medians};
use crate::results::table::{Align, Table};
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

/// Fewest repetitions on each side for a verdict: below, the bootstrap's interval would rest on too few values to
/// mean anything, and the verdict says "too few to tell".
pub const MIN_PER_SIDE: usize = 4;

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
/// its bootstrap interval (`stats::ratio_of_medians`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// The interval leaves out 1.
    Differs(Estimate),
    /// The interval holds 1.
    Same(Estimate),
    /// A side has fewer than `MIN_PER_SIDE` repetitions: the ratio of medians, without a verdict.
    TooFew {
        ratio: Option<f64>,
        base: usize,
        other: usize,
    },
}

/// `yes [1.05–1.15]`, `no [0.93–1.08]`, `too few to tell (n=5 and 3)`: the words of compare.md.
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Differs(e) => write!(f, "yes [{:.2}–{:.2}]", e.lo, e.hi),
            Verdict::Same(e) => write!(f, "no [{:.2}–{:.2}]", e.lo, e.hi),
            Verdict::TooFew { base, other, .. } => write!(f, "too few to tell (n={base} and {other})"),
        }
    }
}

impl Verdict {
    /// The ratio of medians, other over base.
    pub fn ratio(&self) -> Option<f64> {
        match self {
            Verdict::Differs(e) | Verdict::Same(e) => Some(e.median),
            Verdict::TooFew { ratio, .. } => *ratio,
        }
    }
}

/// Whether `other` differs from `base` beyond the noise: the bootstrap interval of the ratio of their medians,
/// with at least `MIN_PER_SIDE` repetitions on each side.
pub fn verdict(base: &[f64], other: &[f64]) -> Verdict {
    if base.len() < MIN_PER_SIDE || other.len() < MIN_PER_SIDE {
        let ratio = match (median(base), median(other)) {
            (Some(a), Some(b)) if a > 0.0 => Some(b / a),
            _ => None,
        };
        return Verdict::TooFew {
            ratio,
            base: base.len(),
            other: other.len(),
        };
    }
    match ratio_of_medians(base, other) {
        Some(e) if e.holds(1.0) => Verdict::Same(e),
        Some(e) => Verdict::Differs(e),
        None => Verdict::TooFew {
            ratio: None,
            base: base.len(),
            other: other.len(),
        },
    }
}

/// Compares the result folders and returns the markdown; with `out`, writes `compare.{md,png,svg}` there.
pub fn compare_dirs(dirs: &[PathBuf], out: Option<&Path>) -> anyhow::Result<String> {
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

    let markdown = document(&sets, &common);
    if let Some(out) = out {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create '{}'", out.display()))?;
        let md = out.join("compare.md");
        std::fs::write(&md, &markdown).with_context(|| format!("cannot write '{}'", md.display()))?;
        let labeler = Labeler::new(&common);
        let labels = common.iter().map(|k| labeler.label(k)).collect();
        plot::render(out, &chart::CompareChart::new(&sets, &common, labels))?;
    }
    Ok(markdown)
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
fn agreement(sets: &[ResultSet], common: &[CaseKey]) -> String {
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
        cells.extend(per_set.iter().map(|e| e.map_or_else(|| "—".into(), |e| e.ratio_text())));
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
fn cases_table(sets: &[ResultSet], common: &[CaseKey]) -> Table {
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
        columns.push((format!("{} differs [95% interval]", o.name), Align::Left));
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
                    let v = verdict(&base.mb_s, &m.mb_s);
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
fn document(sets: &[ResultSet], common: &[CaseKey]) -> String {
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
    md.push_str(&cases_table(sets, common).markdown());
    let _ = write!(md, "{}", agreement(sets, common));
    let _ = writeln!(
        md,
        "\nMB/s: median over the ok repetitions (MB = 10^6 bytes; every pass of the file counted). ratio: the other \
         set's median over the first's. \"differs\": whether the {:.0}% interval of that ratio (a percentile \
         bootstrap of {} resamples of each side, seeded, so the same sets give the same interval) leaves out 1.00; \
         with fewer than {MIN_PER_SIDE} repetitions on either side, too few to tell.",
        crate::results::stats::LEVEL * 100.0,
        crate::results::stats::RESAMPLES
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
mod tests {
    use super::*;

    #[test]
    fn verdicts_come_from_the_interval_and_too_few_say_so() {
        let v = |a: &[f64], b: &[f64]| verdict(a, b);
        let differs = v(&[100.0, 101.0, 99.0, 100.5, 99.5], &[120.0, 121.0, 119.0, 120.5, 119.5]);
        assert!(
            matches!(differs, Verdict::Differs(e) if e.lo > 1.15 && e.hi < 1.25),
            "{differs:?}"
        );
        assert!(differs.to_string().starts_with("yes [1."), "{differs}");
        let same = v(&[100.0, 103.0, 97.0, 101.0], &[99.0, 104.0, 98.0, 102.0]);
        assert!(matches!(same, Verdict::Same(_)), "{same:?}");
        assert!(same.to_string().starts_with("no ["), "{same}");
        // Five and three repetitions, ranges apart: too few to tell, never "yes".
        let few = v(&[100.0, 101.0, 102.0, 103.0, 104.0], &[110.0, 111.0, 112.0]);
        assert_eq!(few.to_string(), "too few to tell (n=5 and 3)");
        assert!((few.ratio().unwrap() - 111.0 / 102.0).abs() < 1e-12);
        assert_eq!(v(&[], &[1.0]).ratio(), None);
    }

    #[test]
    fn sets_that_agree_on_a_ratio_hold_the_pooled_median() {
        let row = |strategy: &str, round: u32, mb_s: f64| Row {
            strategy: strategy.parse().unwrap(),
            threads: if strategy.starts_with("parallel") { 4 } else { 1 },
            layout: if strategy.starts_with("parallel") {
                crate::base::model::Layout::Striped
            } else {
                crate::base::model::Layout::Single
            },
            round,
            throughput_mb_s: mb_s,
            status: crate::base::model::Status::Ok,
            ..Row::default()
        };
        let set = |name: &str, ratio: f64, jitter: f64| {
            let rows: Vec<Row> = (1..=6)
                .flat_map(|r| {
                    let j = 1.0 + jitter * f64::from(r % 3);
                    [
                        row("sendfile", r, 1000.0),
                        row("parallel-sendfile", r, 1000.0 * ratio * j),
                    ]
                })
                .collect();
            ResultSet::new(Path::new("/nonexistent"), name.into(), &rows, true)
        };
        let sets = [set("a", 1.5, 0.02), set("b", 1.5, 0.03), set("c", 2.5, 0.01)];
        let common: Vec<CaseKey> = sets[0].cases.keys().copied().collect();
        let md = agreement(&sets, &common);
        let line = md.lines().find(|l| l.starts_with("| parallel-sendfile")).expect(&md);
        assert!(line.contains("| 1.56x |"), "pooled: {line}");
        assert!(line.contains("| 2 of 3 |"), "the odd set out: {line}");
    }
}
