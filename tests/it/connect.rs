//! `sqltun connect` through one bastion (OpenSSH's sshd in its own namespace): authentication, host keys,
//! failures and their exit codes, forwarding (echo, bulk transfers, PostgreSQL) and shutdown.

use std::fs;
use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    Bastion, EXIT_TIMEOUT, KeyKind, Lab, Signal, Sqltun, SshdOptions, TEST_PASSWORD, TempHome, Tripwire,
    accepts_connections, assert_download_intact, assert_error, assert_upload_intact, connect, echo_concurrently,
    echo_on, echo_roundtrip, error_line, free_local_port, local, psql, psql_url, reachable_directly, set_mode,
    wait_until,
};
use std::os::unix::fs::PermissionsExt as _;

/// 100 MiB, for the bulk transfer tests.
const BULK: u64 = 100 * 1024 * 1024;

/// Bound on sqltun reporting a refused or prohibited forward on stderr, and on sshd dropping forwards.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Asserts that a connection to a tunnel's local port is closed by sqltun (end of file or reset) rather
/// than left hanging or answered.
fn assert_closed_by_tunnel(tunnel: &Sqltun, port: u16) {
    let mut stream = connect(local(port));
    stream
        .set_read_timeout(Some(REPORT_TIMEOUT * 2))
        .expect("set read timeout");
    let mut buffer = [0u8; 64];
    match stream.read(&mut buffer) {
        Ok(0) => {}
        Ok(n) => tunnel.fail(&format!("a connection whose target is unreachable received {n} bytes")),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => tunnel.fail(&format!(
            "a connection whose target is unreachable was still open after {:?}",
            REPORT_TIMEOUT * 2
        )),
        Err(_) => {} // reset: closed as well
    }
}

/// Sends `signal` to a tunnel holding a forwarded connection open and checks the whole shutdown: exit 0
/// within the contract's bound, the local port closed, stdout only the port line, and no forwarded
/// connection left on the bastion.
fn assert_clean_shutdown(signal: Signal) {
    let bastion = Bastion::start();
    let (mut tunnel, port) = bastion.echo_tunnel();
    let open = connect(local(port));
    echo_on(&open, b"keep this forward open");
    wait_until(
        "sshd to hold the forwarded connection to the target",
        REPORT_TIMEOUT,
        || (bastion.lab.forwarded_connections() >= 1).then_some(()),
    );

    tunnel.stop(signal);
    assert!(
        !accepts_connections(port),
        "127.0.0.1:{port} still accepts connections after sqltun exited"
    );
    assert_eq!(
        tunnel.stdout(),
        format!("{port}\n"),
        "stdout must be the port line alone"
    );
    wait_until(
        "sshd to close the forwarded connection to the target",
        REPORT_TIMEOUT,
        || (bastion.lab.forwarded_connections() == 0).then_some(()),
    );
    drop(open);
}

/// The basic promise: with an authorized ed25519 key the port line appears, and bytes reach the target
/// through the bastion and come back unchanged.
#[test]
fn ed25519_key_auth_forwards_to_the_target() {
    let bastion = Bastion::start();
    let (_tunnel, port) = bastion.echo_tunnel();
    echo_roundtrip(local(port), b"hello through the bastion");
}

/// Encrypted keys are the norm; CI passes the passphrase in SQLTUN_SSH_PASSPHRASE, never on argv.
#[test]
fn encrypted_key_with_passphrase_from_env() {
    let bastion = Bastion::start();
    let key = bastion
        .lab
        .generate_encrypted_key(KeyKind::Ed25519, "correct horse battery staple");
    bastion.lab.authorize(&key);
    bastion
        .connect()
        .identity(&key)
        .db(bastion.targets.echo)
        .env(
            "SQLTUN_SSH_PASSPHRASE",
            key.passphrase.as_deref().expect("an encrypted key"),
        )
        .spawn_and_echo(b"unlocked with the passphrase");
}

/// Without a terminal, a missing passphrase must be an immediate usage error that names the variable to
/// set, not a hang on a prompt nobody can answer.
#[test]
fn encrypted_key_without_passphrase_and_terminal_is_a_usage_error() {
    let bastion = Bastion::start();
    let key = bastion.lab.generate_encrypted_key(KeyKind::Ed25519, "never given");
    bastion.lab.authorize(&key);
    let (code, stderr) = bastion
        .connect()
        .identity(&key)
        .db(bastion.targets.echo)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 2, &["SQLTUN_SSH_PASSPHRASE"]);
}

/// Agent authentication through a real ssh-agent: no -i, and the key exists only inside the agent.
#[test]
fn agent_auth_with_the_key_only_in_the_agent() {
    let bastion = Bastion::start();
    let key = bastion.lab.authorized_key(KeyKind::Ed25519);
    let socket = bastion.lab.start_agent(&[&key]);
    fs::remove_file(&key.private).expect("remove the private key file");
    bastion
        .connect_to_echo()
        .env("SSH_AUTH_SOCK", &socket)
        .spawn_and_echo(b"signed by the agent");
}

/// Password authentication with the password from SQLTUN_SSH_PASSWORD (bastions without keys exist).
#[test]
fn password_auth_from_env() {
    let bastion = Bastion::start();
    bastion
        .connect_to_echo()
        .env("SQLTUN_SSH_PASSWORD", TEST_PASSWORD)
        .spawn_and_echo(b"password from the environment");
}

/// Password authentication with --password-file (the first line), for secrets mounted as files.
#[test]
fn password_auth_from_file() {
    let bastion = Bastion::start();
    let file = bastion.lab.fresh_path("password", "");
    fs::write(&file, format!("{TEST_PASSWORD}\n")).expect("write the password file");
    set_mode(&file, 0o600);
    bastion
        .connect_to_echo()
        .arg("--password-file")
        .arg(&file)
        .spawn_and_echo(b"password from a file");
}

/// RSA keys are still everywhere; sshd only takes them with rsa-sha2-256/512 signatures (ssh-rsa/SHA-1
/// is disabled in OpenSSH), so this checks sqltun signs with a modern RSA algorithm.
#[test]
fn rsa_key_auth() {
    let bastion = Bastion::start();
    let key = bastion.lab.authorized_key(KeyKind::Rsa);
    bastion
        .connect()
        .identity(&key)
        .db(bastion.targets.echo)
        .spawn_and_echo(b"signed with rsa-sha2");
}

/// Bastions offer several host key types; when known_hosts pins only one of them (here ECDSA, not the
/// ed25519 key OpenSSH would otherwise prefer), that type must be negotiated and accepted, as OpenSSH does.
#[test]
fn host_key_type_pinned_in_known_hosts_is_negotiated() {
    let bastion = Bastion::with(|_, _| SshdOptions {
        host_keys: vec![KeyKind::Ed25519, KeyKind::Ecdsa, KeyKind::Rsa],
        ..SshdOptions::default()
    });
    let ecdsa = bastion.sshd.host_key(KeyKind::Ecdsa);
    let known_hosts =
        bastion
            .lab
            .known_hosts_file(&[format!("{} {}", bastion.sshd.known_hosts_name(), ecdsa.public_key())]);
    bastion
        .connect_trusting(&known_hosts)
        .db(bastion.targets.echo)
        .spawn_and_echo(b"ecdsa host key");
}

/// An unknown host key with nobody to ask must be refused (exit 4), and the message must carry the
/// fingerprint so a person can verify it out of band; nothing is recorded.
#[test]
fn unknown_host_key_is_refused_without_a_terminal() {
    let bastion = Bastion::start();
    let empty = bastion.lab.known_hosts_file(&[]);
    let (code, stderr) = bastion
        .connect_trusting(&empty)
        .db(bastion.targets.echo)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    let fingerprint = bastion.sshd.host_key(KeyKind::Ed25519).fingerprint();
    assert_error(code, &stderr, 4, &[&bastion.sshd.destination(), &fingerprint]);
    assert_eq!(
        fs::read_to_string(&empty).expect("read known_hosts"),
        "",
        "a refused key was recorded"
    );
}

/// accept-new records an unknown key where OpenSSH can find it (`ssh-keygen -F`, with the `[host]:port`
/// form for a non-default port), and the recorded key then passes strict checking.
#[test]
fn accept_new_records_the_host_key() {
    let bastion = Bastion::with(|_, _| SshdOptions {
        port: 2222,
        ..SshdOptions::default()
    });
    let recorded = bastion.lab.fresh_path("known_hosts_recorded", "");
    let mut tunnel = bastion
        .connect_trusting(&recorded)
        .args(["-o", "StrictHostKeyChecking=accept-new"])
        .db(bastion.targets.echo)
        .spawn();
    tunnel.wait_ready();
    tunnel.stop(Signal::Term);

    let name = bastion.sshd.known_hosts_name();
    let found = Command::new("ssh-keygen")
        .args(["-F", &name, "-f"])
        .arg(&recorded)
        .output()
        .expect("run ssh-keygen -F");
    let listing = String::from_utf8_lossy(&found.stdout);
    assert!(
        found.status.success() && listing.contains(&bastion.sshd.host_key(KeyKind::Ed25519).blob()),
        "ssh-keygen -F {name} does not find sshd's ed25519 key in {}:\n{listing}\nfile:\n{}",
        recorded.display(),
        fs::read_to_string(&recorded).unwrap_or_default()
    );

    bastion
        .connect_trusting(&recorded)
        .args(["-o", "StrictHostKeyChecking=yes"])
        .db(bastion.targets.echo)
        .spawn_and_echo(b"known now");
}

/// A changed host key is the man-in-the-middle case: refused (exit 4) with the file and line of the
/// stale entry and the `ssh-keygen -R` command that removes it.
#[test]
fn changed_host_key_is_refused_with_file_line_and_fix() {
    let bastion = Bastion::start();
    let impostor = bastion.lab.generate_key(KeyKind::Ed25519);
    let known_hosts = bastion.lab.known_hosts_file(&[
        "# pinned by the test".to_string(),
        format!("{} {}", bastion.sshd.known_hosts_name(), impostor.public_key()),
    ]);
    let (code, stderr) = bastion
        .connect_trusting(&known_hosts)
        .db(bastion.targets.echo)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    let file_line = format!("{}:2", known_hosts.display());
    assert_error(
        code,
        &stderr,
        4,
        &[&bastion.sshd.destination(), &file_line, "ssh-keygen -R"],
    );
}

/// During a key rotation known_hosts lists two keys of one type for a host; the right one must be
/// accepted even though the first listed does not match (as OpenSSH does).
#[test]
fn second_key_of_the_same_type_is_accepted() {
    let bastion = Bastion::start();
    let old = bastion.lab.generate_key(KeyKind::Ed25519);
    let known_hosts = bastion.lab.known_hosts_file(&[
        format!("{} {}", bastion.sshd.known_hosts_name(), old.public_key()),
        bastion.sshd.known_hosts_line(),
    ]);
    bastion
        .connect_trusting(&known_hosts)
        .db(bastion.targets.echo)
        .spawn_and_echo(b"rotated");
}

/// A key marked @revoked is refused even when the same key is also listed as known.
#[test]
fn revoked_host_key_is_refused() {
    let bastion = Bastion::start();
    let known_hosts = bastion.lab.known_hosts_file(&[
        format!("@revoked {}", bastion.sshd.known_hosts_line()),
        bastion.sshd.known_hosts_line(),
    ]);
    let (code, stderr) = bastion
        .connect_trusting(&known_hosts)
        .db(bastion.targets.echo)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 4, &[&bastion.sshd.destination()]);
    assert!(
        error_line(&stderr).to_lowercase().contains("revoked"),
        "the error does not say the key is revoked:\n{stderr}"
    );
}

/// A wrong password is an authentication failure (exit 5), reported without retrying into a hang: well
/// within ConnectTimeout, which bounds connect + handshake + authentication.
#[test]
fn wrong_password_fails_auth_quickly() {
    let bastion = Bastion::start();
    let connect_timeout = Duration::from_secs(5);
    let started = Instant::now();
    let (code, stderr) = bastion
        .connect_to_echo()
        .args(["-o", &format!("ConnectTimeout={}", connect_timeout.as_secs())])
        .env("SQLTUN_SSH_PASSWORD", "not the password")
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    let elapsed = started.elapsed();
    assert_error(code, &stderr, 5, &[&bastion.sshd.destination()]);
    let bound = connect_timeout + Duration::from_secs(10);
    assert!(
        elapsed < bound,
        "a refused password took {elapsed:?} to report, more than ConnectTimeout + slack ({bound:?})"
    );
}

/// A key the bastion does not accept is an authentication failure (exit 5) naming the hop.
#[test]
fn wrong_key_fails_auth() {
    let bastion = Bastion::start();
    let stranger = bastion.lab.generate_key(KeyKind::Ed25519);
    let (code, stderr) = bastion
        .connect()
        .identity(&stranger)
        .db(bastion.targets.echo)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 5, &[&bastion.sshd.destination()]);
}

/// A bastion port where nothing listens (connection refused) is "host unreachable" (exit 3).
#[test]
fn refused_bastion_port_is_unreachable() {
    let lab = Lab::new();
    let key = lab.generate_key(KeyKind::Ed25519);
    let destination = format!("sqltun-test@{}:2200", lab.bastion_addr());
    let known_hosts = lab.known_hosts_file(&[]);
    let (code, stderr) = lab
        .connect()
        .args(["--ssh", &destination, "--db", &format!("{}:7007", lab.target_addr())])
        .known_hosts(&known_hosts)
        .identity(&key)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 3, &[&destination]);
}

/// A bastion that never answers (SYNs dropped) must not hang like `ssh` does: exit 3 once
/// ConnectTimeout has passed (here 2 s, plus generous slack), saying it timed out.
#[test]
fn black_holed_bastion_times_out() {
    let lab = Lab::new();
    let key = lab.generate_key(KeyKind::Ed25519);
    let destination = format!("sqltun-test@{}:22", lab.blackhole_addr());
    let known_hosts = lab.known_hosts_file(&[]);
    let tunnel = lab
        .connect()
        .args(["--ssh", &destination, "--db", &format!("{}:7007", lab.target_addr())])
        .args(["-o", "ConnectTimeout=2"])
        .known_hosts(&known_hosts)
        .identity(&key)
        .spawn();
    let started = tunnel.started();
    let (code, stderr) = tunnel.run_to_exit(EXIT_TIMEOUT);
    let elapsed = started.elapsed();
    assert_error(code, &stderr, 3, &[&destination]);
    let line = error_line(&stderr).to_lowercase();
    assert!(
        line.contains("timed out") || line.contains("timeout"),
        "the error does not mention the timeout: {line}"
    );
    let bound = Duration::from_secs(2 + 10);
    assert!(
        elapsed < bound,
        "gave up after {elapsed:?}, more than ConnectTimeout=2 + slack ({bound:?})"
    );
}

/// A target that refuses (nothing listens) costs only that connection: it is closed, stderr says why,
/// and the tunnel keeps serving its other forward.
#[test]
fn refused_target_closes_the_connection_and_the_tunnel_stays_up() {
    let bastion = Bastion::start();
    let (refused_port, echo_port) = (free_local_port(), free_local_port());
    let mut tunnel = bastion
        .connect_with_key()
        .db(bastion.targets.refused)
        .args(["--local-port", &refused_port.to_string()])
        .db(bastion.targets.echo)
        .args(["--local-port", &echo_port.to_string()])
        .spawn();
    tunnel.wait_ready_line();
    assert_closed_by_tunnel(&tunnel, refused_port);
    if !tunnel.stderr_mentions(&["refused", "connect failed"], REPORT_TIMEOUT) {
        tunnel.fail("stderr does not say the target refused the connection");
    }
    echo_roundtrip(local(echo_port), b"the other forward still works");
    assert!(tunnel.is_running(), "the tunnel exited after a refused target");
    assert_closed_by_tunnel(&tunnel, refused_port);
    echo_roundtrip(local(echo_port), b"and again");
}

/// A target the bastion forbids (sshd's PermitOpen) is handled like a refusal: that connection is
/// closed with a reason on stderr, and the permitted forward keeps working.
#[test]
fn prohibited_target_closes_the_connection_and_the_tunnel_stays_up() {
    let bastion = Bastion::with(|_, targets| SshdOptions {
        permit_open: Some(targets.echo.to_string()),
        ..SshdOptions::default()
    });
    let (prohibited_port, echo_port) = (free_local_port(), free_local_port());
    let mut tunnel = bastion
        .connect_with_key()
        .db(bastion.targets.sink)
        .args(["--local-port", &prohibited_port.to_string()])
        .db(bastion.targets.echo)
        .args(["--local-port", &echo_port.to_string()])
        .spawn();
    tunnel.wait_ready_line();
    assert_closed_by_tunnel(&tunnel, prohibited_port);
    if !tunnel.stderr_mentions(&["prohibited"], REPORT_TIMEOUT) {
        tunnel.fail("stderr does not say the bastion prohibited the forward");
    }
    echo_roundtrip(local(echo_port), b"permitted");
    assert!(tunnel.is_running(), "the tunnel exited after a prohibited target");
}

/// The product's reason to exist: the real psql client runs a query on a real PostgreSQL server that
/// only the bastion can reach.
#[test]
fn psql_query_through_the_tunnel() {
    let (bastion, _tunnel, port) = postgres_tunnel();
    let answer = psql(port, "select 42", &bastion.lab.home());
    assert_eq!(answer.trim(), "42");
}

/// A bastion, PostgreSQL behind it, and a tunnel to it (ready); the tunnel's local port.
fn postgres_tunnel() -> (Bastion, Sqltun, u16) {
    let bastion = Bastion::start();
    let postgres = bastion.lab.start_postgres();
    let mut tunnel = bastion.connect_with_key().db(postgres.addr).spawn();
    let port = tunnel.wait_ready();
    (bastion, tunnel, port)
}

/// libpq tries `::1` first for `localhost`: the tunnel must hold `[::1]:PORT` too (or another local user
/// could listen there and catch those clients), and a client that connects there must reach the database.
#[test]
fn psql_over_ipv6_loopback_reaches_the_database() {
    let (bastion, _tunnel, port) = postgres_tunnel();
    let url = format!("postgresql://postgres@[::1]:{port}/postgres");
    let answer = psql_url(&url, "select 6 * 7", &bastion.lab.home());
    assert_eq!(answer.trim(), "42");
}

/// `--unix-socket DIR` with a PostgreSQL target makes the tunnel look like a local server to libpq:
/// the ready line is `DIR/.s.PGSQL.5432`, psql with host DIR and port 5432 reaches the database, the
/// socket is 0600 in a 0700 directory (no other user can connect), and it is gone once sqltun stops.
#[test]
fn unix_socket_directory_serves_psql_privately() {
    let bastion = Bastion::start();
    let postgres = bastion.lab.start_postgres();
    let dir = bastion.lab.fresh_path("sockets", "");
    fs::create_dir(&dir).expect("create the socket directory");
    set_mode(&dir, 0o700);
    let mut tunnel = bastion
        .connect_with_key()
        .args(["--db", &format!("postgres://postgres@{}/postgres", postgres.addr)])
        .arg("--unix-socket")
        .arg(&dir)
        .spawn();
    let socket = dir.join(".s.PGSQL.5432");
    assert_eq!(tunnel.wait_ready_line(), socket.display().to_string());
    let mode = |p: &std::path::Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600, "socket mode");
    assert_eq!(mode(&dir), 0o700, "directory mode");
    let url = format!("postgresql://postgres@/postgres?host={}&port=5432", dir.display());
    let answer = psql_url(&url, "select 42", &bastion.lab.home());
    assert_eq!(answer.trim(), "42");
    tunnel.stop(Signal::Term);
    assert!(!socket.exists(), "the socket is still there after sqltun stopped");
}

/// A socket in a directory others can enter is reachable by them whatever its own mode: sqltun refuses
/// it (exit 7), naming the directory and the `chmod 700` that fixes it, and creates no socket.
#[test]
fn unix_socket_in_a_directory_open_to_others_is_refused() {
    let bastion = Bastion::start();
    let dir = bastion.lab.fresh_path("open-sockets", "");
    fs::create_dir(&dir).expect("create the socket directory");
    set_mode(&dir, 0o755);
    let socket = dir.join("db.sock");
    let (code, stderr) = bastion
        .connect_with_key()
        .db(bastion.targets.echo)
        .arg("--unix-socket")
        .arg(&socket)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 7, &[&dir.display().to_string(), "chmod 700"]);
    assert!(!socket.exists(), "a socket was left in the open directory");
}

/// Connection pools open many connections at once: 50 concurrent connections, each with its own
/// payload, must each get exactly their own bytes back.
#[test]
fn fifty_concurrent_echo_connections() {
    let bastion = Bastion::start();
    let (_tunnel, port) = bastion.echo_tunnel();
    echo_concurrently(local(port), 50, 48 * 1024);
}

/// Uploads (restores, COPY FROM) must arrive intact: 100 MiB to the sink, whose sha256 must match.
#[test]
fn upload_100_mib_arrives_intact() {
    let bastion = Bastion::start();
    let (tunnel, ports) = bastion.tunnels_to(&[bastion.targets.sink]);
    assert_upload_intact(&tunnel, local(ports[0]), BULK);
}

/// Downloads (dumps, big result sets) must arrive intact and complete: 100 MiB from the source, then
/// end of file.
#[test]
fn download_100_mib_arrives_intact() {
    let bastion = Bastion::start();
    let (tunnel, ports) = bastion.tunnels_to(&[bastion.targets.source]);
    assert_download_intact(&tunnel, local(ports[0]), BULK);
}

/// Ctrl-C ends the tunnel cleanly: exit 0 within about a second, the port closed, and no forwarded
/// connection left behind on the bastion.
#[test]
fn sigint_exits_cleanly_and_closes_forwards() {
    assert_clean_shutdown(Signal::Int);
}

/// SIGTERM (how CI and service managers stop things) ends the tunnel as cleanly as Ctrl-C.
#[test]
fn sigterm_exits_cleanly_and_closes_forwards() {
    assert_clean_shutdown(Signal::Term);
}

/// Scripts do `PORT=$(sqltun connect …)`: over the whole life of the process, stdout carries exactly
/// one line, the port, and nothing else.
#[test]
fn stdout_carries_only_the_port_line() {
    let bastion = Bastion::start();
    let (mut tunnel, port) = bastion.echo_tunnel();
    echo_roundtrip(local(port), b"some traffic");
    tunnel.stop(Signal::Term);
    assert_eq!(
        tunnel.stdout(),
        format!("{port}\n"),
        "stdout must be the port line alone"
    );
}

/// `--output addr` prints `127.0.0.1:PORT`, and that address is the working tunnel.
#[test]
fn output_addr_prints_the_loopback_address() {
    let bastion = Bastion::start();
    let mut tunnel = bastion
        .connect_with_key()
        .db(bastion.targets.echo)
        .args(["--output", "addr"])
        .spawn();
    let line = tunnel.wait_ready_line();
    let addr: SocketAddr = line
        .parse()
        .unwrap_or_else(|_| tunnel.fail(&format!("{line:?} is not HOST:PORT")));
    assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST, "ready line {line:?}");
    echo_roundtrip(addr, b"by address");
}

/// Listening on every interface exposes the database to the network: without the explicit opt-in it
/// is a usage error, and no SSH connection is made.
#[test]
fn bind_to_all_interfaces_needs_the_opt_in() {
    let home = TempHome::new();
    let bastion = Tripwire::new();
    let (code, stderr) = home
        .connect()
        .args([
            "--ssh",
            &bastion.destination(),
            "--db",
            "127.0.0.1:7007",
            "--bind",
            "0.0.0.0",
        ])
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_eq!(code, 2, "exit code; stderr:\n{stderr}");
    assert!(
        stderr.contains("--expose-to-network"),
        "the error does not name the opt-in flag:\n{stderr}"
    );
    bastion.assert_untouched();
}

/// Malformed --db values are usage errors (exit 2) caught before any network traffic.
#[test]
fn bad_db_is_a_usage_error_without_network() {
    let home = TempHome::new();
    let bastion = Tripwire::new();
    for bad in [
        "db.internal",
        "db.internal:99999",
        "db.internal:0",
        "[fd00::1:5432",
        "fd00::1:5432",
        ":5432",
    ] {
        let tunnel = home
            .connect()
            .args(["--ssh", &bastion.destination()])
            .arg(format!("--db={bad}"))
            .spawn();
        let (code, stderr) = tunnel.run_to_exit(EXIT_TIMEOUT);
        assert_eq!(code, 2, "--db={bad}: exit code; stderr:\n{stderr}");
        assert!(
            stderr.contains(bad),
            "--db={bad}: the error does not quote the value:\n{stderr}"
        );
    }
    bastion.assert_untouched();
}

/// Malformed --ssh values are usage errors (exit 2): nothing to dial, and nothing passed to a shell.
#[test]
fn bad_ssh_is_a_usage_error_without_network() {
    let home = TempHome::new();
    for bad in [
        "",
        "@127.0.0.1",
        "sqltun-test@127.0.0.1:99999",
        "sqltun-test@",
        "-oProxyCommand=false",
        "ho st",
    ] {
        let mut tunnel = home
            .connect()
            .arg(format!("--ssh={bad}"))
            .args(["--db", "127.0.0.1:7007"])
            .spawn();
        let code = tunnel.wait_exit(EXIT_TIMEOUT);
        let stderr = tunnel.stderr();
        assert_eq!(code, 2, "--ssh={bad:?}: exit code; stderr:\n{stderr}");
        assert!(
            tunnel.stdout().is_empty(),
            "--ssh={bad:?}: stdout must stay empty: {:?}",
            tunnel.stdout()
        );
        assert!(!stderr.trim().is_empty(), "--ssh={bad:?}: no error message");
    }
}

/// A fixed local port that is taken is a local bind failure (exit 7) naming the port.
#[test]
fn local_port_in_use_is_a_bind_error() {
    let bastion = Bastion::start();
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let port = taken.local_addr().expect("local address").port();
    let (code, stderr) = bastion
        .connect_with_key()
        .db(bastion.targets.echo)
        .args(["--local-port", &port.to_string()])
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 7, &[&port.to_string()]);
}

/// A fixed local port whose `[::1]` side another process holds is refused too (exit 7, naming `[::1]`):
/// serving on 127.0.0.1 alone would hand the clients that try IPv6 first to that process.
#[test]
fn local_port_taken_on_ipv6_loopback_is_a_bind_error() {
    let bastion = Bastion::start();
    let taken = TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)).expect("bind [::1]:0");
    let port = taken.local_addr().expect("local address").port();
    let (code, stderr) = bastion
        .connect_with_key()
        .db(bastion.targets.echo)
        .args(["--local-port", &port.to_string()])
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(code, &stderr, 7, &[&format!("[::1]:{port}"), "IPv6"]);
}

/// The lab's premise, checked: the target cannot be reached from the root namespace directly (the
/// bastion does not route), only through the tunnel.
#[test]
fn target_is_reachable_only_through_the_bastion() {
    let bastion = Bastion::start();
    let direct = reachable_directly(bastion.targets.echo, Duration::from_secs(3));
    assert!(
        direct.is_err(),
        "{} answered a direct connection from the root namespace",
        bastion.targets.echo
    );
    let (_tunnel, port) = bastion.echo_tunnel();
    echo_roundtrip(local(port), b"only via the bastion");
}

/// Why: sshd's `Banner` text reaches the client before authentication, from any server (one accepted
/// with accept-new included), and sqltun shows it on stderr. A banner holding an OSC title set, a screen
/// clear, a CSI colour, a C1 CSI, a lone CR and a bidi override must reach the terminal as visible
/// escapes, its lines kept, with no ESC, BEL, CR or C1 control left, while the tunnel still works.
#[test]
fn hostile_login_banner_is_escaped() {
    let bastion = Bastion::with(|lab, _| {
        let banner = lab.fresh_path("banner", ".txt");
        crate::support::write_file(
            &banner,
            "Authorized use only\n\x1b]0;pwned\x07\x1b[2J\x1b[31mred\u{9b}1m\rover\u{202e}drawn\nlast line\n",
            0o644,
        );
        SshdOptions {
            extra_config: vec![format!("Banner {}", banner.display())],
            ..SshdOptions::default()
        }
    });
    let (tunnel, _) = bastion
        .connect_with_key()
        .db(bastion.targets.echo)
        .spawn_and_echo(b"after a hostile banner");
    if !tunnel.stderr_mentions(&["last line"], REPORT_TIMEOUT) {
        tunnel.fail("the login banner was not shown on stderr");
    }
    let stderr = tunnel.stderr();
    if stderr.contains(['\x1b', '\x07', '\r', '\u{9b}', '\u{202e}']) {
        tunnel.fail(&format!("a control character of the banner reached stderr: {stderr:?}"));
    }
    for shown in [
        "Authorized use only",
        r"\x1b]0;pwned\x07\x1b[2J\x1b[31mred\u{9b}1m\rover\u{202e}drawn",
    ] {
        if !stderr.lines().any(|line| line.contains(shown)) {
            tunnel.fail(&format!("stderr has no line with {shown:?}"));
        }
    }
}
