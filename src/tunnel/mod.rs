//! Listeners, forwarding and the reconnect supervisor. Every accepted connection gets its own task and
//! its own channel on the current SSH chain; errors in one connection are logged and never stop the
//! others. The listeners are bound once: when the chain dies, the supervisor re-dials it behind them,
//! so the port a script captured keeps working.

pub mod forward;
pub mod listen;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::{Error, Kind, Result};
use crate::plan::Reconnect;
use crate::ssh::Chain;
use crate::target::Target;
use forward::Outcome;

/// The bound listeners of one forward (127.0.0.1 and ::1, or a Unix socket) and the target their
/// connections reach.
#[derive(Debug)]
pub struct Listener {
    pub sockets: Vec<listen::LocalListener>,
    pub target: Target,
}

/// How long in-flight connections get to finish closing at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// How often the supervisor looks at the chain (russh reports a dead session by closing its handle).
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// How long changes to the number of open connections are gathered before one [`Event::Connections`]:
/// a client opening a hundred connections at once makes one event, not a hundred.
const CONNECTIONS_SETTLE: Duration = Duration::from_millis(500);

/// How serving is bounded.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Bound on opening one forward channel.
    pub open_limit: Duration,
    /// Stop after no connection has been open for this long.
    pub idle_timeout: Option<Duration>,
    /// Re-dial a dead chain behind the same listeners; `None` ends serving with an error instead.
    pub reconnect: Option<Reconnect>,
    /// Report changes to the number of open connections ([`Event::Connections`]).
    pub report_connections: bool,
}

/// What the supervisor reports (stderr lines and `--output json` events are made from these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The chain died.
    Lost { reason: String },
    /// The next attempt starts after `delay`.
    Reconnecting {
        attempt: u32,
        delay: Duration,
        last_error: Option<String>,
    },
    /// The chain is back after being down for `down` (the listeners never went away).
    Reconnected { attempt: u32, down: Duration },
    /// The number of open connections changed (at most one event per settling period, and only with
    /// `ServeOptions::report_connections`).
    Connections { open: usize },
    /// SIGUSR1 asked what the tunnel holds (for operators, and for the leak tests).
    Stats {
        open_connections: usize,
        accepted_total: u64,
        tasks: usize,
        chain_up: bool,
    },
}

/// Dials the chain again.
pub trait Redial: Send + Sync {
    fn redial(&self) -> Pin<Box<dyn Future<Output = Result<Chain>> + Send + '_>>;
}

/// Why serving stopped. The command decides what each means for the user and the exit code.
#[derive(Debug)]
pub enum End {
    /// `shutdown` resolved.
    Shutdown,
    /// No connection for the idle timeout.
    Idle,
    /// The chain died and reconnecting is off; `reason` names the hop.
    Lost { reason: String },
    /// The chain stayed down for the whole reconnect window.
    GaveUp {
        down: Duration,
        attempts: u32,
        last_error: Option<String>,
    },
    /// Re-dialling failed in a way that will not fix itself (a changed host key, refused credentials),
    /// as the SSH layer reported it.
    Failed(Error),
}

/// Where connection tasks find the current chain: `None` during an outage.
type Current = watch::Receiver<Option<Arc<Chain>>>;

/// The live chain, waiting up to `limit` for one during an outage.
async fn current_chain(current: &Current, limit: Duration) -> Option<Arc<Chain>> {
    let mut rx = current.clone();
    if let Some(chain) = rx.borrow().as_ref().filter(|c| !c.is_closed()) {
        return Some(chain.clone());
    }
    let alive = |c: &Option<Arc<Chain>>| c.as_ref().is_some_and(|c| !c.is_closed());
    match tokio::time::timeout(limit, rx.wait_for(alive)).await {
        Ok(Ok(chain)) => chain.clone(),
        _ => None,
    }
}

/// Open connections and the last time one opened or closed, for the idle timeout; `changed` wakes the
/// connection count's reporter.
#[derive(Debug)]
struct Activity {
    open: AtomicUsize,
    last: std::sync::Mutex<Instant>,
    changed: tokio::sync::Notify,
}

impl Activity {
    fn touch(&self) {
        if let Ok(mut last) = self.last.lock() {
            *last = Instant::now();
        }
        self.changed.notify_one();
    }

    /// An [`Event::Connections`] whenever the count settled at a new value. Never resolves.
    async fn report_changes(&self, events: &(dyn Fn(Event) + Send + Sync)) {
        let mut reported = 0;
        loop {
            self.changed.notified().await;
            tokio::time::sleep(CONNECTIONS_SETTLE).await;
            let open = self.open.load(Ordering::Acquire);
            if open != reported {
                reported = open;
                events(Event::Connections { open });
            }
        }
    }

    /// Resolves once no connection has been open for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.last.lock().map(|l| *l).unwrap_or_else(|_| Instant::now());
            let open = self.open.load(Ordering::Acquire);
            if open == 0 && last.elapsed() >= limit {
                return;
            }
            let wait = if open > 0 {
                limit
            } else {
                limit.saturating_sub(last.elapsed())
            };
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    }
}

/// Serve every listener through the chain until `shutdown` resolves, the idle timeout passes, or the
/// chain dies for good (an error naming why).
pub async fn serve(
    listeners: Vec<Listener>,
    chain: Chain,
    options: ServeOptions,
    redial: Option<Arc<dyn Redial>>,
    events: Arc<dyn Fn(Event) + Send + Sync>,
    shutdown: impl Future<Output = ()>,
) -> End {
    let open_limit = options.open_limit;
    let wait_for_chain = options.reconnect.map_or(Duration::ZERO, |r| r.wait_for_chain);
    let activity = Arc::new(Activity {
        open: AtomicUsize::new(0),
        last: std::sync::Mutex::new(Instant::now()),
        changed: tokio::sync::Notify::new(),
    });
    let (chain_tx, chain_rx) = watch::channel(Some(Arc::new(chain)));
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let ids = Arc::new(AtomicU64::new(0));
    let mut accepters = JoinSet::new();
    let connections = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
    let sockets = listeners
        .into_iter()
        .flat_map(|Listener { sockets, target }| sockets.into_iter().map(move |s| (s, target.clone())));
    for (listener, target) in sockets {
        let serving = Serving {
            chain: chain_rx.clone(),
            cancel: cancel_rx.clone(),
            ids: ids.clone(),
            connections: connections.clone(),
            activity: activity.clone(),
            wait_for_chain,
            open_limit,
        };
        accepters.spawn(accept_loop(listener, target, serving));
    }

    let idle = async {
        match options.idle_timeout {
            Some(limit) => activity.idle_for(limit).await,
            None => std::future::pending().await,
        }
    };
    let supervising = supervise(&chain_tx, options.reconnect, redial.as_deref(), events.as_ref());
    let stats = report_stats_on_sigusr1(&activity, &ids, &chain_rx, events.as_ref());
    let connections_reported = async {
        match options.report_connections {
            true => activity.report_changes(events.as_ref()).await,
            false => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        _ = shutdown => End::Shutdown,
        _ = idle => End::Idle,
        ended = supervising => ended,
        _ = stats => End::Shutdown,
        _ = connections_reported => End::Shutdown,
    };

    // Stop accepting, tell every connection to close its channel, give them a moment, then hang up.
    accepters.shutdown().await;
    let _ = cancel_tx.send(true);
    let mut set = std::mem::take(&mut *connections.lock().await);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async { while set.join_next().await.is_some() {} }).await;
    set.shutdown().await;
    drop(chain_rx);
    if let Some(chain) = chain_tx.send_replace(None).and_then(|c| Arc::try_unwrap(c).ok()) {
        chain.close().await;
    }
    result
}

/// What every accept loop shares with `serve`: the current chain, the cancel signal, connection ids,
/// the connection tasks and the activity the idle timeout watches.
struct Serving {
    chain: Current,
    cancel: watch::Receiver<bool>,
    ids: Arc<AtomicU64>,
    connections: Arc<tokio::sync::Mutex<JoinSet<()>>>,
    activity: Arc<Activity>,
    wait_for_chain: Duration,
    open_limit: Duration,
}

/// Accept on one socket for ever, one spanned task per connection; a failed accept is logged, never fatal.
async fn accept_loop(listener: listen::LocalListener, target: Target, serving: Serving) {
    loop {
        let (socket, peer, originator) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: log, back off briefly, keep serving.
                tracing::warn!("accept on {} failed: {e}", listener.describe());
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let id = serving.ids.fetch_add(1, Ordering::Relaxed) + 1;
        let span = tracing::info_span!("conn", id, %peer);
        let activity = serving.activity.clone();
        activity.open.fetch_add(1, Ordering::AcqRel);
        activity.touch();
        let connection = Connection {
            id,
            peer,
            originator,
            target: target.clone(),
            chain: serving.chain.clone(),
            cancel: serving.cancel.clone(),
            wait_for_chain: serving.wait_for_chain,
            open_limit: serving.open_limit,
        };
        // One lock per accept: reap finished connection tasks (so the set does not grow without bound),
        // then add this one.
        let mut set = serving.connections.lock().await;
        while set.try_join_next().is_some() {}
        set.spawn(
            async move {
                let _done = OnDrop(|| {
                    activity.open.fetch_sub(1, Ordering::AcqRel);
                    activity.touch();
                });
                connection.forward(socket).await;
            }
            .instrument(span),
        );
    }
}

/// One accepted connection on its way to the target.
struct Connection {
    id: u64,
    peer: String,
    originator: std::net::SocketAddr,
    target: Target,
    chain: Current,
    cancel: watch::Receiver<bool>,
    wait_for_chain: Duration,
    open_limit: Duration,
}

impl Connection {
    /// Forward `socket` over the current chain (waiting a while for one during a reconnect), and log how
    /// it ended; never an error to the caller.
    async fn forward(self, socket: listen::LocalStream) {
        let Connection {
            id,
            peer,
            originator,
            target,
            chain: current,
            cancel,
            wait_for_chain,
            open_limit,
        } = self;
        tracing::debug!("accepted; forwarding to {target}");
        let Some(chain) = current_chain(&current, wait_for_chain).await else {
            tracing::warn!(
                "connection #{id} from {peer} to {target}: no SSH session within {}s; closed it",
                wait_for_chain.as_secs()
            );
            return;
        };
        drop(current);
        match forward::forward(socket, originator, &target, chain, open_limit, cancel).await {
            Outcome::Done { up, down } => tracing::debug!(up, down, "closed"),
            Outcome::Refused(why) => {
                tracing::warn!("connection #{id} from {peer} to {target}: {why}; closed it")
            }
            Outcome::Cancelled => tracing::debug!("closed at shutdown"),
            Outcome::Stalled(pending) => tracing::warn!(
                "connection #{id} from {peer} to {target}: the local client read nothing for {}s with {} MiB waiting for it; disconnected it so the other connections keep flowing",
                forward::STALL_LIMIT.as_secs(),
                pending / (1024 * 1024)
            ),
            Outcome::Failed(why) => tracing::info!("connection #{id} from {peer}: {why}"),
        }
    }
}

/// On SIGUSR1, an [`Event::Stats`] with what the tunnel holds. Never resolves.
async fn report_stats_on_sigusr1(
    activity: &Activity,
    accepted: &AtomicU64,
    chain: &Current,
    events: &(dyn Fn(Event) + Send + Sync),
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        return std::future::pending().await;
    };
    while usr1.recv().await.is_some() {
        let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let up = chain.borrow().as_ref().is_some_and(|c| !c.is_closed());
        events(Event::Stats {
            open_connections: activity.open.load(Ordering::Acquire),
            accepted_total: accepted.load(Ordering::Relaxed),
            tasks,
            chain_up: up,
        });
    }
    std::future::pending().await
}

/// Watch the chain; when it dies, re-dial it with backoff. Returns only when serving must end.
async fn supervise(
    chain_tx: &watch::Sender<Option<Arc<Chain>>>,
    policy: Option<Reconnect>,
    redial: Option<&dyn Redial>,
    events: &(dyn Fn(Event) + Send + Sync),
) -> End {
    let mut delay = policy.map_or(Duration::ZERO, |p| p.initial);
    loop {
        let Some(chain) = chain_tx.borrow().clone() else {
            return End::Failed(Error::internal("the supervisor has no chain to watch"));
        };
        let up_since = Instant::now();
        chain.closed(WATCH_EVERY).await;
        let place = chain
            .last_label()
            .map(|l| l.to_string())
            .unwrap_or_else(|| "ssh".into());
        chain_tx.send_replace(None);
        drop(chain);
        let reason = format!("{place}: the SSH session ended");
        events(Event::Lost { reason: reason.clone() });
        let (Some(policy), Some(redial)) = (policy, redial) else {
            return End::Lost { reason };
        };
        if up_since.elapsed() >= policy.healthy_after {
            delay = policy.initial;
        }
        let down_since = Instant::now();
        let mut last_error: Option<String> = None;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // The whole outage is bounded, not the next delay: the last wait is cut to what is left, and
            // giving up happens only after an attempt at (or past) the deadline failed.
            let remaining = policy.give_up_after.saturating_sub(down_since.elapsed());
            if remaining.is_zero() {
                return End::GaveUp {
                    down: down_since.elapsed(),
                    attempts: attempt - 1,
                    last_error,
                };
            }
            let wait = jittered(delay).min(remaining);
            events(Event::Reconnecting {
                attempt,
                delay: wait,
                last_error: last_error.clone(),
            });
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(policy.max);
            match redial.redial().await {
                Ok(chain) => {
                    chain_tx.send_replace(Some(Arc::new(chain)));
                    events(Event::Reconnected {
                        attempt,
                        down: down_since.elapsed(),
                    });
                    break;
                }
                // A changed host key or refused credentials will not fix themselves: stop now.
                Err(e) if matches!(e.kind(), Kind::HostKey | Kind::Auth | Kind::Usage) => {
                    return End::Failed(Error::new(e.kind(), format!("while reconnecting: {}", e.message())));
                }
                Err(e) => last_error = Some(e.message().to_string()),
            }
        }
    }
}

/// A random fraction in [0, 1) for jitter; no need for a cryptographic source here.
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(now);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `delay` with ±25 % jitter, so many tunnels do not re-dial a restarted bastion in lockstep.
fn jittered(delay: Duration) -> Duration {
    delay.mul_f64(0.75 + 0.5 * unit_random())
}

/// Runs a closure when dropped (also when the task is aborted).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jitter must stay within ±25 % so the backoff bounds documented in the README hold.
    #[test]
    fn jitter_stays_in_bounds() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(4));
            assert!(d >= Duration::from_secs(3) && d <= Duration::from_secs(5), "{d:?}");
        }
    }
}
