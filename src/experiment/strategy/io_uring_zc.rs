//! `io-uring-send-zc`: sends from an mmap of the file with IORING_OP_SEND_ZC, io_uring's zero-copy send (kernel
//! 6.0), each flagged IORING_SEND_ZC_REPORT_USAGE (6.2) so that the kernel says whether it copied after all.
//!
//! Each call cuts its piece into up to `--queue-depth` sends (even parts of at least 64 KiB, page multiples) and
//! submits them as one linked chain (IOSQE_IO_LINK, MSG_WAITALL), so one io_uring_enter carries them all and the
//! kernel starts each send as the one before it completes, with no trip back to user space in between. Linking is
//! what keeps a TCP stream in order: unlinked sends on one socket may run in any order once one has to wait for
//! room, and a short send would leave a hole that a later send had already passed. With MSG_WAITALL the kernel
//! finishes a send that the socket took only part of by itself; one that still ends short (a signal, an error)
//! fails the chain, the sends after it are cancelled unsent, and the call returns the bytes that went in order, so
//! that `send_pass` asks again from the first byte that did not go.
//!
//! Every SEND_ZC completes twice: its result (bytes sent; IORING_CQE_F_MORE when a notification follows), then,
//! once the kernel has let go of the pages, its notification (IORING_CQE_F_NOTIF), whose result carries
//! IORING_NOTIF_USAGE_ZC_COPIED when the kernel copied the bytes after all (always so on loopback and veth, where
//! the receiving socket must own its bytes). A call waits for its chain's results only; notifications are taken
//! from the completion queue as they arrive, waited for only when too many are outstanding (the completion queue
//! must not overflow) or when the kernel refuses more memory (ENOMEM, ENOBUFS: locked-memory accounting of
//! unprivileged rings), and all of them at the end of a pass (`finish`).
//!
//! Counts, as `msg-zerocopy`: `zerocopy_sends` are sends that moved bytes and were notified, `zerocopy_copied`
//! those whose notification says copied, `user_copy_bytes` their bytes; `syscalls` are io_uring_enter calls.
//!
//! Falls back to `msg-zerocopy` (which itself falls back to `mmap-send`), recorded as the row's `path`, when
//! io_uring_setup fails, the kernel lacks timed waits or IORING_OP_SEND_ZC (probe), or a zero-length SEND_ZC with
//! IORING_SEND_ZC_REPORT_USAGE made while setting up is refused (EINVAL on 6.0 and 6.1): without the report a
//! copied send cannot be told from a zero-copy one, and the row would claim zero copies it cannot vouch for;
//! msg-zerocopy reports copies on every kernel that has it.
//!
//! `io-uring-send-zc-fixed` is the same ring with registered resources, as liburing's send-zerocopy example has
//! them: the file and the socket registered (IORING_REGISTER_FILES, named by index), and two page-aligned buffers
//! of one chunk each (at most 1 GiB, the kernel's limit per buffer) registered with IORING_REGISTER_BUFFERS, so
//! that the kernel pins and maps their pages once instead of once per send. The file's own mapping cannot be
//! registered: the kernel pins registered buffers writable and long-term, which it refuses for a read-only file
//! mapping (EFAULT), so each piece is read into the buffer whose turn it is (IORING_OP_READ_FIXED, a copy into
//! user memory, counted) and sent from it (SEND_ZC with `buf_index`), read and send linked in pairs, up to
//! `--queue-depth` pairs per chain. A buffer is read into again only once every send from it is notified, so that
//! the kernel never transmits pages that a later read is overwriting; the other buffer meanwhile carries the next
//! piece. Where the kernel refuses a registration (e.g. ENOMEM: an unprivileged process pins the buffers against
//! RLIMIT_MEMLOCK), the plain `io-uring-send-zc` runs, recorded as the row's `path`.

use super::io_uring::{errno_of, usable};
use super::mmap_send::Mapping;
use super::msg_zerocopy::MsgZerocopy;
use super::{CallStats, Fallback, Io, SendError, SendOptions, Transfer};
use crate::base::model::Method;
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use nix::errno::Errno;
use std::collections::HashMap;
use std::fs::File;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// From <linux/io_uring.h>; the io-uring crate keeps its copies private.
const IORING_SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
const IORING_NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;
/// The smallest part a piece is cut into: smaller sends cost more than the overlap gains.
const MIN_SEND: usize = 64 << 10;
const PAGE: usize = 4096;
/// How long one io_uring_enter waits before checking the deadline and the stop flag.
const WAIT: Duration = super::SEND_WAKEUP;
/// user_data of requests outside the ledger: the set-up probe and the cancel of a ring dropped mid-chain.
const PROBE: u64 = u64::MAX;
const CANCEL: u64 = u64::MAX - 1;
/// How long set-up waits for the probe's completions, and a dropped ring for its cancelled sends.
const SETUP_WAIT: Duration = Duration::from_secs(2);
/// How long a stream refused memory for a single page retries, for its siblings to give some back.
const STARVED_WAIT: Duration = Duration::from_secs(2);
/// user_data of the registered form's reads: this plus the read's place in its chain (sends are numbered from 0).
const READS: u64 = 1 << 62;
/// The kernel's limit on one registered buffer.
const MAX_BUFFER: u64 = 1 << 30;
/// From <linux/capability.h>: the capability to lock memory beyond RLIMIT_MEMLOCK.
const CAP_IPC_LOCK: u32 = 14;
/// The registered form's file table: the file, then the socket.
const FILE_SLOT: u32 = 0;
const SOCK_SLOT: u32 = 1;

pub enum IoUringSendZc {
    Ring(Box<Ring>),
    /// SEND_ZC (or its usage report) was not usable: msg-zerocopy runs, and `why` goes into the row's `path`.
    Fallback {
        zc: MsgZerocopy,
        why: String,
    },
}

pub struct Ring {
    ring: IoUring,
    /// The file's mapping; `None` in the registered form, and once `Drop` has had to leak it (see there).
    map: Option<Mapping>,
    /// The registered form's buffers (`io-uring-send-zc-fixed`); `None` in the plain form, and once leaked.
    fixed: Option<Box<Registered>>,
    /// Why the registered form was asked for and refused (this ring is then the plain one).
    refused: Option<String>,
    ledger: Ledger,
    /// Sends per chain (`--queue-depth`), and the largest single send: both shrink when the kernel refuses memory
    /// with nothing left to wait for (see `relieve`).
    depth: usize,
    max_send: usize,
    /// Since when chains of a single page have been refused memory, with nothing of this stream's outstanding.
    starved: Option<Instant>,
    /// Most sends unsettled at once (result or notification still to come): each can put two entries in the
    /// completion queue before they are reaped, so this is half its size.
    open_cap: usize,
}

/// `io-uring-send-zc-fixed`'s buffers: two of `half` bytes, one after the other in `buf`, registered as buffers
/// 0 and 1 and used in turn.
struct Registered {
    /// Held for its memory: only the kernel reads or writes these bytes once they are registered.
    _buf: crate::experiment::buffer::AlignedBuf,
    /// The address of `buf`'s first byte.
    base: usize,
    half: usize,
    /// The buffer the next chain reads into.
    turn: usize,
    /// The send ids of each buffer's last chain: it may be read into again once none of them is open.
    last: [std::ops::Range<u64>; 2],
    /// The results of the chain in flight's reads, in order.
    reads: Vec<Option<i32>>,
}

impl Registered {
    /// Where the result of read `id` goes, if `id` is one of the chain's reads.
    fn read_slot(&mut self, id: u64) -> Option<&mut Option<i32>> {
        id.checked_sub(READS).and_then(|i| self.reads.get_mut(i as usize))
    }
}

/// Why the registered form is not set up: the ring cannot run SEND_ZC as the plain form needs it (the plain form's
/// fallback), or the kernel refused a registration (the plain form runs, on this ring).
enum Refused {
    Ring(String),
    Registration(String, Box<IoUring>),
}

/// Registers `io-uring-send-zc-fixed`'s files and buffers with a ring: a parameter so that a test can make it fail.
///
/// # Safety
/// Each iovec must describe memory that stays allocated, and is used by nothing else, until the ring is dropped.
type Register = unsafe fn(&io_uring::Submitter<'_>, &[std::os::fd::RawFd], &[libc::iovec]) -> Result<(), String>;

/// The registration `io-uring-send-zc-fixed` runs: the files, then the buffers; the refusal in the kernel's words.
///
/// # Safety
/// As `Register`.
unsafe fn register(
    s: &io_uring::Submitter<'_>,
    fds: &[std::os::fd::RawFd],
    bufs: &[libc::iovec],
) -> Result<(), String> {
    s.register_files(fds)
        .map_err(|e| format!("IORING_REGISTER_FILES: {}", errno_of(&e)))?;
    // SAFETY: the caller's promise, as this function's.
    unsafe { s.register_buffers(bufs) }.map_err(|e| {
        let errno = errno_of(&e);
        let each = bufs.first().map_or(0, |b| b.iov_len as u64);
        let mut why = format!(
            "IORING_REGISTER_BUFFERS ({} x {}): {errno}",
            bufs.len(),
            crate::base::units::format_bytes(each)
        );
        if errno == Errno::ENOMEM && !holds_ipc_lock() {
            use nix::sys::resource::{Resource, getrlimit};
            if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_MEMLOCK) {
                why += &format!(" (RLIMIT_MEMLOCK {soft} bytes, no CAP_IPC_LOCK)");
            }
        }
        why
    })
}

/// Whether this thread may lock memory beyond RLIMIT_MEMLOCK (CAP_IPC_LOCK in its effective set): the kernel
/// then does not count registered buffers against the limit.
fn holds_ipc_lock() -> bool {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim().to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

impl IoUringSendZc {
    /// `io-uring-send-zc-fixed`: the ring with the file and `sock` registered and two registered buffers of one
    /// chunk each (at most 1 GiB), set up outside the timed section. Where the kernel cannot run SEND_ZC with its
    /// usage report, the same fallback as `new`; where it refuses a registration, the plain form, with the reason.
    pub fn fixed(file: &File, sock: &TcpStream, opts: &SendOptions) -> anyhow::Result<IoUringSendZc> {
        IoUringSendZc::fixed_with(file, sock, opts, register)
    }

    fn fixed_with(
        file: &File,
        sock: &TcpStream,
        opts: &SendOptions,
        register: Register,
    ) -> anyhow::Result<IoUringSendZc> {
        let depth = opts.queue_depth.max(1);
        Ok(match Ring::registered(file, sock, depth, opts.chunk_bytes, register)? {
            Ok(ring) => IoUringSendZc::Ring(Box::new(ring)),
            Err(Refused::Ring(why)) => IoUringSendZc::Fallback {
                zc: MsgZerocopy::new(file, sock)?,
                why,
            },
            // The plain form on the same ring (its submission queue, twice the depth, is more than the plain
            // chains fill): a second ring would count against the same locked-memory limit, and a dropped one
            // gives its share back only when its teardown ends, after this returns.
            Err(Refused::Registration(why, ring)) => {
                let mut plain = Ring::with(*ring, Some(Mapping::new(file)?), None, depth);
                plain.refused = Some(why);
                IoUringSendZc::Ring(Box::new(plain))
            }
        })
    }

    /// Maps the file, sets up a ring of `--queue-depth` entries and checks that SEND_ZC with its usage report
    /// runs on `sock` (set-up, outside the timed section); else builds the msg-zerocopy fallback.
    pub fn new(file: &File, sock: &TcpStream, opts: &SendOptions) -> anyhow::Result<IoUringSendZc> {
        let depth = opts.queue_depth.max(1);
        Ok(match Ring::new(Mapping::new(file)?, sock, depth) {
            Ok(ring) => IoUringSendZc::Ring(Box::new(ring)),
            Err(why) => IoUringSendZc::Fallback {
                zc: MsgZerocopy::new(file, sock)?,
                why,
            },
        })
    }
}

impl Transfer for IoUringSendZc {
    fn user_copies(&self) -> u64 {
        match self {
            // The registered form reads each piece into its buffers; the sends are counted per notification that
            // says copied.
            IoUringSendZc::Ring(r) if r.fixed.is_some() => 1,
            IoUringSendZc::Ring(_) => 0,
            IoUringSendZc::Fallback { zc, .. } => zc.user_copies(),
        }
    }

    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
        match self {
            IoUringSendZc::Ring(r) => r.send(io, offset, len),
            IoUringSendZc::Fallback { zc, .. } => zc.send(io, offset, len),
        }
    }

    fn finish(&mut self, io: &mut Io) -> Result<(), SendError> {
        match self {
            IoUringSendZc::Ring(r) => r.finish(io),
            IoUringSendZc::Fallback { zc, .. } => zc.finish(io),
        }
    }

    fn release_pages(&mut self) {
        match self {
            // The registered form maps nothing: its reads go through the page cache into its own buffers.
            IoUringSendZc::Ring(r) => {
                if let Some(map) = &r.map {
                    map.release_pages();
                }
            }
            IoUringSendZc::Fallback { zc, .. } => zc.release_pages(),
        }
    }

    fn fallback(&self) -> Option<Fallback> {
        match self {
            IoUringSendZc::Ring(r) => r
                .refused
                .as_ref()
                .and_then(|why| Fallback::to(Method::IoUringSendZc, why.clone())),
            IoUringSendZc::Fallback { zc, why } => match zc.refused() {
                None => Fallback::to(Method::MsgZerocopy, why.to_string()),
                Some(errno) => Fallback::to(Method::MmapSend, format!("{why}; SO_ZEROCOPY: {errno}")),
            },
        }
    }
}

impl Ring {
    fn new(map: Mapping, sock: &TcpStream, depth: u32) -> Result<Ring, String> {
        let mut ring = Ring::setup(depth)?;
        probe_usage_report(&mut ring, map.range(0, 0).map_err(|e| e.to_string())?.as_ptr(), sock)?;
        Ok(Ring::with(ring, Some(map), None, depth))
    }

    /// A ring of `entries` submission entries that can run SEND_ZC with timed waits.
    fn setup(entries: u32) -> Result<IoUring, String> {
        // Room for every send's two completions while many notifications are outstanding (a NIC notifies only
        // once the peer acknowledged the bytes).
        let cq_entries = (entries.saturating_mul(16)).clamp(256, 65536).next_power_of_two();
        let setup = IoUring::builder().setup_cqsize(cq_entries).build(entries);
        usable(setup, opcode::SendZc::CODE, "IORING_OP_SEND_ZC")
    }

    fn with(ring: IoUring, map: Option<Mapping>, fixed: Option<Box<Registered>>, depth: u32) -> Ring {
        let open_cap = (ring.params().cq_entries() / 2) as usize;
        Ring {
            ring,
            map,
            fixed,
            refused: None,
            ledger: Ledger::default(),
            depth: depth as usize,
            max_send: u32::MAX as usize & !(PAGE - 1),
            starved: None,
            open_cap: open_cap.max(depth as usize),
        }
    }

    /// The registered form: two buffers of one chunk (a page at least, 1 GiB at most) and a ring of twice `depth`
    /// entries (each send follows its read), with the file, `sock` and the buffers registered by `register`.
    fn registered(
        file: &File,
        sock: &TcpStream,
        depth: u32,
        chunk: u64,
        register: Register,
    ) -> anyhow::Result<Result<Ring, Refused>> {
        let half = (chunk.clamp(1, MAX_BUFFER) as usize).next_multiple_of(PAGE);
        let mut buf = crate::experiment::buffer::AlignedBuf::new(2 * half)?;
        let base = buf.as_mut_slice().as_mut_ptr() as usize;
        let mut ring = match Ring::setup(depth.saturating_mul(2)) {
            Ok(ring) => ring,
            Err(why) => return Ok(Err(Refused::Ring(why))),
        };
        if let Err(why) = probe_usage_report(&mut ring, base as *const u8, sock) {
            return Ok(Err(Refused::Ring(why)));
        }
        let bufs = [0, 1].map(|h| libc::iovec {
            iov_base: (base + h * half) as *mut libc::c_void,
            iov_len: half,
        });
        // SAFETY: both iovecs lie within `buf`, which the returned ring owns, uses for nothing else, and drops
        // only after the ring (fields drop in order; `Drop` leaks it while a read or send may still use it). A
        // refused registration registers no buffer, so the ring handed back for the plain form holds none.
        if let Err(why) = unsafe { register(&ring.submitter(), &[file.as_raw_fd(), sock.as_raw_fd()], &bufs) } {
            return Ok(Err(Refused::Registration(why, Box::new(ring))));
        }
        let fixed = Registered {
            _buf: buf,
            base,
            half,
            turn: 0,
            last: [0..0, 0..0],
            reads: Vec::new(),
        };
        Ok(Ok(Ring::with(ring, None, Some(Box::new(fixed)), depth)))
    }

    fn map(&self) -> &Mapping {
        self.map
            .as_ref()
            .expect("the mapping goes only when the ring is dropped")
    }

    /// Sends file bytes `offset..offset + len` as one linked chain; returns how many went, in order (at least one
    /// byte: transient refusals are waited out here).
    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
        if self.fixed.is_some() {
            return self.send_fixed(io, offset, len);
        }
        let sock = types::Fd(io.sock.as_raw_fd());
        loop {
            let lens = split(len, self.depth, self.max_send);
            self.make_room(io, lens.len())?;
            let total: usize = lens.iter().map(|&l| l as usize).sum();
            let base = self.map().range(offset, total)?.as_ptr();
            let first = self.ledger.next_id;
            let mut at = 0usize;
            let entries: Vec<squeue::Entry> = lens
                .iter()
                .enumerate()
                .map(|(i, &l)| {
                    // Within the range just checked: `at + l <= total`.
                    let buf = base.wrapping_add(at);
                    at += l as usize;
                    let entry = opcode::SendZc::new(sock, buf, l)
                        .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL)
                        .zc_flags(IORING_SEND_ZC_REPORT_USAGE)
                        .build()
                        .user_data(first + i as u64);
                    if i + 1 < lens.len() {
                        entry.flags(squeue::Flags::IO_LINK)
                    } else {
                        entry
                    }
                })
                .collect();
            // SAFETY: each entry points into the file's mapping, which stays mapped while the kernel may read
            // those addresses: this call returns only once every send of the chain has its result (a send reads
            // user addresses only until then; pages it still transmits from afterwards are held by the kernel's
            // own references, and `finish` waits for their notifications before a pass ends), and `Drop` cancels
            // and waits for any send still without a result, leaking the mapping rather than unmapping it under
            // one. The kernel only reads these bytes, so a file changed under the mapping cannot corrupt anything
            // here. The chain is at most `depth` entries, the submission queue's size, and the queue is empty
            // (every earlier chain was submitted by the io_uring_enter that waited for it).
            unsafe { self.ring.submission().push_multiple(&entries) }
                .map_err(|_| SendError::Setup("io_uring submission queue smaller than the chain".into()))?;
            self.ledger.open_chain(lens.len());
            let results = self.wait_chain(io)?;
            let (sent, stopped) = chain_outcome(&lens, &results)?;
            if sent > 0 {
                self.starved = None;
                // A failure after some bytes went shows again on the next call, from the first byte that did not.
                return Ok(sent as usize);
            }
            match stopped {
                Some(Errno::ENOMEM | Errno::ENOBUFS) => self.relieve(io)?,
                None | Some(Errno::EINTR | Errno::EAGAIN | Errno::ECANCELED) => io.ctl.check()?,
                Some(errno) => {
                    return Err(self.map().explain(SendError::Io {
                        call: "io_uring send_zc",
                        errno,
                    }));
                }
            }
        }
    }

    /// The registered form's call: reads file bytes `offset..offset + len` (at most one buffer) into the buffer
    /// whose turn it is, once every send from it is notified, and sends them from there, as one linked chain of
    /// read/send pairs; returns how many went, in order.
    fn send_fixed(&mut self, io: &mut Io, offset: u64, mut len: usize) -> Result<usize, SendError> {
        loop {
            let (h, half) = self
                .fixed
                .as_ref()
                .map(|r| (r.turn, r.half))
                .expect("the registered form");
            self.wait_buffer(io, h)?;
            let lens = split(len.min(half), self.depth, self.max_send);
            self.make_room(io, lens.len())?;
            let first = self.ledger.next_id;
            let reg = self.fixed.as_deref_mut().expect("the registered form");
            let start = reg.base + h * reg.half;
            let mut entries = Vec::with_capacity(2 * lens.len());
            let mut at = 0usize;
            for (i, &l) in lens.iter().enumerate() {
                // Within buffer `h`: the parts sum to at most `half` bytes.
                let buf = (start + at) as *mut u8;
                entries.push(
                    opcode::ReadFixed::new(types::Fixed(FILE_SLOT), buf, l, h as u16)
                        .offset(offset + at as u64)
                        .build()
                        .flags(squeue::Flags::IO_LINK)
                        .user_data(READS + i as u64),
                );
                let send = opcode::SendZc::new(types::Fixed(SOCK_SLOT), buf, l)
                    .buf_index(Some(h as u16))
                    .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL)
                    .zc_flags(IORING_SEND_ZC_REPORT_USAGE)
                    .build()
                    .user_data(first + i as u64);
                entries.push(if i + 1 < lens.len() {
                    send.flags(squeue::Flags::IO_LINK)
                } else {
                    send
                });
                at += l as usize;
            }
            // SAFETY: every read and send names registered buffer `h` within its bounds, memory the kernel pinned
            // at registration and that the ring owns until it is dropped (see `registered`); no send from buffer
            // `h` is still unnotified (`wait_buffer`), so the reads overwrite no byte the kernel may still
            // transmit, and Rust code never reads or writes the buffers. Each send follows its read in the chain
            // (IOSQE_IO_LINK: a short or failed read cancels the sends after it). The chain is at most `2 * depth`
            // entries, the submission queue's size, and the queue is empty (every earlier chain was submitted by
            // the io_uring_enter that waited for it).
            unsafe { self.ring.submission().push_multiple(&entries) }
                .map_err(|_| SendError::Setup("io_uring submission queue smaller than the chain".into()))?;
            self.ledger.open_chain(lens.len());
            reg.reads = vec![None; lens.len()];
            reg.last[h] = first..first + lens.len() as u64;
            reg.turn = 1 - h;
            let sends = self.wait_chain(io)?;
            let reads: Vec<i32> = self
                .fixed
                .as_ref()
                .map(|r| r.reads.iter().map(|r| r.unwrap_or(-libc::ECANCELED)).collect())
                .unwrap_or_default();
            let (sent, end) = pairs_outcome(&lens, &reads, &sends)?;
            if sent > 0 {
                self.starved = None;
                return Ok(sent as usize);
            }
            match end {
                PairsEnd::FileEnds => return Err(SendError::FileShrank(offset)),
                // The file holds fewer bytes here than asked: ask for those, so that the next call meets its end.
                PairsEnd::ReadShort(n) => len = n as usize,
                PairsEnd::Failed {
                    errno: Errno::ENOMEM | Errno::ENOBUFS,
                    ..
                } => self.relieve(io)?,
                PairsEnd::Whole
                | PairsEnd::SendShort
                | PairsEnd::Failed {
                    errno: Errno::EINTR | Errno::EAGAIN | Errno::ECANCELED,
                    ..
                } => io.ctl.check()?,
                PairsEnd::Failed { call, errno } => return Err(SendError::Io { call, errno }),
            }
        }
    }

    /// Waits until every send from registered buffer `h` is notified: the kernel holds none of its pages.
    fn wait_buffer(&mut self, io: &mut Io, h: usize) -> Result<(), SendError> {
        self.reap(io.stats);
        loop {
            let last = self.fixed.as_ref().map_or(0..0, |r| r.last[h].clone());
            if !last.into_iter().any(|id| self.ledger.open.contains_key(&id)) {
                return Ok(());
            }
            self.enter(io, 1)?;
            self.reap(io.stats);
        }
    }

    /// Waits for every result of the chain just pushed (submitting it with the first wait), taking notifications
    /// as they come; returns the sends' results in chain order (the registered form's reads are in `fixed`).
    fn wait_chain(&mut self, io: &mut Io) -> Result<Vec<i32>, SendError> {
        loop {
            self.reap(io.stats);
            let reads = self
                .fixed
                .as_ref()
                .map_or(0, |r| r.reads.iter().filter(|r| r.is_none()).count());
            let missing = self.ledger.chain.iter().filter(|r| r.is_none()).count() + reads;
            if missing == 0 && self.ring.submission().is_empty() {
                return Ok(self
                    .ledger
                    .chain
                    .iter()
                    .map(|r| r.unwrap_or(-libc::ECANCELED))
                    .collect());
            }
            self.enter(io, missing.max(1))?;
        }
    }

    /// Waits until `more` new sends fit beside the unsettled ones without overflowing the completion queue.
    fn make_room(&mut self, io: &mut Io, more: usize) -> Result<(), SendError> {
        self.reap(io.stats);
        while !self.ledger.open.is_empty() && self.ledger.open.len() + more > self.open_cap {
            self.enter(io, 1)?;
            self.reap(io.stats);
        }
        Ok(())
    }

    /// The kernel refused memory for a chain: an unprivileged ring counts the pages of every send against
    /// RLIMIT_MEMLOCK from the moment it is submitted until its notification. Wait for a notification to give
    /// some back; with none outstanding, make chains smaller (sends down to `MIN_SEND`, then fewer sends, then
    /// smaller sends down to a page) until one fits. The count is the user's, shared by every stream of a
    /// parallel case: one refused a single page may be waiting for its siblings' sends, so it retries for up to
    /// `STARVED_WAIT` before it calls the limit too small.
    fn relieve(&mut self, io: &mut Io) -> Result<(), SendError> {
        let holding = self.ledger.holding();
        if holding > 0 {
            while self.ledger.holding() == holding {
                self.enter(io, 1)?;
                self.reap(io.stats);
            }
            return Ok(());
        }
        let half = |n: usize| (n / 2).max(PAGE) & !(PAGE - 1);
        if self.max_send > MIN_SEND {
            self.max_send = half(self.max_send).max(MIN_SEND);
        } else if self.depth > 1 {
            self.depth /= 2;
        } else if self.max_send > PAGE {
            self.max_send = half(self.max_send);
        } else if self.starved.get_or_insert_with(Instant::now).elapsed() < STARVED_WAIT {
            std::thread::sleep(Duration::from_millis(1));
        } else {
            return Err(SendError::Io {
                call: "io_uring send_zc",
                errno: Errno::ENOMEM,
            });
        }
        io.ctl.check()
    }

    /// Waits for the notification of every send: the pass is whole, and the kernel holds none of the mapping's
    /// pages, when this returns.
    fn finish(&mut self, io: &mut Io) -> Result<(), SendError> {
        self.reap(io.stats);
        while !self.ledger.open.is_empty() {
            self.enter(io, 1)?;
            self.reap(io.stats);
        }
        Ok(())
    }

    /// One io_uring_enter: submits what is queued and waits for `want` completions, or `WAIT`, whichever first
    /// (then the case's limits are checked and the wait goes on, inside `Io::call`).
    fn enter(&mut self, io: &mut Io, want: usize) -> Result<(), SendError> {
        let ts = types::Timespec::from(WAIT);
        let args = types::SubmitArgs::new().timespec(&ts);
        let submitter = self.ring.submitter();
        io.call("io_uring_enter", || match submitter.submit_with_args(want, &args) {
            Ok(n) => Ok(n),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Err(Errno::EAGAIN),
            Err(e) => Err(errno_of(&e)),
        })?;
        Ok(())
    }

    /// Takes every completion queued, into the ledger.
    fn reap(&mut self, stats: &mut CallStats) {
        let Ring {
            ring, ledger, fixed, ..
        } = self;
        for cqe in ring.completion() {
            let (id, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            if let Some(slot) = fixed.as_deref_mut().and_then(|r| r.read_slot(id)) {
                *slot = Some(res);
            } else if cqueue::notif(flags) {
                ledger.notified(id, res, stats);
            } else {
                ledger.resulted(id, res, cqueue::more(flags), stats);
            }
        }
    }
}

impl Drop for Ring {
    /// A stream stopped mid-chain (a timeout, the stop flag, a failed sibling) can leave sends queued in the
    /// kernel that would still read the mapping (or read into and send from the registered buffers): cancel them
    /// and wait for their results before the memory goes. Should any still be unfinished after `SETUP_WAIT`, the
    /// mapping or the buffers are leaked, never released under them.
    fn drop(&mut self) {
        if self.ledger.in_flight() == 0 {
            return;
        }
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(CANCEL);
        // SAFETY: a cancel request refers to no memory of ours.
        if unsafe { self.ring.submission().push(&cancel) }.is_ok() {
            let ts = types::Timespec::from(Duration::from_millis(100));
            let args = types::SubmitArgs::new().timespec(&ts);
            let mut stats = CallStats::default();
            let end = Instant::now() + SETUP_WAIT;
            while self.ledger.in_flight() > 0 && Instant::now() < end {
                let _ = self.ring.submitter().submit_with_args(1, &args);
                self.reap(&mut stats);
            }
        }
        if self.ledger.in_flight() > 0 {
            std::mem::forget(self.map.take());
            std::mem::forget(self.fixed.take());
        }
    }
}

/// Checks, while setting up, that SEND_ZC with IORING_SEND_ZC_REPORT_USAGE runs on `sock`: a zero-length send
/// (from `buf`, which it does not read), which puts nothing on the wire, and its notification.
fn probe_usage_report(ring: &mut IoUring, buf: *const u8, sock: &TcpStream) -> Result<(), String> {
    let entry = opcode::SendZc::new(types::Fd(sock.as_raw_fd()), buf, 0)
        .flags(libc::MSG_NOSIGNAL)
        .zc_flags(IORING_SEND_ZC_REPORT_USAGE)
        .build()
        .user_data(PROBE);
    // SAFETY: the send covers zero bytes, so the kernel reads no memory through its pointer.
    unsafe { ring.submission().push(&entry) }.map_err(|_| "io_uring submission queue full".to_string())?;
    let ts = types::Timespec::from(Duration::from_millis(100));
    let args = types::SubmitArgs::new().timespec(&ts);
    let end = Instant::now() + SETUP_WAIT;
    let (mut result, mut notif_due, mut notified) = (None, false, false);
    while result.is_none() || (notif_due && !notified) {
        if Instant::now() >= end {
            return Err("IORING_OP_SEND_ZC: no completion of a zero-length send within 2 s".to_string());
        }
        match ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
            Err(e) => return Err(format!("io_uring_enter: {}", errno_of(&e))),
        }
        for cqe in ring.completion() {
            if cqueue::notif(cqe.flags()) {
                notified = true;
            } else {
                result = Some(cqe.result());
                notif_due = cqueue::more(cqe.flags());
            }
        }
    }
    match result {
        Some(r) if r >= 0 => Ok(()),
        Some(r) if r == -libc::EINVAL => {
            Err("IORING_SEND_ZC_REPORT_USAGE refused (EINVAL; kernel before 6.2): copies could not be counted".into())
        }
        Some(r) => Err(format!("IORING_OP_SEND_ZC: {}", Errno::from_raw(-r))),
        None => unreachable!("the loop ends only with a result"),
    }
}

/// Cuts `len` bytes into at most `depth` sends of at least `MIN_SEND` (unless `len` is smaller), even parts
/// rounded up to whole pages, none over `max_send`; the parts may cover less than `len` when `depth` sends of
/// `max_send` do not reach (the caller is asked again for the rest).
fn split(len: usize, depth: usize, max_send: usize) -> Vec<u32> {
    let max_send = max_send.clamp(1, u32::MAX as usize);
    let parts = len.div_ceil(MIN_SEND).clamp(1, depth.max(1));
    let part = len.div_ceil(parts).next_multiple_of(PAGE).min(max_send);
    let mut lens = Vec::with_capacity(parts);
    let mut left = len;
    while left > 0 && lens.len() < depth.max(1) {
        let l = left.min(part);
        lens.push(l as u32);
        left -= l;
    }
    lens
}

/// What a linked chain moved, from its results in submission order: the bytes that went, all from its front, and
/// the error that stopped it short, if one did (none for a short send without one, or a chain that went whole).
/// A chain that failed as a whole (a send refused while it was prepared fails every send linked with it) reports
/// ECANCELED for the sends before the refused one: the refusal is the cause reported. A send that ran after one
/// that stopped short would have broken the stream's order: that is an error.
fn chain_outcome(lens: &[u32], results: &[i32]) -> Result<(u64, Option<Errno>), SendError> {
    let mut sent = 0u64;
    let mut stopped: Option<Option<Errno>> = None;
    for (&len, &res) in lens.iter().zip(results) {
        match stopped {
            Some(_) if res > 0 => {
                return Err(SendError::Setup(
                    "io_uring ran a send past one that stopped short: the stream would be out of order".into(),
                ));
            }
            Some(Some(Errno::ECANCELED)) if res < 0 && res != -libc::ECANCELED => {
                stopped = Some(Some(Errno::from_raw(-res)));
            }
            Some(_) => {}
            None if res < 0 => stopped = Some(Some(Errno::from_raw(-res))),
            None if res as u32 > len => {
                return Err(SendError::Setup(format!(
                    "io_uring send_zc reported {res} bytes of {len}"
                )));
            }
            None => {
                sent += res as u64;
                if (res as u32) < len {
                    stopped = Some(None);
                }
            }
        }
    }
    Ok((sent, stopped.flatten()))
}

/// How a chain of read/send pairs ended, besides the bytes it sent in order from its front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairsEnd {
    /// Every read and send went whole.
    Whole,
    /// A send stopped short without an error: the call asks again from the first byte that did not go.
    SendShort,
    /// A read found this many bytes where it asked for more: the file ends there.
    ReadShort(u32),
    /// A read found the end of the file where the sent bytes end.
    FileEnds,
    Failed {
        call: &'static str,
        errno: Errno,
    },
}

/// What a chain of read/send pairs moved, from their results in submission order: the bytes sent, all from the
/// front, and how it ended. Pair i's send goes only if its read filled its part whole (a short read fails the link
/// and the kernel cancels what follows); a send from a part its read did not fill would put stale bytes on the
/// wire: that is an error. A chain cancelled as a whole reports the refusal that cancelled it, as `chain_outcome`.
fn pairs_outcome(lens: &[u32], reads: &[i32], sends: &[i32]) -> Result<(u64, PairsEnd), SendError> {
    let filled = lens
        .iter()
        .zip(reads)
        .take_while(|&(&l, &r)| r >= 0 && r as u32 == l)
        .count();
    if sends.iter().skip(filled).any(|&s| s > 0) {
        return Err(SendError::Setup(
            "io_uring sent from a buffer its read had not filled: the stream would be wrong".into(),
        ));
    }
    let (sent, stopped) = chain_outcome(&lens[..filled], &sends[..filled])?;
    let front: u64 = lens[..filled].iter().map(|&l| u64::from(l)).sum();
    if let Some(errno) = stopped {
        return Ok((
            sent,
            PairsEnd::Failed {
                call: "io_uring send_zc",
                errno,
            },
        ));
    }
    if sent < front {
        return Ok((sent, PairsEnd::SendShort));
    }
    let Some(&read) = reads.get(filled) else {
        return Ok((sent, PairsEnd::Whole));
    };
    let end = match read {
        0 => PairsEnd::FileEnds,
        r if r > 0 => PairsEnd::ReadShort(r as u32),
        r if r != -libc::ECANCELED => PairsEnd::Failed {
            call: "io_uring read_fixed",
            errno: Errno::from_raw(-r),
        },
        // Cancelled as a whole: the first refusal after it is the cause.
        _ => reads
            .iter()
            .zip(sends)
            .skip(filled)
            .flat_map(|(&r, &s)| [("io_uring read_fixed", r), ("io_uring send_zc", s)])
            .find(|&(_, res)| res < 0 && res != -libc::ECANCELED)
            .map_or(
                PairsEnd::Failed {
                    call: "io_uring read_fixed",
                    errno: Errno::ECANCELED,
                },
                |(call, res)| PairsEnd::Failed {
                    call,
                    errno: Errno::from_raw(-res),
                },
            ),
    };
    Ok((sent, end))
}

/// Every send not yet settled, by user_data, and the results of the chain in flight. Sends are numbered on across
/// chains and passes; each pass ends with the ledger empty.
#[derive(Default)]
struct Ledger {
    next_id: u64,
    open: HashMap<u64, Open>,
    /// The chain in flight: its first id and each send's result once in.
    chain_first: u64,
    chain: Vec<Option<i32>>,
}

/// What has come of one send: its result, and its notification's copied bit when that came first.
#[derive(Default)]
struct Open {
    result: Option<i32>,
    copied: Option<bool>,
}

impl Ledger {
    /// Numbers a chain of `n` sends and opens each; returns the first number.
    fn open_chain(&mut self, n: usize) -> u64 {
        let first = self.next_id;
        self.next_id += n as u64;
        self.chain_first = first;
        self.chain = vec![None; n];
        self.open
            .extend((first..first + n as u64).map(|id| (id, Open::default())));
        first
    }

    /// Sends still without a result: the kernel may still read their bytes through the mapping.
    fn in_flight(&self) -> usize {
        self.open.values().filter(|o| o.result.is_none()).count()
    }

    /// Sends that moved bytes and are not yet notified: the kernel still holds their pages.
    fn holding(&self) -> usize {
        self.open.values().filter(|o| o.result.is_some_and(|r| r > 0)).count()
    }

    /// A send's result; `more` when its notification is to follow.
    fn resulted(&mut self, id: u64, res: i32, more: bool, stats: &mut CallStats) {
        if let Some(slot) = id
            .checked_sub(self.chain_first)
            .and_then(|i| self.chain.get_mut(i as usize))
        {
            *slot = Some(res);
        }
        let Some(open) = self.open.get_mut(&id) else {
            return;
        };
        open.result = Some(res);
        match (more, open.copied) {
            (false, _) => {
                self.open.remove(&id);
            }
            (true, Some(copied)) => self.settle(id, res, copied, stats),
            (true, None) => {}
        }
    }

    /// A send's notification: the kernel let go of its pages.
    fn notified(&mut self, id: u64, res: i32, stats: &mut CallStats) {
        let copied = res as u32 & IORING_NOTIF_USAGE_ZC_COPIED != 0;
        let Some(open) = self.open.get_mut(&id) else {
            return;
        };
        match open.result {
            Some(sent) => self.settle(id, sent, copied, stats),
            None => open.copied = Some(copied),
        }
    }

    /// Counts a send whose result and notification are both in. A send that moved nothing (cancelled behind a
    /// short one, or failed) is notified too, flagged copied since it used no page: it is not counted.
    fn settle(&mut self, id: u64, sent: i32, copied: bool, stats: &mut CallStats) {
        self.open.remove(&id);
        if sent > 0 {
            stats.zerocopy_sends += 1;
            if copied {
                stats.zerocopy_copied += 1;
                stats.user_copy_bytes += sent as u64;
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::base::model::Layout;
    use crate::experiment::strategy::send_pass;
    use crate::experiment::strategy::tests::io_on;
    use crate::experiment::wire::StreamPlan;
    use std::io::{Read, Write};

    /// A file of `len` bytes that no two offsets' patterns confuse.
    pub(in crate::experiment::strategy) fn file_of(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&bytes).unwrap();
        (f, bytes)
    }

    /// Sends one pass of `file` (chunks of `chunk`) through `make`'s transfer to a local reader; returns the
    /// transfer, what arrived and the counts.
    pub(in crate::experiment::strategy) fn one_pass<T: Transfer>(
        file: &File,
        chunk: u64,
        make: impl FnOnce(&File, &TcpStream) -> T,
    ) -> (T, Vec<u8>, CallStats) {
        one_pass_with(file, chunk, None, make)
    }

    /// As `one_pass`; with `tight`, the sender's socket buffer is that small and the reader takes 4 KiB at a
    /// time, so that sends wait for room again and again.
    pub(in crate::experiment::strategy) fn one_pass_with<T: Transfer>(
        file: &File,
        chunk: u64,
        tight: Option<usize>,
        make: impl FnOnce(&File, &TcpStream) -> T,
    ) -> (T, Vec<u8>, CallStats) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        if let Some(bytes) = tight {
            nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::SndBuf, &bytes).unwrap();
        }
        let (mut peer, _) = listener.accept().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = vec![0u8; if tight.is_some() { 4096 } else { 1 << 20 }];
            loop {
                match peer.read(&mut buf).unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let mut t = make(file, &sock);
        let plan = StreamPlan {
            file_bytes: file.metadata().unwrap().len(),
            chunk_bytes: chunk,
            layout: Layout::Single,
            streams: 1,
            index: 0,
        };
        let (sent, stats) = io_on(&sock, Duration::from_secs(60), |io| send_pass(&mut t, io, &plan));
        sent.unwrap();
        sock.shutdown(std::net::Shutdown::Write).unwrap();
        (t, reader.join().unwrap(), stats)
    }

    #[test]
    fn the_ring_sends_every_byte_in_order_and_counts_each_notification() {
        let (f, bytes) = file_of(3_000_001);
        let opts = SendOptions {
            chunk_bytes: 999_999,
            queue_depth: 4,
        };
        let (t, got, stats) = one_pass(f.as_file(), opts.chunk_bytes, |file, sock| {
            IoUringSendZc::new(file, sock, &opts).unwrap()
        });
        assert!(got == bytes, "the bytes arrived changed or out of order");
        assert_eq!(stats.bytes, bytes.len() as u64);
        if let Some(path) = t.fallback() {
            eprintln!(
                "SEND_ZC not usable here, the fallback ran: {} ({})",
                path.method, path.reason
            );
            return;
        }
        // Four pieces of up to four sends each (more, smaller ones where an unprivileged ring runs short of
        // locked memory); every send notified, and on loopback every one copied.
        assert!(stats.zerocopy_sends >= 4, "{}", stats.zerocopy_sends);
        assert_eq!(stats.zerocopy_copied, stats.zerocopy_sends);
        assert_eq!(stats.user_copy_bytes, bytes.len() as u64);
        assert!(stats.syscalls >= 4, "one io_uring_enter per piece at least");
        let IoUringSendZc::Ring(ring) = &t else { unreachable!() };
        assert!(ring.ledger.open.is_empty(), "finish left sends unsettled");
    }

    #[test]
    fn a_tight_socket_buffer_keeps_the_stream_in_order() {
        let (f, bytes) = file_of(4 << 20);
        let opts = SendOptions {
            chunk_bytes: 1 << 20,
            queue_depth: 8,
        };
        let (t, got, stats) = one_pass_with(f.as_file(), opts.chunk_bytes, Some(4096), |file, sock| {
            IoUringSendZc::new(file, sock, &opts).unwrap()
        });
        assert!(got == bytes, "the bytes arrived changed or out of order");
        if t.fallback().is_none() {
            assert_eq!(stats.zerocopy_copied, stats.zerocopy_sends);
            assert_eq!(stats.user_copy_bytes, bytes.len() as u64);
        }
    }

    #[test]
    fn a_stream_stopped_mid_chain_cancels_its_sends_when_dropped() {
        let (f, _) = file_of(64 << 20);
        type Make = fn(&File, &TcpStream, &SendOptions) -> anyhow::Result<IoUringSendZc>;
        for make in [IoUringSendZc::new as Make, IoUringSendZc::fixed] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let sock = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            // The peer never reads: the chain waits for room until the deadline.
            let (_peer, _) = listener.accept().unwrap();
            let opts = SendOptions {
                chunk_bytes: 64 << 20,
                queue_depth: 4,
            };
            let mut t = make(f.as_file(), &sock, &opts).unwrap();
            if t.fallback().is_some() {
                continue;
            }
            let (sent, _) = io_on(&sock, Duration::from_millis(300), |io| t.send(io, 0, 64 << 20));
            assert_eq!(sent, Err(SendError::TimedOut));
            let IoUringSendZc::Ring(ring) = &t else { unreachable!() };
            assert!(ring.ledger.in_flight() > 0);
            let start = Instant::now();
            drop(t);
            assert!(start.elapsed() < SETUP_WAIT, "the cancelled sends did not complete");
        }
    }

    #[test]
    fn the_registered_form_reads_into_its_buffers_and_sends_every_byte_in_order() {
        let (f, bytes) = file_of(3_000_001);
        let opts = SendOptions {
            chunk_bytes: 999_999,
            queue_depth: 4,
        };
        let (t, got, stats) = one_pass(f.as_file(), opts.chunk_bytes, |file, sock| {
            IoUringSendZc::fixed(file, sock, &opts).unwrap()
        });
        assert!(got == bytes, "the bytes arrived changed or out of order");
        assert_eq!(stats.bytes, bytes.len() as u64);
        if let Some(path) = t.fallback() {
            eprintln!(
                "the registered form did not run here: {} ({})",
                path.method, path.reason
            );
            return;
        }
        let IoUringSendZc::Ring(ring) = &t else { unreachable!() };
        let reg = ring.fixed.as_ref().expect("the registered form ran");
        assert!(ring.map.is_none(), "the registered form maps nothing");
        // Two buffers of one chunk, in whole pages; four pieces, so each buffer was read into twice.
        assert_eq!(reg.half, 1_003_520);
        assert_eq!(reg.turn, 0);
        assert!(ring.ledger.open.is_empty(), "finish left sends unsettled");
        // Every byte was read into a buffer (one copy), and on loopback every send was copied again.
        assert_eq!(t.user_copies(), 1);
        assert!(stats.zerocopy_sends >= 4, "{}", stats.zerocopy_sends);
        assert_eq!(stats.zerocopy_copied, stats.zerocopy_sends);
        assert_eq!(stats.user_copy_bytes, 2 * bytes.len() as u64);
        assert!(stats.syscalls >= 4, "one io_uring_enter per piece at least");
    }

    #[test]
    fn the_registered_form_keeps_order_through_a_tight_socket_buffer() {
        let (f, bytes) = file_of(4 << 20);
        let opts = SendOptions {
            chunk_bytes: 256 << 10,
            queue_depth: 8,
        };
        let (t, got, _) = one_pass_with(f.as_file(), opts.chunk_bytes, Some(4096), |file, sock| {
            IoUringSendZc::fixed(file, sock, &opts).unwrap()
        });
        assert!(got == bytes, "the bytes arrived changed or out of order");
        assert_eq!(t.fallback(), None);
    }

    /// Registers the files twice, no buffer: the kernel refuses the second IORING_REGISTER_FILES with EBUSY.
    ///
    /// # Safety
    /// None needed: no buffer is registered. `unsafe` only to be a `Register`.
    unsafe fn register_files_twice(
        s: &io_uring::Submitter<'_>,
        fds: &[std::os::fd::RawFd],
        _bufs: &[libc::iovec],
    ) -> Result<(), String> {
        s.register_files(fds)
            .and_then(|()| s.register_files(fds))
            .map_err(|e| format!("IORING_REGISTER_FILES: {}", errno_of(&e)))
    }

    #[test]
    fn a_refused_registration_runs_the_plain_form_and_says_why() {
        let (f, bytes) = file_of(1 << 20);
        let opts = SendOptions {
            chunk_bytes: 256 << 10,
            queue_depth: 4,
        };
        let (t, got, stats) = one_pass(f.as_file(), opts.chunk_bytes, |file, sock| {
            IoUringSendZc::fixed_with(file, sock, &opts, register_files_twice).unwrap()
        });
        assert!(got == bytes);
        let IoUringSendZc::Ring(ring) = &t else {
            eprintln!("SEND_ZC not usable here: {:?}", t.fallback());
            return;
        };
        assert!(ring.fixed.is_none() && ring.map.is_some(), "the plain form runs");
        assert_eq!(
            t.fallback(),
            Fallback::to(
                Method::IoUringSendZc,
                "IORING_REGISTER_FILES: EBUSY: Device or resource busy"
            )
        );
        assert_eq!(t.user_copies(), 0);
        assert_eq!(stats.user_copy_bytes, bytes.len() as u64, "loopback copies every send");
    }

    #[test]
    fn the_registered_form_meets_a_file_cut_short_as_file_changed() {
        let (f, _) = file_of(1 << 20);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let reader = std::thread::spawn(move || std::io::copy(&mut peer, &mut std::io::sink()).unwrap());
        let opts = SendOptions {
            chunk_bytes: 1 << 20,
            queue_depth: 8,
        };
        let mut t = IoUringSendZc::fixed(f.as_file(), &sock, &opts).unwrap();
        if t.fallback().is_some() {
            return;
        }
        // Cut inside the second of four parts: its read comes back short and the kernel cancels its send.
        f.as_file().set_len(300_000).unwrap();
        let plan = StreamPlan {
            file_bytes: 1 << 20,
            chunk_bytes: 1 << 20,
            layout: Layout::Single,
            streams: 1,
            index: 0,
        };
        let (sent, stats) = io_on(&sock, Duration::from_secs(60), |io| send_pass(&mut t, io, &plan));
        assert_eq!(sent, Err(SendError::FileShrank(300_000)));
        assert_eq!(
            stats.bytes, 300_000,
            "every byte the file still had went, none past its end"
        );
        drop(t);
        sock.shutdown(std::net::Shutdown::Both).unwrap();
        assert_eq!(reader.join().unwrap(), 300_000);
    }

    #[test]
    fn a_chain_of_pairs_sends_only_what_its_reads_filled() {
        let lens = [100, 100, 100];
        let whole = [100, 100, 100];
        let cancelled = [-libc::ECANCELED; 3];
        assert_eq!(pairs_outcome(&lens, &whole, &whole).unwrap(), (300, PairsEnd::Whole));
        // A short send: the sends after it were cancelled (their reads may have run).
        assert_eq!(
            pairs_outcome(&lens, &whole, &[100, 40, -libc::ECANCELED]).unwrap(),
            (140, PairsEnd::SendShort)
        );
        // The second read found the end of the file after 30 bytes: its send never ran.
        assert_eq!(
            pairs_outcome(
                &lens,
                &[100, 30, -libc::ECANCELED],
                &[100, -libc::ECANCELED, -libc::ECANCELED]
            )
            .unwrap(),
            (100, PairsEnd::ReadShort(30))
        );
        assert_eq!(
            pairs_outcome(&lens, &[0, -libc::ECANCELED, -libc::ECANCELED], &cancelled).unwrap(),
            (0, PairsEnd::FileEnds)
        );
        assert_eq!(
            pairs_outcome(
                &lens,
                &[100, -libc::EIO, -libc::ECANCELED],
                &[100, -libc::ECANCELED, -libc::ECANCELED]
            )
            .unwrap(),
            (
                100,
                PairsEnd::Failed {
                    call: "io_uring read_fixed",
                    errno: Errno::EIO
                }
            )
        );
        assert_eq!(
            pairs_outcome(&lens, &whole, &[100, -libc::ECONNRESET, -libc::ECANCELED]).unwrap(),
            (
                100,
                PairsEnd::Failed {
                    call: "io_uring send_zc",
                    errno: Errno::ECONNRESET
                }
            )
        );
        // Refused as a whole while being prepared: the refusal is the cause.
        assert_eq!(
            pairs_outcome(&lens, &cancelled, &[-libc::ECANCELED, -libc::ENOMEM, -libc::ECANCELED]).unwrap(),
            (
                0,
                PairsEnd::Failed {
                    call: "io_uring send_zc",
                    errno: Errno::ENOMEM
                }
            )
        );
        // A send from a part its read had not filled would put stale bytes on the wire.
        assert!(pairs_outcome(&lens, &[100, 30, 100], &[100, 30, -libc::ECANCELED]).is_err());
        assert!(pairs_outcome(&lens, &[100, 100, 100], &[100, 40, 100]).is_err());
    }

    #[test]
    fn the_fallback_sends_through_msg_zerocopy_and_says_why() {
        let (f, bytes) = file_of(1 << 20);
        let (t, got, stats) = one_pass(f.as_file(), 256 << 10, |file, sock| IoUringSendZc::Fallback {
            zc: MsgZerocopy::new(file, sock).unwrap(),
            why: "IORING_OP_SEND_ZC not supported".to_string(),
        });
        assert!(got == bytes);
        let path = t.fallback().unwrap();
        if t.user_copies() == 0 {
            assert_eq!(
                path,
                Fallback::to(Method::MsgZerocopy, "IORING_OP_SEND_ZC not supported").unwrap()
            );
            assert!(stats.zerocopy_sends > 0);
        } else {
            assert_eq!(path.method, Method::MmapSend);
            assert!(
                path.reason
                    .starts_with("IORING_OP_SEND_ZC not supported; SO_ZEROCOPY: ")
            );
        }
    }

    #[test]
    fn pieces_split_evenly_into_page_multiples_within_the_depth() {
        assert_eq!(split(10 << 20, 8, usize::MAX), vec![1_310_720; 8]);
        // Small pieces are not cut below MIN_SEND.
        assert_eq!(split(100_000, 8, usize::MAX), vec![53_248, 46_752]);
        assert_eq!(split(5, 8, usize::MAX), vec![5]);
        assert_eq!(split(1 << 20, 1, usize::MAX), vec![1 << 20]);
        // A cap on the send size: the chain covers what depth sends of it reach.
        assert_eq!(split(1 << 20, 2, 64 << 10), vec![64 << 10; 2]);
        for (len, depth) in [(3_000_001, 4), (999_999, 3), (65_537, 8), (1, 1)] {
            let lens = split(len, depth, usize::MAX);
            assert_eq!(lens.iter().map(|&l| l as usize).sum::<usize>(), len, "{len}/{depth}");
            assert!(lens.len() <= depth && lens.iter().all(|&l| l > 0), "{lens:?}");
        }
    }

    #[test]
    fn a_chain_counts_only_its_in_order_front() {
        let lens = [100, 100, 100];
        assert_eq!(chain_outcome(&lens, &[100, 100, 100]).unwrap(), (300, None));
        // Short in the middle: the rest were cancelled; the call resumes at byte 140.
        assert_eq!(chain_outcome(&lens, &[100, 40, -libc::ECANCELED]).unwrap(), (140, None));
        // A failure after some bytes went: those count, the error shows on the next call.
        assert_eq!(
            chain_outcome(&lens, &[100, -libc::ECONNRESET, -libc::ECANCELED]).unwrap(),
            (100, Some(Errno::ECONNRESET))
        );
        assert_eq!(
            chain_outcome(&lens, &[-libc::ENOMEM, -libc::ECANCELED, -libc::ECANCELED]).unwrap(),
            (0, Some(Errno::ENOMEM))
        );
        // A chain refused while being prepared: the sends before the refused one read ECANCELED.
        assert_eq!(
            chain_outcome(&lens, &[-libc::ECANCELED, -libc::ENOMEM, -libc::ENOMEM]).unwrap(),
            (0, Some(Errno::ENOMEM))
        );
        assert_eq!(
            chain_outcome(&lens, &[100, -libc::ECANCELED, -libc::ECANCELED]).unwrap(),
            (100, Some(Errno::ECANCELED))
        );
        // A send that ran past a short one broke the stream's order.
        assert!(chain_outcome(&lens, &[100, 40, 100]).is_err());
        assert!(chain_outcome(&lens, &[101, 0, 0]).is_err());
    }

    #[test]
    fn the_ledger_counts_notified_sends_in_either_order() {
        let mut stats = CallStats::default();
        let mut l = Ledger::default();
        assert_eq!(l.open_chain(3), 0);
        assert_eq!(l.in_flight(), 3);
        // Send 0: result first, then a copied notification.
        l.resulted(0, 1000, true, &mut stats);
        assert_eq!(l.chain, vec![Some(1000), None, None]);
        l.notified(0, IORING_NOTIF_USAGE_ZC_COPIED as i32, &mut stats);
        // Send 1: the notification (not copied) before the result.
        l.notified(1, 0, &mut stats);
        assert_eq!(l.in_flight(), 2);
        l.resulted(1, 500, true, &mut stats);
        // Send 2: cancelled, notified, not counted.
        l.resulted(2, -libc::ECANCELED, true, &mut stats);
        l.notified(2, IORING_NOTIF_USAGE_ZC_COPIED as i32, &mut stats);
        assert!(l.open.is_empty());
        assert_eq!(
            (stats.zerocopy_sends, stats.zerocopy_copied, stats.user_copy_bytes),
            (2, 1, 1000)
        );
        // A result without IORING_CQE_F_MORE settles alone; ids run on across chains.
        assert_eq!(l.open_chain(1), 3);
        l.resulted(3, -libc::EINVAL, false, &mut stats);
        assert!(l.open.is_empty());
        // Completions of requests outside the ledger (probe, cancel) are ignored.
        l.resulted(CANCEL, 0, false, &mut stats);
        assert_eq!(stats.zerocopy_sends, 2);
    }
}
