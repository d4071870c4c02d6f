//! The article's experiment beside this machine's: the original study's medians (from its published runs, one row
//! per trial) next to a result folder's, as times and MB/s, with the parallel/serial ratio per cache state and a
//! one-line reading of what differs. Each 2017 row is filled from the study's own Java path where the folder has it
//! (`jvm-transferto`, `parallel-jvm-transferto`, `jvm-nio`, `jvm-read-write`), else from the native path that does
//! the same (`sendfile`, `parallel-sendfile`, `read-send`), and the table says which; a native path measured beside
//! a Java one gets a row of its own under it. Reads CSV only: the result folder's, and the original runs (a copy is
//! built in).

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
const JVM_TRANSFERTO: Strategy = Strategy::serial(Method::JvmTransferto);
const PARALLEL_JVM_TRANSFERTO: Strategy = Strategy::parallel(Method::JvmTransferto);
const READ_SEND: Strategy = Strategy::serial(Method::ReadSend);

/// The article's paths and the strategies here that do the same: the study's own Java path first, then the native
/// path under it.
const PATHS: &[(&str, &str, [Strategy; 2])] = &[
    ("serial transferTo", "serial-transferTo", [JVM_TRANSFERTO, SENDFILE]),
    (
        "parallel transferTo",
        "parallel-transferTo",
        [PARALLEL_JVM_TRANSFERTO, PARALLEL_SENDFILE],
    ),
    (
        "NIO read+write",
        "java-nio-read-write",
        [Strategy::serial(Method::JvmNio), READ_SEND],
    ),
    (
        "IO read+write",
        "java-io-read-write",
        [Strategy::serial(Method::JvmReadWrite), READ_SEND],
    ),
];

/// The serial and parallel transferTo pairs whose ratio is set beside 2017's: the JVM's, then the native one.
const PAIRS: [(Strategy, Strategy); 2] = [(PARALLEL_JVM_TRANSFERTO, JVM_TRANSFERTO), (PARALLEL_SENDFILE, SENDFILE)];

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

/// The most threads of the folder's ok rows of `strategy`.
fn threads_of(rows: &[Row], strategy: Strategy) -> Option<u32> {
    rows.iter()
        .filter(|r| r.is_ok() && r.strategy == strategy)
        .map(|r| r.threads)
        .max()
}

/// Whether the folder has an ok row of `strategy` in `cache`.
fn has(rows: &[Row], cache: Cache, strategy: Strategy) -> bool {
    rows.iter()
        .any(|r| r.is_ok() && r.cache == cache && r.strategy == strategy)
}

/// Builds the side-by-side table for the result folder `dir`; `original` is the study's runs CSV.
pub fn table(dir: &Path, original_csv: Option<&Path>) -> anyhow::Result<String> {
    let trials = read_trials(original_csv)?;
    let rows = crate::results::record::read_rows(dir)?;
    let Some(first) = rows.iter().find(|r| r.is_ok()) else {
        anyhow::bail!("'{}' has no row with status ok", dir.join("runs.csv").display());
    };
    let threads = threads_of(&rows, PARALLEL_JVM_TRANSFERTO).or(threads_of(&rows, PARALLEL_SENDFILE));
    let mut out = String::new();
    writeln!(
        out,
        "## The article's experiment, then and here\n\n2017: 1.2 GB over loopback, Xeon E7420, 16 logical CPUs, \
         CentOS 5.10 (sheet {ORIGINAL_SHEET}, medians of its trials).\nHere: {} over loopback, {}, {} logical CPUs, \
         kernel {}, host {}, parallel at {} threads, chunk {}.{}{}\n",
        bytes_words(&rows),
        first.cpu_model,
        first.logical_cpus,
        first.kernel,
        first.host,
        threads.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
        crate::base::units::format_bytes(first.chunk_bytes),
        scaled_words(&rows),
        jvm_words(&rows),
    )?;
    let mut t = Table::new([
        ("cache", Align::Left),
        ("path", Align::Left),
        ("2017", Align::Left),
        ("here", Align::Left),
        ("here from", Align::Left),
    ]);
    let readings: Vec<String> = [Cache::Cold, Cache::Warm]
        .into_iter()
        .map(|cache| cache_rows(&mut t, &rows, &trials, cache))
        .collect();
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

/// One cache state's rows of the table: each 2017 path filled from the first of its strategies the folder has (the
/// others under it), then the parallel speed-up of each transferTo pair the folder has; returns the reading.
fn cache_rows(t: &mut Table, rows: &[Row], trials: &[Trial], cache: Cache) -> String {
    for (label, theirs, mine) in PATHS {
        let then = cell(&original(trials, cache, theirs));
        let present: Vec<Strategy> = mine.iter().copied().filter(|s| has(rows, cache, *s)).collect();
        let Some((filled, beside)) = present.split_first() else {
            t.row([cache.to_string(), label.to_string(), then, "-".into(), "-".into()]);
            continue;
        };
        let here = |s: Strategy| cell(&ours(rows, cache, s, threads_of(rows, s).filter(|_| s.is_parallel())));
        t.row([
            cache.to_string(),
            label.to_string(),
            then,
            here(*filled),
            filled.to_string(),
        ]);
        for s in beside {
            t.row([
                cache.to_string(),
                format!("{label} (native)"),
                "-".into(),
                here(*s),
                s.to_string(),
            ]);
        }
    }
    let then = match (
        original(trials, cache, "serial-transferTo"),
        original(trials, cache, "parallel-transferTo"),
    ) {
        (Some(s), Some(p)) => Some(s.seconds / p.seconds),
        _ => None,
    };
    let pairs: Vec<(Strategy, Strategy)> = PAIRS
        .into_iter()
        .filter(|(p, s)| has(rows, cache, *p) && has(rows, cache, *s))
        .collect();
    for &(parallel, serial) in &pairs {
        let now = speedup(rows, cache, parallel, serial);
        t.row([
            cache.to_string(),
            "**parallel speed-up over serial**".into(),
            format!("**{}**", then.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))),
            format!(
                "**{}**",
                now.map_or_else(|| "-".into(), |e| e.ratio_text(DEFAULT_SAME_WITHIN))
            ),
            format!("{parallel} / {serial}"),
        ]);
    }
    let pair = pairs.first().copied().unwrap_or((PARALLEL_SENDFILE, SENDFILE));
    reading(cache, then, speedup(rows, cache, pair.0, pair.1), rows, pair)
}

/// Which 2017 rows the JVM filled, in words: the study ran Java, and so did these rows where the folder has them.
fn jvm_words(rows: &[Row]) -> String {
    let jvm = rows.iter().find(|r| r.is_ok() && r.strategy.method.jvm());
    match jvm {
        Some(r) => format!(
            " Rows from jvm-* strategies were sent by a JVM ({}), as the study's were; the native rows under them are \
             this tool's own system calls for the same job.",
            r.jvm_version
        ),
        None => " No JVM rows here: every 2017 row is filled from the native path that makes the same calls \
                 (both read+write rows from read-send)."
            .into(),
    }
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

/// A parallel strategy's speed-up over its serial one in one cache state: the ratio of their MB/s in each round
/// both ran in (a set from before rounds pairs by repetition number), its median and interval.
fn speedup(rows: &[Row], cache: Cache, parallel: Strategy, serial: Strategy) -> Option<Estimate> {
    let by_round = |strategy, t| {
        picked(rows, cache, strategy, t)
            .iter()
            .map(|r| (r.pair_key(), r.throughput_mb_s))
            .collect()
    };
    Estimate::of_median(&paired_ratios(
        &by_round(parallel, threads_of(rows, parallel)),
        &by_round(serial, None),
    ))
}

/// One line on what differs for a cache state, from the pair (parallel, serial) that matches the study's.
fn reading(cache: Cache, then: Option<f64>, now: Option<Estimate>, rows: &[Row], pair: (Strategy, Strategy)) -> String {
    let (parallel, serial) = pair;
    let threads = threads_of(rows, parallel);
    let (Some(then), Some(now)) = (then, now) else {
        return format!("{cache}: this result set lacks serial or parallel transferTo (or sendfile) rows for a ratio.");
    };
    let verdict = |r: f64| {
        if r >= 1.0 { "faster" } else { "slower" }
    };
    let serial_cold = ours(rows, Cache::Cold, serial, None);
    let serial_warm = ours(rows, Cache::Warm, serial, None);
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
        "{cache}: parallel was {} than serial in 2017 ({then:.2}x) and {here}; {why} (here: {parallel} over \
         {serial}).",
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

    #[test]
    fn java_rows_fill_the_2017_rows_they_match_and_native_ones_stand_under_them() {
        let row = |strategy: &str, threads, round, wall_s| Row {
            cache: Cache::Warm,
            strategy: strategy.parse().unwrap(),
            threads,
            round,
            wall_s,
            throughput_mb_s: 1200.0 / wall_s,
            file_bytes: 1_200_000_000,
            passes: 1,
            chunk_bytes: 10 << 20,
            logical_cpus: 2,
            jvm_version: "17.0.15 (Debian, OpenJDK 64-Bit Server VM; -Xmx1g)".into(),
            status: crate::base::model::Status::Ok,
            ..Row::default()
        };
        let mut rows = Vec::new();
        for round in 1..=6 {
            rows.push(row("jvm-transferto", 1, round, 2.0));
            rows.push(row("parallel-jvm-transferto", 10, round, 1.0));
            rows.push(row("sendfile", 1, round, 1.5));
            rows.push(row("parallel-sendfile", 10, round, 1.5));
            rows.push(row("read-send", 1, round, 3.0));
        }
        let dir = tempfile::tempdir().unwrap();
        let mut w = csv::Writer::from_path(dir.path().join("runs.csv")).unwrap();
        rows.iter().for_each(|r| w.serialize(r).unwrap());
        w.flush().unwrap();
        let text = table(dir.path(), None).unwrap();
        for line in [
            "| warm | serial transferTo | 1.81 s (663 MB/s, n=4) | 2.00 s (600 MB/s, n=6) | jvm-transferto |",
            "| warm | serial transferTo (native) | - | 1.50 s (800 MB/s, n=6) | sendfile |",
            "| warm | parallel transferTo | 0.50 s (2398 MB/s, n=4) | 1.00 s (1200 MB/s, n=6) | parallel-jvm-transferto |",
            // No jvm-nio rows: the native path fills the NIO row, and says so.
            "| warm | NIO read+write | 4.47 s (268 MB/s, n=3) | 3.00 s (400 MB/s, n=6) | read-send |",
            "| warm | **parallel speed-up over serial** | **3.62x** | **2.00x [2.00–2.00]** | parallel-jvm-transferto / jvm-transferto |",
            "| warm | **parallel speed-up over serial** | **3.62x** | **=1.00x [1.00–1.00]** | parallel-sendfile / sendfile |",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        assert!(
            text.contains("(here: parallel-jvm-transferto over jvm-transferto)."),
            "{text}"
        );
        assert!(text.contains("sent by a JVM (17.0.15"), "{text}");
    }
}
