//! `sqltun connect`: open the tunnel, print the ready line, serve until a signal, the idle timeout or
//! the lifetime ends it. A tunnel with `--background`, or with a name, registers itself (see `registered`).

use std::sync::Arc;

use super::open::{self, Opened};
use super::registered;
use super::{Shutdown, Stop};
use crate::background::LogFile;
use crate::cli::ConnectArgs;
use crate::env::ProcessEnv;
use crate::error::{EXIT_IDLE, EXIT_MAX_LIFETIME, Result};
use crate::output::{self, Terminal};
use crate::pid_file::PidFile;
use crate::plan::TunnelPlan;
use crate::registry::StateDir;
use crate::resolve;
use crate::ssh::Pins;
use crate::tunnel::End;

pub(super) async fn run(args: ConnectArgs, shutdown: &mut Shutdown) -> Result<u8> {
    let plan = resolve::plan(&args.tunnel(), &ProcessEnv)?;
    tracing::debug!(?plan, "resolved");
    let life = &plan.lifecycle;
    // Checked before dialling (and before the child starts): a state directory that cannot be used
    // fails a background tunnel at once. A named tunnel in the foreground registers too, so `sqltun ls`
    // shows it and `sqltun stop NAME` ends it; without a usable state directory it still runs, unlisted.
    let state = if life.background {
        Some(StateDir::open(&ProcessEnv)?)
    } else if plan.name.is_some() {
        StateDir::open(&ProcessEnv)
            .inspect_err(|e| tracing::warn!("this tunnel will not be listed by sqltun ls: {}", e.message()))
            .ok()
    } else {
        None
    };
    if let Some(state) = &state
        && life.background
        && !crate::background::is_child()
    {
        // The pid file is checked there, once it is clear that the tunnel is not running already.
        return registered::start(&plan, state, args.verbosity.quiet, shutdown).await;
    }
    if let Some(path) = &life.pid_file {
        PidFile::check(path)?;
    }
    let log = life
        .background
        .then(|| LogFile::open(life.log_file.as_deref(), &ProcessEnv))
        .transpose()?;
    let quiet = args.verbosity.quiet;
    let ui = Arc::new(Terminal::new(quiet));
    let deadline = life.max_lifetime.map(|d| tokio::time::Instant::now() + d);
    let pins = Arc::new(Pins::default());
    // The end of --max-lifetime before the tunnel is ready ends it as SIGTERM would: quietly.
    let stopped = async {
        tokio::select! {
            stop = shutdown.next() => stop,
            _ = until(deadline) => Stop::Terminate,
        }
    };
    let Some(opened) = open::open(&plan, ui.clone(), &pins, stopped).await? else {
        return Ok(0);
    };
    let pid_file = match &life.pid_file {
        Some(path) => Some(PidFile::create(path)?),
        None => None,
    };
    let registration = match &state {
        Some(state) => Some(registered::register(state, &plan, &opened, log.as_ref())?),
        None => None,
    };
    announce(&plan, &opened, log.as_ref(), quiet)?;
    let stopped = async {
        tokio::select! {
            _ = shutdown.next() => {},
            _ = until(deadline) => {},
        }
    };
    let observer = registration.clone().map(registered::observer);
    let served = open::serve(&plan, opened, ui, pins, plan.output, quiet, observer, stopped).await;
    drop(pid_file);
    drop(registration);
    // Which stop it was is read off the deadline.
    let lifetime_over = deadline.is_some_and(|at| tokio::time::Instant::now() >= at);
    closed(&plan, served, lifetime_over, quiet)
}

/// Resolves at `deadline`, never without one.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The ready output on stdout, then what is forwarded where on stderr; with `--background`, detach
/// here (the log's first line says what it is about).
fn announce(plan: &TunnelPlan, opened: &Opened, log: Option<&LogFile>, quiet: bool) -> Result<()> {
    let routes: Vec<String> = match &opened.socket {
        Some(socket) => {
            output::socket_ready(plan.output, socket)?;
            vec![format!("{} -> {}", socket.path.display(), socket.target)]
        }
        None => {
            output::ready(plan.output, &opened.ready)?;
            let targets = plan.forwards.iter().map(|f| &f.target);
            opened
                .ready
                .iter()
                .zip(targets)
                .map(|(r, t)| format!("{} -> {t}", r.addr))
                .collect()
        }
    };
    let via = plan.hops.iter().map(|h| h.address()).collect::<Vec<_>>().join(" -> ");
    match log {
        Some(log) => {
            let pid = std::process::id();
            let stop = match &plan.name {
                Some(name) => format!("sqltun stop {}", crate::text::printable(&crate::text::shell_word(name))),
                None => format!("kill {pid}"),
            };
            let running = format!(
                "tunnel running in the background (pid {pid}): {} via {via}; log: {}; stop it with: {stop}",
                routes.join(", "),
                log.path.display()
            );
            output::status(quiet, &running);
            crate::background::detach(log);
            output::status(quiet, &running);
        }
        None => {
            for route in &routes {
                output::status(quiet, &format!("forwarding {route} via {via}; Ctrl-C to stop"));
            }
        }
    }
    Ok(())
}

/// The `closed` event and the exit code for how serving ended.
fn closed(plan: &TunnelPlan, served: End, lifetime_over: bool, quiet: bool) -> Result<u8> {
    let (code, why) = match &served {
        End::Idle => (EXIT_IDLE, "idle-timeout"),
        End::Shutdown if lifetime_over => (EXIT_MAX_LIFETIME, "max-lifetime"),
        _ => (0, ""),
    };
    let (result, reason) = open::ending(served);
    let why = if why.is_empty() { reason } else { why };
    let message = match &result {
        Err(e) => e.message().to_string(),
        Ok(()) => why.to_string(),
    };
    output::event(
        plan.output,
        "closed",
        serde_json::json!({ "reason": why, "message": message }),
    );
    result?;
    // A log file also gets the ordinary end, so its reader knows the tunnel is gone and why.
    if code != 0 || output::detached() {
        output::status(quiet, &format!("closed the tunnel ({why})"));
    }
    Ok(code)
}
