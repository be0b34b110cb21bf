//! `password_command`, `passphrase_command`, `totp_command`: a program (an argv list, no shell) whose
//! first line on stdout is a secret, so that `op read`, `pass`, `vault kv get` or a keychain tool can
//! hand one over the moment it is needed.
//!
//! The program is run directly (no shell: `;` or `$(…)` in the list are plain text), with sqltun's
//! secret variables withheld from its environment. Its stdin and stderr are sqltun's (a tool may ask
//! on the terminal, and its messages reach the person); its stdout is read up to the first line, at
//! most [`MAX_LINE`] bytes, into memory that is wiped when dropped. It has [`TIME_LIMIT`] to finish;
//! then, or on Ctrl-C, it is killed (by its pid) and reaped. Errors name the setting and the program
//! (`argv[0]`, escaped), never its arguments or its output.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdout};
use tokio::signal::unix::{SignalKind, signal};
use zeroize::Zeroizing;

use crate::error::{Error, Kind, Result};
use crate::secret::Secret;
use crate::text;

/// How long a command may take: enough for a person to unlock a password manager on the terminal,
/// not so long that a hung tool holds the connection forever.
pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// The longest first line taken (a secret is far shorter; a flood must not grow memory).
pub const MAX_LINE: usize = 64 * 1024;

/// Once the program has exited, how long a first line not yet ended is still waited for: what it wrote
/// is already in the pipe; only a process it left behind, holding the pipe open, could make this wait.
const AFTER_EXIT: Duration = Duration::from_secs(2);

/// A command that yields a secret on its first line of output.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretCommand {
    /// The setting that names it, for messages (`password_command`).
    pub setting: &'static str,
    /// The program and its arguments, run without a shell.
    pub argv: Vec<String>,
}

/// The program only: an argument may be a vault path, or (against advice) a secret itself.
impl std::fmt::Debug for SecretCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCommand")
            .field("setting", &self.setting)
            .field("program", &self.argv.first())
            .field("arguments", &self.argv.len().saturating_sub(1))
            .finish()
    }
}

impl SecretCommand {
    pub fn new(setting: &'static str, argv: Vec<String>) -> SecretCommand {
        SecretCommand { setting, argv }
    }

    /// `password_command `op``: the setting and the program, escaped, for messages.
    pub fn describe(&self) -> String {
        let program = self.argv.first().map_or(String::new(), |p| text::printable(p));
        format!("{} `{program}`", self.setting)
    }

    /// Run the command and take the first line of its output as the secret, within [`TIME_LIMIT`].
    /// Ctrl-C while it runs is [`Error::interrupted`].
    pub async fn run(&self) -> Result<Secret> {
        self.run_within(TIME_LIMIT).await
    }

    /// [`Self::run`] with another time limit.
    pub async fn run_within(&self, limit: Duration) -> Result<Secret> {
        let Some((program, arguments)) = self.argv.split_first() else {
            return Err(Error::usage(format!(
                "{} is an empty list: give the program and its arguments",
                self.setting
            )));
        };
        // Listening before the program starts, so no Ctrl-C can come before the listener.
        let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| Error::internal(format!("SIGINT: {e}")))?;
        let mut command = tokio::process::Command::new(program);
        crate::secret::withhold_from(command.as_std_mut());
        command
            .args(arguments)
            .stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Should the future be dropped (the connection given up), the program goes with it.
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| self.cannot_start(&e))?;
        tracing::debug!(pid = child.id(), "{} started", self.describe());
        let Some(stdout) = child.stdout.take() else {
            stop(&mut child).await;
            return Err(Error::internal(format!("{}: started without a pipe", self.describe())));
        };
        let outcome = tokio::select! {
            biased;
            _ = interrupt.recv() => Err(Error::interrupted()),
            read = tokio::time::timeout(limit, read_and_wait(&mut child, stdout)) => match read {
                Ok(Ok(read)) => Ok(read),
                Ok(Err(e)) => Err(Error::new(Kind::Auth, format!("{}: reading its output failed: {e}", self.describe()))),
                Err(_) => Err(Error::new(
                    Kind::Auth,
                    format!("{}: no answer within {} s; it was stopped", self.describe(), limit.as_secs_f64().ceil()),
                )),
            },
        };
        match outcome {
            Ok((status, line)) => self.secret_from(status, line),
            Err(e) => {
                stop(&mut child).await;
                Err(e)
            }
        }
    }

    /// The secret from what the program left: its exit status first (a failed tool's output is not
    /// used), then its first line.
    fn secret_from(&self, status: ExitStatus, line: FirstLine) -> Result<Secret> {
        let failed = |why: String| Error::new(Kind::Auth, format!("{}: {why}", self.describe()));
        if let Some(signal) = status.signal() {
            return Err(failed(format!("ended by signal {signal}")));
        }
        if !status.success() {
            let code = status.code().map_or_else(|| "?".to_string(), |c| c.to_string());
            return Err(failed(format!(
                "exited with status {code} (its own messages, if any, are above)"
            )));
        }
        let bytes = match line {
            FirstLine::TooLong => {
                return Err(failed(format!(
                    "its first line is longer than {} KiB; it should print the secret alone",
                    MAX_LINE / 1024
                )));
            }
            FirstLine::Text(bytes) => bytes,
        };
        let mut bytes = bytes;
        // The buffer moves into the string (no copy); on failure it comes back and is wiped.
        let text = match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(text) => Secret::new(text),
            Err(e) => {
                drop(Zeroizing::new(e.into_bytes()));
                return Err(failed("its first line is not UTF-8 text".into()));
            }
        };
        if text.expose().is_empty() {
            return Err(failed(
                "printed nothing on its first line; the secret is the first line of its output".into(),
            ));
        }
        Ok(text)
    }

    /// The error for a program that could not be started: a usage error, since the setting is wrong.
    fn cannot_start(&self, e: &io::Error) -> Error {
        let why = match e.kind() {
            io::ErrorKind::NotFound => "no such program (give its path, or a program on PATH)".to_string(),
            io::ErrorKind::PermissionDenied => "cannot run it: permission denied".to_string(),
            _ => format!("cannot run it: {e}"),
        };
        Error::usage(format!("{}: {why}", self.describe()))
    }
}

/// What the program printed first: the line without its `\n` or `\r\n`, or a line past [`MAX_LINE`].
enum FirstLine {
    Text(Zeroizing<Vec<u8>>),
    TooLong,
}

/// Read stdout to the end of the first line and wait for the program to exit. Output after the first
/// line is read and dropped, so a tool that prints more is not cut off by a closed pipe.
async fn read_and_wait(child: &mut Child, mut stdout: ChildStdout) -> io::Result<(ExitStatus, FirstLine)> {
    // Room for the longest line and its ending, reserved up front so no copy is left behind unwiped.
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_LINE + 2));
    let mut chunk = Zeroizing::new([0u8; 4096]);
    let (mut ended, mut too_long, mut eof) = (false, false, false);
    let mut status = None;
    loop {
        if eof && status.is_some() {
            break;
        }
        let n = match status {
            // Exited: what it wrote is in the pipe already.
            Some(_) if ended => break,
            Some(_) => match tokio::time::timeout(AFTER_EXIT, stdout.read(&mut chunk[..])).await {
                Ok(n) => n?,
                Err(_) => break,
            },
            None => tokio::select! {
                n = stdout.read(&mut chunk[..]), if !eof => n?,
                exited = child.wait() => {
                    status = Some(exited?);
                    continue;
                }
            },
        };
        if n == 0 {
            eof = true;
            continue;
        }
        if ended {
            continue;
        }
        let got = &chunk[..n];
        let (piece, newline) = match got.iter().position(|&b| b == b'\n') {
            Some(i) => (&got[..i], true),
            None => (got, false),
        };
        if line.len() + piece.len() > MAX_LINE + 1 {
            (ended, too_long) = (true, true);
            continue;
        }
        line.extend_from_slice(piece);
        ended = newline;
    }
    let status = match status {
        Some(status) => status,
        None => child.wait().await?,
    };
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if too_long || line.len() > MAX_LINE {
        return Ok((status, FirstLine::TooLong));
    }
    Ok((status, FirstLine::Text(line)))
}

/// Kill the program by its pid (if it still runs) and reap it.
async fn stop(child: &mut Child) {
    if let Err(e) = child.start_kill() {
        tracing::debug!("stopping a secret command: {e}");
    }
    if let Err(e) = child.wait().await {
        tracing::debug!("reaping a secret command: {e}");
    }
}

#[cfg(test)]
mod tests;
