//! The machine a result came from: every row and every summary carries it, so result sets from different
//! hosts and kernels can be told apart and compared without asking anyone.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// What the run knows about the machine it ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub host: String,
    /// Kernel release, as `uname -r`.
    pub kernel: String,
    pub cpu_model: String,
    pub logical_cpus: u32,
    pub memory_bytes: u64,
    /// File system type of the test file's mount (from /proc/self/mountinfo).
    pub file_system: String,
    pub xferbench_version: String,
    /// The command line that started the run.
    pub command_line: String,
}

impl Environment {
    /// Reads the machine's facts; a fact that cannot be read is left as `unknown`, never guessed.
    pub fn detect(test_file: &Path) -> Environment {
        use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
        let uts = nix::sys::utsname::uname().ok();
        let host = nix::unistd::gethostname()
            .ok()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|| "unknown".into());
        let kernel = uts
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_else(|| "unknown".into());
        let refresh = RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram());
        let (cpu_model, logical_cpus, memory_bytes) = match System::new_with_specifics(refresh) {
            Ok(sys) => (
                sys.cpus()
                    .first()
                    .map(|c| c.brand().trim().to_string())
                    .unwrap_or_else(|| "unknown".into()),
                sys.cpus().len() as u32,
                sys.total_memory(),
            ),
            Err(_) => ("unknown".into(), 0, 0),
        };
        Environment {
            host,
            kernel,
            cpu_model,
            logical_cpus,
            memory_bytes,
            file_system: file_system_of(test_file).unwrap_or_else(|| "unknown".into()),
            xferbench_version: env!("CARGO_PKG_VERSION").to_string(),
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
        }
    }
}

/// The type of the file system whose mount point is the longest prefix of `path`.
pub fn file_system_of(path: &Path) -> Option<String> {
    let full = std::fs::canonicalize(path).ok()?;
    let mounts = procfs::process::Process::myself().ok()?.mountinfo().ok()?;
    mounts
        .0
        .into_iter()
        .filter(|m| full.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
        .map(|m| m.fs_type)
}

/// Reads the kernel's boot id: two processes that see the same one share CLOCK_MONOTONIC.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// CLOCK_MONOTONIC now, in nanoseconds: comparable between processes on one kernel.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always there");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_this_machine() {
        let env = Environment::detect(Path::new("."));
        assert!(!env.kernel.is_empty() && env.kernel != "unknown");
        assert!(env.logical_cpus >= 1);
        assert!(env.memory_bytes > 0);
        assert_ne!(env.file_system, "unknown");
        assert_eq!(boot_id().len(), 36);
    }
}
