//! The command-line surface. Parsing validates shapes only; `resolve` turns the result into a plan.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum, ValueHint};

use crate::dest::{Destination, Jumps, parse_destination, parse_jump_list};
use crate::plan::OutputFormat;
use crate::target::Target;

mod errors;
mod values;

pub use errors::{Stop, parse};
use values::Checked;
pub use values::{parse_bind, parse_db, parse_duration, parse_local_port, parse_option};

const ABOUT: &str = "Open a tunnel to a private database through SSH bastions and print the local port.";

/// What `sqltun -h` ends with: one example per common command.
const EXAMPLES: &str = "\
Examples:
  sqltun connect --ssh deploy@bastion.example.com --db 10.0.12.7:5432
  sqltun exec --ssh bastion --db postgres://app@db.internal/appdb -- psql
  sqltun check --ssh prod-db --db db.internal:5432
  sqltun connect prod          # a tunnel saved in sqltun.toml; see also: sqltun ls, sqltun stop

'sqltun COMMAND -h' for a command's common options, '--help' for all of them.";

/// What `sqltun --help` ends with: the examples, then what scripts rely on.
fn long_help() -> String {
    format!("{EXAMPLES}\n\n{}\n\n{ENVIRONMENT}", exit_status_help())
}

const ENVIRONMENT: &str = "\
Environment:
  SQLTUN_SSH_PASSWORD[_N]    SSH password (_N: for hop N only); never on the command line
  SQLTUN_SSH_PASSPHRASE[_N]  passphrase of encrypted identity files
  SQLTUN_TOTP_SECRET[_N]     TOTP secret for verification-code prompts
  SSH_AUTH_SOCK              the SSH agent socket
  SQLTUN_LOG                 a tracing filter for stderr (e.g. sqltun=debug)
  NO_COLOR                   no colour and no spinner on stderr
  XDG_STATE_HOME             where --background logs go (default ~/.local/state/sqltun/PID.log)
  XDG_RUNTIME_DIR            where background tunnels register (sqltun ls, stop); else XDG_STATE_HOME";

/// The exit statuses, as `--help` lists them (from the one table in `error`).
pub fn exit_status_help() -> String {
    let mut text = String::from("Exit status:");
    for (code, meaning) in crate::error::exit_statuses() {
        text.push_str(&format!("\n  {code:<6} {meaning}"));
    }
    text
}

const CONNECT_EXAMPLES: &str = "\
Examples:
  sqltun connect --ssh deploy@bastion.example.com --db 10.0.12.7:5432
  sqltun connect prod                    # [tunnels.prod] of ./sqltun.toml
  PORT=$(sqltun connect prod --background)";

fn connect_long_help() -> String {
    format!(
        "{CONNECT_EXAMPLES}
  sqltun connect 'postgres+ssh://deploy@bastion:22/app@db.internal:5432/appdb'
  sqltun connect --ssh ssh://deploy@[2001:db8::1]:2222 --db db.internal:3306 --local-port 13306
  SQLTUN_SSH_PASSWORD=... sqltun connect --batch --ssh deploy@bastion --db 10.0.0.5:6379

stdout carries only the ready output (the local port by default: one line, once the tunnel is usable);
progress goes to stderr.

{}",
        exit_status_help()
    )
}

const CONNECT_USAGE: &str = "sqltun connect [OPTIONS] --ssh <DEST> --db <TARGET>...
       sqltun connect [OPTIONS] <NAME|SSH_URL>";
const EXEC_USAGE: &str = "sqltun exec [OPTIONS] --ssh <DEST> --db <TARGET>... -- <COMMAND>...
       sqltun exec [OPTIONS] <NAME|SSH_URL> -- <COMMAND>...";
const CHECK_USAGE: &str = "sqltun check [OPTIONS] --ssh <DEST> --db <TARGET>...
       sqltun check [OPTIONS] <NAME|SSH_URL>";
const AUTHORIZE_USAGE: &str = "sqltun authorize [OPTIONS] --ssh <DEST> --db <TARGET>... [--new-key[=PATH]]
       sqltun authorize [OPTIONS] <NAME|SSH_URL> [--new-key[=PATH]]";

#[derive(Debug, Parser)]
#[command(
    name = "sqltun",
    version,
    about = ABOUT,
    // `sqltun help [COMMAND]` still works (see `errors::parse`), without a line in the short help.
    disable_help_subcommand = true,
    after_help = EXAMPLES,
    after_long_help = long_help()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the tunnel, print the local port on stdout, and forward until Ctrl-C or SIGTERM.
    #[command(override_usage = CONNECT_USAGE, after_help = CONNECT_EXAMPLES, after_long_help = connect_long_help())]
    Connect(ConnectArgs),
    /// Open the tunnel, run a command with it, and exit with the command's status.
    #[command(override_usage = EXEC_USAGE, after_help = EXEC_EXAMPLES, after_long_help = EXEC_LONG_HELP)]
    Exec(ExecArgs),
    /// Diagnose every stage (resolution, each hop, the forward, what answers there) and exit.
    #[command(override_usage = CHECK_USAGE, after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Print what a destination resolves to (ssh -G format, or the whole chain with --json).
    #[command(after_help = CONFIG_EXAMPLES)]
    Config(ConfigArgs),
    /// List the background tunnels, running (pid, port, state, connections) and configured.
    #[command(after_help = LS_EXAMPLES, after_long_help = LS_LONG_HELP)]
    Ls(LsArgs),
    /// Stop background tunnels by name, local port or --all, and wait for them to exit.
    #[command(override_usage = STOP_USAGE, after_help = STOP_EXAMPLES, after_long_help = STOP_LONG_HELP)]
    Stop(StopArgs),
    /// Print authorized_keys lines that let the tunnel's key only forward to its targets.
    #[command(override_usage = AUTHORIZE_USAGE, after_help = AUTHORIZE_EXAMPLES, after_long_help = AUTHORIZE_LONG_HELP)]
    Authorize(AuthorizeArgs),
    /// Print the shell completion script for SHELL on stdout.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
}

const LS_EXAMPLES: &str = "\
Examples:
  sqltun ls
  sqltun ls --json | jq -r '.tunnels[] | select(.state != \"stopped\") | .name'";

const LS_LONG_HELP: &str = "\
Examples:
  sqltun ls
  sqltun ls --json | jq -r '.tunnels[] | select(.state != \"stopped\") | .name'

Every tunnel started with --background or by NAME is listed while it runs (up or reconnecting),
and every tunnel of the tunnels file that is not running (state stopped). --json prints one
document for scripts:
  {\"tunnels\": [{\"name\", \"pid\", \"state\", \"started_at\", \"uptime_secs\", \"open_connections\",
    \"forwards\": [{\"local_addr\", \"local_host\", \"local_port\", \"local_socket\", \"target\"}],
    \"hops\", \"log_file\"}]}
null where a value does not apply (no pid for a stopped tunnel, no name for one given by flags
alone); started_at is in seconds since the Unix epoch.";

const STOP_USAGE: &str = "sqltun stop [OPTIONS] <NAME|PORT>
       sqltun stop [OPTIONS] --all";

const STOP_EXAMPLES: &str = "\
Examples:
  sqltun stop prod
  sqltun stop 5433
  sqltun stop --all";

const STOP_LONG_HELP: &str = "\
Examples:
  sqltun stop prod
  sqltun stop 5433
  sqltun stop --all

Sends SIGTERM to each tunnel, waits up to 10 s for it to exit and says what it stopped on
stderr. Exit status 12 when no running tunnel has that name or local port (--all with none
running is not an error), 13 when one did not exit in time.";

#[derive(Debug, Args)]
pub struct LsArgs {
    /// One JSON document on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tunnels_file: TunnelsFileArg,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// The tunnel's name, or a local port it listens on.
    #[arg(value_name = "NAME|PORT", required_unless_present = "all", conflicts_with = "all")]
    pub tunnel: Option<String>,
    /// Stop every running background tunnel.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

const EXEC_EXAMPLES: &str = "\
Examples:
  sqltun exec --ssh bastion --db postgres://app@db.internal/appdb -- psql
  sqltun exec --ssh bastion --db db.internal:3306 -- mysql -h {host} -P {port} -u app
  sqltun exec --ssh bastion --db redis://db.internal -- redis-cli -u {url} ping";

const EXEC_LONG_HELP: &str = "\
Examples:
  sqltun exec --ssh bastion --db postgres://app@db.internal/appdb -- psql
  sqltun exec --ssh bastion --db db.internal:3306 -- mysql -h {host} -P {port} -u app
  sqltun exec --ssh bastion --db redis://db.internal -- redis-cli -u {url} ping

The command gets SQLTUN_HOST, SQLTUN_PORT, SQLTUN_ADDR, SQLTUN_URL (with _1, _2, ... for several --db),
the client's own variables (PGHOST/PGPORT, MYSQL_HOST/MYSQL_TCP_PORT, DATABASE_URL), and {host}, {port},
{addr}, {url} replaced in its arguments ({port_2} etc. for the second target). sqltun exits with the
command's status (128+N when a signal N ended it; 126 when it could not be run, 127 when it was not
found); SIGINT and SIGTERM are passed on to it. If the tunnel fails first, sqltun's own exit status says
why (see sqltun --help).";

const CHECK_EXAMPLES: &str = "\
Examples:
  sqltun check --ssh prod-db --db db.internal:5432
  sqltun check --ssh bastion -J jump1 --db mysql://db.internal --json

The exit status is the one of the first stage that failed (see sqltun --help).";

const AUTHORIZE_EXAMPLES: &str = "\
Examples:
  sqltun authorize --ssh deploy@bastion --db db.internal:5432 --new-key
  sqltun authorize --ssh db-bastion -J jump1 --db db.internal:5432 -i ~/.ssh/id_ed25519";

const AUTHORIZE_LONG_HELP: &str = "\
Examples:
  sqltun authorize --ssh deploy@bastion --db db.internal:5432 --new-key
  sqltun authorize --ssh db-bastion -J jump1 --db db.internal:5432 -i ~/.ssh/id_ed25519

stdout gets one line per hop, for that hop's ~/.ssh/authorized_keys, e.g.:
  restrict,port-forwarding,permitopen=\"db.internal:5432\",permitlisten=\"NO-LISTEN:1\",command=\"echo ...; exit 1\" ssh-ed25519 AAAA... sqltun
With it the key can open forwards to the hop's next destination and nothing else: to the next hop (as
sqltun connects to it through this one), or on the last hop to every --db target. No shell, no command,
no other forward, no remote forward (ssh -R), no agent or X11 forwarding. stderr says which line goes
where. The key is the first identity sqltun offers (-i, IdentityFile, the default files), or, with
--new-key, a new ed25519 key (never over an existing file). No authorized_keys option stops listening on
a Unix socket on the server (ssh -R /path:...): set AllowStreamLocalForwarding no in its sshd_config.
Nothing is dialled.";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  sqltun completions bash > /usr/local/share/bash-completion/completions/sqltun
  sqltun completions zsh > /usr/local/share/zsh/site-functions/_sqltun
  sqltun completions fish > ~/.config/fish/completions/sqltun.fish";

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub route: RouteArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    #[command(flatten)]
    pub verbosity: Verbosity,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

impl ExecArgs {
    /// What `resolve` needs (the ready output is not printed: the command gets the environment).
    pub fn tunnel(&self) -> TunnelArgs {
        TunnelArgs::new(&self.route, &self.listen, &self.reconnect, Some(OutputFormat::Port))
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub route: RouteArgs,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

impl CheckArgs {
    /// What `resolve` needs; check binds no listener and never reconnects, so those are the defaults.
    pub fn tunnel(&self) -> TunnelArgs {
        TunnelArgs::route_only(&self.route)
    }
}

#[derive(Debug, Args)]
pub struct AuthorizeArgs {
    #[command(flatten)]
    pub route: RouteArgs,
    /// Create a new ed25519 key for the tunnel and print the lines for it.
    ///
    /// Written to PATH (mode 0600) and PATH.pub; default ~/.ssh/sqltun_NAME_ed25519 (sqltun_ed25519 for a
    /// tunnel without a name). An existing file is an error, never overwritten.
    #[arg(long = "new-key", value_name = "PATH", num_args = 0..=1, require_equals = true, value_hint = ValueHint::FilePath)]
    pub new_key: Option<Option<PathBuf>>,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

impl AuthorizeArgs {
    /// What `resolve` needs: the route only (nothing is dialled or bound).
    pub fn tunnel(&self) -> TunnelArgs {
        TunnelArgs::route_only(&self.route)
    }
}

const CONFIG_EXAMPLES: &str = "\
Examples:
  sqltun config prod-db                 # compare with: ssh -G prod-db
  sqltun config prod-db --json          # every hop, every setting, and where it came from
  sqltun config -J jump1,jump2 deploy@db-bastion
  sqltun config --list-hosts            # the Host aliases of the ssh config";

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// SSH destination: an ssh_config alias or [user@]host[:port].
    ///
    /// Also ssh://[user@]host[:port]; IPv6 literals in brackets ([2001:db8::1]:22).
    ///
    /// A tunnel NAME from the tunnels file shows that tunnel (with --json: every value and where it
    /// came from).
    #[arg(value_name = "DEST", value_hint = ValueHint::Hostname, value_parser = Checked::new("DEST", parse_destination), required_unless_present = "list_hosts")]
    pub destination: Option<Destination>,
    #[command(flatten)]
    pub ssh: SshArgs,
    /// Print the whole chain as JSON.
    ///
    /// Every hop in order, its settings and where each came from.
    #[arg(long, conflicts_with = "list_hosts")]
    pub json: bool,
    #[command(flatten)]
    pub tunnels_file: TunnelsFileArg,
    /// List the Host aliases of the ssh config, one per line.
    ///
    /// Every Host name without a wildcard, Included files too; shell completion uses it.
    #[arg(long = "list-hosts", conflicts_with = "destination")]
    pub list_hosts: bool,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// How SSH destinations resolve: shared by every subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct SshArgs {
    /// Jump hosts, like ssh -J: HOP[,HOP...].
    ///
    /// Each hop is [user@]host[:port], ssh://..., or an ssh_config alias; `none` ignores ProxyJump from
    /// the config.
    #[arg(short = 'J', long = "jump", value_name = "HOPS", value_hint = ValueHint::Hostname, value_parser = Checked::new("-J", parse_jump_list))]
    pub jump: Option<Jumps>,

    /// ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none.
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE", hide_short_help = true)]
    pub ssh_config: Option<PathBuf>,

    /// Identity (private key) file; repeatable.
    ///
    /// Default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ... as OpenSSH. Applies to every hop.
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,

    /// An ssh_config directive, as with ssh -o.
    ///
    /// E.g. -o StrictHostKeyChecking=accept-new. Those that say where to connect (HostName, User, Port,
    /// ProxyJump, ProxyCommand, HostKeyAlias) apply to the destination only, the others to every hop.
    #[arg(short = 'o', value_name = "KEY=VALUE", value_parser = Checked::new("-o", parse_option))]
    pub options: Vec<(String, String)>,

    /// known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH).
    #[arg(long = "known-hosts", value_name = "FILE", hide_short_help = true)]
    pub known_hosts: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub route: RouteArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
    /// Ready output: port (default), addr, url, env or json.
    ///
    /// port: the local port, one line per target (the default, unless the tunnels file says otherwise).
    /// addr: host:port of the local listener, one line per target. url: the target's URL rewritten to the
    /// local end (tcp://host:port for a plain host:port target). env: SQLTUN_HOST=... lines for a shell's
    /// eval (indexed with _1, _2, ... for several targets). json: one JSON object per line, a `ready` event
    /// per target, then `closed` (and reconnect events).
    #[arg(long, value_enum, value_name = "FORMAT", hide_possible_values = true)]
    pub output: Option<OutputFormat>,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    /// Go to the background once the tunnel is ready (like ssh -f).
    ///
    /// The ready output is printed, the command returns 0, the tunnel stays up. Its pid and how to
    /// stop it go to stderr; later messages go to the log file (see --log-file), never the terminal.
    #[arg(long)]
    pub background: bool,
    /// Where a background tunnel writes its messages once it has returned (appended, mode 0600, never
    /// through a symbolic link).
    ///
    /// Default: $XDG_STATE_HOME/sqltun/PID.log, or ~/.local/state/sqltun/PID.log (PID: the tunnel's).
    #[arg(long = "log-file", value_name = "FILE", requires = "background", value_hint = ValueHint::FilePath, hide_short_help = true)]
    pub log_file: Option<PathBuf>,
    /// Write the tunnel's pid to FILE once it is ready (removed when it stops).
    #[arg(long = "pid-file", value_name = "FILE", hide_short_help = true)]
    pub pid_file: Option<PathBuf>,
    /// Close the tunnel after this long (e.g. 90s, 30m, 2h); exit code 10.
    #[arg(long = "max-lifetime", value_name = "DURATION", value_parser = Checked::new("--max-lifetime", parse_duration), hide_short_help = true)]
    pub max_lifetime: Option<std::time::Duration>,
    /// Close the tunnel after no connection has been open for this long; exit code 11.
    #[arg(long = "idle-timeout", value_name = "DURATION", value_parser = Checked::new("--idle-timeout", parse_duration), hide_short_help = true)]
    pub idle_timeout: Option<std::time::Duration>,
    /// Listen on a private Unix socket at PATH instead of a TCP port.
    ///
    /// Only you can reach it: mode 0600, in a directory of yours with mode 0700 (a missing one is
    /// created). For a PostgreSQL target a directory gets DIR/.s.PGSQL.PORT, so `psql -h DIR -p PORT`
    /// works. With one --db.
    #[arg(long = "unix-socket", value_name = "PATH", hide_short_help = true)]
    pub unix_socket: Option<PathBuf>,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

impl ConnectArgs {
    /// What `resolve` needs.
    pub fn tunnel(&self) -> TunnelArgs {
        TunnelArgs {
            idle_timeout: self.idle_timeout,
            max_lifetime: self.max_lifetime,
            pid_file: self.pid_file.clone(),
            background: self.background,
            log_file: self.log_file.clone(),
            unix_socket: self.unix_socket.clone(),
            ..TunnelArgs::new(&self.route, &self.listen, &self.reconnect, self.output)
        }
    }
}

/// Where the tunnel goes and how to get in: every subcommand that opens one (connect, exec, check).
#[derive(Debug, Clone, Default, Args)]
pub struct RouteArgs {
    /// A saved tunnel's NAME from the tunnels file, or a complete tunnel as one URL.
    ///
    /// NAME: a [tunnels.NAME] table of sqltun.toml (this directory or a parent) or of
    /// ~/.config/sqltun/tunnels.toml; flags given here override its values. SSH_URL: the form
    /// TablePlus and TablePro write, postgres+ssh://ssh_user@ssh_host:22/db_user@db_host:5432/db_name,
    /// instead of --ssh and --db.
    #[arg(value_name = "NAME|SSH_URL")]
    pub tunnel: Option<String>,

    #[command(flatten)]
    pub tunnels_file: TunnelsFileArg,

    /// SSH destination: an ssh_config alias or [user@]host[:port].
    ///
    /// Also ssh://[user@]host[:port]; IPv6 literals in brackets ([2001:db8::1]:22).
    #[arg(long = "ssh", value_name = "DEST", value_hint = ValueHint::Hostname, value_parser = Checked::new("--ssh", parse_destination), required_unless_present = "tunnel")]
    pub ssh: Option<Destination>,

    /// Target as seen from the last hop: host:port or a database URL. Repeatable.
    ///
    /// host:port, [v6addr]:port, or a database URL (postgres://, postgresql://, mysql://, mariadb://,
    /// redis://, rediss://, mongodb://, sqlserver://, clickhouse://; the port defaults by scheme). One
    /// local listener each.
    #[arg(long = "db", value_name = "TARGET", required_unless_present = "tunnel", value_parser = Checked::new("--db", parse_db))]
    pub db: Vec<DbArg>,

    #[command(flatten)]
    pub ssh_args: SshArgs,

    /// Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt.
    #[arg(long = "password-file", value_name = "FILE", hide_short_help = true)]
    pub password_file: Option<PathBuf>,

    /// Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt.
    #[arg(long = "passphrase-file", value_name = "FILE", hide_short_help = true)]
    pub passphrase_file: Option<PathBuf>,

    /// Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET;
    /// sqltun answers "Verification code" prompts with the current code.
    #[arg(long = "totp-secret-file", value_name = "FILE", hide_short_help = true)]
    pub totp_secret_file: Option<PathBuf>,

    /// Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error.
    #[arg(long, hide_short_help = true)]
    pub batch: bool,
}

/// The local end of the tunnel: connect and exec.
#[derive(Debug, Clone, Default, Args)]
pub struct ListenArgs {
    /// Fixed local port (default: chosen by the OS).
    ///
    /// Repeatable, paired with --db in order.
    #[arg(long = "local-port", value_name = "PORT", value_parser = Checked::new("--local-port", parse_local_port))]
    pub local_port: Vec<u16>,

    /// Local address to listen on (default 127.0.0.1, which also takes ::1 on the same port).
    ///
    /// Anything but loopback also needs --expose-to-network.
    #[arg(long, value_name = "ADDR", value_parser = Checked::new("--bind", parse_bind), hide_short_help = true)]
    pub bind: Option<IpAddr>,

    /// Allow --bind to a non-loopback address: anyone who can reach it reaches the database.
    #[arg(long = "expose-to-network", hide_short_help = true)]
    pub expose_to_network: bool,
}

/// `--tunnels-file`: the one tunnels file to read instead of looking for sqltun.toml and
/// ~/.config/sqltun/tunnels.toml.
#[derive(Debug, Clone, Default, Args)]
pub struct TunnelsFileArg {
    /// The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent's) and
    /// ~/.config/sqltun/tunnels.toml.
    #[arg(long = "tunnels-file", value_name = "FILE", env = "SQLTUN_TUNNELS_FILE", value_hint = ValueHint::FilePath, hide_short_help = true, hide_env_values = true)]
    pub path: Option<PathBuf>,
}

/// What happens when the SSH chain dies under an open tunnel: connect and exec.
#[derive(Debug, Clone, Default, Args)]
pub struct ReconnectArgs {
    /// When the SSH chain dies, exit (code 8) instead of re-dialling it behind the same port.
    #[arg(long = "no-reconnect", hide_short_help = true)]
    pub no_reconnect: bool,

    /// Give up re-dialling a dead chain after this long (exit code 9); default 10m.
    #[arg(long = "reconnect-timeout", value_name = "DURATION", value_parser = Checked::new("--reconnect-timeout", parse_duration), conflicts_with = "no_reconnect", hide_short_help = true)]
    pub reconnect_timeout: Option<std::time::Duration>,
}

/// Everything `resolve::plan` and the reconnect policy read, assembled from the groups a subcommand
/// has (defaults for the ones it has not).
#[derive(Debug, Clone)]
pub struct TunnelArgs {
    /// The tunnel named on the command line, looked up in the tunnels file.
    pub name: Option<String>,
    /// `--tunnels-file`.
    pub tunnels_file: Option<PathBuf>,
    pub ssh_url: Option<String>,
    pub ssh: Option<Destination>,
    pub db: Vec<DbArg>,
    pub local_port: Vec<u16>,
    /// None: the tunnels file's, else 127.0.0.1.
    pub bind: Option<IpAddr>,
    pub expose_to_network: bool,
    pub ssh_args: SshArgs,
    pub password_file: Option<PathBuf>,
    pub passphrase_file: Option<PathBuf>,
    pub totp_secret_file: Option<PathBuf>,
    pub batch: bool,
    /// None: the tunnels file's, else the port.
    pub output: Option<OutputFormat>,
    pub no_reconnect: bool,
    pub reconnect_timeout: Option<std::time::Duration>,
    /// connect's lifecycle flags (unset for exec and check).
    pub idle_timeout: Option<std::time::Duration>,
    pub max_lifetime: Option<std::time::Duration>,
    pub pid_file: Option<PathBuf>,
    pub background: bool,
    pub log_file: Option<PathBuf>,
    pub unix_socket: Option<PathBuf>,
    /// `password_command`, `passphrase_command`, `totp_command` of the tunnels file (no flags: a
    /// command line is no place for them): a program and its arguments (no shell) whose first line of
    /// output is the secret, run only when it is needed. The file options and variables win over them.
    pub password_command: Option<Vec<String>>,
    pub passphrase_command: Option<Vec<String>>,
    pub totp_command: Option<Vec<String>>,
}

impl TunnelArgs {
    /// The route alone, for the commands that bind nothing and never reconnect (check, authorize,
    /// config): listening and reconnecting at their defaults, the output left to the tunnels file.
    pub fn route_only(route: &RouteArgs) -> TunnelArgs {
        TunnelArgs::new(route, &ListenArgs::default(), &ReconnectArgs::default(), None)
    }

    pub fn new(
        route: &RouteArgs,
        listen: &ListenArgs,
        reconnect: &ReconnectArgs,
        output: Option<OutputFormat>,
    ) -> TunnelArgs {
        let route = route.clone();
        let listen = listen.clone();
        // The positional is a URL when it has a scheme, else a tunnel's name.
        let (ssh_url, name) = match route.tunnel {
            Some(t) if t.contains("://") => (Some(t), None),
            other => (None, other),
        };
        TunnelArgs {
            name,
            tunnels_file: route.tunnels_file.path,
            ssh_url,
            ssh: route.ssh,
            db: route.db,
            local_port: listen.local_port,
            bind: listen.bind,
            expose_to_network: listen.expose_to_network,
            ssh_args: route.ssh_args,
            password_file: route.password_file,
            passphrase_file: route.passphrase_file,
            totp_secret_file: route.totp_secret_file,
            batch: route.batch,
            output,
            no_reconnect: reconnect.no_reconnect,
            reconnect_timeout: reconnect.reconnect_timeout,
            idle_timeout: None,
            max_lifetime: None,
            pid_file: None,
            background: false,
            log_file: None,
            unix_socket: None,
            password_command: None,
            passphrase_command: None,
            totp_command: None,
        }
    }
}

/// `--output`: the plan's own format, offered to clap here so the plan stays free of clap types.
impl ValueEnum for OutputFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            OutputFormat::Port,
            OutputFormat::Addr,
            OutputFormat::Url,
            OutputFormat::Env,
            OutputFormat::Json,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let (name, help) = match self {
            OutputFormat::Port => ("port", "The local port, one line per target"),
            OutputFormat::Addr => ("addr", "host:port of the local listener, one line per target"),
            OutputFormat::Url => (
                "url",
                "The target's URL rewritten to the local end (tcp://host:port for a plain host:port target)",
            ),
            OutputFormat::Env => (
                "env",
                "SQLTUN_HOST=... lines for a shell's eval (indexed with _1, _2, ... for several targets)",
            ),
            OutputFormat::Json => (
                "json",
                "One JSON object per line: a `ready` event per target, then `closed` (and reconnect events)",
            ),
        };
        Some(clap::builder::PossibleValue::new(name).help(help))
    }
}

/// A --db value: a plain target or a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbArg {
    Target(Target),
    Url(crate::db::DbUrl),
}

#[derive(Debug, Args, Clone, Copy, Default)]
pub struct Verbosity {
    /// More detail on stderr (-v, -vv, -vvv).
    ///
    /// -v progress and decisions, -vv debug, -vvv trace. SQLTUN_LOG takes a tracing filter.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short = 'q', long = "quiet", global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The clap command, for completions and the man page.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[cfg(test)]
mod tests {
    use super::errors::*;
    use super::values::*;
    use super::*;

    /// clap's own consistency checks (conflicting names, bad defaults) run only when asked.
    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    /// A bad --db or --ssh value gets our message alone: clap's `invalid value '…'` would show the value as
    /// typed, password and control characters included. Still a usage error (exit 2).
    #[test]
    fn bad_values_are_not_echoed() {
        for (flag, value) in [
            ("--db", "postgres://u:s3cr3t@h:99999/db"),
            ("--db", "sqlserver://sa:s3cr3t@h:0;databaseName=x"),
            ("--db", "u:s3cr3t@h:5432"),
            ("--ssh", "host\rname"),
            ("--ssh", "u:s3cr3t@host:0"),
            ("--bind", "x\r"),
        ] {
            let mut args = vec!["sqltun", "connect", flag, value];
            args.extend(match flag {
                "--ssh" => ["--db", "h:1"],
                "--db" => ["--ssh", "h"],
                _ => ["--ssh", "h"],
            });
            if flag == "--bind" {
                args.extend(["--db", "h:1"]);
            }
            let err = Cli::try_parse_from(&args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
            let Err(Stop::Usage(text)) = parse(args.iter().map(Into::into).collect()) else {
                panic!("{flag} {value:?} parsed");
            };
            assert!(text.starts_with(&format!("sqltun: {flag}: ")), "{text}");
            assert!(!text.contains("s3cr3t") && !text.contains("invalid value"), "{text}");
            assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        }
    }

    /// Whatever clap itself reports (here: a second positional that is a URL with a password) is in
    /// sqltun's voice, masked, escaped, and still a usage error.
    #[test]
    fn clap_errors_are_prefixed_and_masked() {
        let argv = [
            "sqltun",
            "connect",
            "postgres+ssh://a@b/c@d/e",
            "postgres://u:s3cr3t@h/d\x1b[2J",
        ];
        let Err(Stop::Usage(text)) = parse(argv.iter().map(Into::into).collect()) else {
            panic!("parsed");
        };
        assert!(
            text.starts_with("sqltun: unexpected argument 'postgres://u:***@h/d"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t") && !text.contains('\x1b'), "{text}");
    }

    /// ssh's options get the sqltun way, with the value the person typed where it fits.
    #[test]
    fn ssh_habits_get_pointers() {
        let said = |args: &[&str]| -> String {
            let argv = ["sqltun", "connect"].iter().chain(args).map(Into::into).collect();
            match parse(argv) {
                Err(Stop::Usage(text)) => text.lines().next().unwrap_or_default().to_string(),
                other => panic!("{args:?}: {other:?}"),
            }
        };
        assert_eq!(
            said(&["-p", "2200", "--ssh", "h", "--db", "d:1"]),
            "sqltun: -p: the SSH port goes in the destination: --ssh user@host:2200"
        );
        assert_eq!(
            said(&["-l", "deploy"]),
            "sqltun: -l: the SSH user goes in the destination: --ssh deploy@host"
        );
        assert!(said(&["-L", "5432:db:5432"]).contains("use --local-port PORT and --db HOST:PORT"));
        assert!(said(&["-N"]).contains("sqltun never runs a remote command"));
        assert!(said(&["-W", "db:5432"]).contains("use --db HOST:PORT"));
        assert_eq!(said(&["--sh", "h"]), "sqltun: unknown option --sh; did you mean --ssh?");
        assert_eq!(
            said(&["--loca-port", "1"]),
            "sqltun: unknown option --loca-port; did you mean --local-port?"
        );
    }

    /// Each subcommand has only the flags it uses, and --help/--version still come back for stdout.
    #[test]
    fn subcommands_take_only_their_flags() {
        for (args, accepted) in [
            (&["check", "--ssh", "h", "--db", "d:1", "--output", "json"][..], false),
            (&["check", "--ssh", "h", "--db", "d:1", "--no-reconnect"], false),
            (&["check", "--ssh", "h", "--db", "d:1", "--local-port", "1"], false),
            (
                &["exec", "--ssh", "h", "--db", "d:1", "--output", "json", "--", "true"],
                false,
            ),
            (
                &[
                    "exec",
                    "--ssh",
                    "h",
                    "--db",
                    "d:1",
                    "--local-port",
                    "1",
                    "--no-reconnect",
                    "--",
                    "true",
                ],
                true,
            ),
            (
                &[
                    "connect",
                    "--ssh",
                    "h",
                    "--db",
                    "d:1",
                    "--output",
                    "json",
                    "--reconnect-timeout",
                    "1m",
                ],
                true,
            ),
            (
                &[
                    "check",
                    "--ssh",
                    "h",
                    "--db",
                    "d:1",
                    "--batch",
                    "-J",
                    "j",
                    "--password-file",
                    "f",
                ],
                true,
            ),
        ] {
            let argv = std::iter::once(&"sqltun").chain(args).map(Into::into).collect();
            assert_eq!(parse(argv).is_ok(), accepted, "{args:?}");
        }
        for help in ["--help", "-h", "--version", "-V"] {
            assert!(matches!(parse(vec!["sqltun".into(), help.into()]), Err(Stop::Display(e)) if e.exit_code() == 0));
        }
    }

    /// `sqltun help [COMMAND]` shows the help as `--help` does, though no `help` line takes room in
    /// the short help.
    #[test]
    fn help_as_a_word() {
        for (args, wanted) in [
            (&["help"][..], "Usage: sqltun <COMMAND>"),
            (&["help", "stop"], "Usage: sqltun stop"),
        ] {
            let argv = std::iter::once(&"sqltun").chain(args).map(Into::into).collect();
            match parse(argv) {
                Err(Stop::Display(e)) => {
                    assert_eq!(e.exit_code(), 0);
                    assert!(e.render().to_string().contains(wanted), "{args:?}");
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    /// Durations accept what people type for --max-lifetime and refuse the rest with the fix.
    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172800)));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("1h30").unwrap_err().contains("without a unit"));
        assert!(parse_duration("0s").unwrap_err().contains("longer than 0"));
        assert!(parse_duration("").is_err());
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
