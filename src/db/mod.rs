//! Database URLs for `--db`, the `+ssh` URLs TablePlus and TablePro use for a tunnelled connection, and the
//! environment a database client reads. Pure functions of `&str`: nothing here does IO.
//!
//! Percent-encoding is checked but kept as typed, so the URL handed back (pointing at the local end of the
//! tunnel) differs from the user's only in host and port. Error messages quote the input with everything
//! that could be a password masked.
//!
//! | module | owns |
//! | --- | --- |
//! | `scheme` | the schemes sqltun reads, their client families and default ports, and the environment a client reads |
//! | `db_url` | database URLs: parsing, the URL rewritten to the local end of the tunnel, redaction |
//! | `ssh_url` | the `scheme+ssh://` URLs of TablePlus and TablePro: an SSH server and a database in one |

mod client_env;
mod db_url;
mod scheme;
mod ssh_url;

pub use client_env::client_env;
pub(crate) use db_url::redact_input;
pub use db_url::{DbUrl, guessed_url, looks_like_url, parse_db_url};
pub(crate) use scheme::SUPPORTED;
pub use scheme::{Family, Scheme};
pub use ssh_url::{SshUrl, is_ssh_url, parse_ssh_url};

use crate::dest::{printable, split_host_port, validate_host};
use crate::target::Target;

/// Percent-decode `s`; `None` when a `%` is not followed by two hex digits. The one percent-decoder of
/// the crate: URLs here, `ssh://` hops in `ProxyJump` too.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// [`percent_decode`] read as UTF-8; `None` when the escapes are bad or the bytes are not UTF-8.
pub(crate) fn percent_decode_utf8(s: &str) -> Option<String> {
    percent_decode(s).and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Decode what the parser already validated; falls back to the text as typed rather than failing.
fn percent_decode_lossy(s: &str) -> String {
    percent_decode(s).map_or_else(|| s.to_string(), |b| String::from_utf8_lossy(&b).into_owned())
}

/// Parse a target `host:port` or `[v6addr]:port`; the port is required.
pub fn parse_target(input: &str) -> Result<Target, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("the target is empty: give host:port, or a database URL".into());
    }
    // `--db` reads text as a URL when it starts with a scheme (see `looks_like_url`); what reaches here
    // with `://` has none: nothing, a digit, a space or a symbol before it. Quoted as a URL would be, so a
    // password in it stays masked.
    if let Some((before, _)) = trimmed.split_once("://") {
        let what = if before.is_empty() {
            "there is no scheme before `://`"
        } else {
            "the text before `://` is not a URL scheme (one starts with a letter, then letters, digits, `+`, `-` or `.`)"
        };
        return Err(format!(
            "`{}`: {what}; give a database URL with one of the schemes {SUPPORTED} (e.g. postgres://db.internal:5432/app), or host:port",
            redact_input(trimmed)
        ));
    }
    if trimmed.contains('@') {
        return Err(format!(
            "`{}`: a target is host:port, without a user; to give a user, write a database URL (e.g. postgres://user@db.internal:5432/app)",
            redact_input(trimmed)
        ));
    }
    let fail = |msg: &str| format!("`{}`: {msg}", printable(trimmed));
    let (host, port) = split_host_port(trimmed, false).map_err(|e| fail(&e))?;
    if host.is_empty() {
        return Err(fail("the host is empty; give host:port"));
    }
    validate_host(&host).map_err(|e| fail(&e))?;
    let port = port.ok_or_else(|| fail(&format!("no port; give host:port (e.g. {}:5432)", printable(&host))))?;
    Ok(Target { host, port })
}

#[cfg(test)]
mod tests;
