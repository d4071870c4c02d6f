//! A run's result folder: taken for this run alone (`lock`), its runs.csv read back (a torn last row set aside),
//! checked against the plan it was made with (plan.json: a resume must go on with the same experiment), and then
//! written to row by row, whole rows only, with summary.json replaced after each case.

use super::outdir::Litter;
use crate::config::{Plan, Source};
use crate::export::{RowWriter, write_json_atomic};
use crate::fixture::Fixture;
use crate::lock::{Busy, FolderLock, Holder};
use crate::model::{Passes, Transport, VerifyOn};
use crate::record::{self, Row};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a folder's rows were measured with: everything of the plan but `--repeat` (and what only steers the run:
/// --quiet, --plot, --fail-fast). A resume whose plan differs in any of it is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    pub file: String,
    pub file_bytes: u64,
    /// Seed of a generated fixture (None: a file checked by byte count only).
    pub seed: Option<u64>,
    /// Every case's id, in the order they run.
    pub cases: Vec<String>,
    pub warmup: u32,
    pub min_time_s: f64,
    pub passes: Passes,
    pub verify_on: Option<VerifyOn>,
    pub transport: Transport,
    /// The remote sink, with --connect.
    pub sink: Option<String>,
    pub drop_caches: bool,
    pub sndbuf_bytes: Option<u64>,
    pub rcvbuf_bytes: Option<u64>,
    pub nodelay: bool,
    pub sender_cpus: Option<String>,
    pub sink_cpus: Option<String>,
    pub timeout_s: f64,
    /// Recorded, not compared: a resume may ask for more (or fewer) repetitions.
    pub repeat: u32,
}

impl PlanRecord {
    pub fn of(plan: &Plan, fixture: &Fixture) -> PlanRecord {
        PlanRecord {
            file: match &plan.source {
                Source::Generated(spec) => spec.path.display().to_string(),
                Source::UserFile(path) => path.display().to_string(),
            },
            file_bytes: fixture.size,
            seed: fixture.seed,
            cases: plan.cases.iter().map(|c| c.id()).collect(),
            warmup: plan.warmup,
            min_time_s: plan.min_time.as_secs_f64(),
            passes: plan.passes,
            verify_on: plan.verify_on,
            transport: plan.transport(),
            sink: plan.connect.clone(),
            drop_caches: plan.drop_caches,
            sndbuf_bytes: plan.sndbuf,
            rcvbuf_bytes: plan.rcvbuf,
            nodelay: plan.nodelay,
            sender_cpus: plan.sender_cpus.as_ref().map(|c| c.text.clone()),
            sink_cpus: plan.sink_cpus.as_ref().map(|c| c.text.clone()),
            timeout_s: plan.timeout.as_secs_f64(),
            repeat: plan.repeat,
        }
    }

    /// What differs from `there`, one item per setting, in the flags' words.
    pub fn differences(&self, there: &PlanRecord) -> Vec<String> {
        fn show<T: std::fmt::Debug>(v: &Option<T>) -> String {
            v.as_ref()
                .map_or("unset".into(), |v| format!("{v:?}").trim_matches('"').to_string())
        }
        // A generated fixture is its size and seed wherever it lies; a user's file is its path.
        let file = |p: &PlanRecord| {
            if p.seed.is_some() {
                String::new()
            } else {
                p.file.clone()
            }
        };
        let pairs: [(&str, String, String); 15] = [
            ("the file", file(self), file(there)),
            ("its size", self.file_bytes.to_string(), there.file_bytes.to_string()),
            ("--seed", show(&self.seed), show(&there.seed)),
            ("--warmup", self.warmup.to_string(), there.warmup.to_string()),
            (
                "--min-time",
                format!("{}s", self.min_time_s),
                format!("{}s", there.min_time_s),
            ),
            ("--passes", self.passes.to_string(), there.passes.to_string()),
            ("--verify-on", show(&self.verify_on), show(&there.verify_on)),
            ("the receiver", self.transport.to_string(), there.transport.to_string()),
            ("--connect", show(&self.sink), show(&there.sink)),
            (
                "--drop-caches",
                self.drop_caches.to_string(),
                there.drop_caches.to_string(),
            ),
            ("--sndbuf", show(&self.sndbuf_bytes), show(&there.sndbuf_bytes)),
            ("--rcvbuf", show(&self.rcvbuf_bytes), show(&there.rcvbuf_bytes)),
            ("--nodelay", self.nodelay.to_string(), there.nodelay.to_string()),
            ("--sender-cpus", show(&self.sender_cpus), show(&there.sender_cpus)),
            ("--sink-cpus", show(&self.sink_cpus), show(&there.sink_cpus)),
        ];
        let mut out: Vec<String> = pairs
            .into_iter()
            .filter(|(_, a, b)| a != b)
            .map(|(what, a, b)| format!("{what} ({a} here, {b} there)"))
            .collect();
        if self.cases != there.cases {
            let new = self.cases.iter().find(|c| !there.cases.contains(c));
            let gone = there.cases.iter().find(|c| !self.cases.contains(c));
            let example = match (new, gone) {
                (Some(c), _) => format!("; {c} is new"),
                (None, Some(c)) => format!("; {c} is missing"),
                (None, None) => "; the same cases in another order".into(),
            };
            out.push(format!(
                "the cases ({} here, {} there{example})",
                self.cases.len(),
                there.cases.len()
            ));
        }
        out
    }
}

/// The result folder of this run, held for this run alone.
pub struct Folder {
    pub dir: PathBuf,
    pub csv_path: PathBuf,
    summary_path: PathBuf,
    plan_path: PathBuf,
    writer: RowWriter,
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
                litter,
                _lock: lock,
            },
            rows,
        ))
    }

    /// Checks the plan against the one the folder was made with, and records it for the next resume. A folder
    /// from before plan.json existed is taken on trust: its rows are matched to cases by their keys.
    pub fn settle_plan(&mut self, plan: &PlanRecord) -> anyhow::Result<()> {
        if let Ok(text) = std::fs::read_to_string(&self.plan_path) {
            let there: PlanRecord = serde_json::from_str(&text)
                .with_context(|| format!("'{}' does not parse", self.plan_path.display()))?;
            let differs = plan.differences(&there);
            if !differs.is_empty() {
                anyhow::bail!(
                    "--resume: this plan differs from the one '{}' was made with in {}; only --repeat may change (give \
                     --out a new folder for another plan)",
                    self.dir.display(),
                    differs.join(", ")
                );
            }
        }
        write_json_atomic(&self.plan_path, plan)
    }

    /// Appends a row, on disk when this returns; from the first row on, nothing of the folder is taken back.
    pub fn write_row(&mut self, row: &Row) -> anyhow::Result<()> {
        self.writer.write(row)?;
        self.litter.keep();
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
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn record(args: &[&str]) -> PlanRecord {
        let cli = Cli::try_parse_from(["xferbench", "run"].iter().chain(args)).unwrap();
        let Command::Run(run) = cli.command else { unreachable!() };
        let plan = crate::config::expand(run).unwrap();
        let fixture = Fixture {
            path: "f.bin".into(),
            size: 1 << 20,
            seed: Some(1),
        };
        PlanRecord::of(&plan, &fixture)
    }

    #[test]
    fn only_repeat_may_differ() {
        let base = record(&["--threads", "4", "--repeat", "3"]);
        assert!(
            record(&["--threads", "4", "--repeat", "30"])
                .differences(&base)
                .is_empty()
        );
        let d = record(&["--threads", "8"]).differences(&base);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].starts_with("the cases (4 here, 4 there; parallel-sendfile/t8/"),
            "{d:?}"
        );
        let d = record(&["--threads", "4", "--min-time", "1s", "--nodelay"]).differences(&base);
        assert_eq!(
            d,
            ["--min-time (1s here, 0.5s there)", "--nodelay (true here, false there)"]
        );
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
