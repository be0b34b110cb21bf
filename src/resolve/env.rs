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
        read_small_file(path)
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

/// Secret files hold one line: refuse anything that is not a regular file (a FIFO would block, a device
/// like /dev/zero would never end) and read at most 64 KiB.
pub fn read_small_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    const LIMIT: u64 = 64 * 1024;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut text = String::new();
    file.take(LIMIT + 1).read_to_string(&mut text)?;
    if text.len() as u64 > LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "larger than 64 KiB; a secret file holds one line",
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    /// A secret file that is a device or a FIFO must fail at once, not block or fill memory.
    #[test]
    fn secret_files_are_bounded() {
        assert!(super::read_small_file(std::path::Path::new("/dev/zero")).is_err());
        assert!(super::read_small_file(std::path::Path::new("/")).is_err());
    }
}
