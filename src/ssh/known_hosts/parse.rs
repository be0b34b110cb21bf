//! Reading and parsing known_hosts files: one line at a time, with OpenSSH's field rules; a bad
//! line becomes a [`Problem`] instead of failing the file.

use std::io;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use russh::keys::PublicKey;
use russh::keys::ssh_key::Algorithm;

use super::{
    ERROR_CHARS, EXCERPT_CHARS, Entry, HASH_MAGIC, HostSpec, KnownHosts, MAX_FILE_LEN, Marker, Problem as LineProblem,
    SHA1_LEN, excerpt, key_type,
};
use crate::safe_file::{self, NullDevice, Problem};
use crate::text::escaped as printable;

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
                Err(message) => problems.push(LineProblem { line, message }),
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
        let opened = safe_file::open(path, NullDevice::AsEmpty).and_then(|file| file.read(MAX_FILE_LEN));
        let bytes = match opened {
            Ok(bytes) => bytes,
            Err(err) if err.is_not_found() || matches!(err.problem(), Problem::Vanished) => return Ok(None),
            Err(err) => {
                return Err(match err.problem() {
                    Problem::TooLarge { size, .. } => io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("it is {size} bytes long, more than the 16 MiB a known_hosts file may be"),
                    ),
                    _ => err.into(),
                });
            }
        };
        // OpenSSH reads bytes; a stray Latin-1 comment must not make the whole file
        // unreadable. Invalid sequences become U+FFFD, which no lookup name contains.
        let text = String::from_utf8_lossy(&bytes);
        Ok(Some(KnownHosts::parse(path, &text)))
    }
}

/// Splits off the first blank-delimited field; returns it and the rest with the blanks
/// after it skipped. Only space and tab separate fields in OpenSSH's parser.
pub(super) fn split_field(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(end) => {
            let (field, rest) = s.split_at(end);
            (field, rest.trim_start_matches([' ', '\t']))
        }
        None => (s, ""),
    }
}

pub(super) type ParsedLine = (Marker, HostSpec, PublicKey);

/// Parses one line: `Ok(None)` for blank and comment lines, `Err(reason)` for lines
/// OpenSSH would skip.
pub(super) fn parse_line(raw: &str) -> Result<Option<ParsedLine>, String> {
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

pub(super) fn parse_hosts(field: &str) -> Result<HostSpec, String> {
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

pub(super) fn parse_key(type_name: &str, b64: &str, comment: &str) -> Result<PublicKey, String> {
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
