//! The person at the terminal: sqltun run on a pseudo-terminal against real sshd, answering its
//! prompts (host key, passphrase, password, keyboard-interactive through PAM) the way a person does,
//! pressing Ctrl-C at each of them, and watching the per-hop progress. Assertions are on the screen a
//! terminal emulator shows, on the exit code, on known_hosts and on the terminal's settings afterwards.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::{
    Bastion, Chain, KeyKind, KeyPair, Lab, Pam, SqltunCommand, SshdOptions, TEST_PASSWORD, TEST_USER, TerminalSession,
};

/// Bound on any prompt or line appearing (key exchange and a debug build's key decryption included;
/// pam_unix delays a refusal by about two seconds).
const SHOWS: Duration = Duration::from_secs(30);
const HOST_KEY_QUESTION: &str = "Are you sure you want to continue connecting (yes/no/[fingerprint])? ";

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// A bastion with the authorized key, and a connect command that trusts no host key yet.
fn unknown_host() -> (Bastion, std::path::PathBuf, SqltunCommand) {
    let bastion = Bastion::start();
    let known_hosts = bastion.lab.fresh_path("known_hosts_empty", "");
    fs::write(&known_hosts, "").expect("write known_hosts");
    let command = bastion.connect_trusting(&known_hosts).db(bastion.targets.echo);
    (bastion, known_hosts, command)
}

/// The host-key question, checked line by line against what OpenSSH shows.
fn wait_for_host_key_question(term: &mut TerminalSession, bastion: &Bastion) {
    term.wait_for(HOST_KEY_QUESTION, SHOWS);
    let name = bastion.sshd.known_hosts_name();
    let fingerprint = bastion.sshd.host_key(KeyKind::Ed25519).fingerprint();
    let screen = term.screen();
    for line in [
        format!("The authenticity of host '{name} ({name})' can't be established."),
        format!("ED25519 key fingerprint is {fingerprint}."),
        "This key is not known by any other names.".to_string(),
    ] {
        if !screen.lines().any(|l| l == line) {
            term.fail(&format!("no line {line:?}"));
        }
    }
}

/// Ctrl-C after the tunnel is up stops it cleanly (exit 0), as the README says.
fn stop_ready_tunnel(term: &mut TerminalSession) {
    term.wait_for("sqltun: forwarding", SHOWS);
    term.press_ctrl_c();
    assert_eq!(term.wait_exit(SHOWS), 0, "{}", term.screen());
}

/// After an interruption: one `sqltun: interrupted` line, exit 130, and the terminal echoes again.
fn assert_interrupted(term: &mut TerminalSession) {
    let code = term.wait_exit(SHOWS);
    let screen = term.screen();
    assert_eq!(code, 130, "{screen}");
    assert_eq!(
        screen.matches("sqltun: interrupted").count(),
        1,
        "{screen}\nraw: {}",
        term.raw()
    );
    assert!(
        screen.lines().any(|l| l == "sqltun: interrupted"),
        "the interruption is not on a line of its own:\n{screen}"
    );
    assert!(term.echoes(), "echo is still off after Ctrl-C:\n{screen}");
}

/// `yes` at the host-key question records the key and the tunnel comes up, as with ssh.
#[test]
fn host_key_question_answered_yes_records_the_key() {
    let (bastion, known_hosts, command) = unknown_host();
    let mut term = TerminalSession::spawn(&command);
    wait_for_host_key_question(&mut term, &bastion);
    term.type_line("yes");
    stop_ready_tunnel(&mut term);
    let recorded = read(&known_hosts);
    let key = bastion.sshd.host_key(KeyKind::Ed25519).blob();
    assert!(recorded.contains(&key), "known_hosts lacks the key:\n{recorded}");
}

/// Pasting the offered key's fingerprint is a yes (OpenSSH's third answer).
#[test]
fn host_key_question_accepts_the_fingerprint() {
    let (bastion, known_hosts, command) = unknown_host();
    let mut term = TerminalSession::spawn(&command);
    wait_for_host_key_question(&mut term, &bastion);
    term.type_line(&bastion.sshd.host_key(KeyKind::Ed25519).fingerprint());
    stop_ready_tunnel(&mut term);
    assert!(read(&known_hosts).contains(&bastion.sshd.host_key(KeyKind::Ed25519).blob()));
}

/// A fingerprint that is not the offered key's is a refusal (exit 4), and nothing is recorded.
#[test]
fn host_key_question_refuses_another_fingerprint() {
    let (bastion, known_hosts, command) = unknown_host();
    let mut term = TerminalSession::spawn(&command);
    wait_for_host_key_question(&mut term, &bastion);
    let other = bastion.lab.generate_key(KeyKind::Ed25519).fingerprint();
    term.type_line(&other);
    assert_eq!(term.wait_exit(SHOWS), 4, "{}", term.screen());
    assert!(
        term.screen().contains("Host key fingerprint mismatch"),
        "{}",
        term.screen()
    );
    assert_eq!(read(&known_hosts), "");
}

/// Anything but yes, no or a fingerprint asks again with OpenSSH's short line, on a line of its own;
/// `no` then refuses (exit 4) and known_hosts is left as it was.
#[test]
fn host_key_question_asks_again_then_no_refuses() {
    let (bastion, known_hosts, command) = unknown_host();
    let mut term = TerminalSession::spawn(&command);
    wait_for_host_key_question(&mut term, &bastion);
    term.type_line("maybe");
    term.wait_for("Please type 'yes', 'no' or the fingerprint: ", SHOWS);
    let screen = term.screen();
    assert!(
        screen
            .lines()
            .any(|l| l == format!("{HOST_KEY_QUESTION}maybe").trim_end()),
        "the answer is not on the question's line:\n{screen}"
    );
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("Please type 'yes', 'no' or the fingerprint:")),
        "the second question is not on a line of its own:\n{screen}"
    );
    assert_eq!(screen.matches("Are you sure").count(), 1, "{screen}");
    term.type_line("no");
    assert_eq!(term.wait_exit(SHOWS), 4, "{}", term.screen());
    assert_eq!(read(&known_hosts), "");
}

/// Ctrl-C at the host-key question: nothing recorded, `sqltun: interrupted`, exit 130; a `yes` typed
/// afterwards goes to the shell, not to sqltun.
#[test]
fn ctrl_c_at_the_host_key_question_interrupts() {
    let (bastion, known_hosts, command) = unknown_host();
    let mut term = TerminalSession::spawn(&command);
    wait_for_host_key_question(&mut term, &bastion);
    term.press_ctrl_c();
    assert_interrupted(&mut term);
    assert_eq!(read(&known_hosts), "");
}

/// A bastion that accepts only an encrypted key, and the command that offers it.
fn encrypted_key_bastion(passphrase: &str) -> (Bastion, KeyPair, SqltunCommand) {
    let bastion = Bastion::without_key(Lab::new(), |_, _| SshdOptions::default());
    let key = bastion.lab.generate_encrypted_key(KeyKind::Ed25519, passphrase);
    bastion.lab.authorize(&key);
    let command = bastion.connect().identity(&key).db(bastion.targets.echo);
    (bastion, key, command)
}

/// A wrong passphrase asks again with the same prompt (as ssh, nothing in between); the right one
/// opens the tunnel, and the terminal echoes again.
#[test]
fn passphrase_wrong_then_right() {
    let (_bastion, key, command) = encrypted_key_bastion("right phrase");
    let prompt = format!("Enter passphrase for key '{}': ", key.private.display());
    let mut term = TerminalSession::spawn(&command);
    term.wait_for(&prompt, SHOWS);
    term.type_line("wrong phrase");
    term.wait_until(SHOWS, "the passphrase prompt again", |s| {
        s.matches(prompt.trim_end()).count() == 2
    });
    term.type_line("right phrase");
    stop_ready_tunnel(&mut term);
    let screen = term.screen();
    assert!(
        !screen.contains("phrase\n") && !screen.contains("right phrase"),
        "{screen}"
    );
    assert!(term.echoes());
}

/// Ctrl-C at the passphrase prompt ends sqltun (exit 130) instead of moving on to a password prompt,
/// and echo is back on.
#[test]
fn ctrl_c_at_the_passphrase_prompt_interrupts() {
    let (_bastion, key, command) = encrypted_key_bastion("right phrase");
    let mut term = TerminalSession::spawn(&command);
    term.wait_for(
        &format!("Enter passphrase for key '{}': ", key.private.display()),
        SHOWS,
    );
    term.press_ctrl_c();
    assert_interrupted(&mut term);
    assert!(!term.screen().contains("password"), "{}", term.screen());
}

/// A bastion without any key of ours: passwords only (sshd checks them itself, UsePAM no).
fn password_bastion() -> (Bastion, SqltunCommand, String) {
    let bastion = Bastion::without_key(Lab::new(), |_, _| SshdOptions::default());
    let command = bastion.connect().db(bastion.targets.echo);
    let prompt = format!("{TEST_USER}@{}'s password: ", bastion.sshd.addr);
    (bastion, command, prompt)
}

/// Three wrong passwords: `Permission denied, please try again.` before the second and third prompt,
/// as ssh says it, then the authentication failure (exit 5).
#[test]
fn password_wrong_three_times() {
    let (_bastion, command, prompt) = password_bastion();
    let mut term = TerminalSession::spawn(&command);
    for attempt in 1..=3 {
        term.wait_until(SHOWS, &format!("password prompt {attempt}"), |s| {
            s.matches(prompt.trim_end()).count() == attempt
        });
        term.type_line("not-the-password");
    }
    assert_eq!(term.wait_exit(SHOWS), 5, "{}", term.screen());
    let screen = term.screen();
    let expected = [
        prompt.trim_end(),
        "Permission denied, please try again.",
        prompt.trim_end(),
        "Permission denied, please try again.",
        prompt.trim_end(),
    ];
    let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines
        .iter()
        .position(|l| *l == expected[0])
        .unwrap_or_else(|| term.fail("no password prompt"));
    assert_eq!(&lines[start..start + 5], &expected, "{screen}");
    assert!(lines[start + 5].contains("authentication failed"), "{screen}");
    assert!(!screen.contains("not-the-password"), "{screen}");
    assert!(term.echoes());
}

/// Ctrl-C at the password prompt: exit 130 and `sqltun: interrupted`, not an authentication failure.
#[test]
fn ctrl_c_at_the_password_prompt_interrupts() {
    let (_bastion, command, prompt) = password_bastion();
    let mut term = TerminalSession::spawn(&command);
    term.wait_for(&prompt, SHOWS);
    term.press_ctrl_c();
    assert_interrupted(&mut term);
    assert!(!term.screen().contains("authentication failed"), "{}", term.screen());
}

/// keyboard-interactive through the machine's PAM (pam_unix): the server's own prompt is shown after
/// `(user@host)`, as ssh shows it; a wrong answer gets the prompt again and the right one gets in.
#[test]
fn keyboard_interactive_wrong_then_right() {
    let bastion = Bastion::without_key(Lab::new(), |_, _| SshdOptions {
        pam: Some(Pam::System),
        ..SshdOptions::default()
    });
    let command = bastion.connect().db(bastion.targets.echo);
    let prompt = format!("({TEST_USER}@{}) Password: ", bastion.sshd.addr);
    let mut term = TerminalSession::spawn(&command);
    term.wait_for(&prompt, SHOWS);
    term.type_line("not-the-password");
    term.wait_until(SHOWS, "the server's prompt again", |s| {
        s.matches(prompt.trim_end()).count() == 2
    });
    term.type_line(TEST_PASSWORD);
    stop_ready_tunnel(&mut term);
    assert!(!term.screen().contains("'s password:"), "{}", term.screen());
}

/// The spinner's braille frames: none may be left on the screen.
fn spinner_debris(screen: &str) -> Option<&str> {
    screen
        .lines()
        .find(|l| l.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c)))
}

/// The progress of a 2-hop chain on a terminal: a line per finished hop, in order, stays on the screen
/// with its time; the spinner leaves nothing behind; at -v the log lines are printed above it.
#[test]
fn progress_per_hop_on_a_two_hop_chain() {
    let chain = Chain::start(2);
    for verbose in [false, true] {
        let mut command = chain.literal("connect").identity(chain.key()).db(chain.targets.echo);
        if verbose {
            command = command.arg("-v");
        }
        let mut term = TerminalSession::spawn(&command);
        stop_ready_tunnel(&mut term);
        let screen = term.screen();
        let done: Vec<&str> = screen.lines().filter(|l| l.starts_with("✓ ")).collect();
        assert_eq!(done.len(), 2, "{screen}");
        for (i, line) in done.iter().enumerate() {
            let hop = format!("✓ [{}/2] {} ", i + 1, chain.sshds[i].destination());
            assert!(line.starts_with(&hop), "{line:?} is not {hop:?}…\n{screen}");
            assert!(line.ends_with(" ms") || line.ends_with(" s"), "{line:?}");
        }
        if let Some(line) = spinner_debris(&screen) {
            term.fail(&format!("spinner debris left on the screen: {line:?}"));
        }
        // Info records, in sqltun's voice: shown at -v only.
        let logs = screen
            .lines()
            .filter(|l| l.starts_with("sqltun: authenticated ("))
            .count();
        assert_eq!(logs > 0, verbose, "-v: {verbose}\n{screen}");
    }
}
