
use builtin;
use str;

set edit:completion:arg-completer[sqltun] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'sqltun'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'sqltun'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand connect 'Open the tunnel, print the local port on stdout, and forward until Ctrl-C or SIGTERM'
            cand exec 'Open the tunnel, run a command with it, and exit with the command''s status'
            cand check 'Diagnose every stage (resolution, each hop, the forward, what answers there) and exit'
            cand config 'Print what a destination resolves to (ssh -G format, or the whole chain with --json)'
            cand authorize 'Print authorized_keys lines that let the tunnel''s key only forward to its targets'
            cand completions 'Print the shell completion script for SHELL on stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'sqltun;connect'= {
            cand --tunnels-file 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent''s) and ~/.config/sqltun/tunnels.toml'
            cand --ssh 'SSH destination: an ssh_config alias or [user@]host[:port]'
            cand --db 'Target as seen from the last hop: host:port or a database URL. Repeatable'
            cand -J 'Jump hosts, like ssh -J: HOP[,HOP...]'
            cand --jump 'Jump hosts, like ssh -J: HOP[,HOP...]'
            cand -F 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand --ssh-config 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand -i 'Identity (private key) file; repeatable'
            cand --identity 'Identity (private key) file; repeatable'
            cand -o 'An ssh_config directive, as with ssh -o'
            cand --known-hosts 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)'
            cand --password-file 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt'
            cand --passphrase-file 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt'
            cand --totp-secret-file 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code'
            cand --local-port 'Fixed local port (default: chosen by the OS)'
            cand --bind 'Local address to listen on (default 127.0.0.1, which also takes ::1 on the same port)'
            cand --output 'Ready output: port (default), addr, url, env or json'
            cand --reconnect-timeout 'Give up re-dialling a dead chain after this long (exit code 9); default 10m'
            cand --log-file 'Where a background tunnel writes its messages once it has returned (appended, mode 0600, never through a symbolic link)'
            cand --pid-file 'Write the tunnel''s pid to FILE once it is ready (removed when it stops)'
            cand --max-lifetime 'Close the tunnel after this long (e.g. 90s, 30m, 2h); exit code 10'
            cand --idle-timeout 'Close the tunnel after no connection has been open for this long; exit code 11'
            cand --unix-socket 'Listen on a private Unix socket at PATH instead of a TCP port'
            cand --batch 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error'
            cand --expose-to-network 'Allow --bind to a non-loopback address: anyone who can reach it reaches the database'
            cand --no-reconnect 'When the SSH chain dies, exit (code 8) instead of re-dialling it behind the same port'
            cand --background 'Go to the background once the tunnel is ready (like ssh -f)'
            cand -v 'More detail on stderr (-v, -vv, -vvv)'
            cand --verbose 'More detail on stderr (-v, -vv, -vvv)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'sqltun;exec'= {
            cand --tunnels-file 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent''s) and ~/.config/sqltun/tunnels.toml'
            cand --ssh 'SSH destination: an ssh_config alias or [user@]host[:port]'
            cand --db 'Target as seen from the last hop: host:port or a database URL. Repeatable'
            cand -J 'Jump hosts, like ssh -J: HOP[,HOP...]'
            cand --jump 'Jump hosts, like ssh -J: HOP[,HOP...]'
            cand -F 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand --ssh-config 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand -i 'Identity (private key) file; repeatable'
            cand --identity 'Identity (private key) file; repeatable'
            cand -o 'An ssh_config directive, as with ssh -o'
            cand --known-hosts 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)'
            cand --password-file 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt'
            cand --passphrase-file 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt'
            cand --totp-secret-file 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code'
            cand --local-port 'Fixed local port (default: chosen by the OS)'
            cand --bind 'Local address to listen on (default 127.0.0.1, which also takes ::1 on the same port)'
            cand --reconnect-timeout 'Give up re-dialling a dead chain after this long (exit code 9); default 10m'
            cand --batch 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error'
            cand --expose-to-network 'Allow --bind to a non-loopback address: anyone who can reach it reaches the database'
            cand --no-reconnect 'When the SSH chain dies, exit (code 8) instead of re-dialling it behind the same port'
            cand -v 'More detail on stderr (-v, -vv, -vvv)'
            cand --verbose 'More detail on stderr (-v, -vv, -vvv)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'sqltun;check'= {
            cand --tunnels-file 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent''s) and ~/.config/sqltun/tunnels.toml'
            cand --ssh 'SSH destination: an ssh_config alias or [user@]host[:port]'
            cand --db 'Target as seen from the last hop: host:port or a database URL. Repeatable'
            cand -J 'Jump hosts, like ssh -J: HOP[,HOP...]'
            cand --jump 'Jump hosts, like ssh -J: HOP[,HOP...]'
            cand -F 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand --ssh-config 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand -i 'Identity (private key) file; repeatable'
            cand --identity 'Identity (private key) file; repeatable'
            cand -o 'An ssh_config directive, as with ssh -o'
            cand --known-hosts 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)'
            cand --password-file 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt'
            cand --passphrase-file 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt'
            cand --totp-secret-file 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code'
            cand --batch 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error'
            cand --json 'One JSON object on stdout instead of the table'
            cand -v 'More detail on stderr (-v, -vv, -vvv)'
            cand --verbose 'More detail on stderr (-v, -vv, -vvv)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'sqltun;config'= {
            cand -J 'Jump hosts, like ssh -J: HOP[,HOP...]'
            cand --jump 'Jump hosts, like ssh -J: HOP[,HOP...]'
            cand -F 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand --ssh-config 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand -i 'Identity (private key) file; repeatable'
            cand --identity 'Identity (private key) file; repeatable'
            cand -o 'An ssh_config directive, as with ssh -o'
            cand --known-hosts 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)'
            cand --tunnels-file 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent''s) and ~/.config/sqltun/tunnels.toml'
            cand --json 'Print the whole chain as JSON'
            cand --list-hosts 'List the Host aliases of the ssh config, one per line'
            cand -v 'More detail on stderr (-v, -vv, -vvv)'
            cand --verbose 'More detail on stderr (-v, -vv, -vvv)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'sqltun;authorize'= {
            cand --tunnels-file 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent''s) and ~/.config/sqltun/tunnels.toml'
            cand --ssh 'SSH destination: an ssh_config alias or [user@]host[:port]'
            cand --db 'Target as seen from the last hop: host:port or a database URL. Repeatable'
            cand -J 'Jump hosts, like ssh -J: HOP[,HOP...]'
            cand --jump 'Jump hosts, like ssh -J: HOP[,HOP...]'
            cand -F 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand --ssh-config 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand -i 'Identity (private key) file; repeatable'
            cand --identity 'Identity (private key) file; repeatable'
            cand -o 'An ssh_config directive, as with ssh -o'
            cand --known-hosts 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)'
            cand --password-file 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt'
            cand --passphrase-file 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt'
            cand --totp-secret-file 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code'
            cand --new-key 'Create a new ed25519 key for the tunnel and print the lines for it'
            cand --batch 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error'
            cand -v 'More detail on stderr (-v, -vv, -vvv)'
            cand --verbose 'More detail on stderr (-v, -vv, -vvv)'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'sqltun;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'sqltun;help'= {
            cand connect 'Open the tunnel, print the local port on stdout, and forward until Ctrl-C or SIGTERM'
            cand exec 'Open the tunnel, run a command with it, and exit with the command''s status'
            cand check 'Diagnose every stage (resolution, each hop, the forward, what answers there) and exit'
            cand config 'Print what a destination resolves to (ssh -G format, or the whole chain with --json)'
            cand authorize 'Print authorized_keys lines that let the tunnel''s key only forward to its targets'
            cand completions 'Print the shell completion script for SHELL on stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'sqltun;help;connect'= {
        }
        &'sqltun;help;exec'= {
        }
        &'sqltun;help;check'= {
        }
        &'sqltun;help;config'= {
        }
        &'sqltun;help;authorize'= {
        }
        &'sqltun;help;completions'= {
        }
        &'sqltun;help;help'= {
        }
    ]
    $completions[$command]
}
