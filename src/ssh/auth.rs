//! Authentication on one hop, in OpenSSH's order: agent keys, identity files, then password.
//! Secrets come from the plan (environment or files) or, when a person is there, a prompt.

use std::path::Path;
use std::sync::Arc;

use russh::MethodKind;
use russh::client::{AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};

use super::certificate;
use super::client::Client;
use super::clock::PromptClock;
use super::interaction::{HopLabel, Interaction};
use super::keys::{self, KeyError};
use super::kind::classify;
use crate::error::{Error, Kind, Result};
use crate::plan::{AgentSource, Hop};
use crate::secret::Secret;
use crate::text;

struct Attempt<'a> {
    handle: &'a mut Handle<Client>,
    hop: &'a Hop,
    label: &'a HopLabel,
    interactive: bool,
    ui: &'a dyn Interaction,
    clock: &'a PromptClock,
    /// What was tried, for the final error message.
    tried: Vec<String>,
    /// Keys already offered (agent and files), so none is offered twice.
    offered: Vec<PublicKey>,
    /// Methods the server says can continue; `None` until it has told us.
    allowed: Option<Vec<MethodKind>>,
    rsa_hash: Option<Option<HashAlg>>,
    /// A person answered a keyboard-interactive question (a refusal then earns another try).
    asked_person: bool,
    /// Partial successes so far (multi-step authentication).
    partials: u32,
    /// A one-time code was sent (a refusal then points at the TOTP secret).
    used_totp: bool,
    /// keyboard-interactive requests the server sent, prompts answered without a person, and one-time
    /// codes sent on this connection: all bounded.
    kbd_rounds: u32,
    automatic_answers: u32,
    codes_sent: u32,
}

/// keyboard-interactive requests one hop may send: PAM conversations take one to three (a password, a
/// code, a notice), so a server that keeps asking is cut off rather than answered forever.
const MAX_KBD_ROUNDS: u32 = 6;
/// Prompts in one keyboard-interactive request.
const MAX_PROMPTS_PER_REQUEST: usize = 8;
/// Prompts one hop gets answered without a person (from the password and the TOTP secret), over all
/// rounds: enough for a password and a code, twice.
const MAX_AUTOMATIC_ANSWERS: u32 = 4;

/// Check the identity files the user named, before any dialling: a damaged or unsupported key, or an
/// encrypted one whose passphrase cannot be had (no variable, no file, no terminal, no agent that might
/// hold it), is a usage error now rather than a surprise after the network round trips. Missing files
/// and keys with loose permissions are left to authentication, which skips them with a note, as
/// OpenSSH does.
pub(crate) fn check_identities(hop: &Hop, label: &HopLabel, interactive: bool) -> Result<()> {
    if !hop.auth.identities_explicit || !hop.auth.pubkey {
        return Ok(());
    }
    for path in &hop.auth.identities {
        match keys::load_identity(path, None) {
            Ok(_) | Err(KeyError::NotFound) | Err(KeyError::TooOpen { .. }) => {}
            // `IdentityFile key.pub` selects which agent key to offer (with IdentitiesOnly), as in OpenSSH.
            Err(e) if selects_agent_key(hop, &e) => {}
            Err(KeyError::NeedsPassphrase { .. }) => {
                let agent = matches!(hop.auth.agent, AgentSource::Socket(_));
                if hop.auth.passphrase.is_none() && !interactive && !agent {
                    return Err(Error::usage(format!(
                        "{label}: {} is encrypted and no passphrase is available: set SQLTUN_SSH_PASSPHRASE (or SQLTUN_SSH_PASSPHRASE_{}) or --passphrase-file (no terminal to ask)",
                        path.display(),
                        label.index + 1
                    )));
                }
            }
            Err(e) => return Err(Error::usage(format!("{label}: {}", e.describe(path)))),
        }
    }
    Ok(())
}

/// `IdentityFile key.pub` with an agent selects which agent key to offer (IdentitiesOnly), as in
/// OpenSSH: a public key there is not an error.
fn selects_agent_key(hop: &Hop, error: &KeyError) -> bool {
    matches!(
        error,
        KeyError::Unsupported {
            format: keys::KeyFormat::PublicKey
        }
    ) && matches!(hop.auth.agent, AgentSource::Socket(_))
}

/// Authenticate as `hop.user`; returns the method that succeeded, for progress and `check`.
pub(crate) async fn authenticate(
    handle: &mut Handle<Client>,
    hop: &Hop,
    label: &HopLabel,
    interactive: bool,
    ui: &dyn Interaction,
    clock: &PromptClock,
) -> Result<String> {
    let mut a = Attempt {
        handle,
        hop,
        label,
        interactive,
        ui,
        clock,
        tried: Vec::new(),
        offered: Vec::new(),
        allowed: None,
        rsa_hash: None,
        asked_person: false,
        partials: 0,
        used_totp: false,
        kbd_rounds: 0,
        automatic_answers: 0,
        codes_sent: 0,
    };
    ui.progress(label, "authenticating");
    // "none" first, as OpenSSH does: it tells which methods the server accepts.
    match a
        .handle
        .authenticate_none(hop.user.clone())
        .await
        .map_err(|e| a.session_error(e))?
    {
        AuthResult::Success => return Ok("none".into()),
        AuthResult::Failure { remaining_methods, .. } => a.allowed = Some(remaining_methods.iter().copied().collect()),
    }
    // OpenSSH's order (its gssapi and hostbased methods are not offered), or PreferredAuthentications.
    let order: Vec<String> = hop
        .auth
        .preferred
        .clone()
        .unwrap_or_else(|| vec!["publickey".into(), "keyboard-interactive".into(), "password".into()]);
    // Multi-step servers (AuthenticationMethods a,b) answer "partial success": start over in the
    // preferred order with what they still want, a bounded number of times.
    for _round in 0..4 {
        let partials = a.partials;
        let found = a.one_round(&order).await?;
        if let Some(m) = found {
            return Ok(m);
        }
        if a.partials == partials {
            break;
        }
    }
    Err(a.failure())
}

impl Attempt<'_> {
    /// Try each method once in `order`; stops early after a partial success.
    async fn one_round(&mut self, order: &[String]) -> Result<Option<String>> {
        let hop = self.hop;
        let a = self;
        let partials = a.partials;
        for method in order {
            let found = match method.as_str() {
                "publickey" if hop.auth.pubkey && a.allows(MethodKind::PublicKey) => match a.try_agent().await? {
                    Some(m) => Some(m),
                    None => a.try_identity_files().await?,
                },
                "keyboard-interactive"
                    if hop.auth.keyboard_interactive && a.allows(MethodKind::KeyboardInteractive) =>
                {
                    a.try_keyboard_interactive().await?
                }
                "password" if hop.auth.password && a.allows(MethodKind::Password) => a.try_password().await?,
                _ => None,
            };
            if let Some(m) = found {
                return Ok(Some(m));
            }
            if a.partials != partials {
                return Ok(None);
            }
        }
        Ok(None)
    }

    fn allows(&self, method: MethodKind) -> bool {
        self.allowed.as_ref().is_none_or(|m| m.contains(&method))
    }

    fn session_error(&self, e: russh::Error) -> Error {
        Error::new(
            classify(&e),
            format!(
                "{}: the session ended during authentication: {}",
                self.label,
                text::printable(&e.to_string())
            ),
        )
    }

    fn failure(&self) -> Error {
        let tried = if self.tried.is_empty() {
            "nothing the server accepts".to_string()
        } else {
            self.tried.join("; ")
        };
        let accepts = self
            .allowed
            .as_ref()
            .map(|m| {
                m.iter()
                    .map(|k| <&str>::from(k).to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let mut hints = Vec::new();
        if self.handle.is_closed() || accepts.is_empty() {
            hints.push(
                "the server closed the connection, probably after too many attempts (its MaxAuthTries): with many keys in the agent, set IdentityFile and IdentitiesOnly yes for this host"
                    .to_string(),
            );
        }
        if self.hop.auth.agent == AgentSource::None {
            hints.push("no agent was used (SSH_AUTH_SOCK unset, or IdentityAgent none)".into());
        }
        if self.used_totp {
            let from = self
                .hop
                .auth
                .totp
                .as_ref()
                .map_or("SQLTUN_TOTP_SECRET", |(_, from)| from.as_str());
            hints.push(format!(
                "the one-time code from {from} was refused: check the secret and this machine's clock"
            ));
        }
        if hints.is_empty() {
            let variable = if self.label.index + 1 == self.label.count {
                "SQLTUN_SSH_PASSWORD".to_string()
            } else {
                format!("SQLTUN_SSH_PASSWORD_{}", self.label.index + 1)
            };
            hints.push(format!(
                "check the user name ({}), -i, the agent, or {variable}",
                self.hop.user
            ));
        }
        let accepts = if accepts.is_empty() {
            "nothing more".to_string()
        } else {
            accepts
        };
        Error::new(
            Kind::Auth,
            format!(
                "{}: authentication failed (tried {tried}); the server accepts: {accepts}; {}",
                self.label,
                hints.join("; ")
            ),
        )
    }

    /// Record the server's answer; `true` on success.
    fn note(&mut self, result: AuthResult) -> bool {
        match result {
            AuthResult::Success => true,
            AuthResult::Failure {
                remaining_methods,
                partial_success,
            } => {
                if partial_success {
                    tracing::info!(hop = %self.label, "partial success; the server wants more");
                    self.partials += 1;
                }
                self.allowed = Some(remaining_methods.iter().copied().collect());
                false
            }
        }
    }

    async fn rsa_hash(&mut self) -> Option<HashAlg> {
        if self.rsa_hash.is_none() {
            // Servers that announce no sig algs (very old ones) get SHA-512 as OpenSSH tries first.
            let best = self
                .handle
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .unwrap_or(Some(HashAlg::Sha512));
            self.rsa_hash = Some(best);
        }
        self.rsa_hash.flatten()
    }

    /// With IdentitiesOnly, the public halves of the configured identities (read once): only agent keys
    /// among them are offered. `None` offers every agent key.
    fn identities_only_keys(&self) -> Option<Vec<PublicKey>> {
        self.hop.auth.identities_only.then(|| {
            self.hop
                .auth
                .identities
                .iter()
                .filter_map(|p| keys::public_key_for(p))
                .collect()
        })
    }

    async fn try_agent(&mut self) -> Result<Option<String>> {
        let AgentSource::Socket(path) = &self.hop.auth.agent else {
            return Ok(None);
        };
        let mut agent = match AgentClient::connect_uds(path).await {
            Ok(agent) => agent,
            Err(e) => {
                tracing::info!(hop = %self.label, "agent at {} not usable: {e}", path.display());
                return Ok(None);
            }
        };
        let identities = match agent.request_identities().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::info!(hop = %self.label, "agent at {} did not list its keys: {e}", path.display());
                return Ok(None);
            }
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
            // An agent certificate past its window (renewed on disk, not yet in the agent) is named and
            // skipped, as one from a file: the server would refuse it anyway.
            if let russh::keys::agent::AgentIdentity::Certificate { certificate, .. } = &identity
                && let Some(why) =
                    certificate::outside_window_now(certificate.valid_after(), certificate.valid_before())
            {
                tracing::warn!("{}: agent certificate {comment} {why}; not offered", self.label);
                self.tried.push(format!(
                    "agent certificate {comment}: not offered (outside its validity window)"
                ));
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

    async fn try_identity_files(&mut self) -> Result<Option<String>> {
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
        let mut passphrase = self.hop.auth.passphrase.clone();
        let from_plan = passphrase.is_some();
        let mut prompts = 0;
        loop {
            match keys::load_identity(path, passphrase.as_ref()) {
                Ok(key) => return Ok(Some(key)),
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

    /// keyboard-interactive: password-like prompts are answered with the password and code prompts with
    /// a one-time code; anything else needs a person, and without one fails at once, quoting the prompt.
    /// Every text of the server is escaped before it is shown, and how much is answered without a person
    /// is bounded (see [`MAX_KBD_ROUNDS`], [`MAX_AUTOMATIC_ANSWERS`]).
    async fn try_keyboard_interactive(&mut self) -> Result<Option<String>> {
        // As OpenSSH: a person whose answers were refused is asked again, NumberOfPasswordPrompts
        // times in all; answers that came without a person are sent once.
        let attempts = self.hop.auth.password_prompts.max(1);
        for attempt in 0..attempts {
            if attempt > 0 {
                // OpenSSH says nothing between keyboard-interactive tries: the server's prompt returns.
                if !self.asked_person || !self.allows(MethodKind::KeyboardInteractive) || self.handle.is_closed() {
                    break;
                }
            }
            self.asked_person = false;
            if let Some(method) = self.kbd_conversation().await? {
                return Ok(Some(method));
            }
        }
        Ok(None)
    }

    /// One keyboard-interactive exchange, to the server's verdict.
    async fn kbd_conversation(&mut self) -> Result<Option<String>> {
        use russh::client::KeyboardInteractiveAuthResponse as Reply;
        let mut reply = self
            .handle
            .authenticate_keyboard_interactive_start(self.hop.user.clone(), None::<String>)
            .await
            .map_err(|e| self.session_error(e))?;
        loop {
            match reply {
                Reply::Success => return Ok(Some("keyboard-interactive".into())),
                Reply::Failure {
                    remaining_methods,
                    partial_success,
                } => {
                    self.note(AuthResult::Failure {
                        remaining_methods,
                        partial_success,
                    });
                    self.tried.push("keyboard-interactive: refused".into());
                    return Ok(None);
                }
                Reply::InfoRequest {
                    name,
                    instructions,
                    prompts,
                } => {
                    self.kbd_rounds += 1;
                    if self.kbd_rounds > MAX_KBD_ROUNDS || prompts.len() > MAX_PROMPTS_PER_REQUEST {
                        return Err(self.kbd_overrun(prompts.len()));
                    }
                    for text in [name.trim(), instructions.trim()] {
                        if !text.is_empty() {
                            self.ui
                                .notice(self.label, &text::escaped_lines(text, text::BANNER_LIMIT));
                        }
                    }
                    let mut answers = zeroize::Zeroizing::new(Vec::with_capacity(prompts.len()));
                    for prompt in &prompts {
                        match self.answer_prompt(prompt).await? {
                            Some(answer) => answers.push(answer),
                            None => return Ok(None),
                        }
                    }
                    self.ui.progress(self.label, "authenticating (keyboard-interactive)");
                    reply = self
                        .handle
                        .authenticate_keyboard_interactive_respond(std::mem::take(&mut *answers))
                        .await
                        .map_err(|e| self.session_error(e))?;
                }
            }
        }
    }

    /// The error for a server that keeps asking: too many rounds, or too many prompts in one.
    fn kbd_overrun(&self, prompts: usize) -> Error {
        let what = if prompts > MAX_PROMPTS_PER_REQUEST {
            format!(
                "{prompts} questions in one keyboard-interactive request (sqltun answers at most {MAX_PROMPTS_PER_REQUEST})"
            )
        } else {
            format!("keyboard-interactive questions for more than {MAX_KBD_ROUNDS} rounds")
        };
        Error::new(
            Kind::Auth,
            format!(
                "{}: authentication stopped: the server asked {what}; a login conversation that long is not answered, check the server's PAM configuration",
                self.label
            ),
        )
    }

    /// Count one answer given without a person; past the bound, the error that stops authentication.
    fn automatic_answer(&mut self, quoted: &str) -> Result<()> {
        self.automatic_answers += 1;
        if self.automatic_answers > MAX_AUTOMATIC_ANSWERS {
            return Err(Error::new(
                Kind::Auth,
                format!(
                    "{}: authentication stopped: the server asks \"{quoted}\" after sqltun already answered {MAX_AUTOMATIC_ANSWERS} prompts on its own; run sqltun from a terminal if this server really asks that much",
                    self.label
                ),
            ));
        }
        Ok(())
    }

    /// The answer to one prompt; `None` when nobody can answer it (authentication goes on without
    /// keyboard-interactive).
    async fn answer_prompt(&mut self, prompt: &russh::client::Prompt) -> Result<Option<String>> {
        let raw = prompt.prompt.trim();
        let quoted = text::printable(raw);
        let lower = raw.to_lowercase();
        let asks_code = [
            "verification code",
            "one-time",
            "one time",
            "otp",
            "token",
            "2fa",
            "authenticator",
            "code:",
        ]
        .iter()
        .any(|w| lower.contains(w));
        if asks_code && let Some((totp, from)) = &self.hop.auth.totp {
            self.automatic_answer(&quoted)?;
            let hop = format!("{}#{}", self.label.index, self.label.address);
            loop {
                match totp.issue(&hop, self.codes_sent == 0) {
                    crate::totp::Issue::Code(code) => {
                        tracing::info!(hop = %self.label, "answering \"{quoted}\" with a one-time code from {from}");
                        self.codes_sent += 1;
                        self.used_totp = true;
                        return Ok(Some(code));
                    }
                    crate::totp::Issue::WaitFor(wait) => {
                        self.ui.progress(
                            self.label,
                            &format!("waiting {}s for the next one-time code", wait.as_secs()),
                        );
                        self.clock.pause(wait).await;
                    }
                    crate::totp::Issue::Refused(why) => {
                        return Err(Error::new(
                            Kind::Auth,
                            format!(
                                "{}: the server asks \"{quoted}\" again and no one-time code was sent: {why}",
                                self.label
                            ),
                        ));
                    }
                }
            }
        }
        let password_like = !prompt.echo && lower.contains("password");
        if password_like && let Some(p) = &self.hop.auth.password_secret {
            let p = p.clone();
            self.automatic_answer(&quoted)?;
            return Ok(Some(p.expose().to_string()));
        }
        if self.interactive {
            // The server's own question, escaped, after `(user@host)` as OpenSSH shows it.
            let question = format!("({}@{}) {quoted} ", text::printable(&self.hop.user), self.hop.host);
            self.asked_person = true;
            return Ok(self
                .clock
                .during(self.ui.secret(self.label, &question))
                .await?
                .map(|answer| answer.expose().to_string()));
        }
        if password_like {
            return match self.password().await? {
                Some(p) => Ok(Some(p.expose().to_string())),
                None => {
                    self.tried
                        .push("keyboard-interactive: no password to answer with".into());
                    Ok(None)
                }
            };
        }
        let hint = if asks_code {
            let n = self.label.index + 1;
            if self.label.index + 1 == self.label.count {
                format!(
                    "set SQLTUN_TOTP_SECRET (or SQLTUN_TOTP_SECRET_{n}) or --totp-secret-file to the base32 secret, or run sqltun from a terminal"
                )
            } else {
                format!(
                    "set SQLTUN_TOTP_SECRET_{n} to the base32 secret (SQLTUN_TOTP_SECRET and --totp-secret-file go to the destination only), or run sqltun from a terminal"
                )
            }
        } else {
            "run sqltun from a terminal, or use a key or password for this hop".to_string()
        };
        Err(Error::new(
            Kind::Auth,
            format!(
                "{}: the server asks \"{quoted}\" (keyboard-interactive) and there is no terminal to answer it; {hint}",
                self.label
            ),
        ))
    }

    /// The hop's password: from the plan, one already typed, or a prompt. `Ok(None)` when there is none
    /// and keys were already tried (the failure is then an authentication failure, not a usage error).
    async fn password(&mut self) -> Result<Option<Secret>> {
        if let Some(p) = &self.hop.auth.password_secret {
            return Ok(Some(p.clone()));
        }
        if self.interactive {
            let prompt = format!("{}@{}'s password: ", self.hop.user, self.hop.host);
            return self.clock.during(self.ui.secret(self.label, &prompt)).await;
        }
        if !self.tried.is_empty() {
            return Ok(None);
        }
        Err(Error::usage(format!(
            "{}: the server asks for a password and none is available: {} (no terminal to ask)",
            self.label,
            self.password_hint()
        )))
    }

    /// Which setting gives this hop a password: the numbered variable names it; the unnumbered one and
    /// --password-file reach the destination only.
    fn password_hint(&self) -> String {
        let n = self.label.index + 1;
        if n == self.label.count {
            format!("set SQLTUN_SSH_PASSWORD (or SQLTUN_SSH_PASSWORD_{n} for this hop) or --password-file")
        } else {
            format!(
                "set SQLTUN_SSH_PASSWORD_{n} for this hop (SQLTUN_SSH_PASSWORD and --password-file go to the destination, hop {}, only)",
                self.label.count
            )
        }
    }

    async fn try_password(&mut self) -> Result<Option<String>> {
        // A person may retype a refused password (NumberOfPasswordPrompts times, as OpenSSH); a password
        // from the environment is tried once.
        let attempts = if self.hop.auth.password_secret.is_none() && self.interactive {
            self.hop.auth.password_prompts
        } else {
            1
        };
        for attempt in 0..attempts {
            if attempt > 0 {
                self.ui.tell(self.label, "Permission denied, please try again.");
            }
            let Some(password) = self.password().await? else {
                self.tried
                    .push(format!("password: none available ({})", self.password_hint()));
                return Ok(None);
            };
            self.ui.progress(self.label, "authenticating (password)");
            let result = self
                .handle
                .authenticate_password(self.hop.user.clone(), password.expose())
                .await
                .map_err(|e| self.session_error(e))?;
            if self.note(result) {
                return Ok(Some("password".into()));
            }
            if !self.allows(MethodKind::Password) || self.handle.is_closed() {
                break;
            }
        }
        let source = self
            .hop
            .auth
            .password_source
            .clone()
            .unwrap_or_else(|| "the prompt".into());
        self.tried.push(format!("password from {source}: refused"));
        Ok(None)
    }
}
