use std::path::PathBuf;

use super::*;
use crate::dest::Destination;
use crate::secret::Secret;

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
    let s =
        parse_ssh_url("mysql+ssh://deploy@[2001:db8::1]:22/root@db.internal/shop").unwrap_or_else(|e| panic!("{e}"));
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

/// The crate's one percent-decoder (URLs, and `ssh://` hops in ProxyJump) takes exactly two hex digits
/// after a `%`: `u8::from_str_radix` alone would also take a sign (`%+f`), which no URL reader does.
#[test]
fn percent_decoder_is_strict() {
    assert_eq!(percent_decode("a%40b%2F%2f"), Some(b"a@b//".to_vec()));
    assert_eq!(percent_decode_utf8("caf%C3%A9").as_deref(), Some("café"));
    for bad in ["%", "%4", "%zz", "%+f", "%-1", "x%4é"] {
        assert_eq!(percent_decode(bad), None, "{bad}");
    }
    assert_eq!(percent_decode_utf8("%FF"), None, "not UTF-8 once decoded");
    assert_eq!(
        percent_decode_lossy("%zz"),
        "%zz",
        "kept as typed when it does not decode"
    );
}

mod targets {
    use super::super::parse_target;
    use crate::target::Target;

    /// Text with `://` that is not a URL is refused with what is wrong and the schemes sqltun reads, the
    /// password masked; a user in a host:port target is refused the same way.
    #[test]
    fn url_like_targets() {
        for input in [
            "://db",
            "1postgres://db",
            "postgres ://db",
            "_x://db:5432",
            "\u{1b}[2J://db",
        ] {
            let err = parse_target(input).unwrap_err();
            assert!(err.contains("postgresql, mysql"), "{input:?}: {err}");
            assert!(!err.contains("not supported yet"), "{input:?}: {err}");
            assert!(!err.chars().any(char::is_control), "{input:?}: {err:?}");
        }
        for input in ["1pg://u:s3cr3t@db/x", "u:s3cr3t@db:5432"] {
            let err = parse_target(input).unwrap_err();
            assert!(!err.contains("s3cr3t"), "{input}: {err}");
        }
    }

    /// Targets need a port and accept bracketed IPv6.
    #[test]
    fn targets() {
        assert_eq!(
            parse_target("10.0.12.7:5432"),
            Ok(Target {
                host: "10.0.12.7".into(),
                port: 5432
            })
        );
        assert_eq!(
            parse_target("[fd00::7]:5432"),
            Ok(Target {
                host: "fd00::7".into(),
                port: 5432
            })
        );
        assert_eq!(
            parse_target("db.internal:6379"),
            Ok(Target {
                host: "db.internal".into(),
                port: 6379
            })
        );
        assert!(parse_target("db.internal").unwrap_err().contains("no port"));
        assert!(parse_target("fd00::7:5432").unwrap_err().contains("brackets"));
        assert!(parse_target(":5432").unwrap_err().contains("empty"));
    }
}
