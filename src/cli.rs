//! The command-line surface. Parsing validates shapes only; `resolve` turns the result into a plan.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::plan::Target;
use crate::resolve::dest::{Destination, parse_destination, parse_target};

const ABOUT: &str = "Open a tunnel to a private database through SSH bastions and print the local port.";

const CONNECT_EXAMPLES: &str = "\
Examples:
  sqltun connect --ssh deploy@bastion.example.com --db 10.0.12.7:5432
  PORT=$(sqltun connect --ssh bastion --db db.internal:5432 &) ...
  sqltun connect --ssh ssh://deploy@[2001:db8::1]:2222 --db db.internal:3306 --local-port 13306
  SQLTUN_SSH_PASSWORD=... sqltun connect --batch --ssh deploy@bastion --db 10.0.0.5:6379

stdout carries only the local port (one line, once the tunnel is usable); progress goes to stderr.
Exit codes: 0 ok, 1 internal, 2 usage/config, 3 host unreachable, 4 host key rejected,
5 authentication failed, 6 forward refused, 7 local bind failed, 8 SSH session failed.";

#[derive(Debug, Parser)]
#[command(name = "sqltun", version, about = ABOUT, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the tunnel, print the local port on stdout, and forward until Ctrl-C or SIGTERM.
    #[command(after_help = CONNECT_EXAMPLES)]
    Connect(ConnectArgs),
    /// Print what a destination resolves to (ssh -G format, or the whole chain with --json).
    #[command(after_help = CONFIG_EXAMPLES)]
    Config(ConfigArgs),
}

const CONFIG_EXAMPLES: &str = "\
Examples:
  sqltun config prod-db                 # compare with: ssh -G prod-db
  sqltun config prod-db --json          # every hop, every setting, and where it came from
  sqltun config -J jump1,jump2 deploy@db-bastion";

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// SSH destination: an ssh_config alias, [user@]host[:port] or ssh://[user@]host[:port].
    #[arg(value_name = "DEST", value_parser = parse_destination)]
    pub destination: Destination,
    #[command(flatten)]
    pub ssh: SshArgs,
    /// Print the whole plan as JSON: every hop in order, its settings and their origins.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

/// How SSH destinations resolve: shared by every subcommand.
#[derive(Debug, Args)]
pub struct SshArgs {
    /// Jump hosts, like ssh -J: HOP[,HOP...] (each [user@]host[:port], ssh://..., or an alias); `none`
    /// ignores ProxyJump from the config.
    #[arg(short = 'J', long = "jump", value_name = "HOPS")]
    pub jump: Option<String>,

    /// ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none.
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,

    /// Identity (private key) file; repeatable. Default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ...
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,

    /// An ssh_config directive, as with `ssh -o` (e.g. -o StrictHostKeyChecking=accept-new).
    #[arg(short = 'o', value_name = "KEY=VALUE", value_parser = parse_option)]
    pub options: Vec<(String, String)>,

    /// known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH).
    #[arg(long = "known-hosts", value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub tunnel: TunnelArgs,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

/// Options shared by every subcommand that opens a tunnel.
#[derive(Debug, Args)]
pub struct TunnelArgs {
    /// SSH destination: an ssh_config alias, [user@]host[:port] or ssh://[user@]host[:port]; IPv6 literals
    /// in brackets.
    #[arg(long = "ssh", value_name = "DEST", value_parser = parse_destination)]
    pub ssh: Destination,

    /// Target as seen from the last hop: host:port or [v6addr]:port. Repeatable.
    #[arg(long = "db", value_name = "TARGET", required = true, value_parser = parse_target)]
    pub db: Vec<Target>,

    /// Fixed local port (default: chosen by the OS); repeatable, paired with --db in order.
    #[arg(long = "local-port", value_name = "PORT")]
    pub local_port: Vec<u16>,

    /// Local address to listen on. Anything but loopback also needs --expose-to-network.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Allow --bind to a non-loopback address: anyone who can reach it reaches the database.
    #[arg(long = "expose-to-network")]
    pub expose_to_network: bool,

    #[command(flatten)]
    pub ssh_args: SshArgs,

    /// Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt.
    #[arg(long = "password-file", value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt.
    #[arg(long = "passphrase-file", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error.
    #[arg(long)]
    pub batch: bool,

    /// What stdout carries once the tunnel is ready.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = OutputArg::Port)]
    pub output: OutputArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    /// The local port, one line.
    Port,
    /// host:port of the local listener, one line.
    Addr,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct Verbosity {
    /// More detail on stderr (-v progress and decisions, -vv debug, -vvv trace). SQLTUN_LOG takes a tracing filter.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short = 'q', long = "quiet", global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// `-o Key=Value` or `-o "Key Value"`, as ssh accepts both.
fn parse_option(s: &str) -> Result<(String, String), String> {
    let s = s.trim();
    let split = s.find(|c: char| c == '=' || c.is_whitespace());
    match split {
        Some(i) if i > 0 => {
            let key = s[..i].trim();
            let value = s[i + 1..]
                .trim_start_matches(|c: char| c == '=' || c.is_whitespace())
                .trim();
            if value.is_empty() {
                return Err(format!("`{s}` has no value: write -o {key}=VALUE"));
            }
            Ok((key.to_string(), value.to_string()))
        }
        _ => Err(format!(
            "`{s}` is not KEY=VALUE (e.g. -o StrictHostKeyChecking=accept-new)"
        )),
    }
}

/// The clap command, for completions and the man page.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own consistency checks (conflicting names, bad defaults) run only when asked.
    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    /// Both spellings ssh accepts for -o must work, and a bare key must be refused with the fix.
    #[test]
    fn option_spellings() {
        assert_eq!(
            parse_option("ConnectTimeout=5"),
            Ok(("ConnectTimeout".into(), "5".into()))
        );
        assert_eq!(
            parse_option("ConnectTimeout 5"),
            Ok(("ConnectTimeout".into(), "5".into()))
        );
        assert_eq!(
            parse_option(" StrictHostKeyChecking = no "),
            Ok(("StrictHostKeyChecking".into(), "no".into()))
        );
        assert!(parse_option("ConnectTimeout").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_option("ConnectTimeout=").unwrap_err().contains("no value"));
    }
}
