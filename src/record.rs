//! One row of `runs.csv`: the serde struct that the exporter writes and that `plot`, `compare` and `--resume`
//! read back. The header is derived from the struct, so it cannot drift from the values.
//!
//! Units are in the column names: `_s` seconds, `_bytes` bytes, `_mb_s` 10^6 bytes per second, `_us`
//! microseconds, `_ratio` a fraction in 0..=1. A column that was not measured is left empty, never zero.

use serde::{Deserialize, Serialize};

/// Status of a row whose every byte arrived (and, with `--verify`, matched).
pub const STATUS_OK: &str = "ok";

/// One timed repetition of one case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The run this row belongs to (`<UTC timestamp>-<host>`).
    pub run_id: String,
    /// Stable key of the case: every option that changes what is measured, joined with `/`.
    pub case_id: String,
    /// Strategy as asked for on the command line, e.g. `parallel-sendfile`.
    pub strategy: String,
    /// The transfer path that really ran; differs from `strategy` when the kernel lacked something and the
    /// strategy fell back (e.g. `splice(fallback:read-send)`).
    pub path: String,
    /// Connections, each with its own thread and file descriptor (1 for serial strategies).
    pub threads: u32,
    /// Bytes asked of each transfer call (the user buffer size for read-send).
    pub chunk_bytes: u64,
    /// `striped` (thread k sends chunks k, k+N, ...) or `contiguous` (one range per thread); `single` when serial.
    pub layout: String,
    /// Cache state asked for: `warm` or `cold`.
    pub cache: String,
    /// Fraction of the file's pages resident in the page cache just before the timed section (mincore).
    pub resident_before_ratio: f64,
    /// Size of the file sent.
    pub file_bytes: u64,
    /// Bytes the sender's calls reported written.
    pub bytes_sent: u64,
    /// Bytes the sink counted (empty in raw mode, where no report comes back).
    pub bytes_received: Option<u64>,
    /// True only when the sink compared every byte with the fixture generator and all matched.
    pub verified: bool,
    /// Where the sink checked: `receiver` (in the receiving thread) or `thread` (a checking thread per stream);
    /// empty when nothing was checked. Missing in result sets from before it existed.
    #[serde(default)]
    pub verify_on: String,
    /// 1-based repetition number; warm-ups are not written.
    pub repetition: u32,
    /// From the first transfer call to the sink's last byte.
    pub wall_s: f64,
    /// Sender side: first call to last call returning.
    pub send_s: f64,
    /// Receiver side: first byte to last byte, over all streams (empty in raw mode).
    pub recv_s: Option<f64>,
    /// file_bytes / 10^6 / wall_s.
    pub throughput_mb_s: f64,
    /// file_bytes * 8 / 10^9 / wall_s.
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
    /// System-wide softirq time from /proc/stat over the case (loopback TCP does much of its work here).
    pub softirq_s: f64,
    /// Voluntary context switches of the sender process, all threads.
    pub sender_voluntary_ctxsw: u64,
    /// Involuntary context switches of the sender process, all threads.
    pub sender_involuntary_ctxsw: u64,
    /// Voluntary context switches of the sink's stream threads.
    pub sink_voluntary_ctxsw: Option<u64>,
    /// Involuntary context switches of the sink's stream threads.
    pub sink_involuntary_ctxsw: Option<u64>,
    /// System-wide context switches from /proc/stat over the case.
    pub system_ctxsw: u64,
    /// TCP segments retransmitted in the sender's network namespace over the case (/proc/net/snmp, all sockets).
    pub tcp_retrans_segs: Option<u64>,
    /// System calls the strategy made in the timed section (transfer calls plus any retries).
    pub syscalls: u64,
    /// Bytes the sender copied through user space (read-send: 2x file, mmap-send: 1x, sendfile: 0).
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
    /// How the sink received: `copy` (recv into a buffer), `trunc` (MSG_TRUNC) or `splice` (empty in raw mode).
    pub rx_mode: String,
    /// `loopback` for a sink this run spawned, `remote` for one reached with --connect, `raw` without protocol.
    pub transport: String,
    /// Address the sender connected to.
    pub sink_addr: String,
    /// SO_SNDBUF asked for (empty: kernel default).
    pub sndbuf_bytes: Option<u64>,
    /// SO_RCVBUF asked for on the sink side (empty: kernel default, or raw mode).
    pub rcvbuf_bytes: Option<u64>,
    /// TCP_NODELAY set on the sender's sockets.
    pub nodelay: bool,
    /// CPUs the sender was pinned to (empty: not pinned).
    pub sender_cpus: String,
    /// CPUs the sink was pinned to (empty: not pinned, or raw mode).
    pub sink_cpus: String,
    /// io_uring queue depth (empty for other strategies).
    pub queue_depth: Option<u32>,
    /// Fraction of MSG_ZEROCOPY sends the kernel reported it copied anyway (empty for other strategies).
    pub zerocopy_copied_ratio: Option<f64>,
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
    pub status: String,
    /// Warnings about this row, `;`-separated (e.g. `short-run`, `residency-mismatch`).
    pub flags: String,
    /// The failure in words, when status is not ok.
    pub error: String,
}

impl Row {
    /// True when the row counts towards medians.
    pub fn is_ok(&self) -> bool {
        self.status == STATUS_OK
    }
}

/// Reads every row of a `runs.csv`.
pub fn read_rows(path: &std::path::Path) -> anyhow::Result<Vec<Row>> {
    use anyhow::Context;
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, r)| r.with_context(|| format!("'{}' row {} does not parse", path.display(), i + 2)))
        .collect()
}
