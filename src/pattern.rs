//! OpenSSH's host and user patterns (`match.c`), the one matcher behind ssh_config's `Host` and
//! `Match` lines, its algorithm lists, and known_hosts host fields.
//!
//! A pattern is `*` (any run of bytes, none included), `?` (exactly one byte) and literal bytes.
//! A list is comma-separated patterns, each optionally negated with a leading `!`: the list matches
//! when some plain pattern matches and no negated one does (a negated match vetoes the whole list).
//! Matching works on bytes, as OpenSSH's does, and by backtracking to the most recent `*` only, so a
//! hostile pattern like `*a*a*a…b` takes at most `text × pattern` steps instead of exponential time.

/// OpenSSH copies each pattern of a list into a 1024-byte buffer and treats a longer one as "the
/// list does not match" (`match_pattern_list`); so do we, so a pattern never matches here when
/// OpenSSH ignores it.
const MAX_SUBPATTERN: usize = 1023;

/// How a list matched (OpenSSH's `match_pattern_list` returns 1, -1 and 0 for these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMatch {
    /// A plain pattern matched and no negated one did.
    Matched,
    /// A negated pattern matched: the list rejects the text, whatever else matches.
    Vetoed,
    /// Nothing matched (or a pattern was too long, see [`MAX_SUBPATTERN`]).
    NoMatch,
}

/// Whether to compare patterns case-insensitively (ASCII only, as OpenSSH's `tolower`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Bytes compare as they are.
    Sensitive,
    /// The pattern's ASCII letters are lowercased before they compare; the caller lowercases the
    /// text (as OpenSSH does with `dolower`: only the pattern is folded here).
    FoldPattern,
}

/// OpenSSH's `match_pattern`: one pattern, no list, no negation; case-sensitive.
pub fn matches(text: &str, pattern: &str) -> bool {
    glob(text.as_bytes(), pattern.as_bytes(), Case::Sensitive)
}

/// OpenSSH's `match_pattern_list` over a comma-separated `list`.
pub fn match_list(text: &str, list: &str, case: Case) -> ListMatch {
    match_patterns(text, list.split(','), case)
}

/// [`match_list`] over patterns already split at the commas.
pub fn match_patterns<'p>(text: &str, patterns: impl IntoIterator<Item = &'p str>, case: Case) -> ListMatch {
    let mut result = ListMatch::NoMatch;
    for pattern in patterns {
        let (negated, sub) = match pattern.strip_prefix('!') {
            Some(sub) => (true, sub),
            None => (false, pattern),
        };
        if sub.len() >= MAX_SUBPATTERN {
            return ListMatch::NoMatch;
        }
        if glob(text.as_bytes(), sub.as_bytes(), case) {
            if negated {
                return ListMatch::Vetoed;
            }
            result = ListMatch::Matched;
        }
    }
    result
}

/// OpenSSH's `match_hostname`: a host name against a list, case-insensitive (the host is lowercased,
/// and so are the patterns as they compare).
pub fn match_hostname(host: &str, list: &str) -> bool {
    match_list(&host.to_ascii_lowercase(), list, Case::FoldPattern) == ListMatch::Matched
}

/// `*` matches any run of bytes, `?` exactly one byte, anything else itself (ASCII case-folded in the
/// pattern with [`Case::FoldPattern`]). Every element but `*` takes exactly one byte, so on a mismatch
/// letting the most recent `*` take one more byte is exact: the result is that of OpenSSH's
/// recursive `match_pattern`.
fn glob(text: &[u8], pattern: &[u8], case: Case) -> bool {
    let fold = |b: u8| match case {
        Case::Sensitive => b,
        Case::FoldPattern => b.to_ascii_lowercase(),
    };
    let (mut t, mut p) = (0, 0);
    // The pattern position just after the most recent `*`, and the text position it is trying.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&tc) = text.get(t) {
        match pattern.get(p).copied().map(fold) {
            Some(b'*') => {
                p += 1;
                star = Some((p, t));
            }
            Some(pc) if pc == b'?' || pc == tc => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((after_star, from)) => {
                    p = after_star;
                    t = from + 1;
                    star = Some((after_star, t));
                }
                None => return false,
            },
        }
    }
    pattern.get(p..).is_some_and(|tail| tail.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `*` and `?` as OpenSSH's match_pattern reads them: `*` takes any run (none too), `?` one
    /// byte; everything else is literal and case-sensitive.
    #[test]
    fn wildcards_match_like_openssh() {
        assert!(matches("web1.prod", "web?.prod"));
        assert!(matches("a.b.c", "*.c"));
        assert!(matches("", "*"));
        assert!(matches("", "**"));
        assert!(!matches("", "?"));
        assert!(matches("abc", "a*"));
        assert!(matches("abc", "*c"));
        assert!(!matches("abc", "*b"));
        assert!(matches("aXbYbZc", "a*b*c"));
        assert!(!matches("aXbYbZ", "a*b*c"));
        assert!(!matches("Foo", "foo"));
        assert!(!matches("ab", "abc"));
        assert!(!matches("abc", "ab"));
        // A `*` in the text is an ordinary byte; a `*` in the pattern is always a wildcard.
        assert!(matches("*x", "*"));
        assert!(matches("a*b", "a*"));
        assert!(!matches("ax", "\\*x"));
    }

    /// `?` takes one byte, as in OpenSSH (which works on bytes): a two-byte UTF-8 character needs two.
    #[test]
    fn question_mark_takes_one_byte() {
        assert!(!matches("é", "?"));
        assert!(matches("é", "??"));
        assert!(matches("café", "caf*"));
    }

    /// Lists: commas separate, any plain match matches, a negated match vetoes the whole list
    /// wherever it stands, and nothing matching is not a veto.
    #[test]
    fn lists_match_and_negation_vetoes() {
        let list = |text, list| match_list(text, list, Case::Sensitive);
        assert_eq!(list("db.bad", "*.bad,!db.*"), ListMatch::Vetoed);
        assert_eq!(list("db.bad", "!db.*,*.bad"), ListMatch::Vetoed);
        assert_eq!(list("x", "a,b"), ListMatch::NoMatch);
        assert_eq!(list("b", "a,b"), ListMatch::Matched);
        assert_eq!(list("x", "!a"), ListMatch::NoMatch);
        assert_eq!(list("", "a,,b"), ListMatch::Matched);
        assert_eq!(
            match_patterns("web1", ["web*", "!web2"], Case::Sensitive),
            ListMatch::Matched
        );
    }

    /// OpenSSH folds case only where it asks for it (match_hostname, IgnoreUnknown, known_hosts):
    /// there the pattern is lowercased and the host too.
    #[test]
    fn case_folds_only_where_openssh_folds_it() {
        assert_eq!(match_list("db", "DB", Case::Sensitive), ListMatch::NoMatch);
        assert_eq!(match_list("db", "DB", Case::FoldPattern), ListMatch::Matched);
        // The text is the caller's to lowercase.
        assert_eq!(match_list("DB", "db", Case::FoldPattern), ListMatch::NoMatch);
        assert!(match_hostname("DB.Example", "db.*"));
        assert!(match_hostname("db.example", "DB.*"));
        assert!(!match_hostname("DB.Example", "*.com,!db.*"));
    }

    /// A pattern of 1023 bytes or more makes the list not match, as OpenSSH's fixed buffer does,
    /// even after a plain match, but not after a veto (OpenSSH stops at the veto first).
    #[test]
    fn overlong_patterns_never_match() {
        let long = "a".repeat(MAX_SUBPATTERN);
        assert_eq!(match_list(&long, &long, Case::Sensitive), ListMatch::NoMatch);
        assert_eq!(
            match_list(&long, &format!("*,{long}"), Case::Sensitive),
            ListMatch::NoMatch
        );
        assert_eq!(
            match_list(&long, &format!("!*,{long}"), Case::Sensitive),
            ListMatch::Vetoed
        );
        let fits = "a".repeat(MAX_SUBPATTERN - 1);
        assert_eq!(match_list(&fits, &fits, Case::Sensitive), ListMatch::Matched);
    }

    /// Hostile patterns stay polynomial: a recursive matcher takes exponential time on `*a*a…b`.
    #[test]
    fn hostile_patterns_are_fast() {
        let started = std::time::Instant::now();
        assert!(!matches(&"a".repeat(5000), &format!("{}b", "*a".repeat(5000))));
        assert!(!matches(&"a".repeat(40), &format!("{}b", "*".repeat(60))));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
