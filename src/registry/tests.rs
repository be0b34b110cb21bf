use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::env::FakeEnv;

/// A scratch directory holding a state directory `sqltun` (mode 0700), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("sqltun-registry-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn env(&self) -> FakeEnv {
        FakeEnv {
            vars: vec![("XDG_RUNTIME_DIR".into(), self.0.display().to_string())],
            ..FakeEnv::default()
        }
    }

    /// The state directory, created and checked as the real user (FakeEnv's uid is made up).
    fn state(&self) -> StateDir {
        let path = self.0.join("sqltun");
        std::fs::DirBuilder::new().mode(0o700).create(&path).ok();
        StateDir::checked(path, nix::unistd::getuid().as_raw()).expect("state directory")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An entry for this very process (so it counts as running).
fn own_entry(name: &str) -> Entry {
    Entry {
        name: Some(name.into()),
        pid: std::process::id(),
        start_time: process::own_start_time().expect("own start time"),
        started_at: 1_700_000_000,
        listening: vec![Listening {
            local_addr: Some("127.0.0.1:5433".parse().expect("addr")),
            local_socket: None,
            target: "db.internal:5432".into(),
        }],
        hops: vec!["deploy@bastion:22".into()],
        state: State::Up,
        open_connections: 0,
        fingerprint: "f".into(),
        log_file: None,
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The state directory follows the XDG rules: the runtime directory first, then the state home, then
/// ~/.local/state; relative values are ignored.
#[test]
fn location_order() {
    let mut env = FakeEnv {
        home: Some("/home/me".into()),
        ..FakeEnv::default()
    };
    assert_eq!(location(&env), Some(PathBuf::from("/home/me/.local/state/sqltun")));
    env.vars = vec![("XDG_STATE_HOME".into(), "/var/state".into())];
    assert_eq!(location(&env), Some(PathBuf::from("/var/state/sqltun")));
    env.vars.push(("XDG_RUNTIME_DIR".into(), "/run/user/1000".into()));
    assert_eq!(location(&env), Some(PathBuf::from("/run/user/1000/sqltun")));
    env.vars = vec![("XDG_RUNTIME_DIR".into(), "run".into())];
    assert_eq!(location(&env), Some(PathBuf::from("/home/me/.local/state/sqltun")));
    env.home = None;
    assert_eq!(location(&env), None);
}

/// A missing state directory is created private; a symbolic link, or a directory open to others, is
/// refused with what to do, never used.
#[test]
fn state_directory_checks() {
    let scratch = Scratch::new("dir");
    let env = scratch.env();
    let dir = scratch.0.join("sqltun");
    assert!(StateDir::existing(&env).expect("fine").is_none());
    // FakeEnv's uid is not ours: the directory is created, and refused as another user's.
    let err = StateDir::open(&env).expect_err("not our uid");
    assert!(err.message().contains("belongs to uid"), "{}", err.message());
    assert_eq!(
        std::fs::metadata(&dir).expect("created").permissions().mode() & 0o777,
        0o700
    );
    let me = nix::unistd::getuid().as_raw();
    assert!(StateDir::checked(dir.clone(), me).is_ok());

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let err = StateDir::checked(dir.clone(), me).expect_err("open to others");
    assert!(
        err.message().contains("open to others (mode 0755)"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("chmod 700"), "{}", err.message());

    std::fs::remove_dir(&dir).expect("rmdir");
    let elsewhere = scratch.0.join("elsewhere");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&elsewhere)
        .expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, &dir).expect("symlink");
    let err = StateDir::checked(dir.clone(), me).expect_err("a link");
    assert!(err.message().contains("symbolic link"), "{}", err.message());
    assert_eq!(err.exit_code(), 2);
}

/// A registered entry is a private file listed as running; a state change rewrites it (no temporary
/// file left), and dropping the registration removes it.
#[test]
fn register_list_update_remove() {
    let scratch = Scratch::new("register");
    let state = scratch.state();
    let registration = state.register(own_entry("prod")).expect("register");
    let names = files_in(state.path());
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with(".tunnel"), "{names:?}");
    let file = state.path().join(&names[0]);
    assert_eq!(
        std::fs::metadata(&file).expect("entry").permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(state.running(), vec![own_entry("prod")]);
    assert_eq!(state.named("prod").len(), 1);
    assert!(state.named("other").is_empty());

    registration.set_state(State::Reconnecting);
    registration.set_open_connections(3);
    let listed = state.running();
    assert_eq!(listed[0].state, State::Reconnecting);
    assert_eq!(listed[0].open_connections, 3);
    assert_eq!(files_in(state.path()).len(), 1, "a temporary file was left behind");

    drop(registration);
    assert!(files_in(state.path()).is_empty());
    assert!(state.running().is_empty());
}

/// Entries that cannot be trusted are never listed: a reused pid (other start time), content that does
/// not match its name, garbage, an oversized file (all ours: removed); a symbolic link (ignored, left).
/// Files that are not entries (logs, locks) are left alone.
#[test]
fn untrusted_entries_are_dropped() {
    let scratch = Scratch::new("untrusted");
    let state = scratch.state();
    let dir = state.path().to_path_buf();
    let mut reused = own_entry("reused");
    reused.start_time += 1;
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).expect("write");
    write(&reused.file_name(), &serde_json::to_vec(&reused).expect("json"));
    let honest = own_entry("mismatch");
    write("1-2.tunnel", &serde_json::to_vec(&honest).expect("json"));
    write("3-4.tunnel", b"{not json");
    write("5-6.tunnel", &vec![b' '; 64 * 1024 + 1]);
    write("7.log", b"a log");
    write("prod.lock", b"");
    std::os::unix::fs::symlink(dir.join("7.log"), dir.join("8-9.tunnel")).expect("symlink");
    assert!(state.running().is_empty());
    assert_eq!(files_in(&dir), vec!["7.log", "8-9.tunnel", "prod.lock"]);
}

/// The fingerprint is what makes two plans the same tunnel: the output format does not count, a local
/// port, a hop or the bind address does.
#[test]
fn fingerprints() {
    use crate::cli::{Cli, Command};
    use clap::Parser;
    let plan = |argv: &[&str]| {
        let mut full = vec!["sqltun", "connect", "-F", "none"];
        full.extend_from_slice(argv);
        let Ok(Command::Connect(args)) = Cli::try_parse_from(full).map(|c| c.command) else {
            panic!("{argv:?}");
        };
        let env = FakeEnv {
            home: Some("/home/me".into()),
            ..FakeEnv::default()
        };
        crate::resolve::plan(&args.tunnel(), &env).expect("plan")
    };
    let base = fingerprint(&plan(&["--ssh", "deploy@b", "--db", "db:5432"]));
    assert_eq!(base.len(), 32);
    assert_eq!(
        base,
        fingerprint(&plan(&["--ssh", "deploy@b", "--db", "db:5432", "--output", "json"]))
    );
    for other in [
        &["--ssh", "deploy@b", "--db", "db:5432", "--local-port", "5433"][..],
        &["--ssh", "deploy@b", "--db", "db:5433"],
        &["--ssh", "deploy@c", "--db", "db:5432"],
        &["--ssh", "deploy@b", "-J", "j", "--db", "db:5432"],
        &["--ssh", "deploy@b", "--db", "db:5432", "--bind", "::1"],
    ] {
        assert_ne!(base, fingerprint(&plan(other)), "{other:?}");
    }
}

/// Names become file names that cannot leave the directory or hide.
#[test]
fn names_as_file_names() {
    assert_eq!(file_safe("prod-db_1.eu"), "prod-db_1.eu");
    assert_eq!(file_safe("../x"), "%2E.%2Fx");
    assert_eq!(file_safe(".hidden"), "%2Ehidden");
    assert_eq!(file_safe("a b/ü"), "a%20b%2F%C3%BC");
    assert_eq!(parse_file_name("12-345.tunnel"), Some((12, 345)));
    for bad in ["12.tunnel", "-1-2.tunnel", "1-2.log", "a-1.tunnel", "1-.tunnel"] {
        assert_eq!(parse_file_name(bad), None, "{bad}");
    }
}

/// A second start of the same name waits for the first and gives up at its bound; another name is
/// free meanwhile, and the name is free again once the first lets go.
#[tokio::test]
async fn one_start_per_name() {
    let scratch = Scratch::new("lock");
    let state = scratch.state();
    let first = state.lock("prod", Duration::ZERO).await.expect("first");
    let err = state.lock("prod", Duration::from_millis(200)).await.expect_err("held");
    assert!(
        err.message().contains("another sqltun has been starting prod"),
        "{}",
        err.message()
    );
    let _other = state.lock("staging", Duration::ZERO).await.expect("another name");
    drop(first);
    assert!(state.lock("prod", Duration::ZERO).await.is_ok());
}
