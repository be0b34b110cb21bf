//! Algorithm lists (`Ciphers`, `MACs`, `KexAlgorithms`, `HostKeyAlgorithms`): OpenSSH's defaults and
//! supported names, and how a value modifies the default (kex_assemble_names).
//!
//! The lists are OpenSSH 9.2p1 Debian-2+deb12u10's: `ssh -G` defaults, `ssh -Q` lists.

use super::keywords::Key;
use super::shown;
use crate::pattern::{self, Case, ListMatch};

pub(super) const DEFAULT_CIPHERS: &str =
    "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com";
pub(super) const ALL_CIPHERS: &[&str] = &[
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
];
pub(super) const DEFAULT_MACS: &str = "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1";
pub(super) const ALL_MACS: &[&str] = &[
    "hmac-sha1",
    "hmac-sha1-96",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-md5",
    "hmac-md5-96",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
];
pub(super) const DEFAULT_KEX: &str = "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256";
pub(super) const ALL_KEX: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group-exchange-sha256",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
];
pub(super) const DEFAULT_HOST_KEY_ALGORITHMS: &str = "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256";
pub(super) const ALL_HOST_KEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-512-cert-v01@openssh.com",
];

/// (default list, every supported name) for an algorithm directive.
pub(super) fn algorithm_lists(key: Key) -> (&'static str, &'static [&'static str]) {
    match key {
        Key::Ciphers => (DEFAULT_CIPHERS, ALL_CIPHERS),
        Key::Macs => (DEFAULT_MACS, ALL_MACS),
        Key::KexAlgorithms => (DEFAULT_KEX, ALL_KEX),
        _ => (DEFAULT_HOST_KEY_ALGORITHMS, ALL_HOST_KEY_ALGORITHMS),
    }
}

/// What OpenSSH checks when it reads an algorithm list: every name known (wildcards only in
/// HostKeyAlgorithms); a `-` list is not checked.
pub(super) fn validate_algorithms(key: Key, spec: &str) -> std::result::Result<(), String> {
    if spec.starts_with('-') {
        return Ok(());
    }
    let names = spec.strip_prefix(['+', '^']).unwrap_or(spec);
    let (_, all) = algorithm_lists(key);
    // OpenSSH stops at the first empty name.
    for name in names.split(',').take_while(|n| !n.is_empty()) {
        let known = all.contains(&name)
            || (key == Key::HostKeyAlgorithms
                && all
                    .iter()
                    .any(|a| pattern::match_list(a, name, Case::Sensitive) != ListMatch::NoMatch));
        if !known {
            let query = match key {
                Key::Ciphers => "cipher",
                Key::Macs => "mac",
                Key::KexAlgorithms => "kex",
                _ => "HostKeyAlgorithms",
            };
            return Err(format!(
                "unknown algorithm '{}'; `ssh -Q {query}` lists the supported ones",
                shown(name)
            ));
        }
    }
    Ok(())
}

/// OpenSSH's kex_assemble_names: `+` appends to the default list, `-` removes from it, `^` puts
/// first; names may be patterns, expanded in the order of the supported list. `None` if a
/// negated pattern appears where OpenSSH forbids it.
pub(super) fn assemble_algorithms(spec: &str, default: &str, all: &[&str]) -> Option<Vec<String>> {
    let default: Vec<&str> = default.split(',').collect();
    if let Some(patterns) = spec.strip_prefix('-') {
        return Some(
            default
                .iter()
                .filter(|name| pattern::match_list(name, patterns, Case::Sensitive) != ListMatch::Matched)
                .map(|s| s.to_string())
                .collect(),
        );
    }
    let list: Vec<String> = if let Some(added) = spec.strip_prefix('+') {
        names_cat(&default, added.split(','))
    } else if let Some(first) = spec.strip_prefix('^') {
        let first: Vec<&str> = first.split(',').collect();
        names_cat(&first, default.iter().copied())
    } else {
        spec.split(',').map(str::to_string).collect()
    };
    let mut result: Vec<String> = Vec::new();
    for pattern in &list {
        if pattern.starts_with('!') {
            return None;
        }
        for name in all
            .iter()
            .filter(|a| pattern::match_list(a, pattern, Case::Sensitive) == ListMatch::Matched)
        {
            if !result.iter().any(|r| r == name) {
                result.push(name.to_string());
            }
        }
    }
    Some(result)
}

/// OpenSSH's kex_names_cat: `a`, then each name of `b` not already present.
pub(super) fn names_cat<'n>(a: &[&str], b: impl Iterator<Item = &'n str>) -> Vec<String> {
    let mut out: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    for name in b.take_while(|n| !n.is_empty()) {
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    out
}
