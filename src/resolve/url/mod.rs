//! Database URLs for `--db`, the `+ssh` URLs TablePlus and TablePro use for a tunnelled connection, and the
//! environment a database client reads. Pure functions of `&str`: nothing here does IO.
//!
//! Percent-encoding is checked but kept as typed, so the URL handed back (pointing at the local end of the
//! tunnel) differs from the user's only in host and port. Error messages quote the input with everything
//! that could be a password masked.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;

use crate::plan::Target;
use crate::resolve::dest::{Destination, NameKind, check_name, parse_destination, printable};
use crate::secret::Secret;

pub(crate) const SUPPORTED: &str =
    "postgres, postgresql, mysql, mariadb, redis, rediss, mongodb, sqlserver, clickhouse";
const SSH_FORM: &str =
    "postgres+ssh://[ssh_user@]ssh_host[:port]/[db_user[:db_pass]@]db_host[:db_port][/db_name][?params]";

/// Query keys whose values are secrets, masked wherever a URL is shown (libpq, JDBC, redis-py, ClickHouse
/// and MySQL clients all accept a password as a parameter).
const SECRET_KEYS: [&str; 5] = ["password", "pwd", "passwd", "pass", "sslpassword"];

/// Parameters TablePlus and TablePro put in their URLs for their own window (colour, tag, safe mode, driver,
/// TLS dropdown index). They mean nothing to a database, and libpq refuses unknown URI parameters, so they
/// are left out of the database URL.
const GUI_ONLY_KEYS: [&str; 9] = [
    "statuscolor",
    "env",
    "enviroment",
    "environment",
    "tlsmode",
    "safemodelevel",
    "advancedsafemodelevel",
    "driverversion",
    "sshnoauth",
];

/// A URL scheme sqltun reads; the name is kept so a rewritten URL uses the spelling the user gave.
#[derive(Debug, Clone, PartialEq, Eq, Copy)]
pub enum Scheme {
    Postgres,
    Postgresql,
    Mysql,
    Mariadb,
    Redis,
    Rediss,
    Mongodb,
    Sqlserver,
    Clickhouse,
}

/// The client family of a scheme: which environment variables its clients read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Postgres,
    Mysql,
    Redis,
    Mongodb,
    Sqlserver,
    Clickhouse,
}

impl Scheme {
    const ALL: [Scheme; 9] = [
        Scheme::Postgres,
        Scheme::Postgresql,
        Scheme::Mysql,
        Scheme::Mariadb,
        Scheme::Redis,
        Scheme::Rediss,
        Scheme::Mongodb,
        Scheme::Sqlserver,
        Scheme::Clickhouse,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Postgres => "postgres",
            Scheme::Postgresql => "postgresql",
            Scheme::Mysql => "mysql",
            Scheme::Mariadb => "mariadb",
            Scheme::Redis => "redis",
            Scheme::Rediss => "rediss",
            Scheme::Mongodb => "mongodb",
            Scheme::Sqlserver => "sqlserver",
            Scheme::Clickhouse => "clickhouse",
        }
    }

    pub fn default_port(&self) -> u16 {
        match self {
            Scheme::Postgres | Scheme::Postgresql => 5432,
            Scheme::Mysql | Scheme::Mariadb => 3306,
            Scheme::Redis | Scheme::Rediss => 6379,
            Scheme::Mongodb => 27017,
            Scheme::Sqlserver => 1433,
            // ClickHouse also serves HTTP on 8123, but `clickhouse://` URLs are read by its native-protocol
            // clients (clickhouse-client, clickhouse-go, clickhouse-rs), whose default port is 9000.
            Scheme::Clickhouse => 9000,
        }
    }

    /// The scheme a plain `host:port` target most likely speaks, from its well-known port (ClickHouse's
    /// 9000 is left out: too many other services use it). The one table sqltun guesses from.
    pub fn for_port(port: u16) -> Option<Scheme> {
        [
            Scheme::Postgres,
            Scheme::Mysql,
            Scheme::Redis,
            Scheme::Mongodb,
            Scheme::Sqlserver,
        ]
        .into_iter()
        .find(|s| s.default_port() == port)
    }

    pub fn family(&self) -> Family {
        match self {
            Scheme::Postgres | Scheme::Postgresql => Family::Postgres,
            Scheme::Mysql | Scheme::Mariadb => Family::Mysql,
            Scheme::Redis | Scheme::Rediss => Family::Redis,
            Scheme::Mongodb => Family::Mongodb,
            Scheme::Sqlserver => Family::Sqlserver,
            Scheme::Clickhouse => Family::Clickhouse,
        }
    }

    fn from_name(name: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A database URL split into what the tunnel needs (the target) and what is handed back to the client
/// unchanged (user, password, database, parameters).
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    pub scheme: Scheme,
    /// The user name as typed, percent-encoding included; [`DbUrl::user_name`] decodes it.
    pub user: Option<String>,
    /// The password as typed, percent-encoding included; [`DbUrl::password_plain`] decodes it.
    pub password: Option<Secret>,
    /// The database host as seen from the last hop; an IPv6 literal without its brackets.
    pub host: String,
    /// The port given, else the scheme's default.
    pub port: u16,
    pub explicit_port: bool,
    /// Everything after `host[:port]` exactly as typed: path, query and fragment, or SQL Server's
    /// `;key=value` parameters. It may hold a `password=` parameter: show it only through [`DbUrl::redacted`].
    pub rest: String,
}

impl DbUrl {
    /// The database as seen from the last hop: what the tunnel forwards to.
    pub fn target(&self) -> Target {
        Target {
            host: self.host.clone(),
            port: self.port,
        }
    }

    /// The same URL pointing at the local end of the tunnel (user, password, database, parameters kept).
    ///
    /// The password is included: for stdout or a child's environment only, never a log. TLS schemes stay
    /// as they are (`rediss://` stays `rediss://`, `sslmode=verify-full` stays): TLS then runs end to end
    /// through the tunnel, and the server's certificate names the database host, not the local address, so
    /// the client must check it against the original name (redis-cli `--sni`, libpq `sslmode=verify-ca`)
    /// or be told not to verify the name.
    ///
    /// A MongoDB URL gets `directConnection=true` (unless it has it, or `loadBalanced=true`): without it
    /// a driver asks the server it reaches for the deployment's members and connects to each at the
    /// address it advertises, straight past the tunnel.
    pub fn rewritten(&self, local_host: &str, local_port: u16) -> String {
        let password = self.password.as_ref().map(Secret::expose);
        let rest = match self.scheme.family() {
            Family::Mongodb => with_direct_connection(&self.rest),
            _ => self.rest.clone(),
        };
        self.render(&bracketed(local_host), Some(local_port), password, &rest)
    }

    /// [`DbUrl::rewritten`] without the password (the user stays) and with any `password=` parameter
    /// masked: for output that ends up in logs (`--output json`).
    pub fn rewritten_without_password(&self, local_host: &str, local_port: u16) -> String {
        self.render(
            &bracketed(local_host),
            Some(local_port),
            None,
            &redact_params(&self.rest),
        )
    }

    /// For logs: the password replaced by `***` (and any `password=` parameter too).
    pub fn redacted(&self) -> String {
        let password = self.password.as_ref().map(|_| "***");
        let port = self.explicit_port.then_some(self.port);
        self.render(&bracketed(&self.host), port, password, &redact_params(&self.rest))
    }

    /// The database name, percent-decoded: the first path segment, or for SQL Server the `database` /
    /// `databaseName` parameter (its path names an instance, not a database).
    pub fn database(&self) -> Option<String> {
        if self.scheme == Scheme::Sqlserver {
            return params(&self.rest)
                .filter(|(k, _)| k.eq_ignore_ascii_case("database") || k.eq_ignore_ascii_case("databaseName"))
                .map(|(_, v)| decode_lossy(v))
                .find(|d| !d.is_empty());
        }
        let path = self.rest.strip_prefix('/')?;
        let segment = &path[..path.find(['/', '?', '#']).unwrap_or(path.len())];
        (!segment.is_empty()).then(|| decode_lossy(segment))
    }

    /// The user name, percent-decoded.
    pub fn user_name(&self) -> Option<String> {
        self.user.as_deref().map(decode_lossy)
    }

    /// The password, percent-decoded (what the database checks).
    pub fn password_plain(&self) -> Option<Secret> {
        self.password.as_ref().map(|p| Secret::new(decode_lossy(p.expose())))
    }

    /// The user info is written with any unencoded `@` in it as `%40`: the parser above takes the last `@`
    /// as the end of the user info, but libpq takes the first, so `postgres://u:x@evil,@db` handed back as
    /// typed would make libpq read host `evil` (and a list of hosts after it) instead of the tunnel.
    fn render(&self, host: &str, port: Option<u16>, password: Option<&str>, rest: &str) -> String {
        let mut out = format!("{}://", self.scheme.name());
        let encoded = |text: &str| text.replace('@', "%40");
        match (self.user.as_deref(), password) {
            (None, None) => {}
            (Some(user), None) => {
                out.push_str(&encoded(user));
                out.push('@');
            }
            (user, Some(password)) => {
                out.push_str(&encoded(user.unwrap_or("")));
                out.push(':');
                out.push_str(&encoded(password));
                out.push('@');
            }
        }
        out.push_str(host);
        if let Some(port) = port {
            out.push(':');
            out.push_str(&port.to_string());
        }
        out.push_str(rest);
        out
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Written by hand so a `password=` parameter in `rest` never reaches a log through `{:?}`.
impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbUrl")
            .field("scheme", &self.scheme)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("explicit_port", &self.explicit_port)
            .field("rest", &redact_params(&self.rest))
            .finish()
    }
}

/// Whether `input` has the shape `scheme://…` (so `--db` should read it as a URL, not `host:port`).
/// `jdbc:sqlserver://` counts, so that it gets the URL parser's hint rather than a host:port error.
pub fn looks_like_url(input: &str) -> bool {
    input.trim().split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-' | ':'))
    })
}

/// Parse a database URL: `scheme://[user[:password]@]host[:port][/path][?query][#fragment]`.
/// The error names the input with its password masked and says what to do.
pub fn parse_db_url(input: &str) -> Result<DbUrl, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(format!(
            "the database URL is empty: give one like postgres://user@db.internal:5432/app ({SUPPORTED}), or host:port"
        ));
    }
    let fail = |msg: String| format!("`{}`: {msg}", redact_input(trimmed));
    check_text(trimmed).map_err(fail)?;
    let (scheme, after) = split_scheme(trimmed).map_err(fail)?;
    parse_after(scheme, after).map_err(fail)
}

/// A TablePlus / TablePro SSH-tunnel URL: the SSH server, the database as seen from it, and the
/// app's own options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshUrl {
    /// The SSH server, as `--ssh` would take it (`original` is the SSH part as typed).
    pub ssh: Destination,
    /// The database URL without `+ssh`: `rest` is `/db_name` plus the parameters meant for the database.
    pub db: DbUrl,
    pub use_private_key: Option<bool>,
    pub use_agent: Option<bool>,
    /// `agentSocket`, percent-decoded; it may start with `~`.
    pub agent_socket: Option<PathBuf>,
    /// `name`: the connection's label in the app.
    pub name: Option<String>,
    /// Names of the app-only parameters left out of the database URL (e.g. `tLSMode`), for a log line.
    pub ignored_params: Vec<String>,
}

/// Whether `input` is a `scheme+ssh://` URL.
pub fn is_ssh_url(input: &str) -> bool {
    input
        .trim()
        .split_once("://")
        .is_some_and(|(scheme, _)| scheme.to_ascii_lowercase().ends_with("+ssh"))
}

/// Parse `scheme+ssh://[ssh_user@]ssh_host[:port]/[db_user[:db_pass]@]db_host[:db_port][/db_name][?params]`
/// for postgres, postgresql, mysql and mariadb. An empty `db_host` means `127.0.0.1` as seen from the SSH
/// server, as TablePro documents (and as TablePlus exports a connection whose host field was left empty).
pub fn parse_ssh_url(input: &str) -> Result<SshUrl, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(format!("the +ssh URL is empty: the form is {SSH_FORM}"));
    }
    let fail = |msg: String| format!("`{}`: {msg}", redact_input(trimmed));
    check_text(trimmed).map_err(fail)?;
    let Some((name, after)) = trimmed.split_once("://") else {
        return Err(fail(format!("not a URL; the form is {SSH_FORM}")));
    };
    let lower = name.to_ascii_lowercase();
    let Some(base) = lower.strip_suffix("+ssh") else {
        return Err(fail(format!("not a +ssh URL; the form is {SSH_FORM}")));
    };
    let scheme = match Scheme::from_name(base) {
        Some(s @ (Scheme::Postgres | Scheme::Postgresql | Scheme::Mysql | Scheme::Mariadb)) => s,
        Some(_) => {
            return Err(fail(format!(
                "`{base}+ssh://` is not supported (+ssh URLs are read for postgres, postgresql, mysql and mariadb); give the SSH server with --ssh and the database as --db {base}://host:port"
            )));
        }
        None if is_scheme_text(base) => {
            return Err(fail(format!(
                "unknown scheme `{}+ssh`: +ssh URLs are read for postgres, postgresql, mysql and mariadb",
                printable(base)
            )));
        }
        None => {
            return Err(fail(format!(
                "the text before `://` is not a scheme; the form is {SSH_FORM}"
            )));
        }
    };

    let ssh_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (ssh_text, db_text) = match after[ssh_end..].strip_prefix('/') {
        Some(db_text) => (&after[..ssh_end], db_text),
        None => {
            return Err(fail(format!(
                "no `/` after the SSH server, so there is no database part; the form is {SSH_FORM}"
            )));
        }
    };
    if ssh_text.is_empty() {
        return Err(fail(format!(
            "the SSH server before the first `/` is empty; the form is {SSH_FORM}"
        )));
    }
    if let Some(at) = ssh_text.rfind('@')
        && ssh_text[..at].contains(':')
    {
        return Err(fail(
            "the SSH part holds a password, which sqltun never reads from a URL (it would show in ps and shell history); remove it and set SQLTUN_SSH_PASSWORD or use --password-file".into(),
        ));
    }
    // A password with an unencoded `/` leaves `user:pass…` here without an `@`: refuse any port that is
    // not digits without quoting it (parse_destination's messages quote their input).
    let ssh_hostport = ssh_text.rsplit_once('@').map_or(ssh_text, |(_, h)| h);
    if !ssh_hostport.starts_with('[')
        && ssh_hostport.parse::<Ipv6Addr>().is_err()
        && ssh_hostport
            .split_once(':')
            .is_some_and(|(_, p)| !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(fail(
            "the SSH server's port is not a number from 1 to 65535 (a password does not belong in the URL: set SQLTUN_SSH_PASSWORD)".into(),
        ));
    }
    let mut ssh = parse_destination(ssh_text).map_err(|e| fail(format!("the SSH server: {e}")))?;
    if let Some(user) = ssh.user.take() {
        let decoded = decode_utf8(&user)
            .ok_or_else(|| fail("the SSH user has a `%` not followed by two hex digits (write `%` as %25)".into()))?;
        // Checked again once decoded: `%0A` or `%3B` pass the check of the text as typed.
        check_name(NameKind::User, &decoded, "the SSH user (percent-decoded)").map_err(fail)?;
        ssh.user = Some(decoded);
    }

    // The database part: [db_user[:db_pass]@]db_host[:db_port][/db_name][?query][#fragment].
    let tail_start = db_text.find(['?', '#']).unwrap_or(db_text.len());
    let (db_main, tail) = db_text.split_at(tail_start);
    let (query, fragment) = match tail.find('#') {
        Some(i) => tail.split_at(i),
        None => (tail, ""),
    };
    let query = query.strip_prefix('?').unwrap_or(query);

    let mut use_private_key = None;
    let mut use_agent = None;
    let mut agent_socket = None;
    let mut label = None;
    let mut ignored_params = Vec::new();
    let mut kept = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key.to_ascii_lowercase().as_str() {
            "useprivatekey" => use_private_key = Some(flag(key, value).map_err(fail)?),
            "usesshagent" => use_agent = Some(flag(key, value).map_err(fail)?),
            "agentsocket" => {
                let path = decode_utf8(value).ok_or_else(|| {
                    fail(format!(
                        "`{}` is not valid percent-encoding (write `%` as %25)",
                        printable(key)
                    ))
                })?;
                agent_socket = (!path.is_empty()).then(|| PathBuf::from(path));
            }
            "name" => {
                // Form-encoded, as browsers and TablePro write it: `+` is a space.
                let text = decode_utf8(&value.replace('+', " ")).ok_or_else(|| {
                    fail(format!(
                        "`{}` is not valid percent-encoding (write `%` as %25)",
                        printable(key)
                    ))
                })?;
                label = (!text.is_empty()).then_some(text);
            }
            k if GUI_ONLY_KEYS.contains(&k) => ignored_params.push(key.to_string()),
            _ => kept.push(param),
        }
    }

    let authority_end = db_main.find('/').unwrap_or(db_main.len());
    let (authority, path) = db_main.split_at(authority_end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    let default_host = if hostport.is_empty() || hostport.starts_with(':') {
        "127.0.0.1"
    } else {
        ""
    };
    let mut rebuilt = format!("{userinfo}{default_host}{hostport}{path}");
    if !kept.is_empty() {
        rebuilt.push('?');
        rebuilt.push_str(&kept.join("&"));
    }
    rebuilt.push_str(fragment);
    let db = parse_after(scheme, &rebuilt).map_err(|e| fail(format!("the database part: {e}")))?;

    Ok(SshUrl {
        ssh,
        db,
        use_private_key,
        use_agent,
        agent_socket,
        name: label,
        ignored_params,
    })
}

/// The environment a client of `url`'s scheme (else of `family`) reads to reach `host:port`, the local end
/// of the tunnel, plus `DATABASE_URL` (the rewritten URL) when there is a URL. When both are given, the
/// URL's scheme decides the family.
///
/// Pass the bind address itself (`127.0.0.1`, `::1`): the mysql client takes `localhost` to mean its Unix
/// socket, so `localhost` is turned into `127.0.0.1` for it.
pub fn client_env(url: Option<&DbUrl>, family: Option<Family>, host: &str, port: u16) -> Vec<(String, String)> {
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |key: &str, value: String| env.push((key.to_string(), value));
    let user = url.and_then(DbUrl::user_name);
    let password = url.and_then(DbUrl::password_plain);
    match url.map(|u| u.scheme.family()).or(family) {
        Some(Family::Postgres) => {
            set("PGHOST", host.to_string());
            set("PGPORT", port.to_string());
            if let Some(user) = user {
                set("PGUSER", user);
            }
            if let Some(db) = url.and_then(DbUrl::database) {
                set("PGDATABASE", db);
            }
            if let Some(password) = password {
                set("PGPASSWORD", password.expose().to_string());
            }
        }
        Some(Family::Mysql) => {
            let host = if host.eq_ignore_ascii_case("localhost") {
                "127.0.0.1"
            } else {
                host
            };
            set("MYSQL_HOST", host.to_string());
            set("MYSQL_TCP_PORT", port.to_string());
            // Deprecated since MySQL 8.0 but still read by the mysql and mariadb clients; set only when the
            // user already put the password in the URL, so no secret is introduced that was not there.
            if let Some(password) = password {
                set("MYSQL_PWD", password.expose().to_string());
            }
        }
        Some(Family::Redis) => {
            // redis-cli sends REDISCLI_AUTH as `AUTH <password>`, i.e. for the `default` user; with another
            // ACL user it would fail, so then the user must pass `-u "$DATABASE_URL"` instead.
            if let Some(password) = password
                && user.as_deref().is_none_or(|u| u.is_empty() || u == "default")
            {
                set("REDISCLI_AUTH", password.expose().to_string());
            }
        }
        Some(Family::Mongodb | Family::Sqlserver | Family::Clickhouse) | None => {}
    }
    if let Some(url) = url {
        set("DATABASE_URL", url.rewritten(host, port));
    }
    env
}

/// Refuse whitespace and control characters anywhere (the input is already trimmed).
fn check_text(text: &str) -> Result<(), String> {
    if text.chars().any(char::is_control) {
        return Err("it contains a control character".into());
    }
    if text.chars().any(char::is_whitespace) {
        return Err("it contains whitespace: percent-encode a space as %20, also in a password".into());
    }
    Ok(())
}

/// The scheme and what follows `://`; unknown schemes get the list of supported ones or a specific hint.
fn split_scheme(text: &str) -> Result<(Scheme, &str), String> {
    let Some((name, after)) = text.split_once("://") else {
        return Err(format!(
            "not a database URL: expected scheme://host… with a scheme among {SUPPORTED}"
        ));
    };
    let lower = name.to_ascii_lowercase();
    if let Some(scheme) = Scheme::from_name(&lower) {
        return Ok((scheme, after));
    }
    let known = |s: &str| Scheme::from_name(s).is_some();
    Err(match lower.as_str() {
        "" => "the scheme before `://` is empty".into(),
        "mongodb+srv" => "mongodb+srv:// has the driver find the servers by a DNS SRV lookup and connect to every member of the replica set directly, past the tunnel; give one member as mongodb://host:27017 (`dig SRV _mongodb._tcp.HOST` lists them): sqltun hands it out with directConnection=true".into(),
        s if s.ends_with("+ssh") => "a +ssh URL also names the SSH server, which --db does not take; give the SSH server with --ssh and the database URL without +ssh".into(),
        s if s.strip_prefix("jdbc:").is_some_and(known) => {
            format!("drop the `jdbc:` prefix: sqltun reads {}:// URLs", &s[5..])
        }
        "mssql" => "write sqlserver:// for SQL Server".into(),
        "ch" => "write clickhouse:// for ClickHouse".into(),
        s if is_scheme_text(s) => {
            format!(
                "unknown scheme `{}`: sqltun reads {SUPPORTED} URLs; for another database give host:port",
                printable(s)
            )
        }
        _ => format!("the text before `://` is not a URL scheme; sqltun reads {SUPPORTED} URLs"),
    })
}

/// Parse what follows `scheme://`. Errors do not quote the input: the caller prefixes it, masked.
fn parse_after(scheme: Scheme, after: &str) -> Result<DbUrl, String> {
    let sqlserver = scheme == Scheme::Sqlserver;
    // SQL Server's JDBC form puts `;key=value` parameters straight after host:port.
    let authority_end = if sqlserver {
        after.find(['/', '?', '#', ';'])
    } else {
        after.find(['/', '?', '#'])
    }
    .unwrap_or(after.len());
    let (authority, rest) = after.split_at(authority_end);
    let path_end = if sqlserver {
        rest.find(['?', '#', ';'])
    } else {
        rest.find(['?', '#'])
    }
    .unwrap_or(rest.len());
    let path = &rest[..path_end];

    if path.contains('@') {
        return Err("an `@` after the host: percent-encode `/`, `?` and `#` in a password (%2F, %3F, %23) and `@` in a database name (%40)".into());
    }
    if percent_decode(path).is_none() {
        return Err("the path has a `%` not followed by two hex digits (write `%` as %25)".into());
    }

    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (user, password) = match userinfo.map(|ui| ui.split_once(':').map_or((ui, None), |(u, p)| (u, Some(p)))) {
        None => (None, None),
        Some((user, password)) => {
            if decode_utf8(user).is_none() {
                return Err("the user name has a `%` not followed by two hex digits, or is not UTF-8 once decoded (write `%` as %25)".into());
            }
            if password.is_some_and(|p| decode_utf8(p).is_none()) {
                return Err("the password has a `%` not followed by two hex digits, or is not UTF-8 once decoded (write `%` as %25)".into());
            }
            (
                Some(user).filter(|u| !u.is_empty()).map(String::from),
                password.filter(|p| !p.is_empty()).map(|p| Secret::new(p.to_string())),
            )
        }
    };

    let (host, port) = host_and_port(hostport, scheme)?;
    if sqlserver && port.is_none() && !matches!(path, "" | "/") {
        return Err(named_instance());
    }
    refuse_misread_tail(scheme, rest)?;
    if let Some((key, _)) = params(rest).find(|(k, _)| is_overriding(scheme, k)) {
        return Err(format!(
            "the `{}` parameter would take the client past the tunnel; put the database host and port in the URL's host part",
            printable(key)
        ));
    }

    if scheme.family() == Family::Mongodb {
        refuse_discovery(rest)?;
    }

    Ok(DbUrl {
        scheme,
        user,
        password,
        host,
        port: port.unwrap_or(scheme.default_port()),
        explicit_port: port.is_some(),
        rest: rest.to_string(),
    })
}

/// Split `host[:port]` or `[v6]` / `[v6]:port`; the host is checked, the port must be 1-65535.
/// Messages quote nothing from the input: a password with an unencoded `/` can end up where a port is
/// expected.
fn host_and_port(hostport: &str, scheme: Scheme) -> Result<(String, Option<u16>), String> {
    if hostport.contains(',') {
        return Err(
            "several hosts: sqltun forwards one local port to one host; give the one to reach (e.g. the primary)"
                .into(),
        );
    }
    if hostport.is_empty() || hostport.starts_with(':') {
        return Err("the host is empty; give the database host as seen from the last SSH hop".into());
    }
    if let Some(inner) = hostport.strip_prefix('[') {
        let (v6, after) = inner.split_once(']').ok_or("a `[` without its closing `]`")?;
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err("the text in brackets is not an IPv6 address".into());
        }
        let port = match after {
            "" => None,
            a => Some(port_number(a.strip_prefix(':').ok_or("only `:port` may follow `]`")?)?),
        };
        return Ok((v6.to_string(), port));
    }
    let (host, port) = match hostport.split_once(':') {
        None => (hostport, None),
        Some(_) if hostport.parse::<Ipv6Addr>().is_ok() => {
            return Err("an IPv6 address goes in brackets: [addr] or [addr]:port".into());
        }
        Some((_, p)) if p.contains(':') => {
            return Err("more than one `:` after the host; give host:port (an IPv6 address goes in brackets)".into());
        }
        Some((h, p)) => (h, Some(port_number(p)?)),
    };
    if host.contains('\\') && scheme == Scheme::Sqlserver {
        return Err(named_instance());
    }
    if host.starts_with('-') {
        return Err("a host may not start with `-`".into());
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err("the host is not a valid name or address: letters, digits, `.`, `-` and `_` (an internationalised name in its xn-- form, an IPv6 address in brackets)".into());
    }
    Ok((host.to_string(), port))
}

fn port_number(text: &str) -> Result<u16, String> {
    if text.is_empty() {
        return Err("the port after `:` is empty".into());
    }
    match text.parse::<u16>() {
        Ok(0) => Err("port 0 is not a usable port".into()),
        Ok(port) if text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err("the port is not a number from 1 to 65535".into()),
    }
}

/// Parameters that would make the client connect somewhere other than the URL's host and port, so that the
/// URL handed back (pointing at the tunnel) would bypass it.
fn is_overriding(scheme: Scheme, key: &str) -> bool {
    let keys: &[&str] = match scheme.family() {
        // libpq, pgx and node-postgres let these override the host part; a `service` entry in
        // pg_service.conf can set host/hostaddr too.
        Family::Postgres => &["host", "hostaddr", "port", "service"],
        // The JDBC driver's names and its synonyms `server` and `port`, go-mssqldb's `server` and `port`, and
        // the failover partner both drivers dial directly when the first server does not answer.
        Family::Sqlserver => &[
            "servername",
            "portnumber",
            "instancename",
            "server",
            "port",
            "failoverpartner",
            "failoverport",
        ],
        _ => &[],
    };
    // Compared as typed and percent-decoded: libpq and Go's URL parser decode keys (`h%6Fst` is `host`),
    // the JDBC driver does not; refusing on either reading covers both.
    let raw = key.to_ascii_lowercase();
    let decoded = decode_lossy(key).to_ascii_lowercase();
    keys.contains(&raw.as_str()) || keys.contains(&decoded.as_str())
}

/// Refuse what follows `host[:port]` when a client would read part of it as a user, host or port.
///
/// libpq and the JDBC driver know no fragments: to them a `#` right after `host:port` is part of the port,
/// and to libpq a `,` after it starts another host (`postgres://db#,evil/app`). libpq also takes the first
/// `@` before any `/` as the end of a user name and password, even inside the query, so
/// `postgres://db?x=@evil` would reach `evil`. Go's URL parser (go-mssqldb, sqlcmd) takes the last `@`
/// before the first `/`, `?` or `#` as the end of the user info, so SQL Server's `;` parameters may not
/// hold one either.
fn refuse_misread_tail(scheme: Scheme, rest: &str) -> Result<(), String> {
    let (hash_reader, at_reader, at_scope) = match scheme.family() {
        Family::Postgres => ("libpq", "libpq", rest.find('/')),
        Family::Sqlserver => ("the JDBC driver", "go-mssqldb (sqlcmd)", rest.find(['/', '?', '#'])),
        _ => return Ok(()),
    };
    if rest.starts_with('#') {
        return Err(format!(
            "a `#` right after the host: {hash_reader} reads it as part of the port, not as the start of a fragment; remove it (percent-encode a `#` in a password as %23)"
        ));
    }
    if rest[..at_scope.unwrap_or(rest.len())].contains('@') {
        return Err(format!(
            "an `@` in the parameters after the host: {at_reader} would read the text before it as a user name and password and connect to the host after it; percent-encode it as %40"
        ));
    }
    Ok(())
}

/// MongoDB parameters that make a driver discover the deployment and connect to its members by the
/// addresses they advertise, which the tunnel does not carry. Option names are case-insensitive (the
/// URI spec), and compared percent-decoded too.
fn refuse_discovery(rest: &str) -> Result<(), String> {
    for (key, value) in params(rest) {
        let name = decode_lossy(key).to_ascii_lowercase();
        if name == "replicaset" {
            return Err(format!(
                "the `{}` parameter has the driver discover the replica set's members and connect to each at the address it advertises, past the tunnel; remove it: sqltun hands out the URL with directConnection=true, which talks to the one member given (give the primary to write)",
                printable(key)
            ));
        }
        if name == "directconnection" && !decode_lossy(value).eq_ignore_ascii_case("true") {
            return Err(format!(
                "`{}={}` has the driver discover the deployment's other members and connect to them directly, past the tunnel; remove it (sqltun hands out the URL with directConnection=true)",
                printable(key),
                printable(value)
            ));
        }
    }
    Ok(())
}

/// A MongoDB URL's path and parameters with `directConnection=true` added, before any fragment, unless
/// they already say `directConnection` (only `true` gets past [`refuse_discovery`]) or
/// `loadBalanced=true` (a load balancer is one address already, and drivers refuse both together).
fn with_direct_connection(rest: &str) -> String {
    let (main, fragment) = rest.split_at(rest.find('#').unwrap_or(rest.len()));
    let set = |key: &str, value: Option<&str>| {
        params(main).any(|(k, v)| {
            decode_lossy(k).eq_ignore_ascii_case(key)
                && value.is_none_or(|want| decode_lossy(v).eq_ignore_ascii_case(want))
        })
    };
    if set("directConnection", None) || set("loadBalanced", Some("true")) {
        return rest.to_string();
    }
    let mut out = main.to_string();
    if !out.contains('?') {
        // The URI spec wants the `/` before the options even without a database.
        if out.is_empty() {
            out.push('/');
        }
        out.push('?');
    } else if !out.ends_with(['?', '&']) {
        out.push('&');
    }
    out.push_str("directConnection=true");
    out.push_str(fragment);
    out
}

/// The URL handed out for a plain `host:port` target reached at `local`: the scheme guessed from the
/// target's well-known port (see [`Scheme::for_port`]), else `tcp://`; for MongoDB with
/// `directConnection=true`, as [`DbUrl::rewritten`] adds it.
pub fn guessed_url(target_port: u16, local: std::net::SocketAddr) -> String {
    match Scheme::for_port(target_port) {
        Some(Scheme::Mongodb) => format!("mongodb://{local}/?directConnection=true"),
        Some(scheme) => format!("{}://{local}", scheme.name()),
        None => format!("tcp://{local}"),
    }
}

fn named_instance() -> String {
    "a SQL Server named instance is found through the SQL Browser service (UDP 1434), which the tunnel cannot carry; give the instance's TCP port: sqlserver://host:port".into()
}

fn flag(key: &str, value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!("`{}` must be true or false", printable(key)))
    }
}

/// Characters a URL scheme is made of (RFC 3986).
fn is_scheme_text(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
}

/// `key=value` parameters after the path: `?a=1&b=2` or SQL Server's `;a=1;b=2`, every one of them.
///
/// A `#` does not end them: libpq reads everything after the `?` as parameters (`?x=#&host=evil` sets
/// `host`), and the JDBC driver everything after the first `;` (`;password={a#b};portNumber=1444` sets
/// `portNumber`). Splitting at every `?`, `&` and `;`, braces or not, finds each parameter those clients
/// see and perhaps a few more (a `;` inside `{…}`): for refusing overrides, too many beats too few.
fn params(rest: &str) -> impl Iterator<Item = (&str, &str)> {
    rest.split(['?', '&', ';']).skip(1).filter_map(|p| p.split_once('='))
}

/// An IPv6 literal in brackets, anything else as it is.
fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The input for an error message, with everything that may be a password masked. A password lies
/// between a `:` and the `@` ending the user info, so the span from the first `:` after `://` to the last
/// `@` is masked: that still holds when a password has an unencoded `/`, `?` or `#` that makes the URL
/// unparsable. It hides more than needed when an `@` appears in the query; a message that hides too much
/// beats one that leaks. Secret parameters are masked too, and the result is [`printable`]: control
/// characters escaped (before `://` as well), long input cut short.
pub(crate) fn redact_input(input: &str) -> String {
    let (head, after) = match input.find("://") {
        Some(i) => input.split_at(i + 3),
        None => ("", input),
    };
    let masked = match (after.find(':'), after.rfind('@')) {
        (Some(colon), Some(at)) if colon < at => format!("{}***{}", &after[..=colon], &after[at..]),
        _ => after.to_string(),
    };
    printable(&format!("{head}{}", redact_params(&masked)))
}

/// `text` with the value of every secret parameter (`password=…`, `pwd=…`, also percent-encoded keys)
/// replaced by `***`. The text before the first `?`, `&`, `;` or `#` is not a parameter and is kept. A
/// secret value runs to the next `&` or `;`, since libpq and the JDBC driver read `#` and `?` as part of a
/// value; JDBC's braced values (`password={a;b}`) are masked up to their closing brace and on to the next
/// `&` or `;`.
fn redact_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    let mut first = true;
    loop {
        let mut end = find_delimiter(text, start);
        let segment = &text[start..end];
        match segment.split_once('=') {
            Some((key, value)) if !first && is_secret_key(key) => {
                out.push_str(key);
                out.push_str("=***");
                let value_start = start + key.len() + 1;
                let braced_end = value
                    .starts_with('{')
                    .then(|| text[value_start..].find('}').map(|close| value_start + close + 1))
                    .flatten()
                    .unwrap_or(value_start);
                end = text[braced_end..]
                    .find(['&', ';'])
                    .map_or(text.len(), |i| braced_end + i);
            }
            _ => out.push_str(segment),
        }
        let Some(delimiter) = text[end..].chars().next() else {
            return out;
        };
        out.push(delimiter);
        start = end + delimiter.len_utf8();
        first = false;
    }
}

fn is_secret_key(key: &str) -> bool {
    let raw = key.to_ascii_lowercase();
    let decoded = decode_lossy(key).to_ascii_lowercase();
    SECRET_KEYS.contains(&raw.as_str()) || SECRET_KEYS.contains(&decoded.as_str())
}

fn find_delimiter(text: &str, from: usize) -> usize {
    text[from..].find(['?', '&', ';', '#']).map_or(text.len(), |i| from + i)
}

/// Percent-decode `s`; `None` when a `%` is not followed by two hex digits.
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

fn decode_utf8(s: &str) -> Option<String> {
    percent_decode(s).and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Decode what the parser already validated; falls back to the text as typed rather than failing.
fn decode_lossy(s: &str) -> String {
    percent_decode(s).map_or_else(|| s.to_string(), |b| String::from_utf8_lossy(&b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(input: &str) -> DbUrl {
        parse_db_url(input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    fn env_of(url: Option<&DbUrl>, family: Option<Family>) -> Vec<(String, String)> {
        client_env(url, family, "127.0.0.1", 54321)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Every scheme PRODUCT.md lists for --db must parse, take its documented default port when none is
    /// given, and keep an explicit one.
    #[test]
    fn every_scheme_with_and_without_port() {
        // SQL Server's path names an instance, so its database goes in a parameter.
        for (scheme, default, tail) in [
            ("postgres", 5432, "/app"),
            ("postgresql", 5432, "/app"),
            ("mysql", 3306, "/app"),
            ("mariadb", 3306, "/app"),
            ("redis", 6379, "/0"),
            ("rediss", 6379, "/0"),
            ("mongodb", 27017, "/app"),
            ("sqlserver", 1433, ";databaseName=app"),
            ("clickhouse", 9000, "/app"),
        ] {
            let bare = url(&format!("{scheme}://db.internal{tail}"));
            assert_eq!(bare.scheme.name(), scheme);
            assert_eq!(bare.scheme.default_port(), default);
            assert_eq!(
                (bare.host.as_str(), bare.port, bare.explicit_port),
                ("db.internal", default, false)
            );
            assert_eq!(bare.rest, tail);
            assert_eq!(bare.redacted(), format!("{scheme}://db.internal{tail}"));

            let with_port = url(&format!("{scheme}://db.internal:4242"));
            assert_eq!((with_port.port, with_port.explicit_port), (4242, true));
            assert_eq!(with_port.target().to_string(), "db.internal:4242");
            assert_eq!(with_port.rest, "");
        }
        // Schemes are case-insensitive (RFC 3986); the rewritten URL uses the canonical spelling.
        assert_eq!(url("PostgreSQL://db/app").scheme, Scheme::Postgresql);
    }

    /// The family decides which client variables `exec` sets.
    #[test]
    fn families() {
        assert_eq!(Scheme::Postgresql.family(), Family::Postgres);
        assert_eq!(Scheme::Mariadb.family(), Family::Mysql);
        assert_eq!(Scheme::Rediss.family(), Family::Redis);
        assert_eq!(Scheme::Clickhouse.family(), Family::Clickhouse);
    }

    /// IPv6 databases are written in brackets; the target keeps the bare address and prints brackets.
    #[test]
    fn ipv6_hosts() {
        let u = url("postgres://app@[fd00::7]:5433/app");
        assert_eq!((u.host.as_str(), u.port), ("fd00::7", 5433));
        assert_eq!(u.target().to_string(), "[fd00::7]:5433");
        assert_eq!(u.redacted(), "postgres://app@[fd00::7]:5433/app");
        assert_eq!(url("redis://[::1]").port, 6379);
        assert!(parse_db_url("postgres://fd00::7/app").unwrap_err().contains("brackets"));
        assert!(
            parse_db_url("postgres://[db.internal]:5432")
                .unwrap_err()
                .contains("IPv6")
        );
        assert!(parse_db_url("postgres://[::1]x").unwrap_err().contains(":port"));
    }

    /// A percent-encoded password (`@` and `:` inside) is split correctly, kept encoded in the URL handed
    /// back, and decoded for the client variables.
    #[test]
    fn percent_encoded_password() {
        let u = url("postgres://app%2Bro:p%40ss%3Aw0rd@db.internal:5432/app");
        assert_eq!(u.user.as_deref(), Some("app%2Bro"));
        assert_eq!(u.user_name().as_deref(), Some("app+ro"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("p%40ss%3Aw0rd"));
        assert_eq!(u.password_plain().as_ref().map(Secret::expose), Some("p@ss:w0rd"));
        assert_eq!(u.host, "db.internal");
        assert_eq!(
            u.rewritten("127.0.0.1", 54321),
            "postgres://app%2Bro:p%40ss%3Aw0rd@127.0.0.1:54321/app"
        );
        // An unencoded `@` in the password is tolerated: the last `@` ends the user info.
        let u = url("postgres://app:p@ss@db.internal/app");
        assert_eq!(
            (u.host.as_str(), u.password_plain().map(|p| p.expose().to_string())),
            ("db.internal", Some("p@ss".into()))
        );
        // `redis://:password@host` (no user) is the usual Redis form.
        let u = url("redis://:hunter2@cache.internal/2");
        assert_eq!((u.user.as_deref(), u.password.is_some()), (None, true));
        assert_eq!(u.rewritten("127.0.0.1", 1), "redis://:hunter2@127.0.0.1:1/2");
    }

    /// The URL handed to the client differs only in host and port: user, password, database, parameters
    /// and fragment survive, an IPv6 local address gets brackets, and a TLS scheme stays TLS.
    #[test]
    fn rewritten_keeps_everything_but_the_address() {
        let u = url("postgresql://app:hunter2@db.internal/app_prod?sslmode=require&application_name=etl#x");
        assert_eq!(
            u.rewritten("127.0.0.1", 54321),
            "postgresql://app:hunter2@127.0.0.1:54321/app_prod?sslmode=require&application_name=etl#x"
        );
        assert_eq!(
            u.rewritten("::1", 54321),
            "postgresql://app:hunter2@[::1]:54321/app_prod?sslmode=require&application_name=etl#x"
        );
        assert_eq!(
            url("rediss://:pw@cache:6380/0").rewritten("127.0.0.1", 7),
            "rediss://:pw@127.0.0.1:7/0"
        );
        assert_eq!(
            url("mysql://root@db").rewritten("127.0.0.1", 7),
            "mysql://root@127.0.0.1:7"
        );
        assert_eq!(
            url("sqlserver://sa:pw@mssql:1433;databaseName=shop;encrypt=true").rewritten("127.0.0.1", 7),
            "sqlserver://sa:pw@127.0.0.1:7;databaseName=shop;encrypt=true"
        );
    }

    /// A MongoDB URL handed out for the local end always says `directConnection=true`, wherever its path,
    /// parameters and fragment leave room for it, so a driver never discovers replica-set members and
    /// connects to them past the tunnel; one that says it already, or uses a load balancer, is kept.
    #[test]
    fn mongodb_rewritten_connects_directly() {
        for (input, rewritten) in [
            ("mongodb://db", "mongodb://127.0.0.1:7/?directConnection=true"),
            ("mongodb://db:27018/", "mongodb://127.0.0.1:7/?directConnection=true"),
            (
                "mongodb://u:pw@db/app",
                "mongodb://u:pw@127.0.0.1:7/app?directConnection=true",
            ),
            (
                "mongodb://db/app?authSource=admin&tls=true",
                "mongodb://127.0.0.1:7/app?authSource=admin&tls=true&directConnection=true",
            ),
            ("mongodb://db/app?", "mongodb://127.0.0.1:7/app?directConnection=true"),
            ("mongodb://db/?w=1&", "mongodb://127.0.0.1:7/?w=1&directConnection=true"),
            (
                "mongodb://db/app#x",
                "mongodb://127.0.0.1:7/app?directConnection=true#x",
            ),
            (
                "mongodb://db/?directConnection=true",
                "mongodb://127.0.0.1:7/?directConnection=true",
            ),
            (
                "mongodb://db/?DIRECTCONNECTION=TRUE",
                "mongodb://127.0.0.1:7/?DIRECTCONNECTION=TRUE",
            ),
            (
                "mongodb://db/?loadBalanced=true",
                "mongodb://127.0.0.1:7/?loadBalanced=true",
            ),
            (
                "mongodb://db/?loadBalanced=false",
                "mongodb://127.0.0.1:7/?loadBalanced=false&directConnection=true",
            ),
        ] {
            assert_eq!(url(input).rewritten("127.0.0.1", 7), rewritten, "{input}");
        }
        // Logs show the URL as given; other schemes are untouched.
        assert_eq!(url("mongodb://db/app").redacted(), "mongodb://db/app");
        assert_eq!(
            url("postgres://db/app").rewritten("127.0.0.1", 7),
            "postgres://127.0.0.1:7/app"
        );
        let env = client_env(Some(&url("mongodb://db/app")), None, "127.0.0.1", 7);
        assert_eq!(
            env,
            pairs(&[("DATABASE_URL", "mongodb://127.0.0.1:7/app?directConnection=true")])
        );
        let local: std::net::SocketAddr = "127.0.0.1:7".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            guessed_url(27017, local),
            "mongodb://127.0.0.1:7/?directConnection=true"
        );
        assert_eq!(guessed_url(5432, local), "postgres://127.0.0.1:7");
        assert_eq!(guessed_url(9, local), "tcp://127.0.0.1:7");
    }

    /// What makes a MongoDB driver discover members and dial them directly is refused with the reason:
    /// `replicaSet` (any case, percent-encoded too), `directConnection` other than true, `mongodb+srv://`.
    #[test]
    fn mongodb_discovery_refused() {
        for (input, needle) in [
            (
                "mongodb://db/app?replicaSet=rs0",
                "`replicaSet` parameter has the driver discover",
            ),
            ("mongodb://db/?replicaset=rs0", "past the tunnel"),
            ("mongodb://db/?w=1&REPLICASET=rs0", "past the tunnel"),
            ("mongodb://db/?replica%53et=rs0", "past the tunnel"),
            ("mongodb://db/?directConnection=false", "`directConnection=false`"),
            ("mongodb://db/?directConnection=", "past the tunnel"),
            ("mongodb+srv://cluster0.example.net/app", "past the tunnel"),
        ] {
            let err = parse_db_url(input).unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
        }
        assert!(parse_db_url("mongodb://db/?directConnection=true&w=1").is_ok());
        // Only MongoDB's drivers read these.
        assert!(parse_db_url("postgres://db/app?replicaSet=rs0").is_ok());
    }

    /// `--output json` ends up in logs: its URL keeps the user and database but no password, in the user
    /// info or in a parameter.
    #[test]
    fn rewritten_without_password_keeps_the_user() {
        let u = url("postgres://app:hunter2@db.internal/app?sslmode=require&password=hunter3");
        assert_eq!(
            u.rewritten_without_password("127.0.0.1", 7),
            "postgres://app@127.0.0.1:7/app?sslmode=require&password=***"
        );
        assert_eq!(
            url("redis://:hunter2@cache/2").rewritten_without_password("127.0.0.1", 7),
            "redis://127.0.0.1:7/2"
        );
    }

    /// Logs and `{}` / `{:?}` show the URL with every password masked, including password parameters.
    #[test]
    fn redacted_hides_passwords() {
        let u = url("postgres://app:hunter2@db.internal:5432/app?sslmode=require&password=hunter3");
        assert_eq!(
            u.redacted(),
            "postgres://app:***@db.internal:5432/app?sslmode=require&password=***"
        );
        assert_eq!(u.to_string(), u.redacted());
        let debug = format!("{u:?}");
        assert!(!debug.contains("hunter"), "{debug}");
        let jdbc = url("sqlserver://mssql:1433;user=sa;Password={se;cr}et};databaseName=shop");
        assert_eq!(
            jdbc.redacted(),
            "sqlserver://mssql:1433;user=sa;Password=***;databaseName=shop"
        );
        assert_eq!(url("redis://:hunter2@cache").redacted(), "redis://:***@cache");
    }

    /// `database()` is what PGDATABASE gets: the decoded first path segment, or SQL Server's parameter.
    #[test]
    fn database_names() {
        assert_eq!(url("postgres://db/my%20app?x=1").database().as_deref(), Some("my app"));
        assert_eq!(url("postgres://db/").database(), None);
        assert_eq!(url("postgres://db").database(), None);
        assert_eq!(
            url("mongodb://db/admin?authSource=admin").database().as_deref(),
            Some("admin")
        );
        assert_eq!(
            url("sqlserver://db:1433;databaseName=shop").database().as_deref(),
            Some("shop")
        );
        assert_eq!(url("sqlserver://db?database=shop").database().as_deref(), Some("shop"));
    }

    /// SQL Server's JDBC form (`;key=value` after host:port) is read; named instances need their TCP port,
    /// because the SQL Browser lookup (UDP) cannot cross the tunnel.
    #[test]
    fn sqlserver_forms() {
        let u = url("sqlserver://mssql.internal:1433;databaseName=x;encrypt=true");
        assert_eq!(
            (u.host.as_str(), u.port, u.rest.as_str()),
            ("mssql.internal", 1433, ";databaseName=x;encrypt=true")
        );
        let u = url("sqlserver://mssql.internal;databaseName=x");
        assert_eq!((u.port, u.explicit_port), (1433, false));
        assert!(url("sqlserver://mssql:14330/SQLEXPRESS").explicit_port);
        for bad in [
            "sqlserver://mssql/SQLEXPRESS",
            "sqlserver://mssql\\SQLEXPRESS;databaseName=x",
        ] {
            assert!(parse_db_url(bad).unwrap_err().contains("named instance"), "{bad}");
        }
        assert!(
            parse_db_url("sqlserver://mssql;serverName=other")
                .unwrap_err()
                .contains("serverName")
        );
    }

    /// libpq lets `?host=` / `?port=` override the URL's host part; the rewritten URL would then bypass the
    /// tunnel, so such URLs are refused.
    #[test]
    fn overriding_parameters_refused() {
        for bad in [
            "postgres://db/app?host=10.0.0.5",
            "postgres://db/app?sslmode=require&PORT=5433",
            "postgres:///app?hostaddr=1.2.3.4",
        ] {
            let err = parse_db_url(bad).unwrap_err();
            assert!(
                err.contains("parameter") || err.contains("host is empty"),
                "{bad}: {err}"
            );
        }
    }

    /// Found by fuzzing: libpq and the JDBC driver read parameters after a `#`, libpq takes the first `@`
    /// before any `/` as the end of a user name and password and reads a `#` after the port as part of it,
    /// clients decode parameter names, and the JDBC driver has synonyms: none of that may carry a host or
    /// port past the check.
    #[test]
    fn overrides_a_naive_reader_misses_are_refused() {
        for bad in [
            "postgres://db.internal/app?x=#&host=evil.example",
            "postgres://db.internal/app?sslmode=require#&host=evil.example",
            "postgresql://db.internal/app#?hostaddr=192.0.2.1",
            "postgres://db.internal/app?h%6Fst=evil.example",
            "postgres://db.internal?x=@evil.example",
            "postgres://db.internal#,evil.example/app",
            "postgres://db.internal:5432#x",
            "sqlserver://mssql:1433;databaseName=x#;serverName=evil.example",
            "sqlserver://mssql:1433;password={a#b};portNumber=1444",
            "sqlserver://mssql:1433;server=evil.example",
            "sqlserver://mssql:1433;port=1444",
            "sqlserver://mssql?server=evil.example",
            "sqlserver://mssql:1433;failoverPartner=evil.example",
            "sqlserver://mssql;x=@evil.example:1433",
        ] {
            let err = parse_db_url(bad).map(|u| u.rewritten("127.0.0.1", 7)).unwrap_err();
            assert!(!err.contains('\u{1b}'), "{bad}: {err}");
        }
        // Where no client reads them that way, `#` and `@` are kept as typed.
        for (input, rewritten) in [
            (
                "postgres://db/app?application_name=a@b#x",
                "postgres://127.0.0.1:7/app?application_name=a@b#x",
            ),
            ("mysql://db?x=@y", "mysql://127.0.0.1:7?x=@y"),
            ("sqlserver://db?database=a@b", "sqlserver://127.0.0.1:7?database=a@b"),
        ] {
            assert_eq!(url(input).rewritten("127.0.0.1", 7), rewritten, "{input}");
        }
    }

    /// The user info is handed back with an unencoded `@` encoded: libpq ends it at the first `@`, so
    /// `a:x@evil.example,@db` as typed would send it to evil.example first.
    #[test]
    fn at_in_user_info_is_encoded_for_the_client() {
        let u = url("postgres://a:x@evil.example,@db/app");
        assert_eq!(u.host, "db");
        assert_eq!(
            u.rewritten("127.0.0.1", 7),
            "postgres://a:x%40evil.example,@127.0.0.1:7/app"
        );
        assert_eq!(u.password_plain().as_ref().map(Secret::expose), Some("x@evil.example,"));
    }

    /// A secret parameter's value runs to the next `&` or `;` (libpq and JDBC read `#` and `?` as part of it),
    /// and a percent-encoded key is still a secret key.
    #[test]
    fn secret_parameters_masked_whole() {
        assert_eq!(
            url("postgres://db/app?password=a#b?c&sslmode=require").redacted(),
            "postgres://db/app?password=***&sslmode=require"
        );
        assert_eq!(
            url("postgres://db/app?pass%77ord=hunter2").redacted(),
            "postgres://db/app?pass%77ord=***"
        );
        let err = parse_db_url("postgres://db/app?password=hun#ter2&host=x").unwrap_err();
        assert!(!err.contains("hun") && !err.contains("ter2"), "{err}");
    }

    /// Messages escape control characters everywhere in the input, the scheme too, and cut long input short.
    #[test]
    fn messages_are_printable() {
        let err = parse_db_url("mongb\0b://u:pw@db/x").unwrap_err();
        assert!(!err.chars().any(char::is_control), "{err:?}");
        assert!(!err.contains("pw"), "{err}");
        let long = format!("postgres://db/{}", "a".repeat(5000));
        let err = parse_db_url(&format!("{long} x")).unwrap_err();
        assert!(err.len() < 600, "{} bytes", err.len());
    }

    /// Unknown and unusable schemes say what to do: the supported list, or the specific fix.
    #[test]
    fn scheme_refusals() {
        for (input, needle) in [
            ("oracle://db:1521/x", SUPPORTED),
            ("mongodb+srv://cluster0.example.net/app", "SRV"),
            ("postgres+ssh://b/db/app", "--ssh"),
            ("jdbc:postgresql://db:5432/app", "drop the `jdbc:` prefix"),
            ("mssql://db", "sqlserver://"),
            ("://db", "empty"),
            ("db.internal:5432", "scheme://"),
        ] {
            let err = parse_db_url(input).unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    /// Malformed inputs each get one clear message, never a panic.
    #[test]
    fn malformed_inputs() {
        for (input, needle) in [
            ("", "empty"),
            ("   ", "empty"),
            ("postgres://", "host is empty"),
            ("postgres://:5432", "host is empty"),
            ("postgres://h:99999", "1 to 65535"),
            ("postgres://h:", "port after `:` is empty"),
            ("postgres://h:0/db", "port 0"),
            ("postgres://h:+5/db", "1 to 65535"),
            ("postgres://h:5432:1", "more than one `:`"),
            ("postgres://a,b/db", "several hosts"),
            ("postgres://a:5432,b:5433/db", "several hosts"),
            ("mongodb+srv://x", "SRV"),
            ("postgres://h/db with space", "whitespace"),
            ("postgres://h/db\u{1b}[31m", "control"),
            ("postgres://[::1/db", "closing"),
            ("postgres://-oProxyCommand=x/db", "may not start"),
            ("postgres://bücher.example/db", "xn--"),
            ("postgres://h/d%zzb", "path has a `%`"),
            ("postgres://us%er@h/db", "user name"),
            ("postgres://h/a@b", "`@` after the host"),
        ] {
            let err = parse_db_url(input).unwrap_err();
            assert!(err.contains(needle), "{input:?}: {err}");
            assert!(!err.contains('\u{1b}'), "{err}");
        }
    }

    /// No error message may contain the password, whatever is wrong with the URL, including passwords
    /// with unencoded `/`, `?` or `#` that break the URL's structure.
    #[test]
    fn password_never_in_errors() {
        let bad_db = [
            "postgres://u:s3cr3t@h:99999/db",
            "postgres://u:s3cr3t@a,b/db",
            "postgres://u:s3cr3t@/db",
            "postgres://u:s3cr3t@h/db with space",
            "postgres://u:s3cr3t%zz@h/db",
            "postgres://u:s3c/r3t@h/db",
            "postgres://u:s3c?r3t@h/db",
            "postgres://u:s3c#r3t@h/db",
            "postgres://u:s3cr3t@h:5432:1/db",
            "postgres://u:s3cr3t@[::1/db",
            "postgres://u:s3cr3t@h/db?host=x&password=s3cr3t",
            "oracle://u:s3cr3t@h/db",
            "mongodb+srv://u:s3cr3t@cluster/db",
            "sqlserver://h:0;user=sa;password=s3cr3t",
            "sqlserver://h/inst;password={s3c;r3t}",
            "u:s3cr3t@h:5432",
        ];
        for input in bad_db {
            let err = parse_db_url(input).unwrap_err();
            assert!(!err.contains("s3c") && !err.contains("r3t"), "{input}: {err}");
        }
        let bad_ssh = [
            "postgres+ssh://u:s3cr3t@bastion/app:pw@db/x",
            "redis+ssh://u@bastion/u:s3cr3t@h",
            "postgres+ssh://u@bastion/u:s3cr3t@h:0/db",
            "postgres+ssh://u@bastion?x/u:s3cr3t@h",
            "postgres+ssh://u@bastion/u:s3cr3t@h/db?usePrivateKey=maybe",
            "postgres+ssh://u@bastion/u:s3c/r3t@h/db",
            "postgres+ssh://u@bastion:99999/u:s3cr3t@h/db",
            "postgres+ssh://u:s3c/r3t@bastion/app@db/x",
            "postgres+ssh://u:s3c:r3t/x@bastion/app@db/x",
            "postgres+ssh://u:s3c?r3t@bastion/app@db/x",
        ];
        for input in bad_ssh {
            let err = parse_ssh_url(input).unwrap_err();
            assert!(!err.contains("s3c") && !err.contains("r3t"), "{input}: {err}");
        }
    }

    /// The masked form used in messages keeps enough of the input to recognise it.
    #[test]
    fn error_names_the_input() {
        let err = parse_db_url("postgres://app:hunter2@db.internal:99999/app").unwrap_err();
        assert_eq!(
            err,
            "`postgres://app:***@db.internal:99999/app`: the port is not a number from 1 to 65535"
        );
    }

    /// The TablePlus/TablePro example from the brief: SSH part, database part, app options, and only the
    /// database's own parameters left in the database URL.
    #[test]
    fn ssh_url_example() {
        let s = parse_ssh_url(
            "postgres+ssh://ssh_user@ssh_host:2222/db_user:db_pass@db_host:5432/db_name?usePrivateKey=true&name=prod&sslmode=require&statusColor=007F3D&tLSMode=0",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.ssh,
            Destination {
                user: Some("ssh_user".into()),
                host: "ssh_host".into(),
                port: Some(2222),
                original: "ssh_user@ssh_host:2222".into(),
            }
        );
        assert_eq!(s.db.scheme, Scheme::Postgres);
        assert_eq!(s.db.target().to_string(), "db_host:5432");
        assert_eq!(s.db.rest, "/db_name?sslmode=require");
        assert_eq!(
            s.db.rewritten("127.0.0.1", 9),
            "postgres://db_user:db_pass@127.0.0.1:9/db_name?sslmode=require"
        );
        assert_eq!(
            (s.use_private_key, s.use_agent, s.name.as_deref()),
            (Some(true), None, Some("prod"))
        );
        assert_eq!(s.ignored_params, ["statusColor", "tLSMode"]);
    }

    /// SSH part variants: IPv6 bastion, no SSH user (ssh_config decides), agent socket, form-encoded name,
    /// percent-encoded user; and the database port defaulting by scheme.
    #[test]
    fn ssh_url_variants() {
        let s = parse_ssh_url("mysql+ssh://deploy@[2001:db8::1]:22/root@db.internal/shop")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.ssh.host.as_str(), s.ssh.port), ("2001:db8::1", Some(22)));
        assert_eq!((s.db.port, s.db.explicit_port), (3306, false));

        let s = parse_ssh_url("mariadb+ssh://bastion/app@db/store").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.ssh.user.as_deref(), s.ssh.host.as_str(), s.ssh.port),
            (None, "bastion", None)
        );

        let s = parse_ssh_url(
            "postgresql+ssh://me%40corp@bastion/app@db/x?useSSHAgent=TRUE&agentSocket=%7E%2F.1password%2Fagent.sock&name=Production+DB",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.ssh.user.as_deref(), Some("me@corp"));
        assert_eq!(s.use_agent, Some(true));
        assert_eq!(s.agent_socket, Some(PathBuf::from("~/.1password/agent.sock")));
        assert_eq!(s.name.as_deref(), Some("Production DB"));
        assert_eq!(s.db.rest, "/x");
    }

    /// An empty database host means 127.0.0.1 as seen from the SSH server, as TablePro documents.
    #[test]
    fn ssh_url_empty_db_host_is_bastion_loopback() {
        for (input, port) in [
            ("postgres+ssh://u@bastion/app:pw@/app", 5432),
            ("postgres+ssh://u@bastion/app:pw@:5433/app", 5433),
            ("mysql+ssh://u@bastion/", 3306),
        ] {
            let s = parse_ssh_url(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(s.db.target().to_string(), format!("127.0.0.1:{port}"), "{input}");
        }
    }

    /// Bad +ssh URLs are refused with the reason and the fix.
    #[test]
    fn bad_ssh_urls() {
        for (input, needle) in [
            ("", "empty"),
            ("postgres+ssh://bastion", "no `/`"),
            ("postgres+ssh://bastion?usePrivateKey=true", "no `/`"),
            ("postgres+ssh://u:pw@bastion/app@db/x", "SQLTUN_SSH_PASSWORD"),
            (
                "redis+ssh://u@bastion/:pw@cache",
                "postgres, postgresql, mysql and mariadb",
            ),
            ("oracle+ssh://u@bastion/db", "unknown scheme"),
            ("postgres://db/app", "not a +ssh URL"),
            ("postgres+ssh:///app@db/x", "SSH server before the first `/` is empty"),
            ("postgres+ssh://u@bastion:0/app@db/x", "port 0"),
            ("postgres+ssh://u@bastion:ssh/app@db/x", "SSH server's port"),
            ("postgres+ssh://u@bastion/app@db/x?usePrivateKey=yes", "true or false"),
            ("postgres+ssh://u@bastion/app@a,b/x", "several hosts"),
            ("postgres+ssh://u@bastion/app@db/x?agentSocket=%zz", "percent-encoding"),
        ] {
            let err = parse_ssh_url(input).unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    /// The SSH user is checked once percent-decoded: `%0A`, `%3B`, `%24%28`, `%60`, `%7C`, `%26`, `%20`
    /// and a leading `%2D` look harmless as typed but would run commands through ProxyCommand's `%r`.
    #[test]
    fn ssh_url_user_checked_after_decoding() {
        for (user, needle) in [
            ("x%0Atouch%20%2Ftmp%2Fpwned%0A", r"control character \n"),
            ("x%3B%3Em", "`;`"),
            ("x%24%28%3Em%29", "`$`"),
            ("x%60%3Em%60", "backtick"),
            ("x%7C%3Em", "`|`"),
            ("x%26%3Em", "`&`"),
            ("a%20b", "whitespace"),
            ("%2DoProxyCommand=x", "starts with `-`"),
        ] {
            let input = format!("postgres+ssh://{user}@127.0.0.1/app@db:5432/appdb");
            let err = parse_ssh_url(&input).unwrap_err();
            assert!(
                err.contains("the SSH user (percent-decoded): the SSH user name"),
                "{input}: {err}"
            );
            assert!(err.contains(needle), "{input}: {err}");
            assert!(!err.chars().any(char::is_control), "{input}: {err:?}");
        }
        let ok = parse_ssh_url("postgres+ssh://d%65ploy@bastion/app@db/x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.ssh.user.as_deref(), Some("deploy"));
    }

    /// `--db` dispatch: URL versus host:port, and +ssh URLs recognised before the plain URL parser.
    #[test]
    fn recognisers() {
        assert!(looks_like_url("postgres://db"));
        assert!(looks_like_url(" jdbc:sqlserver://db "));
        assert!(!looks_like_url("db.internal:5432"));
        assert!(!looks_like_url("[::1]:5432"));
        assert!(!looks_like_url("://db"));
        assert!(is_ssh_url("PostgreSQL+SSH://b/db"));
        assert!(!is_ssh_url("postgres://b/db"));
        assert!(!is_ssh_url("ssh://bastion"));
    }

    /// PostgreSQL clients get PG* variables for everything the URL holds, plus DATABASE_URL.
    #[test]
    fn client_env_postgres() {
        let u = url("postgres://app%2Bro:p%40ss@db.internal/my%20db?sslmode=require");
        assert_eq!(
            env_of(Some(&u), None),
            pairs(&[
                ("PGHOST", "127.0.0.1"),
                ("PGPORT", "54321"),
                ("PGUSER", "app+ro"),
                ("PGDATABASE", "my db"),
                ("PGPASSWORD", "p@ss"),
                (
                    "DATABASE_URL",
                    "postgres://app%2Bro:p%40ss@127.0.0.1:54321/my%20db?sslmode=require"
                ),
            ])
        );
        assert_eq!(
            env_of(None, Some(Family::Postgres)),
            pairs(&[("PGHOST", "127.0.0.1"), ("PGPORT", "54321")])
        );
        // The URL decides the family when both are given; IPv6 hosts go bare into PGHOST.
        let v6 = client_env(Some(&url("postgres://db")), Some(Family::Redis), "[::1]", 5);
        assert_eq!(
            v6,
            pairs(&[
                ("PGHOST", "::1"),
                ("PGPORT", "5"),
                ("DATABASE_URL", "postgres://[::1]:5")
            ])
        );
    }

    /// MySQL and MariaDB clients read MYSQL_HOST / MYSQL_TCP_PORT, and MYSQL_PWD only when the URL had a
    /// password; `localhost` would mean the Unix socket to them.
    #[test]
    fn client_env_mysql() {
        let u = url("mariadb://root:pw@db/shop");
        assert_eq!(
            env_of(Some(&u), None),
            pairs(&[
                ("MYSQL_HOST", "127.0.0.1"),
                ("MYSQL_TCP_PORT", "54321"),
                ("MYSQL_PWD", "pw"),
                ("DATABASE_URL", "mariadb://root:pw@127.0.0.1:54321/shop"),
            ])
        );
        assert_eq!(
            client_env(None, Some(Family::Mysql), "localhost", 7),
            pairs(&[("MYSQL_HOST", "127.0.0.1"), ("MYSQL_TCP_PORT", "7")])
        );
    }

    /// redis-cli reads REDISCLI_AUTH as the `default` user's password; with another ACL user it is left
    /// out (the user passes `-u "$DATABASE_URL"`).
    #[test]
    fn client_env_redis() {
        assert_eq!(
            env_of(Some(&url("redis://:pw@cache/0")), None),
            pairs(&[
                ("REDISCLI_AUTH", "pw"),
                ("DATABASE_URL", "redis://:pw@127.0.0.1:54321/0")
            ])
        );
        assert_eq!(
            env_of(Some(&url("rediss://app:pw@cache")), None),
            pairs(&[("DATABASE_URL", "rediss://app:pw@127.0.0.1:54321")])
        );
        assert_eq!(env_of(Some(&url("redis://cache")), None).len(), 1);
        assert_eq!(env_of(None, Some(Family::Redis)), Vec::new());
    }

    /// The other families have no standard client variables: only DATABASE_URL, or nothing at all.
    #[test]
    fn client_env_others() {
        for input in [
            "mongodb://u:pw@db/admin",
            "sqlserver://db:1433;databaseName=x",
            "clickhouse://db/default",
        ] {
            let env = env_of(Some(&url(input)), None);
            assert_eq!(env.len(), 1, "{input}");
            assert_eq!(env[0].0, "DATABASE_URL");
        }
        assert_eq!(env_of(None, None), Vec::new());
        assert_eq!(env_of(None, Some(Family::Mongodb)), Vec::new());
    }
}
