//! Starts a sink as a child process on loopback (or at the far end of a `--link` path, inside that path's sink
//! namespace), and stops it when dropped. The child is told by the kernel to die with its parent
//! (PR_SET_PDEATHSIG), so even a SIGKILLed run leaves no sink behind.

use crate::base::model::{Named, RxMode};
use anyhow::Context;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Options the spawned sink is started with.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    pub rx_buffer: u64,
    pub rx_mode: RxMode,
    pub rcvbuf: Option<u64>,
    pub cpus: Option<String>,
    pub idle_timeout_s: u64,
    /// Where it listens (port 0: any free one), e.g. `127.0.0.1:0`.
    pub listen: String,
    /// The network namespace it runs in, by the file that holds it (None: the run's own).
    pub netns: Option<std::path::PathBuf>,
}

/// A sink child listening on loopback.
pub struct SpawnedSink {
    child: Child,
    pub addr: SocketAddr,
}

impl SpawnedSink {
    /// Starts `xferbench sink` where `opts.listen` says (in `opts.netns`) and waits for its address.
    pub fn start(opts: &SpawnOptions) -> anyhow::Result<SpawnedSink> {
        let exe = std::env::current_exe().context("cannot find the xferbench executable to start a sink")?;
        let mut cmd = Command::new(exe);
        // Quiet: the run announces the sink's address itself; rejections are still logged.
        cmd.args([
            "sink",
            "--quiet",
            "--listen",
            &opts.listen,
            "--rx-buffer",
            &opts.rx_buffer.to_string(),
        ])
        .args([
            "--rx-mode",
            opts.rx_mode.name(),
            "--idle-timeout",
            &format!("{}s", opts.idle_timeout_s.max(1)),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        if let Some(bytes) = opts.rcvbuf {
            cmd.args(["--rcvbuf", &bytes.to_string()]);
        }
        if let Some(cpus) = &opts.cpus {
            cmd.args(["--cpus", cpus]);
        }
        // Opened here, joined in the child before it runs: the sink and its sockets live in that namespace.
        let netns = match &opts.netns {
            Some(path) => Some(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot open the sink's network namespace {}", path.display()))?,
            ),
            None => None,
        };
        before_exec(&mut cmd, netns.as_ref());
        let mut child = cmd.spawn().context("cannot start the sink process")?;
        drop(netns);
        let stdout = child.stdout.take().expect("stdout was piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("the sink process did not start listening within 10 s");
            }
        };
        let addr = line.trim().strip_prefix("listening on ").and_then(|a| a.parse().ok());
        match addr {
            Some(addr) => Ok(SpawnedSink { child, addr }),
            None => {
                let status = child.wait().ok();
                anyhow::bail!(
                    "the sink process failed to start ({})",
                    status.map(|s| s.to_string()).unwrap_or_default()
                )
            }
        }
    }

    /// Whether the child has exited.
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

/// The child's steps between fork and exec: it joins `netns` (the file stays open in the parent until the spawn
/// returns), asks the kernel to end it with its parent, and ends at once if that parent is gone already.
fn before_exec(cmd: &mut Command, netns: Option<&std::fs::File>) {
    // A parent killed between the fork and the prctl would leave the sink running until its idle timeout: the
    // child checks afterwards that its parent is still the run that started it.
    let parent = nix::unistd::getpid().as_raw();
    let netns_fd = netns.map(std::os::fd::AsRawFd::as_raw_fd);
    // SAFETY: setns, prctl, getppid and _exit are async-signal-safe and touch nothing of the parent's state.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            if let Some(fd) = netns_fd
                && libc::setns(fd, libc::CLONE_NEWNET) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            Ok(())
        });
    }
}

impl Drop for SpawnedSink {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}
