//! A run's result folder: taken for this run alone (`lock`), its runs.csv read back (a torn last row set aside),
//! checked against the plan it was made with (plan.json: a resume must go on with the same experiment), and then
//! written to row by row, whole rows only, with summary.json replaced after each case.

mod litter;

use crate::base::model::Order;
use crate::experiment::config::{self, MAY_CHANGE, Plan, PlanFile};
use crate::results::export::{CsvWriter, RowWriter, write_json_atomic};
use crate::results::lock::{Busy, FolderLock, Holder};
use crate::results::record::{self, ConsumerRow, Row, SeriesRow};
use anyhow::Context;
use litter::Litter;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What differs between this plan and the one a folder was made with, one item per setting, in the flags' words:
/// every setting but those a resume may change (`config::MAY_CHANGE`), the file's size, and the cases.
pub fn plan_differences(here: &PlanFile, there: &PlanFile) -> Vec<String> {
    let mut out: Vec<String> = config::differences(&here.settings, &there.settings, MAY_CHANGE)
        .into_iter()
        .map(|d| format!("{} ({} here, {} there)", d.flag, d.left, d.right))
        .collect();
    if here.file_bytes != there.file_bytes {
        out.push(format!(
            "the file's size ({} here, {} there)",
            here.file_bytes, there.file_bytes
        ));
    }
    if here.cases != there.cases {
        let new = here.cases.iter().find(|c| !there.cases.contains(c));
        let gone = there.cases.iter().find(|c| !here.cases.contains(c));
        let example = match (new, gone) {
            (Some(c), _) => format!("; {c} is new"),
            (None, Some(c)) => format!("; {c} is missing"),
            (None, None) => "; the same cases in another order".into(),
        };
        out.push(format!(
            "the cases ({} here, {} there{example})",
            here.cases.len(),
            there.cases.len()
        ));
    }
    out
}

/// The result folder of this run, held for this run alone.
pub struct Folder {
    pub dir: PathBuf,
    pub csv_path: PathBuf,
    summary_path: PathBuf,
    plan_path: PathBuf,
    writer: RowWriter,
    /// series.csv's writer, opened with the first row that brings a series.
    series: Option<CsvWriter<SeriesRow>>,
    /// consumers.csv's writer, opened with the first row of a broker case.
    consumers: Option<CsvWriter<ConsumerRow>>,
    // Dropped in this order: what a failed run made goes (the lock file too) while the lock is still held.
    litter: Litter,
    _lock: FolderLock,
}

impl Folder {
    /// Creates (or takes) the folder, refusing it when another run holds it; returns it with the rows it already
    /// holds (a torn last row set aside, with one line saying so).
    pub fn open(dir: &Path, run_id: &str, resume: bool) -> anyhow::Result<(Folder, Vec<Row>)> {
        let mut litter = Litter::before_creating(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the result folder '{}'", dir.display()))?;
        let lock = match take(dir, run_id) {
            Ok(lock) => lock,
            Err(e) => {
                // Refused (or never held): the folder and what is in it are another run's; nothing here is removed.
                litter.keep();
                return Err(e);
            }
        };
        litter.locked();
        remove_dead_temporaries(dir);
        // From here on, whatever ends the opening removes what this run made while the lock is still held.
        let held = Held { litter, lock };
        let csv_path = dir.join("runs.csv");
        let mut rows = Vec::new();
        if std::fs::metadata(&csv_path).is_ok_and(|m| m.len() > 0) {
            let file = record::read(&csv_path)?;
            if let Some(torn) = &file.torn {
                let aside = record::set_aside(&csv_path, torn)?;
                eprintln!("{}", record::torn_line(&csv_path, torn, &aside, file.rows.len()));
            }
            rows = file.rows;
        }
        if !rows.is_empty() && !resume {
            anyhow::bail!(
                "'{}' already holds {} row(s) of an earlier run: add --resume to go on with it, or give --out a new \
                 folder",
                dir.display(),
                rows.len()
            );
        }
        let writer = RowWriter::open(&csv_path)?;
        let Held { litter, lock } = held;
        Ok((
            Folder {
                dir: dir.to_path_buf(),
                summary_path: dir.join("summary.json"),
                plan_path: dir.join("plan.json"),
                csv_path,
                writer,
                series: None,
                consumers: None,
                litter,
                _lock: lock,
            },
            rows,
        ))
    }

    /// Checks the plan against the one the folder was made with, and records it for the next resume: a resume
    /// takes the earlier run's --order-seed when none is given, and a shuffle without one draws it here. A folder
    /// from before plan.json existed is taken on trust: its rows are matched to cases by their keys.
    pub fn settle_plan(&mut self, plan: &mut Plan, file_bytes: u64) -> anyhow::Result<PlanFile> {
        let there: Option<PlanFile> = match std::fs::read_to_string(&self.plan_path) {
            Ok(text) => Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "'{}' does not parse (a folder of another xferbench version?)",
                    self.plan_path.display()
                )
            })?),
            Err(_) => None,
        };
        let settings = &mut plan.settings;
        if settings.order == Order::Shuffle && settings.order_seed.is_none() {
            let drawn = || {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            };
            settings.order_seed = Some(there.as_ref().and_then(|t| t.settings.order_seed).unwrap_or_else(drawn));
        }
        let here = PlanFile {
            settings: plan.settings.clone(),
            file_bytes,
            cases: plan.cases.iter().map(|c| c.id()).collect(),
        };
        if let Some(there) = &there {
            let differs = plan_differences(&here, there);
            if !differs.is_empty() {
                anyhow::bail!(
                    "--resume: this plan differs from the one '{}' was made with in {}; only --repeat, --ci and \
                     --max-time may change (give --out a new folder for another plan)",
                    self.dir.display(),
                    differs.join(", ")
                );
            }
        }
        write_json_atomic(&self.plan_path, &here)?;
        Ok(here)
    }

    /// Appends a row and its lines of series.csv and consumers.csv, all on disk when this returns, or none of
    /// them (a full disk): what was appended is cut back, so that a repetition has its row and every side line or
    /// nothing, and a resume makes it again. (Killed between the two, a row may lack its side lines.) From the
    /// first row on, nothing of the folder is taken back.
    pub fn write_row(&mut self, row: &Row) -> anyhow::Result<()> {
        let before = self.writer.whole_len();
        self.writer.write(row)?;
        self.litter.keep();
        if let Err(e) = self.write_side_lines(row) {
            self.writer.cut_back(before)?;
            return Err(e);
        }
        Ok(())
    }

    /// A row's lines of series.csv, then of consumers.csv; each append lands whole or not at all, and the first
    /// is cut back when the second fails.
    fn write_side_lines(&mut self, row: &Row) -> anyhow::Result<()> {
        let mut series_at = None;
        if !row.series.is_empty() {
            let w = side_file(&mut self.series, &self.dir, "series.csv")?;
            series_at = Some(w.whole_len());
            w.write_all(&row.series)?;
        }
        if !row.consumer_rows.is_empty() {
            let written = side_file(&mut self.consumers, &self.dir, "consumers.csv")
                .and_then(|w| w.write_all(&row.consumer_rows));
            if let Err(e) = written {
                if let (Some(w), Some(len)) = (self.series.as_mut(), series_at) {
                    w.cut_back(len)?;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Replaces summary.json.
    pub fn write_summary<T: Serialize>(&self, summary: &T) -> anyhow::Result<()> {
        write_json_atomic(&self.summary_path, summary)
    }

    /// The run ended in a way of its own (finished, interrupted): keep what it made even without a row.
    pub fn keep(&mut self) {
        self.litter.keep();
    }
}

/// A file written beside runs.csv (series.csv, consumers.csv), opened on first use; a line a crash cut short is cut
/// off first (every whole line before it is kept, and the repetition it belonged to has its row in runs.csv or
/// none).
fn side_file<'a, T: Serialize + Default>(
    slot: &'a mut Option<CsvWriter<T>>,
    dir: &Path,
    name: &str,
) -> anyhow::Result<&'a mut CsvWriter<T>> {
    if slot.is_none() {
        let path = dir.join(name);
        if let Ok(bytes) = std::fs::read(&path)
            && !bytes.is_empty()
            && !bytes.ends_with(b"\n")
        {
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let f = std::fs::OpenOptions::new().write(true).open(&path)?;
            f.set_len(whole as u64)?;
        }
        *slot = Some(CsvWriter::open(&path)?);
    }
    Ok(slot.as_mut().expect("opened above"))
}

/// What a run made in its folder, and the lock; dropped in this order, like `Folder`'s fields.
struct Held {
    litter: Litter,
    lock: FolderLock,
}

/// Removes what a run killed while replacing summary.json or plan.json left (the temporary files of
/// `export::write_json_atomic`): only the folder's holder writes them, so once the lock is held, any there is a dead
/// run's.
fn remove_dead_temporaries(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ["summary.json.tmp-", "plan.json.tmp-"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Takes the lock of `dir`. A run that failed before recording anything removes the folder it made, so a run
/// started beside it may find the folder gone by the time it opens the lock file: it makes it again.
fn take(dir: &Path, run_id: &str) -> anyhow::Result<FolderLock> {
    let me = Holder::me(format!("run {run_id}"));
    let mut tries = 0;
    loop {
        match FolderLock::take(dir, &me) {
            Ok(lock) => return Ok(lock),
            Err(Busy::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound && tries < 5 => {
                tries += 1;
                let _ = std::fs::create_dir_all(dir);
            }
            Err(busy) => anyhow::bail!("{busy}; wait for it to finish or give --out another folder"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::cli::{Cli, Command};
    use clap::Parser;

    fn record(args: &[&str]) -> PlanFile {
        let cli = Cli::try_parse_from(["xferbench", "run"].iter().chain(args)).unwrap();
        let Command::Run(run) = cli.command else { unreachable!() };
        let plan = crate::experiment::config::expand(run).unwrap();
        PlanFile {
            settings: plan.settings.clone(),
            file_bytes: 1 << 20,
            cases: plan.cases.iter().map(|c| c.id()).collect(),
        }
    }

    #[test]
    fn only_repeat_ci_and_max_time_may_differ() {
        let base = record(&["--threads", "4", "--repeat", "3"]);
        assert!(plan_differences(&record(&["--threads", "4", "--repeat", "30"]), &base).is_empty());
        let auto = record(&["--threads", "4", "--repeat", "auto", "--ci", "2%", "--max-time", "5m"]);
        assert!(plan_differences(&auto, &base).is_empty());
        let d = plan_differences(&record(&["--threads", "8"]), &base);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].starts_with("the cases (4 here, 4 there; parallel-sendfile/t8/"),
            "{d:?}"
        );
        let d = plan_differences(&record(&["--threads", "4", "--min-time", "1s", "--nodelay"]), &base);
        assert_eq!(
            d,
            [
                "--min-time (1s here, 250ms there)",
                "--nodelay (true here, false there)"
            ]
        );
        let d = plan_differences(
            &record(&["--threads", "4", "--repeat", "3", "--order", "grouped"]),
            &base,
        );
        assert_eq!(d, ["--order (grouped here, rotate there)"]);
    }

    #[test]
    fn a_resumed_shuffle_keeps_its_seed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let plan = |args: &[&str]| {
            let cli = Cli::try_parse_from(["xferbench", "run", "--order", "shuffle"].iter().chain(args)).unwrap();
            let Command::Run(run) = cli.command else { unreachable!() };
            crate::experiment::config::expand(run).unwrap()
        };
        let (mut first, _) = Folder::open(&out, "r1", false).unwrap();
        let mut p = plan(&[]);
        let drawn = first.settle_plan(&mut p, 10).unwrap().settings.order_seed.unwrap();
        first.keep();
        drop(first);
        let (mut again, _) = Folder::open(&out, "r2", true).unwrap();
        let mut p = plan(&[]);
        assert_eq!(again.settle_plan(&mut p, 10).unwrap().settings.order_seed, Some(drawn));
        let mut other = plan(&["--order-seed", &(drawn ^ 1).to_string()]);
        let e = again.settle_plan(&mut other, 10).unwrap_err().to_string();
        assert!(e.contains("--order-seed"), "{e}");
    }

    #[test]
    fn a_second_run_on_a_held_folder_is_refused_and_rows_need_resume() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let (mut first, rows) = Folder::open(&out, "r1", false).unwrap();
        assert!(rows.is_empty());
        let e = Folder::open(&out, "r2", true).err().unwrap().to_string();
        assert!(e.contains("is in use by xferbench run r1"), "{e}");
        first.write_row(&Row::default()).unwrap();
        drop(first);
        let e = Folder::open(&out, "r3", false).err().unwrap().to_string();
        assert!(e.contains("already holds 1 row(s)") && e.contains("--resume"), "{e}");
        let (_, rows) = Folder::open(&out, "r4", true).unwrap();
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn what_a_run_killed_while_replacing_a_json_file_left_is_removed_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let left = ["summary.json.tmp-4194305", "plan.json.tmp-4194306", "notes.json.tmp-1"];
        left.iter().for_each(|n| std::fs::write(out.join(n), b"{").unwrap());
        let (folder, _) = Folder::open(&out, "r2", true).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".xferbench.lock", "notes.json.tmp-1", "runs.csv"]);
        drop(folder);
    }
}
