//! What differs between result sets besides the cases: the congestion control first (it moved single-stream
//! sendfile 3x on this project's VM), then the machine (every item of the environment record that summary.json
//! carries, kernel first), then the run's settings (every field of plan.json's settings, compared generically, so
//! a new run option shows up unasked), then what only the rows say (file size, passes, emulation). A kernel
//! comparison that also changed the congestion control, a sysctl, the mitigations or the CPU governor says so
//! before any number is read. Sets from before plan.json fall back on the settings their rows carry.

use crate::base::env::{self, Difference, Record};
use crate::commands::plot::distinct;
use crate::experiment::config::{PlanFile, setting_items};
use crate::results::record::Row;
use std::path::Path;

/// What one result set says about where and how it was measured.
pub(crate) struct Facts {
    /// The environment record of summary.json (None: a set made before xferbench recorded one, or no summary).
    pub record: Option<Record>,
    /// The run's settings from plan.json, as (flag, value) (None: a set from before plan.json held them all).
    pub settings: Option<Vec<(String, String)>>,
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
        let settings = std::fs::read_to_string(dir.join("plan.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<PlanFile>(&text).ok())
            .map(|p| setting_items(&p.settings));
        Facts {
            record,
            settings,
            rows: row_items(rows),
        }
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or("unset".into(), T::to_string)
}

/// The item that names the congestion control, listed before every other.
const CC: &str = "congestion control";

/// An item the rows carry: its dotted name and how to read it off a row.
type RowItem = (&'static str, fn(&Row) -> String);

/// What the rows themselves say: the congestion control, the machine in short (for sets without a record), what
/// only rows know (`run.*`), and the settings they carry (`setting.*`, for sets without plan.json).
fn row_items(rows: &[Row]) -> Vec<(String, String)> {
    let items: [RowItem; 17] = [
        (CC, |r| super::cc_text(r.congestion_control)),
        ("kernel.release", |r| r.kernel.clone()),
        ("host", |r| r.host.clone()),
        ("cpu.model", |r| r.cpu_model.clone()),
        ("cpu.logical_cpus", |r| r.logical_cpus.to_string()),
        ("memory.total_bytes", |r| r.memory_bytes.to_string()),
        ("storage.file_system", |r| r.file_system.clone()),
        ("build.xferbench_version", |r| r.xferbench_version.clone()),
        ("run.file_bytes", |r| r.file_bytes.to_string()),
        ("run.passes", |r| r.passes.to_string()),
        ("run.emulated", |r| {
            r.flags.has(crate::base::model::Flag::Emulated).to_string()
        }),
        ("setting.transport", |r| r.transport.to_string()),
        ("setting.sndbuf_bytes", |r| opt(&r.sndbuf_bytes)),
        ("setting.rcvbuf_bytes", |r| opt(&r.rcvbuf_bytes)),
        ("setting.nodelay", |r| r.nodelay.to_string()),
        ("setting.sender_cpus", |r| r.sender_cpus.clone()),
        ("setting.sink_cpus", |r| r.sink_cpus.clone()),
    ];
    items
        .iter()
        .map(|(name, f)| (name.to_string(), distinct(rows, f)))
        .collect()
}

/// The (name, value) pairs of two lists that differ, in the left's order; a name only one side has counts as
/// differing, `absent` on the other.
fn diff(left: &[(String, String)], right: &[(String, String)]) -> Vec<Difference> {
    let value = |items: &[(String, String)], name: &str| {
        items
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| env::ABSENT.to_string(), |(_, v)| v.clone())
    };
    let mut names: Vec<&String> = left.iter().map(|(n, _)| n).collect();
    names.extend(
        right
            .iter()
            .map(|(n, _)| n)
            .filter(|n| !left.iter().any(|(l, _)| l == *n)),
    );
    names
        .into_iter()
        .map(|n| Difference {
            item: n.clone(),
            left: value(left, n),
            right: value(right, n),
        })
        .filter(|d| d.left != d.right)
        .collect()
}

/// Everything that differs from `base` to `other`: the congestion control, the records' items when both have one
/// (kernel first), the settings of plan.json when both have one (else those the rows carry), then what only the
/// rows say (the machine in short only where a record is missing).
pub(crate) fn between(base: &Facts, other: &Facts) -> Vec<Difference> {
    let both_records = base.record.is_some() && other.record.is_some();
    let both_plans = base.settings.is_some() && other.settings.is_some();
    let rows = diff(&base.rows, &other.rows);
    let mut out: Vec<Difference> = rows.iter().filter(|d| d.item == CC).cloned().collect();
    if let (Some(a), Some(b)) = (&base.record, &other.record) {
        out.extend(env::differences(a, b));
    }
    if let (Some(a), Some(b)) = (&base.settings, &other.settings) {
        out.extend(diff(a, b));
    }
    out.extend(rows.into_iter().filter(|d| {
        let machine = !d.item.starts_with("run.") && !d.item.starts_with("setting.") && d.item != CC;
        (d.item.starts_with("run.")) || (d.item.starts_with("setting.") && !both_plans) || (machine && !both_records)
    }));
    // The congestion control, then the kernel, whichever list they came from.
    out.sort_by_key(|d| (d.item != CC, !d.item.starts_with("kernel.")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::model::Cc;

    #[test]
    fn differences_lead_with_the_congestion_control_then_the_kernel() {
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
        let row = |kernel: &str, passes, cc: &str| Row {
            kernel: kernel.into(),
            passes,
            congestion_control: Some(Cc::new(cc).unwrap()),
            ..Row::default()
        };
        let settings = |min_time: &str| vec![("--min-time".to_string(), min_time.to_string())];
        let base = Facts {
            record: Some(a),
            settings: Some(settings("500ms")),
            rows: row_items(&[row("6.1.0", 3, "cubic")]),
        };
        let other = Facts {
            record: Some(b),
            settings: Some(settings("1s")),
            rows: row_items(&[row("6.12.0", 5, "bbr")]),
        };
        let d = between(&base, &other);
        let names: Vec<&str> = d.iter().map(|d| d.item.as_str()).collect();
        assert_eq!(
            names,
            [
                CC,
                "kernel.release",
                "net.sysctl.net.ipv4.tcp_rmem",
                "--min-time",
                "run.passes"
            ],
            "{d:?}"
        );
        assert_eq!((d[0].left.as_str(), d[0].right.as_str()), ("cubic", "bbr"));
        // Without records and plans, the rows' kernel and settings stand in.
        let bare = |f: Facts| Facts {
            record: None,
            settings: None,
            ..f
        };
        let d = between(&bare(base), &bare(other));
        assert_eq!(d[1].item, "kernel.release");
        assert_eq!((d[1].left.as_str(), d[1].right.as_str()), ("6.1.0", "6.12.0"));
        assert!(!d.iter().any(|d| d.item == "--min-time"));
    }
}
