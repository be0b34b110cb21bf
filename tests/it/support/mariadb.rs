//! A real MariaDB server in the lab's target namespace (its own datadir made by mariadb-install-db, run
//! as the `mysql` account), with a password account for clients that come through a tunnel.

use std::net::SocketAddrV4;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::lab::Lab;
use super::process::{Signal, account_ids, as_account, in_namespace, run, tail, wait_until};

const PORT: u16 = 3306;
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The account clients use through the tunnel: `'app'@'%'`, all privileges, with a password (real
/// authentication over TCP, not the socket's).
pub const MARIADB_USER: &str = "app";
/// Its password.
pub const MARIADB_PASSWORD: &str = "app-password-51c9";

/// A running MariaDB server; the lab owns the process.
#[derive(Debug)]
pub struct MariaDb {
    /// Where it listens, as seen from the last bastion (the `--db` value).
    pub addr: SocketAddrV4,
    /// What `SELECT VERSION()` says, e.g. `10.11.6-MariaDB-0+deb12u1`.
    pub version: String,
}

/// Small InnoDB files and buffers: a throwaway server that starts in a moment.
const SMALL: [&str; 2] = ["--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M"];

impl Lab {
    /// mariadb-install-db + mariadbd in the target namespace, listening on the target address; waits until
    /// `mariadb-admin ping` answers on the socket, then creates `MARIADB_USER` with `MARIADB_PASSWORD`.
    pub fn start_mariadb(&self) -> MariaDb {
        let (uid, gid) = account_ids("mysql");
        let root = self.account_dir("mariadb", "mysql");
        let data = root.join("data");
        let socket = root.join("mysqld.sock");
        let log = root.join("mariadbd.log");

        // --no-defaults first: the machine's /etc/mysql never plays a part.
        run(Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--user=mysql", "--skip-test-db", "--skip-name-resolve"])
            .args(SMALL)
            .current_dir(&root));

        let addr = SocketAddrV4::new(self.target_addr(), PORT);
        let stderr = self.account_log("mariadbd", &log, "mysql");
        // setpriv switches to `mysql` and then sets the parent-death signal (a uid change clears an
        // earlier one), so mariadbd needs no --user and stays tied to the test thread.
        let pid = self.spawn(
            "mariadbd",
            as_account(
                Command::new("ip").args(["netns", "exec", &self.target_namespace(), "setpriv"]),
                uid,
                gid,
            )
            .arg("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", root.join("mariadbd.pid").display()))
            .arg(format!("--port={PORT}"))
            .arg(format!("--bind-address={}", addr.ip()))
            .args(["--skip-name-resolve", "--skip-log-bin", "--max-connections=20"])
            .args(SMALL)
            .current_dir(&root)
            .stdout(Stdio::null())
            .stderr(stderr),
            Signal::Term,
        );
        wait_until(
            &format!("mariadbd to answer on {}", socket.display()),
            READY_TIMEOUT,
            || {
                if let Some(status) = self.exit_status(pid) {
                    panic!("mariadbd exited ({status}) before it was ready:\n{}", tail(&log, 40));
                }
                in_namespace(&self.target_namespace(), "mariadb-admin")
                    .arg("--no-defaults")
                    .arg(format!("--socket={}", socket.display()))
                    .args(["--connect-timeout=1", "ping"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success())
                    .then_some(())
            },
        );
        // root@localhost authenticates by unix_socket: the client runs as root.
        run(in_namespace(&self.target_namespace(), "mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", socket.display()))
            .args(["-u", "root", "-e"])
            .arg(format!(
                "CREATE USER '{MARIADB_USER}'@'%' IDENTIFIED BY '{MARIADB_PASSWORD}'; \
                 GRANT ALL PRIVILEGES ON *.* TO '{MARIADB_USER}'@'%';"
            )));
        let version = run(in_namespace(&self.target_namespace(), "mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", socket.display()))
            .args(["-u", "root", "-N", "-B", "-e", "SELECT VERSION()"]));
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        MariaDb { addr, version }
    }
}
