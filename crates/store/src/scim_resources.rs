//! SCIM connections' resources (`scim_resources`): per connection and identity (the
//! connection's link key), the User resource as the identity provider last wrote it, which
//! `/scim/v2` answers that connection with for the account the link reaches. The
//! resource is kept as JSON text; this module reads and writes it whole and knows nothing
//! of its attributes.
//!
//! A link's re-key moves its resource with it ([`rekey_scim_resource`], called by
//! `links::rekey_link` in the same transaction).

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::Value as Json;

use crate::sql::{Keys, Row, Tx, contains_pattern, ts};
use crate::{Result, StoreError};

fn read(r: &dyn Row, source: &str) -> Result<(String, Json)> {
    let sourced_id = r.text(0)?;
    let resource = serde_json::from_str(&r.text(1)?).map_err(|e| {
        StoreError::Corrupt(format!(
            "the stored SCIM resource of identity {sourced_id} of connection {source} is not JSON: {e}"
        ))
    })?;
    Ok((sourced_id, resource))
}

/// The resources of `source`'s identities `sourced_ids` (every identity's for `None`),
/// by identity; identities without one are left out.
pub(crate) fn scim_resources(
    tx: &mut dyn Tx,
    source: &str,
    sourced_ids: Option<&[String]>,
) -> Result<HashMap<String, Json>> {
    let mut out = HashMap::new();
    let mut keep = |r: &dyn Row| -> Result<()> {
        let (id, resource) = read(r, source)?;
        out.insert(id, resource);
        Ok(())
    };
    match sourced_ids {
        None => tx.for_each(
            "SELECT sourced_id, resource FROM scim_resources WHERE source = ?",
            &[source.into()],
            &mut keep,
        )?,
        Some([]) => {}
        Some(ids) => tx.for_each_in(
            "SELECT sourced_id, resource FROM scim_resources WHERE source = ? AND sourced_id {keys}",
            &[source.into()],
            Keys::Texts(ids),
            &mut keep,
        )?,
    }
    Ok(out)
}

/// The resources of `source` whose JSON text may hold `text` (ignoring ASCII case): a
/// superset for the caller to match exactly. Text JSON would escape (`"`, `\`, control
/// characters) or that is not ASCII reads every resource of the source.
pub(crate) fn scim_resources_mentioning(
    tx: &mut dyn Tx,
    source: &str,
    text: &str,
) -> Result<HashMap<String, Json>> {
    let plain = text
        .chars()
        .all(|c| c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\');
    if !plain {
        return scim_resources(tx, source, None);
    }
    let pattern = contains_pattern(&text.to_ascii_lowercase());
    let mut out = HashMap::new();
    tx.for_each(
        "SELECT sourced_id, resource FROM scim_resources WHERE source = ? AND LOWER(resource) LIKE ? ESCAPE '\\'",
        &[source.into(), pattern.as_str().into()],
        &mut |r| {
            let (id, resource) = read(r, source)?;
            out.insert(id, resource);
            Ok(())
        },
    )?;
    Ok(out)
}

/// Keeps `resource` as what `source`'s identity `sourced_id` last wrote, replacing the one
/// kept.
pub(crate) fn put_scim_resource(
    tx: &mut dyn Tx,
    source: &str,
    sourced_id: &str,
    resource: &Json,
    now: Timestamp,
) -> Result<()> {
    let text = resource.to_string();
    let at = ts(now);
    tx.execute(
        "INSERT INTO scim_resources (source, sourced_id, resource, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (source, sourced_id) DO UPDATE SET resource = excluded.resource, updated_at = excluded.updated_at",
        &[
            source.into(),
            sourced_id.into(),
            text.as_str().into(),
            at.as_str().into(),
        ],
    )?;
    Ok(())
}

/// Forgets the resource of `source`'s identity `sourced_id`; whether there was one.
pub(crate) fn remove_scim_resource(
    tx: &mut dyn Tx,
    source: &str,
    sourced_id: &str,
) -> Result<bool> {
    Ok(tx.execute(
        "DELETE FROM scim_resources WHERE source = ? AND sourced_id = ?",
        &[source.into(), sourced_id.into()],
    )? > 0)
}

/// Moves the resource of `source`'s identity `old` to `new` (a resource left under `new`
/// by an identity no link has any more goes).
pub(crate) fn rekey_scim_resource(
    tx: &mut dyn Tx,
    source: &str,
    old: &str,
    new: &str,
) -> Result<()> {
    remove_scim_resource(tx, source, new)?;
    tx.execute(
        "UPDATE scim_resources SET sourced_id = ? WHERE source = ? AND sourced_id = ?",
        &[new.into(), source.into(), old.into()],
    )?;
    Ok(())
}
