//! A network namespace of the run's own whose loopback has the MTU asked for (`--netns-mtu`). Receive zero-copy
//! (`--rx-mode zerocopy`) maps whole pages only, so it needs every segment's payload to fill whole pages; the
//! loopback's 65,536-byte MTU does not give that, 15 pages plus the headers do (61,492 over IPv4 with TCP
//! timestamps, 61,512 over IPv6, as the kernel's own tcp_mmap selftest notes).
//!
//! The namespace is made with unshare(CLONE_NEWNET) before the run starts any thread, so the sender, the sink it
//! spawns and every socket live in it; its loopback is brought up with that MTU; and the kernel removes it when the
//! run's last process ends. Nothing outside it changes. It needs CAP_SYS_ADMIN (root).

use crate::base::error::UsageError;
use std::os::fd::AsRawFd;

/// The loopback MTU whose segments carry 15 pages of payload over IPv4 with TCP timestamps: 15 x 4096 + 20 (IPv4)
/// + 32 (TCP with its timestamp option).
pub const ZEROCOPY_MTU_IPV4: u32 = 15 * 4096 + 20 + 32;

/// Moves this process into a network namespace of its own and brings its loopback up with `mtu`.
pub fn enter(mtu: u32) -> Result<(), UsageError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(UsageError::msg(
            "--netns-mtu makes a network namespace of the run's own, which needs root (CAP_SYS_ADMIN)",
        ));
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| UsageError::msg(format!("--netns-mtu: cannot make a network namespace: {e}")))?;
    loopback_up(mtu).map_err(|e| UsageError::msg(format!("--netns-mtu {mtu}: cannot set up the loopback: {e}")))
}

/// `struct ifreq` for `lo`.
fn ifreq_lo() -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all zeroes is a valid value of it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    req
}

fn ioctl(fd: &impl AsRawFd, request: libc::Ioctl, req: &mut libc::ifreq) -> std::io::Result<()> {
    // SAFETY: `req` is a valid ifreq that outlives the call; these requests read and write only within it.
    match unsafe { libc::ioctl(fd.as_raw_fd(), request, req as *mut libc::ifreq) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

fn loopback_up(mtu: u32) -> std::io::Result<()> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").or_else(|_| std::net::UdpSocket::bind("[::]:0"));
    let sock = match sock {
        Ok(s) => s,
        // A fresh namespace has no address to bind before lo is up: any datagram socket serves for the ioctls.
        Err(_) => return loopback_up_with(&raw_socket()?, mtu),
    };
    loopback_up_with(&sock, mtu)
}

fn raw_socket() -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    Ok(socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

fn loopback_up_with(fd: &impl AsRawFd, mtu: u32) -> std::io::Result<()> {
    let mut req = ifreq_lo();
    req.ifr_ifru.ifru_mtu = mtu as libc::c_int;
    ioctl(fd, libc::SIOCSIFMTU as libc::Ioctl, &mut req)?;
    let mut req = ifreq_lo();
    ioctl(fd, libc::SIOCGIFFLAGS as libc::Ioctl, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    ioctl(fd, libc::SIOCSIFFLAGS as libc::Ioctl, &mut req)
}

/// The MTU of `lo` in this process's network namespace.
#[cfg(test)]
fn loopback_mtu() -> Option<u32> {
    crate::base::env::mtu_of("lo")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_of_its_own_gets_the_mtu_and_leaves_the_hosts_alone() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("not root: the namespace cannot be made here");
            return;
        }
        let host = loopback_mtu().unwrap();
        // In a thread of its own: unshare moves the calling thread only, and the test harness's other threads stay.
        let inside = std::thread::spawn(|| {
            enter(ZEROCOPY_MTU_IPV4).unwrap();
            let mtu = loopback_mtu();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let client = std::net::TcpStream::connect(listener.local_addr().unwrap());
            (mtu, client.is_ok())
        })
        .join()
        .unwrap();
        assert_eq!(inside, (Some(ZEROCOPY_MTU_IPV4), true));
        assert_eq!(loopback_mtu(), Some(host), "the host's loopback is untouched");
    }
}
