//! Saved tunnels: `sqltun.toml` found from the working directory up, the user's
//! `$XDG_CONFIG_HOME/sqltun/tunnels.toml`, `--tunnels-file`; `connect/exec/check/config NAME` against real
//! sshd and PostgreSQL, flags over the file, and the file's mistakes named by file, line and key.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Bastion, EXIT_TIMEOUT, SqltunCommand, Tripwire, assert_error, echo_roundtrip, local};

impl Bastion {
    /// A `[tunnels.NAME]` table that reaches this bastion with its key, `db` and `extra` lines added.
    fn saved_tunnel(&self, name: &str, db: &str, extra: &str) -> String {
        format!(
            "[tunnels.{name}]\nssh = \"{}\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\nssh_config = \"none\"\ndb = \"{db}\"\n{extra}\n",
            self.sshd.destination(),
            self.key().private.display(),
            self.known_hosts.display(),
        )
    }

    /// `sqltun SUBCOMMAND` with HOME, and nothing else: what to reach comes from the tunnels file.
    fn bare(&self, subcommand: &str) -> SqltunCommand {
        SqltunCommand::new(self.lab.home()).arg(subcommand)
    }
}

/// A fresh directory in the lab with `text` as its `sqltun.toml`; returns the directory.
fn project(bastion: &Bastion, text: &str) -> PathBuf {
    let dir = bastion.lab.fresh_path("project", "");
    fs::create_dir_all(&dir).expect("create the project directory");
    fs::write(dir.join("sqltun.toml"), text).expect("write sqltun.toml");
    dir
}

fn subdir(parent: &Path, rel: &str) -> PathBuf {
    let dir = parent.join(rel);
    fs::create_dir_all(&dir).expect("create a directory");
    dir
}

fn run(command: SqltunCommand) -> (i32, String, String) {
    let mut sqltun = command.spawn();
    let code = sqltun.wait_exit(EXIT_TIMEOUT);
    (code, sqltun.stdout(), sqltun.stderr())
}

/// Why: a team commits `sqltun.toml` at the root of its repository and runs `sqltun exec prod -- psql`
/// from anywhere below it; the nearest file up from the working directory is the one used, and the
/// tunnel it describes really reaches PostgreSQL behind the bastion.
#[test]
fn saved_tunnel_from_a_parent_directory_runs_psql() {
    let s = Bastion::start();
    s.lab.start_postgres();
    let db = format!("postgres://postgres@{}/postgres", s.lab.target_addr());
    let root = project(&s, &s.saved_tunnel("prod", &db, ""));
    let deep = subdir(&root, "services/api/src");
    let (code, stdout, stderr) = run(s.bare("exec").current_dir(&deep).env("PGCONNECT_TIMEOUT", "20").args([
        "prod",
        "--",
        "psql",
        "-X",
        "-w",
        "-At",
        "-c",
        "select 6 * 7",
    ]));
    assert_eq!((code, stdout.as_str()), (0, "42\n"), "stderr:\n{stderr}");

    // `check NAME` walks the same tunnel and probes the real server.
    let (code, stdout, stderr) = run(s.bare("check").current_dir(&deep).args(["prod", "--json"]));
    assert_eq!(code, 0, "stderr:\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("check --json");
    assert_eq!(report["ok"], true, "{stdout}");
}

/// Why: a person keeps their own tunnels in `~/.config/sqltun/tunnels.toml` (or under
/// `$XDG_CONFIG_HOME`), usable from any directory; `--tunnels-file` names one file instead of both.
#[test]
fn user_file_and_tunnels_file_flag() {
    let s = Bastion::start();
    let echo = s.targets.echo.to_string();
    let nowhere = subdir(&s.lab.fresh_path("elsewhere", ""), "x");

    let config = s.lab.home().join(".config/sqltun");
    fs::create_dir_all(&config).expect("create ~/.config/sqltun");
    fs::write(config.join("tunnels.toml"), s.saved_tunnel("mine", &echo, "")).expect("write tunnels.toml");
    let (mut tunnel, _) = s
        .bare("connect")
        .current_dir(&nowhere)
        .arg("mine")
        .spawn_and_echo(b"home file");
    tunnel.stop(crate::support::Signal::Term);

    let xdg = s.lab.fresh_path("xdg", "");
    fs::create_dir_all(xdg.join("sqltun")).expect("create the XDG directory");
    fs::write(xdg.join("sqltun/tunnels.toml"), s.saved_tunnel("xdg-only", &echo, "")).expect("write");
    let (mut tunnel, _) = s
        .bare("connect")
        .current_dir(&nowhere)
        .env("XDG_CONFIG_HOME", &xdg)
        .arg("xdg-only")
        .spawn_and_echo(b"xdg file");
    tunnel.stop(crate::support::Signal::Term);

    let explicit = s.lab.fresh_path("explicit", ".toml");
    fs::write(&explicit, s.saved_tunnel("named", &echo, "")).expect("write");
    let (mut tunnel, _) = s
        .bare("connect")
        .current_dir(&nowhere)
        .arg("--tunnels-file")
        .arg(&explicit)
        .arg("named")
        .spawn_and_echo(b"explicit file");
    tunnel.stop(crate::support::Signal::Term);
    // With --tunnels-file, the user's own file is not read.
    let (code, _, stderr) = run(s
        .bare("connect")
        .current_dir(&nowhere)
        .arg("--tunnels-file")
        .arg(&explicit)
        .arg("mine"));
    assert_error(code, &stderr, 2, &["no tunnel `mine` in "]);
}

/// Why: the file says what is usual, the command line what is different today; each flag given wins
/// over its own key and only that one (`--db` here, `--output` over the file's `output`).
#[test]
fn flags_override_the_saved_values() {
    let s = Bastion::start();
    let unused = s.lab.blackhole_addr();
    let root = project(
        &s,
        &s.saved_tunnel("prod", &format!("{unused}:5432"), "output = \"json\"\n"),
    );
    let echo = s.targets.echo.to_string();
    let mut tunnel = s
        .bare("connect")
        .current_dir(&root)
        .args(["prod", "--db", &echo, "--output", "addr"])
        .spawn();
    let line = tunnel.wait_ready_line();
    let port: u16 = line
        .strip_prefix("127.0.0.1:")
        .unwrap_or_else(|| panic!("not an addr line: {line}"))
        .parse()
        .expect("a port");
    echo_roundtrip(local(port), b"flag over file");
    tunnel.stop(crate::support::Signal::Term);
}

/// Why: a mistake in a committed file must point at its line and key, and a secret put there by
/// mistake is refused where it is, never repeated, and nothing is dialled.
#[test]
fn mistakes_and_secrets_in_the_file_name_their_line() {
    let s = Bastion::start();
    let tripwire = Tripwire::new();
    let head = format!("[tunnels.prod]\nssh = \"{}\"\n", tripwire.destination());
    for (body, needles) in [
        (
            "db = \"db:5432\"\nsssh = \"x\"\n",
            vec!["sqltun.toml:4: tunnels.prod.sssh: unknown field `sssh`"],
        ),
        (
            "db = 5432\n",
            vec!["sqltun.toml:3: tunnels.prod.db: expected a string or a list of strings"],
        ),
        (
            "db = \"db:5432\"\npassword = \"hunter2-Zq8\"\n",
            vec!["sqltun.toml:4: tunnels.prod.password: secrets do not belong"],
        ),
        (
            "db = \"postgres://app:hunter2-Zq8@db/app\"\n",
            vec!["sqltun.toml:3: tunnels.prod.db: ", "carries a password"],
        ),
    ] {
        let root = project(&s, &format!("{head}{body}"));
        let (code, stdout, stderr) = run(s.bare("connect").current_dir(&root).arg("prod"));
        let line = assert_error(code, &stderr, 2, &needles);
        assert!(!stderr.contains("hunter2-Zq8"), "the secret was repeated: {line}");
        assert_eq!(stdout, "");
    }
    tripwire.assert_untouched();
}

/// Why: `config NAME --json` answers "where does this value come from?" for every value: the flag, the
/// tunnels file's line, or the default; ssh_config directives from the file's `options` keep their line
/// through resolution.
#[test]
fn config_name_shows_each_origin() {
    let s = Bastion::start();
    let echo = s.targets.echo.to_string();
    let root = project(&s, &s.saved_tunnel("prod", &echo, "options = { ConnectTimeout = 7 }\n"));
    let file = root.join("sqltun.toml").display().to_string();
    let (code, stdout, stderr) =
        run(s
            .bare("config")
            .current_dir(&root)
            .args(["prod", "--json", "-o", "Compression=yes"]));
    assert_eq!(code, 0, "stderr:\n{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("config --json");
    let tunnel = &json["tunnel"]["settings"];
    assert_eq!(tunnel["ssh"]["origin"], format!("{file}:2"), "{stdout}");
    assert_eq!(tunnel["db"]["origin"], format!("{file}:6"));
    assert_eq!(tunnel["db"]["value"][0], echo);
    assert_eq!(tunnel["bind"]["origin"], "default");
    assert_eq!(tunnel["options"][0]["origin"], "flag");
    let hop = &json["hops"][0]["settings"];
    assert_eq!(hop["connecttimeout"]["origin"], format!("{file}:7"));
    assert_eq!(hop["compression"]["origin"], "command line");
    assert_eq!(hop["userknownhostsfile"]["origin"], format!("{file}:4"));
    // A name in no tunnels file is still an SSH destination, as `ssh -G` takes it.
    let (code, stdout, _) = run(s.bare("config").current_dir(&root).args(["-F", "none", "other-host"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("hostname other-host\n"), "{stdout}");
    // A broken tunnels file on the way is said, and does not stop `config` of a plain host.
    let broken = project(&s, "[tunnels.prod]\nsssh = \"x\"\n");
    let (code, stdout, stderr) = run(s.bare("config").current_dir(&broken).args(["-F", "none", "other-host"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("hostname other-host\n"), "{stdout}");
    assert!(
        stderr.contains("sqltun.toml:2: tunnels.prod.sssh: unknown field"),
        "{stderr}"
    );
}
