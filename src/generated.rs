//! Shell completions and the man page are generated from the clap definition and committed, so they
//! ship with the source. The test fails when they drift, naming the command that regenerates them.

use std::path::{Path, PathBuf};

use clap_complete::Shell;

use crate::cli;
use crate::error::Kind;

const REGENERATE: &str = "SQLTUN_REGENERATE=1 cargo test --lib generated";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every generated file, as (path relative to the repository, contents).
fn generate() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell, Shell::Elvish] {
        let name = match shell {
            Shell::Bash => "sqltun.bash",
            Shell::Zsh => "_sqltun",
            Shell::Fish => "sqltun.fish",
            Shell::PowerShell => "_sqltun.ps1",
            _ => "sqltun.elv",
        };
        files.push((
            Path::new("completions").join(name),
            crate::completions::script(shell).into_bytes(),
        ));
    }
    files.push((PathBuf::from("man/sqltun.1"), man_page()));
    files
}

fn man_page() -> Vec<u8> {
    let mut command = cli::command();
    command.build();
    let man = clap_mangen::Man::new(command.clone());
    let mut buf = Vec::new();
    let _ = man.render_title(&mut buf);
    let _ = man.render_name_section(&mut buf);
    let _ = man.render_synopsis_section(&mut buf);
    let _ = man.render_description_section(&mut buf);
    let _ = man.render_options_section(&mut buf);
    // Every subcommand is documented on this page (clap_mangen would point to sqltun-connect(1) and
    // the like, which are not installed).
    let subcommands: Vec<&clap::Command> = command.get_subcommands().filter(|s| s.get_name() != "help").collect();
    buf.extend_from_slice(b".SH SUBCOMMANDS\n");
    for sub in &subcommands {
        let about = sub.get_about().map(|a| roff_escape(&a.to_string())).unwrap_or_default();
        buf.extend_from_slice(format!(".TP\n\\fBsqltun {}\\fR\n{about}\n", sub.get_name()).as_bytes());
    }
    for sub in subcommands {
        man_subcommand(&mut buf, sub);
    }
    buf.extend_from_slice(
        b".SH \"HOST KEYS\"\n\
Host keys are checked against known_hosts with OpenSSH's rules on every hop. A changed or revoked key is \
always refused, whatever StrictHostKeyChecking says. A host known only through an @cert\\-authority line \
must present a host certificate from that CA: a plain key is refused like a changed key, and the message \
names the @cert\\-authority file and line. SHA\\-1 RSA signatures (ssh\\-rsa) are refused by default, as \
in OpenSSH 8.8+, for host keys, host certificates and their CA's signature; \
\\fB\\-o HostKeyAlgorithms=+ssh\\-rsa\\fR accepts them.\n",
    );
    buf.extend_from_slice(chain_options_section().as_bytes());
    buf.extend_from_slice(b".SH \"EXIT STATUS\"\n");
    for (code, meaning) in crate::error::exit_statuses() {
        buf.extend_from_slice(format!(".TP\n\\fB{}\\fR\n{}\n", roff_escape(&code), roff_escape(meaning)).as_bytes());
    }
    buf.extend_from_slice(
        b".PP\n\\fBexec\\fR otherwise exits with its command's status; \\fBcheck\\fR with the code of the first stage that failed.\n",
    );
    buf.extend_from_slice(
        b".SH ENVIRONMENT\n.TP\n\\fBSQLTUN_SSH_PASSWORD\\fR\nSSH password for the destination (the last hop) only (never pass secrets on the command line)\n\
.TP\n\\fBSQLTUN_SSH_PASSPHRASE\\fR\npassphrase for encrypted identity files, on every hop (it is never sent)\n\
.TP\n\\fBSQLTUN_SSH_PASSWORD_\\fIN\\fR, \\fBSQLTUN_SSH_PASSPHRASE_\\fIN\\fR\nthe same for hop N only (hops counted from 1 in dialling order); a jump host gets a password only this way\n\
.TP\n\\fBSQLTUN_TOTP_SECRET\\fR, \\fBSQLTUN_TOTP_SECRET_\\fIN\\fR\nbase32 TOTP secret (or otpauth://totp/ URI) for verification-code prompts: the destination's, or hop N's\n\
.TP\n\\fBSSH_AUTH_SOCK\\fR\nthe SSH agent socket\n\
.TP\n\\fBSQLTUN_LOG\\fR\na tracing filter for stderr logs, e.g. sqltun=debug\n\
.TP\n\\fBNO_COLOR\\fR\nwhen set and not empty: no colour and no spinner on stderr (also when stderr is not a terminal, or TERM=dumb)\n\
.TP\n\\fBXDG_STATE_HOME\\fR\nwhere a background tunnel's log goes by default (see FILES), when set to an absolute path\n\
.TP\n\\fBXDG_RUNTIME_DIR\\fR\nwhere background tunnels register for \\fBls\\fR and \\fBstop\\fR (see FILES), when set to an absolute path\n",
    );
    buf.extend_from_slice(b".SH FILES\n.TP\n\\fI~/.ssh/config\\fR, \\fI/etc/ssh/ssh_config\\fR\nssh client configuration, read as OpenSSH reads it\n\
.TP\n\\fI~/.ssh/known_hosts\\fR, \\fI/etc/ssh/ssh_known_hosts\\fR\nknown host keys\n\
.TP\n\\fI$XDG_STATE_HOME/sqltun/PID.log\\fR, \\fI~/.local/state/sqltun/PID.log\\fR\nwhat a \\fB\\-\\-background\\fR tunnel says after it returned, unless \\fB\\-\\-log\\-file\\fR names another file (mode 0600, in a directory created with mode 0700)\n\
.TP\n\\fI$XDG_RUNTIME_DIR/sqltun/\\fR, else \\fI$XDG_STATE_HOME/sqltun/\\fR or \\fI~/.local/state/sqltun/\\fR\none \\fIPID\\-START\\fR.tunnel file per running background tunnel (mode 0600, in a directory of yours with mode 0700; anything else is refused), read by \\fBls\\fR and \\fBstop\\fR\n");
    buf.extend_from_slice(b".SH \"SEE ALSO\"\n\\fBssh\\fR(1), \\fBssh_config\\fR(5), \\fBssh\\-keygen\\fR(1)\n");
    let _ = man.render_version_section(&mut buf);
    buf
}

/// Which command-line options reach which hop; the "where" list is the table resolution uses.
fn chain_options_section() -> String {
    let bold = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("\\fB{n}\\fR"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let how = [
        "IdentityFile",
        "IdentitiesOnly",
        "IdentityAgent",
        "CertificateFile",
        "UserKnownHostsFile",
        "GlobalKnownHostsFile",
        "StrictHostKeyChecking",
        "HashKnownHosts",
        "Ciphers",
        "KexAlgorithms",
        "HostKeyAlgorithms",
        "MACs",
        "Compression",
        "ConnectTimeout",
        "ServerAliveInterval",
        "ServerAliveCountMax",
        "BatchMode",
        "PasswordAuthentication",
        "PubkeyAuthentication",
        "KbdInteractiveAuthentication",
        "PreferredAuthentications",
    ];
    format!(
        ".SH \"OPTIONS IN A CHAIN\"\n\
Every hop of a chain (ProxyJump, \\fB\\-J\\fR) is resolved through ssh_config on its own. A \\fB\\-o\\fR \
directive that says where to connect applies to the destination only, as in ssh: {}. One that says how to \
connect applies to every hop, as do \\fB\\-i\\fR and \\fB\\-\\-known\\-hosts\\fR: {}, and every other \
directive. \\fB\\-o\\fR beats the user@ and :port of the destination, which beat the config file, which \
beats the default, as \\fBssh \\-G\\fR shows; \\fBsqltun config\\fR prints exactly the settings \
\\fBconnect\\fR, \\fBexec\\fR and \\fBcheck\\fR use.\n",
        bold(&crate::resolve::WHERE_DIRECTIVES),
        bold(&how)
    )
}

/// A subcommand's section: what it does, then every argument with its values and help.
fn man_subcommand(buf: &mut Vec<u8>, sub: &clap::Command) {
    let name = sub.get_name().to_string();
    buf.extend_from_slice(format!(".SH \"SQLTUN {}\"\n", name.to_uppercase()).as_bytes());
    if let Some(about) = sub.get_about() {
        buf.extend_from_slice(format!("{}\n", roff_escape(&about.to_string())).as_bytes());
    }
    for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
        let value = arg
            .get_value_names()
            .map(|v| v.join(" "))
            .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
        let takes_value = arg.get_action().takes_values();
        let mut flags = Vec::new();
        if let Some(s) = arg.get_short() {
            flags.push(format!("\\fB\\-{s}\\fR"));
        }
        if let Some(l) = arg.get_long() {
            flags.push(format!("\\fB\\-\\-{}\\fR", roff_escape(l)));
        }
        let head = match (flags.is_empty(), takes_value) {
            (true, _) => format!("\\fI{}\\fR", roff_escape(&value)),
            (false, true) => format!("{} \\fI{}\\fR", flags.join(", "), roff_escape(&value)),
            (false, false) => flags.join(", "),
        };
        buf.extend_from_slice(format!(".TP\n{head}\n").as_bytes());
        if let Some(help) = arg.get_long_help().or(arg.get_help()) {
            buf.extend_from_slice(format!("{}\n", roff_escape(&help.to_string())).as_bytes());
        }
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| match v.get_help() {
                Some(help) => format!(
                    ".IP \\(bu 2\n\\fB{}\\fR: {}",
                    roff_escape(v.get_name()),
                    roff_escape(&help.to_string())
                ),
                None => format!(".IP \\(bu 2\n\\fB{}\\fR", roff_escape(v.get_name())),
            })
            .collect();
        if takes_value && !values.is_empty() && arg.get_id() != "shell" {
            buf.extend_from_slice(format!(".RS\n{}\n.RE\n", values.join("\n")).as_bytes());
        } else if !values.is_empty() {
            let names: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect();
            buf.extend_from_slice(format!("One of: {}.\n", roff_escape(&names.join(", "))).as_bytes());
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() {
            buf.extend_from_slice(format!("Default: {}.\n", roff_escape(&defaults.join(", "))).as_bytes());
        }
    }
}

fn roff_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('-', "\\-")
        .lines()
        .map(|l| {
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The committed completions and man page must match the clap definition.
#[test]
fn generated_files_are_current() {
    let regenerate = std::env::var_os("SQLTUN_REGENERATE").is_some();
    let mut stale = Vec::new();
    for (path, contents) in generate() {
        let full = root().join(&path);
        if regenerate {
            if let Some(dir) = full.parent() {
                std::fs::create_dir_all(dir).expect("create the directory");
            }
            std::fs::write(&full, &contents).expect("write the generated file");
        } else if std::fs::read(&full).ok().as_deref() != Some(contents.as_slice()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files: {}; regenerate with `{REGENERATE}`",
        stale.join(", ")
    );
}

/// The README's exit-code table is what scripts read; it must list every documented status, as
/// `--help` and the man page do (both print the same table).
#[test]
fn readme_lists_every_exit_code() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    for (code, meaning) in crate::error::exit_statuses() {
        let row = format!("| {code} | {meaning} |");
        assert!(readme.contains(&row), "README.md lacks the exit-code row `{row}`");
    }
    let help = cli::exit_status_help();
    let man = String::from_utf8(man_page()).expect("the man page is UTF-8");
    for kind in Kind::ALL {
        let code = kind.exit_code().to_string();
        assert!(
            help.contains(&format!("  {code:<6} {}", kind.describe())),
            "--help lacks {code}"
        );
        assert!(man.contains(&format!("\\fB{code}\\fR\n")), "the man page lacks {code}");
    }
}

/// The man page names only pages that exist: itself and OpenSSH's (clap_mangen's default names a
/// page per subcommand, which nothing installs).
#[test]
fn man_page_names_only_installed_pages() {
    let man = String::from_utf8(man_page()).expect("the man page is UTF-8");
    assert!(
        !man.contains("sqltun\\-connect(1)") && !man.contains("sqltun\\-help"),
        "{man}"
    );
    for value in ["port", "addr", "url", "env", "json"] {
        assert!(
            man.contains(&format!("\\fB{value}\\fR: ")),
            "--output {value} is not listed"
        );
    }
}
