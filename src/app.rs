//! The subcommands, wired together: resolve the plan, build the chain, bind, announce, serve.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::cli::{Command, ConfigArgs, ConnectArgs};
use crate::db::Family;
use crate::error::{Error, Kind, Result};
use crate::output::{self, Ready, Replay, SocketReady, Terminal};
use crate::pid_file::PidFile;
use crate::plan::{Forward, TunnelPlan};
use crate::resolve::{self, env::ProcessEnv};
use crate::ssh::{Chain, Pins};
use crate::tunnel::{self, End, Event, Listener, Reconnect, Redial, ServeOptions, listen};

/// Exit code when --max-lifetime ended the tunnel.
pub const EXIT_MAX_LIFETIME: u8 = 10;
/// Exit code when --idle-timeout ended the tunnel.
pub const EXIT_IDLE: u8 = 11;

/// Run one subcommand until it is done or `shutdown` resolves; returns the exit code.
pub async fn run(command: Command, shutdown: impl Future<Output = ()>) -> Result<u8> {
    match command {
        Command::Connect(args) => connect(args, shutdown).await,
        Command::Exec(args) => crate::exec::run(args).await,
        Command::Check(args) => crate::check::run(args).await,
        Command::Config(args) => config(args).map(|_| 0),
        Command::Completions(args) => output::data(&crate::completions::script(args.shell)).map(|_| 0),
    }
}

/// An open tunnel: the authenticated chain, its bound listeners, and what to tell scripts about them.
#[derive(Debug)]
pub struct Opened {
    pub chain: Chain,
    pub listeners: Vec<Listener>,
    pub ready: Vec<Ready>,
    /// The Unix socket listener's facts, with `--unix-socket` (then `ready` is empty).
    pub socket: Option<SocketReady>,
}

/// Connect every hop, then bind (only now: a script that sees the port can use it at once).
/// `None` when `shutdown` resolved first.
pub async fn open(
    plan: &TunnelPlan,
    ui: Arc<Terminal>,
    pins: &Arc<Pins>,
    shutdown: impl Future<Output = ()>,
) -> Result<Option<Opened>> {
    open_at(plan, None, ui, pins, shutdown).await
}

/// As [`open`], listening on the Unix socket `unix_socket` instead of TCP when given.
pub async fn open_at(
    plan: &TunnelPlan,
    unix_socket: Option<&Path>,
    ui: Arc<Terminal>,
    pins: &Arc<Pins>,
    shutdown: impl Future<Output = ()>,
) -> Result<Option<Opened>> {
    // Ctrl-C before the tunnel is ready (at a prompt or not) gives up connecting: exit 130.
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| Error::internal(format!("SIGINT: {e}")))?;
    let chain = tokio::select! {
        biased;
        _ = interrupt.recv() => Err(Error::interrupted()),
        chain = Chain::connect_pinned(plan, ui.clone(), pins) => chain,
        _ = shutdown => {
            // The caller's future also ends on SIGINT, and its listener may be woken first: a SIGINT
            // is told from a SIGTERM by this listener, which hears it within moments.
            let heard = tokio::time::timeout(SIGNAL_SETTLE, interrupt.recv()).await;
            ui.finish();
            if heard.is_ok() {
                return Err(Error::interrupted());
            }
            return Ok(None);
        }
    };
    ui.finish();
    let chain = chain?;
    let hops: Vec<String> = plan.hops.iter().map(|h| h.address()).collect();
    if let Some(path) = unix_socket {
        return match bind_socket(plan, path, &hops) {
            Ok((listener, socket)) => Ok(Some(Opened {
                chain,
                listeners: vec![listener],
                ready: Vec::new(),
                socket: Some(socket),
            })),
            Err(e) => {
                chain.close().await;
                Err(e)
            }
        };
    }
    let listeners = match bind(plan).await {
        Ok(listeners) => listeners,
        Err(e) => {
            chain.close().await;
            return Err(e);
        }
    };
    let ready = listeners
        .iter()
        .zip(&plan.forwards)
        .filter_map(|(l, f)| {
            let addr = l.sockets.first()?.tcp_addr()?;
            Some(Ready {
                addr,
                target: f.target.to_string(),
                url: local_url(f, addr),
                url_without_password: f.url.as_ref().map_or_else(
                    || local_url(f, addr),
                    |u| u.rewritten_without_password(&addr.ip().to_string(), addr.port()),
                ),
                hops: hops.clone(),
                pid: std::process::id(),
            })
        })
        .collect();
    Ok(Some(Opened {
        chain,
        listeners,
        ready,
        socket: None,
    }))
}

/// How long a shutdown before the tunnel is ready waits to learn whether it was SIGINT.
const SIGNAL_SETTLE: std::time::Duration = std::time::Duration::from_millis(100);

/// Run `connecting` unless Ctrl-C comes first, then [`Error::interrupted`]. The listener is registered
/// before `connecting` is first polled, so a SIGINT that also resolves a caller's shutdown future is
/// always seen here first (the select polls this branch first).
pub async fn interruptible<T>(connecting: impl Future<Output = Result<T>>) -> Result<T> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| Error::internal(format!("SIGINT: {e}")))?;
    tokio::select! {
        biased;
        _ = interrupt.recv() => Err(Error::interrupted()),
        done = connecting => done,
    }
}

/// `--unix-socket PATH`: the one forward on a Unix socket only this user can reach.
fn bind_socket(plan: &TunnelPlan, path: &Path, hops: &[String]) -> Result<(Listener, SocketReady)> {
    let [forward] = plan.forwards.as_slice() else {
        return Err(Error::usage(format!(
            "--unix-socket serves one --db, and {} are given; run one sqltun per target",
            plan.forwards.len()
        )));
    };
    let postgres = forward
        .url
        .as_ref()
        .map(|u| u.scheme.family() == Family::Postgres)
        .unwrap_or(forward.target.port == 5432);
    let port = if forward.local_port != 0 {
        forward.local_port
    } else {
        forward.target.port
    };
    let socket = listen::unix_socket_path(path, postgres.then_some(port)).map_err(Error::usage)?;
    let bound = listen::bind_unix(&socket).map_err(|e| Error::new(Kind::LocalBind, e))?;
    let path = match &bound {
        listen::LocalListener::Unix(_, file) => file.path.clone(),
        listen::LocalListener::Tcp(_) => socket,
    };
    // libpq finds a server by directory and port only under this name.
    let pg_name = format!(".s.PGSQL.{port}");
    let directory = path
        .parent()
        .filter(|_| postgres && path.file_name().is_some_and(|n| n == pg_name.as_str()))
        .map(|dir| (dir.to_path_buf(), port));
    let url = match (&directory, &forward.url) {
        (Some((dir, port)), Some(url)) => url.rewritten(&percent_encoded(dir), *port),
        (Some((dir, port)), None) => format!("postgresql://{}:{port}", percent_encoded(dir)),
        (None, _) => format!("unix://{}", path.display()),
    };
    let ready = SocketReady {
        path,
        postgres: directory,
        target: forward.target.to_string(),
        url,
        hops: hops.to_vec(),
        pid: std::process::id(),
    };
    let listener = Listener {
        sockets: vec![bound],
        target: forward.target.clone(),
    };
    Ok((listener, ready))
}

/// A path as a URL's host: libpq takes a percent-encoded socket directory there.
fn percent_encoded(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str()
        .as_bytes()
        .iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The forward's URL pointing at the local end; for a plain target, a URL guessed from the well-known
/// port, else `tcp://`.
pub fn local_url(forward: &Forward, addr: SocketAddr) -> String {
    let host = addr.ip().to_string();
    if let Some(url) = &forward.url {
        return url.rewritten(&host, addr.port());
    }
    crate::db::guessed_url(forward.target.port, addr)
}

async fn connect(args: ConnectArgs, shutdown: impl Future<Output = ()>) -> Result<u8> {
    let plan = resolve::plan(&args.tunnel(), &ProcessEnv)?;
    tracing::debug!(?plan, "resolved");
    if let Some(path) = &args.pid_file {
        PidFile::check(path)?;
    }
    if args.background && !crate::background::is_child() {
        return crate::background::launch(plan.output, plan.forwards.len()).await;
    }
    let log = args
        .background
        .then(|| crate::background::LogFile::open(args.log_file.as_deref(), &ProcessEnv))
        .transpose()?;
    let ui = Arc::new(Terminal::new(args.verbosity.quiet));
    // Stop on a signal or at the end of --max-lifetime; which one it was is read off the deadline.
    let deadline = args.max_lifetime.map(|d| tokio::time::Instant::now() + d);
    let stopped = async move {
        tokio::select! {
            _ = shutdown => {},
            _ = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {},
        }
    };
    tokio::pin!(stopped);
    let pins = Arc::new(Pins::default());
    let Some(opened) = open_at(&plan, args.unix_socket.as_deref(), ui.clone(), &pins, &mut stopped).await? else {
        return Ok(0);
    };
    let pid_file = match &args.pid_file {
        Some(path) => Some(PidFile::create(path)?),
        None => None,
    };
    let routes: Vec<String> = match &opened.socket {
        Some(socket) => {
            output::socket_ready(plan.output, socket)?;
            vec![format!("{} -> {}", socket.path.display(), socket.target)]
        }
        None => {
            output::ready(plan.output, &opened.ready)?;
            let targets = plan.forwards.iter().map(|f| &f.target);
            opened
                .ready
                .iter()
                .zip(targets)
                .map(|(r, t)| format!("{} -> {t}", r.addr))
                .collect()
        }
    };
    let via = plan.hops.iter().map(|h| h.address()).collect::<Vec<_>>().join(" -> ");
    match &log {
        Some(log) => {
            let pid = std::process::id();
            let running = format!(
                "tunnel running in the background (pid {pid}): {} via {via}; log: {}; stop it with: kill {pid}",
                routes.join(", "),
                log.path.display()
            );
            output::status(args.verbosity.quiet, &running);
            crate::background::detach(log);
            // The log's first line says what it is about.
            output::status(args.verbosity.quiet, &running);
        }
        None => {
            for route in &routes {
                output::status(
                    args.verbosity.quiet,
                    &format!("forwarding {route} via {via}; Ctrl-C to stop"),
                );
            }
        }
    }
    let last = plan
        .hops
        .last()
        .ok_or_else(|| Error::internal("the plan has no hops"))?;
    let options = ServeOptions {
        open_limit: last.connect_timeout,
        idle_timeout: args.idle_timeout,
        reconnect: reconnect_policy(&args.tunnel()),
    };
    let redial = Redialer::shared(&plan, ui, pins);
    let events = reporter(plan.output, args.verbosity.quiet);
    let served = tunnel::serve(opened.listeners, opened.chain, options, Some(redial), events, stopped).await;
    drop(pid_file);
    let lifetime_over = deadline.is_some_and(|at| tokio::time::Instant::now() >= at);
    let (code, why) = match (&served, lifetime_over) {
        (Ok(End::Idle), _) => (EXIT_IDLE, "idle-timeout"),
        (Ok(End::Shutdown), true) => (EXIT_MAX_LIFETIME, "max-lifetime"),
        (Ok(End::Shutdown), _) => (0, "signal"),
        (Err(e), _) if e.kind() == Kind::GaveUp => (0, "gave-up"),
        (Err(_), _) => (0, "session-lost"),
    };
    let message = match &served {
        Err(e) => e.message().to_string(),
        Ok(_) => why.to_string(),
    };
    output::event(
        plan.output,
        "closed",
        serde_json::json!({ "reason": why, "message": message }),
    );
    match served {
        Err(e) => Err(e),
        Ok(_) => {
            // A log file also gets the ordinary end, so its reader knows the tunnel is gone and why.
            if code != 0 || output::detached() {
                output::status(args.verbosity.quiet, &format!("closed the tunnel ({why})"));
            }
            Ok(code)
        }
    }
}

/// The reconnect policy the flags ask for (`None` with --no-reconnect).
pub fn reconnect_policy(args: &crate::cli::TunnelArgs) -> Option<Reconnect> {
    (!args.no_reconnect).then(|| Reconnect {
        give_up_after: args.reconnect_timeout.unwrap_or(Reconnect::DEFAULT.give_up_after),
        ..Reconnect::DEFAULT
    })
}

/// Re-dials the plan's chain without ever asking anyone: secrets a person typed are replayed, host
/// keys must match the ones accepted before.
#[derive(Debug)]
pub struct Redialer {
    plan: TunnelPlan,
    ui: Arc<Replay>,
    pins: Arc<Pins>,
}

impl Redialer {
    pub fn shared(plan: &TunnelPlan, terminal: Arc<Terminal>, pins: Arc<Pins>) -> Arc<dyn Redial> {
        Arc::new(Redialer {
            plan: plan.clone(),
            ui: Arc::new(Replay::new(terminal)),
            pins,
        })
    }
}

impl Redial for Redialer {
    fn redial(&self) -> std::pin::Pin<Box<dyn Future<Output = Result<Chain>> + Send + '_>> {
        Box::pin(async move { Chain::connect_pinned(&self.plan, self.ui.clone(), &self.pins).await })
    }
}

/// Supervisor events as stderr lines and `--output json` events.
pub fn reporter(format: crate::plan::OutputFormat, quiet: bool) -> Arc<dyn Fn(Event) + Send + Sync> {
    Arc::new(move |event: Event| match event {
        Event::Lost { reason } => {
            output::status(quiet, &format!("{reason}; the port stays open, reconnecting"));
            output::event(format, "lost", serde_json::json!({ "reason": reason }));
        }
        Event::Reconnecting {
            attempt,
            delay,
            last_error,
        } => {
            let why = last_error
                .as_deref()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default();
            output::status(
                quiet,
                &format!("reconnecting in {:.1}s, attempt {attempt}{why}", delay.as_secs_f64()),
            );
            output::event(
                format,
                "reconnecting",
                serde_json::json!({ "attempt": attempt, "delay_ms": delay.as_millis() as u64, "last_error": last_error }),
            );
        }
        Event::Reconnected { attempt, down } => {
            output::status(
                quiet,
                &format!("reconnected after {:.1}s (attempt {attempt})", down.as_secs_f64()),
            );
            output::event(
                format,
                "reconnected",
                serde_json::json!({ "attempt": attempt, "down_ms": down.as_millis() as u64 }),
            );
        }
    })
}

/// `sqltun config`: what `ssh -G` would say about the destination, or the whole chain as JSON.
fn config(args: ConfigArgs) -> Result<()> {
    let Some(destination) = &args.destination else {
        let aliases = resolve::host_aliases(&args.ssh, &ProcessEnv)?;
        return output::data(&aliases.iter().map(|a| format!("{a}\n")).collect::<String>());
    };
    let hops = resolve::resolve_chain(destination, &args.ssh, &ProcessEnv, &resolve::NoSecrets)?;
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
        output::data(&last.to_ssh_g())
    }
}

async fn bind(plan: &TunnelPlan) -> Result<Vec<Listener>> {
    let mut listeners = Vec::with_capacity(plan.forwards.len());
    for forward in &plan.forwards {
        let sockets = listen::bind_tcp(plan.bind, forward.local_port).map_err(|(addr, e)| {
            let hint = match e.kind() {
                std::io::ErrorKind::AddrInUse if addr.ip().is_ipv6() && plan.bind.is_ipv4() => {
                    "; another process holds it and would receive the clients that try localhost over IPv6 first (libpq does): stop it or pick another --local-port"
                }
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
        let addr = SocketAddr::new(plan.bind, forward.local_port);
        if !plan.bind.is_loopback() {
            output::status(
                false,
                &format!(
                    "WARNING: listening on {addr} (not loopback): anyone who can reach it reaches {}",
                    forward.target
                ),
            );
        }
        listeners.push(Listener {
            sockets: sockets.into_iter().map(listen::LocalListener::Tcp).collect(),
            target: forward.target.clone(),
        });
    }
    Ok(listeners)
}
