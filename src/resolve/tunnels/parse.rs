//! The tunnels file's TOML, checked key by key: every error names the file, the line and the key.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use serde::Deserialize;
use toml::{Spanned, Value};

use crate::cli::{DbArg, parse_bind, parse_db, parse_duration, parse_local_port, parse_option};
use crate::dest::{Destination, Jumps, parse_destination, parse_jump_list};
use crate::error::{Error, Result};
use crate::plan::OutputFormat;

/// A value and the line of the tunnels file it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    pub value: T,
    pub line: usize,
}

/// One `[tunnels.NAME]` table: what the flags would say, each value with its line.
#[derive(Debug, Clone, Default)]
pub struct Saved {
    pub name: String,
    /// The tunnels file it is in, and the line of its table.
    pub file: PathBuf,
    pub line: usize,
    pub description: Option<Sourced<String>>,
    pub ssh: Option<Sourced<Destination>>,
    pub jump: Option<Sourced<Jumps>>,
    pub db: Option<Sourced<Vec<DbArg>>>,
    pub local_port: Option<Sourced<Vec<u16>>>,
    pub bind: Option<Sourced<IpAddr>>,
    pub identity: Option<Sourced<Vec<PathBuf>>>,
    pub known_hosts: Option<Sourced<PathBuf>>,
    pub ssh_config: Option<Sourced<PathBuf>>,
    /// ssh_config directives, as `-o KEY=VALUE` (one each, in keyword order).
    pub options: Vec<Sourced<(String, String)>>,
    pub output: Option<Sourced<OutputFormat>>,
    pub idle_timeout: Option<Sourced<Duration>>,
    pub max_lifetime: Option<Sourced<Duration>>,
    pub password_command: Option<Sourced<Vec<String>>>,
    pub passphrase_command: Option<Sourced<Vec<String>>>,
    pub totp_command: Option<Sourced<Vec<String>>>,
}

impl Saved {
    /// `tunnel prod (/path/sqltun.toml:3)`, to start a message about the tunnel as a whole.
    pub fn describe(&self) -> String {
        format!("tunnel {} ({}:{})", self.name, self.file.display(), self.line)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    tunnels: BTreeMap<String, Spanned<RawTunnel>>,
}

/// Every key is taken as any TOML value, so the type checks below word their own errors with the key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTunnel {
    description: Option<Spanned<Value>>,
    ssh: Option<Spanned<Value>>,
    jump: Option<Spanned<Value>>,
    db: Option<Spanned<Value>>,
    local_port: Option<Spanned<Value>>,
    bind: Option<Spanned<Value>>,
    identity: Option<Spanned<Value>>,
    known_hosts: Option<Spanned<Value>>,
    ssh_config: Option<Spanned<Value>>,
    options: Option<Spanned<BTreeMap<String, Spanned<Value>>>>,
    output: Option<Spanned<Value>>,
    idle_timeout: Option<Spanned<Value>>,
    max_lifetime: Option<Spanned<Value>>,
    password_command: Option<Spanned<Value>>,
    passphrase_command: Option<Spanned<Value>>,
    totp_command: Option<Spanned<Value>>,
    // Keys a person might reach for to store a secret: known, so they get their own refusal.
    password: Option<Spanned<Value>>,
    passphrase: Option<Spanned<Value>>,
    totp_secret: Option<Spanned<Value>>,
    ssh_password: Option<Spanned<Value>>,
    db_password: Option<Spanned<Value>>,
}

/// Where a value is, for its error: `sqltun.toml:7: tunnels.prod.db: …`.
struct Place<'a> {
    text: &'a str,
    shown: &'a str,
    name: &'a str,
}

impl Place<'_> {
    fn line(&self, span: std::ops::Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    fn error(&self, line: usize, key: &str, message: impl std::fmt::Display) -> Error {
        Error::usage(format!("{}:{line}: tunnels.{}.{key}: {message}", self.shown, self.name))
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Parse a tunnels file's text. `path` is where it is (origins), `shown` how messages name it, `base`
/// the directory relative paths in it start from.
pub(super) fn parse(text: &str, path: &Path, shown: &str, base: &Path, home: Option<&Path>) -> Result<Vec<Saved>> {
    let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(&e, text, shown))?;
    let mut saved = Vec::new();
    for (name, table) in raw.tunnels {
        let line = line_of(text, table.span().start);
        let place = Place {
            text,
            shown,
            name: &name,
        };
        check_name(&name).map_err(|m| {
            Error::usage(format!(
                "{shown}:{line}: tunnels.{}: {m}",
                crate::text::escaped(&name, 80)
            ))
        })?;
        let mut tunnel = convert(table.into_inner(), &place, base, home)?;
        tunnel.name = name.clone();
        tunnel.file = path.to_path_buf();
        tunnel.line = line;
        saved.push(tunnel);
    }
    Ok(saved)
}

/// A tunnel's name is typed on command lines and shown in `ls`: letters, digits, `.`, `_`, `-`.
fn check_name(name: &str) -> std::result::Result<(), String> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if fine {
        Ok(())
    } else {
        Err("a tunnel's name is 1 to 64 letters, digits, '.', '_' or '-', not starting with '-' or '.'".into())
    }
}

/// toml's own error (syntax, an unknown key), with the file, line and the table it is in.
fn toml_error(e: &toml::de::Error, text: &str, shown: &str) -> Error {
    let line = e.span().map_or(1, |s| line_of(text, s.start));
    let message = crate::text::escaped(e.message().trim(), 400);
    Error::usage(format!("{shown}:{line}: {}{message}", key_at(text, line)))
}

/// `tunnels.prod.bogus: ` for an error on line `line`: the table header above it and the key on it.
fn key_at(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(current) = lines.get(line.saturating_sub(1)) else {
        return String::new();
    };
    let header = lines[..line.saturating_sub(1).min(lines.len())]
        .iter()
        .rev()
        .find_map(|l| {
            let l = l.trim();
            (l.starts_with('[') && !l.starts_with("[[")).then(|| l.trim_matches(['[', ']']).trim().to_string())
        });
    let key = current.split_once('=').map(|(k, _)| k.trim()).filter(|k| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    });
    let path = match (header, key) {
        (Some(h), Some(k)) => format!("{h}.{k}"),
        (Some(h), None) => h,
        (None, Some(k)) => k.to_string(),
        (None, None) => return String::new(),
    };
    format!("{}: ", crate::text::escaped(&path, 120))
}

fn convert(raw: RawTunnel, place: &Place, base: &Path, home: Option<&Path>) -> Result<Saved> {
    for (key, value) in [
        ("password", &raw.password),
        ("passphrase", &raw.passphrase),
        ("totp_secret", &raw.totp_secret),
        ("ssh_password", &raw.ssh_password),
        ("db_password", &raw.db_password),
    ] {
        if let Some(v) = value {
            return Err(place.error(
                place.line(v.span()),
                key,
                "secrets do not belong in the tunnels file (it is meant to be committed); use password_command, passphrase_command or totp_command, the SQLTUN_* variables, --password-file, or the prompt",
            ));
        }
    }
    let string = |key: &str, v: Option<Spanned<Value>>| -> Result<Option<Sourced<String>>> {
        v.map(|v| {
            let line = place.line(v.span());
            match v.into_inner() {
                Value::String(s) => Ok(Sourced { value: s, line }),
                other => Err(place.error(line, key, format!("expected a string, found {}", other.type_str()))),
            }
        })
        .transpose()
    };
    let strings = |key: &str, v: Option<Spanned<Value>>| -> Result<Option<Sourced<Vec<String>>>> {
        v.map(|v| {
            let line = place.line(v.span());
            match v.into_inner() {
                Value::String(s) => Ok(Sourced { value: vec![s], line }),
                Value::Array(items) => items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s),
                        other => Err(place.error(
                            line,
                            key,
                            format!("expected strings in the list, found {}", other.type_str()),
                        )),
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(|value| Sourced { value, line }),
                other => Err(place.error(
                    line,
                    key,
                    format!("expected a string or a list of strings, found {}", other.type_str()),
                )),
            }
        })
        .transpose()
    };
    let path = |key: &str, s: Option<Sourced<String>>| -> Result<Option<Sourced<PathBuf>>> {
        s.map(|s| {
            if s.value.is_empty() || s.value.contains('\0') {
                return Err(place.error(s.line, key, "expected a file path"));
            }
            Ok(Sourced {
                value: relative_to(&s.value, base, home),
                line: s.line,
            })
        })
        .transpose()
    };
    let command = |key: &str, v: Option<Spanned<Value>>| -> Result<Option<Sourced<Vec<String>>>> {
        let Some(v) = v else { return Ok(None) };
        let line = place.line(v.span());
        if matches!(v.get_ref(), Value::String(_)) {
            return Err(place.error(
                line,
                key,
                "expected the command as a list of words, e.g. [\"op\", \"read\", \"op://vault/item/password\"] (no shell runs it)",
            ));
        }
        let words = strings(key, Some(v))?.unwrap_or(Sourced {
            value: Vec::new(),
            line,
        });
        if words.value.first().is_none_or(|w| w.is_empty()) {
            return Err(place.error(line, key, "the command is empty"));
        }
        Ok(Some(words))
    };

    let ssh = string("ssh", raw.ssh)?;
    if let Some(s) = &ssh {
        refuse_password_in_destination(&s.value).map_err(|m| place.error(s.line, "ssh", m))?;
    }
    let jump = string("jump", raw.jump.map(joined_list))?;
    if let Some(j) = &jump {
        for hop in j.value.split(',') {
            refuse_password_in_destination(hop.trim()).map_err(|m| place.error(j.line, "jump", m))?;
        }
    }
    let db = match strings("db", raw.db)? {
        Some(list) => {
            let mut targets = Vec::new();
            for text in &list.value {
                let target = parse_db(text).map_err(|m| place.error(list.line, "db", m))?;
                if let DbArg::Url(u) = &target
                    && u.password.is_some()
                {
                    return Err(place.error(
                        list.line,
                        "db",
                        format!(
                            "`{u}` carries a password, and secrets do not belong in the tunnels file; leave it out and let the client find it (~/.pgpass, PGPASSWORD, ~/.my.cnf)"
                        ),
                    ));
                }
                targets.push(target);
            }
            if targets.is_empty() {
                return Err(place.error(list.line, "db", "the list of targets is empty"));
            }
            Some(Sourced {
                value: targets,
                line: list.line,
            })
        }
        None => None,
    };
    let local_port = match raw.local_port {
        Some(v) => {
            let line = place.line(v.span());
            let values = match v.into_inner() {
                Value::Array(items) => items,
                one => vec![one],
            };
            let ports = values
                .into_iter()
                .map(|p| match p {
                    Value::Integer(n) => {
                        parse_local_port(&n.to_string()).map_err(|m| place.error(line, "local_port", m))
                    }
                    other => Err(place.error(
                        line,
                        "local_port",
                        format!("expected a port number or a list of them, found {}", other.type_str()),
                    )),
                })
                .collect::<Result<Vec<u16>>>()?;
            Some(Sourced { value: ports, line })
        }
        None => None,
    };
    let options = match raw.options {
        Some(table) => {
            let mut options = Vec::new();
            for (key, value) in table.into_inner() {
                let line = place.line(value.span());
                let text = match value.into_inner() {
                    Value::String(s) => s,
                    Value::Integer(n) => n.to_string(),
                    Value::Boolean(b) => if b { "yes" } else { "no" }.to_string(),
                    other => {
                        return Err(place.error(
                            line,
                            &format!("options.{}", crate::text::escaped(&key, 60)),
                            format!("expected a string, number or boolean, found {}", other.type_str()),
                        ));
                    }
                };
                let pair = parse_option(&format!("{key}={text}"))
                    .map_err(|m| place.error(line, &format!("options.{}", crate::text::escaped(&key, 60)), m))?;
                options.push(Sourced { value: pair, line });
            }
            options
        }
        None => Vec::new(),
    };
    let identity = strings("identity", raw.identity)?
        .map(|list| {
            list.value
                .iter()
                .map(|p| {
                    path(
                        "identity",
                        Some(Sourced {
                            value: p.clone(),
                            line: list.line,
                        }),
                    )
                    .map(|s| s.map(|s| s.value))
                })
                .collect::<Result<Option<Vec<PathBuf>>>>()
                .map(|paths| Sourced {
                    value: paths.unwrap_or_default(),
                    line: list.line,
                })
        })
        .transpose()?;
    let ssh_config = string("ssh_config", raw.ssh_config)?;
    let ssh_config = match ssh_config {
        Some(s) if s.value == "none" => Some(Sourced {
            value: PathBuf::from("none"),
            line: s.line,
        }),
        other => path("ssh_config", other)?,
    };
    Ok(Saved {
        description: string("description", raw.description)?,
        ssh: checked(place, "ssh", ssh, parse_destination)?,
        jump: checked(place, "jump", jump, parse_jump_list)?,
        db,
        local_port,
        bind: checked(place, "bind", string("bind", raw.bind)?, parse_bind)?,
        identity,
        known_hosts: path("known_hosts", string("known_hosts", raw.known_hosts)?)?,
        ssh_config,
        options,
        output: checked(place, "output", string("output", raw.output)?, |s: &str| {
            OutputFormat::from_str(s, false).map_err(|_| {
                format!(
                    "`{}` is not an output format; one of port, addr, url, env, json",
                    crate::text::escaped(s, 40)
                )
            })
        })?,
        idle_timeout: checked(
            place,
            "idle_timeout",
            string("idle_timeout", raw.idle_timeout)?,
            parse_duration,
        )?,
        max_lifetime: checked(
            place,
            "max_lifetime",
            string("max_lifetime", raw.max_lifetime)?,
            parse_duration,
        )?,
        password_command: command("password_command", raw.password_command)?,
        passphrase_command: command("passphrase_command", raw.passphrase_command)?,
        totp_command: command("totp_command", raw.totp_command)?,
        ..Saved::default()
    })
}

/// A string value through one of the flags' parsers, its message placed at the value's line.
fn checked<T>(
    place: &Place,
    key: &str,
    s: Option<Sourced<String>>,
    parse: impl Fn(&str) -> std::result::Result<T, String>,
) -> Result<Option<Sourced<T>>> {
    s.map(|s| {
        parse(&s.value)
            .map(|value| Sourced { value, line: s.line })
            .map_err(|m| place.error(s.line, key, m))
    })
    .transpose()
}

/// `jump` as a list of hops is the same as the comma-separated string.
fn joined_list(v: Spanned<Value>) -> Spanned<Value> {
    let span = v.span();
    match v.into_inner() {
        Value::Array(items) if items.iter().all(Value::is_str) => Spanned::new(
            span,
            Value::String(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
        ),
        other => Spanned::new(span, other),
    }
}

/// `user:password@host` in a destination: refused as a secret, not merely as a bad destination.
fn refuse_password_in_destination(text: &str) -> std::result::Result<(), String> {
    let rest = text.strip_prefix("ssh://").unwrap_or(text);
    if let Some((userinfo, _)) = rest.rsplit_once('@')
        && userinfo.contains(':')
    {
        return Err("a password in the destination: secrets do not belong in the tunnels file; use password_command, SQLTUN_SSH_PASSWORD or the prompt".into());
    }
    Ok(())
}

/// A path from the file: `~/` is the home directory, a relative path starts at the file's directory.
fn relative_to(text: &str, base: &Path, home: Option<&Path>) -> PathBuf {
    if let (Some(rest), Some(home)) = (text.strip_prefix("~/"), home) {
        return home.join(rest);
    }
    let path = PathBuf::from(text);
    if path.is_absolute() { path } else { base.join(path) }
}
