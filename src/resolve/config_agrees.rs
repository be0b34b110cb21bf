//! `sqltun config` prints what `connect`, `exec` and `check` use: every invocation of the ssh_config
//! corpus (`tests/ssh_config/`) goes through the `config` path (the `ssh -G` text and the `--json`
//! settings it prints) and through the plan that connecting uses, and each hop of the plan must be
//! exactly the hop the printed settings describe, field by field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde_json::Value;

use super::ssh_config::tests::{Reference, load_corpus};
use super::*;
use crate::cli::{Cli, Command};
use crate::plan::{AgentSource, Algorithms, AuthSettings, HostKeySettings, StrictHostKeyChecking, Transport};
use crate::plan::{Hop, TunnelPlan};

/// The corpus's reference environment (scratch `$HOME`, the real local user) as resolution sees it,
/// with a terminal attached so `BatchMode` shows in the plan.
struct CorpusEnv<'a> {
    reference: &'a Reference,
    vars: BTreeMap<String, String>,
}

impl Environment for CorpusEnv<'_> {
    fn var(&self, key: &str) -> Option<String> {
        self.vars.get(key).cloned()
    }
    fn home(&self) -> Option<PathBuf> {
        Some(self.reference.local.home.clone())
    }
    fn is_terminal(&self) -> bool {
        true
    }
    fn read_file(&self, path: &Path) -> std::io::Result<zeroize::Zeroizing<String>> {
        std::fs::read_to_string(path).map(zeroize::Zeroizing::new)
    }
    fn local_user(&self) -> String {
        self.reference.local.user.clone()
    }
    fn local_hostname(&self) -> String {
        self.reference.local.hostname.clone()
    }
    fn uid(&self) -> u32 {
        self.reference.local.uid
    }
    fn current_dir(&self) -> Option<PathBuf> {
        None
    }
}

/// The `config` path: what `sqltun config -F FILE ARGS` prints, as text and as JSON.
fn config_output(argv: &[String], env: &dyn Environment) -> std::result::Result<(String, Value), String> {
    let args = match Cli::try_parse_from(argv).map(|c| c.command) {
        Ok(Command::Config(c)) => c,
        Ok(other) => panic!("not config: {other:?}"),
        Err(e) => return Err(format!("command line: {}", e.kind())),
    };
    let destination = args.destination.as_ref().expect("config has a destination");
    let hops = resolve_chain(destination, &args.ssh, None, env, &NoSecrets).map_err(|e| e.message().to_string())?;
    let last = hops.last().expect("a chain has a hop");
    Ok((last.to_ssh_g(), crate::resolve::chain_json(&hops)))
}

/// The path `connect` (and `exec`, `check`) takes: `sqltun connect -F FILE ARGS --db …` to a plan.
fn connect_plan(argv: &[String], env: &dyn Environment) -> std::result::Result<TunnelPlan, String> {
    let args = match Cli::try_parse_from(argv).map(|c| c.command) {
        Ok(Command::Connect(c)) => c.tunnel(),
        Ok(other) => panic!("not connect: {other:?}"),
        Err(e) => return Err(format!("command line: {}", e.kind())),
    };
    plan(&args, env).map_err(|e| e.message().to_string())
}

/// One hop's printed settings: directive → (values, origin).
type Printed = BTreeMap<String, (Vec<String>, String)>;

fn printed(hop: &Value) -> Printed {
    hop["settings"]
        .as_object()
        .expect("settings")
        .iter()
        .map(|(key, s)| {
            let values = s["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|v| v.as_str().expect("a string value").to_string())
                .collect();
            (key.clone(), (values, s["origin"].as_str().expect("origin").to_string()))
        })
        .collect()
}

/// The hop the printed settings describe, read the way the README documents each directive (written
/// apart from `hop_from`, so the two can disagree). Nothing secret is printed, and none is set here.
fn hop_described_by(p: &Printed, name: String, env: &dyn Environment) -> Hop {
    let home = env.home();
    let first = |key: &str| p.get(key).map(|(v, _)| v[0].as_str());
    let set = |key: &str| p.get(key).is_some_and(|(_, origin)| origin != "default");
    let paths = |key: &str| -> Vec<PathBuf> {
        p.get(key)
            .map(|(v, _)| {
                v.iter()
                    .filter(|f| *f != "none")
                    .map(|f| expand_tilde(Path::new(f), home.as_deref()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let yes = |key: &str| matches!(first(key), Some("yes" | "true"));
    let seconds = |key: &str| first(key).and_then(|v| v.parse::<u64>().ok()).map(Duration::from_secs);
    let list = |key: &str| set(key).then(|| first(key).unwrap_or("").split(',').map(String::from).collect());
    let agent = match first("identityagent") {
        Some("none") => AgentSource::None,
        None | Some("SSH_AUTH_SOCK") => env
            .var("SSH_AUTH_SOCK")
            .map_or(AgentSource::None, |s| AgentSource::Socket(s.into())),
        Some(v) => match v.strip_prefix('$') {
            Some(var) => env
                .var(var)
                .map_or(AgentSource::None, |s| AgentSource::Socket(s.into())),
            None => AgentSource::Socket(expand_tilde(Path::new(v), home.as_deref())),
        },
    };
    Hop {
        name,
        host: first("hostname").expect("hostname").to_string(),
        port: first("port").expect("port").parse().expect("a port"),
        user: first("user").expect("user").to_string(),
        auth: AuthSettings {
            identities: paths("identityfile"),
            identities_explicit: set("identityfile"),
            identities_only: yes("identitiesonly"),
            agent,
            pubkey: !matches!(first("pubkeyauthentication"), Some("no" | "false")),
            password: yes("passwordauthentication"),
            password_secret: None,
            password_source: None,
            keyboard_interactive: yes("kbdinteractiveauthentication"),
            password_prompts: first("numberofpasswordprompts").map_or(3, |n| n.parse().expect("a count")),
            preferred: first("preferredauthentications").map(|v| v.split(',').map(String::from).collect()),
            certificates: paths("certificatefile"),
            passphrase: None,
            passphrase_source: None,
            totp: None,
        },
        host_keys: HostKeySettings {
            strict: match first("stricthostkeychecking") {
                Some("yes" | "true") => StrictHostKeyChecking::Yes,
                Some("accept-new") => StrictHostKeyChecking::AcceptNew,
                Some("no" | "off" | "false") => StrictHostKeyChecking::No,
                _ => StrictHostKeyChecking::Ask,
            },
            user_known_hosts: paths("userknownhostsfile"),
            global_known_hosts: paths("globalknownhostsfile"),
            alias: first("hostkeyalias").map(String::from),
            hash_known_hosts: yes("hashknownhosts"),
        },
        connect_timeout: seconds("connecttimeout")
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        keepalive_interval: if set("serveraliveinterval") {
            seconds("serveraliveinterval").filter(|d| !d.is_zero())
        } else {
            Some(DEFAULT_KEEPALIVE_INTERVAL)
        },
        keepalive_max: first("serveralivecountmax")
            .expect("serveralivecountmax")
            .parse()
            .expect("a count"),
        transport: match (first("proxyjump"), first("proxycommand")) {
            (None, Some(command)) => Transport::ProxyCommand(command.to_string()),
            _ => Transport::Direct,
        },
        algorithms: Algorithms {
            ciphers: list("ciphers"),
            kex: list("kexalgorithms"),
            host_key: list("hostkeyalgorithms"),
            macs: list("macs"),
            compression: yes("compression"),
        },
    }
}

/// The `ssh -G` text agrees with the JSON settings, for the directives it prints as they are used (the
/// key and command files it prints before expansion, as `ssh -G` does).
fn text_agrees_with_settings(text: &str, p: &Printed) -> Option<String> {
    let mut lines: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        lines.entry(key).or_default().push(value.to_string());
    }
    let unexpanded = ["identityfile", "certificatefile", "proxycommand", "proxyjump"];
    for (key, (values, _)) in p.iter().filter(|(k, _)| !unexpanded.contains(&k.as_str())) {
        let shown = match key.as_str() {
            "userknownhostsfile" | "globalknownhostsfile" => vec![values.join(" ")],
            _ => values.clone(),
        };
        if lines.get(key.as_str()) != Some(&shown) {
            return Some(format!("{key}: text {:?}, json {shown:?}", lines.get(key.as_str())));
        }
    }
    None
}

/// Where the two paths part, if they do.
fn compare(config: &(String, Value), plan: &TunnelPlan, env: &dyn Environment) -> Option<String> {
    let (text, json) = config;
    let hops = json["hops"].as_array().expect("hops");
    if hops.len() != plan.hops.len() {
        return Some(format!(
            "config prints {} hops, the plan has {}",
            hops.len(),
            plan.hops.len()
        ));
    }
    let last = printed(hops.last().expect("a hop"));
    if let Some(diff) = text_agrees_with_settings(text, &last) {
        return Some(format!("config's text and JSON differ: {diff}"));
    }
    if plan.interactive == (last.get("batchmode").map(|(v, _)| v[0].as_str()) == Some("yes")) {
        return Some(format!(
            "BatchMode {:?}, but interactive is {}",
            last.get("batchmode"),
            plan.interactive
        ));
    }
    let count = hops.len();
    for (index, (shown, used)) in hops.iter().zip(&plan.hops).enumerate() {
        let settings = printed(shown);
        let given = shown["name"].as_str().expect("name").to_string();
        let host = settings.get("hostname").map(|(v, _)| v[0].clone()).unwrap_or_default();
        let name = if count > 1 || given != host {
            given
        } else {
            String::new()
        };
        // The jump list printed for this hop is the hops dialled just before it, in order.
        if let Some((values, _)) = settings.get("proxyjump") {
            let items = crate::dest::parse_jump_list(&values[0])
                .map(|j| j.0)
                .unwrap_or_default();
            let before: Vec<&str> = plan.hops[..index].iter().map(|h| h.name.as_str()).collect();
            let named: Vec<&str> = items.iter().map(|d| d.original.as_str()).collect();
            if !before.ends_with(&named) {
                return Some(format!(
                    "hop {}: ProxyJump {named:?}, but the plan dials {before:?} first",
                    index + 1
                ));
            }
        } else if index > 0 {
            return Some(format!(
                "hop {} has no ProxyJump, but the plan dials hops before it",
                index + 1
            ));
        }
        let expected = hop_described_by(&settings, name, env);
        if &expected != used {
            return Some(format!(
                "hop {}: config describes\n{expected:#?}\nthe plan has\n{used:#?}",
                index + 1
            ));
        }
    }
    None
}

/// What a corpus run of both paths found.
#[derive(Debug, Default)]
struct Tally {
    invocations: usize,
    compared: usize,
    hops: usize,
    refused_alike: usize,
    failures: Vec<String>,
}

/// `sqltun config` must print the settings `connect`, `exec` and `check` use (they share
/// `resolve_chain`; this proves nothing on the way from the printed settings to the hop changes them,
/// as `user@host` once beat `-o User` for `connect` only). Every corpus invocation runs through both
/// paths: where config resolves, each hop of the plan must equal, field by field, the hop its printed
/// settings describe; where config refuses, connect must refuse with the same message.
#[test]
fn corpus_config_and_plan_agree() {
    let reference = Reference::new();
    let mut tally = Tally::default();
    for case in load_corpus() {
        let mut vars: BTreeMap<String, String> = case.env.iter().cloned().collect();
        vars.insert("HOME".into(), reference.lab.path().display().to_string());
        let env = CorpusEnv {
            reference: &reference,
            vars,
        };
        for invocation in &case.invocations {
            tally.invocations += 1;
            let at = format!("{}:{} ({})", case.name, invocation.line, invocation.args.join(" "));
            let file = case.path.display().to_string();
            let mut config_argv: Vec<String> = ["sqltun", "config", "-F", &file].map(String::from).to_vec();
            let mut connect_argv: Vec<String> = ["sqltun", "connect", "-F", &file].map(String::from).to_vec();
            let mut words = invocation.args.iter();
            while let Some(word) = words.next() {
                if word == "-o" {
                    let option = words.next().expect("-o KEY=VALUE");
                    config_argv.push(format!("-o{option}"));
                    connect_argv.push(format!("-o{option}"));
                } else {
                    config_argv.extend(["--".to_string(), word.clone()]);
                    connect_argv.push(format!("--ssh={word}"));
                }
            }
            connect_argv.push("--db=127.0.0.1:5432".into());
            let config = config_output(&config_argv, &env);
            let plan = connect_plan(&connect_argv, &env);
            let failure = match (&config, &plan) {
                (Ok(config), Ok(plan)) => {
                    tally.compared += 1;
                    tally.hops += plan.hops.len();
                    compare(config, plan, &env)
                }
                (Err(a), Err(b)) if a == b || a.starts_with("command line") && b.starts_with("command line") => {
                    tally.refused_alike += 1;
                    None
                }
                (Err(a), Err(b)) => Some(format!("config refuses with `{a}`, connect with `{b}`")),
                (Ok(_), Err(b)) => Some(format!("config resolves, connect refuses: {b}")),
                (Err(a), Ok(_)) => Some(format!("config refuses ({a}), connect resolves")),
            };
            if let Some(why) = failure {
                tally.failures.push(format!("{at}: {why}"));
            }
        }
    }
    assert!(
        tally.failures.is_empty(),
        "{} of {} invocations differ between config and connect:\n{}",
        tally.failures.len(),
        tally.invocations,
        tally.failures.join("\n")
    );
    assert!(
        tally.compared >= 100,
        "only {} invocations resolved: {tally:?}",
        tally.compared
    );
    assert_eq!(tally.compared + tally.refused_alike, tally.invocations);
    assert!(tally.hops > tally.compared, "no invocation made a chain: {tally:?}");
    if let Some(path) = std::env::var_os("SQLTUN_CONFIG_AGREES_REPORT") {
        let report = format!(
            "invocations {}\ncompared {} ({} hops)\nrefused alike {}\n",
            tally.invocations, tally.compared, tally.hops, tally.refused_alike
        );
        std::fs::write(path, report).expect("write report");
    }
}
