//! One question on the controlling terminal, read without blocking the runtime: a thread reads the
//! line while the connection waits for it (and for Ctrl-C). Whatever ends the question (an answer,
//! end of input, Ctrl-C, the connection being dropped) puts the terminal back as it was, echo included.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use tokio::signal::unix::{SignalKind, signal};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A longer answer is cut here: nobody types more, and a pasted flood must not grow memory.
const MAX_ANSWER: usize = 8 * 1024;

/// The terminal state to put back, and the way to wake the reader, for the question being asked.
#[derive(Debug)]
struct Open {
    tty: File,
    saved: Option<Termios>,
    /// Writing to (or closing) this pipe tells the reader to give up.
    cancel: OwnedFd,
    hidden: bool,
}

impl Open {
    /// Put the terminal back and wake the reader; after a cut-short question, end its line so what
    /// follows starts at the left margin.
    fn close(self, cut_short: bool) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(self.tty.as_fd(), SetArg::TCSANOW, saved);
        }
        if cut_short || self.hidden {
            let _ = (&self.tty).write_all(b"\n");
        }
        let _ = nix::unistd::write(&self.cancel, b"x");
    }
}

/// The question being asked, if any: shared with [`super::Terminal::finish`] so that the terminal is
/// restored even when the future asking is dropped (Ctrl-C caught elsewhere first, SIGTERM).
#[derive(Debug, Default, Clone)]
pub(super) struct Current(Arc<Mutex<Option<Open>>>);

impl Current {
    fn set(&self, open: Open) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(open);
        }
    }

    /// End the question in progress (if any): terminal restored, reader woken.
    pub(super) fn abandon(&self, cut_short: bool) {
        // Closed under the lock: a second caller (the command giving up while the prompt's own task is
        // closing it) returns only once the terminal is restored and the line ended, so nothing it
        // prints next can land in the middle.
        if let Ok(mut slot) = self.0.lock()
            && let Some(open) = slot.take()
        {
            open.close(cut_short);
        }
    }

    /// Whether a question is waiting for an answer.
    pub(super) fn is_open(&self) -> bool {
        self.0.lock().map(|slot| slot.is_some()).unwrap_or(false)
    }
}

/// Ends the question when the future asking it goes away, whatever the reason.
struct Abandon<'a>(&'a Current);

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        self.0.abandon(true);
    }
}

/// Show `question` on /dev/tty and read one line; `hidden` turns echo off while it is typed.
/// `Ok(None)`: no terminal, or end of input (Ctrl-D). Ctrl-C is [`Error::interrupted`].
pub(super) async fn ask(current: &Current, question: &str, hidden: bool) -> Result<Option<Zeroizing<String>>> {
    // Listen for Ctrl-C before the question is shown, so no keystroke can come before the listener.
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| Error::internal(format!("SIGINT: {e}")))?;
    let (tty, reader, saved, wake) = match open_tty(hidden) {
        Ok(parts) => parts,
        Err(e) => {
            tracing::info!("cannot ask on /dev/tty: {e}");
            return Ok(None);
        }
    };
    let (cancel, woken) = wake;
    // Registered before the question shows, so whatever ends it from now on restores the terminal.
    current.set(Open {
        tty,
        saved,
        cancel,
        hidden,
    });
    let guard = Abandon(current);
    if let Err(e) = (&reader).write_all(question.as_bytes()).and_then(|_| (&reader).flush()) {
        tracing::info!("cannot write to /dev/tty: {e}");
        return Ok(None);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(read_line(&reader, &woken));
    });
    tokio::select! {
        biased;
        _ = interrupt.recv() => Err(Error::interrupted()),
        answer = rx => {
            std::mem::forget(guard);
            current.abandon(false);
            match answer {
                Ok(Ok(line)) => Ok(line),
                Ok(Err(e)) => {
                    tracing::info!("reading /dev/tty failed: {e}");
                    Ok(None)
                }
                Err(_) => Ok(None),
            }
        }
    }
}

type Parts = (File, File, Option<Termios>, (OwnedFd, OwnedFd));

/// The terminal (one handle to write and restore, one for the reader), its saved state with echo
/// turned off when `hidden`, and the pipe that wakes the reader.
fn open_tty(hidden: bool) -> io::Result<Parts> {
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    let reader = tty.try_clone()?;
    let saved = termios::tcgetattr(tty.as_fd()).ok();
    if hidden && let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO | LocalFlags::ECHONL);
        termios::tcsetattr(tty.as_fd(), SetArg::TCSAFLUSH, &quiet).map_err(io::Error::from)?;
    }
    let (woken, cancel) = nix::unistd::pipe().map_err(io::Error::from)?;
    Ok((tty, reader, saved, (cancel, woken)))
}

/// Read up to the end of the line (the terminal is in canonical mode: it hands over whole lines and
/// does the editing). `None` at end of input with nothing typed, or when woken through `cancel`.
fn read_line(tty: &File, cancel: &OwnedFd) -> io::Result<Option<Zeroizing<String>>> {
    let mut line = Zeroizing::new(Vec::new());
    let mut chunk = Zeroizing::new([0u8; 256]);
    loop {
        let mut fds = [
            PollFd::new(tty.as_fd(), PollFlags::POLLIN),
            PollFd::new(cancel.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        if fds[1].any().unwrap_or(true) {
            return Ok(None);
        }
        let n = match (&*tty).read(&mut chunk[..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok((!line.is_empty()).then(|| text(&line)));
        }
        let room = MAX_ANSWER.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..n.min(room)]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            return Ok(Some(text(&line[..end])));
        }
        if line.len() >= MAX_ANSWER {
            return Ok(Some(text(&line)));
        }
    }
}

fn text(bytes: &[u8]) -> Zeroizing<String> {
    let trimmed = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    Zeroizing::new(String::from_utf8_lossy(trimmed).into_owned())
}
