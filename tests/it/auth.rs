//! Authentication beyond a plain key or password, against OpenSSH's sshd with real PAM: keyboard-interactive
//! (through the machine's own /etc/pam.d/sshd, and through a lab PAM service that asks for a one-time code),
//! publickey followed by keyboard-interactive, OpenSSH user certificates, per-hop passwords and passphrases
//! on a two-hop chain, PreferredAuthentications, and identity files with loose permissions.
//!
//! Every test checks the outcome sqltun reports (ready line and traffic, or exit code and error line) and,
//! where it matters which credential did the job, sshd's own log of the method it accepted.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{
    EXIT_TIMEOUT, KeyKind, KeyPair, Lab, Pam, Sqltun, SqltunCommand, Sshd, SshdOptions, TEST_PASSWORD, TEST_USER,
    Targets, echo_roundtrip, error_line, local,
};

/// Where Debian (and other multiarch systems) keep PAM modules; the Google Authenticator module must be in
/// one of them (`scripts/install-test-deps` installs it).
const PAM_MODULE_DIRS: [&str; 2] = ["/lib", "/usr/lib"];

/// A lab with one sshd configured by the test, the targets behind it, and a known_hosts file pinning it.
struct Bastion {
    lab: Lab,
    sshd: Sshd,
    targets: Targets,
    known_hosts: PathBuf,
}

impl Bastion {
    /// Starts sshd with `options(&lab)` (so options can name files made in the lab).
    fn with(options: impl FnOnce(&Lab) -> SshdOptions) -> Bastion {
        let lab = Lab::new();
        let targets = lab.start_targets();
        let sshd = lab.start_sshd(options(&lab));
        let known_hosts = lab.known_hosts_for(&sshd);
        Bastion {
            lab,
            sshd,
            targets,
            known_hosts,
        }
    }

    /// `sqltun connect -F none --ssh … --known-hosts … --db ECHO`, no credentials.
    fn connect(&self) -> SqltunCommand {
        self.lab
            .connect()
            .ssh(&self.sshd)
            .known_hosts(&self.known_hosts)
            .db(self.targets.echo)
    }
}

/// A lab of two bastions, each sshd configured by `options(hop)`, the targets behind B2, and a known_hosts
/// file pinning both.
struct TwoHops {
    lab: Lab,
    sshds: Vec<Sshd>,
    targets: Targets,
    known_hosts: PathBuf,
}

impl TwoHops {
    fn with(lab: Lab, options: impl Fn(usize) -> SshdOptions) -> TwoHops {
        let targets = lab.start_targets();
        let sshds: Vec<Sshd> = (0..2).map(|hop| lab.start_sshd_on(hop, options(hop))).collect();
        let known_hosts = lab.known_hosts_file(&sshds.iter().map(Sshd::known_hosts_line).collect::<Vec<_>>());
        TwoHops {
            lab,
            sshds,
            targets,
            known_hosts,
        }
    }

    /// `sqltun connect -F none -J USER@B1 --ssh USER@B2 --known-hosts … --db ECHO`, no credentials.
    fn connect_literal(&self) -> SqltunCommand {
        self.lab
            .connect()
            .args([
                "-J",
                &self.sshds[0].destination(),
                "--ssh",
                &self.sshds[1].destination(),
            ])
            .known_hosts(&self.known_hosts)
            .db(self.targets.echo)
    }
}

/// `AuthenticationMethods LIST` as sshd's only authentication policy (the fixture's Pubkey/Password
/// settings come first and sshd keeps the first value, so this is how a test narrows what sshd accepts).
fn only(methods: &str) -> Vec<String> {
    vec![format!("AuthenticationMethods {methods}")]
}

/// sshd's log so far.
fn sshd_log(sshd: &Sshd) -> String {
    fs::read_to_string(&sshd.log).unwrap_or_else(|e| panic!("read {}: {e}", sshd.log.display()))
}

/// Fails the test (with sqltun's output and the lab's logs) unless sshd logged a line containing every
/// one of `needles`. sshd writes its "Accepted …" line before it answers the request it accepts, so by
/// the time sqltun is ready the line is there.
fn assert_logged(tunnel: &Sqltun, sshd: &Sshd, needles: &[&str]) {
    let log = sshd_log(sshd);
    if !log
        .lines()
        .any(|line| needles.iter().all(|needle| line.contains(needle)))
    {
        tunnel.fail(&format!(
            "sshd on hop {} logged no line with all of {needles:?}",
            sshd.hop + 1
        ));
    }
}

/// Asserts exit code `expected` and an error line that names the hop `destination`; returns the line.
fn assert_failed(code: i32, stderr: &str, expected: i32, destination: &str) -> String {
    assert_eq!(code, expected, "exit code; stderr:\n{stderr}");
    let line = error_line(stderr);
    assert!(
        line.contains(destination),
        "the error line does not name the hop {destination}: {line}"
    );
    line
}

/// Asserts exit code `expected` and an error line that starts the way the chain tests expect it:
/// `sqltun: hop 2/2 sqltun-test@ADDR:22 ("alias"): …` (position, address, and the alias if it had one).
fn assert_hop_failed(
    code: i32,
    stderr: &str,
    expected: i32,
    position: &str,
    destination: &str,
    alias: Option<&str>,
) -> String {
    assert_eq!(code, expected, "exit code; stderr:\n{stderr}");
    let line = error_line(stderr);
    let alias = alias.map(|a| format!(" (\"{a}\")")).unwrap_or_default();
    let prefix = format!("sqltun: {position} {destination}{alias}: ");
    assert!(
        line.starts_with(&prefix),
        "the error line does not start with `{prefix}`: {line}"
    );
    line
}

/// Whether PAM's Google Authenticator module is installed where PAM loads modules from.
fn google_authenticator_installed() -> bool {
    PAM_MODULE_DIRS.iter().any(|dir| {
        fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|entry| entry.path().join("security/pam_google_authenticator.so").exists())
        })
    })
}

/// A Google Authenticator secret file in the lab (root's, mode 0600, as the module requires with
/// `user=root`). No code is ever computed from it: the tests only need the module to ask.
fn google_authenticator_secret(lab: &Lab) -> PathBuf {
    let path = lab.fresh_path("google_authenticator", "");
    fs::write(&path, "JBSWY3DPEHPK3PXPJBSWY3DPEH\n\" TOTP_AUTH\n")
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    path
}

/// An ssh_config file in the lab with `text`.
fn write_config(lab: &Lab, text: &str) -> PathBuf {
    let path = lab.fresh_path("ssh_config", "");
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// Bastions with `UsePAM yes` where keyboard-interactive is the only method exist (PAM-backed LDAP and
/// the like): the PAM "Password:" prompt must be answered with SQLTUN_SSH_PASSWORD, and sshd must log
/// that keyboard-interactive through PAM is what let the user in.
#[test]
fn keyboard_interactive_through_pam_answers_the_password_prompt() {
    let bastion = Bastion::with(|_| SshdOptions {
        pam: Some(Pam::System),
        extra_config: only("keyboard-interactive"),
        ..SshdOptions::default()
    });
    let mut tunnel = bastion.connect().env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD).spawn();
    let port = tunnel.wait_ready();
    echo_roundtrip(local(port), b"keyboard-interactive via PAM");
    assert_logged(
        &tunnel,
        &bastion.sshd,
        &[&format!("Accepted keyboard-interactive/pam for {TEST_USER}")],
    );
}

/// Two-factor bastions ask for the password and then a one-time code (here PAM's Google Authenticator
/// module, after pam_unix, in a PAM service of the lab's own). sqltun answers the password prompt from
/// SQLTUN_SSH_PASSWORD, but nobody can answer "Verification code:" without a terminal: it must fail at
/// once with exit 5 quoting the prompt, not wait (ConnectTimeout is set beyond the test's exit bound so
/// that waiting for it would fail the test) and not send the password as the code.
#[test]
fn keyboard_interactive_code_prompt_without_terminal_fails_quoting_it() {
    assert!(
        google_authenticator_installed(),
        "pam_google_authenticator.so is not installed: run scripts/install-test-deps"
    );
    let bastion = Bastion::with(|lab| {
        let secret = google_authenticator_secret(lab);
        SshdOptions {
            pam: Some(Pam::Custom(format!(
                "auth required pam_unix.so\n\
                 auth required pam_google_authenticator.so secret={} user=root\n\
                 account required pam_unix.so\n\
                 session required pam_permit.so\n",
                secret.display()
            ))),
            extra_config: only("keyboard-interactive"),
            ..SshdOptions::default()
        }
    });
    let (code, stderr) = bastion
        .connect()
        .args(["-o", "ConnectTimeout=120"])
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    let line = assert_failed(code, &stderr, 5, &bastion.sshd.destination());
    assert!(
        line.contains("the server asks \"Verification code:\""),
        "the error line does not quote the prompt: {line}"
    );
    assert!(
        line.to_lowercase().contains("terminal"),
        "the error line does not say a terminal is needed: {line}"
    );
}

/// `AuthenticationMethods publickey,keyboard-interactive` (key plus PAM password) is a common hardened
/// setup: the key is accepted with partial success, then keyboard-interactive must follow in the same
/// attempt, answered with SQLTUN_SSH_PASSWORD; sshd logs both steps.
#[test]
fn publickey_then_keyboard_interactive() {
    let bastion = Bastion::with(|_| SshdOptions {
        pam: Some(Pam::System),
        extra_config: only("publickey,keyboard-interactive"),
        ..SshdOptions::default()
    });
    let key = bastion.lab.authorized_key(KeyKind::Ed25519);
    let mut tunnel = bastion
        .connect()
        .identity(&key)
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn();
    let port = tunnel.wait_ready();
    echo_roundtrip(local(port), b"key, then keyboard-interactive");
    assert_logged(
        &tunnel,
        &bastion.sshd,
        &[&format!("Partial publickey for {TEST_USER}"), &key.fingerprint()],
    );
    assert_logged(
        &tunnel,
        &bastion.sshd,
        &[&format!("Accepted keyboard-interactive/pam for {TEST_USER}")],
    );
}

/// A bastion that trusts a user CA and has an empty authorized_keys, so only a certificate gets in.
struct CertBastion {
    bastion: Bastion,
    ca: KeyPair,
    key: KeyPair,
}

impl CertBastion {
    fn start() -> CertBastion {
        let mut ca = None;
        let bastion = Bastion::with(|lab| {
            let authority = lab.generate_key(KeyKind::Ed25519);
            let options = SshdOptions {
                authorized_keys: Some(lab.authorized_keys_file(&[])),
                extra_config: vec![
                    format!("TrustedUserCAKeys {}", authority.public.display()),
                    "AuthenticationMethods publickey".into(),
                ],
                ..SshdOptions::default()
            };
            ca = Some(authority);
            options
        });
        let key = bastion.lab.generate_key(KeyKind::Ed25519);
        CertBastion {
            ca: ca.expect("the CA was made with the sshd options"),
            key,
            bastion,
        }
    }
}

/// OpenSSH finds `IDENTITY-cert.pub` next to `-i IDENTITY` and offers it before the plain key; with
/// certificate-only bastions (TrustedUserCAKeys, no authorized_keys) that is the only way in. sshd must
/// log the certificate (its key ID) as what it accepted.
#[test]
fn user_certificate_beside_the_identity_is_offered() {
    let cert = CertBastion::start();
    cert.key.certify(&cert.ca, "sqltun-cert-beside", TEST_USER);
    let bastion = &cert.bastion;
    let mut tunnel = bastion.connect().identity(&cert.key).spawn();
    let port = tunnel.wait_ready();
    echo_roundtrip(local(port), b"signed by the CA");
    assert_logged(
        &tunnel,
        &bastion.sshd,
        &[&format!("Accepted publickey for {TEST_USER}"), "ID sqltun-cert-beside"],
    );
}

/// A certificate kept elsewhere is named with `CertificateFile` (here `-o CertificateFile=PATH`); it
/// belongs to the `-i` identity, so sqltun must pair them and offer the certificate.
#[test]
fn user_certificate_named_by_certificate_file_is_offered() {
    let cert = CertBastion::start();
    let issued = cert.key.certify(&cert.ca, "sqltun-cert-elsewhere", TEST_USER);
    let elsewhere = cert.bastion.lab.fresh_path("issued", ".cert");
    fs::rename(&issued, &elsewhere).expect("move the certificate away from the identity");
    let bastion = &cert.bastion;
    let mut tunnel = bastion
        .connect()
        .identity(&cert.key)
        .arg("-o")
        .arg(format!("CertificateFile={}", elsewhere.display()))
        .spawn();
    let port = tunnel.wait_ready();
    echo_roundtrip(local(port), b"certificate from CertificateFile");
    assert_logged(
        &tunnel,
        &bastion.sshd,
        &[
            &format!("Accepted publickey for {TEST_USER}"),
            "ID sqltun-cert-elsewhere",
        ],
    );
}

/// A certificate issued for another principal is refused by sshd; with nothing else to try that is an
/// authentication failure (exit 5) naming the hop. sshd's log must show the principal check rejected
/// it, so the failure is the certificate's, not a certificate that was never offered.
#[test]
fn user_certificate_for_another_principal_fails_auth() {
    let cert = CertBastion::start();
    cert.key
        .certify(&cert.ca, "sqltun-cert-wrong-principal", "somebody-else");
    let bastion = &cert.bastion;
    let tunnel = bastion.connect().identity(&cert.key).spawn();
    let (code, stderr) = tunnel.run_to_exit(EXIT_TIMEOUT);
    assert_failed(code, &stderr, 5, &bastion.sshd.destination());
    let log = sshd_log(&bastion.sshd);
    assert!(
        log.contains("not a listed principal"),
        "sshd did not reject the certificate's principal (was it offered?); stderr:\n{stderr}\nsshd log:\n{log}"
    );
}

/// Starts a two-bastion lab where both sshds accept only passwords.
fn password_only_chain() -> TwoHops {
    TwoHops::with(Lab::with_bastions(2), |_| SshdOptions {
        extra_config: only("password"),
        ..SshdOptions::default()
    })
}

/// SQLTUN_SSH_PASSWORD with no per-hop variable applies to every hop: both password-only bastions of
/// the chain let the user in with it.
#[test]
fn shared_password_serves_every_hop() {
    let chain = password_only_chain();
    let mut tunnel = chain
        .connect_literal()
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn();
    let port = tunnel.wait_ready();
    echo_roundtrip(local(port), b"one password, two hops");
    for sshd in &chain.sshds {
        assert_logged(&tunnel, sshd, &[&format!("Accepted password for {TEST_USER}")]);
    }
}

/// SQLTUN_SSH_PASSWORD_<N> overrides SQLTUN_SSH_PASSWORD for hop N: with a wrong shared password and the
/// right one for each hop, both hops get in.
#[test]
fn per_hop_passwords_override_the_shared_one() {
    let chain = password_only_chain();
    let mut tunnel = chain
        .connect_literal()
        .env("SQLTUN_SSH_PASSWORD", "not the password")
        .env("SQLTUN_SSH_PASSWORD_1", TEST_PASSWORD)
        .env("SQLTUN_SSH_PASSWORD_2", TEST_PASSWORD)
        .spawn();
    let port = tunnel.wait_ready();
    echo_roundtrip(local(port), b"a password per hop");
}

/// The override is for that hop only: a wrong SQLTUN_SSH_PASSWORD_2 next to the right shared password
/// fails hop 2 (exit 5, the error naming hop 2/2), while hop 1 got in with the shared password.
#[test]
fn wrong_per_hop_password_fails_only_that_hop() {
    let chain = password_only_chain();
    let (code, stderr) = chain
        .connect_literal()
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .env("SQLTUN_SSH_PASSWORD_2", "not the password")
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_hop_failed(code, &stderr, 5, "hop 2/2", &chain.sshds[1].destination(), None);
    let accepted = format!("Accepted password for {TEST_USER}");
    assert!(
        sshd_log(&chain.sshds[0]).contains(&accepted),
        "hop 1 did not get in with the shared password; stderr:\n{stderr}\n{}",
        chain.lab.diagnostics()
    );
    assert!(
        !sshd_log(&chain.sshds[1]).contains(&accepted),
        "hop 2 accepted a password although SQLTUN_SSH_PASSWORD_2 was wrong; stderr:\n{stderr}"
    );
}

/// Two bastions that each accept only their own encrypted key (different passphrases), with the keys
/// given per Host block in an ssh_config (`b1`, and `b2` jumping through it).
struct PassphraseChain {
    chain: TwoHops,
    keys: [KeyPair; 2],
    config: PathBuf,
}

const PASSPHRASES: [&str; 2] = [
    "passphrase of the first hop's key",
    "passphrase of the second hop's key",
];

impl PassphraseChain {
    fn start() -> PassphraseChain {
        let lab = Lab::with_bastions(2);
        let keys = [
            lab.generate_encrypted_key(KeyKind::Ed25519, PASSPHRASES[0]),
            lab.generate_encrypted_key(KeyKind::Ed25519, PASSPHRASES[1]),
        ];
        let authorized = [
            lab.authorized_keys_file(&[&keys[0]]),
            lab.authorized_keys_file(&[&keys[1]]),
        ];
        let chain = TwoHops::with(lab, |hop| SshdOptions {
            authorized_keys: Some(authorized[hop].clone()),
            extra_config: only("publickey"),
            ..SshdOptions::default()
        });
        let config = write_config(
            &chain.lab,
            &format!(
                "Host b1\n    HostName {}\n    IdentityFile {}\n\n\
                 Host b2\n    HostName {}\n    ProxyJump b1\n    IdentityFile {}\n\n\
                 Host *\n    User {TEST_USER}\n    IdentitiesOnly yes\n    UserKnownHostsFile {}\n    GlobalKnownHostsFile /dev/null\n",
                chain.sshds[0].addr,
                keys[0].private.display(),
                chain.sshds[1].addr,
                keys[1].private.display(),
                chain.known_hosts.display()
            ),
        );
        PassphraseChain { chain, keys, config }
    }

    /// `sqltun connect -F CONFIG --ssh b2 --db ECHO`.
    fn connect(&self) -> SqltunCommand {
        self.chain
            .lab
            .connect()
            .ssh_config(&self.config)
            .args(["--ssh", "b2"])
            .db(self.chain.targets.echo)
    }
}

/// Each hop's key is unlocked with that hop's passphrase (SQLTUN_SSH_PASSPHRASE_1 and _2): two different
/// encrypted keys, neither of which one shared passphrase could open.
#[test]
fn per_hop_passphrases_unlock_each_hops_key() {
    let chain = PassphraseChain::start();
    let mut tunnel = chain
        .connect()
        .env("SQLTUN_SSH_PASSPHRASE_1", PASSPHRASES[0])
        .env("SQLTUN_SSH_PASSPHRASE_2", PASSPHRASES[1])
        .spawn();
    let port = tunnel.wait_ready();
    echo_roundtrip(local(port), b"two keys, two passphrases");
    for (sshd, key) in chain.chain.sshds.iter().zip(&chain.keys) {
        assert_logged(
            &tunnel,
            sshd,
            &[&format!("Accepted publickey for {TEST_USER}"), &key.fingerprint()],
        );
    }
}

/// A wrong SQLTUN_SSH_PASSPHRASE_2 is reported as such (exit 5, hop 2, "wrong passphrase"), even though
/// the shared SQLTUN_SSH_PASSPHRASE would have opened hop 2's key: the per-hop value wins, and hop 1's
/// own passphrase got hop 1 in first.
#[test]
fn wrong_per_hop_passphrase_fails_that_hop() {
    let chain = PassphraseChain::start();
    let (code, stderr) = chain
        .connect()
        .env("SQLTUN_SSH_PASSPHRASE", PASSPHRASES[1])
        .env("SQLTUN_SSH_PASSPHRASE_1", PASSPHRASES[0])
        .env("SQLTUN_SSH_PASSPHRASE_2", "not the passphrase")
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    let line = assert_hop_failed(
        code,
        &stderr,
        5,
        "hop 2/2",
        &chain.chain.sshds[1].destination(),
        Some("b2"),
    );
    assert!(
        line.contains("wrong passphrase"),
        "the error line does not say the passphrase is wrong: {line}"
    );
    assert!(
        sshd_log(&chain.chain.sshds[0]).contains(&format!("Accepted publickey for {TEST_USER}")),
        "hop 1 did not get in with its own key; stderr:\n{stderr}\n{}",
        chain.chain.lab.diagnostics()
    );
}

/// PreferredAuthentications reorders the methods as in OpenSSH: with `password` only, a valid key and a
/// valid password on a bastion that takes either, the password is what sshd accepts, and the key is
/// never even offered.
#[test]
fn preferred_authentications_password_is_honoured() {
    let bastion = Bastion::with(|_| SshdOptions::default());
    let key = bastion.lab.authorized_key(KeyKind::Ed25519);
    let mut tunnel = bastion
        .connect()
        .identity(&key)
        .args(["-o", "PreferredAuthentications=password"])
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn();
    let port = tunnel.wait_ready();
    echo_roundtrip(local(port), b"password first");
    assert_logged(&tunnel, &bastion.sshd, &[&format!("Accepted password for {TEST_USER}")]);
    if sshd_log(&bastion.sshd).contains("method publickey") {
        tunnel.fail("sqltun offered a key although PreferredAuthentications=password");
    }
}

/// A private key readable by its group is ignored, as OpenSSH does, with a notice giving the `chmod 600`
/// that fixes it; authentication then goes on to the password. The key is authorized, so using it would
/// have let sqltun in by publickey: sshd must log the password instead.
#[test]
fn group_readable_key_is_ignored_with_the_fix_and_password_is_used() {
    let bastion = Bastion::with(|_| SshdOptions::default());
    let key = bastion.lab.authorized_key(KeyKind::Ed25519);
    set_mode(&key.private, 0o640);
    let mut tunnel = bastion
        .connect()
        .identity(&key)
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn();
    let port = tunnel.wait_ready();
    echo_roundtrip(local(port), b"the password after the ignored key");
    assert_logged(&tunnel, &bastion.sshd, &[&format!("Accepted password for {TEST_USER}")]);
    if sshd_log(&bastion.sshd).contains(&format!("Accepted publickey for {TEST_USER}")) {
        tunnel.fail("sqltun used a group-readable key");
    }
    let stderr = tunnel.stderr();
    for needle in [key.private.display().to_string(), "chmod 600".into(), "ignored".into()] {
        if !stderr.contains(&needle) {
            tunnel.fail(&format!("stderr does not say the key was ignored: no {needle:?}"));
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}
