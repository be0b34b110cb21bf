//! SSH sessions: dialling each hop (hop n+1 over a direct-tcpip channel of hop n), verifying host keys,
//! authenticating, and opening the forward channels. Talks to people only through [`Interaction`].
//!
//! Inside, modules only point down: [`Chain`] (here) → `dial` (one hop) → `auth`, `client`, `hostkey`,
//! `config`, `proxy`, `round_trip`, `transport` → the vocabulary they share: `interaction` (hop labels, stages, the
//! person), `clock` (prompt time), `pins`, `kind`, `known_hosts`, `keys`, `certificate`.

mod auth;
mod certificate;
mod client;
mod clock;
mod config;
mod dial;
pub mod hostkey;
mod interaction;
pub mod keys;
mod kind;
pub mod known_hosts;
mod pins;
mod proxy;
mod round_trip;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::ChannelOpenFailure;
use russh::client::{Handle, Msg};

use crate::error::{Error, Result};
use crate::plan::TunnelPlan;
use crate::target::Target;

pub use client::Client;
pub use config::MAX_CHANNEL_WINDOW;
pub use interaction::{Asked, HopLabel, Interaction, PathWindow, Stage};
pub use pins::Pins;

/// A forward channel to the target.
pub type Channel = russh::Channel<Msg>;

/// An authenticated chain of SSH sessions; the last one opens forwards.
pub struct Chain {
    sessions: Vec<(HopLabel, Handle<Client>)>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("hops", &self.sessions.iter().map(|(l, _)| l).collect::<Vec<_>>())
            .finish()
    }
}

/// Why a forward could not be opened; the tunnel stays up.
#[derive(Debug)]
pub enum ForwardError {
    /// The last hop refused: the target refused, is unreachable, or forwarding is prohibited there.
    Refused(String),
    /// The session is gone.
    SessionLost(String),
    /// No answer within the bound.
    Timeout(Duration),
}

impl std::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardError::Refused(why) => f.write_str(why),
            ForwardError::SessionLost(why) => write!(f, "the SSH session is gone ({why})"),
            ForwardError::Timeout(d) => write!(f, "no answer from the last hop within {}s", d.as_secs()),
        }
    }
}

impl Chain {
    /// Dial every hop in order, each over the previous one, verifying host keys and authenticating.
    pub async fn connect(plan: &TunnelPlan, ui: Arc<dyn Interaction>) -> Result<Chain> {
        Chain::connect_pinned(plan, ui, &Arc::new(Pins::default())).await
    }

    /// As [`Chain::connect`], holding every hop to the host keys in `pins` (and pinning new ones).
    pub async fn connect_pinned(plan: &TunnelPlan, ui: Arc<dyn Interaction>, pins: &Arc<Pins>) -> Result<Chain> {
        for (index, hop) in plan.hops.iter().enumerate() {
            auth::check_identities(hop, &HopLabel::new(plan, index), plan.interactive)?;
        }
        let mut sessions: Vec<(HopLabel, Handle<Client>)> = Vec::with_capacity(plan.hops.len());
        for (index, hop) in plan.hops.iter().enumerate() {
            let label = HopLabel::new(plan, index);
            let previous = sessions.last().map(|(_, h)| h);
            match dial::connect_hop(hop, &label, previous, plan.interactive, ui.clone(), pins.clone()).await {
                Ok(handle) => sessions.push((label, handle)),
                Err(e) => {
                    let chain = Chain { sessions };
                    chain.close().await;
                    return Err(e);
                }
            }
        }
        Ok(Chain { sessions })
    }

    fn last(&self) -> Result<&(HopLabel, Handle<Client>)> {
        self.sessions
            .last()
            .ok_or_else(|| Error::internal("the SSH chain has no hops"))
    }

    /// The label of the last hop (the one that opens forwards).
    pub fn last_label(&self) -> Option<&HopLabel> {
        self.sessions.last().map(|(l, _)| l)
    }

    /// Open a direct-tcpip channel from the last hop to `target`.
    pub async fn open_forward(
        &self,
        target: &Target,
        originator: SocketAddr,
        limit: Duration,
    ) -> Result<Channel, ForwardError> {
        let (_, handle) = self.last().map_err(|e| ForwardError::SessionLost(e.to_string()))?;
        let open = handle.channel_open_direct_tcpip(
            target.host.clone(),
            u32::from(target.port),
            originator.ip().to_string(),
            u32::from(originator.port()),
        );
        match tokio::time::timeout(limit, open).await {
            Err(_) => Err(ForwardError::Timeout(limit)),
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(russh::Error::ChannelOpenFailure(reason))) => {
                Err(ForwardError::Refused(describe_open_failure(reason)))
            }
            Ok(Err(e)) => Err(ForwardError::SessionLost(e.to_string())),
        }
    }

    /// True when any session of the chain has ended.
    pub fn is_closed(&self) -> bool {
        self.sessions.iter().any(|(_, h)| h.is_closed())
    }

    /// Resolves when any session of the chain ends (checked at `every`).
    pub async fn closed(&self, every: Duration) {
        loop {
            if self.is_closed() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Say goodbye to every hop, last first, each within a short bound.
    pub async fn close(self) {
        for (label, handle) in self.sessions.into_iter().rev() {
            let bye = handle.disconnect(russh::Disconnect::ByApplication, "sqltun closing", "en");
            if tokio::time::timeout(Duration::from_millis(500), bye).await.is_err() {
                tracing::debug!(%label, "disconnect did not complete in time");
            }
        }
    }
}

fn describe_open_failure(reason: ChannelOpenFailure) -> String {
    match reason {
        ChannelOpenFailure::AdministrativelyProhibited => {
            "the last hop refused the forward (administratively prohibited: check AllowTcpForwarding/PermitOpen on that sshd)".into()
        }
        ChannelOpenFailure::ConnectFailed => "the last hop could not connect to the target (refused or unreachable from there)".into(),
        ChannelOpenFailure::UnknownChannelType => "the last hop does not support TCP forwarding (direct-tcpip)".into(),
        ChannelOpenFailure::ResourceShortage => "the last hop is out of resources (too many channels?)".into(),
        other => format!("the last hop refused the forward ({other:?})"),
    }
}
