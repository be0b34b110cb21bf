//! PKCS#8 keys (`PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`): the encryption scheme named and its cost
//! bounded before a passphrase is asked for, and EC keys handed to [`super::ec`].

use ::pkcs8::der::asn1::AnyRef;
use ::pkcs8::der::{self, Decode as _, ErrorKind, Reader as _};
use ::pkcs8::pkcs5::pbes2;
use ::pkcs8::spki::AlgorithmIdentifierRef;
use ::pkcs8::{EncryptedPrivateKeyInfoRef, ObjectIdentifier};
use russh::keys::{PrivateKey, decode_secret_key};

use super::analysis::Analysis;
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
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

pub(super) fn analyze_encrypted(block: &Armour) -> Analysis {
    let mut a = Analysis::new(KeyFormat::Pkcs8Encrypted);
    a.text = block.reassemble();
    a.encrypted = true;
    let der = block.decode();
    match der.as_ref().map_err(Clone::clone).and_then(|der| scheme(der)) {
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

/// What [`scheme`] finds in an EncryptedPrivateKeyInfo.
struct Scheme {
    /// "PBES2 (scrypt, AES-256-CBC)"
    name: String,
    /// Whether the pkcs5 crate (which russh's pkcs8 uses) can decrypt it.
    supported: bool,
    /// A key derivation beyond the bounds: what it asks for, and roughly how many seconds.
    cost: Option<(String, u64)>,
}

impl Scheme {
    fn unsupported(name: String) -> Scheme {
        Scheme {
            name,
            supported: false,
            cost: None,
        }
    }
}

/// The encryption scheme of an EncryptedPrivateKeyInfo (RFC 5208/8018) as the pkcs8 and pkcs5
/// crates read it; Err describes structural damage. A scheme they do not know (PBES1 under a PKCS#12
/// OID, an unknown PRF, KDF or cipher) is named from the OIDs in its algorithm identifiers.
fn scheme(doc: &[u8]) -> Result<Scheme, String> {
    let damaged = || "its ASN.1 (DER) structure is damaged or cut short".to_string();
    match EncryptedPrivateKeyInfoRef::from_der(doc) {
        Ok(info) => Ok(match info.encryption_algorithm.pbes2() {
            Some(params) => Scheme {
                name: format!(
                    "PBES2 ({}, {})",
                    kdf_name(&params.kdf),
                    oid_name(&params.encryption.oid())
                ),
                supported: true,
                cost: kdf_cost(&params.kdf),
            },
            None => Scheme::unsupported(oid_name(&info.encryption_algorithm.oid())),
        }),
        Err(e) => match e.kind() {
            ErrorKind::TrailingData { .. } => Err("it has unexpected data after the key".into()),
            _ => unknown_scheme(doc).map(Scheme::unsupported).ok_or_else(damaged),
        },
    }
}

/// The name of a scheme the crates refused, if they refused it for an OID they do not know (rather
/// than for damage): read from the bare algorithm identifiers, `SEQUENCE { AlgorithmIdentifier,
/// OCTET STRING }`, and for PBES2 its KDF (with PBKDF2's PRF) and cipher.
fn unknown_scheme(doc: &[u8]) -> Option<String> {
    let outer = AnyRef::from_der(doc).ok()?;
    let algorithm = outer
        .sequence(|r| {
            let algorithm = AlgorithmIdentifierRef::decode(r)?;
            r.decode::<AnyRef<'_>>()?;
            Ok::<_, der::Error>(algorithm)
        })
        .ok()?;
    if algorithm.oid != pbes2::PBES2_OID {
        // PBES1 and PKCS#12 PBE: none is decrypted here.
        return Some(oid_name(&algorithm.oid));
    }
    let (kdf, cipher) = algorithm
        .parameters?
        .sequence(|r| {
            let kdf = AlgorithmIdentifierRef::decode(r)?;
            Ok::<_, der::Error>((kdf, AlgorithmIdentifierRef::decode(r)?))
        })
        .ok()?;
    let unknown = |e: der::Error| match e.kind() {
        ErrorKind::OidUnknown { oid } => Some(oid),
        _ => None,
    };
    let (kdf, kdf_known) = match kdf.oid {
        pbes2::PBKDF2_OID => match pbes2::Pbkdf2Params::try_from(kdf.parameters?) {
            Ok(params) => (format!("PBKDF2-{}", oid_name(&params.prf.oid())), true),
            Err(e) => (format!("PBKDF2-{}", oid_name(&unknown(e)?)), false),
        },
        pbes2::SCRYPT_OID => ("scrypt".to_string(), true),
        oid => (oid_name(&oid), false),
    };
    let cipher_known = match pbes2::EncryptionScheme::try_from(cipher) {
        Ok(_) => true,
        Err(e) => unknown(e).is_none(),
    };
    (!kdf_known || !cipher_known).then(|| format!("PBES2 ({kdf}, {})", oid_name(&cipher.oid)))
}

/// "PBKDF2-HMAC-SHA256", "scrypt".
fn kdf_name(kdf: &pbes2::Kdf) -> String {
    match kdf {
        pbes2::Kdf::Pbkdf2(params) => format!("PBKDF2-{}", oid_name(&params.prf.oid())),
        other => oid_name(&other.oid()),
    }
}

/// The cost a PBKDF2 or scrypt derivation asks for, if it is beyond the bounds, with roughly
/// how many seconds it would take.
fn kdf_cost(kdf: &pbes2::Kdf) -> Option<(String, u64)> {
    if let Some(params) = kdf.pbkdf2() {
        let iterations = u64::from(params.iteration_count);
        return (iterations > MAX_PBKDF2_ITERATIONS).then(|| {
            let seconds = iterations / 1_000_000 * PBKDF2_MS_PER_MILLION_ITERATIONS / 1000;
            (format!("{iterations} PBKDF2 iterations"), seconds)
        });
    }
    // scrypt (RFC 7914): memory 128·N·r bytes, work that times p.
    let params = kdf.scrypt()?;
    let (n, r, p) = (
        params.cost_parameter,
        u64::from(params.block_size),
        u64::from(params.parallelization),
    );
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

/// Names for the OIDs that show up in key files.
pub(super) fn oid_name(oid: &ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
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
