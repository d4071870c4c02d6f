//! `xferbench table DIR --format json`: the folder's summary for machines. It is summary.json (what `run` wrote,
//! and `run --format json` prints) with its `cases` summarised afresh from runs.csv, so that it says what the text
//! table says; a folder without summary.json gets `{"cases": [...]}` alone. Every field comes from the summary's
//! own types (`summary::CaseSummary`), so a field added to them appears here unasked.

use crate::results::summary::{CaseSummary, summarise_within};
use serde::Serialize;
use std::path::Path;

/// summary.json's fields beside `cases`, which come last and in the summary's own field order.
#[derive(Serialize)]
struct Document {
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
    cases: Vec<CaseSummary>,
}

/// The JSON document, pretty-printed, with a final newline; each verdict judged against `same_within`.
pub fn table_json(dir: &Path, same_within: f64) -> anyhow::Result<String> {
    let rows = crate::results::record::read_rows(dir)?;
    anyhow::ensure!(!rows.is_empty(), "'{}' has no rows", dir.join("runs.csv").display());
    let mut rest = std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).ok())
        .unwrap_or_default();
    rest.remove("cases");
    let doc = Document {
        rest,
        cases: summarise_within(&rows, same_within),
    };
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}
