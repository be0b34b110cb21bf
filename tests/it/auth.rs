//! Authentication beyond a plain key or password, against OpenSSH's sshd with real PAM: keyboard-interactive
//! (through the machine's own /etc/pam.d/sshd, and through a lab PAM service that asks for a one-time code),
//! publickey followed by keyboard-interactive, OpenSSH user certificates, per-hop passwords and passphrases
//! on a two-hop chain, PreferredAuthentications, and identity files with loose permissions.
//!
//! Every test checks the outcome sqltun reports (ready line and traffic, or exit code and error line) and,
//! where it matters which credential did the job, sshd's own log of the method it accepted.

use std::fs;
use std::path::PathBuf;

use crate::support::{
    Bastion, Chain, EXIT_TIMEOUT, KeyKind, KeyPair, Lab, Pam, SqltunCommand, SshdOptions, TEST_PASSWORD, TEST_USER,
    assert_error, assert_hop_failed, assert_logged, only_methods, set_mode, write_file,
};

/// Where Debian (and other multiarch systems) keep PAM modules; the Google Authenticator module must be in
/// one of them (`scripts/install-test-deps` installs it).
const PAM_MODULE_DIRS: [&str; 2] = ["/lib", "/usr/lib"];

/// A bastion with sshd configured by `options(&lab)` (so options can name files made in the lab) and no
/// authorized key.
fn bastion_without_key(options: impl FnOnce(&Lab) -> SshdOptions) -> Bastion {
    Bastion::without_key(Lab::new(), |lab, _| options(lab))
}

/// `sqltun connect -F none -J USER@B1 --ssh USER@B2 --known-hosts … --db ECHO`, no credentials.
fn connect_literal(chain: &Chain) -> SqltunCommand {
    chain.literal("connect").db(chain.targets.echo)
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
    write_file(&path, "JBSWY3DPEHPK3PXPJBSWY3DPEH\n\" TOTP_AUTH\n", 0o600);
    path
}

/// Bastions with `UsePAM yes` where keyboard-interactive is the only method exist (PAM-backed LDAP and
/// the like): the PAM "Password:" prompt must be answered with SQLTUN_SSH_PASSWORD, and sshd must log
/// that keyboard-interactive through PAM is what let the user in.
#[test]
fn keyboard_interactive_through_pam_answers_the_password_prompt() {
    let bastion = bastion_without_key(|_| SshdOptions {
        pam: Some(Pam::System),
        extra_config: only_methods("keyboard-interactive"),
        ..SshdOptions::default()
    });
    let (tunnel, _) = bastion
        .connect_to_echo()
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn_and_echo(b"keyboard-interactive via PAM");
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
    let bastion = bastion_without_key(|lab| {
        let secret = google_authenticator_secret(lab);
        SshdOptions {
            pam: Some(Pam::Custom(format!(
                "auth required pam_unix.so\n\
                 auth required pam_google_authenticator.so secret={} user=root\n\
                 account required pam_unix.so\n\
                 session required pam_permit.so\n",
                secret.display()
            ))),
            extra_config: only_methods("keyboard-interactive"),
            ..SshdOptions::default()
        }
    });
    let (code, stderr) = bastion
        .connect_to_echo()
        .args(["-o", "ConnectTimeout=120"])
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    let line = assert_error(
        code,
        &stderr,
        5,
        &[&bastion.sshd.destination(), "the server asks \"Verification code:\""],
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
    let bastion = bastion_without_key(|_| SshdOptions {
        pam: Some(Pam::System),
        extra_config: only_methods("publickey,keyboard-interactive"),
        ..SshdOptions::default()
    });
    let key = bastion.lab.authorized_key(KeyKind::Ed25519);
    let (tunnel, _) = bastion
        .connect_to_echo()
        .identity(&key)
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn_and_echo(b"key, then keyboard-interactive");
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
        let bastion = bastion_without_key(|lab| {
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
    let (tunnel, _) = bastion
        .connect_to_echo()
        .identity(&cert.key)
        .spawn_and_echo(b"signed by the CA");
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
    let (tunnel, _) = bastion
        .connect_to_echo()
        .identity(&cert.key)
        .arg("-o")
        .arg(format!("CertificateFile={}", elsewhere.display()))
        .spawn_and_echo(b"certificate from CertificateFile");
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
    let tunnel = bastion.connect_to_echo().identity(&cert.key).spawn();
    let (code, stderr) = tunnel.run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 5, &[&bastion.sshd.destination()]);
    let log = bastion.sshd.log_text();
    assert!(
        log.contains("not a listed principal"),
        "sshd did not reject the certificate's principal (was it offered?); stderr:\n{stderr}\nsshd log:\n{log}"
    );
}

/// Starts a two-bastion lab where both sshds accept only passwords.
fn password_only_chain() -> Chain {
    Chain::without_key(Lab::with_bastions(2), |_| SshdOptions {
        extra_config: only_methods("password"),
        ..SshdOptions::default()
    })
}

/// Why: a password is meant for one server. SQLTUN_SSH_PASSWORD (no number) goes to the destination
/// (the last hop, the database's bastion) only, so a jump host, or a server accepted with accept-new,
/// never receives it. With only SQLTUN_SSH_PASSWORD set, the password-only jump host gets nothing: sqltun
/// stops there with an error naming hop 1/2 and SQLTUN_SSH_PASSWORD_1, and sshd on hop 1 saw no password
/// at all. With SQLTUN_SSH_PASSWORD_1 added, both hops get in, hop 2 with the unnumbered password.
#[test]
fn unnumbered_password_goes_to_the_destination_only() {
    let chain = password_only_chain();
    let (code, stderr) = connect_literal(&chain)
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    let line = assert_hop_failed(code, &stderr, 2, "hop 1/2", &chain.sshds[0].destination(), None);
    assert!(line.contains("SQLTUN_SSH_PASSWORD_1"), "{line}");
    let log = chain.sshds[0].log_text();
    assert!(
        !log.contains(&format!("password for {TEST_USER}")) && !log.contains("password for invalid"),
        "hop 1 was sent a password; stderr:\n{stderr}\nsshd log:\n{log}"
    );

    let (tunnel, _) = connect_literal(&chain)
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .env("SQLTUN_SSH_PASSWORD_1", TEST_PASSWORD)
        .spawn_and_echo(b"hop 1 by number, the destination unnumbered");
    for sshd in &chain.sshds {
        assert_logged(&tunnel, sshd, &[&format!("Accepted password for {TEST_USER}")]);
    }
}

/// SQLTUN_SSH_PASSWORD_<N> overrides SQLTUN_SSH_PASSWORD for hop N: with a wrong shared password and the
/// right one for each hop, both hops get in.
#[test]
fn per_hop_passwords_override_the_shared_one() {
    let chain = password_only_chain();
    connect_literal(&chain)
        .env("SQLTUN_SSH_PASSWORD", "not the password")
        .env("SQLTUN_SSH_PASSWORD_1", TEST_PASSWORD)
        .env("SQLTUN_SSH_PASSWORD_2", TEST_PASSWORD)
        .spawn_and_echo(b"a password per hop");
}

/// The override is for that hop only: a wrong SQLTUN_SSH_PASSWORD_2 next to the right unnumbered
/// password fails hop 2, the destination (exit 5, the error naming hop 2/2), while hop 1 got in with
/// its own SQLTUN_SSH_PASSWORD_1.
#[test]
fn wrong_per_hop_password_fails_only_that_hop() {
    let chain = password_only_chain();
    let (code, stderr) = connect_literal(&chain)
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .env("SQLTUN_SSH_PASSWORD_1", TEST_PASSWORD)
        .env("SQLTUN_SSH_PASSWORD_2", "not the password")
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_hop_failed(code, &stderr, 5, "hop 2/2", &chain.sshds[1].destination(), None);
    let accepted = format!("Accepted password for {TEST_USER}");
    assert!(
        chain.sshds[0].log_text().contains(&accepted),
        "hop 1 did not get in with SQLTUN_SSH_PASSWORD_1; stderr:\n{stderr}\n{}",
        chain.lab.diagnostics()
    );
    assert!(
        !chain.sshds[1].log_text().contains(&accepted),
        "hop 2 accepted a password although SQLTUN_SSH_PASSWORD_2 was wrong; stderr:\n{stderr}"
    );
}

/// Two bastions that each accept only their own encrypted key (different passphrases), with the keys
/// given per Host block in an ssh_config (`b1`, and `b2` jumping through it).
struct PassphraseChain {
    chain: Chain,
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
        let chain = Chain::without_key(lab, |hop| SshdOptions {
            authorized_keys: Some(authorized[hop].clone()),
            extra_config: only_methods("publickey"),
            ..SshdOptions::default()
        });
        let config = chain.lab.ssh_config_file(&format!(
                "Host b1\n    HostName {}\n    IdentityFile {}\n\n\
                 Host b2\n    HostName {}\n    ProxyJump b1\n    IdentityFile {}\n\n\
                 Host *\n    User {TEST_USER}\n    IdentitiesOnly yes\n    UserKnownHostsFile {}\n    GlobalKnownHostsFile /dev/null\n",
                chain.sshds[0].addr,
                keys[0].private.display(),
                chain.sshds[1].addr,
                keys[1].private.display(),
            chain.known_hosts.display()
        ));
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
    let (tunnel, _) = chain
        .connect()
        .env("SQLTUN_SSH_PASSPHRASE_1", PASSPHRASES[0])
        .env("SQLTUN_SSH_PASSPHRASE_2", PASSPHRASES[1])
        .spawn_and_echo(b"two keys, two passphrases");
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
        chain.chain.sshds[0]
            .log_text()
            .contains(&format!("Accepted publickey for {TEST_USER}")),
        "hop 1 did not get in with its own key; stderr:\n{stderr}\n{}",
        chain.chain.lab.diagnostics()
    );
}

/// PreferredAuthentications reorders the methods as in OpenSSH: with `password` only, a valid key and a
/// valid password on a bastion that takes either, the password is what sshd accepts, and the key is
/// never even offered.
#[test]
fn preferred_authentications_password_is_honoured() {
    let bastion = Bastion::start();
    let (tunnel, _) = bastion
        .connect_to_echo()
        .identity(bastion.key())
        .args(["-o", "PreferredAuthentications=password"])
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn_and_echo(b"password first");
    assert_logged(&tunnel, &bastion.sshd, &[&format!("Accepted password for {TEST_USER}")]);
    if bastion.sshd.log_text().contains("method publickey") {
        tunnel.fail("sqltun offered a key although PreferredAuthentications=password");
    }
}

/// A private key readable by its group is ignored, as OpenSSH does, with a notice giving the `chmod 600`
/// that fixes it; authentication then goes on to the password. The key is authorized, so using it would
/// have let sqltun in by publickey: sshd must log the password instead.
#[test]
fn group_readable_key_is_ignored_with_the_fix_and_password_is_used() {
    let bastion = Bastion::start();
    let key = bastion.key();
    set_mode(&key.private, 0o640);
    let (tunnel, _) = bastion
        .connect_to_echo()
        .identity(key)
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn_and_echo(b"the password after the ignored key");
    assert_logged(&tunnel, &bastion.sshd, &[&format!("Accepted password for {TEST_USER}")]);
    if bastion
        .sshd
        .log_text()
        .contains(&format!("Accepted publickey for {TEST_USER}"))
    {
        tunnel.fail("sqltun used a group-readable key");
    }
    let stderr = tunnel.stderr();
    for needle in [key.private.display().to_string(), "chmod 600".into(), "ignored".into()] {
        if !stderr.contains(&needle) {
            tunnel.fail(&format!("stderr does not say the key was ignored: no {needle:?}"));
        }
    }
}
