//! Faults and bad input, run as a user meets them: every bad flag gets one clear line and the documented exit
//! status (never a panic, never a hang), and a dying sink, a signal, a full disk, a changing file or an
//! unwritable result folder each end the way docs/faults.md says, with nothing lost and nothing left behind.
//!
//! Every test works in its own temporary folder (fixtures included, via --fixture-dir) with files of a few MiB,
//! and every command runs under a timeout. The slow sink is `--rx-buffer 1`: one byte per recv call, so a few
//! MiB take seconds and a kill or a signal lands mid-transfer.

mod common;

use assert_cmd::Command;
use common::{BIN, LIMIT, Tmpfs, children, kill, out_dir, read_rows, rows, summary, tmp, wait_for, xferbench};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use xferbench::model::Status;

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(20);

/// What a `run` here is unless it says otherwise: one counted repetition of one pass, no warm-up, 1 MiB chunks,
/// results in `out`.
const ONE_REPETITION: [(&str, &str); 5] = [
    ("--repeat", "1"),
    ("--warmup", "0"),
    ("--passes", "1"),
    ("--chunk", "1MiB"),
    ("--out", "out"),
];

/// Each of `defaults` that `args` does not name, then `args`.
fn with_defaults<'a>(defaults: &[(&'a str, &'a str)], args: &[&'a str]) -> Vec<&'a str> {
    let mut all = Vec::new();
    for &(flag, value) in defaults {
        if !args.contains(&flag) {
            all.extend([flag, value]);
        }
    }
    all.extend_from_slice(args);
    all
}

/// `run -q` with a small generated fixture in `dir` (4 MiB in `fx`), ONE_REPETITION of sendfile, results in
/// `dir/out`; `args` are added, and replace the default of any flag they name.
fn run_in(dir: &Path, args: &[&str]) -> Command {
    let fixture = [
        ("--fixture-dir", "fx"),
        ("--size", "4MiB"),
        ("--strategies", "sendfile"),
    ];
    let mut cmd = xferbench();
    cmd.current_dir(dir)
        .args(["run", "-q"])
        .args(with_defaults(&[&fixture[..], &ONE_REPETITION].concat(), args));
    cmd
}

/// `run` started in `dir` against a slow spawned sink (one byte per recv, `--rx-buffer 1`), ONE_REPETITION; `args`
/// are added, and replace the default of any flag they name.
fn slow_run(dir: &Path, args: &[&str]) -> Background {
    let slow = [("--rx-buffer", "1")];
    let flags = with_defaults(&[&ONE_REPETITION[..], &slow].concat(), args);
    Background::start(dir, &[&["run"][..], &flags].concat())
}

/// Runs `cmd`, checks its exit status and that stderr is one clear line naming `needle`; returns that line.
fn refused(mut cmd: impl std::borrow::BorrowMut<Command>, status: i32, needle: &str) -> String {
    let out = cmd.borrow_mut().output().expect("command ran");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(status), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("xferbench sink:")).collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("xferbench: error: "), "{stderr}");
    assert!(lines[0].contains(needle), "'{needle}' not in: {stderr}");
    lines[0].to_string()
}

/// Every entry under `dir`, relative, sorted (to show what a refused command left).
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap_or(&p).display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Processes (other than zombies) whose command line mentions `needle`, or whose parent is `parent`.
fn processes_of(needle: &str, parent: u32) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // stat: "pid (comm) state ppid ...": the fields after the last ')'.
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let mut f = after.split_whitespace();
        let (state, ppid) = (f.next().unwrap_or(""), f.next().and_then(|p| p.parse::<u32>().ok()));
        if state != "Z" && pid != std::process::id() && (cmdline.contains(needle) || ppid == Some(parent)) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// Threads of `pid`: the sink has one per connection beside its accept loop.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A `run` started in the background; killed and reaped when dropped, so a failing test leaves no process.
struct Background(Child);

impl Background {
    fn start(dir: &Path, args: &[&str]) -> Background {
        let child = std::process::Command::new(BIN)
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run started");
        Background(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// The spawned sink: the run's child once it is serving a connection.
    fn sink_with_connection(&self, not: Option<u32>) -> u32 {
        wait_for("a sink serving a connection", LIMIT, POLL, || {
            children(self.pid())
                .into_iter()
                .find(|&c| Some(c) != not && threads(c) > 1)
        })
    }

    /// Waits for the exit (up to LIMIT); returns the status code and stderr.
    fn finish(&mut self) -> (Option<i32>, String) {
        let status = wait_for("the run to exit", LIMIT, POLL, || self.0.try_wait().ok().flatten());
        let mut stderr = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        (status.code(), stderr)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input: one line, exit 2 for what the user must fix, 1 for what went wrong at run time.

#[test]
fn a_missing_file_is_a_usage_error() {
    let t = tmp();
    refused(
        xferbench().current_dir(t.path()).args(["run", "--file", "nope.bin"]),
        2,
        "--file 'nope.bin': no such file",
    );
    assert!(listing(t.path()).is_empty(), "{:?}", listing(t.path()));
}

#[test]
fn a_directory_a_fifo_and_an_empty_file_are_refused_as_file() {
    let t = tmp();
    std::fs::create_dir(t.path().join("dir")).unwrap();
    nix::unistd::mkfifo(&t.path().join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::fs::write(t.path().join("empty"), b"").unwrap();
    for (name, why) in [
        ("dir", "is a directory, not a regular file"),
        // Opening a FIFO would block until a writer came: the timeout on the command proves it does not.
        ("fifo", "is a FIFO (named pipe), not a regular file"),
        ("empty", "the file is empty"),
    ] {
        refused(
            xferbench()
                .current_dir(t.path())
                .args(["run", "--file", name, "--out", "out"]),
            2,
            why,
        );
    }
    assert!(!t.path().join("out").exists(), "a refused run left its result folder");
}

#[test]
fn thread_counts_out_of_range_are_refused() {
    let t = tmp();
    for n in ["0", "100000", "-1", "many"] {
        refused(
            run_in(t.path(), &["--strategies", "parallel-sendfile", "--threads", n]),
            2,
            "'--threads'",
        );
    }
    let line = refused(run_in(t.path(), &["--threads", "100000"]), 2, "between 1 and 1024");
    assert!(line.contains("100000"), "{line}");
}

#[test]
fn chunk_zero_is_refused_and_a_chunk_beyond_the_file_sends_it_in_one_call() {
    let t = tmp();
    refused(
        run_in(t.path(), &["--chunk", "0"]),
        2,
        "must be between 1 byte and 2 GiB",
    );
    assert!(!t.path().join("fx").exists(), "a refused run made a fixture");
    // 64 MiB chunks of a 4 MiB file: allowed; one sendfile call carries the whole file.
    run_in(t.path(), &["--chunk", "64MiB"]).assert().success();
    let rows = rows(t.path());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, Status::Ok, "{}", rows[0].error);
    assert_eq!(rows[0].bytes_received, Some(4 << 20));
    assert_eq!(
        rows[0].syscalls, 1,
        "sendfile of a whole 4 MiB file to loopback took more than one call"
    );
}

#[test]
fn sizes_that_do_not_parse_or_are_negative_are_refused() {
    let t = tmp();
    refused(
        run_in(t.path(), &["--size", "lots"]),
        2,
        "invalid value 'lots' for '--size': not a size",
    );
    // Typed the way people type it (no '='): taken as the value, not as an unknown flag '-5'.
    refused(run_in(t.path(), &["--size", "-5MB"]), 2, "a size cannot be negative");
    refused(run_in(t.path(), &["--chunk", "-1MiB"]), 2, "'--chunk'");
    refused(
        xferbench().args(["fixture", "--size", "-1", "--path", "x.bin"]),
        2,
        "negative",
    );
    assert!(listing(t.path()).is_empty(), "{:?}", listing(t.path()));
}

#[test]
fn a_size_beyond_the_free_disk_is_refused_before_writing() {
    let t = tmp();
    let line = refused(run_in(t.path(), &["--size", "100TB"]), 1, "not enough free space");
    assert!(line.contains("smaller --size"), "{line}");
    // Neither the fixture folder nor the result folder (nor an empty runs.csv) is left behind.
    assert!(listing(t.path()).is_empty(), "{:?}", listing(t.path()));
}

#[test]
fn unknown_strategy_cache_and_layout_names_are_refused() {
    let t = tmp();
    refused(run_in(t.path(), &["--strategies", "sendfil"]), 2, "known: read-send");
    refused(run_in(t.path(), &["--cache", "hot"]), 2, "known: warm, cold");
    refused(
        run_in(t.path(), &["--layout", "zigzag"]),
        2,
        "known: striped, contiguous",
    );
    refused(run_in(t.path(), &["--rx-mode", "magic"]), 2, "known: copy");
    refused(
        run_in(t.path(), &["--verify", "--verify-on", "gpu"]),
        2,
        "known: auto, receiver, thread",
    );
    refused(run_in(t.path(), &["--verify-on", "thread"]), 2, "it needs --verify");
    assert!(listing(t.path()).is_empty(), "{:?}", listing(t.path()));
}

#[test]
fn connect_to_a_refused_port_an_unknown_host_or_a_bad_port() {
    let t = tmp();
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("127.0.0.1:{port}");
    refused(run_in(t.path(), &["--connect", &target]), 1, "Connection refused");
    refused(
        run_in(t.path(), &["--connect", "no-such-host.invalid:7000"]),
        1,
        "cannot resolve 'no-such-host.invalid:7000'",
    );
    refused(
        run_in(t.path(), &["--connect", "127.0.0.1:99999"]),
        2,
        "the port must be a number from 1 to 65535",
    );
    refused(run_in(t.path(), &["--connect", "localhost"]), 2, "expected HOST:PORT");
    // Nothing was recorded, so no result folder stays (the fixture does: it is reused by the next run).
    assert!(!t.path().join("out").exists(), "{:?}", listing(t.path()));
}

#[test]
fn sink_on_a_port_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let line = refused(
        xferbench().args(["sink", "--listen", &addr]),
        1,
        "Address already in use",
    );
    assert!(
        line.contains(&addr) && line.contains("another sink already running?"),
        "{line}"
    );
    refused(
        xferbench().args(["sink", "--listen", "not an address"]),
        2,
        "'--listen'",
    );
}

#[test]
fn conflicting_options_get_clap_errors_that_name_both() {
    // What clap refuses is one line like every other error, naming both options, exit 2.
    let line = refused(
        xferbench().args(["run", "--connect", "127.0.0.1:9", "--raw", "--verify"]),
        2,
        "--raw",
    );
    assert!(line.contains("--verify"), "{line}");
    let line = refused(
        xferbench().args(["fixture", "--path", "f.bin", "--fixture-dir", "fx"]),
        2,
        "--path",
    );
    assert!(line.contains("--fixture-dir"), "{line}");
    // clap's tip, when it has one, stays on that line.
    refused(
        xferbench().args(["run", "--siz", "1GB"]),
        2,
        "similar argument exists: '--size'",
    );
    // And the conflicts that config finds are one line of ours.
    let t = tmp();
    std::fs::write(t.path().join("f.bin"), [1u8; 4096]).unwrap();
    refused(
        xferbench()
            .current_dir(t.path())
            .args(["run", "--file", "f.bin", "--verify"]),
        2,
        "--verify needs a generated fixture",
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Faults during a run.

/// Two cases of a 16 MiB fixture against the slow sink, each many seconds long unless cut short, then `extra`.
fn two_slow_cases(dir: &Path, extra: &[&str]) -> Background {
    let args = [
        "--fixture-dir",
        "fx",
        "--size",
        "16MiB",
        "--timeout",
        "100s",
        "--strategies",
        "sendfile,read-send",
    ];
    slow_run(dir, &[&args[..], extra].concat())
}

/// The sink killed mid-transfer, twice: each case fails at once (not at its timeout) with the failure named,
/// the sink is restarted for the next case, and the run exits 1 saying how many cases failed.
#[test]
fn a_sink_killed_mid_case_fails_that_case_and_the_run_goes_on() {
    let t = tmp();
    let mut run = two_slow_cases(t.path(), &[]);
    let first = run.sink_with_connection(None);
    std::thread::sleep(Duration::from_millis(300));
    kill(first, nix::sys::signal::Signal::SIGKILL);
    let second = run.sink_with_connection(Some(first));
    std::thread::sleep(Duration::from_millis(300));
    kill(second, nix::sys::signal::Signal::SIGKILL);
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("2 of 2 case(s) failed"), "{stderr}");
    assert!(
        stderr.contains("the sink process had exited; starting a new one"),
        "{stderr}"
    );
    let rows = rows(t.path());
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        assert!(!r.is_ok());
        assert!(
            ["connection-reset", "broken-pipe", "no-report", "short-transfer"].contains(&r.status.to_string().as_str()),
            "status {} ({})",
            r.status,
            r.error
        );
        // The bytes the socket took before the sink died: some, not all.
        assert!(r.bytes_sent > 0 && r.bytes_sent < 16 << 20, "{r:?}");
        assert!(r.error.contains("bytes sent"), "{}", r.error);
    }
    assert_eq!(summary(&out_dir(t.path()))["state"], "finished");
}

#[test]
fn fail_fast_stops_at_the_first_failed_case() {
    let t = tmp();
    let mut run = two_slow_cases(t.path(), &["--fail-fast"]);
    let sink = run.sink_with_connection(None);
    std::thread::sleep(Duration::from_millis(300));
    kill(sink, nix::sys::signal::Signal::SIGKILL);
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("1 of 1 case(s) failed (1 more not run)"), "{stderr}");
    let rows = rows(t.path());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(!rows[0].is_ok(), "{:?}", rows[0]);
}

/// SIGINT or SIGTERM mid-run: stops within seconds, finished rows kept and parseable, the row in flight dropped
/// whole, summary.json says interrupted, exit 130, and no process of the run is left.
/// `passes` and `cache`: SIGINT lands mid-pass in cold repetitions of two passes (each pass evicted before it,
/// the sink noticing each pass), SIGTERM in warm repetitions of one.
fn stopped_by(sig: nix::sys::signal::Signal, passes: &str, cache: &str) {
    let t = tmp();
    // Many one-MiB repetitions against the slow sink: a run of minutes, so the signal lands mid-run.
    let mut run = slow_run(
        t.path(),
        &[
            "--fixture-dir",
            "fx",
            "--size",
            "1MiB",
            "--repeat",
            "100",
            "--cache",
            cache,
            "--passes",
            passes,
            "--chunk",
            "256KiB",
            "--strategies",
            "sendfile",
        ],
    );
    let csv = t.path().join("out/runs.csv");
    // Wait for one finished row, then for the next repetition's connection.
    wait_for("a first row", LIMIT, POLL, || {
        read_rows(&csv).ok().filter(|r| !r.is_empty()).map(|_| ())
    });
    let sink = run.sink_with_connection(None);
    let pid = run.pid();
    let signalled = Instant::now();
    kill(pid, sig);
    let (code, stderr) = run.finish();
    let took = signalled.elapsed();
    assert_eq!(code, Some(130), "{stderr}");
    // A hang bound, not a speed claim: the stop flag is read every 0.5 s while sending and 0.2 s while waiting.
    eprintln!("stopped {took:?} after {sig}");
    assert!(took < Duration::from_secs(5), "took {took:?} to stop");
    let rows = read_rows(&csv).expect("runs.csv parses");
    assert!(!rows.is_empty() && rows.len() < 100, "{} rows", rows.len());
    assert!(rows.iter().all(|r| r.is_ok()), "a cut-short row was written: {rows:?}");
    let passes: u32 = passes.parse().unwrap();
    assert!(
        rows.iter()
            .all(|r| r.passes == passes && r.bytes_received == Some(u64::from(passes) << 20)),
        "every kept row has every pass: {rows:?}"
    );
    assert_eq!(summary(&out_dir(t.path()))["state"], "interrupted");
    // The sink child went with the run, and nothing else of it remains.
    let dir = t.path().display().to_string();
    wait_for("the sink to be gone", LIMIT, POLL, || {
        (!Path::new(&format!("/proc/{sink}")).exists() || processes_of(&dir, pid).is_empty()).then_some(())
    });
    assert!(processes_of(&dir, pid).is_empty(), "{:?}", processes_of(&dir, pid));
    assert!(
        processes_of("xferbench sink", pid)
            .iter()
            .all(|p| !p.contains(&sink.to_string())),
        "sink {sink} survived"
    );
    assert!(
        !listing(t.path()).iter().any(|f| f.contains(".tmp-")),
        "{:?}",
        listing(t.path())
    );
}

#[test]
fn sigint_mid_run_stops_cleanly() {
    stopped_by(nix::sys::signal::Signal::SIGINT, "2", "cold");
}

#[test]
fn sigterm_mid_run_stops_cleanly() {
    stopped_by(nix::sys::signal::Signal::SIGTERM, "1", "warm");
}

/// SIGINT while the fixture is being made: exit 130, and neither a half-written file nor a sidecar is left.
#[test]
fn sigint_while_making_the_fixture_leaves_nothing() {
    let t = tmp();
    // Large enough to take a while to write (it is never finished), well inside the free space of a test box.
    let mut run = Background::start(t.path(), &["fixture", "--size", "2GiB", "--path", "fx/big.bin"]);
    wait_for("the temporary fixture file", LIMIT, POLL, || {
        listing(t.path())
            .iter()
            .any(|f| f.contains("big.bin.tmp-"))
            .then_some(())
    });
    kill(run.pid(), nix::sys::signal::Signal::SIGINT);
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted while making the test file"), "{stderr}");
    assert_eq!(listing(&t.path().join("fx")), Vec::<String>::new());
}

/// A temporary file left by a killed maker (SIGKILL cannot be caught) is removed by the next one.
#[test]
fn an_orphaned_temporary_fixture_is_removed_when_the_fixture_is_made() {
    let t = tmp();
    std::fs::create_dir(t.path().join("fx")).unwrap();
    // No process has pid 2^22 + 1 (above the kernel's pid_max limit).
    std::fs::write(t.path().join("fx/f.bin.tmp-4194305"), b"half").unwrap();
    xferbench()
        .current_dir(t.path())
        .args(["fixture", "--size", "1MiB", "--path", "fx/f.bin"])
        .assert()
        .success();
    assert_eq!(listing(&t.path().join("fx")), vec!["f.bin", "f.bin.meta.json"]);
}

/// A disk that cannot hold the fixture: refused before a byte is written, with nothing left on it.
#[test]
fn a_full_disk_refuses_the_fixture_and_leaves_nothing() {
    let t = tmp();
    let Some(disk) = Tmpfs::mount(&t.path().join("small"), "8m") else {
        // Not root or no mount namespace rights (the reason is printed): a_size_beyond_the_free_disk_is_refused_
        // before_writing covers the same check on the real disk.
        return;
    };
    let line = refused(
        run_in(t.path(), &["--fixture-dir", "small/fx"]),
        1,
        "not enough free space in 'small'",
    );
    assert!(line.contains("4 MiB fixture"), "{line}");
    assert_eq!(listing(&disk.0), Vec::<String>::new());
    assert!(!t.path().join("out").exists());
}

/// An I/O error while writing the fixture (here EFBIG from a file-size limit, as a failing disk gives EIO):
/// a clear error, exit 1, no half-written file and no sidecar.
#[test]
fn an_io_error_while_making_the_fixture_leaves_no_half_file() {
    use std::os::unix::process::CommandExt;
    let t = tmp();
    let mut cmd = std::process::Command::new(BIN);
    cmd.current_dir(t.path())
        .args(["fixture", "--size", "16MiB", "--path", "fx/f.bin"]);
    // SAFETY: only async-signal-safe calls between fork and exec. SIGXFSZ ignored so that a write past the limit
    // fails with EFBIG instead of killing the process; the ignored disposition survives exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = Command::from_std(cmd).timeout(LIMIT).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot write 'fx/f.bin.tmp-") && stderr.contains("File too large"),
        "{stderr}"
    );
    assert_eq!(listing(&t.path().join("fx")), Vec::<String>::new());
}

/// A fixture whose size or sidecar does not match is remade, never sent as it is.
#[test]
fn a_fixture_that_does_not_match_its_sidecar_is_remade() {
    let t = tmp();
    let file = t.path().join("fx/xferbench-4194304-seed1.bin");
    run_in(t.path(), &[]).assert().success();
    let check = |what: &str| {
        let out = run_in(t.path(), &["--verify", "--out", what]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{what}: {stderr}");
        assert!(!stderr.contains("reusing"), "{what}: reused a stale fixture");
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 4 << 20, "{what}");
        let last = read_rows(&t.path().join(what).join("runs.csv")).unwrap().pop().unwrap();
        assert!(last.is_ok() && last.verified, "{what}: {last:?}");
    };
    // Cut short behind the sidecar's back.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    check("truncated file");
    // Right size, sidecar of another seed.
    let side = t.path().join("fx/xferbench-4194304-seed1.bin.meta.json");
    let text = std::fs::read_to_string(&side)
        .unwrap()
        .replace("\"seed\": 1", "\"seed\": 2");
    std::fs::write(&side, text).unwrap();
    check("sidecar of another seed");
    // Sidecar gone.
    std::fs::remove_file(&side).unwrap();
    check("no sidecar");
}

/// `fixture --check` reads the file back: a byte changed behind the sidecar's back is named with its offset, exit
/// 1; an intact file passes.
#[test]
fn fixture_check_finds_a_changed_byte() {
    let t = tmp();
    let check = || {
        let mut cmd = xferbench();
        cmd.current_dir(t.path())
            .args(["fixture", "--path", "f.bin", "--check"]);
        cmd
    };
    // Checking makes nothing: a missing file is an error.
    refused(check(), 2, "make it first, without --check");
    assert!(listing(t.path()).is_empty(), "{:?}", listing(t.path()));
    xferbench()
        .current_dir(t.path())
        .args(["fixture", "--size", "3MiB", "--path", "f.bin"])
        .assert()
        .success();
    // Size and seed come from the sidecar when not given.
    let out = check().output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("every byte matches"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(t.path().join("f.bin"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, b"x", 2_000_003).unwrap();
    let out = check().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("xferbench: error: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("at offset 2000003"), "{stderr}");
    assert!(errors[0].contains("delete it"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // A seed the sidecar contradicts is named as the likelier mistake.
    let line = refused(check().args(["--seed", "2"]), 1, "at offset 0");
    assert!(line.contains("made with seed 1"), "{line}");
}

/// `fixture --path` replaces only what xferbench made: somebody's own file there is refused and left as it was.
#[test]
fn fixture_never_replaces_a_file_it_did_not_make() {
    let t = tmp();
    std::fs::write(t.path().join("notes.txt"), b"mine").unwrap();
    refused(
        xferbench()
            .current_dir(t.path())
            .args(["fixture", "--size", "1MiB", "--path", "notes.txt"]),
        2,
        "is not an xferbench fixture",
    );
    assert_eq!(std::fs::read(t.path().join("notes.txt")).unwrap(), b"mine");
    assert_eq!(listing(t.path()), vec!["notes.txt"]);
}

/// The --file shrinks while it is being sent: the case fails as `file-changed` (the strategy meets the early
/// end), and the run stops there (the cases left would send something else than planned), exit 1.
#[test]
fn a_file_that_shrinks_while_sent_fails_the_case_and_stops_the_run() {
    shrink_while_sent("sendfile,read-send");
}

/// The same from a mapping: the kernel's read of a truncated page fails the send with EFAULT (no SIGBUS, since
/// xferbench never touches the mapped bytes itself), and the case says the file changed.
#[test]
fn a_mapped_file_that_shrinks_while_sent_fails_the_case_without_sigbus() {
    shrink_while_sent("mmap-send,read-send");
    shrink_while_sent("msg-zerocopy,read-send");
    shrink_while_sent("io-uring-send-zc,read-send");
}

fn shrink_while_sent(strategies: &str) {
    let t = tmp();
    let file = t.path().join("data.bin");
    std::fs::write(&file, vec![7u8; 16 << 20]).unwrap();
    let mut run = slow_run(t.path(), &["--file", "data.bin", "--strategies", strategies]);
    run.sink_with_connection(None);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(1), "{strategies}: {stderr}");
    assert!(stderr.contains("the test file changed"), "{strategies}: {stderr}");
    assert!(stderr.contains("1 of 1 case(s) failed (1 more not run)"), "{stderr}");
    let rows = rows(t.path());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status.to_string(), "file-changed");
    assert!(rows[0].error.contains("the file ended early"), "{}", rows[0].error);
}

/// The --file grows during the first case (which sends the bytes it planned, and is ok): the next case's size
/// check fails it as `file-changed` before it sends anything.
#[test]
fn a_file_that_grows_between_cases_fails_the_next_case() {
    let t = tmp();
    let file = t.path().join("data.bin");
    std::fs::write(&file, vec![7u8; 2 << 20]).unwrap();
    let mut run = slow_run(t.path(), &["--file", "data.bin", "--strategies", "sendfile,read-send"]);
    run.sink_with_connection(None);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .set_len(3 << 20)
        .unwrap();
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(1), "{stderr}");
    let rows = rows(t.path());
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].is_ok(), "{:?}", rows[0]);
    assert_eq!(rows[1].status.to_string(), "file-changed");
    assert!(
        rows[1]
            .error
            .contains("changed size during the run: it was 2097152 bytes, it is now 3145728 bytes"),
        "{}",
        rows[1].error
    );
    assert_eq!(rows[1].bytes_sent, 0);
}

/// A result folder that cannot be made fails the run before any fixture or transfer.
#[test]
fn an_unwritable_output_folder_fails_before_anything_is_sent() {
    let t = tmp();
    std::fs::write(t.path().join("a-file"), b"x").unwrap();
    let line = refused(
        run_in(t.path(), &["--out", "a-file/results"]),
        1,
        "cannot create the result folder 'a-file/results'",
    );
    assert!(line.contains("Not a directory"), "{line}");
    // No fixture was made: nothing was going to be sent.
    assert!(!t.path().join("fx").exists(), "{:?}", listing(t.path()));
}
