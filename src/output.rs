//! Every byte sqltun writes for people and scripts: the ready line on stdout (the data contract, and
//! the only thing ever written there), and progress, prompts, notices and errors on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::{Error, Kind, Result};
use crate::plan::OutputFormat;
use crate::secret::Secret;
use crate::ssh::{HopLabel, Interaction};

/// Print what a script waits for, one line per listener, and flush.
pub fn ready(format: OutputFormat, addrs: &[SocketAddr]) -> Result<()> {
    let mut text = String::new();
    for addr in addrs {
        match format {
            OutputFormat::Port => text.push_str(&format!("{}\n", addr.port())),
            OutputFormat::Addr => text.push_str(&format!("{addr}\n")),
        }
    }
    let mut out = std::io::stdout().lock();
    // A closed stdout (the script went away) is not worth failing the tunnel over, but say so.
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        tracing::warn!("could not write the ready line to stdout: {e}");
    }
    Ok(())
}

/// Data for a script on stdout (`config` output), flushed.
pub fn data(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::internal(format!("cannot write to stdout: {e}")))
}

/// One JSON value on one line of stdout.
pub fn json_line(value: &serde_json::Value) -> Result<()> {
    data(&format!("{value}\n"))
}

/// The one line an error gets on stderr.
pub fn error(e: &Error) {
    let _ = writeln!(std::io::stderr().lock(), "sqltun: {}", e.message());
    if e.kind() == Kind::Internal {
        let _ = writeln!(
            std::io::stderr().lock(),
            "sqltun: this is a bug; please report it with the output of -vv"
        );
    }
}

/// A status line for people (suppressed by -q).
pub fn status(quiet: bool, text: &str) {
    if !quiet {
        let _ = writeln!(std::io::stderr().lock(), "sqltun: {text}");
    }
}

/// The terminal side of [`Interaction`]: a spinner while connecting (only when stderr is a terminal),
/// prompts on /dev/tty, notices on stderr.
#[derive(Debug)]
pub struct Terminal {
    spinner: Option<ProgressBar>,
    quiet: bool,
}

impl Terminal {
    pub fn new(quiet: bool) -> Self {
        let spinner = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Terminal { spinner, quiet }
    }

    /// Stop the spinner (the tunnel is up, or failed).
    pub fn finish(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }

    fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.spinner {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}

impl Interaction for Terminal {
    fn progress(&self, hop: &HopLabel, step: &str) {
        tracing::info!("{} {step}", hop.short());
        if let Some(bar) = &self.spinner {
            bar.set_message(format!("{} {step}", hop.short()));
        }
    }

    fn confirm(&self, question: &str) -> bool {
        self.suspend(|| {
            let Ok(mut tty) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty") else {
                return false;
            };
            loop {
                if tty.write_all(question.as_bytes()).and_then(|_| tty.flush()).is_err() {
                    return false;
                }
                let mut line = String::new();
                let Ok(reader) = tty.try_clone() else { return false };
                if std::io::BufReader::new(reader).read_line(&mut line).is_err() {
                    return false;
                }
                match line.trim().to_ascii_lowercase().as_str() {
                    "yes" | "y" => return true,
                    "no" | "n" | "" => return false,
                    _ => {
                        let _ = tty.write_all(b"Please type 'yes' or 'no': ");
                    }
                }
            }
        })
    }

    fn secret(&self, prompt: &str) -> Option<Secret> {
        self.suspend(|| rpassword::prompt_password(prompt).ok().map(Secret::new))
    }

    fn notice(&self, hop: &HopLabel, text: &str) {
        if !self.quiet {
            self.suspend(|| {
                let _ = writeln!(std::io::stderr().lock(), "sqltun: {hop}: {text}");
            });
        }
    }
}
