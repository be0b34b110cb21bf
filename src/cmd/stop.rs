//! `sqltun stop NAME|PORT|--all`: SIGTERM to each chosen background tunnel (after checking once more
//! that its pid is still that tunnel), then wait, bounded, for each to exit, and say what was stopped.

use std::time::Duration;

use crate::cli::StopArgs;
use crate::env::ProcessEnv;
use crate::error::{Error, Kind, Result};
use crate::output;
use crate::registry::{Entry, StateDir};
use crate::text::printable;

/// How long a tunnel gets to exit after SIGTERM (it closes its channels and session within about a
/// second).
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// How often the tunnels being stopped are looked at.
const EXIT_POLL: Duration = Duration::from_millis(50);

pub(super) async fn run(args: StopArgs) -> Result<u8> {
    let quiet = args.verbosity.quiet;
    let running = match StateDir::existing(&ProcessEnv)? {
        Some(state) => state.running(),
        None => Vec::new(),
    };
    let chosen = match &args.tunnel {
        Some(wanted) => chosen(running, wanted)?,
        None if running.is_empty() => {
            output::status(quiet, "no background tunnels running");
            return Ok(0);
        }
        None => running,
    };
    let mut stopping = Vec::new();
    for entry in chosen {
        match entry.terminate() {
            Ok(true) => stopping.push(entry),
            // It exited between the listing and now: stopped all the same.
            Ok(false) => output::status(quiet, &format!("stopped {}", entry.describe())),
            Err(e) => {
                return Err(Error::internal(format!(
                    "cannot send SIGTERM to {}: {e}",
                    entry.describe()
                )));
            }
        }
    }
    let deadline = tokio::time::Instant::now() + EXIT_LIMIT;
    loop {
        stopping.retain(|entry| {
            let running = entry.is_running();
            if !running {
                output::status(quiet, &format!("stopped {}", entry.describe()));
            }
            running
        });
        if stopping.is_empty() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(EXIT_POLL).await;
    }
    // Entries of tunnels that could not remove their own (killed meanwhile) go now.
    if let Ok(Some(state)) = StateDir::existing(&ProcessEnv) {
        state.running();
    }
    match stopping.first() {
        None => Ok(0),
        Some(stuck) => Err(Error::new(
            Kind::StillRunning,
            format!(
                "{} did not exit within {}s of SIGTERM; see its log, or end it with: kill -KILL {}",
                stuck.describe(),
                EXIT_LIMIT.as_secs(),
                stuck.pid
            ),
        )),
    }
}

/// The running tunnels `wanted` names: by name, else (for a number) by a local port they listen on.
fn chosen(running: Vec<Entry>, wanted: &str) -> Result<Vec<Entry>> {
    let port: Option<u16> = wanted.parse().ok();
    let by_name: Vec<Entry> = running
        .iter()
        .filter(|e| e.name.as_deref() == Some(wanted))
        .cloned()
        .collect();
    if !by_name.is_empty() {
        return Ok(by_name);
    }
    let by_port: Vec<Entry> = running
        .into_iter()
        .filter(|e| {
            port.is_some_and(|port| {
                e.listening
                    .iter()
                    .any(|l| l.local_addr.is_some_and(|a| a.port() == port))
            })
        })
        .collect();
    if !by_port.is_empty() {
        return Ok(by_port);
    }
    let shown = printable(wanted);
    let what = match port {
        Some(_) => format!("no running tunnel is named {shown} or listens on local port {shown}"),
        None => format!("no running tunnel is named {shown}"),
    };
    Err(Error::new(Kind::NotRunning, format!("{what} (sqltun ls lists them)")))
}
