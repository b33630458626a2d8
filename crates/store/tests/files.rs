//! The SQLite database's files are the owner's alone (0600): the database, its WAL and
//! its shared memory, whatever the umask; wider files left by older versions are
//! narrowed on open. (PostgreSQL keeps no file of ours.)

#[cfg(unix)]
mod unix {
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::{Path, PathBuf};

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "rostersync_files_{name}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    }

    #[test]
    fn a_new_database_and_its_wal_are_private() {
        let dir = fresh_dir("new");
        let file = dir.join("rostersync.db");
        let store = store::open(file.to_str().unwrap()).unwrap();
        store.meta_set("probe", "x").unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let p = with_suffix(&file, suffix);
            assert!(p.exists(), "{} exists while the store is open", p.display());
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wider_files_are_narrowed_on_open() {
        let dir = fresh_dir("old");
        let file = dir.join("rostersync.db");
        let store = store::open(file.to_str().unwrap()).unwrap();
        store.meta_set("probe", "x").unwrap();
        // As an older rostersync under umask 022 left them (the store still open, so the
        // WAL and shared-memory files stay).
        for suffix in ["", "-wal", "-shm"] {
            std::fs::set_permissions(
                with_suffix(&file, suffix),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
        }
        let again = store::open(file.to_str().unwrap()).unwrap();
        assert_eq!(again.meta_get("probe").unwrap().as_deref(), Some("x"));
        for suffix in ["", "-wal", "-shm"] {
            let p = with_suffix(&file, suffix);
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        drop(again);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
