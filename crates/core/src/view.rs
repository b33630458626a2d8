//! The part of the directory a plan reads, indexed for correlation.
//!
//! The engine loads it from the store; tests build it by hand. It may hold the whole
//! directory or only the accounts a snapshot can touch ([`ViewKeys`]): the planner only
//! asks it questions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;

pub use crate::directory::AccountState;
use crate::directory::{Access, Account, AccountId, AliasKind, Link, MatchKey, MatchRule};
use crate::hash_index::{HashIndex, id_hash};
use crate::instant::PackedTime;

/// A link as a view holds it: what planning reads of a stored [`Link`] in 80 bytes where
/// the link takes 144 (a full pull's view holds every link of the district). Its person's
/// org and role are numbers into the view's [`LinkNames`] ([`DirectoryView::link_org`]),
/// its account's state ([`ViewLink::account`]) is read with it for a full pull's view, and
/// when it was made is left out (planning never asks).
/// Not comparable: its org and role are numbers of one view's names.
#[derive(Debug, Clone)]
pub struct ViewLink {
    pub sourced_id: Box<str>,
    pub user_id: AccountId,
    /// Content hash of the SIS record (and settings) last applied.
    pub record_hash: u64,
    /// The account's revision right after that apply.
    pub synced_revision: i64,
    account_revision: i64,
    /// [`Link::deactivated_at`], packed.
    deactivated: PackedTime,
    /// Consecutive complete full pulls the person has been missing from.
    pub misses: u32,
    org: u32,
    role: u32,
    pub rule: MatchRule,
    /// The access the account had before this source deactivated it.
    pub previous_access: Option<Access>,
    /// Whether the account is active, when its state was read with the link.
    account_active: Option<bool>,
}

impl ViewLink {
    /// The view's copy of `link`, with its account's state when read with it; its org and
    /// role named in `names`.
    pub fn new(link: Link, account: Option<AccountState>, names: &mut LinkNames) -> ViewLink {
        ViewLink {
            org: names.number(link.org.as_deref()),
            role: names.number(link.role.as_deref()),
            sourced_id: link.sourced_id.into_boxed_str(),
            user_id: link.user_id,
            record_hash: link.record_hash,
            synced_revision: link.synced_revision,
            account_revision: account.map_or(0, |a| a.revision),
            deactivated: PackedTime::new(link.deactivated_at),
            misses: link.misses,
            rule: link.rule,
            previous_access: link.previous_access,
            account_active: account.map(|a| a.active),
        }
    }

    /// Names the person's org and role as last pulled (a full pull's view reads them after
    /// the links).
    pub fn place(&mut self, org: Option<&str>, role: Option<&str>, names: &mut LinkNames) {
        self.org = names.number(org);
        self.role = names.number(role);
    }

    /// When this source deactivated the account (cleared when it comes back).
    pub fn deactivated_at(&self) -> Option<Timestamp> {
        self.deactivated.get()
    }

    /// The account's revision and active flag, read with the link for a full pull's view
    /// ([`DirectoryView::of_links`]) so it need not hold every account; `None` elsewhere.
    pub fn account(&self) -> Option<AccountState> {
        self.account_active.map(|active| AccountState {
            revision: self.account_revision,
            active,
        })
    }
}

/// The orgs and roles a view's links name, each held once and numbered from 1 (0 is none):
/// millions of links name a few thousand.
#[derive(Debug, Default, Clone)]
pub struct LinkNames {
    names: Vec<Arc<str>>,
    numbers: HashMap<Arc<str>, u32>,
}

impl LinkNames {
    /// `name`'s number, 0 for none.
    pub fn number(&mut self, name: Option<&str>) -> u32 {
        let Some(name) = name else { return 0 };
        if let Some(&n) = self.numbers.get(name) {
            return n;
        }
        let kept: Arc<str> = Arc::from(name);
        self.names.push(kept.clone());
        let n = self.names.len() as u32;
        self.numbers.insert(kept, n);
        n
    }

    fn name(&self, number: u32) -> Option<&str> {
        let at = (number as usize).checked_sub(1)?;
        self.names.get(at).map(|n| &**n)
    }
}

/// The links of sourcedIds asked for in ascending order (the pull's people, as the
/// planner takes them), found by walking forward beside the links, which are in that
/// order: a re-sync of a million people asks for each person's link several times, and a
/// binary search is some twenty comparisons of strings scattered over the heap where the
/// walk is one or two beside the last ([`LinkFinder`]).
pub struct LinkWalk<'v> {
    links: &'v [ViewLink],
    finder: LinkFinder,
}

impl<'v> LinkWalk<'v> {
    pub fn find(&mut self, sourced_id: &str) -> Option<&'v ViewLink> {
        let links = self.links;
        self.finder.find(links, sourced_id).map(|i| &links[i])
    }
}

/// Finds each link of a walk of sourcedIds among links sorted by sourcedId, as an index
/// into them (the caller may change the links between finds, not their order): ahead of
/// the last one found and near it (ids in the links' order, or nearly: numbered ids are
/// stored 9 before 10, which sorts after 1), by steps that double from there; farther, or
/// behind, by a binary search of them all; and once such jumps are many (ids met in an
/// order the links do not have: random ids stored as met), by a hash index of the links.
/// At 3 M people stored as numbered ids the links view's walk of them takes 0.25 s, as
/// steps and binary searches alone did; stored in random order, 1.6 s where the binary
/// searches took 20 s (a cache miss at most of their twenty steps).
pub struct LinkFinder {
    /// Where the last id's link is or would be; just past it when found.
    at: usize,
    /// Ids not near `at`.
    far: usize,
    index: Option<HashIndex>,
    /// How far ahead of the last id's link the next one is looked for step by step: the
    /// links (and their ids) that far are read from the caches.
    near: usize,
    /// Ids found far away by binary searches before the index is made.
    far_searches: usize,
}

impl Default for LinkFinder {
    fn default() -> LinkFinder {
        LinkFinder::within(4_096, 1_024)
    }
}

impl LinkFinder {
    fn within(near: usize, far_searches: usize) -> LinkFinder {
        LinkFinder {
            at: 0,
            far: 0,
            index: None,
            near,
            far_searches,
        }
    }

    /// Where `id`'s link is in `links`.
    pub fn find(&mut self, links: &[ViewLink], id: &str) -> Option<usize> {
        let before = |l: &ViewLink| &*l.sourced_id < id;
        let is = |i: usize| links.get(i).is_some_and(|l| &*l.sourced_id == id);
        let at = self.at;
        // Made, the index finds any id that is not the next link's.
        if self.index.is_some() && is(at) {
            return self.place(at, is);
        }
        if self.index.is_none() && (at == 0 || before(&links[at - 1])) {
            let rest = &links[at..];
            let mut bound = 1;
            while bound < rest.len() && bound < self.near && before(&rest[bound - 1]) {
                bound *= 2;
            }
            if bound >= rest.len() || !before(&rest[bound - 1]) {
                return self.place(
                    at + rest[..bound.min(rest.len())].partition_point(before),
                    is,
                );
            }
        }
        self.far += 1;
        if self.far <= self.far_searches {
            return self.place(links.partition_point(before), is);
        }
        let index = self.index.get_or_insert_with(|| {
            HashIndex::new(
                (links.iter().enumerate()).map(|(i, l)| (id_hash(&l.sourced_id), i as u32)),
            )
        });
        let found = index.find(id_hash(id), |i| is(i as usize))? as usize;
        self.at = found + 1;
        Some(found)
    }

    /// The link at `at`, where the id's is or would be, if it is the id's.
    fn place(&mut self, at: usize, is: impl Fn(usize) -> bool) -> Option<usize> {
        self.at = at;
        is(at).then(|| {
            self.at += 1;
            at
        })
    }
}

/// Accounts read whole for a view, and the aliases that reached them
/// ([`DirectoryView::add_accounts`]).
pub type Accounts = (Vec<Account>, Vec<(AccountId, AliasKind, MatchKey)>);

#[derive(Debug, Default, Clone)]
pub struct DirectoryView {
    /// The accounts held whole, in the order they were added, found by `user_index`: a
    /// full pull that reads every account of a 3 M-person directory holds them once, in
    /// one allocation, where a map of accounts took twice their size (its buckets are a
    /// power of two, and it grew by copying).
    users: Vec<Account>,
    user_index: HashMap<AccountId, u32>,
    /// This source's links, sorted by sourcedId (found by binary search: a district's
    /// millions of links held once, not again as a map's keys).
    links: Vec<ViewLink>,
    /// The orgs and roles the links name.
    names: LinkNames,
    /// This source's links by account: indexes into `links`, sorted by account (4 bytes
    /// a link where a map is ~24; a full pull reads a link's account state from the link
    /// itself, [`DirectoryView::link_account`], so only the rare lookups by account search).
    linked_by_user: Vec<u32>,
    by_email: KeyIndex,
    by_username: KeyIndex,
    by_identifier: KeyIndex,
    aliases: HashMap<(AliasKind, MatchKey), Vec<AccountId>>,
    /// (sourcedId, account) pairs an admin unlinked: never linked again automatically.
    refused: HashSet<(String, AccountId)>,
    /// What this source last wrote beyond accounts.
    state: SourceState,
    /// Admins' decisions on review cases, by sourcedId.
    decisions: HashMap<String, Decision>,
    /// (sourcedId, account) pairs an admin kept apart: the account's email or username is
    /// not the person's, and no review case asks again.
    kept_apart: HashSet<(String, AccountId)>,
    /// The source's active linked accounts, for the safeguards.
    population: LinkedPopulation,
    /// How many accounts the directory holds (a full pull's links view counts them).
    accounts: u64,
}

/// This source's linked accounts that are active, counted whole (over every link, not
/// only those a view holds): the safeguards' yardstick.
///
/// A full pull's view counts them all from its links. A view scoped to some people (a
/// delta, one user, a SCIM write) holds the total only ([`LinkedPopulation::total`]):
/// counting every school and role is a pass over the whole directory (seconds at a
/// million people), and such a run can trip a school's limit only at the schools it
/// takes people from, which are counted after planning
/// ([`crate::guard::losing_schools`], [`DirectoryView::add_school_counts`]); the roles
/// matter only to a full pull.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LinkedPopulation {
    pub active: u64,
    /// By the person's primary org as last pulled.
    pub by_school: BTreeMap<String, u64>,
    /// By the person's role as last pulled.
    pub by_role: BTreeMap<String, u64>,
}

impl LinkedPopulation {
    /// `active` linked accounts, not yet counted by school or role.
    pub fn total(active: u64) -> LinkedPopulation {
        LinkedPopulation {
            active,
            ..LinkedPopulation::default()
        }
    }

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

/// Every question the planner asks a view about a set of SIS people. On a run that is
/// not a complete full pull (no rekeys, no absence, no roster), a view holding every
/// account these keys reach (and those accounts' links and refusals, and the
/// population) plans those people exactly as the whole directory does
/// ([`crate::planner::view_keys`] derives them). A full pull's view holds every link, and
/// the accounts the keys of [`crate::planner::Intake::accounts_needed`] reach.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ViewKeys {
    /// The people's sourcedIds: their links, review decisions, refusals and kept-apart
    /// pairs.
    pub sourced_ids: BTreeSet<String>,
    /// Accounts by id: those of linked people whose links a view holds already (a plan
    /// made by chunks, [`crate::planner::Intake::plan_by_chunks`]).
    pub accounts: BTreeSet<AccountId>,
    /// Account emails, as match keys: the directory email (after Translate Email, or
    /// username@Append domain), for matching and for the email-in-use check.
    pub emails: BTreeSet<MatchKey>,
    /// Identifiers, trimmed; empty when matching by identifier is off.
    pub identifiers: BTreeSet<String>,
    /// Usernames, as match keys: for the check that no two active accounts share one.
    pub usernames: BTreeSet<MatchKey>,
    /// Old emails and usernames, as match keys.
    pub aliases: BTreeSet<(AliasKind, MatchKey)>,
    /// So many people changed (a first import, a settings change) that reading every
    /// account beats a lookup per key: the other fields are left empty, and `scan`, when
    /// set, tells which of the accounts read the plan needs.
    pub everyone: bool,
    /// The keys as hashes, for a full pull that reads every account but keeps only those
    /// the keys reach ([`HashedKeys`]); `None`: keep them all.
    pub scan: Option<HashedKeys>,
}

/// The keys of a [`ViewKeys`] as 64-bit hashes, and the accounts its sourcedIds reach
/// through the links view: what a scan of every account keeps. A hash says only
/// "maybe": an account kept for a hash another key has is one account too many, which a
/// plan never reads (a view of every account plans the same); none the keys reach is
/// left out. ~10 bytes a key where the keys themselves are ~100: a change to a third of
/// three million people keeps a million accounts whole, not three.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HashedKeys {
    accounts: HashSet<AccountId>,
    hashes: HashSet<u64>,
}

/// The kinds of keys [`HashedKeys`] holds, each hashed apart.
#[derive(Clone, Copy)]
enum Hashed {
    Email,
    Username,
    Identifier,
    Alias(AliasKind),
}

fn scan_hash(kind: Hashed, key: &str) -> u64 {
    let tag = match kind {
        Hashed::Email => 0,
        Hashed::Username => 1,
        Hashed::Identifier => 2,
        Hashed::Alias(AliasKind::Email) => 3,
        Hashed::Alias(AliasKind::Username) => 4,
    };
    let mut h = crate::sis::Fnv::new();
    h.bytes(&[tag]);
    h.str(key);
    h.finish()
}

impl HashedKeys {
    /// An account a person's link reaches.
    pub fn account(&mut self, id: AccountId) {
        self.accounts.insert(id);
    }

    pub fn email(&mut self, key: &MatchKey) {
        self.hashes.insert(scan_hash(Hashed::Email, key.as_str()));
    }

    pub fn username(&mut self, key: &MatchKey) {
        self.hashes
            .insert(scan_hash(Hashed::Username, key.as_str()));
    }

    /// An identifier, trimmed.
    pub fn identifier(&mut self, id: &str) {
        self.hashes.insert(scan_hash(Hashed::Identifier, id.trim()));
    }

    pub fn alias(&mut self, kind: AliasKind, key: &MatchKey) {
        self.hashes
            .insert(scan_hash(Hashed::Alias(kind), key.as_str()));
    }

    /// Whether an account with these match keys (as stored) and identifier may be one
    /// the keys reach.
    pub fn reaches(
        &self,
        id: AccountId,
        email: Option<&str>,
        username: Option<&str>,
        identifier: Option<&str>,
    ) -> bool {
        let has = |kind, key: Option<&str>| {
            key.is_some_and(|k| self.hashes.contains(&scan_hash(kind, k)))
        };
        self.accounts.contains(&id)
            || has(Hashed::Email, email)
            || has(Hashed::Username, username)
            || has(Hashed::Identifier, identifier.map(str::trim))
    }

    /// Whether an alias may be one the keys reach (its account is then reached too).
    pub fn reaches_alias(&self, kind: AliasKind, key: &str) -> bool {
        self.hashes.contains(&scan_hash(Hashed::Alias(kind), key))
    }
}

impl std::fmt::Debug for HashedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashedKeys")
            .field("accounts", &self.accounts.len())
            .field("hashes", &self.hashes.len())
            .finish()
    }
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
    /// The sourcedIds of the source's people with an open review case.
    pub open_cases: HashSet<String>,
    /// What the groups and relationships were last made from.
    pub roster_memo: crate::roster::RosterMemo,
    /// The skips the last applied complete full pull listed, not to be listed again.
    pub listed_skips: crate::plan::ListedSkips,
}

/// A match key of an account: its email's or username's [`MatchKey`], or its identifier
/// trimmed.
#[derive(Debug, Clone, Copy)]
enum KeyKind {
    Email,
    Username,
    Identifier,
}

impl KeyKind {
    fn key_of(self, u: &Account) -> Option<String> {
        match self {
            KeyKind::Email => u
                .email
                .as_deref()
                .map(|v| MatchKey::new(v).as_str().to_owned()),
            KeyKind::Username => u
                .username
                .as_deref()
                .map(|v| MatchKey::new(v).as_str().to_owned()),
            KeyKind::Identifier => u.identifier.as_deref().map(|v| v.trim().to_owned()),
        }
    }

    /// Whether the account's key is `key` (as [`KeyKind::key_of`] says, without building it).
    fn has(self, u: &Account, key: &str) -> bool {
        match self {
            KeyKind::Email => u.email.as_deref().is_some_and(|v| MatchKey::same(v, key)),
            KeyKind::Username => u
                .username
                .as_deref()
                .is_some_and(|v| MatchKey::same(v, key)),
            KeyKind::Identifier => u.identifier.as_deref().is_some_and(|v| v.trim() == key),
        }
    }
}

fn key_hash(key: &str) -> u64 {
    let mut h = crate::sis::Fnv::new();
    h.bytes(key.as_bytes());
    h.finish()
}

/// Accounts by a match key in 16 bytes an account: the keys' 64-bit hashes, sorted, with
/// the accounts beside them (a map of keys to lists took ~110 bytes, three maps a third of
/// the memory of a view holding 3 M accounts). A run of one hash is one key's accounts:
/// keys whose hashes collide are kept apart by key in `collided`, and a lookup checks that
/// the run's first account has the key asked for (another key may hash alike).
#[derive(Debug, Default, Clone)]
struct KeyIndex {
    hashes: Vec<u64>,
    ids: Vec<AccountId>,
    collided: HashMap<String, Vec<AccountId>>,
}

impl KeyIndex {
    /// Adds (key hash, account) pairs; `account` finds any account added (whose key of
    /// `kind` is its key here).
    fn add<'a>(
        &mut self,
        keys: impl Iterator<Item = (u64, AccountId)>,
        kind: KeyKind,
        account: &impl Fn(AccountId) -> Option<&'a Account>,
    ) {
        let mut pairs: Vec<(u64, AccountId)> =
            self.hashes.drain(..).zip(self.ids.drain(..)).collect();
        for (key, ids) in self.collided.drain() {
            pairs.extend(ids.into_iter().map(|id| (key_hash(&key), id)));
        }
        pairs.extend(keys);
        pairs.sort_unstable();
        pairs.dedup();
        let key_of = |id: AccountId| account(id).and_then(|u| kind.key_of(u));
        self.hashes.reserve_exact(pairs.len());
        self.ids.reserve_exact(pairs.len());
        let mut start = 0;
        while start < pairs.len() {
            let hash = pairs[start].0;
            let end = start + pairs[start..].partition_point(|p| p.0 == hash);
            let run = &pairs[start..end];
            let one_key = run.len() == 1 || {
                let first = key_of(run[0].1);
                run[1..].iter().all(|p| key_of(p.1) == first)
            };
            if one_key {
                self.hashes.extend(run.iter().map(|p| p.0));
                self.ids.extend(run.iter().map(|p| p.1));
            } else {
                for &(_, id) in run {
                    if let Some(key) = key_of(id) {
                        self.collided.entry(key).or_default().push(id);
                    }
                }
            }
            start = end;
        }
    }

    /// The accounts of `key`; `has_key` tells whether an account has it.
    fn get(&self, key: &str, has_key: impl Fn(AccountId) -> bool) -> &[AccountId] {
        if !self.collided.is_empty()
            && let Some(ids) = self.collided.get(key)
        {
            return ids;
        }
        let hash = key_hash(key);
        let start = self.hashes.partition_point(|&h| h < hash);
        let end = start + self.hashes[start..].partition_point(|&h| h == hash);
        match self.ids.get(start..end) {
            Some(run) if run.first().is_some_and(|&id| has_key(id)) => run,
            _ => &[],
        }
    }
}

impl DirectoryView {
    /// Builds the indexes. Merged accounts (tombstones) are kept for display but never match.
    pub fn new(
        users: Vec<Account>,
        links: Vec<Link>,
        aliases: Vec<(AccountId, AliasKind, MatchKey)>,
    ) -> DirectoryView {
        let mut names = LinkNames::default();
        let links = (links.into_iter())
            .map(|l| ViewLink::new(l, None, &mut names))
            .collect();
        DirectoryView::of_view_links(users, links, names, aliases)
    }

    fn of_view_links(
        users: Vec<Account>,
        links: Vec<ViewLink>,
        names: LinkNames,
        aliases: Vec<(AccountId, AliasKind, MatchKey)>,
    ) -> DirectoryView {
        let mut v = DirectoryView {
            links,
            names,
            ..DirectoryView::default()
        };
        // One link a sourcedId: of two, the later one (as a map's insert would keep).
        // The store's query usually yields them in order already (SQLite's plan reads
        // the links by their key); a sort would take a scratch copy of half.
        if !v.links.is_sorted_by(|a, b| a.sourced_id < b.sourced_id) {
            v.links.reverse();
            v.links.sort_by(|a, b| a.sourced_id.cmp(&b.sourced_id));
            v.links
                .dedup_by(|later, kept| later.sourced_id == kept.sourced_id);
        }
        v.links.shrink_to_fit();
        // Stable: of two links to one account, the later stays last (and is the one found).
        let mut by_user: Vec<u32> = (0..v.links.len() as u32).collect();
        by_user.sort_by_key(|&i| v.links[i as usize].user_id);
        v.linked_by_user = by_user;
        v.add_accounts(users, aliases);
        v.count_population();
        v
    }

    /// A view of every link (each with its account's revision and active flag,
    /// [`ViewLink::account`]; their orgs and roles named in `names`) and no account yet: a
    /// full pull's start, to which [`DirectoryView::add_accounts`] adds the accounts its
    /// changed people reach.
    pub fn of_links(links: Vec<ViewLink>, names: LinkNames, accounts: u64) -> DirectoryView {
        let mut v = DirectoryView::of_view_links(Vec::new(), links, names, Vec::new());
        v.accounts = accounts;
        v
    }

    /// Adds accounts (and aliases of accounts the view holds) to the indexes; accounts it
    /// holds already are kept as they are.
    pub fn add_accounts(
        &mut self,
        users: Vec<Account>,
        aliases: Vec<(AccountId, AliasKind, MatchKey)>,
    ) {
        // The accounts are taken as they come (the first batch is not even copied), then
        // indexed; an account the view holds already is dropped.
        let start = self.users.len();
        if start == 0 {
            self.users = users;
        } else {
            // Grown to fit, not doubled: a chunk of a plan made by chunks adds the accounts
            // its people's emails and usernames reach to 100 000 read by id.
            self.users.reserve_exact(users.len());
            self.users.extend(users);
        }
        self.user_index.reserve(self.users.len() - start);
        let index = &mut self.user_index;
        let mut at = 0;
        let mut kept = 0;
        self.users.retain(|u| {
            let old = at < start;
            at += 1;
            let keep = old || !index.contains_key(&u.id);
            if keep {
                if !old {
                    index.insert(u.id, kept);
                }
                kept += 1;
            }
            keep
        });
        let added = &self.users[start..];
        let users = &self.users;
        let index = &self.user_index;
        let account = |id: AccountId| index.get(&id).map(|&i| &users[i as usize]);
        for (by, kind) in [
            (&mut self.by_email, KeyKind::Email),
            (&mut self.by_username, KeyKind::Username),
            (&mut self.by_identifier, KeyKind::Identifier),
        ] {
            let keys = added
                .iter()
                .filter(|u| u.merged_into.is_none())
                .filter_map(|u| kind.key_of(u).map(|k| (key_hash(&k), u.id)));
            by.add(keys, kind, &account);
        }
        for (user, kind, value) in aliases {
            if self.user(user).is_some_and(|u| u.merged_into.is_none()) {
                self.aliases.entry((kind, value)).or_default().push(user);
            }
        }
        for ids in self.aliases.values_mut() {
            ids.sort_unstable();
            ids.dedup();
        }
    }

    /// Lets go of every account the view holds (and their indexes and aliases), keeping
    /// the links and the rest: a plan made a chunk of people at a time
    /// ([`crate::planner::Intake::plan_by_chunks`]) reads each chunk's accounts in turn.
    pub fn clear_accounts(&mut self) {
        self.users = Vec::new();
        self.user_index = HashMap::new();
        self.by_email = KeyIndex::default();
        self.by_username = KeyIndex::default();
        self.by_identifier = KeyIndex::default();
        self.aliases = HashMap::new();
    }

    fn count_population(&mut self) {
        let mut population = LinkedPopulation::default();
        for l in &self.links {
            if self.link_account(l).is_some_and(|a| a.active) {
                population.add(self.link_org(l), self.link_role(l), 1);
            }
        }
        self.population = population;
    }

    /// Adds what an admin decided and what the source last wrote besides accounts.
    pub fn with_source_state(
        mut self,
        refused: Vec<(String, AccountId)>,
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

    /// Adds the (sourcedId, account) pairs admins kept apart (*keep apart* on an
    /// `identity_taken` review case).
    pub fn with_kept_apart(mut self, pairs: Vec<(String, AccountId)>) -> DirectoryView {
        self.kept_apart = pairs.into_iter().collect();
        self
    }

    /// Whether an admin decided this person and this account are different people.
    pub fn kept_apart(&self, sourced_id: &str, user: AccountId) -> bool {
        !self.kept_apart.is_empty() && self.kept_apart.contains(&(sourced_id.to_owned(), user))
    }

    /// Replaces the population counted from the links the view holds: a view scoped to
    /// some people holds only some links, the safeguards need them all.
    pub fn with_population(mut self, population: LinkedPopulation) -> DirectoryView {
        self.population = population;
        self
    }

    /// Adds the active linked accounts of some schools (by primary org as last pulled) to
    /// a scoped view's population: the schools a plan takes people from.
    pub fn add_school_counts(&mut self, counts: BTreeMap<String, u64>) {
        self.population.by_school.extend(counts);
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
    pub fn refused(&self, sourced_id: &str, user: AccountId) -> bool {
        !self.refused.is_empty()
            && (self.refused.contains(&(sourced_id.to_owned(), user))
                || self.refused.contains(&(RETIRED.to_owned(), user)))
    }

    pub fn source_state(&self) -> &SourceState {
        &self.state
    }

    pub fn user(&self, id: AccountId) -> Option<&Account> {
        let &i = self.user_index.get(&id)?;
        self.users.get(i as usize)
    }

    /// How many accounts the directory holds: those of a links view's count, else those
    /// the view holds.
    pub fn account_count(&self) -> u64 {
        self.accounts.max(self.users.len() as u64)
    }

    /// The account's revision, whether the view holds it whole or only its state.
    pub fn revision(&self, id: AccountId) -> Option<i64> {
        match self.user(id) {
            Some(u) => Some(u.revision),
            None => self.state(id).map(|s| s.revision),
        }
    }

    fn state(&self, id: AccountId) -> Option<AccountState> {
        self.link_of_user(id)?.account()
    }

    /// This source's link to the account (the last of two, were there two).
    fn link_of_user(&self, id: AccountId) -> Option<&ViewLink> {
        let after = self
            .linked_by_user
            .partition_point(|&i| self.links[i as usize].user_id <= id);
        let i = *self.linked_by_user.get(after.checked_sub(1)?)?;
        let link = &self.links[i as usize];
        (link.user_id == id).then_some(link)
    }

    /// The revision and active flag of a link's account: the account's when the view holds
    /// it whole, else as read with the link (a full pull's view). Unlike
    /// [`DirectoryView::revision`] it needs no search of the links by account: a full pull
    /// asks it of every link.
    pub fn link_account(&self, link: &ViewLink) -> Option<AccountState> {
        match self.user(link.user_id) {
            Some(u) => Some(AccountState {
                revision: u.revision,
                active: u.active,
            }),
            None => link.account(),
        }
    }

    /// The primary org of a link's person as last pulled.
    pub fn link_org(&self, link: &ViewLink) -> Option<&str> {
        self.names.name(link.org)
    }

    /// The role of a link's person as last pulled.
    pub fn link_role(&self, link: &ViewLink) -> Option<&str> {
        self.names.name(link.role)
    }

    /// Whether the link is as the last sync left it: the record it was written from hashes
    /// to `hash`, its account has not changed since, and it is neither missed nor
    /// deactivated. A person or identity with such a link needs no write.
    ///
    /// The account's revision is the one read with the link when the link has it (a full
    /// pull's view), else the account's: whether a person changed must not depend on which
    /// accounts the view happens to hold, read later than the links (an account edited in
    /// between, held because another person's key reaches it, would make its person
    /// changed after the accounts their keys reach were chosen). Such an edit is seen by
    /// the next run.
    pub fn link_unchanged(&self, link: &ViewLink, hash: u64) -> bool {
        let revision = match link.account() {
            Some(state) => Some(state.revision),
            None => self.user(link.user_id).map(|u| u.revision),
        };
        link.record_hash == hash
            && revision == Some(link.synced_revision)
            && link.misses == 0
            && link.deactivated_at().is_none()
    }

    pub fn users(&self) -> impl Iterator<Item = &Account> {
        self.users.iter()
    }

    pub fn link(&self, sourced_id: &str) -> Option<&ViewLink> {
        self.links
            .binary_search_by(|l| (*l.sourced_id).cmp(sourced_id))
            .ok()
            .map(|i| &self.links[i])
    }

    /// Finds links for sourcedIds asked in ascending order by walking the links once
    /// ([`LinkWalk`]), where [`DirectoryView::link`] searches all of them for each.
    pub fn link_walk(&self) -> LinkWalk<'_> {
        LinkWalk {
            links: &self.links,
            finder: LinkFinder::default(),
        }
    }

    /// How many links the view holds.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// The links in sourcedId order, one a sourcedId (the planner walks them beside the
    /// pull's people).
    pub fn links(&self) -> impl Iterator<Item = &ViewLink> {
        self.links.iter()
    }

    /// The sourcedId this source links to an account, if any.
    pub fn linked_sourced_id(&self, user: AccountId) -> Option<&str> {
        self.link_of_user(user).map(|l| &*l.sourced_id)
    }

    pub fn by_email(&self, email: &MatchKey) -> &[AccountId] {
        self.by_key(&self.by_email, KeyKind::Email, email.as_str())
    }

    pub fn by_username(&self, username: &MatchKey) -> &[AccountId] {
        self.by_key(&self.by_username, KeyKind::Username, username.as_str())
    }

    pub fn by_identifier(&self, identifier: &str) -> &[AccountId] {
        self.by_key(&self.by_identifier, KeyKind::Identifier, identifier.trim())
    }

    /// The accounts whose key of `kind` is `key` (normalised as [`KeyKind::key_of`] does).
    fn by_key<'a>(&'a self, by: &'a KeyIndex, kind: KeyKind, key: &str) -> &'a [AccountId] {
        by.get(key, |id| self.user(id).is_some_and(|u| kind.has(u, key)))
    }

    pub fn by_alias(&self, kind: AliasKind, value: &MatchKey) -> &[AccountId] {
        self.aliases
            .get(&(kind, value.clone()))
            .map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_of_ids_finds_each_link_in_any_order() {
        // Numbered ids, every other one with a link; the links in sourcedId order.
        let numbered: Vec<String> = (0..400).map(|n| format!("k{n}")).collect();
        let mut names = LinkNames::default();
        let mut links: Vec<ViewLink> = (numbered.iter().step_by(2))
            .map(|id| {
                let at = jiff::Timestamp::UNIX_EPOCH;
                ViewLink::new(
                    Link::new(id, AccountId(1), MatchRule::Created, at),
                    None,
                    &mut names,
                )
            })
            .collect();
        links.sort_by(|a, b| a.sourced_id.cmp(&b.sourced_id));
        let has_link = |id: &str| links.iter().position(|l| &*l.sourced_id == id);
        // Walks `ids` with a finder that looks 8 links ahead and makes its index after
        // 20 ids found far away; whether it made it.
        let walk = |ids: &[String]| {
            let mut finder = LinkFinder::within(8, 20);
            let mut found = 0;
            for id in ids {
                let at = finder.find(&links, id);
                assert_eq!(at, has_link(id), "{id:?}");
                found += usize::from(at.is_some());
            }
            assert_eq!(found, 200);
            finder.index.is_some()
        };
        // In the links' order, or numbered (9 before 10: a jump back at each new length,
        // ahead by up to 11 links within one): found step by step, no index made.
        let mut in_order = numbered.clone();
        in_order.sort();
        assert!(!walk(&in_order), "ids in order need no index");
        assert!(!walk(&numbered), "a few jumps are binary searches");
        // Backwards and shuffled, with ids before, between and after the links: every jump
        // is far, and past 20 of them the index finds the rest.
        let mut backwards = in_order.clone();
        backwards.reverse();
        let mut shuffled = in_order.clone();
        shuffled.sort_by_key(|s| s.bytes().rev().collect::<Vec<u8>>());
        shuffled.extend(["".to_owned(), "z".to_owned(), "k1x".to_owned()]);
        for ids in [backwards, shuffled] {
            assert!(walk(&ids), "ids out of order are looked up by hash");
        }
        // No links: nothing found, nothing made.
        let mut finder = LinkFinder::default();
        assert_eq!(finder.find(&[], "k000"), None);
        assert!(finder.index.is_none());
    }

    fn link(sourced_id: &str, user: i64, revision: i64, active: bool) -> ViewLink {
        let l = Link::new(
            sourced_id,
            AccountId(user),
            MatchRule::Email,
            jiff::Timestamp::UNIX_EPOCH,
        );
        ViewLink::new(
            l,
            Some(AccountState { revision, active }),
            &mut LinkNames::default(),
        )
    }

    #[test]
    fn a_view_link_keeps_what_planning_reads_in_80_bytes() {
        assert!(size_of::<ViewLink>() <= 80, "{}", size_of::<ViewLink>());
        let at = |s: i64, ns: i32| Timestamp::new(s, ns).unwrap();
        let mut names = LinkNames::default();
        for (deactivated, org, role, account) in [
            (None, None, None, None),
            (
                Some(at(1_700_000_000, 123_456_789)),
                Some("school-1"),
                Some("student"),
                Some(AccountState {
                    revision: 9,
                    active: false,
                }),
            ),
            (
                Some(at(-86_400, -1)),
                Some("school-2"),
                Some("student"),
                Some(AccountState {
                    revision: i64::MAX,
                    active: true,
                }),
            ),
            (Some(Timestamp::MIN), Some("school-1"), None, None),
            (Some(Timestamp::MAX), None, Some("teacher"), None),
        ] {
            let mut link = Link::new("p1", AccountId(4), MatchRule::Identifier, at(5, 0));
            link.record_hash = 17;
            link.synced_revision = 8;
            link.misses = 3;
            link.deactivated_at = deactivated;
            link.previous_access = deactivated.map(|_| Access::Agent);
            link.org = org.map(Arc::from);
            link.role = role.map(Arc::from);
            let v = ViewLink::new(link.clone(), account, &mut names);
            assert_eq!(&*v.sourced_id, "p1");
            assert_eq!(
                (
                    v.user_id,
                    v.rule,
                    v.record_hash,
                    v.synced_revision,
                    v.misses
                ),
                (AccountId(4), MatchRule::Identifier, 17, 8, 3)
            );
            assert_eq!(v.deactivated_at(), deactivated);
            assert_eq!(v.previous_access, link.previous_access);
            assert_eq!(v.account(), account);
            let view = DirectoryView::of_links(vec![v.clone()], names.clone(), 1);
            assert_eq!(view.link_org(&v), org);
            assert_eq!(view.link_role(&v), role);
        }
        // Each name is held once, whichever link named it first.
        assert_eq!(names.names.len(), 4);
    }

    /// Keys whose hashes collide are kept apart, and a key that only hashes like another
    /// finds nothing.
    #[test]
    fn a_key_index_is_exact_whatever_the_hashes() {
        let account = |id: i64, email: &str| Account {
            email: Some(email.to_owned()),
            ..Account::blank(AccountId(id))
        };
        let users = [
            account(1, "a@x.org"),
            account(2, "b@x.org"),
            account(3, "A@x.org"),
            account(4, "c@x.org"),
        ];
        let find = |id: AccountId| users.iter().find(|u| u.id == id);
        let get = |by: &KeyIndex, key: &str| -> Vec<AccountId> {
            by.get(key, |id| {
                find(id).is_some_and(|u| KeyKind::Email.has(u, key))
            })
            .to_vec()
        };
        let mut by = KeyIndex::default();
        // Accounts 1, 2 and 3 as though their keys hashed alike: 1 and 3 share "a@x.org".
        let same = key_hash("a@x.org");
        by.add(
            [
                (same, AccountId(1)),
                (same, AccountId(2)),
                (same, AccountId(3)),
            ]
            .into_iter(),
            KeyKind::Email,
            &find,
        );
        assert_eq!(get(&by, "a@x.org"), [AccountId(1), AccountId(3)]);
        assert_eq!(get(&by, "b@x.org"), [AccountId(2)]);
        // Account 4 filed under another key's hash: asked for that key, it is not found.
        let mut wrong = KeyIndex::default();
        wrong.add(
            [(key_hash("d@x.org"), AccountId(4))].into_iter(),
            KeyKind::Email,
            &find,
        );
        assert!(get(&wrong, "d@x.org").is_empty());
        // Added again, the collided keys stay apart.
        by.add(
            [(key_hash("c@x.org"), AccountId(4))].into_iter(),
            KeyKind::Email,
            &find,
        );
        assert_eq!(get(&by, "a@x.org"), [AccountId(1), AccountId(3)]);
        assert_eq!(get(&by, "c@x.org"), [AccountId(4)]);
        assert!(get(&by, "e@x.org").is_empty());
    }

    #[test]
    fn accounts_added_twice_keep_the_first_and_are_found_and_matched() {
        let account = |id: i64, email: &str, revision: i64| Account {
            email: Some(email.to_owned()),
            revision,
            ..Account::blank(AccountId(id))
        };
        let mut view = DirectoryView::new(
            vec![account(3, "c@x.org", 1), account(1, "a@x.org", 1)],
            Vec::new(),
            Vec::new(),
        );
        // A second batch: one account held already (kept as it was), one twice in the
        // batch (the first kept), one new.
        view.add_accounts(
            vec![
                account(1, "a2@x.org", 9),
                account(2, "b@x.org", 1),
                account(2, "b2@x.org", 9),
                account(4, "d@x.org", 1),
            ],
            Vec::new(),
        );
        let ids: Vec<i64> = view.users().map(|u| u.id.0).collect();
        assert_eq!(ids, [3, 1, 2, 4], "in the order added, each once");
        for (id, email, revision) in [(1, "a@x.org", 1), (2, "b@x.org", 1), (3, "c@x.org", 1)] {
            let u = view.user(AccountId(id)).unwrap();
            assert_eq!((u.email.as_deref(), u.revision), (Some(email), revision));
        }
        assert!(view.user(AccountId(5)).is_none());
        assert_eq!(view.account_count(), 4);
        let by = |email: &str| view.by_email(&MatchKey::new(email)).to_vec();
        assert_eq!(by("b@x.org"), [AccountId(2)]);
        assert!(by("a2@x.org").is_empty(), "a dropped copy is not matched");
        assert!(by("b2@x.org").is_empty());
        assert_eq!(by("D@x.org "), [AccountId(4)]);

        // Usernames and identifiers the same way (an identifier trimmed, not lower-cased);
        // a merged account is found by id, never by a key.
        let mut view = DirectoryView::default();
        let merged = Account {
            username: Some("gone".into()),
            identifier: Some("77".into()),
            merged_into: Some(AccountId(8)),
            ..Account::blank(AccountId(9))
        };
        let kept = Account {
            username: Some(" Ana.Li ".into()),
            identifier: Some(" 123 ".into()),
            ..Account::blank(AccountId(8))
        };
        view.add_accounts(vec![merged, kept], Vec::new());
        assert_eq!(view.by_username(&MatchKey::new("ana.li")), [AccountId(8)]);
        assert_eq!(view.by_identifier("123"), [AccountId(8)]);
        assert_eq!(view.by_identifier(" 123"), [AccountId(8)]);
        assert!(view.by_identifier("ABC").is_empty());
        assert!(view.by_username(&MatchKey::new("gone")).is_empty());
        assert!(view.by_identifier("77").is_empty());
        assert!(view.user(AccountId(9)).is_some());
    }

    #[test]
    fn links_are_found_by_account_and_a_held_account_outranks_the_links_state() {
        // Accounts out of sourcedId order, as an adopted or merged directory has them.
        let links = vec![
            link("a", 30, 1, true),
            link("b", 10, 2, false),
            link("c", 20, 3, true),
        ];
        let mut view = DirectoryView::of_links(links.clone(), LinkNames::default(), 3);
        for (user, id) in [(10, "b"), (20, "c"), (30, "a")] {
            assert_eq!(view.linked_sourced_id(AccountId(user)), Some(id));
        }
        assert_eq!(view.linked_sourced_id(AccountId(5)), None);
        assert_eq!(view.linked_sourced_id(AccountId(25)), None);
        assert_eq!(view.linked_sourced_id(AccountId(40)), None);
        assert_eq!(view.revision(AccountId(20)), Some(3));
        let b = view.link("b").unwrap().clone();
        assert_eq!(
            view.link_account(&b),
            Some(AccountState {
                revision: 2,
                active: false
            })
        );
        // Once the view holds the account whole, its revision and flag are the account's.
        let account = Account {
            active: true,
            revision: 7,
            ..Account::blank(AccountId(10))
        };
        view.add_accounts(vec![account], Vec::new());
        assert_eq!(
            view.link_account(&b),
            Some(AccountState {
                revision: 7,
                active: true
            })
        );
        assert_eq!(view.revision(AccountId(10)), Some(7));
        // Whether the person changed is the link's to say when it carries the account's
        // state (read with it, before the account was): the same whichever accounts the
        // view holds. A link without it asks the account.
        let mut synced = b.clone();
        synced.synced_revision = 2;
        assert!(view.link_unchanged(&synced, synced.record_hash));
        synced.account_active = None;
        assert!(!view.link_unchanged(&synced, synced.record_hash));
        synced.synced_revision = 7;
        assert!(view.link_unchanged(&synced, synced.record_hash));

        // Two links to one account (which the store's keys forbid): the later link is the
        // one found, as a map's last insert would keep.
        let mut two = links;
        two.push(link("d", 20, 9, false));
        two.push(link("e", 20, 8, true));
        let view = DirectoryView::of_links(two, LinkNames::default(), 3);
        assert_eq!(view.linked_sourced_id(AccountId(20)), Some("e"));
        assert_eq!(view.revision(AccountId(20)), Some(8));
        assert_eq!(view.linked_sourced_id(AccountId(10)), Some("b"));
    }

    #[test]
    fn a_link_walk_finds_what_a_search_finds_in_order_or_not() {
        // 300 links, every third sourcedId of 900 (zero-padded: string order is number
        // order), asked in order with gaps, again, out of order, before and past them all.
        let id = |n: u32| format!("p{n:04}");
        let links = (0..300).map(|n| link(&id(3 * n + 1), i64::from(n), 1, true));
        let view = DirectoryView::of_links(links.collect(), LinkNames::default(), 300);
        let found = |l: Option<&ViewLink>| l.map(|l| l.sourced_id.clone());
        let mut asks: Vec<u32> = (0..900).collect();
        asks.extend([4, 4, 899, 0, 1, 700, 2, 850, 851, 851, 5000]);
        asks.extend((0..900).step_by(97));
        let mut walk = view.link_walk();
        for n in asks {
            let want = found(view.link(&id(n)));
            assert_eq!(want.is_some(), n % 3 == 1 && n < 900, "{n}");
            assert_eq!(found(walk.find(&id(n))), want, "{n}");
        }
        assert!(DirectoryView::default().link_walk().find("p0001").is_none());
    }
}
