//! PEM-style armour (`-----BEGIN LABEL-----`, and the four-dash SSH2 form): found anywhere in the
//! text, re-assembled tidily for russh, decoded or described as damaged.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::KeyFormat;

/// One armoured block: `-----BEGIN LABEL-----` (or the four-dash SSH2 form).
pub(super) struct Armour {
    pub(super) label: String,
    headers: Vec<(String, String)>,
    /// The base64 body, joined, wiped on drop.
    body: Zeroizing<String>,
    /// The body lines as found (trimmed).
    body_lines: Vec<String>,
    /// Whether the END line was found.
    complete: bool,
    /// A body line held characters that are not base64.
    stray: bool,
}

impl Drop for Armour {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.body_lines.zeroize();
    }
}

fn armour_label<'a>(line: &'a str, dashes: &str, word: &str) -> Option<&'a str> {
    let inner = line.strip_prefix(dashes)?.strip_suffix(dashes)?;
    if inner.starts_with('-') || inner.ends_with('-') {
        return None;
    }
    inner.trim().strip_prefix(word).map(str::trim)
}

pub(super) fn find_armour(lines: &[&str], dashes: &str, wanted: impl Fn(&str) -> bool) -> Option<Armour> {
    let start = lines
        .iter()
        .position(|l| armour_label(l, dashes, "BEGIN ").is_some_and(&wanted))?;
    let label = armour_label(lines.get(start)?, dashes, "BEGIN ")?.to_string();
    let mut block = Armour {
        label,
        headers: Vec::new(),
        body: Zeroizing::new(String::new()),
        body_lines: Vec::new(),
        complete: false,
        stray: false,
    };
    let mut continued = false;
    for line in lines.iter().skip(start + 1) {
        if armour_label(line, dashes, "END ").is_some() {
            block.complete = true;
            break;
        }
        if continued {
            // RFC 4716 header continuation (a header line ending in `\`).
            continued = line.ends_with('\\');
        } else if let Some((name, value)) = line.split_once(':') {
            continued = value.ends_with('\\');
            block.headers.push((name.trim().to_string(), value.trim().to_string()));
        } else {
            if !line.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)) {
                block.stray = true;
            }
            block.body.push_str(line);
            block.body_lines.push((*line).to_string());
        }
    }
    Some(block)
}

impl Armour {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The block as russh wants it: exact armour lines, headers, then the body.
    pub(super) fn reassemble(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(format!("-----BEGIN {}-----\n", self.label));
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {value}\n"));
        }
        for line in &self.body_lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&format!("-----END {}-----\n", self.label));
        text
    }

    /// The whole body decoded, or a description of the damage.
    pub(super) fn decode(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        if !self.complete {
            return Err(format!(
                "the -----END {}----- line is missing (the file looks cut short)",
                self.label
            ));
        }
        if self.stray {
            return Err("its base64 text holds stray characters".into());
        }
        STANDARD
            .decode(self.body.as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| "its base64 text is damaged or cut short".into())
    }

    /// As much of the body as decodes, for reading headers of a cut-short file.
    pub(super) fn decode_prefix(&self) -> Zeroizing<Vec<u8>> {
        let clean: Zeroizing<String> = Zeroizing::new(
            self.body
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "+/".contains(*c))
                .collect(),
        );
        let whole = clean.len() / 4 * 4;
        let prefix = clean.get(..whole).unwrap_or_default();
        Zeroizing::new(STANDARD.decode(prefix).unwrap_or_default())
    }
}

/// PEM encryption headers (`Proc-Type`, `DEK-Info`) in a block whose format has none
/// (OpenSSH, PKCS#8): russh would then decrypt the block as a PEM RSA key, and ask for a
/// passphrase that cannot help.
pub(super) fn misplaced_pem_headers(block: &Armour, format: KeyFormat) -> Option<String> {
    ["Proc-Type", "DEK-Info"]
        .iter()
        .any(|name| block.header(name).is_some())
        .then(|| format!("it has PEM encryption headers (Proc-Type, DEK-Info), which a {format} key never has"))
}
