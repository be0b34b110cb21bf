//! `Include` globs: glob(3) and fnmatch(3) for file names (unlike Host patterns, these know `[…]`
//! and `\` escapes, and never match a hidden file by a wildcard).

use std::path::{Path, PathBuf};

/// glob(3) without flags beyond tilde: `*`, `?` and `[…]` per path component, hidden files only
/// for patterns that start with `.`, sorted; only existing paths.
pub(super) fn glob(pattern: &str) -> Vec<PathBuf> {
    let absolute = pattern.starts_with('/');
    let mut current: Vec<PathBuf> = vec![if absolute { PathBuf::from("/") } else { PathBuf::new() }];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if component.contains(['*', '?', '[']) {
            for base in &current {
                let dir = if base.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    base.as_path()
                };
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect();
                names.retain(|name| (!name.starts_with('.') || component.starts_with('.')) && fnmatch(component, name));
                names.sort();
                next.extend(names.into_iter().map(|name| base.join(name)));
            }
        } else {
            next = current.iter().map(|base| base.join(component)).collect();
        }
        current = next;
    }
    let mut found: Vec<PathBuf> = current.into_iter().filter(|p| p.symlink_metadata().is_ok()).collect();
    found.sort();
    found
}

/// fnmatch(3) for one path component: `*`, `?`, `[…]` (with `!`/`^` and ranges), `\` escapes.
///
/// Every element but `*` matches exactly one character, so the greedy two-pointer match that, on a
/// mismatch, backtracks only to the most recent `*` is exact, and takes at most
/// `pattern × name` steps (a recursive match takes exponential time on `****…*b`).
pub(super) fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let elements = glob_elements(&p);
    let one = |element: &GlobElement, c: char| match *element {
        GlobElement::Star => false,
        GlobElement::Any => true,
        GlobElement::Char(lit) => c == lit,
        GlobElement::Class(at) => bracket(&p[at..], c).is_some_and(|(matched, _)| matched),
    };
    let (mut ei, mut ni) = (0, 0);
    // After the last `*` seen: where the rest of the pattern starts, and where in the name it was
    // last tried.
    let mut retry: Option<(usize, usize)> = None;
    while ni < n.len() {
        match elements.get(ei) {
            Some(GlobElement::Star) => {
                ei += 1;
                retry = Some((ei, ni));
            }
            Some(element) if one(element, n[ni]) => {
                ei += 1;
                ni += 1;
            }
            _ => match retry {
                // Let the `*` take one more character and try the rest again.
                Some((after_star, tried)) => {
                    ei = after_star;
                    ni = tried + 1;
                    retry = Some((after_star, ni));
                }
                None => return false,
            },
        }
    }
    elements[ei..].iter().all(|e| matches!(e, GlobElement::Star))
}

/// One element of a glob pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GlobElement {
    /// `*`: any run of characters.
    Star,
    /// `?`: any one character.
    Any,
    /// A literal character (also an escaped one, and an unclosed `[`).
    Char(char),
    /// A bracket expression; the index of the character after its `[`.
    Class(usize),
}

/// Splits a glob pattern into its elements.
pub(super) fn glob_elements(p: &[char]) -> Vec<GlobElement> {
    let mut elements = Vec::with_capacity(p.len());
    let mut i = 0;
    while let Some(&c) = p.get(i) {
        let (element, used) = match c {
            '*' => (GlobElement::Star, 1),
            '?' => (GlobElement::Any, 1),
            // How much of the pattern a bracket expression uses does not depend on the character.
            '[' => match bracket(&p[i + 1..], '\0') {
                Some((_, used)) => (GlobElement::Class(i + 1), 1 + used),
                // An unclosed `[` is an ordinary character.
                None => (GlobElement::Char('['), 1),
            },
            '\\' if i + 1 < p.len() => (GlobElement::Char(p[i + 1]), 2),
            lit => (GlobElement::Char(lit), 1),
        };
        elements.push(element);
        i += used;
    }
    elements
}

/// A bracket expression after its `[`: whether `c` matches and how many pattern chars it used.
pub(super) fn bracket(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = matches!(p.first(), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &start = p.get(i)?;
        if start == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            let end = p[i + 2];
            if start <= c && c <= end {
                matched = true;
            }
            i += 3;
        } else {
            if start == c {
                matched = true;
            }
            i += 1;
        }
    }
}
