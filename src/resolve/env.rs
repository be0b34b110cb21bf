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
}

/// A fixed environment for tests.
#[derive(Debug, Default, Clone)]
pub struct FakeEnv {
    pub vars: Vec<(String, String)>,
    pub home: Option<PathBuf>,
    pub terminal: bool,
    pub files: Vec<(PathBuf, String)>,
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
}
