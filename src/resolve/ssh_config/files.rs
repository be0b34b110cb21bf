//! Reading one configuration file, through [`crate::safe_file`]: only regular files (and
//! `/dev/null`, as empty), bounded, with OpenSSH's ownership rule where it applies.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::shown_path;
use crate::safe_file::{self, FileKind, NullDevice, Problem};

/// The largest configuration file read. OpenSSH has no bound; real files are kilobytes, and this
/// stops `Include /dev/zero`-like mistakes (and a copy of a log file) long before memory runs out.
pub(super) const MAX_FILE_BYTES: u64 = 4 << 20;
/// The most read in one pass over the configuration, across every `Include`.
pub(super) const MAX_PASS_BYTES: u64 = 16 << 20;

/// What reading one configuration file gave.
#[derive(Debug)]
pub(super) enum Contents {
    /// No such file.
    Missing,
    /// A directory an `Include` named, which OpenSSH reads as empty.
    Skipped,
    Bytes(Vec<u8>),
}

/// Reads a configuration file of at most `limit` bytes. Anything but a regular file (or
/// `/dev/null`, which reads as empty; or, with `skip_directories`, a directory, skipped) is refused
/// before it is opened, and again after (in case it was swapped meanwhile), so a FIFO cannot block
/// and a device cannot stream forever. With `owner_uid`, the file must be owned by that user or root
/// and writable by no one else, as OpenSSH requires of included files and `~/.ssh/config`. The
/// error says what is wrong, without the file's name.
pub(super) fn read_config_file(
    path: &Path,
    limit: u64,
    skip_directories: bool,
    owner_uid: Option<u32>,
) -> Result<Contents, String> {
    let opened = match safe_file::open(path, NullDevice::AsEmpty) {
        Ok(opened) => opened,
        Err(e) if e.is_not_found() => return Ok(Contents::Missing),
        Err(e) => {
            return match e.problem() {
                Problem::NotRegular(FileKind::Directory) if skip_directories => Ok(Contents::Skipped),
                problem => Err(refusal(problem, limit)),
            };
        }
    };
    if let Some(uid) = owner_uid {
        check_owner(opened.metadata(), uid, path)?;
    }
    opened
        .read(limit)
        .map(Contents::Bytes)
        .map_err(|e| refusal(e.problem(), limit))
}

/// OpenSSH's rule for included files and `~/.ssh/config`: owned by the user or root, and writable
/// only by its owner.
fn check_owner(meta: &Metadata, uid: u32, path: &Path) -> Result<(), String> {
    if (meta.uid() != 0 && meta.uid() != uid) || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "bad owner or permissions (OpenSSH refuses it too); it must be owned by you or root and writable only by its owner: chmod go-w {}",
            shown_path(path)
        ));
    }
    Ok(())
}

/// Why a file is not read, in words for someone who meant to name an ssh config file. A file over
/// `limit` is either too large itself (the limit is [`MAX_FILE_BYTES`]) or too much on top of what
/// the other files of the pass read.
fn refusal(problem: &Problem, limit: u64) -> String {
    match problem {
        Problem::NotRegular(FileKind::Directory) => {
            "a directory, not a file; give the path of the ssh config file in it".to_string()
        }
        Problem::NotRegular(kind) => format!(
            "{kind}, not a regular file; sqltun reads ssh config only from regular files (is this really an ssh config file?)"
        ),
        Problem::TooLarge { .. } if limit < MAX_FILE_BYTES => format!(
            "the configuration read so far (with every Include) exceeds {} MiB; do Include lines read the same files over and over?",
            MAX_PASS_BYTES >> 20
        ),
        Problem::TooLarge { .. } => format!(
            "larger than {} MiB; is this really an ssh config file?",
            MAX_FILE_BYTES >> 20
        ),
        other => other.to_string(),
    }
}
