//! The one seam through which resolution sees the process environment, so tests can inject it.

use std::io::IsTerminal;
use std::path::PathBuf;

/// What resolution may read from the outside world.
pub trait Environment {
    fn var(&self, key: &str) -> Option<String>;
    fn home(&self) -> Option<PathBuf>;
    /// A person can answer prompts (stdin and stderr are terminals).
    fn is_terminal(&self) -> bool;
    fn read_file(&self, path: &std::path::Path) -> std::io::Result<String>;
    /// The local user name, host name and uid (for ssh_config tokens and defaults).
    fn local_user(&self) -> String;
    fn local_hostname(&self) -> String;
    fn uid(&self) -> u32;
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
    fn read_file(&self, path: &std::path::Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
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
    fn local_hostname(&self) -> String {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    }
    fn uid(&self) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
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
    fn read_file(&self, path: &std::path::Path) -> std::io::Result<String> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, c)| c.clone())
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
}
