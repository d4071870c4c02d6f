//! The receiving side: a process of its own, so that sender and receiver CPU are measured apart, and the same
//! code serves loopback (spawned by `run`) and a remote host (`xferbench sink --listen ADDR`).
//!
//! A connection opens with a stream header (`wire`). Until the whole header is in, it waits in the main thread's
//! event loop (`admit`), with a deadline and a bounded number of places; once admitted, it gets a thread of its
//! own. The sink answers with an ack, receives until the sender shuts its side down, checking content when asked,
//! and answers with one line of JSON: bytes, verification, first and last byte times, and the thread's own CPU and
//! context switches. It keeps serving run after run; a stranger's connection is dropped with one log line (counted
//! instead past a few a second) and costs no more than the limits below.

mod admit;
mod listen;
mod log;
mod receive;
pub mod spawn;
mod stall;
mod zerocopy;

use crate::base::cli::SinkArgs;
use crate::base::error::UsageError;
use crate::base::model::{RxMode, VerifyOn};
use crate::base::units::CpuList;
use crate::experiment::probe::Counters;
use crate::experiment::wire::{self, Ack, StreamHeader, StreamReport};
use anyhow::Context;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// The sink's settings, checked.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub listen: String,
    pub rx_buffer: usize,
    pub rx_mode: RxMode,
    pub token: Option<String>,
    pub rcvbuf: Option<u64>,
    pub cpus: Option<CpuList>,
    pub idle_timeout: Duration,
    /// Time a new connection has to send its whole header (the idle timeout, when that is shorter).
    pub header_timeout: Duration,
    /// Connections in their header phase at once (fewer when the process may open too few files).
    pub max_pending: usize,
    /// Skip the start-up announcement on stderr.
    pub quiet: bool,
}

/// `xferbench sink`.
pub fn main(args: SinkArgs) -> anyhow::Result<()> {
    if let Some(cpus) = &args.cpus {
        cpus.check("--cpus")?;
    }
    serve(SinkConfig {
        listen: args.listen,
        rx_buffer: args.rx_buffer as usize,
        rx_mode: args.rx_mode,
        token: args.token,
        rcvbuf: args.rcvbuf,
        cpus: args.cpus,
        idle_timeout: args.idle_timeout,
        header_timeout: args.header_timeout,
        max_pending: args.max_pending as usize,
        quiet: args.quiet,
    })
}

/// Binds, prints `listening on ADDR` on stdout, and serves until the process is stopped.
pub fn serve(cfg: SinkConfig) -> anyhow::Result<()> {
    let files = listen::raise_open_files();
    let listener = bind(&cfg)?;
    let limits = admit::Limits {
        header_timeout: cfg.header_timeout.min(cfg.idle_timeout),
        max_pending: listen::pending_places(cfg.max_pending, files.now),
    };
    announce(&cfg, listener.local_addr()?, &limits, &files)?;
    let cfg = Arc::new(cfg);
    let boot_id: Arc<str> = crate::base::env::boot_id().into();
    // One certificate for the sink's life: every ack of a TLS stream announces its fingerprint.
    let identity = Arc::new(crate::experiment::tls::SinkIdentity::generate()?);
    let stalls = Arc::new(stall::Stalls::default());
    let gate = listen::Gate::default();
    let refusal = |why: &str| {
        let mut line = Vec::new();
        let _ = wire::write_line(
            &mut line,
            &answer(&cfg, &boot_id, false, cfg.rx_mode, Some(why.to_string())),
        );
        line
    };
    let admit = |arrival: admit::Arrival| -> Result<(), (TcpStream, String)> {
        let admit::Arrival { sock, peer, header } = arrival;
        let rx_mode = match vet(&header, &cfg) {
            Ok(mode) => mode,
            Err(why) => return Err((sock, why)),
        };
        // A flood of streams costs a refusal each, not a thread and a buffer each.
        let Some(slot) = gate.enter() else {
            return Err((sock, format!("{} streams already open", listen::MAX_OPEN)));
        };
        let back = match sock.try_clone() {
            Ok(s) => s,
            Err(e) => return Err((sock, format!("cannot take the stream ({e})"))),
        };
        let (cfg, boot_id, identity) = (Arc::clone(&cfg), Arc::clone(&boot_id), Arc::clone(&identity));
        let stalls = Arc::clone(&stalls);
        let spawned = std::thread::Builder::new().name("sink-stream".into()).spawn(move || {
            let _slot = slot;
            let shared = Shared {
                cfg: &cfg,
                boot_id: &boot_id,
                identity: &identity,
                stalls: &stalls,
            };
            if let Err(e) = stream(sock, header, rx_mode, &shared) {
                log::say(format_args!("{peer}: {e:#}"));
            }
        });
        spawned
            .map(drop)
            .map_err(|e| (back, format!("cannot start a stream thread ({e})")))
    };
    admit::Admission::new(listener, limits)?.serve(refusal, admit)?;
    Ok(())
}

/// Binds the listening socket (with SO_RCVBUF before listen) and pins the sink where asked.
fn bind(cfg: &SinkConfig) -> anyhow::Result<std::net::TcpListener> {
    let addrs: Vec<SocketAddr> = cfg
        .listen
        .to_socket_addrs()
        .map_err(|e| UsageError::new("--listen", &cfg.listen, format!("not an address to listen on ({e})")))?
        .collect();
    let listener = listen::bind_listener(&addrs, cfg.rcvbuf).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (another sink already running?)"
        } else {
            ""
        };
        anyhow::anyhow!("cannot listen on {}: {e}{hint}", cfg.listen)
    })?;
    if let Some(cpus) = &cfg.cpus {
        crate::experiment::strategy::streams::pin_current_thread(&cpus.cpus);
    }
    Ok(listener)
}

/// The limits on stderr, then the address on stdout (`listening on ADDR`): whoever waits for the address has seen
/// the limits.
fn announce(
    cfg: &SinkConfig,
    local: SocketAddr,
    limits: &admit::Limits,
    files: &impl std::fmt::Display,
) -> anyhow::Result<()> {
    if !cfg.quiet {
        log::say(format_args!(
            "listening on {local}; rx {} x {} bytes; limits: header {} bytes, {} streams per run, {} streams open, \
             {} connections in their header phase for at most {} each, idle {}; open files {}",
            cfg.rx_mode,
            cfg.rx_buffer,
            wire::MAX_HEADER_BYTES,
            wire::MAX_STREAMS,
            listen::MAX_OPEN,
            limits.max_pending,
            humantime::format_duration(limits.header_timeout),
            humantime::format_duration(cfg.idle_timeout),
            files
        ));
    }
    let mut out = std::io::stdout();
    writeln!(out, "listening on {local}")?;
    out.flush()?;
    Ok(())
}

/// Where this stream's bytes are checked, when they are: where the sender asked, or where the sink's CPUs allow;
/// always in the receiver with `zerocopy`, whose mapped pages are checked in place before they are let go.
fn verify_place(header: &StreamHeader, rx_mode: RxMode) -> Option<VerifyOn> {
    header.verify.then(|| {
        if rx_mode == RxMode::Zerocopy {
            return VerifyOn::Receiver;
        }
        header.verify_on.unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            VerifyOn::choose(header.plan.streams, cpus)
        })
    })
}

/// The report of a stream that has ended: what arrived, whether it matched, when, and what it cost the thread.
fn report_of(
    header: &StreamHeader,
    outcome: &receive::Received,
    used: &Counters,
    noise: crate::experiment::probe::Noise,
    verify_on: Option<VerifyOn>,
    tcp: Option<crate::experiment::tcp::TcpInfo>,
) -> StreamReport {
    StreamReport {
        stream: header.plan.index,
        bytes: outcome.bytes,
        verified: outcome.verified && outcome.bytes == header.total_bytes(),
        mismatch_offset: outcome.mismatch_offset,
        first_byte_ns: outcome.first_byte_ns,
        last_byte_ns: outcome.last_byte_ns,
        report_ns: crate::base::env::monotonic_ns(),
        user_s: used.user_s,
        sys_s: used.sys_s,
        voluntary_ctxsw: used.voluntary_ctxsw,
        involuntary_ctxsw: used.involuntary_ctxsw,
        recv_calls: outcome.calls,
        error: outcome.error.clone(),
        verify_on,
        checker_cpu_s: outcome.checker.as_ref().map(|c| c.user_s + c.sys_s),
        runq_wait_ns: noise.runq_wait_s.map(|s| (s * 1e9) as u64),
        migrations: noise.migrations,
        cpus: noise.cpus.into_iter().collect(),
        tcp,
        mapped_bytes: outcome.mapped,
        rx_fallback: outcome.fallback.clone(),
        mismatch_mapped: outcome.mismatch_mapped,
        series_interval_ns: outcome.series.as_ref().map(|s| s.interval_ns),
        series: outcome.series.as_ref().map(|s| s.buckets.clone()).unwrap_or_default(),
    }
}

/// The ack the sink sends: go ahead (with what it will use), or a refusal saying why.
fn answer(cfg: &SinkConfig, boot_id: &str, ok: bool, rx_mode: RxMode, error: Option<String>) -> Ack {
    Ack {
        ok,
        version: wire::PROTOCOL_VERSION,
        boot_id: boot_id.to_string(),
        rx_mode,
        rx_buffer_bytes: cfg.rx_buffer as u64,
        rcvbuf_bytes: cfg.rcvbuf,
        cpus: cfg.cpus.as_ref().map(|c| c.text.clone()),
        tls_fingerprint: None,
        error,
        stalls: true,
    }
}

/// Whether a whole, well-formed header may become a stream here: the token, and a receive mode that can do
/// what it asks. Returns the receive mode.
fn vet(header: &StreamHeader, cfg: &SinkConfig) -> Result<RxMode, String> {
    if let Some(token) = &cfg.token
        && !header.token.as_deref().is_some_and(|t| listen::same_secret(t, token))
    {
        return Err("wrong or missing token".into());
    }
    let rx_mode = header.rx_mode.unwrap_or(cfg.rx_mode);
    if header.verify && !rx_mode.can_verify() {
        return Err(format!("rx mode {rx_mode} discards the bytes and cannot verify"));
    }
    Ok(rx_mode)
}

/// What every stream of the sink shares.
struct Shared<'a> {
    cfg: &'a SinkConfig,
    boot_id: &'a str,
    identity: &'a crate::experiment::tls::SinkIdentity,
    stalls: &'a Arc<stall::Stalls>,
}

/// One admitted stream, on its own thread: ack, (TLS handshake), (a stalled consumer's wait), the bytes, report.
fn stream(sock: TcpStream, header: StreamHeader, rx_mode: RxMode, shared: &Shared) -> anyhow::Result<()> {
    let Shared {
        cfg,
        boot_id,
        identity,
        stalls,
    } = *shared;
    sock.set_nonblocking(false)?;
    // The TLS handshake is still set-up: it has the header's time to finish.
    sock.set_read_timeout(Some(cfg.header_timeout.min(cfg.idle_timeout)))?;
    // A peer that stops reading must not hold the thread forever on the ack or the report.
    sock.set_write_timeout(Some(cfg.idle_timeout.max(cfg.header_timeout)))?;
    let mut writer = sock.try_clone()?;
    let verify_on = verify_place(&header, rx_mode);
    let mut receiver = receive::Receiver::new(rx_mode, cfg.rx_buffer, verify_on.unwrap_or(VerifyOn::Receiver))?;
    let ack = Ack {
        tls_fingerprint: header.tls.then(|| identity.fingerprint()),
        ..answer(cfg, boot_id, true, rx_mode, None)
    };
    wire::write_line(&mut writer, &ack)?;
    // The handshake is set-up: a peer that sends garbage fails it at once, one that stalls at the header timeout;
    // either way this connection ends and the sink serves on.
    let mut opener = match header.tls {
        true => Some(crate::experiment::tls::Opener::new(
            crate::experiment::tls::accept(&sock, identity.server_config()).context("rejected")?,
        )),
        false => None,
    };
    sock.set_read_timeout(Some(cfg.idle_timeout))?;
    let whole = stall::begin(&header, stalls, cfg.idle_timeout);
    let before = Counters::thread();
    let sched = crate::experiment::probe::Sched::thread();
    let check = match (header.verify, header.seed) {
        (true, Some(seed)) => Some(receive::Check::new(seed, header.plan, header.passes)),
        _ => None,
    };
    let passes = match header.pass_notices {
        true => Some(receive::PassTracker::new(
            header.plan.total_bytes(),
            header.passes,
            writer.try_clone()?,
        )),
        false => None,
    };
    let series = header
        .interval_ms
        .filter(|&ms| ms > 0)
        .map(|ms| receive::Series::new(u64::from(ms) * 1_000_000));
    let mut outcome = receiver.run(&sock, check, passes, series, whole, opener.as_mut());
    if let Some(o) = &opener {
        outcome.calls = o.recv_calls();
    }
    let mut used = Counters::thread().since(&before);
    let noise = crate::experiment::probe::Noise::between(&sched, &crate::experiment::probe::Sched::thread());
    // A checking thread's work is the stream's too.
    if let Some(c) = &outcome.checker {
        used.add(c);
    }
    let tcp = crate::experiment::tcp::tcp_info(&sock).ok();
    let report = report_of(&header, &outcome, &used, noise, verify_on, tcp);
    // The sender may be gone (a killed run): the report then has nobody to go to, which is not the sink's failure.
    let _ = wire::write_line(&mut writer, &report);
    if let Some(e) = outcome.error {
        anyhow::bail!(
            "stream {} of run {} ended early after {} bytes: {e}",
            header.plan.index,
            // The sender's words: one line in the log, whatever they hold.
            header.run_id.escape_debug(),
            report.bytes
        );
    }
    Ok(())
}
