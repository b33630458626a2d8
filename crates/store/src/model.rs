//! The rows the store hands out and takes in.

use jiff::Timestamp;
use rostersync_core::directory::{Account, AccountId, AliasKind, MatchKey, MatchRule};
use rostersync_core::guard::Trip;
use rostersync_core::plan::{Counts, FieldChange, Outcome, SyncKind};
use rostersync_core::reports::Evidence;
use serde::Serialize;

/// Defines the id of one kind of row: a number that shows and serialises as itself,
/// parses from its digits (a URL's path, a CLI argument) and goes into SQL as an
/// integer, and that no id of another kind can be passed for.
macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            Copy,
            Default,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            serde::Serialize,
            serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl From<$name> for crate::sql::Value<'_> {
            fn from(v: $name) -> Self {
                crate::sql::Value::Int(v.0)
            }
        }
    };
}
pub(crate) use row_id;

row_id! {
    /// A run's id (Sync History's numbers).
    RunId
}

row_id! {
    /// A review case's id (the review queue's numbers).
    ReviewCaseId
}

row_id! {
    /// A saved view's id (of the users list).
    SavedViewId
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Succeeded,
    Held,
    Failed,
    /// A held run an admin threw away: nothing of it was applied.
    Discarded,
    /// A held run a later run took the place of: nothing of it was applied.
    Superseded,
    /// An applied run that was reverted (`undo_run`).
    Undone,
    /// The process running it stopped (killed, crashed, shut down) before it finished;
    /// nothing of it was applied (a run applies in one transaction).
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Held => "held",
            RunStatus::Failed => "failed",
            RunStatus::Discarded => "discarded",
            RunStatus::Superseded => "superseded",
            RunStatus::Undone => "undone",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Held,
            RunStatus::Failed,
            RunStatus::Discarded,
            RunStatus::Superseded,
            RunStatus::Undone,
            RunStatus::Interrupted,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Cli,
    Console,
    Api,
    Schedule,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Cli => "cli",
            Trigger::Console => "console",
            Trigger::Api => "api",
            Trigger::Schedule => "schedule",
        }
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        [
            Trigger::Cli,
            Trigger::Console,
            Trigger::Api,
            Trigger::Schedule,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct NewRun {
    pub source: String,
    pub kind: SyncKind,
    pub trigger: Trigger,
    pub started_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct RunFinish {
    pub status: RunStatus,
    pub complete: bool,
    pub counts: Counts,
    pub error: Option<String>,
    pub finished_at: Timestamp,
    /// What the pull warned about (stored capped, see [`crate::MAX_RUN_WARNINGS`]).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: RunId,
    pub source: String,
    pub kind: SyncKind,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub complete: bool,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub counts: Counts,
    pub error: Option<String>,
    /// Why a held run is held: the safeguards its plan tripped (kept after approval).
    pub hold: Vec<Trip>,
    /// Who discarded it, what superseded it, who undid it.
    pub note: Option<String>,
    /// What the pull warned about: incomplete collections, skipped malformed rows,
    /// unreadable values, people the pull missed. Empty for runs recorded before v6.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunItemRecord {
    pub sourced_id: String,
    pub user_id: Option<AccountId>,
    pub outcome: Outcome,
    /// The reason's stable code (`disputed`, `new_person`, …).
    pub reason_code: String,
    /// The reason in words.
    pub reason: String,
    pub changes: Vec<FieldChange>,
}

/// Which of a run's items to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemFilter {
    pub outcome: Option<Outcome>,
    /// Only items with this reason code (`rekeyed`, `identity_taken`, …).
    pub reason_code: Option<String>,
}

/// A run item with the name of its account (`None` when it has no account, or the
/// account has neither name, username nor email).
#[derive(Debug, Clone)]
pub struct NamedRunItem {
    pub item: RunItemRecord,
    pub name: Option<String>,
}

/// What `apply_plan` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplySummary {
    pub counts: Counts,
    /// Items not applied because the account changed between plan and apply (counted
    /// as errors; the next sync picks them up).
    pub conflicts: u64,
}

/// A row of `accounts import`.
#[derive(Debug, Clone)]
pub struct NewAccountRow {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    pub created: u64,
    /// Emails that already had an account.
    pub existing: Vec<String>,
    /// Rows not imported because the account would share an email or username with
    /// another account (no two active accounts ever do), in row order.
    pub skipped: Vec<SkippedAccount>,
}

/// A row of an account import that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedAccount {
    /// The row's position among the rows given, from 1.
    pub row: usize,
    pub email: String,
    /// `username` or `email`: what another account (or an earlier row) has.
    pub field: String,
    pub value: String,
    /// The account that has it, if it exists already.
    pub account: Option<AccountId>,
    /// The earlier row of the same import that has it, if that is where it is.
    pub earlier_row: Option<usize>,
    /// In words: what is taken, and by whom.
    pub reason: String,
}

/// A SIS link as users see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SisRef {
    pub source: String,
    pub sourced_id: String,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: Account,
    pub sis: Option<SisRef>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl UserRecord {
    /// The account as the CLI (`users list --json`, `users show --json`) and the API
    /// print it: one shape for both.
    pub fn to_json(&self) -> serde_json::Value {
        let u = &self.user;
        serde_json::json!({
            "id": u.id,
            "username": u.username,
            "email": u.email,
            "first_name": u.first_name,
            "middle_name": u.middle_name,
            "last_name": u.last_name,
            "preferred_name": u.preferred_name,
            "type": u.user_type.as_str(),
            "access": u.access.as_str(),
            "active": u.active,
            "grade": u.grade,
            "identifier": u.identifier,
            "phone": u.phone,
            "location": u.location,
            "homeroom": u.homeroom,
            "provider": u.provider,
            "sis": self.sis,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// Filters of `users list`. Results are ordered by `sort` (then by id, in the same
/// direction); `after` and `after_key` page by that order.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub linked: Option<bool>,
    pub active: Option<bool>,
    pub user_type: Option<rostersync_core::directory::UserType>,
    /// Case-insensitive substring of name, email or username.
    pub search: Option<String>,
    /// Any spelling of a grade: `5` finds `05` and `Grade 5`, `K` finds `KG`
    /// (`rostersync_core::user_list::grade_key`).
    pub grade: Option<String>,
    /// Homeroom and location name, case-insensitive (`user_list::text_key`).
    pub homeroom: Option<String>,
    pub location: Option<String>,
    pub sort: rostersync_core::user_list::UserSort,
    /// The last account of the previous page: the next page starts after it.
    pub after: Option<AccountId>,
    /// With a sort other than id: that account's sort value (`UserSort::key_of`), `None`
    /// when it had none (such accounts come last).
    pub after_key: Option<String>,
    /// 0 means no limit.
    pub limit: u32,
}

impl UserQuery {
    /// The query of a list spec (filters and sort), from the first page.
    pub fn from_spec(spec: &rostersync_core::user_list::ListSpec, limit: u32) -> UserQuery {
        UserQuery {
            linked: spec.linked,
            active: spec.active,
            user_type: spec.user_type,
            search: spec.search.clone(),
            grade: spec.grade.clone(),
            homeroom: spec.homeroom.clone(),
            location: spec.location.clone(),
            sort: spec.sort,
            after: None,
            after_key: None,
            limit,
        }
    }

    /// Pages after `cursor`.
    pub fn starting_after(
        mut self,
        cursor: Option<rostersync_core::user_list::ListCursor>,
    ) -> UserQuery {
        self.after = cursor.as_ref().map(|c| c.id);
        self.after_key = cursor.and_then(|c| c.key);
        self
    }
}

/// A saved view of the users list: a name and the list's filters and sort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedView {
    pub id: SavedViewId,
    pub name: String,
    /// The list parameters as a JSON object of strings (`{"grade":"5","sort":"-name"}`):
    /// `user_list::ListSpec::params`.
    pub params: String,
    pub saved_by: String,
    pub saved_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevisionRecord {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
    /// `source:campus`, `admin:alice`, `sso:google`.
    pub writer: String,
    pub run: Option<RunId>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct UserCounts {
    pub users: u64,
    pub active: u64,
    pub linked: u64,
    pub unlinked_active: u64,
    /// Groups, every source's and the unmanaged ones.
    pub groups: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// The user page's SIS card: one per source the account is linked to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SisCard {
    pub source: String,
    pub sourced_id: String,
    /// The SIS record's values as last synced; `None` until a sync has seen the person
    /// (a link made by hand before the next sync).
    pub role: Option<String>,
    pub status: Option<String>,
    pub enabled: Option<bool>,
    pub identifier: Option<String>,
    pub grade: Option<String>,
    pub primary_org: Option<String>,
    /// The primary org's name, from the SIS's orgs as last pulled.
    pub primary_org_name: Option<String>,
    pub location: Option<String>,
    pub homeroom: Option<String>,
    /// Enrolled classes, in sourcedId order.
    pub classes: Vec<CardClass>,
    /// The record's username (an account source's: the sign-in name).
    pub username: Option<String>,
    /// The record's `dateLastModified` (an account source's: the last sign-in).
    pub modified: Option<Timestamp>,
    pub linked_at: Timestamp,
    pub rule: MatchRule,
    /// Consecutive complete full pulls the person has been missing from.
    pub misses: u32,
    /// When this source deactivated the account.
    pub deactivated_at: Option<Timestamp>,
    /// The account's items in this source's runs, newest first, at most 50.
    pub runs: Vec<CardRun>,
}

/// A class on the SIS card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardClass {
    pub sourced_id: String,
    /// The class group's name (the class title and its school); the sourcedId when the
    /// directory has no group for the class.
    pub title: String,
    /// The course's title.
    pub course: Option<String>,
    /// "First Last" of the class group's faculty members, by last name.
    pub teachers: Vec<String>,
}

/// One run's item for an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardRun {
    pub run: RunId,
    /// When the run started.
    pub at: Timestamp,
    pub outcome: Outcome,
    /// The reason in words.
    pub reason: String,
}

/// An account, named for lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRef {
    pub id: AccountId,
    /// "First Last", else the username or email.
    pub name: String,
    pub email: Option<String>,
}

/// An account's guardian relationships, from every source, by account id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Guardianships {
    /// The students of a guardian.
    pub students: Vec<UserRef>,
    /// The guardians of a student.
    pub guardians: Vec<UserRef>,
}

/// A SIS org (school, district …) as last pulled, with its head count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SisOrgRow {
    pub sourced_id: String,
    pub name: String,
    pub is_school: bool,
    /// Active accounts linked to this source whose primary org this is.
    pub people: u64,
}

/// A group, with its number of members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRow {
    /// The source that manages it; `None` for groups no source manages.
    pub source: Option<String>,
    /// `class:<sourcedId>` or `school:<org>:<role>`; `None` for groups no source manages.
    pub key: Option<String>,
    pub name: String,
    /// `class`, `school_role`, …
    pub kind: String,
    /// For a class: its course's title.
    pub detail: Option<String>,
    pub members: u64,
}

/// An old email or username kept as a match key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AliasRow {
    pub kind: AliasKind,
    /// The old email or username, as accounts are matched by it.
    pub value: MatchKey,
}

// ----- safeguards, review, merges, reports

/// Where a review case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    /// Waiting for an admin.
    Open,
    /// An admin decided.
    Resolved,
    /// The SIS settled it by itself (the person got linked by a sync).
    Closed,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 3] = [CaseStatus::Open, CaseStatus::Resolved, CaseStatus::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Resolved => "resolved",
            CaseStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<CaseStatus> {
        CaseStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// An account a review case could be, as the admin compares them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseCandidate {
    pub id: AccountId,
    /// "First Last", else the username or email.
    pub name: String,
    pub email: Option<String>,
    /// `source:sourcedId` of the SIS person the account is linked to now, if any.
    pub linked_to: Option<String>,
}

/// The SIS person of a review case, as the sync saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CaseEvidence {
    pub name: String,
    pub email: Option<String>,
    pub username: Option<String>,
    /// The school id number.
    pub identifier: Option<String>,
    pub role: Option<String>,
    pub grade: Option<String>,
    /// The primary org's sourcedId (an account source's identity: its org unit).
    pub school: Option<String>,
    /// The record's `dateLastModified` (an account source's identity: its last sign-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<Timestamp>,
}

/// A match the sync would not guess: several candidates, or a known account already
/// linked to another SIS person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewCase {
    pub id: ReviewCaseId,
    pub source: String,
    pub sourced_id: String,
    pub status: CaseStatus,
    /// The planner's reason code (`disputed`, `claimed_by_several`, `linked_to_another`,
    /// `identity_taken`). For `identity_taken` the candidates are the account that has the
    /// email or username (link the person to it or merge, or keep them apart).
    pub reason_code: String,
    pub reason: String,
    pub candidates: Vec<CaseCandidate>,
    pub evidence: CaseEvidence,
    /// The run that opened the case, and the last run that saw it still disputed.
    pub opened_run: Option<RunId>,
    pub last_run: Option<RunId>,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    /// What was decided, in words.
    pub resolution: Option<String>,
    /// `admin:NAME`, or `source:NAME` when the SIS settled it.
    pub resolved_by: Option<String>,
    pub resolved_at: Option<Timestamp>,
}

/// How an admin resolves a review case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseResolution {
    /// Link the person to this account (as `link_user` does).
    Link(AccountId),
    /// Make a new account for the person on the next sync, whatever matches.
    Create,
    /// Leave the person alone on every later sync.
    Ignore,
    /// An `identity_taken` case only: the person and the account that has the email or
    /// username are different people. Stored (`kept_apart`): later syncs still never give
    /// the person's account that value, and open no case again for the pair.
    KeepApart,
}

/// What a merge moved (or, on a dry run, would move).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MergeSummary {
    pub loser: AccountId,
    pub survivor: AccountId,
    pub dry_run: bool,
    /// The loser's SIS links, now the survivor's.
    pub moved_links: Vec<SisRef>,
    /// Group memberships moved (memberships the survivor already had are not counted).
    pub groups_moved: u64,
    /// Guardian relationships moved, either side.
    pub relationships_moved: u64,
    /// History rows re-pointed to the survivor.
    pub revisions_moved: u64,
    /// Match keys the survivor gained: the loser's email, username and aliases.
    pub aliases_added: Vec<AliasRow>,
}

/// What undoing a run did (or, on a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UndoSummary {
    pub run: RunId,
    pub dry_run: bool,
    /// Account fields put back to their value before the run.
    pub fields_restored: u64,
    /// Accounts the run deactivated, active again.
    pub reactivated: Vec<AccountId>,
    /// Accounts the run reactivated, inactive again.
    pub deactivated: Vec<AccountId>,
    /// Accounts the run created: now inactive, no access, unlinked (never deleted).
    pub retired: Vec<AccountId>,
    /// Links the run made, removed (`source:sourcedId`).
    pub links_removed: Vec<String>,
    /// Links the run removed or changed, put back (`source:sourcedId`).
    pub links_restored: Vec<String>,
}

/// A SIS person an unlinked account probably is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkSuggestion {
    pub source: String,
    pub sourced_id: String,
    pub name: String,
    pub email: Option<String>,
    /// 0–100: the sum of the evidence's points.
    pub score: u8,
    pub evidence: Vec<Evidence>,
    /// `#id` of the account the person is linked to already (then it is a merge, not a
    /// link), if any.
    pub linked_to: Option<AccountId>,
    /// The open review case of the person, if any.
    pub review_case: Option<ReviewCaseId>,
}

/// An active account with no SIS link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnlinkedAccount {
    pub id: AccountId,
    pub name: String,
    pub email: Option<String>,
    pub username: Option<String>,
    pub grade: Option<String>,
    pub location: Option<String>,
    pub provider: Option<String>,
    /// Its identities in the account sources.
    pub identities: Vec<SignInIdentity>,
    /// Best first, at most 3.
    pub suggestions: Vec<LinkSuggestion>,
}

/// An account's sign-in identity as an account source (Google Workspace, Entra ID) last
/// read it: what the reports show of the identity provider's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignInIdentity {
    pub source: String,
    /// The sign-in name.
    pub login: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Google's organisational unit.
    pub org_unit: Option<String>,
    pub last_sign_in: Option<Timestamp>,
}

/// An account in a duplicates group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateAccount {
    pub id: AccountId,
    pub name: String,
    pub email: Option<String>,
    pub grade: Option<String>,
    pub location: Option<String>,
    pub provider: Option<String>,
    /// Its identities in the account sources.
    pub identities: Vec<SignInIdentity>,
    /// The account's SIS link (first by source), if any.
    pub sis: Option<SisRef>,
}

/// Accounts that are probably one person, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateGroup {
    pub accounts: Vec<DuplicateAccount>,
    pub evidence: Vec<Evidence>,
}

/// An active account whose SIS person is inactive or gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleAccount {
    pub id: AccountId,
    pub name: String,
    pub email: Option<String>,
    pub source: String,
    pub sourced_id: String,
    /// `inactive_in_sis` or `missing_from_pulls`; for an account source's link,
    /// `suspended_in_provider` or `gone_from_provider`.
    pub reason_code: String,
    pub reason: String,
}
