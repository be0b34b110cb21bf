//! The tunnels file: saved tunnels by name (`sqltun connect prod`).
//!
//! Two files are looked in, in this order: `sqltun.toml` in the working directory or its nearest parent
//! that has one (a team commits it next to its code), then the person's own
//! `$XDG_CONFIG_HOME/sqltun/tunnels.toml` (default `~/.config/sqltun/tunnels.toml`). A name is taken from
//! the first file that has it. `--tunnels-file FILE` (or `SQLTUN_TUNNELS_FILE`) names the one file to read
//! instead.
//!
//! A tunnels file is trusted as `~/.ssh/config` is: it can name commands to run (`password_command`,
//! `ProxyCommand` in `options`). So it must be owned by the user (or root) and writable by no one else;
//! one planted by another user in a shared parent directory (`/tmp/sqltun.toml`) is refused, not read.
//! It holds no secrets: a password, or a database URL with one, is refused with its file and line.

mod parse;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub use parse::{Saved, Sourced};

use crate::env::Environment;
use crate::error::{Error, Result};
use crate::safe_file::NullDevice;

/// The file a project keeps in its directory.
pub const PROJECT_FILE: &str = "sqltun.toml";

/// The most a tunnels file may hold: thousands of tunnels.
const MAX_BYTES: u64 = 1024 * 1024;

/// One tunnels file, read and checked.
#[derive(Debug, Clone)]
pub struct TunnelsFile {
    pub path: PathBuf,
    pub tunnels: Vec<Saved>,
}

/// Where tunnels files are looked for, in order, and whether each must exist.
fn locations(explicit: Option<&Path>, env: &dyn Environment) -> Vec<(PathBuf, bool)> {
    if let Some(path) = explicit {
        let path = match (path.strip_prefix("~"), env.home()) {
            (Ok(rest), Some(home)) => home.join(rest),
            _ => path.to_path_buf(),
        };
        return vec![(path, true)];
    }
    let mut found = Vec::new();
    if let Some(cwd) = env.current_dir()
        && let Some(dir) = cwd
            .ancestors()
            .find(|dir| dir.join(PROJECT_FILE).symlink_metadata().is_ok())
    {
        found.push((dir.join(PROJECT_FILE), false));
    }
    let config_home = env
        .var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| env.home().map(|h| h.join(".config")));
    if let Some(dir) = config_home {
        found.push((dir.join("sqltun").join("tunnels.toml"), false));
    }
    found
}

/// Every tunnels file there is, in lookup order (none is not an error).
pub fn load_all(explicit: Option<&Path>, env: &dyn Environment) -> Result<Vec<TunnelsFile>> {
    let mut files = Vec::new();
    for (path, required) in locations(explicit, env) {
        if let Some(file) = load(&path, required, env)? {
            files.push(file);
        }
    }
    Ok(files)
}

/// The tunnel called `name`, from the first file that has it.
pub fn find(name: &str, explicit: Option<&Path>, env: &dyn Environment) -> Result<Saved> {
    let files = load_all(explicit, env)?;
    if let Some(saved) = files.iter().flat_map(|f| &f.tunnels).find(|t| t.name == name) {
        return Ok(saved.clone());
    }
    let shown = crate::text::escaped(name, 80);
    if files.is_empty() {
        let looked = match explicit {
            Some(p) => crate::text::escaped(&p.to_string_lossy(), 200),
            None => format!("./{PROJECT_FILE} (or a parent's) and ~/.config/sqltun/tunnels.toml"),
        };
        return Err(Error::usage(format!(
            "no tunnel `{shown}`: there is no tunnels file (looked for {looked}); give --ssh and --db, or save the tunnel as [tunnels.{shown}] in {PROJECT_FILE}"
        )));
    }
    let mut known: Vec<&str> = files.iter().flat_map(|f| &f.tunnels).map(|t| t.name.as_str()).collect();
    known.sort_unstable();
    known.dedup();
    let read: Vec<String> = files.iter().map(|f| shown_path(&f.path, env)).collect();
    let hint = match closest(name, &known) {
        Some(close) => format!("; did you mean {close}?"),
        None if known.is_empty() => String::new(),
        None => format!(" (known: {})", known.join(", ")),
    };
    Err(Error::usage(format!(
        "no tunnel `{shown}` in {}{hint}",
        read.join(" or ")
    )))
}

/// A known name one or two edits away (a typo), if there is exactly one such.
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let mut near = known.iter().filter(|k| crate::text::edit_distance(name, k) <= 2);
    match (near.next(), near.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// Read and check one file; `None` when it does not exist and need not.
fn load(path: &Path, required: bool, env: &dyn Environment) -> Result<Option<TunnelsFile>> {
    let shown = shown_path(path, env);
    let opened = match crate::safe_file::open(path, NullDevice::Refuse) {
        Ok(opened) => opened,
        Err(e) if e.is_not_found() && !required => return Ok(None),
        Err(e) => return Err(Error::usage(format!("tunnels file {}: {}", shown, e.problem()))),
    };
    let meta = opened.metadata();
    let uid = env.uid();
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(Error::usage(format!(
            "tunnels file {shown} belongs to uid {}, not to you: a tunnels file can run commands, so sqltun reads only your own (or root's); remove it, or name yours with --tunnels-file",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Error::usage(format!(
            "tunnels file {shown} can be changed by other users (mode {:o}): a tunnels file can run commands; chmod go-w {shown}",
            meta.mode() & 0o7777
        )));
    }
    let bytes = opened
        .read(MAX_BYTES)
        .map_err(|e| Error::usage(format!("tunnels file {shown}: {}", e.problem())))?;
    let text = String::from_utf8(bytes).map_err(|_| Error::usage(format!("tunnels file {shown}: not UTF-8 text")))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let tunnels = parse::parse(&text, path, &shown, &base, env.home().as_deref())?;
    Ok(Some(TunnelsFile {
        path: path.to_path_buf(),
        tunnels,
    }))
}

/// The path for a message: relative to the working directory when inside it, `~/…` under home.
pub fn shown_path(path: &Path, env: &dyn Environment) -> String {
    let text = if let Some(rest) = env
        .current_dir()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
    {
        rest.display().to_string()
    } else if let Some(rest) = env
        .home()
        .and_then(|home| path.strip_prefix(home).ok().map(Path::to_path_buf))
    {
        format!("~/{}", rest.display())
    } else {
        path.display().to_string()
    };
    crate::text::escaped(&text, 300)
}

#[cfg(test)]
mod tests;
