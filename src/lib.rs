//! sqltun opens a tunnel to a private database through one or more SSH bastions, prints the local
//! port on stdout once the tunnel is usable, and forwards every local connection to the database as
//! seen from the last hop.
//!
//! ```text
//! argv ─► cli (clap, validates only) ─► resolve (flags + -o + env ─► TunnelPlan: plain data)
//!                                                    │
//! app: ssh::Chain::connect (hop by hop, host keys, auth) ─► bind listener(s) ─► output: ready line
//!                                                    │
//! tunnel::serve(listeners, chain, shutdown)
//!    └─ per accepted connection: open direct-tcpip to the target ─► pipe bytes both ways
//! ```
//!
//! Modules: [`cli`] the command line; [`resolve`] flags and environment into a [`plan::TunnelPlan`];
//! [`ssh`] sessions, host keys, authentication; [`tunnel`] listeners and forwarding; [`output`] stdout
//! and stderr; [`error`] the error classes and exit codes; [`secret`] secrets that never print;
//! [`pid_file`] `--pid-file`; [`completions`] shell completion scripts; [`logging`] log records on stderr;
//! `pattern` OpenSSH's host patterns (ssh_config and known_hosts); `safe_file` the one reader of files
//! a user names (regular files only, bounded, never blocking).

pub mod background;
pub mod cli;
pub mod cmd;
pub mod completions;
pub mod db;
pub mod dest;
pub mod error;
pub mod logging;
pub mod output;
pub(crate) mod pattern;
pub mod pid_file;
pub mod plan;
pub mod probe;
pub mod resolve;
pub(crate) mod safe_file;
pub mod secret;
pub mod ssh;
pub mod target;
pub mod text;
pub mod totp;
pub mod tunnel;

#[cfg(test)]
mod generated;
