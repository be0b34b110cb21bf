//! What can be told about key text before any passphrase: its format, whether it is encrypted,
//! damage, unsupported ciphers and costly key derivations, and the public key where it is in clear.

use russh::keys::PublicKey;

use super::analysis::Analysis;
use super::armour::find_armour;
use super::{KeyFormat, NAME_CHARS, openssh, pem, pkcs8, printable, putty, sshcom};

pub(super) fn analyze(text: &str) -> Analysis {
    // A byte-order mark (Windows editors) is not whitespace to trim().
    let lines: Vec<&str> = text
        .trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let Some(first) = lines.first() else {
        return Analysis::unknown("the file is empty");
    };
    if first.starts_with("PuTTY-User-Key-File-") {
        return putty::analyze(&lines);
    }
    let private = ["OPENSSH", "RSA", "EC", "DSA", "", "ENCRYPTED"];
    let found = find_armour(&lines, "-----", |label| {
        label
            .strip_suffix("PRIVATE KEY")
            .is_some_and(|kind| private.contains(&kind.trim_end()))
    });
    if let Some(block) = found {
        return match block.label.strip_suffix("PRIVATE KEY").unwrap_or_default().trim() {
            "OPENSSH" => openssh::analyze(&block),
            "ENCRYPTED" => pkcs8::analyze_encrypted(&block),
            _ => pem::analyze(&block),
        };
    }
    if let Some(block) = find_armour(&lines, "----", |l| l == "SSH2 ENCRYPTED PRIVATE KEY") {
        return sshcom::analyze(&block);
    }
    let public_armour = find_armour(&lines, "-----", |l| l.ends_with("PUBLIC KEY"))
        .or_else(|| find_armour(&lines, "----", |l| l == "SSH2 PUBLIC KEY"));
    if public_armour.is_some() {
        return Analysis::new(KeyFormat::PublicKey);
    }
    if let Some(line) = lines.iter().find(|l| !l.starts_with('#'))
        && looks_like_public_line(line)
    {
        let mut a = Analysis::new(KeyFormat::PublicKey);
        a.public = PublicKey::from_openssh(line).ok();
        return a;
    }
    if let Some(other) = find_armour(&lines, "-----", |_| true) {
        return Analysis::unknown(format!(
            "it holds a PEM \"{}\" block, not a private key",
            printable(&other.label, NAME_CHARS)
        ));
    }
    Analysis::unknown("it has no private-key header such as -----BEGIN OPENSSH PRIVATE KEY-----")
}

/// `ssh-ed25519 AAAA... comment` (also certificates and FIDO keys).
fn looks_like_public_line(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
        return false;
    };
    let kind_ok = kind.chars().all(|c| c.is_ascii_alphanumeric() || "@.-_".contains(c))
        && ["ssh-", "ecdsa-", "sk-", "rsa-"].iter().any(|p| kind.starts_with(p));
    kind_ok && blob.starts_with("AAAA")
}

pub(super) fn parse_public_line(text: &str) -> Option<PublicKey> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    PublicKey::from_openssh(line).ok()
}
