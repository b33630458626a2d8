//! The rows the store hands out and takes in.

use jiff::Timestamp;
use rostersync_core::directory::{DirUser, MatchRule, UserId};
use rostersync_core::plan::{Counts, FieldChange, Outcome, SyncKind};
use serde::Serialize;

pub type RunId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Succeeded,
    Held,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Held => "held",
            RunStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Held,
            RunStatus::Failed,
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
}

#[derive(Debug, Clone, Serialize)]
pub struct RunItemRecord {
    pub sourced_id: String,
    pub user_id: Option<UserId>,
    pub outcome: Outcome,
    /// The reason's stable code (`disputed`, `new_person`, …).
    pub reason_code: String,
    /// The reason in words.
    pub reason: String,
    pub changes: Vec<FieldChange>,
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
}

/// A SIS link as users see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SisRef {
    pub source: String,
    pub sourced_id: String,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: DirUser,
    pub sis: Option<SisRef>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Filters of `users list`. Results are ordered by id; `after` pages by id.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub linked: Option<bool>,
    pub active: Option<bool>,
    pub user_type: Option<rostersync_core::directory::UserType>,
    /// Case-insensitive substring of name, email or username.
    pub search: Option<String>,
    pub after: Option<UserId>,
    /// 0 means no limit.
    pub limit: u32,
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
    pub id: UserId,
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
    /// `email` or `username`.
    pub kind: String,
    pub value: String,
}
