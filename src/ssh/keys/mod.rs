//! Identity files for SSH public-key authentication: permission checks, format
//! detection, loading (with passphrase handling) and the default identity list.
//!
//! OpenSSH-format keys, legacy-encrypted PEM keys, encrypted PKCS#8 keys and every EC
//! key are decoded here, with ssh-key's and RustCrypto's ciphers, KDFs and curves; the
//! rest (unencrypted PEM RSA and PKCS#8 RSA/Ed25519, PuTTY) by russh
//! (`russh::keys::decode_secret_key`). This module looks at the file first, so that
//! whatever cannot be read ends in an error that names the format and the fix, never in
//! an opaque parse error, and so that the user is not asked for a passphrase that could
//! not help. An EC private scalar is normalised to the field width (32, 48, 66 bytes)
//! in every format: writers differ on its leading zeros (ssh-keygen drops them).
//!
//! What loads, measured with keys made by ssh-keygen (OpenSSH 9.2), OpenSSL 3.0 and
//! puttygen 0.78 (the tests below check every line). "convert" means the error names
//! the command that makes a readable key.
//!
//! | Format (made by)                                  | Unencrypted    | Encrypted                                   |
//! |---------------------------------------------------|----------------|---------------------------------------------|
//! | OpenSSH (`ssh-keygen`, any `-t`)                  | loads          | loads: aes128/192/256-ctr/cbc, aes-gcm, chacha20-poly1305, 3des-cbc |
//! | PEM PKCS#1 RSA (`ssh-keygen -m PEM -t rsa`)       | loads          | loads: AES-128/192/256-CBC, DES-EDE3-CBC (`openssl -aes256`, `-des3`) |
//! | PEM SEC1 EC (`ssh-keygen -m PEM -t ecdsa`)        | loads: P-256/384/521, also explicit curve parameters | loads: AES-128/192/256-CBC, DES-EDE3-CBC |
//! | PEM DSA (`openssl pkey -traditional`)             | refused: DSA   | refused: DSA                                |
//! | PKCS#8 (`ssh-keygen -m PKCS8`, `openssl genpkey`) | loads: RSA, ECDSA, Ed25519 | loads: PBES2 with PBKDF2-HMAC-SHA1/SHA2 or scrypt, and AES or DES-EDE3; PBES1 / PKCS#12 PBE: convert |
//! | PuTTY `.ppk` v2, v3 (`puttygen`)                  | loads          | loads (aes256-cbc; v3 with Argon2); v1: convert with puttygen |
//! | SSH.com / Tectia SSH2                             | convert with `ssh-keygen -i` | remove the passphrase first, then `ssh-keygen -i` |
//! | DSA, Ed448, secp256k1 keys (any format)           | refused: algorithm | refused: algorithm                      |
//! | FIDO keys (`id_ed25519_sk`, `id_ecdsa_sk`)        | refused: use ssh-agent | refused: use ssh-agent              |
//!
//! `ssh-keygen -m PEM|PKCS8 -t ed25519` writes the OpenSSH format anyway. FIDO
//! keys are tested with a key built in the test (no hardware token needed).
//!
//! russh behaviour this module works around (all found by those tests):
//! * A passphrase given for an *unencrypted* PKCS#8 or PEM EC key makes russh
//!   fail (it then parses the key as encrypted PKCS#8), so a passphrase is handed
//!   over only for keys detected as encrypted.
//! * russh decrypts legacy PEM only with AES-128-CBC and only as RSA, and parses the
//!   ciphertext of any other cipher as if it were plain; ssh-key refuses a P-256 scalar
//!   stored one byte short. These keys are decoded here instead.
//! * A wrong passphrase is `ssh_key::Error::Crypto` for OpenSSH keys (checkint
//!   mismatch, or tag failure for aes-gcm and chacha20-poly1305), `Unpad` for PEM,
//!   `Pkcs8(EncryptedPrivateKey(DecryptFailed))` for PKCS#8 (or, 1 time in 256,
//!   a DER error from garbage plaintext) and a PPK MAC mismatch for PuTTY.
//! * DSA, FIDO and unknown-algorithm OpenSSH keys decode fine but cannot sign;
//!   they are refused here instead of failing later during authentication.
//! * The BEGIN line must match exactly, and a blank line in a PuTTY file fails;
//!   key text is re-assembled before it goes to russh, so indented, space-padded
//!   or CRLF text loads (an empty PuTTY `Comment: ` keeps the space ssh-key needs).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use russh::keys::{Algorithm, PrivateKey, PublicKey, decode_secret_key, ssh_key};
use zeroize::Zeroizing;

use crate::secret::Secret;

/// Larger files are refused unread: no private key comes close.
const MAX_KEY_FILE_LEN: u64 = 1 << 20;

/// Passphrase-derivation costs a key file may ask for. The KDF runs before the passphrase
/// can be checked, so a damaged or hostile file could otherwise keep sqltun (and the
/// `--batch` job waiting on it) busy for days: 4294967295 bcrypt rounds is over a year.
/// The bounds sit far above what the tools write, and allow roughly a minute or two of
/// work at most on a current machine.
///
/// bcrypt_pbkdf rounds (OpenSSH format): ssh-keygen writes 16, `-a` is rarely above 1000.
const MAX_BCRYPT_ROUNDS: u64 = 10_000;
/// Argon2 memory in KiB (PuTTY v3): puttygen writes 8192 (8 MiB).
const MAX_ARGON2_MEMORY_KIB: u64 = 1 << 20;
/// Argon2 work, memory (KiB) times passes: 32 GiB·passes. puttygen by default picks as
/// many passes over 8 MiB as take 0.1 s (`--ppk-param time=`), some 100 MiB·passes; this
/// leaves room for a `time=` hundreds of times as long. A plain cap on passes would
/// refuse such a slow-but-legitimate key (little memory, many passes).
const MAX_ARGON2_WORK: u64 = 1 << 25;
/// Argon2 lanes (PuTTY v3): puttygen writes 1. Lanes split the memory rather than add
/// work, so this only rejects values no tool would write.
const MAX_ARGON2_PARALLELISM: u64 = 255;
/// PBKDF2 iterations (encrypted PKCS#8): OpenSSL and ssh-keygen write 2048; NIST SP
/// 800-132 names 10,000,000 for keys where speed does not matter.
const MAX_PBKDF2_ITERATIONS: u64 = 10_000_000;
/// scrypt memory (128·N·r bytes) and work (times p) in encrypted PKCS#8: OpenSSL writes
/// N=16384, r=8, p=1 (16 MiB).
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
const MAX_SCRYPT_WORK: u64 = 1 << 34;
/// Rough costs measured with the optimised dependencies sqltun is built with, used only
/// to say in an error how long a refused derivation would have taken: bcrypt_pbkdf for
/// the 48 bytes of an aes256-ctr key and IV (two bcrypt blocks per round), and Argon2
/// per MiB and pass (ssh-key derives a PuTTY key twice: once for the key, once for the MAC).
const BCRYPT_MS_PER_ROUND: u64 = 8;
const ARGON2_MS_PER_MIB_PASS: u64 = 2;
const PBKDF2_MS_PER_MILLION_ITERATIONS: u64 = 500;
const SCRYPT_MS_PER_MIB: u64 = 4;

/// Longest quoted piece of key text (a cipher or algorithm name) in a message.
const NAME_CHARS: usize = 80;
/// Longest description of damage in a message.
const DETAIL_CHARS: usize = 300;

/// Ciphers the OpenSSH private-key format may name that russh can decrypt.
const OPENSSH_CIPHERS: &[&str] = &[
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "3des-cbc",
];

/// The on-disk format of a key file, as far as it can be told without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// `-----BEGIN OPENSSH PRIVATE KEY-----`
    OpenSsh { encrypted: bool },
    /// `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1; encrypted with a `Proc-Type: 4,ENCRYPTED` header)
    PemRsa { encrypted: bool },
    /// `-----BEGIN EC PRIVATE KEY-----` (SEC1)
    PemEc { encrypted: bool },
    /// `-----BEGIN DSA PRIVATE KEY-----`
    PemDsa { encrypted: bool },
    /// `-----BEGIN PRIVATE KEY-----`
    Pkcs8,
    /// `-----BEGIN ENCRYPTED PRIVATE KEY-----`
    Pkcs8Encrypted,
    /// `PuTTY-User-Key-File-N: ...` (whether it is encrypted: [`is_encrypted`])
    Putty,
    /// `---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----` (SSH.com / Tectia)
    Ssh2,
    /// A public key (`ssh-ed25519 AAAA...`, `.pub`, RFC 4716 or PEM public key) given as an identity.
    PublicKey,
    /// Empty, binary, or nothing recognisable.
    Unknown,
}

impl KeyFormat {
    /// Human-readable name, used in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::OpenSsh { encrypted: false } => "OpenSSH",
            Self::OpenSsh { encrypted: true } => "OpenSSH, encrypted",
            Self::PemRsa { encrypted: false } => "PEM PKCS#1 RSA",
            Self::PemRsa { encrypted: true } => "PEM PKCS#1 RSA, encrypted",
            Self::PemEc { encrypted: false } => "PEM SEC1 EC",
            Self::PemEc { encrypted: true } => "PEM SEC1 EC, encrypted",
            Self::PemDsa { encrypted: false } => "PEM DSA",
            Self::PemDsa { encrypted: true } => "PEM DSA, encrypted",
            Self::Pkcs8 => "PKCS#8",
            Self::Pkcs8Encrypted => "PKCS#8, encrypted",
            Self::Putty => "PuTTY .ppk",
            Self::Ssh2 => "SSH.com/Tectia SSH2",
            Self::PublicKey => "public key",
            Self::Unknown => "unrecognised",
        }
    }
}

impl fmt::Display for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an identity file cannot be used. [`KeyError::describe`] turns it into a
/// sentence naming the file and the fix. No variant ever holds the passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The file does not exist.
    NotFound,
    /// The file exists but cannot be read (the I/O error, or "it is a directory").
    Unreadable(String),
    /// Group or others may read or write the file; OpenSSH ignores such keys.
    /// `mode` holds the permission bits (`0o644`).
    TooOpen { mode: u32 },
    /// The key is encrypted and no passphrase was given.
    NeedsPassphrase { format: KeyFormat },
    /// The passphrase does not decrypt the key.
    WrongPassphrase,
    /// A format russh cannot decode (or a public key given instead of a private one).
    Unsupported { format: KeyFormat },
    /// The key is encrypted with a cipher or scheme russh cannot decrypt.
    UnsupportedCipher { format: KeyFormat, cipher: String },
    /// The key decodes (or would) but sqltun cannot sign with its algorithm
    /// (DSA, FIDO security keys, Ed448, ...).
    UnsupportedAlgorithm { format: KeyFormat, algorithm: String },
    /// The file is damaged, truncated or not a key at all.
    Corrupt { format: KeyFormat, detail: String },
    /// The key asks for a passphrase derivation far costlier than any key tool writes
    /// (`cost`, e.g. "4294967295 bcrypt rounds"); deriving it would take about `seconds`.
    /// Refused before any passphrase is asked for or tried.
    KdfTooCostly {
        format: KeyFormat,
        cost: String,
        seconds: u64,
    },
}

impl KeyError {
    /// One sentence a user can act on, naming the file (shown as given) and the fix.
    ///
    /// Everything quoted from the file (names, damage) and the path itself are shown with
    /// control characters escaped, so a hostile file cannot drive the terminal.
    pub fn describe(&self, path: &Path) -> String {
        let p = printable(&path.display().to_string(), usize::MAX);
        let q = shell_quote(path);
        match self {
            Self::NotFound => format!("Identity file {p} does not exist; check the path."),
            Self::Unreadable(why) => {
                let why = printable(why, DETAIL_CHARS);
                format!("Cannot read identity file {p} ({why}); check that it is a file you may read.")
            }
            Self::TooOpen { mode } => format!(
                "UNPROTECTED PRIVATE KEY FILE: permissions {mode:04o} for {p} are too open \
                 (it must not be accessible by group or others), so it is ignored; \
                 fix with `chmod 600 {q}`."
            ),
            Self::NeedsPassphrase { format } => format!(
                "Identity file {p} ({format}) needs its passphrase; give it, \
                 or load the key into ssh-agent with `ssh-add {q}`."
            ),
            Self::WrongPassphrase => {
                format!("Incorrect passphrase for identity file {p}; try again.")
            }
            Self::Unsupported { format } => describe_unsupported(*format, path),
            Self::UnsupportedCipher { format, cipher } => {
                let cipher = printable(cipher, NAME_CHARS);
                let fix = if *format == KeyFormat::Putty {
                    putty_fix(path)
                } else {
                    format!("`ssh-keygen -p -f {q}`")
                };
                format!(
                    "Identity file {p} ({format}) is encrypted with {cipher}, which sqltun \
                     cannot decrypt; rewrite it in the OpenSSH format with {fix}."
                )
            }
            Self::UnsupportedAlgorithm { algorithm, .. } if algorithm.starts_with("sk-") => {
                let algorithm = printable(algorithm, NAME_CHARS);
                format!(
                    "Identity file {p} is a FIDO security-key ({algorithm}) key, which sqltun \
                     cannot sign with directly; load it into ssh-agent with `ssh-add {q}`."
                )
            }
            Self::UnsupportedAlgorithm { format, algorithm } => format!(
                "Identity file {p} ({format}) holds a key of type {}, which sqltun \
                 cannot use; create a new key with `ssh-keygen -t ed25519` and install its \
                 public half on the server.",
                printable(algorithm, NAME_CHARS)
            ),
            Self::Corrupt {
                format: KeyFormat::Unknown,
                detail,
            } => format!(
                "Identity file {p} is not a private key sqltun recognises: {}; \
                 check the path.",
                printable(detail, DETAIL_CHARS)
            ),
            Self::Corrupt { format, detail } => format!(
                "Identity file {p} ({format}) cannot be read: {}; the file may be \
                 truncated or damaged, restore it or create a new key.",
                printable(detail, DETAIL_CHARS)
            ),
            Self::KdfTooCostly { format, cost, seconds } => {
                let cost = printable(cost, NAME_CHARS);
                let took = duration_words(*seconds);
                let fix = if *seconds > 24 * 60 * 60 {
                    // No tool decrypts it any faster: converting is no way out.
                    "no tool can decrypt it in reasonable time, so the file is most likely \
                     damaged: restore it from a backup or create a new key"
                        .to_string()
                } else if *format == KeyFormat::Putty {
                    format!(
                        "if that cost is intended, rewrite the key once with {} (which takes \
                         as long), else restore it or create a new key",
                        putty_fix(path)
                    )
                } else {
                    format!(
                        "if that cost is intended, rewrite the key once with a usual one, \
                         `ssh-keygen -p -a 100 -f {q}` (which takes as long), else restore \
                         it or create a new key"
                    )
                };
                // What a huge Argon2 memory costs is memory more than time: no estimate.
                let why = if *seconds >= 60 {
                    format!(", as deriving its key would take {took}")
                } else {
                    String::new()
                };
                format!(
                    "Identity file {p} ({format}) asks for {cost}, far more than key tools \
                     write; refusing{why}; {fix}."
                )
            }
        }
    }
}

/// Roughly how long `seconds` is, in words ("about 3 minutes", "over a year").
fn duration_words(seconds: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    const YEAR: u64 = 365 * DAY;
    let (n, unit) = match seconds {
        s if s >= YEAR => return format!("over {} year{}", s / YEAR, if s / YEAR == 1 { "" } else { "s" }),
        s if s >= 2 * DAY => (s / DAY, "days"),
        s if s >= 2 * HOUR => (s / HOUR, "hours"),
        s if s >= 2 * MINUTE => (s / MINUTE, "minutes"),
        s => (s.max(1), if s <= 1 { "second" } else { "seconds" }),
    };
    format!("about {n} {unit}")
}

fn describe_unsupported(format: KeyFormat, path: &Path) -> String {
    let p = printable(&path.display().to_string(), usize::MAX);
    let q = shell_quote(path);
    match format {
        KeyFormat::PublicKey => format!(
            "Identity file {p} is a public key, not a private key; give the private key \
             (usually the same name without .pub), or load it into ssh-agent."
        ),
        KeyFormat::Putty => format!(
            "Identity file {p} is a PuTTY key in a version sqltun cannot read; \
             convert it with {}.",
            putty_fix(path)
        ),
        KeyFormat::Ssh2 => {
            let n = shell_quote(&sibling(path, "-openssh"));
            format!(
                "Identity file {p} is an SSH.com/Tectia SSH2 key, which sqltun cannot read; \
                 convert it with `ssh-keygen -i -f {q} > {n} && chmod 600 {n}` and use {n} \
                 (ssh-keygen converts unencrypted SSH2 keys only: remove the passphrase \
                 with the tool that made the key first)."
            )
        }
        _ => format!(
            "Identity file {p} is in a format sqltun cannot read ({format}); rewrite it \
             in the OpenSSH format with `ssh-keygen -p -f {q}` (it asks for a new passphrase)."
        ),
    }
}

fn putty_fix(path: &Path) -> String {
    format!(
        "`puttygen {} -O private-openssh-new -o {}`",
        shell_quote(path),
        shell_quote(&sibling(path, "-openssh"))
    )
}

/// `dir/name.ext` -> `dir/name{suffix}`: a conversion target that does not overwrite the key.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_stem().unwrap_or(path.as_os_str()).to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// The path as given, single-quoted for a shell command when it needs to be.
/// A leading `~/` stays outside the quotes so that the shell still expands it.
/// A path holding control characters is written `$'…'` with them escaped, so the
/// command still names the file and the terminal never receives them raw.
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
    let (home, rest) = match text.strip_prefix("~/") {
        Some(rest) => ("~/", rest),
        None => ("", text.as_str()),
    };
    if !rest.is_empty() && plain(rest) {
        return text;
    }
    if rest.chars().any(|c| c.is_control() || is_invisible(c)) {
        let mut quoted = format!("{home}$'");
        for c in rest.chars() {
            match c {
                '\'' | '\\' => {
                    quoted.push('\\');
                    quoted.push(c);
                }
                c if c.is_control() || is_invisible(c) => {
                    let n = u32::from(c);
                    if n < 0x80 {
                        quoted.push_str(&format!("\\x{n:02x}"));
                    } else if n <= 0xffff {
                        quoted.push_str(&format!("\\u{n:04x}"));
                    } else {
                        quoted.push_str(&format!("\\U{n:08x}"));
                    }
                }
                c => quoted.push(c),
            }
        }
        quoted.push('\'');
        return quoted;
    }
    format!("{home}'{}'", rest.replace('\'', r"'\''"))
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("identity file not found"),
            Self::Unreadable(why) => write!(f, "cannot read identity file: {}", printable(why, DETAIL_CHARS)),
            Self::TooOpen { mode } => write!(f, "unprotected private key file: permissions {mode:04o} are too open"),
            Self::NeedsPassphrase { format } => {
                write!(f, "the key ({format}) needs a passphrase")
            }
            Self::WrongPassphrase => f.write_str("incorrect passphrase"),
            Self::Unsupported { format } => write!(f, "unsupported key format: {format}"),
            Self::UnsupportedCipher { format, cipher } => {
                write!(
                    f,
                    "unsupported key encryption {} ({format})",
                    printable(cipher, NAME_CHARS)
                )
            }
            Self::UnsupportedAlgorithm { format, algorithm } => {
                write!(
                    f,
                    "unsupported key algorithm {} ({format})",
                    printable(algorithm, NAME_CHARS)
                )
            }
            Self::Corrupt { format, detail } => {
                write!(f, "unreadable {format} key: {}", printable(detail, DETAIL_CHARS))
            }
            Self::KdfTooCostly { format, cost, .. } => {
                write!(
                    f,
                    "key derivation too costly: {} ({format})",
                    printable(cost, NAME_CHARS)
                )
            }
        }
    }
}

pub(crate) use crate::text::{escaped as printable, is_invisible};

impl std::error::Error for KeyError {}

/// The format of key text, recognised by its armour and (for OpenSSH keys) header.
pub fn detect_format(text: &str) -> KeyFormat {
    analyze(text).format
}

/// Whether the key text is encrypted (needs a passphrase), told without decrypting it.
pub fn is_encrypted(text: &str) -> bool {
    analyze(text).encrypted
}

/// Refuses a private key file that group or others may read or write, as
/// OpenSSH does ("UNPROTECTED PRIVATE KEY FILE"). Like OpenSSH, only files
/// owned by the current user are checked (on Linux; elsewhere every file is).
///
/// Anything but a regular file (a directory, a FIFO that would block the read, a device
/// such as `/dev/zero` that never ends) is refused as unreadable first: its mode says
/// nothing about a key, and `chmod 600 /dev/zero` is no advice to give.
pub fn check_permissions(path: &Path) -> Result<(), KeyError> {
    let meta = fs::metadata(path).map_err(|e| io_error(&e))?;
    if let Some(kind) = special_file_kind(&meta) {
        return Err(KeyError::Unreadable(format!("it is {kind}, not a regular file")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 && owned_by_current_user(meta.uid()) {
            return Err(KeyError::TooOpen { mode });
        }
    }
    Ok(())
}

/// OpenSSH compares the owner with getuid(). std has no getuid() and this crate
/// forbids unsafe code, so the owner of `/proc/self` (this process) stands in on
/// Linux; elsewhere, or if /proc is missing, every file counts as ours (stricter).
#[cfg(unix)]
fn owned_by_current_user(owner: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    if cfg!(target_os = "linux")
        && let Ok(me) = fs::metadata("/proc/self")
    {
        return me.uid() == owner;
    }
    true
}

/// Loads a private key for authentication: checks permissions, detects the
/// format, then decodes with russh (handing over the passphrase only when the
/// key is encrypted; an unneeded passphrase is ignored, as OpenSSH does).
pub fn load_identity(path: &Path, passphrase: Option<&Secret>) -> Result<PrivateKey, KeyError> {
    if let Err(e) = check_permissions(path) {
        // `-i key.pub` is a slip worth naming; "chmod 600 key.pub" would mislead.
        if matches!(e, KeyError::TooOpen { .. })
            && read_key_text(path).is_ok_and(|text| detect_format(&text) == KeyFormat::PublicKey)
        {
            return Err(KeyError::Unsupported {
                format: KeyFormat::PublicKey,
            });
        }
        return Err(e);
    }
    let text = read_key_text(path)?;
    decode_identity(&text, passphrase)
}

/// [`load_identity`] for key text that is already in memory (no permission check).
pub fn decode_identity(text: &str, passphrase: Option<&Secret>) -> Result<PrivateKey, KeyError> {
    let a = analyze(text);
    let format = a.format;
    match format {
        KeyFormat::Unknown => {
            let detail = a.damage.unwrap_or_else(|| "it is not a key".into());
            return Err(KeyError::Corrupt { format, detail });
        }
        KeyFormat::PublicKey | KeyFormat::Ssh2 => return Err(KeyError::Unsupported { format }),
        _ => {}
    }
    if let Some(algorithm) = a.unusable_algorithm() {
        return Err(KeyError::UnsupportedAlgorithm { format, algorithm });
    }
    if a.unsupported_format {
        return Err(KeyError::Unsupported { format });
    }
    // Damage found in the container is reported as such, encrypted or not: no passphrase
    // (asked for, or given and then "wrong") could help, and russh, which skips lines it
    // cannot read and stops at the end of the text, might even load what is left of it.
    if let Some(detail) = a.damage {
        return Err(KeyError::Corrupt { format, detail });
    }
    if let Some(cipher) = a.unsupported_cipher {
        return Err(KeyError::UnsupportedCipher { format, cipher });
    }
    // Before asking for a passphrase: none would be of use within days.
    if let Some((cost, seconds)) = a.kdf_cost {
        return Err(KeyError::KdfTooCostly { format, cost, seconds });
    }
    let pass = if a.encrypted {
        match passphrase {
            Some(p) => Some(p.expose()),
            None => return Err(KeyError::NeedsPassphrase { format }),
        }
    } else {
        None
    };
    match decode_analysed(&a, pass) {
        Ok(key) if usable(&key.algorithm()) => Ok(key),
        Ok(key) => Err(KeyError::UnsupportedAlgorithm {
            format,
            algorithm: algorithm_name(&key.algorithm()),
        }),
        Err(e) => Err(classify(&a, &e, pass.is_some())),
    }
}

/// Maps a russh failure to a [`KeyError`], given what the detection found.
///
/// Only a key the analysis found encrypted, sound and decryptable can end in
/// NeedsPassphrase or WrongPassphrase; anything else russh trips over is damage.
fn classify(a: &Analysis, e: &russh::keys::Error, had_passphrase: bool) -> KeyError {
    use russh::keys::Error as E;
    let format = a.format;
    if let Some(detail) = &a.damage {
        return KeyError::Corrupt {
            format,
            detail: detail.clone(),
        };
    }
    match e {
        E::UnknownAlgorithm(oid) => {
            let algorithm = oid_name(&oid.to_string());
            return KeyError::UnsupportedAlgorithm { format, algorithm };
        }
        E::KeyIsEncrypted if a.encrypted && !had_passphrase => return KeyError::NeedsPassphrase { format },
        E::KeyIsEncrypted => {
            // russh found encryption the analysis did not (or wanted a passphrase it was
            // given): the markings in the file contradict each other.
            return KeyError::Corrupt {
                format,
                detail: format!("it is marked as encrypted in a way a {format} key cannot be"),
            };
        }
        _ => {}
    }
    if had_passphrase && a.encrypted {
        // The container was checked and its cipher is supported, so what failed
        // is the decryption: a checkint mismatch or AEAD tag failure (OpenSSH),
        // a MAC mismatch (PuTTY), bad padding or garbage plaintext (PEM, PKCS#8).
        let wrong = match format {
            KeyFormat::OpenSsh { .. } => matches!(e, E::SshKey(ssh_key::Error::Crypto)),
            // Only the MAC check: a missing or malformed line is also a Ppk error.
            KeyFormat::Putty => {
                matches!(e, E::SshKey(ssh_key::Error::Ppk(p)) if p.to_string() == "incorrect MAC")
            }
            KeyFormat::PemRsa { .. } | KeyFormat::PemEc { .. } | KeyFormat::Pkcs8Encrypted => true,
            _ => false,
        };
        if wrong {
            return KeyError::WrongPassphrase;
        }
    }
    KeyError::Corrupt {
        format,
        detail: explain(e),
    }
}

/// A russh error in words, with the original text kept for bug reports.
fn explain(e: &russh::keys::Error) -> String {
    use russh::keys::Error as E;
    let what = match e {
        E::Decode(_) => "its base64 text is damaged or cut short",
        E::CouldNotReadKey => "no key data was found between its BEGIN and END lines",
        E::SshKey(ssh_key::Error::Encoding(_)) | E::SshEncoding(_) => "its key data is cut short or damaged",
        E::SshKey(ssh_key::Error::PublicKey) => "its private and public halves do not match",
        E::Der(_) | E::Pkcs1(_) | E::Pkcs8(_) | E::Sec1(_) | E::Spki(_) => "its ASN.1 (DER) structure is damaged",
        _ => "it could not be decoded",
    };
    format!("{what} ({e})")
}

/// How a key algorithm is named in messages: the SSH name, except for DSA,
/// which PKCS#8 files name by OID and which users know as DSA.
fn algorithm_name(algorithm: &Algorithm) -> String {
    match algorithm {
        Algorithm::Dsa => "DSA".to_string(),
        other => other.as_str().to_string(),
    }
}

/// Decodes what [`analyze`] found sound. sqltun decodes OpenSSH keys, legacy-encrypted
/// PEM keys and the EC keys of every format itself (with ssh-key's and RustCrypto's
/// ciphers and curves), to read what russh does not; the rest goes to russh.
fn decode_analysed(a: &Analysis, pass: Option<&str>) -> Result<PrivateKey, russh::keys::Error> {
    match a.format {
        KeyFormat::OpenSsh { .. } => Ok(decode_openssh(&a.der, pass)?),
        KeyFormat::PemRsa { encrypted } | KeyFormat::PemEc { encrypted } => {
            let plain = match (&a.dek, pass) {
                (Some((cipher, iv)), Some(pass)) => decrypt_legacy_pem(&a.der, cipher, iv, pass)?,
                (Some(_), None) => return Err(russh::keys::Error::KeyIsEncrypted),
                (None, _) if encrypted => return Err(russh::keys::Error::CouldNotReadKey),
                (None, _) => Zeroizing::new(a.der.to_vec()),
            };
            if matches!(a.format, KeyFormat::PemEc { .. }) {
                decode_sec1(&plain, None)
            } else {
                decode_secret_key(&pem_text("RSA PRIVATE KEY", &plain), None)
            }
        }
        KeyFormat::Pkcs8 => decode_pkcs8(&a.der),
        KeyFormat::Pkcs8Encrypted => {
            let pass = pass.ok_or(russh::keys::Error::KeyIsEncrypted)?;
            let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(a.der.as_slice())?;
            decode_pkcs8(info.decrypt(pass)?.as_bytes())
        }
        _ => decode_secret_key(&a.text, pass),
    }
}

/// DER as PEM text, for russh.
fn pem_text(label: &str, der: &[u8]) -> Zeroizing<String> {
    let body = Zeroizing::new(STANDARD.encode(der));
    Zeroizing::new(format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.as_str()
    ))
}

/// Unencrypted PKCS#8: EC keys are decoded here (their scalar normalised), others by russh.
fn decode_pkcs8(der: &[u8]) -> Result<PrivateKey, russh::keys::Error> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(der)?;
    if info.algorithm.oid == EC_PUBLIC_KEY {
        let curve = info.algorithm.parameters_oid()?;
        return decode_sec1(info.private_key.as_bytes(), Some(curve));
    }
    decode_secret_key(&pem_text("PRIVATE KEY", der), None)
}

/// id-ecPublicKey, the PKCS#8 algorithm of every EC key.
const EC_PUBLIC_KEY: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// A SEC1 ECPrivateKey (RFC 5915) on a named NIST curve (given here, or in the key). The
/// scalar is normalised to the field width first: writers differ on leading zeros, and a
/// scalar that is one byte short (one key in 256) is still the same key. Keys with explicit
/// curve parameters go to russh.
fn decode_sec1(der: &[u8], curve: Option<pkcs8::ObjectIdentifier>) -> Result<PrivateKey, russh::keys::Error> {
    use ssh_key::private::{EcdsaKeypair, KeypairData};
    // The sec1 crate reads named curves only.
    let key = match sec1::EcPrivateKey::try_from(der) {
        Ok(key) => key,
        Err(_) if curve.is_none() => return decode_secret_key(&pem_text("EC PRIVATE KEY", der), None),
        Err(e) => return Err(e.into()),
    };
    let Some(curve) = curve.or_else(|| key.parameters.and_then(|p| p.named_curve())) else {
        return decode_secret_key(&pem_text("EC PRIVATE KEY", der), None);
    };
    let width = match curve.to_string().as_str() {
        "1.2.840.10045.3.1.7" => 32,
        "1.3.132.0.34" => 48,
        "1.3.132.0.35" => 66,
        _ => return Err(russh::keys::Error::UnknownAlgorithm(curve)),
    };
    let scalar = scalar_to_width(key.private_key, width).ok_or(russh::keys::Error::KeyIsCorrupt)?;
    let key = sec1::EcPrivateKey {
        private_key: &scalar,
        ..key
    };
    // The conversions check the curve named in the key and the public key it holds, if any.
    let keypair = match width {
        32 => {
            let sk = p256::SecretKey::try_from(key)?;
            EcdsaKeypair::NistP256 {
                public: sk.public_key().into(),
                private: sk.into(),
            }
        }
        48 => {
            let sk = p384::SecretKey::try_from(key)?;
            EcdsaKeypair::NistP384 {
                public: sk.public_key().into(),
                private: sk.into(),
            }
        }
        _ => {
            let sk = p521::SecretKey::try_from(key)?;
            EcdsaKeypair::NistP521 {
                public: sk.public_key().into(),
                private: sk.into(),
            }
        }
    };
    Ok(PrivateKey::new(KeypairData::Ecdsa(keypair), "")?)
}

/// A big-endian scalar at exactly `width` bytes: leading zeros stripped, then left-padded;
/// None if it does not fit.
fn scalar_to_width(scalar: &[u8], width: usize) -> Option<Zeroizing<Vec<u8>>> {
    let start = scalar.iter().position(|&b| b != 0).unwrap_or(scalar.len());
    let digits = scalar.get(start..)?;
    let pad = width.checked_sub(digits.len())?;
    let mut out = Zeroizing::new(vec![0u8; width]);
    out.get_mut(pad..)?.copy_from_slice(digits);
    Some(out)
}

/// A legacy PEM cipher (`DEK-Info`) OpenSSL writes and OpenSSH reads: key length and block
/// (= IV) size.
struct LegacyCipher {
    key: usize,
    block: usize,
}

fn legacy_pem_cipher(name: &str) -> Option<LegacyCipher> {
    let (key, block) = match name.to_ascii_uppercase().as_str() {
        "AES-128-CBC" => (16, 16),
        "AES-192-CBC" => (24, 16),
        "AES-256-CBC" => (32, 16),
        "DES-EDE3-CBC" => (24, 8),
        _ => return None,
    };
    Some(LegacyCipher { key, block })
}

/// Decrypts a legacy PEM body (`Proc-Type: 4,ENCRYPTED`): the key comes from OpenSSL's
/// EVP_BytesToKey with MD5, one iteration, the IV's first 8 bytes as salt.
fn decrypt_legacy_pem(
    body: &[u8],
    cipher: &str,
    iv_hex: &str,
    pass: &str,
) -> Result<Zeroizing<Vec<u8>>, russh::keys::Error> {
    use aes::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
    use md5::{Digest, Md5};
    let spec = legacy_pem_cipher(cipher).ok_or(russh::keys::Error::CouldNotReadKey)?;
    let iv = data_encoding::HEXLOWER_PERMISSIVE.decode(iv_hex.as_bytes())?;
    let salt = iv.get(..8).ok_or(russh::keys::Error::CouldNotReadKey)?;
    let mut key = Zeroizing::new(Vec::with_capacity(spec.key + 16));
    let mut block = Zeroizing::new(Vec::new());
    while key.len() < spec.key {
        let mut md5 = Md5::new();
        md5.update(block.as_slice());
        md5.update(pass.as_bytes());
        md5.update(salt);
        *block = md5.finalize().to_vec();
        key.extend_from_slice(&block);
    }
    key.truncate(spec.key);
    let mut buf = Zeroizing::new(body.to_vec());
    let bad_key = |_| russh::keys::Error::CouldNotReadKey;
    let len = match cipher.to_ascii_uppercase().as_str() {
        "AES-128-CBC" => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)?
            .len(),
        "AES-192-CBC" => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)?
            .len(),
        "AES-256-CBC" => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)?
            .len(),
        _ => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)?
            .len(),
    };
    buf.truncate(len);
    Ok(buf)
}

/// An OpenSSH-format key (PROTOCOL.key), decrypted with ssh-key's KDF and ciphers (any
/// `ssh-keygen -Z` cipher, `3des-cbc` included). The private section is decoded here
/// rather than by ssh-key, which refuses a P-256 scalar that ssh-keygen wrote one byte
/// short (its leading zero dropped, as an mpint is: one key in 256); every check ssh-key
/// makes (checkints, public half, padding) is made here too.
fn decode_openssh(data: &[u8], pass: Option<&str>) -> Result<PrivateKey, ssh_key::Error> {
    use ssh_key::{Cipher, Kdf, encoding::Error as Enc};
    let short = || ssh_key::Error::from(Enc::Length);
    let rest = data
        .strip_prefix(b"openssh-key-v1\0")
        .ok_or(ssh_key::Error::FormatEncoding)?;
    let mut wire = Wire(rest);
    let cipher_name = wire.string().ok_or_else(short)?;
    let kdf_name = wire.string().ok_or_else(short)?;
    let kdf_options = wire.bytes().ok_or_else(short)?;
    if wire.u32() != Some(1) {
        return Err(ssh_key::Error::FormatEncoding);
    }
    let public = PublicKey::from_bytes(wire.bytes().ok_or_else(short)?)?;
    let private = wire.bytes().ok_or_else(short)?;
    let tag = wire.0;
    let cipher = Cipher::new(cipher_name)?;
    if cipher.is_none() {
        if kdf_name != "none" || !tag.is_empty() {
            return Err(ssh_key::Error::FormatEncoding);
        }
        return decode_openssh_private(private, public.key_data(), 8);
    }
    let mut options = Wire(kdf_options);
    let (Some(salt), Some(rounds)) = (options.bytes(), options.u32()) else {
        return Err(short());
    };
    if kdf_name != "bcrypt" {
        return Err(ssh_key::Error::AlgorithmUnknown);
    }
    let kdf = Kdf::Bcrypt {
        salt: salt.to_vec(),
        rounds,
    };
    let tag = match cipher.has_tag() {
        true => Some(ssh_key::cipher::Tag::try_from(tag).map_err(|_| short())?),
        false if tag.is_empty() => None,
        false => return Err(ssh_key::Error::FormatEncoding),
    };
    let pass = pass.ok_or(ssh_key::Error::Encrypted)?;
    let (key, iv) = kdf.derive_key_and_iv(cipher, pass)?;
    let mut plain = Zeroizing::new(private.to_vec());
    cipher.decrypt(&key, &iv, &mut plain, tag)?;
    decode_openssh_private(&plain, public.key_data(), cipher.block_size())
}

/// The decrypted private section: checkint twice, the key pair, the comment, padding 1, 2, 3…
fn decode_openssh_private(
    section: &[u8],
    public: &ssh_key::public::KeyData,
    block_size: usize,
) -> Result<PrivateKey, ssh_key::Error> {
    use ssh_key::encoding::{Decode, Error as Enc};
    use ssh_key::private::KeypairData;
    let short = || ssh_key::Error::from(Enc::Length);
    if block_size == 0 || !section.len().is_multiple_of(block_size) {
        return Err(short());
    }
    let mut wire = Wire(section);
    if wire.u32() != wire.u32() {
        // A wrong passphrase (or damage): the two checkints differ.
        return Err(ssh_key::Error::Crypto);
    }
    let keypair = match Wire(wire.0).string() {
        Some(kind) if kind.starts_with("ecdsa-sha2-nistp") => {
            // string kind, string curve, string Q, mpint d: d re-encoded at the field width.
            let (kind, curve, point) = (wire.bytes(), wire.bytes(), wire.bytes());
            let (Some(kind), Some(curve), Some(point), Some(scalar)) = (kind, curve, point, wire.bytes()) else {
                return Err(short());
            };
            let width = match curve {
                b"nistp256" => 32,
                b"nistp384" => 48,
                b"nistp521" => 66,
                _ => return Err(ssh_key::Error::AlgorithmUnknown),
            };
            let scalar = scalar_to_width(scalar, width).ok_or(ssh_key::Error::FormatEncoding)?;
            let mut blob = Zeroizing::new(Vec::new());
            for field in [kind, curve, point, scalar.as_slice()] {
                blob.extend_from_slice(&u32::try_from(field.len()).map_err(|_| short())?.to_be_bytes());
                blob.extend_from_slice(field);
            }
            KeypairData::decode(&mut blob.as_slice())?
        }
        _ => {
            let mut reader = wire.0;
            let keypair = KeypairData::decode(&mut reader)?;
            wire = Wire(reader);
            keypair
        }
    };
    if *public != ssh_key::public::KeyData::try_from(&keypair)? {
        return Err(ssh_key::Error::PublicKey);
    }
    let comment = String::from_utf8_lossy(wire.bytes().ok_or_else(short)?).into_owned();
    let padding = wire.0;
    let expected = (1..=u8::MAX).take(padding.len());
    if padding.len() >= block_size || !padding.iter().copied().eq(expected) {
        return Err(ssh_key::Error::FormatEncoding);
    }
    PrivateKey::new(keypair, comment)
}

/// Signs publickey authentication with a key from a file, for presenting its certificate through
/// russh's `authenticate_certificate_with`: unlike `authenticate_openssh_cert`, which names an RSA
/// certificate `ssh-rsa-cert-v01@openssh.com` (SHA-1, refused by OpenSSH 8.8 and later), that takes
/// the RSA hash the server announced, naming it `rsa-sha2-512-cert-v01@openssh.com` (or -256).
#[derive(Debug, Clone)]
pub struct KeySigner(pub std::sync::Arc<PrivateKey>);

impl russh::Signer for KeySigner {
    type Error = russh::AgentAuthError;

    #[allow(clippy::manual_async_fn)]
    fn auth_sign(
        &mut self,
        _identity: &russh::keys::agent::AgentIdentity,
        hash: Option<russh::keys::HashAlg>,
        mut to_sign: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        let key = self.0.clone();
        async move {
            use signature::Signer as _;
            use ssh_key::encoding::Encode as _;
            let signed = match key.key_data() {
                ssh_key::private::KeypairData::Rsa(pair) => (pair, hash).try_sign(&to_sign),
                _ => key.try_sign(&to_sign),
            };
            let blob = signed
                .map_err(ssh_key::Error::from)
                .and_then(|s| Ok(s.encode_vec()?))
                .map_err(russh::keys::Error::from)?;
            // The signature is appended as an SSH string, as an agent's is.
            let len = u32::try_from(blob.len()).map_err(|_| russh::keys::Error::IndexOutOfBounds)?;
            to_sign.extend_from_slice(&len.to_be_bytes());
            to_sign.extend_from_slice(&blob);
            Ok(to_sign)
        }
    }
}

/// Signs for a certificate with the plain key an agent holds: the agent only knows the key it was
/// given, not a certificate issued (or renewed) for it later, so the request names the key, as
/// OpenSSH's client does.
pub(crate) struct AgentKeySigner<'a> {
    pub(crate) agent: &'a mut russh::keys::agent::client::AgentClient<tokio::net::UnixStream>,
    pub(crate) key: PublicKey,
}

impl russh::Signer for AgentKeySigner<'_> {
    type Error = russh::AgentAuthError;

    #[allow(clippy::manual_async_fn)]
    fn auth_sign(
        &mut self,
        _identity: &russh::keys::agent::AgentIdentity,
        hash: Option<russh::keys::HashAlg>,
        to_sign: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        async move {
            let key = russh::keys::agent::AgentIdentity::from(self.key.clone());
            Ok(self.agent.sign_request(&key, hash, to_sign).await?)
        }
    }
}

/// Key algorithms russh can sign with from a key file.
fn usable(algorithm: &Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } | Algorithm::Rsa { .. }
    )
}

/// The public half of an identity without its passphrase: from the file itself
/// when it stores the public key in clear (OpenSSH and PuTTY formats, an
/// unencrypted key, or a public key given as identity), else from `FILE.pub`.
///
/// The file's own public section comes first, as in OpenSSH's
/// `sshkey_load_public`: it cannot be stale, while a `.pub` file can.
pub fn public_key_for(path: &Path) -> Option<PublicKey> {
    if let Ok(text) = read_key_text(path) {
        let a = analyze(&text);
        if let Some(public) = a.public {
            return Some(public);
        }
        if !a.encrypted
            && a.format != KeyFormat::Unknown
            && let Ok(key) = decode_identity(&text, None)
        {
            return Some(key.public_key().clone());
        }
    }
    let mut pub_path = path.as_os_str().to_os_string();
    pub_path.push(".pub");
    let text = read_key_text(Path::new(&pub_path)).ok()?;
    parse_public_line(&text)
}

/// OpenSSH's default identity files, in the order `ssh -G` lists them
/// (OpenSSH 9.2). Files that do not exist are the caller's to skip.
pub fn default_identity_paths(home: &Path) -> Vec<PathBuf> {
    [
        "id_rsa",
        "id_ecdsa",
        "id_ecdsa_sk",
        "id_ed25519",
        "id_ed25519_sk",
        "id_xmss",
        "id_dsa",
    ]
    .iter()
    .map(|name| home.join(".ssh").join(name))
    .collect()
}

fn io_error(e: &io::Error) -> KeyError {
    match e.kind() {
        io::ErrorKind::NotFound => KeyError::NotFound,
        io::ErrorKind::IsADirectory => KeyError::Unreadable("it is a directory".into()),
        _ => KeyError::Unreadable(e.to_string()),
    }
}

/// What a file that is not a regular file is, in words for a message ("a FIFO (named
/// pipe)"); `None` for a regular file.
pub(crate) fn special_file_kind(meta: &fs::Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if kind.is_char_device() {
            return Some("a character device");
        }
        if kind.is_block_device() {
            return Some("a block device");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// Opens `path` for reading if it is a regular file, without ever blocking: a FIFO is
/// opened non-blocking (an open for reading would otherwise wait for a writer forever)
/// and then refused, like directories and devices, with `InvalidInput` and a message
/// such as "it is a FIFO (named pipe), not a regular file". The check is made on the
/// opened file, so the path cannot be swapped in between. With `allow_null`, the null
/// device (`/dev/null`, which OpenSSH configurations use for "no file") is accepted too.
pub(crate) fn open_regular(path: &Path, allow_null: bool) -> io::Result<(File, fs::Metadata)> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Reads of regular files ignore O_NONBLOCK; it only keeps the open from waiting.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    match special_file_kind(&meta) {
        None => Ok((file, meta)),
        Some(_) if allow_null && is_null_device(&meta) => Ok((file, meta)),
        Some(kind) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file"),
        )),
    }
}

/// Whether `meta` is the null device (whatever name it was opened under).
pub(crate) fn is_null_device(meta: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        meta.file_type().is_char_device()
            && fs::metadata("/dev/null")
                .is_ok_and(|null| null.file_type().is_char_device() && null.rdev() == meta.rdev())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// Reads a key file as text, refusing anything but a regular file of at most
/// [`MAX_KEY_FILE_LEN`] bytes; the buffer is wiped when dropped.
fn read_key_text(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    let (file, meta) = open_regular(path, false).map_err(|e| io_error(&e))?;
    // Refused unread when its size says so; the bounded read covers a file still growing.
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(KeyError::Corrupt {
            format: KeyFormat::Unknown,
            detail: format!(
                "it is {} bytes long, far too large for a key file (at most 1 MiB)",
                meta.len()
            ),
        });
    }
    let mut buf = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_error(&e))?;
    if buf.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyError::Corrupt {
            format: KeyFormat::Unknown,
            detail: "it is larger than 1 MiB, far too large for a key file".into(),
        });
    }
    match std::str::from_utf8(&buf) {
        Ok(text) => Ok(Zeroizing::new(text.to_string())),
        Err(_) => Err(KeyError::Corrupt {
            format: KeyFormat::Unknown,
            detail: "it is binary data, not a text key file (a DER key must be converted \
                     to PEM first, e.g. with `openssl pkey -inform DER`)"
                .into(),
        }),
    }
}

/// What can be told about key text without a passphrase.
struct Analysis {
    format: KeyFormat,
    encrypted: bool,
    /// The format (or its version) is one russh cannot decode at all.
    unsupported_format: bool,
    /// The key is encrypted with something russh cannot decrypt (named).
    unsupported_cipher: Option<String>,
    /// The key algorithm as stated in clear (OpenSSH and PuTTY headers, PEM DSA).
    algorithm: Option<Algorithm>,
    /// The public key, where the file holds it in clear.
    public: Option<PublicKey>,
    /// Damage found in the container, before any decryption.
    damage: Option<String>,
    /// The passphrase derivation asks for more work than any key tool writes: what it
    /// asks for ("4294967295 bcrypt rounds") and roughly how many seconds it would take.
    kdf_cost: Option<(String, u64)>,
    /// The key re-assembled for russh: the armour lines and the trimmed body.
    text: Zeroizing<String>,
    /// The armoured body, decoded (OpenSSH, PEM and PKCS#8 keys whose armour is sound).
    der: Zeroizing<Vec<u8>>,
    /// A legacy PEM key's `DEK-Info`: the cipher and the IV (hex).
    dek: Option<(String, String)>,
}

impl Analysis {
    fn new(format: KeyFormat) -> Self {
        Analysis {
            format,
            encrypted: false,
            unsupported_format: false,
            unsupported_cipher: None,
            algorithm: None,
            public: None,
            damage: None,
            kdf_cost: None,
            text: Zeroizing::new(String::new()),
            der: Zeroizing::new(Vec::new()),
            dek: None,
        }
    }

    fn unknown(detail: impl Into<String>) -> Self {
        let mut a = Analysis::new(KeyFormat::Unknown);
        a.damage = Some(detail.into());
        a
    }

    /// The stated algorithm, if sqltun cannot sign with it.
    fn unusable_algorithm(&self) -> Option<String> {
        let algorithm = self
            .public
            .as_ref()
            .map(PublicKey::algorithm)
            .or_else(|| self.algorithm.clone())?;
        (!usable(&algorithm)).then(|| algorithm_name(&algorithm))
    }
}

fn analyze(text: &str) -> Analysis {
    // A byte-order mark (Windows editors) is not whitespace to trim().
    let lines: Vec<&str> = text
        .trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let Some(first) = lines.first() else {
        return Analysis::unknown("the file is empty");
    };
    if first.starts_with("PuTTY-User-Key-File-") {
        return analyze_putty(&lines);
    }
    let private = ["OPENSSH", "RSA", "EC", "DSA", "", "ENCRYPTED"];
    let found = find_armour(&lines, "-----", |label| {
        label
            .strip_suffix("PRIVATE KEY")
            .is_some_and(|kind| private.contains(&kind.trim_end()))
    });
    if let Some(block) = found {
        return analyze_pem(&block);
    }
    if let Some(block) = find_armour(&lines, "----", |l| l == "SSH2 ENCRYPTED PRIVATE KEY") {
        return analyze_ssh2(&block);
    }
    let public_armour = find_armour(&lines, "-----", |l| l.ends_with("PUBLIC KEY"))
        .or_else(|| find_armour(&lines, "----", |l| l == "SSH2 PUBLIC KEY"));
    if public_armour.is_some() {
        return Analysis::new(KeyFormat::PublicKey);
    }
    if let Some(line) = lines.iter().find(|l| !l.starts_with('#'))
        && looks_like_public_line(line)
    {
        let mut a = Analysis::new(KeyFormat::PublicKey);
        a.public = PublicKey::from_openssh(line).ok();
        return a;
    }
    if let Some(other) = find_armour(&lines, "-----", |_| true) {
        return Analysis::unknown(format!(
            "it holds a PEM \"{}\" block, not a private key",
            printable(&other.label, NAME_CHARS)
        ));
    }
    Analysis::unknown("it has no private-key header such as -----BEGIN OPENSSH PRIVATE KEY-----")
}

/// `ssh-ed25519 AAAA... comment` (also certificates and FIDO keys).
fn looks_like_public_line(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
        return false;
    };
    let kind_ok = kind.chars().all(|c| c.is_ascii_alphanumeric() || "@.-_".contains(c))
        && ["ssh-", "ecdsa-", "sk-", "rsa-"].iter().any(|p| kind.starts_with(p));
    kind_ok && blob.starts_with("AAAA")
}

fn parse_public_line(text: &str) -> Option<PublicKey> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    PublicKey::from_openssh(line).ok()
}

/// One armoured block: `-----BEGIN LABEL-----` (or the four-dash SSH2 form).
struct Armour {
    label: String,
    headers: Vec<(String, String)>,
    /// The base64 body, joined, wiped on drop.
    body: Zeroizing<String>,
    /// The body lines as found (trimmed).
    body_lines: Vec<String>,
    /// Whether the END line was found.
    complete: bool,
    /// A body line held characters that are not base64.
    stray: bool,
}

impl Drop for Armour {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.body_lines.zeroize();
    }
}

fn armour_label<'a>(line: &'a str, dashes: &str, word: &str) -> Option<&'a str> {
    let inner = line.strip_prefix(dashes)?.strip_suffix(dashes)?;
    if inner.starts_with('-') || inner.ends_with('-') {
        return None;
    }
    inner.trim().strip_prefix(word).map(str::trim)
}

fn find_armour(lines: &[&str], dashes: &str, wanted: impl Fn(&str) -> bool) -> Option<Armour> {
    let start = lines
        .iter()
        .position(|l| armour_label(l, dashes, "BEGIN ").is_some_and(&wanted))?;
    let label = armour_label(lines.get(start)?, dashes, "BEGIN ")?.to_string();
    let mut block = Armour {
        label,
        headers: Vec::new(),
        body: Zeroizing::new(String::new()),
        body_lines: Vec::new(),
        complete: false,
        stray: false,
    };
    let mut continued = false;
    for line in lines.iter().skip(start + 1) {
        if armour_label(line, dashes, "END ").is_some() {
            block.complete = true;
            break;
        }
        if continued {
            // RFC 4716 header continuation (a header line ending in `\`).
            continued = line.ends_with('\\');
        } else if let Some((name, value)) = line.split_once(':') {
            continued = value.ends_with('\\');
            block.headers.push((name.trim().to_string(), value.trim().to_string()));
        } else {
            if !line.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)) {
                block.stray = true;
            }
            block.body.push_str(line);
            block.body_lines.push((*line).to_string());
        }
    }
    Some(block)
}

impl Armour {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The block as russh wants it: exact armour lines, headers, then the body.
    fn reassemble(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(format!("-----BEGIN {}-----\n", self.label));
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {value}\n"));
        }
        for line in &self.body_lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&format!("-----END {}-----\n", self.label));
        text
    }

    /// The whole body decoded, or a description of the damage.
    fn decode(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        if !self.complete {
            return Err(format!(
                "the -----END {}----- line is missing (the file looks cut short)",
                self.label
            ));
        }
        if self.stray {
            return Err("its base64 text holds stray characters".into());
        }
        STANDARD
            .decode(self.body.as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| "its base64 text is damaged or cut short".into())
    }

    /// As much of the body as decodes, for reading headers of a cut-short file.
    fn decode_prefix(&self) -> Zeroizing<Vec<u8>> {
        let clean: Zeroizing<String> = Zeroizing::new(
            self.body
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "+/".contains(*c))
                .collect(),
        );
        let whole = clean.len() / 4 * 4;
        let prefix = clean.get(..whole).unwrap_or_default();
        Zeroizing::new(STANDARD.decode(prefix).unwrap_or_default())
    }
}

fn analyze_pem(block: &Armour) -> Analysis {
    let kind = block.label.strip_suffix("PRIVATE KEY").unwrap_or_default().trim();
    let proc_encrypted = block.header("Proc-Type").is_some_and(|v| v.contains("ENCRYPTED"));
    let dek = block.header("DEK-Info");
    let encrypted = proc_encrypted || dek.is_some();
    let format = match kind {
        "OPENSSH" => return analyze_openssh(block),
        "RSA" => KeyFormat::PemRsa { encrypted },
        "EC" => KeyFormat::PemEc { encrypted },
        "DSA" => KeyFormat::PemDsa { encrypted },
        "ENCRYPTED" => return analyze_pkcs8_encrypted(block),
        _ => KeyFormat::Pkcs8,
    };
    let mut a = Analysis::new(format);
    a.text = block.reassemble();
    a.encrypted = matches!(
        format,
        KeyFormat::PemRsa { encrypted: true }
            | KeyFormat::PemEc { encrypted: true }
            | KeyFormat::PemDsa { encrypted: true }
    );
    let body = block.decode();
    a.damage = body.as_ref().err().cloned();
    if format == KeyFormat::Pkcs8 && a.damage.is_none() {
        a.damage = misplaced_pem_headers(block, format);
    }
    match format {
        KeyFormat::PemDsa { .. } => a.algorithm = Some(Algorithm::Dsa),
        KeyFormat::PemRsa { encrypted: true } | KeyFormat::PemEc { encrypted: true } => {
            match dek.and_then(|d| d.split_once(',')) {
                None => a.damage = Some("its DEK-Info header (cipher and IV) is missing".into()),
                Some((cipher, iv)) => {
                    let (cipher, iv) = (cipher.trim(), iv.trim());
                    match legacy_pem_cipher(cipher) {
                        None => a.unsupported_cipher = Some(cipher.to_string()),
                        Some(c) if iv.len() != 2 * c.block || !iv.chars().all(|c| c.is_ascii_hexdigit()) => {
                            a.damage = Some("its DEK-Info header has a malformed IV".into());
                        }
                        Some(c) if body.as_ref().is_ok_and(|b| b.is_empty() || b.len() % c.block != 0) => {
                            a.damage = Some("its encrypted data is cut short".into());
                        }
                        Some(_) => a.dek = Some((cipher.to_string(), iv.to_string())),
                    }
                }
            }
        }
        _ => {}
    }
    if let Ok(der) = body {
        a.der = der;
    }
    a
}

/// Reads SSH wire-format fields (RFC 4251) without panicking on short input.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (n, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*n))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        let (bytes, rest) = (self.0.get(..len)?, self.0.get(len..)?);
        self.0 = rest;
        Some(bytes)
    }

    fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}

/// OpenSSH format (PROTOCOL.key): `"openssh-key-v1\0"`, string ciphername,
/// string kdfname, string kdfoptions, uint32 N, N public keys in clear, then
/// the (possibly encrypted) private section.
fn analyze_openssh(block: &Armour) -> Analysis {
    let data = block.decode_prefix();
    let mut a = Analysis::new(KeyFormat::OpenSsh { encrypted: false });
    a.text = block.reassemble();
    // Damage to the armour itself (no END line, stray characters) says best what is wrong;
    // the header below is still read from what decodes, for the format and public key.
    let whole = block.decode();
    let armour_damage = whole.as_ref().err().cloned();
    let Some(rest) = data.strip_prefix(b"openssh-key-v1\0") else {
        a.damage = Some(armour_damage.unwrap_or_else(|| "it lacks the openssh-key-v1 header".into()));
        return a;
    };
    let mut wire = Wire(rest);
    let (Some(cipher), Some(kdf)) = (wire.string(), wire.string()) else {
        a.damage = Some(armour_damage.unwrap_or_else(|| "its header is cut short".into()));
        return a;
    };
    a.encrypted = cipher != "none";
    a.format = KeyFormat::OpenSsh { encrypted: a.encrypted };
    if a.encrypted && !OPENSSH_CIPHERS.contains(&cipher) {
        a.unsupported_cipher = Some(cipher.to_string());
    } else if a.encrypted && kdf != "bcrypt" {
        a.unsupported_cipher = Some(format!("{cipher} with key derivation {kdf}"));
    }
    // kdfoptions for bcrypt: string salt, uint32 rounds (what ssh-key reads, in order).
    let kdf_options = wire.bytes();
    let mut kdf_damage = None;
    if a.encrypted
        && kdf == "bcrypt"
        && let Some(options) = kdf_options
    {
        let mut options = Wire(options);
        if let (Some(salt), Some(rounds)) = (options.bytes(), options.u32()) {
            if salt.is_empty() || rounds == 0 {
                // bcrypt_pbkdf refuses these with the same error as a wrong passphrase.
                kdf_damage = Some(format!(
                    "its bcrypt key derivation is invalid ({} bytes of salt, {rounds} rounds)",
                    salt.len()
                ));
            } else if u64::from(rounds) > MAX_BCRYPT_ROUNDS {
                let seconds = u64::from(rounds) * BCRYPT_MS_PER_ROUND / 1000;
                a.kdf_cost = Some((format!("{rounds} bcrypt rounds"), seconds));
            }
        }
    }
    if wire.u32().is_some() {
        a.public = wire.bytes().and_then(|b| PublicKey::from_bytes(b).ok());
    }
    // The container parse ssh-key does, short of decrypting; an unencrypted key is decoded
    // whole, as it will be when loaded.
    a.damage = match whole {
        Err(damage) => Some(damage),
        Ok(full) => {
            let parsed = if a.encrypted {
                ssh_key::PrivateKey::from_bytes(&full).map(drop)
            } else {
                decode_openssh(&full, None).map(drop)
            };
            a.der = full;
            parsed
                .err()
                .map(|e| format!("its key data is cut short or damaged ({e})"))
                .or(kdf_damage)
                .or_else(|| misplaced_pem_headers(block, a.format))
        }
    };
    a
}

/// PEM encryption headers (`Proc-Type`, `DEK-Info`) in a block whose format has none
/// (OpenSSH, PKCS#8): russh would then decrypt the block as a PEM RSA key, and ask for a
/// passphrase that cannot help.
fn misplaced_pem_headers(block: &Armour, format: KeyFormat) -> Option<String> {
    ["Proc-Type", "DEK-Info"]
        .iter()
        .any(|name| block.header(name).is_some())
        .then(|| format!("it has PEM encryption headers (Proc-Type, DEK-Info), which a {format} key never has"))
}

fn analyze_pkcs8_encrypted(block: &Armour) -> Analysis {
    let mut a = Analysis::new(KeyFormat::Pkcs8Encrypted);
    a.text = block.reassemble();
    a.encrypted = true;
    let der = block.decode();
    match der.as_ref().map_err(Clone::clone).and_then(|der| pkcs8_scheme(der)) {
        Ok(scheme) if scheme.supported => {
            a.damage = misplaced_pem_headers(block, a.format);
            a.kdf_cost = scheme.cost;
        }
        Ok(scheme) => a.unsupported_cipher = Some(scheme.name),
        Err(damage) => a.damage = Some(damage),
    }
    if let Ok(der) = der {
        a.der = der;
    }
    a
}

/// What [`pkcs8_scheme`] finds in an EncryptedPrivateKeyInfo.
struct Pkcs8Scheme {
    /// "PBES2 (scrypt, AES-256-CBC)"
    name: String,
    /// Whether russh (the pkcs5 crate) can decrypt it.
    supported: bool,
    /// A key derivation beyond the bounds: what it asks for, and roughly how many seconds.
    cost: Option<(String, u64)>,
}

/// A DER INTEGER's contents as an unsigned number (saturating; None if negative or empty).
fn der_uint(contents: &[u8]) -> Option<u64> {
    if contents.first().is_none_or(|&b| b & 0x80 != 0) {
        return None;
    }
    Some(contents.iter().fold(0u64, |n, &b| {
        if n > u64::MAX >> 8 {
            u64::MAX
        } else {
            (n << 8) | u64::from(b)
        }
    }))
}

const INTEGER: u8 = 0x02;

/// PBKDF2-params: the iteration count beyond the bound, if it is.
fn pbkdf2_cost(fields: &[u8]) -> Option<(String, u64)> {
    let (_salt, rest) = der_tagged(fields, OCTET_STRING)?;
    let (count, _) = der_tagged(rest, INTEGER)?;
    let iterations = der_uint(count)?;
    (iterations > MAX_PBKDF2_ITERATIONS).then(|| {
        let seconds = iterations / 1_000_000 * PBKDF2_MS_PER_MILLION_ITERATIONS / 1000;
        (format!("{iterations} PBKDF2 iterations"), seconds)
    })
}

/// scrypt-params (RFC 7914): salt, N, r, p; the cost beyond the bounds, if it is.
fn scrypt_cost(params: &[u8]) -> Option<(String, u64)> {
    let (fields, _) = der_tagged(params, SEQUENCE)?;
    let (_salt, rest) = der_tagged(fields, OCTET_STRING)?;
    let (n, rest) = der_tagged(rest, INTEGER)?;
    let (r, rest) = der_tagged(rest, INTEGER)?;
    let (p, _) = der_tagged(rest, INTEGER)?;
    let (n, r, p) = (der_uint(n)?, der_uint(r)?, der_uint(p)?);
    let memory = n.saturating_mul(r).saturating_mul(128);
    let work = memory.saturating_mul(p);
    if memory <= MAX_SCRYPT_MEMORY && work <= MAX_SCRYPT_WORK {
        return None;
    }
    let seconds = work / (1 << 20) * SCRYPT_MS_PER_MIB / 1000;
    Some((
        format!("scrypt with N={n}, r={r}, p={p} ({} MiB of memory)", memory >> 20),
        seconds,
    ))
}

/// Next DER element: (tag, contents, rest), or None if cut short.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = rest
            .get(..n)?
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest.get(n..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// Like [`der`], but the element must carry `tag`.
fn der_tagged(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = der(input)?;
    (found == tag).then_some((contents, rest))
}

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;

/// Encryption scheme of an EncryptedPrivateKeyInfo (RFC 5208/8018) and whether
/// russh (the pkcs5 crate) can decrypt it; Err describes structural damage.
fn pkcs8_scheme(doc: &[u8]) -> Result<Pkcs8Scheme, String> {
    let damaged = || "its ASN.1 (DER) structure is damaged or cut short".to_string();
    let (info, trailing) = der_tagged(doc, SEQUENCE).ok_or_else(damaged)?;
    if !trailing.is_empty() {
        return Err("it has unexpected data after the key".into());
    }
    let (alg, rest) = der_tagged(info, SEQUENCE).ok_or_else(damaged)?;
    der_tagged(rest, OCTET_STRING).ok_or_else(damaged)?;
    let (scheme, params) = der_tagged(alg, OID).ok_or_else(damaged)?;
    let scheme = oid_string(scheme);
    if scheme != "1.2.840.113549.1.5.13" {
        return Ok(Pkcs8Scheme {
            name: oid_name(&scheme),
            supported: false,
            cost: None,
        });
    }
    let (pbes2, _) = der_tagged(params, SEQUENCE).ok_or_else(damaged)?;
    let (kdf, rest) = der_tagged(pbes2, SEQUENCE).ok_or_else(damaged)?;
    let (cipher, _) = der_tagged(rest, SEQUENCE).ok_or_else(damaged)?;
    let (kdf_oid, kdf_params) = der_tagged(kdf, OID).ok_or_else(damaged)?;
    let (cipher_oid, _) = der_tagged(cipher, OID).ok_or_else(damaged)?;
    let (kdf_oid, cipher_oid) = (oid_string(kdf_oid), oid_string(cipher_oid));
    let mut cost = None;
    let (kdf_name, kdf_ok) = match kdf_oid.as_str() {
        "1.2.840.113549.1.5.12" => {
            // PBKDF2-params: salt, iterations, [keyLength], [prf] (default HMAC-SHA1).
            let (fields, _) = der_tagged(kdf_params, SEQUENCE).ok_or_else(damaged)?;
            cost = pbkdf2_cost(fields);
            let mut prf = "1.2.840.113549.2.7".to_string();
            let mut rest = fields;
            while let Some((tag, contents, next)) = der(rest) {
                if tag == SEQUENCE {
                    let (oid, _) = der_tagged(contents, OID).ok_or_else(damaged)?;
                    prf = oid_string(oid);
                }
                rest = next;
            }
            let ok = [
                "1.2.840.113549.2.7",
                "1.2.840.113549.2.8",
                "1.2.840.113549.2.9",
                "1.2.840.113549.2.10",
                "1.2.840.113549.2.11",
            ]
            .contains(&prf.as_str());
            (format!("PBKDF2-{}", oid_name(&prf)), ok)
        }
        "1.3.6.1.4.1.11591.4.11" => {
            cost = scrypt_cost(kdf_params);
            ("scrypt".to_string(), true)
        }
        other => (oid_name(other), false),
    };
    let cipher_ok = [
        "2.16.840.1.101.3.4.1.2",
        "2.16.840.1.101.3.4.1.22",
        "2.16.840.1.101.3.4.1.42",
        "2.16.840.1.101.3.4.1.6",
        "2.16.840.1.101.3.4.1.46",
        "1.2.840.113549.3.7",
    ]
    .contains(&cipher_oid.as_str());
    Ok(Pkcs8Scheme {
        name: format!("PBES2 ({kdf_name}, {})", oid_name(&cipher_oid)),
        supported: kdf_ok && cipher_ok,
        cost,
    })
}

/// DER object identifier contents to dotted form.
fn oid_string(bytes: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in bytes {
        value = value.wrapping_shl(7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// Names for the OIDs that show up in key files.
fn oid_name(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.5.13" => "PBES2",
        "1.2.840.113549.1.5.3" => "PBES1 (MD5, DES-CBC)",
        "1.2.840.113549.1.5.10" => "PBES1 (SHA1, DES-CBC)",
        "1.2.840.113549.1.12.1.3" => "PKCS#12 PBE (SHA1, 3DES)",
        "1.2.840.113549.1.12.1.6" => "PKCS#12 PBE (SHA1, RC2-40)",
        "1.2.840.113549.2.7" => "HMAC-SHA1",
        "1.2.840.113549.2.8" => "HMAC-SHA224",
        "1.2.840.113549.2.9" => "HMAC-SHA256",
        "1.2.840.113549.2.10" => "HMAC-SHA384",
        "1.2.840.113549.2.11" => "HMAC-SHA512",
        "2.16.840.1.101.3.4.1.2" => "AES-128-CBC",
        "2.16.840.1.101.3.4.1.22" => "AES-192-CBC",
        "2.16.840.1.101.3.4.1.42" => "AES-256-CBC",
        "2.16.840.1.101.3.4.1.6" => "AES-128-GCM",
        "2.16.840.1.101.3.4.1.46" => "AES-256-GCM",
        "1.2.840.113549.3.7" => "DES-EDE3-CBC",
        "1.3.14.3.2.7" => "DES-CBC",
        "1.2.840.10040.4.1" => "DSA",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.3.101.113" => "Ed448",
        "1.3.132.0.10" => "ECDSA secp256k1",
        "1.2.840.10045.3.1.1" => "ECDSA P-192",
        "1.3.132.0.33" => "ECDSA P-224",
        _ => return format!("OID {oid}"),
    };
    name.to_string()
}

/// PuTTY `.ppk`: `PuTTY-User-Key-File-<version>: <algorithm>`, `Key: value`
/// lines, and `Public-Lines`/`Private-Lines` counts followed by base64 lines.
fn analyze_putty(lines: &[&str]) -> Analysis {
    let mut a = Analysis::new(KeyFormat::Putty);
    let mut text = Zeroizing::new(String::new());
    for line in lines {
        text.push_str(line);
        // ssh-key splits on ": ", so an empty value ("Comment: ") keeps its space.
        text.push_str(if line.ends_with(':') { " \n" } else { "\n" });
    }
    a.text = text;
    let header = lines.first().copied().unwrap_or_default();
    let (version, algorithm) = header
        .strip_prefix("PuTTY-User-Key-File-")
        .and_then(|h| h.split_once(':'))
        .unwrap_or_default();
    a.algorithm = Algorithm::new(algorithm.trim()).ok();
    let mut encryption = None;
    let mut kdf = None;
    let mut argon2 = Argon2Lines::default();
    let mut mac = None;
    let mut public = None;
    let mut private_len = None;
    let mut complete = true;
    let mut rest = lines.iter().skip(1);
    while let Some(line) = rest.next() {
        let Some((name, value)) = line.split_once(':') else {
            complete = false;
            continue;
        };
        let value = value.trim();
        match name {
            "Encryption" => encryption = Some(value),
            "Key-Derivation" => kdf = Some(value),
            // The last of repeated lines counts, as in ssh-key.
            "Argon2-Memory" => argon2.memory = Some(value),
            "Argon2-Passes" => argon2.passes = Some(value),
            "Argon2-Parallelism" => argon2.parallelism = Some(value),
            "Argon2-Salt" => argon2.salt = Some(value),
            "Private-MAC" => mac = Some(value),
            "Public-Lines" | "Private-Lines" => {
                let count = value.parse::<usize>().unwrap_or(0);
                let body: Zeroizing<String> = Zeroizing::new(rest.by_ref().take(count).copied().collect());
                let decoded = STANDARD.decode(body.as_bytes()).ok().map(Zeroizing::new);
                complete &= count > 0 && decoded.is_some();
                if name == "Public-Lines" {
                    public = decoded;
                } else {
                    private_len = decoded.map(|d| d.len());
                }
            }
            _ => {}
        }
    }
    a.public = public.and_then(|b| PublicKey::from_bytes(&b).ok());
    let encryption = encryption.unwrap_or("none");
    a.encrypted = encryption != "none";
    if version != "2" && version != "3" {
        a.unsupported_format = true;
    } else if a.encrypted && encryption != "aes256-cbc" {
        a.unsupported_cipher = Some(encryption.to_string());
    } else if a.encrypted && version == "3" {
        let kdf = kdf.unwrap_or("(none)");
        if !["Argon2id", "Argon2i", "Argon2d"].contains(&kdf) {
            a.unsupported_cipher = Some(format!("{encryption} with key derivation {kdf}"));
        } else {
            match argon2.check(kdf) {
                Ok(cost) => a.kdf_cost = cost,
                Err(damage) => a.damage = Some(damage),
            }
        }
    }
    let mac_len = if version == "2" { 40 } else { 64 };
    let mac_ok = mac.is_some_and(|m| m.len() == mac_len && m.chars().all(|c| c.is_ascii_hexdigit()));
    // Encrypted private data is whole AES blocks.
    let private_ok = private_len.is_some_and(|n| n > 0 && (!a.encrypted || n % 16 == 0));
    if !(complete && a.public.is_some() && private_ok && mac_ok) {
        a.damage = Some("its key lines or MAC are missing (the file looks cut short)".into());
    }
    a
}

/// The Argon2 lines of a PuTTY v3 key, as written (the last of each).
#[derive(Default)]
struct Argon2Lines<'a> {
    memory: Option<&'a str>,
    passes: Option<&'a str>,
    parallelism: Option<&'a str>,
    salt: Option<&'a str>,
}

impl Argon2Lines<'_> {
    /// Checks the parameters ssh-key hands to Argon2 before it runs: Err describes damage
    /// (a missing or invalid value, which Argon2 would refuse with the same error as a wrong
    /// passphrase), Ok(Some) a cost beyond the bounds, with roughly how long it would take.
    fn check(&self, kdf: &str) -> Result<Option<(String, u64)>, String> {
        let number = |name: &str, value: Option<&str>| -> Result<u64, String> {
            let value = value.ok_or_else(|| format!("its {name} line is missing"))?;
            // ssh-key reads a u32.
            value
                .parse::<u32>()
                .map(u64::from)
                .map_err(|_| format!("its {name} value is not a number below 2^32"))
        };
        let memory = number("Argon2-Memory", self.memory)?;
        let passes = number("Argon2-Passes", self.passes)?;
        let parallelism = number("Argon2-Parallelism", self.parallelism)?;
        let salt = self.salt.ok_or("its Argon2-Salt line is missing")?;
        let salt_ok = salt.len() % 2 == 0 && salt.len() >= 16 && salt.chars().all(|c| c.is_ascii_hexdigit());
        if !salt_ok {
            return Err("its Argon2-Salt is not 8 or more bytes of hex".into());
        }
        if passes == 0 || parallelism == 0 || memory < 8 * parallelism {
            return Err(format!(
                "its Argon2 parameters are invalid ({memory} KiB of memory, {passes} passes, \
                 {parallelism} lanes)"
            ));
        }
        if parallelism > MAX_ARGON2_PARALLELISM {
            return Err(format!(
                "its Argon2-Parallelism of {parallelism} is far beyond what puttygen writes"
            ));
        }
        let work = memory.saturating_mul(passes);
        let cost = if memory > MAX_ARGON2_MEMORY_KIB {
            format!("{kdf} with {} MiB of memory", memory / 1024)
        } else if work > MAX_ARGON2_WORK {
            format!("{passes} {kdf} passes over {memory} KiB of memory")
        } else {
            return Ok(None);
        };
        let seconds = work / 1024 * ARGON2_MS_PER_MIB_PASS / 1000;
        Ok(Some((cost, seconds)))
    }
}

/// SSH.com/Tectia: magic 0x3f6ff9eb, uint32 length, string key type, string cipher.
fn analyze_ssh2(block: &Armour) -> Analysis {
    let mut a = Analysis::new(KeyFormat::Ssh2);
    a.unsupported_format = true;
    let data = block.decode_prefix();
    let mut wire = Wire(&data);
    if wire.u32() == Some(0x3f6f_f9eb) {
        let _len = wire.u32();
        let _key_type = wire.bytes();
        a.encrypted = wire.string().is_some_and(|c| c != "none");
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Passphrase for the test keys (PEM encryption wants five characters or more).
    const PASS: &str = "hunter22";
    const WRONG: &str = "not-the-passphrase";

    /// PuTTY keys made by `puttygen` 0.78 from one Ed25519 key (puttygen is rarely
    /// installed, so these are fixtures); encrypted ones use [`PASS`].
    const PPK_V3: &str = "PuTTY-User-Key-File-3: ssh-ed25519
Encryption: none
Comment: fixture
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIB2fQsZmz6AM3RpVGt422jX9jNi/ets2XgDfMUmQ
Y2Qp
Private-Lines: 1
AAAAIOtDvSNcdvLXYuyR5I+Yaek4OYfIA23xk6gJDHVeX4ig
Private-MAC: 4c920f98416babc1f11c63ee89e9b039ff331ca37c6abcd12d874b80ba472594
";
    const PPK_V3_NO_COMMENT: &str = "PuTTY-User-Key-File-3: ssh-ed25519
Encryption: none
Comment: 
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIB2fQsZmz6AM3RpVGt422jX9jNi/ets2XgDfMUmQ
Y2Qp
Private-Lines: 1
AAAAIOtDvSNcdvLXYuyR5I+Yaek4OYfIA23xk6gJDHVeX4ig
Private-MAC: 2b1a6e1c67222d1404d6fa65b6e5813f11e248ae9463d8df0feafc702c5a2b86
";
    /// Argon2 parameters turned down (`--ppk-param memory=32,passes=1`) to keep tests fast.
    const PPK_V3_ENCRYPTED: &str = "PuTTY-User-Key-File-3: ssh-ed25519
Encryption: aes256-cbc
Comment: fixture
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIB2fQsZmz6AM3RpVGt422jX9jNi/ets2XgDfMUmQ
Y2Qp
Key-Derivation: Argon2id
Argon2-Memory: 32
Argon2-Passes: 1
Argon2-Parallelism: 1
Argon2-Salt: caeea09e62806fb7094cd6b2673a573c
Private-Lines: 1
QtwaVE1T/1I6Sgy498Hnu/dy7Pbk+xZdvnb+UVTdjoTWqMnZJSq0d0zELncpTzr9
Private-MAC: 2921ffd67ff2313ad2edadd1acc8fa282ee3933dfac191004bef0f85a1b93b1d
";
    const PPK_V2_ENCRYPTED: &str = "PuTTY-User-Key-File-2: ssh-ed25519
Encryption: aes256-cbc
Comment: fixture
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIB2fQsZmz6AM3RpVGt422jX9jNi/ets2XgDfMUmQ
Y2Qp
Private-Lines: 1
cZPGd/KTVwvW6XqgV4aYumZA8tkKNpi8fzQC9Q8urfGLc9O3h8NnbdD5pXdpx6Lz
Private-MAC: 8f66189c76cf9dae489f714aae3e346022613c0e
";
    const PPK_PUBLIC: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2fQsZmz6AM3RpVGt422jX9jNi/ets2XgDfMUmQY2Qp fixture";

    /// SSH.com keys (`puttygen -O private-sshcom`, RSA 1024), plain and with 3des-cbc.
    const SSH2_KEY: &str = "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----
Comment: \"fixture\"
P2/56wAAAi4AAAA3aWYtbW9kbntzaWdue3JzYS1wa2NzMS1zaGExfSxlbmNyeXB0e3JzYS
1wa2NzMXYyLW9hZXB9fQAAAARub25lAAAB3wAAAdsAAAARAQABAAAEALRAKzSKLbtIbZZS
1a/2cLRniZobkFvDyhXUGHIcIWxNy5fk99dP1NkjtI92Ku89Zy82TeuKDKId4ZulT3I8uY
VDFfdJ+yk3avoPVR58edum3gs9aqte/VTLhahdJlnf5U6aCj8GQ4+JLX3RnoLdy7loKXFo
nc8AsI4heh+p9JCJAAAEAMcH8C6srvu3u26uqGg5YqiwfJJXriZ3LlohAW/qnzOEfMdkWE
zyFze7ooVvgqFxlKo4vYvUKV9p/Iwjmw1tevij2JN2sLLt27BgNSbKcoas0j4T7opYoJrv
DSqN5OcqAs++sI9qbUMvK9SFjC261AMNhnaVVdfsol4wA1UKXOvnAAACAM3e+Onb/2PCyh
LchGnMNwSmCWiL9j2vHWmF5ysLKjksVuZuxP9G2Ue3KR82BFnX2Gt6ZNabXoVBjUu8bmdi
+o4AAAIAx2xP7hFnehZwsHcoE61827dAem1FwV6WaWzcKmGB2EPrfcQ0au6eSz8uKzJmD3
DDVBd/9dmVZg0pbeuenoaalQAAAgD/fyZLfVlj0c1oU//at/FnyZ9ATxA/YwXk6k7RCfvq
yhLTZ1qjSPr8ngMRid2P1SMyjoZVXwJxVFP7KvUWSMmL
---- END SSH2 ENCRYPTED PRIVATE KEY ----
";
    const SSH2_KEY_ENCRYPTED: &str = "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----
Comment: \"fixture\"
P2/56wAAAjMAAAA3aWYtbW9kbntzaWdue3JzYS1wa2NzMS1zaGExfSxlbmNyeXB0e3JzYS
1wa2NzMXYyLW9hZXB9fQAAAAgzZGVzLWNiYwAAAeAV7y4/qTu63wqrmBQd8gCzZNKEwR6K
qW7d6Ps0ghG/J7dYGOOI9kP0QhIhXEFhRRIqi/rAtzuajiAHTvGefBMD+9WAp87xX7zCT6
dNSIBk0Jc8PPevJDPVaoC2XEZOdQryLnTekdSfgw2UnG1/3YuyQQhaWFNkMsmJEjfp7Swh
/miSCZVHA1lrLrYusV2zRJeW2LpJD39J3oqBgLrg/MxkonU8HAcY6OZWwgt8NwZwPgDc7V
a4CmhJeqpHvW0EAPv8lXh/i7rPw937eN2Z9lB6jICLDxC0pSVQ+WlEmYd/75DBuDADhSC4
Jc8DrjgattU6c+LO5kMnI5wPrkR4GBcXi1LxNlyBb5adWRiPy1lQDchmOfNoQQkELJt99p
72MuI+IghGbbVvuAUJKaZ7ICuGH2PSu/Pk1WVrAr+6GGZKLRGsDFyfs9KeFPFaRiCYJPXI
2bhdugJu//1E5ymtIE7zIT+lLF2opaQ6zeEDS8O4wi2A4q65dgHHS42aE0l89/9NcGk994
8zvmm7YZ8xw5aWAEFVanlxrnt+m9Sq1cOpt6QR5O665B9NRPyzuez82HO2GLuIicztLfB7
7FaZX3nbJM4uC+ZFiWl9iME0PRxYTRhMSzgeDWGw/yBLEScsxlc=
---- END SSH2 ENCRYPTED PRIVATE KEY ----
";

    /// A scratch directory under the system temp dir, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("sqltun-keys-test-{}-{test}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create scratch dir");
            Scratch(dir)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        /// Writes a key file with mode 0600.
        fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
            let path = self.path(name);
            fs::write(&path, contents).expect("write key file");
            chmod(&path, 0o600);
            path
        }

        /// `ssh-keygen -q -C test -f DIR/name ARGS...`; pass `-N` in `args`.
        fn keygen(&self, name: &str, args: &[&str]) -> PathBuf {
            let path = self.path(name);
            let file = path.to_str().expect("utf-8 temp path");
            run("ssh-keygen", &[&["-q", "-C", "test", "-f", file], args].concat());
            path
        }

        /// `openssl COMMAND -out DIR/name ARGS...`, then mode 0600.
        fn openssl(&self, name: &str, command: &str, args: &[&str]) -> PathBuf {
            let path = self.path(name);
            let file = path.to_str().expect("utf-8 temp path");
            run("openssl", &[&[command, "-out", file], args].concat());
            chmod(&path, 0o600);
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn run(program: &str, args: &[&str]) {
        let out = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} (is it installed?): {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn load(path: &Path, passphrase: Option<&str>) -> Result<PrivateKey, KeyError> {
        let secret = passphrase.map(|p| Secret::new(p.to_string()));
        load_identity(path, secret.as_ref())
    }

    fn decode(text: &str, passphrase: Option<&str>) -> Result<PrivateKey, KeyError> {
        let secret = passphrase.map(|p| Secret::new(p.to_string()));
        decode_identity(text, secret.as_ref())
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).expect("read key file")
    }

    /// The public half ssh-keygen wrote next to the key.
    fn pub_file(path: &Path) -> PublicKey {
        let mut p = path.as_os_str().to_os_string();
        p.push(".pub");
        parse_public_line(&read(Path::new(&p))).expect("parse .pub")
    }

    fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
        a.key_data() == b.key_data()
    }

    /// Detection must name every format the module promises to recognise, and
    /// tell encrypted from plain without a passphrase, before any decoding.
    #[test]
    fn detects_every_format() {
        let d = Scratch::new("detect");
        let cases: Vec<(PathBuf, KeyFormat, bool)> = vec![
            (
                d.keygen("os", &["-t", "ed25519", "-N", ""]),
                KeyFormat::OpenSsh { encrypted: false },
                false,
            ),
            (
                d.keygen("os_enc", &["-t", "ed25519", "-N", PASS]),
                KeyFormat::OpenSsh { encrypted: true },
                true,
            ),
            (
                d.keygen("rsa_pem", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""]),
                KeyFormat::PemRsa { encrypted: false },
                false,
            ),
            (
                d.keygen("rsa_pem_enc", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS]),
                KeyFormat::PemRsa { encrypted: true },
                true,
            ),
            (
                d.keygen("ec_pem", &["-t", "ecdsa", "-m", "PEM", "-N", ""]),
                KeyFormat::PemEc { encrypted: false },
                false,
            ),
            (
                d.keygen("ec_pem_enc", &["-t", "ecdsa", "-m", "PEM", "-N", PASS]),
                KeyFormat::PemEc { encrypted: true },
                true,
            ),
            (
                d.keygen("p8", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""]),
                KeyFormat::Pkcs8,
                false,
            ),
            (
                d.keygen("p8_enc", &["-t", "ecdsa", "-m", "PKCS8", "-N", PASS]),
                KeyFormat::Pkcs8Encrypted,
                true,
            ),
            (d.write("v3.ppk", PPK_V3), KeyFormat::Putty, false),
            (d.write("v3e.ppk", PPK_V3_ENCRYPTED), KeyFormat::Putty, true),
            (d.write("v2e.ppk", PPK_V2_ENCRYPTED), KeyFormat::Putty, true),
            (d.write("ssh2", SSH2_KEY), KeyFormat::Ssh2, false),
            (d.write("ssh2e", SSH2_KEY_ENCRYPTED), KeyFormat::Ssh2, true),
            (d.path("os.pub"), KeyFormat::PublicKey, false),
            (d.write("garbage", "hello world\n"), KeyFormat::Unknown, false),
            (d.write("empty", ""), KeyFormat::Unknown, false),
        ];
        let dsa_raw = d.openssl("dsa_raw", "dsaparam", &["-genkey", "-noout", "1024"]);
        let dsa_raw = dsa_raw.to_str().expect("utf-8");
        let dsa = d.openssl("dsa_p8", "pkey", &["-in", dsa_raw]);
        let dsa_file = dsa.to_str().expect("utf-8");
        let dsa_pem = d.openssl("dsa_pem", "pkey", &["-in", dsa_file, "-traditional"]);
        let dsa_pem_enc = d.openssl(
            "dsa_pem_enc",
            "pkey",
            &["-in", dsa_file, "-traditional", "-aes128", "-passout", "pass:x"],
        );
        let more = [
            (dsa, KeyFormat::Pkcs8, false),
            (dsa_pem, KeyFormat::PemDsa { encrypted: false }, false),
            (dsa_pem_enc, KeyFormat::PemDsa { encrypted: true }, true),
        ];
        for (path, format, encrypted) in cases.into_iter().chain(more) {
            let text = read(&path);
            assert_eq!(detect_format(&text), format, "{}", path.display());
            assert_eq!(is_encrypted(&text), encrypted, "{}", path.display());
        }
        let inline = [
            ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2f x\n", KeyFormat::PublicKey),
            (
                "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQ= x\n",
                KeyFormat::PublicKey,
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
                KeyFormat::PublicKey,
            ),
            (
                "---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----\n",
                KeyFormat::PublicKey,
            ),
            (
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                KeyFormat::Unknown,
            ),
            ("   \n\t\n", KeyFormat::Unknown),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\n",
                KeyFormat::OpenSsh { encrypted: false },
            ),
        ];
        for (text, format) in inline {
            assert_eq!(detect_format(text), format, "{text:?}");
        }
    }

    /// The everyday case: unencrypted keys as `ssh-keygen` writes them by default.
    #[test]
    fn loads_unencrypted_openssh_keys() {
        let d = Scratch::new("openssh_plain");
        let keys = [
            ("ed25519", vec!["-t", "ed25519"], Algorithm::Ed25519),
            (
                "ecdsa256",
                vec!["-t", "ecdsa", "-b", "256"],
                Algorithm::Ecdsa {
                    curve: ssh_key::EcdsaCurve::NistP256,
                },
            ),
            (
                "ecdsa384",
                vec!["-t", "ecdsa", "-b", "384"],
                Algorithm::Ecdsa {
                    curve: ssh_key::EcdsaCurve::NistP384,
                },
            ),
            (
                "ecdsa521",
                vec!["-t", "ecdsa", "-b", "521"],
                Algorithm::Ecdsa {
                    curve: ssh_key::EcdsaCurve::NistP521,
                },
            ),
            ("rsa", vec!["-t", "rsa", "-b", "2048"], Algorithm::Rsa { hash: None }),
        ];
        for (name, mut args, algorithm) in keys {
            args.extend(["-N", ""]);
            let path = d.keygen(name, &args);
            let key = load(&path, None).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(key.algorithm(), algorithm, "{name}");
            assert!(same_key(key.public_key(), &pub_file(&path)), "{name}");
        }
    }

    /// Passphrase handling for OpenSSH keys, for every cipher ssh-keygen offers that
    /// russh decrypts. A wrong passphrase shows up in ssh-key as `Error::Crypto`
    /// (checkint mismatch, or AEAD tag failure for gcm/chacha20), mapped to WrongPassphrase.
    #[test]
    fn encrypted_openssh_keys_need_the_right_passphrase() {
        let d = Scratch::new("openssh_enc");
        let keys = [
            ("default", vec!["-t", "ed25519"]),
            ("rsa", vec!["-t", "rsa", "-b", "2048"]),
            ("ecdsa", vec!["-t", "ecdsa"]),
            ("aes128cbc", vec!["-t", "ed25519", "-Z", "aes128-cbc"]),
            ("gcm", vec!["-t", "ed25519", "-Z", "aes256-gcm@openssh.com"]),
            ("chacha", vec!["-t", "ed25519", "-Z", "chacha20-poly1305@openssh.com"]),
        ];
        for (name, mut args) in keys {
            args.extend(["-N", PASS]);
            let path = d.keygen(name, &args);
            assert_eq!(
                load(&path, None).err(),
                Some(KeyError::NeedsPassphrase {
                    format: KeyFormat::OpenSsh { encrypted: true }
                }),
                "{name}"
            );
            assert_eq!(
                load(&path, Some(WRONG)).err(),
                Some(KeyError::WrongPassphrase),
                "{name}"
            );
            let key = load(&path, Some(PASS)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(same_key(key.public_key(), &pub_file(&path)), "{name}");
        }
    }

    /// OpenSSH reads keys encrypted with `3des-cbc` (`ssh-keygen -Z 3des-cbc`), so sqltun
    /// must too: the passphrase outcomes are those of any other cipher.
    #[test]
    fn openssh_key_with_3des_loads() {
        let d = Scratch::new("openssh_3des");
        let path = d.keygen("k", &["-t", "ed25519", "-Z", "3des-cbc", "-N", PASS]);
        assert_eq!(
            load(&path, None).err(),
            Some(KeyError::NeedsPassphrase {
                format: KeyFormat::OpenSsh { encrypted: true }
            })
        );
        assert_eq!(load(&path, Some(WRONG)).err(), Some(KeyError::WrongPassphrase));
        let key = load(&path, Some(PASS)).expect("3des-cbc key loads");
        assert!(same_key(key.public_key(), &pub_file(&path)));
    }

    /// What to expect of a key variant.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Outcome {
        Loads,
        /// Unsupported or UnsupportedCipher: the advice (`ssh-keygen -p`) fixes it.
        NeedsConversion,
        /// UnsupportedAlgorithm: no conversion helps.
        Refused,
    }

    /// Backs the table at the top of this module: each PEM and PKCS#8 variant
    /// either loads, or is refused with an error naming its format (or cipher)
    /// and advice that, when followed, makes it load.
    #[test]
    fn pem_and_pkcs8_variants_load_or_are_named_unsupported() {
        use Outcome::*;
        let d = Scratch::new("pem_pkcs8");
        let pass_out = format!("pass:{PASS}");
        let po = pass_out.as_str();
        let rsa = d.keygen("rsa_pem", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""]);
        let ec = d.keygen("ec_pem", &["-t", "ecdsa", "-m", "PEM", "-N", ""]);
        let (rsa_in, ec_in) = (
            rsa.to_str().expect("utf-8").to_string(),
            ec.to_str().expect("utf-8").to_string(),
        );
        let ed = d.openssl("ed_p8", "genpkey", &["-algorithm", "ed25519"]);
        let ed_in = ed.to_str().expect("utf-8").to_string();
        let ec384 = d.openssl("ec384", "ecparam", &["-genkey", "-name", "secp384r1", "-noout"]);
        let ec384_in = ec384.to_str().expect("utf-8").to_string();
        let dsa_raw = d.openssl("dsa_raw", "dsaparam", &["-genkey", "-noout", "1024"]);
        let dsa_raw = dsa_raw.to_str().expect("utf-8");
        let dsa = d.openssl("dsa_p8", "pkey", &["-in", dsa_raw]);
        let dsa_in = dsa.to_str().expect("utf-8").to_string();
        let cases: Vec<(&str, PathBuf, KeyFormat, Outcome)> = vec![
            ("PEM RSA", rsa.clone(), KeyFormat::PemRsa { encrypted: false }, Loads),
            (
                "PEM RSA, AES-128-CBC (ssh-keygen)",
                d.keygen("rsa_pem_enc", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS]),
                KeyFormat::PemRsa { encrypted: true },
                Loads,
            ),
            (
                "PEM RSA, AES-256-CBC",
                d.openssl(
                    "rsa_aes256",
                    "pkey",
                    &["-in", &rsa_in, "-traditional", "-aes256", "-passout", po],
                ),
                KeyFormat::PemRsa { encrypted: true },
                Loads,
            ),
            (
                "PEM RSA, AES-192-CBC",
                d.openssl(
                    "rsa_aes192",
                    "pkey",
                    &["-in", &rsa_in, "-traditional", "-aes192", "-passout", po],
                ),
                KeyFormat::PemRsa { encrypted: true },
                Loads,
            ),
            (
                "PEM RSA, DES-EDE3-CBC",
                d.openssl(
                    "rsa_3des",
                    "pkey",
                    &["-in", &rsa_in, "-traditional", "-des3", "-passout", po],
                ),
                KeyFormat::PemRsa { encrypted: true },
                Loads,
            ),
            ("PEM EC P-256", ec.clone(), KeyFormat::PemEc { encrypted: false }, Loads),
            (
                "PEM EC P-384 (openssl)",
                ec384.clone(),
                KeyFormat::PemEc { encrypted: false },
                Loads,
            ),
            (
                "PEM EC, explicit curve parameters",
                d.openssl("ec_explicit", "ec", &["-in", &ec_in, "-param_enc", "explicit"]),
                KeyFormat::PemEc { encrypted: false },
                Loads,
            ),
            (
                "PEM EC, AES-128-CBC (ssh-keygen)",
                d.keygen("ec_pem_enc", &["-t", "ecdsa", "-m", "PEM", "-N", PASS]),
                KeyFormat::PemEc { encrypted: true },
                Loads,
            ),
            (
                "PEM EC, AES-256-CBC",
                d.openssl(
                    "ec_aes256",
                    "pkey",
                    &["-in", &ec_in, "-traditional", "-aes256", "-passout", po],
                ),
                KeyFormat::PemEc { encrypted: true },
                Loads,
            ),
            (
                "PEM EC P-384, AES-192-CBC",
                d.openssl(
                    "ec384_aes192",
                    "pkey",
                    &["-in", &ec384_in, "-traditional", "-aes192", "-passout", po],
                ),
                KeyFormat::PemEc { encrypted: true },
                Loads,
            ),
            (
                "PEM EC, DES-EDE3-CBC",
                d.openssl(
                    "ec_3des",
                    "pkey",
                    &["-in", &ec_in, "-traditional", "-des3", "-passout", po],
                ),
                KeyFormat::PemEc { encrypted: true },
                Loads,
            ),
            (
                "PEM EC secp256k1",
                d.openssl("k1", "ecparam", &["-genkey", "-name", "secp256k1", "-noout"]),
                KeyFormat::PemEc { encrypted: false },
                Refused,
            ),
            (
                "PEM DSA",
                d.openssl("dsa_pem", "pkey", &["-in", &dsa_in, "-traditional"]),
                KeyFormat::PemDsa { encrypted: false },
                Refused,
            ),
            (
                "PEM DSA, encrypted",
                d.openssl(
                    "dsa_pem_enc",
                    "pkey",
                    &["-in", &dsa_in, "-traditional", "-aes128", "-passout", po],
                ),
                KeyFormat::PemDsa { encrypted: true },
                Refused,
            ),
            ("PKCS#8 DSA", dsa.clone(), KeyFormat::Pkcs8, Refused),
            (
                "PKCS#8 RSA (ssh-keygen)",
                d.keygen("rsa_p8", &["-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", ""]),
                KeyFormat::Pkcs8,
                Loads,
            ),
            (
                "PKCS#8 RSA, encrypted (ssh-keygen)",
                d.keygen("rsa_p8_enc", &["-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", PASS]),
                KeyFormat::Pkcs8Encrypted,
                Loads,
            ),
            (
                "PKCS#8 ECDSA (ssh-keygen)",
                d.keygen("ec_p8", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""]),
                KeyFormat::Pkcs8,
                Loads,
            ),
            (
                "PKCS#8 ECDSA, encrypted (ssh-keygen)",
                d.keygen("ec_p8_enc", &["-t", "ecdsa", "-m", "PKCS8", "-N", PASS]),
                KeyFormat::Pkcs8Encrypted,
                Loads,
            ),
            ("PKCS#8 Ed25519 (openssl)", ed.clone(), KeyFormat::Pkcs8, Loads),
            (
                "PKCS#8 Ed25519, PBES2 AES-256-CBC",
                d.openssl("ed_p8_enc", "pkey", &["-in", &ed_in, "-aes-256-cbc", "-passout", po]),
                KeyFormat::Pkcs8Encrypted,
                Loads,
            ),
            (
                "PKCS#8, PBES2 scrypt",
                d.openssl(
                    "ed_scrypt",
                    "pkcs8",
                    &["-topk8", "-in", &ed_in, "-scrypt", "-passout", po],
                ),
                KeyFormat::Pkcs8Encrypted,
                Loads,
            ),
            (
                "PKCS#8, PBES2 PBKDF2-HMAC-SHA1",
                d.openssl(
                    "ec_sha1prf",
                    "pkcs8",
                    &[
                        "-topk8",
                        "-in",
                        &ec_in,
                        "-v2",
                        "aes-256-cbc",
                        "-v2prf",
                        "hmacWithSHA1",
                        "-passout",
                        po,
                    ],
                ),
                KeyFormat::Pkcs8Encrypted,
                Loads,
            ),
            (
                "PKCS#8, PBES2 DES-EDE3-CBC",
                d.openssl(
                    "rsa_v2des3",
                    "pkcs8",
                    &["-topk8", "-in", &rsa_in, "-v2", "des3", "-passout", po],
                ),
                KeyFormat::Pkcs8Encrypted,
                Loads,
            ),
            (
                "PKCS#8, PKCS#12 PBE SHA1/3DES",
                d.openssl(
                    "rsa_v1",
                    "pkcs8",
                    &["-topk8", "-in", &rsa_in, "-v1", "PBE-SHA1-3DES", "-passout", po],
                ),
                KeyFormat::Pkcs8Encrypted,
                NeedsConversion,
            ),
            (
                "PKCS#8 Ed448",
                d.openssl("ed448", "genpkey", &["-algorithm", "ed448"]),
                KeyFormat::Pkcs8,
                Refused,
            ),
        ];
        for (name, path, format, outcome) in cases {
            let text = read(&path);
            assert_eq!(detect_format(&text), format, "{name}");
            let pass = is_encrypted(&text).then_some(PASS);
            let result = load(&path, pass);
            match (outcome, &result) {
                (Loads, Ok(key)) => {
                    assert!(usable(&key.algorithm()), "{name}: loaded {:?}", key.algorithm());
                    // The key itself, as ssh-keygen reads it (OpenSSH 9.2 reads no PKCS#8 Ed25519).
                    let file = path.to_str().expect("utf-8");
                    let out = Command::new("ssh-keygen")
                        .args(["-y", "-P", PASS, "-f", file])
                        .output()
                        .expect("run ssh-keygen -y");
                    if out.status.success() {
                        let public = parse_public_line(&String::from_utf8_lossy(&out.stdout));
                        assert!(
                            public.is_some_and(|p| same_key(key.public_key(), &p)),
                            "{name}: not the key ssh-keygen reads"
                        );
                    } else {
                        assert_eq!(key.algorithm(), Algorithm::Ed25519, "{name}: ssh-keygen cannot read it");
                    }
                    if pass.is_some() {
                        assert_eq!(
                            load(&path, None).err(),
                            Some(KeyError::NeedsPassphrase { format }),
                            "{name}"
                        );
                        assert_eq!(
                            load(&path, Some(WRONG)).err(),
                            Some(KeyError::WrongPassphrase),
                            "{name}"
                        );
                    }
                }
                (
                    NeedsConversion,
                    Err(e @ (KeyError::Unsupported { format: f } | KeyError::UnsupportedCipher { format: f, .. })),
                ) => {
                    assert_eq!(*f, format, "{name}");
                    let advice = e.describe(&path);
                    assert!(advice.contains(format.name()), "{name}: {advice}");
                    let fix = format!("ssh-keygen -p -f {}", path.display());
                    assert!(advice.contains(&fix), "{name}: {advice}");
                    let file = path.to_str().expect("utf-8");
                    run("ssh-keygen", &["-q", "-p", "-P", PASS, "-N", PASS, "-f", file]);
                    let converted = load(&path, Some(PASS));
                    assert!(converted.is_ok(), "{name}: after the advice: {converted:?}");
                }
                (Refused, Err(e @ KeyError::UnsupportedAlgorithm { format: f, .. })) => {
                    assert_eq!(*f, format, "{name}");
                    assert!(e.describe(&path).contains("ssh-keygen -t ed25519"), "{name}");
                }
                _ => panic!("{name}: expected {outcome:?}, got {result:?}"),
            }
        }
    }

    /// A SEC1 `EC PRIVATE KEY` PEM holding `scalar` as given on the curve `oid` (DER of the
    /// OBJECT IDENTIFIER), without the optional public key (OpenSSL derives it).
    fn sec1_pem(scalar: &[u8], oid: &[u8]) -> String {
        let mut inner = vec![0x02, 0x01, 0x01, 0x04, u8::try_from(scalar.len()).expect("short")];
        inner.extend_from_slice(scalar);
        inner.extend_from_slice(&[0xa0, u8::try_from(oid.len()).expect("short")]);
        inner.extend_from_slice(oid);
        let mut der = vec![0x30, u8::try_from(inner.len()).expect("short")];
        der.extend_from_slice(&inner);
        format!(
            "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
            STANDARD.encode(der)
        )
    }

    /// One P-256 key in 256 has a private scalar whose first byte is zero; ssh-keygen then
    /// writes it one byte short in the OpenSSH format (an mpint drops leading zeros), and
    /// other writers may drop it in SEC1 or add one. ssh-keygen reads all of these, so every
    /// format must load such a key: fixed scalars with leading zeros on each curve, written
    /// by ssh-keygen and openssl in every format, make the case certain rather than random.
    #[test]
    fn ec_scalar_with_leading_zero_loads_in_every_format() {
        let d = Scratch::new("leading_zero");
        let po = format!("pass:{PASS}");
        let curves: [(&str, &[u8], usize, usize); 3] = [
            (
                "P-256",
                &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
                32,
                1,
            ),
            ("P-384", &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22], 48, 1),
            ("P-521", &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23], 66, 2),
        ];
        for (curve, oid, width, zeros) in curves {
            let mut scalar = vec![0x5a; width];
            scalar[..zeros].fill(0);
            let sec1 = d.write(&format!("{curve}.pem"), sec1_pem(&scalar, oid));
            let src = sec1.to_str().expect("utf-8").to_string();
            let expected = {
                let out = Command::new("ssh-keygen")
                    .args(["-y", "-f", &src])
                    .output()
                    .expect("run ssh-keygen -y");
                parse_public_line(&String::from_utf8_lossy(&out.stdout)).expect("ssh-keygen reads the key")
            };
            let copy = |name: &str| {
                let path = d.path(&format!("{curve}-{name}"));
                fs::copy(&sec1, &path).expect("copy key");
                path
            };
            let keygen_p = |name: &str, pass: &str| {
                let path = copy(name);
                let file = path.to_str().expect("utf-8");
                run("ssh-keygen", &["-q", "-p", "-P", "", "-N", pass, "-f", file]);
                path
            };
            let variants: Vec<(&str, PathBuf)> = vec![
                ("SEC1, fixed width", sec1.clone()),
                (
                    "SEC1, leading zeros dropped",
                    d.write(&format!("{curve}-short"), sec1_pem(&scalar[zeros..], oid)),
                ),
                (
                    "SEC1, an extra leading zero",
                    d.write(&format!("{curve}-long"), sec1_pem(&[&[0][..], &scalar].concat(), oid)),
                ),
                ("OpenSSH (ssh-keygen -p)", keygen_p("openssh", "")),
                ("OpenSSH, encrypted (ssh-keygen -p)", keygen_p("openssh-enc", PASS)),
                (
                    "PKCS#8 (openssl)",
                    d.openssl(&format!("{curve}-p8"), "pkcs8", &["-topk8", "-nocrypt", "-in", &src]),
                ),
                (
                    "PKCS#8, encrypted (openssl)",
                    d.openssl(
                        &format!("{curve}-p8-enc"),
                        "pkcs8",
                        &["-topk8", "-v2", "aes-256-cbc", "-in", &src, "-passout", &po],
                    ),
                ),
                (
                    "PEM EC, AES-256-CBC (openssl)",
                    d.openssl(
                        &format!("{curve}-pem-enc"),
                        "ec",
                        &["-in", &src, "-aes256", "-passout", &po],
                    ),
                ),
            ];
            for (name, path) in variants {
                let key = load(&path, Some(PASS)).unwrap_or_else(|e| panic!("{curve} {name}: {e:?}"));
                assert!(same_key(key.public_key(), &expected), "{curve} {name}: another key");
                let ssh_key::private::KeypairData::Ecdsa(pair) = key.key_data() else {
                    panic!("{curve} {name}: not ECDSA");
                };
                assert_eq!(pair.private_key_bytes(), scalar.as_slice(), "{curve} {name}");
            }
        }
    }

    /// russh fails on an unencrypted PKCS#8 or PEM EC key when handed a passphrase,
    /// and callers may pass one for every key: it must be ignored, as OpenSSH does.
    #[test]
    fn unneeded_passphrase_is_ignored() {
        let d = Scratch::new("unneeded");
        for (name, args) in [
            ("p8", vec!["-t", "ecdsa", "-m", "PKCS8", "-N", ""]),
            ("pem_ec", vec!["-t", "ecdsa", "-m", "PEM", "-N", ""]),
            ("pem_rsa", vec!["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""]),
            ("os", vec!["-t", "ed25519", "-N", ""]),
        ] {
            let path = d.keygen(name, &args);
            assert!(load(&path, Some(PASS)).is_ok(), "{name}");
        }
        assert!(decode(PPK_V3, Some(PASS)).is_ok());
    }

    /// The three passphrase outcomes for the encrypted PEM and PKCS#8 keys russh can
    /// decrypt; russh itself reports a DER error for an encrypted PKCS#8 key without
    /// a passphrase, and "Unpad" or DecryptFailed for a wrong one.
    #[test]
    fn pem_and_pkcs8_passphrase_outcomes() {
        let d = Scratch::new("pem_pass");
        for (name, args, format) in [
            (
                "pem_rsa",
                vec!["-t", "rsa", "-b", "2048", "-m", "PEM"],
                KeyFormat::PemRsa { encrypted: true },
            ),
            (
                "p8_rsa",
                vec!["-t", "rsa", "-b", "2048", "-m", "PKCS8"],
                KeyFormat::Pkcs8Encrypted,
            ),
            ("p8_ec", vec!["-t", "ecdsa", "-m", "PKCS8"], KeyFormat::Pkcs8Encrypted),
        ] {
            let path = d.keygen(name, &[args.as_slice(), &["-N", PASS]].concat());
            assert_eq!(
                load(&path, None).err(),
                Some(KeyError::NeedsPassphrase { format }),
                "{name}"
            );
            assert_eq!(
                load(&path, Some(WRONG)).err(),
                Some(KeyError::WrongPassphrase),
                "{name}"
            );
            let key = load(&path, Some(PASS)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(same_key(key.public_key(), &pub_file(&path)), "{name}");
        }
    }

    /// russh reads PuTTY keys (v2 and v3, plain and aes256-cbc), so they load as they
    /// are; a wrong passphrase shows up as a MAC mismatch and must read as such.
    #[test]
    fn putty_keys_load() {
        let expected = parse_public_line(PPK_PUBLIC).expect("fixture public key");
        for (name, text, encrypted) in [
            ("v3", PPK_V3, false),
            ("v3, empty comment", PPK_V3_NO_COMMENT, false),
            ("v3, Argon2id", PPK_V3_ENCRYPTED, true),
            ("v2", PPK_V2_ENCRYPTED, true),
        ] {
            if encrypted {
                assert_eq!(
                    decode(text, None).err(),
                    Some(KeyError::NeedsPassphrase {
                        format: KeyFormat::Putty
                    }),
                    "{name}"
                );
                assert_eq!(
                    decode(text, Some(WRONG)).err(),
                    Some(KeyError::WrongPassphrase),
                    "{name}"
                );
            }
            let key = decode(text, encrypted.then_some(PASS)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(same_key(key.public_key(), &expected), "{name}");
            // Windows line endings, as PuTTY on Windows writes them.
            let crlf = text.replace('\n', "\r\n");
            assert!(decode(&crlf, encrypted.then_some(PASS)).is_ok(), "{name} CRLF");
        }
        let v1 = PPK_V3.replace("File-3", "File-1");
        let err = decode(&v1, None).expect_err("PPK v1 is not supported");
        assert_eq!(
            err,
            KeyError::Unsupported {
                format: KeyFormat::Putty
            }
        );
        let advice = err.describe(Path::new("/k/work.ppk"));
        assert!(
            advice.contains("puttygen /k/work.ppk -O private-openssh-new -o /k/work-openssh"),
            "{advice}"
        );
    }

    /// SSH.com keys are refused with a conversion command; for an unencrypted one
    /// the command really produces a key that loads.
    #[test]
    fn ssh2_keys_are_unsupported_with_working_advice() {
        let d = Scratch::new("ssh2");
        let path = d.write("tectia", SSH2_KEY);
        let err = load(&path, None).expect_err("SSH2 is not supported");
        assert_eq!(
            err,
            KeyError::Unsupported {
                format: KeyFormat::Ssh2
            }
        );
        let advice = err.describe(&path);
        let new = d.path("tectia-openssh");
        let command = format!(
            "ssh-keygen -i -f {} > {n} && chmod 600 {n}",
            path.display(),
            n = new.display()
        );
        assert!(advice.contains(&command), "{advice}");
        run("sh", &["-c", &command]);
        assert!(load(&new, None).is_ok());
        assert_eq!(
            decode(SSH2_KEY_ENCRYPTED, Some(PASS)).err(),
            Some(KeyError::Unsupported {
                format: KeyFormat::Ssh2
            })
        );
    }

    /// `-i key.pub` is a common slip: say it is a public key, while public_key_for
    /// still returns it (OpenSSH allows a public key as identity for agent keys).
    #[test]
    fn public_key_given_as_identity() {
        let d = Scratch::new("pub_identity");
        let key = d.keygen("id", &["-t", "ed25519", "-N", ""]);
        let path = d.path("id.pub");
        let err = load(&path, None).expect_err("a public key is no identity");
        assert_eq!(
            err,
            KeyError::Unsupported {
                format: KeyFormat::PublicKey
            }
        );
        let advice = err.describe(&path);
        assert!(advice.contains("is a public key"), "{advice}");
        let public = public_key_for(&path).expect("public key");
        assert!(same_key(&public, &pub_file(&key)));
    }

    /// Keys russh decodes but cannot sign with (DSA, FIDO security keys) are refused
    /// when loaded, naming the algorithm, rather than failing during authentication.
    #[test]
    fn unusable_algorithms_are_refused() {
        let d = Scratch::new("algorithms");
        let public = ssh_key::public::SkEd25519::new(ssh_key::public::Ed25519PublicKey([7; 32]), "ssh:");
        let keypair = ssh_key::private::SkEd25519::new(public, 1, vec![1, 2, 3]).expect("FIDO key");
        let sk = PrivateKey::new(ssh_key::private::KeypairData::SkEd25519(keypair), "test").expect("FIDO key");
        let text = sk.to_openssh(ssh_key::LineEnding::LF).expect("encode");
        let path = d.write("id_ed25519_sk", text.as_bytes());
        let err = load(&path, None).expect_err("FIDO keys cannot sign here");
        assert!(
            matches!(&err, KeyError::UnsupportedAlgorithm { algorithm, .. } if algorithm == "sk-ssh-ed25519@openssh.com"),
            "{err:?}"
        );
        assert!(err.describe(&path).contains("ssh-add"), "{}", err.describe(&path));

        // Newer OpenSSH cannot make DSA keys at all; test them only where it can.
        let dsa = d.path("id_dsa");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "dsa", "-N", PASS, "-f"])
            .arg(&dsa)
            .output()
            .is_ok_and(|o| o.status.success());
        if made {
            // Refused from the clear public section: no passphrase prompt first.
            assert_eq!(
                load(&dsa, None).err(),
                Some(KeyError::UnsupportedAlgorithm {
                    format: KeyFormat::OpenSsh { encrypted: true },
                    algorithm: "DSA".into()
                })
            );
        }
    }

    /// OpenSSH's "UNPROTECTED PRIVATE KEY FILE": group/other access is refused
    /// before the file is read, and the message gives the mode and the fix.
    #[test]
    fn too_open_key_is_refused_with_chmod_advice() {
        let d = Scratch::new("perms");
        let path = d.keygen("id", &["-t", "ed25519", "-N", ""]);
        for mode in [0o644, 0o640, 0o604, 0o660, 0o666] {
            chmod(&path, mode);
            let err = load(&path, None).expect_err("too open");
            assert_eq!(err, KeyError::TooOpen { mode });
            let advice = err.describe(&path);
            assert!(advice.contains(&format!("chmod 600 {}", path.display())), "{advice}");
            assert!(advice.contains(&format!("{mode:04o}")), "{advice}");
            assert!(advice.contains("UNPROTECTED PRIVATE KEY FILE"), "{advice}");
        }
        for mode in [0o600, 0o400] {
            chmod(&path, mode);
            assert!(check_permissions(&path).is_ok());
            assert!(load(&path, None).is_ok());
        }
    }

    /// The point of public_key_for: the public half of an encrypted key without its
    /// passphrase, from the OpenSSH file itself even when the .pub file is gone.
    #[test]
    fn public_key_for_encrypted_key_without_passphrase() {
        let d = Scratch::new("public_for");
        let os = d.keygen("os", &["-t", "ed25519", "-N", PASS]);
        let expected = pub_file(&os);
        fs::remove_file(d.path("os.pub")).expect("remove .pub");
        let public = public_key_for(&os).expect("from the OpenSSH public section");
        assert!(same_key(&public, &expected));

        let pem = d.keygen("pem", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS]);
        let public = public_key_for(&pem).expect("from pem.pub");
        assert!(same_key(&public, &pub_file(&pem)));
        fs::remove_file(d.path("pem.pub")).expect("remove .pub");
        assert!(
            public_key_for(&pem).is_none(),
            "encrypted PEM keeps no public key in clear"
        );

        let ppk = d.write("k.ppk", PPK_V3_ENCRYPTED);
        let public = public_key_for(&ppk).expect("from the PuTTY public lines");
        assert!(same_key(&public, &parse_public_line(PPK_PUBLIC).expect("fixture")));

        let plain = d.keygen("p8", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""]);
        let expected = pub_file(&plain);
        fs::remove_file(d.path("p8.pub")).expect("remove .pub");
        assert!(same_key(&public_key_for(&plain).expect("decoded"), &expected));

        // No key file, only its .pub (an agent-held key): still answered.
        let agent_only = d.keygen("agent", &["-t", "ed25519", "-N", ""]);
        let expected = pub_file(&agent_only);
        fs::remove_file(&agent_only).expect("remove key");
        assert!(same_key(&public_key_for(&agent_only).expect("from .pub"), &expected));
        assert!(public_key_for(&d.path("nothing")).is_none());
    }

    /// Damaged files of every kind: empty, blank, garbage, binary, cut short at any
    /// point or with a flipped character. Never a panic, never a different key, and
    /// a cut-short encrypted key is reported as damaged before a passphrase is asked.
    #[test]
    fn damaged_files_give_clear_errors() {
        let d = Scratch::new("damaged");
        let cases = [
            ("", "empty"),
            (" \n\n\t\n", "empty"),
            ("hello world\n", "no private-key header"),
            (
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                "CERTIFICATE",
            ),
        ];
        for (text, needle) in cases {
            let path = d.write("k", text);
            let err = load(&path, None).expect_err("not a key");
            assert!(
                matches!(
                    err,
                    KeyError::Corrupt {
                        format: KeyFormat::Unknown,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(err.describe(&path).contains(needle), "{}", err.describe(&path));
        }
        let binary = d.write("bin", [0x30, 0x82, 0xff, 0xfe, 0x00, 0x80]);
        let err = load(&binary, None).expect_err("binary");
        assert!(err.describe(&binary).contains("binary"), "{}", err.describe(&binary));

        let keys = [
            (read(&d.keygen("os", &["-t", "ed25519", "-N", ""])), None),
            (read(&d.keygen("os_enc", &["-t", "ed25519", "-N", PASS])), Some(PASS)),
            (
                read(&d.keygen("pem", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""])),
                None,
            ),
            (
                read(&d.keygen("pem_enc", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS])),
                Some(PASS),
            ),
            (read(&d.keygen("p8", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""])), None),
            (
                read(&d.keygen("p8_enc", &["-t", "ecdsa", "-m", "PKCS8", "-N", PASS])),
                Some(PASS),
            ),
            (PPK_V3.to_string(), None),
            (PPK_V3_ENCRYPTED.to_string(), Some(PASS)),
        ];
        for (text, pass) in &keys {
            let original = decode(text, *pass).expect("intact key loads");
            let end = text.trim_end().rfind('\n').unwrap_or(0);
            for cut in (0..text.len()).step_by(5) {
                let short = text.get(..cut).unwrap_or_default();
                for attempt in [None, *pass] {
                    match decode(short, attempt) {
                        Ok(key) => assert!(
                            same_key(key.public_key(), original.public_key()),
                            "cut at {cut} gave another key"
                        ),
                        Err(e) => {
                            let said = e.describe(Path::new("k"));
                            assert!(said.starts_with("Identity file k "), "{said}");
                            if pass.is_some() && cut > 40 && cut < end {
                                assert!(
                                    matches!(e, KeyError::Corrupt { .. }),
                                    "cut at {cut} of an encrypted key: {e:?}"
                                );
                            }
                        }
                    }
                }
            }
            // A flipped character in the middle of the body.
            let mid = text.len() / 2;
            let flipped: String = text
                .char_indices()
                .map(|(i, c)| match (i == mid, c) {
                    (true, 'A') => 'B',
                    (true, c) if c.is_ascii_alphanumeric() => 'A',
                    (_, c) => c,
                })
                .collect();
            if let Ok(key) = decode(&flipped, *pass) {
                assert!(same_key(key.public_key(), original.public_key()));
            }
        }
    }

    /// The passphrase must never reach an error, its Display or its description.
    #[test]
    fn passphrase_never_appears_in_errors() {
        let d = Scratch::new("no_leak");
        let secret = "s3cret-Passphrase-Value";
        let paths = [
            d.keygen("os", &["-t", "ed25519", "-N", PASS]),
            d.keygen("pem", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS]),
            d.keygen("p8", &["-t", "ecdsa", "-m", "PKCS8", "-N", PASS]),
            d.keygen("3des", &["-t", "ed25519", "-Z", "3des-cbc", "-N", PASS]),
            d.write("ppk", PPK_V3_ENCRYPTED),
            d.write("garbage", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"),
        ];
        for path in &paths {
            let err = load(path, Some(secret)).expect_err("wrong passphrase");
            let shown = format!("{err:?} {err} {}", err.describe(path));
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    /// Same list and order as `ssh -G` prints for IdentityFile on the installed
    /// OpenSSH (read with `-F /dev/null` so that no user config interferes).
    #[test]
    fn default_identity_paths_follow_openssh() {
        let home = Path::new("/home/u");
        let ours = default_identity_paths(home);
        let names: Vec<String> = ours
            .iter()
            .map(|p| {
                p.strip_prefix("/home/u/.ssh")
                    .expect("under ~/.ssh")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "id_rsa",
                "id_ecdsa",
                "id_ecdsa_sk",
                "id_ed25519",
                "id_ed25519_sk",
                "id_xmss",
                "id_dsa"
            ]
        );
        let Ok(out) = Command::new("ssh")
            .args(["-F", "/dev/null", "-G", "localhost"])
            .output()
        else {
            return; // no ssh client installed: the list above stands
        };
        let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("identityfile ~/.ssh/"))
            .map(str::to_string)
            .collect();
        // Newer OpenSSH drops entries (id_dsa); it must never add or reorder any.
        let mut rest = names.iter();
        for name in &theirs {
            assert!(rest.any(|n| n == name), "ssh -G lists {theirs:?}, we have {names:?}");
        }
    }

    /// Commands in the advice must survive being pasted into a shell, whatever the
    /// path; `~/` is left unquoted so the shell still expands it.
    #[test]
    fn advice_quotes_paths_for_the_shell() {
        for (path, quoted) in [
            ("/home/u/.ssh/id_rsa", "/home/u/.ssh/id_rsa"),
            ("~/.ssh/id_ed25519", "~/.ssh/id_ed25519"),
            ("~/my keys/work key", "~/'my keys/work key'"),
            ("it's", r"'it'\''s'"),
            ("$(rm -rf x)", "'$(rm -rf x)'"),
        ] {
            assert_eq!(shell_quote(Path::new(path)), quoted);
        }
        let advice = KeyError::TooOpen { mode: 0o644 }.describe(Path::new("~/my keys/id"));
        assert!(advice.contains("`chmod 600 ~/'my keys/id'`"), "{advice}");
        assert!(advice.contains("for ~/my keys/id are"), "{advice}");
    }

    /// A missing file and a directory are reported as such, not as a bad key.
    #[test]
    fn missing_and_unreadable_files() {
        let d = Scratch::new("missing");
        let missing = d.path("nope");
        assert_eq!(load(&missing, None).err(), Some(KeyError::NotFound));
        assert!(
            KeyError::NotFound
                .describe(&missing)
                .contains(&missing.display().to_string())
        );
        let dir = d.path("dir");
        fs::create_dir(&dir).expect("mkdir");
        chmod(&dir, 0o700);
        assert!(matches!(load(&dir, None), Err(KeyError::Unreadable(_))));
    }

    /// Keys pasted with indentation, trailing blanks or CRLF line ends still load
    /// (russh wants the BEGIN line exactly), and a byte-order mark or text around the
    /// block is ignored.
    #[test]
    fn untidy_key_text_still_loads() {
        let d = Scratch::new("untidy");
        for (name, args, pass) in [
            ("os", vec!["-t", "ed25519", "-N", PASS], Some(PASS)),
            (
                "pem",
                vec!["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS],
                Some(PASS),
            ),
            ("p8", vec!["-t", "ecdsa", "-m", "PKCS8", "-N", ""], None),
        ] {
            let text = read(&d.keygen(name, &args));
            let untidy: String = std::iter::once("\u{feff}Bag Attributes: none\r\n".to_string())
                .chain(text.lines().map(|l| format!("    {l}  \r\n")))
                .collect();
            assert_eq!(detect_format(&untidy), detect_format(&text), "{name}");
            assert!(decode(&untidy, pass).is_ok(), "{name}");
        }
    }

    /// An OpenSSH key with its bcrypt rounds replaced (the rest, salt and all, as it was).
    fn with_bcrypt_rounds(text: &str, rounds: u32) -> String {
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut data = STANDARD.decode(body).expect("fixture base64");
        let kdf = data.windows(6).position(|w| w == b"bcrypt").expect("bcrypt kdf") + 6;
        // kdfoptions: uint32 length, string salt, uint32 rounds.
        let salt_len = data
            .get(kdf + 4..kdf + 8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .expect("salt length") as usize;
        let at = kdf + 8 + salt_len;
        data.splice(at..at + 4, rounds.to_be_bytes());
        let encoded = STANDARD.encode(&data);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(70)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    /// Found by fuzzing: a key file sets its own key-derivation cost, and 4294967295
    /// bcrypt rounds or Argon2 passes kept load_identity busy for days. Costs far beyond
    /// what the tools write are refused at once, with or without a passphrase (none would
    /// help), naming the cost; invalid parameters are damage, not a wrong passphrase.
    #[test]
    fn excessive_key_derivation_is_refused_at_once() {
        let d = Scratch::new("kdf_cost");
        let text = read(&d.keygen("os", &["-t", "ed25519", "-N", PASS]));
        let started = std::time::Instant::now();
        for (rounds, bound) in [(u32::MAX, "4294967295 bcrypt rounds"), (10_001, "10001 bcrypt rounds")] {
            let path = d.write("huge", with_bcrypt_rounds(&text, rounds));
            for pass in [None, Some(PASS)] {
                let err = load(&path, pass).expect_err("refused");
                assert!(
                    matches!(&err, KeyError::KdfTooCostly { cost, .. } if cost == bound),
                    "{rounds}: {err:?}"
                );
            }
            let said = load(&path, Some(PASS)).expect_err("refused").describe(&path);
            assert!(
                said.contains(&path.display().to_string()) && said.contains(bound),
                "{said}"
            );
            if rounds == u32::MAX {
                assert!(said.contains("over 1 year") && said.contains("restore"), "{said}");
            } else {
                // Within reach of ssh-keygen: say how to lower it.
                assert!(
                    said.contains(&format!("ssh-keygen -p -a 100 -f {}", path.display())),
                    "{said}"
                );
            }
        }
        assert!(analyze(&with_bcrypt_rounds(&text, 10_000)).kdf_cost.is_none());
        // bcrypt_pbkdf refuses 0 rounds with the error a wrong passphrase gives.
        let zero = with_bcrypt_rounds(&text, 0);
        assert!(matches!(decode(&zero, Some(PASS)), Err(KeyError::Corrupt { .. })));

        let ppk = |line: &str, value: &str| {
            let prefix = format!("{line}: ");
            PPK_V3_ENCRYPTED
                .lines()
                .map(|l| match l.strip_prefix(&prefix) {
                    Some(_) => format!("{prefix}{value}\n"),
                    None => format!("{l}\n"),
                })
                .collect::<String>()
        };
        for (text, cost) in [
            (
                ppk("Argon2-Passes", "4294967295"),
                "4294967295 Argon2id passes over 32 KiB of memory",
            ),
            (ppk("Argon2-Memory", "4194304"), "Argon2id with 4096 MiB of memory"),
            (
                ppk("Argon2-Memory", "1048576").replace("Passes: 1\n", "Passes: 33\n"),
                "33 Argon2id passes over 1048576 KiB of memory",
            ),
        ] {
            for pass in [None, Some(PASS)] {
                let err = decode(&text, pass).expect_err("refused");
                assert!(
                    matches!(&err, KeyError::KdfTooCostly { format: KeyFormat::Putty, cost: c, .. } if c == cost),
                    "{err:?}"
                );
                assert!(err.describe(Path::new("k.ppk")).contains("puttygen") || text.contains("4294967295"));
            }
        }
        // A repeated line counts as ssh-key reads it: the last one.
        let repeated = PPK_V3_ENCRYPTED.replace("Argon2-Passes: 1\n", "Argon2-Passes: 1\nArgon2-Passes: 4294967295\n");
        assert!(matches!(
            decode(&repeated, Some(PASS)),
            Err(KeyError::KdfTooCostly { .. })
        ));
        // Values Argon2 refuses (with the error a wrong MAC gives) are damage.
        let no_salt: String = PPK_V3_ENCRYPTED
            .lines()
            .filter(|l| !l.starts_with("Argon2-Salt"))
            .map(|l| format!("{l}\n"))
            .collect();
        for text in [
            ppk("Argon2-Passes", "0"),
            ppk("Argon2-Parallelism", "0"),
            ppk("Argon2-Parallelism", "5"),
            ppk("Argon2-Parallelism", "100000"),
            ppk("Argon2-Memory", "x"),
            ppk("Argon2-Salt", "abc"),
            no_salt,
        ] {
            for pass in [None, Some(PASS)] {
                assert!(
                    matches!(decode(&text, pass), Err(KeyError::Corrupt { .. })),
                    "{text}: {:?}",
                    decode(&text, pass)
                );
            }
        }
        // Encrypted PKCS#8: PBKDF2 iterations and scrypt parameters, in hand-made DER.
        let tlv = |tag: u8, parts: &[&[u8]]| {
            let body = parts.concat();
            let mut out = vec![tag];
            if body.len() < 0x80 {
                out.push(u8::try_from(body.len()).expect("short"));
            } else {
                out.push(0x82);
                out.extend(u16::try_from(body.len()).expect("fits").to_be_bytes());
            }
            out.extend(body);
            out
        };
        let oid = |der: &[u8]| tlv(OID, &[der]);
        let int = |n: u64| {
            let bytes = n.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
            let mut v = bytes.get(skip..).unwrap_or_default().to_vec();
            if v.first().is_some_and(|&b| b & 0x80 != 0) {
                v.insert(0, 0);
            }
            tlv(INTEGER, &[&v])
        };
        let salt = tlv(OCTET_STRING, &[&[7u8; 16]]);
        let aes256 = tlv(
            SEQUENCE,
            &[
                &oid(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a]),
                &tlv(OCTET_STRING, &[&[1u8; 16]]),
            ],
        );
        let sha256 = tlv(
            SEQUENCE,
            &[&oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09]), &[0x05, 0x00]],
        );
        let pbkdf2 = |iterations: u64| {
            tlv(
                SEQUENCE,
                &[
                    &oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c]),
                    &tlv(SEQUENCE, &[&salt, &int(iterations), &sha256]),
                ],
            )
        };
        let scrypt = |n: u64, r: u64, p: u64| {
            tlv(
                SEQUENCE,
                &[
                    &oid(&[0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x04, 0x0b]),
                    &tlv(SEQUENCE, &[&salt, &int(n), &int(r), &int(p)]),
                ],
            )
        };
        let pem = |kdf: Vec<u8>| {
            let pbes2 = tlv(
                SEQUENCE,
                &[
                    &oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d]),
                    &tlv(SEQUENCE, &[&kdf, &aes256]),
                ],
            );
            let info = tlv(SEQUENCE, &[&pbes2, &tlv(OCTET_STRING, &[&[9u8; 48]])]);
            format!(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
                STANDARD.encode(info)
            )
        };
        assert_eq!(analyze(&pem(pbkdf2(2048))).kdf_cost, None);
        assert_eq!(analyze(&pem(pbkdf2(10_000_000))).kdf_cost, None);
        assert_eq!(analyze(&pem(scrypt(16384, 8, 1))).kdf_cost, None);
        for (text, cost) in [
            (pem(pbkdf2(u64::from(u32::MAX))), "4294967295 PBKDF2 iterations"),
            (
                pem(scrypt(1 << 30, 8, 1)),
                "scrypt with N=1073741824, r=8, p=1 (1048576 MiB of memory)",
            ),
            (
                pem(scrypt(1 << 20, 8, 64)),
                "scrypt with N=1048576, r=8, p=64 (1024 MiB of memory)",
            ),
        ] {
            assert_eq!(detect_format(&text), KeyFormat::Pkcs8Encrypted);
            for pass in [None, Some(PASS)] {
                let err = decode(&text, pass).expect_err("refused");
                assert!(
                    matches!(&err, KeyError::KdfTooCostly { cost: c, .. } if c == cost),
                    "{err:?}"
                );
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    /// Found by fuzzing: damaged keys were reported as needing a passphrase, even when it
    /// had been given ("asked for a passphrase that was given"). Damage is reported as
    /// damage, naming the format and what is wrong, whatever the passphrase.
    #[test]
    fn damaged_keys_are_never_passphrase_errors() {
        let d = Scratch::new("damaged_not_passphrase");
        let encrypted = read(&d.keygen("os", &["-t", "ed25519", "-N", PASS]));
        let plain = read(&d.keygen("p8", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""]));
        let body_start = encrypted.find('\n').expect("BEGIN line") + 1;
        let end = encrypted.find("-----END").expect("END line");
        let cases = [
            (
                "-----BEGIN PRIVATE KEY-----\nDEK-Info:AES-128-CBC,B93A892866C741880E23B892866C7418".to_string(),
                "END",
            ),
            (
                format!(
                    "{}b3Blbz-\n{}--\n",
                    encrypted.get(..body_start).unwrap_or_default(),
                    encrypted.get(body_start..end).unwrap_or_default()
                ),
                "END",
            ),
            // The whole key, intact but for a garbage line russh would skip.
            (
                format!(
                    "{}b3Blbz-\n{}",
                    encrypted.get(..body_start).unwrap_or_default(),
                    encrypted.get(body_start..).unwrap_or_default()
                ),
                "stray",
            ),
            // PEM encryption headers where they do not belong (russh would then decrypt
            // the block as PEM RSA and want a passphrase).
            (
                plain.replacen('\n', "\nDEK-Info: AES-128-CBC,B93A892866C741880E23B892866C7418\n\n", 1),
                "PEM encryption headers",
            ),
            (
                encrypted.replacen('\n', "\nDEK-Info: AES-128-CBC,B93A892866C741880E23B892866C7418\n\n", 1),
                "PEM encryption headers",
            ),
        ];
        for (text, needle) in cases {
            for pass in [None, Some(PASS), Some(WRONG)] {
                let err = decode(&text, pass).expect_err("damaged");
                assert!(matches!(err, KeyError::Corrupt { .. }), "{text:?} {pass:?}: {err:?}");
                let said = err.describe(Path::new("k"));
                assert!(said.contains(needle), "{said}");
            }
        }
    }

    /// Text quoted from a key file (a PEM label, a cipher or algorithm name, a decoder's
    /// message) and the path itself never reach the terminal with control characters.
    #[test]
    fn messages_escape_control_characters() {
        let hostile = "\u{1b}[2J\u{7}\u{202e}evil";
        let path = Path::new("/k/id\u{1b}]0;x\u{7}\nkey");
        let errors = [
            KeyError::Unreadable(hostile.into()),
            KeyError::UnsupportedCipher {
                format: KeyFormat::OpenSsh { encrypted: true },
                cipher: hostile.into(),
            },
            KeyError::UnsupportedAlgorithm {
                format: KeyFormat::Putty,
                algorithm: hostile.into(),
            },
            KeyError::Corrupt {
                format: KeyFormat::Pkcs8,
                detail: hostile.repeat(1000),
            },
            KeyError::KdfTooCostly {
                format: KeyFormat::Putty,
                cost: hostile.into(),
                seconds: 100,
            },
            KeyError::Unsupported {
                format: KeyFormat::Ssh2,
            },
            KeyError::NotFound,
        ];
        let clean = |s: &str| !s.chars().any(|c| c.is_control() || is_invisible(c));
        for err in errors {
            let said = err.describe(path);
            assert!(clean(&said), "{said:?}");
            assert!(said.len() < 2000, "{} bytes", said.len());
            assert!(said.contains(r"/k/id\x1b]0;x\x07\nkey"), "{said}");
            assert!(clean(&err.to_string()), "{err}");
        }
        assert_eq!(shell_quote(path), r"$'/k/id\x1b]0;x\x07\x0akey'");
        assert_eq!(shell_quote(Path::new("~/a'\u{202e}")), r"~/$'a\'\u202e'");
        let label = decode("-----BEGIN \u{1b}[31mX-----\nAAAA\n-----END \u{1b}[31mX-----\n", None)
            .expect_err("not a key")
            .describe(Path::new("k"));
        assert!(clean(&label) && label.contains(r"\x1b[31mX"), "{label}");
        assert_eq!(printable("abc", 2), "ab…");
        assert_eq!(printable("a\u{1b}", 4), "a…");
    }

    /// Only regular files are read, at most 1 MiB of them: a FIFO must not block the
    /// read (nobody may ever write to it), `/dev/zero` must not eat memory, and neither
    /// gets "chmod 600" advice.
    #[test]
    fn special_and_oversized_files_are_refused() {
        let d = Scratch::new("special");
        let fifo = d.path("fifo");
        run("mkfifo", &[fifo.to_str().expect("utf-8")]);
        chmod(&fifo, 0o600);
        let started = std::time::Instant::now();
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (Path::new("/dev/null"), "a character device"),
        ] {
            let err = load(path, None).expect_err("not a regular file");
            assert!(
                matches!(&err, KeyError::Unreadable(why) if why.contains(kind)),
                "{err:?}"
            );
            assert!(!err.describe(path).contains("chmod"), "{}", err.describe(path));
            // The reader checks what it opened as well (public_key_for reads FILE.pub).
            assert!(matches!(read_key_text(path), Err(KeyError::Unreadable(_))));
        }
        assert!(public_key_for(&fifo).is_none());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));

        let big = d.write("big", vec![b'A'; (1 << 20) + 1]);
        let err = load(&big, None).expect_err("too large");
        assert!(
            matches!(&err, KeyError::Corrupt { detail, .. } if detail.contains("1048577 bytes")),
            "{err:?}"
        );
    }
}
