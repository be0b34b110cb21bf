//! PostgreSQL: the 8-byte SSLRequest, answered by one byte, `S` or `N`, before any login.

use tokio::io::{AsyncRead, AsyncWrite};

use super::shown::{MESSAGE_CHARS, sanitize};
use super::{Exchange, ProbeReport, READ_CAP};

/// PostgreSQL's SSLRequest: length 8, then the request code 80877103 (1234 << 16 | 5679).
pub(super) const SSL_REQUEST: [u8; 8] = {
    let code = 80_877_103_u32.to_be_bytes();
    [0, 0, 0, 8, code[0], code[1], code[2], code[3]]
};

/// Sends the SSLRequest and reads the one-byte answer (or an error from a server that cannot start).
pub(super) async fn probe<S: AsyncRead + AsyncWrite + Unpin>(exchange: &mut Exchange<S>) -> ProbeReport {
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
