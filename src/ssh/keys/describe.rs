//! What an identity file's failure is ([`KeyError`]) and the one sentence that tells the user
//! about it: the file as given, what is wrong, and the command that fixes it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{DETAIL_CHARS, KeyFormat, NAME_CHARS, printable};
use crate::text::{is_invisible, shell_word};

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
            Self::KdfTooCostly { format, cost, seconds } => describe_kdf_cost(*format, cost, *seconds, path),
        }
    }
}

/// The sentence for [`KeyError::KdfTooCostly`]: the cost, how long it would take, and a way out
/// that fits it (none, for a cost no tool could pay).
fn describe_kdf_cost(format: KeyFormat, cost: &str, seconds: u64, path: &Path) -> String {
    let p = printable(&path.display().to_string(), usize::MAX);
    let q = shell_quote(path);
    let cost = printable(cost, NAME_CHARS);
    let took = duration_words(seconds);
    let fix = if seconds > 24 * 60 * 60 {
        // No tool decrypts it any faster: converting is no way out.
        "no tool can decrypt it in reasonable time, so the file is most likely \
         damaged: restore it from a backup or create a new key"
            .to_string()
    } else if format == KeyFormat::Putty {
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
    let why = if seconds >= 60 {
        format!(", as deriving its key would take {took}")
    } else {
        String::new()
    };
    format!(
        "Identity file {p} ({format}) asks for {cost}, far more than key tools \
         write; refusing{why}; {fix}."
    )
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

/// The path as given, as one word for a shell command: [`shell_word`], but for what it does not
/// do. A leading `~/` stays outside the quotes so that the shell still expands it (the paths in
/// these messages are shown as the user gave them, `~/.ssh/id_rsa`). A path holding control or
/// invisible characters is written `$'…'` with them escaped, so that the command still names the
/// file while the terminal never receives them raw (single quotes would pass them through).
pub(super) fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let (home, rest) = match text.strip_prefix("~/") {
        Some(rest) => ("~/", rest),
        None => ("", text.as_str()),
    };
    if !rest.chars().any(|c| c.is_control() || is_invisible(c)) {
        return format!("{home}{}", shell_word(rest));
    }
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
    quoted
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

impl std::error::Error for KeyError {}
