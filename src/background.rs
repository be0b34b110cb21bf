//! `--background`, like `ssh -f`: the tunnel runs in a child process; the parent relays its ready
//! output and exits 0 once the tunnel is usable, so `PORT=$(sqltun connect --background …)` works.
//!
//! The child is this same program started again with the same arguments (no fork: the runtime is
//! multi-threaded), marked by an environment variable. Until it is ready it shares the terminal (progress,
//! prompts and errors reach the person who started it); once ready it says its pid and how to stop it,
//! then detaches: its own session, stdin and stdout on /dev/null, stderr on its log file. The parent
//! waits for that before it returns, so nothing the tunnel says later reaches the caller's pipes.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::env::Environment;
use crate::error::{Error, Result};
use crate::plan::OutputFormat;

const CHILD_MARK: &str = "SQLTUN_BACKGROUND_CHILD";

/// Bound on the ready child letting go of the parent's stdout and stderr (it does so at once).
const DETACH_LIMIT: Duration = Duration::from_secs(10);

/// True in the child that runs the tunnel.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_MARK).is_some()
}

/// Start the child, relay its ready lines once it has detached, and return 0; if the child fails first,
/// return its code (it has already said why on stderr).
pub async fn launch(format: OutputFormat, forwards: usize) -> Result<u8> {
    let exe = std::env::current_exe().map_err(|e| Error::internal(format!("cannot find this program: {e}")))?;
    // The child resolves the plan again, secrets included, so it keeps this environment; it withholds
    // them from what it starts in turn (see `secret::withhold_from`).
    let mut child = tokio::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_MARK, "1")
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::internal(format!("cannot start the background tunnel: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::internal("the background tunnel has no stdout"))?;
    let mut reader = BufReader::new(stdout);
    let wanted = crate::output::ready_line_count(format, forwards);
    let mut ready = String::new();
    for _ in 0..wanted {
        match reader.read_line(&mut ready).await {
            Ok(n) if n > 0 && ready.ends_with('\n') => {}
            _ => return exit_code(&mut child).await,
        }
    }
    // The child closes its end of the pipe as it detaches, after its last word on our stderr.
    let mut rest = Vec::new();
    if tokio::time::timeout(DETACH_LIMIT, reader.read_to_end(&mut rest))
        .await
        .is_err()
    {
        tracing::warn!("the background tunnel did not detach within {DETACH_LIMIT:?}");
    }
    if let Ok(Some(_)) = child.try_wait() {
        return exit_code(&mut child).await;
    }
    // The tunnel runs whether or not the caller still reads (it printed its pid on stderr).
    crate::output::relay_ready(&ready)?;
    Ok(0)
}

/// The exit code of a child that stopped before it was ready (1 if a signal killed it).
async fn exit_code(child: &mut tokio::process::Child) -> Result<u8> {
    let status = child
        .wait()
        .await
        .map_err(|e| Error::internal(format!("waiting for the tunnel: {e}")))?;
    Ok(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1))
}

/// The open log file of a background tunnel.
#[derive(Debug)]
pub struct LogFile {
    pub path: PathBuf,
    file: std::fs::File,
}

impl LogFile {
    /// Open `--log-file` (appended to), or the default [`default_path`] (created afresh: a file there
    /// with this pid is an earlier tunnel's); called before dialling, so a bad path fails at once.
    pub fn open(given: Option<&Path>, env: &dyn Environment) -> Result<LogFile> {
        let (path, option) = match given {
            Some(path) => (path.to_path_buf(), "--log-file"),
            None => {
                let path = default_path(env, std::process::id()).ok_or_else(|| {
                    Error::usage("no place for the background tunnel's log: HOME is not set; give --log-file FILE")
                })?;
                if let Some(dir) = path.parent() {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .map_err(|e| {
                            Error::usage(format!(
                                "log directory {}: cannot create it: {e}; give --log-file FILE",
                                dir.display()
                            ))
                        })?;
                }
                (path, "log file")
            }
        };
        let file = open_private(&path, given.is_some())
            .map_err(|e| Error::usage(format!("{option} {}: {e}", path.display())))?;
        Ok(LogFile { path, file })
    }
}

/// `$XDG_STATE_HOME/sqltun/PID.log`, or `~/.local/state/sqltun/PID.log` when it is unset or not
/// absolute (as the XDG base directory specification says); `None` without a home.
pub fn default_path(env: &dyn Environment, pid: u32) -> Option<PathBuf> {
    let state = env
        .var("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| env.home().map(|home| home.join(".local/state")))?;
    Some(state.join("sqltun").join(format!("{pid}.log")))
}

/// Open `path` for writing only this user can read: never through a symbolic link (`O_NOFOLLOW`), never
/// blocking on a FIFO, only a regular file; an existing file's mode is narrowed to 0600.
fn open_private(path: &Path, append: bool) -> std::result::Result<std::fs::File, String> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                "it is a symbolic link, which sqltun does not follow (it could point at any file); remove it or choose another path".to_string()
            }
            _ => format!("cannot open it: {e}"),
        })?;
    let meta = file.metadata().map_err(|e| format!("cannot check it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file; choose another path".into());
    }
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot make it private (mode 0600): {e}"))?;
    }
    Ok(file)
}

/// In the child, once ready and announced: leave the terminal's session (its hangup and Ctrl-C no longer
/// reach the tunnel) and let go of the terminal and the parent's pipes: stdin and stdout on /dev/null,
/// stderr, and with it every later message, on the log file.
pub fn detach(log: &LogFile) {
    if let Err(e) = nix::unistd::setsid() {
        tracing::debug!("setsid failed: {e}");
    }
    crate::output::mark_detached();
    if let Err(e) = nix::unistd::dup2_stderr(&log.file) {
        tracing::warn!("cannot write to the log file {}: {e}", log.path.display());
    }
    match std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        Ok(null) => {
            for (name, moved) in [
                ("stdin", nix::unistd::dup2_stdin(&null)),
                ("stdout", nix::unistd::dup2_stdout(&null)),
            ] {
                if let Err(e) = moved {
                    tracing::warn!("cannot point {name} at /dev/null: {e}");
                }
            }
        }
        Err(e) => tracing::warn!("cannot open /dev/null: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::FakeEnv;
    use std::io::Write;

    /// The default log follows the XDG base directory rule: an absolute $XDG_STATE_HOME, else
    /// ~/.local/state (a relative value is ignored, as the specification says).
    #[test]
    fn default_log_location() {
        let mut env = FakeEnv {
            home: Some("/home/me".into()),
            ..FakeEnv::default()
        };
        assert_eq!(
            default_path(&env, 42),
            Some(PathBuf::from("/home/me/.local/state/sqltun/42.log"))
        );
        env.vars = vec![("XDG_STATE_HOME".into(), "/var/state".into())];
        assert_eq!(default_path(&env, 42), Some(PathBuf::from("/var/state/sqltun/42.log")));
        env.vars = vec![("XDG_STATE_HOME".into(), "state".into())];
        assert_eq!(
            default_path(&env, 42),
            Some(PathBuf::from("/home/me/.local/state/sqltun/42.log"))
        );
        env.home = None;
        assert_eq!(default_path(&env, 42), None);
    }

    /// The log is private even where the file existed with a wider mode, and a symbolic link at its
    /// path is refused, not followed.
    #[test]
    fn log_file_is_private_and_never_a_link() {
        let dir = std::env::temp_dir().join(format!("sqltun-log-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.log");
        std::fs::write(&path, "earlier\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let log = LogFile::open(Some(&path), &FakeEnv::default()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        writeln!(&log.file, "later").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "earlier\nlater\n",
            "not appended"
        );

        let victim = dir.join("victim");
        std::fs::write(&victim, "keep\n").unwrap();
        let link = dir.join("link.log");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = LogFile::open(Some(&link), &FakeEnv::default()).unwrap_err();
        assert!(err.message().contains("symbolic link"), "{}", err.message());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
