//! Parsers for what users type: SSH destinations and forward targets. Pure functions of `&str`.
//!
//! Messages quote the input through [`printable`] (control characters escaped, long text cut short), with
//! whatever may be a password masked.

pub use crate::text::printable;

/// A destination for a message: printable, and with a `user:password@` part masked (ssh would take
/// `user:password` as the user name, but it is almost certainly a password).
fn shown(input: &str) -> String {
    printable(&crate::text::mask_userinfo_password(input))
}

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
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("the SSH destination is empty: give [user@]host[:port]".into());
    }
    let fail = |msg: &str| format!("`{}`: {msg}", shown(trimmed));
    let (is_uri, rest) = match trimmed.strip_prefix("ssh://") {
        Some(rest) => (true, rest.strip_suffix('/').unwrap_or(rest)),
        None => (false, trimmed),
    };
    if is_uri && rest.contains(['/', '?', '#']) {
        return Err(fail("an ssh:// destination takes no path or query"));
    }
    let (user, hostport) = match rest.rfind('@') {
        Some(i) => {
            let user = &rest[..i];
            if user.is_empty() {
                return Err(fail("the user before `@` is empty"));
            }
            (Some(user.to_string()), &rest[i + 1..])
        }
        None => (None, rest),
    };
    let (host, port) = split_host_port(hostport, !is_uri).map_err(|e| fail(&e))?;
    if host.is_empty() {
        return Err(fail("the host is empty"));
    }
    let source = format!("`{}`", shown(trimmed));
    check_name(NameKind::Host, &host, &source)?;
    if let Some(u) = &user {
        check_name(NameKind::User, u, &source)?;
    }
    Ok(Destination {
        user,
        host,
        port,
        // Trimmed: it names the hop in messages, where a stray tab or newline would show.
        original: trimmed.to_string(),
    })
}

/// Jump hosts as `-J` and `ProxyJump` list them, in dialling order; empty for `none` (no jump at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jumps(pub Vec<Destination>);

/// `a,user@b:2222,ssh://c` → jump hosts; `none` → none. Each item is a destination, checked as one.
pub fn parse_jump_list(list: &str) -> Result<Jumps, String> {
    let list = list.trim();
    if list.eq_ignore_ascii_case("none") {
        return Ok(Jumps(Vec::new()));
    }
    list.split(',')
        .map(|item| parse_destination(item.trim()))
        .collect::<Result<_, _>>()
        .map(Jumps)
}

/// What a name given for an SSH hop stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// The user to log in as (`%r`).
    User,
    /// The host name or address to dial (`%h`), or the destination as given (`%n`).
    Host,
}

/// Characters a POSIX shell gives a meaning to, refused in user names (OpenSSH's `valid_ruser` refuses
/// all but `$` and `\`; both are refused here too, as they expand or escape inside double quotes).
const SHELL_METACHARACTERS: &str = "'`\"$\\;&<>|(){}";

/// The one check every SSH user and host name goes through before it is used anywhere (expanded into
/// `ProxyCommand`, `ProxyJump` or a path, dialled, sent to a server), whatever it came from: `--ssh`,
/// `-J`, a `+ssh` URL after percent-decoding, `-o User=`/`-o HostName=`, a config file's `User` and
/// `HostName` (also a jump host's own), the local user name as the default.
///
/// As OpenSSH's `valid_ruser` and `valid_hostname` (misc.c, checked in ssh.c; OpenSSH 10), stricter where those leave
/// room for trouble: a user name may not start with `-` nor hold a control character, whitespace, an
/// invisible formatting character or a shell metacharacter (`'` `` ` `` `"` `$` `\` `;` `&` `<` `>` `|`
/// `(` `)` `{` `}`); a host name is letters, digits, `.`, `-`, `_`, and `:` and `%` (IPv6 addresses,
/// zones), not starting with `-`. `source` says where the name came from (`--ssh`, the file and line,
/// `-o User`); the message starts with it.
pub fn check_name(kind: NameKind, name: &str, source: &str) -> Result<(), String> {
    let problem = match kind {
        NameKind::User => user_problem(name),
        NameKind::Host => host_problem(name),
    };
    let Some(problem) = problem else {
        return Ok(());
    };
    let what = match kind {
        NameKind::User => "SSH user name",
        NameKind::Host => "SSH host name",
    };
    Err(format!(
        "{source}: the {what} `{}` {problem}; sqltun refuses it, as OpenSSH does, since a ProxyCommand would hand it to a shell",
        printable(name)
    ))
}

fn user_problem(user: &str) -> Option<String> {
    if user.is_empty() {
        return Some("is empty".into());
    }
    if user.starts_with('-') {
        return Some("starts with `-` (a program would read it as an option)".into());
    }
    user.chars().find_map(|c| {
        if c.is_control() || crate::text::is_invisible(c) {
            Some(format!("contains the control character {}", printable(&c.to_string())))
        } else if c.is_whitespace() {
            Some("contains whitespace".into())
        } else if c == '`' {
            Some("contains a backtick, a shell metacharacter".into())
        } else if SHELL_METACHARACTERS.contains(c) {
            Some(format!("contains `{c}`, a shell metacharacter"))
        } else {
            None
        }
    })
}

fn host_problem(host: &str) -> Option<String> {
    if host.is_empty() {
        return Some("is empty".into());
    }
    if host.starts_with('-') {
        return Some("starts with `-` (a program would read it as an option)".into());
    }
    host.chars().find_map(|c| {
        if c.is_control() || crate::text::is_invisible(c) {
            Some(format!("contains the control character {}", printable(&c.to_string())))
        } else if c.is_whitespace() {
            Some("contains whitespace".into())
        } else if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%') {
            None
        } else if c == '`' {
            Some("contains a backtick: a host name is letters, digits, `.`, `-` and `_`".into())
        } else {
            Some(format!(
                "contains `{c}`: a host name is letters, digits, `.`, `-` and `_` (an internationalised name in its xn-- form, an IPv6 address in brackets)"
            ))
        }
    })
}

/// Split `host[:port]`, `[v6]` or `[v6]:port`. With `bare_v6`, an unbracketed text with several colons
/// is an IPv6 literal without a port (as ssh accepts `ssh ::1`).
pub(crate) fn split_host_port(s: &str, bare_v6: bool) -> Result<(String, Option<u16>), String> {
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
        Err(_) => Err(format!("`{}` is not a port number (1-65535)", printable(p))),
    }
}

pub(crate) fn validate_host(host: &str) -> Result<(), String> {
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the host contains whitespace or control characters".into());
    }
    if host.starts_with('-') {
        return Err("a host may not start with `-`".into());
    }
    if host.contains(['/', '@', '[', ']']) {
        return Err(format!("`{}` is not a valid host name or address", printable(host)));
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

    /// Jump items take every destination spelling, `none` is no jump at all, and a bad item is named
    /// and refused by the same check as --ssh.
    #[test]
    fn jump_lists() {
        let list = parse_jump_list("u@h1:2222,ssh://h2,[::1]:22").unwrap().0;
        assert_eq!(
            list.iter().map(|d| d.host.as_str()).collect::<Vec<_>>(),
            ["h1", "h2", "::1"]
        );
        assert_eq!(list[0].user.as_deref(), Some("u"));
        assert_eq!(parse_jump_list(" None ").unwrap(), Jumps(Vec::new()));
        assert!(parse_jump_list("h1,,h2").unwrap_err().contains("empty"));
        let e = parse_jump_list("ok@h1,x;touch m@h2").unwrap_err();
        assert!(e.starts_with("`x;touch m@h2`: the SSH user name"), "{e}");
        let e = parse_jump_list("h1,-oProxyCommand=x").unwrap_err();
        assert!(e.contains("starts with `-`"), "{e}");
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

    /// Every character that could run a command through ProxyCommand's `%r` or `%h`, or pass for an
    /// option, is refused, with the source first and the name printable; ordinary names pass.
    #[test]
    fn names_checked_for_the_shell() {
        for user in ["deploy", "a.b-c_d", "u@corp", "j%2", "ÿser", "*x?"] {
            assert_eq!(check_name(NameKind::User, user, "--ssh"), Ok(()), "{user}");
        }
        for host in ["bastion", "db-1.example.com.", "10.0.0.1", "fe80::1%eth0", "my_alias"] {
            assert_eq!(check_name(NameKind::Host, host, "--ssh"), Ok(()), "{host}");
        }
        for (user, needle) in [
            ("x\n>m\n", "control character \\n"),
            ("x;>m", "`;`"),
            ("x$(>m)", "`$`"),
            ("x`>m`", "backtick"),
            ("x|>m", "`|`"),
            ("x&>m", "`&`"),
            ("x>m", "`>`"),
            ("x<m", "`<`"),
            ("x'm", "`'`"),
            ("x\"m", "`\"`"),
            ("x\\", "`\\`"),
            ("(x)", "`(`"),
            ("{x}", "`{`"),
            ("a b", "whitespace"),
            ("a\u{202e}b", "control character"),
            ("-oProxyCommand=x", "starts with `-`"),
            ("", "empty"),
        ] {
            let err = check_name(NameKind::User, user, "the place").unwrap_err();
            assert!(err.starts_with("the place: the SSH user name"), "{user:?}: {err}");
            assert!(err.contains(needle), "{user:?}: {err}");
            assert!(!err.chars().any(char::is_control), "{user:?}: {err:?}");
        }
        for (host, needle) in [
            ("h\n>m", "control character"),
            ("h >m", "whitespace"),
            ("h;>m", "`;`"),
            ("h$(>m)", "`$`"),
            ("h`>m`", "backtick"),
            ("h|x", "`|`"),
            ("h&x", "`&`"),
            ("a,b", "`,`"),
            ("-oProxyCommand=x", "starts with `-`"),
            ("bücher.example", "xn--"),
        ] {
            let err = check_name(NameKind::Host, host, "the place").unwrap_err();
            assert!(err.starts_with("the place: the SSH host name"), "{host:?}: {err}");
            assert!(err.contains(needle), "{host:?}: {err}");
        }
        let err = parse_destination("x$(touch m)@h").unwrap_err();
        assert!(err.starts_with("`x$(touch m)@h`: the SSH user name"), "{err}");
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
            ("-oProxyCommand=x", "starts with `-`"),
            ("user@", "host is empty"),
            ("ho st", "whitespace"),
        ] {
            let err = parse_destination(input).unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    /// Found by fuzzing: messages quote the input with control characters escaped, a password masked, and
    /// long input cut short.
    #[test]
    fn messages_are_printable_and_masked() {
        for input in [
            "[ft0\u{10}::.][ft00::.]:#37:3373",
            "host\rname",
            "\u{1b}[31mred.example",
            "host:\u{1b}[2J",
            "u:s3cr3t@host:0",
            "ssh://u:s3cr3t@host:99999",
        ] {
            let err = parse_destination(input).unwrap_err();
            assert!(!err.chars().any(char::is_control), "{input:?}: {err:?}");
            assert!(!err.contains("s3cr3t"), "{input:?}: {err}");
        }
        let err = parse_destination(&format!("{}:x", "h".repeat(10_000))).unwrap_err();
        assert!(err.len() < 600, "{} bytes", err.len());
        assert_eq!(printable("a\u{1b}b\n\u{202e}c"), "a\\x1bb\\n\\u{202e}c");
        assert_eq!(printable(&"x".repeat(300)), format!("{}…", "x".repeat(200)));
    }
}
