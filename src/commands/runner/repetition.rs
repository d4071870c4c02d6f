//! One repetition of one case: cache state, connections, the timed transfer of every pass, the sink's reports,
//! one row. Whatever goes wrong ends up in the row's `status` and `error`; a repetition never takes the run down.
//!
//! Warm passes go back to back in one timed span. Cold passes each start cold: the file is evicted between them,
//! outside the timed section, which is then the sum of each pass's own first call to last byte.

use super::connect;
use super::context::{Context, Failure, fail, interrupted};
use super::jvm::Running;
use super::wait::Wait;
use crate::base::model::{Cache, CaseKey, Flag, Layout, Status, Transport};
use crate::experiment::cache;
use crate::experiment::probe::{Delta, Snapshot};
use crate::experiment::strategy::CallStats;
use crate::experiment::strategy::streams::{Limits, Span};
use crate::experiment::wire::{self, StreamPlan, StreamReport};
use crate::results::record::Row;
use std::io::BufReader;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// How long to wait for reports after a failed send, or for a raw receiver to close.
const LINGER: Duration = Duration::from_secs(3);

/// Runs one repetition of `case`, sending the file `passes` times (from the case's JVM for a JVM strategy), and
/// describes it in a row.
pub fn run(ctx: &Context, case: &CaseKey, number: u32, round: u32, passes: u32, jvm: Option<&mut Running>) -> Row {
    let mut row = base_row(ctx, case, number, round, passes);
    if let Err(Failure { status, error }) = measure(ctx, case, &mut row, jvm) {
        row.status = status;
        row.error = format!("{error:#}");
    }
    row
}

/// The row of a repetition that could not begin (a JVM that would not start).
pub fn failed(ctx: &Context, case: &CaseKey, number: u32, round: u32, passes: u32, why: Failure) -> Row {
    let mut row = base_row(ctx, case, number, round, passes);
    row.status = why.status;
    row.error = format!("{:#}", why.error);
    row
}

/// Puts the file in the case's cache state and records the residency (the highest, over several passes).
fn set_cache(ctx: &Context, case: &CaseKey, row: &mut Row) -> Result<(), Failure> {
    let path = &ctx.fixture.path;
    match case.cache {
        Cache::Warm => cache::warm(path),
        Cache::Cold => cache::evict(path, ctx.plan.settings.drop_caches),
    }
    .map_err(fail(Status::CacheFailed))?;
    let ratio = cache::residency(path).map_err(fail(Status::CacheFailed))?;
    row.resident_before_ratio = row.resident_before_ratio.max(ratio);
    if cache::contradicts(case.cache == Cache::Warm, ratio) {
        row.add_flag(Flag::ResidencyMismatch);
    }
    Ok(())
}

/// The file ranges of each connection (a broker's consumers each carry the whole file).
fn stream_plans(ctx: &Context, case: &CaseKey) -> Vec<StreamPlan> {
    let n = case.connections();
    (0..n)
        .map(|index| StreamPlan {
            file_bytes: ctx.fixture.size,
            chunk_bytes: case.chunk_bytes,
            layout: if case.strategy.is_parallel() {
                case.layout
            } else {
                Layout::Single
            },
            streams: n,
            index,
        })
        .collect()
}

fn measure(ctx: &Context, case: &CaseKey, row: &mut Row, mut jvm: Option<&mut Running>) -> Result<(), Failure> {
    let plan = ctx.plan;
    let passes = row.passes;
    // A file that changed size since the run began would be sent as something else than what the plan says.
    crate::experiment::fixture::check_unchanged(ctx.fixture).map_err(fail(Status::FileChanged))?;
    set_cache(ctx, case, row)?;
    let plans = stream_plans(ctx, case);
    // Cold passes wait for the sink's word that each pass is whole, so that the file can be evicted between.
    let cold_passes = case.cache == Cache::Cold && passes > 1;
    let opened = match jvm.as_deref_mut() {
        Some(running) => super::jvm::open(ctx, case, row, running, &plans, cold_passes)?,
        None => connect::open_streams(ctx, case, row, &plans, cold_passes)?,
    };
    let socks = &opened.socks;
    let mut senders = super::senders::senders(ctx, case, row, jvm, &plans, socks, opened.tls)?;
    let deadline = Instant::now() + plan.settings.timeout;
    let limits = Limits {
        deadline,
        stop: ctx.stop,
        cpus: plan.settings.sender_cpus.as_ref().map(|c| c.cpus.as_slice()),
        progress: !plan.quiet,
    };
    let mut spans: Vec<Span> = Vec::new();
    let span_count = if cold_passes { passes } else { 1 };
    for span_index in 0..span_count {
        if span_index > 0 {
            senders.release_pages();
            set_cache(ctx, case, row)?;
        }
        let last = span_index + 1 == span_count;
        let span = senders
            .run(if cold_passes { 1 } else { passes }, cold_passes, last, limits)
            .map_err(fail(Status::SetupFailed))?;
        let failed = !span.errors.is_empty();
        spans.push(span);
        if failed {
            break;
        }
    }
    let send_failed = spans.iter().find_map(|s| s.errors.first().cloned());
    for s in socks {
        let _ = s.shutdown(Shutdown::Write);
    }
    let wait = if send_failed.is_some() {
        LINGER
    } else {
        deadline.saturating_duration_since(Instant::now()).max(LINGER)
    };
    let replies = collect_replies(ctx, socks, wait, row)?;
    let end = Snapshot::take().map_err(fail(Status::ProbeFailed))?;
    // Once the sink has reported, every byte is acknowledged: the counters now hold the whole transfer, also the
    // retransmissions of a tail that still sat in the send buffer when the sender's last call returned.
    let finals: Vec<Option<crate::experiment::tcp::TcpInfo>> =
        socks.iter().map(|s| crate::experiment::tcp::tcp_info(s).ok()).collect();

    let stats = senders.stats();
    if let Some(totals) = senders.totals() {
        super::jvm::fill(row, totals);
    }
    senders.close(ctx.stop);
    fill_sender(row, case, &stats, &spans);
    fill_system(row, &spans, &end, cold_passes);
    fill_times(row, ctx, &spans, &replies, opened.same_clock, cold_passes);
    fill_sink(row, ctx, &replies, socks.len());
    fill_tcp(row, &spans, &finals, &replies);
    fill_series(row, &plans, &replies);
    if case.consumers.is_some() {
        super::consumers::fill(row, case, &spans, &replies.reports, opened.same_clock);
    }
    judge(row, ctx, send_failed, &replies)
}

/// The connections' own view: the sender's sockets' TCP_INFO once the sink has reported (`finals`: its counters
/// cover every pass and every retransmission; where one could not be read then, as the last span left it), and the
/// sink's from its reports. Shares are of the timed section: busy time on average over connections, the stalls of
/// the worst connection.
fn fill_tcp(row: &mut Row, spans: &[Span], finals: &[Option<crate::experiment::tcp::TcpInfo>], replies: &Replies) {
    use crate::results::stats::median;
    let Some(last) = spans.last() else { return };
    let infos: Vec<&crate::experiment::tcp::TcpInfo> = (0..last.tcp.len().max(finals.len()))
        .filter_map(|i| {
            finals
                .get(i)
                .and_then(Option::as_ref)
                .or(last.tcp.get(i).and_then(Option::as_ref))
        })
        .collect();
    let med = |f: &dyn Fn(&crate::experiment::tcp::TcpInfo) -> Option<u32>| {
        median(&infos.iter().filter_map(|i| f(i)).map(f64::from).collect::<Vec<_>>())
    };
    // A sum of a field every connection has (None if one lacks it: an older kernel lacks it in all).
    let sum = |f: &dyn Fn(&crate::experiment::tcp::TcpInfo) -> Option<u64>| {
        (!infos.is_empty())
            .then(|| infos.iter().map(|i| f(i)).sum::<Option<u64>>())
            .flatten()
    };
    row.tcp_total_retrans = sum(&|i| i.total_retrans.map(u64::from));
    row.tcp_rtt_us = med(&|i| i.rtt_us);
    row.tcp_rttvar_us = med(&|i| i.rttvar_us);
    row.tcp_min_rtt_us = med(&|i| i.min_rtt_us);
    row.tcp_snd_mss_bytes = infos.iter().filter_map(|i| i.snd_mss).max();
    row.tcp_cwnd_segs = med(&|i| i.snd_cwnd);
    row.tcp_pacing_rate_mb_s = sum(&|i| i.pacing_rate).map(|b| b as f64 / 1e6);
    row.tcp_delivery_rate_mb_s = sum(&|i| i.delivery_rate).map(|b| b as f64 / 1e6);
    row.tcp_bytes_acked = sum(&|i| i.bytes_acked);
    let timed_us = row.wall_s * 1e6;
    if timed_us > 0.0 && !infos.is_empty() {
        let shares = |f: &dyn Fn(&crate::experiment::tcp::TcpInfo) -> Option<u64>| {
            infos
                .iter()
                .map(|i| f(i).map(|us| us as f64 / timed_us))
                .collect::<Option<Vec<f64>>>()
        };
        row.tcp_busy_ratio = shares(&|i| i.busy_us).map(|v| v.iter().sum::<f64>() / v.len() as f64);
        let worst = |v: Vec<f64>| v.into_iter().fold(0.0, f64::max);
        row.tcp_rwnd_limited_ratio = shares(&|i| i.rwnd_limited_us).map(worst);
        row.tcp_sndbuf_limited_ratio = shares(&|i| i.sndbuf_limited_us).map(worst);
    }
    let sink: Vec<crate::experiment::tcp::TcpInfo> = replies.reports.iter().filter_map(|(r, _)| r.tcp).collect();
    row.sink_tcp_rcv_rtt_us = median(
        &sink
            .iter()
            .filter_map(|i| i.rcv_rtt_us)
            .map(f64::from)
            .collect::<Vec<_>>(),
    );
    row.sink_tcp_rcv_space_bytes = median(
        &sink
            .iter()
            .filter_map(|i| i.rcv_space)
            .map(f64::from)
            .collect::<Vec<_>>(),
    );
}

/// Each stream's bytes per interval, as the sink counted them, for series.csv; the pass of an interval is the one
/// its first byte belonged to.
fn fill_series(row: &mut Row, plans: &[StreamPlan], replies: &Replies) {
    for (report, _) in &replies.reports {
        let (Some(interval_ns), Some(plan)) = (report.series_interval_ns, plans.get(report.stream as usize)) else {
            continue;
        };
        let per_pass = plan.total_bytes().max(1);
        let mut before = 0u64;
        for (i, &bytes) in report.series.iter().enumerate() {
            row.series.push(crate::results::record::SeriesRow {
                run_id: row.run_id.clone(),
                case_id: row.case_id.clone(),
                round: row.round,
                repetition: row.repetition,
                stream: report.stream,
                pass: (before / per_pass + 1).min(u64::from(row.passes)) as u32,
                t_s: i as f64 * interval_ns as f64 / 1e9,
                interval_s: interval_ns as f64 / 1e9,
                bytes,
            });
            before = before.saturating_add(bytes);
        }
    }
}

/// What came back after the sender shut its side: each stream's report (and when it arrived), or, raw, when the
/// receiver closed.
#[derive(Default)]
struct Replies {
    reports: Vec<(StreamReport, Instant)>,
    missing: Option<String>,
    raw_closed: Option<Instant>,
}

fn collect_replies(ctx: &Context, socks: &[TcpStream], wait: Duration, row: &mut Row) -> Result<Replies, Failure> {
    let mut replies = Replies::default();
    for (i, s) in socks.iter().enumerate() {
        if ctx.plan.settings.raw {
            match connect::wait_for_close(s, LINGER) {
                Some(at) => replies.raw_closed = Some(replies.raw_closed.map_or(at, |t: Instant| t.max(at))),
                None => row.add_flag(Flag::RawReceiverDidNotClose),
            }
            continue;
        }
        match super::wait::readable(s, wait, ctx.stop) {
            Wait::Stopped => return Err(interrupted()),
            Wait::TimedOut => {
                let why = format!("no report for stream {i} within {:.0} s", wait.as_secs_f64());
                replies.missing = replies.missing.or(Some(why));
                continue;
            }
            Wait::Ready => {}
        }
        match wire::read_line::<StreamReport>(&mut BufReader::new(s)) {
            Ok(r) => match r.check() {
                Ok(()) => replies.reports.push((r, Instant::now())),
                Err(why) => {
                    replies.missing = replies
                        .missing
                        .or(Some(format!("stream {i}'s report makes no sense: {why}")))
                }
            },
            Err(e) => replies.missing = replies.missing.or(Some(format!("no report for stream {i}: {e}"))),
        }
    }
    Ok(replies)
}

/// The sender's counts, CPU and faults over every span.
fn fill_sender(row: &mut Row, case: &CaseKey, stats: &CallStats, spans: &[Span]) {
    row.bytes_sent = stats.bytes;
    row.syscalls = stats.syscalls;
    row.user_copy_bytes = stats.user_copy_bytes;
    if let Some(f) = &stats.fallback {
        row.path = crate::base::model::Strategy {
            method: f.method,
            ..case.strategy
        };
        row.fallback_reason = f.reason.clone();
    }
    let us = |q: f64| stats.latency_ns.value_at_quantile(q) as f64 / 1000.0;
    (row.call_p50_us, row.call_p99_us, row.call_max_us) = (us(0.5), us(0.99), stats.latency_ns.max() as f64 / 1000.0);
    if stats.zerocopy_sends > 0 {
        row.zerocopy_copied_ratio = Some(stats.zerocopy_copied as f64 / stats.zerocopy_sends as f64);
    }
    row.tls_cipher = stats.tls_cipher.clone().unwrap_or_default();
    let mut sender = crate::experiment::probe::Counters::default();
    spans.iter().for_each(|s| sender.add(&s.sender));
    row.sender_user_s = sender.user_s;
    row.sender_sys_s = sender.sys_s;
    row.sender_voluntary_ctxsw = sender.voluntary_ctxsw;
    row.sender_involuntary_ctxsw = sender.involuntary_ctxsw;
    row.minor_faults = sender.minor_faults;
    row.major_faults = sender.major_faults;
    let mut noise = crate::experiment::probe::Noise::default();
    spans.iter().for_each(|s| noise.add(&s.noise));
    row.sender_runq_wait_s = noise.runq_wait_s;
    row.sender_migrations = noise.migrations;
    row.sender_cpus_seen = noise.cpus_text();
}

/// System-wide softirq, context switches and retransmissions: over each cold pass up to its notices, or over
/// the one warm span up to the last report (the receiving side's softirq work ends there).
fn fill_system(row: &mut Row, spans: &[Span], end: &Snapshot, cold_passes: bool) {
    let mut total = Delta::default();
    for (i, span) in spans.iter().enumerate() {
        let last = i + 1 == spans.len();
        let after = match (&span.after, cold_passes && !last) {
            (Some(after), true) => after,
            _ => end,
        };
        total.add(&after.since(&span.before));
    }
    row.softirq_s = total.softirq_s;
    row.steal_s = total.steal_s;
    row.system_ctxsw = total.system_ctxsw;
    row.tcp_retrans_segs = total.tcp_retrans_segs;
}

/// Wall, send and receive times. On one kernel both sides read the same CLOCK_MONOTONIC; across hosts the last
/// byte is placed at the reply's arrival less the sink's own delay in sending it.
fn fill_times(row: &mut Row, ctx: &Context, spans: &[Span], replies: &Replies, same_clock: bool, cold_passes: bool) {
    let clock = super::context::Clock::new(same_clock);
    let mono = |at: Instant| clock.of(at);
    let last_byte = |at: u64, sent_ns: u64, arrived: Instant| clock.sink(at, sent_ns, arrived);
    let mut wall_ns: i128 = 0;
    let mut send_ns: i128 = 0;
    for span in spans {
        let started = mono(span.started);
        send_ns += (mono(span.last_sent) - started).max(0);
        let end: Option<i128> = if cold_passes {
            span.notices
                .iter()
                .map(|n| n.map(|(n, at)| last_byte(n.last_byte_ns, n.notice_ns, at)))
                .collect::<Option<Vec<i128>>>()
                .and_then(|v| v.into_iter().max())
        } else if ctx.plan.settings.raw {
            replies.raw_closed.map(mono)
        } else if !replies.reports.is_empty() && replies.reports.len() == span.notices.len() {
            replies
                .reports
                .iter()
                .map(|(r, at)| r.last_byte_ns.map(|t| last_byte(t, r.report_ns, *at)))
                .collect::<Option<Vec<i128>>>()
                .and_then(|v| v.into_iter().max())
        } else {
            None
        };
        wall_ns += end.map_or(mono(span.last_sent), |e| e.max(mono(span.last_sent))) - started;
    }
    row.send_s = send_ns as f64 / 1e9;
    row.wall_s = (wall_ns.max(0) as f64 / 1e9).max(row.send_s);
    let bytes = row.bytes_moved() as f64;
    if row.wall_s > 0.0 {
        row.throughput_mb_s = bytes / 1e6 / row.wall_s;
        row.throughput_gbit_s = bytes * 8.0 / 1e9 / row.wall_s;
    }
    if row.wall_s < crate::results::summary::SHORT_RUN_S {
        row.add_flag(Flag::ShortRun);
    }
    // The sink's own span of bytes: per pass when passes were apart, else first to last byte.
    let recv_ns: Option<u64> = if cold_passes {
        spans
            .iter()
            .map(|s| {
                let ns: Vec<_> = s.notices.iter().flatten().map(|(n, _)| *n).collect();
                let first = ns.iter().map(|n| n.first_byte_ns).min()?;
                let last = ns.iter().map(|n| n.last_byte_ns).max()?;
                Some(last.saturating_sub(first))
            })
            .try_fold(0u64, |sum, ns| ns.map(|ns| sum.saturating_add(ns)))
    } else {
        let rs = || replies.reports.iter().map(|(r, _)| r);
        match (
            rs().filter_map(|r| r.first_byte_ns).min(),
            rs().filter_map(|r| r.last_byte_ns).max(),
        ) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        }
    };
    row.recv_s = (!ctx.plan.settings.raw)
        .then_some(recv_ns)
        .flatten()
        .map(|ns| ns as f64 / 1e9);
}

/// What the sink said of every stream.
fn fill_sink(row: &mut Row, ctx: &Context, replies: &Replies, streams: usize) {
    if ctx.plan.settings.raw || replies.reports.is_empty() {
        return;
    }
    let rs = || replies.reports.iter().map(|(r, _)| r);
    // Saturating: the counts are the sink's word, and a sum past u64 is nonsense to record, not a crash.
    let sum = |f: fn(&StreamReport) -> u64| rs().map(f).fold(0u64, u64::saturating_add);
    row.bytes_received = Some(sum(|r| r.bytes));
    row.sink_user_s = Some(rs().map(|r| r.user_s).sum());
    row.sink_sys_s = Some(rs().map(|r| r.sys_s).sum());
    row.sink_voluntary_ctxsw = Some(sum(|r| r.voluntary_ctxsw));
    row.sink_involuntary_ctxsw = Some(sum(|r| r.involuntary_ctxsw));
    row.verified = ctx.plan.settings.verify && replies.reports.len() == streams && rs().all(|r| r.verified);
    row.verify_on = rs().find_map(|r| r.verify_on);
    row.sink_checker_cpu_s = rs().filter_map(|r| r.checker_cpu_s).reduce(|a, b| a + b);
    // Saturating, as the other sums: a report's numbers are the sink's word, not checked arithmetic.
    let total = |f: fn(&StreamReport) -> Option<u64>| rs().map(f).try_fold(0u64, |a, x| Some(a.saturating_add(x?)));
    row.sink_runq_wait_s = total(|r| r.runq_wait_ns).map(|ns| ns as f64 / 1e9);
    row.sink_migrations = total(|r| r.migrations);
    if let Some(mapped) = total(|r| r.mapped_bytes)
        && let Some(bytes) = row.bytes_received.filter(|&b| b > 0)
    {
        row.rx_zerocopy_mapped_ratio = Some(mapped as f64 / bytes as f64);
    }
    row.rx_fallback_reason = rs().find_map(|r| r.rx_fallback.clone()).unwrap_or_default();
    let mut cpus: Vec<u32> = rs().flat_map(|r| r.cpus.iter().copied()).collect();
    cpus.sort_unstable();
    cpus.dedup();
    row.sink_cpus_seen = cpus.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
}

/// The verdict: ok, or the first thing that went wrong.
fn judge(
    row: &mut Row,
    ctx: &Context,
    send_failed: Option<(u32, crate::experiment::strategy::SendError)>,
    replies: &Replies,
) -> Result<(), Failure> {
    let planned = row.bytes_moved();
    if let Some((stream, e)) = send_failed {
        let received = row
            .bytes_received
            .map(|b| format!(", {b} bytes arrived"))
            .unwrap_or_default();
        return Err(Failure {
            status: e.status(),
            error: anyhow::anyhow!("stream {stream}: {e} after {} bytes sent{received}", row.bytes_sent),
        });
    }
    if let Some(why) = &replies.missing {
        return Err(fail(Status::NoReport)(anyhow::anyhow!("{why}")));
    }
    if let Some((r, _)) = replies.reports.iter().find(|(r, _)| r.error.is_some()) {
        return Err(fail(Status::SinkError)(anyhow::anyhow!(
            "sink, stream {}: {}",
            r.stream,
            r.error.clone().unwrap_or_default()
        )));
    }
    if row.bytes_sent != planned {
        return Err(fail(Status::ShortSend)(anyhow::anyhow!(
            "sent {} of {planned} bytes",
            row.bytes_sent
        )));
    }
    if let Some(got) = row.bytes_received
        && got != planned
    {
        return Err(fail(Status::ShortTransfer)(anyhow::anyhow!(
            "the sink received {got} of {planned} bytes"
        )));
    }
    if ctx.plan.settings.verify && !row.verified {
        let at = replies
            .reports
            .iter()
            .find_map(|(r, _)| Some((r.mismatch_offset?, r.mismatch_mapped)));
        let where_ = match at {
            Some((o, Some(true))) => format!(" (first wrong byte at file offset {o}, in a page the kernel mapped)"),
            Some((o, _)) => format!(" (first wrong byte at file offset {o})"),
            None => String::new(),
        };
        return Err(fail(Status::Corrupt)(anyhow::anyhow!(
            "the sink found content that differs from the fixture{where_}"
        )));
    }
    row.status = Status::Ok;
    Ok(())
}

fn base_row(ctx: &Context, case: &CaseKey, number: u32, round: u32, passes: u32) -> Row {
    let plan = &ctx.plan.settings;
    let env = ctx.env;
    let raw = ctx.target.transport == Transport::Raw;
    let mut row = Row {
        run_id: ctx.run_id.to_string(),
        case_id: case.id(),
        strategy: case.strategy,
        path: case.strategy,
        threads: case.threads,
        chunk_bytes: case.chunk_bytes,
        layout: case.layout,
        cache: case.cache,
        file_bytes: ctx.fixture.size,
        passes,
        verify: case.verify,
        repetition: number,
        round,
        // A remote sink says how it receives in its ack; raw mode knows nothing of the receiver.
        rx_buffer_bytes: case.receiver.map(|(_, b)| b),
        rx_mode: case.receiver.map(|(m, _)| m),
        transport: ctx.target.transport,
        sink_addr: ctx.target.label.clone(),
        sndbuf_bytes: plan.sndbuf,
        mtu_bytes: ctx.mtu,
        // A spawned sink's path is the run's own; a remote one's is the real network's.
        link: matches!(ctx.target.transport, Transport::Loopback | Transport::Veth).then_some(case.link),
        link_rate_bit_s: case.link.rate_bit_s(),
        rcvbuf_bytes: (!raw).then_some(plan.rcvbuf).flatten(),
        nodelay: plan.nodelay,
        sender_cpus: plan.sender_cpus.as_ref().map(|c| c.text.clone()).unwrap_or_default(),
        sink_cpus: plan.sink_cpus.as_ref().map(|c| c.text.clone()).unwrap_or_default(),
        queue_depth: case.queue_depth,
        consumers: case.consumers.map(|c| c.count),
        fetch_bytes: case.consumers.map(|c| c.fetch_bytes),
        stalled_consumers: case.consumers.and(plan.stalled_consumers),
        kernel: env.kernel.clone(),
        host: env.host.clone(),
        cpu_model: env.cpu_model.clone(),
        logical_cpus: env.logical_cpus,
        memory_bytes: env.memory_bytes,
        file_system: env.file_system.clone(),
        xferbench_version: env.xferbench_version.clone(),
        started_utc: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        status: Status::Incomplete,
        ..Row::default()
    };
    if ctx.emulated {
        row.add_flag(Flag::Emulated);
    }
    row
}
