//! The subcommands, wired together: resolve the plan, build the chain, bind, announce, serve.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::cli::{Command, ConfigArgs, ConnectArgs};
use crate::error::{Error, Kind, Result};
use crate::output::{self, Terminal};
use crate::plan::TunnelPlan;
use crate::resolve::{self, env::ProcessEnv};
use crate::ssh::Chain;
use crate::tunnel::{self, Listener};

/// Run one subcommand until it is done or `shutdown` resolves.
pub async fn run(command: Command, shutdown: impl Future<Output = ()>) -> Result<()> {
    match command {
        Command::Connect(args) => connect(args, shutdown).await,
        Command::Config(args) => config(args),
    }
}

/// `sqltun config`: what `ssh -G` would say about the destination, or the whole chain as JSON.
fn config(args: ConfigArgs) -> Result<()> {
    let hops = resolve::resolve_chain(&args.destination, &args.ssh, &ProcessEnv, &resolve::NoSecrets)?;
    for hop in &hops {
        for (directive, origin) in &hop.resolved.unsupported {
            tracing::info!(
                "{}: {directive} is not used by sqltun ({})",
                hop.dest.original,
                origin.describe()
            );
        }
    }
    if args.json {
        output::json_line(&crate::report::chain_json(&hops))
    } else {
        let last = hops.last().ok_or_else(|| Error::internal("the chain has no hops"))?;
        output::data(&last.resolved.to_ssh_g())
    }
}

async fn connect(args: ConnectArgs, shutdown: impl Future<Output = ()>) -> Result<()> {
    let plan = resolve::plan(&args.tunnel, &ProcessEnv)?;
    tracing::debug!(?plan, "resolved");
    let ui = Arc::new(Terminal::new(args.verbosity.quiet));
    tokio::pin!(shutdown);
    let chain = tokio::select! {
        chain = Chain::connect(&plan, ui.clone()) => chain,
        _ = &mut shutdown => {
            ui.finish();
            return Ok(());
        }
    };
    ui.finish();
    let chain = chain?;
    // Bind only now: a script that sees the port can use it at once.
    let listeners = match bind(&plan).await {
        Ok(listeners) => listeners,
        Err(e) => {
            chain.close().await;
            return Err(e);
        }
    };
    let addrs: Vec<SocketAddr> = listeners.iter().filter_map(|l| l.listener.local_addr().ok()).collect();
    output::ready(plan.output, &addrs)?;
    for (addr, forward) in addrs.iter().zip(&plan.forwards) {
        let via = plan.hops.iter().map(|h| h.address()).collect::<Vec<_>>().join(" -> ");
        output::status(
            args.verbosity.quiet,
            &format!("forwarding {addr} -> {} via {via}; Ctrl-C to stop", forward.target),
        );
    }
    let open_limit = plan
        .hops
        .last()
        .map(|h| h.connect_timeout)
        .unwrap_or(resolve::DEFAULT_CONNECT_TIMEOUT);
    tunnel::serve(listeners, chain, open_limit, shutdown).await
}

async fn bind(plan: &TunnelPlan) -> Result<Vec<Listener>> {
    let mut listeners = Vec::with_capacity(plan.forwards.len());
    for forward in &plan.forwards {
        let addr = SocketAddr::new(plan.bind, forward.local_port);
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::AddrInUse => {
                    "; another process uses it: pick another --local-port or omit it to let the OS choose"
                }
                std::io::ErrorKind::PermissionDenied => {
                    "; ports below 1024 need privileges: pick a higher --local-port"
                }
                std::io::ErrorKind::AddrNotAvailable => "; that address is not on this machine: check --bind",
                _ => "",
            };
            Error::new(Kind::LocalBind, format!("cannot listen on {addr}: {e}{hint}"))
        })?;
        if !plan.bind.is_loopback() {
            tracing::warn!(
                "listening on {addr}, which is not loopback: anyone who can reach this machine reaches {}",
                forward.target
            );
            output::status(
                false,
                &format!(
                    "WARNING: listening on {addr} (not loopback): anyone who can reach it reaches {}",
                    forward.target
                ),
            );
        }
        listeners.push(Listener {
            listener,
            target: forward.target.clone(),
        });
    }
    Ok(listeners)
}
