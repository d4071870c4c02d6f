//! How fast the fixture's content is generated and checked on one CPU (the sink's cost of `--verify`).
//! `cargo run --release --example pattern_speed`

use std::time::Instant;

fn main() {
    let mut buf = vec![0u8; 256 << 10];
    let total: u64 = 4_000_000_000;
    let t = Instant::now();
    let mut off = 0u64;
    while off < total {
        xferbench::pattern::fill(1, off, &mut buf);
        off += buf.len() as u64;
    }
    let fill = total as f64 / 1e6 / t.elapsed().as_secs_f64();
    xferbench::pattern::fill(1, 0, &mut buf);
    let t = Instant::now();
    let mut off = 0u64;
    let mut bad = 0;
    while off < total {
        if xferbench::pattern::first_mismatch(1, 0, &buf).is_some() {
            bad += 1;
        }
        off += buf.len() as u64;
    }
    let check = total as f64 / 1e6 / t.elapsed().as_secs_f64();
    println!("fill {fill:.0} MB/s, check {check:.0} MB/s (one CPU; {bad} mismatching buffers expected)");
}
