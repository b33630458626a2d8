//! One account's page (its facts, SIS cards, where SCIM targets hold it, relations,
//! history and the search for the SIS person to link) and its actions: sync, link,
//! relink and unlink. The list of users is [`crate::user_list`].

use askama::Template;
use axum::Form;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use rostersync_core::directory::AccountId;
use rostersync_core::settings::Config;
use serde::Deserialize;
use store::{RunId, Trigger};

use super::{Flash, Nav, Page, back, fail, opt, render, ts};
use crate::api;
use crate::auth::Principal;
use crate::{ApiError, Shared, blocking, blocking_as};

pub struct CardView {
    pub source: String,
    pub facts: Vec<(&'static str, String)>,
    pub classes: Vec<(String, String, String)>,
    pub runs: Vec<(RunId, String, String, String)>,
}

/// Where one SCIM target holds the account.
pub struct PushStateView {
    pub target: String,
    /// The target's id for the user (empty: it never accepted it).
    pub remote_id: String,
    pub active: &'static str,
    pub pushed_at: String,
    /// Why the last push of the account failed (empty: it did not).
    pub error: String,
}

fn push_state_view(p: &store::PushStateRow) -> PushStateView {
    PushStateView {
        target: p.target.clone(),
        remote_id: p.remote_id.clone().unwrap_or_default(),
        active: match (&p.remote_id, p.active) {
            (None, _) => "not there",
            (Some(_), true) => "yes",
            (Some(_), false) => "no",
        },
        pushed_at: ts(p.pushed_at),
        error: p.error.clone().unwrap_or_default(),
    }
}

pub struct RevisionView {
    pub at: String,
    pub field: String,
    pub old: String,
    pub new: String,
    pub writer: String,
    pub run: Option<RunId>,
}

/// A revision as the History table shows it: field, old → new. The account's creation
/// (stored as one record of its first values) becomes a row per field it was created
/// with, the first saying so.
fn revision_views(r: &store::RevisionRecord) -> Vec<RevisionView> {
    let row = |field: String, old: String, new: String| RevisionView {
        at: ts(r.at),
        field,
        old,
        new,
        writer: r.writer.clone(),
        run: r.run,
    };
    let first_values = (r.field == "created")
        .then_some(r.new.as_deref())
        .flatten()
        .and_then(|json| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json).ok()
        });
    let Some(values) = first_values else {
        return vec![row(r.field.clone(), opt(&r.old), opt(&r.new))];
    };
    let mut rows = vec![row(
        "(account created)".into(),
        String::new(),
        String::new(),
    )];
    rows.extend(values.into_iter().map(|(field, value)| {
        let shown = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        row(field, String::new(), shown)
    }));
    rows
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    nav: Nav,
    id: AccountId,
    merged_into: Option<AccountId>,
    facts: Vec<(&'static str, String)>,
    linked: bool,
    link_source: String,
    sources: Vec<String>,
    cards: Vec<CardView>,
    students: Vec<(AccountId, String)>,
    guardians: Vec<(AccountId, String)>,
    groups: Vec<String>,
    aliases: Vec<String>,
    revisions: Vec<RevisionView>,
    people: PeopleView,
    /// Where SCIM targets hold the account (none: no target was ever sent it).
    targets: Vec<PushStateView>,
}

pub async fn user(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AccountId>,
    Query(search): Query<PeopleQuery>,
    flash: Flash,
) -> Page {
    let (record, revisions, groups, aliases, g, cards, config, pushes) =
        blocking(&state, move |store| {
            let record = api::account(store, id)?;
            Ok((
                record,
                store.user_revisions(id)?,
                store.user_groups(id)?,
                store.user_aliases(id)?,
                store.guardianships(id)?,
                store.sis_card(id)?,
                store.load_config()?,
                store.push_states(id)?,
            ))
        })
        .await
        .map_err(fail)?;
    let u = &record.user;
    let facts = vec![
        ("Name", u.display_name()),
        ("Email", opt(&u.email)),
        ("Username", opt(&u.username)),
        ("Type", u.user_type.as_str().to_owned()),
        ("Access", u.access.as_str().to_owned()),
        ("Active", if u.active { "yes" } else { "no" }.to_owned()),
        ("Grade", opt(&u.grade)),
        ("Identifier", opt(&u.identifier)),
        ("Location", opt(&u.location)),
        ("Homeroom", opt(&u.homeroom)),
        ("Signs in with", opt(&u.provider)),
        (
            "SIS link",
            record
                .sis
                .as_ref()
                .map(|s| format!("{}: {}", s.source, s.sourced_id))
                .unwrap_or_else(|| "not linked".to_owned()),
        ),
        ("Created", ts(record.created_at)),
        ("Updated", ts(record.updated_at)),
    ];
    let title = format!("{} (#{id})", u.display_name());
    let link_source = record.sis.as_ref().map(|s| s.source.clone());
    let people = people_view(&state, &who, &config, link_source, search).await;
    Ok(render(&UserPage {
        nav: Nav::new(&who, title, "users", &flash),
        id,
        merged_into: u.merged_into,
        linked: record.sis.is_some(),
        link_source: record
            .sis
            .as_ref()
            .map(|s| s.source.clone())
            .unwrap_or_default(),
        sources: config.sources.iter().map(|s| s.name.clone()).collect(),
        cards: cards
            .iter()
            .map(|c| CardView {
                source: c.source.clone(),
                facts: if config
                    .source(&c.source)
                    .is_some_and(|s| s.kind.is_account_source())
                {
                    identity_facts(c)
                } else {
                    vec![
                        ("sourcedId", c.sourced_id.clone()),
                        ("Identifier", opt(&c.identifier)),
                        ("Role", opt(&c.role)),
                        ("Status", opt(&c.status)),
                        (
                            "Enabled",
                            c.enabled
                                .map(|e| if e { "yes" } else { "no" }.to_owned())
                                .unwrap_or_default(),
                        ),
                        ("Grade", opt(&c.grade)),
                        (
                            "School",
                            c.primary_org_name
                                .clone()
                                .or_else(|| c.primary_org.clone())
                                .unwrap_or_default(),
                        ),
                        ("Location", opt(&c.location)),
                        ("Homeroom", opt(&c.homeroom)),
                        (
                            "Linked",
                            format!("{} by {}", ts(c.linked_at), c.rule.as_str()),
                        ),
                        ("Missing from full pulls", c.misses.to_string()),
                        (
                            "Deactivated by this source",
                            c.deactivated_at.map(ts).unwrap_or_default(),
                        ),
                    ]
                },
                classes: c
                    .classes
                    .iter()
                    .map(|k| (k.title.clone(), opt(&k.course), k.teachers.join(", ")))
                    .collect(),
                runs: c
                    .runs
                    .iter()
                    .map(|r| {
                        (
                            r.run,
                            ts(r.at),
                            r.outcome.as_str().to_owned(),
                            r.reason.clone(),
                        )
                    })
                    .collect(),
            })
            .collect(),
        students: g.students.iter().map(|s| (s.id, s.name.clone())).collect(),
        guardians: g.guardians.iter().map(|s| (s.id, s.name.clone())).collect(),
        groups,
        aliases: aliases
            .iter()
            .map(|a| format!("{}: {}", a.kind, a.value))
            .collect(),
        revisions: revisions.iter().flat_map(revision_views).collect(),
        facts,
        people,
        targets: pushes.iter().map(push_state_view).collect(),
    }))
}

/// The user page's search for the SIS person to link (`?people=WORDS&people_source=NAME`).
#[derive(Debug, Default, Deserialize)]
pub struct PeopleQuery {
    pub people: Option<String>,
    pub people_source: Option<String>,
}

/// One SIS person the search found, with what to show beside its button.
pub struct PersonView {
    pub sourced_id: String,
    pub name: String,
    pub email: String,
    pub identifier: String,
    pub role: String,
    pub grade: String,
    pub school: String,
    pub status: String,
    pub linked_to: Option<AccountId>,
    /// The SIS is removing the person: no button.
    pub removed: bool,
}

/// The search box's state and what it found.
#[derive(Default)]
pub struct PeopleView {
    /// The words searched for (only ever shown in the box itself).
    pub query: String,
    /// The source searched: the account's linked source, else the one chosen.
    pub source: String,
    pub searched: bool,
    pub found: Vec<PersonView>,
    pub problem: String,
}

/// Runs the user page's people search, for writers.
async fn people_view(
    state: &Shared,
    who: &Principal,
    config: &Config,
    link_source: Option<String>,
    q: PeopleQuery,
) -> PeopleView {
    let query = q.people.unwrap_or_default().trim().to_owned();
    // Only a configured source is searched; text from the URL is never echoed.
    let chosen = q
        .people_source
        .filter(|s| config.source(s).is_some())
        .or(link_source)
        .or_else(|| config.sources.first().map(|s| s.name.clone()))
        .unwrap_or_default();
    let mut view = PeopleView {
        query: query.clone(),
        source: chosen.clone(),
        ..PeopleView::default()
    };
    if query.is_empty() || chosen.is_empty() || !who.role.can_write() {
        return view;
    }
    view.searched = true;
    match crate::people::search(state, chosen, query, 25).await {
        Ok(found) => {
            view.found = found
                .into_iter()
                .map(|p| PersonView {
                    name: format!("{} {}", p.given_name.trim(), p.family_name.trim())
                        .trim()
                        .to_owned(),
                    email: opt(&p.email),
                    identifier: opt(&p.identifier),
                    role: opt(&p.role),
                    grade: opt(&p.grade),
                    school: opt(&p.school),
                    removed: p.status == "tobedeleted",
                    status: if p.in_last_pull {
                        p.status
                    } else {
                        format!("{} (not in the last complete pull)", p.status)
                    },
                    linked_to: p.linked_user,
                    sourced_id: p.sourced_id,
                })
                .collect();
        }
        Err(e) => view.problem = e.message,
    }
    view
}

pub async fn user_sync(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AccountId>,
) -> Response {
    let result = async {
        let o = api::sync_user_audited(&state, &who, id, Trigger::Console).await?;
        let run = o.run_id.map(|r| format!(" (run {r})")).unwrap_or_default();
        // A failed sync is a problem banner, never a green one.
        match o.error {
            Some(e) => Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "sync_failed",
                format!("Sync User failed{run}: {e}"),
            )),
            None => Ok(format!("Synced from the SIS{run}: {}", o.status.as_str())),
        }
    }
    .await;
    back(&format!("/users/{id}"), result)
}

#[derive(Debug, Deserialize)]
pub struct LinkForm {
    pub source: Option<String>,
    pub sourced_id: Option<String>,
}

pub async fn user_unlink(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AccountId>,
    Form(f): Form<LinkForm>,
) -> Response {
    let source = f.source.filter(|s| !s.is_empty());
    let result = blocking_as(&state, &who, move |store, actor, now| {
        let removed = store.unlink_user(id, source.as_deref(), actor, now)?;
        Ok(format!(
            "link removed ({}); syncs will not link them again by themselves",
            removed
                .iter()
                .map(|(s, p)| format!("{s}: {p}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
    .await;
    back(&format!("/users/{id}"), result)
}

pub async fn user_relink(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AccountId>,
    Form(f): Form<LinkForm>,
) -> Response {
    let result = crate::people::checked_link(&state, who.actor(), id, f.source, f.sourced_id, true)
        .await
        .map(|l| {
            format!(
                "SIS user changed from {} to {} — {}",
                l.old.as_deref().unwrap_or("?"),
                l.person(),
                l.found.confirmation()
            )
        });
    back(&format!("/users/{id}"), result)
}

pub async fn user_link(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Path(id): Path<AccountId>,
    Form(f): Form<LinkForm>,
) -> Response {
    let result =
        crate::people::checked_link(&state, who.actor(), id, f.source, f.sourced_id, false)
            .await
            .map(|l| {
                format!(
                    "linked to {}: {} — {}; the next sync writes the account from it",
                    l.source,
                    l.person(),
                    l.found.confirmation()
                )
            });
    back(&format!("/users/{id}"), result)
}

/// The card of an account source's link: the sign-in identity as the provider last
/// showed it.
fn identity_facts(c: &store::SisCard) -> Vec<(&'static str, String)> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        ("Provider id", c.sourced_id.clone()),
        ("Sign-in name", opt(&c.username)),
        ("Status in the provider", opt(&c.status)),
        ("Org unit", opt(&c.primary_org)),
        ("School id", opt(&c.identifier)),
        (
            "Last sign-in",
            c.modified.map(ts).unwrap_or_else(|| "never".to_owned()),
        ),
        (
            "Linked",
            format!("{} by {}", ts(c.linked_at), c.rule.as_str()),
        ),
        ("Missing from complete reads", c.misses.to_string()),
        (
            "Deactivated by this source",
            c.deactivated_at.map(ts).unwrap_or_default(),
        ),
    ]
}
