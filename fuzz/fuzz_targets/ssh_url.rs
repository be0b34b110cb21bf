//! TablePlus/TablePro `postgres+ssh://` URLs: any text parses or gets a one-line message; a parsed URL
//! keeps the database URL's promises and never shows the database password.
#![no_main]

mod common;

use common::{MARKER, assert_hidden, authority_end, check_message, exercise, mark_secret_params};
use libfuzzer_sys::fuzz_target;
use sqltun::db::parse_ssh_url;

fuzz_target!(|data: &[u8]| {
    // The marker must come from this target's own rewriting, not from the input.
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if input.contains(MARKER) {
        return;
    }
    let parsed = match parse_ssh_url(input) {
        Ok(parsed) => parsed,
        Err(message) => return check_message(input, &message),
    };
    exercise(input, &parsed.db);
    assert!(!parsed.ssh.host.is_empty(), "{input:?}: empty SSH host accepted");
    assert_ne!(parsed.ssh.port, Some(0), "{input:?}: SSH port 0 accepted");
    let _ = format!("{parsed:?}");

    let trimmed = input.trim();
    let scheme_end = trimmed.find("://").map(|i| i + 3).expect("parsed without ://");
    let after = &trimmed[scheme_end..];
    let ssh_end = after.find(['/', '?', '#']).expect("parsed without a database part");
    let db_start = scheme_end + ssh_end + 1;
    let db_text = &trimmed[db_start..];

    if let Some(password) = &parsed.db.password {
        let prefix = format!("{}:{}@", parsed.db.user.as_deref().unwrap_or(""), password.expose());
        let Some(tail) = db_text.strip_prefix(&prefix) else {
            panic!("{input:?}: the database password is not where the URL has it");
        };
        let variant = format!(
            "{}{}:{MARKER}@{tail}",
            &trimmed[..db_start],
            parsed.db.user.as_deref().unwrap_or("")
        );
        let other = parse_ssh_url(&variant)
            .unwrap_or_else(|e| panic!("{input:?}: only the password changed, yet {variant:?} fails: {e}"));
        assert_hidden(&variant, &other.db);
        let debug = format!("{other:?}");
        assert!(
            !debug.contains(MARKER),
            "{variant:?}: Debug leaks the password: {debug}"
        );
        assert_eq!(
            other.db.redacted(),
            parsed.db.redacted(),
            "{input:?}: redacted form depends on the password"
        );
    }

    let from = db_start + authority_end(db_text, false);
    if let Some(variant) = mark_secret_params(trimmed, from)
        && let Ok(other) = parse_ssh_url(&variant)
    {
        assert_hidden(&variant, &other.db);
        // Only `&` separates the app's parameters: a `?passwd=` inside the `name` label (or the agent
        // socket path) is part of that value, not a parameter, so it may show there.
        let in_app_value = other.name.as_deref().is_some_and(|n| n.contains(MARKER))
            || other
                .agent_socket
                .as_ref()
                .is_some_and(|p| p.to_string_lossy().contains(MARKER));
        let debug = format!("{other:?}");
        assert!(
            in_app_value || !debug.contains(MARKER),
            "{variant:?}: Debug leaks a password parameter: {debug}"
        );
    }
});
