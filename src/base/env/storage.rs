//! Where the test file lives: its file system, and the disk behind the mount with the queue settings that shape
//! cold-cache reads (the I/O scheduler, rotational or not). A partition shares its disk's queue, so the queue is
//! read from the whole disk.

use super::read::{self, UNKNOWN};
use super::record::Storage;
use procfs::process::MountInfo;
use std::path::{Path, PathBuf};

/// The mount whose mount point is the longest prefix of `path` (made absolute and free of links first).
pub fn mount_of<'a>(path: &Path, mounts: &'a [MountInfo]) -> Option<&'a MountInfo> {
    let full = std::fs::canonicalize(path).ok()?;
    mounts
        .iter()
        .filter(|m| full.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
}

pub fn storage(test_file: &Path, mounts: &[MountInfo]) -> Storage {
    let Some(mount) = mount_of(test_file, mounts) else {
        return Storage::default();
    };
    let disk = if mount.majmin.starts_with("0:") {
        None
    } else {
        disk_of(&mount.majmin)
    };
    let device = match &disk {
        Some(d) => read::or_unknown(d.file_name().map(|n| n.to_string_lossy().into_owned())),
        // Major 0 is the kernel's unnamed devices: tmpfs, overlayfs, NFS and the like have no disk to name.
        None if mount.majmin.starts_with("0:") => "none (no block device)".to_string(),
        None => UNKNOWN.to_string(),
    };
    let disk_value = |rel: &str, f: fn(String) -> Option<String>| {
        read::or_unknown(disk.as_ref().and_then(|d| read::text(d.join(rel))).and_then(f))
    };
    Storage {
        file_system: mount.fs_type.clone(),
        device,
        device_numbers: mount.majmin.clone(),
        scheduler: disk_value("queue/scheduler", |t| read::bracketed(&t)),
        rotational: disk_value("queue/rotational", Some),
        model: disk_value("device/model", Some),
    }
}

/// The sysfs directory of the whole disk holding device `majmin`: a partition's parent.
fn disk_of(majmin: &str) -> Option<PathBuf> {
    let dev = std::fs::canonicalize(format!("/sys/dev/block/{majmin}")).ok()?;
    if dev.join("partition").exists() {
        dev.parent().map(Path::to_path_buf)
    } else {
        Some(dev)
    }
}
