//! The `scheme+ssh://` URLs TablePlus and TablePro use for a tunnelled connection: the SSH server and
//! the database as seen from it in one URL, plus the app's own options.

use std::net::Ipv6Addr;
use std::path::PathBuf;

use super::db_url::{DbUrl, check_text, parse_after, redact_input};
use super::percent_decode_utf8;
use super::scheme::{Scheme, is_scheme_text};
use crate::dest::{Destination, NameKind, check_name, parse_destination, printable};

/// The form of a `+ssh` URL, for messages.
const SSH_FORM: &str =
    "postgres+ssh://[ssh_user@]ssh_host[:port]/[db_user[:db_pass]@]db_host[:db_port][/db_name][?params]";

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
    parse_trimmed(trimmed).map_err(|msg| format!("`{}`: {msg}", redact_input(trimmed)))
}

/// [`parse_ssh_url`] of trimmed, non-empty input. Errors do not quote the input: the caller prefixes it,
/// masked.
fn parse_trimmed(text: &str) -> Result<SshUrl, String> {
    check_text(text)?;
    let Some((name, after)) = text.split_once("://") else {
        return Err(format!("not a URL; the form is {SSH_FORM}"));
    };
    let scheme = ssh_scheme(name)?;
    let (ssh_text, db_text) = split_parts(after)?;
    let ssh = ssh_server(ssh_text)?;
    let (db, app) = database_part(scheme, db_text)?;
    Ok(SshUrl {
        ssh,
        db,
        use_private_key: app.use_private_key,
        use_agent: app.use_agent,
        agent_socket: app.agent_socket,
        name: app.name,
        ignored_params: app.ignored,
    })
}

/// The database scheme of `name+ssh` (the text before `://`), one of those read with `+ssh`.
fn ssh_scheme(name: &str) -> Result<Scheme, String> {
    let lower = name.to_ascii_lowercase();
    let Some(base) = lower.strip_suffix("+ssh") else {
        return Err(format!("not a +ssh URL; the form is {SSH_FORM}"));
    };
    match Scheme::from_name(base) {
        Some(s @ (Scheme::Postgres | Scheme::Postgresql | Scheme::Mysql | Scheme::Mariadb)) => Ok(s),
        Some(_) => Err(format!(
            "`{base}+ssh://` is not supported (+ssh URLs are read for postgres, postgresql, mysql and mariadb); give the SSH server with --ssh and the database as --db {base}://host:port"
        )),
        None if is_scheme_text(base) => Err(format!(
            "unknown scheme `{}+ssh`: +ssh URLs are read for postgres, postgresql, mysql and mariadb",
            printable(base)
        )),
        None => Err(format!("the text before `://` is not a scheme; the form is {SSH_FORM}")),
    }
}

/// What follows `://`, split at the first `/` into the SSH server and the database part.
fn split_parts(after: &str) -> Result<(&str, &str), String> {
    let ssh_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let Some(db_text) = after[ssh_end..].strip_prefix('/') else {
        return Err(format!(
            "no `/` after the SSH server, so there is no database part; the form is {SSH_FORM}"
        ));
    };
    let ssh_text = &after[..ssh_end];
    if ssh_text.is_empty() {
        return Err(format!(
            "the SSH server before the first `/` is empty; the form is {SSH_FORM}"
        ));
    }
    Ok((ssh_text, db_text))
}

/// The SSH server part, `[ssh_user@]ssh_host[:port]`, as `--ssh` would take it, its user percent-decoded.
fn ssh_server(ssh_text: &str) -> Result<Destination, String> {
    if let Some(at) = ssh_text.rfind('@')
        && ssh_text[..at].contains(':')
    {
        return Err(
            "the SSH part holds a password, which sqltun never reads from a URL (it would show in ps and shell history); remove it and set SQLTUN_SSH_PASSWORD or use --password-file".into(),
        );
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
        return Err(
            "the SSH server's port is not a number from 1 to 65535 (a password does not belong in the URL: set SQLTUN_SSH_PASSWORD)".into(),
        );
    }
    let mut ssh = parse_destination(ssh_text).map_err(|e| format!("the SSH server: {e}"))?;
    if let Some(user) = ssh.user.take() {
        let decoded = percent_decode_utf8(&user)
            .ok_or("the SSH user has a `%` not followed by two hex digits (write `%` as %25)")?;
        // Checked again once decoded: `%0A` or `%3B` pass the check of the text as typed.
        check_name(NameKind::User, &decoded, "the SSH user (percent-decoded)")?;
        ssh.user = Some(decoded);
    }
    Ok(ssh)
}

/// The app's own parameters in the database part's query, and the parameters kept for the database.
#[derive(Default)]
struct AppParams<'a> {
    use_private_key: Option<bool>,
    use_agent: Option<bool>,
    agent_socket: Option<PathBuf>,
    name: Option<String>,
    /// Names of the app-only parameters left out of the database URL.
    ignored: Vec<String>,
    /// `key=value` parameters for the database, as typed.
    kept: Vec<&'a str>,
}

/// The database part, `[db_user[:db_pass]@]db_host[:db_port][/db_name][?query][#fragment]`: the database
/// URL (without the app's parameters) and the app's parameters.
fn database_part(scheme: Scheme, db_text: &str) -> Result<(DbUrl, AppParams<'_>), String> {
    let tail_start = db_text.find(['?', '#']).unwrap_or(db_text.len());
    let (db_main, tail) = db_text.split_at(tail_start);
    let (query, fragment) = match tail.find('#') {
        Some(i) => tail.split_at(i),
        None => (tail, ""),
    };
    let app = app_params(query.strip_prefix('?').unwrap_or(query))?;

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
    if !app.kept.is_empty() {
        rebuilt.push('?');
        rebuilt.push_str(&app.kept.join("&"));
    }
    rebuilt.push_str(fragment);
    let db = parse_after(scheme, &rebuilt).map_err(|e| format!("the database part: {e}"))?;
    Ok((db, app))
}

/// Sort the query's `&`-separated parameters into the app's own, those only its window uses, and those
/// kept for the database.
fn app_params(query: &str) -> Result<AppParams<'_>, String> {
    let mut app = AppParams::default();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key.to_ascii_lowercase().as_str() {
            "useprivatekey" => app.use_private_key = Some(flag(key, value)?),
            "usesshagent" => app.use_agent = Some(flag(key, value)?),
            "agentsocket" => {
                let path = percent_decode_utf8(value).ok_or_else(|| bad_encoding(key))?;
                app.agent_socket = (!path.is_empty()).then(|| PathBuf::from(path));
            }
            "name" => {
                // Form-encoded, as browsers and TablePro write it: `+` is a space.
                let text = percent_decode_utf8(&value.replace('+', " ")).ok_or_else(|| bad_encoding(key))?;
                app.name = (!text.is_empty()).then_some(text);
            }
            k if GUI_ONLY_KEYS.contains(&k) => app.ignored.push(key.to_string()),
            _ => app.kept.push(param),
        }
    }
    Ok(app)
}

fn bad_encoding(key: &str) -> String {
    format!("`{}` is not valid percent-encoding (write `%` as %25)", printable(key))
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
