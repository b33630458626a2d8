//! A directory held in memory, with the reference meaning of applying a plan.
//!
//! The stores implement `apply` against a database; this is the same thing over a few
//! maps, small enough to read in one sitting. Tests use it as the oracle, and property
//! tests use it to check that planning after applying finds nothing left to do.

use std::collections::BTreeMap;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::directory::{Account, AccountId, AliasKind, Link, MatchKey, Writer};
use crate::plan::{ListedSkips, Outcome, Plan};
use crate::roster::{self, GroupSpec, RosterMemo};
use crate::view::{
    AccountState, Decision, DirectoryView, LinkNames, LinkedPopulation, RETIRED, SourceState,
    ViewKeys, ViewLink,
};

#[derive(Debug, Clone, Default)]
pub struct MemoryDirectory {
    pub users: BTreeMap<AccountId, Account>,
    /// (source, sourcedId) → link.
    pub links: BTreeMap<(String, String), Link>,
    pub aliases: Vec<(AccountId, AliasKind, MatchKey)>,
    /// (source, sourcedId, account) pairs an admin unlinked.
    pub refused: Vec<(String, String, AccountId)>,
    /// (source, group key) → the group as last written.
    pub groups: BTreeMap<(String, String), GroupSpec>,
    /// source → (guardian, student) sourcedId pairs.
    pub relationships: BTreeMap<String, BTreeSet<(String, String)>>,
    /// source → calendars hash.
    pub calendars: BTreeMap<String, u64>,
    /// source → what its groups and relationships were last made from.
    pub roster_memos: BTreeMap<String, RosterMemo>,
    /// source → the skips its last applied complete full pull listed.
    pub listed_skips: BTreeMap<String, ListedSkips>,
    /// (source, sourcedId) → an admin's decision on the person's review case.
    pub decisions: BTreeMap<(String, String), Decision>,
    /// (source, sourcedId, account) pairs an admin kept apart.
    pub kept_apart: Vec<(String, String, AccountId)>,
    next_id: AccountId,
}

/// The alias kind a changed field leaves behind.
pub fn alias_kind(field: crate::directory::Field) -> Option<AliasKind> {
    match field {
        crate::directory::Field::Email => Some(AliasKind::Email),
        crate::directory::Field::Username => Some(AliasKind::Username),
        _ => None,
    }
}

impl MemoryDirectory {
    pub fn add_user(&mut self, mut u: Account) -> AccountId {
        let top = self
            .next_id
            .max(u.id)
            .max(self.users.keys().max().copied().unwrap_or(AccountId(0)));
        self.next_id = AccountId(top.0 + 1);
        if u.id == AccountId(0) {
            u.id = self.next_id;
        }
        let id = u.id;
        self.users.insert(id, u);
        id
    }

    pub fn view(&self, source: &str) -> DirectoryView {
        DirectoryView::new(
            self.users.values().cloned().collect(),
            self.links_of(source).map(|(_, l)| l.clone()).collect(),
            self.aliases.clone(),
        )
        .with_source_state(self.refusals_of(source, |_| true), self.state_of(source))
        .with_decisions(self.decisions_of(source, |_| true))
        .with_kept_apart(self.kept_apart_of(source, |_| true))
    }

    /// The source's kept-apart pairs of the sourcedIds `wanted` accepts.
    fn kept_apart_of(
        &self,
        source: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> Vec<(String, AccountId)> {
        self.kept_apart
            .iter()
            .filter(|(s, id, _)| s == source && wanted(id))
            .map(|(_, id, u)| (id.clone(), *u))
            .collect()
    }

    /// What the source last wrote besides accounts.
    fn state_of(&self, source: &str) -> SourceState {
        SourceState {
            groups: self
                .groups
                .iter()
                .filter(|((s, _), _)| s == source)
                .map(|((_, k), g)| (k.clone(), g.content_hash()))
                .collect(),
            relationships_hash: self.relationships.get(source).map(|pairs| {
                roster::pairs_hash(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())))
            }),
            calendars_hash: self.calendars.get(source).copied(),
            // Review cases are the stores' (the reference keeps none).
            open_cases: Default::default(),
            roster_memo: self.roster_memos.get(source).copied().unwrap_or_default(),
            listed_skips: self.listed_skips.get(source).cloned().unwrap_or_default(),
        }
    }

    /// The source's links, by sourcedId.
    fn links_of<'a>(&'a self, source: &'a str) -> impl Iterator<Item = (&'a String, &'a Link)> {
        self.links
            .iter()
            .filter(move |((s, _), _)| s == source)
            .map(|((_, id), l)| (id, l))
    }

    /// The source's refusals of the sourcedIds `wanted` accepts.
    fn refusals_of(&self, source: &str, wanted: impl Fn(&str) -> bool) -> Vec<(String, AccountId)> {
        self.refused
            .iter()
            .filter(|(s, id, _)| s == source && wanted(id))
            .map(|(_, id, u)| (id.clone(), *u))
            .collect()
    }

    fn decisions_of(&self, source: &str, wanted: impl Fn(&str) -> bool) -> Vec<(String, Decision)> {
        self.decisions
            .iter()
            .filter(|((s, id), _)| s == source && wanted(id))
            .map(|((_, id), d)| (id.clone(), *d))
            .collect()
    }

    /// The accounts any key reaches (a person's link, an email, an identifier, an alias),
    /// and the aliases that reached them.
    fn reach(
        &self,
        source: &str,
        keys: &ViewKeys,
    ) -> (BTreeSet<AccountId>, Vec<(AccountId, AliasKind, MatchKey)>) {
        let mut reached: BTreeSet<AccountId> = self
            .links
            .iter()
            .filter(|((s, id), _)| s == source && keys.sourced_ids.contains(id))
            .map(|(_, l)| l.user_id)
            .collect();
        reached.extend(
            keys.accounts
                .iter()
                .filter(|id| self.users.contains_key(id)),
        );
        for u in self.users.values() {
            let email = u.email.as_deref().map(MatchKey::new);
            let username = u.username.as_deref().map(MatchKey::new);
            let identifier = u.identifier.as_deref().map(str::trim);
            if email.is_some_and(|e| keys.emails.contains(&e))
                || username.is_some_and(|n| keys.usernames.contains(&n))
                || identifier.is_some_and(|i| keys.identifiers.contains(i))
            {
                reached.insert(u.id);
            }
        }
        let aliases: Vec<(AccountId, AliasKind, MatchKey)> = self
            .aliases
            .iter()
            .filter(|(_, kind, value)| keys.aliases.contains(&(*kind, value.clone())))
            .cloned()
            .collect();
        reached.extend(aliases.iter().map(|(u, _, _)| *u));
        (reached, aliases)
    }

    /// The view scoped to what `keys` reach: the reference meaning of the stores' scoped
    /// load. The accounts any key reaches, with their links and this source's refusals
    /// of them; the people's links, decisions and refusals; the number of active linked
    /// accounts over every link (by school only when asked: [`Self::school_counts`]). No
    /// source state: only complete full pulls read it.
    pub fn scoped_view(&self, source: &str, keys: &ViewKeys) -> DirectoryView {
        let full = self.view(source);
        let (reached, aliases) = self.reach(source, keys);
        DirectoryView::new(
            reached
                .iter()
                .filter_map(|id| self.users.get(id).cloned())
                .collect(),
            self.links_of(source)
                .filter(|(id, l)| keys.sourced_ids.contains(*id) || reached.contains(&l.user_id))
                .map(|(_, l)| l.clone())
                .collect(),
            aliases,
        )
        .with_source_state(
            self.refusals_of(source, |id| keys.sourced_ids.contains(id) || id == RETIRED),
            SourceState::default(),
        )
        .with_decisions(self.decisions_of(source, |id| keys.sourced_ids.contains(id)))
        .with_kept_apart(self.kept_apart_of(source, |id| keys.sourced_ids.contains(id)))
        .with_population(LinkedPopulation::total(full.population().active))
    }

    /// The source's active linked accounts at each of `schools` (by primary org as last
    /// pulled; a school with none is left out): the reference meaning of the stores'
    /// `school_counts`.
    pub fn school_counts(&self, source: &str, schools: &[&str]) -> BTreeMap<String, u64> {
        let full = self.view(source);
        schools
            .iter()
            .filter_map(|s| Some((s.to_string(), *full.population().by_school.get(*s)?)))
            .collect()
    }

    /// A full pull's first view: every link of the source with its account's revision and
    /// active flag, the refusals, decisions and source state; no account. The reference
    /// meaning of the stores' `load_links_view`.
    pub fn links_view(&self, source: &str) -> DirectoryView {
        let mut names = LinkNames::default();
        let links = self
            .links_of(source)
            .map(|(_, l)| {
                let account = self.users.get(&l.user_id).map(|u| AccountState {
                    revision: u.revision,
                    active: u.active,
                });
                ViewLink::new(l.clone(), account, &mut names)
            })
            .collect();
        DirectoryView::of_links(links, names, self.users.len() as u64)
            .with_source_state(self.refusals_of(source, |_| true), self.state_of(source))
            .with_decisions(self.decisions_of(source, |_| true))
            .with_kept_apart(self.kept_apart_of(source, |_| true))
    }

    /// The accounts `keys` reach, whole, and the aliases that reached them: what a full
    /// pull adds to [`MemoryDirectory::links_view`]. The stores' `load_accounts`.
    pub fn accounts(
        &self,
        source: &str,
        keys: &ViewKeys,
    ) -> (Vec<Account>, Vec<(AccountId, AliasKind, MatchKey)>) {
        if keys.everyone {
            let Some(scan) = &keys.scan else {
                return (self.users.values().cloned().collect(), self.aliases.clone());
            };
            // As the stores scan: the aliases the keys may reach, then the accounts they
            // or their aliases may reach.
            let aliases: Vec<(AccountId, AliasKind, MatchKey)> = self
                .aliases
                .iter()
                .filter(|(_, kind, value)| scan.reaches_alias(*kind, value.as_str()))
                .cloned()
                .collect();
            let by_alias: BTreeSet<AccountId> = aliases.iter().map(|(u, _, _)| *u).collect();
            let users = self
                .users
                .values()
                .filter(|u| {
                    let key = |v: &Option<String>| v.as_deref().map(MatchKey::new);
                    by_alias.contains(&u.id)
                        || scan.reaches(
                            u.id,
                            key(&u.email).as_ref().map(MatchKey::as_str),
                            key(&u.username).as_ref().map(MatchKey::as_str),
                            u.identifier.as_deref(),
                        )
                })
                .cloned()
                .collect();
            return (users, aliases);
        }
        let (reached, aliases) = self.reach(source, keys);
        (
            reached
                .iter()
                .filter_map(|id| self.users.get(id).cloned())
                .collect(),
            aliases,
        )
    }

    /// Applies a plan: the reference semantics every store must match.
    pub fn apply(&mut self, plan: &Plan, now: jiff::Timestamp) {
        let me = Writer::Source(plan.source.clone());
        let records: std::collections::HashMap<&str, &crate::plan::SisRecord> = plan
            .sis_records
            .iter()
            .map(|r| (r.sourced_id(), r))
            .collect();
        for item in plan.writes() {
            let user_id = match (item.outcome, item.user_id) {
                (Outcome::Created, _) => {
                    let Some(new) = &item.new_account else {
                        continue;
                    };
                    let mut u = Account::blank(AccountId(0));
                    u.user_type = new.user_type;
                    u.access = new.access;
                    u.active = new.active;
                    u.provider = Some(item.provider.clone().unwrap_or_else(|| "sis".into()));
                    u.revision = 0;
                    self.add_user(u)
                }
                (_, Some(id)) => id,
                (_, None) => continue,
            };
            if let Some(old) = item.retires {
                self.refused
                    .push((plan.source.clone(), crate::view::RETIRED.to_owned(), old));
            }
            let Some(user) = self.users.get_mut(&user_id) else {
                continue;
            };
            for c in &item.changes {
                // A renamed account keeps its old email or username as a match key.
                if let (Some(kind), Some(old)) = (alias_kind(c.field), &c.old)
                    && item.outcome != Outcome::Created
                {
                    let old = MatchKey::new(old);
                    if !self
                        .aliases
                        .iter()
                        .any(|(u, k, v)| *u == user_id && *k == kind && *v == old)
                    {
                        self.aliases.push((user_id, kind, old));
                    }
                }
                user.set(c.field, c.new.map(str::to_owned));
                user.provenance.set(c.field, me.clone());
            }
            if let Some((_, active)) = item.active {
                user.active = active;
            }
            if let Some((_, access)) = item.access {
                user.access = access;
            }
            for key in &item.aliases {
                if !self
                    .aliases
                    .iter()
                    .any(|(u, k, v)| *u == user_id && *k == AliasKind::Email && v == key)
                {
                    self.aliases.push((user_id, AliasKind::Email, key.clone()));
                }
            }
            let provider = item
                .provider
                .as_ref()
                .filter(|p| user.provider.as_ref() != Some(*p) && item.outcome != Outcome::Created);
            if let Some(p) = provider {
                user.provider = Some(p.clone());
            }
            if !item.changes.is_empty()
                || item.outcome == Outcome::Created
                || item.active.is_some()
                || item.access.is_some()
                || provider.is_some()
            {
                user.revision += 1;
            }
            if let Some(l) = &item.link {
                if let Some(old) = &item.replaces {
                    self.links.remove(&(plan.source.clone(), old.clone()));
                }
                let key = (plan.source.clone(), item.sourced_id.clone());
                let previous = self.links.get(&key);
                let linked_at = match previous {
                    Some(old) if !l.is_new => old.linked_at,
                    _ => now,
                };
                let (org, role) = match records.get(item.sourced_id.as_str()) {
                    Some(r) => (r.primary_org().map(Arc::from), r.role().map(Arc::from)),
                    None => previous.map_or((None, None), |p| (p.org.clone(), p.role.clone())),
                };
                self.links.insert(
                    key,
                    Link {
                        sourced_id: item.sourced_id.clone(),
                        user_id,
                        rule: l.rule,
                        record_hash: l.record_hash,
                        synced_revision: user.revision,
                        linked_at,
                        misses: l.misses,
                        deactivated_at: l.deactivated_at,
                        previous_access: l.previous_access,
                        org,
                        role,
                    },
                );
            }
        }
        if let Some(r) = &plan.roster {
            for key in &r.removed_groups {
                self.groups.remove(&(plan.source.clone(), key.clone()));
            }
            for g in &r.groups {
                self.groups
                    .insert((plan.source.clone(), g.key.clone()), g.clone());
            }
            if let Some(pairs) = &r.relationships {
                let pairs = pairs.iter().map(|(a, b)| (a.to_owned(), b.to_owned()));
                self.relationships
                    .insert(plan.source.clone(), pairs.collect());
            }
            if let Some(sessions) = &r.calendars {
                self.calendars
                    .insert(plan.source.clone(), roster::sessions_hash(sessions));
            }
            self.roster_memos.insert(plan.source.clone(), r.memo);
        }
        if let Some(skips) = &plan.listed_skips {
            self.listed_skips.insert(plan.source.clone(), skips.clone());
        }
    }
}
