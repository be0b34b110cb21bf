//! `sqltun check`: run every stage of the tunnel once and report each with its time — resolution, per
//! hop the transport, key exchange, host key and authentication, then per target the forward and what
//! answers there. The exit code is the class of the first stage that failed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Shutdown;
use crate::cli::CheckArgs;
use crate::db::Family;
use crate::env::ProcessEnv;
use crate::error::{Error, Kind, Result};
use crate::output::{self, Terminal};
use crate::plan::{Forward, TunnelPlan};
use crate::probe::{self, ProbeKind};
use crate::resolve;
use crate::secret::Secret;
use crate::secret_command::SecretCommand;
use crate::ssh::hostkey::Acceptance;
use crate::ssh::{Asked, Chain, HopLabel, Interaction, Stage};

/// Bound on the protocol probe at the target.
const PROBE_LIMIT: Duration = Duration::from_secs(5);

/// One line of the report.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    stage: String,
    hop: Option<usize>,
    elapsed: Option<Duration>,
    ok: bool,
    detail: String,
}

/// Records stages as the SSH layer reports them; prompts and notices go to the terminal.
struct Recorder {
    terminal: Terminal,
    rows: Mutex<Vec<Row>>,
}

impl Interaction for Recorder {
    fn progress(&self, hop: &HopLabel, step: &str) {
        self.terminal.progress(hop, step);
    }
    fn ask<'a>(&'a self, hop: &'a HopLabel, question: &'a str) -> Asked<'a, Option<String>> {
        self.terminal.ask(hop, question)
    }
    fn secret<'a>(&'a self, hop: &'a HopLabel, prompt: &'a str) -> Asked<'a, Option<Secret>> {
        self.terminal.secret(hop, prompt)
    }
    fn run_command<'a>(&'a self, hop: &'a HopLabel, command: &'a SecretCommand) -> Asked<'a, Secret> {
        self.terminal.run_command(hop, command)
    }
    fn tell(&self, hop: &HopLabel, text: &str) {
        self.terminal.tell(hop, text);
    }
    fn notice(&self, hop: &HopLabel, text: &str) {
        self.terminal.notice(hop, text);
    }
    fn stage(&self, hop: &HopLabel, stage: &Stage, elapsed: Duration) {
        let (name, detail, ok) = match stage {
            Stage::Transport(how) => ("connect", how.clone(), true),
            Stage::KeyExchange(path) => ("key exchange", path.to_string(), true),
            Stage::HostKey(offered) => {
                let status = match &offered.accepted {
                    Some(Acceptance::Known(path, line)) => format!("known ({}:{line})", path.display()),
                    Some(Acceptance::Recorded(path, line)) => format!("new, recorded in {}:{line}", path.display()),
                    Some(Acceptance::AcceptedUnrecorded) => "new, accepted".to_string(),
                    None => "rejected".to_string(),
                };
                (
                    "host key",
                    format!("{} {} {status}", offered.algorithm, offered.fingerprint),
                    offered.accepted.is_some(),
                )
            }
            Stage::Auth(method) => ("authentication", method.clone(), true),
        };
        let elapsed = (!matches!(stage, Stage::HostKey(_))).then_some(elapsed);
        if let Ok(mut rows) = self.rows.lock() {
            rows.push(Row {
                stage: name.into(),
                hop: Some(hop.index),
                elapsed,
                ok,
                detail,
            });
        }
    }
}

pub(super) async fn run(args: CheckArgs, shutdown: &mut Shutdown) -> Result<u8> {
    let mut rows = Vec::new();
    let started = Instant::now();
    let plan = match resolve::plan(&args.tunnel(), &ProcessEnv) {
        Ok(plan) => plan,
        Err(e) => {
            rows.push(Row {
                stage: "resolve".into(),
                hop: None,
                elapsed: Some(started.elapsed()),
                ok: false,
                detail: e.message().into(),
            });
            return finish(&args, None, rows, Some(e));
        }
    };
    let chain_text = plan.hops.iter().map(|h| h.address()).collect::<Vec<_>>().join(" -> ");
    rows.push(Row {
        stage: "resolve".into(),
        hop: None,
        elapsed: Some(started.elapsed()),
        ok: true,
        detail: format!(
            "{} hop{}: {chain_text}",
            plan.hops.len(),
            if plan.hops.len() == 1 { "" } else { "s" }
        ),
    });

    let recorder = Arc::new(Recorder {
        terminal: Terminal::new(args.verbosity.quiet),
        rows: Mutex::new(Vec::new()),
    });
    // A signal while connecting gives up: exit 130, as for connect before the tunnel is ready.
    let connected = tokio::select! {
        connected = Chain::connect(&plan, recorder.clone()) => connected,
        _ = shutdown.next() => Err(Error::interrupted()),
    };
    recorder.terminal.finish();
    rows.extend(recorder.rows.lock().map(|r| r.clone()).unwrap_or_default());
    let chain = match connected {
        Ok(chain) => chain,
        Err(e) if e.kind() == Kind::Interrupted => return Err(e),
        Err(e) => {
            let failed = failed_hop_row(&plan, &rows, &e);
            // The recorder already wrote a FAIL row for a rejected host key: give it the reason instead.
            match rows
                .iter_mut()
                .rev()
                .find(|r| r.hop == failed.hop && r.stage == failed.stage && !r.ok)
            {
                Some(row) => row.detail = format!("{} — {}", row.detail, e.message()),
                None => rows.push(failed),
            }
            return finish(&args, Some(&plan), rows, Some(e));
        }
    };
    let mut first_error = None;
    for forward in &plan.forwards {
        let (row_forward, row_probe, error) = check_forward(&chain, &plan, forward).await;
        rows.push(row_forward);
        rows.extend(row_probe);
        if first_error.is_none() {
            first_error = error;
        }
    }
    chain.close().await;
    finish(&args, Some(&plan), rows, first_error)
}

/// The row for the stage a chain failure stopped at: the first hop without authentication.
fn failed_hop_row(plan: &TunnelPlan, rows: &[Row], e: &Error) -> Row {
    let done = |hop: usize, stage: &str| rows.iter().any(|r| r.hop == Some(hop) && r.stage == stage && r.ok);
    let hop = (0..plan.hops.len()).find(|i| !done(*i, "authentication")).unwrap_or(0);
    let stage = match e.kind() {
        Kind::HostKey => "host key",
        Kind::Auth | Kind::Usage if done(hop, "key exchange") => "authentication",
        _ if !done(hop, "connect") => "connect",
        _ if !done(hop, "key exchange") => "key exchange",
        _ => "authentication",
    };
    Row {
        stage: stage.into(),
        hop: Some(hop),
        elapsed: None,
        ok: false,
        detail: e.message().into(),
    }
}

async fn check_forward(chain: &Chain, plan: &TunnelPlan, forward: &Forward) -> (Row, Option<Row>, Option<Error>) {
    let limit = plan
        .hops
        .last()
        .map(|h| h.connect_timeout)
        .unwrap_or(resolve::DEFAULT_CONNECT_TIMEOUT);
    let started = Instant::now();
    let originator = SocketAddr::from(([127, 0, 0, 1], 0));
    let target = forward.target.to_string();
    let channel = match chain.open_forward(&forward.target, originator, limit).await {
        Ok(channel) => channel,
        Err(e) => {
            let message = format!("forward to {target}: {e}");
            let row = Row {
                stage: format!("forward {target}"),
                hop: None,
                elapsed: Some(started.elapsed()),
                ok: false,
                detail: message.clone(),
            };
            return (row, None, Some(Error::new(Kind::ForwardRefused, message)));
        }
    };
    let opened = Row {
        stage: format!("forward {target}"),
        hop: None,
        elapsed: Some(started.elapsed()),
        ok: true,
        detail: "opened".into(),
    };
    let kind = match forward.url.as_ref().map(|u| (u.scheme, u.scheme.family())) {
        Some((crate::db::Scheme::Rediss, _)) => ProbeKind::Tcp,
        Some((_, Family::Postgres)) => ProbeKind::Postgres,
        Some((_, Family::Mysql)) => ProbeKind::Mysql,
        Some((_, Family::Redis)) => ProbeKind::Redis,
        Some(_) => ProbeKind::Tcp,
        None => probe::kind_for_port(forward.target.port),
    };
    let started = Instant::now();
    let stream = channel.into_stream();
    let report = probe::probe(kind, stream, PROBE_LIMIT).await;
    let ok = report.ok;
    // The actionable part (NOAUTH, protected mode, "host not allowed") is in the detail.
    let summary = match &report.detail {
        Some(detail) if !report.summary.contains(detail.as_str()) => format!("{} ({detail})", report.summary),
        _ => report.summary.clone(),
    };
    let row = Row {
        stage: format!("probe {target}"),
        hop: None,
        elapsed: Some(started.elapsed()),
        ok,
        detail: summary.clone(),
    };
    let error = (!ok).then(|| Error::new(Kind::ForwardRefused, format!("probe of {target}: {summary}")));
    (opened, Some(row), error)
}

fn finish(args: &CheckArgs, plan: Option<&TunnelPlan>, rows: Vec<Row>, error: Option<Error>) -> Result<u8> {
    let code = error.as_ref().map_or(0, |e| e.exit_code());
    let label = |hop: Option<usize>| match (hop, plan) {
        (Some(i), Some(plan)) => plan
            .hops
            .get(i)
            .map(|h| format!("[{}/{}] {}", i + 1, plan.hops.len(), h.address())),
        _ => None,
    };
    if args.json {
        let stages: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "stage": r.stage,
                    "hop": r.hop.map(|i| i + 1),
                    "hop_address": label(r.hop),
                    "elapsed_ms": r.elapsed.map(|d| (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0),
                    "ok": r.ok,
                    "detail": r.detail,
                })
            })
            .collect();
        output::json_line(&json!({
            "ok": error.is_none(),
            "exit_code": code,
            "error": error.as_ref().map(|e| e.message().to_string()),
            "stages": stages,
        }))?;
    } else {
        let named: Vec<(String, &Row)> = rows
            .iter()
            .map(|r| {
                (
                    match label(r.hop) {
                        Some(l) => format!("{l} {}", r.stage),
                        None => r.stage.clone(),
                    },
                    r,
                )
            })
            .collect();
        let width = named.iter().map(|(n, _)| n.len()).max().unwrap_or(5).max(5);
        let mut text = format!("{:<width$}  {:>9}  {:<4}  DETAIL\n", "STAGE", "TIME", "OK");
        for (name, r) in &named {
            let time = r.elapsed.map_or("-".to_string(), format_duration);
            text.push_str(&format!(
                "{name:<width$}  {time:>9}  {:<4}  {}\n",
                if r.ok { "ok" } else { "FAIL" },
                r.detail
            ));
        }
        output::data(&text)?;
    }
    if let Some(e) = &error {
        output::error(e);
    }
    Ok(code)
}

fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1}ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
