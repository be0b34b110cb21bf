//! ssh2-config 0.9.0 against `ssh -G`, on sqltun's ssh_config corpus (`tests/ssh_config/`).
//!
//! For every query line of every `*.conf` case (`# query:`, `# query-error:`, `# query-fails-earlier:`,
//! `# query-deliberate:`; see tests/ssh_config/README.md), this asks three parties what the destination
//! resolves to, for the directives sqltun acts on, and prints a Markdown table of every disagreement
//! with OpenSSH, then totals:
//!
//! - **ssh -G** (OpenSSH, the reference): `ssh -G -F CASE [-o K=V]… DEST`. Identity and certificate
//!   files are taken as OpenSSH expands them when it connects (`ssh -v` through `ProxyCommand=true`,
//!   so nothing leaves the machine), as the corpus test does. For `query-fails-earlier` the reference
//!   answer is "refuses when connecting" if `ssh -v` fails with the case's message.
//! - **ssh2-config** 0.9.0, with the glue a consumer has to write anyway (kept generous on purpose,
//!   so that every remaining disagreement is the crate's):
//!   - the case is parsed with `home_dir` = the scratch HOME (so `Include` resolves) and
//!     `ParseRule::ALLOW_UNKNOWN_FIELDS | ALLOW_UNSUPPORTED_FIELDS` (`STRICT` refuses every file with a
//!     `Match` line; how many queries that refuses is printed as a separate total);
//!   - `-o K=V` options are parsed by ssh2-config as a config of their own and queried first, then the
//!     destination's `user@`/`:port` fill what `-o` left unset, then the file's answer fills the rest
//!     (`HostParams::overwrite_if_none`): OpenSSH's precedence;
//!   - a directive the crate does not model (ProxyCommand, StrictHostKeyChecking, HostKeyAlias, …)
//!     is read raw from `HostParams::unsupported_fields` (words joined by a space; a leading `~/` of
//!     UserKnownHostsFile and IdentityAgent expanded like the crate expands its own paths);
//!   - anything still unset takes OpenSSH's default (`ssh -G -F none h`; `hostname` = the host as
//!     given), and the default algorithm lists are OpenSSH 9.2's (from the same `ssh -G`), not the
//!     crate's built-in ones, which come from a newer OpenSSH;
//!   - `none` for ProxyJump/ProxyCommand means unset, yes/true and no/false are the same flag, and
//!     ProxyJump hops are compared as `user@host:port` (no `ssh://`, no brackets), for all three.
//!   - Paths under the scratch HOME are shown under the password-database home: in real use `$HOME`
//!     is that home; the scratch HOME exists only so the corpus's `Include`s are hermetic.
//! - **sqltun**: the built binary, `sqltun config -F CASE [-o K=V]… DEST` (the `ssh -G`-format text),
//!   and `--json` for the expanded identity and certificate files.
//!
//! Every directive compared is one sqltun acts on, so any disagreement changes where sqltun connects
//! (user, hostname, port, proxyjump, proxycommand) or how (keys, host-key checking, algorithms,
//! timeouts, authentication methods); a query where one side refuses and the other resolves changes
//! whether it connects at all.
//!
//! Usage (from the sqltun worktree root, after `cargo build`):
//!
//!     cargo run --release --manifest-path bench/ssh2-config-eval/Cargo.toml -- target/debug/sqltun
//!
//! Options after the binary path: `--corpus DIR` (default: tests/ssh_config next to this crate),
//! `--wide` (do not shorten long values in the table).

use std::collections::BTreeMap;
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ssh2_config::{DefaultAlgorithms, HostParams, ParseRule, SshConfig};

/// The directives sqltun acts on, in `ssh -G` spelling and order (src/resolve/ssh_config.rs `Key::ALL`).
const KEYS: [&str; 28] = [
    "user",
    "hostname",
    "port",
    "batchmode",
    "compression",
    "hashknownhosts",
    "identitiesonly",
    "kbdinteractiveauthentication",
    "passwordauthentication",
    "pubkeyauthentication",
    "stricthostkeychecking",
    "numberofpasswordprompts",
    "serveralivecountmax",
    "serveraliveinterval",
    "ciphers",
    "hostkeyalgorithms",
    "hostkeyalias",
    "identityagent",
    "kexalgorithms",
    "macs",
    "preferredauthentications",
    "identityfile",
    "certificatefile",
    "globalknownhostsfile",
    "userknownhostsfile",
    "connecttimeout",
    "proxycommand",
    "proxyjump",
];

/// Keys that say where sqltun connects; the others say how.
const WHERE: [&str; 5] = ["user", "hostname", "port", "proxyjump", "proxycommand"];

type Values = BTreeMap<String, Vec<String>>;

/// What one party says about one query.
#[derive(Debug, Clone)]
enum Answer {
    Resolved(Values),
    Refused(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Tag {
    Query,
    Error,
    FailsEarlier(String),
    Deliberate,
}

struct Invocation {
    line: usize,
    text: String,
    tag: Tag,
    host: String,
    user: Option<String>,
    port: Option<u16>,
    options: Vec<(String, String)>,
}

struct Case {
    name: String,
    path: PathBuf,
    env: Vec<(String, String)>,
    invocations: Vec<Invocation>,
}

struct Env {
    home: PathBuf,
    passwd_home: PathBuf,
    sqltun: PathBuf,
    /// `ssh -G -F none h`, with identity files as `ssh -v` expands them.
    defaults: Values,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut sqltun = None;
    let mut corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ssh_config");
    let mut wide = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--corpus" => corpus = PathBuf::from(args.next().expect("--corpus DIR")),
            "--wide" => wide = true,
            "-h" | "--help" => {
                println!("usage: sqltun-ssh2-config-eval SQLTUN_BINARY [--corpus DIR] [--wide]");
                return;
            }
            _ => sqltun = Some(PathBuf::from(arg)),
        }
    }
    let Some(sqltun) = sqltun else {
        eprintln!("usage: sqltun-ssh2-config-eval SQLTUN_BINARY [--corpus DIR] [--wide]");
        std::process::exit(2);
    };
    let sqltun = fs::canonicalize(&sqltun).unwrap_or_else(|e| die(&format!("{}: {e}", sqltun.display())));
    let corpus = fs::canonicalize(&corpus).unwrap_or_else(|e| die(&format!("{}: {e}", corpus.display())));

    let version = run("ssh", &["-V".to_string()], &[], None);
    eprintln!("reference: {}", String::from_utf8_lossy(&version.stderr).trim());

    let home = std::env::temp_dir().join(format!("ssh2-config-eval-{}", std::process::id()));
    fs::create_dir_all(&home).unwrap_or_else(|e| die(&format!("{}: {e}", home.display())));
    copy_tree(&corpus.join("home"), &home);
    let passwd_home = passwd_home();
    let mut env = Env {
        home: home.clone(),
        passwd_home,
        sqltun,
        defaults: Values::new(),
    };
    env.defaults = openssh_defaults(&env);

    let cases = load_corpus(&corpus);
    let mut rows: Vec<[String; 7]> = Vec::new();
    // The scratch HOME's name changes every run; show it as $HOME so runs diff cleanly.
    let scratch = home.display().to_string();
    let cell = |answer: &Answer, key: &str| shown(&value_of(answer, key).replace(&scratch, "$HOME"), wide);
    let mut totals = Totals::default();
    for case in &cases {
        for inv in &case.invocations {
            totals.queries += 1;
            let reference = reference_answer(&env, case, inv);
            let theirs = ssh2_config_answer(
                &env,
                case,
                inv,
                ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
            );
            let strict = ssh2_config_answer(&env, case, inv, ParseRule::STRICT);
            let ours = sqltun_answer(&env, case, inv, &mut totals.ours_home_mapped);
            if matches!(reference, Answer::Resolved(_)) && matches!(strict, Answer::Refused(_)) {
                totals.strict_refused += 1;
            }
            let query = format!("{}:{} `{}`", case.name, inv.line, inv.text);
            let d_theirs = diff(&reference, &theirs);
            let d_ours = diff(&reference, &ours);
            let mut keys: Vec<String> = d_theirs.keys().chain(d_ours.keys()).cloned().collect();
            keys.sort_by_key(|k| key_rank(k));
            keys.dedup();
            let mut kinds: Vec<&'static str> = Vec::new();
            for key in &keys {
                let kind = if d_theirs.contains_key(key) {
                    let kind = kind_of(case, key, &reference, &theirs);
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                    kind
                } else {
                    ""
                };
                rows.push([
                    kind.to_string(),
                    case.name.clone(),
                    query.clone(),
                    key.clone(),
                    cell(&reference, key),
                    cell(&theirs, key),
                    cell(&ours, key),
                ]);
            }
            if d_theirs.is_empty() {
                totals.ssh2_agree += 1;
            } else {
                if d_theirs.keys().any(|k| k == "(outcome)" || WHERE.contains(&k.as_str())) {
                    totals.ssh2_where += 1;
                }
                for key in d_theirs.keys() {
                    *totals.ssh2_by_key.entry(key.clone()).or_default() += 1;
                }
                *totals.ssh2_by_case.entry(case.name.clone()).or_default() += 1;
                for kind in kinds {
                    let entry = totals.ssh2_by_kind.entry(kind).or_default();
                    entry.0 += 1;
                    if entry.1.is_empty() {
                        entry.1 = query.clone();
                    }
                }
            }
            if d_ours.is_empty() {
                totals.ours_agree += 1;
            } else if inv.tag == Tag::Deliberate && matches!(ours, Answer::Refused(_)) {
                totals.ours_deliberate += 1;
            } else if matches!(&ours, Answer::Refused(m) if m.contains("ProxyJump loop")) {
                totals.ours_chain_loop += 1;
            } else {
                totals.ours_disagree += 1;
            }
        }
    }
    let _ = fs::remove_dir_all(&home);

    println!("| kind (ssh2-config) | case | query | key | ssh -G | ssh2-config | sqltun |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for row in &rows {
        println!(
            "| {} |",
            row.iter()
                .map(|c| c.replace('|', "\\|"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    println!();
    totals.print(cases.len());
}

#[derive(Default)]
struct Totals {
    queries: usize,
    ssh2_agree: usize,
    ssh2_where: usize,
    ssh2_by_key: BTreeMap<String, usize>,
    ssh2_by_case: BTreeMap<String, usize>,
    /// Kind -> (queries, first example).
    ssh2_by_kind: BTreeMap<&'static str, (usize, String)>,
    strict_refused: usize,
    ours_agree: usize,
    ours_deliberate: usize,
    ours_disagree: usize,
    ours_chain_loop: usize,
    ours_home_mapped: usize,
}

impl Totals {
    fn print(&self, cases: usize) {
        let disagree = self.queries - self.ssh2_agree;
        println!("cases {cases}, queries {}", self.queries);
        println!(
            "ssh2-config 0.9.0: agrees with OpenSSH on {} queries; disagrees on {disagree} \
             (where it connects or whether: {}; only how: {})",
            self.ssh2_agree,
            self.ssh2_where,
            disagree - self.ssh2_where
        );
        println!(
            "ssh2-config 0.9.0 with ParseRule::STRICT: refuses {} queries OpenSSH resolves",
            self.strict_refused
        );
        println!(
            "sqltun: agrees on {} queries; deliberate, documented refusals {}; refuses the chain because a \
             jump host's own config loops (ssh -G resolves only the destination) {}; disagrees on {}",
            self.ours_agree, self.ours_deliberate, self.ours_chain_loop, self.ours_disagree
        );
        println!(
            "(sqltun expanded ~ against $HOME, not the password database's home, in {} queries; \
             mapped before comparing, as for ssh2-config)",
            self.ours_home_mapped
        );
        let by_key: Vec<String> = self.ssh2_by_key.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("ssh2-config disagreements by key (queries): {}", by_key.join(", "));
        println!("ssh2-config disagreements by kind (queries; a query may show several kinds):");
        for (kind, (n, example)) in &self.ssh2_by_kind {
            println!("  {n:3}  {kind}  (e.g. {example})");
        }
        let by_case: Vec<String> = self.ssh2_by_case.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("ssh2-config disagreements by case (queries): {}", by_case.join(", "));
    }
}

fn die(message: &str) -> ! {
    eprintln!("ssh2-config-eval: {message}");
    std::process::exit(2);
}

fn key_rank(key: &str) -> usize {
    KEYS.iter().position(|k| *k == key).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// The corpus

fn load_corpus(dir: &Path) -> Vec<Case> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| die(&format!("{}: {e}", dir.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    paths.sort();
    let mut cases = Vec::new();
    for path in paths {
        let text = fs::read_to_string(&path).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
        let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let mut env = Vec::new();
        let mut invocations = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            let Some(meta) = line.strip_prefix("# ") else { continue };
            let (tag, rest) = meta.split_once(": ").unwrap_or((meta, ""));
            let parts: Vec<&str> = rest.split(" | ").collect();
            let tag = match tag {
                "env" => {
                    let (k, v) = rest.split_once('=').expect("env: NAME=value");
                    env.push((k.to_string(), v.to_string()));
                    continue;
                }
                "query" => Tag::Query,
                "query-error" => Tag::Error,
                "query-fails-earlier" => Tag::FailsEarlier(parts[2].to_string()),
                "query-deliberate" => Tag::Deliberate,
                _ => continue,
            };
            let words = shell_words(parts[0]);
            let mut options = Vec::new();
            let mut destination = String::new();
            let mut i = 0;
            while i < words.len() {
                if words[i] == "-o" {
                    let (k, v) = words[i + 1].split_once('=').expect("-o KEY=VALUE");
                    options.push((k.to_string(), v.to_string()));
                    i += 2;
                } else {
                    destination = words[i].clone();
                    i += 1;
                }
            }
            let (user, host_port) = match destination.rsplit_once('@') {
                Some((u, h)) => (Some(u.to_string()), h.to_string()),
                None => (None, destination.clone()),
            };
            let (host, port) = match host_port.rsplit_once(':') {
                Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (h.to_string(), p.parse().ok()),
                _ => (host_port, None),
            };
            invocations.push(Invocation {
                line: index + 1,
                text: parts[0].to_string(),
                tag,
                host,
                user,
                port,
                options,
            });
        }
        cases.push(Case {
            name,
            path,
            env,
            invocations,
        });
    }
    cases
}

/// Whitespace-separated words; single quotes group (the corpus's ARGS syntax).
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut in_word, mut quoted) = (false, false);
    for c in s.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

fn copy_tree(from: &Path, to: &Path) {
    let Ok(entries) = fs::read_dir(from) else { return };
    for entry in entries.filter_map(|e| e.ok()) {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            fs::create_dir_all(&target).expect("mkdir in scratch HOME");
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy into scratch HOME");
            // Group-writable includes are refused by OpenSSH and sqltun alike; a checkout's umask
            // must not decide the result.
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).expect("chmod");
        }
    }
}

/// `~` as OpenSSH expands it in IdentityFile: the password database's home of this uid.
fn passwd_home() -> PathBuf {
    let uid = run("id", &["-u".to_string()], &[], None);
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_string();
    let entry = run("getent", &["passwd".to_string(), uid], &[], None);
    let entry = String::from_utf8_lossy(&entry.stdout).trim().to_string();
    PathBuf::from(
        entry
            .split(':')
            .nth(5)
            .unwrap_or_else(|| die("no passwd entry for this uid")),
    )
}

/// Run a program with a clean environment: PATH, HOME (when given) and the case's variables.
fn run(program: &str, args: &[String], env: &[(String, String)], home: Option<&Path>) -> Output {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    if let Some(home) = home {
        command.env("HOME", home);
    }
    command
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| die(&format!("cannot run {program}: {e}")))
}

// ---------------------------------------------------------------------------------------------
// OpenSSH

fn destination_args(inv: &Invocation) -> Vec<String> {
    let mut args = Vec::new();
    for (k, v) in &inv.options {
        args.push("-o".to_string());
        args.push(format!("{k}={v}"));
    }
    let user = inv.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
    args.push(match inv.port {
        Some(port) => format!("ssh://{user}{}:{port}", inv.host),
        None => format!("{user}{}", inv.host),
    });
    args
}

/// `key -> values` of `ssh -G`-format text, for the keys sqltun acts on.
fn ssh_g_values(text: &str) -> Values {
    let mut map = Values::new();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        if KEYS.contains(&key) {
            map.entry(key.to_string()).or_default().push(value.to_string());
        }
    }
    map
}

/// Identity and certificate files as OpenSSH expands them when it connects, without the implicit
/// `-cert` variants it also tries; and ssh's stderr.
fn openssh_key_files(
    env: &Env,
    config: &str,
    args: &[String],
    case_env: &[(String, String)],
) -> (Vec<String>, Vec<String>, String) {
    let mut full = vec!["-v".to_string(), "-F".to_string(), config.to_string()];
    full.extend(["-o".to_string(), "ProxyCommand=true".to_string()]);
    full.extend(args.iter().cloned());
    full.push("true".to_string());
    let output = run("ssh", &full, case_env, Some(&env.home));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let (mut ids, mut certs): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for line in stderr.lines() {
        if let Some(rest) = line.strip_prefix("debug1: identity file ") {
            let path = rest.rsplit_once(" type ").map_or(rest, |(p, _)| p).to_string();
            let implicit = path
                .strip_suffix("-cert")
                .is_some_and(|base| ids.last().is_some_and(|l| l == base));
            if !implicit {
                ids.push(path);
            }
        } else if let Some(rest) = line.strip_prefix("debug1: certificate file ") {
            certs.push(rest.rsplit_once(" type ").map_or(rest, |(p, _)| p).to_string());
        }
    }
    (ids, certs, stderr)
}

fn openssh_defaults(env: &Env) -> Values {
    let args = ["-G", "-F", "none", "h"].map(String::from);
    let output = run("ssh", &args, &[], Some(&env.home));
    if !output.status.success() {
        die(&format!(
            "ssh -G -F none h failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let mut values = ssh_g_values(&String::from_utf8_lossy(&output.stdout));
    let (ids, certs, _) = openssh_key_files(env, "none", &["h".to_string()], &[]);
    set_list(&mut values, "identityfile", ids);
    set_list(&mut values, "certificatefile", certs);
    values
}

fn set_list(values: &mut Values, key: &str, list: Vec<String>) {
    if list.is_empty() {
        values.remove(key);
    } else {
        values.insert(key.to_string(), list);
    }
}

fn reference_answer(env: &Env, case: &Case, inv: &Invocation) -> Answer {
    let config = case.path.display().to_string();
    let args = destination_args(inv);
    let mut g = vec!["-G".to_string(), "-F".to_string(), config.clone()];
    g.extend(args.iter().cloned());
    let output = run("ssh", &g, &case.env, Some(&env.home));
    if !output.status.success() {
        return Answer::Refused(first_line(&String::from_utf8_lossy(&output.stderr)));
    }
    let mut values = ssh_g_values(&String::from_utf8_lossy(&output.stdout));
    let (ids, certs, stderr) = openssh_key_files(env, &config, &args, &case.env);
    if let Tag::FailsEarlier(message) = &inv.tag {
        if stderr.contains(message.as_str()) {
            return Answer::Refused(format!("when connecting: {message}"));
        }
    }
    set_list(&mut values, "identityfile", ids);
    set_list(&mut values, "certificatefile", certs);
    Answer::Resolved(values)
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with("Pseudo-terminal will not be allocated"))
        .unwrap_or("")
        .trim()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// sqltun

fn sqltun_answer(env: &Env, case: &Case, inv: &Invocation, home_mapped: &mut usize) -> Answer {
    let mut args = vec!["config".to_string(), "-F".to_string(), case.path.display().to_string()];
    for (k, v) in &inv.options {
        args.push("-o".to_string());
        args.push(format!("{k}={v}"));
    }
    let user = inv.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
    args.push(match inv.port {
        Some(port) => format!("{user}{}:{port}", inv.host),
        None => format!("{user}{}", inv.host),
    });
    let program = env.sqltun.display().to_string();
    let text = run(&program, &args, &case.env, Some(&env.home));
    if !text.status.success() {
        return Answer::Refused(first_line(&String::from_utf8_lossy(&text.stderr)));
    }
    let mut values = ssh_g_values(&String::from_utf8_lossy(&text.stdout));
    args.push("--json".to_string());
    let json = run(&program, &args, &case.env, Some(&env.home));
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| die(&format!("sqltun config --json for {}: {e}", case.name)));
    let last = parsed["hops"]
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .unwrap_or_default();
    for key in ["identityfile", "certificatefile"] {
        let list: Vec<String> = last["settings"][key]["values"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        set_list(&mut values, key, list);
    }
    // sqltun expands `~` against $HOME, OpenSSH against the password database's home: the same
    // directory in real use, but not here, where HOME is the scratch copy. Count and map them.
    let scratch = env.home.display().to_string();
    let mut mapped = false;
    for value in values.values_mut().flatten() {
        if value.contains(&scratch) {
            *value = value.replace(&scratch, &env.passwd_home.display().to_string());
            mapped = true;
        }
    }
    if mapped {
        *home_mapped += 1;
    }
    Answer::Resolved(values)
}

// ---------------------------------------------------------------------------------------------
// ssh2-config

fn ssh2_config_answer(env: &Env, case: &Case, inv: &Invocation, rule: ParseRule) -> Answer {
    let algorithms = |key: &str| {
        env.defaults
            .get(key)
            .and_then(|v| v.first())
            .map(|l| l.split(',').map(String::from).collect())
            .unwrap_or_default()
    };
    let defaults = DefaultAlgorithms {
        ca_signature_algorithms: algorithms("casignaturealgorithms"),
        ciphers: algorithms("ciphers"),
        host_key_algorithms: algorithms("hostkeyalgorithms"),
        kex_algorithms: algorithms("kexalgorithms"),
        mac: algorithms("macs"),
        pubkey_accepted_algorithms: algorithms("pubkeyacceptedalgorithms"),
    };
    let parse = |text: &[u8]| {
        SshConfig::default()
            .default_algorithms(defaults.clone())
            .home_dir(&env.home)
            .parse(&mut BufReader::new(text), rule)
    };
    let options: String = inv.options.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let command_line = match parse(options.as_bytes()) {
        Ok(config) => config,
        Err(e) => return Answer::Refused(format!("-o: {e}")),
    };
    let file = match fs::read(&case.path) {
        Ok(bytes) => bytes,
        Err(e) => return Answer::Refused(e.to_string()),
    };
    let config = match parse(&file) {
        Ok(config) => config,
        Err(e) => return Answer::Refused(e.to_string()),
    };
    let mut params = command_line.query(&inv.host);
    if params.user.is_none() {
        params.user = inv.user.clone();
    }
    if params.port.is_none() {
        params.port = inv.port;
    }
    params.overwrite_if_none(&config.query(&inv.host));
    Answer::Resolved(ssh2_config_values(env, inv, &params))
}

fn ssh2_config_values(env: &Env, inv: &Invocation, p: &HostParams) -> Values {
    let path = |p: &PathBuf| {
        let text = p.display().to_string();
        match p.strip_prefix(&env.home) {
            Ok(rest) => env.passwd_home.join(rest).display().to_string(),
            Err(_) => text,
        }
    };
    let flag = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut values = Values::new();
    let mut put = |key: &str, v: Option<Vec<String>>| {
        if let Some(v) = v {
            values.insert(key.to_string(), v);
        }
    };
    put("user", p.user.clone().map(|v| vec![v]));
    put(
        "hostname",
        Some(vec![p.host_name.clone().unwrap_or_else(|| inv.host.clone())]),
    );
    put("port", p.port.map(|v| vec![v.to_string()]));
    put("compression", p.compression.map(|b| vec![flag(b)]));
    put("pubkeyauthentication", p.pubkey_authentication.map(|b| vec![flag(b)]));
    put(
        "serveraliveinterval",
        p.server_alive_interval.map(|d| vec![d.as_secs().to_string()]),
    );
    put(
        "connecttimeout",
        p.connect_timeout.map(|d| vec![d.as_secs().to_string()]),
    );
    put("ciphers", Some(vec![p.ciphers.algorithms().join(",")]));
    put(
        "hostkeyalgorithms",
        Some(vec![p.host_key_algorithms.algorithms().join(",")]),
    );
    put("kexalgorithms", Some(vec![p.kex_algorithms.algorithms().join(",")]));
    put("macs", Some(vec![p.mac.algorithms().join(",")]));
    put(
        "identityfile",
        p.identity_file.as_ref().map(|l| l.iter().map(path).collect()),
    );
    put("certificatefile", p.certificate_file.as_ref().map(|c| vec![path(c)]));
    put("proxyjump", p.proxy_jump.as_ref().map(|l| vec![l.join(",")]));
    for key in KEYS {
        if values.contains_key(key) {
            continue;
        }
        if let Some(raw) = p.unsupported_fields.get(key) {
            let mut raw = raw.join(" ");
            if matches!(key, "userknownhostsfile" | "identityagent") {
                raw = raw
                    .split(' ')
                    .map(|w| match w.strip_prefix("~/") {
                        Some(rest) => env.passwd_home.join(rest).display().to_string(),
                        None => w.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            values.insert(key.to_string(), vec![raw]);
        } else if let Some(default) = env.defaults.get(key) {
            values.insert(key.to_string(), default.clone());
        }
    }
    values
}

// ---------------------------------------------------------------------------------------------
// Comparing

/// What kind of disagreement ssh2-config shows on `key` (first rule that applies).
fn kind_of(case: &Case, key: &str, reference: &Answer, theirs: &Answer) -> &'static str {
    let (a, b) = match (reference, theirs) {
        (Answer::Resolved(_), Answer::Refused(_)) => {
            return "refuses a whole file OpenSSH reads (one value it cannot parse)"
        }
        (Answer::Refused(_), Answer::Resolved(_)) if case.name.contains("token") || case.name.contains("-env") => {
            return "% tokens and ${VAR} not expanded";
        }
        (Answer::Refused(_), Answer::Resolved(_)) => return "accepts a config or destination OpenSSH refuses",
        (Answer::Resolved(a), Answer::Resolved(b)) => (a, b),
        _ => return "",
    };
    let text = fs::read_to_string(&case.path).unwrap_or_default();
    let has_match = text.lines().any(|l| {
        let l = l.trim_start().to_ascii_lowercase();
        l.starts_with("match ") || l.starts_with("match\t")
    });
    let ours = normalized(a, key).unwrap_or_default().join(" ");
    let theirs = normalized(b, key).unwrap_or_default().join(" ");
    if has_match {
        "Match ignored: its lines merge into the preceding Host block"
    } else if has_token(&theirs) && !ours.eq_ignore_ascii_case(&theirs) {
        "% tokens and ${VAR} not expanded"
    } else if ours != theirs && ours.eq_ignore_ascii_case(&theirs) {
        "values not lowercased (HostName, HostKeyAlias, none)"
    } else if key == "serveraliveinterval" && ours == "300" {
        "derived default missing (Debian: BatchMode yes => ServerAliveInterval 300)"
    } else if matches!(key, "ciphers" | "kexalgorithms" | "hostkeyalgorithms" | "macs") {
        "algorithm lists: wildcards, -pattern and ^ not applied like OpenSSH"
    } else if matches!(key, "proxyjump" | "proxycommand") {
        "ProxyJump/ProxyCommand: both kept, not first-of-the-two"
    } else if case.name.contains("include") {
        "Include: globs match dot files; Match inside an included file"
    } else if case.name.contains("quoted") {
        "quoting: single quotes, backslash escapes"
    } else if case.name.contains("equals") {
        "first value wins only across blocks (a repeat in the same block overwrites)"
    } else if key == "identityfile" {
        "IdentityFile: none and repeats kept"
    } else if case.name.contains("aliases") {
        "obsolete aliases unknown (IdentityFile2, ChallengeResponseAuthentication...)"
    } else {
        "other"
    }
}

/// Whether `text` holds a `%x` token or a `${VAR}` reference.
fn has_token(text: &str) -> bool {
    text.contains("${")
        || text.contains("%%")
        || text
            .split('%')
            .skip(1)
            .any(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()))
}

/// One party's value of `key`, comparable across parties.
fn normalized(values: &Values, key: &str) -> Option<Vec<String>> {
    let v = values.get(key)?;
    let v: Vec<String> = v
        .iter()
        .map(|s| match s.as_str() {
            "true" => "yes".to_string(),
            "false" => "no".to_string(),
            _ => s.clone(),
        })
        .collect();
    match key {
        "proxyjump" | "proxycommand" if v.iter().all(|s| s == "none") => None,
        "proxyjump" => Some(
            v.iter()
                .map(|s| s.split(',').map(hop).collect::<Vec<_>>().join(","))
                .collect(),
        ),
        // The command runs through `sh -c`, where an unquoted ` #` starts a comment: OpenSSH keeps
        // a trailing `# …` in the value, ssh2-config strips it; the shell runs the same command.
        "proxycommand" => Some(v.iter().map(|s| shell_comment_stripped(s)).collect()),
        _ => Some(v),
    }
}

fn shell_comment_stripped(command: &str) -> String {
    let (mut single, mut double) = (false, false);
    let mut previous = ' ';
    for (i, c) in command.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => return command[..i].trim_end().to_string(),
            _ => {}
        }
        previous = c;
    }
    command.to_string()
}

/// A ProxyJump hop as `user@host:port`: no `ssh://` scheme, no brackets around an address.
fn hop(spec: &str) -> String {
    let spec = spec.strip_prefix("ssh://").unwrap_or(spec);
    let (user, rest) = match spec.rsplit_once('@') {
        Some((u, r)) => (format!("{u}@"), r),
        None => (String::new(), spec),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        match inner.split_once(']') {
            Some((h, p)) => (h.to_string(), p.strip_prefix(':').map(String::from)),
            None => (rest.to_string(), None),
        }
    } else if rest.matches(':').count() == 1 {
        let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
        (h.to_string(), Some(p.to_string()))
    } else {
        (rest.to_string(), None)
    };
    match port {
        Some(p) if !p.is_empty() => format!("{user}{host}:{p}"),
        _ => format!("{user}{host}"),
    }
}

/// Keys on which `other` disagrees with `reference` (`(outcome)` when one resolves and the other refuses).
fn diff(reference: &Answer, other: &Answer) -> BTreeMap<String, ()> {
    let mut out = BTreeMap::new();
    match (reference, other) {
        (Answer::Resolved(a), Answer::Resolved(b)) => {
            for key in KEYS {
                if normalized(a, key) != normalized(b, key) {
                    out.insert(key.to_string(), ());
                }
            }
        }
        (Answer::Refused(_), Answer::Refused(_)) => {}
        _ => {
            out.insert("(outcome)".to_string(), ());
        }
    }
    out
}

fn value_of(answer: &Answer, key: &str) -> String {
    match answer {
        Answer::Refused(message) => format!("refuses: {message}"),
        Answer::Resolved(_) if key == "(outcome)" => "resolves".to_string(),
        Answer::Resolved(values) => match values.get(key) {
            None => "(unset)".to_string(),
            Some(v) => v.join(" "),
        },
    }
}

fn shown(text: &str, wide: bool) -> String {
    let text = text.replace('`', "'");
    let limit = 60;
    if wide || text.chars().count() <= limit {
        format!("`{text}`")
    } else {
        format!("`{}…`", text.chars().take(limit).collect::<String>())
    }
}
