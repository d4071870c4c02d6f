//! The test file: made once from the generator in `pattern`, reused while its sidecar matches.
//!
//! This module owns the fixture's life on disk: the sidecar `<file>.meta.json` that says what a file holds, the
//! decision to reuse or remake, making it (free-space check, generation into a temporary name, fsync,
//! rename), vetting a user's own `--file`, and checking a file against the generator afterwards.

use crate::error::UsageError;
use crate::pattern;
use crate::units::format_bytes;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, IsTerminal};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Bytes generated and written at a time: large enough that pwrite's cost per call vanishes.
const PIECE: u64 = 8 << 20;
/// Free space left over after the fixture, so that making it cannot fill the filesystem to the last block.
const HEADROOM: u64 = 64 << 20;

/// What to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureSpec {
    pub path: PathBuf,
    pub size: u64,
    pub seed: u64,
}

/// A file ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    pub path: PathBuf,
    pub size: u64,
    /// Seed of a generated fixture; None for a user's own file (checked by byte count only).
    pub seed: Option<u64>,
}

/// What the sidecar records. Only size, seed and generator version decide reuse; the rest is for people.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sidecar {
    pub size_bytes: u64,
    pub seed: u64,
    pub generator_version: u32,
    pub created_utc: String,
    pub xferbench_version: String,
}

/// The sidecar beside `path`, when there is one that parses.
pub fn read_sidecar(path: &Path) -> Option<Sidecar> {
    serde_json::from_str(&fs::read_to_string(sidecar_path(path)).ok()?).ok()
}

/// Whether a file at a fixture's path may be replaced: it has a sidecar (even a broken one: the maker writes it
/// last and removes it first), or it bears the name `default_path` gives. Anything else is somebody's own file.
fn is_ours(path: &Path) -> bool {
    let generated_name = path.file_name().and_then(|n| n.to_str()).is_some_and(|name| {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        name.strip_prefix("xferbench-")
            .and_then(|rest| rest.strip_suffix(".bin"))
            .and_then(|rest| rest.split_once("-seed"))
            .is_some_and(|(size, seed)| digits(size) && digits(seed))
    });
    generated_name || fs::symlink_metadata(sidecar_path(path)).is_ok()
}

/// Default location of a generated fixture.
pub fn default_path(dir: &Path, size: u64, seed: u64) -> PathBuf {
    dir.join(format!("xferbench-{size}-seed{seed}.bin"))
}

/// The sidecar of `path`: the full file name with `.meta.json` appended.
pub fn sidecar_path(path: &Path) -> PathBuf {
    with_suffix(path, ".meta.json")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Making a fixture stopped because `stop` was set (SIGINT, SIGTERM): nothing of it is left on disk.
#[derive(Debug, thiserror::Error)]
#[error("interrupted while making the test file '{0}'; nothing of it was kept")]
pub struct Interrupted(pub PathBuf);

/// Makes the fixture, or reuses a matching one.
///
/// `progress` allows a progress bar (shown only when stderr is a terminal) and a "reusing" line.
pub fn ensure(spec: &FixtureSpec, progress: bool) -> anyhow::Result<Fixture> {
    ensure_until(spec, progress, &AtomicBool::new(false))
}

/// As `ensure`, but making the file stops with `Interrupted` soon after `stop` is set, its temporary file removed.
pub fn ensure_until(spec: &FixtureSpec, progress: bool, stop: &AtomicBool) -> anyhow::Result<Fixture> {
    anyhow::ensure!(
        spec.size > 0,
        "a fixture must be above 0 bytes: '{}'",
        spec.path.display()
    );
    let fixture = Fixture {
        path: spec.path.clone(),
        size: spec.size,
        seed: Some(spec.seed),
    };
    if is_reusable(spec) {
        if progress {
            eprintln!("reusing {} ({})", spec.path.display(), format_bytes(spec.size));
        }
        return Ok(fixture);
    }
    let present = fs::symlink_metadata(&spec.path).ok();
    if present.is_some() && !is_ours(&spec.path) {
        return Err(UsageError::msg(format!(
            "'{}' exists and is not an xferbench fixture (no .meta.json beside it): remove it or choose another path",
            spec.path.display()
        ))
        .into());
    }
    // The sidecar goes first: from here on no sidecar may vouch for a file that is about to change.
    let sidecar = sidecar_path(&spec.path);
    remove_if_present(&sidecar)?;
    // A stale data file goes too, so that its space counts as free and nothing stale is left if making fails.
    if present.is_some_and(|m| m.is_file()) {
        remove_if_present(&spec.path)?;
    }
    remove_orphaned_temps(&spec.path);
    make(spec, progress, stop)?;
    write_sidecar(spec)?;
    Ok(fixture)
}

/// True when the file and its sidecar match the spec exactly; any doubt (missing, corrupt, other) means remake.
fn is_reusable(spec: &FixtureSpec) -> bool {
    let Ok(meta) = fs::metadata(&spec.path) else {
        return false;
    };
    let Some(side) = read_sidecar(&spec.path) else {
        return false;
    };
    meta.is_file()
        && meta.len() == spec.size
        && side.size_bytes == spec.size
        && side.seed == spec.seed
        && side.generator_version == pattern::GENERATOR_VERSION
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove the stale '{}'", path.display()))
        }
        _ => Ok(()),
    }
}

/// Deletes a temporary file when dropped, unless `keep` was called: no error path (or panic) leaves one behind.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// The parent directory to create and check, "." for a bare file name.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Fails, creating nothing, unless `dir`'s filesystem has room for `size` bytes plus the headroom.
fn check_free_space(dir: &Path, size: u64) -> anyhow::Result<()> {
    let st = nix::sys::statvfs::statvfs(dir)
        .with_context(|| format!("cannot read the free space of '{}'", dir.display()))?;
    // f_bavail counts blocks of f_frsize bytes that an unprivileged writer may use.
    let available = (st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64);
    let needed = size.saturating_add(HEADROOM);
    anyhow::ensure!(
        available >= needed,
        "not enough free space in '{}' for a {} fixture: need {} (with {} headroom), {} available; \
         use a smaller --size or a --fixture-dir on a bigger filesystem",
        dir.display(),
        format_bytes(size),
        format_bytes(needed),
        format_bytes(HEADROOM),
        format_bytes(available)
    );
    Ok(())
}

/// Writes the content into `<name>.tmp-<pid>`, syncs it and renames it into place.
fn make(spec: &FixtureSpec, progress: bool, stop: &AtomicBool) -> anyhow::Result<()> {
    let dir = parent_dir(&spec.path);
    // Check on the nearest directory that exists, so that a refusal creates no directory either.
    let existing = dir.ancestors().find(|d| d.is_dir()).unwrap_or(Path::new("."));
    check_free_space(existing, spec.size)?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create the directory '{}'", dir.display()))?;

    let tmp = with_suffix(&spec.path, &format!(".tmp-{}", std::process::id()));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .with_context(|| format!("cannot create '{}'", tmp.display()))?;
    let mut guard = TempGuard(Some(tmp.clone()));

    let bar = if progress && std::io::stderr().is_terminal() {
        let style =
            ProgressStyle::with_template("making {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let name = spec.path.file_name().unwrap_or(spec.path.as_os_str());
        ProgressBar::new(spec.size)
            .with_style(style)
            .with_message(name.to_string_lossy().into_owned())
    } else {
        ProgressBar::hidden()
    };

    // One writer, in file order: the generator makes a piece in well under a millisecond (see `pattern`), so the
    // disk is the limit, and parallel writers to interleaved offsets made it 20-40% slower than dd on our VM.
    let content = pattern::Pattern::new(spec.seed);
    let mut buf = vec![0u8; PIECE.min(spec.size) as usize];
    let written = (0..spec.size)
        .step_by(PIECE as usize)
        .try_for_each(|offset| -> anyhow::Result<()> {
            if stop.load(Ordering::Relaxed) {
                return Err(Interrupted(spec.path.clone()).into());
            }
            // Bounded by PIECE, so it fits a usize.
            let len = (spec.size - offset).min(PIECE) as usize;
            let chunk = &mut buf[..len];
            content.fill(offset, chunk);
            file.write_all_at(chunk, offset)
                .with_context(|| format!("cannot write '{}' at offset {offset}", tmp.display()))?;
            bar.inc(len as u64);
            Ok(())
        });
    bar.finish_and_clear();
    written?;
    file.sync_all()
        .with_context(|| format!("cannot sync '{}' to disk", tmp.display()))?;
    drop(file);
    fs::rename(&tmp, &spec.path)
        .with_context(|| format!("cannot rename '{}' to '{}'", tmp.display(), spec.path.display()))?;
    guard.keep();
    Ok(())
}

/// Removes `<name>.tmp-<pid>` files (data or sidecar) left by a process that no longer runs, e.g. one killed by
/// SIGKILL while making this fixture. A live process's temporary file is left alone.
fn remove_orphaned_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let name = name.to_string_lossy();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let Some(rest) = file.strip_prefix(name.as_ref()) else {
            continue;
        };
        let pid = rest
            .strip_prefix(".tmp-")
            .or_else(|| rest.strip_prefix(".meta.json.tmp-"));
        if let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok())
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes the sidecar through its own temporary file, so that a reader never sees half of it.
fn write_sidecar(spec: &FixtureSpec) -> anyhow::Result<()> {
    let side = Sidecar {
        size_bytes: spec.size,
        seed: spec.seed,
        generator_version: pattern::GENERATOR_VERSION,
        created_utc: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        xferbench_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let path = sidecar_path(&spec.path);
    let tmp = with_suffix(&path, &format!(".tmp-{}", std::process::id()));
    let mut guard = TempGuard(Some(tmp.clone()));
    let mut text = serde_json::to_string_pretty(&side).context("cannot serialize the fixture sidecar")?;
    text.push('\n');
    fs::write(&tmp, text).with_context(|| format!("cannot write '{}'", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("cannot rename '{}' to '{}'", tmp.display(), path.display()))?;
    guard.keep();
    Ok(())
}

/// What a file that is not a regular file is, in words, for the `--file` error.
fn kind_of(ft: &fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_char_device() {
        "a character device"
    } else {
        "not a regular file"
    }
}

/// Opens a user's own file to send.
///
/// Everything the user must fix (missing, not a regular file, empty) is a `UsageError`; a file that exists but
/// cannot be opened is a runtime error.
pub fn open_user_file(path: &Path) -> anyhow::Result<Fixture> {
    let shown = path.display();
    let usage = |why: &str| -> anyhow::Error { UsageError::msg(format!("--file '{shown}': {why}")).into() };
    // Look before opening: opening a FIFO for reading would block until a writer appears.
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(if fs::symlink_metadata(path).is_ok() {
                usage("a symbolic link to a file that does not exist")
            } else {
                usage("no such file")
            });
        }
        Err(e) => return Err(e).with_context(|| format!("--file '{shown}': cannot look at it")),
    };
    if !meta.is_file() {
        return Err(usage(&format!("is {}, not a regular file", kind_of(&meta.file_type()))));
    }
    // O_NONBLOCK in case the path was swapped for a FIFO since the look: the open then returns at once.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => anyhow::Error::new(e).context(format!(
                "--file '{shown}': permission denied (cannot open it for reading)"
            )),
            _ => anyhow::Error::new(e).context(format!("--file '{shown}': cannot open it for reading")),
        })?;
    let meta = file
        .metadata()
        .with_context(|| format!("--file '{shown}': cannot read its metadata"))?;
    if !meta.is_file() {
        return Err(usage(&format!("is {}, not a regular file", kind_of(&meta.file_type()))));
    }
    if meta.len() == 0 {
        return Err(usage("the file is empty; there is nothing to send"));
    }
    Ok(Fixture {
        path: path.to_path_buf(),
        size: meta.len(),
        seed: None,
    })
}

/// Fails when the file's length is no longer `fixture.size`, e.g. it was truncated or rewritten during a run.
pub fn check_unchanged(fixture: &Fixture) -> anyhow::Result<()> {
    let shown = fixture.path.display();
    let len = fs::metadata(&fixture.path)
        .with_context(|| format!("the file to send '{shown}' cannot be read any more"))?
        .len();
    anyhow::ensure!(
        len == fixture.size,
        "the file to send '{shown}' changed size during the run: it was {} bytes, it is now {len} bytes",
        fixture.size
    );
    Ok(())
}

/// Reads a generated fixture back and returns the offset of its first byte that differs from the generator.
///
/// A file shorter than `fixture.size` differs at its end, a longer one at `fixture.size`. None means all good.
pub fn verify_file(fixture: &Fixture) -> anyhow::Result<Option<u64>> {
    let shown = fixture.path.display();
    let Some(seed) = fixture.seed else {
        anyhow::bail!("'{shown}' is not a generated fixture (no seed), so it cannot be verified");
    };
    let file = File::open(&fixture.path).with_context(|| format!("cannot open '{shown}' to verify it"))?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read the metadata of '{shown}'"))?
        .len();
    let common = len.min(fixture.size);
    let firsts = (0..common.div_ceil(PIECE))
        .into_par_iter()
        .map_init(
            || vec![0u8; PIECE as usize],
            |buf, index| -> anyhow::Result<Option<u64>> {
                let offset = index * PIECE;
                let chunk = &mut buf[..(common - offset).min(PIECE) as usize];
                file.read_exact_at(chunk, offset)
                    .with_context(|| format!("cannot read '{shown}' at offset {offset}"))?;
                Ok(pattern::first_mismatch(seed, offset, chunk))
            },
        )
        .collect::<anyhow::Result<Vec<_>>>()?;
    let first = firsts.into_iter().flatten().min();
    Ok(first.or((len != fixture.size).then_some(common)))
}

// The tests live in fixture/tests.rs to keep this file short.
#[cfg(test)]
mod tests;
