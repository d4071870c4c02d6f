use super::*;
use crate::base::model::Status;

fn row(strategy: &str, mb_s: f64, status: Status) -> Row {
    let strategy: crate::base::model::Strategy = strategy.parse().unwrap();
    Row {
        strategy,
        path: strategy,
        threads: if strategy.is_parallel() { 4 } else { 1 },
        layout: if strategy.is_parallel() {
            crate::base::model::Layout::Striped
        } else {
            crate::base::model::Layout::Single
        },
        rx_mode: Some(crate::base::model::RxMode::Copy),
        rx_buffer_bytes: Some(1 << 18),
        chunk_bytes: 10,
        file_bytes: 1_000_000_000,
        passes: 1,
        throughput_mb_s: mb_s,
        wall_s: 1000.0 / mb_s,
        status,
        ..Row::default()
    }
}

fn in_round(strategy: &str, mb_s: f64, round: u32) -> Row {
    Row {
        round,
        repetition: round,
        ..row(strategy, mb_s, Status::Ok)
    }
}

#[test]
fn medians_ratios_and_flags() {
    let rows = vec![
        in_round("sendfile", 1000.0, 1),
        in_round("sendfile", 1100.0, 2),
        in_round("sendfile", 1050.0, 3),
        in_round("parallel-sendfile", 3000.0, 1),
        in_round("parallel-sendfile", 2000.0, 2),
        Row {
            round: 3,
            ..row("parallel-sendfile", 0.0, Status::ConnectionReset)
        },
    ];
    let cases = summarise(&rows);
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0].metrics.throughput_mb_s.unwrap().median, 1050.0);
    assert_eq!(cases[1].ok_runs, 2);
    assert_eq!(cases[1].failed_runs, 1);
    // Paired by round: 3000/1000 and 2000/1100.
    let vs = cases[1].vs_sendfile.unwrap();
    assert_eq!(vs.n, 2);
    assert!((vs.median - (3.0 + 2000.0 / 1100.0) / 2.0).abs() < 1e-9, "{vs:?}");
    assert!(cases[0].vs_sendfile.is_none() && cases[0].is_baseline());
    assert!(cases[1].flags.contains(&CaseFlag::Spread));
    assert!(cases[1].flags.contains(&CaseFlag::Failed(1)));
    assert!(!cases[0].flags.contains(&CaseFlag::Spread));
    let text = table(&cases);
    assert!(text.contains("2.41x [1.82–3.00] 50%"), "{text}");
    assert!(text.contains("base"), "{text}");
    assert!(text.contains("failed:1"), "{text}");
    assert!(text.starts_with("congestion control: not recorded\n"), "{text}");
}

#[test]
fn pairing_cancels_drift_that_unpaired_medians_keep() {
    // The machine halves its speed every other round; the parallel case is 1.5x sendfile in each round.
    let mut rows = Vec::new();
    for round in 1..=8u32 {
        let speed = if round % 2 == 0 { 2000.0 } else { 1000.0 };
        rows.push(in_round("sendfile", speed, round));
        rows.push(in_round("parallel-sendfile", speed * 1.5, round));
    }
    let cases = summarise(&rows);
    let vs = cases[1].vs_sendfile.unwrap();
    assert_eq!((vs.median, vs.lo, vs.hi, vs.n), (1.5, 1.5, 1.5, 8));
    assert!(vs.full_level());
    let deciding = deciding_values(&rows);
    assert_eq!(
        deciding[&cases[1].key], [1.5; 8],
        "a case with a baseline is decided on its ratios"
    );
    assert_eq!(deciding[&cases[0].key].len(), 8, "the baseline on its MB/s");
    assert!(table(&cases).contains("1.50x [1.50–1.50]"));
}

#[test]
fn a_ratio_whose_interval_holds_one_is_not_a_win() {
    let mut rows = Vec::new();
    for (round, r) in [1.1, 0.9, 1.2, 0.95, 1.05, 1.0].into_iter().enumerate() {
        rows.push(in_round("sendfile", 1000.0, round as u32 + 1));
        rows.push(in_round("read-send", 1000.0 * r, round as u32 + 1));
    }
    let cases = summarise(&rows);
    let vs = cases[1].vs_sendfile.unwrap();
    assert!(vs.holds(1.0) && vs.full_level());
    let text = table(&cases);
    assert!(text.contains("≈1.02x [0.90–1.20]"), "{text}");
}

#[test]
fn two_modes_are_flagged_with_both_and_one_is_not() {
    let bimodal: Vec<Row> = [1600.0, 1450.0, 4010.0, 1720.0, 3950.0, 1580.0, 4100.0, 1650.0]
        .iter()
        .enumerate()
        .map(|(i, &v)| in_round("sendfile", v, i as u32 + 1))
        .collect();
    let cases = summarise(&bimodal);
    assert!(cases[0].flags.contains(&CaseFlag::Bimodal), "{:?}", cases[0].flags);
    assert!(!cases[0].flags.contains(&CaseFlag::Spread), "one flag for one cause");
    let note = cases[0].advice.iter().find(|a| a.starts_with("bimodal")).unwrap();
    assert!(
        note.contains("5 repetition(s) near 1.60 GB/s, 3 near 4.01 GB/s"),
        "{note}"
    );
    let text = table(&cases);
    assert!(text.contains("GB/s*"), "the median carries its mark:\n{text}");
    let steady: Vec<Row> = [1000.0, 1040.0, 980.0, 1100.0, 950.0, 1020.0, 1060.0, 990.0]
        .iter()
        .enumerate()
        .map(|(i, &v)| in_round("sendfile", v, i as u32 + 1))
        .collect();
    let cases = summarise(&steady);
    assert!(cases[0].modes.is_none() && !cases[0].flags.contains(&CaseFlag::Bimodal));
}

#[test]
fn the_noise_note_names_what_set_the_slow_repetitions_apart() {
    let mut rows = Vec::new();
    for round in 1..=8u32 {
        let slow = round % 2 == 0;
        let mut r = in_round("sendfile", if slow { 1500.0 } else { 4000.0 }, round);
        r.sender_runq_wait_s = Some(if slow { 0.2 * r.wall_s } else { 0.01 * r.wall_s });
        r.sink_runq_wait_s = Some(0.0);
        r.steal_s = Some(0.0);
        r.sender_cpus_seen = if slow { "0".into() } else { "1".into() };
        r.sink_cpus_seen = "0".into();
        rows.push(r);
    }
    let cases = summarise(&rows);
    let advice = cases[0].advice.join("\n");
    assert!(
        advice.contains("waited on a run queue for 20% of their timed section"),
        "{advice}"
    );
    assert!(
        advice.contains("sender and sink ran on one CPU in 4 of 4 slow repetitions and 0 of 4"),
        "{advice}"
    );
    // Noise alike on both sides: nothing recorded tells them apart, and the note says so.
    for r in &mut rows {
        r.sender_runq_wait_s = Some(0.0);
        r.sender_cpus_seen = "1".into();
    }
    let advice = summarise(&rows)[0].advice.join("\n");
    assert!(
        advice.contains("does not tell the 4 slow repetitions from the 4 fast ones"),
        "{advice}"
    );
}

#[test]
fn a_pacing_congestion_control_on_loopback_is_flagged_and_named_above_the_table() {
    let bbr = Some(Cc::new("bbr").unwrap());
    let rows = vec![Row {
        congestion_control: bbr,
        transport: Transport::Loopback,
        ..in_round("sendfile", 2000.0, 1)
    }];
    let cases = summarise(&rows);
    assert!(cases[0].flags.contains(&CaseFlag::Paced));
    let text = table(&cases);
    assert!(
        text.starts_with("congestion control: bbr (paces even loopback"),
        "{text}"
    );
    let cubic = vec![Row {
        congestion_control: Some(Cc::new("cubic").unwrap()),
        ..rows[0].clone()
    }];
    assert!(!summarise(&cubic)[0].flags.contains(&CaseFlag::Paced));
}

#[test]
fn short_runs_are_flagged() {
    let rows = vec![row("sendfile", 10_000.0, Status::Ok)];
    assert!(summarise(&rows)[0].flags.contains(&CaseFlag::ShortRun));
}

#[test]
fn per_gb_figures_count_every_pass_and_absent_metrics_stay_absent() {
    let mut r = row("sendfile", 1000.0, Status::Ok);
    r.passes = 4;
    r.sender_sys_s = 2.0;
    let cases = summarise(&[r]);
    assert_eq!(cases[0].metrics.sender_cpu_s_per_gb.unwrap().median, 0.5);
    assert_eq!(cases[0].passes, [4]);
    // No sink report: no sink figure, in the summary and in summary.json.
    assert!(cases[0].metrics.sink_cpu_s_per_gb.is_none());
    let json = serde_json::to_value(&cases[0]).unwrap();
    assert!(json["metrics"].get("sink_cpu_s_per_gb").is_none(), "{json}");
    assert!(json["metrics"]["throughput_mb_s"]["median"].is_number(), "{json}");
}

#[test]
fn cases_one_field_apart_stay_apart() {
    let base = row("sendfile", 1000.0, Status::Ok);
    let variants = [
        Row {
            cache: crate::base::model::Cache::Cold,
            ..base.clone()
        },
        Row {
            chunk_bytes: 20,
            ..base.clone()
        },
        Row {
            rx_mode: Some(crate::base::model::RxMode::Trunc),
            ..base.clone()
        },
        Row {
            rx_buffer_bytes: Some(1 << 20),
            ..base.clone()
        },
        Row {
            verify: true,
            ..base.clone()
        },
        Row {
            queue_depth: Some(8),
            ..base.clone()
        },
        Row {
            congestion_control: Some(Cc::new("cubic").unwrap()),
            ..base.clone()
        },
    ];
    for v in variants {
        let cases = summarise(&[base.clone(), v.clone()]);
        assert_eq!(cases.len(), 2, "{v:?}");
        let json = serde_json::to_value(&cases).unwrap();
        assert_ne!(json[0]["case_id"], json[1]["case_id"]);
        let text = table(&cases);
        let lines: Vec<&str> = text.lines().skip(3).take(2).collect();
        assert_ne!(lines[0], lines[1]);
    }
}
