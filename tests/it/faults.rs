//! Resilience: what happens to a running tunnel when something under it fails — the bastion's sshd is
//! killed and restarted (also with a new host key), the client's link goes down, the database restarts,
//! the network is slow and lossy, one local client stops reading, thousands of connections come and go,
//! gigabytes flow through rekeys — and that no secret reaches the output at any verbosity.
//!
//! Faults are real: sshd and its per-connection children are killed by pid (found through the bastion's
//! namespace), links are set down with `ip link`, PostgreSQL gets a fast shutdown, loss comes from
//! iptables' `statistic` match inside the lab's namespaces, and delay from a user-space relay (this
//! kernel has no `sch_netem`). Holding a link down for N seconds is the fault itself; everything else
//! waits by polling with a bound. Timed assertions are only the contract's own bounds, with slack.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    Bastion, EXIT_TIMEOUT, KeyKind, Signal, Sqltun, SqltunCommand, Sshd, TEST_PASSWORD, TEST_USER, accepts_connections,
    connect, download_from_source, download_hashed, echo_concurrently, echo_on, echo_roundtrip, error_line, local,
    pattern_sha256, poll_until, proc_stats, psql, psql_output, tunnel_stats, upload_to_sink, wait_until,
};

/// Keepalives every second, two unanswered ones end the session: keeps the keepalive tests short.
const FAST_KEEPALIVE: [&str; 4] = ["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2"];

/// Bound on sqltun noticing that its session was cut (the peer's connection reset it; with
/// `FAST_KEEPALIVE` at worst ~3 s of unanswered keepalives), with slack for a loaded machine.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(15);

/// Bound on a restarted bastion serving the old port again: the re-dial backoff after a short outage
/// is at most a few seconds (0.5 s doubling, ±25 %), plus a handshake; generous slack on top.
const BACK_TIMEOUT: Duration = Duration::from_secs(15);

/// Bound on a line already on its way reaching stderr as the test collects it.
const STDERR_TIMEOUT: Duration = Duration::from_secs(5);

/// The `--output json` lines on stdout so far, parsed.
fn json_events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout line {line:?} is not JSON: {e}")))
        .collect()
}

fn event_name(event: &Value) -> &str {
    event["event"].as_str().unwrap_or("")
}

/// Waits up to `timeout` for stderr to contain `needle`; fails the test with everything if it does not.
fn expect_stderr(tunnel: &Sqltun, needle: &str, timeout: Duration, why: &str) {
    if !tunnel.stderr_mentions(&[needle], timeout) {
        tunnel.fail(&format!("no {needle:?} on stderr within {timeout:?} ({why})"));
    }
}

/// One echo round trip on a new connection, every step bounded by `limit`.
fn echo_once(port: u16, payload: &[u8], limit: Duration) -> Result<(), String> {
    let limit = limit.max(Duration::from_millis(10));
    let mut stream =
        TcpStream::connect_timeout(&local(port), limit).map_err(|e| format!("connect to 127.0.0.1:{port}: {e}"))?;
    stream.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(limit)).map_err(|e| e.to_string())?;
    stream.write_all(payload).map_err(|e| format!("write: {e}"))?;
    let mut echoed = vec![0u8; payload.len()];
    stream.read_exact(&mut echoed).map_err(|e| format!("read: {e}"))?;
    if echoed == payload {
        Ok(())
    } else {
        Err("the echo returned different bytes".into())
    }
}

/// Retries an echo round trip on new connections until one succeeds (returns how long that took) or
/// `limit` passes (returns the last error). A connection the tunnel accepts while its chain is down
/// waits for the new chain, so usually the first attempt is the one that succeeds.
fn echo_within(port: u16, limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let mut last_error = String::from("no attempt");
    let echoed = poll_until(limit, || {
        let left = limit.saturating_sub(start.elapsed());
        match echo_once(port, b"still there?", left) {
            Ok(()) => Some(()),
            Err(e) => {
                last_error = e;
                None
            }
        }
    });
    echoed.map(|()| start.elapsed()).ok_or(last_error)
}

/// Reads from `stream` until end of file or an error (a reset), at most `limit`; returns the bytes read,
/// or `None` if the connection was still open after `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<u64> {
    let deadline = Instant::now() + limit;
    let mut total = 0u64;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).expect("set read timeout");
        match stream.read(&mut buffer) {
            Ok(0) => return Some(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
            Err(_) => return Some(total),
        }
    }
}

/// The local port of the first `ready` event of `--output json`.
fn json_ready_port(line: &str) -> u16 {
    let ready: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("ready line {line:?} is not JSON: {e}"));
    assert_eq!(ready["event"], "ready", "the first line is not the ready event: {line}");
    ready["local_port"]
        .as_u64()
        .and_then(|port| u16::try_from(port).ok())
        .unwrap_or_else(|| panic!("no local_port in {line}"))
}

/// `command` with `FAST_KEEPALIVE` and `args` to the echo target, after one echo round trip; returns the
/// tunnel and its local port.
fn fast_keepalive_echo_tunnel(command: SqltunCommand, bastion: &Bastion, args: &[&str]) -> (Sqltun, u16) {
    command
        .args(FAST_KEEPALIVE)
        .args(args)
        .db(bastion.targets.echo)
        .spawn_and_echo(b"before")
}

/// A tunnel to the echo target with `StrictHostKeyChecking=accept-new` and an empty `known_hosts`, which
/// the first connection fills in; checks it recorded sshd's key and returns the tunnel and the key blob.
fn accept_new_tunnel(bastion: &Bastion, known_hosts: &Path) -> (Sqltun, String) {
    let (tunnel, _) = fast_keepalive_echo_tunnel(
        bastion
            .connect_trusting(known_hosts)
            .args(["-o", "StrictHostKeyChecking=accept-new"]),
        bastion,
        &[],
    );
    let old_blob = bastion.sshd.host_key(KeyKind::Ed25519).blob();
    let recorded = std::fs::read_to_string(known_hosts).expect("read known_hosts");
    assert!(
        recorded.contains(&old_blob),
        "accept-new did not record the key:\n{recorded}"
    );
    (tunnel, old_blob)
}

/// Kills the bastion under `tunnel`, starts it again with a new host key, and asserts sqltun exits 4;
/// returns the new sshd and sqltun's stderr.
fn rekey_bastion_expecting_exit_4(bastion: &Bastion, tunnel: &mut Sqltun) -> (Sshd, String) {
    bastion.lab.kill_bastion(0);
    let rekeyed = bastion.lab.restart_sshd_with_new_host_key(&bastion.sshd);
    let code = tunnel.wait_exit(EXIT_TIMEOUT);
    let stderr = tunnel.stderr();
    assert_eq!(
        code, 4,
        "exit code when the bastion came back with another key; stderr:\n{stderr}"
    );
    (rekeyed, stderr)
}

/// Why: a bastion reboot or an sshd restart is the most common way a long-lived tunnel dies, and the
/// point of reconnecting is that the port a script captured keeps working. The sshd listener and its
/// per-connection children are killed by pid (so the session really ends), then sshd starts again with
/// the same host key. Checks: the in-flight connection is closed; a connection accepted during the
/// outage waits for the new chain and succeeds; SIGUSR1 reports `chain=down` during the outage; a new
/// `psql -c 'select 1'`-style query on the same port works within `BACK_TIMEOUT` (15 s) of the restart;
/// stderr says lost / reconnecting / reconnected; and the `--output json` events come in that order.
#[test]
fn bastion_restart_reconnects_behind_the_same_port() {
    let bastion = Bastion::start();
    let postgres = bastion.lab.start_postgres();
    let home = bastion.lab.home();
    let mut tunnel = bastion
        .connect_with_key()
        .args(FAST_KEEPALIVE)
        .db(postgres.addr)
        .args(["--output", "json"])
        .spawn();
    let port = json_ready_port(&tunnel.wait_ready_line());
    assert_eq!(psql(port, "select 1", &home), "1\n");

    // A connection in flight when the bastion dies: the channel it used is gone with the session.
    let mut in_flight = connect(local(port));
    wait_until(
        "sshd to hold the in-flight connection to postgres",
        NOTICE_TIMEOUT,
        || (bastion.lab.forwarded_connections() >= 1).then_some(()),
    );

    let killed = bastion.lab.kill_bastion(0);
    assert!(
        killed.len() >= 2,
        "expected sshd and its session child, killed {killed:?}"
    );
    expect_stderr(
        &tunnel,
        "the SSH session ended; the port stays open, reconnecting",
        NOTICE_TIMEOUT,
        "the bastion's sshd was killed",
    );
    if read_until_closed(&mut in_flight, NOTICE_TIMEOUT).is_none() {
        tunnel.fail(&format!(
            "a connection in flight when the session ended was still open after {NOTICE_TIMEOUT:?}"
        ));
    }
    // At least one re-dial failed against the dead bastion before it comes back.
    expect_stderr(&tunnel, "attempt 2 (last error", NOTICE_TIMEOUT, "the bastion is down");

    // A client arriving during the outage is accepted and waits for the new chain.
    let during = thread::spawn({
        let home = home.clone();
        move || psql_output(port, "select 2", &home, Duration::from_secs(60))
    });
    let stats = wait_until("SIGUSR1 stats to show the waiting connection", NOTICE_TIMEOUT, || {
        let stats = tunnel_stats(&tunnel);
        (stats.open_connections >= 1).then_some(stats)
    });
    assert!(
        !stats.chain_up,
        "chain=up reported while the bastion is down: {stats:?}"
    );

    bastion.lab.restart_sshd(&bastion.sshd);
    let restarted = Instant::now();
    expect_stderr(&tunnel, "reconnected after", BACK_TIMEOUT, "sshd is back");
    assert_eq!(psql(port, "select 3", &home), "3\n");
    let back_after = restarted.elapsed();
    if back_after > BACK_TIMEOUT {
        tunnel.fail(&format!(
            "the port served psql only {back_after:?} after sshd restarted (bound {BACK_TIMEOUT:?})"
        ));
    }
    let waited = during.join().expect("psql thread");
    if !waited.status.success() || String::from_utf8_lossy(&waited.stdout) != "2\n" {
        tunnel.fail(&format!(
            "psql started during the outage failed ({}): {}{}",
            waited.status,
            String::from_utf8_lossy(&waited.stdout),
            String::from_utf8_lossy(&waited.stderr)
        ));
    }
    assert!(tunnel.is_running(), "sqltun exited after reconnecting");
    assert!(tunnel_stats(&tunnel).chain_up, "chain=down after reconnecting");

    let stderr = tunnel.stderr();
    for needle in [
        "the port stays open, reconnecting",
        "reconnecting in",
        "reconnected after",
    ] {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
    }
    let events = json_events(&tunnel.stdout());
    let names: Vec<&str> = events.iter().map(event_name).collect();
    let position = |name: &str| names.iter().position(|n| *n == name);
    let (Some(lost), Some(reconnecting), Some(reconnected)) =
        (position("lost"), position("reconnecting"), position("reconnected"))
    else {
        tunnel.fail(&format!("missing lost/reconnecting/reconnected events: {names:?}"))
    };
    assert_eq!(names[0], "ready", "events: {names:?}");
    assert!(
        lost < reconnecting && reconnecting < reconnected,
        "events out of order: {names:?}"
    );
    assert!(
        names[lost + 1..reconnected].iter().all(|n| *n == "reconnecting"),
        "only reconnecting events may come between lost and reconnected: {names:?}"
    );
    assert!(
        names[reconnected + 1..].is_empty(),
        "events after reconnected: {names:?}"
    );
}

/// Why: Wi-Fi hand-overs and VPN blips cut the path for a few seconds without resetting anything; a tunnel
/// must not die of that. The client's link to the bastion goes down for 5 s (packets vanish, no RST) with
/// the default keepalive (15 s × 3), then comes back. Either the session survived or sqltun reconnected;
/// both are fine. Bound: the same port serves an echo within 15 s after the link is up.
#[test]
fn short_link_outage_is_survived() {
    let bastion = Bastion::start();
    let (mut tunnel, port) = bastion.echo_tunnel();
    echo_roundtrip(local(port), b"before the outage");

    bastion.lab.set_bastion_link(0, false);
    // The fault itself: five seconds without a path.
    thread::sleep(Duration::from_secs(5));
    bastion.lab.set_bastion_link(0, true);

    let limit = Duration::from_secs(15);
    if let Err(e) = echo_within(port, limit) {
        tunnel.fail(&format!(
            "no echo through the port within {limit:?} after the link came back: {e}"
        ));
    }
    assert!(tunnel.is_running(), "sqltun exited after a 5 s outage");
}

/// Why: a path that dies silently (a NAT that forgot the flow, a dead link) is only noticed through
/// keepalives; without them a tunnel would hang on a dead session for the kernel's TCP timeout (15+
/// minutes). With `ServerAliveInterval=1` and `ServerAliveCountMax=2` the link goes down for at least
/// 6 s. Bounds: stderr says the session ended while the link is still down (keepalive bound ~3 s; we
/// allow `NOTICE_TIMEOUT`, holding the link down until then), and after the link is up the same port
/// serves an echo within 20 s.
#[test]
fn keepalive_ends_a_dead_session_and_the_port_comes_back() {
    let bastion = Bastion::start();
    let (mut tunnel, port) = bastion
        .connect_with_key()
        .args(FAST_KEEPALIVE)
        .db(bastion.targets.echo)
        .spawn_and_echo(b"before the outage");

    bastion.lab.set_bastion_link(0, false);
    let down = Instant::now();
    let noticed = tunnel.stderr_mentions(&["the SSH session ended"], NOTICE_TIMEOUT);
    let noticed_after = down.elapsed();
    // The fault: at least 6 s without a path.
    thread::sleep(Duration::from_secs(6).saturating_sub(down.elapsed()));
    bastion.lab.set_bastion_link(0, true);
    if !noticed {
        tunnel.fail(&format!(
            "keepalives (1 s × 2) did not end the dead session within {NOTICE_TIMEOUT:?} of the link going down"
        ));
    }
    let limit = Duration::from_secs(20);
    if let Err(e) = echo_within(port, limit) {
        tunnel.fail(&format!(
            "no echo through the port within {limit:?} after the link came back (the session ended {noticed_after:?} after it went down): {e}"
        ));
    }
    expect_stderr(&tunnel, "reconnected after", STDERR_TIMEOUT, "the port works again");
    assert!(tunnel.is_running(), "sqltun exited");
}

/// Why: databases restart (upgrades, failovers) far more often than bastions; the tunnel is not the
/// database's session and must not care. A query running when PostgreSQL gets a fast shutdown fails (as
/// it would without a tunnel), but a new psql through the same port works once PostgreSQL is back, and
/// the SSH session never breaks. Bounds: psql's own (PGCONNECT_TIMEOUT 20 s); PostgreSQL restart 60 s.
#[test]
fn database_restart_fails_the_open_session_but_not_the_tunnel() {
    let bastion = Bastion::start();
    let postgres = bastion.lab.start_postgres();
    let home = bastion.lab.home();
    let mut tunnel = bastion
        .connect_with_key()
        .args(FAST_KEEPALIVE)
        .db(postgres.addr)
        .spawn();
    let port = tunnel.wait_ready();
    assert_eq!(psql(port, "select 1", &home), "1\n");

    let open = thread::spawn({
        let home = home.clone();
        move || psql_output(port, "select pg_sleep(300)", &home, Duration::from_secs(90))
    });
    wait_until("the long query to run in postgres", Duration::from_secs(30), || {
        let running = psql(
            port,
            "select count(*) from pg_stat_activity where query = 'select pg_sleep(300)' and state = 'active'",
            &home,
        );
        (running.trim() == "1").then_some(())
    });

    bastion.lab.restart_postgres(&postgres);
    let ended = open.join().expect("psql thread");
    assert!(
        !ended.status.success(),
        "the query survived a PostgreSQL restart? stdout: {}",
        String::from_utf8_lossy(&ended.stdout)
    );
    assert_eq!(psql(port, "select 2", &home), "2\n");
    assert!(tunnel.is_running(), "sqltun exited when the database restarted");
    let stats = tunnel_stats(&tunnel);
    assert!(stats.chain_up, "chain=down after a database restart: {stats:?}");
    let stderr = tunnel.stderr();
    assert!(
        !stderr.contains("session ended") && !stderr.contains("reconnect"),
        "the SSH session broke when only the database restarted:\n{stderr}"
    );
}

/// Why: scripts that prefer failing fast to waiting use `--no-reconnect`, and they rely on its exit
/// code. When the bastion's sshd dies, sqltun must exit 8 (not 0, not hang), name what ended, and release
/// the port. Bound: exit within `EXIT_TIMEOUT` (30 s; the reset is seen at once).
#[test]
fn no_reconnect_exits_8_when_the_bastion_dies() {
    let bastion = Bastion::start();
    let (mut tunnel, port) = fast_keepalive_echo_tunnel(bastion.connect_with_key(), &bastion, &["--no-reconnect"]);
    bastion.lab.kill_bastion(0);
    let code = tunnel.wait_exit(EXIT_TIMEOUT);
    let stderr = tunnel.stderr();
    assert_eq!(
        code, 8,
        "exit code after the session died with --no-reconnect; stderr:\n{stderr}"
    );
    let line = error_line(&stderr);
    assert!(
        line.contains("session ended"),
        "the error line does not say what ended: {line}"
    );
    assert!(!accepts_connections(port), "127.0.0.1:{port} still accepts connections");
}

/// Why: `--reconnect-timeout` is the promise that a tunnel whose bastion stays gone does not retry
/// forever — and that it does retry for that long, since the bastion may come back within it. With
/// `--reconnect-timeout 3s` and the bastion kept down, sqltun must exit 9 with "gave up reconnecting".
/// Bounds: not before 3 s after the kill (the chain was lost after the kill, so it must have been down
/// for the whole timeout), and within 3 s + 15 s slack (a refused connection fails at once, so no
/// ConnectTimeout can stretch it).
#[test]
fn reconnect_timeout_gives_up_with_exit_9() {
    let bastion = Bastion::start();
    let (mut tunnel, port) =
        fast_keepalive_echo_tunnel(bastion.connect_with_key(), &bastion, &["--reconnect-timeout", "3s"]);
    bastion.lab.kill_bastion(0);
    let killed = Instant::now();
    let code = tunnel.wait_exit(EXIT_TIMEOUT);
    let took = killed.elapsed();
    let stderr = tunnel.stderr();
    assert_eq!(code, 9, "exit code with the bastion kept down; stderr:\n{stderr}");
    assert!(
        error_line(&stderr).contains("gave up reconnecting"),
        "no \"gave up reconnecting\" error line:\n{stderr}"
    );
    let bound = Duration::from_secs(3 + 15);
    assert!(
        took <= bound,
        "gave up {took:?} after the kill (bound {bound:?}):\n{stderr}"
    );
    assert!(
        took >= Duration::from_secs(3),
        "gave up {took:?} after the kill, before the 3 s --reconnect-timeout had passed:\n{stderr}"
    );
    assert!(!accepts_connections(port), "127.0.0.1:{port} still accepts connections");
}

/// Why: a reconnect must never accept a host key the user did not: a bastion that comes back with a
/// different key (rebuilt, or someone in the middle) must stop the tunnel, even though the first
/// connection used `StrictHostKeyChecking=accept-new` (which would record an unknown key, but never
/// replace a known one). Bound: exit 4 within `EXIT_TIMEOUT` of the new sshd listening; stderr says the
/// key changed; the known_hosts file still holds only the original key.
#[test]
fn changed_host_key_after_restart_exits_4() {
    let bastion = Bastion::start();
    let known_hosts = bastion.lab.known_hosts_file(&[]);
    let (mut tunnel, old_blob) = accept_new_tunnel(&bastion, &known_hosts);

    let (rekeyed, stderr) = rekey_bastion_expecting_exit_4(&bastion, &mut tunnel);
    assert!(
        error_line(&stderr).to_lowercase().contains("changed"),
        "the error line does not say the key changed:\n{stderr}"
    );
    let after = std::fs::read_to_string(&known_hosts).expect("read known_hosts");
    let new_blob = rekeyed.host_key(KeyKind::Ed25519).blob();
    assert!(
        after.contains(&old_blob) && !after.contains(&new_blob),
        "known_hosts changed on reconnect:\n{after}"
    );
}

/// Why: a key that sqltun refuses as "changed while the tunnel was up" must not end up trusted on disk,
/// or the next run would accept the swapped bastion without a word. With
/// `StrictHostKeyChecking=accept-new`, the first key is recorded; the line is then removed (as
/// `ssh-keygen -R` or a config-management run would), and the bastion comes back with a new key: the
/// pin refuses it (exit 4), and the known_hosts file must not have gained it. Bound: exit within
/// `EXIT_TIMEOUT` of the new sshd listening.
#[test]
fn refused_host_key_is_not_recorded() {
    let bastion = Bastion::start();
    let known_hosts = bastion.lab.known_hosts_file(&[]);
    let (mut tunnel, _) = accept_new_tunnel(&bastion, &known_hosts);
    std::fs::write(&known_hosts, "").expect("empty known_hosts");

    let (rekeyed, stderr) = rekey_bastion_expecting_exit_4(&bastion, &mut tunnel);
    let after = std::fs::read_to_string(&known_hosts).expect("read known_hosts");
    let new_blob = rekeyed.host_key(KeyKind::Ed25519).blob();
    assert!(
        !after.contains(&new_blob),
        "the key sqltun refused as changed was recorded in known_hosts:\n{after}\nstderr:\n{stderr}"
    );
}

/// Why: the same promise where no known_hosts file can catch the change: with the CI anti-pattern
/// `--known-hosts /dev/null -o StrictHostKeyChecking=no` nothing is ever recorded, so on reconnect the
/// new key is merely "unknown" and `no` would accept it; only the key pinned in memory at the first
/// connection stands between the tunnel and a swapped bastion. Bound: exit 4 within `EXIT_TIMEOUT` of the
/// new sshd listening, with "changed while the tunnel was up" on stderr.
#[test]
fn changed_host_key_is_refused_even_when_nothing_was_recorded() {
    let bastion = Bastion::start();
    let (mut tunnel, _) = fast_keepalive_echo_tunnel(
        bastion
            .connect_trusting(Path::new("/dev/null"))
            .args(["-o", "StrictHostKeyChecking=no"]),
        &bastion,
        &[],
    );

    let (_, stderr) = rekey_bastion_expecting_exit_4(&bastion, &mut tunnel);
    assert!(
        error_line(&stderr).contains("changed while the tunnel was up"),
        "the error line does not say the key changed while the tunnel was up:\n{stderr}"
    );
}

/// Why: real paths to bastions are slow and lossy; bytes must still arrive intact. Emulation (this
/// kernel has no `sch_netem`, so no `tc netem`): (1) delay — sqltun dials a user-space relay
/// (`support/relay.py`) on 127.0.0.1 that holds every chunk in each direction for a random 20–50 ms,
/// order kept, before passing it to B1's sshd; (2) loss — iptables
/// `-m statistic --mode random --probability 0.02 -j DROP` on every packet entering B1 (from the relay
/// and from D) and entering D (from B1): 2 % loss in every hop's receive direction (of the packets as
/// netfilter sees them: with GSO/GRO one of them can be a burst of segments, so losses come in bursts),
/// plus 2 % of B1's outgoing packets dropped at B1's egress (which B1's TCP sees as a failed send and
/// retries). Checks: an echo takes at least 2 × 20 ms, two crossings of the relay (the delay really
/// is in the path); 20 MiB up and 20 MiB down, concurrently, keep their sha256; both namespaces really dropped
/// packets; the session never broke. Bound: each read or write within `IO_TIMEOUT` (60 s).
#[test]
fn delay_and_loss_keep_transfers_intact() {
    let bastion = Bastion::start();
    let lab = &bastion.lab;
    let (relay, known_hosts) = relay_to_bastion(&bastion, 20, 50);
    let bastion_ns = lab.bastion_namespace(0);
    let target_ns = lab.target_namespace();
    lab.drop_incoming(&bastion_ns, 0.02);
    lab.drop_outgoing(&bastion_ns, 0.02);
    lab.drop_incoming(&target_ns, 0.02);

    let mut tunnel = lab
        .connect()
        .arg("--ssh")
        .arg(format!("{TEST_USER}@127.0.0.1:{}", relay.port()))
        .known_hosts(&known_hosts)
        .identity(bastion.key())
        .db(bastion.targets.sink)
        .db(bastion.targets.source)
        .db(bastion.targets.echo)
        .spawn();
    let ports = tunnel.wait_ready_ports(3);
    let (sink, source, echo) = (local(ports[0]), local(ports[1]), local(ports[2]));

    // The request crosses the relay on its way to sshd, the answer on its way back: at least 2 × 20 ms.
    let timed = Instant::now();
    echo_roundtrip(echo, b"how far away is the bastion?");
    let round_trip = timed.elapsed();
    assert!(
        round_trip >= Duration::from_millis(40),
        "an echo took only {round_trip:?}: the 20–50 ms relay is not in the path"
    );

    const LEN: u64 = 20 * 1024 * 1024;
    let expected = pattern_sha256(LEN);
    thread::scope(|scope| {
        let up = scope.spawn(|| upload_to_sink(sink, LEN));
        let down = scope.spawn(|| download_from_source(source, LEN));
        echo_roundtrip(echo, &[0x5a; 4096]);
        let (sink_digest, sent_digest) = up.join().expect("upload thread");
        assert_eq!(sink_digest, sent_digest, "the upload arrived damaged");
        let (received, digest) = down.join().expect("download thread");
        assert_eq!(received, LEN, "the download was cut short");
        assert_eq!(digest, expected, "the download arrived damaged");
    });
    let (dropped_b, dropped_d) = (lab.dropped_packets(&bastion_ns), lab.dropped_packets(&target_ns));
    assert!(
        dropped_b > 0 && dropped_d > 0,
        "the loss emulation dropped nothing (B1: {dropped_b}, D: {dropped_d})"
    );
    assert!(tunnel.is_running(), "sqltun exited");
    let stderr = tunnel.stderr();
    assert!(
        !stderr.contains("session ended"),
        "the session broke under 2 % loss and 20–50 ms delay:\n{stderr}"
    );
}

/// Why: russh delivers every channel through one loop, so one local client that stops reading could
/// stall every other connection of the session. The contract: each connection buffers at most 16 MiB
/// for its client, and a client that reads nothing for 2 s with a full buffer is disconnected. One
/// client asks for 512 MiB and stops reading after 4 MiB; meanwhile 5 other connections each do echo
/// round trips and a 20 MiB download. Bounds: all five finish within 60 s; the stalled client is
/// disconnected (stderr line; its socket reaches end of file well before 512 MiB); the tunnel stays up.
#[test]
fn stalled_reader_does_not_stall_the_others() {
    let bastion = Bastion::start();
    let (mut tunnel, ports) = bastion.tunnels_to(&[bastion.targets.source, bastion.targets.echo]);
    let (source, echo) = (local(ports[0]), local(ports[1]));

    const HUGE: u64 = 512 * 1024 * 1024;
    const LEN: u64 = 20 * 1024 * 1024;
    let expected = pattern_sha256(LEN);
    let mut stalled = connect(source);
    stalled
        .write_all(format!("{HUGE}\n").as_bytes())
        .expect("request 512 MiB");
    let mut first = vec![0u8; 4 * 1024 * 1024];
    stalled.read_exact(&mut first).expect("read the first 4 MiB");
    // From here on the stalled client reads nothing.

    let limit = Duration::from_secs(60);
    let started = Instant::now();
    thread::scope(|scope| {
        let workers: Vec<_> = (0..5u8)
            .map(|i| {
                let expected = &expected;
                scope.spawn(move || {
                    let payload: Vec<u8> = (0..16 * 1024).map(|j: u32| (j as u8) ^ i).collect();
                    echo_roundtrip(echo, &payload);
                    let (received, digest) = download_from_source(source, LEN);
                    assert_eq!(received, LEN, "worker {i}: download cut short");
                    assert_eq!(&digest, expected, "worker {i}: download damaged");
                    echo_roundtrip(echo, &payload);
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a worker failed");
        }
    });
    let took = started.elapsed();
    if took > limit {
        tunnel.fail(&format!(
            "5 connections next to a stalled reader took {took:?} (bound {limit:?})"
        ));
    }
    expect_stderr(
        &tunnel,
        "disconnected it so the other connections keep flowing",
        Duration::from_secs(30),
        "the stalled client",
    );
    assert!(
        tunnel.stderr().contains("read nothing for 2s"),
        "the disconnect line does not give the 2 s rule:\n{}",
        tunnel.stderr()
    );
    match read_until_closed(&mut stalled, Duration::from_secs(30)) {
        Some(rest) => assert!(
            4 * 1024 * 1024 + rest < HUGE,
            "the stalled client received the whole 512 MiB: it was not cut off"
        ),
        None => tunnel.fail("the stalled client's connection was still open 30 s after the disconnect line"),
    }
    assert!(tunnel.is_running(), "sqltun exited");
    echo_roundtrip(echo, b"still serving");
    assert!(tunnel_stats(&tunnel).chain_up, "chain=down after the stall");
}

/// Why: a tunnel lives for days and serves many short connections (connection pools, health checks);
/// anything a connection leaks adds up. 10,000 sequential connect + 64-byte echo + close, then 200 at
/// once. Before/after, compared once everything closed: open fds and tokio tasks (SIGUSR1 stats) back to
/// the baseline + 4, threads back to the baseline + 4, resident memory grown by less than 20 MiB; on the
/// bastion no connection to the target remains. Bound: the "back to baseline" polls wait up to 30 s.
#[test]
fn thousands_of_connections_leak_nothing() {
    let bastion = Bastion::start();
    let (mut tunnel, port) = bastion.echo_tunnel();
    let addr = local(port);
    for _ in 0..10 {
        echo_roundtrip(addr, &[7u8; 64]);
    }
    let settle = Duration::from_secs(30);
    wait_until("the warm-up connections to close", settle, || {
        (tunnel_stats(&tunnel).open_connections == 0 && bastion.lab.forwarded_connections() == 0).then_some(())
    });
    let before = proc_stats(tunnel.pid());
    let stats_before = tunnel_stats(&tunnel);

    let payload: Vec<u8> = (0..64u8).collect();
    let mut echoed = [0u8; 64];
    for i in 0..10_000 {
        let mut stream = connect(addr);
        stream
            .write_all(&payload)
            .unwrap_or_else(|e| panic!("connection {i}: write: {e}"));
        stream
            .read_exact(&mut echoed)
            .unwrap_or_else(|e| panic!("connection {i}: read: {e}"));
        assert_eq!(&echoed[..], &payload[..], "connection {i}: wrong echo");
        let _ = stream.shutdown(Shutdown::Both);
    }
    echo_concurrently(addr, 200, 64);

    let stats_after = wait_until("every connection to close in sqltun", settle, || {
        let stats = tunnel_stats(&tunnel);
        (stats.open_connections == 0).then_some(stats)
    });
    if poll_until(settle, || (bastion.lab.forwarded_connections() == 0).then_some(())).is_none() {
        tunnel.fail(&format!(
            "{} connections from the bastion to the target still open {settle:?} after the clients closed",
            bastion.lab.forwarded_connections()
        ));
    }
    assert!(
        stats_after.accepted_total >= stats_before.accepted_total + 10_200,
        "accepted_total went from {} to {}",
        stats_before.accepted_total,
        stats_after.accepted_total
    );
    let slack = 4;
    let settled = poll_until(settle, || {
        let now = proc_stats(tunnel.pid());
        let tasks = tunnel_stats(&tunnel).tasks;
        (now.fds <= before.fds + slack
            && now.threads <= before.threads + slack
            && tasks <= stats_before.tasks + slack as u64)
            .then_some((now, tasks))
    });
    let (after, tasks) = settled.unwrap_or_else(|| {
        let now = proc_stats(tunnel.pid());
        tunnel.fail(&format!(
            "sqltun did not return to its baseline within {settle:?}: before {before:?} tasks={}, now {now:?} tasks={}",
            stats_before.tasks,
            tunnel_stats(&tunnel).tasks
        ))
    });
    let grown_kib = after.rss_kib.saturating_sub(before.rss_kib);
    assert!(
        grown_kib < 20 * 1024,
        "RSS grew by {grown_kib} KiB over 10,200 connections: before {before:?}, after {after:?} (tasks {} -> {tasks})",
        stats_before.tasks
    );
    assert!(tunnel.is_running(), "sqltun exited");
}

/// Why: a re-key in the middle of heavy traffic must not abort a busy session (russh's `Error::Pending`
/// trap: sending while a re-key is in flight must wait, not fail). sqltun itself re-keys only every
/// 64 GiB (OpenSSH's limit for these ciphers), so the bastion is told to re-key every 256 MiB
/// (`RekeyLimit`), as real servers do on their own schedule. 2 uploads and 2 downloads of 1 GiB each
/// run concurrently through one hop, crossing several server-initiated re-keys while every channel is
/// busy. Checks: all four arrive intact (sha256), the bastion's log shows re-keys, and the session never
/// broke (no lost/reconnect lines, chain up). Bound: each read or write within `IO_TIMEOUT` (60 s).
#[test]
fn gigabytes_through_rekeys_keep_the_session() {
    let bastion = Bastion::with(|_, _| crate::support::SshdOptions {
        extra_config: vec!["RekeyLimit 256M".into()],
        ..crate::support::SshdOptions::default()
    });
    let (mut tunnel, ports) = bastion.tunnels_to(&[bastion.targets.sink, bastion.targets.source]);
    let (sink, source) = (local(ports[0]), local(ports[1]));
    const GIB: u64 = 1024 * 1024 * 1024;
    let expected = pattern_sha256(GIB);
    let start = Barrier::new(4);
    thread::scope(|scope| {
        let mut uploads = Vec::new();
        let mut downloads = Vec::new();
        for _ in 0..2 {
            let start = &start;
            uploads.push(scope.spawn(move || {
                start.wait();
                upload_to_sink(sink, GIB)
            }));
            downloads.push(scope.spawn(move || {
                start.wait();
                download_hashed(source, GIB)
            }));
        }
        for upload in uploads {
            let (sink_digest, sent_digest) = upload.join().expect("upload thread");
            assert_eq!(sink_digest, sent_digest, "an upload arrived damaged");
        }
        for download in downloads {
            let (received, digest) = download.join().expect("download thread");
            assert_eq!(received, GIB, "a download was cut short");
            assert_eq!(digest, expected, "a download arrived damaged");
        }
    });
    let log = bastion.sshd.log_text();
    let kexinits = log.matches("SSH2_MSG_KEXINIT received").count();
    assert!(
        kexinits >= 2,
        "no rekey in sshd's log ({kexinits} KEXINIT): the test did not cross one"
    );
    assert!(tunnel.is_running(), "sqltun exited");
    let stderr = tunnel.stderr();
    assert!(
        !stderr.contains("session ended") && !stderr.contains("reconnect"),
        "the session broke during 4 GiB of traffic:\n{stderr}"
    );
    assert!(tunnel_stats(&tunnel).chain_up, "chain=down after the transfers");
}

/// Distinctive secrets for `secrets_are_never_printed`: none of them may appear anywhere on stderr, nor
/// on stdout except where the data contract puts them.
const WRONG_PASSWORD: &str = "WrongPw-q7Zr4-never-print";
const PASSPHRASE: &str = "Passphrase-k3Vx9-never-print";
const DB_PASSWORD: &str = "DbPass-m8Tq2-never-print";
const TOTP_SECRET: &str = "TOTPSECRETQ7ZK3VXMNEVERPRINT";

/// Why: tunnels run in CI where logs are kept and shared; "no secret is ever logged" must hold at the
/// highest verbosity (`-vvv`, SQLTUN_LOG unset — if the test environment sets SQLTUN_LOG, that filter is
/// what gets checked instead), for every secret sqltun sees: the SSH password (right and wrong), a key
/// passphrase, the password inside a `--db` URL, and SQLTUN_TOTP_SECRET (set in every run, used or not).
/// Runs: password auth with traffic, a wrong password, an encrypted key with traffic, `check --json`,
/// `config --json`. Checks: no secret on stderr or stdout; and `--output url` puts the URL's password on
/// stdout (the data contract) but not on stderr. Bounds: `EXIT_TIMEOUT` / `SIGNAL_EXIT_TIMEOUT` per run.
#[test]
fn secrets_are_never_printed() {
    let bastion = Bastion::start();
    let lab = &bastion.lab;
    let encrypted = lab.generate_encrypted_key(KeyKind::Ed25519, PASSPHRASE);
    lab.authorize(&encrypted);
    let echo = bastion.targets.echo;
    let url = format!("postgres://app:{DB_PASSWORD}@{}:{}/appdb", echo.ip(), echo.port());
    let secrets = [TEST_PASSWORD, WRONG_PASSWORD, PASSPHRASE, DB_PASSWORD, TOTP_SECRET];
    let with_secrets = |command: SqltunCommand, password: &str| {
        command
            .arg("-vvv")
            .env("SQLTUN_SSH_PASSWORD", password)
            .env("SQLTUN_SSH_PASSPHRASE", PASSPHRASE)
            .env("SQLTUN_TOTP_SECRET", TOTP_SECRET)
    };
    let check = |what: &str, stdout: &str, stderr: &str, allowed_on_stdout: &[&str]| {
        for secret in secrets {
            assert!(
                !stderr.contains(secret),
                "{what}: the secret {secret:?} is on stderr:\n{stderr}"
            );
            if !allowed_on_stdout.contains(&secret) {
                assert!(
                    !stdout.contains(secret),
                    "{what}: the secret {secret:?} is on stdout:\n{stdout}"
                );
            }
        }
    };
    let tunnel_cmd = || bastion.connect().arg("--db").arg(&url);
    // Runs a tunnel, pushes bytes through it, stops it with SIGTERM; returns (stdout, stderr).
    let serve = |command: SqltunCommand, ready_check: &dyn Fn(&str) -> u16| {
        let mut tunnel = command.spawn();
        let line = tunnel.wait_ready_line();
        let port = ready_check(&line);
        echo_on(&connect(local(port)), b"a little traffic to log about");
        tunnel.stop(Signal::Term);
        (tunnel.stdout(), tunnel.stderr())
    };
    let port_line = |line: &str| -> u16 { line.parse().unwrap_or_else(|_| panic!("not a port line: {line}")) };

    // Password authentication (the right password), with traffic.
    let (stdout, stderr) = serve(with_secrets(tunnel_cmd(), TEST_PASSWORD), &port_line);
    check("password auth", &stdout, &stderr, &[]);

    // A wrong password: the failure message must not quote it.
    let (code, stderr) = with_secrets(tunnel_cmd(), WRONG_PASSWORD)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_eq!(code, 5, "exit code with a wrong password; stderr:\n{stderr}");
    check("wrong password", "", &stderr, &[]);

    // An encrypted key and its passphrase, with traffic.
    let (stdout, stderr) = serve(
        with_secrets(tunnel_cmd().identity(&encrypted), TEST_PASSWORD),
        &port_line,
    );
    check("encrypted key", &stdout, &stderr, &[]);

    // `check --json` with everything set: the report names the target but not its password.
    let mut run = with_secrets(
        bastion
            .sqltun("check")
            .identity(&encrypted)
            .arg("--db")
            .arg(&url)
            .arg("--json"),
        TEST_PASSWORD,
    )
    .spawn();
    run.wait_exit(EXIT_TIMEOUT);
    check("check --json", &run.stdout(), &run.stderr(), &[]);
    assert!(
        run.stdout().trim_start().starts_with('{'),
        "check --json printed no JSON:\n{}",
        run.stdout()
    );

    // `config --json` with everything set.
    let mut run = with_secrets(
        lab.sqltun("config")
            .arg(bastion.sshd.destination())
            .identity(&encrypted)
            .arg("--json"),
        TEST_PASSWORD,
    )
    .spawn();
    let code = run.wait_exit(EXIT_TIMEOUT);
    assert_eq!(code, 0, "config --json failed:\n{}", run.stderr());
    check("config --json", &run.stdout(), &run.stderr(), &[]);

    // `--output url`: stdout carries the URL, password included (the data contract); stderr does not.
    let url_line = |line: &str| -> u16 {
        assert!(line.contains(DB_PASSWORD), "--output url dropped the password: {line}");
        line.rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no port in the url line {line}"))
    };
    let (stdout, stderr) = serve(
        with_secrets(tunnel_cmd().identity(bastion.key()), TEST_PASSWORD).args(["--output", "url"]),
        &url_line,
    );
    check("--output url", &stdout, &stderr, &[DB_PASSWORD]);
}

// ---------------------------------------------------------------------------------------------------------
// Hostile server text
// ---------------------------------------------------------------------------------------------------------

/// One unencrypted SSH binary packet (RFC 4253 §6) carrying `payload`, padded to a multiple of 8.
fn ssh_packet(payload: &[u8]) -> Vec<u8> {
    let mut padding = 8 - (payload.len() + 5) % 8;
    if padding < 4 {
        padding += 8;
    }
    let length = u32::try_from(1 + payload.len() + padding).expect("a small packet");
    let mut packet = length.to_be_bytes().to_vec();
    packet.push(u8::try_from(padding).expect("padding fits a byte"));
    packet.extend_from_slice(payload);
    packet.extend(std::iter::repeat_n(0u8, padding));
    packet
}

/// A KEXINIT whose key-exchange list is `kex` and whose other lists are what any client supports.
fn kexinit(kex: &str) -> Vec<u8> {
    let mut payload = vec![20u8];
    payload.extend_from_slice(&[7u8; 16]);
    let lists = [
        kex,
        "ssh-ed25519",
        "aes128-ctr",
        "aes128-ctr",
        "hmac-sha2-256",
        "hmac-sha2-256",
        "none",
        "none",
        "",
        "",
    ];
    for list in lists {
        payload.extend_from_slice(&u32::try_from(list.len()).expect("short list").to_be_bytes());
        payload.extend_from_slice(list.as_bytes());
    }
    payload.push(0);
    payload.extend_from_slice(&[0u8; 4]);
    ssh_packet(&payload)
}

/// Why: a server's algorithm names arrive before its host key is checked, so anyone on the path can send
/// them, and "no common algorithm" errors quote them. sshd never sends names with control characters, so
/// a fake server on loopback does: its KEXINIT offers only key exchanges named with an OSC title set and
/// a screen clear. sqltun must fail as unreachable (exit 3) with an error that quotes the names escaped,
/// and no ESC or BEL byte may reach stderr.
#[test]
fn hostile_algorithm_names_in_kexinit_are_escaped() {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("sqltun connects");
        stream.set_read_timeout(Some(EXIT_TIMEOUT)).expect("set read timeout");
        stream.write_all(b"SSH-2.0-fake\r\n").expect("send the version");
        stream
            .write_all(&kexinit("\x1b]0;pwned\x07evil-kex,\x1b[2Jwiped,evil\x1b[31mred"))
            .expect("send KEXINIT");
        // Read until sqltun hangs up (or the bound passes), so it sees the whole packet.
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    });
    let home = crate::support::TempHome::new();
    let (code, stderr) = home
        .connect()
        .args([
            "--ssh",
            &format!("{TEST_USER}@127.0.0.1:{port}"),
            "--db",
            "127.0.0.1:5432",
        ])
        .args(["-o", "StrictHostKeyChecking=yes", "--batch"])
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    // Judged before joining: a sqltun that never dialled fails here instead of leaving the join waiting
    // on an accept that never comes.
    let line = crate::support::assert_error(code, &stderr, 3, &["no common", r"\x1b]0;pwned\x07evil-kex"]);
    server.join().expect("the fake server thread");
    assert!(line.contains(r"\x1b[2Jwiped"), "{line}");
    assert!(
        !stderr.contains(['\x1b', '\x07']),
        "an ESC or BEL byte reached stderr: {stderr:?}"
    );
}

/// The channel window is sized for the path's round trip, measured in the SSH identification exchange
/// before the handshake. Why: one stream cannot go faster than window / round trip, and a window far
/// above what the path needs makes the bastion's sshd read ahead and hold the data. Checks, with `-vv`:
/// through the delaying relay (15 ms each way, so at least 30 ms per round trip whatever the load) the
/// hop reports a round trip of at least 30 ms and a 16 MiB window; straight to the bastion it reports a
/// measured round trip (OpenSSH answers our line, so it is timed) and the window the sizing rule gives
/// for it (how soon sshd answers depends on the machine's load, so the round trip itself is not
/// asserted); an echo goes through each tunnel, so the bytes read while measuring reached the handshake
/// intact.
#[test]
fn the_channel_window_is_sized_for_the_measured_round_trip() {
    let bastion = Bastion::start();
    let lab = &bastion.lab;
    let (relay, known_hosts) = relay_to_bastion(&bastion, 15, 15);
    let mut far = lab
        .connect()
        .arg("-vv")
        .arg("--ssh")
        .arg(format!("{TEST_USER}@127.0.0.1:{}", relay.port()))
        .known_hosts(&known_hosts)
        .identity(bastion.key())
        .db(bastion.targets.echo)
        .spawn();
    let port = far.wait_ready();
    echo_roundtrip(local(port), b"across the relay");
    let (round_trip_ms, window_mib) = measured_path(&far);
    assert!(
        round_trip_ms >= 30.0 && window_mib == 16,
        "through a 30 ms relay: round trip {round_trip_ms} ms, window {window_mib} MiB\n{}",
        far.stderr()
    );

    let (near, port) = bastion.echo_tunnel_with(&["-vv"]);
    echo_roundtrip(local(port), b"straight to the bastion");
    let (round_trip_ms, window_mib) = measured_path(&near);
    // The window follows the printed round trip (rounded to 0.1 ms, so either side of it may apply).
    let (low, high) = (window_for(round_trip_ms - 0.05), window_for(round_trip_ms + 0.05));
    assert!(
        (low..=high).contains(&window_mib),
        "straight to the bastion: round trip {round_trip_ms} ms, window {window_mib} MiB, not {low}-{high} MiB\n{}",
        near.stderr()
    );
}

/// The window (MiB) sqltun gives a path with this round trip: two round trips at 400 MiB/s, in whole
/// MiB, within 2-16 MiB.
fn window_for(round_trip_ms: f64) -> u32 {
    let mib = 2.0 * 400.0 * round_trip_ms.max(0.0) / 1000.0;
    (mib.ceil() as u32).clamp(2, 16)
}

/// The delaying relay in front of the bastion's sshd (each direction held `min_ms..=max_ms`), and a
/// known_hosts file trusting the bastion's host key under the relay's address.
fn relay_to_bastion(bastion: &Bastion, min_ms: u32, max_ms: u32) -> (SocketAddr, PathBuf) {
    let lab = &bastion.lab;
    let relay = lab.start_delay_relay(SocketAddrV4::new(bastion.sshd.addr, bastion.sshd.port), min_ms, max_ms);
    let known_hosts = lab.known_hosts_file(&[format!(
        "[127.0.0.1]:{} {}",
        relay.port(),
        bastion.sshd.host_key(KeyKind::Ed25519).public_key()
    )]);
    (relay, known_hosts)
}

/// The round trip (ms) and channel window (MiB) a `-vv` tunnel reported for its hop.
fn measured_path(tunnel: &Sqltun) -> (f64, u32) {
    if !tunnel.stderr_mentions(&["(identification exchange)"], STDERR_TIMEOUT) {
        tunnel.fail("-vv did not report the hop's round trip and channel window");
    }
    let stderr = tunnel.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("(identification exchange)"))
        .unwrap_or_default();
    let between = |start: &str, end: &str| -> Option<String> {
        let from = line.find(start)? + start.len();
        let to = from + line[from..].find(end)?;
        Some(line[from..to].to_string())
    };
    let round_trip = between("round trip ", " ms").and_then(|v| v.parse::<f64>().ok());
    let window = between("channel window ", " MiB").and_then(|v| v.parse::<u32>().ok());
    match (round_trip, window) {
        (Some(r), Some(w)) => (r, w),
        _ => tunnel.fail(&format!("cannot read the round trip and window from {line:?}")),
    }
}
