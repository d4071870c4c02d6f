//! The JVM strategies end to end: every one byte-exact, serial and parallel, warm and cold (TLS in the JVM's own
//! engine too), and as a broker (every consumer every byte, by sendfile and by SSLEngine; a stalled consumer holds
//! back only itself); the compiled sender
//! found in its cache the second time; a JVM killed in the middle of a pass; no JDK; `--cc` on a JVM's sockets; one
//! JVM serving a case from its warm-up to its last round. They need a JDK and strace (.ci/run installs both).

mod common;

use common::{BIN, children, kill, run_limited, text, tmp, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use xferbench::model::{Cc, Status};
use xferbench::record::Row;

/// A compile cache shared by the tests that do not test it (the first to need it compiles).
fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("jvm-cache")
}

/// `xferbench run` on a fixture of `size` in `dir`, results in `dir/out`, the compile cache in `cache`.
fn run_cmd(dir: &Path, cache: &Path, size: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("XDG_CACHE_HOME", cache)
        .args(["run", "--size", size, "--timeout", "60s"])
        .arg("--fixture-dir")
        .arg(dir.join("fixtures"))
        .arg("--out")
        .arg(dir.join("out"))
        .args(args);
    cmd
}

/// Runs to the end and returns stderr and the rows; the run must succeed.
fn run_ok(dir: &Path, cache: &Path, size: &str, args: &[&str]) -> (String, Vec<Row>) {
    let out = run_limited(run_cmd(dir, cache, size, args), common::LIMIT);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{args:?} failed:\n{}\n{err}", text(&out.stdout));
    (err, common::csv_rows(&dir.join("out/runs.csv")))
}

#[test]
fn every_jvm_strategy_is_byte_exact_serial_and_parallel_warm_and_cold() {
    let dir = tmp();
    let strategies = "jvm-transferto,parallel-jvm-transferto,jvm-read-write,parallel-jvm-read-write,jvm-nio,\
                      parallel-jvm-nio,jvm-tls,parallel-jvm-tls";
    let (_, rows) = run_ok(
        dir.path(),
        &shared_cache(),
        "3MiB",
        &[
            "--strategies",
            strategies,
            "--threads",
            "2",
            "--chunk",
            "256KiB",
            "--cache",
            "warm,cold",
            "--repeat",
            "1",
            "--warmup",
            "0",
            "--passes",
            "2",
            "--verify",
            "--quiet",
        ],
    );
    assert_eq!(rows.len(), 16);
    for r in &rows {
        let what = format!("{} {}", r.strategy, r.cache);
        assert_eq!(r.status, Status::Ok, "{what}: {}", r.error);
        assert!(r.verified, "{what}");
        assert_eq!(r.bytes_sent, 2 * r.file_bytes, "{what}");
        assert_eq!(r.bytes_received, Some(2 * r.file_bytes), "{what}");
        assert!(r.jvm_version.contains("VM"), "{what}: {}", r.jvm_version);
        // The check pass saw the calls: transferTo to a SocketChannel is sendfile on Linux, the others copy.
        let path = if r.strategy.method.to_string() == "jvm-transferto" {
            "sendfile"
        } else {
            "read+write"
        };
        assert_eq!(r.jvm_path, path, "{what}: {}", r.jvm_calls);
        assert_eq!(
            r.user_copy_bytes,
            if path == "sendfile" { 0 } else { 2 * r.bytes_sent },
            "{what}"
        );
        assert!(r.jvm_send_cpu_s.is_some_and(|s| s > 0.0), "{what}");
        assert!(r.syscalls > 0 && r.call_max_us > 0.0, "{what}");
        assert!(r.tcp_rtt_us.is_some(), "{what}: TCP_INFO read through the JVM's socket");
        // The JVM's own engine shook hands with the sink (pinned to the certificate its ack announced).
        let tls = r.strategy.method.to_string() == "jvm-tls";
        assert_eq!(r.tls_cipher.starts_with("TLS13_"), tls, "{what}: {}", r.tls_cipher);
    }
}

#[test]
fn a_broker_in_the_jvm_gives_every_consumer_every_byte_by_transferto_and_by_sslengine() {
    let dir = tmp();
    let (_, rows) = run_ok(
        dir.path(),
        &shared_cache(),
        "3MiB",
        &[
            "--strategies",
            "broker-jvm-transferto,broker-jvm-tls",
            "--consumers",
            "1,3,7",
            "--network-threads",
            "2",
            // Fetches that end mid-file.
            "--fetch-size",
            "100KiB",
            "--cache",
            "warm,cold",
            "--repeat",
            "1",
            "--warmup",
            "0",
            "--passes",
            "2",
            "--verify",
            "--quiet",
        ],
    );
    assert_eq!(rows.len(), 2 * 3 * 2);
    for r in &rows {
        let what = format!("{} {}", r.case_id, r.cache);
        let consumers = r.consumers.expect("a broker row records its consumers");
        assert_eq!(r.status, Status::Ok, "{what}: {}", r.error);
        assert!(r.verified, "{what}");
        assert_eq!((r.threads, r.fetch_bytes), (2, Some(100 << 10)), "{what}");
        let each = 3u64 << 21;
        assert_eq!(r.bytes_received, Some(each * u64::from(consumers)), "{what}");
        assert_eq!(r.bytes_sent, each * u64::from(consumers), "{what}");
        if r.strategy.method.to_string() == "jvm-tls" {
            // Kafka's TLS path: 32 KiB reads at a position, sealed by SSLEngine, written; the sink decrypted it.
            assert_eq!(r.chunk_bytes, 32 << 10, "{what}");
            assert_eq!(r.jvm_path, "read+write", "{what}: {}", r.jvm_calls);
            assert!(r.jvm_calls.contains("pread64"), "{what}: {}", r.jvm_calls);
            assert_eq!(r.user_copy_bytes, 2 * r.bytes_sent, "{what}");
            assert!(r.tls_cipher.starts_with("TLS13_"), "{what}: {}", r.tls_cipher);
            continue;
        }
        // Non-blocking transferTo to a SocketChannel is still sendfile, seen in the check pass.
        assert_eq!(r.jvm_path, "sendfile", "{what}: {}", r.jvm_calls);
        assert_eq!(r.user_copy_bytes, 0, "{what}");
        assert!(r.jvm_send_cpu_s.is_some_and(|s| s > 0.0), "{what}");
        // At least one transferTo per fetch, and the selects besides.
        let fetches = each.div_ceil(100 << 10) * u64::from(consumers);
        assert!(r.syscalls > fetches, "{what}: {} calls", r.syscalls);
        assert!(r.consumer_jain.is_some_and(|j| j > 0.0 && j <= 1.0), "{what}");
    }
    let lines = common::consumer_rows(&dir.path().join("out"));
    assert_eq!(lines.len(), 2 * (1 + 3 + 7) * 2, "one line per consumer and repetition");
    for l in &lines {
        assert_eq!(l.bytes, 3 << 21, "consumer {} of {}", l.consumer, l.case_id);
        assert_eq!(l.network_thread, l.consumer % 2, "{l:?}");
    }
}

#[test]
fn a_stalled_consumer_holds_back_only_itself_in_the_jvm_too() {
    let dir = tmp();
    // One network thread, one Selector, serves all four: a consumer whose socket stays full must not hold it.
    let (_, rows) = run_ok(
        dir.path(),
        &shared_cache(),
        "48MiB",
        &[
            "--strategies",
            "broker-jvm-transferto,broker-jvm-tls",
            "--consumers",
            "4",
            "--network-threads",
            "1",
            "--stalled-consumers",
            "1",
            // Fetches larger than a socket takes: a visit finds the stalled consumer's socket full mid-fetch, and
            // must move on rather than wait (or spin) on it.
            "--fetch-size",
            "16MiB",
            "--passes",
            "1",
            "--repeat",
            "2",
            "--warmup",
            "0",
            "--verify",
            "--quiet",
        ],
    );
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(r.status, Status::Ok, "{}: {}", r.case_id, r.error);
        assert!(r.consumer_slowest_s > r.consumer_median_s, "{}", r.case_id);
    }
    let lines = common::consumer_rows(&dir.path().join("out"));
    for rep in lines.chunk_by(|a, b| (&a.case_id, a.round) == (&b.case_id, b.round)) {
        let (stalled, others): (Vec<_>, Vec<_>) = rep.iter().partition(|l| l.stalled);
        assert_eq!((stalled.len(), others.len()), (1, 3), "{rep:?}");
        let others_done = others.iter().filter_map(|l| l.last_byte_s).fold(0.0, f64::max);
        assert!(stalled[0].first_byte_s.unwrap() >= others_done, "{rep:?}");
        // A thread blocked on the full socket would wait for the case's --timeout (60 s here).
        assert!(others_done < 10.0, "the others took {others_done} s: {rep:?}");
    }
}

#[test]
fn the_compiled_sender_is_found_in_its_cache_the_second_time() {
    let (dir, cache) = (tmp(), tmp());
    let args = [
        "--strategies",
        "jvm-nio",
        "--repeat",
        "1",
        "--warmup",
        "0",
        "--passes",
        "1",
    ];
    let (first, _) = run_ok(dir.path(), cache.path(), "1MiB", &args);
    assert!(first.contains("compiled the JVM sender"), "{first}");
    let classes = |root: &Path| -> Vec<(PathBuf, std::time::SystemTime)> {
        let mut found = Vec::new();
        for entry in walk(root) {
            if entry.extension().is_some_and(|e| e == "class") {
                found.push((entry.clone(), entry.metadata().unwrap().modified().unwrap()));
            }
        }
        found.sort();
        found
    };
    let before = classes(cache.path());
    assert!(before.iter().any(|(p, _)| p.ends_with("Sender.class")), "{before:?}");
    std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    let (second, rows) = run_ok(dir.path(), cache.path(), "1MiB", &args);
    assert!(!second.contains("compiled"), "{second}");
    assert_eq!(classes(cache.path()), before, "the second run wrote classes");
    assert_eq!(rows[0].status, Status::Ok, "{}", rows[0].error);
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Bytes the process has written through write and sendfile calls (/proc/PID/io `wchar`).
fn written(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines().find_map(|l| l.strip_prefix("wchar:")?.trim().parse().ok())
}

/// The JVM a run started (its child whose command line runs the sender).
fn jvm_of(run: u32) -> Option<u32> {
    children(run)
        .into_iter()
        .find(|&c| std::fs::read(format!("/proc/{c}/cmdline")).is_ok_and(|cmd| cmd.ends_with(b"Sender\0")))
}

#[test]
fn a_jvm_killed_mid_pass_fails_its_row_and_the_next_case_runs() {
    let dir = tmp();
    let mut cmd = run_cmd(
        dir.path(),
        &shared_cache(),
        "8MiB",
        &[
            "--strategies",
            "jvm-transferto,sendfile",
            "--chunk",
            "1MiB",
            "--repeat",
            "1",
            "--warmup",
            "0",
            "--passes",
            "300",
        ],
    );
    let log = dir.path().join("stderr.txt");
    let mut run = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The check pass sends 8 MiB; past 32 MiB the JVM is in the counted repetition's 2.4 GB.
    let jvm = wait_for(
        "the JVM to be sending",
        Duration::from_secs(90),
        Duration::from_millis(5),
        || jvm_of(run.id()).filter(|&j| written(j).is_some_and(|w| w > 32 << 20)),
    );
    kill(jvm, nix::sys::signal::Signal::SIGKILL);
    let status = wait_for(
        "the run to end",
        Duration::from_secs(90),
        Duration::from_millis(50),
        || run.try_wait().unwrap(),
    );
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    let rows = common::csv_rows(&dir.path().join("out/runs.csv"));
    assert_eq!(rows.len(), 2, "{err}");
    assert_eq!(rows[0].status, Status::SenderExited, "{}", rows[0].error);
    assert!(rows[0].error.contains("killed by signal 9"), "{}", rows[0].error);
    assert_eq!(
        rows[1].status,
        Status::Ok,
        "the sink took the next case: {}",
        rows[1].error
    );
}

#[test]
fn without_a_jdk_a_jvm_strategy_is_one_line_before_anything_is_made() {
    let (dir, empty) = (tmp(), tmp());
    let mut cmd = run_cmd(
        dir.path(),
        &shared_cache(),
        "1MiB",
        &["--strategies", "sendfile,jvm-transferto"],
    );
    cmd.env("PATH", empty.path());
    let out = run_limited(cmd, common::LIMIT);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("jvm-transferto") && err.contains("apt-get install openjdk-17-jdk-headless"),
        "{err}"
    );
    assert!(!dir.path().join("out").exists() && !dir.path().join("fixtures").exists());
}

#[test]
fn cc_holds_for_the_jvm_s_sockets() {
    // reno is built into every kernel and is neither distribution's default, so only setting it gives it.
    let dir = tmp();
    let (_, rows) = run_ok(
        dir.path(),
        &shared_cache(),
        "1MiB",
        &[
            "--strategies",
            "jvm-transferto,parallel-jvm-nio",
            "--threads",
            "2",
            "--chunk",
            "256KiB",
            "--cc",
            "reno",
            "--warmup",
            "0",
            "--repeat",
            "1",
            "--passes",
            "1",
            "--quiet",
        ],
    );
    for r in &rows {
        assert_eq!(r.status, Status::Ok, "{}: {}", r.strategy, r.error);
        assert_eq!(
            r.congestion_control,
            Some("reno".parse::<Cc>().unwrap()),
            "{}",
            r.strategy
        );
    }
}

/// JVM start, class loading and the first compilations precede the first timed repetition by construction: the
/// JVM is started and used (check pass, warm-up) before it. Whether the first counted repetition is then as fast as
/// the rest is a timing question for a quiet machine: `scripts/bench-jvm.sh` ranks it among its rounds (on this
/// project's loaded build machines single repetitions of a few tens of milliseconds vary threefold either way).
#[test]
fn one_jvm_serves_a_case_from_its_check_pass_to_its_last_round() {
    let dir = tmp();
    let (_, rows) = run_ok(
        dir.path(),
        &shared_cache(),
        "4MiB",
        &[
            "--strategies",
            "jvm-read-write",
            "--chunk",
            "64KiB",
            "--warmup",
            "1",
            "--repeat",
            "4",
            "--passes",
            "8",
            "--quiet",
        ],
    );
    let counted: Vec<&Row> = rows.iter().filter(|r| r.round > 0).collect();
    assert_eq!(counted.len(), 4);
    // The check pass and the warm-up ran in the same JVM before the first round, and no JVM started since.
    let before: Vec<Option<u32>> = counted.iter().map(|r| r.jvm_repetitions_before).collect();
    assert_eq!(before, vec![Some(2), Some(3), Some(4), Some(5)]);
    for r in &counted {
        assert_eq!(r.status, Status::Ok, "{}", r.error);
        // What the JIT and the collector still did while the threads sent is measured, not assumed away.
        assert!(r.jvm_jit_ms.is_some() && r.jvm_gc_ms.is_some(), "{r:?}");
    }
}
