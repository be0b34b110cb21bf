//! Host keys pinned for the life of the process, so a reconnect meets the key accepted first.

/// Host keys accepted while this process runs, per lookup name: a reconnect must meet the same key,
/// whatever known_hosts says by then (a key accepted with StrictHostKeyChecking=no, or one whose
/// recording failed, is held to it too).
#[derive(Debug, Default)]
pub struct Pins(std::sync::Mutex<std::collections::HashMap<String, russh::keys::PublicKey>>);

impl Pins {
    /// The key this process accepted for `name` before, if any.
    pub fn pinned(&self, name: &str) -> Option<russh::keys::PublicKey> {
        self.0.lock().ok()?.get(name).cloned()
    }

    /// Remember `key` for `name` (the first accepted key stays).
    pub fn pin(&self, name: &str, key: &russh::keys::PublicKey) {
        if let Ok(mut pins) = self.0.lock() {
            pins.entry(name.to_string()).or_insert_with(|| key.clone());
        }
    }
}
