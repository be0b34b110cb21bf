//! Every format and variant the module docs list: detected, loaded or refused as the table says.

use super::*;

/// tell encrypted from plain without a passphrase, before any decoding.
#[test]
fn detects_every_format() {
    let d = Scratch::new("detect");
    let cases: Vec<(PathBuf, KeyFormat, bool)> = vec![
        (
            d.keygen("os", &["-t", "ed25519", "-N", ""]),
            KeyFormat::OpenSsh { encrypted: false },
            false,
        ),
        (
            d.keygen("os_enc", &["-t", "ed25519", "-N", PASS]),
            KeyFormat::OpenSsh { encrypted: true },
            true,
        ),
        (
            d.keygen("rsa_pem", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""]),
            KeyFormat::PemRsa { encrypted: false },
            false,
        ),
        (
            d.keygen("rsa_pem_enc", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS]),
            KeyFormat::PemRsa { encrypted: true },
            true,
        ),
        (
            d.keygen("ec_pem", &["-t", "ecdsa", "-m", "PEM", "-N", ""]),
            KeyFormat::PemEc { encrypted: false },
            false,
        ),
        (
            d.keygen("ec_pem_enc", &["-t", "ecdsa", "-m", "PEM", "-N", PASS]),
            KeyFormat::PemEc { encrypted: true },
            true,
        ),
        (
            d.keygen("p8", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""]),
            KeyFormat::Pkcs8,
            false,
        ),
        (
            d.keygen("p8_enc", &["-t", "ecdsa", "-m", "PKCS8", "-N", PASS]),
            KeyFormat::Pkcs8Encrypted,
            true,
        ),
        (d.write("v3.ppk", PPK_V3), KeyFormat::Putty, false),
        (d.write("v3e.ppk", PPK_V3_ENCRYPTED), KeyFormat::Putty, true),
        (d.write("v2e.ppk", PPK_V2_ENCRYPTED), KeyFormat::Putty, true),
        (d.write("ssh2", SSH2_KEY), KeyFormat::Ssh2, false),
        (d.write("ssh2e", SSH2_KEY_ENCRYPTED), KeyFormat::Ssh2, true),
        (d.path("os.pub"), KeyFormat::PublicKey, false),
        (d.write("garbage", "hello world\n"), KeyFormat::Unknown, false),
        (d.write("empty", ""), KeyFormat::Unknown, false),
    ];
    let dsa_raw = d.openssl("dsa_raw", "dsaparam", &["-genkey", "-noout", "1024"]);
    let dsa_raw = dsa_raw.to_str().expect("utf-8");
    let dsa = d.openssl("dsa_p8", "pkey", &["-in", dsa_raw]);
    let dsa_file = dsa.to_str().expect("utf-8");
    let dsa_pem = d.openssl("dsa_pem", "pkey", &["-in", dsa_file, "-traditional"]);
    let dsa_pem_enc = d.openssl(
        "dsa_pem_enc",
        "pkey",
        &["-in", dsa_file, "-traditional", "-aes128", "-passout", "pass:x"],
    );
    let more = [
        (dsa, KeyFormat::Pkcs8, false),
        (dsa_pem, KeyFormat::PemDsa { encrypted: false }, false),
        (dsa_pem_enc, KeyFormat::PemDsa { encrypted: true }, true),
    ];
    for (path, format, encrypted) in cases.into_iter().chain(more) {
        let text = read(&path);
        assert_eq!(detect_format(&text), format, "{}", path.display());
        assert_eq!(is_encrypted(&text), encrypted, "{}", path.display());
    }
    let inline = [
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2f x\n", KeyFormat::PublicKey),
        (
            "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQ= x\n",
            KeyFormat::PublicKey,
        ),
        (
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
            KeyFormat::PublicKey,
        ),
        (
            "---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----\n",
            KeyFormat::PublicKey,
        ),
        (
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            KeyFormat::Unknown,
        ),
        ("   \n\t\n", KeyFormat::Unknown),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\n",
            KeyFormat::OpenSsh { encrypted: false },
        ),
    ];
    for (text, format) in inline {
        assert_eq!(detect_format(text), format, "{text:?}");
    }
}

/// The everyday case: unencrypted keys as `ssh-keygen` writes them by default.
#[test]
fn loads_unencrypted_openssh_keys() {
    let d = Scratch::new("openssh_plain");
    let keys = [
        ("ed25519", vec!["-t", "ed25519"], Algorithm::Ed25519),
        (
            "ecdsa256",
            vec!["-t", "ecdsa", "-b", "256"],
            Algorithm::Ecdsa {
                curve: ssh_key::EcdsaCurve::NistP256,
            },
        ),
        (
            "ecdsa384",
            vec!["-t", "ecdsa", "-b", "384"],
            Algorithm::Ecdsa {
                curve: ssh_key::EcdsaCurve::NistP384,
            },
        ),
        (
            "ecdsa521",
            vec!["-t", "ecdsa", "-b", "521"],
            Algorithm::Ecdsa {
                curve: ssh_key::EcdsaCurve::NistP521,
            },
        ),
        ("rsa", vec!["-t", "rsa", "-b", "2048"], Algorithm::Rsa { hash: None }),
    ];
    for (name, mut args, algorithm) in keys {
        args.extend(["-N", ""]);
        let path = d.keygen(name, &args);
        let key = load(&path, None).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(key.algorithm(), algorithm, "{name}");
        assert!(same_key(key.public_key(), &pub_file(&path)), "{name}");
    }
}

/// Passphrase handling for OpenSSH keys, for every cipher ssh-keygen offers that
/// russh decrypts. A wrong passphrase shows up in ssh-key as `Error::Crypto`
/// (checkint mismatch, or AEAD tag failure for gcm/chacha20), mapped to WrongPassphrase.
#[test]
fn encrypted_openssh_keys_need_the_right_passphrase() {
    let d = Scratch::new("openssh_enc");
    let keys = [
        ("default", vec!["-t", "ed25519"]),
        ("rsa", vec!["-t", "rsa", "-b", "2048"]),
        ("ecdsa", vec!["-t", "ecdsa"]),
        ("aes128cbc", vec!["-t", "ed25519", "-Z", "aes128-cbc"]),
        ("gcm", vec!["-t", "ed25519", "-Z", "aes256-gcm@openssh.com"]),
        ("chacha", vec!["-t", "ed25519", "-Z", "chacha20-poly1305@openssh.com"]),
    ];
    for (name, mut args) in keys {
        args.extend(["-N", PASS]);
        let path = d.keygen(name, &args);
        assert_eq!(
            load(&path, None).err(),
            Some(KeyError::NeedsPassphrase {
                format: KeyFormat::OpenSsh { encrypted: true }
            }),
            "{name}"
        );
        assert_eq!(
            load(&path, Some(WRONG)).err(),
            Some(KeyError::WrongPassphrase),
            "{name}"
        );
        let key = load(&path, Some(PASS)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(same_key(key.public_key(), &pub_file(&path)), "{name}");
    }
}

/// OpenSSH reads keys encrypted with `3des-cbc` (`ssh-keygen -Z 3des-cbc`), so sqltun
/// must too: the passphrase outcomes are those of any other cipher.
#[test]
fn openssh_key_with_3des_loads() {
    let d = Scratch::new("openssh_3des");
    let path = d.keygen("k", &["-t", "ed25519", "-Z", "3des-cbc", "-N", PASS]);
    assert_eq!(
        load(&path, None).err(),
        Some(KeyError::NeedsPassphrase {
            format: KeyFormat::OpenSsh { encrypted: true }
        })
    );
    assert_eq!(load(&path, Some(WRONG)).err(), Some(KeyError::WrongPassphrase));
    let key = load(&path, Some(PASS)).expect("3des-cbc key loads");
    assert!(same_key(key.public_key(), &pub_file(&path)));
}

/// What to expect of a key variant.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Loads,
    /// Unsupported or UnsupportedCipher: the advice (`ssh-keygen -p`) fixes it.
    NeedsConversion,
    /// UnsupportedAlgorithm: no conversion helps.
    Refused,
}

/// Backs the table at the top of this module: each PEM and PKCS#8 variant
/// either loads, or is refused with an error naming its format (or cipher)
/// and advice that, when followed, makes it load.
#[test]
fn pem_and_pkcs8_variants_load_or_are_named_unsupported() {
    use Outcome::*;
    let d = Scratch::new("pem_pkcs8");
    let pass_out = format!("pass:{PASS}");
    let po = pass_out.as_str();
    let rsa = d.keygen("rsa_pem", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""]);
    let ec = d.keygen("ec_pem", &["-t", "ecdsa", "-m", "PEM", "-N", ""]);
    let (rsa_in, ec_in) = (
        rsa.to_str().expect("utf-8").to_string(),
        ec.to_str().expect("utf-8").to_string(),
    );
    let ed = d.openssl("ed_p8", "genpkey", &["-algorithm", "ed25519"]);
    let ed_in = ed.to_str().expect("utf-8").to_string();
    let ec384 = d.openssl("ec384", "ecparam", &["-genkey", "-name", "secp384r1", "-noout"]);
    let ec384_in = ec384.to_str().expect("utf-8").to_string();
    let dsa_raw = d.openssl("dsa_raw", "dsaparam", &["-genkey", "-noout", "1024"]);
    let dsa_raw = dsa_raw.to_str().expect("utf-8");
    let dsa = d.openssl("dsa_p8", "pkey", &["-in", dsa_raw]);
    let dsa_in = dsa.to_str().expect("utf-8").to_string();
    let cases: Vec<(&str, PathBuf, KeyFormat, Outcome)> = vec![
        ("PEM RSA", rsa.clone(), KeyFormat::PemRsa { encrypted: false }, Loads),
        (
            "PEM RSA, AES-128-CBC (ssh-keygen)",
            d.keygen("rsa_pem_enc", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS]),
            KeyFormat::PemRsa { encrypted: true },
            Loads,
        ),
        (
            "PEM RSA, AES-256-CBC",
            d.openssl(
                "rsa_aes256",
                "pkey",
                &["-in", &rsa_in, "-traditional", "-aes256", "-passout", po],
            ),
            KeyFormat::PemRsa { encrypted: true },
            Loads,
        ),
        (
            "PEM RSA, AES-192-CBC",
            d.openssl(
                "rsa_aes192",
                "pkey",
                &["-in", &rsa_in, "-traditional", "-aes192", "-passout", po],
            ),
            KeyFormat::PemRsa { encrypted: true },
            Loads,
        ),
        (
            "PEM RSA, DES-EDE3-CBC",
            d.openssl(
                "rsa_3des",
                "pkey",
                &["-in", &rsa_in, "-traditional", "-des3", "-passout", po],
            ),
            KeyFormat::PemRsa { encrypted: true },
            Loads,
        ),
        ("PEM EC P-256", ec.clone(), KeyFormat::PemEc { encrypted: false }, Loads),
        (
            "PEM EC P-384 (openssl)",
            ec384.clone(),
            KeyFormat::PemEc { encrypted: false },
            Loads,
        ),
        (
            "PEM EC, explicit curve parameters",
            d.openssl("ec_explicit", "ec", &["-in", &ec_in, "-param_enc", "explicit"]),
            KeyFormat::PemEc { encrypted: false },
            Loads,
        ),
        (
            "PEM EC, AES-128-CBC (ssh-keygen)",
            d.keygen("ec_pem_enc", &["-t", "ecdsa", "-m", "PEM", "-N", PASS]),
            KeyFormat::PemEc { encrypted: true },
            Loads,
        ),
        (
            "PEM EC, AES-256-CBC",
            d.openssl(
                "ec_aes256",
                "pkey",
                &["-in", &ec_in, "-traditional", "-aes256", "-passout", po],
            ),
            KeyFormat::PemEc { encrypted: true },
            Loads,
        ),
        (
            "PEM EC P-384, AES-192-CBC",
            d.openssl(
                "ec384_aes192",
                "pkey",
                &["-in", &ec384_in, "-traditional", "-aes192", "-passout", po],
            ),
            KeyFormat::PemEc { encrypted: true },
            Loads,
        ),
        (
            "PEM EC, DES-EDE3-CBC",
            d.openssl(
                "ec_3des",
                "pkey",
                &["-in", &ec_in, "-traditional", "-des3", "-passout", po],
            ),
            KeyFormat::PemEc { encrypted: true },
            Loads,
        ),
        (
            "PEM EC secp256k1",
            d.openssl("k1", "ecparam", &["-genkey", "-name", "secp256k1", "-noout"]),
            KeyFormat::PemEc { encrypted: false },
            Refused,
        ),
        (
            "PEM DSA",
            d.openssl("dsa_pem", "pkey", &["-in", &dsa_in, "-traditional"]),
            KeyFormat::PemDsa { encrypted: false },
            Refused,
        ),
        (
            "PEM DSA, encrypted",
            d.openssl(
                "dsa_pem_enc",
                "pkey",
                &["-in", &dsa_in, "-traditional", "-aes128", "-passout", po],
            ),
            KeyFormat::PemDsa { encrypted: true },
            Refused,
        ),
        ("PKCS#8 DSA", dsa.clone(), KeyFormat::Pkcs8, Refused),
        (
            "PKCS#8 RSA (ssh-keygen)",
            d.keygen("rsa_p8", &["-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", ""]),
            KeyFormat::Pkcs8,
            Loads,
        ),
        (
            "PKCS#8 RSA, encrypted (ssh-keygen)",
            d.keygen("rsa_p8_enc", &["-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", PASS]),
            KeyFormat::Pkcs8Encrypted,
            Loads,
        ),
        (
            "PKCS#8 ECDSA (ssh-keygen)",
            d.keygen("ec_p8", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""]),
            KeyFormat::Pkcs8,
            Loads,
        ),
        (
            "PKCS#8 ECDSA, encrypted (ssh-keygen)",
            d.keygen("ec_p8_enc", &["-t", "ecdsa", "-m", "PKCS8", "-N", PASS]),
            KeyFormat::Pkcs8Encrypted,
            Loads,
        ),
        ("PKCS#8 Ed25519 (openssl)", ed.clone(), KeyFormat::Pkcs8, Loads),
        (
            "PKCS#8 Ed25519, PBES2 AES-256-CBC",
            d.openssl("ed_p8_enc", "pkey", &["-in", &ed_in, "-aes-256-cbc", "-passout", po]),
            KeyFormat::Pkcs8Encrypted,
            Loads,
        ),
        (
            "PKCS#8, PBES2 scrypt",
            d.openssl(
                "ed_scrypt",
                "pkcs8",
                &["-topk8", "-in", &ed_in, "-scrypt", "-passout", po],
            ),
            KeyFormat::Pkcs8Encrypted,
            Loads,
        ),
        (
            "PKCS#8, PBES2 PBKDF2-HMAC-SHA1",
            d.openssl(
                "ec_sha1prf",
                "pkcs8",
                &[
                    "-topk8",
                    "-in",
                    &ec_in,
                    "-v2",
                    "aes-256-cbc",
                    "-v2prf",
                    "hmacWithSHA1",
                    "-passout",
                    po,
                ],
            ),
            KeyFormat::Pkcs8Encrypted,
            Loads,
        ),
        (
            "PKCS#8, PBES2 DES-EDE3-CBC",
            d.openssl(
                "rsa_v2des3",
                "pkcs8",
                &["-topk8", "-in", &rsa_in, "-v2", "des3", "-passout", po],
            ),
            KeyFormat::Pkcs8Encrypted,
            Loads,
        ),
        (
            "PKCS#8, PKCS#12 PBE SHA1/3DES",
            d.openssl(
                "rsa_v1",
                "pkcs8",
                &["-topk8", "-in", &rsa_in, "-v1", "PBE-SHA1-3DES", "-passout", po],
            ),
            KeyFormat::Pkcs8Encrypted,
            NeedsConversion,
        ),
        (
            "PKCS#8 Ed448",
            d.openssl("ed448", "genpkey", &["-algorithm", "ed448"]),
            KeyFormat::Pkcs8,
            Refused,
        ),
    ];
    for (name, path, format, outcome) in cases {
        let text = read(&path);
        assert_eq!(detect_format(&text), format, "{name}");
        let pass = is_encrypted(&text).then_some(PASS);
        let result = load(&path, pass);
        match (outcome, &result) {
            (Loads, Ok(key)) => {
                assert!(usable(&key.algorithm()), "{name}: loaded {:?}", key.algorithm());
                // The key itself, as ssh-keygen reads it (OpenSSH 9.2 reads no PKCS#8 Ed25519).
                let file = path.to_str().expect("utf-8");
                let out = Command::new("ssh-keygen")
                    .args(["-y", "-P", PASS, "-f", file])
                    .output()
                    .expect("run ssh-keygen -y");
                if out.status.success() {
                    let public = parse_public_line(&String::from_utf8_lossy(&out.stdout));
                    assert!(
                        public.is_some_and(|p| same_key(key.public_key(), &p)),
                        "{name}: not the key ssh-keygen reads"
                    );
                } else {
                    assert_eq!(key.algorithm(), Algorithm::Ed25519, "{name}: ssh-keygen cannot read it");
                }
                if pass.is_some() {
                    assert_eq!(
                        load(&path, None).err(),
                        Some(KeyError::NeedsPassphrase { format }),
                        "{name}"
                    );
                    assert_eq!(
                        load(&path, Some(WRONG)).err(),
                        Some(KeyError::WrongPassphrase),
                        "{name}"
                    );
                }
            }
            (
                NeedsConversion,
                Err(e @ (KeyError::Unsupported { format: f } | KeyError::UnsupportedCipher { format: f, .. })),
            ) => {
                assert_eq!(*f, format, "{name}");
                let advice = e.describe(&path);
                assert!(advice.contains(format.name()), "{name}: {advice}");
                let fix = format!("ssh-keygen -p -f {}", path.display());
                assert!(advice.contains(&fix), "{name}: {advice}");
                let file = path.to_str().expect("utf-8");
                run("ssh-keygen", &["-q", "-p", "-P", PASS, "-N", PASS, "-f", file]);
                let converted = load(&path, Some(PASS));
                assert!(converted.is_ok(), "{name}: after the advice: {converted:?}");
            }
            (Refused, Err(e @ KeyError::UnsupportedAlgorithm { format: f, .. })) => {
                assert_eq!(*f, format, "{name}");
                assert!(e.describe(&path).contains("ssh-keygen -t ed25519"), "{name}");
            }
            _ => panic!("{name}: expected {outcome:?}, got {result:?}"),
        }
    }
}

/// A SEC1 `EC PRIVATE KEY` PEM holding `scalar` as given on the curve `oid` (DER of the
/// OBJECT IDENTIFIER), without the optional public key (OpenSSL derives it).
fn sec1_pem(scalar: &[u8], oid: &[u8]) -> String {
    let mut inner = vec![0x02, 0x01, 0x01, 0x04, u8::try_from(scalar.len()).expect("short")];
    inner.extend_from_slice(scalar);
    inner.extend_from_slice(&[0xa0, u8::try_from(oid.len()).expect("short")]);
    inner.extend_from_slice(oid);
    let mut der = vec![0x30, u8::try_from(inner.len()).expect("short")];
    der.extend_from_slice(&inner);
    format!(
        "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
        STANDARD.encode(der)
    )
}

/// One P-256 key in 256 has a private scalar whose first byte is zero; ssh-keygen then
/// writes it one byte short in the OpenSSH format (an mpint drops leading zeros), and
/// other writers may drop it in SEC1 or add one. ssh-keygen reads all of these, so every
/// format must load such a key: fixed scalars with leading zeros on each curve, written
/// by ssh-keygen and openssl in every format, make the case certain rather than random.
#[test]
fn ec_scalar_with_leading_zero_loads_in_every_format() {
    let d = Scratch::new("leading_zero");
    let po = format!("pass:{PASS}");
    let curves: [(&str, &[u8], usize, usize); 3] = [
        (
            "P-256",
            &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            32,
            1,
        ),
        ("P-384", &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22], 48, 1),
        ("P-521", &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23], 66, 2),
    ];
    for (curve, oid, width, zeros) in curves {
        let mut scalar = vec![0x5a; width];
        scalar[..zeros].fill(0);
        let sec1 = d.write(&format!("{curve}.pem"), sec1_pem(&scalar, oid));
        let src = sec1.to_str().expect("utf-8").to_string();
        let expected = {
            let out = Command::new("ssh-keygen")
                .args(["-y", "-f", &src])
                .output()
                .expect("run ssh-keygen -y");
            parse_public_line(&String::from_utf8_lossy(&out.stdout)).expect("ssh-keygen reads the key")
        };
        let copy = |name: &str| {
            let path = d.path(&format!("{curve}-{name}"));
            fs::copy(&sec1, &path).expect("copy key");
            path
        };
        let keygen_p = |name: &str, pass: &str| {
            let path = copy(name);
            let file = path.to_str().expect("utf-8");
            run("ssh-keygen", &["-q", "-p", "-P", "", "-N", pass, "-f", file]);
            path
        };
        let variants: Vec<(&str, PathBuf)> = vec![
            ("SEC1, fixed width", sec1.clone()),
            (
                "SEC1, leading zeros dropped",
                d.write(&format!("{curve}-short"), sec1_pem(&scalar[zeros..], oid)),
            ),
            (
                "SEC1, an extra leading zero",
                d.write(&format!("{curve}-long"), sec1_pem(&[&[0][..], &scalar].concat(), oid)),
            ),
            ("OpenSSH (ssh-keygen -p)", keygen_p("openssh", "")),
            ("OpenSSH, encrypted (ssh-keygen -p)", keygen_p("openssh-enc", PASS)),
            (
                "PKCS#8 (openssl)",
                d.openssl(&format!("{curve}-p8"), "pkcs8", &["-topk8", "-nocrypt", "-in", &src]),
            ),
            (
                "PKCS#8, encrypted (openssl)",
                d.openssl(
                    &format!("{curve}-p8-enc"),
                    "pkcs8",
                    &["-topk8", "-v2", "aes-256-cbc", "-in", &src, "-passout", &po],
                ),
            ),
            (
                "PEM EC, AES-256-CBC (openssl)",
                d.openssl(
                    &format!("{curve}-pem-enc"),
                    "ec",
                    &["-in", &src, "-aes256", "-passout", &po],
                ),
            ),
        ];
        for (name, path) in variants {
            let key = load(&path, Some(PASS)).unwrap_or_else(|e| panic!("{curve} {name}: {e:?}"));
            assert!(same_key(key.public_key(), &expected), "{curve} {name}: another key");
            let ssh_key::private::KeypairData::Ecdsa(pair) = key.key_data() else {
                panic!("{curve} {name}: not ECDSA");
            };
            assert_eq!(pair.private_key_bytes(), scalar.as_slice(), "{curve} {name}");
        }
    }
}

/// russh fails on an unencrypted PKCS#8 or PEM EC key when handed a passphrase,
/// and callers may pass one for every key: it must be ignored, as OpenSSH does.
#[test]
fn unneeded_passphrase_is_ignored() {
    let d = Scratch::new("unneeded");
    for (name, args) in [
        ("p8", vec!["-t", "ecdsa", "-m", "PKCS8", "-N", ""]),
        ("pem_ec", vec!["-t", "ecdsa", "-m", "PEM", "-N", ""]),
        ("pem_rsa", vec!["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""]),
        ("os", vec!["-t", "ed25519", "-N", ""]),
    ] {
        let path = d.keygen(name, &args);
        assert!(load(&path, Some(PASS)).is_ok(), "{name}");
    }
    assert!(decode(PPK_V3, Some(PASS)).is_ok());
}

/// The three passphrase outcomes for the encrypted PEM and PKCS#8 keys russh can
/// decrypt; russh itself reports a DER error for an encrypted PKCS#8 key without
/// a passphrase, and "Unpad" or DecryptFailed for a wrong one.
#[test]
fn pem_and_pkcs8_passphrase_outcomes() {
    let d = Scratch::new("pem_pass");
    for (name, args, format) in [
        (
            "pem_rsa",
            vec!["-t", "rsa", "-b", "2048", "-m", "PEM"],
            KeyFormat::PemRsa { encrypted: true },
        ),
        (
            "p8_rsa",
            vec!["-t", "rsa", "-b", "2048", "-m", "PKCS8"],
            KeyFormat::Pkcs8Encrypted,
        ),
        ("p8_ec", vec!["-t", "ecdsa", "-m", "PKCS8"], KeyFormat::Pkcs8Encrypted),
    ] {
        let path = d.keygen(name, &[args.as_slice(), &["-N", PASS]].concat());
        assert_eq!(
            load(&path, None).err(),
            Some(KeyError::NeedsPassphrase { format }),
            "{name}"
        );
        assert_eq!(
            load(&path, Some(WRONG)).err(),
            Some(KeyError::WrongPassphrase),
            "{name}"
        );
        let key = load(&path, Some(PASS)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(same_key(key.public_key(), &pub_file(&path)), "{name}");
    }
}

/// russh reads PuTTY keys (v2 and v3, plain and aes256-cbc), so they load as they
/// are; a wrong passphrase shows up as a MAC mismatch and must read as such.
#[test]
fn putty_keys_load() {
    let expected = parse_public_line(PPK_PUBLIC).expect("fixture public key");
    for (name, text, encrypted) in [
        ("v3", PPK_V3, false),
        ("v3, empty comment", PPK_V3_NO_COMMENT, false),
        ("v3, Argon2id", PPK_V3_ENCRYPTED, true),
        ("v2", PPK_V2_ENCRYPTED, true),
    ] {
        if encrypted {
            assert_eq!(
                decode(text, None).err(),
                Some(KeyError::NeedsPassphrase {
                    format: KeyFormat::Putty
                }),
                "{name}"
            );
            assert_eq!(
                decode(text, Some(WRONG)).err(),
                Some(KeyError::WrongPassphrase),
                "{name}"
            );
        }
        let key = decode(text, encrypted.then_some(PASS)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(same_key(key.public_key(), &expected), "{name}");
        // Windows line endings, as PuTTY on Windows writes them.
        let crlf = text.replace('\n', "\r\n");
        assert!(decode(&crlf, encrypted.then_some(PASS)).is_ok(), "{name} CRLF");
    }
    let v1 = PPK_V3.replace("File-3", "File-1");
    let err = decode(&v1, None).expect_err("PPK v1 is not supported");
    assert_eq!(
        err,
        KeyError::Unsupported {
            format: KeyFormat::Putty
        }
    );
    let advice = err.describe(Path::new("/k/work.ppk"));
    assert!(
        advice.contains("puttygen /k/work.ppk -O private-openssh-new -o /k/work-openssh"),
        "{advice}"
    );
}

/// SSH.com keys are refused with a conversion command; for an unencrypted one
/// the command really produces a key that loads.
#[test]
fn ssh2_keys_are_unsupported_with_working_advice() {
    let d = Scratch::new("ssh2");
    let path = d.write("tectia", SSH2_KEY);
    let err = load(&path, None).expect_err("SSH2 is not supported");
    assert_eq!(
        err,
        KeyError::Unsupported {
            format: KeyFormat::Ssh2
        }
    );
    let advice = err.describe(&path);
    let new = d.path("tectia-openssh");
    let command = format!(
        "ssh-keygen -i -f {} > {n} && chmod 600 {n}",
        path.display(),
        n = new.display()
    );
    assert!(advice.contains(&command), "{advice}");
    run("sh", &["-c", &command]);
    assert!(load(&new, None).is_ok());
    assert_eq!(
        decode(SSH2_KEY_ENCRYPTED, Some(PASS)).err(),
        Some(KeyError::Unsupported {
            format: KeyFormat::Ssh2
        })
    );
}

/// `-i key.pub` is a common slip: say it is a public key, while public_key_for
/// still returns it (OpenSSH allows a public key as identity for agent keys).
#[test]
fn public_key_given_as_identity() {
    let d = Scratch::new("pub_identity");
    let key = d.keygen("id", &["-t", "ed25519", "-N", ""]);
    let path = d.path("id.pub");
    let err = load(&path, None).expect_err("a public key is no identity");
    assert_eq!(
        err,
        KeyError::Unsupported {
            format: KeyFormat::PublicKey
        }
    );
    let advice = err.describe(&path);
    assert!(advice.contains("is a public key"), "{advice}");
    let public = public_key_for(&path).expect("public key");
    assert!(same_key(&public, &pub_file(&key)));
}

/// Keys russh decodes but cannot sign with (DSA, FIDO security keys) are refused
/// when loaded, naming the algorithm, rather than failing during authentication.
#[test]
fn unusable_algorithms_are_refused() {
    let d = Scratch::new("algorithms");
    let public = ssh_key::public::SkEd25519::new(ssh_key::public::Ed25519PublicKey([7; 32]), "ssh:");
    let keypair = ssh_key::private::SkEd25519::new(public, 1, vec![1, 2, 3]).expect("FIDO key");
    let sk = PrivateKey::new(ssh_key::private::KeypairData::SkEd25519(keypair), "test").expect("FIDO key");
    let text = sk.to_openssh(ssh_key::LineEnding::LF).expect("encode");
    let path = d.write("id_ed25519_sk", text.as_bytes());
    let err = load(&path, None).expect_err("FIDO keys cannot sign here");
    assert!(
        matches!(&err, KeyError::UnsupportedAlgorithm { algorithm, .. } if algorithm == "sk-ssh-ed25519@openssh.com"),
        "{err:?}"
    );
    assert!(err.describe(&path).contains("ssh-add"), "{}", err.describe(&path));

    // Newer OpenSSH cannot make DSA keys at all; test them only where it can.
    let dsa = d.path("id_dsa");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "dsa", "-N", PASS, "-f"])
        .arg(&dsa)
        .output()
        .is_ok_and(|o| o.status.success());
    if made {
        // Refused from the clear public section: no passphrase prompt first.
        assert_eq!(
            load(&dsa, None).err(),
            Some(KeyError::UnsupportedAlgorithm {
                format: KeyFormat::OpenSsh { encrypted: true },
                algorithm: "DSA".into()
            })
        );
    }
}
