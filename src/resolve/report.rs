//! Machine-readable descriptions of a resolved chain (for `config --json`).

use serde_json::{Value, json};

use super::ResolvedHop;
use crate::plan::{AgentSource, Transport};

/// Every hop in dialling order with its effective settings and, per ssh_config directive, the value and
/// where it came from.
pub fn chain_json(hops: &[ResolvedHop]) -> Value {
    let hops: Vec<Value> = hops
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let settings: serde_json::Map<String, Value> = h
                .effective()
                .settings
                .iter()
                .map(|(key, s)| {
                    (
                        key.clone(),
                        json!({ "values": s.values, "origin": s.origin.describe() }),
                    )
                })
                .collect();
            let hop = &h.hop;
            json!({
                "index": i + 1,
                "name": h.dest.original,
                "host": hop.host,
                "port": hop.port,
                "user": hop.user,
                "transport": match &hop.transport {
                    Transport::Direct if i == 0 => "tcp".to_string(),
                    Transport::Direct => "channel of the previous hop".to_string(),
                    Transport::ProxyCommand(cmd) => format!("ProxyCommand {cmd}"),
                },
                "identities": hop.auth.identities,
                "agent": match &hop.auth.agent { AgentSource::None => Value::Null, AgentSource::Socket(p) => json!(p) },
                "known_hosts": hop.host_keys.user_known_hosts.iter().chain(&hop.host_keys.global_known_hosts).collect::<Vec<_>>(),
                "strict_host_key_checking": format!("{:?}", hop.host_keys.strict),
                "connect_timeout_secs": hop.connect_timeout.as_secs(),
                "settings": settings,
                "unsupported": h.resolved.unsupported.iter().map(|(d, o)| json!({"directive": d, "origin": o.describe()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "hops": hops })
}

/// A saved tunnel's own settings, each with its value and where it came from: `flag`, the tunnels
/// file's `path:line`, or `default` (for `config NAME --json`). `args` holds the flags alone.
pub fn tunnel_json(args: &crate::cli::TunnelArgs, saved: &super::tunnels::Saved) -> Value {
    use super::tunnels::Sourced;
    let file = |line: usize| format!("{}:{line}", saved.file.display());
    let entry = |flag: Option<Value>, from_file: Option<(Value, usize)>| -> Value {
        match (flag, from_file) {
            (Some(v), _) => json!({ "value": v, "origin": "flag" }),
            (None, Some((v, line))) => json!({ "value": v, "origin": file(line) }),
            (None, None) => json!({ "value": Value::Null, "origin": "default" }),
        }
    };
    fn shown<T: std::fmt::Display>(s: &Option<Sourced<T>>) -> Option<(Value, usize)> {
        s.as_ref().map(|s| (json!(s.value.to_string()), s.line))
    }
    let path = |p: &Option<Sourced<std::path::PathBuf>>| p.as_ref().map(|p| (json!(p.value), p.line));
    let secs = |d: &Option<Sourced<std::time::Duration>>| d.as_ref().map(|d| (json!(d.value.as_secs()), d.line));
    let command = |c: &Option<Sourced<Vec<String>>>| c.as_ref().map(|c| (json!(c.value), c.line));
    let db_flags = (!args.db.is_empty()).then(|| json!(args.db.iter().map(db_text).collect::<Vec<_>>()));
    let db_file = saved
        .db
        .as_ref()
        .map(|d| (json!(d.value.iter().map(db_text).collect::<Vec<_>>()), d.line));
    // The file's ports pair with the file's targets only.
    let port_flags = (!args.local_port.is_empty()).then(|| json!(args.local_port));
    let port_file = saved
        .local_port
        .as_ref()
        .filter(|_| args.db.is_empty())
        .map(|p| (json!(p.value), p.line));
    let mut options: Vec<Value> = args
        .ssh_args
        .options
        .iter()
        .map(|(k, v)| json!({ "directive": k, "value": v, "origin": "flag" }))
        .collect();
    options.extend(
        saved
            .options
            .iter()
            .map(|o| json!({ "directive": o.value.0, "value": o.value.1, "origin": file(o.line) })),
    );
    let identity_flags = (!args.ssh_args.identity.is_empty()).then(|| json!(args.ssh_args.identity));
    let settings = json!({
        "description": entry(None, saved.description.as_ref().map(|d| (json!(d.value), d.line))),
        "ssh": entry(args.ssh.as_ref().map(|d| json!(d.original)), saved.ssh.as_ref().map(|d| (json!(d.value.original), d.line))),
        "jump": entry(
            args.ssh_args.jump.as_ref().map(|j| json!(j.0.iter().map(|d| &d.original).collect::<Vec<_>>())),
            saved.jump.as_ref().map(|j| (json!(j.value.0.iter().map(|d| &d.original).collect::<Vec<_>>()), j.line)),
        ),
        "db": entry(db_flags, db_file),
        "local_port": entry(port_flags, port_file),
        "bind": match (args.bind, &saved.bind) {
            (None, None) => json!({ "value": super::DEFAULT_BIND.to_string(), "origin": "default" }),
            (flag, file) => entry(flag.map(|b| json!(b.to_string())), shown(file)),
        },
        "identity": entry(identity_flags, saved.identity.as_ref().map(|i| (json!(i.value), i.line))),
        "known_hosts": entry(args.ssh_args.known_hosts.as_ref().map(|p| json!(p)), path(&saved.known_hosts)),
        "ssh_config": entry(args.ssh_args.ssh_config.as_ref().map(|p| json!(p)), path(&saved.ssh_config)),
        "options": options,
        "output": match (args.output, &saved.output) {
            (None, None) => json!({ "value": "port", "origin": "default" }),
            (flag, file) => entry(
                flag.map(|o| json!(format!("{o:?}").to_lowercase())),
                file.as_ref().map(|o| (json!(format!("{:?}", o.value).to_lowercase()), o.line)),
            ),
        },
        "idle_timeout_secs": entry(args.idle_timeout.map(|d| json!(d.as_secs())), secs(&saved.idle_timeout)),
        "max_lifetime_secs": entry(args.max_lifetime.map(|d| json!(d.as_secs())), secs(&saved.max_lifetime)),
        "password_command": entry(None, command(&saved.password_command)),
        "passphrase_command": entry(None, command(&saved.passphrase_command)),
        "totp_command": entry(None, command(&saved.totp_command)),
    });
    json!({
        "name": saved.name,
        "file": saved.file,
        "line": saved.line,
        "settings": settings,
    })
}

/// A target as the flags would take it (a URL's password is never in a saved tunnel).
fn db_text(db: &crate::cli::DbArg) -> String {
    match db {
        crate::cli::DbArg::Target(t) => t.to_string(),
        crate::cli::DbArg::Url(u) => u.to_string(),
    }
}
