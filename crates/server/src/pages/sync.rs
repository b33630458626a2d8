//! The Overview's handler and a sync's live progress: the htmx fragment that follows a
//! running sync, and the form that starts one.

use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use serde::Deserialize;
use store::{RunId, Trigger};

use super::{Flash, Page, back, fail, render};
use crate::api;
use crate::auth::Principal;
use crate::{ApiError, Shared, blocking};

pub struct ProgressView {
    pub source: String,
    pub kind: String,
    pub actor: String,
    pub finished: bool,
    pub status: String,
    pub counts: String,
    pub error: String,
    pub run_id: Option<RunId>,
    pub phase: String,
}

/// The Overview: [`crate::overview`].
pub async fn overview(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    flash: Flash,
) -> Page {
    crate::overview::page(&state, &who, &flash).await
}

#[derive(Template)]
#[template(path = "progress.html")]
struct ProgressFragment {
    run: ProgressView,
}

pub async fn progress(State(state): State<Shared>, Path(source): Path<String>) -> Page {
    let run = state.live.get(&source).ok_or_else(|| {
        fail(ApiError::not_found(format!(
            "this server has not started a sync of {source}"
        )))
    })?;
    // The stored run decides its status and counts (read after the live state).
    let live = vec![run.clone()];
    let records = blocking(&state, move |store| {
        crate::overview::live_records(store, &live)
    })
    .await
    .map_err(fail)?;
    let record = run.run_id.and_then(|id| records.get(&id));
    Ok(render(&ProgressFragment {
        run: crate::overview::progress_view(&run, record),
    }))
}

#[derive(Debug, Deserialize)]
pub struct SyncForm {
    pub source: String,
    pub kind: Option<String>,
}

pub async fn start_sync(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Form(f): Form<SyncForm>,
) -> Response {
    let result = async {
        let kind = api::parse_kind(f.kind.as_deref())?;
        let run = api::start_sync_audited(
            &state,
            &who,
            &f.source,
            kind,
            Trigger::Console,
            Duration::from_millis(200),
        )
        .await?;
        Ok(format!(
            "{} sync of {} started",
            run.kind.as_str(),
            run.source
        ))
    }
    .await;
    back("/", result)
}
