//! SSH.com / Tectia SSH2 keys: recognised and refused with the `ssh-keygen -i` conversion.

use super::KeyFormat;
use super::analyze::Analysis;
use super::armour::Armour;
use super::openssh::Wire;

/// SSH.com/Tectia: magic 0x3f6ff9eb, uint32 length, string key type, string cipher.
pub(super) fn analyze(block: &Armour) -> Analysis {
    let mut a = Analysis::new(KeyFormat::Ssh2);
    a.unsupported_format = true;
    let data = block.decode_prefix();
    let mut wire = Wire(&data);
    if wire.u32() == Some(0x3f6f_f9eb) {
        let _len = wire.u32();
        let _key_type = wire.bytes();
        a.encrypted = wire.string().is_some_and(|c| c != "none");
    }
    a
}
