//! Text from outside (files, the command line, the far end of a tunnel) made safe to quote in a
//! one-line message: nothing quoted may drive the terminal, split the line, hide or reorder text.

use std::fmt::Write as _;

/// How much of a value a message quotes by default.
pub const QUOTE_LIMIT: usize = 200;

/// `text` with every control character written as an escape (`\0`, `\t`, `\n`, `\r`, `\x1b`,
/// `\u{85}`) and every invisible formatting character as `\u{…}`, cut with `…` so that at most
/// `max_chars` characters are shown, escapes included.
pub fn escaped(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut shown = 0usize;
    let mut piece = String::new();
    for c in text.chars() {
        piece.clear();
        match c {
            '\0' => piece.push_str("\\0"),
            '\t' => piece.push_str("\\t"),
            '\n' => piece.push_str("\\n"),
            '\r' => piece.push_str("\\r"),
            c if c.is_ascii_control() => {
                let _ = write!(piece, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() || is_invisible(c) => {
                let _ = write!(piece, "\\u{{{:x}}}", u32::from(c));
            }
            c => piece.push(c),
        }
        let width = piece.chars().count();
        if shown.saturating_add(width) > max_chars {
            out.push('…');
            break;
        }
        out.push_str(&piece);
        shown += width;
    }
    out
}

/// [`escaped`] with the default [`QUOTE_LIMIT`].
pub fn printable(text: &str) -> String {
    escaped(text, QUOTE_LIMIT)
}

/// When [`shell_word_with`] puts a word in single quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// Only when a shell would give a character in it a meaning (or it is empty): for command lines
    /// people read, such as a `ProxyCommand`.
    WhenNeeded,
    /// Always, plain words too: for `--output env`, whose `NAME='value'` lines keep one shape that
    /// scripts reading them without a shell (grep, sed, `cut -d"'"`) can rely on.
    Always,
}

/// `text` as one word for a POSIX shell (`sh -c`): unchanged when it is made only of characters no
/// shell gives a meaning to (letters, digits and `@%+=:,./_-`), else in single quotes, inside which
/// nothing is special (a `'` in it is written `'\''`). [`shell_word_with`] with [`Quoting::WhenNeeded`].
pub fn shell_word(text: &str) -> String {
    shell_word_with(text, Quoting::WhenNeeded)
}

/// `text` as one word for a POSIX shell, quoted as `quoting` says. The one quoter for values put into
/// a command line or read back by a shell's `eval`.
pub fn shell_word_with(text: &str, quoting: Quoting) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain && quoting == Quoting::WhenNeeded {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// How much of a multi-line server text (an SSH login banner) is shown.
pub const BANNER_LIMIT: usize = 8 * 1024;

/// Server text that may legitimately have lines (an SSH login banner), safe to write to a terminal:
/// line breaks (`\n`, and `\r\n` taken as one) are kept, everything else goes through [`escaped`]
/// (a lone `\r`, tabs, ESC, BEL, C1 controls, DEL, bidi and other invisible characters all come out as
/// visible escapes). At most `max_chars` characters are shown, line breaks included.
pub fn escaped_lines(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut left = max_chars;
    let normalized = text.replace("\r\n", "\n");
    for (i, line) in normalized.split('\n').enumerate() {
        if i > 0 {
            if left == 0 {
                out.push('…');
                break;
            }
            out.push('\n');
            left -= 1;
        }
        let shown = escaped(line, left);
        let cut = shown.ends_with('…') && !line.ends_with('…');
        left = left.saturating_sub(shown.chars().count());
        out.push_str(&shown);
        if cut {
            break;
        }
    }
    out
}

/// Characters that show as nothing (or reorder what follows) but are not control characters:
/// Unicode's format characters that terminals and editors commonly render invisibly.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

/// `scheme://user:***@rest` for `scheme://user:password@rest` (also without a scheme): the password of
/// a URL's or destination's user info masked, everything else as it is (not yet escaped).
pub fn mask_userinfo_password(input: &str) -> String {
    let (head, after) = match input.find("://") {
        Some(i) => input.split_at(i + 3),
        None => ("", input),
    };
    match after
        .rfind('@')
        .and_then(|at| after[..at].find(':').map(|colon| (colon, at)))
    {
        Some((colon, at)) => format!("{head}{}***{}", &after[..=colon], &after[at..]),
        None => input.to_string(),
    }
}

/// Levenshtein distance: insertions, deletions and substitutions of one character.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb)).min(above + 1).min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of control and invisible character comes out as a visible escape.
    #[test]
    fn escapes() {
        assert_eq!(escaped("a\0b\x1b[2J\x7f\t\r\n", 100), r"a\0b\x1b[2J\x7f\t\r\n");
        assert_eq!(escaped("\u{feff}#\u{202e}x\u{85}", 100), r"\u{feff}#\u{202e}x\u{85}");
    }

    /// Plain words pass unchanged (so a ProxyCommand reads as in OpenSSH); anything else is one
    /// single-quoted word that `sh` reads back exactly, newlines, quotes and `$(…)` included.
    #[test]
    fn shell_words() {
        assert_eq!(shell_word("deploy"), "deploy");
        assert_eq!(shell_word("fe80::1%eth0"), "fe80::1%eth0");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        for text in ["x\n>m\n", "$(>m)", "`>m`", "a;b|c&d", "it's \\ \"q\"", "*?[~#!"] {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_word(text)))
                .output()
                .unwrap_or_else(|e| panic!("sh: {e}"));
            assert_eq!(String::from_utf8_lossy(&out.stdout), text, "{text:?}");
        }
    }

    /// `--output env` quotes every value, plain ones too, so its lines keep the exact bytes scripts
    /// already read (`SQLTUN_PORT='5432'`); what `sh` reads back is the value either way.
    #[test]
    fn shell_words_always_quoted() {
        assert_eq!(shell_word_with("5432", Quoting::Always), "'5432'");
        assert_eq!(shell_word_with("", Quoting::Always), "''");
        assert_eq!(shell_word_with("it's", Quoting::Always), r"'it'\''s'");
        for text in ["127.0.0.1", "postgres://u:p@127.0.0.1:5432/app", "x'$(>m)\n"] {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_word_with(text, Quoting::Always)))
                .output()
                .unwrap_or_else(|e| panic!("sh: {e}"));
            assert_eq!(String::from_utf8_lossy(&out.stdout), text, "{text:?}");
        }
    }

    /// A login banner keeps its lines (CRLF or LF) but nothing that drives a terminal: an OSC title,
    /// a screen clear, a lone CR that would overwrite the line, a C1 CSI, BEL and DEL all show as escapes.
    #[test]
    fn banner_lines() {
        let banner = "Authorized use only\r\n\x1b]0;pwned\x07\x1b[2J\u{9b}31m\rfake\x7f\n\u{202e}end\n";
        let shown = escaped_lines(banner, BANNER_LIMIT);
        assert_eq!(
            shown,
            "Authorized use only\n\\x1b]0;pwned\\x07\\x1b[2J\\u{9b}31m\\rfake\\x7f\n\\u{202e}end\n"
        );
        assert!(!shown.chars().any(|c| c != '\n' && (c.is_control() || is_invisible(c))));
        assert_eq!(escaped_lines("ab\ncd\nef", 5), "ab\ncd…");
        assert_eq!(escaped_lines(&"x\n".repeat(10_000), 10).chars().count(), 11);
    }

    /// The cap counts what is shown, escapes included, so a run of control bytes cannot make a message
    /// longer than the cap.
    #[test]
    fn cap_counts_escapes() {
        assert_eq!(escaped("abc", 2), "ab…");
        assert_eq!(escaped("a\u{1b}", 4), "a…");
        assert_eq!(escaped("a\u{1b}", 5), r"a\x1b");
        assert_eq!(printable(&"x".repeat(300)), format!("{}…", "x".repeat(200)));
    }
}
