//! The connections of a repetition: one connection per stream, each opened with its header and the sink's ack before
//! anything is timed, and the raw receiver's close afterwards.

use super::context::{Context, Failure, fail};
use super::wait::Wait;
use crate::base::model::{CaseKey, Status, Transport};
use crate::experiment::config::Plan;
use crate::experiment::strategy::SEND_WAKEUP;
use crate::experiment::wire::{self, StreamHeader, StreamPlan, read_ack};
use crate::results::record::Row;
use anyhow::Context as _;
use std::io::{BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the sink has to answer a header.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// The connections of a repetition, their TLS sessions (for a TLS strategy), and whether the sink shares this
/// kernel's clock.
pub struct Opened {
    pub socks: Vec<TcpStream>,
    pub tls: Sessions,
    pub same_clock: bool,
}

/// A TLS strategy's sessions: this process's own (handshakes done here), or a JVM's to make.
#[derive(Default)]
pub struct Sessions {
    pub native: Vec<Option<rustls::ClientConnection>>,
    /// A JVM's TLS connections: the certificate fingerprint each sink's ack announced, for the JVM's own TLS
    /// engine to shake hands pinned to it (this process holds no session of those).
    pub pins: Vec<String>,
}

/// Connects every stream and, unless raw, sends its header and reads the ack.
pub fn open_streams(
    ctx: &Context,
    case: &CaseKey,
    row: &mut Row,
    plans: &[StreamPlan],
    pass_notices: bool,
) -> Result<Opened, Failure> {
    let how = How {
        case,
        pass_notices,
        owner: Owner::Here,
        stall: stall_group(ctx, row),
    };
    let next = || connect(&ctx.target.addrs, &ctx.target.label).map_err(fail(Status::ConnectFailed));
    greet_each(ctx, &how, row, plans, next)
}

/// Whose sockets a repetition sends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// This process's own.
    Here,
    /// A JVM's, reached through copies of its descriptors: its blocking calls are left without a send timeout,
    /// as a Java program has them.
    Jvm,
}

/// Sets up connections opened elsewhere (a JVM's, one per plan), as `open_streams` does its own.
pub fn greet_all(
    ctx: &Context,
    case: &CaseKey,
    row: &mut Row,
    plans: &[StreamPlan],
    pass_notices: bool,
    socks: Vec<TcpStream>,
) -> Result<Opened, Failure> {
    let how = How {
        case,
        pass_notices,
        owner: Owner::Jvm,
        stall: stall_group(ctx, row),
    };
    let mut socks = socks.into_iter();
    let next = || {
        socks
            .next()
            .ok_or_else(|| fail(Status::SetupFailed)(anyhow::anyhow!("fewer connections than streams")))
    };
    greet_each(ctx, &how, row, plans, next)
}

/// Each plan's connection, from `next`, set up in turn.
fn greet_each(
    ctx: &Context,
    how: &How,
    row: &mut Row,
    plans: &[StreamPlan],
    mut next: impl FnMut() -> Result<TcpStream, Failure>,
) -> Result<Opened, Failure> {
    let mut opened = Opened {
        socks: Vec::with_capacity(plans.len()),
        tls: Sessions::default(),
        same_clock: ctx.target.transport != Transport::Raw,
    };
    for stream_plan in plans {
        let sock = next()?;
        greet(ctx, how, row, stream_plan, sock, &mut opened)?;
    }
    Ok(opened)
}

/// What every connection of a repetition is set up for.
struct How<'a> {
    case: &'a CaseKey,
    /// The sink answers each pass's last byte (cold passes).
    pass_notices: bool,
    owner: Owner,
    /// With stalled consumers: the repetition's group, and how many consumers stall.
    stall: Option<(String, u32)>,
}

impl How<'_> {
    /// A stream's part in its repetition's stall group: the first consumers stall, the others count.
    fn stall(&self, plan: &StreamPlan) -> Option<wire::Stall> {
        let (group, stalled) = self.stall.as_ref()?;
        Some(wire::Stall {
            group: group.clone(),
            waits: plan.index < *stalled,
            others: plan.streams.saturating_sub(*stalled),
        })
    }
}

/// The stall group of a repetition with stalled consumers: a name no other repetition has.
fn stall_group(ctx: &Context, row: &Row) -> Option<(String, u32)> {
    let stalled = row.stalled_consumers.filter(|&n| n > 0)?;
    let group = format!("{}/{}/{}", ctx.run_id, row.case_id, crate::base::env::monotonic_ns());
    Some((group, stalled))
}

/// One connection's options, congestion control, and (unless raw) its header, the sink's ack and a TLS strategy's
/// handshake; the connection joins `opened`.
fn greet(
    ctx: &Context,
    how: &How,
    row: &mut Row,
    stream_plan: &StreamPlan,
    sock: TcpStream,
    opened: &mut Opened,
) -> Result<(), Failure> {
    let (case, pass_notices) = (how.case, how.pass_notices);
    let plan = ctx.plan;
    let target = ctx.target;
    configure(&sock, plan, case, row, how.owner).map_err(fail(Status::SetupFailed))?;
    if target.transport != Transport::Raw {
        let header = StreamHeader {
            run_id: ctx.run_id.to_string(),
            case_id: row.case_id.clone(),
            plan: *stream_plan,
            seed: ctx.fixture.seed,
            verify: plan.settings.verify,
            token: plan.token.clone(),
            // A spawned sink receives as each case asks; a remote one as its own --rx-mode says.
            rx_mode: case.receiver.map(|(mode, _)| mode),
            verify_on: plan.verify_on(),
            passes: row.passes,
            pass_notices,
            tls: case.strategy.method.tls(),
            interval_ms: plan.interval_ms(),
            stall: how.stall(stream_plan),
        };
        wire::write_header(&mut &sock, &header).map_err(|e| fail(Status::ConnectFailed)(e.into()))?;
        if super::wait::readable(&sock, ACK_TIMEOUT, ctx.stop) == Wait::Stopped {
            return Err(Failure {
                status: Status::Interrupted,
                error: anyhow::anyhow!("stopped by a signal"),
            });
        }
        let ack = read_ack(&mut BufReader::new(&sock))
            .map_err(|e| fail(Status::Refused)(e.context(format!("sink at {}", target.label))))?;
        let local_boot = crate::base::env::boot_id();
        opened.same_clock &= ack.boot_id == local_boot && !local_boot.is_empty();
        take_ack(&ack, &header, case, row, &target.label)?;
        if header.tls {
            match how.owner {
                Owner::Here => opened.tls.native.push(Some(handshake(&sock, &ack, &target.label)?)),
                Owner::Jvm => opened.tls.pins.push(pin(&ack, &target.label)?.to_string()),
            }
        }
    }
    opened.socks.push(sock);
    Ok(())
}

/// What the ack tells the row (a remote sink's receiver), and whether it answers what the header asked.
fn take_ack(ack: &wire::Ack, header: &StreamHeader, case: &CaseKey, row: &mut Row, label: &str) -> Result<(), Failure> {
    if header.stall.is_some() && !ack.stalls {
        return Err(fail(Status::SetupFailed)(anyhow::anyhow!(
            "the sink at {label} does not stall consumers (--stalled-consumers needs a sink of this release)"
        )));
    }
    match case.receiver {
        // The receiving side is set up over there: the row records what that sink said it uses.
        None => {
            row.rx_mode = Some(ack.rx_mode);
            row.rx_buffer_bytes = Some(ack.rx_buffer_bytes);
            row.rcvbuf_bytes = ack.rcvbuf_bytes;
            row.sink_cpus = ack.cpus.clone().unwrap_or_default();
            Ok(())
        }
        Some((mode, _)) if mode != ack.rx_mode => Err(fail(Status::SetupFailed)(anyhow::anyhow!(
            "the sink receives in mode {}",
            ack.rx_mode
        ))),
        Some(_) => Ok(()),
    }
}

/// The sender's TLS handshake, pinned to the certificate the sink's ack announced (outside the timed section).
fn handshake(sock: &TcpStream, ack: &wire::Ack, label: &str) -> Result<rustls::ClientConnection, Failure> {
    let fingerprint = pin(ack, label)?;
    let config = crate::experiment::tls::client_config(fingerprint).map_err(fail(Status::TlsFailed))?;
    sock.set_read_timeout(Some(ACK_TIMEOUT))
        .map_err(|e| fail(Status::SetupFailed)(e.into()))?;
    crate::experiment::tls::connect(sock, config)
        .map_err(|e| fail(Status::TlsFailed)(e.context(format!("sink at {label}"))))
}

/// The certificate fingerprint the sink's ack announced, which a TLS sender pins.
fn pin<'a>(ack: &'a wire::Ack, label: &str) -> Result<&'a str, Failure> {
    ack.tls_fingerprint.as_deref().ok_or_else(|| {
        fail(Status::TlsFailed)(anyhow::anyhow!(
            "the sink at {label} offered no TLS certificate (a sink of another xferbench release?)"
        ))
    })
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

/// The sender's socket options, and its congestion control set and read back into the row (every stream's must be
/// the case's, or the repetition would measure something else than it says).
fn configure(sock: &TcpStream, plan: &Plan, case: &CaseKey, row: &mut Row, owner: Owner) -> anyhow::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    let s = &plan.settings;
    sock.set_nodelay(s.nodelay)?;
    if let Some(bytes) = s.sndbuf {
        setsockopt(sock, sockopt::SndBuf, &(bytes as usize))?;
    }
    let used = match case.cc {
        Some(cc) => {
            crate::experiment::tcp::set_cc(sock, cc).with_context(|| format!("cannot set congestion control {cc}"))?
        }
        None => crate::experiment::tcp::read_cc(sock)?,
    };
    if case.cc.is_some_and(|cc| cc != used) {
        anyhow::bail!("congestion control {} asked, {used} in use", case.cc.unwrap_or(used));
    }
    row.congestion_control = Some(used);
    // A blocked send wakes up this often to check the deadline and the stop flag (a JVM's are stopped by
    // killing it).
    if owner == Owner::Here {
        sock.set_write_timeout(Some(SEND_WAKEUP))?;
    }
    Ok(())
}

/// Waits for a raw receiver to close its side after ours was shut down; returns when it did.
pub fn wait_for_close(sock: &TcpStream, limit: Duration) -> Option<Instant> {
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
