//! What `connect --background` does with the registry: before starting, hold the tunnel's name and
//! answer with the one already running under it (same plan: its ready output; another plan: an
//! error naming it); once started, write the tunnel's entry and keep it current.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::open::{self, Observer, Opened};
use super::{Shutdown, Stop};
use crate::background::LogFile;
use crate::error::{Error, Result};
use crate::output;
use crate::pid_file::PidFile;
use crate::plan::TunnelPlan;
use crate::registry::{Entry, Listening, Registration, State, StateDir, fingerprint, process};
use crate::text::{printable, shell_word};
use crate::tunnel::Event;

/// How long a start waits for another start of the same name (connecting, perhaps at a prompt) before
/// it gives up.
const NAME_LOCK_LIMIT: Duration = Duration::from_secs(120);

/// `connect --background` in the process the user started: start the tunnel in a child, unless the
/// plan's name already runs. The name is held from before the check until the child has registered
/// (it does so before its ready output, which `launch` waits for) or failed, so two starts of one name
/// never both start it. A `--pid-file` is checked only for a tunnel about to start: the running one
/// holds it.
pub(super) async fn start(plan: &TunnelPlan, state: &StateDir, quiet: bool, shutdown: &mut Shutdown) -> Result<u8> {
    let Some(name) = &plan.name else {
        return launch(plan).await;
    };
    let _held = tokio::select! {
        held = state.lock(name, NAME_LOCK_LIMIT) => held?,
        stop = shutdown.next() => return match stop {
            Stop::Interrupt => Err(Error::interrupted()),
            Stop::Terminate => Ok(0),
        },
    };
    if let Some(running) = state.named(name).first() {
        return already_running(plan, name, running, quiet);
    }
    launch(plan).await
}

/// Check the pid file, then start the child and relay its ready output.
async fn launch(plan: &TunnelPlan) -> Result<u8> {
    if let Some(path) = &plan.lifecycle.pid_file {
        PidFile::check(path)?;
    }
    crate::background::launch(plan.output, plan.forwards.len()).await
}

/// `name` runs as `running`: with the same plan, print its ready output as a fresh start would (in the
/// format asked now) and succeed; with another plan, fail naming it and how to stop it.
fn already_running(plan: &TunnelPlan, name: &str, running: &Entry, quiet: bool) -> Result<u8> {
    let stop = format!("sqltun stop {}", printable(&shell_word(name)));
    if running.fingerprint != fingerprint(plan) {
        return Err(Error::usage(format!(
            "{} is already running with different settings; stop it first: {stop}",
            running.describe()
        )));
    }
    let mismatch = || Error::internal(format!("the entry of {} does not match its plan", running.describe()));
    if plan.lifecycle.unix_socket.is_some() {
        let path = running
            .listening
            .first()
            .and_then(|l| l.local_socket.clone())
            .ok_or_else(mismatch)?;
        let ready = open::socket_ready_at(plan, PathBuf::from(path), &running.hops, running.pid)?;
        output::socket_ready(plan.output, &ready)?;
    } else {
        let addrs: Vec<SocketAddr> = running.listening.iter().filter_map(|l| l.local_addr).collect();
        if addrs.len() != plan.forwards.len() {
            return Err(mismatch());
        }
        output::ready(plan.output, &open::ready_at(plan, &addrs, &running.hops, running.pid))?;
    }
    output::status(
        quiet,
        &format!("{} is already running; stop it with: {stop}", running.describe()),
    );
    Ok(0)
}

/// In the background child, once the tunnel is open and before its ready output: its entry.
pub(super) fn register(
    state: &StateDir,
    plan: &TunnelPlan,
    opened: &Opened,
    log: Option<&LogFile>,
) -> Result<Arc<Registration>> {
    let listening = match &opened.socket {
        Some(socket) => vec![Listening {
            local_addr: None,
            local_socket: Some(socket.path.to_string_lossy().into_owned()),
            target: socket.target.clone(),
        }],
        None => opened
            .ready
            .iter()
            .map(|r| Listening {
                local_addr: Some(r.addr),
                local_socket: None,
                target: r.target.clone(),
            })
            .collect(),
    };
    let start_time =
        process::own_start_time().ok_or_else(|| Error::internal("cannot read this process's start time in /proc"))?;
    let started_at = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let entry = Entry {
        name: plan.name.clone(),
        pid: std::process::id(),
        start_time,
        started_at,
        listening,
        hops: plan.hops.iter().map(|h| h.address()).collect(),
        state: State::Up,
        open_connections: 0,
        fingerprint: fingerprint(plan),
        log_file: log.map(|l| l.path.to_string_lossy().into_owned()),
    };
    state.register(entry).map(Arc::new)
}

/// Keeps the entry current: the chain's state and the number of open connections.
pub(super) fn observer(registration: Arc<Registration>) -> Observer {
    Arc::new(move |event: &Event| match event {
        Event::Lost { .. } | Event::Reconnecting { .. } => registration.set_state(State::Reconnecting),
        Event::Reconnected { .. } => registration.set_state(State::Up),
        Event::Connections { open } => registration.set_open_connections(*open as u64),
        Event::Stats { .. } => {}
    })
}
