//! One local connection forwarded over one direct-tcpip channel, in one task.
//!
//! russh delivers every channel's data through one session loop, and that loop blocks while any
//! channel's queue is full; it also refills the receive window on arrival, not on consumption, so the
//! server is never slowed down per channel. A channel must therefore be drained whatever the local
//! client does: channel data goes into this connection's own queue as it arrives, and the queue is
//! written to the local socket whenever the socket takes it (at once when it is writable, so a
//! response costs no extra hop). The other direction, local socket to channel, may wait for the SSH
//! window; it runs next to the download in the same task and never holds it up.
//!
//! The queue is bounded by [`PENDING_LIMIT`]. Past it, the channel is not read until the local client
//! makes progress, so a slow reader is paced rather than cut off (this paces the session while that
//! queue is full: russh offers no per-channel flow control on the receiving side). A client that makes
//! no progress at all for [`STALL_LIMIT`] with a full queue is disconnected, so a stopped reader
//! cannot hold the other connections hostage.
//!
//! Everything of one connection (the local read, the channel receive, the local writes) is polled by
//! the task that accepted it: no wake-up crosses to another task on the way of a request or response.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use russh::ChannelMsg;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::listen::LocalStream;
use crate::ssh::Chain;
use crate::target::Target;

/// Bytes from the target that may wait for a slow local reader before the channel is left unread.
pub const PENDING_LIMIT: usize = 16 * 1024 * 1024;

// A sender may have a whole window in flight: the queue must hold at least that before pacing.
const _: () = assert!(crate::ssh::MAX_CHANNEL_WINDOW as usize <= PENDING_LIMIT);

/// How long a local client may make no progress with a full queue before it is disconnected.
pub const STALL_LIMIT: Duration = Duration::from_secs(2);

/// Read size for the local socket; one SSH packet's worth (russh splits by the window anyway).
const LOCAL_READ: usize = 32 * 1024;

/// Queued chunks handed to one vectored write (each is one SSH packet, up to 32 KiB).
const WRITE_BATCH: usize = 16;

/// How a forwarded connection ended, for the log line.
#[derive(Debug)]
pub enum Outcome {
    /// Both sides finished normally.
    Done { up: u64, down: u64 },
    /// The forward could not be opened.
    Refused(String),
    /// Shut down by sqltun (Ctrl-C, SIGTERM).
    Cancelled,
    /// The local client stopped reading with too much pending.
    Stalled(usize),
    /// A socket or channel error.
    Failed(String),
}

/// The local side's write half: how to end it so the client sees the data was cut short.
pub trait LocalWrite: AsyncWrite + Unpin + Send + 'static {
    /// Make closing reset the connection instead of ending it cleanly.
    fn reset_on_close(&self);
}

impl LocalWrite for tokio::net::tcp::OwnedWriteHalf {
    fn reset_on_close(&self) {
        // SO_LINGER 0: closing sends RST, which every client reports as an error.
        let _ = socket2::SockRef::from(self.as_ref()).set_linger(Some(Duration::ZERO));
    }
}

impl LocalWrite for tokio::net::unix::OwnedWriteHalf {
    // A Unix socket has no reset; the client sees the close (libpq reports an unexpected EOF mid-message).
    fn reset_on_close(&self) {}
}

/// Forward `socket` to `target` through the chain's last hop until both sides are done; the channel names
/// `originator` as where the connection came from.
pub async fn forward(
    socket: LocalStream,
    originator: SocketAddr,
    target: &Target,
    chain: Arc<Chain>,
    open_limit: Duration,
    cancel: watch::Receiver<bool>,
) -> Outcome {
    match socket {
        LocalStream::Tcp(socket) => {
            if let Err(e) = socket.set_nodelay(true) {
                tracing::debug!("set_nodelay on the local socket failed: {e}");
            }
            let (rx, tx) = socket.into_split();
            pipe(rx, tx, originator, target, chain, open_limit, cancel).await
        }
        LocalStream::Unix(socket) => {
            let (rx, tx) = socket.into_split();
            pipe(rx, tx, originator, target, chain, open_limit, cancel).await
        }
    }
}

async fn pipe<R, W>(
    local_rx: R,
    local_tx: W,
    peer: SocketAddr,
    target: &Target,
    chain: Arc<Chain>,
    open_limit: Duration,
    mut cancel: watch::Receiver<bool>,
) -> Outcome
where
    R: AsyncRead + Unpin + Send + 'static,
    W: LocalWrite,
{
    let channel = tokio::select! {
        opened = chain.open_forward(target, peer, open_limit) => match opened {
            Ok(channel) => channel,
            Err(e) => return Outcome::Refused(e.to_string()),
        },
        _ = cancel.wait_for(|c| *c) => return Outcome::Cancelled,
    };
    drop(chain);
    let (channel_rx, channel_tx) = channel.split();
    let up = AtomicU64::new(0);
    let outcome = {
        let upload = upload(local_rx, &channel_tx, &up);
        let download = download(channel_rx, local_tx);
        tokio::pin!(upload, download);
        let mut upload_done = false;
        loop {
            tokio::select! {
                uploaded = &mut upload, if !upload_done => match uploaded {
                    Ok(()) => upload_done = true,
                    Err(e) => break Outcome::Failed(e),
                },
                // Done when the target closed the channel and everything reached the client; the upload
                // side may still be open (the target closed first): there is nowhere left to send it.
                downloaded = &mut download => break match downloaded {
                    Downloaded::Done(down) => Outcome::Done { up: up.load(Ordering::Relaxed), down },
                    Downloaded::Stalled(pending) => Outcome::Stalled(pending),
                    Downloaded::Failed(e) => Outcome::Failed(e),
                },
                _ = cancel.wait_for(|c| *c) => break Outcome::Cancelled,
            }
        }
        // Both halves of the local socket are dropped here, whatever state they were in.
    };
    // A dropped russh channel stays open on the bastion (and so does its connection to the target):
    // close it explicitly on every path.
    let _ = tokio::time::timeout(Duration::from_secs(1), channel_tx.close()).await;
    outcome
}

/// Local socket → channel; local EOF becomes a channel EOF (half-close). Counts into `up`.
async fn upload<R>(
    mut local_rx: R,
    up_tx: &russh::ChannelWriteHalf<russh::client::Msg>,
    up: &AtomicU64,
) -> Result<(), String>
where
    R: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(LOCAL_READ);
    loop {
        buf.reserve(LOCAL_READ);
        match local_rx.read_buf(&mut buf).await {
            Ok(0) => {
                let _ = up_tx.eof().await;
                return Ok(());
            }
            Ok(n) => {
                up.fetch_add(n as u64, Ordering::Relaxed);
                if let Err(e) = up_tx.data_bytes(buf.split().freeze()).await {
                    return Err(format!("the channel refused data: {e}"));
                }
            }
            Err(e) => return Err(format!("reading from the local client: {e}")),
        }
    }
}

/// How the download side ended.
enum Downloaded {
    /// The channel ended cleanly and every byte (this many) reached the local client.
    Done(u64),
    /// The local client made no progress for [`STALL_LIMIT`] with this much waiting for it.
    Stalled(usize),
    Failed(String),
}

/// Channel → queue → local socket. The channel is read whenever the queue is under [`PENDING_LIMIT`],
/// whatever the local client does; the queue is written whenever the local socket takes data. A
/// half-close from the target becomes a local shutdown(SHUT_WR) once the queue is empty.
async fn download<W: LocalWrite>(mut channel_rx: russh::ChannelReadHalf, mut local_tx: W) -> Downloaded {
    let mut queue: VecDeque<Bytes> = VecDeque::new();
    let mut pending = 0usize;
    let mut down = 0u64;
    // EOF from the target: shut the local write side down once the queue is written.
    let mut eof = false;
    let mut shut = false;
    // Set when the channel ends: true for EOF or close first, false when it vanished (the session died).
    let mut ended: Option<bool> = None;
    let stall = tokio::time::sleep(STALL_LIMIT);
    tokio::pin!(stall);
    loop {
        if queue.is_empty() {
            if eof && !shut {
                shut = true;
                let _ = local_tx.shutdown().await;
            }
            match ended {
                Some(true) => {
                    if !shut {
                        let _ = local_tx.shutdown().await;
                    }
                    return Downloaded::Done(down);
                }
                Some(false) => {
                    // Without EOF or close the session died mid-stream: a clean FIN would let the
                    // client take a truncated result for a complete one, so reset the connection.
                    local_tx.reset_on_close();
                    return Downloaded::Failed(
                        "writing to the local client: the SSH session ended mid-stream; reset the local connection"
                            .into(),
                    );
                }
                None => {}
            }
        }
        let mut slices = [IoSlice::new(&[]); WRITE_BATCH];
        let mut batch = 0;
        for (slice, chunk) in slices.iter_mut().zip(queue.iter()) {
            *slice = IoSlice::new(chunk);
            batch += 1;
        }
        tokio::select! {
            biased;
            // Write first: what is queued leaves before more is taken in.
            written = local_tx.write_vectored(&slices[..batch]), if batch > 0 => match written {
                Ok(0) => return Downloaded::Failed("writing to the local client: it accepts no more data".into()),
                Ok(mut n) => {
                    pending -= n;
                    while n > 0 {
                        let Some(front) = queue.front_mut() else { break };
                        if n < front.len() {
                            front.advance(n);
                            break;
                        }
                        n -= front.len();
                        queue.pop_front();
                    }
                    if pending > PENDING_LIMIT {
                        stall.as_mut().reset(Instant::now() + STALL_LIMIT);
                    }
                }
                Err(e) => return Downloaded::Failed(format!("writing to the local client: {e}")),
            },
            msg = channel_rx.wait(), if ended.is_none() && pending <= PENDING_LIMIT => match msg {
                Some(ChannelMsg::Data { data }) => {
                    down += data.len() as u64;
                    pending += data.len();
                    queue.push_back(data);
                    if pending > PENDING_LIMIT {
                        stall.as_mut().reset(Instant::now() + STALL_LIMIT);
                    }
                }
                Some(ChannelMsg::Eof) => eof = true,
                Some(ChannelMsg::Close) => ended = Some(true),
                Some(_) => {}
                None => ended = Some(eof),
            },
            () = &mut stall, if pending > PENDING_LIMIT => return Downloaded::Stalled(pending),
        }
    }
}
