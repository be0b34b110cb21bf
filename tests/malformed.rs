//! Bad input, case by case: every malformed ssh config, identity file, known_hosts file, destination and
//! URL in `tests/malformed/` must end in one clear error (or a clean parse): never a panic, never a hang,
//! never a secret on stderr.
//!
//! The corpus is data; this file only knows how to run each kind:
//! - `config/*.conf`: `sqltun config -F FILE somehost`. A header of `# key: value` lines says what to
//!   expect: `why` (required), `exit` (0 or 2), `line` (the line the error names, or `none`), `place` (the
//!   file the error names, default the file itself), `says` and `stdout` (text that must appear).
//! - `keys/cases.txt`: one identity file per line and the KeyError it must give, in-process through
//!   `load_identity`, and through `sqltun connect -i FILE`.
//! - `known_hosts/*`: `# entries: N` and `# problem: LINE | text` headers, checked in-process.
//! - `args/*.txt`: one destination or URL per line (`\xNN` escapes a byte, `(empty)` is the empty
//!   string), in-process through the parser and through the binary.
//!
//! Cases that cannot be committed as files (empty, huge, FIFOs, directories) are generated below, each with its
//! reason. The binary runs with HOME in a private temporary directory, an empty environment, no
//! terminal, `--batch`, `-o ConnectTimeout=1` and 127.0.0.1:1 wherever a destination is needed, under a
//! 1 GiB address-space limit and a time bound, so that a hang or a runaway allocation fails the case
//! instead of the machine. Every case is run; a test fails once, listing every case that failed.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use sqltun::db::parse_target;
use sqltun::db::{looks_like_url, parse_db_url, parse_ssh_url};
use sqltun::dest::parse_destination;
use sqltun::secret::Secret;
use sqltun::ssh::keys::{self, KeyError};
use sqltun::ssh::known_hosts::{self, KnownHosts};

#[path = "it/support/temp_dir.rs"]
mod temp_dir;
use temp_dir::TempDir;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/malformed");
const SQLTUN: &str = env!("CARGO_BIN_EXE_sqltun");

/// Longest any single case may take, binary or in-process: far beyond what a parser needs, short
/// enough that a hang is a failed case rather than a stuck CI job.
const BOUND: Duration = Duration::from_secs(20);
/// Address-space limit for the binary (`ulimit -v`, KiB): reading an endless file fails fast.
const MEMORY_LIMIT_KIB: u64 = 1024 * 1024;
/// The text standing for a password in the args corpus: it must never reach stderr.
const SECRET: &str = "s3cr3t";
/// The host key offered to known_hosts checks (public half of a throwaway key).
const OFFERED_KEY: &str = "* ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICXd8cGJXs7FfUn5Hdy0/IR3ZRUHpn6eA8RyK0ICCdpO";

// ---------------------------------------------------------------------------------------------
// ssh_config files

/// Every malformed config in `config/` gets one `sqltun: FILE:LINE: …` line and exit 2 (or parses
/// cleanly where OpenSSH's semantics say it should), within the bound: this is what a user with a broken
/// `~/.ssh/config` sees first.
#[test]
fn config_files() {
    let home = Home::new();
    let mut failures = Failures::default();
    let mut cases = 0;
    for path in corpus_files("config") {
        if path.extension() != Some(OsStr::new("conf")) {
            continue;
        }
        cases += 1;
        let bytes = read(&path);
        let expect = ConfigExpect::from_header(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check_config(&home, &path, &expect, &mut failures);
    }
    assert!(cases >= 30, "only {cases} config cases found under {CORPUS}/config");
    failures.finish("config files");
}

/// Config files that cannot live in the corpus (empty, megabytes long, a FIFO) behave like the rest: a
/// long line must neither slow the reader down nor shift the line numbers after it, and an Include of
/// something that never ends must not block.
#[test]
fn config_files_generated() {
    let home = Home::new();
    let dir = TempDir::new("malformed-generated-config");
    let mut failures = Failures::default();
    // A FIFO nobody writes to: opening it blocks forever unless the reader checks what it opens.
    let fifo = home.dir.path().join(".ssh/malformed-fifo");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(
        made.as_ref().is_ok_and(|s| s.success()),
        "mkfifo {}: {made:?}",
        fifo.display()
    );
    let huge = "x".repeat(1 << 20);
    let patterns = "*a ".repeat(100_000);
    let many_lines = "# filler\n".repeat(200_000);
    let cases: Vec<(&str, String, ConfigExpect)> = vec![
        (
            "empty.conf",
            String::new(),
            ConfigExpect::ok("an empty file (touch ~/.ssh/config) is a clean parse with every default"),
        ),
        (
            "huge-comment.conf",
            format!("# {huge}\nPort 0\n"),
            ConfigExpect::error(
                "a 1 MiB comment line is read quickly and the next line is still line 2",
                Some(2),
                &["1 to 65535"],
            ),
        ),
        (
            "huge-host-line.conf",
            format!("Host {patterns}\n  Port 2209\n"),
            ConfigExpect::ok("a Host line with 100000 wildcard patterns is matched in linear time"),
        ),
        (
            "huge-value.conf",
            format!("Host somehost\n  Port {huge}\n"),
            ConfigExpect::error(
                "a 1 MiB bad value is reported by line, not echoed back as a 1 MiB error line",
                Some(2),
                &["1 to 65535"],
            ),
        ),
        (
            "include-fifo.conf",
            "Host somehost\n  Port 2210\nInclude malformed-fifo\n".to_string(),
            ConfigExpect::error(
                "Include of a FIFO (or any file that is not a regular file) fails fast by line instead of blocking forever",
                Some(3),
                &["malformed-fifo"],
            ),
        ),
        (
            "many-lines.conf",
            format!("{many_lines}Port 0\n"),
            ConfigExpect::error(
                "200000 lines, then a bad one: the line number is counted right",
                Some(200_001),
                &["1 to 65535"],
            ),
        ),
    ];
    for (name, text, expect) in cases {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        check_config(&home, &path, &expect, &mut failures);
    }
    failures.finish("generated config files");
}

/// What a config case expects.
#[derive(Debug, Default)]
struct ConfigExpect {
    why: String,
    exit: i32,
    line: Option<usize>,
    place: Option<String>,
    says: Vec<String>,
    stdout: Vec<String>,
}

impl ConfigExpect {
    fn ok(why: &str) -> Self {
        ConfigExpect {
            why: why.into(),
            ..ConfigExpect::default()
        }
    }

    fn error(why: &str, line: Option<usize>, says: &[&str]) -> Self {
        ConfigExpect {
            why: why.into(),
            exit: 2,
            line,
            says: says.iter().map(|s| s.to_string()).collect(),
            ..ConfigExpect::default()
        }
    }

    /// Reads the `# key: value` header (the leading comment lines, a UTF-8 BOM allowed before them).
    fn from_header(bytes: &[u8]) -> Result<Self, String> {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_start_matches('\u{feff}');
        let mut expect = ConfigExpect::default();
        let mut exit = false;
        for line in text.lines().map(|l| l.trim_end_matches('\r')) {
            let Some(comment) = line.strip_prefix("# ") else {
                if line.trim().is_empty() {
                    continue;
                }
                break;
            };
            let Some((key, value)) = comment.split_once(": ") else {
                continue;
            };
            let value = value.trim().to_string();
            match key {
                "why" => expect.why = value,
                "exit" => {
                    exit = true;
                    expect.exit = value.parse().map_err(|_| format!("bad exit {value:?}"))?;
                }
                "line" if value == "none" => expect.line = None,
                "line" => expect.line = Some(value.parse().map_err(|_| format!("bad line {value:?}"))?),
                "place" => expect.place = Some(value),
                "says" => expect.says.push(value),
                "stdout" => expect.stdout.push(value),
                _ => return Err(format!("unknown header key {key:?}")),
            }
        }
        if expect.why.is_empty() || !exit {
            return Err("the header needs `# why:` and `# exit:` lines".into());
        }
        Ok(expect)
    }
}

fn check_config(home: &Home, path: &Path, expect: &ConfigExpect, failures: &mut Failures) {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let run = home.run(&[
        "config".into(),
        "-F".into(),
        path.as_os_str().to_owned(),
        "-o".into(),
        "ConnectTimeout=1".into(),
        "somehost".into(),
    ]);
    let mut problems = run.problems(expect.exit);
    if expect.exit == 0 {
        for needle in &expect.stdout {
            if !run.stdout_text().contains(needle.as_str()) {
                problems.push(format!("stdout lacks {needle:?}"));
            }
        }
    } else if let Some(line) = run.error_line(&mut problems) {
        let place = expect.place.clone().unwrap_or_else(|| path.display().to_string());
        let prefix = match expect.line {
            Some(n) => format!("sqltun: {place}:{n}: "),
            None => format!("sqltun: {place}: "),
        };
        if !line.starts_with(&prefix) {
            problems.push(format!("the error should start with {prefix:?}"));
        }
        for needle in &expect.says {
            if !line.to_lowercase().contains(&needle.to_lowercase()) {
                problems.push(format!("the error should say {needle:?}"));
            }
        }
        if line.len() > 1000 {
            problems.push(format!("the error line is {} bytes long", line.len()));
        }
    }
    if !problems.is_empty() {
        problems.push(format!("why this case exists: {}", expect.why));
    }
    failures.case(&name, &run, problems);
}

/// Files given on the command line that never end (`/dev/zero`) get one line naming the file and exit
/// 2, within the bound and without first reading until memory runs out (a FIFO given on purpose, as in
/// `--password-file <(vault …)`, may block: that is what the user asked for).
#[test]
fn endless_files_on_the_command_line() {
    let home = Home::new();
    let mut failures = Failures::default();
    for (flag, subcommand) in [
        ("-F", "config"),
        ("--password-file", "connect"),
        ("--passphrase-file", "connect"),
    ] {
        let args: Vec<OsString> = if subcommand == "config" {
            vec!["config".into(), flag.into(), "/dev/zero".into(), "somehost".into()]
        } else {
            connect_args(&[
                flag.into(),
                "/dev/zero".into(),
                "--ssh".into(),
                "127.0.0.1:1".into(),
                "--db".into(),
                "127.0.0.1:5432".into(),
            ])
        };
        let run = home.run(&args);
        let mut problems = run.problems(2);
        if let Some(line) = run.error_line(&mut problems)
            && !line.contains("/dev/zero")
        {
            problems.push("the error does not name the file".into());
        }
        failures.case(&format!("{subcommand} {flag} /dev/zero"), &run, problems);
    }
    failures.finish("endless files on the command line");
}

// ---------------------------------------------------------------------------------------------
// Identity files

/// One row of keys/cases.txt.
#[derive(Debug, Clone)]
struct KeyCase {
    file: String,
    expect: String,
    passphrase: Option<String>,
    why: String,
}

fn key_cases() -> Vec<KeyCase> {
    let text = fs::read_to_string(Path::new(CORPUS).join("keys/cases.txt"))
        .unwrap_or_else(|e| panic!("read keys/cases.txt: {e}"));
    let cases: Vec<KeyCase> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let fields: Vec<&str> = l.splitn(4, " | ").map(str::trim).collect();
            let [file, expect, passphrase, why] = fields[..] else {
                panic!("keys/cases.txt: not FILE | EXPECT | PASSPHRASE | why: {l:?}");
            };
            KeyCase {
                file: file.into(),
                expect: expect.into(),
                passphrase: (passphrase != "-").then(|| passphrase.to_string()),
                why: why.into(),
            }
        })
        .collect();
    assert!(cases.len() >= 20, "only {} key cases", cases.len());
    cases
}

/// Whether `error` is the kind of refusal `expect` names.
fn key_error_matches(expect: &str, error: &KeyError) -> bool {
    match expect {
        "corrupt" => matches!(error, KeyError::Corrupt { .. }),
        "unsupported" => matches!(error, KeyError::Unsupported { .. }),
        "unreadable" => matches!(error, KeyError::Unreadable(_)),
        "not-found" => matches!(error, KeyError::NotFound),
        "needs-passphrase" => matches!(error, KeyError::NeedsPassphrase { .. }),
        "error" => true,
        _ => panic!("unknown EXPECT {expect:?} in keys/cases.txt"),
    }
}

/// Words that start the fix in a describe() sentence.
const FIXES: [&str; 10] = [
    "check",
    "restore",
    "create",
    "give",
    "convert",
    "rewrite",
    "load",
    "fix",
    "try again",
    "remove",
];

/// Each truncated or garbage identity file gives the KeyError the table names, and its describe()
/// names the file and what to do: that sentence is what a user sees for `-i FILE`.
#[test]
fn key_files_in_process() {
    let dir = TempDir::new("malformed-keys");
    let mut failures = Failures::default();
    let mut cases: Vec<(String, PathBuf, String, Option<String>, String)> = Vec::new();
    for case in key_cases() {
        let path = private_copy(&Path::new(CORPUS).join("keys").join(&case.file), dir.path());
        cases.push((case.file.clone(), path, case.expect, case.passphrase, case.why));
    }
    // Generated: what cannot be a committed file.
    let big = dir.path().join("oversized");
    fs::write(&big, "A".repeat((1 << 20) + 1)).unwrap_or_else(|e| panic!("write oversized: {e}"));
    set_private(&big);
    let generated = [
        (big, "corrupt", "a file over 1 MiB is refused unread, naming its size"),
        (dir.path().join("a-directory"), "unreadable", "a directory given as -i"),
        (dir.path().join("missing"), "not-found", "a path that does not exist"),
    ];
    fs::create_dir_all(dir.path().join("a-directory")).unwrap_or_else(|e| panic!("mkdir: {e}"));
    for (path, expect, why) in generated {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        cases.push((name, path, expect.into(), None, why.into()));
    }

    for (name, path, expect, passphrase, why) in cases {
        let label = format!(
            "{name} ({})",
            passphrase.as_deref().map_or("no passphrase", |_| "passphrase")
        );
        let outcome = bounded({
            let path = path.clone();
            move || keys::load_identity(&path, passphrase.map(Secret::new).as_ref())
        });
        let mut problems = Vec::new();
        match (expect.as_str(), outcome) {
            (_, None) => problems.push(format!("load_identity did not return within {BOUND:?}")),
            ("ok", Some(Ok(_))) => {}
            ("ok", Some(Err(e))) => problems.push(format!("should load, got {e:?}: {}", e.describe(&path))),
            (_, Some(Ok(_))) => problems.push(format!("loaded, but should be refused as {expect}")),
            (_, Some(Err(e))) => {
                let described = e.describe(&path);
                if !key_error_matches(&expect, &e) {
                    problems.push(format!("expected {expect}, got {e:?}: {described}"));
                }
                if !described.contains(&path.display().to_string()) {
                    problems.push(format!("describe() does not name the file: {described}"));
                }
                if !FIXES.iter().any(|f| described.to_lowercase().contains(f)) {
                    problems.push(format!("describe() says nothing to do: {described}"));
                }
                if described.chars().any(char::is_control) {
                    problems.push(format!("describe() holds control characters: {described:?}"));
                }
            }
        }
        if !problems.is_empty() {
            problems.push(format!("why this case exists: {why}"));
        }
        failures.in_process(&label, problems);
    }
    failures.finish("identity files, in-process");
}

/// `-i FILE` with a broken key is a usage error naming the file (exit 2), reported before any
/// connection is tried: a user (or CI job) with a typo in `-i` must not be told the bastion is
/// unreachable, and an encrypted key without a passphrase under --batch is "an immediate, named error"
/// (PRODUCT.md). The destination is 127.0.0.1:1, so reaching the network shows up as exit 3.
#[test]
fn key_files_on_the_command_line() {
    let home = Home::new();
    let dir = TempDir::new("malformed-cli-keys");
    let mut failures = Failures::default();
    for case in key_cases() {
        if case.expect == "ok" || case.passphrase.is_some() {
            continue;
        }
        let path = private_copy(&Path::new(CORPUS).join("keys").join(&case.file), dir.path());
        let run = home.run(&connect_args(&[
            "--ssh".into(),
            "127.0.0.1:1".into(),
            "--db".into(),
            "127.0.0.1:5432".into(),
            "-i".into(),
            path.as_os_str().to_owned(),
        ]));
        let mut problems = run.problems(2);
        if let Some(line) = run.error_line(&mut problems)
            && !line.contains(&path.display().to_string())
        {
            problems.push("the error does not name the identity file".into());
        }
        if !problems.is_empty() {
            problems.push(format!("why this case exists: {}", case.why));
        }
        failures.case(&case.file, &run, problems);
    }
    failures.finish("identity files via -i");
}

// ---------------------------------------------------------------------------------------------
// known_hosts files

/// Malformed known_hosts lines never fail the file: each is recorded as a problem with its own line
/// number (what `-v` prints), the good lines around it still count, and checking a host key against
/// the result works.
#[test]
fn known_hosts_files() {
    let mut failures = Failures::default();
    let offered = KnownHosts::parse(Path::new("offered"), OFFERED_KEY);
    assert_eq!(offered.entries.len(), 1, "{:?}", offered.problems);
    let offered = offered.entries[0].key.clone();
    let dir = TempDir::new("malformed-known-hosts");
    let huge_line = dir.path().join("huge-line");
    fs::write(
        &huge_line,
        format!(
            "# why: a 1 MiB garbage key is one problem on its line, and the next line still counts.\n# entries: 1\n# problem: 4 | not valid base64\nhost.example ssh-ed25519 {}!\n{}\n",
            "A".repeat(1 << 20),
            OFFERED_KEY
        ),
    )
    .unwrap_or_else(|e| panic!("write huge-line: {e}"));

    let mut files = corpus_files("known_hosts");
    files.push(huge_line);
    assert!(files.len() >= 6, "only {} known_hosts cases", files.len());
    for path in files {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut problems = Vec::new();
        let (entries, expected) = known_hosts_header(&read(&path)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let loaded = bounded({
            let path = path.clone();
            move || KnownHosts::load(&path)
        });
        let file = match loaded {
            None => {
                failures.in_process(&name, vec![format!("load did not return within {BOUND:?}")]);
                continue;
            }
            Some(Err(e)) => {
                failures.in_process(&name, vec![format!("load failed: {e}")]);
                continue;
            }
            Some(Ok(None)) => panic!("{name}: vanished"),
            Some(Ok(Some(file))) => file,
        };
        if file.entries.len() != entries {
            problems.push(format!(
                "{} entries (lines {:?}), expected {entries}",
                file.entries.len(),
                file.entries.iter().map(|e| e.line).collect::<Vec<_>>()
            ));
        }
        let found: Vec<usize> = file.problems.iter().map(|p| p.line).collect();
        let wanted: Vec<usize> = expected.iter().map(|(l, _)| *l).collect();
        if found != wanted {
            problems.push(format!("problems on lines {found:?}, expected {wanted:?}"));
        }
        for (line, needle) in &expected {
            if let Some(p) = file.problems.iter().find(|p| p.line == *line)
                && !p.message.contains(needle.as_str())
            {
                problems.push(format!("line {line}: {:?} does not say {needle:?}", p.message));
            }
        }
        for p in &file.problems {
            if p.message.chars().any(char::is_control) {
                problems.push(format!("line {}: control character in {:?}", p.line, p.message));
            }
            if p.message.len() > 300 {
                problems.push(format!("line {}: a {}-byte problem message", p.line, p.message.len()));
            }
        }
        for name in [
            known_hosts::lookup_name("host.example", 22),
            known_hosts::lookup_name("host.example", 2222),
        ] {
            let _ = known_hosts::check(std::slice::from_ref(&file), &[name], &offered);
        }
        failures.in_process(&name, problems);
    }
    failures.finish("known_hosts files");
}

/// `# entries: N` and `# problem: LINE | text` from a known_hosts case.
fn known_hosts_header(bytes: &[u8]) -> Result<(usize, Vec<(usize, String)>), String> {
    let text = String::from_utf8_lossy(bytes);
    let mut entries = None;
    let mut problems = Vec::new();
    let mut why = false;
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        if line.starts_with("# why: ") {
            why = true;
        } else if let Some(n) = line.strip_prefix("# entries: ") {
            entries = Some(n.trim().parse().map_err(|_| format!("bad entries {n:?}"))?);
        } else if let Some(p) = line.strip_prefix("# problem: ") {
            let (n, needle) = p.split_once(" | ").ok_or_else(|| format!("bad problem {p:?}"))?;
            let n = n.trim().parse().map_err(|_| format!("bad problem line {n:?}"))?;
            problems.push((n, needle.trim().to_string()));
        }
    }
    if !why {
        return Err("no `# why:` line".into());
    }
    problems.sort();
    Ok((entries.ok_or("no `# entries:` line")?, problems))
}

// ---------------------------------------------------------------------------------------------
// Destinations and URLs

/// Malformed `--ssh` destinations are refused by the parser with a message, and by the binary with exit
/// 2 before anything is dialled; nothing in the message may drive the terminal (escape sequences, line
/// breaks typed into the value).
#[test]
fn bad_destinations() {
    let home = Home::new();
    let mut failures = Failures::default();
    for value in arg_lines("ssh-bad.txt") {
        let label = format!("--ssh {}", shown(&value));
        let mut problems = Vec::new();
        match std::str::from_utf8(&value).map(parse_destination) {
            Ok(Ok(dest)) => problems.push(format!("parse_destination accepted it: {dest:?}")),
            Ok(Err(message)) => check_library_message(&message, &mut problems),
            Err(_) => {}
        }
        if !value.contains(&0) {
            let run = home.run(&connect_args(&[
                "--ssh".into(),
                OsString::from_vec(value.clone()),
                "--db".into(),
                "127.0.0.1:5432".into(),
            ]));
            problems.extend(run.problems(2));
            failures.case(&label, &run, problems);
        } else {
            failures.in_process(&label, problems);
        }
    }
    failures.finish("bad --ssh destinations");
}

/// Odd but valid destinations (IPv6 without brackets, `@` in the user, a trailing dot) parse, and the
/// binary resolves them (`sqltun config`) without error.
#[test]
fn odd_but_valid_destinations() {
    let home = Home::new();
    let mut failures = Failures::default();
    for value in arg_lines("ssh-ok.txt") {
        let label = format!("--ssh {}", shown(&value));
        let mut problems = Vec::new();
        let text = String::from_utf8(value.clone()).unwrap_or_else(|_| panic!("{label}: not UTF-8"));
        if let Err(message) = parse_destination(&text) {
            problems.push(format!("refused: {message}"));
        }
        let run = home.run(&["config".into(), "-F".into(), "none".into(), text.into()]);
        problems.extend(run.problems(0));
        failures.case(&label, &run, problems);
    }
    failures.finish("odd but valid destinations");
}

/// Malformed `--db` targets and URLs are refused with a message that never shows the password, and the
/// binary exits 2 before dialling (127.0.0.1:1 would give exit 3), without the password on stderr.
#[test]
fn bad_targets_and_urls() {
    let home = Home::new();
    let mut failures = Failures::default();
    for value in arg_lines("db-bad.txt") {
        let label = format!("--db {}", shown(&value));
        let mut problems = Vec::new();
        if let Ok(text) = std::str::from_utf8(&value) {
            match parse_db(text) {
                Ok(()) => problems.push("the parser accepted it".into()),
                Err(message) => {
                    check_library_message(&message, &mut problems);
                    if message.contains(SECRET) {
                        problems.push(format!("the parser's message shows the password: {message}"));
                    }
                }
            }
        }
        if !value.contains(&0) {
            let run = home.run(&connect_args(&[
                "--ssh".into(),
                "127.0.0.1:1".into(),
                "--db".into(),
                OsString::from_vec(value.clone()),
            ]));
            problems.extend(run.problems(2));
            failures.case(&label, &run, problems);
        } else {
            failures.in_process(&label, problems);
        }
    }
    failures.finish("bad --db targets and URLs");
}

/// Valid but unusual targets and URLs parse (the refusals above are not over-eager).
#[test]
fn odd_but_valid_targets_and_urls() {
    let mut failures = Failures::default();
    for value in arg_lines("db-ok.txt") {
        let label = format!("--db {}", shown(&value));
        let text = String::from_utf8(value).unwrap_or_else(|_| panic!("{label}: not UTF-8"));
        let problems = match parse_db(&text) {
            Ok(()) => Vec::new(),
            Err(message) => vec![format!("refused: {message}")],
        };
        failures.in_process(&label, problems);
    }
    failures.finish("odd but valid --db values");
}

/// Malformed `postgres+ssh://` URLs (the TablePlus/TablePro form given instead of --ssh/--db) get one
/// `sqltun:` line and exit 2, without the SSH or database password anywhere on stderr.
#[test]
fn bad_ssh_urls() {
    let home = Home::new();
    let mut failures = Failures::default();
    for value in arg_lines("ssh-url-bad.txt") {
        let label = shown(&value);
        let mut problems = Vec::new();
        let text = String::from_utf8(value).unwrap_or_else(|_| panic!("{label}: not UTF-8"));
        match parse_ssh_url(&text) {
            Ok(_) => problems.push("parse_ssh_url accepted it".into()),
            Err(message) => {
                check_library_message(&message, &mut problems);
                if message.contains(SECRET) {
                    problems.push(format!("the parser's message shows the password: {message}"));
                }
            }
        }
        let run = home.run(&connect_args(&[text.into()]));
        let mut more = run.problems(2);
        run.error_line(&mut more);
        problems.extend(more);
        failures.case(&label, &run, problems);
    }
    failures.finish("bad +ssh URLs");
}

// ---------------------------------------------------------------------------------------------
// Names that would run commands through ProxyCommand

/// Where a name can come from, and how a case puts `name` there. `kind` says whether it is the user or
/// the host name that is tried.
#[derive(Clone, Copy, PartialEq)]
enum NameSource {
    Flag,
    Url,
    ConfigFile,
    DashO,
    JumpFlag,
    JumpOwnConfig,
}

/// The arguments (and config text) that put `name` in `source` as a user (`user`) or a host name.
fn injection_case(source: NameSource, user: bool, name: &str, proxy: &str) -> (Vec<OsString>, String, &'static str) {
    let proxy_block = format!("Host *\n  ProxyCommand {proxy}\n");
    let db = ["--db".to_string(), "db:5432".to_string()];
    let quoted = |v: &str| format!("\"{v}\"");
    let (args, config, place): (Vec<String>, String, &str) = match (source, user) {
        (NameSource::Flag, true) => (vec![format!("--ssh={name}@127.0.0.1")], proxy_block, "--ssh"),
        (NameSource::Flag, false) => (vec![format!("--ssh=ok@{name}")], proxy_block, "--ssh"),
        (NameSource::Url, _) => {
            let encoded: String = name
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            let url = format!("postgres+ssh://{encoded}@127.0.0.1/app@db:5432/appdb");
            return (vec![url.into()], proxy_block, "the SSH user (percent-decoded)");
        }
        (NameSource::ConfigFile, true) => (
            vec!["--ssh".into(), "target".into()],
            format!(
                "Host target\n  HostName 127.0.0.1\n  User {}\n{proxy_block}",
                quoted(name)
            ),
            "config:3: User",
        ),
        (NameSource::ConfigFile, false) => (
            vec!["--ssh".into(), "target".into()],
            format!("Host target\n  HostName {}\n{proxy_block}", quoted(name)),
            "config:2: HostName",
        ),
        (NameSource::DashO, true) => (
            vec!["--ssh".into(), "127.0.0.1".into(), "-o".into(), format!("User={name}")],
            proxy_block,
            "-o User",
        ),
        (NameSource::DashO, false) => (
            vec![
                "--ssh".into(),
                "127.0.0.1".into(),
                "-o".into(),
                format!("HostName={name}"),
            ],
            proxy_block,
            "-o HostName",
        ),
        (NameSource::JumpFlag, true) => (
            vec!["--ssh".into(), "127.0.0.1".into(), format!("--jump={name}@127.0.0.1")],
            proxy_block,
            "-J",
        ),
        (NameSource::JumpFlag, false) => (
            vec!["--ssh".into(), "127.0.0.1".into(), format!("--jump=ok@{name}")],
            proxy_block,
            "-J",
        ),
        (NameSource::JumpOwnConfig, true) => (
            vec!["--ssh".into(), "target".into()],
            format!(
                "Host target\n  HostName 127.0.0.1\n  ProxyJump jump\nHost jump\n  HostName 127.0.0.1\n  User {}\n{proxy_block}",
                quoted(name)
            ),
            "config:6: User",
        ),
        (NameSource::JumpOwnConfig, false) => (
            vec!["--ssh".into(), "target".into()],
            format!(
                "Host target\n  HostName 127.0.0.1\n  ProxyJump jump\nHost jump\n  HostName {}\n{proxy_block}",
                quoted(name)
            ),
            "config:5: HostName",
        ),
    };
    let mut all = args;
    all.extend(db);
    (all.into_iter().map(OsString::from).collect(), config, place)
}

/// A `+ssh` URL shared by someone else (`postgres+ssh://x%0Atouch%20…@host/…`) ran commands on the
/// user's machine: the SSH user was percent-decoded after the checks and put unquoted into a
/// ProxyCommand, which runs under `sh -c`. Every source of a user or host name (--ssh, the URL after
/// decoding, a config file's User and HostName, -o, -J, a jump host's own config) with every character a
/// shell acts on must end in exit 2 with a message naming the source, and the marker file the injected
/// command would create must never appear. A control run per source with a harmless name proves the
/// ProxyCommand is really reached from there (it creates its own file), so the refusals are not vacuous.
#[test]
fn names_never_reach_the_shell() {
    let home = Home::new();
    let dir = TempDir::new("malformed-inject");
    let marker = dir.path().join("pwned");
    let ran = dir.path().join("proxycommand-ran");
    let m = marker.display().to_string();
    assert!(
        m.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b)),
        "the marker path must need no quoting: {m}"
    );
    // Unquoted, as OpenSSH would run it: an injected `>MARKER` creates the marker.
    let proxy = format!("printf \"\" -l %r %h %p && : >{}", ran.display());
    let users = [
        format!("x\n>{m}\n"),
        format!("x;>{m}"),
        format!("x$(>{m})"),
        format!("x`>{m}`"),
        format!("x|>{m}"),
        format!("x&>{m}"),
        format!("x>{m}"),
        format!("x >{m}"),
        format!("-x;>{m}"),
    ];
    let hosts = [
        format!("h\n>{m}\n"),
        format!("h;>{m}"),
        format!("h$(>{m})"),
        format!("h`>{m}`"),
        format!("h|>{m}"),
        format!("h&>{m}"),
        format!("h >{m}"),
        format!("-h;>{m}"),
    ];
    let sources = [
        NameSource::Flag,
        NameSource::Url,
        NameSource::ConfigFile,
        NameSource::DashO,
        NameSource::JumpFlag,
        NameSource::JumpOwnConfig,
    ];
    let mut failures = Failures::default();
    let mut cases = 0;
    for source in sources {
        for user in [true, false] {
            if source == NameSource::Url && !user {
                continue; // the URL's host is not decoded: its `%` stays literal, and `%` is no shell character
            }
            let names = if user { &users[..] } else { &hosts[..] };
            for name in names {
                // A newline cannot be written inside a config file's value: it ends the line.
                if name.contains('\n') && matches!(source, NameSource::ConfigFile | NameSource::JumpOwnConfig) {
                    continue;
                }
                cases += 1;
                let (args, config, place) = injection_case(source, user, name, &proxy);
                let config_path = dir.path().join("config");
                fs::write(&config_path, &config).unwrap_or_else(|e| panic!("write config: {e}"));
                let mut full: Vec<OsString> = vec!["connect".into(), "--batch".into(), "-F".into(), config_path.into()];
                full.extend(args);
                let run = home.run(&full);
                let mut problems = Vec::new();
                match run.status.and_then(|s| s.code()) {
                    Some(2) => {}
                    other => problems.push(format!("exit {other:?}, expected 2")),
                }
                let stderr = run.stderr_text();
                let mut what = if user { "SSH user name" } else { "SSH host name" };
                // `-o` lines are split and checked like config lines first (as `ssh -o` splits them):
                // whitespace makes two values, a newline is a control character; both refused by name.
                let mut place = place;
                if source == NameSource::DashO && name.contains(char::is_whitespace) {
                    (what, place) = (if user { "User" } else { "HostName" }, "-o: ");
                }
                if !stderr.contains(what) || !stderr.contains(place) {
                    problems.push(format!("stderr does not name the {what} and `{place}`"));
                }
                if stderr.lines().filter(|l| !l.trim().is_empty()).count() != 1 {
                    problems.push("not one line on stderr".into());
                }
                for file in [&marker, &ran] {
                    if file.exists() {
                        problems.push(format!("{} was created", file.display()));
                        let _ = fs::remove_file(file);
                    }
                }
                let label = format!(
                    "{} {}: {}",
                    place,
                    if user { "user" } else { "host" },
                    shown(name.as_bytes())
                );
                failures.case(&label, &run, problems);
            }
        }
        // The control: the same source with a harmless name reaches the ProxyCommand, which fails the hop.
        let (args, config, place) = injection_case(source, true, "deploy", &proxy);
        let config_path = dir.path().join("config");
        fs::write(&config_path, &config).unwrap_or_else(|e| panic!("write config: {e}"));
        let mut full: Vec<OsString> = vec!["connect".into(), "--batch".into(), "-F".into(), config_path.into()];
        full.extend(args);
        let run = home.run(&full);
        let mut problems = Vec::new();
        if !ran.exists() {
            problems.push("the ProxyCommand did not run for a harmless name".into());
        }
        if run.status.and_then(|s| s.code()) != Some(3) {
            problems.push("expected exit 3 (the ProxyCommand exits at once)".into());
        }
        let _ = fs::remove_file(&ran);
        failures.case(&format!("{place} control"), &run, problems);
    }
    assert!(!marker.exists(), "{} exists", marker.display());
    assert!(cases >= 80, "only {cases} cases");
    failures.finish("names that would reach ProxyCommand's shell");
}

/// Text with `://` that is not a URL the parser recognises (a scheme starting with a digit or a control
/// character, a space before `://`, nothing before it) is refused with what is wrong, not with "database
/// URLs are not supported yet", which has been false since URLs were added.
#[test]
fn url_like_targets_are_not_called_unsupported() {
    let mut failures = Failures::default();
    for input in [
        "://db",
        "1postgres://db",
        "postgres ://db",
        "_x://db:5432",
        "\u{1b}[2J://db",
    ] {
        let problems = match parse_db(input) {
            Ok(()) => vec!["accepted".to_string()],
            Err(message) if message.contains("not supported yet") => vec![format!("says: {message}")],
            Err(_) => Vec::new(),
        };
        failures.in_process(&format!("--db {input:?}"), problems);
    }
    failures.finish("URL-like --db values");
}

/// Found by fuzzing: libpq's `host=`/`hostaddr=`/`port=` and SQL Server's `serverName=`/`portNumber=`
/// would send the client past the tunnel, so such URLs are refused; a `#` before them must not hide
/// them (libpq and the JDBC driver read parameters after a `#`; in `{…}` it is part of a value). Either
/// refuse the URL or hand back a rewritten URL without the override.
#[test]
fn hash_does_not_hide_overriding_parameters() {
    let mut failures = Failures::default();
    for input in [
        "postgres://db.internal/app?sslmode=require#&host=evil.example",
        "postgres://db.internal/app?x=#&port=5433",
        "postgresql://db.internal/app#?hostaddr=192.0.2.1",
        "sqlserver://mssql:1433;databaseName=x#;serverName=evil.example",
        "sqlserver://mssql:1433;password={a#b};portNumber=1444",
    ] {
        let problems = match parse_db_url(input) {
            Err(_) => Vec::new(),
            Ok(url) => {
                let rewritten = url.rewritten("127.0.0.1", 54321).to_ascii_lowercase();
                ["host=", "hostaddr=", "port=", "servername=", "portnumber="]
                    .iter()
                    .filter(|key| rewritten.contains(*key))
                    .map(|key| format!("accepted, and the rewritten URL still says {key}…: {rewritten}"))
                    .collect()
            }
        };
        failures.in_process(input, problems);
    }
    failures.finish("URLs with an overriding parameter after a #");
}

/// `--db` as the CLI reads it: a URL when it looks like one, else host:port.
fn parse_db(text: &str) -> Result<(), String> {
    if looks_like_url(text) {
        parse_db_url(text).map(|_| ())
    } else {
        parse_target(text).map(|_| ())
    }
}

/// A parser's message: not empty, no control characters.
fn check_library_message(message: &str, problems: &mut Vec<String>) {
    if message.trim().is_empty() {
        problems.push("empty message".into());
    }
    if message.chars().any(char::is_control) {
        problems.push(format!("the message holds control characters: {message:?}"));
    }
}

/// The cases of `args/NAME`: one per line; `# ` starts a comment line, `\xNN` is a byte, `\\` a
/// backslash, `(empty)` the empty string.
fn arg_lines(name: &str) -> Vec<Vec<u8>> {
    let path = Path::new(CORPUS).join("args").join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut why = false;
    let mut cases = Vec::new();
    for line in text.lines() {
        if line.starts_with("# why: ") {
            why = true;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line == "(empty)" {
            cases.push(Vec::new());
            continue;
        }
        cases.push(unescape(line).unwrap_or_else(|e| panic!("{name}: {line:?}: {e}")));
    }
    assert!(why, "{name}: no `# why:` line");
    assert!(cases.len() >= 5, "{name}: only {} cases", cases.len());
    cases
}

fn unescape(line: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hex = bytes.get(i + 2..i + 4).ok_or("\\x needs two hex digits")?;
            let hex = std::str::from_utf8(hex).map_err(|e| e.to_string())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
            i += 4;
        } else if b == b'\\' && bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// A case's value for a failure report, control characters escaped.
fn shown(value: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(value))
}

/// `connect` as a CI job runs it: no config, no prompts, one second to connect.
fn connect_args(rest: &[OsString]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "connect".into(),
        "--batch".into(),
        "-F".into(),
        "none".into(),
        "-o".into(),
        "ConnectTimeout=1".into(),
    ];
    args.extend_from_slice(rest);
    args
}

// ---------------------------------------------------------------------------------------------
// Running the binary

/// A private HOME for the binary, with the files config cases may `Include` relative to `~/.ssh`.
struct Home {
    dir: TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = TempDir::new("malformed-home");
        let ssh = dir.path().join(".ssh");
        fs::create_dir_all(&ssh).unwrap_or_else(|e| panic!("mkdir {}: {e}", ssh.display()));
        fs::set_permissions(&ssh, fs::Permissions::from_mode(0o700)).unwrap_or_else(|e| panic!("chmod: {e}"));
        // include-loop.conf includes this file, which includes itself.
        fs::write(ssh.join("malformed-loop.conf"), "Include malformed-loop.conf\n")
            .unwrap_or_else(|e| panic!("write loop: {e}"));
        // include-glob-blowup.conf's pattern is matched against this long name (it does not match).
        fs::write(ssh.join("a".repeat(40)), "").unwrap_or_else(|e| panic!("write long name: {e}"));
        Home { dir }
    }

    /// Runs `sqltun ARGS` with this HOME, an empty environment, no terminal, under the memory limit and
    /// the time bound.
    fn run(&self, args: &[OsString]) -> Run {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(format!("ulimit -v {MEMORY_LIMIT_KIB} 2>/dev/null; exec \"$@\""))
            .arg("sh")
            .arg(SQLTUN)
            .args(args)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", "/usr/bin:/bin")
            // glibc reserves address space per thread arena; keep it within the limit above.
            .env("MALLOC_ARENA_MAX", "2")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("spawn {SQLTUN}: {e}"));
        let stdout = collect(child.stdout.take());
        let stderr = collect(child.stderr.take());
        let deadline = Instant::now() + BOUND;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                // A bound on waiting, not synchronisation: the child's exit is what ends the loop.
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("wait for sqltun: {e}"),
            }
        };
        Run {
            args: args.to_vec(),
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }
}

fn collect(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        out
    })
}

/// One finished (or killed) run of the binary.
struct Run {
    args: Vec<OsString>,
    /// `None`: killed after [`BOUND`].
    status: Option<ExitStatus>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Run {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// What is wrong with this run for a case expecting exit `code`: a hang, a signal, a panic, the wrong
    /// code, control characters or a secret on stderr.
    fn problems(&self, code: i32) -> Vec<String> {
        let mut problems = Vec::new();
        let stderr = self.stderr_text();
        match self.status {
            None => problems.push(format!("still running after {BOUND:?}: killed")),
            Some(status) => match status.code() {
                Some(c) if c == code => {}
                Some(c) => problems.push(format!("exit {c}, expected {code}")),
                None => problems.push(format!("ended by a signal ({status}), expected exit {code}")),
            },
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            problems.push("panicked".into());
        }
        if stderr.contains("memory allocation") || stderr.contains("out of memory") {
            problems.push("ran out of memory".into());
        }
        if stderr.chars().any(|c| c.is_control() && c != '\n') {
            problems.push("control characters on stderr (they reach the terminal raw)".into());
        }
        if stderr.contains(SECRET) {
            problems.push(format!("the password {SECRET:?} is on stderr"));
        }
        if code != 0 && stderr.trim().is_empty() {
            problems.push("nothing on stderr".into());
        }
        problems
    }

    /// The one `sqltun: …` line an error must be; anything else is a problem.
    fn error_line(&self, problems: &mut Vec<String>) -> Option<String> {
        let stderr = self.stderr_text();
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        match lines[..] {
            [line] if line.starts_with("sqltun: ") => Some(line.to_string()),
            [line] => {
                problems.push("the error line does not start with `sqltun: `".into());
                Some(line.to_string())
            }
            [] => None,
            _ => {
                problems.push(format!("{} lines on stderr, expected one", lines.len()));
                lines.first().map(|l| l.to_string())
            }
        }
    }

    fn describe(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|a| shown(a.as_bytes())).collect();
        let mut out = format!("    sqltun {}\n", args.join(" "));
        let status = self.status.map_or_else(|| "killed".to_string(), |s| s.to_string());
        let _ = writeln!(out, "    status: {status}");
        let _ = writeln!(out, "    stderr: {}", excerpt(&self.stderr_text()));
        out
    }
}

fn excerpt(text: &str) -> String {
    let short: String = text.chars().take(400).collect();
    format!("{short:?}{}", if short.len() < text.len() { "…" } else { "" })
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping

/// Collects every failed case so one test run lists all of them.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn case(&mut self, name: &str, run: &Run, problems: Vec<String>) {
        if problems.is_empty() {
            return;
        }
        self.0
            .push(format!("{name}: {}\n{}", problems.join("; "), run.describe()));
    }

    fn in_process(&mut self, name: &str, problems: Vec<String>) {
        if !problems.is_empty() {
            self.0.push(format!("{name}: {}", problems.join("; ")));
        }
    }

    fn finish(self, what: &str) {
        assert!(
            self.0.is_empty(),
            "{} failing case(s) among the {what}:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// Runs `f` on its own thread and waits at most [`BOUND`] for it; `None` if it did not finish (the
/// thread is left behind: a hang here is the bug being reported).
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND).ok()
}

fn corpus_files(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(CORPUS).join(kind);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A copy of a key fixture with mode 0600 (git keeps 0644, which load_identity rightly refuses).
fn private_copy(from: &Path, dir: &Path) -> PathBuf {
    let name = from
        .file_name()
        .unwrap_or_else(|| panic!("{} has no name", from.display()));
    let to = dir.join(name);
    if !to.exists() {
        fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        set_private(&to);
    }
    to
}

fn set_private(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod 600 {}: {e}", path.display()));
}
