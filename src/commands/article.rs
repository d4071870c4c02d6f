//! The article's experiment beside this machine's: the original study's medians (from its published runs, one row
//! per trial) next to a result folder's, as times and MB/s, with the parallel/serial ratio per cache state and a
//! one-line reading of what differs. Reads CSV only: the result folder's, and the original runs (a copy is built in).

use crate::base::model::{Cache, Method, Strategy};
use crate::results::record::Row;
use crate::results::stats::{DEFAULT_SAME_WITHIN, Estimate, Says, Stat, margin_text, paired_ratios, percent_floor};
use crate::results::table::{Align, Table};
use anyhow::Context;
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::Path;

/// The original study's sheet for one machine over loopback, as corrected the day after its first run.
pub const ORIGINAL_SHEET: &str = "single-machine-1.2GB-2017-11-7";

/// The original study's runs (`fixtures/article/original-runs.csv`), built in so that `article` works from any folder.
const ORIGINAL_RUNS: &str = include_str!("../../fixtures/article/original-runs.csv");

/// One trial of the original study.
#[derive(Debug, Deserialize)]
struct Trial {
    sheet: String,
    file_gb: f64,
    cache: String,
    strategy: String,
    total_ms: f64,
}

/// The article's file: every time here is stated per this many bytes.
const ARTICLE_BYTES: f64 = 1.2e9;

const SENDFILE: Strategy = Strategy::serial(Method::Sendfile);
const PARALLEL_SENDFILE: Strategy = Strategy::parallel(Method::Sendfile);

/// The article's paths and the strategies here that do the same.
const PATHS: &[(&str, &str, Strategy)] = &[
    ("serial transferTo", "serial-transferTo", SENDFILE),
    ("parallel transferTo", "parallel-transferTo", PARALLEL_SENDFILE),
    (
        "NIO read+write",
        "java-nio-read-write",
        Strategy::serial(Method::ReadSend),
    ),
    (
        "IO read+write",
        "java-io-read-write",
        Strategy::serial(Method::ReadSend),
    ),
];

struct Cell {
    seconds: f64,
    mb_s: f64,
    n: usize,
}

fn original(trials: &[Trial], cache: Cache, strategy: &str) -> Option<Cell> {
    let picked: Vec<&Trial> = trials
        .iter()
        .filter(|t| t.sheet == ORIGINAL_SHEET && t.cache == cache.to_string() && t.strategy == strategy)
        .collect();
    let stat = Stat::of(&picked.iter().map(|t| t.total_ms / 1000.0).collect::<Vec<_>>())?;
    let bytes = picked.first()?.file_gb * 1e9;
    Some(Cell {
        seconds: stat.median,
        mb_s: bytes / 1e6 / stat.median,
        n: picked.len(),
    })
}

fn picked(rows: &[Row], cache: Cache, strategy: Strategy, threads: Option<u32>) -> Vec<&Row> {
    rows.iter()
        .filter(|r| r.is_ok() && r.cache == cache && r.strategy == strategy && threads.is_none_or(|t| r.threads == t))
        .collect()
}

/// A repetition's time per 1.2 GB: its timed section scaled by the bytes it moved (every pass of its file).
fn seconds_per_article_file(r: &Row) -> f64 {
    r.wall_s * ARTICLE_BYTES / r.bytes_moved() as f64
}

fn ours(rows: &[Row], cache: Cache, strategy: Strategy, threads: Option<u32>) -> Option<Cell> {
    let picked = picked(rows, cache, strategy, threads);
    let stat = Stat::of(&picked.iter().map(|r| seconds_per_article_file(r)).collect::<Vec<_>>())?;
    Some(Cell {
        seconds: stat.median,
        mb_s: ARTICLE_BYTES / 1e6 / stat.median,
        n: picked.len(),
    })
}

fn cell(c: &Option<Cell>) -> String {
    match c {
        Some(c) => format!("{:.2} s ({:.0} MB/s, n={})", c.seconds, c.mb_s, c.n),
        None => "-".into(),
    }
}

/// The original study's trials: from `path`, or the copy built in.
fn read_trials(path: Option<&Path>) -> anyhow::Result<Vec<Trial>> {
    Ok(match path {
        Some(path) => csv::Reader::from_path(path)
            .with_context(|| format!("cannot read the original runs '{}'", path.display()))?
            .deserialize()
            .collect::<Result<_, _>>()
            .with_context(|| format!("'{}' does not parse", path.display()))?,
        None => csv::Reader::from_reader(ORIGINAL_RUNS.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .context("the built-in copy of the original runs does not parse")?,
    })
}

/// Builds the side-by-side table for the result folder `dir`; `original` is the study's runs CSV.
pub fn table(dir: &Path, original_csv: Option<&Path>) -> anyhow::Result<String> {
    let trials = read_trials(original_csv)?;
    let rows = crate::results::record::read_rows(dir)?;
    let Some(first) = rows.iter().find(|r| r.is_ok()) else {
        anyhow::bail!("'{}' has no row with status ok", dir.join("runs.csv").display());
    };
    let threads = rows
        .iter()
        .filter(|r| r.is_ok() && r.strategy == PARALLEL_SENDFILE)
        .map(|r| r.threads)
        .max();
    let mut out = String::new();
    writeln!(
        out,
        "## The article's experiment, then and here\n\n2017: 1.2 GB over loopback, Xeon E7420, 16 logical CPUs, \
         CentOS 5.10 (sheet {ORIGINAL_SHEET}, medians of its trials).\nHere: {} over loopback, {}, {} logical CPUs, \
         kernel {}, host {}, parallel at {} threads, chunk {}.{}\n",
        bytes_words(&rows),
        first.cpu_model,
        first.logical_cpus,
        first.kernel,
        first.host,
        threads.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
        crate::base::units::format_bytes(first.chunk_bytes),
        scaled_words(&rows),
    )?;
    let mut t = Table::new([
        ("cache", Align::Left),
        ("path", Align::Left),
        ("2017", Align::Left),
        ("here", Align::Left),
    ]);
    let mut readings = Vec::new();
    for cache in [Cache::Cold, Cache::Warm] {
        for (label, theirs, mine) in PATHS {
            let th = if *mine == PARALLEL_SENDFILE { threads } else { None };
            t.row([
                cache.to_string(),
                label.to_string(),
                cell(&original(&trials, cache, theirs)),
                cell(&ours(&rows, cache, *mine, th)),
            ]);
        }
        let then = match (
            original(&trials, cache, "serial-transferTo"),
            original(&trials, cache, "parallel-transferTo"),
        ) {
            (Some(s), Some(p)) => Some(s.seconds / p.seconds),
            _ => None,
        };
        let now = speedup(&rows, cache, threads);
        t.row([
            cache.to_string(),
            "**parallel speed-up over serial**".into(),
            format!("**{}**", then.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))),
            format!(
                "**{}**",
                now.map_or_else(|| "-".into(), |e| e.ratio_text(DEFAULT_SAME_WITHIN))
            ),
        ]);
        readings.push(reading(cache, then, now, &rows, threads));
    }
    out.push_str(&t.markdown());
    let shortest = rows
        .iter()
        .filter(|r| r.is_ok())
        .map(|r| r.wall_s)
        .fold(f64::INFINITY, f64::min);
    if shortest < crate::results::summary::SHORT_RUN_S {
        writeln!(
            out,
            "\nCaution: some runs here lasted under {} s, too short to time well; leave --passes at auto.",
            crate::results::summary::SHORT_RUN_S
        )?;
    }
    writeln!(out, "\nReading:")?;
    for r in readings {
        writeln!(out, "- {r}")?;
    }
    Ok(out)
}

/// The file(s) and pass counts of the rows, in words: `1.20 GB x 3-5 passes`.
fn bytes_words(rows: &[Row]) -> String {
    let ok = || rows.iter().filter(|r| r.is_ok());
    let sizes: std::collections::BTreeSet<u64> = ok().map(|r| r.file_bytes).collect();
    let passes: std::collections::BTreeSet<u32> = ok().map(|r| r.passes).collect();
    let sizes: Vec<String> = sizes.iter().map(|b| crate::base::units::format_bytes(*b)).collect();
    match (passes.first(), passes.last()) {
        (Some(1), Some(1)) => sizes.join(", "),
        (Some(lo), Some(hi)) if lo == hi => format!("{} x {lo} passes", sizes.join(", ")),
        (Some(lo), Some(hi)) => format!("{} x {lo}-{hi} passes", sizes.join(", ")),
        _ => sizes.join(", "),
    }
}

/// Says that times are scaled to the article's 1.2 GB when the rows moved anything else.
fn scaled_words(rows: &[Row]) -> &'static str {
    if rows
        .iter()
        .filter(|r| r.is_ok())
        .all(|r| r.bytes_moved() as f64 == ARTICLE_BYTES)
    {
        ""
    } else {
        " Times here are per 1.2 GB, the article's file: each repetition's timed section scaled by 1.2 GB over the \
         bytes it moved (every pass of its file), so that they stand beside the 2017 times."
    }
}

/// Parallel sendfile's speed-up over serial sendfile in one cache state: the ratio of their MB/s in each round
/// both ran in (a set from before rounds pairs by repetition number), its median and interval.
fn speedup(rows: &[Row], cache: Cache, threads: Option<u32>) -> Option<Estimate> {
    let by_round = |strategy, t| {
        picked(rows, cache, strategy, t)
            .iter()
            .map(|r| (r.pair_key(), r.throughput_mb_s))
            .collect()
    };
    Estimate::of_median(&paired_ratios(
        &by_round(PARALLEL_SENDFILE, threads),
        &by_round(SENDFILE, None),
    ))
}

/// One line on what differs for a cache state.
fn reading(cache: Cache, then: Option<f64>, now: Option<Estimate>, rows: &[Row], threads: Option<u32>) -> String {
    let (Some(then), Some(now)) = (then, now) else {
        return format!("{cache}: this result set lacks serial or parallel sendfile rows for a ratio.");
    };
    let verdict = |r: f64| {
        if r >= 1.0 { "faster" } else { "slower" }
    };
    let serial_cold = ours(rows, Cache::Cold, SENDFILE, None);
    let serial_warm = ours(rows, Cache::Warm, SENDFILE, None);
    let why = match (cache, serial_cold, serial_warm) {
        (Cache::Cold, Some(c), Some(w)) if c.mb_s < 0.5 * w.mb_s => format!(
            "cold reads here come at {:.0} MB/s against {:.0} MB/s warm: storage-bound, as the 2017 single disk \
             (~120 MB/s) was",
            c.mb_s, w.mb_s
        ),
        (Cache::Cold, Some(c), Some(w)) => format!(
            "cold runs here reach {:.0} MB/s, {:.0}% of the warm {:.0} MB/s and far above the 2017 single disk \
             (~120 MB/s): cold does not mean disk-bound on this machine",
            c.mb_s,
            100.0 * c.mb_s / w.mb_s,
            w.mb_s
        ),
        _ => format!(
            "warm, the file is in the page cache and the limit is CPU: {} parallel connections against {} CPUs here",
            threads.unwrap_or(0),
            rows.first().map(|r| r.logical_cpus).unwrap_or(0)
        ),
    };
    let rounds = format!("{} round(s)", now.n);
    let here = if now.n < 2 {
        format!(
            "is {:.2}x here, from one pair: too few rounds to tell from the noise",
            now.median
        )
    } else if now.verdict(DEFAULT_SAME_WITHIN).says == Says::Same {
        format!(
            "here is {} ({rounds}, {} interval): the same as serial within {} on this machine",
            now.interval_text(DEFAULT_SAME_WITHIN),
            percent_floor(now.level),
            margin_text(DEFAULT_SAME_WITHIN)
        )
    } else if now.holds(1.0) {
        format!(
            "here is {} ({rounds}, {} interval): not distinguishable from serial on this machine",
            now.interval_text(DEFAULT_SAME_WITHIN),
            percent_floor(now.level)
        )
    } else {
        format!(
            "is {} here ({}, {rounds}, {} interval)",
            verdict(now.median),
            now.interval_text(DEFAULT_SAME_WITHIN),
            percent_floor(now.level)
        )
    };
    format!(
        "{cache}: parallel was {} than serial in 2017 ({then:.2}x) and {here}; {why}.",
        verdict(then)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_medians_match_the_article() {
        // The built-in copy, which is the committed file.
        let trials: Vec<Trial> = csv::Reader::from_reader(ORIGINAL_RUNS.as_bytes())
            .deserialize()
            .map(Result::unwrap)
            .collect();
        let secs = |cache, s| (original(&trials, cache, s).unwrap().seconds * 100.0).round() / 100.0;
        assert_eq!(secs(Cache::Cold, "serial-transferTo"), 9.86);
        assert_eq!(secs(Cache::Cold, "parallel-transferTo"), 12.56);
        assert_eq!(secs(Cache::Warm, "serial-transferTo"), 1.81);
        assert_eq!(secs(Cache::Warm, "parallel-transferTo"), 0.50);
        assert_eq!(secs(Cache::Cold, "java-nio-read-write"), 10.68);
    }

    #[test]
    fn readings_say_whether_serial_and_parallel_differ_beyond_the_noise() {
        let row = |cache: &str, strategy: &str, threads, wall_s| Row {
            cache: cache.parse().unwrap(),
            strategy: strategy.parse().unwrap(),
            threads,
            wall_s,
            file_bytes: 1_200_000_000,
            passes: 1,
            chunk_bytes: 10 << 20,
            logical_cpus: 2,
            status: crate::base::model::Status::Ok,
            ..Row::default()
        };
        let mut rows = Vec::new();
        // Six rounds; warm parallel is 0.95x to 1.10x of serial round by round, cold parallel half of serial.
        for (round, (w, f)) in [
            (1.0, 0.95),
            (1.1, 1.1),
            (1.2, 1.02),
            (1.05, 0.98),
            (1.15, 1.04),
            (1.0, 1.06),
        ]
        .into_iter()
        .enumerate()
        {
            let round = round as u32 + 1;
            let at = |mut r: Row| {
                r.round = round;
                r.throughput_mb_s = r.bytes_moved() as f64 / 1e6 / r.wall_s;
                r
            };
            rows.push(at(row("warm", "sendfile", 1, w)));
            rows.push(at(row("warm", "parallel-sendfile", 10, w / f)));
            rows.push(at(row("cold", "sendfile", 1, w * 2.0)));
            rows.push(at(row("cold", "parallel-sendfile", 10, w * 4.0)));
        }
        let dir = tempfile::tempdir().unwrap();
        let mut w = csv::Writer::from_path(dir.path().join("runs.csv")).unwrap();
        rows.iter().for_each(|r| w.serialize(r).unwrap());
        w.flush().unwrap();
        let text = table(dir.path(), None).unwrap();
        let line = |cache: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("- {cache}:")))
                .unwrap()
                .to_string()
        };
        let (warm, cold) = (line("warm"), line("cold"));
        assert!(
            warm.contains("here is ≈1.03x [0.95–1.10] (6 round(s), 96% interval): not distinguishable from serial"),
            "{text}"
        );
        assert!(
            cold.contains("is slower here (0.50x [0.50–0.50], 6 round(s), 96% interval)"),
            "{text}"
        );
    }
}
