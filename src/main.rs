//! Entry point: parse, set up logging on stderr, run, and turn the outcome into an exit code.

use std::process::ExitCode;

use sqltun::cli::Command;
use sqltun::cmd::{Shutdown, Stop};

fn main() -> ExitCode {
    let cli = match sqltun::cli::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(sqltun::cli::Stop::Display(shown)) => return ExitCode::from(sqltun::output::help_or_version(&shown)),
        Err(sqltun::cli::Stop::Usage(text)) => return ExitCode::from(sqltun::output::usage_error(&text)),
    };
    let verbosity = match &cli.command {
        Command::Connect(args) => args.verbosity,
        Command::Exec(args) => args.verbosity,
        Command::Check(args) => args.verbosity,
        Command::Config(args) => args.verbosity,
        Command::Ls(args) => args.verbosity,
        Command::Stop(args) => args.verbosity,
        Command::Authorize(args) => args.verbosity,
        Command::Completions(_) => sqltun::cli::Verbosity::default(),
    };
    sqltun::logging::init(verbosity.verbose, verbosity.quiet);
    forbid_core_dumps();
    keep_freed_memory();
    // One thread for everything: a forwarded byte goes from the SSH session's task to its connection's
    // task with no wake-up crossing threads and no work stealing, and buffers are freed by the thread
    // that allocated them. The work is I/O plus one cipher pass per hop, which one core carries faster
    // than the tools it is compared with (OpenSSH's ssh is single-threaded too).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return ExitCode::from(failed(&sqltun::error::Error::internal(format!(
                "cannot start the runtime: {e}"
            ))));
        }
    };
    let code = runtime.block_on(async {
        let mut shutdown = match shutdown_signals() {
            Ok(shutdown) => shutdown,
            Err(e) => return failed(&sqltun::error::Error::internal(format!("cannot watch signals: {e}"))),
        };
        let code = match sqltun::cmd::run(cli.command, &mut shutdown).await {
            Ok(code) => code,
            Err(e) => failed(&e),
        };
        // Said while the signals still go to `shutdown`, so a Ctrl-C the command saw too cannot cut it off.
        drop(shutdown);
        code
    });
    // Forwarding tasks may still hold sockets; do not wait for them past the shutdown grace.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(code)
}

/// Say why sqltun failed; its exit code.
fn failed(e: &sqltun::error::Error) -> u8 {
    sqltun::output::error(e);
    e.exit_code()
}

/// Listen to SIGINT and SIGTERM from now on, and hand each to the command as a [`Stop`]. Once the
/// command no longer listens (`config`, `completions`, or it is done), a signal ends sqltun the way it
/// would without a handler: exit 128+N.
fn shutdown_signals() -> std::io::Result<Shutdown> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let stop = tokio::select! {
                _ = interrupt.recv() => Stop::Interrupt,
                _ = terminate.recv() => Stop::Terminate,
            };
            tracing::info!("{stop:?}: shutting down");
            if tx.send(stop).is_err() {
                std::process::exit(match stop {
                    Stop::Interrupt => 130,
                    Stop::Terminate => 143,
                });
            }
        }
    });
    Ok(Shutdown::new(rx))
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

/// Raise glibc's trim and mmap thresholds, the one way safe code can: freeing a block that was
/// mmapped sets the mmap threshold to its size and the trim threshold to twice that (mallopt(3),
/// "dynamic mmap threshold"). russh decodes every data packet into a fresh buffer; with the default
/// thresholds glibc returns the freed top of the heap to the kernel after each burst and faults it in
/// again on the next (thousands of page faults per 256 MiB downloaded). Peak memory does not change:
/// at most 8 MiB of freed heap is kept for reuse. Other allocators ignore this.
fn keep_freed_memory() {
    const BLOCK: usize = 4 << 20;
    let block = std::hint::black_box(vec![0u8; BLOCK]);
    drop(block);
}
