//! sqltun's integration tests: the real binary against real servers (OpenSSH's sshd as the bastion,
//! PostgreSQL and simple echo/sink/source servers as targets) in network namespaces where the target is
//! reachable only through the bastion; and the library's database probes against real servers on loopback
//! (`probe`).
//!
//! They need root (network namespaces, an OS account for sshd) and the tools `scripts/install-test-deps`
//! installs; run them with `scripts/test`.

mod auth;
mod auth_methods;
mod authorize;
mod chain;
mod cli;
mod connect;
mod faults;
mod local;
mod probe;
mod registry;
mod saved;
mod scripting;
mod secret_commands;
mod support;
mod terminal;
