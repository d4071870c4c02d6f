//! Walks the plan in rounds: first every case's warm-ups (the first of which finds the pass count), then rounds in
//! which every case runs once, in an order that turns each round (`--order`), so that drift in the machine lands on
//! every case alike and `vs sf` can pair the repetitions of one round. Each row is handed on to be written before
//! the next repetition starts. With `--repeat auto`, rounds are added until every case's interval at
//! `stats::DECIDE_LEVEL` (99%) is as narrow as `--ci` asks (`stats::stop_reach`), or `--max-time` is up; the table
//! then reports the 95% intervals, which hold their level under that rule where stopping on them would not.
//!
//! No counted repetition is dropped: one that came out shorter than planned (a faster mode than the warm-ups saw)
//! is kept, flagged `short-run` when it lasted under `summary::SHORT_RUN_S`, and counted; later rounds get a pass
//! count that lasts `--min-time` at its pace. Measuring it again would select against the faster mode.
//!
//! A resumed run goes on from the round and the case where the last one stopped: every case runs the rounds it has
//! no ok row for, with the pass count its earlier rows used, and ends with exactly one ok row per round.
//!
//! The walk knows nothing of sockets: a `Measure` runs one repetition and an `Output` keeps the rows, so the
//! rules here (rounds, resume, calibration, the stopping rule, failures, signals) are tested with stand-ins.

use crate::base::model::{CaseKey, Flag, Order, Passes, Repeat, Status};
use crate::experiment::config::Plan;
use crate::results::record::Row;
use crate::results::stats::{rounds_to_decide, stop_reach};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Runs one repetition.
pub trait Measure {
    /// One repetition of `case` sending the file `passes` times, numbered `repetition` (0 for a warm-up), in
    /// `round` (0 for a warm-up). A failure of the repetition is in the row; an error here ends the run (the sink
    /// cannot be restarted).
    fn repetition(&mut self, case: &CaseKey, repetition: u32, round: u32, passes: u32) -> anyhow::Result<Row>;
    /// Time since the walk began, by the measurer's clock (`--max-time` is counted on it).
    fn clock(&self) -> Duration;
}

/// Keeps what the walk produces.
pub trait Output {
    /// A row to keep (on disk before this returns); an error ends the run.
    fn row(&mut self, row: &Row) -> anyhow::Result<()>;
    /// A round (or the warm-ups) is over; `rows` are all rows so far, earlier runs' included.
    fn checkpoint(&mut self, rows: &[Row]) -> anyhow::Result<()>;
    /// A progress line for people.
    fn say(&mut self, line: String);
}

/// Why the rounds ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Every round asked for ran (or nothing was left to run).
    #[default]
    Done,
    /// `--repeat auto`: every case's interval got within `--ci`.
    Decided,
    /// `--repeat auto`: `--max-time` was up first.
    MaxTime,
    /// `--repeat auto`: the cap on rounds was reached first.
    Cap,
    /// A failure ended the run early (`--fail-fast`, a changed file).
    Failure,
}

/// How the walk went.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    pub ran_cases: usize,
    pub failed_cases: usize,
    /// Cases that already had every round (--resume).
    pub skipped: usize,
    /// The last round that ran.
    pub rounds: u32,
    pub stop: Stop,
    /// With `--repeat auto`, the cases whose deciding interval did not get within `--ci`, with how far it reached.
    pub undecided: Vec<(CaseKey, f64)>,
    /// The rounds ran under `--repeat auto`.
    pub auto: bool,
    /// Stopped by SIGINT or SIGTERM.
    pub interrupted: bool,
}

/// How much longer than `--min-time` a repetition is aimed at, so that the noise between repetitions leaves
/// every one of them above it.
const MARGIN: f64 = 1.25;

/// The pass count that makes passes of `pass_s` seconds each last `MARGIN` times `min_time`, from 1 to the cap.
fn aim(pass_s: f64, min_time: Duration) -> u32 {
    let wanted = if pass_s > 0.0 {
        (MARGIN * min_time.as_secs_f64() / pass_s).ceil()
    } else {
        f64::from(Passes::CAP)
    };
    wanted.clamp(1.0, f64::from(Passes::CAP)) as u32
}

/// The pass count to try after a calibration repetition of `passes` passes lasted `wall_s`, short of
/// `min_time`: aimed past it (the first passes over fresh connections are the slowest, so the estimate errs
/// long), always more than before, at most the cap.
pub fn next_passes(passes: u32, wall_s: f64, min_time: Duration) -> u32 {
    aim(wall_s / f64::from(passes), min_time)
        .max(passes + 1)
        .min(Passes::CAP)
}

/// The pass count to hold once a calibration repetition of `passes` passes reached `min_time`: aimed at the
/// fastest pass seen in the case's warm-ups (`fastest_pass_s`), so that a fast mode the machine falls into later
/// still lasts `min_time`; never fewer than `passes`.
pub fn settled_passes(passes: u32, fastest_pass_s: f64, min_time: Duration) -> u32 {
    aim(fastest_pass_s, min_time).max(passes)
}

/// One case as the walk tracks it.
struct CaseState {
    key: CaseKey,
    /// The pass count of its counted repetitions (None: not found yet).
    passes: Option<u32>,
    capped: bool,
    failed: bool,
    /// A repetition of it ran in this run.
    ran: bool,
    /// The next repetition number (they count on from earlier runs').
    next_rep: u32,
    /// Rounds it has an ok row for.
    done: BTreeSet<u32>,
    /// Seconds of the fastest pass seen (calibration aims at it).
    fastest_pass_s: f64,
    /// Index in the plan, `[i/n]` in progress lines.
    index: usize,
}

impl CaseState {
    fn label(&self, total: usize) -> String {
        format!("[{}/{total}] {}", self.index + 1, self.key)
    }

    fn wants(&self, round: u32) -> bool {
        !self.failed && !self.done.contains(&round)
    }
}

/// What the walk goes by: the plan, the rows so far, and where output goes.
struct Walk<'a> {
    plan: &'a Plan,
    rows: &'a mut Vec<Row>,
    m: &'a mut dyn Measure,
    out: &'a mut dyn Output,
    stop: &'a AtomicBool,
    tally: Tally,
    /// A repetition ever got through to the sink (until then a refusal ends the run).
    reached: bool,
}

/// The last round `--repeat` asks for (the cap for `auto`, whose stopping rule ends it sooner).
fn last_round(plan: &Plan) -> u32 {
    match plan.settings.repeat {
        Repeat::Fixed(n) => n,
        Repeat::Auto => Repeat::CAP,
    }
}

/// The order of the cases in `round` (1-based): the plan's, turned by `round - 1`; a seeded permutation of its
/// own for `shuffle` (the same seed and round give the same order, on resume too); the plan's for `grouped`.
pub fn round_order(order: Order, n: usize, round: u32, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    match order {
        Order::Rotate if n > 0 => idx.rotate_left((round as usize - 1) % n),
        Order::Shuffle => {
            let mut r = crate::results::stats::rng(seed, u64::from(round));
            for i in (1..n).rev() {
                idx.swap(i, crate::results::stats::below(&mut r, i + 1));
            }
        }
        _ => {}
    }
    idx
}

/// The walk over every case of the plan; `rows` holds the folder's earlier rows and gets this run's.
pub fn walk(
    plan: &Plan,
    rows: &mut Vec<Row>,
    m: &mut dyn Measure,
    out: &mut dyn Output,
    stop: &AtomicBool,
) -> anyhow::Result<Tally> {
    let mut w = Walk {
        plan,
        rows,
        m,
        out,
        stop,
        tally: Tally {
            auto: plan.settings.repeat == Repeat::Auto,
            ..Tally::default()
        },
        reached: false,
    };
    let mut cases = w.begin();
    if w.prepare(&mut cases)? {
        w.out.checkpoint(w.rows)?;
        match plan.settings.order {
            Order::Grouped => w.grouped(&mut cases)?,
            Order::Rotate | Order::Shuffle => w.rounds(&mut cases)?,
        }
    }
    w.tally.failed_cases = cases.iter().filter(|c| c.failed).count();
    w.tally.ran_cases = cases.iter().filter(|c| c.ran).count();
    Ok(w.tally)
}

impl Walk<'_> {
    /// Each case as the folder's earlier rows leave it.
    fn begin(&mut self) -> Vec<CaseState> {
        let target = last_round(self.plan);
        let mut cases = Vec::with_capacity(self.plan.cases.len());
        for (index, key) in self.plan.cases.iter().enumerate() {
            let earlier: Vec<&Row> = self.rows.iter().filter(|r| r.key() == *key).collect();
            let ok = || earlier.iter().filter(|r| r.is_ok());
            let c = CaseState {
                key: *key,
                // Repetitions of a case are comparable only with its own pass count: a resumed case keeps it.
                passes: ok().map(|r| r.passes).max().or(match self.plan.passes() {
                    Passes::Fixed(n) => Some(n),
                    Passes::Auto => None,
                }),
                capped: earlier.iter().any(|r| r.flags.has(Flag::PassesCapped)),
                failed: false,
                ran: false,
                next_rep: earlier.iter().map(|r| r.repetition).max().unwrap_or(0) + 1,
                done: ok().map(|r| r.round).filter(|&r| r > 0).collect(),
                fastest_pass_s: f64::INFINITY,
                index,
            };
            let complete = (1..=target).all(|r| c.done.contains(&r));
            if complete && matches!(self.plan.settings.repeat, Repeat::Fixed(_)) {
                self.out.say(format!(
                    "{}: {} round(s) already in the folder, skipped",
                    c.label(self.plan.cases.len()),
                    c.done.len()
                ));
                self.tally.skipped += 1;
                continue;
            }
            cases.push(c);
        }
        cases
    }

    /// Every case's warm-ups, before the first round; the first finds the pass count. False: a signal stopped it.
    fn prepare(&mut self, cases: &mut [CaseState]) -> anyhow::Result<bool> {
        let total = self.plan.cases.len();
        for c in cases.iter_mut() {
            if self.stop.load(Ordering::Relaxed) {
                self.tally.interrupted = true;
                return Ok(false);
            }
            if !self.warm_up(c, total)? {
                return Ok(false);
            }
            if c.failed && self.ends_run() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One case's warm-ups and calibration. False: a signal stopped it.
    fn warm_up(&mut self, c: &mut CaseState, total: usize) -> anyhow::Result<bool> {
        let min_time = self.plan.settings.min_time;
        let mut warmups = self.plan.settings.warmup;
        let mut trial = c.passes.unwrap_or(1);
        while warmups > 0 || c.passes.is_none() {
            c.ran = true;
            let Some(mut row) = self.measure(&c.key, 0, 0, trial)? else {
                return Ok(false);
            };
            let calibrating = c.passes.is_none();
            self.out.say(format!(
                "{} {}: {}",
                c.label(total),
                warmup_words(trial, calibrating),
                result(&row)
            ));
            if !row.is_ok() {
                row.add_flag(Flag::Warmup);
                self.keep(row)?;
                c.failed = true;
                return Ok(true);
            }
            warmups = warmups.saturating_sub(1);
            c.fastest_pass_s = c.fastest_pass_s.min(row.wall_s / f64::from(trial));
            if calibrating {
                if row.wall_s >= min_time.as_secs_f64() || trial == Passes::CAP {
                    c.capped = row.wall_s < min_time.as_secs_f64();
                    c.passes = Some(settled_passes(trial, c.fastest_pass_s, min_time));
                } else {
                    trial = next_passes(trial, row.wall_s, min_time);
                }
            }
        }
        if c.capped {
            self.out.say(format!(
                "{}: {} passes (the cap) still last under --min-time: the rows are flagged passes-capped",
                c.label(total),
                Passes::CAP
            ));
        }
        Ok(true)
    }

    /// The rounds, each case once per round in the round's order, until `--repeat` or the stopping rule says.
    fn rounds(&mut self, cases: &mut [CaseState]) -> anyhow::Result<()> {
        let plan = self.plan;
        let seed = plan.settings.order_seed.unwrap_or(0);
        let started = self.m.clock();
        let mut longest_round = Duration::ZERO;
        for round in 1..=last_round(plan) {
            if plan.settings.repeat == Repeat::Auto
                && let Some(stop) = self.auto_stop(cases, round, started, longest_round)
            {
                self.tally.stop = stop;
                return Ok(());
            }
            if !cases.iter().any(|c| c.wants(round)) {
                if cases.iter().all(|c| c.failed) {
                    return Ok(());
                }
                continue;
            }
            let began = self.m.clock();
            for i in round_order(plan.settings.order, cases.len(), round, seed) {
                if !cases[i].wants(round) {
                    continue;
                }
                if !self.counted(&mut cases[i], round)? {
                    return Ok(());
                }
                if cases[i].failed && self.ends_run() {
                    self.tally.stop = Stop::Failure;
                    return Ok(());
                }
            }
            self.tally.rounds = round;
            longest_round = longest_round.max(self.m.clock().saturating_sub(began));
            self.out.checkpoint(self.rows)?;
        }
        if plan.settings.repeat == Repeat::Auto {
            self.tally.stop = Stop::Cap;
            self.tally.undecided = self.undecided(cases);
        }
        Ok(())
    }

    /// `--order grouped`: every round of a case before the next case.
    fn grouped(&mut self, cases: &mut [CaseState]) -> anyhow::Result<()> {
        for c in cases.iter_mut() {
            for round in 1..=last_round(self.plan) {
                if !c.wants(round) {
                    continue;
                }
                if !self.counted(c, round)? {
                    return Ok(());
                }
                self.tally.rounds = self.tally.rounds.max(round);
            }
            self.out.checkpoint(self.rows)?;
            if c.failed && self.ends_run() {
                self.tally.stop = Stop::Failure;
                return Ok(());
            }
        }
        Ok(())
    }

    /// One counted repetition of `c` in `round`. False: a signal stopped it.
    ///
    /// A fast mode the warm-ups never saw makes a repetition shorter than planned. It is kept and counted whatever
    /// its length (flagged `short-run` under `SHORT_RUN_S`): measuring it again until it came out long would keep
    /// the slow mode's repetitions and drop the fast one's. Under `--min-time`, later rounds get a pass count that
    /// lasts `--min-time` at its pace.
    fn counted(&mut self, c: &mut CaseState, round: u32) -> anyhow::Result<bool> {
        let min_time = self.plan.settings.min_time;
        let auto = self.plan.passes() == Passes::Auto;
        let Some(passes) = c.passes else {
            return Ok(true); // its calibration failed: the case has failed
        };
        c.ran = true;
        let Some(mut row) = self.measure(&c.key, c.next_rep, round, passes)? else {
            return Ok(false);
        };
        if c.capped {
            row.add_flag(Flag::PassesCapped);
        }
        let ok = row.is_ok();
        let short = ok && row.wall_s < crate::results::summary::SHORT_RUN_S;
        if short {
            row.add_flag(Flag::ShortRun);
        }
        let of = match self.plan.settings.repeat {
            Repeat::Fixed(n) => n.to_string(),
            Repeat::Auto => "auto".into(),
        };
        let label = c.label(self.plan.cases.len());
        self.out.say(format!("round {round}/{of} {label}: {}", result(&row)));
        let raised = aim(row.wall_s / f64::from(passes), min_time).max(passes);
        let grow = ok && auto && raised > passes && row.wall_s < min_time.as_secs_f64();
        c.next_rep += 1;
        self.keep(row)?;
        if !ok {
            c.failed = true;
            return Ok(true);
        }
        c.done.insert(round);
        if short {
            self.out.say(format!(
                "{label}: that repetition lasted under {} s (a faster mode than the pass count was set for): kept, \
                 flagged short-run and counted",
                crate::results::summary::SHORT_RUN_S
            ));
        }
        if grow {
            c.passes = Some(raised);
            self.out.say(format!(
                "{label}: that repetition ran under --min-time: {raised} passes from the next round on"
            ));
        }
        Ok(true)
    }

    /// `--repeat auto`: whether to stop before `round`, and why.
    fn auto_stop(&mut self, cases: &[CaseState], round: u32, started: Duration, longest: Duration) -> Option<Stop> {
        if round <= rounds_to_decide() as u32 {
            return None;
        }
        let undecided = self.undecided(cases);
        if undecided.is_empty() {
            self.out.say(format!(
                "--repeat auto: every case's {} interval within ±{:.1}% after {} rounds",
                crate::results::stats::percent_floor(crate::results::stats::DECIDE_LEVEL),
                self.plan.ci() * 100.0,
                round - 1
            ));
            return Some(Stop::Decided);
        }
        let spent = self.m.clock().saturating_sub(started);
        if spent + longest > self.plan.max_time() {
            self.tally.undecided = undecided;
            return Some(Stop::MaxTime);
        }
        let widest = undecided.iter().map(|u| u.1).fold(0.0, f64::max);
        self.out.say(format!(
            "--repeat auto: {} case(s) not yet within ±{:.1}% (widest ±{:.1}%): round {round}",
            undecided.len(),
            self.plan.ci() * 100.0,
            widest * 100.0
        ));
        None
    }

    /// The cases still running whose interval at `DECIDE_LEVEL` reaches further than `--ci` from its median (or
    /// does not reach that level yet), with how far it reaches (`stats::stop_reach`). A serial sendfile case that
    /// other cases of the plan are measured against is not asked for a narrow interval of its own: what matters of
    /// it is in their ratios.
    fn undecided(&self, cases: &[CaseState]) -> Vec<(CaseKey, f64)> {
        let values = crate::results::summary::deciding_values(self.rows);
        let ci = self.plan.ci();
        let is_a_baseline = |k: &CaseKey| {
            cases
                .iter()
                .any(|o| o.key != *k && !o.failed && o.key.sendfile_baseline() == *k)
        };
        cases
            .iter()
            .filter(|c| !c.failed && !is_a_baseline(&c.key))
            .filter_map(|c| {
                let reach = values.get(&c.key).map_or(f64::INFINITY, |v| stop_reach(v));
                (reach > ci).then_some((c.key, reach))
            })
            .collect()
    }

    /// Runs one repetition and settles its row: None when a signal cut it short (dropped whole).
    fn measure(&mut self, key: &CaseKey, rep: u32, round: u32, passes: u32) -> anyhow::Result<Option<Row>> {
        let row = self.m.repetition(key, rep, round, passes)?;
        if self.stop.load(Ordering::Relaxed) && !row.is_ok() {
            self.tally.interrupted = true;
            return Ok(None);
        }
        // A sink that refuses or cannot be reached before anything ever got through will refuse every case.
        self.reached |= !row.status.unreachable();
        if !self.reached {
            anyhow::bail!("{}", row.error);
        }
        Ok(Some(row))
    }

    fn keep(&mut self, row: Row) -> anyhow::Result<()> {
        self.out.row(&row)?;
        self.rows.push(row);
        Ok(())
    }

    /// After a failed case: whether the run stops (--fail-fast, or a file that changed under it).
    fn ends_run(&mut self) -> bool {
        if self.plan.fail_fast {
            self.out.say("--fail-fast: stopping at the first failed case".into());
            return true;
        }
        if self.rows.last().is_some_and(|r| r.status == Status::FileChanged) {
            self.out
                .say("the test file changed: the cases left would not send what was planned; stopping".into());
            return true;
        }
        false
    }
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
            crate::base::units::format_rate_mb_s(row.throughput_mb_s),
            row.wall_s
        )
    } else {
        format!("FAILED ({}): {}", row.status, row.error)
    }
}

#[cfg(test)]
mod tests;
