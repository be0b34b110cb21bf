//! known_hosts files, read and matched with OpenSSH's semantics.
//!
//! sqltun checks host keys itself instead of using russh's known_hosts helpers, because
//! those disagree with OpenSSH in ways users notice: a second key of the same type is
//! reported as "changed", `@revoked` lines are ignored and wildcard/negated host patterns
//! do not match. Users share these files with `ssh`, so an entry must mean here exactly
//! what it means there (reference: OpenSSH's `hostfile.c` and `match.c`, and the
//! "SSH_KNOWN_HOSTS FILE FORMAT" section of sshd(8)).
//!
//! Everything is pure logic over parsed files except [`KnownHosts::load`] and [`append`].
//! Malformed lines never fail a whole file: like OpenSSH we skip them, but we also keep
//! them as [`Problem`]s so `-v` can say why a line was ignored.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::Algorithm;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{HashAlg, PublicKey};

use super::keys::{is_null_device, open_regular, printable, special_file_kind};

/// `|1|` introduces a hashed host field (HMAC-SHA1, the only scheme OpenSSH has).
const HASH_MAGIC: &str = "|1|";
/// OpenSSH rejects hashed entries whose salt is not exactly one SHA-1 output long.
const SHA1_LEN: usize = 20;
/// OpenSSH copies each comma-separated subpattern into a 1024-byte buffer and treats a
/// longer one as "the whole list does not match"; we keep that limit so an entry never
/// matches here when `ssh` would ignore it.
const MAX_SUBPATTERN: usize = 1023;
/// Problem messages quote the offending field; keep a garbage line from flooding `-v`.
const EXCERPT_CHARS: usize = 40;
/// Longest text from a decoder error quoted in a problem message.
const ERROR_CHARS: usize = 100;
/// Larger files are refused unread: at ~100 bytes a line, this is over 150,000 hosts.
const MAX_FILE_LEN: u64 = 16 << 20;

type HmacSha1 = Hmac<sha1::Sha1>;

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

impl HostSpec {
    /// Whether this host field applies to the lookup name `name` (compared case-insensitively).
    pub fn matches(&self, name: &str) -> bool {
        self.matches_lowercase(&name.to_ascii_lowercase())
    }

    /// `name` must already be lowercase: check() lowercases its names once, not per entry.
    fn matches_lowercase(&self, name: &str) -> bool {
        match self {
            HostSpec::Hashed { salt, hash } => hashed_matches(salt, hash, name),
            HostSpec::Patterns(patterns) => patterns_match(patterns, name),
        }
    }
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

impl KnownHosts {
    /// Parses the text of a known_hosts file. Never fails: bad lines go to `problems`.
    pub fn parse(path: &Path, text: &str) -> KnownHosts {
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        // `str::lines` splits on '\n' exactly like OpenSSH's getline loop, so line numbers
        // agree with what `ssh` prints (and with what append() returns).
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            match parse_line(raw) {
                Ok(None) => {}
                Ok(Some((marker, hosts, key))) => entries.push(Entry {
                    line,
                    marker,
                    hosts,
                    key,
                }),
                Err(message) => problems.push(Problem { line, message }),
            }
        }
        KnownHosts {
            path: path.to_path_buf(),
            entries,
            problems,
        }
    }

    /// Reads and parses a known_hosts file; `Ok(None)` when it does not exist.
    ///
    /// Only a regular file of at most 16 MiB is read (or the null device, which stands for
    /// "no file" in many configurations); anything else, such as a FIFO that would block,
    /// `/dev/zero` or a directory, is refused with an `InvalidInput` error saying what it
    /// is, and a larger file with `InvalidData` giving its size. The message does not
    /// repeat the path: callers put it in front.
    pub fn load(path: &Path) -> io::Result<Option<KnownHosts>> {
        let (file, meta) = match open_regular(path, true) {
            Ok(opened) => opened,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let too_large = |len: u64| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("it is {len} bytes long, more than the 16 MiB a known_hosts file may be"),
            )
        };
        if meta.len() > MAX_FILE_LEN {
            return Err(too_large(meta.len()));
        }
        let mut bytes = Vec::new();
        // Bounded as well: the file may grow while it is read.
        file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_LEN {
            return Err(too_large(bytes.len() as u64));
        }
        // OpenSSH reads bytes; a stray Latin-1 comment must not make the whole file
        // unreadable. Invalid sequences become U+FFFD, which no lookup name contains.
        let text = String::from_utf8_lossy(&bytes);
        Ok(Some(KnownHosts::parse(path, &text)))
    }
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

/// Decides whether `key` is trusted for the host known under `names`.
///
/// `names`: the lookup names to try (usually one: lookup_name(host_or_HostKeyAlias, port)).
/// Files are searched in order. A matching `@revoked` line wins over everything, then the
/// first plain line holding exactly this key, then the first plain line holding another key
/// of the same algorithm. `@cert-authority` lines are not consulted.
pub fn check(files: &[KnownHosts], names: &[String], key: &PublicKey) -> Verdict {
    let names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let applies = |entry: &Entry| names.iter().any(|n| entry.hosts.matches_lowercase(n));
    let entries = || {
        files
            .iter()
            .flat_map(|file| file.entries.iter().map(move |entry| (file, entry)))
    };

    // Revocation is checked first and separately: a revoked key stays refused even when
    // an earlier line (or another file) still lists it as trusted.
    if let Some((file, entry)) =
        entries().find(|(_, e)| e.marker == Marker::Revoked && applies(e) && is_revoked_by(key, &e.key))
    {
        return Verdict::Revoked {
            path: file.path.clone(),
            line: entry.line,
        };
    }

    let plain = || entries().filter(|(_, e)| e.marker == Marker::None && applies(e));

    // Comments are not part of a key's identity; compare the key material only.
    if let Some((file, entry)) = plain().find(|(_, e)| e.key.key_data() == key.key_data()) {
        return Verdict::Trusted {
            path: file.path.clone(),
            line: entry.line,
        };
    }

    let offered_type = key_type(key);
    if let Some((file, entry)) = plain().find(|(_, e)| key_type(&e.key) == offered_type) {
        return Verdict::Changed {
            path: file.path.clone(),
            line: entry.line,
            known: entry.key.clone(),
        };
    }

    let mut other_types: Vec<String> = Vec::new();
    for (_, entry) in plain() {
        let t = key_type(&entry.key);
        if !other_types.contains(&t) {
            other_types.push(t);
        }
    }
    Verdict::Unknown { other_types }
}

/// The plain (unmarked) entries that apply to any of `names`, in file order.
///
/// Lets a caller name the lines behind `other_types` in [`Verdict::Unknown`], or apply
/// OpenSSH's stricter reading in which a key of another type also counts as "changed".
pub fn known_keys<'a>(files: &'a [KnownHosts], names: &[String]) -> Vec<(&'a Path, &'a Entry)> {
    let names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    files
        .iter()
        .flat_map(|file| file.entries.iter().map(move |e| (file.path.as_path(), e)))
        .filter(|(_, e)| e.marker == Marker::None && names.iter().any(|n| e.hosts.matches_lowercase(n)))
        .collect()
}

/// Append `name key-type base64` (OpenSSH's format; the host name not hashed unless `hash` is true) to the file,
/// creating the parent directory (mode 0700) and file (mode 0600) when missing; returns the new line number.
///
/// The name is lowercased as OpenSSH does when it writes. Names that would change meaning
/// when read back (empty, whitespace, commas, wildcards, a leading `#`, `@`, `|` or `!`)
/// are refused with `InvalidInput`, as are certificates, which do not belong in this format.
///
/// The returned line number is computed from the file as read just before writing; another
/// process appending at the same moment could shift it (OpenSSH does not lock either).
pub fn append(path: &Path, name: &str, key: &PublicKey, hash: bool) -> io::Result<usize> {
    let name = name.to_ascii_lowercase();
    validate_append_name(&name)?;
    if key.key_data().is_certificate() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a certificate cannot be stored as a known host key",
        ));
    }
    let host_field = if hash { hash_host(&name)? } else { name };
    let blob = key.to_bytes().map_err(io::Error::other)?;
    let entry = format!("{host_field} {} {}\n", key_type(key), BASE64.encode(blob));

    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        create_private_dir(parent)?;
    }
    let mut file = open_private_append(path)?;
    // Counted as it streams by: the file may be large, and only its lines matter here.
    let (mut newlines, mut last) = (0usize, None);
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        let read = chunk.get(..n).unwrap_or_default();
        newlines += read.iter().filter(|&&b| b == b'\n').count();
        last = read.last().copied().or(last);
    }
    // A last line without its newline would otherwise be glued to our entry.
    let missing_newline = last.is_some_and(|b| b != b'\n');
    let mut out = Vec::with_capacity(entry.len() + 1);
    if missing_newline {
        out.push(b'\n');
    }
    out.extend_from_slice(entry.as_bytes());
    // One write: with O_APPEND it lands at the end as a unit, never interleaved mid-line.
    file.write_all(&out)?;
    Ok(newlines + usize::from(missing_newline) + 1)
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

/// True when a `@revoked` line holding `revoked` refuses the offered key: the key itself,
/// or for a certificate its certified key or the CA that signed it (as OpenSSH does).
fn is_revoked_by(offered: &PublicKey, revoked: &PublicKey) -> bool {
    let revoked = revoked.key_data();
    match offered.key_data() {
        KeyData::Certificate(cert) => cert.public_key() == revoked || cert.signature_key() == revoked,
        data => data == revoked,
    }
}

/// Splits off the first blank-delimited field; returns it and the rest with the blanks
/// after it skipped. Only space and tab separate fields in OpenSSH's parser.
fn split_field(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(end) => {
            let (field, rest) = s.split_at(end);
            (field, rest.trim_start_matches([' ', '\t']))
        }
        None => (s, ""),
    }
}

/// Quotes a piece of a bad line for a problem message: control and invisible formatting
/// characters escaped, at most [`EXCERPT_CHARS`] characters shown (escapes included).
fn excerpt(s: &str) -> String {
    format!("\"{}\"", printable(s, EXCERPT_CHARS))
}

type ParsedLine = (Marker, HostSpec, PublicKey);

/// Parses one line: `Ok(None)` for blank and comment lines, `Err(reason)` for lines
/// OpenSSH would skip.
fn parse_line(raw: &str) -> Result<Option<ParsedLine>, String> {
    // CRLF files: OpenSSH's base64 decoder skips the '\r', so such lines work in `ssh`.
    let line = raw.strip_suffix('\r').unwrap_or(raw);
    let rest = line.trim_start_matches([' ', '\t']);
    if rest.is_empty() || rest.starts_with('#') {
        return Ok(None);
    }

    let (marker, rest) = if rest.starts_with('@') {
        let (word, after) = split_field(rest);
        let marker = match word {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            _ => return Err(format!("unknown marker {}", excerpt(word))),
        };
        if after.is_empty() {
            return Err(format!("{word} without host and key"));
        }
        if after.starts_with('@') {
            return Err("more than one marker".to_owned());
        }
        (marker, after)
    } else {
        (Marker::None, rest)
    };

    let (host_field, rest) = split_field(rest);
    if rest.is_empty() || rest.starts_with('#') {
        return Err("missing key type and key".to_owned());
    }
    let hosts = parse_hosts(host_field)?;

    let (type_name, rest) = split_field(rest);
    if rest.is_empty() {
        return Err(format!("missing key data after {}", excerpt(type_name)));
    }
    let (b64, comment) = split_field(rest);
    let key = parse_key(type_name, b64, comment.trim_end_matches([' ', '\t']))?;
    Ok(Some((marker, hosts, key)))
}

fn parse_hosts(field: &str) -> Result<HostSpec, String> {
    // OpenSSH treats any host field starting with '|' as hashed, and a malformed one as
    // a bad line rather than a literal pattern.
    if !field.starts_with('|') {
        return Ok(HostSpec::Patterns(field.split(',').map(str::to_owned).collect()));
    }
    let bad = || format!("malformed hashed host {}", excerpt(field));
    let body = field.strip_prefix(HASH_MAGIC).ok_or_else(bad)?;
    let (salt, hash) = body.split_once('|').ok_or_else(bad)?;
    // Strict (padded, canonical) base64: OpenSSH compares the re-encoded string, so a
    // non-canonical encoding could never match there either.
    let salt = BASE64.decode(salt).map_err(|_| bad())?;
    let hash = BASE64.decode(hash).map_err(|_| bad())?;
    if salt.len() != SHA1_LEN || hash.len() != SHA1_LEN {
        return Err(bad());
    }
    Ok(HostSpec::Hashed { salt, hash })
}

fn parse_key(type_name: &str, b64: &str, comment: &str) -> Result<PublicKey, String> {
    let named = Algorithm::new(type_name)
        .ok()
        .filter(|a| !matches!(a, Algorithm::Other(_)))
        .ok_or_else(|| format!("unknown or unsupported key type {}", excerpt(type_name)))?;
    let blob = BASE64
        .decode(b64)
        .map_err(|_| format!("key data is not valid base64: {}", excerpt(b64)))?;
    // The decoder's message may quote the blob (an invalid label): escaped, shortened.
    let mut key = PublicKey::from_bytes(&blob).map_err(|err| {
        format!(
            "cannot decode {} key data: {}",
            printable(type_name, EXCERPT_CHARS),
            printable(&err.to_string(), ERROR_CHARS)
        )
    })?;
    if key.key_data().is_certificate() {
        return Err("certificates are not host keys; use @cert-authority with the CA key".to_owned());
    }
    // Compare as key types so `rsa-sha2-256`/`rsa-sha2-512` name an ssh-rsa key, which
    // OpenSSH accepts too; anything else must name exactly the type inside the blob.
    let actual = key_type(&key);
    let wanted = match named {
        Algorithm::Rsa { .. } => Algorithm::Rsa { hash: None }.as_str().to_owned(),
        other => other.as_str().to_owned(),
    };
    if actual != wanted {
        // `actual` comes from the blob: an unknown algorithm there is any bytes.
        return Err(format!(
            "key type {} does not match the key data ({})",
            excerpt(type_name),
            excerpt(&actual)
        ));
    }
    key.set_comment(comment);
    Ok(key)
}

fn hashed_matches(salt: &[u8], hash: &[u8], name: &str) -> bool {
    match <HmacSha1 as KeyInit>::new_from_slice(salt) {
        Ok(mut mac) => {
            mac.update(name.as_bytes());
            mac.verify_slice(hash).is_ok()
        }
        Err(_) => false,
    }
}

/// OpenSSH's `match_pattern_list`: some non-negated pattern matches and no negated one
/// does. `name` is lowercase; patterns are lowercased as they are compared.
fn patterns_match(patterns: &[String], name: &str) -> bool {
    let mut positive = false;
    for pattern in patterns {
        let (negated, sub) = match pattern.strip_prefix('!') {
            Some(sub) => (true, sub),
            None => (false, pattern.as_str()),
        };
        if sub.len() >= MAX_SUBPATTERN {
            return false;
        }
        if glob_match(name.as_bytes(), sub.as_bytes()) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

/// `*` matches any run of bytes, `?` exactly one byte, anything else itself (ASCII
/// case-folded in the pattern). Same results as OpenSSH's recursive `match_pattern`, but
/// by backtracking to the last `*` only, so hostile patterns like `*a*a*a…b` stay linear
/// in practice instead of exponential.
fn glob_match(text: &[u8], pattern: &[u8]) -> bool {
    let (mut t, mut p) = (0, 0);
    // Pattern position just after the last `*`, and the text position it is trying.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&tc) = text.get(t) {
        match pattern.get(p).map(u8::to_ascii_lowercase) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
            }
            Some(pc) if pc == b'?' || pc == tc => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((after_star, from)) => {
                    p = after_star;
                    t = from + 1;
                    star = Some((after_star, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern.get(p..).is_some_and(|tail| tail.iter().all(|&c| c == b'*'))
}

/// Refuses names that would read back as something else: a comment, a marker, a hashed
/// field, a pattern list or wildcard, or a broken line.
fn validate_append_name(name: &str) -> io::Result<()> {
    let bad = name.is_empty()
        || name.starts_with(['#', '@', '|', '!'])
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '*' | '?'));
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot write host name {} to known_hosts", excerpt(name)),
        ));
    }
    Ok(())
}

/// OpenSSH's hashed host field for `name`, with a fresh random salt.
fn hash_host(name: &str) -> io::Result<String> {
    let mut salt = [0u8; SHA1_LEN];
    // No RNG crate is a direct dependency; the kernel's is what OpenSSH ends up using too.
    fs::File::open("/dev/urandom")?.read_exact(&mut salt)?;
    let mut mac = <HmacSha1 as KeyInit>::new_from_slice(&salt).map_err(io::Error::other)?;
    mac.update(name.as_bytes());
    let hash = mac.finalize().into_bytes();
    Ok(format!("{HASH_MAGIC}{}|{}", BASE64.encode(salt), BASE64.encode(hash)))
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Opens (or creates) the file for appending; anything but a regular file (or the null
/// device) is refused, as reading a FIFO or a device to count its lines would not end.
fn open_private_append(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    // Read too: the line number and the missing-newline fix need the current contents.
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
        // Opening a FIFO must not wait for a peer; it is refused just below.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if let Some(kind) = special_file_kind(&meta)
        && !is_null_device(&meta)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file"),
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Keys generated once with `ssh-keygen` on the development machine; the expected
    // fingerprints are what `ssh-keygen -lf` printed for them.
    const ED_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBSjldAlqBxYzFa4LfpffEy2O10P6Z+APK9oVUtHxtsx";
    const ED_A_FP: &str = "SHA256:OwhIfNPsmMnoqlUet0WohM0YCcn3LZ8vD8mNUrWBP+Y";
    const ED_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPRxKBcNfnWOC7FiiVlVelRnSlWt2VJPLg3GlSbSg2J6";
    const ED_C: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINDGH1s6GsiyHFGr7kfLf/Y8llae7GWpqOgDGOxXQqHc";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBKd/7++37EfZgWh0S5gD0512HLz3f39EWj2Olkc4Uja4JDHd0ziOI6YyO/4oRyK0sYr17p6EI29wjHLJZeFxf+E=";
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDLwc9BkgXoXHY1g5uDRPX6VGReJ7r9l693QTpHrU7wASc6XEFhuxm3bEY+1K3AdlxKFzsBPiUCqxoGggSZr+SnqLHlXorAXL0NPj3/B39MO3aS0rMA4MCCRUVGDTrdezW3CnXAXZd00IL8bptdkYzPF7B3dHchVzfJoOYwxLoi+cF7YuWIknPFCwHB+iAlnXt0Y4B7NfSj72iCJ2+qbdVvwRnCgxL4h6xT5eZi0KMJdqT4XJvxcKOnGH08PovEQdO8gwKo9maskk8osJyq8a3Y2XW5zKr7tcS5/2JdbaNJ/m9v7wmfjC1rOwlRFjgw4Gq5Pg16tsa5qHHkapikH/ex";
    const RSA_FP: &str = "SHA256:XxpRAs8q4VnD4Umlf8kbLZP0MhtCM/LRWtWj/se2LQc";
    const RSA_2: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCmO8Y//gZUb1a5S9uQ0ziKrgai6B0pWOkItRC397dY/NkBIKmWCOTna+gzTq9LW2r3Vve8P80X07TnVWgFSZEHLvIU0iB/GXHrUTpSj+ANHpiYWeFffLyhlqUYI5KDkblrCv7nhmpb0xbRCJtUB0kTetARjers9SjtLVa35AvWn4vp3L+/pw30JB+wMwgR0pwRsbV8fab/YPmnO7bkid5bhZR7iwwN521a3eup4hrsMq0lUpyaG+6aDrmMieaUuUGN+46oQ8hPihwcQV+ZkPKBXEkdCADg1fQRIFKfwhX0Q+U07bqVSplktWGNxT5Bivt1Oe3t4B5sQ6O5hZPfQGfB";

    // Produced by `ssh-keygen -H` from a file holding
    //   bastion.example.com ED_A
    //   [db.internal.example.com]:2222 ED_B
    const HASHED: &str = "\
|1|D0NjKu1C/OtMOjYtXRFRPBVIC8Q=|aymvjvK7qOCvrG5qEwgdYLMGUiY= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBSjldAlqBxYzFa4LfpffEy2O10P6Z+APK9oVUtHxtsx
|1|em3IphClgBklqot85pXm84LUxdA=|pNeRqSDgmEWr7yt7ajztONZQM10= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPRxKBcNfnWOC7FiiVlVelRnSlWt2VJPLg3GlSbSg2J6
";

    fn key(openssh: &str) -> PublicKey {
        PublicKey::from_openssh(openssh).expect("fixture key parses")
    }

    fn file(name: &str, text: &str) -> KnownHosts {
        KnownHosts::parse(Path::new(name), text)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn verdict(text: &str, name: &str, offered: &str) -> Verdict {
        check(&[file("kh", text)], &names(&[name]), &key(offered))
    }

    fn trusted(line: usize) -> Verdict {
        Verdict::Trusted {
            path: PathBuf::from("kh"),
            line,
        }
    }

    fn unknown() -> Verdict {
        Verdict::Unknown {
            other_types: Vec::new(),
        }
    }

    /// A scratch directory unique to one test, removed first so reruns start clean.
    fn scratch_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sqltun-known-hosts-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    /// Real `ssh-keygen -H` output must match: proves the HMAC key/message order, the
    /// base64 flavour and the `|1|salt|hash` layout agree with OpenSSH.
    #[test]
    fn hashed_entries_from_ssh_keygen_match() {
        let kh = file("kh", HASHED);
        assert!(kh.problems.is_empty(), "{:?}", kh.problems);
        match &kh.entries[0].hosts {
            HostSpec::Hashed { salt, hash } => assert_eq!((salt.len(), hash.len()), (20, 20)),
            other => panic!("expected a hashed host, got {other:?}"),
        }
        assert_eq!(verdict(HASHED, "bastion.example.com", ED_A), trusted(1));
        let db = lookup_name("db.internal.example.com", 2222);
        assert_eq!(verdict(HASHED, &db, ED_B), trusted(2));
        // The hash covers the port: the same host on port 22 is a different name.
        assert_eq!(verdict(HASHED, "db.internal.example.com", ED_B), unknown());
        // Names are lowercased before hashing, as ssh does.
        assert_eq!(verdict(HASHED, "Bastion.Example.COM", ED_A), trusted(1));
        // A hashed entry for the host with another ed25519 key means "changed".
        assert!(matches!(
            verdict(HASHED, "bastion.example.com", ED_C),
            Verdict::Changed { line: 1, .. }
        ));
    }

    /// Lookup names follow OpenSSH: bare host on port 22, `[host]:port` elsewhere.
    #[test]
    fn lookup_name_brackets_non_standard_ports() {
        assert_eq!(lookup_name("DB.Example.com", 22), "db.example.com");
        assert_eq!(lookup_name("db.example.com", 2222), "[db.example.com]:2222");
        assert_eq!(lookup_name("::1", 2222), "[::1]:2222");
        assert_eq!(lookup_name("10.0.0.1", 0), "10.0.0.1");
    }

    /// `[host]:port` entries apply to that port only; wildcards work inside the brackets.
    #[test]
    fn bracketed_port_entries_match_only_their_port() {
        let text = format!("[db.example.com]:2222 {ED_A}\n[*.internal]:2200 {ED_B}\n");
        let on = |host: &str, port: u16, k: &str| verdict(&text, &lookup_name(host, port), k);
        assert_eq!(on("db.example.com", 2222, ED_A), trusted(1));
        assert_eq!(on("db.example.com", 22, ED_A), unknown());
        assert_eq!(on("db.example.com", 2223, ED_A), unknown());
        assert_eq!(on("pg.internal", 2200, ED_B), trusted(2));
        assert_eq!(on("pg.internal", 22, ED_B), unknown());
    }

    /// A comma-separated host list applies to each of its names and nothing else.
    #[test]
    fn host_lists_match_each_member() {
        let text = format!("alpha,beta.example.com,10.0.0.5 {ED_A}\n");
        for name in ["alpha", "beta.example.com", "10.0.0.5"] {
            assert_eq!(verdict(&text, name, ED_A), trusted(1), "{name}");
        }
        assert_eq!(verdict(&text, "gamma", ED_A), unknown());
        assert_eq!(verdict(&text, "alpha.example.com", ED_A), unknown());
    }

    /// `*` and `?` behave like OpenSSH's match_pattern (whole-name match, `?` exactly one).
    #[test]
    fn wildcards() {
        let spec = |p: &str| HostSpec::Patterns(vec![p.to_owned()]);
        assert!(spec("*.example.com").matches("db.example.com"));
        assert!(spec("*.example.com").matches("a.b.example.com"));
        assert!(!spec("*.example.com").matches("example.com"));
        assert!(spec("db?.example.com").matches("db1.example.com"));
        assert!(!spec("db?.example.com").matches("db.example.com"));
        assert!(!spec("db?.example.com").matches("db12.example.com"));
        assert!(spec("*").matches("anything"));
        assert!(spec("**").matches(""));
        assert!(spec("a*b*c").matches("aXXbYYc"));
        assert!(!spec("a*b*c").matches("aXXbYYcd"));
        assert!(spec("*?").matches("x"));
        assert!(!spec("*?").matches(""));
        let text = format!("*.example.com {ED_A}\n");
        assert_eq!(verdict(&text, "db.example.com", ED_A), trusted(1));
    }

    /// A negated pattern that matches vetoes the line, wherever it appears in the list.
    #[test]
    fn negation_overrides_wildcard() {
        for hosts in ["*.example.com,!secret.example.com", "!secret.example.com,*.example.com"] {
            let text = format!("{hosts} {ED_A}\n");
            assert_eq!(verdict(&text, "secret.example.com", ED_A), unknown(), "{hosts}");
            assert_eq!(verdict(&text, "db.example.com", ED_A), trusted(1), "{hosts}");
        }
        // A negation alone never matches: it only takes away.
        let text = format!("!secret.example.com {ED_A}\n");
        assert_eq!(verdict(&text, "db.example.com", ED_A), unknown());
    }

    /// Several keys of one type for a host are normal (key rotation, clusters behind one
    /// name); any of them is trusted, which is where russh's helper said "changed".
    #[test]
    fn two_keys_of_one_type_are_both_trusted() {
        let text = format!("db.example.com {ED_A}\ndb.example.com {ED_B}\n");
        assert_eq!(verdict(&text, "db.example.com", ED_A), trusted(1));
        assert_eq!(verdict(&text, "db.example.com", ED_B), trusted(2));
    }

    /// A different key of a known algorithm is "changed", pointing at the file and line
    /// (counting comments and blank lines) and carrying the key that was expected.
    #[test]
    fn changed_key_is_reported_with_its_line() {
        let text = format!("# header\n\nother.example.com {ED_C}\n  db.example.com {ED_A} old key\n");
        match verdict(&text, "db.example.com", ED_C) {
            Verdict::Changed { path, line, known } => {
                assert_eq!((path, line), (PathBuf::from("kh"), 4));
                assert_eq!(known.key_data(), key(ED_A).key_data());
                assert_eq!(known.comment().as_str_lossy(), "old key");
            }
            other => panic!("expected Changed, got {other:?}"),
        }
        // Across files the report names the file that knows the host.
        let files = [
            file("first", &format!("elsewhere {ED_A}\n")),
            file("second", &format!("db.example.com {ED_A}\n")),
        ];
        assert!(matches!(
            check(&files, &names(&["db.example.com"]), &key(ED_C)),
            Verdict::Changed { path, line: 1, .. } if path == Path::new("second")
        ));
    }

    /// RSA is one algorithm whatever signature name the line uses: `rsa-sha2-512` lines
    /// (accepted by OpenSSH) hold ssh-rsa keys and count for "changed".
    #[test]
    fn rsa_signature_names_are_the_ssh_rsa_type() {
        let b64 = RSA.split(' ').nth(1).expect("fixture has base64");
        let text = format!("db.example.com rsa-sha2-512 {b64}\n");
        let kh = file("kh", &text);
        assert!(kh.problems.is_empty(), "{:?}", kh.problems);
        assert_eq!(key_type(&kh.entries[0].key), "ssh-rsa");
        assert_eq!(verdict(&text, "db.example.com", RSA), trusted(1));
        assert!(matches!(
            verdict(&text, "db.example.com", RSA_2),
            Verdict::Changed { line: 1, .. }
        ));
    }

    /// `@revoked` refuses a key even when another line trusts it, in any file order;
    /// it applies only to hosts its host field matches, and a revoked key of the same
    /// type is not a "known" key that would make another one "changed".
    #[test]
    fn revoked_overrides_trusted() {
        let text = format!("db.example.com {ED_A}\n@revoked * {ED_A}\n");
        assert_eq!(
            verdict(&text, "db.example.com", ED_A),
            Verdict::Revoked {
                path: PathBuf::from("kh"),
                line: 2
            }
        );
        let files = [
            file("trusting", &format!("db.example.com {ED_A}\n")),
            file("revoking", &format!("@revoked\t*.example.com {ED_A}\n")),
        ];
        assert!(matches!(
            check(&files, &names(&["db.example.com"]), &key(ED_A)),
            Verdict::Revoked { path, line: 1 } if path == Path::new("revoking")
        ));
        let elsewhere = format!("db.example.com {ED_A}\n@revoked other.example.com {ED_A}\n");
        assert_eq!(verdict(&elsewhere, "db.example.com", ED_A), trusted(1));
        let only_revoked = format!("@revoked db.example.com {ED_B}\n");
        assert_eq!(verdict(&only_revoked, "db.example.com", ED_A), unknown());
    }

    /// With keys of other algorithms only, the host is "unknown" and the known types are
    /// listed once each, in file order, so the caller can warn as OpenSSH does.
    #[test]
    fn other_types_only_is_unknown_with_other_types() {
        let text = format!("db.example.com {ECDSA}\ndb.example.com {RSA}\ndb.example.com {ECDSA}\nx {ED_B}\n");
        assert_eq!(
            verdict(&text, "db.example.com", ED_A),
            Verdict::Unknown {
                other_types: vec!["ecdsa-sha2-nistp256".to_owned(), "ssh-rsa".to_owned()]
            }
        );
        let kh = [file("kh", &text)];
        let lines: Vec<usize> = known_keys(&kh, &names(&["db.example.com"]))
            .iter()
            .map(|(_, e)| e.line)
            .collect();
        assert_eq!(lines, [1, 2, 3]);
    }

    /// `@cert-authority` lines are kept for later certificate support but never make a
    /// plain key trusted or changed.
    #[test]
    fn cert_authority_lines_are_parsed_but_not_used_by_check() {
        let text = format!("@cert-authority *.example.com {ED_A}\n");
        let kh = file("kh", &text);
        assert_eq!(kh.entries.len(), 1);
        assert_eq!(kh.entries[0].marker, Marker::CertAuthority);
        assert_eq!(verdict(&text, "db.example.com", ED_A), unknown());
        assert_eq!(verdict(&text, "db.example.com", ED_B), unknown());
    }

    /// Bad lines are skipped like OpenSSH does and reported with their line numbers,
    /// without hiding the good lines around them.
    #[test]
    fn malformed_lines_are_recorded_and_skipped() {
        let ed_b64 = ED_A.split(' ').nth(1).expect("fixture has base64");
        let rsa_b64 = RSA.split(' ').nth(1).expect("fixture has base64");
        let text = [
            "# comment".to_owned(),
            format!("db.example.com ssh-ed25519 {}", "!!notbase64!!"),
            format!("db.example.com ssh-foo {ed_b64}"),
            "db.example.com".to_owned(),
            "db.example.com ssh-ed25519".to_owned(),
            format!("db.example.com ssh-rsa {ed_b64}"),
            format!("@trusted db.example.com {ED_A}"),
            format!("@revoked @cert-authority db.example.com {ED_A}"),
            format!("|1|AAAA|AAAA {ED_A}"),
            format!("|2|D0NjKu1C/OtMOjYtXRFRPBVIC8Q=|aymvjvK7qOCvrG5qEwgdYLMGUiY= {ED_A}"),
            format!("db.example.com ssh-ed25519 {}", &rsa_b64[..rsa_b64.len() - 4]),
            format!("db.example.com {ED_A}"),
            "db.example.com # only a comment".to_owned(),
        ]
        .join("\n");
        let kh = file("kh", &text);
        let bad: Vec<usize> = kh.problems.iter().map(|p| p.line).collect();
        assert_eq!(bad, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13], "{:#?}", kh.problems);
        assert_eq!(kh.entries.len(), 1);
        assert_eq!(kh.entries[0].line, 12);
        assert!(
            kh.problems[1].message.contains("unsupported key type"),
            "{:?}",
            kh.problems[1]
        );
        assert!(
            kh.problems[4].message.contains("does not match"),
            "{:?}",
            kh.problems[4]
        );
        assert_eq!(verdict(&text, "db.example.com", ED_A), trusted(12));
    }

    /// Host names and patterns compare case-insensitively, as in OpenSSH.
    #[test]
    fn matching_is_case_insensitive() {
        let text = format!("DB.Example.COM {ED_A}\n*.EXAMPLE.org {ED_B}\n");
        assert_eq!(verdict(&text, "db.example.com", ED_A), trusted(1));
        assert_eq!(verdict(&text, "DB.EXAMPLE.com", ED_A), trusted(1));
        assert_eq!(verdict(&text, "Pg.Example.Org", ED_B), trusted(2));
    }

    /// Keys are compared by key material: a different comment (or none) changes nothing.
    #[test]
    fn comments_do_not_affect_key_comparison() {
        let text = format!("db.example.com {ED_A} added by hand\n");
        assert_eq!(
            verdict(&text, "db.example.com", &format!("{ED_A} someone@laptop")),
            trusted(1)
        );
    }

    /// Every name passed to check() is tried (e.g. a HostKeyAlias plus an address).
    #[test]
    fn any_of_several_names_may_match() {
        let text = format!("10.1.2.3 {ED_A}\n");
        let found = check(
            &[file("kh", &text)],
            &names(&["db.example.com", "10.1.2.3"]),
            &key(ED_A),
        );
        assert_eq!(found, trusted(1));
        assert_eq!(check(&[file("kh", &text)], &[], &key(ED_A)), unknown());
    }

    /// Files written on Windows still parse, and line numbers are unaffected.
    #[test]
    fn crlf_line_endings_are_accepted() {
        let text = format!("# c\r\ndb.example.com {ED_A}\r\n");
        let kh = file("kh", &text);
        assert!(kh.problems.is_empty(), "{:?}", kh.problems);
        assert_eq!(verdict(&text, "db.example.com", ED_A), trusted(2));
    }

    /// What append() writes is read back by parse() and trusted at the line it returned,
    /// hashed or not, with the directory and file created private.
    #[test]
    fn append_round_trip() {
        let dir = scratch_dir("round-trip");
        let path = dir.join("nested").join("known_hosts");
        assert_eq!(KnownHosts::load(&path).expect("load"), None);

        let db = lookup_name("DB.example.com", 2222);
        assert_eq!(append(&path, &db, &key(ED_A), false).expect("append"), 1);
        assert_eq!(append(&path, "bastion", &key(RSA), true).expect("append"), 2);
        assert_eq!(append(&path, "db.example.com", &key(ECDSA), false).expect("append"), 3);

        let kh = KnownHosts::load(&path).expect("load").expect("file exists");
        assert!(kh.problems.is_empty(), "{:?}", kh.problems);
        let at = |line| Verdict::Trusted {
            path: path.clone(),
            line,
        };
        let files = [kh];
        assert_eq!(check(&files, &names(&["[db.example.com]:2222"]), &key(ED_A)), at(1));
        assert_eq!(check(&files, &names(&["bastion"]), &key(RSA)), at(2));
        assert_eq!(check(&files, &names(&["db.example.com"]), &key(ECDSA)), at(3));
        assert!(matches!(files[0].entries[1].hosts, HostSpec::Hashed { .. }));

        let text = fs::read_to_string(&path).expect("read");
        assert!(text.starts_with(&format!("[db.example.com]:2222 {ED_A}\n")), "{text}");
        assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("|1|")), "{text}");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().expect("parent")), 0o700);
        }
        let _ = fs::remove_dir_all(&dir);
    }

    /// A hand-edited file whose last line lacks its newline gets one before our entry,
    /// instead of our entry being glued onto that line.
    #[test]
    fn append_to_file_without_trailing_newline() {
        let dir = scratch_dir("no-newline");
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("known_hosts");
        fs::write(&path, format!("# keys\nold.example.com {ED_B}")).expect("write");

        assert_eq!(append(&path, "new.example.com", &key(ED_A), false).expect("append"), 3);
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            format!("# keys\nold.example.com {ED_B}\nnew.example.com {ED_A}\n")
        );
        let kh = KnownHosts::parse(&path, &text);
        assert!(kh.problems.is_empty(), "{:?}", kh.problems);
        let lines: Vec<usize> = kh.entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3]);
        let _ = fs::remove_dir_all(&dir);
    }

    /// Names that would read back as patterns, markers, comments or broken lines, and
    /// certificates, are refused rather than written.
    #[test]
    fn append_refuses_names_that_would_change_meaning() {
        let dir = scratch_dir("bad-names");
        let path = dir.join("known_hosts");
        for name in [
            "",
            "a b",
            "a,b",
            "*.example.com",
            "db?",
            "#db",
            "@revoked",
            "|1|x",
            "!db",
            "a\nb",
        ] {
            let err = append(&path, name, &key(ED_A), false).expect_err(name);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
        assert!(!path.exists());
    }

    /// Fingerprints are shown to users next to `ssh-keygen -lf` output; they must agree.
    #[test]
    fn fingerprint_matches_ssh_keygen() {
        assert_eq!(fingerprint(&key(ED_A)), ED_A_FP);
        assert_eq!(fingerprint(&key(RSA)), RSA_FP);
    }

    /// parse() must never panic or give up on a file, whatever is in it; each garbage line
    /// becomes a problem and a good line after it still counts.
    #[test]
    fn parse_survives_garbage() {
        let long = "a".repeat(100_000);
        let long_glob = format!("{} {ED_A}", "*".repeat(5_000));
        let nasty = [
            "|1|",
            "|1|!!|",
            "|1||",
            "|",
            "[",
            "[db.example.com]:",
            "@",
            "@revoked",
            "@revoked ",
            "@revoked\t",
            "@cert-authority @revoked",
            "\u{feff}db.example.com ssh-ed25519 AAAA",
            "é ssh-ed25519 é",
            "db.example.com \0 \0",
            "db.example.com ssh-ed25519 ====",
            "db.example.com ssh-ed25519 AAAA",
            "db.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBSj",
            long.as_str(),
        ];
        for junk in nasty {
            let text = format!("{junk}\ndb.example.com {ED_A}\n");
            let kh = file("kh", &text);
            assert_eq!(kh.entries.len(), 1, "{junk:?}");
            assert_eq!(kh.entries[0].line, 2, "{junk:?}");
            assert_eq!(kh.problems.len(), 1, "{junk:?}: {:?}", kh.problems);
            assert_eq!(kh.problems[0].line, 1, "{junk:?}");
            assert!(kh.problems[0].message.chars().count() < 200, "{junk:?}");
        }
        // Subpatterns past OpenSSH's 1023-byte buffer never match, even as `*`.
        let kh = file("kh", &long_glob);
        assert!(kh.problems.is_empty());
        assert_eq!(check(&[kh], &names(&["db"]), &key(ED_A)), unknown());
        assert_eq!(file("kh", "").entries.len(), 0);
        assert_eq!(file("kh", "\n\n \t\n#\n").problems.len(), 0);
    }

    /// Patterns with many stars against long names must not take exponential time, as
    /// a naive recursive matcher would: known_hosts content is not trusted input.
    #[test]
    fn pathological_patterns_stay_fast() {
        let pattern = format!("{}b", "*a".repeat(30));
        let name = "a".repeat(1_000);
        let started = std::time::Instant::now();
        assert!(!HostSpec::Patterns(vec![pattern]).matches(&name));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    /// Found by fuzzing: key blobs whose type label holds control bytes put them raw into
    /// problem messages, which `-v` prints. Every quoted piece is escaped and shortened.
    #[test]
    fn problem_messages_escape_what_they_quote() {
        let text = "\
host.example ssh-ed25519 AAAAC3NzaC1lZDI1NTECAAAAICXd8cGJXs7FfUn5Hdy0/IR3ZRUHpn6eA8RyK0ICCdpO
host.example ssh-rsa AAAACC1AC3NzaC15AAAAAhka
\u{1b}[2J\u{202e}host ssh-ed25519\u{7}\u{1b}\u{1b}\u{1b}\u{1b}\u{1b}\u{1b}\u{1b}\u{1b}\u{1b}\u{1b} AAAA
|1|\u{1b}]0;x\u{7}|x ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICXd8cGJXs7FfUn5Hdy0/IR3ZRUHpn6eA8RyK0ICCdpO
";
        let kh = file("kh", text);
        assert_eq!(kh.problems.len(), 4, "{:?}", kh.problems);
        for p in &kh.problems {
            assert!(!p.message.chars().any(|c| c.is_control() || c == '\u{202e}'), "{p:?}");
            assert!(p.message.chars().count() < 200, "{p:?}");
        }
        assert!(
            kh.problems[0].message.contains(r"ssh-ed2551\x02"),
            "{:?}",
            kh.problems[0]
        );
        assert!(kh.problems[1].message.contains(r"\x0bssh-y"), "{:?}", kh.problems[1]);
    }

    /// Only a regular file of at most 16 MiB is read (or the null device, which configs use
    /// for "no file"): a FIFO would block forever and `/dev/zero` would never end. append()
    /// refuses them too instead of reading them to count lines.
    #[test]
    fn special_and_oversized_files_are_refused() {
        let dir = scratch_dir("special");
        fs::create_dir_all(&dir).expect("mkdir");
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let started = std::time::Instant::now();
        for (path, kind) in [
            (fifo.as_path(), "FIFO"),
            (Path::new("/dev/zero"), "character device"),
            (dir.as_path(), "directory"),
        ] {
            let err = KnownHosts::load(path).expect_err("not a regular file");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains(kind), "{err}");
        }
        let err = append(&fifo, "db.example.com", &key(ED_A), false).expect_err("a FIFO");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));

        let null = KnownHosts::load(Path::new("/dev/null")).expect("the null device reads as empty");
        assert!(null.is_some_and(|kh| kh.entries.is_empty() && kh.problems.is_empty()));

        let big = dir.join("big");
        let line = format!("db.example.com {ED_A}\n");
        let count = usize::try_from(MAX_FILE_LEN).expect("fits") / line.len() + 1;
        fs::write(&big, line.repeat(count)).expect("write");
        let err = KnownHosts::load(&big).expect_err("too large");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("16 MiB"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
