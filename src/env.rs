//! The one seam through which sqltun sees the process environment (variables, home, user, host name,
//! uid, terminal), so tests can inject it. Resolution and `--log-file`'s default path read it.

use std::io::IsTerminal;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::safe_file::Problem;

/// What resolution may read from the outside world.
pub trait Environment {
    fn var(&self, key: &str) -> Option<String>;
    fn home(&self) -> Option<PathBuf>;
    /// A person can answer prompts (stdin and stderr are terminals).
    fn is_terminal(&self) -> bool;
    /// A secret file's text (see [`read_secret_file`]).
    fn read_file(&self, path: &std::path::Path) -> std::io::Result<Zeroizing<String>>;
    /// The local user name, host name and uid (for ssh_config tokens and defaults).
    fn local_user(&self) -> String;
    fn local_hostname(&self) -> String;
    fn uid(&self) -> u32;
    /// The working directory, where the tunnels file is looked for first.
    fn current_dir(&self) -> Option<PathBuf>;
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
    fn home(&self) -> Option<PathBuf> {
        std::env::home_dir()
    }
    fn is_terminal(&self) -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }
    fn read_file(&self, path: &std::path::Path) -> std::io::Result<Zeroizing<String>> {
        read_secret_file(path)
    }
    fn local_user(&self) -> String {
        // As OpenSSH: the account of the uid, not $USER (which a sudo may have kept).
        let uid = self.uid();
        std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|passwd| {
                passwd.lines().find_map(|line| {
                    let mut fields = line.split(':');
                    let name = fields.next()?;
                    let id = fields.nth(1)?.parse::<u32>().ok()?;
                    (id == uid).then(|| name.to_string())
                })
            })
            .or_else(|| self.var("USER"))
            .unwrap_or_else(|| uid.to_string())
    }
    #[cfg(target_os = "linux")]
    fn local_hostname(&self) -> String {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    }
    #[cfg(not(target_os = "linux"))]
    fn local_hostname(&self) -> String {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into())
    }
    fn uid(&self) -> u32 {
        nix::unistd::getuid().as_raw()
    }
    fn current_dir(&self) -> Option<PathBuf> {
        std::env::current_dir().ok()
    }
}

/// A fixed environment for tests.
#[derive(Debug, Default, Clone)]
pub struct FakeEnv {
    pub vars: Vec<(String, String)>,
    pub home: Option<PathBuf>,
    pub terminal: bool,
    pub files: Vec<(PathBuf, String)>,
    pub user: String,
    pub cwd: Option<PathBuf>,
}

impl Environment for FakeEnv {
    fn var(&self, key: &str) -> Option<String> {
        self.vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }
    fn home(&self) -> Option<PathBuf> {
        self.home.clone()
    }
    fn is_terminal(&self) -> bool {
        self.terminal
    }
    fn read_file(&self, path: &std::path::Path) -> std::io::Result<Zeroizing<String>> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, c)| Zeroizing::new(c.clone()))
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }
    fn local_user(&self) -> String {
        if self.user.is_empty() {
            "me".into()
        } else {
            self.user.clone()
        }
    }
    fn local_hostname(&self) -> String {
        "workstation".into()
    }
    fn uid(&self) -> u32 {
        1000
    }
    fn current_dir(&self) -> Option<PathBuf> {
        self.cwd.clone()
    }
}

/// The most a secret file may hold: one line of password, passphrase or TOTP secret, with room to spare.
const SECRET_FILE_LIMIT: u64 = 64 * 1024;

/// Read a secret file (`--password-file` and the like) through [`crate::safe_file`]: it must be a
/// regular file (a FIFO would block forever, a device like /dev/zero would never end), checked without
/// waiting for a writer, and at most 64 KiB. The text is wiped from memory when dropped. The error
/// does not name the file: the caller puts the option and the path in front.
pub fn read_secret_file(path: &std::path::Path) -> std::io::Result<Zeroizing<String>> {
    crate::safe_file::read_secret_text(path, SECRET_FILE_LIMIT).map_err(|e| match e.problem() {
        Problem::TooLarge { .. } => std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}; a secret file holds one line", e.problem()),
        ),
        _ => e.into(),
    })
}

#[cfg(test)]
mod tests {
    /// A secret file that is a device or a directory must fail at once, not block or fill memory; one of
    /// exactly the limit is still read. (A FIFO is tested through the binary, with a bound on the run.)
    #[test]
    fn secret_files_are_bounded() {
        let err = |p: &str| {
            super::read_secret_file(std::path::Path::new(p))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err("/dev/zero"), "it is a character device, not a regular file");
        assert_eq!(err("/"), "it is a directory, not a regular file");
        let dir = std::env::temp_dir().join(format!("sqltun-secret-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pw");
        std::fs::write(&path, "x".repeat(64 * 1024)).unwrap();
        assert_eq!(super::read_secret_file(&path).unwrap().len(), 64 * 1024);
        std::fs::write(&path, "x".repeat(64 * 1024 + 1)).unwrap();
        assert!(
            super::read_secret_file(&path)
                .unwrap_err()
                .to_string()
                .contains("larger than 64 KiB")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
