//! One authorized_keys line that lets a key do nothing but open TCP forwards to the destinations it
//! names. Pure: the destinations, the key and the comment in, the line out (or why a value cannot go
//! into one).
//!
//! Each option is there for a reason found with OpenSSH 9.2's sshd (tests/it/authorize.rs holds it to
//! each, with the real `ssh` client):
//!
//! | option | what it does |
//! | --- | --- |
//! | `restrict` | no pty, agent or X11 forwarding, no port forwarding, no `~/.ssh/rc`, and whatever a later OpenSSH adds to it |
//! | `port-forwarding` | forwarding back on (local and remote, TCP and Unix sockets), narrowed by the next two |
//! | `permitopen="host:port"` | one per destination: direct-tcpip channels (`ssh -L`, `-W`, `-D`, sqltun's own) only there, exactly as the client names it; forwards to Unix sockets (`ssh -L …:/path`) are refused too |
//! | `permitlisten="NO-LISTEN:1"` | remote forwarding (`ssh -R`): sshd lowercases the requested listen address before matching it against this pattern, which is upper case, so no request ever matches; authorized_keys has no `none` for it (OpenSSH 9.2 refuses the whole line) |
//! | `command="…"` | a forced command in place of any shell, command or subsystem (`restrict` alone still runs `ssh host cmd`) |
//!
//! One thing no authorized_keys option can stop: listening on a Unix socket on the server
//! (`ssh -R /path:host:port`, which sshd allows whatever `permitlisten` says). Only the server's
//! `AllowStreamLocalForwarding no` does; `authorize` says so.

use russh::keys::PublicKey;

use crate::target::Target;

/// The forced command: the key's holder who tries a shell learns why nothing happens, and the command
/// fails. Works in sh, bash, csh and fish alike (no redirection); a `nologin` shell runs nothing.
pub(super) const FORCED_COMMAND: &str = "echo 'sqltun: this key only opens tunnels'; exit 1";

/// A `permitlisten` pattern no request can match (see the module docs).
pub(super) const NO_LISTEN: &str = "NO-LISTEN:1";

/// `target` as a `permitopen` value sshd compares with what sqltun sends in its direct-tcpip request:
/// `host:port`, an IPv6 address in brackets (`[::1]:5432`, which sshd strips before comparing). Only
/// letters, digits, `.`, `-`, `_`, and `:` and `%` (IPv6 addresses, zones) are written: a quote, a
/// comma, whitespace or a wildcard (`*` would allow every host) from a config would change what the
/// line allows. The error says what is wrong with the host.
pub(super) fn permit_open(target: &Target) -> Result<String, String> {
    let host = &target.host;
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if let Some(c) = host
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%')))
    {
        let shown = crate::text::printable(&c.to_string());
        return Err(format!(
            "`{}` holds `{shown}`, which cannot go into an authorized_keys line: sqltun writes only host names of letters, digits, `.`, `-` and `_`, and IP addresses",
            crate::text::printable(host)
        ));
    }
    if target.port == 0 {
        return Err("port 0 is not a port".into());
    }
    Ok(target.to_string())
}

/// The line for `key` allowing forwards to `permits` (values from [`permit_open`], at least one; a
/// repeat is written once), ending in `comment`. The comment is refused unless it is made of letters,
/// digits and `.`, `-`, `_`, `:`, `@`: it ends the line, so a newline there would start another.
pub(super) fn line(permits: &[String], key: &PublicKey, comment: &str) -> Result<String, String> {
    if permits.is_empty() {
        return Err("no destination to allow".into());
    }
    if let Some(c) = comment
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '@')))
    {
        return Err(format!(
            "the comment `{}` holds `{}`, which cannot go into an authorized_keys line",
            crate::text::printable(comment),
            crate::text::printable(&c.to_string())
        ));
    }
    let mut options = vec!["restrict".to_string(), "port-forwarding".to_string()];
    for permit in permits {
        let option = format!("permitopen=\"{permit}\"");
        if !options.contains(&option) {
            options.push(option);
        }
    }
    options.push(format!("permitlisten=\"{NO_LISTEN}\""));
    options.push(format!("command=\"{FORCED_COMMAND}\""));
    Ok(format!("{} {} {comment}", options.join(","), key_text(key)?))
}

/// `ALGORITHM BASE64`, as in a `.pub` file without its comment.
fn key_text(key: &PublicKey) -> Result<String, String> {
    let mut bare = key.clone();
    bare.set_comment("");
    let text = bare
        .to_openssh()
        .map_err(|e| format!("cannot encode the public key: {e}"))?;
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [algorithm, blob] => Ok(format!("{algorithm} {blob}")),
        _ => Err("the public key does not encode as one algorithm and one blob".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEF6yWTv51hZW2UdZjJ1NwGaHcVFshwHDaEX1KYgAUrj someone@laptop";

    fn key() -> PublicKey {
        PublicKey::from_openssh(KEY).unwrap()
    }

    fn target(host: &str, port: u16) -> Target {
        Target {
            host: host.into(),
            port,
        }
    }

    fn permits(targets: &[(&str, u16)]) -> Vec<String> {
        targets
            .iter()
            .map(|(h, p)| permit_open(&target(h, *p)).unwrap())
            .collect()
    }

    /// The shape the issue asks for, with the options that make it hold (see the module docs), the key
    /// without its own comment, and ours.
    #[test]
    fn one_target() {
        let line = line(&permits(&[("db.internal", 5432)]), &key(), "sqltun:prod").unwrap();
        assert_eq!(
            line,
            "restrict,port-forwarding,permitopen=\"db.internal:5432\",permitlisten=\"NO-LISTEN:1\",\
             command=\"echo 'sqltun: this key only opens tunnels'; exit 1\" \
             ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEF6yWTv51hZW2UdZjJ1NwGaHcVFshwHDaEX1KYgAUrj sqltun:prod"
        );
        assert!(!line.contains('\n'));
    }

    /// Several targets get one `permitopen` each, in order, a repeat once; IPv6 addresses go in brackets
    /// (sshd strips them and compares the address with what the client sent, which has none).
    #[test]
    fn several_targets_and_ipv6() {
        let permits = permits(&[
            ("db.internal", 5432),
            ("2001:db8::7", 3306),
            ("db.internal", 5432),
            ("fe80::1%eth0", 6379),
            ("10.0.12.7", 5432),
        ]);
        let line = line(&permits, &key(), "sqltun").unwrap();
        assert!(
            line.starts_with(
                "restrict,port-forwarding,permitopen=\"db.internal:5432\",permitopen=\"[2001:db8::7]:3306\",\
                 permitopen=\"[fe80::1%eth0]:6379\",permitopen=\"10.0.12.7:5432\",permitlisten="
            ),
            "{line}"
        );
        assert!(line.ends_with(" sqltun"), "{line}");
        assert_eq!(line.matches("permitopen=").count(), 4);
    }

    /// Nothing from a config can add an option, end the quoted value, start a new line or widen what is
    /// allowed: every character outside a host name's is refused, with the host shown escaped.
    #[test]
    fn unsafe_hosts_are_refused() {
        for host in [
            "db\"",
            "db\",permitopen=\"evil:22",
            "db,x",
            "db x",
            "db\nssh-ed25519",
            "db\r",
            "*",
            "db.*",
            "?b",
            "db\\",
            "db'",
            "[::1]",
            "db/x",
            "dé.internal",
            "db\u{202e}",
            "",
        ] {
            let e = permit_open(&target(host, 5432)).unwrap_err();
            assert!(
                !e.contains('\n') && !e.contains('\r') && !e.contains('\u{202e}'),
                "{e:?}"
            );
        }
        let e = permit_open(&target("db\"x", 1)).unwrap_err();
        assert!(e.contains("holds `\"`"), "{e}");
        assert!(permit_open(&target("db", 0)).is_err());
    }

    /// The comment ends the line: a name with a newline, a space or a quote never gets there.
    #[test]
    fn unsafe_comments_are_refused() {
        let permits = permits(&[("db", 5432)]);
        for comment in [
            "sqltun:a\nrestrict",
            "sqltun:a b",
            "sqltun:\"",
            "sqltun:a,b",
            "sqltun:\u{0}",
        ] {
            let e = line(&permits, &key(), comment).unwrap_err();
            assert!(!e.contains('\n') && !e.contains('\0'), "{e:?}");
        }
        assert!(line(&[], &key(), "sqltun").is_err());
    }
}
