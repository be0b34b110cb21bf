//! PuTTY `.ppk` keys (v2 and v3; v1 is refused with the conversion command).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use russh::keys::{Algorithm, PublicKey};
use zeroize::Zeroizing;

use super::analysis::Analysis;
use super::{ARGON2_MS_PER_MIB_PASS, KeyFormat, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_PARALLELISM, MAX_ARGON2_WORK};

/// PuTTY `.ppk`: `PuTTY-User-Key-File-<version>: <algorithm>`, `Key: value`
/// lines, and `Public-Lines`/`Private-Lines` counts followed by base64 lines.
pub(super) fn analyze(lines: &[&str]) -> Analysis {
    let mut a = Analysis::new(KeyFormat::Putty);
    let mut text = Zeroizing::new(String::new());
    for line in lines {
        text.push_str(line);
        // ssh-key splits on ": ", so an empty value ("Comment: ") keeps its space.
        text.push_str(if line.ends_with(':') { " \n" } else { "\n" });
    }
    a.text = text;
    let header = lines.first().copied().unwrap_or_default();
    let (version, algorithm) = header
        .strip_prefix("PuTTY-User-Key-File-")
        .and_then(|h| h.split_once(':'))
        .unwrap_or_default();
    a.algorithm = Algorithm::new(algorithm.trim()).ok();
    let mut encryption = None;
    let mut kdf = None;
    let mut argon2 = Argon2Lines::default();
    let mut mac = None;
    let mut public = None;
    let mut private_len = None;
    let mut complete = true;
    let mut rest = lines.iter().skip(1);
    while let Some(line) = rest.next() {
        let Some((name, value)) = line.split_once(':') else {
            complete = false;
            continue;
        };
        let value = value.trim();
        match name {
            "Encryption" => encryption = Some(value),
            "Key-Derivation" => kdf = Some(value),
            // The last of repeated lines counts, as in ssh-key.
            "Argon2-Memory" => argon2.memory = Some(value),
            "Argon2-Passes" => argon2.passes = Some(value),
            "Argon2-Parallelism" => argon2.parallelism = Some(value),
            "Argon2-Salt" => argon2.salt = Some(value),
            "Private-MAC" => mac = Some(value),
            "Public-Lines" | "Private-Lines" => {
                let count = value.parse::<usize>().unwrap_or(0);
                let body: Zeroizing<String> = Zeroizing::new(rest.by_ref().take(count).copied().collect());
                let decoded = STANDARD.decode(body.as_bytes()).ok().map(Zeroizing::new);
                complete &= count > 0 && decoded.is_some();
                if name == "Public-Lines" {
                    public = decoded;
                } else {
                    private_len = decoded.map(|d| d.len());
                }
            }
            _ => {}
        }
    }
    a.public = public.and_then(|b| PublicKey::from_bytes(&b).ok());
    let encryption = encryption.unwrap_or("none");
    a.encrypted = encryption != "none";
    if version != "2" && version != "3" {
        a.unsupported_format = true;
    } else if a.encrypted && encryption != "aes256-cbc" {
        a.unsupported_cipher = Some(encryption.to_string());
    } else if a.encrypted && version == "3" {
        let kdf = kdf.unwrap_or("(none)");
        if !["Argon2id", "Argon2i", "Argon2d"].contains(&kdf) {
            a.unsupported_cipher = Some(format!("{encryption} with key derivation {kdf}"));
        } else {
            match argon2.check(kdf) {
                Ok(cost) => a.kdf_cost = cost,
                Err(damage) => a.damage = Some(damage),
            }
        }
    }
    let mac_len = if version == "2" { 40 } else { 64 };
    let mac_ok = mac.is_some_and(|m| m.len() == mac_len && m.chars().all(|c| c.is_ascii_hexdigit()));
    // Encrypted private data is whole AES blocks.
    let private_ok = private_len.is_some_and(|n| n > 0 && (!a.encrypted || n % 16 == 0));
    if !(complete && a.public.is_some() && private_ok && mac_ok) {
        a.damage = Some("its key lines or MAC are missing (the file looks cut short)".into());
    }
    a
}

/// The Argon2 lines of a PuTTY v3 key, as written (the last of each).
#[derive(Default)]
struct Argon2Lines<'a> {
    memory: Option<&'a str>,
    passes: Option<&'a str>,
    parallelism: Option<&'a str>,
    salt: Option<&'a str>,
}

impl Argon2Lines<'_> {
    /// Checks the parameters ssh-key hands to Argon2 before it runs: Err describes damage
    /// (a missing or invalid value, which Argon2 would refuse with the same error as a wrong
    /// passphrase), Ok(Some) a cost beyond the bounds, with roughly how long it would take.
    fn check(&self, kdf: &str) -> Result<Option<(String, u64)>, String> {
        let number = |name: &str, value: Option<&str>| -> Result<u64, String> {
            let value = value.ok_or_else(|| format!("its {name} line is missing"))?;
            // ssh-key reads a u32.
            value
                .parse::<u32>()
                .map(u64::from)
                .map_err(|_| format!("its {name} value is not a number below 2^32"))
        };
        let memory = number("Argon2-Memory", self.memory)?;
        let passes = number("Argon2-Passes", self.passes)?;
        let parallelism = number("Argon2-Parallelism", self.parallelism)?;
        let salt = self.salt.ok_or("its Argon2-Salt line is missing")?;
        let salt_ok = salt.len() % 2 == 0 && salt.len() >= 16 && salt.chars().all(|c| c.is_ascii_hexdigit());
        if !salt_ok {
            return Err("its Argon2-Salt is not 8 or more bytes of hex".into());
        }
        if passes == 0 || parallelism == 0 || memory < 8 * parallelism {
            return Err(format!(
                "its Argon2 parameters are invalid ({memory} KiB of memory, {passes} passes, \
                 {parallelism} lanes)"
            ));
        }
        if parallelism > MAX_ARGON2_PARALLELISM {
            return Err(format!(
                "its Argon2-Parallelism of {parallelism} is far beyond what puttygen writes"
            ));
        }
        let work = memory.saturating_mul(passes);
        let cost = if memory > MAX_ARGON2_MEMORY_KIB {
            format!("{kdf} with {} MiB of memory", memory / 1024)
        } else if work > MAX_ARGON2_WORK {
            format!("{passes} {kdf} passes over {memory} KiB of memory")
        } else {
            return Ok(None);
        };
        let seconds = work / 1024 * ARGON2_MS_PER_MIB_PASS / 1000;
        Ok(Some((cost, seconds)))
    }
}
