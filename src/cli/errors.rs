//! Usage errors in sqltun's voice: prefixed, with ssh habits pointed to the sqltun way, and with whatever
//! in argv could be a secret masked.

use clap::error::ErrorKind;

use super::{Cli, command};
use crate::text::edit_distance;

/// Why parsing argv did not give a command to run.
#[derive(Debug)]
pub enum Stop {
    /// `--help` or `--version`: clap's own text for stdout, exit 0.
    Display(clap::Error),
    /// A usage error: the text for stderr (its first line starts `sqltun: `), exit 2.
    Usage(String),
}

/// Parse `argv` (program name first). Usage errors come back in sqltun's voice: prefixed, with an
/// ssh habit pointed to the sqltun way, and with whatever in argv could be a secret masked.
pub fn parse(argv: Vec<std::ffi::OsString>) -> Result<Cli, Stop> {
    let error = match <Cli as clap::Parser>::try_parse_from(&argv) {
        Ok(cli) => return Ok(cli),
        Err(e) => e,
    };
    if !error.use_stderr() {
        return Err(Stop::Display(error));
    }
    let argv: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    Err(Stop::Usage(usage_message(&error, &argv)))
}

/// One clap error as sqltun says it.
pub(super) fn usage_message(error: &clap::Error, argv: &[String]) -> String {
    use clap::error::{ContextKind, ContextValue};
    let unknown = match (error.kind(), error.get(ContextKind::InvalidArg)) {
        (ErrorKind::UnknownArgument, Some(ContextValue::String(arg))) => Some(arg.as_str()),
        _ => None,
    };
    let hint = unknown.and_then(|arg| {
        ssh_habit(arg, argv)
            .map(|hint| format!("{arg}: {hint}"))
            .or_else(|| closest_long_flag(arg, argv).map(|flag| format!("unknown option {arg}; did you mean {flag}?")))
    });
    let text = match hint {
        Some(line) => format!("sqltun: {line}\n\nFor more information, try '--help'.\n"),
        None => {
            let rendered = error.render().to_string();
            match rendered.strip_prefix("error: ") {
                Some(rest) => format!("sqltun: {rest}"),
                // `sqltun` alone: clap shows the help; say first what is missing.
                None => format!("sqltun: a command is needed\n\n{rendered}"),
            }
        }
    };
    redact_argv(&text, argv)
}

/// The sqltun way for an option people bring from ssh.
pub(super) fn ssh_habit(arg: &str, argv: &[String]) -> Option<String> {
    if arg.starts_with("--") {
        return None;
    }
    let mut chars = arg.strip_prefix('-')?.chars();
    let flag = chars.next()?;
    // The value typed with it (`-p2222`) or after it (`-p 2222`), when it looks like one.
    let attached: String = chars.collect();
    let value = if attached.is_empty() {
        argv.iter()
            .position(|a| a == arg)
            .and_then(|i| argv.get(i + 1))
            .filter(|v| !v.starts_with('-'))
            .cloned()
    } else {
        Some(attached)
    };
    let hint = match flag {
        'p' => {
            let port = value
                .filter(|v| v.parse::<u16>().is_ok())
                .unwrap_or_else(|| "2222".into());
            format!("the SSH port goes in the destination: --ssh user@host:{port}")
        }
        'l' => {
            let user = value
                .filter(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
                .unwrap_or_else(|| "user".into());
            format!("the SSH user goes in the destination: --ssh {user}@host")
        }
        'L' => "sqltun picks the local port and prints it; use --local-port PORT and --db HOST:PORT".into(),
        'N' => "not needed: sqltun never runs a remote command".into(),
        'W' => "use --db HOST:PORT".into(),
        _ => return None,
    };
    Some(hint)
}

/// For an unknown `--option`: the long option of the subcommand in use that is one typo away, or
/// else the shortest one it begins (`--sh` is `--ssh`, where clap's similarity guess says
/// `--ssh-config`).
pub(super) fn closest_long_flag(arg: &str, argv: &[String]) -> Option<String> {
    let typed = arg.strip_prefix("--")?.split('=').next()?;
    if typed.len() < 2 {
        return None;
    }
    let top = command();
    let used = argv.iter().skip(1).find_map(|a| top.find_subcommand(a)).unwrap_or(&top);
    let longs: Vec<&str> = used
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long())
        .collect();
    let typo = longs
        .iter()
        .filter(|long| edit_distance(typed, long) == 1)
        .min_by_key(|long| long.len());
    let prefix = longs
        .iter()
        .filter(|long| long.starts_with(typed))
        .min_by_key(|long| long.len());
    typo.or(prefix).map(|long| format!("--{long}"))
}

/// `text` with every argument that may hold a secret masked (a URL's password, a secret parameter),
/// and no control character but the line breaks.
pub(super) fn redact_argv(text: &str, argv: &[String]) -> String {
    let mut text = text.to_string();
    let mut args: Vec<&String> = argv.iter().skip(1).filter(|a| a.len() > 1).collect();
    // Longest first, so an argument that contains another is masked whole.
    args.sort_by_key(|a| std::cmp::Reverse(a.len()));
    for arg in args {
        let masked = crate::db::redact_input(arg);
        if masked != *arg {
            text = text.replace(arg.as_str(), &masked);
        }
    }
    // clap may have quoted an argument altered (escape sequences stripped): mask by word as well.
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            let masked: Vec<String> = line
                .split(' ')
                .map(|word| match word.contains("://") || word.contains('=') {
                    true => mask_quoted(word),
                    false => word.to_string(),
                })
                .collect();
            crate::text::escaped(&masked.join(" "), usize::MAX)
        })
        .collect();
    lines.join("\n")
}

/// A word of a message with what may be a secret masked, its quotes kept.
pub(super) fn mask_quoted(word: &str) -> String {
    let inner = word.trim_matches('\'');
    let masked = crate::db::redact_input(inner);
    match masked == crate::text::printable(inner) {
        true => word.to_string(),
        false => word.replacen(inner, &masked, 1),
    }
}
