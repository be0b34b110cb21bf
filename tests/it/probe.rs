//! `sqltun::probe` against real servers on loopback: PostgreSQL, MariaDB and Redis as Debian packages them
//! (`support::probe_servers` starts throwaway instances). The probe speaks over a plain `TcpStream` here;
//! in production the same bytes travel over an SSH channel. These tests fail, not skip, when a server is not
//! installed.

use std::net::{Ipv4Addr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sqltun::probe::{ProbeKind, ProbeReport, probe};
use tokio::net::TcpSocket;

use crate::support::{LoopbackServer, server_program};

/// Generous for a loopback server on a loaded CI machine; a real server answers in milliseconds.
const LIMIT: Duration = Duration::from_secs(20);

/// For probes where silence is the expected outcome (the server waits for a client that speaks first).
const SILENCE_LIMIT: Duration = Duration::from_secs(1);

/// Another loopback address: the server sees a client that is not 127.0.0.1.
const OTHER_HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Probes 127.0.0.1:`port` from 127.0.0.1.
fn probe_port(kind: ProbeKind, port: u16, limit: Duration) -> ProbeReport {
    probe_from(Ipv4Addr::LOCALHOST, kind, port, limit)
}

/// Probes 127.0.0.1:`port` from the local address `source`; fails if the probe outlives its limit.
fn probe_from(source: Ipv4Addr, kind: ProbeKind, port: u16, limit: Duration) -> ProbeReport {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket
            .bind(SocketAddr::from((source, 0)))
            .expect("bind the client address");
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = tokio::time::timeout(LIMIT, socket.connect(target))
            .await
            .expect("connected in time")
            .unwrap_or_else(|e| panic!("connect to {target}: {e}"));
        tokio::time::timeout(limit + LIMIT, probe(kind, stream, limit))
            .await
            .expect("the probe returned soon after its limit")
    })
}

/// The version a server binary reports of itself: the word after `marker` in `PROGRAM --version`.
fn installed_version(program: PathBuf, marker: &str) -> String {
    let output = Command::new(&program)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{} --version: {e}", program.display()));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.split_whitespace()
        .find_map(|word| word.strip_prefix(marker).filter(|rest| !rest.is_empty()))
        .or_else(|| {
            let mut words = text.split_whitespace();
            words.find(|word| *word == marker)?;
            words.next()
        })
        .unwrap_or_else(|| panic!("no `{marker}` in {} --version: {text}", program.display()))
        .to_string()
}

/// A real postmaster with `ssl = off` (initdb's default) answers the SSLRequest with `N`: proves the
/// request bytes are the ones PostgreSQL knows and that one byte is all it sends.
#[test]
fn postgres_answers_the_ssl_request() {
    let postgres = LoopbackServer::postgres();
    let report = probe_port(ProbeKind::Postgres, postgres.port, LIMIT);
    assert_eq!(
        report,
        ProbeReport {
            protocol: "postgresql".into(),
            ok: true,
            summary: "PostgreSQL answered the SSL request: SSL not supported (N)".into(),
            server_version: None,
            detail: None,
        }
    );
}

/// MariaDB greets a client it has an account for with `5.5.5-<release>-MariaDB…`, which the report keeps
/// as sent and names as MariaDB; a client from an address with no account gets error 1130 before any
/// greeting, which is still a MariaDB server answering (ok) but refusing — through a tunnel, the address
/// it judges is the last hop's.
#[test]
fn mariadb_greets_known_hosts_and_refuses_others() {
    let mariadb = LoopbackServer::mariadb();
    let release = installed_version(server_program("mariadbd", "mariadb-server"), "Ver");

    let greeted = probe_port(ProbeKind::Mysql, mariadb.port, LIMIT);
    assert!(greeted.ok, "{greeted:?}");
    assert_eq!(greeted.protocol, "mysql");
    assert_eq!(greeted.server_version, Some(format!("5.5.5-{release}")));
    let number = release.split('-').next().unwrap_or_default();
    assert_eq!(
        greeted.summary,
        format!("MariaDB {number} answered with its greeting (server version 5.5.5-{release})")
    );

    let refused = probe_from(OTHER_HOST, ProbeKind::Mysql, mariadb.port, LIMIT);
    assert!(refused.ok, "{refused:?}");
    assert_eq!(
        refused.summary,
        "MySQL answered with error 1130 instead of a greeting: \
         Host '127.0.0.2' is not allowed to connect to this MariaDB server"
    );
    assert!(
        refused
            .detail
            .as_deref()
            .is_some_and(|detail| detail.starts_with("the server refused this client")),
        "{refused:?}"
    );
    assert_eq!(refused.server_version, None);
}

/// Redis without a password answers PING with PONG, and `INFO server` gives the version the installed
/// binary reports.
#[test]
fn redis_answers_pong_and_its_version() {
    let redis = LoopbackServer::redis(None);
    let version = installed_version(server_program("redis-server", "redis-server"), "v=");
    let report = probe_port(ProbeKind::Redis, redis.port, LIMIT);
    assert_eq!(
        report,
        ProbeReport {
            protocol: "redis".into(),
            ok: true,
            summary: format!("Redis {version} answered PING with PONG"),
            server_version: Some(version),
            detail: None,
        }
    );
}

/// With `requirepass`, Redis answers PING with `-NOAUTH`: a Redis server answered (ok), and the report
/// says it wants a password.
#[test]
fn redis_with_a_password_answers_noauth() {
    let redis = LoopbackServer::redis(Some("x"));
    let report = probe_port(ProbeKind::Redis, redis.port, LIMIT);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.summary, "Redis answered PING: authentication required");
    assert_eq!(report.detail.as_deref(), Some("authentication required (NOAUTH)"));
    assert_eq!(report.server_version, None);
}

/// Protected mode (no password) refuses clients from any address but 127.0.0.1 with `-DENIED` — what a
/// bastion's address meets when Redis was left at its defaults; the report keeps the server's reason.
#[test]
fn redis_protected_mode_refuses_other_addresses() {
    let redis = LoopbackServer::redis(None);
    let report = probe_from(OTHER_HOST, ProbeKind::Redis, redis.port, LIMIT);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.summary, "Redis answered PING: refused by protected mode");
    let detail = report.detail.unwrap_or_default();
    assert!(
        detail.starts_with("protected mode (DENIED): Redis is running in protected mode"),
        "{detail}"
    );
}

/// A `--db` with the wrong scheme or port puts one server's probe in front of another server: each must
/// say no (within its limit, never hanging on a server that waits for the client), and a plain TCP probe
/// must accept every one of them, showing only printable text from MariaDB's binary greeting.
#[test]
fn probes_of_the_wrong_kind_are_not_ok() {
    let postgres = LoopbackServer::postgres();
    let mariadb = LoopbackServer::mariadb();
    let redis = LoopbackServer::redis(None);
    let wrong = [
        (ProbeKind::Mysql, "postgres", postgres.port, "no answer within 1s"),
        (
            ProbeKind::Redis,
            "postgres",
            postgres.port,
            "the target closed the connection without answering",
        ),
        (
            ProbeKind::Postgres,
            "mariadb",
            mariadb.port,
            "it does not look like PostgreSQL",
        ),
        (
            ProbeKind::Redis,
            "mariadb",
            mariadb.port,
            "the target closed the connection before its answer was complete",
        ),
        (ProbeKind::Postgres, "redis", redis.port, "no answer within 1s"),
        (ProbeKind::Mysql, "redis", redis.port, "no answer within 1s"),
    ];
    for (kind, server, port, summary) in wrong {
        let report = probe_port(kind, port, SILENCE_LIMIT);
        assert!(!report.ok, "{kind:?} probe at {server}: {report:?}");
        assert!(
            report.summary.contains(summary),
            "{kind:?} probe at {server}: {report:?}"
        );
    }

    for (server, port) in [("postgres", postgres.port), ("redis", redis.port)] {
        let report = probe_port(ProbeKind::Tcp, port, LIMIT);
        assert!(report.ok, "tcp probe at {server}: {report:?}");
        assert_eq!(report.summary, "the target accepted the connection", "{server}");
    }
    let report = probe_port(ProbeKind::Tcp, mariadb.port, LIMIT);
    assert!(report.ok, "{report:?}");
    let banner = report.detail.unwrap_or_default();
    assert!(banner.starts_with("text in it: 5.5.5-"), "{banner:?}");
    assert!(banner.chars().count() <= 80, "{banner:?}");
    assert!(!banner.chars().any(char::is_control), "{banner:?}");
}

/// The servers these tests start must not outlive a failing test: a panic while one runs still stops it
/// by pid and removes its directory.
#[test]
fn servers_are_cleaned_up_when_a_test_panics() {
    let mut started = None;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let redis = LoopbackServer::redis(None);
        started = Some((redis.pid(), redis.dir().to_path_buf(), redis.port));
        panic!("a test failing while its server runs (on purpose)");
    }));
    assert!(outcome.is_err());
    let (pid, dir, port) = started.expect("the server started");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(&port.to_string()),
        "redis-server (pid {pid}) still runs"
    );
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

/// Why: `check` shows what a target volunteers (a TCP banner, a greeting), and the target is whatever
/// answers at the far end of the tunnel. A banner holding an OSC title set, a screen clear, a C1 CSI and
/// a bidi override must come out of the probe as visible escapes (the one escaper's `\x1b` form), with no
/// control or invisible character left in the report.
#[test]
fn hostile_tcp_banner_is_escaped() {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().expect("the probe connects");
        stream
            .write_all(
                "220 \x1b]0;pwned\x07\x1b[2J\u{9b}1m\u{202e}mail.example.test ESMTP Postfix (Debian/GNU) ready for mail\r\n"
                    .as_bytes(),
            )
            .expect("send the banner");
        stream.set_read_timeout(Some(LIMIT)).expect("set read timeout");
        let mut sink = [0u8; 64];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    });
    let report = probe_port(ProbeKind::Tcp, port, LIMIT);
    // Judged before joining, so a probe that never connected fails instead of waiting on the accept.
    assert!(report.ok, "{report:?}");
    server.join().expect("the banner server thread");
    let banner = report.detail.clone().unwrap_or_default();
    assert!(
        banner.starts_with(r"220 \x1b]0;pwned\x07\x1b[2J\u{9b}1m\u{202e}mail.example.test ESMTP"),
        "{report:?}"
    );
    for text in [&report.summary, &banner] {
        assert!(!text.chars().any(|c| c.is_control() || c == '\u{202e}'), "{report:?}");
    }
}
