//! `--background`, like `ssh -f`: the tunnel runs in a child process; the parent relays its ready
//! output and exits 0 once the tunnel is usable, so `PORT=$(sqltun connect --background …)` works.
//!
//! The child is this same program started again with the same arguments (no fork: the runtime is
//! multi-threaded), marked by an environment variable. It leaves the terminal's session once ready.

use std::io::Write;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::error::{Error, Result};
use crate::plan::OutputFormat;

const CHILD_MARK: &str = "SQLTUN_BACKGROUND_CHILD";

/// True in the child that runs the tunnel.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_MARK).is_some()
}

/// Start the child, relay its ready lines, and return 0; if the child fails first, return its code
/// (it has already said why on stderr).
pub async fn launch(format: OutputFormat, forwards: usize) -> Result<u8> {
    let exe = std::env::current_exe().map_err(|e| Error::internal(format!("cannot find this program: {e}")))?;
    // The child resolves the plan again, secrets included, so it keeps this environment; it withholds
    // them from what it starts in turn (see `secret::withhold_from`).
    let mut child = tokio::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_MARK, "1")
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::internal(format!("cannot start the background tunnel: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::internal("the background tunnel has no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let wanted = crate::output::ready_line_count(format, forwards);
    let mut ready = String::new();
    for _ in 0..wanted {
        match lines.next_line().await {
            Ok(Some(line)) => {
                ready.push_str(&line);
                ready.push('\n');
            }
            _ => {
                let status = child
                    .wait()
                    .await
                    .map_err(|e| Error::internal(format!("waiting for the tunnel: {e}")))?;
                return Ok(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1));
            }
        }
    }
    let mut out = std::io::stdout().lock();
    out.write_all(ready.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::internal(format!("cannot write to stdout: {e}")))?;
    tracing::info!(pid = child.id(), "tunnel running in the background");
    Ok(0)
}

/// In the child, once ready: leave the terminal's session so closing it does not stop the tunnel.
pub fn detach() {
    if let Err(e) = nix::unistd::setsid() {
        tracing::debug!("setsid failed: {e}");
    }
}
