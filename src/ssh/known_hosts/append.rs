//! Writing a host key to a known_hosts file, as OpenSSH writes it.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit, Mac};
use russh::keys::PublicKey;

use super::matching::HmacSha1;
use super::{HASH_MAGIC, SHA1_LEN, excerpt, key_type};
use crate::safe_file::{FileKind, is_null_device};

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
    if let Some(kind) = FileKind::of(&meta)
        && !is_null_device(&meta)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file"),
        ));
    }
    Ok(file)
}
