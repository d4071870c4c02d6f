//! `compare --format json`: the comparison for machines. The sets, what differs between the first and each later
//! one, and per common case each set's repetitions, median MB/s and `vs sf`, and each later set's verdict (the
//! ratio to the first with its interval); with `--fail-if-slower`, what that check found. The values are the
//! comparison's own types serialised (`Verdict`, `Estimate`, `CaseKey`, `Difference`), so a field added to them
//! appears here unasked.

use super::gate::Gate;
use super::{ResultSet, Verdict, differs, verdict};
use crate::base::env::Difference;
use crate::base::model::CaseKey;
use crate::results::stats::{Estimate, median};
use serde::Serialize;

#[derive(Serialize)]
struct Document<'a> {
    sets: Vec<Set<'a>>,
    /// For each later set: every recorded item that differs from the first set, congestion control first.
    differs: Vec<Differs<'a>>,
    cases: Vec<Case<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fail_if_slower: Option<&'a Gate>,
}

#[derive(Serialize)]
struct Set<'a> {
    name: &'a str,
    describe: &'a str,
    emulated: bool,
}

#[derive(Serialize)]
struct Differs<'a> {
    set: &'a str,
    against: &'a str,
    items: Vec<Difference>,
}

#[derive(Serialize)]
struct Case<'a> {
    case_id: String,
    #[serde(flatten)]
    key: CaseKey,
    /// One entry per set that measured the case, the first set's first.
    sets: Vec<Side<'a>>,
}

#[derive(Serialize)]
struct Side<'a> {
    set: &'a str,
    /// Ok repetitions.
    n: usize,
    median_mb_s: Option<f64>,
    file_bytes: Vec<u64>,
    passes: Vec<u32>,
    /// The case's ratio to serial sendfile in this set, paired by round, with its interval.
    vs_sendfile: Option<Estimate>,
    /// Later sets: this set's median over the first set's, and whether it differs beyond the noise.
    #[serde(skip_serializing_if = "Option::is_none")]
    against_first: Option<Verdict>,
}

/// The JSON document, pretty-printed, with a final newline.
pub fn document(
    sets: &[ResultSet],
    common: &[CaseKey],
    gate: Option<&Gate>,
    same_within: f64,
) -> anyhow::Result<String> {
    let first = &sets[0];
    let doc = Document {
        sets: sets
            .iter()
            .map(|s| Set {
                name: &s.name,
                describe: &s.describe,
                emulated: s.emulated,
            })
            .collect(),
        differs: sets[1..]
            .iter()
            .map(|o| Differs {
                set: &o.name,
                against: &first.name,
                items: differs::between(&first.facts, &o.facts),
            })
            .collect(),
        cases: common.iter().map(|k| case(sets, k, same_within)).collect(),
        fail_if_slower: gate,
    };
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

fn case<'a>(sets: &'a [ResultSet], k: &CaseKey, same_within: f64) -> Case<'a> {
    let base = sets[0].cases.get(k);
    let sides = sets
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let m = s.cases.get(k)?;
            Some(Side {
                set: &s.name,
                n: m.mb_s.len(),
                median_mb_s: median(&m.mb_s),
                file_bytes: m.file_bytes.iter().copied().collect(),
                passes: m.passes.iter().copied().collect(),
                vs_sendfile: s.ratios.get(k).and_then(|r| Estimate::of_median(r)),
                against_first: (i > 0)
                    .then(|| base.map(|b| verdict(&b.mb_s, &m.mb_s, same_within)))
                    .flatten(),
            })
        })
        .collect();
    Case {
        case_id: k.id(),
        key: *k,
        sets: sides,
    }
}
