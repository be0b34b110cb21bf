use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::cli::{Cli, Command, DbArg};
use crate::env::FakeEnv;
use crate::plan::OutputFormat;
use clap::Parser;

/// A fresh directory tree for one test, removed at the end.
struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Tree {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sqltun-tunnels-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Tree(dir)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    fn dir(&self, rel: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    fn env(&self, cwd: &str) -> FakeEnv {
        FakeEnv {
            home: Some(self.dir("home")),
            user: "me".into(),
            cwd: Some(self.dir(cwd)),
            ..Default::default()
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const PROD: &str = r#"
[tunnels.prod]
description = "the production database"
ssh = "deploy@bastion.example.com:2222"
jump = ["jump1", "ops@jump2"]
db = ["postgres://app@db.internal/appdb", "cache.internal:6379"]
local_port = [15432, 16379]
bind = "::1"
identity = "keys/prod_ed25519"
known_hosts = "~/known_hosts.prod"
ssh_config = "ssh/config"
options = { StrictHostKeyChecking = "yes", ConnectTimeout = 5, Compression = false }
output = "json"
idle_timeout = "30m"
max_lifetime = "8h"
password_command = ["op", "read", "op://prod/bastion/password"]
"#;

/// Every key, read as the flags would read it; paths relative to the file, `~/` under home.
#[test]
fn every_key_is_read() {
    let tree = Tree::new("keys");
    let file = tree.write("proj/sqltun.toml", PROD);
    let env = tree.env("proj");
    let t = find("prod", None, &env).unwrap();
    assert_eq!(t.name, "prod");
    assert_eq!(t.file, file);
    assert_eq!(t.line, 2);
    assert_eq!(t.description.unwrap().value, "the production database");
    let ssh = t.ssh.unwrap();
    assert_eq!(
        (ssh.value.user.as_deref(), ssh.value.host.as_str(), ssh.value.port),
        (Some("deploy"), "bastion.example.com", Some(2222))
    );
    assert_eq!(ssh.line, 4);
    let jumps: Vec<String> = t.jump.unwrap().value.0.iter().map(|d| d.original.clone()).collect();
    assert_eq!(jumps, ["jump1", "ops@jump2"]);
    let db = t.db.unwrap();
    assert_eq!(db.value.len(), 2);
    assert!(matches!(&db.value[0], DbArg::Url(_)));
    assert!(matches!(&db.value[1], DbArg::Target(t) if t.port == 6379));
    assert_eq!(t.local_port.unwrap().value, [15432, 16379]);
    assert_eq!(t.bind.unwrap().value, "::1".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(t.identity.unwrap().value, [tree.0.join("proj/keys/prod_ed25519")]);
    assert_eq!(t.known_hosts.unwrap().value, tree.0.join("home/known_hosts.prod"));
    assert_eq!(t.ssh_config.unwrap().value, tree.0.join("proj/ssh/config"));
    let options: Vec<(String, String, usize)> = t
        .options
        .iter()
        .map(|o| (o.value.0.clone(), o.value.1.clone(), o.line))
        .collect();
    assert!(
        options.contains(&("StrictHostKeyChecking".into(), "yes".into(), 12)),
        "{options:?}"
    );
    assert!(
        options.contains(&("ConnectTimeout".into(), "5".into(), 12)),
        "{options:?}"
    );
    assert!(
        options.contains(&("Compression".into(), "no".into(), 12)),
        "{options:?}"
    );
    assert_eq!(t.output.unwrap().value, OutputFormat::Json);
    assert_eq!(t.idle_timeout.unwrap().value.as_secs(), 1800);
    assert_eq!(t.max_lifetime.unwrap().value.as_secs(), 8 * 3600);
    assert_eq!(
        t.password_command.unwrap().value,
        ["op", "read", "op://prod/bastion/password"]
    );
}

/// Each kind of mistake: the file, the line and the key, then what is wrong.
#[test]
fn errors_name_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "[tunnels.prod]\nssh = \"b\"\ndb = 5432\n",
            "sqltun.toml:3: tunnels.prod.db: expected a string or a list of strings, found integer",
        ),
        (
            "[tunnels.prod]\nssh = \"b\"\nsssh = \"x\"\n",
            "sqltun.toml:3: tunnels.prod.sssh: unknown field `sssh`",
        ),
        (
            "[tunnels.prod]\nssh = \"b\"\nlocal_port = \"5432\"\n",
            "sqltun.toml:3: tunnels.prod.local_port: expected a port number or a list of them, found string",
        ),
        (
            "[tunnels.prod]\nssh = \"b\"\nlocal_port = 70000\n",
            "sqltun.toml:3: tunnels.prod.local_port: `70000` is not a port number",
        ),
        (
            "[tunnels.prod]\n\nidle_timeout = \"5x\"\n",
            "sqltun.toml:3: tunnels.prod.idle_timeout: `5x`: unknown unit",
        ),
        (
            "[tunnels.prod]\noutput = \"yaml\"\n",
            "sqltun.toml:2: tunnels.prod.output: `yaml` is not an output format",
        ),
        (
            "[tunnels.prod]\nbind = \"localhost\"\n",
            "sqltun.toml:2: tunnels.prod.bind: `localhost` is not an IP address",
        ),
        (
            "[tunnels.prod]\nssh = \"b\"\ndb = \"db:0\"\n",
            "sqltun.toml:3: tunnels.prod.db: ",
        ),
        (
            "[tunnels.prod]\npassword_command = \"op read x\"\n",
            "sqltun.toml:2: tunnels.prod.password_command: expected the command as a list of words",
        ),
        (
            "[tunnels.prod]\ntotp_command = []\n",
            "sqltun.toml:2: tunnels.prod.totp_command: the command is empty",
        ),
        (
            "[tunnels.prod]\noptions = { ConnectTimeout = [1] }\n",
            "sqltun.toml:2: tunnels.prod.options.ConnectTimeout: expected a string, number or boolean, found array",
        ),
        ("[tunnels.prod]\nssh = \"b\"\nssh = \"c\"\n", "sqltun.toml:3: "),
        ("[tunnels.prod\n", "sqltun.toml:1: "),
        ("[tunnel.prod]\nssh = \"b\"\n", "sqltun.toml:1: "),
        (
            "[tunnels.\"-rf\"]\nssh = \"b\"\n",
            "sqltun.toml:1: tunnels.-rf: a tunnel's name is",
        ),
        (
            "[tunnels.prod]\nssh = \"host\\nname\"\n",
            "sqltun.toml:2: tunnels.prod.ssh: ",
        ),
    ];
    for (text, expected) in cases {
        let tree = Tree::new("errors");
        tree.write("p/sqltun.toml", text);
        let err = load_all(None, &tree.env("p")).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{text}");
        let message = err.message();
        assert!(
            message.starts_with(expected),
            "{text:?}\n  got: {message}\n want: {expected}"
        );
        assert!(!message.chars().any(|c| c.is_control()), "{message:?}");
    }
}

/// Secrets are refused where they are, without being repeated.
#[test]
fn secrets_are_refused() {
    for (text, line, key) in [
        ("[tunnels.prod]\nssh = \"b\"\npassword = \"hunter22\"\n", 3, "password"),
        ("[tunnels.prod]\n\n\npassphrase = \"hunter22\"\n", 4, "passphrase"),
        ("[tunnels.prod]\ntotp_secret = \"hunter22\"\n", 2, "totp_secret"),
        (
            "[tunnels.prod]\nssh = \"b\"\ndb = \"postgres://app:hunter22@db/app\"\n",
            3,
            "db",
        ),
        (
            "[tunnels.prod]\nssh = \"b\"\ndb = [\"db:1\", \"mysql://root:hunter22@db\"]\n",
            3,
            "db",
        ),
        ("[tunnels.prod]\nssh = \"deploy:hunter22@b\"\n", 2, "ssh"),
        (
            "[tunnels.prod]\nssh = \"b\"\njump = \"j1,ops:hunter22@j2\"\n",
            3,
            "jump",
        ),
    ] {
        let tree = Tree::new("secrets");
        tree.write("p/sqltun.toml", text);
        let message = load_all(None, &tree.env("p")).unwrap_err().message().to_string();
        assert!(
            message.starts_with(&format!("sqltun.toml:{line}: tunnels.prod.{key}: ")),
            "{message}"
        );
        assert!(message.contains("secret") || message.contains("password"), "{message}");
        assert!(!message.contains("hunter22"), "{message}");
    }
}

/// The nearest `sqltun.toml` up from the working directory first, then the user's own file; a name
/// missing from both is an error that says where it looked; `--tunnels-file` is the only file read.
#[test]
fn discovery_order() {
    let tree = Tree::new("discovery");
    tree.write("repo/sqltun.toml", "[tunnels.prod]\nssh = \"repo-bastion\"\n");
    tree.write("repo/sub/dir/.keep", "");
    tree.write(
        "home/.config/sqltun/tunnels.toml",
        "[tunnels.prod]\nssh = \"mine\"\n[tunnels.personal]\nssh = \"home-bastion\"\n",
    );
    let explicit = tree.write("elsewhere.toml", "[tunnels.prod]\nssh = \"explicit\"\n");
    let ssh_of = |t: Saved| t.ssh.unwrap().value.host;

    let env = tree.env("repo/sub/dir");
    assert_eq!(ssh_of(find("prod", None, &env).unwrap()), "repo-bastion");
    assert_eq!(ssh_of(find("personal", None, &env).unwrap()), "home-bastion");
    let files = load_all(None, &env).unwrap();
    assert_eq!(files.len(), 2);

    // Outside the project: the user's file only.
    let env = tree.env("other");
    assert_eq!(ssh_of(find("prod", None, &env).unwrap()), "mine");

    // XDG_CONFIG_HOME moves the user's file.
    let mut env = tree.env("other");
    env.vars
        .push(("XDG_CONFIG_HOME".into(), tree.dir("xdg").display().to_string()));
    tree.write("xdg/sqltun/tunnels.toml", "[tunnels.prod]\nssh = \"xdg\"\n");
    assert_eq!(ssh_of(find("prod", None, &env).unwrap()), "xdg");

    // An explicit file is the only one, and must exist.
    let env = tree.env("repo");
    assert_eq!(ssh_of(find("prod", Some(&explicit), &env).unwrap()), "explicit");
    let err = find("personal", Some(&explicit), &env).unwrap_err();
    assert!(
        err.message().starts_with("no tunnel `personal` in "),
        "{}",
        err.message()
    );
    let err = find("prod", Some(Path::new("/nonexistent/t.toml")), &env).unwrap_err();
    assert!(err.message().contains("/nonexistent/t.toml"), "{}", err.message());

    // A typo gets a suggestion; no file at all says where it looked.
    let err = find("prdo", None, &tree.env("repo")).unwrap_err();
    assert!(err.message().ends_with("did you mean prod?"), "{}", err.message());
    let bare = Tree::new("none");
    let err = find("prod", None, &bare.env("x")).unwrap_err();
    assert!(err.message().contains("there is no tunnels file"), "{}", err.message());
}

/// A tunnels file can run commands: one another user owns, or one others can write, is refused.
#[test]
fn files_others_control_are_refused() {
    let tree = Tree::new("owner");
    let file = tree.write("shared/sqltun.toml", "[tunnels.prod]\nssh = \"b\"\n");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = load_all(None, &tree.env("shared/work")).unwrap_err();
    assert!(
        err.message().contains("can be changed by other users"),
        "{}",
        err.message()
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The fake environment's uid is 1000; root's files are accepted, another account's are not.
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&file, Some(1001), None).unwrap();
        let err = load_all(None, &tree.env("shared/work")).unwrap_err();
        assert!(
            err.message().contains("belongs to uid 1001, not to you"),
            "{}",
            err.message()
        );
        std::os::unix::fs::chown(&file, Some(1000), None).unwrap();
        assert_eq!(load_all(None, &tree.env("shared/work")).unwrap().len(), 1);
    }
    // Not a regular file: refused without blocking.
    let tree = Tree::new("fifo");
    tree.dir("p/sqltun.toml");
    let err = load_all(None, &tree.env("p")).unwrap_err();
    assert!(err.message().contains("directory"), "{}", err.message());
}

fn parsed(argv: &[&str]) -> crate::cli::TunnelArgs {
    let mut full = vec!["sqltun"];
    full.extend_from_slice(argv);
    match Cli::try_parse_from(full).map(|c| c.command) {
        Ok(Command::Connect(c)) => c.tunnel(),
        Ok(other) => panic!("not connect: {other:?}"),
        Err(e) => panic!("{e}"),
    }
}

/// `connect NAME`: the file's values, each flag overriding its own; the file's local ports go with its
/// targets only; `-o` is obtained before the file's options.
#[test]
fn flags_override_the_file() {
    let tree = Tree::new("merge");
    tree.write(
        "p/sqltun.toml",
        "[tunnels.prod]\nssh = \"deploy@bastion\"\ndb = \"db.internal:5432\"\nlocal_port = 15432\noutput = \"url\"\n\
         ssh_config = \"none\"\noptions = { ConnectTimeout = 7, ServerAliveInterval = 9 }\nidle_timeout = \"10m\"\n",
    );
    let env = tree.env("p");
    let plan = crate::resolve::plan(&parsed(&["connect", "prod"]), &env).unwrap();
    assert_eq!(plan.name.as_deref(), Some("prod"));
    assert_eq!(plan.hops[0].host, "bastion");
    assert_eq!(plan.hops[0].user, "deploy");
    assert_eq!(plan.hops[0].connect_timeout.as_secs(), 7);
    assert_eq!(plan.forwards[0].local_port, 15432);
    assert_eq!(plan.output, OutputFormat::Url);
    assert_eq!(plan.lifecycle.idle_timeout.map(|d| d.as_secs()), Some(600));

    let plan = crate::resolve::plan(
        &parsed(&[
            "connect",
            "prod",
            "--ssh",
            "other",
            "--output",
            "port",
            "-o",
            "ConnectTimeout=3",
            "--idle-timeout",
            "1m",
        ]),
        &env,
    )
    .unwrap();
    assert_eq!(plan.hops[0].host, "other");
    assert_eq!(plan.hops[0].connect_timeout.as_secs(), 3);
    assert_eq!(plan.hops[0].keepalive_interval.map(|d| d.as_secs()), Some(9));
    assert_eq!(plan.output, OutputFormat::Port);
    assert_eq!(plan.lifecycle.idle_timeout.map(|d| d.as_secs()), Some(60));
    assert_eq!(plan.forwards[0].local_port, 15432);

    // Another --db: the file's port does not pair with it.
    let plan = crate::resolve::plan(&parsed(&["connect", "prod", "--db", "other:1"]), &env).unwrap();
    assert_eq!(plan.forwards.len(), 1);
    assert_eq!(plan.forwards[0].target.port, 1);
    assert_eq!(plan.forwards[0].local_port, 0);

    // A URL and --ssh cannot both say where to go.
    let err = crate::resolve::plan(&parsed(&["connect", "postgres+ssh://a@b/c@d/e", "--ssh", "x"]), &env).unwrap_err();
    assert!(err.message().contains("either the URL or --ssh"), "{}", err.message());
}

/// A saved tunnel without a destination or a target says which tunnel and where.
#[test]
fn incomplete_tunnels_say_where() {
    let tree = Tree::new("incomplete");
    tree.write(
        "p/sqltun.toml",
        "[tunnels.half]\nssh_config = \"none\"\nssh = \"b\"\n[tunnels.none]\ndb = \"d:1\"\n",
    );
    let env = tree.env("p");
    let err = crate::resolve::plan(&parsed(&["connect", "half"]), &env).unwrap_err();
    assert!(err.message().starts_with("tunnel half ("), "{}", err.message());
    assert!(
        err.message().contains("sqltun.toml:1) has no database target"),
        "{}",
        err.message()
    );
    let err = crate::resolve::plan(&parsed(&["connect", "none"]), &env).unwrap_err();
    assert!(
        err.message().contains("sqltun.toml:4) has no ssh destination"),
        "{}",
        err.message()
    );
    // The flags can complete it.
    let plan = crate::resolve::plan(&parsed(&["connect", "half", "--db", "d:5"]), &env).unwrap();
    assert_eq!(plan.forwards[0].target.port, 5);
}

/// `config NAME --json`: each value with where it came from, the file's directives in the hops too.
#[test]
fn origins_are_reported() {
    let tree = Tree::new("origins");
    let file = tree.write(
        "p/sqltun.toml",
        "[tunnels.prod]\nssh = \"bastion\"\njump = \"j1\"\ndb = \"db:5432\"\nssh_config = \"none\"\noptions = { ConnectTimeout = 7 }\n",
    );
    let env = tree.env("p");
    let flags = parsed(&["connect", "prod", "--output", "env", "-o", "Compression=yes"]);
    let saved = find("prod", None, &env).unwrap();
    let json = crate::resolve::tunnel_json(&flags, &saved);
    let at = |line: usize| format!("{}:{line}", file.display());
    assert_eq!(json["settings"]["ssh"]["origin"], at(2));
    assert_eq!(json["settings"]["jump"]["value"][0], "j1");
    assert_eq!(json["settings"]["db"]["origin"], at(4));
    assert_eq!(
        json["settings"]["output"],
        serde_json::json!({"value": "env", "origin": "flag"})
    );
    assert_eq!(
        json["settings"]["bind"],
        serde_json::json!({"value": "127.0.0.1", "origin": "default"})
    );
    assert_eq!(json["settings"]["options"][0]["origin"], "flag");
    assert_eq!(json["settings"]["options"][1]["origin"], at(6));

    let dest = saved.ssh.clone().unwrap().value;
    let hops =
        crate::resolve::resolve_chain(&dest, &flags.ssh_args, Some(&saved), &env, &crate::resolve::NoSecrets).unwrap();
    assert_eq!(hops.len(), 2);
    let chain = crate::resolve::chain_json(&hops);
    let last = &chain["hops"][1]["settings"];
    assert_eq!(last["connecttimeout"]["origin"], at(6));
    assert_eq!(last["compression"]["origin"], "command line");
    assert_eq!(last["proxyjump"]["origin"], at(3));
}
