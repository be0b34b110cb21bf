//! Flags + `-o` directives + environment → a [`TunnelPlan`]. One precedence rule (flag > `-o` > default)
//! lives in [`settings`]; errors name the flag or directive at fault.

pub mod dest;
pub mod env;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{OutputArg, TunnelArgs};
use crate::error::{Error, Result};
use crate::plan::{
    AgentSource, AuthSettings, Forward, Hop, HostKeySettings, OutputFormat, StrictHostKeyChecking, TunnelPlan,
};
use crate::secret::Secret;
use env::Environment;

/// ConnectTimeout when none is given: long enough for a slow bastion, short enough for CI.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// ServerAliveInterval × ServerAliveCountMax defaults: a dead session is noticed within 45 s.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
pub const DEFAULT_KEEPALIVE_MAX: u32 = 3;

/// `-o` directives understood so far (case-insensitive, as ssh).
pub const SUPPORTED_OPTIONS: &[&str] = &[
    "BatchMode",
    "ConnectTimeout",
    "GlobalKnownHostsFile",
    "HashKnownHosts",
    "HostKeyAlias",
    "IdentitiesOnly",
    "IdentityAgent",
    "IdentityFile",
    "PasswordAuthentication",
    "Port",
    "PubkeyAuthentication",
    "ServerAliveCountMax",
    "ServerAliveInterval",
    "StrictHostKeyChecking",
    "User",
    "UserKnownHostsFile",
];

/// `-o` directives after validation, as typed values.
#[derive(Debug, Default, Clone, PartialEq)]
struct Options {
    batch_mode: Option<bool>,
    connect_timeout: Option<Duration>,
    global_known_hosts: Option<Vec<PathBuf>>,
    hash_known_hosts: Option<bool>,
    host_key_alias: Option<String>,
    identities_only: Option<bool>,
    identity_agent: Option<String>,
    identity_files: Vec<PathBuf>,
    password_auth: Option<bool>,
    port: Option<u16>,
    pubkey_auth: Option<bool>,
    keepalive_max: Option<u32>,
    keepalive_interval: Option<Duration>,
    strict: Option<StrictHostKeyChecking>,
    user: Option<String>,
    user_known_hosts: Option<Vec<PathBuf>>,
}

/// Build the plan for `args`. Reads only what `env` offers (variables, secret files, the home dir).
pub fn plan(args: &TunnelArgs, env: &dyn Environment) -> Result<TunnelPlan> {
    let home = env.home();
    let opts = parse_options(&args.options, home.as_deref())?;

    if !args.bind.is_loopback() && !args.expose_to_network {
        return Err(Error::usage(format!(
            "--bind {} is not a loopback address: anyone who can reach it reaches the database; add --expose-to-network if that is what you want",
            args.bind
        )));
    }
    if args.local_port.len() > args.db.len() {
        return Err(Error::usage(format!(
            "{} --local-port values for {} --db targets; give at most one --local-port per --db, in the same order",
            args.local_port.len(),
            args.db.len()
        )));
    }
    let forwards = args
        .db
        .iter()
        .enumerate()
        .map(|(i, target)| Forward {
            target: target.clone(),
            local_port: args.local_port.get(i).copied().unwrap_or(0),
        })
        .collect();

    let batch = args.batch || opts.batch_mode.unwrap_or(false);
    let interactive = !batch && env.is_terminal();
    let hop = hop(args, &opts, env, home.as_deref())?;
    Ok(TunnelPlan {
        hops: vec![hop],
        forwards,
        bind: args.bind,
        output: match args.output {
            OutputArg::Port => OutputFormat::Port,
            OutputArg::Addr => OutputFormat::Addr,
        },
        interactive,
    })
}

fn hop(args: &TunnelArgs, opts: &Options, env: &dyn Environment, home: Option<&Path>) -> Result<Hop> {
    let dest = &args.ssh;
    let user = settings(dest.user.clone(), opts.user.clone(), || local_user(env));
    let port = settings(dest.port, opts.port, || 22);

    let mut identities: Vec<PathBuf> = args.identity.iter().map(|p| expand_tilde(p, home)).collect();
    identities.extend(opts.identity_files.iter().cloned());
    let identities_explicit = !identities.is_empty();
    if !identities_explicit {
        if let Some(home) = home {
            identities = crate::ssh::keys::default_identity_paths(home);
        }
    }
    let agent = match opts.identity_agent.as_deref() {
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
    };

    let (password_secret, password_source) = secret_from(
        env,
        args.password_file.as_deref(),
        "SQLTUN_SSH_PASSWORD",
        "--password-file",
    )?;
    let (passphrase, _) = secret_from(
        env,
        args.passphrase_file.as_deref(),
        "SQLTUN_SSH_PASSPHRASE",
        "--passphrase-file",
    )?;

    let user_known_hosts = match (&args.known_hosts, &opts.user_known_hosts) {
        (Some(file), _) => vec![expand_tilde(file, home)],
        (None, Some(files)) => files.clone(),
        (None, None) => home
            .map(|h| vec![h.join(".ssh/known_hosts"), h.join(".ssh/known_hosts2")])
            .unwrap_or_default(),
    };
    let global_known_hosts = opts
        .global_known_hosts
        .clone()
        .unwrap_or_else(|| vec!["/etc/ssh/ssh_known_hosts".into(), "/etc/ssh/ssh_known_hosts2".into()]);

    Ok(Hop {
        name: dest.original.clone(),
        host: dest.host.clone(),
        port,
        user,
        auth: AuthSettings {
            identities,
            identities_explicit,
            identities_only: opts.identities_only.unwrap_or(false),
            agent,
            pubkey: opts.pubkey_auth.unwrap_or(true),
            password: opts.password_auth.unwrap_or(true),
            password_secret,
            password_source,
            passphrase,
        },
        host_keys: HostKeySettings {
            strict: opts.strict.unwrap_or(StrictHostKeyChecking::Ask),
            user_known_hosts,
            global_known_hosts,
            alias: opts.host_key_alias.clone(),
            hash_known_hosts: opts.hash_known_hosts.unwrap_or(false),
        },
        connect_timeout: opts.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        keepalive_interval: match opts.keepalive_interval {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(DEFAULT_KEEPALIVE_INTERVAL),
        },
        keepalive_max: opts.keepalive_max.unwrap_or(DEFAULT_KEEPALIVE_MAX),
    })
}

/// The one precedence rule: what the command line says, else the directive, else the default.
fn settings<T>(flag: Option<T>, directive: Option<T>, default: impl FnOnce() -> T) -> T {
    flag.or(directive).unwrap_or_else(default)
}

fn local_user(env: &dyn Environment) -> String {
    env.var("USER")
        .or_else(|| env.var("LOGNAME"))
        .unwrap_or_else(|| "root".into())
}

/// A secret from its file option, else its environment variable; `(secret, where it came from)`.
fn secret_from(
    env: &dyn Environment,
    file: Option<&Path>,
    var: &str,
    flag: &str,
) -> Result<(Option<Secret>, Option<String>)> {
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
        return Ok((Some(Secret::new(first)), Some(format!("{flag} {}", path.display()))));
    }
    Ok((env.var(var).map(Secret::new), env.var(var).map(|_| var.to_string())))
}

fn expand_tilde(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(Error::usage(format!("-o {key}={value}: expected yes or no"))),
    }
}

fn parse_seconds(key: &str, value: &str) -> Result<Duration> {
    value
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| Error::usage(format!("-o {key}={value}: expected a whole number of seconds")))
}

fn parse_options(options: &[(String, String)], home: Option<&Path>) -> Result<Options> {
    let mut o = Options::default();
    // As ssh: the first value given for a directive wins (IdentityFile accumulates).
    for (key, value) in options {
        let lower = key.to_ascii_lowercase();
        let canonical = SUPPORTED_OPTIONS
            .iter()
            .find(|k| k.to_ascii_lowercase() == lower)
            .ok_or_else(|| {
                Error::usage(format!(
                    "-o {key}: unsupported directive; supported: {}",
                    SUPPORTED_OPTIONS.join(", ")
                ))
            })?;
        let files = || {
            value
                .split_whitespace()
                .map(|f| expand_tilde(Path::new(f), home))
                .collect::<Vec<_>>()
        };
        match *canonical {
            "BatchMode" => set(&mut o.batch_mode, parse_bool(key, value)?),
            "ConnectTimeout" => {
                let d = parse_seconds(key, value)?;
                if d.is_zero() {
                    return Err(Error::usage(format!(
                        "-o {key}={value}: the timeout must be at least 1 second"
                    )));
                }
                set(&mut o.connect_timeout, d)
            }
            "GlobalKnownHostsFile" => set(&mut o.global_known_hosts, files()),
            "HashKnownHosts" => set(&mut o.hash_known_hosts, parse_bool(key, value)?),
            "HostKeyAlias" => set(&mut o.host_key_alias, value.clone()),
            "IdentitiesOnly" => set(&mut o.identities_only, parse_bool(key, value)?),
            "IdentityAgent" => set(&mut o.identity_agent, value.clone()),
            "IdentityFile" => o.identity_files.push(expand_tilde(Path::new(value), home)),
            "PasswordAuthentication" => set(&mut o.password_auth, parse_bool(key, value)?),
            "Port" => set(
                &mut o.port,
                value
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| Error::usage(format!("-o Port={value}: not a port number (1-65535)")))?,
            ),
            "PubkeyAuthentication" => set(&mut o.pubkey_auth, parse_bool(key, value)?),
            "ServerAliveCountMax" => set(
                &mut o.keepalive_max,
                value
                    .parse::<u32>()
                    .map_err(|_| Error::usage(format!("-o {key}={value}: expected a whole number")))?,
            ),
            "ServerAliveInterval" => set(&mut o.keepalive_interval, parse_seconds(key, value)?),
            "StrictHostKeyChecking" => set(
                &mut o.strict,
                match value.to_ascii_lowercase().as_str() {
                    "yes" | "true" => StrictHostKeyChecking::Yes,
                    "ask" => StrictHostKeyChecking::Ask,
                    "accept-new" => StrictHostKeyChecking::AcceptNew,
                    "no" | "off" | "false" => StrictHostKeyChecking::No,
                    _ => {
                        return Err(Error::usage(format!(
                            "-o {key}={value}: expected yes, ask, accept-new or no"
                        )));
                    }
                },
            ),
            "User" => set(&mut o.user, value.clone()),
            "UserKnownHostsFile" => set(&mut o.user_known_hosts, files()),
            _ => {
                return Err(Error::internal(format!(
                    "-o {key}: listed as supported but not handled"
                )));
            }
        }
    }
    Ok(o)
}

fn set<T>(slot: &mut Option<T>, value: T) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

/// Whether `addr` is loopback (the only default-safe place to listen).
pub fn is_loopback(addr: IpAddr) -> bool {
    addr.is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use env::FakeEnv;

    fn args(argv: &[&str]) -> TunnelArgs {
        let mut full = vec!["sqltun", "connect"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).map(|c| c.command) {
            Ok(Command::Connect(c)) => c.tunnel,
            Err(e) => panic!("{e}"),
        }
    }

    fn home_env() -> FakeEnv {
        FakeEnv {
            home: Some("/home/me".into()),
            vars: vec![("USER".into(), "me".into())],
            ..Default::default()
        }
    }

    /// The whole plan for a plain invocation: defaults as documented, nothing surprising.
    #[test]
    fn plain_invocation() {
        let plan = plan(
            &args(&["--ssh", "deploy@bastion:2222", "--db", "10.0.12.7:5432"]),
            &home_env(),
        )
        .unwrap();
        let hop = &plan.hops[0];
        assert_eq!(
            (hop.user.as_str(), hop.host.as_str(), hop.port),
            ("deploy", "bastion", 2222)
        );
        assert_eq!(hop.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(hop.host_keys.strict, StrictHostKeyChecking::Ask);
        assert_eq!(
            hop.host_keys.user_known_hosts[0],
            PathBuf::from("/home/me/.ssh/known_hosts")
        );
        assert!(!hop.auth.identities_explicit);
        assert!(hop.auth.identities.contains(&PathBuf::from("/home/me/.ssh/id_ed25519")));
        assert_eq!(hop.auth.agent, AgentSource::None);
        assert_eq!(
            plan.forwards,
            vec![Forward {
                target: crate::plan::Target {
                    host: "10.0.12.7".into(),
                    port: 5432
                },
                local_port: 0
            }]
        );
        assert!(!plan.interactive);
    }

    /// The destination beats -o, -o beats the default, and the first -o value wins, as in ssh.
    #[test]
    fn precedence() {
        let plan = plan(
            &args(&[
                "--ssh",
                "bastion",
                "--db",
                "db:1",
                "-o",
                "User=a",
                "-o",
                "User=b",
                "-o",
                "Port=2200",
                "-o",
                "ConnectTimeout=3",
            ]),
            &home_env(),
        )
        .unwrap();
        assert_eq!(plan.hops[0].user, "a");
        assert_eq!(plan.hops[0].port, 2200);
        assert_eq!(plan.hops[0].connect_timeout, Duration::from_secs(3));
        let plan = super::plan(
            &args(&["--ssh", "z@bastion:22", "--db", "db:1", "-o", "User=a"]),
            &home_env(),
        )
        .unwrap();
        assert_eq!(plan.hops[0].user, "z");
    }

    /// A non-loopback bind needs the loud opt-in; an unknown -o directive is named with the supported list.
    #[test]
    fn refusals() {
        let e = plan(&args(&["--ssh", "b", "--db", "d:1", "--bind", "0.0.0.0"]), &home_env()).unwrap_err();
        assert!(e.message().contains("--expose-to-network"), "{e}");
        assert!(
            plan(
                &args(&["--ssh", "b", "--db", "d:1", "--bind", "0.0.0.0", "--expose-to-network"]),
                &home_env()
            )
            .is_ok()
        );
        let e = plan(&args(&["--ssh", "b", "--db", "d:1", "-o", "Tunnel=yes"]), &home_env()).unwrap_err();
        assert!(
            e.message().contains("unsupported") && e.message().contains("StrictHostKeyChecking"),
            "{e}"
        );
        let e = plan(
            &args(&["--ssh", "b", "--db", "d:1", "--local-port", "1", "--local-port", "2"]),
            &home_env(),
        )
        .unwrap_err();
        assert!(e.message().contains("--local-port"), "{e}");
    }

    /// Secrets come from files before the environment, and a file's first line is the secret.
    #[test]
    fn secrets() {
        let mut env = home_env();
        env.vars.push(("SQLTUN_SSH_PASSWORD".into(), "from-env".into()));
        env.files.push(("/run/pw".into(), "from-file\nignored\n".into()));
        let p = plan(&args(&["--ssh", "b", "--db", "d:1"]), &env).unwrap();
        assert_eq!(
            p.hops[0].auth.password_secret.as_ref().map(|s| s.expose().to_string()),
            Some("from-env".into())
        );
        let p = plan(
            &args(&["--ssh", "b", "--db", "d:1", "--password-file", "/run/pw"]),
            &env,
        )
        .unwrap();
        assert_eq!(
            p.hops[0].auth.password_secret.as_ref().map(|s| s.expose().to_string()),
            Some("from-file".into())
        );
        let e = plan(&args(&["--ssh", "b", "--db", "d:1", "--password-file", "/nope"]), &env).unwrap_err();
        assert!(e.message().contains("/nope"));
        assert!(!format!("{p:?}").contains("from-file"));
    }

    /// IdentityAgent none/path/$VAR and SSH_AUTH_SOCK all pick the right socket.
    #[test]
    fn agent_sources() {
        let mut env = home_env();
        env.vars.push(("SSH_AUTH_SOCK".into(), "/tmp/agent.sock".into()));
        let p = plan(&args(&["--ssh", "b", "--db", "d:1"]), &env).unwrap();
        assert_eq!(p.hops[0].auth.agent, AgentSource::Socket("/tmp/agent.sock".into()));
        let p = plan(&args(&["--ssh", "b", "--db", "d:1", "-o", "IdentityAgent=none"]), &env).unwrap();
        assert_eq!(p.hops[0].auth.agent, AgentSource::None);
        let p = plan(
            &args(&["--ssh", "b", "--db", "d:1", "-o", "IdentityAgent=~/a.sock"]),
            &env,
        )
        .unwrap();
        assert_eq!(p.hops[0].auth.agent, AgentSource::Socket("/home/me/a.sock".into()));
    }
}
