//! `scripts/kernels.sh`: the plan under other kernels in QEMU guests, on a tiny plan under TCG (QEMU's emulator:
//! these tests check that rows come back from the guest, right and labelled, not how fast anything is).
//!
//! The Debian bookworm cloud kernels 6.1 and 6.12 are downloaded once (about 60 MB with the package lists) into
//! `target/tmp/kernels-cache`, which later runs reuse. The script needs no root once its host tools are installed
//! (qemu-system-x86, busybox-static, cpio, e2fsprogs, kmod: `.ci/run` installs them, and the script does itself as
//! root); not root and without them, these tests say so and skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Downloaded kernels, shared by the tests here and by later runs (the script locks it while it fetches).
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernels-cache")
}

/// Why these tests cannot run here, if they cannot: not root, and a host tool missing.
fn skip_reason() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if root {
        return None;
    }
    let missing: Vec<&str> = [
        "qemu-system-x86_64",
        "busybox",
        "cpio",
        "mkfs.ext4",
        "debugfs",
        "depmod",
    ]
    .into_iter()
    .filter(|tool| {
        !["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(tool).exists())
    })
    .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "not root, and {} missing (apt-get install qemu-system-x86 busybox-static cpio e2fsprogs kmod)",
            missing.join(", ")
        )
    })
}

/// The script on a tiny plan: a 4 MiB file, serial and parallel sendfile on 2 threads, one verified repetition
/// each, warm and cold, under TCG.
fn kernels(dir: &Path, kernels: &str, extra_env: &[(&str, &str)]) -> (Output, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kernels.sh"))
        .current_dir(dir)
        .env("XFERBENCH", env!("CARGO_BIN_EXE_xferbench"))
        .env("CACHE_DIR", cache_dir())
        .env("WORK_DIR", dir)
        .envs([("KERNELS", kernels), ("OUT", "k"), ("ACCEL", "tcg")])
        .envs([
            ("SIZE", "4MiB"),
            ("STRATEGIES", "sendfile parallel-sendfile ktls-sendfile"),
            ("THREADS", "2"),
        ])
        .envs([
            ("CHUNKS", "1MiB"),
            ("CACHES", "warm cold"),
            ("REPEAT", "1"),
            ("WARMUP", "0"),
        ])
        .envs([("EXTRA", "--verify --passes 1"), ("GUEST_TIMEOUT", "240")])
        .envs(extra_env.iter().copied());
    let out = common::run_limited(cmd, Duration::from_secs(480));
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out, text)
}

/// The one folder under `out` named after a release of `series` (e.g. 6.1.0-56-cloud-amd64 for 6.1).
fn release_dir(out: &Path, series: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            p.is_dir() && name.strip_prefix(series).is_some_and(|rest| rest.starts_with('.'))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one folder for {series} in {}: {found:?}",
        out.display()
    );
    found.into_iter().next().unwrap()
}

/// The guest's rows: every one ok and verified, labelled with the guest's kernel release (the folder's name), which
/// is not this machine's.
fn check_rows(dir: &Path, text: &str) -> usize {
    let release = dir.file_name().unwrap().to_string_lossy().into_owned();
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_ne!(release, host.trim(), "the guest ran another kernel than this machine's");
    let rows = xferbench::record::read(&dir.join("runs.csv")).unwrap().rows;
    // sendfile, parallel-sendfile x2 and ktls-sendfile, warm and cold, one repetition each.
    assert_eq!(rows.len(), 6, "{rows:?}\n{text}");
    for r in &rows {
        assert!(r.is_ok() && r.verified, "{r:?}\n{text}");
        assert_eq!(r.kernel, release, "{r:?}");
        // No fallback: ktls-sendfile ran with the keys in the guest kernel's TLS, byte-exact at the sink.
        assert_eq!(r.path, r.strategy, "no fallback: {r:?}");
        assert_eq!(r.tls_cipher.is_empty(), !r.strategy.method.tls(), "{r:?}");
        // Under TCG the guest's numbers are the emulator's, and every row says so.
        assert!(r.flags.has(xferbench::model::Flag::Emulated), "{r:?}");
    }
    for file in ["summary.json", "console.log", "guest.txt", "throughput.png", "cpu.svg"] {
        assert!(dir.join(file).is_file(), "{file} in {}\n{text}", dir.display());
    }
    let guest = std::fs::read_to_string(dir.join("guest.txt")).unwrap();
    for fact in [
        "status=ok",
        "accel=tcg",
        "xferbench.accel=tcg",
        "xferbench.storage=virtio-blk",
    ] {
        assert!(guest.contains(fact), "{fact} in guest.txt:\n{guest}");
    }
    // The package's tls.ko loaded (GUEST_MODULES defaults to tls): kTLS is there for a strategy that uses it.
    let ulp = guest.lines().find_map(|l| l.strip_prefix("tcp_available_ulp="));
    assert!(
        ulp.is_some_and(|u| u.split_whitespace().any(|m| m == "tls")),
        "tls among the ULPs:\n{guest}"
    );
    rows.len()
}

/// One kernel, then a second beside it in the same OUT: the first resumes (nothing to run again), the second runs,
/// and compare lines the two up.
#[test]
fn plan_runs_in_guest_kernels_and_comes_back_labelled() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = kernels(dir.path(), "6.1", &[]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("accelerator: tcg") && text.contains("plan: 6 cases"),
        "the plan is printed first:\n{text}"
    );
    let old = release_dir(&dir.path().join("k"), "6.1");
    check_rows(&old, &text);
    assert!(
        text.contains("nothing to compare") && !dir.path().join("k/compare").exists(),
        "one kernel: no compare, said so:\n{text}"
    );

    let (out, text) = kernels(dir.path(), "6.1 6.12", &[]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("resuming the rows already in"), "{text}");
    assert_eq!(check_rows(&old, &text), 6, "a resumed kernel runs nothing again");
    let new = release_dir(&dir.path().join("k"), "6.12");
    check_rows(&new, &text);
    let md = std::fs::read_to_string(dir.path().join("k/compare/compare.md")).unwrap();
    assert!(
        md.contains("**Emulated:**") && md.contains("| kernel.release |"),
        "{md}"
    );
    for dir in [&old, &new] {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(md.contains(&format!("`{name}`")), "{name} in compare.md:\n{md}");
    }
}

/// Each failure is one line naming what failed, and a non-zero exit: a series Debian has no kernel of, and a guest
/// that does not finish in time (killed, and named).
#[test]
fn failures_are_named_in_one_line() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = kernels(dir.path(), "5.99", &[]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("kernels: no Debian cloud kernel package of series 5.99"),
        "{text}"
    );

    let (out, text) = kernels(dir.path(), "6.1", &[("GUEST_TIMEOUT", "1")]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the guest did not finish within GUEST_TIMEOUT=1 s and was killed"),
        "{text}"
    );
    assert!(text.contains("6.1.0-"), "the kernel is named:\n{text}");
}

/// Delay and loss emulated for real, in a guest kernel that has netem (this machine's may not): cubic and bbr over
/// a `--link` path with 10 ms and 2% loss each way. Each row's round trip is the configured one (twice 10 ms, and a
/// little more under the emulator), and the loss made TCP retransmit; every byte still arrived.
#[test]
fn delay_and_loss_hold_over_a_link_in_a_guest_kernel() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = "veth:mtu=1500,delay=10ms,loss=2%,offload=off";
    let extra = format!("--verify --passes 1 --cc cubic,bbr --link {spec}");
    let (out, text) = kernels(
        dir.path(),
        "6.12",
        &[
            ("SIZE", "1MiB"),
            ("STRATEGIES", "sendfile"),
            ("CACHES", "warm"),
            ("EXTRA", &extra),
            ("GUEST_MODULES", "veth sch_htb sch_netem tcp_bbr"),
            ("GUEST_TIMEOUT", "360"),
        ],
    );
    assert!(out.status.success(), "{text}");
    let rows = xferbench::record::read(&release_dir(&dir.path().join("k"), "6.12").join("runs.csv"))
        .unwrap()
        .rows;
    let ccs: Vec<String> = rows
        .iter()
        .filter_map(|r| r.congestion_control)
        .map(|c| c.to_string())
        .collect();
    assert_eq!(ccs, ["cubic", "bbr"], "{text}");
    for r in &rows {
        assert!(r.is_ok() && r.verified, "{r:?}\n{text}");
        assert_eq!(r.link.map(|l| l.to_string()).as_deref(), Some(spec), "{r:?}");
        let min = r.tcp_min_rtt_us.expect("min_rtt");
        assert!(
            (20_000.0..30_000.0).contains(&min),
            "a round trip of twice 10 ms, measured {min} us: {r:?}"
        );
        assert!(r.tcp_rtt_us.is_some_and(|s| s >= 20_000.0), "{r:?}");
        assert!(
            r.tcp_total_retrans.is_some_and(|n| n > 0),
            "2% loss each way, no retransmission: {r:?}"
        );
    }
}
