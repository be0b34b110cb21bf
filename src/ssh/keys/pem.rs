//! Legacy PEM keys: `RSA PRIVATE KEY` (PKCS#1), `EC PRIVATE KEY` (SEC1) and `DSA PRIVATE KEY`, plain
//! or encrypted the OpenSSL way (`Proc-Type: 4,ENCRYPTED` and `DEK-Info`), and the unencrypted
//! `PRIVATE KEY` (PKCS#8) block, which shares their armour.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use russh::keys::Algorithm;
use zeroize::Zeroizing;

use super::KeyFormat;
use super::analysis::Analysis;
use super::armour::{Armour, misplaced_pem_headers};

pub(super) fn analyze(block: &Armour) -> Analysis {
    let kind = block.label.strip_suffix("PRIVATE KEY").unwrap_or_default().trim();
    let proc_encrypted = block.header("Proc-Type").is_some_and(|v| v.contains("ENCRYPTED"));
    let dek = block.header("DEK-Info");
    let encrypted = proc_encrypted || dek.is_some();
    let format = match kind {
        "RSA" => KeyFormat::PemRsa { encrypted },
        "EC" => KeyFormat::PemEc { encrypted },
        "DSA" => KeyFormat::PemDsa { encrypted },
        _ => KeyFormat::Pkcs8,
    };
    let mut a = Analysis::new(format);
    a.text = block.reassemble();
    a.encrypted = matches!(
        format,
        KeyFormat::PemRsa { encrypted: true }
            | KeyFormat::PemEc { encrypted: true }
            | KeyFormat::PemDsa { encrypted: true }
    );
    let body = block.decode();
    a.damage = body.as_ref().err().cloned();
    if format == KeyFormat::Pkcs8 && a.damage.is_none() {
        a.damage = misplaced_pem_headers(block, format);
    }
    match format {
        KeyFormat::PemDsa { .. } => a.algorithm = Some(Algorithm::Dsa),
        KeyFormat::PemRsa { encrypted: true } | KeyFormat::PemEc { encrypted: true } => {
            match dek.and_then(|d| d.split_once(',')) {
                None => a.damage = Some("its DEK-Info header (cipher and IV) is missing".into()),
                Some((cipher, iv)) => {
                    let (cipher, iv) = (cipher.trim(), iv.trim());
                    match legacy_pem_cipher(cipher) {
                        None => a.unsupported_cipher = Some(cipher.to_string()),
                        Some(c) if iv.len() != 2 * c.block || !iv.chars().all(|c| c.is_ascii_hexdigit()) => {
                            a.damage = Some("its DEK-Info header has a malformed IV".into());
                        }
                        Some(c) if body.as_ref().is_ok_and(|b| b.is_empty() || b.len() % c.block != 0) => {
                            a.damage = Some("its encrypted data is cut short".into());
                        }
                        Some(_) => a.dek = Some((cipher.to_string(), iv.to_string())),
                    }
                }
            }
        }
        _ => {}
    }
    if let Ok(der) = body {
        a.der = der;
    }
    a
}

/// DER as PEM text, for russh.
pub(super) fn pem_text(label: &str, der: &[u8]) -> Zeroizing<String> {
    let body = Zeroizing::new(STANDARD.encode(der));
    Zeroizing::new(format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.as_str()
    ))
}

/// A legacy PEM cipher (`DEK-Info`) OpenSSL writes and OpenSSH reads: key length and block
/// (= IV) size.
struct LegacyCipher {
    key: usize,
    block: usize,
}

fn legacy_pem_cipher(name: &str) -> Option<LegacyCipher> {
    let (key, block) = match name.to_ascii_uppercase().as_str() {
        "AES-128-CBC" => (16, 16),
        "AES-192-CBC" => (24, 16),
        "AES-256-CBC" => (32, 16),
        "DES-EDE3-CBC" => (24, 8),
        _ => return None,
    };
    Some(LegacyCipher { key, block })
}

/// Decrypts a legacy PEM body (`Proc-Type: 4,ENCRYPTED`): the key comes from OpenSSL's
/// EVP_BytesToKey with MD5, one iteration, the IV's first 8 bytes as salt.
pub(super) fn decrypt_legacy(
    body: &[u8],
    cipher: &str,
    iv_hex: &str,
    pass: &str,
) -> Result<Zeroizing<Vec<u8>>, russh::keys::Error> {
    use aes::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
    use md5::{Digest, Md5};
    let spec = legacy_pem_cipher(cipher).ok_or(russh::keys::Error::CouldNotReadKey)?;
    let iv = data_encoding::HEXLOWER_PERMISSIVE.decode(iv_hex.as_bytes())?;
    let salt = iv.get(..8).ok_or(russh::keys::Error::CouldNotReadKey)?;
    let mut key = Zeroizing::new(Vec::with_capacity(spec.key + 16));
    let mut block = Zeroizing::new(Vec::new());
    while key.len() < spec.key {
        let mut md5 = Md5::new();
        md5.update(block.as_slice());
        md5.update(pass.as_bytes());
        md5.update(salt);
        *block = md5.finalize().to_vec();
        key.extend_from_slice(&block);
    }
    key.truncate(spec.key);
    let mut buf = Zeroizing::new(body.to_vec());
    let bad_key = |_| russh::keys::Error::CouldNotReadKey;
    let len = match cipher.to_ascii_uppercase().as_str() {
        "AES-128-CBC" => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)?
            .len(),
        "AES-192-CBC" => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)?
            .len(),
        "AES-256-CBC" => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)?
            .len(),
        _ => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)?
            .len(),
    };
    buf.truncate(len);
    Ok(buf)
}
