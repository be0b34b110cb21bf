//! Small process helpers shared by the fixtures: bounded polling, running setup commands, collecting a
//! child's output in the background, signals by pid, and stopping children.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How often bounded polls look again. Polling is the synchronisation; this only sets its granularity.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The message every root-only fixture fails with when the tests are not run as root.
pub const NEED_ROOT: &str = "run as root (network namespaces): scripts/test";

/// Fails the test unless the process runs with effective uid 0.
pub fn require_root() {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .expect("/proc/self/status has a Uid: line");
    assert!(euid == "0", "{NEED_ROOT} (effective uid is {euid})");
}

/// Polls `probe` until it returns `Some`, failing the test with `what` once `timeout` has passed.
pub fn wait_until<T>(what: &str, timeout: Duration, probe: impl FnMut() -> Option<T>) -> T {
    poll_until(timeout, probe).unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Polls `probe` until it returns `Some`; `None` once `timeout` has passed (for callers that report
/// the failure themselves).
pub fn poll_until<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// How long a setup command may run (initdb and mariadb-install-db normally take a few seconds).
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a setup command to completion within [`SETUP_TIMEOUT`] and fails the test, with its output, if it
/// does not succeed in time.
pub fn run(command: &mut Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stdout = Collected::start(child.stdout.take().expect("piped stdout"));
    let stderr = Collected::start(child.stderr.take().expect("piped stderr"));
    let Some(status) = wait_child(&mut child, SETUP_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{command:?} did not finish within {SETUP_TIMEOUT:?}:\nstdout: {}\nstderr: {}",
            stdout.text(),
            stderr.text()
        );
    };
    // The pipes close with the process unless it left a child holding them; then take what came.
    for pipe in [&stdout, &stderr] {
        pipe.wait_for(Duration::from_secs(5), |_, eof| eof.then_some(()));
    }
    let output = Output {
        status,
        stdout: stdout.bytes(),
        stderr: stderr.bytes(),
    };
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs a setup program to completion within [`SETUP_TIMEOUT`], its stdout and stderr in the new file
/// `log`; fails the test, with the log's end, if it fails or does not finish in time.
pub fn run_logged(what: &str, command: &mut Command, log: &Path) {
    let output = fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let errors = output
        .try_clone()
        .unwrap_or_else(|e| panic!("clone {}: {e}", log.display()));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let Some(status) = wait_child(&mut child, SETUP_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not finish within {SETUP_TIMEOUT:?}:\n{}", tail(log, 40));
    };
    assert!(status.success(), "{what} failed ({status}):\n{}", tail(log, 40));
}

/// Runs a command to completion whatever its status (for cleanup and probes).
pub fn run_quietly(command: &mut Command) -> Option<Output> {
    command.stdin(Stdio::null()).output().ok()
}

/// The arguments that make `setpriv` kill the program if the test thread that started it dies without
/// running the fixtures' `Drop` (a test run killed with SIGKILL). setpriv execs in place, keeping the pid.
pub const DIE_WITH_TEST: [&str; 4] = ["setpriv", "--pdeathsig", "KILL", "--"];

/// `setpriv` (the caller's `command`) to the account with `uid` and `gid`, still tied to the test thread
/// (changing uid clears an earlier parent-death signal, so it is set again here); setpriv execs in place,
/// so the child's pid is the program's. The caller adds the program.
pub fn as_account(command: &mut Command, uid: u32, gid: u32) -> &mut Command {
    command
        .args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".to_string(),
        ])
        .args(DIE_WITH_TEST[1..].iter())
}

/// The uid and gid of an account, from /etc/passwd.
pub fn account_ids(name: &str) -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&name) && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .unwrap_or_else(|| panic!("no `{name}` account: run scripts/install-test-deps"))
}

/// `PROGRAM`, killed if the test thread that started it dies (see `DIE_WITH_TEST`).
pub fn tied_to_test(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(DIE_WITH_TEST[0]);
    command.args(&DIE_WITH_TEST[1..]).arg(program);
    command
}

/// `ip netns exec NS PROGRAM`, tied to the test thread. iproute2 and setpriv exec in place, so the
/// child's pid is the program's.
pub fn in_namespace(namespace: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", namespace])
        .args(DIE_WITH_TEST)
        .arg(program);
    command
}

/// A signal sent with `/bin/kill` (the tests forbid `unsafe`, so no `libc::kill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Int,
    Term,
    Quit,
    Kill,
}

impl Signal {
    /// The name without `SIG`, as `kill -s` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "INT",
            Signal::Term => "TERM",
            Signal::Quit => "QUIT",
            Signal::Kill => "KILL",
        }
    }
}

/// Sends `signal` to `pid`; returns whether `kill` reported success (false once the process is gone).
pub fn send_signal(pid: u32, signal: Signal) -> bool {
    run_quietly(
        Command::new("/bin/kill")
            .args(["-s", signal.name(), &pid.to_string()])
            .stderr(Stdio::null()),
    )
    .is_some_and(|output| output.status.success())
}

/// Waits up to `timeout` for a child to exit; `None` if it is still running.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Stops children: `signal` to each, up to `grace` for all of them to exit, then SIGKILL for the rest.
pub fn stop_children<'a>(children: impl IntoIterator<Item = (&'a mut Child, Signal)>, grace: Duration) {
    let mut signalled = Vec::new();
    for (child, signal) in children {
        if matches!(child.try_wait(), Ok(None)) {
            send_signal(child.id(), signal);
        }
        signalled.push(child);
    }
    let deadline = Instant::now() + grace;
    for child in signalled {
        let left = deadline.saturating_duration_since(Instant::now());
        if wait_child(child, left).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last `lines` lines of a log file, for failure messages.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// The last lines of each named log file, one section each, for failure messages.
pub fn log_tails(logs: &[(String, PathBuf)]) -> String {
    logs.iter()
        .map(|(name, path)| format!("--- {name} ({}) ---\n{}\n", path.display(), tail(path, 40)))
        .collect()
}

/// Prints a line for whoever reads the test output; used only where a panic would be wrong (in `Drop`).
#[allow(
    clippy::print_stderr,
    reason = "test diagnostics from Drop, where panicking would abort"
)]
pub fn warn(message: &str) {
    eprintln!("test support: {message}");
}

/// Everything a child wrote to one pipe so far, filled by a background thread, with a wake-up on change.
#[derive(Debug, Default)]
pub struct Collected {
    state: Mutex<CollectedState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct CollectedState {
    bytes: Vec<u8>,
    eof: bool,
}

impl Collected {
    /// Starts a thread that copies `pipe` into a new `Collected` until end of file (then the thread ends).
    pub fn start(mut pipe: impl Read + Send + 'static) -> Arc<Collected> {
        let collected = Arc::new(Collected::default());
        let sink = Arc::clone(&collected);
        thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            loop {
                let read = pipe.read(&mut buffer);
                let mut state = sink.lock();
                match read {
                    Ok(0) | Err(_) => {
                        state.eof = true;
                        sink.changed.notify_all();
                        return;
                    }
                    Ok(n) => state.bytes.extend_from_slice(&buffer[..n]),
                }
                sink.changed.notify_all();
            }
        });
        collected
    }

    fn lock(&self) -> MutexGuard<'_, CollectedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What was collected so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.lock().bytes.clone()
    }

    /// What was collected so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }

    /// Waits up to `timeout` for `probe(bytes, eof)` to return `Some`; `None` on timeout.
    pub fn wait_for<T>(&self, timeout: Duration, mut probe: impl FnMut(&[u8], bool) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(value) = probe(&state.bytes, state.eof) {
                return Some(value);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Reads a child's stdout up to the first newline, failing the test if it does not come within `timeout`
/// (used for fixtures that print a readiness line).
pub fn first_line(what: &str, collected: &Collected, timeout: Duration, context: impl Fn() -> String) -> String {
    collected
        .wait_for(timeout, |bytes, eof| {
            if let Some(end) = bytes.iter().position(|&b| b == b'\n') {
                Some(Ok(String::from_utf8_lossy(&bytes[..end]).into_owned()))
            } else if eof {
                Some(Err(()))
            } else {
                None
            }
        })
        .unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for {what} to be ready\n{}",
                context()
            )
        })
        .unwrap_or_else(|()| panic!("{what} exited before it was ready\n{}", context()))
}

/// The pids of the processes whose command line contains `marker` (from /proc), e.g. a path unique
/// to one lab in the arguments of a program sqltun started.
pub fn pids_with_marker(marker: &str) -> Vec<u32> {
    let own = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            // Gone between read_dir and here, or a kernel thread: an empty command line either way.
            let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline);
            (pid != own && text.contains(marker)).then_some(pid)
        })
        .collect()
}

/// Kills, on drop, every process whose command line contains its marker: processes sqltun started
/// (a ProxyCommand) are not the lab's, so a failing test must not leave them behind.
#[derive(Debug)]
pub struct MarkedProcesses {
    pub marker: String,
}

impl MarkedProcesses {
    pub fn pids(&self) -> Vec<u32> {
        pids_with_marker(&self.marker)
    }
}

impl Drop for MarkedProcesses {
    fn drop(&mut self) {
        for pid in self.pids() {
            send_signal(pid, Signal::Kill);
        }
    }
}

/// Whether `pid` is gone: no /proc entry, or a zombie nobody has reaped yet (a background tunnel's
/// parent has exited, and not every init reaps promptly).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}
