//! A real OpenSSH agent (`ssh-agent -D -a SOCKET`) in the root namespace, holding keys added with ssh-add.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::lab::Lab;
use super::process::{Signal, run, tail, tied_to_test, wait_until};
use super::sshd::KeyPair;

const READY_TIMEOUT: Duration = Duration::from_secs(10);

impl Lab {
    /// Starts ssh-agent on a socket in the lab directory, adds `keys` (unencrypted) and returns the socket
    /// path for `SSH_AUTH_SOCK`. The lab stops the agent on drop.
    pub fn start_agent(&self, keys: &[&KeyPair]) -> PathBuf {
        let socket = self.fresh_path("agent", ".sock");
        let log = self.fresh_path("agent", ".log");
        self.add_log("ssh-agent", &log);
        let stderr = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let pid = self.spawn(
            "ssh-agent",
            tied_to_test("ssh-agent")
                .arg("-D")
                .arg("-a")
                .arg(&socket)
                .stdout(Stdio::null())
                .stderr(stderr),
            Signal::Term,
        );
        // `ssh-add -l` exits 1 for an empty agent and 2 when it cannot reach one.
        wait_until("ssh-agent to accept connections", READY_TIMEOUT, || {
            if let Some(status) = self.exit_status(pid) {
                panic!("ssh-agent exited ({status}):\n{}", tail(&log, 20));
            }
            let status = ssh_add(&socket)
                .arg("-l")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .ok()?;
            matches!(status.code(), Some(0 | 1)).then_some(())
        });
        for key in keys {
            run(ssh_add(&socket).arg(&key.private));
        }
        socket
    }
}

/// What `ssh-add -l` lists for the agent at `socket`.
pub fn agent_listing(socket: &Path) -> String {
    let output = run(ssh_add(socket).arg("-l"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn ssh_add(socket: &Path) -> Command {
    let mut command = Command::new("ssh-add");
    command
        .env("SSH_AUTH_SOCK", socket)
        .env_remove("DISPLAY")
        .env_remove("SSH_ASKPASS")
        .stdin(Stdio::null());
    command
}
