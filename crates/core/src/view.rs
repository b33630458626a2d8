//! The part of the directory a plan reads, indexed for correlation.
//!
//! The engine loads it from the store; tests build it by hand. It may hold the whole
//! directory or only the accounts a snapshot can touch ([`ViewKeys`]): the planner only
//! asks it questions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::directory::{AliasKind, DirUser, Link, UserId, match_key};

#[derive(Debug, Default, Clone)]
pub struct DirectoryView {
    users: HashMap<UserId, DirUser>,
    /// This source's links by sourcedId.
    links: HashMap<String, Link>,
    /// This source's links by account.
    linked_by_user: HashMap<UserId, String>,
    by_email: HashMap<String, Vec<UserId>>,
    by_username: HashMap<String, Vec<UserId>>,
    by_identifier: HashMap<String, Vec<UserId>>,
    aliases: HashMap<(AliasKind, String), Vec<UserId>>,
    /// (sourcedId, account) pairs an admin unlinked: never linked again automatically.
    refused: HashSet<(String, UserId)>,
    /// What this source last wrote beyond accounts.
    state: SourceState,
    /// Admins' decisions on review cases, by sourcedId.
    decisions: HashMap<String, Decision>,
    /// The source's active linked accounts, for the safeguards.
    population: LinkedPopulation,
}

/// This source's linked accounts that are active, counted whole (over every link, not
/// only those a view holds): the safeguards' yardstick.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LinkedPopulation {
    pub active: u64,
    /// By the person's primary org as last pulled.
    pub by_school: BTreeMap<String, u64>,
    /// By the person's role as last pulled.
    pub by_role: BTreeMap<String, u64>,
}

impl LinkedPopulation {
    /// Counts one active linked account.
    pub fn add(&mut self, org: Option<&str>, role: Option<&str>, n: u64) {
        self.active += n;
        if let Some(org) = org {
            *self.by_school.entry(org.to_owned()).or_default() += n;
        }
        if let Some(role) = role {
            *self.by_role.entry(role.to_owned()).or_default() += n;
        }
    }
}

/// Every question the planner asks a view about a set of SIS people, on a run that is
/// not a complete full pull (no rekeys, no absence, no roster): a view holding every
/// account these keys reach (and those accounts' links and refusals, and the
/// population) plans those people exactly as the whole directory does.
/// [`crate::plan::view_keys`] derives them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ViewKeys {
    /// The people's sourcedIds: their links, review decisions and refusals.
    pub sourced_ids: BTreeSet<String>,
    /// Account emails, as match keys: the directory email (after Translate Email, or
    /// username@Append domain), for matching and for the email-in-use check.
    pub emails: BTreeSet<String>,
    /// Identifiers, trimmed; empty when matching by identifier is off.
    pub identifiers: BTreeSet<String>,
    /// Old emails and usernames, as match keys.
    pub aliases: BTreeSet<(AliasKind, String)>,
}

/// An admin's resolution of a review case that the planner must keep honouring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Make a new account for the person, whatever matches.
    Create,
    /// Leave the person alone.
    Ignore,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Create => "create",
            Decision::Ignore => "ignore",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "create" => Some(Decision::Create),
            "ignore" => Some(Decision::Ignore),
            _ => None,
        }
    }
}

/// The sourcedId of a refusal that holds for every person: an account retired because
/// its person came back after the grace period with a new account.
pub const RETIRED: &str = "*";

/// Hashes of what a source last wrote besides accounts, so unchanged groups, calendars
/// and relationships are not rewritten.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SourceState {
    /// Group key → content hash.
    pub groups: HashMap<String, u64>,
    pub relationships_hash: Option<u64>,
    pub calendars_hash: Option<u64>,
}

impl DirectoryView {
    /// Builds the indexes. Merged accounts (tombstones) are kept for display but never match.
    pub fn new(
        users: Vec<DirUser>,
        links: Vec<Link>,
        aliases: Vec<(UserId, AliasKind, String)>,
    ) -> DirectoryView {
        let mut v = DirectoryView::default();
        for u in users {
            if u.merged_into.is_none() {
                if let Some(e) = &u.email {
                    v.by_email.entry(match_key(e)).or_default().push(u.id);
                }
                if let Some(n) = &u.username {
                    v.by_username.entry(match_key(n)).or_default().push(u.id);
                }
                if let Some(i) = &u.identifier {
                    v.by_identifier
                        .entry(i.trim().to_owned())
                        .or_default()
                        .push(u.id);
                }
            }
            v.users.insert(u.id, u);
        }
        for (user, kind, value) in aliases {
            if v.users.get(&user).is_some_and(|u| u.merged_into.is_none()) {
                v.aliases
                    .entry((kind, match_key(&value)))
                    .or_default()
                    .push(user);
            }
        }
        for l in links {
            v.linked_by_user.insert(l.user_id, l.sourced_id.clone());
            v.links.insert(l.sourced_id.clone(), l);
        }
        for l in v.links.values() {
            if v.users.get(&l.user_id).is_some_and(|u| u.active) {
                v.population.add(l.org.as_deref(), l.role.as_deref(), 1);
            }
        }
        for ids in v
            .by_email
            .values_mut()
            .chain(v.by_username.values_mut())
            .chain(v.by_identifier.values_mut())
            .chain(v.aliases.values_mut())
        {
            ids.sort_unstable();
            ids.dedup();
        }
        v
    }

    /// Adds what an admin decided and what the source last wrote besides accounts.
    pub fn with_source_state(
        mut self,
        refused: Vec<(String, UserId)>,
        state: SourceState,
    ) -> DirectoryView {
        self.refused = refused.into_iter().collect();
        self.state = state;
        self
    }

    /// Adds the admins' decisions on review cases.
    pub fn with_decisions(mut self, decisions: Vec<(String, Decision)>) -> DirectoryView {
        self.decisions = decisions.into_iter().collect();
        self
    }

    /// Replaces the population counted from the links the view holds: a view scoped to
    /// some people holds only some links, the safeguards need them all.
    pub fn with_population(mut self, population: LinkedPopulation) -> DirectoryView {
        self.population = population;
        self
    }

    pub fn population(&self) -> &LinkedPopulation {
        &self.population
    }

    pub fn decision(&self, sourced_id: &str) -> Option<Decision> {
        if self.decisions.is_empty() {
            return None;
        }
        self.decisions.get(sourced_id).copied()
    }

    /// Whether this person may not be matched to this account automatically: an admin
    /// unlinked them, or the account was retired (the sourcedId [`RETIRED`]).
    pub fn refused(&self, sourced_id: &str, user: UserId) -> bool {
        !self.refused.is_empty()
            && (self.refused.contains(&(sourced_id.to_owned(), user))
                || self.refused.contains(&(RETIRED.to_owned(), user)))
    }

    pub fn source_state(&self) -> &SourceState {
        &self.state
    }

    pub fn user(&self, id: UserId) -> Option<&DirUser> {
        self.users.get(&id)
    }

    pub fn users(&self) -> impl Iterator<Item = &DirUser> {
        self.users.values()
    }

    pub fn link(&self, sourced_id: &str) -> Option<&Link> {
        self.links.get(sourced_id)
    }

    pub fn links(&self) -> impl Iterator<Item = &Link> {
        self.links.values()
    }

    /// The sourcedId this source links to an account, if any.
    pub fn linked_sourced_id(&self, user: UserId) -> Option<&str> {
        self.linked_by_user.get(&user).map(String::as_str)
    }

    pub fn by_email(&self, email: &str) -> &[UserId] {
        self.by_email
            .get(&match_key(email))
            .map_or(&[], Vec::as_slice)
    }

    pub fn by_username(&self, username: &str) -> &[UserId] {
        self.by_username
            .get(&match_key(username))
            .map_or(&[], Vec::as_slice)
    }

    pub fn by_identifier(&self, identifier: &str) -> &[UserId] {
        self.by_identifier
            .get(identifier.trim())
            .map_or(&[], Vec::as_slice)
    }

    pub fn by_alias(&self, kind: AliasKind, value: &str) -> &[UserId] {
        self.aliases
            .get(&(kind, match_key(value)))
            .map_or(&[], Vec::as_slice)
    }
}
