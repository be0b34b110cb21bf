//! The one way sqltun reads a file a user names (ssh config, secret files, keys, known_hosts): only
//! a regular file, never blocking, never more than a bound.
//!
//! A path that is not a regular file is refused by what it is (a FIFO nobody writes to would block
//! the read forever, `/dev/zero` never ends, a directory is a slip of the finger) before it is
//! opened, and again on the opened file, in case it was swapped in between. The open itself uses
//! `O_NONBLOCK` (so even a FIFO swapped in at the last moment cannot make it wait for a writer) and
//! `O_NOCTTY`. Reads stop one byte past the bound, so a file that grows while it is read is still
//! refused. Secrets are read into a buffer sized up front and wiped when dropped.
//!
//! Errors say which file and what is wrong ([`Error`]); [`Problem`] alone is for callers that put
//! the path in front themselves.
//!
//! Its one writer, [`write_new`], creates a file exclusively and never through a link: the first step
//! of writing a file atomically (the caller renames or links it into place).

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, Zeroizing};

/// What a path is when it is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    /// Anything else that is not a regular file.
    Special,
}

impl FileKind {
    /// What `meta` is; `None` for a regular file.
    pub fn of(meta: &Metadata) -> Option<FileKind> {
        let t = meta.file_type();
        Some(if t.is_file() {
            return None;
        } else if t.is_dir() {
            FileKind::Directory
        } else if t.is_fifo() {
            FileKind::Fifo
        } else if t.is_socket() {
            FileKind::Socket
        } else if t.is_char_device() {
            FileKind::CharDevice
        } else if t.is_block_device() {
            FileKind::BlockDevice
        } else {
            FileKind::Special
        })
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Special => "a special file",
        })
    }
}

/// Whether the null device is accepted (it reads as empty: OpenSSH configurations use `/dev/null`
/// for "no file").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullDevice {
    Refuse,
    AsEmpty,
}

/// Why a file was not read.
#[derive(Debug)]
pub enum Problem {
    /// It is not a regular file (checked before opening it, and on the opened file).
    NotRegular(FileKind),
    /// It holds more than `max_bytes`: `size` bytes (its length, or as many as were read before
    /// the read stopped).
    TooLarge { max_bytes: u64, size: u64 },
    /// It existed when looked at, and not when opened.
    Vanished,
    /// Its text is not UTF-8 (for the text readers).
    NotText,
    /// The system refused (`NotFound` among them: see [`Error::is_not_found`]).
    Io(io::Error),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotRegular(kind) => write!(f, "it is {kind}, not a regular file"),
            Problem::TooLarge { max_bytes, .. } => write!(f, "it is larger than {}", size(*max_bytes)),
            Problem::Vanished => f.write_str("it vanished while being read; try again"),
            Problem::NotText => f.write_str("it is not UTF-8 text"),
            Problem::Io(e) => write!(f, "cannot read it: {e}"),
        }
    }
}

/// A file that was not read: which one, and why.
#[derive(Debug)]
pub struct Error {
    path: PathBuf,
    problem: Problem,
}

impl Error {
    fn new(path: &Path, problem: Problem) -> Error {
        Error {
            path: path.to_path_buf(),
            problem,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    /// There is no such file (many callers treat that as "nothing to read").
    pub fn is_not_found(&self) -> bool {
        matches!(&self.problem, Problem::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = crate::text::escaped(&self.path.to_string_lossy(), MAX_PATH_CHARS);
        write!(f, "{path}: {}", self.problem)
    }
}

impl std::error::Error for Error {}

/// For callers that speak `io::Error` and name the path themselves: the system's own error as it
/// is, the others as `InvalidInput` (not a regular file) or `InvalidData` (too large, not text).
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e.problem {
            Problem::Io(inner) => return inner,
            Problem::NotRegular(_) => io::ErrorKind::InvalidInput,
            Problem::Vanished => io::ErrorKind::NotFound,
            Problem::TooLarge { .. } | Problem::NotText => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e.problem.to_string())
    }
}

/// The most characters of a path an [`Error`] shows.
const MAX_PATH_CHARS: usize = 500;

/// A regular file (or the null device, where accepted), opened and checked, not read yet: the
/// caller may look at its [`metadata`](Opened::metadata) (owner, mode) before reading it.
#[derive(Debug)]
pub struct Opened {
    path: PathBuf,
    file: File,
    meta: Metadata,
}

/// Opens `path` if it is a regular file (or, with [`NullDevice::AsEmpty`], the null device),
/// refusing anything else before opening it and again on the opened file.
pub fn open(path: &Path, null: NullDevice) -> Result<Opened, Error> {
    let fail = |problem| Error::new(path, problem);
    let accepted = |meta: &Metadata| match FileKind::of(meta) {
        None => Ok(()),
        Some(_) if null == NullDevice::AsEmpty && is_null_device(meta) => Ok(()),
        Some(kind) => Err(fail(Problem::NotRegular(kind))),
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(Problem::Io(e)))?;
    accepted(&meta)?;
    let file = OpenOptions::new()
        .read(true)
        // Reads of regular files ignore O_NONBLOCK; it only keeps the open from waiting.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => fail(Problem::Vanished),
            _ => fail(Problem::Io(e)),
        })?;
    let meta = file.metadata().map_err(|e| fail(Problem::Io(e)))?;
    accepted(&meta)?;
    Ok(Opened {
        path: path.to_path_buf(),
        file,
        meta,
    })
}

/// The text of the regular file at `path`, at most `max_bytes`, wiped from memory when dropped.
pub fn read_secret_text(path: &Path, max_bytes: u64) -> Result<Zeroizing<String>, Error> {
    open(path, NullDevice::Refuse)?.read_secret_text(max_bytes)
}

impl Opened {
    /// The opened file's metadata (not the path's: the path may have been swapped since).
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Every byte, if there are at most `max_bytes`.
    pub fn read(self, max_bytes: u64) -> Result<Vec<u8>, Error> {
        self.too_large(self.meta.len(), max_bytes)?;
        let mut bytes = Vec::new();
        self.read_into(&mut bytes, max_bytes)?;
        Ok(bytes)
    }

    /// [`read`](Opened::read) into a buffer wiped when dropped, sized up front so that no
    /// reallocation leaves a copy behind.
    pub fn read_secret(self, max_bytes: u64) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.too_large(self.meta.len(), max_bytes)?;
        let capacity = usize::try_from(max_bytes.saturating_add(1)).unwrap_or(usize::MAX);
        let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
        self.read_into(&mut bytes, max_bytes)?;
        Ok(bytes)
    }

    /// [`read_secret`](Opened::read_secret), as UTF-8 text.
    pub fn read_secret_text(self, max_bytes: u64) -> Result<Zeroizing<String>, Error> {
        let path = self.path.clone();
        let mut bytes = self.read_secret(max_bytes)?;
        match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(text) => Ok(Zeroizing::new(text)),
            Err(e) => {
                e.into_bytes().zeroize();
                Err(Error::new(&path, Problem::NotText))
            }
        }
    }

    fn too_large(&self, len: u64, max_bytes: u64) -> Result<(), Error> {
        if len > max_bytes {
            return Err(Error::new(&self.path, Problem::TooLarge { max_bytes, size: len }));
        }
        Ok(())
    }

    /// Reads one byte past the bound, so a file that grew since it was looked at is refused too.
    fn read_into(&self, bytes: &mut Vec<u8>, max_bytes: u64) -> Result<(), Error> {
        (&self.file)
            .take(max_bytes.saturating_add(1))
            .read_to_end(bytes)
            .map_err(|e| Error::new(&self.path, Problem::Io(e)))?;
        self.too_large(bytes.len() as u64, max_bytes)
    }
}

/// Create `path` exclusively with `mode`, never through a symbolic link (`O_EXCL | O_NOFOLLOW`), and
/// write `bytes` to it. A leftover file at `path` (a temporary file of an earlier process that had this
/// pid) is removed once and the create tried again. Callers rename or link the file into place, so a
/// reader never sees it half written.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    };
    let mut file = match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            open()?
        }
        other => other?,
    };
    file.write_all(bytes)
}

/// Whether `meta` is the null device, whatever name it was reached by.
pub fn is_null_device(meta: &Metadata) -> bool {
    meta.file_type().is_char_device()
        && std::fs::metadata("/dev/null")
            .is_ok_and(|null| null.file_type().is_char_device() && null.rdev() == meta.rdev())
}

/// `bytes` for a message: whole KiB or MiB where it is one.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn read(path: &Path, max_bytes: u64) -> Result<Vec<u8>, Error> {
        open(path, NullDevice::Refuse)?.read(max_bytes)
    }

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::SeqCst);
            let dir = std::env::temp_dir().join(format!("sqltun-safe-file-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create scratch dir");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn problem(result: Result<impl std::fmt::Debug, Error>) -> String {
        result.expect_err("refused").problem().to_string()
    }

    /// Anything but a regular file is refused by what it is, at once: a FIFO nobody writes to must
    /// not block (the open is checked first and non-blocking), a device must not stream forever.
    #[test]
    fn special_files_are_refused_by_kind_without_blocking() {
        let lab = Scratch::new("special");
        let fifo = lab.0.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let started = std::time::Instant::now();
        assert_eq!(problem(read(&fifo, 10)), "it is a FIFO, not a regular file");
        assert_eq!(
            problem(read(Path::new("/dev/zero"), 10)),
            "it is a character device, not a regular file"
        );
        assert_eq!(problem(read(&lab.0, 10)), "it is a directory, not a regular file");
        assert_eq!(
            problem(read(Path::new("/dev/null"), 10)),
            "it is a character device, not a regular file"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let err = read(&fifo, 10).expect_err("refused");
        assert_eq!(err.path(), fifo);
        assert_eq!(
            err.to_string(),
            format!("{}: it is a FIFO, not a regular file", fifo.display())
        );
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::InvalidInput);
    }

    /// The null device reads as empty where it stands for "no file", and only there.
    #[test]
    fn null_device_reads_as_empty_when_accepted() {
        let opened = open(Path::new("/dev/null"), NullDevice::AsEmpty).expect("accepted");
        assert!(opened.read(10).expect("reads").is_empty());
        assert!(open(Path::new("/dev/zero"), NullDevice::AsEmpty).is_err());
    }

    /// A file of exactly the bound is read; one byte more is refused, naming the bound.
    #[test]
    fn size_is_bounded() {
        let lab = Scratch::new("size");
        let path = lab.0.join("f");
        std::fs::write(&path, "x".repeat(64 * 1024)).expect("write");
        assert_eq!(read(&path, 64 * 1024).expect("reads").len(), 64 * 1024);
        assert_eq!(read_secret_text(&path, 64 * 1024).expect("reads").len(), 64 * 1024);
        assert_eq!(problem(read(&path, 64 * 1024 - 1)), "it is larger than 65535 bytes");
        std::fs::write(&path, "x".repeat(64 * 1024 + 1)).expect("write");
        let err = read_secret_text(&path, 64 * 1024).expect_err("too large");
        assert!(
            matches!(err.problem(), Problem::TooLarge { size: 65537, .. }),
            "{err:?}"
        );
        assert_eq!(err.problem().to_string(), "it is larger than 64 KiB");
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::InvalidData);
        assert_eq!(size(4 << 20), "4 MiB");
    }

    /// A missing file keeps the system's error (callers tell "missing" from "unreadable"), and text
    /// that is not UTF-8 is refused rather than guessed at.
    #[test]
    fn missing_and_binary_files() {
        let lab = Scratch::new("missing");
        let err = read(&lab.0.join("nope"), 10).expect_err("missing");
        assert!(err.is_not_found());
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::NotFound);
        let path = lab.0.join("bin");
        std::fs::write(&path, b"caf\xe9").expect("write");
        assert_eq!(problem(read_secret_text(&path, 10)), "it is not UTF-8 text");
        assert_eq!(read(&path, 10).expect("bytes are fine").len(), 4);
    }
}
