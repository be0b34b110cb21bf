//! One-time codes (RFC 6238 TOTP) for keyboard-interactive prompts such as PAM's google-authenticator
//! "Verification code:". The secret is base32 (as authenticator apps show it) or an `otpauth://totp/`
//! URI carrying its own algorithm, digits and period.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};

use crate::secret::Secret;

/// HMAC of `msg` under `key` with the digest `$d` (hmac's generic bounds are unwieldy to spell out).
macro_rules! hmac_with {
    ($d:ty, $key:expr, $msg:expr) => {
        match <Hmac<$d> as hmac::KeyInit>::new_from_slice($key) {
            Ok(mut m) => {
                m.update($msg);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// A TOTP generator: the key stays wrapped in [`Secret`]-like storage and never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Totp {
    key: zeroize::Zeroizing<Vec<u8>>,
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: Duration,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Totp")
            .field("key", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .finish()
    }
}

impl Totp {
    /// From a base32 secret (spaces and `=` padding ignored, any case) or an `otpauth://totp/…?secret=…`
    /// URI. Errors never contain the secret.
    pub fn parse(text: &Secret) -> Result<Totp, String> {
        let text = text.expose().trim();
        if let Some(rest) = text.strip_prefix("otpauth://") {
            return Self::from_uri(rest);
        }
        Ok(Totp {
            key: decode_base32(text)?.into(),
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: Duration::from_secs(30),
        })
    }

    fn from_uri(rest: &str) -> Result<Totp, String> {
        let Some(kind_and_label) = rest.split('?').next() else {
            return Err("an empty otpauth URI".into());
        };
        if !kind_and_label.to_ascii_lowercase().starts_with("totp/") && !kind_and_label.eq_ignore_ascii_case("totp") {
            return Err("only otpauth://totp/ URIs are supported (not hotp)".into());
        }
        let query = rest.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut totp = Totp {
            key: Vec::new().into(),
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: Duration::from_secs(30),
        };
        let mut have_secret = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k.to_ascii_lowercase().as_str() {
                "secret" => {
                    totp.key = decode_base32(v)?.into();
                    have_secret = true;
                }
                "algorithm" => {
                    totp.algorithm = match v.to_ascii_uppercase().as_str() {
                        "SHA1" => Algorithm::Sha1,
                        "SHA256" => Algorithm::Sha256,
                        "SHA512" => Algorithm::Sha512,
                        other => return Err(format!("otpauth algorithm `{other}` is not SHA1, SHA256 or SHA512")),
                    }
                }
                "digits" => {
                    totp.digits = match v {
                        "6" => 6,
                        "8" => 8,
                        other => return Err(format!("otpauth digits `{other}`: only 6 or 8")),
                    }
                }
                "period" => {
                    let secs: u64 = v
                        .parse()
                        .map_err(|_| format!("otpauth period `{v}` is not a number of seconds"))?;
                    if secs == 0 || secs > 3600 {
                        return Err(format!(
                            "otpauth period `{v}`: expected 1 to 3600 seconds (usually 30 or 60)"
                        ));
                    }
                    totp.period = Duration::from_secs(secs);
                }
                _ => {}
            }
        }
        if !have_secret {
            return Err("the otpauth URI has no secret= parameter".into());
        }
        Ok(totp)
    }

    /// The code for time step `step` (seconds since the epoch / period).
    pub fn code_at_step(&self, step: u64) -> String {
        let msg = step.to_be_bytes();
        let digest: Vec<u8> = match self.algorithm {
            Algorithm::Sha1 => hmac_with!(sha1::Sha1, &self.key, &msg),
            Algorithm::Sha256 => hmac_with!(sha2::Sha256, &self.key, &msg),
            Algorithm::Sha512 => hmac_with!(sha2::Sha512, &self.key, &msg),
        };
        // RFC 4226 dynamic truncation.
        let offset = (digest.last().copied().unwrap_or(0) & 0x0f) as usize;
        let slice = digest.get(offset..offset + 4).unwrap_or(&[0, 0, 0, 0]);
        let binary = u32::from_be_bytes([slice[0] & 0x7f, slice[1], slice[2], slice[3]]);
        let modulus = 10u32.pow(self.digits);
        format!("{:0width$}", binary % modulus, width = self.digits as usize)
    }

    /// A code to send now. A step this process already used is skipped (servers such as PAM's
    /// google-authenticator refuse a code twice), taking the next step, which servers accept within
    /// their usual ±1 step window.
    pub fn next_code(&self) -> String {
        use std::hash::{Hash, Hasher};
        static USED: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.key.hash(&mut hasher);
        let id = hasher.finish();
        let mut step = self.step_now();
        if let Ok(mut used) = USED.lock() {
            if let Some(entry) = used.iter_mut().find(|(k, _)| *k == id) {
                if entry.1 >= step {
                    step = entry.1 + 1;
                }
                entry.1 = step;
            } else {
                used.push((id, step));
            }
        }
        self.code_at_step(step)
    }

    /// The current time step.
    pub fn step_now(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        now / self.period.as_secs().max(1)
    }
}

fn decode_base32(text: &str) -> Result<Vec<u8>, String> {
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if cleaned.is_empty() {
        return Err("the TOTP secret is empty".into());
    }
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    spec.check_trailing_bits = false;
    let encoding = spec.encoding().map_err(|e| format!("base32 decoder: {e}"))?;
    encoding.decode(cleaned.as_bytes()).map_err(|_| {
        "the TOTP secret is not valid base32 (letters A-Z and digits 2-7, as authenticator apps show it)".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B test vectors (8 digits, 30 s) for all three algorithms.
    #[test]
    fn rfc6238_vectors() {
        let make = |key: &[u8], algorithm| Totp {
            key: key.to_vec().into(),
            algorithm,
            digits: 8,
            period: Duration::from_secs(30),
        };
        let sha1 = make(b"12345678901234567890", Algorithm::Sha1);
        let sha256 = make(b"12345678901234567890123456789012", Algorithm::Sha256);
        let sha512 = make(
            b"1234567890123456789012345678901234567890123456789012345678901234",
            Algorithm::Sha512,
        );
        for (time, c1, c256, c512) in [
            (59u64, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1234567890, "89005924", "91819424", "93441116"),
            (20000000000, "65353130", "77737706", "47863826"),
        ] {
            assert_eq!(sha1.code_at_step(time / 30), c1, "sha1 at {time}");
            assert_eq!(sha256.code_at_step(time / 30), c256, "sha256 at {time}");
            assert_eq!(sha512.code_at_step(time / 30), c512, "sha512 at {time}");
        }
    }

    /// Authenticator apps show secrets in groups and lower case; otpauth URIs carry their parameters.
    #[test]
    fn secret_spellings() {
        let plain = Totp::parse(&Secret::new("gezd gnbv gy3t qojq gezd gnbv gy3t qojq".into())).unwrap();
        assert_eq!(plain.key.as_slice(), b"12345678901234567890");
        assert_eq!((plain.digits, plain.period.as_secs()), (6, 30));
        let uri = Totp::parse(&Secret::new(
            "otpauth://totp/ACME:me?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA256&digits=8&period=60".into(),
        ))
        .unwrap();
        assert_eq!(
            (uri.algorithm, uri.digits, uri.period.as_secs()),
            (Algorithm::Sha256, 8, 60)
        );
        assert_eq!(plain.code_at_step(1), "287082");
    }

    /// Bad secrets are refused with a message that does not echo the secret.
    #[test]
    fn bad_secrets() {
        for bad in [
            "",
            "not base32 !!",
            "otpauth://hotp/x?secret=GEZD",
            "otpauth://totp/x?digits=7&secret=GEZD",
            "otpauth://totp/x",
        ] {
            let e = Totp::parse(&Secret::new(bad.into())).unwrap_err();
            assert!(bad.len() < 5 || !e.contains(bad), "{e}");
        }
        assert!(!format!("{:?}", Totp::parse(&Secret::new("GEZDGNBV".into())).unwrap()).contains("GEZD"));
    }
}
