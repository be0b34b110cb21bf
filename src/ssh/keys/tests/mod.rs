//! Tests of identity files, made with the real tools (ssh-keygen, openssl) where they exist and with
//! fixtures where they are rarely installed (puttygen): the shared fixtures and helpers are here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::text::is_invisible;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;

mod errors;
mod formats;

/// Passphrase for the test keys (PEM encryption wants five characters or more).
const PASS: &str = "hunter22";
const WRONG: &str = "not-the-passphrase";

/// PuTTY keys made by `puttygen` 0.78 from one Ed25519 key (puttygen is rarely
/// installed, so these are fixtures); encrypted ones use [`PASS`].
const PPK_V3: &str = "PuTTY-User-Key-File-3: ssh-ed25519
Encryption: none
Comment: fixture
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIB2fQsZmz6AM3RpVGt422jX9jNi/ets2XgDfMUmQ
Y2Qp
Private-Lines: 1
AAAAIOtDvSNcdvLXYuyR5I+Yaek4OYfIA23xk6gJDHVeX4ig
Private-MAC: 4c920f98416babc1f11c63ee89e9b039ff331ca37c6abcd12d874b80ba472594
";
const PPK_V3_NO_COMMENT: &str = "PuTTY-User-Key-File-3: ssh-ed25519
Encryption: none
Comment: 
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIB2fQsZmz6AM3RpVGt422jX9jNi/ets2XgDfMUmQ
Y2Qp
Private-Lines: 1
AAAAIOtDvSNcdvLXYuyR5I+Yaek4OYfIA23xk6gJDHVeX4ig
Private-MAC: 2b1a6e1c67222d1404d6fa65b6e5813f11e248ae9463d8df0feafc702c5a2b86
";
/// Argon2 parameters turned down (`--ppk-param memory=32,passes=1`) to keep tests fast.
const PPK_V3_ENCRYPTED: &str = "PuTTY-User-Key-File-3: ssh-ed25519
Encryption: aes256-cbc
Comment: fixture
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIB2fQsZmz6AM3RpVGt422jX9jNi/ets2XgDfMUmQ
Y2Qp
Key-Derivation: Argon2id
Argon2-Memory: 32
Argon2-Passes: 1
Argon2-Parallelism: 1
Argon2-Salt: caeea09e62806fb7094cd6b2673a573c
Private-Lines: 1
QtwaVE1T/1I6Sgy498Hnu/dy7Pbk+xZdvnb+UVTdjoTWqMnZJSq0d0zELncpTzr9
Private-MAC: 2921ffd67ff2313ad2edadd1acc8fa282ee3933dfac191004bef0f85a1b93b1d
";
const PPK_V2_ENCRYPTED: &str = "PuTTY-User-Key-File-2: ssh-ed25519
Encryption: aes256-cbc
Comment: fixture
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIB2fQsZmz6AM3RpVGt422jX9jNi/ets2XgDfMUmQ
Y2Qp
Private-Lines: 1
cZPGd/KTVwvW6XqgV4aYumZA8tkKNpi8fzQC9Q8urfGLc9O3h8NnbdD5pXdpx6Lz
Private-MAC: 8f66189c76cf9dae489f714aae3e346022613c0e
";
const PPK_PUBLIC: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2fQsZmz6AM3RpVGt422jX9jNi/ets2XgDfMUmQY2Qp fixture";

/// SSH.com keys (`puttygen -O private-sshcom`, RSA 1024), plain and with 3des-cbc.
const SSH2_KEY: &str = "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----
Comment: \"fixture\"
P2/56wAAAi4AAAA3aWYtbW9kbntzaWdue3JzYS1wa2NzMS1zaGExfSxlbmNyeXB0e3JzYS
1wa2NzMXYyLW9hZXB9fQAAAARub25lAAAB3wAAAdsAAAARAQABAAAEALRAKzSKLbtIbZZS
1a/2cLRniZobkFvDyhXUGHIcIWxNy5fk99dP1NkjtI92Ku89Zy82TeuKDKId4ZulT3I8uY
VDFfdJ+yk3avoPVR58edum3gs9aqte/VTLhahdJlnf5U6aCj8GQ4+JLX3RnoLdy7loKXFo
nc8AsI4heh+p9JCJAAAEAMcH8C6srvu3u26uqGg5YqiwfJJXriZ3LlohAW/qnzOEfMdkWE
zyFze7ooVvgqFxlKo4vYvUKV9p/Iwjmw1tevij2JN2sLLt27BgNSbKcoas0j4T7opYoJrv
DSqN5OcqAs++sI9qbUMvK9SFjC261AMNhnaVVdfsol4wA1UKXOvnAAACAM3e+Onb/2PCyh
LchGnMNwSmCWiL9j2vHWmF5ysLKjksVuZuxP9G2Ue3KR82BFnX2Gt6ZNabXoVBjUu8bmdi
+o4AAAIAx2xP7hFnehZwsHcoE61827dAem1FwV6WaWzcKmGB2EPrfcQ0au6eSz8uKzJmD3
DDVBd/9dmVZg0pbeuenoaalQAAAgD/fyZLfVlj0c1oU//at/FnyZ9ATxA/YwXk6k7RCfvq
yhLTZ1qjSPr8ngMRid2P1SMyjoZVXwJxVFP7KvUWSMmL
---- END SSH2 ENCRYPTED PRIVATE KEY ----
";
const SSH2_KEY_ENCRYPTED: &str = "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----
Comment: \"fixture\"
P2/56wAAAjMAAAA3aWYtbW9kbntzaWdue3JzYS1wa2NzMS1zaGExfSxlbmNyeXB0e3JzYS
1wa2NzMXYyLW9hZXB9fQAAAAgzZGVzLWNiYwAAAeAV7y4/qTu63wqrmBQd8gCzZNKEwR6K
qW7d6Ps0ghG/J7dYGOOI9kP0QhIhXEFhRRIqi/rAtzuajiAHTvGefBMD+9WAp87xX7zCT6
dNSIBk0Jc8PPevJDPVaoC2XEZOdQryLnTekdSfgw2UnG1/3YuyQQhaWFNkMsmJEjfp7Swh
/miSCZVHA1lrLrYusV2zRJeW2LpJD39J3oqBgLrg/MxkonU8HAcY6OZWwgt8NwZwPgDc7V
a4CmhJeqpHvW0EAPv8lXh/i7rPw937eN2Z9lB6jICLDxC0pSVQ+WlEmYd/75DBuDADhSC4
Jc8DrjgattU6c+LO5kMnI5wPrkR4GBcXi1LxNlyBb5adWRiPy1lQDchmOfNoQQkELJt99p
72MuI+IghGbbVvuAUJKaZ7ICuGH2PSu/Pk1WVrAr+6GGZKLRGsDFyfs9KeFPFaRiCYJPXI
2bhdugJu//1E5ymtIE7zIT+lLF2opaQ6zeEDS8O4wi2A4q65dgHHS42aE0l89/9NcGk994
8zvmm7YZ8xw5aWAEFVanlxrnt+m9Sq1cOpt6QR5O665B9NRPyzuez82HO2GLuIicztLfB7
7FaZX3nbJM4uC+ZFiWl9iME0PRxYTRhMSzgeDWGw/yBLEScsxlc=
---- END SSH2 ENCRYPTED PRIVATE KEY ----
";

/// A scratch directory under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sqltun-keys-test-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes a key file with mode 0600.
    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, contents).expect("write key file");
        chmod(&path, 0o600);
        path
    }

    /// `ssh-keygen -q -C test -f DIR/name ARGS...`; pass `-N` in `args`.
    fn keygen(&self, name: &str, args: &[&str]) -> PathBuf {
        let path = self.path(name);
        let file = path.to_str().expect("utf-8 temp path");
        run("ssh-keygen", &[&["-q", "-C", "test", "-f", file], args].concat());
        path
    }

    /// `openssl COMMAND -out DIR/name ARGS...`, then mode 0600.
    fn openssl(&self, name: &str, command: &str, args: &[&str]) -> PathBuf {
        let path = self.path(name);
        let file = path.to_str().expect("utf-8 temp path");
        run("openssl", &[&[command, "-out", file], args].concat());
        chmod(&path, 0o600);
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn load(path: &Path, passphrase: Option<&str>) -> Result<PrivateKey, KeyError> {
    let secret = passphrase.map(|p| Secret::new(p.to_string()));
    load_identity(path, secret.as_ref())
}

fn decode(text: &str, passphrase: Option<&str>) -> Result<PrivateKey, KeyError> {
    let secret = passphrase.map(|p| Secret::new(p.to_string()));
    decode_identity(text, secret.as_ref())
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).expect("read key file")
}

/// The public half ssh-keygen wrote next to the key.
fn pub_file(path: &Path) -> PublicKey {
    let mut p = path.as_os_str().to_os_string();
    p.push(".pub");
    parse_public_line(&read(Path::new(&p))).expect("parse .pub")
}

fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}
