//! known_hosts files, read and matched with OpenSSH's semantics.
//!
//! sqltun checks host keys itself instead of using russh's known_hosts helpers, because
//! those disagree with OpenSSH in ways users notice: a second key of the same type is
//! reported as "changed", `@revoked` lines are ignored and wildcard/negated host patterns
//! do not match. Users share these files with `ssh`, so an entry must mean here exactly
//! what it means there (reference: OpenSSH's `hostfile.c` and `match.c`, and the
//! "SSH_KNOWN_HOSTS FILE FORMAT" section of sshd(8)).
//!
//! Parsing (and reading) files is in `parse`, deciding what a file says about a host key in
//! `matching` (host patterns through [`crate::pattern`], as in ssh_config), writing in `append`.
//! Everything is pure logic over parsed files except [`KnownHosts::load`] and [`append`].
//! Malformed lines never fail a whole file: like OpenSSH we skip them, but we also keep
//! them as [`Problem`]s so `-v` can say why a line was ignored.

mod append;
mod matching;
mod parse;

use std::path::PathBuf;

use russh::keys::ssh_key::Algorithm;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{HashAlg, PublicKey};

pub use append::append;
pub use matching::{check, known_keys};

/// `|1|` introduces a hashed host field (HMAC-SHA1, the only scheme OpenSSH has).
const HASH_MAGIC: &str = "|1|";
/// OpenSSH rejects hashed entries whose salt is not exactly one SHA-1 output long.
const SHA1_LEN: usize = 20;
/// Problem messages quote the offending field; keep a garbage line from flooding `-v`.
const EXCERPT_CHARS: usize = 40;
/// Longest text from a decoder error quoted in a problem message.
const ERROR_CHARS: usize = 100;
/// Larger files are refused unread: at ~100 bytes a line, this is over 150,000 hosts.
const MAX_FILE_LEN: u64 = 16 << 20;

/// The optional `@…` marker in front of a known_hosts line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A plain host key line.
    None,
    /// `@revoked`: this key must be refused for the matching hosts.
    Revoked,
    /// `@cert-authority`: this key signs host certificates for the matching hosts.
    CertAuthority,
}

/// Which host names a line applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSpec {
    /// `|1|salt|hash`: HMAC-SHA1 of the lookup name keyed with `salt` (both 20 bytes).
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Comma-separated patterns as written (with `*`, `?` and a leading `!` for negation).
    Patterns(Vec<String>),
}

/// One parsed known_hosts line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the file.
    pub line: usize,
    pub marker: Marker,
    pub hosts: HostSpec,
    /// The key, with the line's trailing comment (if any) as its comment.
    pub key: PublicKey,
}

/// A line that was skipped because it could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number in the file.
    pub line: usize,
    pub message: String,
}

/// One known_hosts file: its usable entries and the lines that were skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHosts {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
    pub problems: Vec<Problem>,
}

/// The name OpenSSH looks a host up by: `host` for port 22, `[host]:port` otherwise; lowercase.
///
/// Port 0 is treated as 22, as OpenSSH's `put_host_port` does.
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 || port == 0 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// The outcome of looking a host key up in known_hosts files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Trusted {
        path: PathBuf,
        line: usize,
    },
    Revoked {
        path: PathBuf,
        line: usize,
    },
    /// host has a key of the same algorithm in this file, but none matches the offered key
    Changed {
        path: PathBuf,
        line: usize,
        known: PublicKey,
    },
    /// nothing known for this host; `other_types` lists algorithms known for it (OpenSSH warns about those)
    Unknown {
        other_types: Vec<String>,
    },
}

/// A key's fingerprint as OpenSSH prints it: `SHA256:base64-without-padding`.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The key type name used to decide "same algorithm", as written in known_hosts lines
/// and listed in `other_types` of [`Verdict::Unknown`].
///
/// RSA is always `ssh-rsa`: `rsa-sha2-256`/`rsa-sha2-512` are signature algorithms over
/// the same key. Certificates get their certificate type so they never equal a plain key.
pub fn key_type(key: &PublicKey) -> String {
    key_data_type(key.key_data())
}

fn key_data_type(data: &KeyData) -> String {
    match data {
        KeyData::Certificate(cert) => cert.algorithm().to_certificate_type(),
        _ => match data.algorithm() {
            Algorithm::Rsa { .. } => Algorithm::Rsa { hash: None }.as_str().to_owned(),
            other => other.as_str().to_owned(),
        },
    }
}

/// Quotes a piece of a bad line for a problem message: control and invisible formatting
/// characters escaped, at most [`EXCERPT_CHARS`] characters shown (escapes included).
fn excerpt(s: &str) -> String {
    format!("\"{}\"", crate::text::escaped(s, EXCERPT_CHARS))
}

#[cfg(test)]
mod tests;
