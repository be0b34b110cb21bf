//! Parsers for what users type: SSH destinations and forward targets. Pure functions of `&str`.

use crate::plan::Target;

/// An SSH destination as typed: `[user@]host[:port]` or `ssh://[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The text as the user typed it, for messages.
    pub original: String,
}

/// Parse `[user@]host[:port]` or `ssh://[user@]host[:port]`; IPv6 literals go in brackets.
pub fn parse_destination(input: &str) -> Result<Destination, String> {
    let original = input.to_string();
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("the SSH destination is empty: give [user@]host[:port]".into());
    }
    let (is_uri, rest) = match trimmed.strip_prefix("ssh://") {
        Some(rest) => (true, rest.strip_suffix('/').unwrap_or(rest)),
        None => (false, trimmed),
    };
    if is_uri && rest.contains(['/', '?', '#']) {
        return Err(format!("`{input}`: an ssh:// destination takes no path or query"));
    }
    let (user, hostport) = match rest.rfind('@') {
        Some(i) => {
            let user = &rest[..i];
            if user.is_empty() {
                return Err(format!("`{input}`: the user before `@` is empty"));
            }
            (Some(user.to_string()), &rest[i + 1..])
        }
        None => (None, rest),
    };
    let (host, port) = split_host_port(hostport, !is_uri).map_err(|e| format!("`{input}`: {e}"))?;
    if host.is_empty() {
        return Err(format!("`{input}`: the host is empty"));
    }
    validate_host(&host).map_err(|e| format!("`{input}`: {e}"))?;
    if let Some(u) = &user
        && u.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("`{input}`: the user name contains whitespace"));
    }
    Ok(Destination {
        user,
        host,
        port,
        original,
    })
}

/// Parse a target `host:port` or `[v6addr]:port`; the port is required.
pub fn parse_target(input: &str) -> Result<Target, String> {
    let trimmed = input.trim();
    if trimmed.contains("://") {
        return Err(format!(
            "`{input}`: database URLs are not supported yet; give host:port"
        ));
    }
    let (host, port) = split_host_port(trimmed, false).map_err(|e| format!("`{input}`: {e}"))?;
    if host.is_empty() {
        return Err(format!("`{input}`: the host is empty; give host:port"));
    }
    validate_host(&host).map_err(|e| format!("`{input}`: {e}"))?;
    let port = port.ok_or_else(|| format!("`{input}`: no port; give host:port (e.g. {host}:5432)"))?;
    Ok(Target { host, port })
}

/// Split `host[:port]`, `[v6]` or `[v6]:port`. With `bare_v6`, an unbracketed text with several colons
/// is an IPv6 literal without a port (as ssh accepts `ssh ::1`).
fn split_host_port(s: &str, bare_v6: bool) -> Result<(String, Option<u16>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or("a `[` without its closing `]`")?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(parse_port(p.strip_prefix(':').ok_or("text after `]` must be :port")?)?),
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() && !host.contains(':') {
            // Brackets around a name are allowed by OpenSSH; keep it as the host.
            return Ok((host.to_string(), port));
        }
        return Ok((host.to_string(), port));
    }
    match s.matches(':').count() {
        0 => Ok((s.to_string(), None)),
        1 => {
            let (h, p) = s.split_once(':').ok_or("missing port")?;
            Ok((h.to_string(), Some(parse_port(p)?)))
        }
        _ if bare_v6 && s.parse::<std::net::Ipv6Addr>().is_ok() => Ok((s.to_string(), None)),
        _ => Err("an IPv6 address needs brackets: [addr]:port".into()),
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) => Err("port 0 is not a valid port".into()),
        Ok(n) => Ok(n),
        Err(_) if p.is_empty() => Err("the port after `:` is empty".into()),
        Err(_) => Err(format!("`{p}` is not a port number (1-65535)")),
    }
}

fn validate_host(host: &str) -> Result<(), String> {
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the host contains whitespace or control characters".into());
    }
    if host.starts_with('-') {
        return Err("a host may not start with `-`".into());
    }
    if host.contains(['/', '@', '[', ']']) {
        return Err(format!("`{host}` is not a valid host name or address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(user: Option<&str>, host: &str, port: Option<u16>, original: &str) -> Destination {
        Destination {
            user: user.map(Into::into),
            host: host.into(),
            port,
            original: original.into(),
        }
    }

    /// Every spelling PRODUCT.md promises for --ssh must parse to the same parts ssh would use.
    #[test]
    fn destinations() {
        for (input, expected) in [
            ("bastion", dest(None, "bastion", None, "bastion")),
            (
                "deploy@bastion.example.com",
                dest(
                    Some("deploy"),
                    "bastion.example.com",
                    None,
                    "deploy@bastion.example.com",
                ),
            ),
            (
                "deploy@bastion:2222",
                dest(Some("deploy"), "bastion", Some(2222), "deploy@bastion:2222"),
            ),
            (
                "ssh://deploy@bastion:2222",
                dest(Some("deploy"), "bastion", Some(2222), "ssh://deploy@bastion:2222"),
            ),
            ("ssh://bastion/", dest(None, "bastion", None, "ssh://bastion/")),
            (
                "u@[2001:db8::1]:22",
                dest(Some("u"), "2001:db8::1", Some(22), "u@[2001:db8::1]:22"),
            ),
            ("[::1]", dest(None, "::1", None, "[::1]")),
            ("::1", dest(None, "::1", None, "::1")),
            ("a@b@host", dest(Some("a@b"), "host", None, "a@b@host")),
        ] {
            assert_eq!(parse_destination(input), Ok(expected), "{input}");
        }
    }

    /// Malformed destinations get a message that quotes the input and says what is wrong.
    #[test]
    fn bad_destinations() {
        for (input, needle) in [
            ("", "empty"),
            ("@host", "user"),
            ("host:", "empty"),
            ("host:99999", "not a port"),
            ("host:0", "port 0"),
            ("[::1", "closing"),
            ("[::1]x", ":port"),
            ("ssh://host/db", "no path"),
            ("-oProxyCommand=x", "may not start"),
            ("user@", "host is empty"),
            ("ho st", "whitespace"),
        ] {
            let err = parse_destination(input).unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    /// Targets need a port and accept bracketed IPv6.
    #[test]
    fn targets() {
        assert_eq!(
            parse_target("10.0.12.7:5432"),
            Ok(Target {
                host: "10.0.12.7".into(),
                port: 5432
            })
        );
        assert_eq!(
            parse_target("[fd00::7]:5432"),
            Ok(Target {
                host: "fd00::7".into(),
                port: 5432
            })
        );
        assert_eq!(
            parse_target("db.internal:6379"),
            Ok(Target {
                host: "db.internal".into(),
                port: 6379
            })
        );
        assert!(parse_target("db.internal").unwrap_err().contains("no port"));
        assert!(parse_target("fd00::7:5432").unwrap_err().contains("brackets"));
        assert!(parse_target(":5432").unwrap_err().contains("empty"));
    }
}
