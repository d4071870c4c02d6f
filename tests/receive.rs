//! Zero-copy on the receiving side (issue 24): `--rx-mode zerocopy` (TCP_ZEROCOPY_RECEIVE) in the sink, checked
//! byte for byte, with the share the kernel mapped and the MTU of the interface in every row; `--netns-mtu` runs in
//! a loopback of the run's own. How much the kernel maps is its business (on kernels with the 2024 check of rx
//! zerocopy it maps none of the sender's own page-cache or socket pages that loopback delivers, only the fresh pages
//! that loopback copies MSG_ZEROCOPY sends into); the tests hold the sink to what it must do either way: every byte
//! counted and checked, mapped or copied, and a run whose sends loopback copies does map.

mod common;

use common::{LIMIT, Sink, assert_fails, rows, run_cmd, run_limited, run_small, stream_header};
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use xferbench::model::{RxMode, VerifyOn};
use xferbench::wire::{self, Ack, StreamHeader, StreamReport};

/// Sends `data` as one verified stream of a `data.len()`-byte file (seed 5) received zero-copy.
fn zero_copy_stream(addr: &str, data: &[u8], verify_on: Option<VerifyOn>) -> StreamReport {
    send_to_zero_copy_sink(addr, data, verify_on, false)
}

/// `zero_copy_stream`, the data sent with MSG_ZEROCOPY when `zerocopy_send` is set: loopback copies such sends into
/// fresh pages of its own before delivering them, and those are pages the kernel will map into the sink.
fn send_to_zero_copy_sink(addr: &str, data: &[u8], verify_on: Option<VerifyOn>, zerocopy_send: bool) -> StreamReport {
    let sock = TcpStream::connect(addr).unwrap();
    let header = StreamHeader {
        seed: Some(5),
        verify: true,
        verify_on,
        rx_mode: Some(RxMode::Zerocopy),
        ..stream_header(data.len() as u64, 64 << 10)
    };
    wire::write_header(&mut &sock, &header).unwrap();
    let mut reader = BufReader::new(&sock);
    let ack: Ack = wire::read_line(&mut reader).unwrap();
    assert!(ack.ok, "{ack:?}");
    if zerocopy_send {
        send_zero_copy(&sock, data);
    } else {
        (&sock).write_all(data).unwrap();
    }
    sock.shutdown(Shutdown::Write).unwrap();
    wire::read_line(&mut reader).unwrap()
}

/// Writes all of `data` with MSG_ZEROCOPY, 64 KiB a call, dropping the completions as they come (`data` outlives
/// every send: it is borrowed until the stream's report, after the sink has read everything).
fn send_zero_copy(sock: &TcpStream, data: &[u8]) {
    let fd = sock.as_raw_fd();
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option of its size.
    let set = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ZEROCOPY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_ZEROCOPY: {}", std::io::Error::last_os_error());
    let mut sent = 0;
    while sent < data.len() {
        let piece = &data[sent..data.len().min(sent + (64 << 10))];
        // SAFETY: `piece` is valid for its length and stays unchanged and alive until the stream has been read.
        let n = unsafe { libc::send(fd, piece.as_ptr().cast(), piece.len(), libc::MSG_ZEROCOPY) };
        if n >= 0 {
            sent += n as usize;
            continue;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::ENOBUFS), "send with MSG_ZEROCOPY: {e}");
        // Too many completions unread: read them (their contents do not matter here) and go on.
        let mut control = [0u8; 256];
        // SAFETY: an empty msghdr but for its control buffer, which is valid for its length.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = control.len();
            libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT);
        }
    }
}

/// A zero-copy stream is checked where it lies (in the receiver, whatever was asked: mapped pages are checked in
/// place before they are let go), and a wrong byte is found at its offset.
#[test]
fn a_stream_received_zero_copy_is_checked_byte_for_byte() {
    let sink = Sink::start(&[], &["--listen", "127.0.0.1:0"]);
    let mut data = vec![0u8; 3 << 20];
    xferbench::pattern::fill(5, 0, &mut data);
    for asked in [None, Some(VerifyOn::Thread)] {
        let good = zero_copy_stream(&sink.addr, &data, asked);
        assert!(good.verified && good.bytes == data.len() as u64, "{good:?}");
        assert_eq!(good.verify_on, Some(VerifyOn::Receiver), "asked {asked:?}");
        assert_eq!(good.rx_fallback, None, "{good:?}");
        let mapped = good.mapped_bytes.expect("the mapped bytes are reported");
        assert!(mapped <= good.bytes, "{good:?}");
    }
    data[2_345_678] ^= 0x40;
    let bad = zero_copy_stream(&sink.addr, &data, None);
    assert!(!bad.verified, "{bad:?}");
    assert_eq!(bad.mismatch_offset, Some(2_345_678));
    assert_eq!(bad.bytes, data.len() as u64);
    assert!(!sink.log().contains("panicked"), "{}", sink.log());
}

/// A wrong byte in a page the kernel mapped is found, and the report says it lay in one. Two streams at once, each
/// sent with MSG_ZEROCOPY (loopback copies such sends into fresh pages, which the kernel maps; two streams keep the
/// sink behind enough that pages pile up), each with one byte flipped; the kernel decides what it maps, so up to
/// ten tries for a wrong byte that it mapped (on this project's VM the first try does: it maps about 90%).
#[test]
fn a_wrong_byte_in_a_mapped_page_is_found_there() {
    let sink = Sink::start(&[], &["--listen", "127.0.0.1:0"]);
    let mut data = vec![0u8; 8 << 20];
    xferbench::pattern::fill(5, 0, &mut data);
    let at = 6_000_123;
    data[at] ^= 0x01;
    let mut in_mapped = 0;
    let mut mapped_bytes = 0;
    for _ in 0..10 {
        let reports: Vec<StreamReport> = std::thread::scope(|s| {
            let sends: Vec<_> = (0..2)
                .map(|_| s.spawn(|| send_to_zero_copy_sink(&sink.addr, &data, None, true)))
                .collect();
            sends.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &reports {
            assert!(!r.verified, "{r:?}");
            assert_eq!(r.mismatch_offset, Some(at as u64), "{r:?}");
            assert_eq!(r.bytes, data.len() as u64, "{r:?}");
            assert!(
                r.mismatch_mapped.is_some(),
                "a zero-copy stream says where the wrong byte lay: {r:?}"
            );
            mapped_bytes += r.mapped_bytes.unwrap_or(0);
            in_mapped += usize::from(r.mismatch_mapped == Some(true));
        }
        if in_mapped > 0 {
            break;
        }
    }
    assert!(
        in_mapped > 0,
        "no wrong byte lay in a mapped page in ten tries ({mapped_bytes} bytes mapped)"
    );
    assert!(!sink.log().contains("panicked"), "{}", sink.log());
}

/// A run in a loopback of its own with a 61,492-byte MTU (every full IPv4 segment whole pages), serial and parallel,
/// zero-copy and copy side by side: every row verified, the MTU recorded, the mapped share in [0, 1] for the
/// zero-copy rows and absent for the others, no fallback; the summary says what the kernel mapped when it mapped
/// little. The same run without `--netns-mtu` records loopback's own MTU.
#[test]
fn a_zero_copy_run_in_a_loopback_of_its_own_is_verified_and_records_the_mtu() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--strategies",
        "sendfile,parallel-sendfile,parallel-msg-zerocopy",
        "--threads",
        "2",
        "--rx-mode",
        "zerocopy,copy",
        "--verify",
    ];
    let mut cmd = run_cmd(&[], dir.path(), &args);
    cmd.args(["--netns-mtu", "61492"]);
    let out = run_limited(cmd, LIMIT);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = rows(dir.path());
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert!(r.is_ok() && r.verified, "{r:?}");
        assert_eq!(r.mtu_bytes, Some(61_492), "{r:?}");
        assert_eq!(r.rx_fallback_reason, "", "{r:?}");
        match r.rx_mode {
            Some(RxMode::Zerocopy) => assert!(
                r.rx_zerocopy_mapped_ratio.is_some_and(|m| (0.0..=1.0).contains(&m)),
                "{r:?}"
            ),
            _ => assert_eq!(r.rx_zerocopy_mapped_ratio, None, "{r:?}"),
        }
    }
    // The sends loopback copies into fresh pages are mapped (the kernel's share; about half and more here).
    for r in rows
        .iter()
        .filter(|r| r.rx_mode == Some(RxMode::Zerocopy) && r.strategy.to_string() == "msg-zerocopy")
    {
        if r.path == r.strategy {
            assert!(r.rx_zerocopy_mapped_ratio.is_some_and(|m| m > 0.0), "{r:?}");
        } else {
            eprintln!("msg-zerocopy fell back here: {} ({})", r.path, r.fallback_reason);
        }
    }
    let summary = std::fs::read_to_string(dir.path().join("out/summary.json")).unwrap();
    if rows.iter().any(|r| r.rx_zerocopy_mapped_ratio.is_some_and(|m| m < 0.5)) {
        assert!(summary.contains("mapped"), "{summary}");
    }

    let plain = tempfile::tempdir().unwrap();
    let out = run_limited(run_cmd(&[], plain.path(), &["--strategies", "sendfile"]), LIMIT);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lo = xferbench::env::mtu_of("lo");
    assert_eq!(common::rows(plain.path())[0].mtu_bytes, lo);
}

/// Cold passes into a zero-copy sink: after each pass the sender waits for the sink's notice, so the sink must wake
/// for the last bytes of a pass though they are fewer than it waits for at other times (SO_RCVLOWAT); a sink that
/// did not would hold every pass until the idle timeout. Three passes of 3 MiB and a bit, verified, each well
/// inside the time limit.
#[test]
fn cold_passes_into_a_zero_copy_sink_end_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let args = [
        "--chunk",
        "1MiB",
        "--cache",
        "cold",
        "--passes",
        "3",
        "--repeat",
        "2",
        "--verify",
        "--timeout",
        "60s",
        "--strategies",
        "sendfile,msg-zerocopy",
        "--rx-mode",
        "zerocopy",
    ];
    let out = run_small(dir.path(), "3000001", &args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = rows(dir.path());
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert!(r.is_ok() && r.verified && r.passes == 3, "{r:?}");
        assert!(r.wall_s < 10.0, "a pass waited for the sink: {r:?}");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// An MTU no interface may have, and one with a remote sink (whose network the run does not own), are usage errors.
#[test]
fn a_bad_netns_mtu_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = run_cmd(&[], dir.path(), &["--netns-mtu", "100"]);
    assert_fails(&run_limited(cmd, LIMIT), 2, "--netns-mtu");
    cmd = run_cmd(&[], dir.path(), &["--netns-mtu", "61492", "--connect", "127.0.0.1:9"]);
    assert_fails(&run_limited(cmd, LIMIT), 2, "--netns-mtu");
}
