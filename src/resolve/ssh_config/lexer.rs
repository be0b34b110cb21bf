//! Splitting lines as OpenSSH does: the keyword, `=` and quotes (strdelim), and arguments (argv_split).

pub(super) const WHITESPACE: [char; 4] = [' ', '\t', '\r', '\n'];

pub(super) const INVALID_QUOTES: &str = "unbalanced quotes; close the quote, or escape it with a backslash";

/// Splits a line into its keyword and the rest; `Ok(None)` for blank and comment lines.
pub(super) fn split_keyword(line: &str) -> std::result::Result<Option<(String, &str)>, ()> {
    let (mut keyword, mut rest) = strdelim(line)?;
    if keyword.is_empty() {
        (keyword, rest) = strdelim(rest)?;
    }
    if keyword.is_empty() || keyword.starts_with('#') {
        return Ok(None);
    }
    Ok(Some((keyword, rest.trim_start_matches(WHITESPACE))))
}

/// One token as OpenSSH's strdelim cuts it: it ends at whitespace, `"` or `=`; a `"` starts a quoted
/// part that runs to the next `"`; whitespace and at most one `=` after the token are skipped.
pub(super) fn strdelim(s: &str) -> std::result::Result<(String, &str), ()> {
    let Some(pos) = s.find([' ', '\t', '\r', '\n', '"', '=']) else {
        return Ok((s.to_string(), ""));
    };
    if s[pos..].starts_with('"') {
        let after = &s[pos + 1..];
        let close = after.find('"').ok_or(())?;
        let token = format!("{}{}", &s[..pos], &after[..close]);
        return Ok((token, after[close + 1..].trim_start_matches(WHITESPACE)));
    }
    let equals = s[pos..].starts_with('=');
    let token = s[..pos].to_string();
    let mut rest = s[pos + 1..].trim_start_matches(WHITESPACE);
    if !equals && let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start_matches(WHITESPACE);
    }
    Ok((token, rest))
}

/// Splits arguments as OpenSSH's argv_split does: whitespace separates, `"…"` and `'…'` group,
/// backslash escapes quotes, backslash and (outside quotes) space, and `#` at the start of an
/// argument ends the line.
pub(super) fn argv_split(s: &str) -> std::result::Result<Vec<String>, ()> {
    let chars: Vec<char> = s.chars().collect();
    let mut args = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' || chars[i] == '\t' {
            i += 1;
            continue;
        }
        if chars[i] == '#' {
            break;
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                match chars.get(i + 1) {
                    Some(&next) if next == '\'' || next == '"' || next == '\\' || (quote.is_none() && next == ' ') => {
                        arg.push(next);
                        i += 1;
                    }
                    _ => arg.push(c),
                }
            } else if quote.is_none() && (c == ' ' || c == '\t') {
                break;
            } else if quote.is_none() && (c == '"' || c == '\'') {
                quote = Some(c);
            } else if quote == Some(c) {
                quote = None;
            } else {
                arg.push(c);
            }
            i += 1;
        }
        if quote.is_some() {
            return Err(());
        }
        args.push(arg);
    }
    Ok(args)
}
