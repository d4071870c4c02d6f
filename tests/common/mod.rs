//! Helpers shared by the integration tests: run the binary in a temporary folder and read what it wrote; a sink
//! process that is stopped when dropped; the processes a run started; a small tmpfs, unmounted when dropped; two
//! network namespaces joined by a veth pair, deleted when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use std::time::Instant;
use xferbench::record::Row;

/// The `xferbench` binary with a time limit, so that a hang fails the test instead of stalling CI.
pub fn xferbench() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("xferbench").expect("the binary is built");
    cmd.timeout(Duration::from_secs(120));
    cmd
}

/// One counted repetition and no warm-up.
pub const ONCE: [&str; 4] = ["--repeat", "1", "--warmup", "0"];

/// One pass a repetition (instead of as many as --min-time asks for).
pub const ONE_PASS: [&str; 2] = ["--passes", "1"];

/// A `run` on a small fixture made in `dir`, writing into `dir/out`: one pass, one repetition, no warm-up.
pub fn small_run(dir: &Path, size: &str) -> assert_cmd::Command {
    let mut cmd = xferbench();
    cmd.current_dir(dir)
        .args(["run", "--size", size])
        .args(ONCE)
        .args(ONE_PASS)
        .arg("--quiet")
        .args([
            "--fixture-dir".as_ref(),
            dir.join("fixtures").as_os_str(),
            "--out".as_ref(),
            dir.join("out").as_os_str(),
        ]);
    cmd
}

/// A quiet `run` on a small fixture made in `dir`, into `dir/out`, no warm-up; the rest as `args` say (the repetitions
/// and passes too, which `small_run` fixes at one).
pub fn run_small(dir: &Path, size: &str, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = xferbench();
    cmd.current_dir(dir)
        .args(["run", "--size", size, "--warmup", "0", "--quiet"])
        .arg("--fixture-dir")
        .arg(dir.join("fixtures"))
        .arg("--out")
        .arg(dir.join("out"))
        .args(args);
    cmd
}

/// Every whole row of a runs.csv (a torn last row would fail the test).
pub fn csv_rows(path: &Path) -> Vec<Row> {
    let file = xferbench::record::read(path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    assert!(file.torn.is_none(), "{}: a torn last row", path.display());
    file.rows
}

/// Every consumer line of a run's consumers.csv (in the result folder `out`).
pub fn consumer_rows(out: &Path) -> Vec<xferbench::record::ConsumerRow> {
    let mut r = csv::Reader::from_path(out.join("consumers.csv")).expect("consumers.csv opens");
    r.deserialize().collect::<Result<_, _>>().expect("consumers.csv reads")
}

/// Every whole row of a runs.csv, or why it cannot be read; a torn last row is left out (see `csv_rows`).
pub fn read_rows(path: &Path) -> anyhow::Result<Vec<Row>> {
    Ok(xferbench::record::read(path)?.rows)
}

/// The summary.json of the result folder `out`.
pub fn summary(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary.json is valid JSON")
}

pub fn out_dir(dir: &Path) -> PathBuf {
    dir.join("out")
}

/// A temporary folder, removed when dropped.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub const BIN: &str = env!("CARGO_BIN_EXE_xferbench");

/// Longest any command of these tests may run before it is killed and the test failed.
pub const LIMIT: Duration = Duration::from_secs(120);

/// The binary, run by `prefix` when there is one (`ip netns exec NS`).
fn bin_under(prefix: &[&str]) -> Command {
    match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(BIN);
            c
        }
        None => Command::new(BIN),
    }
}

/// Runs a command to its end, or kills it after `limit` and fails.
pub fn run_limited(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

/// `xferbench sink` running (in a namespace when `prefix` says `ip netns exec NS`), killed when dropped.
pub struct Sink {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
}

impl Sink {
    /// Starts the sink with `args` and waits for its `listening on ADDR` line.
    pub fn start(prefix: &[&str], args: &[&str]) -> Sink {
        let mut cmd = bin_under(prefix);
        cmd.arg("sink")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink_log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut sink = Sink {
            child,
            addr: String::new(),
            log,
        };
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        match line.trim().strip_prefix("listening on ") {
            Some(addr) => sink.addr = addr.to_string(),
            None => panic!("the sink did not start: stdout {line:?}, stderr {:?}", sink.log()),
        }
        sink
    }

    /// The sink's process id (the `ip netns exec` wrapper's, when started in a namespace).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the sink has written to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log holds `count` lines containing `needle` (or `limit` passes); returns the log.
    pub fn wait_for_log(&self, needle: &str, count: usize, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.lines().filter(|l| l.contains(needle)).count() >= count || start.elapsed() > limit {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `xferbench run` with a small fixture in `dir`, one counted repetition and no warm-up, then `args`.
pub fn run_cmd(prefix: &[&str], dir: &Path, args: &[&str]) -> Command {
    let mut cmd = bin_under(prefix);
    cmd.args(["run", "--size", "4MiB", "--chunk", "256KiB"])
        .args(ONCE)
        .args(ONE_PASS)
        .args(["--timeout", "60s"])
        .arg("--fixture-dir")
        .arg(dir.join("fixtures"))
        .arg("--out")
        .arg(dir.join("out"))
        .args(args);
    cmd
}

/// `run_cmd(prefix, dir, args)` run to its end (LIMIT at most).
pub fn run_to_end(prefix: &[&str], dir: &Path, args: &[&str]) -> Output {
    run_limited(run_cmd(prefix, dir, args), LIMIT)
}

/// Fails unless the run `out` succeeded, showing its stderr and what `sink` logged.
pub fn assert_ran(out: &Output, sink: &Sink) {
    assert!(
        out.status.success(),
        "run failed: {}\nsink: {}",
        text(&out.stderr),
        sink.log()
    );
}

/// A verified run of `strategies` to `sink` (`run_cmd` on this host) from a new temporary folder, which it returns
/// once the run has succeeded.
pub fn verified_run_to(sink: &Sink, strategies: &str) -> tempfile::TempDir {
    let tmp = tmp();
    let out = run_to_end(
        &[],
        tmp.path(),
        &["--connect", &sink.addr, "--strategies", strategies, "--verify"],
    );
    assert_ran(&out, sink);
    tmp
}

/// Fails unless `out` exited with `code` and its stderr holds `needle`.
pub fn assert_fails(out: &Output, code: i32, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
}

/// The rows `run` wrote into `dir/out`.
pub fn rows(dir: &Path) -> Vec<xferbench::record::Row> {
    csv_rows(&dir.join("out/runs.csv"))
}

/// The bytes of the fixture `run_cmd` made in `dir`.
pub fn fixture_bytes(dir: &Path) -> Vec<u8> {
    let entries: Vec<_> = std::fs::read_dir(dir.join("fixtures"))
        .expect("fixture folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    assert_eq!(entries.len(), 1, "one fixture in {entries:?}");
    std::fs::read(&entries[0]).expect("fixture reads")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits (up to `limit`, looking again every `every`) until `f` gives Some.
pub fn wait_for<T>(what: &str, limit: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(every);
    }
}

/// The children of `pid` (from /proc/<pid>/task/*/children): the sink a run spawned.
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    out
}

pub fn kill(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("signal sent");
}

/// A small tmpfs, unmounted (lazily, so even a busy one goes) when the test ends however it ends.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    /// None, with the reason printed, where this cannot be done (not root, no right to mount).
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(dir).ok()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            Ok(o) => {
                eprintln!("skipped: cannot mount a tmpfs: {}", text(&o.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }

    /// Fills what is left of it with one file; returns its path.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let block = [0u8; 4096];
        while f.write(&block).is_ok_and(|n| n > 0) {}
        assert_eq!(
            nix::sys::statvfs::statvfs(&self.0).unwrap().blocks_available(),
            0,
            "the tmpfs is full"
        );
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The header of a stream that carries all of a `file_bytes` file in `chunk_bytes` chunks, alone: run `r`, case `c`,
/// one pass, no seed, verification, token, receive mode or TLS. Tests set the fields they need over it.
pub fn stream_header(file_bytes: u64, chunk_bytes: u64) -> xferbench::wire::StreamHeader {
    xferbench::wire::StreamHeader {
        run_id: "r".into(),
        case_id: "c".into(),
        plan: xferbench::wire::StreamPlan {
            file_bytes,
            chunk_bytes,
            layout: xferbench::model::Layout::Single,
            streams: 1,
            index: 0,
        },
        seed: None,
        verify: false,
        token: None,
        rx_mode: None,
        verify_on: None,
        passes: 1,
        pass_notices: false,
        tls: false,
        interval_ms: None,
        stall: None,
    }
}

/// Two network namespaces joined by a veth pair: `near` (10.99.0.1, fd99::1) sends, `far` (10.99.0.2,
/// fd99::2) receives. Both are deleted when this is dropped, which removes the veth pair with them.
pub struct NetPair {
    pub near: String,
    pub far: String,
}

pub const NEAR_IP: &str = "10.99.0.1";
pub const FAR_IP: &str = "10.99.0.2";
pub const FAR_IP6: &str = "fd99::2";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `ip` ({e}): these tests need iproute2 and root; install it with \
             `apt-get install iproute2`"
        )
    });
    assert!(out.status.success(), "ip {}: {}", args.join(" "), text(&out.stderr));
}

impl NetPair {
    /// Names unique to this process and call, so tests running in parallel do not meet.
    pub fn new() -> NetPair {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tag = format!("xb{}n{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let pair = NetPair {
            near: format!("{tag}a"),
            far: format!("{tag}b"),
        };
        // Created one by one so that the guard above deletes whatever was made before a step failed.
        ip(&["netns", "add", &pair.near]);
        ip(&["netns", "add", &pair.far]);
        let (va, vb) = (format!("{tag}x"), format!("{tag}y"));
        ip(&[
            "link", "add", &va, "netns", &pair.near, "type", "veth", "peer", "name", &vb, "netns", &pair.far,
        ]);
        for (ns, dev, v4, v6) in [(&pair.near, &va, NEAR_IP, "fd99::1"), (&pair.far, &vb, FAR_IP, FAR_IP6)] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
            // nodad: usable at once, without waiting out duplicate address detection.
            ip(&["-n", ns, "addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    /// `ip netns exec NS`, to put before a command.
    pub fn exec(ns: &str) -> [&str; 4] {
        ["ip", "netns", "exec", ns]
    }

    /// Runs `f` on a thread that has entered namespace `ns` (setns changes only the calling thread).
    pub fn inside<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
        // Where iproute2 keeps the namespaces it names (its NETNS_RUN_DIR).
        let path = format!("/var/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns into the namespace");
            f()
        })
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        for ns in [&self.near, &self.far] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).output();
        }
    }
}
