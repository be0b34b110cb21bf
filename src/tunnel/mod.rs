//! Listeners and forwarding: every accepted connection gets its own task and its own channel on the
//! shared SSH session. Errors in one connection are logged and never stop the others.

pub mod forward;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::error::{Error, Kind, Result};
use crate::plan::Target;
use crate::ssh::Chain;
use forward::Outcome;

/// A bound listener and the target its connections reach.
#[derive(Debug)]
pub struct Listener {
    pub listener: TcpListener,
    pub target: Target,
}

/// How long in-flight connections get to finish closing at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// How serving is bounded.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Bound on opening one forward channel.
    pub open_limit: Duration,
    /// Stop after no connection has been open for this long.
    pub idle_timeout: Option<Duration>,
}

/// Why serving stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `shutdown` resolved.
    Shutdown,
    /// No connection for the idle timeout.
    Idle,
}

/// Open connections and the last time one opened or closed, for the idle timeout.
#[derive(Debug)]
struct Activity {
    open: std::sync::atomic::AtomicUsize,
    last: std::sync::Mutex<tokio::time::Instant>,
}

impl Activity {
    fn touch(&self) {
        if let Ok(mut last) = self.last.lock() {
            *last = tokio::time::Instant::now();
        }
    }

    /// Resolves once no connection has been open for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self
                .last
                .lock()
                .map(|l| *l)
                .unwrap_or_else(|_| tokio::time::Instant::now());
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

/// Serve every listener through `chain` until `shutdown` resolves, the idle timeout passes, or the SSH
/// chain dies (an error naming it).
pub async fn serve(
    listeners: Vec<Listener>,
    chain: Chain,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<End> {
    let open_limit = options.open_limit;
    let activity = Arc::new(Activity {
        open: Default::default(),
        last: std::sync::Mutex::new(tokio::time::Instant::now()),
    });
    let chain = Arc::new(chain);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let ids = Arc::new(AtomicU64::new(0));
    let mut accepters = JoinSet::new();
    let connections = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
    for Listener { listener, target } in listeners {
        let chain = chain.clone();
        let cancel = cancel_rx.clone();
        let ids = ids.clone();
        let connections = connections.clone();
        let activity = activity.clone();
        accepters.spawn(async move {
            loop {
                let (socket, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // EMFILE and friends: log, back off briefly, keep serving.
                        tracing::warn!("accept on {:?} failed: {e}", listener.local_addr().ok());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let id = ids.fetch_add(1, Ordering::Relaxed) + 1;
                let target = target.clone();
                let chain = chain.clone();
                let cancel = cancel.clone();
                let span = tracing::info_span!("conn", id, %peer);
                let activity = activity.clone();
                activity.open.fetch_add(1, Ordering::AcqRel);
                activity.touch();
                connections.lock().await.spawn(
                    async move {
                        let _done = OnDrop(|| {
                            activity.open.fetch_sub(1, Ordering::AcqRel);
                            activity.touch();
                        });
                        tracing::debug!("accepted; forwarding to {target}");
                        match forward::forward(socket, peer, &target, chain, open_limit, cancel).await {
                            Outcome::Done { up, down } => tracing::debug!(up, down, "closed"),
                            Outcome::Refused(why) => tracing::warn!("connection #{id} from {peer} to {target}: {why}; closed it"),
                            Outcome::Cancelled => tracing::debug!("closed at shutdown"),
                            Outcome::Stalled(pending) => tracing::warn!(
                                "connection #{id} from {peer} to {target}: the local client read nothing for {}s with {} MiB waiting for it; disconnected it so the other connections keep flowing",
                                forward::STALL_LIMIT.as_secs(),
                                pending / (1024 * 1024)
                            ),
                            Outcome::Failed(why) => tracing::info!("connection #{id} from {peer}: {why}"),
                        }
                    }
                    .instrument(span),
                );
                // Reap finished connection tasks so the set does not grow without bound.
                let mut set = connections.lock().await;
                while set.try_join_next().is_some() {}
            }
        });
    }

    let idle = async {
        match options.idle_timeout {
            Some(limit) => activity.idle_for(limit).await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        _ = shutdown => Ok(End::Shutdown),
        _ = idle => Ok(End::Idle),
        _ = chain.closed(Duration::from_millis(200)) => {
            let place = chain.last_label().map(|l| l.to_string()).unwrap_or_else(|| "ssh".into());
            Err(Error::new(Kind::Session, format!("{place}: the SSH session ended; the tunnel is closed")))
        }
    };

    // Stop accepting, tell every connection to close its channel, give them a moment, then hang up.
    accepters.shutdown().await;
    let _ = cancel_tx.send(true);
    let mut set = std::mem::take(&mut *connections.lock().await);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async { while set.join_next().await.is_some() {} }).await;
    set.shutdown().await;
    if let Ok(chain) = Arc::try_unwrap(chain) {
        chain.close().await;
    }
    result
}

/// Runs a closure when dropped (also when the task is aborted).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}
