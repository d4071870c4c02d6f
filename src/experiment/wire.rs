//! What travels on a data connection besides the file: the stream header the sender opens with, the sink's
//! one-line acknowledgement, and the one-line JSON report the sink sends after the sender shuts its side down.
//!
//! ```text
//! sender -> sink   "XFERBNCH" | version: u16 BE | length: u16 BE | StreamHeader as JSON (length bytes)
//! sink -> sender   Ack as one line of JSON
//! sender -> sink   the stream's bytes, `passes` times over, then shutdown(SHUT_WR)
//!   (with `pass_notices`, the sink answers each pass's last byte with a PassNotice line, and the sender waits
//!    for it before the next pass: cold passes evict the file in between)
//! sink -> sender   StreamReport as one line of JSON
//! ```
//! The layout of a stream (which file offsets it carries, in which order) is a pure function of the header, so the
//! sink can verify content without knowing anything else about the run.

use crate::base::model::{Layout, RxMode, VerifyOn};
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, Read, Write};
use std::ops::Range;

/// Opens every stream so that a stray connection is recognised at once.
pub const MAGIC: [u8; 8] = *b"XFERBNCH";
/// Bumped whenever the header, ack or report changes meaning (2: passes and pass notices).
pub const PROTOCOL_VERSION: u16 = 2;
/// The largest header the sink reads; a longer one is rejected without reading it.
pub const MAX_HEADER_BYTES: usize = 4096;
/// The most streams one run may announce.
pub const MAX_STREAMS: u32 = 1024;
/// The longest ack or report line either side reads (a report carries up to `MAX_SERIES` numbers).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// The most intervals a report's byte series holds: past it the sink merges neighbours and doubles the interval.
pub const MAX_SERIES: usize = 2048;
/// The longest pass notice a sender reads.
pub const MAX_NOTICE_BYTES: usize = 512;
/// The largest file a header may describe (1 PiB): with at most `MAX_PASSES` passes, every offset and total either
/// side computes from a header then stays inside a u64.
pub const MAX_FILE_BYTES: u64 = 1 << 50;
/// The most passes a header may ask for (the sender's own cap).
pub const MAX_PASSES: u32 = crate::base::model::Passes::CAP;
/// Magic, version and length: the part of a header before its JSON.
const FIXED: usize = 12;

/// Which file offsets one stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPlan {
    pub file_bytes: u64,
    pub chunk_bytes: u64,
    pub layout: Layout,
    pub streams: u32,
    pub index: u32,
}

impl StreamPlan {
    /// Contiguous ranges are cut at multiples of this, so direct I/O stays aligned.
    const ALIGN: u64 = 4096;

    /// The file ranges this stream carries, in the order it sends them. Each striped range is one chunk;
    /// single and contiguous ranges are cut into chunk-sized calls by the strategy.
    pub fn ranges(&self) -> Box<dyn Iterator<Item = Range<u64>> + Send> {
        let size = self.file_bytes;
        let n = u64::from(self.streams.max(1));
        let k = u64::from(self.index);
        match self.layout {
            Layout::Single => Box::new(std::iter::once(0..size).filter(|r| !r.is_empty())),
            Layout::Contiguous => {
                let per = size.div_ceil(n).div_ceil(Self::ALIGN) * Self::ALIGN;
                let start = (k * per).min(size);
                let end = ((k + 1) * per).min(size);
                Box::new(std::iter::once(start..end).filter(|r| !r.is_empty()))
            }
            Layout::Striped => {
                let chunk = self.chunk_bytes.max(1);
                let chunks = size.div_ceil(chunk);
                Box::new(
                    (k..chunks)
                        .step_by(n as usize)
                        .map(move |c| c * chunk..((c + 1) * chunk).min(size)),
                )
            }
        }
    }

    /// Bytes this stream carries in all.
    pub fn total_bytes(&self) -> u64 {
        match self.layout {
            Layout::Striped => {
                let chunk = self.chunk_bytes.max(1);
                let chunks = self.file_bytes.div_ceil(chunk);
                let n = u64::from(self.streams.max(1));
                let k = u64::from(self.index);
                if k >= chunks {
                    return 0;
                }
                let mine = (chunks - k).div_ceil(n);
                let last = k + (mine - 1) * n;
                (mine - 1) * chunk + (self.file_bytes - last * chunk).min(chunk)
            }
            _ => self.ranges().map(|r| r.end - r.start).sum(),
        }
    }
}

/// First thing on every data connection, after the magic, version and length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamHeader {
    pub run_id: String,
    pub case_id: String,
    pub plan: StreamPlan,
    /// Fixture seed: present when the file is a generated fixture whose content the sink can check.
    pub seed: Option<u64>,
    /// Check every byte against the generator (needs `seed`).
    pub verify: bool,
    /// Must equal the sink's `--token` when it has one.
    pub token: Option<String>,
    /// Receive mode wanted for this stream; absent: the sink's own `--rx-mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_mode: Option<RxMode>,
    /// Where to check the bytes with `verify`; absent: the sink chooses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_on: Option<VerifyOn>,
    /// How many times the stream carries its plan's ranges, back to back.
    pub passes: u32,
    /// Answer the last byte of each pass with a `PassNotice` (the sender waits for it before the next pass).
    #[serde(default)]
    pub pass_notices: bool,
    /// After the ack the stream is a TLS 1.3 session that the sink terminates (the ack carries the certificate's
    /// fingerprint for the sender to pin).
    #[serde(default)]
    pub tls: bool,
    /// Count the stream's bytes in intervals of this many milliseconds and send the series in the report (absent
    /// or 0: no series).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u32>,
    /// A stalled consumer and the streams it waits for (`--stalled-consumers`); absent for every other stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<Stall>,
}

/// One stream of a repetition in which some consumers stall: the stalled ones read nothing until `others` streams
/// of the same `group` have all their bytes; the rest count towards the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    /// The same for every stream of one repetition.
    pub group: String,
    /// This stream is a stalled one.
    pub waits: bool,
    /// How many streams the stalled ones wait for.
    pub others: u32,
}

impl StreamHeader {
    /// Bytes the whole stream carries: every pass of its plan.
    pub fn total_bytes(&self) -> u64 {
        self.plan.total_bytes() * u64::from(self.passes)
    }
}

/// The sink's answer to a header: go ahead, or why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub ok: bool,
    pub version: u16,
    /// `/proc/sys/kernel/random/boot_id` of the sink's kernel: equal on both sides means they share
    /// CLOCK_MONOTONIC, so the sink's byte times can be set against the sender's.
    pub boot_id: String,
    /// Receive mode and buffer the sink will use for this stream.
    pub rx_mode: RxMode,
    pub rx_buffer_bytes: u64,
    /// The sink's SO_RCVBUF and CPU pinning, so that rows of a remote run record them (absent: not set, or a
    /// sink too old to say).
    #[serde(default)]
    pub rcvbuf_bytes: Option<u64>,
    #[serde(default)]
    pub cpus: Option<String>,
    /// With `tls` asked: the SHA-256 of the sink's certificate (lowercase hex), which the sender pins.
    #[serde(default)]
    pub tls_fingerprint: Option<String>,
    pub error: Option<String>,
    /// The sink honours the header's `stall` (absent from sinks of earlier releases, which ignore it).
    #[serde(default)]
    pub stalls: bool,
}

/// What the sink saw on one stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    pub stream: u32,
    pub bytes: u64,
    /// Every byte checked against the generator and all matched (false when not checked).
    pub verified: bool,
    /// Absolute file offset of the first wrong byte, when one was found.
    pub mismatch_offset: Option<u64>,
    /// CLOCK_MONOTONIC nanoseconds of the first and last byte received, and of this report.
    pub first_byte_ns: Option<u64>,
    pub last_byte_ns: Option<u64>,
    pub report_ns: u64,
    /// The stream thread's own CPU and context switches (getrusage RUSAGE_THREAD), from ack to EOF.
    pub user_s: f64,
    pub sys_s: f64,
    pub voluntary_ctxsw: u64,
    pub involuntary_ctxsw: u64,
    /// Receive calls made.
    pub recv_calls: u64,
    /// Set when the stream ended by error rather than EOF.
    pub error: Option<String>,
    /// Where the bytes were checked, when they were.
    #[serde(default)]
    pub verify_on: Option<VerifyOn>,
    /// CPU seconds of the checking thread, when there was one; already counted in `user_s` and `sys_s`.
    #[serde(default)]
    pub checker_cpu_s: Option<f64>,
    /// What the scheduler did to the stream thread from ack to report: nanoseconds it waited on a run queue,
    /// times it moved to another CPU, and the CPUs it was seen on (absent from sinks of earlier releases, and
    /// where the kernel does not keep them).
    #[serde(default)]
    pub runq_wait_ns: Option<u64>,
    #[serde(default)]
    pub migrations: Option<u64>,
    #[serde(default)]
    pub cpus: Vec<u32>,
    /// The receiving socket's TCP_INFO once the stream ended (absent from sinks of earlier releases).
    #[serde(default)]
    pub tcp: Option<crate::experiment::tcp::TcpInfo>,
    /// `--rx-mode zerocopy`: the bytes the kernel mapped into the sink rather than copied, and why the stream fell
    /// back to copying, if it did.
    #[serde(default)]
    pub mapped_bytes: Option<u64>,
    #[serde(default)]
    pub rx_fallback: Option<String>,
    /// `--rx-mode zerocopy` with a wrong byte: whether it lay in a page the kernel mapped (checked in place) or in
    /// bytes it copied.
    #[serde(default)]
    pub mismatch_mapped: Option<bool>,
    /// Bytes received in each interval of `series_interval_ns` from the first byte on (when the header asked).
    #[serde(default)]
    pub series_interval_ns: Option<u64>,
    #[serde(default)]
    pub series: Vec<u64>,
}

impl StreamReport {
    /// What any report from a real sink holds: byte times in order, CPU times that are times. Anything else is
    /// not a sink's report, and its numbers are not used.
    pub fn check(&self) -> Result<(), String> {
        if let (Some(first), Some(last)) = (self.first_byte_ns, self.last_byte_ns)
            && first > last
        {
            return Err(format!("its first byte ({first} ns) comes after its last ({last} ns)"));
        }
        if let Some(last) = self.last_byte_ns
            && last > self.report_ns
        {
            return Err(format!(
                "its last byte ({last} ns) comes after the report ({} ns)",
                self.report_ns
            ));
        }
        if self.series.len() > MAX_SERIES {
            return Err(format!(
                "its series has {} intervals, more than {MAX_SERIES}",
                self.series.len()
            ));
        }
        if !self.series.is_empty() && self.series_interval_ns.is_none_or(|i| i == 0) {
            return Err("its series has no interval".into());
        }
        let in_series = self.series.iter().try_fold(0u64, |a, b| a.checked_add(*b));
        if !self.series.is_empty() && in_series != Some(self.bytes) {
            return Err(format!("its series does not add up to its {} bytes", self.bytes));
        }
        if self.mismatch_mapped.is_some() && self.mismatch_offset.is_none() {
            return Err("it says where a wrong byte lay but names none".into());
        }
        if self.mapped_bytes.is_some_and(|m| m > self.bytes) {
            return Err(format!("it mapped more bytes than it received ({})", self.bytes));
        }
        let cpu = [("user_s", self.user_s), ("sys_s", self.sys_s)];
        let checker = self.checker_cpu_s.map(|c| ("checker_cpu_s", c));
        match cpu
            .into_iter()
            .chain(checker)
            .find(|(_, v)| !(0.0..=MAX_CPU_S).contains(v))
        {
            Some((name, v)) => Err(format!("{name} {v} is not a CPU time")),
            None => Ok(()),
        }
    }
}

/// More CPU seconds than any stream could use (a year): a report claiming more is not a sink's.
const MAX_CPU_S: f64 = 365.0 * 86_400.0;

/// The sink's word that a pass of a stream has arrived whole (sent only when the header asks for notices).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassNotice {
    /// 1-based pass number.
    pub pass: u32,
    /// CLOCK_MONOTONIC nanoseconds of the pass's first and last byte at the sink, and of this notice.
    pub first_byte_ns: u64,
    pub last_byte_ns: u64,
    pub notice_ns: u64,
}

impl PassNotice {
    /// What a real sink's notice holds: a pass number a header may ask for, and times in order.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_PASSES).contains(&self.pass) {
            return Err(format!("pass {} (from 1 to {MAX_PASSES})", self.pass));
        }
        if self.first_byte_ns > self.last_byte_ns || self.last_byte_ns > self.notice_ns {
            return Err(format!(
                "its times are out of order (first byte {}, last byte {}, notice {} ns)",
                self.first_byte_ns, self.last_byte_ns, self.notice_ns
            ));
        }
        Ok(())
    }
}

/// Writes magic, version, length and the JSON header in one write.
pub fn write_header(w: &mut impl Write, header: &StreamHeader) -> io::Result<()> {
    let json = serde_json::to_vec(header).map_err(io::Error::other)?;
    if json.len() > MAX_HEADER_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "stream header too long"));
    }
    let mut buf = Vec::with_capacity(12 + json.len());
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    buf.extend_from_slice(&(json.len() as u16).to_be_bytes());
    buf.extend_from_slice(&json);
    w.write_all(&buf)
}

/// Why a header was refused.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("not an xferbench stream (bad magic)")]
    BadMagic,
    #[error(
        "the sender speaks protocol version {0} and this sink version {PROTOCOL_VERSION}; run the same xferbench \
         release on both hosts"
    )]
    Version(u16),
    #[error("header of {0} bytes exceeds the limit of {MAX_HEADER_BYTES}")]
    TooLong(usize),
    #[error("malformed header: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads and checks a header from a blocking reader; reads exactly the header's bytes and at most
/// MAX_HEADER_BYTES after the fixed part, whatever the peer claims.
pub fn read_header(r: &mut impl Read) -> Result<StreamHeader, HeaderError> {
    let mut reader = HeaderReader::default();
    loop {
        let space = reader.space();
        let n = space.len();
        r.read_exact(space)?;
        if let Some(header) = reader.advance(n)? {
            return Ok(header);
        }
    }
}

/// A header read in pieces, as a non-blocking socket delivers them: `space` is where the next bytes go (never
/// past the end of the header, so nothing of the stream is taken), `advance` takes what was read. The magic is
/// checked byte by byte as it arrives, the claimed length before anything is allocated for it, and at most
/// `FIXED + MAX_HEADER_BYTES` bytes are ever held.
#[derive(Debug, Default)]
pub struct HeaderReader {
    fixed: [u8; FIXED],
    /// Sized once the fixed part is in and its length checked.
    json: Option<Vec<u8>>,
    have: usize,
}

impl HeaderReader {
    /// Where the next bytes of the header go: all of them fit, and none past it.
    pub fn space(&mut self) -> &mut [u8] {
        match &mut self.json {
            Some(json) => &mut json[self.have - FIXED..],
            None => &mut self.fixed[self.have..],
        }
    }

    /// Bytes of the header read so far.
    pub fn read(&self) -> usize {
        self.have
    }

    /// Takes `n` bytes just read into `space()`: the header once whole and checked, None while more is due, or
    /// why it is refused (as soon as what has arrived shows it).
    pub fn advance(&mut self, n: usize) -> Result<Option<StreamHeader>, HeaderError> {
        let room = self.space().len();
        assert!(n <= room, "advance({n}) past the {room} bytes of space given");
        self.have += n;
        let magic = self.have.min(MAGIC.len());
        if self.fixed[..magic] != MAGIC[..magic] {
            return Err(HeaderError::BadMagic);
        }
        if self.have < FIXED {
            return Ok(None);
        }
        let json = match &mut self.json {
            Some(json) => json,
            None => {
                let version = u16::from_be_bytes([self.fixed[8], self.fixed[9]]);
                if version != PROTOCOL_VERSION {
                    return Err(HeaderError::Version(version));
                }
                let len = u16::from_be_bytes([self.fixed[10], self.fixed[11]]) as usize;
                if len > MAX_HEADER_BYTES {
                    return Err(HeaderError::TooLong(len));
                }
                self.json.insert(vec![0u8; len])
            }
        };
        if self.have < FIXED + json.len() {
            return Ok(None);
        }
        let header: StreamHeader = serde_json::from_slice(json).map_err(|e| HeaderError::Malformed(e.to_string()))?;
        check_header(&header)?;
        Ok(Some(header))
    }
}

/// What a parsed header must hold before either side computes anything from it.
fn check_header(header: &StreamHeader) -> Result<(), HeaderError> {
    let plan = &header.plan;
    let bad = |why: String| Err(HeaderError::Malformed(why));
    if plan.streams == 0 || plan.streams > MAX_STREAMS || plan.index >= plan.streams {
        return bad(format!(
            "stream {} of {} (at most {MAX_STREAMS} streams)",
            plan.index, plan.streams
        ));
    }
    if plan.chunk_bytes == 0 {
        return bad("chunk of 0 bytes".into());
    }
    if plan.file_bytes > MAX_FILE_BYTES {
        return bad(format!(
            "a file of {} bytes (at most {MAX_FILE_BYTES})",
            plan.file_bytes
        ));
    }
    if header.passes == 0 || header.passes > MAX_PASSES {
        return bad(format!("{} passes (from 1 to {MAX_PASSES})", header.passes));
    }
    if header.verify && header.seed.is_none() {
        return bad("verify asked without a fixture seed".into());
    }
    Ok(())
}

/// Writes one value as one line of JSON.
pub fn write_line<T: Serialize>(w: &mut impl Write, value: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// Reads one line of JSON of at most MAX_LINE_BYTES.
pub fn read_line<T: for<'de> Deserialize<'de>>(r: &mut impl BufRead) -> io::Result<T> {
    let mut line = Vec::new();
    r.take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the connection without answering",
        ));
    }
    serde_json::from_slice(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad reply: {e}")))
}

/// Reads the ack of a header just sent: the sink's answer, or why there was none.
pub fn read_ack(reader: &mut impl BufRead) -> anyhow::Result<Ack> {
    let ack: Ack = read_line(reader).map_err(|e| match e.kind() {
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
    if ack.version != PROTOCOL_VERSION {
        anyhow::bail!(
            "the sink speaks protocol version {} and this sender version {}; run the same xferbench release on \
             both hosts{}",
            ack.version,
            PROTOCOL_VERSION,
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

    fn plan(size: u64, chunk: u64, layout: Layout, streams: u32, index: u32) -> StreamPlan {
        StreamPlan {
            file_bytes: size,
            chunk_bytes: chunk,
            layout,
            streams,
            index,
        }
    }

    #[test]
    fn streams_cover_the_file_exactly_once() {
        for layout in [Layout::Striped, Layout::Contiguous] {
            for (size, chunk, n) in [
                (1000u64, 64u64, 3u32),
                (10_000_000, 1 << 20, 10),
                (4096, 4096, 1),
                (5, 1, 5),
            ] {
                let mut seen: Vec<Range<u64>> = (0..n).flat_map(|k| plan(size, chunk, layout, n, k).ranges()).collect();
                let total: u64 = (0..n).map(|k| plan(size, chunk, layout, n, k).total_bytes()).sum();
                assert_eq!(total, size, "{layout:?} {size} {chunk} {n}");
                seen.sort_by_key(|r| r.start);
                let mut at = 0;
                for r in seen {
                    assert_eq!(r.start, at);
                    at = r.end;
                }
                assert_eq!(at, size);
            }
        }
    }

    #[test]
    fn striped_is_round_robin() {
        let p = plan(100, 10, Layout::Striped, 3, 1);
        let starts: Vec<u64> = p.ranges().map(|r| r.start).collect();
        assert_eq!(starts, vec![10, 40, 70]);
        assert_eq!(p.total_bytes(), 30);
        let last = plan(95, 10, Layout::Striped, 3, 0);
        assert_eq!(last.total_bytes(), 10 + 10 + 10 + 5);
    }

    #[test]
    fn header_round_trip_and_rejections() {
        let h = StreamHeader {
            run_id: "r".into(),
            case_id: "c".into(),
            plan: plan(10, 5, Layout::Single, 1, 0),
            seed: Some(1),
            verify: true,
            token: None,
            rx_mode: None,
            verify_on: None,
            passes: 3,
            pass_notices: false,
            tls: false,
            interval_ms: None,
            stall: None,
        };
        let mut buf = Vec::new();
        write_header(&mut buf, &h).unwrap();
        assert_eq!(read_header(&mut buf.as_slice()).unwrap(), h);

        let with_mode = StreamHeader {
            rx_mode: Some(RxMode::Trunc),
            verify_on: Some(VerifyOn::Thread),
            pass_notices: true,
            tls: true,
            ..h.clone()
        };
        let mut buf2 = Vec::new();
        write_header(&mut buf2, &with_mode).unwrap();
        assert_eq!(read_header(&mut buf2.as_slice()).unwrap(), with_mode);

        let mut bad = buf.clone();
        bad[0] = b'Y';
        assert!(matches!(read_header(&mut bad.as_slice()), Err(HeaderError::BadMagic)));
        let mut v2 = buf.clone();
        v2[9] = 9;
        assert!(matches!(read_header(&mut v2.as_slice()), Err(HeaderError::Version(9))));
        let mut v1 = buf.clone();
        v1[9] = 1;
        let e = read_header(&mut v1.as_slice()).unwrap_err().to_string();
        assert!(e.contains("version 1") && e.contains("version 2"), "{e}");
        let mut long = buf.clone();
        long[10] = 0xff;
        assert!(matches!(
            read_header(&mut long.as_slice()),
            Err(HeaderError::TooLong(_))
        ));
    }

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
            stalls: false,
        };
        write_line(&mut line, &ack).unwrap();
        line
    }

    #[test]
    fn acks_name_why_a_stream_was_refused() {
        let v = PROTOCOL_VERSION;
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
