//! `ssh_config` evaluation with OpenSSH's semantics: a destination resolves here exactly as
//! `ssh -G` (OpenSSH 9.2, Debian 12) resolves it, for every directive sqltun honours.
//!
//! The reference is OpenSSH's client (`readconf.c`, `ssh.c`), checked by experiment against `ssh -G`
//! on the reference machine; the test corpus under `tests/ssh_config/` compares the two key by key.
//!
//! How OpenSSH reads a configuration, and so how this module does:
//! - `-o` directives are read first, then the destination's user and port (so `-o User`/`-o Port` beat
//!   `user@host:port`, as in `ssh -o … ssh://user@host:port`), then `~/.ssh/config`, then
//!   `/etc/ssh/ssh_config` (or only the `-F` file). For each directive the first value obtained wins;
//!   `IdentityFile` and `CertificateFile` accumulate (repeats dropped).
//! - `Host` patterns match the host as given; `Match host` matches the host after `HostName`.
//! - If any `Match final` line is read (or `canonical`), every file is read a second time with the
//!   final host name: `Host` lines then match the final name, and `Match final`/`canonical` are true.
//! - `Include` reads its files in place; files included from a block that does not apply are still
//!   parsed (and so still checked) but nothing in them applies.
//! - Every line is checked, applying or not: an unknown keyword or a bad value is an error.
//! - `%` tokens and `${VAR}` are expanded once the host name, port and user are known. `~` is the
//!   password-database home ([`Local::home`]), except in `Include`, where it is `$HOME` (glob's rule).
//!
//! What each [`Setting`] holds (`values` are ready to use; [`Resolved::to_ssh_g`] prints what `ssh -G`
//! prints, which differs from `values` only where `Setting::ssh_g` says so):
//!
//! | directive | `values` |
//! | --- | --- |
//! | `identityfile` | one path per value, `~`, `%` tokens and `${VAR}` expanded; `none` entries left out |
//! | `certificatefile` | one path per value, expanded like `identityfile` |
//! | `userknownhostsfile` | one path per value, expanded; or `none` |
//! | `globalknownhostsfile` | one path per value, as written (OpenSSH does not expand it); or `none` |
//! | `ciphers`, `kexalgorithms`, `hostkeyalgorithms`, `macs` | one string: the final list, comma-separated |
//! | `proxyjump` | one string, the hops separated by commas, `%h %n %p %r %%` expanded |
//! | `proxycommand` | one string, `%h %n %p %r %%` expanded, each token one shell word ([`crate::text::shell_word`]) |
//! | `identityagent` | one string, expanded; `none`, `SSH_AUTH_SOCK` and `$VAR` kept for the caller |
//! | anything else | one string, as `ssh -G` prints it (`yes`/`no`, seconds, `true`/`ask`…) |
//!
//! `ProxyJump none` and `ProxyCommand none` leave the directive out of [`Resolved::settings`].
//!
//! # Deliberate differences from OpenSSH
//!
//! 1. `Match exec` is refused (an error naming file and line) whenever its result could decide
//!    whether the block applies; OpenSSH runs the command. When the other criteria on the line
//!    already rule the block out, OpenSSH's answer does not depend on the command and neither does ours.
//! 2. `CanonicalizeHostname yes`/`always` is refused when it applies: sqltun does not canonicalize
//!    (that needs DNS lookups while reading the configuration).
//! 3. Unknown `%` tokens and unset `${VAR}` in `IdentityFile`, `CertificateFile`, `ProxyCommand` and
//!    `ProxyJump` are errors naming file and line at resolve time. `ssh -G` prints those unexpanded and
//!    OpenSSH fails only when it connects (with a message that names no file).
//! 4. A `Ciphers`/`KexAlgorithms`/`HostKeyAlgorithms`/`MACs` value that removes every algorithm
//!    (`-*`) is an error; `ssh -G` prints an empty list and the connection fails later.
//! 5. The first bad line stops resolution; OpenSSH reports every bad line, then stops.
//! 6. Directives sqltun does not honour are checked only for being known and having a value; their
//!    values are not validated (OpenSSH also rejects, say, `ForwardAgent maybe`). Those that apply to
//!    the destination are listed in [`Resolved::unsupported`].
//! 7. `~user/…` paths and `Port` service names are looked up in `/etc/passwd` and `/etc/services`
//!    only (OpenSSH asks NSS, which may also consult LDAP and the like).
//! 8. An unreadable `~/.ssh/config` or `/etc/ssh/ssh_config` (other than missing) is an error;
//!    OpenSSH silently skips it. A line that is not UTF-8 (other than a comment) is an error.
//! 9. Only regular files are read (and `/dev/null`, as empty). A FIFO, a socket or a device is
//!    refused by name (for an `Include`, by the including file and line) before it is opened: OpenSSH
//!    opens whatever it is given, so `Include` of a FIFO nobody writes to blocks it forever and
//!    `Include /dev/zero` reads until memory runs out. A directory given to `-F` (or in place of
//!    `~/.ssh/config` or `/etc/ssh/ssh_config`) is refused too; OpenSSH reads it as empty. A
//!    directory an `Include` names or matches is skipped, as in OpenSSH.
//! 10. A file larger than 4 MiB, or a pass over the configuration that reads more than 16 MiB or
//!     more than 1024 files (`Include` fanning out over 16 levels), is refused; OpenSSH has no bound.
//! 11. A control character (other than tab) in a directive's value is an error naming file and
//!     line; OpenSSH cuts the line at a NUL and keeps the others in the value.
//! 12. The final `User` and `HostName`, from a file as well as from the command line, go through
//!     [`check_name`] before any token is expanded: OpenSSH checks only command-line names (and, from
//!     10.1, users with `%` tokens), and allows a space in a user name. `ProxyCommand`'s `%h %n %p %r`
//!     are single-quoted when they are not plain names; OpenSSH puts them in as they are.
//!
//! A file that starts with a UTF-8 byte-order mark is refused by line, as OpenSSH refuses it, with a
//! message that says what the invisible bytes are. Messages quote keywords, values, patterns and
//! paths with control and invisible formatting characters escaped (`\x1b`, `\u{feff}`) and values
//! cut after 200 characters, so nothing in a file can drive the terminal.
//!
//! Where each part lives: `keywords` (the directive table), `lexer` (splitting lines), `reader`
//! (files, lines, `Host`/`Match`, `Include`), `directives` (checking and recording each honoured
//! directive), `finish` (defaults, token expansion, the result), `values` (yes/no, numbers, times,
//! ports, `%` tokens, `~`), `jump` (ProxyJump), `algorithms`, `glob` (Include globs), `files`
//! (reading a file, through [`crate::safe_file`]), `local` (the local user and host). Host and
//! Match patterns are [`crate::pattern`], shared with known_hosts.
//!
//! The values copied from the reference OpenSSH (default algorithm lists, Debian's 300 s
//! `ServerAliveInterval` under `BatchMode yes`) are OpenSSH 9.2p1 Debian-2+deb12u10's.

mod algorithms;
mod directives;
mod files;
mod finish;
mod glob;
mod jump;
mod keywords;
mod lexer;
mod local;
mod reader;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::dest::{NameKind, check_name};
use crate::error::Error;
use keywords::Key;
use reader::{Flags, Obtained, Reader};

type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Origin {
    /// OpenSSH's default.
    Default,
    /// `-o`, or the destination (`user@host:port`).
    CommandLine,
    /// A line of a configuration file.
    File { path: PathBuf, line: usize },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::CommandLine => f.write_str("command line"),
            Origin::File { path, line } => write!(f, "{}:{line}", shown_path(path)),
        }
    }
}

impl Origin {
    /// `command line`, `default`, or `file:line` (the path as it is, for JSON).
    pub fn describe(&self) -> String {
        match self {
            Origin::Default => "default".into(),
            Origin::CommandLine => "command line".into(),
            Origin::File { path, line } => format!("{}:{line}", path.display()),
        }
    }
}

/// One resolved directive.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// Ready to use: one value, or several for the list and accumulating directives (see the module docs).
    pub values: Vec<String>,
    /// Where the (first) value came from.
    pub origin: Origin,
    /// What `ssh -G` prints instead of `values`, where that differs: OpenSSH expands `IdentityFile`,
    /// `CertificateFile`, `ProxyCommand` and `ProxyJump` only when it connects.
    pub ssh_g: Option<Vec<String>>,
}

impl Setting {
    /// A setting `ssh -G` prints as it is.
    pub fn new(values: Vec<String>, origin: Origin) -> Setting {
        Setting {
            values,
            origin,
            ssh_g: None,
        }
    }

    /// A setting whose `ssh -G` text is `shown` (kept only if it differs from `values`).
    fn shown_as(values: Vec<String>, origin: Origin, shown: Vec<String>) -> Setting {
        let ssh_g = (shown != values).then_some(shown);
        Setting { values, origin, ssh_g }
    }
}

/// Which configuration files to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigChoice<'a> {
    /// `~/.ssh/config`, then `/etc/ssh/ssh_config`.
    Default,
    /// Only this file (`-F FILE`).
    File(&'a Path),
    /// No file (`-F none`).
    None,
}

/// Inputs that are not in the files.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    /// The host as given (an alias or a name).
    pub host: &'a str,
    /// From `user@host`.
    pub user: Option<&'a str>,
    /// From `host:port`.
    pub port: Option<u16>,
    /// `-o KEY=VALUE` (and the tunnels file's options), in order: the first value obtained wins.
    pub options: &'a [Directive],
    pub config: ConfigChoice<'a>,
}

/// One directive given outside the config files (`-o`, `-i`, the tunnels file), and where from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub keyword: String,
    pub value: String,
    pub origin: Origin,
}

impl Directive {
    /// A directive from the command line.
    pub fn flag(keyword: &str, value: &str) -> Directive {
        Directive {
            keyword: keyword.to_string(),
            value: value.to_string(),
            origin: Origin::CommandLine,
        }
    }
}

/// Local facts the tokens and defaults need (so tests can inject them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    /// The local user name: `%u`, `Match localuser`, the default `User`.
    pub user: String,
    /// The home directory from the password database: `~`, `%d`, `~/.ssh/config`, default key paths.
    pub home: PathBuf,
    /// The host name as gethostname(2) gives it: `%l`; `%L` is the part before the first dot.
    pub hostname: String,
    /// The real user id: `%i`, and who may own included files.
    pub uid: u32,
}

/// What a destination resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Every honoured directive that has a value, by lowercase name (`ssh -G`'s spelling).
    pub settings: BTreeMap<String, Setting>,
    /// Directives sqltun does not honour that apply to this destination (lowercase, as written), with
    /// where each was set, so `-v` can list what is being ignored.
    pub unsupported: Vec<(String, Origin)>,
}

impl Resolved {
    /// The first value of `key` (lowercase), if it has one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings
            .get(key)
            .and_then(|s| s.values.first())
            .map(String::as_str)
    }

    /// Every value of `key` (lowercase).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.settings
            .get(key)
            .map(|s| s.values.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Where `key` (lowercase) got its value.
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.settings.get(key).map(|s| &s.origin)
    }

    /// Lines in `ssh -G` format (`key value`) for the honoured directives, in `ssh -G`'s order.
    pub fn to_ssh_g(&self) -> String {
        let mut out = String::new();
        for key in Key::ALL {
            let Some(setting) = self.settings.get(key.name()) else {
                continue;
            };
            let shown = setting.ssh_g.as_ref().unwrap_or(&setting.values);
            // Known-hosts files share one line; every other value gets a line of its own.
            let lines = match key {
                Key::UserKnownHostsFile | Key::GlobalKnownHostsFile => vec![shown.join(" ")],
                _ => shown.clone(),
            };
            for line in lines {
                out.push_str(key.name());
                out.push(' ');
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

/// The system-wide configuration, read after the user's unless `-F` is given.
const SYSTEM_CONFIG: &str = "/etc/ssh/ssh_config";

/// Environment variables, by name (`${VAR}` in paths; `HOME` for `Include ~/…`).
pub type EnvLookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Resolve `query` as OpenSSH would, with `${VAR}` from this process's environment.
pub fn resolve(query: &Query, local: &Local) -> Result<Resolved> {
    resolve_with_env(query, local, &|name: &str| std::env::var(name).ok())
}

/// [`resolve`], with environment variables from `env` (the seam for tests and for
/// `Environment::var`). A variable that is set but empty expands to nothing, as in OpenSSH.
pub fn resolve_with_env(query: &Query, local: &Local, env: &EnvLookup) -> Result<Resolved> {
    resolve_with_system_config(query, local, env, Path::new(SYSTEM_CONFIG))
}

/// Every `Host` pattern of the configuration `choice` names, in the order read, `Include`d files
/// with it (for completing aliases: the caller keeps the ones without wildcards).
pub fn host_patterns(choice: ConfigChoice, local: &Local) -> Result<Vec<String>> {
    let env = |name: &str| std::env::var(name).ok();
    let mut reader = Reader::new("", local, &env, Path::new(SYSTEM_CONFIG));
    reader.read_all(choice)?;
    Ok(reader.host_patterns)
}

/// [`resolve_with_env`], with the system-wide configuration at `system_config` (so tests need not
/// depend on the machine's `/etc/ssh`).
fn resolve_with_system_config(query: &Query, local: &Local, env: &EnvLookup, system_config: &Path) -> Result<Resolved> {
    if query.host.is_empty() {
        return Err(Error::usage(
            "the destination has no host name; give [user@]host[:port] or an ssh_config alias",
        ));
    }
    let mut reader = Reader::new(query.host, local, env, system_config);
    for directive in query.options {
        let line = format!("{}={}", directive.keyword, directive.value);
        let mut active = true;
        reader.line(&line, &directive.origin, Flags::COMMAND_LINE, 0, &mut active)?;
    }
    if let Some(user) = query.user {
        reader.set_first(Key::User, user.to_string(), &Origin::CommandLine, true);
    }
    if let Some(port) = query.port {
        if port == 0 {
            return Err(Error::usage("port 0 in the destination; give a port from 1 to 65535"));
        }
        reader.set_first(Key::Port, port.to_string(), &Origin::CommandLine, true);
    }
    // As ssh.c checks its arguments before reading any file; the user and host name finally used are
    // checked again, with where they came from, before any token is expanded (`Reader::finish`).
    check_name(NameKind::Host, query.host, "the destination").map_err(Error::usage)?;
    if let Some(user) = query.user {
        check_name(NameKind::User, user, "the destination").map_err(Error::usage)?;
    }
    if let Some(o) = reader.obtained.get(&Key::User) {
        check_name(NameKind::User, &o.values[0], "-o User").map_err(Error::usage)?;
    }

    reader.read_all(query.config)?;
    if let Some((value, origin)) = &reader.canonicalize
        && value != "no"
    {
        return Err(Error::usage(format!(
            "{}: CanonicalizeHostname {value} is not supported by sqltun; set the full name with HostName instead",
            place(origin, local)
        )));
    }
    let hostname = reader.hostname()?;
    if reader.want_final {
        tracing::debug!(host = %hostname, "Match final/canonical present: reading the configuration again");
        let origin = reader
            .obtained
            .get(&Key::HostName)
            .map_or(Origin::CommandLine, |o| o.origins[0].clone());
        reader
            .obtained
            .insert(Key::HostName, Obtained::one(hostname.clone(), &origin));
        reader.final_pass = true;
        reader.host = hostname.clone();
        reader.read_all(query.config)?;
    }
    reader.finish(hostname)
}

// ---------------------------------------------------------------------------------------------

/// Where a directive's value came from, for a message: `~/.ssh/config:3: User`, `-o User`, or for a
/// default, what it defaults to.
fn directive_place(origin: &Origin, local: &Local, keyword: &str) -> String {
    match origin {
        Origin::Default if keyword == "User" => "the local user name (the default User)".to_string(),
        Origin::Default => format!("the default {keyword}"),
        Origin::CommandLine => format!("-o {keyword}"),
        Origin::File { .. } => format!("{}: {keyword}", place(origin, local)),
    }
}

/// `path:line` for messages, with the home directory shown as `~`.
fn place(origin: &Origin, local: &Local) -> String {
    match origin {
        Origin::Default => "default".to_string(),
        Origin::CommandLine => "-o".to_string(),
        Origin::File { path, line } => format!("{}:{line}", display_path(path, local)),
    }
}

fn display_path(path: &Path, local: &Local) -> String {
    match path.strip_prefix(&local.home) {
        Ok(rest) if !local.home.as_os_str().is_empty() && local.home != Path::new("/") => {
            format!("~/{}", shown_path(rest))
        }
        _ => shown_path(path),
    }
}

/// The most characters of a value (a keyword, a pattern, a path…) a message quotes.
const MAX_QUOTED_CHARS: usize = 200;
/// The most characters of a file's path a message shows (real paths are far shorter).
const MAX_PATH_CHARS: usize = 500;

/// Text from a config file (or the command line) as a message may quote it: see [`crate::text::escaped`], cut
/// after [`MAX_QUOTED_CHARS`] characters.
fn shown(text: &str) -> String {
    crate::text::escaped(text, MAX_QUOTED_CHARS)
}

/// A path as a message shows it: see [`crate::text::escaped`].
fn shown_path(path: &Path) -> String {
    crate::text::escaped(&path.to_string_lossy(), MAX_PATH_CHARS)
}

#[cfg(test)]
pub(super) mod tests;
