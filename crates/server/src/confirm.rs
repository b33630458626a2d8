//! The console's confirmation pages: before a dangerous action (approve or discard a
//! held run, undo a run, remove a SIS link) the console shows what will happen — counts
//! and names — on a page of its own, with the one form that does it. A plain link leads
//! here, so it works without JavaScript; the POST routes themselves are unchanged (the
//! API and the CLI do not ask).

use askama::Template;
use axum::extract::{Extension, Path, State};
use rostersync_core::directory::AccountId;
use rostersync_core::plan::{Outcome, SyncKind};
use store::{ItemFilter, RunId, RunRecord, RunStatus};

use crate::auth::Principal;
use crate::pages::{Flash, Nav, Page, fail, render};
use crate::{ApiError, Shared, api, blocking, runner};

/// How many names a confirmation lists.
const NAMES: u32 = 10;

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    nav: Nav,
    lead: String,
    effects: Vec<String>,
    /// (name, account) of the first people it touches.
    people: Vec<(String, Option<AccountId>)>,
    more_people: u64,
    action: String,
    hidden: Vec<(String, String)>,
    verb: &'static str,
    button: String,
    danger: bool,
    cancel: String,
    /// Why it cannot be done (then no button is offered).
    blocked: Vec<String>,
}

impl ConfirmPage {
    /// A page asking to `verb` (the button's id is `confirm-VERB`), posting to `action`;
    /// Cancel goes back to `cancel`. Nothing else said yet.
    fn new(nav: Nav, verb: &'static str, action: String, cancel: String, button: String) -> Self {
        ConfirmPage {
            nav,
            lead: String::new(),
            effects: Vec::new(),
            people: Vec::new(),
            more_people: 0,
            action,
            hidden: Vec::new(),
            verb,
            button,
            danger: true,
            cancel,
            blocked: Vec::new(),
        }
    }
}

/// The refusal a viewer gets (confirmation pages are for those who may act).
fn refused(who: &Principal) -> Option<axum::response::Response> {
    (!who.role.can_write()).then(|| {
        fail(ApiError::forbidden(
            "viewers cannot change runs or links; ask an admin",
        ))
    })
}

/// Why a run that is not held cannot be `verb`-ed (nothing when it is held).
fn unless_held(run: &RunRecord, verb: &str) -> Vec<String> {
    if run.status == RunStatus::Held {
        return Vec::new();
    }
    vec![format!(
        "run {} is {}, not held: there is nothing to {verb}",
        run.id,
        run.status.as_str()
    )]
}

/// "1 account is …" / "3 accounts are …" for each count that is not zero, in order.
fn effect_lines<const N: usize>(counts: [(u64, &str, &str); N]) -> Vec<String> {
    counts
        .into_iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| {
            if n == 1 {
                format!("1 {one}")
            } else {
                format!("{n} {many}")
            }
        })
        .collect()
}

/// The first people of a run's items (of `outcome`, or all), named.
fn named(
    store: &store::Store,
    run: RunId,
    outcome: Option<Outcome>,
) -> Result<Vec<(String, Option<AccountId>)>, ApiError> {
    let filter = ItemFilter {
        outcome,
        reason_code: None,
    };
    Ok(store
        .run_item_page(run, &filter, NAMES, 0)?
        .into_iter()
        .map(|n| {
            let who = match &n.name {
                Some(name) => format!("{name} ({})", n.item.sourced_id),
                None => n.item.sourced_id.clone(),
            };
            (who, n.item.user_id)
        })
        .collect())
}

/// `GET /runs/{id}/approve`: what approving the held run applies.
pub async fn approve(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<RunId>,
    flash: Flash,
) -> Page {
    if let Some(r) = refused(&who) {
        return Err(r);
    }
    let (run, people) = blocking(&state, move |store| {
        let run = api::run_record(store, id)?;
        let people = named(store, id, Some(Outcome::Deactivated))?;
        Ok((run, people))
    })
    .await
    .map_err(fail)?;
    let c = run.counts;
    let blocked = unless_held(&run, "approve");
    let push = run.kind == SyncKind::Push;
    let effects = if push {
        effect_lines([
            (
                c.deactivated,
                "user is deactivated on the target",
                "users are deactivated on the target",
            ),
            (
                c.created,
                "user is created on the target (or adopted, when it has one already)",
                "users are created on the target (or adopted, when it has them already)",
            ),
            (
                c.updated,
                "user's attributes are updated on the target",
                "users' attributes are updated on the target",
            ),
            (
                c.reactivated,
                "user is reactivated on the target",
                "users are reactivated on the target",
            ),
        ])
    } else {
        effect_lines([
            (
                c.deactivated,
                "account is deactivated",
                "accounts are deactivated",
            ),
            (c.created, "account is created", "accounts are created"),
            (
                c.linked,
                "account is linked to its SIS person",
                "accounts are linked to their SIS people",
            ),
            (
                c.updated,
                "account's fields are updated",
                "accounts' fields are updated",
            ),
            (
                c.reactivated,
                "account is reactivated",
                "accounts are reactivated",
            ),
        ])
    };
    let trips = run
        .hold
        .iter()
        .map(|t| t.detail.clone())
        .collect::<Vec<_>>()
        .join("; ");
    let lead = if push {
        format!(
            "Run {id}, a push to the target {}, was held because {trips}. Approving plans the push again from the directory as it is now and sends it with the safeguards waived (held again if it would now do more than this):",
            run.source
        )
    } else {
        format!(
            "Run {id} of {} was held because {trips}. Approving applies its plan as it was made:",
            run.source
        )
    };
    Ok(render(&ConfirmPage {
        lead,
        more_people: c.deactivated.saturating_sub(people.len() as u64),
        people,
        effects,
        danger: c.deactivated > 0,
        blocked,
        ..ConfirmPage::new(
            Nav::new(&who, format!("Approve run {id}?"), "runs", &flash),
            "approve",
            format!("/runs/{id}/approve"),
            format!("/runs/{id}"),
            if push {
                format!("Approve and send run {id}")
            } else {
                format!("Approve and apply run {id}")
            },
        )
    }))
}

/// `GET /runs/{id}/discard`: what discarding a held run means.
pub async fn discard(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<RunId>,
    flash: Flash,
) -> Page {
    if let Some(r) = refused(&who) {
        return Err(r);
    }
    let run = blocking(&state, move |store| api::run_record(store, id))
        .await
        .map_err(fail)?;
    let blocked = unless_held(&run, "discard");
    let lead = if run.kind == SyncKind::Push {
        format!(
            "Discarding throws run {id}'s push away: nothing of it is ever sent. The next push to {} plans again from the directory as it then is (and is held again if it would still do as much).",
            run.source
        )
    } else {
        format!(
            "Discarding throws run {id}'s plan away: nothing of it is ever applied. The next sync of {} plans again from what the SIS then says (and is held again if the SIS still says the same).",
            run.source
        )
    };
    Ok(render(&ConfirmPage {
        lead,
        blocked,
        ..ConfirmPage::new(
            Nav::new(&who, format!("Discard run {id}?"), "runs", &flash),
            "discard",
            format!("/runs/{id}/discard"),
            format!("/runs/{id}"),
            format!("Discard run {id}"),
        )
    }))
}

/// `GET /runs/{id}/undo`: what undoing the run would put back (a dry run of the undo).
pub async fn undo(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<RunId>,
    flash: Flash,
) -> Page {
    if let Some(r) = refused(&who) {
        return Err(r);
    }
    let (effects, blocked) = match runner::undo(&state, id, &who.actor(), true).await {
        Ok(s) => {
            let effects = effect_lines([
                (
                    s.fields_restored,
                    "field goes back to its value before the run",
                    "fields go back to their values before the run",
                ),
                (
                    s.reactivated.len() as u64,
                    "account the run deactivated is active again",
                    "accounts the run deactivated are active again",
                ),
                (
                    s.deactivated.len() as u64,
                    "account the run reactivated is inactive again",
                    "accounts the run reactivated are inactive again",
                ),
                (
                    s.retired.len() as u64,
                    "account the run created is made inactive and unlinked (never deleted)",
                    "accounts the run created are made inactive and unlinked (never deleted)",
                ),
                (
                    s.links_removed.len() as u64,
                    "link the run made is removed",
                    "links the run made are removed",
                ),
                (
                    s.links_restored.len() as u64,
                    "link the run removed or changed is put back",
                    "links the run removed or changed are put back",
                ),
            ]);
            let blocked = if effects.is_empty() {
                vec![format!(
                    "run {id} changed nothing that an undo would put back"
                )]
            } else {
                Vec::new()
            };
            (effects, blocked)
        }
        Err(e) if !e.conflicts.is_empty() => (Vec::new(), e.conflicts),
        Err(e) => return Err(fail(e)),
    };
    let (people, total) = blocking(&state, move |store| {
        let total: u64 = store.run_item_counts(id)?.iter().map(|(_, _, n)| n).sum();
        Ok((named(store, id, None)?, total))
    })
    .await
    .map_err(fail)?;
    Ok(render(&ConfirmPage {
        lead: format!("Undoing run {id} puts back what it did:"),
        effects,
        more_people: total.saturating_sub(people.len() as u64),
        people,
        blocked,
        ..ConfirmPage::new(
            Nav::new(&who, format!("Undo run {id}?"), "runs", &flash),
            "undo",
            format!("/runs/{id}/undo"),
            format!("/runs/{id}"),
            format!("Undo run {id}"),
        )
    }))
}

/// `GET /users/{id}/unlink`: what removing the account's SIS link means.
pub async fn unlink(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AccountId>,
    flash: Flash,
) -> Page {
    if let Some(r) = refused(&who) {
        return Err(r);
    }
    let user = blocking(&state, move |store| api::account(store, id))
        .await
        .map_err(fail)?;
    let name = user.user.display_name();
    let mut blocked = Vec::new();
    let (lead, hidden) = match &user.sis {
        Some(link) => (
            format!(
                "Removing the SIS link of {name} (account #{id}) from {} person {}: the account stays as it is, active, with its fields; syncs stop updating it and will not link it again by themselves (link it again here when needed). The SIS person is then free to be linked to another account.",
                link.source, link.sourced_id
            ),
            vec![("source".to_owned(), link.source.clone())],
        ),
        None => {
            blocked.push(format!("{name} (account #{id}) has no SIS link"));
            (String::new(), Vec::new())
        }
    };
    Ok(render(&ConfirmPage {
        lead,
        hidden,
        blocked,
        ..ConfirmPage::new(
            Nav::new(
                &who,
                format!("Remove the SIS link of {name}?"),
                "users",
                &flash,
            ),
            "unlink",
            format!("/users/{id}/unlink"),
            format!("/users/{id}"),
            "Remove link".to_owned(),
        )
    }))
}
