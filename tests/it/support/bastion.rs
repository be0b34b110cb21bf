//! The setups most tests start from: one bastion (`Bastion`) or a chain of them (`Chain`), each with sshd
//! running, the echo/sink/source targets behind the last one, a known_hosts file that pins every sshd's
//! host key and, unless the test authorizes keys of its own, an ed25519 key every sshd accepts.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use super::lab::Lab;
use super::sqltun::{Sqltun, SqltunCommand};
use super::sshd::{KeyKind, KeyPair, Sshd, SshdOptions};
use super::targets::Targets;

/// A lab with sshd on its bastion, the targets behind it, a known_hosts file that pins sshd's host key,
/// and (unless started `without_key`) an authorized ed25519 key.
#[derive(Debug)]
pub struct Bastion {
    pub lab: Lab,
    pub sshd: Sshd,
    pub targets: Targets,
    pub known_hosts: PathBuf,
    key: Option<KeyPair>,
}

impl Bastion {
    /// sshd with the default options, and an authorized key.
    pub fn start() -> Bastion {
        Bastion::with(|_, _| SshdOptions::default())
    }

    /// As `start`, with sshd options that may depend on the lab and the targets' addresses.
    pub fn with(options: impl FnOnce(&Lab, &Targets) -> SshdOptions) -> Bastion {
        let mut bastion = Bastion::without_key(Lab::new(), options);
        bastion.key = Some(bastion.lab.authorized_key(KeyKind::Ed25519));
        bastion
    }

    /// The targets and sshd with `options` in `lab` (which the caller may have put files in), and no key:
    /// the test authorizes what it needs.
    pub fn without_key(lab: Lab, options: impl FnOnce(&Lab, &Targets) -> SshdOptions) -> Bastion {
        let targets = lab.start_targets();
        let sshd = lab.start_sshd(options(&lab, &targets));
        let known_hosts = lab.known_hosts_for(&sshd);
        Bastion {
            lab,
            sshd,
            targets,
            known_hosts,
            key: None,
        }
    }

    /// The authorized key.
    pub fn key(&self) -> &KeyPair {
        self.key.as_ref().expect("this bastion was started without a key")
    }

    /// `sqltun SUBCOMMAND -F none --ssh … --known-hosts …`, no credentials.
    pub fn sqltun(&self, subcommand: &str) -> SqltunCommand {
        self.lab
            .sqltun(subcommand)
            .ssh(&self.sshd)
            .known_hosts(&self.known_hosts)
    }

    /// `sqltun connect -F none --ssh … --known-hosts …`, no credentials.
    pub fn connect(&self) -> SqltunCommand {
        self.sqltun("connect")
    }

    /// `connect()` with `--db` the echo target.
    pub fn connect_to_echo(&self) -> SqltunCommand {
        self.connect().db(self.targets.echo)
    }

    /// `sqltun(SUBCOMMAND)` with `-i` the authorized key.
    pub fn sqltun_with_key(&self, subcommand: &str) -> SqltunCommand {
        self.sqltun(subcommand).identity(self.key())
    }

    /// `connect()` with `-i` the authorized key.
    pub fn connect_with_key(&self) -> SqltunCommand {
        self.sqltun_with_key("connect")
    }

    /// `sqltun SUBCOMMAND -F none --ssh … --known-hosts KNOWN_HOSTS -i KEY`: the authorized key, and a
    /// known_hosts file of the test's own instead of the one that pins sshd's key.
    pub fn sqltun_trusting(&self, subcommand: &str, known_hosts: &Path) -> SqltunCommand {
        self.lab
            .sqltun(subcommand)
            .ssh(&self.sshd)
            .known_hosts(known_hosts)
            .identity(self.key())
    }

    /// `sqltun_trusting("connect", KNOWN_HOSTS)`.
    pub fn connect_trusting(&self, known_hosts: &Path) -> SqltunCommand {
        self.sqltun_trusting("connect", known_hosts)
    }

    /// A tunnel to the echo target with the authorized key, ready; returns it and its local port.
    pub fn echo_tunnel(&self) -> (Sqltun, u16) {
        self.echo_tunnel_with(&[])
    }

    /// `echo_tunnel` with more arguments (e.g. `--idle-timeout 2s`).
    pub fn echo_tunnel_with(&self, args: &[&str]) -> (Sqltun, u16) {
        let mut tunnel = self.connect_with_key().args(args).db(self.targets.echo).spawn();
        let port = tunnel.wait_ready();
        (tunnel, port)
    }

    /// A tunnel with the authorized key to each of `targets` (one `--db` each, in order), ready; returns it
    /// and the local port of each.
    pub fn tunnels_to(&self, targets: &[SocketAddrV4]) -> (Sqltun, Vec<u16>) {
        let mut command = self.connect_with_key();
        for &target in targets {
            command = command.db(target);
        }
        let mut tunnel = command.spawn();
        let ports = tunnel.wait_ready_ports(targets.len());
        (tunnel, ports)
    }
}

/// A lab of several bastions with sshd on each (each reachable only through the one before), the targets
/// behind the last, a known_hosts file that pins every bastion, and (unless started `without_key`) a key
/// every sshd accepts unless the test gives one its own authorized_keys.
#[derive(Debug)]
pub struct Chain {
    pub lab: Lab,
    pub sshds: Vec<Sshd>,
    pub targets: Targets,
    pub known_hosts: PathBuf,
    key: Option<KeyPair>,
}

impl Chain {
    /// `bastions` sshds with the default options, and an authorized key.
    pub fn start(bastions: usize) -> Chain {
        Chain::with(Lab::with_bastions(bastions), |_| SshdOptions::default())
    }

    /// An sshd on every bastion of `lab`, configured by `options(hop)` (0-based), and an authorized key.
    pub fn with(lab: Lab, options: impl Fn(usize) -> SshdOptions) -> Chain {
        let mut chain = Chain::without_key(lab, options);
        chain.key = Some(chain.lab.authorized_key(KeyKind::Ed25519));
        chain
    }

    /// The targets and an sshd on every bastion of `lab`, configured by `options(hop)` (0-based), and no
    /// key: the test authorizes what it needs.
    pub fn without_key(lab: Lab, options: impl Fn(usize) -> SshdOptions) -> Chain {
        let targets = lab.start_targets();
        let sshds: Vec<Sshd> = (0..lab.bastions())
            .map(|hop| lab.start_sshd_on(hop, options(hop)))
            .collect();
        let known_hosts = lab.known_hosts_file(&sshds.iter().map(Sshd::known_hosts_line).collect::<Vec<_>>());
        Chain {
            lab,
            sshds,
            targets,
            known_hosts,
            key: None,
        }
    }

    /// The authorized key.
    pub fn key(&self) -> &KeyPair {
        self.key.as_ref().expect("this chain was started without a key")
    }

    /// Bastion `hop`'s address (0-based), as the node before it sees it.
    pub fn addr(&self, hop: usize) -> Ipv4Addr {
        self.sshds[hop].addr
    }

    /// `sqltun SUBCOMMAND -F none -J USER@B1,… --ssh USER@Bn --known-hosts …`: every bastion as a
    /// literal hop, no credentials.
    pub fn literal(&self, subcommand: &str) -> SqltunCommand {
        let (last, jumps) = self.sshds.split_last().expect("a chain has bastions");
        let jumps: Vec<String> = jumps.iter().map(Sshd::destination).collect();
        self.lab
            .sqltun(subcommand)
            .args(["-J", &jumps.join(","), "--ssh", &last.destination()])
            .known_hosts(&self.known_hosts)
    }
}
