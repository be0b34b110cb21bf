//! OpenSSH's sshd as a bastion inside a lab namespace, with its own config, host keys and authorized_keys;
//! key pairs made with ssh-keygen; known_hosts files; and the OS account sshd authenticates.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::lab::{Lab, STATE_DIR, make_dir};
use super::process::{Signal, in_namespace, poll_until, run, tail, wait_until};
use super::sqltun::Sqltun;

/// The OS account the bastions authenticate (sshd needs a real one for password authentication).
pub const TEST_USER: &str = "sqltun-test";
/// Its password, set by the fixtures with chpasswd.
pub const TEST_PASSWORD: &str = "sqltun-test-password-7f3a";

const SSHD: &str = "/usr/sbin/sshd";
const SSHD_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a line sshd is about to write may take to reach its log.
const LOG_WAIT: Duration = Duration::from_secs(10);

/// A key algorithm, for host keys and client keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    Ecdsa,
    Rsa,
}

impl KeyKind {
    fn keygen_args(self) -> &'static [&'static str] {
        match self {
            KeyKind::Ed25519 => &["-t", "ed25519"],
            KeyKind::Ecdsa => &["-t", "ecdsa", "-b", "256"],
            KeyKind::Rsa => &["-t", "rsa", "-b", "3072"],
        }
    }

    fn file_stem(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "ed25519",
            KeyKind::Ecdsa => "ecdsa",
            KeyKind::Rsa => "rsa",
        }
    }
}

/// A private key file and its `.pub`, made by ssh-keygen.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub private: PathBuf,
    pub public: PathBuf,
    pub kind: KeyKind,
    /// The passphrase the private key is encrypted with, if any.
    pub passphrase: Option<String>,
}

impl KeyPair {
    /// `ssh-keygen -t KIND -N PASSPHRASE -f PATH`; `PATH` must not exist yet.
    pub fn generate(private: PathBuf, kind: KeyKind, passphrase: Option<&str>) -> KeyPair {
        run(Command::new("ssh-keygen")
            .arg("-q")
            .args(kind.keygen_args())
            .args(["-N", passphrase.unwrap_or(""), "-C", "sqltun-test-key", "-f"])
            .arg(&private));
        let mut public = private.clone().into_os_string();
        public.push(".pub");
        KeyPair {
            private,
            public: public.into(),
            kind,
            passphrase: passphrase.map(str::to_string),
        }
    }

    /// The public key as it appears in authorized_keys and known_hosts: `TYPE BASE64` (no comment).
    pub fn public_key(&self) -> String {
        let text = fs::read_to_string(&self.public).unwrap_or_else(|e| panic!("read {}: {e}", self.public.display()));
        text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    }

    /// The base64 key blob alone.
    pub fn blob(&self) -> String {
        self.public_key()
            .split_whitespace()
            .nth(1)
            .expect("public key has a blob")
            .to_string()
    }

    /// Signs the public half with `ca` (`ssh-keygen -s CA -I ID -n PRINCIPALS KEY.pub`), making an OpenSSH
    /// user certificate valid from now on for `principals` (comma-separated). ssh-keygen writes it where
    /// OpenSSH looks for it, `PRIVATE-cert.pub`; returns that path.
    pub fn certify(&self, ca: &KeyPair, id: &str, principals: &str) -> PathBuf {
        self.certify_valid(ca, id, principals, "always:forever")
    }

    /// As `certify`, valid only within `validity`, ssh-keygen's `-V`: relative (`-5m:+1h`) or absolute
    /// in UTC (`20200101000000Z:20200101010000Z`). Signing again replaces the file, as a renewal does.
    pub fn certify_valid(&self, ca: &KeyPair, id: &str, principals: &str, validity: &str) -> PathBuf {
        run(Command::new("ssh-keygen")
            .arg("-q")
            .arg("-s")
            .arg(&ca.private)
            .args(["-I", id, "-n", principals, "-V", validity])
            .arg(&self.public));
        let mut cert = self.private.clone().into_os_string();
        cert.push("-cert.pub");
        let cert = PathBuf::from(cert);
        assert!(cert.exists(), "ssh-keygen -s did not write {}", cert.display());
        cert
    }

    /// The SHA256 fingerprint as OpenSSH prints it: `SHA256:…`.
    pub fn fingerprint(&self) -> String {
        let output = run(Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(&self.public));
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .nth(1)
            .expect("ssh-keygen -l prints a fingerprint")
            .to_string()
    }
}

/// How to configure one sshd.
#[derive(Debug, Clone)]
pub struct SshdOptions {
    /// Port inside the bastion's namespace (its own port space, so fixed ports cannot collide).
    pub port: u16,
    /// Host key types sshd offers, one key each.
    pub host_keys: Vec<KeyKind>,
    /// sshd's `PermitOpen`: `None` is `any`; e.g. `Some("198.18.0.6:7007")` allows only that target.
    pub permit_open: Option<String>,
    /// More sshd_config lines, appended last.
    pub extra_config: Vec<String>,
    /// `AllowStreamLocalForwarding yes` (Debian's default) instead of the fixture's `no`: forwards to and
    /// from Unix sockets on the bastion.
    pub stream_local_forwarding: bool,
    /// sshd's `AuthorizedKeysFile`: `None` is the lab-wide file every sshd reads (see `Lab::authorize`);
    /// `Some` gives this sshd its own (see `Lab::authorized_keys_file`).
    pub authorized_keys: Option<PathBuf>,
    /// `None`: `UsePAM no`, no keyboard-interactive (passwords checked by sshd itself). `Some`: `UsePAM yes`
    /// and `KbdInteractiveAuthentication yes`, with the PAM service it names.
    pub pam: Option<Pam>,
}

/// The PAM service an sshd with `UsePAM yes` authenticates through.
#[derive(Debug, Clone)]
pub enum Pam {
    /// The machine's own `sshd` service (/etc/pam.d/sshd, pam_unix: the account's password), as on a
    /// stock bastion. Never modified by the tests.
    System,
    /// A service of the lab's own with this configuration text (see `Lab::pam_service`). sshd names its
    /// PAM service after the name it was started as, so this sshd runs through a symlink named after
    /// the service.
    Custom(String),
}

impl Default for SshdOptions {
    fn default() -> Self {
        SshdOptions {
            port: 22,
            host_keys: vec![KeyKind::Ed25519],
            permit_open: None,
            extra_config: Vec::new(),
            stream_local_forwarding: false,
            authorized_keys: None,
            pam: None,
        }
    }
}

/// A running sshd on one bastion. The lab owns the process; this is what tests need to reach it.
#[derive(Debug)]
pub struct Sshd {
    pub hop: usize,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub host_keys: Vec<KeyPair>,
    /// sshd's log (`LogLevel DEBUG`): which methods and keys it accepted, which channels it opened.
    pub log: PathBuf,
}

impl Sshd {
    /// `sqltun-test@ADDR:PORT`: the `--ssh` destination, and how sqltun names this hop in messages.
    pub fn destination(&self) -> String {
        format!("{TEST_USER}@{}:{}", self.addr, self.port)
    }

    /// The host field known_hosts uses for this server: `ADDR` on port 22, `[ADDR]:PORT` otherwise.
    pub fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.addr.to_string()
        } else {
            format!("[{}]:{}", self.addr, self.port)
        }
    }

    /// The host key of one type.
    pub fn host_key(&self, kind: KeyKind) -> &KeyPair {
        self.host_keys
            .iter()
            .find(|key| key.kind == kind)
            .unwrap_or_else(|| panic!("sshd on hop {} has no {kind:?} host key", self.hop))
    }

    /// sshd's log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| panic!("read {}: {e}", self.log.display()))
    }

    /// Whether sshd's log comes to satisfy `wanted` within [`LOG_WAIT`]. sshd's per-connection child
    /// writes its lines as it goes, so a line about a session sqltun has just left may land a moment after
    /// sqltun exits: read again until it is there, or the bound passes.
    pub fn wait_for_log(&self, mut wanted: impl FnMut(&str) -> bool) -> bool {
        poll_until(LOG_WAIT, || wanted(&self.log_text()).then_some(())).is_some()
    }

    /// The known_hosts line that pins this server's ed25519 host key.
    pub fn known_hosts_line(&self) -> String {
        format!(
            "{} {}",
            self.known_hosts_name(),
            self.host_key(KeyKind::Ed25519).public_key()
        )
    }
}

impl Lab {
    /// A new key pair in the lab directory, not authorized anywhere.
    pub fn generate_key(&self, kind: KeyKind) -> KeyPair {
        KeyPair::generate(self.fresh_path(&format!("id_{}", kind.file_stem()), ""), kind, None)
    }

    /// A new key pair whose private half is encrypted with `passphrase`, not authorized anywhere.
    pub fn generate_encrypted_key(&self, kind: KeyKind, passphrase: &str) -> KeyPair {
        KeyPair::generate(
            self.fresh_path(&format!("id_{}_encrypted", kind.file_stem()), ""),
            kind,
            Some(passphrase),
        )
    }

    /// Adds a key to the authorized_keys file every sshd of the lab reads.
    pub fn authorize(&self, key: &KeyPair) {
        let path = self.authorized_keys();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        writeln!(file, "{}", key.public_key()).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// A new, unencrypted, authorized key pair.
    pub fn authorized_key(&self, kind: KeyKind) -> KeyPair {
        let key = self.generate_key(kind);
        self.authorize(&key);
        key
    }

    fn authorized_keys(&self) -> PathBuf {
        self.dir().join("authorized_keys")
    }

    /// An authorized_keys file (a fresh path in the lab directory) with exactly these keys, for an sshd
    /// that accepts only them (`SshdOptions::authorized_keys`).
    pub fn authorized_keys_file(&self, keys: &[&KeyPair]) -> PathBuf {
        let path = self.fresh_path("authorized_keys", "");
        let text: String = keys.iter().map(|key| format!("{}\n", key.public_key())).collect();
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// A known_hosts file (a fresh path in the lab directory) with exactly these lines.
    pub fn known_hosts_file(&self, lines: &[String]) -> PathBuf {
        let path = self.fresh_path("known_hosts", "");
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// A known_hosts file that pins `sshd`'s ed25519 host key.
    pub fn known_hosts_for(&self, sshd: &Sshd) -> PathBuf {
        self.known_hosts_file(&[sshd.known_hosts_line()])
    }

    /// Starts sshd on the first bastion and waits until it listens.
    pub fn start_sshd(&self, options: SshdOptions) -> Sshd {
        self.start_sshd_on(0, options)
    }

    /// Starts sshd on bastion `hop` (0-based), listening on that bastion's address as the previous node
    /// sees it, and waits until it listens.
    pub fn start_sshd_on(&self, hop: usize, options: SshdOptions) -> Sshd {
        ensure_test_user();
        // sshd's privilege separation directory; /run is a tmpfs, so it may be gone after a reboot.
        make_dir(Path::new("/run/sshd"), 0o755);

        let addr = self.hop_addr(hop);
        let dir = self.fresh_path(&format!("sshd-hop{hop}"), "");
        make_dir(&dir, 0o755);
        let host_keys: Vec<KeyPair> = options
            .host_keys
            .iter()
            .map(|&kind| KeyPair::generate(dir.join(format!("ssh_host_{}_key", kind.file_stem())), kind, None))
            .collect();
        let authorized_keys = options
            .authorized_keys
            .clone()
            .unwrap_or_else(|| self.authorized_keys());
        if !authorized_keys.exists() {
            File::create(&authorized_keys).unwrap_or_else(|e| panic!("create {}: {e}", authorized_keys.display()));
        }

        // sshd's PAM service name is the name it runs as (OpenSSH's default SSHD_PAM_SERVICE, __progname).
        let program = match &options.pam {
            Some(Pam::Custom(text)) => {
                let service = self.pam_service(text);
                let link = dir.join(&service);
                std::os::unix::fs::symlink(SSHD, &link)
                    .unwrap_or_else(|e| panic!("symlink {} -> {SSHD}: {e}", link.display()));
                link
            }
            Some(Pam::System) | None => PathBuf::from(SSHD),
        };

        let mut config = String::new();
        let mut line = |text: &str| {
            config.push_str(text);
            config.push('\n');
        };
        line(&format!("ListenAddress {addr}:{}", options.port));
        for key in &host_keys {
            line(&format!("HostKey {}", key.private.display()));
        }
        line("PidFile none");
        line(if options.pam.is_some() {
            "UsePAM yes"
        } else {
            "UsePAM no"
        });
        line(&format!("AllowUsers {TEST_USER}"));
        line("PermitRootLogin no");
        line("PubkeyAuthentication yes");
        line("PasswordAuthentication yes");
        line(if options.pam.is_some() {
            "KbdInteractiveAuthentication yes"
        } else {
            "KbdInteractiveAuthentication no"
        });
        line("PermitEmptyPasswords no");
        line(&format!("AuthorizedKeysFile {}", authorized_keys.display()));
        // The lab's files live under /tmp, which StrictModes would reject.
        line("StrictModes no");
        line("AllowTcpForwarding yes");
        line(&format!(
            "PermitOpen {}",
            options.permit_open.as_deref().unwrap_or("any")
        ));
        line("AllowAgentForwarding no");
        line(if options.stream_local_forwarding {
            "AllowStreamLocalForwarding yes"
        } else {
            "AllowStreamLocalForwarding no"
        });
        line("X11Forwarding no");
        line("PermitTunnel no");
        line("UseDNS no");
        line("PrintMotd no");
        line("LoginGraceTime 30");
        line("MaxAuthTries 10");
        line("MaxStartups 100:30:200");
        line("LogLevel DEBUG");
        for extra in &options.extra_config {
            line(extra);
        }
        let config_path = dir.join("sshd_config");
        fs::write(&config_path, config).unwrap_or_else(|e| panic!("write {}: {e}", config_path.display()));

        let log = dir.join("sshd.log");
        self.run_sshd_until_listening(hop, "", &program, &config_path, &log, options.port);
        Sshd {
            hop,
            addr,
            port: options.port,
            host_keys,
            log,
        }
    }
}

impl Lab {
    /// Runs `PROGRAM -D -f CONFIG -E LOG` (an sshd) in bastion `hop`'s namespace, its early errors in
    /// LOG with the extension `stderr`, and waits until it listens on the bastion's address and `port`.
    /// `label` tells this sshd apart in logs and messages (e.g. ` (restarted)`). The lab stops it on drop.
    pub(super) fn run_sshd_until_listening(
        &self,
        hop: usize,
        label: &str,
        program: &Path,
        config: &Path,
        log: &Path,
        port: u16,
    ) {
        let addr = self.hop_addr(hop);
        let early_errors = &log.with_extension("stderr");
        self.add_log(&format!("sshd hop {hop}{label}"), log);
        self.add_log(&format!("sshd hop {hop}{label} stderr"), early_errors);
        let stderr = File::create(early_errors).unwrap_or_else(|e| panic!("create {}: {e}", early_errors.display()));
        let pid = self.spawn(
            &format!("sshd on hop {hop}{label}"),
            in_namespace(&self.bastion_namespace(hop), program)
                .args(["-D", "-f"])
                .arg(config)
                .arg("-E")
                .arg(log)
                .stdout(Stdio::null())
                .stderr(stderr),
            Signal::Term,
        );
        let listening = format!("Server listening on {addr} port {port}.");
        wait_until(
            &format!("sshd on hop {hop}{label} to listen on {addr}:{port}"),
            SSHD_READY_TIMEOUT,
            || {
                if let Some(status) = self.exit_status(pid) {
                    panic!(
                        "sshd on hop {hop}{label} exited ({status}) before listening\nlog:\n{}\nstderr:\n{}",
                        tail(log, 40),
                        tail(early_errors, 40)
                    );
                }
                fs::read_to_string(log)
                    .ok()
                    .filter(|text| text.contains(&listening))
                    .map(|_| ())
            },
        );
    }
}

/// `AuthenticationMethods LIST` as sshd's only authentication policy, for `SshdOptions::extra_config` (the
/// fixture's Pubkey/Password settings come first and sshd keeps the first value of a keyword, so this is
/// how a test narrows what sshd accepts).
pub fn only_methods(methods: &str) -> Vec<String> {
    vec![format!("AuthenticationMethods {methods}")]
}

/// Fails the test (with sqltun's output and the lab's logs) unless `sshd` logged a line containing every
/// one of `needles`. sshd writes its "Accepted …"/"Partial …" line before it answers the request it
/// accepts, so by the time sqltun is ready the line is there.
pub fn assert_logged(tunnel: &Sqltun, sshd: &Sshd, needles: &[&str]) {
    let logged = sshd.wait_for_log(|log| {
        log.lines()
            .any(|line| needles.iter().all(|needle| line.contains(needle)))
    });
    if !logged {
        tunnel.fail(&format!(
            "sshd on hop {} logged no line with all of {needles:?}",
            sshd.hop + 1
        ));
    }
}

/// Creates the test account once per machine (idempotent, and serialised across test processes with a
/// lock file) and sets its password once per test process.
pub fn ensure_test_user() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        make_dir(Path::new(STATE_DIR), 0o755);
        let lock_path = Path::new(STATE_DIR).join("user.lock");
        let lock = File::create(&lock_path).unwrap_or_else(|e| panic!("create {}: {e}", lock_path.display()));
        #[allow(
            clippy::incompatible_msrv,
            reason = "File::lock (1.89): the tests run on the CI toolchain, not the MSRV"
        )]
        let locked = lock.lock();
        locked.unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
        let exists = Command::new("id")
            .args(["-u", TEST_USER])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !exists {
            run(Command::new("useradd").args(["--create-home", "--shell", "/bin/sh", TEST_USER]));
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run chpasswd: {e}"));
        let mut input = String::new();
        let _ = writeln!(input, "{TEST_USER}:{TEST_PASSWORD}");
        chpasswd
            .stdin
            .take()
            .expect("chpasswd stdin")
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("write to chpasswd: {e}"));
        let output = chpasswd
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for chpasswd: {e}"));
        assert!(
            output.status.success(),
            "chpasswd failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}
