//! SSH.com / Tectia SSH2 keys: recognised and refused with the `ssh-keygen -i` conversion.

use super::KeyFormat;
use super::analysis::Analysis;
use super::armour::Armour;
use russh::keys::ssh_key::encoding::Decode;

/// SSH.com/Tectia: magic 0x3f6ff9eb, uint32 length, string key type, string cipher.
pub(super) fn analyze(block: &Armour) -> Analysis {
    let mut a = Analysis::new(KeyFormat::Ssh2);
    a.unsupported_format = true;
    let data = block.decode_prefix();
    let mut r: &[u8] = &data;
    if u32::decode(&mut r).ok() == Some(0x3f6f_f9eb) {
        let _len = u32::decode(&mut r);
        let _key_type = Vec::<u8>::decode(&mut r);
        a.encrypted = String::decode(&mut r).is_ok_and(|c| c != "none");
    }
    a
}
