use super::mysql::{MYSQL_ERROR, MYSQL_PROTOCOL_10, mariadb_release};
use super::postgres::SSL_REQUEST;
use super::redis::{REDIS_INFO_SERVER, REDIS_PING};
use super::shown::human;
use super::*;
use crate::text::is_invisible;
use tokio::io::duplex;

/// Generous: these fakes answer at once.
const LIMIT: Duration = Duration::from_secs(5);
/// For the fakes that never answer.
const SHORT: Duration = Duration::from_millis(200);
/// How long past its limit a probe may take before a test calls it hung.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// A scripted server on the far end of an in-memory pipe: for each step it reads that many bytes,
/// then writes the reply; afterwards it hangs up, or listens until the client goes.
struct Fake {
    steps: Vec<(usize, Vec<u8>)>,
    hang_up: bool,
}

impl Fake {
    /// Sends `reply` as soon as the client connects.
    fn greets(reply: impl Into<Vec<u8>>) -> Fake {
        Fake {
            steps: vec![(0, reply.into())],
            hang_up: false,
        }
    }

    /// Sends `reply` once the client's `request` (only its length is awaited) has arrived.
    fn answers(request: &[u8], reply: impl Into<Vec<u8>>) -> Fake {
        Fake {
            steps: vec![(request.len(), reply.into())],
            hang_up: false,
        }
    }

    fn then(mut self, request: &[u8], reply: impl Into<Vec<u8>>) -> Fake {
        self.steps.push((request.len(), reply.into()));
        self
    }

    /// Never says anything; keeps the connection open until the client goes.
    fn silent() -> Fake {
        Fake {
            steps: Vec::new(),
            hang_up: false,
        }
    }

    /// Hangs up at once.
    fn hangs_up() -> Fake {
        Fake {
            steps: Vec::new(),
            hang_up: true,
        }
    }

    fn and_hangs_up(mut self) -> Fake {
        self.hang_up = true;
        self
    }
}

/// Probes `fake` and returns the report and every byte the probe sent; fails if the probe does not
/// return soon after `limit`.
async fn run(kind: ProbeKind, limit: Duration, fake: Fake) -> (ProbeReport, Vec<u8>) {
    let (client, mut server) = duplex(64 * 1024);
    let serving = tokio::spawn(async move {
        let mut received = Vec::new();
        for (wanted, reply) in fake.steps {
            let mut request = vec![0; wanted];
            if server.read_exact(&mut request).await.is_err() {
                return received;
            }
            received.extend_from_slice(&request);
            if server.write_all(&reply).await.is_err() {
                return received;
            }
        }
        if !fake.hang_up {
            let _ = server.read_to_end(&mut received).await;
        }
        received
    });
    let report = tokio::time::timeout(limit.saturating_add(HANG_GUARD), probe(kind, client, limit))
        .await
        .expect("the probe returned soon after its limit");
    let received = tokio::time::timeout(HANG_GUARD, serving)
        .await
        .expect("the fake server saw the probe go")
        .expect("the fake server ran to its end");
    (report, received)
}

fn mysql_packet(sequence: u8, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("small packet").to_le_bytes();
    let mut packet = vec![length[0], length[1], length[2], sequence];
    packet.extend_from_slice(payload);
    packet
}

/// A protocol-10 greeting as MySQL 8 and MariaDB send it.
fn mysql_greeting(version: &str) -> Vec<u8> {
    let mut payload = vec![MYSQL_PROTOCOL_10];
    payload.extend_from_slice(version.as_bytes());
    payload.push(0);
    payload.extend_from_slice(&42_u32.to_le_bytes());
    payload.extend_from_slice(b"abcdefgh\0");
    payload.extend_from_slice(&[0xff, 0xf7, 0x2d, 0x02, 0x00, 0xff, 0x81, 21]);
    payload.extend_from_slice(&[0; 10]);
    payload.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    mysql_packet(0, &payload)
}

fn mysql_error(code: u16, sql_state: Option<&str>, message: &[u8]) -> Vec<u8> {
    let mut payload = vec![MYSQL_ERROR];
    payload.extend_from_slice(&code.to_le_bytes());
    if let Some(state) = sql_state {
        payload.push(b'#');
        payload.extend_from_slice(state.as_bytes());
    }
    payload.extend_from_slice(message);
    mysql_packet(0, &payload)
}

fn info_reply(body: &str) -> Vec<u8> {
    format!("${}\r\n{body}\r\n", body.len()).into_bytes()
}

/// The common case for a server with `ssl = on`: one `S`, then silence until the TLS handshake.
#[tokio::test]
async fn postgres_answering_s_supports_ssl() {
    let (report, sent) = run(ProbeKind::Postgres, LIMIT, Fake::answers(&SSL_REQUEST, "S")).await;
    assert_eq!(sent, SSL_REQUEST, "exactly the SSLRequest, nothing after it");
    assert_eq!(
        report,
        ProbeReport {
            protocol: "postgresql".into(),
            ok: true,
            summary: "PostgreSQL answered the SSL request: SSL supported (S)".into(),
            server_version: None,
            detail: None,
        }
    );
}

/// A server with `ssl = off` (the PostgreSQL default) answers `N`; still the right kind of server.
#[tokio::test]
async fn postgres_answering_n_is_a_server_without_ssl() {
    let (report, sent) = run(ProbeKind::Postgres, LIMIT, Fake::answers(&SSL_REQUEST, "N")).await;
    assert_eq!(sent, SSL_REQUEST);
    assert!(report.ok, "{report:?}");
    assert_eq!(
        report.summary,
        "PostgreSQL answered the SSL request: SSL not supported (N)"
    );
}

/// Servers before PostgreSQL 7.1 reject the SSLRequest with a protocol-2 error (`E`, NUL-terminated
/// text) and hang up: reported truthfully, with the server's words.
#[tokio::test]
async fn postgres_v2_error_reply_is_reported_with_its_message() {
    let reply = b"EFATAL 1:  unsupported frontend protocol\n\0".to_vec();
    let fake = Fake::answers(&SSL_REQUEST, reply).and_hangs_up();
    let (report, _) = run(ProbeKind::Postgres, LIMIT, fake).await;
    assert!(!report.ok, "{report:?}");
    assert_eq!(
        report.summary,
        "the target answered the SSL request with an error instead of S or N: FATAL 1: unsupported frontend protocol"
    );
    assert!(report.detail.is_some_and(|detail| detail.contains("older than 7.1")));
}

/// A protocol-3 ErrorResponse (length-prefixed fields) sent in pieces, with the server keeping the
/// connection open: parsed into severity, message and SQLSTATE once its announced length arrived.
#[tokio::test]
async fn postgres_v3_error_reply_is_parsed_from_its_fields() {
    let fields = b"SFATAL\0C53300\0Msorry, too many clients already\0\0";
    let mut reply = vec![b'E'];
    reply.extend_from_slice(&u32::try_from(fields.len() + 4).expect("small").to_be_bytes());
    reply.extend_from_slice(fields);
    let (head, tail) = reply.split_at(3);
    let fake = Fake::answers(&SSL_REQUEST, head).then(&[], tail);
    let (report, _) = run(ProbeKind::Postgres, LIMIT, fake).await;
    assert!(!report.ok, "{report:?}");
    assert!(
        report
            .summary
            .ends_with(": FATAL: sorry, too many clients already (SQLSTATE 53300)"),
        "{report:?}"
    );
}

/// An SSH server's banner starts with `S` too; a PostgreSQL server sends one byte and waits, so more
/// bytes mean something else answered — and the report shows what.
#[tokio::test]
async fn ssh_banner_is_not_mistaken_for_postgres_ssl_support() {
    let fake = Fake::greets("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
    let (report, _) = run(ProbeKind::Postgres, LIMIT, fake).await;
    assert!(!report.ok, "{report:?}");
    assert!(
        report.summary.ends_with("it does not look like PostgreSQL"),
        "{report:?}"
    );
    assert_eq!(
        report.detail.as_deref(),
        Some("received 40 bytes: \"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\"")
    );
}

/// Something that answers the SSLRequest with a byte other than S, N or E is not PostgreSQL.
#[tokio::test]
async fn postgres_probe_reports_any_other_byte() {
    let fake = Fake::answers(&SSL_REQUEST, "HTTP/1.1 400 Bad Request\r\n\r\n");
    let (report, _) = run(ProbeKind::Postgres, LIMIT, fake).await;
    assert!(!report.ok);
    assert_eq!(
        report.summary,
        "the target answered the SSL request with something other than S or N: it does not look like PostgreSQL"
    );
    assert_eq!(
        report.detail.as_deref(),
        Some("received 28 bytes: \"HTTP/1.1 400 Bad Request\"")
    );
}

/// MySQL 8's greeting: the version is reported as sent, and the probe sends nothing at all.
#[tokio::test]
async fn mysql_greeting_reports_the_server_version() {
    let (report, sent) = run(ProbeKind::Mysql, LIMIT, Fake::greets(mysql_greeting("8.0.36"))).await;
    assert!(sent.is_empty(), "the probe sent {sent:?}");
    assert_eq!(
        report,
        ProbeReport {
            protocol: "mysql".into(),
            ok: true,
            summary: "MySQL answered with its greeting: server version 8.0.36".into(),
            server_version: Some("8.0.36".into()),
            detail: None,
        }
    );
}

/// MariaDB 10 prefixes `5.5.5-` for old clients: the version is kept as sent, and the summary names
/// the real release.
#[tokio::test]
async fn mariadb_greeting_names_the_mariadb_release() {
    let version = "5.5.5-10.11.6-MariaDB-0+deb12u1";
    let (report, _) = run(ProbeKind::Mysql, LIMIT, Fake::greets(mysql_greeting(version))).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.server_version.as_deref(), Some(version));
    assert_eq!(
        report.summary,
        "MariaDB 10.11.6 answered with its greeting (server version 5.5.5-10.11.6-MariaDB-0+deb12u1)"
    );
}

/// MariaDB 11 dropped the prefix but still names itself.
#[test]
fn mariadb_release_is_found_with_and_without_the_prefix() {
    assert_eq!(mariadb_release("5.5.5-10.11.6-MariaDB-0+deb12u1"), Some("10.11.6"));
    assert_eq!(mariadb_release("11.4.2-MariaDB-ubu2404"), Some("11.4.2"));
    assert_eq!(mariadb_release("8.0.36"), None);
    assert_eq!(mariadb_release("8.0.36-0ubuntu0.22.04.1"), None);
}

/// A server that refuses this client's address sends an error packet instead of a greeting: a MySQL
/// server did answer (ok), and the detail says it refused us and what that means through a tunnel.
#[tokio::test]
async fn mysql_error_packet_is_a_refusal_by_a_real_server() {
    let packet = mysql_error(
        1130,
        None,
        b"Host '10.0.0.5' is not allowed to connect to this MySQL server",
    );
    let (report, _) = run(ProbeKind::Mysql, LIMIT, Fake::greets(packet).and_hangs_up()).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(
        report.summary,
        "MySQL answered with error 1130 instead of a greeting: Host '10.0.0.5' is not allowed to connect to this MySQL server"
    );
    assert!(
        report
            .detail
            .is_some_and(|detail| detail.starts_with("the server refused this client"))
    );
    assert_eq!(report.server_version, None);
}

/// Some servers put `#` and a SQLSTATE before the message; it is not part of what people read.
#[tokio::test]
async fn mysql_error_packet_with_sql_state() {
    let packet = mysql_error(1040, Some("08004"), b"Too many connections");
    let (report, _) = run(ProbeKind::Mysql, LIMIT, Fake::greets(packet)).await;
    assert_eq!(
        report.summary,
        "MySQL answered with error 1040 instead of a greeting: Too many connections"
    );
    assert_eq!(
        report.detail.as_deref(),
        Some("the server refused this client: it has too many connections")
    );
}

/// A header announcing 16 MiB is not believed: the probe stops at once instead of waiting for it.
#[tokio::test]
async fn mysql_oversized_length_is_not_waited_for() {
    let fake = Fake::greets(vec![0xff, 0xff, 0xff, 0x00, b'x']);
    let (report, _) = run(ProbeKind::Mysql, Duration::from_secs(3600), fake).await;
    assert!(!report.ok);
    assert_eq!(
        report.summary,
        "the target's first 4 bytes would announce a MySQL packet of 16777215 bytes, more than any greeting: \
         it does not look like MySQL or MariaDB"
    );
}

/// A plausible length with fewer bytes behind it: the wait for the rest is bounded by the limit.
#[tokio::test]
async fn mysql_short_packet_is_bounded_by_the_limit() {
    let fake = Fake::greets(vec![0x50, 0x00, 0x00, 0x00, MYSQL_PROTOCOL_10, b'8']);
    let (report, _) = run(ProbeKind::Mysql, SHORT, fake).await;
    assert!(!report.ok);
    assert_eq!(report.summary, "no complete answer within 200ms");
    assert!(
        report
            .detail
            .is_some_and(|detail| detail.starts_with("received 6 bytes: bytes 50 00 00 00 0a 38;"))
    );
}

/// A well-sized packet that is not a greeting (no NUL after the version, or a wrong protocol byte)
/// is rejected rather than read as a version.
#[tokio::test]
async fn mysql_malformed_greetings_are_rejected() {
    let no_nul = mysql_packet(0, b"\x0a8.0.36");
    let (report, _) = run(ProbeKind::Mysql, LIMIT, Fake::greets(no_nul)).await;
    assert!(!report.ok);
    assert!(
        report
            .summary
            .starts_with("the target's greeting has no NUL-terminated server version")
    );

    let wrong_protocol = mysql_packet(0, b"\x098.0.36\0");
    let (report, _) = run(ProbeKind::Mysql, LIMIT, Fake::greets(wrong_protocol)).await;
    assert!(!report.ok);
    assert!(report.summary.contains("byte 0x09"), "{report:?}");

    let truncated = mysql_packet(0, b"\x0a8.0.36\0\x01\x02");
    let (report, _) = run(ProbeKind::Mysql, LIMIT, Fake::greets(truncated)).await;
    assert!(!report.ok);
    assert!(
        report
            .summary
            .starts_with("the target's first packet is not a well-formed MySQL greeting")
    );
}

/// Redis without a password answers PONG; INFO server then tells the version.
#[tokio::test]
async fn redis_pong_and_info_give_the_version() {
    let info = info_reply("# Server\r\nredis_version:7.2.4\r\nredis_git_sha1:00000000\r\nredis_mode:standalone");
    let fake = Fake::answers(REDIS_PING, "+PONG\r\n").then(REDIS_INFO_SERVER, info);
    let (report, sent) = run(ProbeKind::Redis, LIMIT, fake).await;
    assert_eq!(sent, [REDIS_PING, REDIS_INFO_SERVER].concat());
    assert_eq!(
        report,
        ProbeReport {
            protocol: "redis".into(),
            ok: true,
            summary: "Redis 7.2.4 answered PING with PONG".into(),
            server_version: Some("7.2.4".into()),
            detail: None,
        }
    );
}

/// INFO may be renamed away or denied by ACLs: PONG alone is enough, without a version.
#[tokio::test]
async fn redis_pong_without_info_is_still_ok() {
    let denied = "-NOPERM this user has no permissions to run the 'info' command\r\n";
    let fake = Fake::answers(REDIS_PING, "+PONG\r\n").then(REDIS_INFO_SERVER, denied);
    let (report, _) = run(ProbeKind::Redis, LIMIT, fake).await;
    assert!(report.ok);
    assert_eq!(report.summary, "Redis answered PING with PONG");
    assert_eq!(report.server_version, None);
}

/// An INFO bulk length far beyond the cap is not waited for once the version line is in.
#[tokio::test]
async fn redis_info_with_a_bogus_length_still_gives_the_version() {
    let info = "$4294967296\r\n# Server\r\nredis_version:7.0.15\r\nredis_mode:";
    let fake = Fake::answers(REDIS_PING, "+PONG\r\n").then(REDIS_INFO_SERVER, info);
    let (report, _) = run(ProbeKind::Redis, Duration::from_secs(3600), fake).await;
    assert_eq!(report.server_version.as_deref(), Some("7.0.15"));
}

/// `requirepass` set: Redis 6+ answers NOAUTH. A Redis server answered (ok), and no INFO is tried.
#[tokio::test]
async fn redis_noauth_is_ok_with_authentication_required() {
    let fake = Fake::answers(REDIS_PING, "-NOAUTH Authentication required.\r\n");
    let (report, sent) = run(ProbeKind::Redis, LIMIT, fake).await;
    assert_eq!(sent, REDIS_PING, "nothing after a refused PING");
    assert!(report.ok);
    assert_eq!(report.summary, "Redis answered PING: authentication required");
    assert_eq!(report.detail.as_deref(), Some("authentication required (NOAUTH)"));
}

/// Servers before Redis 6 said `-ERR operation not permitted`; still authentication.
#[tokio::test]
async fn redis_old_style_auth_error_is_authentication_required() {
    let fake = Fake::answers(REDIS_PING, "-ERR operation not permitted\r\n");
    let (report, _) = run(ProbeKind::Redis, LIMIT, fake).await;
    assert!(report.ok);
    assert_eq!(
        report.detail.as_deref(),
        Some("authentication required (ERR operation not permitted)")
    );
}

/// Protected mode refuses non-loopback clients with a long DENIED how-to; the detail keeps its first
/// sentence.
#[tokio::test]
async fn redis_protected_mode_is_ok_with_the_reason() {
    // As Redis 7.0 sends it; note the word "authentication" near its end.
    let denied = "-DENIED Redis is running in protected mode because protected mode is enabled and no \
        password is set for the default user. In this mode connections are only accepted from the loopback \
        interface. If you want to connect from external computers to Redis you may adopt one of the \
        following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode \
        no' from the loopback interface by connecting to Redis from the same host the server is running, \
        however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE \
        to make this change permanent. 2) Alternatively you can just disable the protected mode by editing \
        the Redis configuration file, and setting the protected mode option to 'no', and then restarting \
        the server. 3) If you started the server manually just for testing, restart it with the \
        '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: \
        You only need to do one of the above things in order for the server to start accepting \
        connections from the outside.\r\n";
    let (report, _) = run(ProbeKind::Redis, LIMIT, Fake::answers(REDIS_PING, denied)).await;
    assert!(report.ok);
    assert_eq!(report.summary, "Redis answered PING: refused by protected mode");
    assert_eq!(
        report.detail.as_deref(),
        Some(
            "protected mode (DENIED): Redis is running in protected mode because protected mode is enabled \
             and no password is set for the default user."
        )
    );
}

/// Other RESP errors (loading, busy, max clients) still come from a Redis server.
#[tokio::test]
async fn redis_other_errors_are_reported_as_sent() {
    let fake = Fake::answers(REDIS_PING, "-LOADING Redis is loading the dataset in memory\r\n");
    let (report, _) = run(ProbeKind::Redis, LIMIT, fake).await;
    assert!(report.ok);
    assert_eq!(
        report.summary,
        "Redis answered PING with an error: LOADING Redis is loading the dataset in memory"
    );
}

/// An HTTP server (or anything not RESP) answering PING is not Redis.
#[tokio::test]
async fn redis_garbage_reply_is_not_ok() {
    let fake = Fake::answers(REDIS_PING, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    let (report, _) = run(ProbeKind::Redis, LIMIT, fake).await;
    assert!(!report.ok);
    assert_eq!(
        report.summary,
        "the target's reply to PING is not PONG or a Redis error: it does not look like Redis"
    );
}

/// A TLS-only server answers plain text with an alert; the report hints at TLS.
#[tokio::test]
async fn tls_alert_reply_hints_at_tls() {
    let fake = Fake::answers(REDIS_PING, vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]).and_hangs_up();
    let (report, _) = run(ProbeKind::Redis, LIMIT, fake).await;
    assert!(!report.ok);
    assert_eq!(
        report.summary,
        "the target closed the connection before its answer was complete"
    );
    assert!(report.detail.is_some_and(|detail| detail.contains("a TLS record")));
}

/// A reply line that never ends is cut at the cap, not buffered without bound.
#[tokio::test]
async fn redis_endless_line_stops_at_the_cap() {
    let fake = Fake::answers(REDIS_PING, vec![b'+'; READ_CAP + 4096]);
    let (report, _) = run(ProbeKind::Redis, Duration::from_secs(3600), fake).await;
    assert!(!report.ok);
    assert_eq!(
        report.summary,
        format!("the target sent {READ_CAP} bytes without forming an answer")
    );
}

/// A peer that hangs up at once (a refusing proxy, a dead backend behind a load balancer) is reported
/// as such by every kind of probe, never as a server.
#[tokio::test]
async fn peer_closing_at_once_is_not_ok() {
    for kind in [ProbeKind::Postgres, ProbeKind::Mysql, ProbeKind::Redis] {
        let (report, _) = run(kind, LIMIT, Fake::hangs_up()).await;
        assert!(!report.ok, "{kind:?}: {report:?}");
        assert_eq!(
            report.summary, "the target closed the connection without answering",
            "{kind:?}"
        );
        assert_eq!(report.detail.as_deref(), Some(kind.expectation()));
    }
    let (report, _) = run(ProbeKind::Tcp, LIMIT, Fake::hangs_up()).await;
    assert!(!report.ok, "{report:?}");
    assert_eq!(
        report.summary,
        "the target accepted the connection, then closed it without sending anything"
    );
}

/// A peer that accepts and says nothing must not hang `sqltun check`: every probe ends by its limit.
#[tokio::test]
async fn silent_peer_is_bounded_by_the_limit() {
    for kind in [ProbeKind::Postgres, ProbeKind::Mysql, ProbeKind::Redis] {
        let started = Instant::now();
        let (report, _) = run(kind, SHORT, Fake::silent()).await;
        assert!(started.elapsed() >= SHORT, "{kind:?} gave up before its limit");
        assert!(!report.ok, "{kind:?}: {report:?}");
        assert_eq!(report.summary, "no answer within 200ms", "{kind:?}");
    }
}

/// Plain TCP: a server where the client speaks first says nothing; that is still a success.
#[tokio::test]
async fn tcp_silent_server_is_accepted() {
    let (report, sent) = run(ProbeKind::Tcp, LIMIT, Fake::silent()).await;
    assert!(sent.is_empty());
    assert_eq!(
        report,
        ProbeReport {
            protocol: "tcp".into(),
            ok: true,
            summary: "the target accepted the connection".into(),
            server_version: None,
            detail: Some("no banner within 300ms (usual where the client speaks first)".into()),
        }
    );
}

/// Plain TCP: a server that speaks first (SSH, SMTP) has its first line reported.
#[tokio::test]
async fn tcp_banner_first_line_is_reported() {
    let fake = Fake::greets("220 mail.example.test ESMTP Postfix\r\n250 second line\r\n");
    let (report, _) = run(ProbeKind::Tcp, LIMIT, fake).await;
    assert!(report.ok);
    assert_eq!(
        report.summary,
        "the target accepted the connection and sent a banner: 220 mail.example.test ESMTP Postfix"
    );
    assert_eq!(report.detail.as_deref(), Some("220 mail.example.test ESMTP Postfix"));
}

/// A binary greeting (MySQL's, on a port no scheme names) has no first line worth showing; the text in
/// it is shown instead.
#[tokio::test]
async fn tcp_binary_banner_shows_the_text_in_it() {
    let (report, _) = run(ProbeKind::Tcp, LIMIT, Fake::greets(mysql_greeting("8.0.36"))).await;
    assert!(report.ok);
    assert_eq!(
        report.summary,
        "the target accepted the connection and sent a binary banner (78 bytes)"
    );
    assert_eq!(
        report.detail.as_deref(),
        Some("text in it: 8.0.36 abcdefgh ijklmnopqrst mysql_native_password")
    );
}

/// A hostile banner cannot drive the user's terminal: escapes, C1 controls, bidi overrides and other
/// control characters are shown as visible escapes (by the one escaper, `crate::text`) and the line
/// is cut to 80 characters.
#[tokio::test]
async fn tcp_banner_is_sanitised_and_truncated() {
    let hostile = format!("\x1b]0;pwned\x07\x1b[2J\u{9b}1m\u{202e}evil\t{}\r\n", "x".repeat(200));
    let (report, _) = run(ProbeKind::Tcp, LIMIT, Fake::greets(hostile)).await;
    let banner = report.detail.expect("a banner");
    assert!(
        banner.starts_with(r"\x1b]0;pwned\x07\x1b[2J\u{9b}1m\u{202e}evil xxx"),
        "{banner:?}"
    );
    assert_eq!(banner.chars().count(), 80);
    assert!(banner.ends_with('…'));
    assert!(!report.summary.chars().any(|c| c.is_control() || is_invisible(c)));
}

/// The same goes for a MySQL error message and version string, which also come from the far end.
#[tokio::test]
async fn mysql_texts_are_sanitised() {
    let packet = mysql_error(1045, None, b"denied\x1b[31m\r\nforged line \xff");
    let (report, _) = run(ProbeKind::Mysql, LIMIT, Fake::greets(packet)).await;
    assert_eq!(
        report.summary,
        "MySQL answered with error 1045 instead of a greeting: denied\\x1b[31m forged line \u{fffd}"
    );

    let (report, _) = run(ProbeKind::Mysql, LIMIT, Fake::greets(mysql_greeting("8.0\x1b[1m.36\n"))).await;
    assert_eq!(report.server_version.as_deref(), Some(r"8.0\x1b[1m.36"));
}

/// A limit too large for a deadline (`Duration::MAX`) must not panic.
#[tokio::test]
async fn huge_limit_does_not_overflow() {
    let (report, _) = run(ProbeKind::Postgres, Duration::MAX, Fake::answers(&SSL_REQUEST, "N")).await;
    assert!(report.ok);
}

/// `--output json` shows reports as they are: field names are part of the script contract.
#[test]
fn report_serialises_with_its_field_names() {
    let report = ProbeReport::new(ProbeKind::Redis, true, "Redis answered PING: authentication required")
        .detail("authentication required (NOAUTH)");
    let json = serde_json::to_value(&report).expect("serialise");
    assert_eq!(
        json,
        serde_json::json!({
            "protocol": "redis",
            "ok": true,
            "summary": "Redis answered PING: authentication required",
            "server_version": null,
            "detail": "authentication required (NOAUTH)",
        })
    );
}

/// The fallback when no URL scheme names the protocol.
#[test]
fn well_known_ports_pick_their_protocol() {
    assert_eq!(kind_for_port(5432), ProbeKind::Postgres);
    assert_eq!(kind_for_port(3306), ProbeKind::Mysql);
    assert_eq!(kind_for_port(6379), ProbeKind::Redis);
    assert_eq!(kind_for_port(22), ProbeKind::Tcp);
    assert_eq!(kind_for_port(0), ProbeKind::Tcp);
}

/// Limits are shown as people write them.
#[test]
fn limits_read_naturally() {
    assert_eq!(human(Duration::from_secs(2)), "2s");
    assert_eq!(human(Duration::from_millis(300)), "300ms");
    assert_eq!(human(Duration::from_millis(1500)), "1.5s");
}
