//! Walks the plan: for each case its warm-ups (the first of which finds the pass count), then its counted
//! repetitions, each row handed on to be written before the next repetition starts. A resumed case goes on from
//! its next repetition with the pass count its earlier rows used, and ends with exactly `--repeat` ok rows.
//!
//! The walk knows nothing of sockets: a `Measure` runs one repetition and an `Output` keeps the rows, so the
//! rules here (resume, calibration, failures, signals) are tested with stand-ins.

use crate::config::Plan;
use crate::model::{CaseKey, Flag, Passes, Status};
use crate::record::Row;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Runs one repetition.
pub trait Measure {
    /// One repetition of `case` sending the file `passes` times, numbered `repetition` (0 for a warm-up). A
    /// failure of the repetition is in the row; an error here ends the run (the sink cannot be restarted).
    fn repetition(&mut self, case: &CaseKey, repetition: u32, passes: u32) -> anyhow::Result<Row>;
}

/// Keeps what the walk produces.
pub trait Output {
    /// A row to keep (on disk before this returns); an error ends the run.
    fn row(&mut self, row: &Row) -> anyhow::Result<()>;
    /// A case is over; `rows` are all rows so far, earlier runs' included.
    fn case_done(&mut self, rows: &[Row]) -> anyhow::Result<()>;
    /// A progress line for people.
    fn say(&mut self, line: String);
}

/// How the walk went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub ran_cases: usize,
    pub failed_cases: usize,
    /// Cases that already had every repetition (--resume).
    pub skipped: usize,
    /// Stopped by SIGINT or SIGTERM.
    pub interrupted: bool,
}

/// How much longer than `--min-time` a repetition is aimed at, so that the noise between repetitions leaves
/// every one of them above it.
const MARGIN: f64 = 1.25;

/// The pass count that makes a repetition of `passes` passes, which took `wall_s`, last `MARGIN` times
/// `min_time`, at most the cap.
fn aim(passes: u32, wall_s: f64, min_time: Duration) -> u32 {
    let wanted = if wall_s > 0.0 {
        (f64::from(passes) * MARGIN * min_time.as_secs_f64() / wall_s).ceil()
    } else {
        f64::from(Passes::CAP)
    };
    wanted.min(f64::from(Passes::CAP)) as u32
}

/// The pass count to try after a calibration repetition of `passes` passes lasted `wall_s`, short of
/// `min_time`: aimed past it (the first passes over fresh connections are the slowest, so the estimate errs
/// long), always more than before, at most the cap.
pub fn next_passes(passes: u32, wall_s: f64, min_time: Duration) -> u32 {
    aim(passes, wall_s, min_time).max(passes + 1).min(Passes::CAP)
}

/// The pass count to hold once a calibration repetition of `passes` passes reached `min_time` in `wall_s`:
/// stretched to the margin, never fewer.
pub fn settled_passes(passes: u32, wall_s: f64, min_time: Duration) -> u32 {
    aim(passes, wall_s, min_time).max(passes)
}

/// The walk over every case of the plan; `rows` holds the folder's earlier rows and gets this run's.
pub fn walk(
    plan: &Plan,
    rows: &mut Vec<Row>,
    m: &mut dyn Measure,
    out: &mut dyn Output,
    stop: &AtomicBool,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut reached = false;
    let total = plan.cases.len();
    for (i, case) in plan.cases.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            tally.interrupted = true;
            break;
        }
        let label = format!("[{}/{total}] {case}", i + 1);
        let earlier: Vec<&Row> = rows.iter().filter(|r| r.key() == *case).collect();
        let ok_before = earlier.iter().filter(|r| r.is_ok()).count() as u32;
        let wanted = plan.repeat.saturating_sub(ok_before);
        if wanted == 0 {
            out.say(format!(
                "{label}: {ok_before} repetition(s) already in the folder, skipped"
            ));
            tally.skipped += 1;
            continue;
        }
        let next_rep = earlier.iter().map(|r| r.repetition).max().unwrap_or(0) + 1;
        // Repetitions of a case are comparable only with the same pass count: a resumed case keeps its own.
        let mut passes = earlier
            .iter()
            .find(|r| r.is_ok())
            .map(|r| r.passes)
            .or(match plan.passes {
                Passes::Fixed(n) => Some(n),
                Passes::Auto => None,
            });
        let mut capped = earlier.iter().any(|r| r.flags.has(Flag::PassesCapped));
        tally.ran_cases += 1;
        let mut failed = false;

        let mut warmups = plan.warmup;
        let mut trial = passes.unwrap_or(1);
        while warmups > 0 || passes.is_none() {
            let row = m.repetition(case, 0, trial)?;
            let Some(mut row) = settle(row, &mut reached, stop)? else {
                tally.interrupted = true;
                return Ok(tally);
            };
            let calibrating = passes.is_none();
            out.say(format!(
                "{label} {}: {}",
                warmup_words(trial, calibrating),
                result(&row)
            ));
            if !row.is_ok() {
                row.add_flag(Flag::Warmup);
                keep(out, rows, row)?;
                failed = true;
                break;
            }
            warmups = warmups.saturating_sub(1);
            if calibrating {
                if row.wall_s >= plan.min_time.as_secs_f64() || trial == Passes::CAP {
                    capped = row.wall_s < plan.min_time.as_secs_f64();
                    passes = Some(settled_passes(trial, row.wall_s, plan.min_time));
                } else {
                    trial = next_passes(trial, row.wall_s, plan.min_time);
                }
            }
        }
        if let (false, Some(passes)) = (failed, passes) {
            if capped {
                out.say(format!(
                    "{label}: {passes} passes (the cap) still last under --min-time: the rows are flagged passes-capped"
                ));
            }
            for k in 0..wanted {
                let rep = next_rep + k;
                let row = m.repetition(case, rep, passes)?;
                let Some(mut row) = settle(row, &mut reached, stop)? else {
                    tally.interrupted = true;
                    return Ok(tally);
                };
                if capped {
                    row.add_flag(Flag::PassesCapped);
                }
                out.say(format!(
                    "{label} rep {}/{}: {}",
                    ok_before + k + 1,
                    plan.repeat,
                    result(&row)
                ));
                let ok = row.is_ok();
                keep(out, rows, row)?;
                if !ok {
                    failed = true;
                    break;
                }
            }
        }
        out.case_done(rows)?;
        if failed {
            tally.failed_cases += 1;
            if plan.fail_fast {
                out.say("--fail-fast: stopping at the first failed case".into());
                break;
            }
            if rows.last().is_some_and(|r| r.status == Status::FileChanged) {
                out.say("the test file changed: the cases left would not send what was planned; stopping".into());
                break;
            }
        }
    }
    Ok(tally)
}

/// A row cut short by a signal is dropped whole (None); a sink that refuses or cannot be reached before anything
/// ever got through will refuse every case, so it ends the run with its one line.
fn settle(row: Row, reached: &mut bool, stop: &AtomicBool) -> anyhow::Result<Option<Row>> {
    if stop.load(Ordering::Relaxed) && !row.is_ok() {
        return Ok(None);
    }
    *reached |= !row.status.unreachable();
    if !*reached {
        anyhow::bail!("{}", row.error);
    }
    Ok(Some(row))
}

fn keep(out: &mut dyn Output, rows: &mut Vec<Row>, row: Row) -> anyhow::Result<()> {
    out.row(&row)?;
    rows.push(row);
    Ok(())
}

fn warmup_words(passes: u32, calibrating: bool) -> String {
    let plural = if passes == 1 { "" } else { "es" };
    match calibrating {
        true => format!("warm-up, {passes} pass{plural} (finding the pass count)"),
        false => format!("warm-up, {passes} pass{plural}"),
    }
}

fn result(row: &Row) -> String {
    if row.is_ok() {
        format!(
            "{} in {:.3} s",
            crate::units::format_rate_mb_s(row.throughput_mb_s),
            row.wall_s
        )
    } else {
        format!("FAILED ({}): {}", row.status, row.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn plan(args: &[&str]) -> Plan {
        let cli = Cli::try_parse_from(["xferbench", "run"].iter().chain(args)).unwrap();
        let Command::Run(run) = cli.command else { unreachable!() };
        crate::config::expand(run).unwrap()
    }

    /// A stand-in for the network: each pass takes `pass_s` plus `overhead_s` per repetition; `fail` lists the
    /// (repetition, call number) pairs that fail.
    struct Fake {
        pass_s: f64,
        overhead_s: f64,
        calls: Vec<(CaseKey, u32, u32)>,
        fail_at_call: Option<usize>,
        status: Status,
    }

    impl Fake {
        fn new(pass_s: f64) -> Fake {
            Fake {
                pass_s,
                overhead_s: 0.0,
                calls: Vec::new(),
                fail_at_call: None,
                status: Status::Ok,
            }
        }
    }

    impl Measure for Fake {
        fn repetition(&mut self, case: &CaseKey, repetition: u32, passes: u32) -> anyhow::Result<Row> {
            self.calls.push((*case, repetition, passes));
            let failing = self.fail_at_call == Some(self.calls.len());
            Ok(Row {
                strategy: case.strategy,
                threads: case.threads,
                layout: case.layout,
                chunk_bytes: case.chunk_bytes,
                cache: case.cache,
                rx_mode: case.receiver.map(|(m, _)| m),
                rx_buffer_bytes: case.receiver.map(|(_, b)| b),
                verify: case.verify,
                queue_depth: case.queue_depth,
                repetition,
                passes,
                wall_s: self.overhead_s + self.pass_s * f64::from(passes),
                status: if failing { self.status } else { Status::Ok },
                ..Row::default()
            })
        }
    }

    #[derive(Default)]
    struct Kept {
        rows: Vec<Row>,
    }

    impl Output for Kept {
        fn row(&mut self, row: &Row) -> anyhow::Result<()> {
            self.rows.push(row.clone());
            Ok(())
        }
        fn case_done(&mut self, _: &[Row]) -> anyhow::Result<()> {
            Ok(())
        }
        fn say(&mut self, _: String) {}
    }

    fn run(plan: &Plan, rows: &mut Vec<Row>, m: &mut Fake) -> (Tally, Kept) {
        let mut kept = Kept::default();
        let tally = walk(plan, rows, m, &mut kept, &AtomicBool::new(false)).unwrap();
        (tally, kept)
    }

    #[test]
    fn calibration_reaches_min_time_and_holds_the_pass_count() {
        let p = plan(&["--strategies", "sendfile", "--repeat", "3", "--min-time", "0.5s"]);
        // The first pass over a fresh connection is slow; steady passes take 4 ms.
        let mut m = Fake::new(0.004);
        m.overhead_s = 0.02;
        let (tally, kept) = run(&p, &mut Vec::new(), &mut m);
        assert_eq!(tally.ran_cases, 1);
        assert_eq!(kept.rows.len(), 3);
        let passes = kept.rows[0].passes;
        assert!(
            kept.rows.iter().all(|r| r.passes == passes && r.wall_s >= 0.5),
            "{:?}",
            m.calls
        );
        assert_eq!(kept.rows.iter().map(|r| r.repetition).collect::<Vec<_>>(), [1, 2, 3]);
        // Warm-ups found it: calls before the counted ones are repetition 0, growing.
        let warmups: Vec<u32> = m.calls.iter().filter(|c| c.1 == 0).map(|c| c.2).collect();
        assert!(
            warmups.len() >= 2 && warmups.windows(2).all(|w| w[0] < w[1]),
            "{warmups:?}"
        );
        assert!(passes >= *warmups.last().unwrap());
        assert!(kept.rows[0].wall_s >= 0.5 * MARGIN * 0.99, "{:?}", kept.rows[0].wall_s);
    }

    #[test]
    fn fixed_passes_skip_calibration_and_the_cap_is_flagged() {
        let p = plan(&["--strategies", "sendfile", "--repeat", "1", "--passes", "4"]);
        let mut m = Fake::new(1e-9);
        let (_, kept) = run(&p, &mut Vec::new(), &mut m);
        assert_eq!(m.calls.iter().map(|c| c.2).collect::<Vec<_>>(), [4, 4]);
        assert!(!kept.rows[0].flags.has(Flag::PassesCapped));
        let auto = plan(&["--strategies", "sendfile", "--repeat", "1", "--warmup", "0"]);
        let (_, kept) = run(&auto, &mut Vec::new(), &mut Fake::new(1e-9));
        assert_eq!(kept.rows[0].passes, Passes::CAP);
        assert!(kept.rows[0].flags.has(Flag::PassesCapped));
    }

    #[test]
    fn a_resumed_case_goes_on_from_its_next_repetition_with_its_own_passes() {
        let p = plan(&["--strategies", "sendfile,read-send", "--repeat", "5"]);
        let mut m = Fake::new(0.3);
        let (_, first) = run(&p, &mut Vec::new(), &mut m);
        // Cut the second case short after two repetitions, as a hard kill would.
        let mut rows: Vec<Row> = first.rows.iter().take(7).cloned().collect();
        rows.iter_mut().for_each(|r| r.passes = 3);
        let mut m = Fake::new(0.3);
        let (tally, kept) = run(&p, &mut rows, &mut m);
        assert_eq!(tally.skipped, 1);
        assert_eq!(kept.rows.iter().map(|r| r.repetition).collect::<Vec<_>>(), [3, 4, 5]);
        assert!(m.calls.iter().all(|c| c.2 == 3), "no recalibration: {:?}", m.calls);
        let mut seen: Vec<(String, u32)> = rows.iter().map(|r| (r.strategy.to_string(), r.repetition)).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 10, "each (case, repetition) once");
        // A larger --repeat adds only the missing ones.
        let more = plan(&["--strategies", "sendfile,read-send", "--repeat", "6"]);
        let (_, kept) = run(&more, &mut rows, &mut Fake::new(0.3));
        assert_eq!(kept.rows.iter().map(|r| r.repetition).collect::<Vec<_>>(), [6, 6]);
    }

    #[test]
    fn a_failed_warmup_is_kept_and_fails_the_case() {
        let p = plan(&["--strategies", "sendfile,read-send", "--repeat", "2", "--passes", "1"]);
        let mut m = Fake::new(0.6);
        m.fail_at_call = Some(1);
        m.status = Status::Timeout;
        let (tally, kept) = run(&p, &mut Vec::new(), &mut m);
        assert_eq!((tally.ran_cases, tally.failed_cases), (2, 1));
        assert_eq!(kept.rows[0].status, Status::Timeout);
        assert!(kept.rows[0].flags.has(Flag::Warmup));
        assert_eq!(kept.rows.len(), 3, "the next case ran");
    }

    #[test]
    fn a_sink_that_never_answers_ends_the_run() {
        let p = plan(&["--strategies", "sendfile,read-send"]);
        let mut m = Fake::new(0.6);
        m.fail_at_call = Some(1);
        m.status = Status::ConnectFailed;
        let e = walk(
            &p,
            &mut Vec::new(),
            &mut m,
            &mut Kept::default(),
            &AtomicBool::new(false),
        );
        assert!(e.is_err());
        assert_eq!(m.calls.len(), 1);
    }

    #[test]
    fn next_passes_grows_and_caps() {
        assert_eq!(next_passes(1, 0.1, Duration::from_millis(500)), 7);
        assert_eq!(next_passes(10, 0.49, Duration::from_millis(500)), 13);
        assert_eq!(next_passes(5, 10.0, Duration::from_millis(500)), 6);
        assert_eq!(next_passes(9_999, 0.001, Duration::from_secs(1)), Passes::CAP);
        assert_eq!(settled_passes(100, 0.5, Duration::from_millis(500)), 125);
        assert_eq!(settled_passes(100, 2.0, Duration::from_millis(500)), 100);
    }
}
