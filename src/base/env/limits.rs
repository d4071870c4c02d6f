//! What the process may use: the CPU and memory limits of the cgroup it runs in, and its CPU affinity. A
//! container capped at two CPUs runs parallel cases on two CPUs whatever the machine has, so the cap belongs in
//! the record. The cgroup is found from /proc/self/cgroup and the mounts (not a fixed /sys/fs/cgroup), limits
//! are the tightest of the cgroup and its ancestors (a parent's cap binds its children), and on a v1 or hybrid
//! host each limit is read where its controller is mounted.

use super::read::{self, UNKNOWN};
use super::record::Limits;
use procfs::process::MountInfo;
use std::path::{Path, PathBuf};

/// One line of /proc/self/cgroup: `hierarchy-id:controllers:path` (v2's line is `0::path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    pub hierarchy: String,
    pub controllers: Vec<String>,
    pub path: String,
}

impl CgroupLine {
    fn is_unified(&self) -> bool {
        self.hierarchy == "0" && self.controllers.is_empty()
    }
}

pub fn parse_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (hierarchy, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some(CgroupLine {
                hierarchy: hierarchy.to_string(),
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// The process's cgroup lines; empty when /proc/self/cgroup cannot be read.
pub fn own_cgroups() -> Vec<CgroupLine> {
    std::fs::read_to_string("/proc/self/cgroup")
        .map(|t| parse_cgroup(&t))
        .unwrap_or_default()
}

pub fn limits(cgroups: &[CgroupLine], mounts: &[MountInfo]) -> Limits {
    // A hierarchy that is not mounted, or that this process is not in, has no levels: its limits read as none.
    let unified = cgroups
        .iter()
        .find(|l| l.is_unified())
        .and_then(|l| levels(l, mounts, "cgroup2", None))
        .unwrap_or_default();
    let legacy = |controller: &str| {
        cgroups
            .iter()
            .find(|l| l.controllers.iter().any(|c| c == controller))
            .and_then(|l| levels(l, mounts, "cgroup", Some(controller)))
            .unwrap_or_default()
    };
    let (cpu, memory, cpuset) = (legacy("cpu"), legacy("memory"), legacy("cpuset"));
    let v1_memory_max = |dir: &Path| read::text(dir.join("memory.limit_in_bytes")).map(v1_memory);
    let innermost = |levels: &[PathBuf], file: &str| read::text(levels.first()?.join(file));
    Limits {
        cgroup_version: cgroup_version(cgroups),
        cpu_max: read::or_unknown(
            tightest(&unified, file("cpu.max"), cpu_share).or_else(|| tightest(&cpu, v1_cpu_max, cpu_share)),
        ),
        // cpuset's effective list already accounts for every ancestor.
        cpuset_cpus_effective: read::or_unknown(
            innermost(&unified, "cpuset.cpus.effective").or_else(|| innermost(&cpuset, "cpuset.effective_cpus")),
        ),
        memory_max: read::or_unknown(
            tightest(&unified, file("memory.max"), bytes).or_else(|| tightest(&memory, v1_memory_max, bytes)),
        ),
        // v1 has no counterpart of memory.high (its soft limit means something else), so it stays unknown there.
        memory_high: read::or_unknown(tightest(&unified, file("memory.high"), bytes)),
        affinity_cpus: read::or_unknown(affinity_cpus().map(|n| n.to_string())),
    }
}

/// A reader of one file in a cgroup directory.
fn file(name: &'static str) -> impl Fn(&Path) -> Option<String> {
    move |dir| read::text(dir.join(name))
}

/// "2", "1", or "1 and 2 (hybrid)", from which kinds of line /proc/self/cgroup has.
fn cgroup_version(cgroups: &[CgroupLine]) -> String {
    let unified = cgroups.iter().any(CgroupLine::is_unified);
    let legacy = cgroups.iter().any(|l| !l.is_unified());
    match (unified, legacy) {
        (true, false) => "2",
        (false, true) => "1",
        (true, true) => "1 and 2 (hybrid)",
        (false, false) => UNKNOWN,
    }
    .to_string()
}

/// The cgroup's directory and its ancestors up to the hierarchy's mount point, innermost first; `None` when the
/// hierarchy is not mounted where this process can see it.
pub fn levels(
    line: &CgroupLine,
    mounts: &[MountInfo],
    fs_type: &str,
    controller: Option<&str>,
) -> Option<Vec<PathBuf>> {
    let (mount, rel) = mounts.iter().find_map(|m| {
        let fits = m.fs_type == fs_type && controller.is_none_or(|c| m.super_options.contains_key(c));
        let rel = Path::new(&line.path).strip_prefix(&m.root).ok()?;
        fits.then_some((m, rel))
    })?;
    let dir = mount.mount_point.join(rel);
    Some(
        dir.ancestors()
            .take_while(|d| d.starts_with(&mount.mount_point))
            .map(Path::to_path_buf)
            .collect(),
    )
}

/// The tightest value of a limit over the levels that have the file; `size` ranks values ("max" is infinite).
fn tightest(levels: &[PathBuf], read: impl Fn(&Path) -> Option<String>, size: fn(&str) -> f64) -> Option<String> {
    levels
        .iter()
        .filter_map(|d| read(d))
        .min_by(|a, b| size(a).total_cmp(&size(b)))
}

/// CPUs a `cpu.max` value allows: quota / period, infinite for "max" or anything unreadable.
pub fn cpu_share(cpu_max: &str) -> f64 {
    let mut words = cpu_max.split_whitespace();
    match (
        words.next().and_then(|q| q.parse::<f64>().ok()),
        words.next().and_then(|p| p.parse::<f64>().ok()),
    ) {
        (Some(quota), Some(period)) if period > 0.0 => quota / period,
        _ => f64::INFINITY,
    }
}

/// Bytes, infinite for "max" or anything unreadable.
fn bytes(value: &str) -> f64 {
    value.parse::<f64>().unwrap_or(f64::INFINITY)
}

/// A v1 cpu controller's quota and period in cpu.max's form: "max 100000" when the quota is -1 (none).
fn v1_cpu_max(dir: &Path) -> Option<String> {
    let quota = read::text(dir.join("cpu.cfs_quota_us"))?;
    let period = read::text(dir.join("cpu.cfs_period_us"))?;
    Some(v1_cpu_max_of(&quota, &period))
}

pub fn v1_cpu_max_of(quota: &str, period: &str) -> String {
    let quota = if quota.starts_with('-') { "max" } else { quota };
    format!("{quota} {period}")
}

/// v1's memory.limit_in_bytes says "no limit" with LONG_MAX rounded down to a page; cgroup v2 says "max".
pub fn v1_memory(limit: String) -> String {
    const NO_LIMIT_FROM: u64 = i64::MAX as u64 & !0xffff;
    match limit.parse::<u64>() {
        Ok(v) if v >= NO_LIMIT_FROM => "max".to_string(),
        _ => limit,
    }
}

/// CPUs in this process's sched affinity mask.
fn affinity_cpus() -> Option<usize> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    Some(
        (0..nix::sched::CpuSet::count())
            .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
            .count(),
    )
}
