//! keyboard-interactive: the server's questions answered from the password, a one-time code, or a
//! person, every server text escaped and every automatic answer bounded.

use russh::MethodKind;
use russh::client::AuthResult;

use super::Attempt;
use super::lazy::OneTime;
use crate::error::{Error, Kind, Result};
use crate::plan::Lazy;
use crate::text;

/// keyboard-interactive requests one hop may send: PAM conversations take one to three (a password, a
/// code, a notice), so a server that keeps asking is cut off rather than answered forever.
const MAX_KBD_ROUNDS: u32 = 6;
/// Prompts in one keyboard-interactive request.
const MAX_PROMPTS_PER_REQUEST: usize = 8;
/// Prompts one hop gets answered without a person (from the password and the TOTP secret), over all
/// rounds: enough for a password and a code, twice.
const MAX_AUTOMATIC_ANSWERS: u32 = 4;

impl Attempt<'_> {
    /// keyboard-interactive: password-like prompts are answered with the password and code prompts with
    /// a one-time code; anything else needs a person, and without one fails at once, quoting the prompt.
    /// Every text of the server is escaped before it is shown, and how much is answered without a person
    /// is bounded (see [`MAX_KBD_ROUNDS`], [`MAX_AUTOMATIC_ANSWERS`]).
    pub(super) async fn try_keyboard_interactive(&mut self) -> Result<Option<String>> {
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
        let hop = self.hop;
        if asks_code && let Some((source, from)) = &hop.auth.totp {
            self.automatic_answer(&quoted)?;
            if self.codes_sent > 0 && matches!(source, Lazy::Command(_)) {
                // As with a TOTP secret (one code per step per hop): a server that asks again on the
                // same connection gets no second code to collect.
                return Err(Error::new(
                    Kind::Auth,
                    format!(
                        "{}: the server asks \"{quoted}\" again and no one-time code was sent: this hop already had one from {from} on this connection",
                        self.label
                    ),
                ));
            }
            return match self.plan_one_time(source).await? {
                OneTime::Secret(totp) => self.one_time_code(&totp, from, &quoted).await.map(Some),
                OneTime::Code(code) => {
                    tracing::info!(hop = %self.label, "answering \"{quoted}\" with the one-time code from {from}");
                    self.codes_sent += 1;
                    self.used_totp = true;
                    Ok(Some(code.expose().to_string()))
                }
            };
        }
        let password_like = !prompt.echo && lower.contains("password");
        if password_like && hop.auth.password_secret.is_some() {
            self.automatic_answer(&quoted)?;
            if let Some(p) = self.plan_password().await? {
                return Ok(Some(p.expose().to_string()));
            }
        }
        if self.interactive {
            // The server's own question, escaped, after `(user@host)` as OpenSSH shows it.
            let question = format!(
                "({}@{}) {quoted} ",
                text::printable(&self.hop.user),
                text::printable(&self.hop.host)
            );
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
        Err(self.no_one_to_answer(&quoted, asks_code))
    }

    /// A one-time code from the TOTP secret, waiting (off the connection bound) for the next one when
    /// the current code was already sent.
    async fn one_time_code(&mut self, totp: &crate::totp::Totp, from: &str, quoted: &str) -> Result<String> {
        let hop = format!("{}#{}", self.label.index, self.label.address);
        loop {
            match totp.issue(&hop, self.codes_sent == 0) {
                crate::totp::Issue::Code(code) => {
                    tracing::info!(hop = %self.label, "answering \"{quoted}\" with a one-time code from {from}");
                    self.codes_sent += 1;
                    self.used_totp = true;
                    return Ok(code);
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

    /// The error for a prompt nobody can answer here, with the setting that would answer it.
    fn no_one_to_answer(&self, quoted: &str, asks_code: bool) -> Error {
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
        Error::new(
            Kind::Auth,
            format!(
                "{}: the server asks \"{quoted}\" (keyboard-interactive) and there is no terminal to answer it; {hint}",
                self.label
            ),
        )
    }
}
