//! Values as OpenSSH parses them: fixed choices (`yes`/`no`…), numbers, times, ports, `%` tokens
//! and `${VAR}`, and `~`.

use super::local::home_of;
use super::{EnvLookup, Local, shown};

/// A value from a fixed set: each accepted spelling (lowercase; values compare case-insensitively)
/// with the form `ssh -G` prints, and the set as a message describes it.
pub(super) struct Choices {
    pub(super) table: &'static [(&'static str, &'static str)],
    pub(super) described: &'static str,
}

impl Choices {
    /// `value`'s normal form, if it is one of the choices.
    pub(super) fn parse(&self, value: &str) -> Option<&'static str> {
        let lowercase = value.to_ascii_lowercase();
        self.table
            .iter()
            .find(|(spelling, _)| *spelling == lowercase)
            .map(|(_, normal)| *normal)
    }
}

/// OpenSSH's flag values (`BatchMode`, `PasswordAuthentication`…).
pub(super) const YES_NO: Choices = Choices {
    table: &[("yes", "yes"), ("true", "yes"), ("no", "no"), ("false", "no")],
    described: "yes or no",
};
/// `Compression` takes only `yes` and `no`.
pub(super) const COMPRESSION: Choices = Choices {
    table: &[("yes", "yes"), ("no", "no")],
    described: "yes or no",
};
pub(super) const PUBKEY_AUTHENTICATION: Choices = Choices {
    table: &[
        ("yes", "true"),
        ("true", "true"),
        ("no", "false"),
        ("false", "false"),
        ("unbound", "unbound"),
        ("host-bound", "host-bound"),
    ],
    described: "yes, no, unbound or host-bound",
};
pub(super) const STRICT_HOST_KEY_CHECKING: Choices = Choices {
    table: &[
        ("yes", "true"),
        ("true", "true"),
        ("no", "false"),
        ("false", "false"),
        ("off", "false"),
        ("ask", "ask"),
        ("accept-new", "accept-new"),
    ],
    described: "yes, accept-new, no, off or ask",
};
pub(super) const CANONICALIZE_HOSTNAME: Choices = Choices {
    table: &[
        ("yes", "yes"),
        ("true", "yes"),
        ("no", "no"),
        ("false", "no"),
        ("always", "always"),
    ],
    described: "yes, no or always",
};

/// OpenSSH's a2port: a decimal number from 1 to 65535, or a TCP service name.
pub(super) fn parse_port(value: &str) -> Option<u16> {
    match parse_decimal(value) {
        Some(n) => u16::try_from(n).ok().filter(|&p| p > 0),
        None => service_port(value),
    }
}

/// strtonum's notion of a decimal: an optional sign, then digits and nothing else.
/// Magnitudes beyond `i64` saturate (they are out of every range checked here).
pub(super) fn parse_decimal(value: &str) -> Option<i64> {
    let (negative, digits) = match value.as_bytes().first() {
        Some(b'+') => (false, &value[1..]),
        Some(b'-') => (true, &value[1..]),
        _ => (false, value),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
    Some(if negative { -magnitude } else { magnitude })
}

/// An integer from 0 to INT_MAX, with strtonum's complaints.
pub(super) fn parse_int(value: &str) -> std::result::Result<i64, &'static str> {
    let n = parse_decimal(value).ok_or("not a number")?;
    if n < 0 {
        Err("too small")
    } else if n > i64::from(i32::MAX) {
        Err("too large")
    } else {
        Ok(n)
    }
}

/// OpenSSH's convtime: `90`, `1m30s`, `2h`, `1w`; at most INT_MAX seconds.
pub(super) fn parse_time(value: &str) -> Option<i64> {
    if value.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = value;
    while !rest.is_empty() {
        let unsigned = rest.strip_prefix('+').unwrap_or(rest);
        let end = unsigned.find(|c: char| !c.is_ascii_digit()).unwrap_or(unsigned.len());
        if end == 0 {
            return None;
        }
        let n: i64 = unsigned[..end].parse().ok()?;
        let mut tail = unsigned[end..].chars();
        let multiplier = match tail.next() {
            None => 1,
            Some('s' | 'S') => 1,
            Some('m' | 'M') => 60,
            Some('h' | 'H') => 3600,
            Some('d' | 'D') => 86400,
            Some('w' | 'W') => 604800,
            Some(_) => return None,
        };
        total = total.checked_add(n.checked_mul(multiplier)?)?;
        if total > i64::from(i32::MAX) {
            return None;
        }
        rest = tail.as_str();
    }
    Some(total)
}

/// A TCP service name from /etc/services.
pub(super) fn service_port(name: &str) -> Option<u16> {
    let services = std::fs::read_to_string("/etc/services").ok()?;
    for line in services.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let (Some(service), Some(port_proto)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((port, "tcp")) = port_proto.split_once('/') else {
            continue;
        };
        if service == name || fields.any(|alias| alias == name) {
            return port.parse().ok().filter(|&p| p > 0);
        }
    }
    None
}

pub(super) fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// OpenSSH's is_addr_fast: what it treats as an address, which it does not lower-case.
pub(super) fn looks_like_address(name: &str) -> bool {
    name.contains(['%', ':']) || name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// `HostName`'s tokens: `%h` (the host as given) and `%%`.
pub(super) fn expand_hostname(value: &str, host_arg: &str) -> std::result::Result<String, String> {
    expand(value, Some(&[('h', host_arg)]), None)
}

/// OpenSSH's percent_dollar_expand: `%x` tokens from `tokens`, and `${VAR}` from `env` when given.
pub(super) fn expand(
    value: &str,
    tokens: Option<&[(char, &str)]>,
    env: Option<&EnvLookup>,
) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        if let (Some(env), true) = (env, rest.starts_with("${")) {
            let body = &rest[2..];
            let Some(close) = body.find('}') else {
                return Err(format!("'${{' without a closing '}}' in '{}'", shown(value)));
            };
            let name = &body[..close];
            if name.is_empty() {
                return Err(format!("empty ${{}} in '{}'", shown(value)));
            }
            match env(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(format!(
                        "environment variable {} (in '{}') is not set",
                        shown(name),
                        shown(value)
                    ));
                }
            }
            rest = &body[close + 1..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        let Some(tokens) = tokens.filter(|_| c == '%') else {
            out.push(c);
            continue;
        };
        let Some(token) = rest.chars().next() else {
            return Err(format!(
                "'{}' ends with a lone '%'; write %% for a literal %",
                shown(value)
            ));
        };
        rest = &rest[token.len_utf8()..];
        if token == '%' {
            out.push('%');
            continue;
        }
        match tokens.iter().find(|(t, _)| *t == token) {
            Some((_, replacement)) => out.push_str(replacement),
            None => {
                let known: Vec<String> = std::iter::once("%%".to_string())
                    .chain(tokens.iter().map(|(t, _)| format!("%{t}")))
                    .collect();
                let token = shown(token.encode_utf8(&mut [0; 4]));
                return Err(format!(
                    "unknown token %{token} in '{}' (OpenSSH: percent_expand: unknown key %{token}); this directive accepts {}",
                    shown(value),
                    known.join(" ")
                ));
            }
        }
    }
    Ok(out)
}

/// OpenSSH's tilde_expand_filename: `~` and `~/…` are the password-database home, `~user/…` that user's.
pub(super) fn expand_tilde(path: &str, local: &Local) -> std::result::Result<String, String> {
    let Some(rest) = path.strip_prefix('~') else {
        return Ok(path.to_string());
    };
    let (home, tail) = match rest.find('/') {
        _ if rest.is_empty() => (local.home.clone(), ""),
        Some(0) => (local.home.clone(), &rest[1..]),
        Some(i) => (home_of(&rest[..i], local)?, &rest[i + 1..]),
        None => (home_of(rest, local)?, ""),
    };
    let tail = tail.trim_start_matches('/');
    let home = home.to_string_lossy().into_owned();
    let slash = if home.ends_with('/') { "" } else { "/" };
    Ok(format!("{home}{slash}{tail}"))
}

pub(super) fn sha1_hex(text: &str) -> String {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
