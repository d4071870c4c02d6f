//! `report.html`: one self-contained page per result folder (written by `run` at its end and by `plot`) and per
//! comparison (`compare --out`), to read in any browser and to share. Everything is inline: the charts as SVG,
//! the style in the page; nothing is loaded from anywhere. A folder's page holds the answer first (the ratio
//! chart), then the table with its intervals, the notes, every chart, the run's settings and the environment it
//! ran in; a comparison's holds its Markdown as HTML and its charts. The JSON of `table --format json` lives here
//! too (`json`): the same summary, for machines.

mod html;
mod json;

pub use json::table_json;

use crate::base::env::Record;
use crate::commands::plot::{self, ToSvg};
use crate::results::record::Row;
use crate::results::summary::{case_table, cc_line, notes};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The file name of the report in a folder.
pub const REPORT: &str = "report.html";

/// Writes `dir/report.html` from the folder's runs.csv, summary.json and plan.json; returns its path.
pub fn write_folder(dir: &Path) -> anyhow::Result<PathBuf> {
    write_folder_rows(dir, &crate::results::record::read_rows(dir)?)
}

/// `write_folder` with the folder's rows already read (once: a torn last row is reported once).
fn write_folder_rows(dir: &Path, rows: &[Row]) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(!rows.is_empty(), "'{}' has no rows", dir.join("runs.csv").display());
    let ok: Vec<Row> = rows.iter().filter(|r| r.is_ok()).cloned().collect();
    let mut charts = ToSvg::default();
    if !ok.is_empty() {
        plot::figures(dir, &ok, &mut charts)?;
    }
    let summary = read_json(&dir.join("summary.json"));
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let mut body = about_run(summary.as_ref());
    let (answer, others): (Vec<_>, Vec<_>) = charts.svgs.iter().partition(|(stem, _)| stem == "ratio");
    if let Some((stem, svg)) = answer.first() {
        body.push_str(&html::section(
            "answer",
            "The answer: each case against serial sendfile",
            &html::figure(stem, svg, CAPTIONS.iter().find(|(s, _)| s == stem).map_or("", |c| c.1)),
        ));
    }
    body.push_str(&cases_section(rows, plot::margin_of(dir)));
    let figures: String = others
        .iter()
        .map(|(stem, svg)| html::figure(stem, svg, CAPTIONS.iter().find(|(s, _)| s == stem).map_or("", |c| c.1)))
        .collect();
    body.push_str(&html::section("charts", "Charts", &figures));
    body.push_str(&settings_section(dir));
    body.push_str(&environment_section(summary.as_ref()));
    write_page(dir, &html::page(&format!("xferbench: {name}"), &body))
}

/// `xferbench plot DIR` (and `run --plot`): every chart into the folder, then report.html; returns the files
/// written, the report last.
pub fn plot_dir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let rows = crate::results::record::read_rows(dir)?;
    let mut files = plot::plot_rows(dir, &plot::ok_of(dir, rows.clone())?)?;
    files.push(write_folder_rows(dir, &rows)?);
    Ok(files)
}

/// Writes `out/report.html` for a comparison: its Markdown and its charts (SVG text by stem).
pub fn write_comparison(out: &Path, markdown: &str, charts: &[(String, String)]) -> anyhow::Result<PathBuf> {
    let mut body = html::markdown(markdown.trim_start_matches("# xferbench compare").trim_start());
    let figures: String = charts
        .iter()
        .map(|(stem, svg)| html::figure(stem, svg, CAPTIONS.iter().find(|(s, _)| s == stem).map_or("", |c| c.1)))
        .collect();
    body = html::section("charts", "Charts", &figures) + &html::section("comparison", "The comparison", &body);
    write_page(out, &html::page("xferbench compare", &body))
}

/// What each chart shows, under it.
const CAPTIONS: &[(&str, &str)] = &[
    (
        "ratio",
        "Each case's median ratio to serial sendfile (a broker case's to broker-sendfile; paired round by round) \
         with its interval; a filled point's interval leaves out 1.00, a hollow one (≈) holds it but reaches \
         beyond the margin (not distinguishable here), a square (=) lies within the margin (--same-within): the \
         same within it.",
    ),
    (
        "throughput",
        "MB/s against connections: medians with min-max whiskers; serial strategies as dashed lines.",
    ),
    (
        "consumers",
        "A broker's cases against their consumers: aggregate MB/s, CPU seconds per GB and Jain's fairness index \
         (medians).",
    ),
    (
        "cpu",
        "CPU seconds per GB: sender user and system, sink, softirq (medians).",
    ),
    ("switches", "Context switches per GB (medians)."),
    (
        "latency",
        "Latency of one transfer call: p50, p99 and max (medians over repetitions).",
    ),
    (
        "timeline",
        "Bytes per interval through each repetition, as the sink counted them.",
    ),
    ("compare", "Median MB/s of every common case, one bar per result set."),
    (
        "compare-ratio",
        "Each later set's median MB/s over the first set's, with the exact rank interval of that ratio (a square: \
         the same within the margin); a cross: too few repetitions to tell.",
    ),
];

/// The folder's summary.json or plan.json as JSON, if it reads.
fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// A JSON value as one line of text: strings bare, null as `-`.
fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The lines at the top: how the run ended and what made it.
fn about_run(summary: Option<&serde_json::Value>) -> String {
    let Some(s) = summary else {
        return "<p>No summary.json in this folder: the table and charts come from runs.csv alone.</p>\n".into();
    };
    let mut items: Vec<(String, String)> = Vec::new();
    for (key, words) in [
        ("run_id", "run"),
        ("state", "state"),
        ("file", "file"),
        ("file_bytes", "file bytes"),
    ] {
        if let Some(v) = s.get(key) {
            items.push((words.into(), text_of(v)));
        }
    }
    if let Some(r) = s.get("rounds") {
        let undecided = r.get("undecided").and_then(|u| u.as_array()).map_or(0, Vec::len);
        items.push((
            "rounds".into(),
            format!(
                "{} (stopped: {}; cases not within --ci: {undecided})",
                text_of(&r["last"]),
                text_of(&r["stop"])
            ),
        ));
    }
    if let Some(cmd) = s.pointer("/environment/command_line") {
        items.push(("command line".into(), text_of(cmd)));
    }
    html::pairs(&items)
}

/// The table (with its intervals) and the notes, as `xferbench table` prints them, each ratio judged against
/// `same_within` (the run's own margin).
fn cases_section(rows: &[Row], same_within: f64) -> String {
    let cases = crate::results::summary::summarise_within(rows, same_within);
    let mut inner = format!("<p>{}</p>\n", html::esc(cc_line(&cases).trim()));
    inner.push_str(&case_table(&cases).html().replacen("<table>", "<table id=\"cases\">", 1));
    inner.push_str(&format!(
        "<p>median: MB/s (10<sup>6</sup> bytes/s), every pass counted; n: ok repetitions; vs sf: the median of the \
         per-round ratios to serial sendfile (a broker case's to broker-sendfile) with its interval (95%, or the \
         level after it, floored, where there were too few rounds); =: the interval lies within {} of 1.00 \
         (--same-within), the same as sendfile within it; ≈: the interval holds 1.00 but reaches beyond that \
         margin, not distinguishable from sendfile here and not shown the same. docs/output.md describes every \
         column.</p>\n",
        crate::results::stats::margin_text(same_within)
    ));
    let notes: Vec<String> = notes(&cases)
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .map(|l| format!("<li>{}</li>\n", html::esc(l)))
        .collect();
    if !notes.is_empty() {
        inner.push_str(&format!("<h3>Notes</h3>\n<ul id=\"notes\">\n{}</ul>\n", notes.concat()));
    }
    html::section("table", "Table", &inner)
}

/// Every run setting of plan.json, and the cases.
fn settings_section(dir: &Path) -> String {
    let Some(serde_json::Value::Object(plan)) = read_json(&dir.join("plan.json")) else {
        return html::section("settings", "Settings", "<p>No plan.json in this folder.</p>\n");
    };
    let items: Vec<(String, String)> = plan
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::Array(list) => (k.clone(), list.iter().map(text_of).collect::<Vec<_>>().join("\n")),
            v => (format!("--{}", k.replace('_', "-")), text_of(v)),
        })
        .collect();
    html::section("settings", "Settings", &html::pairs(&items))
}

/// The machine in short, then every item of the environment record (what `xferbench env` shows).
fn environment_section(summary: Option<&serde_json::Value>) -> String {
    let mut inner = String::new();
    if let Some(serde_json::Value::Object(env)) = summary.and_then(|s| s.get("environment")) {
        let short: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| *k != "command_line")
            .map(|(k, v)| (k.clone(), text_of(v)))
            .collect();
        inner.push_str(&html::pairs(&short));
    }
    match summary
        .and_then(|s| s.get("system").cloned())
        .and_then(|v| serde_json::from_value::<Record>(v).ok())
    {
        Some(record) => inner.push_str(&format!(
            "<h3>Everything recorded</h3>\n{}",
            html::pairs(&record.items())
        )),
        None => inner.push_str("<p>No environment record (a set made before xferbench kept one).</p>\n"),
    }
    html::section("environment", "Environment", &inner)
}

/// Writes the page beside, then renames it into place: a reader never sees half a report.
fn write_page(dir: &Path, page: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(REPORT);
    let tmp = dir.join(format!(".{REPORT}.tmp"));
    std::fs::write(&tmp, page).with_context(|| format!("cannot write '{}'", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write '{}'", path.display()))?;
    Ok(path)
}
