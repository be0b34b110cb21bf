//! Host-key verification with OpenSSH's semantics, on every hop: known_hosts lookup, then the
//! `StrictHostKeyChecking` policy for unknown keys. A changed or revoked key is always refused.

use std::path::PathBuf;

use russh::keys::PublicKey;

use super::dial::PromptClock;
use super::known_hosts::{self, KnownHosts, Verdict};
use super::{HopLabel, Interaction};
use crate::error::{Error, Kind, Result};
use crate::plan::{HostKeySettings, StrictHostKeyChecking};

/// How the offered key was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// Listed in a known_hosts file (file, line).
    Known(PathBuf, usize),
    /// Unknown, and recorded in a file (file, line) by policy or a person's answer.
    Recorded(PathBuf, usize),
    /// Unknown and accepted without recording (recording failed).
    AcceptedUnrecorded,
}

/// The key a server offered and what became of it (for `check` and `-v`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub algorithm: String,
    pub fingerprint: String,
    pub accepted: Option<Acceptance>,
}

impl Offered {
    pub fn of(key: &PublicKey, accepted: Option<Acceptance>) -> Self {
        Offered {
            algorithm: key.algorithm().to_string(),
            fingerprint: known_hosts::fingerprint(key),
            accepted,
        }
    }
}

/// One verification: the hop, its settings and how to reach a person.
#[allow(missing_debug_implementations)]
pub struct HostKeyCheck<'a> {
    pub label: &'a HopLabel,
    pub host: &'a str,
    pub port: u16,
    pub settings: &'a HostKeySettings,
    pub interactive: bool,
    pub ui: &'a dyn Interaction,
    pub clock: &'a PromptClock,
}

impl HostKeyCheck<'_> {
    /// The name the key is looked up and recorded under: HostKeyAlias as is, else `host` or `[host]:port`.
    pub fn lookup_name(&self) -> String {
        match &self.settings.alias {
            Some(alias) => alias.to_lowercase(),
            None => known_hosts::lookup_name(self.host, self.port),
        }
    }

    pub fn verify(&self, key: &PublicKey) -> Result<Acceptance> {
        let name = self.lookup_name();
        let files = self.load_files();
        let fingerprint = known_hosts::fingerprint(key);
        let algorithm = key.algorithm().to_string();
        match known_hosts::check(&files, std::slice::from_ref(&name), key) {
            Verdict::Trusted { path, line } => {
                tracing::info!(hop = %self.label, "host key {algorithm} {fingerprint} matches {}:{line}", path.display());
                Ok(Acceptance::Known(path, line))
            }
            Verdict::Revoked { path, line } => Err(Error::new(
                Kind::HostKey,
                format!(
                    "{}: the host key {algorithm} {fingerprint} is marked @revoked in {}:{line}; refusing to connect (someone may be impersonating the host)",
                    self.label,
                    path.display()
                ),
            )),
            Verdict::Changed { path, line, known } => Err(Error::new(
                Kind::HostKey,
                format!(
                    "{}: HOST KEY CHANGED for {name}: it offered {algorithm} {fingerprint}, but {}:{line} lists {}; this may be an attack. If the change is expected, run `ssh-keygen -R '{name}' -f {}` and connect again",
                    self.label,
                    path.display(),
                    known_hosts::fingerprint(&known),
                    path.display()
                ),
            )),
            Verdict::Unknown { other_types } => self.unknown(&name, key, &fingerprint, &algorithm, &other_types),
        }
    }

    fn unknown(
        &self,
        name: &str,
        key: &PublicKey,
        fingerprint: &str,
        algorithm: &str,
        other_types: &[String],
    ) -> Result<Acceptance> {
        let searched = self.searched_files();
        if !other_types.is_empty() {
            // As OpenSSH: a host pinned with keys of other types that now shows a new type is treated as
            // changed, or offering an unpinned type would be enough to get past the pin.
            let files = self.load_files();
            let place = known_hosts::known_keys(&files, &[name.to_string()])
                .first()
                .map(|(path, entry)| format!("{}:{}", path.display(), entry.line))
                .unwrap_or(searched.clone());
            return Err(Error::new(
                Kind::HostKey,
                format!(
                    "{}: '{name}' offered a {algorithm} key {fingerprint}, but {place} lists only {} keys for it; the host may have been reinstalled, or this is an attack. If the change is expected, run `ssh-keygen -R '{name}'` on that file and connect again",
                    self.label,
                    other_types.join(", ")
                ),
            ));
        }
        let also = String::new();
        let accept = match self.settings.strict {
            StrictHostKeyChecking::AcceptNew | StrictHostKeyChecking::No => true,
            StrictHostKeyChecking::Ask if self.interactive => {
                let question = format!(
                    "{}: the authenticity of host '{name}' can't be established{also}.\n{algorithm} key fingerprint is {fingerprint}.\nAre you sure you want to continue connecting (yes/no)? ",
                    self.label
                );
                let ui = self.ui;
                self.clock.during(|| ui.confirm(&question))
            }
            StrictHostKeyChecking::Ask => {
                return Err(Error::new(
                    Kind::HostKey,
                    format!(
                        "{}: unknown host key {algorithm} {fingerprint} for '{name}' (not in {searched}){also}, and no terminal to confirm it; verify the fingerprint, then add it with `-o StrictHostKeyChecking=accept-new` or to the known_hosts file",
                        self.label
                    ),
                ));
            }
            StrictHostKeyChecking::Yes => {
                return Err(Error::new(
                    Kind::HostKey,
                    format!(
                        "{}: unknown host key {algorithm} {fingerprint} for '{name}' (not in {searched}){also}, and StrictHostKeyChecking=yes; verify the fingerprint, then add the key to the known_hosts file",
                        self.label
                    ),
                ));
            }
        };
        if !accept {
            return Err(Error::new(
                Kind::HostKey,
                format!("{}: host key for '{name}' not confirmed; not connecting", self.label),
            ));
        }
        Ok(self.record(name, key, algorithm))
    }

    fn record(&self, name: &str, key: &PublicKey, algorithm: &str) -> Acceptance {
        let Some(path) = self.settings.user_known_hosts.first() else {
            return Acceptance::AcceptedUnrecorded;
        };
        match known_hosts::append(path, name, key, self.settings.hash_known_hosts) {
            Ok(line) => {
                self.ui.notice(
                    self.label,
                    &format!("Permanently added '{name}' ({algorithm}) to {}:{line}", path.display()),
                );
                Acceptance::Recorded(path.clone(), line)
            }
            Err(e) => {
                self.ui.notice(
                    self.label,
                    &format!("could not record the host key in {}: {e}", path.display()),
                );
                Acceptance::AcceptedUnrecorded
            }
        }
    }

    /// Key types already known for this host, so negotiation can prefer them (as OpenSSH does).
    pub fn known_types(&self) -> Vec<String> {
        let files = self.load_files();
        let mut types: Vec<String> = Vec::new();
        for (_, entry) in known_hosts::known_keys(&files, &[self.lookup_name()]) {
            let t = known_hosts::key_type(&entry.key);
            if !types.contains(&t) {
                types.push(t);
            }
        }
        types
    }

    fn load_files(&self) -> Vec<KnownHosts> {
        let mut files = Vec::new();
        for path in self
            .settings
            .user_known_hosts
            .iter()
            .chain(&self.settings.global_known_hosts)
        {
            match KnownHosts::load(path) {
                Ok(Some(file)) => {
                    for problem in &file.problems {
                        tracing::warn!(
                            "{}:{}: {} (line ignored)",
                            path.display(),
                            problem.line,
                            problem.message
                        );
                    }
                    files.push(file);
                }
                Ok(None) => tracing::debug!("{} does not exist", path.display()),
                Err(e) => tracing::warn!("cannot read {}: {e}", path.display()),
            }
        }
        files
    }

    fn searched_files(&self) -> String {
        let all: Vec<String> = self
            .settings
            .user_known_hosts
            .iter()
            .chain(&self.settings.global_known_hosts)
            .map(|p| p.display().to_string())
            .collect();
        if all.is_empty() {
            "any known_hosts file".into()
        } else {
            all.join(", ")
        }
    }
}
