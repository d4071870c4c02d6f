//! What xferbench asks of a TCP socket beyond sending: its congestion control, set (TCP_CONGESTION) and read back,
//! the system's default as a new socket gets it, and the connection's own view of itself (TCP_INFO: round-trip
//! time, congestion window, pacing and delivery rates, retransmissions, and the kernel's timers of what limited
//! the flow).

use crate::base::error::UsageError;
use crate::base::model::Cc;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, getsockopt, setsockopt, socket, sockopt};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::os::fd::AsFd;

const AVAILABLE: &str = "/proc/sys/net/ipv4/tcp_available_congestion_control";
const ALLOWED: &str = "/proc/sys/net/ipv4/tcp_allowed_congestion_control";

fn probe_socket() -> std::io::Result<std::os::fd::OwnedFd> {
    Ok(socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

/// The congestion control a socket uses.
pub fn read_cc(sock: &impl AsFd) -> std::io::Result<Cc> {
    let name = getsockopt(sock, sockopt::TcpCongestion)?;
    Cc::new(&name.to_string_lossy()).map_err(std::io::Error::other)
}

/// Sets a socket's congestion control, then reads back what it uses.
pub fn set_cc(sock: &impl AsFd, cc: Cc) -> std::io::Result<Cc> {
    setsockopt(sock, sockopt::TcpCongestion, &OsString::from(cc.as_str()))?;
    read_cc(sock)
}

/// The congestion control a new TCP socket gets in this network namespace (net.ipv4.tcp_congestion_control).
pub fn default_cc() -> std::io::Result<Cc> {
    read_cc(&probe_socket()?)
}

fn list(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// Refuses a congestion control this process cannot set, naming the ones it can.
pub fn check_cc(cc: Cc) -> Result<(), UsageError> {
    let sock = probe_socket().map_err(|e| UsageError::msg(format!("cannot open a TCP socket: {e}")))?;
    match set_cc(&sock, cc) {
        Ok(got) if got == cc => Ok(()),
        Ok(got) => Err(UsageError::new(
            "--cc",
            cc.as_str(),
            format!("the kernel set {got} instead"),
        )),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Err(UsageError::new(
            "--cc",
            cc.as_str(),
            format!(
                "not allowed without CAP_NET_ADMIN; allowed: {} (net.ipv4.tcp_allowed_congestion_control)",
                list(ALLOWED)
            ),
        )),
        Err(_) => Err(UsageError::new(
            "--cc",
            cc.as_str(),
            format!(
                "this kernel has no such congestion control; available: {} (net.ipv4.tcp_available_congestion_control; \
                 others may load as modules tcp_<name>)",
                list(AVAILABLE)
            ),
        )),
    }
}

/// One connection's TCP_INFO, in the fields xferbench records; a field the kernel did not fill (an older kernel's
/// shorter struct) is None, never 0. Times in microseconds, rates in bytes per second, counters since the connection
/// opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TcpInfo {
    /// Segments retransmitted over the connection's life.
    pub total_retrans: Option<u32>,
    /// Smoothed round-trip time and its mean deviation.
    pub rtt_us: Option<u32>,
    pub rttvar_us: Option<u32>,
    /// Congestion window, in segments.
    pub snd_cwnd: Option<u32>,
    /// The pace the congestion control set, and the rate it last measured delivering at.
    pub pacing_rate: Option<u64>,
    pub delivery_rate: Option<u64>,
    /// Bytes the peer acknowledged; bytes received (the receiving side's).
    pub bytes_acked: Option<u64>,
    pub bytes_received: Option<u64>,
    /// Time with data to send (busy), and the parts of it stalled by the receiver's window and by the send buffer
    /// (the kernel's chrono stats, 4.10 and later).
    pub busy_us: Option<u64>,
    pub rwnd_limited_us: Option<u64>,
    pub sndbuf_limited_us: Option<u64>,
    /// The receiving side's estimate of the round trip, and the space it offers.
    pub rcv_rtt_us: Option<u32>,
    pub rcv_space: Option<u32>,
    /// The lowest round trip seen (the path's own, 4.9 and later), and the segment size the sender uses, in bytes.
    #[serde(default)]
    pub min_rtt_us: Option<u32>,
    #[serde(default)]
    pub snd_mss: Option<u32>,
}

/// Reads a socket's TCP_INFO.
pub fn tcp_info(sock: &impl std::os::fd::AsRawFd) -> std::io::Result<TcpInfo> {
    use std::mem::{offset_of, size_of, size_of_val};
    // SAFETY: tcp_info is plain old data; all zeroes is a valid value of it.
    let mut raw: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `raw`, which outlives the call; the kernel writes at most `len` bytes
    // and says how many it wrote.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut raw as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let filled = len as usize;
    // A field counts only if the kernel's struct reached past its end.
    macro_rules! field {
        ($f:ident) => {
            (offset_of!(libc::tcp_info, $f) + size_of_val(&raw.$f) <= filled).then_some(raw.$f)
        };
    }
    Ok(TcpInfo {
        total_retrans: field!(tcpi_total_retrans),
        rtt_us: field!(tcpi_rtt),
        rttvar_us: field!(tcpi_rttvar),
        snd_cwnd: field!(tcpi_snd_cwnd),
        pacing_rate: field!(tcpi_pacing_rate),
        delivery_rate: field!(tcpi_delivery_rate),
        bytes_acked: field!(tcpi_bytes_acked),
        bytes_received: field!(tcpi_bytes_received),
        busy_us: field!(tcpi_busy_time),
        rwnd_limited_us: field!(tcpi_rwnd_limited),
        sndbuf_limited_us: field!(tcpi_sndbuf_limited),
        rcv_rtt_us: field!(tcpi_rcv_rtt),
        rcv_space: field!(tcpi_rcv_space),
        min_rtt_us: field!(tcpi_min_rtt),
        snd_mss: field!(tcpi_snd_mss),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_reads_back_and_an_unknown_algorithm_is_refused_with_the_known_ones() {
        let system = default_cc().unwrap();
        assert!(check_cc(system).is_ok(), "{system}");
        let e = check_cc(Cc::new("nosuchcc").unwrap()).unwrap_err().to_string();
        assert!(e.contains("--cc") && e.contains("available:"), "{e}");
    }

    #[test]
    fn a_loopback_connection_reports_its_own_view() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let sent = vec![7u8; 4 << 20];
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut got = 0;
            while got < 4 << 20 {
                got += server.read(&mut buf).unwrap();
            }
            tcp_info(&server).unwrap()
        });
        client.write_all(&sent).unwrap();
        let rx = reader.join().unwrap();
        let tx = tcp_info(&client).unwrap();
        assert_eq!(tx.total_retrans, Some(0), "{tx:?}");
        assert!(tx.rtt_us.is_some_and(|r| r > 0 && r < 1_000_000), "{tx:?}");
        assert!(tx.bytes_acked.is_some_and(|b| b > 0), "{tx:?}");
        assert!(tx.busy_us.is_some(), "{tx:?}");
        assert!(tx.min_rtt_us.is_some_and(|m| m > 0), "{tx:?}");
        assert!(tx.snd_mss.is_some_and(|m| m > 0 && m < 65536), "{tx:?}");
        assert!(rx.bytes_received.is_some_and(|b| b >= 4 << 20), "{rx:?}");
    }
}
