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
