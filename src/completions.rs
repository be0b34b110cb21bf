//! Shell completion scripts, generated from the clap definition. In bash, zsh and fish an SSH
//! destination (`--ssh`, `-J`, `config DEST`) completes to the Host aliases of the user's ssh config,
//! asked of `sqltun config --list-hosts` when the completion runs.

use clap_complete::Shell;

/// What lists the aliases at completion time (errors and an unreadable config complete to nothing).
const LIST_HOSTS: &str = "sqltun config --list-hosts 2>/dev/null";

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut crate::cli::command(), "sqltun", &mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    // clap completes a host-name value with the shell's own host list (/etc/hosts, known_hosts):
    // those are not the aliases sqltun resolves, so each shell asks sqltun instead.
    match shell {
        Shell::Bash => bash_hosts(&text),
        Shell::Zsh => text.replace(":_hosts'", &format!(r#":{{compadd -- ${{(f)"$({LIST_HOSTS})"}}}}'"#)),
        Shell::Fish => text.replace("(__fish_print_hostnames)", &format!("({LIST_HOSTS})")),
        _ => text,
    }
}

/// clap's bash script completes every option value with file names: for the destination options,
/// the line after their `case` label is replaced.
fn bash_hosts(text: &str) -> String {
    let files = r#"COMPREPLY=($(compgen -f "${cur}"))"#;
    let hosts = format!(r#"COMPREPLY=($(compgen -W "$({LIST_HOSTS})" -- "${{cur}}"))"#);
    let mut out = String::with_capacity(text.len());
    let mut after_destination = false;
    for line in text.split_inclusive('\n') {
        if after_destination && line.trim() == files {
            out.push_str(&line.replacen(files, &hosts, 1));
        } else {
            out.push_str(line);
        }
        after_destination = matches!(line.trim(), "--ssh)" | "--jump)" | "-J)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dynamic alias completion hooks into clap's output by text; if clap changes what it writes for
    /// a host-name value, this fails instead of the aliases silently going missing.
    #[test]
    fn destinations_complete_from_ssh_config() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = script(shell);
            assert!(text.contains(LIST_HOSTS), "{shell}: no alias completion:\n{text}");
            if shell == Shell::Bash {
                // --ssh and --jump in connect, exec, check and authorize; --jump in config.
                assert_eq!(text.matches(LIST_HOSTS).count(), 4 * 3 + 2, "{text}");
            }
            for left in [":_hosts'", "__fish_print_hostnames"] {
                assert!(!text.contains(left), "{shell}: still completes with {left}");
            }
        }
    }
}
