//! Lines up result sets (folders holding `runs.csv`, typically from different kernels or machines): the same
//! case measured in each, its median throughput, the ratio to the first set, and whether the difference is
//! beyond the noise of the repetitions. Everything comes from `runs.csv`, so sets from any machine compare.
//!
//! A case is the experiment (`CaseKey`: strategy, threads, chunk, layout, cache, receiver, ...), not the bytes:
//! sets made with different file sizes or pass counts line up, and each side's size and passes are shown.
//! The first set is the baseline; its cases that no other set has are left out of the table and counted below it.

mod chart;
mod differs;
mod mann_whitney;

use crate::model::{CaseKey, Flag, Labeler};
use crate::plot::{self, spread};
use crate::record::Row;
use crate::units::format_bytes;
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

/// Below this many repetitions on either side the U test cannot reach p < 0.05 with any margin, so the
/// verdict falls back to whether the min–max ranges are apart.
const MIN_FOR_U_TEST: usize = 4;
/// Significance level of the U test.
const ALPHA: f64 = 0.05;

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
    /// Its rows were measured under an emulator.
    pub emulated: bool,
    /// Where and how it was measured, for "what differs".
    facts: differs::Facts,
}

impl ResultSet {
    fn load(dir: &Path, name: String) -> anyhow::Result<Self> {
        let rows = plot::ok_rows(dir)?;
        let describe = format!(
            "host {}, kernel {}, {}, {} logical CPUs",
            plot::distinct(&rows, |r| r.host.clone()),
            plot::distinct(&rows, |r| r.kernel.clone()),
            plot::distinct(&rows, |r| r.cpu_model.clone()),
            plot::distinct(&rows, |r| r.logical_cpus.to_string()),
        );
        let mut cases: BTreeMap<CaseKey, Measured> = BTreeMap::new();
        for row in &rows {
            let m = cases.entry(row.key()).or_insert_with(|| Measured {
                mb_s: Vec::new(),
                file_bytes: BTreeSet::new(),
                passes: BTreeSet::new(),
            });
            m.mb_s.push(row.throughput_mb_s);
            m.file_bytes.insert(row.file_bytes);
            m.passes.insert(row.passes);
        }
        Ok(ResultSet {
            name,
            describe,
            cases,
            emulated: rows.iter().any(|r: &Row| r.flags.has(Flag::Emulated)),
            facts: differs::Facts::load(dir, &rows),
        })
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

/// How a verdict was reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Evidence {
    /// The Mann–Whitney U test, with its two-sided p-value.
    UTest { p: f64 },
    /// Too few repetitions for the test: whether the min–max ranges are apart.
    Ranges,
}

/// Whether two sets of repetitions differ beyond their noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Differs(Evidence),
    Same(Evidence),
    /// A side has no repetition.
    Unknown,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::UTest { p } => write!(f, "p={p:.2}"),
            Evidence::Ranges => f.write_str("ranges"),
        }
    }
}

/// `yes (p=0.03)`, `no (ranges overlap)`, `n/a`: the words compare.md has always used.
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Differs(Evidence::Ranges) => f.write_str("yes (ranges apart)"),
            Verdict::Same(Evidence::Ranges) => f.write_str("no (ranges overlap)"),
            Verdict::Differs(e) => write!(f, "yes ({e})"),
            Verdict::Same(e) => write!(f, "no ({e})"),
            Verdict::Unknown => f.write_str("n/a"),
        }
    }
}

/// Whether `other` differs from `base` beyond the noise, and by which test that was decided.
pub fn verdict(base: &[f64], other: &[f64]) -> Verdict {
    if base.len() < MIN_FOR_U_TEST || other.len() < MIN_FOR_U_TEST {
        let (Some(a), Some(b)) = (spread(base.iter().copied()), spread(other.iter().copied())) else {
            return Verdict::Unknown;
        };
        return if a.max < b.min || b.max < a.min {
            Verdict::Differs(Evidence::Ranges)
        } else {
            Verdict::Same(Evidence::Ranges)
        };
    }
    match mann_whitney::p_value(base, other) {
        Some(p) if p < ALPHA => Verdict::Differs(Evidence::UTest { p }),
        Some(p) => Verdict::Same(Evidence::UTest { p }),
        None => Verdict::Unknown,
    }
}

/// Compares the result folders, writes `compare.{md,png,svg}` into `out`, returns the markdown table.
pub fn compare_dirs(dirs: &[PathBuf], out: &Path) -> anyhow::Result<String> {
    anyhow::ensure!(
        dirs.len() >= 2,
        "compare needs at least two result folders, got {}",
        dirs.len()
    );
    let sets = names(dirs)
        .into_iter()
        .zip(dirs)
        .map(|(name, dir)| ResultSet::load(dir, name))
        .collect::<anyhow::Result<Vec<_>>>()?;
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

    let markdown = table(&sets, &common);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create '{}'", out.display()))?;
    let md = out.join("compare.md");
    std::fs::write(&md, &markdown).with_context(|| format!("cannot write '{}'", md.display()))?;
    let labeler = Labeler::new(&common);
    let labels = common.iter().map(|k| labeler.label(k)).collect();
    plot::render(out, &chart::CompareChart::new(&sets, &common, labels))?;
    Ok(markdown)
}

/// The receiver, verification and queue depth of a case, in words: what tells cases apart beyond the columns.
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
    parts.join(", ")
}

/// `1.20 GB × 4` (or every size and count, where rows of several were mixed).
fn bytes_and_passes(m: &Measured) -> String {
    let sizes: Vec<String> = m.file_bytes.iter().map(|b| format_bytes(*b)).collect();
    let passes: Vec<String> = m.passes.iter().map(u32::to_string).collect();
    format!("{} × {}", sizes.join("/"), passes.join("/"))
}

/// "What differs": for each set after the first, every item of where and how it was measured that is not the
/// first set's, kernel first.
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
            "`{}` against `{}` ({} item(s)):\n\n| item | {} | {} |\n|---|---|---|",
            other.name,
            first.name,
            found.len(),
            first.name,
            other.name
        );
        for d in &found {
            let _ = writeln!(md, "| {} | {} | {} |", d.item, cell_text(&d.left), cell_text(&d.right));
        }
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

/// A value fit for a markdown cell.
fn cell_text(v: &str) -> String {
    v.replace('|', "\\|")
}

/// The markdown: which sets, what differs between them, then one row per common case.
fn table(sets: &[ResultSet], common: &[CaseKey]) -> String {
    let (first, others) = (&sets[0], &sets[1..]);
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
    md.push_str("## Cases\n\n| strategy | threads | chunk | layout | cache | receiver |");
    let mut rule = String::from("\n|---|--:|--:|---|---|---|");
    let _ = write!(md, " {} MB/s (n, file × passes) |", first.name);
    rule.push_str("--:|");
    for o in others {
        let _ = write!(md, " {0} MB/s (n, file × passes) | {0} ratio | {0} differs |", o.name);
        rule.push_str("--:|--:|---|");
    }
    md.push_str(&rule);
    md.push('\n');
    let cell = |m: &Measured| {
        let median = spread(m.mb_s.iter().copied()).map_or(0.0, |s| s.median);
        (
            median,
            format!("{median:.0} (n={}, {})", m.mb_s.len(), bytes_and_passes(m)),
        )
    };
    for k in common {
        let base = &first.cases[k];
        let (base_median, base_cell) = cell(base);
        let _ = write!(
            md,
            "| {} | {} | {} | {} | {} | {} | {base_cell} |",
            k.strategy,
            k.threads,
            format_bytes(k.chunk_bytes),
            k.layout,
            k.cache,
            more(k),
        );
        for o in others {
            match o.cases.get(k) {
                Some(m) => {
                    let (median, text) = cell(m);
                    let ratio = if base_median > 0.0 {
                        format!("{:.2}", median / base_median)
                    } else {
                        "n/a".into()
                    };
                    let _ = write!(md, " {text} | {ratio} | {} |", verdict(&base.mb_s, &m.mb_s));
                }
                None => md.push_str(" — | — | — |"),
            }
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "\nMB/s: median over the ok repetitions (MB = 10^6 bytes; every pass of the file counted). \"differs\": \
         two-sided Mann–Whitney U test of the repetitions against the first set at p < {ALPHA} (exact for small \
         samples); with fewer than {MIN_FOR_U_TEST} repetitions on either side, whether the min–max ranges are apart \
         instead."
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
    fn verdicts_say_which_test() {
        let v = |a: &[f64], b: &[f64]| verdict(a, b).to_string();
        assert_eq!(v(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]), "yes (p=0.03)");
        assert_eq!(v(&[1.0, 3.0, 5.0, 7.0], &[2.0, 4.0, 6.0, 8.0]), "no (p=0.69)");
        assert_eq!(v(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), "yes (ranges apart)");
        assert_eq!(v(&[1.0, 2.0, 3.0], &[2.5, 5.0, 6.0, 7.0]), "no (ranges overlap)");
        assert_eq!(verdict(&[], &[1.0]), Verdict::Unknown);
        assert!(matches!(
            verdict(&[1.0; 4], &[2.0; 4]),
            Verdict::Differs(Evidence::UTest { .. })
        ));
    }
}
