//! What can be told about key text before any passphrase: its format, whether it is encrypted,
//! damage, unsupported ciphers and costly key derivations, and the public key where it is in clear.

use russh::keys::{Algorithm, PublicKey};
use zeroize::Zeroizing;

use super::armour::find_armour;
use super::{KeyFormat, NAME_CHARS, algorithm_name, openssh, pem, pkcs8, printable, putty, sshcom, usable};

/// What can be told about key text without a passphrase.
pub(super) struct Analysis {
    pub(super) format: KeyFormat,
    pub(super) encrypted: bool,
    /// The format (or its version) is one russh cannot decode at all.
    pub(super) unsupported_format: bool,
    /// The key is encrypted with something russh cannot decrypt (named).
    pub(super) unsupported_cipher: Option<String>,
    /// The key algorithm as stated in clear (OpenSSH and PuTTY headers, PEM DSA).
    pub(super) algorithm: Option<Algorithm>,
    /// The public key, where the file holds it in clear.
    pub(super) public: Option<PublicKey>,
    /// Damage found in the container, before any decryption.
    pub(super) damage: Option<String>,
    /// The passphrase derivation asks for more work than any key tool writes: what it
    /// asks for ("4294967295 bcrypt rounds") and roughly how many seconds it would take.
    pub(super) kdf_cost: Option<(String, u64)>,
    /// The key re-assembled for russh: the armour lines and the trimmed body.
    pub(super) text: Zeroizing<String>,
    /// The armoured body, decoded (OpenSSH, PEM and PKCS#8 keys whose armour is sound).
    pub(super) der: Zeroizing<Vec<u8>>,
    /// A legacy PEM key's `DEK-Info`: the cipher and the IV (hex).
    pub(super) dek: Option<(String, String)>,
}

impl Analysis {
    pub(super) fn new(format: KeyFormat) -> Self {
        Analysis {
            format,
            encrypted: false,
            unsupported_format: false,
            unsupported_cipher: None,
            algorithm: None,
            public: None,
            damage: None,
            kdf_cost: None,
            text: Zeroizing::new(String::new()),
            der: Zeroizing::new(Vec::new()),
            dek: None,
        }
    }

    pub(super) fn unknown(detail: impl Into<String>) -> Self {
        let mut a = Analysis::new(KeyFormat::Unknown);
        a.damage = Some(detail.into());
        a
    }

    /// The stated algorithm, if sqltun cannot sign with it.
    pub(super) fn unusable_algorithm(&self) -> Option<String> {
        let algorithm = self
            .public
            .as_ref()
            .map(PublicKey::algorithm)
            .or_else(|| self.algorithm.clone())?;
        (!usable(&algorithm)).then(|| algorithm_name(&algorithm))
    }
}

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
