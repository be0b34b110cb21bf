//! The tunnels file's secret commands (`password_command`, `passphrase_command`; `totp_command` is in
//! `auth_methods`, beside the PAM one-time-code fixtures) against real sshd: a command runs only when its
//! secret is needed, once per connection, for the hop it serves, again after a reconnect, and a command
//! that fails stops authentication with a clear error.
//!
//! Each command here is `/bin/sh -c SCRIPT` that appends a line to a counter file every time it runs and
//! prints the secret from a file of the lab (so no secret sits in an argument list), which lets the tests
//! count the runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{
    Bastion, Chain, EXIT_TIMEOUT, KeyKind, KeyPair, Lab, Pam, Signal, SqltunCommand, SshdOptions, TEST_PASSWORD,
    TEST_USER, TerminalSession, assert_error, assert_hop_failed, assert_logged, echo_roundtrip, local, only_methods,
    poll_until, send_signal, toml_words, write_file,
};

/// Bound on a reconnect being noticed and completed (the killed session ends at once; the restarted
/// sshd answers the first re-dial after it).
const BACK_TIMEOUT: Duration = Duration::from_secs(30);

/// A counter file (absent until the command first runs) and the command, as a TOML list, that counts a
/// run in it and prints `secret`.
struct Counting {
    counter: PathBuf,
    command: String,
}

impl Counting {
    fn new(lab: &Lab, secret: &str) -> Counting {
        let counter = lab.fresh_path("command-runs", "");
        let secret_file = lab.fresh_path("secret", "");
        write_file(&secret_file, &format!("{secret}\n"), 0o600);
        let command = toml_words(&[
            "/bin/sh",
            "-c",
            "printf 'ran\\n' >> \"$1\"; cat \"$2\"",
            "counting-command",
            &counter.display().to_string(),
            &secret_file.display().to_string(),
        ]);
        Counting { counter, command }
    }

    /// How many times the command ran.
    fn runs(&self) -> usize {
        fs::read_to_string(&self.counter).map_or(0, |text| text.lines().count())
    }
}

/// A tunnels file with one tunnel, `t`, holding `settings` (`key = value` lines).
fn tunnels_file(lab: &Lab, settings: &[(&str, &str)]) -> PathBuf {
    let body: String = settings.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    lab.tunnels_file(&format!("[tunnels.t]\n{body}"))
}

/// `COMMAND t --tunnels-file FILE`: the saved tunnel, with the command line's flags filling in the rest.
fn saved(command: SqltunCommand, file: &Path) -> SqltunCommand {
    command.arg("t").arg("--tunnels-file").arg(file)
}

/// A bastion that takes passwords only.
fn password_bastion() -> Bastion {
    Bastion::without_key(Lab::new(), |_, _| SshdOptions {
        extra_config: only_methods("password"),
        ..SshdOptions::default()
    })
}

/// Why: a command may unlock a password manager or touch a hardware token; it must not run when the
/// secret is not needed. A bastion that accepts both a key and a password lets the key in: neither the
/// password command nor the passphrase command (the key is not encrypted) nor the TOTP command may have
/// run, and sshd logs the key as what it accepted.
#[test]
fn key_auth_never_runs_a_secret_command() {
    let bastion = Bastion::start();
    let counting = Counting::new(&bastion.lab, TEST_PASSWORD);
    let file = tunnels_file(
        &bastion.lab,
        &[
            ("password_command", &counting.command),
            ("passphrase_command", &counting.command),
            ("totp_command", &counting.command),
        ],
    );
    let (tunnel, _) = saved(bastion.connect_with_key(), &file)
        .db(bastion.targets.echo)
        .spawn_and_echo(b"the key is enough");
    assert_logged(
        &tunnel,
        &bastion.sshd,
        &[&format!("Accepted publickey for {TEST_USER}")],
    );
    assert_eq!(counting.runs(), 0, "a secret command ran although the key got in");
}

/// Starts a two-bastion lab where both sshds accept only passwords.
fn password_only_chain() -> Chain {
    Chain::without_key(Lab::with_bastions(2), |_| SshdOptions {
        extra_config: only_methods("password"),
        ..SshdOptions::default()
    })
}

/// Why: `password_command` stands where the unnumbered SQLTUN_SSH_PASSWORD does: its result goes to the
/// destination only, never to a jump host. On a chain of two password-only bastions:
/// - without SQLTUN_SSH_PASSWORD_1 the jump host gets nothing: exit 2 naming hop 1/2 and the variable,
///   the command never ran, and hop 1's sshd saw no password;
/// - with it, the command runs exactly once, for hop 2, and both hops log the password accepted;
/// - with SQLTUN_SSH_PASSWORD set as well, the variable wins and the command does not run.
#[test]
fn password_command_runs_once_for_the_destination_only() {
    let chain = password_only_chain();
    let counting = Counting::new(&chain.lab, TEST_PASSWORD);
    let file = tunnels_file(&chain.lab, &[("password_command", &counting.command)]);
    let connect = || saved(chain.literal("connect"), &file).db(chain.targets.echo);

    let (code, stderr) = connect().spawn().run_to_exit(EXIT_TIMEOUT);
    let line = assert_hop_failed(code, &stderr, 2, "hop 1/2", &chain.sshds[0].destination(), None);
    assert!(line.contains("SQLTUN_SSH_PASSWORD_1"), "{line}");
    assert_eq!(
        counting.runs(),
        0,
        "the command ran for the jump host; stderr:\n{stderr}"
    );
    let log = chain.sshds[0].log_text();
    assert!(
        !log.contains(&format!("password for {TEST_USER}")),
        "hop 1 was sent a password; stderr:\n{stderr}\nsshd log:\n{log}"
    );

    let (tunnel, _) = connect()
        .env("SQLTUN_SSH_PASSWORD_1", TEST_PASSWORD)
        .spawn_and_echo(b"hop 1 by number, the destination by command");
    for sshd in &chain.sshds {
        assert_logged(&tunnel, sshd, &[&format!("Accepted password for {TEST_USER}")]);
    }
    assert_eq!(counting.runs(), 1, "the command should run once, for hop 2");
    drop(tunnel);

    connect()
        .env("SQLTUN_SSH_PASSWORD_1", TEST_PASSWORD)
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn_and_echo(b"the variable wins over the command");
    assert_eq!(
        counting.runs(),
        1,
        "the command ran although SQLTUN_SSH_PASSWORD was set"
    );
}

/// One connection asks the command once, however many methods use the password: against a PAM bastion
/// that offers keyboard-interactive ("Password:") and then password, a wrong password from the command
/// is tried with both (sshd logs both failures), and the command ran once. The failure is exit 5.
#[test]
fn password_command_runs_once_per_connection_for_every_method() {
    let bastion = Bastion::without_key(Lab::new(), |_, _| SshdOptions {
        pam: Some(Pam::System),
        ..SshdOptions::default()
    });
    let counting = Counting::new(&bastion.lab, "not the password");
    let file = tunnels_file(&bastion.lab, &[("password_command", &counting.command)]);
    let (code, stderr) = saved(bastion.connect_to_echo(), &file)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(
        code,
        &stderr,
        5,
        &[&bastion.sshd.destination(), "authentication failed"],
    );
    let log = bastion.sshd.log_text();
    for method in ["keyboard-interactive/pam", "password"] {
        assert!(
            log.contains(&format!("Failed {method} for {TEST_USER}")),
            "sshd did not log a failed {method}; stderr:\n{stderr}\nsshd log:\n{log}"
        );
    }
    assert_eq!(counting.runs(), 1, "the command should run once for the connection");
}

/// Why: tokens from a password manager or a vault can be short-lived, so a result is never kept for
/// later: after the bastion's sshd is killed and restarted, the reconnect runs the command again (two
/// runs in all), the restarted sshd accepts the password, and the same port carries traffic again.
#[test]
fn password_command_runs_again_on_reconnect() {
    let bastion = password_bastion();
    let counting = Counting::new(&bastion.lab, TEST_PASSWORD);
    let file = tunnels_file(&bastion.lab, &[("password_command", &counting.command)]);
    let (tunnel, port) = saved(bastion.connect_to_echo(), &file).spawn_and_echo(b"first connection");
    assert_eq!(counting.runs(), 1);

    bastion.lab.kill_bastion(0);
    if !tunnel.stderr_mentions(&["reconnecting"], BACK_TIMEOUT) {
        tunnel.fail("no reconnecting notice after the bastion was killed");
    }
    let restarted = bastion.lab.restart_sshd(&bastion.sshd);
    if !tunnel.stderr_mentions(&["reconnected after"], BACK_TIMEOUT) {
        tunnel.fail("no reconnected notice after sshd was restarted");
    }
    echo_roundtrip(local(port), b"after the reconnect");
    assert_logged(&tunnel, &restarted, &[&format!("Accepted password for {TEST_USER}")]);
    assert_eq!(counting.runs(), 2, "the reconnect should run the command again");
}

/// A bastion that accepts only one encrypted key, and that key.
fn encrypted_key_bastion(passphrase: &str) -> (Bastion, KeyPair) {
    let mut key = None;
    let bastion = Bastion::without_key(Lab::new(), |lab, _| {
        let encrypted = lab.generate_encrypted_key(KeyKind::Ed25519, passphrase);
        let options = SshdOptions {
            authorized_keys: Some(lab.authorized_keys_file(&[&encrypted])),
            extra_config: only_methods("publickey"),
            ..SshdOptions::default()
        };
        key = Some(encrypted);
        options
    });
    (bastion, key.expect("the key was made with the sshd options"))
}

/// `passphrase_command` opens an encrypted identity file: it runs once, when the key is to be
/// decrypted, and sshd logs that key as accepted. A command that prints the wrong passphrase is
/// reported as such (exit 5), naming the key and the command, not papered over.
#[test]
fn passphrase_command_opens_an_encrypted_key() {
    let passphrase = "correct horse battery staple";
    let (bastion, key) = encrypted_key_bastion(passphrase);
    let counting = Counting::new(&bastion.lab, passphrase);
    let file = tunnels_file(&bastion.lab, &[("passphrase_command", &counting.command)]);
    let (tunnel, _) = saved(bastion.connect_to_echo(), &file)
        .identity(&key)
        .spawn_and_echo(b"key opened by the command");
    assert_logged(
        &tunnel,
        &bastion.sshd,
        &[&format!("Accepted publickey for {TEST_USER}"), &key.fingerprint()],
    );
    assert_eq!(counting.runs(), 1);

    let wrong = Counting::new(&bastion.lab, "not the passphrase");
    let file = tunnels_file(&bastion.lab, &[("passphrase_command", &wrong.command)]);
    let (code, stderr) = saved(bastion.connect_to_echo(), &file)
        .identity(&key)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(
        code,
        &stderr,
        5,
        &[
            "wrong passphrase for",
            &key.private.display().to_string(),
            "passphrase_command `/bin/sh`",
        ],
    );
    assert_eq!(wrong.runs(), 1);
}

/// Why: a password manager that is locked, or a vault path that does not exist, must stop sqltun with
/// a line saying which command failed, not an authentication failure that blames the password. The
/// tool's own stderr reaches the person; its stdout (which may hold part of a secret) is never shown,
/// nor are its arguments; nothing is sent to sshd. A program that does not exist is a configuration
/// error (exit 2).
#[test]
fn failing_password_command_is_a_clear_error() {
    let bastion = password_bastion();
    let failing = toml_words(&[
        "/bin/sh",
        "-c",
        "echo printed-on-stdout; echo 'vault: not logged in' >&2; exit 3",
    ]);
    let file = tunnels_file(&bastion.lab, &[("password_command", &failing)]);
    let (code, stderr) = saved(bastion.connect_to_echo(), &file)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(
        code,
        &stderr,
        5,
        &[
            &bastion.sshd.destination(),
            "password_command `/bin/sh`: exited with status 3",
        ],
    );
    assert!(
        stderr.contains("vault: not logged in"),
        "the tool's stderr was not passed through:\n{stderr}"
    );
    assert!(
        !stderr.contains("printed-on-stdout") && !stderr.contains("echo "),
        "the command's output or arguments were shown:\n{stderr}"
    );
    let log = bastion.sshd.log_text();
    assert!(
        !log.contains(&format!("password for {TEST_USER}")),
        "a password was sent although the command failed; sshd log:\n{log}"
    );

    let missing = toml_words(&["/nonexistent/secret-tool", "read", "prod"]);
    let file = tunnels_file(&bastion.lab, &[("password_command", &missing)]);
    let (code, stderr) = saved(bastion.connect_to_echo(), &file)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(
        code,
        &stderr,
        2,
        &["password_command `/nonexistent/secret-tool`: no such program"],
    );
}

/// Bound on a line appearing on the terminal (key exchange and authentication in a debug build).
const SHOWS: Duration = Duration::from_secs(30);

/// Whether process `pid` still runs (a zombie waiting to be reaped does not).
fn running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').map_or("", |(_, rest)| rest.trim_start());
        !state.starts_with(['Z', 'X'])
    })
}

/// The spinner's braille frames: none may be left on the screen.
fn spinner_debris(screen: &str) -> Option<&str> {
    screen
        .lines()
        .find(|l| l.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c)))
}

/// Why: a password manager may ask on the terminal itself (`op` to unlock, `pass` through gpg). The
/// command's stdin and stderr are sqltun's terminal, and sqltun's spinner stays off the screen while it
/// runs: its question and the answer typed stay on one line of their own, no spinner frame is left, the
/// answer unlocks it and the tunnel comes up.
#[test]
fn password_command_may_ask_on_the_terminal() {
    let bastion = password_bastion();
    let secret_file = bastion.lab.fresh_path("secret", "");
    write_file(&secret_file, &format!("{TEST_PASSWORD}\n"), 0o600);
    let asking = toml_words(&[
        "/bin/sh",
        "-c",
        "printf 'Unlock vault: ' >&2; read answer; [ \"$answer\" = open-sesame ] || exit 1; cat \"$1\"",
        "asking-command",
        &secret_file.display().to_string(),
    ]);
    let file = tunnels_file(&bastion.lab, &[("password_command", &asking)]);
    let mut term = TerminalSession::spawn(&saved(bastion.connect_to_echo(), &file));
    term.wait_for("Unlock vault: ", SHOWS);
    term.type_line("open-sesame");
    term.wait_for("sqltun: forwarding", SHOWS);
    let screen = term.screen();
    assert!(
        screen.lines().any(|l| l == "Unlock vault: open-sesame"),
        "the command's question and its answer are not on a line of their own:\n{screen}"
    );
    if let Some(line) = spinner_debris(&screen) {
        term.fail(&format!("spinner debris left on the screen: {line:?}"));
    }
    term.press_ctrl_c();
    assert_eq!(term.wait_exit(SHOWS), 0, "{}", term.screen());
    assert_logged_password(&bastion);
}

/// sshd accepted a password from the test user.
fn assert_logged_password(bastion: &Bastion) {
    let accepted = format!("Accepted password for {TEST_USER}");
    assert!(
        bastion.sshd.wait_for_log(|log| log.contains(&accepted)),
        "sshd did not log {accepted:?}:\n{}",
        bastion.sshd.log_text()
    );
}

/// Ctrl-C while a command waits for an answer on the terminal ends sqltun as at its own prompts (one
/// `sqltun: interrupted` line, exit 130, echo on), and the command is stopped by sqltun: here it ignores
/// SIGINT and SIGHUP, so only sqltun's kill can end it.
#[test]
fn ctrl_c_while_a_command_asks_stops_it() {
    let bastion = password_bastion();
    let pid_file = bastion.lab.fresh_path("command-pid", "");
    let stubborn = toml_words(&[
        "/bin/sh",
        "-c",
        "trap '' INT HUP; echo $$ > \"$1.new\"; mv \"$1.new\" \"$1\"; printf 'Unlock vault: ' >&2; read answer; exec sleep 1000",
        "stubborn-command",
        &pid_file.display().to_string(),
    ]);
    let file = tunnels_file(&bastion.lab, &[("password_command", &stubborn)]);
    let mut term = TerminalSession::spawn(&saved(bastion.connect_to_echo(), &file));
    term.wait_for("Unlock vault: ", SHOWS);
    let pid: u32 = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or_else(|| term.fail("the command wrote no pid"));
    term.press_ctrl_c();
    let code = term.wait_exit(SHOWS);
    let screen = term.screen();
    let stopped = poll_until(SHOWS, || (!running(pid)).then_some(())).is_some();
    if !stopped {
        // Clean up what the test started before failing.
        let _ = send_signal(pid, Signal::Kill);
    }
    assert_eq!(code, 130, "{screen}");
    assert_eq!(screen.matches("sqltun: interrupted").count(), 1, "{screen}");
    assert!(term.echoes(), "echo is still off after Ctrl-C:\n{screen}");
    assert!(
        stopped,
        "the command (pid {pid}) still runs after sqltun stopped:\n{screen}"
    );
}
