//! The environment record (issue 15): `xferbench env` lists every item that shapes a run's numbers or says
//! unknown; every run keeps it in summary.json; `compare` opens with what differs between the sets; a file with a
//! matching sidecar verifies like a generated fixture.

mod common;

use common::{ONCE, ONE_PASS, out_dir, rows, small_run, summary, xferbench};
use serde_json::Value;

fn env_json(args: &[&str]) -> Value {
    let out = xferbench().arg("env").arg("--json").args(args).assert().success();
    serde_json::from_slice(&out.get_output().stdout).expect("env --json is JSON")
}

/// Every item the issue names: present, a value or "unknown", never empty.
#[test]
fn env_json_holds_every_item_or_says_unknown() {
    let v = env_json(&[]);
    let item = |path: &str| -> String {
        let mut at = &v;
        for part in path.split('/') {
            at = at.get(part).unwrap_or_else(|| panic!("{path}: no '{part}' in {v:#}"));
        }
        at.as_str()
            .unwrap_or_else(|| panic!("{path} is not text: {at}"))
            .to_string()
    };
    for path in [
        "kernel/release",
        "kernel/version",
        "kernel/mitigations",
        "cpu/model",
        "cpu/governor",
        "cpu/scaling_min_freq_khz",
        "cpu/scaling_max_freq_khz",
        "cpu/smt_active",
        "cpu/numa_nodes_online",
        "memory/thp_enabled",
        "limits/cpu_max",
        "limits/memory_max",
        "virt/hypervisor",
        "guest/accel",
        "storage/file_system",
        "storage/device",
        "storage/scheduler",
        "storage/rotational",
        "features/io_uring_setup",
        "features/tls_ulp",
        "build/xferbench_version",
        "build/git_commit",
        "net/interface/name",
        "net/interface/mtu_bytes",
        "net/interface/tso",
        "net/interface/gso",
        "net/interface/gro",
    ] {
        assert!(!item(path).is_empty(), "{path} is empty");
    }
    for sysctl in [
        "net.core.rmem_max",
        "net.core.wmem_max",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_congestion_control",
        "net.core.default_qdisc",
        "net.core.skb_defer_max",
        "net.ipv4.tcp_autocorking",
    ] {
        let value = v["net"]["sysctl"][sysctl]
            .as_str()
            .unwrap_or_else(|| panic!("{sysctl} missing"));
        assert!(!value.is_empty(), "{sysctl}");
    }
    assert!(v["cpu_vulnerabilities"].as_object().is_some(), "{v:#}");
    // Read from the machine, not made up: the kernel release is uname's, the loopback interface is lo.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(item("kernel/release"), release.trim());
    assert_eq!(item("net/interface/name"), "lo");
    // And the listing for people names the same things.
    let text = xferbench().arg("env").assert().success();
    let text = String::from_utf8_lossy(&text.get_output().stdout).to_string();
    assert!(
        text.contains(release.trim()) && text.contains("tcp_congestion_control"),
        "{text}"
    );
}

#[test]
fn every_run_keeps_the_record_and_compare_says_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    small_run(dir.path(), "2MiB")
        .args(["--strategies", "sendfile"])
        .assert()
        .success();
    let summary = summary(&out_dir(dir.path()));
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(summary["system"]["kernel"]["release"].as_str(), Some(release.trim()));
    // A second set: the same rows, its record saying another kernel and another tcp_wmem.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(out_dir(dir.path()).join("runs.csv"), other.join("runs.csv")).unwrap();
    let mut changed = summary.clone();
    changed["system"]["kernel"]["release"] = "6.1.0-test".into();
    changed["system"]["net"]["sysctl"]["net.ipv4.tcp_wmem"] = "4096 1 2".into();
    std::fs::write(other.join("summary.json"), serde_json::to_vec(&changed).unwrap()).unwrap();
    let out = xferbench()
        .arg("compare")
        .arg(out_dir(dir.path()))
        .arg(&other)
        .arg("--out")
        .arg(dir.path().join("cmp"))
        .assert()
        .success();
    let md = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let differs = md.split("## What differs").nth(1).expect("a what-differs section");
    let differs = differs.split("## Cases").next().unwrap();
    let kernel = differs.find("| kernel.release |").expect("the kernel is named");
    let sysctl = differs
        .find("| net.sysctl.net.ipv4.tcp_wmem |")
        .expect("the sysctl is named");
    assert!(kernel < sysctl, "kernel first:\n{md}");
    assert!(differs.contains("6.1.0-test") && differs.contains("4096 1 2"), "{md}");
    assert!(differs.contains("(2 item(s))"), "nothing else differs:\n{md}");
}

#[test]
fn a_file_with_a_matching_sidecar_verifies_and_any_other_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let made = dir.path().join("made.bin");
    xferbench()
        .args(["fixture", "--size", "3MiB", "--path"])
        .arg(&made)
        .assert()
        .success();
    xferbench()
        .current_dir(dir.path())
        .args(["run", "--strategies", "sendfile"])
        .args(ONCE)
        .args(ONE_PASS)
        .arg("-q")
        .args(["--verify", "--out", "out", "--file"])
        .arg(&made)
        .assert()
        .success();
    let rows = rows(dir.path());
    assert!(rows[0].is_ok() && rows[0].verified, "{:?}", rows[0]);
    let plain = dir.path().join("plain.bin");
    std::fs::write(&plain, vec![5u8; 1 << 20]).unwrap();
    let refused = xferbench()
        .current_dir(dir.path())
        .args(["run", "--verify", "--out", "out2", "--file"])
        .arg(&plain)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(stderr.contains("--verify needs a generated fixture"), "{stderr}");
    assert!(!dir.path().join("out2").exists(), "a refused run leaves nothing");
}
