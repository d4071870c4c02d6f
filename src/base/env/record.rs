//! The record's shape: one section per thing that shapes a run's numbers, every value a string that is either
//! what the machine said or "unknown". Each section's field names are also its item names (`items`), so the JSON,
//! the listing and the differences cannot drift apart; every section reads partial JSON, a missing field being
//! "unknown", so a summary.json from an older xferbench still loads.

use super::read::UNKNOWN;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A section whose fields are all strings: `Default` makes each "unknown", and `push_items` lists them in
/// declaration order under a prefix.
macro_rules! section {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: String,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: UNKNOWN.to_string(),)* }
            }
        }

        impl $name {
            fn push_items(&self, prefix: &'static str, out: &mut Vec<Item>) {
                $(out.push(Item::new(prefix, stringify!($field), &self.$field));)*
            }
        }
    };
}

/// One line of the flattened record: its section's prefix, its name there, its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Item {
    pub section: &'static str,
    pub name: String,
    pub value: String,
}

impl Item {
    fn new(section: &'static str, name: &str, value: &str) -> Item {
        Item {
            section,
            name: name.to_string(),
            value: value.to_string(),
        }
    }

    /// The dotted name: `kernel.release`, `net.sysctl.net.ipv4.tcp_rmem`.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.section, self.name)
    }
}

/// Everything recorded about the machine, kernel and build a run came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    pub kernel: Kernel,
    /// /sys/devices/system/cpu/vulnerabilities: file name -> the kernel's statement (kernels add files).
    pub cpu_vulnerabilities: BTreeMap<String, String>,
    pub net: Net,
    pub cpu: Cpu,
    pub memory: Memory,
    pub limits: Limits,
    pub virt: Virtualisation,
    pub guest: Guest,
    pub storage: Storage,
    pub features: Features,
    pub build: Build,
}

section! {
    /// The running kernel and how its speculation mitigations were asked for.
    pub struct Kernel {
        /// `uname -r`.
        pub release,
        /// `uname -v`: build number, preemption model and build date.
        pub version,
        /// The boot command line's `mitigations=` value, or "not set".
        pub mitigations,
    }
}

/// Networking that shapes TCP on one box.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Net {
    /// Sysctl name (dotted, as `sysctl` prints it) -> value, white space made single spaces.
    pub sysctl: BTreeMap<String, String>,
    pub interface: Interface,
}

section! {
    /// The interface the run's connections use: `lo` on one box, else the one routing to the peer.
    pub struct Interface {
        pub name,
        pub mtu_bytes,
        /// Largest segment the stack builds for it (rtnetlink IFLA_GSO_MAX_SIZE; sysfs does not carry it).
        pub gso_max_size_bytes,
        pub gro_max_size_bytes,
        pub tso_max_size_bytes,
        /// Offloads as the legacy ethtool ioctls report them: "on" or "off".
        pub tso,
        pub gso,
        pub gro,
    }
}

section! {
    /// The processor and its frequency policy.
    pub struct Cpu {
        pub model,
        /// CPUs online (count).
        pub logical_cpus,
        /// CPUs online (list, /sys/devices/system/cpu/online).
        pub online,
        /// cpu0's cpufreq governor.
        pub governor,
        /// Whether every CPU with cpufreq has cpu0's governor: "yes" or "no".
        pub governors_agree,
        pub scaling_driver,
        pub scaling_min_freq_khz,
        pub scaling_max_freq_khz,
        pub cpuinfo_max_freq_khz,
        /// Turbo/boost: "on" or "off" (cpufreq/boost, or intel_pstate/no_turbo inverted).
        pub boost,
        pub smt_active,
        pub smt_control,
        pub numa_nodes_online,
    }
}

section! {
    /// Memory size and huge-page policy.
    pub struct Memory {
        pub total_bytes,
        /// Transparent huge pages: the selected choice of `enabled` and `defrag`.
        pub thp_enabled,
        pub thp_defrag,
    }
}

section! {
    /// What the process may use: its cgroup's limits and its CPU affinity.
    pub struct Limits {
        /// "2" (unified) or "1" (legacy controllers; a hybrid host reads each limit where its controller is).
        pub cgroup_version,
        /// cgroup v2 cpu.max ("max 100000" = no quota), or v1 cfs_quota_us and cfs_period_us in that form.
        pub cpu_max,
        pub cpuset_cpus_effective,
        /// Bytes, or "max".
        pub memory_max,
        /// Bytes, or "max" (cgroup v2 only).
        pub memory_high,
        /// CPUs in this process's sched affinity mask (count).
        pub affinity_cpus,
    }
}

section! {
    /// The hypervisor or container the machine is, if any.
    pub struct Virtualisation {
        /// From CPUID: "none" (hypervisor bit clear), "kvm", "tcg" (QEMU emulating), "hyperv", "vmware",
        /// "xen", ... or "other"; "unknown" off x86_64.
        pub hypervisor,
        /// CPUID leaf 0x40000000's vendor signature as read (NULs dropped).
        pub cpuid_signature,
        pub dmi_sys_vendor,
        pub dmi_product_name,
        /// Hints found: "docker" (/.dockerenv), "podman" (/run/.containerenv), a runtime named in the cgroup
        /// path, or "none found".
        pub container,
    }
}

section! {
    /// What xferbench's guest launcher put on the kernel command line (`xferbench.*`), when it booted this one.
    pub struct Guest {
        /// "xferbench's guest launcher" or "not a guest of xferbench's launcher".
        pub booted_by,
        pub hypervisor,
        /// "kvm" or "tcg".
        pub accel,
        pub vcpus,
        pub mem_mib,
        pub storage,
    }
}

section! {
    /// Where the test file lives.
    pub struct Storage {
        pub file_system,
        /// The whole disk behind the mount (a partition's parent), e.g. "nvme0n1".
        pub device,
        /// The mount's major:minor.
        pub device_numbers,
        /// The disk queue's I/O scheduler.
        pub scheduler,
        /// "1" for spinning media.
        pub rotational,
        pub model,
    }
}

section! {
    /// Kernel features some methods need.
    pub struct Features {
        /// /proc/sys/kernel/io_uring_disabled (kernel 6.6 and later).
        pub io_uring_disabled,
        /// Whether this process could set up a ring: "ok" or "failed: ERRNO".
        pub io_uring_setup,
        /// The TLS ULP: "available" (registered), "loadable" (tls module installed), or "not available".
        pub tls_ulp,
    }
}

section! {
    /// The xferbench that recorded this.
    pub struct Build {
        pub xferbench_version,
        /// The git commit it was built from, "-dirty" when the tree had changes.
        pub git_commit,
    }
}

impl Record {
    /// The record as dotted names and values, in a stable order, kernel first.
    pub fn items(&self) -> Vec<(String, String)> {
        self.item_list().into_iter().map(|i| (i.full_name(), i.value)).collect()
    }

    pub(super) fn item_list(&self) -> Vec<Item> {
        let mut out = Vec::new();
        self.kernel.push_items("kernel", &mut out);
        push_map("cpu.vulnerabilities", &self.cpu_vulnerabilities, &mut out);
        push_map("net.sysctl", &self.net.sysctl, &mut out);
        self.net.interface.push_items("net.interface", &mut out);
        self.cpu.push_items("cpu", &mut out);
        self.memory.push_items("memory", &mut out);
        self.limits.push_items("limits", &mut out);
        self.virt.push_items("virt", &mut out);
        self.guest.push_items("guest", &mut out);
        self.storage.push_items("storage", &mut out);
        self.features.push_items("features", &mut out);
        self.build.push_items("build", &mut out);
        out
    }

    /// Whether the CPU was emulated (QEMU's TCG), from the launcher's parameters or the CPUID signature:
    /// such numbers say little about real hardware.
    pub fn emulated(&self) -> bool {
        self.guest.accel == "tcg" || self.virt.hypervisor == "tcg"
    }
}

fn push_map(section: &'static str, map: &BTreeMap<String, String>, out: &mut Vec<Item>) {
    out.extend(map.iter().map(|(name, value)| Item::new(section, name, value)));
}
