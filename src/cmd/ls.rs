//! `sqltun ls`: the background tunnels that run (from the registry) and the configured ones that do
//! not (from the tunnels file), as an aligned table for people or one JSON document for scripts.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::cli::{DbArg, LsArgs};
use crate::env::ProcessEnv;
use crate::error::Result;
use crate::output;
use crate::registry::{Entry, StateDir};
use crate::resolve::tunnels::{self, Saved};
use crate::text::printable;

pub(super) fn run(args: LsArgs) -> Result<()> {
    let running = match StateDir::existing(&ProcessEnv)? {
        Some(state) => state.running(),
        None => Vec::new(),
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut rows: Vec<Row> = running.iter().map(|e| Row::running(e, now)).collect();
    rows.extend(configured_not_running(args.tunnels_file.path.as_deref(), &running)?);
    if args.json {
        let document = json!({ "tunnels": rows.iter().map(Row::json).collect::<Vec<_>>() });
        return output::json_line(&document);
    }
    if rows.is_empty() {
        output::status(args.verbosity.quiet, "no background tunnels");
        return Ok(());
    }
    output::data(&table(&rows))
}

/// The tunnels of the tunnels files that are not running (a tunnel runs when an entry has its name),
/// file by file, by name within each; a name in two files is the first file's, as `connect NAME` takes it. A tunnels file
/// that cannot be read does not hide the running tunnels: a warning, unless it was named with
/// `--tunnels-file`.
fn configured_not_running(explicit: Option<&Path>, running: &[Entry]) -> Result<Vec<Row>> {
    let files = match tunnels::load_all(explicit, &ProcessEnv) {
        Ok(files) => files,
        Err(e) if explicit.is_none() => {
            tracing::warn!("{}", e.message());
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut rows = Vec::new();
    for saved in files.iter().flat_map(|f| &f.tunnels) {
        if seen.contains(&saved.name.as_str()) {
            continue;
        }
        seen.push(&saved.name);
        if !running.iter().any(|e| e.name.as_deref() == Some(saved.name.as_str())) {
            rows.push(Row::configured(saved));
        }
    }
    Ok(rows)
}

/// Where one forward listens.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Local {
    /// A running TCP listener.
    Addr(SocketAddr),
    /// A running Unix socket listener.
    Socket(String),
    /// A stopped tunnel's configured local port, if it has one.
    Configured(Option<u16>),
}

/// One tunnel as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    name: Option<String>,
    pid: Option<u32>,
    /// `up`, `reconnecting` or `stopped`.
    state: &'static str,
    started_at: Option<u64>,
    uptime: Option<Duration>,
    open_connections: Option<u64>,
    /// Each forward's local end and target.
    forwards: Vec<(Local, String)>,
    hops: Vec<String>,
    log_file: Option<String>,
}

impl Row {
    fn running(entry: &Entry, now: u64) -> Row {
        let forwards = entry
            .listening
            .iter()
            .map(|l| {
                let local = match (&l.local_addr, &l.local_socket) {
                    (Some(addr), _) => Local::Addr(*addr),
                    (None, Some(path)) => Local::Socket(path.clone()),
                    (None, None) => Local::Configured(None),
                };
                (local, l.target.clone())
            })
            .collect();
        Row {
            name: entry.name.clone(),
            pid: Some(entry.pid),
            state: entry.state.as_str(),
            started_at: Some(entry.started_at),
            uptime: Some(Duration::from_secs(now.saturating_sub(entry.started_at))),
            open_connections: Some(entry.open_connections),
            forwards,
            hops: entry.hops.clone(),
            log_file: entry.log_file.clone(),
        }
    }

    /// A tunnel of the tunnels file, not running: its targets with their local ports (paired in order,
    /// as `--local-port` is), its hops as written (`jump` items, then `ssh`).
    fn configured(saved: &Saved) -> Row {
        let targets: Vec<String> = saved
            .db
            .iter()
            .flat_map(|db| &db.value)
            .map(|db| match db {
                DbArg::Target(target) => target.to_string(),
                DbArg::Url(url) => url.target().to_string(),
            })
            .collect();
        let ports = saved.local_port.as_ref().map_or(&[][..], |p| p.value.as_slice());
        let forwards = targets
            .into_iter()
            .enumerate()
            .map(|(i, target)| (ports.get(i).copied(), target))
            .collect();
        let hops = saved
            .jump
            .iter()
            .flat_map(|j| &j.value.0)
            .chain(saved.ssh.as_ref().map(|s| &s.value))
            .map(|d| d.original.clone())
            .collect();
        Row::stopped(&saved.name, forwards, hops)
    }

    /// A configured tunnel that is not running: its name, each target with its configured local port
    /// (if any), and its hops.
    fn stopped(name: &str, forwards: Vec<(Option<u16>, String)>, hops: Vec<String>) -> Row {
        Row {
            name: Some(name.to_string()),
            pid: None,
            state: "stopped",
            started_at: None,
            uptime: None,
            open_connections: None,
            forwards: forwards
                .into_iter()
                .map(|(port, target)| (Local::Configured(port), target))
                .collect(),
            hops,
            log_file: None,
        }
    }

    fn json(&self) -> serde_json::Value {
        let forwards: Vec<serde_json::Value> = self
            .forwards
            .iter()
            .map(|(local, target)| {
                let (addr, host, port, socket) = match local {
                    Local::Addr(a) => (Some(a.to_string()), Some(a.ip().to_string()), Some(a.port()), None),
                    Local::Socket(path) => (None, None, None, Some(path.clone())),
                    Local::Configured(port) => (None, None, *port, None),
                };
                json!({
                    "local_addr": addr,
                    "local_host": host,
                    "local_port": port,
                    "local_socket": socket,
                    "target": target,
                })
            })
            .collect();
        json!({
            "name": self.name,
            "pid": self.pid,
            "state": self.state,
            "started_at": self.started_at,
            "uptime_secs": self.uptime.map(|u| u.as_secs()),
            "open_connections": self.open_connections,
            "forwards": forwards,
            "hops": self.hops,
            "log_file": self.log_file,
        })
    }

    /// The table's lines for this tunnel: one, plus one per further forward (local end and target only).
    fn cells(&self) -> Vec<[String; 8]> {
        let dash = || "-".to_string();
        let shown = |local: &Local| match local {
            Local::Addr(addr) => addr.to_string(),
            Local::Socket(path) => printable(path),
            Local::Configured(Some(port)) => format!(":{port}"),
            Local::Configured(None) => dash(),
        };
        let mut lines = Vec::new();
        let (first_local, first_target) = self
            .forwards
            .first()
            .map_or_else(|| (dash(), dash()), |(l, t)| (shown(l), printable(t)));
        lines.push([
            self.name.as_deref().map_or_else(dash, printable),
            self.pid.map_or_else(dash, |p| p.to_string()),
            first_local,
            first_target,
            self.state.to_string(),
            self.uptime.map_or_else(dash, uptime),
            self.open_connections.map_or_else(dash, |n| n.to_string()),
            if self.hops.is_empty() {
                dash()
            } else {
                printable(&self.hops.join(" -> "))
            },
        ]);
        for (local, target) in self.forwards.iter().skip(1) {
            lines.push([
                String::new(),
                String::new(),
                shown(local),
                printable(target),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        lines
    }
}

const HEADERS: [&str; 8] = ["NAME", "PID", "LOCAL", "TARGET", "STATE", "UPTIME", "CONNS", "VIA"];

/// The rows as a table whose columns line up (the last one is not padded).
fn table(rows: &[Row]) -> String {
    let lines: Vec<[String; 8]> = std::iter::once(HEADERS.map(String::from))
        .chain(rows.iter().flat_map(Row::cells))
        .collect();
    let mut widths = [0usize; 8];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for line in &lines {
        let mut out = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i + 1 == line.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        text.push_str(out.trim_end());
        text.push('\n');
    }
    text
}

/// `45s`, `3m12s`, `2h05m`, `3d04h`.
fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Listening, State};

    fn entry() -> Entry {
        Entry {
            name: Some("prod".into()),
            pid: 1234,
            start_time: 1,
            started_at: 1000,
            listening: vec![
                Listening {
                    local_addr: Some("127.0.0.1:5433".parse().expect("addr")),
                    local_socket: None,
                    target: "db.internal:5432".into(),
                },
                Listening {
                    local_addr: Some("127.0.0.1:6380".parse().expect("addr")),
                    local_socket: None,
                    target: "cache.internal:6379".into(),
                },
            ],
            hops: vec!["deploy@jump:22".into(), "deploy@bastion:22".into()],
            state: State::Reconnecting,
            open_connections: 3,
            fingerprint: "f".into(),
            log_file: Some("/run/user/1000/sqltun/1234.log".into()),
        }
    }

    /// People get aligned columns, a further forward on its own line, and a stopped tunnel with dashes;
    /// a name that holds control characters cannot drive the terminal.
    #[test]
    fn table_lines_up() {
        let mut rows = vec![Row::running(&entry(), 1000 + 192)];
        rows.push(Row::stopped(
            "staging\x1b[2J",
            vec![(Some(5434), "db.staging:5432".into())],
            vec!["bastion".into()],
        ));
        let text = table(&rows);
        let expected = "\
NAME            PID   LOCAL           TARGET               STATE         UPTIME  CONNS  VIA
prod            1234  127.0.0.1:5433  db.internal:5432     reconnecting  3m12s   3      deploy@jump:22 -> deploy@bastion:22
                      127.0.0.1:6380  cache.internal:6379
staging\\x1b[2J  -     :5434           db.staging:5432      stopped       -       -      bastion
";
        assert_eq!(text, expected, "\n{text}");
    }

    /// Scripts get every field, null where it does not apply.
    #[test]
    fn json_shape() {
        let row = Row::running(&entry(), 1042).json();
        assert_eq!(row["name"], "prod");
        assert_eq!(row["pid"], 1234);
        assert_eq!(row["state"], "reconnecting");
        assert_eq!(row["uptime_secs"], 42);
        assert_eq!(row["open_connections"], 3);
        assert_eq!(row["forwards"][1]["local_port"], 6380);
        assert_eq!(row["forwards"][0]["local_addr"], "127.0.0.1:5433");
        assert_eq!(row["forwards"][0]["local_socket"], serde_json::Value::Null);
        assert_eq!(row["hops"][1], "deploy@bastion:22");
        let stopped = Row::stopped("staging", vec![(None, "db:5432".into())], vec![]).json();
        assert_eq!(stopped["pid"], serde_json::Value::Null);
        assert_eq!(stopped["state"], "stopped");
        assert_eq!(stopped["forwards"][0]["local_port"], serde_json::Value::Null);
    }

    /// A saved tunnel is listed with its targets, the local ports paired with them in order, and its
    /// hops as written (jump hosts first).
    #[test]
    fn configured_tunnels() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sqltun-ls-configured-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("sqltun.toml");
        std::fs::write(
            &path,
            "[tunnels.prod]\nssh = \"deploy@bastion\"\njump = \"ops@jump:2222\"\n\
             db = [\"postgres://app@db.internal/app\", \"cache:6379\"]\nlocal_port = [5433]\n",
        )
        .expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let files = tunnels::load_all(Some(&path), &crate::env::FakeEnv::default()).expect("load");
        let _ = std::fs::remove_dir_all(&dir);
        let row = Row::configured(&files[0].tunnels[0]);
        assert_eq!(
            row,
            Row::stopped(
                "prod",
                vec![(Some(5433), "db.internal:5432".into()), (None, "cache:6379".into())],
                vec!["ops@jump:2222".into(), "deploy@bastion".into()],
            )
        );
    }

    #[test]
    fn uptimes() {
        assert_eq!(uptime(Duration::from_secs(45)), "45s");
        assert_eq!(uptime(Duration::from_secs(192)), "3m12s");
        assert_eq!(uptime(Duration::from_secs(2 * 3600 + 5 * 60)), "2h05m");
        assert_eq!(uptime(Duration::from_secs(3 * 86400 + 4 * 3600)), "3d04h");
    }
}
