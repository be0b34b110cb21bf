//! The tunnel plan: plain data produced by `resolve` and consumed by `ssh` and `tunnel`.
//! Nothing here does IO or knows clap or russh types, so tests compare plans with `assert_eq!`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;
use crate::secret_command::SecretCommand;
use crate::target::Target;

/// Everything needed to open the tunnel.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelPlan {
    /// The tunnel's name in the tunnels file (`sqltun connect NAME`); None for one given by flags alone.
    pub name: Option<String>,
    /// The SSH hops in dialling order; the last one opens the forwards.
    pub hops: Vec<Hop>,
    /// One local listener per forward, in the order given on the command line.
    pub forwards: Vec<Forward>,
    /// The local address listeners bind to.
    pub bind: IpAddr,
    /// What stdout carries once the tunnel is ready.
    pub output: OutputFormat,
    /// Whether a person can be asked (a terminal is attached and `--batch` is off).
    pub interactive: bool,
    /// How long the tunnel lives and where it leaves traces.
    pub lifecycle: Lifecycle,
}

/// How the tunnel lives once open: reconnecting, when it ends, where it listens and leaves traces.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lifecycle {
    /// Re-dial a dead chain behind the same listeners; `None` with `--no-reconnect`.
    pub reconnect: Option<Reconnect>,
    /// `--idle-timeout`: stop after no connection has been open this long.
    pub idle_timeout: Option<Duration>,
    /// `--max-lifetime`: stop this long after starting.
    pub max_lifetime: Option<Duration>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--background`: detach once ready, logging to `log_file` (a default path when `None`).
    pub background: bool,
    pub log_file: Option<PathBuf>,
    /// `--unix-socket`: listen on this Unix socket instead of TCP.
    pub unix_socket: Option<PathBuf>,
}

/// How a dead chain is re-dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// First delay; doubles per failed attempt up to `max`, with jitter.
    pub initial: Duration,
    pub max: Duration,
    /// A chain that stayed up this long resets the delay to `initial`.
    pub healthy_after: Duration,
    /// Give up when the chain has been down this long.
    pub give_up_after: Duration,
    /// How long a connection accepted during an outage waits for the new chain.
    pub wait_for_chain: Duration,
}

impl Reconnect {
    /// The documented defaults: 0.5 s doubling to 30 s, reset after 60 s up, give up after 10 min,
    /// new connections wait up to 30 s.
    pub const DEFAULT: Reconnect = Reconnect {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(30),
        healthy_after: Duration::from_secs(60),
        give_up_after: Duration::from_secs(600),
        wait_for_chain: Duration::from_secs(30),
    };
}

/// One SSH server on the way to the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Hop {
    /// How the user named this hop (an alias or `user@host:port` as typed); used in messages.
    pub name: String,
    /// The host to dial (as seen from the previous hop).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: AuthSettings,
    pub host_keys: HostKeySettings,
    /// Bound on TCP connect + key exchange + authentication.
    pub connect_timeout: Duration,
    /// Keepalive interval (`ServerAliveInterval`), `None` for off.
    pub keepalive_interval: Option<Duration>,
    /// Unanswered keepalives before the session is declared dead (`ServerAliveCountMax`).
    pub keepalive_max: u32,
    /// How the hop is reached: directly (TCP for the first hop, a channel of the previous hop after
    /// that) or through a `ProxyCommand`.
    pub transport: Transport,
    /// Algorithm lists from ssh_config or `-o`; `None` keeps sqltun's own preference order.
    pub algorithms: Algorithms,
}

/// How a hop's SSH stream is obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Direct,
    /// `sh -c COMMAND` (tokens already expanded); its stdin/stdout carry the SSH stream.
    ProxyCommand(String),
}

/// Algorithm preferences named by the configuration (each `None` unless the user set it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Algorithms {
    pub ciphers: Option<Vec<String>>,
    pub kex: Option<Vec<String>>,
    pub host_key: Option<Vec<String>>,
    pub macs: Option<Vec<String>>,
    pub compression: bool,
}

impl Hop {
    /// `user@host:port`, the way errors and progress name the hop.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            format!("{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

/// How to authenticate on one hop.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthSettings {
    /// Identity files in the order to try them.
    pub identities: Vec<PathBuf>,
    /// Whether the identity list came from the user (errors for missing files) or is the default list.
    pub identities_explicit: bool,
    /// Only offer agent keys that match one of `identities` (`IdentitiesOnly`).
    pub identities_only: bool,
    pub agent: AgentSource,
    pub pubkey: bool,
    pub password: bool,
    /// The password from the environment, a file or `password_command` (run only when a password is
    /// asked for); `None`: prompted for when needed.
    pub password_secret: Option<Lazy<Secret>>,
    /// Where the password would come from, for error messages (`SQLTUN_SSH_PASSWORD`, a file, a command).
    pub password_source: Option<String>,
    /// Try keyboard-interactive (answering password prompts with the password).
    pub keyboard_interactive: bool,
    /// How many times a person is asked for a password, passphrase or keyboard-interactive answers
    /// before the next method (`NumberOfPasswordPrompts`, default 3).
    pub password_prompts: u32,
    /// Method order from `PreferredAuthentications` (lowercase names), `None` for OpenSSH's order.
    pub preferred: Option<Vec<String>>,
    /// OpenSSH certificates to present with the identities (`CertificateFile`).
    pub certificates: Vec<PathBuf>,
    /// Passphrase for encrypted identity files (`SQLTUN_SSH_PASSPHRASE`, a file, or `passphrase_command`,
    /// run only when an encrypted key is to be opened).
    pub passphrase: Option<Lazy<Secret>>,
    /// Where the passphrase came from, for error messages.
    pub passphrase_source: Option<String>,
    /// One-time codes for keyboard-interactive verification prompts (from a TOTP secret, or from
    /// `totp_command`, run when a code is asked for), and where they come from.
    pub totp: Option<(Lazy<crate::totp::Totp>, String)>,
}

/// A secret the plan holds, or the command that yields it the moment it is needed: each run serves
/// one need of one hop on one connection and is never kept for another.
#[derive(Debug, Clone, PartialEq)]
pub enum Lazy<T> {
    /// Obtained up front (environment, file); its `Debug` prints no secret.
    Ready(T),
    /// Run when the secret is needed; its `Debug` names the program only.
    Command(SecretCommand),
}

/// Where agent keys come from.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentSource {
    None,
    Socket(PathBuf),
}

/// How host keys are checked on one hop.
#[derive(Debug, Clone, PartialEq)]
pub struct HostKeySettings {
    pub strict: StrictHostKeyChecking,
    /// Files that are read, and the first of which is written when a key is recorded.
    pub user_known_hosts: Vec<PathBuf>,
    /// Files that are read only.
    pub global_known_hosts: Vec<PathBuf>,
    /// Name to look the key up by instead of the host (`HostKeyAlias`).
    pub alias: Option<String>,
    /// Record new keys hashed (`HashKnownHosts`).
    pub hash_known_hosts: bool,
}

/// OpenSSH's `StrictHostKeyChecking`, with one deliberate difference: a changed key is refused under every setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    /// Never accept an unknown key.
    Yes,
    /// Ask a person at a terminal; refuse without one (the default).
    Ask,
    /// Record an unknown key and go on.
    AcceptNew,
    /// Record an unknown key and go on (a changed key is still refused, unlike OpenSSH).
    No,
}

/// One forward: a local listener and the target it reaches from the last hop.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    pub target: Target,
    /// 0 lets the OS choose.
    pub local_port: u16,
    /// The database URL the target came from, if any (for `--output url`, exec's variables, probes).
    pub url: Option<crate::db::DbUrl>,
}

/// What stdout carries once the tunnel is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// The local port, one line per forward.
    Port,
    /// `host:port` of the local listener, one line per forward.
    Addr,
    /// The target URL rewritten to the local end, one line per forward.
    Url,
    /// `SQLTUN_…=` lines for a shell's `eval`.
    Env,
    /// JSON events, one object per line.
    Json,
}
