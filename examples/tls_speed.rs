//! How fast TLS 1.3 (rustls, ring) seals and opens on one CPU: the sender's cost of `tls-read-send` per byte
//! (sealing 32 KiB chunks, Kafka's shape, into a reused buffer; no socket) and the sink's (`Opener::read` over
//! loopback, its own 64 KiB `recv` calls included, beside a plain `recv` loop of the same bytes). MB/s per CPU
//! second of the thread doing the work. `cargo run --release --example tls_speed [MiB]` (default 256).

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;
use xferbench::tls::{self, Opener, Sealer, SinkIdentity};

fn thread_cpu_s() -> f64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9
}

/// A handshaken loopback pair: the sender's socket and sealer, the sink's socket and opener.
fn pair(identity: &SinkIdentity) -> anyhow::Result<(TcpStream, Sealer, TcpStream, Opener)> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let sock = TcpStream::connect(l.local_addr()?)?;
    let (sink_sock, _) = l.accept()?;
    let config = identity.server_config();
    let sink = std::thread::spawn(move || tls::accept(&sink_sock, config).map(|c| (sink_sock, Opener::new(c))));
    let sealer = Sealer::new(tls::connect(&sock, tls::client_config(&identity.fingerprint())?)?);
    let (sink_sock, opener) = sink.join().unwrap()?;
    Ok((sock, sealer, sink_sock, opener))
}

fn main() -> anyhow::Result<()> {
    let mib: u64 = std::env::args().nth(1).map_or(Ok(256), |a| a.parse())?;
    let total = mib << 20;
    let chunk = 32usize << 10;
    let identity = SinkIdentity::generate()?;
    let pattern = xferbench::pattern::Pattern::new(1);
    let mut plain = vec![0u8; chunk];
    pattern.fill(0, &mut plain);

    // Seal: one core, no socket.
    let (_sock, mut sealer, _sink_sock, _opener) = pair(&identity)?;
    let suite = sealer.cipher_suite();
    let mut out = Vec::with_capacity(2 * chunk);
    let (wall, cpu) = (Instant::now(), thread_cpu_s());
    for _ in 0..total / chunk as u64 {
        out.clear();
        sealer.seal(&plain, &mut out)?;
    }
    let (wall, cpu) = (wall.elapsed().as_secs_f64(), thread_cpu_s() - cpu);
    println!("{suite}, {mib} MiB in {} KiB chunks", chunk >> 10);
    println!(
        "seal:        {:>6.0} MB/s per CPU second ({:.0} MB/s wall)",
        total as f64 / 1e6 / cpu,
        total as f64 / 1e6 / wall
    );

    // Open: a writer thread sends a stream sealed beforehand; this thread reads it through the Opener.
    let (sock, mut sealer, sink_sock, mut opener) = pair(&identity)?;
    let mut stream = Vec::with_capacity(total as usize + total as usize / 256 + 4096);
    for _ in 0..total / chunk as u64 {
        sealer.seal(&plain, &mut stream)?;
    }
    sealer.close(&mut stream)?;
    let writer = std::thread::spawn(move || {
        (&sock).write_all(&stream).unwrap();
        sock.shutdown(Shutdown::Write).unwrap();
        sock
    });
    let mut buf = vec![0u8; 256 << 10];
    let mut got = 0u64;
    let (wall, cpu) = (Instant::now(), thread_cpu_s());
    loop {
        let n = opener.read(&sink_sock, &mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let (wall, cpu) = (wall.elapsed().as_secs_f64(), thread_cpu_s() - cpu);
    writer.join().unwrap();
    assert_eq!(got, total);
    println!(
        "open:        {:>6.0} MB/s per CPU second ({:.0} MB/s wall; {} recv calls)",
        total as f64 / 1e6 / cpu,
        total as f64 / 1e6 / wall,
        opener.recv_calls()
    );

    // The same bytes by plain recv(64 KiB), for the share of the open figure that is the socket's.
    let l = TcpListener::bind("127.0.0.1:0")?;
    let sock = TcpStream::connect(l.local_addr()?)?;
    let (sink_sock, _) = l.accept()?;
    let writer = std::thread::spawn(move || {
        let data = vec![7u8; 1 << 20];
        for _ in 0..total >> 20 {
            (&sock).write_all(&data).unwrap();
        }
    });
    let mut rbuf = vec![0u8; tls::OPENER_RECV_SIZE];
    let (wall, cpu) = (Instant::now(), thread_cpu_s());
    let mut got = 0u64;
    loop {
        let n = nix::sys::socket::recv(sink_sock.as_raw_fd(), &mut rbuf, nix::sys::socket::MsgFlags::empty())?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let (wall, cpu) = (wall.elapsed().as_secs_f64(), thread_cpu_s() - cpu);
    writer.join().unwrap();
    assert_eq!(got, total);
    println!(
        "plain recv:  {:>6.0} MB/s per CPU second ({:.0} MB/s wall)",
        total as f64 / 1e6 / cpu,
        total as f64 / 1e6 / wall
    );
    Ok(())
}
