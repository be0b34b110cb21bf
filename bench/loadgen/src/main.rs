//! sqltun benchmark helper: the target behind the tunnel and the load in front of it.
//!
//! One binary, standard library only, thread per connection (plain blocking sockets are the cheapest
//! way to keep a loopback target far faster than any SSH tunnel). Every socket has a read and write
//! timeout, so nothing here can hang without a bound.
//!
//! Target protocol (one port, the first byte a client sends picks the service):
//!   `S`  sink:   the client sends any number of bytes and half-closes; the server answers with the
//!                count it received (u64, little endian) and closes.
//!   `D`  source: the client sends a u64 (little endian) N; the server sends N bytes and half-closes.
//!   `E`  echo:   the server sends back everything it receives until EOF, then half-closes.
//!
//! Commands (each client command prints one JSON object on stdout):
//!   loadgen serve [ADDR]                      listen (default 127.0.0.1:0), print the port, serve
//!                                             until stdin reaches EOF
//!   loadgen upload ADDR BYTES                 one connection sends BYTES to the sink
//!   loadgen download ADDR BYTES               one connection receives BYTES from the source
//!   loadgen rr ADDR COUNT SIZE                COUNT round trips of SIZE bytes on one echo connection
//!   loadgen conns ADDR COUNT SIZE             COUNT sequential connect + SIZE-byte echo + close
//!   loadgen streams ADDR N BYTES up|down      N concurrent connections, BYTES each, started together

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::exit;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Buffer for bulk reads and writes.
const CHUNK: usize = 256 * 1024;
/// Per-stream buffer when many streams run at once.
const STREAM_CHUNK: usize = 64 * 1024;
/// Bound on every blocking socket operation.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// Round trips done before timing starts on an echo connection.
const WARMUP: usize = 20;

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("loadgen: {what}: {e}");
    exit(1)
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen serve [ADDR] | upload ADDR BYTES | download ADDR BYTES | rr ADDR COUNT SIZE | \
         conns ADDR COUNT SIZE | streams ADDR N BYTES up|down"
    );
    exit(2)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or_else(|| usage())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(args.get(2).map_or("127.0.0.1:0", String::as_str)),
        Some("upload") => upload(arg(&args, 2), arg(&args, 3)),
        Some("download") => download(arg(&args, 2), arg(&args, 3)),
        Some("rr") => rr(arg(&args, 2), arg(&args, 3), arg(&args, 4)),
        Some("conns") => conns(arg(&args, 2), arg(&args, 3), arg(&args, 4)),
        Some("streams") => {
            let up = match args.get(5).map(String::as_str) {
                Some("up") => true,
                Some("down") => false,
                _ => usage(),
            };
            streams(arg(&args, 2), arg(&args, 3), arg(&args, 4), up)
        }
        _ => usage(),
    }
}

fn tune(s: &TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    tune(&s)?;
    Ok(s)
}

/// Bytes to send: not all zeros, so nothing along the way can shortcut them (no compression is on
/// anyway).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// Server

fn serve(addr: &str) {
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| fail("bind", e));
    let port = listener.local_addr().unwrap_or_else(|e| fail("local_addr", e)).port();
    println!("{port}");
    let _ = std::io::stdout().flush();
    // The harness holds our stdin open: when it goes away (even killed), so do we.
    thread::spawn(|| {
        let mut sink = [0u8; 64];
        while let Ok(n) = std::io::stdin().read(&mut sink) {
            if n == 0 {
                break;
            }
        }
        exit(0);
    });
    let source = Arc::new(pattern(CHUNK));
    for conn in listener.incoming() {
        match conn {
            Ok(s) => {
                let source = source.clone();
                thread::spawn(move || {
                    let _ = handle(s, &source);
                });
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("loadgen: accept: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn handle(mut s: TcpStream, source: &[u8]) -> std::io::Result<()> {
    tune(&s)?;
    let mut op = [0u8; 1];
    if s.read(&mut op)? == 0 {
        return Ok(()); // a readiness probe: connected and closed
    }
    match op[0] {
        b'S' => {
            let mut buf = vec![0u8; CHUNK];
            let mut total = 0u64;
            loop {
                match s.read(&mut buf)? {
                    0 => break,
                    n => total += n as u64,
                }
            }
            s.write_all(&total.to_le_bytes())?;
            s.shutdown(Shutdown::Write)?;
        }
        b'D' => {
            let mut len = [0u8; 8];
            s.read_exact(&mut len)?;
            let mut left = u64::from_le_bytes(len);
            while left > 0 {
                let n = left.min(source.len() as u64) as usize;
                s.write_all(&source[..n])?;
                left -= n as u64;
            }
            s.shutdown(Shutdown::Write)?;
            drain_to_eof(&mut s)?;
        }
        b'E' => {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match s.read(&mut buf)? {
                    0 => break,
                    n => s.write_all(&buf[..n])?,
                }
            }
            s.shutdown(Shutdown::Write)?;
        }
        _ => {}
    }
    Ok(())
}

/// Read until the peer closes, so closing our side never resets a connection with data in flight.
fn drain_to_eof(s: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    while s.read(&mut buf)? != 0 {}
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Clients

fn send_all(s: &mut TcpStream, bytes: u64, chunk: &[u8]) -> std::io::Result<()> {
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        s.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Upload `bytes` to the sink; returns once the sink confirmed it received them all.
fn upload_one(addr: SocketAddr, bytes: u64, chunk: &[u8]) -> std::io::Result<()> {
    let mut s = connect(addr)?;
    s.write_all(b"S")?;
    send_all(&mut s, bytes, chunk)?;
    s.shutdown(Shutdown::Write)?;
    let mut ack = [0u8; 8];
    s.read_exact(&mut ack)?;
    let got = u64::from_le_bytes(ack);
    if got != bytes {
        return Err(std::io::Error::other(format!(
            "the sink received {got} bytes of {bytes}"
        )));
    }
    Ok(())
}

/// Download `bytes` from the source; returns once the source closed after sending them.
fn download_one(addr: SocketAddr, bytes: u64, buf: &mut [u8]) -> std::io::Result<()> {
    let mut s = connect(addr)?;
    let mut req = [0u8; 9];
    req[0] = b'D';
    req[1..].copy_from_slice(&bytes.to_le_bytes());
    s.write_all(&req)?;
    let mut got = 0u64;
    loop {
        match s.read(buf)? {
            0 => break,
            n => got += n as u64,
        }
    }
    if got != bytes {
        return Err(std::io::Error::other(format!("received {got} bytes of {bytes}")));
    }
    Ok(())
}

fn upload(addr: SocketAddr, bytes: u64) {
    let chunk = pattern(CHUNK);
    let t = Instant::now();
    upload_one(addr, bytes, &chunk).unwrap_or_else(|e| fail("upload", e));
    let secs = t.elapsed().as_secs_f64();
    println!("{{\"bytes\":{bytes},\"secs\":{secs:.6}}}");
}

fn download(addr: SocketAddr, bytes: u64) {
    let mut buf = vec![0u8; CHUNK];
    let t = Instant::now();
    download_one(addr, bytes, &mut buf).unwrap_or_else(|e| fail("download", e));
    let secs = t.elapsed().as_secs_f64();
    println!("{{\"bytes\":{bytes},\"secs\":{secs:.6}}}");
}

fn echo_once(s: &mut TcpStream, msg: &[u8], back: &mut [u8]) -> std::io::Result<()> {
    s.write_all(msg)?;
    s.read_exact(back)?;
    if back != msg {
        return Err(std::io::Error::other("the echo differs from what was sent"));
    }
    Ok(())
}

/// Summary of per-operation times in nanoseconds, as JSON fields (microseconds).
fn summary(mut ns: Vec<u64>, total: Duration) -> String {
    ns.sort_unstable();
    let n = ns.len().max(1);
    let pct = |p: f64| ns.get(((n as f64 * p) as usize).min(n - 1)).copied().unwrap_or(0) as f64 / 1e3;
    let mean = ns.iter().sum::<u64>() as f64 / n as f64 / 1e3;
    format!(
        "\"count\":{},\"secs\":{:.6},\"mean_us\":{mean:.3},\"p50_us\":{:.3},\"p90_us\":{:.3},\"p99_us\":{:.3},\"max_us\":{:.3}",
        ns.len(),
        total.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        ns.last().copied().unwrap_or(0) as f64 / 1e3
    )
}

fn rr(addr: SocketAddr, count: usize, size: usize) {
    let run = || -> std::io::Result<String> {
        let mut s = connect(addr)?;
        s.write_all(b"E")?;
        let msg = pattern(size);
        let mut back = vec![0u8; size];
        for _ in 0..WARMUP {
            echo_once(&mut s, &msg, &mut back)?;
        }
        let mut ns = Vec::with_capacity(count);
        let t = Instant::now();
        for _ in 0..count {
            let t1 = Instant::now();
            echo_once(&mut s, &msg, &mut back)?;
            ns.push(t1.elapsed().as_nanos() as u64);
        }
        let total = t.elapsed();
        s.shutdown(Shutdown::Write)?;
        drain_to_eof(&mut s)?;
        Ok(summary(ns, total))
    };
    let out = run().unwrap_or_else(|e| fail("rr", e));
    println!("{{{out}}}");
}

fn conns(addr: SocketAddr, count: usize, size: usize) {
    let run = || -> std::io::Result<String> {
        // The op byte travels in the same write as the payload: one message each way.
        let mut msg = vec![b'E'];
        msg.extend(pattern(size));
        let mut back = vec![0u8; size];
        let mut ns = Vec::with_capacity(count);
        let t = Instant::now();
        for _ in 0..count {
            let t1 = Instant::now();
            let mut s = connect(addr)?;
            s.write_all(&msg)?;
            s.read_exact(&mut back)?;
            if back[..] != msg[1..] {
                return Err(std::io::Error::other("the echo differs from what was sent"));
            }
            drop(s);
            ns.push(t1.elapsed().as_nanos() as u64);
        }
        Ok(summary(ns, t.elapsed()))
    };
    let out = run().unwrap_or_else(|e| fail("conns", e));
    println!("{{{out}}}");
}

fn streams(addr: SocketAddr, n: usize, bytes: u64, up: bool) {
    let start = Arc::new(Barrier::new(n + 1));
    let chunk = Arc::new(pattern(STREAM_CHUNK));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let start = start.clone();
            let chunk = chunk.clone();
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || -> std::io::Result<Duration> {
                    let mut buf = vec![0u8; STREAM_CHUNK];
                    start.wait();
                    let t = Instant::now();
                    if up {
                        upload_one(addr, bytes, &chunk)?;
                    } else {
                        download_one(addr, bytes, &mut buf)?;
                    }
                    Ok(t.elapsed())
                })
                .unwrap_or_else(|e| fail("spawn", e))
        })
        .collect();
    start.wait();
    let t = Instant::now();
    let mut ns = Vec::with_capacity(n);
    for h in handles {
        match h.join() {
            Ok(Ok(d)) => ns.push(d.as_nanos() as u64),
            Ok(Err(e)) => fail("stream", e),
            Err(_) => fail("stream", "thread panicked"),
        }
    }
    let total = t.elapsed();
    let moved = bytes * n as u64;
    println!(
        "{{\"streams\":{n},\"bytes\":{moved},\"secs\":{:.6},\"slowest_s\":{:.6},\"fastest_s\":{:.6}}}",
        total.as_secs_f64(),
        ns.iter().max().copied().unwrap_or(0) as f64 / 1e9,
        ns.iter().min().copied().unwrap_or(0) as f64 / 1e9
    );
}
