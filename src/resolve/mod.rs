//! Flags + ssh_config + environment → a [`TunnelPlan`].
//!
//! Each hop is resolved through ssh_config like `ssh -G` would ([`ssh_config`]), the jump list is
//! expanded recursively ([`chain`]), and every hop's settings come from that resolution alone
//! ([`resolve_chain`], used by `connect`, `exec`, `check` and `config`), so the one precedence rule is
//! OpenSSH's: `-o` beats `user@host:port`, which beats the config file, which beats the default; the
//! first value obtained wins. `-o` directives that say where to connect ([`WHERE_DIRECTIVES`]) apply to
//! the destination only; all others, `-i` and `--known-hosts` apply to every hop.
//!
//! Parts: [`ssh_config`] (OpenSSH's evaluator), [`chain`] (jump lists), [`tunnels`] (the tunnels file),
//! `secrets` (where each hop's secrets come from), `hop` (one hop from its resolved settings), `report`
//! (`config --json`).

pub mod chain;
mod hop;
mod report;
mod secrets;
pub mod ssh_config;
pub mod tunnels;

use std::path::{Path, PathBuf};

use crate::cli::{DbArg, SshArgs, TunnelArgs};
use crate::dest::Destination;
use crate::env::Environment;
use crate::error::{Error, Result};
use crate::plan::{Forward, Hop, Lifecycle, OutputFormat, Reconnect, TunnelPlan};
use chain::Role;
pub use report::{chain_json, tunnel_json};
use ssh_config::{Directive, Origin, Resolved, Setting};
use tunnels::Saved;

pub use hop::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_MAX};
use hop::{expand_tilde, hop_from};
use secrets::secrets;
pub use secrets::{HopSecret, NoSecrets, SecretsSource};

/// One hop as resolved: what the user named, what ssh_config says about it, and the hop built from it.
#[derive(Debug, Clone)]
pub struct ResolvedHop {
    pub dest: Destination,
    pub resolved: Resolved,
    pub hop: Hop,
}

impl ResolvedHop {
    /// The settings with the values sqltun applies where its defaults differ from OpenSSH's:
    /// `ConnectTimeout` (15 s, not none) and `ServerAliveInterval` (15 s, not 0).
    pub fn effective(&self) -> Resolved {
        let mut effective = self.resolved.clone();
        for (key, value) in [
            ("connecttimeout", self.hop.connect_timeout.as_secs()),
            (
                "serveraliveinterval",
                self.hop.keepalive_interval.map_or(0, |d| d.as_secs()),
            ),
        ] {
            if let Some(setting) = effective.settings.get_mut(key) {
                *setting = ssh_config::Setting::new(vec![value.to_string()], setting.origin.clone());
            }
        }
        effective
    }

    /// Tell (at `-v`) which directives that apply to this hop sqltun does not use.
    pub fn log_unused(&self) {
        for (directive, origin) in &self.resolved.unsupported {
            tracing::info!(
                "{}: {directive} is not used by sqltun ({})",
                self.dest.original,
                origin.describe()
            );
        }
    }

    /// The honoured directives in `ssh -G`'s format, as sqltun applies them ([`Self::effective`]).
    pub fn to_ssh_g(&self) -> String {
        self.effective().to_ssh_g()
    }
}

/// The `Host` aliases of the ssh config that `ssh` (`-F`) names: every pattern without a wildcard or
/// negation, once each, in the order read (`Include`d files too). For shell completion of `--ssh`.
pub fn host_aliases(ssh: &SshArgs, env: &dyn Environment) -> Result<Vec<String>> {
    let local = local_facts(env, env.home());
    let choice = config_choice(ssh);
    let mut aliases: Vec<String> = Vec::new();
    for pattern in ssh_config::host_patterns(choice, &local)? {
        if !pattern.contains(['*', '?', '!']) && !aliases.contains(&pattern) {
            aliases.push(pattern);
        }
    }
    Ok(aliases)
}

/// The loopback address tunnels listen on when neither a flag nor the tunnels file says otherwise.
pub const DEFAULT_BIND: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Build the plan for `connect`. Reads only what `env` offers (variables, files, the home dir).
pub fn plan(args: &TunnelArgs, env: &dyn Environment) -> Result<TunnelPlan> {
    let saved = saved_tunnel(args, env)?;
    let args = &with_saved(args, saved.as_ref());
    let bind = args.bind.unwrap_or(DEFAULT_BIND);
    if !bind.is_loopback() && !args.expose_to_network {
        let from = match (&saved, args.bind) {
            (Some(s), Some(_)) if s.bind.is_some() => format!("bind = \"{bind}\" ({})", s.file.display()),
            _ => format!("--bind {bind}"),
        };
        return Err(Error::usage(format!(
            "{from} is not a loopback address: anyone who can reach it reaches the database; add --expose-to-network if that is what you want"
        )));
    }
    if args.ssh_url.is_some() && (args.ssh.is_some() || !args.db.is_empty()) {
        return Err(Error::usage(
            "the URL says where to go by itself: give either the URL or --ssh and --db, not both",
        ));
    }
    // A `+ssh` URL stands for --ssh and one --db, and may say how to authenticate.
    let ssh_url = match &args.ssh_url {
        Some(text) => Some(crate::db::parse_ssh_url(text).map_err(Error::usage)?),
        None => None,
    };
    let (dest, dbs): (Destination, Vec<DbArg>) = match (&ssh_url, &args.ssh) {
        (Some(u), _) => (u.ssh.clone(), vec![DbArg::Url(u.db.clone())]),
        (None, Some(dest)) => (dest.clone(), args.db.clone()),
        (None, None) => {
            return Err(Error::usage(match &saved {
                Some(s) => format!(
                    "{} has no ssh destination: add ssh = \"[user@]host\" to it, or give --ssh",
                    s.describe()
                ),
                None => {
                    "give --ssh DEST and --db TARGET, a saved tunnel's NAME, or one postgres+ssh:// style URL".into()
                }
            }));
        }
    };
    if dbs.is_empty() {
        return Err(Error::usage(match &saved {
            Some(s) => format!(
                "{} has no database target: add db = \"host:port\" to it, or give --db",
                s.describe()
            ),
            None => "give at least one --db TARGET".into(),
        }));
    }
    let forwards = forwards(&dbs, &args.local_port)?;
    warn_about_urls(ssh_url.as_ref(), &dbs);
    let ssh_args = with_url_switches(&args.ssh_args, ssh_url.as_ref());
    let secrets = secrets(args, env)?;
    let hops = resolve_chain(&dest, &ssh_args, saved.as_ref(), env, &secrets)?;
    hops.iter().for_each(ResolvedHop::log_unused);
    let batch = args.batch || hops.last().is_some_and(|h| h.resolved.get("batchmode") == Some("yes"));
    Ok(TunnelPlan {
        name: args.name.clone(),
        hops: hops.into_iter().map(|h| h.hop).collect(),
        forwards,
        bind,
        output: args.output.unwrap_or(OutputFormat::Port),
        interactive: !batch && env.is_terminal(),
        lifecycle: lifecycle(args),
    })
}

/// The saved tunnel the command line names, if it names one.
pub fn saved_tunnel(args: &TunnelArgs, env: &dyn Environment) -> Result<Option<Saved>> {
    match &args.name {
        Some(name) => tunnels::find(name, args.tunnels_file.as_deref(), env).map(Some),
        None => Ok(None),
    }
}

/// The command line over the saved tunnel: a flag given wins, the file fills in what no flag says.
/// `local_port` pairs with `db`, so the file's ports apply only with the file's targets. The SSH settings
/// (`jump`, `identity`, `options`, `known_hosts`, `ssh_config`) are merged where each hop is resolved
/// ([`resolve_chain`]), so their origins are kept.
fn with_saved(args: &TunnelArgs, saved: Option<&Saved>) -> TunnelArgs {
    let Some(saved) = saved else {
        return args.clone();
    };
    let mut merged = args.clone();
    if merged.ssh.is_none() {
        merged.ssh = saved.ssh.as_ref().map(|s| s.value.clone());
    }
    if merged.db.is_empty()
        && let Some(db) = &saved.db
    {
        merged.db = db.value.clone();
        if merged.local_port.is_empty() {
            merged.local_port = saved.local_port.as_ref().map(|p| p.value.clone()).unwrap_or_default();
        }
    }
    merged.bind = merged.bind.or(saved.bind.as_ref().map(|b| b.value));
    merged.output = merged.output.or(saved.output.as_ref().map(|o| o.value));
    merged.idle_timeout = merged.idle_timeout.or(saved.idle_timeout.as_ref().map(|d| d.value));
    merged.max_lifetime = merged.max_lifetime.or(saved.max_lifetime.as_ref().map(|d| d.value));
    let command = |ours: &Option<Vec<String>>, file: &Option<tunnels::Sourced<Vec<String>>>| {
        ours.clone().or_else(|| file.as_ref().map(|c| c.value.clone()))
    };
    merged.password_command = command(&args.password_command, &saved.password_command);
    merged.passphrase_command = command(&args.passphrase_command, &saved.passphrase_command);
    merged.totp_command = command(&args.totp_command, &saved.totp_command);
    merged
}

/// One forward per --db, each with its --local-port (given in the same order; 0 lets the OS choose).
fn forwards(dbs: &[DbArg], local_ports: &[u16]) -> Result<Vec<Forward>> {
    if local_ports.len() > dbs.len() {
        return Err(Error::usage(format!(
            "{} --local-port values for {} --db targets; give at most one --local-port per --db, in the same order",
            local_ports.len(),
            dbs.len()
        )));
    }
    Ok(dbs
        .iter()
        .enumerate()
        .map(|(i, db)| {
            let (target, url) = match db {
                DbArg::Target(t) => (t.clone(), None),
                DbArg::Url(u) => (u.target(), Some(u.clone())),
            };
            Forward {
                target,
                local_port: local_ports.get(i).copied().unwrap_or(0),
                url,
            }
        })
        .collect())
}

/// Say what of the URLs is not used, and warn about a password on the command line.
fn warn_about_urls(ssh_url: Option<&crate::db::SshUrl>, dbs: &[DbArg]) {
    if let Some(u) = ssh_url
        && !u.ignored_params.is_empty()
    {
        tracing::info!(
            "ignored display-only parameters of the URL: {}",
            u.ignored_params.join(", ")
        );
    }
    for db in dbs {
        if let DbArg::Url(u) = db
            && u.password.is_some()
        {
            tracing::warn!(
                "the --db URL {u} carries a password, which other users of this machine can read in the process list; prefer the client's own secret store (~/.pgpass, PGPASSWORD, ~/.my.cnf)"
            );
        }
    }
}

/// The SSH flags with the `+ssh` URL's own switches (agent, private key) put first, so they win like -o,
/// as the URL is the whole connection.
fn with_url_switches(ssh_args: &SshArgs, ssh_url: Option<&crate::db::SshUrl>) -> SshArgs {
    let mut ssh_args = ssh_args.clone();
    if let Some(u) = ssh_url {
        let mut from_url = Vec::new();
        if let Some(socket) = &u.agent_socket {
            from_url.push(("IdentityAgent".to_string(), socket.display().to_string()));
        } else if u.use_agent == Some(false) {
            from_url.push(("IdentityAgent".to_string(), "none".to_string()));
        }
        if u.use_private_key == Some(false) {
            from_url.push(("IdentityFile".to_string(), "none".to_string()));
        }
        from_url.extend(ssh_args.options);
        ssh_args.options = from_url;
    }
    ssh_args
}

/// The lifecycle policy the flags ask for.
fn lifecycle(args: &TunnelArgs) -> Lifecycle {
    Lifecycle {
        reconnect: (!args.no_reconnect).then(|| Reconnect {
            give_up_after: args.reconnect_timeout.unwrap_or(Reconnect::DEFAULT.give_up_after),
            ..Reconnect::DEFAULT
        }),
        idle_timeout: args.idle_timeout,
        max_lifetime: args.max_lifetime,
        pid_file: args.pid_file.clone(),
        background: args.background,
        log_file: args.log_file.clone(),
        unix_socket: args.unix_socket.clone(),
    }
}

/// Resolve `dest` and its jump hosts into hops in dialling order (used by `connect` and `config`).
pub fn resolve_chain(
    dest: &Destination,
    ssh: &SshArgs,
    saved: Option<&Saved>,
    env: &dyn Environment,
    secrets_in: &impl SecretsSource,
) -> Result<Vec<ResolvedHop>> {
    let home = env.home();
    let local = local_facts(env, home.clone());
    let from_file = |line: usize| -> Origin {
        Origin::File {
            path: saved.map(|s| s.file.clone()).unwrap_or_default(),
            line,
        }
    };
    // A flag wins over the saved tunnel's value, keeping the origin of the one taken.
    let mut ssh = ssh.clone();
    let mut jump_origin = Origin::CommandLine;
    let mut known_hosts_origin = Origin::CommandLine;
    if let Some(saved) = saved {
        if ssh.jump.is_none()
            && let Some(j) = &saved.jump
        {
            ssh.jump = Some(j.value.clone());
            jump_origin = from_file(j.line);
        }
        if ssh.known_hosts.is_none()
            && let Some(k) = &saved.known_hosts
        {
            ssh.known_hosts = Some(k.value.clone());
            known_hosts_origin = from_file(k.line);
        }
        if ssh.ssh_config.is_none() {
            ssh.ssh_config = saved.ssh_config.as_ref().map(|c| c.value.clone());
        }
    }
    let ssh = &ssh;
    let choice = config_choice(ssh);
    let (for_destination, for_jumps) = command_line_directives(ssh, saved);
    let known_hosts = ssh.known_hosts.as_deref().map(|f| expand_tilde(f, home.as_deref()));
    let lookup = |d: &Destination, role: Role, jumps: Option<&[Destination]>| -> Result<Resolved> {
        let mut options = match role {
            Role::Destination => for_destination.clone(),
            Role::Jump => for_jumps.clone(),
        };
        if jumps.is_some() {
            // As `ssh -J`: a jump list given from outside replaces ProxyJump and turns ProxyCommand off,
            // so neither is taken from anywhere else.
            options.insert(0, Directive::flag("ProxyJump", "none"));
            options.insert(1, Directive::flag("ProxyCommand", "none"));
        }
        let query = ssh_config::Query {
            host: &d.host,
            user: d.user.as_deref(),
            port: d.port,
            options: &options,
            config: choice,
        };
        let mut resolved = ssh_config::resolve_with_env(&query, &local, &|k| env.var(k))?;
        refuse_unsafe_to_ignore(&resolved)?;
        if let Some(jumps) = jumps.filter(|j| !j.is_empty()) {
            // The list as `ssh -G -J` prints it; the chain itself is built from `jumps`, already parsed.
            let text = jumps.iter().map(|j| j.original.as_str()).collect::<Vec<_>>().join(",");
            resolved
                .settings
                .insert("proxyjump".into(), Setting::new(vec![text], jump_origin.clone()));
        }
        if let Some(file) = &known_hosts {
            // --known-hosts is the one file to read and record keys in, whatever the config says.
            let file = file.display().to_string();
            resolved.settings.insert(
                "userknownhostsfile".into(),
                Setting::new(vec![file], known_hosts_origin.clone()),
            );
        }
        Ok(resolved)
    };
    let expanded = chain::expand(dest, ssh.jump.as_ref().map(|j| j.0.as_slice()), &lookup)?;
    let count = expanded.len();
    expanded
        .into_iter()
        .enumerate()
        .map(|(index, (d, resolved))| {
            let hop = hop_from(&d, &resolved, env, home.as_deref(), secrets_in, index, count)?;
            Ok(ResolvedHop { dest: d, resolved, hop })
        })
        .collect()
}

/// What ssh_config's tokens and `Match localuser` need to know about this machine.
fn local_facts(env: &dyn Environment, home: Option<PathBuf>) -> ssh_config::Local {
    ssh_config::Local {
        user: env.local_user(),
        home: home.unwrap_or_else(|| PathBuf::from("/")),
        hostname: env.local_hostname(),
        uid: env.uid(),
    }
}

/// The config file `-F` names: none, a file, or the default ones.
fn config_choice(ssh: &SshArgs) -> ssh_config::ConfigChoice<'_> {
    match ssh.ssh_config.as_deref() {
        None => ssh_config::ConfigChoice::Default,
        Some(p) if p == Path::new("none") => ssh_config::ConfigChoice::None,
        Some(p) => ssh_config::ConfigChoice::File(p),
    }
}

type Directives = Vec<Directive>;

/// `-i` and `-o` (then the saved tunnel's `identity` and `options`) as directives, for the destination
/// and for the jump hosts. Flags come first, so they win (the first value obtained is kept); `-i` replaces
/// the file's `identity` rather than adding to it. Identities and the directives that say how to connect
/// apply to every hop (OpenSSH hands none of them to the jump hosts; for a tunnel through bastions the same
/// key and policy are nearly always meant for the whole chain). Those that say where to connect apply to
/// the destination only, as in ssh.
fn command_line_directives(ssh: &SshArgs, saved: Option<&Saved>) -> (Directives, Directives) {
    let file_origin = |line: usize| Origin::File {
        path: saved.map(|s| s.file.clone()).unwrap_or_default(),
        line,
    };
    let mut for_destination: Directives = ssh
        .identity
        .iter()
        .map(|p| Directive::flag("IdentityFile", &p.display().to_string()))
        .collect();
    if let Some(identity) = saved
        .and_then(|s| s.identity.as_ref())
        .filter(|_| ssh.identity.is_empty())
    {
        for_destination.extend(identity.value.iter().map(|p| Directive {
            keyword: "IdentityFile".into(),
            value: p.display().to_string(),
            origin: file_origin(identity.line),
        }));
    }
    for_destination.extend(ssh.options.iter().map(|(k, v)| Directive::flag(k, v)));
    for_destination.extend(saved.iter().flat_map(|s| &s.options).map(|o| Directive {
        keyword: o.value.0.clone(),
        value: o.value.1.clone(),
        origin: file_origin(o.line),
    }));
    let for_jumps = for_destination
        .iter()
        .filter(|d| !says_where(&d.keyword))
        .cloned()
        .collect();
    (for_destination, for_jumps)
}

/// The `-o` directives that say where to connect: as in `ssh`, they apply to the destination only.
/// Every other directive (identities, known_hosts, strictness, algorithms, timeouts, keepalive, agent,
/// authentication methods, …) says how to connect and applies to every hop, as `-i` and `--known-hosts` do.
pub const WHERE_DIRECTIVES: [&str; 6] = ["HostName", "User", "Port", "ProxyJump", "ProxyCommand", "HostKeyAlias"];

/// Whether `-o KEY=…` says where to connect (keywords are case-insensitive, as in ssh_config).
fn says_where(key: &str) -> bool {
    WHERE_DIRECTIVES.iter().any(|d| d.eq_ignore_ascii_case(key))
}

/// Directives whose silent omission would weaken host-key checking are refused, not ignored.
fn refuse_unsafe_to_ignore(r: &Resolved) -> Result<()> {
    for (directive, origin) in &r.unsupported {
        let lower = directive.to_ascii_lowercase();
        if matches!(lower.as_str(), "revokedhostkeys" | "knownhostscommand") {
            let at = match origin {
                Origin::File { path, line } => format!("{}:{line}: ", path.display()),
                _ => String::new(),
            };
            return Err(Error::usage(format!(
                "{at}{directive} is not supported by sqltun, and ignoring it could accept a host key it rejects; remove it for this host or list the keys in known_hosts (@revoked lines are honoured)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod config_agrees;
#[cfg(test)]
mod tests;
