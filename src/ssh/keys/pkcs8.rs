//! PKCS#8 keys (`PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`): the encryption scheme named and its cost
//! bounded before a passphrase is asked for, and EC keys handed to [`super::ec`].

use russh::keys::PrivateKey;
use russh::keys::decode_secret_key;

use super::analyze::Analysis;
use super::armour::{Armour, misplaced_pem_headers};
use super::ec::decode_sec1;
use super::pem::pem_text;
use super::{KeyFormat, MAX_PBKDF2_ITERATIONS, MAX_SCRYPT_MEMORY, MAX_SCRYPT_WORK};
use super::{PBKDF2_MS_PER_MILLION_ITERATIONS, SCRYPT_MS_PER_MIB};

/// Unencrypted PKCS#8: EC keys are decoded here (their scalar normalised), others by russh.
pub(super) fn decode(der: &[u8]) -> Result<PrivateKey, russh::keys::Error> {
    let info = ::pkcs8::PrivateKeyInfoRef::try_from(der)?;
    if info.algorithm.oid == EC_PUBLIC_KEY {
        let curve = info.algorithm.parameters_oid()?;
        return decode_sec1(info.private_key.as_bytes(), Some(curve));
    }
    decode_secret_key(&pem_text("PRIVATE KEY", der), None)
}

/// Encrypted PKCS#8, decrypted with the pkcs5 crate (through pkcs8), then as [`decode`].
pub(super) fn decode_encrypted(der: &[u8], pass: &str) -> Result<PrivateKey, russh::keys::Error> {
    let info = ::pkcs8::EncryptedPrivateKeyInfoRef::try_from(der)?;
    decode(info.decrypt(pass)?.as_bytes())
}

/// id-ecPublicKey, the PKCS#8 algorithm of every EC key.
const EC_PUBLIC_KEY: ::pkcs8::ObjectIdentifier = ::pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

pub(super) fn analyze_encrypted(block: &Armour) -> Analysis {
    let mut a = Analysis::new(KeyFormat::Pkcs8Encrypted);
    a.text = block.reassemble();
    a.encrypted = true;
    let der = block.decode();
    match der.as_ref().map_err(Clone::clone).and_then(|der| pkcs8_scheme(der)) {
        Ok(scheme) if scheme.supported => {
            a.damage = misplaced_pem_headers(block, a.format);
            a.kdf_cost = scheme.cost;
        }
        Ok(scheme) => a.unsupported_cipher = Some(scheme.name),
        Err(damage) => a.damage = Some(damage),
    }
    if let Ok(der) = der {
        a.der = der;
    }
    a
}

/// What [`pkcs8_scheme`] finds in an EncryptedPrivateKeyInfo.
struct Pkcs8Scheme {
    /// "PBES2 (scrypt, AES-256-CBC)"
    name: String,
    /// Whether russh (the pkcs5 crate) can decrypt it.
    supported: bool,
    /// A key derivation beyond the bounds: what it asks for, and roughly how many seconds.
    cost: Option<(String, u64)>,
}

/// A DER INTEGER's contents as an unsigned number (saturating; None if negative or empty).
fn der_uint(contents: &[u8]) -> Option<u64> {
    if contents.first().is_none_or(|&b| b & 0x80 != 0) {
        return None;
    }
    Some(contents.iter().fold(0u64, |n, &b| {
        if n > u64::MAX >> 8 {
            u64::MAX
        } else {
            (n << 8) | u64::from(b)
        }
    }))
}

const INTEGER: u8 = 0x02;

/// PBKDF2-params: the iteration count beyond the bound, if it is.
fn pbkdf2_cost(fields: &[u8]) -> Option<(String, u64)> {
    let (_salt, rest) = der_tagged(fields, OCTET_STRING)?;
    let (count, _) = der_tagged(rest, INTEGER)?;
    let iterations = der_uint(count)?;
    (iterations > MAX_PBKDF2_ITERATIONS).then(|| {
        let seconds = iterations / 1_000_000 * PBKDF2_MS_PER_MILLION_ITERATIONS / 1000;
        (format!("{iterations} PBKDF2 iterations"), seconds)
    })
}

/// scrypt-params (RFC 7914): salt, N, r, p; the cost beyond the bounds, if it is.
fn scrypt_cost(params: &[u8]) -> Option<(String, u64)> {
    let (fields, _) = der_tagged(params, SEQUENCE)?;
    let (_salt, rest) = der_tagged(fields, OCTET_STRING)?;
    let (n, rest) = der_tagged(rest, INTEGER)?;
    let (r, rest) = der_tagged(rest, INTEGER)?;
    let (p, _) = der_tagged(rest, INTEGER)?;
    let (n, r, p) = (der_uint(n)?, der_uint(r)?, der_uint(p)?);
    let memory = n.saturating_mul(r).saturating_mul(128);
    let work = memory.saturating_mul(p);
    if memory <= MAX_SCRYPT_MEMORY && work <= MAX_SCRYPT_WORK {
        return None;
    }
    let seconds = work / (1 << 20) * SCRYPT_MS_PER_MIB / 1000;
    Some((
        format!("scrypt with N={n}, r={r}, p={p} ({} MiB of memory)", memory >> 20),
        seconds,
    ))
}

/// Next DER element: (tag, contents, rest), or None if cut short.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = rest
            .get(..n)?
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest.get(n..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// Like [`der`], but the element must carry `tag`.
fn der_tagged(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = der(input)?;
    (found == tag).then_some((contents, rest))
}

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;

/// Encryption scheme of an EncryptedPrivateKeyInfo (RFC 5208/8018) and whether
/// russh (the pkcs5 crate) can decrypt it; Err describes structural damage.
fn pkcs8_scheme(doc: &[u8]) -> Result<Pkcs8Scheme, String> {
    let damaged = || "its ASN.1 (DER) structure is damaged or cut short".to_string();
    let (info, trailing) = der_tagged(doc, SEQUENCE).ok_or_else(damaged)?;
    if !trailing.is_empty() {
        return Err("it has unexpected data after the key".into());
    }
    let (alg, rest) = der_tagged(info, SEQUENCE).ok_or_else(damaged)?;
    der_tagged(rest, OCTET_STRING).ok_or_else(damaged)?;
    let (scheme, params) = der_tagged(alg, OID).ok_or_else(damaged)?;
    let scheme = oid_string(scheme);
    if scheme != "1.2.840.113549.1.5.13" {
        return Ok(Pkcs8Scheme {
            name: oid_name(&scheme),
            supported: false,
            cost: None,
        });
    }
    let (pbes2, _) = der_tagged(params, SEQUENCE).ok_or_else(damaged)?;
    let (kdf, rest) = der_tagged(pbes2, SEQUENCE).ok_or_else(damaged)?;
    let (cipher, _) = der_tagged(rest, SEQUENCE).ok_or_else(damaged)?;
    let (kdf_oid, kdf_params) = der_tagged(kdf, OID).ok_or_else(damaged)?;
    let (cipher_oid, _) = der_tagged(cipher, OID).ok_or_else(damaged)?;
    let (kdf_oid, cipher_oid) = (oid_string(kdf_oid), oid_string(cipher_oid));
    let mut cost = None;
    let (kdf_name, kdf_ok) = match kdf_oid.as_str() {
        "1.2.840.113549.1.5.12" => {
            // PBKDF2-params: salt, iterations, [keyLength], [prf] (default HMAC-SHA1).
            let (fields, _) = der_tagged(kdf_params, SEQUENCE).ok_or_else(damaged)?;
            cost = pbkdf2_cost(fields);
            let mut prf = "1.2.840.113549.2.7".to_string();
            let mut rest = fields;
            while let Some((tag, contents, next)) = der(rest) {
                if tag == SEQUENCE {
                    let (oid, _) = der_tagged(contents, OID).ok_or_else(damaged)?;
                    prf = oid_string(oid);
                }
                rest = next;
            }
            let ok = [
                "1.2.840.113549.2.7",
                "1.2.840.113549.2.8",
                "1.2.840.113549.2.9",
                "1.2.840.113549.2.10",
                "1.2.840.113549.2.11",
            ]
            .contains(&prf.as_str());
            (format!("PBKDF2-{}", oid_name(&prf)), ok)
        }
        "1.3.6.1.4.1.11591.4.11" => {
            cost = scrypt_cost(kdf_params);
            ("scrypt".to_string(), true)
        }
        other => (oid_name(other), false),
    };
    let cipher_ok = [
        "2.16.840.1.101.3.4.1.2",
        "2.16.840.1.101.3.4.1.22",
        "2.16.840.1.101.3.4.1.42",
        "2.16.840.1.101.3.4.1.6",
        "2.16.840.1.101.3.4.1.46",
        "1.2.840.113549.3.7",
    ]
    .contains(&cipher_oid.as_str());
    Ok(Pkcs8Scheme {
        name: format!("PBES2 ({kdf_name}, {})", oid_name(&cipher_oid)),
        supported: kdf_ok && cipher_ok,
        cost,
    })
}

/// DER object identifier contents to dotted form.
fn oid_string(bytes: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in bytes {
        value = value.wrapping_shl(7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// Names for the OIDs that show up in key files.
pub(super) fn oid_name(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.5.13" => "PBES2",
        "1.2.840.113549.1.5.3" => "PBES1 (MD5, DES-CBC)",
        "1.2.840.113549.1.5.10" => "PBES1 (SHA1, DES-CBC)",
        "1.2.840.113549.1.12.1.3" => "PKCS#12 PBE (SHA1, 3DES)",
        "1.2.840.113549.1.12.1.6" => "PKCS#12 PBE (SHA1, RC2-40)",
        "1.2.840.113549.2.7" => "HMAC-SHA1",
        "1.2.840.113549.2.8" => "HMAC-SHA224",
        "1.2.840.113549.2.9" => "HMAC-SHA256",
        "1.2.840.113549.2.10" => "HMAC-SHA384",
        "1.2.840.113549.2.11" => "HMAC-SHA512",
        "2.16.840.1.101.3.4.1.2" => "AES-128-CBC",
        "2.16.840.1.101.3.4.1.22" => "AES-192-CBC",
        "2.16.840.1.101.3.4.1.42" => "AES-256-CBC",
        "2.16.840.1.101.3.4.1.6" => "AES-128-GCM",
        "2.16.840.1.101.3.4.1.46" => "AES-256-GCM",
        "1.2.840.113549.3.7" => "DES-EDE3-CBC",
        "1.3.14.3.2.7" => "DES-CBC",
        "1.2.840.10040.4.1" => "DSA",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.3.101.113" => "Ed448",
        "1.3.132.0.10" => "ECDSA secp256k1",
        "1.2.840.10045.3.1.1" => "ECDSA P-192",
        "1.3.132.0.33" => "ECDSA P-224",
        _ => return format!("OID {oid}"),
    };
    name.to_string()
}
