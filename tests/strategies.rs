//! The transfer paths beyond the article's four (splice, io-uring, msg-zerocopy, io-uring-send-zc,
//! direct-read-send, each also parallel) and the sink's receive modes, run end to end as a user runs them, on small
//! fixtures.

use assert_cmd::Command;
use std::path::Path;
use xferbench::model::Status;
use xferbench::record::Row;

/// Runs `xferbench run` with a fixture and result folder in `tmp` plus `args`; returns stdout and the rows.
fn run(tmp: &Path, args: &[&str]) -> (String, Vec<Row>) {
    let out = tmp.join("out");
    let result = Command::cargo_bin("xferbench")
        .expect("binary built")
        .args([
            "run",
            "--repeat",
            "1",
            "--warmup",
            "0",
            "--passes",
            "1",
            "--timeout",
            "60s",
        ])
        .arg("--fixture-dir")
        .arg(tmp.join("fixtures"))
        .arg("--out")
        .arg(&out)
        .args(args)
        .output()
        .expect("xferbench runs");
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(
        result.status.success(),
        "xferbench run {args:?} failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let rows = xferbench::record::read(&out.join("runs.csv"))
        .expect("runs.csv reads")
        .rows;
    (stdout, rows)
}

/// The path that ran is the strategy's own, or one its method may fall back to, with the reason recorded.
fn path_is_honest(row: &Row) {
    let allowed: &[&str] = match row.strategy.method.to_string().as_str() {
        "io-uring" => &["splice"],
        "io-uring-send-zc" => &["msg-zerocopy", "mmap-send"],
        "msg-zerocopy" => &["mmap-send"],
        "ktls-sendfile" => &["tls-read-send"],
        "direct-read-send" => &["read-send"],
        _ => &[],
    };
    let fell_back = row.path.parallel == row.strategy.parallel
        && allowed.contains(&row.path.method.to_string().as_str())
        && !row.fallback_reason.is_empty();
    assert!(
        (row.path == row.strategy && row.fallback_reason.is_empty()) || fell_back,
        "{}: path {} ({:?})",
        row.strategy,
        row.path,
        row.fallback_reason
    );
}

fn check_rows(rows: &[Row], expected: usize, verify: bool) {
    assert_eq!(rows.len(), expected, "{rows:#?}");
    for r in rows {
        let what = format!("{} {} {:?}", r.strategy, r.cache, r.rx_mode);
        assert_eq!(r.status, Status::Ok, "{what}: {}", r.error);
        assert_eq!(r.bytes_sent, r.file_bytes, "{what}");
        assert_eq!(r.bytes_received, Some(r.file_bytes), "{what}");
        assert_eq!(r.verified, verify, "{what}");
        path_is_honest(r);
        let method = r.strategy.method.to_string();
        if r.strategy.method.has_queue() {
            assert_eq!(r.queue_depth, Some(4), "{what}");
        } else {
            assert_eq!(r.queue_depth, None, "{what}");
        }
        // The zero-copy sends report what the kernel copied, also where io-uring-send-zc fell back to msg-zerocopy.
        let zc_ran = (method == "msg-zerocopy" && r.path == r.strategy)
            || (method == "io-uring-send-zc" && r.path.method.to_string() != "mmap-send");
        if zc_ran {
            let ratio = r
                .zerocopy_copied_ratio
                .unwrap_or_else(|| panic!("{what}: no zerocopy_copied_ratio"));
            assert!((0.0..=1.0).contains(&ratio), "{what}: ratio {ratio}");
        } else if !["msg-zerocopy", "io-uring-send-zc"].contains(&method.as_str()) {
            assert_eq!(r.zerocopy_copied_ratio, None, "{what}");
        }
        // Paths that never bring the bytes into user space must not claim they did, and the others must.
        let zero_copy = ["splice", "io-uring"]
            .iter()
            .any(|m| r.strategy.to_string().ends_with(m));
        if zero_copy && r.path == r.strategy {
            assert_eq!(r.user_copy_bytes, 0, "{what}");
        }
        if r.strategy.to_string().ends_with("direct-read-send") {
            assert_eq!(r.user_copy_bytes, 2 * r.file_bytes, "{what}");
        }
        assert!(r.syscalls > 0, "{what}");
    }
}

const NEW: &str = "splice,io-uring,msg-zerocopy,io-uring-send-zc,direct-read-send,\
                   parallel-splice,parallel-io-uring,parallel-msg-zerocopy,parallel-io-uring-send-zc,\
                   parallel-direct-read-send";

#[test]
fn new_strategies_verify_warm_and_cold() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (_, rows) = run(
        tmp.path(),
        &[
            "--size",
            "8MiB",
            "--verify",
            "--strategies",
            NEW,
            "--threads",
            "2",
            "--chunk",
            "1MiB",
            "--cache",
            "warm,cold",
            "--queue-depth",
            "4",
        ],
    );
    check_rows(&rows, 20, true);
    for cache in ["warm", "cold"] {
        assert_eq!(rows.iter().filter(|r| r.cache.to_string() == cache).count(), 10);
    }
}

/// A file and chunks that are no multiple of the 4 KiB block: direct I/O must read past the tail and send only
/// the file's bytes; contiguous ranges and striped chunks both start off the block boundary.
#[test]
fn unaligned_sizes_and_chunks_arrive_exactly() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (_, rows) = run(
        tmp.path(),
        &[
            "--size",
            "3000001",
            "--verify",
            "--strategies",
            NEW,
            "--threads",
            "3",
            "--chunk",
            "999999",
            "--layout",
            "striped,contiguous",
            "--cache",
            "cold",
            "--queue-depth",
            "4",
        ],
    );
    check_rows(&rows, 5 + 5 * 2, true);
}

/// io-uring-send-zc, serial and parallel, warm and cold: every byte arrives, and on loopback (where the receiving
/// socket must own its bytes) the kernel reports every send copied: ratio 1.0, the copied bytes counted, the case
/// flagged `zerocopy-copied` in the table and in summary.json. Where the kernel cannot run SEND_ZC with its usage
/// report the rows must say so (path and `fallback` flag).
#[test]
fn io_uring_send_zc_reports_what_the_kernel_copied() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (stdout, rows) = run(
        tmp.path(),
        &[
            "--size",
            "8MiB",
            "--verify",
            "--strategies",
            "io-uring-send-zc,parallel-io-uring-send-zc",
            "--threads",
            "2",
            "--chunk",
            "1MiB",
            "--cache",
            "warm,cold",
            "--queue-depth",
            "4",
        ],
    );
    check_rows(&rows, 4, true);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("out/summary.json")).expect("summary.json"))
            .expect("summary.json parses");
    let cases = summary["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 4);
    for r in &rows {
        let what = format!("{} {}", r.strategy, r.cache);
        let case = cases
            .iter()
            .find(|c| c["strategy"] == r.strategy.to_string() && c["cache"] == r.cache.to_string())
            .unwrap_or_else(|| panic!("{what}: no case in summary.json"));
        let flags: Vec<&str> = case["flags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        assert_eq!(case["queue_depth"], 4, "{what}");
        if r.path == r.strategy {
            assert_eq!(r.zerocopy_copied_ratio, Some(1.0), "{what}: loopback copies every send");
            assert_eq!(r.user_copy_bytes, r.bytes_sent, "{what}: the copied sends' bytes");
            assert!(flags.contains(&"zerocopy-copied"), "{what}: {flags:?}");
            assert!(!flags.contains(&"fallback"), "{what}: {flags:?}");
        } else {
            eprintln!("{what} fell back here: {} ({})", r.path, r.fallback_reason);
            assert!(flags.contains(&"fallback"), "{what}: {flags:?}");
        }
    }
    if rows.iter().all(|r| r.path == r.strategy) {
        // The table's rows, not the notes (which start with the same names).
        let table: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("io-uring-send-zc ") || l.starts_with("parallel-io-uring-send-zc "))
            .filter(|l| l.contains(" MB/s "))
            .collect();
        assert_eq!(table.len(), 4, "{stdout}");
        assert!(table.iter().all(|l| l.contains("zerocopy-copied")), "{stdout}");
    }
}

#[test]
fn every_rx_mode_counts_exactly_from_one_sink() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (stdout, rows) = run(
        tmp.path(),
        &[
            "--size",
            "8MiB",
            "--strategies",
            "sendfile,parallel-splice",
            "--threads",
            "2",
            "--chunk",
            "1MiB",
            "--rx-mode",
            "copy,trunc,splice",
        ],
    );
    check_rows(&rows, 6, false);
    for mode in ["copy", "trunc", "splice"] {
        let of_mode = rows.iter().filter(|r| r.rx_mode.is_some_and(|m| m.to_string() == mode));
        assert_eq!(of_mode.count(), 2, "{mode}");
    }
    assert!(stdout.contains("receive modes: copy"), "{stdout}");
}

#[test]
fn verify_with_a_discarding_rx_mode_is_a_usage_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    Command::cargo_bin("xferbench")
        .expect("binary built")
        .args([
            "run",
            "--size",
            "1MiB",
            "--verify",
            "--rx-mode",
            "splice",
            "--fixture-dir",
        ])
        .arg(tmp.path())
        .assert()
        .code(2);
}
