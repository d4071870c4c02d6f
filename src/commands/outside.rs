//! `xferbench stats`: the same statistics `run` uses, for results measured partly outside it (a bare C loop,
//! iperf3, another build of xferbench, a file K times larger), so that no script computes a median or an interval
//! of its own. The input is a CSV with the columns `round,name,value` (one value per name and round, higher is
//! better unless told); the report gives each name's median and range and its ratio to the baseline paired round
//! by round, with the interval `run` puts on `vs sf`.

use crate::results::stats::{Estimate, Stat, margin_text, paired_ratios};
use crate::results::table::{Align, Table};
use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Deserialize)]
struct Line {
    round: u32,
    name: String,
    value: f64,
}

/// Each name's value per round, names in the order they first appear.
type Series = Vec<(String, BTreeMap<u32, f64>)>;

fn read(path: &Path) -> anyhow::Result<Series> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    let mut series: Series = Vec::new();
    for (i, line) in reader.deserialize::<Line>().enumerate() {
        let line = line.with_context(|| {
            format!(
                "'{}': line {} is not round,name,value (a whole number, a name, a number)",
                path.display(),
                i + 2
            )
        })?;
        anyhow::ensure!(
            line.value.is_finite(),
            "'{}': line {}: the value is not a finite number",
            path.display(),
            i + 2
        );
        let at = match series.iter().position(|(n, _)| *n == line.name) {
            Some(at) => at,
            None => {
                series.push((line.name.clone(), BTreeMap::new()));
                series.len() - 1
            }
        };
        anyhow::ensure!(
            series[at].1.insert(line.round, line.value).is_none(),
            "'{}': {} has two values in round {}",
            path.display(),
            line.name,
            line.round
        );
    }
    anyhow::ensure!(!series.is_empty(), "'{}' holds no values", path.display());
    Ok(series)
}

/// The report on `path`: each name against `baseline` (default: the first name), as Markdown, each ratio judged
/// against the margin `same_within` (`--same-within`).
pub fn report(path: &Path, baseline: Option<&str>, lower_is_better: bool, same_within: f64) -> anyhow::Result<String> {
    let series = read(path)?;
    let base_name = baseline.unwrap_or(&series[0].0).to_string();
    let Some((_, base)) = series.iter().find(|(n, _)| *n == base_name) else {
        let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
        return Err(crate::base::error::UsageError::new(
            "--baseline",
            &base_name,
            format!("no such name in the file; it has {}", names.join(", ")),
        )
        .into());
    };
    let mut t = Table::new([
        ("name", Align::Left),
        ("n", Align::Right),
        ("median", Align::Right),
        ("min–max", Align::Right),
        ("vs baseline [interval]", Align::Left),
    ]);
    for (name, values) in &series {
        let v: Vec<f64> = values.values().copied().collect();
        let Some(s) = Stat::of(&v) else { continue };
        // A time (lower is better) is turned around, so that a ratio above 1 always means faster.
        let (a, b) = if lower_is_better {
            (base, values)
        } else {
            (values, base)
        };
        let common = a.keys().filter(|k| b.contains_key(k)).count();
        let vs = if name == &base_name {
            "baseline".to_string()
        } else {
            match Estimate::of_median(&paired_ratios(a, b)) {
                Some(e) => e.ratio_text(same_within),
                None if common == 0 => "no round in common".into(),
                None => "no ratio: the divisor is 0 in every common round".into(),
            }
        };
        t.row([
            name.clone(),
            v.len().to_string(),
            number(s.median),
            format!("{}–{}", number(s.min), number(s.max)),
            vs,
        ]);
    }
    let rounds = series
        .iter()
        .flat_map(|(_, v)| v.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    Ok(format!(
        "{}\n{rounds} round(s). vs baseline: the median of the per-round ratios to {base_name}{}, with the interval \
         that holds the true median with at least 95% (order statistics; with fewer than 6 rounds the whole range, \
         its real level after it, floored); = the interval lies within {} of 1.00 (--same-within): the same within \
         that margin; ≈ the interval holds 1.00 but reaches beyond the margin: not distinguishable here.\n",
        t.markdown(),
        if lower_is_better {
            " (its value over each name's: lower is better, so above 1 is faster)"
        } else {
            ""
        },
        margin_text(same_within)
    ))
}

/// A value for people: whole numbers from 100 up, else four significant digits (`875`, `12.34`, `0.004567`).
fn number(v: f64) -> String {
    if v.abs() >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    }
}

/// The median MB/s of a result folder's ok rows (one number, for a script's CSV).
pub fn median_mb_s(dir: &Path) -> anyhow::Result<f64> {
    let rows = crate::commands::plot::ok_rows(dir)?;
    let v: Vec<f64> = rows.iter().map(|r| r.throughput_mb_s).collect();
    crate::results::stats::median(&v).context("no ok row")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn names_are_paired_with_the_baseline_round_by_round() {
        let mut text = String::from("round,name,value\n");
        for round in 1..=6 {
            // The machine drifts from round to round; "fast" is always 1.5x "bare".
            let speed = if round % 2 == 0 { 1000.0 } else { 2000.0 };
            text.push_str(&format!("{round},bare,{speed}\n{round},fast,{}\n", speed * 1.5));
        }
        let f = csv(&text);
        let md = report(f.path(), None, false, 0.05).unwrap();
        assert!(md.contains("| fast | 6 |"), "{md}");
        assert!(md.contains("1.50x [1.50–1.50]"), "{md}");
        assert!(md.contains("| bare | 6 |") && md.contains("baseline"), "{md}");
        // Times: lower is better, and the ratio still reads as a speed-up.
        let md = report(f.path(), Some("fast"), true, 0.05).unwrap();
        assert!(md.contains("1.50x [1.50–1.50]"), "{md}");
    }

    #[test]
    fn numbers_keep_four_significant_digits_below_100() {
        assert_eq!(number(875.1), "875");
        assert_eq!(number(12.3456), "12.35");
        assert_eq!(number(0.0045678), "0.004568");
        assert_eq!(number(0.0), "0");
        let f = csv("round,name,value\n1,a,0\n1,b,2\n");
        assert!(
            report(f.path(), None, false, 0.05)
                .unwrap()
                .contains("the divisor is 0")
        );
    }

    #[test]
    fn bad_files_are_one_line_errors() {
        let e = |text: &str| format!("{:#}", report(csv(text).path(), None, false, 0.05).unwrap_err());
        assert!(e("round,name,value\n1,a,x\n").contains("line 2 is not round,name,value"));
        assert!(e("round,name,value\n1,a,1\n1,a,2\n").contains("two values in round 1"));
        assert!(e("round,name,value\n").contains("holds no values"));
        assert!(e("round,name,value\n1,a,inf\n").contains("not a finite number"));
        let f = csv("round,name,value\n1,a,1\n");
        let e = report(f.path(), Some("b"), false, 0.05).unwrap_err().to_string();
        assert!(e.contains("--baseline") && e.contains("it has a"), "{e}");
    }
}
