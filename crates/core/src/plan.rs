//! A plan: every change a sync would make, each with the rule that decided it. Plans are
//! data (serde), so a dry run's report, a held run's approval and a run's history share
//! one shape. [`crate::planner`] computes them.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::directory::{Access, AccountId, Field, MatchKey, MatchRule, UserType};
use crate::hash_index;
use crate::roster::{GroupSpec, OrgInfo, Pairs, Roster, RosterMemo, SessionInfo};
use crate::settings::{Config, SourceConfig};
use crate::sis::{Fnv, SisPerson};
use crate::texts::Texts;

/// Full pulls see everyone (and may, later, deactivate by absence); deltas see changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncKind {
    Full,
    Delta,
    User,
    /// One write an identity provider pushed to `/scim/v2` (a SCIM connection's run).
    Scim,
    /// A push of the directory to a SCIM target (a target's run).
    Push,
}

impl SyncKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Full => "full",
            SyncKind::Delta => "delta",
            SyncKind::User => "user",
            SyncKind::Scim => "scim",
            SyncKind::Push => "push",
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
    Disputed(Box<Dispute>),
    /// Several SIS people match the same account.
    ClaimedBySeveral {
        user: AccountId,
        sourced_ids: Vec<String>,
    },
    /// The matching account is already linked to another SIS person of this source.
    LinkedToAnother { user: AccountId, sourced_id: String },
    /// A new account would take an email another account or person already has.
    EmailInUse(Box<EmailTaken>),
    /// An update or a creation would give this account an email or username another
    /// account has: that change is not made (an update's other changes are), and a
    /// review case asks whether the two accounts are one person (merge them) or not
    /// (keep them apart).
    IdentityTaken {
        field: Field,
        value: String,
        user: AccountId,
    },
    /// A new account would take an email or username that another SIS person of this run
    /// takes first (the people are planned by sourcedId): this one is skipped, and a
    /// review case asks whether the two are one person (the SIS lists them twice: ignore
    /// this one) or not (keep them apart). Code `identity_taken`, like the above.
    IdentityTakenInRun(Box<TakenInRun>),
    /// An email or username another account has, which an admin decided is another
    /// person's (*keep apart* on an `identity_taken` review case): the value is still not
    /// written (no two active accounts share one), and no case opens again for the pair.
    KeptApart {
        field: Field,
        value: String,
        user: AccountId,
    },
    /// The role's import switch is off.
    CategoryNotImported { role: String, category: String },
    /// No role the standard defines (missing, or a vendor `ext:` role).
    NoImportableRole { role: Option<String> },
    /// Disabled or `tobedeleted`, and inactive people are not imported.
    InactiveNotImported,
    /// Nothing to make an account from.
    NoEmailOrUsername,
    /// An admin removed this person's link to the account: not linked again
    /// automatically.
    LinkRefused { user: AccountId },
    /// The SIS says the person is `tobedeleted` or disabled.
    InactiveInSis { status: String, enabled: bool },
    /// Missing from complete full pulls this many times in a row.
    AbsentFromCompletePull { misses: u32 },
    /// Missing from a complete full pull, not yet as often as deactivation needs.
    Missing { misses: u32, needed: u32 },
    /// Back in the SIS within the grace period after deactivation.
    Returned { days: i64 },
    /// Back in the SIS after the grace period: a new account, the old one left as it is.
    ReturnedAfterGrace { old_user: AccountId, days: i64 },
    /// An agent's or admin's access is not lowered by the sync (nor are they deactivated)
    /// unless *Allow non-agent role downgrades* is on.
    ProtectedAccess { access: Access },
    /// The SIS's access level for the person changed (guardian logins, type).
    AccessChanged,
    /// The SIS gave a linked person a new sourcedId (the old one is gone from this
    /// complete pull, the person still matches): the link moved, nothing created.
    Rekeyed {
        old_sourced_id: String,
        rule: MatchRule,
    },
    /// An admin resolved this person's review case: skip them.
    IgnoredByAdmin,
    /// An admin resolved this person's review case: make a new account.
    CreatedByDecision,
    /// An account source's identity that matched no account: a new account.
    NewIdentity { provider: String },
    /// An account source's identity changed (or its account's provider is set).
    IdentityChanged { provider: String },
    /// Suspended in the identity provider, and no account matched: none is made.
    SuspendedNotImported { provider: String },
    /// A guest of the identity provider's tenant: not one of the district's people.
    GuestNotImported { provider: String },
    /// Suspended in the identity provider: the account is deactivated.
    SuspendedInProvider { provider: String },
    /// Gone from the identity provider (a complete read no longer lists it, or a delta
    /// says it was deleted): the account is deactivated, or was inactive already.
    GoneFromProvider { provider: String },
    /// Suspended or gone (`state`) in the identity provider, but the account stays as it
    /// is: `why` is `sis` (a SIS source links it and decides) or `never` (the source's
    /// `deactivate = "never"`).
    NotDeactivated(Box<KeptActive>),
    /// A push: the target had no such user; it was created.
    PushedNew { target: String },
    /// A push: the target had the user already (found by `by`, `externalId`, `userName`
    /// or `emails.value`, equal to `key`); it was adopted, not duplicated.
    PushAdopted(Box<Adoption>),
    /// A push: the account's pushed attributes or state changed since the last push.
    PushChanged { target: String },
    /// A push: the account left the target's selection (another type or location,
    /// merged, unlinked): deactivated there.
    PushLeft { target: String },
    /// A push: the target refused the request or stopped answering; the account is
    /// tried again next push.
    PushFailed(Box<PushFailure>),
    /// A push: several users on the target match the account (by `by` = `key`): none is
    /// adopted and none created; an admin decides on the target.
    PushAmbiguous(Box<Ambiguity>),
    /// A push: the account has neither email nor username to make the `userName` of.
    PushNoUserName { target: String },
    /// A push: the group is gone here (the SIS no longer has it): deleted on the target.
    PushGroupGone { target: String },
}

/// What [`Reason::Disputed`] says (boxed: a rare reason should not size every item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    pub rule: MatchRule,
    pub key: String,
    pub candidates: Vec<AccountId>,
}

/// What [`Reason::EmailInUse`] says (boxed: a rare reason should not size every item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailTaken {
    pub email: String,
    pub user: Option<AccountId>,
    pub sourced_id: Option<String>,
}

/// What [`Reason::IdentityTakenInRun`] says (boxed: a rare reason should not size every item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakenInRun {
    pub field: Field,
    pub value: String,
    pub sourced_id: String,
}

/// What [`Reason::NotDeactivated`] says (boxed: a rare reason should not size every item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptActive {
    pub provider: String,
    pub state: String,
    pub why: String,
}

/// What [`Reason::PushAdopted`] says (boxed: a rare reason should not size every item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adoption {
    pub target: String,
    pub by: String,
    pub key: String,
}

/// What [`Reason::PushFailed`] says (boxed: a rare reason should not size every item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushFailure {
    pub target: String,
    pub detail: String,
}

/// What [`Reason::PushAmbiguous`] says (boxed: a rare reason should not size every item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ambiguity {
    pub target: String,
    pub by: String,
    pub key: String,
    pub remote_ids: Vec<String>,
}

impl Reason {
    /// Whether the reason is a matching dispute a person should resolve (a review case).
    pub fn needs_review(&self) -> bool {
        matches!(
            self,
            Reason::Disputed(_)
                | Reason::ClaimedBySeveral { .. }
                | Reason::LinkedToAnother { .. }
                | Reason::IdentityTaken { .. }
                | Reason::IdentityTakenInRun(_)
        )
    }

    pub fn code(&self) -> &'static str {
        match self {
            Reason::NewPerson => "new_person",
            Reason::Matched { .. } => "matched",
            Reason::FieldsChanged => "fields_changed",
            Reason::NoChange => "no_change",
            Reason::Disputed(_) => "disputed",
            Reason::ClaimedBySeveral { .. } => "claimed_by_several",
            Reason::LinkedToAnother { .. } => "linked_to_another",
            Reason::EmailInUse(_) => "email_in_use",
            Reason::IdentityTaken { .. } | Reason::IdentityTakenInRun(_) => "identity_taken",
            Reason::KeptApart { .. } => "kept_apart",
            Reason::CategoryNotImported { .. } => "category_not_imported",
            Reason::NoImportableRole { .. } => "no_importable_role",
            Reason::InactiveNotImported => "inactive_not_imported",
            Reason::NoEmailOrUsername => "no_email_or_username",
            Reason::LinkRefused { .. } => "link_refused",
            Reason::InactiveInSis { .. } => "inactive_in_sis",
            Reason::AbsentFromCompletePull { .. } => "absent_from_complete_pull",
            Reason::Missing { .. } => "missing",
            Reason::Returned { .. } => "returned",
            Reason::ReturnedAfterGrace { .. } => "returned_after_grace",
            Reason::ProtectedAccess { .. } => "protected_access",
            Reason::AccessChanged => "access_changed",
            Reason::Rekeyed { .. } => "rekeyed",
            Reason::IgnoredByAdmin => "ignored_by_admin",
            Reason::CreatedByDecision => "created_by_decision",
            Reason::NewIdentity { .. } => "new_identity",
            Reason::IdentityChanged { .. } => "identity_changed",
            Reason::SuspendedNotImported { .. } => "suspended_not_imported",
            Reason::GuestNotImported { .. } => "guest_not_imported",
            Reason::SuspendedInProvider { .. } => "suspended_in_provider",
            Reason::GoneFromProvider { .. } => "gone_from_provider",
            Reason::NotDeactivated(_) => "not_deactivated",
            Reason::PushedNew { .. } => "pushed_new",
            Reason::PushAdopted(_) => "push_adopted",
            Reason::PushChanged { .. } => "push_changed",
            Reason::PushLeft { .. } => "push_left",
            Reason::PushFailed(_) => "push_failed",
            Reason::PushAmbiguous(_) => "push_ambiguous",
            Reason::PushNoUserName { .. } => "push_no_user_name",
            Reason::PushGroupGone { .. } => "push_group_gone",
        }
    }
}

fn ids(v: &[AccountId]) -> String {
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
            Reason::Disputed(d) => write!(
                f,
                "several accounts match by {} ({}): {}; link one by hand",
                rule_words(d.rule),
                d.key,
                ids(&d.candidates)
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
            Reason::IdentityTaken { field, value, user } => write!(
                f,
                "{} not set to {value}: account #{user} has it already; if the two accounts are one person, merge them, else keep them apart",
                field.as_str()
            ),
            Reason::IdentityTakenInRun(t) => write!(
                f,
                "no account made: {} {} is also SIS person {}'s, whose account this run makes; if the two are one person (the SIS lists them twice), ignore this one and fix the SIS, else keep them apart",
                t.field.as_str(),
                t.value,
                t.sourced_id
            ),
            Reason::KeptApart { field, value, user } => write!(
                f,
                "{} not set to {value}: account #{user} has it, and an admin decided the two are different people (kept apart)",
                field.as_str()
            ),
            Reason::EmailInUse(t) => match (&t.user, &t.sourced_id, &t.email) {
                (Some(u), _, email) => write!(
                    f,
                    "cannot create an account: {email} belongs to account #{u}"
                ),
                (None, Some(s), email) => write!(
                    f,
                    "cannot create an account: {email} is also the email of SIS person {s} in this run"
                ),
                (None, None, email) => write!(f, "cannot create an account: {email} is in use"),
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
            Reason::LinkRefused { user } => write!(
                f,
                "an admin removed this person's link to account #{user}; link by hand to link again"
            ),
            Reason::InactiveInSis { status, enabled } => match (status.as_str(), enabled) {
                ("active", false) => f.write_str("disabled in the SIS (enabledUser = false)"),
                (s, _) => write!(f, "{s} in the SIS"),
            },
            Reason::AbsentFromCompletePull { misses } => {
                write!(f, "missing from {misses} complete full pull(s) in a row")
            }
            Reason::Missing { misses, needed } => write!(
                f,
                "missing from a complete full pull ({misses} of {needed} before deactivation)"
            ),
            Reason::Returned { days } => {
                write!(
                    f,
                    "back in the SIS {days} day(s) after deactivation: same account"
                )
            }
            Reason::ReturnedAfterGrace { old_user, days } => write!(
                f,
                "back in the SIS {days} day(s) after deactivation, past the grace period: a new account (the old one, #{old_user}, stays inactive)"
            ),
            Reason::ProtectedAccess { access } => write!(
                f,
                "the account has {access} access: the sync does not lower it or deactivate it unless Allow non-agent role downgrades is on"
            ),
            Reason::AccessChanged => f.write_str("access level follows the SIS"),
            Reason::Rekeyed {
                old_sourced_id,
                rule,
            } => write!(
                f,
                "the SIS gave this person a new sourcedId (was {old_sourced_id}, matched by {}): the link moved",
                rule_words(*rule)
            ),
            Reason::IgnoredByAdmin => {
                f.write_str("an admin chose to ignore this person (review case)")
            }
            Reason::CreatedByDecision => {
                f.write_str("an admin chose a new account for this person (review case)")
            }
            Reason::NewIdentity { provider } => {
                write!(f, "new in {provider}; no existing account matched")
            }
            Reason::IdentityChanged { provider } => write!(f, "changed in {provider}"),
            Reason::SuspendedNotImported { provider } => write!(
                f,
                "suspended in {provider}, and no account matched: none is made"
            ),
            Reason::SuspendedInProvider { provider } => write!(f, "suspended in {provider}"),
            Reason::GuestNotImported { provider } => write!(
                f,
                "a guest of the {provider} tenant (userType Guest), not one of the district's people: not linked, no account made"
            ),
            Reason::GoneFromProvider { provider } => write!(
                f,
                "gone from {provider} (no longer listed by a complete read, or deleted there)"
            ),
            Reason::NotDeactivated(k) => match (k.why.as_str(), &k.state, &k.provider) {
                ("sis", state, provider) => write!(
                    f,
                    "{state} in {provider}, but a SIS source links the account: the SIS decides whether it is active"
                ),
                (_, state, provider) => write!(
                    f,
                    "{state} in {provider}; the source's deactivate = \"never\" leaves the account as it is"
                ),
            },
            Reason::PushedNew { target } => {
                write!(f, "not on target {target} yet: created there")
            }
            Reason::PushAdopted(a) => write!(
                f,
                "target {} had this user already ({} {}): adopted, not duplicated",
                a.target, a.by, a.key
            ),
            Reason::PushChanged { target } => {
                write!(f, "changed since the last push to target {target}")
            }
            Reason::PushLeft { target } => write!(
                f,
                "no longer one of the accounts target {target} is sent (type, location, link or merge): deactivated there"
            ),
            Reason::PushFailed(p) => {
                write!(
                    f,
                    "target {}: {}; tried again next push",
                    p.target, p.detail
                )
            }
            Reason::PushAmbiguous(a) => write!(
                f,
                "several users on target {} match ({} {}: {}): none adopted, none created; remove or fix the duplicates there",
                a.target,
                a.by,
                a.key,
                a.remote_ids.join(", ")
            ),
            Reason::PushGroupGone { target } => write!(
                f,
                "the group is gone here (the SIS no longer has it): deleted on target {target}"
            ),
            Reason::PushNoUserName { target } => write!(
                f,
                "no email and no username to give target {target} as userName: not pushed"
            ),
        }
    }
}

fn rule_words(r: MatchRule) -> &'static str {
    match r {
        MatchRule::Created => "creation",
        MatchRule::Alias => "an old email or username (alias)",
        MatchRule::Email => "email",
        MatchRule::AppendDomain => "username@domain",
        MatchRule::Username => "sign-in name (username)",
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

/// One of a [`Changes`]'s changes, borrowed; serialized as a [`FieldChange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Change<'a> {
    pub field: Field,
    pub old: Option<&'a str>,
    pub new: Option<&'a str>,
}

impl Change<'_> {
    pub fn to_field_change(self) -> FieldChange {
        FieldChange {
            field: self.field,
            old: self.old.map(str::to_owned),
            new: self.new.map(str::to_owned),
        }
    }
}

/// A plan item's field changes, packed: each change's field and where its values end,
/// and the values end to end in one string. A first import holds one item a person with
/// ten or so changes each: as `FieldChange`s that is 56 bytes and a `String` a change.
/// Serialized (a held plan, a run item) as a list of [`FieldChange`]s.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Changes {
    entries: Box<[Entry]>,
    text: Box<str>,
}

/// A change's field, whether it has an old and a new value, and where they end.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    field: Field,
    has_old: bool,
    has_new: bool,
    old_end: u32,
    new_end: u32,
}

impl Changes {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> ChangesIter<'_> {
        ChangesIter {
            changes: self,
            next: 0,
        }
    }

    /// Adds a change at the end (the whole list is packed again: items have a dozen at
    /// most).
    pub fn push(&mut self, change: FieldChange) {
        let mut all = self.to_vec();
        all.push(change);
        *self = Changes::from(all);
    }

    pub fn to_vec(&self) -> Vec<FieldChange> {
        self.iter().map(Change::to_field_change).collect()
    }
}

impl From<Vec<FieldChange>> for Changes {
    fn from(changes: Vec<FieldChange>) -> Changes {
        changes.into_iter().collect()
    }
}

impl FromIterator<FieldChange> for Changes {
    fn from_iter<I: IntoIterator<Item = FieldChange>>(changes: I) -> Changes {
        let mut entries = Vec::new();
        let mut text = String::new();
        // Values past 4 GiB cannot come from a SIS; their ends saturate rather than wrap.
        let end = |text: &String| u32::try_from(text.len()).unwrap_or(u32::MAX);
        for c in changes {
            text.push_str(c.old.as_deref().unwrap_or(""));
            let old_end = end(&text);
            text.push_str(c.new.as_deref().unwrap_or(""));
            entries.push(Entry {
                field: c.field,
                has_old: c.old.is_some(),
                has_new: c.new.is_some(),
                old_end,
                new_end: end(&text),
            });
        }
        Changes {
            entries: entries.into_boxed_slice(),
            text: text.into_boxed_str(),
        }
    }
}

/// The changes of a [`Changes`], in order.
#[derive(Clone)]
pub struct ChangesIter<'a> {
    changes: &'a Changes,
    next: usize,
}

impl<'a> Iterator for ChangesIter<'a> {
    type Item = Change<'a>;

    fn next(&mut self) -> Option<Change<'a>> {
        let entries = &self.changes.entries;
        let e = entries.get(self.next)?;
        let start = match self.next {
            0 => 0,
            i => entries[i - 1].new_end as usize,
        };
        self.next += 1;
        let text = &self.changes.text;
        Some(Change {
            field: e.field,
            old: e.has_old.then(|| &text[start..e.old_end as usize]),
            new: e
                .has_new
                .then(|| &text[e.old_end as usize..e.new_end as usize]),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.changes.entries.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for ChangesIter<'_> {}

impl<'a> IntoIterator for &'a Changes {
    type Item = Change<'a>;
    type IntoIter = ChangesIter<'a>;

    fn into_iter(self) -> ChangesIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq<Vec<FieldChange>> for Changes {
    fn eq(&self, other: &Vec<FieldChange>) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .all(|(a, b)| a.to_field_change() == *b)
    }
}

impl PartialEq<Changes> for Vec<FieldChange> {
    fn eq(&self, other: &Changes) -> bool {
        other == self
    }
}

impl Serialize for Changes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Changes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Changes, D::Error> {
        Vec::<FieldChange>::deserialize(d).map(Changes::from)
    }
}

/// The account a `Created` item makes (its fields are in `changes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    pub user_type: UserType,
    pub access: Access,
    pub active: bool,
}

/// A link to write, whole: a new one (which replaces any old link of the same person), or
/// the new state of an existing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkWrite {
    pub rule: MatchRule,
    pub record_hash: u64,
    pub is_new: bool,
    pub misses: u32,
    pub deactivated_at: Option<Timestamp>,
    pub previous_access: Option<Access>,
}

impl LinkWrite {
    /// The link of an account a run creates for the record hashed `record_hash`.
    pub fn created(record_hash: u64) -> LinkWrite {
        LinkWrite {
            rule: MatchRule::Created,
            record_hash,
            is_new: true,
            misses: 0,
            deactivated_at: None,
            previous_access: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanItem {
    pub sourced_id: String,
    /// The account acted on; `None` for a creation.
    pub user_id: Option<AccountId>,
    pub outcome: Outcome,
    pub reason: Reason,
    pub changes: Changes,
    /// Active → inactive or back: (old, new).
    pub active: Option<(bool, bool)>,
    /// Access level change: (old, new).
    pub access: Option<(Access, Access)>,
    pub new_account: Option<NewAccount>,
    pub link: Option<LinkWrite>,
    /// The account's revision when planned, to detect writes between plan and apply.
    pub planned_revision: Option<i64>,
    /// An old account this item supersedes (a person back after the grace period): never
    /// matched automatically again, by anyone.
    pub retires: Option<AccountId>,
    /// The old sourcedId whose link this item takes over (the SIS gave the person a new
    /// id: a rekey). That link is removed.
    pub replaces: Option<String>,
    /// The sign-in provider the account gets (an account source's `google` or
    /// `microsoft`); `None` leaves it (a SIS creation's is `sis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Addresses (match keys) the account is also known by: kept as email aliases, so
    /// the SIS sync finds the account by any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<MatchKey>,
}

impl PlanItem {
    /// An item that changes nothing yet, for the planner to fill in.
    pub fn new(
        sourced_id: &str,
        user_id: Option<AccountId>,
        outcome: Outcome,
        reason: Reason,
    ) -> PlanItem {
        PlanItem {
            sourced_id: sourced_id.to_owned(),
            user_id,
            outcome,
            reason,
            changes: Changes::default(),
            active: None,
            access: None,
            new_account: None,
            link: None,
            planned_revision: None,
            retires: None,
            replaces: None,
            provider: None,
            aliases: Vec::new(),
        }
    }

    /// The key of a skip the import settings make ([`ListedSkips`]): the person, the
    /// account they are linked to, and the reason with its details. `None` for any other
    /// item, and for one that writes anything.
    pub fn listed_skip_key(&self) -> Option<u64> {
        if self.outcome != Outcome::Skipped || self.writes() {
            return None;
        }
        Some(
            self.reason
                .settings_skip()?
                .key(&self.sourced_id, self.user_id),
        )
    }

    /// Whether applying the item writes anything.
    pub fn writes(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Created
                | Outcome::Linked
                | Outcome::Updated
                | Outcome::Deactivated
                | Outcome::Reactivated
        ) || self.link.is_some()
            || !self.changes.is_empty()
            || self.active.is_some()
            || self.access.is_some()
            || self.retires.is_some()
            || self.replaces.is_some()
            || self.provider.is_some()
            || !self.aliases.is_empty()
    }
}

/// What a run did, counted by item: every item counts under exactly one outcome, so each
/// number is exactly the items listed under it (`created` + `linked` + `updated` +
/// `unchanged` + `skipped` + `deactivated` + `reactivated` + `errors` = `seen`, people
/// missing from a full pull added), but for `unchanged`, never listed, and the
/// `skipped_listed_before` of `skipped` ([`ListedSkips`]). A linked item whose fields also
/// changed counts as `linked` (its changes are on the item). `rekeyed` counts the `linked`
/// items whose link moved to a new sourcedId (reason `rekeyed`); `groups` the groups
/// written.
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
    /// Groups created or changed.
    #[serde(default)]
    pub groups: u64,
    /// Links moved to a person's new sourcedId (the SIS re-keyed them).
    #[serde(default)]
    pub rekeyed: u64,
    /// Of `skipped`, the people skipped as an earlier run listed them ([`ListedSkips`]):
    /// counted, not listed again.
    #[serde(default)]
    pub skipped_listed_before: u64,
}

impl Counts {
    /// The count of `outcome`.
    pub fn slot(&mut self, outcome: Outcome) -> &mut u64 {
        match outcome {
            Outcome::Created => &mut self.created,
            Outcome::Linked => &mut self.linked,
            Outcome::Updated => &mut self.updated,
            Outcome::Unchanged => &mut self.unchanged,
            Outcome::Skipped => &mut self.skipped,
            Outcome::Deactivated => &mut self.deactivated,
            Outcome::Reactivated => &mut self.reactivated,
            Outcome::Error => &mut self.errors,
        }
    }

    /// Counts one item of `outcome` (`rekeyed` when its link moved to a new sourcedId).
    pub fn add(&mut self, outcome: Outcome, rekeyed: bool) {
        *self.slot(outcome) += 1;
        if rekeyed {
            self.rekeyed += 1;
        }
    }

    /// Moves one item counted under `outcome` to `errors` (refused when applied).
    pub fn refuse(&mut self, outcome: Outcome, rekeyed: bool) {
        let n = self.slot(outcome);
        *n = n.saturating_sub(1);
        if rekeyed {
            self.rekeyed = self.rekeyed.saturating_sub(1);
        }
        self.errors += 1;
    }
}

/// A skip the import settings make, borrowed: the reason an item gives it
/// ([`SettingsSkip::reason`]), or its key ([`SettingsSkip::key`]) without making the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsSkip<'a> {
    /// [`Reason::CategoryNotImported`].
    CategoryNotImported { role: &'a str, category: &'a str },
    /// [`Reason::NoImportableRole`].
    NoImportableRole { role: Option<&'a str> },
    /// [`Reason::InactiveNotImported`].
    InactiveNotImported,
}

impl SettingsSkip<'_> {
    /// The key of this skip of `sourced_id`, linked to `user` ([`ListedSkips`]).
    pub fn key(self, sourced_id: &str, user: Option<AccountId>) -> u64 {
        let mut h = Fnv::new();
        match self {
            SettingsSkip::CategoryNotImported { role, category } => {
                h.u64(0);
                h.str(role);
                h.str(category);
            }
            SettingsSkip::NoImportableRole { role } => {
                h.u64(1);
                h.opt(role);
            }
            SettingsSkip::InactiveNotImported => h.u64(2),
        }
        h.str(sourced_id);
        h.u64(user.map_or(0, |u| u.0.cast_unsigned()));
        hash_index::spread(h.finish())
    }

    /// The reason a plan item gives this skip.
    pub fn reason(self) -> Reason {
        match self {
            SettingsSkip::CategoryNotImported { role, category } => Reason::CategoryNotImported {
                role: role.to_owned(),
                category: category.to_owned(),
            },
            SettingsSkip::NoImportableRole { role } => Reason::NoImportableRole {
                role: role.map(str::to_owned),
            },
            SettingsSkip::InactiveNotImported => Reason::InactiveNotImported,
        }
    }
}

impl Reason {
    /// This reason as a skip the import settings make; `None` for any other.
    pub fn settings_skip(&self) -> Option<SettingsSkip<'_>> {
        Some(match self {
            Reason::CategoryNotImported { role, category } => {
                SettingsSkip::CategoryNotImported { role, category }
            }
            Reason::NoImportableRole { role } => SettingsSkip::NoImportableRole {
                role: role.as_deref(),
            },
            Reason::InactiveNotImported => SettingsSkip::InactiveNotImported,
            _ => return None,
        })
    }
}

/// The people a source's last applied complete full pull skipped by its import settings
/// (a role not imported, no role the standard defines, inactive), each as the hash of
/// their skip ([`PlanItem::listed_skip_key`]): a run lists such a skip once, and the full
/// pulls after it count the same skip of the same person without listing it again. A
/// district that does not import guardians would otherwise list two million people a
/// day, each skipped as the day before. Sorted, each once; ~8 bytes a person.
///
/// A person whose skip changed (another role, a linked account, another reason) hashes
/// differently and is listed again. Two different skips hashing the same (64 bits: about
/// one chance in ten million at two million people) would leave one change unlisted,
/// though counted.
///
/// The keys are mixed (SplitMix64's finalizer), so a lookup reads the slot of its leading
/// bits and a few keys beside it: a binary search over two million keys missed the cache
/// at most of its 21 steps (0.8 s of a 3 M district's no-change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSkips {
    /// Sorted, each once.
    keys: Vec<u64>,
    /// Where each run of leading bits starts among the keys.
    starts: Vec<u32>,
    bits: u32,
}

impl Default for ListedSkips {
    fn default() -> ListedSkips {
        ListedSkips::new(Vec::new())
    }
}

impl ListedSkips {
    pub fn new(mut keys: Vec<u64>) -> ListedSkips {
        keys.sort_unstable();
        keys.dedup();
        keys.shrink_to_fit();
        let (starts, bits) = hash_index::bucket_starts(keys.len(), |i| keys[i]);
        ListedSkips { keys, starts, bits }
    }

    pub fn contains(&self, key: u64) -> bool {
        hash_index::near(&self.keys, &self.starts, self.bits, key)
            .binary_search(&key)
            .is_ok()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys as stored: 8 bytes each, little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.keys.iter().flat_map(|k| k.to_le_bytes()).collect()
    }

    /// The keys [`ListedSkips::to_bytes`] stored; `None` for bytes that are not a whole
    /// number of keys.
    pub fn from_bytes(bytes: &[u8]) -> Option<ListedSkips> {
        let chunks = bytes.chunks_exact(8);
        if !chunks.remainder().is_empty() {
            return None;
        }
        let keys = chunks
            .map(|c| {
                let mut k = [0u8; 8];
                k.copy_from_slice(c);
                u64::from_le_bytes(k)
            })
            .collect();
        Some(ListedSkips::new(keys))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub source: String,
    pub kind: SyncKind,
    pub complete: bool,
    /// Every person seen, sorted by sourcedId (then the linked people missing from the
    /// pull). Unchanged people are counted, and listed only when their link needs a write.
    pub items: Vec<PlanItem>,
    pub counts: Counts,
    /// The SIS side of every person whose record is new or changed (the SIS card).
    pub sis_records: Vec<SisRecord>,
    /// The SIS side of every person whose item needs review (a disputed match): the
    /// evidence of their review case.
    #[serde(default)]
    pub review: Vec<SisRecord>,
    /// Groups, relationships and calendars: `None` when this run leaves them alone.
    pub roster: Option<RosterPlan>,
    /// The newest `dateLastModified` the pull saw (the server's clock): stored on apply
    /// as the next delta's starting point. Set by the engine, not the planner.
    pub watermark: Option<Timestamp>,
    /// People with an open review case whom a complete full pull no longer has: their
    /// cases close (nothing is left to decide).
    #[serde(default)]
    pub gone_cases: Vec<String>,
    /// The skips a complete full pull made, kept once the plan is applied (the next full
    /// pulls list only the skips not among them); `None` leaves the source's as they are
    /// (not a complete full pull, or the same skips).
    /// A held plan does not keep them: the run that follows its approval lists its new
    /// skips again.
    #[serde(skip)]
    pub listed_skips: Option<ListedSkips>,
}

/// What the directory keeps of a SIS person, for the user page's SIS card: the fields,
/// owned and open. A held plan stores its records in this shape; [`SisRecord::new`] packs
/// one and [`SisRecord::fields`] gives it back.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecordFields {
    pub sourced_id: String,
    pub role: Option<String>,
    pub status: String,
    pub enabled: bool,
    pub username: String,
    pub email: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub identifier: Option<String>,
    pub grade: Option<String>,
    pub primary_org: Option<String>,
    pub location: Option<String>,
    pub homeroom: Option<String>,
    /// Class sourcedIds (known on full pulls and single-user syncs).
    pub classes: Option<Vec<String>>,
    pub modified: Option<Timestamp>,
}

/// A record's strings, in the order they stand in its text; the classes follow.
#[derive(Clone, Copy)]
enum Card {
    SourcedId,
    Role,
    Status,
    Username,
    Email,
    GivenName,
    FamilyName,
    Identifier,
    Grade,
    PrimaryOrg,
    Location,
    Homeroom,
}

/// How many strings every record has before its classes.
pub(crate) const CARD_SLOTS: usize = Card::Homeroom as usize + 1;

/// What the directory keeps of a SIS person, for the user page's SIS card, packed like a
/// [`SisPerson`] (a first import plans one for everyone): read through the accessors.
/// Serialized as [`RecordFields`], so held plans keep their shape.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RecordFields", into = "RecordFields")]
pub struct SisRecord {
    /// The [`Card`] strings, then the classes.
    texts: Texts,
    /// Whether the classes are known (`None` on a delta).
    has_classes: bool,
    enabled: bool,
    modified: Option<Timestamp>,
}

impl SisRecord {
    pub fn new(f: RecordFields) -> SisRecord {
        SisRecord::pack(
            [
                Some(f.sourced_id.as_str()),
                f.role.as_deref(),
                Some(f.status.as_str()),
                Some(f.username.as_str()),
                f.email.as_deref(),
                Some(f.given_name.as_str()),
                Some(f.family_name.as_str()),
                f.identifier.as_deref(),
                f.grade.as_deref(),
                f.primary_org.as_deref(),
                f.location.as_deref(),
                f.homeroom.as_deref(),
            ],
            f.classes.as_ref().map(|c| c.iter().map(String::as_str)),
            f.enabled,
            f.modified,
        )
    }

    /// Packs a record from borrowed values: the planner's way, with no owned copy between.
    pub(crate) fn pack<'s>(
        slots: [Option<&str>; CARD_SLOTS],
        classes: Option<impl Iterator<Item = &'s str> + Clone>,
        enabled: bool,
        modified: Option<Timestamp>,
    ) -> SisRecord {
        let has_classes = classes.is_some();
        SisRecord {
            texts: Texts::new(&slots, classes.into_iter().flatten()),
            has_classes,
            enabled,
            modified,
        }
    }

    /// The fields, owned.
    pub fn fields(&self) -> RecordFields {
        let own = |s: Option<&str>| s.map(str::to_owned);
        RecordFields {
            sourced_id: self.sourced_id().to_owned(),
            role: own(self.role()),
            status: self.status().to_owned(),
            enabled: self.enabled,
            username: self.username().to_owned(),
            email: own(self.email()),
            given_name: self.given_name().to_owned(),
            family_name: self.family_name().to_owned(),
            identifier: own(self.identifier()),
            grade: own(self.grade()),
            primary_org: own(self.primary_org()),
            location: own(self.location()),
            homeroom: own(self.homeroom()),
            classes: self.classes().map(|c| c.map(str::to_owned).collect()),
            modified: self.modified,
        }
    }

    fn at(&self, slot: Card) -> &str {
        self.texts.get(slot as usize)
    }

    fn opt(&self, slot: Card) -> Option<&str> {
        self.texts.opt(slot as usize)
    }

    pub fn sourced_id(&self) -> &str {
        self.at(Card::SourcedId)
    }

    pub fn role(&self) -> Option<&str> {
        self.opt(Card::Role)
    }

    pub fn status(&self) -> &str {
        self.at(Card::Status)
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn username(&self) -> &str {
        self.at(Card::Username)
    }

    pub fn email(&self) -> Option<&str> {
        self.opt(Card::Email)
    }

    pub fn given_name(&self) -> &str {
        self.at(Card::GivenName)
    }

    pub fn family_name(&self) -> &str {
        self.at(Card::FamilyName)
    }

    pub fn identifier(&self) -> Option<&str> {
        self.opt(Card::Identifier)
    }

    pub fn grade(&self) -> Option<&str> {
        self.opt(Card::Grade)
    }

    pub fn primary_org(&self) -> Option<&str> {
        self.opt(Card::PrimaryOrg)
    }

    pub fn location(&self) -> Option<&str> {
        self.opt(Card::Location)
    }

    pub fn homeroom(&self) -> Option<&str> {
        self.opt(Card::Homeroom)
    }

    /// Class sourcedIds (known on full pulls and single-user syncs).
    pub fn classes(&self) -> Option<impl ExactSizeIterator<Item = &str> + Clone> {
        self.has_classes
            .then(|| self.texts.range(CARD_SLOTS..self.texts.len()))
    }

    pub fn modified(&self) -> Option<Timestamp> {
        self.modified
    }
}

impl From<RecordFields> for SisRecord {
    fn from(f: RecordFields) -> SisRecord {
        SisRecord::new(f)
    }
}

impl From<SisRecord> for RecordFields {
    fn from(r: SisRecord) -> RecordFields {
        r.fields()
    }
}

impl fmt::Debug for SisRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fields().fmt(f)
    }
}

/// Changes to groups, guardian relationships and calendars.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RosterPlan {
    /// Groups to create or rewrite (new, or their name or members changed).
    pub groups: Vec<GroupSpec>,
    /// This source's groups the roster no longer has.
    pub removed_groups: Vec<String>,
    /// The whole set of (guardian, student) sourcedId pairs, when it changed.
    pub relationships: Option<Pairs>,
    /// The whole set of academic sessions, when it changed.
    pub calendars: Option<Vec<SessionInfo>>,
    /// The SIS's orgs as pulled (schools for the location mappings page).
    pub orgs: Vec<OrgInfo>,
    /// What the groups and relationships were made from, for the next plan: kept once
    /// this plan is applied.
    #[serde(default)]
    pub memo: RosterMemo,
}

impl Plan {
    /// Items that write something.
    pub fn writes(&self) -> impl Iterator<Item = &PlanItem> {
        self.items.iter().filter(|i| i.writes())
    }

    /// Whether applying the plan would write nothing but the run record.
    pub fn is_empty(&self) -> bool {
        self.writes().next().is_none()
            && self.gone_cases.is_empty()
            && self.roster.as_ref().is_none_or(|r| {
                r.groups.is_empty()
                    && r.removed_groups.is_empty()
                    && r.relationships.is_none()
                    && r.calendars.is_none()
            })
    }
}

/// What a plan is computed from.
pub struct PlanInput<'a> {
    pub config: &'a Config,
    pub source: &'a SourceConfig,
    pub kind: SyncKind,
    /// Whether the pull proved itself complete. Only a complete full pull may deactivate
    /// people by their absence.
    pub complete: bool,
    pub people: &'a [SisPerson],
    /// Classes, enrollments, orgs and sessions, when the pull read them. `None` leaves
    /// homerooms, groups, relationships and calendars as they are.
    pub roster: Option<&'a Roster>,
    /// The run's time (deactivation dates, the grace period).
    pub now: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_reasons_keep_their_json_and_every_item_small() {
        let cases = [
            (
                Reason::Disputed(Box::new(Dispute {
                    rule: MatchRule::Email,
                    key: "a@x.org".into(),
                    candidates: vec![AccountId(3), AccountId(4)],
                })),
                r#"{"code":"disputed","rule":"email","key":"a@x.org","candidates":[3,4]}"#,
            ),
            (
                Reason::EmailInUse(Box::new(EmailTaken {
                    email: "a@x.org".into(),
                    user: None,
                    sourced_id: Some("s1".into()),
                })),
                r#"{"code":"email_in_use","email":"a@x.org","user":null,"sourced_id":"s1"}"#,
            ),
            (
                Reason::IdentityTakenInRun(Box::new(TakenInRun {
                    field: Field::Username,
                    value: "jdoe".into(),
                    sourced_id: "s2".into(),
                })),
                r#"{"code":"identity_taken_in_run","field":"username","value":"jdoe","sourced_id":"s2"}"#,
            ),
            (
                Reason::NotDeactivated(Box::new(KeptActive {
                    provider: "google".into(),
                    state: "gone".into(),
                    why: "sis".into(),
                })),
                r#"{"code":"not_deactivated","provider":"google","state":"gone","why":"sis"}"#,
            ),
            (
                Reason::PushAdopted(Box::new(Adoption {
                    target: "helpdesk".into(),
                    by: "userName".into(),
                    key: "jdoe".into(),
                })),
                r#"{"code":"push_adopted","target":"helpdesk","by":"userName","key":"jdoe"}"#,
            ),
            (
                Reason::PushFailed(Box::new(PushFailure {
                    target: "helpdesk".into(),
                    detail: "503".into(),
                })),
                r#"{"code":"push_failed","target":"helpdesk","detail":"503"}"#,
            ),
            (
                Reason::PushAmbiguous(Box::new(Ambiguity {
                    target: "helpdesk".into(),
                    by: "emails.value".into(),
                    key: "a@x.org".into(),
                    remote_ids: vec!["r1".into(), "r2".into()],
                })),
                r#"{"code":"push_ambiguous","target":"helpdesk","by":"emails.value","key":"a@x.org","remote_ids":["r1","r2"]}"#,
            ),
        ];
        for (reason, json) in cases {
            assert_eq!(serde_json::to_string(&reason).unwrap(), json);
            assert_eq!(serde_json::from_str::<Reason>(json).unwrap(), reason);
        }
        // A plan holds an item for every person a first import makes: the rare reasons'
        // details are boxed so they do not size every item.
        assert!(
            std::mem::size_of::<Reason>() <= 48,
            "{}",
            std::mem::size_of::<Reason>()
        );
    }

    #[test]
    fn packed_changes_keep_every_value_and_the_json_of_a_list() {
        let list = vec![
            FieldChange {
                field: Field::Email,
                old: None,
                new: Some("ana@x.org".into()),
            },
            FieldChange {
                field: Field::Phone,
                old: Some("555".into()),
                new: Some(String::new()),
            },
            FieldChange {
                field: Field::Grade,
                old: Some(String::new()),
                new: None,
            },
            FieldChange {
                field: Field::FirstName,
                old: Some("Añá".into()),
                new: Some("Ana".into()),
            },
        ];
        let mut packed = Changes::from(list.clone());
        assert_eq!(packed.len(), 4);
        assert_eq!(packed, list);
        assert_eq!(packed.to_vec(), list);
        assert_eq!(
            packed.iter().find(|c| c.field == Field::Phone),
            Some(Change {
                field: Field::Phone,
                old: Some("555"),
                new: Some("")
            })
        );
        let grade = packed.iter().find(|c| c.field == Field::Grade).unwrap();
        assert_eq!((grade.old, grade.new), (Some(""), None));
        let json = serde_json::to_string(&packed).unwrap();
        assert_eq!(json, serde_json::to_string(&list).unwrap());
        assert_eq!(serde_json::from_str::<Changes>(&json).unwrap(), packed);
        packed.push(FieldChange {
            field: Field::Homeroom,
            old: None,
            new: Some("101".into()),
        });
        assert_eq!(packed.len(), 5);
        assert_eq!(packed.iter().last().unwrap().new, Some("101"));
        assert_eq!(
            packed
                .iter()
                .take(4)
                .map(Change::to_field_change)
                .collect::<Vec<_>>(),
            list
        );
        assert!(Changes::default().is_empty());
        assert_eq!(format!("{:?}", Changes::default()), "[]");
    }

    #[test]
    fn a_record_keeps_its_fields_and_its_json_shape() {
        let f = RecordFields {
            sourced_id: "s1".into(),
            role: Some("student".into()),
            status: "active".into(),
            enabled: true,
            username: "ana".into(),
            email: None,
            given_name: "Ana".into(),
            family_name: String::new(),
            identifier: Some(String::new()),
            grade: Some("05".into()),
            primary_org: Some("o1".into()),
            location: None,
            homeroom: Some("Room 2".into()),
            classes: Some(vec!["c1".into(), "c2".into()]),
            modified: Some(Timestamp::from_second(1_700_000_000).unwrap()),
        };
        let r = SisRecord::new(f.clone());
        assert_eq!(r.fields(), f);
        assert_eq!(r.identifier(), Some(""), "an empty value is not no value");
        assert_eq!(r.location(), None);
        // A held plan's records read and write the same JSON as before they were packed.
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json, serde_json::to_value(&f).unwrap());
        assert_eq!(serde_json::from_value::<SisRecord>(json).unwrap(), r);
        let delta = SisRecord::new(RecordFields {
            classes: None,
            ..f.clone()
        });
        assert!(delta.classes().is_none());
        let none = SisRecord::new(RecordFields {
            classes: Some(Vec::new()),
            ..f
        });
        assert_eq!(
            none.classes().map(|c| c.len()),
            Some(0),
            "no classes is not unknown"
        );
    }
}
