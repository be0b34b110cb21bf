//! OpenSSH's own client, `ssh`, as the second opinion on what an sshd lets a key do: one key and nothing
//! else (no config file, no agent), the server's host key pinned, never a prompt, every run bounded.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::process::{Collected, tied_to_test, wait_child};
use super::sshd::{Sshd, TEST_USER};

/// Bound on one `ssh` run: connect, authenticate, the request, the answer.
const SSH_TIMEOUT: Duration = Duration::from_secs(30);

/// An `ssh` command line being put together: options, then `user@host`, then the remote command.
#[derive(Debug, Clone)]
pub struct OpenSsh {
    options: Vec<OsString>,
    destination: String,
}

/// A finished `ssh` run.
#[derive(Debug)]
pub struct SshRun {
    /// The exit status (255: ssh's own failure, e.g. a refused forward with ExitOnForwardFailure).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl OpenSsh {
    /// `ssh -F none -i KEY -p PORT … sqltun-test@ADDR`: only `key` is offered, `known_hosts` pins the
    /// host key, and nothing may prompt.
    pub fn new(sshd: &Sshd, key: &Path, known_hosts: &Path) -> OpenSsh {
        let mut options: Vec<OsString> = vec!["-F".into(), "none".into(), "-i".into(), key.into()];
        for option in [
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "BatchMode=yes",
            "ConnectTimeout=10",
        ] {
            options.push("-o".into());
            options.push(option.into());
        }
        options.push("-o".into());
        options.push(format!("UserKnownHostsFile={}", known_hosts.display()).into());
        options.push("-p".into());
        options.push(sshd.port.to_string().into());
        OpenSsh {
            options,
            destination: format!("{TEST_USER}@{}", sshd.addr),
        }
    }

    /// More options (`-W host:port`, `-N`, `-L …`), before the destination.
    pub fn args(mut self, args: &[&str]) -> OpenSsh {
        self.options.extend(args.iter().map(OsString::from));
        self
    }

    fn command(&self, remote: &[&str]) -> std::process::Command {
        let mut command = tied_to_test("ssh");
        command
            .args(&self.options)
            .arg(&self.destination)
            .args(remote)
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        command
    }

    /// Runs `ssh … DEST REMOTE…` with `input` on its stdin (then closed) to completion, within
    /// [`SSH_TIMEOUT`]; fails the test if it does not finish in time or dies from a signal.
    pub fn run(&self, remote: &[&str], input: &[u8]) -> SshRun {
        let mut command = self.command(remote);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run ssh: {e}"));
        let stdout = Collected::start(child.stdout.take().expect("ssh stdout"));
        let stderr = Collected::start(child.stderr.take().expect("ssh stderr"));
        if let Some(mut stdin) = child.stdin.take() {
            // ssh may have exited already (a refused login): a broken pipe is its answer, not ours.
            let _ = stdin.write_all(input);
        }
        let Some(status) = wait_child(&mut child, SSH_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} did not finish within {SSH_TIMEOUT:?}\nstdout: {}\nstderr: {}",
                stdout.text(),
                stderr.text()
            );
        };
        for pipe in [&stdout, &stderr] {
            pipe.wait_for(Duration::from_secs(5), |_, eof| eof.then_some(()));
        }
        SshRun {
            code: status
                .code()
                .unwrap_or_else(|| panic!("{command:?} was killed by a signal: {status}")),
            stdout: stdout.text(),
            stderr: stderr.text(),
        }
    }

    /// Starts `ssh … DEST` (e.g. with `-N -L …`) in the background, stdin closed; it is killed when the
    /// returned handle drops.
    pub fn spawn(&self) -> SshProcess {
        let child = self
            .command(&[])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run ssh: {e}"));
        let mut process = SshProcess { child, stderr: None };
        let pipe = process.child.stderr.take().expect("ssh stderr");
        process.stderr = Some(Collected::start(pipe));
        process
    }
}

/// A background `ssh`, killed (by its own pid) when dropped.
#[derive(Debug)]
pub struct SshProcess {
    child: Child,
    stderr: Option<std::sync::Arc<Collected>>,
}

impl SshProcess {
    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.as_ref().map(|s| s.text()).unwrap_or_default()
    }
}

impl Drop for SshProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
