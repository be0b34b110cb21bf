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
//!   loadgen idle ADDR N                       open N echo connections (one byte echoed on each),
//!                                             print a JSON line, hold them until stdin reaches EOF
//!   loadgen relay UPSTREAM DELAY_US [LOSS]    a delaying TCP relay (see `relay` below): listen on
//!                                             127.0.0.1:0, print the port, forward each connection
//!                                             to UPSTREAM, until stdin reaches EOF

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::exit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
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
         conns ADDR COUNT SIZE | streams ADDR N BYTES up|down | idle ADDR N | \
         relay UPSTREAM DELAY_US [LOSS]"
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
        Some("idle") => idle(arg(&args, 2), arg(&args, 3)),
        Some("relay") => {
            let loss: f64 = args
                .get(4)
                .map_or(Some(0.0), |s| s.parse().ok())
                .unwrap_or_else(|| usage());
            if !(0.0..1.0).contains(&loss) {
                usage();
            }
            relay(arg(&args, 2), Duration::from_micros(arg(&args, 3)), loss)
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
    exit_with_stdin();
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

/// The harness holds our stdin open: when it goes away (even killed), so do we.
fn exit_with_stdin() {
    thread::spawn(|| {
        wait_stdin_eof();
        exit(0);
    });
}

fn wait_stdin_eof() {
    let mut sink = [0u8; 64];
    while let Ok(n) = std::io::stdin().read(&mut sink) {
        if n == 0 {
            break;
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

/// Opens `n` echo connections, each confirmed end to end by one echoed byte, reports, then holds
/// them open (idle) until stdin reaches EOF: the harness measures the tunnel's memory meanwhile.
fn idle(addr: SocketAddr, n: usize) {
    let t = Instant::now();
    let open = || -> std::io::Result<Vec<TcpStream>> {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            let mut s = connect(addr)?;
            s.write_all(b"Ex")?;
            let mut back = [0u8; 1];
            s.read_exact(&mut back)?;
            if back[0] != b'x' {
                return Err(std::io::Error::other("the echo differs from what was sent"));
            }
            held.push(s);
        }
        Ok(held)
    };
    let held = open().unwrap_or_else(|e| fail("idle", e));
    println!("{{\"open\":{},\"secs\":{:.6}}}", held.len(), t.elapsed().as_secs_f64());
    let _ = std::io::stdout().flush();
    wait_stdin_eof();
    for s in &held {
        let _ = s.shutdown(Shutdown::Write);
    }
}

// ---------------------------------------------------------------------------------------------
// WAN relay
//
// A userspace stand-in for a long network path (this machine's kernel has no `sch_netem`): every
// chunk read from one side is written to the other `delay` later (the one-way delay, RTT/2), in
// order, with at most `RELAY_BOUND` bytes held per direction (the reader stops reading when it is
// full, so TCP backpressure reaches the sender). Loss: a chunk is held an extra `STALL` (Linux's
// minimum retransmission timeout) with the probability that at least one of its 1448-byte segments
// was lost at `loss` per segment, and everything behind it waits too (head-of-line blocking, as in
// TCP). No byte is ever dropped or reordered.
//
// What it does not emulate: the end-to-end TCP connections see a loopback RTT, so congestion
// window growth and TCP-level loss recovery do not happen across the "WAN"; what crosses it with
// the full delay is every application-level round trip (key exchange, authentication, channel
// opens, SSH window adjustments, requests and responses).

/// Largest read; also the unit a loss stall applies to.
const RELAY_CHUNK: usize = 256 * 1024;
/// Bytes held per direction before the relay stops reading (far above any delay x rate used here).
const RELAY_BOUND: usize = 64 * 1024 * 1024;
/// Extra hold for a chunk that "lost" a segment.
const STALL: Duration = Duration::from_millis(200);
/// TCP payload per segment at a 1500-byte MTU, for the per-segment loss probability.
const SEGMENT: usize = 1448;

static NEXT_SEED: AtomicU64 = AtomicU64::new(1);

fn relay(upstream: SocketAddr, delay: Duration, loss: f64) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail("bind", e));
    let port = listener.local_addr().unwrap_or_else(|e| fail("local_addr", e)).port();
    println!("{port}");
    let _ = std::io::stdout().flush();
    exit_with_stdin();
    for conn in listener.incoming() {
        match conn {
            Ok(client) => {
                thread::spawn(move || {
                    if let Err(e) = relay_one(client, upstream, delay, loss) {
                        eprintln!("loadgen: relay: {e}");
                    }
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

fn relay_one(client: TcpStream, upstream: SocketAddr, delay: Duration, loss: f64) -> std::io::Result<()> {
    let server = TcpStream::connect_timeout(&upstream, IO_TIMEOUT)?;
    for s in [&client, &server] {
        // No read timeout: an SSH session may sit idle between workloads for as long as it likes.
        s.set_nodelay(true)?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
    }
    let seed = NEXT_SEED.fetch_add(1, Ordering::Relaxed);
    let up = spawn_direction(client.try_clone()?, server.try_clone()?, delay, loss, seed * 2);
    let down = spawn_direction(server, client, delay, loss, seed * 2 + 1);
    for h in [up, down].into_iter().flatten() {
        let _ = h.join();
    }
    Ok(())
}

enum Held {
    Data(Instant, Vec<u8>),
    Eof(Instant),
}

#[derive(Default)]
struct Pipe {
    queue: VecDeque<Held>,
    bytes: usize,
    /// The writer failed: the reader stops.
    broken: bool,
    /// Written buffers, for the reader to reuse.
    free: Vec<Vec<u8>>,
}

/// One direction: a reader thread stamps each chunk with its due time, a writer thread sends it
/// then. Returns the two threads' handles.
fn spawn_direction(
    mut from: TcpStream,
    mut to: TcpStream,
    delay: Duration,
    loss: f64,
    seed: u64,
) -> Vec<thread::JoinHandle<()>> {
    let pipe = Arc::new((Mutex::new(Pipe::default()), Condvar::new()));
    let (rpipe, wpipe) = (pipe.clone(), pipe);
    let reader = thread::spawn(move || {
        let (lock, cv) = &*rpipe;
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut last_due = Instant::now();
        let mut spare: Option<Vec<u8>> = None;
        loop {
            // Buffers come back from the writer, so the steady state allocates nothing.
            let mut buf = spare.take().unwrap_or_default();
            buf.resize(RELAY_CHUNK, 0);
            let n = match from.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            buf.truncate(n);
            let mut due = Instant::now() + delay;
            if n > 0 && loss > 0.0 {
                let segments = n.div_ceil(SEGMENT) as i32;
                let p_stall = 1.0 - (1.0 - loss).powi(segments);
                if next_unit(&mut rng) < p_stall {
                    due += STALL;
                }
            }
            // Order is kept: a stalled chunk holds back everything read after it.
            due = due.max(last_due);
            last_due = due;
            let mut p = lock.lock().unwrap_or_else(|e| e.into_inner());
            if n == 0 {
                p.queue.push_back(Held::Eof(due));
                cv.notify_all();
                return;
            }
            p.bytes += n;
            p.queue.push_back(Held::Data(due, buf));
            cv.notify_all();
            while p.bytes >= RELAY_BOUND && !p.broken {
                p = cv.wait(p).unwrap_or_else(|e| e.into_inner());
            }
            if p.broken {
                return;
            }
            spare = p.free.pop();
        }
    });
    let writer = thread::spawn(move || {
        let (lock, cv) = &*wpipe;
        loop {
            let item = {
                let mut p = lock.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(item) = p.queue.pop_front() {
                        break item;
                    }
                    p = cv.wait(p).unwrap_or_else(|e| e.into_inner());
                }
            };
            let due = match &item {
                Held::Data(due, _) | Held::Eof(due) => *due,
            };
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            match item {
                Held::Data(_, data) => {
                    let ok = to.write_all(&data).is_ok();
                    let mut p = lock.lock().unwrap_or_else(|e| e.into_inner());
                    p.bytes -= data.len();
                    if !ok {
                        // The receiver is gone: tear both connections down, stop the reader.
                        p.broken = true;
                        cv.notify_all();
                        let _ = to.shutdown(Shutdown::Both);
                        return;
                    }
                    if p.free.len() < 4 {
                        p.free.push(data);
                    }
                    cv.notify_all();
                }
                Held::Eof(_) => {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
            }
        }
    });
    vec![reader, writer]
}

/// A uniform number in [0, 1) from a xorshift64 state.
fn next_unit(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}
