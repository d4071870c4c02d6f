//! The readers of each format, on sample text and on fake sysfs and cgroup trees.

use super::LAUNCHED;
use crate::base::env::*;
use std::path::PathBuf;

#[test]
fn bracketed_choice() {
    assert_eq!(read::bracketed("always [madvise] never").as_deref(), Some("madvise"));
    assert_eq!(
        read::bracketed("always defer defer+madvise [madvise] never").as_deref(),
        Some("madvise")
    );
    assert_eq!(
        read::bracketed("[mq-deadline] kyber bfq none").as_deref(),
        Some("mq-deadline")
    );
    assert_eq!(read::bracketed("none").as_deref(), Some("none"));
    assert_eq!(read::bracketed("mq-deadline none"), None);
    assert_eq!(read::bracketed("always [madvise never"), None);
}

#[test]
fn cpu_max_forms() {
    assert_eq!(limits::cpu_share("max 100000"), f64::INFINITY);
    assert_eq!(limits::cpu_share("200000 100000"), 2.0);
    assert_eq!(limits::cpu_share("50000 100000"), 0.5);
    assert_eq!(limits::cpu_share("garbage"), f64::INFINITY);
    assert_eq!(limits::v1_cpu_max_of("-1", "100000"), "max 100000");
    assert_eq!(limits::v1_cpu_max_of("150000", "100000"), "150000 100000");
    assert_eq!(limits::v1_memory("9223372036854771712".into()), "max");
    assert_eq!(limits::v1_memory("2147483648".into()), "2147483648");
}

#[test]
fn boot_command_lines() {
    let plain = read::boot_params("BOOT_IMAGE=/vmlinuz ro quiet splash mitigations=auto,nosmt -- --init-arg x=1");
    assert_eq!(kernel::mitigations(&plain), "auto,nosmt");
    assert!(
        plain.iter().all(|(n, _)| n != "--init-arg"),
        "init's arguments are not the kernel's"
    );
    let guest = kernel::guest(Some(&plain));
    assert_eq!(guest.booted_by, "not a guest of xferbench's launcher");
    assert_eq!(guest.accel, "not set");

    let none = read::boot_params("ro quiet");
    assert_eq!(kernel::mitigations(&none), "not set");
    let twice = read::boot_params("mitigations=off dyndbg=\"file a.c +p\" mitigations=auto");
    assert_eq!(kernel::mitigations(&twice), "auto");
    assert_eq!(read::last_param(&twice, "dyndbg"), Some("file a.c +p"));

    let launched = read::boot_params(LAUNCHED);
    assert_eq!(kernel::mitigations(&launched), "off");
    let guest = kernel::guest(Some(&launched));
    assert_eq!(guest.booted_by, "xferbench's guest launcher");
    assert_eq!(
        (
            guest.hypervisor.as_str(),
            guest.accel.as_str(),
            guest.vcpus.as_str(),
            guest.mem_mib.as_str()
        ),
        ("qemu", "tcg", "4", "4096")
    );
    assert_eq!(guest.storage, "virtio-blk");
    assert_eq!(kernel::guest(None).booted_by, "unknown");
}

#[test]
fn hypervisor_signatures() {
    assert_eq!(virt::signature_text(b"KVMKVMKVM\0\0\0"), "KVMKVMKVM");
    assert_eq!(virt::hypervisor_name("KVMKVMKVM"), "kvm");
    assert_eq!(virt::hypervisor_name("Microsoft Hv"), "hyperv");
    assert_eq!(virt::hypervisor_name("XenVMMXenVMM"), "xen");
    assert_eq!(virt::hypervisor_name("SomethingNew"), "other");
}

const HYBRID: &str = "9:name=systemd:/\n4:memory:/process_api/fc745a\n3:cpuset:/\n1:cpu:/\n0::/\n";

#[test]
fn cgroup_lines() {
    let lines = limits::parse_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n");
    assert_eq!(lines.len(), 1);
    assert!(lines[0].controllers.is_empty());
    assert_eq!(lines[0].path, "/user.slice/user-1000.slice/session-2.scope");

    let hybrid = limits::parse_cgroup(HYBRID);
    assert_eq!(hybrid.len(), 5);
    assert_eq!(hybrid[0].controllers, ["name=systemd"]);
    assert_eq!(hybrid[1].controllers, ["memory"]);
    assert_eq!(hybrid[1].path, "/process_api/fc745a");
    let both = limits::parse_cgroup("5:cpu,cpuacct:/docker/0123abcd\n");
    assert_eq!(both[0].controllers, ["cpu", "cpuacct"]);
    assert_eq!(virt::runtimes_in(&both), ["docker"]);
    assert!(virt::runtimes_in(&hybrid).is_empty());
}

#[test]
fn a_cgroup_and_its_ancestors_up_to_the_mount() {
    let mount = |line: &str| procfs::process::MountInfo::from_line(line).unwrap();
    let mounts = [
        mount("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw"),
        mount("35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory"),
        // A container sees its own cgroup as the root of the mount.
        mount("50 31 0:33 /docker/abc /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu,cpuacct"),
    ];
    let lines = limits::parse_cgroup("4:memory:/a/b\n3:cpu,cpuacct:/docker/abc/inner\n0::/x\n");
    let levels = limits::levels(&lines[0], &mounts, "cgroup", Some("memory")).unwrap();
    let want = [
        "/sys/fs/cgroup/memory/a/b",
        "/sys/fs/cgroup/memory/a",
        "/sys/fs/cgroup/memory",
    ];
    assert_eq!(levels, want.map(PathBuf::from));
    let cpu = limits::levels(&lines[1], &mounts, "cgroup", Some("cpu")).unwrap();
    assert_eq!(
        cpu,
        ["/sys/fs/cgroup/cpu/inner", "/sys/fs/cgroup/cpu"].map(PathBuf::from)
    );
    let unified = limits::levels(&lines[2], &mounts, "cgroup2", None).unwrap();
    assert_eq!(unified[0], PathBuf::from("/sys/fs/cgroup/unified/x"));
    assert!(limits::levels(&lines[0], &mounts[..1], "cgroup", Some("memory")).is_none());
}

#[test]
fn limits_are_the_tightest_of_the_cgroup_and_its_ancestors() {
    let root = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = root.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("{text}\n")).unwrap();
    };
    write("v2/a/cpu.max", "200000 100000");
    write("v2/a/b/cpu.max", "max 100000");
    write("v2/a/memory.max", "1073741824");
    write("v2/a/b/memory.max", "max");
    write("v2/a/b/cpuset.cpus.effective", "0-3");
    write("v1/cpu/a/cpu.cfs_quota_us", "-1");
    write("v1/cpu/a/cpu.cfs_period_us", "100000");
    let at = root.path().display();
    let v2 = [procfs::process::MountInfo::from_line(&format!("1 0 0:1 / {at}/v2 rw - cgroup2 cgroup2 rw")).unwrap()];
    let limits = limits::limits(&limits::parse_cgroup("0::/a/b\n"), &v2);
    assert_eq!(limits.cgroup_version, "2");
    assert_eq!(limits.cpu_max, "200000 100000");
    assert_eq!(limits.memory_max, "1073741824");
    assert_eq!(limits.cpuset_cpus_effective, "0-3");
    assert_eq!(limits.memory_high, "unknown");

    let v1 =
        [procfs::process::MountInfo::from_line(&format!("2 0 0:2 / {at}/v1/cpu rw - cgroup cgroup rw,cpu")).unwrap()];
    let limits = limits::limits(&limits::parse_cgroup("3:cpu:/a\n"), &v1);
    assert_eq!(limits.cgroup_version, "1");
    assert_eq!(limits.cpu_max, "max 100000");
    assert_eq!(limits.memory_max, "unknown");
}

#[test]
fn governors_agree_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let set = |cpu: &str, governor: &str| {
        std::fs::create_dir_all(dir.path().join(cpu).join("cpufreq")).unwrap();
        std::fs::write(
            dir.path().join(cpu).join("cpufreq/scaling_governor"),
            format!("{governor}\n"),
        )
        .unwrap();
    };
    assert_eq!(machine::governors_agree(dir.path()), None);
    set("cpu0", "performance");
    set("cpu1", "performance");
    // Not a CPU: ignored.
    set("cpufreq", "powersave");
    assert_eq!(machine::governors_agree(dir.path()), Some(true));
    set("cpu12", "powersave");
    assert_eq!(machine::governors_agree(dir.path()), Some(false));
}

#[test]
fn netlink_link_attributes() {
    let attr = |kind: u16, value: u32| {
        let mut a = 8u16.to_ne_bytes().to_vec();
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(&value.to_ne_bytes());
        a
    };
    let mut body = vec![0u8; 16];
    body.extend(attr(4, 1500));
    body.extend(attr(41, 65536));
    body.extend(attr(59, 524280));
    let mut reply = ((16 + body.len()) as u32).to_ne_bytes().to_vec();
    reply.extend_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
    reply.extend_from_slice(&[0; 10]);
    reply.extend(body);
    assert_eq!(net::attribute_u32(&reply, 41), Some(65536));
    assert_eq!(net::attribute_u32(&reply, 59), Some(524280));
    assert_eq!(net::attribute_u32(&reply, 58), None);
    assert_eq!(net::attribute_u32(&reply[..reply.len() - 6], 59), None);
    let mut error = reply.clone();
    error[4..6].copy_from_slice(&2u16.to_ne_bytes());
    assert_eq!(net::attribute_u32(&error, 41), None);
}

#[test]
fn tls_module_in_modules_dep() {
    assert!(features::lists_tls_module(
        "kernel/net/tls/tls.ko.zst:\nkernel/fs/ext4/ext4.ko: kernel/fs/jbd2.ko\n"
    ));
    assert!(features::lists_tls_module("kernel/net/tls/tls.ko:\n"));
    assert!(!features::lists_tls_module(
        "kernel/drivers/tty/tls_foo.ko:\nkernel/net/tls2.ko:\n"
    ));
}
