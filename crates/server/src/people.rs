//! Links made by hand, checked against the SIS first, and the search of SIS people the
//! user page's *Change SIS user* and *Link* forms offer instead of a raw sourcedId box.
//!
//! A sourcedId the SIS does not have, or a person it is removing (`tobedeleted`), is
//! refused (`422`) before anything changes: linking an account to a made-up id used to
//! deactivate the account on the next full sync and leave the real person skipped. The
//! check is [`engine::find_sis_person`]; when the SIS cannot be asked it falls back to the
//! last complete pull, and the answer says which vouched for the person.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rostersync_core::directory::AccountId;
use serde::Deserialize;
use serde_json::{Value, json};
use store::KeptPerson;

use crate::{ApiError, Shared, api};

/// Most people a search answers with.
pub const MAX_RESULTS: u32 = 100;
/// People a search answers with when not told.
pub const DEFAULT_RESULTS: u32 = 20;

/// What a checked link did.
#[derive(Debug)]
pub struct Linked {
    pub source: String,
    pub sourced_id: String,
    /// The sourcedId a relink moved the account away from.
    pub old: Option<String>,
    pub found: engine::Found,
}

impl Linked {
    /// `usr-12 (Ava Smith, ava@…)`.
    pub fn person(&self) -> String {
        match &self.found.person {
            Some(p) => match &p.email {
                Some(e) => format!("{} ({}, {e})", self.sourced_id, p.name),
                None => format!("{} ({})", self.sourced_id, p.name),
            },
            None => self.sourced_id.clone(),
        }
    }

    /// The check as the API reports it.
    pub fn check_json(&self) -> Value {
        let by = match &self.found.confirmed_by {
            engine::FoundBy::Sis => "sis",
            engine::FoundBy::LastPull { .. } => "last_pull",
        };
        json!({
            "confirmed_by": by,
            "message": self.found.confirmation(),
            "person": self.found.person,
            "detail": self.found.confirmed_by,
        })
    }
}

/// Links account `id` to the SIS person `sourced_id` of `source` (the only source when
/// `None`) — or, with `relink`, moves its link there (*Change SIS user*) — once the SIS,
/// or its last complete pull when the SIS cannot be asked, confirms the person. `404`
/// for an unknown account or source, `422` when the person is not confirmed or is
/// `tobedeleted`, `409` for the store's conflicts (the person linked elsewhere).
pub async fn checked_link(
    state: &Shared,
    actor: String,
    id: AccountId,
    source: Option<String>,
    sourced_id: Option<String>,
    relink: bool,
) -> Result<Linked, ApiError> {
    let s = std::sync::Arc::clone(state);
    let now = state.now();
    tokio::task::spawn_blocking(move || {
        let store = s.store.as_ref();
        let config = store.load_config()?;
        let source = api::one_source(&config, source)?;
        api::account(store, id)?;
        let sourced_id = sourced_id
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad_request("give the SIS person's sourcedId"))?;
        let quiet = |_| {};
        let ctx = s.context(&quiet);
        let found = engine::find_sis_person(&ctx, &source, &sourced_id).map_err(|e| match e {
            engine::EngineError::Store(e) => ApiError::from(e),
            e => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "sis_person_not_found",
                e.to_string(),
            ),
        })?;
        if let Some(why) = found.refusal() {
            let code = if found.person.is_some() {
                "sis_person_tobedeleted"
            } else {
                "sis_person_not_found"
            };
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, why));
        }
        let old = if relink {
            Some(store.relink_user(id, &source, &found.sourced_id, &actor, now)?)
        } else {
            store.link_user(&source, &found.sourced_id, id, &actor, now)?;
            None
        };
        Ok(Linked {
            source,
            sourced_id: found.sourced_id.clone(),
            old,
            found,
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("a background task failed: {e}")))?
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    pub q: Option<String>,
    pub limit: Option<u32>,
}

/// The SIS people of `source` a search finds, from what its syncs recorded.
pub async fn search(
    state: &Shared,
    source: String,
    query: String,
    limit: u32,
) -> Result<Vec<KeptPerson>, ApiError> {
    crate::blocking(state, move |store| {
        if store.load_config()?.source(&source).is_none() {
            return Err(ApiError::not_found(format!("no source named '{source}'")));
        }
        if query.trim().is_empty() {
            return Err(ApiError::bad_request(
                "give q: a name, email, username or school id to search for",
            ));
        }
        Ok(store.search_sis_people(&source, &query, limit.clamp(1, MAX_RESULTS))?)
    })
    .await
}

/// `GET /api/v1/sources/{source}/people?q=…&limit=N`: SIS people by name, email,
/// username, school id or sourcedId, as the source's syncs recorded them (the SIS is not
/// asked), with the last complete pull they come from.
pub async fn api_search(
    State(state): State<Shared>,
    Path(source): Path<String>,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_RESULTS);
    if !(1..=MAX_RESULTS).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_RESULTS}"
        )));
    }
    let items = search(&state, source.clone(), q.q.unwrap_or_default(), limit).await?;
    let name = source.clone();
    let last = crate::blocking(&state, move |store| Ok(store.last_complete_pull(&name)?)).await?;
    Ok(Json(json!({
        "source": source,
        "last_pull": last,
        "items": items,
    }))
    .into_response())
}
