//! Zero-copy on the receiving side (issue 24): `--rx-mode zerocopy` (TCP_ZEROCOPY_RECEIVE) in the sink, checked
//! byte for byte, with the share the kernel mapped and the MTU of the interface in every row; `--netns-mtu` runs in
//! a loopback of the run's own. Whether the kernel maps anything is its business (on kernels with the 2024 check
//! of rx zerocopy it maps no page that loopback or veth deliver: they are the sender's own page-cache or socket
//! pages); the tests hold the sink to what it must do either way: every byte counted and checked, mapped or copied.

mod common;

use common::{LIMIT, Sink, assert_fails, rows, run_cmd, run_limited, stream_header};
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpStream};
use xferbench::model::{RxMode, VerifyOn};
use xferbench::wire::{self, Ack, StreamHeader, StreamReport};

/// Sends `data` as one verified stream of a `data.len()`-byte file (seed 5) received zero-copy.
fn zero_copy_stream(addr: &str, data: &[u8], verify_on: Option<VerifyOn>) -> StreamReport {
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
    (&sock).write_all(data).unwrap();
    sock.shutdown(Shutdown::Write).unwrap();
    wire::read_line(&mut reader).unwrap()
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

/// A run in a loopback of its own with a 61,492-byte MTU (every full IPv4 segment whole pages), serial and parallel,
/// zero-copy and copy side by side: every row verified, the MTU recorded, the mapped share in [0, 1] for the
/// zero-copy rows and absent for the others, no fallback; the summary says what the kernel mapped when it mapped
/// little. The same run without `--netns-mtu` records loopback's own MTU.
#[test]
fn a_zero_copy_run_in_a_loopback_of_its_own_is_verified_and_records_the_mtu() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--strategies",
        "sendfile,parallel-sendfile",
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
    assert_eq!(rows.len(), 4);
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

/// An MTU no interface may have, and one with a remote sink (whose network the run does not own), are usage errors.
#[test]
fn a_bad_netns_mtu_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = run_cmd(&[], dir.path(), &["--netns-mtu", "100"]);
    assert_fails(&run_limited(cmd, LIMIT), 2, "--netns-mtu");
    cmd = run_cmd(&[], dir.path(), &["--netns-mtu", "61492", "--connect", "127.0.0.1:9"]);
    assert_fails(&run_limited(cmd, LIMIT), 2, "--netns-mtu");
}
