//! Reading records: the items on which two records differ (what `compare` opens with), and a listing for the
//! terminal. Both work on the flattened items, so a section added to the record shows up in both unasked.

use super::record::{Item, Record};
use serde::{Deserialize, Serialize};

/// What an item says on the side that does not have it (a vulnerability file only a newer kernel has).
pub const ABSENT: &str = "absent";

/// One item whose value differs between two records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// Dotted name, as in `Record::items`.
    pub item: String,
    /// The value in the first record, or "absent".
    pub left: String,
    /// The value in the second record, or "absent".
    pub right: String,
}

/// Every item whose value differs, kernel items first, then the rest in `items()` order; an item only one record
/// has counts as differing, "absent" on the other side.
pub fn differences(a: &Record, b: &Record) -> Vec<Difference> {
    let (left, right) = (a.items(), b.items());
    let value = |items: &[(String, String)], name: &str| {
        items
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| ABSENT.to_string(), |(_, v)| v.clone())
    };
    let mut found: Vec<Difference> = merged_names(&left, &right)
        .into_iter()
        .map(|item| Difference {
            left: value(&left, &item),
            right: value(&right, &item),
            item,
        })
        .filter(|d| d.left != d.right)
        .collect();
    // Stable: kernel items move ahead, everything keeps its order.
    found.sort_by_key(|d| !d.item.starts_with("kernel."));
    found
}

/// The names of both item lists in one order: the left's, with each name only the right has placed after the
/// name that precedes it on the right (so a vulnerability only one kernel reports stays among the others).
fn merged_names(left: &[(String, String)], right: &[(String, String)]) -> Vec<String> {
    let mut names: Vec<String> = left.iter().map(|(n, _)| n.clone()).collect();
    let mut next = 0;
    for (name, _) in right {
        match names.iter().position(|n| n == name) {
            Some(at) => next = at + 1,
            None => {
                names.insert(next, name.clone());
                next += 1;
            }
        }
    }
    names
}

/// The record for a terminal: one heading per section, then its items aligned, e.g.
/// ```text
/// kernel
///   release      6.8.0-45-generic
///   mitigations  not set
/// ```
pub fn render_text(record: &Record) -> String {
    let items = record.item_list();
    let width = items.iter().map(|i| i.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    let mut section = "";
    for Item {
        section: s,
        name,
        value,
    } in &items
    {
        if *s != section {
            section = s;
            out.push_str(section);
            out.push('\n');
        }
        out.push_str(&format!("  {name:<width$}  {value}\n"));
    }
    if record.emulated() {
        out.push_str("\nnote: the CPU was emulated (QEMU TCG): these numbers say little about real hardware\n");
    }
    out
}
