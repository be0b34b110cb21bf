//! The honoured directives: each line's value checked (always, applying or not, as OpenSSH does) and
//! recorded when the line applies, one handler per kind of value.

use super::algorithms::validate_algorithms;
use super::jump::parse_jump;
use super::keywords::Key;
use super::reader::{DirectiveLine, MAX_HOSTS_FILES, MAX_KEY_FILES, Obtained, Reader, one_arg};
use super::values::{
    COMPRESSION, Choices, PUBKEY_AUTHENTICATION, STRICT_HOST_KEY_CHECKING, YES_NO, expand, parse_int, parse_port,
    parse_time, valid_env_name,
};
use super::{Result, shown};

impl Reader<'_> {
    /// An honoured directive: validated always, applied when `active` and not yet set (or, for the
    /// accumulating ones, not yet present from the same kind of file).
    pub(super) fn directive(&mut self, key: Key, line: DirectiveLine, active: bool, user_config: bool) -> Result<()> {
        match key {
            Key::HostName | Key::User | Key::HostKeyAlias | Key::PreferredAuthentications => {
                let value = one_arg(self, line.keyword, line.args, line.origin)?.to_string();
                self.set_first(key, value, line.origin, active);
                Ok(())
            }
            Key::Port => self.port(line, active),
            Key::BatchMode
            | Key::HashKnownHosts
            | Key::IdentitiesOnly
            | Key::KbdInteractiveAuthentication
            | Key::PasswordAuthentication => self.choice(key, line, active, &YES_NO),
            Key::Compression => self.choice(key, line, active, &COMPRESSION),
            Key::PubkeyAuthentication => self.choice(key, line, active, &PUBKEY_AUTHENTICATION),
            Key::StrictHostKeyChecking => self.choice(key, line, active, &STRICT_HOST_KEY_CHECKING),
            Key::ConnectTimeout | Key::ServerAliveInterval => self.time(key, line, active),
            Key::ServerAliveCountMax | Key::NumberOfPasswordPrompts => self.count(key, line, active),
            Key::IdentityFile | Key::CertificateFile => self.key_file(key, line, active, user_config),
            Key::IdentityAgent => self.identity_agent(line, active),
            Key::UserKnownHostsFile | Key::GlobalKnownHostsFile => self.known_hosts_files(key, line, active),
            Key::ProxyCommand => {
                let command = line.rest.trim_start_matches([' ', '\t', '\r', '\n', '=']).to_string();
                // ProxyJump, when set first, also sets ProxyCommand (to none), so this does nothing.
                self.set_first(key, command, line.origin, active);
                Ok(())
            }
            Key::ProxyJump => self.proxy_jump(line, active),
            Key::Ciphers | Key::Macs | Key::KexAlgorithms | Key::HostKeyAlgorithms => {
                let value = one_arg(self, line.keyword, line.args, line.origin)?.to_string();
                validate_algorithms(key, &value)
                    .map_err(|e| self.err(line.origin, format!("{}: {e}", line.keyword)))?;
                self.set_first(key, value, line.origin, active);
                Ok(())
            }
        }
    }

    /// `Port`: a number from 1 to 65535 or a service name.
    fn port(&mut self, line: DirectiveLine, active: bool) -> Result<()> {
        let value = one_arg(self, line.keyword, line.args, line.origin)?;
        let port = parse_port(value).ok_or_else(|| {
            self.err(
                line.origin,
                format!("bad port '{}'; give a number from 1 to 65535", shown(value)),
            )
        })?;
        self.set_first(Key::Port, port.to_string(), line.origin, active);
        Ok(())
    }

    /// A value from a fixed set (`yes`/`no` and the like), kept in `ssh -G`'s spelling.
    fn choice(&mut self, key: Key, line: DirectiveLine, active: bool, choices: &Choices) -> Result<()> {
        let value = one_arg(self, line.keyword, line.args, line.origin)?;
        let normal = choices.parse(value).ok_or_else(|| {
            self.err(
                line.origin,
                format!("{} must be {}, not '{}'", line.keyword, choices.described, shown(value)),
            )
        })?;
        self.set_first(key, normal.to_string(), line.origin, active);
        Ok(())
    }

    /// A time in seconds (`ConnectTimeout`, `ServerAliveInterval`).
    fn time(&mut self, key: Key, line: DirectiveLine, active: bool) -> Result<()> {
        let value = one_arg(self, line.keyword, line.args, line.origin)?;
        // `none` leaves the directive unset, so a later line may still set it.
        if value == "none" {
            return Ok(());
        }
        let seconds = parse_time(value).ok_or_else(|| {
            self.err(
                line.origin,
                format!(
                    "{}: bad time '{}'; give seconds, or a time like 30s, 5m or 1h",
                    line.keyword,
                    shown(value)
                ),
            )
        })?;
        self.set_first(key, seconds.to_string(), line.origin, active);
        Ok(())
    }

    /// A whole number, 0 or more (`ServerAliveCountMax`, `NumberOfPasswordPrompts`).
    fn count(&mut self, key: Key, line: DirectiveLine, active: bool) -> Result<()> {
        let value = one_arg(self, line.keyword, line.args, line.origin)?;
        let n = parse_int(value).map_err(|why| {
            self.err(
                line.origin,
                format!(
                    "{}: '{}' is {why}; give a whole number, 0 or more",
                    line.keyword,
                    shown(value)
                ),
            )
        })?;
        self.set_first(key, n.to_string(), line.origin, active);
        Ok(())
    }

    /// `IdentityFile`, `CertificateFile`: every applying line adds one, except a repeat from the same
    /// kind of file.
    fn key_file(&mut self, key: Key, line: DirectiveLine, active: bool, user_config: bool) -> Result<()> {
        let value = one_arg(self, line.keyword, line.args, line.origin)?.to_string();
        if !active {
            return Ok(());
        }
        let entry = self.obtained.entry(key).or_insert_with(|| Obtained {
            values: Vec::new(),
            origins: Vec::new(),
            user_config: Vec::new(),
        });
        let repeated = entry
            .values
            .iter()
            .zip(&entry.user_config)
            .any(|(v, &u)| *v == value && u == user_config);
        if repeated {
            return Ok(());
        }
        if entry.values.len() >= MAX_KEY_FILES {
            return Err(self.err(
                line.origin,
                format!("more than {MAX_KEY_FILES} {} entries", line.keyword),
            ));
        }
        entry.values.push(value);
        entry.origins.push(line.origin.clone());
        entry.user_config.push(user_config);
        Ok(())
    }

    /// `IdentityAgent`: a path (expanded when finishing), `none`, `SSH_AUTH_SOCK` or `$VAR`.
    fn identity_agent(&mut self, line: DirectiveLine, active: bool) -> Result<()> {
        let DirectiveLine {
            keyword, args, origin, ..
        } = line;
        let value = one_arg(self, keyword, args, origin)?.to_string();
        // OpenSSH checks the variables when it reads the line, applying or not.
        expand(&value, None, Some(self.env)).map_err(|e| self.err(origin, format!("{keyword}: {e}")))?;
        if let Some(name) = value.strip_prefix('$')
            && !name.starts_with('{')
            && !valid_env_name(name)
        {
            return Err(self.err(
                origin,
                format!(
                    "{keyword}: '{}' is not a valid environment variable name",
                    shown(&value)
                ),
            ));
        }
        self.set_first(Key::IdentityAgent, value, origin, active);
        Ok(())
    }

    /// `UserKnownHostsFile`, `GlobalKnownHostsFile`: one or more files, or `none` alone; the first
    /// applying line sets them all.
    fn known_hosts_files(&mut self, key: Key, line: DirectiveLine, active: bool) -> Result<()> {
        let DirectiveLine {
            keyword, args, origin, ..
        } = line;
        if args.is_empty() {
            return Err(self.err(origin, format!("{keyword} needs a file name")));
        }
        for (i, arg) in args.iter().enumerate() {
            if arg.is_empty() {
                return Err(self.err(
                    origin,
                    format!("{keyword} has an empty file name; remove the empty quotes"),
                ));
            }
            if arg.eq_ignore_ascii_case("none") && (i > 0 || args.len() > 1) {
                return Err(self.err(origin, format!("{keyword}: none must stand alone")));
            }
        }
        if args.len() > MAX_HOSTS_FILES {
            return Err(self.err(origin, format!("{keyword}: more than {MAX_HOSTS_FILES} files")));
        }
        if active && !self.obtained.contains_key(&key) {
            let values: Vec<String> = if args[0].eq_ignore_ascii_case("none") {
                vec!["none".to_string()]
            } else {
                args.to_vec()
            };
            let origins = vec![origin.clone(); values.len()];
            let user_config = vec![true; values.len()];
            self.obtained.insert(
                key,
                Obtained {
                    values,
                    origins,
                    user_config,
                },
            );
        }
        Ok(())
    }

    /// `ProxyJump`: checked and normalized as `ssh -G` prints it; when it applies first it also
    /// sets `ProxyCommand none`, as OpenSSH does.
    fn proxy_jump(&mut self, line: DirectiveLine, active: bool) -> Result<()> {
        let spec = line.rest.trim_start_matches([' ', '\t', '\r', '\n', '=']);
        let apply =
            active && !self.obtained.contains_key(&Key::ProxyCommand) && !self.obtained.contains_key(&Key::ProxyJump);
        let normal = parse_jump(spec).map_err(|why| {
            self.err(
                line.origin,
                format!(
                    "ProxyJump '{}': {why}; write [user@]host[:port] hops separated by commas",
                    shown(spec)
                ),
            )
        })?;
        if apply {
            let none = normal == "none";
            self.set_first(Key::ProxyJump, normal, line.origin, true);
            if !none {
                self.set_first(Key::ProxyCommand, "none".to_string(), line.origin, true);
            }
        }
        Ok(())
    }
}
