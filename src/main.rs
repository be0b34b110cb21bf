//! Entry point: parse, set up logging on stderr, run, and turn the outcome into an exit code.

use std::process::ExitCode;

use clap::Parser;
use sqltun::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = match &cli.command {
        Command::Connect(args) => args.verbosity,
        Command::Exec(args) => args.verbosity,
        Command::Check(args) => args.verbosity,
        Command::Config(args) => args.verbosity,
    };
    init_logging(verbosity.verbose, verbosity.quiet);
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

fn init_logging(verbose: u8, quiet: bool) {
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
    // stdout belongs to the ready line: logs go to stderr, always.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sqltun::output::LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(verbose >= 2)
        .without_time()
        .init();
}
