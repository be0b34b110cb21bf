//! The database schemes sqltun reads: their names, client families and default ports, and the
//! environment a client of each family reads.

use crate::dest::printable;

/// The schemes `--db` reads, for messages.
pub(crate) const SUPPORTED: &str =
    "postgres, postgresql, mysql, mariadb, redis, rediss, mongodb, sqlserver, clickhouse";

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

    pub(super) fn from_name(name: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The scheme and what follows `://`; unknown schemes get the list of supported ones or a specific hint.
pub(super) fn split_scheme(text: &str) -> Result<(Scheme, &str), String> {
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

/// Characters a URL scheme is made of (RFC 3986).
pub(super) fn is_scheme_text(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
}
