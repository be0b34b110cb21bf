
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'sqltun' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'sqltun'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'sqltun' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Open the tunnel, print the local port on stdout, and forward until Ctrl-C or SIGTERM')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Open the tunnel, run a command with it, and exit with the command''s status')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Diagnose every stage (resolution, each hop, the forward, what answers there) and exit')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print what a destination resolves to (ssh -G format, or the whole chain with --json)')
            [CompletionResult]::new('authorize', 'authorize', [CompletionResultType]::ParameterValue, 'Print authorized_keys lines that let the tunnel''s key only forward to its targets')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the shell completion script for SHELL on stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'sqltun;connect' {
            [CompletionResult]::new('--tunnels-file', '--tunnels-file', [CompletionResultType]::ParameterName, 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent''s) and ~/.config/sqltun/tunnels.toml')
            [CompletionResult]::new('--ssh', '--ssh', [CompletionResultType]::ParameterName, 'SSH destination: an ssh_config alias or [user@]host[:port]')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'Target as seen from the last hop: host:port or a database URL. Repeatable')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump hosts, like ssh -J: HOP[,HOP...]')
            [CompletionResult]::new('--jump', '--jump', [CompletionResultType]::ParameterName, 'Jump hosts, like ssh -J: HOP[,HOP...]')
            [CompletionResult]::new('-F', '-F ', [CompletionResultType]::ParameterName, 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none')
            [CompletionResult]::new('--ssh-config', '--ssh-config', [CompletionResultType]::ParameterName, 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file; repeatable')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file; repeatable')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'An ssh_config directive, as with ssh -o')
            [CompletionResult]::new('--known-hosts', '--known-hosts', [CompletionResultType]::ParameterName, 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt')
            [CompletionResult]::new('--passphrase-file', '--passphrase-file', [CompletionResultType]::ParameterName, 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt')
            [CompletionResult]::new('--totp-secret-file', '--totp-secret-file', [CompletionResultType]::ParameterName, 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code')
            [CompletionResult]::new('--local-port', '--local-port', [CompletionResultType]::ParameterName, 'Fixed local port (default: chosen by the OS)')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Local address to listen on (default 127.0.0.1, which also takes ::1 on the same port)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Ready output: port (default), addr, url, env or json')
            [CompletionResult]::new('--reconnect-timeout', '--reconnect-timeout', [CompletionResultType]::ParameterName, 'Give up re-dialling a dead chain after this long (exit code 9); default 10m')
            [CompletionResult]::new('--log-file', '--log-file', [CompletionResultType]::ParameterName, 'Where a background tunnel writes its messages once it has returned (appended, mode 0600, never through a symbolic link)')
            [CompletionResult]::new('--pid-file', '--pid-file', [CompletionResultType]::ParameterName, 'Write the tunnel''s pid to FILE once it is ready (removed when it stops)')
            [CompletionResult]::new('--max-lifetime', '--max-lifetime', [CompletionResultType]::ParameterName, 'Close the tunnel after this long (e.g. 90s, 30m, 2h); exit code 10')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Close the tunnel after no connection has been open for this long; exit code 11')
            [CompletionResult]::new('--unix-socket', '--unix-socket', [CompletionResultType]::ParameterName, 'Listen on a private Unix socket at PATH instead of a TCP port')
            [CompletionResult]::new('--batch', '--batch', [CompletionResultType]::ParameterName, 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error')
            [CompletionResult]::new('--expose-to-network', '--expose-to-network', [CompletionResultType]::ParameterName, 'Allow --bind to a non-loopback address: anyone who can reach it reaches the database')
            [CompletionResult]::new('--no-reconnect', '--no-reconnect', [CompletionResultType]::ParameterName, 'When the SSH chain dies, exit (code 8) instead of re-dialling it behind the same port')
            [CompletionResult]::new('--background', '--background', [CompletionResultType]::ParameterName, 'Go to the background once the tunnel is ready (like ssh -f)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v, -vv, -vvv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v, -vv, -vvv)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'sqltun;exec' {
            [CompletionResult]::new('--tunnels-file', '--tunnels-file', [CompletionResultType]::ParameterName, 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent''s) and ~/.config/sqltun/tunnels.toml')
            [CompletionResult]::new('--ssh', '--ssh', [CompletionResultType]::ParameterName, 'SSH destination: an ssh_config alias or [user@]host[:port]')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'Target as seen from the last hop: host:port or a database URL. Repeatable')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump hosts, like ssh -J: HOP[,HOP...]')
            [CompletionResult]::new('--jump', '--jump', [CompletionResultType]::ParameterName, 'Jump hosts, like ssh -J: HOP[,HOP...]')
            [CompletionResult]::new('-F', '-F ', [CompletionResultType]::ParameterName, 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none')
            [CompletionResult]::new('--ssh-config', '--ssh-config', [CompletionResultType]::ParameterName, 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file; repeatable')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file; repeatable')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'An ssh_config directive, as with ssh -o')
            [CompletionResult]::new('--known-hosts', '--known-hosts', [CompletionResultType]::ParameterName, 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt')
            [CompletionResult]::new('--passphrase-file', '--passphrase-file', [CompletionResultType]::ParameterName, 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt')
            [CompletionResult]::new('--totp-secret-file', '--totp-secret-file', [CompletionResultType]::ParameterName, 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code')
            [CompletionResult]::new('--local-port', '--local-port', [CompletionResultType]::ParameterName, 'Fixed local port (default: chosen by the OS)')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Local address to listen on (default 127.0.0.1, which also takes ::1 on the same port)')
            [CompletionResult]::new('--reconnect-timeout', '--reconnect-timeout', [CompletionResultType]::ParameterName, 'Give up re-dialling a dead chain after this long (exit code 9); default 10m')
            [CompletionResult]::new('--batch', '--batch', [CompletionResultType]::ParameterName, 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error')
            [CompletionResult]::new('--expose-to-network', '--expose-to-network', [CompletionResultType]::ParameterName, 'Allow --bind to a non-loopback address: anyone who can reach it reaches the database')
            [CompletionResult]::new('--no-reconnect', '--no-reconnect', [CompletionResultType]::ParameterName, 'When the SSH chain dies, exit (code 8) instead of re-dialling it behind the same port')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v, -vv, -vvv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v, -vv, -vvv)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'sqltun;check' {
            [CompletionResult]::new('--tunnels-file', '--tunnels-file', [CompletionResultType]::ParameterName, 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent''s) and ~/.config/sqltun/tunnels.toml')
            [CompletionResult]::new('--ssh', '--ssh', [CompletionResultType]::ParameterName, 'SSH destination: an ssh_config alias or [user@]host[:port]')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'Target as seen from the last hop: host:port or a database URL. Repeatable')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump hosts, like ssh -J: HOP[,HOP...]')
            [CompletionResult]::new('--jump', '--jump', [CompletionResultType]::ParameterName, 'Jump hosts, like ssh -J: HOP[,HOP...]')
            [CompletionResult]::new('-F', '-F ', [CompletionResultType]::ParameterName, 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none')
            [CompletionResult]::new('--ssh-config', '--ssh-config', [CompletionResultType]::ParameterName, 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file; repeatable')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file; repeatable')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'An ssh_config directive, as with ssh -o')
            [CompletionResult]::new('--known-hosts', '--known-hosts', [CompletionResultType]::ParameterName, 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt')
            [CompletionResult]::new('--passphrase-file', '--passphrase-file', [CompletionResultType]::ParameterName, 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt')
            [CompletionResult]::new('--totp-secret-file', '--totp-secret-file', [CompletionResultType]::ParameterName, 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code')
            [CompletionResult]::new('--batch', '--batch', [CompletionResultType]::ParameterName, 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON object on stdout instead of the table')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v, -vv, -vvv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v, -vv, -vvv)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'sqltun;config' {
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump hosts, like ssh -J: HOP[,HOP...]')
            [CompletionResult]::new('--jump', '--jump', [CompletionResultType]::ParameterName, 'Jump hosts, like ssh -J: HOP[,HOP...]')
            [CompletionResult]::new('-F', '-F ', [CompletionResultType]::ParameterName, 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none')
            [CompletionResult]::new('--ssh-config', '--ssh-config', [CompletionResultType]::ParameterName, 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file; repeatable')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file; repeatable')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'An ssh_config directive, as with ssh -o')
            [CompletionResult]::new('--known-hosts', '--known-hosts', [CompletionResultType]::ParameterName, 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)')
            [CompletionResult]::new('--tunnels-file', '--tunnels-file', [CompletionResultType]::ParameterName, 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent''s) and ~/.config/sqltun/tunnels.toml')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the whole chain as JSON')
            [CompletionResult]::new('--list-hosts', '--list-hosts', [CompletionResultType]::ParameterName, 'List the Host aliases of the ssh config, one per line')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v, -vv, -vvv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v, -vv, -vvv)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'sqltun;authorize' {
            [CompletionResult]::new('--tunnels-file', '--tunnels-file', [CompletionResultType]::ParameterName, 'The tunnels file to read NAME from, instead of ./sqltun.toml (or a parent''s) and ~/.config/sqltun/tunnels.toml')
            [CompletionResult]::new('--ssh', '--ssh', [CompletionResultType]::ParameterName, 'SSH destination: an ssh_config alias or [user@]host[:port]')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'Target as seen from the last hop: host:port or a database URL. Repeatable')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump hosts, like ssh -J: HOP[,HOP...]')
            [CompletionResult]::new('--jump', '--jump', [CompletionResultType]::ParameterName, 'Jump hosts, like ssh -J: HOP[,HOP...]')
            [CompletionResult]::new('-F', '-F ', [CompletionResultType]::ParameterName, 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none')
            [CompletionResult]::new('--ssh-config', '--ssh-config', [CompletionResultType]::ParameterName, 'ssh config file (default ~/.ssh/config, then /etc/ssh/ssh_config); `none` reads none')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file; repeatable')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file; repeatable')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'An ssh_config directive, as with ssh -o')
            [CompletionResult]::new('--known-hosts', '--known-hosts', [CompletionResultType]::ParameterName, 'known_hosts file to read and record keys in, for every hop (default: UserKnownHostsFile, as OpenSSH)')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the SSH password from FILE (first line) instead of SQLTUN_SSH_PASSWORD or a prompt')
            [CompletionResult]::new('--passphrase-file', '--passphrase-file', [CompletionResultType]::ParameterName, 'Read the identity passphrase from FILE (first line) instead of SQLTUN_SSH_PASSPHRASE or a prompt')
            [CompletionResult]::new('--totp-secret-file', '--totp-secret-file', [CompletionResultType]::ParameterName, 'Read the TOTP secret (base32, or an otpauth://totp/ URI) from FILE instead of SQLTUN_TOTP_SECRET; sqltun answers "Verification code" prompts with the current code')
            [CompletionResult]::new('--new-key', '--new-key', [CompletionResultType]::ParameterName, 'Create a new ed25519 key for the tunnel and print the lines for it')
            [CompletionResult]::new('--batch', '--batch', [CompletionResultType]::ParameterName, 'Never prompt (implied when no terminal is attached): a missing secret or an unknown host key is an error')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr (-v, -vv, -vvv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr (-v, -vv, -vvv)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'sqltun;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'sqltun;help' {
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Open the tunnel, print the local port on stdout, and forward until Ctrl-C or SIGTERM')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Open the tunnel, run a command with it, and exit with the command''s status')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Diagnose every stage (resolution, each hop, the forward, what answers there) and exit')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print what a destination resolves to (ssh -G format, or the whole chain with --json)')
            [CompletionResult]::new('authorize', 'authorize', [CompletionResultType]::ParameterValue, 'Print authorized_keys lines that let the tunnel''s key only forward to its targets')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the shell completion script for SHELL on stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'sqltun;help;connect' {
            break
        }
        'sqltun;help;exec' {
            break
        }
        'sqltun;help;check' {
            break
        }
        'sqltun;help;config' {
            break
        }
        'sqltun;help;authorize' {
            break
        }
        'sqltun;help;completions' {
            break
        }
        'sqltun;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
