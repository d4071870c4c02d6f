//! Waiting for the sink's answer (an ack, a report) without going deaf to SIGINT and SIGTERM: the wait is cut into
//! short slices, and the run's stop flag is checked between them, so a signal ends it within a slice.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest the stop flag goes unchecked while waiting.
const SLICE: Duration = Duration::from_millis(200);

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Something can be read (or the connection ended or failed, which the read then reports).
    Ready,
    /// The stop flag was set.
    Stopped,
    /// Nothing arrived within the limit.
    TimedOut,
}

/// Waits up to `limit` for `sock` to have something to read, checking `stop` at least every SLICE.
/// Leaves the socket's read timeout at what is left of `limit` (at least a moment), for the read that follows.
pub fn readable(sock: &TcpStream, limit: Duration, stop: &AtomicBool) -> Wait {
    let end = Instant::now() + limit;
    let mut byte = [0u8; 1];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Wait::Stopped;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Wait::TimedOut;
        }
        if sock.set_read_timeout(Some(left.min(SLICE))).is_err() {
            return Wait::Ready;
        }
        // peek leaves the bytes for the line reader that follows.
        match sock.peek(&mut byte) {
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            _ => {
                let rest = end.saturating_duration_since(Instant::now());
                let _ = sock.set_read_timeout(Some(rest.max(Duration::from_millis(100))));
                return Wait::Ready;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn a_set_stop_flag_ends_the_wait_and_data_makes_it_ready() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let stop = AtomicBool::new(false);
        assert_eq!(readable(&sock, Duration::from_millis(50), &stop), Wait::TimedOut);
        stop.store(true, Ordering::Relaxed);
        assert_eq!(readable(&sock, Duration::from_secs(60), &stop), Wait::Stopped);
        stop.store(false, Ordering::Relaxed);
        peer.write_all(b"x\n").unwrap();
        assert_eq!(readable(&sock, Duration::from_secs(60), &stop), Wait::Ready);
    }
}
