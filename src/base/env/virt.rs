//! Whether the machine is virtual, and what runs it. A KVM guest pays for exits a bare machine does not, and a
//! guest emulated by QEMU's TCG runs a few times slower than either, so the hypervisor is read from the CPU
//! itself (CPUID), not from what DMI strings a vendor chose; DMI and container hints are recorded beside it.

use super::limits::CgroupLine;
use super::read::{self, UNKNOWN};
use super::record::Virtualisation;
use std::path::Path;

/// CPUID vendor signatures of leaf 0x40000000 and the names the record uses for them.
const HYPERVISORS: &[(&str, &str)] = &[
    ("KVMKVMKVM", "kvm"),
    ("TCGTCGTCGTCG", "tcg"),
    ("Microsoft Hv", "hyperv"),
    ("VMwareVMware", "vmware"),
    ("XenVMMXenVMM", "xen"),
    ("VBoxVBoxVBox", "virtualbox"),
    (" lrpepyh  vr", "parallels"),
    ("bhyve bhyve ", "bhyve"),
    ("ACRNACRNACRN", "acrn"),
    ("QNXQVMBSQG", "qnx"),
    ("Linux KVM Hv", "kvm"),
];

/// Words in a cgroup path that name a container runtime.
const RUNTIMES: &[&str] = &["docker", "kubepods", "libpod", "containerd", "crio", "lxc"];

pub fn virtualisation(cgroups: &[CgroupLine]) -> Virtualisation {
    let signature = cpuid_signature();
    let dmi = |name: &str| read::value(format!("/sys/class/dmi/id/{name}"));
    Virtualisation {
        hypervisor: match &signature {
            None => UNKNOWN.to_string(),
            Some(Signature::NoHypervisor) => "none".to_string(),
            Some(Signature::Vendor(s)) => hypervisor_name(s).to_string(),
        },
        cpuid_signature: match signature {
            None => UNKNOWN.to_string(),
            Some(Signature::NoHypervisor) => "none (hypervisor bit clear)".to_string(),
            Some(Signature::Vendor(s)) => read::or_unknown(Some(s)),
        },
        dmi_sys_vendor: dmi("sys_vendor"),
        dmi_product_name: dmi("product_name"),
        container: container_hints(cgroups),
    }
}

/// What CPUID says about a hypervisor (`None` from `cpuid_signature` off x86_64: no CPUID to ask).
enum Signature {
    /// CPUID.1:ECX bit 31 clear: no hypervisor announces itself (bare metal, or one that hides).
    NoHypervisor,
    /// Leaf 0x40000000's vendor signature, NULs dropped.
    Vendor(String),
}

#[cfg(target_arch = "x86_64")]
fn cpuid_signature() -> Option<Signature> {
    use core::arch::x86_64::__cpuid;
    // SAFETY: CPUID exists on every x86_64 CPU and only reads identification registers. (Newer Rust made
    // `__cpuid` safe; the block stays for the crate's rust-version, 1.85, where it is still `unsafe`.)
    #[allow(unused_unsafe)]
    let (features, leaf) = unsafe { (__cpuid(1), __cpuid(0x4000_0000)) };
    if features.ecx & (1 << 31) == 0 {
        return Some(Signature::NoHypervisor);
    }
    let bytes: Vec<u8> = [leaf.ebx, leaf.ecx, leaf.edx]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    Some(Signature::Vendor(signature_text(&bytes)))
}

#[cfg(not(target_arch = "x86_64"))]
fn cpuid_signature() -> Option<Signature> {
    None
}

/// The 12 signature bytes as text: NULs (KVM pads with them) dropped, anything unprintable as '?'.
pub fn signature_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .filter(|&&b| b != 0)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// The record's name for a vendor signature; "other" for one not in the table.
pub fn hypervisor_name(signature: &str) -> &'static str {
    HYPERVISORS
        .iter()
        .find(|(sig, _)| *sig == signature)
        .map_or("other", |(_, name)| name)
}

/// Container hints, comma-separated, or "none found". Containers need not leave any of these, so "none found"
/// is what was looked for, not a verdict.
fn container_hints(cgroups: &[CgroupLine]) -> String {
    let mut hints = Vec::new();
    if Path::new("/.dockerenv").exists() {
        hints.push("docker");
    }
    if Path::new("/run/.containerenv").exists() {
        hints.push("podman");
    }
    for runtime in runtimes_in(cgroups) {
        if !hints.contains(&runtime) {
            hints.push(runtime);
        }
    }
    if hints.is_empty() {
        "none found".to_string()
    } else {
        hints.join(", ")
    }
}

/// Runtimes named in the process's cgroup paths.
pub fn runtimes_in(cgroups: &[CgroupLine]) -> Vec<&'static str> {
    RUNTIMES
        .iter()
        .copied()
        .filter(|r| cgroups.iter().any(|l| l.path.contains(r)))
        .collect()
}
