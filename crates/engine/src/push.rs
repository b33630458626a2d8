//! A push of the directory to a SCIM target (`[[target]]`): the accounts the target is
//! sent, compared by hash with what it holds ([`rostersync_core::push`]), guarded like a
//! sync (a push that would deactivate, create or change too much is held for approval),
//! then sent ([`idp::scim_target`]) and recorded as a run of kind `push` of the target:
//! one item per account it touched, and the push state, batch by batch, so a push that
//! stops half-way (the target down, the process killed) keeps what it sent and the next
//! push sends the rest. A dry run reads the target (the lookups that find users it
//! already has) and lists the writes it would send.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use idp::scim_target::{ScimTarget, TargetError};
use rostersync_core::directory::AccountId;
use rostersync_core::guard::{Trip, guard_push};
use rostersync_core::plan::{Adoption, Ambiguity, Counts, Outcome, PushFailure, Reason, SyncKind};
use rostersync_core::push::{
    Action, EXTERNAL_ID, Pushed, PushedGroup, Unpushable, changes, classify, correlation_keys,
    desired, group_external_id, group_operations, group_resource, operations, resource,
};
use rostersync_core::settings::{Config, Secret};
use rostersync_core::target::TargetConfig;
use rostersync_core::view::Decision;
use scim::Request;
use serde::Serialize;
use store::{NewRun, PushRecord, PushWrite, RunFinish, RunId, RunStatus, StoreError, Trigger};

use crate::{Context, EngineError, Progress, SourceLock, hold};

/// Accounts sent per recorded batch.
const BATCH: usize = 500;
/// Requests in flight at once.
const IN_FLIGHT: usize = 4;
/// Accounts read from the directory per page.
const PAGE: u32 = 10_000;

/// What the caller asks for.
#[derive(Debug, Clone)]
pub struct PushRequest {
    pub target: String,
    pub dry_run: bool,
    pub trigger: Trigger,
}

/// What a push did: the `push --json` document.
#[derive(Debug, Clone, Serialize)]
pub struct PushOutcome {
    pub run_id: Option<RunId>,
    pub target: String,
    pub kind: SyncKind,
    pub dry_run: bool,
    pub status: RunStatus,
    /// Every change was sent (`false`: the target stopped answering; the rest go next push).
    pub complete: bool,
    pub counts: Counts,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// The safeguards the push tripped: it is held (a dry run says it would be).
    pub hold: Vec<Trip>,
    /// HTTP requests made to the target (every attempt counts).
    pub http_requests: u64,
    /// A dry run: the writes it would send, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<Request>,
}

impl PushOutcome {
    /// 0 succeeded cleanly; 1 held or finished with account errors; 2 failed.
    pub fn exit_code(&self) -> u8 {
        crate::exit_code(self.status, self.counts.errors)
    }
}

/// One account's planned push.
#[derive(Debug, Clone)]
struct Step {
    account: AccountId,
    action: Action,
    remote_id: Option<String>,
    want: Pushed,
    /// What the target was last sent (`None`: nothing, or a create).
    old: Option<Pushed>,
    /// The account left the target's selection.
    left: bool,
    /// An admin decided on its review case: a new user on the target, no lookup.
    force_new: bool,
}

/// The plan of a push: its steps, what it leaves out, and the guard's inputs.
struct PushPlan {
    steps: Vec<Step>,
    /// Accounts the selection names that cannot be pushed (no userName).
    unpushable: Vec<AccountId>,
    unchanged: u64,
    /// Accounts an admin decided are not pushed to this target.
    ignored: u64,
    /// Users the target holds active.
    active_held: u64,
}

/// Pushes the directory to a target: plan, guard, send, record. The run holds the
/// target's lock (a dry run none), `Busy` when another push of it runs.
pub fn push(
    ctx: &Context<'_>,
    req: &PushRequest,
    lock: Option<SourceLock>,
) -> Result<PushOutcome, EngineError> {
    let config = ctx.store.load_config()?;
    let target = find_target(&config, &req.target)?.clone();
    let _lock = if req.dry_run {
        None
    } else {
        Some(hold(ctx, &target.name, lock)?)
    };
    let client = client(ctx, &config, &target)?;
    let run = if req.dry_run {
        None
    } else {
        let run = ctx.store.start_run(&NewRun {
            source: target.name.clone(),
            kind: SyncKind::Push,
            trigger: req.trigger,
            started_at: ctx.clock.now(),
        })?;
        (ctx.progress)(Progress::Started { run });
        Some(run)
    };
    run_push(ctx, &target, &client, run, req.dry_run, None)
}

/// Approves a held push: the directory is planned again and sent with the safeguards
/// waived, unless the fresh plan does more than the held one showed (more deactivations,
/// creations or changes): then it is held again, for the admin to look at what it does
/// now. Called by [`crate::approve`] with the target's lock held.
pub(crate) fn approve_push(
    ctx: &Context<'_>,
    run: RunId,
    actor: &str,
) -> Result<PushOutcome, EngineError> {
    let held = ctx
        .store
        .held_push(run)?
        .ok_or_else(|| StoreError::Conflict(format!("run {run} has no held push")))?;
    let record = ctx
        .store
        .get_run(run)?
        .ok_or_else(|| StoreError::NotFound(format!("no run {run}")))?;
    let config = ctx.store.load_config()?;
    let target = find_target(&config, &record.source)?.clone();
    let client = client(ctx, &config, &target)?;
    ctx.store.reopen_held(run)?;
    let outcome = run_push(ctx, &target, &client, Some(run), false, Some(held))?;
    let detail = match (&outcome.status, &outcome.error) {
        (RunStatus::Held, _) => format!(
            "push run {run} to target {} approved, but it now does more than when it was held: held again",
            target.name
        ),
        (_, None) => format!("push run {run} to target {} approved and sent", target.name),
        (_, Some(e)) => format!("push run {run} to target {} approved; {e}", target.name),
    };
    ctx.store
        .audit(actor, "run.approve", &detail, ctx.clock.now())?;
    Ok(outcome)
}

fn find_target<'a>(config: &'a Config, name: &str) -> Result<&'a TargetConfig, EngineError> {
    config.target(name).ok_or_else(|| {
        let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
        EngineError::Config(if names.is_empty() {
            format!(
                "no target named '{name}': no targets are configured (add a [[target]] to the settings and rostersync config import FILE.toml)"
            )
        } else {
            format!(
                "no target named '{name}'; configured: {}",
                names.join(", ")
            )
        })
    })
}

/// The target's bearer token: from the environment variable it names, else the
/// encrypted copy in the store.
fn token(ctx: &Context<'_>, target: &TargetConfig) -> Result<Secret, EngineError> {
    let owner = format!("target {}", target.name);
    let stored = crate::secrets::Stored {
        owner: &owner,
        what: "token",
        env: target.token_env.as_deref(),
        env_setting: "token_env",
    };
    stored
        .read(ctx, ctx.store.target_secret(&target.name)?)?
        .ok_or_else(|| {
            EngineError::Config(format!(
                "{owner}: no token is stored: import the settings with token = \"…\" (rostersync config import FILE.toml) or name token_env"
            ))
        })
}

fn client(
    ctx: &Context<'_>,
    config: &Config,
    target: &TargetConfig,
) -> Result<ScimTarget, EngineError> {
    let token = token(ctx, target)?;
    let mut retry = idp::http::Retry::default();
    if let Some(a) = target.retry_attempts {
        retry.attempts = a;
    }
    ScimTarget::new(
        &target.url,
        token.expose(),
        crate::address_policy(&config.network),
        Duration::from_secs(60),
        retry,
    )
    .map_err(|e| EngineError::Config(format!("target {}: {e}", target.name)))
}

/// Plans the push from the directory and the push state.
fn plan(ctx: &Context<'_>, target: &TargetConfig) -> Result<PushPlan, EngineError> {
    let mut held = ctx.store.push_held(&target.name)?;
    let active_held = held.values().filter(|(h, _)| h.remote && h.active).count() as u64;
    let mut steps = Vec::new();
    let mut unpushable = Vec::new();
    let mut unchanged = 0;
    let mut after = None;
    loop {
        let page = ctx.store.list_users(&store::UserQuery {
            after,
            limit: PAGE,
            ..store::UserQuery::default()
        })?;
        let Some(last) = page.last() else { break };
        after = Some(last.user.id);
        for rec in &page {
            let id = rec.user.id;
            let h = held.remove(&id);
            let want = match desired(&rec.user, rec.sis.is_some(), target) {
                Some(Ok(p)) => Some(p),
                Some(Err(Unpushable::NoUserName)) => {
                    if h.is_none() {
                        unpushable.push(id);
                        continue;
                    }
                    None
                }
                None => None,
            };
            let Some(action) = classify(want.as_ref(), h.as_ref().map(|(h, _)| h)) else {
                continue;
            };
            if action == Action::Unchanged {
                unchanged += 1;
                continue;
            }
            let left = want.is_none();
            steps.push(Step {
                account: id,
                action,
                remote_id: h.and_then(|(_, r)| r),
                want: want.unwrap_or_default(),
                old: None,
                left,
                force_new: false,
            });
        }
        (ctx.progress)(Progress::Planning {
            people: steps.len() as u64,
            account_chunk: None,
        });
        if page.len() < PAGE as usize {
            break;
        }
    }
    // Accounts the target holds that the directory no longer lists (none are ever
    // removed; kept for safety): deactivated like those that left the selection.
    for (id, (h, remote)) in held {
        if h.remote && h.active {
            steps.push(Step {
                account: id,
                action: Action::Deactivate,
                remote_id: remote,
                want: Pushed::default(),
                old: None,
                left: true,
                force_new: false,
            });
        }
    }
    // What the target was last sent, for the steps that change a user it holds.
    let changing: Vec<AccountId> = steps
        .iter()
        .filter(|s| s.action != Action::Create)
        .map(|s| s.account)
        .collect();
    let mut old: HashMap<AccountId, Pushed> = HashMap::new();
    for chunk in changing.chunks(PAGE as usize) {
        old.extend(ctx.store.pushed(&target.name, chunk)?);
    }
    for s in &mut steps {
        if s.action == Action::Create {
            continue;
        }
        let before = old.remove(&s.account);
        if s.left {
            s.want = before.clone().unwrap_or_default().deactivated();
        }
        s.old = before;
    }
    // The admins' decisions on push cases (several users on the target matched): make a
    // new user without looking, or leave the account off this target.
    let decisions: HashMap<String, Decision> = ctx
        .store
        .review_decisions(&target.name)?
        .into_iter()
        .collect();
    let mut ignored = 0;
    if !decisions.is_empty() {
        steps.retain_mut(|s| {
            if s.action != Action::Create {
                return true;
            }
            match decisions.get(&s.account.to_string()) {
                Some(Decision::Ignore) => {
                    ignored += 1;
                    false
                }
                Some(Decision::Create) => {
                    s.force_new = true;
                    true
                }
                None => true,
            }
        });
    }
    steps.sort_by_key(|s| s.account);
    Ok(PushPlan {
        ignored,
        steps,
        unpushable,
        unchanged,
        active_held,
    })
}

/// Plans, guards, sends and records one push under `run` (`None`: a dry run).
/// `approved`: the counts an approved held push showed (its safeguards waived unless the
/// fresh plan does more).
fn run_push(
    ctx: &Context<'_>,
    target: &TargetConfig,
    client: &ScimTarget,
    run: Option<RunId>,
    dry_run: bool,
    approved: Option<Counts>,
) -> Result<PushOutcome, EngineError> {
    let mut outcome = PushOutcome {
        run_id: run,
        target: target.name.clone(),
        kind: SyncKind::Push,
        dry_run,
        status: RunStatus::Succeeded,
        complete: true,
        counts: Counts::default(),
        error: None,
        warnings: Vec::new(),
        hold: Vec::new(),
        http_requests: 0,
        requests: Vec::new(),
    };
    let plan = match plan(ctx, target) {
        Ok(p) => p,
        Err(e) => return fail(ctx, run, outcome, e.to_string()),
    };
    let count = |a: Action| plan.steps.iter().filter(|s| s.action == a).count() as u64;
    let (creations, updates, deactivations) = (
        count(Action::Create),
        count(Action::Update) + count(Action::Reactivate),
        count(Action::Deactivate),
    );
    outcome.counts.unchanged = plan.unchanged;
    outcome.counts.skipped = plan.unpushable.len() as u64 + plan.ignored;
    outcome.counts.seen = plan.unchanged + plan.steps.len() as u64 + outcome.counts.skipped;
    let mut trips = guard_push(
        deactivations,
        creations,
        updates,
        plan.active_held,
        &target.safeguards,
    );
    if let Some(held) = approved {
        let more = deactivations > held.deactivated
            || creations > held.created + held.linked
            || updates > held.updated + held.reactivated;
        if !more {
            trips.clear();
        }
    }
    let unpushable: Vec<PushRecord> = plan
        .unpushable
        .iter()
        .map(|&account| PushRecord {
            account,
            outcome: Outcome::Skipped,
            reason: Reason::PushNoUserName {
                target: target.name.clone(),
            },
            changes: Vec::new(),
            state: PushWrite::Keep,
        })
        .collect();
    if !trips.is_empty() {
        outcome.hold = trips;
        let mut c = outcome.counts;
        c.created = creations;
        c.updated = count(Action::Update);
        c.reactivated = count(Action::Reactivate);
        c.deactivated = deactivations;
        outcome.counts = c;
        let Some(run) = run else {
            outcome.status = RunStatus::Held;
            return Ok(outcome);
        };
        let mut records: Vec<PushRecord> = plan
            .steps
            .iter()
            .map(|s| planned_record(target, s))
            .collect();
        records.extend(unpushable);
        ctx.store
            .hold_push(run, &c, &outcome.hold, &records, ctx.clock.now())?;
        outcome.status = RunStatus::Held;
        return Ok(outcome);
    }
    if let Some(run) = run {
        if approved.is_some() {
            ctx.store.clear_run_items(run)?;
        }
        ctx.store
            .record_push(run, &target.name, &unpushable, ctx.clock.now())?;
    }
    (ctx.progress)(Progress::Applying {
        writes: plan.steps.len() as u64,
    });
    let mut stopped: Option<String> = None;
    let mut done = 0u64;
    for batch in plan.steps.chunks(BATCH) {
        let results: Vec<Sent> = ctx.runtime.block_on(
            futures_util::stream::iter(batch.iter().map(|s| send(client, target, s, dry_run)))
                .buffered(IN_FLIGHT)
                .collect(),
        );
        let mut records = Vec::with_capacity(results.len());
        for sent in results {
            tally(&mut outcome.counts, &sent.record);
            if dry_run {
                outcome.requests.extend(sent.writes);
            }
            if let Some(why) = sent.fatal {
                stopped.get_or_insert(why);
            }
            records.push(sent.record);
        }
        if let Some(run) = run {
            ctx.store
                .record_push(run, &target.name, &records, ctx.clock.now())?;
        }
        done += batch.len() as u64;
        (ctx.progress)(Progress::Applying { writes: done });
        if stopped.is_some() {
            break;
        }
    }
    if stopped.is_none()
        && !target.groups.is_empty()
        && let Err(why) = push_groups(ctx, target, client, run, dry_run, &mut outcome)
    {
        stopped = Some(why);
    }
    outcome.http_requests = client.requests();
    if let Some(why) = stopped {
        let left = plan.steps.len() as u64 - done;
        outcome.complete = false;
        outcome.status = RunStatus::Failed;
        let rest = if left == 0 {
            "some groups not sent".to_owned()
        } else {
            format!("{left} account(s) not sent")
        };
        outcome.error = Some(format!(
            "target {} stopped answering ({why}); {rest}: the next push sends them",
            target.name
        ));
    }
    if let Some(run) = run {
        ctx.store.finish_run(
            run,
            &RunFinish {
                status: outcome.status,
                complete: outcome.complete,
                counts: outcome.counts,
                error: outcome.error.clone(),
                finished_at: ctx.clock.now(),
                warnings: outcome.warnings.clone(),
            },
        )?;
    }
    Ok(outcome)
}

/// Records a push that failed before it sent anything.
fn fail(
    ctx: &Context<'_>,
    run: Option<RunId>,
    mut outcome: PushOutcome,
    message: String,
) -> Result<PushOutcome, EngineError> {
    let Some(run) = run else {
        return Err(EngineError::Config(message));
    };
    outcome.status = RunStatus::Failed;
    outcome.complete = false;
    outcome.error = Some(message);
    ctx.store.finish_run(
        run,
        &RunFinish {
            status: RunStatus::Failed,
            complete: false,
            counts: outcome.counts,
            error: outcome.error.clone(),
            finished_at: ctx.clock.now(),
            warnings: Vec::new(),
        },
    )?;
    Ok(outcome)
}

fn tally(c: &mut Counts, rec: &PushRecord) {
    match rec.outcome {
        Outcome::Created => c.created += 1,
        Outcome::Linked => c.linked += 1,
        Outcome::Updated => c.updated += 1,
        Outcome::Deactivated => c.deactivated += 1,
        Outcome::Reactivated => c.reactivated += 1,
        Outcome::Unchanged => c.unchanged += 1,
        Outcome::Skipped => c.skipped += 1,
        Outcome::Error => c.errors += 1,
    }
}

/// The outcome and reason a step has when it goes as planned.
fn planned(target: &TargetConfig, s: &Step) -> (Outcome, Reason) {
    let t = target.name.clone();
    match s.action {
        Action::Create => (Outcome::Created, Reason::PushedNew { target: t }),
        Action::Deactivate if s.left => (Outcome::Deactivated, Reason::PushLeft { target: t }),
        Action::Deactivate => (Outcome::Deactivated, Reason::PushChanged { target: t }),
        Action::Reactivate => (Outcome::Reactivated, Reason::PushChanged { target: t }),
        Action::Update | Action::Unchanged => (Outcome::Updated, Reason::PushChanged { target: t }),
    }
}

/// A held push's item: what it would do.
fn planned_record(target: &TargetConfig, s: &Step) -> PushRecord {
    let (outcome, reason) = planned(target, s);
    PushRecord {
        account: s.account,
        outcome,
        reason,
        changes: changes(s.old.as_ref(), &s.want),
        state: PushWrite::Keep,
    }
}

/// What sending one step did.
struct Sent {
    record: PushRecord,
    /// The writes sent (a dry run: would send).
    writes: Vec<Request>,
    /// The target stopped answering: the push stops after this batch.
    fatal: Option<String>,
}

/// Sends one account's step: finds a user the target already has before creating one,
/// then the write. A dry run makes the lookups and lists the write.
async fn send(client: &ScimTarget, target: &TargetConfig, s: &Step, dry_run: bool) -> Sent {
    let (mut outcome, mut reason) = planned(target, s);
    let record = |outcome, reason, state| PushRecord {
        account: s.account,
        outcome,
        reason,
        changes: changes(s.old.as_ref(), &s.want),
        state,
    };
    let failed = |e: TargetError| {
        let fatal = matches!(e, TargetError::Unreachable(_)).then(|| e.to_string());
        (
            Reason::PushFailed(Box::new(PushFailure {
                target: target.name.clone(),
                detail: e.to_string(),
            })),
            fatal,
            e.to_string(),
        )
    };
    // The request to send, and the user's id on the target when it is known already.
    let (request, mut remote) = match (s.action, &s.remote_id) {
        (Action::Create, _) if s.force_new => (Request::create(resource(&s.want, target)), None),
        (Action::Create, _) => match find(client, s).await {
            Ok(Found::Nobody) => (Request::create(resource(&s.want, target)), None),
            Ok(Found::One { id, by, key }) => {
                outcome = Outcome::Linked;
                reason = Reason::PushAdopted(Box::new(Adoption {
                    target: target.name.clone(),
                    by,
                    key,
                }));
                (
                    Request::patch(&id, operations(None, &s.want, target).into()),
                    Some(id),
                )
            }
            Ok(Found::Several { by, key, ids }) => {
                return Sent {
                    record: record(
                        Outcome::Skipped,
                        Reason::PushAmbiguous(Box::new(Ambiguity {
                            target: target.name.clone(),
                            by,
                            key,
                            remote_ids: ids,
                        })),
                        PushWrite::Keep,
                    ),
                    writes: Vec::new(),
                    fatal: None,
                };
            }
            Err(e) => {
                let (reason, fatal, error) = failed(e);
                return Sent {
                    record: record(Outcome::Error, reason, PushWrite::Failed { error }),
                    writes: Vec::new(),
                    fatal,
                };
            }
        },
        (Action::Deactivate, Some(id)) if target.delete => (Request::delete(id), Some(id.clone())),
        (_, Some(id)) => (
            Request::patch(id, operations(s.old.as_ref(), &s.want, target).into()),
            Some(id.clone()),
        ),
        (_, None) => {
            // Unreachable by the plan (only a user the target holds is changed).
            return Sent {
                record: record(Outcome::Unchanged, reason, PushWrite::Keep),
                writes: Vec::new(),
                fatal: None,
            };
        }
    };
    if dry_run {
        return Sent {
            record: record(outcome, reason, PushWrite::Keep),
            writes: vec![request],
            fatal: None,
        };
    }
    let mut answer = client.write(&request).await;
    if s.action == Action::Create
        && matches!(&answer, Err(TargetError::Refused(r)) if r.status == 409)
    {
        // The target has the user after all (created by a retried POST whose first
        // answer was lost, or by someone meanwhile): found again and adopted.
        if let Ok(Found::One { id, by, key }) = find(client, s).await {
            outcome = Outcome::Linked;
            reason = Reason::PushAdopted(Box::new(Adoption {
                target: target.name.clone(),
                by,
                key,
            }));
            remote = Some(id.clone());
            let adopt = Request::patch(&id, operations(None, &s.want, target).into());
            answer = client.write(&adopt).await;
        }
    }
    match answer {
        Ok(answer) => {
            if let Some(user) = answer {
                remote.get_or_insert(user.id);
            }
            let state = match (&request.method, remote) {
                (scim::Method::Delete, _) => PushWrite::Forgotten,
                (_, Some(remote_id)) => PushWrite::Sent {
                    remote_id,
                    pushed: s.want.clone(),
                },
                (_, None) => PushWrite::Failed {
                    error: "the target created the user but answered without its id".into(),
                },
            };
            Sent {
                record: record(outcome, reason, state),
                writes: vec![request],
                fatal: None,
            }
        }
        Err(TargetError::Refused(r)) if r.status == 404 && s.action != Action::Create => {
            // The target lost the user (deleted there): forgotten, created again next push.
            Sent {
                record: record(
                    Outcome::Error,
                    Reason::PushFailed(Box::new(PushFailure {
                        target: target.name.clone(),
                        detail: "the target no longer has this user: it is created again next push"
                            .into(),
                    })),
                    PushWrite::Forgotten,
                ),
                writes: vec![request],
                fatal: None,
            }
        }
        Err(e) => {
            let (reason, fatal, error) = failed(e);
            Sent {
                record: record(Outcome::Error, reason, PushWrite::Failed { error }),
                writes: vec![request],
                fatal,
            }
        }
    }
}

/// Who the target already has for a user about to be created.
enum Found {
    Nobody,
    One {
        id: String,
        by: String,
        key: String,
    },
    Several {
        by: String,
        key: String,
        ids: Vec<String>,
    },
}

/// Looks the user up on the target by `externalId`, `userName`, then email. A user whose
/// `externalId` names another account is not this one.
async fn find(client: &ScimTarget, s: &Step) -> Result<Found, TargetError> {
    let ours = s.account.to_string();
    for (attribute, key) in correlation_keys(&s.want) {
        let users = client.find(&Request::find_eq(attribute, key)).await?;
        let candidates: Vec<String> = users
            .into_iter()
            .filter(|u| {
                u.resource
                    .get("externalId")
                    .and_then(|v| v.as_str())
                    .is_none_or(|e| e.is_empty() || e == ours)
            })
            .map(|u| u.id)
            .collect();
        match candidates.len() {
            0 => continue,
            1 => {
                return Ok(Found::One {
                    id: candidates.into_iter().next().unwrap_or_default(),
                    by: attribute.to_owned(),
                    key: key.to_owned(),
                });
            }
            _ => {
                return Ok(Found::Several {
                    by: attribute.to_owned(),
                    key: key.to_owned(),
                    ids: candidates,
                });
            }
        }
    }
    Ok(Found::Nobody)
}

/// One follow-up push: the target's name and what its push did.
pub type FollowerPush = (String, Result<PushOutcome, EngineError>);

/// The pushes that follow a successful sync of `source`: one per target whose `follows`
/// names it, in the settings' order, each under its target's lock (a target another
/// push holds answers `Busy`, and is pushed after the next sync).
pub fn push_followers(
    ctx: &Context<'_>,
    source: &str,
    trigger: Trigger,
) -> Result<Vec<FollowerPush>, EngineError> {
    let config = ctx.store.load_config()?;
    Ok(config
        .targets
        .iter()
        .filter(|t| t.follows.iter().any(|f| f == source))
        .map(|t| {
            let req = PushRequest {
                target: t.name.clone(),
                dry_run: false,
                trigger,
            };
            (t.name.clone(), push(ctx, &req, None))
        })
        .collect())
}

/// The groups phase of a push (after its users, so new members have the target's ids):
/// each group of the target's `groups` kinds, its members the users the target holds
/// active, compared by hash with what it was last sent; created (found first by
/// `externalId`, then `displayName`), patched (name, members added and removed), or
/// deleted when gone here. A group with no member the target holds is not created.
/// `Err`: the target stopped answering (the push stops there).
fn push_groups(
    ctx: &Context<'_>,
    target: &TargetConfig,
    client: &ScimTarget,
    run: Option<RunId>,
    dry_run: bool,
    outcome: &mut PushOutcome,
) -> Result<(), String> {
    let store_err = |e: StoreError| e.to_string();
    let kinds: Vec<&str> = target.groups.iter().map(|k| k.as_str()).collect();
    let groups = ctx.store.target_groups(&kinds).map_err(store_err)?;
    let users = ctx.store.push_held(&target.name).map_err(store_err)?;
    let mut held = ctx.store.held_groups(&target.name).map_err(store_err)?;
    let t = || target.name.clone();
    let mut records = Vec::new();
    let mut fatal = None;
    let mut work: Vec<(i64, Option<PushedGroup>, Option<store::HeldGroup>)> = Vec::new();
    for g in groups {
        let members = g
            .members
            .iter()
            .filter_map(|a| users.get(a))
            .filter(|(h, _)| h.remote && h.active)
            .filter_map(|(_, r)| r.clone())
            .collect();
        let want = PushedGroup {
            name: g.name,
            members,
        };
        let prev = held.remove(&g.id);
        match &prev {
            None if want.members.is_empty() => continue,
            Some(h) if h.remote_id.is_some() && h.hash == want.hash() => continue,
            _ => work.push((g.id, Some(want), prev)),
        }
    }
    work.extend(
        held.into_iter()
            .filter(|(_, h)| h.remote_id.is_some())
            .map(|(id, h)| (id, None, Some(h))),
    );
    work.sort_by_key(|w| w.0);
    for (id, want, prev) in work {
        if fatal.is_some() {
            break;
        }
        let external = group_external_id(id);
        let remote = prev.as_ref().and_then(|h| h.remote_id.clone());
        let (request, outcome_kind, reason, remote) = match (&want, remote) {
            (None, Some(r)) => (
                Request::delete_group(&r),
                Outcome::Deactivated,
                Reason::PushGroupGone { target: t() },
                Some(r),
            ),
            (None, None) => continue,
            (Some(w), Some(r)) => (
                Request::patch_group(
                    &r,
                    group_operations(prev.as_ref().map(|h| &h.pushed), w, &external).into(),
                ),
                Outcome::Updated,
                Reason::PushChanged { target: t() },
                Some(r),
            ),
            (Some(w), None) => {
                let found = ctx.runtime.block_on(find_group(client, &external, &w.name));
                match found {
                    Ok(Some((r, by, key))) => (
                        Request::patch_group(&r, group_operations(None, w, &external).into()),
                        Outcome::Linked,
                        Reason::PushAdopted(Box::new(Adoption {
                            target: t(),
                            by,
                            key,
                        })),
                        Some(r),
                    ),
                    Ok(None) => (
                        Request::create_group(group_resource(w, &external)),
                        Outcome::Created,
                        Reason::PushedNew { target: t() },
                        None,
                    ),
                    Err(e) => {
                        records.push(group_failed(id, &t(), &e, &mut fatal));
                        continue;
                    }
                }
            }
        };
        if dry_run {
            outcome.requests.push(request);
            continue;
        }
        let state = match ctx.runtime.block_on(client.write(&request)) {
            Ok(answer) => {
                outcome.counts.groups += 1;
                match (want, remote.or(answer.map(|u| u.id))) {
                    (None, _) => store::GroupWrite::Forgotten,
                    (Some(pushed), Some(remote_id)) => {
                        store::GroupWrite::Sent { remote_id, pushed }
                    }
                    (Some(_), None) => store::GroupWrite::Failed {
                        error: "the target created the group but answered without its id".into(),
                    },
                }
            }
            Err(e) => {
                outcome.counts.errors += 1;
                records.push(group_failed(id, &t(), &e, &mut fatal));
                continue;
            }
        };
        records.push(store::GroupRecord {
            group: id,
            outcome: outcome_kind,
            reason,
            state,
        });
    }
    if let Some(run) = run {
        ctx.store
            .record_push_groups(run, &target.name, &records, ctx.clock.now())
            .map_err(store_err)?;
    }
    fatal.map_or(Ok(()), Err)
}

/// A group's failed request, recorded to be tried again next push; `fatal` set when the
/// target stopped answering.
fn group_failed(
    group: i64,
    target: &str,
    e: &TargetError,
    fatal: &mut Option<String>,
) -> store::GroupRecord {
    if matches!(e, TargetError::Unreachable(_)) {
        *fatal = Some(e.to_string());
    }
    store::GroupRecord {
        group,
        outcome: Outcome::Error,
        reason: Reason::PushFailed(Box::new(PushFailure {
            target: target.to_owned(),
            detail: e.to_string(),
        })),
        state: store::GroupWrite::Failed {
            error: e.to_string(),
        },
    }
}

/// A group the target already has for the group `external`: by `externalId`, then by
/// `displayName` (only one); its id and how it was found.
async fn find_group(
    client: &ScimTarget,
    external: &str,
    name: &str,
) -> Result<Option<(String, String, String)>, TargetError> {
    for (attribute, key) in [(EXTERNAL_ID, external), ("displayName", name)] {
        let found = client.find(&Request::find_group_eq(attribute, key)).await?;
        if let [one] = found.as_slice() {
            return Ok(Some((one.id.clone(), attribute.to_owned(), key.to_owned())));
        }
        if found.len() > 1 {
            break;
        }
    }
    Ok(None)
}
