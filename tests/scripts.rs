//! The shell scripts users run: the thread sweep (and its resume), the article reproduction, the many-core plan, the
//! benches whose rounds run outside one `run` (peers, receive buffers, passes, versions) and the TLS bench, on tiny
//! sizes; and that their statistics come from xferbench (`run`'s rounds, `xferbench stats`), not from the scripts.

mod common;

use std::path::Path;
use std::process::Command;

/// Runs `cmd` to its end and fails unless it succeeded; returns what it wrote, stdout then stderr.
fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

fn script(name: &str, dir: &Path) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name))
        .current_dir(dir)
        .env("XFERBENCH", env!("CARGO_BIN_EXE_xferbench"))
        .env("EXTRA", format!("--fixture-dir {} --quiet", dir.join("fx").display()))
        // Passes calibrated to a short timed section: the scripts' logic is tested, not this machine.
        .env("MIN_TIME", "0.05s");
    cmd
}

#[test]
fn sweep_runs_plots_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = |dir: &Path| {
        succeeds(
            script("sweep.sh", dir)
                .envs([
                    ("SIZE", "4MiB"),
                    ("THREADS", "1 2"),
                    ("CHUNKS", "1MiB"),
                    ("CACHES", "warm cold"),
                ])
                .envs([("REPEAT", "1"), ("WARMUP", "0"), ("OUT", "sweep")]),
        )
    };
    let first = sweep(dir.path());
    assert!(
        first.contains("8 case(s)") && first.contains("roughly"),
        "the plan is printed first:\n{first}"
    );
    let rows = common::read_rows(&dir.path().join("sweep/runs.csv")).unwrap();
    // sendfile and read-send once each, parallel-sendfile at 1 and 2 threads; warm and cold.
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r.is_ok()));
    for chart in ["throughput", "cpu", "switches", "latency"] {
        for ext in ["png", "svg"] {
            assert!(
                dir.path().join(format!("sweep/{chart}.{ext}")).is_file(),
                "{chart}.{ext}"
            );
        }
    }
    sweep(dir.path());
    assert_eq!(
        common::read_rows(&dir.path().join("sweep/runs.csv")).unwrap().len(),
        8,
        "a second sweep resumes"
    );
}

#[test]
fn article_reproduction_prints_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let out = script("reproduce-article.sh", dir.path())
        .envs([
            ("SIZE", "8MiB"),
            ("CHUNK", "512KiB"),
            ("REPEAT", "1"),
            ("OUT", "article"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("| warm | serial transferTo | 1.81 s (663 MB/s, n=4) |"),
        "{text}"
    );
    assert!(text.contains("**3.62x**") && text.contains("**0.78x**"), "{text}");
    assert!(text.contains("Reading:"), "{text}");
    // A JDK and strace are here (CI installs them): the study's Java paths fill the 2017 rows, the native under them.
    assert!(
        text.contains("| jvm-transferto |") && text.contains("| jvm-read-write |") && text.contains("| sendfile |"),
        "{text}"
    );
    assert!(dir.path().join("article/article.md").is_file());
}

/// The many-core plan, at a tiny size: the article, sweep and peers steps land under RESULTS/TAG
/// and come back as one tarball whose members are named from RESULTS down, not by any absolute path.
#[test]
fn many_core_plan_runs_and_packs_one_tarball() {
    let dir = tempfile::tempdir().unwrap();
    let plan = || {
        let mut cmd = script("many-core.sh", dir.path());
        cmd.envs([
            ("SIZE", "8MiB"),
            ("CHUNK", "512KiB"),
            ("CHUNKS", "1MiB"),
            ("THREADS", "1 2"),
        ])
        .envs([("REPEAT", "1"), ("STEPS", "article sweep peers"), ("TAG", "2cpu-test")])
        .envs([("PEER_ROUNDS", "1"), ("PEER_FIXTURE_SIZE", "1MiB")])
        .env("FIXTURES_DIR", dir.path().join("fx"))
        .envs([("RESULTS", "res"), ("TARBALL", "back.tar.gz")]);
        cmd
    };
    let text = succeeds(&mut plan());
    assert!(text.contains("many-core: results in"), "{text}");
    for step in ["article", "sweep"] {
        let rows = common::read_rows(&dir.path().join(format!("res/2cpu-test/{step}/runs.csv"))).unwrap();
        assert!(!rows.is_empty() && rows.iter().all(|r| r.is_ok()), "{step}: {rows:?}");
    }
    let listing = Command::new("tar")
        .args(["tzf", "back.tar.gz"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(names.contains("res/2cpu-test/article/article.md"), "{names}");
    assert!(names.contains("res/2cpu-test/sweep/throughput.png"), "{names}");
    assert!(names.contains("res/2cpu-test/peers/peers.md"), "{names}");
    assert!(names.lines().all(|n| n.starts_with("res/2cpu-test")), "{names}");

    // A fresh machine: only the tarball survives. Unpacked, with the same TAG, the plan resumes: nothing is run twice.
    let count = |step: &str| {
        common::read_rows(&dir.path().join(format!("res/2cpu-test/{step}/runs.csv")))
            .unwrap()
            .len()
    };
    let before = (count("article"), count("sweep"));
    std::fs::remove_dir_all(dir.path().join("res")).unwrap();
    std::fs::remove_dir_all(dir.path().join("fx")).unwrap();
    let unpack = Command::new("tar")
        .args(["xzf", "back.tar.gz"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(unpack.success());
    let again = plan().output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(
        (count("article"), count("sweep")),
        before,
        "a resumed plan adds no rows"
    );
}

/// The peers bench at a tiny size without iperf3: every ratio line, the CPU table and xferbench's own rows land in
/// its folder, and the test file is the one named by FIXTURES_DIR.
#[test]
fn peers_bench_writes_ratios_cpu_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let text = succeeds(
        script("bench-peers.sh", dir.path())
            .envs([("SIZE", "8MiB"), ("ROUNDS", "2"), ("CHUNK", "1MiB")])
            .envs([("FIXTURE_ROUNDS", "1"), ("FIXTURE_SIZE", "4MiB")])
            .envs([("NO_IPERF", "1"), ("OUT", "peers"), ("FIXTURES_DIR", "fx")]),
    );
    assert!(dir.path().join("fx/xferbench-8388608-seed1.bin").is_file(), "{text}");
    let md = std::fs::read_to_string(dir.path().join("peers/peers.md")).unwrap();
    for heading in [
        "### xferbench sendfile / bare sendfile (goal >= 1.0)",
        "### xferbench read-send / bare read-send",
        "### with --verify / without",
        "### fixture creation / dd of zeros",
        "### sink user CPU s per 10^9 bytes",
        "### sink waits per 10^9 bytes",
    ] {
        assert!(md.contains(heading), "{heading:?} missing from:\n{md}");
    }
    // Every comparison is xferbench stats': the first against its baseline, paired round by round.
    assert!(md.contains("vs baseline [interval]"), "{md}");
    for name in [
        "xferbench-sendfile",
        "xferbench-read-send",
        "xferbench-sendfile-verify",
        "xferbench-sendfile-verify-receiver",
    ] {
        assert!(paired(&md, name), "{name} has no paired ratio:\n{md}");
    }
    assert!(md.contains("| fixture | 1 |"), "{md}");
    assert!(!md.contains("iperf3-Z-F"), "iperf3 was skipped:\n{md}");
    // Four xferbench runs a round, each labelled with its tool and round, every one verified where it was asked.
    let mut reader = csv::Reader::from_path(dir.path().join("peers/xferbench-runs.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (tool, verified, status) = (col("tool"), col("verified"), col("status"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 8, "{rows:?}");
    for r in &rows {
        assert_eq!(&r[status], "ok", "{r:?}");
        let asked = r[tool].contains("verify");
        assert_eq!(&r[verified], if asked { "true" } else { "false" }, "{r:?}");
    }
}

/// The receive-buffer script at a tiny size: one row per buffer size, each with the cost of --verify beside it.
#[test]
fn rx_buffer_script_measures_each_size_with_and_without_verify() {
    let dir = tempfile::tempdir().unwrap();
    succeeds(
        script("rx-buffer.sh", dir.path())
            .envs([("SIZE", "4MiB"), ("ROUNDS", "2"), ("REPEAT", "1")])
            .envs([("SIZES", "64KiB 256KiB"), ("OUT", "rx")])
            // The script asks for --quiet itself, and clap takes a flag once.
            .env(
                "EXTRA",
                format!("--fixture-dir {} --min-time 0.05s", dir.path().join("fx").display()),
            ),
    );
    let md = std::fs::read_to_string(dir.path().join("rx/rx-buffer.md")).unwrap();
    assert!(md.contains("## MB/s of each size against 256KiB\n"), "{md}");
    assert!(md.contains("## MB/s of each size against 256KiB-verify"), "{md}");
    assert!(md.contains("vs baseline [interval]"), "{md}");
    for size in ["64KiB", "256KiB"] {
        // Against the default, and with --verify against without, each paired round by round.
        assert!(md.contains(&format!("### {size}\n")), "{size}: {md}");
        assert!(paired(&md, &format!("{size}-verify")), "{size}: {md}");
        let verified = common::read_rows(&dir.path().join(format!("rx/{size}-verify/runs.csv"))).unwrap();
        assert_eq!(verified.len(), 2);
        assert!(verified.iter().all(|r| r.is_ok() && r.verified), "{verified:?}");
    }
    assert!(paired(&md, "64KiB"), "{md}");
    assert!(
        dir.path().join("fx/xferbench-4194304-seed1.bin").is_file(),
        "EXTRA reached run"
    );
}

/// The rows of `xferbench stats`' table for `name` that hold a ratio ("0.97x [...").
fn ratio_rows<'a>(md: &'a str, name: &str) -> Vec<&'a str> {
    let start = format!("| {name} |");
    md.lines()
        .filter(|l| l.starts_with(&start) && l.contains("x ["))
        .collect()
}

/// A row of `xferbench stats`' table for `name` that holds a ratio with its interval ("0.97x [0.91–1.02]").
fn paired(md: &str, name: &str) -> bool {
    ratio_rows(md, name).iter().any(|l| l.contains("–"))
}

/// The three benches of this build at a tiny size: passes against a bigger file, this build against another (here
/// itself), and TLS beside sendfile; each writes its table.
#[test]
fn passes_versions_and_tls_benches_write_their_tables() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, envs: &[(&str, &str)]| {
        succeeds(
            script(name, dir.path())
                .env("FIXTURES_DIR", "fx")
                // The fixture folder is FIXTURES_DIR's, read from where the script started: never one of the
                // repository.
                .env("EXTRA", "")
                .envs(envs.iter().copied()),
        )
    };
    run(
        "bench-passes.sh",
        &[
            ("SIZE", "2MiB"),
            ("K", "3"),
            ("ROUNDS", "2"),
            ("OUT", "passes"),
            ("CHUNK", "256KiB"),
            ("THREADS", "2"),
        ],
    );
    let md = std::fs::read_to_string(dir.path().join("passes/passes.md")).unwrap();
    assert!(
        md.contains("## sendfile\n") && md.contains("## parallel-sendfile\n"),
        "{md}"
    );
    assert!(md.contains("vs baseline [interval]"), "{md}");
    assert_eq!(
        ratio_rows(&md, "passes-3").len(),
        2,
        "one paired ratio a strategy:\n{md}"
    );
    assert!(
        dir.path().join("fx/xferbench-6291456-seed1.bin").is_file(),
        "the K-times file"
    );

    let bin = env!("CARGO_BIN_EXE_xferbench");
    run(
        "bench-versions.sh",
        &[
            ("BASE", bin),
            ("SIZE", "2MiB"),
            ("ROUNDS", "2"),
            ("OUT", "versions"),
            ("CHUNK", "1MiB"),
        ]
        .into_iter()
        .chain([
            ("SPREAD", "1"),
            ("MAIN_EXTRA", "--strategies sendfile --min-time 0.05s"),
        ])
        .collect::<Vec<_>>(),
    );
    let md = std::fs::read_to_string(dir.path().join("versions/versions.md")).unwrap();
    assert!(md.contains("vs baseline [interval]"), "{md}");
    // This build against the bare loop and against the other build; the main job's spread of each.
    assert_eq!(ratio_rows(&md, "this").len(), 2, "{md}");
    assert!(paired(&md, "base"), "{md}");
    let spread = md.lines().find(|l| l.starts_with("| sendfile |")).expect(&md);
    assert_eq!(spread.matches('%').count(), 2, "{spread}");

    run(
        "bench-tls.sh",
        &[("SIZE", "2MiB"), ("ROUNDS", "2"), ("OUT", "tls"), ("CHUNKS", "256KiB")],
    );
    let md = std::fs::read_to_string(dir.path().join("tls/tls.md")).unwrap();
    for s in [
        "| sendfile |",
        "| tls-read-send |",
        "| ktls-sendfile |",
        "TLS13_",
        "vs sf [interval]",
    ] {
        assert!(md.contains(s), "{s} in:\n{md}");
    }
    // One run of two rounds: the run's own table pairs TLS with sendfile round by round.
    let tls = md.lines().find(|l| l.starts_with("tls-read-send ")).expect(&md);
    assert!(tls.contains("x [") && tls.contains(" 2 "), "{tls}");
    let rows = common::read_rows(&dir.path().join("tls/runs.csv")).unwrap();
    assert_eq!(rows.len(), 8, "4 strategies x 2 rounds");
    assert_eq!(
        rows.iter()
            .map(|r| r.run_id.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1
    );
    assert!(dir.path().join("tls/cpu.svg").is_file());
    assert!(
        !Path::new(env!("CARGO_MANIFEST_DIR")).join("fx").exists(),
        "a fixture folder was made in the repository"
    );
}

/// The JVM bench at a tiny size: one run, the Java paths against their native twins paired by `xferbench stats`,
/// and each JVM case's first counted repetition ranked among its rounds.
#[test]
fn jvm_bench_pairs_each_java_path_with_its_native_twin() {
    let dir = tempfile::tempdir().unwrap();
    let out = succeeds(script("bench-jvm.sh", dir.path()).envs([
        ("SIZE", "4MiB"),
        ("CHUNK", "512KiB"),
        ("THREADS", "2"),
        // reno is in every kernel: the script's logic is tested, not this machine's algorithms.
        ("CCS", "reno"),
        ("REPEAT", "2"),
        ("OUT", "jvm"),
    ]));
    let md = std::fs::read_to_string(dir.path().join("jvm/jvm.md")).unwrap();
    assert_eq!(out.matches("### ").count(), 4, "{out}");
    for line in [
        "## warm-reno",
        "### parallel-jvm-transferto-x2 against parallel-sendfile-x2",
        "| jvm-nio | 2 |",
        "| jvm-read-write:threads | 2 |",
        "- jvm-transferto, warm, reno: round 1,",
    ] {
        assert!(md.contains(line), "{line}\n{md}");
    }
}

/// The short-repetitions bench at a tiny size, with this build as its own BASE: each build's runs lined up by
/// `compare` (every run's `vs sf`), and the short repetitions counted.
#[test]
fn short_reps_bench_lines_up_both_builds() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "--fixture-dir {} --size 4MiB --repeat 2 --strategies sendfile,read-send --min-time 0.05s",
        dir.path().join("fx").display()
    );
    let text = succeeds(
        script("bench-short-reps.sh", dir.path())
            .env("BASE", env!("CARGO_BIN_EXE_xferbench"))
            .envs([("RUNS", "2"), ("OUT", "short")])
            .env("EXTRA", extra),
    );
    let md = std::fs::read_to_string(dir.path().join("short/short-reps.md")).unwrap();
    assert!(
        md.contains("## BASE: short repetitions measured again and dropped"),
        "{md}\n{text}"
    );
    assert!(
        md.contains("## This build: short repetitions kept, flagged and counted"),
        "{md}"
    );
    // compare's table of the runs' vs sf, once per build: read-send in each, against both runs.
    assert_eq!(md.lines().filter(|l| l.starts_with("| read-send")).count(), 2, "{md}");
    for build in ["base", "this"] {
        for n in 1..=2 {
            assert!(
                dir.path().join(format!("short/{build}/{n}/runs.csv")).is_file(),
                "{build} {n}"
            );
        }
    }
}

/// The links bench on a tiny plan: loopback against a veth path (each strategy's MB/s and sender CPU per GB paired by
/// round), then a rate it fills under cubic and bbr. Needs root (the paths are namespaces of the runs' own).
#[test]
fn links_bench_sets_the_path_against_loopback_and_fills_a_rate() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the paths need root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    succeeds(
        script("bench-links.sh", dir.path())
            .env("FIXTURES_DIR", "fx")
            .env("EXTRA", "--chunk 1MiB --quiet")
            .envs([("SIZE", "4MiB"), ("ROUNDS", "2"), ("THREADS", "2"), ("OUT", "links")])
            .envs([("STRATEGIES", "sendfile read-send"), ("RATED", "veth:rate=100mbit")]),
    );
    let md = std::fs::read_to_string(dir.path().join("links/links.md")).unwrap();
    for s in [
        "### sendfile: MB/s over the path against loopback",
        "### read-send: sender CPU s/GB over the path against loopback",
        "sendfile veth:mtu=1500 ",
        "(cubic bbr)",
        "of the link's 100 Mbit/s",
        "link-bound",
    ] {
        assert!(md.contains(s), "{s} in:\n{md}");
    }
    assert_eq!(ratio_rows(&md, "veth").len(), 4, "two ratios a strategy:\n{md}");
    let rows = common::read_rows(&dir.path().join("links/rate/runs.csv")).unwrap();
    assert_eq!(rows.len(), 8, "2 strategies x 2 congestion controls x 2 rounds");
    assert!(rows.iter().all(|r| r.link_rate_bit_s == Some(100_000_000)), "{rows:?}");
}

/// The broker bench at a tiny size: its shape run and its JVM run, each with the CPU per GB of each case against
/// broker-sendfile paired by `xferbench stats` (and the JVM's TLS against rustls's), and the loop's own cost against
/// plain sendfile.
#[test]
fn broker_bench_pairs_cpu_per_gb_and_times_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    succeeds(
        script("bench-broker.sh", dir.path())
            .env(
                "EXTRA",
                format!(
                    "--fixture-dir {} --quiet --min-time 0.05s",
                    dir.path().join("fx").display()
                ),
            )
            .envs([("SIZE", "2MiB"), ("CONSUMERS", "1,3"), ("CCS", "reno"), ("ROUNDS", "2")])
            .envs([("LOOP_ROUNDS", "2"), ("OUT", "broker")]),
    );
    let cpu = std::fs::read_to_string(dir.path().join("broker/shape/cpu.md")).unwrap();
    for line in [
        "## 1 consumer(s), reno",
        "## 3 consumer(s), reno",
        "| broker-tls-read-send | 2 |",
    ] {
        assert!(cpu.contains(line), "{line} in:\n{cpu}");
    }
    // The JVM's broker against broker-sendfile (javac is on PATH here: the default steps include it).
    let jvm = std::fs::read_to_string(dir.path().join("broker/jvm/cpu.md")).unwrap();
    for line in [
        "## 3 consumer(s), reno",
        "| broker-jvm-transferto | 2 |",
        "| broker-jvm-tls | 2 |",
    ] {
        assert!(jvm.contains(line), "{line} in:\n{jvm}");
    }
    let tls = std::fs::read_to_string(dir.path().join("broker/jvm/tls.md")).unwrap();
    for line in [
        "## 1 consumer(s), reno: mb_s",
        "## 3 consumer(s), reno: cpu_s_per_gb",
        "| broker-tls-read-send | 2 |",
        "| broker-jvm-tls | 2 |",
    ] {
        assert!(tls.contains(line), "{line} in:\n{tls}");
    }
    let loop_md = std::fs::read_to_string(dir.path().join("broker/loop/loop.md")).unwrap();
    assert!(loop_md.contains("| broker-sendfile | 2 |"), "{loop_md}");
    assert!(dir.path().join("broker/shape/consumers.csv").is_file());
}

/// The statistics live in the Rust code (`run`'s rounds, `xferbench stats`): no script computes a median, a quantile
/// or an interval of its own, and none needs python.
#[test]
fn no_script_computes_statistics_of_its_own() {
    let mut files = vec![];
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap().map(Result::unwrap) {
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    assert!(files.len() > 10, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for word in ["python", "statistics.", "median(", "quantile", "IQR"] {
            assert!(!text.contains(word), "{} contains {word:?}", f.display());
        }
    }
}
