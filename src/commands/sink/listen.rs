//! The sink's listening socket, the cap on streams it serves at once, and the file descriptors it may open.
//!
//! SO_RCVBUF is set on the listening socket, before listen(), rather than on each accepted one: the TCP window
//! scale is fixed in the SYN-ACK, so a buffer set after accept() cannot grow the window past what the handshake
//! announced (tcp(7)). Accepted sockets inherit the listener's setting.

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, socket, sockopt,
};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Streams (admitted connections, each with its thread) the sink serves at once; a header beyond them is refused.
/// A run opens at most `wire::MAX_STREAMS`.
pub const MAX_OPEN: usize = crate::experiment::wire::MAX_STREAMS as usize;
/// Connections the kernel may hold for accept(): a burst of strangers' connects should not make a run's wait for
/// SYN retries (the kernel caps it at net.core.somaxconn).
const BACKLOG: i32 = 4096;

/// The process's open-file limit, after raising the soft limit to the hard one.
#[derive(Debug, Clone, Copy)]
pub struct OpenFiles {
    pub was: u64,
    pub now: u64,
}

impl std::fmt::Display for OpenFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.was == self.now {
            true => write!(f, "{}", self.now),
            false => write!(f, "{} (raised from {})", self.now, self.was),
        }
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit: every connection, in its header phase or streaming, is a
/// descriptor, and the soft limit is often 1024. Where it cannot be raised, the sink works with what it has.
pub fn raise_open_files() -> OpenFiles {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return OpenFiles { was: 1024, now: 1024 };
    };
    let raised = soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok();
    OpenFiles {
        was: soft,
        now: if raised { hard } else { soft },
    }
}

/// Places in the header phase: as asked, but no more than a quarter of the open files (the rest are for the
/// streams' sockets, pipes and files), though never under 16 for want of files.
pub fn pending_places(asked: usize, open_files: u64) -> usize {
    let quarter = usize::try_from(open_files.saturating_sub(64) / 4).unwrap_or(usize::MAX);
    asked.min(quarter.max(16))
}

/// Binds the first address that can be bound, with SO_REUSEADDR and the asked SO_RCVBUF, and listens.
pub fn bind_listener(addrs: &[SocketAddr], rcvbuf: Option<u64>) -> std::io::Result<TcpListener> {
    let mut last = std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on");
    for addr in addrs {
        match bind_one(addr, rcvbuf) {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn bind_one(addr: &SocketAddr, rcvbuf: Option<u64>) -> std::io::Result<TcpListener> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if let Some(bytes) = rcvbuf {
        setsockopt(&fd, sockopt::RcvBuf, &(bytes as usize))?;
    }
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrStorage::from(*addr))?;
    listen(&fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))?;
    Ok(TcpListener::from(fd))
}

/// Counts open connections; a slot is held for as long as its `Slot` lives.
#[derive(Clone, Default)]
pub struct Gate {
    open: Arc<AtomicUsize>,
}

/// One open connection's place under the cap.
pub struct Slot {
    open: Arc<AtomicUsize>,
}

impl Gate {
    /// A slot, or None when MAX_OPEN streams are already open.
    pub fn enter(&self) -> Option<Slot> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_OPEN).then_some(n + 1));
        taken.ok().map(|_| Slot {
            open: Arc::clone(&self.open),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Equal secrets, compared in time that does not depend on where they first differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_caps_and_releases() {
        let gate = Gate::default();
        let slots: Vec<Slot> = (0..MAX_OPEN).map(|_| gate.enter().expect("a slot")).collect();
        assert!(gate.enter().is_none());
        drop(slots);
        assert!(gate.enter().is_some());
    }

    #[test]
    fn the_header_phase_leaves_most_files_to_streams() {
        assert_eq!(pending_places(1024, 1_048_576), 1024);
        assert_eq!(pending_places(1024, 1024), 240);
        assert_eq!(pending_places(1024, 20), 16);
        assert_eq!(pending_places(5, 1_048_576), 5);
    }

    #[test]
    fn secrets() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn listener_gets_the_buffer_before_listen() {
        let l = bind_listener(&["127.0.0.1:0".parse().unwrap()], Some(256 * 1024)).unwrap();
        // Linux doubles the value asked for, for its own bookkeeping.
        let got = nix::sys::socket::getsockopt(&l, sockopt::RcvBuf).unwrap();
        assert!(got >= 256 * 1024, "SO_RCVBUF {got}");
        assert_ne!(l.local_addr().unwrap().port(), 0);
    }
}
