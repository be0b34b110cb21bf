//! SSH sessions: dialling each hop (hop n+1 over a direct-tcpip channel of hop n), verifying host keys,
//! authenticating, and opening the forward channels. Talks to people only through [`Interaction`].

mod auth;
mod certificate;
mod client;
mod dial;
pub mod hostkey;
pub mod keys;
pub mod known_hosts;
mod proxy;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::ChannelOpenFailure;
use russh::client::{Handle, Msg};

use crate::error::{Error, Kind, Result};
use crate::plan::{Hop, TunnelPlan};
use crate::secret::Secret;
use crate::target::Target;

pub use client::Client;

/// A forward channel to the target.
pub type Channel = russh::Channel<Msg>;

/// A question being put to a person: the answer, or [`crate::error::Kind::Interrupted`] on Ctrl-C.
pub type Asked<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;

/// What the SSH layer needs from a person (or from the absence of one).
pub trait Interaction: Send + Sync {
    /// A step of the connection is starting (`[1/2] deploy@host:22 authenticating (publickey)`).
    fn progress(&self, hop: &HopLabel, step: &str);
    /// A question answered with a line typed in view; only called when the plan is interactive.
    /// `Ok(None)` when there is no answer (no terminal, end of input).
    fn ask<'a>(&'a self, hop: &'a HopLabel, question: &'a str) -> Asked<'a, Option<String>>;
    /// Ask for a secret for `hop` (typed hidden); only called when the plan is interactive. `Ok(None)`
    /// if the person gave none. `prompt` is already safe to show (server text in it is escaped).
    fn secret<'a>(&'a self, hop: &'a HopLabel, prompt: &'a str) -> Asked<'a, Option<Secret>>;
    /// A line of the conversation with a person, between prompts (`Permission denied, please try
    /// again.`); shown as is, where the prompts are.
    fn tell(&self, hop: &HopLabel, text: &str) {
        tracing::info!(%hop, "{text}");
    }
    /// A banner or notice for stderr. Server text in it is already escaped (see `crate::text`).
    fn notice(&self, hop: &HopLabel, text: &str);
    /// A stage of connecting a hop finished (for `check`); `elapsed` is its own duration.
    fn stage(&self, hop: &HopLabel, stage: &Stage, elapsed: Duration) {
        tracing::debug!(%hop, ?stage, ?elapsed, "stage done");
    }
}

/// A completed stage of connecting one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// The byte stream to the hop exists: `TCP 198.18.0.2:22`, `channel through hop 1`, `ProxyCommand`.
    Transport(String),
    /// Key exchange (the host key check included) completed.
    KeyExchange,
    /// The host key the server offered and whether (how) it was accepted.
    HostKey(hostkey::Offered),
    /// Authentication succeeded with this method.
    Auth(String),
}

/// How messages name a hop: its position and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopLabel {
    pub index: usize,
    pub count: usize,
    pub address: String,
    pub name: String,
}

impl std::fmt::Display for HopLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.count > 1 {
            write!(f, "hop {}/{} {}", self.index + 1, self.count, self.address)?;
        } else {
            write!(f, "hop {}", self.address)?;
        }
        if !self.name.is_empty() && !self.address.contains(&self.name) {
            write!(f, " (\"{}\")", self.name)?;
        }
        Ok(())
    }
}

impl HopLabel {
    pub fn new(plan: &TunnelPlan, index: usize) -> Self {
        let hop = &plan.hops[index];
        HopLabel {
            index,
            count: plan.hops.len(),
            address: hop.address(),
            name: hop.name.clone(),
        }
    }
    /// `[1/2] user@host:port`, for progress lines.
    pub fn short(&self) -> String {
        format!("[{}/{}] {}", self.index + 1, self.count, self.address)
    }
}

/// Host keys accepted while this process runs, per lookup name: a reconnect must meet the same key,
/// whatever known_hosts says by then (a key accepted with StrictHostKeyChecking=no, or one whose
/// recording failed, is held to it too).
#[derive(Debug, Default)]
pub struct Pins(std::sync::Mutex<std::collections::HashMap<String, russh::keys::PublicKey>>);

impl Pins {
    /// The key this process accepted for `name` before, if any.
    pub fn pinned(&self, name: &str) -> Option<russh::keys::PublicKey> {
        self.0.lock().ok()?.get(name).cloned()
    }

    /// Remember `key` for `name` (the first accepted key stays).
    pub fn pin(&self, name: &str, key: &russh::keys::PublicKey) {
        if let Ok(mut pins) = self.0.lock() {
            pins.entry(name.to_string()).or_insert_with(|| key.clone());
        }
    }
}

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

/// Classify an error from russh during connection set-up into the user-facing taxonomy.
pub(crate) fn classify(e: &russh::Error) -> Kind {
    match e {
        russh::Error::IO(_) | russh::Error::ConnectionTimeout | russh::Error::HUP | russh::Error::Disconnect => {
            Kind::Unreachable
        }
        russh::Error::UnknownKey | russh::Error::KeyChanged { .. } | russh::Error::WrongServerSig => Kind::HostKey,
        russh::Error::NotAuthenticated | russh::Error::NoAuthMethod => Kind::Auth,
        russh::Error::NoCommonAlgo { .. } | russh::Error::Version | russh::Error::Kex | russh::Error::KexInit => {
            Kind::Unreachable
        }
        _ => Kind::Session,
    }
}

/// The SSH client configuration for one hop: sqltun's preferences, narrowed by any algorithm lists
/// the configuration names. An algorithm russh lacks is named in the error.
pub(crate) fn client_config(
    hop: &Hop,
    known_key_types: &[String],
    want_certificates: bool,
) -> Result<russh::client::Config> {
    use russh::{cipher, kex, mac};
    use std::borrow::Cow;

    // Host-key algorithms whose keys are already in known_hosts go first, as OpenSSH orders them, so a
    // host with several key types is verified against the one we know.
    // `ssh-rsa` (RSA with SHA-1 signatures) is left out unless the list names it, as OpenSSH 8.8+ does.
    let mut key: Vec<russh::keys::Algorithm> = match &hop.algorithms.host_key {
        None => russh::Preferred::DEFAULT
            .key
            .iter()
            .filter(|a| !is_sha1_rsa(a))
            .cloned()
            .collect(),
        Some(names) => {
            let plain: Vec<String> = names.iter().filter(|n| !n.ends_with(CERT_SUFFIX)).cloned().collect();
            // A list of certificate algorithms only is refused with all of them named.
            let plain = if plain.is_empty() { names.clone() } else { plain };
            pick("HostKeyAlgorithms", &plain, parse_host_key_algorithm)?
        }
    };
    // Certificate algorithms the list names (`X-cert-v01@openssh.com` is advertised for `X`).
    let listed_certificates: Option<Vec<russh::keys::Algorithm>> = hop.algorithms.host_key.as_ref().map(|names| {
        names
            .iter()
            .filter_map(|n| n.strip_suffix(CERT_SUFFIX))
            .filter_map(parse_host_key_algorithm)
            .collect()
    });
    let type_of = |a: &russh::keys::Algorithm| {
        if a.clone().is_rsa() {
            "ssh-rsa".to_string()
        } else {
            a.to_string()
        }
    };
    key.sort_by_key(|a| !known_key_types.contains(&type_of(a)));

    // AES-GCM first: with AES instructions it is about twice as fast as chacha20 here.
    let cipher: Vec<cipher::Name> = match &hop.algorithms.ciphers {
        None => vec![
            cipher::AES_256_GCM,
            cipher::AES_128_GCM,
            cipher::CHACHA20_POLY1305,
            cipher::AES_256_CTR,
            cipher::AES_192_CTR,
            cipher::AES_128_CTR,
        ],
        Some(names) => pick("Ciphers", names, |n| {
            cipher::Name::try_from(n)
                .ok()
                .filter(|c| *c != cipher::NONE && *c != cipher::CLEAR)
        })?,
    };
    let kex: Vec<kex::Name> = match &hop.algorithms.kex {
        None => russh::Preferred::DEFAULT.kex.to_vec(),
        Some(names) => {
            let mut chosen = pick("KexAlgorithms", names, |n| kex::Name::try_from(n).ok())?;
            // Protocol extension markers, not algorithms: keep them whatever the user lists.
            chosen.extend([
                kex::EXTENSION_SUPPORT_AS_CLIENT,
                kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
            ]);
            chosen
        }
    };
    let mac: Vec<mac::Name> = match &hop.algorithms.macs {
        None => russh::Preferred::DEFAULT.mac.to_vec(),
        Some(names) => pick("MACs", names, |n| {
            mac::Name::try_from(n).ok().filter(|m| *m != mac::NONE)
        })?,
    };
    let compression = if hop.algorithms.compression {
        Cow::Borrowed(
            &[
                russh::compression::ZLIB_LEGACY,
                russh::compression::ZLIB,
                russh::compression::NONE,
            ][..],
        )
    } else {
        Cow::Borrowed(&[russh::compression::NONE][..])
    };
    // Ask for host certificates only when a CA is trusted for this host: otherwise a server that has
    // one would present it and we could only fall back to its plain key.
    let host_key_certificates = if want_certificates {
        Cow::Owned(listed_certificates.unwrap_or_else(|| key.clone()))
    } else {
        Cow::Borrowed(&[][..])
    };
    let preferred = russh::Preferred {
        host_key_certificates,
        key: Cow::Owned(key),
        cipher: Cow::Owned(cipher),
        kex: Cow::Owned(kex),
        mac: Cow::Owned(mac),
        compression,
    };
    // russh re-keys every 1 GiB by default, and a re-key started while many channels have data in
    // flight can abort a busy session (Error::Pending). Use OpenSSH's default for 128-bit block
    // ciphers instead (2^32 blocks = 64 GiB, far from any nonce limit of AES-GCM, AES-CTR or
    // chacha20-poly1305), plus the hourly time limit; servers re-key on their own schedule too.
    let rekey_bytes = usize::try_from(64u64 << 30).unwrap_or(usize::MAX);
    let limits = russh::Limits {
        rekey_write_limit: rekey_bytes,
        rekey_read_limit: rekey_bytes,
        rekey_time_limit: std::time::Duration::from_secs(3600),
    };
    Ok(russh::client::Config {
        limits,
        client_id: russh::SshId::Standard(format!("SSH-2.0-sqltun_{}", env!("CARGO_PKG_VERSION")).into()),
        preferred,
        keepalive_interval: hop.keepalive_interval,
        keepalive_max: hop.keepalive_max as usize,
        nodelay: true,
        ..Default::default()
    })
}

/// How OpenSSH names the certificate variant of a host key algorithm.
const CERT_SUFFIX: &str = "-cert-v01@openssh.com";

fn parse_host_key_algorithm(name: &str) -> Option<russh::keys::Algorithm> {
    name.parse::<russh::keys::Algorithm>()
        .ok()
        .filter(|a| !matches!(a, russh::keys::Algorithm::Other(_)))
}

/// `ssh-rsa` as a signature algorithm: RSA with SHA-1.
fn is_sha1_rsa(algorithm: &russh::keys::Algorithm) -> bool {
    *algorithm == russh::keys::Algorithm::Rsa { hash: None }
}

/// Whether the hop opted in to SHA-1 RSA signatures (`HostKeyAlgorithms` naming `ssh-rsa`, e.g.
/// `-o HostKeyAlgorithms=+ssh-rsa`), for host keys, host certificates and their CA's signature.
pub(crate) fn allows_sha1_rsa(hop: &Hop) -> bool {
    hop.algorithms.host_key.as_ref().is_some_and(|names| {
        names
            .iter()
            .any(|n| n == "ssh-rsa" || n == "ssh-rsa-cert-v01@openssh.com")
    })
}

/// The names from a configured list that russh implements, in the user's order; an error naming the
/// ones it lacks when none is left.
fn pick<T>(directive: &str, names: &[String], known: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
    let mut chosen = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match known(name) {
            Some(t) => chosen.push(t),
            None => missing.push(name.as_str()),
        }
    }
    if !missing.is_empty() {
        tracing::warn!(
            "{directive}: not supported by sqltun's SSH library, skipped: {}",
            missing.join(",")
        );
    }
    if chosen.is_empty() {
        return Err(Error::usage(format!(
            "{directive} {}: none of these is supported by sqltun's SSH library; add a supported one",
            names.join(",")
        )));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use russh::keys::{Algorithm, HashAlg};

    /// The first hop of `sqltun connect --ssh bastion --db db:5432 ARGS`, resolved without any config file.
    fn hop(extra: &[&str]) -> Hop {
        let mut argv = vec!["sqltun", "connect", "-F", "none", "--ssh", "bastion", "--db", "db:5432"];
        argv.extend_from_slice(extra);
        let Ok(Command::Connect(args)) = Cli::try_parse_from(argv).map(|c| c.command) else {
            panic!("not a connect command line");
        };
        let env = crate::resolve::env::FakeEnv {
            home: Some("/home/me".into()),
            user: "me".into(),
            ..Default::default()
        };
        let plan = crate::resolve::plan(&args.tunnel(), &env).expect("plan");
        plan.hops[0].clone()
    }

    const SHA1_RSA: Algorithm = Algorithm::Rsa { hash: None };

    /// SHA-1 RSA host key signatures are forgeable in principle (chosen-prefix collisions) and OpenSSH
    /// 8.8+ no longer offers them: neither may sqltun unless asked, for plain keys nor certificates.
    #[test]
    fn ssh_rsa_is_not_offered_by_default() {
        let hop = hop(&[]);
        assert!(!allows_sha1_rsa(&hop));
        let config = client_config(&hop, &[], true).expect("config");
        assert!(!config.preferred.key.contains(&SHA1_RSA), "{:?}", config.preferred.key);
        assert!(!config.preferred.host_key_certificates.contains(&SHA1_RSA));
        assert!(config.preferred.key.contains(&Algorithm::Rsa {
            hash: Some(HashAlg::Sha512)
        }));
    }

    /// `-o HostKeyAlgorithms=+ssh-rsa` is the documented opt-in: it adds ssh-rsa after the defaults, and
    /// the certificate names the assembled list carries are not mistaken for unsupported algorithms.
    #[test]
    fn plus_ssh_rsa_opts_in() {
        let hop = hop(&["-o", "HostKeyAlgorithms=+ssh-rsa"]);
        assert!(allows_sha1_rsa(&hop));
        let config = client_config(&hop, &[], true).expect("config");
        assert_eq!(
            config.preferred.key.last(),
            Some(&SHA1_RSA),
            "{:?}",
            config.preferred.key
        );
        assert!(config.preferred.host_key_certificates.contains(&Algorithm::Ed25519));
        assert!(!config.preferred.host_key_certificates.contains(&SHA1_RSA));
    }

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
        let refused = dial::sha1_only(&e, &label).expect("refused");
        assert_eq!(refused.kind(), Kind::HostKey);
        assert!(
            refused.message().contains("HostKeyAlgorithms=+ssh-rsa"),
            "{}",
            refused.message()
        );
    }
}
