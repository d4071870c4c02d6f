//! The processor and memory: model and count, the frequency policy (a `powersave` governor or boost switched
//! off moves single-stream numbers more than most kernel changes), SMT, NUMA, memory size and transparent huge
//! pages. Machines without cpufreq (most VMs) report those items as unknown.

use super::read::{self, UNKNOWN};
use super::record::{Cpu, Memory};
use std::path::Path;

const CPU: &str = "/sys/devices/system/cpu";
const THP: &str = "/sys/kernel/mm/transparent_hugepage";

/// CPU model, online CPUs and memory in bytes, as sysinfo reads them; `None` when it cannot.
pub fn cpu_and_memory() -> Option<(String, u32, u64)> {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
    let refresh = RefreshKind::nothing()
        .with_cpu(CpuRefreshKind::nothing())
        .with_memory(MemoryRefreshKind::nothing().with_ram());
    let sys = System::new_with_specifics(refresh).ok()?;
    let model = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .unwrap_or_else(|| UNKNOWN.into());
    Some((model, sys.cpus().len() as u32, sys.total_memory()))
}

pub fn cpu(facts: Option<&(String, u32, u64)>) -> Cpu {
    let freq = |name: &str| read::value(format!("{CPU}/cpu0/cpufreq/{name}"));
    Cpu {
        model: read::or_unknown(facts.map(|f| f.0.clone())),
        logical_cpus: read::or_unknown(facts.filter(|f| f.1 > 0).map(|f| f.1.to_string())),
        online: read::value(format!("{CPU}/online")),
        governor: freq("scaling_governor"),
        governors_agree: read::or_unknown(governors_agree(Path::new(CPU)).map(read::yes_no)),
        scaling_driver: freq("scaling_driver"),
        scaling_min_freq_khz: freq("scaling_min_freq"),
        scaling_max_freq_khz: freq("scaling_max_freq"),
        cpuinfo_max_freq_khz: freq("cpuinfo_max_freq"),
        boost: boost(),
        smt_active: read::value(format!("{CPU}/smt/active")),
        smt_control: read::value(format!("{CPU}/smt/control")),
        numa_nodes_online: read::value("/sys/devices/system/node/online"),
    }
}

/// Whether every CPU's cpufreq governor equals the first one's; `None` when no CPU has cpufreq.
pub fn governors_agree(cpu_dir: &Path) -> Option<bool> {
    let governors: Vec<String> = std::fs::read_dir(cpu_dir)
        .ok()?
        .flatten()
        .filter(|e| is_cpu_dir(&e.file_name().to_string_lossy()))
        .filter_map(|e| read::text(e.path().join("cpufreq/scaling_governor")))
        .collect();
    let first = governors.first()?;
    Some(governors.iter().all(|g| g == first))
}

/// `cpu7`, not `cpuidle` or `cpufreq`.
fn is_cpu_dir(name: &str) -> bool {
    name.strip_prefix("cpu")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// "on" or "off": cpufreq's global `boost` (acpi-cpufreq), cpu0's policy `boost` (amd-pstate), or intel_pstate's
/// `no_turbo`, which says the opposite.
fn boost() -> String {
    let on = read::text(format!("{CPU}/cpufreq/boost"))
        .or_else(|| read::text(format!("{CPU}/cpu0/cpufreq/boost")))
        .map(|boost| boost == "1")
        .or_else(|| read::text(format!("{CPU}/intel_pstate/no_turbo")).map(|no_turbo| no_turbo == "0"));
    read::or_unknown(on.map(|on| if on { "on" } else { "off" }.to_string()))
}

pub fn memory(facts: Option<&(String, u32, u64)>) -> Memory {
    let choice = |name: &str| read::or_unknown(read::text(format!("{THP}/{name}")).and_then(|t| read::bracketed(&t)));
    Memory {
        total_bytes: read::or_unknown(facts.filter(|f| f.2 > 0).map(|f| f.2.to_string())),
        thp_enabled: choice("enabled"),
        thp_defrag: choice("defrag"),
    }
}
