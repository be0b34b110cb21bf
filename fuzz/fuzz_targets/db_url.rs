//! `--db URL`: any text parses or gets a one-line message; a parsed URL keeps its promises
//! (rewritten URL reads back to the local end, redacted form hides every password).
#![no_main]

mod common;

use common::{MARKER, assert_hidden, authority_end, check_message, exercise, mark_secret_params};
use libfuzzer_sys::fuzz_target;
use sqltun::db::{Scheme, parse_db_url};

fuzz_target!(|data: &[u8]| {
    // The marker must come from this target's own rewriting, not from the input.
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if input.contains(MARKER) {
        return;
    }
    let url = match parse_db_url(input) {
        Ok(url) => url,
        Err(message) => return check_message(input, &message),
    };
    exercise(input, &url);

    let trimmed = input.trim();
    let Some(scheme_end) = trimmed.find("://").map(|i| i + 3) else {
        panic!("{input:?}: parsed without ://");
    };
    let (head, after) = trimmed.split_at(scheme_end);

    // The password slot: whatever it held, the redacted form is the same, and a marker put there
    // never shows.
    if let Some(password) = &url.password {
        let prefix = format!("{}:{}@", url.user.as_deref().unwrap_or(""), password.expose());
        let Some(tail) = after.strip_prefix(&prefix) else {
            panic!(
                "{input:?}: the password {:?} is not where the URL has it",
                password.expose()
            );
        };
        let variant = format!("{head}{}:{MARKER}@{tail}", url.user.as_deref().unwrap_or(""));
        let other = parse_db_url(&variant)
            .unwrap_or_else(|e| panic!("{input:?}: only the password changed, yet {variant:?} fails: {e}"));
        assert_hidden(&variant, &other);
        assert_eq!(
            other.redacted(),
            url.redacted(),
            "{input:?}: the redacted form depends on the password"
        );
    }

    // Secret query parameters (`password=`, `pwd=`…) after the host: a marker there never shows.
    let from = scheme_end + authority_end(after, url.scheme == Scheme::Sqlserver);
    if let Some(variant) = mark_secret_params(trimmed, from)
        && let Ok(other) = parse_db_url(&variant)
    {
        assert_hidden(&variant, &other);
    }
});
