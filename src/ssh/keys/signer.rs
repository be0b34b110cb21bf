//! Signers for certificate authentication: with a key loaded from a file, or with the plain key an
//! agent holds.

use russh::keys::{PrivateKey, PublicKey, ssh_key};

/// Signs publickey authentication with a key from a file, for presenting its certificate through
/// russh's `authenticate_certificate_with`: unlike `authenticate_openssh_cert`, which names an RSA
/// certificate `ssh-rsa-cert-v01@openssh.com` (SHA-1, refused by OpenSSH 8.8 and later), that takes
/// the RSA hash the server announced, naming it `rsa-sha2-512-cert-v01@openssh.com` (or -256).
#[derive(Debug, Clone)]
pub struct KeySigner(pub std::sync::Arc<PrivateKey>);

impl russh::Signer for KeySigner {
    type Error = russh::AgentAuthError;

    #[allow(clippy::manual_async_fn)]
    fn auth_sign(
        &mut self,
        _identity: &russh::keys::agent::AgentIdentity,
        hash: Option<russh::keys::HashAlg>,
        mut to_sign: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        let key = self.0.clone();
        async move {
            use signature::Signer as _;
            use ssh_key::encoding::Encode as _;
            let signed = match key.key_data() {
                ssh_key::private::KeypairData::Rsa(pair) => (pair, hash).try_sign(&to_sign),
                _ => key.try_sign(&to_sign),
            };
            let blob = signed
                .map_err(ssh_key::Error::from)
                .and_then(|s| Ok(s.encode_vec()?))
                .map_err(russh::keys::Error::from)?;
            // The signature is appended as an SSH string, as an agent's is.
            let len = u32::try_from(blob.len()).map_err(|_| russh::keys::Error::IndexOutOfBounds)?;
            to_sign.extend_from_slice(&len.to_be_bytes());
            to_sign.extend_from_slice(&blob);
            Ok(to_sign)
        }
    }
}

/// Signs for a certificate with the plain key an agent holds: the agent only knows the key it was
/// given, not a certificate issued (or renewed) for it later, so the request names the key, as
/// OpenSSH's client does.
pub(crate) struct AgentKeySigner<'a> {
    pub(crate) agent: &'a mut russh::keys::agent::client::AgentClient<tokio::net::UnixStream>,
    pub(crate) key: PublicKey,
}

impl russh::Signer for AgentKeySigner<'_> {
    type Error = russh::AgentAuthError;

    #[allow(clippy::manual_async_fn)]
    fn auth_sign(
        &mut self,
        _identity: &russh::keys::agent::AgentIdentity,
        hash: Option<russh::keys::HashAlg>,
        to_sign: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        async move {
            let key = russh::keys::agent::AgentIdentity::from(self.key.clone());
            Ok(self.agent.sign_request(&key, hash, to_sign).await?)
        }
    }
}
