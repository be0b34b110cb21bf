//! Background tunnels that register themselves: `sqltun ls` (text and JSON), `sqltun stop` by port and
//! `--all`, entries of dead or foreign processes never trusted, the state directory's checks, and the
//! entry following the chain's state and the open connections. Each test has a state directory of its
//! own (`XDG_RUNTIME_DIR`), so no test sees another's tunnels.

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    Bastion, Completed, EXIT_TIMEOUT, Lab, MarkedProcesses, SIGNAL_EXIT_TIMEOUT, Signal, SqltunCommand, Tripwire,
    accepts_connections, account_ids, assert_error, connect, echo_on, echo_roundtrip, free_local_port, local,
    poll_until, process_gone, send_signal, wait_until, write_file,
};

/// Bound on an entry reflecting a change (a connection opened or closed: half a second of settling; a
/// dead session noticed with 1 s keepalives and re-dialled once sshd is back).
const ENTRY_TIMEOUT: Duration = Duration::from_secs(20);

/// The stem of every background tunnel's `--log-file` in a test: it marks their command lines, so a
/// failing test kills what it left running (by pid).
const LOG_STEM: &str = "registry-bg";

/// A test's own state directory (`XDG_RUNTIME_DIR`), and how to run `ls` and `stop` against it.
struct Registry {
    runtime: PathBuf,
    home: PathBuf,
    lab_dir: PathBuf,
    started: std::sync::atomic::AtomicUsize,
    _cleanup: MarkedProcesses,
}

impl Registry {
    fn new(lab: &Lab) -> Registry {
        let runtime = lab.fresh_path("runtime", "");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&runtime)
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", runtime.display()));
        Registry {
            runtime,
            home: lab.home(),
            lab_dir: lab.dir().to_path_buf(),
            started: std::sync::atomic::AtomicUsize::new(0),
            _cleanup: MarkedProcesses {
                marker: lab.dir().join(LOG_STEM).display().to_string(),
            },
        }
    }

    /// `$XDG_RUNTIME_DIR/sqltun`.
    fn state_dir(&self) -> PathBuf {
        self.runtime.join("sqltun")
    }

    /// `sqltun ARGS…` with this state directory, in the lab's empty HOME (so no `sqltun.toml` of a
    /// directory above the test's is found).
    fn sqltun(&self, args: &[&str]) -> SqltunCommand {
        SqltunCommand::new(&self.home)
            .args(args)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .current_dir(&self.home)
    }

    /// Runs `sqltun ARGS…` to its end: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        run(self.sqltun(args))
    }

    /// `sqltun ls --json`, checked to succeed; the `tunnels` array.
    fn listed(&self) -> Vec<Value> {
        self.listed_in(&self.home)
    }

    /// `sqltun ls --json` run in `dir` (a project directory: its saved tunnels are listed too).
    fn listed_in(&self, dir: &Path) -> Vec<Value> {
        let (code, stdout, stderr) = run(self.sqltun(&["ls", "--json"]).current_dir(dir));
        assert_eq!(code, 0, "sqltun ls --json failed:\n{stderr}");
        let document: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("ls --json is not one JSON document ({e}):\n{stdout}"));
        document["tunnels"]
            .as_array()
            .unwrap_or_else(|| panic!("no tunnels array:\n{stdout}"))
            .clone()
    }

    /// The listed tunnel with this pid, once `probe` accepts it (bounded); fails the test with the list.
    fn wait_for_entry(&self, pid: u32, what: &str, probe: impl Fn(&Value) -> bool) -> Value {
        let mut last = Vec::new();
        poll_until(ENTRY_TIMEOUT, || {
            last = self.listed();
            last.iter().find(|t| t["pid"] == pid && probe(t)).cloned()
        })
        .unwrap_or_else(|| panic!("no entry for pid {pid} with {what} within {ENTRY_TIMEOUT:?}: {last:#?}"))
    }

    /// The entry files in the state directory.
    fn entry_files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.state_dir())
            .map(|listing| {
                listing
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| name.ends_with(".tunnel"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// `command` as a background tunnel with `--output json` registering here; returns its pid and ports.
    fn start(&self, command: SqltunCommand) -> (u32, Vec<u16>) {
        let completed = self.start_completed(command);
        assert_eq!(
            completed.code, 0,
            "the background start failed; stdout:\n{}",
            completed.stdout
        );
        ready_events(&completed.stdout)
    }

    /// `command` as a background tunnel (`--output json`, a log file that marks it), run to its return.
    fn start_completed(&self, command: SqltunCommand) -> Completed {
        self.background(command.args(["--output", "json"])).0
    }

    /// `command` with `--background` and a log file that marks it, run to its return; its stderr too.
    fn background(&self, command: SqltunCommand) -> (Completed, String) {
        let (command, stderr) = self.background_command(command);
        let completed = command.run_with_stderr_file(&stderr, EXIT_TIMEOUT);
        (completed, fs::read_to_string(&stderr).unwrap_or_default())
    }

    /// `command` with `--background` and a log file that marks it, and the file its stderr should go to.
    fn background_command(&self, command: SqltunCommand) -> (SqltunCommand, PathBuf) {
        let n = self.started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.lab_dir.join(format!("{LOG_STEM}-{n}.log"));
        let command = command
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .args(["--background", "--log-file"])
            .arg(&log);
        (command, self.lab_dir.join(format!("{LOG_STEM}-{n}.stderr")))
    }

    /// A project directory whose `sqltun.toml` saves `prod` (the echo target through the bastion, with
    /// its key and known_hosts) and `staging` (the sink target, never started).
    fn project(&self, s: &Bastion) -> PathBuf {
        let project = self.lab_dir.join("project");
        fs::create_dir_all(&project).expect("mkdir project");
        let text = format!(
            "[tunnels.prod]\nssh = {ssh:?}\ndb = {echo:?}\nidentity = {key:?}\nknown_hosts = {known:?}\n\n\
             [tunnels.staging]\nssh = {ssh:?}\ndb = {sink:?}\nlocal_port = 15999\n",
            ssh = s.sshd.destination(),
            echo = s.targets.echo.to_string(),
            sink = s.targets.sink.to_string(),
            key = s.key().private.display().to_string(),
            known = s.known_hosts.display().to_string(),
        );
        write_file(&project.join("sqltun.toml"), &text, 0o644);
        project
    }

    /// `sqltun connect -F none NAME` in `project`, registering here (the caller adds `--background`).
    fn connect_named(&self, project: &Path, name: &str) -> SqltunCommand {
        self.sqltun(&["connect", "-F", "none", name]).current_dir(project)
    }
}

/// Runs `command` to its end: (exit code, stdout, stderr).
fn run(command: SqltunCommand) -> (i32, String, String) {
    let mut sqltun = command.spawn();
    let code = sqltun.wait_exit(EXIT_TIMEOUT);
    (code, sqltun.stdout(), sqltun.stderr())
}

/// The pid and local ports in `--output json` ready events (one line per target).
fn ready_events(stdout: &str) -> (u32, Vec<u16>) {
    let events: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(!events.is_empty(), "no ready event on stdout");
    let pid = events[0]["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or_else(|| panic!("no pid in {}", events[0]));
    let ports = events
        .iter()
        .map(|e| {
            e["local_port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or_else(|| panic!("no local_port in {e}"))
        })
        .collect();
    (pid, ports)
}

/// Field 22 of /proc/PID/stat: the process's start time.
fn start_time(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19)?.parse().ok())
        .unwrap_or_else(|| panic!("no start time in {stat}"))
}

/// The lines of stderr that start with `sqltun: stopped`.
fn stopped_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("sqltun: stopped")).collect()
}

// ---------------------------------------------------------------------------------------------------
// Listing and stopping

/// Two background tunnels (one with two targets) are listed for people and for scripts with their pid,
/// local addresses, targets, hops, state, uptime and open connections; `stop PORT` stops the one
/// listening there (and waits for it), `stop --all` the rest, and a port nothing listens on is exit 12.
#[test]
fn background_tunnels_are_listed_and_stopped() {
    let s = Bastion::start();
    let registry = Registry::new(&s.lab);
    let (first, first_ports) = registry.start(s.connect_with_key().db(s.targets.echo));
    let (second, second_ports) = registry.start(s.connect_with_key().db(s.targets.echo).db(s.targets.source));
    assert_ne!(first, second);
    assert_eq!(second_ports.len(), 2);
    echo_roundtrip(local(first_ports[0]), b"first");
    echo_roundtrip(local(second_ports[0]), b"second");

    let listed = registry.listed();
    assert_eq!(listed.len(), 2, "{listed:#?}");
    let one = listed
        .iter()
        .find(|t| t["pid"] == first)
        .expect("the first tunnel is listed");
    assert_eq!(one["name"], Value::Null);
    assert_eq!(one["state"], "up");
    assert_eq!(one["open_connections"], 0);
    assert!(one["uptime_secs"].is_u64() && one["started_at"].is_u64(), "{one}");
    assert_eq!(one["hops"], serde_json::json!([s.sshd.destination()]));
    assert_eq!(
        one["forwards"],
        serde_json::json!([{
            "local_addr": format!("127.0.0.1:{}", first_ports[0]),
            "local_host": "127.0.0.1",
            "local_port": first_ports[0],
            "local_socket": null,
            "target": s.targets.echo.to_string(),
        }])
    );
    assert!(one["log_file"].as_str().is_some_and(|l| l.contains(LOG_STEM)), "{one}");
    let two = listed
        .iter()
        .find(|t| t["pid"] == second)
        .expect("the second tunnel is listed");
    assert_eq!(two["forwards"][1]["local_port"], second_ports[1]);
    assert_eq!(two["forwards"][1]["target"], s.targets.source.to_string());

    let (code, table, stderr) = registry.run(&["ls"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "header, two tunnels, the second's second target:\n{table}"
    );
    let header = lines[0];
    for (column, title) in ["NAME", "PID", "LOCAL", "TARGET", "STATE", "UPTIME", "CONNS", "VIA"]
        .iter()
        .enumerate()
    {
        assert_eq!(header.split_whitespace().nth(column), Some(*title), "{table}");
    }
    let row = lines
        .iter()
        .find(|l| l.contains(&format!(" {first} ")))
        .unwrap_or_else(|| panic!("no row for pid {first}:\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    let local_addr = format!("127.0.0.1:{}", first_ports[0]);
    let target = s.targets.echo.to_string();
    let destination = s.sshd.destination();
    assert_eq!(cells[0], "-", "{table}");
    assert_eq!(&cells[2..5], [local_addr.as_str(), target.as_str(), "up"], "{table}");
    assert_eq!(&cells[6..], ["0", destination.as_str()], "{table}");
    let target_column = header.find("TARGET").expect("TARGET");
    let continuation = format!("127.0.0.1:{}", second_ports[1]);
    let extra = lines
        .iter()
        .find(|l| l.trim_start().starts_with(&continuation))
        .unwrap_or_else(|| panic!("no line for the second target:\n{table}"));
    assert_eq!(
        extra.find(&s.targets.source.to_string()),
        Some(target_column),
        "columns do not line up:\n{table}"
    );

    let port = first_ports[0].to_string();
    let (code, stdout, stderr) = registry.run(&["stop", &port]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "", "stop writes nothing on stdout");
    assert_eq!(
        stopped_lines(&stderr),
        [format!("sqltun: stopped pid {first} (127.0.0.1:{port})").as_str()],
        "{stderr}"
    );
    assert!(process_gone(first), "stop returned while pid {first} still runs");
    assert!(!accepts_connections(first_ports[0]));
    let listed = registry.listed();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["pid"], second);
    echo_roundtrip(local(second_ports[0]), b"the other one is untouched");

    let (code, _, stderr) = registry.run(&["stop", &port]);
    assert_error(
        code,
        &stderr,
        12,
        &[&format!("listens on local port {port}"), "sqltun ls"],
    );

    let (code, _, stderr) = registry.run(&["stop", "--all"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stopped_lines(&stderr).len(), 1, "{stderr}");
    assert!(process_gone(second));
    assert!(registry.listed().is_empty());
    assert!(registry.entry_files().is_empty(), "{:?}", registry.entry_files());

    let (code, stdout, stderr) = registry.run(&["ls"]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    let (code, _, stderr) = registry.run(&["stop", "--all"]);
    assert_eq!(code, 0, "--all with nothing running is not an error: {stderr}");
    let (code, _, stderr) = registry.run(&["stop", "prod"]);
    assert_error(code, &stderr, 12, &["no running tunnel is named prod"]);
}

/// The entry follows the tunnel: open connections are counted (after they settle), and the state is
/// `reconnecting` while the bastion is down and `up` again once the chain is back.
#[test]
fn the_entry_follows_connections_and_the_chain() {
    let s = Bastion::start();
    let registry = Registry::new(&s.lab);
    let (pid, ports) = registry.start(
        s.connect_with_key()
            .args(["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2"])
            .db(s.targets.echo),
    );
    let mut held: Vec<TcpStream> = (0..3)
        .map(|i| {
            let stream = connect(local(ports[0]));
            echo_on(&stream, format!("held {i}").as_bytes());
            stream
        })
        .collect();
    registry.wait_for_entry(pid, "3 open connections", |t| t["open_connections"] == 3);
    held.truncate(1);
    registry.wait_for_entry(pid, "1 open connection", |t| t["open_connections"] == 1);
    drop(held);
    registry.wait_for_entry(pid, "no open connections", |t| t["open_connections"] == 0);

    s.lab.kill_bastion(0);
    registry.wait_for_entry(pid, "state reconnecting", |t| t["state"] == "reconnecting");
    let _restarted = s.lab.restart_sshd(&s.sshd);
    registry.wait_for_entry(pid, "state up", |t| t["state"] == "up");
    echo_roundtrip(local(ports[0]), b"after the reconnect");

    let (code, _, stderr) = registry.run(&["stop", "--all"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(process_gone(pid));
}

/// A tunnel killed with SIGKILL cannot remove its entry: the next `ls` sees that its process is gone,
/// drops it from the list and removes the file.
#[test]
fn a_killed_tunnel_is_cleaned_from_the_list() {
    let s = Bastion::start();
    let registry = Registry::new(&s.lab);
    let (pid, _) = registry.start(s.connect_with_key().db(s.targets.echo));
    assert_eq!(registry.entry_files().len(), 1);
    assert!(send_signal(pid, Signal::Kill));
    wait_until("the killed tunnel to be gone", SIGNAL_EXIT_TIMEOUT, || {
        process_gone(pid).then_some(())
    });
    assert_eq!(registry.entry_files().len(), 1, "the killed tunnel removed its entry?");
    assert!(registry.listed().is_empty());
    assert!(registry.entry_files().is_empty(), "the stale entry is still there");
    let (code, _, stderr) = registry.run(&["stop", "--all"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stopped_lines(&stderr).is_empty(), "{stderr}");
}

/// Entries are never trusted blindly: one naming a live process of ours with another start time (its
/// pid reused) and one naming another user's process with its true start time are neither listed nor
/// signalled by `stop`, and both files are removed; the processes keep running.
#[test]
fn planted_entries_are_not_trusted() {
    let lab = Lab::new();
    let registry = Registry::new(&lab);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(registry.state_dir())
        .expect("create the state directory");
    let (uid, gid) = account_ids("nobody");
    let ours = lab.spawn(
        "sleep (ours)",
        Command::new("setpriv").args(["--pdeathsig", "KILL", "--", "sleep", "600"]),
        Signal::Kill,
    );
    let theirs = lab.spawn(
        "sleep (nobody)",
        Command::new("setpriv").args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            "--pdeathsig",
            "KILL",
            "--",
            "sleep",
            "600",
        ]),
        Signal::Kill,
    );
    wait_until("both sleeps to run", EXIT_TIMEOUT, || {
        let running =
            |pid: u32| fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with("sleep"));
        (running(ours) && running(theirs)).then_some(())
    });
    let plant = |pid: u32, start: u64, name: &str| {
        let entry = serde_json::json!({
            "name": name, "pid": pid, "start_time": start, "started_at": 1_700_000_000u64,
            "listening": [{"local_addr": "127.0.0.1:5433", "local_socket": null, "target": "db:5432"}],
            "hops": ["deploy@bastion:22"], "state": "up", "open_connections": 0,
            "fingerprint": "0", "log_file": null,
        });
        let path = registry.state_dir().join(format!("{pid}-{start}.tunnel"));
        fs::write(&path, entry.to_string()).expect("plant an entry");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    };
    let plant_both = || {
        plant(ours, start_time(ours) + 1, "reused");
        plant(theirs, start_time(theirs), "foreign");
        assert_eq!(registry.entry_files().len(), 2);
    };
    for args in [&["stop", "reused"][..], &["stop", "foreign"], &["stop", "5433"]] {
        plant_both();
        let (code, _, stderr) = registry.run(args);
        assert_error(code, &stderr, 12, &["no running tunnel"]);
        assert!(registry.entry_files().is_empty(), "{:?}", registry.entry_files());
    }
    plant_both();
    assert!(registry.listed().is_empty());
    assert!(registry.entry_files().is_empty(), "{:?}", registry.entry_files());
    plant_both();
    let (code, _, stderr) = registry.run(&["stop", "--all"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stopped_lines(&stderr).is_empty(), "{stderr}");
    assert!(registry.entry_files().is_empty(), "{:?}", registry.entry_files());
    assert!(
        !process_gone(ours) && !process_gone(theirs),
        "a planted entry's process was signalled"
    );
}

/// A state directory that is open to others, or a symbolic link, is refused (exit 2, naming it and
/// the fix) by `ls`, `stop` and `connect --background`, which fails before it dials anything.
#[test]
fn an_unsafe_state_directory_is_refused() {
    let lab = Lab::new();
    let registry = Registry::new(&lab);
    let dir = registry.state_dir();
    fs::DirBuilder::new().mode(0o700).create(&dir).expect("mkdir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    let tripwire = Tripwire::new();
    let shown = dir.display().to_string();
    for args in [&["ls"][..], &["ls", "--json"], &["stop", "--all"]] {
        let (code, stdout, stderr) = registry.run(args);
        assert_error(code, &stderr, 2, &[&shown, "open to others (mode 0755)", "chmod 700"]);
        assert_eq!(stdout, "", "{args:?}");
    }
    let refused = |registry: &Registry, needle: &str| {
        let mut connect = registry
            .sqltun(&[
                "connect",
                "-F",
                "none",
                "--ssh",
                &tripwire.destination(),
                "--db",
                "10.0.0.1:5432",
            ])
            .arg("--background")
            .spawn();
        let code = connect.wait_exit(EXIT_TIMEOUT);
        assert_error(code, &connect.stderr(), 2, &[&shown, needle]);
        assert_eq!(connect.stdout(), "");
    };
    refused(&registry, "chmod 700");

    fs::remove_dir(&dir).expect("rmdir");
    let elsewhere = lab.fresh_path("elsewhere", "");
    fs::DirBuilder::new().mode(0o700).create(&elsewhere).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, &dir).expect("symlink");
    let (code, _, stderr) = registry.run(&["ls"]);
    assert_error(code, &stderr, 2, &[&shown, "symbolic link"]);
    refused(&registry, "symbolic link");
    tripwire.assert_untouched();
    assert!(is_empty(&elsewhere), "something was written through the link");
}

fn is_empty(dir: &Path) -> bool {
    fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

// ---------------------------------------------------------------------------------------------------
// Named tunnels: started once, listed with the configured ones, stopped by name

/// `sqltun connect prod --background` from the project's directory starts `prod` once: run again with
/// the same plan it prints the running tunnel's ready output, in whatever format is asked, and starts
/// nothing (it does not even dial: it works with the bastion down); with another local port it is an
/// error naming the running one and how to stop it. `ls` lists prod running and staging stopped;
/// `stop prod` stops it and `ls` then shows it stopped.
#[test]
fn a_named_tunnel_starts_once_and_stops_by_name() {
    let s = Bastion::start();
    let registry = Registry::new(&s.lab);
    let project = registry.project(&s);
    let (pid, ports) = registry.start(registry.connect_named(&project, "prod"));
    let port = ports[0];
    echo_roundtrip(local(port), b"prod");

    let (again, stderr) = registry.background(registry.connect_named(&project, "prod"));
    assert_eq!((again.code, again.stdout.clone()), (0, format!("{port}\n")), "{stderr}");
    assert!(
        stderr.contains(&format!("prod (pid {pid}, 127.0.0.1:{port}) is already running")),
        "{stderr}"
    );
    let (addr, _) = registry.background(registry.connect_named(&project, "prod").args(["--output", "addr"]));
    assert_eq!(addr.stdout, format!("127.0.0.1:{port}\n"));
    let (json, _) = registry.background(registry.connect_named(&project, "prod").args(["--output", "json"]));
    assert_eq!(ready_events(&json.stdout), (pid, vec![port]));
    let (env, _) = registry.background(registry.connect_named(&project, "prod").args(["--output", "env"]));
    assert!(
        env.stdout.contains(&format!("SQLTUN_PORT='{port}'\n")),
        "{}",
        env.stdout
    );

    let listed = registry.listed_in(&project);
    assert_eq!(listed.len(), 2, "prod running and staging stopped: {listed:#?}");
    assert_eq!(listed[0]["name"], "prod");
    assert_eq!(listed[0]["pid"], pid);
    assert_eq!(listed[0]["state"], "up");
    assert_eq!(listed[1]["name"], "staging");
    assert_eq!(listed[1]["state"], "stopped");
    assert_eq!(listed[1]["pid"], Value::Null);
    assert_eq!(listed[1]["forwards"][0]["local_port"], 15999);
    assert_eq!(listed[1]["forwards"][0]["target"], s.targets.sink.to_string());
    assert_eq!(listed[1]["hops"], serde_json::json!([s.sshd.destination()]));

    let other_port = free_local_port().to_string();
    let (different, stderr) = registry.background(
        registry
            .connect_named(&project, "prod")
            .args(["--local-port", &other_port]),
    );
    assert_error(
        different.code,
        &stderr,
        2,
        &[
            &format!("prod (pid {pid}, 127.0.0.1:{port}) is already running with different settings"),
            "sqltun stop prod",
        ],
    );
    assert_eq!(different.stdout, "");
    assert!(!accepts_connections(other_port.parse().expect("port")));

    s.lab.kill_bastion(0);
    let (offline, stderr) = registry.background(registry.connect_named(&project, "prod"));
    assert_eq!(
        (offline.code, offline.stdout),
        (0, format!("{port}\n")),
        "the running tunnel is answered without dialling: {stderr}"
    );
    assert_eq!(registry.entry_files().len(), 1, "a second tunnel registered");

    let (code, _, stderr) = registry.run(&["stop", "prod"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stopped_lines(&stderr),
        [format!("sqltun: stopped prod (pid {pid}, 127.0.0.1:{port})").as_str()],
        "{stderr}"
    );
    assert!(process_gone(pid));
    let (code, table, stderr) = run(registry.sqltun(&["ls"]).current_dir(&project));
    assert_eq!(code, 0, "{stderr}");
    let states: Vec<(String, String)> = table
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (cells[0].to_string(), cells[4].to_string())
        })
        .collect();
    assert_eq!(
        states,
        [
            ("prod".to_string(), "stopped".to_string()),
            ("staging".to_string(), "stopped".to_string())
        ],
        "{table}"
    );
    let (code, _, stderr) = registry.run(&["stop", "prod"]);
    assert_error(code, &stderr, 12, &["no running tunnel is named prod"]);
}

/// Two `connect prod --background` started at the same moment do not both start prod: one starts it,
/// the other waits for it and prints the same port; one tunnel runs.
#[test]
fn concurrent_starts_of_one_name_start_one_tunnel() {
    let s = Bastion::start();
    let registry = Registry::new(&s.lab);
    let project = registry.project(&s);
    let starts: Vec<std::thread::JoinHandle<(Completed, String)>> = (0..2)
        .map(|_| {
            let (command, stderr) = registry.background_command(registry.connect_named(&project, "prod"));
            std::thread::spawn(move || {
                let completed = command.run_with_stderr_file(&stderr, EXIT_TIMEOUT);
                (completed, fs::read_to_string(&stderr).unwrap_or_default())
            })
        })
        .collect();
    let results: Vec<(Completed, String)> = starts.into_iter().map(|t| t.join().expect("start thread")).collect();
    for (completed, stderr) in &results {
        assert_eq!(completed.code, 0, "{stderr}");
    }
    assert_eq!(
        results[0].0.stdout, results[1].0.stdout,
        "both print the one tunnel's port"
    );
    let listed = registry.listed();
    let running: Vec<&Value> = listed.iter().filter(|t| t["state"] == "up").collect();
    assert_eq!(running.len(), 1, "{listed:#?}");
    let port: u16 = results[0].0.stdout.trim().parse().expect("a port");
    echo_roundtrip(local(port), b"one prod");
    let (code, _, stderr) = registry.run(&["stop", "--all"]);
    assert_eq!(code, 0, "{stderr}");
}

/// A named tunnel on a Unix socket is found again too: the second start prints the same socket path,
/// and `ls` shows the socket where a TCP tunnel shows its address.
#[test]
fn a_named_unix_socket_tunnel_is_found_again() {
    let s = Bastion::start();
    let registry = Registry::new(&s.lab);
    let project = registry.project(&s);
    let socket = s.lab.fresh_path("sockets", "").join("prod.sock");
    let start = || {
        registry.background(
            registry
                .connect_named(&project, "prod")
                .arg("--unix-socket")
                .arg(&socket),
        )
    };
    let (first, stderr) = start();
    assert_eq!(
        (first.code, first.stdout.as_str()),
        (0, format!("{}\n", socket.display()).as_str()),
        "{stderr}"
    );
    let (again, stderr) = start();
    assert_eq!(again.stdout, first.stdout, "{stderr}");
    let listed = registry.listed();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["forwards"][0]["local_socket"], socket.display().to_string());
    assert_eq!(listed[0]["forwards"][0]["local_addr"], Value::Null);
    let (code, _, stderr) = registry.run(&["stop", "prod"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!socket.exists(), "the socket outlived its tunnel");
}

/// A tunnel that does not exit within the bound after SIGTERM is reported with its pid and the way to
/// end it, exit 13, rather than waited for without end. (Here a process of ours that ignores SIGTERM,
/// registered by hand with its true start time.)
#[test]
fn a_tunnel_that_ignores_sigterm_is_reported() {
    let lab = Lab::new();
    let registry = Registry::new(&lab);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(registry.state_dir())
        .expect("create the state directory");
    let stubborn = lab.spawn(
        "sh ignoring SIGTERM",
        Command::new("setpriv").args(["--pdeathsig", "KILL", "--", "sh", "-c", "trap '' TERM; exec sleep 600"]),
        Signal::Kill,
    );
    wait_until("sleep to run", EXIT_TIMEOUT, || {
        fs::read_to_string(format!("/proc/{stubborn}/cmdline"))
            .is_ok_and(|c| c.starts_with("sleep"))
            .then_some(())
    });
    let start = start_time(stubborn);
    let entry = serde_json::json!({
        "name": "stubborn", "pid": stubborn, "start_time": start, "started_at": 1_700_000_000u64,
        "listening": [{"local_addr": "127.0.0.1:5433", "local_socket": null, "target": "db:5432"}],
        "hops": ["deploy@bastion:22"], "state": "up", "open_connections": 0,
        "fingerprint": "0", "log_file": null,
    });
    let path = registry.state_dir().join(format!("{stubborn}-{start}.tunnel"));
    write_file(&path, &entry.to_string(), 0o600);
    let (code, _, stderr) = registry.run(&["stop", "stubborn"]);
    assert_error(
        code,
        &stderr,
        13,
        &[
            &format!("stubborn (pid {stubborn}, 127.0.0.1:5433) did not exit within 10s of SIGTERM"),
            &format!("kill -KILL {stubborn}"),
        ],
    );
    assert!(!process_gone(stubborn));
}

/// Why: "sqltun connect prod" in one terminal, then "sqltun ls" and "sqltun stop prod" in another: a
/// named tunnel in the foreground registers too, so it is listed, a background start of the same name
/// answers with its port instead of opening a second tunnel, and stop ends it (exit 0, entry gone).
#[test]
fn a_named_tunnel_in_the_foreground_is_listed_and_stopped() {
    let s = Bastion::start();
    let registry = Registry::new(&s.lab);
    let project = registry.project(&s);
    let mut foreground = registry.connect_named(&project, "prod").spawn();
    let port = foreground.wait_ready();
    let entry = registry.wait_for_entry(foreground.pid(), "the foreground tunnel", |t| t["name"] == "prod");
    assert_eq!(entry["state"], "up", "{entry:#}");

    let (again, stderr) = registry.background(registry.connect_named(&project, "prod"));
    assert_eq!((again.code, again.stdout), (0, format!("{port}\n")), "{stderr}");

    let (code, _, stderr) = registry.run(&["stop", "prod"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("stopped prod (pid {}", foreground.pid())),
        "{stderr}"
    );
    assert_eq!(foreground.wait_exit(EXIT_TIMEOUT), 0);
    assert!(registry.entry_files().is_empty(), "{:?}", registry.entry_files());
}
