//! The network lab: network namespaces joined by veth pairs, so that the target is reachable only through
//! the bastions, plus the registry of every process started in it and a private directory for its files.
//!
//! With `n` bastions there are `n + 2` nodes: node 0 is the root namespace (the tests and sqltun), nodes
//! `1..=n` are the bastions B1..Bn, node `n + 1` is the target namespace D. Link `k` joins node `k` to node
//! `k + 1`. Each lab owns one /24 of 198.18.0.0/15 (RFC 2544), chosen by a slot number; link `k` is the
//! /30 at `.4k`, with `.4k+1` on node `k` and `.4k+2` on node `k + 1`. The root namespace routes the whole
//! /24 to B1, and every namespace has IP forwarding off, so anything beyond B1 (the target, the next
//! bastion, the black-holed address `.254`) is silently dropped at B1 unless an sshd forwards it. No
//! traffic leaves for the machine's own networks.
//!
//! Slots are claimed with a lock file held for the lab's lifetime, so labs in parallel threads and in
//! other test processes never share addresses or names; the kernel drops the lock if a test process dies,
//! and the next owner of the slot removes whatever that process left behind.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::net::Ipv4Addr;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::process::{
    Signal, account_ids, in_namespace, log_tails, require_root, run, run_quietly, send_signal, stop_children, warn,
};

/// Where labs keep their directories and slot locks.
pub const STATE_DIR: &str = "/tmp/sqltun-it";

/// One /24 per slot inside 198.18.0.0/15.
const SLOTS: u32 = 512;

/// The most bastions a lab can chain: the links' /30s must stay below the black-holed `.254`.
const MAX_BASTIONS: usize = 32;

/// How long stopped processes get to exit before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Where PAM looks for service files. Labs add their own there (never touching another file), named
/// `PAM_SERVICE_PREFIX<slot>-<n>`, and remove them on drop.
const PAM_DIR: &str = "/etc/pam.d";
const PAM_SERVICE_PREFIX: &str = "sqltun-it-";

/// How long processes the lab did not start (sshd's per-connection children) get to end by themselves.
const STRAY_GRACE: Duration = Duration::from_secs(2);

static NEXT_START: AtomicU32 = AtomicU32::new(0);

/// A private network with one or more bastion namespaces and a target namespace. Dropping it stops every
/// process it started and deletes its namespaces, veths and directory, also when the test panics.
#[derive(Debug)]
pub struct Lab {
    slot: u32,
    bastions: usize,
    dir: PathBuf,
    /// Held (locked) for the lab's lifetime: the claim on `slot`.
    _slot_lock: File,
    /// Namespaces created so far, so a failure half-way through setup still cleans up.
    namespaces: Mutex<Vec<String>>,
    processes: Mutex<Vec<Managed>>,
    logs: Mutex<Vec<(String, PathBuf)>>,
    next_file: AtomicUsize,
    /// Files the lab wrote outside its directory (PAM services), removed on drop.
    outside_files: Mutex<Vec<PathBuf>>,
}

#[derive(Debug)]
struct Managed {
    child: Child,
    stop: Signal,
}

impl Lab {
    /// Root ↔ one bastion B ↔ target D.
    pub fn new() -> Lab {
        Lab::with_bastions(1)
    }

    /// Root ↔ B1 ↔ … ↔ Bn ↔ target D; each namespace reaches only its neighbours.
    pub fn with_bastions(bastions: usize) -> Lab {
        require_root();
        assert!(
            (1..=MAX_BASTIONS).contains(&bastions),
            "a lab has 1..={MAX_BASTIONS} bastions, not {bastions}"
        );
        sweep_abandoned_slots();
        let (slot, slot_lock) = claim_slot();
        remove_leftovers(slot);

        let dir = PathBuf::from(format!("{STATE_DIR}/lab-{slot}"));
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("remove stale {}: {e}", dir.display()));
        }
        // 0755: sshd reads authorized_keys as the test user, and PostgreSQL runs as `postgres`.
        make_dir(&dir, 0o755);
        let lab = Lab {
            slot,
            bastions,
            dir,
            _slot_lock: slot_lock,
            namespaces: Mutex::new(Vec::new()),
            processes: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
            next_file: AtomicUsize::new(0),
            outside_files: Mutex::new(Vec::new()),
        };
        make_dir(&lab.home(), 0o700);
        lab.build_network();
        lab
    }

    fn build_network(&self) {
        let nodes: Vec<Option<String>> = std::iter::once(None)
            .chain((0..self.bastions).map(|hop| Some(self.bastion_namespace(hop))))
            .chain(std::iter::once(Some(self.target_namespace())))
            .collect();
        for namespace in nodes.iter().flatten() {
            run(Command::new("ip").args(["netns", "add", namespace]));
            lock(&self.namespaces).push(namespace.clone());
            ip(Some(namespace), &["link", "set", "lo", "up"]);
            // Off by default in a new namespace; stated here because the whole lab relies on it.
            run(in_namespace(namespace, "sysctl").args(["-qw", "net.ipv4.ip_forward=0"]));
        }
        for link in 0..=self.bastions {
            let (upper_ns, lower_ns) = (nodes[link].as_deref(), nodes[link + 1].as_deref().expect("lower node"));
            let (upper, lower) = (self.veth(link, 'u'), self.veth(link, 'd'));
            ip(
                upper_ns,
                &[
                    "link", "add", &upper, "type", "veth", "peer", "name", &lower, "netns", lower_ns,
                ],
            );
            let (upper_addr, lower_addr) = self.link_addrs(link);
            ip(upper_ns, &["addr", "add", &format!("{upper_addr}/30"), "dev", &upper]);
            ip(upper_ns, &["link", "set", &upper, "up"]);
            ip(
                Some(lower_ns),
                &["addr", "add", &format!("{lower_addr}/30"), "dev", &lower],
            );
            ip(Some(lower_ns), &["link", "set", &lower, "up"]);
        }
        // Everything else in the lab's /24 goes to B1, which drops it: nothing leaks to real networks.
        ip(
            None,
            &[
                "route",
                "add",
                &self.subnet(),
                "via",
                &self.bastion_addr().to_string(),
                "dev",
                &self.veth(0, 'u'),
            ],
        );
    }

    /// Address `host` inside this lab's /24.
    fn addr(&self, host: u8) -> Ipv4Addr {
        let block = 18 * 256 + self.slot;
        Ipv4Addr::new(198, (block / 256) as u8, (block % 256) as u8, host)
    }

    /// The two ends of link `link`: (on the node nearer root, on the node farther away).
    fn link_addrs(&self, link: usize) -> (Ipv4Addr, Ipv4Addr) {
        let base = u8::try_from(4 * link).expect("link index fits the /24");
        (self.addr(base + 1), self.addr(base + 2))
    }

    /// veth names are per lab and at most 15 bytes: `sqt<slot>l<link><u|d>`.
    fn veth(&self, link: usize, end: char) -> String {
        format!("sqt{}l{link}{end}", self.slot)
    }

    /// The first bastion's address, as the root namespace (and sqltun) dials it.
    pub fn bastion_addr(&self) -> Ipv4Addr {
        self.hop_addr(0)
    }

    /// Bastion `hop`'s address (0-based) as seen from the node before it (root for hop 0).
    pub fn hop_addr(&self, hop: usize) -> Ipv4Addr {
        assert!(
            hop < self.bastions,
            "hop {hop} of a lab with {} bastions",
            self.bastions
        );
        self.link_addrs(hop).1
    }

    /// The target namespace's address, as seen from the last bastion.
    pub fn target_addr(&self) -> Ipv4Addr {
        self.link_addrs(self.bastions).1
    }

    /// An address the root namespace routes to B1 but nobody owns: a SYN to it vanishes without an answer.
    pub fn blackhole_addr(&self) -> Ipv4Addr {
        self.addr(254)
    }

    /// How many bastions the lab chains.
    pub fn bastions(&self) -> usize {
        self.bastions
    }

    /// Makes bastion `hop` (0-based) route `addr` to the next node, which does not forward and owns no
    /// such address: a connection from that bastion to `addr` then waits for an answer that never comes
    /// (unlike an address the bastion has no route to, which fails at once).
    pub fn drop_beyond(&self, hop: usize, addr: Ipv4Addr) {
        assert!(
            hop < self.bastions,
            "hop {hop} of a lab with {} bastions",
            self.bastions
        );
        let next = self.link_addrs(hop + 1).1;
        ip(
            Some(&self.bastion_namespace(hop)),
            &["route", "add", &format!("{addr}/32"), "via", &next.to_string()],
        );
    }

    /// The lab's whole /24, e.g. for PostgreSQL's pg_hba.conf.
    pub fn subnet(&self) -> String {
        format!("{}/24", self.addr(0))
    }

    /// The network namespace of bastion `hop` (0-based).
    pub fn bastion_namespace(&self, hop: usize) -> String {
        format!("sqltun-{}-b{}", self.slot, hop + 1)
    }

    /// The network namespace of the targets and the database.
    pub fn target_namespace(&self) -> String {
        format!("sqltun-{}-d", self.slot)
    }

    /// The lab's private directory, removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The HOME sqltun runs with: empty unless a test puts something there.
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// A new, unused path in the lab directory: `<stem>-<n><suffix>`.
    pub fn fresh_path(&self, stem: &str, suffix: &str) -> PathBuf {
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{stem}-{n}{suffix}"))
    }

    /// A new 0700 directory in the lab directory (`<stem>-<n>`), owned by `account`: where a server that
    /// runs as that account keeps its files.
    pub fn account_dir(&self, stem: &str, account: &str) -> PathBuf {
        let (uid, gid) = account_ids(account);
        let dir = self.fresh_path(stem, "");
        make_dir(&dir, 0o700);
        chown(&dir, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {}: {e}", dir.display()));
        dir
    }

    /// Creates the log file `path`, owned by `account`, for a server's output; its tail goes into
    /// failure messages as `name`'s.
    pub fn account_log(&self, name: &str, path: &Path, account: &str) -> File {
        let (uid, gid) = account_ids(account);
        self.add_log(name, path);
        let file = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        chown(path, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        file
    }

    /// Writes a PAM service file with `text` to /etc/pam.d under a name of this lab's own and returns the
    /// service name; the lab removes the file on drop (and a later lab in the same slot removes it if this
    /// process died first). See `Pam::Custom` for how an sshd uses it.
    pub fn pam_service(&self, text: &str) -> String {
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PAM_SERVICE_PREFIX}{}-{n}", self.slot);
        let path = Path::new(PAM_DIR).join(&name);
        lock(&self.outside_files).push(path.clone());
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        name
    }

    /// Starts `command` and keeps its `Child`; the lab sends it `stop` (then SIGKILL) on drop. Returns the pid.
    pub fn spawn(&self, name: &str, command: &mut Command, stop: Signal) -> u32 {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        self.adopt(child, stop)
    }

    /// Takes charge of a child started elsewhere (e.g. with a piped stdout), as `spawn` does. Returns the pid.
    pub fn adopt(&self, child: Child, stop: Signal) -> u32 {
        let pid = child.id();
        lock(&self.processes).push(Managed { child, stop });
        pid
    }

    /// The exit status of a process started with `spawn`, or `None` while it runs.
    pub fn exit_status(&self, pid: u32) -> Option<ExitStatus> {
        let mut processes = lock(&self.processes);
        let managed = processes.iter_mut().find(|m| m.child.id() == pid)?;
        managed.child.try_wait().ok().flatten()
    }

    /// Remembers a log file whose tail goes into failure messages (`diagnostics`).
    pub fn add_log(&self, name: &str, path: &Path) {
        lock(&self.logs).push((name.to_string(), path.to_path_buf()));
    }

    /// The last lines of every log the lab knows about, for failure messages.
    pub fn diagnostics(&self) -> String {
        log_tails(&lock(&self.logs))
    }

    /// The log files the lab knows about, by name.
    pub fn logs(&self) -> Vec<(String, PathBuf)> {
        lock(&self.logs).clone()
    }

    /// Established TCP connections from the last bastion to the target: the forwards sshd holds open.
    pub fn forwarded_connections(&self) -> usize {
        let namespace = self.bastion_namespace(self.bastions - 1);
        let output = run(in_namespace(&namespace, "ss").args([
            "-Htn",
            "state",
            "established",
            "dst",
            &self.target_addr().to_string(),
        ]));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .count()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut processes = std::mem::take(&mut *lock(&self.processes));
        // sshd's per-connection children end on their own once their client is gone, and sshd reaps
        // them; give them a moment before killing what is left. (Bastions run nothing but sshd.)
        let ours: Vec<u32> = processes.iter().map(|m| m.child.id()).collect();
        let namespaces = lock(&self.namespaces).clone();
        let target = self.target_namespace();
        let bastions: Vec<&String> = namespaces.iter().filter(|namespace| **namespace != target).collect();
        let deadline = Instant::now() + STRAY_GRACE;
        while Instant::now() < deadline
            && bastions
                .iter()
                .any(|namespace| namespace_pids(namespace).iter().any(|pid| !ours.contains(pid)))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop_children(processes.iter_mut().rev().map(|m| (&mut m.child, m.stop)), STOP_GRACE);
        for namespace in namespaces.iter().rev() {
            delete_namespace(namespace);
        }
        // Deleting B1 took the root end of the first veth (and its route) with it; this covers a setup
        // that failed before the peer moved.
        let root_link = self.veth(0, 'u');
        if Path::new("/sys/class/net").join(&root_link).exists() {
            run_quietly(Command::new("ip").args(["link", "del", &root_link]));
        }
        for path in lock(&self.outside_files).iter() {
            if let Err(e) = fs::remove_file(path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                warn(&format!("cannot remove {}: {e}", path.display()));
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            warn(&format!("cannot remove {}: {e}", self.dir.display()));
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ip(namespace: Option<&str>, args: &[&str]) {
    let mut command = Command::new("ip");
    if let Some(namespace) = namespace {
        command.args(["-n", namespace]);
    }
    run(command.args(args));
}

/// Creates `path` (parents too) with `mode`.
pub fn make_dir(path: &Path, mode: u32) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Sets `path`'s permission bits to `mode`.
pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Writes `text` to `path` and sets its mode.
pub fn write_file(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_mode(path, mode);
}

/// Claims a free slot: the first lock file, starting somewhere pid-dependent, that nobody holds.
#[allow(
    clippy::incompatible_msrv,
    reason = "File::try_lock (1.89): the tests run on the CI toolchain, not the MSRV"
)]
fn claim_slot() -> (u32, File) {
    let locks = Path::new(STATE_DIR).join("locks");
    make_dir(Path::new(STATE_DIR), 0o755);
    make_dir(&locks, 0o755);
    let start = std::process::id()
        .wrapping_mul(7)
        .wrapping_add(NEXT_START.fetch_add(1, Ordering::Relaxed));
    for offset in 0..SLOTS {
        let slot = start.wrapping_add(offset) % SLOTS;
        let path = locks.join(format!("slot-{slot}"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        match file.try_lock() {
            Ok(()) => return (slot, file),
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => panic!("lock {}: {e}", path.display()),
        }
    }
    panic!("all {SLOTS} lab slots under {STATE_DIR}/locks are in use");
}

/// Once per test process: cleans every slot whose namespaces still exist but whose lock nobody holds
/// (left by a test run that was killed), so abandoned namespaces and sshds do not pile up.
#[allow(
    clippy::incompatible_msrv,
    reason = "File::try_lock (1.89): the tests run on the CI toolchain, not the MSRV"
)]
fn sweep_abandoned_slots() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        let Ok(entries) = fs::read_dir("/run/netns") else {
            return;
        };
        let mut slots: Vec<u32> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.strip_prefix("sqltun-")?.split('-').next()?.parse().ok()
            })
            .collect();
        slots.sort_unstable();
        slots.dedup();
        for slot in slots {
            let path = Path::new(STATE_DIR).join("locks").join(format!("slot-{slot}"));
            let Ok(file) = OpenOptions::new().create(true).truncate(false).write(true).open(&path) else {
                continue;
            };
            if file.try_lock().is_ok() {
                remove_leftovers(slot);
                let _ = fs::remove_dir_all(Path::new(STATE_DIR).join(format!("lab-{slot}")));
            }
        }
    });
}

/// Removes what a test process that died without cleaning up left in `slot`: its processes (by the pids
/// in its namespaces), its namespaces, the root end of its first veth and its PAM service files.
fn remove_leftovers(slot: u32) {
    let prefix = format!("sqltun-{slot}-");
    if let Ok(entries) = fs::read_dir("/run/netns") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                delete_namespace(&name);
            }
        }
    }
    let root_link = format!("sqt{slot}l0u");
    if Path::new("/sys/class/net").join(&root_link).exists() {
        run_quietly(Command::new("ip").args(["link", "del", &root_link]));
    }
    let pam_prefix = format!("{PAM_SERVICE_PREFIX}{slot}-");
    if let Ok(entries) = fs::read_dir(PAM_DIR) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&pam_prefix) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Kills every process still inside `namespace` (sshd's per-connection children, for instance), then
/// deletes the namespace; its veth ends go with it.
fn delete_namespace(namespace: &str) {
    for pid in namespace_pids(namespace) {
        send_signal(pid, Signal::Kill);
    }
    let deleted = run_quietly(Command::new("ip").args(["netns", "del", namespace]));
    if !deleted.is_some_and(|output| output.status.success()) {
        warn(&format!("cannot delete network namespace {namespace}"));
    }
}

/// The pids of the processes inside network namespace `namespace` (`ip netns pids`).
pub(super) fn namespace_pids(namespace: &str) -> Vec<u32> {
    run_quietly(Command::new("ip").args(["netns", "pids", namespace]))
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
