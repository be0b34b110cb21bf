//! The type of what can be told about key text before any passphrase; each format module fills it in.

use russh::keys::{Algorithm, PublicKey};
use zeroize::Zeroizing;

use super::{KeyFormat, algorithm_name, usable};

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
