//! Runs the sqltun binary on a pseudo-terminal, as a person at a terminal does: stdin, stdout and
//! stderr are the pty's slave end, so sqltun sees terminals everywhere. Everything it writes (both
//! streams, merged as a terminal merges them) is collected from the master end.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use super::process::{tied_to_test, wait_child};
use super::sqltun::SQLTUN;

/// What a run on a terminal came to.
#[derive(Debug)]
pub struct PtyRun {
    pub code: i32,
    /// Every byte sqltun wrote to the terminal.
    pub output: Vec<u8>,
}

impl PtyRun {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }
}

/// Runs `sqltun ARGS…` on a fresh pty with `HOME=home`, PATH and `env` as its only environment, and
/// waits (bounded by `timeout`) for it to exit and for the terminal to drain.
pub fn run_on_pty<S: AsRef<OsStr>>(home: &Path, args: &[S], env: &[(&str, &str)], timeout: Duration) -> PtyRun {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = |what: &str| {
        Stdio::from(
            pty.slave
                .try_clone()
                .unwrap_or_else(|e| panic!("dup the pty for {what}: {e}")),
        )
    };
    let mut child = tied_to_test(SQLTUN)
        .args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", home)
        .env("TERM", "xterm")
        .envs(env.iter().copied())
        .stdin(slave("stdin"))
        .stdout(slave("stdout"))
        .stderr(slave("stderr"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {SQLTUN} on a pty: {e}"));
    // Only the child holds the slave end now: the master reads EIO once the child is gone.
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let (sender, output) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // Ends with EIO when the last slave descriptor closes; what was read is kept.
        let _ = master.read_to_end(&mut bytes);
        let _ = sender.send(bytes);
    });
    let Some(status) = wait_child(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "sqltun {:?} did not exit within {timeout:?} on a pty",
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>()
        );
    };
    let output = output
        .recv_timeout(Duration::from_secs(5))
        .expect("the pty did not drain after sqltun exited");
    PtyRun {
        code: status.code().expect("sqltun was killed by a signal"),
        output,
    }
}
