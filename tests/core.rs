//! The harness core end to end: every strategy on a small fixture, warm and cold, verified by the sink; the CSV's
//! columns and values; a sink that is fed a wrong byte; resuming a sweep.

mod common;

use common::{Sink, out_dir, rows, small_run, stream_header, summary, xferbench};
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use xferbench::model::Status;
use xferbench::model::VerifyOn;
use xferbench::wire::{self, Ack, StreamHeader, StreamReport};

const SIZE: u64 = 6 << 20;

#[test]
fn every_strategy_verified_warm_and_cold() {
    let dir = tempfile::tempdir().unwrap();
    small_run(dir.path(), "6MiB")
        .args([
            "--strategies",
            "read-send,mmap-send,sendfile,parallel-sendfile,parallel-read-send",
        ])
        .args([
            "--threads",
            "1,3",
            "--chunk",
            "1MiB",
            "--layout",
            "striped,contiguous",
            "--cache",
            "warm,cold",
        ])
        .arg("--verify")
        .assert()
        .success();
    let rows = rows(dir.path());
    // 3 serial + 2 parallel x 2 thread counts x 2 layouts, each warm and cold.
    assert_eq!(rows.len(), 2 * (3 + 2 * 2 * 2));
    for r in &rows {
        let what = format!("{} x{} {} {}", r.strategy, r.threads, r.layout, r.cache);
        assert_eq!(r.status, Status::Ok, "{what}: {}", r.error);
        assert_eq!(r.file_bytes, SIZE);
        assert_eq!(r.bytes_sent, SIZE, "{what}");
        assert_eq!(r.bytes_received, Some(SIZE), "{what}");
        assert!(r.verified, "{what}");
        assert_eq!(r.path, r.strategy, "{what}: no fallback expected");
        let copies = match r.strategy.to_string().trim_start_matches("parallel-") {
            "read-send" => 2,
            "mmap-send" => 1,
            "sendfile" => 0,
            other => panic!("unexpected strategy {other}"),
        };
        assert_eq!(r.user_copy_bytes, copies * SIZE, "{what}: copy accounting");
        match r.cache.to_string().as_str() {
            "warm" => assert!(r.resident_before_ratio >= 0.98, "{what}: {}", r.resident_before_ratio),
            "cold" => assert!(r.resident_before_ratio <= 0.02, "{what}: {}", r.resident_before_ratio),
            other => panic!("cache {other}"),
        }
        assert!(
            !r.flags.to_string().split(';').any(|f| f == "residency-mismatch"),
            "{what}"
        );
        assert!(
            r.wall_s > 0.0 && r.wall_s >= r.send_s,
            "{what}: wall {} send {}",
            r.wall_s,
            r.send_s
        );
        assert!((r.throughput_mb_s - SIZE as f64 / 1e6 / r.wall_s).abs() < 1e-6 * r.throughput_mb_s);
        assert!(
            r.syscalls >= SIZE.div_ceil(1 << 20),
            "{what}: at least one call per chunk"
        );
        assert!(
            r.sink_user_s.is_some() && r.recv_s.is_some(),
            "{what}: receiver measured"
        );
        assert!(r.call_p50_us > 0.0 && r.call_p99_us >= r.call_p50_us && r.call_max_us >= r.call_p99_us);
        assert!(!r.kernel.is_empty() && !r.host.is_empty() && r.logical_cpus >= 1);
        assert_eq!(r.transport.to_string(), "loopback");
        if r.strategy.to_string().starts_with("parallel-") {
            assert!(r.layout.to_string() == "striped" || r.layout.to_string() == "contiguous");
        } else {
            assert_eq!((r.threads, r.layout.to_string().as_str()), (1, "single"));
        }
    }
    let summary = summary(&out_dir(dir.path()));
    assert_eq!(summary["state"], "finished");
    assert_eq!(summary["cases"].as_array().unwrap().len(), rows.len());
    assert!(summary["environment"]["kernel"].as_str().is_some_and(|k| !k.is_empty()));
}

#[test]
fn csv_has_the_promised_columns() {
    let header = xferbench::export::header_line();
    let columns: Vec<&str> = header.split(',').collect();
    for name in "strategy threads chunk_bytes layout cache resident_before_ratio file_bytes bytes_received verified \
                 repetition wall_s throughput_mb_s sender_user_s sender_sys_s sink_user_s sink_sys_s softirq_s \
                 sender_voluntary_ctxsw sender_involuntary_ctxsw sink_voluntary_ctxsw sink_involuntary_ctxsw \
                 system_ctxsw syscalls user_copy_bytes minor_faults major_faults call_p50_us call_p99_us call_max_us \
                 kernel host cpu_model logical_cpus xferbench_version status send_s recv_s"
        .split_whitespace()
    {
        assert!(columns.contains(&name), "column {name} missing from {header}");
    }
}

fn send_stream(addr: &str, data: &[u8], planned: u64, seed: u64, verify_on: Option<VerifyOn>) -> StreamReport {
    send_passes(addr, data, planned, 1, seed, verify_on)
}

/// Sends `data` as a stream that announces `passes` passes of a `planned`-byte file.
fn send_passes(
    addr: &str,
    data: &[u8],
    planned: u64,
    passes: u32,
    seed: u64,
    verify_on: Option<VerifyOn>,
) -> StreamReport {
    let sock = TcpStream::connect(addr).unwrap();
    let header = StreamHeader {
        run_id: "test".into(),
        case_id: "test".into(),
        seed: Some(seed),
        verify: true,
        verify_on,
        passes,
        ..stream_header(planned, 4096)
    };
    wire::write_header(&mut &sock, &header).unwrap();
    let mut reader = BufReader::new(&sock);
    let ack: Ack = wire::read_line(&mut reader).unwrap();
    assert!(ack.ok, "{ack:?}");
    (&sock).write_all(data).unwrap();
    sock.shutdown(Shutdown::Write).unwrap();
    wire::read_line(&mut reader).unwrap()
}

/// Checked in the receiving thread and in a checking thread of its own: a 4 KiB receive buffer makes the 1 MiB
/// stream pass through the checker's ring of buffers many times over.
#[test]
fn a_wrong_byte_is_not_verified() {
    let sink = Sink::start(&[], &["--listen", "127.0.0.1:0", "--rx-buffer", "4KiB"]);
    let addr = &sink.addr;
    let mut data = vec![0u8; 1 << 20];
    xferbench::pattern::fill(9, 0, &mut data);
    for on in [VerifyOn::Receiver, VerifyOn::Thread] {
        let good = send_stream(addr, &data, 1 << 20, 9, Some(on));
        data[777_777] ^= 1;
        let bad = send_stream(addr, &data, 1 << 20, 9, Some(on));
        data[777_777] ^= 1;
        let short = send_stream(addr, &data[..1000], 1 << 20, 9, Some(on));
        assert!(good.verified && good.bytes == 1 << 20, "{on}: {good:?}");
        assert_eq!(good.verify_on, Some(on));
        assert!(good.recv_calls >= 256, "{on}: {good:?}");
        assert!(!bad.verified, "{on}: {bad:?}");
        assert_eq!(bad.mismatch_offset, Some(777_777), "{on}");
        assert_eq!(bad.bytes, 1 << 20, "{on}");
        assert!(!short.verified, "{on}: a short stream is not verified: {short:?}");
    }
    // Left to the sink: one stream on a machine with 3 CPUs or more gets a thread of its own.
    let auto = send_stream(addr, &data, 1 << 20, 9, None);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let expected = if cpus >= 3 {
        VerifyOn::Thread
    } else {
        VerifyOn::Receiver
    };
    assert_eq!(auto.verify_on, Some(expected), "{cpus} CPUs");
    assert!(auto.verified, "{auto:?}");
    // Every pass is checked: a wrong byte in the third pass of three is found at its file offset.
    let mut three = [data.as_slice(), data.as_slice(), data.as_slice()].concat();
    assert!(send_passes(addr, &three, 1 << 20, 3, 9, None).verified);
    three[(2 << 20) + 4242] ^= 0x40;
    let bad = send_passes(addr, &three, 1 << 20, 3, 9, None);
    assert!(!bad.verified && bad.bytes == 3 << 20, "{bad:?}");
    assert_eq!(bad.mismatch_offset, Some(4242));
    // And a stream shorter than its passes is not verified.
    let short = send_passes(addr, &three[..2 << 20], 1 << 20, 3, 9, None);
    assert!(!short.verified, "{short:?}");
}

#[test]
fn resume_adds_only_missing_repetitions_and_refuses_another_plan() {
    let dir = tempfile::tempdir().unwrap();
    small_run(dir.path(), "2MiB")
        .args(["--strategies", "sendfile,read-send"])
        .assert()
        .success();
    assert_eq!(rows(dir.path()).len(), 2);
    // The same plan with more repetitions: one more row per case, numbered on.
    xferbench()
        .current_dir(dir.path())
        .args([
            "run", "--size", "2MiB", "--repeat", "2", "--warmup", "0", "--passes", "1", "--quiet",
        ])
        .args([
            "--fixture-dir",
            "fixtures",
            "--out",
            "out",
            "--strategies",
            "sendfile,read-send",
            "--resume",
        ])
        .assert()
        .success();
    let resumed = rows(dir.path());
    let got: Vec<(String, u32, u32)> = resumed
        .iter()
        .map(|r| (r.strategy.to_string(), r.repetition, r.round))
        .collect();
    // Round 2 turns the order by one.
    assert_eq!(
        got,
        [
            ("sendfile", 1, 1),
            ("read-send", 1, 1),
            ("read-send", 2, 2),
            ("sendfile", 2, 2)
        ]
        .map(|(s, r, n)| (s.to_string(), r, n))
    );
    // Another plan is refused with what differs named, and nothing is written.
    let refused = small_run(dir.path(), "2MiB")
        .args(["--strategies", "sendfile", "--resume", "--nodelay"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(
        stderr.contains("differs from the one") && stderr.contains("--nodelay (true here, false there)"),
        "{stderr}"
    );
    assert!(stderr.contains("the cases (1 here, 2 there"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(rows(dir.path()).len(), 4);
    // Without --resume a folder holding rows is refused too.
    let again = small_run(dir.path(), "2MiB")
        .args(["--strategies", "sendfile"])
        .assert()
        .code(1);
    assert!(String::from_utf8_lossy(&again.get_output().stderr).contains("add --resume"));
}

#[test]
fn the_table_and_a_user_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.dat");
    std::fs::write(&file, vec![7u8; 3 << 20]).unwrap();
    let out = xferbench()
        .current_dir(dir.path())
        .args([
            "run",
            "--repeat",
            "2",
            "--warmup",
            "1",
            "--chunk",
            "256KiB",
            "--threads",
            "4",
        ])
        .arg("--file")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    for needle in [
        "read-send",
        "mmap-send",
        "parallel-sendfile ×4",
        "base",
        "x [",
        "CPU s/GB",
        "congestion control: ",
    ] {
        assert!(stdout.contains(needle), "table lacks {needle}:\n{stdout}");
    }
    let rows = rows(dir.path());
    assert_eq!(rows.len(), 4 * 2, "warm-ups are not written");
    for r in &rows {
        // --passes auto: many passes of a 3 MiB file make each repetition last --min-time.
        let moved = u64::from(r.passes) * (3 << 20);
        assert!(
            r.is_ok() && !r.verified && r.passes > 1 && r.bytes_received == Some(moved),
            "{r:?}"
        );
        assert!((r.throughput_mb_s - moved as f64 / 1e6 / r.wall_s).abs() < 1e-6 * r.throughput_mb_s);
    }
}

/// `run` in `dir` of `strategies` (parallel ones on `threads` threads) over a `size` fixture; the test adds the rest.
fn run_of(dir: &Path, size: &str, strategies: &str, threads: &str) -> assert_cmd::Command {
    let mut cmd = xferbench();
    cmd.current_dir(dir)
        .args(["run", "--size", size, "--strategies", strategies, "--threads", threads]);
    cmd
}

/// `--passes auto` finds a pass count in the warm-up that makes a repetition of a small file last `--min-time`, and
/// holds it for every counted repetition. (The median is what is asserted: on a busy machine one repetition may
/// run faster than the warm-up that measured it.)
#[test]
fn calibration_makes_repetitions_last_min_time_with_one_pass_count() {
    let dir = tempfile::tempdir().unwrap();
    run_of(dir.path(), "2MiB", "sendfile,parallel-sendfile", "2")
        .args([
            "--chunk",
            "256KiB",
            "--repeat",
            "3",
            "--min-time",
            "0.5s",
            "--quiet",
            "--out",
            "out",
        ])
        .args(["--fixture-dir", "fixtures"])
        .assert()
        .success();
    let rows = rows(dir.path());
    assert_eq!(rows.len(), 6);
    for strategy in ["sendfile", "parallel-sendfile"] {
        let case: Vec<&xferbench::record::Row> = rows.iter().filter(|r| r.strategy.to_string() == strategy).collect();
        assert_eq!(case.len(), 3);
        // One count, raised only for later rounds if a repetition came out short of --min-time.
        assert!(case[0].passes > 1, "{case:?}");
        assert!(
            case.windows(2).all(|w| w[0].passes <= w[1].passes && w[1].is_ok()),
            "{case:?}"
        );
        let mut walls: Vec<f64> = case.iter().map(|r| r.wall_s).collect();
        walls.sort_by(f64::total_cmp);
        assert!(walls[1] >= 0.5, "median timed section {} s: {case:?}", walls[1]);
        assert!(
            case.iter().all(|r| !r.flags.has(xferbench::model::Flag::ShortRun)),
            "{case:?}"
        );
    }
}

/// `--passes 1` on a tiny file is too short to time, and the row and the table say so.
#[test]
fn one_pass_of_a_tiny_file_is_a_short_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = small_run(dir.path(), "1MiB")
        .args(["--strategies", "sendfile"])
        .assert()
        .success();
    let rows = rows(dir.path());
    assert!(rows[0].flags.has(xferbench::model::Flag::ShortRun), "{:?}", rows[0]);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains("short-run") && stdout.contains("leave --passes at auto"),
        "{stdout}"
    );
}

/// Every cold pass starts cold: the highest residency measured before any of a repetition's passes is that of a
/// cold file, for a path that maps the file (whose mapping must let go of the pages) as for sendfile, and every
/// byte of every pass arrives and verifies.
#[test]
fn each_cold_pass_starts_cold() {
    let dir = tempfile::tempdir().unwrap();
    run_of(dir.path(), "6MiB", "sendfile,mmap-send,parallel-sendfile", "3")
        .args([
            "--chunk", "1MiB", "--cache", "cold", "--passes", "3", "--repeat", "2", "--warmup", "0",
        ])
        .args(["--verify", "--quiet", "--out", "out", "--fixture-dir", "fixtures"])
        .assert()
        .success();
    let rows = rows(dir.path());
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert!(r.is_ok() && r.verified && r.passes == 3, "{r:?}");
        assert_eq!(r.bytes_received, Some(3 * SIZE), "{r:?}");
        assert!(r.resident_before_ratio <= 0.02, "a pass started warm: {r:?}");
        assert!(!r.flags.has(xferbench::model::Flag::ResidencyMismatch), "{r:?}");
        assert!(r.recv_s.is_some_and(|s| s > 0.0 && s <= r.wall_s * 1.01), "{r:?}");
    }
}

/// `--cc` makes each congestion control a case: every data socket is set to it, and the row records what the
/// socket read back. An algorithm the kernel lacks is a one-line usage error that names the ones it has.
#[test]
fn each_congestion_control_is_a_case_and_the_rows_name_the_one_used() {
    let available = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control").unwrap();
    let names: Vec<&str> = available.split_whitespace().collect();
    // reno is built into every kernel; the other is whatever else this one has.
    let other = names
        .iter()
        .find(|n| **n != "reno")
        .expect("a second congestion control");
    let dir = tempfile::tempdir().unwrap();
    small_run(dir.path(), "2MiB")
        .args([
            "--strategies",
            "sendfile,parallel-sendfile",
            "--threads",
            "2",
            "--chunk",
            "256KiB",
        ])
        .args(["--cc", &format!("reno,{other}")])
        .assert()
        .success();
    let rows = rows(dir.path());
    assert_eq!(rows.len(), 4);
    let used: Vec<String> = rows.iter().map(|r| r.congestion_control.unwrap().to_string()).collect();
    assert_eq!(used.iter().filter(|u| *u == "reno").count(), 2, "{used:?}");
    assert_eq!(used.iter().filter(|u| *u == other).count(), 2, "{used:?}");
    assert!(
        rows.iter()
            .all(|r| r.case_id.ends_with(&format!("/cc-{}", r.congestion_control.unwrap())))
    );
    let out = xferbench()
        .args(["run", "--cc", "nosuchcc", "--dry-run"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("'--cc'") && stderr.contains(&format!("available: {}", available.trim())),
        "{stderr}"
    );
}
