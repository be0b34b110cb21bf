//! The tests' one temporary-directory helper: a private directory under `<system temp>/sqltun-tests`,
//! removed on drop. Shared by the integration tests and `tests/malformed.rs` (which includes this file
//! with `#[path]`), so it uses nothing but std.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);
static LEFTOVERS_REMOVED: Once = Once::new();

/// A private (0700) directory `<system temp>/sqltun-tests/<tag>-<pid>-<n>`, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let root = root();
        // Like /tmp itself (sticky, open to all): tests run as root and as other users share it, and
        // a server run as its own account (postgres) can reach its directory below.
        fs::create_dir_all(&root).unwrap_or_else(|e| panic!("create {}: {e}", root.display()));
        let _ = fs::set_permissions(&root, fs::Permissions::from_mode(0o1777));
        LEFTOVERS_REMOVED.call_once(|| remove_leftovers(&root));
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = root.join(format!("{tag}-{}-{n}", std::process::id()));
        // A directory left by an earlier, killed process that had the same pid.
        let _ = fs::remove_dir_all(&path);
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn root() -> PathBuf {
    std::env::temp_dir().join("sqltun-tests")
}

/// Removes the directories of test processes that died without cleaning up (their pid is gone).
fn remove_leftovers(root: &Path) {
    for entry in fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|name| name.rsplit('-').nth(1)?.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
