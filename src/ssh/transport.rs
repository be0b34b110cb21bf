//! The first hop's TCP socket, tuned for the SSH stream it carries.
//!
//! OpenSSH's sshd does not set TCP_NODELAY on its side of a session it forwards through, so it holds
//! its small CHANNEL_WINDOW_ADJUST packets until we acknowledge what it sent last; when we have nothing
//! to send, Linux delays that ACK by up to 40 ms, and an upload through two hops stalls for 40 ms per
//! window (measured: 50 MiB/s). Re-arming TCP_QUICKACK after every read (the kernel clears it again)
//! makes us acknowledge at once.
//!
//! TCP_QUICKACK exists on Linux only; elsewhere the stream is passed through unchanged (and uploads
//! through several hops may run slower there).

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that acknowledges what it reads immediately.
#[derive(Debug)]
pub struct QuickAck(pub TcpStream);

impl AsyncRead for QuickAck {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            acknowledge_now(&self.0);
        }
        polled
    }
}

/// Re-arm TCP_QUICKACK. Best effort: on failure the stream still works, just with delayed ACKs.
#[cfg(target_os = "linux")]
fn acknowledge_now(tcp: &TcpStream) {
    let _ = socket2::SockRef::from(tcp).set_tcp_quickack(true);
}

/// No TCP_QUICKACK outside Linux: the kernel's delayed ACKs stay as they are.
#[cfg(not(target_os = "linux"))]
fn acknowledge_now(_tcp: &TcpStream) {}

impl AsyncWrite for QuickAck {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
