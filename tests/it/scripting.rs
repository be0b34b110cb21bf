//! sqltun for shell scripts and CI: the `--output` formats (url, env, json), several targets in one
//! process, `exec` (the tunnel's address handed to a real client: psql, mysql against MariaDB,
//! redis-cli; exit statuses, signals), `check` (every stage reported, with a probe of the real
//! PostgreSQL, MariaDB and Redis servers behind the bastion), `--background` with a pid file,
//! `--max-lifetime` and `--idle-timeout`, the `postgres+ssh://` URL form, and `--batch`.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::SocketAddrV4;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    Bastion, Chain, Completed, EXIT_TIMEOUT, KeyKind, MARIADB_PASSWORD, MARIADB_USER, MarkedProcesses,
    SIGNAL_EXIT_TIMEOUT, Signal, SqltunCommand, TEST_PASSWORD, TempHome, Tripwire, accepts_connections, assert_error,
    connect, echo_on, echo_roundtrip, free_local_port, local, poll_until, process_gone, psql, psql_url, send_signal,
    wait_until,
};

/// Bound on a file a command run by `exec` writes showing up, and on a stopped background tunnel's pid
/// file going away.
const FILE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bound on `--max-lifetime 2s` / `--idle-timeout 2s` ending the tunnel: the 2 s plus generous slack.
const LIFETIME_BOUND: Duration = Duration::from_secs(20);

/// How long a tunnel with `--idle-timeout 2s` and an open connection must keep running (twice the timeout).
const HELD_OPEN: Duration = Duration::from_secs(4);

/// A password that must show up on stdout (it is the data) and nowhere on stderr.
const DB_PASSWORD: &str = "db-pw-Zq8v3Kx1";

/// The scripting tests' bastion (`Bastion::start`): sshd, the echo/sink/source targets, an authorized key.
impl Bastion {
    /// `sqltun exec` with the key (the caller adds `--db`, then `--` and the command).
    fn exec(&self) -> SqltunCommand {
        self.sqltun_with_key("exec")
    }

    /// `sqltun check` with the key.
    fn check(&self) -> SqltunCommand {
        self.sqltun_with_key("check")
    }

    /// `postgres://postgres@TARGET/postgres` for the lab's PostgreSQL (port left to the scheme's default).
    fn postgres_url(&self) -> String {
        format!("postgres://postgres@{}/postgres", self.lab.target_addr())
    }

    /// `sqltun SUBCOMMAND` with the key and a known_hosts file that knows nothing (so sshd's key is unknown).
    fn trusting_nothing(&self, subcommand: &str) -> SqltunCommand {
        self.sqltun_trusting(subcommand, &self.lab.known_hosts_file(&[]))
    }
}

/// Runs a sqltun command to exit (bounded) and returns (exit code, stdout, stderr).
fn run(command: SqltunCommand) -> (i32, String, String) {
    let mut sqltun = command.spawn();
    let _session = Session(sqltun.pid());
    let code = sqltun.wait_exit(EXIT_TIMEOUT);
    (code, sqltun.stdout(), sqltun.stderr())
}

/// Kills, on drop, whatever is left in the session sqltun leads (the runner starts it with setsid):
/// the commands `exec` started, should a failing test leave them behind. Each is killed by its pid.
struct Session(u32);

impl Drop for Session {
    fn drop(&mut self) {
        let Ok(entries) = fs::read_dir("/proc") else { return };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
                continue;
            };
            // /proc/PID/stat: `pid (comm) state ppid pgrp session …`; comm may contain anything but `)`.
            let in_session = fs::read_to_string(entry.path().join("stat")).ok().is_some_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(3).map(str::to_string))
                    .is_some_and(|session| session == self.0.to_string())
            });
            if in_session {
                send_signal(pid, Signal::Kill);
            }
        }
    }
}

/// The pid a pid file holds; fails the test if it is not a number.
fn read_pid(path: &Path) -> u32 {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read the pid file {}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("the pid file {} holds {text:?}, not a pid", path.display()))
}

/// Parses `--output env` lines (`NAME='value'`, as `sh` would read them) into a map; fails the test on
/// any other line.
fn env_lines(stdout: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .map(|line| {
            let (name, quoted) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("--output env printed {line:?}, not NAME=VALUE:\n{stdout}"));
            let value = quoted
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or_else(|| panic!("{name}'s value {quoted:?} is not single-quoted:\n{stdout}"));
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// Parses one `--output json` line; fails the test if it is not a JSON object.
fn json_object(line: &str) -> Value {
    let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout line {line:?} is not JSON: {e}"));
    assert!(value.is_object(), "stdout line {line:?} is not a JSON object");
    value
}

/// Finds, in order, one line of `check`'s table per expectation (every needle in it, compared as is),
/// each after the one before; returns their indices. Fails the test, with the table, if one is missing.
fn rows_in_order(table: &str, expectations: &[&[&str]]) -> Vec<usize> {
    let lines: Vec<&str> = table.lines().collect();
    let mut from = 0;
    let mut found = Vec::new();
    for needles in expectations {
        let at = lines
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, line)| needles.iter().all(|needle| line.contains(needle)))
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("no row with {needles:?} after row {from} of the check table:\n{table}"));
        found.push(at);
        from = at + 1;
    }
    found
}

/// Asserts that none of the table's rows at `indices` says FAIL.
fn rows_ok(table: &str, indices: &[usize]) {
    let lines: Vec<&str> = table.lines().collect();
    for &i in indices {
        assert!(!lines[i].contains("FAIL"), "row {i} failed:\n{table}");
    }
}

/// Runs a check expected to fail: asserts exit code `expected` and a row of the table on stdout that
/// names `stage` and says FAIL.
fn assert_check_failed(command: SqltunCommand, expected: i32, stage: &str) {
    let (code, stdout, stderr) = run(command);
    assert_eq!(code, expected, "exit code; stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.lines().any(|line| line.contains("FAIL") && line.contains(stage)),
        "no FAIL row with {stage:?} in the check table:\n{stdout}"
    );
}

/// `sqltun exec` with the key, the echo target on the fixed local `port` (the caller adds `--` and the
/// command).
fn exec_on_port(s: &Bastion, port: u16) -> SqltunCommand {
    s.exec().db(s.targets.echo).args(["--local-port", &port.to_string()])
}

/// Runs an `exec` expected to succeed: asserts exit code 0 and that stdout (the command's) is `expected`.
fn assert_exec_prints(command: SqltunCommand, expected: &str) {
    let (code, stdout, stderr) = run(command);
    assert_eq!(code, 0, "exit code; stderr:\n{stderr}");
    assert_eq!(stdout, expected, "stdout; stderr:\n{stderr}");
}

/// Asserts a check run succeeded (exit 0) with a table on stdout, and returns the table.
fn check_ok(command: SqltunCommand) -> String {
    let mut check = command.spawn();
    check.assert_exit(0, EXIT_TIMEOUT);
    check.stdout()
}

// ---------------------------------------------------------------------------------------------------
// --output url / env / json, several targets

/// `--output url` is what an application's DATABASE_URL needs: the `--db` URL with the host and port
/// replaced by the tunnel's local end and everything else (user, database, parameters) kept; psql
/// connects with exactly that URL.
#[test]
fn output_url_keeps_user_database_and_parameters() {
    let s = Bastion::start();
    let postgres = s.lab.start_postgres();
    let port = free_local_port();
    let mut tunnel = s
        .connect_with_key()
        .args(["--output", "url", "--local-port", &port.to_string()])
        .arg("--db")
        .arg(format!(
            "postgres://postgres@{}/postgres?sslmode=disable&application_name=sqltun-it",
            postgres.addr.ip()
        ))
        .spawn();
    let url = tunnel.wait_ready_line();
    let expected = format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable&application_name=sqltun-it");
    if url != expected {
        tunnel.fail(&format!("--output url printed {url:?}, expected {expected:?}"));
    }
    let answer = psql_url(
        &url,
        "select current_setting('application_name') || ' ' || 42",
        &s.lab.home(),
    );
    assert_eq!(answer.trim(), "sqltun-it 42");
}

/// A password in the `--db` URL is data for the script (stdout), but it is a secret for everything
/// else: even at -vvv, through connect, a query and shutdown, it never appears on stderr.
#[test]
fn password_in_the_url_is_on_stdout_and_never_on_stderr() {
    let s = Bastion::start();
    let postgres = s.lab.start_postgres();
    let mut tunnel = s
        .connect_with_key()
        .args(["-vvv", "--output", "url"])
        .arg("--db")
        .arg(format!(
            "postgres://postgres:{DB_PASSWORD}@{}/postgres",
            postgres.addr.ip()
        ))
        .spawn();
    let url = tunnel.wait_ready_line();
    let port: u16 = url
        .strip_prefix(&format!("postgres://postgres:{DB_PASSWORD}@127.0.0.1:"))
        .and_then(|rest| rest.strip_suffix("/postgres"))
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| tunnel.fail(&format!("--output url printed {url:?}, not the URL with its password")));
    assert_eq!(psql(port, "select 42", &s.lab.home()).trim(), "42");
    tunnel.signal(Signal::Term);
    let code = tunnel.wait_exit(SIGNAL_EXIT_TIMEOUT);
    let stderr = tunnel.stderr();
    assert_eq!(code, 0, "exit code after SIGTERM; stderr:\n{stderr}");
    assert!(
        stderr.lines().count() > 3,
        "-vvv logged almost nothing, so this test proves nothing:\n{stderr}"
    );
    if let Some(line) = stderr.lines().find(|line| line.contains(DB_PASSWORD)) {
        panic!("the database password is on stderr: {line}");
    }
}

/// `--output env` is for `eval`: SQLTUN_HOST/PORT/ADDR/URL shell-quoted, plus `_1`/`_2` variants with
/// two targets; with `--background` stdout ends, so `eval "$(…)"` in a real shell gets every value
/// back, and both ports work (echo on the first, psql on the second).
#[test]
fn output_env_with_two_targets_round_trips_through_eval() {
    let s = Bastion::start();
    s.lab.start_postgres();
    let pid_file = s.lab.fresh_path("tunnel", ".pid");
    let _cleanup = MarkedProcesses {
        marker: pid_file.display().to_string(),
    };
    let completed = s
        .connect_with_key()
        .args(["--background", "--output", "env", "--pid-file"])
        .arg(&pid_file)
        .db(s.targets.echo)
        .arg("--db")
        .arg(s.postgres_url())
        .run_with_stderr_file(&s.lab.fresh_path("sqltun", ".stderr"), EXIT_TIMEOUT);
    assert_eq!(completed.code, 0, "exit code; stdout:\n{}", completed.stdout);
    let vars = env_lines(&completed.stdout);
    let get = |name: &str| {
        vars.get(name)
            .unwrap_or_else(|| panic!("--output env has no {name}:\n{}", completed.stdout))
            .clone()
    };
    let port_1: u16 = get("SQLTUN_PORT_1").parse().expect("SQLTUN_PORT_1 is a port");
    let port_2: u16 = get("SQLTUN_PORT_2").parse().expect("SQLTUN_PORT_2 is a port");
    assert_ne!(port_1, port_2, "two targets share a port:\n{}", completed.stdout);
    for (name, expected) in [
        ("SQLTUN_HOST", "127.0.0.1".to_string()),
        ("SQLTUN_PORT", port_1.to_string()),
        ("SQLTUN_ADDR", format!("127.0.0.1:{port_1}")),
        ("SQLTUN_HOST_1", "127.0.0.1".to_string()),
        ("SQLTUN_ADDR_1", format!("127.0.0.1:{port_1}")),
        ("SQLTUN_HOST_2", "127.0.0.1".to_string()),
        ("SQLTUN_ADDR_2", format!("127.0.0.1:{port_2}")),
        (
            "SQLTUN_URL_2",
            format!("postgres://postgres@127.0.0.1:{port_2}/postgres"),
        ),
    ] {
        assert_eq!(get(name), expected, "{name}; stdout:\n{}", completed.stdout);
    }
    for name in ["SQLTUN_URL", "SQLTUN_URL_1"] {
        assert!(
            get(name).contains(&format!("127.0.0.1:{port_1}")),
            "{name} does not point at the first listener:\n{}",
            completed.stdout
        );
    }

    let mut shell = Command::new("sh")
        .args(["-c", r#"eval "$(cat)"; echo $SQLTUN_PORT_2"#])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sh");
    shell
        .stdin
        .take()
        .expect("sh stdin")
        .write_all(completed.stdout.as_bytes())
        .expect("write to sh");
    let output = shell.wait_with_output().expect("wait for sh");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        port_2.to_string(),
        "eval of the env output; sh's stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    echo_roundtrip(local(port_1), b"first target");
    assert_eq!(psql_url(&get("SQLTUN_URL_2"), "select 42", &s.lab.home()).trim(), "42");
    let pid = read_pid(&pid_file);
    assert!(
        send_signal(pid, Signal::Term),
        "kill -TERM {pid} (from the pid file) failed"
    );
    wait_until(
        "the background tunnel to exit after SIGTERM",
        SIGNAL_EXIT_TIMEOUT,
        || process_gone(pid).then_some(()),
    );
}

/// With one target, `--output env` is exactly the four shell-quoted assignments (no `_1` variants),
/// all describing the one listener, which works.
#[test]
fn output_env_with_one_target_is_four_assignments() {
    let s = Bastion::start();
    let mut tunnel = s
        .connect_with_key()
        .args(["--output", "env"])
        .db(s.targets.echo)
        .spawn();
    let lines = tunnel.wait_ready_lines(4);
    let text = lines.iter().map(|line| format!("{line}\n")).collect::<String>();
    let vars = env_lines(&text);
    let port: u16 = vars
        .get("SQLTUN_PORT")
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| tunnel.fail(&format!("no SQLTUN_PORT='PORT' line:\n{text}")));
    assert_eq!(
        lines[..3],
        [
            "SQLTUN_HOST='127.0.0.1'".to_string(),
            format!("SQLTUN_PORT='{port}'"),
            format!("SQLTUN_ADDR='127.0.0.1:{port}'"),
        ],
        "--output env:\n{text}"
    );
    assert!(
        lines[3].starts_with("SQLTUN_URL='") && lines[3].contains(&format!("127.0.0.1:{port}")),
        "the fourth line should be SQLTUN_URL for the listener:\n{text}"
    );
    echo_roundtrip(local(port), b"env");
    tunnel.stop(Signal::Term);
    assert_eq!(tunnel.stdout(), text, "stdout must be the four lines alone");
}

/// `--output json` gives programs one object per line: a `ready` event per `--db` with every field a
/// program needs (index, local host/port/addr, target, url, hops, pid), and on SIGTERM a `closed`
/// event with reason `signal`.
#[test]
fn output_json_ready_per_target_then_closed_on_sigterm() {
    let s = Bastion::start();
    let postgres = s.lab.start_postgres();
    let mut tunnel = s
        .connect_with_key()
        .args(["--output", "json"])
        .db(s.targets.echo)
        .arg("--db")
        .arg(s.postgres_url())
        .spawn();
    let lines = tunnel.wait_ready_lines(2);
    let hop = s.sshd.destination();
    let mut ports = Vec::new();
    for (i, (line, target)) in lines
        .iter()
        .zip([s.targets.echo.to_string(), postgres.addr.to_string()])
        .enumerate()
    {
        let event = json_object(line);
        let field = |name: &str| {
            event
                .get(name)
                .cloned()
                .unwrap_or_else(|| tunnel.fail(&format!("the ready event has no {name:?}: {line}")))
        };
        assert_eq!(field("event"), "ready", "{line}");
        assert_eq!(field("index"), i + 1, "{line}");
        assert_eq!(field("local_host"), "127.0.0.1", "{line}");
        let port = field("local_port")
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| tunnel.fail(&format!("local_port is not a port number: {line}")));
        assert_eq!(field("local_addr"), format!("127.0.0.1:{port}"), "{line}");
        assert_eq!(field("target"), target, "{line}");
        assert_eq!(field("pid"), tunnel.pid(), "{line}");
        let hops = field("hops");
        assert!(
            hops.as_array()
                .is_some_and(|hops| hops.len() == 1 && hops[0] == hop.as_str()),
            "hops should be [{hop:?}]: {line}"
        );
        let url = field("url");
        assert!(
            url.as_str()
                .is_some_and(|url| url.contains(&format!("127.0.0.1:{port}"))),
            "url does not point at the listener: {line}"
        );
        ports.push(port);
    }
    assert_eq!(
        lines[1]
            .parse::<Value>()
            .ok()
            .and_then(|e| e["url"].as_str().map(str::to_string)),
        Some(format!("postgres://postgres@127.0.0.1:{}/postgres", ports[1])),
        "the second target's url"
    );
    echo_roundtrip(local(ports[0]), b"json");
    assert_eq!(psql(ports[1], "select 42", &s.lab.home()).trim(), "42");

    tunnel.stop(Signal::Term);
    let stdout = tunnel.stdout();
    let events: Vec<Value> = stdout.lines().map(json_object).collect();
    let closed = events
        .iter()
        .find(|event| event["event"] == "closed")
        .unwrap_or_else(|| tunnel.fail("no `closed` event on stdout after SIGTERM"));
    assert_eq!(closed["reason"], "signal", "closed event: {closed}");
    assert_eq!(
        events.last(),
        Some(closed),
        "`closed` must be the last event:\n{stdout}"
    );
}

/// Two `--db` in one process: one port line each, in the order given, and each port reaches its own
/// target (echo on the first, PostgreSQL on the second).
#[test]
fn two_targets_get_a_port_line_each_in_order() {
    let s = Bastion::start();
    let postgres = s.lab.start_postgres();
    let (_tunnel, ports) = s.tunnels_to(&[s.targets.echo, postgres.addr]);
    assert_ne!(ports[0], ports[1], "two targets share a port");
    echo_roundtrip(local(ports[0]), b"the first --db is the echo target");
    assert_eq!(psql(ports[1], "select 42", &s.lab.home()).trim(), "42");
    echo_roundtrip(local(ports[0]), b"and still is");
}

// ---------------------------------------------------------------------------------------------------
// exec

/// `exec -- psql` with no -h/-p: PGHOST/PGPORT (and PGUSER/PGDATABASE from the URL) come from sqltun,
/// the query runs through the tunnel, psql's output is sqltun's stdout and its status sqltun's.
#[test]
fn exec_psql_gets_its_connection_from_the_environment() {
    let s = Bastion::start();
    s.lab.start_postgres();
    assert_exec_prints(
        s.exec()
            .arg("--db")
            .arg(s.postgres_url())
            .env("PGCONNECT_TIMEOUT", "20")
            .args(["--", "psql", "-X", "-w", "-At", "-c", "select 42"]),
        "42\n",
    );
}

/// Scripts branch on `exec`'s status: the command's own exit code comes back unchanged.
#[test]
fn exec_returns_the_commands_exit_status() {
    let s = Bastion::start();
    let (code, _, stderr) = run(s.exec().db(s.targets.echo).args(["--", "sh", "-c", "exit 3"]));
    assert_eq!(code, 3, "exit code; stderr:\n{stderr}");
}

/// A command killed by signal N gives 128+N, as a shell reports it (SIGTERM: 143).
#[test]
fn exec_command_killed_by_a_signal_exits_128_plus_n() {
    let s = Bastion::start();
    let (code, _, stderr) = run(s.exec().db(s.targets.echo).args(["--", "sh", "-c", "kill -TERM $$"]));
    assert_eq!(code, 143, "exit code; stderr:\n{stderr}");
}

/// The command sees SQLTUN_PORT: the tunnel's local port (fixed here, so the value can be checked).
#[test]
fn exec_exports_sqltun_port() {
    let s = Bastion::start();
    let port = free_local_port();
    assert_exec_prints(
        exec_on_port(&s, port).args(["--", "printenv", "SQLTUN_PORT"]),
        &format!("{port}\n"),
    );
}

/// Commands that take no environment get `{host}` and `{port}` replaced in their arguments.
#[test]
fn exec_replaces_host_and_port_placeholders() {
    let s = Bastion::start();
    let port = free_local_port();
    assert_exec_prints(
        exec_on_port(&s, port).args(["--", "sh", "-c", "echo {host}:{port}"]),
        &format!("127.0.0.1:{port}\n"),
    );
}

/// The real mysql client, given the tunnel through placeholders, logs in with a password to a real
/// MariaDB that only the bastion can reach.
#[test]
fn exec_mysql_through_the_tunnel_to_mariadb() {
    let s = Bastion::start();
    let mariadb = s.lab.start_mariadb();
    assert_exec_prints(
        s.exec().db(mariadb.addr).args([
            "--",
            "mysql",
            "--no-defaults",
            "-h",
            "{host}",
            "-P",
            "{port}",
            "-u",
            MARIADB_USER,
            &format!("-p{MARIADB_PASSWORD}"),
            "-N",
            "-B",
            "-e",
            "select 42",
        ]),
        "42\n",
    );
}

/// `{url}` is the `--db` URL rewritten to the local end: redis-cli -u takes it and gets PONG from a
/// real Redis behind the bastion.
#[test]
fn exec_redis_cli_with_the_url_placeholder() {
    let s = Bastion::start();
    let redis = s.lab.start_redis(6379, None);
    assert_exec_prints(
        s.exec()
            .arg("--db")
            .arg(format!("redis://{}", redis.addr))
            .args(["--", "redis-cli", "-u", "{url}", "ping"]),
        "PONG\n",
    );
}

/// A command that does not exist is 127, as in a shell, with a message naming it.
#[test]
fn exec_missing_command_exits_127() {
    let s = Bastion::start();
    let missing = "sqltun-it-no-such-command";
    let (code, _, stderr) = run(s.exec().db(s.targets.echo).args(["--", missing]));
    assert_eq!(code, 127, "exit code; stderr:\n{stderr}");
    assert!(
        stderr.contains(missing),
        "the error does not name the command:\n{stderr}"
    );
}

/// CI stops jobs with SIGTERM: sqltun passes it on to the command (which gets to clean up), exits with
/// the command's status, and closes the tunnel.
#[test]
fn exec_passes_sigterm_to_the_command_and_returns_its_status() {
    let s = Bastion::start();
    let ready = s.lab.fresh_path("exec-ready", "");
    let marker = s.lab.fresh_path("exec-got-term", "");
    // The trap is set before the port is written, so a SIGTERM after the port file exists is trapped.
    let script = format!(
        "trap 'echo got > {marker}; exit 7' TERM; echo {{port}} > {ready}; while :; do sleep 0.1; done",
        marker = marker.display(),
        ready = ready.display()
    );
    let mut exec = s.exec().db(s.targets.echo).args(["--", "sh", "-c", &script]).spawn();
    let _session = Session(exec.pid());
    let port: u16 = poll_until(FILE_TIMEOUT, || {
        fs::read_to_string(&ready)
            .ok()
            .and_then(|text| text.trim().parse().ok())
    })
    .unwrap_or_else(|| {
        exec.fail(&format!(
            "the command did not write its port to {} in time",
            ready.display()
        ))
    });
    echo_roundtrip(local(port), b"while the command runs");

    exec.signal(Signal::Term);
    let code = exec.wait_exit(SIGNAL_EXIT_TIMEOUT);
    if code != 7 {
        exec.fail(&format!("exit code {code}, expected the command's 7"));
    }
    assert_eq!(
        fs::read_to_string(&marker).ok().as_deref().map(str::trim),
        Some("got"),
        "the command did not get SIGTERM"
    );
    assert!(
        !accepts_connections(port),
        "127.0.0.1:{port} still accepts connections after exec ended"
    );
}

/// When the tunnel fails before the command starts (an unknown host key, nobody to ask), sqltun's own
/// exit code says why (4) and the command never runs.
#[test]
fn exec_tunnel_failure_exits_with_sqltuns_code_and_never_runs_the_command() {
    let s = Bastion::start();
    let marker = s.lab.fresh_path("exec-ran", "");
    let (code, _, stderr) = run(s.trusting_nothing("exec").db(s.targets.echo).args([
        "--",
        "sh",
        "-c",
        &format!("touch {}", marker.display()),
    ]));
    assert_eq!(code, 4, "exit code; stderr:\n{stderr}");
    assert!(!marker.exists(), "the command ran although the tunnel failed");
}

// ---------------------------------------------------------------------------------------------------
// check

/// `check` against PostgreSQL reports every stage in order, each ok: resolution, hop 1's connect, key
/// exchange (with the measured round trip and the channel window), host key (with sshd's SHA256 fingerprint) and authentication, the forward, and a probe
/// that recognises PostgreSQL.
#[test]
fn check_postgres_reports_every_stage() {
    let s = Bastion::start();
    let postgres = s.lab.start_postgres();
    let table = check_ok(s.check().db(postgres.addr));
    let fingerprint = s.sshd.host_key(KeyKind::Ed25519).fingerprint();
    let target = postgres.addr.to_string();
    let rows = rows_in_order(
        &table,
        &[
            &["resolve"],
            &["[1/1]", "connect"],
            &["[1/1]", "key exchange", "round trip", "channel window"],
            &["[1/1]", "host key", &fingerprint],
            &["[1/1]", "authentication"],
            &["forward", &target],
            &["probe", "PostgreSQL"],
        ],
    );
    rows_ok(&table, &rows);
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
}

/// `check --json` carries the same facts for programs: one object with ok, exit_code and the stages
/// in order (the host key stage with the fingerprint, the probe naming PostgreSQL).
#[test]
fn check_json_has_ok_exit_code_and_the_stages() {
    let s = Bastion::start();
    let postgres = s.lab.start_postgres();
    let stdout = check_ok(s.check().arg("--json").db(postgres.addr));
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("check --json printed something that is not one JSON value ({e}):\n{stdout}"));
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["exit_code"], 0, "{report}");
    let stages = report["stages"]
        .as_array()
        .unwrap_or_else(|| panic!("no stages array: {report}"));
    let fingerprint = s.sshd.host_key(KeyKind::Ed25519).fingerprint();
    let mut from = 0;
    for (name, needle) in [
        ("resolve", None),
        ("connect", None),
        ("key exchange", None),
        ("host key", Some(fingerprint.as_str())),
        ("authentication", None),
        ("forward", None),
        ("probe", Some("PostgreSQL")),
    ] {
        let at = stages
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, stage)| stage["stage"].as_str().is_some_and(|s| s.contains(name)))
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("no {name:?} stage after stage {from}: {report}"));
        let stage = &stages[at];
        assert_eq!(stage["ok"], true, "stage {name}: {stage}");
        if let Some(needle) = needle {
            assert!(
                stage.to_string().contains(needle),
                "stage {name} does not mention {needle}: {stage}"
            );
        }
        from = at + 1;
    }
}

/// The MySQL-protocol probe reads the server's greeting: a MariaDB target is named as MariaDB, with the
/// version the server itself reports.
#[test]
fn check_mariadb_probe_names_the_server() {
    let s = Bastion::start();
    let mariadb = s.lab.start_mariadb();
    let table = check_ok(s.check().arg("--db").arg(format!("mysql://{}", mariadb.addr.ip())));
    // The server's own version string (`10.11.6-MariaDB-…`), as the greeting carries it.
    let release = mariadb.version.split('-').next().unwrap_or_default();
    assert!(!release.is_empty(), "no version from the server: {:?}", mariadb.version);
    let rows = rows_in_order(&table, &[&["forward"], &["probe", "MariaDB", release]]);
    rows_ok(&table, &rows);
}

/// The Redis probe sends PING; an open Redis answers PONG.
#[test]
fn check_redis_probe_gets_pong() {
    let s = Bastion::start();
    let redis = s.lab.start_redis(6379, None);
    let table = check_ok(s.check().arg("--db").arg(format!("redis://{}", redis.addr.ip())));
    let rows = rows_in_order(&table, &[&["forward"], &["probe", "PONG"]]);
    rows_ok(&table, &rows);
}

/// A Redis that requires a password still proves the path works: ok, with "authentication required"
/// in the detail (the probe has no password to give).
#[test]
fn check_redis_with_requirepass_is_ok_and_says_authentication_required() {
    let s = Bastion::start();
    let redis = s.lab.start_redis(6380, Some("redis-secret-8d2"));
    assert!(redis.password.is_some());
    let table = check_ok(s.check().arg("--db").arg(format!("redis://{}", redis.addr)));
    let rows = rows_in_order(&table, &[&["forward"], &["probe", "authentication required"]]);
    rows_ok(&table, &rows);
}

/// A target port where nothing listens: exit 6, and the forward stage is the one that failed.
#[test]
fn check_refused_target_exits_6_with_the_forward_failed() {
    let s = Bastion::start();
    assert_check_failed(s.check().db(s.targets.refused), 6, "forward");
}

/// An unknown host key with no terminal (stdin null): no prompt, exit 4, the host key stage failed.
#[test]
fn check_unknown_host_key_exits_4_with_the_host_key_failed() {
    let s = Bastion::start();
    assert_check_failed(s.trusting_nothing("check").db(s.targets.echo), 4, "host key");
}

/// A wrong password: exit 5, the authentication stage failed.
#[test]
fn check_wrong_password_exits_5_with_authentication_failed() {
    let s = Bastion::start();
    assert_check_failed(
        s.sqltun("check")
            .db(s.targets.echo)
            .env("SQLTUN_SSH_PASSWORD", format!("{TEST_PASSWORD}-wrong")),
        5,
        "authentication",
    );
}

/// Through a 2-hop chain, check lists hop 1's stages and then hop 2's (each with its own host key),
/// then the forward and the probe.
#[test]
fn check_two_hop_chain_lists_both_hops_in_order() {
    let chain = Chain::start(2);
    let table = check_ok(chain.literal("check").identity(chain.key()).db(chain.targets.echo));
    let fingerprints: Vec<String> = chain
        .sshds
        .iter()
        .map(|sshd| sshd.host_key(KeyKind::Ed25519).fingerprint())
        .collect();
    let target = chain.targets.echo.to_string();
    let rows = rows_in_order(
        &table,
        &[
            &["resolve"],
            &["[1/2]", "connect"],
            &["[1/2]", "key exchange"],
            &["[1/2]", "host key", &fingerprints[0]],
            &["[1/2]", "authentication"],
            &["[2/2]", "connect"],
            &["[2/2]", "key exchange"],
            &["[2/2]", "host key", &fingerprints[1]],
            &["[2/2]", "authentication"],
            &["forward", &target],
            &["probe", &target],
        ],
    );
    rows_ok(&table, &rows);
}

// ---------------------------------------------------------------------------------------------------
// --background, lifetimes

/// `--background` is `ssh -f` for scripts: the command returns 0 with the port once the tunnel works,
/// the pid file names the tunnel process (alive, not the process that returned), and SIGTERM to that
/// pid stops it and removes the pid file.
#[test]
fn background_returns_with_the_port_and_a_pid_file() {
    let s = Bastion::start();
    let pid_file = s.lab.fresh_path("tunnel", ".pid");
    let _cleanup = MarkedProcesses {
        marker: pid_file.display().to_string(),
    };
    let Completed {
        code,
        stdout,
        pid: parent,
    } = s
        .connect_with_key()
        .args(["--background", "--pid-file"])
        .arg(&pid_file)
        .db(s.targets.echo)
        .run_with_stderr_file(&s.lab.fresh_path("sqltun", ".stderr"), EXIT_TIMEOUT);
    assert_eq!(code, 0, "exit code; stdout:\n{stdout}");
    let port: u16 = stdout
        .strip_suffix('\n')
        .and_then(|line| line.parse().ok())
        .unwrap_or_else(|| panic!("stdout should be the port line alone: {stdout:?}"));
    let pid = read_pid(&pid_file);
    assert_ne!(pid, parent, "the pid file names the process that returned");
    assert!(!process_gone(pid), "the pid file's process {pid} is not running");
    let exe = fs::read_link(format!("/proc/{pid}/exe")).expect("read /proc/PID/exe");
    assert!(
        exe.file_name().is_some_and(|name| name == "sqltun"),
        "the pid file names {pid}, which runs {}",
        exe.display()
    );
    echo_roundtrip(local(port), b"in the background");

    assert!(send_signal(pid, Signal::Term), "kill -TERM {pid} failed");
    wait_until(
        "the background tunnel to exit after SIGTERM",
        SIGNAL_EXIT_TIMEOUT,
        || process_gone(pid).then_some(()),
    );
    wait_until("the pid file to be removed", FILE_TIMEOUT, || {
        (!pid_file.exists()).then_some(())
    });
    assert!(!accepts_connections(port), "127.0.0.1:{port} still accepts connections");
}

/// A background tunnel that cannot come up (unknown host key) makes the foreground command fail with
/// that reason's code (4), print nothing on stdout, and leave no pid file.
#[test]
fn background_failure_exits_with_the_code_and_leaves_no_pid_file() {
    let s = Bastion::start();
    let pid_file = s.lab.fresh_path("tunnel", ".pid");
    let _cleanup = MarkedProcesses {
        marker: pid_file.display().to_string(),
    };
    let stderr = s.lab.fresh_path("sqltun", ".stderr");
    let completed = s
        .trusting_nothing("connect")
        .args(["--background", "--pid-file"])
        .arg(&pid_file)
        .db(s.targets.echo)
        .run_with_stderr_file(&stderr, EXIT_TIMEOUT);
    let errors = fs::read_to_string(&stderr).unwrap_or_default();
    assert_eq!(completed.code, 4, "exit code; stderr:\n{errors}");
    assert_eq!(completed.stdout, "", "stdout must stay empty");
    assert!(!pid_file.exists(), "a failed background tunnel left a pid file");
}

/// Bound on a background tunnel's later message (a lost session, a reconnect, its closing) reaching its
/// log file; with 1 s keepalives a dead session is noticed in ~3 s, a restarted sshd re-dialled in a few.
const LOG_TIMEOUT: Duration = Duration::from_secs(20);

/// Waits up to `LOG_TIMEOUT` for the log file at `path` to contain `needle`; fails the test with the log.
fn expect_in_log(path: &Path, needle: &str, why: &str) -> String {
    poll_until(LOG_TIMEOUT, || {
        fs::read_to_string(path).ok().filter(|text| text.contains(needle))
    })
    .unwrap_or_else(|| {
        panic!(
            "no {needle:?} in the log {} within {LOG_TIMEOUT:?} ({why}):\n{}",
            path.display(),
            fs::read_to_string(path).unwrap_or_default()
        )
    })
}

/// Where /proc says a process's file descriptor `fd` points.
fn fd_target(pid: u32, fd: u32) -> String {
    fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|target| target.display().to_string())
        .unwrap_or_else(|e| panic!("read /proc/{pid}/fd/{fd}: {e}"))
}

/// The session id /proc gives `pid` (`pid (comm) state ppid pgrp session …`).
fn session_of(pid: u32) -> u32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or_else(|| panic!("no session in /proc/{pid}/stat: {stat}"))
}

/// The permission bits of `path`.
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Once `--background` has returned, the tunnel must never write to the terminal or the caller's pipes
/// again (a `2>&1 | tee` would wait forever, a closed terminal would lose or kill it). The user sees one
/// stderr line: the pid, the route, the log and `kill PID` (not "Ctrl-C"); both pipes reach end of file
/// as the command returns (the detached child holds neither); the child leads its own session, with
/// stdin and stdout on /dev/null and stderr on its log at the default place under HOME (directory
/// 0700, file 0600); and what it says later (the session lost to a killed bastion, the reconnect after
/// sshd restarts, the closing reason on SIGTERM) lands in that log and nowhere else.
#[test]
fn background_announces_its_pid_then_writes_only_to_its_log() {
    let s = Bastion::start();
    let pid_file = s.lab.fresh_path("tunnel", ".pid");
    let _cleanup = MarkedProcesses {
        marker: pid_file.display().to_string(),
    };
    let mut parent = s
        .connect_with_key()
        .args(["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2"])
        .args(["--background", "--pid-file"])
        .arg(&pid_file)
        .db(s.targets.echo)
        .spawn();
    // `wait_exit` also fails the test unless stdout and stderr reach end of file once the parent exits.
    parent.assert_exit(0, EXIT_TIMEOUT);
    let stdout = parent.stdout();
    let port: u16 = stdout
        .strip_suffix('\n')
        .and_then(|line| line.parse().ok())
        .unwrap_or_else(|| panic!("stdout should be the port line alone: {stdout:?}"));
    let pid = read_pid(&pid_file);
    let log = s.lab.home().join(format!(".local/state/sqltun/{pid}.log"));
    let announced = format!(
        "sqltun: tunnel running in the background (pid {pid}): 127.0.0.1:{port} -> {} via {}; log: {}; stop it with: kill {pid}\n",
        s.targets.echo,
        s.sshd.destination(),
        log.display()
    );
    assert_eq!(parent.stderr(), announced, "stderr of the command that returned");

    assert_eq!(mode_of(&log), 0o600, "mode of {}", log.display());
    assert_eq!(
        mode_of(log.parent().expect("log directory")),
        0o700,
        "mode of the log directory"
    );
    assert_eq!(
        session_of(pid),
        pid,
        "the background tunnel does not lead a session of its own"
    );
    assert_eq!(fd_target(pid, 0), "/dev/null", "stdin of the background tunnel");
    assert_eq!(fd_target(pid, 1), "/dev/null", "stdout of the background tunnel");
    assert_eq!(
        fd_target(pid, 2),
        log.display().to_string(),
        "stderr of the background tunnel"
    );
    expect_in_log(&log, &announced, "the log starts by saying what it is about");
    echo_roundtrip(local(port), b"detached");

    s.lab.kill_bastion(0);
    expect_in_log(
        &log,
        "the port stays open, reconnecting",
        "the bastion's sshd was killed",
    );
    let _restarted = s.lab.restart_sshd(&s.sshd);
    expect_in_log(&log, "reconnected after", "sshd is back");
    echo_roundtrip(local(port), b"after the reconnect");

    assert!(send_signal(pid, Signal::Term), "kill -TERM {pid} failed");
    wait_until(
        "the background tunnel to exit after SIGTERM",
        SIGNAL_EXIT_TIMEOUT,
        || process_gone(pid).then_some(()),
    );
    let text = expect_in_log(&log, "sqltun: closed the tunnel (signal)", "it was stopped by SIGTERM");
    assert!(
        !text.contains("error"),
        "the log of a cleanly stopped tunnel has an error:\n{text}"
    );
}

/// `--output json --background | head -n 1`: the caller reads the ready event and closes its end of
/// stdout. No later event (the `closed` event above all) may become an EPIPE error, a SIGPIPE death or
/// a stray write: the tunnel keeps serving, and SIGTERM ends it cleanly with the `closed` event in its
/// log, here under `$XDG_STATE_HOME/sqltun/` (created 0700).
#[test]
fn background_json_outlives_a_closed_stdout() {
    use std::io::{BufRead, BufReader, Read};
    use std::sync::mpsc;

    let s = Bastion::start();
    let state = s.lab.fresh_path("state", "");
    let pid_file = s.lab.fresh_path("tunnel", ".pid");
    let _cleanup = MarkedProcesses {
        marker: pid_file.display().to_string(),
    };
    let mut parent = s
        .connect_with_key()
        .env("XDG_STATE_HOME", &state)
        .args(["--background", "--output", "json", "--pid-file"])
        .arg(&pid_file)
        .db(s.targets.echo)
        .spawn_bare();
    let stdout = parent.stdout.take().expect("sqltun stdout");
    let mut stderr = parent.stderr.take().expect("sqltun stderr");
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        // The reader goes out of scope here: stdout is closed after the ready line, as `head -n 1` does.
        let _ = line_tx.send(line);
    });
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = err_tx.send(text);
    });
    let line = line_rx
        .recv_timeout(EXIT_TIMEOUT)
        .expect("the ready line within the bound");
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
    assert_eq!(ready["event"], "ready", "{line}");
    let port = ready["local_port"].as_u64().expect("local_port") as u16;
    let status = wait_until("the command to return", EXIT_TIMEOUT, || {
        parent.try_wait().expect("poll sqltun")
    });
    let stderr = err_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("stderr reaches end of file once the command returned");
    assert_eq!(status.code(), Some(0), "exit status; stderr:\n{stderr}");
    let pid = read_pid(&pid_file);
    assert_eq!(ready["pid"], pid, "the ready event's pid is the tunnel's");
    assert!(
        stderr.contains(&format!("(pid {pid})")) && stderr.contains(&format!("stop it with: kill {pid}")),
        "stderr:\n{stderr}"
    );

    echo_roundtrip(local(port), b"stdout is closed");
    let log = state.join(format!("sqltun/{pid}.log"));
    assert_eq!(
        mode_of(log.parent().expect("log directory")),
        0o700,
        "mode of the log directory"
    );
    assert!(send_signal(pid, Signal::Term), "kill -TERM {pid} failed");
    wait_until(
        "the background tunnel to exit after SIGTERM",
        SIGNAL_EXIT_TIMEOUT,
        || process_gone(pid).then_some(()),
    );
    let text = expect_in_log(&log, r#""event":"closed""#, "it was stopped by SIGTERM");
    let closed: Value = text
        .lines()
        .find(|l| l.contains(r#""event":"closed""#))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("the closed event is not a JSON line:\n{text}"));
    assert_eq!(closed["reason"], "signal", "{closed}");
    assert!(
        !text.contains("error"),
        "the log of a cleanly stopped tunnel has an error:\n{text}"
    );
}

/// A ProxyCommand starts before the tunnel detaches and lives as long as its session. Had it inherited
/// sqltun's stderr, it would keep the caller's pipe open after the command returned (`$(…)` or
/// `2>&1 | …` would never end) and could still write there. Its stderr is relayed through sqltun
/// instead: the pipes end when the command returns, and what the command said shows up (on stderr
/// before the tunnel detached, else in its log).
#[test]
fn background_with_a_proxycommand_lets_go_of_the_callers_pipes() {
    let s = Bastion::start();
    let pid_file = s.lab.fresh_path("tunnel", ".pid");
    let _cleanup = MarkedProcesses {
        marker: pid_file.display().to_string(),
    };
    let log = s.lab.fresh_path("tunnel", ".log");
    let mut parent = s
        .connect_with_key()
        .args(["-o", "ProxyCommand=echo proxy-says-hello >&2; exec socat - TCP:%h:%p"])
        .args(["--background", "--pid-file"])
        .arg(&pid_file)
        .arg("--log-file")
        .arg(&log)
        .db(s.targets.echo)
        .spawn();
    // `wait_exit` fails the test unless both pipes reach end of file once the parent exits.
    parent.assert_exit(0, EXIT_TIMEOUT);
    let port: u16 = parent
        .stdout()
        .trim_end()
        .parse()
        .unwrap_or_else(|_| panic!("stdout should be the port line alone: {:?}", parent.stdout()));
    echo_roundtrip(local(port), b"through the ProxyCommand");
    let said = "ProxyCommand: proxy-says-hello";
    if !parent.stderr().contains(said) {
        expect_in_log(&log, said, "the ProxyCommand wrote to its stderr");
    }
    let pid = read_pid(&pid_file);
    assert!(send_signal(pid, Signal::Term), "kill -TERM {pid} failed");
    wait_until(
        "the background tunnel to exit after SIGTERM",
        SIGNAL_EXIT_TIMEOUT,
        || process_gone(pid).then_some(()),
    );
    assert_eq!(mode_of(&log), 0o600, "mode of --log-file");
}

/// A symbolic link at the log's path could point at any file of the user's (or, for root, anyone's):
/// it is refused before anything is dialled, with a usage error naming it, and its target is untouched.
#[test]
fn background_log_file_refuses_a_symbolic_link() {
    let home = TempHome::new();
    let tripwire = Tripwire::new();
    let victim = home.path().join("victim");
    fs::write(&victim, "keep\n").expect("write the victim file");
    let link = home.path().join("tunnel.log");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let mut tunnel = home
        .connect()
        .args([
            "--ssh",
            &tripwire.destination(),
            "--db",
            "127.0.0.1:5432",
            "--background",
            "--log-file",
        ])
        .arg(&link)
        .spawn();
    let code = tunnel.wait_exit(EXIT_TIMEOUT);
    assert_error(code, &tunnel.stderr(), 2, &["--log-file", "symbolic link"]);
    assert_eq!(tunnel.stdout(), "", "stdout");
    assert_eq!(fs::read_to_string(&victim).expect("read the victim"), "keep\n");
    tripwire.assert_untouched();
}

/// `--max-lifetime` bounds a tunnel a script forgot to stop: after the port line, exit 10 once the
/// lifetime (2 s) has passed.
#[test]
fn max_lifetime_ends_the_tunnel_with_exit_10() {
    let s = Bastion::start();
    let (mut tunnel, port) = s.echo_tunnel_with(&["--max-lifetime", "2s"]);
    tunnel.assert_exit(10, LIFETIME_BOUND);
    assert_eq!(tunnel.stdout(), format!("{port}\n"), "stdout");
}

/// `--idle-timeout` ends a tunnel nobody uses: no connection at all for 2 s is exit 11.
#[test]
fn idle_timeout_without_connections_exits_11() {
    let s = Bastion::start();
    let (mut tunnel, _) = s.echo_tunnel_with(&["--idle-timeout", "2s"]);
    tunnel.assert_exit(11, LIFETIME_BOUND);
}

/// An open connection is not idle, however quiet it is: the tunnel outlives twice the idle timeout
/// while a connection is held, and ends with 11 once it is closed.
#[test]
fn idle_timeout_waits_for_an_open_connection() {
    let s = Bastion::start();
    let (mut tunnel, port) = s.echo_tunnel_with(&["--idle-timeout", "2s"]);
    let open = connect(local(port));
    echo_on(&open, b"held open");
    if poll_until(HELD_OPEN, || (!tunnel.is_running()).then_some(())).is_some() {
        tunnel.fail(&format!(
            "the tunnel exited while a connection was open (idle timeout 2 s, held {HELD_OPEN:?})"
        ));
    }
    echo_on(&open, b"still works");
    drop(open);
    tunnel.assert_exit(11, LIFETIME_BOUND);
}

// ---------------------------------------------------------------------------------------------------
// +ssh URLs, --batch

/// `sqltun connect postgres+ssh://USER@BASTION/postgres@TARGET/postgres -i KEY --known-hosts …`.
fn ssh_url_tunnel(s: &Bastion, target: SocketAddrV4) -> SqltunCommand {
    s.lab
        .connect()
        .arg(format!(
            "postgres+ssh://{}/postgres@{target}/postgres",
            s.sshd.destination()
        ))
        .identity(s.key())
        .known_hosts(&s.known_hosts)
}

/// The TablePlus/TablePro `postgres+ssh://` form in one argument: the tunnel opens through the bastion
/// and psql reaches PostgreSQL through it.
#[test]
fn ssh_url_opens_the_tunnel() {
    let s = Bastion::start();
    let postgres = s.lab.start_postgres();
    let mut tunnel = ssh_url_tunnel(&s, postgres.addr).spawn();
    let port = tunnel.wait_ready();
    assert_eq!(psql(port, "select 42", &s.lab.home()).trim(), "42");
}

/// With a `+ssh` URL, `--output url` is the database part rewritten to the local end:
/// `postgres://postgres@127.0.0.1:PORT/postgres` (the SSH part is not the database's business).
#[test]
fn ssh_url_with_output_url_prints_the_database_url() {
    let s = Bastion::start();
    let postgres = s.lab.start_postgres();
    let mut tunnel = ssh_url_tunnel(&s, postgres.addr).args(["--output", "url"]).spawn();
    let url = tunnel.wait_ready_line();
    let port: u16 = url
        .strip_prefix("postgres://postgres@127.0.0.1:")
        .and_then(|rest| rest.strip_suffix("/postgres"))
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| {
            tunnel.fail(&format!(
                "--output url printed {url:?}, expected postgres://postgres@127.0.0.1:PORT/postgres"
            ))
        });
    assert!(port > 0);
    assert_eq!(psql_url(&url, "select 42", &s.lab.home()).trim(), "42");
}

/// `--batch` with an encrypted key and no SQLTUN_SSH_PASSPHRASE is an immediate usage error (2) that
/// names the variable, never a prompt.
#[test]
fn batch_with_an_encrypted_key_and_no_passphrase_exits_2_naming_the_variable() {
    let s = Bastion::start();
    let key = s.lab.generate_encrypted_key(KeyKind::Ed25519, "not given to sqltun");
    s.lab.authorize(&key);
    let (code, stdout, stderr) = run(s.sqltun("connect").identity(&key).arg("--batch").db(s.targets.echo));
    assert_error(code, &stderr, 2, &["SQLTUN_SSH_PASSPHRASE"]);
    assert_eq!(stdout, "", "stdout must stay empty");
}
