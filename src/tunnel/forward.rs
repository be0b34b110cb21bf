//! One local connection forwarded over one direct-tcpip channel.
//!
//! russh delivers every channel's data through one session loop, and that loop blocks while any
//! channel's queue is full; it also refills the receive window on arrival, not on consumption, so the
//! server is never slowed down per channel. A channel must therefore be drained whatever the local
//! client does: a drain task moves channel data into this connection's own queue, a writer task
//! empties the queue into the local socket, and a third task carries the local socket's data the other
//! way (waiting on the SSH window there blocks nothing else).
//!
//! The queue is bounded by [`PENDING_LIMIT`]. Past it, the drain waits for the local client to make
//! progress, so a slow reader is paced rather than cut off (this paces the session while that queue
//! is full: russh offers no per-channel flow control on the receiving side). A client that makes no
//! progress at all for [`STALL_LIMIT`] with a full queue is disconnected, so a stopped reader cannot
//! hold the other connections hostage.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use russh::ChannelMsg;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use super::listen::LocalStream;
use crate::ssh::Chain;
use crate::target::Target;

/// Bytes from the target that may wait for a slow local reader before the drain waits for it.
pub const PENDING_LIMIT: usize = 16 * 1024 * 1024;

// A sender may have a whole window in flight: the queue must hold at least that before pacing.
const _: () = assert!(crate::ssh::CHANNEL_WINDOW as usize <= PENDING_LIMIT);

/// How long a local client may make no progress with a full queue before it is disconnected.
pub const STALL_LIMIT: Duration = Duration::from_secs(2);

/// Read size for the local socket; one SSH packet's worth (russh splits by the window anyway).
const LOCAL_READ: usize = 32 * 1024;

enum Down {
    Data(Bytes),
    Eof,
    /// The channel vanished without EOF or close (the session died): the data may be cut short.
    Abort,
}

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
    let channel_tx = Arc::new(channel_tx);

    let pending = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let (queue_tx, queue_rx) = mpsc::unbounded_channel::<Down>();
    let mut tasks = Tasks {
        drain: tokio::spawn(drain(channel_rx, queue_tx, pending.clone(), progress.clone())),
        writer: tokio::spawn(write_local(queue_rx, local_tx, pending, progress)),
        reader: tokio::spawn(read_local(local_rx, channel_tx.clone())),
    };
    let outcome = tasks.outcome(&mut cancel).await;
    // A dropped russh channel stays open on the bastion (and so does its connection to the target):
    // close it explicitly on every path.
    tasks.reader.abort();
    tasks.drain.abort();
    tasks.writer.abort();
    let _ = tokio::time::timeout(Duration::from_secs(1), channel_tx.close()).await;
    outcome
}

/// The three tasks of one forwarded connection.
struct Tasks<W> {
    /// Bytes downloaded, and the pending bytes if the local client stalled.
    drain: JoinHandle<(u64, Option<usize>)>,
    writer: JoinHandle<std::io::Result<W>>,
    /// Bytes uploaded, or why the upload failed.
    reader: JoinHandle<Result<u64, String>>,
}

impl<W> Tasks<W> {
    /// Wait for the tasks until the connection is done, one of them fails, or sqltun shuts down.
    async fn outcome(&mut self, cancel: &mut watch::Receiver<bool>) -> Outcome {
        let (reader, drain, writer) = (&mut self.reader, &mut self.drain, &mut self.writer);
        let mut reader_done: Option<Result<u64, String>> = None;
        let mut writer_done = false;
        let mut drain_result: Option<(u64, Option<usize>)> = None;
        loop {
            tokio::select! {
                r = &mut *reader, if reader_done.is_none() => {
                    let r = r.unwrap_or_else(|e| Err(format!("reader task: {e}")));
                    if let Err(e) = &r {
                        break Outcome::Failed(e.clone());
                    }
                    reader_done = Some(r);
                }
                d = &mut *drain, if drain_result.is_none() => {
                    let d = d.unwrap_or((0, None));
                    if let Some(pending) = d.1 {
                        break Outcome::Stalled(pending);
                    }
                    drain_result = Some(d);
                }
                w = &mut *writer, if !writer_done => {
                    match w {
                        Ok(Ok(_)) => writer_done = true,
                        Ok(Err(e)) => break Outcome::Failed(format!("writing to the local client: {e}")),
                        Err(e) => break Outcome::Failed(format!("writer task: {e}")),
                    }
                }
                _ = cancel.wait_for(|c| *c) => break Outcome::Cancelled,
            }
            // Done when the target closed the channel and everything reached the client; the upload side
            // may still be open (the target closed first), in which case there is nowhere left to send it.
            if writer_done && drain_result.is_some() {
                let up = match &reader_done {
                    Some(Ok(up)) => *up,
                    _ => 0,
                };
                break Outcome::Done {
                    up,
                    down: drain_result.as_ref().map_or(0, |d| d.0),
                };
            }
        }
    }
}

/// Drain: channel data into this connection's queue, never blocking on the local side; waits for the
/// local client only past [`PENDING_LIMIT`], and gives up after [`STALL_LIMIT`] without progress.
async fn drain(
    mut channel_rx: russh::ChannelReadHalf,
    queue_tx: mpsc::UnboundedSender<Down>,
    pending: Arc<AtomicUsize>,
    progress: Arc<Notify>,
) -> (u64, Option<usize>) {
    let mut down = 0u64;
    let (mut got_eof, mut closed) = (false, false);
    while let Some(msg) = channel_rx.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                down += data.len() as u64;
                pending.fetch_add(data.len(), Ordering::AcqRel);
                if queue_tx.send(Down::Data(data)).is_err() {
                    return (down, None);
                }
                // Over the limit: wait for the client; each notification is a completed write. (The
                // common case, under the limit, costs one atomic load.)
                while pending.load(Ordering::Acquire) > PENDING_LIMIT {
                    let notified = progress.notified();
                    let waiting = pending.load(Ordering::Acquire);
                    if waiting <= PENDING_LIMIT {
                        break;
                    }
                    if tokio::time::timeout(STALL_LIMIT, notified).await.is_err() {
                        return (down, Some(waiting));
                    }
                }
            }
            ChannelMsg::Eof => {
                got_eof = true;
                let _ = queue_tx.send(Down::Eof);
            }
            ChannelMsg::Close => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    // Without EOF or Close the session died mid-stream: a clean FIN would let the client take a
    // truncated result for a complete one, so reset the connection instead.
    let _ = queue_tx.send(if got_eof || closed { Down::Eof } else { Down::Abort });
    (down, None)
}

/// Writer: queue → local socket; a half-close from the target becomes a local shutdown(SHUT_WR).
async fn write_local<W: LocalWrite>(
    mut queue_rx: mpsc::UnboundedReceiver<Down>,
    mut local_tx: W,
    pending: Arc<AtomicUsize>,
    progress: Arc<Notify>,
) -> std::io::Result<W> {
    while let Some(item) = queue_rx.recv().await {
        match item {
            Down::Data(data) => {
                let len = data.len();
                local_tx.write_all(&data).await?;
                pending.fetch_sub(len, Ordering::AcqRel);
                progress.notify_one();
            }
            Down::Eof => {
                let _ = local_tx.shutdown().await;
                break;
            }
            Down::Abort => {
                local_tx.reset_on_close();
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the SSH session ended mid-stream; reset the local connection",
                ));
            }
        }
    }
    Ok(local_tx)
}

/// Reader: local socket → channel; local EOF becomes a channel EOF (half-close).
async fn read_local<R>(mut local_rx: R, up_tx: Arc<russh::ChannelWriteHalf<russh::client::Msg>>) -> Result<u64, String>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let mut up = 0u64;
    let mut buf = BytesMut::with_capacity(LOCAL_READ);
    loop {
        buf.reserve(LOCAL_READ);
        match local_rx.read_buf(&mut buf).await {
            Ok(0) => {
                let _ = up_tx.eof().await;
                return Ok(up);
            }
            Ok(n) => {
                up += n as u64;
                if let Err(e) = up_tx.data_bytes(buf.split().freeze()).await {
                    return Err(format!("the channel refused data: {e}"));
                }
            }
            Err(e) => return Err(format!("reading from the local client: {e}")),
        }
    }
}
