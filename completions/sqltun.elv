
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
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand connect 'Open the tunnel, print the local port on stdout, and forward until Ctrl-C or SIGTERM'
            cand exec 'Open the tunnel, run a command with it, and exit with the command''s status'
            cand check 'Diagnose every stage (resolution, each hop, the forward, what answers there) and exit'
            cand config 'Print what a destination resolves to (ssh -G format, or the whole chain with --json)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'sqltun;connect'= {
            cand --ssh 'SSH destination: an ssh_config alias, [user@]host[:port] or ssh://[user@]host[:port]; IPv6 literals in brackets'
            cand --db 'Target as seen from the last hop: host:port, [v6addr]:port, or a database URL (postgres://, mysql://, mariadb://, redis://, rediss://, mongodb://, sqlserver://, clickhouse://; the port defaults by scheme). Repeatable'
            cand --local-port 'Fixed local port (default: chosen by the OS); repeatable, paired with --db in order'
            cand --bind 'Local address to listen on; the default also takes ::1 on the same port. Anything but loopback also needs --expose-to-network'
            cand -J 'Jump hosts, like ssh -J: HOP[,HOP...] (each [user@]host[:port], ssh://..., or an alias); `none` ignores ProxyJump from the config'
            cand --jump 'Jump hosts, like ssh -J: HOP[,HOP...] (each [user@]host[:port], ssh://..., or an alias); `none` ignores ProxyJump from the config'
            cand -F 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand --ssh-config 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand -i 'Identity (private key) file; repeatable. Default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ...'
            cand --identity 'Identity (private key) file; repeatable. Default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ...'
            cand -o 'An ssh_config directive, as with `ssh -o` (e.g. -o StrictHostKeyChecking=accept-new). Those that say where to connect (HostName, User, Port, ProxyJump, ...) apply to the destination only, the others to every hop'
            cand --known-hosts 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)'
            cand --password-file 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt'
            cand --passphrase-file 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt'
            cand --totp-secret-file 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code'
            cand --output 'What stdout carries once the tunnel is ready'
            cand --reconnect-timeout 'Give up re-dialling a dead chain after this long (exit code 9); default 10m'
            cand --pid-file 'Write the tunnel''s pid to FILE once it is ready (removed when it stops)'
            cand --max-lifetime 'Close the tunnel after this long (e.g. 90s, 30m, 2h); exit code 10'
            cand --idle-timeout 'Close the tunnel after no connection has been open for this long; exit code 11'
            cand --unix-socket 'Listen on a Unix socket at PATH instead of a TCP port, so only you can reach it (mode 0600, in a directory of yours with mode 0700; a missing one is created). For a PostgreSQL target a directory gets DIR/.s.PGSQL.PORT, so `psql -h DIR -p PORT` works. With one --db'
            cand --expose-to-network 'Allow --bind to a non-loopback address: anyone who can reach it reaches the database'
            cand --batch 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error'
            cand --no-reconnect 'When the SSH chain dies, exit (code 8) instead of re-dialling it behind the same port'
            cand --background 'Go to the background once the tunnel is ready (like ssh -f): the ready output is printed, the command returns 0, the tunnel stays up'
            cand -v 'More detail on stderr (-v progress and decisions, -vv debug, -vvv trace). SQLTUN_LOG takes a tracing filter'
            cand --verbose 'More detail on stderr (-v progress and decisions, -vv debug, -vvv trace). SQLTUN_LOG takes a tracing filter'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sqltun;exec'= {
            cand --ssh 'SSH destination: an ssh_config alias, [user@]host[:port] or ssh://[user@]host[:port]; IPv6 literals in brackets'
            cand --db 'Target as seen from the last hop: host:port, [v6addr]:port, or a database URL (postgres://, mysql://, mariadb://, redis://, rediss://, mongodb://, sqlserver://, clickhouse://; the port defaults by scheme). Repeatable'
            cand --local-port 'Fixed local port (default: chosen by the OS); repeatable, paired with --db in order'
            cand --bind 'Local address to listen on; the default also takes ::1 on the same port. Anything but loopback also needs --expose-to-network'
            cand -J 'Jump hosts, like ssh -J: HOP[,HOP...] (each [user@]host[:port], ssh://..., or an alias); `none` ignores ProxyJump from the config'
            cand --jump 'Jump hosts, like ssh -J: HOP[,HOP...] (each [user@]host[:port], ssh://..., or an alias); `none` ignores ProxyJump from the config'
            cand -F 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand --ssh-config 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand -i 'Identity (private key) file; repeatable. Default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ...'
            cand --identity 'Identity (private key) file; repeatable. Default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ...'
            cand -o 'An ssh_config directive, as with `ssh -o` (e.g. -o StrictHostKeyChecking=accept-new). Those that say where to connect (HostName, User, Port, ProxyJump, ...) apply to the destination only, the others to every hop'
            cand --known-hosts 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)'
            cand --password-file 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt'
            cand --passphrase-file 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt'
            cand --totp-secret-file 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code'
            cand --output 'What stdout carries once the tunnel is ready'
            cand --reconnect-timeout 'Give up re-dialling a dead chain after this long (exit code 9); default 10m'
            cand --expose-to-network 'Allow --bind to a non-loopback address: anyone who can reach it reaches the database'
            cand --batch 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error'
            cand --no-reconnect 'When the SSH chain dies, exit (code 8) instead of re-dialling it behind the same port'
            cand -v 'More detail on stderr (-v progress and decisions, -vv debug, -vvv trace). SQLTUN_LOG takes a tracing filter'
            cand --verbose 'More detail on stderr (-v progress and decisions, -vv debug, -vvv trace). SQLTUN_LOG takes a tracing filter'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sqltun;check'= {
            cand --ssh 'SSH destination: an ssh_config alias, [user@]host[:port] or ssh://[user@]host[:port]; IPv6 literals in brackets'
            cand --db 'Target as seen from the last hop: host:port, [v6addr]:port, or a database URL (postgres://, mysql://, mariadb://, redis://, rediss://, mongodb://, sqlserver://, clickhouse://; the port defaults by scheme). Repeatable'
            cand --local-port 'Fixed local port (default: chosen by the OS); repeatable, paired with --db in order'
            cand --bind 'Local address to listen on; the default also takes ::1 on the same port. Anything but loopback also needs --expose-to-network'
            cand -J 'Jump hosts, like ssh -J: HOP[,HOP...] (each [user@]host[:port], ssh://..., or an alias); `none` ignores ProxyJump from the config'
            cand --jump 'Jump hosts, like ssh -J: HOP[,HOP...] (each [user@]host[:port], ssh://..., or an alias); `none` ignores ProxyJump from the config'
            cand -F 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand --ssh-config 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand -i 'Identity (private key) file; repeatable. Default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ...'
            cand --identity 'Identity (private key) file; repeatable. Default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ...'
            cand -o 'An ssh_config directive, as with `ssh -o` (e.g. -o StrictHostKeyChecking=accept-new). Those that say where to connect (HostName, User, Port, ProxyJump, ...) apply to the destination only, the others to every hop'
            cand --known-hosts 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)'
            cand --password-file 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt'
            cand --passphrase-file 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt'
            cand --totp-secret-file 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code'
            cand --output 'What stdout carries once the tunnel is ready'
            cand --reconnect-timeout 'Give up re-dialling a dead chain after this long (exit code 9); default 10m'
            cand --expose-to-network 'Allow --bind to a non-loopback address: anyone who can reach it reaches the database'
            cand --batch 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error'
            cand --no-reconnect 'When the SSH chain dies, exit (code 8) instead of re-dialling it behind the same port'
            cand --json 'One JSON object on stdout instead of the table'
            cand -v 'More detail on stderr (-v progress and decisions, -vv debug, -vvv trace). SQLTUN_LOG takes a tracing filter'
            cand --verbose 'More detail on stderr (-v progress and decisions, -vv debug, -vvv trace). SQLTUN_LOG takes a tracing filter'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sqltun;config'= {
            cand -J 'Jump hosts, like ssh -J: HOP[,HOP...] (each [user@]host[:port], ssh://..., or an alias); `none` ignores ProxyJump from the config'
            cand --jump 'Jump hosts, like ssh -J: HOP[,HOP...] (each [user@]host[:port], ssh://..., or an alias); `none` ignores ProxyJump from the config'
            cand -F 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand --ssh-config 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none'
            cand -i 'Identity (private key) file; repeatable. Default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ...'
            cand --identity 'Identity (private key) file; repeatable. Default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ...'
            cand -o 'An ssh_config directive, as with `ssh -o` (e.g. -o StrictHostKeyChecking=accept-new). Those that say where to connect (HostName, User, Port, ProxyJump, ...) apply to the destination only, the others to every hop'
            cand --known-hosts 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)'
            cand --json 'Print the whole plan as JSON: every hop in order, its settings and their origins'
            cand -v 'More detail on stderr (-v progress and decisions, -vv debug, -vvv trace). SQLTUN_LOG takes a tracing filter'
            cand --verbose 'More detail on stderr (-v progress and decisions, -vv debug, -vvv trace). SQLTUN_LOG takes a tracing filter'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sqltun;help'= {
            cand connect 'Open the tunnel, print the local port on stdout, and forward until Ctrl-C or SIGTERM'
            cand exec 'Open the tunnel, run a command with it, and exit with the command''s status'
            cand check 'Diagnose every stage (resolution, each hop, the forward, what answers there) and exit'
            cand config 'Print what a destination resolves to (ssh -G format, or the whole chain with --json)'
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
        &'sqltun;help;help'= {
        }
    ]
    $completions[$command]
}
