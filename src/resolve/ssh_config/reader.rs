//! Reading the configuration: files, lines, `Host` and `Match` blocks, `Include`; each line goes to
//! its keyword's handler ([`super::directives`]), and [`super::finish`] makes the result.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::files::{Contents, MAX_FILE_BYTES, MAX_PASS_BYTES, read_config_file};
use super::glob::glob;
use super::keywords::{Key, Keyword, lookup_keyword};
use super::lexer::{INVALID_QUOTES, argv_split, split_keyword, strdelim};
use super::local::home_of;
use super::values::{CANONICALIZE_HOSTNAME, expand_hostname, looks_like_address};
use super::{ConfigChoice, EnvLookup, Local, Origin, Result, display_path, place, shown, shown_path};
use crate::error::Error;
use crate::pattern::{self, Case, ListMatch};

/// How a file (or `-o` line) is being read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flags {
    /// A user configuration: relative `Include`s are under `~/.ssh` and `~` is allowed.
    pub(super) user_config: bool,
    /// Inside an `Include` from a block that does not apply: nothing matches.
    pub(super) never_match: bool,
    /// An `-o` directive.
    pub(super) command_line: bool,
    /// Refuse files others can write (included files and `~/.ssh/config`).
    pub(super) check_permissions: bool,
}

impl Flags {
    pub(super) const COMMAND_LINE: Flags = Flags {
        user_config: true,
        never_match: false,
        command_line: true,
        check_permissions: false,
    };
}

/// Values obtained so far for one directive.
#[derive(Debug, Clone)]
pub(super) struct Obtained {
    pub(super) values: Vec<String>,
    pub(super) origins: Vec<Origin>,
    /// Per value: read from a user configuration (or `-o`) rather than the system one. OpenSSH drops a
    /// repeated IdentityFile or CertificateFile only if both copies come from the same kind of file.
    pub(super) user_config: Vec<bool>,
}

impl Obtained {
    pub(super) fn one(value: String, origin: &Origin) -> Obtained {
        Obtained {
            values: vec![value],
            origins: vec![origin.clone()],
            user_config: vec![true],
        }
    }
}

/// One directive line, split: the keyword as written, the text after it, its arguments, and where it is.
#[derive(Debug, Clone, Copy)]
pub(super) struct DirectiveLine<'l> {
    pub(super) keyword: &'l str,
    pub(super) rest: &'l str,
    pub(super) args: &'l [String],
    pub(super) origin: &'l Origin,
}

/// Include nesting limit (OpenSSH's READCONF_MAX_DEPTH).
pub(super) const MAX_INCLUDE_DEPTH: usize = 16;
/// OpenSSH's SSH_MAX_IDENTITY_FILES and SSH_MAX_CERTIFICATE_FILES.
pub(super) const MAX_KEY_FILES: usize = 100;
/// OpenSSH's SSH_MAX_HOSTS_FILES.
pub(super) const MAX_HOSTS_FILES: usize = 32;
/// The most files `Include` may read in one pass: a few `Include` lines that name the same files
/// again, 16 levels deep, would otherwise read billions of them.
pub(super) const MAX_PASS_FILES: usize = 1024;
/// What some Windows editors put at the start of a UTF-8 file.
pub(super) const BYTE_ORDER_MARK: &[u8] = b"\xef\xbb\xbf";

pub(super) struct Reader<'a> {
    pub(super) local: &'a Local,
    pub(super) env: &'a EnvLookup<'a>,
    pub(super) system_config: &'a Path,
    /// The host as given: `%n`, `Match originalhost`.
    pub(super) host_arg: &'a str,
    /// What `Host` patterns match: the host as given, or the final host name in the final pass.
    pub(super) host: String,
    pub(super) final_pass: bool,
    pub(super) want_final: bool,
    pub(super) obtained: BTreeMap<Key, Obtained>,
    pub(super) ignore_unknown: Option<String>,
    pub(super) canonicalize: Option<(String, Origin)>,
    pub(super) unsupported: Vec<(String, Origin)>,
    /// Files included in this pass, and bytes read (see [`MAX_PASS_FILES`], [`MAX_PASS_BYTES`]).
    pub(super) pass_files: usize,
    pub(super) pass_bytes: u64,
    /// Every `Host` pattern read, in order, applying or not (for [`host_patterns`]).
    pub(super) host_patterns: Vec<String>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(host_arg: &'a str, local: &'a Local, env: &'a EnvLookup<'a>, system_config: &'a Path) -> Self {
        Reader {
            local,
            env,
            system_config,
            host_arg,
            host: host_arg.to_string(),
            final_pass: false,
            want_final: false,
            obtained: BTreeMap::new(),
            ignore_unknown: None,
            canonicalize: None,
            unsupported: Vec::new(),
            pass_files: 0,
            pass_bytes: 0,
            host_patterns: Vec::new(),
        }
    }

    pub(super) fn first(&self, key: Key) -> Option<&str> {
        self.obtained
            .get(&key)
            .and_then(|o| o.values.first())
            .map(String::as_str)
    }

    pub(super) fn err(&self, origin: &Origin, message: impl fmt::Display) -> Error {
        Error::usage(format!("{}: {message}", place(origin, self.local)))
    }

    /// Sets `key` unless it already has a value (OpenSSH: the first obtained value wins).
    pub(super) fn set_first(&mut self, key: Key, value: String, origin: &Origin, active: bool) {
        if active && !self.obtained.contains_key(&key) {
            self.obtained.insert(key, Obtained::one(value, origin));
        }
    }

    /// Reads the configuration files once (one pass).
    pub(super) fn read_all(&mut self, choice: ConfigChoice) -> Result<()> {
        self.pass_files = 0;
        self.pass_bytes = 0;
        match choice {
            ConfigChoice::None => Ok(()),
            ConfigChoice::File(path) => {
                let flags = Flags {
                    user_config: true,
                    never_match: false,
                    command_line: false,
                    check_permissions: false,
                };
                let mut active = true;
                if !self.file(path, flags, 0, &mut active, None)? {
                    return Err(Error::usage(format!(
                        "cannot read ssh config file {}: no such file; check the -F path",
                        shown_path(path)
                    )));
                }
                Ok(())
            }
            ConfigChoice::Default => {
                let user = self.local.home.join(".ssh").join("config");
                let flags = Flags {
                    user_config: true,
                    never_match: false,
                    command_line: false,
                    check_permissions: true,
                };
                let mut active = true;
                self.file(&user, flags, 0, &mut active, None)?;
                let system = self.system_config;
                let flags = Flags {
                    user_config: false,
                    never_match: false,
                    command_line: false,
                    check_permissions: false,
                };
                let mut active = true;
                self.file(system, flags, 0, &mut active, None)?;
                Ok(())
            }
        }
    }

    /// Reads one file; `Ok(false)` if it does not exist. `include` is the `Include` line that named
    /// it (`None` for `-F` and the default files).
    pub(super) fn file(
        &mut self,
        path: &Path,
        flags: Flags,
        depth: usize,
        active: &mut bool,
        include: Option<&Origin>,
    ) -> Result<bool> {
        let owner = flags.check_permissions.then_some(self.local.uid);
        let limit = MAX_FILE_BYTES.min(MAX_PASS_BYTES - self.pass_bytes);
        let bytes = match read_config_file(path, limit, include.is_some(), owner) {
            Ok(Contents::Missing) => return Ok(false),
            Ok(Contents::Skipped) => {
                tracing::debug!(path = %path.display(), "ssh config: skipping directory");
                return Ok(true);
            }
            Ok(Contents::Bytes(bytes)) => bytes,
            // What is wrong with the file, by its name and, for an Include, by the including line.
            Err(problem) => {
                return Err(match include {
                    Some(site) => self.err(site, format!("Include {}: {problem}", display_path(path, self.local))),
                    None => Error::usage(format!("{}: {problem}", display_path(path, self.local))),
                });
            }
        };
        self.pass_bytes += u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        tracing::trace!(path = %path.display(), depth, final_pass = self.final_pass, "reading ssh config");
        self.lines(&bytes, path, flags, depth, active)?;
        Ok(true)
    }

    /// The lines of one file, in order: a byte-order mark and a value that is not UTF-8 are refused.
    fn lines(&mut self, bytes: &[u8], path: &Path, flags: Flags, depth: usize, active: &mut bool) -> Result<()> {
        for (index, bytes) in bytes.split(|&b| b == b'\n').enumerate() {
            let origin = Origin::File {
                path: path.to_path_buf(),
                line: index + 1,
            };
            if index == 0 && bytes.starts_with(BYTE_ORDER_MARK) {
                return Err(self.err(
                    &origin,
                    "the file starts with a UTF-8 byte-order mark (the invisible bytes EF BB BF some Windows editors add), which OpenSSH rejects too; save the file as UTF-8 without a BOM",
                ));
            }
            let line = match std::str::from_utf8(bytes) {
                Ok(line) => line,
                // A comment in another encoding is harmless; a value is not guessed at.
                Err(_) if String::from_utf8_lossy(bytes).trim_start().starts_with('#') => continue,
                Err(_) => {
                    return Err(self.err(&origin, "not valid UTF-8; save the file as UTF-8"));
                }
            };
            self.line(line, &origin, flags, depth, active)?;
        }
        Ok(())
    }

    /// Processes one line (OpenSSH's process_config_line).
    pub(super) fn line(
        &mut self,
        raw: &str,
        origin: &Origin,
        flags: Flags,
        depth: usize,
        active: &mut bool,
    ) -> Result<()> {
        let text = raw.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
        let Some((keyword, rest)) = split_keyword(text).map_err(|()| self.err(origin, INVALID_QUOTES))? else {
            return Ok(());
        };
        if rest.is_empty() {
            return Err(self.err(origin, format!("{} needs a value", shown(&keyword))));
        }
        let lowercase = keyword.to_ascii_lowercase();
        let args = argv_split(rest).map_err(|()| self.err(origin, INVALID_QUOTES))?;
        let Some(kind) = lookup_keyword(&lowercase) else {
            return self.unknown_keyword(&keyword, &lowercase, origin);
        };
        let line = DirectiveLine {
            keyword: &keyword,
            rest,
            args: &args,
            origin,
        };
        match kind {
            // A value's own check speaks first (`bad port '\x1b[2J22'` says more than "a control
            // character")...
            Keyword::Honoured(key) => {
                self.directive(key, line, *active, flags.user_config)?;
                self.refuse_line_controls(kind, line)
            }
            // ...while the structural keywords are checked before they act on their values.
            _ => {
                self.refuse_line_controls(kind, line)?;
                self.structural(kind, line, &lowercase, flags, depth, active)
            }
        }
    }

    /// A keyword OpenSSH does not know: an error, unless an earlier `IgnoreUnknown` lists it.
    fn unknown_keyword(&self, keyword: &str, lowercase: &str, origin: &Origin) -> Result<()> {
        if let Some(ignored) = &self.ignore_unknown
            && pattern::match_list(lowercase, ignored, Case::FoldPattern) == ListMatch::Matched
        {
            tracing::debug!(%origin, keyword = %shown(keyword), "ignoring unknown ssh_config directive (IgnoreUnknown)");
            return Ok(());
        }
        Err(self.err(
            origin,
            format!(
                "unknown ssh_config directive '{}' (OpenSSH rejects it too); check the spelling, or list it in an IgnoreUnknown line before this one",
                shown(keyword)
            ),
        ))
    }

    /// The lines that are not honoured directives: blocks, Include, and the keywords sqltun only
    /// records or ignores.
    fn structural(
        &mut self,
        kind: Keyword,
        line: DirectiveLine,
        lowercase: &str,
        flags: Flags,
        depth: usize,
        active: &mut bool,
    ) -> Result<()> {
        let DirectiveLine {
            keyword,
            rest,
            args,
            origin,
        } = line;
        match kind {
            Keyword::Obsolete => {
                tracing::debug!(%origin, keyword = %shown(keyword), "ignoring obsolete ssh_config directive (as OpenSSH does)");
            }
            Keyword::NotHonoured => {
                if *active && !self.unsupported.iter().any(|(k, o)| k == lowercase && o == origin) {
                    self.unsupported.push((lowercase.to_string(), origin.clone()));
                }
            }
            Keyword::Host => {
                if flags.command_line {
                    return Err(self.err(origin, "Host cannot be given with -o; use it in a config file"));
                }
                self.host_line(args, origin, flags, active)?;
            }
            Keyword::Match => {
                if flags.command_line {
                    return Err(self.err(origin, "Match cannot be given with -o; use it in a config file"));
                }
                let matched = self.match_line(rest, origin, flags)?;
                *active = matched && !flags.never_match;
            }
            Keyword::Include => {
                if flags.command_line {
                    return Err(self.err(origin, "Include cannot be given with -o; use -F FILE instead"));
                }
                self.include(args, origin, flags, depth, active)?;
            }
            Keyword::IgnoreUnknown => {
                let value = one_arg(self, keyword, args, origin)?;
                if *active && self.ignore_unknown.is_none() {
                    self.ignore_unknown = Some(value.to_string());
                }
            }
            Keyword::CanonicalizeHostname => self.canonicalize_hostname(line, *active)?,
            // Handled by `Reader::directive` (see `Reader::line`).
            Keyword::Honoured(_) => {}
        }
        Ok(())
    }

    /// `CanonicalizeHostname`: checked and recorded; refused later only if it applies (see the
    /// module docs).
    fn canonicalize_hostname(&mut self, line: DirectiveLine, active: bool) -> Result<()> {
        let DirectiveLine {
            keyword, args, origin, ..
        } = line;
        let value = one_arg(self, keyword, args, origin)?;
        let normal = CANONICALIZE_HOSTNAME.parse(value).ok_or_else(|| {
            self.err(
                origin,
                format!(
                    "{keyword} must be {}, not '{}'",
                    CANONICALIZE_HOSTNAME.described,
                    shown(value)
                ),
            )
        })?;
        if active && self.canonicalize.is_none() {
            self.canonicalize = Some((normal.to_string(), origin.clone()));
        }
        Ok(())
    }

    /// Refuses control characters in a line's values: ProxyCommand and ProxyJump as one text, the
    /// others argument by argument.
    fn refuse_line_controls(&self, kind: Keyword, line: DirectiveLine) -> Result<()> {
        match kind {
            Keyword::Honoured(Key::ProxyCommand | Key::ProxyJump) => {
                self.refuse_controls(line.keyword, [line.rest], line.origin)
            }
            _ => self.refuse_controls(line.keyword, line.args.iter().map(String::as_str), line.origin),
        }
    }

    /// Refuses a control character (other than tab) in `values`: no host name, user, path or
    /// pattern has one, and a NUL would silently cut the value short in OpenSSH.
    pub(super) fn refuse_controls<'v>(
        &self,
        keyword: &str,
        values: impl IntoIterator<Item = &'v str>,
        origin: &Origin,
    ) -> Result<()> {
        for value in values {
            if let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') {
                return Err(self.err(
                    origin,
                    format!(
                        "{keyword}: '{}' contains the control character {}; remove it (it may be invisible in an editor)",
                        shown(value),
                        shown(c.encode_utf8(&mut [0; 4]))
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A `Host` line: whitespace-separated patterns, `!` negates and vetoes the whole line.
    pub(super) fn host_line(
        &mut self,
        args: &[String],
        origin: &Origin,
        flags: Flags,
        active: &mut bool,
    ) -> Result<()> {
        *active = false;
        if args.is_empty() {
            return Err(self.err(origin, "Host needs at least one pattern"));
        }
        self.host_patterns.extend(args.iter().cloned());
        for arg in args {
            if arg.is_empty() {
                return Err(self.err(origin, "Host has an empty pattern; remove the empty quotes"));
            }
            if flags.never_match {
                break;
            }
            let (negated, pattern) = match arg.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, arg.as_str()),
            };
            if pattern::matches(&self.host, pattern) {
                if negated {
                    tracing::trace!(%origin, pattern = %arg, "Host block skipped: negated pattern matched");
                    *active = false;
                    break;
                }
                *active = true;
            }
        }
        Ok(())
    }

    /// Evaluates a `Match` line (OpenSSH's match_cfg_line). The criteria are split like OpenSSH's
    /// strdelim: double quotes group, `=` separates.
    pub(super) fn match_line(&mut self, rest: &str, origin: &Origin, flags: Flags) -> Result<bool> {
        let host = self.match_host()?;
        let remote_user = self.first(Key::User).unwrap_or(&self.local.user).to_string();
        let mut result = true;
        let mut exec_at: Option<bool> = None;
        let mut attributes = 0;
        let mut saw_all = false;
        let mut cursor = rest;
        loop {
            let token;
            (token, cursor) = self.match_token(cursor, origin)?;
            if token.is_empty() || token.starts_with('#') {
                break;
            }
            let (negate, attribute) = match token.strip_prefix('!') {
                Some(a) => (true, a),
                None => (false, token.as_str()),
            };
            let attribute = attribute.to_ascii_lowercase();
            if attribute == "all" {
                let (after, _) = self.match_token(cursor, origin)?;
                if attributes > 1 || (!after.is_empty() && !after.starts_with('#')) {
                    return Err(self.err(origin, "Match all cannot be combined with other criteria"));
                }
                if result {
                    result = !negate;
                }
                saw_all = true;
                break;
            }
            attributes += 1;
            if attribute == "canonical" || attribute == "final" {
                if attribute == "final" {
                    self.want_final = true;
                }
                if self.final_pass == negate {
                    result = false;
                }
                continue;
            }
            let arg;
            (arg, cursor) = self.match_token(cursor, origin)?;
            if arg.is_empty() || arg.starts_with('#') {
                return Err(self.err(origin, format!("Match {} needs a pattern", shown(&attribute))));
            }
            if attribute == "exec" {
                // Decided after the other criteria: see the module docs.
                if result {
                    exec_at = Some(negate);
                }
                continue;
            }
            if self.criterion_matches(&attribute, &arg, &host, &remote_user, origin)? == negate {
                result = false;
            }
        }
        if attributes == 0 && !saw_all {
            return Err(self.err(origin, "Match needs at least one criterion"));
        }
        if exec_at.is_some() && result && !flags.never_match {
            return Err(self.err(
                origin,
                "Match exec is not supported by sqltun (it would run a command to decide whether this block applies); use Host or Match host/user blocks, or -F a config without it",
            ));
        }
        if exec_at.is_some() {
            tracing::debug!(%origin, "Match exec not run: the other criteria already rule the block out");
        }
        Ok(result)
    }

    /// The next word of a `Match` line, and what follows it.
    fn match_token<'r>(&self, cursor: &'r str, origin: &Origin) -> Result<(String, &'r str)> {
        strdelim(cursor).map_err(|()| self.err(origin, INVALID_QUOTES))
    }

    /// The host `Match host` tests: the final host name in the final pass; before it, `HostName`
    /// as obtained so far (with `%h` expanded), or the host as given.
    fn match_host(&self) -> Result<String> {
        if self.final_pass {
            return Ok(self.first(Key::HostName).unwrap_or(&self.host).to_string());
        }
        match self.obtained.get(&Key::HostName) {
            Some(o) => expand_hostname(&o.values[0], self.host_arg)
                .map_err(|e| self.err(&o.origins[0], format!("HostName: {e}"))),
            None => Ok(self.host_arg.to_string()),
        }
    }

    /// Whether one `Match` criterion that takes a pattern list holds.
    fn criterion_matches(
        &self,
        attribute: &str,
        patterns: &str,
        host: &str,
        remote_user: &str,
        origin: &Origin,
    ) -> Result<bool> {
        let listed = |text: &str| pattern::match_list(text, patterns, Case::Sensitive) == ListMatch::Matched;
        Ok(match attribute {
            "host" => pattern::match_hostname(host, patterns),
            "originalhost" => pattern::match_hostname(self.host_arg, patterns),
            "user" => listed(remote_user),
            "localuser" => listed(&self.local.user),
            other => {
                return Err(self.err(
                    origin,
                    format!(
                        "Match {} is not a criterion OpenSSH 9.2 or sqltun knows; use all, canonical, final, host, originalhost, user or localuser",
                        shown(other)
                    ),
                ));
            }
        })
    }

    /// `Include`: globs, relative to `~/.ssh` (user configs) or `/etc/ssh` (system config).
    pub(super) fn include(
        &mut self,
        args: &[String],
        origin: &Origin,
        flags: Flags,
        depth: usize,
        active: &mut bool,
    ) -> Result<()> {
        if args.is_empty() {
            return Err(self.err(origin, "Include needs a file name"));
        }
        for arg in args {
            if arg.is_empty() {
                return Err(self.err(origin, "Include has an empty file name; remove the empty quotes"));
            }
            if arg.starts_with('~') && !flags.user_config {
                return Err(self.err(
                    origin,
                    format!(
                        "Include {}: '~' is not allowed in the system config; use an absolute path",
                        shown(arg)
                    ),
                ));
            }
            let pattern = if arg.starts_with('/') || arg.starts_with('~') {
                arg.clone()
            } else if flags.user_config {
                format!("~/.ssh/{arg}")
            } else {
                format!("/etc/ssh/{arg}")
            };
            let pattern = self.include_tilde(&pattern).map_err(|e| self.err(origin, e))?;
            let files = glob(&pattern);
            if files.is_empty() {
                tracing::debug!(%origin, pattern = %pattern, "Include matched no files");
                continue;
            }
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(self.err(
                    origin,
                    format!("Include nests more than {MAX_INCLUDE_DEPTH} levels deep; does a file include itself?"),
                ));
            }
            let outer = *active;
            for file in files {
                self.pass_files += 1;
                if self.pass_files > MAX_PASS_FILES {
                    return Err(self.err(
                        origin,
                        format!(
                            "Include {}: more than {MAX_PASS_FILES} files included in all; do Include lines read the same files over and over?",
                            shown(arg)
                        ),
                    ));
                }
                let nested = Flags {
                    never_match: flags.never_match || !outer,
                    check_permissions: true,
                    command_line: false,
                    user_config: flags.user_config,
                };
                tracing::trace!(%origin, file = %file.display(), "including");
                self.file(&file, nested, depth + 1, active, Some(origin))?;
                // A Host or Match inside the included file does not change the including block.
                *active = outer;
            }
        }
        Ok(())
    }

    /// `~` in an Include pattern, as glob(3)'s GLOB_TILDE expands it: `$HOME` first.
    pub(super) fn include_tilde(&self, pattern: &str) -> std::result::Result<String, String> {
        let Some(rest) = pattern.strip_prefix('~') else {
            return Ok(pattern.to_string());
        };
        let (name, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let home = if name.is_empty() {
            match (self.env)("HOME").filter(|h| !h.is_empty()) {
                Some(home) => PathBuf::from(home),
                None => self.local.home.clone(),
            }
        } else {
            home_of(name, self.local)?
        };
        Ok(format!("{}{tail}", home.to_string_lossy().trim_end_matches('/')))
    }

    /// The host name to connect to: `HostName` (with `%h` and `%%` expanded) or the host as given;
    /// lower-cased unless it looks like an address.
    pub(super) fn hostname(&self) -> Result<String> {
        let name = match self.obtained.get(&Key::HostName) {
            Some(o) if !self.final_pass => expand_hostname(&o.values[0], self.host_arg)
                .map_err(|e| self.err(&o.origins[0], format!("HostName: {e}")))?,
            Some(o) => o.values[0].clone(),
            None => self.host_arg.to_string(),
        };
        Ok(if looks_like_address(&name) {
            name
        } else {
            name.to_ascii_lowercase()
        })
    }
}

/// The single argument of a directive.
pub(super) fn one_arg<'s>(reader: &Reader, keyword: &str, args: &'s [String], origin: &Origin) -> Result<&'s str> {
    match args {
        [] => Err(reader.err(origin, format!("{keyword} needs a value"))),
        [value] if value.is_empty() => Err(reader.err(origin, format!("{keyword} needs a value, not an empty string"))),
        [value] => Ok(value),
        _ => Err(reader.err(
            origin,
            format!(
                "{keyword} takes one value but has {}; quote a value that contains spaces",
                args.len()
            ),
        )),
    }
}
