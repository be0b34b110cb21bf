//! The running background tunnels, one file each in a per-user state directory, so `sqltun ls` lists
//! them, `sqltun stop` stops them and `sqltun connect NAME --background` finds the one already running.
//!
//! The directory is `$XDG_RUNTIME_DIR/sqltun` (gone at logout or reboot, like the tunnels), else
//! `$XDG_STATE_HOME/sqltun`, else `~/.local/state/sqltun`: created with mode 0700, and refused when it is
//! a symbolic link, not ours, or open to others. A tunnel writes `PID-START.tunnel` (JSON, mode 0600)
//! once it is ready: into a new file created exclusively (never through a link), renamed into place, so
//! readers never see half an entry; again when its state or its number of open connections changes; and
//! removes it at exit. START is the process's start time from /proc: a pid the kernel gave to another
//! process since never matches an entry.
//!
//! Entries are hostile input like any file: a symbolic link, a file of another user, one that is too
//! large or does not parse is never trusted (ours is removed), and an entry whose process is gone, runs
//! as another user or started at another time is stale and removed, never signalled.

pub mod process;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::env::Environment;
use crate::error::{Error, Result};
use crate::plan::{Transport, TunnelPlan};

/// No entry sqltun writes comes near this; a larger file is not read.
const ENTRY_LIMIT: u64 = 64 * 1024;

/// The suffix of entry files.
const ENTRY_SUFFIX: &str = ".tunnel";

/// How often a start waiting for another start of the same name looks again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// Whether a running tunnel's chain is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The chain is up.
    Up,
    /// The chain died; the listeners stay, the chain is being dialled again.
    Reconnecting,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Reconnecting => "reconnecting",
        }
    }
}

/// One local listener of a running tunnel and the target it reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listening {
    /// The TCP address (the first, where 127.0.0.1 and ::1 are both bound); `None` for a Unix socket.
    pub local_addr: Option<SocketAddr>,
    /// `--unix-socket`: the socket's path.
    pub local_socket: Option<String>,
    /// `host:port` as seen from the last hop.
    pub target: String,
}

impl Listening {
    /// The local end as people read it: `127.0.0.1:5433` or the socket's path.
    pub fn local(&self) -> String {
        match (&self.local_addr, &self.local_socket) {
            (Some(addr), _) => addr.to_string(),
            (None, Some(path)) => path.clone(),
            (None, None) => "-".into(),
        }
    }
}

/// What a running tunnel says about itself (the registry file's content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its name in the tunnels file; `None` for a tunnel given by flags alone.
    pub name: Option<String>,
    pub pid: u32,
    /// The process's start time from /proc/PID/stat (clock ticks after boot).
    pub start_time: u64,
    /// When it became ready, in seconds since the Unix epoch.
    pub started_at: u64,
    /// One per forward, in order.
    pub listening: Vec<Listening>,
    /// The hops in dialling order, `user@host:port`.
    pub hops: Vec<String>,
    pub state: State,
    pub open_connections: u64,
    /// [`fingerprint`] of its plan.
    pub fingerprint: String,
    /// Where it writes what it says (its log).
    pub log_file: Option<String>,
}

impl Entry {
    /// The file name of this entry: `PID-START.tunnel`.
    fn file_name(&self) -> String {
        format!("{}-{}{ENTRY_SUFFIX}", self.pid, self.start_time)
    }

    /// Whether the process the entry names is still the one that wrote it (same pid, same start time,
    /// our user).
    pub fn is_running(&self) -> bool {
        process::identity(self.pid)
            .is_some_and(|id| id.start_time == self.start_time && id.uid == nix::unistd::getuid().as_raw())
    }

    /// Send SIGTERM, after checking once more that the pid is still this tunnel's; `false` when it is
    /// not running any more (nothing was sent).
    pub fn terminate(&self) -> std::io::Result<bool> {
        if !self.is_running() {
            return Ok(false);
        }
        let pid = i32::try_from(self.pid).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ESRCH) => Ok(false),
            Err(e) => Err(std::io::Error::from(e)),
        }
    }

    /// The tunnel as a message names it: `prod (pid 1234, 127.0.0.1:5433)`, or `pid 1234
    /// (127.0.0.1:5433)` for one without a name.
    pub fn describe(&self) -> String {
        let locals: Vec<String> = self.listening.iter().map(Listening::local).collect();
        let locals = crate::text::printable(&locals.join(", "));
        match &self.name {
            Some(name) => format!("{} (pid {}, {locals})", crate::text::printable(name), self.pid),
            None => format!("pid {} ({locals})", self.pid),
        }
    }
}

/// What makes two plans the same tunnel: the hops (and how each is reached), the forwards with their
/// local ports, the bind address and the Unix socket. Not the output format, nor timeouts, nor secrets.
pub fn fingerprint(plan: &TunnelPlan) -> String {
    use sha2::Digest;
    let mut text = String::new();
    for hop in &plan.hops {
        let _ = writeln!(text, "hop {}", hop.address());
        if let Transport::ProxyCommand(command) = &hop.transport {
            let _ = writeln!(text, "proxy {command}");
        }
    }
    for forward in &plan.forwards {
        let _ = writeln!(text, "forward {} {}", forward.local_port, forward.target);
    }
    let _ = writeln!(text, "bind {}", plan.bind);
    if let Some(socket) = &plan.lifecycle.unix_socket {
        let _ = writeln!(text, "socket {}", socket.display());
    }
    let digest = sha2::Sha256::digest(text.as_bytes());
    data_encoding::HEXLOWER.encode(&digest[..16])
}

/// Where the state directory is (not created): `$XDG_RUNTIME_DIR/sqltun`, else `$XDG_STATE_HOME/sqltun`,
/// else `~/.local/state/sqltun` (relative values are ignored, as the XDG specification says); `None`
/// without any of them.
pub fn location(env: &dyn Environment) -> Option<PathBuf> {
    let absolute = |key: &str| env.var(key).map(PathBuf::from).filter(|dir| dir.is_absolute());
    let base = absolute("XDG_RUNTIME_DIR")
        .or_else(|| absolute("XDG_STATE_HOME"))
        .or_else(|| env.home().map(|home| home.join(".local/state")))?;
    Some(base.join("sqltun"))
}

/// The state directory, checked: ours, a real directory, closed to others.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    uid: u32,
}

impl StateDir {
    /// The state directory, created (mode 0700) if missing.
    pub fn open(env: &dyn Environment) -> Result<StateDir> {
        let path = location(env).ok_or_else(|| {
            Error::usage("no place for the list of running tunnels: neither XDG_RUNTIME_DIR nor HOME is set")
        })?;
        if std::fs::symlink_metadata(&path).is_err() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(|e| dir_error(&path, &format!("cannot create it: {e}")))?;
        }
        StateDir::checked(path, env.uid())
    }

    /// The state directory if it exists (checked), `None` if it does not (nothing ever ran).
    pub fn existing(env: &dyn Environment) -> Result<Option<StateDir>> {
        let Some(path) = location(env) else {
            return Ok(None);
        };
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        StateDir::checked(path, env.uid()).map(Some)
    }

    fn checked(path: PathBuf, uid: u32) -> Result<StateDir> {
        let meta = std::fs::symlink_metadata(&path).map_err(|e| dir_error(&path, &format!("cannot read it: {e}")))?;
        let shown = crate::text::printable(&path.to_string_lossy());
        if meta.file_type().is_symlink() {
            return Err(dir_error(
                &path,
                "it is a symbolic link, which sqltun does not follow (anyone who can change it could redirect the list); remove it",
            ));
        }
        if !meta.is_dir() {
            return Err(dir_error(&path, "it is not a directory; remove it"));
        }
        if meta.uid() != uid {
            return Err(dir_error(
                &path,
                &format!("it belongs to uid {}, not to you (uid {uid}); remove it", meta.uid()),
            ));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(dir_error(
                &path,
                &format!("it is open to others (mode {mode:04o}); make it yours alone: chmod 700 {shown}"),
            ));
        }
        Ok(StateDir { path, uid })
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every running tunnel, oldest first; stale and unparseable entries of ours are removed on the way.
    pub fn running(&self) -> Vec<Entry> {
        let Ok(listing) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        let mut entries: Vec<Entry> = listing
            .flatten()
            .filter_map(|item| {
                let name = item.file_name();
                let name = name.to_str()?;
                let (pid, start_time) = parse_file_name(name)?;
                self.read_entry(&self.path.join(name), pid, start_time)
            })
            .collect();
        entries.sort_by_key(|e| (e.started_at, e.pid));
        entries
    }

    /// The running tunnels named `name`.
    pub fn named(&self, name: &str) -> Vec<Entry> {
        self.running()
            .into_iter()
            .filter(|e| e.name.as_deref() == Some(name))
            .collect()
    }

    /// The entry at `path` if it is ours, well formed and its process is the one that wrote it.
    fn read_entry(&self, path: &Path, pid: u32, start_time: u64) -> Option<Entry> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        if meta.file_type().is_symlink() || !meta.is_file() || meta.uid() != self.uid {
            tracing::debug!("ignoring {}: not a file of ours", path.display());
            return None;
        }
        let remove = |why: &str| {
            tracing::debug!("removing {}: {why}", path.display());
            let _ = std::fs::remove_file(path);
            None
        };
        let opened = crate::safe_file::open(path, crate::safe_file::NullDevice::Refuse).ok()?;
        let same = opened.metadata().ino() == meta.ino() && opened.metadata().uid() == self.uid;
        if !same {
            return None;
        }
        let Ok(bytes) = opened.read(ENTRY_LIMIT) else {
            return remove("unreadable or too large");
        };
        let Ok(entry) = serde_json::from_slice::<Entry>(&bytes) else {
            return remove("not a tunnel entry");
        };
        if entry.pid != pid || entry.start_time != start_time {
            return remove("its content does not match its name");
        }
        if !entry.is_running() {
            return remove("its process is gone");
        }
        Some(entry)
    }

    /// Write `entry` (this process's), to be rewritten through the [`Registration`] and removed when
    /// it is dropped.
    pub fn register(&self, entry: Entry) -> Result<Registration> {
        let path = self.path.join(entry.file_name());
        write_entry(&self.path, &path, &entry)
            .map_err(|e| dir_error(&self.path, &format!("cannot write the tunnel's entry: {e}")))?;
        Ok(Registration {
            dir: self.path.clone(),
            path,
            entry: Mutex::new(entry),
        })
    }

    /// Hold the lock on `name` (a file `NAME.lock` in this directory, `flock`ed), so two starts of one
    /// named tunnel never both start it; waits up to `limit` for another start to finish.
    pub async fn lock(&self, name: &str, limit: Duration) -> Result<NameLock> {
        let path = self.path.join(format!("{}.lock", file_safe(name)));
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let file = self.open_lock_file(&path)?;
            match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(NameLock { _lock: lock }),
                Err((_, nix::errno::Errno::EWOULDBLOCK)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(LOCK_POLL).await;
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(Error::usage(format!(
                        "another sqltun has been starting {} for {}s; try again once it is done (sqltun ls)",
                        crate::text::printable(name),
                        limit.as_secs()
                    )));
                }
                Err((_, e)) => return Err(file_error(&path, &format!("cannot lock it: {e}"))),
            }
        }
    }

    fn open_lock_file(&self, path: &Path) -> Result<std::fs::File> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| file_error(path, &format!("cannot open it: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| file_error(path, &format!("cannot check it: {e}")))?;
        if !meta.is_file() || meta.uid() != self.uid {
            return Err(file_error(path, "it is not a regular file of yours; remove it"));
        }
        Ok(file)
    }
}

/// The lock on a tunnel's name, released when dropped.
#[derive(Debug)]
pub struct NameLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// This tunnel's entry: rewritten as its state changes, removed when dropped.
#[derive(Debug)]
pub struct Registration {
    dir: PathBuf,
    path: PathBuf,
    entry: Mutex<Entry>,
}

impl Registration {
    /// The chain went down or came back.
    pub fn set_state(&self, state: State) {
        self.update(|entry| std::mem::replace(&mut entry.state, state) != state);
    }

    /// The number of open connections changed (the tunnel reports it debounced).
    pub fn set_open_connections(&self, open: u64) {
        self.update(|entry| std::mem::replace(&mut entry.open_connections, open) != open);
    }

    /// Apply `change`, and rewrite the file if it changed anything.
    fn update(&self, change: impl FnOnce(&mut Entry) -> bool) {
        let Ok(mut entry) = self.entry.lock() else { return };
        if change(&mut entry)
            && let Err(e) = write_entry(&self.dir, &self.path, &entry)
        {
            tracing::warn!("cannot update the tunnel's entry {}: {e}", self.path.display());
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove the tunnel's entry {}: {e}", self.path.display());
        }
    }
}

/// Write `entry` to `path` atomically: a new private file beside it, renamed over it.
fn write_entry(dir: &Path, path: &Path, entry: &Entry) -> std::io::Result<()> {
    let json = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    let temporary = dir.join(format!(".{}.{}.tmp", entry.pid, entry.start_time));
    let written = crate::safe_file::write_new(&temporary, &json, 0o600).and_then(|_| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// `PID-START.tunnel` into its numbers.
fn parse_file_name(name: &str) -> Option<(u32, u64)> {
    let (pid, start) = name.strip_suffix(ENTRY_SUFFIX)?.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(start) {
        return None;
    }
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// A tunnel's name as a file name: letters, digits, `_`, `-` and `.` kept (a leading `.` not), every
/// other byte as `%XX`.
fn file_safe(name: &str) -> String {
    name.bytes()
        .enumerate()
        .map(|(i, b)| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => char::from(b).to_string(),
            b'.' if i > 0 => ".".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An error about a file in the state directory, naming it.
fn file_error(path: &Path, why: &str) -> Error {
    Error::usage(format!("{}: {why}", crate::text::printable(&path.to_string_lossy())))
}

/// An error about the state directory, naming it.
fn dir_error(path: &Path, why: &str) -> Error {
    Error::usage(format!(
        "state directory {}: {why}",
        crate::text::printable(&path.to_string_lossy())
    ))
}

#[cfg(test)]
mod tests;
