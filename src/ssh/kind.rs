//! Which user-facing kind of failure a russh error during connection set-up is.

use crate::error::Kind;

/// Classify an error from russh during connection set-up into the user-facing taxonomy.
pub(crate) fn classify(e: &russh::Error) -> Kind {
    match e {
        russh::Error::IO(_) | russh::Error::ConnectionTimeout | russh::Error::HUP | russh::Error::Disconnect => {
            Kind::Unreachable
        }
        russh::Error::UnknownKey | russh::Error::KeyChanged { .. } | russh::Error::WrongServerSig => Kind::HostKey,
        russh::Error::NotAuthenticated | russh::Error::NoAuthMethod => Kind::Auth,
        russh::Error::NoCommonAlgo { .. } | russh::Error::Version | russh::Error::Kex | russh::Error::KexInit => {
            Kind::Unreachable
        }
        _ => Kind::Session,
    }
}
