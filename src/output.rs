//! Every byte sqltun writes for people and scripts: the ready line on stdout (the data contract, and
//! the only thing ever written there), and progress, prompts, notices and errors on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::{Error, Kind, Result};
use crate::plan::OutputFormat;
use crate::secret::Secret;
use crate::secret_command::SecretCommand;
use crate::ssh::{Asked, HopLabel, Interaction, Stage};
use crate::text::{Quoting, shell_word_with};

mod prompt;

/// What a script learns about one ready listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub addr: SocketAddr,
    /// `host:port` as seen from the last hop.
    pub target: String,
    /// The target URL rewritten to the local end (password kept: this is the data contract).
    pub url: String,
    /// The same without the password, for `--output json`: its events end up in CI logs.
    pub url_without_password: String,
    /// Hops in dialling order, `user@host:port`.
    pub hops: Vec<String>,
    pub pid: u32,
}

/// What a script learns about a Unix socket listener (`--unix-socket`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketReady {
    pub path: std::path::PathBuf,
    /// For PostgreSQL's `DIR/.s.PGSQL.PORT`: the directory and port libpq takes (`psql -h DIR -p PORT`).
    pub postgres: Option<(std::path::PathBuf, u16)>,
    pub target: String,
    pub url: String,
    pub hops: Vec<String>,
    pub pid: u32,
}

/// The ready output for a Unix socket: its path where a port would be (`port`, `addr`), and in `env` and
/// `json` the directory and port a PostgreSQL client takes.
pub fn socket_ready_text(format: OutputFormat, r: &SocketReady) -> String {
    let path = r.path.display().to_string();
    let (host, port) = match &r.postgres {
        Some((dir, port)) => (dir.display().to_string(), Some(*port)),
        None => (path.clone(), None),
    };
    match format {
        OutputFormat::Port | OutputFormat::Addr => format!("{path}\n"),
        OutputFormat::Url => format!("{}\n", r.url),
        OutputFormat::Env => [
            ("SQLTUN_HOST", host),
            ("SQLTUN_PORT", port.map(|p| p.to_string()).unwrap_or_default()),
            ("SQLTUN_ADDR", path),
            ("SQLTUN_URL", r.url.clone()),
        ]
        .iter()
        .map(|(name, value)| format!("{name}={}\n", shell_word_with(value, Quoting::Always)))
        .collect(),
        OutputFormat::Json => {
            let event = serde_json::json!({
                "event": "ready",
                "index": 1,
                "local_socket": path,
                "local_host": host,
                "local_port": port,
                "local_addr": path,
                "target": r.target,
                "url": r.url,
                "hops": r.hops,
                "pid": r.pid,
            });
            format!("{event}\n")
        }
    }
}

/// The text stdout carries once the tunnel is ready.
pub fn ready_text(format: OutputFormat, ready: &[Ready]) -> String {
    let mut text = String::new();
    match format {
        OutputFormat::Port => ready
            .iter()
            .for_each(|r| text.push_str(&format!("{}\n", r.addr.port()))),
        OutputFormat::Addr => ready.iter().for_each(|r| text.push_str(&format!("{}\n", r.addr))),
        OutputFormat::Url => ready.iter().for_each(|r| text.push_str(&format!("{}\n", r.url))),
        OutputFormat::Env => {
            for (name, value) in env_vars(ready) {
                text.push_str(&format!("{name}={}\n", shell_word_with(&value, Quoting::Always)));
            }
        }
        OutputFormat::Json => {
            for (i, r) in ready.iter().enumerate() {
                let event = serde_json::json!({
                    "event": "ready",
                    "index": i + 1,
                    "local_host": r.addr.ip().to_string(),
                    "local_port": r.addr.port(),
                    "local_addr": r.addr.to_string(),
                    "target": r.target,
                    "url": r.url_without_password,
                    "hops": r.hops,
                    "pid": r.pid,
                });
                text.push_str(&format!("{event}\n"));
            }
        }
    }
    text
}

/// How many lines [`ready_text`] prints for `count` listeners (the background parent reads exactly these).
pub fn ready_line_count(format: OutputFormat, count: usize) -> usize {
    match format {
        OutputFormat::Env => 4 + if count > 1 { 4 * count } else { 0 },
        _ => count,
    }
}

/// `SQLTUN_HOST`, `SQLTUN_PORT`, `SQLTUN_ADDR`, `SQLTUN_URL` for the first listener, and `_1`, `_2`, …
/// variants for each when there are several.
pub fn env_vars(ready: &[Ready]) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    let mut push = |suffix: &str, r: &Ready| {
        vars.push((format!("SQLTUN_HOST{suffix}"), r.addr.ip().to_string()));
        vars.push((format!("SQLTUN_PORT{suffix}"), r.addr.port().to_string()));
        vars.push((format!("SQLTUN_ADDR{suffix}"), r.addr.to_string()));
        vars.push((format!("SQLTUN_URL{suffix}"), r.url.clone()));
    };
    if let Some(first) = ready.first() {
        push("", first);
    }
    if ready.len() > 1 {
        for (i, r) in ready.iter().enumerate() {
            push(&format!("_{}", i + 1), r);
        }
    }
    vars
}

/// Print the ready output and flush.
pub fn ready(format: OutputFormat, ready: &[Ready]) -> Result<()> {
    write_ready(&ready_text(format, ready))
}

/// Print the ready output of a Unix socket listener and flush.
pub fn socket_ready(format: OutputFormat, ready: &SocketReady) -> Result<()> {
    write_ready(&socket_ready_text(format, ready))
}

/// The ready output as it is, e.g. a background tunnel's, relayed by the process that started it.
pub fn relay_ready(text: &str) -> Result<()> {
    write_ready(text)
}

/// stdout, for this module alone: everything sqltun writes there goes through the functions above and
/// below, so stdout carries only the ready output and the data a script asked for.
#[allow(clippy::disallowed_methods, reason = "the one place that writes to stdout")]
fn stdout() -> std::io::StdoutLock<'static> {
    std::io::stdout().lock()
}

fn write_ready(text: &str) -> Result<()> {
    let mut out = stdout();
    // A closed stdout (the script went away) is not worth failing the tunnel over, but say so.
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        tracing::warn!("could not write the ready output to stdout: {e}");
    }
    Ok(())
}

/// A later event in `--output json` mode (`closed`, `reconnecting`, …); other formats print nothing.
pub fn event(format: OutputFormat, event: &str, fields: serde_json::Value) {
    if format != OutputFormat::Json {
        return;
    }
    let mut object = serde_json::json!({ "event": event });
    if let (Some(map), serde_json::Value::Object(extra)) = (object.as_object_mut(), fields) {
        map.extend(extra);
    }
    // Once detached, stdout is /dev/null and the log file is where a reader finds the events.
    if detached() {
        let _ = writeln!(std::io::stderr().lock(), "{object}");
        return;
    }
    let mut out = stdout();
    let _ = writeln!(out, "{object}").and_then(|_| out.flush());
}

/// Set once a background tunnel has left the terminal (`background::detach`): stdout is /dev/null and
/// stderr the log file from then on.
static DETACHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process is a background tunnel that has left the terminal.
pub fn detached() -> bool {
    DETACHED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Mark the process as detached (see [`detached`]).
pub fn mark_detached() {
    DETACHED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Data for a script on stdout (`config` output), flushed.
pub fn data(text: &str) -> Result<()> {
    let mut out = stdout();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::internal(format!("cannot write to stdout: {e}")))
}

/// One JSON value on one line of stdout.
pub fn json_line(value: &serde_json::Value) -> Result<()> {
    data(&format!("{value}\n"))
}

/// Whether stderr may carry escape sequences (colour, the spinner): a terminal, `NO_COLOR` unset or
/// empty (no-color.org), and `TERM` not `dumb`.
pub fn stderr_colours() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    !no_color && !dumb && !detached() && std::io::stderr().is_terminal()
}

/// `--help` or `--version`: clap's text on stdout, styled only for a terminal (clap honours NO_COLOR);
/// the exit status, 0.
pub fn help_or_version(shown: &clap::Error) -> u8 {
    match shown.print() {
        Ok(()) => 0,
        Err(_) => Kind::Internal.exit_code(),
    }
}

/// A usage error from parsing argv, already in sqltun's voice, on stderr; the exit status, 2.
pub fn usage_error(text: &str) -> u8 {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = err.write_all(b"\n");
    }
    Kind::Usage.exit_code()
}

/// The one line an error gets on stderr.
pub fn error(e: &Error) {
    let mut text = format!("sqltun: {}\n", e.message());
    if e.kind() == Kind::Internal {
        text.push_str("sqltun: this is a bug; please report it with the output of -vv\n");
    }
    // One write: stderr is unbuffered, and `writeln!` would write the parts one by one, so a line
    // another thread ends at the same moment could land inside the message.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The [`Interaction`] for reconnects: never asks anyone. Secrets come from what was typed at the first
/// connection; an unknown host key is refused; progress goes to the log only.
#[derive(Debug)]
pub struct Replay {
    terminal: std::sync::Arc<Terminal>,
}

impl Replay {
    pub fn new(terminal: std::sync::Arc<Terminal>) -> Self {
        Replay { terminal }
    }
}

impl Interaction for Replay {
    fn progress(&self, hop: &HopLabel, step: &str) {
        tracing::debug!("reconnect: {} {step}", hop.short());
    }
    fn ask<'a>(&'a self, _hop: &'a HopLabel, _question: &'a str) -> Asked<'a, Option<String>> {
        Box::pin(async { Ok(None) })
    }
    /// Only what was typed for this very hop at this very prompt: an answer meant for one server never
    /// reaches another that happens to ask the same question.
    fn secret<'a>(&'a self, hop: &'a HopLabel, prompt: &'a str) -> Asked<'a, Option<Secret>> {
        let found = self.terminal.typed.lock().ok().and_then(|typed| {
            let key = Typed::key(hop, prompt);
            typed.iter().find(|(k, _)| *k == key).map(|(_, s)| s.clone())
        });
        Box::pin(async move { Ok(found) })
    }
    fn notice(&self, hop: &HopLabel, text: &str) {
        self.terminal.notice(hop, text);
    }
}

/// A status line for people (suppressed by -q).
pub fn status(quiet: bool, text: &str) {
    if !quiet {
        let _ = writeln!(std::io::stderr().lock(), "sqltun: {text}");
    }
}

/// The spinner on stderr while connecting, if one is showing: log lines and notices are printed
/// through it (it is wiped, the line printed, and it is drawn again) so no frame is left behind.
static SPINNER: std::sync::Mutex<Option<ProgressBar>> = std::sync::Mutex::new(None);

fn spinner() -> Option<ProgressBar> {
    SPINNER.lock().ok().and_then(|bar| bar.clone())
}

/// Run `f` (which writes to stderr) with the spinner wiped meanwhile.
fn above_spinner<T>(f: impl FnOnce() -> T) -> T {
    match spinner() {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// Take the spinner off the screen (a prompt is coming, or connecting is over).
fn clear_spinner() {
    if let Some(bar) = SPINNER.lock().ok().and_then(|mut bar| bar.take()) {
        bar.finish_and_clear();
    }
}

/// The writer for log records: each record is written whole, above the spinner if one is showing.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogRecord;
    fn make_writer(&'a self) -> LogRecord {
        LogRecord(Vec::new())
    }
}

/// One log record being formatted; written to stderr when dropped.
#[derive(Debug)]
pub struct LogRecord(Vec<u8>);

impl Write for LogRecord {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogRecord {
    fn drop(&mut self) {
        let record = std::mem::take(&mut self.0);
        above_spinner(|| {
            let _ = std::io::stderr().lock().write_all(&record);
        });
    }
}

/// The terminal side of [`Interaction`]: on a terminal, a line per finished hop and a spinner for the
/// step in progress; prompts on /dev/tty (Ctrl-C ends them, and the connection); notices on stderr.
#[derive(Debug)]
pub struct Terminal {
    /// stderr is a terminal and -q was not given: progress is drawn.
    draws: bool,
    quiet: bool,
    /// Secrets a person typed, by hop and prompt, so a reconnect never has to ask again (wiped on exit).
    typed: std::sync::Mutex<Vec<(Typed, Secret)>>,
    /// The question on the terminal right now, if any.
    question: prompt::Current,
    /// A secret command is running and may be using the terminal: no spinner is drawn meanwhile.
    command_running: std::sync::atomic::AtomicBool,
    /// The hop being connected and when its first step started (for its finished line).
    hop_started: std::sync::Mutex<Option<(usize, std::time::Instant)>>,
}

/// Where a typed secret was asked for: the hop (position and address) and the prompt's text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Typed {
    hop: usize,
    address: String,
    prompt: String,
}

impl Typed {
    fn key(hop: &HopLabel, prompt: &str) -> Typed {
        Typed {
            hop: hop.index,
            address: hop.address.clone(),
            prompt: prompt.to_string(),
        }
    }
}

impl Terminal {
    pub fn new(quiet: bool) -> Self {
        Terminal {
            draws: !quiet && stderr_colours(),
            quiet,
            typed: std::sync::Mutex::new(Vec::new()),
            question: prompt::Current::default(),
            command_running: std::sync::atomic::AtomicBool::new(false),
            hop_started: std::sync::Mutex::new(None),
        }
    }

    /// Stop the spinner (the tunnel is up, or failed, or connecting was given up), and end a question
    /// still on the terminal with the terminal restored.
    pub fn finish(&self) {
        self.question.abandon(true);
        clear_spinner();
    }

    /// Show `step` on the spinner, starting one if none is showing.
    fn spin(&self, step: String) {
        if !self.draws || self.question.is_open() || self.command_running.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let Ok(mut slot) = SPINNER.lock() else { return };
        let bar = slot.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        bar.set_message(step);
    }

    /// A line that stays on the screen above the spinner (a finished hop).
    fn keep_line(&self, line: &str) {
        if !self.draws {
            return;
        }
        match spinner() {
            Some(bar) => bar.println(line),
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    async fn question(&self, question: &str, hidden: bool) -> Result<Option<zeroize::Zeroizing<String>>> {
        clear_spinner();
        prompt::ask(&self.question, question, hidden).await
    }
}

/// `23 ms`, `1.4 s`: how long a hop took, for its finished line.
fn took(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(1) {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{:.1} s", elapsed.as_secs_f64())
    }
}

impl Interaction for Terminal {
    fn progress(&self, hop: &HopLabel, step: &str) {
        tracing::info!("{} {step}", hop.short());
        if let Ok(mut started) = self.hop_started.lock()
            && started.is_none_or(|(index, _)| index != hop.index)
        {
            *started = Some((hop.index, std::time::Instant::now()));
        }
        self.spin(format!("{} {step}", hop.short()));
    }

    fn ask<'a>(&'a self, _hop: &'a HopLabel, question: &'a str) -> Asked<'a, Option<String>> {
        Box::pin(async move {
            let answer = self.question(question, false).await?;
            Ok(answer.map(|line| line.as_str().to_string()))
        })
    }

    fn secret<'a>(&'a self, hop: &'a HopLabel, prompt: &'a str) -> Asked<'a, Option<Secret>> {
        Box::pin(async move {
            let answer = self
                .question(prompt, true)
                .await?
                .map(|line| Secret::new(line.as_str().to_string()));
            if let (Some(secret), Ok(mut typed)) = (&answer, self.typed.lock()) {
                // The last answer to a prompt is the one that worked (earlier ones were refused).
                let key = Typed::key(hop, prompt);
                typed.retain(|(k, _)| *k != key);
                typed.push((key, secret.clone()));
            }
            Ok(answer)
        })
    }

    /// The spinner is taken off the screen and kept off while the command runs: it may ask on the
    /// terminal (a password manager's unlock prompt) and must not be drawn over.
    fn run_command<'a>(&'a self, _hop: &'a HopLabel, command: &'a SecretCommand) -> Asked<'a, Secret> {
        Box::pin(async move {
            use std::sync::atomic::Ordering;
            /// Lets the spinner draw again however the command ends (the future may be dropped).
            struct Running<'t>(&'t std::sync::atomic::AtomicBool);
            impl Drop for Running<'_> {
                fn drop(&mut self) {
                    self.0.store(false, Ordering::Relaxed);
                }
            }
            self.command_running.store(true, Ordering::Relaxed);
            let _running = Running(&self.command_running);
            clear_spinner();
            command.run().await
        })
    }

    fn notice(&self, hop: &HopLabel, text: &str) {
        if !self.quiet {
            above_spinner(|| {
                let _ = writeln!(std::io::stderr().lock(), "sqltun: {hop}: {text}");
            });
        }
    }

    fn tell(&self, _hop: &HopLabel, text: &str) {
        above_spinner(|| {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        });
    }

    /// A hop that authenticated stays on the screen as one line: `✓ [1/2] deploy@b1:22 23 ms`.
    fn stage(&self, hop: &HopLabel, stage: &Stage, elapsed: Duration) {
        tracing::debug!(%hop, ?stage, ?elapsed, "stage done");
        if let Stage::Auth(_) = stage {
            let since = self
                .hop_started
                .lock()
                .ok()
                .and_then(|s| *s)
                .filter(|(index, _)| *index == hop.index)
                .map_or(elapsed, |(_, at)| at.elapsed());
            self.keep_line(&format!("✓ {} {}", hop.short(), took(since)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Vec<Ready> {
        ["127.0.0.1:41873", "127.0.0.1:41874"]
            .iter()
            .map(|a| Ready {
                addr: a.parse().unwrap(),
                target: "db:5432".into(),
                url: "postgres://app:it's@127.0.0.1:41873/appdb".into(),
                url_without_password: "postgres://app@127.0.0.1:41873/appdb".into(),
                hops: vec!["deploy@bastion:22".into()],
                pid: 7,
            })
            .collect()
    }

    /// The background parent reads exactly `ready_line_count` lines: it must match what is printed.
    #[test]
    fn line_counts_match() {
        for format in [
            OutputFormat::Port,
            OutputFormat::Addr,
            OutputFormat::Url,
            OutputFormat::Env,
            OutputFormat::Json,
        ] {
            for n in 1..=3 {
                let ready: Vec<Ready> = two().into_iter().cycle().take(n).collect();
                assert_eq!(
                    ready_text(format, &ready).lines().count(),
                    ready_line_count(format, n),
                    "{format:?} x{n}"
                );
            }
        }
    }

    /// `eval` of the env output must give back the exact values, quotes included.
    #[test]
    fn env_output_is_shell_safe() {
        let text = ready_text(OutputFormat::Env, &two()[..1]);
        let script = format!("{text}printf '%s|%s' \"$SQLTUN_PORT\" \"$SQLTUN_URL\"");
        let out = std::process::Command::new("sh").arg("-c").arg(script).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "41873|postgres://app:it's@127.0.0.1:41873/appdb"
        );
    }

    /// A Unix socket's ready output names the socket where a port would be, one line per format as the
    /// background parent expects, and for PostgreSQL the directory and port psql takes.
    #[test]
    fn socket_ready_output() {
        let r = SocketReady {
            path: "/run/me/pg/.s.PGSQL.5432".into(),
            postgres: Some(("/run/me/pg".into(), 5432)),
            target: "db:5432".into(),
            url: "postgresql://%2Frun%2Fme%2Fpg:5432".into(),
            hops: vec![],
            pid: 7,
        };
        assert_eq!(socket_ready_text(OutputFormat::Port, &r), "/run/me/pg/.s.PGSQL.5432\n");
        let env = socket_ready_text(OutputFormat::Env, &r);
        assert!(env.contains("SQLTUN_HOST='/run/me/pg'\nSQLTUN_PORT='5432'\n"), "{env}");
        assert_eq!(env.lines().count(), ready_line_count(OutputFormat::Env, 1));
        let json: serde_json::Value = serde_json::from_str(&socket_ready_text(OutputFormat::Json, &r)).unwrap();
        assert_eq!(json["local_socket"], "/run/me/pg/.s.PGSQL.5432");
        assert_eq!(json["local_port"], 5432);
    }

    /// Each ready JSON line is one object with what a script needs.
    #[test]
    fn json_ready_events() {
        let text = ready_text(OutputFormat::Json, &two());
        let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1]["event"], "ready");
        assert_eq!(events[1]["local_port"], 41874);
        assert_eq!(events[1]["index"], 2);
        assert_eq!(events[0]["hops"][0], "deploy@bastion:22");
    }

    /// JSON events end up in CI logs: the ready event's URL keeps the user but not the password, while
    /// `--output url` and `--output env`, asked for to get a usable URL, keep it.
    #[test]
    fn only_json_drops_the_password() {
        let json = ready_text(OutputFormat::Json, &two()[..1]);
        assert!(!json.contains("it's"), "{json}");
        let event: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        assert_eq!(event["url"], "postgres://app@127.0.0.1:41873/appdb");
        for format in [OutputFormat::Url, OutputFormat::Env] {
            assert!(ready_text(format, &two()[..1]).contains("app:it"), "{format:?}");
        }
    }
}
