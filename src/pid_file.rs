//! `--pid-file`: the tunnel's pid for scripts and service managers, written without following links,
//! refused while it names a running process, and removed at exit only while it still holds our pid.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// More than any pid file written by anyone: a larger file is read only this far.
const READ_LIMIT: u64 = 4096;

/// A pid file this process wrote; dropping it removes the file if it still holds our pid.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Refuse `path` if it is a symbolic link or not a regular file, or names a process that is running;
    /// a file naming a process that is gone (stale) is fine: [`PidFile::create`] replaces it. Called
    /// before dialling, so a second tunnel on the same pid file fails at once, and again when writing.
    pub fn check(path: &Path) -> Result<()> {
        let fail = |what: String| Error::usage(format!("--pid-file {}: {what}", path.display()));
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(fail(format!("cannot check it: {e}"))),
        };
        if meta.file_type().is_symlink() {
            return Err(fail(
                "it is a symbolic link, which sqltun does not follow (it could point at any file); remove it or choose another path".into(),
            ));
        }
        if !meta.is_file() {
            return Err(fail("it exists and is not a regular file; choose another path".into()));
        }
        if let Some(pid) = read_pid(path)
            && pid != std::process::id()
            && is_running(pid)
        {
            return Err(fail(format!(
                "process {pid} named in it is running (another tunnel?); stop it, or remove the file if it is not a tunnel"
            )));
        }
        Ok(())
    }

    /// Write our pid to `path`: into a new file in the same directory (created exclusively, so never
    /// through a link), then hard-linked to `path`, which fails if anything is there: two tunnels started
    /// together cannot both take the path (a rename would let the last one silently replace the first).
    /// A stale file [`PidFile::check`] let through is removed just before.
    pub fn create(path: &Path) -> Result<PidFile> {
        PidFile::check(path)?;
        // Only a file that was there (stale) when checked is removed, so two tunnels racing for an absent
        // path never remove each other's file: the second link fails.
        let stale = std::fs::symlink_metadata(path).is_ok();
        let fail = |e: std::io::Error| Error::usage(format!("--pid-file {}: cannot write it: {e}", path.display()));
        let name = path
            .file_name()
            .ok_or_else(|| Error::usage(format!("--pid-file {}: not a file name", path.display())))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let temporary = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
        let written = crate::safe_file::write_new(&temporary, format!("{}\n", std::process::id()).as_bytes(), 0o644)
            .and_then(|_| {
                if stale {
                    match std::fs::remove_file(path) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                }
                std::fs::hard_link(&temporary, path)
            });
        let _ = std::fs::remove_file(&temporary);
        if let Err(e) = written {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                return Err(Error::usage(format!(
                    "--pid-file {}: another process created it meanwhile (another tunnel?); stop it, or choose another path",
                    path.display()
                )));
            }
            return Err(fail(e));
        }
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    /// Another tunnel may have taken the path over since (after this one was presumed dead): its file stays.
    fn drop(&mut self) {
        if read_pid(&self.path) == Some(std::process::id()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The pid a pid file holds, read without following a link or waiting on a FIFO; `None` if there is none.
fn read_pid(path: &Path) -> Option<u32> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(READ_LIMIT).read_to_string(&mut text).ok()?;
    text.trim().parse().ok().filter(|pid| *pid > 0)
}

/// Whether a process with this pid exists (signal 0: permission denied still means it exists).
fn is_running(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    raw > 0 && matches!(kill(Pid::from_raw(raw), None), Ok(()) | Err(Errno::EPERM))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let path = std::env::temp_dir().join(format!("sqltun-pid-file-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The file holds our pid while the value lives and is gone after; a relative path works too.
    #[test]
    fn written_then_removed() {
        let dir = Dir::new("written");
        let path = dir.0.join("t.pid");
        let pid_file = PidFile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        assert_eq!(
            std::fs::read_dir(&dir.0).unwrap().count(),
            1,
            "a temporary file was left behind"
        );
        drop(pid_file);
        assert!(!path.exists());
    }

    /// A pid that cannot exist (0, beyond pid_max, not a number) is stale: it does not block a tunnel.
    #[test]
    fn stale_contents() {
        let dir = Dir::new("stale");
        let path = dir.0.join("t.pid");
        for text in ["0\n", "4294967295\n", "garbage", ""] {
            std::fs::write(&path, text).unwrap();
            assert!(PidFile::check(&path).is_ok(), "{text:?}");
        }
    }
}
