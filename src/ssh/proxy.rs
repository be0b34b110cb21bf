//! `ProxyCommand`: a child process whose stdin/stdout carry one hop's SSH stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Join, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::interaction::HopLabel;
use crate::error::{Error, Kind, Result};

/// The command's stdout (read) and stdin (write); the process is killed when this is dropped.
#[derive(Debug)]
pub struct ProxyStream {
    io: Join<ChildStdout, ChildStdin>,
    _child: Child,
}

/// Start `sh -c command` without sqltun's secrets in its environment. Its stderr lines are relayed as log
/// records rather than inherited: a background tunnel's ProxyCommand must not keep writing to (or hold
/// open) the terminal or pipe the tunnel had before it detached; relayed, they follow sqltun's stderr.
pub fn spawn(label: &HopLabel, command: &str) -> Result<ProxyStream> {
    let mut shell = Command::new("/bin/sh");
    crate::secret::withhold_from(shell.as_std_mut());
    let mut child = shell
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::new(
                Kind::Unreachable,
                format!("{label}: cannot start ProxyCommand `{command}`: {e}"),
            )
        })?;
    let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
        return Err(Error::internal(format!("{label}: ProxyCommand started without pipes")));
    };
    if let Some(stderr) = child.stderr.take() {
        let label = label.to_string();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!("{label}: ProxyCommand: {line}");
            }
        });
    }
    tracing::debug!(hop = %label, pid = child.id(), "ProxyCommand started: {command}");
    Ok(ProxyStream {
        io: tokio::io::join(stdout, stdin),
        _child: child,
    })
}

impl AsyncRead for ProxyStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProxyStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
