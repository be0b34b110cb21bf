//! The person at the terminal: what sqltun says when it is used wrong or asked for help, in one voice
//! (`sqltun: …`), on one screen, without colour where colour is not wanted; and the generated help that
//! ships with it (completions). The real binary, no lab: nothing here needs the network beyond a
//! refused loopback port.

use std::time::Duration;

use crate::support::{SqltunCommand, TempHome, TerminalSession, free_local_port};

const TIMEOUT: Duration = Duration::from_secs(30);
const ESC: u8 = 0x1b;

/// `sqltun ARGS…` with a private HOME and no terminal; (exit code, stdout, stderr).
fn run(home: &TempHome, args: &[&str]) -> (i32, String, String) {
    let mut run = SqltunCommand::new(home.path()).args(args).spawn();
    let code = run.wait_exit(TIMEOUT);
    (code, run.stdout(), run.stderr())
}

/// Why: `-h` is what a newcomer types first; it must fit one screen (25 lines), for the top level
/// and for every subcommand, and carry examples; `--help` is the long form with every option.
#[test]
fn short_help_fits_a_screen() {
    let home = TempHome::new();
    let (code, stdout, stderr) = run(&home, &["-h"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.lines().count() <= 25,
        "sqltun -h is {} lines:\n{stdout}",
        stdout.lines().count()
    );
    assert_eq!(stdout.matches("\n  sqltun ").count(), 4, "four examples:\n{stdout}");
    for sub in ["connect", "exec", "check", "config", "authorize", "completions"] {
        let (code, stdout, _) = run(&home, &[sub, "-h"]);
        assert_eq!(code, 0);
        assert!(
            stdout.lines().count() <= 25,
            "sqltun {sub} -h is {} lines:\n{stdout}",
            stdout.lines().count()
        );
        let (_, long, _) = run(&home, &[sub, "--help"]);
        assert!(
            sub == "completions" || long.lines().count() > stdout.lines().count(),
            "{sub} --help is not the long form"
        );
    }
    let (_, long, _) = run(&home, &["--help"]);
    for code in ["10 ", "11 ", "126 ", "127 ", "128+N ", "130 "] {
        assert!(
            long.contains(&format!("\n  {code}")),
            "--help lacks exit status {code}:\n{long}"
        );
    }
    let (code, version, _) = run(&home, &["--version"]);
    assert_eq!((code, version.starts_with("sqltun ")), (0, true), "{version}");
}

/// Why: people bring ssh's options; `-p 2222` must say where the port goes (exit 2, the usage code),
/// not clap's "use '-- -p'".
#[test]
fn ssh_port_flag_points_to_the_destination() {
    let home = TempHome::new();
    let (code, stdout, stderr) = run(
        &home,
        &["connect", "--ssh", "deploy@bastion", "-p", "2222", "--db", "db:5432"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr.lines().next(),
        Some("sqltun: -p: the SSH port goes in the destination: --ssh user@host:2222"),
        "{stderr}"
    );
    assert!(!stderr.contains("'-- -p'"), "{stderr}");
}

/// Why: a typo of the most used option must suggest it (clap's own guess is --ssh-config).
#[test]
fn typo_of_ssh_suggests_ssh() {
    let home = TempHome::new();
    let (code, _, stderr) = run(&home, &["connect", "--sh", "bastion", "--db", "db:5432"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("sqltun: unknown option --sh; did you mean --ssh?"),
        "{stderr}"
    );
}

/// Why: every error is in one voice; clap's own parse errors included, and still exit 2.
#[test]
fn parse_errors_start_with_sqltun() {
    let home = TempHome::new();
    for args in [
        &["connect"][..],
        &["connect", "--ssh", "h", "--db", "h:99999"],
        &["check", "--ssh", "h", "--db", "d:1", "--output", "json"],
        &["frobnicate"],
        &[],
    ] {
        let (code, stdout, stderr) = run(&home, args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stdout, "", "{args:?}");
        assert!(stderr.starts_with("sqltun: "), "{args:?}:\n{stderr}");
    }
}

/// Why: `check` diagnoses and exits; offering it --output, --no-reconnect or --local-port (which it
/// ignored) misleads. Its help must list only what it uses.
#[test]
fn check_help_lists_only_its_options() {
    let home = TempHome::new();
    let (code, help, _) = run(&home, &["check", "--help"]);
    assert_eq!(code, 0);
    for absent in [
        "--output",
        "--no-reconnect",
        "--local-port",
        "--reconnect-timeout",
        "--bind",
    ] {
        assert!(!help.contains(absent), "check --help offers {absent}:\n{help}");
    }
    for present in ["--ssh", "--db", "--json", "--batch", "-J, --jump"] {
        assert!(help.contains(present), "check --help lacks {present}");
    }
    let usage = help
        .lines()
        .skip_while(|l| !l.starts_with("Usage:"))
        .take_while(|l| !l.is_empty());
    for line in usage {
        assert!(
            !(line.contains("SSH_URL") && line.contains("--ssh")),
            "the usage offers SSH_URL beside --ssh: {line}"
        );
    }
}

/// Why: `sqltun completions SHELL` is how the install instructions get a completion script, and in
/// bash `--ssh` completes the user's ssh_config aliases (asked of `config --list-hosts` at run time).
#[test]
fn completions_print_a_script_that_completes_aliases() {
    let home = TempHome::new();
    let (code, script, stderr) = run(&home, &["completions", "bash"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(script.contains("complete -F _sqltun"), "{script}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let (code, script, _) = run(&home, &["completions", shell]);
        assert!(code == 0 && script.len() > 1000, "completions {shell}");
    }
    let ssh = home.path().join(".ssh");
    std::fs::create_dir_all(ssh.join("conf.d")).expect("mkdir");
    std::fs::write(
        ssh.join("config"),
        "Host prod-db staging-*\n  User deploy\nInclude conf.d/*\nHost !nope *\n",
    )
    .expect("write config");
    std::fs::write(ssh.join("conf.d/team"), "Host team-bastion\n  Port 2222\n").expect("write include");
    let (code, hosts, stderr) = run(&home, &["config", "--list-hosts"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        hosts.lines().take(2).collect::<Vec<_>>(),
        ["prod-db", "team-bastion"],
        "{hosts}"
    );
    assert!(!hosts.contains('*') && !hosts.contains("nope"), "{hosts}");

    // The script itself, run by bash as completion would: `sqltun connect --ssh te<TAB>`.
    let file = home.path().join("sqltun.bash");
    std::fs::write(&file, &script).expect("write the script");
    let bin = std::path::Path::new(crate::support::SQLTUN).parent().expect("bin dir");
    let probe = format!(
        "source {}; COMP_WORDS=(sqltun connect --ssh te); COMP_CWORD=3; _sqltun sqltun te --ssh; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &probe])
        .env("HOME", home.path())
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .expect("run bash");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "team-bastion\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why: `config` must show the ConnectTimeout sqltun applies (15 s by default), as its JSON does,
/// not OpenSSH's `none`.
#[test]
fn config_shows_the_effective_connect_timeout() {
    let home = TempHome::new();
    let (code, text, stderr) = run(&home, &["config", "-F", "none", "db.example"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.lines().any(|l| l == "connecttimeout 15"), "{text}");
    let (_, text, _) = run(&home, &["config", "-F", "none", "-o", "ConnectTimeout=4", "db.example"]);
    assert!(text.lines().any(|l| l == "connecttimeout 4"), "{text}");
    let (_, json, _) = run(&home, &["config", "-F", "none", "--json", "db.example"]);
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(value["hops"][0]["connect_timeout_secs"], 15);
    assert_eq!(value["hops"][0]["settings"]["connecttimeout"]["values"][0], "15");
}

/// A connect that warns (a password in the --db URL) and then fails (nothing listens on the port).
fn warn_then_fail() -> Vec<String> {
    let port = free_local_port();
    [
        "connect",
        "-F",
        "none",
        "--batch",
        "--ssh",
        &format!("127.0.0.1:{port}"),
        "--db",
        "postgres://app:pw@db/app",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `sqltun ARGS…` on a terminal of its own with a private HOME and `env`; (exit code, every byte it
/// wrote to the terminal).
fn run_on_pty(home: &TempHome, args: &[impl AsRef<std::ffi::OsStr>], env: &[(&str, &str)]) -> (i32, Vec<u8>) {
    let mut command = SqltunCommand::new(home.path()).args(args);
    for (key, value) in env {
        command = command.env(key, value);
    }
    TerminalSession::spawn(&command).run_to_exit(TIMEOUT)
}

fn assert_warned_and_failed(code: i32, output: &[u8]) {
    let text = String::from_utf8_lossy(output);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("sqltun: warning: the --db URL"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("sqltun: ") && l.contains("127.0.0.1")),
        "{text}"
    );
}

/// Why: NO_COLOR must hold for every writer on a terminal (the log's warning label was coloured), and
/// without it the same run on a terminal is coloured (so the check can see colour at all).
#[test]
fn no_color_on_a_terminal_means_no_escape_sequences() {
    let home = TempHome::new();
    let (code, plain) = run_on_pty(&home, &warn_then_fail(), &[("NO_COLOR", "1")]);
    assert_warned_and_failed(code, &plain);
    let text = String::from_utf8_lossy(&plain);
    assert!(!plain.contains(&ESC), "ESC under NO_COLOR:\n{text:?}");
    let (code, usage) = run_on_pty(&home, &["connect", "-p", "2222"], &[("NO_COLOR", "1")]);
    let text = String::from_utf8_lossy(&usage);
    assert_eq!(code, 2, "{text}");
    assert!(text.starts_with("sqltun: -p: "), "{text}");
    assert!(!usage.contains(&ESC), "{text:?}");

    let (_, coloured) = run_on_pty(&home, &warn_then_fail(), &[]);
    assert!(
        coloured.contains(&ESC),
        "no colour on a terminal:\n{:?}",
        String::from_utf8_lossy(&coloured)
    );
}

/// Why: stderr that is not a terminal (a log file, CI) gets no escape sequences either.
#[test]
fn no_escape_sequences_off_a_terminal() {
    let home = TempHome::new();
    let args = warn_then_fail();
    let (code, stdout, stderr) = run(&home, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!((code, stdout.as_str()), (3, ""), "{stderr}");
    assert!(stderr.contains("sqltun: warning: "), "{stderr}");
    assert!(!stderr.as_bytes().contains(&ESC), "{stderr:?}");
}
