//! Dialling one hop: the transport (TCP for hop 1, a direct-tcpip channel of the previous hop after
//! that), the SSH handshake and authentication, all within ConnectTimeout (time a person spends at a
//! prompt does not count).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::Handle;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;

use super::client::Client;
use super::clock::{PromptClock, bounded};
use super::config::{allows_sha1_rsa, channel_window, client_config, client_id};
use super::interaction::{HopLabel, Interaction, PathWindow, Stage};
use super::kind::classify;
use super::pins::Pins;
use super::round_trip::{self, PROBE_LIMIT};
use super::{auth, hostkey, proxy, transport};
use crate::error::{Error, Kind, Result};
use crate::plan::{Hop, Transport};

/// Read buffer on the SSH transport: fewer, larger reads keep downloads at full speed.
const TRANSPORT_READ_BUFFER: usize = 64 * 1024;

fn timeout_error(label: &HopLabel, limit: Duration, stage: &str) -> Error {
    Error::new(
        Kind::Unreachable,
        format!(
            "{label}: no answer within {}s (ConnectTimeout) while {stage}; check the host and port and that nothing drops the traffic, or raise -o ConnectTimeout=SECONDS",
            limit.as_secs_f32()
        ),
    )
}

/// Dial, handshake and authenticate one hop; `previous` is the session this hop is reached through.
pub(crate) async fn connect_hop(
    hop: &Hop,
    label: &HopLabel,
    previous: Option<&Handle<Client>>,
    interactive: bool,
    ui: Arc<dyn Interaction>,
    pins: Arc<Pins>,
) -> Result<Handle<Client>> {
    let clock = Arc::new(PromptClock::default());
    let limit = hop.connect_timeout;
    let started = Instant::now();
    let remaining = |clock: &PromptClock| {
        let (paused, _) = clock.paused();
        (limit + paused)
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1))
    };

    let mut dialing = Dialing {
        interactive,
        ui: ui.clone(),
        clock: clock.clone(),
        pins,
        peer: None,
    };
    match (previous, &hop.transport) {
        (None, Transport::ProxyCommand(command)) => {
            ui.progress(label, "starting ProxyCommand");
            let stream = proxy::spawn(label, command)?;
            ui.stage(
                label,
                &Stage::Transport(format!("ProxyCommand {command}")),
                started.elapsed(),
            );
            handshake(hop, label, stream, dialing, remaining(&clock)).await
        }
        (None, Transport::Direct) => {
            ui.progress(label, "connecting (TCP)");
            let tcp = dial_tcp(hop, label, limit).await?;
            dialing.peer = tcp.peer_addr().ok();
            let peer = dialing.peer.map(|a| a.to_string()).unwrap_or_else(|| hop.host.clone());
            ui.stage(label, &Stage::Transport(format!("TCP {peer}")), started.elapsed());
            let stream = BufReader::with_capacity(TRANSPORT_READ_BUFFER, transport::QuickAck(tcp));
            handshake(hop, label, stream, dialing, remaining(&clock)).await
        }
        (Some(through), _) => {
            ui.progress(label, "opening channel through the previous hop");
            let channel = open_channel(through, hop, label, limit).await?;
            let stream = channel.into_stream();
            ui.stage(
                label,
                &Stage::Transport(format!("channel through hop {}", label.index)),
                started.elapsed(),
            );
            handshake(hop, label, stream, dialing, remaining(&clock)).await
        }
    }
}

/// A direct-tcpip channel from the previous hop to this one, within `limit`.
async fn open_channel(
    through: &Handle<Client>,
    hop: &Hop,
    label: &HopLabel,
    limit: Duration,
) -> Result<russh::Channel<russh::client::Msg>> {
    let open = through.channel_open_direct_tcpip(hop.host.clone(), u32::from(hop.port), "127.0.0.1", 0);
    match tokio::time::timeout(limit, open).await {
        Err(_) => Err(timeout_error(label, limit, "the previous hop connected to it")),
        Ok(Err(russh::Error::ChannelOpenFailure(reason))) => Err(Error::new(
            Kind::Unreachable,
            format!(
                "{label}: the previous hop could not connect to {}:{} ({reason:?}); check the host and port as seen from there",
                hop.host, hop.port
            ),
        )),
        Ok(Err(e)) => Err(Error::new(
            Kind::Unreachable,
            format!(
                "{label}: could not open a channel through the previous hop: {}",
                crate::text::printable(&e.to_string())
            ),
        )),
        Ok(Ok(channel)) => Ok(channel),
    }
}

async fn dial_tcp(hop: &Hop, label: &HopLabel, limit: Duration) -> Result<TcpStream> {
    let deadline = tokio::time::Instant::now() + limit;
    let lookup = tokio::time::timeout_at(deadline, tokio::net::lookup_host((hop.host.as_str(), hop.port)));
    let addrs: Vec<SocketAddr> = match lookup.await {
        Err(_) => return Err(timeout_error(label, limit, "resolving the host name")),
        Ok(Err(e)) => {
            return Err(Error::new(
                Kind::Unreachable,
                format!(
                    "{label}: cannot resolve host '{}': {e}; check the name (and HostName in ssh_config)",
                    hop.host
                ),
            ));
        }
        Ok(Ok(addrs)) => addrs.collect(),
    };
    let mut last_error = None;
    for addr in &addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(timeout_error(label, limit, &format!("connecting to {addr} over TCP"))),
            Ok(Ok(tcp)) => {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("set_nodelay on the SSH socket failed: {e}");
                }
                return Ok(tcp);
            }
            Ok(Err(e)) => {
                tracing::debug!(hop = %label, %addr, "TCP connect failed: {e}");
                last_error = Some((addr, e));
            }
        }
    }
    Err(match last_error {
        Some((addr, e)) => {
            let hint = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "; is sshd running there, and is the port right?",
                _ => "; check the address and the network path",
            };
            Error::new(
                Kind::Unreachable,
                format!("{label}: cannot connect to {addr}: {e}{hint}"),
            )
        }
        None => Error::new(
            Kind::Unreachable,
            format!("{label}: host '{}' resolved to no address", hop.host),
        ),
    })
}

/// What every stage of dialling one hop shares.
struct Dialing {
    interactive: bool,
    ui: Arc<dyn Interaction>,
    clock: Arc<PromptClock>,
    pins: Arc<Pins>,
    /// The address reached over TCP, shown in the host-key question.
    peer: Option<SocketAddr>,
}

/// What the handler leaves behind during the handshake, for the report and the error that follows.
struct Slots {
    /// Why the host key was rejected (russh itself only sees `false`).
    failure: Arc<Mutex<Option<Error>>>,
    /// The host key offered, accepted or not.
    offered: Arc<Mutex<Option<hostkey::Offered>>>,
    /// What the server said when it disconnected.
    said: Arc<Mutex<Option<String>>>,
}

/// Key exchange (the host key checked on the way) and authentication over `stream`, within `limit`.
async fn handshake<S>(
    hop: &Hop,
    label: &HopLabel,
    stream: S,
    dialing: Dialing,
    limit: Duration,
) -> Result<Handle<Client>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let known = Arc::new(hostkey::Loaded::read(&hop.host_keys));
    let (handler, slots) = handler(hop, label, &dialing, known.clone());
    let mut config = negotiation(hop, label, &dialing, &known)?;
    let ui = dialing.ui.as_ref();
    ui.progress(label, "key exchange");
    let started = Instant::now();
    let connected = bounded(limit, &dialing.clock, async move {
        // The window is sized for the path's round trip, measured in the identification exchange.
        let line = format!("{}\r\n", client_id());
        let (stream, round_trip) = round_trip::probe(stream, line.as_bytes(), PROBE_LIMIT).await;
        let path = PathWindow {
            round_trip,
            window: channel_window(round_trip),
        };
        config.window_size = path.window;
        tracing::debug!("{label}: {path} (identification exchange)");
        let connected = russh::client::connect_stream(Arc::new(config), stream, handler).await;
        connected.map(|handle| (handle, path))
    })
    .await;
    let kex_elapsed = started.elapsed();
    if let Some(Ok((_, path))) = &connected {
        ui.stage(label, &Stage::KeyExchange(*path), kex_elapsed);
    }
    if let Some(o) = slots.offered.lock().ok().and_then(|o| o.clone()) {
        ui.stage(label, &Stage::HostKey(o), Duration::ZERO);
    }
    let mut handle = match connected {
        None => {
            return Err(timeout_error(
                label,
                hop.connect_timeout,
                "waiting for the SSH handshake",
            ));
        }
        Some(Ok((handle, _))) => handle,
        Some(Err(e)) => return Err(handshake_failure(&e, label, &slots)),
    };
    let (paused, _) = dialing.clock.paused();
    let left = (limit + paused)
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    authenticate(&mut handle, hop, label, &dialing, left, &slots.said).await?;
    Ok(handle)
}

/// The russh handler for this hop, and the slots it reports through.
fn handler(hop: &Hop, label: &HopLabel, dialing: &Dialing, known: Arc<hostkey::Loaded>) -> (Client, Slots) {
    let slots = Slots {
        failure: Arc::new(Mutex::new(None)),
        offered: Arc::new(Mutex::new(None)),
        said: Arc::new(Mutex::new(None)),
    };
    let client = Client {
        label: label.clone(),
        host: hop.host.clone(),
        port: hop.port,
        settings: hop.host_keys.clone(),
        interactive: dialing.interactive,
        ui: dialing.ui.clone(),
        clock: dialing.clock.clone(),
        failure: slots.failure.clone(),
        offered: slots.offered.clone(),
        pins: dialing.pins.clone(),
        known,
        sha1_rsa: allows_sha1_rsa(hop),
        said: slots.said.clone(),
        peer: dialing.peer,
    };
    (client, slots)
}

/// The client configuration, preferring the key types known_hosts lists for this host and asking for
/// host certificates only when a CA is trusted for it.
fn negotiation(
    hop: &Hop,
    label: &HopLabel,
    dialing: &Dialing,
    known: &hostkey::Loaded,
) -> Result<russh::client::Config> {
    let check = hostkey::HostKeyCheck {
        label,
        host: &hop.host,
        port: hop.port,
        settings: &hop.host_keys,
        interactive: dialing.interactive,
        ui: dialing.ui.as_ref(),
        clock: &dialing.clock,
        known,
        sha1_rsa: allows_sha1_rsa(hop),
        peer: dialing.peer,
    };
    let known_types = check.known_types();
    let want_certificates = !check.cert_authorities().is_empty();
    client_config(hop, &known_types, want_certificates).map_err(|e| e.context(label))
}

/// The error for a failed handshake: the host key's rejection if that was it, else the failure in
/// words with what the server said.
fn handshake_failure(e: &russh::Error, label: &HopLabel, slots: &Slots) -> Error {
    if let Some(rejected) = slots.failure.lock().ok().and_then(|mut f| f.take()) {
        return rejected;
    }
    if let Some(refused) = sha1_only(e, label) {
        return refused;
    }
    Error::new(
        classify(e),
        format!(
            "{label}: SSH handshake failed: {}{}",
            describe_handshake_error(e),
            server_said(&slots.said)
        ),
    )
}

/// Authenticate within `left`, adding what the server said to a failure.
async fn authenticate(
    handle: &mut Handle<Client>,
    hop: &Hop,
    label: &HopLabel,
    dialing: &Dialing,
    left: Duration,
    said: &Mutex<Option<String>>,
) -> Result<()> {
    let ui = dialing.ui.as_ref();
    let clock = &dialing.clock;
    let started = Instant::now();
    match bounded(
        left,
        clock,
        auth::authenticate(handle, hop, label, dialing.interactive, ui, clock),
    )
    .await
    {
        None => Err(timeout_error(label, hop.connect_timeout, "authenticating")),
        Some(Err(e)) => match server_said(said) {
            said if said.is_empty() => Err(e),
            said => Err(Error::new(e.kind(), format!("{}{said}", e.message()))),
        },
        Some(Ok(method)) => {
            tracing::info!(hop = %label, "authenticated ({method})");
            ui.stage(label, &Stage::Auth(method.clone()), started.elapsed());
            Ok(())
        }
    }
}

/// A server that can sign only with `ssh-rsa` (SHA-1) finds no common host key algorithm: say why, and
/// how to accept it, rather than report a bare negotiation failure.
pub(super) fn sha1_only(e: &russh::Error, label: &HopLabel) -> Option<Error> {
    let russh::Error::NoCommonAlgo {
        kind: russh::AlgorithmKind::Key,
        ours,
        theirs,
    } = e
    else {
        return None;
    };
    let sha1 = |n: &String| n == "ssh-rsa" || n == "ssh-rsa-cert-v01@openssh.com";
    if !theirs.iter().any(sha1) || ours.iter().any(sha1) {
        return None;
    }
    Some(Error::new(
        Kind::HostKey,
        format!(
            "{label}: the server signs its host key only with ssh-rsa (SHA-1; it offers {}), which sqltun refuses by default as OpenSSH 8.8+ does; give the server an Ed25519 or ECDSA host key or let it use rsa-sha2-256/512, or accept SHA-1 for this host with -o HostKeyAlgorithms=+ssh-rsa",
            // Sent before the host key is checked, by anyone: escaped and cut like all server text.
            crate::text::printable(&theirs.join(","))
        ),
    ))
}

/// `; the server said: "…"` when the server sent a disconnect message (escaped), else nothing.
fn server_said(said: &Mutex<Option<String>>) -> String {
    match said.lock().ok().and_then(|s| s.clone()) {
        Some(message) => format!("; the server said: \"{message}\""),
        None => String::new(),
    }
}

/// The handshake failure in words. The server's algorithm lists arrive before its host key is checked,
/// from anyone: they are escaped and cut like any other server text.
fn describe_handshake_error(e: &russh::Error) -> String {
    match e {
        russh::Error::NoCommonAlgo { kind, ours, theirs } => {
            format!(
                "no common {kind:?} algorithm (ours: {}; the server's: {})",
                ours.join(","),
                crate::text::printable(&theirs.join(","))
            )
        }
        russh::Error::Version => "the other side did not speak SSH (is this the SSH port?)".into(),
        russh::Error::HUP | russh::Error::Disconnect => {
            "the server closed the connection during the handshake (MaxStartups, a firewall, or a tcpwrapper?)".into()
        }
        other => crate::text::printable(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server limited to ssh-rsa gets an error that names the opt-in and counts as a host key refusal.
    #[test]
    fn sha1_only_server_is_a_host_key_refusal() {
        let label = HopLabel {
            index: 0,
            count: 1,
            address: "me@bastion:22".into(),
            name: String::new(),
        };
        let e = russh::Error::NoCommonAlgo {
            kind: russh::AlgorithmKind::Key,
            ours: vec!["ssh-ed25519".into(), "rsa-sha2-512".into()],
            theirs: vec!["ssh-rsa".into()],
        };
        let refused = sha1_only(&e, &label).expect("refused");
        assert_eq!(refused.kind(), Kind::HostKey);
        assert!(
            refused.message().contains("HostKeyAlgorithms=+ssh-rsa"),
            "{}",
            refused.message()
        );
    }
}
