//! One-time codes (RFC 6238 TOTP) for keyboard-interactive prompts such as PAM's google-authenticator
//! "Verification code:". The secret is base32 (as authenticator apps show it) or an `otpauth://totp/`
//! URI carrying its own algorithm, digits and period.
//!
//! The codes themselves (HMAC and RFC 4226 truncation) come from the totp-rs crate. What is ours:
//! - the secret and URI parsing: totp-rs's `from_url` needs its `otpauth` feature (and the url crate),
//!   refuses secrets under 128 bits that authenticator setups still hand out (80-bit, 16-character
//!   secrets), and its errors are not sentences that say what to fix;
//! - the [`Ledger`]: which code each hop may have in which time step (totp-rs only generates).
//!
//! Codes are generated with `build_noncompliant` for that reason; the digits (6 or 8) and the period
//! (1 to 3600 s) are checked here when the secret is parsed, which also keeps totp-rs's panics (10 or
//! more digits, a zero period) out of reach.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::secret::Secret;

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
        let algorithm = match self.algorithm {
            Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
            Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
            Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
        };
        let period = self.period.as_secs().max(1);
        let generator = totp_rs::Builder::new()
            .with_algorithm(algorithm)
            .with_digits(u8::try_from(self.digits.min(9)).unwrap_or(9))
            .with_step_duration(period)
            .with_secret(self.key.to_vec())
            .build_noncompliant();
        generator.generate(step.saturating_mul(period)).to_string()
    }

    /// A code for `hop` now, under the ledger's rule (see [`Ledger::issue`]).
    pub fn issue(&self, hop: &str, fresh_connection: bool) -> Issue {
        static LEDGER: Ledger = Ledger::new();
        LEDGER.issue(self, hop, fresh_connection, SystemTime::now())
    }

    /// A stable, process-local name for the secret (never the secret), so the ledger can tell secrets apart.
    fn id(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.key.hash(&mut hasher);
        hasher.finish()
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

/// The answer to "may this hop have a code now?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issue {
    /// Send this code.
    Code(String),
    /// This hop may have its next code once this much time has passed (the next time step).
    WaitFor(Duration),
    /// No code: why, in words that finish "no one-time code was sent: …".
    Refused(String),
}

/// The longest a fresh connection waits for the next time step rather than being refused.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// Which codes this process has given out, per secret and per hop. A code lets its holder in for its
/// time step, so each is handed out sparingly:
/// - a hop gets at most one code per time step: a second request in the same step (a second prompt in
///   the same keyboard-interactive request, or another round) is refused;
/// - no step is used twice for one secret (servers such as PAM's google-authenticator refuse a code
///   twice), so a second hop in the same step gets the next step's code, which servers accept within
///   their usual ±1 step window, but never one further ahead;
/// - a fresh connection (a reconnect) whose hop already had this step's code waits for the next step,
///   when that is at most [`MAX_WAIT`] away.
#[derive(Debug)]
pub struct Ledger {
    /// (secret id, hop, the real time step it was last given a code in, the code's step)
    given: std::sync::Mutex<Vec<(u64, String, u64, u64)>>,
}

impl Ledger {
    pub const fn new() -> Ledger {
        Ledger {
            given: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// A code for `hop` from `totp` at `now`; `fresh_connection` is true for the first code asked on a
    /// connection (a reconnect may then wait for the next step).
    pub fn issue(&self, totp: &Totp, hop: &str, fresh_connection: bool, now: SystemTime) -> Issue {
        let Ok(mut given) = self.given.lock() else {
            return Issue::Refused("the record of codes given out is unavailable".into());
        };
        let id = totp.id();
        let period = totp.period.as_secs().max(1);
        let seconds = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let step = seconds / period;
        let until_next = Duration::from_secs(period - seconds % period);
        let wait_or = |why: String| {
            if fresh_connection && until_next <= MAX_WAIT {
                Issue::WaitFor(until_next)
            } else {
                Issue::Refused(why)
            }
        };
        if given
            .iter()
            .any(|(k, h, real, _)| *k == id && h == hop && *real == step)
        {
            return wait_or(format!(
                "this hop was already given this {period} s time step's code, and sqltun gives each hop at most one code per step"
            ));
        }
        let used = |s: u64| given.iter().any(|(k, _, _, code_step)| *k == id && *code_step == s);
        let Some(code_step) = [step, step + 1].into_iter().find(|s| !used(*s)) else {
            return wait_or(format!(
                "the codes of this {period} s time step and the next were already given to other hops"
            ));
        };
        // Steps two behind are past every server's window: forget them, so the record stays small.
        given.retain(|(_, _, _, code_step)| code_step.saturating_add(2) >= step);
        given.push((id, hop.to_string(), step, code_step));
        Issue::Code(totp.code_at_step(code_step))
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new()
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

    /// A hop gets one code per time step: a second request in the same step is refused (or, for a fresh
    /// connection, told to wait for the next step); a second hop with the same secret gets the next
    /// step's code, a third in the same step nothing; and the next step gives the first hop a code again.
    #[test]
    fn one_code_per_hop_per_step() {
        let totp = Totp::parse(&Secret::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into())).unwrap();
        let ledger = Ledger::new();
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let t = 30 * 1_000_000 + 10;
        assert_eq!(
            ledger.issue(&totp, "hop 1", true, at(t)),
            Issue::Code(totp.code_at_step(1_000_000))
        );
        assert!(matches!(
            ledger.issue(&totp, "hop 1", false, at(t + 1)),
            Issue::Refused(_)
        ));
        assert_eq!(
            ledger.issue(&totp, "hop 1", true, at(t + 1)),
            Issue::WaitFor(Duration::from_secs(19))
        );
        assert_eq!(
            ledger.issue(&totp, "hop 2", true, at(t + 2)),
            Issue::Code(totp.code_at_step(1_000_001))
        );
        assert!(matches!(
            ledger.issue(&totp, "hop 3", false, at(t + 3)),
            Issue::Refused(_)
        ));
        assert_eq!(
            ledger.issue(&totp, "hop 1", false, at(t + 30)),
            Issue::Code(totp.code_at_step(1_000_002))
        );
        let other = Totp::parse(&Secret::new("MFRGGZDFMZTWQ2LK".into())).unwrap();
        assert!(matches!(
            ledger.issue(&other, "hop 1", false, at(t + 30)),
            Issue::Code(_)
        ));
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
