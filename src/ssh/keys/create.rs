//! New identity files: an ed25519 key pair made from the system's random source and written the way
//! `ssh-keygen -t ed25519 -N ''` writes one (OpenSSH format, private half 0600, `FILE.pub` beside it).

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use russh::keys::PublicKey;
use ssh_key::private::{Ed25519Keypair, Ed25519PrivateKey};
use ssh_key::{LineEnding, PrivateKey};
use zeroize::Zeroizing;

/// Why a new key could not be written.
#[derive(Debug)]
pub enum CreateError {
    /// Something is at this path already (a file, a directory, a symbolic link): never overwritten.
    Exists(PathBuf),
    /// The file could not be created or written.
    Io(PathBuf, io::Error),
    /// The system's random source or the encoder failed.
    Generate(String),
}

/// Make a new ed25519 key pair commented `comment`; write its private half, unencrypted, to `path`
/// (created with mode 0600) and its public half to `path.pub` (0644). Neither may exist: each is
/// created with `O_EXCL | O_NOFOLLOW`, so nothing is overwritten and no symbolic link is followed,
/// whatever another user puts there meanwhile. If the `.pub` cannot be written, the private file just
/// made is removed again. Returns the public key.
pub fn create_ed25519(path: &Path, comment: &str) -> Result<PublicKey, CreateError> {
    let pub_path = public_path(path);
    for p in [path, pub_path.as_path()] {
        if fs::symlink_metadata(p).is_ok() {
            return Err(CreateError::Exists(p.to_path_buf()));
        }
    }
    let mut seed = Zeroizing::new([0u8; Ed25519PrivateKey::BYTE_SIZE]);
    ssh_key::getrandom::fill(seed.as_mut_slice())
        .map_err(|e| CreateError::Generate(format!("the system's random source failed: {e}")))?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    let private_text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| CreateError::Generate(format!("cannot encode the private key: {e}")))?;
    let public = key.public_key().clone();
    let public_text = public
        .to_openssh()
        .map_err(|e| CreateError::Generate(format!("cannot encode the public key: {e}")))?;
    write_new(path, private_text.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&pub_path, format!("{public_text}\n").as_bytes(), 0o644) {
        // Ours: it was created exclusively a moment ago.
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(public)
}

/// `PATH.pub`.
pub fn public_path(path: &Path) -> PathBuf {
    let mut pub_path = path.as_os_str().to_os_string();
    pub_path.push(".pub");
    PathBuf::from(pub_path)
}

/// Create `path` (it must not exist, and is never reached through a symbolic link) with `mode`, write
/// `bytes` and flush them to disk.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CreateError> {
    let io = |e: io::Error| match e.kind() {
        io::ErrorKind::AlreadyExists => CreateError::Exists(path.to_path_buf()),
        _ if e.raw_os_error() == Some(libc::ELOOP) => CreateError::Exists(path.to_path_buf()),
        _ => CreateError::Io(path.to_path_buf(), e),
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes).and_then(|_| file.sync_all()).map_err(io)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A directory of one test's own, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("sqltun-new-key-{}-{test}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A new key loads back as the identity it claims to be (through the same reader every identity file
    /// goes through), its files have the modes OpenSSH expects, and a second run over the same path, or
    /// a symbolic link there, is refused without touching what is there.
    #[test]
    fn new_key_round_trips_and_never_overwrites() {
        let dir = Scratch::new("round-trip");
        let path = dir.path().join("sqltun_prod_ed25519");
        let public = create_ed25519(&path, "sqltun:prod").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&public_path(&path)) & 0o600, 0o600);
        let loaded = super::super::load_identity(&path, None).unwrap();
        assert_eq!(loaded.public_key().key_data(), public.key_data());
        let pub_text = fs::read_to_string(public_path(&path)).unwrap();
        assert!(
            pub_text.starts_with("ssh-ed25519 AAAA") && pub_text.ends_with(" sqltun:prod\n"),
            "{pub_text}"
        );
        assert_eq!(
            super::super::public_key_of(&path).unwrap().key_data(),
            public.key_data()
        );

        let before = fs::read(&path).unwrap();
        assert!(matches!(create_ed25519(&path, "x"), Err(CreateError::Exists(p)) if p == path));
        assert_eq!(fs::read(&path).unwrap(), before);

        // Only the .pub is there: refused before the private file is made.
        let lone = dir.path().join("lone");
        fs::write(public_path(&lone), "x").unwrap();
        assert!(matches!(create_ed25519(&lone, "x"), Err(CreateError::Exists(p)) if p == public_path(&lone)));
        assert!(!lone.exists());

        // A dangling symbolic link is something there too: never followed to create its target.
        let link = dir.path().join("link");
        let target = dir.path().join("target");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(create_ed25519(&link, "x"), Err(CreateError::Exists(_))));
        assert!(!target.exists());
    }

    /// Two keys are never the same key.
    #[test]
    fn keys_are_random() {
        let dir = Scratch::new("random");
        let a = create_ed25519(&dir.path().join("a"), "").unwrap();
        let b = create_ed25519(&dir.path().join("b"), "").unwrap();
        assert_ne!(a.key_data(), b.key_data());
    }
}
