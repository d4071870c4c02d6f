//! The transfer paths beyond the article's four (splice, io-uring, io-uring-fixed, msg-zerocopy, io-uring-send-zc,
//! io-uring-send-zc-fixed, direct-read-send, each also parallel) and the sink's receive modes, run end to end as a
//! user runs them, on small fixtures.

use assert_cmd::Command;
use std::path::Path;
use xferbench::model::Status;
use xferbench::record::Row;

/// Runs `xferbench run` with a fixture and result folder in `tmp` plus `args`; returns stdout and the rows.
fn run(tmp: &Path, args: &[&str]) -> (String, Vec<Row>) {
    run_in(tmp, args, Command::cargo_bin("xferbench").expect("binary built"))
}

/// As `run`, with `cmd` (the binary, perhaps with limits set for it).
fn run_in(tmp: &Path, args: &[&str], mut cmd: Command) -> (String, Vec<Row>) {
    let out = tmp.join("out");
    let result = cmd
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
        "io-uring-fixed" => &["io-uring", "splice"],
        "io-uring-send-zc" => &["msg-zerocopy", "mmap-send"],
        "io-uring-send-zc-fixed" => &["io-uring-send-zc", "msg-zerocopy", "mmap-send"],
        "msg-zerocopy" => &["mmap-send"],
        "ktls-sendfile" => &["tls-read-send"],
        "direct-read-send" => &["read-send"],
        _ => &[],
    };
    let fell_back = row.path.shape == row.strategy.shape
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
        // The zero-copy sends report what the kernel copied, also where io-uring-send-zc(-fixed) fell back.
        let zc_methods = ["msg-zerocopy", "io-uring-send-zc", "io-uring-send-zc-fixed"];
        let zc_ran = (method == "msg-zerocopy" && r.path == r.strategy)
            || (method.starts_with("io-uring-send-zc") && r.path.method.to_string() != "mmap-send");
        if zc_ran {
            let ratio = r
                .zerocopy_copied_ratio
                .unwrap_or_else(|| panic!("{what}: no zerocopy_copied_ratio"));
            assert!((0.0..=1.0).contains(&ratio), "{what}: ratio {ratio}");
        } else if !zc_methods.contains(&method.as_str()) {
            assert_eq!(r.zerocopy_copied_ratio, None, "{what}");
        }
        // Paths that never bring the bytes into user space must not claim they did, and the others must.
        let zero_copy = ["splice", "io-uring", "io-uring-fixed"]
            .iter()
            .any(|m| r.strategy.to_string().ends_with(m));
        if zero_copy && r.path == r.strategy {
            assert_eq!(r.user_copy_bytes, 0, "{what}");
        }
        // The registered zero-copy form reads every byte into its buffers; its sends add what the kernel copied.
        if method == "io-uring-send-zc-fixed" && r.path == r.strategy {
            assert!(
                (r.file_bytes..=2 * r.file_bytes).contains(&r.user_copy_bytes),
                "{what}: {}",
                r.user_copy_bytes
            );
        }
        if r.strategy.to_string().ends_with("direct-read-send") {
            assert_eq!(r.user_copy_bytes, 2 * r.file_bytes, "{what}");
        }
        assert!(r.syscalls > 0, "{what}");
    }
}

const NEW: &str = "splice,io-uring,io-uring-fixed,msg-zerocopy,io-uring-send-zc,io-uring-send-zc-fixed,\
                   direct-read-send,parallel-splice,parallel-io-uring,parallel-io-uring-fixed,\
                   parallel-msg-zerocopy,parallel-io-uring-send-zc,parallel-io-uring-send-zc-fixed,\
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
    check_rows(&rows, 28, true);
    for cache in ["warm", "cold"] {
        assert_eq!(rows.iter().filter(|r| r.cache.to_string() == cache).count(), 14);
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
    check_rows(&rows, 7 + 7 * 2, true);
}

/// io-uring-send-zc and its registered form, serial and parallel, warm and cold: every byte arrives, and on
/// loopback (where the receiving socket must own its bytes) the kernel reports every send copied: ratio 1.0, the
/// copied bytes counted (the registered form also counts its reads into its buffers), the case flagged
/// `zerocopy-copied` in the table and in summary.json. Where the kernel cannot run SEND_ZC with its usage report,
/// or refuses a registration, the rows must say so (path and `fallback` flag).
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
            "io-uring-send-zc,parallel-io-uring-send-zc,io-uring-send-zc-fixed,parallel-io-uring-send-zc-fixed",
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
    check_rows(&rows, 8, true);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("out/summary.json")).expect("summary.json"))
            .expect("summary.json parses");
    let cases = summary["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 8);
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
            let reads = u64::from(r.strategy.method.to_string().ends_with("-fixed"));
            assert_eq!(r.zerocopy_copied_ratio, Some(1.0), "{what}: loopback copies every send");
            assert_eq!(
                r.user_copy_bytes,
                (1 + reads) * r.bytes_sent,
                "{what}: the copied sends' bytes, and the reads into registered buffers"
            );
            assert!(flags.contains(&"zerocopy-copied"), "{what}: {flags:?}");
            assert!(!flags.contains(&"fallback"), "{what}: {flags:?}");
        } else {
            eprintln!("{what} fell back here: {} ({})", r.path, r.fallback_reason);
            assert!(flags.contains(&"fallback"), "{what}: {flags:?}");
        }
    }
    if rows.iter().all(|r| r.path == r.strategy) {
        // The table's rows, not the notes (which start with the same names).
        let names = [
            "io-uring-send-zc ",
            "parallel-io-uring-send-zc ",
            "io-uring-send-zc-fixed ",
            "parallel-io-uring-send-zc-fixed ",
        ];
        let table: Vec<&str> = stdout
            .lines()
            .filter(|l| names.iter().any(|n| l.starts_with(n)))
            // A median in MB/s or GB/s, whichever its size.
            .filter(|l| l.contains(" MB/s ") || l.contains(" GB/s "))
            .collect();
        assert_eq!(table.len(), 8, "{stdout}");
        assert!(table.iter().all(|l| l.contains("zerocopy-copied")), "{stdout}");
    }
}

/// A registration the kernel refuses: here IORING_REGISTER_BUFFERS, under a locked-memory limit (RLIMIT_MEMLOCK
/// 1 MiB, CAP_IPC_LOCK dropped where the test runs with it) that two 1 MiB buffers exceed. The registered form
/// then runs the plain one, byte-exact, under the same limit (its sends' pages count against it too, shared by the
/// parallel case's two streams), and the row and the table say so and why.
#[test]
fn a_refused_buffer_registration_runs_the_plain_form_and_says_why() {
    use std::os::unix::process::CommandExt;
    const CAP_IPC_LOCK: u32 = 14;
    const CAP_SETPCAP: u32 = 8;
    let caps = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let effective = caps
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .expect("CapEff");
    let drop_cap = effective & (1 << CAP_IPC_LOCK) != 0;
    if drop_cap && effective & (1 << CAP_SETPCAP) == 0 {
        eprintln!("CAP_IPC_LOCK held and cannot be dropped here: the limit could not bind; not run");
        return;
    }
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("xferbench"));
    // SAFETY: only async-signal-safe calls between fork and exec. Without CAP_IPC_LOCK in the bounding set, the
    // program exec'd (root or not) has no CAP_IPC_LOCK, so the kernel counts registered buffers against the limit.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if drop_cap && libc::prctl(libc::PR_CAPBSET_DROP, CAP_IPC_LOCK as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let (stdout, rows) = run_in(
        tmp.path(),
        &[
            "--size",
            "4MiB",
            "--verify",
            "--strategies",
            "io-uring-send-zc-fixed,parallel-io-uring-send-zc-fixed",
            "--threads",
            "2",
            "--chunk",
            "1MiB",
            "--queue-depth",
            "4",
        ],
        Command::from_std(cmd),
    );
    check_rows(&rows, 2, true);
    for r in &rows {
        let what = r.strategy.to_string();
        match r.path.method.to_string().as_str() {
            "io-uring-send-zc" => {}
            "msg-zerocopy" | "mmap-send" => {
                // No SEND_ZC here at all: the plain form's own fallback, with its reason.
                eprintln!("{what} fell back further here: {} ({})", r.path, r.fallback_reason);
                continue;
            }
            other => panic!("{what} ran as {other}: the registration was not refused under the limit"),
        }
        assert_eq!(r.path.shape, r.strategy.shape, "{what}");
        assert!(
            r.fallback_reason
                .starts_with("IORING_REGISTER_BUFFERS (2 x 1 MiB): ENOMEM"),
            "{what}: {}",
            r.fallback_reason
        );
        assert!(
            r.fallback_reason.contains("RLIMIT_MEMLOCK 1048576 bytes"),
            "{what}: {}",
            r.fallback_reason
        );
        // The plain form's accounting: no reads into buffers, the copied sends only.
        assert_eq!(r.user_copy_bytes, r.bytes_sent, "{what}");
    }
    assert!(stdout.contains("fallback"), "the table flags the fallback:\n{stdout}");
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
            "copy,trunc,splice,zerocopy",
        ],
    );
    check_rows(&rows, 8, false);
    for mode in ["copy", "trunc", "splice", "zerocopy"] {
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
