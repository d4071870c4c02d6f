//! The receiving side: a process of its own, so that sender and receiver CPU are measured apart, and the same
//! code serves loopback (spawned by `run`) and a remote host (`xferbench sink --listen ADDR`).
//!
//! One thread per connection. A connection opens with a stream header (`wire`); the sink answers with an ack,
//! receives until the sender shuts its side down, checking content when asked, and answers with one line of JSON:
//! bytes, verification, first and last byte times, and the thread's own CPU and context switches. It keeps serving
//! run after run; a stranger's connection is dropped with one log line and costs no more than the limits below.

mod listen;
mod receive;
pub mod spawn;

use crate::cli::SinkArgs;
use crate::error::UsageError;
use crate::model::{RxMode, VerifyOn};
use crate::probe::Counters;
use crate::units::CpuList;
use crate::wire::{self, Ack, StreamHeader, StreamReport};
use anyhow::Context;
use std::io::{BufRead, Write};
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
    /// Skip the start-up announcement on stderr.
    pub quiet: bool,
}

/// Time a new connection has to send its whole header (or the idle timeout, when shorter).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

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
        quiet: args.quiet,
    })
}

/// Binds, prints `listening on ADDR` on stdout, and serves until the process is stopped.
pub fn serve(cfg: SinkConfig) -> anyhow::Result<()> {
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
        crate::strategy::streams::pin_current_thread(&cpus.cpus);
    }
    let local = listener.local_addr()?;
    let mut out = std::io::stdout();
    if !cfg.quiet {
        eprintln!(
            "xferbench sink: listening on {local}; rx {} x {} bytes; limits: header {} bytes, {} streams per run, {} open \
         connections, idle {}",
            cfg.rx_mode,
            cfg.rx_buffer,
            wire::MAX_HEADER_BYTES,
            wire::MAX_STREAMS,
            listen::MAX_OPEN,
            humantime::format_duration(cfg.idle_timeout)
        );
    }
    // Announced on stderr before the address goes to stdout, so whoever waits for the address sees the limits.
    writeln!(out, "listening on {local}")?;
    out.flush()?;
    let cfg = Arc::new(cfg);
    let boot_id: Arc<str> = crate::env::boot_id().into();
    // One certificate for the sink's life: every ack of a TLS stream announces its fingerprint.
    let identity = Arc::new(crate::tls::SinkIdentity::generate()?);
    let gate = listen::Gate::default();
    for conn in listener.incoming() {
        match conn {
            Ok(sock) => {
                let peer = sock.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
                // A flood of connections costs a closed socket each, not a thread and a buffer each.
                let Some(slot) = gate.enter() else {
                    eprintln!(
                        "xferbench sink: {peer}: rejected: {} connections already open",
                        listen::MAX_OPEN
                    );
                    continue;
                };
                let (cfg, boot_id, identity) = (Arc::clone(&cfg), Arc::clone(&boot_id), Arc::clone(&identity));
                let spawned = std::thread::Builder::new().name("sink-stream".into()).spawn(move || {
                    let _slot = slot;
                    if let Err(e) = handle(sock, &cfg, &boot_id, &identity) {
                        eprintln!("xferbench sink: {peer}: {e:#}");
                    }
                });
                if let Err(e) = spawned {
                    eprintln!("xferbench sink: cannot start a stream thread: {e}");
                }
            }
            Err(e) => eprintln!("xferbench sink: accept failed: {e}"),
        }
    }
    Ok(())
}

/// One connection: header, ack, (TLS handshake), stream, report.
fn handle(sock: TcpStream, cfg: &SinkConfig, boot_id: &str, identity: &crate::tls::SinkIdentity) -> anyhow::Result<()> {
    let header_timeout = HEADER_TIMEOUT.min(cfg.idle_timeout);
    sock.set_read_timeout(Some(header_timeout))?;
    // A peer that stops reading must not hold the thread forever on the ack or the report.
    sock.set_write_timeout(Some(cfg.idle_timeout.max(HEADER_TIMEOUT)))?;
    let mut writer = sock.try_clone()?;
    let answer = |ok: bool, rx_mode: RxMode, error: Option<String>| Ack {
        ok,
        version: wire::PROTOCOL_VERSION,
        boot_id: boot_id.to_string(),
        rx_mode,
        rx_buffer_bytes: cfg.rx_buffer as u64,
        rcvbuf_bytes: cfg.rcvbuf,
        cpus: cfg.cpus.as_ref().map(|c| c.text.clone()),
        tls_fingerprint: None,
        error,
    };
    let refuse = |writer: &mut TcpStream, why: String| -> anyhow::Result<()> {
        let _ = wire::write_line(writer, &answer(false, cfg.rx_mode, Some(why.clone())));
        anyhow::bail!("rejected: {why}")
    };
    let header: StreamHeader = match wire::read_header(&mut &sock) {
        Ok(h) => h,
        Err(wire::HeaderError::Io(e)) => {
            let why = match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    format!(
                        "no complete header within {}",
                        humantime::format_duration(header_timeout)
                    )
                }
                std::io::ErrorKind::UnexpectedEof => "closed before sending a complete header".into(),
                _ => format!("no complete header ({e})"),
            };
            anyhow::bail!("rejected: {why}")
        }
        Err(e) => return refuse(&mut writer, e.to_string()),
    };
    if let Some(token) = &cfg.token
        && !header.token.as_deref().is_some_and(|t| listen::same_secret(t, token))
    {
        return refuse(&mut writer, "wrong or missing token".into());
    }
    let rx_mode = header.rx_mode.unwrap_or(cfg.rx_mode);
    if header.verify && !rx_mode.can_verify() {
        return refuse(
            &mut writer,
            format!("rx mode {rx_mode} discards the bytes and cannot verify"),
        );
    }
    let verify_on = header.verify.then(|| {
        header.verify_on.unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            VerifyOn::choose(header.plan.streams, cpus)
        })
    });
    let mut receiver = receive::Receiver::new(rx_mode, cfg.rx_buffer, verify_on.unwrap_or(VerifyOn::Receiver))?;
    let ack = Ack {
        tls_fingerprint: header.tls.then(|| identity.fingerprint()),
        ..answer(true, rx_mode, None)
    };
    wire::write_line(&mut writer, &ack)?;
    // The handshake is set-up: a peer that sends garbage fails it at once, one that stalls at the header timeout;
    // either way this connection ends and the sink serves on.
    let mut opener = match header.tls {
        true => Some(crate::tls::Opener::new(
            crate::tls::accept(&sock, identity.server_config()).context("rejected")?,
        )),
        false => None,
    };
    sock.set_read_timeout(Some(cfg.idle_timeout))?;
    let before = Counters::thread();
    let sched = crate::probe::Sched::thread();
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
    let mut outcome = receiver.run(&sock, check, passes, opener.as_mut());
    if let Some(o) = &opener {
        outcome.calls = o.recv_calls();
    }
    let mut used = Counters::thread().since(&before);
    let noise = crate::probe::Noise::between(&sched, &crate::probe::Sched::thread());
    // A checking thread's work is the stream's too.
    if let Some(c) = &outcome.checker {
        used.add(c);
    }
    let report = StreamReport {
        stream: header.plan.index,
        bytes: outcome.bytes,
        verified: outcome.verified && outcome.bytes == header.total_bytes(),
        mismatch_offset: outcome.mismatch_offset,
        first_byte_ns: outcome.first_byte_ns,
        last_byte_ns: outcome.last_byte_ns,
        report_ns: crate::env::monotonic_ns(),
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
    };
    // The sender may be gone (a killed run): the report then has nobody to go to, which is not the sink's failure.
    let _ = wire::write_line(&mut writer, &report);
    if let Some(e) = outcome.error {
        anyhow::bail!(
            "stream {} of run {} ended early after {} bytes: {e}",
            header.plan.index,
            header.run_id,
            report.bytes
        );
    }
    Ok(())
}

/// Reads the ack of a header just sent: the sink's answer, or why there was none.
pub fn read_ack(reader: &mut impl BufRead) -> anyhow::Result<Ack> {
    let ack: Ack = wire::read_line(reader).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => anyhow::anyhow!(
            "the peer answered, but not as an xferbench sink ({e}); for a receiver that is not xferbench use --raw"
        ),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => anyhow::anyhow!(
            "no answer to the stream header in time (is an xferbench sink listening there? for any other \
             receiver use --raw)"
        ),
        _ => anyhow::Error::new(e).context("no answer to the stream header"),
    })?;
    let reason = ack.error.as_deref().unwrap_or("no reason given");
    if ack.version != wire::PROTOCOL_VERSION {
        anyhow::bail!(
            "the sink speaks protocol version {} and this sender version {}; run the same xferbench release on \
             both hosts{}",
            ack.version,
            wire::PROTOCOL_VERSION,
            if ack.ok {
                String::new()
            } else {
                format!(" (the sink said: {reason})")
            }
        );
    }
    if !ack.ok {
        anyhow::bail!("the sink refused the stream: {reason}");
    }
    Ok(ack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(ok: bool, version: u16, error: Option<&str>) -> Vec<u8> {
        let mut line = Vec::new();
        let ack = Ack {
            ok,
            version,
            boot_id: String::new(),
            rx_mode: RxMode::Copy,
            rx_buffer_bytes: 1,
            rcvbuf_bytes: None,
            cpus: None,
            tls_fingerprint: None,
            error: error.map(String::from),
        };
        wire::write_line(&mut line, &ack).unwrap();
        line
    }

    #[test]
    fn acks_name_why_a_stream_was_refused() {
        let v = wire::PROTOCOL_VERSION;
        assert!(read_ack(&mut ack(true, v, None).as_slice()).is_ok());
        let token = read_ack(&mut ack(false, v, Some("wrong or missing token")).as_slice()).unwrap_err();
        assert_eq!(
            format!("{token:#}"),
            "the sink refused the stream: wrong or missing token"
        );
        let newer = read_ack(&mut ack(false, v + 1, Some("the sender speaks ...")).as_slice()).unwrap_err();
        let text = format!("{newer:#}");
        assert!(text.contains(&format!("protocol version {}", v + 1)), "{text}");
        assert!(text.contains("the sender speaks"), "{text}");
        // An ack of the first protocol version is refused with both versions named.
        let old = br#"{"ok":true,"version":1,"boot_id":"","rx_mode":"copy","rx_buffer_bytes":1,"error":null}"#;
        let mut line = old.to_vec();
        line.push(b'\n');
        let e = format!("{:#}", read_ack(&mut line.as_slice()).unwrap_err());
        assert!(
            e.contains("protocol version 1") && e.contains(&format!("version {v}")),
            "{e}"
        );
    }
}
