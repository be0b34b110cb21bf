//! Throwaway PostgreSQL, MariaDB and Redis servers on loopback for the probe tests (no lab: the probe
//! talks to them over a plain TCP connection). Each runs from its own temporary directory on a free port,
//! tied to the test thread that started it (`setpriv --pdeathsig`, so a killed test process takes it
//! along), and is stopped by pid, its directory removed, when dropped — also when the test panics. A
//! missing server binary fails the test with the package to install.

use std::fs::{self, DirBuilder, File};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::unix::fs::{DirBuilderExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::postgres::pg_bin;
use super::process::{Signal, account_ids, as_account, stop_children, tail, tied_to_test, wait_child};
use super::sqltun::free_local_port;

/// Where every server's directory goes.
const SCRATCH_ROOT: &str = "/tmp/sqltun-probe-servers";
/// initdb and mariadb-install-db normally take a few seconds.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped server gets to exit before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Pause between two readiness checks.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);
static LEFTOVERS_REMOVED: Once = Once::new();

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
    dir: ScratchDir,
}

impl LoopbackServer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// PostgreSQL (newest `/usr/lib/postgresql/N`), initdb'd as the `postgres` account with trust auth,
    /// `ssl = off` (initdb's default), listening on 127.0.0.1 only.
    pub fn postgres() -> LoopbackServer {
        let initdb = pg_bin("initdb");
        let postgres = pg_bin("postgres");
        let pg_isready = pg_bin("pg_isready");
        let (uid, gid) = account_ids("postgres");
        let dir = ScratchDir::new("postgres");
        chown(&dir.0, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {}: {e}", dir.0.display()));
        let data = dir.0.join("data");
        let as_postgres = |program: &Path| {
            let mut command = Command::new("setpriv");
            as_account(&mut command, uid, gid).arg(program).current_dir(&dir.0);
            command
        };
        run_to_end(
            "initdb",
            as_postgres(&initdb).arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--locale=C",
                "--encoding=UTF8",
            ]),
            &dir.0.join("initdb.log"),
        );

        let port = free_local_port();
        let mut command = as_postgres(&postgres);
        command
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(&dir.0)
            .args([
                "-c",
                "fsync=off",
                "-c",
                "shared_buffers=16MB",
                "-c",
                "max_connections=10",
                // Dynamic shared memory in the data directory rather than /dev/shm: gone with the directory
                // even when a killed test process took the postmaster down with SIGKILL.
                "-c",
                "dynamic_shared_memory_type=mmap",
            ]);
        // SIGINT: fast shutdown; the postmaster ends its backends and releases its shared memory.
        let mut server = LoopbackServer::spawn("postgres", command, port, Signal::Int, dir);
        server.wait_ready(|| {
            Command::new(&pg_isready)
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .args(["-t", "1"])
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        });
        server
    }

    /// MariaDB from `mariadb-install-db`, listening on 127.0.0.1 only, without name resolution, with one
    /// account `probe@127.0.0.1`: clients from 127.0.0.1 get the greeting, clients from any other address
    /// (127.0.0.2) get error 1130.
    pub fn mariadb() -> LoopbackServer {
        let install_db = server_program("mariadb-install-db", "mariadb-server");
        let mariadbd = server_program("mariadbd", "mariadb-server");
        let dir = ScratchDir::new("mariadb");
        let data = dir.0.join("data");
        // At start-up mariadbd deletes every `#sql*` file in its tmpdir: a shared /tmp would let one
        // instance delete another's temporary tables (and did: mariadb-install-db failed at random).
        let tmp = dir.0.join("tmp");
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
            .current_dir(&dir.0);
        run_to_end("mariadb-install-db", &mut install, &dir.0.join("install.log"));
        let init = dir.0.join("init.sql");
        fs::write(&init, "CREATE USER 'probe'@'127.0.0.1';\n")
            .unwrap_or_else(|e| panic!("write {}: {e}", init.display()));

        let port = free_local_port();
        let error_log = dir.0.join("error.log");
        let mut command = in_scratch_dir(&mariadbd);
        command
            .arg(format!("--socket={}", dir.0.join("mariadbd.sock").display()))
            .arg(format!("--pid-file={}", dir.0.join("mariadbd.pid").display()))
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
        let dir = ScratchDir::new("redis");
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
            .arg(&dir.0);
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        let mut server = LoopbackServer::spawn("redis-server", command, port, Signal::Term, dir);
        // Redis accepts as soon as it listens; with no dataset to load, it then answers at once.
        server.wait_ready(|| TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok());
        server
    }

    fn spawn(
        name: &'static str,
        mut command: Command,
        port: u16,
        stop_signal: Signal,
        dir: ScratchDir,
    ) -> LoopbackServer {
        let log = dir.0.join(format!("{name}.out"));
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
        let error_log = self.dir.0.join("error.log");
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

/// A private directory under [`SCRATCH_ROOT`], removed on drop.
#[derive(Debug)]
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(name: &str) -> ScratchDir {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(SCRATCH_ROOT)
            .unwrap_or_else(|e| panic!("create {SCRATCH_ROOT}: {e}"));
        LEFTOVERS_REMOVED.call_once(remove_leftovers);
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(SCRATCH_ROOT).join(format!("{name}-{}-{n}", std::process::id()));
        // A directory left by an earlier, killed process with the same pid.
        let _ = fs::remove_dir_all(&path);
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        ScratchDir(path)
    }
}

/// Removes the directories of test processes that died without cleaning up (their pid is gone; their
/// servers went with them, by the death signal).
fn remove_leftovers() {
    for entry in fs::read_dir(SCRATCH_ROOT).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|name| name.rsplit('-').nth(1)?.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
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

/// Runs a setup program to completion within [`SETUP_TIMEOUT`], its output in `log`; fails the test if
/// it fails.
fn run_to_end(what: &str, command: &mut Command, log: &Path) {
    let mut child = output_to(command, log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let Some(status) = wait_child(&mut child, SETUP_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not finish within {SETUP_TIMEOUT:?}:\n{}", tail(log, 40));
    };
    assert!(status.success(), "{what} failed ({status}):\n{}", tail(log, 40));
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
