//! `io-uring`: the splice path (file → pipe → socket) driven through io_uring. Each submission is one linked
//! chain of up to `queue_depth / 2` pairs (IORING_OP_SPLICE file→pipe, then pipe→socket, each one pipe-full),
//! so one io_uring_enter moves `queue_depth / 2` pipe-fulls in order, and nothing crosses into user space.
//!
//! A short splice breaks the chain (the kernel cancels the links after it); the bytes left in the pipe are then
//! drained with single pipe→socket operations and the next chain starts where the file reads stopped. When the
//! kernel refuses io_uring (io_uring_setup: EPERM in many containers, ENOSYS on old kernels) or lacks
//! IORING_OP_SPLICE or timed waits (IORING_FEAT_EXT_ARG), the stream runs the plain `splice` path instead, recorded as the row's `path`.
//!
//! `io-uring-fixed` is the same chains with the file, the pipe's ends and the socket registered with the ring
//! (IORING_REGISTER_FILES) and named by their index (`types::Fixed`), so the kernel takes no file reference per
//! operation. When the registration is refused the plain `io-uring` chains run, recorded as the path.

use super::pipe::Pipe;
use super::splice::Splice;
use super::{Fallback, Io, SendError, SendOptions, Transfer};
use crate::base::model::Method;
use io_uring::{IoUring, Probe, opcode, squeue, types};
use nix::errno::Errno;
use std::fs::File;
use std::os::fd::AsRawFd;

/// How long one io_uring_enter waits before checking the deadline and the stop flag.
const WAIT: std::time::Duration = super::SEND_WAKEUP;

pub enum IoUringSend {
    Ring(Box<Ring>),
    /// io_uring was not usable: the plain splice path runs, and `why` goes into the row's `path`.
    Fallback {
        splice: Splice,
        why: String,
    },
}

pub struct Ring {
    ring: IoUring,
    file: File,
    pipe: Pipe,
    /// Splice pairs per chain.
    pairs: usize,
    /// Whether the chains name the ring's registered files (`io-uring-fixed`) instead of file descriptors.
    fixed: bool,
    /// Why registered files were asked for and refused (the plain chains run then).
    refused: Option<String>,
}

/// The descriptors a chain names: in registered-file mode, each one's index in the ring's file table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    File = 0,
    PipeWrite = 1,
    PipeRead = 2,
    Sock = 3,
}

/// Registers a ring's files: `io-uring-fixed`'s set-up step, a parameter so that a test can make it fail.
pub(super) type RegisterFiles = fn(&io_uring::Submitter<'_>, &[std::os::fd::RawFd]) -> std::io::Result<()>;

impl IoUringSend {
    pub fn new(file: File, opts: &SendOptions) -> anyhow::Result<IoUringSend> {
        let depth = opts.queue_depth.max(2);
        let ring = usable(IoUring::new(depth), opcode::Splice::CODE, "IORING_OP_SPLICE");
        Ok(match ring {
            Ok(ring) => IoUringSend::Ring(Box::new(Ring {
                ring,
                file,
                pipe: Pipe::new(opts.chunk_bytes)?,
                pairs: (depth / 2) as usize,
                fixed: false,
                refused: None,
            })),
            Err(why) => IoUringSend::Fallback {
                splice: Splice::new(file, opts)?,
                why,
            },
        })
    }

    /// `io-uring-fixed`: the same ring, with the file, the pipe's ends and `sock` registered with it (set-up,
    /// outside the timed section); where the kernel refuses the registration, the plain chains.
    pub fn fixed(file: File, sock: &std::net::TcpStream, opts: &SendOptions) -> anyhow::Result<IoUringSend> {
        IoUringSend::fixed_with(file, sock, opts, |s, fds| s.register_files(fds))
    }

    fn fixed_with(
        file: File,
        sock: &std::net::TcpStream,
        opts: &SendOptions,
        register: RegisterFiles,
    ) -> anyhow::Result<IoUringSend> {
        let mut t = IoUringSend::new(file, opts)?;
        if let IoUringSend::Ring(r) = &mut t {
            let fds = [
                r.file.as_raw_fd(),
                r.pipe.write.as_raw_fd(),
                r.pipe.read.as_raw_fd(),
                sock.as_raw_fd(),
            ];
            match register(&r.ring.submitter(), &fds) {
                Ok(()) => r.fixed = true,
                Err(e) => r.refused = Some(format!("IORING_REGISTER_FILES: {}", errno_of(&e))),
            }
        }
        Ok(t)
    }
}

/// The ring `setup` made, when it can run opcode `code` (named `name` in the reason) with timed waits; else why
/// not, for the row's `path`.
pub(super) fn usable(setup: std::io::Result<IoUring>, code: u8, name: &str) -> Result<IoUring, String> {
    let ring = setup.map_err(|e| format!("io_uring_setup: {}", errno_of(&e)))?;
    if !ring.params().is_feature_ext_arg() {
        return Err("no IORING_FEAT_EXT_ARG (timed waits, kernel 5.11)".to_string());
    }
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("io_uring probe: {}", errno_of(&e)))?;
    if !probe.is_supported(code) {
        return Err(format!("{name} not supported"));
    }
    Ok(ring)
}

pub(super) fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Transfer for IoUringSend {
    fn user_copies(&self) -> u64 {
        0
    }

    fn send(&mut self, io: &mut Io, offset: u64, len: usize) -> Result<usize, SendError> {
        match self {
            IoUringSend::Ring(r) => Ok((r.chain(io, offset, offset + len as u64)? - offset) as usize),
            IoUringSend::Fallback { splice, .. } => splice.send(io, offset, len),
        }
    }

    fn fallback(&self) -> Option<Fallback> {
        match self {
            IoUringSend::Ring(r) => r
                .refused
                .as_ref()
                .and_then(|why| Fallback::to(Method::IoUring, why.clone())),
            IoUringSend::Fallback { why, .. } => Fallback::to(Method::Splice, why.to_string()),
        }
    }
}

impl Ring {
    /// Submits one linked chain from file offset `at`, waits for it, drains what a broken chain left in the pipe,
    /// and returns the offset the next chain starts from.
    fn chain(&mut self, io: &mut Io, at: u64, end: u64) -> Result<u64, SendError> {
        let sock = io.sock.as_raw_fd();
        let cap = self.pipe.capacity as u64;
        let lens: Vec<u32> = (0..self.pairs)
            .map(|i| at + i as u64 * cap)
            .take_while(|&s| s < end)
            .map(|s| (end - s).min(cap) as u32)
            .collect();
        let mut offset = at;
        let mut entries = Vec::with_capacity(lens.len() * 2);
        for (i, &len) in lens.iter().enumerate() {
            let last = i + 1 == lens.len();
            entries.push(
                self.splice(sock, End::File, offset as i64, End::PipeWrite, len)
                    .flags(libc::SPLICE_F_MOVE)
                    .build()
                    .flags(squeue::Flags::IO_LINK)
                    .user_data((2 * i) as u64),
            );
            let out = self
                .splice(sock, End::PipeRead, -1, End::Sock, len)
                .flags(libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE)
                .build()
                .user_data((2 * i + 1) as u64);
            entries.push(if last { out } else { out.flags(squeue::Flags::IO_LINK) });
            offset += u64::from(len);
        }
        let results = self.run(&entries, io)?;
        // The chain is in order: file reads form a prefix of full reads, then at most one short one.
        let mut filled = 0u64;
        let mut sent = 0u64;
        let mut broken = false;
        for (i, &len) in lens.iter().enumerate() {
            let (r_in, r_out) = (results[2 * i], results[2 * i + 1]);
            for r in [r_in, r_out] {
                if r < 0 && r != -libc::ECANCELED && r != -libc::EINTR && r != -libc::EAGAIN {
                    return Err(SendError::Io {
                        call: "io_uring splice",
                        errno: Errno::from_raw(-r),
                    });
                }
            }
            if r_in > 0 {
                if broken {
                    return Err(SendError::Setup(
                        "io_uring ran a splice past a broken link: the stream would be out of order".into(),
                    ));
                }
                filled += r_in as u64;
            } else if r_in == 0 && filled == 0 && !broken {
                return Err(SendError::FileShrank(at));
            }
            sent += r_out.max(0) as u64;
            broken |= r_in != len as i32 || r_out != len as i32;
        }
        // What a broken chain left in the pipe goes out before the next file read.
        let mut left = filled - sent;
        while left > 0 {
            let len = left.min(cap) as u32;
            let out = self
                .splice(sock, End::PipeRead, -1, End::Sock, len)
                .flags(libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE)
                .build()
                .user_data(0);
            let r = self.run(&[out], io)?[0];
            if r < 0 && r != -libc::EINTR && r != -libc::EAGAIN {
                return Err(SendError::Io {
                    call: "io_uring splice",
                    errno: Errno::from_raw(-r),
                });
            }
            left -= r.max(0) as u64;
        }
        Ok(at + filled)
    }

    /// A splice from `from` (at `off_in`, -1 for the pipe) into `to`, naming both by descriptor or, with
    /// registered files, by index. `sock` is the connection's descriptor (registered as `End::Sock`).
    fn splice(&self, sock: std::os::fd::RawFd, from: End, off_in: i64, to: End, len: u32) -> opcode::Splice {
        if self.fixed {
            return opcode::Splice::new(types::Fixed(from as u32), off_in, types::Fixed(to as u32), -1, len);
        }
        let fd = |end| match end {
            End::File => self.file.as_raw_fd(),
            End::PipeWrite => self.pipe.write.as_raw_fd(),
            End::PipeRead => self.pipe.read.as_raw_fd(),
            End::Sock => sock,
        };
        opcode::Splice::new(types::Fd(fd(from)), off_in, types::Fd(fd(to)), -1, len)
    }

    /// Submits `entries` and waits for all of their completions; returns each one's result by user_data.
    fn run(&mut self, entries: &[squeue::Entry], io: &mut Io) -> Result<Vec<i32>, SendError> {
        // SAFETY: every entry names only files (the file, the pipe, the socket, by descriptor or by registered
        // index) and no user memory; the kernel holds its own reference to each file (taken when it prepares the
        // request, or held by the registered file table until the ring goes), so a request still in flight when
        // this returns early can outlive any of them safely.
        unsafe {
            self.ring
                .submission()
                .push_multiple(entries)
                .map_err(|_| SendError::Setup("io_uring submission queue smaller than the chain".into()))?;
        }
        let mut results = vec![-libc::ECANCELED; entries.len()];
        let mut seen = 0usize;
        let ts = types::Timespec::from(WAIT);
        let args = types::SubmitArgs::new().timespec(&ts);
        while seen < entries.len() {
            let want = entries.len() - seen;
            let submitter = self.ring.submitter();
            io.call("io_uring_enter", || {
                match submitter.submit_with_args(want, &args) {
                    Ok(n) => Ok(n),
                    // The wait expired: let the caller check the deadline and the stop flag, then wait again.
                    Err(e) if e.raw_os_error() == Some(libc::ETIME) => Err(Errno::EAGAIN),
                    Err(e) => Err(errno_of(&e)),
                }
            })?;
            for cqe in self.ring.completion() {
                if let Some(slot) = results.get_mut(cqe.user_data() as usize) {
                    *slot = cqe.result();
                    seen += 1;
                }
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::model::Layout;
    use crate::experiment::strategy::io_uring_zc::tests::{file_of, one_pass};
    use crate::experiment::strategy::send_pass;
    use crate::experiment::strategy::tests::io_on;
    use crate::experiment::wire::StreamPlan;
    use std::time::Duration;

    #[test]
    fn registered_files_carry_every_byte_in_order() {
        let (f, bytes) = file_of(3_000_001);
        let opts = SendOptions {
            chunk_bytes: 999_999,
            queue_depth: 4,
        };
        let (t, got, stats) = one_pass(f.as_file(), opts.chunk_bytes, |file, sock| {
            IoUringSend::fixed(file.try_clone().unwrap(), sock, &opts).unwrap()
        });
        assert!(got == bytes, "the bytes arrived changed or out of order");
        assert_eq!(stats.bytes, bytes.len() as u64);
        assert_eq!((t.user_copies(), stats.user_copy_bytes), (0, 0));
        let IoUringSend::Ring(ring) = &t else {
            eprintln!("io_uring not usable here: {:?}", t.fallback());
            return;
        };
        assert!(ring.fixed, "the chains named registered files");
        assert_eq!(t.fallback(), None);
        assert!(stats.syscalls >= 4, "one io_uring_enter per piece at least");
    }

    #[test]
    fn a_refused_registration_runs_the_plain_chains_and_says_why() {
        let (f, bytes) = file_of(1 << 20);
        let opts = SendOptions {
            chunk_bytes: 256 << 10,
            queue_depth: 4,
        };
        // The kernel refuses a second registration of a ring's files (EBUSY).
        let twice: RegisterFiles = |s, fds| s.register_files(fds).and_then(|()| s.register_files(fds));
        let (t, got, _) = one_pass(f.as_file(), opts.chunk_bytes, |file, sock| {
            IoUringSend::fixed_with(file.try_clone().unwrap(), sock, &opts, twice).unwrap()
        });
        assert!(got == bytes, "the bytes arrived changed or out of order");
        let IoUringSend::Ring(ring) = &t else {
            eprintln!("io_uring not usable here: {:?}", t.fallback());
            return;
        };
        assert!(!ring.fixed, "the plain chains ran");
        assert_eq!(
            t.fallback(),
            Fallback::to(Method::IoUring, "IORING_REGISTER_FILES: EBUSY: Device or resource busy")
        );
    }

    /// The chains name the registered socket, not the descriptor in hand: a transfer registered with connection
    /// A and driven with connection B's descriptor sends everything to A (`io-uring-fixed`, and
    /// `io-uring-send-zc-fixed`'s sends).
    #[test]
    fn the_chains_name_the_registered_files() {
        let (f, bytes) = file_of(1 << 20);
        let opts = SendOptions {
            chunk_bytes: 256 << 10,
            queue_depth: 4,
        };
        type Make = fn(&File, &std::net::TcpStream, &SendOptions) -> Box<dyn Transfer>;
        let splice: Make = |f, sock, opts| Box::new(IoUringSend::fixed(f.try_clone().unwrap(), sock, opts).unwrap());
        let zc: Make = |f, sock, opts| {
            Box::new(crate::experiment::strategy::io_uring_zc::IoUringSendZc::fixed(f, sock, opts).unwrap())
        };
        for make in [splice, zc] {
            let pair = || {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let sock = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
                let (mut peer, _) = listener.accept().unwrap();
                let reader = std::thread::spawn(move || {
                    let mut got = Vec::new();
                    std::io::Read::read_to_end(&mut peer, &mut got).unwrap();
                    got
                });
                (sock, reader)
            };
            let ((a, got_a), (b, got_b)) = (pair(), pair());
            let mut t = make(f.as_file(), &a, &opts);
            if let Some(path) = t.fallback() {
                eprintln!("registered files not usable here: {path:?}");
                continue;
            }
            let plan = StreamPlan {
                file_bytes: bytes.len() as u64,
                chunk_bytes: opts.chunk_bytes,
                layout: Layout::Single,
                streams: 1,
                index: 0,
            };
            let (sent, _) = io_on(&b, Duration::from_secs(60), |io| send_pass(t.as_mut(), io, &plan));
            sent.unwrap();
            drop(t);
            a.shutdown(std::net::Shutdown::Write).unwrap();
            b.shutdown(std::net::Shutdown::Write).unwrap();
            assert!(got_a.join().unwrap() == bytes, "the registered connection got the file");
            assert!(got_b.join().unwrap().is_empty(), "the descriptor in hand got nothing");
        }
    }
}
