//! `ProxyJump` values, checked and normalized as OpenSSH's parse_jump does.

use super::lexer::WHITESPACE;
use super::shown;
use super::values::parse_port;
use crate::db::percent_decode_utf8;

/// Checks a ProxyJump value as OpenSSH's parse_jump does and returns it as `ssh -G` prints it:
/// the hops before the last as written, the last one normalized (`user@[addr]:port`).
pub(super) fn parse_jump(spec: &str) -> std::result::Result<String, String> {
    let spec = spec.split('#').next().unwrap_or_default().trim_end_matches(WHITESPACE);
    if spec.eq_ignore_ascii_case("none") {
        return Ok("none".to_string());
    }
    if spec.is_empty() {
        return Err("no host".to_string());
    }
    let hops: Vec<&str> = spec.split(',').collect();
    for hop in &hops {
        parse_hop(hop)?;
    }
    let (last, extra) = match spec.rfind(',') {
        Some(i) => (&spec[i + 1..], Some(&spec[..i])),
        None => (spec, None),
    };
    let (user, host, port) = parse_hop(last)?;
    let numeric = host.contains(':') || host.chars().all(|c| c.is_ascii_digit() || c == '.');
    let mut out = String::new();
    if let Some(extra) = extra.filter(|e| !e.is_empty()) {
        out.push_str(extra);
        out.push(',');
    }
    if let Some(user) = user {
        out.push_str(&user);
        out.push('@');
    }
    if numeric {
        out.push('[');
        out.push_str(&host);
        out.push(']');
    } else {
        out.push_str(&host);
    }
    if let Some(port) = port {
        out.push(':');
        out.push_str(&port.to_string());
    }
    Ok(out)
}

/// One hop: `ssh://[user@]host[:port][/]` or `[user@]host[:port]`.
pub(super) fn parse_hop(hop: &str) -> std::result::Result<(Option<String>, String, Option<u16>), String> {
    let bad = |why: &str| format!("hop '{}' {why}", shown(hop));
    if let Some(uri) = hop.strip_prefix("ssh://") {
        let (user, rest) = match uri.find('@') {
            Some(i) => {
                let user = uri[..i].split(';').next().unwrap_or_default();
                if user.is_empty() {
                    return Err(bad("has an empty user"));
                }
                (
                    Some(percent_decode_utf8(user).ok_or_else(|| bad("has a bad %-escape in the user"))?),
                    &uri[i + 1..],
                )
            }
            None => (None, uri),
        };
        let (host, delimiter, tail) = split_host(rest).ok_or_else(|| bad("has no host"))?;
        if !valid_domain(&host) {
            return Err(bad("has an invalid host name"));
        }
        let mut port = None;
        let mut path = tail;
        if delimiter == Some(':') {
            let (p, after) = match tail.find('/') {
                Some(i) => (&tail[..i], &tail[i + 1..]),
                None => (tail, ""),
            };
            if !p.is_empty() {
                port = Some(parse_port(p).ok_or_else(|| bad("has a bad port"))?);
            }
            path = after;
        }
        if !path.is_empty() {
            return Err(bad("has a path, which ssh:// hops may not"));
        }
        return Ok((user, host, port));
    }
    let (user, rest) = match hop.rfind('@') {
        Some(0) => return Err(bad("has an empty user")),
        Some(i) => (Some(hop[..i].to_string()), &hop[i + 1..]),
        None => (None, hop),
    };
    let (host, _, tail) = split_host(rest).ok_or_else(|| bad("has no host"))?;
    let port = if tail.is_empty() {
        None
    } else {
        Some(parse_port(tail).ok_or_else(|| bad("has a bad port"))?)
    };
    Ok((user, host, port))
}

/// OpenSSH's hpdelim2 + cleanhostname: the host (brackets removed), the delimiter, and what follows.
pub(super) fn split_host(s: &str) -> Option<(String, Option<char>, &str)> {
    let end = if s.starts_with('[') {
        s.find(']')? + 1
    } else {
        s.find([':', '/']).unwrap_or(s.len())
    };
    let host = &s[..end];
    let (delimiter, tail) = match s[end..].chars().next() {
        None => (None, ""),
        Some(c @ (':' | '/')) => (Some(c), &s[end + 1..]),
        Some(_) => return None,
    };
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    (!host.is_empty()).then(|| (host.to_string(), delimiter, tail))
}

/// OpenSSH's valid_domain (without lower-casing).
pub(super) fn valid_domain(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    !name.contains("..")
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}
