//! Runs the sqltun binary on a pseudo-terminal, as a person at a terminal runs it: the pty is its
//! controlling terminal (prompts on /dev/tty, Ctrl-C as a keystroke) and its stderr. Everything it
//! draws is fed to a terminal emulator (`vt100`), so tests assert on the screen a person would see,
//! after spinners have been drawn and wiped.

use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

use expectrl::process::Termios;
use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;

use super::sqltun::SqltunCommand;

/// The terminal's size: wide enough that no line of the tests' output wraps.
const ROWS: u16 = 40;
const COLS: u16 = 200;
/// How often the pty is read while waiting for text to appear or for sqltun to exit.
const READ_INTERVAL: Duration = Duration::from_millis(20);
/// Bound on reading the rest of the output once sqltun has exited (see `drain_after_exit`).
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// sqltun on a pseudo-terminal of its own, with the screen it has drawn so far.
pub struct TerminalSession {
    session: OsSession,
    screen: vt100::Parser,
    /// Every byte sqltun wrote to the terminal so far, escape sequences included.
    output: Vec<u8>,
    command: String,
    exit: Option<i32>,
}

impl std::fmt::Debug for TerminalSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalSession")
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl TerminalSession {
    /// Start `command` with a new pty as its controlling terminal, stdin, stdout and stderr.
    pub fn spawn(command: &SqltunCommand) -> TerminalSession {
        // The pty starts with echo off; a person's terminal echoes, so turn it on before sqltun starts.
        let inner = command.terminal_command();
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "stty echo && exec \"$@\"", "sh"])
            .arg(inner.get_program())
            .args(inner.get_args())
            .env_clear()
            .env("TERM", "xterm-256color");
        for (key, value) in inner.get_envs() {
            if let Some(value) = value {
                cmd.env(key, value);
            }
        }
        let shown = format!("{cmd:?}");
        let mut session = OsSession::spawn(cmd).unwrap_or_else(|e| panic!("cannot start {shown} on a pty: {e}"));
        session
            .get_process_mut()
            .set_window_size(COLS, ROWS)
            .unwrap_or_else(|e| panic!("set the pty size: {e}"));
        TerminalSession {
            session,
            screen: vt100::Parser::new(
                std::num::NonZero::new(ROWS).expect("rows"),
                std::num::NonZero::new(COLS).expect("columns"),
                0,
            ),
            output: Vec::new(),
            command: shown,
            exit: None,
        }
    }

    /// The screen as text, one line per row, trailing blanks and empty rows at the end removed.
    pub fn screen(&self) -> String {
        // Row by row: a line drawn to the full width would otherwise be joined with the next one.
        let rows: Vec<String> = self
            .screen
            .screen()
            .rows(0, COLS)
            .map(|row| row.trim_end().to_string())
            .collect();
        rows.join("\n").trim_end().to_string()
    }

    /// Read what sqltun drew since the last call; `true` once the pty reports end of output.
    fn pump(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.session.try_read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => {
                    self.screen.process(&buf[..n]);
                    self.output.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                // Linux reports EIO on the master once the last holder of the terminal has closed it.
                Err(_) => return true,
            }
        }
    }

    /// Read what sqltun wrote before it exited. The kernel hands a pty's output to the reading side
    /// through a work queue, so its last line (`sqltun: interrupted`) may not be readable yet at the
    /// moment the exit is seen: read until the pty reports the end of output (its last holder has
    /// closed it), bounded in case something sqltun started still holds it.
    fn drain_after_exit(&mut self) {
        let deadline = Instant::now() + DRAIN_LIMIT;
        while !self.pump() && Instant::now() < deadline {
            std::thread::sleep(READ_INTERVAL);
        }
    }

    /// Wait (at most `timeout`) until the screen shows `text` (trailing blanks aside: a screen has none).
    pub fn wait_for(&mut self, text: &str, timeout: Duration) {
        let text = text.trim_end();
        self.wait_until(timeout, &format!("the screen to show {text:?}"), |screen| {
            screen.contains(text)
        });
    }

    /// Wait (at most `timeout`) until `ready(screen)` holds.
    pub fn wait_until(&mut self, timeout: Duration, what: &str, ready: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let ended = self.pump();
            if ready(&self.screen()) {
                return;
            }
            if ended || Instant::now() >= deadline {
                self.fail(&format!("timed out after {timeout:?} waiting for {what}"));
            }
            std::thread::sleep(READ_INTERVAL);
        }
    }

    /// Type `line` and Enter.
    pub fn type_line(&mut self, line: &str) {
        self.session
            .write_all(format!("{line}\r").as_bytes())
            .and_then(|_| self.session.flush())
            .unwrap_or_else(|e| panic!("write to the pty: {e}"));
    }

    /// Press Ctrl-C (the terminal turns it into SIGINT for sqltun).
    pub fn press_ctrl_c(&mut self) {
        self.session
            .write_all(&[0x03])
            .and_then(|_| self.session.flush())
            .unwrap_or_else(|e| panic!("write to the pty: {e}"));
    }

    /// Wait (at most `timeout`) for sqltun to exit, reading the screen meanwhile; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        if let Some(code) = self.exit {
            return code;
        }
        let deadline = Instant::now() + timeout;
        loop {
            self.pump();
            match self.session.get_process().status() {
                Ok(WaitStatus::Exited(_, code)) => {
                    self.drain_after_exit();
                    self.exit = Some(code);
                    return code;
                }
                Ok(WaitStatus::Signaled(_, signal, _)) => self.fail(&format!("sqltun was killed by {signal:?}")),
                _ => {}
            }
            if Instant::now() >= deadline {
                self.fail(&format!("sqltun did not exit within {timeout:?}"));
            }
            std::thread::sleep(READ_INTERVAL);
        }
    }

    /// Wait (at most `timeout`) for sqltun to exit; its exit code and every byte it wrote to the
    /// terminal, escape sequences included (for checks on colour, which the screen does not show).
    pub fn run_to_exit(mut self, timeout: Duration) -> (i32, Vec<u8>) {
        let code = self.wait_exit(timeout);
        (code, std::mem::take(&mut self.output))
    }

    /// Whether the terminal echoes what is typed (after a hidden prompt it must again).
    pub fn echoes(&self) -> bool {
        self.session
            .is_echo()
            .unwrap_or_else(|e| panic!("read the pty's terminal settings: {e}"))
    }

    /// Every byte written so far, escaped (for a failure message).
    pub fn raw(&self) -> String {
        format!("{:?}", String::from_utf8_lossy(&self.output))
    }

    /// Panic with `message`, the command and the screen.
    pub fn fail(&self, message: &str) -> ! {
        panic!(
            "{message}\ncommand: {}\n--- screen ---\n{}\n--------------",
            self.command,
            self.screen()
        );
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        if self.exit.is_none()
            && let Ok(true) = self.session.get_process().is_alive()
        {
            let _ = self.session.get_process_mut().exit(true);
        }
    }
}
