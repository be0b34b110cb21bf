//! Real Redis servers in the lab's target namespace (no persistence), one open and optionally one that
//! requires a password, checked with the real `redis-cli`.

use std::fs::File;
use std::net::SocketAddrV4;
use std::process::Stdio;
use std::time::Duration;

use super::lab::{Lab, make_dir};
use super::process::{Signal, in_namespace, tail, wait_until};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running redis-server; the lab owns the process.
#[derive(Debug)]
pub struct Redis {
    /// Where it listens, as seen from the last bastion (the `--db` value).
    pub addr: SocketAddrV4,
    /// The `requirepass` it was started with, if any.
    pub password: Option<String>,
}

impl Lab {
    /// redis-server on `port` of the target address, with `requirepass` when `password` is given;
    /// waits until `redis-cli ping` (authenticated if need be) answers PONG inside the target namespace.
    pub fn start_redis(&self, port: u16, password: Option<&str>) -> Redis {
        let addr = SocketAddrV4::new(self.target_addr(), port);
        let dir = self.fresh_path("redis", "");
        make_dir(&dir, 0o700);
        let log = dir.join("redis.log");
        self.add_log(&format!("redis-server :{port}"), &log);
        let output = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let errors = output
            .try_clone()
            .unwrap_or_else(|e| panic!("dup {}: {e}", log.display()));
        let mut command = in_namespace(&self.target_namespace(), "redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", &addr.ip().to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--daemonize", "no", "--logfile", ""])
            .arg("--dir")
            .arg(&dir);
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        let pid = self.spawn(
            &format!("redis-server on {addr}"),
            command.current_dir(&dir).stdout(output).stderr(errors),
            Signal::Term,
        );
        wait_until(&format!("redis-server to answer PING on {addr}"), READY_TIMEOUT, || {
            if let Some(status) = self.exit_status(pid) {
                panic!(
                    "redis-server exited ({status}) before it was ready:\n{}",
                    tail(&log, 40)
                );
            }
            let mut cli = in_namespace(&self.target_namespace(), "redis-cli");
            cli.args(["-h", &addr.ip().to_string(), "-p", &port.to_string(), "ping"]);
            if let Some(password) = password {
                // Not on argv: redis-cli reads the password from REDISCLI_AUTH.
                cli.env("REDISCLI_AUTH", password);
            }
            let output = cli.stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
            (String::from_utf8_lossy(&output.stdout).trim() == "PONG").then_some(())
        });
        Redis {
            addr,
            password: password.map(str::to_string),
        }
    }
}
