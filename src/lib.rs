//! sqltun opens a tunnel to a private database through one or more SSH bastions, prints the local
//! port on stdout once the tunnel is usable, and forwards every local connection to the database as
//! seen from the last hop.
//!
//! ```text
//! argv ─► cli (clap, validates only) ─► resolve (flags + ssh_config + env ─► TunnelPlan: plain data)
//!                                                    │
//! main: signals ─► Shutdown (Stop::Interrupt / Stop::Terminate) ─► cmd::{connect, exec, check, config, authorize, ls, stop}
//!                                                    │
//! cmd::open: ssh::Chain (hop by hop, host keys, auth) ─► bind listener(s) ─► output: ready line
//!                                                    │
//! tunnel::serve(listeners, chain, shutdown) ─► Event / End ─► cmd: stderr lines, JSON events, exit code
//!    └─ per accepted connection: open direct-tcpip to the target ─► pipe bytes both ways
//! ```
//!
//! The rule of the layers: a module uses only modules on a lower line, never one above it or beside
//! it on its own line; the bottom two lines use nothing above them and, without a cycle, each other
//! (`db` uses `dest`, `env` uses `safe_file`, `safe_file` uses `text`, `secret_command` uses `secret`).
//! From the top:
//!
//! ```text
//! main
//! cmd                                             wires the stages of each subcommand
//! background  completions  logging  pid_file  probe  registry
//! resolve                                         reads the flags that cli parsed
//! cli                                             clap; parses into domain types and plan's OutputFormat
//! tunnel  output                                  output implements ssh's `Interaction` (prompts)
//! ssh
//! plan                                            plain data
//! dest  target  db  secret  text  pattern  totp   domain types: no IO, no stage
//! error  env  safe_file  secret_command           error classes; the seams to the environment, files, secret commands
//! ```
//!
//! A trait defined below and implemented above (`ssh::Interaction`, implemented by `output::Terminal`)
//! points down like any other use.
//!
//! Modules, one line each:
//! - [`cmd`]: one file per subcommand, each taking the plan (or its args) and the shutdown from `main`.
//! - [`cli`]: the clap surface; its value parsers call only the domain types.
//! - [`resolve`]: flags + ssh_config + environment into a `plan::TunnelPlan`.
//! - `plan`: the plan, lifecycle policy included: plain data.
//! - [`ssh`]: sessions, host keys, authentication, channels.
//! - `tunnel`: listeners, forwarding and the reconnect supervisor; it reports events, never prints.
//! - [`probe`]: what answers at a target (`check`): the database's own handshake.
//! - `background`: `--background`: start the tunnel detached, relay its ready output.
//! - `pid_file`: `--pid-file`.
//! - `registry`: the running background tunnels, one file each in the state directory (`ls`, `stop`).
//! - `completions`: shell completion scripts.
//! - [`output`]: every byte on stdout and stderr for people and scripts, prompts included.
//! - [`logging`]: log records on stderr.
//! - [`error`]: the error classes and every exit code.
//! - [`env`]: the one seam to the process environment (variables, home, user, terminal), so tests inject it.
//! - `totp`: one-time codes for keyboard-interactive verification prompts.
//! - [`dest`]: SSH destinations as typed (`user@host:port`, jump lists), their checks.
//! - `target`: a host and port as seen from the last hop.
//! - [`db`]: database schemes and URLs, `scheme+ssh://` URLs, the environment a client reads.
//! - [`secret`]: secrets that never print.
//! - `text`: quoting and escaping text for messages and the shell.
//! - `pattern`: OpenSSH's host patterns (ssh_config and known_hosts).
//! - `safe_file`: the one reader of files a user names (regular files only, bounded, never blocking).
//! - `secret_command`: `password_command` and its kin: a program whose first line of output is a secret.

pub(crate) mod background;
pub mod cli;
pub mod cmd;
pub(crate) mod completions;
pub mod db;
pub mod dest;
pub mod env;
pub mod error;
pub mod logging;
pub mod output;
pub(crate) mod pattern;
pub(crate) mod pid_file;
pub(crate) mod plan;
pub mod probe;
pub(crate) mod registry;
pub mod resolve;
pub(crate) mod safe_file;
pub mod secret;
pub mod secret_command;
pub mod ssh;
pub(crate) mod target;
pub(crate) mod text;
pub(crate) mod totp;
pub(crate) mod tunnel;

#[cfg(test)]
mod generated;
