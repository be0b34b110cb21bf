use super::*;
use crate::cli::{Cli, Command};
use crate::env::FakeEnv;
use crate::plan::{AgentSource, Lazy, StrictHostKeyChecking, Transport};
use crate::secret::Secret;
use crate::target::Target;
use clap::Parser;
use std::time::Duration;

fn args(argv: &[&str]) -> TunnelArgs {
    let mut full = vec!["sqltun", "connect", "-F", "none"];
    full.extend_from_slice(argv);
    match Cli::try_parse_from(full).map(|c| c.command) {
        Ok(Command::Connect(c)) => c.tunnel(),
        Ok(other) => panic!("not connect: {other:?}"),
        Err(e) => panic!("{e}"),
    }
}

fn home_env() -> FakeEnv {
    FakeEnv {
        home: Some("/home/me".into()),
        user: "me".into(),
        ..Default::default()
    }
}

/// A config file in a fresh directory, for tests that need ssh_config.
fn config_file(text: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sqltun-resolve-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config");
    std::fs::write(&path, text).unwrap();
    path
}

fn with_config(path: &Path, argv: &[&str]) -> TunnelArgs {
    let mut full = vec!["sqltun", "connect", "-F", path.to_str().unwrap()];
    full.extend_from_slice(argv);
    match Cli::try_parse_from(full).map(|c| c.command) {
        Ok(Command::Connect(c)) => c.tunnel(),
        Ok(other) => panic!("not connect: {other:?}"),
        Err(e) => panic!("{e}"),
    }
}

/// The whole plan for a plain invocation: defaults as documented, nothing surprising.
#[test]
fn plain_invocation() {
    let plan = plan(
        &args(&["--ssh", "deploy@bastion:2222", "--db", "10.0.12.7:5432"]),
        &home_env(),
    )
    .unwrap();
    let hop = &plan.hops[0];
    assert_eq!(
        (hop.user.as_str(), hop.host.as_str(), hop.port),
        ("deploy", "bastion", 2222)
    );
    assert_eq!(hop.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(hop.keepalive_interval, Some(DEFAULT_KEEPALIVE_INTERVAL));
    assert_eq!(hop.host_keys.strict, StrictHostKeyChecking::Ask);
    assert_eq!(
        hop.host_keys.user_known_hosts[0],
        PathBuf::from("/home/me/.ssh/known_hosts")
    );
    assert!(!hop.auth.identities_explicit);
    assert!(hop.auth.identities.contains(&PathBuf::from("/home/me/.ssh/id_ed25519")));
    assert_eq!(hop.auth.agent, AgentSource::None);
    assert_eq!(hop.transport, Transport::Direct);
    assert_eq!(
        plan.forwards,
        vec![Forward {
            target: Target {
                host: "10.0.12.7".into(),
                port: 5432
            },
            local_port: 0,
            url: None
        }]
    );
    assert!(!plan.interactive);
}

/// -o beats the destination's `user@` and `:port` (as `ssh -o User=a z@host` logs in as `a`, and as
/// `sqltun config` prints), -o beats the default, and the first -o value wins, as in ssh.
#[test]
fn precedence() {
    let plan = plan(
        &args(&[
            "--ssh",
            "bastion",
            "--db",
            "db:1",
            "-o",
            "User=a",
            "-o",
            "User=b",
            "-o",
            "Port=2200",
            "-o",
            "ConnectTimeout=3",
        ]),
        &home_env(),
    )
    .unwrap();
    assert_eq!(plan.hops[0].user, "a");
    assert_eq!(plan.hops[0].port, 2200);
    assert_eq!(plan.hops[0].connect_timeout, Duration::from_secs(3));
    let plan = super::plan(
        &args(&["--ssh", "z@bastion:22", "--db", "db:1", "-o", "User=a"]),
        &home_env(),
    )
    .unwrap();
    assert_eq!(plan.hops[0].user, "a");
    let plan = super::plan(
        &args(&["--ssh", "z@bastion:22", "--db", "db:1", "-o", "Port=2200"]),
        &home_env(),
    )
    .unwrap();
    assert_eq!((plan.hops[0].user.as_str(), plan.hops[0].port), ("z", 2200));
}

/// `-o` follows ssh for where to connect (HostName, User, Port, ProxyJump, ProxyCommand, HostKeyAlias:
/// the destination only) and applies to every hop for how (here keys, known_hosts, strictness,
/// timeouts, algorithms), like `-i` and `--known-hosts`.
#[test]
fn dash_o_scope() {
    let cfg = config_file("Host jump\n  HostName jump.internal\n  User ops\n  Port 2201\n");
    let p = plan(
        &with_config(
            &cfg,
            &[
                "--ssh",
                "web",
                "--db",
                "d:1",
                "-J",
                "jump",
                "-o",
                "user=app",
                "-o",
                "Port=2222",
                "-o",
                "HostName=web.internal",
                "-o",
                "HostKeyAlias=web-key",
                "-o",
                "ProxyCommand=nc %h %p",
                "-o",
                "IdentityFile=~/.ssh/tunnel",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "UserKnownHostsFile=~/kh",
                "-o",
                "ConnectTimeout=4",
                "-o",
                "Ciphers=aes128-ctr",
                "-i",
                "~/.ssh/extra",
                "--known-hosts",
                "~/pinned",
            ],
        ),
        &home_env(),
    )
    .unwrap();
    let addresses: Vec<String> = p.hops.iter().map(|h| h.address()).collect();
    assert_eq!(addresses, ["ops@jump.internal:2201", "app@web.internal:2222"]);
    assert_eq!(p.hops[0].host_keys.alias, None);
    assert_eq!(p.hops[1].host_keys.alias.as_deref(), Some("web-key"));
    // -J turns the destination's ProxyCommand off, as in ssh.
    assert!(p.hops.iter().all(|h| h.transport == Transport::Direct));
    for hop in &p.hops {
        assert_eq!(
            hop.auth.identities,
            [
                PathBuf::from("/home/me/.ssh/extra"),
                PathBuf::from("/home/me/.ssh/tunnel")
            ]
        );
        assert_eq!(hop.host_keys.strict, StrictHostKeyChecking::Yes);
        assert_eq!(hop.host_keys.user_known_hosts, [PathBuf::from("/home/me/pinned")]);
        assert_eq!(hop.connect_timeout, Duration::from_secs(4));
        assert_eq!(hop.algorithms.ciphers, Some(vec!["aes128-ctr".to_string()]));
    }

    // `-o ProxyJump` names the destination's jump host, which is not sent through itself.
    let p = plan(
        &args(&[
            "--ssh",
            "web",
            "--db",
            "d:1",
            "-o",
            "ProxyJump=ops@jumpx:2200",
            "-o",
            "User=app",
        ]),
        &home_env(),
    )
    .unwrap();
    let addresses: Vec<String> = p.hops.iter().map(|h| h.address()).collect();
    assert_eq!(addresses, ["ops@jumpx:2200", "app@web:22"]);
    let p = plan(
        &args(&["--ssh", "web", "--db", "d:1", "-o", "ProxyJump=jumpx", "-o", "User=app"]),
        &home_env(),
    )
    .unwrap();
    let addresses: Vec<String> = p.hops.iter().map(|h| h.address()).collect();
    assert_eq!(addresses, ["me@jumpx:22", "app@web:22"]);
}

/// A non-loopback bind needs the loud opt-in; too many --local-port values are refused.
#[test]
fn refusals() {
    let e = plan(&args(&["--ssh", "b", "--db", "d:1", "--bind", "0.0.0.0"]), &home_env()).unwrap_err();
    assert!(e.message().contains("--expose-to-network"), "{e}");
    assert!(
        plan(
            &args(&["--ssh", "b", "--db", "d:1", "--bind", "0.0.0.0", "--expose-to-network"]),
            &home_env()
        )
        .is_ok()
    );
    let e = plan(
        &args(&["--ssh", "b", "--db", "d:1", "--local-port", "1", "--local-port", "2"]),
        &home_env(),
    )
    .unwrap_err();
    assert!(e.message().contains("--local-port"), "{e}");
}

/// Secrets come from files before the environment, a file's first line is the secret, per-hop variables
/// win for their hop, and no secret reaches Debug output.
#[test]
fn secrets() {
    let mut env = home_env();
    env.vars.push(("SQLTUN_SSH_PASSWORD".into(), "from-env".into()));
    env.vars.push(("SQLTUN_SSH_PASSWORD_1".into(), "hop-one".into()));
    env.files.push(("/run/pw".into(), "from-file\nignored\n".into()));
    let p = plan(&args(&["--ssh", "b", "--db", "d:1", "-J", "j"]), &env).unwrap();
    let pw = |p: &TunnelPlan, i: usize| match &p.hops[i].auth.password_secret {
        Some(Lazy::Ready(s)) => Some(s.expose().to_string()),
        Some(Lazy::Command(c)) => panic!("a command: {c:?}"),
        None => None,
    };
    assert_eq!(pw(&p, 0).as_deref(), Some("hop-one"));
    assert_eq!(pw(&p, 1).as_deref(), Some("from-env"));
    let p = plan(
        &args(&["--ssh", "b", "--db", "d:1", "--password-file", "/run/pw"]),
        &env,
    )
    .unwrap();
    assert_eq!(pw(&p, 0).as_deref(), Some("hop-one"));
    let p2 = plan(
        &args(&["--ssh", "b", "--db", "d:1", "-J", "j", "--password-file", "/run/pw"]),
        &env,
    )
    .unwrap();
    assert_eq!(pw(&p2, 1).as_deref(), Some("from-file"));
    // The unnumbered password (and TOTP secret) goes to the destination only; the passphrase, which
    // never leaves the machine, to every hop.
    let mut shared = home_env();
    shared
        .vars
        .push(("SQLTUN_SSH_PASSWORD".into(), "for-the-destination".into()));
    shared
        .vars
        .push(("SQLTUN_SSH_PASSPHRASE".into(), "opens-local-keys".into()));
    shared
        .vars
        .push(("SQLTUN_TOTP_SECRET".into(), "GEZDGNBVGY3TQOJQ".into()));
    let p3 = plan(&args(&["--ssh", "b", "--db", "d:1", "-J", "j1,j2"]), &shared).unwrap();
    assert_eq!(pw(&p3, 0), None);
    assert_eq!(pw(&p3, 1), None);
    assert_eq!(pw(&p3, 2).as_deref(), Some("for-the-destination"));
    assert_eq!(
        p3.hops.iter().map(|h| h.auth.totp.is_some()).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(p3.hops.iter().all(|h| h.auth.passphrase.is_some()));
    let e = plan(&args(&["--ssh", "b", "--db", "d:1", "--password-file", "/nope"]), &env).unwrap_err();
    assert!(e.message().contains("/nope"));
    let debug = format!("{p:?}{p2:?}");
    assert!(!debug.contains("from-file") && !debug.contains("hop-one") && !debug.contains("from-env"));
}

/// The commands of the tunnels file: a file option or a variable wins over them, `password_command` and
/// `totp_command` serve the destination only and `passphrase_command` every hop, per-hop variables still
/// win for their hop, nothing runs while planning, an empty list is refused, and `Debug` shows no
/// argument.
#[test]
fn secret_commands() {
    let marker = std::env::temp_dir().join(format!("sqltun-resolve-command-ran-{}", std::process::id()));
    let touch = |setting: &'static str| {
        Some(vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("touch {}; echo {setting}-hunter2", marker.display()),
        ])
    };
    let mut with_commands = args(&["--ssh", "b", "--db", "d:1", "-J", "j"]);
    with_commands.password_command = touch("password");
    with_commands.passphrase_command = touch("passphrase");
    with_commands.totp_command = touch("totp");
    let kind = |lazy: Option<&Lazy<Secret>>| match lazy {
        Some(Lazy::Ready(s)) => format!("ready {}", s.expose()),
        Some(Lazy::Command(c)) => format!("command {}", c.setting),
        None => "none".into(),
    };
    let p = plan(&with_commands, &home_env()).unwrap();
    let (jump, dest) = (&p.hops[0].auth, &p.hops[1].auth);
    assert_eq!(kind(jump.password_secret.as_ref()), "none");
    assert_eq!(kind(dest.password_secret.as_ref()), "command password_command");
    assert_eq!(dest.password_source.as_deref(), Some("password_command `sh`"));
    assert_eq!(kind(jump.passphrase.as_ref()), "command passphrase_command");
    assert_eq!(kind(dest.passphrase.as_ref()), "command passphrase_command");
    assert!(jump.totp.is_none());
    assert!(
        matches!(&dest.totp, Some((Lazy::Command(c), from)) if c.setting == "totp_command" && from == "totp_command `sh`")
    );
    assert!(!marker.exists(), "a command ran while planning");
    let debug = format!("{p:?}");
    assert!(!debug.contains("hunter2") && !debug.contains("touch"), "{debug}");

    // Variables (plain and per hop) and file options win over the commands.
    let mut env = home_env();
    env.vars.push(("SQLTUN_SSH_PASSWORD".into(), "from-env".into()));
    env.vars.push(("SQLTUN_SSH_PASSPHRASE_1".into(), "hop-one".into()));
    env.files.push(("/run/totp".into(), "GEZDGNBVGY3TQOJQ\n".into()));
    let mut overridden = with_commands.clone();
    overridden.totp_secret_file = Some("/run/totp".into());
    let p = plan(&overridden, &env).unwrap();
    let (jump, dest) = (&p.hops[0].auth, &p.hops[1].auth);
    assert_eq!(kind(dest.password_secret.as_ref()), "ready from-env");
    assert_eq!(kind(jump.passphrase.as_ref()), "ready hop-one");
    assert_eq!(kind(dest.passphrase.as_ref()), "command passphrase_command");
    assert!(matches!(&dest.totp, Some((Lazy::Ready(_), from)) if from == "--totp-secret-file /run/totp"));

    for empty in [vec![], vec![String::new(), "read".into()]] {
        let mut bad = with_commands.clone();
        bad.password_command = Some(empty);
        let e = plan(&bad, &home_env()).unwrap_err();
        assert_eq!(e.kind(), crate::error::Kind::Usage);
        assert!(e.message().starts_with("password_command: give the program"), "{e}");
    }
}

/// IdentityAgent none/path and SSH_AUTH_SOCK all pick the right socket.
#[test]
fn agent_sources() {
    let mut env = home_env();
    env.vars.push(("SSH_AUTH_SOCK".into(), "/tmp/agent.sock".into()));
    let p = plan(&args(&["--ssh", "b", "--db", "d:1"]), &env).unwrap();
    assert_eq!(p.hops[0].auth.agent, AgentSource::Socket("/tmp/agent.sock".into()));
    let p = plan(&args(&["--ssh", "b", "--db", "d:1", "-o", "IdentityAgent=none"]), &env).unwrap();
    assert_eq!(p.hops[0].auth.agent, AgentSource::None);
    let p = plan(
        &args(&["--ssh", "b", "--db", "d:1", "-o", "IdentityAgent=/run/a.sock"]),
        &env,
    )
    .unwrap();
    assert_eq!(p.hops[0].auth.agent, AgentSource::Socket("/run/a.sock".into()));
}

/// An alias resolves through the config, and its ProxyJump becomes hops, each with its own settings.
#[test]
fn alias_with_proxyjump_chain() {
    let cfg = config_file(
        "Host prod-db\n  HostName 198.18.9.9\n  User app\n  ProxyJump jump2\n\
         Host jump2\n  HostName j2.internal\n  Port 2222\n  ProxyJump ops@jump1\n\
         Host jump1\n  HostName j1.example.com\n  IdentityFile ~/.ssh/jump_key\n",
    );
    let p = plan(
        &with_config(&cfg, &["--ssh", "prod-db", "--db", "db.internal:5432"]),
        &home_env(),
    )
    .unwrap();
    let hops: Vec<String> = p.hops.iter().map(|h| h.address()).collect();
    assert_eq!(
        hops,
        ["ops@j1.example.com:22", "me@j2.internal:2222", "app@198.18.9.9:22"]
    );
    assert_eq!(p.hops[0].auth.identities, vec![PathBuf::from("/home/me/.ssh/jump_key")]);
    assert!(p.hops[0].auth.identities_explicit);
    assert!(!p.hops[2].auth.identities_explicit);
}

/// ProxyCommand becomes the first hop's transport with tokens expanded; of ProxyJump and ProxyCommand the
/// first one obtained wins, as in OpenSSH (which checks this in readconf), and -J turns ProxyCommand off.
#[test]
fn proxy_command() {
    let cfg = config_file(
        "Host pc\n  HostName real.host\n  ProxyCommand nc %h %p\nHost both\n  ProxyJump j\n  ProxyCommand nc %h %p\n",
    );
    let p = plan(
        &with_config(&cfg, &["--ssh", "pc", "--db", "d:1", "-J", "none"]),
        &home_env(),
    )
    .unwrap();
    assert_eq!(p.hops[0].transport, Transport::Direct);
    let p = plan(
        &with_config(&cfg, &["--ssh", "pc", "--db", "d:1", "-J", "j"]),
        &home_env(),
    )
    .unwrap();
    assert_eq!((p.hops.len(), &p.hops[1].transport), (2, &Transport::Direct));
    let p = plan(&with_config(&cfg, &["--ssh", "pc", "--db", "d:1"]), &home_env()).unwrap();
    assert_eq!(p.hops[0].transport, Transport::ProxyCommand("nc real.host 22".into()));
    let p = plan(&with_config(&cfg, &["--ssh", "both", "--db", "d:1"]), &home_env()).unwrap();
    assert_eq!(p.hops.len(), 2);
    assert_eq!(p.hops[1].transport, Transport::Direct);
}

/// Algorithm lists are kept only when the user set them, so sqltun's own order applies otherwise.
#[test]
fn algorithms_only_when_set() {
    let p = plan(&args(&["--ssh", "b", "--db", "d:1"]), &home_env()).unwrap();
    assert_eq!(p.hops[0].algorithms.ciphers, None);
    let p = plan(
        &args(&[
            "--ssh",
            "b",
            "--db",
            "d:1",
            "-o",
            "Ciphers=aes128-ctr,aes256-gcm@openssh.com",
        ]),
        &home_env(),
    )
    .unwrap();
    assert_eq!(
        p.hops[0].algorithms.ciphers,
        Some(vec!["aes128-ctr".to_string(), "aes256-gcm@openssh.com".to_string()])
    );
}
