//! `sqltun config`: what `ssh -G` would say about the destination, the whole chain as JSON, or the
//! `Host` aliases of the ssh config. A saved tunnel's NAME shows that tunnel.

use crate::cli::{ConfigArgs, RouteArgs, TunnelArgs};
use crate::env::{Environment, ProcessEnv};
use crate::error::{Error, Result};
use crate::output;
use crate::resolve::{self, ResolvedHop, tunnels};

pub(super) fn run(args: ConfigArgs) -> Result<()> {
    let env = &ProcessEnv;
    let Some(destination) = &args.destination else {
        let aliases = resolve::host_aliases(&args.ssh, env)?;
        return output::data(&aliases.iter().map(|a| format!("{a}\n")).collect::<String>());
    };
    // A name in the tunnels file is that tunnel; anything else is an SSH destination, as `ssh -G` takes it.
    let saved = saved_named(&args, env)?;
    let (hops, tunnel) = match &saved {
        Some(saved) => {
            let flags = TunnelArgs::route_only(&RouteArgs {
                ssh_args: args.ssh.clone(),
                ..RouteArgs::default()
            });
            let dest = saved.ssh.as_ref().map(|s| s.value.clone()).ok_or_else(|| {
                Error::usage(format!(
                    "{} has no ssh destination: add ssh = \"[user@]host\" to it",
                    saved.describe()
                ))
            })?;
            let hops = resolve::resolve_chain(&dest, &args.ssh, Some(saved), env, &resolve::NoSecrets)?;
            (hops, Some(resolve::tunnel_json(&flags, saved)))
        }
        None => (
            resolve::resolve_chain(destination, &args.ssh, None, env, &resolve::NoSecrets)?,
            None,
        ),
    };
    hops.iter().for_each(ResolvedHop::log_unused);
    if args.json {
        let mut json = resolve::chain_json(&hops);
        if let Some(tunnel) = tunnel {
            json["tunnel"] = tunnel;
        }
        output::json_line(&json)
    } else {
        let last = hops.last().ok_or_else(|| Error::internal("the chain has no hops"))?;
        output::data(&last.to_ssh_g())
    }
}

/// The saved tunnel the positional names: a bare name (no user, no port) found in a tunnels file.
fn saved_named(args: &ConfigArgs, env: &dyn Environment) -> Result<Option<tunnels::Saved>> {
    let Some(destination) = &args.destination else {
        return Ok(None);
    };
    if destination.user.is_some() || destination.port.is_some() || destination.original.contains("://") {
        return Ok(None);
    }
    // A broken tunnels file found on the way must not stop `config HOST` for a plain SSH host: it is said,
    // and the positional is taken as a host. One named with --tunnels-file is the person's intent: an error.
    let files = match tunnels::load_all(args.tunnels_file.path.as_deref(), env) {
        Ok(files) => files,
        Err(e) if args.tunnels_file.path.is_none() => {
            tracing::warn!(
                "{}; `{}` is taken as an SSH destination",
                e.message(),
                destination.original
            );
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    Ok(files
        .into_iter()
        .flat_map(|f| f.tunnels)
        .find(|t| t.name == destination.original))
}
