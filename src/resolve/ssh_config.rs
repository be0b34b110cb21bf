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
//! | `proxycommand` | one string, `%h %n %p %r %%` expanded, each token one shell word ([`shell_word`]) |
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
//! The values copied from the reference OpenSSH (default algorithm lists, Debian's 300 s
//! `ServerAliveInterval` under `BatchMode yes`) are OpenSSH 9.2p1 Debian-2+deb12u10's.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::resolve::dest::{NameKind, check_name};
use crate::resolve::url::percent_decode_utf8;
use crate::text::shell_word;

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
    /// `-o KEY=VALUE`, in order.
    pub options: &'a [(String, String)],
    pub config: ConfigChoice<'a>,
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

impl Local {
    /// The facts of this process, from the same sources OpenSSH uses where that needs no `unsafe`:
    /// the uid of `/proc/self`, its `/etc/passwd` entry (falling back to `$USER`/`$HOME`), and
    /// `/proc/sys/kernel/hostname`; `id` and `uname` where `/proc` is missing.
    pub fn from_system() -> Result<Local> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let uid = process_uid().ok_or_else(|| Error::internal("cannot determine the local user id"))?;
        let (user, home) = match passwd_by_uid(uid) {
            Some(entry) => entry,
            None => {
                let user = var("USER").or_else(|| var("LOGNAME"));
                let home = var("HOME").map(PathBuf::from);
                match (user, home) {
                    (Some(user), Some(home)) => (user, home),
                    _ => {
                        return Err(Error::internal(format!(
                            "uid {uid} has no /etc/passwd entry and $USER or $HOME is unset; set both"
                        )));
                    }
                }
            }
        };
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| command_output("uname", &["-n"]))
            .ok_or_else(|| Error::internal("cannot determine the local host name"))?;
        Ok(Local {
            user,
            home,
            hostname,
            uid,
        })
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
    for (key, value) in query.options {
        let line = format!("{key}={value}");
        let mut active = true;
        reader.line(&line, &Origin::CommandLine, Flags::COMMAND_LINE, 0, &mut active)?;
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
// Directives

/// The directives sqltun honours, in `ssh -G`'s output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    User,
    HostName,
    Port,
    BatchMode,
    Compression,
    HashKnownHosts,
    IdentitiesOnly,
    KbdInteractiveAuthentication,
    PasswordAuthentication,
    PubkeyAuthentication,
    StrictHostKeyChecking,
    NumberOfPasswordPrompts,
    ServerAliveCountMax,
    ServerAliveInterval,
    Ciphers,
    HostKeyAlgorithms,
    HostKeyAlias,
    IdentityAgent,
    KexAlgorithms,
    Macs,
    PreferredAuthentications,
    IdentityFile,
    CertificateFile,
    GlobalKnownHostsFile,
    UserKnownHostsFile,
    ConnectTimeout,
    ProxyCommand,
    ProxyJump,
}

impl Key {
    const ALL: [Key; 28] = [
        Key::User,
        Key::HostName,
        Key::Port,
        Key::BatchMode,
        Key::Compression,
        Key::HashKnownHosts,
        Key::IdentitiesOnly,
        Key::KbdInteractiveAuthentication,
        Key::PasswordAuthentication,
        Key::PubkeyAuthentication,
        Key::StrictHostKeyChecking,
        Key::NumberOfPasswordPrompts,
        Key::ServerAliveCountMax,
        Key::ServerAliveInterval,
        Key::Ciphers,
        Key::HostKeyAlgorithms,
        Key::HostKeyAlias,
        Key::IdentityAgent,
        Key::KexAlgorithms,
        Key::Macs,
        Key::PreferredAuthentications,
        Key::IdentityFile,
        Key::CertificateFile,
        Key::GlobalKnownHostsFile,
        Key::UserKnownHostsFile,
        Key::ConnectTimeout,
        Key::ProxyCommand,
        Key::ProxyJump,
    ];

    /// The name `ssh -G` prints.
    fn name(self) -> &'static str {
        match self {
            Key::User => "user",
            Key::HostName => "hostname",
            Key::Port => "port",
            Key::BatchMode => "batchmode",
            Key::Compression => "compression",
            Key::HashKnownHosts => "hashknownhosts",
            Key::IdentitiesOnly => "identitiesonly",
            Key::KbdInteractiveAuthentication => "kbdinteractiveauthentication",
            Key::PasswordAuthentication => "passwordauthentication",
            Key::PubkeyAuthentication => "pubkeyauthentication",
            Key::StrictHostKeyChecking => "stricthostkeychecking",
            Key::NumberOfPasswordPrompts => "numberofpasswordprompts",
            Key::ServerAliveCountMax => "serveralivecountmax",
            Key::ServerAliveInterval => "serveraliveinterval",
            Key::Ciphers => "ciphers",
            Key::HostKeyAlgorithms => "hostkeyalgorithms",
            Key::HostKeyAlias => "hostkeyalias",
            Key::IdentityAgent => "identityagent",
            Key::KexAlgorithms => "kexalgorithms",
            Key::Macs => "macs",
            Key::PreferredAuthentications => "preferredauthentications",
            Key::IdentityFile => "identityfile",
            Key::CertificateFile => "certificatefile",
            Key::GlobalKnownHostsFile => "globalknownhostsfile",
            Key::UserKnownHostsFile => "userknownhostsfile",
            Key::ConnectTimeout => "connecttimeout",
            Key::ProxyCommand => "proxycommand",
            Key::ProxyJump => "proxyjump",
        }
    }
}

/// What a keyword is to sqltun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Honoured(Key),
    Host,
    Match,
    Include,
    IgnoreUnknown,
    CanonicalizeHostname,
    /// Known to OpenSSH, not acted on by sqltun: recorded when it applies.
    NotHonoured,
    /// Deprecated or unsupported in OpenSSH itself, which ignores it too.
    Obsolete,
}

/// Every keyword OpenSSH 9.2 (Debian) accepts, lowercase.
const KEYWORDS: &[(&str, Keyword)] = &[
    ("hostname", Keyword::Honoured(Key::HostName)),
    ("user", Keyword::Honoured(Key::User)),
    ("port", Keyword::Honoured(Key::Port)),
    ("identityfile", Keyword::Honoured(Key::IdentityFile)),
    ("identityfile2", Keyword::Honoured(Key::IdentityFile)),
    ("identitiesonly", Keyword::Honoured(Key::IdentitiesOnly)),
    ("identityagent", Keyword::Honoured(Key::IdentityAgent)),
    ("certificatefile", Keyword::Honoured(Key::CertificateFile)),
    ("proxyjump", Keyword::Honoured(Key::ProxyJump)),
    ("proxycommand", Keyword::Honoured(Key::ProxyCommand)),
    ("connecttimeout", Keyword::Honoured(Key::ConnectTimeout)),
    ("serveraliveinterval", Keyword::Honoured(Key::ServerAliveInterval)),
    // Debian's aliases for ServerAliveInterval.
    ("protocolkeepalives", Keyword::Honoured(Key::ServerAliveInterval)),
    ("setuptimeout", Keyword::Honoured(Key::ServerAliveInterval)),
    ("serveralivecountmax", Keyword::Honoured(Key::ServerAliveCountMax)),
    ("stricthostkeychecking", Keyword::Honoured(Key::StrictHostKeyChecking)),
    ("userknownhostsfile", Keyword::Honoured(Key::UserKnownHostsFile)),
    ("globalknownhostsfile", Keyword::Honoured(Key::GlobalKnownHostsFile)),
    ("hostkeyalias", Keyword::Honoured(Key::HostKeyAlias)),
    ("passwordauthentication", Keyword::Honoured(Key::PasswordAuthentication)),
    ("pubkeyauthentication", Keyword::Honoured(Key::PubkeyAuthentication)),
    ("dsaauthentication", Keyword::Honoured(Key::PubkeyAuthentication)),
    (
        "kbdinteractiveauthentication",
        Keyword::Honoured(Key::KbdInteractiveAuthentication),
    ),
    (
        "challengeresponseauthentication",
        Keyword::Honoured(Key::KbdInteractiveAuthentication),
    ),
    (
        "skeyauthentication",
        Keyword::Honoured(Key::KbdInteractiveAuthentication),
    ),
    (
        "tisauthentication",
        Keyword::Honoured(Key::KbdInteractiveAuthentication),
    ),
    (
        "preferredauthentications",
        Keyword::Honoured(Key::PreferredAuthentications),
    ),
    ("batchmode", Keyword::Honoured(Key::BatchMode)),
    ("ciphers", Keyword::Honoured(Key::Ciphers)),
    ("kexalgorithms", Keyword::Honoured(Key::KexAlgorithms)),
    ("hostkeyalgorithms", Keyword::Honoured(Key::HostKeyAlgorithms)),
    ("macs", Keyword::Honoured(Key::Macs)),
    ("compression", Keyword::Honoured(Key::Compression)),
    ("hashknownhosts", Keyword::Honoured(Key::HashKnownHosts)),
    (
        "numberofpasswordprompts",
        Keyword::Honoured(Key::NumberOfPasswordPrompts),
    ),
    ("host", Keyword::Host),
    ("match", Keyword::Match),
    ("include", Keyword::Include),
    ("ignoreunknown", Keyword::IgnoreUnknown),
    ("canonicalizehostname", Keyword::CanonicalizeHostname),
    ("addkeystoagent", Keyword::NotHonoured),
    ("addressfamily", Keyword::NotHonoured),
    ("bindaddress", Keyword::NotHonoured),
    ("bindinterface", Keyword::NotHonoured),
    ("canonicaldomains", Keyword::NotHonoured),
    ("canonicalizefallbacklocal", Keyword::NotHonoured),
    ("canonicalizemaxdots", Keyword::NotHonoured),
    ("canonicalizepermittedcnames", Keyword::NotHonoured),
    ("casignaturealgorithms", Keyword::NotHonoured),
    ("checkhostip", Keyword::NotHonoured),
    ("clearallforwardings", Keyword::NotHonoured),
    ("connectionattempts", Keyword::NotHonoured),
    ("controlmaster", Keyword::NotHonoured),
    ("controlpath", Keyword::NotHonoured),
    ("controlpersist", Keyword::NotHonoured),
    ("dynamicforward", Keyword::NotHonoured),
    ("enableescapecommandline", Keyword::NotHonoured),
    ("enablesshkeysign", Keyword::NotHonoured),
    ("escapechar", Keyword::NotHonoured),
    ("exitonforwardfailure", Keyword::NotHonoured),
    ("fingerprinthash", Keyword::NotHonoured),
    ("forkafterauthentication", Keyword::NotHonoured),
    ("forwardagent", Keyword::NotHonoured),
    ("forwardx11", Keyword::NotHonoured),
    ("forwardx11timeout", Keyword::NotHonoured),
    ("forwardx11trusted", Keyword::NotHonoured),
    ("gatewayports", Keyword::NotHonoured),
    ("gssapiauthentication", Keyword::NotHonoured),
    ("gssapiclientidentity", Keyword::NotHonoured),
    ("gssapidelegatecredentials", Keyword::NotHonoured),
    ("gssapikexalgorithms", Keyword::NotHonoured),
    ("gssapikeyexchange", Keyword::NotHonoured),
    ("gssapirenewalforcesrekey", Keyword::NotHonoured),
    ("gssapiserveridentity", Keyword::NotHonoured),
    ("gssapitrustdns", Keyword::NotHonoured),
    ("hostbasedacceptedalgorithms", Keyword::NotHonoured),
    ("hostbasedauthentication", Keyword::NotHonoured),
    ("hostbasedkeytypes", Keyword::NotHonoured),
    ("ipqos", Keyword::NotHonoured),
    ("kbdinteractivedevices", Keyword::NotHonoured),
    ("keepalive", Keyword::NotHonoured),
    ("knownhostscommand", Keyword::NotHonoured),
    ("localcommand", Keyword::NotHonoured),
    ("localforward", Keyword::NotHonoured),
    ("loglevel", Keyword::NotHonoured),
    ("logverbose", Keyword::NotHonoured),
    ("nohostauthenticationforlocalhost", Keyword::NotHonoured),
    ("permitlocalcommand", Keyword::NotHonoured),
    ("permitremoteopen", Keyword::NotHonoured),
    ("pkcs11provider", Keyword::NotHonoured),
    ("proxyusefdpass", Keyword::NotHonoured),
    ("pubkeyacceptedalgorithms", Keyword::NotHonoured),
    ("pubkeyacceptedkeytypes", Keyword::NotHonoured),
    ("rekeylimit", Keyword::NotHonoured),
    ("remotecommand", Keyword::NotHonoured),
    ("remoteforward", Keyword::NotHonoured),
    ("requesttty", Keyword::NotHonoured),
    ("requiredrsasize", Keyword::NotHonoured),
    ("revokedhostkeys", Keyword::NotHonoured),
    ("securitykeyprovider", Keyword::NotHonoured),
    ("sendenv", Keyword::NotHonoured),
    ("sessiontype", Keyword::NotHonoured),
    ("setenv", Keyword::NotHonoured),
    ("smartcarddevice", Keyword::NotHonoured),
    ("stdinnull", Keyword::NotHonoured),
    ("streamlocalbindmask", Keyword::NotHonoured),
    ("streamlocalbindunlink", Keyword::NotHonoured),
    ("syslogfacility", Keyword::NotHonoured),
    ("tcpkeepalive", Keyword::NotHonoured),
    ("tunnel", Keyword::NotHonoured),
    ("tunneldevice", Keyword::NotHonoured),
    ("updatehostkeys", Keyword::NotHonoured),
    ("verifyhostkeydns", Keyword::NotHonoured),
    ("visualhostkey", Keyword::NotHonoured),
    ("xauthlocation", Keyword::NotHonoured),
    ("afstokenpassing", Keyword::Obsolete),
    ("cipher", Keyword::Obsolete),
    ("compressionlevel", Keyword::Obsolete),
    ("fallbacktorsh", Keyword::Obsolete),
    ("globalknownhostsfile2", Keyword::Obsolete),
    ("kerberosauthentication", Keyword::Obsolete),
    ("kerberostgtpassing", Keyword::Obsolete),
    ("protocol", Keyword::Obsolete),
    ("rhostsauthentication", Keyword::Obsolete),
    ("rhostsrsaauthentication", Keyword::Obsolete),
    ("rsaauthentication", Keyword::Obsolete),
    ("useblacklistedkeys", Keyword::Obsolete),
    ("userknownhostsfile2", Keyword::Obsolete),
    ("useprivilegedport", Keyword::Obsolete),
    ("useroaming", Keyword::Obsolete),
    ("usersh", Keyword::Obsolete),
];

fn lookup_keyword(lowercase: &str) -> Option<Keyword> {
    KEYWORDS.iter().find(|(name, _)| *name == lowercase).map(|(_, kw)| *kw)
}

// ---------------------------------------------------------------------------------------------
// Reading

/// How a file (or `-o` line) is being read.
#[derive(Debug, Clone, Copy)]
struct Flags {
    /// A user configuration: relative `Include`s are under `~/.ssh` and `~` is allowed.
    user_config: bool,
    /// Inside an `Include` from a block that does not apply: nothing matches.
    never_match: bool,
    /// An `-o` directive.
    command_line: bool,
    /// Refuse files others can write (included files and `~/.ssh/config`).
    check_permissions: bool,
}

impl Flags {
    const COMMAND_LINE: Flags = Flags {
        user_config: true,
        never_match: false,
        command_line: true,
        check_permissions: false,
    };
}

/// Values obtained so far for one directive.
#[derive(Debug, Clone)]
struct Obtained {
    values: Vec<String>,
    origins: Vec<Origin>,
    /// Per value: read from a user configuration (or `-o`) rather than the system one. OpenSSH drops a
    /// repeated IdentityFile or CertificateFile only if both copies come from the same kind of file.
    user_config: Vec<bool>,
}

impl Obtained {
    fn one(value: String, origin: &Origin) -> Obtained {
        Obtained {
            values: vec![value],
            origins: vec![origin.clone()],
            user_config: vec![true],
        }
    }
}

/// One directive line, split: the keyword as written, the text after it, its arguments, and where it is.
#[derive(Debug, Clone, Copy)]
struct DirectiveLine<'l> {
    keyword: &'l str,
    rest: &'l str,
    args: &'l [String],
    origin: &'l Origin,
}

/// Include nesting limit (OpenSSH's READCONF_MAX_DEPTH).
const MAX_INCLUDE_DEPTH: usize = 16;
/// OpenSSH's SSH_MAX_IDENTITY_FILES and SSH_MAX_CERTIFICATE_FILES.
const MAX_KEY_FILES: usize = 100;
/// OpenSSH's SSH_MAX_HOSTS_FILES.
const MAX_HOSTS_FILES: usize = 32;
/// The largest configuration file read. OpenSSH has no bound; real files are kilobytes, and this
/// stops `Include /dev/zero`-like mistakes (and a copy of a log file) long before memory runs out.
const MAX_FILE_BYTES: u64 = 4 << 20;
/// The most read in one pass over the configuration, across every `Include`.
const MAX_PASS_BYTES: u64 = 16 << 20;
/// The most files `Include` may read in one pass: a few `Include` lines that name the same files
/// again, 16 levels deep, would otherwise read billions of them.
const MAX_PASS_FILES: usize = 1024;
/// What some Windows editors put at the start of a UTF-8 file.
const BYTE_ORDER_MARK: &[u8] = b"\xef\xbb\xbf";

const WHITESPACE: [char; 4] = [' ', '\t', '\r', '\n'];

struct Reader<'a> {
    local: &'a Local,
    env: &'a EnvLookup<'a>,
    system_config: &'a Path,
    /// The host as given: `%n`, `Match originalhost`.
    host_arg: &'a str,
    /// What `Host` patterns match: the host as given, or the final host name in the final pass.
    host: String,
    final_pass: bool,
    want_final: bool,
    obtained: BTreeMap<Key, Obtained>,
    ignore_unknown: Option<String>,
    canonicalize: Option<(String, Origin)>,
    unsupported: Vec<(String, Origin)>,
    /// Files included in this pass, and bytes read (see [`MAX_PASS_FILES`], [`MAX_PASS_BYTES`]).
    pass_files: usize,
    pass_bytes: u64,
    /// Every `Host` pattern read, in order, applying or not (for [`host_patterns`]).
    host_patterns: Vec<String>,
}

impl<'a> Reader<'a> {
    fn new(host_arg: &'a str, local: &'a Local, env: &'a EnvLookup<'a>, system_config: &'a Path) -> Self {
        Reader {
            local,
            env,
            system_config,
            host_arg,
            host: host_arg.to_string(),
            final_pass: false,
            want_final: false,
            obtained: BTreeMap::new(),
            ignore_unknown: None,
            canonicalize: None,
            unsupported: Vec::new(),
            pass_files: 0,
            pass_bytes: 0,
            host_patterns: Vec::new(),
        }
    }

    fn first(&self, key: Key) -> Option<&str> {
        self.obtained
            .get(&key)
            .and_then(|o| o.values.first())
            .map(String::as_str)
    }

    fn err(&self, origin: &Origin, message: impl fmt::Display) -> Error {
        Error::usage(format!("{}: {message}", place(origin, self.local)))
    }

    /// Sets `key` unless it already has a value (OpenSSH: the first obtained value wins).
    fn set_first(&mut self, key: Key, value: String, origin: &Origin, active: bool) {
        if active && !self.obtained.contains_key(&key) {
            self.obtained.insert(key, Obtained::one(value, origin));
        }
    }

    /// Reads the configuration files once (one pass).
    fn read_all(&mut self, choice: ConfigChoice) -> Result<()> {
        self.pass_files = 0;
        self.pass_bytes = 0;
        match choice {
            ConfigChoice::None => Ok(()),
            ConfigChoice::File(path) => {
                let flags = Flags {
                    user_config: true,
                    never_match: false,
                    command_line: false,
                    check_permissions: false,
                };
                let mut active = true;
                if !self.file(path, flags, 0, &mut active, None)? {
                    return Err(Error::usage(format!(
                        "cannot read ssh config file {}: no such file; check the -F path",
                        shown_path(path)
                    )));
                }
                Ok(())
            }
            ConfigChoice::Default => {
                let user = self.local.home.join(".ssh").join("config");
                let flags = Flags {
                    user_config: true,
                    never_match: false,
                    command_line: false,
                    check_permissions: true,
                };
                let mut active = true;
                self.file(&user, flags, 0, &mut active, None)?;
                let system = self.system_config;
                let flags = Flags {
                    user_config: false,
                    never_match: false,
                    command_line: false,
                    check_permissions: false,
                };
                let mut active = true;
                self.file(system, flags, 0, &mut active, None)?;
                Ok(())
            }
        }
    }

    /// Reads one file; `Ok(false)` if it does not exist. `include` is the `Include` line that named
    /// it (`None` for `-F` and the default files).
    fn file(
        &mut self,
        path: &Path,
        flags: Flags,
        depth: usize,
        active: &mut bool,
        include: Option<&Origin>,
    ) -> Result<bool> {
        // What is wrong with the file, by its name and, for an Include, by the including line.
        let refuse = |problem: &str| match include {
            Some(site) => self.err(site, format!("Include {}: {problem}", display_path(path, self.local))),
            None => Error::usage(format!("{}: {problem}", display_path(path, self.local))),
        };
        let check = if flags.check_permissions {
            Some(self.local.uid)
        } else {
            None
        };
        let limit = MAX_FILE_BYTES.min(MAX_PASS_BYTES - self.pass_bytes);
        let bytes = match read_config_file(path, limit, include.is_some(), check) {
            Ok(Contents::Missing) => return Ok(false),
            Ok(Contents::Skipped) => {
                tracing::debug!(path = %path.display(), "ssh config: skipping directory");
                return Ok(true);
            }
            Ok(Contents::Bytes(bytes)) => bytes,
            Err(problem) => return Err(refuse(&problem)),
        };
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > MAX_FILE_BYTES {
            return Err(refuse(&format!(
                "larger than {} MiB; is this really an ssh config file?",
                MAX_FILE_BYTES >> 20
            )));
        }
        if size > limit {
            return Err(refuse(&format!(
                "the configuration read so far (with every Include) exceeds {} MiB; do Include lines read the same files over and over?",
                MAX_PASS_BYTES >> 20
            )));
        }
        self.pass_bytes += size;
        tracing::trace!(path = %path.display(), depth, final_pass = self.final_pass, "reading ssh config");
        for (index, bytes) in bytes.split(|&b| b == b'\n').enumerate() {
            let origin = Origin::File {
                path: path.to_path_buf(),
                line: index + 1,
            };
            if index == 0 && bytes.starts_with(BYTE_ORDER_MARK) {
                return Err(self.err(
                    &origin,
                    "the file starts with a UTF-8 byte-order mark (the invisible bytes EF BB BF some Windows editors add), which OpenSSH rejects too; save the file as UTF-8 without a BOM",
                ));
            }
            let line = match std::str::from_utf8(bytes) {
                Ok(line) => line,
                // A comment in another encoding is harmless; a value is not guessed at.
                Err(_) if String::from_utf8_lossy(bytes).trim_start().starts_with('#') => continue,
                Err(_) => {
                    return Err(self.err(&origin, "not valid UTF-8; save the file as UTF-8"));
                }
            };
            self.line(line, &origin, flags, depth, active)?;
        }
        Ok(true)
    }

    /// Processes one line (OpenSSH's process_config_line).
    fn line(&mut self, raw: &str, origin: &Origin, flags: Flags, depth: usize, active: &mut bool) -> Result<()> {
        let text = raw.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
        let Some((keyword, rest)) = split_keyword(text).map_err(|()| self.err(origin, INVALID_QUOTES))? else {
            return Ok(());
        };
        if rest.is_empty() {
            return Err(self.err(origin, format!("{} needs a value", shown(&keyword))));
        }
        let lowercase = keyword.to_ascii_lowercase();
        let args = argv_split(rest).map_err(|()| self.err(origin, INVALID_QUOTES))?;
        let Some(kind) = lookup_keyword(&lowercase) else {
            if let Some(ignored) = &self.ignore_unknown
                && match_pattern_list(&lowercase, ignored, true) == Some(true)
            {
                tracing::debug!(%origin, keyword = %shown(&keyword), "ignoring unknown ssh_config directive (IgnoreUnknown)");
                return Ok(());
            }
            return Err(self.err(
                origin,
                format!(
                    "unknown ssh_config directive '{}' (OpenSSH rejects it too); check the spelling, or list it in an IgnoreUnknown line before this one",
                    shown(&keyword)
                ),
            ));
        };
        // A value's own check speaks first (`bad port '\x1b[2J22'` says more than "a control
        // character"); the structural keywords are checked before they act on their values.
        let control = |reader: &Self| match kind {
            Keyword::Honoured(Key::ProxyCommand | Key::ProxyJump) => reader.refuse_controls(&keyword, [rest], origin),
            _ => reader.refuse_controls(&keyword, args.iter().map(String::as_str), origin),
        };
        if !matches!(kind, Keyword::Honoured(_)) {
            control(self)?;
        }
        match kind {
            Keyword::Obsolete => {
                tracing::debug!(%origin, keyword = %shown(&keyword), "ignoring obsolete ssh_config directive (as OpenSSH does)");
                Ok(())
            }
            Keyword::NotHonoured => {
                if *active && !self.unsupported.iter().any(|(k, o)| *k == lowercase && o == origin) {
                    self.unsupported.push((lowercase, origin.clone()));
                }
                Ok(())
            }
            Keyword::Host => {
                if flags.command_line {
                    return Err(self.err(origin, "Host cannot be given with -o; use it in a config file"));
                }
                self.host_line(&args, origin, flags, active)
            }
            Keyword::Match => {
                if flags.command_line {
                    return Err(self.err(origin, "Match cannot be given with -o; use it in a config file"));
                }
                let matched = self.match_line(rest, origin, flags)?;
                *active = matched && !flags.never_match;
                Ok(())
            }
            Keyword::Include => {
                if flags.command_line {
                    return Err(self.err(origin, "Include cannot be given with -o; use -F FILE instead"));
                }
                self.include(&args, origin, flags, depth, active)
            }
            Keyword::IgnoreUnknown => {
                let value = one_arg(self, &keyword, &args, origin)?;
                if *active && self.ignore_unknown.is_none() {
                    self.ignore_unknown = Some(value.to_string());
                }
                Ok(())
            }
            Keyword::CanonicalizeHostname => {
                let value = one_arg(self, &keyword, &args, origin)?;
                let normal = match value.to_ascii_lowercase().as_str() {
                    "yes" | "true" => "yes",
                    "no" | "false" => "no",
                    "always" => "always",
                    _ => {
                        return Err(self.err(
                            origin,
                            format!("{keyword} must be yes, no or always, not '{}'", shown(value)),
                        ));
                    }
                };
                if *active && self.canonicalize.is_none() {
                    self.canonicalize = Some((normal.to_string(), origin.clone()));
                }
                Ok(())
            }
            Keyword::Honoured(key) => {
                let line = DirectiveLine {
                    keyword: &keyword,
                    rest,
                    args: &args,
                    origin,
                };
                self.directive(key, line, *active, flags.user_config)?;
                control(self)
            }
        }
    }

    /// Refuses a control character (other than tab) in `values`: no host name, user, path or
    /// pattern has one, and a NUL would silently cut the value short in OpenSSH.
    fn refuse_controls<'v>(
        &self,
        keyword: &str,
        values: impl IntoIterator<Item = &'v str>,
        origin: &Origin,
    ) -> Result<()> {
        for value in values {
            if let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') {
                return Err(self.err(
                    origin,
                    format!(
                        "{keyword}: '{}' contains the control character {}; remove it (it may be invisible in an editor)",
                        shown(value),
                        shown(c.encode_utf8(&mut [0; 4]))
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A `Host` line: whitespace-separated patterns, `!` negates and vetoes the whole line.
    fn host_line(&mut self, args: &[String], origin: &Origin, flags: Flags, active: &mut bool) -> Result<()> {
        *active = false;
        if args.is_empty() {
            return Err(self.err(origin, "Host needs at least one pattern"));
        }
        self.host_patterns.extend(args.iter().cloned());
        for arg in args {
            if arg.is_empty() {
                return Err(self.err(origin, "Host has an empty pattern; remove the empty quotes"));
            }
            if flags.never_match {
                break;
            }
            let (negated, pattern) = match arg.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, arg.as_str()),
            };
            if match_pattern(&self.host, pattern) {
                if negated {
                    tracing::trace!(%origin, pattern = %arg, "Host block skipped: negated pattern matched");
                    *active = false;
                    break;
                }
                *active = true;
            }
        }
        Ok(())
    }

    /// Evaluates a `Match` line (OpenSSH's match_cfg_line). The criteria are split like OpenSSH's
    /// strdelim: double quotes group, `=` separates.
    fn match_line(&mut self, rest: &str, origin: &Origin, flags: Flags) -> Result<bool> {
        let host = if self.final_pass {
            self.first(Key::HostName).unwrap_or(&self.host).to_string()
        } else {
            match self.obtained.get(&Key::HostName) {
                Some(o) => expand_hostname(&o.values[0], self.host_arg)
                    .map_err(|e| self.err(&o.origins[0], format!("HostName: {e}")))?,
                None => self.host_arg.to_string(),
            }
        };
        let remote_user = self.first(Key::User).unwrap_or(&self.local.user).to_string();
        let mut result = true;
        let mut exec_at: Option<bool> = None;
        let mut attributes = 0;
        let mut saw_all = false;
        let mut cursor = rest;
        loop {
            let (token, next) = strdelim(cursor).map_err(|()| self.err(origin, INVALID_QUOTES))?;
            cursor = next;
            if token.is_empty() {
                break;
            }
            if token.starts_with('#') {
                break;
            }
            let (negate, attribute) = match token.strip_prefix('!') {
                Some(a) => (true, a),
                None => (false, token.as_str()),
            };
            let attribute = attribute.to_ascii_lowercase();
            if attribute == "all" {
                let (after, _) = strdelim(cursor).map_err(|()| self.err(origin, INVALID_QUOTES))?;
                if attributes > 1 || (!after.is_empty() && !after.starts_with('#')) {
                    return Err(self.err(origin, "Match all cannot be combined with other criteria"));
                }
                if result {
                    result = !negate;
                }
                saw_all = true;
                break;
            }
            attributes += 1;
            if attribute == "canonical" || attribute == "final" {
                if attribute == "final" {
                    self.want_final = true;
                }
                if self.final_pass == negate {
                    result = false;
                }
                continue;
            }
            let (arg, next) = strdelim(cursor).map_err(|()| self.err(origin, INVALID_QUOTES))?;
            cursor = next;
            if arg.is_empty() || arg.starts_with('#') {
                return Err(self.err(origin, format!("Match {} needs a pattern", shown(&attribute))));
            }
            let matched = match attribute.as_str() {
                "host" => match_hostname(&host, &arg),
                "originalhost" => match_hostname(self.host_arg, &arg),
                "user" => match_pattern_list(&remote_user, &arg, false) == Some(true),
                "localuser" => match_pattern_list(&self.local.user, &arg, false) == Some(true),
                "exec" => {
                    // Decided after the other criteria: see the module docs.
                    if result {
                        exec_at = Some(negate);
                    }
                    continue;
                }
                other => {
                    return Err(self.err(
                        origin,
                        format!(
                            "Match {} is not a criterion OpenSSH 9.2 or sqltun knows; use all, canonical, final, host, originalhost, user or localuser",
                            shown(other)
                        ),
                    ));
                }
            };
            if matched == negate {
                result = false;
            }
        }
        if attributes == 0 && !saw_all {
            return Err(self.err(origin, "Match needs at least one criterion"));
        }
        if exec_at.is_some() && result && !flags.never_match {
            return Err(self.err(
                origin,
                "Match exec is not supported by sqltun (it would run a command to decide whether this block applies); use Host or Match host/user blocks, or -F a config without it",
            ));
        }
        if exec_at.is_some() {
            tracing::debug!(%origin, "Match exec not run: the other criteria already rule the block out");
        }
        Ok(result)
    }

    /// `Include`: globs, relative to `~/.ssh` (user configs) or `/etc/ssh` (system config).
    fn include(
        &mut self,
        args: &[String],
        origin: &Origin,
        flags: Flags,
        depth: usize,
        active: &mut bool,
    ) -> Result<()> {
        if args.is_empty() {
            return Err(self.err(origin, "Include needs a file name"));
        }
        for arg in args {
            if arg.is_empty() {
                return Err(self.err(origin, "Include has an empty file name; remove the empty quotes"));
            }
            if arg.starts_with('~') && !flags.user_config {
                return Err(self.err(
                    origin,
                    format!(
                        "Include {}: '~' is not allowed in the system config; use an absolute path",
                        shown(arg)
                    ),
                ));
            }
            let pattern = if arg.starts_with('/') || arg.starts_with('~') {
                arg.clone()
            } else if flags.user_config {
                format!("~/.ssh/{arg}")
            } else {
                format!("/etc/ssh/{arg}")
            };
            let pattern = self.include_tilde(&pattern).map_err(|e| self.err(origin, e))?;
            let files = glob(&pattern);
            if files.is_empty() {
                tracing::debug!(%origin, pattern = %pattern, "Include matched no files");
                continue;
            }
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(self.err(
                    origin,
                    format!("Include nests more than {MAX_INCLUDE_DEPTH} levels deep; does a file include itself?"),
                ));
            }
            let outer = *active;
            for file in files {
                self.pass_files += 1;
                if self.pass_files > MAX_PASS_FILES {
                    return Err(self.err(
                        origin,
                        format!(
                            "Include {}: more than {MAX_PASS_FILES} files included in all; do Include lines read the same files over and over?",
                            shown(arg)
                        ),
                    ));
                }
                let nested = Flags {
                    never_match: flags.never_match || !outer,
                    check_permissions: true,
                    command_line: false,
                    user_config: flags.user_config,
                };
                tracing::trace!(%origin, file = %file.display(), "including");
                self.file(&file, nested, depth + 1, active, Some(origin))?;
                // A Host or Match inside the included file does not change the including block.
                *active = outer;
            }
        }
        Ok(())
    }

    /// `~` in an Include pattern, as glob(3)'s GLOB_TILDE expands it: `$HOME` first.
    fn include_tilde(&self, pattern: &str) -> std::result::Result<String, String> {
        let Some(rest) = pattern.strip_prefix('~') else {
            return Ok(pattern.to_string());
        };
        let (name, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let home = if name.is_empty() {
            match (self.env)("HOME").filter(|h| !h.is_empty()) {
                Some(home) => PathBuf::from(home),
                None => self.local.home.clone(),
            }
        } else {
            home_of(name, self.local)?
        };
        Ok(format!("{}{tail}", home.to_string_lossy().trim_end_matches('/')))
    }

    /// An honoured directive: validated always, applied when `active` and not yet set (or, for the
    /// accumulating ones, not yet present from the same kind of file).
    fn directive(&mut self, key: Key, line: DirectiveLine, active: bool, user_config: bool) -> Result<()> {
        let DirectiveLine {
            keyword,
            rest,
            args,
            origin,
        } = line;
        match key {
            Key::HostName | Key::User | Key::HostKeyAlias | Key::PreferredAuthentications => {
                let value = one_arg(self, keyword, args, origin)?.to_string();
                self.set_first(key, value, origin, active);
            }
            Key::Port => {
                let value = one_arg(self, keyword, args, origin)?;
                let port = parse_port(value).ok_or_else(|| {
                    self.err(
                        origin,
                        format!("bad port '{}'; give a number from 1 to 65535", shown(value)),
                    )
                })?;
                self.set_first(key, port.to_string(), origin, active);
            }
            Key::BatchMode
            | Key::HashKnownHosts
            | Key::IdentitiesOnly
            | Key::KbdInteractiveAuthentication
            | Key::PasswordAuthentication => {
                let value = one_arg(self, keyword, args, origin)?;
                let flag = match value.to_ascii_lowercase().as_str() {
                    "yes" | "true" => "yes",
                    "no" | "false" => "no",
                    _ => return Err(self.err(origin, format!("{keyword} must be yes or no, not '{}'", shown(value)))),
                };
                self.set_first(key, flag.to_string(), origin, active);
            }
            Key::Compression => {
                let value = one_arg(self, keyword, args, origin)?;
                let flag = match value.to_ascii_lowercase().as_str() {
                    "yes" => "yes",
                    "no" => "no",
                    _ => return Err(self.err(origin, format!("{keyword} must be yes or no, not '{}'", shown(value)))),
                };
                self.set_first(key, flag.to_string(), origin, active);
            }
            Key::PubkeyAuthentication => {
                let value = one_arg(self, keyword, args, origin)?;
                let normal = match value.to_ascii_lowercase().as_str() {
                    "yes" | "true" => "true",
                    "no" | "false" => "false",
                    "unbound" => "unbound",
                    "host-bound" => "host-bound",
                    _ => {
                        return Err(self.err(
                            origin,
                            format!(
                                "{keyword} must be yes, no, unbound or host-bound, not '{}'",
                                shown(value)
                            ),
                        ));
                    }
                };
                self.set_first(key, normal.to_string(), origin, active);
            }
            Key::StrictHostKeyChecking => {
                let value = one_arg(self, keyword, args, origin)?;
                let normal = match value.to_ascii_lowercase().as_str() {
                    "yes" | "true" => "true",
                    "no" | "false" | "off" => "false",
                    "ask" => "ask",
                    "accept-new" => "accept-new",
                    _ => {
                        return Err(self.err(
                            origin,
                            format!(
                                "{keyword} must be yes, accept-new, no, off or ask, not '{}'",
                                shown(value)
                            ),
                        ));
                    }
                };
                self.set_first(key, normal.to_string(), origin, active);
            }
            Key::ConnectTimeout | Key::ServerAliveInterval => {
                let value = one_arg(self, keyword, args, origin)?;
                // `none` leaves the directive unset, so a later line may still set it.
                if value == "none" {
                    return Ok(());
                }
                let seconds = parse_time(value).ok_or_else(|| {
                    self.err(
                        origin,
                        format!(
                            "{keyword}: bad time '{}'; give seconds, or a time like 30s, 5m or 1h",
                            shown(value)
                        ),
                    )
                })?;
                self.set_first(key, seconds.to_string(), origin, active);
            }
            Key::ServerAliveCountMax | Key::NumberOfPasswordPrompts => {
                let value = one_arg(self, keyword, args, origin)?;
                let n = parse_int(value).map_err(|why| {
                    self.err(
                        origin,
                        format!("{keyword}: '{}' is {why}; give a whole number, 0 or more", shown(value)),
                    )
                })?;
                self.set_first(key, n.to_string(), origin, active);
            }
            Key::IdentityFile | Key::CertificateFile => {
                let value = one_arg(self, keyword, args, origin)?.to_string();
                if active {
                    let entry = self.obtained.entry(key).or_insert_with(|| Obtained {
                        values: Vec::new(),
                        origins: Vec::new(),
                        user_config: Vec::new(),
                    });
                    let repeated = entry
                        .values
                        .iter()
                        .zip(&entry.user_config)
                        .any(|(v, &u)| *v == value && u == user_config);
                    if repeated {
                        return Ok(());
                    }
                    if entry.values.len() >= MAX_KEY_FILES {
                        return Err(self.err(origin, format!("more than {MAX_KEY_FILES} {keyword} entries")));
                    }
                    entry.values.push(value);
                    entry.origins.push(origin.clone());
                    entry.user_config.push(user_config);
                }
            }
            Key::IdentityAgent => {
                let value = one_arg(self, keyword, args, origin)?.to_string();
                // OpenSSH checks the variables when it reads the line, applying or not.
                expand(&value, None, Some(self.env)).map_err(|e| self.err(origin, format!("{keyword}: {e}")))?;
                if let Some(name) = value.strip_prefix('$')
                    && !name.starts_with('{')
                    && !valid_env_name(name)
                {
                    return Err(self.err(
                        origin,
                        format!(
                            "{keyword}: '{}' is not a valid environment variable name",
                            shown(&value)
                        ),
                    ));
                }
                self.set_first(key, value, origin, active);
            }
            Key::UserKnownHostsFile | Key::GlobalKnownHostsFile => {
                if args.is_empty() {
                    return Err(self.err(origin, format!("{keyword} needs a file name")));
                }
                for (i, arg) in args.iter().enumerate() {
                    if arg.is_empty() {
                        return Err(self.err(
                            origin,
                            format!("{keyword} has an empty file name; remove the empty quotes"),
                        ));
                    }
                    if arg.eq_ignore_ascii_case("none") && (i > 0 || args.len() > 1) {
                        return Err(self.err(origin, format!("{keyword}: none must stand alone")));
                    }
                }
                if args.len() > MAX_HOSTS_FILES {
                    return Err(self.err(origin, format!("{keyword}: more than {MAX_HOSTS_FILES} files")));
                }
                if active && !self.obtained.contains_key(&key) {
                    let values: Vec<String> = if args[0].eq_ignore_ascii_case("none") {
                        vec!["none".to_string()]
                    } else {
                        args.to_vec()
                    };
                    let origins = vec![origin.clone(); values.len()];
                    let user_config = vec![true; values.len()];
                    self.obtained.insert(
                        key,
                        Obtained {
                            values,
                            origins,
                            user_config,
                        },
                    );
                }
            }
            Key::ProxyCommand => {
                let command = rest.trim_start_matches([' ', '\t', '\r', '\n', '=']).to_string();
                // ProxyJump, when set first, also sets ProxyCommand (to none), so this does nothing.
                self.set_first(key, command, origin, active);
            }
            Key::ProxyJump => {
                let spec = rest.trim_start_matches([' ', '\t', '\r', '\n', '=']);
                let apply = active
                    && !self.obtained.contains_key(&Key::ProxyCommand)
                    && !self.obtained.contains_key(&Key::ProxyJump);
                let normal = parse_jump(spec).map_err(|why| {
                    self.err(
                        origin,
                        format!(
                            "ProxyJump '{}': {why}; write [user@]host[:port] hops separated by commas",
                            shown(spec)
                        ),
                    )
                })?;
                if apply {
                    let none = normal == "none";
                    self.set_first(key, normal, origin, true);
                    if !none {
                        self.set_first(Key::ProxyCommand, "none".to_string(), origin, true);
                    }
                }
            }
            Key::Ciphers | Key::Macs | Key::KexAlgorithms | Key::HostKeyAlgorithms => {
                let value = one_arg(self, keyword, args, origin)?.to_string();
                validate_algorithms(key, &value).map_err(|e| self.err(origin, format!("{keyword}: {e}")))?;
                self.set_first(key, value, origin, active);
            }
        }
        Ok(())
    }

    /// The host name to connect to: `HostName` (with `%h` and `%%` expanded) or the host as given;
    /// lower-cased unless it looks like an address.
    fn hostname(&self) -> Result<String> {
        let name = match self.obtained.get(&Key::HostName) {
            Some(o) if !self.final_pass => expand_hostname(&o.values[0], self.host_arg)
                .map_err(|e| self.err(&o.origins[0], format!("HostName: {e}")))?,
            Some(o) => o.values[0].clone(),
            None => self.host_arg.to_string(),
        };
        Ok(if looks_like_address(&name) {
            name
        } else {
            name.to_ascii_lowercase()
        })
    }

    /// Fills defaults, expands tokens and assembles algorithm lists.
    fn finish(self, hostname: String) -> Result<Resolved> {
        let local = self.local;
        let env = self.env;
        let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
        let obtained = &self.obtained;
        let single = |key: Key| obtained.get(&key).map(|o| (o.values[0].clone(), o.origins[0].clone()));
        // Several values from one line or several; the origin is the first value's.
        let list = |key: Key| obtained.get(&key).map(|o| (o.values.clone(), o.origins[0].clone()));

        let hostname_origin = single(Key::HostName).map_or(Origin::CommandLine, |(_, o)| o);
        let (user, user_origin) = single(Key::User).unwrap_or((local.user.clone(), Origin::Default));
        let (port, port_origin) = single(Key::Port).unwrap_or(("22".to_string(), Origin::Default));
        // Before any of them is expanded into a command or a path, or dialled.
        check_name(NameKind::User, &user, &directive_place(&user_origin, local, "User")).map_err(Error::usage)?;
        check_name(
            NameKind::Host,
            &hostname,
            &directive_place(&hostname_origin, local, "HostName"),
        )
        .map_err(Error::usage)?;
        let alias = single(Key::HostKeyAlias).map(|(v, o)| (v.to_ascii_lowercase(), o));

        let short_host = local.hostname.split('.').next().unwrap_or_default().to_string();
        let uid = local.uid.to_string();
        let home = local.home.to_string_lossy().into_owned();
        let key_alias = alias.as_ref().map_or(self.host_arg.to_string(), |(v, _)| v.clone());
        let connection_hash = sha1_hex(&format!("{}{hostname}{port}{user}", local.hostname));
        // The tokens of IdentityFile, CertificateFile, UserKnownHostsFile and IdentityAgent.
        let file_tokens: [(char, &str); 11] = [
            ('C', &connection_hash),
            ('L', &short_host),
            ('i', &uid),
            ('k', &key_alias),
            ('l', &local.hostname),
            ('n', self.host_arg),
            ('p', &port),
            ('d', &home),
            ('h', &hostname),
            ('r', &user),
            ('u', &local.user),
        ];
        // The tokens of ProxyCommand (each one shell word, `sh -c` runs it) and ProxyJump (a list of
        // destinations, parsed and checked again).
        let proxy_tokens: [(char, &str); 4] = [('h', &hostname), ('n', self.host_arg), ('p', &port), ('r', &user)];
        let quoted: Vec<(char, String)> = proxy_tokens.iter().map(|(t, v)| (*t, shell_word(v))).collect();
        let command_tokens: Vec<(char, &str)> = quoted.iter().map(|(t, v)| (*t, v.as_str())).collect();
        let expand_path = |value: &str, origin: &Origin, keyword: &str| -> Result<String> {
            let tilde = expand_tilde(value, local).map_err(|e| self.err(origin, format!("{keyword}: {e}")))?;
            expand(&tilde, Some(&file_tokens), Some(env)).map_err(|e| self.err(origin, format!("{keyword}: {e}")))
        };
        let mut put = |key: Key, values: Vec<String>, origin: Origin| {
            settings.insert(key.name().to_string(), Setting::new(values, origin));
        };

        put(Key::User, vec![user.clone()], user_origin);
        put(Key::HostName, vec![hostname.clone()], hostname_origin);
        put(Key::Port, vec![port.clone()], port_origin);
        let defaults: [(Key, &str); 11] = [
            (Key::BatchMode, "no"),
            (Key::Compression, "no"),
            (Key::HashKnownHosts, "no"),
            (Key::IdentitiesOnly, "no"),
            (Key::KbdInteractiveAuthentication, "yes"),
            (Key::PasswordAuthentication, "yes"),
            (Key::PubkeyAuthentication, "true"),
            (Key::StrictHostKeyChecking, "ask"),
            (Key::NumberOfPasswordPrompts, "3"),
            (Key::ServerAliveCountMax, "3"),
            (Key::ConnectTimeout, "none"),
        ];
        for (key, default) in defaults {
            let (value, origin) = single(key).unwrap_or((default.to_string(), Origin::Default));
            put(key, vec![value], origin);
        }
        let batch = single(Key::BatchMode).is_some_and(|(v, _)| v == "yes");
        // Debian's OpenSSH keeps batch sessions alive: 300 s unless set.
        let interval_default = if batch { "300" } else { "0" };
        let (value, origin) =
            single(Key::ServerAliveInterval).unwrap_or((interval_default.to_string(), Origin::Default));
        put(Key::ServerAliveInterval, vec![value], origin);
        if let Some((value, origin)) = single(Key::PreferredAuthentications) {
            put(Key::PreferredAuthentications, vec![value], origin);
        }
        if let Some((value, origin)) = alias {
            put(Key::HostKeyAlias, vec![value], origin);
        }

        for key in [Key::Ciphers, Key::HostKeyAlgorithms, Key::KexAlgorithms, Key::Macs] {
            let (default, all) = algorithm_lists(key);
            let (spec, origin) = match single(key) {
                Some((spec, origin)) => (Some(spec), origin),
                None => (None, Origin::Default),
            };
            let list = match &spec {
                Some(spec) => assemble_algorithms(spec, default, all),
                None => Some(default.split(',').map(str::to_string).collect()),
            };
            match list {
                Some(list) if !list.is_empty() => put(key, vec![list.join(",")], origin),
                _ => {
                    return Err(self.err(
                        &origin,
                        format!(
                            "{} {} leaves no algorithm to use; name at least one supported algorithm",
                            key.name(),
                            shown(&spec.unwrap_or_default())
                        ),
                    ));
                }
            }
        }

        if let Some((value, origin)) = single(Key::IdentityAgent) {
            let expanded = expand_path(&value, &origin, "IdentityAgent")?;
            put(Key::IdentityAgent, vec![expanded], origin);
        }

        // IdentityFile: the defaults only when none is given. OpenSSH skips `none` when it loads keys.
        let (raw, origin) = list(Key::IdentityFile).unwrap_or_else(|| {
            (
                DEFAULT_IDENTITY_FILES.iter().map(|s| s.to_string()).collect(),
                Origin::Default,
            )
        });
        let origins = obtained
            .get(&Key::IdentityFile)
            .map_or_else(Vec::new, |o| o.origins.clone());
        let mut values = Vec::new();
        for (i, value) in raw.iter().enumerate() {
            if !value.eq_ignore_ascii_case("none") {
                values.push(expand_path(value, origins.get(i).unwrap_or(&origin), "IdentityFile")?);
            }
        }
        settings.insert(
            Key::IdentityFile.name().to_string(),
            Setting::shown_as(values, origin, raw),
        );

        if let Some(o) = obtained.get(&Key::CertificateFile) {
            let mut values = Vec::new();
            for (value, origin) in o.values.iter().zip(&o.origins) {
                values.push(expand_path(value, origin, "CertificateFile")?);
            }
            let setting = Setting::shown_as(values, o.origins[0].clone(), o.values.clone());
            settings.insert(Key::CertificateFile.name().to_string(), setting);
        }

        let (values, origin) = list(Key::GlobalKnownHostsFile).unwrap_or_else(|| {
            (
                DEFAULT_GLOBAL_KNOWN_HOSTS.iter().map(|s| s.to_string()).collect(),
                Origin::Default,
            )
        });
        settings.insert(
            Key::GlobalKnownHostsFile.name().to_string(),
            Setting::new(values, origin),
        );

        let (raw, origin) = list(Key::UserKnownHostsFile).unwrap_or_else(|| {
            (
                DEFAULT_USER_KNOWN_HOSTS.iter().map(|s| s.to_string()).collect(),
                Origin::Default,
            )
        });
        let values = if raw.len() == 1 && raw[0] == "none" {
            raw
        } else {
            let mut values = Vec::new();
            for value in &raw {
                values.push(expand_path(value, &origin, "UserKnownHostsFile")?);
            }
            values
        };
        settings.insert(Key::UserKnownHostsFile.name().to_string(), Setting::new(values, origin));

        if let Some((command, origin)) = single(Key::ProxyCommand)
            && !command.eq_ignore_ascii_case("none")
        {
            let expanded = expand(&command, Some(&command_tokens), None)
                .map_err(|e| self.err(&origin, format!("ProxyCommand: {e}")))?;
            let setting = Setting::shown_as(vec![expanded], origin, vec![command]);
            settings.insert(Key::ProxyCommand.name().to_string(), setting);
        }
        if let Some((jump, origin)) = single(Key::ProxyJump)
            && jump != "none"
        {
            let expanded =
                expand(&jump, Some(&proxy_tokens), None).map_err(|e| self.err(&origin, format!("ProxyJump: {e}")))?;
            let setting = Setting::shown_as(vec![expanded], origin, vec![jump]);
            settings.insert(Key::ProxyJump.name().to_string(), setting);
        }

        Ok(Resolved {
            settings,
            unsupported: self.unsupported,
        })
    }
}

const INVALID_QUOTES: &str = "unbalanced quotes; close the quote, or escape it with a backslash";

const DEFAULT_IDENTITY_FILES: [&str; 7] = [
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
];
const DEFAULT_USER_KNOWN_HOSTS: [&str; 2] = ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"];
const DEFAULT_GLOBAL_KNOWN_HOSTS: [&str; 2] = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

/// The single argument of a directive.
fn one_arg<'s>(reader: &Reader, keyword: &str, args: &'s [String], origin: &Origin) -> Result<&'s str> {
    match args {
        [] => Err(reader.err(origin, format!("{keyword} needs a value"))),
        [value] if value.is_empty() => Err(reader.err(origin, format!("{keyword} needs a value, not an empty string"))),
        [value] => Ok(value),
        _ => Err(reader.err(
            origin,
            format!(
                "{keyword} takes one value but has {}; quote a value that contains spaces",
                args.len()
            ),
        )),
    }
}

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

/// What reading one configuration file gave.
#[derive(Debug)]
enum Contents {
    /// No such file.
    Missing,
    /// A directory an `Include` named, which OpenSSH reads as empty.
    Skipped,
    Bytes(Vec<u8>),
}

/// Reads a configuration file: at most `limit` bytes and one more (so the caller can tell that it is
/// larger). Anything but a regular file (or `/dev/null`, which reads as empty; or, with
/// `skip_directories`, a directory, skipped) is refused before it is opened, and again after (in case
/// it was swapped meanwhile), so a FIFO cannot block and a device cannot stream forever. With
/// `owner_uid`, the file must be owned by that user or root and writable by no one else, as OpenSSH
/// requires of included files and `~/.ssh/config`. The error says what is wrong, without the file's
/// name.
#[cfg(unix)]
fn read_config_file(
    path: &Path,
    limit: u64,
    skip_directories: bool,
    owner_uid: Option<u32>,
) -> std::result::Result<Contents, String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::Missing),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let secure = |meta: &std::fs::Metadata| match owner_uid {
        Some(uid) if (meta.uid() != 0 && meta.uid() != uid) || meta.mode() & 0o022 != 0 => Err(format!(
            "bad owner or permissions (OpenSSH refuses it too); it must be owned by you or root and writable only by its owner: chmod go-w {}",
            shown_path(path)
        )),
        _ => Ok(()),
    };
    if meta.is_dir() && skip_directories {
        return Ok(Contents::Skipped);
    }
    if is_dev_null(&meta) {
        secure(&meta)?;
        return Ok(Contents::Bytes(Vec::new()));
    }
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "it vanished while being read; try again".to_string(),
            _ => format!("cannot read it: {e}"),
        })?;
    let meta = file.metadata().map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    secure(&meta)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    Ok(Contents::Bytes(bytes))
}

#[cfg(not(unix))]
fn read_config_file(
    path: &Path,
    limit: u64,
    skip_directories: bool,
    _owner_uid: Option<u32>,
) -> std::result::Result<Contents, String> {
    use std::io::Read;
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::Missing),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    if meta.is_dir() && skip_directories {
        return Ok(Contents::Skipped);
    }
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read it: {e}"))?;
    Ok(Contents::Bytes(bytes))
}

/// Whether `meta` is the null device (`-F /dev/null` is the usual way to ignore every config file).
#[cfg(unix)]
fn is_dev_null(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device()
        && std::fs::metadata("/dev/null")
            .is_ok_and(|null| null.file_type().is_char_device() && null.rdev() == meta.rdev())
}

/// Why a file that is not a regular file is not read.
fn not_regular(meta: &std::fs::Metadata) -> String {
    if meta.is_dir() {
        return "a directory, not a file; give the path of the ssh config file in it".to_string();
    }
    #[cfg(unix)]
    let kind = {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            "a FIFO (named pipe)"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "a special file"
        }
    };
    #[cfg(not(unix))]
    let kind = "a special file";
    format!(
        "{kind}, not a regular file; sqltun reads ssh config only from regular files (is this really an ssh config file?)"
    )
}

// ---------------------------------------------------------------------------------------------
// Lexing

/// Splits a line into its keyword and the rest; `Ok(None)` for blank and comment lines.
fn split_keyword(line: &str) -> std::result::Result<Option<(String, &str)>, ()> {
    let (mut keyword, mut rest) = strdelim(line)?;
    if keyword.is_empty() {
        (keyword, rest) = strdelim(rest)?;
    }
    if keyword.is_empty() || keyword.starts_with('#') {
        return Ok(None);
    }
    Ok(Some((keyword, rest.trim_start_matches(WHITESPACE))))
}

/// One token as OpenSSH's strdelim cuts it: it ends at whitespace, `"` or `=`; a `"` starts a quoted
/// part that runs to the next `"`; whitespace and at most one `=` after the token are skipped.
fn strdelim(s: &str) -> std::result::Result<(String, &str), ()> {
    let Some(pos) = s.find([' ', '\t', '\r', '\n', '"', '=']) else {
        return Ok((s.to_string(), ""));
    };
    if s[pos..].starts_with('"') {
        let after = &s[pos + 1..];
        let close = after.find('"').ok_or(())?;
        let token = format!("{}{}", &s[..pos], &after[..close]);
        return Ok((token, after[close + 1..].trim_start_matches(WHITESPACE)));
    }
    let equals = s[pos..].starts_with('=');
    let token = s[..pos].to_string();
    let mut rest = s[pos + 1..].trim_start_matches(WHITESPACE);
    if !equals && let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start_matches(WHITESPACE);
    }
    Ok((token, rest))
}

/// Splits arguments as OpenSSH's argv_split does: whitespace separates, `"…"` and `'…'` group,
/// backslash escapes quotes, backslash and (outside quotes) space, and `#` at the start of an
/// argument ends the line.
fn argv_split(s: &str) -> std::result::Result<Vec<String>, ()> {
    let chars: Vec<char> = s.chars().collect();
    let mut args = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' || chars[i] == '\t' {
            i += 1;
            continue;
        }
        if chars[i] == '#' {
            break;
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                match chars.get(i + 1) {
                    Some(&next) if next == '\'' || next == '"' || next == '\\' || (quote.is_none() && next == ' ') => {
                        arg.push(next);
                        i += 1;
                    }
                    _ => arg.push(c),
                }
            } else if quote.is_none() && (c == ' ' || c == '\t') {
                break;
            } else if quote.is_none() && (c == '"' || c == '\'') {
                quote = Some(c);
            } else if quote == Some(c) {
                quote = None;
            } else {
                arg.push(c);
            }
            i += 1;
        }
        if quote.is_some() {
            return Err(());
        }
        args.push(arg);
    }
    Ok(args)
}

// ---------------------------------------------------------------------------------------------
// Patterns

/// OpenSSH's match_pattern: `*` matches any run of characters, `?` any one; case-sensitive.
fn match_pattern(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// OpenSSH's match_pattern_list: comma-separated patterns, `!` negates. `Some(true)` on a positive
/// match, `Some(false)` on a negated one (which vetoes), `None` when nothing matched.
fn match_pattern_list(text: &str, list: &str, lowercase_patterns: bool) -> Option<bool> {
    let mut positive = None;
    for sub in list.split(',') {
        let (negated, pattern) = match sub.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, sub),
        };
        let pattern = if lowercase_patterns {
            pattern.to_ascii_lowercase()
        } else {
            pattern.to_string()
        };
        if match_pattern(text, &pattern) {
            if negated {
                return Some(false);
            }
            positive = Some(true);
        }
    }
    positive
}

/// OpenSSH's match_hostname: a pattern list, case-insensitive.
fn match_hostname(host: &str, list: &str) -> bool {
    match_pattern_list(&host.to_ascii_lowercase(), list, true) == Some(true)
}

// ---------------------------------------------------------------------------------------------
// Values

/// OpenSSH's a2port: a decimal number from 1 to 65535, or a TCP service name.
fn parse_port(value: &str) -> Option<u16> {
    match parse_decimal(value) {
        Some(n) => u16::try_from(n).ok().filter(|&p| p > 0),
        None => service_port(value),
    }
}

/// strtonum's notion of a decimal: an optional sign, then digits and nothing else.
/// Magnitudes beyond `i64` saturate (they are out of every range checked here).
fn parse_decimal(value: &str) -> Option<i64> {
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
fn parse_int(value: &str) -> std::result::Result<i64, &'static str> {
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
fn parse_time(value: &str) -> Option<i64> {
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
fn service_port(name: &str) -> Option<u16> {
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

fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// OpenSSH's is_addr_fast: what it treats as an address, which it does not lower-case.
fn looks_like_address(name: &str) -> bool {
    name.contains(['%', ':']) || name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// `HostName`'s tokens: `%h` (the host as given) and `%%`.
fn expand_hostname(value: &str, host_arg: &str) -> std::result::Result<String, String> {
    expand(value, Some(&[('h', host_arg)]), None)
}

/// OpenSSH's percent_dollar_expand: `%x` tokens from `tokens`, and `${VAR}` from `env` when given.
fn expand(
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
fn expand_tilde(path: &str, local: &Local) -> std::result::Result<String, String> {
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

/// The home directory of `user` (`~user`).
fn home_of(user: &str, local: &Local) -> std::result::Result<PathBuf, String> {
    if user == local.user {
        return Ok(local.home.clone());
    }
    passwd_entries()
        .into_iter()
        .find(|(name, _, _)| name == user)
        .map(|(_, _, home)| home)
        .ok_or_else(|| format!("~{}: no such user in /etc/passwd; write the full path", shown(user)))
}

/// (name, uid, home) from /etc/passwd.
fn passwd_entries() -> Vec<(String, u32, PathBuf)> {
    let Ok(text) = std::fs::read_to_string("/etc/passwd") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 7 {
                return None;
            }
            Some((fields[0].to_string(), fields[2].parse().ok()?, PathBuf::from(fields[5])))
        })
        .collect()
}

fn passwd_by_uid(uid: u32) -> Option<(String, PathBuf)> {
    passwd_entries()
        .into_iter()
        .find(|(_, u, _)| *u == uid)
        .map(|(name, _, home)| (name, home))
}

fn process_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata("/proc/self") {
            return Some(meta.uid());
        }
    }
    command_output("id", &["-u"])?.parse().ok()
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = crate::secret::withhold_from(&mut std::process::Command::new(program))
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn sha1_hex(text: &str) -> String {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a ProxyJump value as OpenSSH's parse_jump does and returns it as `ssh -G` prints it:
/// the hops before the last as written, the last one normalized (`user@[addr]:port`).
fn parse_jump(spec: &str) -> std::result::Result<String, String> {
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
fn parse_hop(hop: &str) -> std::result::Result<(Option<String>, String, Option<u16>), String> {
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
fn split_host(s: &str) -> Option<(String, Option<char>, &str)> {
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
fn valid_domain(name: &str) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Include globs

/// glob(3) without flags beyond tilde: `*`, `?` and `[…]` per path component, hidden files only
/// for patterns that start with `.`, sorted; only existing paths.
fn glob(pattern: &str) -> Vec<PathBuf> {
    let absolute = pattern.starts_with('/');
    let mut current: Vec<PathBuf> = vec![if absolute { PathBuf::from("/") } else { PathBuf::new() }];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if component.contains(['*', '?', '[']) {
            for base in &current {
                let dir = if base.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    base.as_path()
                };
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect();
                names.retain(|name| (!name.starts_with('.') || component.starts_with('.')) && fnmatch(component, name));
                names.sort();
                next.extend(names.into_iter().map(|name| base.join(name)));
            }
        } else {
            next = current.iter().map(|base| base.join(component)).collect();
        }
        current = next;
    }
    let mut found: Vec<PathBuf> = current.into_iter().filter(|p| p.symlink_metadata().is_ok()).collect();
    found.sort();
    found
}

/// fnmatch(3) for one path component: `*`, `?`, `[…]` (with `!`/`^` and ranges), `\` escapes.
///
/// Every element but `*` matches exactly one character, so the greedy two-pointer match that, on a
/// mismatch, backtracks only to the most recent `*` is exact, and takes at most
/// `pattern × name` steps (a recursive match takes exponential time on `****…*b`).
fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let elements = glob_elements(&p);
    let one = |element: &GlobElement, c: char| match *element {
        GlobElement::Star => false,
        GlobElement::Any => true,
        GlobElement::Char(lit) => c == lit,
        GlobElement::Class(at) => bracket(&p[at..], c).is_some_and(|(matched, _)| matched),
    };
    let (mut ei, mut ni) = (0, 0);
    // After the last `*` seen: where the rest of the pattern starts, and where in the name it was
    // last tried.
    let mut retry: Option<(usize, usize)> = None;
    while ni < n.len() {
        match elements.get(ei) {
            Some(GlobElement::Star) => {
                ei += 1;
                retry = Some((ei, ni));
            }
            Some(element) if one(element, n[ni]) => {
                ei += 1;
                ni += 1;
            }
            _ => match retry {
                // Let the `*` take one more character and try the rest again.
                Some((after_star, tried)) => {
                    ei = after_star;
                    ni = tried + 1;
                    retry = Some((after_star, ni));
                }
                None => return false,
            },
        }
    }
    elements[ei..].iter().all(|e| matches!(e, GlobElement::Star))
}

/// One element of a glob pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GlobElement {
    /// `*`: any run of characters.
    Star,
    /// `?`: any one character.
    Any,
    /// A literal character (also an escaped one, and an unclosed `[`).
    Char(char),
    /// A bracket expression; the index of the character after its `[`.
    Class(usize),
}

/// Splits a glob pattern into its elements.
fn glob_elements(p: &[char]) -> Vec<GlobElement> {
    let mut elements = Vec::with_capacity(p.len());
    let mut i = 0;
    while let Some(&c) = p.get(i) {
        let (element, used) = match c {
            '*' => (GlobElement::Star, 1),
            '?' => (GlobElement::Any, 1),
            // How much of the pattern a bracket expression uses does not depend on the character.
            '[' => match bracket(&p[i + 1..], '\0') {
                Some((_, used)) => (GlobElement::Class(i + 1), 1 + used),
                // An unclosed `[` is an ordinary character.
                None => (GlobElement::Char('['), 1),
            },
            '\\' if i + 1 < p.len() => (GlobElement::Char(p[i + 1]), 2),
            lit => (GlobElement::Char(lit), 1),
        };
        elements.push(element);
        i += used;
    }
    elements
}

/// A bracket expression after its `[`: whether `c` matches and how many pattern chars it used.
fn bracket(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = matches!(p.first(), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &start = p.get(i)?;
        if start == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            let end = p[i + 2];
            if start <= c && c <= end {
                matched = true;
            }
            i += 3;
        } else {
            if start == c {
                matched = true;
            }
            i += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Algorithms (OpenSSH 9.2p1 Debian-2+deb12u10: `ssh -G` defaults, `ssh -Q` lists)

const DEFAULT_CIPHERS: &str =
    "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com";
const ALL_CIPHERS: &[&str] = &[
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
];
const DEFAULT_MACS: &str = "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1";
const ALL_MACS: &[&str] = &[
    "hmac-sha1",
    "hmac-sha1-96",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-md5",
    "hmac-md5-96",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
];
const DEFAULT_KEX: &str = "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256";
const ALL_KEX: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group-exchange-sha256",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
];
const DEFAULT_HOST_KEY_ALGORITHMS: &str = "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256";
const ALL_HOST_KEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-512-cert-v01@openssh.com",
];

/// (default list, every supported name) for an algorithm directive.
fn algorithm_lists(key: Key) -> (&'static str, &'static [&'static str]) {
    match key {
        Key::Ciphers => (DEFAULT_CIPHERS, ALL_CIPHERS),
        Key::Macs => (DEFAULT_MACS, ALL_MACS),
        Key::KexAlgorithms => (DEFAULT_KEX, ALL_KEX),
        _ => (DEFAULT_HOST_KEY_ALGORITHMS, ALL_HOST_KEY_ALGORITHMS),
    }
}

/// What OpenSSH checks when it reads an algorithm list: every name known (wildcards only in
/// HostKeyAlgorithms); a `-` list is not checked.
fn validate_algorithms(key: Key, spec: &str) -> std::result::Result<(), String> {
    if spec.starts_with('-') {
        return Ok(());
    }
    let names = spec.strip_prefix(['+', '^']).unwrap_or(spec);
    let (_, all) = algorithm_lists(key);
    // OpenSSH stops at the first empty name.
    for name in names.split(',').take_while(|n| !n.is_empty()) {
        let known = all.contains(&name)
            || (key == Key::HostKeyAlgorithms && all.iter().any(|a| match_pattern_list(a, name, false).is_some()));
        if !known {
            let query = match key {
                Key::Ciphers => "cipher",
                Key::Macs => "mac",
                Key::KexAlgorithms => "kex",
                _ => "HostKeyAlgorithms",
            };
            return Err(format!(
                "unknown algorithm '{}'; `ssh -Q {query}` lists the supported ones",
                shown(name)
            ));
        }
    }
    Ok(())
}

/// OpenSSH's kex_assemble_names: `+` appends to the default list, `-` removes from it, `^` puts
/// first; names may be patterns, expanded in the order of the supported list. `None` if a
/// negated pattern appears where OpenSSH forbids it.
fn assemble_algorithms(spec: &str, default: &str, all: &[&str]) -> Option<Vec<String>> {
    let default: Vec<&str> = default.split(',').collect();
    if let Some(patterns) = spec.strip_prefix('-') {
        return Some(
            default
                .iter()
                .filter(|name| match_pattern_list(name, patterns, false) != Some(true))
                .map(|s| s.to_string())
                .collect(),
        );
    }
    let list: Vec<String> = if let Some(added) = spec.strip_prefix('+') {
        names_cat(&default, added.split(','))
    } else if let Some(first) = spec.strip_prefix('^') {
        let first: Vec<&str> = first.split(',').collect();
        names_cat(&first, default.iter().copied())
    } else {
        spec.split(',').map(str::to_string).collect()
    };
    let mut result: Vec<String> = Vec::new();
    for pattern in &list {
        if pattern.starts_with('!') {
            return None;
        }
        for name in all
            .iter()
            .filter(|a| match_pattern_list(a, pattern, false) == Some(true))
        {
            if !result.iter().any(|r| r == name) {
                result.push(name.to_string());
            }
        }
    }
    Some(result)
}

/// OpenSSH's kex_names_cat: `a`, then each name of `b` not already present.
fn names_cat<'n>(a: &[&str], b: impl Iterator<Item = &'n str>) -> Vec<String> {
    let mut out: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    for name in b.take_while(|n| !n.is_empty()) {
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};

    // -----------------------------------------------------------------------------------------
    // Support

    /// A scratch directory, removed when dropped.
    pub(in crate::resolve) struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::SeqCst);
            let dir = std::env::temp_dir().join(format!("sqltun-ssh-config-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create scratch dir");
            Scratch(dir)
        }
        pub(in crate::resolve) fn path(&self) -> &Path {
            &self.0
        }
        fn write(&self, relative: &str, text: &str) -> PathBuf {
            let path = self.0.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create dir");
            }
            std::fs::write(&path, text).expect("write file");
            set_mode(&path, 0o644);
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn local_for(home: &Path) -> Local {
        Local {
            user: "alice".to_string(),
            home: home.to_path_buf(),
            hostname: "laptop.example.org".to_string(),
            uid: 4242,
        }
    }

    /// Resolves with only `HOME` (= `home`) in the environment.
    fn resolve_at(query: &Query, local: &Local, home: &Path) -> Result<Resolved> {
        let home = home.display().to_string();
        resolve_with_env(query, local, &|name: &str| (name == "HOME").then(|| home.clone()))
    }

    fn query<'a>(host: &'a str, config: &'a Path) -> Query<'a> {
        Query {
            host,
            user: None,
            port: None,
            options: &[],
            config: ConfigChoice::File(config),
        }
    }

    fn resolve_text(text: &str, host: &str) -> (Result<Resolved>, Scratch) {
        let lab = Scratch::new("unit");
        let config = lab.write("config", text);
        let home = lab.path().join("home");
        let local = local_for(&home);
        (resolve_at(&query(host, &config), &local, &home), lab)
    }

    fn ok(text: &str, host: &str) -> Resolved {
        let (result, _lab) = resolve_text(text, host);
        result.expect("resolves")
    }

    fn error(text: &str, host: &str) -> String {
        let (result, _lab) = resolve_text(text, host);
        result.expect_err("should fail").message().to_string()
    }

    // -----------------------------------------------------------------------------------------
    // Unit tests: run everywhere, no OpenSSH needed

    /// With no configuration at all, every honoured directive still has OpenSSH's default, with
    /// `Origin::Default`, so callers never need their own fallbacks.
    #[test]
    fn defaults_fill_every_honoured_directive() {
        let lab = Scratch::new("defaults");
        let local = local_for(Path::new("/home/alice"));
        let q = Query {
            host: "Db.Example.COM",
            user: None,
            port: None,
            options: &[],
            config: ConfigChoice::None,
        };
        let r = resolve_at(&q, &local, lab.path()).expect("resolves");
        assert_eq!(r.get("hostname"), Some("db.example.com"));
        assert_eq!(r.get("user"), Some("alice"));
        assert_eq!(r.get("port"), Some("22"));
        assert_eq!(r.origin("port"), Some(&Origin::Default));
        assert_eq!(r.get("stricthostkeychecking"), Some("ask"));
        assert_eq!(r.get("connecttimeout"), Some("none"));
        assert_eq!(
            r.all("userknownhostsfile"),
            ["/home/alice/.ssh/known_hosts", "/home/alice/.ssh/known_hosts2"]
        );
        assert_eq!(r.all("identityfile").first().copied(), Some("/home/alice/.ssh/id_rsa"));
        assert_eq!(
            r.settings["identityfile"]
                .ssh_g
                .as_ref()
                .and_then(|g| g.first())
                .map(String::as_str),
            Some("~/.ssh/id_rsa")
        );
        assert_eq!(r.get("proxyjump"), None);
        assert!(
            r.to_ssh_g()
                .starts_with("user alice\nhostname db.example.com\nport 22\n")
        );
    }

    /// `Match exec` would run a command from the config; sqltun refuses it with the file and line,
    /// rather than guessing whether the block applies.
    #[test]
    fn match_exec_is_refused_with_file_and_line() {
        let message = error("Host a\n  User x\n\nMatch exec \"test -e /tmp\"\n  User y\n", "b");
        assert!(message.contains("config:4: Match exec is not supported"), "{message}");
    }

    /// When the other criteria on the line already rule the block out, the command's result cannot
    /// matter, so the config still resolves (OpenSSH would not run the command either).
    #[test]
    fn match_exec_after_a_failing_criterion_is_harmless() {
        let r = ok("Match host other exec \"false\"\n  User y\n", "b");
        assert_eq!(r.get("user"), Some("alice"));
        let r = ok("Match exec \"false\" host other\n  User y\n", "b");
        assert_eq!(r.get("user"), Some("alice"));
    }

    /// A file that includes itself must stop with a clear error, not recurse until the stack ends.
    #[test]
    fn include_loop_is_an_error() {
        let lab = Scratch::new("loop");
        let config = lab.write("loop.conf", "Include loop.conf\n");
        let home = lab.path().to_path_buf();
        let local = local_for(&home);
        std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
        std::fs::copy(&config, home.join(".ssh/loop.conf")).expect("copy");
        let message = resolve_at(&query("h", &home.join(".ssh/loop.conf")), &local, &home)
            .expect_err("loops")
            .message()
            .to_string();
        assert!(
            message.contains("~/.ssh/loop.conf:1: Include nests more than 16 levels"),
            "{message}"
        );
    }

    /// An included file others can write could redirect connections; OpenSSH refuses it, so do we.
    #[test]
    fn group_writable_include_is_refused() {
        let lab = Scratch::new("perm");
        let included = lab.write("inc.conf", "User mallory\n");
        set_mode(&included, 0o664);
        let config = lab.write("config", &format!("Include {}\n", included.display()));
        let mut local = local_for(lab.path());
        local.uid = current_uid();
        let message = resolve_at(&query("h", &config), &local, lab.path())
            .expect_err("refused")
            .message()
            .to_string();
        assert!(message.contains("bad owner or permissions"), "{message}");
    }

    /// Our uid, as the owner of a file we just created.
    fn current_uid() -> u32 {
        use std::os::unix::fs::MetadataExt;
        let probe = Scratch::new("uid");
        std::fs::metadata(probe.path()).expect("stat").uid()
    }

    /// `-v` lists directives sqltun ignores; each must carry the file and line it came from, and only
    /// those that apply to the destination are listed.
    #[test]
    fn unsupported_directives_are_recorded_with_origin() {
        let (result, lab) = resolve_text("Host a\n  ForwardAgent yes\nHost b\n  LocalForward 1 h:2\n", "a");
        let r = result.expect("resolves");
        let path = lab.path().join("config");
        assert_eq!(
            r.unsupported,
            vec![("forwardagent".to_string(), Origin::File { path, line: 2 })]
        );
    }

    /// Accumulated IdentityFile values are ready to open (`~`, tokens expanded, `none` left out), while
    /// `ssh -G` shows them as written; the origin is the first line's.
    #[test]
    fn identity_files_accumulate_with_expansion() {
        let (result, lab) = resolve_text(
            "Host *\n  IdentityFile ~/.ssh/%r@%h\n  IdentityFile none\nIdentityFile /k/%u\n",
            "db",
        );
        let r = result.expect("resolves");
        let home = lab.path().join("home");
        assert_eq!(
            r.all("identityfile"),
            [format!("{}/.ssh/alice@db", home.display()), "/k/alice".to_string()]
        );
        let shown = r.settings["identityfile"].ssh_g.clone().unwrap_or_default();
        assert_eq!(shown, ["~/.ssh/%r@%h", "none", "/k/%u"]);
        let path = lab.path().join("config");
        assert_eq!(r.origin("identityfile"), Some(&Origin::File { path, line: 2 }));
    }

    /// ProxyJump keeps its hops for the caller to split; `%h` is the target's host name (OpenSSH
    /// expands it when it builds the jump command) while `ssh -G` shows it unexpanded.
    #[test]
    fn proxy_jump_tokens_expand_in_values_only() {
        let r = ok(
            "Host db\n  HostName db.internal\n  ProxyJump ops@bastion-for-%h:2222,10.0.0.1\n",
            "db",
        );
        assert_eq!(r.get("proxyjump"), Some("ops@bastion-for-db.internal:2222,[10.0.0.1]"));
        assert_eq!(
            r.settings["proxyjump"].ssh_g,
            Some(vec!["ops@bastion-for-%h:2222,[10.0.0.1]".to_string()])
        );
        let r = ok("Host db\n  ProxyJump none\n  ProxyJump other\n", "db");
        assert_eq!(r.get("proxyjump"), None);
    }

    /// `%r`, `%h`, `%n` and `%p` reach `sh -c` through ProxyCommand: each is one shell word (plain names
    /// unchanged, as OpenSSH writes them), and a user or host name that could run a command never gets
    /// there: it is refused with the file and line (or `-o`) it came from, before any expansion.
    #[test]
    fn proxy_command_tokens_cannot_inject() {
        let r = ok("Host h\n  User deploy\n  ProxyCommand nc -l %r %h %p %n\n", "h");
        assert_eq!(r.get("proxycommand"), Some("nc -l deploy h 22 h"));
        let r = ok(
            "Host h\n  User a*b\n  HostName fe80::1%%eth0\n  ProxyCommand nc %r %h\n",
            "h",
        );
        assert_eq!(r.get("proxycommand"), Some("nc 'a*b' fe80::1%eth0"));
        for (text, needle) in [
            (
                "Host h\n  User \"x;touch m\"\n  ProxyCommand nc %r\n",
                "config:2: User: the SSH user name `x;touch m` contains `;`",
            ),
            (
                "Host h\n  User x$(touch)\n  ProxyCommand nc %r\n",
                "config:2: User: the SSH user name",
            ),
            (
                "Host h\n  HostName \"h >m\"\n  ProxyCommand nc %h\n",
                "config:2: HostName: the SSH host name `h >m` contains whitespace",
            ),
            (
                "Host h\n  HostName h`m`\n  ProxyCommand nc %h\n",
                "config:2: HostName: the SSH host name",
            ),
            ("Host h\n  HostName -oX\n  ProxyJump %h\n", "starts with `-`"),
        ] {
            let message = error(text, "h");
            assert!(message.contains(needle), "{text:?}: {message}");
        }
        let lab = Scratch::new("unit");
        let home = lab.path().join("home");
        let local = local_for(&home);
        for (key, value, needle) in [
            ("User", "x|>m", "-o User: the SSH user name `x|>m` contains `|`"),
            ("HostName", "h&>m", "-o HostName: the SSH host name `h&>m` contains `&`"),
        ] {
            let options = [(key.to_string(), value.to_string())];
            let q = Query {
                host: "h",
                user: None,
                port: None,
                options: &options,
                config: ConfigChoice::None,
            };
            let message = resolve_at(&q, &local, &home).unwrap_err().message().to_string();
            assert!(message.contains(needle), "{key}={value}: {message}");
        }
        let q = Query {
            host: "h",
            user: Some("x\n>m"),
            port: None,
            options: &[],
            config: ConfigChoice::None,
        };
        let message = resolve_at(&q, &local, &home).unwrap_err().message().to_string();
        assert!(
            message.starts_with(r"the destination: the SSH user name `x\n>m`"),
            "{message}"
        );
    }

    /// An unknown token is an error naming the file and line, as OpenSSH's percent_expand refuses it.
    #[test]
    fn unknown_token_names_the_line() {
        let message = error("\nUserKnownHostsFile ~/.ssh/kh-%x\n", "h");
        assert!(
            message.contains("config:2: UserKnownHostsFile: unknown token %x"),
            "{message}"
        );
    }

    /// A system-wide config may not use `~` in Include (OpenSSH: "bad include path").
    #[test]
    fn tilde_include_is_refused_in_the_system_config() {
        let lab = Scratch::new("system");
        let config = lab.write("ssh_config", "Include ~/x.conf\n");
        let local = local_for(lab.path());
        let env = |_: &str| None;
        let mut reader = Reader::new("h", &local, &env, Path::new(SYSTEM_CONFIG));
        let flags = Flags {
            user_config: false,
            never_match: false,
            command_line: false,
            check_permissions: false,
        };
        let mut active = true;
        let message = reader
            .file(&config, flags, 0, &mut active, None)
            .expect_err("refused")
            .message()
            .to_string();
        assert!(message.contains("not allowed in the system config"), "{message}");
    }

    /// With the default choice, `~/.ssh/config` (under `Local::home`) is read first and wins over the
    /// system-wide file, which still supplies what the user's file leaves unset.
    #[test]
    fn default_choice_reads_the_user_config_first() {
        let lab = Scratch::new("default");
        lab.write(".ssh/config", "Host db\n  User fromuserconfig\n  Port 2022\n");
        let system = lab.write("etc/ssh_config", "Host *\n  User fromsystem\n  HashKnownHosts yes\n");
        let mut local = local_for(lab.path());
        local.uid = current_uid();
        let q = Query {
            host: "db",
            user: None,
            port: None,
            options: &[],
            config: ConfigChoice::Default,
        };
        let r = resolve_with_system_config(&q, &local, &|_: &str| None, &system).expect("resolves");
        assert_eq!(r.get("user"), Some("fromuserconfig"));
        assert_eq!(r.get("port"), Some("2022"));
        assert_eq!(r.get("hashknownhosts"), Some("yes"));
        assert_eq!(
            r.origin("hashknownhosts"),
            Some(&Origin::File { path: system, line: 3 })
        );
    }

    /// OpenSSH drops a repeated IdentityFile only when both copies come from the same kind of file: the
    /// same path in `~/.ssh/config` and `/etc/ssh/ssh_config` is listed twice (checked with `ssh -G`).
    #[test]
    fn identity_file_repeated_in_the_system_config_is_kept() {
        let lab = Scratch::new("dedup");
        lab.write(
            ".ssh/config",
            "Host h\n  IdentityFile /k/same\n  IdentityFile /k/same\n",
        );
        let system = lab.write(
            "etc/ssh_config",
            "Host h\n  IdentityFile /k/same\n  IdentityFile /k/sys\n",
        );
        let mut local = local_for(lab.path());
        local.uid = current_uid();
        let q = Query {
            host: "h",
            user: None,
            port: None,
            options: &[],
            config: ConfigChoice::Default,
        };
        let r = resolve_with_system_config(&q, &local, &|_: &str| None, &system).expect("resolves");
        assert_eq!(r.all("identityfile"), ["/k/same", "/k/same", "/k/sys"]);
    }

    /// A value in another encoding must not be silently altered; a comment in one is harmless.
    #[test]
    fn non_utf8_values_are_refused() {
        let lab = Scratch::new("utf8");
        let config = lab.path().join("config");
        std::fs::write(&config, b"# caf\xe9\nHost h\n  User caf\xe9\n").expect("write");
        let local = local_for(lab.path());
        let message = resolve_at(&query("h", &config), &local, lab.path())
            .expect_err("refused")
            .message()
            .to_string();
        assert!(message.contains("config:3: not valid UTF-8"), "{message}");
    }

    /// A missing `-F` file is an error (OpenSSH: "Can't open user config file"), never an empty config.
    #[test]
    fn missing_config_file_is_an_error() {
        let local = local_for(Path::new("/nonexistent"));
        let missing = Path::new("/nonexistent/sqltun-config");
        let message = resolve_at(&query("h", missing), &local, Path::new("/nonexistent"))
            .expect_err("missing")
            .message()
            .to_string();
        assert!(message.contains("no such file"), "{message}");
    }

    /// The lexer must split lines exactly as OpenSSH does, or values silently change.
    #[test]
    fn lines_split_like_openssh() {
        assert_eq!(split_keyword("  User=bob"), Ok(Some(("User".to_string(), "bob"))));
        assert_eq!(split_keyword("User = bob"), Ok(Some(("User".to_string(), "bob"))));
        assert_eq!(split_keyword("User==bob"), Ok(Some(("User".to_string(), "=bob"))));
        assert_eq!(split_keyword("# User bob"), Ok(None));
        assert_eq!(split_keyword(""), Ok(None));
        assert_eq!(
            argv_split(r#"a "b c" 'd' e\ f # g"#),
            Ok(vec!["a".into(), "b c".into(), "d".into(), "e f".into()])
        );
        assert_eq!(argv_split(r#"x"y z"w"#), Ok(vec!["xy zw".into()]));
        assert_eq!(argv_split(r#""open"#), Err(()));
    }

    /// Pattern semantics from OpenSSH's match.c: `*`, `?`, lists, negation vetoes.
    #[test]
    fn patterns_match_like_openssh() {
        assert!(match_pattern("web1.prod", "web?.prod"));
        assert!(match_pattern("a.b.c", "*.c"));
        assert!(!match_pattern("Foo", "foo"));
        assert_eq!(match_pattern_list("db.bad", "*.bad,!db.*", false), Some(false));
        assert_eq!(match_pattern_list("x", "a,b", false), None);
        assert!(match_hostname("DB.Example", "db.*"));
    }

    /// Include globs: fnmatch(3)'s semantics, in polynomial time even for many stars (a recursive
    /// matcher takes exponential time on `***…*b` against a long name that does not match).
    #[test]
    fn include_globs_match_like_fnmatch_in_polynomial_time() {
        assert!(fnmatch("*.conf", "a.conf"));
        assert!(fnmatch("*", ""));
        assert!(!fnmatch("?", ""));
        assert!(fnmatch("a*b*c", "aXbYbZc"));
        assert!(!fnmatch("a*b*c", "aXbYbZ"));
        assert!(fnmatch("[a-c]?.conf", "bx.conf"));
        assert!(!fnmatch("[!a-c]x", "bx"));
        assert!(fnmatch("[^a-c]x", "dx"));
        assert!(fnmatch("[]]", "]"));
        assert!(!fnmatch("[z-a]*", "zebra"));
        assert!(fnmatch("[unclosed", "[unclosed"));
        assert!(fnmatch(r"\*x", "*x"));
        assert!(!fnmatch(r"\*x", "ax"));
        assert!(fnmatch("*[0-9]", "host7"));
        assert!(fnmatch("**a**", "bab"));
        let started = std::time::Instant::now();
        let pattern = format!("{}b", "*".repeat(60));
        assert!(!fnmatch(&pattern, &"a".repeat(40)));
        let pattern = format!("{}b", "*a".repeat(5000));
        assert!(!fnmatch(&pattern, &"a".repeat(5000)));
        assert!(!match_pattern(&"a".repeat(5000), &format!("{}b", "*a".repeat(5000))));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    /// Messages quote values with control and invisible characters escaped, and long ones cut.
    #[test]
    fn messages_escape_and_cut_what_they_quote() {
        assert_eq!(shown("a\0b\x1b[2J\x7f\t\r\n"), r"a\0b\x1b[2J\x7f\t\r\n");
        assert_eq!(shown("\u{feff}#\u{202e}x\u{85}"), r"\u{feff}#\u{202e}x\u{85}");
        assert_eq!(shown("café ok"), "café ok");
        let long = shown(&"x".repeat(10_000));
        assert_eq!(long.chars().count(), MAX_QUOTED_CHARS + 1);
        assert!(long.ends_with('…'));

        let message = error("Host h\n  Port \x1b[2J22\n", "h");
        assert!(message.contains(r"config:2: bad port '\x1b[2J22'"), "{message}");
        let message = error("Ho\0st h\n", "h");
        assert!(
            message.contains(r"config:1: unknown ssh_config directive 'Ho\0st'"),
            "{message}"
        );
        let message = error(&format!("Host h\n  Port {}\n", "9".repeat(1 << 20)), "h");
        assert!(message.contains("config:2: bad port '999"), "{message}");
        assert!(message.len() < 500, "{} bytes", message.len());
        assert!(!message.chars().any(char::is_control), "{message:?}");
    }

    /// A control character in a value is refused by line, even where the value would be accepted.
    #[test]
    fn control_characters_in_values_are_refused() {
        let message = error("Host h\n  HostName db\0internal\n", "h");
        assert!(
            message.contains(r"config:2: HostName: 'db\0internal' contains the control character \0"),
            "{message}"
        );
        let message = error("Host h\n  User bob\x7f\n", "h");
        assert!(message.contains(r"config:2: User: 'bob\x7f'"), "{message}");
        let message = error("Host h\n  ProxyCommand nc %h %p\x07\n", "h");
        assert!(message.contains("config:2: ProxyCommand"), "{message}");
        let message = error("Host h\x01\n  User bob\n", "h");
        assert!(message.contains(r"config:1: Host: 'h\x01'"), "{message}");
        // Tabs separate words; a control character in a comment is harmless.
        let r = ok("Host h\n\tUser\tbob\n# \x07 bell\n", "h");
        assert_eq!(r.get("user"), Some("bob"));
    }

    /// A UTF-8 byte-order mark is refused as OpenSSH refuses it, with a message that names it.
    #[test]
    fn byte_order_mark_is_named() {
        let message = error("\u{feff}Host h\n  User bob\n", "h");
        assert!(
            message.contains("config:1: the file starts with a UTF-8 byte-order mark"),
            "{message}"
        );
    }

    /// Only regular files are read: a FIFO or a device named by Include is refused by the Include
    /// line before it is opened (opening a FIFO nobody writes to blocks); `-F /dev/null` is empty; a
    /// directory Include names is skipped, as in OpenSSH.
    #[test]
    fn special_files_are_refused_without_opening_them() {
        let lab = Scratch::new("special");
        let fifo = lab.path().join("fifo");
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        std::fs::create_dir_all(lab.path().join("dir")).expect("mkdir");
        let local = local_for(lab.path());
        let resolve_config = |text: &str| {
            let config = lab.write("config", text);
            resolve_at(&query("h", &config), &local, lab.path())
        };
        let message = resolve_config(&format!("Host h\n  Port 2\nInclude {}\n", fifo.display()))
            .expect_err("refused")
            .message()
            .to_string();
        assert!(
            message.contains("config:3: Include ~/fifo: a FIFO (named pipe), not a regular file"),
            "{message}"
        );
        let message = resolve_config("Include /dev/zero\n")
            .expect_err("refused")
            .message()
            .to_string();
        assert!(
            message.contains("config:1: Include /dev/zero: a character device"),
            "{message}"
        );
        let r = resolve_config(&format!("Include {}/dir\nUser bob\n", lab.path().display())).expect("skipped");
        assert_eq!(r.get("user"), Some("bob"));

        for (path, says) in [
            (Path::new("/dev/zero"), "/dev/zero: a character device"),
            (fifo.as_path(), "~/fifo: a FIFO"),
            (lab.path(), "a directory"),
        ] {
            let message = resolve_at(&query("h", path), &local, lab.path())
                .expect_err("refused")
                .message()
                .to_string();
            assert!(message.contains(says), "{message}");
        }
        let r = resolve_at(&query("h", Path::new("/dev/null")), &local, lab.path()).expect("empty");
        assert_eq!(r.get("port"), Some("22"));
    }

    /// Size bounds: a file over 4 MiB is refused by name, and Includes reading more than 16 MiB or
    /// 1024 files in all are refused by the Include line.
    #[test]
    fn reading_is_bounded() {
        let lab = Scratch::new("bounds");
        let local = local_for(lab.path());
        let big = lab.write("big.conf", &format!("# {}\n", "x".repeat(4 << 20)));
        let message = resolve_at(&query("h", &big), &local, lab.path())
            .expect_err("refused")
            .message()
            .to_string();
        assert!(
            message.ends_with("~/big.conf: larger than 4 MiB; is this really an ssh config file?"),
            "{message}"
        );
        let config = lab.write("config", &format!("Host h\nInclude {}\n", big.display()));
        let message = resolve_at(&query("h", &config), &local, lab.path())
            .expect_err("refused")
            .message()
            .to_string();
        assert!(
            message.contains("~/config:2: Include ~/big.conf: larger than 4 MiB"),
            "{message}"
        );

        let part = lab.write("part.conf", &format!("# {}\n", "x".repeat(3 << 20)));
        let config = lab.write(
            "config",
            &format!("Include {}\n", vec![part.display().to_string(); 6].join(" ")),
        );
        let message = resolve_at(&query("h", &config), &local, lab.path())
            .expect_err("refused")
            .message()
            .to_string();
        assert!(
            message.contains("~/config:1: Include ~/part.conf: the configuration read so far"),
            "{message}"
        );

        // No loop, just fan-out: each level includes the next one 8 times, 8^4 reads in all.
        for level in 1..=4 {
            let next = format!("level{}.conf", level + 1);
            lab.write(
                &format!(".ssh/level{level}.conf"),
                &format!("Include {}\n", vec![next; 8].join(" ")),
            );
        }
        lab.write(".ssh/level5.conf", "");
        let message = resolve_at(&query("h", &lab.path().join(".ssh/level1.conf")), &local, lab.path())
            .expect_err("refused")
            .message()
            .to_string();
        assert!(
            message.contains(".conf: more than 1024 files included in all"),
            "{message}"
        );
    }

    /// Times, integers and ports parse as OpenSSH's convtime, strtonum and a2port do.
    #[test]
    fn values_parse_like_openssh() {
        assert_eq!(parse_time("1m30"), Some(90));
        assert_eq!(parse_time("1h2m"), Some(3720));
        assert_eq!(parse_time("-1"), None);
        assert_eq!(parse_time("5x"), None);
        assert_eq!(parse_int("07"), Ok(7));
        assert_eq!(parse_int("-3"), Err("too small"));
        assert_eq!(parse_int("2147483648"), Err("too large"));
        assert_eq!(parse_port("+22"), Some(22));
        assert_eq!(parse_port("0"), None);
        assert_eq!(parse_port("70000"), None);
    }

    /// `%C` must be OpenSSH's hash (SHA-1 of %l%h%p%r), or ControlPath-style file names differ.
    #[test]
    fn connection_hash_matches_openssh() {
        // From `ssh -G` on the reference machine: l=vm h=real-foo.example.com p=2222 r=bob.
        assert_eq!(
            sha1_hex("vmreal-foo.example.com2222bob"),
            "683faf0f586187e559b95a8e44d305bc94995d29"
        );
    }

    /// Algorithm lists: `+` appends, `-` removes (patterns allowed), `^` puts first.
    #[test]
    fn algorithm_lists_assemble_like_openssh() {
        let list = |spec: &str| assemble_algorithms(spec, "a,b,c", &["a", "b", "c", "d", "e1", "e2"]).expect("valid");
        assert_eq!(list("+d,a"), ["a", "b", "c", "d"]);
        assert_eq!(list("-b*"), ["a", "c"]);
        assert_eq!(list("^d,c"), ["d", "c", "a", "b"]);
        assert_eq!(list("e*,a"), ["e1", "e2", "a"]);
        assert_eq!(assemble_algorithms("!a", "a", &["a"]), None);
    }

    /// `Local::from_system` must see what OpenSSH sees: the login name, uid and host name.
    #[test]
    fn local_from_system_matches_the_os() {
        let local = Local::from_system().expect("local facts");
        if let Some(uid) = command_output("id", &["-u"]) {
            assert_eq!(local.uid.to_string(), uid);
        }
        if let Some(user) = command_output("id", &["-un"]) {
            assert_eq!(local.user, user);
        }
        if let Some(host) = command_output("uname", &["-n"]) {
            assert_eq!(local.hostname, host);
        }
    }

    // -----------------------------------------------------------------------------------------
    // The corpus, compared with `ssh -G`

    /// One way to invoke a case.
    #[derive(Debug)]
    pub(in crate::resolve) struct Invocation {
        pub(in crate::resolve) line: usize,
        pub(in crate::resolve) args: Vec<String>,
        pub(in crate::resolve) expect: Expect,
    }

    #[derive(Debug, PartialEq)]
    pub(in crate::resolve) enum Expect {
        /// Both resolve, to the same values.
        Agree,
        /// Both refuse; our message contains this.
        BothFail(String),
        /// We refuse with this message while `ssh -G` prints the values and OpenSSH fails only when it
        /// connects, with a message containing the second string.
        FailsEarlier(String, String),
        /// A deliberate difference: we refuse (message contains the first string), OpenSSH does not;
        /// the second string is the reason.
        Deliberate(String, String),
    }

    pub(in crate::resolve) struct Case {
        pub(in crate::resolve) name: String,
        pub(in crate::resolve) path: PathBuf,
        pub(in crate::resolve) env: Vec<(String, String)>,
        pub(in crate::resolve) invocations: Vec<Invocation>,
    }

    fn corpus_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("ssh_config")
    }

    pub(in crate::resolve) fn load_corpus() -> Vec<Case> {
        let mut cases = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
            .expect("tests/ssh_config exists")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        entries.sort();
        for path in entries {
            let text = std::fs::read_to_string(&path).expect("read case");
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut env = Vec::new();
            let mut invocations = Vec::new();
            let mut why = false;
            for (index, line) in text.lines().enumerate() {
                let Some(meta) = line.strip_prefix("# ") else {
                    continue;
                };
                let (tag, rest) = meta.split_once(": ").unwrap_or((meta, ""));
                let parts: Vec<String> = rest.split(" | ").map(str::to_string).collect();
                let expect = match tag {
                    "why" => {
                        why = true;
                        continue;
                    }
                    "env" => {
                        let (k, v) = rest.split_once('=').expect("env: NAME=value");
                        env.push((k.to_string(), v.to_string()));
                        continue;
                    }
                    "query" => Expect::Agree,
                    "query-error" => Expect::BothFail(parts[1].clone()),
                    "query-fails-earlier" => Expect::FailsEarlier(parts[1].clone(), parts[2].clone()),
                    "query-deliberate" => Expect::Deliberate(parts[1].clone(), parts[2].clone()),
                    _ => continue,
                };
                invocations.push(Invocation {
                    line: index + 1,
                    args: shell_words(&parts[0]),
                    expect,
                });
            }
            assert!(
                why,
                "{name}: every case starts with a '# why:' line saying what it covers"
            );
            assert!(!invocations.is_empty(), "{name}: no '# query' lines");
            cases.push(Case {
                name,
                path,
                env,
                invocations,
            });
        }
        cases
    }

    /// Whitespace-separated words; single quotes group.
    fn shell_words(s: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut in_word = false;
        let mut quoted = false;
        for c in s.chars() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    in_word = true;
                }
                c if c.is_whitespace() && !quoted => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                c => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            words.push(word);
        }
        words
    }

    /// The destination and `-o` options of an invocation.
    struct Parsed {
        host: String,
        user: Option<String>,
        port: Option<u16>,
        options: Vec<(String, String)>,
    }

    fn parse_invocation(args: &[String]) -> Parsed {
        let mut options = Vec::new();
        let mut destination = None;
        let mut i = 0;
        while i < args.len() {
            if args[i] == "-o" {
                let (k, v) = args[i + 1].split_once('=').expect("-o KEY=VALUE");
                options.push((k.to_string(), v.to_string()));
                i += 2;
            } else {
                destination = Some(args[i].clone());
                i += 1;
            }
        }
        let destination = destination.expect("a destination");
        let (user, host_port) = match destination.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h.to_string()),
            None => (None, destination.clone()),
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (h.to_string(), p.parse().ok()),
            _ => (host_port, None),
        };
        Parsed {
            host,
            user,
            port,
            options,
        }
    }

    /// `ssh` arguments for an invocation: `-o`s first, then the destination (a URI when it has a port).
    fn ssh_args(parsed: &Parsed) -> Vec<String> {
        let mut args = Vec::new();
        for (k, v) in &parsed.options {
            args.push("-o".to_string());
            args.push(format!("{k}={v}"));
        }
        let user = parsed.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
        args.push(match parsed.port {
            Some(port) => format!("ssh://{user}{}:{port}", parsed.host),
            None => format!("{user}{}", parsed.host),
        });
        args
    }

    /// The reference environment: a scratch HOME holding the corpus's `home/` tree, and `Local`
    /// built from the same sources OpenSSH uses (the password database, uname).
    pub(in crate::resolve) struct Reference {
        pub(in crate::resolve) lab: Scratch,
        pub(in crate::resolve) local: Local,
    }

    impl Reference {
        pub(in crate::resolve) fn new() -> Reference {
            let lab = Scratch::new("corpus");
            copy_tree(&corpus_dir().join("home"), lab.path());
            let uid: u32 = command_output("id", &["-u"])
                .and_then(|s| s.parse().ok())
                .expect("id -u");
            let user = command_output("id", &["-un"]).expect("id -un");
            let passwd = command_output("getent", &["passwd", &uid.to_string()]).expect("getent passwd");
            let home = PathBuf::from(passwd.split(':').nth(5).expect("passwd home"));
            let hostname = command_output("uname", &["-n"]).expect("uname -n");
            Reference {
                local: Local {
                    user,
                    home,
                    hostname,
                    uid,
                },
                lab,
            }
        }

        fn ssh(&self, case: &Case, args: &[String]) -> std::process::Output {
            Command::new("ssh")
                .env_clear()
                .env("HOME", self.lab.path())
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .envs(case.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("run ssh")
        }
    }

    fn copy_tree(from: &Path, to: &Path) {
        let Ok(entries) = std::fs::read_dir(from) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                std::fs::create_dir_all(&target).expect("mkdir");
                copy_tree(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy fixture");
                set_mode(&target, 0o644);
            }
        }
    }

    /// `key -> lines` for the honoured keys of `ssh -G`-format text.
    fn honoured_lines(text: &str) -> BTreeMap<String, Vec<String>> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in text.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            if Key::ALL.iter().any(|k| k.name() == key) {
                map.entry(key.to_string()).or_default().push(value.to_string());
            }
        }
        map
    }

    /// Identity and certificate files as OpenSSH expands them when it connects (`ssh -v` through a
    /// ProxyCommand that exits at once, so nothing leaves the machine), without the implicit `-cert`
    /// variants OpenSSH also tries.
    fn openssh_key_files(reference: &Reference, case: &Case, args: &[String]) -> (Vec<String>, Vec<String>) {
        let mut full = vec!["-v".to_string(), "-F".to_string(), case.path.display().to_string()];
        full.extend(["-o".to_string(), "ProxyCommand=true".to_string()]);
        full.extend(args.iter().cloned());
        full.push("true".to_string());
        let output = reference.ssh(case, &full);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut identities: Vec<String> = Vec::new();
        let mut certificates = Vec::new();
        for line in stderr.lines() {
            if let Some(rest) = line.strip_prefix("debug1: identity file ") {
                let path = rest.rsplit_once(" type ").map_or(rest, |(p, _)| p).to_string();
                let implicit = path
                    .strip_suffix("-cert")
                    .is_some_and(|base| identities.last().is_some_and(|l| l == base));
                if !implicit {
                    identities.push(path);
                }
            } else if let Some(rest) = line.strip_prefix("debug1: certificate file ") {
                certificates.push(rest.rsplit_once(" type ").map_or(rest, |(p, _)| p).to_string());
            }
        }
        (identities, certificates)
    }

    fn reference_openssh_available() -> bool {
        let required = std::env::var_os("SQLTUN_REQUIRE_SSH_G").is_some();
        let version = Command::new("ssh")
            .arg("-V")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
        let ok = version
            .as_deref()
            .is_some_and(|v| v.starts_with("OpenSSH_9.2p1 Debian"));
        assert!(
            ok || !required,
            "SQLTUN_REQUIRE_SSH_G is set but `ssh -V` is {version:?}, not OpenSSH_9.2p1 Debian"
        );
        ok
    }

    /// Tallies of a corpus run.
    #[derive(Debug, Default)]
    struct Tally {
        cases: usize,
        invocations: usize,
        agreeing: usize,
        deliberate: Vec<String>,
        failures: Vec<String>,
    }

    fn run_corpus() -> Tally {
        let reference = Reference::new();
        let mut tally = Tally::default();
        for case in load_corpus() {
            tally.cases += 1;
            let local = &reference.local;
            // What ssh sees: HOME is the scratch home, plus the case's variables.
            let mut env: BTreeMap<String, String> = case.env.iter().cloned().collect();
            env.insert("HOME".to_string(), reference.lab.path().display().to_string());
            let lookup = |name: &str| env.get(name).cloned();
            for invocation in &case.invocations {
                tally.invocations += 1;
                let at = format!("{}:{} ({})", case.name, invocation.line, invocation.args.join(" "));
                let parsed = parse_invocation(&invocation.args);
                let q = Query {
                    host: &parsed.host,
                    user: parsed.user.as_deref(),
                    port: parsed.port,
                    options: &parsed.options,
                    config: ConfigChoice::File(&case.path),
                };
                let ours = resolve_with_env(&q, local, &lookup);
                let args = ssh_args(&parsed);
                let mut g_args = vec!["-G".to_string(), "-F".to_string(), case.path.display().to_string()];
                g_args.extend(args.iter().cloned());
                let theirs = reference.ssh(&case, &g_args);
                let theirs_ok = theirs.status.success();
                let theirs_text = String::from_utf8_lossy(&theirs.stdout).into_owned();
                let theirs_err = String::from_utf8_lossy(&theirs.stderr).into_owned();
                let failure = match (&invocation.expect, &ours) {
                    (Expect::Agree, Ok(resolved)) if theirs_ok => {
                        let mine = honoured_lines(&resolved.to_ssh_g());
                        let reference_lines = honoured_lines(&theirs_text);
                        let mut diffs = Vec::new();
                        for key in Key::ALL {
                            let a = mine.get(key.name());
                            let b = reference_lines.get(key.name());
                            if a != b {
                                diffs.push(format!("{}: ours {a:?}, ssh -G {b:?}", key.name()));
                            }
                        }
                        let (ids, certs) = openssh_key_files(&reference, &case, &args);
                        if resolved.all("identityfile") != ids {
                            diffs.push(format!(
                                "identity files: ours {:?}, ssh {ids:?}",
                                resolved.all("identityfile")
                            ));
                        }
                        if resolved.all("certificatefile") != certs {
                            diffs.push(format!(
                                "certificate files: ours {:?}, ssh {certs:?}",
                                resolved.all("certificatefile")
                            ));
                        }
                        (!diffs.is_empty()).then(|| diffs.join("; "))
                    }
                    (Expect::Agree, Ok(_)) => Some(format!("ssh -G failed: {}", theirs_err.trim())),
                    (Expect::Agree, Err(e)) => Some(format!("we failed: {}", e.message())),
                    (Expect::BothFail(text), Err(e)) if e.message().contains(text.as_str()) => {
                        (theirs_ok).then(|| "ssh -G succeeded".to_string())
                    }
                    (Expect::FailsEarlier(text, openssh), Err(e)) if e.message().contains(text.as_str()) => {
                        let mut full = vec!["-v".to_string(), "-F".to_string(), case.path.display().to_string()];
                        full.extend(["-o".to_string(), "ProxyCommand=true".to_string()]);
                        full.extend(args.iter().cloned());
                        full.push("true".to_string());
                        let connect = reference.ssh(&case, &full);
                        let stderr = String::from_utf8_lossy(&connect.stderr);
                        if !theirs_ok {
                            Some(format!("ssh -G failed: {}", theirs_err.trim()))
                        } else if !stderr.contains(openssh.as_str()) {
                            Some(format!(
                                "ssh did not fail with '{openssh}' when connecting: {}",
                                stderr.trim()
                            ))
                        } else {
                            None
                        }
                    }
                    (Expect::Deliberate(text, reason), Err(e)) if e.message().contains(text.as_str()) => {
                        if theirs_ok {
                            tally.deliberate.push(format!("{at}: {reason}"));
                            None
                        } else {
                            Some(format!("marked deliberate but ssh -G fails too: {}", theirs_err.trim()))
                        }
                    }
                    (_, Err(e)) => Some(format!("our error does not match: {}", e.message())),
                    (_, Ok(_)) => Some("we resolved but should have failed".to_string()),
                };
                match failure {
                    None => {
                        if !matches!(invocation.expect, Expect::Deliberate(..)) {
                            tally.agreeing += 1;
                        }
                    }
                    Some(why) => tally.failures.push(format!("{at}: {why}")),
                }
            }
        }
        tally
    }

    /// The point of this module: for every case in `tests/ssh_config/`, sqltun resolves each honoured
    /// directive exactly as `ssh -G` does (and expands key paths as OpenSSH does when connecting),
    /// or fails where OpenSSH fails, except for the deliberate differences listed in the module docs.
    /// Runs only where the reference OpenSSH (9.2p1 Debian) is installed, since defaults differ between
    /// versions; set SQLTUN_REQUIRE_SSH_G=1 (CI) to make its absence a failure.
    #[test]
    fn corpus_agrees_with_ssh_g() {
        if !reference_openssh_available() {
            return;
        }
        let tally = run_corpus();
        assert!(tally.cases >= 25, "the corpus has only {} cases", tally.cases);
        assert!(
            tally.failures.is_empty(),
            "{} of {} invocations disagree with OpenSSH:\n{}",
            tally.failures.len(),
            tally.invocations,
            tally.failures.join("\n")
        );
        assert_eq!(tally.agreeing + tally.deliberate.len(), tally.invocations);
        if let Some(path) = std::env::var_os("SQLTUN_SSH_CONFIG_REPORT") {
            let report = format!(
                "cases {}\ninvocations {}\nagreeing {}\ndeliberate {}\n{}\n",
                tally.cases,
                tally.invocations,
                tally.agreeing,
                tally.deliberate.len(),
                tally.deliberate.join("\n")
            );
            std::fs::write(path, report).expect("write report");
        }
    }

    /// Every keyword in our table is one OpenSSH knows, and a made-up one is not: otherwise we would
    /// accept configs OpenSSH rejects, or the reverse.
    #[test]
    fn keyword_table_matches_openssh() {
        if !reference_openssh_available() {
            return;
        }
        let mut unknown_to_openssh = Vec::new();
        for (keyword, _) in KEYWORDS {
            if matches!(*keyword, "host" | "match" | "include") {
                continue;
            }
            let output = Command::new("ssh")
                .args(["-G", "-F", "none", "-o", &format!("{keyword}=x"), "h"])
                .stdin(Stdio::null())
                .output()
                .expect("run ssh");
            if String::from_utf8_lossy(&output.stderr).contains("Bad configuration option") {
                unknown_to_openssh.push(*keyword);
            }
        }
        assert!(
            unknown_to_openssh.is_empty(),
            "OpenSSH does not know {unknown_to_openssh:?}"
        );
        let output = Command::new("ssh")
            .args(["-G", "-F", "none", "-o", "sqltunmadeup=x", "h"])
            .output()
            .expect("run ssh");
        assert!(String::from_utf8_lossy(&output.stderr).contains("Bad configuration option"));
    }
}
