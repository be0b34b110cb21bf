//! Database URLs: parsed into the tunnel's target and what the client gets back unchanged, rewritten to
//! point at the local end of the tunnel, and redacted for logs and messages.

use std::fmt;
use std::net::Ipv6Addr;

use super::scheme::{Family, SUPPORTED, Scheme, split_scheme};
use super::{percent_decode, percent_decode_lossy, percent_decode_utf8};
use crate::dest::printable;
use crate::secret::Secret;
use crate::target::Target;

/// Query keys whose values are secrets, masked wherever a URL is shown (libpq, JDBC, redis-py, ClickHouse
/// and MySQL clients all accept a password as a parameter).
const SECRET_KEYS: [&str; 5] = ["password", "pwd", "passwd", "pass", "sslpassword"];

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
                .map(|(_, v)| percent_decode_lossy(v))
                .find(|d| !d.is_empty());
        }
        let path = self.rest.strip_prefix('/')?;
        let segment = &path[..path.find(['/', '?', '#']).unwrap_or(path.len())];
        (!segment.is_empty()).then(|| percent_decode_lossy(segment))
    }

    /// The user name, percent-decoded.
    pub fn user_name(&self) -> Option<String> {
        self.user.as_deref().map(percent_decode_lossy)
    }

    /// The password, percent-decoded (what the database checks).
    pub fn password_plain(&self) -> Option<Secret> {
        self.password
            .as_ref()
            .map(|p| Secret::new(percent_decode_lossy(p.expose())))
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

/// Refuse whitespace and control characters anywhere (the input is already trimmed).
pub(super) fn check_text(text: &str) -> Result<(), String> {
    if text.chars().any(char::is_control) {
        return Err("it contains a control character".into());
    }
    if text.chars().any(char::is_whitespace) {
        return Err("it contains whitespace: percent-encode a space as %20, also in a password".into());
    }
    Ok(())
}

/// Parse what follows `scheme://`. Errors do not quote the input: the caller prefixes it, masked.
pub(super) fn parse_after(scheme: Scheme, after: &str) -> Result<DbUrl, String> {
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
            if percent_decode_utf8(user).is_none() {
                return Err("the user name has a `%` not followed by two hex digits, or is not UTF-8 once decoded (write `%` as %25)".into());
            }
            if password.is_some_and(|p| percent_decode_utf8(p).is_none()) {
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
    let decoded = percent_decode_lossy(key).to_ascii_lowercase();
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
        let name = percent_decode_lossy(key).to_ascii_lowercase();
        if name == "replicaset" {
            return Err(format!(
                "the `{}` parameter has the driver discover the replica set's members and connect to each at the address it advertises, past the tunnel; remove it: sqltun hands out the URL with directConnection=true, which talks to the one member given (give the primary to write)",
                printable(key)
            ));
        }
        if name == "directconnection" && !percent_decode_lossy(value).eq_ignore_ascii_case("true") {
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
            percent_decode_lossy(k).eq_ignore_ascii_case(key)
                && value.is_none_or(|want| percent_decode_lossy(v).eq_ignore_ascii_case(want))
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
    printable(&redact_params(&crate::text::mask_userinfo_password(input)))
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
    let decoded = percent_decode_lossy(key).to_ascii_lowercase();
    SECRET_KEYS.contains(&raw.as_str()) || SECRET_KEYS.contains(&decoded.as_str())
}

fn find_delimiter(text: &str, from: usize) -> usize {
    text[from..].find(['?', '&', ';', '#']).map_or(text.len(), |i| from + i)
}
