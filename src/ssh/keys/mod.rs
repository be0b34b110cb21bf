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
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use russh::keys::{Algorithm, PrivateKey, PublicKey, decode_secret_key, ssh_key};
use zeroize::Zeroizing;

use crate::safe_file::{self, NullDevice, Problem};
use crate::secret::Secret;

mod analysis;
mod analyze;
mod armour;
mod create;
mod describe;
mod ec;
mod openssh;
mod pem;
mod pkcs8;
mod putty;
mod signer;
mod sshcom;
#[cfg(test)]
mod tests;

use analysis::Analysis;
use analyze::{analyze, parse_public_line};
pub use create::{CreateError, create_ed25519, public_path};
pub use describe::KeyError;
#[cfg(test)]
use describe::shell_quote;
pub(crate) use signer::AgentKeySigner;
pub use signer::KeySigner;

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

pub(crate) use crate::text::escaped as printable;

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
/// owned by the current user are checked.
///
/// Anything but a regular file (a directory, a FIFO that would block the read, a device
/// such as `/dev/zero` that never ends) is refused as unreadable first: its mode says
/// nothing about a key, and `chmod 600 /dev/zero` is no advice to give.
pub fn check_permissions(path: &Path) -> Result<(), KeyError> {
    check_mode(open_key(path)?.metadata())
}

/// The owner and mode check of [`check_permissions`], on the opened file's metadata.
fn check_mode(meta: &fs::Metadata) -> Result<(), KeyError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 && meta.uid() == nix::unistd::getuid().as_raw() {
        return Err(KeyError::TooOpen { mode });
    }
    Ok(())
}

/// Loads a private key for authentication: checks permissions, detects the
/// format, then decodes with russh (handing over the passphrase only when the
/// key is encrypted; an unneeded passphrase is ignored, as OpenSSH does).
pub fn load_identity(path: &Path, passphrase: Option<&Secret>) -> Result<PrivateKey, KeyError> {
    let opened = open_key(path)?;
    let checked = check_mode(opened.metadata());
    let text = read_opened_key(opened);
    if let Err(e) = checked {
        // `-i key.pub` is a slip worth naming; "chmod 600 key.pub" would mislead.
        if text.is_ok_and(|text| detect_format(&text) == KeyFormat::PublicKey) {
            return Err(KeyError::Unsupported {
                format: KeyFormat::PublicKey,
            });
        }
        return Err(e);
    }
    decode_identity(&text?, passphrase)
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
            let algorithm = pkcs8::oid_name(oid);
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
        KeyFormat::OpenSsh { .. } => Ok(openssh::decode(&a.der, pass)?),
        KeyFormat::PemRsa { encrypted } | KeyFormat::PemEc { encrypted } => {
            let plain = match (&a.dek, pass) {
                (Some((cipher, iv)), Some(pass)) => pem::decrypt_legacy(&a.der, cipher, iv, pass)?,
                (Some(_), None) => return Err(russh::keys::Error::KeyIsEncrypted),
                (None, _) if encrypted => return Err(russh::keys::Error::CouldNotReadKey),
                (None, _) => Zeroizing::new(a.der.to_vec()),
            };
            if matches!(a.format, KeyFormat::PemEc { .. }) {
                ec::decode_sec1(&plain, None)
            } else {
                decode_secret_key(&pem::pem_text("RSA PRIVATE KEY", &plain), None)
            }
        }
        KeyFormat::Pkcs8 => pkcs8::decode(&a.der),
        KeyFormat::Pkcs8Encrypted => pkcs8::decode_encrypted(&a.der, pass.ok_or(russh::keys::Error::KeyIsEncrypted)?),
        _ => decode_secret_key(&a.text, pass),
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

/// The public half of an identity, for `sqltun authorize`: as [`public_key_for`] finds it (the file's
/// own public section, the key itself when unencrypted, else `FILE.pub`), with the reason when there is
/// none. An encrypted key that keeps its public half only in `FILE.pub` (PEM, PKCS#8) without that
/// file is [`KeyError::NeedsPassphrase`]: no passphrase is asked for here.
pub fn public_key_of(path: &Path) -> Result<PublicKey, KeyError> {
    let text = read_key_text(path)?;
    let a = analyze(&text);
    if let Some(public) = a.public {
        return Ok(public);
    }
    let decoded = if a.encrypted {
        Err(KeyError::NeedsPassphrase { format: a.format })
    } else {
        decode_identity(&text, None).map(|key| key.public_key().clone())
    };
    let Err(e) = decoded else {
        return decoded;
    };
    let mut pub_path = path.as_os_str().to_os_string();
    pub_path.push(".pub");
    match read_key_text(Path::new(&pub_path)) {
        Ok(text) => parse_public_line(&text).ok_or(KeyError::Corrupt {
            format: KeyFormat::PublicKey,
            detail: format!("{} holds no public key line", Path::new(&pub_path).display()),
        }),
        Err(KeyError::NotFound) => Err(e),
        Err(other) => Err(other),
    }
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
        _ => KeyError::Unreadable(e.to_string()),
    }
}

/// Opens a key file through [`safe_file`]: a regular file only, never blocking.
fn open_key(path: &Path) -> Result<safe_file::Opened, KeyError> {
    safe_file::open(path, NullDevice::Refuse).map_err(|e| key_file_error(e.problem()))
}

/// What a key file that could not be read gets said about it.
fn key_file_error(problem: &Problem) -> KeyError {
    match problem {
        Problem::Io(e) => io_error(e),
        Problem::Vanished => KeyError::NotFound,
        Problem::NotRegular(_) => KeyError::Unreadable(problem.to_string()),
        // The length was checked before reading: the file grew while it was read.
        Problem::TooLarge { .. } => KeyError::Corrupt {
            format: KeyFormat::Unknown,
            detail: "it is larger than 1 MiB, far too large for a key file".into(),
        },
        Problem::NotText => KeyError::Corrupt {
            format: KeyFormat::Unknown,
            detail: "it is binary data, not a text key file (a DER key must be converted \
                     to PEM first, e.g. with `openssl pkey -inform DER`)"
                .into(),
        },
    }
}

/// Reads a key file as text, refusing anything but a regular file of at most
/// [`MAX_KEY_FILE_LEN`] bytes; the buffer is wiped when dropped.
fn read_key_text(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    read_opened_key(open_key(path)?)
}

/// The text of an opened key file, refused unread when its length says it is too large.
fn read_opened_key(opened: safe_file::Opened) -> Result<Zeroizing<String>, KeyError> {
    let len = opened.metadata().len();
    if len > MAX_KEY_FILE_LEN {
        return Err(KeyError::Corrupt {
            format: KeyFormat::Unknown,
            detail: format!("it is {len} bytes long, far too large for a key file (at most 1 MiB)"),
        });
    }
    opened
        .read_secret_text(MAX_KEY_FILE_LEN)
        .map_err(|e| key_file_error(e.problem()))
}
