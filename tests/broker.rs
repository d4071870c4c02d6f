//! The broker's shape end to end: every consumer of every broker strategy gets every byte (checked by the sink);
//! a consumer that stops reading holds back only itself; the broker's options are refused where they mean
//! nothing; a mixed plan keeps its plain cases as they were.

mod common;

use std::path::Path;
use xferbench::model::Status;
use xferbench::record::{ConsumerRow, Row};

/// A quiet run in `dir` with `args`, which must succeed; its rows.
fn run_ok(dir: &Path, size: &str, args: &[&str]) -> Vec<Row> {
    let out = common::run_small(dir, size, args).output().expect("xferbench runs");
    assert!(
        out.status.success(),
        "run {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        common::text(&out.stdout),
        common::text(&out.stderr)
    );
    common::csv_rows(&dir.join("out/runs.csv"))
}

#[test]
fn every_consumer_of_every_broker_strategy_gets_every_byte() {
    let tmp = common::tmp();
    let rows = run_ok(
        tmp.path(),
        "3MiB",
        &[
            "--strategies",
            "broker-sendfile,broker-read-send,broker-tls-read-send,broker-ktls-sendfile",
            "--consumers",
            "1,3,7",
            "--network-threads",
            "2",
            // Fetches that end mid-file, and mid-read for the read paths.
            "--fetch-size",
            "100KiB",
            "--cache",
            "warm,cold",
            "--passes",
            "2",
            "--repeat",
            "1",
            "--verify",
        ],
    );
    assert_eq!(rows.len(), 4 * 3 * 2, "one row per case");
    for r in &rows {
        let consumers = r.consumers.expect("a broker row records its consumers");
        assert_eq!(r.status, Status::Ok, "{}: {}", r.case_id, r.error);
        assert!(r.verified, "{}", r.case_id);
        assert_eq!((r.threads, r.fetch_bytes), (2, Some(100 << 10)), "{}", r.case_id);
        let each = 3u64 << 21;
        assert_eq!(r.bytes_received, Some(each * u64::from(consumers)), "{}", r.case_id);
        assert_eq!(r.bytes_sent, each * u64::from(consumers));
        assert!(r.consumer_jain.is_some_and(|j| j > 0.0 && j <= 1.0), "{}", r.case_id);
        assert!(r.consumer_slowest_s >= r.consumer_median_s);
        // The path is the strategy's own, or tls-read-send for ktls-sendfile where the kernel has no tls module.
        let fell_back = r.path.method.to_string() == "tls-read-send" && !r.fallback_reason.is_empty();
        assert!(r.path == r.strategy || fell_back, "{} ran as {}", r.strategy, r.path);
    }
    let lines = common::consumer_rows(&tmp.path().join("out"));
    assert_eq!(lines.len(), 4 * (1 + 3 + 7) * 2, "one line per consumer and repetition");
    for l in &lines {
        assert_eq!(l.bytes, 3 << 21, "consumer {} of {}", l.consumer, l.case_id);
        assert!(
            l.last_byte_s >= l.first_byte_s && l.mb_s.is_some_and(|m| m > 0.0),
            "{l:?}"
        );
        assert_eq!(l.network_thread, l.consumer % 2);
    }
}

#[test]
fn a_stalled_consumer_holds_back_only_itself() {
    let tmp = common::tmp();
    // One network thread serves all four: a consumer whose socket stays full must not hold the thread. The file
    // is several times what the socket buffers of one connection hold.
    let rows = run_ok(
        tmp.path(),
        "48MiB",
        &[
            "--strategies",
            "broker-sendfile,broker-read-send",
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
            "--verify",
        ],
    );
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(r.status, Status::Ok, "{}: {}", r.case_id, r.error);
        assert_eq!(r.stalled_consumers, Some(1));
        // The row says one consumer took longer than the rest.
        assert!(r.consumer_slowest_s > r.consumer_median_s, "{}", r.case_id);
    }
    let lines = common::consumer_rows(&tmp.path().join("out"));
    for rep in lines.chunk_by(|a, b| (&a.case_id, a.round) == (&b.case_id, b.round)) {
        let (stalled, others): (Vec<&ConsumerRow>, Vec<&ConsumerRow>) = rep.iter().partition(|l| l.stalled);
        assert_eq!((stalled.len(), others.len()), (1, 3), "{rep:?}");
        assert_eq!(stalled[0].consumer, 0);
        let others_done = others.iter().filter_map(|l| l.last_byte_s).fold(0.0, f64::max);
        // It read nothing until the others had all their bytes: its first byte came after their last.
        assert!(stalled[0].first_byte_s.unwrap() >= others_done, "{rep:?}");
        // And the others went at their own pace (well under a second here): a network thread that waited on the
        // full socket (a blocking send woken every 500 ms by its timeout) would take tens of seconds.
        assert!(others_done < 10.0, "the others took {others_done} s: {rep:?}");
    }
    let table = common::text(
        &common::xferbench()
            .args(["table".as_ref(), tmp.path().join("out").as_os_str()])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(
        table.contains("4 consumers (1 told to stall) over 1 network thread"),
        "{table}"
    );
}

#[test]
fn the_broker_options_are_refused_where_they_mean_nothing() {
    let tmp = common::tmp();
    let refused = |args: &[&str], needle: &str| {
        let out = common::run_small(tmp.path(), "1MiB", args).output().unwrap();
        common::assert_fails(&out, 2, needle);
    };
    refused(
        &["--strategies", "broker-sendfile", "--consumers", "0"],
        "'--consumers'",
    );
    refused(
        &["--strategies", "broker-sendfile", "--network-threads", "0"],
        "'--network-threads'",
    );
    refused(
        &["--strategies", "broker-sendfile", "--fetch-size", "0"],
        "'--fetch-size'",
    );
    refused(
        &["--strategies", "sendfile", "--consumers", "4"],
        "--consumers shapes broker-X cases",
    );
    refused(&["--fetch-size", "1MiB"], "--fetch-size shapes broker-X cases");
    refused(
        &[
            "--strategies",
            "broker-sendfile",
            "--consumers",
            "2,4",
            "--stalled-consumers",
            "2",
        ],
        "--stalled-consumers 2 leaves no consumer reading",
    );
    refused(
        &["--strategies", "broker-splice"],
        "invalid value 'broker-splice' for '--strategies'",
    );
}

#[test]
fn a_mixed_plan_shapes_only_its_broker_cases() {
    let tmp = common::tmp();
    let out = common::run_small(
        tmp.path(),
        "1MiB",
        &[
            "--strategies",
            "sendfile,parallel-sendfile,broker-sendfile",
            "--threads",
            "2",
            "--consumers",
            "2,5",
            "--chunk",
            "64KiB,256KiB",
            "--preset",
            "kafka",
            "--dry-run",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let plan = common::text(&out.stdout);
    // Two chunks each for the plain cases; one broker case per consumer count, whatever --chunk says.
    for needle in [
        "sendfile, 64 KiB",
        "sendfile, 256 KiB",
        "parallel-sendfile ×2 striped, 64 KiB",
        "broker-sendfile, 2 consumers, 3 network threads, fetch 1 MiB",
        "broker-sendfile, 5 consumers, 3 network threads, fetch 1 MiB",
    ] {
        assert!(plan.contains(needle), "{needle} not in:\n{plan}");
    }
    assert_eq!(plan.matches("broker-sendfile,").count(), 2, "{plan}");
}

#[test]
fn a_sink_of_its_own_serves_every_consumer_and_stalls_the_one_told() {
    let sink = common::Sink::start(&[], &["--listen", "127.0.0.1:0", "--quiet"]);
    let tmp = common::tmp();
    let out = common::run_to_end(
        &[],
        tmp.path(),
        &[
            "--connect",
            &sink.addr,
            "--strategies",
            "broker-sendfile,broker-tls-read-send",
            "--consumers",
            "5",
            "--stalled-consumers",
            "2",
            "--verify",
        ],
    );
    common::assert_ran(&out, &sink);
    let rows = common::rows(tmp.path());
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert!(r.is_ok() && r.verified, "{}: {}", r.case_id, r.error);
        assert_eq!(r.bytes_received, Some(5 * (4 << 20)));
    }
    let lines = common::consumer_rows(&tmp.path().join("out"));
    assert_eq!(lines.iter().filter(|l| l.stalled).count(), 4, "two of five, twice");
    for rep in lines.chunk_by(|a, b| a.case_id == b.case_id) {
        let others = rep
            .iter()
            .filter(|l| !l.stalled)
            .filter_map(|l| l.last_byte_s)
            .fold(0.0, f64::max);
        assert!(
            rep.iter().filter(|l| l.stalled).all(|l| l.first_byte_s >= Some(others)),
            "{rep:?}"
        );
    }
}
