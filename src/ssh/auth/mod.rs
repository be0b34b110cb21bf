//! Authentication on one hop, in OpenSSH's order: agent keys, identity files, then password.
//! Secrets come from the plan (environment, files, or a command run when the secret is needed; see
//! `lazy`) or, when a person is there, a prompt.
//!
//! Here: the order of methods, the final error, and passwords; `publickey` (agent keys, identity files,
//! certificates) and `kbd` (keyboard-interactive) hold the other methods.

use russh::MethodKind;
use russh::client::{AuthResult, Handle};
use russh::keys::{HashAlg, PublicKey};

use super::client::Client;
use super::clock::PromptClock;
use super::interaction::{HopLabel, Interaction};
use super::keys::{self, KeyError};
use super::kind::classify;
use crate::error::{Error, Kind, Result};
use crate::plan::{AgentSource, Hop};
use crate::secret::Secret;
use crate::text;

mod kbd;
mod lazy;
mod publickey;

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
    /// What the plan's secret commands yielded on this connection.
    obtained: lazy::Obtained,
}

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
        obtained: lazy::Obtained::default(),
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

    /// The hop's password: from the plan, one already typed, or a prompt. `Ok(None)` when there is none
    /// and keys were already tried (the failure is then an authentication failure, not a usage error).
    async fn password(&mut self) -> Result<Option<Secret>> {
        if let Some(p) = self.plan_password().await? {
            return Ok(Some(p));
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
