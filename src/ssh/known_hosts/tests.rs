use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use russh::keys::PublicKey;

use super::*;

// Keys generated once with `ssh-keygen` on the development machine; the expected
// fingerprints are what `ssh-keygen -lf` printed for them.
const ED_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBSjldAlqBxYzFa4LfpffEy2O10P6Z+APK9oVUtHxtsx";
const ED_A_FP: &str = "SHA256:OwhIfNPsmMnoqlUet0WohM0YCcn3LZ8vD8mNUrWBP+Y";
const ED_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPRxKBcNfnWOC7FiiVlVelRnSlWt2VJPLg3GlSbSg2J6";
const ED_C: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINDGH1s6GsiyHFGr7kfLf/Y8llae7GWpqOgDGOxXQqHc";
const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBKd/7++37EfZgWh0S5gD0512HLz3f39EWj2Olkc4Uja4JDHd0ziOI6YyO/4oRyK0sYr17p6EI29wjHLJZeFxf+E=";
const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDLwc9BkgXoXHY1g5uDRPX6VGReJ7r9l693QTpHrU7wASc6XEFhuxm3bEY+1K3AdlxKFzsBPiUCqxoGggSZr+SnqLHlXorAXL0NPj3/B39MO3aS0rMA4MCCRUVGDTrdezW3CnXAXZd00IL8bptdkYzPF7B3dHchVzfJoOYwxLoi+cF7YuWIknPFCwHB+iAlnXt0Y4B7NfSj72iCJ2+qbdVvwRnCgxL4h6xT5eZi0KMJdqT4XJvxcKOnGH08PovEQdO8gwKo9maskk8osJyq8a3Y2XW5zKr7tcS5/2JdbaNJ/m9v7wmfjC1rOwlRFjgw4Gq5Pg16tsa5qHHkapikH/ex";
const RSA_FP: &str = "SHA256:XxpRAs8q4VnD4Umlf8kbLZP0MhtCM/LRWtWj/se2LQc";
const RSA_2: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCmO8Y//gZUb1a5S9uQ0ziKrgai6B0pWOkItRC397dY/NkBIKmWCOTna+gzTq9LW2r3Vve8P80X07TnVWgFSZEHLvIU0iB/GXHrUTpSj+ANHpiYWeFffLyhlqUYI5KDkblrCv7nhmpb0xbRCJtUB0kTetARjers9SjtLVa35AvWn4vp3L+/pw30JB+wMwgR0pwRsbV8fab/YPmnO7bkid5bhZR7iwwN521a3eup4hrsMq0lUpyaG+6aDrmMieaUuUGN+46oQ8hPihwcQV+ZkPKBXEkdCADg1fQRIFKfwhX0Q+U07bqVSplktWGNxT5Bivt1Oe3t4B5sQ6O5hZPfQGfB";

// Produced by `ssh-keygen -H` from a file holding
//   bastion.example.com ED_A
//   [db.internal.example.com]:2222 ED_B
const HASHED: &str = "\
|1|D0NjKu1C/OtMOjYtXRFRPBVIC8Q=|aymvjvK7qOCvrG5qEwgdYLMGUiY= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBSjldAlqBxYzFa4LfpffEy2O10P6Z+APK9oVUtHxtsx
|1|em3IphClgBklqot85pXm84LUxdA=|pNeRqSDgmEWr7yt7ajztONZQM10= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPRxKBcNfnWOC7FiiVlVelRnSlWt2VJPLg3GlSbSg2J6
";

fn key(openssh: &str) -> PublicKey {
    PublicKey::from_openssh(openssh).expect("fixture key parses")
}

fn file(name: &str, text: &str) -> KnownHosts {
    KnownHosts::parse(Path::new(name), text)
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn verdict(text: &str, name: &str, offered: &str) -> Verdict {
    check(&[file("kh", text)], &names(&[name]), &key(offered))
}

fn trusted(line: usize) -> Verdict {
    Verdict::Trusted {
        path: PathBuf::from("kh"),
        line,
    }
}

fn unknown() -> Verdict {
    Verdict::Unknown {
        other_types: Vec::new(),
    }
}

/// A scratch directory unique to one test, removed first so reruns start clean.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sqltun-known-hosts-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// Real `ssh-keygen -H` output must match: proves the HMAC key/message order, the
/// base64 flavour and the `|1|salt|hash` layout agree with OpenSSH.
#[test]
fn hashed_entries_from_ssh_keygen_match() {
    let kh = file("kh", HASHED);
    assert!(kh.problems.is_empty(), "{:?}", kh.problems);
    match &kh.entries[0].hosts {
        HostSpec::Hashed { salt, hash } => assert_eq!((salt.len(), hash.len()), (20, 20)),
        other => panic!("expected a hashed host, got {other:?}"),
    }
    assert_eq!(verdict(HASHED, "bastion.example.com", ED_A), trusted(1));
    let db = lookup_name("db.internal.example.com", 2222);
    assert_eq!(verdict(HASHED, &db, ED_B), trusted(2));
    // The hash covers the port: the same host on port 22 is a different name.
    assert_eq!(verdict(HASHED, "db.internal.example.com", ED_B), unknown());
    // Names are lowercased before hashing, as ssh does.
    assert_eq!(verdict(HASHED, "Bastion.Example.COM", ED_A), trusted(1));
    // A hashed entry for the host with another ed25519 key means "changed".
    assert!(matches!(
        verdict(HASHED, "bastion.example.com", ED_C),
        Verdict::Changed { line: 1, .. }
    ));
}

/// Lookup names follow OpenSSH: bare host on port 22, `[host]:port` elsewhere.
#[test]
fn lookup_name_brackets_non_standard_ports() {
    assert_eq!(lookup_name("DB.Example.com", 22), "db.example.com");
    assert_eq!(lookup_name("db.example.com", 2222), "[db.example.com]:2222");
    assert_eq!(lookup_name("::1", 2222), "[::1]:2222");
    assert_eq!(lookup_name("10.0.0.1", 0), "10.0.0.1");
}

/// `[host]:port` entries apply to that port only; wildcards work inside the brackets.
#[test]
fn bracketed_port_entries_match_only_their_port() {
    let text = format!("[db.example.com]:2222 {ED_A}\n[*.internal]:2200 {ED_B}\n");
    let on = |host: &str, port: u16, k: &str| verdict(&text, &lookup_name(host, port), k);
    assert_eq!(on("db.example.com", 2222, ED_A), trusted(1));
    assert_eq!(on("db.example.com", 22, ED_A), unknown());
    assert_eq!(on("db.example.com", 2223, ED_A), unknown());
    assert_eq!(on("pg.internal", 2200, ED_B), trusted(2));
    assert_eq!(on("pg.internal", 22, ED_B), unknown());
}

/// A comma-separated host list applies to each of its names and nothing else.
#[test]
fn host_lists_match_each_member() {
    let text = format!("alpha,beta.example.com,10.0.0.5 {ED_A}\n");
    for name in ["alpha", "beta.example.com", "10.0.0.5"] {
        assert_eq!(verdict(&text, name, ED_A), trusted(1), "{name}");
    }
    assert_eq!(verdict(&text, "gamma", ED_A), unknown());
    assert_eq!(verdict(&text, "alpha.example.com", ED_A), unknown());
}

/// `*` and `?` behave like OpenSSH's match_pattern (whole-name match, `?` exactly one).
#[test]
fn wildcards() {
    let spec = |p: &str| HostSpec::Patterns(vec![p.to_owned()]);
    assert!(spec("*.example.com").matches("db.example.com"));
    assert!(spec("*.example.com").matches("a.b.example.com"));
    assert!(!spec("*.example.com").matches("example.com"));
    assert!(spec("db?.example.com").matches("db1.example.com"));
    assert!(!spec("db?.example.com").matches("db.example.com"));
    assert!(!spec("db?.example.com").matches("db12.example.com"));
    assert!(spec("*").matches("anything"));
    assert!(spec("**").matches(""));
    assert!(spec("a*b*c").matches("aXXbYYc"));
    assert!(!spec("a*b*c").matches("aXXbYYcd"));
    assert!(spec("*?").matches("x"));
    assert!(!spec("*?").matches(""));
    let text = format!("*.example.com {ED_A}\n");
    assert_eq!(verdict(&text, "db.example.com", ED_A), trusted(1));
}

/// A negated pattern that matches vetoes the line, wherever it appears in the list.
#[test]
fn negation_overrides_wildcard() {
    for hosts in ["*.example.com,!secret.example.com", "!secret.example.com,*.example.com"] {
        let text = format!("{hosts} {ED_A}\n");
        assert_eq!(verdict(&text, "secret.example.com", ED_A), unknown(), "{hosts}");
        assert_eq!(verdict(&text, "db.example.com", ED_A), trusted(1), "{hosts}");
    }
    // A negation alone never matches: it only takes away.
    let text = format!("!secret.example.com {ED_A}\n");
    assert_eq!(verdict(&text, "db.example.com", ED_A), unknown());
}

/// Several keys of one type for a host are normal (key rotation, clusters behind one
/// name); any of them is trusted, which is where russh's helper said "changed".
#[test]
fn two_keys_of_one_type_are_both_trusted() {
    let text = format!("db.example.com {ED_A}\ndb.example.com {ED_B}\n");
    assert_eq!(verdict(&text, "db.example.com", ED_A), trusted(1));
    assert_eq!(verdict(&text, "db.example.com", ED_B), trusted(2));
}

/// A different key of a known algorithm is "changed", pointing at the file and line
/// (counting comments and blank lines) and carrying the key that was expected.
#[test]
fn changed_key_is_reported_with_its_line() {
    let text = format!("# header\n\nother.example.com {ED_C}\n  db.example.com {ED_A} old key\n");
    match verdict(&text, "db.example.com", ED_C) {
        Verdict::Changed { path, line, known } => {
            assert_eq!((path, line), (PathBuf::from("kh"), 4));
            assert_eq!(known.key_data(), key(ED_A).key_data());
            assert_eq!(known.comment().as_str_lossy(), "old key");
        }
        other => panic!("expected Changed, got {other:?}"),
    }
    // Across files the report names the file that knows the host.
    let files = [
        file("first", &format!("elsewhere {ED_A}\n")),
        file("second", &format!("db.example.com {ED_A}\n")),
    ];
    assert!(matches!(
        check(&files, &names(&["db.example.com"]), &key(ED_C)),
        Verdict::Changed { path, line: 1, .. } if path == Path::new("second")
    ));
}

/// RSA is one algorithm whatever signature name the line uses: `rsa-sha2-512` lines
/// (accepted by OpenSSH) hold ssh-rsa keys and count for "changed".
#[test]
fn rsa_signature_names_are_the_ssh_rsa_type() {
    let b64 = RSA.split(' ').nth(1).expect("fixture has base64");
    let text = format!("db.example.com rsa-sha2-512 {b64}\n");
    let kh = file("kh", &text);
    assert!(kh.problems.is_empty(), "{:?}", kh.problems);
    assert_eq!(key_type(&kh.entries[0].key), "ssh-rsa");
    assert_eq!(verdict(&text, "db.example.com", RSA), trusted(1));
    assert!(matches!(
        verdict(&text, "db.example.com", RSA_2),
        Verdict::Changed { line: 1, .. }
    ));
}

/// `@revoked` refuses a key even when another line trusts it, in any file order;
/// it applies only to hosts its host field matches, and a revoked key of the same
/// type is not a "known" key that would make another one "changed".
#[test]
fn revoked_overrides_trusted() {
    let text = format!("db.example.com {ED_A}\n@revoked * {ED_A}\n");
    assert_eq!(
        verdict(&text, "db.example.com", ED_A),
        Verdict::Revoked {
            path: PathBuf::from("kh"),
            line: 2
        }
    );
    let files = [
        file("trusting", &format!("db.example.com {ED_A}\n")),
        file("revoking", &format!("@revoked\t*.example.com {ED_A}\n")),
    ];
    assert!(matches!(
        check(&files, &names(&["db.example.com"]), &key(ED_A)),
        Verdict::Revoked { path, line: 1 } if path == Path::new("revoking")
    ));
    let elsewhere = format!("db.example.com {ED_A}\n@revoked other.example.com {ED_A}\n");
    assert_eq!(verdict(&elsewhere, "db.example.com", ED_A), trusted(1));
    let only_revoked = format!("@revoked db.example.com {ED_B}\n");
    assert_eq!(verdict(&only_revoked, "db.example.com", ED_A), unknown());
}

/// With keys of other algorithms only, the host is "unknown" and the known types are
/// listed once each, in file order, so the caller can warn as OpenSSH does.
#[test]
fn other_types_only_is_unknown_with_other_types() {
    let text = format!("db.example.com {ECDSA}\ndb.example.com {RSA}\ndb.example.com {ECDSA}\nx {ED_B}\n");
    assert_eq!(
        verdict(&text, "db.example.com", ED_A),
        Verdict::Unknown {
            other_types: vec!["ecdsa-sha2-nistp256".to_owned(), "ssh-rsa".to_owned()]
        }
    );
    let kh = [file("kh", &text)];
    let lines: Vec<usize> = known_keys(&kh, &names(&["db.example.com"]))
        .iter()
        .map(|(_, e)| e.line)
        .collect();
    assert_eq!(lines, [1, 2, 3]);
}

/// `@cert-authority` lines are kept for later certificate support but never make a
/// plain key trusted or changed.
#[test]
fn cert_authority_lines_are_parsed_but_not_used_by_check() {
    let text = format!("@cert-authority *.example.com {ED_A}\n");
    let kh = file("kh", &text);
    assert_eq!(kh.entries.len(), 1);
    assert_eq!(kh.entries[0].marker, Marker::CertAuthority);
    assert_eq!(verdict(&text, "db.example.com", ED_A), unknown());
    assert_eq!(verdict(&text, "db.example.com", ED_B), unknown());
}

/// Bad lines are skipped like OpenSSH does and reported with their line numbers,
/// without hiding the good lines around them.
#[test]
fn malformed_lines_are_recorded_and_skipped() {
    let ed_b64 = ED_A.split(' ').nth(1).expect("fixture has base64");
    let rsa_b64 = RSA.split(' ').nth(1).expect("fixture has base64");
    let text = [
        "# comment".to_owned(),
        format!("db.example.com ssh-ed25519 {}", "!!notbase64!!"),
        format!("db.example.com ssh-foo {ed_b64}"),
        "db.example.com".to_owned(),
        "db.example.com ssh-ed25519".to_owned(),
        format!("db.example.com ssh-rsa {ed_b64}"),
        format!("@trusted db.example.com {ED_A}"),
        format!("@revoked @cert-authority db.example.com {ED_A}"),
        format!("|1|AAAA|AAAA {ED_A}"),
        format!("|2|D0NjKu1C/OtMOjYtXRFRPBVIC8Q=|aymvjvK7qOCvrG5qEwgdYLMGUiY= {ED_A}"),
        format!("db.example.com ssh-ed25519 {}", &rsa_b64[..rsa_b64.len() - 4]),
        format!("db.example.com {ED_A}"),
        "db.example.com # only a comment".to_owned(),
    ]
    .join("\n");
    let kh = file("kh", &text);
    let bad: Vec<usize> = kh.problems.iter().map(|p| p.line).collect();
    assert_eq!(bad, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13], "{:#?}", kh.problems);
    assert_eq!(kh.entries.len(), 1);
    assert_eq!(kh.entries[0].line, 12);
    assert!(
        kh.problems[1].message.contains("unsupported key type"),
        "{:?}",
        kh.problems[1]
    );
    assert!(
        kh.problems[4].message.contains("does not match"),
        "{:?}",
        kh.problems[4]
    );
    assert_eq!(verdict(&text, "db.example.com", ED_A), trusted(12));
}

/// Host names and patterns compare case-insensitively, as in OpenSSH.
#[test]
fn matching_is_case_insensitive() {
    let text = format!("DB.Example.COM {ED_A}\n*.EXAMPLE.org {ED_B}\n");
    assert_eq!(verdict(&text, "db.example.com", ED_A), trusted(1));
    assert_eq!(verdict(&text, "DB.EXAMPLE.com", ED_A), trusted(1));
    assert_eq!(verdict(&text, "Pg.Example.Org", ED_B), trusted(2));
}

/// Keys are compared by key material: a different comment (or none) changes nothing.
#[test]
fn comments_do_not_affect_key_comparison() {
    let text = format!("db.example.com {ED_A} added by hand\n");
    assert_eq!(
        verdict(&text, "db.example.com", &format!("{ED_A} someone@laptop")),
        trusted(1)
    );
}

/// Every name passed to check() is tried (e.g. a HostKeyAlias plus an address).
#[test]
fn any_of_several_names_may_match() {
    let text = format!("10.1.2.3 {ED_A}\n");
    let found = check(
        &[file("kh", &text)],
        &names(&["db.example.com", "10.1.2.3"]),
        &key(ED_A),
    );
    assert_eq!(found, trusted(1));
    assert_eq!(check(&[file("kh", &text)], &[], &key(ED_A)), unknown());
}

/// Files written on Windows still parse, and line numbers are unaffected.
#[test]
fn crlf_line_endings_are_accepted() {
    let text = format!("# c\r\ndb.example.com {ED_A}\r\n");
    let kh = file("kh", &text);
    assert!(kh.problems.is_empty(), "{:?}", kh.problems);
    assert_eq!(verdict(&text, "db.example.com", ED_A), trusted(2));
}

/// What append() writes is read back by parse() and trusted at the line it returned,
/// hashed or not, with the directory and file created private.
#[test]
fn append_round_trip() {
    let dir = scratch_dir("round-trip");
    let path = dir.join("nested").join("known_hosts");
    assert_eq!(KnownHosts::load(&path).expect("load"), None);

    let db = lookup_name("DB.example.com", 2222);
    assert_eq!(append(&path, &db, &key(ED_A), false).expect("append"), 1);
    assert_eq!(append(&path, "bastion", &key(RSA), true).expect("append"), 2);
    assert_eq!(append(&path, "db.example.com", &key(ECDSA), false).expect("append"), 3);

    let kh = KnownHosts::load(&path).expect("load").expect("file exists");
    assert!(kh.problems.is_empty(), "{:?}", kh.problems);
    let at = |line| Verdict::Trusted {
        path: path.clone(),
        line,
    };
    let files = [kh];
    assert_eq!(check(&files, &names(&["[db.example.com]:2222"]), &key(ED_A)), at(1));
    assert_eq!(check(&files, &names(&["bastion"]), &key(RSA)), at(2));
    assert_eq!(check(&files, &names(&["db.example.com"]), &key(ECDSA)), at(3));
    assert!(matches!(files[0].entries[1].hosts, HostSpec::Hashed { .. }));

    let text = fs::read_to_string(&path).expect("read");
    assert!(text.starts_with(&format!("[db.example.com]:2222 {ED_A}\n")), "{text}");
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("|1|")), "{text}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("parent")), 0o700);
    }
    let _ = fs::remove_dir_all(&dir);
}

/// A hand-edited file whose last line lacks its newline gets one before our entry,
/// instead of our entry being glued onto that line.
#[test]
fn append_to_file_without_trailing_newline() {
    let dir = scratch_dir("no-newline");
    fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("known_hosts");
    fs::write(&path, format!("# keys\nold.example.com {ED_B}")).expect("write");

    assert_eq!(append(&path, "new.example.com", &key(ED_A), false).expect("append"), 3);
    let text = fs::read_to_string(&path).expect("read");
    assert_eq!(
        text,
        format!("# keys\nold.example.com {ED_B}\nnew.example.com {ED_A}\n")
    );
    let kh = KnownHosts::parse(&path, &text);
    assert!(kh.problems.is_empty(), "{:?}", kh.problems);
    let lines: Vec<usize> = kh.entries.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3]);
    let _ = fs::remove_dir_all(&dir);
}

/// Names that would read back as patterns, markers, comments or broken lines, and
/// certificates, are refused rather than written.
#[test]
fn append_refuses_names_that_would_change_meaning() {
    let dir = scratch_dir("bad-names");
    let path = dir.join("known_hosts");
    for name in [
        "",
        "a b",
        "a,b",
        "*.example.com",
        "db?",
        "#db",
        "@revoked",
        "|1|x",
        "!db",
        "a\nb",
    ] {
        let err = append(&path, name, &key(ED_A), false).expect_err(name);
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
    }
    assert!(!path.exists());
}

/// Fingerprints are shown to users next to `ssh-keygen -lf` output; they must agree.
#[test]
fn fingerprint_matches_ssh_keygen() {
    assert_eq!(fingerprint(&key(ED_A)), ED_A_FP);
    assert_eq!(fingerprint(&key(RSA)), RSA_FP);
}

/// parse() must never panic or give up on a file, whatever is in it; each garbage line
/// becomes a problem and a good line after it still counts.
#[test]
fn parse_survives_garbage() {
    let long = "a".repeat(100_000);
    let long_glob = format!("{} {ED_A}", "*".repeat(5_000));
    let nasty = [
        "|1|",
        "|1|!!|",
        "|1||",
        "|",
        "[",
        "[db.example.com]:",
        "@",
        "@revoked",
        "@revoked ",
        "@revoked\t",
        "@cert-authority @revoked",
        "\u{feff}db.example.com ssh-ed25519 AAAA",
        "é ssh-ed25519 é",
        "db.example.com \0 \0",
        "db.example.com ssh-ed25519 ====",
        "db.example.com ssh-ed25519 AAAA",
        "db.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBSj",
        long.as_str(),
    ];
    for junk in nasty {
        let text = format!("{junk}\ndb.example.com {ED_A}\n");
        let kh = file("kh", &text);
        assert_eq!(kh.entries.len(), 1, "{junk:?}");
        assert_eq!(kh.entries[0].line, 2, "{junk:?}");
        assert_eq!(kh.problems.len(), 1, "{junk:?}: {:?}", kh.problems);
        assert_eq!(kh.problems[0].line, 1, "{junk:?}");
        assert!(kh.problems[0].message.chars().count() < 200, "{junk:?}");
    }
    // Subpatterns past OpenSSH's 1023-byte buffer never match, even as `*`.
    let kh = file("kh", &long_glob);
    assert!(kh.problems.is_empty());
    assert_eq!(check(&[kh], &names(&["db"]), &key(ED_A)), unknown());
    assert_eq!(file("kh", "").entries.len(), 0);
    assert_eq!(file("kh", "\n\n \t\n#\n").problems.len(), 0);
}

/// Patterns with many stars against long names must not take exponential time, as
/// a naive recursive matcher would: known_hosts content is not trusted input.
#[test]
fn pathological_patterns_stay_fast() {
    let pattern = format!("{}b", "*a".repeat(30));
    let name = "a".repeat(1_000);
    let started = std::time::Instant::now();
    assert!(!HostSpec::Patterns(vec![pattern]).matches(&name));
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

/// Found by fuzzing: key blobs whose type label holds control bytes put them raw into
/// problem messages, which `-v` prints. Every quoted piece is escaped and shortened.
#[test]
fn problem_messages_escape_what_they_quote() {
    let text = "\
host.example ssh-ed25519 AAAAC3NzaC1lZDI1NTECAAAAICXd8cGJXs7FfUn5Hdy0/IR3ZRUHpn6eA8RyK0ICCdpO
host.example ssh-rsa AAAACC1AC3NzaC15AAAAAhka
\u{1b}[2J\u{202e}host ssh-ed25519\u{7}\u{1b}\u{1b}\u{1b}\u{1b}\u{1b}\u{1b}\u{1b}\u{1b}\u{1b}\u{1b} AAAA
|1|\u{1b}]0;x\u{7}|x ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICXd8cGJXs7FfUn5Hdy0/IR3ZRUHpn6eA8RyK0ICCdpO
";
    let kh = file("kh", text);
    assert_eq!(kh.problems.len(), 4, "{:?}", kh.problems);
    for p in &kh.problems {
        assert!(!p.message.chars().any(|c| c.is_control() || c == '\u{202e}'), "{p:?}");
        assert!(p.message.chars().count() < 200, "{p:?}");
    }
    assert!(
        kh.problems[0].message.contains(r"ssh-ed2551\x02"),
        "{:?}",
        kh.problems[0]
    );
    assert!(kh.problems[1].message.contains(r"\x0bssh-y"), "{:?}", kh.problems[1]);
}

/// Only a regular file of at most 16 MiB is read (or the null device, which configs use
/// for "no file"): a FIFO would block forever and `/dev/zero` would never end. append()
/// refuses them too instead of reading them to count lines.
#[test]
fn special_and_oversized_files_are_refused() {
    let dir = scratch_dir("special");
    fs::create_dir_all(&dir).expect("mkdir");
    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let started = std::time::Instant::now();
    for (path, kind) in [
        (fifo.as_path(), "FIFO"),
        (Path::new("/dev/zero"), "character device"),
        (dir.as_path(), "directory"),
    ] {
        let err = KnownHosts::load(path).expect_err("not a regular file");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(kind), "{err}");
    }
    let err = append(&fifo, "db.example.com", &key(ED_A), false).expect_err("a FIFO");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    let null = KnownHosts::load(Path::new("/dev/null")).expect("the null device reads as empty");
    assert!(null.is_some_and(|kh| kh.entries.is_empty() && kh.problems.is_empty()));

    let big = dir.join("big");
    let line = format!("db.example.com {ED_A}\n");
    let count = usize::try_from(MAX_FILE_LEN).expect("fits") / line.len() + 1;
    fs::write(&big, line.repeat(count)).expect("write");
    let err = KnownHosts::load(&big).expect_err("too large");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("16 MiB"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}
