//! The OpenSSH private-key format (`-----BEGIN OPENSSH PRIVATE KEY-----`, PROTOCOL.key).

use russh::keys::{PrivateKey, PublicKey, ssh_key};
use zeroize::Zeroizing;

use super::analyze::Analysis;
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

/// OpenSSH format (PROTOCOL.key): `"openssh-key-v1\0"`, string ciphername,
/// string kdfname, string kdfoptions, uint32 N, N public keys in clear, then
/// the (possibly encrypted) private section.
pub(super) fn analyze(block: &Armour) -> Analysis {
    let data = block.decode_prefix();
    let mut a = Analysis::new(KeyFormat::OpenSsh { encrypted: false });
    a.text = block.reassemble();
    // Damage to the armour itself (no END line, stray characters) says best what is wrong;
    // the header below is still read from what decodes, for the format and public key.
    let whole = block.decode();
    let armour_damage = whole.as_ref().err().cloned();
    let Some(rest) = data.strip_prefix(b"openssh-key-v1\0") else {
        a.damage = Some(armour_damage.unwrap_or_else(|| "it lacks the openssh-key-v1 header".into()));
        return a;
    };
    let mut wire = Wire(rest);
    let (Some(cipher), Some(kdf)) = (wire.string(), wire.string()) else {
        a.damage = Some(armour_damage.unwrap_or_else(|| "its header is cut short".into()));
        return a;
    };
    a.encrypted = cipher != "none";
    a.format = KeyFormat::OpenSsh { encrypted: a.encrypted };
    if a.encrypted && !OPENSSH_CIPHERS.contains(&cipher) {
        a.unsupported_cipher = Some(cipher.to_string());
    } else if a.encrypted && kdf != "bcrypt" {
        a.unsupported_cipher = Some(format!("{cipher} with key derivation {kdf}"));
    }
    // kdfoptions for bcrypt: string salt, uint32 rounds (what ssh-key reads, in order).
    let kdf_options = wire.bytes();
    let mut kdf_damage = None;
    if a.encrypted
        && kdf == "bcrypt"
        && let Some(options) = kdf_options
    {
        let mut options = Wire(options);
        if let (Some(salt), Some(rounds)) = (options.bytes(), options.u32()) {
            if salt.is_empty() || rounds == 0 {
                // bcrypt_pbkdf refuses these with the same error as a wrong passphrase.
                kdf_damage = Some(format!(
                    "its bcrypt key derivation is invalid ({} bytes of salt, {rounds} rounds)",
                    salt.len()
                ));
            } else if u64::from(rounds) > MAX_BCRYPT_ROUNDS {
                let seconds = u64::from(rounds) * BCRYPT_MS_PER_ROUND / 1000;
                a.kdf_cost = Some((format!("{rounds} bcrypt rounds"), seconds));
            }
        }
    }
    if wire.u32().is_some() {
        a.public = wire.bytes().and_then(|b| PublicKey::from_bytes(b).ok());
    }
    // The container parse ssh-key does, short of decrypting; an unencrypted key is decoded
    // whole, as it will be when loaded.
    a.damage = match whole {
        Err(damage) => Some(damage),
        Ok(full) => {
            let parsed = if a.encrypted {
                ssh_key::PrivateKey::from_bytes(&full).map(drop)
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

/// An OpenSSH-format key (PROTOCOL.key), decrypted with ssh-key's KDF and ciphers (any
/// `ssh-keygen -Z` cipher, `3des-cbc` included). The private section is decoded here
/// rather than by ssh-key, which refuses a P-256 scalar that ssh-keygen wrote one byte
/// short (its leading zero dropped, as an mpint is: one key in 256); every check ssh-key
/// makes (checkints, public half, padding) is made here too.
pub(super) fn decode(data: &[u8], pass: Option<&str>) -> Result<PrivateKey, ssh_key::Error> {
    use ssh_key::{Cipher, Kdf, encoding::Error as Enc};
    let short = || ssh_key::Error::from(Enc::Length);
    let rest = data
        .strip_prefix(b"openssh-key-v1\0")
        .ok_or(ssh_key::Error::FormatEncoding)?;
    let mut wire = Wire(rest);
    let cipher_name = wire.string().ok_or_else(short)?;
    let kdf_name = wire.string().ok_or_else(short)?;
    let kdf_options = wire.bytes().ok_or_else(short)?;
    if wire.u32() != Some(1) {
        return Err(ssh_key::Error::FormatEncoding);
    }
    let public = PublicKey::from_bytes(wire.bytes().ok_or_else(short)?)?;
    let private = wire.bytes().ok_or_else(short)?;
    let tag = wire.0;
    let cipher = Cipher::new(cipher_name)?;
    if cipher.is_none() {
        if kdf_name != "none" || !tag.is_empty() {
            return Err(ssh_key::Error::FormatEncoding);
        }
        return decode_openssh_private(private, public.key_data(), 8);
    }
    let mut options = Wire(kdf_options);
    let (Some(salt), Some(rounds)) = (options.bytes(), options.u32()) else {
        return Err(short());
    };
    if kdf_name != "bcrypt" {
        return Err(ssh_key::Error::AlgorithmUnknown);
    }
    let kdf = Kdf::Bcrypt {
        salt: salt.to_vec(),
        rounds,
    };
    let tag = match cipher.has_tag() {
        true => Some(ssh_key::cipher::Tag::try_from(tag).map_err(|_| short())?),
        false if tag.is_empty() => None,
        false => return Err(ssh_key::Error::FormatEncoding),
    };
    let pass = pass.ok_or(ssh_key::Error::Encrypted)?;
    let (key, iv) = kdf.derive_key_and_iv(cipher, pass)?;
    let mut plain = Zeroizing::new(private.to_vec());
    cipher.decrypt(&key, &iv, &mut plain, tag)?;
    decode_openssh_private(&plain, public.key_data(), cipher.block_size())
}

/// The decrypted private section: checkint twice, the key pair, the comment, padding 1, 2, 3…
fn decode_openssh_private(
    section: &[u8],
    public: &ssh_key::public::KeyData,
    block_size: usize,
) -> Result<PrivateKey, ssh_key::Error> {
    use ssh_key::encoding::{Decode, Error as Enc};
    use ssh_key::private::KeypairData;
    let short = || ssh_key::Error::from(Enc::Length);
    if block_size == 0 || !section.len().is_multiple_of(block_size) {
        return Err(short());
    }
    let mut wire = Wire(section);
    if wire.u32() != wire.u32() {
        // A wrong passphrase (or damage): the two checkints differ.
        return Err(ssh_key::Error::Crypto);
    }
    let keypair = match Wire(wire.0).string() {
        Some(kind) if kind.starts_with("ecdsa-sha2-nistp") => {
            // string kind, string curve, string Q, mpint d: d re-encoded at the field width.
            let (kind, curve, point) = (wire.bytes(), wire.bytes(), wire.bytes());
            let (Some(kind), Some(curve), Some(point), Some(scalar)) = (kind, curve, point, wire.bytes()) else {
                return Err(short());
            };
            let width = match curve {
                b"nistp256" => 32,
                b"nistp384" => 48,
                b"nistp521" => 66,
                _ => return Err(ssh_key::Error::AlgorithmUnknown),
            };
            let scalar = scalar_to_width(scalar, width).ok_or(ssh_key::Error::FormatEncoding)?;
            let mut blob = Zeroizing::new(Vec::new());
            for field in [kind, curve, point, scalar.as_slice()] {
                blob.extend_from_slice(&u32::try_from(field.len()).map_err(|_| short())?.to_be_bytes());
                blob.extend_from_slice(field);
            }
            KeypairData::decode(&mut blob.as_slice())?
        }
        _ => {
            let mut reader = wire.0;
            let keypair = KeypairData::decode(&mut reader)?;
            wire = Wire(reader);
            keypair
        }
    };
    if *public != ssh_key::public::KeyData::try_from(&keypair)? {
        return Err(ssh_key::Error::PublicKey);
    }
    let comment = String::from_utf8_lossy(wire.bytes().ok_or_else(short)?).into_owned();
    let padding = wire.0;
    let expected = (1..=u8::MAX).take(padding.len());
    if padding.len() >= block_size || !padding.iter().copied().eq(expected) {
        return Err(ssh_key::Error::FormatEncoding);
    }
    PrivateKey::new(keypair, comment)
}

/// Reads SSH wire-format fields (RFC 4251) without panicking on short input.
pub(super) struct Wire<'a>(pub(super) &'a [u8]);

impl<'a> Wire<'a> {
    pub(super) fn u32(&mut self) -> Option<u32> {
        let (n, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*n))
    }

    pub(super) fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        let (bytes, rest) = (self.0.get(..len)?, self.0.get(len..)?);
        self.0 = rest;
        Some(bytes)
    }

    pub(super) fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}
