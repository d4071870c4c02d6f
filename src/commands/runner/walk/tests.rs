use super::*;
use crate::base::cli::{Cli, Command};
use clap::Parser;

fn plan(args: &[&str]) -> Plan {
    let cli = Cli::try_parse_from(["xferbench", "run"].iter().chain(args)).unwrap();
    let Command::Run(run) = cli.command else { unreachable!() };
    let mut plan = crate::experiment::config::expand(run).unwrap();
    plan.settings.order_seed.get_or_insert(42);
    plan
}

/// Seconds one pass of `case` takes in `round` (0 for warm-ups).
type Pace = Box<dyn FnMut(&CaseKey, u32) -> f64>;

/// A stand-in for the network: each pass takes what `pace` says, plus `overhead_s` per repetition; its clock
/// advances by every repetition's wall time.
struct Fake {
    pace: Pace,
    overhead_s: f64,
    /// (case, repetition, round, passes) of every call.
    calls: Vec<(CaseKey, u32, u32, u32)>,
    fail_at_call: Option<usize>,
    status: Status,
    clock: Duration,
    /// The clock when the first counted repetition began.
    rounds_began: Option<Duration>,
}

impl Fake {
    fn new(pass_s: f64) -> Fake {
        Fake::paced(Box::new(move |_, _| pass_s))
    }

    fn paced(pace: Pace) -> Fake {
        Fake {
            pace,
            overhead_s: 0.0,
            calls: Vec::new(),
            fail_at_call: None,
            status: Status::Ok,
            clock: Duration::ZERO,
            rounds_began: None,
        }
    }

    /// The counted calls: (strategy name, round).
    fn counted(&self) -> Vec<(String, u32)> {
        self.calls
            .iter()
            .filter(|c| c.2 > 0)
            .map(|c| (c.0.strategy.to_string(), c.2))
            .collect()
    }
}

impl Measure for Fake {
    fn repetition(&mut self, case: &CaseKey, repetition: u32, round: u32, passes: u32) -> anyhow::Result<Row> {
        self.calls.push((*case, repetition, round, passes));
        if round > 0 && self.rounds_began.is_none() {
            self.rounds_began = Some(self.clock);
        }
        let failing = self.fail_at_call == Some(self.calls.len());
        let wall_s = self.overhead_s + (self.pace)(case, round) * f64::from(passes);
        self.clock += Duration::from_secs_f64(wall_s);
        Ok(Row {
            strategy: case.strategy,
            threads: case.threads,
            layout: case.layout,
            chunk_bytes: case.chunk_bytes,
            cache: case.cache,
            congestion_control: case.cc,
            rx_mode: case.receiver.map(|(m, _)| m),
            rx_buffer_bytes: case.receiver.map(|(_, b)| b),
            verify: case.verify,
            queue_depth: case.queue_depth,
            repetition,
            round,
            passes,
            file_bytes: 1_000_000,
            wall_s,
            throughput_mb_s: f64::from(passes) / wall_s,
            status: if failing { self.status } else { Status::Ok },
            ..Row::default()
        })
    }

    fn clock(&self) -> Duration {
        self.clock
    }
}

#[derive(Default)]
struct Kept {
    rows: Vec<Row>,
    lines: Vec<String>,
}

impl Output for Kept {
    fn row(&mut self, row: &Row) -> anyhow::Result<()> {
        self.rows.push(row.clone());
        Ok(())
    }
    fn checkpoint(&mut self, _: &[Row]) -> anyhow::Result<()> {
        Ok(())
    }
    fn say(&mut self, line: String) {
        self.lines.push(line);
    }
}

fn run(plan: &Plan, rows: &mut Vec<Row>, m: &mut Fake) -> (Tally, Kept) {
    let mut kept = Kept::default();
    let tally = walk(plan, rows, m, &mut kept, &AtomicBool::new(false)).unwrap();
    (tally, kept)
}

const THREE: &str = "sendfile,read-send,mmap-send";

/// sendfile and read-send, one pass a repetition, `--repeat auto`, then `extra`.
fn auto_pair(extra: &[&str]) -> Plan {
    let pair = [
        "--strategies",
        "sendfile,read-send",
        "--repeat",
        "auto",
        "--passes",
        "1",
    ];
    plan(&[&pair[..], extra].concat())
}

/// `read_send` seconds a pass for read-send, `sendfile` for every other case.
fn by_strategy(case: &CaseKey, sendfile: f64, read_send: f64) -> f64 {
    if case.strategy.to_string() == "read-send" {
        read_send
    } else {
        sendfile
    }
}

#[test]
fn calibration_reaches_min_time_and_holds_the_pass_count() {
    let p = plan(&["--strategies", "sendfile", "--repeat", "3", "--min-time", "0.5s"]);
    // The first pass over a fresh connection is slow; steady passes take 4 ms.
    let mut m = Fake::new(0.004);
    m.overhead_s = 0.02;
    let (tally, kept) = run(&p, &mut Vec::new(), &mut m);
    assert_eq!((tally.ran_cases, tally.rounds), (1, 3));
    assert_eq!(kept.rows.len(), 3);
    let passes = kept.rows[0].passes;
    assert!(
        kept.rows.iter().all(|r| r.passes == passes && r.wall_s >= 0.5),
        "{:?}",
        m.calls
    );
    assert_eq!(kept.rows.iter().map(|r| r.repetition).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(kept.rows.iter().map(|r| r.round).collect::<Vec<_>>(), [1, 2, 3]);
    // Warm-ups found it: calls before the counted ones are repetition 0, growing.
    let warmups: Vec<u32> = m.calls.iter().filter(|c| c.1 == 0).map(|c| c.3).collect();
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
    assert_eq!(m.calls.iter().map(|c| c.3).collect::<Vec<_>>(), [4, 4]);
    assert!(!kept.rows[0].flags.has(Flag::PassesCapped));
    let auto = plan(&["--strategies", "sendfile", "--repeat", "1", "--warmup", "0"]);
    let (_, kept) = run(&auto, &mut Vec::new(), &mut Fake::new(1e-9));
    assert_eq!(kept.rows[0].passes, Passes::CAP);
    assert!(kept.rows[0].flags.has(Flag::PassesCapped));
}

#[test]
fn every_warm_up_comes_before_the_first_round_and_each_round_turns() {
    let p = plan(&["--strategies", THREE, "--repeat", "4", "--passes", "1"]);
    let mut m = Fake::new(0.6);
    let (tally, kept) = run(&p, &mut Vec::new(), &mut m);
    let first_counted = m.calls.iter().position(|c| c.2 > 0).unwrap();
    assert!(
        m.calls[first_counted..].iter().all(|c| c.2 > 0),
        "warm-ups first: {:?}",
        m.calls
    );
    assert_eq!(first_counted, 3);
    let order: Vec<String> = m.counted().iter().map(|(s, _)| s.clone()).collect();
    assert_eq!(
        order,
        [
            "sendfile",
            "read-send",
            "mmap-send", //
            "read-send",
            "mmap-send",
            "sendfile", //
            "mmap-send",
            "sendfile",
            "read-send", //
            "sendfile",
            "read-send",
            "mmap-send",
        ]
    );
    assert_eq!(
        m.counted().iter().map(|c| c.1).collect::<Vec<_>>(),
        [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    );
    assert_eq!((tally.rounds, tally.stop, kept.rows.len()), (4, Stop::Done, 12));
}

#[test]
fn shuffle_draws_a_permutation_per_round_from_its_seed() {
    let p = plan(&[
        "--strategies",
        THREE,
        "--repeat",
        "6",
        "--passes",
        "1",
        "--order",
        "shuffle",
    ]);
    let mut a = Fake::new(0.6);
    run(&p, &mut Vec::new(), &mut a);
    let mut b = Fake::new(0.6);
    run(&p, &mut Vec::new(), &mut b);
    assert_eq!(a.counted(), b.counted(), "the same seed, the same order");
    let rounds: Vec<Vec<String>> = a
        .counted()
        .chunks(3)
        .map(|c| c.iter().map(|x| x.0.clone()).collect())
        .collect();
    for r in &rounds {
        let mut sorted = r.clone();
        sorted.sort();
        assert_eq!(sorted, ["mmap-send", "read-send", "sendfile"], "each case once a round");
    }
    assert!(rounds.windows(2).any(|w| w[0] != w[1]), "{rounds:?}");
    assert_eq!(
        round_order(Order::Shuffle, 5, 3, 9),
        round_order(Order::Shuffle, 5, 3, 9)
    );
}

#[test]
fn grouped_runs_every_repetition_of_a_case_before_the_next() {
    let p = plan(&[
        "--strategies",
        "sendfile,read-send",
        "--repeat",
        "3",
        "--passes",
        "1",
        "--order",
        "grouped",
    ]);
    let mut m = Fake::new(0.6);
    let (tally, _) = run(&p, &mut Vec::new(), &mut m);
    let c = m.counted();
    assert_eq!(
        c.iter().map(|x| x.0.as_str()).collect::<Vec<_>>()[..4],
        ["sendfile", "sendfile", "sendfile", "read-send"]
    );
    assert_eq!(c.iter().map(|x| x.1).collect::<Vec<_>>(), [1, 2, 3, 1, 2, 3]);
    assert_eq!(tally.rounds, 3);
}

#[test]
fn a_resumed_run_goes_on_from_the_round_and_case_where_it_stopped() {
    let p = plan(&["--strategies", THREE, "--repeat", "3"]);
    let (_, first) = run(&p, &mut Vec::new(), &mut Fake::new(0.3));
    // Cut the run short in the middle of round 2 (after its first case), as a hard kill would.
    let mut rows: Vec<Row> = first.rows.iter().take(4).cloned().collect();
    rows.iter_mut().for_each(|r| r.passes = 3);
    let mut m = Fake::new(0.3);
    let (tally, kept) = run(&p, &mut rows, &mut m);
    assert_eq!(tally.skipped, 0);
    // Round 2 goes on with its next cases, then round 3 turns as it would have.
    assert_eq!(
        m.counted(),
        [
            ("mmap-send".to_string(), 2),
            ("sendfile".to_string(), 2),
            ("mmap-send".to_string(), 3),
            ("sendfile".to_string(), 3),
            ("read-send".to_string(), 3),
        ]
    );
    assert!(m.calls.iter().all(|c| c.3 == 3), "no recalibration: {:?}", m.calls);
    let mut seen: Vec<(String, u32)> = rows.iter().map(|r| (r.strategy.to_string(), r.round)).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 9, "each (case, round) once");
    let reps: Vec<u32> = kept
        .rows
        .iter()
        .filter(|r| r.strategy.to_string() == "read-send")
        .map(|r| r.repetition)
        .collect();
    assert_eq!(reps, [3], "repetitions count on");
    // A larger --repeat adds only the missing rounds; a complete case is skipped.
    let more = plan(&["--strategies", THREE, "--repeat", "4"]);
    let mut m = Fake::new(0.3);
    let (_, kept) = run(&more, &mut rows, &mut m);
    assert_eq!(kept.rows.iter().map(|r| r.round).collect::<Vec<_>>(), [4, 4, 4]);
    let (tally, _) = run(&more, &mut rows, &mut Fake::new(0.3));
    assert_eq!(tally.skipped, 3);
}

#[test]
fn repeat_auto_stops_once_every_interval_is_narrow() {
    let p = auto_pair(&["--ci", "5%"]);
    // Steady: read-send always 0.8x sendfile, with 1% of jitter.
    let mut calls = 0u32;
    let mut m = Fake::paced(Box::new(move |case, _| {
        calls += 1;
        let jitter = 1.0 + 0.01 * f64::from(calls % 3);
        by_strategy(case, 0.6 * jitter, 0.75 * jitter)
    }));
    let (tally, kept) = run(&p, &mut Vec::new(), &mut m);
    assert_eq!(tally.stop, Stop::Decided);
    assert_eq!(
        tally.rounds,
        rounds_to_decide() as u32,
        "no round more than the deciding interval needs"
    );
    assert!(tally.undecided.is_empty());
    assert!(
        kept.lines
            .iter()
            .any(|l| l.contains("every case's 99% interval within ±5.0% after 8 rounds")),
        "{:?}",
        kept.lines
    );
}

#[test]
fn repeat_auto_stops_at_max_time_and_names_the_undecided_cases() {
    let p = auto_pair(&["--max-time", "20s"]);
    // Noisy: read-send swings between 0.5x and 2x sendfile from round to round.
    let mut m = Fake::paced(Box::new(|case, round| {
        let swing = if round % 2 == 0 { 0.5 } else { 2.0 };
        by_strategy(case, 0.6, 0.6 * swing)
    }));
    let (tally, _) = run(&p, &mut Vec::new(), &mut m);
    assert_eq!(tally.stop, Stop::MaxTime);
    assert_eq!(tally.undecided.len(), 1, "{:?}", tally.undecided);
    assert_eq!(tally.undecided[0].0.strategy.to_string(), "read-send");
    assert!(tally.rounds >= 6, "{}", tally.rounds);
    // Warm-ups are not counted; the rounds stop before one more would pass --max-time.
    let rounds_took = m.clock - m.rounds_began.unwrap();
    assert!(rounds_took <= Duration::from_secs(20), "{rounds_took:?}");
}

#[test]
fn a_fast_mode_the_warm_ups_missed_raises_the_pass_count_for_later_rounds() {
    let p = plan(&["--strategies", "sendfile", "--repeat", "4", "--min-time", "0.5s"]);
    // From round 2 on the machine runs twice as fast: long enough to time, short of --min-time.
    let mut m = Fake::paced(Box::new(|_, round| if round >= 2 { 0.02 } else { 0.04 }));
    let (_, kept) = run(&p, &mut Vec::new(), &mut m);
    let passes: Vec<u32> = kept.rows.iter().map(|r| r.passes).collect();
    assert!(
        passes[1] == passes[0] && passes[2] > passes[1] && passes[3] == passes[2],
        "{passes:?}"
    );
    assert!(kept.rows[2..].iter().all(|r| r.wall_s >= 0.5), "{:?}", kept.rows);
    assert!(
        kept.lines.iter().any(|l| l.contains("passes from the next round on")),
        "{:?}",
        kept.lines
    );
}

#[test]
fn calibration_aims_at_the_fastest_pass_the_warm_ups_saw() {
    let p = plan(&[
        "--strategies",
        "sendfile",
        "--repeat",
        "1",
        "--warmup",
        "3",
        "--min-time",
        "1s",
    ]);
    // Warm-ups alternate between a slow and a fast mode (20 ms and 5 ms a pass).
    let mut n = 0;
    let mut m = Fake::paced(Box::new(move |_, _| {
        n += 1;
        if n % 2 == 1 { 0.02 } else { 0.005 }
    }));
    let (_, kept) = run(&p, &mut Vec::new(), &mut m);
    assert!(
        kept.rows[0].passes >= 250,
        "aimed at 5 ms a pass: {}",
        kept.rows[0].passes
    );
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
    assert_eq!(kept.rows.len(), 3, "the other case ran its rounds");
}

#[test]
fn a_failed_repetition_drops_its_case_from_later_rounds() {
    let p = plan(&["--strategies", "sendfile,read-send", "--repeat", "3", "--passes", "1"]);
    let mut m = Fake::new(0.6);
    m.fail_at_call = Some(4); // read-send in round 1
    m.status = Status::Corrupt;
    let (tally, kept) = run(&p, &mut Vec::new(), &mut m);
    assert_eq!(tally.failed_cases, 1);
    let read_send: Vec<&Row> = kept
        .rows
        .iter()
        .filter(|r| r.strategy.to_string() == "read-send")
        .collect();
    assert_eq!(read_send.len(), 1);
    assert_eq!(kept.rows.len(), 4);
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
    assert_eq!(settled_passes(100, 0.005, Duration::from_millis(500)), 125);
    assert_eq!(settled_passes(100, 0.02, Duration::from_millis(500)), 100);
}

#[test]
fn a_baseline_that_drifts_is_judged_by_the_ratios_it_divides() {
    let p = auto_pair(&[]);
    // The machine halves its speed every other round; read-send stays 0.8x sendfile within each round.
    let mut m = Fake::paced(Box::new(|case, round| {
        let drift = if round % 2 == 0 { 2.0 } else { 1.0 };
        by_strategy(case, 0.6 * drift, 0.75 * drift)
    }));
    let (tally, _) = run(&p, &mut Vec::new(), &mut m);
    assert_eq!((tally.stop, tally.rounds), (Stop::Decided, rounds_to_decide() as u32));
}

#[test]
fn a_repetition_too_short_to_time_is_kept_flagged_and_counted() {
    let p = plan(&[
        "--strategies",
        "sendfile,read-send",
        "--repeat",
        "3",
        "--min-time",
        "0.5s",
    ]);
    // In round 2, sendfile runs ten times as fast as its warm-ups did: a fast mode they never saw.
    let mut m = Fake::paced(Box::new(move |case, round| {
        let fast = case.strategy.to_string() == "sendfile" && round == 2;
        if fast { 0.004 } else { 0.04 }
    }));
    let (_, kept) = run(&p, &mut Vec::new(), &mut m);
    let sf: Vec<&Row> = kept
        .rows
        .iter()
        .filter(|r| r.strategy.to_string() == "sendfile")
        .collect();
    assert_eq!(
        sf.iter().map(|r| (r.round, r.repetition)).collect::<Vec<_>>(),
        [(1, 1), (2, 2), (3, 3)],
        "one row per round, the short one among them"
    );
    let short = sf[1];
    assert!(short.wall_s < 0.2 && short.flags.has(Flag::ShortRun), "{short:?}");
    assert!(!sf[0].flags.has(Flag::ShortRun) && !sf[2].flags.has(Flag::ShortRun));
    assert!(sf[2].passes > sf[1].passes, "later rounds get more passes: {:?}", sf);
    let measured = m
        .calls
        .iter()
        .filter(|c| c.0.strategy.to_string() == "sendfile" && c.2 == 2)
        .count();
    assert_eq!(measured, 1, "not measured again");
    assert!(
        kept.lines
            .iter()
            .any(|l| l.contains("kept, flagged short-run and counted")),
        "{:?}",
        kept.lines
    );
    // The summary counts it, and says so.
    let cases = crate::results::summary::summarise(&kept.rows);
    let c = cases.iter().find(|c| c.key.strategy.to_string() == "sendfile").unwrap();
    assert_eq!((c.ok_runs, c.short_runs), (3, 1));
    assert!(
        c.flags.contains(&crate::results::summary::CaseFlag::Short(1)),
        "{:?}",
        c.flags
    );
    let read_send = cases
        .iter()
        .find(|c| c.key.strategy.to_string() == "read-send")
        .unwrap();
    assert_eq!(read_send.vs_sendfile.unwrap().n, 3, "its round keeps its pair");
}

#[test]
fn repeat_auto_stops_when_the_deciding_interval_says_so() {
    // read-send's ratio to sendfile drawn each round from a seeded lognormal (σ 0.04) around 0.8: the walk must stop
    // before the first round after which `stop_reach` of the ratios so far is within --ci, and not before.
    let p = auto_pair(&["--ci", "5%", "--max-time", "1000s"]);
    let mut r = crate::results::stats::rng(29, 7);
    let ratios: Vec<f64> = (0..200)
        .map(|_| 0.8 * (0.04 * crate::results::stats::simulate::normal(&mut r)).exp())
        .collect();
    let expected = (1..=ratios.len()).find(|&n| stop_reach(&ratios[..n]) <= 0.05).unwrap();
    let drawn = ratios.clone();
    let mut m = Fake::paced(Box::new(move |case, round| {
        let ratio = if round == 0 { 1.0 } else { drawn[round as usize - 1] };
        by_strategy(case, 0.6, 0.6 / ratio)
    }));
    let (tally, kept) = run(&p, &mut Vec::new(), &mut m);
    assert_eq!(
        (tally.stop, tally.rounds as usize),
        (Stop::Decided, expected),
        "{:?}",
        kept.lines
    );
    assert!(
        expected > rounds_to_decide(),
        "the draws make it decide late: {expected}"
    );
}
