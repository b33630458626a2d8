//! What the web console keeps: the accounts that sign in to it, their sessions, API
//! tokens, and the named locks that keep two runs of one source (and two schedulers)
//! apart.
//!
//! Nothing here holds a secret in the clear: passwords are argon2id PHC strings made by
//! the server, session ids and API tokens are stored as SHA-256 hex digests of the random
//! values only their holders know. The store neither hashes nor checks them; it keeps rows.

use jiff::Timestamp;
use serde::Serialize;

use crate::model::row_id;
use crate::sql::{Row, Tx, query_opt, query_vec, ts};
use crate::{Result, StoreError};

row_id! {
    /// A console account's id (someone who signs in to the console; not a directory account).
    ConsoleUserId
}

row_id! {
    /// An API token's id (the one the console lists, and revokes by).
    ApiTokenId
}

/// What a console account may do. `Owner` also changes the protected settings (user
/// mapping, import categories, inactive users, deactivation, downgrades, relationships,
/// grace); `Admin` everything else; `Viewer` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleRole {
    Viewer,
    Admin,
    Owner,
}

impl ConsoleRole {
    pub const ALL: [ConsoleRole; 3] = [ConsoleRole::Owner, ConsoleRole::Admin, ConsoleRole::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleRole::Owner => "owner",
            ConsoleRole::Admin => "admin",
            ConsoleRole::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<ConsoleRole> {
        ConsoleRole::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the role may change anything at all.
    pub fn can_write(self) -> bool {
        self >= ConsoleRole::Admin
    }

    pub fn is_owner(self) -> bool {
        self == ConsoleRole::Owner
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleAccount {
    pub id: ConsoleUserId,
    pub name: String,
    pub role: ConsoleRole,
    pub disabled: bool,
    /// The argon2id PHC string.
    pub password_hash: String,
    pub created_at: Timestamp,
    pub password_set_at: Timestamp,
}

/// A session to record at sign-in.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 hex of the cookie's value.
    pub id_hash: String,
    pub account: ConsoleUserId,
    /// The session's CSRF token (compared in constant time by the server).
    pub csrf: String,
    pub created_at: Timestamp,
    /// The absolute expiry; idle expiry is the server's rule over `last_seen`.
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id_hash: String,
    pub account: ConsoleAccount,
    pub csrf: String,
    pub created_at: Timestamp,
    pub last_seen: Timestamp,
    pub expires_at: Timestamp,
}

/// What an API token may do: `Read` as a viewer, `Write` as an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    Read,
    Write,
    /// A SCIM connection's: `/scim/v2` only, for the source the token is named after.
    Scim,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Write => "write",
            TokenScope::Scim => "scim",
        }
    }

    pub fn parse(s: &str) -> Option<TokenScope> {
        [TokenScope::Read, TokenScope::Write, TokenScope::Scim]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenRecord {
    pub id: ApiTokenId,
    pub name: String,
    pub scope: TokenScope,
    pub created_by: String,
    pub created_at: Timestamp,
    pub last_used: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// When it stops signing in; `None`: never.
    pub expires_at: Option<Timestamp>,
}

impl ApiTokenRecord {
    /// Whether the token is past its expiry at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// A held named lock; dropping it releases it. See [`crate::Store::try_lock`].
pub struct StoreLock {
    pub(crate) name: String,
    pub(crate) _held: Box<dyn Send>,
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLock")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl StoreLock {
    pub fn name(&self) -> &str {
        &self.name
    }
}

const ACCOUNT_SELECT: &str = "SELECT id, name, role, disabled, password_hash, created_at, password_set_at FROM console_accounts";

fn account_from_row(r: &dyn Row) -> Result<ConsoleAccount> {
    let role = r.text(2)?;
    Ok(ConsoleAccount {
        id: ConsoleUserId(r.i64(0)?),
        name: r.text(1)?,
        role: ConsoleRole::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("console account role '{role}'")))?,
        disabled: r.bool(3)?,
        password_hash: r.text(4)?,
        created_at: r.ts(5)?,
        password_set_at: r.ts(6)?,
    })
}

pub(crate) fn console_accounts(tx: &mut dyn Tx) -> Result<Vec<ConsoleAccount>> {
    query_vec(
        tx,
        &format!("{ACCOUNT_SELECT} ORDER BY name"),
        &[],
        account_from_row,
    )
}

pub(crate) fn console_account(tx: &mut dyn Tx, name: &str) -> Result<Option<ConsoleAccount>> {
    query_opt(
        tx,
        &format!("{ACCOUNT_SELECT} WHERE name = ?"),
        &[name.into()],
        account_from_row,
    )
}

pub(crate) fn create_console_account(
    tx: &mut dyn Tx,
    name: &str,
    role: ConsoleRole,
    password_hash: &str,
    actor: &str,
    now: Timestamp,
) -> Result<ConsoleUserId> {
    if console_account(tx, name)?.is_some() {
        return Err(StoreError::Conflict(format!(
            "a console account named '{name}' already exists: use `rostersync admin passwd {name}` to set its password"
        )));
    }
    let at = ts(now);
    tx.execute(
        "INSERT INTO console_accounts (name, password_hash, role, disabled, created_at, password_set_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            name.into(),
            password_hash.into(),
            role.as_str().into(),
            false.into(),
            at.as_str().into(),
            at.as_str().into(),
        ],
    )?;
    let id = query_opt(
        tx,
        "SELECT id FROM console_accounts WHERE name = ?",
        &[name.into()],
        |r| r.i64(0),
    )?
    .ok_or_else(|| StoreError::database("the new console account vanished"))?;
    crate::settings::audit(
        tx,
        actor,
        "console.account.add",
        &format!("{name} ({})", role.as_str()),
        now,
    )?;
    Ok(ConsoleUserId(id))
}

/// Sets the password and ends every session of the account.
pub(crate) fn set_console_password(
    tx: &mut dyn Tx,
    name: &str,
    password_hash: &str,
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    let account = console_account(tx, name)?
        .ok_or_else(|| StoreError::NotFound(format!("no console account named '{name}'")))?;
    tx.execute(
        "UPDATE console_accounts SET password_hash = ?, password_set_at = ? WHERE id = ?",
        &[password_hash.into(), ts(now).into(), account.id.into()],
    )?;
    tx.execute(
        "DELETE FROM console_sessions WHERE account_id = ?",
        &[account.id.into()],
    )?;
    crate::settings::audit(tx, actor, "console.account.passwd", name, now)
}

pub(crate) fn create_session(tx: &mut dyn Tx, s: &NewSession) -> Result<()> {
    let at = ts(s.created_at);
    tx.execute(
        "INSERT INTO console_sessions (id_hash, account_id, csrf, created_at, last_seen, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            s.id_hash.as_str().into(),
            s.account.into(),
            s.csrf.as_str().into(),
            at.as_str().into(),
            at.as_str().into(),
            ts(s.expires_at).into(),
        ],
    )?;
    Ok(())
}

pub(crate) fn session(tx: &mut dyn Tx, id_hash: &str) -> Result<Option<SessionRecord>> {
    query_opt(
        tx,
        "SELECT s.id_hash, s.csrf, s.created_at, s.last_seen, s.expires_at, \
                a.id, a.name, a.role, a.disabled, a.password_hash, a.created_at, a.password_set_at \
         FROM console_sessions s JOIN console_accounts a ON a.id = s.account_id WHERE s.id_hash = ?",
        &[id_hash.into()],
        |r| {
            let role = r.text(7)?;
            Ok(SessionRecord {
                id_hash: r.text(0)?,
                csrf: r.text(1)?,
                created_at: r.ts(2)?,
                last_seen: r.ts(3)?,
                expires_at: r.ts(4)?,
                account: ConsoleAccount {
                    id: ConsoleUserId(r.i64(5)?),
                    name: r.text(6)?,
                    role: ConsoleRole::parse(&role).ok_or_else(|| {
                        StoreError::Corrupt(format!("console account role '{role}'"))
                    })?,
                    disabled: r.bool(8)?,
                    password_hash: r.text(9)?,
                    created_at: r.ts(10)?,
                    password_set_at: r.ts(11)?,
                },
            })
        },
    )
}

pub(crate) fn touch_session(tx: &mut dyn Tx, id_hash: &str, now: Timestamp) -> Result<()> {
    tx.execute(
        "UPDATE console_sessions SET last_seen = ? WHERE id_hash = ?",
        &[ts(now).into(), id_hash.into()],
    )?;
    Ok(())
}

pub(crate) fn delete_session(tx: &mut dyn Tx, id_hash: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM console_sessions WHERE id_hash = ?",
        &[id_hash.into()],
    )?;
    Ok(())
}

/// Removes sessions past their absolute expiry or idle since `idle_before`.
pub(crate) fn purge_sessions(
    tx: &mut dyn Tx,
    now: Timestamp,
    idle_before: Timestamp,
) -> Result<u64> {
    tx.execute(
        "DELETE FROM console_sessions WHERE expires_at <= ? OR last_seen < ?",
        &[ts(now).into(), ts(idle_before).into()],
    )
}

pub(crate) fn create_api_token(
    tx: &mut dyn Tx,
    name: &str,
    scope: TokenScope,
    token_hash: &str,
    expires_at: Option<Timestamp>,
    actor: &str,
    now: Timestamp,
) -> Result<ApiTokenId> {
    tx.execute(
        "INSERT INTO api_tokens (name, scope, token_hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        &[
            name.into(),
            scope.as_str().into(),
            token_hash.into(),
            actor.into(),
            ts(now).into(),
            expires_at.map(ts).into(),
        ],
    )?;
    let id = query_opt(
        tx,
        "SELECT id FROM api_tokens WHERE token_hash = ?",
        &[token_hash.into()],
        |r| r.i64(0).map(ApiTokenId),
    )?
    .ok_or_else(|| StoreError::database("the new API token vanished"))?;
    crate::settings::audit(
        tx,
        actor,
        "api.token.create",
        &format!(
            "#{id} {name} ({}, expires {})",
            scope.as_str(),
            expires_at.map_or_else(|| "never".to_owned(), |e| e.to_string())
        ),
        now,
    )?;
    Ok(id)
}

const TOKEN_SELECT: &str = "SELECT id, name, scope, created_by, created_at, last_used, revoked_at, expires_at FROM api_tokens";

fn token_from_row(r: &dyn Row) -> Result<ApiTokenRecord> {
    let scope = r.text(2)?;
    Ok(ApiTokenRecord {
        id: ApiTokenId(r.i64(0)?),
        name: r.text(1)?,
        scope: TokenScope::parse(&scope)
            .ok_or_else(|| StoreError::Corrupt(format!("API token scope '{scope}'")))?,
        created_by: r.text(3)?,
        created_at: r.ts(4)?,
        last_used: r.opt_ts(5)?,
        revoked_at: r.opt_ts(6)?,
        expires_at: r.opt_ts(7)?,
    })
}

pub(crate) fn api_token(tx: &mut dyn Tx, token_hash: &str) -> Result<Option<ApiTokenRecord>> {
    query_opt(
        tx,
        &format!("{TOKEN_SELECT} WHERE token_hash = ?"),
        &[token_hash.into()],
        token_from_row,
    )
}

pub(crate) fn api_tokens(tx: &mut dyn Tx) -> Result<Vec<ApiTokenRecord>> {
    query_vec(
        tx,
        &format!("{TOKEN_SELECT} ORDER BY id"),
        &[],
        token_from_row,
    )
}

pub(crate) fn touch_api_token(tx: &mut dyn Tx, id: ApiTokenId, now: Timestamp) -> Result<()> {
    tx.execute(
        "UPDATE api_tokens SET last_used = ? WHERE id = ?",
        &[ts(now).into(), id.into()],
    )?;
    Ok(())
}

pub(crate) fn revoke_api_token(
    tx: &mut dyn Tx,
    id: ApiTokenId,
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    let n = tx.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        &[ts(now).into(), id.into()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("no active API token #{id}")));
    }
    crate::settings::audit(tx, actor, "api.token.revoke", &format!("#{id}"), now)
}

pub(crate) fn count_console_accounts(tx: &mut dyn Tx) -> Result<u64> {
    let n = crate::sql::query_i64(tx, "SELECT COUNT(*) FROM console_accounts", &[])?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Whether a process of this machine is alive (a SQLite lock row's holder).
fn process_alive(pid: i64) -> bool {
    if i64::from(std::process::id()) == pid {
        return true;
    }
    // Linux: /proc/PID exists while the process does. Elsewhere, assume alive (a stale
    // row is then removed by hand: DELETE FROM run_locks).
    let proc_fs = std::path::Path::new("/proc/self");
    if !proc_fs.exists() {
        return true;
    }
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A lock row held in a SQLite database, deleted on drop.
struct SqliteHeld {
    conn: rusqlite::Connection,
    name: String,
    pid: i64,
}

impl Drop for SqliteHeld {
    fn drop(&mut self) {
        if let Err(e) = self.conn.execute(
            "DELETE FROM run_locks WHERE name = ?1 AND pid = ?2",
            rusqlite::params![self.name, self.pid],
        ) {
            tracing::error!(lock = %self.name, error = %e, "could not release a run lock: delete its run_locks row by hand");
        }
    }
}

pub(crate) fn sqlite_try_lock(
    path: &std::path::Path,
    name: &str,
    holder: &str,
    now: Timestamp,
) -> Result<Option<StoreLock>> {
    let db = |e: rusqlite::Error| StoreError::driver(format!("taking the lock {name}: {e}"), e);
    let mut conn = rusqlite::Connection::open(path).map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(db)?;
    let pid = i64::from(std::process::id());
    {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let existing: Option<(i64, String)> = {
            let mut stmt = tx
                .prepare("SELECT pid, holder FROM run_locks WHERE name = ?1")
                .map_err(db)?;
            let mut rows = stmt.query([name]).map_err(db)?;
            match rows.next().map_err(db)? {
                Some(r) => Some((r.get(0).map_err(db)?, r.get(1).map_err(db)?)),
                None => None,
            }
        };
        if let Some((other, other_holder)) = existing {
            if process_alive(other) {
                return Ok(None);
            }
            tracing::warn!(lock = name, pid = other, holder = %other_holder, "taking over a lock whose process is gone");
            tx.execute("DELETE FROM run_locks WHERE name = ?1", [name])
                .map_err(db)?;
        }
        tx.execute(
            "INSERT INTO run_locks (name, holder, pid, acquired_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![name, holder, pid, ts(now)],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
    }
    Ok(Some(StoreLock {
        name: name.to_owned(),
        _held: Box::new(SqliteHeld {
            conn,
            name: name.to_owned(),
            pid,
        }),
    }))
}

/// On PostgreSQL a lock is a session advisory lock held by a connection of its own: the
/// store's connections run transactions, and the lock must outlive them. If the process
/// dies, the connection closes and the lock goes with it.
pub(crate) fn pg_try_lock(store: &crate::PgStore, name: &str) -> Result<Option<StoreLock>> {
    let mut client = store.new_client().map_err(|e| {
        StoreError::Open(format!(
            "cannot connect to PostgreSQL to take the lock {name}: {e}"
        ))
    })?;
    // Keyed by schema too: each rostersync database (a schema) has its own locks, even
    // when several share one PostgreSQL database.
    let got: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtext('rostersync:' || current_schema()), hashtext($1))",
            &[&name],
        )
        .and_then(|r| r.try_get(0))
        .map_err(|e| StoreError::driver(format!("taking the lock {name}: {e}"), e))?;
    if !got {
        return Ok(None);
    }
    Ok(Some(StoreLock {
        name: name.to_owned(),
        _held: Box::new(PgHeld {
            client,
            name: name.to_owned(),
        }),
    }))
}

/// A PostgreSQL advisory lock, released on drop: unlocked explicitly (closing the
/// connection releases it too, but only once the server notices, so a lock taken right
/// after could still find it held).
struct PgHeld {
    client: postgres::Client,
    name: String,
}

impl Drop for PgHeld {
    fn drop(&mut self) {
        if let Err(e) = self.client.execute(
            "SELECT pg_advisory_unlock(hashtext('rostersync:' || current_schema()), hashtext($1))",
            &[&self.name],
        ) {
            tracing::warn!(lock = %self.name, error = %e, "could not unlock explicitly; closing the connection releases it");
        }
    }
}

impl crate::SqliteStore {
    pub(crate) fn lock_named(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
    ) -> Result<Option<StoreLock>> {
        sqlite_try_lock(self.path(), name, holder, now)
    }
}

impl crate::PgStore {
    pub(crate) fn lock_named(
        &self,
        name: &str,
        _holder: &str,
        _now: Timestamp,
    ) -> Result<Option<StoreLock>> {
        pg_try_lock(self, name)
    }
}
