//! The target servers in the lab's target namespace (`targets.py`: echo, sink, source, and a port where
//! nothing listens), and the client side of each, used through a tunnel's local port.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, TcpStream};
use std::process::Stdio;
use std::sync::{Barrier, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::lab::Lab;
use super::process::{Collected, Signal, first_line, in_namespace};
use super::sqltun::Sqltun;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/targets.py");
const PYTHON: &str = "/usr/bin/python3";
const ECHO_PORT: u16 = 7007;
const SINK_PORT: u16 = 7009;
const SOURCE_PORT: u16 = 7019;
/// Nothing listens here in the target namespace.
const REFUSED_PORT: u16 = 7001;
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on any single read or write through a tunnel, so a stalled forward fails instead of hanging.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

const BLOCK_SIZE: usize = 65536;

/// Where the targets listen, as seen from the last bastion (the `--db` values).
#[derive(Debug, Clone, Copy)]
pub struct Targets {
    pub echo: SocketAddrV4,
    pub sink: SocketAddrV4,
    pub source: SocketAddrV4,
    pub refused: SocketAddrV4,
}

impl Lab {
    /// Starts the echo, sink and source servers in the target namespace and waits until they listen.
    pub fn start_targets(&self) -> Targets {
        let addr = self.target_addr();
        let log = self.fresh_path("targets", ".log");
        self.add_log("targets.py", &log);
        let stderr = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let mut command = in_namespace(&self.target_namespace(), PYTHON);
        command
            .args(["-u", SCRIPT, &addr.to_string()])
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start targets.py: {e}"));
        let stdout = child.stdout.take().expect("targets.py stdout");
        let pid = child.id();
        self.adopt(child, Signal::Term);
        let collected = Collected::start(stdout);
        let line = first_line("targets.py", &collected, READY_TIMEOUT, || self.diagnostics());
        assert_eq!(line, "ready", "targets.py (pid {pid}) printed an unexpected line");
        Targets {
            echo: SocketAddrV4::new(addr, ECHO_PORT),
            sink: SocketAddrV4::new(addr, SINK_PORT),
            source: SocketAddrV4::new(addr, SOURCE_PORT),
            refused: SocketAddrV4::new(addr, REFUSED_PORT),
        }
    }
}

/// Connects to a tunnel's local end with the I/O bounds every test uses.
pub fn connect(local: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&local, IO_TIMEOUT).unwrap_or_else(|e| panic!("connect to {local}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("set read timeout");
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("set write timeout");
    stream
}

/// Sends `payload` through the echo target on a new connection and checks the same bytes come back.
pub fn echo_roundtrip(local: SocketAddr, payload: &[u8]) {
    echo_on(&connect(local), payload);
}

/// Sends `payload` through the echo target on an open connection and checks the same bytes come back.
/// Writes from a second thread, so a payload larger than the socket buffers cannot deadlock.
pub fn echo_on(stream: &TcpStream, payload: &[u8]) {
    let peer = stream.peer_addr().expect("peer address");
    let mut writer = stream.try_clone().expect("clone stream");
    let outgoing = payload.to_vec();
    let sender = std::thread::spawn(move || writer.write_all(&outgoing));
    let mut echoed = vec![0u8; payload.len()];
    let mut reader = stream;
    reader
        .read_exact(&mut echoed)
        .unwrap_or_else(|e| panic!("read {} echoed bytes via {peer}: {e}", payload.len()));
    sender
        .join()
        .expect("writer thread")
        .unwrap_or_else(|e| panic!("write to {peer}: {e}"));
    assert!(echoed == payload, "echo via {peer} returned different bytes");
}

/// Opens `connections` connections to the echo target at once and, once all are open, sends each its
/// own `len`-byte payload concurrently; each must get exactly its own bytes back (a multiplexing or
/// flow-control bug shows up as a mix-up or a stall, which `IO_TIMEOUT` turns into a failure).
pub fn echo_concurrently(local: SocketAddr, connections: usize, len: usize) {
    let start = Barrier::new(connections);
    std::thread::scope(|scope| {
        for i in 0..connections {
            let start = &start;
            scope.spawn(move || {
                let stream = connect(local);
                let mut payload = format!("connection {i}:").into_bytes();
                payload.extend((0..len).map(|j: usize| (j.wrapping_mul(31) ^ i.wrapping_mul(131)) as u8));
                payload.truncate(len);
                start.wait();
                echo_on(&stream, &payload);
            });
        }
    });
}

/// Sends `len` bytes of the test pattern to the sink, half-closes, and returns (the sha256 the sink
/// computed, the sha256 of what was sent).
pub fn upload_to_sink(local: SocketAddr, len: u64) -> (String, String) {
    let mut stream = connect(local);
    let mut sent = Sha256::new();
    for_each_pattern_chunk(len, |offset, chunk| {
        stream
            .write_all(chunk)
            .unwrap_or_else(|e| panic!("upload via {local} failed after {offset} bytes: {e}"));
        sent.update(chunk);
    });
    stream.shutdown(Shutdown::Write).expect("half-close the upload");
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .unwrap_or_else(|e| panic!("read the sink's digest via {local}: {e} (got {reply:?})"));
    (reply.trim().to_string(), hex(&sent.finalize()))
}

/// Uploads `len` bytes to the sink through `tunnel`'s `local` end; fails the test, with sqltun's output,
/// unless the sink's sha256 matches what was sent.
pub fn assert_upload_intact(tunnel: &Sqltun, local: SocketAddr, len: u64) {
    let (received, sent) = upload_to_sink(local, len);
    if received != sent {
        tunnel.fail(&format!("the sink got sha256 {received}, but {sent} was sent"));
    }
}

/// Downloads `len` bytes from the source through `tunnel`'s `local` end; fails the test, with sqltun's
/// output, unless all of them arrive and their sha256 is the test pattern's.
pub fn assert_download_intact(tunnel: &Sqltun, local: SocketAddr, len: u64) {
    let (count, digest) = download_from_source(local, len);
    if count != len {
        tunnel.fail(&format!("the download ended after {count} of {len} bytes"));
    }
    let expected = pattern_sha256(len);
    if digest != expected {
        tunnel.fail(&format!("the download has sha256 {digest}, expected {expected}"));
    }
}

/// Asks the source for `len` bytes and returns (how many arrived before it closed, their sha256). Reads
/// everything into memory first and hashes afterwards, so the client reads as fast as the tunnel delivers
/// (a slow reader is a different scenario: see README's 64 MiB rule).
pub fn download_from_source(local: SocketAddr, len: u64) -> (u64, String) {
    let mut stream = connect(local);
    stream
        .write_all(format!("{len}\n").as_bytes())
        .unwrap_or_else(|e| panic!("request via {local}: {e}"));
    let mut received = Vec::with_capacity(usize::try_from(len).expect("length fits memory"));
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "download via {local} failed after {} of {len} bytes: {e}",
                received.len()
            ),
        }
    }
    (received.len() as u64, hex(&Sha256::digest(&received)))
}

/// Asks the source for `len` bytes and hashes them as they arrive (nothing buffered, for downloads too
/// large to hold); returns (bytes received, their sha256).
pub fn download_hashed(local: SocketAddr, len: u64) -> (u64, String) {
    let mut stream = connect(local);
    stream
        .write_all(format!("{len}\n").as_bytes())
        .unwrap_or_else(|e| panic!("request via {local}: {e}"));
    let mut digest = Sha256::new();
    let mut received = 0u64;
    let mut buffer = vec![0u8; 1024 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                digest.update(&buffer[..n]);
                received += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("download via {local} failed after {received} of {len} bytes: {e}"),
        }
    }
    (received, hex(&digest.finalize()))
}

/// The sha256 of the first `len` bytes of the test pattern.
pub fn pattern_sha256(len: u64) -> String {
    let mut digest = Sha256::new();
    for_each_pattern_chunk(len, |_, chunk| digest.update(chunk));
    hex(&digest.finalize())
}

/// Calls `each(offset, chunk)` for the first `len` bytes of the test pattern, block by block.
fn for_each_pattern_chunk(len: u64, mut each: impl FnMut(u64, &[u8])) {
    let mut chunk = vec![0u8; BLOCK_SIZE];
    let mut offset = 0u64;
    while offset < len {
        let take = usize::try_from((len - offset).min(BLOCK_SIZE as u64)).expect("chunk size");
        pattern_block_into(offset / BLOCK_SIZE as u64, &mut chunk);
        each(offset, &chunk[..take]);
        offset += take as u64;
    }
}

/// Block `index` of the test pattern (see targets.py for the definition).
fn pattern_block_into(index: u64, out: &mut [u8]) {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    let block = BLOCK.get_or_init(|| {
        let mut x: u64 = 12345;
        (0..BLOCK_SIZE)
            .map(|_| {
                x = (x * 1_103_515_245 + 12345) & 0x7FFF_FFFF;
                ((x >> 16) & 0xFF) as u8
            })
            .collect()
    });
    let mask = (index % 256) as u8;
    for (out, byte) in out.iter_mut().zip(block) {
        *out = byte ^ mask;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a direct TCP connection from the root namespace reaches `addr` within `timeout`.
pub fn reachable_directly(addr: SocketAddrV4, timeout: Duration) -> Result<(), std::io::Error> {
    TcpStream::connect_timeout(&SocketAddr::V4(addr), timeout).map(drop)
}
