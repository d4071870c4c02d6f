//! How fast the fixture's content is generated and checked on one CPU (the sink's cost of `--verify`), for
//! page-aligned 256 KiB buffers and for the odd lengths and offsets a TCP `recv` returns.
//! `cargo run --release --example pattern_speed`

use std::time::Instant;
use xferbench::pattern::Pattern;

fn main() {
    let total: u64 = 4_000_000_000;
    let p = Pattern::new(1);
    let mut buf = vec![0u8; 1 << 20];
    for (name, len) in [
        ("256 KiB, aligned", 256usize << 10),
        ("65483 B, unaligned", 65483),
        ("200001 B, unaligned", 200_001),
    ] {
        let rounds = total / len as u64;
        let t = Instant::now();
        for r in 0..rounds {
            p.fill(r * len as u64, &mut buf[..len]);
        }
        let fill = (rounds * len as u64) as f64 / 1e6 / t.elapsed().as_secs_f64();
        // Check the same range over and over, as the sink checks the buffer recv just wrote (cache-warm).
        let at = 3 * len as u64;
        p.fill(at, &mut buf[..len]);
        let t = Instant::now();
        let bad = (0..rounds)
            .filter(|_| p.first_mismatch(at, &buf[..len]).is_some())
            .count();
        let check = (rounds * len as u64) as f64 / 1e6 / t.elapsed().as_secs_f64();
        println!("{name:>20}: fill {fill:>6.0} MB/s, check {check:>6.0} MB/s (one CPU; {bad} mismatches, 0 expected)");
    }
}
