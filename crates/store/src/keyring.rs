//! The master key that encrypts secrets at rest (the sources' client secrets).
//!
//! `init` creates it in the data directory (mode 0600) or the operator supplies it in
//! `ROSTERSYNC_MASTER_KEY`. Secrets are sealed with XChaCha20-Poly1305 under a random
//! 24-byte nonce, stored in front of the ciphertext: random nonces of that size never
//! repeat in practice, so no counter has to be kept anywhere. A check value stored in
//! the database at `init` lets start-up tell a wrong key from a corrupt secret.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// What the check value seals; versioned so the scheme can change.
const CHECK_PLAINTEXT: &[u8] = b"rostersync master key check v1";
const CHECK_PREFIX: &str = "v1:";

/// The `meta` key under which `init` stores [`Keyring::check_value`].
pub const CHECK_META_KEY: &str = "master_key_check";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot {action} the master key file {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "a master key already exists at {0}; refusing to overwrite it (the stored secrets need it)"
    )]
    Exists(PathBuf),
    #[error("the master key {0}")]
    Invalid(String),
    /// The key is not the one this database was set up with; names where the key came from.
    #[error(
        "the master key from {0} does not match this database: use the key `rostersync init` created for it \
         (the data directory's master.key, or ROSTERSYNC_MASTER_KEY)"
    )]
    Mismatch(String),
    #[error(
        "cannot decrypt: the master key does not match the one this secret was encrypted with, or the data is damaged"
    )]
    Decrypt,
}

/// A 32-byte key. `Debug` never shows it.
#[derive(Clone)]
pub struct Keyring {
    key: [u8; KEY_LEN],
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(…)")
    }
}

impl Keyring {
    /// Writes a new random key to `path` (base64, mode 0600). Never overwrites a file.
    pub fn create(path: &Path) -> Result<Keyring, KeyError> {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key)
            .map_err(|e| KeyError::Invalid(format!("could not be generated: {e}")))?;
        let io = |action, source| KeyError::Io {
            action,
            path: path.to_owned(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists(path.to_owned()),
            _ => io("create", e),
        })?;
        let text = format!("{}\n", STANDARD.encode(key));
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io("write", e))?;
        Ok(Keyring { key })
    }

    /// Reads a key file written by [`Keyring::create`].
    pub fn load(path: &Path) -> Result<Keyring, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        })?;
        Keyring::from_base64(&text).map_err(|e| match e {
            KeyError::Invalid(why) => KeyError::Invalid(format!("in {}: {why}", path.display())),
            other => other,
        })
    }

    /// A key given as base64 text (e.g. from `ROSTERSYNC_MASTER_KEY`).
    pub fn from_base64(text: &str) -> Result<Keyring, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| KeyError::Invalid(format!("is not valid base64: {e}")))?;
        let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            KeyError::Invalid(format!("must be {KEY_LEN} bytes, got {}", bytes.len()))
        })?;
        Ok(Keyring { key })
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.key.into())
    }

    /// Seals `plaintext`: a random nonce followed by the ciphertext and its tag.
    ///
    /// # Panics
    ///
    /// Only if the operating system cannot supply random bytes (as `std`'s `HashMap`
    /// would), since sealing without a fresh nonce would be unsafe.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        if let Err(e) = getrandom::fill(&mut nonce) {
            panic!("the operating system's random number generator failed: {e}");
        }
        let sealed = match self.cipher().encrypt(&XNonce::from(nonce), plaintext) {
            Ok(s) => s,
            // Only for inputs beyond 256 GiB.
            Err(e) => panic!("cannot encrypt {} bytes: {e}", plaintext.len()),
        };
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Keyring::encrypt`] sealed; fails on a wrong key or damaged data.
    pub fn decrypt(&self, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(KeyError::Decrypt);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| KeyError::Decrypt)?;
        self.cipher()
            .decrypt(&XNonce::from(nonce), body)
            .map_err(|_| KeyError::Decrypt)
    }

    /// A value to store beside the encrypted data: [`Keyring::verify`] later tells whether
    /// a key is the one that made it. Reveals nothing about the key.
    pub fn check_value(&self) -> String {
        format!(
            "{CHECK_PREFIX}{}",
            STANDARD.encode(self.encrypt(CHECK_PLAINTEXT))
        )
    }

    /// Whether this key made `stored` (a [`Keyring::check_value`]).
    pub fn verify(&self, stored: &str) -> bool {
        stored
            .trim()
            .strip_prefix(CHECK_PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .and_then(|sealed| self.decrypt(&sealed).ok())
            .is_some_and(|plain| plain == CHECK_PLAINTEXT)
    }

    /// [`Keyring::verify`] as a start-up check: `origin` says where the key came from
    /// (`"/data/master.key"`, `"ROSTERSYNC_MASTER_KEY"`) for the error.
    pub fn ensure_matches(&self, stored: &str, origin: &str) -> Result<(), KeyError> {
        if self.verify(stored) {
            Ok(())
        } else {
            Err(KeyError::Mismatch(origin.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "rostersync-keyring-{}-{name}-{}",
            std::process::id(),
            nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("master.key")
    }

    fn nanos() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    }

    #[test]
    fn round_trip_and_random_nonces() {
        let k = Keyring::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let a = k.encrypt(b"s3cret");
        let b = k.encrypt(b"s3cret");
        assert_ne!(a, b, "a fresh nonce every time");
        assert_eq!(a.len(), NONCE_LEN + 6 + 16);
        assert_eq!(k.decrypt(&a).unwrap(), b"s3cret");
        assert_eq!(k.decrypt(&b).unwrap(), b"s3cret");
    }

    #[test]
    fn wrong_key_and_damage_are_refused() {
        let k = Keyring::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let other = Keyring::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        let mut sealed = k.encrypt(b"s3cret");
        assert!(matches!(other.decrypt(&sealed), Err(KeyError::Decrypt)));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(k.decrypt(&sealed), Err(KeyError::Decrypt)));
        assert!(matches!(k.decrypt(&[1, 2, 3]), Err(KeyError::Decrypt)));
    }

    #[test]
    fn check_values_tell_keys_apart() {
        let k = Keyring::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let other = Keyring::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        let check = k.check_value();
        assert!(check.starts_with("v1:"));
        assert!(k.verify(&check));
        assert!(!other.verify(&check));
        assert!(!k.verify("v1:not base64!"));
        assert!(!k.verify(""));
        assert!(k.ensure_matches(&check, "x").is_ok());
        let e = other
            .ensure_matches(&check, "ROSTERSYNC_MASTER_KEY")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("the master key from ROSTERSYNC_MASTER_KEY does not match this database"),
            "{e}"
        );
    }

    #[test]
    fn bad_keys_say_why() {
        let e = Keyring::from_base64("not base64!").unwrap_err().to_string();
        assert!(e.contains("not valid base64"), "{e}");
        let e = Keyring::from_base64(&STANDARD.encode([1u8; 16]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be 32 bytes, got 16"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = Keyring::from_base64(&STANDARD.encode([0xabu8; 32])).unwrap();
        let shown = format!("{k:?}");
        assert_eq!(shown, "Keyring(…)");
        assert!(!shown.contains(&STANDARD.encode([0xabu8; 32])));
    }

    #[test]
    fn create_writes_a_private_file_once_and_load_reads_it() {
        let path = temp_path("create");
        let k = Keyring::create(&path).unwrap();
        let again = Keyring::load(&path).unwrap();
        assert_eq!(again.decrypt(&k.encrypt(b"x")).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = Keyring::create(&path).unwrap_err();
        assert!(matches!(err, KeyError::Exists(_)), "{err}");
        assert_eq!(Keyring::load(&path).unwrap().key, k.key, "not overwritten");
        std::fs::write(&path, "short").unwrap();
        let e = Keyring::load(&path).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
        let missing = Keyring::load(&path).unwrap_err().to_string();
        assert!(
            missing.starts_with("cannot read the master key file"),
            "{missing}"
        );
    }
}
