//! The interface a run's connections use and what it offloads. On one box that is `lo`; towards a peer it is
//! the interface holding the local address the kernel picks for the route, found the way the kernel itself would
//! choose it (a connected UDP socket sends nothing, and getsockname then names the source address). Segment
//! sizes come from rtnetlink, which is the only place they are published, and offloads from the legacy ethtool
//! ioctls, which every kernel answers for every device from its feature flags.

use super::read::{self, UNKNOWN};
use super::record::Interface;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrLike, recv, send, socket};
use std::net::{IpAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};

/// Legacy ethtool commands (<linux/ethtool.h>), each answered with a `struct ethtool_value`.
const ETHTOOL_GTSO: u32 = 0x1e;
const ETHTOOL_GGSO: u32 = 0x23;
const ETHTOOL_GGRO: u32 = 0x2b;

/// Link attributes (<linux/if_link.h>): u32 byte counts; absent on kernels that predate them.
const IFLA_GSO_MAX_SIZE: u16 = 41;
const IFLA_GRO_MAX_SIZE: u16 = 58;
const IFLA_TSO_MAX_SIZE: u16 = 59;
/// Netlink header and `struct ifinfomsg`, each 16 bytes.
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

pub fn interface(peer: Option<IpAddr>) -> Interface {
    let Some(name) = interface_name(peer) else {
        return Interface::default();
    };
    let sizes = nix::net::if_::if_nametoindex(name.as_str())
        .ok()
        .and_then(link_attributes);
    let size = |attr: u16| {
        read::or_unknown(
            sizes
                .as_deref()
                .and_then(|s| attribute_u32(s, attr))
                .map(|v| v.to_string()),
        )
    };
    Interface {
        // From the socket's own namespace (sysfs shows the one it was mounted in: a run in a namespace of its own,
        // --netns-mtu, would read the host's).
        mtu_bytes: mtu_of(&name).map_or_else(|| read::value(format!("/sys/class/net/{name}/mtu")), |m| m.to_string()),
        gso_max_size_bytes: size(IFLA_GSO_MAX_SIZE),
        gro_max_size_bytes: size(IFLA_GRO_MAX_SIZE),
        tso_max_size_bytes: size(IFLA_TSO_MAX_SIZE),
        tso: offload(&name, ETHTOOL_GTSO),
        gso: offload(&name, ETHTOOL_GGSO),
        gro: offload(&name, ETHTOOL_GGRO),
        name,
    }
}

/// The MTU of interface `name` in this process's network namespace (SIOCGIFMTU).
pub fn mtu_of(name: &str) -> Option<u32> {
    let fd: OwnedFd = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).ok()?;
    // SAFETY: ifreq is plain old data; all zeroes is a valid value of it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return None;
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq naming the interface, and outlives the call, which writes only within it.
    let r = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::SIOCGIFMTU as libc::Ioctl,
            &mut req as *mut libc::ifreq,
        )
    };
    if r != 0 {
        return None;
    }
    // SAFETY: on success SIOCGIFMTU filled the mtu member of the union.
    Some(unsafe { req.ifr_ifru.ifru_mtu } as u32)
}

/// `lo` for no peer or a loopback one; else the interface holding the source address the kernel picks for the
/// peer. A peer that is one of this machine's own addresses is reached over `lo` too, whichever interface
/// holds the address.
fn interface_name(peer: Option<IpAddr>) -> Option<String> {
    let peer = match peer.map(|p| p.to_canonical()) {
        None => return Some("lo".to_string()),
        Some(p) if p.is_loopback() => return Some("lo".to_string()),
        Some(p) => p,
    };
    let local = source_address(peer)?;
    if local == peer {
        return Some("lo".to_string());
    }
    nix::ifaddrs::getifaddrs()
        .ok()?
        .find(|a| a.address.as_ref().and_then(ip_of) == Some(local))
        .map(|a| a.interface_name)
}

/// The local address the kernel would send to `peer` from (connect on UDP picks a route and sends nothing).
fn source_address(peer: IpAddr) -> Option<IpAddr> {
    let any: IpAddr = if peer.is_ipv4() {
        [0, 0, 0, 0].into()
    } else {
        [0u16; 8].into()
    };
    let socket = UdpSocket::bind((any, 0)).ok()?;
    socket.connect((peer, 9)).ok()?;
    Some(socket.local_addr().ok()?.ip().to_canonical())
}

fn ip_of(addr: &nix::sys::socket::SockaddrStorage) -> Option<IpAddr> {
    match addr.family()? {
        AddressFamily::Inet => addr.as_sockaddr_in().map(|a| IpAddr::V4(a.ip())),
        AddressFamily::Inet6 => addr.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())),
        _ => None,
    }
}

/// "on" or "off" for one legacy ethtool get command, "unknown" when the ioctl fails.
fn offload(name: &str, cmd: u32) -> String {
    match ethtool(name, cmd, 0) {
        Ok(0) => "off".to_string(),
        Ok(_) => "on".to_string(),
        Err(_) => UNKNOWN.to_string(),
    }
}

/// Issues one legacy ethtool command (`cmd`, with `data` for a set) on interface `name` in the calling thread's
/// network namespace; returns the `data` the kernel left (a get's answer).
pub fn ethtool(name: &str, cmd: u32, data: u32) -> std::io::Result<u32> {
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::other(format!("interface name too long: {name}")));
    }
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    let mut value = EthtoolValue { cmd, data };
    // SAFETY: ifreq is plain old data (a name array and a union of integers, addresses and a pointer), for which
    // all zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_data = (&raw mut value).cast();
    // SAFETY: `req` names the interface with a NUL-terminated name (checked shorter than IFNAMSIZ, rest zero) and
    // points at `value`, a live `struct ethtool_value` the kernel reads `cmd` (and `data`) from and writes `data`
    // into; both outlive the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as _, &raw mut req) };
    match rc {
        0 => Ok(value.data),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// The attributes of link `index` from an RTM_GETLINK request, as the bytes of the reply; `None` on any failure.
fn link_attributes(index: u32) -> Option<Vec<u8>> {
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .ok()?;
    // The kernel answers a single-link request at once; the timeout only guards against a kernel that does not.
    let timeout = nix::sys::time::TimeVal::new(1, 0);
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::ReceiveTimeout, &timeout).ok()?;
    send(sock.as_raw_fd(), &getlink_request(index), MsgFlags::empty()).ok()?;
    receive(&sock)
}

fn receive(sock: &OwnedFd) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 32 * 1024];
    let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// nlmsghdr (length, RTM_GETLINK, NLM_F_REQUEST, sequence 1, port 0) then ifinfomsg with only the index set.
fn getlink_request(index: u32) -> Vec<u8> {
    let mut msg = Vec::with_capacity(NLMSG_HDRLEN + IFINFOMSG_LEN);
    msg.extend_from_slice(&((NLMSG_HDRLEN + IFINFOMSG_LEN) as u32).to_ne_bytes());
    msg.extend_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
    msg.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // ifinfomsg: family (AF_UNSPEC) and padding, type, index, flags, change.
    msg.extend_from_slice(&[0, 0, 0, 0]);
    msg.extend_from_slice(&index.to_ne_bytes());
    msg.extend_from_slice(&[0; 8]);
    msg
}

/// A u32 link attribute from an RTM_NEWLINK reply; `None` for an error reply, a truncated message, or an
/// attribute the kernel did not send.
pub fn attribute_u32(reply: &[u8], wanted: u16) -> Option<u32> {
    let u16_at = |at: usize| reply.get(at..at + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let u32_at = |at: usize| {
        reply
            .get(at..at + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let len = (u32_at(0)? as usize).min(reply.len());
    if u16_at(4)? != libc::RTM_NEWLINK {
        return None;
    }
    let mut at = NLMSG_HDRLEN + IFINFOMSG_LEN;
    while at + 4 <= len {
        let attr_len = u16_at(at)? as usize;
        // The top two bits of the type are flags (nested, byte order), not part of it.
        let kind = u16_at(at + 2)? & 0x3fff;
        if attr_len < 4 {
            return None;
        }
        if kind == wanted && attr_len >= 8 {
            return u32_at(at + 4);
        }
        at += attr_len.next_multiple_of(4);
    }
    None
}
