//! One file per subcommand: each takes what `resolve` made of its flags (or its own args, for `config`
//! and `completions`) and the [`Shutdown`] `main` hands down, and wires the stages together.
//!
//! | module | owns |
//! | --- | --- |
//! | `connect` | `sqltun connect`: open, announce, serve until a signal, the idle timeout or the lifetime ends it |
//! | `exec` | `sqltun exec -- COMMAND`: open, run the command with the tunnel, exit with its status |
//! | `check` | `sqltun check`: every stage once, each with its time |
//! | `config` | `sqltun config`: what `ssh -G` would say, or the whole chain as JSON |
//! | `authorize` | `sqltun authorize`: authorized_keys lines that let the key only forward to the targets |
//! | `completions` | `sqltun completions SHELL` |
//! | `ls` | `sqltun ls`: the background tunnels, running and configured |
//! | `stop` | `sqltun stop NAME\|PORT\|--all`: SIGTERM to a background tunnel, and wait for it to exit |
//! | `open` | what connect and exec share: the chain and the listeners, and serving them |
//! | `registered` | connect `--background` and the registry: one start per name, the tunnel's entry |

mod authorize;
mod check;
mod completions;
mod config;
mod connect;
mod exec;
mod ls;
mod open;
mod registered;
mod stop;

use crate::cli::Command;
use crate::error::Result;

/// Which signal asked sqltun to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

/// The signals `main` listens to, as they arrive. Only `main` knows about signal handlers; commands
/// (and tests) only see the [`Stop`]s it sends.
#[derive(Debug)]
pub struct Shutdown(tokio::sync::mpsc::UnboundedReceiver<Stop>);

impl Shutdown {
    /// A shutdown fed by `stops`; it never resolves once the sender is gone.
    pub fn new(stops: tokio::sync::mpsc::UnboundedReceiver<Stop>) -> Shutdown {
        Shutdown(stops)
    }

    /// Stop listening: from now on a signal ends sqltun as it would without a handler (exit 128+N).
    /// For the commands that never wait on a signal.
    pub fn close(&mut self) {
        self.0.close();
    }

    /// The next signal.
    pub async fn next(&mut self) -> Stop {
        match self.0.recv().await {
            Some(stop) => stop,
            None => std::future::pending().await,
        }
    }
}

/// Run one subcommand until it is done or a signal ends it; returns the exit code. `shutdown` stays with
/// the caller, still listening, so that a signal the command also saw through a listener of its own (a
/// prompt's, a secret command's) cannot end the process before the caller has reported the outcome.
pub async fn run(command: Command, shutdown: &mut Shutdown) -> Result<u8> {
    if !matches!(command, Command::Connect(_) | Command::Exec(_) | Command::Check(_)) {
        shutdown.close();
    }
    match command {
        Command::Connect(args) => connect::run(args, shutdown).await,
        Command::Exec(args) => exec::run(args, shutdown).await,
        Command::Check(args) => check::run(args, shutdown).await,
        Command::Config(args) => config::run(args).map(|_| 0),
        Command::Authorize(args) => authorize::run(args),
        Command::Completions(args) => completions::run(args).map(|_| 0),
        Command::Ls(args) => ls::run(args).map(|_| 0),
        Command::Stop(args) => stop::run(args).await,
    }
}
