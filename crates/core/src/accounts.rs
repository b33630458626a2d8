//! Planning an account source's run: the identities a Google Workspace or Entra ID read
//! found, matched to the directory's accounts, as a [`Plan`] of the same shape a SIS run
//! makes, so the safeguards, holding, applying, history and review cases are shared.
//!
//! The rules (docs/account-sources.md says them for admins):
//! - An identity is the account its link says (the provider's id, kept from an earlier
//!   run); else, in order, the account an old address reaches (alias), its email (the
//!   sign-in name, the mailbox and the provider's other addresses against the account's
//!   email), its username (the sign-in name), its school id (with `match_by_identifier`).
//!   Several accounts by one rule, or one account claimed by two identities, is a review
//!   case; an account this source links to another identity is not taken over.
//! - An identity that matches nothing gets a new account (type other, requestor), but for
//!   one whose address or sign-in name another account has, and a suspended one read from
//!   Google or Entra (a suspended one a SCIM connection pushes is made, inactive).
//! - Fields are written only where empty, or where this source wrote them (every field's
//!   `field_priority` defaults to `if-not-set` here): the SIS stays the authority. The
//!   account's sign-in provider becomes this source's when it had none but the sync's.
//!   Every address of the identity becomes a match key (alias) of the account.
//! - Suspended, gone from a complete read, or removed in a delta: by `deactivate`, the
//!   account is deactivated (`always`; `unmanaged` when no SIS source links it) or left as
//!   it is (`never`; `unmanaged` when a SIS source links it), the reason said either way.
//!   Active again: what this source deactivated comes back. Nothing is deleted.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

use crate::directory::{Access, Account, AccountId, AliasKind, Field, MatchKey, MatchRule};
use crate::plan::{
    Counts, Dispute, FieldChange, KeptActive, LinkWrite, NewAccount, Outcome, Plan, PlanItem,
    Reason, RecordFields, SisRecord, SyncKind, TakenInRun,
};
use crate::settings::{AccountDeactivation, Config, Priority, SourceConfig};
use crate::sis::Fnv;
use crate::view::{Decision, DirectoryView, HashedKeys, ViewKeys, ViewLink};
use crate::{directory::UserType, directory::Writer, planner::settings_fingerprint};

/// One account as its identity provider holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The provider's stable id.
    pub id: String,
    /// The sign-in name (Google's primary email, Entra's user principal name).
    pub login: String,
    /// The mailbox, when it has one.
    pub email: Option<String>,
    /// Other addresses that reach it, lower-cased.
    pub aliases: Vec<String>,
    pub given_name: Option<String>,
    pub middle_name: Option<String>,
    pub family_name: Option<String>,
    /// Suspended, archived or blocked from signing in.
    pub suspended: bool,
    /// A guest of the provider's tenant (Entra's `userType` `Guest`): someone from
    /// outside the district. Never linked, never given an account.
    pub guest: bool,
    /// Google's organisational unit (`/Students/North High`).
    pub org_unit: Option<String>,
    /// The school's id for the person.
    pub school_id: Option<String>,
    pub last_sign_in: Option<Timestamp>,
}

impl Identity {
    /// The usernames the sign-in name stands for, as match keys: itself, and its local
    /// part when its domain is the source's `append_domain` (`s100001@district.k12.us`
    /// is username `s100001` there).
    fn usernames(&self, source: &SourceConfig) -> Vec<MatchKey> {
        let login = MatchKey::new(&self.login);
        let mut out = vec![login.clone()];
        if let (Some(domain), Some((local, at))) = (
            source.user_mapping.append_domain.as_deref(),
            login.as_str().rsplit_once('@'),
        ) && at.eq_ignore_ascii_case(domain)
            && !local.is_empty()
        {
            out.push(MatchKey::new(local));
        }
        out
    }

    /// The email the account should have: the mailbox, else the sign-in name.
    fn directory_email(&self) -> MatchKey {
        MatchKey::new(self.email.as_deref().unwrap_or(&self.login))
    }

    /// Every address that reaches the identity, as match keys, each once.
    fn addresses(&self) -> Vec<MatchKey> {
        let mut all: Vec<MatchKey> = [Some(&self.login), self.email.as_ref()]
            .into_iter()
            .flatten()
            .chain(&self.aliases)
            .map(|a| MatchKey::new(a))
            .filter(|a| a.as_str().contains('@'))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    fn hash(&self, fingerprint: u64) -> u64 {
        let mut h = Fnv::new();
        h.u64(fingerprint);
        h.str(&self.id);
        h.str(&self.login);
        h.opt(self.email.as_deref());
        for a in &self.aliases {
            h.str(a);
        }
        h.u64(0xff);
        h.opt(self.given_name.as_deref());
        h.opt(self.middle_name.as_deref());
        h.opt(self.family_name.as_deref());
        h.bool(self.suspended);
        h.bool(self.guest);
        h.opt(self.org_unit.as_deref());
        h.opt(self.school_id.as_deref());
        h.finish()
    }

    fn record(&self, status: &str) -> SisRecord {
        SisRecord::new(RecordFields {
            sourced_id: self.id.clone(),
            role: None,
            status: status.to_owned(),
            enabled: !self.suspended,
            username: self.login.clone(),
            email: self.email.clone(),
            given_name: self.given_name.clone().unwrap_or_default(),
            family_name: self.family_name.clone().unwrap_or_default(),
            identifier: self.school_id.clone(),
            grade: None,
            primary_org: self.org_unit.clone(),
            location: None,
            homeroom: None,
            classes: None,
            modified: self.last_sign_in,
        })
    }
}

/// What an account source's plan is computed from.
pub struct AccountsInput<'a> {
    pub config: &'a Config,
    pub source: &'a SourceConfig,
    /// `google` or `microsoft`: the sign-in provider the accounts get.
    pub provider: &'a str,
    /// `Full` (every identity) or `Delta` (the changed ones, and `removed`).
    pub kind: SyncKind,
    /// Every page was read: only then may absence deactivate anyone.
    pub complete: bool,
    pub identities: &'a [Identity],
    /// Ids a delta read says were deleted in the provider.
    pub removed: &'a [String],
    /// Accounts a SIS source links (the SIS decides whether they are active).
    pub managed: &'a HashSet<AccountId>,
    pub now: Timestamp,
}

/// The keys of every account a plan of these identities may read or must find free:
/// their links, the accounts their addresses, sign-in names and school ids reach, and the
/// links of removed ids. A full read's view holds every link besides.
pub fn account_view_keys(
    source: &SourceConfig,
    identities: &[&Identity],
    removed: &[String],
) -> ViewKeys {
    let mut keys = ViewKeys::default();
    for i in identities {
        keys.sourced_ids.insert(i.id.clone());
        each_key(source, i, |key| match key {
            Key::Email(a) => {
                keys.emails.insert(a.clone());
                keys.aliases.insert((AliasKind::Email, a));
            }
            Key::Username(name) => {
                keys.usernames.insert(name.clone());
                keys.aliases.insert((AliasKind::Username, name));
            }
            Key::Identifier(id) => {
                keys.identifiers.insert(id.trim().to_owned());
            }
        });
    }
    keys.sourced_ids.extend(removed.iter().cloned());
    keys
}

/// One key an identity's account is looked up by.
enum Key<'i> {
    /// An address (also looked up among the aliases).
    Email(MatchKey),
    /// A sign-in name (also looked up among the aliases).
    Username(MatchKey),
    /// The school's id, with `match_by_identifier`.
    Identifier(&'i str),
}

/// Hands each key `i` is looked up by to `f`: what [`account_view_keys`] names and an
/// [`accounts_needed`] scan hashes.
fn each_key<'i>(source: &SourceConfig, i: &'i Identity, mut f: impl FnMut(Key<'i>)) {
    for a in i.addresses() {
        f(Key::Email(a));
    }
    for name in i.usernames(source) {
        f(Key::Username(name));
    }
    if let Some(id) = &i.school_id
        && source.user_mapping.match_by_identifier
    {
        f(Key::Identifier(id));
    }
}

/// The identities a full read's plan must see whole (a view of every link given): those
/// new, changed, or whose account changed since the last run; the rest are unchanged.
pub fn changed_identities<'a>(
    input: &'a AccountsInput<'a>,
    dir: &DirectoryView,
) -> Vec<&'a Identity> {
    let fingerprint = settings_fingerprint(input.config, input.source);
    input
        .identities
        .iter()
        .filter(|i| {
            !dir.link(&i.id)
                .is_some_and(|l| dir.link_unchanged(l, i.hash(fingerprint)))
        })
        .collect()
}

/// The accounts a full read's plan must hold beside a view of every link of the source
/// ([`DirectoryView::of_links`]): those its changed identities ([`changed_identities`])
/// reach ([`account_view_keys`]) and, after a complete read, the accounts of the links
/// whose identity it no longer has. Past one changed identity in
/// [`crate::planner::WIDE_SHARE`] of the directory's accounts (a first read of a
/// district's domain), every account is scanned and only those the same keys may reach
/// are kept ([`HashedKeys`]): the directory is never held whole.
pub fn accounts_needed(input: &AccountsInput<'_>, dir: &DirectoryView) -> ViewKeys {
    accounts_needed_up_to(input, dir, dir.account_count() / crate::planner::WIDE_SHARE)
}

/// [`accounts_needed`], scanning past `most` changed identities.
pub fn accounts_needed_up_to(
    input: &AccountsInput<'_>,
    dir: &DirectoryView,
    most: u64,
) -> ViewKeys {
    let changed = changed_identities(input, dir);
    let absent: Vec<&ViewLink> = if input.complete {
        let present: HashSet<&str> = input.identities.iter().map(|i| i.id.as_str()).collect();
        dir.links()
            .filter(|l| !present.contains(&*l.sourced_id))
            .collect()
    } else {
        Vec::new()
    };
    if changed.len() as u64 <= most {
        let mut keys = account_view_keys(input.source, &changed, &[]);
        keys.sourced_ids
            .extend(absent.iter().map(|l| l.sourced_id.to_string()));
        return keys;
    }
    // The same keys as `account_view_keys`, hashed: a link's account by its id.
    let mut scan = HashedKeys::default();
    for i in &changed {
        if let Some(link) = dir.link(&i.id) {
            scan.account(link.user_id);
        }
        each_key(input.source, i, |key| match key {
            Key::Email(a) => {
                scan.email(&a);
                scan.alias(AliasKind::Email, &a);
            }
            Key::Username(name) => {
                scan.username(&name);
                scan.alias(AliasKind::Username, &name);
            }
            Key::Identifier(id) => scan.identifier(id),
        });
    }
    for l in absent {
        scan.account(l.user_id);
    }
    ViewKeys {
        everyone: true,
        scan: Some(scan),
        ..ViewKeys::default()
    }
}

/// Where an identity's correlation landed.
enum Found {
    Linked(AccountId),
    Matched {
        user: AccountId,
        rule: MatchRule,
        key: String,
    },
    Disputed(Reason),
    New,
    Decided(Decision),
}

/// One account source's plan in the making: its input, the view, and the emails and
/// sign-in names new accounts take in this run.
struct AccountPlanning<'a> {
    input: &'a AccountsInput<'a>,
    dir: &'a DirectoryView,
    me: Writer,
    /// Emails and sign-in names new accounts take in this run, and whose identity.
    new_identities: HashMap<(Field, MatchKey), String>,
}

/// Plans an account source's read against `dir` (which holds every account
/// [`account_view_keys`] reaches, and for a full read every link of the source).
pub fn plan_accounts(input: &AccountsInput<'_>, dir: &DirectoryView) -> Plan {
    let mut items = Vec::new();
    let mut records = Vec::new();
    let mut plan = plan_accounts_into(input, dir, |item, record| {
        items.push(item);
        records.extend(record);
    });
    plan.items = items;
    plan.sis_records = records;
    plan
}

/// [`plan_accounts`], each item that is not just "unchanged" handed to `sink` (with the
/// identity's record when it links) as it is decided, in the plan's order: the plan
/// returned holds no items and no records, so a district's read is applied, held or
/// handed out a part at a time (the engine makes it twice past `max_plan_items`).
pub fn plan_accounts_into(
    input: &AccountsInput<'_>,
    dir: &DirectoryView,
    mut sink: impl FnMut(PlanItem, Option<SisRecord>),
) -> Plan {
    let fingerprint = settings_fingerprint(input.config, input.source);
    let mut identities: Vec<&Identity> = input.identities.iter().collect();
    identities.sort_by(|a, b| a.id.cmp(&b.id));
    identities.dedup_by(|a, b| a.id == b.id);

    let mut found: Vec<Found> = identities
        .iter()
        .map(|i| correlate(input, dir, i))
        .collect();
    // One account claimed by two identities: both wait for a person.
    let mut claims: HashMap<AccountId, Vec<usize>> = HashMap::new();
    for (n, f) in found.iter().enumerate() {
        if let Found::Matched { user, .. } = f {
            claims.entry(*user).or_default().push(n);
        }
    }
    for (user, claimants) in claims {
        if claimants.len() > 1 {
            let ids: Vec<String> = claimants
                .iter()
                .map(|n| identities[*n].id.clone())
                .collect();
            for n in claimants {
                found[n] = Found::Disputed(Reason::ClaimedBySeveral {
                    user,
                    sourced_ids: ids.clone(),
                });
            }
        }
    }

    let mut ctx = AccountPlanning {
        input,
        dir,
        me: Writer::Source(input.source.name.clone()),
        new_identities: HashMap::new(),
    };
    let mut counts = Counts {
        seen: identities.len() as u64,
        ..Counts::default()
    };
    let mut review = Vec::new();
    for (identity, found) in identities.iter().zip(found) {
        let hash = identity.hash(fingerprint);
        let item = decide(&mut ctx, identity, found, hash);
        counts.add(item.outcome, false);
        let status = if identity.suspended {
            "suspended"
        } else {
            "active"
        };
        if item.reason.needs_review() {
            review.push(identity.record(status));
        }
        if item.link.is_some() {
            sink(item, Some(identity.record(status)));
        } else if item.outcome != Outcome::Unchanged {
            sink(item, None);
        }
    }

    // Identities gone: absent from a complete full read, or removed in a delta.
    let present: HashSet<&str> = identities.iter().map(|i| i.id.as_str()).collect();
    let mut gone: Vec<&str> = match input.kind {
        SyncKind::Full if input.complete => dir
            .links()
            .map(|l| &*l.sourced_id)
            .filter(|id| !present.contains(id))
            .collect(),
        SyncKind::Delta | SyncKind::Scim => input
            .removed
            .iter()
            .map(String::as_str)
            .filter(|id| !present.contains(id))
            .collect(),
        _ => Vec::new(),
    };
    gone.sort_unstable();
    gone.dedup();
    for id in gone {
        if let Some(item) = vanished(&ctx, id) {
            counts.add(item.outcome, false);
            sink(item, None);
        }
    }

    Plan {
        source: input.source.name.clone(),
        kind: input.kind,
        complete: input.complete,
        items: Vec::new(),
        counts,
        sis_records: Vec::new(),
        review,
        roster: None,
        watermark: None,
        gone_cases: Vec::new(),
        listed_skips: None,
    }
}

fn correlate(input: &AccountsInput<'_>, dir: &DirectoryView, i: &Identity) -> Found {
    if let Some(link) = dir.link(&i.id) {
        return Found::Linked(link.user_id);
    }
    if let Some(d) = dir.decision(&i.id) {
        return Found::Decided(d);
    }
    let addresses = i.addresses();
    let usernames = i.usernames(input.source);
    let usable = |hits: &[AccountId]| -> Vec<AccountId> {
        let mut hits: Vec<AccountId> = hits
            .iter()
            .copied()
            .filter(|u| !dir.refused(&i.id, *u))
            .collect();
        hits.sort_unstable();
        hits.dedup();
        hits
    };
    let mut alias_hits = Vec::new();
    let mut alias_key = String::new();
    for (kind, key) in addresses
        .iter()
        .map(|a| (AliasKind::Email, a))
        .chain(usernames.iter().map(|u| (AliasKind::Username, u)))
    {
        let hits = dir.by_alias(kind, key);
        if !hits.is_empty() && alias_key.is_empty() {
            alias_key = key.to_string();
        }
        alias_hits.extend_from_slice(hits);
    }
    let mut rules = vec![(MatchRule::Alias, alias_key, usable(&alias_hits))];
    if input.source.user_mapping.match_by_email {
        let mut hits = Vec::new();
        let mut key = String::new();
        for a in &addresses {
            let h = dir.by_email(a);
            if !h.is_empty() && key.is_empty() {
                key = a.to_string();
            }
            hits.extend_from_slice(h);
        }
        rules.push((MatchRule::Email, key, usable(&hits)));
        let mut hits = Vec::new();
        let mut key = String::new();
        for u in &usernames {
            let h = dir.by_username(u);
            if !h.is_empty() && key.is_empty() {
                key = u.to_string();
            }
            hits.extend_from_slice(h);
        }
        rules.push((MatchRule::Username, key, usable(&hits)));
    }
    if input.source.user_mapping.match_by_identifier
        && let Some(id) = i
            .school_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    {
        rules.push((
            MatchRule::Identifier,
            id.to_owned(),
            usable(dir.by_identifier(id)),
        ));
    }
    for (rule, key, hits) in rules {
        match hits.as_slice() {
            [] => continue,
            [user] => {
                if let Some(other) = dir.linked_sourced_id(*user) {
                    return Found::Disputed(Reason::LinkedToAnother {
                        user: *user,
                        sourced_id: other.to_owned(),
                    });
                }
                return Found::Matched {
                    user: *user,
                    rule,
                    key,
                };
            }
            _ => {
                return Found::Disputed(Reason::Disputed(Box::new(Dispute {
                    rule,
                    key,
                    candidates: hits,
                })));
            }
        }
    }
    Found::New
}

fn provider(ctx: &AccountPlanning<'_>) -> String {
    ctx.input.provider.to_owned()
}

fn decide(ctx: &mut AccountPlanning<'_>, i: &Identity, found: Found, hash: u64) -> PlanItem {
    if i.guest {
        return PlanItem::new(
            &i.id,
            None,
            Outcome::Skipped,
            Reason::GuestNotImported {
                provider: provider(ctx),
            },
        );
    }
    match found {
        Found::Disputed(reason) => PlanItem::new(&i.id, None, Outcome::Skipped, reason),
        Found::Decided(Decision::Ignore) => {
            PlanItem::new(&i.id, None, Outcome::Skipped, Reason::IgnoredByAdmin)
        }
        Found::Decided(Decision::Create) => create(ctx, i, hash, Reason::CreatedByDecision),
        Found::New => create(
            ctx,
            i,
            hash,
            Reason::NewIdentity {
                provider: provider(ctx),
            },
        ),
        Found::Linked(user) => {
            let dir = ctx.dir;
            match (dir.link(&i.id), dir.user(user)) {
                // The link is the identity's (`correlate`), so `user` is its account.
                (Some(link), _) if dir.link_unchanged(link, hash) => {
                    let mut item =
                        PlanItem::new(&i.id, Some(user), Outcome::Unchanged, Reason::NoChange);
                    item.planned_revision = Some(link.synced_revision);
                    item
                }
                (Some(link), Some(account)) => {
                    update(ctx, i, account, Some(link), link.rule, hash, None)
                }
                _ => PlanItem::new(&i.id, Some(user), Outcome::Skipped, Reason::NoChange),
            }
        }
        Found::Matched { user, rule, key } => match ctx.dir.user(user) {
            Some(account) => update(
                ctx,
                i,
                account,
                None,
                rule,
                hash,
                Some(Reason::Matched { rule, key }),
            ),
            None => PlanItem::new(&i.id, None, Outcome::Skipped, Reason::NoChange),
        },
    }
}

/// The values the identity gives, by field.
fn wanted(i: &Identity) -> [(Field, Option<String>); 6] {
    let clean = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    [
        (Field::Email, Some(i.directory_email().into_string())),
        (Field::Username, Some(MatchKey::new(&i.login).into_string())),
        (Field::FirstName, clean(&i.given_name)),
        (Field::MiddleName, clean(&i.middle_name)),
        (Field::LastName, clean(&i.family_name)),
        (Field::Identifier, clean(&i.school_id)),
    ]
}

fn create(ctx: &mut AccountPlanning<'_>, i: &Identity, hash: u64, reason: Reason) -> PlanItem {
    let skip = |reason: Reason| PlanItem::new(&i.id, None, Outcome::Skipped, reason);
    // A suspended stranger read from Google or Entra is an old account nobody needs; one
    // a SCIM connection pushes is provisioned on purpose: made, inactive.
    let scim = ctx.input.source.kind == crate::settings::SourceKind::Scim;
    if i.suspended && !scim {
        return skip(Reason::SuspendedNotImported {
            provider: provider(ctx),
        });
    }
    let config = ctx.input.config;
    let email = i.directory_email();
    let login = MatchKey::new(&i.login);
    // One person, one account: never an email or a sign-in name another account has,
    // nor one another identity of this run takes first.
    for (field, value) in [(Field::Email, &email), (Field::Username, &login)] {
        if !config.field_enabled(field) {
            continue;
        }
        let owner = match field {
            Field::Email => ctx.dir.by_email(value).first().copied(),
            _ => ctx.dir.by_username(value).first().copied(),
        };
        if let Some(user) = owner {
            return skip(Reason::IdentityTaken {
                field,
                value: value.to_string(),
                user,
            });
        }
        if let Some(first) = ctx.new_identities.get(&(field, value.clone())) {
            return skip(Reason::IdentityTakenInRun(Box::new(TakenInRun {
                field,
                value: value.to_string(),
                sourced_id: first.clone(),
            })));
        }
    }
    for (field, value) in [(Field::Email, &email), (Field::Username, &login)] {
        ctx.new_identities
            .insert((field, value.clone()), i.id.clone());
    }
    let mut item = PlanItem::new(&i.id, None, Outcome::Created, reason);
    item.changes = wanted(i)
        .into_iter()
        .filter(|(f, v)| v.is_some() && config.field_enabled(*f))
        .map(|(field, new)| FieldChange {
            field,
            old: None,
            new,
        })
        .collect();
    item.new_account = Some(NewAccount {
        user_type: UserType::Other,
        access: if i.suspended {
            Access::NoAccess
        } else {
            Access::Requestor
        },
        active: !i.suspended,
    });
    item.link = Some(LinkWrite::created(hash));
    item.provider = Some(provider(ctx));
    item.aliases = other_addresses(i, Some(&email));
    item
}

/// The identity's addresses but `except` (the account's email): the aliases to keep.
fn other_addresses(i: &Identity, except: Option<&MatchKey>) -> Vec<MatchKey> {
    i.addresses()
        .into_iter()
        .filter(|a| Some(a) != except)
        .collect()
}

/// What deactivating `account` for `state` ("suspended", "gone") comes to, by the
/// source's `deactivate` setting: `Ok` to deactivate, else the reason it stays.
fn may_deactivate(ctx: &AccountPlanning<'_>, account: &Account, state: &str) -> Result<(), Reason> {
    let keep = |why: &str| {
        Reason::NotDeactivated(Box::new(KeptActive {
            provider: provider(ctx),
            state: state.to_owned(),
            why: why.to_owned(),
        }))
    };
    match ctx.input.source.deactivate {
        AccountDeactivation::Never => return Err(keep("never")),
        AccountDeactivation::Unmanaged if ctx.input.managed.contains(&account.id) => {
            return Err(keep("sis"));
        }
        _ => {}
    }
    let import = &ctx.input.source.import;
    if matches!(account.access, Access::Agent | Access::Admin) && !import.allow_role_downgrades {
        return Err(Reason::ProtectedAccess {
            access: account.access,
        });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn update(
    ctx: &mut AccountPlanning<'_>,
    i: &Identity,
    account: &Account,
    link: Option<&ViewLink>,
    rule: MatchRule,
    hash: u64,
    matched: Option<Reason>,
) -> PlanItem {
    let input = ctx.input;
    let mut item = PlanItem::new(
        &i.id,
        Some(account.id),
        Outcome::Unchanged,
        Reason::NoChange,
    );
    item.planned_revision = Some(account.revision);
    let mut link_write = LinkWrite {
        rule,
        record_hash: hash,
        is_new: link.is_none(),
        misses: 0,
        deactivated_at: link.and_then(|l| l.deactivated_at()),
        previous_access: link.and_then(|l| l.previous_access),
    };

    // Fields: only where empty or this source's, and never another account's identity.
    let mut taken = None;
    for (field, new) in wanted(i) {
        let Some(new) = new else { continue };
        if !input.config.field_enabled(field) {
            continue;
        }
        let old = account.get(field);
        let same = match field {
            Field::Email | Field::Username => old.is_some_and(|o| MatchKey::same(o, &new)),
            _ => old == Some(new.as_str()),
        };
        if same {
            continue;
        }
        let may = match input.source.priority(field) {
            Priority::Always => true,
            Priority::IfNotSet => {
                old.is_none_or(str::is_empty) || account.writer_of(field) == Some(&ctx.me)
            }
        };
        if !may {
            continue;
        }
        if matches!(field, Field::Email | Field::Username) {
            let key = (field, MatchKey::new(&new));
            let holders = match field {
                Field::Email => ctx.dir.by_email(&key.1),
                _ => ctx.dir.by_username(&key.1),
            };
            let other = holders.iter().copied().find(|u| {
                *u != account.id && ctx.dir.user(*u).is_none_or(|o| o.merged_into.is_none())
            });
            let in_run = ctx.new_identities.contains_key(&key);
            if let Some(user) = other {
                taken.get_or_insert(Reason::IdentityTaken {
                    field,
                    value: new.clone(),
                    user,
                });
                continue;
            }
            if in_run {
                continue;
            }
            ctx.new_identities.insert(key, i.id.clone());
        }
        item.changes.push(FieldChange {
            field,
            old: old.map(str::to_owned),
            new: Some(new),
        });
    }

    if account.provider.is_none() || account.provider.as_deref() == Some("sis") {
        item.provider = Some(provider(ctx));
    }
    let email_after = item
        .changes
        .iter()
        .find(|c| c.field == Field::Email)
        .and_then(|c| c.new.map(MatchKey::new))
        .or_else(|| account.email.as_deref().map(MatchKey::new));
    item.aliases = other_addresses(i, email_after.as_ref());

    if i.suspended && account.active {
        match may_deactivate(ctx, account, "suspended") {
            Ok(()) => {
                item.outcome = Outcome::Deactivated;
                item.reason = Reason::SuspendedInProvider {
                    provider: provider(ctx),
                };
                item.active = Some((true, false));
                if account.access != Access::NoAccess {
                    item.access = Some((account.access, Access::NoAccess));
                }
                link_write.deactivated_at = Some(input.now);
                link_write.previous_access = Some(account.access);
            }
            Err(why) => {
                item.reason = why;
            }
        }
    } else if !i.suspended
        && !account.active
        && let Some(at) = link.and_then(|l| l.deactivated_at())
    {
        let restored = link
            .and_then(|l| l.previous_access)
            .unwrap_or(Access::Requestor);
        item.outcome = Outcome::Reactivated;
        item.reason = Reason::Returned {
            days: (input.now.as_second() - at.as_second()).div_euclid(86_400),
        };
        item.active = Some((false, true));
        if restored != account.access {
            item.access = Some((account.access, restored));
        }
        link_write.deactivated_at = None;
        link_write.previous_access = None;
    } else if !i.suspended && link_write.deactivated_at.is_some() {
        // Active here, and active in the directory: what was recorded is over.
        link_write.deactivated_at = None;
        link_write.previous_access = None;
    }

    if item.outcome == Outcome::Unchanged {
        if let Some(reason) = matched {
            item.outcome = Outcome::Linked;
            item.reason = reason;
        } else if !item.changes.is_empty() || item.provider.is_some() {
            item.outcome = Outcome::Updated;
            if item.reason == Reason::NoChange {
                item.reason = Reason::IdentityChanged {
                    provider: provider(ctx),
                };
            }
        }
    }
    if let Some(reason) = taken
        && matches!(
            item.reason,
            Reason::NoChange | Reason::IdentityChanged { .. }
        )
    {
        item.reason = reason;
        if item.outcome == Outcome::Unchanged {
            item.outcome = Outcome::Skipped;
        }
    }
    item.link = Some(link_write);
    item
}

/// A linked identity the provider no longer has: one more miss on its link, and, once
/// the misses reach `deactivate_after_misses`, its account deactivated by the
/// `deactivate` setting. `None` when there is nothing new to say (the account is inactive
/// and its miss recorded already, or it is not in the view).
fn vanished(ctx: &AccountPlanning<'_>, id: &str) -> Option<PlanItem> {
    let link = ctx.dir.link(id)?;
    let account = ctx.dir.user(link.user_id)?;
    let needed = ctx.input.source.import.deactivate_after_misses.max(1);
    let misses = link.misses.saturating_add(1);
    if link.misses > 0 && (!account.active || link.misses >= needed) {
        return None;
    }
    let mut item = PlanItem::new(id, Some(account.id), Outcome::Unchanged, Reason::NoChange);
    item.planned_revision = Some(account.revision);
    let mut link_write = LinkWrite {
        rule: link.rule,
        record_hash: link.record_hash,
        is_new: false,
        misses,
        deactivated_at: link.deactivated_at(),
        previous_access: link.previous_access,
    };
    let gone = Reason::GoneFromProvider {
        provider: provider(ctx),
    };
    if !account.active {
        item.reason = gone;
    } else if misses < needed {
        item.reason = Reason::Missing { misses, needed };
    } else {
        match may_deactivate(ctx, account, "gone") {
            Ok(()) => {
                item.outcome = Outcome::Deactivated;
                item.reason = gone;
                item.active = Some((true, false));
                if account.access != Access::NoAccess {
                    item.access = Some((account.access, Access::NoAccess));
                }
                link_write.deactivated_at = Some(ctx.input.now);
                link_write.previous_access = Some(account.access);
            }
            Err(why) => item.reason = why,
        }
    }
    item.link = Some(link_write);
    Some(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Link;
    use crate::settings::SourceKind;

    fn config(extra: &str) -> Config {
        Config::from_toml(&format!(
            "[[source]]\nname = \"google\"\nkind = \"google-workspace\"\nsubject = \"admin@d.us\"\n{extra}"
        ))
        .unwrap()
    }

    fn account(id: i64, email: &str, username: &str) -> Account {
        let mut a = Account::blank(AccountId(id));
        a.email = Some(email.into());
        a.username = Some(username.into());
        a.provider = Some("sis".into());
        a.revision = 1;
        a
    }

    fn identity(id: &str, login: &str) -> Identity {
        Identity {
            id: id.into(),
            login: login.into(),
            email: Some(login.into()),
            aliases: Vec::new(),
            given_name: Some("Given".into()),
            middle_name: None,
            family_name: Some("Family".into()),
            suspended: false,
            guest: false,
            org_unit: None,
            school_id: None,
            last_sign_in: None,
        }
    }

    fn plan(
        config: &Config,
        kind: SyncKind,
        identities: &[Identity],
        managed: &[i64],
        dir: &DirectoryView,
    ) -> Plan {
        let managed: HashSet<AccountId> = managed.iter().map(|i| AccountId(*i)).collect();
        let source = &config.sources[0];
        assert_eq!(source.kind, SourceKind::GoogleWorkspace);
        plan_accounts(
            &AccountsInput {
                config,
                source,
                provider: "google",
                kind,
                complete: true,
                identities,
                removed: &[],
                managed: &managed,
                now: Timestamp::from_second(2_000_000_000).unwrap(),
            },
            dir,
        )
    }

    fn item<'p>(plan: &'p Plan, id: &str) -> &'p PlanItem {
        plan.items
            .iter()
            .find(|i| i.sourced_id == id)
            .unwrap_or_else(|| panic!("no item {id} in {plan:?}"))
    }

    #[test]
    fn an_identity_links_by_email_and_fills_only_empty_fields() {
        let c = config("");
        let mut a = account(1, "ava@d.us", "ava");
        a.first_name = Some("Ava".into());
        let dir = DirectoryView::new(vec![a], Vec::new(), Vec::new());
        let mut i = identity("g1", "ava@d.us");
        i.aliases = vec!["ava.j@d.us".into()];
        let p = plan(&c, SyncKind::Full, &[i], &[], &dir);
        let it = item(&p, "g1");
        assert_eq!(it.outcome, Outcome::Linked);
        assert!(matches!(
            it.reason,
            Reason::Matched {
                rule: MatchRule::Email,
                ..
            }
        ));
        // The first name and the username are the SIS's; the empty last name is filled.
        let fields: Vec<Field> = it.changes.iter().map(|c| c.field).collect();
        assert_eq!(fields, vec![Field::LastName], "{it:?}");
        assert_eq!(it.provider.as_deref(), Some("google"));
        assert_eq!(it.aliases, vec![MatchKey::new("ava.j@d.us")]);
    }

    #[test]
    fn two_accounts_by_one_rule_or_two_identities_for_one_account_wait_for_a_person() {
        let c = config("");
        let dir = DirectoryView::new(
            vec![account(1, "x@d.us", "x1"), account(2, "y@d.us", "x@d.us")],
            Vec::new(),
            vec![(AccountId(2), AliasKind::Email, MatchKey::new("x@d.us"))],
        );
        // The alias reaches #2 and the email #1: the alias rule comes first and decides.
        let p = plan(&c, SyncKind::Full, &[identity("g1", "x@d.us")], &[], &dir);
        assert!(matches!(
            item(&p, "g1").reason,
            Reason::Matched {
                rule: MatchRule::Alias,
                ..
            }
        ));
        let dir = DirectoryView::new(
            vec![account(1, "x@d.us", "a"), account(2, "X@d.us", "b")],
            Vec::new(),
            Vec::new(),
        );
        let p = plan(&c, SyncKind::Full, &[identity("g1", "x@d.us")], &[], &dir);
        assert!(matches!(item(&p, "g1").reason, Reason::Disputed(_)));
        assert!(p.items[0].reason.needs_review());
        let dir = DirectoryView::new(vec![account(1, "x@d.us", "a")], Vec::new(), Vec::new());
        let mut second = identity("g2", "other@d.us");
        second.aliases = vec!["x@d.us".into()];
        let p = plan(
            &c,
            SyncKind::Full,
            &[identity("g1", "x@d.us"), second],
            &[],
            &dir,
        );
        for id in ["g1", "g2"] {
            assert!(matches!(
                item(&p, id).reason,
                Reason::ClaimedBySeveral { .. }
            ));
            assert!(item(&p, id).link.is_none());
        }
    }

    #[test]
    fn a_new_account_never_takes_another_accounts_username() {
        let c = config("");
        let dir = DirectoryView::new(
            vec![account(1, "someone@d.us", "new@d.us")],
            Vec::new(),
            Vec::new(),
        );
        let c2 = config("[source.user_mapping]\nmatch_by_email = false\n");
        let p = plan(
            &c2,
            SyncKind::Full,
            &[identity("g1", "new@d.us")],
            &[],
            &dir,
        );
        assert!(matches!(
            item(&p, "g1").reason,
            Reason::IdentityTaken {
                field: Field::Username,
                ..
            }
        ));
        // Two identities wanting one new address: the first (by id) gets it.
        let empty = DirectoryView::default();
        let mut b = identity("g2", "b@d.us");
        b.email = Some("a@d.us".into());
        let p = plan(
            &c,
            SyncKind::Full,
            &[identity("g1", "a@d.us"), b],
            &[],
            &empty,
        );
        assert_eq!(item(&p, "g1").outcome, Outcome::Created);
        assert!(matches!(
            item(&p, "g2").reason,
            Reason::IdentityTakenInRun(_)
        ));
        // A suspended stranger gets no account.
        let mut s = identity("g3", "s@d.us");
        s.suspended = true;
        let p = plan(&c, SyncKind::Full, &[s], &[], &empty);
        assert!(matches!(
            item(&p, "g3").reason,
            Reason::SuspendedNotImported { .. }
        ));
    }

    fn linked(id: &str, user: i64) -> Link {
        let mut l = Link::new(id, AccountId(user), MatchRule::Email, Timestamp::UNIX_EPOCH);
        l.synced_revision = 1;
        l
    }

    /// A read planned on the links and the accounts it needs, by key or by a scan of every
    /// account, plans as on the whole directory; the scan keeps what the keys reach.
    #[test]
    fn a_read_on_links_and_the_accounts_it_needs_plans_like_the_whole_directory() {
        use crate::memory::MemoryDirectory;
        let c = config("[source.user_mapping]\nappend_domain = \"d.us\"\n");
        let mut dir = MemoryDirectory::default();
        for (email, username) in [
            ("ava@d.us", "ava"),
            ("bo@d.us", "bo"),
            ("cy@d.us", "cy"),
            ("dee@d.us", "dee"),
            ("eli@d.us", "eli"),
            ("fay@d.us", "fay"),
        ] {
            dir.add_user(account(0, email, username));
        }
        let managed = HashSet::new();
        fn read<'a>(
            c: &'a Config,
            identities: &'a [Identity],
            managed: &'a HashSet<AccountId>,
        ) -> AccountsInput<'a> {
            AccountsInput {
                config: c,
                source: &c.sources[0],
                provider: "google",
                kind: SyncKind::Full,
                complete: true,
                identities,
                removed: &[],
                managed,
                now: Timestamp::from_second(2_000_000_000).unwrap(),
            }
        }
        // The first read links bo (with an old address), cy and eli by email.
        let mut bo = identity("g-bo", "bo@d.us");
        bo.aliases = vec!["bo.old@d.us".into()];
        let first = [
            bo.clone(),
            identity("g-cy", "cy@d.us"),
            identity("g-eli", "eli@d.us"),
        ];
        let p = plan_accounts(&read(&c, &first, &managed), &dir.view("google"));
        assert_eq!(p.counts.linked, 3, "{p:?}");
        dir.apply(&p, Timestamp::from_second(2_000_000_000).unwrap());
        // The next: bo renamed, cy unchanged, eli gone; ava new (her username as the
        // sign-in's local part), someone at bo's old address, and one nobody has.
        bo.given_name = Some("Bob".into());
        let second = [
            bo,
            identity("g-cy", "cy@d.us"),
            identity("g-ava", "ava@d.us"),
            identity("g-old", "bo.old@d.us"),
            identity("g-new", "new@d.us"),
        ];
        let input = read(&c, &second, &managed);
        let want = plan_accounts(&input, &dir.view("google"));
        let mut kept = Vec::new();
        for most in [u64::MAX, 0] {
            let mut lean = dir.links_view("google");
            let keys = accounts_needed_up_to(&input, &lean, most);
            assert_eq!(keys.everyone, most == 0);
            let (users, aliases) = dir.accounts("google", &keys);
            let mut ids: Vec<AccountId> = users.iter().map(|u| u.id).collect();
            ids.sort();
            kept.push(ids);
            lean.add_accounts(users, aliases);
            assert_eq!(plan_accounts(&input, &lean), want);
        }
        // ava, bo and eli (gone: deactivated); not cy (unchanged), dee or fay.
        assert_eq!(kept[0], [AccountId(1), AccountId(2), AccountId(5)]);
        assert_eq!(kept[1], kept[0], "the scan keeps what the keys reach");
        assert!(
            want.items
                .iter()
                .any(|i| i.sourced_id == "g-new" && i.outcome == Outcome::Created)
        );
    }

    #[test]
    fn suspension_and_absence_deactivate_by_the_setting() {
        let dir = DirectoryView::new(
            vec![account(1, "a@d.us", "a"), account(2, "b@d.us", "b")],
            vec![linked("g1", 1), linked("g2", 2)],
            Vec::new(),
        );
        let mut a = identity("g1", "a@d.us");
        a.suspended = true;
        // unmanaged: #1 is the SIS's (kept), and #2, gone, is no one's (deactivated).
        let c = config("");
        let p = plan(&c, SyncKind::Full, std::slice::from_ref(&a), &[1], &dir);
        assert!(matches!(item(&p, "g1").reason, Reason::NotDeactivated(_)));
        assert_eq!(item(&p, "g1").active, None);
        assert_eq!(item(&p, "g2").outcome, Outcome::Deactivated);
        assert!(matches!(
            item(&p, "g2").reason,
            Reason::GoneFromProvider { .. }
        ));
        assert_eq!(item(&p, "g2").link.as_ref().map(|l| l.misses), Some(1));
        // always: both; never: neither.
        let c = config("deactivate = \"always\"\n");
        let p = plan(&c, SyncKind::Full, std::slice::from_ref(&a), &[1], &dir);
        assert_eq!(p.counts.deactivated, 2);
        let c = config("deactivate = \"never\"\n");
        let p = plan(&c, SyncKind::Full, std::slice::from_ref(&a), &[1], &dir);
        assert_eq!(p.counts.deactivated, 0);
        // Two misses needed: the first only counts.
        let c = config("[source.import]\ndeactivate_after_misses = 2\n");
        let p = plan(&c, SyncKind::Full, std::slice::from_ref(&a), &[1], &dir);
        assert!(matches!(
            item(&p, "g2").reason,
            Reason::Missing {
                misses: 1,
                needed: 2
            }
        ));
        // An incomplete read deactivates no one for being absent.
        let c = config("");
        let managed = HashSet::new();
        let incomplete = plan_accounts(
            &AccountsInput {
                config: &c,
                source: &c.sources[0],
                provider: "google",
                kind: SyncKind::Full,
                complete: false,
                identities: &[],
                removed: &[],
                managed: &managed,
                now: Timestamp::UNIX_EPOCH,
            },
            &dir,
        );
        assert!(incomplete.items.is_empty(), "{incomplete:?}");
    }
}
