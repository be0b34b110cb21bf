//! What connect and exec share: connect every hop, bind the listeners, and serve them with the
//! reconnect supervisor, its events shown on stderr (and as JSON events with `--output json`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Stop;
use crate::db::Family;
use crate::error::{Error, Kind, Result};
use crate::output::{self, Ready, Replay, SocketReady, Terminal};
use crate::plan::{Forward, OutputFormat, TunnelPlan};
use crate::ssh::{Chain, Pins};
use crate::tunnel::{self, End, Event, Listener, Redial, ServeOptions, listen};

/// An open tunnel: the authenticated chain, its bound listeners, and what to tell scripts about them.
#[derive(Debug)]
pub struct Opened {
    pub chain: Chain,
    pub listeners: Vec<Listener>,
    pub ready: Vec<Ready>,
    /// The Unix socket listener's facts, with `--unix-socket` (then `ready` is empty).
    pub socket: Option<SocketReady>,
}

/// Connect every hop, then bind (only now: a script that sees the port can use it at once), on the
/// plan's Unix socket when it names one. `None` when `shutdown` resolved first with a SIGTERM; a
/// SIGINT before the tunnel is ready (at a prompt or not) gives up connecting: [`Error::interrupted`].
pub(super) async fn open(
    plan: &TunnelPlan,
    ui: Arc<Terminal>,
    pins: &Arc<Pins>,
    shutdown: impl Future<Output = Stop>,
) -> Result<Option<Opened>> {
    let chain = tokio::select! {
        chain = Chain::connect_pinned(plan, ui.clone(), pins) => chain,
        stop = shutdown => {
            ui.finish();
            return match stop {
                Stop::Interrupt => Err(Error::interrupted()),
                Stop::Terminate => Ok(None),
            };
        }
    };
    ui.finish();
    let chain = chain?;
    match bind_all(plan).await {
        Ok((listeners, ready, socket)) => Ok(Some(Opened {
            chain,
            listeners,
            ready,
            socket,
        })),
        Err(e) => {
            chain.close().await;
            Err(e)
        }
    }
}

/// Bind what the plan asks for: its Unix socket, or one TCP listener per forward.
async fn bind_all(plan: &TunnelPlan) -> Result<(Vec<Listener>, Vec<Ready>, Option<SocketReady>)> {
    let hops: Vec<String> = plan.hops.iter().map(|h| h.address()).collect();
    if let Some(path) = &plan.lifecycle.unix_socket {
        let (listener, socket) = bind_socket(plan, path, &hops)?;
        return Ok((vec![listener], Vec::new(), Some(socket)));
    }
    let listeners = bind(plan).await?;
    let ready = ready_lines(plan, &listeners, &hops);
    Ok((listeners, ready, None))
}

/// What scripts are told about each bound TCP forward.
fn ready_lines(plan: &TunnelPlan, listeners: &[Listener], hops: &[String]) -> Vec<Ready> {
    let addrs: Vec<SocketAddr> = listeners.iter().filter_map(|l| l.sockets.first()?.tcp_addr()).collect();
    ready_at(plan, &addrs, hops, std::process::id())
}

/// What scripts are told about the plan's forwards listening at `addrs` (in order) in process `pid`:
/// for a fresh tunnel, and for one already running that `connect NAME --background` finds.
pub(super) fn ready_at(plan: &TunnelPlan, addrs: &[SocketAddr], hops: &[String], pid: u32) -> Vec<Ready> {
    addrs
        .iter()
        .zip(&plan.forwards)
        .map(|(&addr, f)| Ready {
            addr,
            target: f.target.to_string(),
            url: local_url(f, addr),
            url_without_password: f.url.as_ref().map_or_else(
                || local_url(f, addr),
                |u| u.rewritten_without_password(&addr.ip().to_string(), addr.port()),
            ),
            hops: hops.to_vec(),
            pid,
        })
        .collect()
}

/// Whoever else wants to hear the supervisor's events (a background tunnel's registry entry).
pub(super) type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// Serve the opened tunnel under the plan's reconnect policy until `shutdown`, the idle timeout, or the
/// chain dies for good. Events go to stderr, as JSON events to stdout when `format` is JSON, and to
/// `observer` (which also gets the number of open connections as it changes).
#[allow(
    clippy::too_many_arguments,
    reason = "the stages connect and exec hand over, each once"
)]
pub(super) async fn serve(
    plan: &TunnelPlan,
    opened: Opened,
    ui: Arc<Terminal>,
    pins: Arc<Pins>,
    format: OutputFormat,
    quiet: bool,
    observer: Option<Observer>,
    shutdown: impl Future<Output = ()>,
) -> End {
    let Some(last) = plan.hops.last() else {
        return End::Failed(Error::internal("the plan has no hops"));
    };
    let options = ServeOptions {
        open_limit: last.connect_timeout,
        idle_timeout: plan.lifecycle.idle_timeout,
        reconnect: plan.lifecycle.reconnect,
        report_connections: observer.is_some(),
    };
    let redial = Redialer::shared(plan, ui, pins);
    let events = reporter(format, quiet, observer);
    tunnel::serve(opened.listeners, opened.chain, options, Some(redial), events, shutdown).await
}

/// Why serving ended, as the user hears it: the error that ends sqltun, if any, and the `closed`
/// event's reason.
pub(super) fn ending(end: End) -> (Result<()>, &'static str) {
    match end {
        End::Shutdown => (Ok(()), "signal"),
        End::Idle => (Ok(()), "idle-timeout"),
        End::Lost { reason } => (
            Err(Error::new(
                Kind::Session,
                format!("{reason}; the tunnel is closed (reconnecting is off)"),
            )),
            "session-lost",
        ),
        End::GaveUp {
            down,
            attempts,
            last_error,
        } => (
            Err(Error::new(
                Kind::GaveUp,
                format!(
                    "gave up reconnecting after {}s and {attempts} attempts (--reconnect-timeout); last error: {}",
                    down.as_secs(),
                    last_error.as_deref().unwrap_or("none")
                ),
            )),
            "gave-up",
        ),
        End::Failed(e) => (Err(e), "session-lost"),
    }
}

/// `--unix-socket PATH`: the one forward on a Unix socket only this user can reach.
fn bind_socket(plan: &TunnelPlan, path: &Path, hops: &[String]) -> Result<(Listener, SocketReady)> {
    let (forward, postgres, port) = socket_forward(plan)?;
    let socket = listen::unix_socket_path(path, postgres.then_some(port)).map_err(Error::usage)?;
    let bound = listen::bind_unix(&socket).map_err(|e| Error::new(Kind::LocalBind, e))?;
    let path = match &bound {
        listen::LocalListener::Unix(_, file) => file.path.clone(),
        listen::LocalListener::Tcp(_) => socket,
    };
    let ready = socket_ready_at(plan, path, hops, std::process::id())?;
    let listener = Listener {
        sockets: vec![bound],
        target: forward.target.clone(),
    };
    Ok((listener, ready))
}

/// The one forward a Unix socket serves, whether it is PostgreSQL's, and the port its name carries.
fn socket_forward(plan: &TunnelPlan) -> Result<(&Forward, bool, u16)> {
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
    Ok((forward, postgres, port))
}

/// What scripts are told about the plan's Unix socket bound at `path` in process `pid` (a fresh tunnel,
/// or one already running).
pub(super) fn socket_ready_at(plan: &TunnelPlan, path: PathBuf, hops: &[String], pid: u32) -> Result<SocketReady> {
    let (forward, postgres, port) = socket_forward(plan)?;
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
    Ok(SocketReady {
        path,
        postgres: directory,
        target: forward.target.to_string(),
        url,
        hops: hops.to_vec(),
        pid,
    })
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
fn local_url(forward: &Forward, addr: SocketAddr) -> String {
    let host = addr.ip().to_string();
    if let Some(url) = &forward.url {
        return url.rewritten(&host, addr.port());
    }
    crate::db::guessed_url(forward.target.port, addr)
}

/// Re-dials the plan's chain without ever asking anyone: secrets a person typed are replayed, host
/// keys must match the ones accepted before.
#[derive(Debug)]
struct Redialer {
    plan: TunnelPlan,
    ui: Arc<Replay>,
    pins: Arc<Pins>,
}

impl Redialer {
    fn shared(plan: &TunnelPlan, terminal: Arc<Terminal>, pins: Arc<Pins>) -> Arc<dyn Redial> {
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

/// Supervisor events as stderr lines and `--output json` events, and to the observer.
fn reporter(format: OutputFormat, quiet: bool, observer: Option<Observer>) -> Arc<dyn Fn(Event) + Send + Sync> {
    Arc::new(move |event: Event| {
        if let Some(observer) = &observer {
            observer(&event);
        }
        report(format, quiet, event)
    })
}

/// One supervisor event on stderr (and stdout, as JSON, with `--output json`).
fn report(format: OutputFormat, quiet: bool, event: Event) {
    match event {
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
        Event::Stats {
            open_connections,
            accepted_total,
            tasks,
            chain_up,
        } => output::status(
            false,
            &format!(
                "stats: open_connections={open_connections} accepted_total={accepted_total} tasks={tasks} chain={}",
                if chain_up { "up" } else { "down" }
            ),
        ),
        Event::Connections { open } => tracing::debug!(open, "open connections"),
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
