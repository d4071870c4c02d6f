//! One row of `runs.csv`: the serde struct that the runner writes and that `plot`, `compare`, `article` and
//! `--resume` read back. The header is derived from the struct, so it cannot drift from the values; names (strategy,
//! layout, cache, status, flags, ...) are typed and read and written with the texts the files have always had.
//!
//! Units are in the column names: `_s` seconds, `_bytes` bytes, `_mb_s` 10^6 bytes per second, `_us`
//! microseconds, `_ratio` a fraction in 0..=1. A column that was not measured is left empty, never zero.
//!
//! Reading tolerates what a crash leaves: a last row cut short (no newline after it, or too few fields) is set
//! apart as torn, and every whole row before it is kept. A bad row anywhere else is an error naming its line.

use crate::base::model::{
    Cache, CaseKey, Cc, Flag, Flags, Layout, Link, RxMode, Status, Strategy, Transport, VerifyOn,
};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::Path;

fn one() -> u32 {
    1
}

/// One timed repetition of one case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The run this row belongs to (`<UTC time>-<host>-<pid>`).
    pub run_id: String,
    /// Stable key of the case (`CaseKey::id`).
    pub case_id: String,
    /// Strategy as asked for on the command line, e.g. `parallel-sendfile`.
    pub strategy: Strategy,
    /// The transfer path that really ran: the strategy itself, or the one it fell back to when the kernel lacked
    /// something (e.g. `tls-read-send` for `ktls-sendfile`; result sets from before this column was typed wrote
    /// `ktls-sendfile(fallback:tls-read-send: why)`, which reads as the same).
    #[serde(deserialize_with = "path_text")]
    pub path: Strategy,
    /// Why the path differs from the strategy, in the kernel's or the library's words (empty when it does not).
    #[serde(default)]
    pub fallback_reason: String,
    /// Sender threads: connections, each with its own thread and file descriptor (1 for serial strategies); for a
    /// broker strategy, its network threads (the connections are `consumers`).
    pub threads: u32,
    /// Bytes asked of each transfer call (the user buffer size for read-send; for a broker: the fetch size for
    /// its sendfile paths, whose calls ask for what is left of the fetch, Kafka's 32 KiB reads for its read paths).
    pub chunk_bytes: u64,
    /// `striped` (thread k sends chunks k, k+N, ...) or `contiguous` (one range per thread); `single` when serial.
    pub layout: Layout,
    /// Cache state asked for: `warm` or `cold`.
    pub cache: Cache,
    /// Fraction of the file's pages resident in the page cache just before the timed section (mincore); with
    /// several cold passes, the highest before any pass.
    pub resident_before_ratio: f64,
    /// Size of the file sent.
    pub file_bytes: u64,
    /// How many times the whole file went, back to back over the same connections, in this repetition
    /// (1 in result sets from before passes existed).
    #[serde(default = "one")]
    pub passes: u32,
    /// Bytes the sender's calls reported written, every pass.
    pub bytes_sent: u64,
    /// Bytes the sink counted, every pass (empty in raw mode, where no report comes back).
    pub bytes_received: Option<u64>,
    /// The sink was asked to check every byte (`--verify`). Missing in result sets from before it existed, where
    /// it is taken from `verify_on`.
    #[serde(default)]
    pub verify: bool,
    /// True only when the sink compared every byte with the fixture generator and all matched.
    pub verified: bool,
    /// Where the sink checked: `receiver` (in the receiving thread) or `thread` (a checking thread per stream);
    /// empty when nothing was checked.
    #[serde(default)]
    pub verify_on: Option<VerifyOn>,
    /// 1-based repetition number; warm-ups are not written unless they fail (then 0).
    pub repetition: u32,
    /// The round the repetition ran in: each round runs every case once, in an order that turns (`--order`), and
    /// `vs sf` pairs the repetitions of one round. 0 for warm-ups, and in result sets from before rounds (whose
    /// repetitions pair by number).
    #[serde(default)]
    pub round: u32,
    /// The timed section: from the first transfer call to the sink's last byte (with cold passes, the sum of each
    /// pass's own first call to last byte).
    pub wall_s: f64,
    /// Sender side: first call to last call returning (summed over cold passes).
    pub send_s: f64,
    /// Receiver side: first byte to last byte, over all streams (empty in raw mode).
    pub recv_s: Option<f64>,
    /// passes * file_bytes (* consumers, for a broker) / 10^6 / wall_s.
    pub throughput_mb_s: f64,
    /// passes * file_bytes (* consumers, for a broker) * 8 / 10^9 / wall_s.
    pub throughput_gbit_s: f64,
    /// Sender process user CPU (all threads) over the timed section.
    pub sender_user_s: f64,
    /// Sender process system CPU (all threads) over the timed section.
    pub sender_sys_s: f64,
    /// Sink user CPU summed over its stream threads (empty in raw mode).
    pub sink_user_s: Option<f64>,
    /// Sink system CPU summed over its stream threads (empty in raw mode).
    pub sink_sys_s: Option<f64>,
    /// Of the sink's CPU, the part its checking threads used (`verify_on` = `thread`; empty otherwise).
    #[serde(default)]
    pub sink_checker_cpu_s: Option<f64>,
    /// System-wide softirq time from /proc/stat over the timed section (loopback TCP does much of its work here).
    pub softirq_s: f64,
    /// Voluntary context switches of the sender process, all threads.
    pub sender_voluntary_ctxsw: u64,
    /// Involuntary context switches of the sender process, all threads.
    pub sender_involuntary_ctxsw: u64,
    /// Voluntary context switches of the sink's stream threads.
    pub sink_voluntary_ctxsw: Option<u64>,
    /// Involuntary context switches of the sink's stream threads.
    pub sink_involuntary_ctxsw: Option<u64>,
    /// System-wide context switches from /proc/stat over the timed section.
    pub system_ctxsw: u64,
    /// TCP segments retransmitted in the sender's network namespace over the case (/proc/net/snmp, all sockets).
    pub tcp_retrans_segs: Option<u64>,
    /// CPU time the hypervisor gave other guests over the timed section, all CPUs (/proc/stat `steal`).
    #[serde(default)]
    pub steal_s: Option<f64>,
    /// Time the sender's threads waited on a run queue, runnable but not running, over the timed section
    /// (/proc/thread-self/schedstat), summed over threads.
    #[serde(default)]
    pub sender_runq_wait_s: Option<f64>,
    /// The same for the sink's stream threads, from the start of each stream to its report.
    #[serde(default)]
    pub sink_runq_wait_s: Option<f64>,
    /// Times the scheduler moved a sender thread to another CPU (`se.nr_migrations` of /proc/thread-self/sched),
    /// summed over threads (empty where the kernel has no such file).
    #[serde(default)]
    pub sender_migrations: Option<u64>,
    /// The same for the sink's stream threads.
    #[serde(default)]
    pub sink_migrations: Option<u64>,
    /// CPUs the sender's threads were seen on (at the start and the end of each span), e.g. `0,1`.
    #[serde(default)]
    pub sender_cpus_seen: String,
    /// CPUs the sink's stream threads were seen on (when their first byte came and when they reported).
    #[serde(default)]
    pub sink_cpus_seen: String,
    /// The connections' own view (TCP_INFO of the sender's sockets once the last pass went; empty where the
    /// kernel lacks the field): segments retransmitted, summed over connections.
    #[serde(default)]
    pub tcp_total_retrans: Option<u64>,
    /// Smoothed round-trip time and its variation, median over connections.
    #[serde(default)]
    pub tcp_rtt_us: Option<f64>,
    #[serde(default)]
    pub tcp_rttvar_us: Option<f64>,
    /// Congestion window in segments, median over connections.
    #[serde(default)]
    pub tcp_cwnd_segs: Option<f64>,
    /// The pace the congestion control set, and the rate it last measured delivering at, summed over connections.
    #[serde(default)]
    pub tcp_pacing_rate_mb_s: Option<f64>,
    #[serde(default)]
    pub tcp_delivery_rate_mb_s: Option<f64>,
    /// Bytes the receiver acknowledged, summed over connections.
    #[serde(default)]
    pub tcp_bytes_acked: Option<u64>,
    /// The share of the timed section a connection had data to send (the kernel's busy time), mean over
    /// connections; under 1, the sending application, not TCP, left the socket idle.
    #[serde(default)]
    pub tcp_busy_ratio: Option<f64>,
    /// The share of the timed section stalled by the receiver's window, and by the send buffer: the worst
    /// connection's (one starved stream holds the case back).
    #[serde(default)]
    pub tcp_rwnd_limited_ratio: Option<f64>,
    #[serde(default)]
    pub tcp_sndbuf_limited_ratio: Option<f64>,
    /// The sink's side of the connections (its report): its estimate of the round trip and the receive space it
    /// offered, median over streams.
    #[serde(default)]
    pub sink_tcp_rcv_rtt_us: Option<f64>,
    #[serde(default)]
    pub sink_tcp_rcv_space_bytes: Option<f64>,
    /// The lowest round trip the connection saw (TCP_INFO min_rtt: the path's own, without queues), median over
    /// connections.
    #[serde(default)]
    pub tcp_min_rtt_us: Option<f64>,
    /// The largest segment the sender's connections sent (TCP_INFO snd_mss), the most over connections: it fits the
    /// path's MTU less the IP and TCP headers.
    #[serde(default)]
    pub tcp_snd_mss_bytes: Option<u32>,
    /// System calls the strategy made in the timed section (transfer calls plus any retries; a JVM strategy: the
    /// Java calls its threads made, `transferTo`, `read` and `write`, whose system calls `jvm_calls` counts).
    pub syscalls: u64,
    /// Bytes the sender copied through user space (read-send: 2x the bytes sent, mmap-send: 1x, sendfile: 0; a JVM
    /// strategy: as its check pass's calls copied, file reads plus socket writes, per byte sent).
    pub user_copy_bytes: u64,
    /// Minor page faults of the sender process over the timed section.
    pub minor_faults: u64,
    /// Major page faults of the sender process over the timed section.
    pub major_faults: u64,
    /// Median latency of one transfer call.
    pub call_p50_us: f64,
    /// 99th percentile latency of one transfer call.
    pub call_p99_us: f64,
    /// Slowest transfer call.
    pub call_max_us: f64,
    /// The sink's receive buffer (bytes per recv call; empty in raw mode).
    pub rx_buffer_bytes: Option<u64>,
    /// With `--rx-mode zerocopy`: the share of the bytes the kernel mapped into the sink (TCP_ZEROCOPY_RECEIVE)
    /// rather than copied, and why a stream fell back to copying everything, if one did.
    #[serde(default)]
    pub rx_zerocopy_mapped_ratio: Option<f64>,
    #[serde(default)]
    pub rx_fallback_reason: String,
    /// How the sink received: `copy` (recv into a buffer), `trunc` (MSG_TRUNC), `splice` or `zerocopy` (empty in
    /// raw mode).
    pub rx_mode: Option<RxMode>,
    /// `loopback` for a sink this run spawned, `veth` for one it spawned at the end of a `--link` path, `remote`
    /// for one reached with --connect, `raw` without protocol.
    pub transport: Transport,
    /// Address the sender connected to.
    pub sink_addr: String,
    /// SO_SNDBUF asked for (empty: kernel default).
    pub sndbuf_bytes: Option<u64>,
    /// SO_RCVBUF asked for on the sink side (empty: kernel default, or raw mode).
    pub rcvbuf_bytes: Option<u64>,
    /// TCP_NODELAY set on the sender's sockets.
    pub nodelay: bool,
    /// The MTU of the interface the streams used (lo on one box; with --netns-mtu, the loopback of the run's own
    /// network namespace); empty in result sets from before it was recorded.
    #[serde(default)]
    pub mtu_bytes: Option<u32>,
    /// The path the streams took (`--link`), its spec in canonical form: `loopback`, or `veth:mtu=1500,...` with every
    /// value in full; empty for a remote sink or raw receiver (the real network's), and in sets from before links.
    #[serde(default)]
    pub link: Option<Link>,
    /// The rate the link's router shaped each direction to, bits per second (empty: not shaped).
    #[serde(default)]
    pub link_rate_bit_s: Option<u64>,
    /// The TCP congestion control of the sender's sockets, as read back from each (TCP_CONGESTION) after it was
    /// set; empty in result sets from before xferbench set it.
    #[serde(default)]
    pub congestion_control: Option<Cc>,
    /// CPUs the sender was pinned to (empty: not pinned).
    pub sender_cpus: String,
    /// CPUs the sink was pinned to (empty: not pinned, or raw mode).
    pub sink_cpus: String,
    /// io_uring queue depth (empty for other strategies).
    pub queue_depth: Option<u32>,
    /// A broker strategy's consumers, each sent the whole file every pass (empty for other strategies).
    #[serde(default)]
    pub consumers: Option<u32>,
    /// The most a broker's network thread sends to one consumer in one visit before it moves on (a fetch).
    #[serde(default)]
    pub fetch_bytes: Option<u64>,
    /// Consumers told to read nothing until every other consumer had all its bytes (`--stalled-consumers`).
    #[serde(default)]
    pub stalled_consumers: Option<u32>,
    /// Each consumer's MB/s (its bytes over the time from the release to its last byte): the slowest and the
    /// fastest consumer's.
    #[serde(default)]
    pub consumer_min_mb_s: Option<f64>,
    #[serde(default)]
    pub consumer_max_mb_s: Option<f64>,
    /// Jain's fairness index over the consumers' MB/s: 1 when every consumer got the same, 1/consumers when one
    /// got everything.
    #[serde(default)]
    pub consumer_jain: Option<f64>,
    /// The time the slowest consumer took to get all its bytes, and the median consumer's (from the release).
    #[serde(default)]
    pub consumer_slowest_s: Option<f64>,
    #[serde(default)]
    pub consumer_median_s: Option<f64>,
    /// Fraction of zero-copy sends the kernel reported it copied anyway (empty for other strategies).
    pub zerocopy_copied_ratio: Option<f64>,
    /// The TLS 1.3 cipher suite of a TLS strategy's sessions (e.g. `TLS13_AES_256_GCM_SHA384`; empty otherwise).
    #[serde(default)]
    pub tls_cipher: String,
    /// A JVM strategy's JVM: its version, vendor, VM and options (`17.0.15+6-Debian-1deb12u1 (Debian, OpenJDK
    /// 64-Bit Server VM; -Xmx1g)`); empty otherwise. Its process's CPU, switches and faults are the `sender_*` and
    /// fault columns.
    #[serde(default)]
    pub jvm_version: String,
    /// A JVM strategy: the system calls that carried the bytes in the case's check pass under strace (`sendfile`,
    /// `mmap+write`, `read+write`), and every traced call on the stream's socket and file with its count and bytes.
    #[serde(default)]
    pub jvm_path: String,
    #[serde(default)]
    pub jvm_calls: String,
    /// A JVM strategy: CPU seconds of its sending threads over the timed section (/proc/PID/task/TID/schedstat).
    #[serde(default)]
    pub jvm_send_cpu_s: Option<f64>,
    /// A JVM strategy: milliseconds the JVM spent compiling (JIT) and collecting garbage while its threads sent.
    #[serde(default)]
    pub jvm_jit_ms: Option<f64>,
    #[serde(default)]
    pub jvm_gc_ms: Option<f64>,
    /// A JVM strategy: repetitions this JVM ran before this one (its check pass and the case's warm-ups counted).
    #[serde(default)]
    pub jvm_repetitions_before: Option<u32>,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Host name.
    pub host: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs online.
    pub logical_cpus: u32,
    /// Physical memory.
    pub memory_bytes: u64,
    /// File system type holding the test file.
    pub file_system: String,
    /// Version of xferbench that measured the row.
    pub xferbench_version: String,
    /// When the timed section started (RFC 3339, UTC).
    pub started_utc: String,
    /// `ok` when every byte arrived (and matched, with --verify); otherwise the failure's name.
    pub status: Status,
    /// Warnings about this row, `;`-separated (e.g. `short-run`, `residency-mismatch`).
    pub flags: Flags,
    /// The failure in words, when status is not ok.
    pub error: String,
    /// Bytes per interval of each stream, for series.csv (not a column: written beside the row).
    #[serde(skip)]
    pub series: Vec<SeriesRow>,
    /// Each consumer of a broker case, for consumers.csv (not a column: written beside the row).
    #[serde(skip)]
    pub consumer_rows: Vec<ConsumerRow>,
}

/// One line of consumers.csv: what one consumer of one repetition of a broker case got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsumerRow {
    pub run_id: String,
    pub case_id: String,
    pub round: u32,
    pub repetition: u32,
    /// 0-based consumer (stream) index.
    pub consumer: u32,
    /// The network thread that served it (consumer mod network threads).
    pub network_thread: u32,
    /// Bytes the sink counted on it, every pass.
    pub bytes: u64,
    /// From the release of the network threads to its first and to its last byte.
    pub first_byte_s: Option<f64>,
    pub last_byte_s: Option<f64>,
    /// Its bytes over `last_byte_s`.
    pub mb_s: Option<f64>,
    /// It was told to read nothing until the others had all their bytes.
    pub stalled: bool,
}

/// One line of series.csv: the bytes one stream of one repetition received in one interval (`--interval`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesRow {
    pub run_id: String,
    pub case_id: String,
    pub round: u32,
    pub repetition: u32,
    /// 0-based stream index.
    pub stream: u32,
    /// 1-based pass the interval's first byte belonged to.
    pub pass: u32,
    /// Start of the interval, from the stream's first byte, and its length.
    pub t_s: f64,
    pub interval_s: f64,
    pub bytes: u64,
}

impl Row {
    /// True when the row counts towards medians.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The case this row measured.
    pub fn key(&self) -> CaseKey {
        CaseKey {
            cache: self.cache,
            cc: self.congestion_control,
            strategy: self.strategy,
            threads: self.threads,
            layout: self.layout,
            chunk_bytes: self.chunk_bytes,
            receiver: match (self.transport, self.rx_mode, self.rx_buffer_bytes) {
                (Transport::Loopback | Transport::Veth, Some(mode), Some(buffer)) => Some((mode, buffer)),
                _ => None,
            },
            verify: self.verify,
            queue_depth: self.queue_depth,
            consumers: match (self.consumers, self.fetch_bytes) {
                (Some(count), Some(fetch_bytes)) => Some(crate::base::model::Consumers { count, fetch_bytes }),
                _ => None,
            },
            link: self.link.unwrap_or_default(),
        }
    }

    /// What pairs this repetition with the other cases' (`vs sf`): its round (whichever run of a resumed folder
    /// measured it), or in result sets from before rounds, its run and repetition number (scripts then ran one
    /// `run` per round; a single run's repetitions pair by number).
    pub fn pair_key(&self) -> PairKey {
        if self.round > 0 {
            PairKey(String::new(), self.round)
        } else {
            PairKey(self.run_id.clone(), self.repetition)
        }
    }

    /// Bytes the repetition moved: every pass of the file, to every consumer of a broker.
    pub fn bytes_moved(&self) -> u64 {
        self.file_bytes * u64::from(self.passes.max(1)) * u64::from(self.consumers.unwrap_or(1).max(1))
    }

    /// The connections the repetition opened (its streams).
    pub fn connections(&self) -> u32 {
        self.consumers.unwrap_or(self.threads).max(1)
    }

    /// `v` per 10^9 bytes moved.
    pub fn per_gb(&self, v: f64) -> Option<f64> {
        (self.bytes_moved() > 0).then(|| v / (self.bytes_moved() as f64 / 1e9))
    }

    pub fn add_flag(&mut self, flag: Flag) {
        self.flags.add(flag);
    }
}

/// Reads a path as written now (`tls-read-send`) or before it was typed (`method(fallback:other: why)`: the
/// method that ran is `other`; `parse` puts the `why` in `fallback_reason` and the strategy's `parallel-` back).
fn path_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Strategy, D::Error> {
    let text = std::borrow::Cow::<str>::deserialize(d)?;
    let ran = match old_fallback(&text) {
        Some((ran, _)) => ran,
        None => &text,
    };
    ran.parse().map_err(serde::de::Error::custom)
}

/// `method(fallback:other: why)` -> (`other`, `why`).
fn old_fallback(text: &str) -> Option<(&str, &str)> {
    let inner = text.split_once("(fallback:")?.1.strip_suffix(')')?;
    Some(match inner.split_once(':') {
        Some((ran, why)) => (ran.trim(), why.trim()),
        None => (inner.trim(), ""),
    })
}

/// What pairs repetitions of different cases: (run, repetition) in sets from before rounds, (-, round) since.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PairKey(String, u32);

/// The columns every runs.csv has had: a file without them is not one.
const REQUIRED: [&str; 4] = ["run_id", "strategy", "status", "wall_s"];

/// A runs.csv as read: its whole rows, and the bytes of a last row cut short, if any.
#[derive(Debug, Default)]
pub struct RunsFile {
    pub rows: Vec<Row>,
    pub torn: Option<Torn>,
}

/// A last row cut short: where it starts in the file, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// Reads every whole row of a runs.csv; a torn last row is returned apart, not an error.
pub fn read(path: &Path) -> anyhow::Result<RunsFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    parse(&bytes).with_context(|| format!("'{}'", path.display()))
}

/// Moves a torn last row out of `path`, leaving its whole rows: the bytes are appended to `<path>.torn` (never
/// deleted) and synced before `path` is cut back. Returns where they went.
pub fn set_aside(path: &Path, torn: &Torn) -> anyhow::Result<std::path::PathBuf> {
    use std::io::Write;
    let aside = path.with_extension("csv.torn");
    let ctx = || format!("cannot set the torn last row of '{}' aside", path.display());
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&aside)
        .with_context(ctx)?;
    f.write_all(&torn.bytes)
        .and_then(|()| f.sync_data())
        .with_context(ctx)?;
    let file = std::fs::OpenOptions::new().write(true).open(path).with_context(ctx)?;
    file.set_len(torn.offset)
        .and_then(|()| file.sync_data())
        .with_context(ctx)?;
    Ok(aside)
}

/// Reads the rows of `dir/runs.csv` for a reader (`plot`, `compare`, `article`). A torn last row is set aside
/// when no run holds the folder (one line says so); while a run does, it is only left out.
pub fn read_rows(dir: &Path) -> anyhow::Result<Vec<Row>> {
    let path = dir.join("runs.csv");
    let file = read(&path)?;
    if let Some(torn) = &file.torn {
        match crate::results::lock::FolderLock::take(dir, &crate::results::lock::Holder::me("reading")) {
            Ok(_lock) => {
                let aside = set_aside(&path, torn)?;
                eprintln!("{}", torn_line(&path, torn, &aside, file.rows.len()));
            }
            Err(busy) => eprintln!(
                "xferbench: the last row of '{}' is not whole ({busy}): left out, {} whole rows read",
                path.display(),
                file.rows.len()
            ),
        }
    }
    Ok(file.rows)
}

/// The one line that says a torn row was set aside.
pub fn torn_line(path: &Path, torn: &Torn, aside: &Path, whole: usize) -> String {
    format!(
        "xferbench: '{}' ended in a row cut short ({} bytes, a crash while writing?): set aside in '{}'; {whole} \
         whole rows kept",
        path.display(),
        torn.bytes.len(),
        aside.display()
    )
}

fn parse(bytes: &[u8]) -> anyhow::Result<RunsFile> {
    // Whatever follows the last newline was never finished: a whole row always ends with one.
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut torn = (whole < bytes.len()).then(|| Torn {
        offset: whole as u64,
        bytes: bytes[whole..].to_vec(),
    });
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(&bytes[..whole]);
    let headers = match reader.headers() {
        Ok(h) if !h.is_empty() => h.clone(),
        _ if whole == 0 => return Ok(RunsFile { rows: Vec::new(), torn }),
        Err(e) => anyhow::bail!("the header does not parse: {e}"),
        Ok(_) => anyhow::bail!("the header is empty"),
    };
    if let Some(missing) = REQUIRED.iter().find(|c| !headers.iter().any(|h| h == **c)) {
        anyhow::bail!("not a runs.csv of xferbench (no '{missing}' column)");
    }
    let has_verify = headers.iter().any(|h| h == "verify");
    let path_at = headers.iter().position(|h| h == "path");
    let records: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .context("the file does not parse as CSV")?;
    let mut rows = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let line = record.position().map_or(0, |p| p.line());
        let last = i + 1 == records.len();
        // A last row with too few fields was cut short by a crash (its bytes happened to end at a newline
        // inside a quoted field): torn, like one without its newline.
        if last && record.len() < headers.len() {
            let offset = record.position().map_or(0, |p| p.byte());
            torn = Some(Torn {
                offset,
                bytes: bytes[offset as usize..].to_vec(),
            });
            break;
        }
        let mut row: Row = record
            .deserialize(Some(&headers))
            .with_context(|| format!("row at line {line} does not parse"))?;
        if !has_verify {
            row.verify = row.verify_on.is_some();
        }
        // A fallback written as prose: the method that ran is the path (as parallel as the strategy), the prose
        // its reason.
        if let Some((_, why)) = path_at.and_then(|i| record.get(i)).and_then(old_fallback) {
            row.path.shape = row.strategy.shape;
            if row.fallback_reason.is_empty() {
                row.fallback_reason = why.to_string();
            }
        }
        rows.push(row);
    }
    Ok(RunsFile { rows, torn })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_of(rows: &[Row]) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        rows.iter().for_each(|r| w.serialize(r).unwrap());
        w.into_inner().unwrap()
    }

    fn row(rep: u32) -> Row {
        Row {
            strategy: "parallel-sendfile".parse().unwrap(),
            repetition: rep,
            status: Status::Ok,
            error: "a, \"quoted\" error".into(),
            ..Row::default()
        }
    }

    #[test]
    fn whole_rows_round_trip() {
        let rows = vec![row(1), row(2)];
        let file = parse(&csv_of(&rows)).unwrap();
        assert_eq!(file.rows, rows);
        assert_eq!(file.torn, None);
    }

    #[test]
    fn a_torn_last_row_is_set_apart_and_the_rest_kept() {
        let whole = csv_of(&[row(1), row(2)]);
        let full = csv_of(&[row(1), row(2), row(3)]);
        for cut in [whole.len() + 1, whole.len() + 40, full.len() - 1] {
            let file = parse(&full[..cut]).unwrap();
            assert_eq!(file.rows, vec![row(1), row(2)], "cut at {cut}");
            let torn = file.torn.expect("torn");
            assert_eq!(torn.offset as usize, whole.len());
            assert_eq!(torn.bytes, full[whole.len()..cut]);
        }
    }

    #[test]
    fn a_bad_row_in_the_middle_is_an_error_naming_its_line() {
        let text = String::from_utf8(csv_of(&[row(1), row(2), row(3)])).unwrap();
        let broken = text.replacen(",ok,", ",okay,", 1);
        let e = format!("{:#}", parse(broken.as_bytes()).unwrap_err());
        assert!(e.contains("row at line 2 does not parse"), "{e}");
        let foreign = parse(b"a,b\n1,2\n").unwrap_err().to_string();
        assert!(foreign.contains("not a runs.csv"), "{foreign}");
    }

    #[test]
    fn an_old_fallback_in_prose_reads_as_a_path_and_its_reason() {
        let bytes = csv_of(&[row(1)]);
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header = reader.headers().unwrap().clone();
        let at = header.iter().position(|h| h == "path").unwrap();
        let mut fields: Vec<String> = reader
            .records()
            .next()
            .unwrap()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        // As a set from before the column was typed wrote it: the method's own name, the fallback in prose.
        fields[at] = "io-uring(fallback:splice: io_uring_setup: EPERM)".into();
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&header).unwrap();
        w.write_record(&fields).unwrap();
        let rows = parse(&w.into_inner().unwrap()).unwrap().rows;
        assert_eq!(rows[0].path.to_string(), "parallel-splice");
        assert_eq!(rows[0].fallback_reason, "io_uring_setup: EPERM");
        assert_eq!(
            old_fallback("ktls-sendfile(fallback:tls-read-send)"),
            Some(("tls-read-send", ""))
        );
    }

    #[test]
    fn old_rows_without_passes_or_verify_read() {
        let text = String::from_utf8(csv_of(&[Row {
            verify_on: Some(VerifyOn::Receiver),
            verify: true,
            passes: 3,
            error: String::new(),
            ..row(1)
        }]))
        .unwrap();
        // Drop the two columns, as a set from before they existed lacks them.
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
        let drop: Vec<usize> = ["passes", "verify"]
            .iter()
            .map(|c| lines[0].iter().position(|h| h == c).unwrap())
            .collect();
        let old: String = text
            .lines()
            .map(|l| {
                let kept: Vec<&str> = l
                    .split(',')
                    .enumerate()
                    .filter(|(i, _)| !drop.contains(i))
                    .map(|(_, f)| f)
                    .collect();
                kept.join(",") + "\n"
            })
            .collect();
        let rows = parse(old.as_bytes()).unwrap().rows;
        assert_eq!((rows[0].passes, rows[0].verify), (1, true));
    }
}
