//! Authentication methods and credentials beyond a plain key or password, against OpenSSH's sshd with real
//! PAM and a real ssh-agent: one-time codes (RFC 6238 TOTP) computed by sqltun for PAM's Google
//! Authenticator module, host certificates checked against `@cert-authority` lines, user certificates held
//! in an agent, `IdentityAgent` and `IdentitiesOnly`, every identity-file format of the README's table
//! (made at test time with ssh-keygen, openssl and puttygen), and a two-hop chain where the second hop wants
//! a certificate and a code.
//!
//! The Google Authenticator secret lives in the lab (the module's `secret=` option, read as the test user
//! with `user=`), never in a real home directory. Each lab gets its own secret, so `DISALLOW_REUSE` never
//! sees one test's code in another.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, STANDARD_NO_PAD as BASE64_NO_PAD};
use sha2::{Digest, Sha256};

use crate::support::{
    Bastion, Chain, EXIT_TIMEOUT, KeyKind, KeyPair, Lab, Pam, SqltunCommand, Sshd, SshdOptions, TEST_USER, Targets,
    account_ids, agent_listing, assert_error, assert_logged, error_line, only_methods, run, set_mode, toml_words,
    write_file,
};

// ---------------------------------------------------------------------------------------------------------
// Fixtures of this file
// ---------------------------------------------------------------------------------------------------------

/// Starts the targets and sshd with `options` in `lab` (which the caller may have put files in); no key.
fn start_bastion(lab: Lab, options: SshdOptions) -> Bastion {
    Bastion::without_key(lab, |_, _| options)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `n` random bytes from the kernel.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes
}

/// A fresh TOTP secret, base32 as authenticator apps show it (160 bits, as google-authenticator makes).
fn random_base32_secret() -> String {
    data_encoding::BASE32_NOPAD.encode(&random_bytes(20))
}

/// A Google Authenticator secret file for the test user, in a directory of the user's own in the lab
/// (the module rewrites the file next to itself to record used codes, as the user named by `user=`).
struct GoogleAuthenticator {
    /// The secret, base32: what `SQLTUN_TOTP_SECRET` gets.
    base32: String,
    dir: PathBuf,
    file: PathBuf,
}

impl GoogleAuthenticator {
    /// Chooses the paths and the secret; `install` writes the file once the test user exists.
    fn new(lab: &Lab) -> GoogleAuthenticator {
        let dir = lab.fresh_path("google-authenticator", "");
        let file = dir.join(".google_authenticator");
        GoogleAuthenticator {
            base32: random_base32_secret(),
            dir,
            file,
        }
    }

    /// A PAM service whose only authentication is the code (no pam_unix password first).
    fn pam(&self) -> Pam {
        Pam::Custom(format!(
            "auth required pam_google_authenticator.so secret={} user={TEST_USER}\n\
             account required pam_unix.so\n\
             session required pam_permit.so\n",
            self.file.display()
        ))
    }

    /// Writes the secret file as google-authenticator's setup does: the base32 secret, then its options
    /// (TOTP, a window of three 30 s steps, and no code accepted twice); 0400 and owned by the test user,
    /// in a 0700 directory of the user's. Call after an sshd was started (that creates the account).
    fn install(&self) {
        let (uid, gid) = account_ids(TEST_USER);
        fs::create_dir(&self.dir).unwrap_or_else(|e| panic!("create {}: {e}", self.dir.display()));
        std::os::unix::fs::chown(&self.dir, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", self.dir.display()));
        set_mode(&self.dir, 0o700);
        let text = format!("{}\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n", self.base32);
        fs::write(&self.file, text).unwrap_or_else(|e| panic!("write {}: {e}", self.file.display()));
        std::os::unix::fs::chown(&self.file, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", self.file.display()));
        set_mode(&self.file, 0o400);
    }

    /// The time steps the module has recorded as used (`" DISALLOW_REUSE STEP STEP…`).
    fn used_steps(&self) -> Vec<u64> {
        read(&self.file)
            .lines()
            .find_map(|line| line.strip_prefix("\" DISALLOW_REUSE"))
            .map(|rest| rest.split_whitespace().filter_map(|s| s.parse().ok()).collect())
            .unwrap_or_default()
    }
}

/// A bastion whose PAM service asks only for a Google Authenticator code, with sshd requiring
/// `methods` (`keyboard-interactive`, or `publickey,keyboard-interactive`).
struct TotpBastion {
    bastion: Bastion,
    ga: GoogleAuthenticator,
}

impl TotpBastion {
    fn start(methods: &str) -> TotpBastion {
        let lab = Lab::new();
        let ga = GoogleAuthenticator::new(&lab);
        let bastion = start_bastion(
            lab,
            SshdOptions {
                pam: Some(ga.pam()),
                extra_config: only_methods(methods),
                ..SshdOptions::default()
            },
        );
        ga.install();
        TotpBastion { bastion, ga }
    }
}

const ACCEPTED_CODE: &str = "Accepted keyboard-interactive/pam for";

// ---------------------------------------------------------------------------------------------------------
// One-time codes
// ---------------------------------------------------------------------------------------------------------

/// The most common second factor on bastions is PAM's Google Authenticator module asking
/// "Verification code:". With the base32 secret in SQLTUN_TOTP_SECRET, sqltun must compute the current
/// code itself and get in with nothing else (no pam_unix password in this PAM stack), in CI without a
/// terminal; sshd must log that keyboard-interactive through PAM accepted it.
#[test]
fn totp_alone_is_answered_from_the_environment() {
    let totp = TotpBastion::start("keyboard-interactive");
    let bastion = &totp.bastion;
    let (tunnel, _) = bastion
        .connect_to_echo()
        .env("SQLTUN_TOTP_SECRET", &totp.ga.base32)
        .spawn_and_echo(b"one-time code");
    assert_logged(&tunnel, &bastion.sshd, &[&format!("{ACCEPTED_CODE} {TEST_USER}")]);
}

/// A secret that is not the server's gives codes the module refuses: authentication failure (exit 5)
/// naming the hop, not a hang or another exit class. sshd must log the refused keyboard-interactive
/// attempt, so the failure is the code's and not a code that was never sent.
#[test]
fn totp_with_a_wrong_secret_fails_auth() {
    let totp = TotpBastion::start("keyboard-interactive");
    let bastion = &totp.bastion;
    let (code, stderr) = bastion
        .connect_to_echo()
        .env("SQLTUN_TOTP_SECRET", random_base32_secret())
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 5, &[&bastion.sshd.destination()]);
    let log = bastion.sshd.log_text();
    assert!(
        log.contains(&format!("Failed keyboard-interactive/pam for {TEST_USER}")),
        "sshd logged no refused keyboard-interactive attempt; stderr:\n{stderr}\nsshd log:\n{log}"
    );
    assert!(
        !log.contains(ACCEPTED_CODE),
        "sshd accepted a code made from the wrong secret"
    );
}

/// Without a secret and without a terminal nobody can answer "Verification code:": sqltun must fail at
/// once (ConnectTimeout is set beyond the test's exit bound, so waiting would fail the test) with exit 5,
/// quoting the prompt and naming SQLTUN_TOTP_SECRET, the variable that would have answered it.
#[test]
fn totp_without_a_secret_fails_quoting_the_prompt() {
    let totp = TotpBastion::start("keyboard-interactive");
    let bastion = &totp.bastion;
    let (code, stderr) = bastion
        .connect_to_echo()
        .args(["-o", "ConnectTimeout=120"])
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(
        code,
        &stderr,
        5,
        &[&bastion.sshd.destination(), "Verification code", "SQLTUN_TOTP_SECRET"],
    );
}

/// Hardened bastions want a key and then a code (`AuthenticationMethods publickey,keyboard-interactive`):
/// the key gets a partial success and the code must follow in the same attempt. sshd logs both steps.
#[test]
fn totp_after_publickey() {
    let totp = TotpBastion::start("publickey,keyboard-interactive");
    let bastion = &totp.bastion;
    let key = bastion.lab.authorized_key(KeyKind::Ed25519);
    let (tunnel, _) = bastion
        .connect_to_echo()
        .identity(&key)
        .env("SQLTUN_TOTP_SECRET", &totp.ga.base32)
        .spawn_and_echo(b"key, then code");
    assert_logged(
        &tunnel,
        &bastion.sshd,
        &[&format!("Partial publickey for {TEST_USER}"), &key.fingerprint()],
    );
    assert_logged(&tunnel, &bastion.sshd, &[&format!("{ACCEPTED_CODE} {TEST_USER}")]);
}

/// Authenticator exports and QR codes carry an `otpauth://totp/…` URI rather than the bare secret, and
/// CI systems hand secrets over as files: `--totp-secret-file` with such a URI (SHA1, 6 digits, 30 s:
/// what the Google Authenticator module checks) must get in, with no SQLTUN_TOTP_SECRET set.
#[test]
fn totp_secret_file_with_an_otpauth_uri() {
    let totp = TotpBastion::start("keyboard-interactive");
    let bastion = &totp.bastion;
    let file = bastion.lab.fresh_path("totp", ".uri");
    write_file(
        &file,
        &format!(
            "otpauth://totp/sqltun-lab:{TEST_USER}?secret={}&issuer=sqltun-lab&algorithm=SHA1&digits=6&period=30\n",
            totp.ga.base32
        ),
        0o600,
    );
    let (tunnel, _) = bastion
        .connect_to_echo()
        .arg("--totp-secret-file")
        .arg(&file)
        .spawn_and_echo(b"code from an otpauth URI");
    assert_logged(&tunnel, &bastion.sshd, &[&format!("{ACCEPTED_CODE} {TEST_USER}")]);
}

/// Computes the current code (SHA1, 6 digits, 30 s, as the module checks) from the base32 secret in the
/// file named by its argument, as an authenticator tool would.
const TOTP_SCRIPT: &str = "import base64, hmac, struct, sys, time\n\
key = base64.b32decode(open(sys.argv[1]).read().strip())\n\
mac = hmac.new(key, struct.pack('>Q', int(time.time()) // 30), 'sha1').digest()\n\
at = mac[-1] & 15\n\
print('%06d' % ((struct.unpack('>I', mac[at:at + 4])[0] & 0x7fffffff) % 1000000))\n";

/// `sqltun connect t --tunnels-file FILE` where tunnel `t` has `totp_command = COMMAND` and the
/// bastion's address, known_hosts and echo target come from the flags.
fn connect_with_totp_command(bastion: &Bastion, command: &[&str]) -> SqltunCommand {
    let file = bastion
        .lab
        .tunnels_file(&format!("[tunnels.t]\ntotp_command = {}\n", toml_words(command)));
    bastion.connect_to_echo().arg("t").arg("--tunnels-file").arg(file)
}

/// Why: `totp_command` lets an authenticator tool (`op item get … --otp`, `oathtool`, a hardware token's
/// CLI) answer "Verification code:" without the secret ever reaching sqltun's environment. A command
/// that prints the current code gets in as it is; sshd logs keyboard-interactive through PAM as what
/// accepted it, with no SQLTUN_TOTP_SECRET set.
#[test]
fn totp_command_printing_the_code_answers_the_prompt() {
    let totp = TotpBastion::start("keyboard-interactive");
    let bastion = &totp.bastion;
    let secret = bastion.lab.fresh_path("totp", ".secret");
    write_file(&secret, &format!("{}\n", totp.ga.base32), 0o600);
    let secret = secret.display().to_string();
    let (tunnel, _) = connect_with_totp_command(bastion, &["/usr/bin/python3", "-c", TOTP_SCRIPT, &secret])
        .spawn_and_echo(b"code printed by a command");
    assert_logged(&tunnel, &bastion.sshd, &[&format!("{ACCEPTED_CODE} {TEST_USER}")]);
}

/// A `totp_command` may instead print the TOTP secret (a keychain entry, `pass show`): sqltun computes
/// the code from it as it does from SQLTUN_TOTP_SECRET, and gets in.
#[test]
fn totp_command_printing_the_secret_answers_the_prompt() {
    let totp = TotpBastion::start("keyboard-interactive");
    let bastion = &totp.bastion;
    let secret = bastion.lab.fresh_path("totp", ".secret");
    write_file(&secret, &format!("{}\n", totp.ga.base32), 0o600);
    let (tunnel, _) = connect_with_totp_command(bastion, &["/bin/cat", &secret.display().to_string()])
        .spawn_and_echo(b"code from a secret printed by a command");
    assert_logged(&tunnel, &bastion.sshd, &[&format!("{ACCEPTED_CODE} {TEST_USER}")]);
}

// ---------------------------------------------------------------------------------------------------------
// Host certificates
// ---------------------------------------------------------------------------------------------------------

/// Stands for "the bastion's own address" in `HostCa::start`'s principals.
const OWN_ADDRESS: &str = "{bastion-address}";

/// A bastion whose sshd presents a host certificate (`HostCertificate`) signed by a host CA of the lab,
/// and a client key it accepts. The fixture's own host keys are left out, so the certified key is the
/// only one sshd has.
struct HostCa {
    lab: Lab,
    sshd: Sshd,
    targets: Targets,
    ca: KeyPair,
    host_key: KeyPair,
    client_key: KeyPair,
}

impl HostCa {
    /// `ssh-keygen -s CA -h -n PRINCIPALS -V VALIDITY` on a new ed25519 host key, then sshd with it.
    /// `OWN_ADDRESS` in `principals` stands for the bastion's address (known once the lab exists).
    fn start(principals: &str, validity: &str) -> HostCa {
        HostCa::signed_by(KeyKind::Ed25519, &[], principals, validity)
    }

    /// As `start`, with a CA of `ca_kind` and more `ssh-keygen -s` arguments (`-t ssh-rsa` picks the
    /// CA's signature algorithm).
    fn signed_by(ca_kind: KeyKind, sign_args: &[&str], principals: &str, validity: &str) -> HostCa {
        let lab = Lab::new();
        let principals = principals.replace(OWN_ADDRESS, &lab.bastion_addr().to_string());
        let ca = lab.generate_key(ca_kind);
        let host_key = lab.generate_key(KeyKind::Ed25519);
        run(Command::new("ssh-keygen")
            .arg("-q")
            .arg("-s")
            .arg(&ca.private)
            .args(sign_args)
            .args(["-h", "-I", "sqltun-lab-host", "-n", &principals, "-V", validity])
            .arg(&host_key.public));
        let mut cert = host_key.private.clone().into_os_string();
        cert.push("-cert.pub");
        let targets = lab.start_targets();
        let sshd = lab.start_sshd(SshdOptions {
            host_keys: Vec::new(),
            extra_config: vec![
                format!("HostKey {}", host_key.private.display()),
                format!("HostCertificate {}", PathBuf::from(cert).display()),
            ],
            ..SshdOptions::default()
        });
        let client_key = lab.authorized_key(KeyKind::Ed25519);
        HostCa {
            lab,
            sshd,
            targets,
            ca,
            host_key,
            client_key,
        }
    }

    /// `@cert-authority PATTERN CA-KEY`.
    fn ca_line(&self, pattern: &str) -> String {
        format!("@cert-authority {pattern} {}", self.ca.public_key())
    }

    /// The `@cert-authority` line for the bastion's own address.
    fn own_ca_line(&self) -> String {
        self.ca_line(&self.addr())
    }

    /// Connects with exactly `lines` known (see `connect`) expecting the host to be refused: exit 4, the
    /// error line naming the hop and every one of `needles`; returns the line.
    fn assert_refused(&self, lines: &[String], needles: &[&str]) -> String {
        let (command, _) = self.connect(lines);
        let (code, stderr) = command.spawn().run_to_exit(EXIT_TIMEOUT);
        let destination = self.sshd.destination();
        let expected: Vec<&str> = std::iter::once(destination.as_str())
            .chain(needles.iter().copied())
            .collect();
        assert_error(code, &stderr, 4, &expected)
    }

    /// `sqltun connect` with the client key, `--known-hosts` a file with exactly `lines`, and
    /// `StrictHostKeyChecking=yes`, so that only the certificate can make the host known.
    fn connect(&self, lines: &[String]) -> (SqltunCommand, PathBuf) {
        let known_hosts = self.lab.known_hosts_file(lines);
        let command = self
            .lab
            .connect()
            .ssh(&self.sshd)
            .known_hosts(&known_hosts)
            .args(["-o", "StrictHostKeyChecking=yes"])
            .identity(&self.client_key)
            .db(self.targets.echo);
        (command, known_hosts)
    }

    fn addr(&self) -> String {
        self.sshd.addr.to_string()
    }
}

/// Fleets with a host CA ship known_hosts files with one `@cert-authority` line instead of every host's
/// key. A certificate signed by that CA, naming the bastion's address, valid now, must be accepted under
/// StrictHostKeyChecking=yes with no plain key known, and nothing recorded in known_hosts.
#[test]
fn host_certificate_from_a_listed_ca_is_accepted() {
    let host = HostCa::start(OWN_ADDRESS, "-5m:+1h");
    let (command, known_hosts) = host.connect(&[host.own_ca_line()]);
    let before = read(&known_hosts);
    let (tunnel, _) = command.spawn_and_echo(b"host certificate");
    if read(&known_hosts) != before {
        tunnel.fail("sqltun changed known_hosts although the host was known through its CA");
    }
}

/// An expired host certificate is refused (exit 4) even from a listed CA, and the error says it expired,
/// so that whoever runs the bastion knows to renew it rather than suspect an attack.
#[test]
fn expired_host_certificate_is_refused() {
    let host = HostCa::start(OWN_ADDRESS, "20200101:20200102");
    host.assert_refused(&[host.own_ca_line()], &["expired"]);
}

/// A certificate whose validity starts tomorrow is refused too (exit 4), and the error says it is not
/// valid yet, pointing at the clocks rather than at an attacker.
#[test]
fn not_yet_valid_host_certificate_is_refused() {
    let host = HostCa::start(OWN_ADDRESS, "+1d:+2d");
    host.assert_refused(&[host.own_ca_line()], &["not valid yet"]);
}

/// An `@cert-authority` line vouches only for the hosts its pattern matches: with the CA listed for
/// `*.other.example` alone, this bastion's certificate proves nothing, and with no plain key known and
/// StrictHostKeyChecking=yes the host is refused (exit 4). This is also the control for the accepting
/// tests: the certificate, not something else, is what lets them in.
#[test]
fn host_certificate_from_a_ca_listed_for_other_hosts_is_refused() {
    let host = HostCa::start(OWN_ADDRESS, "-5m:+1h");
    host.assert_refused(&[host.ca_line("*.other.example")], &[]);
}

/// A host certificate for another name (here `wrong-host.example`) must not vouch for this bastion:
/// exit 4, and the error names both the principal in the certificate and the name sqltun expected.
#[test]
fn host_certificate_for_another_principal_is_refused() {
    let host = HostCa::start("wrong-host.example", "-5m:+1h");
    host.assert_refused(
        &[host.own_ca_line()],
        &["wrong-host.example", &format!("'{}'", host.addr())],
    );
}

/// `@revoked` overrides `@cert-authority`: revoking the CA, or the host's own key, must refuse the
/// certificate (exit 4, the error saying it is revoked), as after a CA or host key compromise.
#[test]
fn host_certificate_with_a_revoked_ca_or_key_is_refused() {
    let host = HostCa::start(OWN_ADDRESS, "-5m:+1h");
    for (what, revoked) in [("CA", &host.ca), ("host key", &host.host_key)] {
        let (command, _) = host.connect(&[host.own_ca_line(), format!("@revoked * {}", revoked.public_key())]);
        let (code, stderr) = command.spawn().run_to_exit(EXIT_TIMEOUT);
        assert_eq!(code, 4, "revoked {what}: exit code; stderr:\n{stderr}");
        let line = error_line(&stderr);
        assert!(
            line.contains("revoked"),
            "revoked {what}: the error line does not say it is revoked: {line}"
        );
    }
}

/// Bastions reached by address but certified under a DNS name are matched with HostKeyAlias, as in
/// OpenSSH: the alias is both the known_hosts pattern of the CA and the principal the certificate must
/// name.
#[test]
fn host_certificate_for_the_host_key_alias_is_accepted() {
    let alias = "bastion.sqltun.test";
    let host = HostCa::start(alias, "-5m:+1h");
    let (command, _) = host.connect(&[host.ca_line(alias)]);
    command
        .args(["-o", &format!("HostKeyAlias={alias}")])
        .spawn_and_echo(b"certified under its alias");
}

/// A CA whose key is RSA may still sign with SHA-1 (`ssh-keygen -s CA -t ssh-rsa`), a signature
/// OpenSSH 8.8+ no longer accepts: sqltun refuses such a host certificate by default (exit 4, the error
/// naming SHA-1 and the opt-in) and accepts it with `-o HostKeyAlgorithms=+ssh-rsa`.
#[test]
fn host_certificate_with_an_ssh_rsa_sha1_ca_signature_needs_the_opt_in() {
    let host = HostCa::signed_by(KeyKind::Rsa, &["-t", "ssh-rsa"], OWN_ADDRESS, "-5m:+1h");
    host.assert_refused(
        &[host.own_ca_line()],
        &["ssh-rsa", "SHA-1", "HostKeyAlgorithms=+ssh-rsa"],
    );
    let (command, _) = host.connect(&[host.own_ca_line()]);
    command
        .args(["-o", "HostKeyAlgorithms=+ssh-rsa"])
        .spawn_and_echo(b"sha1 CA signature, opted in");
}

/// The same RSA CA signing with rsa-sha2-512 is accepted without any opt-in: the refusal above is about
/// the signature's hash, not about RSA CAs.
#[test]
fn host_certificate_with_an_rsa_sha2_ca_signature_is_accepted() {
    let host = HostCa::signed_by(KeyKind::Rsa, &["-t", "rsa-sha2-512"], OWN_ADDRESS, "-5m:+1h");
    let (command, _) = host.connect(&[host.own_ca_line()]);
    command.spawn_and_echo(b"sha2 CA signature");
}

/// A host known only through an `@cert-authority` line must present a certificate. If it shows a plain
/// key instead (an impostor without the CA's signature), `StrictHostKeyChecking=accept-new` must not
/// record that key: the host is refused like a changed key (exit 4), the error names the CA line's
/// file:line and says a certificate is expected, and known_hosts is left as it was.
#[test]
fn plain_key_from_a_host_known_only_by_its_ca_is_refused_under_accept_new() {
    let lab = Lab::new();
    let ca = lab.generate_key(KeyKind::Ed25519);
    let bastion = start_bastion(lab, SshdOptions::default());
    let client_key = bastion.lab.authorized_key(KeyKind::Ed25519);
    let ca_line = format!(
        "@cert-authority {} {}",
        bastion.sshd.known_hosts_name(),
        ca.public_key()
    );
    let known_hosts = bastion.lab.known_hosts_file(&[ca_line]);
    let before = read(&known_hosts);
    for policy in ["accept-new", "no"] {
        let (code, stderr) = bastion
            .lab
            .connect()
            .ssh(&bastion.sshd)
            .known_hosts(&known_hosts)
            .args(["-o", &format!("StrictHostKeyChecking={policy}")])
            .identity(&client_key)
            .db(bastion.targets.echo)
            .spawn()
            .run_to_exit(EXIT_TIMEOUT);
        let place = format!("{}:1", known_hosts.display());
        assert_error(code, &stderr, 4, &["@cert-authority", &place, "certificate"]);
        assert_eq!(
            read(&known_hosts),
            before,
            "StrictHostKeyChecking={policy} changed known_hosts"
        );
    }
}

/// An sshd that can sign only with `HostKeyAlgorithms ssh-rsa` (RSA with SHA-1) is refused by default, as
/// OpenSSH 8.8+ does (exit 4, the error naming ssh-rsa and the opt-in), even though its RSA key is pinned
/// in known_hosts; `-o HostKeyAlgorithms=+ssh-rsa` lets the same key in.
#[test]
fn server_limited_to_ssh_rsa_needs_the_opt_in() {
    let lab = Lab::new();
    let targets = lab.start_targets();
    let sshd = lab.start_sshd(SshdOptions {
        host_keys: vec![KeyKind::Rsa],
        extra_config: vec!["HostKeyAlgorithms ssh-rsa".into()],
        ..SshdOptions::default()
    });
    let client_key = lab.authorized_key(KeyKind::Ed25519);
    let pin = format!(
        "{} {}",
        sshd.known_hosts_name(),
        sshd.host_key(KeyKind::Rsa).public_key()
    );
    let known_hosts = lab.known_hosts_file(&[pin]);
    let connect = || {
        lab.connect()
            .ssh(&sshd)
            .known_hosts(&known_hosts)
            .identity(&client_key)
            .db(targets.echo)
    };
    let (code, stderr) = connect().spawn().run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 4, &["ssh-rsa", "SHA-1", "HostKeyAlgorithms=+ssh-rsa"]);
    connect()
        .args(["-o", "HostKeyAlgorithms=+ssh-rsa"])
        .spawn_and_echo(b"ssh-rsa, opted in");
}

// ---------------------------------------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------------------------------------

fn remove(path: &Path) {
    fs::remove_file(path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
}

/// Corporate setups issue short-lived user certificates straight into the agent (`ssh-add` of a key
/// with its `-cert.pub` beside it adds both). With a certificate-only bastion (TrustedUserCAKeys, empty
/// authorized_keys), no `-i` and the key files gone from disk, sqltun must present the agent's
/// certificate; sshd logs the certificate's key ID as what it accepted.
#[test]
fn user_certificate_held_by_the_agent_is_presented() {
    let lab = Lab::new();
    let ca = lab.generate_key(KeyKind::Ed25519);
    let key = lab.generate_key(KeyKind::Ed25519);
    let cert = key.certify(&ca, "sqltun-agent-cert", TEST_USER);
    let socket = lab.start_agent(&[&key]);
    let listing = agent_listing(&socket);
    assert!(
        listing.contains("ED25519-CERT"),
        "ssh-add did not add the certificate beside the key:\n{listing}"
    );
    for file in [&key.private, &key.public, &cert] {
        remove(file);
    }
    let empty = lab.authorized_keys_file(&[]);
    let bastion = start_bastion(
        lab,
        SshdOptions {
            authorized_keys: Some(empty),
            extra_config: vec![
                format!("TrustedUserCAKeys {}", ca.public.display()),
                "AuthenticationMethods publickey".into(),
            ],
            ..SshdOptions::default()
        },
    );
    let (tunnel, _) = bastion
        .connect_to_echo()
        .env("SSH_AUTH_SOCK", &socket)
        .spawn_and_echo(b"certificate from the agent");
    assert_logged(
        &tunnel,
        &bastion.sshd,
        &[&format!("Accepted publickey for {TEST_USER}"), "ID sqltun-agent-cert"],
    );
}

/// A bastion that accepts only `key`, by publickey, and an agent (on a socket in the lab directory, not
/// the usual place) holding `key`, whose private file is then deleted: only the agent can sign.
struct AgentBastion {
    bastion: Bastion,
    socket: PathBuf,
    key: KeyPair,
}

impl AgentBastion {
    fn start() -> AgentBastion {
        let lab = Lab::new();
        let key = lab.generate_key(KeyKind::Ed25519);
        let authorized = lab.authorized_keys_file(&[&key]);
        let socket = lab.start_agent(&[&key]);
        remove(&key.private);
        let bastion = start_bastion(
            lab,
            SshdOptions {
                authorized_keys: Some(authorized),
                extra_config: only_methods("publickey"),
                ..SshdOptions::default()
            },
        );
        AgentBastion { bastion, socket, key }
    }
}

/// Agents of password managers (1Password, Secretive, …) listen on their own socket, named with
/// `IdentityAgent`, while SSH_AUTH_SOCK is unset (sqltun's environment is empty here). sqltun must use
/// that socket whether it comes from `-o IdentityAgent=PATH`, from ssh_config, or from `$VAR`.
#[test]
fn identity_agent_at_a_custom_socket_is_used() {
    let agent = AgentBastion::start();
    let bastion = &agent.bastion;
    let config = bastion
        .lab
        .ssh_config_file(&format!("Host *\n    IdentityAgent {}\n", agent.socket.display()));
    let variants: [(&str, SqltunCommand); 3] = [
        (
            "-o IdentityAgent=PATH",
            bastion
                .connect_to_echo()
                .arg("-o")
                .arg(format!("IdentityAgent={}", agent.socket.display())),
        ),
        (
            "ssh_config IdentityAgent PATH",
            bastion.connect_to_echo().ssh_config(&config),
        ),
        (
            "-o IdentityAgent=$VAR",
            bastion
                .connect_to_echo()
                .args(["-o", "IdentityAgent=$SQLTUN_IT_AGENT"])
                .env("SQLTUN_IT_AGENT", &agent.socket),
        ),
    ];
    let fingerprint = agent.key.fingerprint();
    for (what, command) in variants {
        let accepted_before = accepted_with(&bastion.sshd, &fingerprint);
        let (tunnel, _) = command.spawn_and_echo(what.as_bytes());
        if accepted_with(&bastion.sshd, &fingerprint) != accepted_before + 1 {
            tunnel.fail(&format!("{what}: sshd did not log the agent key as accepted"));
        }
    }
}

/// How many times sshd logged the key with `fingerprint` as accepted.
fn accepted_with(sshd: &Sshd, fingerprint: &str) -> usize {
    sshd.log_text()
        .lines()
        .filter(|line| line.contains(&format!("Accepted publickey for {TEST_USER}")) && line.contains(fingerprint))
        .count()
}

/// `IdentityAgent none` turns the agent off even when SSH_AUTH_SOCK points at one: with the only usable
/// key in the agent, authentication must fail (exit 5). A first run without the option gets in, so the
/// failure is the option's doing.
#[test]
fn identity_agent_none_disables_the_agent() {
    let agent = AgentBastion::start();
    let bastion = &agent.bastion;
    let mut control = bastion.connect_to_echo().env("SSH_AUTH_SOCK", &agent.socket).spawn();
    control.wait_ready();
    drop(control);
    let fingerprint = agent.key.fingerprint();
    let accepted_before = accepted_with(&bastion.sshd, &fingerprint);
    let (code, stderr) = bastion
        .connect_to_echo()
        .env("SSH_AUTH_SOCK", &agent.socket)
        .args(["-o", "IdentityAgent=none"])
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 5, &[&bastion.sshd.destination()]);
    assert_eq!(
        accepted_with(&bastion.sshd, &fingerprint),
        accepted_before,
        "sshd accepted the agent key although IdentityAgent=none; stderr:\n{stderr}"
    );
}

/// An agent with nine keys (the right one added last) and a bastion with `MaxAuthTries 3`, as on many
/// hardened hosts; the right key's private file is gone, only `right.pub` is left to name it.
struct CrowdedAgent {
    bastion: Bastion,
    socket: PathBuf,
    wrong: Vec<KeyPair>,
    right: KeyPair,
}

impl CrowdedAgent {
    fn start() -> CrowdedAgent {
        let lab = Lab::new();
        let wrong: Vec<KeyPair> = (0..8).map(|_| lab.generate_key(KeyKind::Ed25519)).collect();
        let right = lab.generate_key(KeyKind::Ed25519);
        let authorized = lab.authorized_keys_file(&[&right]);
        let mut keys: Vec<&KeyPair> = wrong.iter().collect();
        keys.push(&right);
        let socket = lab.start_agent(&keys);
        remove(&right.private);
        let bastion = start_bastion(
            lab,
            SshdOptions {
                authorized_keys: Some(authorized),
                // The fixture's `MaxAuthTries 10` comes first and would win; a Match block overrides it.
                extra_config: vec![
                    "AuthenticationMethods publickey".into(),
                    "Match all".into(),
                    "    MaxAuthTries 3".into(),
                ],
                ..SshdOptions::default()
            },
        );
        CrowdedAgent {
            bastion,
            socket,
            wrong,
            right,
        }
    }

    /// `sqltun connect -F CONFIG` where CONFIG names `right.pub` as the identity with `IdentitiesOnly VALUE`.
    fn connect(&self, identities_only: &str) -> SqltunCommand {
        let config = self.bastion.lab.ssh_config_file(&format!(
            "Host *\n    IdentityFile {}\n    IdentitiesOnly {identities_only}\n",
            self.right.public.display()
        ));
        self.bastion
            .connect_to_echo()
            .ssh_config(&config)
            .env("SSH_AUTH_SOCK", &self.socket)
    }
}

/// With `IdentitiesOnly yes` and `IdentityFile right.pub`, only the agent key matching that file is
/// offered, so a full agent does not use up the server's MaxAuthTries: sqltun gets in, and sshd never saw
/// any of the eight other keys.
#[test]
fn identities_only_offers_just_the_configured_agent_key() {
    let agent = CrowdedAgent::start();
    let sshd = &agent.bastion.sshd;
    let (tunnel, _) = agent.connect("yes").spawn_and_echo(b"the one key");
    assert_logged(
        &tunnel,
        sshd,
        &[
            &format!("Accepted publickey for {TEST_USER}"),
            &agent.right.fingerprint(),
        ],
    );
    let log = sshd.log_text();
    for (n, key) in agent.wrong.iter().enumerate() {
        if log.contains(&key.fingerprint()) {
            tunnel.fail(&format!("wrong agent key {n} was offered despite IdentitiesOnly yes"));
        }
    }
}

/// Why IdentitiesOnly matters: the same setup with `IdentitiesOnly no` offers the agent's keys in order,
/// and sshd disconnects after three wrong ones, before the right key comes up. That must be reported as
/// an authentication failure (exit 5), and sshd's log must show MaxAuthTries was what ended it.
#[test]
fn without_identities_only_a_crowded_agent_exhausts_max_auth_tries() {
    let agent = CrowdedAgent::start();
    let sshd = &agent.bastion.sshd;
    let (code, stderr) = agent.connect("no").spawn().run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 5, &[&sshd.destination()]);
    sshd.wait_for_log(|log| {
        log.contains("maximum authentication attempts exceeded") || log.contains("Too many authentication failures")
    });
    let log = sshd.log_text();
    assert!(
        log.contains("maximum authentication attempts exceeded") || log.contains("Too many authentication failures"),
        "sshd did not cut the session off for MaxAuthTries; stderr:\n{stderr}\nsshd log:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Identity file formats
// ---------------------------------------------------------------------------------------------------------

/// The passphrase of every encrypted key in the format table.
const PASSPHRASE: &str = "format table passphrase 4b1e";

/// What the README's key-format table promises for one kind of file.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// sqltun authenticates with it (with SQLTUN_SSH_PASSPHRASE if encrypted).
    Loads { encrypted: bool },
    /// Exit 2; the error line names the format (every word of `format`) and gives the fix, which, when
    /// run, gives a key that loads.
    Convert { format: &'static [&'static str], fix: Fix },
    /// Exit 2; the error line names the key type (any of `algorithm`, case-insensitive).
    Refused { algorithm: &'static [&'static str] },
    /// SQLTUN_SSH_PASSPHRASE is not the key's: exit 5, "wrong passphrase", naming the variable.
    WrongPassphrase,
}

/// The conversion a "convert" error must give.
#[derive(Debug, Clone, Copy)]
enum Fix {
    /// `ssh-keygen -p -f FILE` (rewrites an encrypted key in OpenSSH format).
    Rewrite,
    /// `ssh-keygen -i -f FILE > NEW` (imports an SSH.com key).
    Import,
    /// An encrypted SSH.com key: the error must say to remove the passphrase first (ssh-keygen cannot).
    RemovePassphraseFirst,
}

/// One row: a name for reports, how to make the file, and what sqltun must do with it.
struct Format {
    name: &'static str,
    /// Writes the private key at the path; returns its authorized_keys line (`TYPE BASE64`) when sshd can
    /// accept the key at all (not for DSA or Ed448).
    make: fn(&Path) -> Option<String>,
    expect: Expect,
}

const fn loads(name: &'static str, make: fn(&Path) -> Option<String>, encrypted: bool) -> Format {
    Format {
        name,
        make,
        expect: Expect::Loads { encrypted },
    }
}

const fn convert(
    name: &'static str,
    make: fn(&Path) -> Option<String>,
    format: &'static [&'static str],
    fix: Fix,
) -> Format {
    Format {
        name,
        make,
        expect: Expect::Convert { format, fix },
    }
}

const fn refused(name: &'static str, make: fn(&Path) -> Option<String>, algorithm: &'static [&'static str]) -> Format {
    Format {
        name,
        make,
        expect: Expect::Refused { algorithm },
    }
}

const fn wrong_passphrase(name: &'static str, make: fn(&Path) -> Option<String>) -> Format {
    Format {
        name,
        make,
        expect: Expect::WrongPassphrase,
    }
}

/// The README's table, row by row, with each encrypted variant it names.
const FORMATS: &[Format] = &[
    // OpenSSH (ssh-keygen's default)
    loads("OpenSSH ed25519", |p| keygen(p, &["-t", "ed25519"], ""), false),
    loads(
        "OpenSSH ecdsa-384",
        |p| keygen(p, &["-t", "ecdsa", "-b", "384"], ""),
        false,
    ),
    loads(
        "OpenSSH rsa-3072",
        |p| keygen(p, &["-t", "rsa", "-b", "3072"], ""),
        false,
    ),
    loads(
        "OpenSSH encrypted aes256-ctr (default)",
        |p| keygen(p, &["-t", "ed25519"], PASSPHRASE),
        true,
    ),
    loads(
        "OpenSSH encrypted aes128-cbc",
        |p| keygen(p, &["-t", "ed25519", "-Z", "aes128-cbc"], PASSPHRASE),
        true,
    ),
    loads(
        "OpenSSH encrypted aes256-gcm",
        |p| keygen(p, &["-t", "ed25519", "-Z", "aes256-gcm@openssh.com"], PASSPHRASE),
        true,
    ),
    loads(
        "OpenSSH encrypted chacha20-poly1305",
        |p| keygen(p, &["-t", "ecdsa", "-Z", "chacha20-poly1305@openssh.com"], PASSPHRASE),
        true,
    ),
    loads(
        "OpenSSH encrypted 3des-cbc",
        |p| keygen(p, &["-t", "ed25519", "-Z", "3des-cbc"], PASSPHRASE),
        true,
    ),
    // PEM PKCS#1 RSA
    loads(
        "PEM RSA (ssh-keygen -m PEM)",
        |p| keygen(p, &["-t", "rsa", "-b", "2048", "-m", "PEM"], ""),
        false,
    ),
    loads(
        "PEM RSA encrypted AES-128-CBC (ssh-keygen -m PEM)",
        |p| keygen(p, &["-t", "rsa", "-b", "2048", "-m", "PEM"], PASSPHRASE),
        true,
    ),
    loads(
        "PEM RSA encrypted AES-192-CBC (openssl rsa -aes192 -traditional)",
        |p| openssl_rsa_traditional(p, "-aes192"),
        true,
    ),
    loads(
        "PEM RSA encrypted AES-256-CBC (openssl rsa -aes256 -traditional)",
        |p| openssl_rsa_traditional(p, "-aes256"),
        true,
    ),
    loads(
        "PEM RSA encrypted DES-EDE3 (openssl rsa -des3 -traditional)",
        |p| openssl_rsa_traditional(p, "-des3"),
        true,
    ),
    // PEM EC (SEC1)
    loads(
        "PEM EC (openssl ecparam -genkey, with its EC PARAMETERS block)",
        |p| openssl_ecparam(p, "prime256v1", false),
        false,
    ),
    loads(
        "PEM EC (openssl ecparam -genkey -noout, P-384)",
        |p| openssl_ecparam(p, "secp384r1", true),
        false,
    ),
    loads(
        "PEM EC encrypted AES-128-CBC (ssh-keygen -t ecdsa -m PEM)",
        |p| keygen(p, &["-t", "ecdsa", "-m", "PEM"], PASSPHRASE),
        true,
    ),
    loads(
        "PEM EC encrypted AES-192-CBC (openssl ec -aes192)",
        |p| openssl_ec_encrypted(p, "-aes192"),
        true,
    ),
    loads(
        "PEM EC encrypted AES-256-CBC (openssl ec -aes256)",
        |p| openssl_ec_encrypted(p, "-aes256"),
        true,
    ),
    loads(
        "PEM EC encrypted DES-EDE3 (openssl ec -des3)",
        |p| openssl_ec_encrypted(p, "-des3"),
        true,
    ),
    // PKCS#8
    loads(
        "PKCS#8 RSA (ssh-keygen -m PKCS8)",
        |p| keygen(p, &["-t", "rsa", "-b", "2048", "-m", "PKCS8"], ""),
        false,
    ),
    loads(
        "PKCS#8 ECDSA (ssh-keygen -m PKCS8)",
        |p| keygen(p, &["-t", "ecdsa", "-m", "PKCS8"], ""),
        false,
    ),
    loads("PKCS#8 RSA (openssl genpkey)", |p| genpkey(p, Algorithm::Rsa), false),
    loads("PKCS#8 ECDSA (openssl genpkey)", |p| genpkey(p, Algorithm::P256), false),
    loads(
        "PKCS#8 Ed25519 (openssl genpkey)",
        |p| genpkey(p, Algorithm::Ed25519),
        false,
    ),
    loads(
        "PKCS#8 PBES2 PBKDF2-SHA256 AES-128-CBC (ssh-keygen -m PKCS8 -N)",
        |p| keygen(p, &["-t", "rsa", "-b", "2048", "-m", "PKCS8"], PASSPHRASE),
        true,
    ),
    loads(
        "PKCS#8 PBES2 PBKDF2-SHA256 AES-256-CBC ECDSA (openssl pkcs8 -topk8 -v2 aes-256-cbc)",
        |p| topk8(p, Algorithm::P256, &["-v2", "aes-256-cbc"]),
        true,
    ),
    loads(
        "PKCS#8 PBES2 PBKDF2-SHA256 AES-256-CBC Ed25519 (openssl pkcs8 -topk8 -v2 aes-256-cbc)",
        |p| topk8(p, Algorithm::Ed25519, &["-v2", "aes-256-cbc"]),
        true,
    ),
    loads(
        "PKCS#8 PBES2 scrypt AES-256-CBC (openssl pkcs8 -topk8 -scrypt)",
        |p| topk8(p, Algorithm::P256, &["-scrypt"]),
        true,
    ),
    loads(
        "PKCS#8 PBES2 PBKDF2-SHA1 (openssl pkcs8 -topk8 -v2prf hmacWithSHA1)",
        |p| topk8(p, Algorithm::Rsa, &["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA1"]),
        true,
    ),
    loads(
        "PKCS#8 PBES2 3DES (openssl pkcs8 -topk8 -v2 des3)",
        |p| topk8(p, Algorithm::Rsa, &["-v2", "des3"]),
        true,
    ),
    loads(
        "PKCS#8 PBES2 3DES ECDSA (openssl pkcs8 -topk8 -v2 des3)",
        |p| topk8(p, Algorithm::P256, &["-v2", "des3"]),
        true,
    ),
    convert(
        "PKCS#8 PBES1 (openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES)",
        |p| topk8(p, Algorithm::Rsa, &["-v1", "PBE-SHA1-3DES"]),
        &["PKCS#8"],
        Fix::Rewrite,
    ),
    // PuTTY
    loads("PuTTY v3 (puttygen)", |p| puttygen(p, "3", false), false),
    loads(
        "PuTTY v3 encrypted, Argon2id (puttygen)",
        |p| puttygen(p, "3", true),
        true,
    ),
    loads("PuTTY v2 (puttygen)", |p| puttygen(p, "2", false), false),
    loads("PuTTY v2 encrypted (puttygen)", |p| puttygen(p, "2", true), true),
    // SSH.com / Tectia
    convert(
        "SSH.com (puttygen -O private-sshcom)",
        |p| sshcom(p, false),
        &["SSH", "com"],
        Fix::Import,
    ),
    convert(
        "SSH.com encrypted (puttygen -O private-sshcom)",
        |p| sshcom(p, true),
        &["SSH", "com"],
        Fix::RemovePassphraseFirst,
    ),
    // Refused outright
    refused("DSA, OpenSSH format (ssh-keygen -t dsa)", dsa_openssh, &["dsa", "dss"]),
    refused("DSA, PEM (ssh-keygen -t dsa -m PEM)", dsa_pem, &["dsa", "dss"]),
    refused(
        "Ed448, PKCS#8 (openssl genpkey)",
        |p| genpkey(p, Algorithm::Ed448),
        &["ed448"],
    ),
    // A wrong passphrase, per encryption family
    wrong_passphrase("OpenSSH aes256-ctr", |p| keygen(p, &["-t", "ed25519"], PASSPHRASE)),
    wrong_passphrase("PEM RSA AES-128-CBC", |p| {
        keygen(p, &["-t", "rsa", "-b", "2048", "-m", "PEM"], PASSPHRASE)
    }),
    wrong_passphrase("PKCS#8 PBES2", |p| topk8(p, Algorithm::P256, &["-v2", "aes-256-cbc"])),
    wrong_passphrase("OpenSSH 3des-cbc", |p| {
        keygen(p, &["-t", "ed25519", "-Z", "3des-cbc"], PASSPHRASE)
    }),
    wrong_passphrase("PEM EC AES-256-CBC", |p| openssl_ec_encrypted(p, "-aes256")),
    wrong_passphrase("PEM RSA DES-EDE3", |p| openssl_rsa_traditional(p, "-des3")),
    wrong_passphrase("PKCS#8 PBES2 3DES", |p| topk8(p, Algorithm::Rsa, &["-v2", "des3"])),
    wrong_passphrase("PuTTY v3", |p| puttygen(p, "3", true)),
];

/// The `TYPE BASE64` of a `.pub` file's line.
fn public_line(pub_file: &Path) -> String {
    read(pub_file).split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// `dir/name` -> `dir/name.SUFFIX`, for a key's helper files.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// `ssh-keygen -q ARGS -N PASSPHRASE -f PATH`; returns the public line ssh-keygen wrote beside it.
fn keygen(path: &Path, args: &[&str], passphrase: &str) -> Option<String> {
    run(Command::new("ssh-keygen")
        .arg("-q")
        .args(args)
        .args(["-C", "sqltun-format-table", "-N", passphrase, "-f"])
        .arg(path));
    Some(public_line(&beside(path, "pub")))
}

/// The public line of an unencrypted key file OpenSSH's ssh-keygen can read (`ssh-keygen -y`).
fn keygen_public(path: &Path) -> String {
    let output = run(Command::new("ssh-keygen").arg("-y").arg("-f").arg(path));
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, Copy)]
enum Algorithm {
    Rsa,
    P256,
    Ed25519,
    Ed448,
}

/// `openssl genpkey` (PKCS#8, unencrypted) at `path`; returns the public line (none for Ed448).
fn genpkey(path: &Path, algorithm: Algorithm) -> Option<String> {
    let args: &[&str] = match algorithm {
        Algorithm::Rsa => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        Algorithm::P256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        Algorithm::Ed25519 => &["-algorithm", "ed25519"],
        Algorithm::Ed448 => &["-algorithm", "ed448"],
    };
    run(Command::new("openssl").arg("genpkey").args(args).arg("-out").arg(path));
    set_mode(path, 0o600);
    match algorithm {
        // OpenSSH 9.2 cannot read PKCS#8 Ed25519 keys: build the line from the raw public key.
        Algorithm::Ed25519 => Some(ed25519_public_line(path)),
        Algorithm::Ed448 => None,
        Algorithm::Rsa | Algorithm::P256 => Some(keygen_public(path)),
    }
}

/// `ssh-ed25519 BASE64` for an unencrypted PKCS#8 Ed25519 key: the last 32 bytes of its DER
/// SubjectPublicKeyInfo are the key, wrapped in SSH's wire encoding (string type, string key).
fn ed25519_public_line(path: &Path) -> String {
    let output = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(path));
    let der = output.stdout;
    assert!(der.len() >= 32, "openssl pkey -pubout gave {} bytes", der.len());
    let raw = &der[der.len() - 32..];
    let mut blob = Vec::new();
    for field in [b"ssh-ed25519".as_slice(), raw] {
        blob.extend_from_slice(&u32::try_from(field.len()).expect("short field").to_be_bytes());
        blob.extend_from_slice(field);
    }
    format!("ssh-ed25519 {}", BASE64.encode(&blob))
}

/// An unencrypted key made by `genpkey` beside `path`, then `openssl pkcs8 -topk8 ARGS` into `path`.
fn topk8(path: &Path, algorithm: Algorithm, args: &[&str]) -> Option<String> {
    let source = beside(path, "source");
    let public = genpkey(&source, algorithm);
    run(Command::new("openssl")
        .args(["pkcs8", "-topk8"])
        .args(args)
        .arg("-in")
        .arg(&source)
        .arg("-out")
        .arg(path)
        .args(["-passout", &format!("pass:{PASSPHRASE}")]));
    set_mode(path, 0o600);
    public
}

/// A PEM RSA key from ssh-keygen, re-encrypted by `openssl rsa CIPHER -traditional` (legacy PEM
/// encryption, which OpenSSL 3 writes only when asked).
fn openssl_rsa_traditional(path: &Path, cipher: &str) -> Option<String> {
    let source = beside(path, "source");
    let public = keygen(&source, &["-t", "rsa", "-b", "2048", "-m", "PEM"], "");
    run(Command::new("openssl")
        .arg("rsa")
        .arg("-in")
        .arg(&source)
        .args([cipher, "-traditional", "-passout", &format!("pass:{PASSPHRASE}")])
        .arg("-out")
        .arg(path));
    set_mode(path, 0o600);
    public
}

/// `openssl ecparam -genkey -name CURVE [-noout]`: SEC1 `EC PRIVATE KEY`, preceded by an
/// `EC PARAMETERS` block unless `-noout`.
fn openssl_ecparam(path: &Path, curve: &str, noout: bool) -> Option<String> {
    let mut command = Command::new("openssl");
    command.args(["ecparam", "-genkey", "-name", curve]);
    if noout {
        command.arg("-noout");
    }
    run(command.arg("-out").arg(path));
    set_mode(path, 0o600);
    Some(keygen_public(path))
}

/// A SEC1 EC key encrypted with `openssl ec CIPHER` (legacy PEM encryption).
fn openssl_ec_encrypted(path: &Path, cipher: &str) -> Option<String> {
    let source = beside(path, "source");
    let public = openssl_ecparam(&source, "prime256v1", true);
    run(Command::new("openssl")
        .arg("ec")
        .arg("-in")
        .arg(&source)
        .args([cipher, "-passout", &format!("pass:{PASSPHRASE}")])
        .arg("-out")
        .arg(path));
    set_mode(path, 0o600);
    public
}

/// A file holding PASSPHRASE (or nothing) for puttygen's `--new-passphrase`/`--old-passphrase`.
fn passphrase_file(path: &Path, encrypted: bool) -> PathBuf {
    let file = beside(path, "passphrase");
    write_file(&file, if encrypted { PASSPHRASE } else { "" }, 0o600);
    file
}

/// The OpenSSH public line of a key puttygen can read.
fn puttygen_public(path: &Path, passphrase: &Path) -> String {
    let out = beside(path, "pub");
    run(Command::new("puttygen")
        .arg(path)
        .arg("--old-passphrase")
        .arg(passphrase)
        .args(["-O", "public-openssh", "-o"])
        .arg(&out));
    public_line(&out)
}

/// `puttygen -t ed25519 -O private --ppk-param version=V` (encrypted with PASSPHRASE or not).
fn puttygen(path: &Path, version: &str, encrypted: bool) -> Option<String> {
    let passphrase = passphrase_file(path, encrypted);
    run(Command::new("puttygen")
        .args(["-q", "-t", "ed25519", "-C", "sqltun-format-table", "-O", "private"])
        .args(["--ppk-param", &format!("version={version}")])
        .arg("--new-passphrase")
        .arg(&passphrase)
        .arg("-o")
        .arg(path));
    set_mode(path, 0o600);
    Some(puttygen_public(path, &passphrase))
}

/// `puttygen -t rsa -O private-sshcom`: the SSH.com/Tectia format (RSA; it has no Ed25519).
fn sshcom(path: &Path, encrypted: bool) -> Option<String> {
    let passphrase = passphrase_file(path, encrypted);
    run(Command::new("puttygen")
        .args([
            "-q",
            "-t",
            "rsa",
            "-b",
            "2048",
            "-C",
            "sqltun-format-table",
            "-O",
            "private-sshcom",
        ])
        .arg("--new-passphrase")
        .arg(&passphrase)
        .arg("-o")
        .arg(path));
    set_mode(path, 0o600);
    Some(puttygen_public(path, &passphrase))
}

/// `ssh-keygen -t dsa` (OpenSSH format). sshd does not accept DSA keys: nothing to authorize.
fn dsa_openssh(path: &Path) -> Option<String> {
    keygen(path, &["-t", "dsa"], "");
    None
}

/// `ssh-keygen -t dsa -m PEM` (`DSA PRIVATE KEY`).
fn dsa_pem(path: &Path) -> Option<String> {
    keygen(path, &["-t", "dsa", "-m", "PEM"], "");
    None
}

/// OpenSSH's `SHA256:…` fingerprint of a `TYPE BASE64` line.
fn fingerprint_of(public_line: &str) -> String {
    let blob = public_line
        .split_whitespace()
        .nth(1)
        .and_then(|b64| BASE64.decode(b64).ok())
        .unwrap_or_else(|| panic!("not a public key line: {public_line}"));
    format!("SHA256:{}", BASE64_NO_PAD.encode(Sha256::digest(&blob)))
}

/// Whether `word` is one of the words of `text` (split at anything but letters, digits and `#`),
/// ignoring case.
fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
        .any(|w| w.eq_ignore_ascii_case(word))
}

/// The message of a panic caught from a case's thread.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "(a panic without a message)".into())
}

/// Runs `check` for every item, a few at a time, each in its own thread; returns each outcome (the
/// panic message of a failed one), in order.
fn each_in_parallel<T: Sync, R: Send>(items: &[T], check: impl Fn(&T) -> R + Sync) -> Vec<Result<R, String>> {
    const AT_ONCE: usize = 6;
    let check = &check;
    items
        .chunks(AT_ONCE)
        .flat_map(|chunk| {
            thread::scope(|scope| {
                let handles: Vec<_> = chunk.iter().map(|item| scope.spawn(move || check(item))).collect();
                handles
                    .into_iter()
                    .map(|handle| handle.join().map_err(|payload| panic_message(&*payload)))
                    .collect::<Vec<_>>()
            })
        })
        .collect()
}

/// A format-table key made in the lab: the file and what sshd knows it by.
struct MadeKey {
    path: PathBuf,
    public: Option<String>,
}

/// The format table, one sshd for all of it.
struct FormatLab {
    bastion: Bastion,
}

impl FormatLab {
    /// `sqltun connect -i PATH` with the passphrase (if any) in SQLTUN_SSH_PASSPHRASE.
    fn connect(&self, path: &Path, passphrase: Option<&str>) -> SqltunCommand {
        let mut command = self.bastion.connect().arg("-i").arg(path).db(self.bastion.targets.echo);
        if let Some(passphrase) = passphrase {
            command = command.env("SQLTUN_SSH_PASSPHRASE", passphrase);
        }
        command
    }

    /// Connects with the key at `path` and checks sshd accepted exactly that key (`public`).
    fn assert_loads(&self, what: &str, path: &Path, public: Option<&str>, passphrase: Option<&str>) {
        let public = public.unwrap_or_else(|| panic!("{what}: a key expected to load must be authorized"));
        let (tunnel, _) = self.connect(path, passphrase).spawn_and_echo(what.as_bytes());
        let fingerprint = fingerprint_of(public);
        if accepted_with(&self.bastion.sshd, &fingerprint) == 0 {
            tunnel.fail(&format!("{what}: sshd did not log {fingerprint} as accepted"));
        }
    }

    /// Runs `sqltun` on `path` expecting a failure; returns (exit code, error line).
    fn failure(&self, path: &Path, passphrase: Option<&str>) -> (i32, String, String) {
        let (code, stderr) = self.connect(path, passphrase).spawn().run_to_exit(EXIT_TIMEOUT);
        let line = stderr
            .lines()
            .rev()
            .find(|line| line.starts_with("sqltun: "))
            .unwrap_or("(no `sqltun: ` error line)")
            .to_string();
        (code, line, stderr)
    }

    fn check(&self, format: &Format, key: &MadeKey) {
        let what = format.name;
        let path = key.path.as_path();
        match format.expect {
            Expect::Loads { encrypted } => {
                self.assert_loads(what, path, key.public.as_deref(), encrypted.then_some(PASSPHRASE));
            }
            Expect::Convert { format: words, fix } => {
                let (code, line, stderr) = self.failure(path, Some(PASSPHRASE));
                let command = match fix {
                    Fix::Rewrite => format!("ssh-keygen -p -f {}", path.display()),
                    Fix::Import | Fix::RemovePassphraseFirst => format!("ssh-keygen -i -f {}", path.display()),
                };
                let mut problems = Vec::new();
                if code != 2 {
                    problems.push(format!("exit code {code}, expected 2"));
                }
                for word in words {
                    if !has_word(&line, word) {
                        problems.push(format!("the error line does not name the format ({word:?} missing)"));
                    }
                }
                if !line.contains(&command) {
                    problems.push(format!("the error line does not contain `{command}`"));
                }
                if matches!(fix, Fix::RemovePassphraseFirst) && !line.to_lowercase().contains("remove the passphrase") {
                    problems.push("the error line does not say to remove the passphrase first".into());
                }
                assert!(
                    problems.is_empty(),
                    "{what}: {}\nerror line: {line}\nstderr:\n{stderr}",
                    problems.join("; ")
                );
                // The command the error gives must really produce a key sqltun reads.
                match fix {
                    Fix::Rewrite => {
                        run(Command::new("ssh-keygen")
                            .args(["-p", "-P", PASSPHRASE, "-N", PASSPHRASE, "-f"])
                            .arg(path));
                        self.assert_loads(
                            &format!("{what}, after `{command}`"),
                            path,
                            key.public.as_deref(),
                            Some(PASSPHRASE),
                        );
                    }
                    Fix::Import => {
                        let output = run(Command::new("ssh-keygen").args(["-i", "-f"]).arg(path));
                        let converted = beside(path, "converted");
                        fs::write(&converted, &output.stdout)
                            .unwrap_or_else(|e| panic!("write {}: {e}", converted.display()));
                        set_mode(&converted, 0o600);
                        self.assert_loads(
                            &format!("{what}, after `{command} > NEW`"),
                            &converted,
                            key.public.as_deref(),
                            None,
                        );
                    }
                    Fix::RemovePassphraseFirst => {}
                }
            }
            Expect::Refused { algorithm } => {
                let (code, line, stderr) = self.failure(path, None);
                let lower = line.to_lowercase();
                assert!(
                    code == 2 && algorithm.iter().any(|a| lower.contains(a)),
                    "{what}: expected exit 2 naming the key type (one of {algorithm:?}), got exit {code}\n\
                     error line: {line}\nstderr:\n{stderr}"
                );
            }
            Expect::WrongPassphrase => {
                let (code, line, stderr) = self.failure(path, Some("not the passphrase"));
                assert!(
                    code == 5 && line.contains("wrong passphrase") && line.contains("SQLTUN_SSH_PASSPHRASE"),
                    "{what}: expected exit 5 with \"wrong passphrase\" naming SQLTUN_SSH_PASSPHRASE, got exit \
                     {code}\nerror line: {line}\nstderr:\n{stderr}"
                );
            }
        }
    }
}

/// The README's key-format table is a contract: every row, made at test time with the tool the row
/// names, is used as `-i` against one sshd. Keys that "load" must get in (sshd logs their fingerprint);
/// "convert" ones must exit 2 naming the format and giving the command, and that command must then
/// produce a key that gets in; refused ones exit 2 naming the key type; a wrong passphrase exits 5
/// saying so. All rows run before the test reports, so one failure lists every broken row.
#[test]
fn key_format_table() {
    let lab = Lab::new();
    let made = each_in_parallel(FORMATS, |format| {
        let path = lab.fresh_path("format-key", "");
        let public = (format.make)(&path);
        MadeKey { path, public }
    });
    let authorized = lab.fresh_path("authorized_keys", "");
    let lines: String = made
        .iter()
        .filter_map(|key| key.as_ref().ok()?.public.as_ref().map(|line| format!("{line}\n")))
        .collect();
    write_file(&authorized, &lines, 0o644);
    let table = FormatLab {
        bastion: start_bastion(
            lab,
            SshdOptions {
                authorized_keys: Some(authorized),
                extra_config: only_methods("publickey"),
                ..SshdOptions::default()
            },
        ),
    };
    let rows: Vec<(&Format, Result<MadeKey, String>)> = FORMATS.iter().zip(made).collect();
    let outcomes = each_in_parallel(&rows, |(format, key)| match key {
        Ok(key) => table.check(format, key),
        Err(why) => panic!("{}: could not make the key: {why}", format.name),
    });
    let failures: Vec<String> = rows
        .iter()
        .zip(outcomes)
        .filter_map(|((format, _), outcome)| outcome.err().map(|why| format!("=== {} ===\n{why}", format.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} key-format rows failed:\n{}",
        failures.len(),
        FORMATS.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------------------------
// Chains
// ---------------------------------------------------------------------------------------------------------

/// The realistic two-factor chain: a plain jump host, then an inner bastion that wants a certificate from
/// the company CA and a one-time code (`publickey,keyboard-interactive`). Per-hop secrets make this
/// work from CI: SQLTUN_TOTP_SECRET_2 answers hop 2's prompt. sshd on hop 2 logs the certificate as a
/// partial success, then the code.
#[test]
fn chain_with_certificate_and_totp_on_the_second_hop() {
    let lab = Lab::with_bastions(2);
    let jump_key = lab.generate_key(KeyKind::Ed25519);
    let ca = lab.generate_key(KeyKind::Ed25519);
    let inner_key = lab.generate_key(KeyKind::Ed25519);
    inner_key.certify(&ca, "sqltun-chain-cert", TEST_USER);
    let ga = GoogleAuthenticator::new(&lab);
    let authorized = [lab.authorized_keys_file(&[&jump_key]), lab.authorized_keys_file(&[])];
    let chain = Chain::without_key(lab, |hop| match hop {
        0 => SshdOptions {
            authorized_keys: Some(authorized[0].clone()),
            extra_config: only_methods("publickey"),
            ..SshdOptions::default()
        },
        _ => SshdOptions {
            authorized_keys: Some(authorized[1].clone()),
            pam: Some(ga.pam()),
            extra_config: vec![
                format!("TrustedUserCAKeys {}", ca.public.display()),
                "AuthenticationMethods publickey,keyboard-interactive".into(),
            ],
            ..SshdOptions::default()
        },
    });
    ga.install();
    let (jump, inner) = (&chain.sshds[0], &chain.sshds[1]);
    let (tunnel, _) = chain
        .literal("connect")
        .identity(&jump_key)
        .identity(&inner_key)
        .db(chain.targets.echo)
        .env("SQLTUN_TOTP_SECRET_2", &ga.base32)
        .spawn_and_echo(b"jump, then certificate and code");
    assert_logged(
        &tunnel,
        jump,
        &[&format!("Accepted publickey for {TEST_USER}"), &jump_key.fingerprint()],
    );
    assert_logged(
        &tunnel,
        inner,
        &[&format!("Partial publickey for {TEST_USER}"), "ID sqltun-chain-cert"],
    );
    assert_logged(&tunnel, inner, &[&format!("{ACCEPTED_CODE} {TEST_USER}")]);
}

/// "The same time step is never used twice by one process": two hops that check the same secret file with
/// DISALLOW_REUSE (one account's authenticator on two bastions) would refuse the second hop if sqltun sent
/// the same code twice. With the secret given to each hop (SQLTUN_TOTP_SECRET_1 for the jump host, the
/// unnumbered one for the destination), both hops must get in, and the module must have recorded two
/// different time steps. (Should the clock cross a step boundary between the hops, the test passes
/// either way; it cannot fail spuriously.)
#[test]
fn one_process_never_reuses_a_time_step_across_hops() {
    let lab = Lab::with_bastions(2);
    let ga = GoogleAuthenticator::new(&lab);
    let chain = Chain::without_key(lab, |_| SshdOptions {
        pam: Some(ga.pam()),
        extra_config: only_methods("keyboard-interactive"),
        ..SshdOptions::default()
    });
    ga.install();
    let (tunnel, _) = chain
        .literal("connect")
        .db(chain.targets.echo)
        .env("SQLTUN_TOTP_SECRET_1", &ga.base32)
        .env("SQLTUN_TOTP_SECRET", &ga.base32)
        .spawn_and_echo(b"two codes, two steps");
    for sshd in &chain.sshds {
        assert_logged(&tunnel, sshd, &[&format!("{ACCEPTED_CODE} {TEST_USER}")]);
    }
    let mut steps = ga.used_steps();
    steps.sort_unstable();
    steps.dedup();
    if steps.len() != 2 {
        tunnel.fail(&format!(
            "the module recorded time steps {steps:?}, expected two different ones"
        ));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Bounds on what is answered without a person
// ---------------------------------------------------------------------------------------------------------

/// Why: a TOTP secret in the environment must not let a server collect codes ahead of time. Here the PAM
/// service asks for a code twice (two google-authenticator lines, one request each, as sshd sends one
/// prompt per request). sqltun gives a hop at most one code per time step: the second request in the same
/// step gets no code and authentication stops with exit 5, naming the hop and saying no code was sent;
/// the module recorded one step. Should the clock cross into the next step between the two requests,
/// the second code is that step's own and login succeeds: the module must then have recorded two
/// consecutive steps, still one per step.
#[test]
fn a_second_code_request_in_the_same_step_gets_no_code() {
    let lab = Lab::new();
    let ga = GoogleAuthenticator::new(&lab);
    let module = format!(
        "auth required pam_google_authenticator.so secret={} user={TEST_USER}\n",
        ga.file.display()
    );
    let bastion = start_bastion(
        lab,
        SshdOptions {
            pam: Some(Pam::Custom(format!(
                "{module}{module}account required pam_unix.so\nsession required pam_permit.so\n"
            ))),
            extra_config: only_methods("keyboard-interactive"),
            ..SshdOptions::default()
        },
    );
    ga.install();
    let mut tunnel = bastion.connect_to_echo().env("SQLTUN_TOTP_SECRET", &ga.base32).spawn();
    // Either sqltun stops (the second request got no code) or, had the clock crossed into the next step
    // between the two requests, it logs in and prints its port while it keeps running.
    let ready = crate::support::poll_until(EXIT_TIMEOUT, || {
        if !tunnel.is_running() {
            return Some(false);
        }
        (!tunnel.stdout().is_empty()).then_some(true)
    })
    .unwrap_or_else(|| tunnel.fail("sqltun neither stopped nor became ready"));
    let code = if ready {
        tunnel.stop(crate::support::Signal::Term);
        0
    } else {
        tunnel.wait_exit(EXIT_TIMEOUT)
    };
    let stderr = tunnel.stderr();
    let steps = ga.used_steps();
    match code {
        5 => {
            let line = error_line(&stderr);
            for needle in [bastion.sshd.destination().as_str(), "no one-time code was sent"] {
                if !line.contains(needle) {
                    tunnel.fail(&format!("the error line does not mention {needle:?}: {line}"));
                }
            }
            if steps.len() != 1 {
                tunnel.fail(&format!("the module recorded steps {steps:?}, expected exactly one"));
            }
        }
        0 => {
            let mut sorted = steps.clone();
            sorted.sort_unstable();
            if sorted.len() != 2 || sorted[1] != sorted[0] + 1 {
                tunnel.fail(&format!(
                    "exit {code}: the module recorded steps {steps:?}; a hop must never get two codes of one step"
                ));
            }
        }
        other => tunnel.fail(&format!("unexpected exit {other}; the module recorded steps {steps:?}")),
    }
}

/// OpenSSH 8.8 and later refuse `ssh-rsa-cert-v01@openssh.com` (SHA-1): an RSA user certificate must be
/// presented as `rsa-sha2-512-cert-v01@openssh.com` (or -256, per the server's `server-sig-algs`), as
/// ECDSA and Ed25519 ones are presented under their own names. Every key type, its certificate beside the
/// `-i` file or both held by an agent, must get through a chain of two certificate-only bastions (one
/// CA, empty authorized_keys); each sshd logs the certificate's key ID as what it accepted.
#[test]
fn user_certificates_of_every_key_type_from_file_and_agent_on_both_hops() {
    let lab = Lab::with_bastions(2);
    let ca = lab.generate_key(KeyKind::Ed25519);
    let empty = lab.authorized_keys_file(&[]);
    let chain = Chain::without_key(lab, |_| SshdOptions {
        authorized_keys: Some(empty.clone()),
        extra_config: vec![
            format!("TrustedUserCAKeys {}", ca.public.display()),
            "AuthenticationMethods publickey".into(),
        ],
        ..SshdOptions::default()
    });
    for (kind, name) in [
        (KeyKind::Rsa, "rsa"),
        (KeyKind::Ecdsa, "ecdsa"),
        (KeyKind::Ed25519, "ed25519"),
    ] {
        for from_agent in [false, true] {
            let id = format!("sqltun-{name}-{}", if from_agent { "agent" } else { "file" });
            let key = chain.lab.generate_key(kind);
            let cert = key.certify(&ca, &id, TEST_USER);
            let command = chain.literal("connect").db(chain.targets.echo);
            let command = if from_agent {
                let socket = chain.lab.start_agent(&[&key]);
                for file in [&key.private, &key.public, &cert] {
                    remove(file);
                }
                command.env("SSH_AUTH_SOCK", &socket)
            } else {
                command.identity(&key)
            };
            let (tunnel, _) = command.spawn_and_echo(id.as_bytes());
            for sshd in &chain.sshds {
                assert_logged(
                    &tunnel,
                    sshd,
                    &[&format!("Accepted publickey for {TEST_USER}"), &format!("ID {id} ")],
                );
            }
        }
    }
}

/// Why: a server (or a PAM stack) that keeps asking must not be answered forever from the environment.
/// This PAM service runs Linux-PAM's test module pam_stress ten times, and each asks "STRESS Password:"
/// again in a request of its own (then pam_deny, so the login can never succeed). sqltun answers a few
/// prompts on its own and then stops: exit 5 within the test's bound, the error naming the hop and
/// saying authentication stopped, and sshd never accepted the login.
#[test]
fn endless_keyboard_interactive_prompts_are_cut_off() {
    let stack: String = "auth required pam_stress.so\n".repeat(10) + "auth requisite pam_deny.so\n";
    let bastion = start_bastion(
        Lab::new(),
        SshdOptions {
            pam: Some(Pam::Custom(format!(
                "{stack}account required pam_unix.so\nsession required pam_permit.so\n"
            ))),
            extra_config: only_methods("keyboard-interactive"),
            ..SshdOptions::default()
        },
    );
    let (code, stderr) = bastion
        .connect_to_echo()
        .env("SQLTUN_SSH_PASSWORD", crate::support::TEST_PASSWORD)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(
        code,
        &stderr,
        5,
        &[&bastion.sshd.destination(), "authentication stopped", "Password:"],
    );
    bastion
        .sshd
        .wait_for_log(|log| log.contains("Postponed keyboard-interactive/pam"));
    let log = bastion.sshd.log_text();
    // sshd logs "Postponed keyboard-interactive/pam" for each answer that left PAM asking for more.
    let answered = log.matches("Postponed keyboard-interactive/pam").count();
    assert!(
        (1..10).contains(&answered),
        "sshd saw {answered} answers; expected a few, fewer than its ten questions\nsshd log:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Short-lived user certificates: renewed while a tunnel runs, expired, not yet valid
// ---------------------------------------------------------------------------------------------------------

use crate::support::{echo_roundtrip, local};
use std::time::Duration;

/// Bound on a restarted bastion serving again: the re-dial backoff after a short outage is a few
/// seconds (0.5 s doubling), plus a handshake; generous slack on top.
const BACK_TIMEOUT: Duration = Duration::from_secs(15);

/// Bound on a line already on its way reaching stderr as the test collects it.
const STDERR_TIMEOUT: Duration = Duration::from_secs(5);

/// An hour-long window that was over long ago (UTC), and one that starts long after any test run.
const PAST_WINDOW: &str = "20200101000000Z:20200101010000Z";
const FUTURE_WINDOW: &str = "20990101000000Z:20990101010000Z";
/// Valid now, for an hour: what a CA issuing short-lived certificates hands out.
const SHORT_LIVED: &str = "-5m:+1h";

/// A bastion that lets in certificates signed by `ca` (TrustedUserCAKeys) and, besides them, only the
/// keys in `authorized` (none: certificates only, so the key alone cannot log in).
fn certificate_bastion(lab: Lab, ca: &KeyPair, authorized: &[&KeyPair]) -> Bastion {
    let authorized = lab.authorized_keys_file(authorized);
    start_bastion(
        lab,
        SshdOptions {
            authorized_keys: Some(authorized),
            extra_config: vec![
                format!("TrustedUserCAKeys {}", ca.public.display()),
                "AuthenticationMethods publickey".into(),
            ],
            ..SshdOptions::default()
        },
    )
}

/// Waits for `needle` on stderr (bounded); fails the test with everything if it does not come.
fn expect_stderr(tunnel: &crate::support::Sqltun, needle: &str, timeout: Duration) {
    if !tunnel.stderr_mentions(&[needle], timeout) {
        tunnel.fail(&format!("no {needle:?} on stderr within {timeout:?}"));
    }
}

/// Fails the test if sshd's log mentions certificate `id` at all: at `LogLevel DEBUG` sshd names every
/// certificate it is offered by its key ID, accepted or not, so its absence means it was never offered.
fn assert_never_offered(tunnel: &crate::support::Sqltun, sshd: &Sshd, id: &str) {
    let needle = format!("ID {id} ");
    if let Some(line) = sshd.log_text().lines().find(|line| line.contains(&needle)) {
        tunnel.fail(&format!("sshd was offered certificate {id}: {line}"));
    }
}

/// Teams with short-lived user certificates (Vault, step-ca, Teleport) renew them on disk while a tunnel
/// runs; the next connection must use the renewed one without a restart of sqltun. Against a
/// certificate-only bastion the tunnel logs in with the first certificate; the file is then replaced by
/// one with a new key ID and the bastion restarted. After "reconnected", the restarted sshd's log names
/// the new ID as accepted (never the old one), and an echo goes through the same port.
#[test]
fn renewed_certificate_is_used_on_reconnect() {
    let lab = Lab::new();
    let ca = lab.generate_key(KeyKind::Ed25519);
    let key = lab.generate_key(KeyKind::Ed25519);
    key.certify_valid(&ca, "sqltun-cert-first", TEST_USER, SHORT_LIVED);
    let bastion = certificate_bastion(lab, &ca, &[]);
    let (tunnel, port) = bastion
        .connect_to_echo()
        .identity(&key)
        .spawn_and_echo(b"first certificate");
    let accepted = format!("Accepted publickey for {TEST_USER}");
    assert_logged(&tunnel, &bastion.sshd, &[&accepted, "ID sqltun-cert-first "]);

    key.certify_valid(&ca, "sqltun-cert-renewed", TEST_USER, SHORT_LIVED);
    bastion.lab.kill_bastion(0);
    expect_stderr(&tunnel, "reconnecting", BACK_TIMEOUT);
    let restarted = bastion.lab.restart_sshd(&bastion.sshd);
    expect_stderr(&tunnel, "reconnected after", BACK_TIMEOUT);
    echo_roundtrip(local(port), b"renewed certificate");
    assert_logged(&tunnel, &restarted, &[&accepted, "ID sqltun-cert-renewed "]);
    assert_never_offered(&tunnel, &restarted, "sqltun-cert-first");
}

/// An expired certificate is refused by every server and uses up one of its MaxAuthTries. sqltun names
/// it with its validity window (so a person sees it needs renewing), does not offer it, and goes on to
/// the next identity, here a second `-i` key with a valid certificate, which logs in.
#[test]
fn expired_certificate_is_named_and_not_offered() {
    let lab = Lab::new();
    let ca = lab.generate_key(KeyKind::Ed25519);
    let expired = lab.generate_key(KeyKind::Ed25519);
    let cert = expired.certify_valid(&ca, "sqltun-cert-expired", TEST_USER, PAST_WINDOW);
    let next = lab.generate_key(KeyKind::Ed25519);
    next.certify_valid(&ca, "sqltun-cert-next", TEST_USER, SHORT_LIVED);
    let bastion = certificate_bastion(lab, &ca, &[]);
    let (tunnel, _) = bastion
        .connect_to_echo()
        .identity(&expired)
        .identity(&next)
        .spawn_and_echo(b"the next identity");
    expect_stderr(
        &tunnel,
        &format!(
            "sqltun: warning: hop {}: certificate {} expired at 2020-01-01 01:00:00 UTC (valid 2020-01-01 00:00:00 UTC to 01:00:00 UTC); not offered",
            bastion.sshd.destination(),
            cert.display()
        ),
        STDERR_TIMEOUT,
    );
    assert_logged(
        &tunnel,
        &bastion.sshd,
        &[&format!("Accepted publickey for {TEST_USER}"), "ID sqltun-cert-next "],
    );
    assert_never_offered(&tunnel, &bastion.sshd, "sqltun-cert-expired");
}

/// A certificate whose window has not started (issued ahead of time, or this machine's clock is behind)
/// is named with its window and a pointer to the clock, and not offered; the next identity, here a
/// plain key in authorized_keys, logs in.
#[test]
fn not_yet_valid_certificate_is_named_and_not_offered() {
    let lab = Lab::new();
    let ca = lab.generate_key(KeyKind::Ed25519);
    let early = lab.generate_key(KeyKind::Ed25519);
    let cert = early.certify_valid(&ca, "sqltun-cert-future", TEST_USER, FUTURE_WINDOW);
    let plain = lab.generate_key(KeyKind::Ed25519);
    let bastion = certificate_bastion(lab, &ca, &[&plain]);
    let (tunnel, _) = bastion
        .connect_to_echo()
        .identity(&early)
        .identity(&plain)
        .spawn_and_echo(b"a plain key after it");
    expect_stderr(
        &tunnel,
        &format!(
            "sqltun: warning: hop {}: certificate {} is not valid until 2099-01-01 00:00:00 UTC (valid 2099-01-01 00:00:00 UTC to 01:00:00 UTC; check this machine's clock if that is wrong); not offered",
            bastion.sshd.destination(),
            cert.display()
        ),
        STDERR_TIMEOUT,
    );
    assert_logged(
        &tunnel,
        &bastion.sshd,
        &[&format!("Accepted publickey for {TEST_USER}"), &plain.fingerprint()],
    );
    assert_never_offered(&tunnel, &bastion.sshd, "sqltun-cert-future");
}

/// Keys usually go into the agent once (`ssh-add` adds the certificate beside a key too) while the
/// certificate on disk is renewed every few hours: the agent then holds the plain key and an expired
/// certificate. sqltun must skip the agent's expired certificate (named with its window) and offer the
/// renewed file with the agent signing, as OpenSSH does. The private key file is gone, so only the agent
/// can sign (`-i KEY.pub` picks the agent's key, `CertificateFile` the renewed certificate).
#[test]
fn renewed_certificate_on_disk_is_signed_by_the_agent() {
    let lab = Lab::new();
    let ca = lab.generate_key(KeyKind::Ed25519);
    let key = lab.generate_key(KeyKind::Ed25519);
    key.certify_valid(&ca, "sqltun-agent-old", TEST_USER, PAST_WINDOW);
    let socket = lab.start_agent(&[&key]);
    let listing = agent_listing(&socket);
    assert!(
        listing.contains("ED25519-CERT"),
        "ssh-add did not add the certificate beside the key:\n{listing}"
    );
    let cert = key.certify_valid(&ca, "sqltun-disk-renewed", TEST_USER, SHORT_LIVED);
    remove(&key.private);
    let bastion = certificate_bastion(lab, &ca, &[]);
    let (tunnel, _) = bastion
        .connect_to_echo()
        .env("SSH_AUTH_SOCK", &socket)
        .arg("-i")
        .arg(&key.public)
        .arg("-o")
        .arg(format!("CertificateFile={}", cert.display()))
        .spawn_and_echo(b"renewed on disk, signed by the agent");
    expect_stderr(
        &tunnel,
        "expired at 2020-01-01 01:00:00 UTC (valid 2020-01-01 00:00:00 UTC to 01:00:00 UTC); not offered",
        STDERR_TIMEOUT,
    );
    assert!(
        tunnel.stderr().contains("agent certificate"),
        "the warning does not say the certificate is the agent's:\n{}",
        tunnel.stderr()
    );
    assert_logged(
        &tunnel,
        &bastion.sshd,
        &[
            &format!("Accepted publickey for {TEST_USER}"),
            "ID sqltun-disk-renewed ",
        ],
    );
    assert_never_offered(&tunnel, &bastion.sshd, "sqltun-agent-old");
}
