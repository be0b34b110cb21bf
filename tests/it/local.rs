//! What sqltun leaves on the machine it runs on: the environment of the processes it starts (`exec`'s
//! command, ProxyCommand) holds none of its secret variables; `--pid-file` never follows a link and never
//! clobbers a running tunnel's file; secret files that are FIFOs or huge fail at once; `--output json`
//! (which ends up in CI logs) carries no database password; and the process cannot dump core.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{
    Bastion, Chain, EXIT_TIMEOUT, KeyKind, Lab, Signal, SqltunCommand, SshdOptions, TEST_PASSWORD, TEST_USER, TempHome,
    Tripwire, account_ids, assert_error, echo_roundtrip, local, only_methods, poll_until,
};

/// The passphrase of the encrypted key the `exec` test authenticates with.
const PASSPHRASE: &str = "local-test-passphrase-91c";
/// A TOTP secret (valid base32) that sqltun reads but no server asks for.
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXP";
/// A variable that is not a secret: it must reach the started process, so the test proves something.
const KEPT: (&str, &str) = ("SQLTUN_TEST_KEPT", "kept-4d1e");
/// A database password that belongs on stdout for `--output url`, never in a JSON event.
const DB_PASSWORD: &str = "db-pw-local-8Hq2";
/// Bound on a started process's pid or a test listener's connection showing up.
const SHOW_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// Every secret variable in its plain and per-hop form, with values that authenticate hop 1 (password and
/// passphrase are the right ones in both forms, so whichever sqltun picks works).
fn secret_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("SQLTUN_SSH_PASSWORD", TEST_PASSWORD),
        ("SQLTUN_SSH_PASSWORD_1", TEST_PASSWORD),
        ("SQLTUN_SSH_PASSPHRASE", PASSPHRASE),
        ("SQLTUN_SSH_PASSPHRASE_1", PASSPHRASE),
        ("SQLTUN_TOTP_SECRET", TOTP_SECRET),
        ("SQLTUN_TOTP_SECRET_1", TOTP_SECRET),
    ]
}

/// `command` with every secret variable and the kept one.
fn with_secrets(mut command: SqltunCommand) -> SqltunCommand {
    for (name, value) in secret_env() {
        command = command.env(name, value);
    }
    command.env(KEPT.0, KEPT.1)
}

/// Fails the test unless `env_dump` (`env`'s output, from `whose`) has the kept variable and no secret
/// variable, by name or by value.
fn assert_no_secrets(env_dump: &str, whose: &str) {
    assert!(
        env_dump.lines().any(|line| line == format!("{}={}", KEPT.0, KEPT.1)),
        "{whose}'s environment lacks {}, so it was not inherited at all:\n{env_dump}",
        KEPT.0
    );
    for (name, value) in secret_env() {
        for line in env_dump.lines() {
            assert!(
                !line.starts_with(&format!("{name}=")) && !line.contains(value),
                "{whose}'s environment holds a secret ({name}): {line}"
            );
        }
    }
}

/// Fails the test unless sshd logged `needle`.
fn assert_sshd_logged(log: &str, needle: &str) {
    assert!(log.contains(needle), "sshd did not log {needle:?}:\n{log}");
}

// ---------------------------------------------------------------------------------------------------
// Secret variables are withheld from started processes

/// `exec`'s command is any program (a client, a script, a shell a colleague wrote): it must not inherit
/// sqltun's SSH password, passphrase or TOTP secret, in either form, while sqltun itself authenticated
/// with them (sshd asks for publickey with an encrypted key, then the password).
#[test]
fn exec_command_gets_no_secret_variables() {
    let lab = Lab::new();
    let key = lab.generate_encrypted_key(KeyKind::Ed25519, PASSPHRASE);
    lab.authorize(&key);
    let s = Bastion::without_key(lab, |_, _| SshdOptions {
        extra_config: only_methods("publickey,password"),
        ..SshdOptions::default()
    });
    let command = with_secrets(s.sqltun("exec").identity(&key).db(s.targets.echo)).args(["--", "env"]);
    let mut exec = command.spawn();
    let code = exec.wait_exit(EXIT_TIMEOUT);
    if code != 0 {
        exec.fail(&format!("exit code {code}"));
    }
    let dump = exec.stdout();
    assert!(dump.contains("SQLTUN_PORT="), "not the command's environment:\n{dump}");
    assert_no_secrets(&dump, "the exec command");
    let log = s.sshd.log_text();
    assert_sshd_logged(&log, &format!("Partial publickey for {TEST_USER}"));
    assert_sshd_logged(&log, &format!("Accepted password for {TEST_USER}"));
}

/// A ProxyCommand is a shell command from a config file (often `ssh -W`, which logs and forwards its
/// environment further): it must not inherit sqltun's secrets either. Here it dumps its environment to a
/// file before it execs `ssh -W` through B1 to B2, where sqltun authenticates with the password.
#[test]
fn proxycommand_gets_no_secret_variables() {
    let chain = Chain::with(Lab::with_bastions(2), |hop| SshdOptions {
        extra_config: if hop == 1 { only_methods("password") } else { Vec::new() },
        ..SshdOptions::default()
    });
    let dump = chain.lab.fresh_path("proxy-command-env", "");
    // The ssh client's own known_hosts file: a path only in the ProxyCommand's arguments, so it marks
    // the processes sqltun starts (killed at the end by pid, should the test fail).
    let marker = chain.lab.fresh_path("proxy-command-known-hosts", "");
    fs::write(&marker, format!("{}\n", chain.sshds[0].known_hosts_line())).expect("write known_hosts");
    let _proxies = crate::support::MarkedProcesses {
        marker: marker.display().to_string(),
    };
    let config = chain.lab.ssh_config_file(&format!(
        "Host b2\n    HostName {}\n    User {TEST_USER}\n    UserKnownHostsFile {}\n    GlobalKnownHostsFile /dev/null\n    \
         ProxyCommand env > {}; exec ssh -F none -i {} -o IdentitiesOnly=yes -o BatchMode=yes \
         -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null -W %h:%p %r@{}\n",
        chain.addr(1),
        chain.known_hosts.display(),
        dump.display(),
        chain.key().private.display(),
        marker.display(),
        chain.addr(0),
    ));
    let mut tunnel = with_secrets(chain.lab.connect().ssh_config(&config).args(["--ssh", "b2"]))
        .db(chain.targets.echo)
        .spawn();
    let port = tunnel.wait_ready();
    echo_roundtrip(local(port), b"through a ProxyCommand");
    let env_dump = fs::read_to_string(&dump).unwrap_or_else(|e| tunnel.fail(&format!("read {}: {e}", dump.display())));
    assert_no_secrets(&env_dump, "the ProxyCommand");
    assert_sshd_logged(
        &chain.sshds[1].log_text(),
        &format!("Accepted password for {TEST_USER}"),
    );
    tunnel.stop(Signal::Term);
}

// ---------------------------------------------------------------------------------------------------
// --pid-file

/// `sqltun connect` against a tripwire (nothing must be dialled) with `--pid-file PATH`.
fn connect_with_pid_file(home: &TempHome, tripwire: &Tripwire, path: &Path) -> SqltunCommand {
    home.connect()
        .args(["--ssh", &tripwire.destination(), "--db", "127.0.0.1:5432", "--pid-file"])
        .arg(path)
}

/// A pid file path in a shared directory can be a symlink someone planted pointing at a file of the
/// user's (or root's): sqltun must refuse it with exit 2, leave the target untouched, and dial nothing.
#[test]
fn pid_file_that_is_a_symlink_is_refused_and_its_target_untouched() {
    let home = TempHome::new();
    let tripwire = Tripwire::new();
    let victim = home.path().join("victim");
    fs::write(&victim, "precious\n").expect("write the victim file");
    let link = home.path().join("tunnel.pid");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let (code, stderr) = connect_with_pid_file(&home, &tripwire, &link)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(
        code,
        &stderr,
        2,
        &["--pid-file", &link.display().to_string(), "symbolic link"],
    );
    assert_eq!(fs::read_to_string(&victim).expect("read the victim"), "precious\n");
    assert!(fs::symlink_metadata(&link).expect("the link").file_type().is_symlink());
    tripwire.assert_untouched();
}

/// A pid file naming a running process belongs to a tunnel that is up: a second one must not take it
/// over (a script would then stop the wrong tunnel); it exits 2 before dialling and leaves the file.
#[test]
fn pid_file_of_a_running_process_is_refused() {
    let home = TempHome::new();
    let tripwire = Tripwire::new();
    let path = home.path().join("tunnel.pid");
    let running = format!("{}\n", std::process::id());
    fs::write(&path, &running).expect("write the pid file");
    let (code, stderr) = connect_with_pid_file(&home, &tripwire, &path)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_error(
        code,
        &stderr,
        2,
        &["--pid-file", &format!("process {} ", std::process::id()), "is running"],
    );
    assert_eq!(fs::read_to_string(&path).expect("read the pid file"), running);
    tripwire.assert_untouched();
}

/// The pid of the tunnel process a pid file names, if it holds one.
fn pid_in(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A pid file left by a tunnel that died (its pid is not running: here one beyond pid_max) is stale:
/// the next tunnel replaces it with its own pid, and removes it when it stops.
#[test]
fn stale_pid_file_is_replaced_and_removed_at_exit() {
    let s = Bastion::start();
    let path = s.lab.fresh_path("tunnel", ".pid");
    let pid_max = fs::read_to_string("/proc/sys/kernel/pid_max").expect("read pid_max");
    fs::write(&path, &pid_max).expect("write the stale pid file");
    let mut tunnel = tunnel_with_pid_file(&s, &path);
    tunnel.stop(Signal::Term);
    assert!(!path.exists(), "the pid file is still there after the tunnel stopped");
}

/// An echo tunnel with `--pid-file PATH`, ready, and its pid in the file.
fn tunnel_with_pid_file(s: &Bastion, path: &Path) -> crate::support::Sqltun {
    let mut tunnel = s
        .connect_with_key()
        .db(s.targets.echo)
        .arg("--pid-file")
        .arg(path)
        .spawn();
    tunnel.wait_ready();
    assert_eq!(
        pid_in(path),
        Some(tunnel.pid()),
        "the pid file does not hold the tunnel's pid"
    );
    tunnel
}

/// Once another process has written its own pid into the file (the tunnel was presumed dead and
/// replaced), the stopping tunnel must not remove it: only a file holding its own pid is its to remove.
#[test]
fn pid_file_taken_over_is_left_at_exit() {
    let s = Bastion::start();
    let path = s.lab.fresh_path("tunnel", ".pid");
    let mut tunnel = tunnel_with_pid_file(&s, &path);
    let other = format!("{}\n", std::process::id());
    fs::write(&path, &other).expect("take the pid file over");
    tunnel.stop(Signal::Term);
    assert_eq!(
        fs::read_to_string(&path).ok(),
        Some(other),
        "the taken-over pid file changed"
    );
}

// ---------------------------------------------------------------------------------------------------
// Secret files

/// The options that read a secret from a file.
const SECRET_FILE_FLAGS: [&str; 3] = ["--password-file", "--passphrase-file", "--totp-secret-file"];

/// Runs `connect --FLAG PATH` against a tripwire and asserts exit 2 with an error naming the flag, the
/// path and `why`, and that nothing was dialled. `run_to_exit` is bounded: a read that blocks fails the
/// test instead of hanging it.
fn assert_secret_file_refused(home: &TempHome, path: &Path, why: &str) {
    for flag in SECRET_FILE_FLAGS {
        let tripwire = Tripwire::new();
        let (code, stderr) = home
            .connect()
            .args(["--ssh", &tripwire.destination(), "--db", "127.0.0.1:5432", flag])
            .arg(path)
            .spawn()
            .run_to_exit(EXIT_TIMEOUT);
        assert_error(code, &stderr, 2, &[flag, &path.display().to_string(), why]);
        tripwire.assert_untouched();
    }
}

/// A secret file that is a FIFO (a process substitution gone wrong, or a planted one) would block the
/// read forever with no writer: it must be an error at once, for every secret-file option.
#[test]
fn secret_file_that_is_a_fifo_fails_at_once() {
    let home = TempHome::new();
    let fifo = home.path().join("password");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("run mkfifo");
    assert!(made.success(), "mkfifo {} failed", fifo.display());
    assert_secret_file_refused(&home, &fifo, "a FIFO, not a regular file");
}

/// A secret file holds one line; a huge one (the wrong file, or /dev/zero behind a symlink) must be an
/// error, not read into memory.
#[test]
fn oversized_secret_file_fails() {
    let home = TempHome::new();
    let path = home.path().join("password");
    fs::write(&path, "x".repeat(64 * 1024 + 1)).expect("write the big file");
    assert_secret_file_refused(&home, &path, "larger than 64 KiB");
}

// ---------------------------------------------------------------------------------------------------
// Outputs meant for logs, core dumps

/// `--output json` events end up in CI logs: the ready event's url keeps the user and database but not
/// the password. `--output url` is asked for to get a usable URL, so it keeps the password.
#[test]
fn json_ready_url_has_no_password_but_output_url_does() {
    let s = Bastion::start();
    let db = format!("postgres://app:{DB_PASSWORD}@{}/appdb", s.targets.echo);
    let mut json = s.connect_with_key().args(["--output", "json", "--db", &db]).spawn();
    let line = json.wait_ready_line();
    let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| json.fail(&format!("{e}: {line}")));
    let port = event["local_port"]
        .as_u64()
        .unwrap_or_else(|| json.fail("no local_port"));
    assert_eq!(
        event["url"],
        format!("postgres://app@127.0.0.1:{port}/appdb"),
        "the json url: {line}"
    );
    assert!(!line.contains(DB_PASSWORD), "the password is in the json event: {line}");
    json.stop(Signal::Term);
    assert!(!json.stdout().contains(DB_PASSWORD), "the password is in a json event");

    let mut url = s.connect_with_key().args(["--output", "url", "--db", &db]).spawn();
    let line = url.wait_ready_line();
    assert!(
        line.starts_with(&format!("postgres://app:{DB_PASSWORD}@127.0.0.1:")),
        "--output url lost the password: {line}"
    );
    url.stop(Signal::Term);
}

/// A copy of the sqltun binary that another account can run: the build directory may sit where only
/// root can look (a checkout under /root), so the tests that run sqltun as `nobody` use this copy, made
/// inside `dir` (which they open to others).
fn binary_for_others(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let copy = dir.join("sqltun");
    fs::copy(env!("CARGO_BIN_EXE_sqltun"), &copy).expect("copy the sqltun binary");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).expect("chmod the sqltun copy");
    copy
}

/// A crash (release builds abort on panic) must not write a core file holding the secrets in memory:
/// the running process has a core size limit of 0 and is not dumpable, which shows as its
/// /proc/PID/status belonging to root although it runs as another user (`nobody` here). sqltun is held
/// mid-connect by a listener that never speaks SSH, and killed by its pid.
#[test]
fn running_process_cannot_dump_core() {
    use std::os::unix::fs::PermissionsExt;
    let home = TempHome::new();
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).expect("chmod the home");
    let sqltun = binary_for_others(home.path());
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.set_nonblocking(true).expect("non-blocking listener");
    let port = listener.local_addr().expect("local address").port();
    let (uid, gid) = account_ids("nobody");
    // A core size limit the process starts with (the machine's default may already be 0), and an
    // account other than root, so that /proc shows whether the process is dumpable.
    let mut child = Command::new("prlimit")
        .args(["--core=unlimited", "--", "setpriv"])
        .args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
            "--pdeathsig".into(),
            "KILL".into(),
            "--".into(),
            sqltun.display().to_string(),
        ])
        .args([
            "connect",
            "-F",
            "none",
            "--batch",
            "-o",
            "ConnectTimeout=60",
            "--known-hosts",
            "/dev/null",
        ])
        .args(["--ssh", &format!("nobody@127.0.0.1:{port}"), "--db", "127.0.0.1:5432"])
        .env_clear()
        .env("HOME", home.path())
        .env("SQLTUN_SSH_PASSWORD", "in-memory-secret")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sqltun as nobody");
    let pid = child.id();
    // Once sqltun (not setpriv before its exec) dials, main's setup is long done.
    let comm = || fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    // The accepted connection is held open while /proc is read, so sqltun is still running (a process
    // that has exited shows its /proc files as root's, whatever it did).
    let connected = poll_until(SHOW_UP_TIMEOUT, || {
        listener
            .accept()
            .ok()
            .filter(|_| comm().trim() == "sqltun")
            .map(|(stream, _)| stream)
    });
    let running = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let status_owner = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(format!("/proc/{pid}/status")).map(|m| m.uid())
    };
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let _ = child.kill();
    let output = child.wait_with_output().expect("wait for sqltun");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(connected.is_some(), "sqltun never dialled; stderr:\n{stderr}");
    let state = running
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next());
    assert!(
        matches!(state, Some("S" | "R" | "D")),
        "sqltun was not running while /proc was read: {running}"
    );
    let core = limits
        .lines()
        .find(|line| line.starts_with("Max core file size"))
        .unwrap_or_else(|| panic!("no core size in /proc/{pid}/limits:\n{limits}"));
    assert_eq!(
        core.split_whitespace().nth(4),
        Some("0"),
        "the soft core size limit is not 0: {core}"
    );
    let runs_as = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .map(str::to_string);
    assert_eq!(
        runs_as,
        Some(uid.to_string()),
        "sqltun does not run as nobody:\n{status}"
    );
    assert_eq!(
        status_owner.ok(),
        Some(0),
        "/proc/{pid}/status belongs to the process's user: it is still dumpable"
    );
}

/// Every other test runs sqltun as root, but people run it as themselves: the local facts ssh_config
/// matches on (`Match localuser`, `%u`, `%i`) must be those of the user running it, also once the process
/// has made itself non-dumpable at start (after which Linux shows some of `/proc/self` as root's). Run
/// as `nobody`, `Match localuser nobody` must apply and `Match localuser root` must not.
#[test]
fn another_user_is_seen_as_itself() {
    use std::os::unix::fs::PermissionsExt;
    let home = TempHome::new();
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).expect("chmod the home");
    let config = home.path().join("config");
    fs::write(
        &config,
        "Match localuser root\n    Port 2201\nMatch localuser nobody\n    Port 2202\n",
    )
    .expect("write the ssh config");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).expect("chmod the ssh config");
    let sqltun = binary_for_others(home.path());
    let (uid, gid) = account_ids("nobody");
    let output = Command::new("setpriv")
        .args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
            "--pdeathsig".into(),
            "KILL".into(),
            "--".into(),
            sqltun.display().to_string(),
        ])
        .args(["config", "-F"])
        .arg(&config)
        .arg("db.example.com")
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .expect("run sqltun config as nobody");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sqltun config failed: {stderr}");
    assert!(
        stdout.lines().any(|line| line == "port 2202"),
        "Match localuser nobody did not apply (the process saw another user):\n{stdout}\n{stderr}"
    );
}
