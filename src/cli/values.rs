//! The value parsers behind the flags: each calls the domain layer and words its own error, so clap
//! never echoes a value (a password in a URL, control characters) back.

use std::ffi::OsStr;
use std::net::IpAddr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

use super::DbArg;
use crate::db::parse_target;
use crate::dest::printable;

/// A clap value parser around one of our `&str` parsers, whose error is our message alone, prefixed with
/// the option's name: `error: --db `postgres://app:***@db:99999/app`: the port is not a number …`.
///
/// clap's own error for a failed value parser starts `invalid value '<the value as typed>'`: that would put a
/// password from `--db postgres://user:password@…` on stderr, and any control characters typed into a value
/// (`$'host\rname'`) on the terminal. Our parsers quote the value themselves, masked and escaped.
/// `Error::raw` is printed as `error: MESSAGE` with nothing of the value added; clap exits with 2.
#[derive(Clone)]
pub(super) struct Checked<T> {
    name: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

impl<T> Checked<T> {
    pub(super) fn new(name: &'static str, parse: fn(&str) -> Result<T, String>) -> Self {
        Checked { name, parse }
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Checked<T> {
    type Value = T;

    fn parse_ref(&self, _: &clap::Command, _: Option<&clap::Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let Some(text) = value.to_str() else {
            return Err(clap::Error::raw(
                ErrorKind::InvalidUtf8,
                format!(
                    "{} `{}`: not valid UTF-8\n",
                    self.name,
                    printable(&value.to_string_lossy())
                ),
            ));
        };
        (self.parse)(text).map_err(|message| {
            // The parsers' messages are printable already; escaping again keeps a slip there off the terminal.
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("{}: {}\n", self.name, printable_message(&message)),
            )
        })
    }
}

/// A message for one line: control characters escaped. Not cut short (the parsers shorten what they
/// quote), so the reason at its end is kept.
pub(super) fn printable_message(message: &str) -> String {
    crate::text::escaped(message, usize::MAX)
}

/// `--local-port`: 0 lets the OS choose, as when it is not given.
pub fn parse_local_port(s: &str) -> Result<u16, String> {
    s.parse()
        .map_err(|_| format!("`{}` is not a port number (0-65535)", printable(s)))
}

/// `--bind`: an IPv4 or IPv6 address, without brackets or port.
pub fn parse_bind(s: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| format!("`{}` is not an IP address (e.g. 127.0.0.1 or ::1)", printable(s)))
}

pub fn parse_db(s: &str) -> Result<DbArg, String> {
    if crate::db::looks_like_url(s) {
        crate::db::parse_db_url(s).map(DbArg::Url)
    } else {
        parse_target(s).map(DbArg::Target)
    }
}

/// `90`, `90s`, `30m`, `2h`, `1h30m`, `1d`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("an empty duration; write e.g. 90s, 30m or 2h".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => {
                return Err(format!(
                    "`{}`: unknown unit `{}`; use s, m, h or d (e.g. 1h30m)",
                    printable(s),
                    printable(c.encode_utf8(&mut [0; 4]))
                ));
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("`{}`: a unit without a number before it", printable(s)))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{}`: too long", printable(s)))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "`{}`: a number without a unit at the end; write e.g. {number}s",
            printable(s)
        ));
    }
    if total == 0 {
        return Err(format!("`{}`: the duration must be longer than 0", printable(s)));
    }
    Ok(std::time::Duration::from_secs(total))
}

/// `-o Key=Value` or `-o "Key Value"`, as ssh accepts both.
pub fn parse_option(s: &str) -> Result<(String, String), String> {
    let s = s.trim();
    let split = s.find(|c: char| c == '=' || c.is_whitespace());
    match split {
        Some(i) if i > 0 => {
            let key = s[..i].trim();
            let value = s[i + 1..]
                .trim_start_matches(|c: char| c == '=' || c.is_whitespace())
                .trim();
            if value.is_empty() {
                return Err(format!(
                    "`{}` has no value: write -o {}=VALUE",
                    printable(s),
                    printable(key)
                ));
            }
            Ok((key.to_string(), value.to_string()))
        }
        _ => Err(format!(
            "`{}` is not KEY=VALUE (e.g. -o StrictHostKeyChecking=accept-new)",
            printable(s)
        )),
    }
}
