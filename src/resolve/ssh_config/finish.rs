//! Making the result once every file is read: defaults filled in, the final user and host name
//! checked, `%` tokens, `~` and `${VAR}` expanded, algorithm lists assembled.

use std::collections::BTreeMap;

use super::algorithms::{algorithm_lists, assemble_algorithms};
use super::keywords::Key;
use super::reader::Reader;
use super::values::{expand, expand_tilde, sha1_hex};
use super::{Local, Origin, Resolved, Result, Setting, directive_place, shown};
use crate::dest::{NameKind, check_name};
use crate::error::Error;
use crate::text::shell_word;

const DEFAULT_IDENTITY_FILES: [&str; 7] = [
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
];
const DEFAULT_USER_KNOWN_HOSTS: [&str; 2] = ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"];
const DEFAULT_GLOBAL_KNOWN_HOSTS: [&str; 2] = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

/// OpenSSH's defaults for the single-valued directives that always have a value.
const DEFAULTS: [(Key, &str); 11] = [
    (Key::BatchMode, "no"),
    (Key::Compression, "no"),
    (Key::HashKnownHosts, "no"),
    (Key::IdentitiesOnly, "no"),
    (Key::KbdInteractiveAuthentication, "yes"),
    (Key::PasswordAuthentication, "yes"),
    (Key::PubkeyAuthentication, "true"),
    (Key::StrictHostKeyChecking, "ask"),
    (Key::NumberOfPasswordPrompts, "3"),
    (Key::ServerAliveCountMax, "3"),
    (Key::ConnectTimeout, "none"),
];

/// What the `%` tokens stand for, once the host name, port and user are final.
struct Tokens {
    connection_hash: String,
    short_host: String,
    uid: String,
    key_alias: String,
    local_hostname: String,
    host_arg: String,
    port: String,
    home: String,
    hostname: String,
    user: String,
    local_user: String,
    /// `%h %n %p %r` as one shell word each, for ProxyCommand.
    quoted: Vec<(char, String)>,
}

impl Tokens {
    fn new(local: &Local, host_arg: &str, hostname: &str, port: &str, user: &str, key_alias: &str) -> Tokens {
        let mut tokens = Tokens {
            connection_hash: sha1_hex(&format!("{}{hostname}{port}{user}", local.hostname)),
            short_host: local.hostname.split('.').next().unwrap_or_default().to_string(),
            uid: local.uid.to_string(),
            key_alias: key_alias.to_string(),
            local_hostname: local.hostname.clone(),
            host_arg: host_arg.to_string(),
            port: port.to_string(),
            home: local.home.to_string_lossy().into_owned(),
            hostname: hostname.to_string(),
            user: user.to_string(),
            local_user: local.user.clone(),
            quoted: Vec::new(),
        };
        tokens.quoted = tokens.proxy().iter().map(|(t, v)| (*t, shell_word(v))).collect();
        tokens
    }

    /// The tokens of IdentityFile, CertificateFile, UserKnownHostsFile and IdentityAgent.
    fn file(&self) -> [(char, &str); 11] {
        [
            ('C', &self.connection_hash),
            ('L', &self.short_host),
            ('i', &self.uid),
            ('k', &self.key_alias),
            ('l', &self.local_hostname),
            ('n', &self.host_arg),
            ('p', &self.port),
            ('d', &self.home),
            ('h', &self.hostname),
            ('r', &self.user),
            ('u', &self.local_user),
        ]
    }

    /// The tokens of ProxyJump (a list of destinations, parsed and checked again).
    fn proxy(&self) -> [(char, &str); 4] {
        [
            ('h', &self.hostname),
            ('n', &self.host_arg),
            ('p', &self.port),
            ('r', &self.user),
        ]
    }

    /// The tokens of ProxyCommand: each one shell word, since `sh -c` runs it.
    fn command(&self) -> Vec<(char, &str)> {
        self.quoted.iter().map(|(t, v)| (*t, v.as_str())).collect()
    }
}

impl Reader<'_> {
    /// Fills defaults, expands tokens and assembles algorithm lists.
    pub(super) fn finish(self, hostname: String) -> Result<Resolved> {
        let local = self.local;
        let hostname_origin = self.single(Key::HostName).map_or(Origin::CommandLine, |(_, o)| o);
        let (user, user_origin) = self.single(Key::User).unwrap_or((local.user.clone(), Origin::Default));
        let (port, port_origin) = self.single(Key::Port).unwrap_or(("22".to_string(), Origin::Default));
        // Before any of them is expanded into a command or a path, or dialled.
        check_name(NameKind::User, &user, &directive_place(&user_origin, local, "User")).map_err(Error::usage)?;
        check_name(
            NameKind::Host,
            &hostname,
            &directive_place(&hostname_origin, local, "HostName"),
        )
        .map_err(Error::usage)?;
        let alias = self.single(Key::HostKeyAlias).map(|(v, o)| (v.to_ascii_lowercase(), o));
        let key_alias = alias.as_ref().map_or(self.host_arg, |(v, _)| v.as_str());
        let tokens = Tokens::new(local, self.host_arg, &hostname, &port, &user, key_alias);

        let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
        put(&mut settings, Key::User, vec![user], user_origin);
        put(&mut settings, Key::HostName, vec![hostname], hostname_origin);
        put(&mut settings, Key::Port, vec![port], port_origin);
        self.finish_single_values(&mut settings, alias);
        self.finish_algorithms(&mut settings)?;
        self.finish_key_files(&mut settings, &tokens)?;
        self.finish_known_hosts_files(&mut settings, &tokens)?;
        self.finish_proxy(&mut settings, &tokens)?;
        Ok(Resolved {
            settings,
            unsupported: self.unsupported,
        })
    }

    /// The first value obtained for `key`, and where it came from.
    fn single(&self, key: Key) -> Option<(String, Origin)> {
        self.obtained
            .get(&key)
            .map(|o| (o.values[0].clone(), o.origins[0].clone()))
    }

    /// Several values from one line or several; the origin is the first value's.
    fn list(&self, key: Key) -> Option<(Vec<String>, Origin)> {
        self.obtained
            .get(&key)
            .map(|o| (o.values.clone(), o.origins[0].clone()))
    }

    /// A path with `~`, the file tokens and `${VAR}` expanded; errors name `keyword` and the line.
    fn expand_path(&self, value: &str, origin: &Origin, keyword: &str, tokens: &Tokens) -> Result<String> {
        let tilde = expand_tilde(value, self.local).map_err(|e| self.err(origin, format!("{keyword}: {e}")))?;
        expand(&tilde, Some(&tokens.file()), Some(self.env)).map_err(|e| self.err(origin, format!("{keyword}: {e}")))
    }

    /// The single values with a default, and the optional ones (`PreferredAuthentications`,
    /// `HostKeyAlias`, lowercased).
    fn finish_single_values(&self, settings: &mut BTreeMap<String, Setting>, alias: Option<(String, Origin)>) {
        for (key, default) in DEFAULTS {
            let (value, origin) = self.single(key).unwrap_or((default.to_string(), Origin::Default));
            put(settings, key, vec![value], origin);
        }
        let batch = self.single(Key::BatchMode).is_some_and(|(v, _)| v == "yes");
        // Debian's OpenSSH keeps batch sessions alive: 300 s unless set.
        let interval_default = if batch { "300" } else { "0" };
        let (value, origin) = self
            .single(Key::ServerAliveInterval)
            .unwrap_or((interval_default.to_string(), Origin::Default));
        put(settings, Key::ServerAliveInterval, vec![value], origin);
        if let Some((value, origin)) = self.single(Key::PreferredAuthentications) {
            put(settings, Key::PreferredAuthentications, vec![value], origin);
        }
        if let Some((value, origin)) = alias {
            put(settings, Key::HostKeyAlias, vec![value], origin);
        }
    }

    /// Each algorithm list, assembled from its value and the default; one that leaves nothing is refused.
    fn finish_algorithms(&self, settings: &mut BTreeMap<String, Setting>) -> Result<()> {
        for key in [Key::Ciphers, Key::HostKeyAlgorithms, Key::KexAlgorithms, Key::Macs] {
            let (default, all) = algorithm_lists(key);
            let (spec, origin) = match self.single(key) {
                Some((spec, origin)) => (Some(spec), origin),
                None => (None, Origin::Default),
            };
            let list = match &spec {
                Some(spec) => assemble_algorithms(spec, default, all),
                None => Some(default.split(',').map(str::to_string).collect()),
            };
            match list {
                Some(list) if !list.is_empty() => put(settings, key, vec![list.join(",")], origin),
                _ => {
                    return Err(self.err(
                        &origin,
                        format!(
                            "{} {} leaves no algorithm to use; name at least one supported algorithm",
                            key.name(),
                            shown(&spec.unwrap_or_default())
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `IdentityAgent`, `IdentityFile` (the defaults only when none is given; `none` entries left
    /// out, as OpenSSH skips them when it loads keys) and `CertificateFile`, expanded.
    fn finish_key_files(&self, settings: &mut BTreeMap<String, Setting>, tokens: &Tokens) -> Result<()> {
        if let Some((value, origin)) = self.single(Key::IdentityAgent) {
            let expanded = self.expand_path(&value, &origin, "IdentityAgent", tokens)?;
            put(settings, Key::IdentityAgent, vec![expanded], origin);
        }

        let (raw, origin) = self.list(Key::IdentityFile).unwrap_or_else(|| {
            (
                DEFAULT_IDENTITY_FILES.iter().map(|s| s.to_string()).collect(),
                Origin::Default,
            )
        });
        let origins = self
            .obtained
            .get(&Key::IdentityFile)
            .map_or_else(Vec::new, |o| o.origins.clone());
        let mut values = Vec::new();
        for (i, value) in raw.iter().enumerate() {
            if !value.eq_ignore_ascii_case("none") {
                values.push(self.expand_path(value, origins.get(i).unwrap_or(&origin), "IdentityFile", tokens)?);
            }
        }
        settings.insert(
            Key::IdentityFile.name().to_string(),
            Setting::shown_as(values, origin, raw),
        );

        if let Some(o) = self.obtained.get(&Key::CertificateFile) {
            let mut values = Vec::new();
            for (value, origin) in o.values.iter().zip(&o.origins) {
                values.push(self.expand_path(value, origin, "CertificateFile", tokens)?);
            }
            let setting = Setting::shown_as(values, o.origins[0].clone(), o.values.clone());
            settings.insert(Key::CertificateFile.name().to_string(), setting);
        }
        Ok(())
    }

    /// The known_hosts files: the global ones as written (OpenSSH does not expand them), the user's
    /// expanded unless `none`.
    fn finish_known_hosts_files(&self, settings: &mut BTreeMap<String, Setting>, tokens: &Tokens) -> Result<()> {
        let (values, origin) = self.list(Key::GlobalKnownHostsFile).unwrap_or_else(|| {
            (
                DEFAULT_GLOBAL_KNOWN_HOSTS.iter().map(|s| s.to_string()).collect(),
                Origin::Default,
            )
        });
        put(settings, Key::GlobalKnownHostsFile, values, origin);

        let (raw, origin) = self.list(Key::UserKnownHostsFile).unwrap_or_else(|| {
            (
                DEFAULT_USER_KNOWN_HOSTS.iter().map(|s| s.to_string()).collect(),
                Origin::Default,
            )
        });
        let values = if raw.len() == 1 && raw[0] == "none" {
            raw
        } else {
            let mut values = Vec::new();
            for value in &raw {
                values.push(self.expand_path(value, &origin, "UserKnownHostsFile", tokens)?);
            }
            values
        };
        put(settings, Key::UserKnownHostsFile, values, origin);
        Ok(())
    }

    /// `ProxyCommand` and `ProxyJump` with their tokens expanded; `none` leaves them out.
    fn finish_proxy(&self, settings: &mut BTreeMap<String, Setting>, tokens: &Tokens) -> Result<()> {
        if let Some((command, origin)) = self.single(Key::ProxyCommand)
            && !command.eq_ignore_ascii_case("none")
        {
            let expanded = expand(&command, Some(&tokens.command()), None)
                .map_err(|e| self.err(&origin, format!("ProxyCommand: {e}")))?;
            let setting = Setting::shown_as(vec![expanded], origin, vec![command]);
            settings.insert(Key::ProxyCommand.name().to_string(), setting);
        }
        if let Some((jump, origin)) = self.single(Key::ProxyJump)
            && jump != "none"
        {
            let expanded =
                expand(&jump, Some(&tokens.proxy()), None).map_err(|e| self.err(&origin, format!("ProxyJump: {e}")))?;
            let setting = Setting::shown_as(vec![expanded], origin, vec![jump]);
            settings.insert(Key::ProxyJump.name().to_string(), setting);
        }
        Ok(())
    }
}

/// Records a setting `ssh -G` prints as it is.
fn put(settings: &mut BTreeMap<String, Setting>, key: Key, values: Vec<String>, origin: Origin) {
    settings.insert(key.name().to_string(), Setting::new(values, origin));
}
