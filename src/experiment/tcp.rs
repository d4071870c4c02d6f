//! What xferbench asks of a TCP socket beyond sending: its congestion control, set (TCP_CONGESTION) and read back,
//! and the system's default as a new socket gets it.

use crate::base::error::UsageError;
use crate::base::model::Cc;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, getsockopt, setsockopt, socket, sockopt};
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
}
