//! `--link`: cases over veth paths of the run's own (sender, router and sink namespaces, the router shaping both
//! directions), beside loopback. Verified runs over each kind of link with their MTU held, a rate that holds and
//! flags its cases link-bound, delay and loss refused where the kernel has no netem (and measured where it has),
//! namespaces a killed run left removed by the next, a JVM and a broker sending from the sender's namespace, and
//! the one-line errors: not root, bad specs.
//!
//! Needs root, iproute2 and a JDK (CI has them). The tests take turns: each checks the machine's namespaces, and a run of
//! one test would remove what a killed run of another left before it looked.

mod common;

use common::{BIN, LIMIT, assert_fails, kill, rows, run_cmd, run_limited, run_to_end, summary, text, tmp, wait_for};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use xferbench::model::Link;

static TURNS: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURNS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The namespaces of xferbench's runs now on this machine (as `ip netns list` shows them).
fn namespaces() -> BTreeSet<String> {
    ["/run/netns", "/var/run/netns"]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("xferbench-"))
        .collect()
}

fn of_pid(pid: u32) -> BTreeSet<String> {
    namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&format!("xferbench-{pid}-")))
        .collect()
}

/// The run's pid, from its run id (`<time>-<host>-<pid>`).
fn pid_of(run_id: &str) -> u32 {
    run_id.rsplit('-').next().unwrap().parse().unwrap()
}

fn link(spec: &str) -> Link {
    Link::parse(spec).unwrap()
}

#[test]
fn verified_runs_over_each_kind_of_link_keep_their_mtu() {
    let _turn = turn();
    let dir = tmp();
    let args = [
        "--strategies",
        "sendfile,parallel-sendfile",
        "--threads",
        "2",
        "--verify",
        "--link",
        "loopback",
        "--link",
        "veth",
        "--link",
        "veth:mtu=9000,offload=off",
    ];
    let out = run_to_end(&[], dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = rows(dir.path());
    assert_eq!(rows.len(), 6, "two strategies over three links");
    for r in &rows {
        assert!(r.is_ok() && r.verified, "{r:?}");
        let l = r.link.expect("every spawned sink's row names its link");
        assert_eq!(r.case_id, r.key().id());
        assert_eq!(r.key().link, l);
        assert!(r.tcp_min_rtt_us.is_some_and(|m| m > 0.0), "{r:?}");
        let mss = r.tcp_snd_mss_bytes.expect("the sender's MSS");
        let mtu = r.mtu_bytes.expect("the MTU of the streams' interface");
        // The MSS fits the MTU less the IPv4 and TCP headers.
        assert!(mss <= mtu - 40, "MSS {mss} over an MTU of {mtu}: {r:?}");
        match l.veth() {
            None => assert_eq!(r.transport.to_string(), "loopback"),
            Some(v) => {
                assert_eq!((r.transport.to_string().as_str(), mtu), ("veth", v.mtu), "{r:?}");
                assert!(r.sink_addr.starts_with("198.51.100.1:"), "{}", r.sink_addr);
                // Segments as large as the MTU allows: the path's MTU is the one TCP used.
                assert!(mss > 1460 || v.mtu == 1500, "MSS {mss} over {l}");
                assert_eq!(r.link_rate_bit_s, None);
            }
        }
    }
    let links: BTreeSet<String> = rows.iter().map(|r| r.link.unwrap().to_string()).collect();
    assert_eq!(
        links,
        ["loopback", "veth:mtu=1500", "veth:mtu=9000,offload=off"]
            .map(String::from)
            .into()
    );
    assert!(
        of_pid(pid_of(&rows[0].run_id)).is_empty(),
        "the run removed its namespaces"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--link veth:mtu=9000,offload=off: sender 192.0.2.1 in xferbench-"),
        "{stderr}"
    );
}

/// The senders that are not this process's threads (a JVM, a broker's network threads) send from the path's
/// sender namespace too: the sink's address is routed nowhere else, so a verified row is the proof.
#[test]
fn a_jvm_and_a_broker_send_over_a_link_from_its_sender_namespace() {
    let _turn = turn();
    let dir = tmp();
    let mut cmd = run_cmd(
        &[],
        dir.path(),
        &[
            "--strategies",
            "jvm-transferto,parallel-jvm-transferto,broker-sendfile,broker-read-send",
            "--threads",
            "2",
            "--consumers",
            "3",
            "--verify",
            "--link",
            "veth:mtu=1500",
        ],
    );
    cmd.env(
        "XDG_CACHE_HOME",
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("jvm-cache"),
    );
    let out = run_limited(cmd, LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = rows(dir.path());
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in &rows {
        let what = r.strategy.to_string();
        assert!(r.is_ok() && r.verified, "{what}: {r:?}");
        assert_eq!(r.link, Some(link("veth:mtu=1500")), "{what}");
        assert_eq!(
            (r.transport.to_string().as_str(), r.mtu_bytes),
            ("veth", Some(1500)),
            "{what}"
        );
        assert!(r.sink_addr.starts_with("198.51.100.1:"), "{what}: {}", r.sink_addr);
        assert!(
            r.tcp_min_rtt_us.is_some_and(|m| m > 0.0),
            "{what}: TCP_INFO of its sockets"
        );
        assert!(
            r.tcp_snd_mss_bytes.is_some_and(|m| m <= 1460),
            "{what}: {:?}",
            r.tcp_snd_mss_bytes
        );
        if what.contains("jvm") {
            assert_eq!(r.jvm_path, "sendfile", "{what}: {}", r.jvm_calls);
        } else {
            assert_eq!(r.consumers, Some(3), "{what}");
        }
    }
    assert!(
        of_pid(pid_of(&rows[0].run_id)).is_empty(),
        "the run removed its namespaces"
    );
}

#[test]
fn a_rate_holds_and_the_cases_that_fill_it_are_link_bound() {
    let _turn = turn();
    let dir = tmp();
    let spec = "veth:rate=50mbit";
    let out = run_to_end(&[], dir.path(), &["--strategies", "sendfile,read-send", "--link", spec]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for r in rows(dir.path()) {
        assert_eq!((r.link, r.link_rate_bit_s), (Some(link(spec)), Some(50_000_000)));
        let bit_s = r.throughput_gbit_s * 1e9;
        // The payload, less than the wire's bytes, never beats the rate; the sender fills it.
        assert!(bit_s <= 50e6, "{bit_s} bit/s over a 50 Mbit/s link: {r:?}");
        assert!(bit_s >= 0.8 * 50e6, "{bit_s} bit/s: the link should be full: {r:?}");
    }
    let s = summary(&dir.path().join("out"));
    let cases = s["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for c in cases {
        let flags = c["flags"].to_string();
        assert!(flags.contains("link-bound"), "{c}");
        assert_eq!(c["link"], "veth:mtu=1500,rate=50mbit");
    }
    let advice = cases[1]["advice"].to_string();
    assert!(
        advice.contains("read-send uses") && advice.contains("sendfile's sender CPU per GB at the same 50 Mbit/s"),
        "{advice}"
    );
}

/// Whether this kernel has netem: tried in a namespace of the test's own.
fn kernel_has_netem() -> bool {
    let ns = format!("xbtest{}netem", std::process::id());
    let ip = |args: &[&str]| Command::new("ip").args(args).output().expect("ip (iproute2)");
    assert!(ip(&["netns", "add", &ns]).status.success());
    let ok = Command::new("tc")
        .args(["-n", &ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
        .output()
        .expect("tc (iproute2)")
        .status
        .success();
    ip(&["netns", "delete", &ns]);
    ok
}

#[test]
fn delay_and_loss_need_netem_and_hold_where_it_is() {
    let _turn = turn();
    let dir = tmp();
    let before = namespaces();
    let spec = "veth:rate=100mbit,delay=5ms,loss=0.01%";
    let out = run_to_end(&[], dir.path(), &["--strategies", "sendfile", "--link", spec]);
    if kernel_has_netem() {
        assert!(out.status.success(), "{}", text(&out.stderr));
        let r = &rows(dir.path())[0];
        let min = r.tcp_min_rtt_us.unwrap();
        assert!(
            (10_000.0..15_000.0).contains(&min),
            "a round trip of twice 5 ms, measured {min} us: {r:?}"
        );
        return;
    }
    assert_fails(&out, 2, "need the kernel's netem qdisc (sch_netem)");
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!("--link {}", link(spec))) && stderr.contains("mtu and rate work without it"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists(), "nothing was made: no result folder");
    assert!(
        namespaces().is_subset(&before),
        "and no namespace left: {:?}",
        namespaces()
    );
}

#[test]
fn namespaces_a_killed_run_left_are_removed_by_the_next() {
    let _turn = turn();
    let dir = tmp();
    // 4 MiB at 1 Mbit/s: half a minute, far longer than the test waits.
    let mut cmd = run_cmd(
        &[],
        dir.path(),
        &["--strategies", "sendfile", "--link", "veth:rate=1mbit"],
    );
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("the run starts");
    let pid = child.id();
    let made = wait_for("the run's namespaces", LIMIT, Duration::from_millis(20), || {
        Some(of_pid(pid)).filter(|n| n.len() == 3)
    });
    kill(pid, nix::sys::signal::Signal::SIGKILL);
    child.wait().unwrap();
    assert_eq!(of_pid(pid), made, "SIGKILL runs no clean-up: the namespaces stay");

    let next = tmp();
    let out = run_to_end(&[], next.path(), &["--strategies", "sendfile", "--link", "veth"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("removed 3 network namespace(s) left by runs that were killed"),
        "{stderr}"
    );
    assert!(of_pid(pid).is_empty(), "the next run removed them: {:?}", of_pid(pid));
}

#[test]
fn not_root_is_one_line() {
    let _turn = turn();
    let dir = tmp();
    let args = ["run", "--size", "1MiB", "--link", "veth", "--out"];
    let mut cmd = if nix::unistd::geteuid().is_root() {
        // As nobody, from a copy of the binary that nobody may run.
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.path().join("xferbench");
        std::fs::copy(BIN, &bin).unwrap();
        for p in [dir.path(), bin.as_path()] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let mut c = Command::new(&bin);
        std::os::unix::process::CommandExt::uid(&mut c, 65534);
        c
    } else {
        Command::new(BIN)
    };
    cmd.current_dir(dir.path()).args(args).arg(dir.path().join("out"));
    let out = run_limited(cmd, LIMIT);
    assert_fails(
        &out,
        2,
        "makes network namespaces, veth pairs and qdiscs, which needs root",
    );
    assert_eq!(text(&out.stderr).trim().lines().count(), 1, "{}", text(&out.stderr));
}

#[test]
fn bad_specs_are_usage_errors() {
    for (spec, why) in [
        ("veth:rate=fast", "rate=fast: not a rate"),
        ("veth:mtu=100", "mtu=100: the MTU is a byte count from 576 to 65535"),
        ("veth:colour=red", "colour=red: unknown key"),
        ("lan-100g", "'lan-100g' is not a link"),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--dry-run", "--link", spec]);
        let out = run_limited(cmd, LIMIT);
        assert_fails(&out, 2, &format!("invalid value '{spec}' for '--link': {why}"));
        assert_eq!(text(&out.stderr).trim().lines().count(), 1, "{}", text(&out.stderr));
    }
}
