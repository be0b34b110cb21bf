//! Fixtures for the integration tests: a network lab of namespaces (`lab`), real servers inside it
//! (OpenSSH's sshd in `sshd`, PostgreSQL in `postgres`, MariaDB in `mariadb`, Redis in `redis`, the
//! echo/sink/source targets in `targets`, ssh-agent in `agent`), and the runner for the sqltun binary
//! (`sqltun`).
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
mod faults;
mod lab;
mod mariadb;
mod postgres;
mod process;
mod redis;
mod sqltun;
mod sshd;
mod targets;

pub use faults::{proc_stats, psql_output, tunnel_stats};
pub use lab::Lab;
pub use mariadb::{MARIADB_PASSWORD, MARIADB_USER};
pub use postgres::{psql, psql_url};
pub use process::{MarkedProcesses, Signal, poll_until, send_signal, wait_until};
pub use sqltun::{
    Completed, EXIT_TIMEOUT, SIGNAL_EXIT_TIMEOUT, Sqltun, SqltunCommand, TempHome, Tripwire, accepts_connections,
    error_line, free_local_port, local,
};
pub use sshd::{KeyKind, KeyPair, Pam, Sshd, SshdOptions, TEST_PASSWORD, TEST_USER};
pub use targets::{
    Targets, connect, download_from_source, echo_concurrently, echo_on, echo_roundtrip, pattern_sha256,
    reachable_directly, upload_to_sink,
};
