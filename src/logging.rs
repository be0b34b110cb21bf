//! Log records on stderr in sqltun's voice: `sqltun: warning: …`, `sqltun: error: …`, and at `-v`
//! and above `sqltun: …` progress and `sqltun: debug: …` detail. Colour only where
//! [`crate::output::stderr_colours`] allows it (a terminal, no `NO_COLOR`).

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Send log records to stderr (stdout belongs to the ready output), filtered by `-q`/`-v` or
/// `SQLTUN_LOG`.
pub fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "sqltun=warn,russh=error",
        (false, 1) => "sqltun=info,russh=warn",
        (false, 2) => "sqltun=debug,russh=info",
        _ => "sqltun=trace,russh=debug",
    };
    let filter = std::env::var("SQLTUN_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::output::LogWriter)
        .with_ansi(crate::output::stderr_colours())
        .event_format(Voice { target: verbose >= 2 })
        .init();
}

/// One line per record: `sqltun: LEVEL: [target: ][span{fields}: ]message fields`.
#[derive(Debug)]
struct Voice {
    target: bool,
}

impl<S, N> FormatEvent<S, N> for Voice
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        // A background tunnel's stderr becomes its log file after it started with colours on a terminal:
        // from then on, plain text (span fields formatted earlier may still carry colour: dropped).
        if crate::output::detached() {
            let mut line = String::new();
            self.record(ctx, Writer::new(&mut line), event)?;
            return write!(writer, "{}", without_escapes(&line));
        }
        self.record(ctx, writer.by_ref(), event)
    }
}

impl Voice {
    fn record<S, N>(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        let metadata = event.metadata();
        let (label, colour) = match *metadata.level() {
            Level::ERROR => ("error: ", "31"),
            Level::WARN => ("warning: ", "33"),
            Level::INFO => ("", ""),
            Level::DEBUG => ("debug: ", "2"),
            Level::TRACE => ("trace: ", "2"),
        };
        write!(writer, "sqltun: ")?;
        if writer.has_ansi_escapes() && !colour.is_empty() {
            write!(writer, "\x1b[{colour}m{label}\x1b[0m")?;
        } else {
            write!(writer, "{label}")?;
        }
        if self.target {
            write!(writer, "{}: ", metadata.target())?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}", span.name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                write!(writer, ": ")?;
            }
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// `text` without ANSI CSI sequences (`ESC [ … final byte`), such as colours.
fn without_escapes(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameter and intermediate bytes, then one final byte in @..~.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log file gets the words of a coloured line, not its escape sequences.
    #[test]
    fn escapes_are_dropped() {
        assert_eq!(
            without_escapes("sqltun: \x1b[33mwarning: \x1b[0mhop{\x1b[3mid\x1b[0m=1}: lost"),
            "sqltun: warning: hop{id=1}: lost"
        );
        assert_eq!(without_escapes("plain [text] ~"), "plain [text] ~");
    }
}
