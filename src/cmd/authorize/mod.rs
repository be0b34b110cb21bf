//! `sqltun authorize`: for the tunnel's key (or a new one made for it), one authorized_keys line per hop
//! of the chain that lets the key do nothing on that hop but forward to the hop's next destination: the
//! next hop, as sqltun dials it through this one, or, on the last hop, every target. Lines on stdout, in
//! hop order; which line goes where, and the key to use, on stderr. Nothing is dialled.
//!
//! | module | owns |
//! | --- | --- |
//! | `line` | the line itself: its options, and the checks that keep a value from changing what it allows |

mod line;

use std::path::{Path, PathBuf};

use russh::keys::PublicKey;

use crate::cli::AuthorizeArgs;
use crate::env::{Environment, ProcessEnv};
use crate::error::{Error, Result};
use crate::output;
use crate::plan::{Hop, TunnelPlan};
use crate::resolve;
use crate::ssh::HopLabel;
use crate::ssh::keys::{self, CreateError, KeyError};
use crate::target::Target;
use crate::text::{printable, shell_word};

/// The sshd_config setting no authorized_keys option replaces (see `line`).
const STREAM_LOCAL_ADVICE: &str = "AllowStreamLocalForwarding no";

/// The key each line is for: one new key for every hop, or each hop's own identity.
enum Keys {
    New(PathBuf, PublicKey),
    Identities(Vec<(PathBuf, PublicKey)>),
}

impl Keys {
    fn for_hop(&self, index: usize) -> Option<&PublicKey> {
        match self {
            Keys::New(_, key) => Some(key),
            Keys::Identities(keys) => keys.get(index).map(|(_, key)| key),
        }
    }
}

pub(super) fn run(args: AuthorizeArgs) -> Result<u8> {
    let env = ProcessEnv;
    let plan = resolve::plan(&args.tunnel(), &env)?;
    let name = plan.name.as_deref().map(checked_name).transpose()?;
    let comment = match name {
        Some(name) => format!("sqltun:{name}"),
        None => "sqltun".to_string(),
    };
    // Every value is checked before a new key is written: a refused line leaves nothing behind.
    let permits = permits(&plan)?;
    let keys = match &args.new_key {
        Some(given) => {
            let path = new_key_path(given.as_deref(), name, &env)?;
            let public = create_key(&path, &comment)?;
            Keys::New(path, public)
        }
        None => Keys::Identities(
            plan.hops
                .iter()
                .enumerate()
                .map(|(i, hop)| hop_identity(hop, &HopLabel::new(&plan, i)))
                .collect::<Result<_>>()?,
        ),
    };
    let mut text = String::new();
    for (i, permits) in permits.iter().enumerate() {
        let key = keys.for_hop(i).ok_or_else(|| Error::internal("a hop without a key"))?;
        let line = line::line(permits, key, &comment)
            .map_err(|e| Error::usage(format!("{}: {e}", HopLabel::new(&plan, i))))?;
        text.push_str(&line);
        text.push('\n');
    }
    output::data(&text)?;
    if !args.verbosity.quiet {
        explain(&plan, &permits, &keys, name);
    }
    Ok(0)
}

/// A tunnel name as it goes into a key file's name and the line's comment: letters, digits, `.`, `-`,
/// `_`, not starting with `.` or `-`.
fn checked_name(name: &str) -> Result<&str> {
    let fits = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if fits {
        Ok(name)
    } else {
        Err(Error::usage(format!(
            "the tunnel name `{}` cannot go into a key file name or an authorized_keys comment: use letters, digits, `.`, `-` and `_`",
            printable(name)
        )))
    }
}

/// Where each hop lets the key go: the next hop as sqltun asks this one to connect to it (its host and
/// port exactly as sent in the direct-tcpip request), or, for the last hop, every target.
fn destinations(plan: &TunnelPlan) -> Vec<Vec<Target>> {
    let mut all: Vec<Vec<Target>> = plan
        .hops
        .windows(2)
        .map(|pair| {
            vec![Target {
                host: pair[1].host.clone(),
                port: pair[1].port,
            }]
        })
        .collect();
    all.push(plan.forwards.iter().map(|f| f.target.clone()).collect());
    all
}

/// Each hop's `permitopen` values, checked; an error names the hop or target whose host cannot be
/// written into a line.
fn permits(plan: &TunnelPlan) -> Result<Vec<Vec<String>>> {
    let last = plan.hops.len().saturating_sub(1);
    destinations(plan)
        .iter()
        .enumerate()
        .map(|(i, targets)| {
            targets
                .iter()
                .map(|target| {
                    line::permit_open(target).map_err(|e| {
                        let what = if i < last {
                            format!("{}: the next hop's host", HopLabel::new(plan, i + 1))
                        } else {
                            "--db".to_string()
                        };
                        Error::usage(format!("{what}: {e}"))
                    })
                })
                .collect()
        })
        .collect()
}

/// The identity the hop offers first (the first of its identity files that exists, as authentication
/// tries them) and its public half, read without a passphrase.
fn hop_identity(hop: &Hop, label: &HopLabel) -> Result<(PathBuf, PublicKey)> {
    if !hop.auth.pubkey {
        return Err(Error::usage(format!(
            "{label}: public-key authentication is off for it (PubkeyAuthentication no), so no authorized_keys line can let sqltun in"
        )));
    }
    let Some(path) = hop.auth.identities.iter().find(|p| p.exists()) else {
        let tried = hop
            .auth
            .identities
            .iter()
            .map(|p| printable(&p.display().to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::usage(format!(
            "{label}: no identity file exists (looked for {tried}); give one with -i FILE, or create a key for this tunnel with --new-key"
        )));
    };
    match keys::public_key_of(path) {
        Ok(public) => Ok((path.clone(), public)),
        Err(KeyError::NeedsPassphrase { .. }) => {
            let shown = printable(&path.display().to_string());
            let quoted = shell_word(&path.display().to_string());
            let pub_quoted = shell_word(&keys::public_path(path).display().to_string());
            Err(Error::usage(format!(
                "{label}: {shown} is encrypted, keeps no public half in clear, and has no .pub beside it: write one with `ssh-keygen -y -f {quoted} > {pub_quoted}`, or create a key for this tunnel with --new-key"
            )))
        }
        Err(e) => Err(Error::usage(format!("{label}: {}", e.describe(path)))),
    }
}

/// `--new-key=PATH`, or `~/.ssh/sqltun_NAME_ed25519` (`sqltun_ed25519` for an unnamed tunnel), whose
/// `~/.ssh` is created (mode 0700) when missing, as ssh-keygen does. Absolute, for the advice to use it.
fn new_key_path(given: Option<&Path>, name: Option<&str>, env: &dyn Environment) -> Result<PathBuf> {
    let path = match given {
        Some(path) if path.as_os_str().is_empty() => return Err(Error::usage("--new-key=: the path is empty")),
        Some(path) => path.to_path_buf(),
        None => {
            let home = env
                .home()
                .ok_or_else(|| Error::usage("no home directory for ~/.ssh: give the key's path with --new-key=PATH"))?;
            let dir = home.join(".ssh");
            if std::fs::symlink_metadata(&dir).is_err() {
                use std::os::unix::fs::DirBuilderExt as _;
                std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| {
                    Error::usage(format!("cannot create {}: {e}", printable(&dir.display().to_string())))
                })?;
            }
            dir.join(match name {
                Some(name) => format!("sqltun_{name}_ed25519"),
                None => "sqltun_ed25519".to_string(),
            })
        }
    };
    std::path::absolute(&path)
        .map_err(|e| Error::usage(format!("--new-key: {}: {e}", printable(&path.display().to_string()))))
}

/// Write the new key pair; an existing file is never replaced.
fn create_key(path: &Path, comment: &str) -> Result<PublicKey> {
    keys::create_ed25519(path, comment).map_err(|e| match e {
        CreateError::Exists(at) => Error::usage(format!(
            "{} already exists and sqltun never overwrites a key: give another path with --new-key=PATH, or remove it first",
            printable(&at.display().to_string())
        )),
        CreateError::Io(at, e) => Error::usage(format!(
            "cannot create the key file {}: {e}",
            printable(&at.display().to_string())
        )),
        CreateError::Generate(why) => Error::internal(format!("cannot make a new key: {why}")),
    })
}

/// On stderr: which line goes into which hop's authorized_keys, the key to use, and the one sshd_config
/// setting a line cannot replace.
fn explain(plan: &TunnelPlan, permits: &[Vec<String>], keys: &Keys, name: Option<&str>) {
    for (i, (hop, allowed)) in plan.hops.iter().zip(permits).enumerate() {
        let key = match keys {
            Keys::Identities(identities) => identities
                .get(i)
                .map(|(path, _)| format!(" (key {})", printable(&path.display().to_string())))
                .unwrap_or_default(),
            Keys::New(..) => String::new(),
        };
        output::status(
            false,
            &format!(
                "line {}{key}: add it to ~{}/.ssh/authorized_keys on {}; it lets the key forward to {} and nothing else",
                i + 1,
                printable(&hop.user),
                printable(&HopLabel::new(plan, i).to_string()),
                allowed.join(", ")
            ),
        );
    }
    if let Keys::New(path, _) = keys {
        let shown = printable(&path.display().to_string());
        let file_entry = match name {
            Some(name) => format!(
                ", or identity = {} in [tunnels.{name}] of the tunnels file",
                printable(&serde_json::Value::from(path.display().to_string()).to_string())
            ),
            None => String::new(),
        };
        output::status(
            false,
            &format!(
                "new key {shown} (mode 0600, public half in {shown}.pub); connect with -i {}{file_entry}",
                printable(&shell_word(&path.display().to_string()))
            ),
        );
    }
    let users: Vec<&str> = plan.hops.iter().map(|h| h.user.as_str()).collect();
    let match_user = match users.split_first() {
        Some((first, rest)) if rest.iter().all(|u| u == first) => {
            format!("a `Match User {}` block", printable(first))
        }
        _ => "a `Match User` block".to_string(),
    };
    output::status(
        false,
        &format!(
            "also set `{STREAM_LOCAL_ADVICE}` in each server's sshd_config (in {match_user} to leave other users alone): no authorized_keys option stops a key from listening on a Unix socket on the server (ssh -R /path:host:port)"
        ),
    );
}

#[cfg(test)]
mod tests;
