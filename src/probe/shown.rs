//! Bytes from the far end as people are shown them: sanitised, cut short, described when unexpected.

use std::time::Duration;

use super::READ_CAP;

/// Most characters of a banner, version or preview shown to people.
pub(super) const SHOWN_CHARS: usize = 80;

/// Most characters of a server's error message shown to people.
pub(super) const MESSAGE_CHARS: usize = 200;

/// Whether `line` reads as text: not empty, and nearly all printable ASCII.
pub(super) fn looks_like_text(line: &[u8]) -> bool {
    let printable = line
        .iter()
        .filter(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\t' | b'\r'))
        .count();
    !line.is_empty() && printable * 10 >= line.len() * 9
}

/// The runs of 4 or more printable ASCII characters in `bytes`, joined by spaces (as `strings` finds them).
pub(super) fn printable_runs(bytes: &[u8]) -> String {
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
pub(super) fn sanitize(bytes: &[u8], max_chars: usize) -> String {
    let lossy = String::from_utf8_lossy(bytes);
    let line = lossy
        .split(char::is_whitespace)
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    truncate_chars(&crate::text::escaped(&line, READ_CAP), max_chars)
}

/// `text` cut to `max_chars` characters, the last one `…` when cut.
pub(super) fn truncate_chars(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A short, safe description of unexpected bytes: their first line as text when it reads as text,
/// a TLS record when it is one, else the first bytes in hex.
pub(super) fn describe(bytes: &[u8]) -> String {
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
pub(super) fn human(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}
