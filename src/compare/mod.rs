//! Lines up result sets (folders holding `runs.csv`, typically from different kernels or machines): the same
//! case measured in each, its median throughput, the ratio to the first set, and whether the difference is
//! beyond the noise of the repetitions. Everything comes from `runs.csv`, so sets from any machine compare.
//!
//! A case is (strategy, threads, chunk, layout, cache, file size): the columns that change what is measured.
//! The first set is the baseline; its cases that no other set has are left out of the table and counted below it.

mod chart;
mod mann_whitney;

use crate::plot::{self, CaseKey, Labeler, spread};
use crate::record::Row;
use crate::units::format_bytes;
use anyhow::Context;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Below this many repetitions on either side the U test cannot reach p < 0.05 with any margin, so the
/// verdict falls back to whether the min–max ranges are apart.
const MIN_FOR_U_TEST: usize = 4;
/// Significance level of the U test.
const ALPHA: f64 = 0.05;

/// The join key: a chart case plus the file size, which changes throughput but is the same within one run.
type Case = (CaseKey, u64);

/// One result folder, its rows grouped by case.
pub(crate) struct ResultSet {
    pub name: String,
    pub describe: String,
    /// Per case, the MB/s of each ok repetition.
    pub cases: BTreeMap<Case, Vec<f64>>,
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
        let mut cases: BTreeMap<Case, Vec<f64>> = BTreeMap::new();
        for row in &rows {
            cases.entry(case_of(row)).or_default().push(row.throughput_mb_s);
        }
        Ok(ResultSet { name, describe, cases })
    }

    /// Up to five of this set's cases in words, for the error when nothing matches.
    fn sample(&self) -> String {
        let mut listed: Vec<String> = self.cases.keys().take(5).map(case_words).collect();
        if self.cases.len() > listed.len() {
            listed.push(format!("and {} more", self.cases.len() - listed.len()));
        }
        format!("{} cases ({})", self.cases.len(), listed.join("; "))
    }
}

fn case_of(row: &Row) -> Case {
    (CaseKey::of(row), row.file_bytes)
}

fn case_words((k, file): &Case) -> String {
    format!(
        "{} threads={} chunk={} layout={} cache={} file={}",
        k.strategy,
        k.threads,
        format_bytes(k.chunk_bytes),
        k.layout,
        k.cache,
        format_bytes(*file)
    )
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

/// Whether `other` differs from `base` beyond the noise, and by which test that was decided.
pub(crate) fn verdict(base: &[f64], other: &[f64]) -> String {
    if base.len() < MIN_FOR_U_TEST || other.len() < MIN_FOR_U_TEST {
        let (Some(a), Some(b)) = (spread(base.iter().copied()), spread(other.iter().copied())) else {
            return "n/a".into();
        };
        return if a.max < b.min || b.max < a.min {
            "yes (ranges apart)"
        } else {
            "no (ranges overlap)"
        }
        .into();
    }
    match mann_whitney::p_value(base, other) {
        Some(p) if p < ALPHA => format!("yes (p={p:.2})"),
        Some(p) => format!("no (p={p:.2})"),
        None => "n/a".into(),
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
    let mut common: Vec<&Case> = first
        .cases
        .keys()
        .filter(|c| others.iter().any(|o| o.cases.contains_key(*c)))
        .collect();
    // The order of the plots: warm before cold, serial before parallel.
    common.sort_by_key(|(k, f)| {
        (
            k.cache != "warm",
            k.cache.clone(),
            plot::is_parallel(&k.strategy),
            k.clone(),
            *f,
        )
    });

    let markdown = table(&sets, &common);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create '{}'", out.display()))?;
    let md = out.join("compare.md");
    std::fs::write(&md, &markdown).with_context(|| format!("cannot write '{}'", md.display()))?;
    let labeler = Labeler::new(common.iter().map(|(k, _)| k));
    let sizes_vary = common.iter().any(|(_, f)| *f != common[0].1);
    let labels = common
        .iter()
        .map(|(k, f)| {
            if sizes_vary {
                format!("{} {}", labeler.label(k), format_bytes(*f))
            } else {
                labeler.label(k)
            }
        })
        .collect();
    plot::render(out, &chart::CompareChart::new(&sets, &common, labels))?;
    Ok(markdown)
}

/// The markdown: which sets, then one row per common case.
fn table(sets: &[ResultSet], common: &[&Case]) -> String {
    let (first, others) = (&sets[0], &sets[1..]);
    let mut md = String::from("# xferbench compare\n\nResult sets (ratios are against the first):\n\n");
    for (i, set) in sets.iter().enumerate() {
        let _ = writeln!(md, "{}. `{}`: {}", i + 1, set.name, set.describe);
    }
    md.push_str("\n| strategy | threads | chunk | layout | cache | file |");
    let mut rule = String::from("\n|---|--:|--:|---|---|--:|");
    let _ = write!(md, " {} MB/s |", first.name);
    rule.push_str("--:|");
    for o in others {
        let _ = write!(md, " {0} MB/s | {0} ratio | {0} differs |", o.name);
        rule.push_str("--:|--:|---|");
    }
    md.push_str(&rule);
    md.push('\n');
    for case in common {
        let (k, file) = case;
        let base = &first.cases[*case];
        let base_median = spread(base.iter().copied()).map_or(0.0, |s| s.median);
        let _ = write!(
            md,
            "| {} | {} | {} | {} | {} | {} | {:.0} (n={}) |",
            k.strategy,
            k.threads,
            format_bytes(k.chunk_bytes),
            k.layout,
            k.cache,
            format_bytes(*file),
            base_median,
            base.len()
        );
        for o in others {
            match o.cases.get(*case) {
                Some(values) => {
                    let median = spread(values.iter().copied()).map_or(0.0, |s| s.median);
                    let ratio = if base_median > 0.0 {
                        format!("{:.2}", median / base_median)
                    } else {
                        "n/a".into()
                    };
                    let _ = write!(
                        md,
                        " {median:.0} (n={}) | {ratio} | {} |",
                        values.len(),
                        verdict(base, values)
                    );
                }
                None => md.push_str(" — | — | — |"),
            }
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "\nMB/s: median over the ok repetitions (MB = 10^6 bytes). \"differs\": two-sided Mann–Whitney U test of \
         the repetitions against the first set at p < {ALPHA} (exact for small samples); with fewer than \
         {MIN_FOR_U_TEST} repetitions on either side, whether the min–max ranges are apart instead."
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
        assert_eq!(verdict(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]), "yes (p=0.03)");
        assert_eq!(verdict(&[1.0, 3.0, 5.0, 7.0], &[2.0, 4.0, 6.0, 8.0]), "no (p=0.69)");
        assert_eq!(verdict(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), "yes (ranges apart)");
        assert_eq!(verdict(&[1.0, 2.0, 3.0], &[2.5, 5.0, 6.0, 7.0]), "no (ranges overlap)");
    }
}
