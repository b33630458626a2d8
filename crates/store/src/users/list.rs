//! `users list`: the filters, the sorts and the keyset paging over the `users` table, the
//! count of what the filters match, and the stored keys (`grade_key`, `homeroom_lc`) the
//! grade and homeroom filters and sorts go through.

use rostersync_core::user_list::{self, SortColumn};

use super::lookup::records;
use super::row::{USER_SELECT, user_from_row};
use crate::sql::{Rows, Tx, Value, contains_pattern, query_i64, query_opt, query_vec};
use crate::{Result, UserQuery, UserRecord};

/// The version of the list keys' rule (`grade_key`, `homeroom_lc`): a change to
/// `user_list::grade_key` or `text_key` bumps it, and the next open recomputes the keys.
const LIST_KEYS_VERSION: &str = "1";
const LIST_KEYS_META: &str = "user_list_keys";

/// Fills `grade_key` and `homeroom_lc` of every account with a grade or homeroom when
/// the stored keys were made by another version of the rule (or none: right after
/// migration 7). One pass over the accounts, once.
pub(crate) fn refresh_list_keys(tx: &mut dyn Tx) -> Result<()> {
    if crate::settings::meta_get(tx, LIST_KEYS_META)?.as_deref() == Some(LIST_KEYS_VERSION) {
        return Ok(());
    }
    let mut rows = Rows::new("users", &["id", "grade_key", "homeroom_lc"]);
    tx.for_each(
        "SELECT id, grade, homeroom FROM users WHERE grade IS NOT NULL OR homeroom IS NOT NULL",
        &[],
        &mut |r| {
            let grade = r.opt_text(1)?.as_deref().and_then(user_list::grade_key);
            let homeroom = r.opt_text(2)?.as_deref().and_then(user_list::text_key);
            rows.push(vec![Value::Int(r.i64(0)?), grade.into(), homeroom.into()]);
            Ok(())
        },
    )?;
    if !rows.is_empty() {
        tracing::info!(
            accounts = rows.len(),
            "computing the users list's grade and homeroom keys"
        );
    }
    tx.update_rows(&rows)?;
    crate::settings::meta_set(tx, LIST_KEYS_META, LIST_KEYS_VERSION)
}

/// The SQL value a sort compares. PostgreSQL compares text bytewise, as SQLite does (the
/// `_lc` and key columns are `COLLATE "C"`), so both list in the same order.
fn sort_expr(column: SortColumn, dialect: crate::sql::Dialect) -> &'static str {
    let pg = dialect == crate::sql::Dialect::Postgres;
    match column {
        SortColumn::Id => "u.id",
        SortColumn::Name => "u.name_lc",
        SortColumn::Email => "u.email_lc",
        SortColumn::Username => "u.username_lc",
        SortColumn::Type if pg => "(u.user_type COLLATE \"C\")",
        SortColumn::Type => "u.user_type",
        SortColumn::Grade => "u.grade_key",
        SortColumn::Homeroom => "u.homeroom_lc",
        SortColumn::Location if pg => "(l.name COLLATE \"C\")",
        SortColumn::Location => "l.name",
        SortColumn::Status => "u.active",
    }
}

/// Appends the query's filters (` AND …`) to `sql`; `false` when nothing can match (no
/// location has that name). Grade and homeroom compare the stored keys with the keys of
/// what was asked, through their indexes; the location's name is matched in Rust over the
/// (small) locations table, then by id.
fn push_filters<'q>(
    tx: &mut dyn Tx,
    q: &'q UserQuery,
    sql: &mut String,
    params: &mut Vec<Value<'q>>,
) -> Result<bool> {
    if let Some(active) = q.active {
        sql.push_str(" AND u.active = ?");
        params.push(active.into());
    }
    if let Some(t) = q.user_type {
        sql.push_str(" AND u.user_type = ?");
        params.push(t.as_str().into());
    }
    match q.linked {
        // The Overview's "unlinked and active": the accounts the database keeps unlinked
        // (schema 15: active, not merged away — a merge deactivates — and linked by no
        // SIS source), read from their table instead of probing every account for a link.
        Some(false) if q.active == Some(true) => {
            sql.push_str(" AND u.id IN (SELECT user_id FROM unlinked_accounts)");
        }
        Some(true) => {
            sql.push_str(" AND ");
            sql.push_str(super::sis_linked());
        }
        Some(false) => {
            sql.push_str(" AND NOT ");
            sql.push_str(super::sis_linked());
        }
        None => {}
    }
    if let Some(grade) = q.grade.as_deref().and_then(user_list::grade_key) {
        sql.push_str(" AND u.grade_key = ?");
        params.push(grade.into());
    }
    if let Some(homeroom) = q.homeroom.as_deref().and_then(user_list::text_key) {
        sql.push_str(" AND u.homeroom_lc = ?");
        params.push(homeroom.into());
    }
    if let Some(wanted) = q.location.as_deref().and_then(user_list::text_key) {
        let ids: Vec<i64> = query_vec(tx, "SELECT id, name FROM locations", &[], |r| {
            Ok((r.i64(0)?, r.text(1)?))
        })?
        .into_iter()
        .filter(|(_, name)| user_list::text_key(name).as_deref() == Some(wanted.as_str()))
        .map(|(id, _)| id)
        .collect();
        if ids.is_empty() {
            return Ok(false);
        }
        sql.push_str(" AND u.location_id IN (");
        sql.push_str(&vec!["?"; ids.len()].join(", "));
        sql.push(')');
        params.extend(ids.into_iter().map(Value::Int));
    }
    if let Some(needle) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = contains_pattern(&needle.to_lowercase());
        // Old emails and usernames (aliases kept by renames and merges) find the account.
        sql.push_str(
            " AND (u.email_lc LIKE ? ESCAPE '\\' OR u.username_lc LIKE ? ESCAPE '\\' OR u.name_lc LIKE ? ESCAPE '\\' \
             OR u.id IN (SELECT a.user_id FROM aliases a WHERE a.value_lc LIKE ? ESCAPE '\\'))",
        );
        params.extend([
            pattern.clone().into(),
            pattern.clone().into(),
            pattern.clone().into(),
            pattern.into(),
        ]);
    }
    Ok(true)
}

/// `users list`: filtered, ordered by `q.sort` then id (in the same direction), paged by a
/// keyset cursor (`after`, `after_key`), so a page costs the same however deep it is.
///
/// The id order walks the primary key, each filter a condition on the walk (or an
/// index: grade and homeroom). A column sort reads the accounts with a value in the
/// column by `(value, id)` — through an index for name, email, username, grade and
/// homeroom; type, location and status sort every match — then those without one, by id.
pub(crate) fn list_users(tx: &mut dyn Tx, q: &UserQuery) -> Result<Vec<UserRecord>> {
    let mut filters = String::new();
    let mut filter_params: Vec<Value<'_>> = Vec::new();
    if !push_filters(tx, q, &mut filters, &mut filter_params)? {
        return Ok(Vec::new());
    }
    let dialect = tx.dialect();
    let sort = q.sort;
    let (after_op, dir) = if sort.descending {
        ("<", " DESC")
    } else {
        (">", "")
    };
    let page =
        |tx: &mut dyn Tx, condition: &str, extra: Vec<Value<'_>>, order: &str, limit: u32| {
            let mut sql = format!("{USER_SELECT} WHERE 1 = 1{filters}{condition} ORDER BY {order}");
            let mut params = filter_params.clone();
            params.extend(extra);
            sql.push_str(&dialect.limit_offset(limit, 0, &mut params));
            query_vec(tx, &sql, &params, user_from_row)
        };
    let users = if sort.column == SortColumn::Id {
        let (condition, extra) = match q.after {
            Some(id) => (format!(" AND u.id {after_op} ?"), vec![Value::from(id)]),
            None => (String::new(), Vec::new()),
        };
        page(tx, &condition, extra, &format!("u.id{dir}"), q.limit)?
    } else {
        let e = sort_expr(sort.column, dialect);
        let typed = |k: &str| -> Value<'static> {
            if sort.column == SortColumn::Status {
                Value::Bool(k == "true")
            } else {
                Value::Text(k.to_owned().into())
            }
        };
        // A cursor without a value in a column every account has a value in (type,
        // status): that account's value now.
        let mut after_key = q.after_key.clone();
        if let (Some(id), None, false) = (q.after, &after_key, sort.column.nullable()) {
            after_key = query_opt(
                tx,
                "SELECT u.user_type, u.active FROM users u WHERE u.id = ?",
                &[Value::from(id)],
                |r| {
                    Ok(match sort.column {
                        SortColumn::Status => r.bool(1)?.to_string(),
                        _ => r.text(0)?,
                    })
                },
            )?;
        }
        // Where the cursor stands: among the accounts with a value, or past them.
        let in_nulls = q.after.is_some() && after_key.is_none();
        let mut users = Vec::new();
        if !in_nulls {
            let mut condition = if sort.column.nullable() {
                format!(" AND {e} IS NOT NULL")
            } else {
                String::new()
            };
            let mut extra = Vec::new();
            if let (Some(id), Some(k)) = (q.after, after_key.as_deref()) {
                // `e >= k` alone is a range an index can serve; the rest breaks ties by id.
                let eq = if sort.descending { "<=" } else { ">=" };
                condition.push_str(&format!(
                    " AND {e} {eq} ? AND ({e} {after_op} ? OR u.id {after_op} ?)"
                ));
                extra.extend([typed(k), typed(k), Value::from(id)]);
            }
            users = page(
                tx,
                &condition,
                extra,
                &format!("{e}{dir}, u.id{dir}"),
                q.limit,
            )?;
        }
        let room = if q.limit == 0 {
            Some(0)
        } else {
            u32::try_from(users.len())
                .ok()
                .and_then(|n| q.limit.checked_sub(n))
                .filter(|left| *left > 0)
        };
        if sort.column.nullable()
            && let Some(limit) = room
        {
            let mut condition = format!(" AND {e} IS NULL");
            let mut extra = Vec::new();
            if in_nulls && let Some(id) = q.after {
                condition.push_str(&format!(" AND u.id {after_op} ?"));
                extra.push(Value::from(id));
            }
            users.extend(page(tx, &condition, extra, &format!("u.id{dir}"), limit)?);
        }
        users
    };
    records(tx, users)
}

/// How many accounts match the query's filters (its sort and cursor aside): one COUNT
/// over the same conditions as [`list_users`].
pub(crate) fn count_listed_users(tx: &mut dyn Tx, q: &UserQuery) -> Result<u64> {
    let mut filters = String::new();
    let mut params: Vec<Value<'_>> = Vec::new();
    if !push_filters(tx, q, &mut filters, &mut params)? {
        return Ok(0);
    }
    let n = query_i64(
        tx,
        &format!("SELECT COUNT(*) FROM users u WHERE 1 = 1{filters}"),
        &params,
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}
