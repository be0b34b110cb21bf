//! Runs the sqltun binary the way scripts and CI do: no terminal (its own session, stdin null), a private
//! HOME, only the environment a test gives it, stdout and stderr collected in the background.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lab::{Lab, write_file};
use super::process::{Collected, DIE_WITH_TEST, Signal, log_tails, send_signal, tail, wait_child};
use super::sshd::{KeyPair, Sshd, TEST_USER};
use super::targets::echo_roundtrip;
use super::temp_dir::TempDir;

pub const SQLTUN: &str = env!("CARGO_BIN_EXE_sqltun");

/// Bound on "the port line appears": SSH connect, key exchange and authentication (decrypting a key in a
/// debug build included).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on an expected failure: sqltun must give up on its own well before this.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// The contract says "exits 0 within about a second" after SIGINT/SIGTERM; this is that plus slack.
pub const SIGNAL_EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// After sqltun exits, how long its stdout and stderr may take to reach end of file.
const PIPE_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A sqltun command line being put together.
#[derive(Debug, Clone)]
pub struct SqltunCommand {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    home: PathBuf,
    logs: Vec<(String, PathBuf)>,
    /// The `-F` value given right after the subcommand, if any (see `subcommand`).
    ssh_config: Option<OsString>,
    /// The working directory (where `sqltun.toml` is looked for); the test's own when unset.
    cwd: Option<PathBuf>,
}

impl SqltunCommand {
    /// `sqltun ARGS…` with `HOME=home` and an otherwise empty environment (plus PATH), exactly as given.
    pub fn new(home: impl Into<PathBuf>) -> SqltunCommand {
        SqltunCommand {
            args: Vec::new(),
            env: Vec::new(),
            home: home.into(),
            logs: Vec::new(),
            ssh_config: None,
            cwd: None,
        }
    }

    /// Runs sqltun in `dir` (where it looks for `sqltun.toml` first).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> SqltunCommand {
        self.cwd = Some(dir.into());
        self
    }

    /// `sqltun SUBCOMMAND -F none …`: the machine's /etc/ssh/ssh_config (and any ~/.ssh/config) never
    /// influences a result unless a test names its own file with `ssh_config`.
    pub fn subcommand(home: impl Into<PathBuf>, subcommand: &str) -> SqltunCommand {
        let mut command = SqltunCommand::new(home).arg(subcommand);
        command.ssh_config = Some("none".into());
        command
    }

    /// `-F FILE` instead of the default `-F none` (for a command made with `subcommand`).
    pub fn ssh_config(mut self, path: impl AsRef<OsStr>) -> SqltunCommand {
        self.ssh_config = Some(path.as_ref().to_os_string());
        self
    }

    /// The arguments as sqltun gets them: `-F VALUE`, if any, right after the subcommand.
    fn argv(&self) -> Vec<OsString> {
        let mut argv = self.args.clone();
        if let Some(value) = &self.ssh_config {
            let at = argv.len().min(1);
            argv.splice(at..at, ["-F".into(), value.clone()]);
        }
        argv
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> SqltunCommand {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> SqltunCommand {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable (the only way secrets reach sqltun).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> SqltunCommand {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// `--ssh sqltun-test@ADDR:PORT` for this sshd.
    pub fn ssh(self, sshd: &Sshd) -> SqltunCommand {
        self.arg("--ssh").arg(sshd.destination())
    }

    /// `--db HOST:PORT`.
    pub fn db(self, target: SocketAddrV4) -> SqltunCommand {
        self.arg("--db").arg(target.to_string())
    }

    /// `-i KEYFILE`.
    pub fn identity(self, key: &KeyPair) -> SqltunCommand {
        self.arg("-i").arg(&key.private)
    }

    /// `--known-hosts FILE`.
    pub fn known_hosts(self, path: &Path) -> SqltunCommand {
        self.arg("--known-hosts").arg(path)
    }

    /// Log files whose tails go into every failure message.
    pub fn logs(mut self, logs: Vec<(String, PathBuf)>) -> SqltunCommand {
        self.logs = logs;
        self
    }

    /// Starts sqltun. It runs in a new session (`setsid`, which execs in place), so it has no controlling
    /// terminal even when the tests are run from one: a prompt would be a bug, never a hang. It is also
    /// tied to the test thread (`DIE_WITH_TEST`), so a killed test run leaves no tunnel behind.
    pub fn spawn(self) -> Sqltun {
        let argv = self.argv();
        let mut child = self
            .command(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SQLTUN}: {e}"));
        // The reader threads end at end of file; `wait_exit` waits for that through `Collected`.
        let stdout = Collected::start(child.stdout.take().expect("sqltun stdout"));
        let stderr = Collected::start(child.stderr.take().expect("sqltun stderr"));
        Sqltun {
            child,
            started: Instant::now(),
            stdout,
            stderr,
            status: None,
            command: argv,
            logs: self.logs,
        }
    }

    /// Starts sqltun as `spawn` does, but hands back the bare process: the test reads, or closes, its
    /// stdout and stderr pipes itself.
    pub fn spawn_bare(self) -> Child {
        let argv = self.argv();
        self.command(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SQLTUN}: {e}"))
    }

    /// Starts sqltun, waits for its port line and checks one echo round trip with `payload` through the
    /// tunnel (its `--db` must be the echo target); returns the running tunnel and its local port.
    pub fn spawn_and_echo(self, payload: &[u8]) -> (Sqltun, u16) {
        let mut tunnel = self.spawn();
        let port = tunnel.wait_ready();
        echo_roundtrip(local(port), payload);
        (tunnel, port)
    }

    /// Runs sqltun to completion (bounded by `timeout`) with its stderr going to the file `stderr`
    /// rather than a pipe, and returns its exit code, stdout and pid. For `--background`: the tunnel left
    /// running keeps the stderr it inherited, so a pipe would never reach end of file, while stdout must
    /// end when the foreground process exits (that is what makes `PORT=$(sqltun connect --background …)`
    /// return). Fails the test, with the stderr file, if sqltun does not exit in time, dies from a
    /// signal, or something still holds its stdout.
    pub fn run_with_stderr_file(self, stderr: &Path, timeout: Duration) -> Completed {
        let argv = self.argv();
        let file = fs::File::create(stderr).unwrap_or_else(|e| panic!("create {}: {e}", stderr.display()));
        let mut child = self
            .command(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SQLTUN}: {e}"));
        let stdout = Collected::start(child.stdout.take().expect("sqltun stdout"));
        let context = |message: &str| {
            failure_report(
                message,
                &argv,
                &stdout.text(),
                &format!("sqltun stderr ({})", stderr.display()),
                &tail(stderr, 60),
                &self.logs,
            )
        };
        let Some(status) = wait_child(&mut child, timeout) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{}", context(&format!("sqltun did not exit within {timeout:?}")));
        };
        if stdout
            .wait_for(PIPE_CLOSE_TIMEOUT, |_, eof| eof.then_some(()))
            .is_none()
        {
            panic!(
                "{}",
                context(&format!("sqltun exited ({status}) but its stdout is still open"))
            );
        }
        let code = status
            .code()
            .unwrap_or_else(|| panic!("{}", context(&format!("sqltun was killed by a signal: {status}"))));
        Completed {
            code,
            stdout: stdout.text(),
            pid: child.id(),
        }
    }

    /// `setsid setpriv --pdeathsig KILL -- sqltun ARGV…` with this command's HOME and environment (see `spawn`).
    fn command(&self, argv: &[OsString]) -> Command {
        let mut command = Command::new("setsid");
        command.args(DIE_WITH_TEST);
        self.with_environment(command, argv)
    }

    /// `setpriv --pdeathsig KILL -- sqltun ARGV…` with this command's HOME and environment, without
    /// `setsid`: for a test that runs it on a terminal of its own (the pty driver makes the session).
    pub fn terminal_command(&self) -> Command {
        let mut command = Command::new(DIE_WITH_TEST[0]);
        command.args(&DIE_WITH_TEST[1..]);
        self.with_environment(command, &self.argv())
    }

    fn with_environment(&self, mut command: Command, argv: &[OsString]) -> Command {
        command
            .arg(SQLTUN)
            .args(argv)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            )
            .env("HOME", &self.home);
        // Let whoever runs the tests turn on sqltun's logging or backtraces.
        for passthrough in ["SQLTUN_LOG", "RUST_BACKTRACE"] {
            if let Some(value) = std::env::var_os(passthrough) {
                command.env(passthrough, value);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        command
    }
}

impl Lab {
    /// `sqltun connect -F none` with this lab's HOME; its failure messages include the logs of the
    /// servers started so far.
    pub fn connect(&self) -> SqltunCommand {
        self.sqltun("connect")
    }

    /// `sqltun SUBCOMMAND -F none` with this lab's HOME, as `connect`.
    pub fn sqltun(&self, subcommand: &str) -> SqltunCommand {
        SqltunCommand::subcommand(self.home(), subcommand).logs(self.logs())
    }

    /// An ssh_config file (a fresh path in the lab directory, mode 0644) with `text`, for `-F`.
    pub fn ssh_config_file(&self, text: &str) -> PathBuf {
        let path = self.fresh_path("ssh_config", "");
        write_file(&path, text, 0o644);
        path
    }

    /// A tunnels file (a fresh path in the lab directory, mode 0600) with `text`, for `--tunnels-file`.
    pub fn tunnels_file(&self, text: &str) -> PathBuf {
        let path = self.fresh_path("tunnels", ".toml");
        write_file(&path, text, 0o600);
        path
    }
}

/// `words` as a TOML array of basic strings (`["op", "read", "op://…"]`), for a tunnels file's command
/// settings.
pub fn toml_words(words: &[&str]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| {
            let escaped: String = w
                .chars()
                .map(|c| match c {
                    '"' => "\\\"".to_string(),
                    '\\' => "\\\\".to_string(),
                    '\n' => "\\n".to_string(),
                    c => c.to_string(),
                })
                .collect();
            format!("\"{escaped}\"")
        })
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// A sqltun run that went to completion (see `SqltunCommand::run_with_stderr_file`).
#[derive(Debug)]
pub struct Completed {
    pub code: i32,
    /// All of stdout, to end of file.
    pub stdout: String,
    /// The pid the process had.
    pub pid: u32,
}

/// A running (or finished) sqltun process. Dropping it kills the process if it is still running.
#[derive(Debug)]
pub struct Sqltun {
    child: Child,
    started: Instant,
    stdout: Arc<Collected>,
    stderr: Arc<Collected>,
    status: Option<ExitStatus>,
    command: Vec<OsString>,
    logs: Vec<(String, PathBuf)>,
}

impl Sqltun {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When the process was started (for the contract's time bounds).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits for the first stdout line (the ready line) and returns it; fails the test, with sqltun's
    /// stderr, if sqltun exits first or nothing comes within `READY_TIMEOUT`.
    pub fn wait_ready_line(&mut self) -> String {
        self.wait_ready_lines(1).remove(0)
    }

    /// Waits for the first `count` stdout lines (the ready output of formats that print several lines,
    /// or of several targets) and returns them; fails the test, with sqltun's stderr, if sqltun exits
    /// first or they do not all come within `READY_TIMEOUT`.
    pub fn wait_ready_lines(&mut self, count: usize) -> Vec<String> {
        let lines = self.stdout.wait_for(READY_TIMEOUT, |bytes, eof| {
            let text = String::from_utf8_lossy(bytes);
            let complete: Vec<String> = text
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .map(|l| l.trim_end_matches('\n').to_string())
                .collect();
            if complete.len() >= count {
                Some(Some(complete[..count].to_vec()))
            } else if eof {
                Some(None)
            } else {
                None
            }
        });
        match lines {
            Some(Some(lines)) => lines,
            Some(None) => {
                let status = wait_child(&mut self.child, Duration::from_secs(5));
                self.status = status;
                self.fail(&format!(
                    "sqltun exited ({status:?}) before printing {count} ready line(s)"
                ))
            }
            None => self.fail(&format!(
                "fewer than {count} ready line(s) on stdout within {READY_TIMEOUT:?}"
            )),
        }
    }

    /// Waits for the first `count` stdout lines, each a port (the default `--output port`, one line per
    /// `--db`), and returns the ports; fails the test, with sqltun's stderr, if one is not a port number.
    pub fn wait_ready_ports(&mut self, count: usize) -> Vec<u16> {
        let lines = self.wait_ready_lines(count);
        lines
            .iter()
            .map(|line| {
                line.parse()
                    .unwrap_or_else(|_| self.fail(&format!("the ready line {line:?} is not a port number")))
            })
            .collect()
    }

    /// Waits for the ready line and returns the local port it carries (the default `--output port`).
    pub fn wait_ready(&mut self) -> u16 {
        self.wait_ready_ports(1)[0]
    }

    /// Everything sqltun wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Waits up to `timeout` for stderr to contain any of `needles` (compared lowercase); returns whether it did.
    pub fn stderr_mentions(&self, needles: &[&str], timeout: Duration) -> bool {
        self.stderr
            .wait_for(timeout, |bytes, eof| {
                let text = String::from_utf8_lossy(bytes).to_lowercase();
                if needles.iter().any(|needle| text.contains(&needle.to_lowercase())) {
                    Some(true)
                } else {
                    eof.then_some(false)
                }
            })
            .unwrap_or(false)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("poll sqltun");
        }
        self.status.is_none()
    }

    /// Sends a signal (with /bin/kill; the pid cannot be reused before we reap the child).
    pub fn signal(&mut self, signal: Signal) {
        assert!(
            self.is_running(),
            "sqltun already exited ({:?}) before SIG{}",
            self.status,
            signal.name()
        );
        assert!(
            send_signal(self.pid(), signal),
            "kill -s {} {} failed",
            signal.name(),
            self.pid()
        );
    }

    /// Waits up to `timeout` for sqltun to exit and returns its exit code; fails the test if it does not
    /// exit in time or dies from a signal.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        if self.status.is_none() {
            self.status = wait_child(&mut self.child, timeout);
        }
        match self.status {
            Some(status) => {
                // The pipes close when the process exits, unless something it started still holds them.
                for (name, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
                    if pipe.wait_for(PIPE_CLOSE_TIMEOUT, |_, eof| eof.then_some(())).is_none() {
                        self.fail(&format!(
                            "sqltun exited ({status}) but its {name} is still open: a leftover child?"
                        ));
                    }
                }
                status
                    .code()
                    .unwrap_or_else(|| self.fail(&format!("sqltun was killed by a signal: {status}")))
            }
            None => {
                let _ = self.child.kill();
                self.status = self.child.wait().ok();
                self.fail(&format!("sqltun did not exit within {timeout:?}"))
            }
        }
    }

    /// Waits up to `timeout` for sqltun to exit and fails the test unless its exit code is `expected`.
    pub fn assert_exit(&mut self, expected: i32, timeout: Duration) {
        let code = self.wait_exit(timeout);
        if code != expected {
            self.fail(&format!("exit code {code}, expected {expected}"));
        }
    }

    /// Sends `signal` and fails the test unless sqltun exits 0 within `SIGNAL_EXIT_TIMEOUT` (the contract
    /// for SIGINT and SIGTERM).
    pub fn stop(&mut self, signal: Signal) {
        self.signal(signal);
        let code = self.wait_exit(SIGNAL_EXIT_TIMEOUT);
        if code != 0 {
            self.fail(&format!("exit code {code} after SIG{}, expected 0", signal.name()));
        }
    }

    /// For expected failures: waits for exit (bounded by `timeout`) and returns (exit code, stderr).
    pub fn run_to_exit(mut self, timeout: Duration) -> (i32, String) {
        let code = self.wait_exit(timeout);
        (code, self.stderr())
    }

    /// All of stdout; call after `wait_exit`, when it is complete.
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// Fails the test with `message`, the command line, sqltun's stdout and stderr, and the lab's logs.
    pub fn fail(&self, message: &str) -> ! {
        panic!(
            "{}",
            failure_report(
                message,
                &self.command,
                &self.stdout.text(),
                "sqltun stderr",
                &self.stderr.text(),
                &self.logs
            )
        )
    }
}

/// A failure message: `message`, the command line, sqltun's stdout, its stderr (under `stderr_title`),
/// and the tails of `logs`.
fn failure_report(
    message: &str,
    argv: &[OsString],
    stdout: &str,
    stderr_title: &str,
    stderr: &str,
    logs: &[(String, PathBuf)],
) -> String {
    format!(
        "{message}\ncommand: {SQLTUN} {}\n--- sqltun stdout ---\n{stdout}\n--- {stderr_title} ---\n{stderr}\n{}",
        argv.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "),
        log_tails(logs)
    )
}

impl Drop for Sqltun {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A private HOME for runs that need no lab (usage errors); removed on drop.
#[derive(Debug)]
pub struct TempHome {
    dir: TempDir,
}

impl TempHome {
    pub fn new() -> TempHome {
        TempHome {
            dir: TempDir::new("home"),
        }
    }

    /// `sqltun connect -F none` with this HOME.
    pub fn connect(&self) -> SqltunCommand {
        self.sqltun("connect")
    }

    /// `sqltun SUBCOMMAND -F none` with this HOME.
    pub fn sqltun(&self, subcommand: &str) -> SqltunCommand {
        SqltunCommand::subcommand(self.path(), subcommand)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The tunnel's local end for a port sqltun printed.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// A loopback port that was free a moment ago (for `--local-port`, where sqltun cannot choose).
pub fn free_local_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn accepts_connections(port: u16) -> bool {
    TcpStream::connect_timeout(&local(port), Duration::from_secs(5)).is_ok()
}

/// The error line of a failed run: the last stderr line starting `sqltun: `; fails the test if none.
pub fn error_line(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|line| line.starts_with("sqltun: "))
        .unwrap_or_else(|| panic!("no `sqltun: ` error line on stderr:\n{stderr}"))
        .to_string()
}

/// Asserts that sqltun exited with `expected` and that its error line (see `error_line`) contains every
/// one of `needles`; returns the line.
pub fn assert_error(code: i32, stderr: &str, expected: i32, needles: &[&str]) -> String {
    assert_eq!(code, expected, "exit code; stderr:\n{stderr}");
    let line = error_line(stderr);
    for needle in needles {
        assert!(
            line.contains(needle),
            "the error line does not mention {needle:?}: {line}"
        );
    }
    line
}

/// Asserts that sqltun exited with `expected` and that its error line starts the way the contract says:
/// `sqltun: hop 2/3 sqltun-test@ADDR:22 ("alias"): …` (position, address, and the alias if it had one);
/// returns the line.
pub fn assert_hop_failed(
    code: i32,
    stderr: &str,
    expected: i32,
    position: &str,
    destination: &str,
    alias: Option<&str>,
) -> String {
    assert_eq!(code, expected, "exit code; stderr:\n{stderr}");
    let line = error_line(stderr);
    let alias = alias.map(|a| format!(" (\"{a}\")")).unwrap_or_default();
    let prefix = format!("sqltun: {position} {destination}{alias}: ");
    assert!(
        line.starts_with(&prefix),
        "the error line does not start with `{prefix}`: {line}"
    );
    line
}

/// A loopback listener standing in for a bastion that must never be contacted (configuration errors
/// are caught before any network traffic): any connection sqltun makes shows up in its accept queue.
#[derive(Debug)]
pub struct Tripwire {
    listener: TcpListener,
}

impl Tripwire {
    pub fn new() -> Tripwire {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        Tripwire { listener }
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().expect("local address").port()
    }

    /// `sqltun-test@127.0.0.1:PORT`: a `--ssh` value that dials the tripwire.
    pub fn destination(&self) -> String {
        format!("{TEST_USER}@127.0.0.1:{}", self.port())
    }

    /// Fails the test if anything connected.
    pub fn assert_untouched(&self) {
        match self.listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((_, peer)) => panic!("sqltun connected to 127.0.0.1:{} from {peer}", self.port()),
            Err(e) => panic!("accept on the tripwire listener: {e}"),
        }
    }
}
