//! The ssh_config corpus (`tests/ssh_config/`), resolved by sqltun and compared with `ssh -G`; its
//! loader is shared with `resolve::config_agrees`.

use super::*;

// -----------------------------------------------------------------------------------------
// The corpus, compared with `ssh -G`

/// One way to invoke a case.
#[derive(Debug)]
pub(in crate::resolve) struct Invocation {
    pub(in crate::resolve) line: usize,
    pub(in crate::resolve) args: Vec<String>,
    pub(in crate::resolve) expect: Expect,
}

#[derive(Debug, PartialEq)]
pub(in crate::resolve) enum Expect {
    /// Both resolve, to the same values.
    Agree,
    /// Both refuse; our message contains this.
    BothFail(String),
    /// We refuse with this message while `ssh -G` prints the values and OpenSSH fails only when it
    /// connects, with a message containing the second string.
    FailsEarlier(String, String),
    /// A deliberate difference: we refuse (message contains the first string), OpenSSH does not;
    /// the second string is the reason.
    Deliberate(String, String),
}

pub(in crate::resolve) struct Case {
    pub(in crate::resolve) name: String,
    pub(in crate::resolve) path: PathBuf,
    pub(in crate::resolve) env: Vec<(String, String)>,
    pub(in crate::resolve) invocations: Vec<Invocation>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("ssh_config")
}

pub(in crate::resolve) fn load_corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/ssh_config exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("read case");
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut env = Vec::new();
        let mut invocations = Vec::new();
        let mut why = false;
        for (index, line) in text.lines().enumerate() {
            let Some(meta) = line.strip_prefix("# ") else {
                continue;
            };
            let (tag, rest) = meta.split_once(": ").unwrap_or((meta, ""));
            let parts: Vec<String> = rest.split(" | ").map(str::to_string).collect();
            let expect = match tag {
                "why" => {
                    why = true;
                    continue;
                }
                "env" => {
                    let (k, v) = rest.split_once('=').expect("env: NAME=value");
                    env.push((k.to_string(), v.to_string()));
                    continue;
                }
                "query" => Expect::Agree,
                "query-error" => Expect::BothFail(parts[1].clone()),
                "query-fails-earlier" => Expect::FailsEarlier(parts[1].clone(), parts[2].clone()),
                "query-deliberate" => Expect::Deliberate(parts[1].clone(), parts[2].clone()),
                _ => continue,
            };
            invocations.push(Invocation {
                line: index + 1,
                args: shell_words(&parts[0]),
                expect,
            });
        }
        assert!(
            why,
            "{name}: every case starts with a '# why:' line saying what it covers"
        );
        assert!(!invocations.is_empty(), "{name}: no '# query' lines");
        cases.push(Case {
            name,
            path,
            env,
            invocations,
        });
    }
    cases
}

/// Whitespace-separated words; single quotes group.
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
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

/// The destination and `-o` options of an invocation.
struct Parsed {
    host: String,
    user: Option<String>,
    port: Option<u16>,
    options: Vec<(String, String)>,
}

fn parse_invocation(args: &[String]) -> Parsed {
    let mut options = Vec::new();
    let mut destination = None;
    let mut i = 0;
    while i < args.len() {
        if args[i] == "-o" {
            let (k, v) = args[i + 1].split_once('=').expect("-o KEY=VALUE");
            options.push((k.to_string(), v.to_string()));
            i += 2;
        } else {
            destination = Some(args[i].clone());
            i += 1;
        }
    }
    let destination = destination.expect("a destination");
    let (user, host_port) = match destination.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h.to_string()),
        None => (None, destination.clone()),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (h.to_string(), p.parse().ok()),
        _ => (host_port, None),
    };
    Parsed {
        host,
        user,
        port,
        options,
    }
}

/// `ssh` arguments for an invocation: `-o`s first, then the destination (a URI when it has a port).
fn ssh_args(parsed: &Parsed) -> Vec<String> {
    let mut args = Vec::new();
    for (k, v) in &parsed.options {
        args.push("-o".to_string());
        args.push(format!("{k}={v}"));
    }
    let user = parsed.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
    args.push(match parsed.port {
        Some(port) => format!("ssh://{user}{}:{port}", parsed.host),
        None => format!("{user}{}", parsed.host),
    });
    args
}

/// The reference environment: a scratch HOME holding the corpus's `home/` tree, and `Local`
/// built from the same sources OpenSSH uses (the password database, uname).
pub(in crate::resolve) struct Reference {
    pub(in crate::resolve) lab: Scratch,
    pub(in crate::resolve) local: Local,
}

impl Reference {
    pub(in crate::resolve) fn new() -> Reference {
        let lab = Scratch::new("corpus");
        copy_tree(&corpus_dir().join("home"), lab.path());
        let uid: u32 = command_output("id", &["-u"])
            .and_then(|s| s.parse().ok())
            .expect("id -u");
        let user = command_output("id", &["-un"]).expect("id -un");
        let passwd = command_output("getent", &["passwd", &uid.to_string()]).expect("getent passwd");
        let home = PathBuf::from(passwd.split(':').nth(5).expect("passwd home"));
        let hostname = command_output("uname", &["-n"]).expect("uname -n");
        Reference {
            local: Local {
                user,
                home,
                hostname,
                uid,
            },
            lab,
        }
    }

    fn ssh(&self, case: &Case, args: &[String]) -> std::process::Output {
        Command::new("ssh")
            .env_clear()
            .env("HOME", self.lab.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(case.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh")
    }
}

fn copy_tree(from: &Path, to: &Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture");
            set_mode(&target, 0o644);
        }
    }
}

/// `key -> lines` for the honoured keys of `ssh -G`-format text.
fn honoured_lines(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        if Key::ALL.iter().any(|k| k.name() == key) {
            map.entry(key.to_string()).or_default().push(value.to_string());
        }
    }
    map
}

/// Identity and certificate files as OpenSSH expands them when it connects (`ssh -v` through a
/// ProxyCommand that exits at once, so nothing leaves the machine), without the implicit `-cert`
/// variants OpenSSH also tries.
fn openssh_key_files(reference: &Reference, case: &Case, args: &[String]) -> (Vec<String>, Vec<String>) {
    let mut full = vec!["-v".to_string(), "-F".to_string(), case.path.display().to_string()];
    full.extend(["-o".to_string(), "ProxyCommand=true".to_string()]);
    full.extend(args.iter().cloned());
    full.push("true".to_string());
    let output = reference.ssh(case, &full);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut identities: Vec<String> = Vec::new();
    let mut certificates = Vec::new();
    for line in stderr.lines() {
        if let Some(rest) = line.strip_prefix("debug1: identity file ") {
            let path = rest.rsplit_once(" type ").map_or(rest, |(p, _)| p).to_string();
            let implicit = path
                .strip_suffix("-cert")
                .is_some_and(|base| identities.last().is_some_and(|l| l == base));
            if !implicit {
                identities.push(path);
            }
        } else if let Some(rest) = line.strip_prefix("debug1: certificate file ") {
            certificates.push(rest.rsplit_once(" type ").map_or(rest, |(p, _)| p).to_string());
        }
    }
    (identities, certificates)
}

fn reference_openssh_available() -> bool {
    let required = std::env::var_os("SQLTUN_REQUIRE_SSH_G").is_some();
    let version = Command::new("ssh")
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
    let ok = version
        .as_deref()
        .is_some_and(|v| v.starts_with("OpenSSH_9.2p1 Debian"));
    assert!(
        ok || !required,
        "SQLTUN_REQUIRE_SSH_G is set but `ssh -V` is {version:?}, not OpenSSH_9.2p1 Debian"
    );
    ok
}

/// Tallies of a corpus run.
#[derive(Debug, Default)]
struct Tally {
    cases: usize,
    invocations: usize,
    agreeing: usize,
    deliberate: Vec<String>,
    failures: Vec<String>,
}

/// Where our resolution of an invocation differs from `ssh -G` (and from the key files OpenSSH
/// expands when it connects); `None` when it does not.
fn agreement(
    reference: &Reference,
    case: &Case,
    args: &[String],
    resolved: &Resolved,
    theirs_text: &str,
) -> Option<String> {
    let mine = honoured_lines(&resolved.to_ssh_g());
    let reference_lines = honoured_lines(theirs_text);
    let mut diffs = Vec::new();
    for key in Key::ALL {
        let a = mine.get(key.name());
        let b = reference_lines.get(key.name());
        if a != b {
            diffs.push(format!("{}: ours {a:?}, ssh -G {b:?}", key.name()));
        }
    }
    let (ids, certs) = openssh_key_files(reference, case, args);
    if resolved.all("identityfile") != ids {
        diffs.push(format!(
            "identity files: ours {:?}, ssh {ids:?}",
            resolved.all("identityfile")
        ));
    }
    if resolved.all("certificatefile") != certs {
        diffs.push(format!(
            "certificate files: ours {:?}, ssh {certs:?}",
            resolved.all("certificatefile")
        ));
    }
    (!diffs.is_empty()).then(|| diffs.join("; "))
}

fn run_corpus() -> Tally {
    let reference = Reference::new();
    let mut tally = Tally::default();
    for case in load_corpus() {
        tally.cases += 1;
        let local = &reference.local;
        // What ssh sees: HOME is the scratch home, plus the case's variables.
        let mut env: BTreeMap<String, String> = case.env.iter().cloned().collect();
        env.insert("HOME".to_string(), reference.lab.path().display().to_string());
        let lookup = |name: &str| env.get(name).cloned();
        for invocation in &case.invocations {
            tally.invocations += 1;
            let at = format!("{}:{} ({})", case.name, invocation.line, invocation.args.join(" "));
            let parsed = parse_invocation(&invocation.args);
            let q = Query {
                host: &parsed.host,
                user: parsed.user.as_deref(),
                port: parsed.port,
                options: &parsed
                    .options
                    .iter()
                    .map(|(k, v)| Directive::flag(k, v))
                    .collect::<Vec<_>>(),
                config: ConfigChoice::File(&case.path),
            };
            let ours = resolve_with_env(&q, local, &lookup);
            let args = ssh_args(&parsed);
            let mut g_args = vec!["-G".to_string(), "-F".to_string(), case.path.display().to_string()];
            g_args.extend(args.iter().cloned());
            let theirs = reference.ssh(&case, &g_args);
            let theirs_ok = theirs.status.success();
            let theirs_text = String::from_utf8_lossy(&theirs.stdout).into_owned();
            let theirs_err = String::from_utf8_lossy(&theirs.stderr).into_owned();
            let failure = match (&invocation.expect, &ours) {
                (Expect::Agree, Ok(resolved)) if theirs_ok => {
                    agreement(&reference, &case, &args, resolved, &theirs_text)
                }
                (Expect::Agree, Ok(_)) => Some(format!("ssh -G failed: {}", theirs_err.trim())),
                (Expect::Agree, Err(e)) => Some(format!("we failed: {}", e.message())),
                (Expect::BothFail(text), Err(e)) if e.message().contains(text.as_str()) => {
                    (theirs_ok).then(|| "ssh -G succeeded".to_string())
                }
                (Expect::FailsEarlier(text, openssh), Err(e)) if e.message().contains(text.as_str()) => {
                    let mut full = vec!["-v".to_string(), "-F".to_string(), case.path.display().to_string()];
                    full.extend(["-o".to_string(), "ProxyCommand=true".to_string()]);
                    full.extend(args.iter().cloned());
                    full.push("true".to_string());
                    let connect = reference.ssh(&case, &full);
                    let stderr = String::from_utf8_lossy(&connect.stderr);
                    if !theirs_ok {
                        Some(format!("ssh -G failed: {}", theirs_err.trim()))
                    } else if !stderr.contains(openssh.as_str()) {
                        Some(format!(
                            "ssh did not fail with '{openssh}' when connecting: {}",
                            stderr.trim()
                        ))
                    } else {
                        None
                    }
                }
                (Expect::Deliberate(text, reason), Err(e)) if e.message().contains(text.as_str()) => {
                    if theirs_ok {
                        tally.deliberate.push(format!("{at}: {reason}"));
                        None
                    } else {
                        Some(format!("marked deliberate but ssh -G fails too: {}", theirs_err.trim()))
                    }
                }
                (_, Err(e)) => Some(format!("our error does not match: {}", e.message())),
                (_, Ok(_)) => Some("we resolved but should have failed".to_string()),
            };
            match failure {
                None => {
                    if !matches!(invocation.expect, Expect::Deliberate(..)) {
                        tally.agreeing += 1;
                    }
                }
                Some(why) => tally.failures.push(format!("{at}: {why}")),
            }
        }
    }
    tally
}

/// The point of this module: for every case in `tests/ssh_config/`, sqltun resolves each honoured
/// directive exactly as `ssh -G` does (and expands key paths as OpenSSH does when connecting),
/// or fails where OpenSSH fails, except for the deliberate differences listed in the module docs.
/// Runs only where the reference OpenSSH (9.2p1 Debian) is installed, since defaults differ between
/// versions; set SQLTUN_REQUIRE_SSH_G=1 (CI) to make its absence a failure.
#[test]
fn corpus_agrees_with_ssh_g() {
    if !reference_openssh_available() {
        return;
    }
    let tally = run_corpus();
    assert!(tally.cases >= 25, "the corpus has only {} cases", tally.cases);
    assert!(
        tally.failures.is_empty(),
        "{} of {} invocations disagree with OpenSSH:\n{}",
        tally.failures.len(),
        tally.invocations,
        tally.failures.join("\n")
    );
    assert_eq!(tally.agreeing + tally.deliberate.len(), tally.invocations);
    if let Some(path) = std::env::var_os("SQLTUN_SSH_CONFIG_REPORT") {
        let report = format!(
            "cases {}\ninvocations {}\nagreeing {}\ndeliberate {}\n{}\n",
            tally.cases,
            tally.invocations,
            tally.agreeing,
            tally.deliberate.len(),
            tally.deliberate.join("\n")
        );
        std::fs::write(path, report).expect("write report");
    }
}

/// Every keyword in our table is one OpenSSH knows, and a made-up one is not: otherwise we would
/// accept configs OpenSSH rejects, or the reverse.
#[test]
fn keyword_table_matches_openssh() {
    if !reference_openssh_available() {
        return;
    }
    let mut unknown_to_openssh = Vec::new();
    for (keyword, _) in KEYWORDS {
        if matches!(*keyword, "host" | "match" | "include") {
            continue;
        }
        let output = Command::new("ssh")
            .args(["-G", "-F", "none", "-o", &format!("{keyword}=x"), "h"])
            .stdin(Stdio::null())
            .output()
            .expect("run ssh");
        if String::from_utf8_lossy(&output.stderr).contains("Bad configuration option") {
            unknown_to_openssh.push(*keyword);
        }
    }
    assert!(
        unknown_to_openssh.is_empty(),
        "OpenSSH does not know {unknown_to_openssh:?}"
    );
    let output = Command::new("ssh")
        .args(["-G", "-F", "none", "-o", "sqltunmadeup=x", "h"])
        .output()
        .expect("run ssh");
    assert!(String::from_utf8_lossy(&output.stderr).contains("Bad configuration option"));
}
