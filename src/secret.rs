//! Secrets (passwords, passphrases) as a type that never prints itself and is wiped when dropped, and
//! the names of the environment variables secrets come from, which no process sqltun starts may inherit.

use std::ffi::OsStr;
use std::fmt;
use zeroize::Zeroizing;

/// The SSH password (and `SQLTUN_SSH_PASSWORD_<N>` for hop N).
pub const PASSWORD_VAR: &str = "SQLTUN_SSH_PASSWORD";
/// The passphrase of encrypted identity files (and `_<N>`).
pub const PASSPHRASE_VAR: &str = "SQLTUN_SSH_PASSPHRASE";
/// The TOTP secret for verification-code prompts (and `_<N>`).
pub const TOTP_VAR: &str = "SQLTUN_TOTP_SECRET";

/// Every environment variable sqltun reads a secret from, without the per-hop `_<N>` suffix. A secret
/// read from anywhere else in the environment would reach the commands sqltun starts: add it here.
pub const ENV_VARS: [&str; 3] = [PASSWORD_VAR, PASSPHRASE_VAR, TOTP_VAR];

/// Whether `name` is one of [`ENV_VARS`] or a per-hop form of one (`SQLTUN_SSH_PASSWORD_2`). Any
/// `_suffix` counts: withholding a variable sqltun does not read costs nothing.
pub fn is_env_var(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else { return false };
    ENV_VARS.iter().any(|var| {
        name.strip_prefix(var)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'))
    })
}

/// Remove every secret variable of this process's environment from what `command` passes on: the
/// commands sqltun starts (`exec`'s command, ProxyCommand, helpers) never need sqltun's secrets, and
/// their own children, logs and crash reports would carry them further.
pub fn withhold_from(command: &mut std::process::Command) -> &mut std::process::Command {
    for (name, _) in std::env::vars_os() {
        if is_env_var(&name) {
            command.env_remove(name);
        }
    }
    command
}

/// A secret string. `Debug` and `Display` print a placeholder; the memory is zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }
    /// The secret itself: call only where it is handed to the SSH library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret that reaches a log line through `{:?}` or `{}` must not leak.
    #[test]
    fn never_prints_itself() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    /// The plain and per-hop names are secret; a longer name that merely starts the same is not.
    #[test]
    fn secret_variable_names() {
        for name in [
            "SQLTUN_SSH_PASSWORD",
            "SQLTUN_SSH_PASSWORD_2",
            "SQLTUN_SSH_PASSPHRASE_10",
            "SQLTUN_TOTP_SECRET",
            "SQLTUN_TOTP_SECRET_1",
        ] {
            assert!(is_env_var(OsStr::new(name)), "{name}");
        }
        for name in [
            "SQLTUN_SSH_PASSWORDS",
            "SQLTUN_PORT",
            "SQLTUN_URL",
            "PGPASSWORD",
            "SQLTUN_LOG",
        ] {
            assert!(!is_env_var(OsStr::new(name)), "{name}");
        }
    }
}
