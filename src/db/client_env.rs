//! What a database client reads from its environment to reach the local end of the tunnel.

use super::db_url::DbUrl;
use super::scheme::Family;

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
