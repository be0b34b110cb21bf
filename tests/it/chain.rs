//! `sqltun connect` and `sqltun config` through chains of bastions: OpenSSH's sshd in each namespace of
//! root ↔ B1 ↔ … ↔ Bn ↔ D, where each node reaches only its neighbours, so a target in D is reachable only
//! by dialling B1, then B2 through B1, and so on. Covers ProxyJump and `-J` (aliases, nested aliases,
//! literal hops, loops), per-hop authentication and host keys, errors that name the failing hop,
//! ProxyCommand with OpenSSH's own client as a hop's transport, and real traffic through the chain.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    Chain, EXIT_TIMEOUT, KeyKind, KeyPair, Lab, MarkedProcesses, Signal, Sqltun, SqltunCommand, SshdOptions,
    TEST_PASSWORD, TEST_USER, TempHome, Tripwire, assert_download_intact, assert_hop_failed, assert_logged,
    assert_upload_intact, echo_concurrently, error_line, free_local_port, local, only_methods, poll_until, psql,
};

/// 100 MiB, for the bulk transfers.
const BULK: u64 = 100 * 1024 * 1024;

/// Bound on a process sqltun started (a ProxyCommand) going away after sqltun exits.
const CHILD_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on a line that is already on its way reaching sqltun's stderr as the tests collect it.
const STDERR_TIMEOUT: Duration = Duration::from_secs(5);

/// Slack on top of ConnectTimeout for "gave up in time" (a debug build on a busy CI machine).
const TIMEOUT_SLACK: Duration = Duration::from_secs(10);

/// The chain tests' ssh_config files and commands, for a `Chain` started with a key.
impl Chain {
    /// The `Host *` block a user ends their config with: the account and key for every hop, and no
    /// host key files but the given ones (so the machine's own never play a part).
    fn account_defaults(&self) -> String {
        format!(
            "Host *\n    User {TEST_USER}\n    IdentityFile {}\n    IdentitiesOnly yes\n    GlobalKnownHostsFile /dev/null\n",
            self.key().private.display()
        )
    }

    /// `account_defaults` plus the known_hosts file that pins every bastion.
    fn defaults(&self) -> String {
        format!(
            "{}    UserKnownHostsFile {}\n",
            self.account_defaults(),
            self.known_hosts.display()
        )
    }

    /// One Host block per bastion, named `aliases[hop]`, each but the first with `ProxyJump` to the one
    /// before: the last alias is a chain of nested aliases. Then the defaults.
    fn nested_config(&self, aliases: &[&str]) -> PathBuf {
        let mut text = String::new();
        for (hop, alias) in aliases.iter().enumerate() {
            text.push_str(&format!("Host {alias}\n    HostName {}\n", self.addr(hop)));
            if hop > 0 {
                text.push_str(&format!("    ProxyJump {}\n", aliases[hop - 1]));
            }
            text.push('\n');
        }
        text.push_str(&self.defaults());
        self.lab.ssh_config_file(&text)
    }

    /// `sqltun connect -F config --ssh dest`.
    fn connect(&self, config: &Path, dest: &str) -> SqltunCommand {
        self.lab.connect().ssh_config(config).args(["--ssh", dest])
    }

    /// `connect` with the `nested_config` of `aliases`, to the last of them.
    fn connect_nested(&self, aliases: &[&str]) -> SqltunCommand {
        let last = aliases.last().expect("at least one alias");
        self.connect(&self.nested_config(aliases), last)
    }

    /// `sqltun connect -F none -i KEY --known-hosts FILE`, for chains given as literal `user@addr` hops.
    fn connect_literal(&self) -> SqltunCommand {
        self.lab.connect().identity(self.key()).known_hosts(&self.known_hosts)
    }
}

/// Runs `sqltun config -F CONFIG ARGS…` (with `--json`), which must exit 0 and print one JSON object;
/// returns the finished run and the object.
fn config_json(lab: &Lab, config: &Path, args: &[&str]) -> (Sqltun, Value) {
    let mut run = lab.sqltun("config").ssh_config(config).args(args).spawn();
    run.assert_exit(0, EXIT_TIMEOUT);
    let json = serde_json::from_str(run.stdout().trim())
        .unwrap_or_else(|e| run.fail(&format!("stdout is not one JSON object: {e}")));
    (run, json)
}

/// Whether `ssh-keygen -F name -f file` finds `key` recorded under `name`.
fn recorded_under(file: &Path, name: &str, key: &KeyPair) -> bool {
    let found = Command::new("ssh-keygen")
        .args(["-F", name, "-f"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen -F");
    found.status.success() && String::from_utf8_lossy(&found.stdout).contains(&key.blob())
}

/// The everyday chain: `--ssh prod-db`, an alias whose ProxyJump names another alias. sqltun must dial
/// B1, reach B2 through a channel of B1, and forward to a target only B2 can reach.
#[test]
fn two_hop_chain_via_proxyjump_alias() {
    let chain = Chain::start(2);
    chain
        .connect_nested(&["b1", "prod-db"])
        .db(chain.targets.echo)
        .spawn_and_echo(b"through b1 to prod-db");
}

/// Nested aliases, as OpenSSH resolves them: prod-db jumps through b2, and b2 (alone in its list)
/// brings its own ProxyJump b1, so the chain is b1 -> b2 -> prod-db.
#[test]
fn three_hop_chain_via_nested_aliases() {
    let chain = Chain::start(3);
    chain
        .connect_nested(&["b1", "b2", "prod-db"])
        .db(chain.targets.echo)
        .spawn_and_echo(b"through b1 and b2 to prod-db");
}

/// `-J` on the command line works like `ssh -J`: items dialled in order, each through the one before,
/// both as aliases whose HostNames come from the config and as literal `user@addr` hops with no config
/// at all (`-F none`).
#[test]
fn three_hop_chain_via_jump_flag_with_aliases_and_literal_hops() {
    let chain = Chain::start(3);
    let config = chain.lab.ssh_config_file(&format!(
        "Host b1\n    HostName {}\n\nHost b2\n    HostName {}\n\nHost b3\n    HostName {}\n\n{}",
        chain.addr(0),
        chain.addr(1),
        chain.addr(2),
        chain.defaults()
    ));
    let (mut tunnel, _) = chain
        .connect(&config, "b3")
        .args(["-J", "b1,b2"])
        .db(chain.targets.echo)
        .spawn_and_echo(b"-J b1,b2 to b3");
    tunnel.stop(Signal::Term);

    let jumps = format!("{TEST_USER}@{},{TEST_USER}@{}", chain.addr(0), chain.addr(1));
    chain
        .connect_literal()
        .args(["-J", &jumps, "--ssh", &format!("{TEST_USER}@{}", chain.addr(2))])
        .db(chain.targets.echo)
        .spawn_and_echo(b"-J with literal hops and -F none");
}

/// Each hop authenticates with its own settings: hop 1 only with a key that exists only in ssh-agent,
/// hop 2 only with the key file its Host block names (IdentitiesOnly), hop 3 only with a password from
/// SQLTUN_SSH_PASSWORD_3. Each sshd accepts exactly one method and credential, and its log must show
/// that credential accepted.
#[test]
fn each_hop_authenticates_with_its_own_method() {
    let lab = Lab::with_bastions(3);
    let agent_key = lab.generate_key(KeyKind::Ed25519);
    let file_key = lab.generate_key(KeyKind::Ed25519);
    let hop1_keys = lab.authorized_keys_file(&[&agent_key]);
    let hop2_keys = lab.authorized_keys_file(&[&file_key]);
    // AuthenticationMethods, not Pubkey/PasswordAuthentication: the fixture sets those first, and sshd
    // keeps the first value; this also makes each sshd offer just the one method.
    let chain = Chain::with(lab, |hop| match hop {
        0 => SshdOptions {
            authorized_keys: Some(hop1_keys.clone()),
            extra_config: only_methods("publickey"),
            ..SshdOptions::default()
        },
        1 => SshdOptions {
            authorized_keys: Some(hop2_keys.clone()),
            extra_config: only_methods("publickey"),
            ..SshdOptions::default()
        },
        _ => SshdOptions {
            extra_config: only_methods("password"),
            ..SshdOptions::default()
        },
    });
    let socket = chain.lab.start_agent(&[&agent_key]);
    fs::remove_file(&agent_key.private).expect("remove the agent key's private file");
    let config = chain.lab.ssh_config_file(&format!(
        "Host b1\n    HostName {}\n\n\
         Host b2\n    HostName {}\n    ProxyJump b1\n    IdentityFile {}\n    IdentitiesOnly yes\n\n\
         Host prod-db\n    HostName {}\n    ProxyJump b2\n\n\
         Host *\n    User {TEST_USER}\n    UserKnownHostsFile {}\n    GlobalKnownHostsFile /dev/null\n",
        chain.addr(0),
        chain.addr(1),
        file_key.private.display(),
        chain.addr(2),
        chain.known_hosts.display()
    ));
    let (tunnel, _) = chain
        .connect(&config, "prod-db")
        .db(chain.targets.echo)
        .env("SSH_AUTH_SOCK", &socket)
        .env("SQLTUN_SSH_PASSWORD_3", TEST_PASSWORD)
        .spawn_and_echo(b"agent, key file, password");

    let accepted = [
        (
            0,
            format!("Accepted publickey for {TEST_USER}"),
            agent_key.fingerprint(),
        ),
        (1, format!("Accepted publickey for {TEST_USER}"), file_key.fingerprint()),
        (2, format!("Accepted password for {TEST_USER}"), String::new()),
    ];
    for (hop, method, fingerprint) in accepted {
        assert_logged(&tunnel, &chain.sshds[hop], &[&method, &fingerprint]);
    }
}

/// Host keys are verified per hop against that hop's own UserKnownHostsFile: with B1's and B3's keys
/// known but B2's not, and no terminal to ask, the chain stops at hop 2 (exit 4, naming `hop 2/3` and
/// its address) and records nothing. With accept-new the same chain works and B2's key lands in B2's
/// file under B2's name, where OpenSSH finds it; the other files stay as they were.
#[test]
fn unknown_host_key_on_hop_two_is_refused_then_accepted_new() {
    let chain = Chain::start(3);
    let known: Vec<PathBuf> = vec![
        chain.lab.known_hosts_for(&chain.sshds[0]),
        chain.lab.known_hosts_file(&[]),
        chain.lab.known_hosts_for(&chain.sshds[2]),
    ];
    let before: Vec<String> = known
        .iter()
        .map(|f| fs::read_to_string(f).expect("read known_hosts"))
        .collect();
    let config = chain.lab.ssh_config_file(&format!(
        "Host b1\n    HostName {}\n    UserKnownHostsFile {}\n\n\
         Host b2\n    HostName {}\n    ProxyJump b1\n    UserKnownHostsFile {}\n\n\
         Host prod-db\n    HostName {}\n    ProxyJump b2\n    UserKnownHostsFile {}\n\n{}",
        chain.addr(0),
        known[0].display(),
        chain.addr(1),
        known[1].display(),
        chain.addr(2),
        known[2].display(),
        chain.account_defaults()
    ));

    let (code, stderr) = chain
        .connect(&config, "prod-db")
        .db(chain.targets.echo)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_hop_failed(code, &stderr, 4, "hop 2/3", &chain.sshds[1].destination(), Some("b2"));
    assert_eq!(
        fs::read_to_string(&known[1]).expect("read known_hosts"),
        "",
        "a refused key was recorded"
    );

    let (mut tunnel, _) = chain
        .connect(&config, "prod-db")
        .args(["-o", "StrictHostKeyChecking=accept-new"])
        .db(chain.targets.echo)
        .spawn_and_echo(b"hop 2 accepted as new");
    tunnel.stop(Signal::Term);
    let b2 = &chain.sshds[1];
    assert!(
        recorded_under(&known[1], &b2.known_hosts_name(), b2.host_key(KeyKind::Ed25519)),
        "ssh-keygen -F {} does not find B2's key in {}:\n{}",
        b2.known_hosts_name(),
        known[1].display(),
        fs::read_to_string(&known[1]).unwrap_or_default()
    );
    for hop in [0, 2] {
        assert_eq!(
            fs::read_to_string(&known[hop]).expect("read known_hosts"),
            before[hop],
            "hop {}'s known_hosts changed, though its key was known",
            hop + 1
        );
    }
}

/// HostKeyAlias in a jump host's block: B2's key is recorded only under an alias name, and with
/// `HostKeyAlias` naming it, B2 passes StrictHostKeyChecking=yes. Without the alias the same file does
/// not vouch for B2 (the control: exit 4 at hop 2).
#[test]
fn host_key_alias_on_hop_two() {
    let chain = Chain::start(2);
    let alias = "bastion-two.internal";
    let known_hosts = chain.lab.known_hosts_file(&[
        chain.sshds[0].known_hosts_line(),
        format!("{alias} {}", chain.sshds[1].host_key(KeyKind::Ed25519).public_key()),
    ]);
    let config_with = |host_key_alias: &str| {
        chain.lab.ssh_config_file(&format!(
            "Host b1\n    HostName {}\n\nHost b2\n    HostName {}\n    ProxyJump b1\n{host_key_alias}\n\
             Host *\n    UserKnownHostsFile {}\n\n{}",
            chain.addr(0),
            chain.addr(1),
            known_hosts.display(),
            chain.account_defaults()
        ))
    };

    let with_alias = config_with(&format!("    HostKeyAlias {alias}\n"));
    let (mut tunnel, _) = chain
        .connect(&with_alias, "b2")
        .args(["-o", "StrictHostKeyChecking=yes"])
        .db(chain.targets.echo)
        .spawn_and_echo(b"known by its alias");
    tunnel.stop(Signal::Term);

    let without_alias = config_with("");
    let (code, stderr) = chain
        .connect(&without_alias, "b2")
        .args(["-o", "StrictHostKeyChecking=yes"])
        .db(chain.targets.echo)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_hop_failed(code, &stderr, 4, "hop 2/2", &chain.sshds[1].destination(), Some("b2"));
}

/// A hop 2 port where nothing listens: B1 reaches B2 but is refused, which is "unreachable" (exit 3)
/// and must name hop 2, not hop 1, which worked.
#[test]
fn refused_hop_two_is_unreachable_and_named() {
    let chain = Chain::start(2);
    let hop2 = format!("{TEST_USER}@{}:2200", chain.addr(1));
    let (code, stderr) = chain
        .connect_literal()
        .args(["-J", &format!("{TEST_USER}@{}", chain.addr(0)), "--ssh", &hop2])
        .db(chain.targets.echo)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    assert_hop_failed(code, &stderr, 3, "hop 2/2", &hop2, None);
}

/// A hop 2 that hop 1 cannot reach fails as unreachable (exit 3) naming hop 2, within ConnectTimeout
/// (3 s here) plus slack: both an address B1 has no route to (B1 fails at once) and one B1 routes to a
/// node that silently drops it (B1 waits forever; sqltun must not).
#[test]
fn hop_two_unreachable_from_hop_one_fails_within_connect_timeout() {
    let chain = Chain::start(2);
    let connect_timeout = Duration::from_secs(3);
    let no_route = chain.lab.blackhole_addr();
    let silent = Ipv4Addr::from(u32::from(no_route) - 1);
    chain.lab.drop_beyond(0, silent);
    for addr in [no_route, silent] {
        let hop2 = format!("{TEST_USER}@{addr}:22");
        let tunnel = chain
            .connect_literal()
            .args(["-J", &format!("{TEST_USER}@{}", chain.addr(0)), "--ssh", &hop2])
            .args(["-o", &format!("ConnectTimeout={}", connect_timeout.as_secs())])
            .db(chain.targets.echo)
            .spawn();
        let started = tunnel.started();
        let (code, stderr) = tunnel.run_to_exit(EXIT_TIMEOUT);
        let elapsed = started.elapsed();
        assert_hop_failed(code, &stderr, 3, "hop 2/2", &hop2, None);
        let bound = connect_timeout + TIMEOUT_SLACK;
        assert!(
            elapsed < bound,
            "hop 2 at {addr}: gave up after {elapsed:?}, more than ConnectTimeout + slack ({bound:?})\n{stderr}"
        );
    }
}

/// ProxyCommand with OpenSSH's own client as the transport: B2's Host block says
/// `ProxyCommand ssh … -W %h:%p %r@B1`, so sqltun talks SSH to B2 over that process's stdin and stdout
/// (the root namespace cannot reach B2 any other way), then forwards to D. The command's stderr is
/// sqltun's (ssh's `Authenticated to` line shows up there). On SIGTERM sqltun exits cleanly and the
/// `ssh -W` process goes with it.
#[test]
fn proxycommand_ssh_w_as_the_transport_and_gone_after_sigterm() {
    let chain = Chain::start(2);
    // The ssh client's own known_hosts file: a path that appears only in the ProxyCommand's arguments,
    // so it marks the processes sqltun starts.
    let marker = chain.lab.fresh_path("proxy-command-known-hosts", "");
    fs::write(&marker, format!("{}\n", chain.sshds[0].known_hosts_line())).expect("write known_hosts");
    let proxy_processes = MarkedProcesses {
        marker: marker.display().to_string(),
    };
    let config = chain.lab.ssh_config_file(&format!(
        "Host b2\n    HostName {}\n    ProxyCommand ssh -F none -i {} -o IdentitiesOnly=yes -o BatchMode=yes \
         -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
         -o LogLevel=VERBOSE -W %h:%p %r@{}\n    User {TEST_USER}\n\n{}",
        chain.addr(1),
        chain.key().private.display(),
        marker.display(),
        chain.addr(0),
        chain.defaults()
    ));
    let (mut tunnel, _) = chain
        .connect(&config, "b2")
        .db(chain.targets.echo)
        .spawn_and_echo(b"carried by ssh -W");
    if proxy_processes.pids().is_empty() {
        tunnel.fail("no process with the ProxyCommand's arguments runs while the tunnel is up");
    }
    let authenticated = format!("Authenticated to {}", chain.addr(0));
    if !tunnel.stderr_mentions(&[&authenticated], STDERR_TIMEOUT) {
        tunnel.fail(&format!(
            "the ProxyCommand's stderr (`{authenticated}`) is not on sqltun's stderr"
        ));
    }

    // wait_exit also fails if sqltun's stderr stays open, which the ProxyCommand inherits.
    tunnel.stop(Signal::Term);
    if poll_until(CHILD_EXIT_TIMEOUT, || proxy_processes.pids().is_empty().then_some(())).is_none() {
        tunnel.fail(&format!(
            "processes of the ProxyCommand still run {CHILD_EXIT_TIMEOUT:?} after sqltun exited: pids {:?}",
            proxy_processes.pids()
        ));
    }
}

/// The product's reason to exist, through three bastions: the real psql runs a query on a PostgreSQL
/// server that only B3 can reach.
#[test]
fn psql_query_through_three_hops() {
    let chain = Chain::start(3);
    let postgres = chain.lab.start_postgres();
    let mut tunnel = chain.connect_nested(&["b1", "b2", "prod-db"]).db(postgres.addr).spawn();
    let port = tunnel.wait_ready();
    assert_eq!(psql(port, "select 42", &chain.lab.home()).trim(), "42");
}

/// Bulk data through three layers of SSH (each hop's stream inside the previous hop's channel): 100 MiB
/// up to the sink and 100 MiB down from the source, both intact by sha256 and complete.
#[test]
fn bulk_100_mib_both_ways_through_three_hops() {
    let chain = Chain::start(3);
    let (sink_port, source_port) = (free_local_port(), free_local_port());
    let mut tunnel = chain
        .connect_nested(&["b1", "b2", "prod-db"])
        .db(chain.targets.sink)
        .args(["--local-port", &sink_port.to_string()])
        .db(chain.targets.source)
        .args(["--local-port", &source_port.to_string()])
        .spawn();
    tunnel.wait_ready_line();

    assert_upload_intact(&tunnel, local(sink_port), BULK);
    assert_download_intact(&tunnel, local(source_port), BULK);
}

/// A ProxyJump loop in the config is a configuration error (exit 2) that shows the loop as a chain
/// (`loop-a -> loop-b -> loop-c -> loop-a`), found before any connection is made, for `connect` and
/// `config` alike.
#[test]
fn proxyjump_loop_is_a_config_error_without_network() {
    let home = TempHome::new();
    let tripwire = Tripwire::new();
    let mut text = String::new();
    for (alias, next) in [("loop-a", "loop-b"), ("loop-b", "loop-c"), ("loop-c", "loop-a")] {
        text.push_str(&format!(
            "Host {alias}\n    HostName 127.0.0.1\n    Port {}\n    User {TEST_USER}\n    ProxyJump {next}\n\n",
            tripwire.port()
        ));
    }
    let config = home.path().join("ssh_config");
    fs::write(&config, text).expect("write the config");

    let runs = [
        home.connect().args(["--ssh", "loop-a", "--db", "127.0.0.1:7007"]),
        home.sqltun("config").arg("loop-a"),
    ];
    for command in runs {
        let mut run = command.ssh_config(&config).spawn();
        let code = run.wait_exit(EXIT_TIMEOUT);
        let stderr = run.stderr();
        assert_eq!(code, 2, "exit code; stderr:\n{stderr}");
        let line = error_line(&stderr);
        assert!(
            line.contains("loop-a -> loop-b -> loop-c -> loop-a"),
            "the error does not show the loop as a chain: {line}"
        );
        assert!(run.stdout().is_empty(), "stdout must stay empty: {:?}", run.stdout());
    }
    tripwire.assert_untouched();
}

/// `sqltun config` is how a person checks what a destination resolves to, so it must agree with
/// OpenSSH: for each alias of a nested chain, its hostname, user, port and proxyjump lines equal those of
/// `ssh -G` on the same file (which only resolves, never connects). `--json` lists every hop in dialling
/// order with where it is dialled, and `-J none` leaves only the destination.
#[test]
fn config_agrees_with_ssh_g_and_json_lists_the_hops_in_order() {
    // Nothing is started: the lab only provides addresses that lead nowhere outside it.
    let lab = Lab::with_bastions(3);
    let addrs: Vec<Ipv4Addr> = (0..3).map(|hop| lab.hop_addr(hop)).collect();
    let config = lab.ssh_config_file(&format!(
        "Host b1\n    HostName {}\n    User jump-one\n\n\
         Host b2\n    HostName {}\n    Port 2222\n    ProxyJump b1\n\n\
         Host prod-db\n    HostName {}\n    ProxyJump b2\n\n\
         Host *\n    User {TEST_USER}\n",
        addrs[0], addrs[1], addrs[2]
    ));
    let keys = ["hostname", "user", "port", "proxyjump"];
    let pick = |text: &str| -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|line| keys.contains(&line.split_whitespace().next().unwrap_or("")))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    for (hop, alias) in ["b1", "b2", "prod-db"].into_iter().enumerate() {
        let mut run = lab.sqltun("config").ssh_config(&config).arg(alias).spawn();
        run.assert_exit(0, EXIT_TIMEOUT);
        let ssh_g = Command::new("ssh")
            .args(["-G", "-F"])
            .arg(&config)
            .arg(alias)
            .env_clear()
            .env("HOME", lab.home())
            .stdin(Stdio::null())
            .output()
            .expect("run ssh -G");
        assert!(
            ssh_g.status.success(),
            "ssh -G {alias} failed: {}",
            String::from_utf8_lossy(&ssh_g.stderr)
        );
        let reference = pick(&String::from_utf8_lossy(&ssh_g.stdout));
        // Anchors the comparison: ssh -G must print what the file says, or equal lists prove nothing.
        let hostname = format!("hostname {}", addrs[hop]);
        assert!(
            reference.contains(&hostname),
            "ssh -G {alias} lacks `{hostname}`: {reference:?}"
        );
        assert_eq!(
            pick(&run.stdout()),
            reference,
            "sqltun config {alias} (left) and ssh -G {alias} (right) disagree on {keys:?}"
        );
    }

    let (run, json) = config_json(&lab, &config, &["prod-db", "--json"]);
    let hops = json["hops"]
        .as_array()
        .unwrap_or_else(|| run.fail("the JSON has no `hops` array"));
    let summary: Vec<(u64, String, String, u64, String)> = hops
        .iter()
        .map(|hop| {
            (
                hop["index"].as_u64().unwrap_or(0),
                hop["name"].as_str().unwrap_or("").to_string(),
                hop["host"].as_str().unwrap_or("").to_string(),
                hop["port"].as_u64().unwrap_or(0),
                hop["user"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected = vec![
        (1, "b1".to_string(), addrs[0].to_string(), 22, "jump-one".to_string()),
        (2, "b2".to_string(), addrs[1].to_string(), 2222, TEST_USER.to_string()),
        (
            3,
            "prod-db".to_string(),
            addrs[2].to_string(),
            22,
            TEST_USER.to_string(),
        ),
    ];
    assert_eq!(
        summary, expected,
        "hops (index, name, host, port, user) in the JSON:\n{json:#}"
    );
    for hop in hops {
        if !hop["transport"].is_string() || !hop["settings"].is_object() {
            run.fail(&format!("a hop lacks `transport` or `settings`:\n{hop:#}"));
        }
    }

    let (run, json) = config_json(&lab, &config, &["prod-db", "-J", "none", "--json"]);
    let names: Vec<&str> = json["hops"]
        .as_array()
        .unwrap_or_else(|| run.fail("the JSON has no `hops` array"))
        .iter()
        .map(|hop| hop["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        ["prod-db"],
        "with -J none the chain is the destination alone:\n{json:#}"
    );
}

/// Connection pools through a jump host: 50 concurrent connections, all multiplexed over hop 2's
/// session, which itself runs inside one channel of hop 1 (two levels of flow control), each get
/// exactly their own 64 KiB back. A window or scheduling bug shows up as a mix-up or a stall.
#[test]
fn fifty_concurrent_echo_connections_through_two_hops() {
    let chain = Chain::start(2);
    let mut tunnel = chain.connect_nested(&["b1", "prod-db"]).db(chain.targets.echo).spawn();
    let port = tunnel.wait_ready();
    echo_concurrently(local(port), 50, 64 * 1024);
    assert!(tunnel.is_running(), "the tunnel exited under 50 concurrent connections");
}

/// `-o ProxyJump=USER@B1 --ssh USER@B2` is `ssh -o ProxyJump=… B2`: the jump list belongs to the
/// destination, so B2 is reached through B1. It used to reach the jump host too, which then had to be
/// reached through itself: "ProxyJump loop: B2 -> USER@B1 -> USER@B1".
#[test]
fn dash_o_proxyjump_is_the_destinations_jump_list() {
    let chain = Chain::start(2);
    chain
        .connect_literal()
        .args(["-o", &format!("ProxyJump={}", chain.sshds[0].destination())])
        .ssh(&chain.sshds[1])
        .db(chain.targets.echo)
        .spawn_and_echo(b"through -o ProxyJump");
}

/// `-o User` says who to log in as on the destination; the jump host keeps the user of its own config
/// (as ssh, where -o does not reach the jump hosts at all), and `-o User` beats the destination's
/// `user@`, as `ssh -G` and `sqltun config` say. With the one account the lab's sshds allow, the jump
/// keeping its user shows as hop 1 authenticating while the destination refuses `-o User=ghost`.
#[test]
fn dash_o_user_changes_the_destination_user_only() {
    let chain = Chain::start(2);
    let config = chain.lab.ssh_config_file(&format!(
        "Host b1\n    HostName {}\n    User {TEST_USER}\n\nHost prod-db\n    HostName {}\n    ProxyJump b1\n\n\
         Host *\n    IdentityFile {}\n    IdentitiesOnly yes\n    GlobalKnownHostsFile /dev/null\n    UserKnownHostsFile {}\n",
        chain.addr(0),
        chain.addr(1),
        chain.key().private.display(),
        chain.known_hosts.display()
    ));

    let (tunnel, _) = chain
        .connect(&config, "ghost@prod-db")
        .args(["-o", &format!("User={TEST_USER}")])
        .db(chain.targets.echo)
        .spawn_and_echo(b"-o User beats user@");
    assert_logged(
        &tunnel,
        &chain.sshds[1],
        &[&format!("Accepted publickey for {TEST_USER}")],
    );

    // Only what hop 1 logs from here on counts: the run above logged in there too.
    let before = chain.sshds[0].log_text().len();
    let (code, stderr) = chain
        .connect(&config, "prod-db")
        .args(["-o", "User=ghost", "--batch"])
        .db(chain.targets.echo)
        .spawn()
        .run_to_exit(EXIT_TIMEOUT);
    let destination = format!("ghost@{}:22", chain.addr(1));
    assert_hop_failed(code, &stderr, 5, "hop 2/2", &destination, Some("prod-db"));
    let accepted = format!("Accepted publickey for {TEST_USER}");
    chain.sshds[0].wait_for_log(|log| log.get(before..).is_some_and(|new| new.contains(&accepted)));
    let log = chain.sshds[0].log_text();
    assert!(
        log.get(before..)
            .is_some_and(|new| new.contains(&accepted) && !new.contains("ghost")),
        "hop 1 did not log in as {TEST_USER} from its own config:\n{stderr}\nhop 1 log:\n{log}"
    );
}

/// A `-o` directive that says how to connect reaches every hop: with `-F none` and no `-i` or
/// `--known-hosts`, `-o IdentityFile` is the only key both sshds accept and `-o UserKnownHostsFile` with
/// `-o StrictHostKeyChecking=yes` the only way either host key is trusted, so the tunnel works only if
/// both hops got all three. A file that pins B2 alone then fails on hop 1, under the same strictness.
#[test]
fn dash_o_how_directives_reach_every_hop() {
    let chain = Chain::start(2);
    let how = |known_hosts: &Path| {
        chain
            .lab
            .connect()
            .args(["-o", &format!("IdentityFile={}", chain.key().private.display())])
            .args(["-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes"])
            .args(["-o", &format!("UserKnownHostsFile={}", known_hosts.display())])
            .args(["-o", "GlobalKnownHostsFile=/dev/null", "--batch"])
            .args(["-J", &chain.sshds[0].destination()])
            .ssh(&chain.sshds[1])
            .db(chain.targets.echo)
    };
    let (tunnel, _) = how(&chain.known_hosts).spawn_and_echo(b"key and known_hosts from -o on both hops");
    for sshd in &chain.sshds {
        assert_logged(&tunnel, sshd, &[&format!("Accepted publickey for {TEST_USER}")]);
    }
    drop(tunnel);

    let only_b2 = chain.lab.known_hosts_file(&[chain.sshds[1].known_hosts_line()]);
    let (code, stderr) = how(&only_b2).spawn().run_to_exit(EXIT_TIMEOUT);
    assert_hop_failed(code, &stderr, 4, "hop 1/2", &chain.sshds[0].destination(), None);
}
