//! Host-key verification with OpenSSH's semantics, on every hop: known_hosts lookup, then the
//! `StrictHostKeyChecking` policy for unknown keys. A changed or revoked key is always refused.

use std::path::PathBuf;

use russh::keys::PublicKey;

use super::clock::PromptClock;
pub use super::interaction::{Acceptance, Offered};
use super::interaction::{HopLabel, Interaction};
use super::known_hosts::{self, KnownHosts, Verdict};
use crate::error::{Error, Kind, Result};
use crate::plan::{HostKeySettings, StrictHostKeyChecking};
use crate::text;

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
    /// The known_hosts files as read once for this dial.
    pub known: &'a Loaded,
    /// Whether SHA-1 RSA signatures (`ssh-rsa`) are accepted, here from a host certificate's CA.
    pub sha1_rsa: bool,
    /// The address the hop was reached at over TCP (none through a channel or ProxyCommand).
    pub peer: Option<std::net::SocketAddr>,
}

/// The known_hosts files of one hop, read once per dial (they can be large, and every step of the
/// verification consults them).
#[derive(Debug, Default)]
pub struct Loaded {
    files: Vec<KnownHosts>,
    /// Files that exist but could not be read, with why.
    unreadable: Vec<(PathBuf, String)>,
}

impl Loaded {
    /// Read the user's and the global files, warning once about lines that are ignored.
    pub fn read(settings: &HostKeySettings) -> Loaded {
        let mut loaded = Loaded::default();
        for path in settings.user_known_hosts.iter().chain(&settings.global_known_hosts) {
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
                    loaded.files.push(file);
                }
                Ok(None) => tracing::debug!("{} does not exist", path.display()),
                Err(e) => {
                    tracing::warn!("cannot read {}: {e}", path.display());
                    loaded.unreadable.push((path.clone(), e.to_string()));
                }
            }
        }
        loaded
    }
}

impl HostKeyCheck<'_> {
    /// The name the key is looked up and recorded under: HostKeyAlias as is, else `host` or `[host]:port`.
    pub fn lookup_name(&self) -> String {
        match &self.settings.alias {
            Some(alias) => alias.to_lowercase(),
            None => known_hosts::lookup_name(self.host, self.port),
        }
    }

    pub async fn verify(&self, key: &PublicKey) -> Result<Acceptance> {
        let name = self.lookup_name();
        let files = &self.known.files;
        let fingerprint = known_hosts::fingerprint(key);
        let algorithm = key.algorithm().to_string();
        match known_hosts::check(files, std::slice::from_ref(&name), key) {
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
            Verdict::Unknown { other_types } => self.unknown(&name, key, &fingerprint, &algorithm, &other_types).await,
        }
    }

    /// An unknown key: refused outright where accepting it could accept an impostor (see
    /// [`HostKeyCheck::unsafe_to_accept`]), else StrictHostKeyChecking decides, and an accepted key is
    /// recorded.
    async fn unknown(
        &self,
        name: &str,
        key: &PublicKey,
        fingerprint: &str,
        algorithm: &str,
        other_types: &[String],
    ) -> Result<Acceptance> {
        if let Some(refused) = self.unsafe_to_accept(name, fingerprint, algorithm, other_types) {
            return Err(refused);
        }
        let searched = self.searched_files();
        let accept = match self.settings.strict {
            StrictHostKeyChecking::AcceptNew | StrictHostKeyChecking::No => true,
            StrictHostKeyChecking::Ask if self.interactive => {
                let question = self.question(name, key, fingerprint);
                self.clock.during(self.confirm(&question, fingerprint)).await?
            }
            StrictHostKeyChecking::Ask => {
                return Err(Error::new(
                    Kind::HostKey,
                    format!(
                        "{}: unknown host key {algorithm} {fingerprint} for '{name}' (not in {searched}), and no terminal to confirm it; verify the fingerprint, then add it with `-o StrictHostKeyChecking=accept-new` or to the known_hosts file",
                        self.label
                    ),
                ));
            }
            StrictHostKeyChecking::Yes => {
                return Err(Error::new(
                    Kind::HostKey,
                    format!(
                        "{}: unknown host key {algorithm} {fingerprint} for '{name}' (not in {searched}), and StrictHostKeyChecking=yes; verify the fingerprint, then add the key to the known_hosts file",
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

    /// Why an unknown key must be refused whatever StrictHostKeyChecking says: the host is trusted
    /// through a CA, is pinned with keys of other types, or a known_hosts file that may list it cannot
    /// be read.
    fn unsafe_to_accept(
        &self,
        name: &str,
        fingerprint: &str,
        algorithm: &str,
        other_types: &[String],
    ) -> Option<Error> {
        // A host trusted through a CA must prove itself with a certificate: a plain key it presents
        // instead is treated like a changed key, whatever StrictHostKeyChecking says, or a policy like
        // accept-new would record an impostor's key next to the CA line.
        if let Some((path, line, _)) = self.cert_authorities().first() {
            return Some(Error::new(
                Kind::HostKey,
                format!(
                    "{}: '{name}' is trusted through the @cert-authority line at {}:{line} and is expected to present a host certificate signed by that CA, but it offered a plain {algorithm} key {fingerprint}; this may be an attack. If the host really has no certificate now, add its key to known_hosts after checking the fingerprint",
                    self.label,
                    path.display()
                ),
            ));
        }
        if !other_types.is_empty() {
            // As OpenSSH: a host pinned with keys of other types that now shows a new type is treated as
            // changed, or offering an unpinned type would be enough to get past the pin.
            let files = &self.known.files;
            let place = known_hosts::known_keys(files, &[name.to_string()])
                .first()
                .map(|(path, entry)| format!("{}:{}", path.display(), entry.line))
                .unwrap_or_else(|| self.searched_files());
            return Some(Error::new(
                Kind::HostKey,
                format!(
                    "{}: '{name}' offered a {algorithm} key {fingerprint}, but {place} lists only {} keys for it; the host may have been reinstalled, or this is an attack. If the change is expected, run `ssh-keygen -R '{name}'` on that file and connect again",
                    self.label,
                    other_types.join(", ")
                ),
            ));
        }
        // A known_hosts file that exists but cannot be read may hold this host's real key: accepting an
        // "unknown" key then could accept a changed one. Refuse until the file is fixed.
        if let Some((path, why)) = self.known.unreadable.first() {
            return Some(Error::new(
                Kind::HostKey,
                format!(
                    "{}: cannot read {} ({why}), which may list this host's key; not accepting the unknown key {algorithm} {fingerprint} for '{name}' until it is readable",
                    self.label,
                    path.display()
                ),
            ));
        }
        None
    }

    /// The question as OpenSSH puts it: the host and its address, the key's fingerprint, where else
    /// this key is known, and the yes/no/fingerprint choice.
    fn question(&self, name: &str, key: &PublicKey, fingerprint: &str) -> String {
        let host = match self.peer {
            Some(peer) => format!(
                "{name} ({})",
                known_hosts::lookup_name(&peer.ip().to_string(), peer.port())
            ),
            None => name.to_string(),
        };
        let kind = known_hosts::key_type(key)
            .trim_start_matches("ssh-")
            .split('-')
            .next()
            .unwrap_or_default()
            .to_uppercase();
        let mut text = format!(
            "The authenticity of host '{}' can't be established.\n{kind} key fingerprint is {fingerprint}.\n",
            text::printable(&host)
        );
        let others = self.other_names(key);
        if others.is_empty() {
            text.push_str("This key is not known by any other names.\n");
        } else {
            text.push_str("This host key is known by the following other names/addresses:\n");
            for other in &others {
                text.push_str(&format!("    {other}\n"));
            }
        }
        text.push_str("Are you sure you want to continue connecting (yes/no/[fingerprint])? ");
        text
    }

    /// Where the same key is listed under other names (`file:line: name`), as OpenSSH shows them.
    fn other_names(&self, key: &PublicKey) -> Vec<String> {
        let mut others = Vec::new();
        for file in &self.known.files {
            for e in &file.entries {
                if e.marker != known_hosts::Marker::None || e.key.key_data() != key.key_data() {
                    continue;
                }
                let names = match &e.hosts {
                    known_hosts::HostSpec::Hashed { .. } => "[hashed name]".to_string(),
                    known_hosts::HostSpec::Patterns(patterns) => text::printable(&patterns.join(",")),
                };
                others.push(format!("{}:{}: {names}", file.path.display(), e.line));
            }
        }
        others.truncate(8);
        others
    }

    /// Ask until the answer is yes, no, or a fingerprint; a pasted fingerprint must be this key's.
    async fn confirm(&self, question: &str, fingerprint: &str) -> Result<bool> {
        let mut prompt = question.to_string();
        loop {
            let Some(answer) = self.ui.ask(self.label, &prompt).await? else {
                return Ok(false);
            };
            match host_key_answer(&answer, fingerprint) {
                HostKeyAnswer::Yes => return Ok(true),
                HostKeyAnswer::No => return Ok(false),
                HostKeyAnswer::Mismatch => {
                    return Err(Error::new(
                        Kind::HostKey,
                        format!(
                            "{}: Host key fingerprint mismatch: the fingerprint typed is not the offered key's {fingerprint}; not connecting",
                            self.label
                        ),
                    ));
                }
                HostKeyAnswer::Again => prompt = "Please type 'yes', 'no' or the fingerprint: ".into(),
            }
        }
    }

    fn record(&self, name: &str, key: &PublicKey, algorithm: &str) -> Acceptance {
        let Some(path) = self.settings.user_known_hosts.first() else {
            return Acceptance::AcceptedUnrecorded;
        };
        if path == std::path::Path::new("/dev/null") {
            return Acceptance::AcceptedUnrecorded;
        }
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

    /// `@cert-authority` keys trusted for this host, with where they are listed.
    pub fn cert_authorities(&self) -> Vec<(PathBuf, usize, PublicKey)> {
        let name = self.lookup_name();
        let bare = self.principal_name();
        self.known
            .files
            .iter()
            .flat_map(|f| f.entries.iter().map(move |e| (f.path.clone(), e)))
            .filter(|(_, e)| {
                e.marker == known_hosts::Marker::CertAuthority && (e.hosts.matches(&name) || e.hosts.matches(&bare))
            })
            .map(|(path, e)| (path, e.line, e.key.clone()))
            .collect()
    }

    /// The name a host certificate must list as a principal: HostKeyAlias, else the host name.
    fn principal_name(&self) -> String {
        self.settings
            .alias
            .clone()
            .unwrap_or_else(|| self.host.to_string())
            .to_lowercase()
    }

    /// A host certificate: trusted when an `@cert-authority` line for this host lists its CA, the CA's
    /// signature verifies, it is a host certificate, it is within its validity window and it names this
    /// host. Without a matching CA, its plain key is checked like any key (as OpenSSH does).
    pub async fn verify_certificate(&self, cert: &russh::keys::Certificate) -> Result<Acceptance> {
        let key = PublicKey::new(cert.public_key().clone(), "");
        let ca = PublicKey::new(cert.signature_key().clone(), "");
        let name = self.lookup_name();
        if let Some(revoked) = self.revoked_certificate(&name, &key, &ca) {
            return Err(revoked);
        }
        let authorities = self.cert_authorities();
        let Some((path, line, _)) = authorities.iter().find(|(_, _, k)| k.key_data() == ca.key_data()) else {
            return self.unlisted_ca(&name, &key, &ca, &authorities).await;
        };
        let place = format!("{}:{line}", path.display());
        let principal = self.principal_name();
        if let Some(why) = self.certificate_flaw(cert, &principal) {
            return Err(Error::new(
                Kind::HostKey,
                format!(
                    "{}: host certificate (CA {} from {place}) refused: {why}",
                    self.label,
                    known_hosts::fingerprint(&ca)
                ),
            ));
        }
        tracing::info!(hop = %self.label, "host certificate for '{principal}' signed by the CA at {place}");
        Ok(Acceptance::Known(path.clone(), *line))
    }

    /// The refusal when the certificate's key or its CA is marked `@revoked` for this host.
    fn revoked_certificate(&self, name: &str, key: &PublicKey, ca: &PublicKey) -> Option<Error> {
        for file in &self.known.files {
            for e in &file.entries {
                let revoked = e.marker == known_hosts::Marker::Revoked
                    && (e.hosts.matches(name) || e.hosts.matches(&self.principal_name()))
                    && (e.key.key_data() == key.key_data() || e.key.key_data() == ca.key_data());
                if revoked {
                    return Some(Error::new(
                        Kind::HostKey,
                        format!(
                            "{}: the host certificate's key or its CA is marked @revoked in {}:{}; refusing to connect",
                            self.label,
                            file.path.display(),
                            e.line
                        ),
                    ));
                }
            }
        }
        None
    }

    /// A certificate from a CA no `@cert-authority` line trusts: refused when the host is trusted
    /// through another CA (and its plain key is not listed), else its plain key is checked.
    async fn unlisted_ca(
        &self,
        name: &str,
        key: &PublicKey,
        ca: &PublicKey,
        authorities: &[(PathBuf, usize, PublicKey)],
    ) -> Result<Acceptance> {
        let plain_known = matches!(
            known_hosts::check(&self.known.files, &[name.to_string()], key),
            Verdict::Trusted { .. }
        );
        if let (Some((path, line, _)), false) = (authorities.first(), plain_known) {
            return Err(Error::new(
                Kind::HostKey,
                format!(
                    "{}: '{name}' presented a host certificate signed by the CA {}, but the @cert-authority line for it at {}:{line} lists another CA; this may be an attack",
                    self.label,
                    known_hosts::fingerprint(ca),
                    path.display()
                ),
            ));
        }
        tracing::info!(hop = %self.label, "host certificate from an unlisted CA {}; checking its plain key", known_hosts::fingerprint(ca));
        self.verify(key).await
    }

    /// Why a certificate from a trusted CA is still refused (a SHA-1 signature not opted in, a bad
    /// signature, a user certificate, outside its window, not for `principal`, unknown critical
    /// options); `None` when it is good.
    fn certificate_flaw(&self, cert: &russh::keys::Certificate, principal: &str) -> Option<String> {
        if cert.signature().algorithm() == (russh::keys::Algorithm::Rsa { hash: None }) && !self.sha1_rsa {
            return Some(
                "its CA signed it with ssh-rsa (SHA-1), which sqltun refuses by default as OpenSSH 8.8+ does; have the CA sign it again with `ssh-keygen -s CA -t rsa-sha2-512 …`, or accept SHA-1 for this host with -o HostKeyAlgorithms=+ssh-rsa".into(),
            );
        }
        if cert.verify_signature().is_err() {
            return Some("its CA signature does not verify".into());
        }
        if cert.cert_type() != russh::keys::ssh_key::certificate::CertType::Host {
            return Some("it is a user certificate, not a host certificate".into());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now < cert.valid_after() {
            return Some(format!(
                "it is not valid yet (valid from {}; check the clocks)",
                utc(cert.valid_after())
            ));
        }
        if now >= cert.valid_before() {
            return Some(format!(
                "it expired on {}; the host needs a new certificate",
                utc(cert.valid_before())
            ));
        }
        let principals: Vec<String> = cert.valid_principals().iter().map(|p| p.to_lowercase()).collect();
        if !principals.iter().any(|p| p == principal) {
            return Some(format!(
                "it is for {} and not for '{principal}' (set HostKeyAlias if the host is known by another name)",
                if principals.is_empty() {
                    "no host at all".to_string()
                } else {
                    // Names from the certificate the server presented: escaped and cut.
                    crate::text::printable(&principals.join(", "))
                }
            ));
        }
        if !cert.critical_options().is_empty() {
            return Some("it carries critical options sqltun does not know".into());
        }
        None
    }

    /// Key types already known for this host, so negotiation can prefer them (as OpenSSH does).
    pub fn known_types(&self) -> Vec<String> {
        let files = &self.known.files;
        let mut types: Vec<String> = Vec::new();
        for (_, entry) in known_hosts::known_keys(files, &[self.lookup_name()]) {
            let t = known_hosts::key_type(&entry.key);
            if !types.contains(&t) {
                types.push(t);
            }
        }
        types
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

/// What a person answered to the host-key question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyAnswer {
    Yes,
    No,
    /// A fingerprint other than the offered key's: refused.
    Mismatch,
    /// Neither yes, no nor a fingerprint: ask again.
    Again,
}

/// The answer as OpenSSH reads it: surrounding blanks ignored, `yes`/`no` in any case, a fingerprint
/// (`SHA256:…`) compared exactly; an empty line is no.
pub fn host_key_answer(line: &str, fingerprint: &str) -> HostKeyAnswer {
    let answer = line.trim();
    if answer.is_empty() || answer.eq_ignore_ascii_case("no") {
        HostKeyAnswer::No
    } else if answer.eq_ignore_ascii_case("yes") || answer == fingerprint {
        HostKeyAnswer::Yes
    } else if answer.starts_with("SHA256:") || answer.starts_with("MD5:") {
        HostKeyAnswer::Mismatch
    } else {
        HostKeyAnswer::Again
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC` (days-to-civil conversion, proleptic Gregorian).
pub fn utc(secs: u64) -> String {
    if secs >= 253_402_300_800 {
        return "forever".into();
    }
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::{HostKeyAnswer, host_key_answer};

    /// The host-key question accepts what OpenSSH accepts, and a pasted fingerprint only when it is the
    /// offered key's: another one is a refusal, not a yes.
    #[test]
    fn host_key_answers() {
        let fp = "SHA256:abc";
        assert_eq!(host_key_answer("yes", fp), HostKeyAnswer::Yes);
        assert_eq!(host_key_answer("  YES \t", fp), HostKeyAnswer::Yes);
        assert_eq!(host_key_answer("SHA256:abc", fp), HostKeyAnswer::Yes);
        assert_eq!(host_key_answer("no", fp), HostKeyAnswer::No);
        assert_eq!(host_key_answer("", fp), HostKeyAnswer::No);
        assert_eq!(host_key_answer("SHA256:abd", fp), HostKeyAnswer::Mismatch);
        assert_eq!(host_key_answer("y", fp), HostKeyAnswer::Again);
        assert_eq!(host_key_answer("sure", fp), HostKeyAnswer::Again);
    }

    /// Certificate validity is shown as a date a person can read, not a Unix number.
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_577_923_200), "2020-01-02 00:00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc(u64::MAX), "forever");
    }
}
