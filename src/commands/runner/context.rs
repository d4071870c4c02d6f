//! What every repetition of a run shares (`Context`: the plan, the file, the machine, where the streams go; `Clock`:
//! the sink's byte times on this side's clock) and how one fails (`Failure`: the row's status and the error in
//! words). Apart from `repetition`, `connect` and `consumers`, which use them, so that none imports another back.

use crate::base::env::Environment;
use crate::base::error::UsageError;
use crate::base::model::{Status, Transport};
use crate::experiment::config::Plan;
use crate::experiment::fixture::Fixture;
use anyhow::Context as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Where the streams go.
#[derive(Debug, Clone)]
pub struct Target {
    pub addrs: Vec<SocketAddr>,
    /// As the user named it (for messages and the CSV).
    pub label: String,
    pub transport: Transport,
}

impl Target {
    /// The remote sink of `--connect`, resolved (names, IPv4, [IPv6]); a bad port is the user's to fix.
    pub fn remote(plan: &Plan, hostport: &str) -> anyhow::Result<Target> {
        let Some((host, port)) = hostport.rsplit_once(':') else {
            return Err(UsageError::new("--connect", hostport, "expected HOST:PORT").into());
        };
        if port.parse::<u16>().map(|p| p == 0).unwrap_or(true) {
            return Err(UsageError::new("--connect", hostport, "the port must be a number from 1 to 65535").into());
        }
        if host.is_empty() {
            return Err(UsageError::new("--connect", hostport, "no host before the port").into());
        }
        let addrs: Vec<SocketAddr> = hostport
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve '{hostport}'"))?
            .collect();
        anyhow::ensure!(!addrs.is_empty(), "'{hostport}' resolves to no address");
        Ok(Target {
            addrs,
            label: hostport.to_string(),
            transport: plan.transport(),
        })
    }

    /// A sink this run spawned (on loopback, or at the end of a --link path).
    pub fn spawned(addr: SocketAddr, transport: Transport) -> Target {
        Target {
            addrs: vec![addr],
            label: addr.to_string(),
            transport,
        }
    }
}

/// What every repetition of a run shares.
pub struct Context<'a> {
    pub plan: &'a Plan,
    pub fixture: &'a Fixture,
    pub env: &'a Environment,
    /// The environment says this runs under an emulator: every row is flagged.
    pub emulated: bool,
    /// The MTU of the interface the streams use (the run's own namespace's loopback with --netns-mtu, the sender's
    /// veth on a --link path).
    pub mtu: Option<u32>,
    pub run_id: &'a str,
    pub target: &'a Target,
    pub stop: &'a AtomicBool,
}

/// Why a repetition failed: the row's status, and the error in words.
pub struct Failure {
    pub status: Status,
    pub error: anyhow::Error,
}

pub fn fail(status: Status) -> impl FnOnce(anyhow::Error) -> Failure {
    move |error| Failure { status, error }
}

pub fn interrupted() -> Failure {
    Failure {
        status: Status::Interrupted,
        error: anyhow::anyhow!("stopped by a signal"),
    }
}

/// Places the sink's byte times on this side's CLOCK_MONOTONIC: as they are when both read the same clock, else at
/// the arrival of what carried them less the sink's own delay in sending it.
pub struct Clock {
    now: Instant,
    now_ns: i128,
    same: bool,
}

impl Clock {
    pub fn new(same: bool) -> Clock {
        Clock {
            now: Instant::now(),
            now_ns: crate::base::env::monotonic_ns() as i128,
            same,
        }
    }

    /// `at` on CLOCK_MONOTONIC, in nanoseconds.
    pub fn of(&self, at: Instant) -> i128 {
        self.now_ns - self.now.saturating_duration_since(at).as_nanos() as i128
    }

    /// A sink time `at_ns`, told in a message sent at `sent_ns` (sink clock) that arrived at `arrived`.
    pub fn sink(&self, at_ns: u64, sent_ns: u64, arrived: Instant) -> i128 {
        match self.same {
            true => at_ns as i128,
            false => self.of(arrived) - sent_ns.saturating_sub(at_ns) as i128,
        }
    }
}
