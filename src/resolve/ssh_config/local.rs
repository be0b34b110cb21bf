//! The local facts ssh_config needs (user, home, host name, uid), from the same sources OpenSSH uses.

use std::path::PathBuf;

use super::{Local, Result, shown};
use crate::error::Error;

impl Local {
    /// The facts of this process, from the same sources OpenSSH uses where that needs no `unsafe`:
    /// getuid(), its `/etc/passwd` entry (falling back to `$USER`/`$HOME`), and
    /// `/proc/sys/kernel/hostname`; `uname` where `/proc` is missing.
    pub fn from_system() -> Result<Local> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let uid = nix::unistd::getuid().as_raw();
        let (user, home) = match passwd_by_uid(uid) {
            Some(entry) => entry,
            None => {
                let user = var("USER").or_else(|| var("LOGNAME"));
                let home = var("HOME").map(PathBuf::from);
                match (user, home) {
                    (Some(user), Some(home)) => (user, home),
                    _ => {
                        return Err(Error::internal(format!(
                            "uid {uid} has no /etc/passwd entry and $USER or $HOME is unset; set both"
                        )));
                    }
                }
            }
        };
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| command_output("uname", &["-n"]))
            .ok_or_else(|| Error::internal("cannot determine the local host name"))?;
        Ok(Local {
            user,
            home,
            hostname,
            uid,
        })
    }
}

/// The home directory of `user` (`~user`).
pub(super) fn home_of(user: &str, local: &Local) -> std::result::Result<PathBuf, String> {
    if user == local.user {
        return Ok(local.home.clone());
    }
    passwd_entries()
        .into_iter()
        .find(|(name, _, _)| name == user)
        .map(|(_, _, home)| home)
        .ok_or_else(|| format!("~{}: no such user in /etc/passwd; write the full path", shown(user)))
}

/// (name, uid, home) from /etc/passwd.
pub(super) fn passwd_entries() -> Vec<(String, u32, PathBuf)> {
    let Ok(text) = std::fs::read_to_string("/etc/passwd") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 7 {
                return None;
            }
            Some((fields[0].to_string(), fields[2].parse().ok()?, PathBuf::from(fields[5])))
        })
        .collect()
}

pub(super) fn passwd_by_uid(uid: u32) -> Option<(String, PathBuf)> {
    passwd_entries()
        .into_iter()
        .find(|(_, u, _)| *u == uid)
        .map(|(name, _, home)| (name, home))
}

pub(super) fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = crate::secret::withhold_from(&mut std::process::Command::new(program))
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
