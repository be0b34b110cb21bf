//! Throwaway PostgreSQL, MariaDB and Redis servers on loopback for the probe tests (no lab: the probe
//! talks to them over a plain TCP connection). Each runs from its own temporary directory (`TempDir`) on a free port,
//! tied to the test thread that started it (`setpriv --pdeathsig`, so a killed test process takes it
//! along), and is stopped by pid, its directory removed, when dropped — also when the test panics. A
//! missing server binary fails the test with the package to install.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::postgres::{Cluster, pg_bin, pg_isready};
use super::process::{Signal, run_logged, stop_children, tail, tied_to_test};
use super::sqltun::free_local_port;
use super::temp_dir::TempDir;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped server gets to exit before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Pause between two readiness checks.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A running server. Dropping it stops the process by pid and removes its directory.
#[derive(Debug)]
pub struct LoopbackServer {
    pub port: u16,
    name: &'static str,
    child: Child,
    /// The signal for a clean, quick shutdown.
    stop_signal: Signal,
    log: PathBuf,
    /// Dropped after `drop` has stopped the process.
    dir: TempDir,
}

impl LoopbackServer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// PostgreSQL (newest `/usr/lib/postgresql/N`), initdb'd as the `postgres` account with trust auth,
    /// `ssl = off` (initdb's default), listening on 127.0.0.1 only.
    pub fn postgres() -> LoopbackServer {
        let dir = TempDir::new("probe-postgres");
        let cluster = Cluster::init(dir.path());
        let port = free_local_port();
        let command = cluster.postmaster(
            Command::new("setpriv"),
            "127.0.0.1",
            port,
            dir.path(),
            &[
                "max_connections=10",
                // Dynamic shared memory in the data directory rather than /dev/shm: gone with the directory
                // even when a killed test process took the postmaster down with SIGKILL.
                "dynamic_shared_memory_type=mmap",
            ],
        );
        // SIGINT: fast shutdown; the postmaster ends its backends and releases its shared memory.
        let mut server = LoopbackServer::spawn("postgres", command, port, Signal::Int, dir);
        server.wait_ready(|| pg_isready(Command::new(pg_bin("pg_isready")), "127.0.0.1", port));
        server
    }

    /// MariaDB from `mariadb-install-db`, listening on 127.0.0.1 only, without name resolution, with one
    /// account `probe@127.0.0.1`: clients from 127.0.0.1 get the greeting, clients from any other address
    /// (127.0.0.2) get error 1130.
    pub fn mariadb() -> LoopbackServer {
        let install_db = server_program("mariadb-install-db", "mariadb-server");
        let mariadbd = server_program("mariadbd", "mariadb-server");
        let dir = TempDir::new("probe-mariadb");
        let data = dir.path().join("data");
        // At start-up mariadbd deletes every `#sql*` file in its tmpdir: a shared /tmp would let one
        // instance delete another's temporary tables (and did: mariadb-install-db failed at random).
        let tmp = dir.path().join("tmp");
        fs::create_dir(&tmp).unwrap_or_else(|e| panic!("create {}: {e}", tmp.display()));
        // Both programs read no option files and keep their data and temporary files in the directory.
        let in_scratch_dir = |program: &Path| {
            let mut command = tied_to_test(program);
            command
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .env("TMPDIR", &tmp);
            command
        };
        let mut install = in_scratch_dir(&install_db);
        install
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .current_dir(dir.path());
        run_logged("mariadb-install-db", &mut install, &dir.path().join("install.log"));
        let init = dir.path().join("init.sql");
        fs::write(&init, "CREATE USER 'probe'@'127.0.0.1';\n")
            .unwrap_or_else(|e| panic!("write {}: {e}", init.display()));

        let port = free_local_port();
        let error_log = dir.path().join("error.log");
        let mut command = in_scratch_dir(&mariadbd);
        command
            .arg(format!("--socket={}", dir.path().join("mariadbd.sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("mariadbd.pid").display()))
            .arg(format!("--log-error={}", error_log.display()))
            .arg(format!("--init-file={}", init.display()))
            .arg(format!("--port={port}"))
            // root here, so that the death signal is not cleared by a change of user.
            .args(["--bind-address=127.0.0.1", "--user=root", "--skip-name-resolve"])
            .args(["--innodb-buffer-pool-size=16M", "--max-connections=20"]);
        let mut server = LoopbackServer::spawn("mariadbd", command, port, Signal::Term, dir);
        // mariadbd listens before it accepts (and before the init file ran); this line comes after both.
        server.wait_ready(|| fs::read_to_string(&error_log).is_ok_and(|log| log.contains("ready for connections")));
        server
    }

    /// Redis on 127.0.0.1 with persistence off; `password` sets `requirepass`. Without one, protected mode
    /// (on by default) answers clients from addresses other than 127.0.0.1 with `-DENIED`.
    pub fn redis(password: Option<&str>) -> LoopbackServer {
        let redis_server = server_program("redis-server", "redis-server");
        let dir = TempDir::new("probe-redis");
        let port = free_local_port();
        let mut command = tied_to_test(&redis_server);
        command
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--protected-mode", "yes", "--dir"])
            .arg(dir.path());
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        let mut server = LoopbackServer::spawn("redis-server", command, port, Signal::Term, dir);
        // Redis accepts as soon as it listens; with no dataset to load, it then answers at once.
        server.wait_ready(|| TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok());
        server
    }

    fn spawn(name: &'static str, mut command: Command, port: u16, stop_signal: Signal, dir: TempDir) -> LoopbackServer {
        let log = dir.path().join(format!("{name}.out"));
        let child = output_to(&mut command, &log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        LoopbackServer {
            port,
            name,
            child,
            stop_signal,
            log,
            dir,
        }
    }

    /// Polls `ready` until it holds; fails with the server's output if the server exits or time runs out.
    fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.diagnostics()
                );
            }
            if ready() {
                return;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "{} was not ready after {READY_TIMEOUT:?}:\n{}",
                self.name,
                self.diagnostics()
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The ends of the server's logs, for failure messages.
    fn diagnostics(&self) -> String {
        let mut text = format!("--- {}\n{}\n", self.log.display(), tail(&self.log, 40));
        let error_log = self.dir.path().join("error.log");
        if error_log.exists() {
            text.push_str(&format!("--- {}\n{}\n", error_log.display(), tail(&error_log, 40)));
        }
        text
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        stop_children([(&mut self.child, self.stop_signal)], STOP_GRACE);
    }
}

/// Sends `command`'s stdout and stderr both to the new file `log`.
fn output_to<'a>(command: &'a mut Command, log: &Path) -> &'a mut Command {
    let output = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let errors = output
        .try_clone()
        .unwrap_or_else(|e| panic!("clone {}: {e}", log.display()));
    command.stdout(output).stderr(errors)
}

/// `program` from the usual directories or PATH; fails the test naming the package that provides it.
pub fn server_program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from);
    dirs.into_iter()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} not found: install the `{package}` package (apt-get install -y {package})"))
}
