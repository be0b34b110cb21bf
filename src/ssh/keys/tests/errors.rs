//! Files that cannot be used: permissions, damage, costly key derivations, hostile text, special files.

use super::*;

/// OpenSSH's "UNPROTECTED PRIVATE KEY FILE": group/other access is refused
/// before the file is read, and the message gives the mode and the fix.
#[test]
fn too_open_key_is_refused_with_chmod_advice() {
    let d = Scratch::new("perms");
    let path = d.keygen("id", &["-t", "ed25519", "-N", ""]);
    for mode in [0o644, 0o640, 0o604, 0o660, 0o666] {
        chmod(&path, mode);
        let err = load(&path, None).expect_err("too open");
        assert_eq!(err, KeyError::TooOpen { mode });
        let advice = err.describe(&path);
        assert!(advice.contains(&format!("chmod 600 {}", path.display())), "{advice}");
        assert!(advice.contains(&format!("{mode:04o}")), "{advice}");
        assert!(advice.contains("UNPROTECTED PRIVATE KEY FILE"), "{advice}");
    }
    for mode in [0o600, 0o400] {
        chmod(&path, mode);
        assert!(check_permissions(&path).is_ok());
        assert!(load(&path, None).is_ok());
    }
}

/// The point of public_key_for: the public half of an encrypted key without its
/// passphrase, from the OpenSSH file itself even when the .pub file is gone.
#[test]
fn public_key_for_encrypted_key_without_passphrase() {
    let d = Scratch::new("public_for");
    let os = d.keygen("os", &["-t", "ed25519", "-N", PASS]);
    let expected = pub_file(&os);
    fs::remove_file(d.path("os.pub")).expect("remove .pub");
    let public = public_key_for(&os).expect("from the OpenSSH public section");
    assert!(same_key(&public, &expected));

    let pem = d.keygen("pem", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS]);
    let public = public_key_for(&pem).expect("from pem.pub");
    assert!(same_key(&public, &pub_file(&pem)));
    fs::remove_file(d.path("pem.pub")).expect("remove .pub");
    assert!(
        public_key_for(&pem).is_none(),
        "encrypted PEM keeps no public key in clear"
    );

    let ppk = d.write("k.ppk", PPK_V3_ENCRYPTED);
    let public = public_key_for(&ppk).expect("from the PuTTY public lines");
    assert!(same_key(&public, &parse_public_line(PPK_PUBLIC).expect("fixture")));

    let plain = d.keygen("p8", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""]);
    let expected = pub_file(&plain);
    fs::remove_file(d.path("p8.pub")).expect("remove .pub");
    assert!(same_key(&public_key_for(&plain).expect("decoded"), &expected));

    // No key file, only its .pub (an agent-held key): still answered.
    let agent_only = d.keygen("agent", &["-t", "ed25519", "-N", ""]);
    let expected = pub_file(&agent_only);
    fs::remove_file(&agent_only).expect("remove key");
    assert!(same_key(&public_key_for(&agent_only).expect("from .pub"), &expected));
    assert!(public_key_for(&d.path("nothing")).is_none());
}

/// Damaged files of every kind: empty, blank, garbage, binary, cut short at any
/// point or with a flipped character. Never a panic, never a different key, and
/// a cut-short encrypted key is reported as damaged before a passphrase is asked.
#[test]
fn damaged_files_give_clear_errors() {
    let d = Scratch::new("damaged");
    let cases = [
        ("", "empty"),
        (" \n\n\t\n", "empty"),
        ("hello world\n", "no private-key header"),
        (
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "CERTIFICATE",
        ),
    ];
    for (text, needle) in cases {
        let path = d.write("k", text);
        let err = load(&path, None).expect_err("not a key");
        assert!(
            matches!(
                err,
                KeyError::Corrupt {
                    format: KeyFormat::Unknown,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.describe(&path).contains(needle), "{}", err.describe(&path));
    }
    let binary = d.write("bin", [0x30, 0x82, 0xff, 0xfe, 0x00, 0x80]);
    let err = load(&binary, None).expect_err("binary");
    assert!(err.describe(&binary).contains("binary"), "{}", err.describe(&binary));

    let keys = [
        (read(&d.keygen("os", &["-t", "ed25519", "-N", ""])), None),
        (read(&d.keygen("os_enc", &["-t", "ed25519", "-N", PASS])), Some(PASS)),
        (
            read(&d.keygen("pem", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""])),
            None,
        ),
        (
            read(&d.keygen("pem_enc", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS])),
            Some(PASS),
        ),
        (read(&d.keygen("p8", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""])), None),
        (
            read(&d.keygen("p8_enc", &["-t", "ecdsa", "-m", "PKCS8", "-N", PASS])),
            Some(PASS),
        ),
        (PPK_V3.to_string(), None),
        (PPK_V3_ENCRYPTED.to_string(), Some(PASS)),
    ];
    for (text, pass) in &keys {
        let original = decode(text, *pass).expect("intact key loads");
        let end = text.trim_end().rfind('\n').unwrap_or(0);
        for cut in (0..text.len()).step_by(5) {
            let short = text.get(..cut).unwrap_or_default();
            for attempt in [None, *pass] {
                match decode(short, attempt) {
                    Ok(key) => assert!(
                        same_key(key.public_key(), original.public_key()),
                        "cut at {cut} gave another key"
                    ),
                    Err(e) => {
                        let said = e.describe(Path::new("k"));
                        assert!(said.starts_with("Identity file k "), "{said}");
                        if pass.is_some() && cut > 40 && cut < end {
                            assert!(
                                matches!(e, KeyError::Corrupt { .. }),
                                "cut at {cut} of an encrypted key: {e:?}"
                            );
                        }
                    }
                }
            }
        }
        // A flipped character in the middle of the body.
        let mid = text.len() / 2;
        let flipped: String = text
            .char_indices()
            .map(|(i, c)| match (i == mid, c) {
                (true, 'A') => 'B',
                (true, c) if c.is_ascii_alphanumeric() => 'A',
                (_, c) => c,
            })
            .collect();
        if let Ok(key) = decode(&flipped, *pass) {
            assert!(same_key(key.public_key(), original.public_key()));
        }
    }
}

/// The passphrase must never reach an error, its Display or its description.
#[test]
fn passphrase_never_appears_in_errors() {
    let d = Scratch::new("no_leak");
    let secret = "s3cret-Passphrase-Value";
    let paths = [
        d.keygen("os", &["-t", "ed25519", "-N", PASS]),
        d.keygen("pem", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS]),
        d.keygen("p8", &["-t", "ecdsa", "-m", "PKCS8", "-N", PASS]),
        d.keygen("3des", &["-t", "ed25519", "-Z", "3des-cbc", "-N", PASS]),
        d.write("ppk", PPK_V3_ENCRYPTED),
        d.write("garbage", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"),
    ];
    for path in &paths {
        let err = load(path, Some(secret)).expect_err("wrong passphrase");
        let shown = format!("{err:?} {err} {}", err.describe(path));
        assert!(!shown.contains(secret), "{shown}");
    }
}

/// Same list and order as `ssh -G` prints for IdentityFile on the installed
/// OpenSSH (read with `-F /dev/null` so that no user config interferes).
#[test]
fn default_identity_paths_follow_openssh() {
    let home = Path::new("/home/u");
    let ours = default_identity_paths(home);
    let names: Vec<String> = ours
        .iter()
        .map(|p| {
            p.strip_prefix("/home/u/.ssh")
                .expect("under ~/.ssh")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "id_rsa",
            "id_ecdsa",
            "id_ecdsa_sk",
            "id_ed25519",
            "id_ed25519_sk",
            "id_xmss",
            "id_dsa"
        ]
    );
    let Ok(out) = Command::new("ssh")
        .args(["-F", "/dev/null", "-G", "localhost"])
        .output()
    else {
        return; // no ssh client installed: the list above stands
    };
    let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("identityfile ~/.ssh/"))
        .map(str::to_string)
        .collect();
    // Newer OpenSSH drops entries (id_dsa); it must never add or reorder any.
    let mut rest = names.iter();
    for name in &theirs {
        assert!(rest.any(|n| n == name), "ssh -G lists {theirs:?}, we have {names:?}");
    }
}

/// Commands in the advice must survive being pasted into a shell, whatever the
/// path; `~/` is left unquoted so the shell still expands it.
#[test]
fn advice_quotes_paths_for_the_shell() {
    for (path, quoted) in [
        ("/home/u/.ssh/id_rsa", "/home/u/.ssh/id_rsa"),
        ("~/.ssh/id_ed25519", "~/.ssh/id_ed25519"),
        ("~/my keys/work key", "~/'my keys/work key'"),
        ("it's", r"'it'\''s'"),
        ("$(rm -rf x)", "'$(rm -rf x)'"),
    ] {
        assert_eq!(shell_quote(Path::new(path)), quoted);
    }
    let advice = KeyError::TooOpen { mode: 0o644 }.describe(Path::new("~/my keys/id"));
    assert!(advice.contains("`chmod 600 ~/'my keys/id'`"), "{advice}");
    assert!(advice.contains("for ~/my keys/id are"), "{advice}");
}

/// A missing file and a directory are reported as such, not as a bad key.
#[test]
fn missing_and_unreadable_files() {
    let d = Scratch::new("missing");
    let missing = d.path("nope");
    assert_eq!(load(&missing, None).err(), Some(KeyError::NotFound));
    assert!(
        KeyError::NotFound
            .describe(&missing)
            .contains(&missing.display().to_string())
    );
    let dir = d.path("dir");
    fs::create_dir(&dir).expect("mkdir");
    chmod(&dir, 0o700);
    assert!(matches!(load(&dir, None), Err(KeyError::Unreadable(_))));
}

/// Keys pasted with indentation, trailing blanks or CRLF line ends still load
/// (russh wants the BEGIN line exactly), and a byte-order mark or text around the
/// block is ignored.
#[test]
fn untidy_key_text_still_loads() {
    let d = Scratch::new("untidy");
    for (name, args, pass) in [
        ("os", vec!["-t", "ed25519", "-N", PASS], Some(PASS)),
        (
            "pem",
            vec!["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS],
            Some(PASS),
        ),
        ("p8", vec!["-t", "ecdsa", "-m", "PKCS8", "-N", ""], None),
    ] {
        let text = read(&d.keygen(name, &args));
        let untidy: String = std::iter::once("\u{feff}Bag Attributes: none\r\n".to_string())
            .chain(text.lines().map(|l| format!("    {l}  \r\n")))
            .collect();
        assert_eq!(detect_format(&untidy), detect_format(&text), "{name}");
        assert!(decode(&untidy, pass).is_ok(), "{name}");
    }
}

/// An OpenSSH key with its bcrypt rounds replaced (the rest, salt and all, as it was).
fn with_bcrypt_rounds(text: &str, rounds: u32) -> String {
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut data = STANDARD.decode(body).expect("fixture base64");
    let kdf = data.windows(6).position(|w| w == b"bcrypt").expect("bcrypt kdf") + 6;
    // kdfoptions: uint32 length, string salt, uint32 rounds.
    let salt_len = data
        .get(kdf + 4..kdf + 8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .expect("salt length") as usize;
    let at = kdf + 8 + salt_len;
    data.splice(at..at + 4, rounds.to_be_bytes());
    let encoded = STANDARD.encode(&data);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(70)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// Found by fuzzing: a key file sets its own key-derivation cost, and 4294967295
/// bcrypt rounds or Argon2 passes kept load_identity busy for days. Costs far beyond
/// what the tools write are refused at once, with or without a passphrase (none would
/// help), naming the cost; invalid parameters are damage, not a wrong passphrase.
#[test]
fn excessive_key_derivation_is_refused_at_once() {
    let d = Scratch::new("kdf_cost");
    let text = read(&d.keygen("os", &["-t", "ed25519", "-N", PASS]));
    let started = std::time::Instant::now();
    for (rounds, bound) in [(u32::MAX, "4294967295 bcrypt rounds"), (10_001, "10001 bcrypt rounds")] {
        let path = d.write("huge", with_bcrypt_rounds(&text, rounds));
        for pass in [None, Some(PASS)] {
            let err = load(&path, pass).expect_err("refused");
            assert!(
                matches!(&err, KeyError::KdfTooCostly { cost, .. } if cost == bound),
                "{rounds}: {err:?}"
            );
        }
        let said = load(&path, Some(PASS)).expect_err("refused").describe(&path);
        assert!(
            said.contains(&path.display().to_string()) && said.contains(bound),
            "{said}"
        );
        if rounds == u32::MAX {
            assert!(said.contains("over 1 year") && said.contains("restore"), "{said}");
        } else {
            // Within reach of ssh-keygen: say how to lower it.
            assert!(
                said.contains(&format!("ssh-keygen -p -a 100 -f {}", path.display())),
                "{said}"
            );
        }
    }
    assert!(analyze(&with_bcrypt_rounds(&text, 10_000)).kdf_cost.is_none());
    // bcrypt_pbkdf refuses 0 rounds with the error a wrong passphrase gives.
    let zero = with_bcrypt_rounds(&text, 0);
    assert!(matches!(decode(&zero, Some(PASS)), Err(KeyError::Corrupt { .. })));

    let ppk = |line: &str, value: &str| {
        let prefix = format!("{line}: ");
        PPK_V3_ENCRYPTED
            .lines()
            .map(|l| match l.strip_prefix(&prefix) {
                Some(_) => format!("{prefix}{value}\n"),
                None => format!("{l}\n"),
            })
            .collect::<String>()
    };
    for (text, cost) in [
        (
            ppk("Argon2-Passes", "4294967295"),
            "4294967295 Argon2id passes over 32 KiB of memory",
        ),
        (ppk("Argon2-Memory", "4194304"), "Argon2id with 4096 MiB of memory"),
        (
            ppk("Argon2-Memory", "1048576").replace("Passes: 1\n", "Passes: 33\n"),
            "33 Argon2id passes over 1048576 KiB of memory",
        ),
    ] {
        for pass in [None, Some(PASS)] {
            let err = decode(&text, pass).expect_err("refused");
            assert!(
                matches!(&err, KeyError::KdfTooCostly { format: KeyFormat::Putty, cost: c, .. } if c == cost),
                "{err:?}"
            );
            assert!(err.describe(Path::new("k.ppk")).contains("puttygen") || text.contains("4294967295"));
        }
    }
    // A repeated line counts as ssh-key reads it: the last one.
    let repeated = PPK_V3_ENCRYPTED.replace("Argon2-Passes: 1\n", "Argon2-Passes: 1\nArgon2-Passes: 4294967295\n");
    assert!(matches!(
        decode(&repeated, Some(PASS)),
        Err(KeyError::KdfTooCostly { .. })
    ));
    // Values Argon2 refuses (with the error a wrong MAC gives) are damage.
    let no_salt: String = PPK_V3_ENCRYPTED
        .lines()
        .filter(|l| !l.starts_with("Argon2-Salt"))
        .map(|l| format!("{l}\n"))
        .collect();
    for text in [
        ppk("Argon2-Passes", "0"),
        ppk("Argon2-Parallelism", "0"),
        ppk("Argon2-Parallelism", "5"),
        ppk("Argon2-Parallelism", "100000"),
        ppk("Argon2-Memory", "x"),
        ppk("Argon2-Salt", "abc"),
        no_salt,
    ] {
        for pass in [None, Some(PASS)] {
            assert!(
                matches!(decode(&text, pass), Err(KeyError::Corrupt { .. })),
                "{text}: {:?}",
                decode(&text, pass)
            );
        }
    }
    // Encrypted PKCS#8: PBKDF2 iterations and scrypt parameters, in hand-made DER (tags below).
    const INTEGER: u8 = 0x02;
    const OCTET_STRING: u8 = 0x04;
    const OID: u8 = 0x06;
    const SEQUENCE: u8 = 0x30;
    let tlv = |tag: u8, parts: &[&[u8]]| {
        let body = parts.concat();
        let mut out = vec![tag];
        // DER lengths are minimal: the crates that read the key refuse any other.
        if body.len() < 0x80 {
            out.push(u8::try_from(body.len()).expect("short"));
        } else if body.len() < 0x100 {
            out.push(0x81);
            out.push(u8::try_from(body.len()).expect("short"));
        } else {
            out.push(0x82);
            out.extend(u16::try_from(body.len()).expect("fits").to_be_bytes());
        }
        out.extend(body);
        out
    };
    let oid = |der: &[u8]| tlv(OID, &[der]);
    let int = |n: u64| {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
        let mut v = bytes.get(skip..).unwrap_or_default().to_vec();
        if v.first().is_some_and(|&b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        tlv(INTEGER, &[&v])
    };
    let salt = tlv(OCTET_STRING, &[&[7u8; 16]]);
    let aes256 = tlv(
        SEQUENCE,
        &[
            &oid(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a]),
            &tlv(OCTET_STRING, &[&[1u8; 16]]),
        ],
    );
    let sha256 = tlv(
        SEQUENCE,
        &[&oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09]), &[0x05, 0x00]],
    );
    let pbkdf2 = |iterations: u64| {
        tlv(
            SEQUENCE,
            &[
                &oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c]),
                &tlv(SEQUENCE, &[&salt, &int(iterations), &sha256]),
            ],
        )
    };
    let scrypt = |n: u64, r: u64, p: u64| {
        tlv(
            SEQUENCE,
            &[
                &oid(&[0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x04, 0x0b]),
                &tlv(SEQUENCE, &[&salt, &int(n), &int(r), &int(p)]),
            ],
        )
    };
    let pem = |kdf: Vec<u8>| {
        let pbes2 = tlv(
            SEQUENCE,
            &[
                &oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d]),
                &tlv(SEQUENCE, &[&kdf, &aes256]),
            ],
        );
        let info = tlv(SEQUENCE, &[&pbes2, &tlv(OCTET_STRING, &[&[9u8; 48]])]);
        format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
            STANDARD.encode(info)
        )
    };
    assert_eq!(analyze(&pem(pbkdf2(2048))).kdf_cost, None);
    assert_eq!(analyze(&pem(pbkdf2(10_000_000))).kdf_cost, None);
    assert_eq!(analyze(&pem(scrypt(16384, 8, 1))).kdf_cost, None);
    for (text, cost) in [
        (pem(pbkdf2(u64::from(u32::MAX))), "4294967295 PBKDF2 iterations"),
        (
            pem(scrypt(1 << 30, 8, 1)),
            "scrypt with N=1073741824, r=8, p=1 (1048576 MiB of memory)",
        ),
        (
            pem(scrypt(1 << 20, 8, 64)),
            "scrypt with N=1048576, r=8, p=64 (1024 MiB of memory)",
        ),
    ] {
        assert_eq!(detect_format(&text), KeyFormat::Pkcs8Encrypted);
        for pass in [None, Some(PASS)] {
            let err = decode(&text, pass).expect_err("refused");
            assert!(
                matches!(&err, KeyError::KdfTooCostly { cost: c, .. } if c == cost),
                "{err:?}"
            );
        }
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Found by fuzzing: damaged keys were reported as needing a passphrase, even when it
/// had been given ("asked for a passphrase that was given"). Damage is reported as
/// damage, naming the format and what is wrong, whatever the passphrase.
#[test]
fn damaged_keys_are_never_passphrase_errors() {
    let d = Scratch::new("damaged_not_passphrase");
    let encrypted = read(&d.keygen("os", &["-t", "ed25519", "-N", PASS]));
    let plain = read(&d.keygen("p8", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""]));
    let body_start = encrypted.find('\n').expect("BEGIN line") + 1;
    let end = encrypted.find("-----END").expect("END line");
    let cases = [
        (
            "-----BEGIN PRIVATE KEY-----\nDEK-Info:AES-128-CBC,B93A892866C741880E23B892866C7418".to_string(),
            "END",
        ),
        (
            format!(
                "{}b3Blbz-\n{}--\n",
                encrypted.get(..body_start).unwrap_or_default(),
                encrypted.get(body_start..end).unwrap_or_default()
            ),
            "END",
        ),
        // The whole key, intact but for a garbage line russh would skip.
        (
            format!(
                "{}b3Blbz-\n{}",
                encrypted.get(..body_start).unwrap_or_default(),
                encrypted.get(body_start..).unwrap_or_default()
            ),
            "stray",
        ),
        // PEM encryption headers where they do not belong (russh would then decrypt
        // the block as PEM RSA and want a passphrase).
        (
            plain.replacen('\n', "\nDEK-Info: AES-128-CBC,B93A892866C741880E23B892866C7418\n\n", 1),
            "PEM encryption headers",
        ),
        (
            encrypted.replacen('\n', "\nDEK-Info: AES-128-CBC,B93A892866C741880E23B892866C7418\n\n", 1),
            "PEM encryption headers",
        ),
    ];
    for (text, needle) in cases {
        for pass in [None, Some(PASS), Some(WRONG)] {
            let err = decode(&text, pass).expect_err("damaged");
            assert!(matches!(err, KeyError::Corrupt { .. }), "{text:?} {pass:?}: {err:?}");
            let said = err.describe(Path::new("k"));
            assert!(said.contains(needle), "{said}");
        }
    }
}

/// Text quoted from a key file (a PEM label, a cipher or algorithm name, a decoder's
/// message) and the path itself never reach the terminal with control characters.
#[test]
fn messages_escape_control_characters() {
    let hostile = "\u{1b}[2J\u{7}\u{202e}evil";
    let path = Path::new("/k/id\u{1b}]0;x\u{7}\nkey");
    let errors = [
        KeyError::Unreadable(hostile.into()),
        KeyError::UnsupportedCipher {
            format: KeyFormat::OpenSsh { encrypted: true },
            cipher: hostile.into(),
        },
        KeyError::UnsupportedAlgorithm {
            format: KeyFormat::Putty,
            algorithm: hostile.into(),
        },
        KeyError::Corrupt {
            format: KeyFormat::Pkcs8,
            detail: hostile.repeat(1000),
        },
        KeyError::KdfTooCostly {
            format: KeyFormat::Putty,
            cost: hostile.into(),
            seconds: 100,
        },
        KeyError::Unsupported {
            format: KeyFormat::Ssh2,
        },
        KeyError::NotFound,
    ];
    let clean = |s: &str| !s.chars().any(|c| c.is_control() || is_invisible(c));
    for err in errors {
        let said = err.describe(path);
        assert!(clean(&said), "{said:?}");
        assert!(said.len() < 2000, "{} bytes", said.len());
        assert!(said.contains(r"/k/id\x1b]0;x\x07\nkey"), "{said}");
        assert!(clean(&err.to_string()), "{err}");
    }
    assert_eq!(shell_quote(path), r"$'/k/id\x1b]0;x\x07\x0akey'");
    assert_eq!(shell_quote(Path::new("~/a'\u{202e}")), r"~/$'a\'\u202e'");
    let label = decode("-----BEGIN \u{1b}[31mX-----\nAAAA\n-----END \u{1b}[31mX-----\n", None)
        .expect_err("not a key")
        .describe(Path::new("k"));
    assert!(clean(&label) && label.contains(r"\x1b[31mX"), "{label}");
    assert_eq!(printable("abc", 2), "ab…");
    assert_eq!(printable("a\u{1b}", 4), "a…");
}

/// Only regular files are read, at most 1 MiB of them: a FIFO must not block the
/// read (nobody may ever write to it), `/dev/zero` must not eat memory, and neither
/// gets "chmod 600" advice.
#[test]
fn special_and_oversized_files_are_refused() {
    let d = Scratch::new("special");
    let fifo = d.path("fifo");
    run("mkfifo", &[fifo.to_str().expect("utf-8")]);
    chmod(&fifo, 0o600);
    let started = std::time::Instant::now();
    for (path, kind) in [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
        (Path::new("/dev/null"), "a character device"),
    ] {
        let err = load(path, None).expect_err("not a regular file");
        assert!(
            matches!(&err, KeyError::Unreadable(why) if why.contains(kind)),
            "{err:?}"
        );
        assert!(!err.describe(path).contains("chmod"), "{}", err.describe(path));
        // The reader checks what it opened as well (public_key_for reads FILE.pub).
        assert!(matches!(read_key_text(path), Err(KeyError::Unreadable(_))));
    }
    assert!(public_key_for(&fifo).is_none());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    let big = d.write("big", vec![b'A'; (1 << 20) + 1]);
    let err = load(&big, None).expect_err("too large");
    assert!(
        matches!(&err, KeyError::Corrupt { detail, .. } if detail.contains("1048577 bytes")),
        "{err:?}"
    );
}

/// The pkcs5 crate refuses a PBES2 key whose PRF or cipher it does not know; such a key must still be
/// named as encrypted with that scheme (with the conversion advice), not called damaged.
#[test]
fn unknown_pkcs8_schemes_are_named() {
    let tlv = |tag: u8, parts: &[&[u8]]| {
        let body = parts.concat();
        let mut out = vec![tag, u8::try_from(body.len()).expect("short")];
        out.extend(body);
        out
    };
    let pbes2_oid = tlv(0x06, &[&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d]]);
    let pbkdf2_oid = tlv(0x06, &[&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c]]);
    let hmac = |last: u8| {
        tlv(
            0x30,
            &[
                &tlv(0x06, &[&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, last]]),
                &[0x05, 0x00],
            ],
        )
    };
    let iv = tlv(0x04, &[&[1u8; 16]]);
    let aes256 = tlv(
        0x30,
        &[
            &tlv(0x06, &[&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a]]),
            &iv,
        ],
    );
    // camellia256-cbc, 1.2.392.200011.61.1.1.1.4
    let camellia = tlv(
        0x30,
        &[
            &tlv(
                0x06,
                &[&[0x2a, 0x83, 0x08, 0x8c, 0x9a, 0x4b, 0x3d, 0x01, 0x01, 0x01, 0x04]],
            ),
            &iv,
        ],
    );
    let key = |prf: &[u8], cipher: &[u8]| {
        let params = tlv(0x30, &[&tlv(0x04, &[&[7u8; 8]]), &[0x02, 0x02, 0x08, 0x00], prf]);
        let kdf = tlv(0x30, &[&pbkdf2_oid, &params]);
        let scheme = tlv(0x30, &[&pbes2_oid, &tlv(0x30, &[&kdf, cipher])]);
        let info = tlv(0x30, &[&scheme, &tlv(0x04, &[&[9u8; 32]])]);
        format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
            STANDARD.encode(info)
        )
    };
    for (text, name) in [
        (
            key(&hmac(0x09), &camellia),
            "PBES2 (PBKDF2-HMAC-SHA256, OID 1.2.392.200011.61.1.1.1.4)",
        ),
        (
            key(&hmac(0x0d), &aes256),
            "PBES2 (PBKDF2-OID 1.2.840.113549.2.13, AES-256-CBC)",
        ),
    ] {
        for pass in [None, Some(PASS)] {
            let err = decode(&text, pass).expect_err("unsupported");
            assert_eq!(
                err,
                KeyError::UnsupportedCipher {
                    format: KeyFormat::Pkcs8Encrypted,
                    cipher: name.into()
                }
            );
            assert!(err.describe(Path::new("k")).contains("ssh-keygen -p -f k"), "{err:?}");
        }
    }
    // The same key with a known PRF and cipher is read as PBES2 that the crates decrypt.
    assert!(analyze(&key(&hmac(0x09), &aes256)).unsupported_cipher.is_none());
}
