//! What /proc says about a process: whether it runs, since when (its start time, in clock ticks after
//! boot, so a pid the kernel handed to another process since is told apart), and as which user.

/// A running process as /proc shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Field 22 of /proc/PID/stat: clock ticks after boot when the process started.
    pub start_time: u64,
    /// The real uid (the first of /proc/PID/status's `Uid:` line).
    pub uid: u32,
}

/// The process with this pid, if one runs (a zombie does not: it has exited, nobody reaped it yet).
pub fn identity(pid: u32) -> Option<Identity> {
    if pid == 0 || i32::try_from(pid).is_err() {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let start_time = start_time(&stat)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = real_uid(&status)?;
    Some(Identity { start_time, uid })
}

/// This process's start time.
pub fn own_start_time() -> Option<u64> {
    identity(std::process::id()).map(|id| id.start_time)
}

/// The start time in a /proc/PID/stat line, `None` for a zombie or a dead process. The command name
/// (field 2, in parentheses) may hold anything, spaces and `)` included, so the fields are counted
/// from the last `)`.
pub fn start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, starttime field 22.
    let state = fields.first()?;
    if matches!(*state, "Z" | "X" | "x") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

/// The real uid in /proc/PID/status (`Uid:` real, effective, saved, filesystem).
pub fn real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command name with spaces and parentheses does not shift the fields; a zombie has no start time.
    #[test]
    fn stat_lines() {
        let line =
            "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 987654 1000 50 18446744073709551615";
        assert_eq!(start_time(line), Some(987654));
        assert_eq!(start_time(&line.replace(" S ", " Z ")), None);
        assert_eq!(start_time("1234 (x) S 1 2"), None);
        assert_eq!(start_time("garbage"), None);
    }

    /// The real uid is the first of the four.
    #[test]
    fn status_uid() {
        assert_eq!(real_uid("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t5\n"), Some(1000));
        assert_eq!(real_uid("Name:\tx\n"), None);
    }

    /// This process is found, with its own uid; pid 0 and pids beyond any pid_max are not.
    #[test]
    fn own_process() {
        let me = identity(std::process::id()).expect("this process");
        assert_eq!(me.uid, nix::unistd::getuid().as_raw());
        assert_eq!(own_start_time(), Some(me.start_time));
        assert_eq!(identity(0), None);
        assert_eq!(identity(u32::MAX), None);
    }
}
