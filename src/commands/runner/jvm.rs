//! The runner's side of the JVM strategies. Before anything is made or measured, the JDK and strace are found and
//! the sender compiled (or found in its cache); a plan without a JVM case needs neither. Each JVM case gets a JVM
//! of its own at its first repetition, kept for its warm-ups and every round (as JMH forks one JVM per benchmark),
//! so that the JVM's start, class loading and first compilations fall before its timed sections; the JVM's check
//! pass (`jvm::check`) runs once when it starts. A JVM that died is replaced at the case's next repetition.
//!
//! A repetition drives the JVM's connections through `senders::Senders`, which puts a JVM's and this process's own
//! streams behind the same calls, so that `repetition` measures both alike.

use super::connect::{self, Opened};
use super::context::{Context, Failure, fail};
use crate::base::error::UsageError;
use crate::base::model::{CaseKey, Layout, Status};
use crate::experiment::config::Plan;
use crate::experiment::strategy::streams::Limits;
use crate::experiment::wire::{self, StreamPlan, StreamReport};
use crate::jvm::check::{self, Check};
use crate::jvm::jdk::{self, Compiled, Jdk};
use crate::jvm::process::{CallError, Jvm};
use crate::jvm::sender::{self, Totals};
use crate::results::record::Row;
use std::collections::HashMap;
use std::io::BufReader;
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the JVM strategies need, found once per run.
struct Setup {
    jdk: Jdk,
    sender: Compiled,
    strace: PathBuf,
}

/// A case's JVM and what its check pass saw.
pub struct Running {
    pub jvm: Jvm,
    pub check: Check,
    /// Repetitions it ran (its check pass counted).
    pub repetitions: u32,
}

/// The run's JVMs, one per JVM case.
#[derive(Default)]
pub struct Jvms {
    setup: Option<Setup>,
    running: HashMap<CaseKey, Running>,
}

impl Jvms {
    /// Finds the JDK and strace and compiles the sender (unless `dry_run`) when the plan has a JVM case: the one
    /// line that says what to install otherwise.
    pub fn prepare(plan: &Plan, dry_run: bool) -> anyhow::Result<Jvms> {
        let Some(first) = plan.cases.iter().find(|c| c.strategy.method.jvm()) else {
            return Ok(Jvms::default());
        };
        let who = first.strategy.to_string();
        let jdk = jdk::locate(plan.settings.java.as_deref(), &who)?;
        let strace = check::strace().ok_or_else(|| {
            UsageError::msg(format!(
                "{who} records which JDK path ran from a pass under strace, which is not on PATH: {}",
                check::INSTALL
            ))
        })?;
        if dry_run {
            return Ok(Jvms::default());
        }
        let sender = jdk::compile(&jdk, &jdk::cache_root())?;
        if sender.compiled_now && !plan.quiet {
            eprintln!(
                "xferbench: compiled the JVM sender with {} into {}",
                jdk.version,
                sender.classes.display()
            );
        }
        Ok(Jvms {
            setup: Some(Setup { jdk, sender, strace }),
            running: HashMap::new(),
        })
    }

    /// The case's JVM, started (and checked) if it has none or its last one died.
    pub fn running(&mut self, ctx: &Context, case: &CaseKey) -> Result<&mut Running, Failure> {
        let setup = self
            .setup
            .as_ref()
            .ok_or_else(|| fail(Status::SetupFailed)(anyhow::anyhow!("no JDK was set up for {}", case.strategy)))?;
        let alive = self.running.get_mut(case).map(|r| r.jvm.alive());
        if alive != Some(true) {
            if alive == Some(false) && !ctx.plan.quiet {
                eprintln!("xferbench: the JVM of {case} had exited; starting a new one");
            }
            self.running.remove(case);
            let cpus = ctx.plan.settings.sender_cpus.as_ref().map(|c| c.cpus.as_slice());
            let mut jvm = Jvm::start(&setup.jdk, &setup.sender, cpus, ctx.stop).map_err(fail(Status::SetupFailed))?;
            let check = check_pass(ctx, case, &mut jvm, &setup.strace)
                .map_err(|e| fail(Status::SetupFailed)(e.context("the JVM's check pass")))?;
            self.running.insert(
                *case,
                Running {
                    jvm,
                    check,
                    repetitions: 1,
                },
            );
        }
        self.running
            .get_mut(case)
            .ok_or_else(|| fail(Status::SetupFailed)(anyhow::anyhow!("the JVM of {case} is gone")))
    }
}

/// The check pass: one connection, at most `CHECK_BYTES` of the file, under strace; the sink's report must count
/// every byte (and, with --verify, match them). Not timed, not a row.
fn check_pass(ctx: &Context, case: &CaseKey, jvm: &mut Jvm, strace: &std::path::Path) -> anyhow::Result<Check> {
    let bytes = ctx.fixture.size.min(check::CHECK_BYTES);
    let plan = StreamPlan {
        file_bytes: bytes,
        chunk_bytes: case.chunk_bytes,
        layout: Layout::Single,
        streams: 1,
        index: 0,
    };
    let mut row = Row {
        case_id: case.id(),
        passes: 1,
        ..Row::default()
    };
    let method = case.strategy.method;
    let connected = sender::connect(jvm, method, &ctx.target.addrs, 1, ctx.stop)?;
    let opened = connect::greet_all(ctx, case, &mut row, &[plan], false, connected.socks).map_err(|f| f.error)?;
    let limits = Limits {
        deadline: Instant::now() + ctx.plan.settings.timeout,
        stop: ctx.stop,
        cpus: None,
        progress: false,
    };
    // A broker's check runs its network thread's loop: the calls judged are the ones its repetitions make.
    let served = served(case).map(|s| sender::Served {
        network_threads: 1,
        ..s
    });
    let mut streams = sender::Streams::prepare(
        jvm,
        method,
        &ctx.fixture.path,
        &[plan],
        &opened.socks,
        0,
        served,
        &opened.tls.pins,
        ctx.stop,
    )?;
    // Attached once the file is open: no other file can then hold the descriptor numbers the calls are judged by.
    let tracer = check::Tracer::attach(strace, streams.pid())?;
    let span = streams.run(1, false, true, limits)?;
    let file_fds = streams.file_fds.clone();
    let calls = tracer.finish()?;
    if let Some((_, e)) = span.errors.first() {
        anyhow::bail!("{e}");
    }
    let sock = &opened.socks[0];
    let _ = sock.shutdown(Shutdown::Write);
    if ctx.target.transport != crate::base::model::Transport::Raw {
        let _ = super::wait::readable(sock, Duration::from_secs(10), ctx.stop);
        let report: StreamReport = wire::read_line(&mut BufReader::new(sock))?;
        anyhow::ensure!(report.error.is_none(), "the sink: {}", report.error.unwrap_or_default());
        anyhow::ensure!(
            report.bytes == bytes,
            "the sink received {} of {bytes} bytes",
            report.bytes
        );
        anyhow::ensure!(
            !ctx.plan.settings.verify || report.verified,
            "the sink found content that differs from the fixture"
        );
    }
    streams.close(ctx.stop);
    Ok(check::judge(&calls, &connected.fds_in_jvm, &file_fds, bytes))
}

/// The JVM's connections for a repetition, set up as a native sender's are (header, ack, congestion control).
pub fn open(
    ctx: &Context,
    case: &CaseKey,
    row: &mut Row,
    running: &mut Running,
    plans: &[StreamPlan],
    pass_notices: bool,
) -> Result<Opened, Failure> {
    let n = plans.len() as u32;
    let connected =
        sender::connect(&mut running.jvm, case.strategy.method, &ctx.target.addrs, n, ctx.stop).map_err(|e| {
            let status = match e.downcast_ref::<CallError>() {
                Some(CallError::Refused(_)) => Status::ConnectFailed,
                Some(CallError::Exited(_)) => Status::SenderExited,
                Some(CallError::Stopped) => Status::Interrupted,
                // Timed out, or this process could not reach the JVM's sockets.
                _ => Status::SetupFailed,
            };
            fail(status)(e)
        })?;
    connect::greet_all(ctx, case, row, plans, pass_notices, connected.socks)
}

/// The JVM's streams of a repetition, with its files open and buffers made (and a TLS method's handshakes done,
/// pinned by `pins`); notes the repetition in the row.
pub(super) fn prepare<'a>(
    ctx: &Context,
    case: &CaseKey,
    row: &mut Row,
    running: &'a mut Running,
    plans: &[StreamPlan],
    socks: &'a [TcpStream],
    pins: &[String],
) -> Result<sender::Streams<'a>, Failure> {
    row.jvm_version = running.jvm.about.text();
    row.jvm_path = running.check.path.clone();
    row.jvm_calls = running.check.calls.clone();
    row.jvm_repetitions_before = Some(running.repetitions);
    running.repetitions += 1;
    let copies = running.check.copies;
    let method = case.strategy.method;
    sender::Streams::prepare(
        &mut running.jvm,
        method,
        &ctx.fixture.path,
        plans,
        socks,
        copies,
        served(case),
        pins,
        ctx.stop,
    )
    .map_err(|e| {
        // A handshake the JVM's engine refused is the TLS's failure, as a native sender's would be.
        let status = match format!("{e:#}").contains("TLS handshake (the JVM) failed") {
            true => Status::TlsFailed,
            false => Status::SetupFailed,
        };
        fail(status)(e)
    })
}

/// A broker case's shape for the JVM's network threads (None for a serial or parallel case).
fn served(case: &CaseKey) -> Option<sender::Served> {
    case.consumers.map(|c| sender::Served {
        network_threads: case.threads,
        fetch_bytes: c.fetch_bytes,
    })
}

/// The JVM's totals into the row.
pub fn fill(row: &mut Row, totals: Totals) {
    row.jvm_send_cpu_s = totals.send_cpu_s;
    row.jvm_jit_ms = Some(totals.jit_ms);
    row.jvm_gc_ms = Some(totals.gc_ms);
}
