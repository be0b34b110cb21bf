# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_sqltun_global_optspecs
    string join \n h/help V/version
end

function __fish_sqltun_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_sqltun_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_sqltun_using_subcommand
    set -l cmd (__fish_sqltun_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c sqltun -n "__fish_sqltun_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sqltun -n "__fish_sqltun_needs_command" -s V -l version -d 'Print version'
complete -c sqltun -n "__fish_sqltun_needs_command" -f -a "connect" -d 'Open the tunnel, print the local port on stdout, and forward until Ctrl-C or SIGTERM'
complete -c sqltun -n "__fish_sqltun_needs_command" -f -a "exec" -d 'Open the tunnel, run a command with it, and exit with the command\'s status'
complete -c sqltun -n "__fish_sqltun_needs_command" -f -a "check" -d 'Diagnose every stage (resolution, each hop, the forward, what answers there) and exit'
complete -c sqltun -n "__fish_sqltun_needs_command" -f -a "config" -d 'Print what a destination resolves to (ssh -G format, or the whole chain with --json)'
complete -c sqltun -n "__fish_sqltun_needs_command" -f -a "authorize" -d 'Print authorized_keys lines that let the tunnel\'s key only forward to its targets'
complete -c sqltun -n "__fish_sqltun_needs_command" -f -a "completions" -d 'Print the shell completion script for SHELL on stdout'
complete -c sqltun -n "__fish_sqltun_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l tunnels-file -d 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent\'s) and ~/.config/sqltun/tunnels.toml' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l ssh -d 'SSH destination: an ssh_config alias or [user@]host[:port]' -r -f -a "(sqltun config --list-hosts 2>/dev/null)"
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l db -d 'Target as seen from the last hop: host:port or a database URL. Repeatable' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s J -l jump -d 'Jump hosts, like ssh -J: HOP[,HOP...]' -r -f -a "(sqltun config --list-hosts 2>/dev/null)"
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s F -l ssh-config -d 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s i -l identity -d 'Identity (private key) file; repeatable' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s o -d 'An ssh_config directive, as with ssh -o' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l known-hosts -d 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l password-file -d 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l passphrase-file -d 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l totp-secret-file -d 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l local-port -d 'Fixed local port (default: chosen by the OS)' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l bind -d 'Local address to listen on (default 127.0.0.1, which also takes ::1 on the same port)' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l output -d 'Ready output: port (default), addr, url, env or json' -r -f -a "port\t'The local port, one line per target'
addr\t'host:port of the local listener, one line per target'
url\t'The target\'s URL rewritten to the local end (tcp://host:port for a plain host:port target)'
env\t'SQLTUN_HOST=... lines for a shell\'s eval (indexed with _1, _2, ... for several targets)'
json\t'One JSON object per line: a `ready` event per target, then `closed` (and reconnect events)'"
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l reconnect-timeout -d 'Give up re-dialling a dead chain after this long (exit code 9); default 10m' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l log-file -d 'Where a background tunnel writes its messages once it has returned (appended, mode 0600, never through a symbolic link)' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l pid-file -d 'Write the tunnel\'s pid to FILE once it is ready (removed when it stops)' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l max-lifetime -d 'Close the tunnel after this long (e.g. 90s, 30m, 2h); exit code 10' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l idle-timeout -d 'Close the tunnel after no connection has been open for this long; exit code 11' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l unix-socket -d 'Listen on a private Unix socket at PATH instead of a TCP port' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l batch -d 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l expose-to-network -d 'Allow --bind to a non-loopback address: anyone who can reach it reaches the database'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l no-reconnect -d 'When the SSH chain dies, exit (code 8) instead of re-dialling it behind the same port'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l background -d 'Go to the background once the tunnel is ready (like ssh -f)'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s v -l verbose -d 'More detail on stderr (-v, -vv, -vvv)'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s q -l quiet -d 'Only errors on stderr'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l tunnels-file -d 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent\'s) and ~/.config/sqltun/tunnels.toml' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l ssh -d 'SSH destination: an ssh_config alias or [user@]host[:port]' -r -f -a "(sqltun config --list-hosts 2>/dev/null)"
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l db -d 'Target as seen from the last hop: host:port or a database URL. Repeatable' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -s J -l jump -d 'Jump hosts, like ssh -J: HOP[,HOP...]' -r -f -a "(sqltun config --list-hosts 2>/dev/null)"
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -s F -l ssh-config -d 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -s i -l identity -d 'Identity (private key) file; repeatable' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -s o -d 'An ssh_config directive, as with ssh -o' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l known-hosts -d 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l password-file -d 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l passphrase-file -d 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l totp-secret-file -d 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l local-port -d 'Fixed local port (default: chosen by the OS)' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l bind -d 'Local address to listen on (default 127.0.0.1, which also takes ::1 on the same port)' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l reconnect-timeout -d 'Give up re-dialling a dead chain after this long (exit code 9); default 10m' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l batch -d 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error'
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l expose-to-network -d 'Allow --bind to a non-loopback address: anyone who can reach it reaches the database'
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -l no-reconnect -d 'When the SSH chain dies, exit (code 8) instead of re-dialling it behind the same port'
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -s v -l verbose -d 'More detail on stderr (-v, -vv, -vvv)'
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -s q -l quiet -d 'Only errors on stderr'
complete -c sqltun -n "__fish_sqltun_using_subcommand exec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -l tunnels-file -d 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent\'s) and ~/.config/sqltun/tunnels.toml' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -l ssh -d 'SSH destination: an ssh_config alias or [user@]host[:port]' -r -f -a "(sqltun config --list-hosts 2>/dev/null)"
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -l db -d 'Target as seen from the last hop: host:port or a database URL. Repeatable' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -s J -l jump -d 'Jump hosts, like ssh -J: HOP[,HOP...]' -r -f -a "(sqltun config --list-hosts 2>/dev/null)"
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -s F -l ssh-config -d 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -s i -l identity -d 'Identity (private key) file; repeatable' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -s o -d 'An ssh_config directive, as with ssh -o' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -l known-hosts -d 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -l password-file -d 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -l passphrase-file -d 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -l totp-secret-file -d 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -l batch -d 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error'
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -l json -d 'One JSON object on stdout instead of the table'
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -s v -l verbose -d 'More detail on stderr (-v, -vv, -vvv)'
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -s q -l quiet -d 'Only errors on stderr'
complete -c sqltun -n "__fish_sqltun_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s J -l jump -d 'Jump hosts, like ssh -J: HOP[,HOP...]' -r -f -a "(sqltun config --list-hosts 2>/dev/null)"
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s F -l ssh-config -d 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s i -l identity -d 'Identity (private key) file; repeatable' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s o -d 'An ssh_config directive, as with ssh -o' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -l known-hosts -d 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -l tunnels-file -d 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent\'s) and ~/.config/sqltun/tunnels.toml' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -l json -d 'Print the whole chain as JSON'
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -l list-hosts -d 'List the Host aliases of the ssh config, one per line'
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s v -l verbose -d 'More detail on stderr (-v, -vv, -vvv)'
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s q -l quiet -d 'Only errors on stderr'
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -l tunnels-file -d 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent\'s) and ~/.config/sqltun/tunnels.toml' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -l ssh -d 'SSH destination: an ssh_config alias or [user@]host[:port]' -r -f -a "(sqltun config --list-hosts 2>/dev/null)"
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -l db -d 'Target as seen from the last hop: host:port or a database URL. Repeatable' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -s J -l jump -d 'Jump hosts, like ssh -J: HOP[,HOP...]' -r -f -a "(sqltun config --list-hosts 2>/dev/null)"
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -s F -l ssh-config -d 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -s i -l identity -d 'Identity (private key) file; repeatable' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -s o -d 'An ssh_config directive, as with ssh -o' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -l known-hosts -d 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -l password-file -d 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -l passphrase-file -d 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -l totp-secret-file -d 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -l new-key -d 'Create a new ed25519 key for the tunnel and print the lines for it' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -l batch -d 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error'
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -s v -l verbose -d 'More detail on stderr (-v, -vv, -vvv)'
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -s q -l quiet -d 'Only errors on stderr'
complete -c sqltun -n "__fish_sqltun_using_subcommand authorize" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sqltun -n "__fish_sqltun_using_subcommand completions" -s h -l help -d 'Print help'
complete -c sqltun -n "__fish_sqltun_using_subcommand help; and not __fish_seen_subcommand_from connect exec check config authorize completions help" -f -a "connect" -d 'Open the tunnel, print the local port on stdout, and forward until Ctrl-C or SIGTERM'
complete -c sqltun -n "__fish_sqltun_using_subcommand help; and not __fish_seen_subcommand_from connect exec check config authorize completions help" -f -a "exec" -d 'Open the tunnel, run a command with it, and exit with the command\'s status'
complete -c sqltun -n "__fish_sqltun_using_subcommand help; and not __fish_seen_subcommand_from connect exec check config authorize completions help" -f -a "check" -d 'Diagnose every stage (resolution, each hop, the forward, what answers there) and exit'
complete -c sqltun -n "__fish_sqltun_using_subcommand help; and not __fish_seen_subcommand_from connect exec check config authorize completions help" -f -a "config" -d 'Print what a destination resolves to (ssh -G format, or the whole chain with --json)'
complete -c sqltun -n "__fish_sqltun_using_subcommand help; and not __fish_seen_subcommand_from connect exec check config authorize completions help" -f -a "authorize" -d 'Print authorized_keys lines that let the tunnel\'s key only forward to its targets'
complete -c sqltun -n "__fish_sqltun_using_subcommand help; and not __fish_seen_subcommand_from connect exec check config authorize completions help" -f -a "completions" -d 'Print the shell completion script for SHELL on stdout'
complete -c sqltun -n "__fish_sqltun_using_subcommand help; and not __fish_seen_subcommand_from connect exec check config authorize completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
