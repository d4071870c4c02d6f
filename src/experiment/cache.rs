//! Page-cache state of the test file: warm it, evict it, measure it.
//!
//! A case is labelled warm or cold; `residency` (mincore over a mapping that is never touched) measures what the
//! label claims, and `contradicts` says when the measurement and the label disagree enough to distrust the case.

use crate::base::error::UsageError;
use anyhow::Context;
use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

/// A warm case whose file is less resident than this was not really warm.
pub const WARM_MIN_RATIO: f64 = 0.98;
/// A cold case whose file is more resident than this was not really cold.
pub const COLD_MAX_RATIO: f64 = 0.02;

/// Size of each read while warming: big enough that syscall cost is nothing next to the copy.
const WARM_READ: usize = 1 << 20;

const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

fn open(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("cannot open '{}'", path.display()))
}

/// Reads the whole file so that its pages are resident, unless they all are already.
pub fn warm(path: &Path) -> anyhow::Result<()> {
    // Every page already resident (the usual case between warm repetitions): reading 1.2 GB again would change
    // nothing but the time a round takes.
    if residency(path)? >= 1.0 {
        return Ok(());
    }
    let mut file = open(path)?;
    // WILLNEED starts readahead of the whole file at once; the reads below then make sure of every page.
    posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_WILLNEED)
        .with_context(|| format!("posix_fadvise(WILLNEED) failed on '{}'", path.display()))?;
    let mut buf = vec![0u8; WARM_READ];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read '{}' to warm it", path.display())),
        }
    }
}

/// Tries of POSIX_FADV_DONTNEED before giving up on pages that stay resident (about one second in all).
const EVICT_ATTEMPTS: u32 = 10;

/// Writes back and evicts the file's pages; with `drop_all` also drops the whole page cache (root only).
pub fn evict(path: &Path, drop_all: bool) -> anyhow::Result<()> {
    if drop_all {
        require_root_for_drop(is_root())?;
    }
    let file = open(path)?;
    // DONTNEED silently skips dirty pages, so a freshly written file must be written back first.
    nix::unistd::fdatasync(&file).with_context(|| format!("fdatasync failed on '{}'", path.display()))?;
    // DONTNEED also skips pages something still holds. Right after a sendfile over loopback, socket buffers that
    // the receiver consumed still reference page-cache pages: the kernel defers freeing them to the CPU that
    // allocated them (net.core.skb_defer_max), which does it at its next network softirq, possibly seconds later
    // on an idle CPU. Give every CPU that softirq first, then ask again, briefly, until the residency agrees; the
    // caller measures and records whatever it ends at.
    flush_deferred_socket_buffers();
    for attempt in 0..EVICT_ATTEMPTS {
        posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
            .with_context(|| format!("posix_fadvise(DONTNEED) failed on '{}'", path.display()))?;
        if attempt + 1 == EVICT_ATTEMPTS || residency(path)? <= COLD_MAX_RATIO {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20 * (attempt as u64 + 1)));
    }
    drop(file);
    if drop_all {
        drop_all_caches()?;
    }
    Ok(())
}

/// Runs a network receive softirq on every CPU this process may use, by sending one loopback datagram from a
/// thread pinned there: each CPU then frees the socket buffers whose freeing it had deferred. Best effort: a CPU
/// that cannot be reached keeps its buffers, and the residency measured afterwards shows it.
fn flush_deferred_socket_buffers() {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;
    let Ok(allowed) = sched_getaffinity(Pid::from_raw(0)) else {
        return;
    };
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect();
    std::thread::scope(|scope| {
        for cpu in cpus {
            scope.spawn(move || {
                let mut set = CpuSet::new();
                if set.set(cpu).is_err() || sched_setaffinity(Pid::from_raw(0), &set).is_err() {
                    return;
                }
                let Ok(sock) = std::net::UdpSocket::bind("127.0.0.1:0") else {
                    return;
                };
                let _ = sock.set_read_timeout(Some(std::time::Duration::from_millis(100)));
                if let Ok(addr) = sock.local_addr()
                    && sock.send_to(&[0], addr).is_ok()
                {
                    let _ = sock.recv(&mut [0u8; 1]);
                }
            });
        }
    });
}

fn require_root_for_drop(root: bool) -> anyhow::Result<()> {
    if !root {
        return Err(UsageError::msg("--drop-caches needs root; run as root or leave the flag out").into());
    }
    Ok(())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Empties the whole page cache (clean pages only, hence the sync first).
fn drop_all_caches() -> anyhow::Result<()> {
    nix::unistd::sync();
    std::fs::write(DROP_CACHES, "1\n").map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EROFS) => "/proc/sys is mounted read-only here (a container?)",
            Some(libc::EACCES) | Some(libc::EPERM) => "not allowed here (a container without CAP_SYS_ADMIN?)",
            _ => "the kernel refused",
        };
        anyhow::Error::new(e).context(format!(
            "--drop-caches: cannot write to {DROP_CACHES}: {hint}; run without --drop-caches"
        ))
    })
}

/// Fraction of the file's pages resident in the page cache (mincore).
pub fn residency(path: &Path) -> anyhow::Result<f64> {
    let shown = path.display();
    let file = open(path)?;
    let size = file
        .metadata()
        .with_context(|| format!("cannot read the metadata of '{shown}'"))?
        .len();
    if size == 0 {
        anyhow::bail!("cannot measure the residency of '{shown}': empty file");
    }
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .context("sysconf(_SC_PAGESIZE) failed")?
        .and_then(|p| usize::try_from(p).ok())
        .filter(|&p| p > 0)
        .context("sysconf(_SC_PAGESIZE) gave no page size")?;
    // SAFETY: memmap2 marks mapping unsafe because the file may change under it; this mapping's memory is never
    // read (mincore looks at the page tables and the page cache), so no page is faulted in and a concurrent
    // truncation cannot raise SIGBUS here.
    let map = unsafe { memmap2::MmapOptions::new().map(&file) }.with_context(|| format!("cannot mmap '{shown}'"))?;
    let pages = map.len().div_ceil(page);
    let mut vec = vec![0u8; pages];
    // SAFETY: the range is the whole live mapping (page-aligned start, as mmap returns), and `vec` holds one byte
    // for each of its ceil(len / page) pages, as mincore writes.
    let rc = unsafe { libc::mincore(map.as_ptr() as *mut libc::c_void, map.len(), vec.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("mincore failed on '{shown}'"));
    }
    drop(map);
    let resident = vec.iter().filter(|&&v| v & 1 != 0).count();
    Ok(resident as f64 / pages as f64)
}

/// True when a measured residency belies the case's label: a warm case below `WARM_MIN_RATIO`, a cold one above
/// `COLD_MAX_RATIO`. A ratio that is not a number belies either label.
pub fn contradicts(label_is_warm: bool, ratio: f64) -> bool {
    if ratio.is_nan() {
        return true;
    }
    if label_is_warm {
        ratio < WARM_MIN_RATIO
    } else {
        ratio > COLD_MAX_RATIO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tempfile::TempDir;

    /// tmpfs pages live only in the page cache (or swap): there DONTNEED has nothing to drop.
    fn cannot_evict_here(dir: &Path) -> Option<&'static str> {
        let fs = nix::sys::statfs::statfs(dir).ok()?;
        (fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
            .then_some("the temporary directory is on tmpfs, whose pages cannot be evicted")
    }

    fn write_file(dir: &TempDir, size: usize) -> std::path::PathBuf {
        let path = dir.path().join("data.bin");
        let mut data = vec![0u8; size];
        crate::experiment::pattern::fill(9, 0, &mut data);
        let mut f = File::create(&path).unwrap();
        f.write_all(&data).unwrap();
        path
    }

    #[test]
    fn evict_then_warm_moves_the_residency() {
        let dir = TempDir::new().unwrap();
        // Not a whole number of pages, so that the last, partial page counts too.
        let path = write_file(&dir, (4 << 20) + 100);
        let fresh = residency(&path).unwrap();
        evict(&path, false).unwrap();
        let evicted = residency(&path).unwrap();
        eprintln!("residency: freshly written {fresh:.3}, after fdatasync + DONTNEED {evicted:.3}");
        match cannot_evict_here(dir.path()) {
            Some(why) if evicted > COLD_MAX_RATIO => eprintln!("NOT CHECKED: eviction left {evicted:.3}: {why}"),
            _ => assert!(evicted <= COLD_MAX_RATIO, "still {evicted:.3} resident after evict"),
        }
        warm(&path).unwrap();
        let warmed = residency(&path).unwrap();
        assert!(warmed >= WARM_MIN_RATIO, "only {warmed:.3} resident after warm");
        // Measuring must not fault pages in: after another eviction a measurement still reads cold.
        evict(&path, false).unwrap();
        if cannot_evict_here(dir.path()).is_none() {
            assert!(residency(&path).unwrap() <= COLD_MAX_RATIO);
            assert!(
                residency(&path).unwrap() <= COLD_MAX_RATIO,
                "the first measurement faulted pages in"
            );
        }
    }

    #[test]
    fn an_empty_or_missing_file_has_no_residency() {
        let dir = TempDir::new().unwrap();
        let empty = dir.path().join("empty");
        File::create(&empty).unwrap();
        assert!(format!("{:#}", residency(&empty).unwrap_err()).contains("empty file"));
        let missing = dir.path().join("missing");
        assert!(format!("{:#}", residency(&missing).unwrap_err()).contains("missing"));
        assert!(warm(&missing).is_err());
        assert!(evict(&missing, false).is_err());
    }

    #[test]
    fn drop_all_needs_root() {
        // Only the refusal is tested: really dropping the whole page cache would upset the warm checks of the
        // tests that run alongside (and everything else on the machine).
        let e = require_root_for_drop(false).unwrap_err();
        assert!(e.chain().any(|c| c.is::<UsageError>()));
        assert!(e.to_string().contains("--drop-caches needs root"), "{e}");
        require_root_for_drop(true).unwrap();
    }

    #[test]
    fn contradiction_truth_table() {
        assert!(!contradicts(true, 1.0));
        assert!(!contradicts(true, WARM_MIN_RATIO));
        assert!(contradicts(true, 0.97));
        assert!(contradicts(true, 0.0));
        assert!(!contradicts(false, 0.0));
        assert!(!contradicts(false, COLD_MAX_RATIO));
        assert!(contradicts(false, 0.03));
        assert!(contradicts(false, 1.0));
        assert!(contradicts(true, f64::NAN));
        assert!(contradicts(false, f64::NAN));
    }
}
