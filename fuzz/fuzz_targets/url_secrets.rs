//! A password typed into a URL never comes back out: neither from the redacted form, Display or Debug
//! of a parsed URL, nor from an error message, however broken the rest of the URL is.
//!
//! The fuzzer writes the URL around a fixed password: `SCHEME://USER:MARKER REST` (and for +ssh URLs
//! `SCHEME+ssh://SSH/USER:MARKER REST`). USER has no `:`, so the password runs from the first `:` to
//! the last `@`, the span the URL module promises to mask; when REST holds no `@` the marker is not
//! a password and nothing is asserted about errors.
#![no_main]

mod common;

use common::{MARKER, assert_hidden, check_message};
use libfuzzer_sys::fuzz_target;
use sqltun::db::{parse_db_url, parse_ssh_url};

const SCHEMES: [&str; 10] = [
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "redis",
    "rediss",
    "mongodb",
    "sqlserver",
    "clickhouse",
    "PostgreSQL",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let mut parts = data.splitn(3, |&b| b == 0xff).map(String::from_utf8_lossy);
    let user: String = parts
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !matches!(c, ':' | '/' | '?' | '#' | '@'))
        .collect();
    let rest = parts.next().unwrap_or_default().into_owned();
    let ssh: String = parts
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !matches!(c, '/' | '?' | '#'))
        .collect();
    let scheme = SCHEMES[usize::from(selector) % SCHEMES.len()];
    // In SQL Server's JDBC form a `;` ends the host part: USER must not hold one, or the marker
    // lands in a `;key=value` parameter instead of the password.
    let user: String = if scheme == "sqlserver" {
        user.chars().filter(|&c| c != ';').collect()
    } else {
        user
    };
    // The marker counts as the password only where it is written once, by this target.
    if [&user, &rest, &ssh].iter().any(|part| part.contains(MARKER)) {
        return;
    }
    let is_password = rest.contains('@');

    let url = format!("{scheme}://{user}:{MARKER}{rest}");
    match parse_db_url(&url) {
        Ok(parsed) => assert_hidden(&url, &parsed),
        Err(message) => {
            check_message(&url, &message);
            if is_password {
                assert!(
                    !message.contains(MARKER),
                    "{url:?}: the error shows the password: {message}"
                );
            }
        }
    }

    let url = format!("{scheme}+ssh://{ssh}/{user}:{MARKER}{rest}");
    match parse_ssh_url(&url) {
        Ok(parsed) => {
            assert_hidden(&url, &parsed.db);
            let debug = format!("{parsed:?}");
            assert!(!debug.contains(MARKER), "{url:?}: Debug shows the password: {debug}");
        }
        Err(message) => {
            check_message(&url, &message);
            if is_password {
                assert!(
                    !message.contains(MARKER),
                    "{url:?}: the error shows the password: {message}"
                );
            }
        }
    }
});
