//! Saved views of the users list: a name and the list's filters and sort, kept for
//! everyone to open; saving and deleting are audited (`view.save`, `view.delete`).

use jiff::Timestamp;
use rostersync_core::user_list::{ListSpec, check_view_name};

use crate::sql::{Tx, query_opt, query_vec, ts};
use crate::{Result, SavedView, SavedViewId, StoreError};

impl SavedView {
    /// The view's filters and sort; `Corrupt` when the stored parameters do not read.
    pub fn spec(&self) -> Result<ListSpec> {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&self.params)
            .map_err(|e| {
                StoreError::Corrupt(format!("saved view '{}': parameters: {e}", self.name))
            })?;
        ListSpec::from_params(
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v))),
        )
        .map_err(|e| StoreError::Corrupt(format!("saved view '{}': {e}", self.name)))
    }
}

fn view_from_row(r: &dyn crate::sql::Row) -> Result<SavedView> {
    Ok(SavedView {
        id: SavedViewId(r.i64(0)?),
        name: r.text(1)?,
        params: r.text(2)?,
        saved_by: r.text(3)?,
        saved_at: r.ts(4)?,
    })
}

const SELECT: &str = "SELECT id, name, params, saved_by, saved_at FROM saved_views";

/// Every saved view, by name (case-insensitive).
pub(crate) fn saved_views(tx: &mut dyn Tx) -> Result<Vec<SavedView>> {
    query_vec(
        tx,
        &format!("{SELECT} ORDER BY name_lc, id"),
        &[],
        view_from_row,
    )
}

pub(crate) fn saved_view(tx: &mut dyn Tx, id: SavedViewId) -> Result<Option<SavedView>> {
    query_opt(
        tx,
        &format!("{SELECT} WHERE id = ?"),
        &[id.into()],
        view_from_row,
    )
}

/// Saves `spec` under `name`, replacing the view of that name (whatever its case).
/// Returns the view and whether it replaced one. `Conflict` for a name
/// `check_view_name` refuses.
pub(crate) fn save_view(
    tx: &mut dyn Tx,
    name: &str,
    spec: &ListSpec,
    actor: &str,
    now: Timestamp,
) -> Result<(SavedView, bool)> {
    let name = check_view_name(name).map_err(StoreError::Conflict)?;
    let name_lc = name.to_lowercase();
    let params = serde_json::Value::Object(
        spec.params()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
            .collect(),
    )
    .to_string();
    let at = ts(now);
    let replaced = query_opt(
        tx,
        "SELECT id FROM saved_views WHERE name_lc = ?",
        &[name_lc.as_str().into()],
        |r| r.i64(0),
    )?;
    // An upsert: two admins saving one new name at once both succeed, the last wins.
    tx.execute(
        "INSERT INTO saved_views (name, name_lc, params, saved_by, saved_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (name_lc) DO UPDATE SET name = excluded.name, params = excluded.params, \
         saved_by = excluded.saved_by, saved_at = excluded.saved_at",
        &[
            name.as_str().into(),
            name_lc.as_str().into(),
            params.as_str().into(),
            actor.into(),
            at.as_str().into(),
        ],
    )?;
    let view = query_opt(
        tx,
        &format!("{SELECT} WHERE name_lc = ?"),
        &[name_lc.as_str().into()],
        view_from_row,
    )?
    .ok_or_else(|| StoreError::database(format!("saved view '{name}' vanished as it was saved")))?;
    crate::settings::audit(
        tx,
        actor,
        "view.save",
        &format!(
            "'{name}'{}: {}",
            if replaced.is_some() {
                " (replaced)"
            } else {
                ""
            },
            spec.describe()
        ),
        now,
    )?;
    Ok((view, replaced.is_some()))
}

/// Deletes a view; returns its name. `NotFound` for an unknown id.
pub(crate) fn delete_view(
    tx: &mut dyn Tx,
    id: SavedViewId,
    actor: &str,
    now: Timestamp,
) -> Result<String> {
    let Some(view) = saved_view(tx, id)? else {
        return Err(StoreError::NotFound(format!(
            "no saved view #{id}: it may have been deleted already"
        )));
    };
    tx.execute("DELETE FROM saved_views WHERE id = ?", &[id.into()])?;
    crate::settings::audit(tx, actor, "view.delete", &format!("'{}'", view.name), now)?;
    Ok(view.name)
}
