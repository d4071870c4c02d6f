//! Who sends a repetition: this process's own threads (one per connection: `Streams`), a broker's network threads
//! over its consumers (`broker::Broker`), or a case's JVM (`jvm::sender::Streams`), behind the same calls, so that
//! `repetition` measures each alike.

use super::context::{Context, Failure, fail};
use super::jvm::Running;
use crate::base::model::{CaseKey, Status};
use crate::experiment::strategy::streams::{Limits, Span, Streams};
use crate::experiment::strategy::{CallStats, SendOptions};
use crate::experiment::wire::StreamPlan;
use crate::jvm::sender::{self, Totals};
use crate::results::record::Row;
use std::net::TcpStream;

/// A repetition's streams: this process's own threads (one per connection, or a broker's network threads over
/// its consumers), or a JVM's.
pub enum Senders<'a> {
    Native(Streams<'a>),
    Broker(crate::broker::Broker<'a>),
    Jvm(sender::Streams<'a>),
}

impl Senders<'_> {
    pub fn run(&mut self, passes: u32, notices: bool, last: bool, limits: Limits) -> anyhow::Result<Span> {
        match self {
            Senders::Native(s) => s.run(passes, notices, last, limits),
            Senders::Broker(b) => b.run(passes, notices, last, limits),
            Senders::Jvm(s) => s.run(passes, notices, last, limits),
        }
    }

    pub fn release_pages(&mut self) {
        if let Senders::Native(s) = self {
            s.release_pages();
        }
    }

    pub fn stats(&self) -> CallStats {
        match self {
            Senders::Native(s) => s.stats(),
            Senders::Broker(b) => b.stats(),
            Senders::Jvm(s) => s.stats(),
        }
    }

    /// After the reports: a JVM closes its connections and files (this process's own close as they drop).
    pub fn close(self, stop: &std::sync::atomic::AtomicBool) {
        if let Senders::Jvm(s) = self {
            s.close(stop);
        }
    }

    /// The JVM's own totals (None for a native sender).
    pub fn totals(&self) -> Option<Totals> {
        match self {
            Senders::Native(_) | Senders::Broker(_) => None,
            Senders::Jvm(s) => Some(s.totals),
        }
    }
}

/// A repetition's senders, set up: the case's JVM's streams (a TLS method's handshakes made by the JVM, pinned as
/// `tls` says), a broker's network threads, or this process's own threads (a TLS method's on `tls`'s sessions).
pub fn senders<'a>(
    ctx: &Context,
    case: &CaseKey,
    row: &mut Row,
    jvm: Option<&'a mut Running>,
    plans: &'a [StreamPlan],
    socks: &'a [TcpStream],
    tls: super::connect::Sessions,
) -> Result<Senders<'a>, Failure> {
    if let Some(running) = jvm {
        return super::jvm::prepare(ctx, case, row, running, plans, socks, &tls.pins).map(Senders::Jvm);
    }
    let sessions = tls.native;
    if let Some(c) = case.consumers {
        let shape = crate::broker::Shape {
            network_threads: case.threads,
            fetch_bytes: c.fetch_bytes,
            read_bytes: crate::experiment::config::BROKER_READ_BYTES,
        };
        let method = case.strategy.method;
        return crate::broker::Broker::prepare(method, &ctx.fixture.path, ctx.fixture.size, socks, shape, sessions)
            .map(Senders::Broker)
            .map_err(fail(Status::SetupFailed));
    }
    let opts = SendOptions {
        chunk_bytes: case.chunk_bytes,
        queue_depth: ctx.plan.settings.queue_depth,
    };
    Streams::prepare(case.strategy.method, &ctx.fixture.path, plans, socks, &opts, sessions)
        .map(Senders::Native)
        .map_err(fail(Status::SetupFailed))
}
