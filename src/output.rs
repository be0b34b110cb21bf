//! Every byte sqltun writes for people and scripts: the ready line on stdout (the data contract, and
//! the only thing ever written there), and progress, prompts, notices and errors on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::{Error, Kind, Result};
use crate::plan::OutputFormat;
use crate::secret::Secret;
use crate::ssh::{HopLabel, Interaction};

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
        .map(|(name, value)| format!("{name}={}\n", shell_quote(value)))
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
                text.push_str(&format!("{name}={}\n", shell_quote(&value)));
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

/// Single-quote a value for POSIX shells.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// Print the ready output and flush.
pub fn ready(format: OutputFormat, ready: &[Ready]) -> Result<()> {
    write_ready(&ready_text(format, ready))
}

/// Print the ready output of a Unix socket listener and flush.
pub fn socket_ready(format: OutputFormat, ready: &SocketReady) -> Result<()> {
    write_ready(&socket_ready_text(format, ready))
}

fn write_ready(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
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
    let mut out = std::io::stdout().lock();
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
    let mut out = std::io::stdout().lock();
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

/// What a failed parse prints, and the exit status: `--help`/`--version` on stdout (0), a usage
/// error on stderr (2).
pub fn parse_stop(stop: crate::cli::Stop) -> u8 {
    match stop {
        crate::cli::Stop::Display(shown) => {
            // clap styles help only for a terminal, and honours NO_COLOR.
            match shown.print() {
                Ok(()) => 0,
                Err(_) => Kind::Internal.exit_code(),
            }
        }
        crate::cli::Stop::Usage(text) => {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            if !text.ends_with('\n') {
                let _ = err.write_all(b"\n");
            }
            Kind::Usage.exit_code()
        }
    }
}

/// The one line an error gets on stderr.
pub fn error(e: &Error) {
    let _ = writeln!(std::io::stderr().lock(), "sqltun: {}", e.message());
    if e.kind() == Kind::Internal {
        let _ = writeln!(
            std::io::stderr().lock(),
            "sqltun: this is a bug; please report it with the output of -vv"
        );
    }
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
    fn confirm(&self, _question: &str) -> bool {
        false
    }
    /// Only what was typed for this very hop at this very prompt: an answer meant for one server never
    /// reaches another that happens to ask the same question.
    fn secret(&self, hop: &HopLabel, prompt: &str) -> Option<Secret> {
        let typed = self.terminal.typed.lock().ok()?;
        let key = Typed::key(hop, prompt);
        typed.iter().find(|(k, _)| *k == key).map(|(_, s)| s.clone())
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

/// The terminal side of [`Interaction`]: a spinner while connecting (only when [`stderr_colours`]),
/// prompts on /dev/tty, notices on stderr.
#[derive(Debug)]
pub struct Terminal {
    spinner: Option<ProgressBar>,
    quiet: bool,
    /// Secrets a person typed, by hop and prompt, so a reconnect never has to ask again (wiped on exit).
    typed: std::sync::Mutex<Vec<(Typed, Secret)>>,
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
        let spinner = (!quiet && stderr_colours()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Terminal {
            spinner,
            quiet,
            typed: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Stop the spinner (the tunnel is up, or failed).
    pub fn finish(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }

    fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.spinner {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}

impl Interaction for Terminal {
    fn progress(&self, hop: &HopLabel, step: &str) {
        tracing::info!("{} {step}", hop.short());
        if let Some(bar) = &self.spinner {
            bar.set_message(format!("{} {step}", hop.short()));
        }
    }

    fn confirm(&self, question: &str) -> bool {
        self.suspend(|| {
            let Ok(mut tty) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty") else {
                return false;
            };
            loop {
                if tty.write_all(question.as_bytes()).and_then(|_| tty.flush()).is_err() {
                    return false;
                }
                let mut line = String::new();
                let Ok(reader) = tty.try_clone() else { return false };
                if std::io::BufReader::new(reader).read_line(&mut line).is_err() {
                    return false;
                }
                match line.trim().to_ascii_lowercase().as_str() {
                    "yes" | "y" => return true,
                    "no" | "n" | "" => return false,
                    _ => {
                        let _ = tty.write_all(b"Please type 'yes' or 'no': ");
                    }
                }
            }
        })
    }

    fn secret(&self, hop: &HopLabel, prompt: &str) -> Option<Secret> {
        let answer = self.suspend(|| rpassword::prompt_password(prompt).ok().map(Secret::new));
        if let (Some(secret), Ok(mut typed)) = (&answer, self.typed.lock()) {
            // The last answer to a prompt is the one that worked (earlier ones were refused).
            let key = Typed::key(hop, prompt);
            typed.retain(|(k, _)| *k != key);
            typed.push((key, secret.clone()));
        }
        answer
    }

    fn notice(&self, hop: &HopLabel, text: &str) {
        if !self.quiet {
            self.suspend(|| {
                let _ = writeln!(std::io::stderr().lock(), "sqltun: {hop}: {text}");
            });
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
