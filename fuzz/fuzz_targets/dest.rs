//! `--ssh DEST` and `--db host:port`: whatever is typed, the parsers answer Ok or a message, never
//! panic, and what they accept is something the rest of sqltun can use as it is.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqltun::db::parse_target;
use sqltun::dest::parse_destination;

fuzz_target!(|data: &[u8]| {
    // Arguments reach clap as OsString and are turned into str before these parsers run.
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };

    match parse_destination(input) {
        Ok(dest) => {
            assert_eq!(dest.original, input, "original must be the text as typed");
            assert!(!dest.host.is_empty(), "{input:?}: accepted an empty host");
            assert_ne!(dest.port, Some(0), "{input:?}: accepted port 0");
            assert!(
                !dest.host.chars().any(|c| c.is_whitespace() || c.is_control()),
                "{input:?}: host {:?} has whitespace or control characters",
                dest.host
            );
            // A host starting with `-` would be read as an option by anything it is handed to.
            assert!(
                !dest.host.starts_with('-'),
                "{input:?}: host {:?} starts with -",
                dest.host
            );
            if let Some(user) = &dest.user {
                assert!(!user.is_empty(), "{input:?}: accepted an empty user");
                assert!(
                    !user.chars().any(|c| c.is_whitespace() || c.is_control()),
                    "{input:?}: user {user:?} has whitespace or control characters"
                );
            }
        }
        Err(message) => check_message(input, &message),
    }

    match parse_target(input) {
        Ok(target) => {
            assert!(!target.host.is_empty(), "{input:?}: accepted an empty host");
            assert_ne!(target.port, 0, "{input:?}: accepted port 0");
            assert!(
                !target.host.chars().any(|c| c.is_whitespace() || c.is_control()),
                "{input:?}: host {:?} has whitespace or control characters",
                target.host
            );
            assert!(
                !target.host.starts_with('-'),
                "{input:?}: host {:?} starts with -",
                target.host
            );
            // The target is printed (`forwarding … -> HOST:PORT`, `--output url`) and logged as
            // `Display`: printing and reading it again must give the same target.
            let shown = target.to_string();
            assert_eq!(
                parse_target(&shown).as_ref(),
                Ok(&target),
                "{input:?}: {shown:?} does not read back as the same target"
            );
        }
        Err(message) => check_message(input, &message),
    }
});

/// Known bug, tolerated so fuzzing goes on past it (set to false once fixed): the messages quote the
/// input as typed, so a control character in it (a line break, an escape sequence) reaches the
/// terminal; the URL parser escapes them. tests/malformed/args has the regression cases.
const KNOWN_BUG_RAW_CONTROL_CHARACTERS: bool = false;

/// One line a user can read: not empty, and no control character (a line break would split the
/// `sqltun: …` line, an escape sequence would reach the terminal), as the URL parser already promises.
fn check_message(input: &str, message: &str) {
    assert!(!message.is_empty(), "{input:?}: empty error message");
    if KNOWN_BUG_RAW_CONTROL_CHARACTERS && input.chars().any(char::is_control) {
        return;
    }
    assert!(
        !message.chars().any(char::is_control),
        "{input:?}: control character in the error message {message:?}"
    );
}
