//! A real PostgreSQL server in the lab's target namespace (its own initdb, run as the `postgres` user),
//! and the real `psql` client, run from the root namespace against a tunnel's local port.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::SocketAddrV4;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::lab::{Lab, make_dir};
use super::process::{
    Signal, account_ids, as_account, in_namespace, run_logged, tail, tied_to_test, wait_child, wait_until,
};

const PORT: u16 = 5432;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const PSQL_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL server; the lab owns the process.
#[derive(Debug)]
pub struct Postgres {
    /// Where it listens, as seen from the last bastion (the `--db` value).
    pub addr: SocketAddrV4,
}

/// A PostgreSQL program from the newest installed major version (`/usr/lib/postgresql/N/bin`).
pub fn pg_bin(program: &str) -> PathBuf {
    let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let path = entry.path().join("bin").join(program);
            path.exists().then_some((version, path))
        })
        .collect();
    candidates.sort();
    candidates
        .pop()
        .map(|(_, path)| path)
        .unwrap_or_else(|| panic!("no /usr/lib/postgresql/*/bin/{program}: run scripts/install-test-deps"))
}

/// A PostgreSQL cluster on disk, made by `initdb` as the `postgres` account: the one way the tests make
/// and start a server, in the lab (`Lab::start_postgres`) and on loopback (`LoopbackServer::postgres`).
#[derive(Debug)]
pub(super) struct Cluster {
    pub root: PathBuf,
    pub data: PathBuf,
    uid: u32,
    gid: u32,
}

impl Cluster {
    /// Hands the existing directory `root` to `postgres` and runs initdb there (bounded, output in
    /// `root/initdb.log`): data in `root/data`, superuser `postgres`, trust auth, no fsync, C locale, UTF-8.
    pub(super) fn init(root: &Path) -> Cluster {
        let (uid, gid) = account_ids("postgres");
        chown(root, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {}: {e}", root.display()));
        let data = root.join("data");
        run_logged(
            "initdb",
            as_account(&mut Command::new("setpriv"), uid, gid)
                .arg(pg_bin("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "--encoding=UTF8",
                    "--locale=C",
                ])
                .current_dir(root),
            &root.join("initdb.log"),
        );
        Cluster {
            root: root.to_path_buf(),
            data,
            uid,
            gid,
        }
    }

    /// The postmaster for this cluster as `postgres`, started through `launcher` (`setpriv`, or
    /// `ip netns exec NS setpriv`), listening on `host:port` with its socket in `sockets`: no fsync, small
    /// shared memory, and `settings` (more `-c NAME=VALUE` pairs).
    pub(super) fn postmaster(
        &self,
        mut launcher: Command,
        host: &str,
        port: u16,
        sockets: &Path,
        settings: &[&str],
    ) -> Command {
        as_account(&mut launcher, self.uid, self.gid)
            .arg(pg_bin("postgres"))
            .arg("-D")
            .arg(&self.data)
            .args(["-h", host, "-p", &port.to_string(), "-k"])
            .arg(sockets)
            .args(["-c", "fsync=off", "-c", "shared_buffers=16MB"])
            .args(settings.iter().flat_map(|setting| ["-c", setting]))
            .current_dir(&self.root);
        launcher
    }
}

/// Whether a postgres answers on `host:port` within a second: `pg_isready`, run as `command` (the program
/// itself, or `in_namespace` of it), succeeds.
pub(super) fn pg_isready(mut command: Command, host: &str, port: u16) -> bool {
    command
        .args([
            "-q",
            "-h",
            host,
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-t", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

impl Lab {
    /// initdb + postgres in the target namespace, trusting connections from the lab's subnet; waits until
    /// `pg_isready` answers on the target address.
    pub fn start_postgres(&self) -> Postgres {
        let root = self.account_dir("postgres", "postgres");
        let cluster = Cluster::init(&root);
        let hba = cluster.data.join("pg_hba.conf");
        let mut file = OpenOptions::new()
            .append(true)
            .open(&hba)
            .unwrap_or_else(|e| panic!("open {}: {e}", hba.display()));
        writeln!(file, "host all all {} trust", self.subnet())
            .unwrap_or_else(|e| panic!("write {}: {e}", hba.display()));
        let sockets = root.join("sockets");
        make_dir(&sockets, 0o700);
        chown(&sockets, Some(cluster.uid), Some(cluster.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", sockets.display()));

        let addr = SocketAddrV4::new(self.target_addr(), PORT);
        let log = root.join("postgres.log");
        let stderr = self.account_log("postgres", &log, "postgres");
        let mut launcher = Command::new("ip");
        launcher.args(["netns", "exec", &self.target_namespace(), "setpriv"]);
        let pid = self.spawn(
            "postgres",
            cluster
                .postmaster(
                    launcher,
                    &addr.ip().to_string(),
                    PORT,
                    &sockets,
                    &["max_connections=20"],
                )
                .stdout(Stdio::null())
                .stderr(stderr),
            // Immediate shutdown: the postmaster takes its backends down with it.
            Signal::Quit,
        );
        self.wait_for_postgres("postgres", pid, addr, &log);
        Postgres { addr }
    }

    /// Waits until the postgres with `pid` (started with `spawn`) answers on `addr` in the target
    /// namespace; fails the test with the end of `log` if it exits first or time runs out.
    pub(super) fn wait_for_postgres(&self, what: &str, pid: u32, addr: SocketAddrV4, log: &Path) {
        wait_until(
            &format!("{what} to accept connections on {addr}"),
            READY_TIMEOUT,
            || {
                if let Some(status) = self.exit_status(pid) {
                    panic!("{what} exited ({status}) before it was ready:\n{}", tail(log, 40));
                }
                let command = in_namespace(&self.target_namespace(), pg_bin("pg_isready"));
                pg_isready(command, &addr.ip().to_string(), addr.port()).then_some(())
            },
        );
    }
}

/// Runs `psql -At -c SQL` as `postgres` against 127.0.0.1:`port` (a tunnel) and returns its stdout;
/// fails the test, with psql's stderr, if psql fails or does not finish in time.
pub fn psql(port: u16, sql: &str, home: &Path) -> String {
    psql_stdout(
        &mut local_psql(Command::new(pg_bin("psql")), port, sql),
        home,
        &format!("psql -c {sql:?} via 127.0.0.1:{port}"),
    )
}

/// Runs `psql -X -w -At -c SQL URL` (a connection URL such as sqltun's `--output url`) and returns its
/// stdout; fails the test, with psql's stderr, if psql fails or does not finish in time.
pub fn psql_url(url: &str, sql: &str, home: &Path) -> String {
    psql_stdout(
        Command::new(pg_bin("psql")).args(["-X", "-w", "-At", "-c", sql, url]),
        home,
        &format!("psql -c {sql:?} {url}"),
    )
}

/// Runs `psql -X -w -At -c SQL` as `postgres` against 127.0.0.1:`port` and returns its output whatever
/// its status (for connections that are expected to fail); killed after `timeout`.
pub fn psql_output(port: u16, sql: &str, home: &Path, timeout: Duration) -> Output {
    collect_psql(&mut local_psql(tied_to_test(pg_bin("psql")), port, sql), home, timeout)
}

/// `command` (a psql) with the arguments for `sql` as `postgres` on database `postgres` at
/// 127.0.0.1:`port`, unaligned and tuples only, never reading a psqlrc or asking for a password.
fn local_psql(mut command: Command, port: u16, sql: &str) -> Command {
    command
        .args(["-X", "-w", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", "postgres", "-d", "postgres", "-At", "-c", sql]);
    command
}

/// Runs a psql `command` (see `collect_psql`, bounded by `PSQL_TIMEOUT`) and returns its stdout; fails the
/// test with `what` and psql's stderr unless it succeeds.
fn psql_stdout(command: &mut Command, home: &Path, what: &str) -> String {
    let output = collect_psql(command, home, PSQL_TIMEOUT);
    assert!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a psql `command` with HOME=`home`, no password or service from the environment, and a 20 s
/// connect timeout; kills it after `timeout` and returns its output whatever its status.
fn collect_psql(command: &mut Command, home: &Path, timeout: Duration) -> Output {
    let mut child = command
        .env("HOME", home)
        .env("PGCONNECT_TIMEOUT", "20")
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
    if wait_child(&mut child, timeout).is_none() {
        let _ = child.kill();
    }
    child.wait_with_output().expect("collect psql output")
}
