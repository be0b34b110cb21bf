//! Fault injection for the resilience tests: killing and restarting a bastion's sshd (also with a new
//! host key), taking a lab link down, restarting PostgreSQL, random packet loss with iptables'
//! `statistic` match inside a lab namespace, a delaying relay (the kernel has no `sch_netem`), and what a
//! running sqltun holds (its /proc entries and its SIGUSR1 stats line).
//!
//! Every process is found and signalled by pid (a namespace's pids, or the lab's own children), never
//! by name, and whatever is started here is owned by the lab, which stops it on drop.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::lab::{Lab, make_dir, namespace_pids};
use super::postgres::Postgres;
use super::process::{
    Collected, Signal, account_ids, as_account, first_line, in_namespace, run, run_quietly, send_signal, tied_to_test,
    wait_until,
};
use super::sqltun::Sqltun;
use super::sshd::{KeyKind, KeyPair, Sshd};

const SSHD: &str = "/usr/sbin/sshd";
const PYTHON: &str = "/usr/bin/python3";
const IPTABLES: &str = "/usr/sbin/iptables";
const RELAY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/relay.py");

/// Bound on killed processes disappearing from their namespace.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on PostgreSQL's fast shutdown and on it accepting connections again.
const POSTGRES_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on the relay printing its port.
const RELAY_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on sqltun answering SIGUSR1 with its stats line.
const STATS_TIMEOUT: Duration = Duration::from_secs(10);

/// The network device in `namespace` that carries `addr` (`ip -o -4 addr show`).
fn device_with_addr(namespace: &str, addr: Ipv4Addr) -> String {
    let output = run(Command::new("ip").args(["-n", namespace, "-o", "-4", "addr", "show"]));
    let text = String::from_utf8_lossy(&output.stdout);
    let wanted = format!("{addr}/");
    text.lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let inet = fields.iter().position(|f| *f == "inet")?;
            fields.get(inet + 1)?.starts_with(&wanted).then(|| {
                fields[1]
                    .trim_end_matches(':')
                    .split('@')
                    .next()
                    .unwrap_or(fields[1])
                    .to_string()
            })
        })
        .unwrap_or_else(|| panic!("no device with {addr} in namespace {namespace}:\n{text}"))
}

impl Lab {
    /// Kills (SIGKILL) every process in bastion `hop`'s namespace — sshd's listener and the
    /// per-connection children it forked (which rewrite their command lines, so they are found by
    /// namespace, not by name) — and waits until none is left. Returns the pids it killed.
    pub fn kill_bastion(&self, hop: usize) -> Vec<u32> {
        let namespace = self.bastion_namespace(hop);
        let mut killed = Vec::new();
        wait_until(&format!("every process in {namespace} to die"), KILL_TIMEOUT, || {
            let pids = namespace_pids(&namespace);
            if pids.is_empty() {
                return Some(());
            }
            for pid in pids {
                send_signal(pid, Signal::Kill);
                if !killed.contains(&pid) {
                    killed.push(pid);
                }
            }
            // Reap the lab's own children (the listener), so they do not linger as zombies.
            for pid in &killed {
                let _ = self.exit_status(*pid);
            }
            None
        });
        killed
    }

    /// Starts sshd again on `sshd`'s bastion with the very same configuration (address, port, host keys,
    /// authorized keys), as after a reboot, and waits until it listens. For an sshd started by
    /// `start_sshd_on` without a custom PAM service; the old one must be gone (`kill_bastion`).
    pub fn restart_sshd(&self, sshd: &Sshd) -> Sshd {
        let config = sshd_dir(sshd).join("sshd_config");
        self.run_sshd(sshd, &config, sshd.host_keys.clone())
    }

    /// As `restart_sshd`, but the bastion comes back with a new ed25519 host key (a rebuilt machine, or
    /// an attacker in the middle): the same configuration with its `HostKey` lines replaced.
    pub fn restart_sshd_with_new_host_key(&self, sshd: &Sshd) -> Sshd {
        let dir = self.fresh_path(&format!("sshd-hop{}-rekeyed", sshd.hop), "");
        make_dir(&dir, 0o755);
        let key = KeyPair::generate(dir.join("ssh_host_ed25519_key"), KeyKind::Ed25519, None);
        let old = sshd_dir(sshd).join("sshd_config");
        let text = fs::read_to_string(&old).unwrap_or_else(|e| panic!("read {}: {e}", old.display()));
        let mut config: String = text
            .lines()
            .filter(|line| !line.starts_with("HostKey "))
            .map(|line| format!("{line}\n"))
            .collect();
        config.push_str(&format!("HostKey {}\n", key.private.display()));
        let path = dir.join("sshd_config");
        fs::write(&path, config).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self.run_sshd(sshd, &path, vec![key])
    }

    fn run_sshd(&self, old: &Sshd, config: &Path, host_keys: Vec<KeyPair>) -> Sshd {
        let log = self.fresh_path(&format!("sshd-hop{}-restarted", old.hop), ".log");
        self.run_sshd_until_listening(old.hop, " (restarted)", Path::new(SSHD), config, &log, old.port);
        Sshd {
            hop: old.hop,
            addr: old.addr,
            port: old.port,
            host_keys,
            log,
        }
    }

    /// Takes the link in front of bastion `hop` (the one it is dialled over; hop 0: the client's link to
    /// B1) down or up, at the bastion's end. While it is down, packets on it vanish without an answer
    /// (the near end keeps its address and route, with no carrier), as when a network path fails: the
    /// TCP connections across it are not told, and new connections fail with "No route to host" once
    /// ARP gives up (a few seconds), as on a real LAN.
    pub fn set_bastion_link(&self, hop: usize, up: bool) {
        let namespace = self.bastion_namespace(hop);
        let device = device_with_addr(&namespace, self.hop_addr(hop));
        run(Command::new("ip").args(["-n", &namespace, "link", "set", &device, if up { "up" } else { "down" }]));
    }

    /// Drops each packet entering `namespace` (on any device but loopback) with `probability`, with
    /// iptables' `statistic` match (`-m statistic --mode random`): loss on the wire, as the receiver
    /// sees it. The rule goes with the namespace.
    pub fn drop_incoming(&self, namespace: &str, probability: f64) {
        iptables(namespace, &["-A", "INPUT", "!", "-i", "lo"], probability);
    }

    /// Drops each packet leaving `namespace` (on any device but loopback) with `probability`. Unlike
    /// `drop_incoming`, the sending kernel sees such a drop as a failed transmission (EPERM) and its TCP
    /// sends the segment again later: this delays more than it loses.
    pub fn drop_outgoing(&self, namespace: &str, probability: f64) {
        iptables(namespace, &["-A", "OUTPUT", "!", "-o", "lo"], probability);
    }

    /// How many packets the `drop_incoming`/`drop_outgoing` rules of `namespace` dropped so far.
    pub fn dropped_packets(&self, namespace: &str) -> u64 {
        let output = run(in_namespace(namespace, IPTABLES).args(["-w", "-L", "-n", "-v", "-x"]));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| line.contains("DROP") && line.contains("statistic"))
            .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    /// Starts the delaying relay (`relay.py`) on 127.0.0.1 in the root namespace, forwarding to `target`
    /// and holding every chunk in each direction for `min_ms..=max_ms`; returns where it listens.
    pub fn start_delay_relay(&self, target: SocketAddrV4, min_ms: u32, max_ms: u32) -> SocketAddr {
        let log = self.fresh_path("relay", ".log");
        self.add_log("relay.py", &log);
        let stderr = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let mut child = tied_to_test(PYTHON)
            .args(["-u", RELAY, "127.0.0.1"])
            .arg(target.ip().to_string())
            .arg(target.port().to_string())
            .arg(min_ms.to_string())
            .arg(max_ms.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start relay.py: {e}"));
        let stdout = child.stdout.take().expect("relay.py stdout");
        self.adopt(child, Signal::Term);
        let collected = Collected::start(stdout);
        let line = first_line("relay.py", &collected, RELAY_READY_TIMEOUT, || self.diagnostics());
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("relay.py printed {line:?}, not a port"));
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    /// Stops PostgreSQL (fast shutdown: SIGINT to the postmaster, which ends every session) and starts it
    /// again on the same data directory, address and port; waits until it accepts connections.
    pub fn restart_postgres(&self, postgres: &Postgres) {
        let namespace = self.target_namespace();
        // The postmaster is the postgres process that still has its `-D` argument (backends rewrite
        // their command lines to `postgres: …`).
        let (pid, argv) = namespace_pids(&namespace)
            .into_iter()
            .find_map(|pid| {
                let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let argv: Vec<OsString> = raw
                    .split(|&b| b == 0)
                    .filter(|part| !part.is_empty())
                    .map(|part| OsString::from_vec(part.to_vec()))
                    .collect();
                let program = Path::new(argv.first()?);
                (program.file_name()? == "postgres" && argv.iter().any(|a| a == "-D")).then_some((pid, argv))
            })
            .unwrap_or_else(|| panic!("no postmaster in {namespace}"));
        let data = argv
            .iter()
            .skip_while(|a| *a != "-D")
            .nth(1)
            .map(PathBuf::from)
            .expect("the postmaster's -D argument");
        let root = data.parent().expect("the data directory has a parent").to_path_buf();

        send_signal(pid, Signal::Int);
        wait_until("postgres to finish its fast shutdown", POSTGRES_TIMEOUT, || {
            self.exit_status(pid).map(|_| ())
        });

        let (uid, gid) = account_ids("postgres");
        let log = root.join("postgres.log");
        let stderr = OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
        let started = self.spawn(
            "postgres (restarted)",
            as_account(
                Command::new("ip").args(["netns", "exec", &namespace, "setpriv"]),
                uid,
                gid,
            )
            .args(&argv)
            .current_dir(&root)
            .stdout(Stdio::null())
            .stderr(stderr),
            Signal::Quit,
        );
        self.wait_for_postgres("the restarted postgres", started, postgres.addr, &log);
    }
}

/// The directory `start_sshd_on` made for this sshd (its config, host keys and log live there).
fn sshd_dir(sshd: &Sshd) -> PathBuf {
    sshd.log.parent().expect("sshd's log is in its directory").to_path_buf()
}

fn iptables(namespace: &str, rule: &[&str], probability: f64) {
    assert!(
        Path::new(IPTABLES).exists(),
        "{IPTABLES} is missing: run scripts/install-test-deps"
    );
    run(in_namespace(namespace, IPTABLES)
        .arg("-w")
        .args(rule)
        .args(["-m", "statistic", "--mode", "random", "--probability"])
        .arg(probability.to_string())
        .args(["-j", "DROP"]));
}

/// What a process holds, from /proc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStats {
    /// Open file descriptors (`/proc/PID/fd`).
    pub fds: usize,
    /// Threads (`Threads:` in `/proc/PID/status`).
    pub threads: usize,
    /// Resident memory in KiB (`VmRSS:`).
    pub rss_kib: u64,
}

/// `pid`'s open fds, threads and resident memory.
pub fn proc_stats(pid: u32) -> ProcStats {
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}"))
        .count();
    let status =
        fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    ProcStats {
        fds,
        threads: usize::try_from(field("Threads:")).expect("thread count"),
        rss_kib: field("VmRSS:"),
    }
}

/// sqltun's answer to SIGUSR1: `stats: open_connections=N accepted_total=M tasks=K chain=up|down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelStats {
    pub open_connections: u64,
    pub accepted_total: u64,
    pub tasks: u64,
    pub chain_up: bool,
}

const STATS_MARKER: &str = "stats: open_connections=";

/// Sends SIGUSR1 to a running sqltun and returns the stats line it prints on stderr in answer.
pub fn tunnel_stats(tunnel: &Sqltun) -> TunnelStats {
    let count = |text: &str| text.lines().filter(|line| line.contains(STATS_MARKER)).count();
    let before = count(&tunnel.stderr());
    let pid = tunnel.pid();
    let sent = run_quietly(Command::new("/bin/kill").args(["-s", "USR1", &pid.to_string()]))
        .is_some_and(|output| output.status.success());
    if !sent {
        tunnel.fail(&format!("kill -s USR1 {pid} failed"));
    }
    let Some(line) = super::process::poll_until(STATS_TIMEOUT, || {
        let text = tunnel.stderr();
        (count(&text) > before).then(|| {
            text.lines()
                .filter(|line| line.contains(STATS_MARKER))
                .nth(before)
                .map(str::to_string)
        })?
    }) else {
        tunnel.fail(&format!("no stats line on stderr within {STATS_TIMEOUT:?} of SIGUSR1"))
    };
    let value = |key: &str| -> Option<&str> {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    };
    let number = |key: &str| -> u64 {
        value(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| tunnel.fail(&format!("no {key}=N in the stats line {line:?}")))
    };
    TunnelStats {
        open_connections: number("open_connections"),
        accepted_total: number("accepted_total"),
        tasks: number("tasks"),
        chain_up: match value("chain") {
            Some("up") => true,
            Some("down") => false,
            other => tunnel.fail(&format!("chain={other:?} in the stats line {line:?}")),
        },
    }
}
