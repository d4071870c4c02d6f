//! The sink's receive loop, per mode (copy, trunc, splice), and the content check it runs as bytes arrive.

use crate::base::model::{RxMode, VerifyOn};
use crate::experiment::buffer::AlignedBuf;
use crate::experiment::probe::Counters;
use crate::experiment::strategy::pipe::Pipe;
use crate::experiment::tls::Opener;
use crate::experiment::wire::{self, PassNotice, StreamPlan};
use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{SpliceFFlags, splice};
use nix::sys::socket::{MsgFlags, recv};
use std::net::TcpStream;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd};

/// Checks arriving bytes against the generator, following the stream's file ranges, pass after pass.
pub struct Check {
    pattern: crate::experiment::pattern::Pattern,
    ranges: Box<dyn Iterator<Item = Range<u64>> + Send>,
    current: Range<u64>,
    mismatch: Option<u64>,
    overflow: bool,
}

impl Check {
    pub fn new(seed: u64, plan: StreamPlan, passes: u32) -> Check {
        Check {
            pattern: crate::experiment::pattern::Pattern::new(seed),
            ranges: Box::new((0..passes).flat_map(move |_| plan.ranges())),
            current: 0..0,
            mismatch: None,
            overflow: false,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.mismatch.is_none() && !self.overflow {
            if self.current.is_empty() {
                match self.ranges.next() {
                    Some(r) => self.current = r,
                    None => {
                        self.overflow = true;
                        return;
                    }
                }
            }
            let take = ((self.current.end - self.current.start) as usize).min(data.len());
            self.mismatch = self.pattern.first_mismatch(self.current.start, &data[..take]);
            self.current.start += take as u64;
            data = &data[take..];
        }
    }
}

/// What one stream brought.
#[derive(Debug, Default)]
pub struct Received {
    pub bytes: u64,
    pub calls: u64,
    pub verified: bool,
    pub mismatch_offset: Option<u64>,
    pub first_byte_ns: Option<u64>,
    pub last_byte_ns: Option<u64>,
    pub error: Option<String>,
    /// CPU and context switches of the checking thread, when the check ran on one (`VerifyOn::Thread`).
    pub checker: Option<Counters>,
    /// Where each pass ends, and whom to tell.
    pub passes: Option<PassTracker>,
    /// The bytes counted in intervals, when the header asked for them.
    pub series: Option<Series>,
    /// With `--rx-mode zerocopy`: the bytes the kernel mapped rather than copied, and why the stream fell back
    /// to copying everything, if it did.
    pub mapped: Option<u64>,
    pub fallback: Option<String>,
    /// With `--rx-mode zerocopy`: whether the first wrong byte lay in a mapped page (else in copied bytes).
    pub mismatch_mapped: Option<bool>,
    /// Whom to tell once every byte is in, for a group with stalled consumers.
    pub whole: Option<super::stall::Whole>,
}

/// Bytes received in equal intervals from the first byte on. When it would grow past `wire::MAX_SERIES`
/// intervals, neighbours merge and the interval doubles, so a long stream still costs a bounded report. A receive
/// call's bytes count at the moment it returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub interval_ns: u64,
    start_ns: Option<u64>,
    pub buckets: Vec<u64>,
}

impl Series {
    pub fn new(interval_ns: u64) -> Series {
        Series {
            interval_ns: interval_ns.max(1),
            start_ns: None,
            buckets: Vec::new(),
        }
    }

    fn add(&mut self, now_ns: u64, n: u64) {
        let start = *self.start_ns.get_or_insert(now_ns);
        let at = |s: &Series| (now_ns.saturating_sub(start) / s.interval_ns) as usize;
        while at(self) >= crate::experiment::wire::MAX_SERIES {
            self.buckets = self.buckets.chunks(2).map(|pair| pair.iter().sum()).collect();
            self.interval_ns *= 2;
        }
        let i = at(self);
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, 0);
        }
        self.buckets[i] += n;
    }
}

impl Received {
    /// Books one receive call that took `n` bytes.
    fn count(&mut self, n: usize) {
        let now = crate::base::env::monotonic_ns();
        self.calls += 1;
        self.first_byte_ns.get_or_insert(now);
        self.last_byte_ns = Some(now);
        self.bytes += n as u64;
        if let Some(s) = &mut self.series {
            s.add(now, n as u64);
        }
        if let Some(p) = &mut self.passes
            && let Err(e) = p.on_bytes(self.bytes, now)
        {
            self.error.get_or_insert(e);
        }
        if self.whole.as_ref().is_some_and(|w| self.bytes >= w.total)
            && let Some(w) = self.whole.take()
        {
            w.stalls.done(&w.group);
        }
    }

    fn finish(&mut self, check: Option<Check>) {
        if let Some(c) = check {
            self.mismatch_offset = c.mismatch;
            self.verified = c.mismatch.is_none() && !c.overflow;
        }
    }
}

/// Tells the sender when each pass of a stream has arrived whole, with the times of its first and last byte.
#[derive(Debug)]
pub struct PassTracker {
    per_pass: u64,
    passes: u32,
    done: u32,
    first_ns: Option<u64>,
    to: std::net::TcpStream,
}

impl PassTracker {
    pub fn new(per_pass: u64, passes: u32, to: std::net::TcpStream) -> PassTracker {
        PassTracker {
            per_pass,
            passes,
            done: 0,
            first_ns: None,
            to,
        }
    }

    /// Bytes still to come in the pass under way once the stream holds `total` (none after the last pass).
    fn left_in_pass(&self, total: u64) -> u64 {
        match self.done < self.passes {
            true => (u64::from(self.done + 1) * self.per_pass).saturating_sub(total),
            false => 0,
        }
    }

    /// After a receive that brought the stream to `total` bytes, at `now`.
    fn on_bytes(&mut self, total: u64, now: u64) -> Result<(), String> {
        self.first_ns.get_or_insert(now);
        while self.done < self.passes && total >= u64::from(self.done + 1) * self.per_pass {
            self.done += 1;
            let notice = PassNotice {
                pass: self.done,
                first_byte_ns: self.first_ns.take().unwrap_or(now),
                last_byte_ns: now,
                notice_ns: crate::base::env::monotonic_ns(),
            };
            wire::write_line(&mut self.to, &notice).map_err(|e| format!("cannot send a pass notice: {e}"))?;
        }
        Ok(())
    }
}

/// Buffers one stream may have filled and waiting for its checking thread, and how many are handed over at a time
/// (one wake-up of the checker per batch, not per receive).
const RING: usize = 8;
const BATCH: usize = 4;

/// What one receive call came to.
enum Step {
    Got(usize),
    Again,
    End(Option<String>),
}

fn step(r: nix::Result<usize>) -> Step {
    match r {
        Ok(0) => Step::End(None),
        Ok(n) => Step::Got(n),
        Err(Errno::EINTR) => Step::Again,
        Err(Errno::EAGAIN) => Step::End(Some(IDLE.into())),
        Err(e) => Step::End(Some(format!("recv: {e}"))),
    }
}

const IDLE: &str = "idle: nothing arrived within the idle timeout";

/// What one read of a TLS stream's plaintext came to.
fn tls_step(r: std::io::Result<usize>) -> Step {
    use std::io::ErrorKind;
    match r {
        Ok(0) => Step::End(None),
        Ok(n) => Step::Got(n),
        Err(e) if e.kind() == ErrorKind::Interrupted => Step::Again,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Step::End(Some(IDLE.into())),
        Err(e) => Step::End(Some(e.to_string())),
    }
}

/// Waits until the socket is readable (data, or the end of the stream), for at most its receive timeout; false when
/// that passed first.
fn wait_readable(sock: &TcpStream) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let ms = sock
        .read_timeout()
        .ok()
        .flatten()
        .map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE);
    matches!(poll(&mut fds, timeout), Ok(n) if n > 0)
}

/// Checks a zero-copy stream's next bytes, `mapped` or copied; the feed that finds the first wrong byte says which
/// it lay in.
fn feed_zero_copy(check: &mut Option<Check>, got: &mut Received, data: &[u8], mapped: bool) {
    if let Some(c) = check.as_mut() {
        c.feed(data);
        if c.mismatch.is_some() {
            got.mismatch_mapped.get_or_insert(mapped);
        }
    }
}

/// SO_RCVLOWAT of a zero-copy stream: the socket wakes its reader once this much is queued (or at the end of the
/// stream), as the kernel's tcp_mmap test does, so that a call finds whole pages to map rather than the last segment
/// alone. Set only when it changes; a refusal leaves the kernel's default of one byte, which costs mappings, not
/// bytes.
struct Lowat<'a> {
    sock: &'a TcpStream,
    now: usize,
}

impl<'a> Lowat<'a> {
    fn new(sock: &'a TcpStream) -> Lowat<'a> {
        Lowat { sock, now: 1 }
    }

    fn set(&mut self, bytes: usize) {
        let bytes = bytes.clamp(1, i32::MAX as usize);
        if bytes != self.now {
            let v = bytes as libc::c_int;
            // SAFETY: a valid socket and a c_int option of its size.
            let r = unsafe {
                libc::setsockopt(
                    self.sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVLOWAT,
                    (&v as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                self.now = bytes;
            }
        }
    }
}

/// A receive loop with its buffers (or, for splice, its pipe and /dev/null), made before the stream starts.
pub struct Receiver {
    mode: RxMode,
    /// Page-aligned (see `buffer`); `len` bytes of each are offered to each recv. One buffer, or `RING` when a
    /// checking thread takes filled ones while the next is received into.
    bufs: Vec<AlignedBuf>,
    len: usize,
    splice: Option<SpliceSink>,
    verify_on: VerifyOn,
}

/// Where splice mode sends the bytes: a pipe of about `rx_buffer` bytes, drained into /dev/null.
struct SpliceSink {
    pipe: Pipe,
    null: std::fs::File,
}

impl Receiver {
    pub fn new(mode: RxMode, rx_buffer: usize, verify_on: VerifyOn) -> anyhow::Result<Receiver> {
        let splice = match mode {
            RxMode::Splice => Some(SpliceSink {
                pipe: Pipe::new(rx_buffer as u64)?,
                null: std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/null")
                    .context("cannot open '/dev/null'")?,
            }),
            _ => None,
        };
        // Splice mode never touches a user buffer; keep one page so the loop stays uniform.
        let (count, len) = match (&splice, verify_on) {
            (Some(_), _) => (1, 1),
            (None, VerifyOn::Thread) => (RING, rx_buffer),
            (None, VerifyOn::Receiver) => (1, rx_buffer),
        };
        Ok(Receiver {
            mode,
            bufs: (0..count)
                .map(|_| AlignedBuf::new(len))
                .collect::<anyhow::Result<_>>()?,
            len: rx_buffer,
            splice,
            verify_on,
        })
    }

    /// One receive into `buf` (or, for splice, through the pipe; for TLS, plaintext out of the session).
    fn take(
        mode: RxMode,
        through: Option<&SpliceSink>,
        tls: Option<&mut Opener>,
        buf: &mut [u8],
        sock: &TcpStream,
    ) -> Step {
        if let Some(opener) = tls {
            return tls_step(opener.read(sock, buf));
        }
        step(Self::raw_take(mode, through, buf, sock))
    }

    /// One receive call into `buf` (or, for splice, through the pipe): bytes taken off the socket (0 at EOF).
    fn raw_take(mode: RxMode, through: Option<&SpliceSink>, buf: &mut [u8], sock: &TcpStream) -> nix::Result<usize> {
        match (through, mode) {
            (Some(s), _) => {
                let flags = SpliceFFlags::SPLICE_F_MOVE;
                let n = splice(sock.as_fd(), None, s.pipe.write.as_fd(), None, s.pipe.capacity, flags)?;
                let mut left = n;
                while left > 0 {
                    match splice(s.pipe.read.as_fd(), None, s.null.as_fd(), None, left, flags) {
                        Ok(m) => left -= m,
                        Err(Errno::EINTR) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Ok(n)
            }
            (None, RxMode::Trunc) => recv(sock.as_raw_fd(), buf, MsgFlags::MSG_TRUNC),
            (None, _) => recv(sock.as_raw_fd(), buf, MsgFlags::empty()),
        }
    }

    /// Receives until EOF (a TLS stream: close_notify), an error or the idle timeout, checking the bytes against
    /// `check` if given and telling `passes` where each pass ends.
    pub fn run(
        &mut self,
        sock: &TcpStream,
        check: Option<Check>,
        passes: Option<PassTracker>,
        series: Option<Series>,
        whole: Option<super::stall::Whole>,
        tls: Option<&mut Opener>,
    ) -> Received {
        let got = Received {
            passes,
            series,
            whole,
            ..Received::default()
        };
        match (check, self.mode, self.verify_on) {
            (Some(check), RxMode::Copy, VerifyOn::Thread) if self.bufs.len() > 1 => {
                self.run_checked_beside(sock, check, got, tls)
            }
            (check, RxMode::Zerocopy, _) => self.run_zerocopy(sock, check, got),
            (check, _, _) => self.run_inline(sock, check, got, tls),
        }
    }

    /// TCP_ZEROCOPY_RECEIVE: pages mapped where the kernel can, the rest received into the buffer; each checked
    /// where it lies. Where the kernel refuses, the stream goes on as `copy` and the report says why.
    fn run_zerocopy(&mut self, sock: &TcpStream, mut check: Option<Check>, mut got: Received) -> Received {
        let mut map = match super::zerocopy::Mapping::new(sock, self.len) {
            Ok(m) => m,
            Err(e) => return self.fall_back(sock, check, got, format!("mmap of the socket: {e}")),
        };
        got.mapped = Some(0);
        let len = self.len.min(self.bufs[0].as_mut_slice().len());
        let buf = &mut self.bufs[0].as_mut_slice()[..len];
        let mut first = true;
        let mut idle = false;
        let mut lowat = Lowat::new(sock);
        loop {
            let zc = match map.receive(sock, buf) {
                Ok(r) => r,
                // The kernel's word for the end of the stream: the peer's FIN came and nothing is queued.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(e) if first && super::zerocopy::unsupported(&e) => {
                    drop(map);
                    return self.fall_back(sock, check, got, format!("TCP_ZEROCOPY_RECEIVE: {e}"));
                }
                Err(e) => {
                    got.error = Some(format!("TCP_ZEROCOPY_RECEIVE: {e}"));
                    break;
                }
            };
            first = false;
            // One call; in stream order: the mapped pages, then what the kernel copied into the buffer.
            if zc.mapped + zc.copied > 0 {
                got.count(zc.mapped + zc.copied);
                got.mapped = got.mapped.map(|m| m + zc.mapped as u64);
            }
            feed_zero_copy(&mut check, &mut got, map.bytes(zc.mapped), true);
            feed_zero_copy(&mut check, &mut got, &buf[..zc.copied], false);
            if zc.mapped > 0 {
                map.release(zc.mapped);
            }
            // Nothing mapped, copied or to skip: the queue is empty. Wait for it once, then receive as usual,
            // which also tells the end of the stream.
            let want = match (zc.mapped + zc.copied, zc.skip) {
                (_, s) if s > 0 => s,
                (0, 0) if idle => buf.len(),
                (0, 0) => {
                    // Wake for a mapping's worth, or for what is left of a pass the sender waits on.
                    let left = got.passes.as_ref().map(|p| p.left_in_pass(got.bytes));
                    lowat.set(match left {
                        Some(n) if n > 0 => (n as usize).min(len),
                        _ => len,
                    });
                    idle = !wait_readable(sock);
                    continue;
                }
                _ => {
                    idle = false;
                    continue;
                }
            };
            idle = false;
            let cut = want.min(buf.len());
            let n = match step(recv(sock.as_raw_fd(), &mut buf[..cut], MsgFlags::empty())) {
                Step::Got(n) => n,
                Step::Again => continue,
                Step::End(error) => {
                    got.error = error;
                    break;
                }
            };
            got.count(n);
            feed_zero_copy(&mut check, &mut got, &buf[..n], false);
        }
        got.finish(check);
        got
    }

    /// Receives the rest of the stream as `copy` does, saying why.
    fn fall_back(&mut self, sock: &TcpStream, check: Option<Check>, mut got: Received, why: String) -> Received {
        got.fallback = Some(why);
        self.mode = RxMode::Copy;
        self.run_inline(sock, check, got, None)
    }

    fn run_inline(
        &mut self,
        sock: &TcpStream,
        mut check: Option<Check>,
        mut got: Received,
        mut tls: Option<&mut Opener>,
    ) -> Received {
        // (Splice mode keeps a one-page buffer it never uses.)
        let buf = self.bufs[0].as_mut_slice();
        let len = self.len.min(buf.len());
        let buf = &mut buf[..len];
        loop {
            let n = match Self::take(self.mode, self.splice.as_ref(), tls.as_deref_mut(), buf, sock) {
                Step::Got(n) => n,
                Step::Again => continue,
                Step::End(error) => {
                    got.error = error;
                    break;
                }
            };
            got.count(n);
            if let (Some(c), RxMode::Copy) = (check.as_mut(), self.mode) {
                c.feed(&buf[..n.min(self.len)]);
            }
        }
        got.finish(check);
        got
    }

    /// The receiving thread fills buffers and hands them over `BATCH` at a time; a checking thread checks them in
    /// order and gives them back. The receiver waits only when every buffer is still waiting to be checked.
    fn run_checked_beside(
        &mut self,
        sock: &TcpStream,
        mut check: Check,
        mut got: Received,
        mut tls: Option<&mut Opener>,
    ) -> Received {
        use std::sync::mpsc::{channel, sync_channel};
        let (to_checker, batches) = sync_channel::<Vec<(AlignedBuf, usize)>>(RING / BATCH);
        let (to_receiver, checked) = channel::<AlignedBuf>();
        let mut free = std::mem::take(&mut self.bufs);
        let (mode, len) = (self.mode, self.len);
        std::thread::scope(|scope| {
            let checker = scope.spawn(move || {
                let before = Counters::thread();
                for batch in batches {
                    for (buf, n) in batch {
                        check.feed(&buf.as_slice()[..n]);
                        // The receiver is gone only once it has finished; the buffer is then simply dropped.
                        let _ = to_receiver.send(buf);
                    }
                }
                (check, Counters::thread().since(&before))
            });
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                free.extend(checked.try_iter());
                let mut buf = match free.pop() {
                    Some(b) => b,
                    None => {
                        if !batch.is_empty() && to_checker.send(std::mem::take(&mut batch)).is_err() {
                            got.error = Some("the checking thread stopped".into());
                            break;
                        }
                        match checked.recv() {
                            Ok(b) => b,
                            Err(_) => {
                                got.error = Some("the checking thread stopped".into());
                                break;
                            }
                        }
                    }
                };
                let n = match Self::take(mode, None, tls.as_deref_mut(), &mut buf.as_mut_slice()[..len], sock) {
                    Step::Got(n) => n,
                    Step::Again => {
                        free.push(buf);
                        continue;
                    }
                    Step::End(error) => {
                        got.error = error;
                        free.push(buf);
                        break;
                    }
                };
                got.count(n);
                batch.push((buf, n.min(len)));
                if batch.len() == BATCH && to_checker.send(std::mem::take(&mut batch)).is_err() {
                    got.error = Some("the checking thread stopped".into());
                    break;
                }
            }
            if !batch.is_empty() {
                let _ = to_checker.send(batch);
            }
            drop(to_checker);
            match checker.join() {
                Ok((check, used)) => {
                    got.finish(Some(check));
                    got.checker = Some(used);
                }
                Err(_) => {
                    got.error.get_or_insert_with(|| "the checking thread failed".into());
                }
            }
        });
        free.extend(checked.try_iter());
        self.bufs = free;
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::{FromRawFd, IntoRawFd};

    /// Where the kernel offers no receive zero-copy (here: a socket that is not TCP, on which mmap fails), the
    /// stream is received as `copy` does, every byte, and the report says why.
    #[test]
    fn zerocopy_falls_back_to_copy_and_says_why() {
        let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        // SAFETY: the descriptor is ours alone from here on; a TcpStream over it only reads and closes it.
        let sock = unsafe { TcpStream::from_raw_fd(ours.into_raw_fd()) };
        let data = vec![9u8; 300_000];
        // More than a socket buffer holds: written from a thread of its own while the receiver reads.
        let writer = std::thread::spawn({
            let data = data.clone();
            move || theirs.write_all(&data)
        });
        let mut receiver = Receiver::new(RxMode::Zerocopy, 64 << 10, VerifyOn::Receiver).unwrap();
        let got = receiver.run(&sock, None, None, None, None, None);
        writer.join().unwrap().unwrap();
        assert_eq!(got.bytes, data.len() as u64);
        assert_eq!(got.error, None);
        let why = got.fallback.expect("the fallback is recorded");
        assert!(why.starts_with("mmap of the socket: "), "{why}");
        assert_eq!(got.mapped, None);
    }
}
