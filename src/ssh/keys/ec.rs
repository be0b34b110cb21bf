//! EC private keys of every format, through SEC1: the scalar is normalised to the field width
//! (32, 48, 66 bytes), since writers differ on its leading zeros and ssh-key wants it exact.

use russh::keys::{PrivateKey, decode_secret_key, ssh_key};
use zeroize::Zeroizing;

use super::pem::pem_text;

/// A SEC1 ECPrivateKey (RFC 5915) on a named NIST curve (given here, or in the key). The
/// scalar is normalised to the field width first: writers differ on leading zeros, and a
/// scalar that is one byte short (one key in 256) is still the same key. Keys with explicit
/// curve parameters go to russh.
pub(super) fn decode_sec1(
    der: &[u8],
    curve: Option<pkcs8::ObjectIdentifier>,
) -> Result<PrivateKey, russh::keys::Error> {
    use ssh_key::private::{EcdsaKeypair, KeypairData};
    // The sec1 crate reads named curves only.
    let key = match sec1::EcPrivateKey::try_from(der) {
        Ok(key) => key,
        Err(_) if curve.is_none() => return decode_secret_key(&pem_text("EC PRIVATE KEY", der), None),
        Err(e) => return Err(e.into()),
    };
    let Some(curve) = curve.or_else(|| key.parameters.and_then(|p| p.named_curve())) else {
        return decode_secret_key(&pem_text("EC PRIVATE KEY", der), None);
    };
    let width = match curve.to_string().as_str() {
        "1.2.840.10045.3.1.7" => 32,
        "1.3.132.0.34" => 48,
        "1.3.132.0.35" => 66,
        _ => return Err(russh::keys::Error::UnknownAlgorithm(curve)),
    };
    let scalar = scalar_to_width(key.private_key, width).ok_or(russh::keys::Error::KeyIsCorrupt)?;
    let key = sec1::EcPrivateKey {
        private_key: &scalar,
        ..key
    };
    // The conversions check the curve named in the key and the public key it holds, if any.
    let keypair = match width {
        32 => {
            let sk = p256::SecretKey::try_from(key)?;
            EcdsaKeypair::NistP256 {
                public: sk.public_key().into(),
                private: sk.into(),
            }
        }
        48 => {
            let sk = p384::SecretKey::try_from(key)?;
            EcdsaKeypair::NistP384 {
                public: sk.public_key().into(),
                private: sk.into(),
            }
        }
        _ => {
            let sk = p521::SecretKey::try_from(key)?;
            EcdsaKeypair::NistP521 {
                public: sk.public_key().into(),
                private: sk.into(),
            }
        }
    };
    Ok(PrivateKey::new(KeypairData::Ecdsa(keypair), "")?)
}

/// A big-endian scalar at exactly `width` bytes: leading zeros stripped, then left-padded;
/// None if it does not fit.
pub(super) fn scalar_to_width(scalar: &[u8], width: usize) -> Option<Zeroizing<Vec<u8>>> {
    let start = scalar.iter().position(|&b| b != 0).unwrap_or(scalar.len());
    let digits = scalar.get(start..)?;
    let pad = width.checked_sub(digits.len())?;
    let mut out = Zeroizing::new(vec![0u8; width]);
    out.get_mut(pad..)?.copy_from_slice(digits);
    Some(out)
}
