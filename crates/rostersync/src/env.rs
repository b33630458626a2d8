//! Where rostersync keeps its state: the data directory (SQLite file, master key) or a
//! PostgreSQL URL, resolved once from the global flags.
//!
//! The data directory is created 0700 and the files in it 0600 (the store makes the
//! database's, the keyring the key's), whatever the umask.

use std::path::{Path, PathBuf};

use clap::Args;
use store::Store;
use store::keyring::Keyring;

use crate::Failure;

/// The meta key holding the master key's check value.
const KEY_CHECK: &str = "master_key_check";

#[derive(Args, Clone)]
pub struct StateArgs {
    /// Directory for the SQLite database and the master key.
    #[arg(
        long,
        global = true,
        env = "ROSTERSYNC_DATA_DIR",
        default_value = "./rostersync-data"
    )]
    pub data_dir: PathBuf,
    /// Database URL instead of the SQLite file in the data directory (postgres://…).
    #[arg(
        long,
        global = true,
        env = "ROSTERSYNC_DATABASE",
        hide_env_values = true
    )]
    pub database: Option<String>,
}

/// An opened store with the key that decrypts its secrets.
pub struct State {
    pub store: Store,
    pub keyring: Keyring,
    /// Who this command is in locks and the audit log (`cli:USER`).
    pub actor: String,
}

impl State {
    /// An engine context that reports no progress (for the short commands).
    pub fn quiet_context<'a>(&'a self, runtime: &'a tokio::runtime::Handle) -> engine::Context<'a> {
        self.context(runtime, &|_| {})
    }

    /// What the engine needs to run from the command line: the system clock, this
    /// command as the lock holder, `progress` told how a run goes.
    pub fn context<'a>(
        &'a self,
        runtime: &'a tokio::runtime::Handle,
        progress: &'a (dyn Fn(engine::Progress) + Sync),
    ) -> engine::Context<'a> {
        engine::Context {
            store: &self.store,
            keyring: Some(&self.keyring),
            runtime,
            progress,
            clock: &engine::SystemClock,
            holder: &self.actor,
            max_plan_items: engine::MAX_PLAN_ITEMS,
            account_chunk: engine::ACCOUNT_CHUNK,
        }
    }
}

impl StateArgs {
    fn key_path(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }

    fn database(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => self.data_dir.join("rostersync.db").display().to_string(),
        }
    }

    fn describe_database(&self) -> String {
        match &self.database {
            Some(url) => store::describe_database(url),
            None => self.data_dir.join("rostersync.db").display().to_string(),
        }
    }

    fn open_store(&self) -> Result<Store, Failure> {
        store::open(&self.database()).map_err(store_failure)
    }

    /// The master key the operator gave, as every command takes it:
    /// `ROSTERSYNC_MASTER_KEY`, else the data directory's `master.key` when it exists
    /// (`None`: neither).
    pub fn given_key(&self) -> Result<Option<Keyring>, Failure> {
        if let Ok(b64) = std::env::var("ROSTERSYNC_MASTER_KEY") {
            return Keyring::from_base64(&b64)
                .map(Some)
                .map_err(|e| Failure::config(format!("ROSTERSYNC_MASTER_KEY: {e}")));
        }
        let path = self.key_path();
        if !path.exists() {
            return Ok(None);
        }
        Keyring::load(&path).map(Some).map_err(|e| {
            Failure::config(format!(
                "cannot read the master key at {}: {e}",
                path.display()
            ))
        })
    }

    fn load_key(&self) -> Result<Keyring, Failure> {
        self.given_key()?.ok_or_else(|| {
            Failure::config(format!(
                "there is no master key at {}. Run `rostersync init` first, or set ROSTERSYNC_MASTER_KEY",
                self.key_path().display()
            ))
        })
    }

    /// The database was initialised with a master key that cannot be read: what to do.
    fn key_lost(&self) -> Failure {
        Failure::config(format!(
            "the master key of the database at {} is missing or unreadable at {}: restore that file from your backup (or set ROSTERSYNC_MASTER_KEY to the key). A new key cannot read the client secrets stored with the old one, so `rostersync init` will not make one for this database",
            self.describe_database(),
            self.key_path().display()
        ))
    }

    /// Creates what is missing: the data directory, the master key, the database schema.
    /// Safe to run twice; refuses a key that does not match an existing database, and
    /// never makes a new key for a database that has one.
    pub fn init(&self) -> Result<(State, bool), Failure> {
        create_private_dir(&self.data_dir)?;
        let key_path = self.key_path();
        let from_env = std::env::var("ROSTERSYNC_MASTER_KEY").is_ok();
        let keyring = if from_env || key_path.exists() {
            self.load_key()?
        } else if self.database.is_some() || Path::new(&self.database()).exists() {
            // An existing database may already be tied to a key that went missing.
            let store = self.open_store()?;
            if store.meta_get(KEY_CHECK).map_err(store_failure)?.is_some() {
                return Err(self.key_lost());
            }
            drop(store);
            Keyring::create(&key_path).map_err(|e| {
                Failure::config(format!(
                    "cannot write the master key to {}: {e}",
                    key_path.display()
                ))
            })?
        } else {
            Keyring::create(&key_path).map_err(|e| {
                Failure::config(format!(
                    "cannot write the master key to {}: {e}",
                    key_path.display()
                ))
            })?
        };
        let store = self.open_store()?;
        let fresh = match store.meta_get(KEY_CHECK).map_err(store_failure)? {
            Some(check) => {
                verify(&keyring, &check, &key_path, from_env)?;
                false
            }
            None => {
                store
                    .meta_set(KEY_CHECK, &keyring.check_value())
                    .map_err(store_failure)?;
                true
            }
        };
        Ok((
            State {
                store,
                keyring,
                actor: crate::config_cmd::cli_actor(),
            },
            fresh,
        ))
    }

    /// Opens an initialised store and checks the master key against it.
    pub fn open(&self) -> Result<State, Failure> {
        if self.database.is_none() && !Path::new(&self.database()).exists() {
            return Err(Failure::config(format!(
                "no database at {}: run `rostersync init` first (or pass --data-dir / --database)",
                self.describe_database()
            )));
        }
        warn_if_open(&self.data_dir);
        let store = self.open_store()?;
        let check = store
            .meta_get(KEY_CHECK)
            .map_err(store_failure)?
            .ok_or_else(|| {
                Failure::config(format!(
                    "the database at {} is not initialised: run `rostersync init`",
                    self.describe_database()
                ))
            })?;
        let keyring = self.load_key().map_err(|_| self.key_lost())?;
        verify(
            &keyring,
            &check,
            &self.key_path(),
            std::env::var("ROSTERSYNC_MASTER_KEY").is_ok(),
        )?;
        // Runs a killed or crashed process left `running` are settled (interrupted, or
        // held again when an approval was cut short) before anything reads them.
        if let Err(e) = engine::settle_interrupted_runs(
            &store,
            &crate::config_cmd::cli_actor(),
            &engine::SystemClock,
        ) {
            tracing::warn!(error = %e, "could not settle runs left running by a stopped process");
        }
        Ok(State {
            store,
            keyring,
            actor: crate::config_cmd::cli_actor(),
        })
    }

    pub fn describe(&self) -> String {
        self.describe_database()
    }
}

/// Creates the data directory owner-only (0700, whatever the umask): it holds the
/// database (student data, password hashes) and the master key. Missing parents are made
/// as usual. A directory that already exists is left as it is — the operator may have
/// made it on purpose — but a warning says so when group or others may enter it.
pub fn create_private_dir(dir: &Path) -> Result<(), Failure> {
    let failed = |e: std::io::Error| {
        Failure::config(format!(
            "cannot create the data directory {}: {e}",
            dir.display()
        ))
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {
            warn_if_open(dir);
            Ok(())
        }
        Err(e) => Err(failed(e)),
    }
}

/// Warns when group or others may list or enter an existing data directory.
fn warn_if_open(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(dir) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    dir = %dir.display(),
                    mode = format!("{mode:o}"),
                    "the data directory is open to other users of this machine: run chmod 700 on it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn verify(keyring: &Keyring, check: &str, key_path: &Path, from_env: bool) -> Result<(), Failure> {
    if keyring.verify(check) {
        return Ok(());
    }
    let which = if from_env {
        "ROSTERSYNC_MASTER_KEY".to_owned()
    } else {
        key_path.display().to_string()
    };
    Err(Failure::config(format!(
        "the master key in {which} does not match this database (it was initialised with another key): restore the original key file or variable"
    )))
}

/// A store error as the CLI reports it: exit 3 when the database itself failed or could
/// not be reached (retry when it is back: nothing was written), 2 when the request was
/// refused (a name taken, no such account).
pub fn store_failure(e: store::StoreError) -> Failure {
    Failure {
        code: if e.is_unavailable() { 3 } else { 2 },
        message: e.to_string(),
    }
}

/// An engine error as the CLI reports it: the store's own as [`store_failure`] does,
/// everything else (settings, the source, a busy source) exit 2.
pub fn engine_failure(e: engine::EngineError) -> Failure {
    match e {
        engine::EngineError::Store(e) => store_failure(e),
        e => Failure::config(e.to_string()),
    }
}
