//! What answers at the far end of a tunnel. `sqltun check` opens a forward and asks the target the
//! smallest question its protocol allows — without logging in — to tell a PostgreSQL, MySQL/MariaDB or
//! Redis server apart from anything else.
//!
//! | kind | sent | expected |
//! | --- | --- | --- |
//! | PostgreSQL | the 8-byte SSLRequest | one byte, `S` or `N` (no TLS handshake follows) |
//! | MySQL/MariaDB | nothing | the server's greeting packet, or an error packet refusing us |
//! | Redis | `PING` (then `INFO server` if it answered `PONG`) | `+PONG`, or an error such as `-NOAUTH` |
//! | TCP | nothing | whatever banner the server volunteers within a moment |
//!
//! The far end is untrusted: the whole exchange ends by the caller's limit, no answer is kept beyond
//! [`READ_CAP`] whatever its length fields claim, and only sanitised text (no control or invisible
//! characters, bounded length) reaches a report.
//!
//! Here: the entry ([`probe`]), the bounded reading every protocol shares (`Exchange`) and the report.
//! Each protocol has its module (`postgres`, `mysql`, `redis`, `tcp`); `shown` turns the far end's
//! bytes into text safe to show.

use std::io;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

use shown::{MESSAGE_CHARS, describe, human, sanitize};

mod mysql;
mod postgres;
mod redis;
mod shown;
mod tcp;
#[cfg(test)]
mod tests;

/// Most bytes kept from any one answer; length fields claiming more are not believed.
const READ_CAP: usize = 16 * 1024;

/// The longest the polite close may take, within what is left of the limit.
const CLOSE_GRACE: Duration = Duration::from_millis(200);

/// How far ahead a deadline goes when the caller's limit does not fit an `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Which protocol to speak to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Postgres,
    Mysql,
    Redis,
    Tcp,
}

impl ProbeKind {
    /// The protocol's name in reports: `postgresql`, `mysql`, `redis` or `tcp`.
    pub fn protocol(self) -> &'static str {
        match self {
            ProbeKind::Postgres => "postgresql",
            ProbeKind::Mysql => "mysql",
            ProbeKind::Redis => "redis",
            ProbeKind::Tcp => "tcp",
        }
    }

    /// What a server of this kind does at once, said when it did not.
    fn expectation(self) -> &'static str {
        match self {
            ProbeKind::Postgres => "a PostgreSQL server answers the SSL request at once with one byte, S or N",
            ProbeKind::Mysql => "a MySQL or MariaDB server sends its greeting as soon as a client connects",
            ProbeKind::Redis => "a Redis server answers PING at once",
            ProbeKind::Tcp => "a server that speaks first sends its banner at once",
        }
    }
}

/// The kind of server usually found on `port`, for targets whose URL scheme does not say.
pub fn kind_for_port(port: u16) -> ProbeKind {
    use crate::db::{Family, Scheme};
    match Scheme::for_port(port).map(|s| s.family()) {
        Some(Family::Postgres) => ProbeKind::Postgres,
        Some(Family::Mysql) => ProbeKind::Mysql,
        Some(Family::Redis) => ProbeKind::Redis,
        _ => ProbeKind::Tcp,
    }
}

/// What the probe learned. Every string in it is sanitised text from, or about, the far end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// `postgresql`, `mysql`, `redis` or `tcp`.
    pub protocol: String,
    /// The expected kind of server answered (for `tcp`: the target accepted and did not hang up at once).
    pub ok: bool,
    /// One line for people.
    pub summary: String,
    /// The version in a MySQL/MariaDB greeting, as sent; Redis's `redis_version` if INFO told us.
    pub server_version: Option<String>,
    /// More about the answer: why it is not what was expected, or what the server refused.
    pub detail: Option<String>,
}

impl ProbeReport {
    fn new(kind: ProbeKind, ok: bool, summary: impl Into<String>) -> ProbeReport {
        ProbeReport {
            protocol: kind.protocol().to_string(),
            ok,
            summary: summary.into(),
            server_version: None,
            detail: None,
        }
    }

    fn detail(mut self, detail: impl Into<String>) -> ProbeReport {
        self.detail = Some(detail.into());
        self
    }

    fn version(mut self, version: Option<String>) -> ProbeReport {
        self.server_version = version;
        self
    }
}

/// Asks what answers on `stream` (the far end of a forward), in the protocol of `kind`. Returns within
/// `limit` whatever the peer does; never fails: a silent, closing or confused peer is a report with
/// `ok == false` saying so.
pub async fn probe<S: AsyncRead + AsyncWrite + Unpin>(kind: ProbeKind, stream: S, limit: Duration) -> ProbeReport {
    let started = Instant::now();
    let mut exchange = Exchange::new(kind, stream, limit);
    let report = match kind {
        ProbeKind::Postgres => postgres::probe(&mut exchange).await,
        ProbeKind::Mysql => mysql::probe(&mut exchange).await,
        ProbeKind::Redis => redis::probe(&mut exchange).await,
        ProbeKind::Tcp => tcp::probe(&mut exchange).await,
    };
    exchange.close().await;
    tracing::debug!(
        protocol = report.protocol,
        ok = report.ok,
        summary = %report.summary,
        elapsed_ms = started.elapsed().as_millis(),
        "probe finished"
    );
    report
}

/// Why reading an answer stopped before it was complete.
#[derive(Debug)]
enum Stop {
    /// The deadline passed.
    TimedOut,
    /// The peer closed (EOF, reset, broken pipe).
    Closed,
    /// [`READ_CAP`] bytes arrived without forming an answer.
    Full,
    /// Any other I/O error.
    Failed(io::Error),
}

impl Stop {
    fn from_io(error: io::Error) -> Stop {
        match error.kind() {
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::WriteZero => Stop::Closed,
            _ => Stop::Failed(error),
        }
    }
}

/// One probe's conversation: the stream, the deadline every read and write shares, and the answer so far.
struct Exchange<S> {
    kind: ProbeKind,
    stream: S,
    limit: Duration,
    deadline: Instant,
    answer: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Exchange<S> {
    fn new(kind: ProbeKind, stream: S, limit: Duration) -> Exchange<S> {
        let now = Instant::now();
        let deadline = now.checked_add(limit).unwrap_or(now + FAR_FUTURE);
        Exchange {
            kind,
            stream,
            limit,
            deadline,
            answer: Vec::new(),
        }
    }

    async fn send(&mut self, request: &[u8]) -> Result<(), Stop> {
        let stream = &mut self.stream;
        let written = async {
            stream.write_all(request).await?;
            stream.flush().await
        };
        match timeout_at(self.deadline, written).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Stop::from_io(error)),
            Err(_) => Err(Stop::TimedOut),
        }
    }

    /// Appends whatever the next read brings to the answer.
    async fn fill(&mut self) -> Result<(), Stop> {
        let room = READ_CAP.saturating_sub(self.answer.len());
        if room == 0 {
            return Err(Stop::Full);
        }
        let mut chunk = [0_u8; 4096];
        let want = room.min(chunk.len());
        match timeout_at(self.deadline, self.stream.read(&mut chunk[..want])).await {
            Err(_) => Err(Stop::TimedOut),
            Ok(Ok(0)) => Err(Stop::Closed),
            Ok(Ok(n)) => {
                self.answer.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Ok(Err(error)) => Err(Stop::from_io(error)),
        }
    }

    /// Reads until `complete(answer)` holds.
    async fn fill_until(&mut self, complete: impl Fn(&[u8]) -> bool) -> Result<(), Stop> {
        while !complete(&self.answer) {
            self.fill().await?;
        }
        Ok(())
    }

    /// Ends the conversation politely (a FIN or a channel EOF), within what is left of the limit.
    async fn close(&mut self) {
        let until = self.deadline.min(Instant::now() + CLOSE_GRACE);
        if let Ok(Err(error)) = timeout_at(until, self.stream.shutdown()).await {
            tracing::trace!(%error, "closing the probe stream");
        }
    }
}

impl<S> Exchange<S> {
    /// The report for an exchange that stopped before a complete answer arrived.
    fn stopped(&self, stop: Stop) -> ProbeReport {
        let kind = self.kind;
        let got = &self.answer;
        let expectation = kind.expectation();
        let received = || format!("received {} bytes: {}; {expectation}", got.len(), describe(got));
        match stop {
            Stop::TimedOut if got.is_empty() => {
                ProbeReport::new(kind, false, format!("no answer within {}", human(self.limit))).detail(expectation)
            }
            Stop::TimedOut => ProbeReport::new(kind, false, format!("no complete answer within {}", human(self.limit)))
                .detail(received()),
            Stop::Closed if got.is_empty() => {
                ProbeReport::new(kind, false, "the target closed the connection without answering").detail(expectation)
            }
            Stop::Closed => ProbeReport::new(
                kind,
                false,
                "the target closed the connection before its answer was complete",
            )
            .detail(received()),
            Stop::Full => ProbeReport::new(
                kind,
                false,
                format!("the target sent {READ_CAP} bytes without forming an answer"),
            )
            .detail(received()),
            Stop::Failed(error) => {
                let summary = format!(
                    "the connection to the target failed: {}",
                    sanitize(error.to_string().as_bytes(), MESSAGE_CHARS)
                );
                let report = ProbeReport::new(kind, false, summary);
                if got.is_empty() {
                    report.detail(expectation)
                } else {
                    report.detail(received())
                }
            }
        }
    }

    /// The report for a complete answer of the wrong kind.
    fn not_this_kind(&self, what: &str) -> ProbeReport {
        let name = match self.kind {
            ProbeKind::Postgres => "PostgreSQL",
            ProbeKind::Mysql => "MySQL or MariaDB",
            ProbeKind::Redis => "Redis",
            ProbeKind::Tcp => "TCP",
        };
        ProbeReport::new(self.kind, false, format!("{what}: it does not look like {name}")).detail(format!(
            "received {} bytes: {}",
            self.answer.len(),
            describe(&self.answer)
        ))
    }
}
