//! The result folder of a run that fails before it records anything: what the run created there is removed, so
//! a refused run (a bad --file, no free space, a refused --connect) leaves no empty runs.csv, stale summary.json or
//! lock file behind. Anything that was there before the run, and everything once a row is written, is kept.

use std::path::{Path, PathBuf};

/// Removes, when dropped while armed, the result folder's files (and the folder) that this run created. It must be
/// dropped while the folder's lock is still held, and disarmed (`keep`) when the lock was never taken: the folder
/// is then another run's.
pub struct Litter {
    created: Vec<PathBuf>,
    /// Folders that did not exist, the result folder first, then each missing parent.
    dirs: Vec<PathBuf>,
    armed: bool,
}

impl Litter {
    /// Notes what of `dir` (and its parents) and the files a run makes in it does not exist yet; call before
    /// creating them.
    pub fn before_creating(dir: &Path) -> Litter {
        let created = ["runs.csv", "summary.json", "plan.json", crate::results::lock::FILE]
            .iter()
            .map(|name| dir.join(name))
            .filter(|p| std::fs::symlink_metadata(p).is_err())
            .collect();
        Litter {
            created,
            dirs: dir
                .ancestors()
                .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
                .map(Path::to_path_buf)
                .collect(),
            armed: true,
        }
    }

    /// The folder's lock is now held by this run. A file that appeared since `before_creating` was made by another
    /// run (one that held the folder in between): it is not this run's to remove. The lock file is the exception:
    /// removing it under the lock is safe (`lock::FolderLock::take`).
    pub fn locked(&mut self) {
        self.created
            .retain(|p| p.ends_with(crate::results::lock::FILE) || std::fs::symlink_metadata(p).is_err());
    }

    /// The run has something worth keeping (a row, or an ending of its own): remove nothing.
    pub fn keep(&mut self) {
        self.armed = false;
    }
}

impl Drop for Litter {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for path in &self.created {
            let _ = std::fs::remove_file(path);
        }
        // remove_dir refuses a folder that is not empty, so nothing else in it can be lost.
        for dir in &self.dirs {
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}
