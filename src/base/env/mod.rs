//! The machine a result came from. `Environment` is the short form every row and summary carries, so result
//! sets from different hosts and kernels can be told apart without asking anyone; `Record` is the full account
//! of what shapes a run's numbers (kernel, mitigations, TCP sysctls, the interface's offloads, CPU frequency
//! policy, cgroup limits, virtualisation, storage, kernel features, the build), so two result sets can say
//! which of those differ (`differences`). Every item is read from the machine or recorded as "unknown".

mod diff;
mod features;
mod kernel;
mod limits;
mod machine;
mod net;
mod read;
mod record;
mod storage;
#[cfg(test)]
mod tests;
mod virt;

pub use diff::{ABSENT, Difference, differences, render_text};
pub use net::{ethtool, mtu_of};
pub use record::{
    Build, Cpu, Features, Guest, Interface, Kernel, Limits, Memory, Net, Record, Storage, Virtualisation,
};

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
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
        let host = nix::unistd::gethostname()
            .ok()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|| "unknown".into());
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into());
        let (cpu_model, logical_cpus, memory_bytes) =
            machine::cpu_and_memory().unwrap_or_else(|| ("unknown".into(), 0, 0));
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

/// `xferbench env`: the record of this machine as a listing, or as the JSON summary.json holds.
pub fn command(args: crate::base::cli::EnvArgs) -> anyhow::Result<String> {
    use std::net::ToSocketAddrs;
    let peer = match &args.connect {
        Some(hostport) => Some(
            hostport
                .to_socket_addrs()
                .map_err(|e| {
                    crate::base::error::UsageError::new("--connect", hostport, format!("cannot resolve it ({e})"))
                })?
                .next()
                .ok_or_else(|| crate::base::error::UsageError::new("--connect", hostport, "resolves to no address"))?
                .ip(),
        ),
        None => None,
    };
    let file = args.file.unwrap_or_else(|| ".".into());
    let record = detect(&file, peer);
    Ok(match args.json || args.format == crate::base::cli::Format::Json {
        true => serde_json::to_string_pretty(&record)? + "\n",
        false => cc_line(&record) + &render_text(&record),
    })
}

/// The line `env` opens with: the congestion control new sockets get, which decides single-stream numbers most.
fn cc_line(record: &Record) -> String {
    let get = |name: &str| record.net.sysctl.get(name).cloned().unwrap_or_else(|| "unknown".into());
    let cc = get("net.ipv4.tcp_congestion_control");
    let paces = if cc.starts_with("bbr") {
        " (it paces every flow, loopback too: `run --cc cubic,bbr` shows what that costs)"
    } else {
        ""
    };
    format!(
        "congestion control: {cc}{paces}; available: {}; `run --cc LIST` sets it per case\n\n",
        get("net.ipv4.tcp_available_congestion_control")
    )
}

/// Records everything that shapes a run's numbers on this machine: `test_file` names the storage to describe,
/// `peer` the receiving host (`None` or a loopback address: the run stays on this box, over `lo`).
pub fn detect(test_file: &Path, peer: Option<IpAddr>) -> Record {
    let params = kernel::boot_params();
    let mounts = own_mounts();
    let cgroups = limits::own_cgroups();
    let facts = machine::cpu_and_memory();
    let kernel = kernel::kernel(params.as_deref());
    let features = features::features(&kernel.release);
    Record {
        cpu_vulnerabilities: kernel::vulnerabilities(),
        net: Net {
            sysctl: kernel::net_sysctls(),
            interface: net::interface(peer),
        },
        cpu: machine::cpu(facts.as_ref()),
        memory: machine::memory(facts.as_ref()),
        limits: limits::limits(&cgroups, &mounts),
        virt: virt::virtualisation(&cgroups),
        guest: kernel::guest(params.as_deref()),
        storage: storage::storage(test_file, &mounts),
        features,
        build: features::build(),
        kernel,
    }
}

/// This process's mounts; empty when /proc/self/mountinfo cannot be read (every item that needs one is then
/// unknown).
fn own_mounts() -> Vec<procfs::process::MountInfo> {
    procfs::process::Process::myself()
        .and_then(|p| p.mountinfo())
        .map(|m| m.0)
        .unwrap_or_default()
}

/// The type of the file system whose mount point is the longest prefix of `path`.
pub fn file_system_of(path: &Path) -> Option<String> {
    storage::mount_of(path, &own_mounts()).map(|m| m.fs_type.clone())
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
