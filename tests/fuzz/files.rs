//! Files xferbench reads back: runs.csv (and what the readers make of its rows), summary.json (as `compare` reads
//! it), plan.json (as `run` reads it in its result folder) and the fixture's sidecar. Each starts from a real one,
//! made by a real run, and is cut short, changed, given wild values, or replaced by noise.

use super::common::{self, LIMIT, text};
use super::{bounded, cases, check, json_mutated, mutated, wild_json};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A result folder from a real run (runs.csv, summary.json, plan.json) and its fixture.
fn golden() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = two_strategies(dir.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        dir
    })
    .path()
}

/// The run that made the golden folder (a real run of two cases), in `dir`.
fn two_strategies(dir: &Path) -> std::process::Output {
    common::run_to_end(
        &[],
        dir,
        &["--strategies", "sendfile,parallel-sendfile", "--threads", "2"],
    )
}

fn golden_file(name: &str) -> Vec<u8> {
    std::fs::read(golden().join("out").join(name)).unwrap()
}

/// A folder of this thread's to write cases into, made once.
fn scratch() -> PathBuf {
    thread_local!(static DIR: tempfile::TempDir = tempfile::tempdir().unwrap());
    DIR.with(|d| d.path().to_path_buf())
}

/// The largest allocation a reader of `len` bytes of file may make: what the bytes hold, several times over
/// (copies, parsed values), and buffers; never what a number in them claims.
fn file_bound(len: usize) -> usize {
    (1 << 20) + 32 * len
}

/// Values a CSV field may be given in place of its own.
fn wild_field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("1e999".to_string()),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        Just("4294967296".to_string()),
        Just(String::new()),
        ".{0,30}",
        (1usize..20_000).prop_map(|n| "9".repeat(n)),
    ]
}

fn csv_inputs() -> impl Strategy<Value = Vec<u8>> {
    let valid = golden_file("runs.csv");
    let lines: Vec<String> = String::from_utf8(valid.clone())
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let fields = lines[0].split(',').count();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..4000),
        mutated(valid),
        // One field of a row given a wild value.
        (1..lines.len(), 0..fields, wild_field()).prop_map(move |(row, field, value)| {
            let mut lines = lines.clone();
            let mut cells: Vec<String> = lines[row].split(',').map(String::from).collect();
            cells[field] = if value.contains([',', '"', '\n']) {
                format!("\"{}\"", value.replace('"', "\"\""))
            } else {
                value
            };
            lines[row] = cells.join(",");
            (lines.join("\n") + "\n").into_bytes()
        }),
    ]
}

#[test]
fn runs_csv() {
    check("runs.csv", cases(400), LIMIT, csv_inputs, |bytes| {
        let path = scratch().join("runs.csv");
        std::fs::write(&path, &bytes).unwrap();
        let read = bounded("record::read", file_bound(bytes.len()), || {
            xferbench::record::read(&path)
        });
        if let Ok(file) = read {
            // What every reader does next: group the rows.
            let _: Vec<_> = file.rows.iter().map(|r| r.key()).collect();
        }
        Ok(())
    });
}

/// Two result folders for `compare`: the golden one, and a copy whose runs.csv or summary.json is fuzzed.
fn compare_inputs() -> impl Strategy<Value = (Option<Vec<u8>>, Option<Vec<u8>>)> {
    let summary: serde_json::Value = serde_json::from_slice(&golden_file("summary.json")).unwrap();
    let system = summary["system"].clone();
    let fuzzed_summary = prop_oneof![
        mutated(golden_file("summary.json")),
        json_mutated(summary.clone()).prop_map(|v| serde_json::to_vec(&v).unwrap()),
        // The environment record's own fields, which compare lines up item by item.
        json_mutated(system).prop_map(move |system| {
            let mut s = summary.clone();
            s["system"] = system;
            serde_json::to_vec(&s).unwrap()
        }),
    ];
    prop_oneof![
        (csv_inputs(), Just(None)).prop_map(|(c, s)| (Some(c), s)),
        (Just(None), fuzzed_summary.clone()).prop_map(|(c, s)| (c, Some(s))),
        (csv_inputs(), fuzzed_summary).prop_map(|(c, s)| (Some(c), Some(s))),
    ]
}

#[test]
fn result_folders_compared() {
    check(
        "runs.csv and summary.json (compare)",
        cases(8),
        LIMIT * 2,
        compare_inputs,
        |(csv, summary)| {
            let dir = scratch().join("compared");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("runs.csv"), csv.unwrap_or_else(|| golden_file("runs.csv"))).unwrap();
            std::fs::write(
                dir.join("summary.json"),
                summary.unwrap_or_else(|| golden_file("summary.json")),
            )
            .unwrap();
            let charts = scratch().join("charts");
            let _ = xferbench::dispatch::compare(&[golden().join("out"), dir], Some(&charts), 0.05);
            Ok(())
        },
    );
}

fn plan_inputs() -> impl Strategy<Value = Vec<u8>> {
    let valid = golden_file("plan.json");
    let value: serde_json::Value = serde_json::from_slice(&valid).unwrap();
    prop_oneof![
        mutated(valid),
        json_mutated(value).prop_map(|v| serde_json::to_vec(&v).unwrap()),
        wild_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ]
}

/// plan.json is read where `run` takes its result folder (`Folder::settle_plan`): a run on a folder holding a
/// fuzzed one goes on (the same plan) or stops with one line, exit 1.
#[test]
fn plan_json() {
    check("plan.json (run)", cases(16), LIMIT * 2, plan_inputs, |plan| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("out")).unwrap();
        std::fs::write(dir.path().join("out").join("plan.json"), &plan).unwrap();
        let out = two_strategies(dir.path());
        let err = text(&out.stderr);
        prop_assert!(matches!(out.status.code(), Some(0 | 1)), "{:?}: {err}", out.status);
        prop_assert!(!err.contains("panicked"), "{err}");
        if out.status.code() == Some(1) {
            prop_assert_eq!(
                err.lines().filter(|l| l.starts_with("xferbench: error:")).count(),
                1,
                "{}",
                err
            );
        }
        Ok(())
    });
}

fn sidecar_inputs() -> impl Strategy<Value = Vec<u8>> {
    let valid = serde_json::json!({
        "size_bytes": 4096, "seed": 7, "generator_version": 3, "created_utc": "2026-12-01T00:00:00Z",
        "xferbench_version": "0.1.0"
    });
    prop_oneof![
        mutated(serde_json::to_vec(&valid).unwrap()),
        json_mutated(valid).prop_map(|v| serde_json::to_vec(&v).unwrap()),
        proptest::collection::vec(any::<u8>(), 0..2000),
    ]
}

/// The sidecar is read where a fixture is reused (`ensure`), where a user's file may prove verifiable
/// (`open_user_file`), and by `fixture --check`.
#[test]
fn fixture_sidecar() {
    check("fixture sidecar", cases(300), LIMIT, sidecar_inputs, |sidecar| {
        let dir = scratch().join("fixtures");
        std::fs::create_dir_all(&dir).unwrap();
        let spec = xferbench::fixture::FixtureSpec {
            path: xferbench::fixture::default_path(&dir, 4096, 7),
            size: 4096,
            seed: 7,
        };
        let made = xferbench::fixture::ensure(&spec, false).expect("the fixture is made");
        std::fs::write(xferbench::fixture::sidecar_path(&spec.path), &sidecar).unwrap();
        let bound = file_bound(sidecar.len()).max(8 << 20);
        bounded("read_sidecar", bound, || xferbench::fixture::read_sidecar(&spec.path));
        bounded("open_user_file", bound, || {
            let _ = xferbench::fixture::open_user_file(&spec.path);
        });
        // Reused only when the sidecar vouches for it; else made again, whole.
        let again = bounded("ensure", bound, || xferbench::fixture::ensure(&spec, false)).expect("made or reused");
        prop_assert_eq!(again, made);
        let side = xferbench::fixture::read_sidecar(&spec.path).expect("a sidecar that parses");
        prop_assert_eq!((side.size_bytes, side.seed), (4096, 7));
        Ok(())
    });
}
