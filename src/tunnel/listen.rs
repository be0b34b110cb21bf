//! The local end of a forward: who can connect to it.
//!
//! On the default loopback address both `127.0.0.1` and `::1` are bound on the same port, as `ssh -L`
//! does: clients that resolve `localhost` try `::1` first (libpq does), so leaving it free would let
//! another local user listen there and catch them. A Unix socket in a directory only its owner can
//! enter keeps every other user out altogether.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A bind failure and the address it happened on.
pub type BindError = (SocketAddr, io::Error);

/// How many OS-assigned ports are tried when `::1` already has the one `127.0.0.1` got.
const LOOPBACK_PAIR_ATTEMPTS: usize = 8;

/// One bound local listener.
#[derive(Debug)]
pub enum LocalListener {
    Tcp(TcpListener),
    /// The socket file is removed when this is dropped.
    Unix(UnixListener, SocketFile),
}

/// One accepted local connection.
#[derive(Debug)]
pub enum LocalStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl LocalListener {
    /// The next connection, with who it came from (for logs) and the originator the SSH channel names.
    pub async fn accept(&self) -> io::Result<(LocalStream, String, SocketAddr)> {
        match self {
            LocalListener::Tcp(l) => {
                let (socket, peer) = l.accept().await?;
                Ok((LocalStream::Tcp(socket), peer.to_string(), peer))
            }
            LocalListener::Unix(l, file) => {
                let (socket, _) = l.accept().await?;
                let originator = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
                Ok((LocalStream::Unix(socket), file.path.display().to_string(), originator))
            }
        }
    }

    /// The TCP address, if this is a TCP listener.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            LocalListener::Tcp(l) => l.local_addr().ok(),
            LocalListener::Unix(..) => None,
        }
    }

    /// What the listener is, for logs.
    pub fn describe(&self) -> String {
        match self {
            LocalListener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            LocalListener::Unix(_, file) => file.path.display().to_string(),
        }
    }
}

/// Bind TCP listeners for one forward: on `127.0.0.1`, the same port on `::1` as well; elsewhere the
/// address alone. An error names the address that failed.
pub fn bind_tcp(ip: IpAddr, port: u16) -> Result<Vec<TcpListener>, BindError> {
    let listeners = if ip == IpAddr::V4(Ipv4Addr::LOCALHOST) {
        bind_loopback_pair(port, bind_std)?
    } else {
        let addr = SocketAddr::new(ip, port);
        vec![bind_std(addr).map_err(|e| (addr, e))?.0]
    };
    listeners
        .into_iter()
        .map(|l| {
            let addr = l.local_addr().map_err(|e| (SocketAddr::new(ip, port), e))?;
            l.set_nonblocking(true)
                .and_then(|_| TcpListener::from_std(l))
                .map_err(|e| (addr, e))
        })
        .collect()
}

fn bind_std(addr: SocketAddr) -> io::Result<(std::net::TcpListener, u16)> {
    let listener = std::net::TcpListener::bind(addr)?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

/// `127.0.0.1:port` and `[::1]:port` through `bind` (which returns the listener and its port). With port
/// 0, a port `::1` already has is given up and another one tried, a bounded number of times. Where IPv6
/// is off or missing, IPv4 alone.
fn bind_loopback_pair<L>(
    port: u16,
    mut bind: impl FnMut(SocketAddr) -> io::Result<(L, u16)>,
) -> Result<Vec<L>, BindError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let (first, got) = bind(v4).map_err(|e| (v4, e))?;
        let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), got);
        match bind(v6) {
            Ok((second, _)) => return Ok(vec![first, second]),
            Err(e) if ipv6_unavailable(&e) => {
                tracing::debug!("cannot listen on {v6} ({e}): IPv6 is off here; listening on 127.0.0.1 only");
                return Ok(vec![first]);
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && port == 0 && attempt < LOOPBACK_PAIR_ATTEMPTS => {
                tracing::debug!("{v6} is taken; trying another port");
            }
            Err(e) => return Err((v6, e)),
        }
    }
}

/// The errors that mean "no IPv6 loopback here" rather than "something is wrong".
fn ipv6_unavailable(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT))
}

/// A bound Unix socket's file, removed on drop if it is still the one bound.
#[derive(Debug)]
pub struct SocketFile {
    pub path: PathBuf,
    inode: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!("cannot remove {}: {e}", self.path.display());
        }
    }
}

/// The socket path `--unix-socket PATH` stands for: PATH itself, or for a PostgreSQL target a
/// directory's `.s.PGSQL.PORT`, so `psql -h DIR -p PORT` finds it as it finds a local server's.
pub fn unix_socket_path(path: &Path, postgres_port: Option<u16>) -> Result<PathBuf, String> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    match postgres_port {
        Some(port) => Ok(path.join(format!(".s.PGSQL.{port}"))),
        None => Err(format!(
            "--unix-socket {}: is a directory; a directory is taken only for PostgreSQL targets (as DIR/.s.PGSQL.PORT): give the socket's own path",
            path.display()
        )),
    }
}

/// Bind a Unix socket at `path` (mode 0600), in a directory only this user can enter: a missing one is
/// created with mode 0700; an existing one must be owned by us with no access for group or others. A
/// stale socket left by a killed process is replaced; a live one is not.
pub fn bind_unix(path: &Path) -> Result<LocalListener, String> {
    let at = |why: String| format!("--unix-socket {}: {why}", path.display());
    let name = path.file_name().ok_or_else(|| at("names no file".into()))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)
            .map_err(|e| at(format!("cannot create its directory {}: {e}", parent.display())))?;
    }
    // Resolved once, so the checked directory is the one the socket goes into.
    let dir = parent
        .canonicalize()
        .map_err(|e| at(format!("cannot open its directory {}: {e}", parent.display())))?;
    check_private_dir(&dir).map_err(at)?;
    let socket = dir.join(name);
    remove_stale(&socket).map_err(at)?;
    let listener = std::os::unix::net::UnixListener::bind(&socket).map_err(|e| at(format!("cannot listen: {e}")))?;
    let inode = std::fs::symlink_metadata(&socket).map(|m| m.ino()).unwrap_or(0);
    let file = SocketFile {
        path: socket.clone(),
        inode,
    };
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| at(format!("cannot make the socket private: {e}")))?;
    listener
        .set_nonblocking(true)
        .and_then(|_| UnixListener::from_std(listener))
        .map(|l| LocalListener::Unix(l, file))
        .map_err(|e| at(format!("cannot listen: {e}")))
}

/// This process's user.
fn current_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// Only a directory we own that no one else can enter keeps other users from the socket (its own mode
/// is not enough: connecting needs only write access, and some systems ignore a socket's mode).
fn check_private_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot read its directory {}: {e}", dir.display()))?;
    let me = current_uid();
    let mode = meta.mode() & 0o777;
    if !meta.is_dir() || meta.uid() != me || mode & 0o077 != 0 {
        return Err(format!(
            "its directory {} is {} (mode {mode:04o}, owner uid {}); it must be a directory only you can enter (mode 0700, owned by uid {me}) so no other user can reach the socket: `chmod 700 {}`, or pick a path in a directory of your own",
            dir.display(),
            if meta.is_dir() {
                "open to others"
            } else {
                "not a directory"
            },
            meta.uid(),
            dir.display()
        ));
    }
    Ok(())
}

/// A socket file nobody listens on any more (its process was killed) is removed; anything else in the
/// way is reported.
fn remove_stale(socket: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::symlink_metadata(socket) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "{} exists and is not a socket; not replacing it",
            socket.display()
        ));
    }
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => Err(format!(
            "another process listens on {} already; stop it or pick another path",
            socket.display()
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::debug!("removing the stale socket {}", socket.display());
            std::fs::remove_file(socket)
                .map_err(|e| format!("cannot remove the stale socket {}: {e}", socket.display()))
        }
        Err(e) => Err(format!("{} is in the way ({e})", socket.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn err(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    /// Binds through a script of results for `[::1]` (`127.0.0.1` always works and gets ports 40000,
    /// 40001, …); returns what was bound and every address tried.
    fn pair(port: u16, v6: Vec<io::Result<()>>) -> (Result<Vec<SocketAddr>, BindError>, Vec<SocketAddr>) {
        let tried = RefCell::new(Vec::new());
        let v6 = RefCell::new(v6.into_iter());
        let next = RefCell::new(40000u16);
        let result = bind_loopback_pair(port, |addr| {
            tried.borrow_mut().push(addr);
            if addr.is_ipv4() {
                let got = if port == 0 {
                    let mut n = next.borrow_mut();
                    *n += 1;
                    *n - 1
                } else {
                    port
                };
                return Ok((SocketAddr::new(addr.ip(), got), got));
            }
            v6.borrow_mut().next().unwrap_or(Ok(())).map(|_| (addr, addr.port()))
        });
        (result, tried.into_inner())
    }

    /// Both loopback addresses on one port, so nobody else can take `[::1]:PORT`.
    #[test]
    fn binds_both_loopbacks_on_one_port() {
        let (bound, _) = pair(0, vec![Ok(())]);
        let bound = bound.expect("bound");
        assert_eq!(
            bound,
            vec!["127.0.0.1:40000".parse().unwrap(), "[::1]:40000".parse().unwrap()]
        );
    }

    /// Where IPv6 is off (EADDRNOTAVAIL) or absent (EAFNOSUPPORT), IPv4 alone serves, without an error.
    #[test]
    fn falls_back_to_ipv4_where_ipv6_is_unavailable() {
        for code in [libc::EADDRNOTAVAIL, libc::EAFNOSUPPORT] {
            let (bound, _) = pair(0, vec![Err(err(code))]);
            assert_eq!(bound.expect("bound"), vec!["127.0.0.1:40000".parse().unwrap()]);
        }
    }

    /// An OS-assigned port that another process holds on ::1 is given up for a new one.
    #[test]
    fn retries_when_ipv6_port_is_taken() {
        let (bound, tried) = pair(0, vec![Err(err(libc::EADDRINUSE)), Err(err(libc::EADDRINUSE)), Ok(())]);
        assert_eq!(bound.expect("bound")[1], "[::1]:40002".parse().unwrap());
        assert_eq!(tried.len(), 6);
    }

    /// The retries are bounded, and the error names the ::1 address.
    #[test]
    fn gives_up_after_bounded_retries() {
        let taken = (0..100).map(|_| Err(err(libc::EADDRINUSE))).collect();
        let (bound, tried) = pair(0, taken);
        let (addr, e) = bound.expect_err("must give up");
        assert!(addr.is_ipv6());
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(tried.len(), 2 * LOOPBACK_PAIR_ATTEMPTS);
    }

    /// With a fixed --local-port there is nothing to retry: a taken ::1 is an error, not a silent
    /// IPv4-only tunnel that someone else's listener shadows.
    #[test]
    fn fixed_port_taken_on_ipv6_is_an_error() {
        let (bound, tried) = pair(5432, vec![Err(err(libc::EADDRINUSE))]);
        assert_eq!(bound.expect_err("error").0, "[::1]:5432".parse().unwrap());
        assert_eq!(tried.len(), 2);
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sqltun-listen-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A missing directory is created 0700, the socket is 0600, and it is removed when dropped.
    #[tokio::test]
    async fn unix_socket_is_private_and_removed() {
        let dir = scratch("private").join("sub");
        let path = dir.join("db.sock");
        let listener = bind_unix(&path).expect("bind");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        drop(listener);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }

    /// A directory others can enter is refused, naming it and the fix.
    #[tokio::test]
    async fn unix_socket_in_an_open_directory_is_refused() {
        let dir = scratch("open");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = bind_unix(&dir.join("db.sock")).expect_err("refused");
        assert!(e.contains("chmod 700"), "{e}");
        assert!(!dir.join("db.sock").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A stale socket (its process killed) is replaced; a directory means .s.PGSQL.PORT for PostgreSQL
    /// only.
    #[tokio::test]
    async fn stale_socket_and_postgres_directory() {
        let dir = scratch("stale");
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let path = dir.join(".s.PGSQL.5432");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert_eq!(unix_socket_path(&dir, Some(5432)).unwrap(), path);
        assert!(unix_socket_path(&dir, None).is_err());
        let listener = bind_unix(&path).expect("stale socket replaced");
        assert!(
            bind_unix(&path)
                .expect_err("live socket kept")
                .contains("another process")
        );
        drop(listener);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
