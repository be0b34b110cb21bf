//! The russh client handler for one hop: host-key verification and banners.

use std::sync::{Arc, Mutex};

use russh::keys::PublicKeyOrCertificate;

use super::clock::PromptClock;
use super::interaction::{HopLabel, Interaction};
use super::pins::Pins;
use super::{hostkey, known_hosts};
use crate::error::Error;
use crate::plan::HostKeySettings;
use crate::text;

/// Handler for one hop's session. A rejected host key leaves its reason in `failure`, because russh
/// only sees `false` and reports a generic error.
pub struct Client {
    pub(crate) label: HopLabel,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) settings: HostKeySettings,
    pub(crate) interactive: bool,
    pub(crate) ui: Arc<dyn Interaction>,
    pub(crate) clock: Arc<PromptClock>,
    pub(crate) failure: Arc<Mutex<Option<Error>>>,
    /// The key the server offered, for reporting (set on every verification, accepted or not).
    pub(crate) offered: Arc<Mutex<Option<hostkey::Offered>>>,
    /// Keys accepted earlier in this process (reconnects must meet the same ones).
    pub(crate) pins: Arc<Pins>,
    /// This hop's known_hosts files, read once when it was dialled.
    pub(crate) known: Arc<hostkey::Loaded>,
    /// Whether the hop accepts SHA-1 RSA signatures (`HostKeyAlgorithms` names `ssh-rsa`).
    pub(crate) sha1_rsa: bool,
    /// The address the hop was reached at over TCP, for the host-key question.
    pub(crate) peer: Option<std::net::SocketAddr>,
    /// What the server said when it disconnected, escaped (for the error that follows).
    pub(crate) said: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let check = hostkey::HostKeyCheck {
            label: &self.label,
            host: &self.host,
            port: self.port,
            settings: &self.settings,
            interactive: self.interactive,
            ui: self.ui.as_ref(),
            clock: &self.clock,
            known: &self.known,
            sha1_rsa: self.sha1_rsa,
            peer: self.peer,
        };
        let key = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => russh::keys::PublicKey::new(cert.public_key().clone(), ""),
        };
        // A key that differs from the one this tunnel accepted before is refused before known_hosts is
        // even consulted, so a policy like accept-new can never record it.
        let name = check.lookup_name();
        let result = match self.pins.pinned(&name) {
            Some(pinned) if pinned.key_data() != key.key_data() => Err(crate::error::Error::new(
                crate::error::Kind::HostKey,
                format!(
                    "{}: the host key changed while the tunnel was up: it offered {} {}, but this tunnel accepted {} before; refusing to reconnect (this may be an attack)",
                    self.label,
                    key.algorithm(),
                    known_hosts::fingerprint(&key),
                    known_hosts::fingerprint(&pinned)
                ),
            )),
            _ => match offered {
                PublicKeyOrCertificate::PublicKey { key, .. } => check.verify(key).await,
                PublicKeyOrCertificate::Certificate(cert) => check.verify_certificate(cert).await,
            },
        };
        if result.is_ok() {
            self.pins.pin(&name, &key);
        }
        if let Ok(mut slot) = self.offered.lock() {
            *slot = Some(hostkey::Offered::of(&key, result.as_ref().ok().cloned()));
        }
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                if let Ok(mut slot) = self.failure.lock() {
                    *slot = Some(e);
                }
                Ok(false)
            }
        }
    }

    /// The login banner (sshd's `Banner`) is shown as OpenSSH shows it, line by line, but escaped: it
    /// arrives before authentication, from any server, and must not drive the terminal.
    async fn auth_banner(&mut self, banner: &str, _session: &mut russh::client::Session) -> Result<(), Self::Error> {
        let text = banner.trim_end();
        if !text.is_empty() {
            self.ui
                .notice(&self.label, &text::escaped_lines(text, text::BANNER_LIMIT));
        }
        Ok(())
    }

    /// A server's disconnect message is kept (escaped) so the error that follows can quote it.
    async fn disconnected(&mut self, reason: russh::client::DisconnectReason<Self::Error>) -> Result<(), Self::Error> {
        match reason {
            russh::client::DisconnectReason::ReceivedDisconnect(info) => {
                let message = text::printable(info.message.trim());
                tracing::debug!(hop = %self.label, "the server disconnected ({:?}): {message}", info.reason_code);
                if !message.is_empty()
                    && let Ok(mut said) = self.said.lock()
                {
                    *said = Some(message);
                }
                Ok(())
            }
            russh::client::DisconnectReason::Error(e) => Err(e),
        }
    }
}
