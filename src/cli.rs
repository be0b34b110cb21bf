//! The command-line surface. Parsing validates shapes only; `resolve` turns the result into a plan.

use std::ffi::OsStr;
use std::net::IpAddr;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::plan::Target;
use crate::resolve::dest::{Destination, parse_destination, parse_target, printable};

const ABOUT: &str = "Open a tunnel to a private database through SSH bastions and print the local port.";

const CONNECT_EXAMPLES: &str = "\
Examples:
  sqltun connect --ssh deploy@bastion.example.com --db 10.0.12.7:5432
  PORT=$(sqltun connect --background --pid-file /tmp/db.pid --ssh bastion --db db.internal:5432)
  sqltun connect --ssh ssh://deploy@[2001:db8::1]:2222 --db db.internal:3306 --local-port 13306
  SQLTUN_SSH_PASSWORD=... sqltun connect --batch --ssh deploy@bastion --db 10.0.0.5:6379

stdout carries only the local port (one line, once the tunnel is usable); progress goes to stderr.
Exit codes: 0 ok, 1 internal, 2 usage/config, 3 host unreachable, 4 host key rejected,
5 authentication failed, 6 forward refused, 7 local bind failed, 8 SSH session failed,
130 interrupted (Ctrl-C at a prompt or before the tunnel was ready).";

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
    /// Open the tunnel, run a command with it, and exit with the command's status.
    #[command(after_help = EXEC_EXAMPLES)]
    Exec(ExecArgs),
    /// Diagnose every stage (resolution, each hop, the forward, what answers there) and exit.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Print what a destination resolves to (ssh -G format, or the whole chain with --json).
    #[command(after_help = CONFIG_EXAMPLES)]
    Config(ConfigArgs),
}

const EXEC_EXAMPLES: &str = "\
Examples:
  sqltun exec --ssh bastion --db postgres://app@db.internal/appdb -- psql
  sqltun exec --ssh bastion --db db.internal:3306 -- mysql -h {host} -P {port} -u app
  sqltun exec --ssh bastion --db redis://db.internal -- redis-cli -u {url} ping

The command gets SQLTUN_HOST, SQLTUN_PORT, SQLTUN_ADDR, SQLTUN_URL (with _1, _2, ... for several --db),
the client's own variables (PGHOST/PGPORT, MYSQL_HOST/MYSQL_TCP_PORT, DATABASE_URL), and {host}, {port},
{addr}, {url} replaced in its arguments ({port_2} etc. for the second target). sqltun exits with the
command's status (128+N when a signal N ended it); SIGINT and SIGTERM are passed on to it.";

const CHECK_EXAMPLES: &str = "\
Examples:
  sqltun check --ssh prod-db --db db.internal:5432
  sqltun check --ssh bastion -J jump1 --db mysql://db.internal --json

The exit code is the one of the first stage that failed (see EXIT STATUS).";

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub tunnel: TunnelArgs,
    #[command(flatten)]
    pub verbosity: Verbosity,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub tunnel: TunnelArgs,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

const CONFIG_EXAMPLES: &str = "\
Examples:
  sqltun config prod-db                 # compare with: ssh -G prod-db
  sqltun config prod-db --json          # every hop, every setting, and where it came from
  sqltun config -J jump1,jump2 deploy@db-bastion";

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// SSH destination: an ssh_config alias, [user@]host[:port] or ssh://[user@]host[:port].
    #[arg(value_name = "DEST", value_parser = Checked::new("DEST", parse_destination))]
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
#[derive(Debug, Clone, Args)]
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
    #[arg(short = 'o', value_name = "KEY=VALUE", value_parser = Checked::new("-o", parse_option))]
    pub options: Vec<(String, String)>,

    /// known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH).
    #[arg(long = "known-hosts", value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub tunnel: TunnelArgs,
    /// Go to the background once the tunnel is ready (like ssh -f): the ready output is printed, the
    /// command returns 0, the tunnel stays up.
    #[arg(long)]
    pub background: bool,
    /// Write the tunnel's pid to FILE once it is ready (removed when it stops).
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Close the tunnel after this long (e.g. 90s, 30m, 2h); exit code 10.
    #[arg(long = "max-lifetime", value_name = "DURATION", value_parser = Checked::new("--max-lifetime", parse_duration))]
    pub max_lifetime: Option<std::time::Duration>,
    /// Close the tunnel after no connection has been open for this long; exit code 11.
    #[arg(long = "idle-timeout", value_name = "DURATION", value_parser = Checked::new("--idle-timeout", parse_duration))]
    pub idle_timeout: Option<std::time::Duration>,
    /// Listen on a Unix socket at PATH instead of a TCP port, so only you can reach it (mode 0600, in a
    /// directory of yours with mode 0700; a missing one is created). For a PostgreSQL target a directory
    /// gets DIR/.s.PGSQL.PORT, so `psql -h DIR -p PORT` works. With one --db.
    #[arg(long = "unix-socket", value_name = "PATH")]
    pub unix_socket: Option<PathBuf>,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

/// Options shared by every subcommand that opens a tunnel.
#[derive(Debug, Args)]
pub struct TunnelArgs {
    /// A complete tunnel as one URL, as TablePlus and TablePro write them:
    /// postgres+ssh://ssh_user@ssh_host:22/db_user@db_host:5432/db_name (instead of --ssh and --db).
    #[arg(value_name = "SSH_URL", conflicts_with_all = ["ssh", "db"])]
    pub ssh_url: Option<String>,

    /// SSH destination: an ssh_config alias, [user@]host[:port] or ssh://[user@]host[:port]; IPv6 literals
    /// in brackets.
    #[arg(long = "ssh", value_name = "DEST", value_parser = Checked::new("--ssh", parse_destination), required_unless_present = "ssh_url")]
    pub ssh: Option<Destination>,

    /// Target as seen from the last hop: host:port, [v6addr]:port, or a database URL (postgres://,
    /// mysql://, mariadb://, redis://, rediss://, mongodb://, sqlserver://, clickhouse://; the port
    /// defaults by scheme). Repeatable.
    #[arg(long = "db", value_name = "TARGET", required_unless_present = "ssh_url", value_parser = Checked::new("--db", parse_db))]
    pub db: Vec<DbArg>,

    /// Fixed local port (default: chosen by the OS); repeatable, paired with --db in order.
    #[arg(long = "local-port", value_name = "PORT", value_parser = Checked::new("--local-port", parse_local_port))]
    pub local_port: Vec<u16>,

    /// Local address to listen on; the default also takes ::1 on the same port. Anything but loopback also
    /// needs --expose-to-network.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1", value_parser = Checked::new("--bind", parse_bind))]
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

    /// Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET;
    /// sqltun answers "Verification code" prompts with the current code.
    #[arg(long = "totp-secret-file", value_name = "FILE")]
    pub totp_secret_file: Option<PathBuf>,

    /// Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error.
    #[arg(long)]
    pub batch: bool,

    /// What stdout carries once the tunnel is ready.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = OutputArg::Port)]
    pub output: OutputArg,

    /// When the SSH chain dies, exit (code 8) instead of re-dialling it behind the same port.
    #[arg(long = "no-reconnect")]
    pub no_reconnect: bool,

    /// Give up re-dialling a dead chain after this long (exit code 9); default 10m.
    #[arg(long = "reconnect-timeout", value_name = "DURATION", value_parser = Checked::new("--reconnect-timeout", parse_duration), conflicts_with = "no_reconnect")]
    pub reconnect_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    /// The local port, one line per target.
    Port,
    /// host:port of the local listener, one line per target.
    Addr,
    /// The target's URL rewritten to the local end (tcp://host:port for a plain host:port target).
    Url,
    /// SQLTUN_HOST=... lines for a shell's eval (indexed with _1, _2, ... for several targets).
    Env,
    /// One JSON object per line: a `ready` event per target, then `closed` (and reconnect events).
    Json,
}

/// A --db value: a plain target or a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbArg {
    Target(Target),
    Url(crate::resolve::url::DbUrl),
}

/// A clap value parser around one of our `&str` parsers, whose error is our message alone, prefixed with
/// the option's name: `error: --db `postgres://app:***@db:99999/app`: the port is not a number …`.
///
/// clap's own error for a failed value parser starts `invalid value '<the value as typed>'`: that would put a
/// password from `--db postgres://user:password@…` on stderr, and any control characters typed into a value
/// (`$'host\rname'`) on the terminal. Our parsers quote the value themselves, masked and escaped.
/// `Error::raw` is printed as `error: MESSAGE` with nothing of the value added; clap exits with 2.
#[derive(Clone)]
struct Checked<T> {
    name: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

impl<T> Checked<T> {
    fn new(name: &'static str, parse: fn(&str) -> Result<T, String>) -> Self {
        Checked { name, parse }
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Checked<T> {
    type Value = T;

    fn parse_ref(&self, _: &clap::Command, _: Option<&clap::Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let Some(text) = value.to_str() else {
            return Err(clap::Error::raw(
                ErrorKind::InvalidUtf8,
                format!(
                    "{} `{}`: not valid UTF-8\n",
                    self.name,
                    printable(&value.to_string_lossy())
                ),
            ));
        };
        (self.parse)(text).map_err(|message| {
            // The parsers' messages are printable already; escaping again keeps a slip there off the terminal.
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("{}: {}\n", self.name, printable_message(&message)),
            )
        })
    }
}

/// A message for one line: control characters escaped. Not cut short (the parsers shorten what they
/// quote), so the reason at its end is kept.
fn printable_message(message: &str) -> String {
    crate::text::escaped(message, usize::MAX)
}

/// `--local-port`: 0 lets the OS choose, as when it is not given.
fn parse_local_port(s: &str) -> Result<u16, String> {
    s.parse()
        .map_err(|_| format!("`{}` is not a port number (0-65535)", printable(s)))
}

/// `--bind`: an IPv4 or IPv6 address, without brackets or port.
fn parse_bind(s: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| format!("`{}` is not an IP address (e.g. 127.0.0.1 or ::1)", printable(s)))
}

fn parse_db(s: &str) -> Result<DbArg, String> {
    if crate::resolve::url::looks_like_url(s) {
        crate::resolve::url::parse_db_url(s).map(DbArg::Url)
    } else {
        parse_target(s).map(DbArg::Target)
    }
}

/// `90`, `90s`, `30m`, `2h`, `1h30m`, `1d`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("an empty duration; write e.g. 90s, 30m or 2h".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => {
                return Err(format!(
                    "`{}`: unknown unit `{}`; use s, m, h or d (e.g. 1h30m)",
                    printable(s),
                    printable(c.encode_utf8(&mut [0; 4]))
                ));
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("`{}`: a unit without a number before it", printable(s)))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{}`: too long", printable(s)))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "`{}`: a number without a unit at the end; write e.g. {number}s",
            printable(s)
        ));
    }
    if total == 0 {
        return Err(format!("`{}`: the duration must be longer than 0", printable(s)));
    }
    Ok(std::time::Duration::from_secs(total))
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
                return Err(format!(
                    "`{}` has no value: write -o {}=VALUE",
                    printable(s),
                    printable(key)
                ));
            }
            Ok((key.to_string(), value.to_string()))
        }
        _ => Err(format!(
            "`{}` is not KEY=VALUE (e.g. -o StrictHostKeyChecking=accept-new)",
            printable(s)
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
            let err = Cli::try_parse_from(args).unwrap_err();
            let text = err.to_string();
            assert_eq!(err.exit_code(), 2, "{text}");
            assert!(text.starts_with(&format!("error: {flag}: ")), "{text}");
            assert!(!text.contains("s3cr3t") && !text.contains("invalid value"), "{text}");
            assert!(!text.trim_end().chars().any(char::is_control), "{text:?}");
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
