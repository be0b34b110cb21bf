//! What the SSH layer tells and asks a person ([`Interaction`]), how it names a hop ([`HopLabel`]) and
//! what it reports of each stage of connecting one ([`Stage`], the host key [`Offered`]).

use std::path::PathBuf;
use std::time::Duration;

use russh::keys::PublicKey;

use super::known_hosts;
use crate::error::Result;
use crate::plan::TunnelPlan;
use crate::secret::Secret;
use crate::secret_command::SecretCommand;

/// A question being put to a person: the answer, or [`crate::error::Kind::Interrupted`] on Ctrl-C.
pub type Asked<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;

/// What the SSH layer needs from a person (or from the absence of one).
pub trait Interaction: Send + Sync {
    /// A step of the connection is starting (`[1/2] deploy@host:22 authenticating (publickey)`).
    fn progress(&self, hop: &HopLabel, step: &str);
    /// A question answered with a line typed in view; only called when the plan is interactive.
    /// `Ok(None)` when there is no answer (no terminal, end of input).
    fn ask<'a>(&'a self, hop: &'a HopLabel, question: &'a str) -> Asked<'a, Option<String>>;
    /// Ask for a secret for `hop` (typed hidden); only called when the plan is interactive. `Ok(None)`
    /// if the person gave none. `prompt` is already safe to show (server text in it is escaped).
    fn secret<'a>(&'a self, hop: &'a HopLabel, prompt: &'a str) -> Asked<'a, Option<Secret>>;
    /// Run a command that yields a secret (`password_command`, …). It may ask a person on the terminal
    /// itself, so whatever progress is drawn is taken off the screen while it runs. Never kept for a
    /// reconnect or another hop: every call runs it anew.
    fn run_command<'a>(&'a self, _hop: &'a HopLabel, command: &'a SecretCommand) -> Asked<'a, Secret> {
        Box::pin(command.run())
    }
    /// A line of the conversation with a person, between prompts (`Permission denied, please try
    /// again.`); shown as is, where the prompts are.
    fn tell(&self, hop: &HopLabel, text: &str) {
        tracing::info!(%hop, "{text}");
    }
    /// A banner or notice for stderr. Server text in it is already escaped (see `crate::text`).
    fn notice(&self, hop: &HopLabel, text: &str);
    /// A stage of connecting a hop finished (for `check`); `elapsed` is its own duration.
    fn stage(&self, hop: &HopLabel, stage: &Stage, elapsed: Duration) {
        tracing::debug!(%hop, ?stage, ?elapsed, "stage done");
    }
}

/// What the identification exchange measured of a hop's path, and the channel window chosen for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathWindow {
    /// One round trip of the whole path to the hop; `None` when the server's answer could not be timed.
    pub round_trip: Option<Duration>,
    /// The receive window each channel of the hop advertises, in bytes.
    pub window: u32,
}

impl std::fmt::Display for PathWindow {
    /// `round trip 22.4 ms, channel window 16 MiB`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.round_trip {
            Some(t) => write!(f, "round trip {:.1} ms", t.as_secs_f64() * 1e3)?,
            None => write!(f, "round trip not measured")?,
        }
        write!(f, ", channel window {} MiB", self.window >> 20)
    }
}

/// A completed stage of connecting one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// The byte stream to the hop exists: `TCP 198.18.0.2:22`, `channel through hop 1`, `ProxyCommand`.
    Transport(String),
    /// Key exchange (the host key check included) completed, over a path measured as this.
    KeyExchange(PathWindow),
    /// The host key the server offered and whether (how) it was accepted.
    HostKey(Offered),
    /// Authentication succeeded with this method.
    Auth(String),
}

/// How messages name a hop: its position and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopLabel {
    pub index: usize,
    pub count: usize,
    pub address: String,
    pub name: String,
}

impl std::fmt::Display for HopLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.count > 1 {
            write!(f, "hop {}/{} {}", self.index + 1, self.count, self.address)?;
        } else {
            write!(f, "hop {}", self.address)?;
        }
        if !self.name.is_empty() && !self.address.contains(&self.name) {
            write!(f, " (\"{}\")", self.name)?;
        }
        Ok(())
    }
}

impl HopLabel {
    pub fn new(plan: &TunnelPlan, index: usize) -> Self {
        let hop = &plan.hops[index];
        HopLabel {
            index,
            count: plan.hops.len(),
            address: hop.address(),
            name: hop.name.clone(),
        }
    }
    /// `[1/2] user@host:port`, for progress lines.
    pub fn short(&self) -> String {
        format!("[{}/{}] {}", self.index + 1, self.count, self.address)
    }
}

/// How the offered key was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// Listed in a known_hosts file (file, line).
    Known(PathBuf, usize),
    /// Unknown, and recorded in a file (file, line) by policy or a person's answer.
    Recorded(PathBuf, usize),
    /// Unknown and accepted without recording (recording failed).
    AcceptedUnrecorded,
}

/// The key a server offered and what became of it (for `check` and `-v`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub algorithm: String,
    pub fingerprint: String,
    pub accepted: Option<Acceptance>,
}

impl Offered {
    pub fn of(key: &PublicKey, accepted: Option<Acceptance>) -> Self {
        Offered {
            algorithm: key.algorithm().to_string(),
            fingerprint: known_hosts::fingerprint(key),
            accepted,
        }
    }
}
