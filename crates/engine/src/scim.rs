//! One write an identity provider pushed to a SCIM connection (`/scim/v2`): the identity
//! as the provider now has it, or its removal, planned by the account planner
//! ([`rostersync_core::accounts`]) as a changes-only read of that one identity, then
//! applied and recorded as a run of kind `scim` of the connection, holding its lock. So a
//! pushed account gets the correlation, field rules with provenance, review cases,
//! history and undo of every run.

use rostersync_core::accounts::{AccountsInput, Identity, account_view_keys, plan_accounts};
use rostersync_core::directory::AccountId;
use rostersync_core::guard::scim_burst;
use rostersync_core::plan::{PlanItem, SyncKind};
use rostersync_core::settings::{SourceConfig, SourceKind};
use store::{RunStatus, Trigger};

use crate::{Apply, Context, EngineError, Planned, SourceLock, SyncOutcome, hold, run_for, settle};

/// What the provider asks of the directory.
#[derive(Debug, Clone)]
pub enum ScimChange {
    /// A `POST`: a new identity (`id`: the provider's `externalId`, else one the caller
    /// made up; it keys the connection's link to the account).
    Create(Identity),
    /// A `PUT` or `PATCH` of the account `account` (the resource's id): the identity whole,
    /// as it is after the change. An account the connection is not linked to yet (found by
    /// a `GET`) is linked to `identity.id` first; a linked one keeps its link's key unless
    /// `external_id` (the `externalId` the provider now sends) names another.
    Update {
        account: AccountId,
        identity: Identity,
        external_id: Option<String>,
    },
    /// A `DELETE` of the account: the identity is gone (the account is deactivated by the
    /// connection's `deactivate` rule, never removed).
    Remove { account: AccountId },
}

/// What one SCIM write did.
#[derive(Debug, Clone)]
pub struct ScimWrite {
    pub outcome: SyncOutcome,
    /// The account the identity is after the write (`None`: none was made or linked;
    /// `item` says why).
    pub account: Option<AccountId>,
    /// The plan's item for the identity (none when nothing was planned for it).
    pub item: Option<PlanItem>,
}

/// Applies one SCIM write of the connection `connection` (a source of kind `scim`).
pub fn scim_write(
    ctx: &Context<'_>,
    connection: &str,
    change: ScimChange,
    lock: Option<SourceLock>,
) -> Result<ScimWrite, EngineError> {
    let config = ctx.store.load_config()?;
    let source = config
        .source(connection)
        .filter(|s| s.kind == SourceKind::Scim)
        .ok_or_else(|| {
            EngineError::Config(format!(
                "no SCIM connection named '{connection}': a source of kind = \"scim\" with that name must be configured"
            ))
        })?
        .clone();
    let _lock = hold(ctx, connection, lock)?;
    // The account the provider addressed (a PUT, PATCH or DELETE names it).
    // Whether the write would deactivate (a held one is not held twice, below).
    let deactivating = match &change {
        ScimChange::Create(_) => false,
        ScimChange::Update { identity, .. } => identity.suspended,
        ScimChange::Remove { .. } => true,
    };
    let addressed = match &change {
        ScimChange::Create(_) => None,
        ScimChange::Update { account, .. } | ScimChange::Remove { account } => Some(*account),
    };
    let (identities, removed) = match change {
        ScimChange::Create(identity) => (vec![identity], Vec::new()),
        ScimChange::Update {
            account,
            mut identity,
            external_id,
        } => {
            match ctx.store.linked_person(connection, account)? {
                Some(id) => match external_id.filter(|e| !e.trim().is_empty() && *e != id) {
                    Some(new) => {
                        ctx.store
                            .rekey_link(connection, &id, &new)
                            .map_err(|e| match e {
                                store::StoreError::Conflict(m) => EngineError::Config(m),
                                e => EngineError::Store(e),
                            })?;
                        identity.id = new;
                    }
                    None => identity.id = id,
                },
                None => adopt(ctx, &source, account, &identity)?,
            }
            (vec![identity], Vec::new())
        }
        ScimChange::Remove { account } => {
            let id = ctx
                .store
                .linked_person(connection, account)?
                .ok_or_else(|| {
                    EngineError::Config(format!(
                        "account #{account} is not linked to the SCIM connection {connection}"
                    ))
                })?;
            (Vec::new(), vec![id])
        }
    };
    let wanted = identities
        .first()
        .map(|i| i.id.clone())
        .or_else(|| removed.first().cloned())
        .unwrap_or_default();
    // A write already held for this identity (the provider sends it again on its next
    // cycle): answered as that held run, not held twice.
    if deactivating && let Some(held) = held_for(ctx, connection, &wanted)? {
        return Ok(ScimWrite {
            account: addressed,
            ..held
        });
    }
    let run = run_for(ctx, &source, SyncKind::Scim, false, Trigger::Api, None)?;
    let mut item = None;
    let planned = (|| {
        let all: Vec<&Identity> = identities.iter().collect();
        let view = ctx
            .store
            .load_scoped_view(connection, &account_view_keys(&source, &all, &removed))?;
        let managed = crate::sis_managed(ctx, &config, &view)?;
        let provider = source.provider().unwrap_or_default();
        let plan = plan_accounts(
            &AccountsInput {
                config: &config,
                source: &source,
                provider: &provider,
                kind: SyncKind::Scim,
                complete: false,
                identities: &identities,
                removed: &removed,
                managed: &managed,
                now: ctx.clock.now(),
            },
            &view,
        );
        item = plan.items.iter().find(|i| i.sourced_id == wanted).cloned();
        // The safeguards see a burst, not one write: the deactivations of the last hour.
        let trips = match plan.counts.deactivated {
            0 => Vec::new(),
            more => {
                let recent = deactivated_since(ctx, connection, HOUR)?;
                scim_burst(recent, more, view.population().active, &source.safeguards)
                    .into_iter()
                    .collect()
            }
        };
        Ok(Planned {
            plan,
            trips,
            warnings: Vec::new(),
            apply: Apply::Whole,
        })
    })();
    let outcome = settle(ctx, &config, &source, SyncKind::Scim, None, run, planned)?;
    // The audit log says what each push did, beside the run that did it.
    let what = match (&item, outcome.status) {
        (_, RunStatus::Held) => "held for approval".to_owned(),
        (Some(i), _) => format!("{} ({})", i.outcome.as_str(), i.reason),
        (None, status) => status.as_str().to_owned(),
    };
    ctx.store.audit(
        &format!("scim:{connection}"),
        "scim.write",
        &format!(
            "identity {wanted}: {what}{}",
            outcome
                .run_id
                .map_or_else(String::new, |r| format!(", run {r}"))
        ),
        ctx.clock.now(),
    )?;
    // The account the item reached (a creation's id is known once applied); with no item
    // (nothing changed), the account addressed.
    let account = match (&item, outcome.run_id) {
        (Some(i), _) if i.user_id.is_some() => i.user_id,
        (Some(_), Some(run)) => ctx
            .store
            .run_items(run, None, 0, 0)?
            .into_iter()
            .find(|r| r.sourced_id == wanted)
            .and_then(|r| r.user_id),
        (None, _) => addressed,
        _ => None,
    };
    Ok(ScimWrite {
        outcome,
        account,
        item,
    })
}

/// The window a burst of deactivations is counted over, in seconds.
const HOUR: i64 = 3600;

/// The deactivations the connection's applied runs made in the last `seconds`.
fn deactivated_since(
    ctx: &Context<'_>,
    connection: &str,
    seconds: i64,
) -> Result<u64, EngineError> {
    let since = ctx.clock.now().as_second() - seconds;
    Ok(ctx
        .store
        .runs_of(Some(connection), Some(RunStatus::Succeeded), 1000)?
        .iter()
        .take_while(|r| r.started_at.as_second() >= since)
        .map(|r| r.counts.deactivated)
        .sum())
}

/// The connection's held run that holds a deactivation of identity `id`, as a write's
/// answer.
fn held_for(
    ctx: &Context<'_>,
    connection: &str,
    id: &str,
) -> Result<Option<ScimWrite>, EngineError> {
    for run in ctx
        .store
        .runs_of(Some(connection), Some(RunStatus::Held), 0)?
    {
        let Some((plan, trips)) = ctx.store.held_plan(run.id)? else {
            continue;
        };
        if let Some(item) = plan.items.iter().find(|i| {
            i.sourced_id == id && i.outcome == rostersync_core::plan::Outcome::Deactivated
        }) {
            return Ok(Some(ScimWrite {
                outcome: SyncOutcome {
                    run_id: Some(run.id),
                    source: connection.to_owned(),
                    kind: SyncKind::Scim,
                    dry_run: false,
                    status: RunStatus::Held,
                    complete: false,
                    counts: plan.counts,
                    error: None,
                    warnings: run.warnings.clone(),
                    hold: trips,
                },
                account: item.user_id,
                item: Some(item.clone()),
            }));
        }
    }
    Ok(None)
}

/// Links `account` to the identity the provider addressed it as: a provider that found
/// the account with a `GET` (the SIS made it) and writes to it adopts it.
fn adopt(
    ctx: &Context<'_>,
    source: &SourceConfig,
    account: AccountId,
    identity: &Identity,
) -> Result<(), EngineError> {
    if let Some(other) = ctx.store.linked_account(&source.name, &identity.id)?
        && other != account
    {
        return Err(EngineError::Config(format!(
            "the identity {} of SCIM connection {} is account #{other}'s, not #{account}'s",
            identity.id, source.name
        )));
    }
    ctx.store.link_user(
        &source.name,
        &identity.id,
        account,
        &format!("scim:{}", source.name),
        ctx.clock.now(),
    )?;
    Ok(())
}
