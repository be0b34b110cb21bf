//! Entry point: parse, set up logging on stderr, run, and turn the outcome into an exit code.

use std::process::ExitCode;

use sqltun::cli::Command;

fn main() -> ExitCode {
    let cli = match sqltun::cli::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(stop) => return ExitCode::from(sqltun::output::parse_stop(stop)),
    };
    let verbosity = match &cli.command {
        Command::Connect(args) => args.verbosity,
        Command::Exec(args) => args.verbosity,
        Command::Check(args) => args.verbosity,
        Command::Config(args) => args.verbosity,
        Command::Completions(_) => sqltun::cli::Verbosity::default(),
    };
    sqltun::logging::init(verbosity.verbose, verbosity.quiet);
    forbid_core_dumps();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            sqltun::output::error(&sqltun::error::Error::internal(format!(
                "cannot start the runtime: {e}"
            )));
            return ExitCode::from(sqltun::error::Kind::Internal.exit_code());
        }
    };
    let outcome = runtime.block_on(sqltun::app::run(cli.command, shutdown_signal()));
    // Forwarding tasks may still hold sockets; do not wait for them past the shutdown grace.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            sqltun::output::error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}

/// Passwords, passphrases and keys sit in this process's memory, and a release build aborts on panic: no
/// core file may hold them. Not dumpable also keeps other processes of the same user from ptrace and
/// /proc/PID/mem and environ. Commands sqltun starts are dumpable again (execve resets it); they inherit
/// the core size limit of 0 but may raise it (the hard limit is left alone).
fn forbid_core_dumps() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    // PR_SET_DUMPABLE is Linux's; elsewhere the core size limit below is the whole defence.
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!("cannot turn off core dumps (PR_SET_DUMPABLE): {e}");
    }
    let hard = getrlimit(Resource::RLIMIT_CORE).map_or(0, |(_, hard)| hard);
    if let Err(e) = setrlimit(Resource::RLIMIT_CORE, 0, hard) {
        tracing::warn!("cannot set the core file size limit to 0: {e}");
    }
}
