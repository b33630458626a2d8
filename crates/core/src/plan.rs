//! Planning: from a snapshot of SIS people and the directory, every change a sync would
//! make, each with the rule that decided it. Pure: the same inputs give the same plan.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::directory::{
    Access, AliasKind, DirUser, Field, MatchRule, UserId, UserType, Writer, match_key,
};
use crate::settings::{Config, Priority, SourceConfig};
use crate::sis::{Category, Fnv, SisPerson};
use crate::view::DirectoryView;

/// Full pulls see everyone (and may, later, deactivate by absence); deltas see changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncKind {
    Full,
    Delta,
    User,
}

impl SyncKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Full => "full",
            SyncKind::Delta => "delta",
            SyncKind::User => "user",
        }
    }
}

/// What a plan does to one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Created,
    Linked,
    Updated,
    Unchanged,
    Skipped,
    Deactivated,
    Reactivated,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Linked => "linked",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Deactivated => "deactivated",
            Outcome::Reactivated => "reactivated",
            Outcome::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Created,
            Outcome::Linked,
            Outcome::Updated,
            Outcome::Unchanged,
            Outcome::Skipped,
            Outcome::Deactivated,
            Outcome::Reactivated,
            Outcome::Error,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// Why. Every planned item carries one; `code()` is stable for scripts and support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// No account matched: a new one is made.
    NewPerson,
    /// Linked to an existing account by a correlation rule.
    Matched { rule: MatchRule, key: String },
    /// Already linked; the SIS values changed.
    FieldsChanged,
    /// Already linked; nothing to write.
    NoChange,
    /// Several accounts match by the same rule: a person must decide.
    Disputed {
        rule: MatchRule,
        key: String,
        candidates: Vec<UserId>,
    },
    /// Several SIS people match the same account.
    ClaimedBySeveral {
        user: UserId,
        sourced_ids: Vec<String>,
    },
    /// The matching account is already linked to another SIS person of this source.
    LinkedToAnother { user: UserId, sourced_id: String },
    /// A new account would take an email another account or person already has.
    EmailInUse {
        email: String,
        user: Option<UserId>,
        sourced_id: Option<String>,
    },
    /// The role's import switch is off.
    CategoryNotImported { role: String, category: String },
    /// No role the standard defines (missing, or a vendor `ext:` role).
    NoImportableRole { role: Option<String> },
    /// Disabled or `tobedeleted`, and inactive people are not imported.
    InactiveNotImported,
    /// Nothing to make an account from.
    NoEmailOrUsername,
}

impl Reason {
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NewPerson => "new_person",
            Reason::Matched { .. } => "matched",
            Reason::FieldsChanged => "fields_changed",
            Reason::NoChange => "no_change",
            Reason::Disputed { .. } => "disputed",
            Reason::ClaimedBySeveral { .. } => "claimed_by_several",
            Reason::LinkedToAnother { .. } => "linked_to_another",
            Reason::EmailInUse { .. } => "email_in_use",
            Reason::CategoryNotImported { .. } => "category_not_imported",
            Reason::NoImportableRole { .. } => "no_importable_role",
            Reason::InactiveNotImported => "inactive_not_imported",
            Reason::NoEmailOrUsername => "no_email_or_username",
        }
    }
}

fn ids(v: &[UserId]) -> String {
    v.iter()
        .map(|i| format!("#{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NewPerson => f.write_str("new in the SIS; no existing account matched"),
            Reason::Matched { rule, key } => {
                write!(
                    f,
                    "linked to an existing account by {} ({key})",
                    rule_words(*rule)
                )
            }
            Reason::FieldsChanged => f.write_str("SIS values changed"),
            Reason::NoChange => f.write_str("nothing changed"),
            Reason::Disputed {
                rule,
                key,
                candidates,
            } => write!(
                f,
                "several accounts match by {} ({key}): {}; link one by hand",
                rule_words(*rule),
                ids(candidates)
            ),
            Reason::ClaimedBySeveral { user, sourced_ids } => write!(
                f,
                "account #{user} matches several SIS people ({}); link by hand",
                sourced_ids.join(", ")
            ),
            Reason::LinkedToAnother { user, sourced_id } => write!(
                f,
                "the matching account #{user} is already linked to SIS person {sourced_id}"
            ),
            Reason::EmailInUse {
                email,
                user,
                sourced_id,
            } => match (user, sourced_id) {
                (Some(u), _) => write!(
                    f,
                    "cannot create an account: {email} belongs to account #{u}"
                ),
                (None, Some(s)) => write!(
                    f,
                    "cannot create an account: {email} is also the email of SIS person {s} in this run"
                ),
                (None, None) => write!(f, "cannot create an account: {email} is in use"),
            },
            Reason::CategoryNotImported { role, category } => {
                write!(f, "role {role}: importing {category} is turned off")
            }
            Reason::NoImportableRole { role: Some(r) } => {
                write!(f, "role {r} is not one rostersync imports")
            }
            Reason::NoImportableRole { role: None } => f.write_str("the SIS gives no role"),
            Reason::InactiveNotImported => {
                f.write_str("inactive in the SIS and Include inactive users is off")
            }
            Reason::NoEmailOrUsername => {
                f.write_str("no email and no username to make an account from")
            }
        }
    }
}

fn rule_words(r: MatchRule) -> &'static str {
    match r {
        MatchRule::Created => "creation",
        MatchRule::Alias => "an old email or username (alias)",
        MatchRule::Email => "email",
        MatchRule::AppendDomain => "username@domain",
        MatchRule::Identifier => "school id number",
        MatchRule::Manual => "hand",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: Field,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The account a `Created` item makes (its fields are in `changes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    pub user_type: UserType,
    pub access: Access,
    pub active: bool,
}

/// A link to write: a new one, or a refreshed hash on an existing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkWrite {
    pub rule: MatchRule,
    pub record_hash: u64,
    pub is_new: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanItem {
    pub sourced_id: String,
    /// The account acted on; `None` for a creation.
    pub user_id: Option<UserId>,
    pub outcome: Outcome,
    pub reason: Reason,
    pub changes: Vec<FieldChange>,
    pub new_account: Option<NewAccount>,
    pub link: Option<LinkWrite>,
    /// The account's revision when planned, to detect writes between plan and apply.
    pub planned_revision: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub seen: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub linked: u64,
    pub deactivated: u64,
    pub reactivated: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub source: String,
    pub kind: SyncKind,
    pub complete: bool,
    /// Every person seen, sorted by sourcedId. Unchanged people are counted, and listed
    /// only when their link needs a refresh.
    pub items: Vec<PlanItem>,
    pub counts: Counts,
}

impl Plan {
    /// Items that write something.
    pub fn writes(&self) -> impl Iterator<Item = &PlanItem> {
        self.items.iter().filter(|i| {
            matches!(
                i.outcome,
                Outcome::Created
                    | Outcome::Linked
                    | Outcome::Updated
                    | Outcome::Deactivated
                    | Outcome::Reactivated
            ) || i.link.is_some()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.writes().next().is_none()
    }
}

/// What a plan is computed from.
pub struct PlanInput<'a> {
    pub config: &'a Config,
    pub source: &'a SourceConfig,
    pub kind: SyncKind,
    /// Whether the pull proved itself complete.
    pub complete: bool,
    pub people: &'a [SisPerson],
}

/// A fingerprint of the settings that shape a plan: when it changes, every person is
/// planned again even if their SIS record did not change.
pub fn settings_fingerprint(config: &Config, source: &SourceConfig) -> u64 {
    let mut h = Fnv::new();
    let parts = (
        &config.fields,
        &source.user_mapping,
        &source.import,
        &source.field_priority,
        &source.name,
    );
    h.str(&serde_json::to_string(&parts).unwrap_or_default());
    h.finish()
}

/// The directory email for a SIS email: lower-cased, domain translated by the first
/// matching rule.
pub fn translate_email(source: &SourceConfig, email: &str) -> String {
    let email = match_key(email);
    if let Some((local, domain)) = email.rsplit_once('@') {
        for rule in &source.user_mapping.translate_email {
            if domain.eq_ignore_ascii_case(&rule.from) {
                return format!("{local}@{}", rule.to.to_lowercase());
            }
        }
    }
    email
}

/// The email a person should have in the directory, if any.
pub fn directory_email(source: &SourceConfig, p: &SisPerson) -> Option<String> {
    match &p.email {
        Some(e) => Some(translate_email(source, e)),
        None => {
            let domain = source.user_mapping.append_domain.as_deref()?;
            (!p.username.is_empty())
                .then(|| format!("{}@{}", match_key(&p.username), domain.to_lowercase()))
        }
    }
}

/// Where correlation landed for one person.
enum Correlation {
    Linked(UserId),
    Matched {
        user: UserId,
        rule: MatchRule,
        key: String,
    },
    Disputed(Reason),
    New,
}

pub fn plan(input: &PlanInput<'_>, dir: &DirectoryView) -> Plan {
    let source = input.source;
    let fingerprint = settings_fingerprint(input.config, source);

    let mut people: Vec<&SisPerson> = input.people.iter().collect();
    people.sort_by(|a, b| a.sourced_id.cmp(&b.sourced_id));
    people.dedup_by(|a, b| a.sourced_id == b.sourced_id);

    // Correlate everyone first: two people claiming one account must both wait for a human.
    let mut correlations: Vec<Correlation> =
        people.iter().map(|p| correlate(source, dir, p)).collect();
    let mut claims: HashMap<UserId, Vec<usize>> = HashMap::new();
    for (i, c) in correlations.iter().enumerate() {
        if let Correlation::Matched { user, .. } = c {
            claims.entry(*user).or_default().push(i);
        }
    }
    for (user, claimants) in claims {
        if claimants.len() > 1 {
            let sourced_ids: Vec<String> = claimants
                .iter()
                .map(|i| people[*i].sourced_id.clone())
                .collect();
            for i in claimants {
                correlations[i] = Correlation::Disputed(Reason::ClaimedBySeveral {
                    user,
                    sourced_ids: sourced_ids.clone(),
                });
            }
        }
    }

    let mut items = Vec::with_capacity(people.len());
    let mut counts = Counts {
        seen: people.len() as u64,
        ..Counts::default()
    };
    // Emails new accounts take in this run, so two new people cannot share one.
    let mut new_emails: HashMap<String, String> = HashMap::new();
    let mut emails_in_run: HashSet<String> = HashSet::new();
    for (p, c) in people.iter().zip(&correlations) {
        if let Correlation::Linked(_) | Correlation::Matched { .. } = c
            && let Some(e) = directory_email(source, p)
        {
            emails_in_run.insert(e);
        }
    }

    for (p, correlation) in people.iter().zip(correlations) {
        let hash = p.content_hash(fingerprint);
        let item = decide(
            input,
            dir,
            p,
            correlation,
            hash,
            &mut new_emails,
            &emails_in_run,
        );
        match item.outcome {
            Outcome::Created => counts.created += 1,
            Outcome::Linked => {
                counts.linked += 1;
                if !item.changes.is_empty() {
                    counts.updated += 1;
                }
            }
            Outcome::Updated => counts.updated += 1,
            Outcome::Unchanged => counts.unchanged += 1,
            Outcome::Skipped => counts.skipped += 1,
            Outcome::Deactivated => counts.deactivated += 1,
            Outcome::Reactivated => counts.reactivated += 1,
            Outcome::Error => counts.errors += 1,
        }
        if item.outcome != Outcome::Unchanged || item.link.is_some() {
            items.push(item);
        }
    }

    Plan {
        source: source.name.clone(),
        kind: input.kind,
        complete: input.complete,
        items,
        counts,
    }
}

fn correlate(source: &SourceConfig, dir: &DirectoryView, p: &SisPerson) -> Correlation {
    if let Some(link) = dir.link(&p.sourced_id) {
        return Correlation::Linked(link.user_id);
    }
    let mapping = &source.user_mapping;
    let email = directory_email(source, p);

    let mut rules: Vec<(MatchRule, String, Vec<UserId>)> = Vec::new();
    // Aliases: old emails and usernames kept by renames and merges.
    let mut alias_hits: Vec<UserId> = Vec::new();
    let mut alias_key = String::new();
    for (kind, key) in [
        (AliasKind::Email, email.clone()),
        (AliasKind::Email, p.email.as_deref().map(match_key)),
        (
            AliasKind::Username,
            (!p.username.is_empty()).then(|| match_key(&p.username)),
        ),
    ] {
        if let Some(key) = key {
            let hits = dir.by_alias(kind, &key);
            if !hits.is_empty() && alias_key.is_empty() {
                alias_key = key.clone();
            }
            alias_hits.extend_from_slice(hits);
        }
    }
    alias_hits.sort_unstable();
    alias_hits.dedup();
    rules.push((MatchRule::Alias, alias_key, alias_hits));
    if mapping.match_by_email {
        match (&p.email, &email) {
            (Some(_), Some(e)) => {
                rules.push((MatchRule::Email, e.clone(), dir.by_email(e).to_vec()))
            }
            (None, Some(e)) => {
                rules.push((MatchRule::AppendDomain, e.clone(), dir.by_email(e).to_vec()))
            }
            _ => {}
        }
    }
    if mapping.match_by_identifier
        && let Some(id) = &p.identifier
    {
        rules.push((
            MatchRule::Identifier,
            id.clone(),
            dir.by_identifier(id).to_vec(),
        ));
    }

    for (rule, key, candidates) in rules {
        if candidates.is_empty() {
            continue;
        }
        let (free, taken): (Vec<UserId>, Vec<UserId>) = candidates
            .iter()
            .partition(|u| dir.linked_sourced_id(**u).is_none());
        match free.as_slice() {
            [one] => {
                return Correlation::Matched {
                    user: *one,
                    rule,
                    key,
                };
            }
            [] => {
                let user = taken[0];
                let sourced_id = dir.linked_sourced_id(user).unwrap_or_default().to_owned();
                return Correlation::Disputed(Reason::LinkedToAnother { user, sourced_id });
            }
            several => {
                return Correlation::Disputed(Reason::Disputed {
                    rule,
                    key,
                    candidates: several.to_vec(),
                });
            }
        }
    }
    Correlation::New
}

/// The values the SIS wants, field by field. `None` means "the SIS has no value".
fn desired(
    source: &SourceConfig,
    p: &SisPerson,
    user_type: UserType,
) -> Vec<(Field, Option<String>)> {
    vec![
        (
            Field::Username,
            (!p.username.is_empty()).then(|| p.username.clone()),
        ),
        (Field::Email, directory_email(source, p)),
        (
            Field::FirstName,
            (!p.given_name.is_empty()).then(|| p.given_name.clone()),
        ),
        (Field::MiddleName, p.middle_name.clone()),
        (
            Field::LastName,
            (!p.family_name.is_empty()).then(|| p.family_name.clone()),
        ),
        (Field::PreferredName, p.preferred_first_name.clone()),
        (Field::Type, Some(user_type.as_str().to_owned())),
        (Field::Grade, p.grade.clone()),
        (Field::Identifier, p.identifier.clone()),
        (Field::Phone, p.phone.clone()),
    ]
}

/// Identity keys the sync never blanks: a person without an SIS email keeps the one
/// single sign-on gave them.
fn never_blanked(f: Field) -> bool {
    matches!(f, Field::Username | Field::Email)
}

fn same_value(f: Field, a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) if f == Field::Email || f == Field::Username => {
            a.eq_ignore_ascii_case(b)
        }
        (a, b) => a.filter(|s| !s.is_empty()) == b.filter(|s| !s.is_empty()),
    }
}

/// Field changes for an existing account, under the global switches and this source's
/// priorities.
fn field_changes(
    input: &PlanInput<'_>,
    user: &DirUser,
    wanted: Vec<(Field, Option<String>)>,
) -> Vec<FieldChange> {
    let me = Writer::Source(input.source.name.clone());
    let mut out = Vec::new();
    for (field, new) in wanted {
        if !input.config.field_enabled(field) {
            continue;
        }
        if new.is_none() && never_blanked(field) {
            continue;
        }
        let old = user.get(field);
        if same_value(field, old, new.as_deref()) {
            continue;
        }
        let may_write = match input.source.priority(field) {
            Priority::Always => true,
            Priority::IfNotSet => {
                old.is_none_or(str::is_empty) || user.writer_of(field) == Some(&me)
            }
        };
        if may_write {
            out.push(FieldChange {
                field,
                old: old.map(str::to_owned),
                new: new.map(|v| {
                    if field == Field::Email {
                        v.to_lowercase()
                    } else {
                        v
                    }
                }),
            });
        }
    }
    out
}

fn skipped(p: &SisPerson, user_id: Option<UserId>, reason: Reason) -> PlanItem {
    PlanItem {
        sourced_id: p.sourced_id.clone(),
        user_id,
        outcome: Outcome::Skipped,
        reason,
        changes: Vec::new(),
        new_account: None,
        link: None,
        planned_revision: None,
    }
}

fn decide(
    input: &PlanInput<'_>,
    dir: &DirectoryView,
    p: &SisPerson,
    correlation: Correlation,
    hash: u64,
    new_emails: &mut HashMap<String, String>,
    emails_in_run: &HashSet<String>,
) -> PlanItem {
    let import = &input.source.import;
    let (user_type, category) = match p.classification() {
        Some(c) => c,
        None => {
            let user = match &correlation {
                Correlation::Linked(u) => Some(*u),
                _ => None,
            };
            return skipped(
                p,
                user,
                Reason::NoImportableRole {
                    role: p.role.as_ref().map(|r| r.as_str().to_owned()),
                },
            );
        }
    };
    let imported = match category {
        Category::Students => import.students,
        Category::Teachers => import.teachers,
        Category::Administrators => import.administrators,
        Category::OtherUsers => import.other_users,
    };
    let linked_user = match &correlation {
        Correlation::Linked(u) => Some(*u),
        _ => None,
    };
    if !imported {
        return skipped(
            p,
            linked_user,
            Reason::CategoryNotImported {
                role: p
                    .role
                    .as_ref()
                    .map_or_else(String::new, |r| r.as_str().to_owned()),
                category: category.as_str().to_owned(),
            },
        );
    }

    match correlation {
        Correlation::Disputed(reason) => skipped(p, None, reason),
        Correlation::New => {
            if !p.active && !import.include_inactive {
                return skipped(p, None, Reason::InactiveNotImported);
            }
            let wanted = desired(input.source, p, user_type);
            let email = wanted
                .iter()
                .find(|(f, _)| *f == Field::Email)
                .and_then(|(_, v)| v.clone());
            let has_username = !p.username.is_empty();
            if email.is_none() && !has_username {
                return PlanItem {
                    outcome: Outcome::Error,
                    ..skipped(p, None, Reason::NoEmailOrUsername)
                };
            }
            if let Some(e) = &email
                && input.config.field_enabled(Field::Email)
            {
                if let Some(owner) = dir.by_email(e).first() {
                    return skipped(
                        p,
                        None,
                        Reason::EmailInUse {
                            email: e.clone(),
                            user: Some(*owner),
                            sourced_id: None,
                        },
                    );
                }
                if emails_in_run.contains(e) {
                    return skipped(
                        p,
                        None,
                        Reason::EmailInUse {
                            email: e.clone(),
                            user: None,
                            sourced_id: None,
                        },
                    );
                }
                if let Some(first) = new_emails.get(e) {
                    return skipped(
                        p,
                        None,
                        Reason::EmailInUse {
                            email: e.clone(),
                            user: None,
                            sourced_id: Some(first.clone()),
                        },
                    );
                }
                new_emails.insert(e.clone(), p.sourced_id.clone());
            }
            let changes: Vec<FieldChange> = wanted
                .into_iter()
                .filter(|(f, v)| v.is_some() && input.config.field_enabled(*f))
                .map(|(field, new)| FieldChange {
                    field,
                    old: None,
                    new,
                })
                .collect();
            PlanItem {
                sourced_id: p.sourced_id.clone(),
                user_id: None,
                outcome: Outcome::Created,
                reason: Reason::NewPerson,
                changes,
                new_account: Some(NewAccount {
                    user_type: if input.config.field_enabled(Field::Type) {
                        user_type
                    } else {
                        UserType::Other
                    },
                    access: Access::Requestor,
                    active: p.active,
                }),
                link: Some(LinkWrite {
                    rule: MatchRule::Created,
                    record_hash: hash,
                    is_new: true,
                }),
                planned_revision: None,
            }
        }
        Correlation::Linked(user_id) => {
            let link = dir.link(&p.sourced_id);
            let Some(user) = dir.user(user_id) else {
                // The link points at an account the view does not hold: nothing safe to do.
                return skipped(p, Some(user_id), Reason::NoChange);
            };
            if let Some(l) = link
                && l.record_hash == hash
                && l.synced_revision == user.revision
            {
                return PlanItem {
                    sourced_id: p.sourced_id.clone(),
                    user_id: Some(user_id),
                    outcome: Outcome::Unchanged,
                    reason: Reason::NoChange,
                    changes: Vec::new(),
                    new_account: None,
                    link: None,
                    planned_revision: Some(user.revision),
                };
            }
            let changes = field_changes(input, user, desired(input.source, p, user_type));
            let rule = link.map_or(MatchRule::Manual, |l| l.rule);
            PlanItem {
                sourced_id: p.sourced_id.clone(),
                user_id: Some(user_id),
                outcome: if changes.is_empty() {
                    Outcome::Unchanged
                } else {
                    Outcome::Updated
                },
                reason: if changes.is_empty() {
                    Reason::NoChange
                } else {
                    Reason::FieldsChanged
                },
                changes,
                new_account: None,
                link: Some(LinkWrite {
                    rule,
                    record_hash: hash,
                    is_new: false,
                }),
                planned_revision: Some(user.revision),
            }
        }
        Correlation::Matched {
            user: user_id,
            rule,
            key,
        } => {
            let Some(user) = dir.user(user_id) else {
                return skipped(p, None, Reason::NewPerson);
            };
            let changes = field_changes(input, user, desired(input.source, p, user_type));
            PlanItem {
                sourced_id: p.sourced_id.clone(),
                user_id: Some(user_id),
                outcome: Outcome::Linked,
                reason: Reason::Matched { rule, key },
                changes,
                new_account: None,
                link: Some(LinkWrite {
                    rule,
                    record_hash: hash,
                    is_new: true,
                }),
                planned_revision: Some(user.revision),
            }
        }
    }
}
