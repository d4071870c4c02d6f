//! Result folders survive a hard crash and a second writer (issue 16), run as a user meets them: SIGKILL at
//! several moments of a sweep, each followed by `--resume`; a second run on a folder that is in use; a torn last
//! row met by every reader; a full disk under `--out`. And `scripts/crash-resume.sh`, the long version of the kill
//! test, on a tiny plan.
//!
//! Every test works in its own temporary folder with a 1 MiB fixture. A repetition lasts about 60 ms: auto passes
//! with `--min-time 50ms` (the pass count is found once per case during its warm-up, then held), so a row lands in
//! runs.csv every ~60 ms and a kill can be aimed at "after the k-th row". Every command runs under a time limit.

mod common;

use common::{BIN, Tmpfs, children, csv_rows, kill, summary, tmp, wait_for};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use xferbench::record::{self, Row};

/// Longest any one command here may take: far beyond what each needs, so only a hang reaches it.
const LIMIT: Duration = Duration::from_secs(60);

/// How often a wait looks again: often, so that a kill lands close to the row it waits for.
const POLL: Duration = Duration::from_millis(2);

/// A sweep of four cases (sendfile and read-send, 256 KiB and 1 MiB chunks) of a 1 MiB file made in `fx`, warm, no
/// warm-up beyond finding the pass count, `repeat` counted repetitions of ~60 ms each, into `out`.
fn sweep(repeat: u32, out: &str) -> Vec<String> {
    sweep_of("sendfile,read-send", "256KiB,1MiB", "50ms", repeat, out)
}

fn sweep_of(strategies: &str, chunks: &str, min_time: &str, repeat: u32, out: &str) -> Vec<String> {
    let repeat = repeat.to_string();
    run_args(&[
        "--cache",
        "warm",
        "--strategies",
        strategies,
        "--chunk",
        chunks,
        "--min-time",
        min_time,
        "--repeat",
        &repeat,
        "--out",
        out,
    ])
}

/// `run -q` of a 1 MiB file made in `fx`, no warm-up beyond finding the pass count, then `args`.
fn run_args(args: &[&str]) -> Vec<String> {
    ["run", "-q", "--fixture-dir", "fx", "--size", "1MiB", "--warmup", "0"]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect()
}

fn with(args: &[String], more: &[&str]) -> Vec<String> {
    args.iter().cloned().chain(more.iter().map(|s| s.to_string())).collect()
}

/// A command started in the background, stdout and stderr into files beside it; killed and reaped when dropped, so
/// a failing test leaves no process.
struct Started {
    child: Child,
    name: String,
    dir: PathBuf,
}

impl Started {
    fn start(dir: &Path, args: &[String], name: &str) -> Started {
        let file = |ext: &str| File::create(dir.join(format!("{name}.{ext}"))).expect("log file");
        let child = Command::new(BIN)
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file("out"))
            .stderr(file("err"))
            .spawn()
            .expect("xferbench started");
        Started {
            child,
            name: name.into(),
            dir: dir.to_path_buf(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the exit (up to LIMIT); returns the status and what it wrote to stderr.
    fn finish(&mut self) -> (ExitStatus, String) {
        let status = wait_for("the command to exit", LIMIT, POLL, || {
            self.child.try_wait().ok().flatten()
        });
        (status, self.stderr())
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.err", self.name))).unwrap_or_default()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to its end (up to LIMIT); returns the exit status and stderr.
fn run(dir: &Path, args: &[String], name: &str) -> (ExitStatus, String) {
    Started::start(dir, args, name).finish()
}

/// Whole rows in a runs.csv now (0 while it does not exist or cannot be read).
fn rows_now(csv: &Path) -> usize {
    record::read(csv).map_or(0, |f| f.rows.len())
}

/// True while `pid` is a live (not zombie) `xferbench sink`.
fn sink_alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start()).unwrap_or("");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    !stat.is_empty() && !state.starts_with('Z') && cmdline.contains(" sink ")
}

/// Waits until every sink in `sinks` is gone (the kernel sends it SIGTERM when its parent dies); fails if one
/// outlives its run by more than a few seconds.
fn sinks_gone(sinks: &[u32], after: &str) {
    assert!(!sinks.is_empty(), "{after}: the run had no sink to check");
    let start = Instant::now();
    while sinks.iter().any(|&s| sink_alive(s)) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{after}: sink process(es) {:?} left behind",
            sinks.iter().filter(|&&s| sink_alive(s)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until runs.csv holds `rows` whole rows, waits `pause` more, then SIGKILLs the run (which must still be
/// running) and checks that its sink died with it. Returns the rows in runs.csv after the kill.
fn kill_after(run: &mut Started, csv: &Path, rows: usize, pause: Duration) -> usize {
    wait_for(&format!("row {rows} in {}", csv.display()), LIMIT, POLL, || {
        assert!(run.running(), "the run ended before row {rows}: {}", run.stderr());
        (rows_now(csv) >= rows).then_some(())
    });
    std::thread::sleep(pause);
    assert!(run.running(), "the run ended before the kill: {}", run.stderr());
    let sinks = children(run.pid());
    kill(run.pid(), nix::sys::signal::Signal::SIGKILL);
    let (status, stderr) = run.finish();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{stderr}");
    sinks_gone(&sinks, &format!("SIGKILL after row {rows} + {pause:?}"));
    rows_now(csv)
}

/// (case, repetition) pairs that occur more than once.
fn duplicates(rows: &[Row]) -> Vec<(String, u32)> {
    let mut seen = BTreeSet::new();
    rows.iter()
        .map(|r| (r.case_id.clone(), r.repetition))
        .filter(|k| !seen.insert(k.clone()))
        .collect()
}

/// Checks a finished folder: runs.csv whole (no torn tail), `cases` cases of exactly `repeat` ok rows each,
/// numbered 1..=repeat once each and one per round 1..=repeat, with a pass count that never falls from round to
/// round (it is held across resumes, and only raised when a repetition came out short); summary.json finished,
/// its ok counts those of runs.csv. Returns the rows.
fn finished_with(out: &Path, cases: usize, repeat: u32) -> Vec<Row> {
    let rows = csv_rows(&out.join("runs.csv"));
    assert_eq!(duplicates(&rows), [], "(case, repetition) written twice");
    let mut by_case: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    rows.iter().for_each(|r| by_case.entry(&r.case_id).or_default().push(r));
    assert_eq!(by_case.len(), cases, "{:?}", by_case.keys());
    for (case, rs) in &by_case {
        assert!(rs.iter().all(|r| r.is_ok()), "{case}: a row not ok: {rs:?}");
        let mut reps: Vec<u32> = rs.iter().map(|r| r.repetition).collect();
        reps.sort();
        assert_eq!(reps, (1..=repeat).collect::<Vec<_>>(), "{case}");
        let mut by_round: Vec<(u32, u32)> = rs.iter().map(|r| (r.round, r.passes)).collect();
        by_round.sort();
        let rounds: Vec<u32> = by_round.iter().map(|r| r.0).collect();
        assert_eq!(rounds, (1..=repeat).collect::<Vec<_>>(), "{case}: one row per round");
        assert!(
            by_round.windows(2).all(|w| w[0].1 <= w[1].1),
            "{case}: the pass count fell across resumes: {by_round:?}"
        );
    }
    let s = summary(out);
    assert_eq!(s["state"], "finished", "{s}");
    let counted: BTreeMap<String, u64> = s["cases"]
        .as_array()
        .expect("summary cases")
        .iter()
        .map(|c| {
            (
                c["case_id"].as_str().unwrap().to_string(),
                c["ok_runs"].as_u64().unwrap(),
            )
        })
        .collect();
    let in_csv: BTreeMap<String, u64> = by_case.iter().map(|(k, v)| (k.to_string(), v.len() as u64)).collect();
    assert_eq!(counted, in_csv, "summary.json's ok counts against runs.csv");
    rows
}

/// stderr without the sink's own lines.
fn lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.starts_with("xferbench sink:")).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Deliverable 1: a hard kill, then --resume.

/// Four SIGKILLs of a 4-case sweep at different moments (right after a row, mid-repetition, in the next case's
/// calibration, near the end), each followed by the same command with --resume, then a resume to completion:
/// each case has exactly --repeat ok rows, none twice, one pass count per case, and summary.json is finished and
/// agrees with runs.csv. Then a larger --repeat adds only the missing repetitions, and a changed plan is refused.
#[test]
fn sigkill_at_four_moments_then_resume_gives_every_case_exactly_repeat_rows() {
    let t = tmp();
    let out = t.path().join("out");
    let csv = out.join("runs.csv");
    let args = sweep(6, "out");
    // (whole rows to wait for, then a pause): 6 rows is the end of case 1, 12 of case 2.
    let moments = [(2, 0), (6, 30), (13, 20), (19, 45)];
    let mut before = 0;
    for (k, &(rows, pause)) in moments.iter().enumerate() {
        let cmd = if k == 0 {
            args.clone()
        } else {
            with(&args, &["--resume"])
        };
        let mut started = Started::start(t.path(), &cmd, &format!("run{k}"));
        let after = kill_after(&mut started, &csv, rows, Duration::from_millis(pause));
        assert!(after >= rows && after < 24, "kill {k}: {after} rows");
        assert!(
            after >= before,
            "kill {k}: rows were lost ({before} before, {after} after)"
        );
        before = after;
        let so_far = record::read(&csv).expect("runs.csv parses after a kill").rows;
        assert_eq!(duplicates(&so_far), [], "after kill {k}");
        // A killed run cannot say it ended: summary.json says running until the next run rewrites it.
        assert_eq!(summary(&out)["state"], "running", "after kill {k}");
        if k == 0 {
            // The folder holds rows: the same command without --resume is refused, saying to add it.
            let (status, stderr) = run(t.path(), &args, "no-resume");
            assert_eq!(status.code(), Some(1), "{stderr}");
            assert_eq!(lines(&stderr).len(), 1, "{stderr}");
            assert!(
                stderr.contains("already holds") && stderr.contains("add --resume"),
                "{stderr}"
            );
        }
    }
    // What a kill while summary.json is being replaced leaves (PID 2^22 + 1 exists nowhere): the resume removes it.
    std::fs::write(out.join("summary.json.tmp-4194305"), b"{\"run_id\": ").unwrap();
    let (status, stderr) = run(t.path(), &with(&args, &["--resume"]), "last");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let rows = finished_with(&out, 4, 6);
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "temporary files left");
    let runs: BTreeSet<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
    assert!(
        runs.len() >= 4,
        "rows come from the killed runs and the last one: {runs:?}"
    );

    // A larger --repeat adds the missing repetition of each case, nothing else.
    let (status, stderr) = run(t.path(), &with(&sweep(7, "out"), &["--resume"]), "more");
    assert_eq!(status.code(), Some(0), "{stderr}");
    finished_with(&out, 4, 7);

    // Anything else changed is refused with one line naming it, and nothing is written.
    let changed = with(&sweep(7, "out"), &["--resume", "--nodelay"]);
    let (status, stderr) = run(t.path(), &changed, "changed");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(lines(&stderr).len(), 1, "{stderr}");
    assert!(stderr.contains("--nodelay (true here, false there)"), "{stderr}");
    finished_with(&out, 4, 7);
}

/// The first scenario: one case, --repeat 30, SIGKILLed after 12 rows, resumed: exactly 30 rows,
/// repetitions 1..30 once each (it used to end with 42, 1..12 twice).
#[test]
fn one_case_of_30_killed_after_12_rows_resumes_to_exactly_30() {
    let t = tmp();
    let out = t.path().join("out");
    let args = sweep_of("sendfile", "1MiB", "30ms", 30, "out");
    let mut first = Started::start(t.path(), &args, "first");
    let after = kill_after(&mut first, &out.join("runs.csv"), 12, Duration::ZERO);
    assert!((12..=14).contains(&after), "{after} rows at the kill");
    let (status, stderr) = run(t.path(), &with(&args, &["--resume"]), "resume");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let rows = finished_with(&out, 1, 30);
    assert_eq!(rows.len(), 30);
    assert_eq!(summary(&out)["cases"][0]["ok_runs"], 30);
}

/// A broker sweep (two strategies x two consumer counts x two network-thread counts) SIGKILLed twice and resumed:
/// exactly --repeat ok rows per case, one per round, with the broker's dimensions in the case; consumers.csv never
/// holds a consumer of a repetition twice, and holds every consumer of every row the last run wrote.
#[test]
fn a_broker_sweep_killed_and_resumed_keeps_one_row_per_case_and_round() {
    let t = tmp();
    let out = t.path().join("out");
    let csv = out.join("runs.csv");
    let args = run_args(&[
        "--strategies",
        "broker-sendfile,broker-read-send",
        "--consumers",
        "2,3",
        "--network-threads",
        "1,2",
        "--min-time",
        "30ms",
        "--repeat",
        "4",
        "--out",
        "out",
    ]);
    let mut first = Started::start(t.path(), &args, "first");
    kill_after(&mut first, &csv, 5, Duration::ZERO);
    let mut second = Started::start(t.path(), &with(&args, &["--resume"]), "second");
    kill_after(&mut second, &csv, 17, Duration::from_millis(20));
    let (status, stderr) = run(t.path(), &with(&args, &["--resume"]), "last");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let rows = finished_with(&out, 8, 4);
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.case_id.as_str()).collect();
    assert!(
        ids.iter()
            .all(|id| id.contains("/k2-f1048576") || id.contains("/k3-f1048576")),
        "{ids:?}"
    );
    let lines = common::consumer_rows(&out);
    let mut seen = BTreeSet::new();
    for l in &lines {
        let key = (l.run_id.clone(), l.case_id.clone(), l.repetition, l.consumer);
        assert!(seen.insert(key), "consumer line written twice: {l:?}");
    }
    let last_run = summary(&out)["run_id"].as_str().unwrap().to_string();
    assert!(rows.iter().any(|r| r.run_id == last_run), "the last run wrote rows");
    for r in rows.iter().filter(|r| r.run_id == last_run) {
        let mine = lines
            .iter()
            .filter(|l| l.run_id == r.run_id && l.case_id == r.case_id && l.repetition == r.repetition)
            .count();
        assert_eq!(
            mine as u32,
            r.consumers.unwrap(),
            "{} repetition {}",
            r.case_id,
            r.repetition
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Deliverable 2: one writer per result folder.

/// The holder named in a refusal: `... is in use by xferbench run RUN_ID (PID N on HOST, started TIME); ...`.
fn holder_of(line: &str) -> (String, u32, String) {
    let after = line
        .split_once("is in use by xferbench run ")
        .unwrap_or_else(|| panic!("no holder named: {line}"))
        .1;
    let (run_id, rest) = after.split_once(" (PID ").expect("PID named");
    let (pid, rest) = rest.split_once(" on ").expect("host named");
    let started = rest.split_once(", started ").expect("start named").1;
    let started = started.split_once(')').expect("closing parenthesis").0;
    (run_id.into(), pid.parse().expect("a PID"), started.into())
}

/// A second run on a folder that a run holds is refused at once, with one line naming the holder's PID and start
/// time, and writes nothing; the first finishes unharmed. Once the holder is SIGKILLed, its lock (the file is
/// still there) blocks nobody.
#[test]
fn a_second_run_on_a_held_folder_is_refused_at_once_and_a_dead_holder_blocks_nobody() {
    let t = tmp();
    let out = t.path().join("out");
    let csv = out.join("runs.csv");
    let args = sweep(8, "out");
    let mut first = Started::start(t.path(), &args, "first");
    wait_for("the first row", LIMIT, POLL, || (rows_now(&csv) > 0).then_some(()));
    for (k, second) in [args.clone(), with(&args, &["--resume"])].iter().enumerate() {
        let asked = Instant::now();
        let (status, stderr) = run(t.path(), second, &format!("second{k}"));
        let took = asked.elapsed();
        assert_eq!(status.code(), Some(1), "{stderr}");
        let lines = lines(&stderr);
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].starts_with("xferbench: error: 'out' is in use by xferbench run "),
            "{stderr}"
        );
        assert!(
            lines[0].ends_with("wait for it to finish or give --out another folder"),
            "{stderr}"
        );
        let (run_id, pid, started) = holder_of(lines[0]);
        assert_eq!(pid, first.pid(), "{stderr}");
        let started = humantime::parse_rfc3339(&started).expect("an RFC 3339 start time");
        let age = std::time::SystemTime::now().duration_since(started).unwrap_or_default();
        assert!(age < Duration::from_secs(60), "started {age:?} ago");
        let first_rows = record::read(&csv).expect("runs.csv parses").rows;
        assert!(first_rows.iter().all(|r| r.run_id == run_id), "{run_id}");
        // Refused before anything else: no fixture check, sink or calibration, so well under a second.
        assert!(took < Duration::from_secs(1), "refused after {took:?}");
        assert!(
            first.running(),
            "the first run was still going when the second was refused"
        );
    }
    let (status, stderr) = first.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let rows = finished_with(&out, 4, 8);
    let header = std::fs::read_to_string(&csv).unwrap().matches("run_id,").count();
    assert_eq!(header, 1, "one header line");
    assert_eq!(rows.iter().map(|r| &r.run_id).collect::<BTreeSet<_>>().len(), 1);

    // A run that dies holding the folder leaves its lock file behind, naming it; the next run takes it anyway.
    let more = with(&sweep(10, "out"), &["--resume"]);
    let mut killed = Started::start(t.path(), &more, "killed");
    kill_after(&mut killed, &csv, 33, Duration::ZERO);
    let lock = std::fs::read_to_string(out.join(".xferbench.lock")).expect("the lock file stays");
    assert!(lock.contains(&format!("\"pid\":{}", killed.pid())), "{lock}");
    let (status, stderr) = run(t.path(), &more, "after-kill");
    assert_eq!(status.code(), Some(0), "a stale lock blocked the next run: {stderr}");
    finished_with(&out, 4, 10);
}

/// Two runs started at the same moment on one folder: one runs and keeps every row, the other is refused with the
/// holder named and takes nothing of the folder with it (it used to remove the files the winner had just made, and
/// sometimes read the lock file before the winner had written itself into it).
#[test]
fn two_runs_started_at_once_on_one_folder_one_runs_and_keeps_its_rows() {
    let t = tmp();
    let (status, stderr) = run(
        t.path(),
        &["fixture", "--size", "1MiB", "--fixture-dir", "fx"].map(String::from),
        "fixture",
    );
    assert!(status.success(), "{stderr}");
    for round in 0..8 {
        let name = format!("out{round}");
        let args = sweep_of("sendfile", "1MiB", "50ms", 2, &name);
        let mut a = Started::start(t.path(), &args, &format!("{name}a"));
        let mut b = Started::start(t.path(), &args, &format!("{name}b"));
        let (sa, ea) = a.finish();
        let (sb, eb) = b.finish();
        let (winner, loser, refusal) = match (sa.code(), sb.code()) {
            (Some(0), Some(1)) => (&a, &b, eb),
            (Some(1), Some(0)) => (&b, &a, ea),
            _ => panic!("round {round}: exits {sa} and {sb}: one should run, one be refused:\n{ea}\n{eb}"),
        };
        let lines = lines(&refusal);
        assert_eq!(lines.len(), 1, "round {round}, PID {}: {refusal}", loser.pid());
        let (run_id, pid, _) = holder_of(lines[0]);
        assert_eq!(pid, winner.pid(), "round {round}: {refusal}");
        let out = t.path().join(&name);
        let rows = finished_with(&out, 1, 2);
        assert!(rows.iter().all(|r| r.run_id == run_id), "round {round}");
    }
}

/// Two runs started at the same moment without --out get folders (and run ids) of their own under results/.
#[test]
fn runs_started_at_once_without_out_get_their_own_folders() {
    let t = tmp();
    let args = run_args(&[
        "--strategies",
        "sendfile",
        "--chunk",
        "1MiB",
        "--repeat",
        "1",
        "--passes",
        "1",
    ]);
    for round in 0..3 {
        let mut a = Started::start(t.path(), &args, &format!("{round}a"));
        let mut b = Started::start(t.path(), &args, &format!("{round}b"));
        for s in [&mut a, &mut b] {
            let (status, stderr) = s.finish();
            assert!(status.success(), "round {round}: {stderr}");
        }
    }
    let mut folders: Vec<String> = std::fs::read_dir(t.path().join("results"))
        .expect("results/")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    assert_eq!(folders.len(), 6, "{folders:?}");
    for f in &folders {
        let rows = csv_rows(&t.path().join("results").join(f).join("runs.csv"));
        assert_eq!(rows.len(), 1, "{f}");
        assert_eq!(&rows[0].run_id, f, "the folder is named by its run id");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Deliverable 3: a torn last row, and a bad row in the middle.

/// A finished folder `whole` of two cases x 3 repetitions (one pass each: quick), and an intact copy `intact`.
fn finished_folder(dir: &Path) -> Vec<String> {
    let args = run_args(&[
        "--cache",
        "warm",
        "--strategies",
        "sendfile,read-send",
        "--chunk",
        "1MiB",
    ]);
    let args = with(&args, &["--passes", "1", "--repeat", "3", "--out", "whole"]);
    let (status, stderr) = run(dir, &args, "make");
    assert!(status.success(), "{stderr}");
    finished_with(&dir.join("whole"), 2, 3);
    copy_dir(&dir.join("whole"), &dir.join("intact"));
    args
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The last row of a finished runs.csv as a crash while writing it leaves it: its first 40 bytes, no newline.
/// Returns (the whole rows before it, the torn bytes).
fn tear(csv: &Path, intact: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let body = &intact[..intact.len() - 1];
    let last = body.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let (whole, torn) = (intact[..last].to_vec(), intact[last..last + 40].to_vec());
    std::fs::write(csv, [whole.as_slice(), &torn].concat()).unwrap();
    (whole, torn)
}

/// A runs.csv whose last row was torn: plot, compare, article and run --resume each keep every whole row, set the
/// torn bytes aside in runs.csv.torn (appended to, never replaced) and say so in one line; the resume then ends
/// with exactly --repeat rows per case. While a run holds the folder, a reader leaves the torn bytes where they are.
#[test]
fn a_torn_last_row_is_set_aside_by_every_reader_and_the_whole_rows_kept() {
    let t = tmp();
    let args = finished_folder(t.path());
    let dir = t.path().join("whole");
    let (csv, aside) = (dir.join("runs.csv"), dir.join("runs.csv.torn"));
    let intact = std::fs::read(&csv).unwrap();
    let resume = {
        let mut a = args.clone();
        a.push("--resume".into());
        a
    };
    let readers: [(&str, Vec<String>); 4] = [
        ("plot", vec!["plot".into(), "whole".into()]),
        (
            "compare",
            ["compare", "intact", "whole", "--out", "cmp"]
                .map(String::from)
                .to_vec(),
        ),
        ("article", vec!["article".into(), "whole".into()]),
        ("run --resume", resume),
    ];
    let mut kept = Vec::new();
    for (name, cmd) in &readers {
        let (whole, torn) = tear(&csv, &intact);
        let (status, stderr) = run(t.path(), cmd, &name.replace(' ', "-"));
        assert_eq!(status.code(), Some(0), "{name}: {stderr}");
        let lines = lines(&stderr);
        assert_eq!(lines.len(), 1, "{name}: one line: {stderr}");
        assert!(
            lines[0].contains("ended in a row cut short (40 bytes")
                && lines[0].contains("set aside in 'whole/runs.csv.torn'; 5 whole rows kept"),
            "{name}: {stderr}"
        );
        kept.extend_from_slice(&torn);
        assert_eq!(std::fs::read(&aside).unwrap(), kept, "{name}: the torn bytes, appended");
        if *name != "run --resume" {
            assert_eq!(
                std::fs::read(&csv).unwrap(),
                whole,
                "{name}: runs.csv is its whole rows"
            );
        }
    }
    // The resume found the last case one repetition short and added exactly that one.
    let rows = finished_with(&dir, 2, 3);
    let last = rows.last().unwrap();
    assert_eq!(last.repetition, 3);
    assert_ne!(last.run_id, rows[0].run_id, "written by the resume");

    // While a run holds the folder, what looks torn may be a row being written: left where it is, and said so.
    let (whole, _) = tear(&csv, &std::fs::read(&csv).unwrap());
    let torn_now = std::fs::read(&csv).unwrap();
    let held = xferbench::lock::FolderLock::take(&dir, &xferbench::lock::Holder::me("run held-by-the-test"))
        .expect("the test takes the folder");
    let (status, stderr) = run(t.path(), &readers[0].1, "plot-held");
    drop(held);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(lines(&stderr).len(), 1, "{stderr}");
    assert!(
        stderr.contains("is not whole") && stderr.contains("in use by xferbench run held-by-the-test"),
        "{stderr}"
    );
    assert!(stderr.contains("left out, 5 whole rows read"), "{stderr}");
    assert_eq!(std::fs::read(&csv).unwrap(), torn_now, "nothing cut while held");
    assert_eq!(std::fs::read(&aside).unwrap(), kept, "nothing set aside while held");
    assert!(torn_now.starts_with(&whole));
}

/// A bad row in the middle of runs.csv (a status that is not one) is no crash's doing: every reader stops with one
/// line naming its line, exit 1, and leaves the file as it was.
#[test]
fn a_bad_row_in_the_middle_is_an_error_naming_its_line_for_every_reader() {
    let t = tmp();
    let args = finished_folder(t.path());
    let dir = t.path().join("whole");
    let csv = dir.join("runs.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines_of: Vec<String> = text.lines().map(String::from).collect();
    // Line 3 of the file: the header, row 1, then this one.
    assert!(lines_of[2].contains(",ok,"), "{}", lines_of[2]);
    lines_of[2] = lines_of[2].replacen(",ok,", ",okay,", 1);
    let bad = lines_of.join("\n") + "\n";
    std::fs::write(&csv, &bad).unwrap();
    let readers: [Vec<String>; 4] = [
        vec!["plot".into(), "whole".into()],
        ["compare", "intact", "whole", "--out", "cmp"]
            .map(String::from)
            .to_vec(),
        vec!["article".into(), "whole".into()],
        args.iter().cloned().chain(["--resume".to_string()]).collect(),
    ];
    for (k, cmd) in readers.iter().enumerate() {
        let (status, stderr) = run(t.path(), cmd, &format!("reader{k}"));
        assert_eq!(status.code(), Some(1), "{}: {stderr}", cmd[0]);
        let lines = lines(&stderr);
        assert_eq!(lines.len(), 1, "{}: {stderr}", cmd[0]);
        assert!(
            lines[0].starts_with("xferbench: error: 'whole/runs.csv': row at line 3 does not parse")
                && lines[0].contains("unknown status 'okay'"),
            "{}: {stderr}",
            cmd[0]
        );
        assert_eq!(std::fs::read_to_string(&csv).unwrap(), bad, "{}", cmd[0]);
        assert!(!dir.join("runs.csv.torn").exists(), "{}", cmd[0]);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Deliverable 4: a full disk under --out.

/// The disk under --out fills up during case 2 of 4: the run stops at once with one line, exit 1; every row
/// written stays whole (no torn tail, nothing of the failed row left), no row of a later case is written, and the
/// sink is gone. Once there is room again, --resume finishes the plan with exactly --repeat rows per case.
/// What fails first, by what has space reserved ahead (fallocate, KEEP_SIZE) when the disk fills.
#[derive(Clone, Copy, PartialEq)]
enum Fails {
    /// Nothing reserved: a row of runs.csv or its lines of series.csv, whichever needs a new page first.
    Row,
    /// runs.csv reserved: the lines of series.csv a row brings; its row in runs.csv is taken back.
    SideLines,
    /// runs.csv and series.csv reserved, a short case: the rewrite of summary.json at the end of case 2.
    Summary,
}

fn full_disk(fails: Fails) {
    let t = tmp();
    let Some(disk) = Tmpfs::mount(&t.path().join("disk"), "1m") else {
        return;
    };
    // Rows are ~500 bytes: a case of 16 is longer than what fits in runs.csv's last page (at most 8 rows), and a
    // repetition's lines of series.csv longer still.
    let repeat = if fails == Fails::Summary { 5 } else { 16 };
    // Case by case (rows of one case, then the next), so that the disk fills in the middle of case 2.
    let mut args = sweep(repeat, "disk/out");
    args.extend(["--order", "grouped"].map(String::from));
    if fails == Fails::SideLines {
        // A repetition's lines of series.csv then need more than a page (~50 lines of ~100 bytes).
        args.extend(["--interval", "1ms"].map(String::from));
    }
    let out = t.path().join("disk/out");
    let csv = out.join("runs.csv");
    let mut started = Started::start(t.path(), &args, "full");
    let at = repeat as usize + 2;
    wait_for("rows of case 2", LIMIT, POLL, || (rows_now(&csv) >= at).then_some(()));
    let sinks = children(started.pid());
    let reserved: &[&str] = match fails {
        Fails::Row => &[],
        Fails::SideLines => &["runs.csv"],
        Fails::Summary => &["runs.csv", "series.csv"],
    };
    for name in reserved {
        let f = std::fs::OpenOptions::new().append(true).open(out.join(name)).unwrap();
        // SAFETY: a plain system call on a file descriptor this test owns.
        let r = unsafe {
            libc::fallocate(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                libc::FALLOC_FL_KEEP_SIZE,
                0,
                1 << 18,
            )
        };
        assert_eq!(r, 0, "fallocate {name}: {}", std::io::Error::last_os_error());
    }
    let filler = disk.fill();
    let filled = Instant::now();
    let rows_at_fill = rows_now(&csv);
    assert!(
        started.running(),
        "the run ended before the disk was full: {}",
        started.stderr()
    );
    let (status, stderr) = started.finish();
    let took = filled.elapsed();
    eprintln!("disk full at {rows_at_fill} rows; the run stopped {took:?} later");
    assert_eq!(status.code(), Some(1), "{stderr}");
    let lines = lines(&stderr);
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    let row = "xferbench: error: cannot write a row to 'disk/out/runs.csv'; every row before it is kept: No space \
               left on device";
    let side = "xferbench: error: cannot write a row to 'disk/out/series.csv'; every row before it is kept: No space \
                left on device";
    let what: &[&str] = match fails {
        Fails::Row => &[row, side],
        Fails::SideLines => &[side],
        Fails::Summary => &["xferbench: error: cannot write 'disk/out/summary.json': No space left on device"],
    };
    assert!(what.iter().any(|w| lines[0].starts_with(w)), "{stderr}");
    sinks_gone(&sinks, "a full disk");
    let file = record::read(&csv).expect("runs.csv reads");
    let torn = file.torn.as_ref().map(|t| t.bytes.len());
    assert_eq!(torn, None, "bytes of a torn tail on a full disk");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.ends_with('\n'), "nothing of the failed row stays");
    assert_eq!(
        series_repetitions(&out),
        file.rows
            .iter()
            .map(|r| (r.case_id.clone(), r.round, r.repetition))
            .collect::<BTreeSet<_>>(),
        "series.csv has lines of exactly the repetitions runs.csv has rows of"
    );
    let cases: BTreeSet<&str> = file.rows.iter().map(|r| r.case_id.as_str()).collect();
    assert_eq!(cases.len(), 2, "stopped in case 2, not at its end or later: {cases:?}");
    if fails == Fails::Summary {
        assert_eq!(
            file.rows.len(),
            2 * repeat as usize,
            "case 2 ended, then summary.json failed"
        );
    } else {
        assert!(
            file.rows.len() < 2 * repeat as usize,
            "stopped mid-case: {} rows",
            file.rows.len()
        );
    }
    // summary.json is whole: the one before (it could not be replaced), or, where taking a row back freed a page
    // (the space reserved ahead goes with it), the one saying the run failed; no temporary file is left.
    let s = summary(&out);
    if fails == Fails::Summary {
        assert_eq!(s["state"], "running", "{s}");
    } else {
        assert!(s["state"] == "running" || s["state"] == "failed", "{s}");
    }
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");

    std::fs::remove_file(filler).unwrap();
    let (status, stderr) = run(t.path(), &with(&args, &["--resume"]), "after");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let rows = finished_with(&out, 4, repeat);
    assert!(
        rows[..file.rows.len()] == file.rows[..],
        "the rows from before the full disk are kept as they were"
    );
    assert_eq!(
        series_repetitions(&out),
        rows.iter()
            .map(|r| (r.case_id.clone(), r.round, r.repetition))
            .collect::<BTreeSet<_>>(),
        "after the resume, series.csv has lines of every repetition"
    );
}

/// The (case, round, repetition) of every line of series.csv, which must end with a whole line.
fn series_repetitions(out: &Path) -> BTreeSet<(String, u32, u32)> {
    let text = std::fs::read_to_string(out.join("series.csv")).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "series.csv ends with a whole line"
    );
    let mut r = csv::Reader::from_reader(text.as_bytes());
    r.deserialize::<xferbench::record::SeriesRow>()
        .map(|l| {
            let l = l.expect("a line of series.csv parses");
            (l.case_id, l.round, l.repetition)
        })
        .collect()
}

#[test]
fn a_full_disk_fails_a_row_and_stops_the_run_at_once() {
    full_disk(Fails::Row);
}

#[test]
fn a_full_disk_fails_a_rows_series_takes_the_row_back_and_stops_the_run_at_once() {
    full_disk(Fails::SideLines);
}

#[test]
fn a_full_disk_fails_summary_json_and_stops_the_run_at_once() {
    full_disk(Fails::Summary);
}

// ---------------------------------------------------------------------------------------------------------------
// The long version, short.

/// scripts/crash-resume.sh on a tiny plan: three SIGKILLs at seeded moments, each resumed, then finished; its own
/// checks pass and its summary line says so, and the folder it leaves passes these tests' checks too.
#[test]
fn crash_resume_script_survives_three_kills_of_a_tiny_plan() {
    let t = tmp();
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/crash-resume.sh"))
        .current_dir(t.path())
        .env("XFERBENCH", BIN)
        .env("TMPDIR", t.path())
        .envs([("KILLS", "3"), ("SEED", "7"), ("SIZE", "1MiB"), ("CASES", "2")])
        .envs([
            ("REPEAT", "4"),
            ("MIN_TIME", "30ms"),
            ("OUT", "out"),
            ("FIXTURES_DIR", "fx"),
        ]);
    let out = common::run_limited(cmd, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("crash-resume: kills "), "{stdout}");
    assert!(
        last.contains("rows 8 (2 cases x 4), duplicates 0,") && last.contains("sinks left 0") && last.ends_with(": ok"),
        "{stdout}"
    );
    assert!(!stdout.contains("VIOLATION"), "{stdout}");
    finished_with(&t.path().join("out"), 2, 4);
}
