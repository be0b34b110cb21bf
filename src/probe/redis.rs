//! Redis: `PING`, answered by `+PONG` or an error such as `-NOAUTH`; then `INFO server` for the version.

use tokio::io::{AsyncRead, AsyncWrite};

use super::shown::{MESSAGE_CHARS, SHOWN_CHARS, sanitize, truncate_chars};
use super::{Exchange, ProbeKind, ProbeReport, READ_CAP};

/// `PING` as a RESP array, as redis-cli sends it.
pub(super) const REDIS_PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

/// `INFO server` as a RESP array: the smallest INFO section that carries `redis_version`.
pub(super) const REDIS_INFO_SERVER: &[u8] = b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n";

/// Sends `PING` and reads the first line of the reply.
pub(super) async fn probe<S: AsyncRead + AsyncWrite + Unpin>(exchange: &mut Exchange<S>) -> ProbeReport {
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
