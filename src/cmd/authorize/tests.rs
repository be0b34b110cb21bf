use super::*;
use crate::cli::{Cli, Command};
use crate::env::FakeEnv;
use clap::Parser;

fn plan(argv: &[&str]) -> TunnelPlan {
    let mut full = vec!["sqltun", "authorize", "-F", "none"];
    full.extend_from_slice(argv);
    let args = match Cli::try_parse_from(full).map(|c| c.command) {
        Ok(Command::Authorize(a)) => a,
        Ok(other) => panic!("not authorize: {other:?}"),
        Err(e) => panic!("{e}"),
    };
    let env = FakeEnv {
        home: Some("/home/me".into()),
        user: "me".into(),
        ..Default::default()
    };
    resolve::plan(&args.tunnel(), &env).unwrap()
}

/// Each hop allows exactly what sqltun asks of it: the first hop the second as dialled through it (host
/// and port as sent in the direct-tcpip request, IPv6 without brackets there, with them in the line),
/// the last hop every target, each once.
#[test]
fn each_hop_allows_its_next_destination() {
    let plan = plan(&[
        "-J",
        "ops@jump.example.com:2222,[2001:db8::5]",
        "--ssh",
        "deploy@db-bastion",
        "--db",
        "db.internal:5432",
        "--db",
        "postgres://app@[2001:db8::7]/appdb",
        "--db",
        "db.internal:5432",
    ]);
    assert_eq!(
        permits(&plan).unwrap(),
        vec![
            vec!["[2001:db8::5]:22".to_string()],
            vec!["db-bastion:22".to_string()],
            vec![
                "db.internal:5432".to_string(),
                "[2001:db8::7]:5432".to_string(),
                "db.internal:5432".to_string()
            ],
        ]
    );
    let key =
        PublicKey::from_openssh("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEF6yWTv51hZW2UdZjJ1NwGaHcVFshwHDaEX1KYgAUrj x")
            .unwrap();
    let last = line::line(&permits(&plan).unwrap()[2], &key, "sqltun").unwrap();
    assert_eq!(last.matches("permitopen=").count(), 2, "{last}");
}

/// A target whose host passes `--db`'s own checks but would change what the line allows (a quote, a
/// wildcard) is refused, naming where it came from.
#[test]
fn unsafe_target_is_refused_with_its_flag() {
    for db in ["db\",permitopen=\"evil:22", "*:5432"] {
        let e = permits(&plan(&["--ssh", "b", "--db", db])).unwrap_err();
        assert_eq!(e.kind(), crate::error::Kind::Usage);
        assert!(e.message().starts_with("--db: `"), "{}", e.message());
    }
}

/// Tunnel names go into file names and comments only when they are plain words.
#[test]
fn tunnel_names() {
    assert_eq!(checked_name("prod-db_2.eu").unwrap(), "prod-db_2.eu");
    for bad in ["", ".hidden", "-x", "a/b", "a b", "a\nb", "a\"b", "../x", "é"] {
        let e = checked_name(bad).unwrap_err();
        assert!(!e.message().contains('\n'), "{}", e.message());
    }
}

/// The default key path is per tunnel under ~/.ssh; a given one is made absolute, an empty one refused.
#[test]
fn new_key_paths() {
    let home = std::env::temp_dir().join(format!("sqltun-authorize-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let env = FakeEnv {
        home: Some(home.clone()),
        ..Default::default()
    };
    assert_eq!(
        new_key_path(None, Some("prod"), &env).unwrap(),
        home.join(".ssh/sqltun_prod_ed25519")
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(home.join(".ssh")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert_eq!(
        new_key_path(None, None, &env).unwrap(),
        home.join(".ssh/sqltun_ed25519")
    );
    let relative = new_key_path(Some(Path::new("k")), None, &env).unwrap();
    assert!(relative.is_absolute() && relative.ends_with("k"));
    assert!(new_key_path(Some(Path::new("")), None, &env).is_err());
    let _ = std::fs::remove_dir_all(&home);
}
