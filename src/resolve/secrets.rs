//! Where each hop's secrets come from: `--*-file` options and `SQLTUN_*` variables (read once), the
//! tunnels file's commands (run when needed), and which hop each may reach.

use std::path::Path;

use crate::cli::TunnelArgs;
use crate::env::Environment;
use crate::error::{Error, Result};
use crate::plan::Lazy;
use crate::secret::{self, Secret};
use crate::secret_command::SecretCommand;

/// A secret for a hop, or the command that yields it, with where it comes from (for messages).
pub type HopSecret = (Lazy<Secret>, String);

/// Secrets that apply to hops, resolved once: per-hop variables win over the shared ones, which are a
/// file option, else a variable, else a command of the tunnels file.
#[derive(Debug, Clone, Default)]
pub(super) struct Secrets {
    password: Option<HopSecret>,
    passphrase: Option<HopSecret>,
    totp: Option<HopSecret>,
}

/// The secrets from their file options or environment variables, read once, else the commands that
/// will yield them when needed (not run here).
pub(super) fn secrets(args: &TunnelArgs, env: &dyn Environment) -> Result<Secrets> {
    let either = |read: Option<(Secret, String)>, setting: &'static str, argv: &Option<Vec<String>>| {
        Ok::<_, Error>(match (read, argv) {
            (Some((secret, from)), _) => Some((Lazy::Ready(secret), from)),
            (None, Some(argv)) => {
                let command = secret_command(setting, argv)?;
                let from = command.describe();
                Some((Lazy::Command(command), from))
            }
            (None, None) => None,
        })
    };
    Ok(Secrets {
        password: either(
            secret_from(
                env,
                args.password_file.as_deref(),
                secret::PASSWORD_VAR,
                "--password-file",
            )?,
            "password_command",
            &args.password_command,
        )?,
        passphrase: either(
            secret_from(
                env,
                args.passphrase_file.as_deref(),
                secret::PASSPHRASE_VAR,
                "--passphrase-file",
            )?,
            "passphrase_command",
            &args.passphrase_command,
        )?,
        totp: either(
            secret_from(
                env,
                args.totp_secret_file.as_deref(),
                secret::TOTP_VAR,
                "--totp-secret-file",
            )?,
            "totp_command",
            &args.totp_command,
        )?,
    })
}

/// A command setting as the plan holds it; an empty list (or program name) is refused now.
pub(super) fn secret_command(setting: &'static str, argv: &[String]) -> Result<SecretCommand> {
    if argv.first().is_none_or(|program| program.is_empty()) {
        return Err(Error::usage(format!(
            "{setting}: give the program and its arguments as a list, e.g. [\"op\", \"read\", \"op://vault/item/field\"]"
        )));
    }
    Ok(SecretCommand::new(setting, argv.to_vec()))
}

/// Where hop secrets come from; `config` has none. Hops count from 1 in dialling order; `count` is the
/// length of the chain, so the last hop (the destination) is `hop_number == count`.
///
/// What is sent to a server (password, TOTP secret) goes to one hop only: `SQLTUN_SSH_PASSWORD_<N>` and
/// `SQLTUN_TOTP_SECRET_<N>` to hop N, the unnumbered variable and `--password-file`/`--totp-secret-file`
/// to the destination alone, as `ssh -J` sends a typed password to the destination only. A jump host,
/// or a server accepted with accept-new, never receives what was meant for the database's bastion. The
/// passphrase unlocks a local key file and never leaves the machine, so the unnumbered one serves every
/// hop (the key it opens is what each hop sees, as with ssh-agent).
///
/// The commands of the tunnels file follow the same rule: `password_command` and `totp_command` serve
/// the destination only, `passphrase_command` every hop; each runs anew for every hop and connection
/// that needs it, so no result reaches a hop it was not obtained for.
pub trait SecretsSource {
    fn password(&self, env: &dyn Environment, hop_number: usize, count: usize) -> Option<HopSecret>;
    fn passphrase(&self, env: &dyn Environment, hop_number: usize, count: usize) -> Option<HopSecret>;
    fn totp(&self, env: &dyn Environment, hop_number: usize, count: usize) -> Option<HopSecret>;
}

impl SecretsSource for Secrets {
    fn password(&self, env: &dyn Environment, hop_number: usize, count: usize) -> Option<HopSecret> {
        per_hop(env, secret::PASSWORD_VAR, hop_number).or_else(|| self.password.clone().filter(|_| hop_number == count))
    }
    fn passphrase(&self, env: &dyn Environment, hop_number: usize, _count: usize) -> Option<HopSecret> {
        per_hop(env, secret::PASSPHRASE_VAR, hop_number).or_else(|| self.passphrase.clone())
    }
    fn totp(&self, env: &dyn Environment, hop_number: usize, count: usize) -> Option<HopSecret> {
        per_hop(env, secret::TOTP_VAR, hop_number).or_else(|| self.totp.clone().filter(|_| hop_number == count))
    }
}

/// No secrets at all (for `config`, which never authenticates).
#[derive(Debug, Clone, Copy)]
pub struct NoSecrets;

impl SecretsSource for NoSecrets {
    fn password(&self, _: &dyn Environment, _: usize, _: usize) -> Option<HopSecret> {
        None
    }
    fn passphrase(&self, _: &dyn Environment, _: usize, _: usize) -> Option<HopSecret> {
        None
    }
    fn totp(&self, _: &dyn Environment, _: usize, _: usize) -> Option<HopSecret> {
        None
    }
}

/// `SQLTUN_SSH_PASSWORD_2` is hop 2's password (hops count from 1, in dialling order).
pub(super) fn per_hop(env: &dyn Environment, var: &str, hop_number: usize) -> Option<HopSecret> {
    debug_assert!(secret::ENV_VARS.contains(&var), "{var} is not in secret::ENV_VARS");
    let name = format!("{var}_{hop_number}");
    env.var(&name).map(|v| (Lazy::Ready(Secret::new(v)), name))
}

/// A secret from its file option, else its environment variable, with where it came from.
pub(super) fn secret_from(
    env: &dyn Environment,
    file: Option<&Path>,
    var: &str,
    flag: &str,
) -> Result<Option<(Secret, String)>> {
    debug_assert!(secret::ENV_VARS.contains(&var), "{var} is not in secret::ENV_VARS");
    if let Some(path) = file {
        let text = env
            .read_file(path)
            .map_err(|e| Error::usage(format!("{flag} {}: cannot read it: {e}", path.display())))?;
        let first = text.lines().next().unwrap_or("").to_string();
        if first.is_empty() {
            return Err(Error::usage(format!(
                "{flag} {}: the file is empty (the secret is its first line)",
                path.display()
            )));
        }
        return Ok(Some((Secret::new(first), format!("{flag} {}", path.display()))));
    }
    Ok(env.var(var).map(|v| (Secret::new(v), var.to_string())))
}
