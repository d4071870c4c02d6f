//! The connection's own view (issue 23): TCP_INFO of the sender's sockets and the sink's in every row, who limited
//! the flow, throughput over time in series.csv and the timeline chart, on loopback and with a remote sink.

mod common;

use common::{LIMIT, Sink, rows, run_cmd, run_limited, run_small, small_run, text, xferbench};

use std::collections::BTreeMap;
use xferbench::record::Row;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The series lines of a folder, summed per repetition (run and number).
fn series_sums(dir: &std::path::Path) -> BTreeMap<(String, u32), u64> {
    let mut sums = BTreeMap::new();
    let mut reader = csv::Reader::from_path(dir.join("series.csv")).expect("series.csv");
    for line in reader.deserialize::<xferbench::record::SeriesRow>() {
        let line = line.expect("a whole series line");
        assert!(line.interval_s > 0.0 && line.pass >= 1, "{line:?}");
        *sums.entry((line.run_id, line.repetition)).or_insert(0) += line.bytes;
    }
    sums
}

/// A sender-bound single stream on loopback: no retransmission, a round trip under a millisecond, the socket busy
/// for most of the timed section, TCP's limit named in the table; the series adds up to what the sink counted.
#[test]
fn tcp_info_and_the_series_are_recorded_and_plausible_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_small(
        dir.path(),
        "8MiB",
        &[
            "--strategies",
            "sendfile",
            "--repeat",
            "3",
            "--passes",
            "8",
            "--interval",
            "20ms",
        ],
    )
    .arg("--plot")
    .assert()
    .success();
    let table = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let rows: Vec<Row> = rows(dir.path());
    assert_eq!(rows.len(), 3);
    for r in &rows {
        // Loopback retransmits only when the machine drops what it cannot take in time: never more than the
        // whole namespace counted, and none when it counted none.
        let own = r.tcp_total_retrans.expect("retransmissions recorded");
        let all = r.tcp_retrans_segs.expect("the namespace's counter");
        assert!(own <= all + 1 && (all > 0 || own == 0), "{own} of {all}: {r:?}");
        assert!(
            r.tcp_rtt_us.is_some_and(|us| us > 0.0 && us < 1000.0),
            "{:?}",
            r.tcp_rtt_us
        );
        assert!(r.tcp_cwnd_segs.is_some_and(|c| c > 0.0), "{:?}", r.tcp_cwnd_segs);
        assert!(
            r.tcp_pacing_rate_mb_s.is_some_and(|p| p > 0.0),
            "{:?}",
            r.tcp_pacing_rate_mb_s
        );
        // Read when the last send returned: most, not necessarily all, is acknowledged by then.
        assert!(
            r.tcp_bytes_acked.is_some_and(|b| b > 0 && b <= r.bytes_moved() + 8192),
            "{:?}",
            r.tcp_bytes_acked
        );
        assert!(
            r.sink_tcp_rcv_space_bytes.is_some_and(|b| b > 0.0),
            "{:?}",
            r.sink_tcp_rcv_space_bytes
        );
    }
    let busy = median(rows.iter().map(|r| r.tcp_busy_ratio.unwrap()).collect());
    assert!(busy >= 0.7, "a sender-bound stream's socket was busy only {busy}");
    assert!(table.contains("what limited each flow, as TCP saw it"), "{table}");
    // Every repetition's series adds up to the bytes the sink counted.
    let sums = series_sums(&dir.path().join("out"));
    assert_eq!(sums.len(), 3, "{sums:?}");
    for r in &rows {
        assert_eq!(
            sums[&(r.run_id.clone(), r.repetition)],
            r.bytes_received.unwrap(),
            "{r:?}"
        );
    }
    assert!(dir.path().join("out/timeline.png").is_file());
}

/// A receive window held small (`--rcvbuf` of the spawned sink, the kernel's least) shows up as time stalled by
/// it, and the table names the receiver's window as the limit. The send buffer is held small too: with the receive
/// buffer alone the worst connection stalled on the window 30-63% of the time over 12 repetitions (the limit's
/// threshold is 30%), with both 63-84% over 15.
#[test]
fn a_small_receive_buffer_shows_up_as_rwnd_limited() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_small(
        dir.path(),
        "2MiB",
        &[
            "--strategies",
            "sendfile",
            "--repeat",
            "3",
            "--passes",
            "2",
            "--rcvbuf",
            "1KiB",
            "--sndbuf",
            "4KiB",
        ],
    )
    .assert()
    .success();
    let table = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let rwnd = median(
        rows(dir.path())
            .iter()
            .map(|r| r.tcp_rwnd_limited_ratio.unwrap())
            .collect(),
    );
    assert!(rwnd >= 0.4, "stalled by the receive window only {rwnd} of the time");
    assert!(table.contains("the receiver's window (stalled"), "{table}");
    // With the default buffer, the window stalls far less.
    let free = tempfile::tempdir().unwrap();
    run_small(
        free.path(),
        "2MiB",
        &["--strategies", "sendfile", "--repeat", "3", "--passes", "2"],
    )
    .assert()
    .success();
    let open = median(
        rows(free.path())
            .iter()
            .map(|r| r.tcp_rwnd_limited_ratio.unwrap())
            .collect(),
    );
    assert!(open < rwnd, "open window {open} against {rwnd}");
}

/// A sink reached with --connect sends its own TCP_INFO and the series in its report: both reach the rows.
#[test]
fn a_remote_sinks_report_carries_its_tcp_info_and_the_series() {
    let sink = Sink::start(&[], &["--listen", "127.0.0.1:0"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = run_limited(
        run_cmd(
            &[],
            tmp.path(),
            &[
                "--connect",
                &sink.addr,
                "--strategies",
                "parallel-sendfile",
                "--threads",
                "2",
            ],
        ),
        LIMIT,
    );
    assert!(out.status.success(), "{}\nsink: {}", text(&out.stderr), sink.log());
    let r = &rows(tmp.path())[0];
    assert!(
        r.sink_tcp_rcv_space_bytes.is_some() && r.sink_tcp_rcv_rtt_us.is_some(),
        "{r:?}"
    );
    assert!(r.tcp_rtt_us.is_some() && r.tcp_busy_ratio.is_some(), "{r:?}");
    let sums = series_sums(&tmp.path().join("out"));
    assert_eq!(sums.values().sum::<u64>(), r.bytes_received.unwrap());
    // And with --interval 0 there is no series.
    let off = tempfile::tempdir().unwrap();
    let out = run_limited(
        run_cmd(
            &[],
            off.path(),
            &["--connect", &sink.addr, "--strategies", "sendfile", "--interval", "0"],
        ),
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!off.path().join("out/series.csv").exists());
    let plan = std::fs::read_to_string(off.path().join("out/plan.json")).unwrap();
    assert!(plan.contains(r#""interval": "0s""#), "{plan}");
}

/// `xferbench plot` on a folder without series.csv (a set from before it) draws everything but the timeline.
#[test]
fn a_set_without_series_plots_without_a_timeline() {
    let dir = tempfile::tempdir().unwrap();
    small_run(dir.path(), "2MiB")
        .args(["--strategies", "sendfile", "--interval", "0"])
        .assert()
        .success();
    xferbench().arg("plot").arg(dir.path().join("out")).assert().success();
    assert!(dir.path().join("out/throughput.png").is_file());
    assert!(!dir.path().join("out/timeline.png").exists());
}
