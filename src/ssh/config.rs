//! The SSH client configuration for one hop: algorithm preferences, narrowed by ssh_config's lists.

use std::borrow::Cow;
use std::time::Duration;

use russh::keys::Algorithm;
use russh::{cipher, kex, mac};

use crate::error::{Error, Result};
use crate::plan::Hop;

/// The SSH client configuration for one hop: sqltun's preferences, narrowed by any algorithm lists
/// the configuration names. An algorithm russh lacks is named in the error.
pub(crate) fn client_config(
    hop: &Hop,
    known_key_types: &[String],
    want_certificates: bool,
) -> Result<russh::client::Config> {
    let key = host_key_algorithms(hop, known_key_types)?;
    // Ask for host certificates only when a CA is trusted for this host: otherwise a server that has
    // one would present it and we could only fall back to its plain key.
    let host_key_certificates = if want_certificates {
        Cow::Owned(listed_certificates(hop).unwrap_or_else(|| key.clone()))
    } else {
        Cow::Borrowed(&[][..])
    };
    let preferred = russh::Preferred {
        host_key_certificates,
        key: Cow::Owned(key),
        cipher: Cow::Owned(ciphers(hop)?),
        kex: Cow::Owned(kex_algorithms(hop)?),
        mac: Cow::Owned(macs(hop)?),
        compression: compression(hop),
    };
    Ok(russh::client::Config {
        limits: rekey_limits(),
        client_id: russh::SshId::Standard(client_id().into()),
        preferred,
        keepalive_interval: hop.keepalive_interval,
        keepalive_max: hop.keepalive_max as usize,
        nodelay: true,
        window_size: CHANNEL_WINDOW,
        channel_buffer_size: CHANNEL_MESSAGES,
        ..Default::default()
    })
}

/// Host-key algorithms to accept, those whose keys are already in known_hosts first, as OpenSSH orders
/// them, so a host with several key types is verified against the one we know. `ssh-rsa` (RSA with
/// SHA-1 signatures) is left out unless the list names it, as OpenSSH 8.8+ does.
fn host_key_algorithms(hop: &Hop, known_key_types: &[String]) -> Result<Vec<Algorithm>> {
    let mut key: Vec<Algorithm> = match &hop.algorithms.host_key {
        None => russh::Preferred::DEFAULT
            .key
            .iter()
            .filter(|a| !is_sha1_rsa(a))
            .cloned()
            .collect(),
        Some(names) => {
            let plain: Vec<String> = names.iter().filter(|n| !n.ends_with(CERT_SUFFIX)).cloned().collect();
            // A list of certificate algorithms only is refused with all of them named.
            let plain = if plain.is_empty() { names.clone() } else { plain };
            pick("HostKeyAlgorithms", &plain, parse_host_key_algorithm)?
        }
    };
    let type_of = |a: &Algorithm| {
        if a.clone().is_rsa() {
            "ssh-rsa".to_string()
        } else {
            a.to_string()
        }
    };
    key.sort_by_key(|a| !known_key_types.contains(&type_of(a)));
    Ok(key)
}

/// Certificate algorithms the list names (`X-cert-v01@openssh.com` is advertised for `X`); `None`
/// without a list.
fn listed_certificates(hop: &Hop) -> Option<Vec<Algorithm>> {
    hop.algorithms.host_key.as_ref().map(|names| {
        names
            .iter()
            .filter_map(|n| n.strip_suffix(CERT_SUFFIX))
            .filter_map(parse_host_key_algorithm)
            .collect()
    })
}

/// AES-GCM first: with AES instructions it is about twice as fast as chacha20 here.
fn ciphers(hop: &Hop) -> Result<Vec<cipher::Name>> {
    match &hop.algorithms.ciphers {
        None => Ok(vec![
            cipher::AES_256_GCM,
            cipher::AES_128_GCM,
            cipher::CHACHA20_POLY1305,
            cipher::AES_256_CTR,
            cipher::AES_192_CTR,
            cipher::AES_128_CTR,
        ]),
        Some(names) => pick("Ciphers", names, |n| {
            cipher::Name::try_from(n)
                .ok()
                .filter(|c| *c != cipher::NONE && *c != cipher::CLEAR)
        }),
    }
}

fn kex_algorithms(hop: &Hop) -> Result<Vec<kex::Name>> {
    match &hop.algorithms.kex {
        None => Ok(russh::Preferred::DEFAULT.kex.to_vec()),
        Some(names) => {
            let mut chosen = pick("KexAlgorithms", names, |n| kex::Name::try_from(n).ok())?;
            // Protocol extension markers, not algorithms: keep them whatever the user lists.
            chosen.extend([
                kex::EXTENSION_SUPPORT_AS_CLIENT,
                kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
            ]);
            Ok(chosen)
        }
    }
}

fn macs(hop: &Hop) -> Result<Vec<mac::Name>> {
    match &hop.algorithms.macs {
        None => Ok(russh::Preferred::DEFAULT.mac.to_vec()),
        Some(names) => pick("MACs", names, |n| {
            mac::Name::try_from(n).ok().filter(|m| *m != mac::NONE)
        }),
    }
}

fn compression(hop: &Hop) -> Cow<'static, [russh::compression::Name]> {
    if hop.algorithms.compression {
        Cow::Borrowed(
            &[
                russh::compression::ZLIB_LEGACY,
                russh::compression::ZLIB,
                russh::compression::NONE,
            ][..],
        )
    } else {
        Cow::Borrowed(&[russh::compression::NONE][..])
    }
}

/// Our identification string (without its CR LF).
pub(crate) fn client_id() -> String {
    format!("SSH-2.0-sqltun_{}", env!("CARGO_PKG_VERSION"))
}

/// The receive window when the path's round trip could not be measured; every channel refills to its
/// window whenever half of it has arrived. One stream cannot go faster than window / round trip, and
/// 8 MiB keeps a path of up to 10 ms at ~400 MiB/s per stream. Every channel is drained into its own
/// queue as data arrives, so a window is not memory held per idle connection.
pub const CHANNEL_WINDOW: u32 = 8 * 1024 * 1024;

/// The smallest window, for near paths. russh refills a window on arrival, not as the data is
/// consumed, so a server whose downstream is slower than its upstream reads up to a window ahead and
/// holds it; far above what the path needs, that costs the bastion memory, cache and CPU. Measured
/// against 8 MiB, through local hops: sshd CPU per byte 13-15 % lower and equal to what OpenSSH's
/// client costs it, 100 streams through 2 hops at 1.85x of OpenSSH against 1.11x, with peak RSS 18 MiB
/// against 36 (OpenSSH 27); 16 MiB windows there left the two sshds at 34 and 65 MiB.
pub const MIN_CHANNEL_WINDOW: u32 = 2 * 1024 * 1024;

/// The largest window, for long paths: 16 MiB keeps a 20 ms path at up to ~400 MiB/s per stream
/// (measured over the 20 ms relay: 202 MiB/s against 112 with 8 MiB and OpenSSH's 57). The tunnel's
/// per-connection queue limit stays above it.
pub const MAX_CHANNEL_WINDOW: u32 = 16 * 1024 * 1024;

/// What one stream should reach on any path the window can cover: russh refills a window when half of
/// it has arrived, so a sender always has half a window to send per round trip, and the window is sized
/// at two round trips of this rate: [`MIN_CHANNEL_WINDOW`] up to 2.5 ms, [`MAX_CHANNEL_WINDOW`] from
/// 20 ms.
const STREAM_RATE: f64 = 400.0 * 1024.0 * 1024.0;

/// The receive window for a path with this round trip (`None`: not measured), in whole MiB.
pub(crate) fn channel_window(round_trip: Option<Duration>) -> u32 {
    const MIB: u64 = 1024 * 1024;
    let Some(round_trip) = round_trip else {
        return CHANNEL_WINDOW;
    };
    let wanted = (2.0 * STREAM_RATE * round_trip.as_secs_f64()) as u64;
    (wanted.div_ceil(MIB) * MIB).clamp(u64::from(MIN_CHANNEL_WINDOW), u64::from(MAX_CHANNEL_WINDOW)) as u32
}

/// Messages russh queues for one channel before its session loop waits for the channel's reader.
/// Forward channels are drained at once (tunnel::forward), but the channel that carries the next
/// hop's session is read by that session: if a whole window of the inner hop's data did not fit in
/// this queue, the outer session loop would wait for the inner one, and with it everything the outer
/// session carries, the inner window adjustments included (measured: 2-hop downloads stalled to 0.9x
/// of OpenSSH with an 8 MiB window and russh's default of 100 messages). The inner hop's window may be
/// the larger one (its round trip includes this hop's), so the queue fits the largest window, one
/// message per 8 KiB; it holds only what the windows already let in.
const CHANNEL_MESSAGES: usize = (MAX_CHANNEL_WINDOW / (8 * 1024)) as usize;

/// russh re-keys every 1 GiB by default, and a re-key started while many channels have data in
/// flight can abort a busy session (Error::Pending). Use OpenSSH's default for 128-bit block
/// ciphers instead (2^32 blocks = 64 GiB, far from any nonce limit of AES-GCM, AES-CTR or
/// chacha20-poly1305), plus the hourly time limit; servers re-key on their own schedule too.
fn rekey_limits() -> russh::Limits {
    let rekey_bytes = usize::try_from(64u64 << 30).unwrap_or(usize::MAX);
    russh::Limits {
        rekey_write_limit: rekey_bytes,
        rekey_read_limit: rekey_bytes,
        rekey_time_limit: std::time::Duration::from_secs(3600),
    }
}

/// How OpenSSH names the certificate variant of a host key algorithm.
const CERT_SUFFIX: &str = "-cert-v01@openssh.com";

fn parse_host_key_algorithm(name: &str) -> Option<Algorithm> {
    name.parse::<russh::keys::Algorithm>()
        .ok()
        .filter(|a| !matches!(a, russh::keys::Algorithm::Other(_)))
}

/// `ssh-rsa` as a signature algorithm: RSA with SHA-1.
fn is_sha1_rsa(algorithm: &russh::keys::Algorithm) -> bool {
    *algorithm == russh::keys::Algorithm::Rsa { hash: None }
}

/// Whether the hop opted in to SHA-1 RSA signatures (`HostKeyAlgorithms` naming `ssh-rsa`, e.g.
/// `-o HostKeyAlgorithms=+ssh-rsa`), for host keys, host certificates and their CA's signature.
pub(crate) fn allows_sha1_rsa(hop: &Hop) -> bool {
    hop.algorithms.host_key.as_ref().is_some_and(|names| {
        names
            .iter()
            .any(|n| n == "ssh-rsa" || n == "ssh-rsa-cert-v01@openssh.com")
    })
}

/// The names from a configured list that russh implements, in the user's order; an error naming the
/// ones it lacks when none is left.
fn pick<T>(directive: &str, names: &[String], known: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
    let mut chosen = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match known(name) {
            Some(t) => chosen.push(t),
            None => missing.push(name.as_str()),
        }
    }
    if !missing.is_empty() {
        tracing::warn!(
            "{directive}: not supported by sqltun's SSH library, skipped: {}",
            missing.join(",")
        );
    }
    if chosen.is_empty() {
        return Err(Error::usage(format!(
            "{directive} {}: none of these is supported by sqltun's SSH library; add a supported one",
            names.join(",")
        )));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use russh::keys::{Algorithm, HashAlg};

    /// The first hop of `sqltun connect --ssh bastion --db db:5432 ARGS`, resolved without any config file.
    fn hop(extra: &[&str]) -> Hop {
        let mut argv = vec!["sqltun", "connect", "-F", "none", "--ssh", "bastion", "--db", "db:5432"];
        argv.extend_from_slice(extra);
        let Ok(Command::Connect(args)) = Cli::try_parse_from(argv).map(|c| c.command) else {
            panic!("not a connect command line");
        };
        let env = crate::env::FakeEnv {
            home: Some("/home/me".into()),
            user: "me".into(),
            ..Default::default()
        };
        let plan = crate::resolve::plan(&args.tunnel(), &env).expect("plan");
        plan.hops[0].clone()
    }

    const SHA1_RSA: Algorithm = Algorithm::Rsa { hash: None };

    /// SHA-1 RSA host key signatures are forgeable in principle (chosen-prefix collisions) and OpenSSH
    /// 8.8+ no longer offers them: neither may sqltun unless asked, for plain keys nor certificates.
    #[test]
    fn the_window_grows_with_the_round_trip_between_its_bounds() {
        const MIB: u32 = 1024 * 1024;
        let ms = |n: u64| Some(Duration::from_millis(n));
        assert_eq!(channel_window(None), CHANNEL_WINDOW);
        assert_eq!(channel_window(ms(0)), MIN_CHANNEL_WINDOW);
        assert_eq!(channel_window(ms(2)), MIN_CHANNEL_WINDOW);
        assert_eq!(channel_window(ms(5)), 4 * MIB);
        assert_eq!(channel_window(ms(10)), 8 * MIB);
        assert_eq!(channel_window(ms(15)), 12 * MIB);
        assert_eq!(channel_window(ms(20)), MAX_CHANNEL_WINDOW);
        assert_eq!(channel_window(ms(250)), MAX_CHANNEL_WINDOW);
    }

    #[test]
    fn ssh_rsa_is_not_offered_by_default() {
        let hop = hop(&[]);
        assert!(!allows_sha1_rsa(&hop));
        let config = client_config(&hop, &[], true).expect("config");
        assert!(!config.preferred.key.contains(&SHA1_RSA), "{:?}", config.preferred.key);
        assert!(!config.preferred.host_key_certificates.contains(&SHA1_RSA));
        assert!(config.preferred.key.contains(&Algorithm::Rsa {
            hash: Some(HashAlg::Sha512)
        }));
    }

    /// `-o HostKeyAlgorithms=+ssh-rsa` is the documented opt-in: it adds ssh-rsa after the defaults, and
    /// the certificate names the assembled list carries are not mistaken for unsupported algorithms.
    #[test]
    fn plus_ssh_rsa_opts_in() {
        let hop = hop(&["-o", "HostKeyAlgorithms=+ssh-rsa"]);
        assert!(allows_sha1_rsa(&hop));
        let config = client_config(&hop, &[], true).expect("config");
        assert_eq!(
            config.preferred.key.last(),
            Some(&SHA1_RSA),
            "{:?}",
            config.preferred.key
        );
        assert!(config.preferred.host_key_certificates.contains(&Algorithm::Ed25519));
        assert!(!config.preferred.host_key_certificates.contains(&SHA1_RSA));
    }
}
