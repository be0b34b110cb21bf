//! The path's round trip, measured in the identification exchange, before russh takes the stream.
//!
//! russh fixes a session's channel window when the session is created, so the window has to be chosen
//! before the handshake, and the round trip that decides it is not known then: behind a relay, a
//! proxy, a ProxyCommand or an earlier hop, the TCP connect time says nothing about it. The SSH
//! identification exchange measures it where the handshake spends the time anyway: once the server's
//! identification line has arrived (the server is up and waiting for ours), we send ours, and the
//! server answers it with its KEXINIT (OpenSSH sends that once it has read our line). The time from our
//! line to the first byte after the server's line is one round trip of the whole path. Sending ours
//! first would time the server's start-up as well (sshd forks and re-executes itself for each
//! connection: 7-18 ms measured on the local bench servers, more than the round trip of many WANs).
//!
//! Everything read is handed to russh unchanged, and russh's own identification line, the same bytes,
//! is not sent a second time. A server that sends its KEXINIT with its line gives no measurement (the
//! near-path window, as without measuring); one that waits for our line before sending its own, or for
//! our KEXINIT before sending its, costs the handshake up to [`PROBE_LIMIT`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// How long to wait for the server's identification line, and then for its answer to ours. No answer
/// within it counts as a long path; no line within it, as not measured (our line is sent then).
pub const PROBE_LIMIT: Duration = Duration::from_millis(250);

/// What the probe reads at most before giving up on finding the server's identification line (the
/// lines a server may send before it, then the line itself).
const PROBE_BYTES: usize = 16 * 1024;

/// A stream whose identification line has been sent, with what the server sent in the meantime
/// waiting to be read again.
#[derive(Debug)]
pub struct Probed<S> {
    inner: S,
    /// Our identification line, already sent: russh writes it again, and those bytes are dropped.
    sent: Vec<u8>,
    /// How much of russh's copy has been dropped.
    matched: usize,
    /// What the server sent during the probe, for russh to read first.
    replay: Vec<u8>,
    /// How much of `replay` russh has read.
    at: usize,
    /// The read error that ended the probe, handed over after `replay`.
    failed: Option<io::Error>,
}

/// Wait up to `limit` for the server's identification line, send `line` (ours, with its CR LF), and
/// wait up to `limit` again for the server's answer. Returns the stream to hand to russh and the round
/// trip: `None` when it could not be timed (the stream ended or failed, there was no identification
/// line within `limit`, or the server had sent more than its line before hearing ours), which russh
/// then reports or works through as it would have; `limit` when no answer came within it.
pub async fn probe<S>(mut stream: S, line: &[u8], limit: Duration) -> (Probed<S>, Option<Duration>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut replay = Vec::new();
    let mut failed = None;
    // Our line goes out once the server's own has arrived: the server is then ready, and its answer
    // times the path alone, not how long the server took to start.
    let identified = tokio::time::timeout(
        limit,
        read_until(&mut stream, &mut replay, &mut failed, |r| {
            identification_end(r).is_some()
        }),
    )
    .await;
    // A failed write is not reported here: russh's next write meets the same error, and what the server
    // sent before it is still read first.
    let wrote = async {
        stream.write_all(line).await?;
        stream.flush().await
    }
    .await;
    let sent_at = Instant::now();
    let answered = |r: &[u8]| identification_end(r).is_some_and(|end| r.len() > end);
    let round_trip = match (identified, wrote) {
        (Ok(true), Ok(())) if !answered(&replay) => {
            match tokio::time::timeout(limit, read_until(&mut stream, &mut replay, &mut failed, answered)).await {
                Ok(true) => Some(sent_at.elapsed()),
                Ok(false) => None,
                Err(_) => Some(limit),
            }
        }
        _ => None,
    };
    let probed = Probed {
        inner: stream,
        sent: line.to_vec(),
        matched: 0,
        replay,
        at: 0,
        failed,
    };
    (probed, round_trip)
}

/// Read into `replay` until `done` holds for it: true then, false when the stream ends, fails (the
/// error kept in `failed`), or sends [`PROBE_BYTES`] without it.
async fn read_until<S: AsyncRead + Unpin>(
    stream: &mut S,
    replay: &mut Vec<u8>,
    failed: &mut Option<io::Error>,
    done: impl Fn(&[u8]) -> bool,
) -> bool {
    let mut chunk = [0u8; 4096];
    while !done(replay) {
        if replay.len() >= PROBE_BYTES || failed.is_some() {
            return false;
        }
        match stream.read(&mut chunk).await {
            Ok(0) => return false,
            Ok(n) => replay.extend_from_slice(&chunk[..n]),
            Err(e) => {
                *failed = Some(e);
                return false;
            }
        }
    }
    true
}

/// Where the server's identification line (the first line starting with `SSH-`) ends, after its LF.
fn identification_end(bytes: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(lf) = bytes[start..].iter().position(|&b| b == b'\n') {
        let end = start + lf + 1;
        if bytes[start..].starts_with(b"SSH-") {
            return Some(end);
        }
        start = end;
    }
    None
}

impl<S: AsyncRead + Unpin> AsyncRead for Probed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.replay.len() {
            let n = buf.remaining().min(this.replay.len() - this.at);
            buf.put_slice(&this.replay[this.at..this.at + n]);
            this.at += n;
            if this.at == this.replay.len() {
                this.replay = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> Probed<S> {
    /// Drop the start of `buf` that repeats our identification line; `Some(n)` when all `n` bytes were
    /// such, an error when russh's line differs from the one sent.
    fn skip_sent(&mut self, buf: &[u8]) -> Option<io::Result<usize>> {
        let left = &self.sent[self.matched..];
        if left.is_empty() {
            return None;
        }
        let n = left.len().min(buf.len());
        if buf[..n] != left[..n] {
            return Some(Err(io::Error::other(
                "the SSH identification line differs from the one already sent",
            )));
        }
        self.matched += n;
        Some(Ok(n))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Probed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(skipped) = self.skip_sent(buf) {
            return Poll::Ready(skipped);
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.matched < self.sent.len() {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
            return self.poll_write(cx, first);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    const LINE: &[u8] = b"SSH-2.0-sqltun_test\r\n";

    #[test]
    fn the_identification_line_is_found_after_other_lines() {
        assert_eq!(identification_end(b"SSH-2.0-x\r\nabc"), Some(11));
        assert_eq!(identification_end(b"hello\r\nSSH-2.0-x\r\n"), Some(18));
        assert_eq!(identification_end(b"hello\r\nSSH-2.0-x"), None);
        assert_eq!(identification_end(b""), None);
    }

    #[tokio::test]
    async fn the_answer_is_timed_and_replayed_and_our_line_is_not_sent_twice() {
        let (client, mut server) = duplex(64 * 1024);
        let peer = tokio::spawn(async move {
            server.write_all(b"SSH-2.0-server\r\n").await.unwrap();
            let mut got = vec![0u8; LINE.len()];
            server.read_exact(&mut got).await.unwrap();
            assert_eq!(got, LINE);
            server.write_all(b"KEXINIT").await.unwrap();
            // What russh sends next must arrive without a second identification line.
            let mut next = [0u8; 5];
            server.read_exact(&mut next).await.unwrap();
            next
        });
        let (mut probed, round_trip) = probe(client, LINE, Duration::from_secs(5)).await;
        assert!(
            round_trip.is_some_and(|rtt| rtt < Duration::from_secs(5)),
            "{round_trip:?}"
        );
        probed.write_all(LINE).await.unwrap();
        probed.write_all(b"after").await.unwrap();
        let mut read = vec![0u8; b"SSH-2.0-server\r\nKEXINIT".len()];
        probed.read_exact(&mut read).await.unwrap();
        assert_eq!(read, b"SSH-2.0-server\r\nKEXINIT");
        assert_eq!(&peer.await.unwrap(), b"after");
    }

    #[tokio::test]
    async fn a_server_that_ends_the_stream_is_left_for_russh_to_report() {
        let (client, mut server) = duplex(1024);
        tokio::spawn(async move {
            server.write_all(b"garbage").await.unwrap();
            drop(server);
        });
        let (mut probed, round_trip) = probe(client, LINE, Duration::from_secs(5)).await;
        assert_eq!(round_trip, None);
        let mut read = Vec::new();
        probed.read_to_end(&mut read).await.unwrap();
        assert_eq!(read, b"garbage");
    }

    #[tokio::test]
    async fn a_silent_server_counts_as_a_long_path_and_keeps_its_bytes() {
        let (client, mut server) = duplex(1024);
        server.write_all(b"SSH-2.0-server\r\n").await.unwrap();
        // It never sends more: the probe ends at its limit (kept short here).
        let limit = Duration::from_millis(20);
        let (mut probed, round_trip) = probe(client, LINE, limit).await;
        assert_eq!(round_trip, Some(limit));
        let mut read = vec![0u8; 16];
        probed.read_exact(&mut read).await.unwrap();
        assert_eq!(read, b"SSH-2.0-server\r\n");
    }

    #[tokio::test]
    async fn a_server_that_sends_its_kexinit_with_its_line_is_not_measured() {
        let (client, mut server) = duplex(1024);
        server.write_all(b"SSH-2.0-server\r\nKEXINIT").await.unwrap();
        let (mut probed, round_trip) = probe(client, LINE, Duration::from_secs(5)).await;
        assert_eq!(round_trip, None);
        let mut got = vec![0u8; LINE.len()];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, LINE, "our line is still sent");
        let mut read = vec![0u8; b"SSH-2.0-server\r\nKEXINIT".len()];
        probed.read_exact(&mut read).await.unwrap();
        assert_eq!(read, b"SSH-2.0-server\r\nKEXINIT");
    }

    #[tokio::test]
    async fn a_server_that_waits_for_our_line_gets_it_after_the_limit() {
        let (client, mut server) = duplex(1024);
        let peer = tokio::spawn(async move {
            let mut got = vec![0u8; LINE.len()];
            server.read_exact(&mut got).await.unwrap();
            server.write_all(b"SSH-2.0-server\r\n").await.unwrap();
            (got, server)
        });
        let (mut probed, round_trip) = probe(client, LINE, Duration::from_millis(20)).await;
        assert_eq!(round_trip, None);
        let (got, _server) = peer.await.unwrap();
        assert_eq!(got, LINE);
        let mut read = vec![0u8; 16];
        probed.read_exact(&mut read).await.unwrap();
        assert_eq!(read, b"SSH-2.0-server\r\n");
    }

    #[tokio::test]
    async fn a_different_line_from_russh_is_an_error() {
        let (client, mut server) = duplex(1024);
        server.write_all(b"SSH-2.0-server\r\nX").await.unwrap();
        let (mut probed, _) = probe(client, LINE, Duration::from_secs(5)).await;
        let err = probed.write_all(b"SSH-2.0-other\r\n").await.unwrap_err();
        assert!(err.to_string().contains("identification line"), "{err}");
    }
}
