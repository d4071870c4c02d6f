//! One writer per result folder. A run holds an exclusive flock(2) on `DIR/.xferbench.lock` for as long as it
//! lives, with who it is written inside; a second run on the same folder is refused at once, naming the holder.
//! The kernel drops the lock when its holder dies, however it dies, so a lock left by a killed run never blocks.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lock file's name inside a result folder.
pub const FILE: &str = ".xferbench.lock";

/// Who holds (or last held) a folder's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// RFC 3339, UTC.
    pub started_utc: String,
    /// What it is doing: `run <run id>`, or `reading`.
    pub doing: String,
}

impl Holder {
    /// This process, doing `doing`.
    pub fn me(doing: impl Into<String>) -> Holder {
        Holder {
            pid: std::process::id(),
            host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            started_utc: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            doing: doing.into(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "xferbench {} (PID {} on {}, started {})",
            self.doing, self.pid, self.host, self.started_utc
        )
    }
}

/// A folder's lock, held until dropped.
#[derive(Debug)]
pub struct FolderLock {
    _lock: Flock<File>,
    pub path: PathBuf,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum Busy {
    /// Another live process holds it (what it wrote of itself, when readable).
    #[error("'{dir}' is in use by {}", .holder.as_ref().map_or("another xferbench process".to_string(), |h| h.to_string()))]
    Held { dir: String, holder: Option<Holder> },
    #[error("cannot lock '{path}': {error}")]
    Io { path: String, error: std::io::Error },
}

impl FolderLock {
    /// Takes `dir`'s lock without waiting, and writes `me` into it.
    ///
    /// A run that fails before recording anything removes the lock file it made (while it holds it). A taker that
    /// opened that file before the removal would lock a file nobody else can find any more; so the lock counts
    /// only when the path still names the file locked, else it is taken again on the file there now.
    pub fn take(dir: &Path, me: &Holder) -> Result<FolderLock, Busy> {
        let path = dir.join(FILE);
        let io = |error: std::io::Error| Busy::Io {
            path: path.display().to_string(),
            error,
        };
        for _ in 0..10 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                Err((file, Errno::EWOULDBLOCK)) => {
                    return Err(Busy::Held {
                        dir: dir.display().to_string(),
                        holder: holder_in(file),
                    });
                }
                Err((_, errno)) => return Err(io(errno.into())),
            };
            if !names(&path, &lock) {
                continue;
            }
            let info = serde_json::to_string(me).unwrap_or_default();
            lock.set_len(0)
                .and_then(|()| lock.rewind())
                .and_then(|()| lock.write_all(info.as_bytes()))
                .and_then(|()| lock.sync_data())
                .map_err(io)?;
            return Ok(FolderLock { _lock: lock, path });
        }
        Err(io(std::io::Error::other("the lock file kept being replaced")))
    }
}

/// Whether `path` names the open `file`.
fn names(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Who holds the lock of `file`, as it wrote itself in. The holder writes that just after taking the lock, so a
/// taker that comes in between finds the file empty or half written: it reads again for a little while.
fn holder_in(mut file: File) -> Option<Holder> {
    for _ in 0..50 {
        let mut text = String::new();
        if file.rewind().is_ok()
            && file.read_to_string(&mut text).is_ok()
            && let Ok(holder) = serde_json::from_str(&text)
        {
            return Some(holder);
        }
        std::thread::sleep(Duration::from_millis(4));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_with_the_holder_named_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = FolderLock::take(dir.path(), &Holder::me("run r1")).unwrap();
        // A second open file description in the same process conflicts like another process would.
        let e = FolderLock::take(dir.path(), &Holder::me("run r2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is in use by xferbench run r1"), "{e}");
        assert!(e.contains(&format!("PID {}", std::process::id())), "{e}");
        drop(first);
        FolderLock::take(dir.path(), &Holder::me("run r3")).expect("free again");
    }

    #[test]
    fn a_taker_that_comes_before_the_holder_wrote_itself_in_waits_for_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, b"").unwrap();
        let me = Holder::me("run r1");
        let text = serde_json::to_string(&me).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            std::fs::write(path, text).unwrap();
        });
        let file = File::open(dir.path().join(FILE)).unwrap();
        assert_eq!(holder_in(file), Some(me));
        writer.join().unwrap();
    }
}
