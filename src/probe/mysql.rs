//! MySQL and MariaDB: the server speaks first, with a greeting packet (or an error packet refusing us).

use tokio::io::{AsyncRead, AsyncWrite};

use super::shown::{MESSAGE_CHARS, SHOWN_CHARS, sanitize};
use super::{Exchange, ProbeKind, ProbeReport, READ_CAP};

/// MySQL's protocol version byte at the start of every greeting since MySQL 3.21.
pub(super) const MYSQL_PROTOCOL_10: u8 = 10;

/// The first payload byte of a MySQL error packet.
pub(super) const MYSQL_ERROR: u8 = 0xff;

/// Reads the server's first packet, sending nothing.
pub(super) async fn probe<S: AsyncRead + AsyncWrite + Unpin>(exchange: &mut Exchange<S>) -> ProbeReport {
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
pub(super) fn mariadb_release(version: &str) -> Option<&str> {
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
