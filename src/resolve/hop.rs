//! One hop from its resolved ssh_config settings: address, user, authentication, host-key policy,
//! timeouts, transport and algorithms.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::secrets::SecretsSource;
use super::ssh_config::{Origin, Resolved};
use crate::dest::Destination;
use crate::env::Environment;
use crate::error::{Error, Result};
use crate::plan::{
    AgentSource, Algorithms, AuthSettings, Hop, HostKeySettings, Lazy, StrictHostKeyChecking, Transport,
};

/// ConnectTimeout when none is given: long enough for a slow bastion, short enough for CI.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// ServerAliveInterval × ServerAliveCountMax defaults: a dead session is noticed within 45 s.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

pub const DEFAULT_KEEPALIVE_MAX: u32 = 3;

/// One hop from its resolved settings. The resolution already applied the one precedence rule (see the
/// module docs): everything here comes from `r`, so `config` prints exactly what connecting uses.
#[allow(clippy::too_many_arguments)]
pub(super) fn hop_from(
    dest: &Destination,
    r: &Resolved,
    env: &dyn Environment,
    home: Option<&Path>,
    secrets: &impl SecretsSource,
    index: usize,
    count: usize,
) -> Result<Hop> {
    let host = r.get("hostname").unwrap_or(&dest.host).to_string();
    let port = match r.get("port") {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| Error::usage(format!("{}Port {p}: not a port number (1-65535)", at(r, "port"))))?,
        None => 22,
    };
    let user = r.get("user").map_or_else(|| env.local_user(), String::from);
    let auth = auth_settings(r, env, home, secrets, index + 1, count)?;
    let host_keys = host_key_settings(r, home)?;
    let connect_timeout = match seconds(r, "connecttimeout")? {
        Some(d) if d.is_zero() => DEFAULT_CONNECT_TIMEOUT,
        Some(d) => d,
        None => DEFAULT_CONNECT_TIMEOUT,
    };
    let (keepalive_interval, keepalive_max) = keepalive(r)?;
    let name = if count > 1 || dest.original != host {
        dest.original.clone()
    } else {
        String::new()
    };
    Ok(Hop {
        name,
        host,
        port,
        user,
        auth,
        host_keys,
        connect_timeout,
        keepalive_interval,
        keepalive_max,
        transport: transport(r),
        algorithms: algorithms(r),
    })
}

/// `path:line: ` of the file line that set `key`, to start a message with; empty when no file did.
pub(super) fn at(r: &Resolved, key: &str) -> String {
    match r.origin(key) {
        Some(Origin::File { path, line }) => format!("{}:{line}: ", path.display()),
        _ => String::new(),
    }
}

/// A yes/no directive, `default` when unset.
pub(super) fn yes(r: &Resolved, key: &str, default: bool) -> bool {
    match r.get(key) {
        Some(v) => matches!(v, "yes" | "true"),
        None => default,
    }
}

/// How the hop authenticates: identities, agent, the methods allowed and the secrets meant for this hop
/// (`hop_number` counts from 1, `count` is the chain's length; see [`SecretsSource`]).
pub(super) fn auth_settings(
    r: &Resolved,
    env: &dyn Environment,
    home: Option<&Path>,
    secrets: &impl SecretsSource,
    hop_number: usize,
    count: usize,
) -> Result<AuthSettings> {
    let password = secrets.password(env, hop_number, count);
    let passphrase = secrets.passphrase(env, hop_number, count);
    let totp = match secrets.totp(env, hop_number, count) {
        Some((Lazy::Ready(secret), from)) => Some((
            Lazy::Ready(crate::totp::Totp::parse(&secret).map_err(|e| Error::usage(format!("{from}: {e}")))?),
            from,
        )),
        Some((Lazy::Command(command), from)) => Some((Lazy::Command(command), from)),
        None => None,
    };
    let paths = |key: &str| -> Vec<PathBuf> { r.all(key).iter().map(|p| expand_tilde(Path::new(p), home)).collect() };
    Ok(AuthSettings {
        identities: paths("identityfile"),
        identities_explicit: !matches!(r.origin("identityfile"), None | Some(Origin::Default)),
        identities_only: yes(r, "identitiesonly", false),
        agent: agent_source(r, env, home),
        // `unbound` and `host-bound` are both "on" (OpenSSH 8.9+); only no/false turns it off.
        pubkey: !matches!(r.get("pubkeyauthentication"), Some("no" | "false")),
        password: yes(r, "passwordauthentication", true),
        password_source: password.as_ref().map(|(_, from)| from.clone()),
        password_secret: password.map(|(s, _)| s),
        keyboard_interactive: yes(r, "kbdinteractiveauthentication", true),
        password_prompts: r
            .get("numberofpasswordprompts")
            .and_then(|n| n.parse().ok())
            .unwrap_or(3),
        preferred: r
            .get("preferredauthentications")
            .map(|v| v.split(',').map(|m| m.trim().to_lowercase()).collect()),
        certificates: paths("certificatefile"),
        passphrase_source: passphrase.as_ref().map(|(_, from)| from.clone()),
        totp,
        passphrase: passphrase.map(|(s, _)| s),
    })
}

/// `IdentityAgent`: none, `SSH_AUTH_SOCK` (the default), another `$VARIABLE`, or a socket path.
pub(super) fn agent_source(r: &Resolved, env: &dyn Environment, home: Option<&Path>) -> AgentSource {
    match r.get("identityagent") {
        Some(v) if v.eq_ignore_ascii_case("none") => AgentSource::None,
        Some("SSH_AUTH_SOCK") | None => env
            .var("SSH_AUTH_SOCK")
            .map_or(AgentSource::None, |s| AgentSource::Socket(s.into())),
        Some(v) => match v.strip_prefix('$') {
            Some(var) => env
                .var(var)
                .map_or(AgentSource::None, |s| AgentSource::Socket(s.into())),
            None => AgentSource::Socket(expand_tilde(Path::new(v), home)),
        },
    }
}

/// How the hop's host key is checked: the strictness, the known_hosts files, the alias to look up.
pub(super) fn host_key_settings(r: &Resolved, home: Option<&Path>) -> Result<HostKeySettings> {
    let strict = match r.get("stricthostkeychecking").map(|v| v.to_ascii_lowercase()) {
        None => StrictHostKeyChecking::Ask,
        Some(v) => match v.as_str() {
            "yes" | "true" => StrictHostKeyChecking::Yes,
            "ask" => StrictHostKeyChecking::Ask,
            "accept-new" => StrictHostKeyChecking::AcceptNew,
            "no" | "off" | "false" => StrictHostKeyChecking::No,
            other => {
                return Err(Error::usage(format!(
                    "{}StrictHostKeyChecking {other}: expected yes, ask, accept-new or no",
                    at(r, "stricthostkeychecking")
                )));
            }
        },
    };
    let files = |key: &str| -> Option<Vec<PathBuf>> {
        let all = r.all(key);
        (!all.is_empty()).then(|| {
            // One file per value. `UserKnownHostsFile none` (as ssh_config writes "no file"): nothing read,
            // nothing recorded.
            all.iter()
                .filter(|f| !f.eq_ignore_ascii_case("none"))
                .map(|f| expand_tilde(Path::new(f), home))
                .collect()
        })
    };
    Ok(HostKeySettings {
        strict,
        user_known_hosts: files("userknownhostsfile").unwrap_or_else(|| {
            home.map(|h| vec![h.join(".ssh/known_hosts"), h.join(".ssh/known_hosts2")])
                .unwrap_or_default()
        }),
        global_known_hosts: files("globalknownhostsfile")
            .unwrap_or_else(|| vec!["/etc/ssh/ssh_known_hosts".into(), "/etc/ssh/ssh_known_hosts2".into()]),
        alias: r
            .get("hostkeyalias")
            .filter(|a| !a.eq_ignore_ascii_case("none"))
            .map(String::from),
        hash_known_hosts: yes(r, "hashknownhosts", false),
    })
}

/// A directive in whole seconds; `none` and unset are `None`.
pub(super) fn seconds(r: &Resolved, key: &str) -> Result<Option<Duration>> {
    match r.get(key) {
        None | Some("none") => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(|s| Some(Duration::from_secs(s)))
            .map_err(|_| Error::usage(format!("{}{key} {v}: expected a whole number of seconds", at(r, key)))),
    }
}

/// ServerAliveInterval (sqltun's default unless one is set; 0 turns it off) and ServerAliveCountMax.
pub(super) fn keepalive(r: &Resolved) -> Result<(Option<Duration>, u32)> {
    let interval = match (r.origin("serveraliveinterval"), seconds(r, "serveraliveinterval")?) {
        (None | Some(Origin::Default), _) | (_, None) => Some(DEFAULT_KEEPALIVE_INTERVAL),
        (_, Some(d)) if d.is_zero() => None,
        (_, Some(d)) => Some(d),
    };
    let max = match r.get("serveralivecountmax") {
        None => DEFAULT_KEEPALIVE_MAX,
        Some(v) => v.parse::<u32>().map_err(|_| {
            Error::usage(format!(
                "{}ServerAliveCountMax {v}: expected a whole number",
                at(r, "serveralivecountmax")
            ))
        })?,
    };
    Ok((interval, max))
}

/// ProxyJump wins over ProxyCommand (as OpenSSH); chain expansion already consumed ProxyJump.
pub(super) fn transport(r: &Resolved) -> Transport {
    match (r.get("proxyjump"), r.get("proxycommand")) {
        (Some(pj), _) if !pj.eq_ignore_ascii_case("none") => Transport::Direct,
        (_, Some(cmd)) if !cmd.eq_ignore_ascii_case("none") => Transport::ProxyCommand(cmd.to_string()),
        _ => Transport::Direct,
    }
}

/// The algorithm lists set anywhere but OpenSSH's defaults (those leave russh's own preference).
pub(super) fn algorithms(r: &Resolved) -> Algorithms {
    let list = |key: &str| -> Option<Vec<String>> {
        match r.origin(key) {
            None | Some(Origin::Default) => None,
            _ => r.get(key).map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
        }
    };
    Algorithms {
        ciphers: list("ciphers"),
        kex: list("kexalgorithms"),
        host_key: list("hostkeyalgorithms"),
        macs: list("macs"),
        compression: yes(r, "compression", false),
    }
}

pub(super) fn expand_tilde(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}
