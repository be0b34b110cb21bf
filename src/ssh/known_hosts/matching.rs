//! What known_hosts files say about a host key: which lines apply to a name (hashed fields, and
//! OpenSSH's host patterns), and the verdict for an offered key.

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use russh::keys::PublicKey;
use russh::keys::ssh_key::public::KeyData;

use super::{Entry, HostSpec, KnownHosts, Marker, Verdict, key_type};
use crate::pattern::{self, Case, ListMatch};

pub(super) type HmacSha1 = Hmac<sha1::Sha1>;

impl HostSpec {
    /// Whether this host field applies to the lookup name `name` (compared case-insensitively).
    pub fn matches(&self, name: &str) -> bool {
        self.matches_lowercase(&name.to_ascii_lowercase())
    }

    /// `name` must already be lowercase: check() lowercases its names once, not per entry.
    pub(super) fn matches_lowercase(&self, name: &str) -> bool {
        match self {
            HostSpec::Hashed { salt, hash } => hashed_matches(salt, hash, name),
            HostSpec::Patterns(patterns) => {
                pattern::match_patterns(name, patterns.iter().map(String::as_str), Case::FoldPattern)
                    == ListMatch::Matched
            }
        }
    }
}

/// Decides whether `key` is trusted for the host known under `names`.
///
/// `names`: the lookup names to try (usually one: lookup_name(host_or_HostKeyAlias, port)).
/// Files are searched in order. A matching `@revoked` line wins over everything, then the
/// first plain line holding exactly this key, then the first plain line holding another key
/// of the same algorithm. `@cert-authority` lines are not consulted.
pub fn check(files: &[KnownHosts], names: &[String], key: &PublicKey) -> Verdict {
    let names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let applies = |entry: &Entry| names.iter().any(|n| entry.hosts.matches_lowercase(n));
    let entries = || {
        files
            .iter()
            .flat_map(|file| file.entries.iter().map(move |entry| (file, entry)))
    };

    // Revocation is checked first and separately: a revoked key stays refused even when
    // an earlier line (or another file) still lists it as trusted.
    if let Some((file, entry)) =
        entries().find(|(_, e)| e.marker == Marker::Revoked && applies(e) && is_revoked_by(key, &e.key))
    {
        return Verdict::Revoked {
            path: file.path.clone(),
            line: entry.line,
        };
    }

    let plain = || entries().filter(|(_, e)| e.marker == Marker::None && applies(e));

    // Comments are not part of a key's identity; compare the key material only.
    if let Some((file, entry)) = plain().find(|(_, e)| e.key.key_data() == key.key_data()) {
        return Verdict::Trusted {
            path: file.path.clone(),
            line: entry.line,
        };
    }

    let offered_type = key_type(key);
    if let Some((file, entry)) = plain().find(|(_, e)| key_type(&e.key) == offered_type) {
        return Verdict::Changed {
            path: file.path.clone(),
            line: entry.line,
            known: entry.key.clone(),
        };
    }

    let mut other_types: Vec<String> = Vec::new();
    for (_, entry) in plain() {
        let t = key_type(&entry.key);
        if !other_types.contains(&t) {
            other_types.push(t);
        }
    }
    Verdict::Unknown { other_types }
}

/// The plain (unmarked) entries that apply to any of `names`, in file order.
///
/// Lets a caller name the lines behind `other_types` in [`Verdict::Unknown`], or apply
/// OpenSSH's stricter reading in which a key of another type also counts as "changed".
pub fn known_keys<'a>(files: &'a [KnownHosts], names: &[String]) -> Vec<(&'a Path, &'a Entry)> {
    let names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    files
        .iter()
        .flat_map(|file| file.entries.iter().map(move |e| (file.path.as_path(), e)))
        .filter(|(_, e)| e.marker == Marker::None && names.iter().any(|n| e.hosts.matches_lowercase(n)))
        .collect()
}

/// True when a `@revoked` line holding `revoked` refuses the offered key: the key itself,
/// or for a certificate its certified key or the CA that signed it (as OpenSSH does).
pub(super) fn is_revoked_by(offered: &PublicKey, revoked: &PublicKey) -> bool {
    let revoked = revoked.key_data();
    match offered.key_data() {
        KeyData::Certificate(cert) => cert.public_key() == revoked || cert.signature_key() == revoked,
        data => data == revoked,
    }
}

pub(super) fn hashed_matches(salt: &[u8], hash: &[u8], name: &str) -> bool {
    match <HmacSha1 as KeyInit>::new_from_slice(salt) {
        Ok(mut mac) => {
            mac.update(name.as_bytes());
            mac.verify_slice(hash).is_ok()
        }
        Err(_) => false,
    }
}
