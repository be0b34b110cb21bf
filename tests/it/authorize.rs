//! `sqltun authorize`: the authorized_keys lines it prints, installed as the key's only entry, are held
//! to their promise by the real sshd and the real `ssh` client. The tunnel works; a shell, a command,
//! a subsystem, a forward to anything else (sqltun's, `ssh -W`, `ssh -L` to a port or a Unix socket) and
//! a remote forward (`ssh -R`) do not. Also: a line per hop in a chain, the new key `--new-key` writes
//! (0600, never over an existing file, read by OpenSSH), and which public half an identity gives.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::SocketAddrV4;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{
    Bastion, Chain, EXIT_TIMEOUT, KeyKind, KeyPair, Lab, OpenSsh, SqltunCommand, SshdOptions, TEST_USER, TempHome,
    accepts_connections, assert_error, connect, echo_roundtrip, free_local_port, local, poll_until, run, set_mode,
    wait_until, write_file,
};

/// What the line's forced command prints, so a person who tries a shell learns why.
const FORCED_COMMAND_SAYS: &str = "sqltun: this key only opens tunnels";
/// Bound on a forward or a Unix socket showing up, and on reading a refused forward to its end.
const SHOW_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `command` (a `sqltun authorize …`) to completion; fails the test unless it exits 0. Returns the
/// lines on stdout and stderr.
fn authorize(command: SqltunCommand) -> (Vec<String>, String) {
    let mut run = command.spawn();
    run.assert_exit(0, EXIT_TIMEOUT);
    let lines = run.stdout().lines().map(str::to_string).collect();
    (lines, run.stderr())
}

/// `--new-key=PATH`.
fn new_key_arg(path: &Path) -> String {
    format!("--new-key={}", path.display())
}

/// Whether sshd logged that it refused the key a direct-tcpip channel to `target` (the permission check,
/// not a failed connection).
fn refused_open(log: &str, target: SocketAddrV4) -> bool {
    log.contains(&format!(
        "to connect to host {} port {}, but the request was denied",
        target.ip(),
        target.port()
    ))
}

/// With the printed line as the key's only entry (next to an unrestricted control key that proves each
/// refusal could have been an acceptance), against an sshd configured as Debian ships it for forwarding
/// (`AllowTcpForwarding yes`, `AllowStreamLocalForwarding yes`):
/// (a) the tunnel works; (b) no command, shell or subsystem (sftp) runs (a marker file is never created);
/// (c) sqltun's forward to another target is refused (exit 6), and so are (d) `ssh -W`, `ssh -L` to a
/// port and `ssh -L` to a Unix socket; (e) `ssh -R` is refused, also on the very listen port and
/// (upper-case) address the line names. And the one gap stderr warns about: listening on a Unix socket
/// (`ssh -R /path:…`) is not something an authorized_keys line can stop.
#[test]
fn the_line_lets_the_key_open_the_tunnel_and_nothing_else() {
    let lab = Lab::new();
    let authorized_keys = lab.fresh_path("authorized_keys", "");
    let b = Bastion::without_key(lab, |_, _| SshdOptions {
        authorized_keys: Some(authorized_keys.clone()),
        stream_local_forwarding: true,
        // As Debian's sshd_config has it (its path), so a subsystem request is not refused for want of one.
        extra_config: vec!["Subsystem sftp internal-sftp".to_string()],
        ..SshdOptions::default()
    });
    let key = b.lab.fresh_path("sqltun_key", "");
    let (lines, stderr) = authorize(b.sqltun("authorize").db(b.targets.echo).arg(new_key_arg(&key)));
    assert_eq!(lines.len(), 1, "one hop, one line: {lines:?}");
    let line = &lines[0];
    assert!(
        line.contains(&format!("permitopen=\"{}\"", b.targets.echo)) && line.ends_with(" sqltun"),
        "{line}"
    );
    assert!(
        stderr.contains(&format!(
            "line 1: add it to ~{TEST_USER}/.ssh/authorized_keys on hop {}",
            b.sshd.destination()
        )) && stderr.contains("AllowStreamLocalForwarding no"),
        "{stderr}"
    );
    let control = b.lab.generate_key(KeyKind::Ed25519);
    fs::write(&authorized_keys, format!("{line}\n{}\n", control.public_key())).expect("write authorized_keys");
    let ssh = OpenSsh::new(&b.sshd, &key, &b.known_hosts);
    let control_ssh = OpenSsh::new(&b.sshd, &control.private, &b.known_hosts);

    // (a) The tunnel, with the new key.
    let (tunnel, _) = b
        .connect()
        .arg("-i")
        .arg(&key)
        .db(b.targets.echo)
        .spawn_and_echo(b"through the restricted key");
    drop(tunnel);

    // (b) Nothing runs: a command, a shell fed on stdin, a subsystem. The control key's command does.
    let markers = b.lab.fresh_path("markers", "");
    fs::create_dir(&markers).expect("create the markers directory");
    set_mode(&markers, 0o1777);
    let marker = |name: &str| markers.join(name);
    let touch = |name: &str| format!("touch {}", marker(name).display());
    let ran = control_ssh.run(&[&touch("control")], b"");
    assert!(
        ran.code == 0 && marker("control").exists(),
        "the control key's command did not run, so the test proves nothing: {ran:?}"
    );
    let sftp = control_ssh.clone().args(&["-s"]).run(&["sftp"], b"");
    assert_eq!(sftp.code, 0, "the control key's subsystem did not run: {sftp:?}");
    let command = ssh.run(&[&touch("command")], b"");
    let shell = ssh.run(&[], format!("{}\n", touch("shell")).as_bytes());
    let subsystem = ssh.clone().args(&["-s"]).run(&["sftp"], b"");
    for (what, ran) in [("command", &command), ("shell", &shell), ("subsystem", &subsystem)] {
        assert!(
            ran.code == 1 && ran.stdout.contains(FORCED_COMMAND_SAYS),
            "{what}: the forced command did not run in its place: {ran:?}"
        );
    }
    assert!(!marker("command").exists() && !marker("shell").exists());

    // (c) sqltun to another target: refused by the line (sshd says why), exit 6.
    let mut check = b.sqltun("check").arg("-i").arg(&key).db(b.targets.source).spawn();
    check.assert_exit(6, EXIT_TIMEOUT);
    assert!(b.sshd.wait_for_log(|log| refused_open(log, b.targets.source)));

    // (d) ssh -W: the target yes, anything else no.
    let allowed = ssh
        .clone()
        .args(&["-W", &b.targets.echo.to_string()])
        .run(&[], b"ping\n");
    assert_eq!((allowed.code, allowed.stdout.as_str()), (0, "ping\n"), "{allowed:?}");
    let refused = ssh.clone().args(&["-W", &b.targets.sink.to_string()]).run(&[], b"");
    assert!(
        refused.code == 255 && refused.stderr.contains("administratively prohibited"),
        "{refused:?}"
    );
    assert!(b.sshd.wait_for_log(|log| refused_open(log, b.targets.sink)));

    // (d) ssh -L: the target yes; another port, or a Unix socket on the bastion, no.
    let ports = distinct_ports(3);
    let socket = marker("db.sock");
    let forwards = [
        format!("127.0.0.1:{}:{}", ports[0], b.targets.echo),
        format!("127.0.0.1:{}:{}", ports[1], b.targets.source),
        format!("127.0.0.1:{}:{}", ports[2], socket.display()),
    ];
    let mut local_forwards = ssh
        .clone()
        .args(&["-N", "-L", &forwards[0], "-L", &forwards[1], "-L", &forwards[2]])
        .spawn();
    wait_until("ssh -L to listen", SHOW_UP_TIMEOUT, || {
        assert!(
            local_forwards.is_running(),
            "ssh -L exited: {}",
            local_forwards.stderr()
        );
        accepts_connections(ports[0]).then_some(())
    });
    echo_roundtrip(local(ports[0]), b"through ssh -L");
    assert_eq!(read_all(ports[1], b"1000\n"), 0, "ssh -L to another port got data");
    assert_eq!(read_all(ports[2], b"hello\n"), 0, "ssh -L to a Unix socket got data");
    let socket_refused = format!("to connect to path {}, but the request was denied", socket.display());
    assert!(
        b.sshd
            .wait_for_log(|log| refused_open(log, b.targets.source) && log.contains(&socket_refused))
    );
    drop(local_forwards);

    // (e) ssh -R: refused, where the control key's is accepted; also on the line's own NO-LISTEN:1.
    let remote = |ssh: &OpenSsh, spec: &str| {
        ssh.clone()
            .args(&["-o", "ExitOnForwardFailure=yes", "-R", spec])
            .run(&["true"], b"")
    };
    let accepted = remote(&control_ssh, "40000:127.0.0.1:9");
    assert_eq!(
        accepted.code, 0,
        "the control key's -R failed, so the test proves nothing: {accepted:?}"
    );
    for spec in [
        "40000:127.0.0.1:9",
        "NO-LISTEN:1:127.0.0.1:9",
        "no-listen:1:127.0.0.1:9",
    ] {
        let refused = remote(&ssh, spec);
        assert!(
            refused.code == 255 && refused.stderr.contains("remote port forwarding failed"),
            "-R {spec}: {refused:?}"
        );
    }
    assert!(b.sshd.wait_for_log(|log| {
        log.contains("remote forward to host NO-LISTEN port 1, but the request was denied")
            && log.contains("remote forward to host no-listen port 1, but the request was denied")
    }));

    // The gap: with AllowStreamLocalForwarding yes, the key can listen on a Unix socket on the bastion.
    // If this ever fails, OpenSSH closed it, and authorize's advice about sshd_config can go.
    let listening = marker("listen.sock");
    let mut remote_socket = ssh
        .clone()
        .args(&["-N", "-R", &format!("{}:127.0.0.1:9", listening.display())])
        .spawn();
    let appeared = poll_until(SHOW_UP_TIMEOUT, || {
        (listening.exists() || !remote_socket.is_running()).then_some(())
    });
    assert!(
        appeared.is_some() && listening.exists(),
        "ssh -R to a Unix socket was refused by the line alone: {}",
        remote_socket.stderr()
    );
}

/// `count` distinct loopback ports that were free a moment ago.
fn distinct_ports(count: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < count {
        let port = free_local_port();
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

/// Connects to 127.0.0.1:`port`, sends `request`, and reads to end of file (bounded): how many bytes came.
fn read_all(port: u16, request: &[u8]) -> usize {
    let mut stream = connect(local(port));
    stream
        .set_read_timeout(Some(SHOW_UP_TIMEOUT))
        .expect("set a read timeout");
    // The forward may be closed before the request is written: that is the refusal, not an error here.
    let _ = stream.write_all(request);
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => received.len(),
        Err(e) => panic!("reading from 127.0.0.1:{port} did not end within {SHOW_UP_TIMEOUT:?}: {e}"),
    }
}

/// Through two bastions: two lines, the first allowing only the second bastion as sqltun dials it through
/// the first, the second only the target. Installed on their hops, the tunnel works; the first hop's line
/// does not let the key reach the target directly.
#[test]
fn a_chain_gets_a_line_per_hop() {
    let lab = Lab::with_bastions(2);
    let files: Vec<PathBuf> = (0..2).map(|_| lab.fresh_path("authorized_keys", "")).collect();
    let chain = Chain::without_key(lab, |hop| SshdOptions {
        authorized_keys: Some(files[hop].clone()),
        ..SshdOptions::default()
    });
    let key = chain.lab.generate_key(KeyKind::Ed25519);
    let (lines, stderr) = authorize(chain.literal("authorize").identity(&key).db(chain.targets.echo));
    assert_eq!(lines.len(), 2, "{lines:?}\n{stderr}");
    let public = key.public_key();
    for (line, allowed) in lines
        .iter()
        .zip([format!("{}:22", chain.addr(1)), chain.targets.echo.to_string()])
    {
        assert!(
            line.starts_with(&format!(
                "restrict,port-forwarding,permitopen=\"{allowed}\",permitlisten="
            )) && line.matches("permitopen=").count() == 1
                && line.contains(&format!(" {public} sqltun")),
            "{line}"
        );
    }
    for (i, sshd) in chain.sshds.iter().enumerate() {
        let told = format!(
            "line {} (key {}): add it to ~{TEST_USER}/.ssh/authorized_keys on hop {}/2 {}",
            i + 1,
            key.private.display(),
            i + 1,
            sshd.destination()
        );
        assert!(stderr.contains(&told), "stderr lacks {told:?}:\n{stderr}");
        fs::write(&files[i], format!("{}\n", lines[i])).expect("write authorized_keys");
    }
    chain
        .literal("connect")
        .identity(&key)
        .db(chain.targets.echo)
        .spawn_and_echo(b"through two restricted hops");
    let first_hop = OpenSsh::new(&chain.sshds[0], &key.private, &chain.known_hosts);
    let direct = first_hop.args(&["-W", &chain.targets.echo.to_string()]).run(&[], b"");
    assert_eq!(direct.code, 255, "{direct:?}");
    assert!(chain.sshds[0].wait_for_log(|log| refused_open(log, chain.targets.echo)));
}

/// `--new-key` without a path writes ~/.ssh/sqltun_ed25519 (the directory made 0700), private 0600, a
/// key OpenSSH reads (`ssh-keygen -y` gives the same public half as the .pub and the line); a second
/// run, or a symbolic link at the path, is refused (exit 2) and leaves everything as it was.
#[test]
fn new_key_is_private_and_never_overwritten() {
    let home = TempHome::new();
    let command = || {
        home.sqltun("authorize")
            .args(["--ssh", "deploy@bastion", "--db", "db.internal:5432"])
    };
    let (lines, stderr) = authorize(command().arg("--new-key"));
    let private = home.path().join(".ssh/sqltun_ed25519");
    let mode = |p: &Path| fs::symlink_metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!((mode(&home.path().join(".ssh")), mode(&private)), (0o700, 0o600));
    let derived = run(Command::new("ssh-keygen").args(["-y", "-f"]).arg(&private));
    let derived = String::from_utf8_lossy(&derived.stdout);
    let derived: Vec<&str> = derived.split_whitespace().take(2).collect();
    let pub_file = KeyPair {
        private: private.clone(),
        public: home.path().join(".ssh/sqltun_ed25519.pub"),
        kind: KeyKind::Ed25519,
        passphrase: None,
    }
    .public_key();
    assert_eq!(derived.join(" "), pub_file);
    assert!(lines[0].contains(&format!(" {pub_file} sqltun")), "{lines:?}");
    assert!(
        stderr.contains(&format!("connect with -i {}", private.display())),
        "{stderr}"
    );

    let before = fs::read(&private).expect("read the key");
    let (code, stderr) = command().arg("--new-key").spawn().run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 2, &["already exists", "never overwrites"]);
    assert_eq!(fs::read(&private).expect("read the key"), before);

    let target = home.path().join("elsewhere");
    let link = home.path().join("link");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let (code, stderr) = command().arg(new_key_arg(&link)).spawn().run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 2, &["already exists"]);
    assert!(!target.exists(), "the link was followed");
}

/// The identity's public half comes without its passphrase: from an encrypted OpenSSH key itself (its
/// public half is in clear), from `FILE.pub` beside an encrypted PEM key; without that `.pub` the error
/// names the command that writes one (exit 2). A target that would widen the line (`*`) is refused.
#[test]
fn identity_public_halves() {
    let home = TempHome::new();
    let command = |key: &Path| {
        home.sqltun("authorize")
            .args(["--ssh", "deploy@bastion", "--db", "db.internal:5432", "-i"])
            .arg(key)
    };
    let keygen = |name: &str, format: &[&str]| -> (PathBuf, String) {
        let path = home.path().join(name);
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ecdsa", "-N", "a passphrase", "-C", "c"])
            .args(format)
            .arg("-f")
            .arg(&path));
        let public = KeyPair {
            private: path.clone(),
            public: home.path().join(format!("{name}.pub")),
            kind: KeyKind::Ecdsa,
            passphrase: None,
        }
        .public_key();
        (path, public)
    };

    let (openssh, public) = keygen("openssh", &[]);
    fs::remove_file(home.path().join("openssh.pub")).expect("remove the .pub");
    let (lines, _) = authorize(command(&openssh));
    assert!(lines[0].contains(&format!(" {public} sqltun")), "{lines:?}");

    let (pem, public) = keygen("pem", &["-m", "PEM"]);
    let (lines, _) = authorize(command(&pem));
    assert!(lines[0].contains(&format!(" {public} sqltun")), "{lines:?}");
    fs::remove_file(home.path().join("pem.pub")).expect("remove the .pub");
    let (code, stderr) = command(&pem).spawn().run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 2, &["is encrypted", "ssh-keygen -y -f", "--new-key"]);

    let (code, stderr) = home
        .sqltun("authorize")
        .args(["--ssh", "deploy@bastion", "--db", "*:5432", "--new-key"])
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 2, &["--db: `*`", "authorized_keys"]);
    assert!(
        !home.path().join(".ssh/sqltun_ed25519").exists(),
        "a key was written for a refused line"
    );
}

/// A saved tunnel by NAME (`sqltun authorize prod`, as `connect prod`): the line's comment and the new
/// key's default path carry the name, and stderr names the `identity = "…"` to add to the tunnel's table.
/// With the line installed and that added, `sqltun connect prod` works with no flag at all.
#[test]
fn a_saved_tunnel_by_name() {
    let lab = Lab::new();
    let authorized_keys = lab.fresh_path("authorized_keys", "");
    let b = Bastion::without_key(lab, |_, _| SshdOptions {
        authorized_keys: Some(authorized_keys.clone()),
        ..SshdOptions::default()
    });
    let tunnels = b.lab.fresh_path("sqltun", ".toml");
    let table = format!(
        "[tunnels.prod]\nssh = \"{}\"\ndb = \"{}\"\nknown_hosts = \"{}\"\n",
        b.sshd.destination(),
        b.targets.echo,
        b.known_hosts.display()
    );
    write_file(&tunnels, &table, 0o644);
    let named = |subcommand: &str| b.lab.sqltun(subcommand).arg("prod").arg("--tunnels-file").arg(&tunnels);
    let (lines, stderr) = authorize(named("authorize").arg("--new-key"));
    let key = b.lab.home().join(".ssh/sqltun_prod_ed25519");
    assert!(key.exists(), "no key at {}:\n{stderr}", key.display());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(&format!("permitopen=\"{}\"", b.targets.echo)) && lines[0].ends_with(" sqltun:prod"),
        "{lines:?}"
    );
    let advice = format!("identity = \"{}\" in [tunnels.prod]", key.display());
    assert!(stderr.contains(&advice), "stderr lacks {advice:?}:\n{stderr}");

    fs::write(&authorized_keys, format!("{}\n", lines[0])).expect("write authorized_keys");
    write_file(&tunnels, &format!("{table}identity = \"{}\"\n", key.display()), 0o644);
    named("connect").spawn_and_echo(b"through the saved tunnel's own key");
}
