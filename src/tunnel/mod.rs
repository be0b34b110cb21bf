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

/// Serve every listener through `chain` until `shutdown` resolves (returns `Ok`) or the SSH chain
/// dies (returns an error naming it).
pub async fn serve(
    listeners: Vec<Listener>,
    chain: Chain,
    open_limit: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
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
                connections.lock().await.spawn(
                    async move {
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

    let result = tokio::select! {
        _ = shutdown => Ok(()),
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
