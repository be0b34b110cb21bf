//! `sqltun config`: what `ssh -G` would say about the destination, the whole chain as JSON, or the
//! `Host` aliases of the ssh config.

use crate::cli::ConfigArgs;
use crate::env::ProcessEnv;
use crate::error::{Error, Result};
use crate::output;
use crate::resolve::{self, ResolvedHop};

pub(super) fn run(args: ConfigArgs) -> Result<()> {
    let Some(destination) = &args.destination else {
        let aliases = resolve::host_aliases(&args.ssh, &ProcessEnv)?;
        return output::data(&aliases.iter().map(|a| format!("{a}\n")).collect::<String>());
    };
    let hops = resolve::resolve_chain(destination, &args.ssh, &ProcessEnv, &resolve::NoSecrets)?;
    hops.iter().for_each(ResolvedHop::log_unused);
    if args.json {
        output::json_line(&resolve::chain_json(&hops))
    } else {
        let last = hops.last().ok_or_else(|| Error::internal("the chain has no hops"))?;
        output::data(&last.to_ssh_g())
    }
}
