//! SCIM targets (`[[target]]`) in the server: what each holds and its last push, as
//! `GET /api/v1/targets` answers it and the Overview's Targets section shows it, and
//! *Push now* — `POST /api/v1/targets/{target}/push` and the console's button — which
//! runs [`crate::runner::push`]. A target's token is never in any answer: only whether
//! one is stored.

use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rostersync_core::target::TargetConfig;
use serde_json::{Value, json};
use store::{RunRecord, RunStatus, Store, TargetCounts, Trigger};

use crate::api::DryRunBody;
use crate::auth::Principal;
use crate::pages::back;
use crate::runner::{self, Pushed};
use crate::{ApiError, Shared, blocking};

/// How long the API and the console wait for a push before answering with its live
/// state (the push goes on).
const PUSH_WAIT: Duration = Duration::from_secs(10);

/// What the server knows of one target.
pub(crate) struct TargetFacts {
    pub config: TargetConfig,
    /// `stored` (encrypted in the store), `environment` (`token_env`) or `missing`.
    pub token: &'static str,
    pub counts: TargetCounts,
    /// Its newest push run, whatever its status.
    pub last: Option<RunRecord>,
    /// Its pushes held for approval, newest first.
    pub held: Vec<RunRecord>,
}

/// Every target of the settings, in their order.
pub(crate) fn load(store: &Store) -> Result<Vec<TargetFacts>, ApiError> {
    let config = store.load_config()?;
    let mut out = Vec::with_capacity(config.targets.len());
    for t in config.targets {
        let token = if t.token_env.is_some() {
            "environment"
        } else if store.target_secret(&t.name)?.is_some() {
            "stored"
        } else {
            "missing"
        };
        out.push(TargetFacts {
            token,
            counts: store.target_counts(&t.name)?,
            last: store.runs_of(Some(&t.name), None, 1)?.into_iter().next(),
            held: store.runs_of(Some(&t.name), Some(RunStatus::Held), 0)?,
            config: t,
        });
    }
    Ok(out)
}

/// The target's URL as shown: without any `user:password@`.
pub(crate) fn shown_url(url: &str) -> String {
    oneroster::net::redact_url(url)
}

/// The host (and port) of a URL, for a short mention.
pub(crate) fn host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_owned()
}

fn facts_json(f: &TargetFacts) -> Value {
    let t = &f.config;
    json!({
        "name": t.name,
        "kind": t.kind,
        "url": shown_url(&t.url),
        "token": f.token,
        "token_env": t.token_env,
        "follows": t.follows,
        "types": t.types,
        "counts": f.counts,
        "last_push": f.last,
        "held_runs": f.held.iter().map(|r| r.id).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/targets`.
pub async fn api_targets(State(state): State<Shared>) -> Result<Response, ApiError> {
    let list = blocking(&state, load).await?;
    Ok(Json(Value::Array(list.iter().map(facts_json).collect())).into_response())
}

/// `POST /api/v1/targets/{target}/push`: the push's outcome (`200`), or its live state
/// when it takes longer than [`PUSH_WAIT`] (`202`).
pub async fn api_push(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(target): Path<String>,
    body: Option<Json<DryRunBody>>,
) -> Result<Response, ApiError> {
    let dry_run = body.is_some_and(|b| b.0.dry_run);
    match runner::push(
        &state,
        &target,
        dry_run,
        Trigger::Api,
        &who.actor(),
        PUSH_WAIT,
    )
    .await?
    {
        Pushed::Done(o) => Ok(Json(json!(o)).into_response()),
        Pushed::Running(r) => Ok((StatusCode::ACCEPTED, Json(json!(r))).into_response()),
    }
}

/// What the console says of a push that came back: a message, or a problem (held,
/// failed, accounts refused).
fn push_message(o: &engine::PushOutcome) -> Result<String, ApiError> {
    let run = o
        .run_id
        .map_or_else(|| "no run".to_owned(), |r| format!("run {r}"));
    let c = &o.counts;
    let counts = format!(
        "created {}, adopted {}, updated {}, deactivated {}, reactivated {}, unchanged {}, errors {}",
        c.created, c.linked, c.updated, c.deactivated, c.reactivated, c.unchanged, c.errors
    );
    match o.status {
        RunStatus::Held => Err(ApiError::conflict(format!(
            "The push to {} is held for approval ({run}): {}. Nothing was sent: open {run} to approve or discard it.",
            o.target,
            o.hold
                .iter()
                .map(|t| t.detail.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ))),
        RunStatus::Succeeded if c.errors == 0 => {
            Ok(format!("Pushed to {} ({run}): {counts}", o.target))
        }
        RunStatus::Succeeded => Err(ApiError::conflict(format!(
            "Pushed to {} ({run}), but the target refused {} account(s): {counts}. They are tried again next push; {run} says why.",
            o.target, c.errors
        ))),
        _ => Err(ApiError::conflict(format!(
            "The push to {} failed ({run}): {}",
            o.target,
            o.error.as_deref().unwrap_or("see the run")
        ))),
    }
}

/// `POST /targets/{target}/push`: *Push now* on the Overview; back there with the result.
pub async fn console_push(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(target): Path<String>,
) -> Response {
    let result = match runner::push(
        &state,
        &target,
        false,
        Trigger::Console,
        &who.actor(),
        PUSH_WAIT,
    )
    .await
    {
        Ok(Pushed::Done(o)) => push_message(&o),
        Ok(Pushed::Running(r)) => Ok(format!(
            "The push to {target} is running{}: the Targets section shows it when it is done.",
            r.run_id
                .map(|id| format!(" (run {id})"))
                .unwrap_or_default()
        )),
        Err(e) => Err(e),
    };
    back("/#targets", result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_the_authority_without_credentials() {
        assert_eq!(host("https://desk.example/scim/v2"), "desk.example");
        assert_eq!(host("http://127.0.0.1:8080/scim?x=1"), "127.0.0.1:8080");
        assert_eq!(host("https://u:p@desk.example"), "desk.example");
        assert_eq!(
            shown_url("https://u:p@desk.example/scim"),
            "https://desk.example/scim"
        );
    }
}
