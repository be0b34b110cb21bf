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

use std::io;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

/// Most bytes kept from any one answer; length fields claiming more are not believed.
const READ_CAP: usize = 16 * 1024;

/// The longest a TCP probe waits for a banner: servers that speak first (SSH, SMTP, FTP) do so at once.
const BANNER_WAIT: Duration = Duration::from_millis(300);

/// Most characters of a banner, version or preview shown to people.
const SHOWN_CHARS: usize = 80;

/// Most characters of a server's error message shown to people.
const MESSAGE_CHARS: usize = 200;

/// The longest the polite close may take, within what is left of the limit.
const CLOSE_GRACE: Duration = Duration::from_millis(200);

/// How far ahead a deadline goes when the caller's limit does not fit an `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// PostgreSQL's SSLRequest: length 8, then the request code 80877103 (1234 << 16 | 5679).
const SSL_REQUEST: [u8; 8] = {
    let code = 80_877_103_u32.to_be_bytes();
    [0, 0, 0, 8, code[0], code[1], code[2], code[3]]
};

/// MySQL's protocol version byte at the start of every greeting since MySQL 3.21.
const MYSQL_PROTOCOL_10: u8 = 10;

/// The first payload byte of a MySQL error packet.
const MYSQL_ERROR: u8 = 0xff;

/// `PING` as a RESP array, as redis-cli sends it.
const REDIS_PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

/// `INFO server` as a RESP array: the smallest INFO section that carries `redis_version`.
const REDIS_INFO_SERVER: &[u8] = b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n";

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
    use crate::resolve::url::{Family, Scheme};
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
        ProbeKind::Postgres => probe_postgres(&mut exchange).await,
        ProbeKind::Mysql => probe_mysql(&mut exchange).await,
        ProbeKind::Redis => probe_redis(&mut exchange).await,
        ProbeKind::Tcp => probe_tcp(&mut exchange).await,
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

async fn probe_postgres<S: AsyncRead + AsyncWrite + Unpin>(exchange: &mut Exchange<S>) -> ProbeReport {
    if let Err(stop) = exchange.send(&SSL_REQUEST).await {
        return exchange.stopped(stop);
    }
    if let Err(stop) = exchange.fill().await {
        return exchange.stopped(stop);
    }
    let kind = exchange.kind;
    match exchange.answer.as_slice() {
        [b'S'] => ProbeReport::new(kind, true, "PostgreSQL answered the SSL request: SSL supported (S)"),
        [b'N'] => ProbeReport::new(kind, true, "PostgreSQL answered the SSL request: SSL not supported (N)"),
        // Servers from before SSL negotiation (PostgreSQL < 7.1), or one that could not start a backend,
        // answer with an error and hang up; the rest of it may still be on its way.
        [b'E', ..] => {
            // Whatever arrived is reported, also when the rest never comes.
            let _ = exchange.fill_until(postgres_error_complete).await;
            let message = postgres_error_message(&exchange.answer);
            ProbeReport::new(
                kind,
                false,
                format!("the target answered the SSL request with an error instead of S or N: {message}"),
            )
            .detail(
                "a current PostgreSQL server answers S or N; an error comes from a server older than 7.1 \
                 or one that could not start a backend",
            )
        }
        // A PostgreSQL server sends exactly one byte, then waits for the client: an SSH banner
        // ("SSH-2.0-…") also starts with S.
        [b'S' | b'N', ..] => {
            exchange.not_this_kind("the target answered the SSL request with more than the single byte S or N")
        }
        _ => exchange.not_this_kind("the target answered the SSL request with something other than S or N"),
    }
}

/// Whether `answer` (starting with `E`) holds a whole error: a v3 ErrorResponse (`E`, length, fields)
/// or a v2 error (`E`, NUL-terminated text). A v3 length beyond the cap is not waited for.
fn postgres_error_complete(answer: &[u8]) -> bool {
    match answer.get(1..) {
        None | Some([]) => false,
        Some([0, rest @ ..]) => match rest.get(..3) {
            Some(&[a, b, c]) => {
                let length = u32::from_be_bytes([0, a, b, c]) as usize;
                !(4..=READ_CAP).contains(&length) || answer.len() > length
            }
            _ => false,
        },
        Some(text) => text.contains(&0),
    }
}

/// The text of a PostgreSQL error (v3 fields `S`, `M`, `C`, or v2 text), sanitised.
fn postgres_error_message(answer: &[u8]) -> String {
    let body = answer.get(1..).unwrap_or_default();
    let v3_fields = match body {
        [0, a, b, c, fields @ ..] => {
            let length = u32::from_be_bytes([0, *a, *b, *c]) as usize;
            fields.get(..length.saturating_sub(4)).or(Some(fields))
        }
        _ => None,
    };
    let Some(fields) = v3_fields else {
        let text = body.split(|b| *b == 0).next().unwrap_or_default();
        return sanitize(text, MESSAGE_CHARS);
    };
    let (mut severity, mut message, mut code) = (None, None, None);
    for field in fields.split(|b| *b == 0) {
        if let Some((tag, value)) = field.split_first() {
            let value = sanitize(value, MESSAGE_CHARS);
            match tag {
                b'S' => severity = Some(value),
                b'M' => message = Some(value),
                b'C' => code = Some(value),
                _ => {}
            }
        }
    }
    let mut text = match (severity, message) {
        (Some(severity), Some(message)) => format!("{severity}: {message}"),
        (None, Some(message)) => message,
        (Some(severity), None) => severity,
        (None, None) => "(no message)".to_string(),
    };
    if let Some(code) = code {
        text.push_str(&format!(" (SQLSTATE {code})"));
    }
    text
}

async fn probe_mysql<S: AsyncRead + AsyncWrite + Unpin>(exchange: &mut Exchange<S>) -> ProbeReport {
    // The server speaks first; nothing is sent, so nothing can be mistaken for a login attempt.
    if let Err(stop) = exchange.fill_until(mysql_packet_complete).await {
        return exchange.stopped(stop);
    }
    let answer = exchange.answer.as_slice();
    let Some(&[a, b, c, sequence]) = answer.get(..4) else {
        return exchange.not_this_kind("the target sent less than a MySQL packet header");
    };
    let length = mysql_length(a, b, c);
    let Some(payload) = answer.get(4..4 + length) else {
        return exchange.not_this_kind(&format!(
            "the target's first 4 bytes would announce a MySQL packet of {length} bytes, more than any greeting"
        ));
    };
    if sequence != 0 {
        return exchange.not_this_kind(&format!(
            "the target's first packet has sequence number {sequence}, not 0"
        ));
    }
    match payload.split_first() {
        Some((&MYSQL_PROTOCOL_10, rest)) => mysql_greeting(exchange, rest),
        Some((&MYSQL_ERROR, rest)) => mysql_refusal(exchange.kind, rest),
        Some((first, _)) => exchange.not_this_kind(&format!(
            "the target's first packet starts with byte {first:#04x}, not protocol version 10 or an error"
        )),
        None => exchange.not_this_kind("the target's first packet is empty"),
    }
}

fn mysql_length(a: u8, b: u8, c: u8) -> usize {
    usize::from(a) | usize::from(b) << 8 | usize::from(c) << 16
}

/// Whether `answer` holds a whole first packet; a length no greeting could have is not waited for.
fn mysql_packet_complete(answer: &[u8]) -> bool {
    match answer.get(..3) {
        Some(&[a, b, c]) => {
            let length = mysql_length(a, b, c);
            length > READ_CAP - 4 || answer.len() >= 4 + length
        }
        _ => false,
    }
}

/// A protocol-10 greeting after its version byte: the NUL-terminated server version, then the
/// connection id (4 bytes), the first 8 bytes of the scramble and a filler byte that is always 0.
fn mysql_greeting<S>(exchange: &Exchange<S>, rest: &[u8]) -> ProbeReport {
    let Some(end) = rest.iter().position(|b| *b == 0) else {
        return exchange.not_this_kind("the target's greeting has no NUL-terminated server version");
    };
    let (raw_version, after) = (&rest[..end], &rest[end + 1..]);
    if raw_version.is_empty() || after.get(12) != Some(&0) {
        return exchange.not_this_kind("the target's first packet is not a well-formed MySQL greeting");
    }
    let version = sanitize(raw_version, SHOWN_CHARS);
    let summary = match mariadb_release(&version) {
        Some(release) => format!("MariaDB {release} answered with its greeting (server version {version})"),
        None => format!("MySQL answered with its greeting: server version {version}"),
    };
    ProbeReport::new(exchange.kind, true, summary).version(Some(version))
}

/// MariaDB's release in a greeting version: MariaDB 10.x prefixes `5.5.5-` (for clients that assumed
/// MySQL 5.5), MariaDB 11 sends its own version with `-MariaDB` in it.
fn mariadb_release(version: &str) -> Option<&str> {
    let release = match version.strip_prefix("5.5.5-") {
        Some(rest) => rest,
        None if version.contains("MariaDB") => version,
        None => return None,
    };
    let end = release
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(release.len());
    Some(&release[..end]).filter(|release| !release.is_empty())
}

/// An error packet instead of a greeting, after its 0xff: a 2-byte code, maybe `#` and a 5-character
/// SQLSTATE, then the message.
fn mysql_refusal(kind: ProbeKind, rest: &[u8]) -> ProbeReport {
    let (code, text) = match rest {
        [a, b, text @ ..] => (Some(u16::from_le_bytes([*a, *b])), text),
        _ => (None, rest),
    };
    let text = match text {
        [b'#', _, _, _, _, _, message @ ..] => message,
        _ => text,
    };
    let message = sanitize(text, MESSAGE_CHARS);
    let code_text = code.map(|code| format!(" {code}")).unwrap_or_default();
    let why = match code {
        Some(1130) => {
            "the server refused this client: no account may connect from the address it sees (through a \
             tunnel, the last hop's)"
        }
        Some(1129) => {
            "the server refused this client: the address it sees is blocked after too many connection \
             errors (FLUSH HOSTS unblocks it)"
        }
        Some(1040) => "the server refused this client: it has too many connections",
        _ => "the server refused this client before the handshake",
    };
    ProbeReport::new(
        kind,
        true,
        format!("MySQL answered with error{code_text} instead of a greeting: {message}"),
    )
    .detail(why)
}

async fn probe_redis<S: AsyncRead + AsyncWrite + Unpin>(exchange: &mut Exchange<S>) -> ProbeReport {
    if let Err(stop) = exchange.send(REDIS_PING).await {
        return exchange.stopped(stop);
    }
    if let Err(stop) = exchange.fill_until(|answer| first_line(answer).is_some()).await {
        return exchange.stopped(stop);
    }
    let kind = exchange.kind;
    let line = first_line(&exchange.answer).unwrap_or_default();
    match line.split_first() {
        Some((b'+', b"PONG")) => {
            let version = redis_version(exchange).await;
            let summary = match &version {
                Some(version) => format!("Redis {version} answered PING with PONG"),
                None => "Redis answered PING with PONG".to_string(),
            };
            ProbeReport::new(kind, true, summary).version(version)
        }
        Some((b'-', error)) => redis_refusal(kind, error),
        _ => exchange.not_this_kind("the target's reply to PING is not PONG or a Redis error"),
    }
}

/// The first line of a RESP reply, without its CRLF.
fn first_line(answer: &[u8]) -> Option<&[u8]> {
    answer
        .windows(2)
        .position(|pair| pair == b"\r\n")
        .map(|end| &answer[..end])
}

/// A RESP error reply to PING (after its `-`): still a Redis server, with a reason to refuse us.
fn redis_refusal(kind: ProbeKind, error: &[u8]) -> ProbeReport {
    let text = sanitize(error, READ_CAP);
    let (code, message) = text.split_once(' ').unwrap_or((text.as_str(), ""));
    let lower = text.to_ascii_lowercase();
    if code == "NOAUTH" {
        ProbeReport::new(kind, true, "Redis answered PING: authentication required")
            .detail("authentication required (NOAUTH)")
    } else if code == "DENIED" {
        // The message is a long how-to (which mentions authentication); its first sentence says what
        // happened.
        let sentence = message.split_inclusive(". ").next().unwrap_or_default().trim_end();
        ProbeReport::new(kind, true, "Redis answered PING: refused by protected mode").detail(format!(
            "protected mode (DENIED): {}",
            truncate_chars(sentence, MESSAGE_CHARS)
        ))
    } else if code == "ERR" && (lower.contains("authentication") || lower.contains("operation not permitted")) {
        // Servers before Redis 6 said `-ERR operation not permitted`.
        ProbeReport::new(kind, true, "Redis answered PING: authentication required").detail(format!(
            "authentication required ({})",
            truncate_chars(&text, MESSAGE_CHARS)
        ))
    } else {
        let text = truncate_chars(&text, MESSAGE_CHARS);
        ProbeReport::new(kind, true, format!("Redis answered PING with an error: {text}")).detail(text)
    }
}

/// `redis_version` from `INFO server`, best effort within what is left of the limit.
async fn redis_version<S: AsyncRead + AsyncWrite + Unpin>(exchange: &mut Exchange<S>) -> Option<String> {
    exchange.answer.clear();
    exchange.send(REDIS_INFO_SERVER).await.ok()?;
    // An incomplete reply may still hold the version; a failed read only costs the version.
    let _ = exchange.fill_until(redis_info_complete).await;
    let value = redis_info_field(&exchange.answer, b"redis_version:")?;
    Some(sanitize(value, SHOWN_CHARS)).filter(|version| !version.is_empty())
}

/// Whether an INFO reply is complete enough: the `redis_version` line arrived, or the reply is an error
/// or a whole bulk string (its length believed only up to the cap, where reading stops anyway).
fn redis_info_complete(answer: &[u8]) -> bool {
    let Some(header) = first_line(answer) else {
        return false;
    };
    if redis_info_field(answer, b"redis_version:").is_some() || header.first() != Some(&b'$') {
        return true;
    }
    match std::str::from_utf8(&header[1..])
        .ok()
        .and_then(|length| length.parse::<i64>().ok())
    {
        Some(length) => {
            usize::try_from(length).map_or(true, |length| answer.len() >= length.saturating_add(header.len() + 2))
        }
        None => true,
    }
}

/// The value of the INFO line starting with `name`, once its CRLF has arrived.
fn redis_info_field<'a>(answer: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut lines = answer.split(|b| *b == b'\n');
    // The last piece has no LF yet: it may still be growing.
    lines.next_back();
    lines
        .find_map(|line| line.strip_prefix(name))
        .map(|value| value.strip_suffix(b"\r").unwrap_or(value))
}

async fn probe_tcp<S: AsyncRead + AsyncWrite + Unpin>(exchange: &mut Exchange<S>) -> ProbeReport {
    let kind = exchange.kind;
    let wait = BANNER_WAIT.min(exchange.limit);
    let overall = exchange.deadline;
    exchange.deadline = overall.min(Instant::now() + wait);
    let stop = exchange.fill_until(|answer| answer.contains(&b'\n')).await.err();
    // The polite close may still use the rest of the limit.
    exchange.deadline = overall;
    if exchange.answer.is_empty() {
        return match stop {
            Some(Stop::TimedOut) | None => ProbeReport::new(kind, true, "the target accepted the connection").detail(
                format!("no banner within {} (usual where the client speaks first)", human(wait)),
            ),
            Some(Stop::Closed) => ProbeReport::new(
                kind,
                false,
                "the target accepted the connection, then closed it without sending anything",
            ),
            Some(stop) => exchange.stopped(stop),
        };
    }
    let answer = exchange.answer.as_slice();
    let line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    if looks_like_text(line) {
        let banner = sanitize(line, SHOWN_CHARS);
        let summary = format!("the target accepted the connection and sent a banner: {banner}");
        return ProbeReport::new(kind, true, summary).detail(banner);
    }
    // A binary greeting (MySQL's, for one) has no first line worth showing; the text inside it may say
    // what it is.
    let summary = format!(
        "the target accepted the connection and sent a binary banner ({} bytes)",
        answer.len()
    );
    let text = printable_runs(answer);
    let detail = if text.is_empty() {
        describe(answer)
    } else {
        format!("text in it: {text}")
    };
    ProbeReport::new(kind, true, summary).detail(truncate_chars(&detail, SHOWN_CHARS))
}

/// Whether `line` reads as text: not empty, and nearly all printable ASCII.
fn looks_like_text(line: &[u8]) -> bool {
    let printable = line
        .iter()
        .filter(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\t' | b'\r'))
        .count();
    !line.is_empty() && printable * 10 >= line.len() * 9
}

/// The runs of 4 or more printable ASCII characters in `bytes`, joined by spaces (as `strings` finds them).
fn printable_runs(bytes: &[u8]) -> String {
    bytes
        .split(|b| !(b.is_ascii_graphic() || *b == b' '))
        .filter(|run| run.len() >= 4)
        .map(|run| sanitize(run, SHOWN_CHARS))
        .filter(|run| !run.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text from the far end made safe to show: invalid UTF-8 replaced, whitespace runs (line breaks
/// included) collapsed to one space and trimmed, control and invisible formatting characters (terminal
/// escapes, C1 controls, bidi overrides) written as visible escapes by the one escaper,
/// [`crate::text::escaped`], and at most `max_chars` characters (the last one `…` when cut).
fn sanitize(bytes: &[u8], max_chars: usize) -> String {
    let lossy = String::from_utf8_lossy(bytes);
    let line = lossy
        .split(char::is_whitespace)
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    truncate_chars(&crate::text::escaped(&line, READ_CAP), max_chars)
}

/// `text` cut to `max_chars` characters, the last one `…` when cut.
fn truncate_chars(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A short, safe description of unexpected bytes: their first line as text when it reads as text,
/// a TLS record when it is one, else the first bytes in hex.
fn describe(bytes: &[u8]) -> String {
    if let [0x14..=0x17, 0x03, 0x00..=0x04, ..] = bytes {
        return "a TLS record (the target may expect TLS first)".to_string();
    }
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    if looks_like_text(line) {
        return format!("\"{}\"", sanitize(line, SHOWN_CHARS));
    }
    let hex: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 8 { " …" } else { "" };
    let text = printable_runs(bytes);
    if text.is_empty() {
        format!("bytes {}{more}", hex.join(" "))
    } else {
        format!(
            "bytes {}{more}, text in it: {}",
            hex.join(" "),
            truncate_chars(&text, SHOWN_CHARS)
        )
    }
}

/// `2s`, `300ms`, `1.5s`: a limit as people write it.
fn human(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
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
}
