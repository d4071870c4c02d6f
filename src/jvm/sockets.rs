//! The JVM's own sockets and files, seen from here. Each of the JVM's connections is reached through a copy of its
//! file descriptor, taken with pidfd_getfd(2) (Linux 5.6; the right to ptrace the JVM, which its parent has as root
//! or under Yama's default scope): the copy is the same socket, not another connection, so this process sets its
//! congestion control, writes the stream header, reads the sink's ack, notices and report, and reads its TCP_INFO,
//! while the JVM only connects and sends. The JVM's descriptors are found in /proc/PID/fd: sockets by the local port
//! the JVM reports and the peer they reach, files by the path they were opened with.

use anyhow::Context;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

/// One of the JVM's connections: its descriptor number inside the JVM, and this process's copy of it.
pub struct JvmSocket {
    pub fd_in_jvm: i32,
    pub sock: TcpStream,
}

/// A pidfd of `pid` (pidfd_open(2)).
fn pidfd(pid: i32) -> anyhow::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        anyhow::bail!("pidfd_open of the JVM (pid {pid}): {e}{}", needs(&e));
    }
    // SAFETY: the descriptor was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// What a failure of pidfd_open or pidfd_getfd asks for.
fn needs(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSYS) => " (it needs Linux 5.6 or later)",
        Some(libc::EPERM) => {
            " (this process must be allowed to ptrace the JVM it started: root, or kernel.yama.ptrace_scope 0 or 1)"
        }
        _ => "",
    }
}

/// A copy of descriptor `target` of the process behind `pidfd` (pidfd_getfd(2)).
fn take(pidfd: &OwnedFd, target: i32) -> std::io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_getfd takes two descriptors and flags and returns a new descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The JVM's descriptors whose /proc link satisfies `pick`, with the link's text.
fn descriptors(pid: i32, pick: impl Fn(&str) -> bool) -> anyhow::Result<Vec<(i32, String)>> {
    let dir = format!("/proc/{pid}/fd");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list '{dir}'"))? {
        let entry = entry?;
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        // A descriptor closed since the listing has no link: it is not one of ours.
        if let Ok(link) = std::fs::read_link(entry.path()) {
            let link = link.to_string_lossy().into_owned();
            if pick(&link) {
                found.push((fd, link));
            }
        }
    }
    Ok(found)
}

/// The JVM's connections to `peer` from the local `ports`, in the order of `ports`.
pub fn find(pid: i32, ports: &[u16], peer: SocketAddr) -> anyhow::Result<Vec<JvmSocket>> {
    let pidfd = pidfd(pid)?;
    let mut found: Vec<Option<JvmSocket>> = ports.iter().map(|_| None).collect();
    for (fd, _) in descriptors(pid, |l| l.starts_with("socket:"))? {
        let copy = match take(&pidfd, fd) {
            Ok(copy) => copy,
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => continue, // closed since the listing
            Err(e) => anyhow::bail!("pidfd_getfd of the JVM's descriptor {fd}: {e}{}", needs(&e)),
        };
        let sock = TcpStream::from(copy);
        let (Ok(local), Ok(remote)) = (sock.local_addr(), sock.peer_addr()) else {
            continue; // not a connected TCP socket (a listener, a pipe of the JVM's own, a Unix socket)
        };
        // A JVM's sockets are IPv6 by default, reaching an IPv4 peer at its mapped address.
        if remote.ip().to_canonical() != peer.ip().to_canonical() || remote.port() != peer.port() {
            continue;
        }
        if let Some(i) = ports.iter().position(|&p| p == local.port()) {
            found[i] = Some(JvmSocket { fd_in_jvm: fd, sock });
        }
    }
    found
        .into_iter()
        .zip(ports)
        .map(|(s, port)| {
            s.ok_or_else(|| {
                anyhow::anyhow!("the JVM's connection from port {port} to {peer} is not among its descriptors")
            })
        })
        .collect()
}

/// The JVM's descriptors open on `path`.
pub fn files(pid: i32, path: &Path) -> anyhow::Result<Vec<i32>> {
    let want = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let want = want.to_string_lossy().into_owned();
    Ok(descriptors(pid, |l| l == want)?.into_iter().map(|(fd, _)| fd).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_s_socket_is_reached_through_a_copy() {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        // A child holds a connection as its descriptor 3, and this process closes its own: the copy taken from the
        // child is the same socket.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = listener.local_addr().unwrap();
        let sock = TcpStream::connect(peer).unwrap();
        let port = sock.local_addr().unwrap().port();
        let (mut accepted, _) = listener.accept().unwrap();
        let raw = sock.as_raw_fd();
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        // SAFETY: dup2 is async-signal-safe; `raw` is open in the parent and so in the child after fork.
        unsafe {
            cmd.pre_exec(move || match libc::dup2(raw, 3) {
                3 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            });
        }
        let mut child = cmd.spawn().unwrap();
        drop(sock);
        let socks = find(child.id() as i32, &[port], peer).unwrap();
        assert_eq!(socks[0].fd_in_jvm, 3);
        std::io::Write::write_all(&mut &socks[0].sock, b"via the copy").unwrap();
        let mut got = [0u8; 12];
        std::io::Read::read_exact(&mut accepted, &mut got).unwrap();
        assert_eq!(&got, b"via the copy");
        let _ = child.kill();
        let _ = child.wait();
    }
}
