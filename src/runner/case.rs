//! One repetition of one case: cache state, connections, the timed transfer, the sink's reports, one row.
//! Whatever goes wrong ends up in the row's `status` and `error`; a repetition never takes the run down.

use super::wait::Wait;
use crate::cache;
use crate::config::{Cache, Case, RunConfig};
use crate::env::{Environment, boot_id, monotonic_ns};
use crate::fixture::Fixture;
use crate::probe::Snapshot;
use crate::record::{Row, STATUS_OK};
use crate::sink::read_ack;
use crate::strategy::{Method, SEND_WAKEUP, SendOptions, streams};
use crate::wire::{self, Layout, StreamHeader, StreamPlan, StreamReport};
use std::io::{BufReader, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Status of a repetition whose test file was not the size it had when the run began.
pub const STATUS_FILE_CHANGED: &str = "file-changed";
/// Status of a repetition cut short by SIGINT or SIGTERM (never written: the runner drops it whole).
const STATUS_INTERRUPTED: &str = "interrupted";

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the sink has to answer a header.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for reports after a failed send, or for a raw receiver to close.
const LINGER: Duration = Duration::from_secs(3);

/// What every repetition of a run shares.
pub struct Context<'a> {
    pub cfg: &'a RunConfig,
    pub fixture: &'a Fixture,
    pub env: &'a Environment,
    pub run_id: &'a str,
    pub target: &'a [SocketAddr],
    /// As the user named it (for messages and the CSV).
    pub target_label: &'a str,
    pub transport: &'static str,
    pub stop: &'a AtomicBool,
}

/// Runs one repetition and describes it in a row (status `ok` or the failure's name).
pub fn run_repetition(ctx: &Context, case: &Case, repetition: u32) -> Row {
    let mut row = base_row(ctx, case, repetition);
    if let Err((status, e)) = measure(ctx, case, &mut row) {
        row.status = status.to_string();
        row.error = format!("{e:#}");
    }
    row
}

fn interrupted() -> (&'static str, anyhow::Error) {
    (STATUS_INTERRUPTED, anyhow::anyhow!("stopped by a signal"))
}

fn fail(status: &'static str) -> impl FnOnce(anyhow::Error) -> (&'static str, anyhow::Error) {
    move |e| (status, e)
}

fn measure(ctx: &Context, case: &Case, row: &mut Row) -> Result<(), (&'static str, anyhow::Error)> {
    let cfg = ctx.cfg;
    let path = &ctx.fixture.path;
    // A file that changed size since the run began would be sent as something else than what the plan says.
    crate::fixture::check_unchanged(ctx.fixture).map_err(fail(STATUS_FILE_CHANGED))?;
    match case.cache {
        Cache::Warm => cache::warm(path),
        Cache::Cold => cache::evict(path, cfg.drop_caches),
    }
    .map_err(fail("cache-failed"))?;
    row.resident_before_ratio = cache::residency(path).map_err(fail("cache-failed"))?;
    if cache::contradicts(case.cache == Cache::Warm, row.resident_before_ratio) {
        add_flag(row, "residency-mismatch");
    }

    let n = if case.strategy.parallel { case.threads } else { 1 };
    let plans: Vec<StreamPlan> = (0..n)
        .map(|index| StreamPlan {
            file_bytes: ctx.fixture.size,
            chunk_bytes: case.chunk_bytes,
            layout: if case.strategy.parallel {
                case.layout
            } else {
                Layout::Single
            },
            streams: n,
            index,
        })
        .collect();
    let (socks, same_clock) = open_streams(ctx, case, row, &plans)?;

    let opts = SendOptions {
        chunk_bytes: case.chunk_bytes,
        queue_depth: cfg.queue_depth,
    };
    if case.strategy.method == Method::IoUring {
        row.queue_depth = Some(cfg.queue_depth);
    }
    let (i0, m0) = (Instant::now(), monotonic_ns());
    let deadline = i0 + cfg.timeout;
    let cpus = cfg.sender_cpus.as_ref().map(|(_, list)| list.as_slice());
    let limits = streams::Limits {
        deadline,
        stop: ctx.stop,
        cpus,
    };
    let outcome =
        streams::run(case.strategy.method, path, &plans, &socks, &opts, limits).map_err(fail("setup-failed"))?;
    let send_failed = outcome.errors.first().cloned();
    for s in &socks {
        let _ = s.shutdown(Shutdown::Write);
    }
    let stats = &outcome.stats;
    let first_call = stats.first_call.unwrap_or(outcome.released);
    let last_return = stats.last_return.unwrap_or(outcome.finished);
    let mono = |at: Instant| m0 as i128 + at.saturating_duration_since(i0).as_nanos() as i128;

    // The sink's word on each stream, or (raw) the moment each receiver closed.
    let wait = if send_failed.is_some() {
        LINGER
    } else {
        deadline.saturating_duration_since(Instant::now()).max(LINGER)
    };
    let mut reports: Vec<(StreamReport, Instant)> = Vec::new();
    let mut missing: Option<String> = None;
    let mut raw_closed: Option<Instant> = None;
    for (i, s) in socks.iter().enumerate() {
        if cfg.raw {
            match wait_for_close(s, LINGER) {
                Some(at) => raw_closed = Some(raw_closed.map_or(at, |t: Instant| t.max(at))),
                None => add_flag(row, "raw-receiver-did-not-close"),
            }
            continue;
        }
        match super::wait::readable(s, wait, ctx.stop) {
            Wait::Stopped => return Err(interrupted()),
            Wait::TimedOut => {
                let why = format!("no report for stream {i} within {:.0} s", wait.as_secs_f64());
                missing = missing.or(Some(why));
                continue;
            }
            Wait::Ready => {}
        }
        match wire::read_line::<StreamReport>(&mut BufReader::new(s)) {
            Ok(r) => reports.push((r, Instant::now())),
            Err(e) => missing = missing.or(Some(format!("no report for stream {i}: {e}"))),
        }
    }
    let system = Snapshot::take().map_err(fail("probe-failed"))?.since(&outcome.before);

    row.bytes_sent = stats.bytes;
    row.send_s = last_return.saturating_duration_since(first_call).as_secs_f64();
    row.syscalls = stats.syscalls;
    row.user_copy_bytes = stats.user_copy_bytes;
    row.path = stats.fallback.clone().unwrap_or_else(|| case.strategy.name());
    let us = |q: f64| stats.latency_ns.value_at_quantile(q) as f64 / 1000.0;
    (row.call_p50_us, row.call_p99_us, row.call_max_us) = (us(0.5), us(0.99), stats.latency_ns.max() as f64 / 1000.0);
    if stats.zerocopy_sends > 0 {
        row.zerocopy_copied_ratio = Some(stats.zerocopy_copied as f64 / stats.zerocopy_sends as f64);
    }
    row.sender_user_s = outcome.sender.user_s;
    row.sender_sys_s = outcome.sender.sys_s;
    row.sender_voluntary_ctxsw = outcome.sender.voluntary_ctxsw;
    row.sender_involuntary_ctxsw = outcome.sender.involuntary_ctxsw;
    row.minor_faults = outcome.sender.minor_faults;
    row.major_faults = outcome.sender.major_faults;
    row.softirq_s = system.softirq_s;
    row.system_ctxsw = system.system_ctxsw;
    row.tcp_retrans_segs = system.tcp_retrans_segs;

    // Wall time: first call to the last byte at the sink. On one kernel both sides read the same CLOCK_MONOTONIC;
    // across hosts the last byte is placed at the report's arrival less the sink's own delay in sending it.
    let end_ns: Option<i128> = if cfg.raw {
        raw_closed.map(mono)
    } else if reports.len() == socks.len() && !reports.is_empty() {
        reports
            .iter()
            .map(|(r, got)| {
                if same_clock {
                    r.last_byte_ns.map(|t| t as i128)
                } else {
                    let delay = r.report_ns.saturating_sub(r.last_byte_ns.unwrap_or(r.report_ns)) as i128;
                    Some(mono(*got) - delay)
                }
            })
            .collect::<Option<Vec<i128>>>()
            .and_then(|v| v.into_iter().max())
    } else {
        None
    };
    row.wall_s = match end_ns {
        Some(end) => ((end - mono(first_call)).max(0) as f64 / 1e9).max(row.send_s),
        None => row.send_s,
    };
    if row.wall_s > 0.0 {
        row.throughput_mb_s = ctx.fixture.size as f64 / 1e6 / row.wall_s;
        row.throughput_gbit_s = ctx.fixture.size as f64 * 8.0 / 1e9 / row.wall_s;
    }
    if row.wall_s < crate::summary::SHORT_RUN_S {
        add_flag(row, "short-run");
    }
    if !cfg.raw && !reports.is_empty() {
        let rs = || reports.iter().map(|(r, _)| r);
        row.bytes_received = Some(rs().map(|r| r.bytes).sum());
        row.sink_user_s = Some(rs().map(|r| r.user_s).sum());
        row.sink_sys_s = Some(rs().map(|r| r.sys_s).sum());
        row.sink_voluntary_ctxsw = Some(rs().map(|r| r.voluntary_ctxsw).sum());
        row.sink_involuntary_ctxsw = Some(rs().map(|r| r.involuntary_ctxsw).sum());
        let first = rs().filter_map(|r| r.first_byte_ns).min();
        let last = rs().filter_map(|r| r.last_byte_ns).max();
        if let (Some(a), Some(b)) = (first, last) {
            row.recv_s = Some(b.saturating_sub(a) as f64 / 1e9);
        }
        row.verified = cfg.verify && reports.len() == socks.len() && rs().all(|r| r.verified);
        let mut places: Vec<&str> = rs().filter_map(|r| r.verify_on.as_deref()).collect();
        places.sort_unstable();
        places.dedup();
        row.verify_on = places.join(";");
        row.sink_checker_cpu_s = rs().filter_map(|r| r.checker_cpu_s).reduce(|a, b| a + b);
    }

    if let Some((stream, e)) = send_failed {
        let received = row
            .bytes_received
            .map(|b| format!(", {b} bytes arrived"))
            .unwrap_or_default();
        return Err((
            e.status(),
            anyhow::anyhow!("stream {stream}: {e} after {} bytes sent{received}", row.bytes_sent),
        ));
    }
    if let Some(why) = missing {
        return Err(("no-report", anyhow::anyhow!(why)));
    }
    if let Some((r, _)) = reports.iter().find(|(r, _)| r.error.is_some()) {
        return Err((
            "sink-error",
            anyhow::anyhow!("sink, stream {}: {}", r.stream, r.error.clone().unwrap_or_default()),
        ));
    }
    if row.bytes_sent != ctx.fixture.size {
        return Err((
            "short-send",
            anyhow::anyhow!("sent {} of {} bytes", row.bytes_sent, ctx.fixture.size),
        ));
    }
    if let Some(got) = row.bytes_received
        && got != ctx.fixture.size
    {
        return Err((
            "short-transfer",
            anyhow::anyhow!("the sink received {got} of {} bytes", ctx.fixture.size),
        ));
    }
    if cfg.verify && !row.verified {
        let at = reports.iter().find_map(|(r, _)| r.mismatch_offset);
        let where_ = at
            .map(|o| format!(" (first wrong byte at file offset {o})"))
            .unwrap_or_default();
        return Err((
            "corrupt",
            anyhow::anyhow!("the sink found content that differs from the fixture{where_}"),
        ));
    }
    row.status = STATUS_OK.into();
    Ok(())
}

/// Connects every stream and, unless raw, sends its header and reads the ack. Returns whether the sink shares
/// this kernel's clock.
fn open_streams(
    ctx: &Context,
    case: &Case,
    row: &mut Row,
    plans: &[StreamPlan],
) -> Result<(Vec<TcpStream>, bool), (&'static str, anyhow::Error)> {
    let cfg = ctx.cfg;
    let local_boot = boot_id();
    let mut same_clock = !cfg.raw;
    let mut socks = Vec::with_capacity(plans.len());
    for plan in plans {
        let sock = connect(ctx.target, ctx.target_label).map_err(fail("connect-failed"))?;
        configure(&sock, cfg).map_err(fail("setup-failed"))?;
        if !cfg.raw {
            let header = StreamHeader {
                run_id: ctx.run_id.to_string(),
                case_id: row.case_id.clone(),
                plan: *plan,
                seed: ctx.fixture.seed,
                verify: cfg.verify,
                token: cfg.token.clone(),
                // A spawned sink receives as each case asks; a remote one as its own --rx-mode says.
                rx_mode: (ctx.transport == "loopback").then(|| case.rx_mode.name().to_string()),
                verify_on: cfg.verify_on.map(|on| on.name().to_string()),
            };
            wire::write_header(&mut &sock, &header).map_err(|e| ("connect-failed", e.into()))?;
            sock.set_read_timeout(Some(ACK_TIMEOUT))
                .map_err(|e| ("setup-failed", e.into()))?;
            if super::wait::readable(&sock, ACK_TIMEOUT, ctx.stop) == Wait::Stopped {
                return Err(interrupted());
            }
            let ack = read_ack(&mut BufReader::new(&sock))
                .map_err(|e| ("refused", e.context(format!("sink at {}", ctx.target_label))))?;
            same_clock &= ack.boot_id == local_boot && !local_boot.is_empty();
            if ctx.transport == "remote" {
                // The receiving side is set up over there: the row records what that sink said it uses.
                row.rx_mode = ack.rx_mode.clone();
                row.rx_buffer_bytes = Some(ack.rx_buffer_bytes);
                row.rcvbuf_bytes = ack.rcvbuf_bytes;
                row.sink_cpus = ack.cpus.clone().unwrap_or_default();
            }
            if ack.rx_mode != case.rx_mode.name() && ctx.transport == "loopback" {
                return Err((
                    "setup-failed",
                    anyhow::anyhow!("the sink receives in mode {}", ack.rx_mode),
                ));
            }
        }
        socks.push(sock);
    }
    Ok((socks, same_clock))
}

/// Connects to the first address that answers, within CONNECT_TIMEOUT each.
pub fn connect(addrs: &[SocketAddr], label: &str) -> anyhow::Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((addr, e)),
        }
    }
    match last {
        Some((addr, e)) if addr.to_string() == label => anyhow::bail!("cannot connect to {label}: {e}"),
        Some((addr, e)) => anyhow::bail!("cannot connect to {label} ({addr}): {e}"),
        None => anyhow::bail!("{label} resolves to no address"),
    }
}

fn configure(sock: &TcpStream, cfg: &RunConfig) -> anyhow::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    sock.set_nodelay(cfg.nodelay)?;
    if let Some(bytes) = cfg.sndbuf {
        setsockopt(sock, sockopt::SndBuf, &(bytes as usize))?;
    }
    // A blocked send wakes up this often to check the deadline and the stop flag.
    sock.set_write_timeout(Some(SEND_WAKEUP))?;
    Ok(())
}

/// Waits for a raw receiver to close its side after ours was shut down; returns when it did.
fn wait_for_close(sock: &TcpStream, limit: Duration) -> Option<Instant> {
    let _ = sock.set_read_timeout(Some(limit));
    let mut buf = [0u8; 4096];
    loop {
        match (&*sock).read(&mut buf) {
            Ok(0) => return Some(Instant::now()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(Instant::now()),
            Err(_) => return None,
        }
    }
}

fn add_flag(row: &mut Row, flag: &str) {
    if !row.flags.split(';').any(|f| f == flag) {
        if !row.flags.is_empty() {
            row.flags.push(';');
        }
        row.flags.push_str(flag);
    }
}

fn base_row(ctx: &Context, case: &Case, repetition: u32) -> Row {
    let cfg = ctx.cfg;
    let env = ctx.env;
    Row {
        run_id: ctx.run_id.to_string(),
        case_id: case.id(ctx.fixture.size, cfg.rx_buffer),
        strategy: case.strategy.name(),
        path: case.strategy.name(),
        threads: if case.strategy.parallel { case.threads } else { 1 },
        chunk_bytes: case.chunk_bytes,
        layout: if case.strategy.parallel {
            case.layout.as_str()
        } else {
            Layout::Single.as_str()
        }
        .into(),
        cache: case.cache.name().into(),
        file_bytes: ctx.fixture.size,
        repetition,
        // Raw mode knows nothing of the receiver: its columns stay empty.
        rx_buffer_bytes: (!cfg.raw).then_some(cfg.rx_buffer),
        rx_mode: if cfg.raw {
            String::new()
        } else {
            case.rx_mode.name().into()
        },
        transport: ctx.transport.into(),
        sink_addr: ctx.target_label.to_string(),
        sndbuf_bytes: cfg.sndbuf,
        rcvbuf_bytes: cfg.rcvbuf,
        nodelay: cfg.nodelay,
        sender_cpus: cfg.sender_cpus.as_ref().map(|(s, _)| s.clone()).unwrap_or_default(),
        sink_cpus: cfg.sink_cpus.clone().unwrap_or_default(),
        queue_depth: None,
        kernel: env.kernel.clone(),
        host: env.host.clone(),
        cpu_model: env.cpu_model.clone(),
        logical_cpus: env.logical_cpus,
        memory_bytes: env.memory_bytes,
        file_system: env.file_system.clone(),
        xferbench_version: env.xferbench_version.clone(),
        started_utc: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        status: "incomplete".into(),
        ..Row::default()
    }
}
