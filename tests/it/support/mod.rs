//! Fixtures for the integration tests: a network lab of namespaces (`lab`), real servers inside it
//! (OpenSSH's sshd in `sshd`, PostgreSQL in `postgres`, MariaDB in `mariadb`, Redis in `redis`, the
//! echo/sink/source targets in `targets`, ssh-agent in `agent`), the setups most tests start from (one
//! bastion or a chain of them, in `bastion`), OpenSSH's own client (`openssh`), the runner for the sqltun
//! binary (`sqltun`), and throwaway database servers on loopback for the probe tests (`probe_servers`, no
//! lab), and a terminal to run sqltun on (`pty`).
//!
//! ```text
//!   root namespace: tests, sqltun, ssh-agent, psql, mysql, redis-cli
//!        │ veth (198.18.x.0/30)
//!   B1: sshd            (… B2, B3: more bastions, each reachable only from the one before)
//!        │ veth (198.18.x.4/30)
//!   D: targets.py, postgres, mariadbd, redis-server   — unreachable from root except through sshd
//! ```
//!
//! Every fixture waits for readiness by polling with a bound, and the `Lab` stops every process it
//! started and removes its namespaces and files on drop.

mod agent;
mod bastion;
mod faults;
mod lab;
mod mariadb;
mod openssh;
mod postgres;
mod probe_servers;
mod process;
mod pty;
mod redis;
mod sqltun;
mod sshd;
mod targets;
mod temp_dir;

pub use agent::agent_listing;
pub use bastion::{Bastion, Chain};
pub use faults::{proc_stats, tunnel_stats};
pub use lab::{Lab, set_mode, write_file};
pub use mariadb::{MARIADB_PASSWORD, MARIADB_USER};
pub use openssh::OpenSsh;
pub use postgres::{psql, psql_output, psql_url};
pub use probe_servers::{LoopbackServer, server_program};
pub use process::{MarkedProcesses, Signal, account_ids, poll_until, process_gone, run, send_signal, wait_until};
pub use pty::TerminalSession;
pub use sqltun::{
    Completed, EXIT_TIMEOUT, SIGNAL_EXIT_TIMEOUT, SQLTUN, Sqltun, SqltunCommand, TempHome, Tripwire,
    accepts_connections, assert_error, assert_hop_failed, error_line, free_local_port, local, toml_words,
};
pub use sshd::{KeyKind, KeyPair, Pam, Sshd, SshdOptions, TEST_PASSWORD, TEST_USER, assert_logged, only_methods};
pub use targets::{
    Targets, assert_download_intact, assert_upload_intact, connect, download_from_source, download_hashed,
    echo_concurrently, echo_on, echo_roundtrip, pattern_sha256, reachable_directly, upload_to_sink,
};
