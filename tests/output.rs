//! What machines and people read: `--format json` of `run`, `table`, `compare` and `env` parses and holds the
//! intervals; `compare --fail-if-slower` exits 3 naming a slower case and 0 otherwise; and report.html, opened in a
//! real headless browser (Debian's chromium, which .ci/run installs), holds the table, the notes and the charts.

mod common;

use common::{tmp, xferbench};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/compare")
        .join(name)
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// An interval as the JSON holds it: a median inside [lo, hi], a level in (0, 1], n values.
fn assert_interval(e: &Value, n: u64) {
    let f = |k: &str| e[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {e}"));
    assert!(f("lo") <= f("median") && f("median") <= f("hi"), "{e}");
    assert!(f("level") > 0.0 && f("level") <= 1.0, "{e}");
    assert_eq!(e["n"].as_u64(), Some(n), "{e}");
}

/// A small real run: the summary on stdout as JSON, the table on stderr, report.html in the folder.
#[test]
fn run_prints_its_summary_as_json_and_writes_a_report() {
    let dir = tmp();
    let out = dir.path().join("out");
    let assert = common::run_small(
        dir.path(),
        "2MiB",
        &["--strategies", "sendfile,read-send", "--repeat", "3"],
    )
    .args(["--format", "json"])
    .assert()
    .success();
    let output = assert.get_output();
    let doc = json_of(&output.stdout);
    assert_eq!(doc["state"], "finished", "{doc}");
    assert_eq!(doc["rounds"]["last"], 3, "{doc}");
    let cases = doc["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 2);
    let read_send = cases.iter().find(|c| c["strategy"] == "read-send").expect("read-send");
    assert_interval(&read_send["vs_sendfile"], 3);
    assert_interval(&read_send["throughput_mb_s"], 3);
    assert!(
        read_send["flags"].is_array() && read_send["advice"].is_array(),
        "{read_send}"
    );
    // The same document as summary.json, and the table for people on stderr.
    assert_eq!(doc, common::summary(&out));
    assert!(String::from_utf8_lossy(&output.stderr).contains("vs sf [interval]"));
    assert!(out.join("report.html").is_file());
}

#[test]
fn table_and_env_print_json() {
    let assert = xferbench()
        .args(["table", "--format", "json"])
        .arg(fixture("kernel-a"))
        .assert()
        .success();
    let doc = json_of(&assert.get_output().stdout);
    let cases = doc["cases"].as_array().expect("cases");
    let par = cases
        .iter()
        .find(|c| c["strategy"] == "parallel-sendfile" && c["threads"] == 4 && c["cache"] == "warm")
        .expect("parallel-sendfile ×4 warm");
    assert_interval(&par["vs_sendfile"], 4);
    assert_eq!(par["ok_runs"], 4);
    let env = xferbench().args(["env", "--format", "json"]).assert().success();
    let record = json_of(&env.get_output().stdout);
    assert!(record["kernel"]["release"].is_string(), "{record}");
    assert!(record["net"]["sysctl"]["net.ipv4.tcp_congestion_control"].is_string());
}

#[test]
fn compare_prints_json_with_verdicts() {
    let assert = xferbench()
        .args(["compare", "--format", "json"])
        .arg(fixture("kernel-a"))
        .arg(fixture("kernel-b"))
        .assert()
        .success();
    let doc = json_of(&assert.get_output().stdout);
    assert_eq!(doc["sets"][1]["name"], "kernel-b");
    let items = doc["differs"][0]["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .any(|d| d["item"] == "kernel.release" && d["right"] == "6.18.0"),
        "{items:?}"
    );
    let case = |strategy: &str, threads: u64, cache: &str| {
        doc["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| c["strategy"] == strategy && c["threads"] == threads && c["cache"] == cache)
            .unwrap_or_else(|| panic!("{strategy} ×{threads} {cache}"))
            .clone()
    };
    let warm = case("parallel-sendfile", 2, "warm");
    let b = &warm["sets"][1]["against_first"];
    assert_eq!(b["verdict"], "differs", "{warm}");
    assert!(
        b["estimate"]["lo"].as_f64().unwrap() > 1.5 && b["estimate"]["hi"].as_f64().unwrap() < 2.5,
        "{b}"
    );
    assert_eq!(warm["sets"][0]["n"], 4);
    assert!(
        warm["sets"][0].get("against_first").is_none(),
        "the first set is the baseline"
    );
    let cold = case("sendfile", 1, "cold");
    assert_eq!(cold["sets"][1]["against_first"]["verdict"], "too-few", "{cold}");
}

/// kernel-b's warm parallel cases are twice kernel-a's: a against b is a regression, b against a is not; the
/// cold cases (3 repetitions a side) are too few to tell and never fail.
#[test]
fn fail_if_slower_exits_3_and_names_the_cases_only_when_slower() {
    let slower = xferbench()
        .arg("compare")
        .arg(fixture("kernel-b"))
        .arg(fixture("kernel-a"))
        .args(["--fail-if-slower", "5%"])
        .assert()
        .code(3);
    let err = String::from_utf8_lossy(&slower.get_output().stderr).to_string();
    assert!(
        err.contains("3 case(s) slower than the first set by more than 5.0%"),
        "{err}"
    );
    assert!(
        err.contains("kernel-a: parallel-sendfile ×4 (warm) 0.50x [0.4"),
        "{err}"
    );
    assert!(err.contains("too few repetitions to tell, not failed"), "{err}");
    // Slower by half, so a 60% margin lets it pass.
    xferbench()
        .arg("compare")
        .arg(fixture("kernel-b"))
        .arg(fixture("kernel-a"))
        .args(["--fail-if-slower", "60"])
        .assert()
        .code(0);
    let faster = xferbench()
        .arg("compare")
        .arg(fixture("kernel-a"))
        .arg(fixture("kernel-b"))
        .args(["--fail-if-slower", "5%", "--format", "json"])
        .assert()
        .code(0);
    let doc = json_of(&faster.get_output().stdout);
    assert_eq!(
        doc["fail_if_slower"]["slower"].as_array().map(Vec::len),
        Some(0),
        "{doc}"
    );
    assert_eq!(doc["fail_if_slower"]["threshold"], 0.05);
    xferbench()
        .arg("compare")
        .arg(fixture("kernel-a"))
        .arg(fixture("kernel-b"))
        .args(["--fail-if-slower", "150%"])
        .assert()
        .code(2);
}

/// The browser this test drives, if the machine has one.
fn chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// The DOM of `page` after a headless chromium loaded it from disk.
fn browser_dom(browser: &Path, page: &Path) -> String {
    let profile = tmp();
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg("--dump-dom")
    .arg(format!("file://{}", page.display()));
    let out = common::run_limited(cmd, Duration::from_secs(90));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains("</html>"),
        "chromium did not load {}: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// report.html of a result folder and of a comparison, as a browser builds them: the table with its intervals,
/// the notes, the charts as SVG, the settings and the environment; nothing fetched from anywhere.
#[test]
fn reports_hold_the_table_and_the_charts_in_a_browser() {
    let Some(browser) = chromium() else {
        let required = std::env::var_os("CI").is_some_and(|v| !v.is_empty())
            || std::env::var_os("XFERBENCH_REQUIRE_BROWSER").is_some_and(|v| v == "1");
        assert!(
            !required,
            "no chromium, and this is CI: .ci/run installs it (apt-get install chromium)"
        );
        eprintln!(
            "\n\n*** SKIPPED: no chromium on this machine (apt-get install chromium); report.html untested ***\n"
        );
        return;
    };
    let set = tmp();
    std::fs::copy(fixture("kernel-a").join("runs.csv"), set.path().join("runs.csv")).unwrap();
    xferbench().arg("plot").arg(set.path()).assert().success();
    let page = set.path().join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // SVG's namespace names a URL without loading it; nothing else may.
    let rest = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for banned in [
        "http:", "https:", "<script", "<link", "src=", "href=", "url(", "@import",
    ] {
        assert!(
            !rest.contains(banned),
            "report.html holds {banned:?}: it must load nothing"
        );
    }
    let dom = browser_dom(&browser, &page);
    assert!(dom.contains("<table id=\"cases\">"), "no table in the DOM");
    assert!(dom.contains("x [") && dom.contains("–"), "no interval in the table");
    assert!(dom.contains("id=\"notes\""), "no notes");
    for stem in ["ratio", "throughput", "cpu", "switches", "latency"] {
        assert!(dom.contains(&format!("id=\"chart-{stem}\"")), "no {stem} chart");
    }
    assert_eq!(dom.matches("<svg").count(), html.matches("<svg").count());
    assert!(
        dom.find("chart-ratio") < dom.find("id=\"cases\""),
        "the answer comes first"
    );
    assert!(dom.contains("id=\"settings\"") && dom.contains("id=\"environment\""));

    let out = tmp();
    xferbench()
        .arg("compare")
        .arg(fixture("kernel-a"))
        .arg(fixture("kernel-b"))
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let dom = browser_dom(&browser, &out.path().join("report.html"));
    for needle in [
        "id=\"chart-compare-ratio\"",
        "id=\"chart-compare\"",
        "<th>strategy</th>",
        "What differs",
    ] {
        assert!(dom.contains(needle), "compare's report lacks {needle}");
    }
}
