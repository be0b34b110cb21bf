//! The OpenSSH private-key format (`-----BEGIN OPENSSH PRIVATE KEY-----`, PROTOCOL.key):
//! `"openssh-key-v1\0"`, string ciphername, string kdfname, string kdfoptions, uint32 N, N public
//! keys in clear, then the (possibly encrypted) private section.
//!
//! ssh-key decodes these keys: the container, the cipher and KDF, the decryption and the checks
//! (checkints, public half, padding). This module reads fields by hand in two places only, both
//! with ssh-key's own wire decoders:
//! * [`Header::read`]: the header of a file ssh-key cannot parse, because it is cut short (its
//!   `PrivateKey::from_bytes` needs the whole file) or names a cipher or KDF ssh-key does not know,
//!   so that the error still says whether the key is encrypted, with what, and whose it is.
//! * [`decode_ecdsa_section`]: the private section of an ECDSA key. ssh-key refuses a P-256 private
//!   scalar shorter than 32 bytes (`EcdsaPrivateKey::decode` has a 32-byte minimum), while
//!   ssh-keygen writes the scalar as an mpint, which drops leading zeros: one P-256 key in 256 is
//!   stored with 31 bytes, and OpenSSH reads it. ssh-key can neither be told to accept it nor hands
//!   back the decrypted section after refusing it, so for ECDSA keys the section is decrypted with
//!   ssh-key's KDF and cipher and decoded here, the scalar widened to the field width.

use russh::keys::{Algorithm, PrivateKey, PublicKey, ssh_key};
use ssh_key::encoding::{Decode, Encode};
use ssh_key::private::KeypairData;
use ssh_key::public::KeyData;
use ssh_key::{Error, Kdf};
use zeroize::Zeroizing;

use super::analysis::Analysis;
use super::armour::{Armour, misplaced_pem_headers};
use super::ec::scalar_to_width;
use super::{BCRYPT_MS_PER_ROUND, KeyFormat, MAX_BCRYPT_ROUNDS};

/// Ciphers the OpenSSH private-key format may name that russh can decrypt.
const OPENSSH_CIPHERS: &[&str] = &[
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "3des-cbc",
];

const MAGIC: &[u8] = b"openssh-key-v1\0";

/// Length of the authentication tag of the AEAD ciphers (aes-gcm, chacha20-poly1305).
const TAG_LEN: usize = 16;

pub(super) fn analyze(block: &Armour) -> Analysis {
    let mut a = Analysis::new(KeyFormat::OpenSsh { encrypted: false });
    a.text = block.reassemble();
    // Damage to the armour itself (no END line, stray characters) says best what is wrong;
    // the header is still read from what decodes, for the format and public key.
    let whole = block.decode();
    let header = match Header::read(&block.decode_prefix()) {
        Ok(header) => header,
        Err(damage) => {
            a.damage = Some(whole.err().unwrap_or_else(|| damage.into()));
            return a;
        }
    };
    let cipher = header.cipher.as_str();
    a.encrypted = cipher != "none";
    a.format = KeyFormat::OpenSsh { encrypted: a.encrypted };
    if a.encrypted && !OPENSSH_CIPHERS.contains(&cipher) {
        a.unsupported_cipher = Some(cipher.to_string());
    } else if a.encrypted && header.kdf_name != "bcrypt" {
        a.unsupported_cipher = Some(format!("{cipher} with key derivation {}", header.kdf_name));
    }
    let mut kdf_damage = None;
    if a.encrypted
        && let Some(Kdf::Bcrypt { salt, rounds }) = &header.kdf
    {
        if salt.is_empty() || *rounds == 0 {
            // bcrypt_pbkdf refuses these with the same error as a wrong passphrase.
            kdf_damage = Some(format!(
                "its bcrypt key derivation is invalid ({} bytes of salt, {rounds} rounds)",
                salt.len()
            ));
        } else if u64::from(*rounds) > MAX_BCRYPT_ROUNDS {
            let seconds = u64::from(*rounds) * BCRYPT_MS_PER_ROUND / 1000;
            a.kdf_cost = Some((format!("{rounds} bcrypt rounds"), seconds));
        }
    }
    a.public = header.public;
    // The container parse ssh-key does, short of decrypting; an unencrypted key is decoded
    // whole, as it will be when loaded.
    a.damage = match whole {
        Err(damage) => Some(damage),
        Ok(full) => {
            let parsed = if a.encrypted {
                PrivateKey::from_bytes(&full).map(drop)
            } else {
                decode(&full, None).map(drop)
            };
            a.der = full;
            parsed
                .err()
                .map(|e| format!("its key data is cut short or damaged ({e})"))
                .or(kdf_damage)
                .or_else(|| misplaced_pem_headers(block, a.format))
        }
    };
    a
}

/// The clear header of an OpenSSH key, as far as it can be read.
struct Header {
    cipher: String,
    kdf_name: String,
    /// The KDF and its options, if ssh-key knows the KDF.
    kdf: Option<Kdf>,
    public: Option<PublicKey>,
}

impl Header {
    /// Reads the header field by field (see the module docs for why); Err says what is missing.
    fn read(data: &[u8]) -> Result<Header, &'static str> {
        let mut r = data.strip_prefix(MAGIC).ok_or("it lacks the openssh-key-v1 header")?;
        let cut = |_| "its header is cut short";
        let cipher = String::decode(&mut r).map_err(cut)?;
        let kdf = Kdf::decode(&mut { r }).ok();
        let kdf_name = String::decode(&mut r).map_err(cut)?;
        let public = Vec::<u8>::decode(&mut r)
            .and_then(|_options| u32::decode(&mut r))
            .and_then(|_count| Vec::<u8>::decode(&mut r))
            .ok()
            .and_then(|blob| PublicKey::from_bytes(&blob).ok());
        Ok(Header {
            cipher,
            kdf_name,
            kdf,
            public,
        })
    }
}

/// An OpenSSH-format key, decoded and decrypted by ssh-key (any `ssh-keygen -Z` cipher,
/// `3des-cbc` included), but for the private section of ECDSA keys (see the module docs).
pub(super) fn decode(data: &[u8], pass: Option<&str>) -> Result<PrivateKey, Error> {
    let key = match PrivateKey::from_bytes(data) {
        Ok(key) => key,
        // ssh-key decodes an unencrypted key's private section with the container.
        Err(e) => return unencrypted_ecdsa(data).unwrap_or(Err(e)),
    };
    if !key.is_encrypted() {
        return Ok(key);
    }
    let pass = pass.ok_or(Error::Encrypted)?;
    if !matches!(key.algorithm(), Algorithm::Ecdsa { .. }) {
        return key.decrypt(pass);
    }
    let cipher = key.cipher();
    let (secret, iv) = key.kdf().derive_key_and_iv(cipher, pass)?;
    let mut plain = Zeroizing::new(key.key_data().encrypted().ok_or(Error::Crypto)?.to_vec());
    // An AEAD tag ends the container (ssh-key checked that nothing follows it); the parsed key
    // does not hand it out.
    let tag = match cipher.has_tag() {
        true => {
            let tail = data.get(data.len().saturating_sub(TAG_LEN)..).unwrap_or_default();
            Some(ssh_key::cipher::Tag::try_from(tail).map_err(|_| Error::Crypto)?)
        }
        false => None,
    };
    cipher.decrypt(&secret, &iv, &mut plain, tag)?;
    decode_ecdsa_section(&plain, key.public_key().key_data(), cipher.block_size())
}

/// An unencrypted ECDSA key that ssh-key refused: its private section, decoded here. None if the
/// key is not one (the error ssh-key gave then stands).
fn unencrypted_ecdsa(data: &[u8]) -> Option<Result<PrivateKey, Error>> {
    let mut r = data.strip_prefix(MAGIC)?;
    let cipher = String::decode(&mut r).ok()?;
    let kdf = Kdf::decode(&mut r).ok()?;
    if cipher != "none" || kdf.is_some() || u32::decode(&mut r).ok()? != 1 {
        return None;
    }
    let public = PublicKey::from_bytes(&Vec::<u8>::decode(&mut r).ok()?).ok()?;
    let section = Zeroizing::new(Vec::<u8>::decode(&mut r).ok()?);
    if !r.is_empty() || !public.key_data().is_ecdsa() {
        return None;
    }
    Some(decode_ecdsa_section(&section, public.key_data(), 8))
}

/// The decrypted private section of an ECDSA key: checkint twice, the key pair (string kind,
/// string curve, string Q, mpint d), the comment, padding 1, 2, 3… The scalar d is widened to the
/// field width and the key pair handed to ssh-key; the other checks are those ssh-key makes.
fn decode_ecdsa_section(section: &[u8], public: &KeyData, block_size: usize) -> Result<PrivateKey, Error> {
    let short = || Error::from(ssh_key::encoding::Error::Length);
    if block_size == 0 || !section.len().is_multiple_of(block_size) {
        return Err(short());
    }
    let mut r = section;
    if u32::decode(&mut r)? != u32::decode(&mut r)? {
        // A wrong passphrase (or damage): the two checkints differ.
        return Err(Error::Crypto);
    }
    let (kind, curve, point) = (
        Vec::<u8>::decode(&mut r)?,
        Vec::<u8>::decode(&mut r)?,
        Vec::<u8>::decode(&mut r)?,
    );
    let scalar = Zeroizing::new(Vec::<u8>::decode(&mut r)?);
    let width = match curve.as_slice() {
        b"nistp256" => 32,
        b"nistp384" => 48,
        b"nistp521" => 66,
        _ => return Err(Error::AlgorithmUnknown),
    };
    let scalar = scalar_to_width(&scalar, width).ok_or(Error::FormatEncoding)?;
    let mut blob = Zeroizing::new(Vec::new());
    for field in [&kind, &curve, &point, &*scalar] {
        field.as_slice().encode(&mut *blob)?;
    }
    let keypair = KeypairData::decode(&mut blob.as_slice())?;
    if *public != KeyData::try_from(&keypair)? {
        return Err(Error::PublicKey);
    }
    let comment = String::decode(&mut r)?;
    let expected = (1..=u8::MAX).take(r.len());
    if r.len() >= block_size || !r.iter().copied().eq(expected) {
        return Err(Error::FormatEncoding);
    }
    PrivateKey::new(keypair, comment)
}
