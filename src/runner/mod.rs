//! `run`: walks the plan. Fixture, sink, then for each case its warm-ups and counted repetitions; every counted
//! row is on disk before the next repetition starts, summary.json is rewritten after each case, and the table
//! comes last. SIGINT and SIGTERM stop the run within a second or two with what was finished kept.

mod case;
mod outdir;
mod wait;

use crate::cli::RunArgs;
use crate::config::{self, RunConfig, Source};
use crate::env::Environment;
use crate::error::{EXIT_FAILURE, EXIT_INTERRUPTED, UsageError};
use crate::export::{CsvExport, write_json_atomic};
use crate::fixture;
use crate::record::{Row, read_rows};
use crate::sink::spawn::{SpawnOptions, SpawnedSink};
use crate::summary::{CaseSummary, summarise, table};
use anyhow::Context;
use serde::Serialize;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use case::{CONNECT_TIMEOUT, connect};

/// summary.json.
#[derive(Debug, Serialize)]
struct SummaryFile<'a> {
    run_id: &'a str,
    /// `running`, `finished`, `interrupted` (SIGINT, SIGTERM) or `failed` (an error ended the run).
    state: &'a str,
    plan: Plan<'a>,
    environment: &'a Environment,
    file: String,
    file_bytes: u64,
    cases: Vec<CaseSummary>,
}

/// The plan as resolved, for summary.json.
#[derive(Debug, Serialize)]
struct Plan<'a> {
    cases: Vec<String>,
    repeat: u32,
    warmup: u32,
    verify: bool,
    rx_buffer_bytes: u64,
    timeout_s: f64,
    transport: &'a str,
    sink: &'a str,
    drop_caches: bool,
}

/// `xferbench run`: returns the exit status.
pub fn main(args: RunArgs) -> anyhow::Result<i32> {
    let cfg = config::resolve(args)?;
    if cfg.dry_run {
        print_plan(&cfg)?;
        return Ok(0);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("cannot install signal handlers")?;
    }

    let host = Environment::detect(Path::new(".")).host;
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    let run_id = format!("{stamp}-{host}");
    let out = cfg
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&run_id));
    // The output must be writable before anything is measured; a run that fails before its first row takes back
    // what it created there.
    let mut litter = outdir::Litter::before_creating(&out);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create the result folder '{}'", out.display()))?;
    let csv_path = out.join("runs.csv");
    let mut csv = CsvExport::open(&csv_path)?;
    let summary_path = out.join("summary.json");

    let fixture = match &cfg.source {
        Source::Generated(spec) => fixture::ensure_until(spec, !cfg.quiet, &stop)?,
        Source::UserFile(path) => fixture::open_user_file(path)?,
    };
    config::check_against_file(&cfg, fixture.size)?;
    let env = Environment::detect(&fixture.path);

    let (target, target_label, transport, mut sink) = match &cfg.connect {
        Some(hostport) => {
            let addrs = resolve(hostport)?;
            (addrs, hostport.clone(), if cfg.raw { "raw" } else { "remote" }, None)
        }
        None => {
            let sink = start_sink(&cfg)?;
            (vec![sink.addr], sink.addr.to_string(), "loopback", Some(sink))
        }
    };

    let mut rows: Vec<Row> = if std::fs::metadata(&csv_path).map(|m| m.len() > 0).unwrap_or(false) {
        read_rows(&csv_path)?
    } else {
        Vec::new()
    };
    let done: HashMap<String, u32> = rows.iter().filter(|r| r.is_ok()).fold(HashMap::new(), |mut m, r| {
        *m.entry(r.case_id.clone()).or_default() += 1;
        m
    });
    let plan = Plan {
        cases: cfg.cases.iter().map(|c| c.id(fixture.size, cfg.rx_buffer)).collect(),
        repeat: cfg.repeat,
        warmup: cfg.warmup,
        verify: cfg.verify,
        rx_buffer_bytes: cfg.rx_buffer,
        timeout_s: cfg.timeout.as_secs_f64(),
        transport,
        sink: &target_label,
        drop_caches: cfg.drop_caches,
    };
    let write_summary = |rows: &[Row], state: &str| -> anyhow::Result<()> {
        let file = SummaryFile {
            run_id: &run_id,
            state,
            plan: Plan {
                cases: plan.cases.clone(),
                ..plan
            },
            environment: &env,
            file: fixture.path.display().to_string(),
            file_bytes: fixture.size,
            cases: summarise(rows),
        };
        write_json_atomic(&summary_path, &file)
    };
    write_summary(&rows, "running")?;

    let say = |line: String| {
        if !cfg.quiet {
            eprintln!("{line}");
        }
    };
    say(format!(
        "xferbench {}: {} case(s) x ({} warm-up + {} counted) of {} ({} bytes) to {target_label} ({transport}); \
         results in {}",
        env.xferbench_version,
        cfg.cases.len(),
        cfg.warmup,
        cfg.repeat,
        fixture.path.display(),
        fixture.size,
        out.display()
    ));

    let total = cfg.cases.len();
    // In a closure so that an error mid-run (the sink cannot restart, runs.csv cannot be written) still leaves
    // summary.json saying the run failed rather than that it is running.
    let mut walk = || -> anyhow::Result<(usize, usize, usize)> {
        let mut failed_cases = 0usize;
        let mut ran_cases = 0usize;
        let mut skipped = 0usize;
        let mut any_connected = false;
        'cases: for (i, case) in cfg.cases.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let id = case.id(fixture.size, cfg.rx_buffer);
            let label = format!("[{}/{total}] {}", i + 1, describe(case));
            if cfg.resume && done.get(&id).copied().unwrap_or(0) >= cfg.repeat {
                say(format!("{label}: already in {}, skipped", csv_path.display()));
                skipped += 1;
                continue;
            }
            if let Some(s) = sink.as_mut()
                && s.has_exited()
            {
                say("the sink process had exited; starting a new one".into());
                *s = start_sink(&cfg)?;
            }
            let target_now: Vec<SocketAddr> = sink.as_ref().map(|s| vec![s.addr]).unwrap_or_else(|| target.clone());
            let label_now = sink
                .as_ref()
                .map(|s| s.addr.to_string())
                .unwrap_or_else(|| target_label.clone());
            let ctx = case::Context {
                cfg: &cfg,
                fixture: &fixture,
                env: &env,
                run_id: &run_id,
                target: &target_now,
                target_label: &label_now,
                transport,
                stop: &stop,
            };
            ran_cases += 1;
            let mut case_failed = false;
            for rep in 0..cfg.warmup + cfg.repeat {
                let warmup = rep < cfg.warmup;
                let mut row = case::run_repetition(&ctx, case, if warmup { 0 } else { rep - cfg.warmup + 1 });
                if stop.load(Ordering::Relaxed) && !row.is_ok() {
                    // Cut short by the signal: dropped whole rather than recorded as a failure of the case.
                    break 'cases;
                }
                // A sink that cannot be reached, or that refuses us (token, protocol version), will refuse every
                // case: one clear line and a non-zero exit rather than a table of failures.
                any_connected |= !matches!(row.status.as_str(), "connect-failed" | "refused");
                if !any_connected {
                    anyhow::bail!("{}", row.error);
                }
                let what = if warmup {
                    "warm-up".to_string()
                } else {
                    format!("rep {}/{}", row.repetition, cfg.repeat)
                };
                let result = if row.is_ok() {
                    format!(
                        "{} in {:.3} s",
                        crate::units::format_rate_mb_s(row.throughput_mb_s),
                        row.wall_s
                    )
                } else {
                    format!("FAILED ({}): {}", row.status, row.error)
                };
                say(format!("{label} {what}: {result}"));
                if warmup && row.is_ok() {
                    continue;
                }
                if warmup {
                    row.flags = [row.flags.as_str(), "warmup"]
                        .iter()
                        .filter(|s| !s.is_empty())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(";");
                }
                csv.write(&row)?;
                litter.keep();
                let ok = row.is_ok();
                rows.push(row);
                if !ok {
                    case_failed = true;
                    break;
                }
            }
            write_summary(&rows, "running")?;
            if case_failed {
                failed_cases += 1;
                if cfg.fail_fast {
                    say("--fail-fast: stopping at the first failed case".into());
                    break;
                }
                if rows.last().is_some_and(|r| r.status == case::STATUS_FILE_CHANGED) {
                    say("the test file changed: the cases left would not send what was planned; stopping".into());
                    break;
                }
            }
        }
        Ok((failed_cases, ran_cases, skipped))
    };
    let walked = walk();
    drop(sink);
    let (failed_cases, ran_cases, skipped) = match walked {
        Ok(counts) => counts,
        Err(e) => {
            // Removed again below (with runs.csv) when this run created it and recorded nothing.
            let _ = write_summary(&rows, "failed");
            return Err(e);
        }
    };
    litter.keep();

    let interrupted = stop.load(Ordering::Relaxed);
    write_summary(&rows, if interrupted { "interrupted" } else { "finished" })?;
    let this_run: Vec<Row> = rows.iter().filter(|r| r.run_id == run_id).cloned().collect();
    let shown = if this_run.is_empty() { &rows } else { &this_run };
    crate::outln!("{}", table(&summarise(shown)));
    crate::outln!("results: {}", out.display());
    if cfg.plot && !shown.is_empty() {
        match crate::plot::plot_dir(&out) {
            Ok(files) => crate::outln!("charts: {}", files.len()),
            Err(e) => eprintln!("xferbench: warning: plotting failed: {e:#}"),
        }
    }
    if interrupted {
        eprintln!("xferbench: interrupted; finished rows are in {}", csv_path.display());
        return Ok(EXIT_INTERRUPTED);
    }
    if failed_cases > 0 {
        let not_run = total - ran_cases - skipped;
        let left = if not_run > 0 {
            format!(" ({not_run} more not run)")
        } else {
            String::new()
        };
        eprintln!(
            "xferbench: {failed_cases} of {ran_cases} case(s) failed{left}; see the status and error columns of {}",
            csv_path.display()
        );
        return Ok(EXIT_FAILURE);
    }
    Ok(0)
}

fn describe(case: &config::Case) -> String {
    let shape = if case.strategy.parallel {
        format!("{} x{} {}", case.strategy.name(), case.threads, case.layout.as_str())
    } else {
        case.strategy.name()
    };
    let rx = if case.rx_mode.name() != "copy" {
        format!(" rx:{}", case.rx_mode.name())
    } else {
        String::new()
    };
    format!(
        "{shape} {} {}{rx}",
        crate::units::format_bytes(case.chunk_bytes),
        case.cache.name()
    )
}

fn start_sink(cfg: &RunConfig) -> anyhow::Result<SpawnedSink> {
    SpawnedSink::start(&SpawnOptions {
        rx_buffer: cfg.rx_buffer,
        rx_mode: cfg
            .cases
            .first()
            .map(|c| c.rx_mode.name())
            .unwrap_or("copy")
            .to_string(),
        rcvbuf: cfg.rcvbuf,
        cpus: cfg.sink_cpus.clone(),
        idle_timeout_s: cfg.timeout.as_secs().max(30),
    })
}

/// Resolves HOST:PORT (names, IPv4, [IPv6]) to addresses; a bad port is the user's to fix.
fn resolve(hostport: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let Some((host, port)) = hostport.rsplit_once(':') else {
        return Err(UsageError::new("--connect", hostport, "expected HOST:PORT").into());
    };
    if port.parse::<u16>().map(|p| p == 0).unwrap_or(true) {
        return Err(UsageError::new("--connect", hostport, "the port must be a number from 1 to 65535").into());
    }
    if host.is_empty() {
        return Err(UsageError::new("--connect", hostport, "no host before the port").into());
    }
    let addrs: Vec<SocketAddr> = hostport
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve '{hostport}'"))?
        .collect();
    if addrs.is_empty() {
        anyhow::bail!("'{hostport}' resolves to no address");
    }
    Ok(addrs)
}

/// `--dry-run`: the plan, one case a line after a summary line that scripts parse.
fn print_plan(cfg: &RunConfig) -> anyhow::Result<()> {
    let bytes = match &cfg.source {
        Source::Generated(spec) => spec.size,
        Source::UserFile(path) => fixture::open_user_file(path)?.size,
    };
    config::check_against_file(cfg, bytes)?;
    let runs = cfg.cases.len() as u64 * u64::from(cfg.warmup + cfg.repeat);
    crate::outln!("plan: {} cases, {runs} runs, {bytes} bytes per run", cfg.cases.len());
    for case in &cfg.cases {
        crate::outln!("  {}", describe(case));
    }
    Ok(())
}
