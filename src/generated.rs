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
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cli::command(), "sqltun", &mut buf);
        let name = match shell {
            Shell::Bash => "sqltun.bash",
            Shell::Zsh => "_sqltun",
            Shell::Fish => "sqltun.fish",
            Shell::PowerShell => "_sqltun.ps1",
            _ => "sqltun.elv",
        };
        files.push((Path::new("completions").join(name), buf));
    }
    files.push((PathBuf::from("man/sqltun.1"), man_page()));
    files
}

fn man_page() -> Vec<u8> {
    let command = cli::command();
    let man = clap_mangen::Man::new(command.clone());
    let mut buf = Vec::new();
    let _ = man.render_title(&mut buf);
    let _ = man.render_name_section(&mut buf);
    let _ = man.render_synopsis_section(&mut buf);
    let _ = man.render_description_section(&mut buf);
    let _ = man.render_options_section(&mut buf);
    let _ = man.render_subcommands_section(&mut buf);
    // Subcommand options live in their own sections so `man sqltun` documents every flag.
    for sub in command.get_subcommands() {
        let name = sub.get_name().to_string();
        buf.extend_from_slice(format!(".SH \"SQLTUN {}\"\n", name.to_uppercase()).as_bytes());
        if let Some(about) = sub.get_about() {
            buf.extend_from_slice(format!("{}\n", roff_escape(&about.to_string())).as_bytes());
        }
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let mut flags = Vec::new();
            if let Some(s) = arg.get_short() {
                flags.push(format!("\\-{s}"));
            }
            if let Some(l) = arg.get_long() {
                flags.push(format!("\\-\\-{}", l));
            }
            if flags.is_empty() {
                continue;
            }
            let value = arg
                .get_value_names()
                .map(|v| format!(" {}", v.join(" ")))
                .unwrap_or_default();
            let value = if arg.get_num_args().is_some_and(|n| n.takes_values()) {
                value
            } else {
                String::new()
            };
            buf.extend_from_slice(format!(".TP\n\\fB{}\\fR{}\n", flags.join(", "), value).as_bytes());
            if let Some(help) = arg.get_help() {
                buf.extend_from_slice(format!("{}\n", roff_escape(&help.to_string())).as_bytes());
            }
        }
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
    buf.extend_from_slice(b".TP\n\\fB0\\fR\nsuccess (for connect: stopped by SIGINT or SIGTERM)\n");
    for kind in Kind::ALL {
        buf.extend_from_slice(
            format!(".TP\n\\fB{}\\fR\n{}\n", kind.exit_code(), roff_escape(kind.describe())).as_bytes(),
        );
    }
    buf.extend_from_slice(
        b".SH ENVIRONMENT\n.TP\n\\fBSQLTUN_SSH_PASSWORD\\fR\nSSH password for the destination (the last hop) only (never pass secrets on the command line)\n\
.TP\n\\fBSQLTUN_SSH_PASSPHRASE\\fR\npassphrase for encrypted identity files, on every hop (it is never sent)\n\
.TP\n\\fBSQLTUN_SSH_PASSWORD_\\fIN\\fR, \\fBSQLTUN_SSH_PASSPHRASE_\\fIN\\fR\nthe same for hop N only (hops counted from 1 in dialling order); a jump host gets a password only this way\n\
.TP\n\\fBSQLTUN_TOTP_SECRET\\fR, \\fBSQLTUN_TOTP_SECRET_\\fIN\\fR\nbase32 TOTP secret (or otpauth://totp/ URI) for verification-code prompts: the destination's, or hop N's\n\
.TP\n\\fBSSH_AUTH_SOCK\\fR\nthe SSH agent socket\n\
.TP\n\\fBSQLTUN_LOG\\fR\na tracing filter for stderr logs, e.g. sqltun=debug\n",
    );
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

/// The README's exit-code table is what scripts read; it must list every class with its code.
#[test]
fn readme_lists_every_exit_code() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    for kind in Kind::ALL {
        let row = format!("| {} | {} |", kind.exit_code(), kind.describe());
        assert!(readme.contains(&row), "README.md lacks the exit-code row `{row}`");
    }
}
