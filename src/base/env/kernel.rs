//! The kernel's part of the record: release and version, the mitigations asked for at boot and the CPU
//! vulnerability states the kernel reports, the TCP sysctls, and the parameters xferbench's guest launcher puts
//! on the command line. Mitigations alone can move a syscall-heavy method by tens of percent, so they are
//! recorded beside the release rather than inferred from it.

use super::read::{self, UNKNOWN};
use super::record::{Guest, Kernel};
use std::collections::BTreeMap;

const VULNERABILITIES: &str = "/sys/devices/system/cpu/vulnerabilities";

/// Net sysctls that shape TCP on one box, in `sysctl`'s dotted names.
pub const NET_SYSCTLS: &[&str] = &[
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.core.rmem_default",
    "net.core.wmem_default",
    "net.core.optmem_max",
    "net.core.netdev_max_backlog",
    "net.core.default_qdisc",
    // Absent before 5.19: recorded as unknown there.
    "net.core.skb_defer_max",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_congestion_control",
    "net.ipv4.tcp_available_congestion_control",
    "net.ipv4.tcp_allowed_congestion_control",
    "net.ipv4.tcp_autocorking",
    "net.ipv4.tcp_mtu_probing",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_sack",
    "net.ipv4.tcp_window_scaling",
    "net.ipv4.tcp_notsent_lowat",
    "net.ipv4.tcp_limit_output_bytes",
    "net.ipv4.tcp_available_ulp",
];

/// The launcher's parameters, `xferbench.NAME=`, in the order the record lists them.
const GUEST_PARAMS: &[&str] = &["hypervisor", "accel", "vcpus", "mem_mib", "storage"];
const NOT_SET: &str = "not set";
const NOT_A_GUEST: &str = "not a guest of xferbench's launcher";
const LAUNCHER: &str = "xferbench's guest launcher";

/// The boot command line's parameters; `None` when /proc/cmdline cannot be read.
pub fn boot_params() -> Option<Vec<(String, Option<String>)>> {
    read::text("/proc/cmdline").map(|line| read::boot_params(&line))
}

pub fn kernel(params: Option<&[(String, Option<String>)]>) -> Kernel {
    let uts = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        read::or_unknown(uts.as_ref().map(|u| f(u).to_string_lossy().into_owned()))
    };
    Kernel {
        release: field(|u| u.release()),
        version: field(|u| u.version()),
        mitigations: match params {
            None => UNKNOWN.to_string(),
            Some(p) => mitigations(p),
        },
    }
}

/// `mitigations=`'s value, or "not set" (the kernel then applies its built-in default, `auto` today).
pub fn mitigations(params: &[(String, Option<String>)]) -> String {
    read::last_param(params, "mitigations").unwrap_or(NOT_SET).to_string()
}

/// Every vulnerability file and what it says; empty when the directory cannot be listed (kernels before 4.15
/// have none).
pub fn vulnerabilities() -> BTreeMap<String, String> {
    let Ok(dir) = std::fs::read_dir(VULNERABILITIES) else {
        return BTreeMap::new();
    };
    dir.flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), read::value(e.path())))
        .collect()
}

/// Every sysctl in `NET_SYSCTLS`, each "unknown" when it cannot be read.
pub fn net_sysctls() -> BTreeMap<String, String> {
    NET_SYSCTLS
        .iter()
        .map(|name| (name.to_string(), read::value(sysctl_path(name))))
        .collect()
}

/// /proc/sys path of a dotted sysctl name.
pub fn sysctl_path(name: &str) -> String {
    format!("/proc/sys/{}", name.replace('.', "/"))
}

/// The launcher's parameters, each "not set" when absent; `booted_by` says whether the launcher booted this
/// kernel at all (any `xferbench.` parameter present).
pub fn guest(params: Option<&[(String, Option<String>)]>) -> Guest {
    let Some(params) = params else {
        return Guest::default();
    };
    let get = |name: &str| read::last_param(params, &format!("xferbench.{name}")).map(str::to_string);
    let booted = GUEST_PARAMS.iter().any(|p| get(p).is_some());
    let field = |name: &str| get(name).unwrap_or_else(|| NOT_SET.to_string());
    Guest {
        booted_by: if booted { LAUNCHER } else { NOT_A_GUEST }.to_string(),
        hypervisor: field("hypervisor"),
        accel: field("accel"),
        vcpus: field("vcpus"),
        mem_mib: field("mem_mib"),
        storage: field("storage"),
    }
}
