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

complete -c sqltun -n "__fish_sqltun_needs_command" -s h -l help -d 'Print help'
complete -c sqltun -n "__fish_sqltun_needs_command" -s V -l version -d 'Print version'
complete -c sqltun -n "__fish_sqltun_needs_command" -f -a "connect" -d 'Open the tunnel, print the local port on stdout, and forward until Ctrl-C or SIGTERM'
complete -c sqltun -n "__fish_sqltun_needs_command" -f -a "config" -d 'Print what a destination resolves to (ssh -G format, or the whole chain with --json)'
complete -c sqltun -n "__fish_sqltun_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l ssh -d 'SSH destination: an ssh_config alias, [user@]host[:port] or ssh://[user@]host[:port]; IPv6 literals in brackets' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l db -d 'Target as seen from the last hop: host:port or [v6addr]:port. Repeatable' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l local-port -d 'Fixed local port (default: chosen by the OS); repeatable, paired with --db in order' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l bind -d 'Local address to listen on. Anything but loopback also needs --expose-to-network' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s J -l jump -d 'Jump hosts, like ssh -J: HOP[,HOP...] (each [user@]host[:port], ssh://..., or an alias); `none` ignores ProxyJump from the config' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s F -l ssh-config -d 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s i -l identity -d 'Identity (private key) file; repeatable. Default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ...' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s o -d 'An ssh_config directive, as with `ssh -o` (e.g. -o StrictHostKeyChecking=accept-new)' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l known-hosts -d 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l password-file -d 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l passphrase-file -d 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l output -d 'What stdout carries once the tunnel is ready' -r -f -a "port\t'The local port, one line'
addr\t'host:port of the local listener, one line'"
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l expose-to-network -d 'Allow --bind to a non-loopback address: anyone who can reach it reaches the database'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -l batch -d 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s v -l verbose -d 'More detail on stderr (-v progress and decisions, -vv debug, -vvv trace). SQLTUN_LOG takes a tracing filter'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s q -l quiet -d 'Only errors on stderr'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sqltun -n "__fish_sqltun_using_subcommand connect" -s V -l version -d 'Print version'
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s J -l jump -d 'Jump hosts, like ssh -J: HOP[,HOP...] (each [user@]host[:port], ssh://..., or an alias); `none` ignores ProxyJump from the config' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s F -l ssh-config -d 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s i -l identity -d 'Identity (private key) file; repeatable. Default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ...' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s o -d 'An ssh_config directive, as with `ssh -o` (e.g. -o StrictHostKeyChecking=accept-new)' -r
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -l known-hosts -d 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)' -r -F
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -l json -d 'Print the whole plan as JSON: every hop in order, its settings and their origins'
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s v -l verbose -d 'More detail on stderr (-v progress and decisions, -vv debug, -vvv trace). SQLTUN_LOG takes a tracing filter'
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s q -l quiet -d 'Only errors on stderr'
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s h -l help -d 'Print help'
complete -c sqltun -n "__fish_sqltun_using_subcommand config" -s V -l version -d 'Print version'
complete -c sqltun -n "__fish_sqltun_using_subcommand help; and not __fish_seen_subcommand_from connect config help" -f -a "connect" -d 'Open the tunnel, print the local port on stdout, and forward until Ctrl-C or SIGTERM'
complete -c sqltun -n "__fish_sqltun_using_subcommand help; and not __fish_seen_subcommand_from connect config help" -f -a "config" -d 'Print what a destination resolves to (ssh -G format, or the whole chain with --json)'
complete -c sqltun -n "__fish_sqltun_using_subcommand help; and not __fish_seen_subcommand_from connect config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
