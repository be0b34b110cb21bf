//! Any other TCP service: whether it accepts, and whatever banner it volunteers within a moment.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::shown::{SHOWN_CHARS, describe, human, looks_like_text, printable_runs, sanitize, truncate_chars};
use super::{Exchange, ProbeReport, Stop};

/// The longest a TCP probe waits for a banner: servers that speak first (SSH, SMTP, FTP) do so at once.
const BANNER_WAIT: Duration = Duration::from_millis(300);

/// Sends nothing and reads the first line of a banner, waiting at most [`BANNER_WAIT`] for one.
pub(super) async fn probe<S: AsyncRead + AsyncWrite + Unpin>(exchange: &mut Exchange<S>) -> ProbeReport {
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
