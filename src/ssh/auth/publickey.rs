//! publickey: agent keys, identity files and the certificates beside them, in OpenSSH's order.

use std::path::Path;
use std::sync::Arc;

use russh::MethodKind;
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey};
use tokio::net::UnixStream;

use super::{Attempt, selects_agent_key};
use crate::error::{Error, Kind, Result};
use crate::plan::{AgentSource, Lazy};
use crate::ssh::certificate;
use crate::ssh::keys::{self, KeyError};

impl Attempt<'_> {
    pub(super) async fn try_agent(&mut self) -> Result<Option<String>> {
        let Some((mut agent, identities)) = self.agent_identities().await else {
            return Ok(None);
        };
        let only = self.identities_only_keys();
        let mut count = 0;
        for identity in identities {
            let key = identity.public_key().into_owned();
            let wanted = only
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.key_data() == key.key_data()));
            if !wanted || !self.allows(MethodKind::PublicKey) {
                continue;
            }
            let comment = identity.comment().to_string();
            if self.agent_certificate_outside_window(&identity, &comment) {
                continue;
            }
            self.ui
                .progress(self.label, &format!("authenticating (publickey, agent key {comment})"));
            let hash = if key.algorithm().is_rsa() {
                self.rsa_hash().await
            } else {
                None
            };
            count += 1;
            self.offered.push(key.clone());
            // A certificate held by the agent is presented as the certificate (a company CA trusts it).
            let attempt = match identity {
                russh::keys::agent::AgentIdentity::Certificate { certificate, .. } => {
                    self.handle
                        .authenticate_certificate_with(self.hop.user.clone(), certificate, hash, &mut agent)
                        .await
                }
                russh::keys::agent::AgentIdentity::PublicKey { .. } => {
                    self.handle
                        .authenticate_publickey_with(self.hop.user.clone(), key, hash, &mut agent)
                        .await
                }
            };
            match attempt {
                Ok(result) => {
                    if self.note(result) {
                        return Ok(Some(format!("publickey, agent key {comment}")));
                    }
                }
                Err(e) => tracing::info!(hop = %self.label, "agent key {comment}: {e:?}"),
            }
        }
        if count > 0 {
            self.tried.push(format!(
                "publickey: agent, {count} key{}",
                if count == 1 { "" } else { "s" }
            ));
        }
        Ok(None)
    }

    /// The agent and the keys it holds; `None` (with a note in the log) when it cannot be used.
    async fn agent_identities(&self) -> Option<(AgentClient<UnixStream>, Vec<AgentIdentity>)> {
        let AgentSource::Socket(path) = &self.hop.auth.agent else {
            return None;
        };
        let mut agent = match AgentClient::connect_uds(path).await {
            Ok(agent) => agent,
            Err(e) => {
                tracing::info!(hop = %self.label, "agent at {} not usable: {e}", path.display());
                return None;
            }
        };
        match agent.request_identities().await {
            Ok(ids) => Some((agent, ids)),
            Err(e) => {
                tracing::info!(hop = %self.label, "agent at {} did not list its keys: {e}", path.display());
                None
            }
        }
    }

    /// An agent certificate past its window (renewed on disk, not yet in the agent) is named and
    /// skipped, as one from a file: the server would refuse it anyway.
    fn agent_certificate_outside_window(&mut self, identity: &AgentIdentity, comment: &str) -> bool {
        if let AgentIdentity::Certificate { certificate, .. } = identity
            && let Some(why) = certificate::outside_window_now(certificate.valid_after(), certificate.valid_before())
        {
            tracing::warn!("{}: agent certificate {comment} {why}; not offered", self.label);
            self.tried.push(format!(
                "agent certificate {comment}: not offered (outside its validity window)"
            ));
            return true;
        }
        false
    }

    pub(super) async fn try_identity_files(&mut self) -> Result<Option<String>> {
        let paths = self.hop.auth.identities.clone();
        for path in &paths {
            if !self.allows(MethodKind::PublicKey) {
                break;
            }
            if !path.exists() {
                if self.hop.auth.identities_explicit {
                    self.ui.notice(
                        self.label,
                        &format!("identity file {} not found; skipped", path.display()),
                    );
                    self.tried.push(format!("{}: not found", path.display()));
                }
                continue;
            }
            if let Some(public) = keys::public_key_for(path)
                && self.offered.iter().any(|k| k.key_data() == public.key_data())
            {
                if let Some(method) = self.try_certificates_in_agent(path, &public).await? {
                    return Ok(Some(method));
                }
                continue;
            }
            let Some(key) = self.load_key(path).await? else {
                continue;
            };
            self.offered.push(key.public_key().clone());
            let key = Arc::new(key);
            let mut signer = keys::KeySigner(key.clone());
            if let Some(method) = self.try_certificates(path, key.public_key(), &mut signer, &[]).await? {
                return Ok(Some(method));
            }
            self.ui
                .progress(self.label, &format!("authenticating (publickey, {})", path.display()));
            let hash = if key.algorithm().is_rsa() {
                self.rsa_hash().await
            } else {
                None
            };
            let result = self
                .handle
                .authenticate_publickey(self.hop.user.clone(), PrivateKeyWithHashAlg::new(key, hash))
                .await
                .map_err(|e| self.session_error(e))?;
            self.tried.push(format!("publickey: {}", path.display()));
            if self.note(result) {
                return Ok(Some(format!("publickey, {}", path.display())));
            }
        }
        Ok(None)
    }

    /// The certificates of an identity whose key the agent holds (and so already offered): a certificate
    /// renewed on disk after the key went into the agent is offered with the agent signing, as OpenSSH
    /// does, so renewal works without `ssh-add` again. Certificates the agent holds itself were offered
    /// with the agent's keys and are not offered twice.
    async fn try_certificates_in_agent(&mut self, identity: &Path, key: &PublicKey) -> Result<Option<String>> {
        let AgentSource::Socket(socket) = &self.hop.auth.agent else {
            return Ok(None);
        };
        let Ok(mut agent) = AgentClient::connect_uds(socket).await else {
            return Ok(None);
        };
        let Ok(held) = agent.request_identities().await else {
            return Ok(None);
        };
        if !held.iter().any(|i| i.public_key().key_data() == key.key_data()) {
            return Ok(None);
        }
        let in_agent: Vec<russh::keys::Certificate> = held
            .into_iter()
            .filter_map(|i| match i {
                russh::keys::agent::AgentIdentity::Certificate { certificate, .. } => Some(certificate),
                russh::keys::agent::AgentIdentity::PublicKey { .. } => None,
            })
            .collect();
        let mut signer = keys::AgentKeySigner {
            agent: &mut agent,
            key: key.clone(),
        };
        self.try_certificates(identity, key, &mut signer, &in_agent).await
    }

    /// Load an identity, asking for its passphrase if needed. `None` means skipped (with a note).
    /// Like OpenSSH, a person gets NumberOfPasswordPrompts tries at a passphrase; after that, or an
    /// empty answer, the key is skipped and authentication goes on with the next key or method.
    async fn load_key(&mut self, path: &Path) -> Result<Option<russh::keys::PrivateKey>> {
        // A passphrase the plan holds is tried at once; a command for one runs only for a key that
        // turns out to be encrypted.
        let mut passphrase = match &self.hop.auth.passphrase {
            Some(Lazy::Ready(secret)) => Some(secret.clone()),
            _ => None,
        };
        let mut from_plan = passphrase.is_some();
        let mut prompts = 0;
        loop {
            match keys::load_identity(path, passphrase.as_ref()) {
                Ok(key) => return Ok(Some(key)),
                Err(KeyError::NeedsPassphrase { .. })
                    if !from_plan && matches!(self.hop.auth.passphrase, Some(Lazy::Command(_))) =>
                {
                    passphrase = self.plan_passphrase().await?;
                    from_plan = true;
                }
                Err(KeyError::NeedsPassphrase { .. }) if !self.interactive => {
                    return Err(Error::usage(format!(
                        "{}: {} is encrypted and no passphrase is available: set SQLTUN_SSH_PASSPHRASE or --passphrase-file (no terminal to ask)",
                        self.label,
                        path.display(),
                    )));
                }
                Err(KeyError::WrongPassphrase) if from_plan && prompts == 0 => {
                    // A wrong passphrase from the environment is reported, not papered over by a prompt.
                    return Err(Error::new(
                        Kind::Auth,
                        format!(
                            "{}: wrong passphrase for {} (from {})",
                            self.label,
                            path.display(),
                            self.hop
                                .auth
                                .passphrase_source
                                .as_deref()
                                .unwrap_or("SQLTUN_SSH_PASSPHRASE")
                        ),
                    ));
                }
                Err(KeyError::WrongPassphrase) if !self.interactive => {
                    return Err(Error::new(
                        Kind::Auth,
                        format!("{}: wrong passphrase for {}", self.label, path.display()),
                    ));
                }
                Err(KeyError::WrongPassphrase) if prompts >= self.hop.auth.password_prompts => {
                    self.tried.push(format!("{}: wrong passphrase", path.display()));
                    return Ok(None);
                }
                Err(KeyError::NeedsPassphrase { .. }) | Err(KeyError::WrongPassphrase) => {
                    if prompts >= self.hop.auth.password_prompts {
                        self.tried.push(format!("{}: no passphrase given", path.display()));
                        return Ok(None);
                    }
                    prompts += 1;
                    let prompt = format!("Enter passphrase for key '{}': ", path.display());
                    match self.clock.during(self.ui.secret(self.label, &prompt)).await? {
                        Some(p) if !p.expose().is_empty() => passphrase = Some(p),
                        _ => {
                            self.tried.push(format!("{}: no passphrase given", path.display()));
                            return Ok(None);
                        }
                    }
                }
                Err(e @ KeyError::TooOpen { .. }) => {
                    let why = e.describe(path);
                    self.ui.notice(self.label, &why);
                    self.tried
                        .push(format!("{}: ignored (permissions too open)", path.display()));
                    return Ok(None);
                }
                Err(e) if selects_agent_key(self.hop, &e) => {
                    // Only selects an agent key; the agent attempt above already used it.
                    return Ok(None);
                }
                Err(e) => {
                    let why = e.describe(path);
                    if self.hop.auth.identities_explicit {
                        return Err(Error::usage(format!("{}: {why}", self.label)));
                    }
                    self.ui.notice(self.label, &format!("{why}; skipped"));
                    return Ok(None);
                }
            }
        }
    }

    /// OpenSSH certificates for this identity: CertificateFile entries and `IDENTITY-cert.pub` whose
    /// public key is the identity's, offered before the plain key as OpenSSH does. They are read from
    /// disk on every connection (reconnects included), so a certificate renewed while the tunnel runs
    /// is the one offered next; one outside its validity window is named with it and not offered.
    /// `signer` holds the private key: the identity file's key, or the agent (see
    /// [`Attempt::try_certificates_in_agent`]). Certificates in `already` were offered before and are skipped.
    async fn try_certificates<S>(
        &mut self,
        identity: &Path,
        key: &PublicKey,
        signer: &mut S,
        already: &[russh::keys::Certificate],
    ) -> Result<Option<String>>
    where
        S: russh::Signer<Error = russh::AgentAuthError> + Send,
    {
        let mut candidates = self.hop.auth.certificates.clone();
        let mut beside = identity.as_os_str().to_owned();
        beside.push("-cert.pub");
        candidates.push(beside.into());
        for cert_path in candidates {
            if !cert_path.exists() || !self.allows(MethodKind::PublicKey) {
                continue;
            }
            let cert = match russh::keys::load_openssh_certificate(&cert_path) {
                Ok(cert) => cert,
                Err(e) => {
                    self.ui.notice(
                        self.label,
                        &format!("certificate {} cannot be read ({e}); skipped", cert_path.display()),
                    );
                    continue;
                }
            };
            if cert.public_key() != key.key_data() || already.contains(&cert) {
                continue;
            }
            if let Some(why) = certificate::outside_window_now(cert.valid_after(), cert.valid_before()) {
                tracing::warn!("{}: certificate {} {why}; not offered", self.label, cert_path.display());
                self.tried.push(format!(
                    "certificate {}: not offered (outside its validity window)",
                    cert_path.display()
                ));
                continue;
            }
            self.ui.progress(
                self.label,
                &format!("authenticating (publickey, certificate {})", cert_path.display()),
            );
            let hash = if key.algorithm().is_rsa() {
                self.rsa_hash().await
            } else {
                None
            };
            let result = match self
                .handle
                .authenticate_certificate_with(self.hop.user.clone(), cert, hash, signer)
                .await
            {
                Ok(result) => result,
                Err(russh::AgentAuthError::Send(_)) => return Err(self.session_error(russh::Error::SendError)),
                Err(e) => {
                    tracing::info!(hop = %self.label, "certificate {}: {e}", cert_path.display());
                    continue;
                }
            };
            self.tried.push(format!("certificate: {}", cert_path.display()));
            if self.note(result) {
                return Ok(Some(format!("publickey, certificate {}", cert_path.display())));
            }
        }
        Ok(None)
    }
}
