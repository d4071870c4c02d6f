//! `run`: the plan walked end to end. The result folder is taken first (one run per folder; a resume must go on
//! with the same plan), then the fixture, the sink, every case's warm-ups and then the rounds; every counted row is
//! on disk before the next repetition starts, summary.json is rewritten after each round, and the table comes
//! last. SIGINT and SIGTERM stop the run within a second or two with what was finished kept.

mod connect;
mod consumers;
mod context;
mod ends;
mod folder;
mod jvm;
mod repetition;
mod senders;
mod wait;
mod walk;

use crate::base::cli::RunArgs;
use crate::base::env::Environment;
use crate::base::error::{EXIT_FAILURE, EXIT_INTERRUPTED, UsageError};
use crate::base::model::{CaseKey, Transport};
use crate::commands::sink::spawn::{SpawnOptions, SpawnedSink};
use crate::experiment::config::PlanFile;
use crate::experiment::config::{self, Plan, Source};
use crate::experiment::fixture::{self, Fixture};
use crate::results::record::Row;
use crate::results::summary::{CaseSummary, summarise_within, table};
use anyhow::Context;
use context::Target;
use folder::Folder;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where a run stands, as summary.json says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum RunState {
    /// Under way, or killed outright (the next `--resume` makes it true again).
    Running,
    Finished,
    /// Stopped by SIGINT or SIGTERM.
    Interrupted,
    /// An error ended the run.
    Failed,
}

/// How the rounds ended, as summary.json says it.
#[derive(Debug, Serialize)]
struct Rounds {
    /// The last round that ran.
    last: u32,
    /// `done` (every round asked for), `decided` (--repeat auto: every interval within --ci), `max-time`, `cap`,
    /// `failure`.
    stop: &'static str,
    /// --repeat auto: the cases whose interval did not get within --ci, and how far their deciding interval
    /// reached (its farther end over the median).
    undecided: Vec<(String, f64)>,
    /// --repeat auto: the level of the interval the rounds were stopped on (`stats::DECIDE_LEVEL`); the cases'
    /// intervals are reported at 95%.
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_at_level: Option<f64>,
}

impl Rounds {
    fn of(t: &walk::Tally) -> Rounds {
        Rounds {
            last: t.rounds,
            stop: match t.stop {
                walk::Stop::Done => "done",
                walk::Stop::Decided => "decided",
                walk::Stop::MaxTime => "max-time",
                walk::Stop::Cap => "cap",
                walk::Stop::Failure => "failure",
            },
            undecided: t.undecided.iter().map(|(k, w)| (k.id(), *w)).collect(),
            decided_at_level: t.auto.then_some(crate::results::stats::DECIDE_LEVEL),
        }
    }
}

/// summary.json.
#[derive(Debug, Serialize)]
struct SummaryFile<'a> {
    run_id: &'a str,
    state: RunState,
    /// How the rounds ended (once they have).
    #[serde(skip_serializing_if = "Option::is_none")]
    rounds: Option<Rounds>,
    plan: &'a PlanFile,
    environment: &'a Environment,
    /// Everything that shapes the numbers on this machine (`xferbench env`), for `compare` to say what differs.
    system: &'a crate::base::env::Record,
    file: String,
    file_bytes: u64,
    cases: Vec<CaseSummary>,
}

/// What summary.json is made of, besides the rows.
struct Summary<'a> {
    run_id: &'a str,
    plan: &'a PlanFile,
    environment: &'a Environment,
    system: &'a crate::base::env::Record,
    fixture: &'a Fixture,
    /// `--same-within`: the margin each `vs sf` is judged against.
    same_within: f64,
}

impl Summary<'_> {
    fn file<'s>(&'s self, rows: &[Row], state: RunState, rounds: Option<Rounds>) -> SummaryFile<'s> {
        SummaryFile {
            run_id: self.run_id,
            state,
            rounds,
            plan: self.plan,
            environment: self.environment,
            system: self.system,
            file: self.fixture.path.display().to_string(),
            file_bytes: self.fixture.size,
            cases: summarise_within(rows, self.same_within),
        }
    }
}

/// `xferbench run`: returns the exit status.
pub fn main(args: RunArgs) -> anyhow::Result<i32> {
    let json = args.format == crate::base::cli::Format::Json;
    let mut plan = config::expand(args)?;
    // Before anything else, and before any thread: the sender, the sink it spawns and every socket live in it.
    if let (Some(mtu), false) = (plan.settings.netns_mtu, plan.dry_run) {
        crate::experiment::netns::enter(mtu)?;
    }
    config::check_machine(&mut plan)?;
    // A JVM case without a JDK or strace is refused here, before anything is made, sent or written.
    let jvms = jvm::Jvms::prepare(&plan, plan.dry_run)?;
    if plan.dry_run {
        print_plan(&plan)?;
        return Ok(0);
    }
    let stop = stop_on_signals()?;
    let run_id = run_id();
    let dir = plan
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&run_id));
    // The folder first: a second run on it is refused before anything is made, sent or written.
    let (mut folder, mut rows) = Folder::open(&dir, &run_id, plan.resume)?;
    // The paths of --link before anything is made or sent: no root, no iproute2, no netem are refused here.
    let paths = crate::link::Paths::make(&plan.cases.iter().map(|c| c.link).collect::<Vec<_>>())?;
    let fixture = open_source(&plan, &stop)?;
    let record = folder.settle_plan(&mut plan, fixture.size)?;
    let env = Environment::detect(&fixture.path);
    let ends = ends::start(&plan, &paths)?;
    let (target, sink) = receiver(&plan, &ends)?;
    // The record describes the run's own interface: a path's sink is not reached from here.
    let peer = target
        .addrs
        .first()
        .map(|a| a.ip())
        .filter(|_| target.transport != Transport::Veth);
    let system = crate::base::env::detect(&fixture.path, peer);
    if !plan.quiet {
        announce(&plan, &env, &system, &fixture, &target, &dir);
    }
    let mut live = Live {
        plan: &plan,
        fixture: &fixture,
        env: &env,
        emulated: system.emulated(),
        mtu: system.net.interface.mtu_bytes.parse().ok(),
        run_id: &run_id,
        target,
        sink,
        paths: &paths,
        ends,
        stop: &stop,
        began: std::time::Instant::now(),
        jvms,
    };
    let summary = Summary {
        run_id: &run_id,
        plan: &record,
        environment: &env,
        system: &system,
        fixture: &fixture,
        same_within: plan.same_within,
    };
    folder.write_summary(&summary.file(&rows, RunState::Running, None))?;
    let walked = {
        let mut out = FolderOutput {
            folder: &mut folder,
            summary: &summary,
            quiet: plan.quiet,
        };
        live.began = std::time::Instant::now();
        walk::walk(&plan, &mut rows, &mut live, &mut out, &stop)
    };
    drop(live);
    let tally = match walked {
        Ok(t) => t,
        Err(e) => {
            // A run that recorded nothing takes back what it made in the folder (with runs.csv).
            let _ = folder.write_summary(&summary.file(&rows, RunState::Failed, None));
            return Err(e);
        }
    };
    finish(&plan, &mut folder, &summary, (&rows, &tally), &stop, json)
}

/// After the walk: the folder is kept, its summary says how the run ended and the table is shown.
fn finish(
    plan: &Plan,
    folder: &mut Folder,
    summary: &Summary,
    (rows, tally): (&[Row], &walk::Tally),
    stop: &AtomicBool,
    json: bool,
) -> anyhow::Result<i32> {
    folder.keep();
    let interrupted = tally.interrupted || stop.load(Ordering::Relaxed);
    let state = if interrupted {
        RunState::Interrupted
    } else {
        RunState::Finished
    };
    let file = summary.file(rows, state, Some(Rounds::of(tally)));
    folder.write_summary(&file)?;
    // With --format json, stdout holds the summary alone; everything for people goes to stderr.
    let json = json.then(|| serde_json::to_string_pretty(&file)).transpose()?;
    // The table shows the folder's rows of this plan's cases: a resumed run's rounds pair with the earlier ones.
    let shown: Vec<Row> = rows.iter().filter(|r| plan.cases.contains(&r.key())).cloned().collect();
    report(
        plan,
        folder,
        if shown.is_empty() { rows } else { &shown },
        tally,
        (interrupted, json),
    )
}

/// SIGINT and SIGTERM set a flag that the transfer loops and waits check.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("cannot install signal handlers")?;
    }
    Ok(stop)
}

/// The file to send: the generated fixture, made or reused, or the user's file; checked against the plan.
fn open_source(plan: &Plan, stop: &AtomicBool) -> anyhow::Result<Fixture> {
    let fixture = match &plan.source {
        Source::Generated(spec) => fixture::ensure_until(spec, !plan.quiet, stop)?,
        Source::UserFile(path) => fixture::open_user_file(path)?,
    };
    if plan.settings.verify && fixture.seed.is_none() {
        return Err(UsageError::msg(
            "--verify needs a generated fixture: the content of a --file is checked by byte count only (unless a \
             matching sidecar shows xferbench made it)",
        )
        .into());
    }
    config::check_against_file(plan, fixture.size)?;
    Ok(fixture)
}

/// Who receives: the sink of --connect, or one spawned here (none where every case goes over a --link path).
fn receiver(plan: &Plan, ends: &[ends::End]) -> anyhow::Result<(Target, Option<SpawnedSink>)> {
    Ok(match &plan.settings.connect {
        Some(hostport) => (Target::remote(plan, hostport)?, None),
        None if !ends.is_empty() && plan.cases.iter().all(|c| !c.link.is_loopback()) => (ends::target(ends), None),
        None => {
            let sink = start_sink(plan, "127.0.0.1:0", None)?;
            (Target::spawned(sink.addr, Transport::Loopback), Some(sink))
        }
    })
}

/// The run's first lines on stderr: what it will do, and where.
fn announce(
    plan: &Plan,
    env: &Environment,
    system: &crate::base::env::Record,
    fixture: &Fixture,
    target: &Target,
    dir: &std::path::Path,
) {
    let s = &plan.settings;
    eprintln!(
        "xferbench {}: {} case(s), {} warm-up(s) each, then {} round(s) in {} order (passes {}, --min-time {}) of {} \
         ({} bytes) to {} ({}), congestion control {}; results in {}",
        env.xferbench_version,
        plan.cases.len(),
        s.warmup,
        rounds_words(plan),
        s.order,
        plan.passes(),
        humantime::format_duration(s.min_time),
        fixture.path.display(),
        fixture.size,
        target.label,
        target.transport,
        ccs(plan),
        dir.display()
    );
    if s.order == crate::base::model::Order::Shuffle {
        eprintln!(
            "xferbench: --order shuffle with --order-seed {}",
            s.order_seed.unwrap_or(0)
        );
    }
    if system.emulated() {
        eprintln!(
            "xferbench: this machine's CPU is emulated (QEMU's TCG): every row is flagged emulated, its numbers are \
             the emulator's"
        );
    }
}

/// `3`, or `auto (until ±5%, at most 60s)`.
fn rounds_words(plan: &Plan) -> String {
    match plan.settings.repeat {
        crate::base::model::Repeat::Fixed(n) => n.to_string(),
        crate::base::model::Repeat::Auto => format!(
            "auto (at least {}, until every {} interval is within ±{:.1}%, at most {})",
            crate::results::stats::rounds_to_decide(),
            crate::results::stats::percent_floor(crate::results::stats::DECIDE_LEVEL),
            plan.ci() * 100.0,
            humantime::format_duration(plan.max_time())
        ),
    }
}

/// The congestion controls of the cases, e.g. `bbr` or `cubic, bbr`.
fn ccs(plan: &Plan) -> String {
    let mut names: Vec<String> = Vec::new();
    for cc in plan.cases.iter().filter_map(|c| c.cc) {
        if !names.contains(&cc.to_string()) {
            names.push(cc.to_string());
        }
    }
    names.join(", ")
}

/// What `--repeat auto` found, in a line.
fn stop_line(plan: &Plan, tally: &walk::Tally) -> Option<String> {
    let ci = plan.ci() * 100.0;
    let decide = crate::results::stats::percent_floor(crate::results::stats::DECIDE_LEVEL);
    let cases = || {
        tally
            .undecided
            .iter()
            .map(|(k, w)| format!("{k} (reaches ±{:.1}%)", w * 100.0))
            .collect::<Vec<_>>()
            .join("; ")
    };
    match tally.stop {
        walk::Stop::Decided => Some(format!(
            "--repeat auto: every case's {decide} interval within ±{ci:.1}% after {} rounds (the table shows the 95% \
             intervals)",
            tally.rounds
        )),
        walk::Stop::MaxTime => Some(format!(
            "--repeat auto: --max-time {} was up after {} rounds; {decide} interval not within ±{ci:.1}%: {}",
            humantime::format_duration(plan.max_time()),
            tally.rounds,
            cases()
        )),
        walk::Stop::Cap => Some(format!(
            "--repeat auto: {} rounds (the cap) ran; {decide} interval not within ±{ci:.1}%: {}",
            tally.rounds,
            cases()
        )),
        walk::Stop::Done | walk::Stop::Failure => None,
    }
}

/// The table, the charts and report.html, the closing line and the exit status; with `json` (the summary), the
/// summary on stdout and the rest on stderr.
fn report(
    plan: &Plan,
    folder: &Folder,
    shown: &[Row],
    tally: &walk::Tally,
    (interrupted, json): (bool, Option<String>),
) -> anyhow::Result<i32> {
    let say = |text: String| match json {
        Some(_) => eprintln!("{text}"),
        None => crate::base::out::outln!("{text}"),
    };
    say(table(&summarise_within(shown, plan.same_within)));
    if let Some(line) = stop_line(plan, tally) {
        say(line);
    }
    say(format!("results: {}", folder.dir.display()));
    // `plot` writes report.html after the charts; without --plot it is written here, its charts inline only.
    let written = if plan.plot && !shown.is_empty() {
        crate::commands::report::plot_dir(&folder.dir).map(|mut files| {
            let report = files.pop();
            say(format!("charts: {}", files.len()));
            report
        })
    } else {
        crate::commands::report::write_folder(&folder.dir).map(Some)
    };
    match written {
        Ok(Some(report)) => say(format!("report: {}", report.display())),
        Ok(None) => {}
        Err(e) => eprintln!("xferbench: warning: charts or report.html not written: {e:#}"),
    }
    if let Some(json) = json {
        crate::base::out::print(&(json + "\n"));
    }
    if interrupted {
        eprintln!(
            "xferbench: interrupted; finished rows are in {} (--resume goes on from there)",
            folder.csv_path.display()
        );
        return Ok(EXIT_INTERRUPTED);
    }
    if tally.failed_cases > 0 {
        let not_run = plan.cases.len() - tally.ran_cases - tally.skipped;
        let left = if not_run > 0 {
            format!(" ({not_run} more not run)")
        } else {
            String::new()
        };
        eprintln!(
            "xferbench: {} of {} case(s) failed{left}; see the status and error columns of {}",
            tally.failed_cases,
            tally.ran_cases,
            folder.csv_path.display()
        );
        return Ok(EXIT_FAILURE);
    }
    Ok(0)
}

/// `<UTC time to the millisecond>-<host>-<pid>`: unique even for runs started in the same second on one host.
fn run_id() -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into());
    let stamp = humantime::format_rfc3339_millis(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    format!("{stamp}-{host}-{}", std::process::id())
}

/// The real repetitions: the network, the sink, the file.
struct Live<'a> {
    plan: &'a Plan,
    fixture: &'a Fixture,
    env: &'a Environment,
    emulated: bool,
    /// The MTU of the interface the streams use.
    mtu: Option<u32>,
    run_id: &'a str,
    target: Target,
    sink: Option<SpawnedSink>,
    /// The --link paths, and the sink at the end of each.
    paths: &'a crate::link::Paths,
    ends: Vec<ends::End<'a>>,
    stop: &'a AtomicBool,
    /// When the walk began (`--max-time` counts from here).
    began: std::time::Instant,
    /// The JVM of each JVM case.
    jvms: jvm::Jvms,
}

impl walk::Measure for Live<'_> {
    fn clock(&self) -> std::time::Duration {
        self.began.elapsed()
    }

    fn repetition(&mut self, case: &CaseKey, number: u32, round: u32, passes: u32) -> anyhow::Result<Row> {
        // A case over a path: its sink, and this thread in the path's sender namespace until the row is made.
        let (target, mtu, _inside) = match self.ends.iter_mut().find(|e| e.path.link == case.link) {
            Some(end) => {
                end.restart_if_exited(self.plan)?;
                let inside = self
                    .paths
                    .enter(end.path)
                    .context("cannot enter the path's sender namespace")?;
                (&end.target, end.path.mtu, Some(inside))
            }
            None => {
                if let Some(s) = self.sink.as_mut()
                    && s.has_exited()
                {
                    eprintln!("xferbench: the sink process had exited; starting a new one");
                    *s = start_sink(self.plan, "127.0.0.1:0", None)?;
                    self.target = Target::spawned(s.addr, Transport::Loopback);
                }
                (&self.target, self.mtu, None)
            }
        };
        let ctx = context::Context {
            plan: self.plan,
            fixture: self.fixture,
            env: self.env,
            emulated: self.emulated,
            mtu,
            run_id: self.run_id,
            target,
            stop: self.stop,
        };
        let running = match case.strategy.method.jvm() {
            false => None,
            true => match self.jvms.running(&ctx, case) {
                Ok(running) => Some(running),
                Err(why) => return Ok(repetition::failed(&ctx, case, number, round, passes, why)),
            },
        };
        Ok(repetition::run(&ctx, case, number, round, passes, running))
    }
}

/// Rows into the folder, a fresh summary.json after each case, progress on stderr.
struct FolderOutput<'a> {
    folder: &'a mut Folder,
    summary: &'a Summary<'a>,
    quiet: bool,
}

impl walk::Output for FolderOutput<'_> {
    fn row(&mut self, row: &Row) -> anyhow::Result<()> {
        self.folder.write_row(row)
    }

    fn checkpoint(&mut self, rows: &[Row]) -> anyhow::Result<()> {
        self.folder
            .write_summary(&self.summary.file(rows, RunState::Running, None))
    }

    fn say(&mut self, line: String) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }
}

/// A sink child listening on `listen`, inside the network namespace held by `netns` (None: the run's own).
fn start_sink(plan: &Plan, listen: &str, netns: Option<PathBuf>) -> anyhow::Result<SpawnedSink> {
    let s = &plan.settings;
    SpawnedSink::start(&SpawnOptions {
        listen: listen.to_string(),
        netns,
        rx_buffer: s.rx_buffer,
        rx_mode: plan.rx_modes().first().copied().unwrap_or_default(),
        rcvbuf: s.rcvbuf,
        cpus: s.sink_cpus.as_ref().map(|c| c.text.clone()),
        idle_timeout_s: s.timeout.as_secs().max(30),
    })
}

/// `--dry-run`: the plan, one case a line after a summary line that scripts parse.
fn print_plan(plan: &Plan) -> anyhow::Result<()> {
    let bytes = match &plan.source {
        Source::Generated(spec) => spec.size,
        Source::UserFile(path) => fixture::open_user_file(path)?.size,
    };
    config::check_against_file(plan, bytes)?;
    let s = &plan.settings;
    let rounds = match s.repeat {
        crate::base::model::Repeat::Fixed(n) => n,
        crate::base::model::Repeat::Auto => crate::results::stats::rounds_to_decide() as u32,
    };
    let runs = plan.cases.len() as u64 * u64::from(s.warmup + rounds);
    let at_least = if s.repeat == crate::base::model::Repeat::Auto {
        "at least "
    } else {
        ""
    };
    // Scripts read this first line: keep its words.
    crate::base::out::outln!(
        "plan: {} cases, {at_least}{runs} runs, {bytes} bytes per run",
        plan.cases.len()
    );
    crate::base::out::outln!(
        "  rounds {} in {} order, passes {} (--min-time {})",
        rounds_words(plan),
        s.order,
        plan.passes(),
        humantime::format_duration(s.min_time)
    );
    for case in &plan.cases {
        crate::base::out::outln!("  {case}");
    }
    Ok(())
}
