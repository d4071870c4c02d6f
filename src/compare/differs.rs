//! What differs between result sets besides the cases: the machine (every item of the environment record that
//! summary.json carries, kernel first) and the run's settings (file size, passes, receiver, socket options,
//! pinning, from the rows). A kernel comparison that also changed a sysctl, the mitigations or the CPU governor
//! says so before any number is read.

use crate::env::{self, Difference, Record};
use crate::plot::distinct;
use crate::record::Row;
use std::path::Path;

/// What one result set says about where and how it was measured.
pub(crate) struct Facts {
    /// The environment record of summary.json (None: a set made before xferbench recorded one, or no summary).
    pub record: Option<Record>,
    /// Items the rows carry, as (dotted name, value).
    pub rows: Vec<(String, String)>,
}

impl Facts {
    pub fn load(dir: &Path, rows: &[Row]) -> Facts {
        let record = std::fs::read_to_string(dir.join("summary.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|v| v.get("system").cloned())
            .and_then(|system| serde_json::from_value::<Record>(system).ok());
        Facts {
            record,
            rows: row_items(rows),
        }
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or("unset".into(), T::to_string)
}

/// An item the rows carry: its dotted name and how to read it off a row.
type RowItem = (&'static str, fn(&Row) -> String);

/// What the rows themselves say: the machine in short (for sets without a record), then the run's settings
/// (`run.*`).
fn row_items(rows: &[Row]) -> Vec<(String, String)> {
    let items: [RowItem; 16] = [
        ("kernel.release", |r| r.kernel.clone()),
        ("host", |r| r.host.clone()),
        ("cpu.model", |r| r.cpu_model.clone()),
        ("cpu.logical_cpus", |r| r.logical_cpus.to_string()),
        ("memory.total_bytes", |r| r.memory_bytes.to_string()),
        ("storage.file_system", |r| r.file_system.clone()),
        ("build.xferbench_version", |r| r.xferbench_version.clone()),
        ("run.file_bytes", |r| r.file_bytes.to_string()),
        ("run.passes", |r| r.passes.to_string()),
        ("run.transport", |r| r.transport.to_string()),
        ("run.sndbuf_bytes", |r| opt(&r.sndbuf_bytes)),
        ("run.rcvbuf_bytes", |r| opt(&r.rcvbuf_bytes)),
        ("run.nodelay", |r| r.nodelay.to_string()),
        ("run.sender_cpus", |r| r.sender_cpus.clone()),
        ("run.sink_cpus", |r| r.sink_cpus.clone()),
        ("run.emulated", |r| {
            r.flags.has(crate::model::Flag::Emulated).to_string()
        }),
    ];
    items
        .iter()
        .map(|(name, f)| (name.to_string(), distinct(rows, f)))
        .collect()
}

/// Everything that differs from `base` to `other`: the records' items when both have one (kernel first), then
/// the rows' items (the machine in short only where a record is missing), then the run's settings.
pub(crate) fn between(base: &Facts, other: &Facts) -> Vec<Difference> {
    let both = base.record.is_some() && other.record.is_some();
    let mut out = match (&base.record, &other.record) {
        (Some(a), Some(b)) => env::differences(a, b),
        _ => Vec::new(),
    };
    for ((name, left), (_, right)) in base.rows.iter().zip(&other.rows) {
        // The items not of the run are the machine in short, which a record covers better.
        let of_the_run = name.starts_with("run.");
        if left != right && (of_the_run || !both) {
            out.push(Difference {
                item: name.clone(),
                left: left.clone(),
                right: right.clone(),
            });
        }
    }
    // Kernel first, whichever list it came from.
    out.sort_by_key(|d| !(d.item.starts_with("kernel.")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_rows_differences_kernel_first() {
        let mut a = Record::default();
        a.kernel.release = "6.1.0".into();
        a.net
            .sysctl
            .insert("net.ipv4.tcp_rmem".into(), "4096 131072 6291456".into());
        let mut b = a.clone();
        b.kernel.release = "6.12.0".into();
        b.net
            .sysctl
            .insert("net.ipv4.tcp_rmem".into(), "4096 131072 33554432".into());
        let row = |kernel: &str, passes| Row {
            kernel: kernel.into(),
            passes,
            ..Row::default()
        };
        let base = Facts {
            record: Some(a),
            rows: row_items(&[row("6.1.0", 3)]),
        };
        let other = Facts {
            record: Some(b),
            rows: row_items(&[row("6.12.0", 5)]),
        };
        let d = between(&base, &other);
        let names: Vec<&str> = d.iter().map(|d| d.item.as_str()).collect();
        assert_eq!(
            names,
            ["kernel.release", "net.sysctl.net.ipv4.tcp_rmem", "run.passes"],
            "{d:?}"
        );
        // Without records, the rows' kernel stands in.
        let bare = |f: Facts| Facts { record: None, ..f };
        let d = between(&bare(base), &bare(other));
        assert_eq!(d[0].item, "kernel.release");
        assert_eq!((d[0].left.as_str(), d[0].right.as_str()), ("6.1.0", "6.12.0"));
    }
}
