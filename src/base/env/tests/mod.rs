//! Tests of the record as a whole: detection on this machine, items, differences, JSON and the listing.
//! `parse` tests the readers of each format on sample text.

mod parse;

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Items every record lists whatever the machine, each with a value or "unknown" (maps add more names).
const FIXED_ITEMS: &[&str] = &[
    "kernel.release",
    "kernel.version",
    "kernel.mitigations",
    "net.interface.name",
    "net.interface.mtu_bytes",
    "net.interface.gso_max_size_bytes",
    "net.interface.gro_max_size_bytes",
    "net.interface.tso_max_size_bytes",
    "net.interface.tso",
    "net.interface.gso",
    "net.interface.gro",
    "cpu.model",
    "cpu.logical_cpus",
    "cpu.online",
    "cpu.governor",
    "cpu.governors_agree",
    "cpu.scaling_driver",
    "cpu.scaling_min_freq_khz",
    "cpu.scaling_max_freq_khz",
    "cpu.cpuinfo_max_freq_khz",
    "cpu.boost",
    "cpu.smt_active",
    "cpu.smt_control",
    "cpu.numa_nodes_online",
    "memory.total_bytes",
    "memory.thp_enabled",
    "memory.thp_defrag",
    "limits.cgroup_version",
    "limits.cpu_max",
    "limits.cpuset_cpus_effective",
    "limits.memory_max",
    "limits.memory_high",
    "limits.affinity_cpus",
    "virt.hypervisor",
    "virt.cpuid_signature",
    "virt.dmi_sys_vendor",
    "virt.dmi_product_name",
    "virt.container",
    "guest.booted_by",
    "guest.hypervisor",
    "guest.accel",
    "guest.vcpus",
    "guest.mem_mib",
    "guest.storage",
    "storage.file_system",
    "storage.device",
    "storage.device_numbers",
    "storage.scheduler",
    "storage.rotational",
    "storage.model",
    "features.io_uring_disabled",
    "features.io_uring_setup",
    "features.tls_ulp",
    "build.xferbench_version",
    "build.git_commit",
];

fn this_machine() -> Record {
    detect(Path::new("."), None)
}

fn value_of<'a>(items: &'a [(String, String)], name: &str) -> Option<&'a str> {
    items.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn detects_this_machine() {
    let env = Environment::detect(Path::new("."));
    assert!(!env.kernel.is_empty() && env.kernel != "unknown");
    assert!(env.logical_cpus >= 1);
    assert!(env.memory_bytes > 0);
    assert_ne!(env.file_system, "unknown");
    assert_eq!(boot_id().len(), 36);
}

#[test]
fn every_item_is_present_with_a_value_or_unknown() {
    let items = this_machine().items();
    for name in FIXED_ITEMS {
        let v = value_of(&items, name).unwrap_or_else(|| panic!("{name} missing from items()"));
        assert!(!v.is_empty(), "{name} is empty");
    }
    for sysctl in kernel::NET_SYSCTLS {
        let name = format!("net.sysctl.{sysctl}");
        assert!(value_of(&items, &name).is_some_and(|v| !v.is_empty()), "{name} missing");
    }
    // The record has nothing beyond the fixed items, the sysctls and the vulnerability files.
    let extra = items.iter().filter(|(n, _)| {
        !FIXED_ITEMS.contains(&n.as_str()) && !n.starts_with("net.sysctl.") && !n.starts_with("cpu.vulnerabilities.")
    });
    assert_eq!(extra.count(), 0);
}

#[test]
fn an_empty_record_says_unknown_for_every_fixed_item_and_lists_kernel_first() {
    let items = Record::default().items();
    let names: Vec<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, FIXED_ITEMS);
    assert!(items.iter().all(|(_, v)| v == "unknown"));
}

#[test]
fn detection_finds_the_kernel_release_and_loopback() {
    let record = this_machine();
    let uname = nix::sys::utsname::uname().unwrap();
    assert_eq!(record.kernel.release, uname.release().to_string_lossy());
    assert_ne!(record.kernel.version, "unknown");
    assert_eq!(record.net.interface.name, "lo");
    assert_eq!(
        record.net.interface.mtu_bytes,
        std::fs::read_to_string("/sys/class/net/lo/mtu").unwrap().trim()
    );
    assert_ne!(record.net.sysctl["net.ipv4.tcp_rmem"], "unknown");
    assert!(!record.net.sysctl["net.ipv4.tcp_rmem"].contains('\t'));
    for peer in [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)] {
        assert_eq!(net::interface(Some(peer)).name, "lo");
    }
    assert_eq!(record.build.xferbench_version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn loopback_offloads_and_segment_sizes_are_read() {
    // Every kernel answers the legacy ethtool gets for lo from its feature flags, and rtnetlink has carried
    // IFLA_GSO_MAX_SIZE since 4.6; neither needs privileges.
    let lo = net::interface(None);
    for (name, v) in [("tso", &lo.tso), ("gso", &lo.gso), ("gro", &lo.gro)] {
        assert!(v == "on" || v == "off", "{name}: {v}");
    }
    assert!(lo.gso_max_size_bytes.parse::<u32>().unwrap() >= 65536);
}

#[test]
fn a_routed_peer_on_this_machine_travels_over_lo() {
    // The machine's own non-loopback address is delivered locally, whichever interface holds it.
    let own = nix::ifaddrs::getifaddrs().unwrap().find_map(|a| {
        let ip = a.address?.as_sockaddr_in()?.ip();
        (!ip.is_loopback()).then_some(IpAddr::V4(ip))
    });
    if let Some(ip) = own {
        assert_eq!(net::interface(Some(ip)).name, "lo");
    }
}

/// A command line as xferbench's guest launcher writes it, for an emulated (TCG) guest.
const LAUNCHED: &str = "console=ttyS0 root=/dev/vda rw mitigations=off xferbench.hypervisor=qemu \
                        xferbench.accel=tcg xferbench.vcpus=4 xferbench.mem_mib=4096 xferbench.storage=virtio-blk";

#[test]
fn emulated_comes_from_the_launcher_or_cpuid() {
    let mut r = Record::default();
    assert!(!r.emulated());
    r.guest = kernel::guest(Some(&read::boot_params(LAUNCHED)));
    assert!(r.emulated());
    r.guest.accel = "kvm".into();
    assert!(!r.emulated());
    r.virt.hypervisor = virt::hypervisor_name(&virt::signature_text(b"TCGTCGTCGTCG")).into();
    assert!(r.emulated());
    assert!(render_text(&r).contains("emulated"));
}

#[test]
fn differences_name_the_kernel_first_then_a_sysctl() {
    let a = this_machine();
    let mut b = a.clone();
    b.net
        .sysctl
        .insert("net.ipv4.tcp_congestion_control".into(), "reno-test".into());
    b.kernel.release = "0.0.0-test".into();
    b.cpu_vulnerabilities
        .insert("zz_only_here".into(), "Not affected".into());
    b.cpu_vulnerabilities.remove("meltdown");
    let found = differences(&a, &b);
    let names: Vec<&str> = found.iter().map(|d| d.item.as_str()).collect();
    assert_eq!(names[0], "kernel.release");
    assert_eq!(found[0].right, "0.0.0-test");
    let sysctl = found
        .iter()
        .find(|d| d.item == "net.sysctl.net.ipv4.tcp_congestion_control")
        .unwrap();
    assert_eq!(sysctl.left, a.net.sysctl["net.ipv4.tcp_congestion_control"]);
    assert_eq!(sysctl.right, "reno-test");
    let only = found
        .iter()
        .find(|d| d.item == "cpu.vulnerabilities.zz_only_here")
        .unwrap();
    assert_eq!(only.left, "absent");
    let at = |name: &str| names.iter().position(|n| *n == name);
    // A name one side lacks stays among its section, ahead of the sysctls.
    assert!(
        at("cpu.vulnerabilities.zz_only_here").unwrap() < at("net.sysctl.net.ipv4.tcp_congestion_control").unwrap()
    );
    if a.cpu_vulnerabilities.contains_key("meltdown") {
        assert_eq!(found[at("cpu.vulnerabilities.meltdown").unwrap()].right, "absent");
    }
    assert!(differences(&a, &a).is_empty());
}

#[test]
fn kernel_differences_come_first_whatever_the_order() {
    let a = Record::default();
    let mut b = a.clone();
    b.build.git_commit = "abc".into();
    b.kernel.mitigations = "off".into();
    let names: Vec<String> = differences(&a, &b).into_iter().map(|d| d.item).collect();
    assert_eq!(names, ["kernel.mitigations", "build.git_commit"]);
}

#[test]
fn older_and_partial_json_reads_with_unknowns() {
    let r: Record = serde_json::from_str(r#"{"kernel":{"release":"6.1.0"},"net":{"sysctl":{"a.b":"1"}}}"#).unwrap();
    assert_eq!(r.kernel.release, "6.1.0");
    assert_eq!(r.kernel.version, "unknown");
    assert_eq!(r.cpu.governor, "unknown");
    assert_eq!(r.net.interface.name, "unknown");
    let r: Record = serde_json::from_str("{}").unwrap();
    assert_eq!(r, Record::default());
    let full = this_machine();
    let back: Record = serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
    assert_eq!(back, full);
}

#[test]
fn text_listing_has_sections_and_values() {
    let record = this_machine();
    let text = render_text(&record);
    assert!(text.starts_with("kernel\n  release "), "{text}");
    assert!(text.contains(&format!(" {}\n", record.kernel.release)));
    assert!(text.contains("\nnet.sysctl\n  net.core.default_qdisc "));
    assert!(text.contains("\n  net.ipv4.tcp_rmem "));
    assert!(text.contains("\nnet.interface\n  name "));
    assert_eq!(
        text.lines().filter(|l| l.starts_with("  ")).count(),
        record.items().len()
    );
}
