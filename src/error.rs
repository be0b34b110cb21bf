//! The user-facing error taxonomy: one class per failure a script may want to tell apart, each with its
//! own exit code. Messages are one sentence naming what failed, where, and what to do about it.

use std::fmt;

/// A class of failure; each maps to one documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A bug or an unexpected local condition.
    Internal,
    /// Bad flags, a malformed destination, target, config file or key file, or a missing secret.
    Usage,
    /// A bastion could not be reached: DNS, TCP connect, timeout, or the SSH handshake did not complete.
    Unreachable,
    /// A host key was unknown (and not accepted), changed, or revoked.
    HostKey,
    /// Every authentication method was refused, or a secret was wrong.
    Auth,
    /// The last hop refused to open the forward to the target.
    ForwardRefused,
    /// The local listener could not be bound.
    LocalBind,
    /// An established SSH session failed (protocol error, disconnect) and reconnecting is off.
    Session,
    /// The SSH chain died and could not be re-established within the reconnect bound.
    GaveUp,
    /// `stop`: no running tunnel has the name or local port given.
    NotRunning,
    /// `stop`: a tunnel was sent SIGTERM and did not exit within the bound.
    StillRunning,
    /// Ctrl-C (SIGINT) at a prompt or while connecting: nothing was recorded, the tunnel never opened.
    Interrupted,
}

impl Kind {
    /// The process exit code for this class (documented in the README and the man page).
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Internal => 1,
            Kind::Usage => 2,
            Kind::Unreachable => 3,
            Kind::HostKey => 4,
            Kind::Auth => 5,
            Kind::ForwardRefused => 6,
            Kind::LocalBind => 7,
            Kind::Session => 8,
            Kind::GaveUp => 9,
            Kind::NotRunning => 12,
            Kind::StillRunning => 13,
            // The shell's convention for a process ended by SIGINT (128 + 2).
            Kind::Interrupted => 130,
        }
    }

    /// Every class, in exit-code order (for documentation and tests).
    pub const ALL: [Kind; 12] = [
        Kind::Internal,
        Kind::Usage,
        Kind::Unreachable,
        Kind::HostKey,
        Kind::Auth,
        Kind::ForwardRefused,
        Kind::LocalBind,
        Kind::Session,
        Kind::GaveUp,
        Kind::NotRunning,
        Kind::StillRunning,
        Kind::Interrupted,
    ];

    /// A short description of the class, as the README's exit-code table words it.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Internal => "internal error (a bug: please report it)",
            Kind::Usage => "usage or configuration error (bad flag, destination, config, key file, missing secret)",
            Kind::Unreachable => "an SSH host is unreachable (DNS, TCP, timeout, handshake)",
            Kind::HostKey => "host key rejected (unknown, changed or revoked)",
            Kind::Auth => "authentication failed",
            Kind::ForwardRefused => "the forward to the target was refused",
            Kind::LocalBind => "the local port could not be bound",
            Kind::Session => "the SSH session failed after it was established (and --no-reconnect)",
            Kind::GaveUp => "the SSH chain died and reconnecting gave up (--reconnect-timeout)",
            Kind::NotRunning => "stop: no running tunnel has that name or local port",
            Kind::StillRunning => "stop: the tunnel did not exit within 10 s of SIGTERM",
            Kind::Interrupted => "interrupted by Ctrl-C (SIGINT) at a prompt or before the tunnel was ready",
        }
    }
}

/// `--max-lifetime` ended the tunnel.
pub const EXIT_MAX_LIFETIME: u8 = 10;
/// `--idle-timeout` ended the tunnel.
pub const EXIT_IDLE: u8 = 11;
/// `exec`: the command was found but could not be run (as shells report it).
pub const EXIT_NOT_EXECUTABLE: u8 = 126;
/// `exec`: the command was not found (as shells report it).
pub const EXIT_NOT_FOUND: u8 = 127;

/// Every exit status sqltun documents, in order, as (code as written, meaning). `--help`, the man page
/// and the README print this one table, and tests hold them to it.
pub fn exit_statuses() -> Vec<(String, &'static str)> {
    let mut rows = vec![("0".to_string(), "success (for connect: stopped by SIGINT or SIGTERM)")];
    rows.extend(Kind::ALL.iter().map(|k| (k.exit_code().to_string(), k.describe())));
    rows.extend([
        (EXIT_MAX_LIFETIME.to_string(), "connect: --max-lifetime reached"),
        (EXIT_IDLE.to_string(), "connect: --idle-timeout reached"),
        (EXIT_NOT_EXECUTABLE.to_string(), "exec: the command could not be run"),
        (EXIT_NOT_FOUND.to_string(), "exec: the command was not found"),
        ("128+N".to_string(), "exec: the command was ended by signal N"),
    ]);
    // In ascending order; `128+N` sorts as 128.
    rows.sort_by_key(|(code, _)| code.split('+').next().and_then(|n| n.parse::<u32>().ok()).unwrap_or(0));
    rows
}

/// An error a user sees: its class and one line of text.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    message: String,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Error::new(Kind::Usage, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(Kind::Internal, message)
    }
    /// Ctrl-C at a prompt or while connecting: one line, `sqltun: interrupted`.
    pub fn interrupted() -> Self {
        Error::new(Kind::Interrupted, "interrupted")
    }
    pub fn kind(&self) -> Kind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
    /// Prefix the message with where it happened (`hop 1/2 deploy@host:22`).
    pub fn context(self, place: impl fmt::Display) -> Self {
        Error {
            kind: self.kind,
            message: format!("{place}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Scripts tell failures apart by exit code, so no two classes may share one.
    #[test]
    fn exit_codes_are_distinct() {
        let mut codes: Vec<u8> = Kind::ALL.iter().map(|k| k.exit_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Kind::ALL.len());
        assert!(!codes.contains(&0));
    }

    /// The documented table lists every class once, in ascending order, with the exit codes the
    /// subcommands really use.
    #[test]
    fn documented_table_covers_every_code() {
        let rows = exit_statuses();
        for kind in Kind::ALL {
            let code = kind.exit_code().to_string();
            assert_eq!(rows.iter().filter(|(c, _)| *c == code).count(), 1, "{kind:?}");
        }
        for code in [EXIT_MAX_LIFETIME, EXIT_IDLE, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, 130] {
            assert!(rows.iter().any(|(c, _)| *c == code.to_string()), "{code}");
        }
        let numbers: Vec<u32> = rows
            .iter()
            .map(|(c, _)| c.split('+').next().unwrap().parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    }
}
