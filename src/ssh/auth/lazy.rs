//! The plan's secrets at the moment they are needed: a value is used as it is; a command
//! (`password_command`, `passphrase_command`, `totp_command`) is run then, and its result serves this
//! connection to this hop only.

use super::Attempt;
use crate::error::{Error, Kind, Result};
use crate::plan::Lazy;
use crate::secret::Secret;
use crate::secret_command::SecretCommand;
use crate::totp::Totp;

/// What the commands yielded on this connection: the password and the passphrase are asked for once
/// (several keys or methods then use the same), one-time codes anew each time.
#[derive(Debug, Default)]
pub(super) struct Obtained {
    password: Option<Secret>,
    passphrase: Option<Secret>,
}

/// A one-time code as a command gave it, or the TOTP secret to compute it from.
pub(super) enum OneTime {
    Code(Secret),
    Secret(Totp),
}

impl Attempt<'_> {
    /// The plan's password for this hop, if it has one; `password_command` runs now (once per connection).
    pub(super) async fn plan_password(&mut self) -> Result<Option<Secret>> {
        let hop = self.hop;
        match &hop.auth.password_secret {
            None => Ok(None),
            Some(Lazy::Ready(secret)) => Ok(Some(secret.clone())),
            Some(Lazy::Command(command)) => {
                if let Some(secret) = &self.obtained.password {
                    return Ok(Some(secret.clone()));
                }
                let secret = self.run_command(command).await?;
                self.obtained.password = Some(secret.clone());
                Ok(Some(secret))
            }
        }
    }

    /// The plan's passphrase, if it has one; `passphrase_command` runs now (once per connection).
    pub(super) async fn plan_passphrase(&mut self) -> Result<Option<Secret>> {
        let hop = self.hop;
        match &hop.auth.passphrase {
            None => Ok(None),
            Some(Lazy::Ready(secret)) => Ok(Some(secret.clone())),
            Some(Lazy::Command(command)) => {
                if let Some(secret) = &self.obtained.passphrase {
                    return Ok(Some(secret.clone()));
                }
                let secret = self.run_command(command).await?;
                self.obtained.passphrase = Some(secret.clone());
                Ok(Some(secret))
            }
        }
    }

    /// What answers a verification-code prompt: the plan's TOTP secret, or what `totp_command` prints
    /// now: a code (6 to 10 digits) used as it is, or a TOTP secret or `otpauth://` URI to compute one
    /// from.
    pub(super) async fn plan_one_time(&mut self, source: &Lazy<Totp>) -> Result<OneTime> {
        match source {
            Lazy::Ready(totp) => Ok(OneTime::Secret(totp.clone())),
            Lazy::Command(command) => {
                let printed = self.run_command(command).await?;
                let text = printed.expose().trim();
                if (6..=10).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
                    return Ok(OneTime::Code(Secret::new(text.to_string())));
                }
                Totp::parse(&printed).map(OneTime::Secret).map_err(|e| {
                    Error::new(
                        Kind::Auth,
                        format!(
                            "{}: {} printed neither a one-time code (6 to 10 digits) nor a TOTP secret: {e}",
                            self.label,
                            command.describe()
                        ),
                    )
                })
            }
        }
    }

    /// Run a secret command for this hop, off the connection bound (it has its own), through the
    /// interaction so that it may use the terminal.
    async fn run_command(&self, command: &SecretCommand) -> Result<Secret> {
        tracing::info!(hop = %self.label, "running {}", command.describe());
        self.clock
            .during(self.ui.run_command(self.label, command))
            .await
            .map_err(|e| match e.kind() {
                Kind::Interrupted => e,
                _ => e.context(self.label),
            })
    }
}
