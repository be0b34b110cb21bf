//! `sqltun exec -- COMMAND`: open the tunnel, run the command with it, exit with its status.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::open;
use super::{Shutdown, Stop};
use crate::cli::ExecArgs;
use crate::db as url;
use crate::env::ProcessEnv;
use crate::error::{EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, Error, Result};
use crate::output::{self, Ready, Terminal};
use crate::plan::{Forward, OutputFormat, TunnelPlan};
use crate::resolve;

pub(super) async fn run(args: ExecArgs, shutdown: &mut Shutdown) -> Result<u8> {
    let plan = resolve::plan(&args.tunnel(), &ProcessEnv)?;
    let ui = Arc::new(Terminal::new(args.verbosity.quiet));
    let pins = Arc::new(crate::ssh::Pins::default());
    let Some(opened) = open::open(&plan, ui.clone(), &pins, shutdown.next()).await? else {
        return Ok(130);
    };
    let ready = opened.ready.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = {
        let plan = plan.clone();
        let quiet = args.verbosity.quiet;
        // stdout belongs to the command: supervisor events go to stderr only.
        tokio::spawn(async move {
            let stopped = async {
                let _ = stop_rx.await;
            };
            open::serve(&plan, opened, ui, pins, OutputFormat::Port, quiet, None, stopped).await
        })
    };
    let status = run_command(&args, &plan, &ready, shutdown).await;
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(2), serving).await {
        Ok(Ok(end)) => {
            if let (Err(e), _) = open::ending(end) {
                tracing::info!("the tunnel ended before the command: {e}");
            }
        }
        Ok(Err(_)) => {}
        Err(_) => tracing::debug!("the tunnel took too long to close"),
    }
    status
}

/// Run the command with the tunnel's variables and placeholders; its exit code, or 126/127 when it
/// could not be run. Signals are passed on to it while it runs.
async fn run_command(args: &ExecArgs, plan: &TunnelPlan, ready: &[Ready], shutdown: &mut Shutdown) -> Result<u8> {
    let mut command = tokio::process::Command::new(substitute(&args.command[0], ready));
    crate::secret::withhold_from(command.as_std_mut());
    command.args(args.command[1..].iter().map(|a| substitute(a, ready)));
    command.envs(output::env_vars(ready));
    // These would send libpq somewhere other than PGHOST, past the tunnel.
    command.env_remove("PGHOSTADDR").env_remove("PGSERVICE");
    if let (Some(ready), Some(forward)) = (ready.first(), plan.forwards.first()) {
        command.envs(client_env(forward, ready));
    }
    let program = args.command[0].to_string_lossy().into_owned();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                EXIT_NOT_FOUND
            } else {
                EXIT_NOT_EXECUTABLE
            };
            output::error(&Error::usage(format!("cannot run `{program}`: {e}")));
            return Ok(code);
        }
    };
    let pid = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
    // A terminal's Ctrl-C reaches the whole foreground group, the command included: passing SIGINT on
    // as well would deliver it twice. Without a terminal, and for SIGTERM, pass it on.
    let terminal = std::io::stdin().is_terminal();
    let status: ExitStatus = loop {
        tokio::select! {
            status = child.wait() => break status.map_err(|e| Error::internal(format!("waiting for `{program}`: {e}")))?,
            stop = shutdown.next() => match stop {
                Stop::Interrupt => if !terminal { pass_on(pid, Signal::SIGINT) },
                Stop::Terminate => pass_on(pid, Signal::SIGTERM),
            },
        }
    };
    Ok(exit_code(status))
}

fn pass_on(pid: Option<Pid>, sig: Signal) {
    if let Some(pid) = pid
        && let Err(e) = kill(pid, sig)
    {
        tracing::debug!("passing {sig} to the command failed: {e}");
    }
}

/// The command's exit status as a shell reports it: its code, or 128+N when signal N ended it.
fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        (None, None) => 1,
    }
}

/// `{host}`, `{port}`, `{addr}`, `{url}` (the first target) and `{host_N}` … (target N, from 1) in an argument.
fn substitute(arg: &OsString, ready: &[Ready]) -> OsString {
    let Some(text) = arg.to_str() else { return arg.clone() };
    if !text.contains('{') {
        return arg.clone();
    }
    let mut out = text.to_string();
    for (i, r) in ready.iter().enumerate().rev() {
        let n = i + 1;
        for (name, value) in fields(r) {
            out = out.replace(&format!("{{{name}_{n}}}"), &value);
        }
    }
    if let Some(first) = ready.first() {
        for (name, value) in fields(first) {
            out = out.replace(&format!("{{{name}}}"), &value);
        }
    }
    OsString::from(out)
}

fn fields(r: &Ready) -> [(&'static str, String); 4] {
    [
        ("host", r.addr.ip().to_string()),
        ("port", r.addr.port().to_string()),
        ("addr", r.addr.to_string()),
        ("url", r.url.clone()),
    ]
}

/// The variables the database's own client reads (PGHOST, MYSQL_TCP_PORT, DATABASE_URL, …).
fn client_env(forward: &Forward, ready: &Ready) -> Vec<(String, String)> {
    let family = forward
        .url
        .as_ref()
        .map(|u| u.scheme.family())
        .or_else(|| url::Scheme::for_port(forward.target.port).map(|s| s.family()));
    url::client_env(
        forward.url.as_ref(),
        family,
        &ready.addr.ip().to_string(),
        ready.addr.port(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(port: u16) -> Ready {
        Ready {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            target: "db:5432".into(),
            url: format!("postgres://127.0.0.1:{port}/app"),
            url_without_password: format!("postgres://127.0.0.1:{port}/app"),
            hops: vec![],
            pid: 1,
        }
    }

    /// Placeholders in arguments are how a command that takes no environment learns the tunnel.
    #[test]
    fn placeholders() {
        let r = [ready(5000), ready(5001)];
        let sub = |s: &str| substitute(&OsString::from(s), &r).into_string().unwrap();
        assert_eq!(sub("-p{port}"), "-p5000");
        assert_eq!(sub("{host}:{port_2}"), "127.0.0.1:5001");
        assert_eq!(sub("{url}"), "postgres://127.0.0.1:5000/app");
        assert_eq!(sub("{addr_1} {addr_2}"), "127.0.0.1:5000 127.0.0.1:5001");
        assert_eq!(sub("{unknown} {port_3}"), "{unknown} {port_3}");
    }

    /// A signal's death is 128+N, as shells report it, so scripts can tell it from a normal exit.
    #[test]
    fn exit_codes() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
    }
}
