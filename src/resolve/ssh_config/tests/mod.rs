use super::algorithms::assemble_algorithms;
use super::glob::fnmatch;
use super::keywords::KEYWORDS;
use super::lexer::{argv_split, split_keyword};
use super::local::command_output;
use super::values::{parse_int, parse_port, parse_time, sha1_hex};
use super::*;
use crate::pattern::{self, ListMatch};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

mod corpus;
pub(in crate::resolve) use corpus::*;

// -----------------------------------------------------------------------------------------
// Support

/// A scratch directory, removed when dropped.
pub(in crate::resolve) struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("sqltun-ssh-config-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
    pub(in crate::resolve) fn path(&self) -> &Path {
        &self.0
    }
    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, text).expect("write file");
        set_mode(&path, 0o644);
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn local_for(home: &Path) -> Local {
    Local {
        user: "alice".to_string(),
        home: home.to_path_buf(),
        hostname: "laptop.example.org".to_string(),
        uid: 4242,
    }
}

/// Resolves with only `HOME` (= `home`) in the environment.
fn resolve_at(query: &Query, local: &Local, home: &Path) -> Result<Resolved> {
    let home = home.display().to_string();
    resolve_with_env(query, local, &|name: &str| (name == "HOME").then(|| home.clone()))
}

fn query<'a>(host: &'a str, config: &'a Path) -> Query<'a> {
    Query {
        host,
        user: None,
        port: None,
        options: &[],
        config: ConfigChoice::File(config),
    }
}

fn resolve_text(text: &str, host: &str) -> (Result<Resolved>, Scratch) {
    let lab = Scratch::new("unit");
    let config = lab.write("config", text);
    let home = lab.path().join("home");
    let local = local_for(&home);
    (resolve_at(&query(host, &config), &local, &home), lab)
}

fn ok(text: &str, host: &str) -> Resolved {
    let (result, _lab) = resolve_text(text, host);
    result.expect("resolves")
}

fn error(text: &str, host: &str) -> String {
    let (result, _lab) = resolve_text(text, host);
    result.expect_err("should fail").message().to_string()
}

// -----------------------------------------------------------------------------------------
// Unit tests: run everywhere, no OpenSSH needed

/// With no configuration at all, every honoured directive still has OpenSSH's default, with
/// `Origin::Default`, so callers never need their own fallbacks.
#[test]
fn defaults_fill_every_honoured_directive() {
    let lab = Scratch::new("defaults");
    let local = local_for(Path::new("/home/alice"));
    let q = Query {
        host: "Db.Example.COM",
        user: None,
        port: None,
        options: &[],
        config: ConfigChoice::None,
    };
    let r = resolve_at(&q, &local, lab.path()).expect("resolves");
    assert_eq!(r.get("hostname"), Some("db.example.com"));
    assert_eq!(r.get("user"), Some("alice"));
    assert_eq!(r.get("port"), Some("22"));
    assert_eq!(r.origin("port"), Some(&Origin::Default));
    assert_eq!(r.get("stricthostkeychecking"), Some("ask"));
    assert_eq!(r.get("connecttimeout"), Some("none"));
    assert_eq!(
        r.all("userknownhostsfile"),
        ["/home/alice/.ssh/known_hosts", "/home/alice/.ssh/known_hosts2"]
    );
    assert_eq!(r.all("identityfile").first().copied(), Some("/home/alice/.ssh/id_rsa"));
    assert_eq!(
        r.settings["identityfile"]
            .ssh_g
            .as_ref()
            .and_then(|g| g.first())
            .map(String::as_str),
        Some("~/.ssh/id_rsa")
    );
    assert_eq!(r.get("proxyjump"), None);
    assert!(
        r.to_ssh_g()
            .starts_with("user alice\nhostname db.example.com\nport 22\n")
    );
}

/// `Match exec` would run a command from the config; sqltun refuses it with the file and line,
/// rather than guessing whether the block applies.
#[test]
fn match_exec_is_refused_with_file_and_line() {
    let message = error("Host a\n  User x\n\nMatch exec \"test -e /tmp\"\n  User y\n", "b");
    assert!(message.contains("config:4: Match exec is not supported"), "{message}");
}

/// When the other criteria on the line already rule the block out, the command's result cannot
/// matter, so the config still resolves (OpenSSH would not run the command either).
#[test]
fn match_exec_after_a_failing_criterion_is_harmless() {
    let r = ok("Match host other exec \"false\"\n  User y\n", "b");
    assert_eq!(r.get("user"), Some("alice"));
    let r = ok("Match exec \"false\" host other\n  User y\n", "b");
    assert_eq!(r.get("user"), Some("alice"));
}

/// A file that includes itself must stop with a clear error, not recurse until the stack ends.
#[test]
fn include_loop_is_an_error() {
    let lab = Scratch::new("loop");
    let config = lab.write("loop.conf", "Include loop.conf\n");
    let home = lab.path().to_path_buf();
    let local = local_for(&home);
    std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
    std::fs::copy(&config, home.join(".ssh/loop.conf")).expect("copy");
    let message = resolve_at(&query("h", &home.join(".ssh/loop.conf")), &local, &home)
        .expect_err("loops")
        .message()
        .to_string();
    assert!(
        message.contains("~/.ssh/loop.conf:1: Include nests more than 16 levels"),
        "{message}"
    );
}

/// An included file others can write could redirect connections; OpenSSH refuses it, so do we.
#[test]
fn group_writable_include_is_refused() {
    let lab = Scratch::new("perm");
    let included = lab.write("inc.conf", "User mallory\n");
    set_mode(&included, 0o664);
    let config = lab.write("config", &format!("Include {}\n", included.display()));
    let mut local = local_for(lab.path());
    local.uid = current_uid();
    let message = resolve_at(&query("h", &config), &local, lab.path())
        .expect_err("refused")
        .message()
        .to_string();
    assert!(message.contains("bad owner or permissions"), "{message}");
}

/// Our uid, as the owner of a file we just created.
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    let probe = Scratch::new("uid");
    std::fs::metadata(probe.path()).expect("stat").uid()
}

/// `-v` lists directives sqltun ignores; each must carry the file and line it came from, and only
/// those that apply to the destination are listed.
#[test]
fn unsupported_directives_are_recorded_with_origin() {
    let (result, lab) = resolve_text("Host a\n  ForwardAgent yes\nHost b\n  LocalForward 1 h:2\n", "a");
    let r = result.expect("resolves");
    let path = lab.path().join("config");
    assert_eq!(
        r.unsupported,
        vec![("forwardagent".to_string(), Origin::File { path, line: 2 })]
    );
}

/// Accumulated IdentityFile values are ready to open (`~`, tokens expanded, `none` left out), while
/// `ssh -G` shows them as written; the origin is the first line's.
#[test]
fn identity_files_accumulate_with_expansion() {
    let (result, lab) = resolve_text(
        "Host *\n  IdentityFile ~/.ssh/%r@%h\n  IdentityFile none\nIdentityFile /k/%u\n",
        "db",
    );
    let r = result.expect("resolves");
    let home = lab.path().join("home");
    assert_eq!(
        r.all("identityfile"),
        [format!("{}/.ssh/alice@db", home.display()), "/k/alice".to_string()]
    );
    let shown = r.settings["identityfile"].ssh_g.clone().unwrap_or_default();
    assert_eq!(shown, ["~/.ssh/%r@%h", "none", "/k/%u"]);
    let path = lab.path().join("config");
    assert_eq!(r.origin("identityfile"), Some(&Origin::File { path, line: 2 }));
}

/// ProxyJump keeps its hops for the caller to split; `%h` is the target's host name (OpenSSH
/// expands it when it builds the jump command) while `ssh -G` shows it unexpanded.
#[test]
fn proxy_jump_tokens_expand_in_values_only() {
    let r = ok(
        "Host db\n  HostName db.internal\n  ProxyJump ops@bastion-for-%h:2222,10.0.0.1\n",
        "db",
    );
    assert_eq!(r.get("proxyjump"), Some("ops@bastion-for-db.internal:2222,[10.0.0.1]"));
    assert_eq!(
        r.settings["proxyjump"].ssh_g,
        Some(vec!["ops@bastion-for-%h:2222,[10.0.0.1]".to_string()])
    );
    let r = ok("Host db\n  ProxyJump none\n  ProxyJump other\n", "db");
    assert_eq!(r.get("proxyjump"), None);
}

/// `%r`, `%h`, `%n` and `%p` reach `sh -c` through ProxyCommand: each is one shell word (plain names
/// unchanged, as OpenSSH writes them), and a user or host name that could run a command never gets
/// there: it is refused with the file and line (or `-o`) it came from, before any expansion.
#[test]
fn proxy_command_tokens_cannot_inject() {
    let r = ok("Host h\n  User deploy\n  ProxyCommand nc -l %r %h %p %n\n", "h");
    assert_eq!(r.get("proxycommand"), Some("nc -l deploy h 22 h"));
    let r = ok(
        "Host h\n  User a*b\n  HostName fe80::1%%eth0\n  ProxyCommand nc %r %h\n",
        "h",
    );
    assert_eq!(r.get("proxycommand"), Some("nc 'a*b' fe80::1%eth0"));
    for (text, needle) in [
        (
            "Host h\n  User \"x;touch m\"\n  ProxyCommand nc %r\n",
            "config:2: User: the SSH user name `x;touch m` contains `;`",
        ),
        (
            "Host h\n  User x$(touch)\n  ProxyCommand nc %r\n",
            "config:2: User: the SSH user name",
        ),
        (
            "Host h\n  HostName \"h >m\"\n  ProxyCommand nc %h\n",
            "config:2: HostName: the SSH host name `h >m` contains whitespace",
        ),
        (
            "Host h\n  HostName h`m`\n  ProxyCommand nc %h\n",
            "config:2: HostName: the SSH host name",
        ),
        ("Host h\n  HostName -oX\n  ProxyJump %h\n", "starts with `-`"),
    ] {
        let message = error(text, "h");
        assert!(message.contains(needle), "{text:?}: {message}");
    }
    let lab = Scratch::new("unit");
    let home = lab.path().join("home");
    let local = local_for(&home);
    for (key, value, needle) in [
        ("User", "x|>m", "-o User: the SSH user name `x|>m` contains `|`"),
        ("HostName", "h&>m", "-o HostName: the SSH host name `h&>m` contains `&`"),
    ] {
        let options = [Directive::flag(key, value)];
        let q = Query {
            host: "h",
            user: None,
            port: None,
            options: &options,
            config: ConfigChoice::None,
        };
        let message = resolve_at(&q, &local, &home).unwrap_err().message().to_string();
        assert!(message.contains(needle), "{key}={value}: {message}");
    }
    let q = Query {
        host: "h",
        user: Some("x\n>m"),
        port: None,
        options: &[],
        config: ConfigChoice::None,
    };
    let message = resolve_at(&q, &local, &home).unwrap_err().message().to_string();
    assert!(
        message.starts_with(r"the destination: the SSH user name `x\n>m`"),
        "{message}"
    );
}

/// An unknown token is an error naming the file and line, as OpenSSH's percent_expand refuses it.
#[test]
fn unknown_token_names_the_line() {
    let message = error("\nUserKnownHostsFile ~/.ssh/kh-%x\n", "h");
    assert!(
        message.contains("config:2: UserKnownHostsFile: unknown token %x"),
        "{message}"
    );
}

/// A system-wide config may not use `~` in Include (OpenSSH: "bad include path").
#[test]
fn tilde_include_is_refused_in_the_system_config() {
    let lab = Scratch::new("system");
    let config = lab.write("ssh_config", "Include ~/x.conf\n");
    let local = local_for(lab.path());
    let env = |_: &str| None;
    let mut reader = Reader::new("h", &local, &env, Path::new(SYSTEM_CONFIG));
    let flags = Flags {
        user_config: false,
        never_match: false,
        command_line: false,
        check_permissions: false,
    };
    let mut active = true;
    let message = reader
        .file(&config, flags, 0, &mut active, None)
        .expect_err("refused")
        .message()
        .to_string();
    assert!(message.contains("not allowed in the system config"), "{message}");
}

/// With the default choice, `~/.ssh/config` (under `Local::home`) is read first and wins over the
/// system-wide file, which still supplies what the user's file leaves unset.
#[test]
fn default_choice_reads_the_user_config_first() {
    let lab = Scratch::new("default");
    lab.write(".ssh/config", "Host db\n  User fromuserconfig\n  Port 2022\n");
    let system = lab.write("etc/ssh_config", "Host *\n  User fromsystem\n  HashKnownHosts yes\n");
    let mut local = local_for(lab.path());
    local.uid = current_uid();
    let q = Query {
        host: "db",
        user: None,
        port: None,
        options: &[],
        config: ConfigChoice::Default,
    };
    let r = resolve_with_system_config(&q, &local, &|_: &str| None, &system).expect("resolves");
    assert_eq!(r.get("user"), Some("fromuserconfig"));
    assert_eq!(r.get("port"), Some("2022"));
    assert_eq!(r.get("hashknownhosts"), Some("yes"));
    assert_eq!(
        r.origin("hashknownhosts"),
        Some(&Origin::File { path: system, line: 3 })
    );
}

/// OpenSSH drops a repeated IdentityFile only when both copies come from the same kind of file: the
/// same path in `~/.ssh/config` and `/etc/ssh/ssh_config` is listed twice (checked with `ssh -G`).
#[test]
fn identity_file_repeated_in_the_system_config_is_kept() {
    let lab = Scratch::new("dedup");
    lab.write(
        ".ssh/config",
        "Host h\n  IdentityFile /k/same\n  IdentityFile /k/same\n",
    );
    let system = lab.write(
        "etc/ssh_config",
        "Host h\n  IdentityFile /k/same\n  IdentityFile /k/sys\n",
    );
    let mut local = local_for(lab.path());
    local.uid = current_uid();
    let q = Query {
        host: "h",
        user: None,
        port: None,
        options: &[],
        config: ConfigChoice::Default,
    };
    let r = resolve_with_system_config(&q, &local, &|_: &str| None, &system).expect("resolves");
    assert_eq!(r.all("identityfile"), ["/k/same", "/k/same", "/k/sys"]);
}

/// A value in another encoding must not be silently altered; a comment in one is harmless.
#[test]
fn non_utf8_values_are_refused() {
    let lab = Scratch::new("utf8");
    let config = lab.path().join("config");
    std::fs::write(&config, b"# caf\xe9\nHost h\n  User caf\xe9\n").expect("write");
    let local = local_for(lab.path());
    let message = resolve_at(&query("h", &config), &local, lab.path())
        .expect_err("refused")
        .message()
        .to_string();
    assert!(message.contains("config:3: not valid UTF-8"), "{message}");
}

/// A missing `-F` file is an error (OpenSSH: "Can't open user config file"), never an empty config.
#[test]
fn missing_config_file_is_an_error() {
    let local = local_for(Path::new("/nonexistent"));
    let missing = Path::new("/nonexistent/sqltun-config");
    let message = resolve_at(&query("h", missing), &local, Path::new("/nonexistent"))
        .expect_err("missing")
        .message()
        .to_string();
    assert!(message.contains("no such file"), "{message}");
}

/// The lexer must split lines exactly as OpenSSH does, or values silently change.
#[test]
fn lines_split_like_openssh() {
    assert_eq!(split_keyword("  User=bob"), Ok(Some(("User".to_string(), "bob"))));
    assert_eq!(split_keyword("User = bob"), Ok(Some(("User".to_string(), "bob"))));
    assert_eq!(split_keyword("User==bob"), Ok(Some(("User".to_string(), "=bob"))));
    assert_eq!(split_keyword("# User bob"), Ok(None));
    assert_eq!(split_keyword(""), Ok(None));
    assert_eq!(
        argv_split(r#"a "b c" 'd' e\ f # g"#),
        Ok(vec!["a".into(), "b c".into(), "d".into(), "e f".into()])
    );
    assert_eq!(argv_split(r#"x"y z"w"#), Ok(vec!["xy zw".into()]));
    assert_eq!(argv_split(r#""open"#), Err(()));
}

/// Host and Match patterns follow OpenSSH's match.c (the shared matcher, [`crate::pattern`]): `*`,
/// `?`, lists, negation vetoes, case folded only for host names.
#[test]
fn patterns_match_like_openssh() {
    assert!(pattern::matches("web1.prod", "web?.prod"));
    assert!(pattern::matches("a.b.c", "*.c"));
    assert!(!pattern::matches("Foo", "foo"));
    assert_eq!(
        pattern::match_list("db.bad", "*.bad,!db.*", pattern::Case::Sensitive),
        ListMatch::Vetoed
    );
    assert_eq!(
        pattern::match_list("x", "a,b", pattern::Case::Sensitive),
        ListMatch::NoMatch
    );
    assert!(pattern::match_hostname("DB.Example", "db.*"));
    let r = ok(
        "Host web?.prod !web2.prod
  User ops
Match host DB.*,!db.bad user al*
  Port 2200
",
        "web1.prod",
    );
    assert_eq!(r.get("user"), Some("ops"));
    let r = ok(
        "Host web?.prod !web2.prod
  User ops
",
        "web2.prod",
    );
    assert_eq!(r.get("user"), Some("alice"));
    let r = ok(
        "Match host DB.*,!db.bad user al*
  Port 2200
",
        "db.good",
    );
    assert_eq!(r.get("port"), Some("2200"));
    let r = ok(
        "Match host DB.*,!db.bad user al*
  Port 2200
",
        "db.bad",
    );
    assert_eq!(r.get("port"), Some("22"));
}

/// Include globs: fnmatch(3)'s semantics, in polynomial time even for many stars (a recursive
/// matcher takes exponential time on `***…*b` against a long name that does not match).
#[test]
fn include_globs_match_like_fnmatch_in_polynomial_time() {
    assert!(fnmatch("*.conf", "a.conf"));
    assert!(fnmatch("*", ""));
    assert!(!fnmatch("?", ""));
    assert!(fnmatch("a*b*c", "aXbYbZc"));
    assert!(!fnmatch("a*b*c", "aXbYbZ"));
    assert!(fnmatch("[a-c]?.conf", "bx.conf"));
    assert!(!fnmatch("[!a-c]x", "bx"));
    assert!(fnmatch("[^a-c]x", "dx"));
    assert!(fnmatch("[]]", "]"));
    assert!(!fnmatch("[z-a]*", "zebra"));
    assert!(fnmatch("[unclosed", "[unclosed"));
    assert!(fnmatch(r"\*x", "*x"));
    assert!(!fnmatch(r"\*x", "ax"));
    assert!(fnmatch("*[0-9]", "host7"));
    assert!(fnmatch("**a**", "bab"));
    let started = std::time::Instant::now();
    let pattern = format!("{}b", "*".repeat(60));
    assert!(!fnmatch(&pattern, &"a".repeat(40)));
    let pattern = format!("{}b", "*a".repeat(5000));
    assert!(!fnmatch(&pattern, &"a".repeat(5000)));
    assert!(!pattern::matches(&"a".repeat(5000), &format!("{}b", "*a".repeat(5000))));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Messages quote values with control and invisible characters escaped, and long ones cut.
#[test]
fn messages_escape_and_cut_what_they_quote() {
    assert_eq!(shown("a\0b\x1b[2J\x7f\t\r\n"), r"a\0b\x1b[2J\x7f\t\r\n");
    assert_eq!(shown("\u{feff}#\u{202e}x\u{85}"), r"\u{feff}#\u{202e}x\u{85}");
    assert_eq!(shown("café ok"), "café ok");
    let long = shown(&"x".repeat(10_000));
    assert_eq!(long.chars().count(), MAX_QUOTED_CHARS + 1);
    assert!(long.ends_with('…'));

    let message = error("Host h\n  Port \x1b[2J22\n", "h");
    assert!(message.contains(r"config:2: bad port '\x1b[2J22'"), "{message}");
    let message = error("Ho\0st h\n", "h");
    assert!(
        message.contains(r"config:1: unknown ssh_config directive 'Ho\0st'"),
        "{message}"
    );
    let message = error(&format!("Host h\n  Port {}\n", "9".repeat(1 << 20)), "h");
    assert!(message.contains("config:2: bad port '999"), "{message}");
    assert!(message.len() < 500, "{} bytes", message.len());
    assert!(!message.chars().any(char::is_control), "{message:?}");
}

/// A control character in a value is refused by line, even where the value would be accepted.
#[test]
fn control_characters_in_values_are_refused() {
    let message = error("Host h\n  HostName db\0internal\n", "h");
    assert!(
        message.contains(r"config:2: HostName: 'db\0internal' contains the control character \0"),
        "{message}"
    );
    let message = error("Host h\n  User bob\x7f\n", "h");
    assert!(message.contains(r"config:2: User: 'bob\x7f'"), "{message}");
    let message = error("Host h\n  ProxyCommand nc %h %p\x07\n", "h");
    assert!(message.contains("config:2: ProxyCommand"), "{message}");
    let message = error("Host h\x01\n  User bob\n", "h");
    assert!(message.contains(r"config:1: Host: 'h\x01'"), "{message}");
    // Tabs separate words; a control character in a comment is harmless.
    let r = ok("Host h\n\tUser\tbob\n# \x07 bell\n", "h");
    assert_eq!(r.get("user"), Some("bob"));
}

/// A UTF-8 byte-order mark is refused as OpenSSH refuses it, with a message that names it.
#[test]
fn byte_order_mark_is_named() {
    let message = error("\u{feff}Host h\n  User bob\n", "h");
    assert!(
        message.contains("config:1: the file starts with a UTF-8 byte-order mark"),
        "{message}"
    );
}

/// Only regular files are read: a FIFO or a device named by Include is refused by the Include
/// line before it is opened (opening a FIFO nobody writes to blocks); `-F /dev/null` is empty; a
/// directory Include names is skipped, as in OpenSSH.
#[test]
fn special_files_are_refused_without_opening_them() {
    let lab = Scratch::new("special");
    let fifo = lab.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    std::fs::create_dir_all(lab.path().join("dir")).expect("mkdir");
    let local = local_for(lab.path());
    let resolve_config = |text: &str| {
        let config = lab.write("config", text);
        resolve_at(&query("h", &config), &local, lab.path())
    };
    let message = resolve_config(&format!("Host h\n  Port 2\nInclude {}\n", fifo.display()))
        .expect_err("refused")
        .message()
        .to_string();
    assert!(
        message.contains("config:3: Include ~/fifo: a FIFO, not a regular file"),
        "{message}"
    );
    let message = resolve_config("Include /dev/zero\n")
        .expect_err("refused")
        .message()
        .to_string();
    assert!(
        message.contains("config:1: Include /dev/zero: a character device"),
        "{message}"
    );
    let r = resolve_config(&format!("Include {}/dir\nUser bob\n", lab.path().display())).expect("skipped");
    assert_eq!(r.get("user"), Some("bob"));

    for (path, says) in [
        (Path::new("/dev/zero"), "/dev/zero: a character device"),
        (fifo.as_path(), "~/fifo: a FIFO"),
        (lab.path(), "a directory"),
    ] {
        let message = resolve_at(&query("h", path), &local, lab.path())
            .expect_err("refused")
            .message()
            .to_string();
        assert!(message.contains(says), "{message}");
    }
    let r = resolve_at(&query("h", Path::new("/dev/null")), &local, lab.path()).expect("empty");
    assert_eq!(r.get("port"), Some("22"));
}

/// Size bounds: a file over 4 MiB is refused by name, and Includes reading more than 16 MiB or
/// 1024 files in all are refused by the Include line.
#[test]
fn reading_is_bounded() {
    let lab = Scratch::new("bounds");
    let local = local_for(lab.path());
    let big = lab.write("big.conf", &format!("# {}\n", "x".repeat(4 << 20)));
    let message = resolve_at(&query("h", &big), &local, lab.path())
        .expect_err("refused")
        .message()
        .to_string();
    assert!(
        message.ends_with("~/big.conf: larger than 4 MiB; is this really an ssh config file?"),
        "{message}"
    );
    let config = lab.write("config", &format!("Host h\nInclude {}\n", big.display()));
    let message = resolve_at(&query("h", &config), &local, lab.path())
        .expect_err("refused")
        .message()
        .to_string();
    assert!(
        message.contains("~/config:2: Include ~/big.conf: larger than 4 MiB"),
        "{message}"
    );

    let part = lab.write("part.conf", &format!("# {}\n", "x".repeat(3 << 20)));
    let config = lab.write(
        "config",
        &format!("Include {}\n", vec![part.display().to_string(); 6].join(" ")),
    );
    let message = resolve_at(&query("h", &config), &local, lab.path())
        .expect_err("refused")
        .message()
        .to_string();
    assert!(
        message.contains("~/config:1: Include ~/part.conf: the configuration read so far"),
        "{message}"
    );

    // No loop, just fan-out: each level includes the next one 8 times, 8^4 reads in all.
    for level in 1..=4 {
        let next = format!("level{}.conf", level + 1);
        lab.write(
            &format!(".ssh/level{level}.conf"),
            &format!("Include {}\n", vec![next; 8].join(" ")),
        );
    }
    lab.write(".ssh/level5.conf", "");
    let message = resolve_at(&query("h", &lab.path().join(".ssh/level1.conf")), &local, lab.path())
        .expect_err("refused")
        .message()
        .to_string();
    assert!(
        message.contains(".conf: more than 1024 files included in all"),
        "{message}"
    );
}

/// Times, integers and ports parse as OpenSSH's convtime, strtonum and a2port do.
#[test]
fn values_parse_like_openssh() {
    assert_eq!(parse_time("1m30"), Some(90));
    assert_eq!(parse_time("1h2m"), Some(3720));
    assert_eq!(parse_time("-1"), None);
    assert_eq!(parse_time("5x"), None);
    assert_eq!(parse_int("07"), Ok(7));
    assert_eq!(parse_int("-3"), Err("too small"));
    assert_eq!(parse_int("2147483648"), Err("too large"));
    assert_eq!(parse_port("+22"), Some(22));
    assert_eq!(parse_port("0"), None);
    assert_eq!(parse_port("70000"), None);
}

/// `%C` must be OpenSSH's hash (SHA-1 of %l%h%p%r), or ControlPath-style file names differ.
#[test]
fn connection_hash_matches_openssh() {
    // From `ssh -G` on the reference machine: l=vm h=real-foo.example.com p=2222 r=bob.
    assert_eq!(
        sha1_hex("vmreal-foo.example.com2222bob"),
        "683faf0f586187e559b95a8e44d305bc94995d29"
    );
}

/// Algorithm lists: `+` appends, `-` removes (patterns allowed), `^` puts first.
#[test]
fn algorithm_lists_assemble_like_openssh() {
    let list = |spec: &str| assemble_algorithms(spec, "a,b,c", &["a", "b", "c", "d", "e1", "e2"]).expect("valid");
    assert_eq!(list("+d,a"), ["a", "b", "c", "d"]);
    assert_eq!(list("-b*"), ["a", "c"]);
    assert_eq!(list("^d,c"), ["d", "c", "a", "b"]);
    assert_eq!(list("e*,a"), ["e1", "e2", "a"]);
    assert_eq!(assemble_algorithms("!a", "a", &["a"]), None);
}

/// `Local::from_system` must see what OpenSSH sees: the login name, uid and host name.
#[test]
fn local_from_system_matches_the_os() {
    let local = Local::from_system().expect("local facts");
    if let Some(uid) = command_output("id", &["-u"]) {
        assert_eq!(local.uid.to_string(), uid);
    }
    if let Some(user) = command_output("id", &["-un"]) {
        assert_eq!(local.user, user);
    }
    if let Some(host) = command_output("uname", &["-n"]) {
        assert_eq!(local.hostname, host);
    }
}
