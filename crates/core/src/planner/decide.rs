//! Deciding: what a plan derives from its input alone ([`Intake`]), then, per person,
//! what to do given where correlation landed — create an account, or update, deactivate,
//! reactivate or link an existing one under the field and access rules — then the linked
//! people a complete full pull no longer has, and the roster's groups, relationships and
//! calendars.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

use crate::directory::{Access, Account, AccountId, Field, MatchKey, MatchRule, UserType, Writer};
use crate::plan::*;
use crate::roster;
use crate::settings::{Config, ImportOptions, Priority, SourceConfig};
use crate::sis::{Category, Fnv, SisPerson};
use crate::view::{Accounts, Decision, DirectoryView, ViewKeys, ViewLink};

use super::correlate::{Correlation, Match, Rekey, correlate_all, correlate_person, settle_claims};
use super::halves::{both_for, map_in_halves};
use super::keys::{
    KeyIndex, NewIdentities, directory_email, hashed_keys_of, identity_key, keys_of,
};
use super::memo;
use super::present::Present;

/// A fingerprint of the settings that shape a plan: when it changes, every person is
/// planned again even if their SIS record did not change.
pub fn settings_fingerprint(config: &Config, source: &SourceConfig) -> u64 {
    let mut h = Fnv::new();
    let parts = (
        &config.fields,
        &source.user_mapping,
        &source.import,
        &source.field_priority,
        &source.features,
        &source.locations,
        &source.name,
    );
    h.str(&serde_json::to_string(&parts).unwrap_or_default());
    h.finish()
}

/// Values a person gets from the rest of the roster and the settings, not their record
/// ([`Derivations::of`]).
#[derive(Debug, Clone, Copy)]
struct Derived<'a> {
    /// `None`: the sync does not manage locations (no mapping configured).
    location: Option<Option<&'a str>>,
    /// `None`: homerooms are not known in this run (a delta, or *Add rooms* off).
    homeroom: Option<Option<&'a str>>,
    /// The person's classes, in sourcedId order.
    classes: Option<roster::Classes<'a>>,
}

/// What the roster and settings give the people of a run, kept compact (a run holds it
/// for everyone) and handed out a person at a time as a [`Derived`].
struct Derivations {
    manages_locations: bool,
    /// Each person's homeroom class (its location is the room), indexed like the people.
    homerooms: Option<Vec<Option<u32>>>,
    classes: Option<roster::ClassLists>,
}

impl Derivations {
    fn new(input: &PlanInput<'_>) -> Derivations {
        let source = input.source;
        let enrolled = input.roster.filter(|r| r.has_enrollments);
        Derivations {
            manages_locations: source.locations.default.is_some()
                || !source.locations.map.is_empty(),
            homerooms: enrolled
                .filter(|_| source.import.add_rooms)
                .map(|r| roster::homerooms(r, input.people.len())),
            classes: enrolled.map(|r| roster::classes_of(r, input.people.len())),
        }
    }

    /// What person `i` (an index into `input.people`) gets.
    fn of<'s>(&'s self, input: &'s PlanInput<'s>, i: usize) -> Derived<'s> {
        let class_room = |c: Option<u32>| {
            c.and_then(|c| input.roster?.classes.get(c as usize)?.location.as_deref())
        };
        Derived {
            location: self
                .manages_locations
                .then(|| roster::location_for(input.source, &input.people[i])),
            homeroom: self.homerooms.as_ref().map(|h| class_room(h[i])),
            classes: self.classes.as_ref().map(|c| c.of(i)),
        }
    }
}

/// One SIS plan in the making: its input, the view, and what the run has taken so far
/// ([`Taken`]).
struct SisPlanning<'a> {
    input: &'a PlanInput<'a>,
    dir: &'a DirectoryView,
    /// The run's people, in sourcedId order.
    people: Present<'a>,
    taken: Taken,
}

/// What a run has taken so far (new accounts' and updated accounts' emails and usernames),
/// so no two accounts end up sharing one, and who keeps which account. Owned: a plan made
/// a chunk of people at a time ([`Intake::plan_by_chunks`]) carries it from one chunk's
/// view to the next.
struct Taken {
    me: Writer,
    /// Emails and usernames new accounts take in this run, and whose they are (indexes
    /// into `people`): two new people cannot share one.
    new_identities: NewIdentities,
    /// Emails and usernames (match keys) existing accounts take by an update in this
    /// run, and which account: no two active accounts may end up with one.
    claimed: HashMap<(Field, MatchKey), AccountId>,
    /// Emails of people who keep or get an existing account in this run (indexes into
    /// `people`): worked out the first time a creation asks (a run that creates nobody
    /// never needs them).
    kept_emails: std::cell::OnceCell<KeyIndex>,
    /// Usernames of people who keep or get an existing account: as `kept_emails`.
    kept_usernames: std::cell::OnceCell<KeyIndex>,
    /// The existing account each of the run's people keeps or gets, if any. The indexes
    /// above are `u32`: a run holds far fewer than 4 G people.
    keeps: Keeps,
}

/// The existing account each of a run's people keeps or gets, if any, indexed like the
/// people: 8 bytes a person where `Option<AccountId>` takes 16 (a district's millions are
/// held through the run).
struct Keeps(Vec<i64>);

impl Keeps {
    /// Stands for no account: no directory numbers an account so.
    const NONE: i64 = i64::MIN;

    fn with_capacity(people: usize) -> Keeps {
        Keeps(Vec::with_capacity(people))
    }

    fn push(&mut self, keep: Option<AccountId>) {
        self.0.push(keep.map_or(Keeps::NONE, |a| a.0));
    }

    fn get(&self, person: usize) -> Option<AccountId> {
        let id = *self.0.get(person)?;
        (id != Keeps::NONE).then_some(AccountId(id))
    }

    fn clear(&mut self, person: usize) {
        if let Some(id) = self.0.get_mut(person) {
            *id = Keeps::NONE;
        }
    }
}

impl FromIterator<Option<AccountId>> for Keeps {
    fn from_iter<I: IntoIterator<Item = Option<AccountId>>>(keeps: I) -> Keeps {
        let keeps = keeps.into_iter();
        let mut out = Keeps::with_capacity(keeps.size_hint().0);
        for keep in keeps {
            out.push(keep);
        }
        out
    }
}

impl Taken {
    fn new(source: &SourceConfig, keeps: Keeps) -> Taken {
        Taken {
            me: Writer::Source(source.name.clone()),
            new_identities: NewIdentities::default(),
            claimed: HashMap::new(),
            kept_emails: std::cell::OnceCell::new(),
            kept_usernames: std::cell::OnceCell::new(),
            keeps,
        }
    }
}

impl SisPlanning<'_> {
    /// The existing account kept in this run by a person whose `field` (email or
    /// username; none for another field) is `key`.
    fn kept_in_run(&self, field: Field, key: &MatchKey) -> Option<AccountId> {
        let keeps = &self.taken.keeps;
        let kept_key = |i: u32| {
            keeps.get(i as usize)?;
            identity_key(self.input.source, self.people.get(i as usize), field)
        };
        let cell = match field {
            Field::Email => &self.taken.kept_emails,
            Field::Username => &self.taken.kept_usernames,
            _ => return None,
        };
        let index = cell.get_or_init(|| {
            let people = 0..self.people.len() as u32;
            KeyIndex::new(field, people.filter_map(|i| Some((i, kept_key(i)?))))
        });
        let i = index.find(key, |i, key| kept_key(i).as_ref() == Some(key))?;
        keeps.get(i as usize)
    }
}

/// Plans `input` against `dir` in one step: [`intake`], then [`Intake::plan`]. The
/// engine takes the two steps apart, to load only the accounts the pull needs.
pub fn plan(input: &PlanInput<'_>, dir: &DirectoryView) -> Plan {
    intake(input).plan(dir)
}

/// What a plan derives from its input alone, before it reads the directory: the people in
/// sourcedId order, what the roster and settings give each, and their record hashes.
pub struct Intake<'a> {
    input: &'a PlanInput<'a>,
    /// Indexes into `input.people`, by sourcedId, duplicates dropped.
    order: Vec<u32>,
    derivations: Derivations,
    hashes: Vec<u64>,
}

/// What a plan's intake derives from the people alone: their sourcedId order
/// ([`roster::id_order`]) and each one's content hash under the run's settings
/// ([`SisPerson::content_hash`]). A full pull works it out on a spare core while it reads
/// the enrollments, which the rest of the intake needs.
#[derive(Debug)]
pub struct PeopleAhead {
    order: Vec<u32>,
    /// Indexed like the people.
    content: Vec<u64>,
    fingerprint: u64,
}

impl PeopleAhead {
    /// The order of `people` and their content hashes under `fingerprint`
    /// ([`settings_fingerprint`]), the hashes on both cores.
    pub fn new(people: &[SisPerson], fingerprint: u64) -> PeopleAhead {
        PeopleAhead {
            order: roster::id_order(people),
            content: content_hashes(people, fingerprint),
            fingerprint,
        }
    }

    /// [`PeopleAhead::new`] on this thread alone: beside a pull's read of the enrollments,
    /// which shares the cores with it, more threads took more from the read than they
    /// saved.
    pub fn on_one_thread(people: &[SisPerson], fingerprint: u64) -> PeopleAhead {
        PeopleAhead {
            order: roster::id_order(people),
            content: people.iter().map(|p| p.content_hash(fingerprint)).collect(),
            fingerprint,
        }
    }

    /// Indexes into the people in sourcedId order, each sourcedId once.
    pub fn order(&self) -> &[u32] {
        &self.order
    }
}

/// Takes in `input`: orders its people, derives what the roster and settings give each,
/// and hashes their records ([`Intake`]).
pub fn intake<'a>(input: &'a PlanInput<'a>) -> Intake<'a> {
    let fingerprint = settings_fingerprint(input.config, input.source);
    intake_ahead(input, PeopleAhead::new(input.people, fingerprint))
}

/// Each of `people`'s [`SisPerson::content_hash`] under `fingerprint`, on both cores.
fn content_hashes(people: &[SisPerson], fingerprint: u64) -> Vec<u64> {
    map_in_halves(people, |p| p.content_hash(fingerprint))
}

/// [`intake`], given what was worked out ahead from the same people (`ahead`). Content
/// hashes made under other settings are made again.
pub fn intake_ahead<'a>(input: &'a PlanInput<'a>, ahead: PeopleAhead) -> Intake<'a> {
    if ahead.content.len() != input.people.len() {
        // Worked out from other people: none of it holds.
        return intake(input);
    }
    let fingerprint = settings_fingerprint(input.config, input.source);
    let PeopleAhead {
        order,
        mut content,
        fingerprint: made_under,
    } = ahead;
    if made_under != fingerprint {
        content = content_hashes(input.people, fingerprint);
    }
    // Indexed like `input.people` (the roster's enrollments are).
    let derivations = Derivations::new(input);

    let hashes = map_in_halves(&order, |&i| {
        let i = i as usize;
        let d = derivations.of(input, i);
        person_hash(content[i], &d)
    });
    Intake {
        input,
        order,
        derivations,
        hashes,
    }
}

impl Intake<'_> {
    /// The keys of the accounts a full pull must read whole, given a view of every link
    /// ([`DirectoryView::of_links`]): the accounts of people whose record, settings or
    /// account changed since the last sync, the candidates of people with no link, and,
    /// after a complete pull, the active accounts of people it no longer has. Everyone
    /// else is unchanged, which the link and the account's revision alone tell.
    ///
    /// When more than an eighth ([`super::WIDE_SHARE`]) of the directory's accounts changed
    /// (a rollover, a first import, a settings change), reading every account beats a
    /// lookup per key: `everyone`, and the accounts read are kept only if the keys reach
    /// them (`scan`: a rollover that changes half the people keeps about half the
    /// accounts). Past three quarters of them (a settings change that rewrites everyone),
    /// the scan would keep nearly every account for the cost of hashing every key: all
    /// are kept.
    pub fn accounts_needed(&self, dir: &DirectoryView) -> ViewKeys {
        let accounts = dir.account_count();
        self.accounts_needed_within(dir, accounts / super::WIDE_SHARE, accounts / 4 * 3)
    }

    /// [`Intake::accounts_needed`], with `everyone` and a `scan` past `most` changed
    /// people.
    pub fn accounts_needed_up_to(&self, dir: &DirectoryView, most: u64) -> ViewKeys {
        self.accounts_needed_within(dir, most, u64::MAX)
    }

    /// By key up to `most` changed people, by a scan up to `scan_most`, every account
    /// past that.
    fn accounts_needed_within(&self, dir: &DirectoryView, most: u64, scan_most: u64) -> ViewKeys {
        let input = self.input;
        let complete_full = self.complete_full();
        let changed: Vec<&SisPerson> = (self.changed(dir, 0..self.order.len()).into_iter())
            .map(|(p, _)| p)
            .collect();
        // After a complete pull, the active accounts of the people it no longer has.
        let absent = || {
            self.present()
                .absent(dir.links())
                .filter(|l| dir.link_account(l).is_none_or(|a| a.active))
        };
        if changed.len() as u64 > scan_most {
            return ViewKeys {
                everyone: true,
                ..ViewKeys::default()
            };
        }
        if changed.len() as u64 > most {
            // Every account is read, and those the keys reach kept.
            let mut scan = hashed_keys_of(input.source, changed, complete_full, dir);
            if complete_full {
                for l in absent() {
                    scan.account(l.user_id);
                }
            }
            return ViewKeys {
                everyone: true,
                scan: Some(scan),
                ..ViewKeys::default()
            };
        }
        let mut keys = keys_of(input.source, changed, complete_full);
        if complete_full {
            for l in absent() {
                keys.sourced_ids.insert(l.sourced_id.to_string());
            }
        }
        keys
    }

    /// The run's people in sourcedId order.
    fn present(&self) -> Present<'_> {
        Present::new(self.input.people, &self.order)
    }

    /// Plans against `dir`, which holds every account [`Intake::accounts_needed`] names
    /// (or the whole directory).
    pub fn plan(self, dir: &DirectoryView) -> Plan {
        // A re-sync plans items for the few people who changed: grown as needed. With
        // nobody linked yet (a first import), everyone gets an item and nearly everyone a
        // record: sized once, as doubling's last copy would hold both halves at once
        // (~0.8 GB at three million people).
        let (mut items, mut sis_records) = if dir.links().next().is_none() {
            let people = self.order.len();
            (Vec::with_capacity(people), Vec::with_capacity(people))
        } else {
            (Vec::new(), Vec::new())
        };
        let input = self.input;
        let decided = self.decide_all(dir, |item, record| {
            sis_records.extend(record);
            items.push(item);
        });
        finish(input, dir, self.into_order(), decided, items, sis_records)
    }

    /// The order alone: what the people's decisions needed goes before the roster's
    /// planning, which needs room of its own (every class's members, every guardian's
    /// students) and the people in sourcedId order.
    fn into_order(self) -> Vec<u32> {
        self.order
    }

    /// [`Intake::plan`], but every item (with a linked person's SIS record) goes to
    /// `sink` as it is decided, in the plan's order, instead of into the plan: the caller
    /// applies a plan too large to hold ([`Plan::items`] and [`Plan::sis_records`] of
    /// the plan returned are empty). An intake of the same input plans the same items
    /// against the same view.
    pub fn plan_into(
        self,
        dir: &DirectoryView,
        sink: impl FnMut(PlanItem, Option<SisRecord>),
    ) -> Plan {
        let decided = self.decide_all(dir, sink);
        self.finish_handed_out(dir, decided)
    }

    /// [`Intake::plan_into`] against `dir`, a view of every link that holds no account
    /// ([`DirectoryView::of_links`]): the accounts are read through `load` a chunk of
    /// `chunk` people at a time, each chunk's let go before the next is read, so a run
    /// that changes most of the district never holds every account. The plan is the one
    /// [`Intake::plan_into`] makes against a view of every account (the same items in the
    /// same order): correlation is worked out first for everyone, on the accounts the
    /// unlinked people's keys reach (a claim is judged over the whole run), and each
    /// chunk's view holds every account its changed people's keys reach, as a smaller
    /// change's view does ([`Intake::accounts_needed`]). What a person takes (an email, a
    /// username) is carried from chunk to chunk. `dir` holds no account afterwards.
    pub fn plan_by_chunks<E>(
        self,
        dir: &mut DirectoryView,
        chunk: usize,
        load: &mut dyn FnMut(&ViewKeys) -> Result<Accounts, E>,
        sink: impl FnMut(PlanItem, Option<SisRecord>),
    ) -> Result<Plan, E> {
        let decided = self.decide_by_chunks(dir, chunk.max(1), load, sink)?;
        Ok(self.finish_handed_out(dir, decided))
    }

    /// The plan around items already handed out ([`Intake::plan_into`]): its items and
    /// records left empty.
    fn finish_handed_out(self, dir: &DirectoryView, decided: Decided) -> Plan {
        let input = self.input;
        finish(
            input,
            dir,
            self.into_order(),
            decided,
            Vec::new(),
            Vec::new(),
        )
    }

    fn complete_full(&self) -> bool {
        self.input.kind == SyncKind::Full && self.input.complete
    }

    /// Decides every person (then every linked person missing from a complete full
    /// pull), handing each item that is not just "unchanged" to `sink` with the SIS
    /// record of a linked person.
    fn decide_all(
        &self,
        dir: &DirectoryView,
        mut sink: impl FnMut(PlanItem, Option<SisRecord>),
    ) -> Decided {
        let input = self.input;
        let people = self.present();
        // Correlate everyone first. A rekey (a linked person under a new sourcedId) can only
        // be told from a new person when the pull is complete: then the old sourcedId's
        // absence is proof.
        let rekeys = self.complete_full().then_some(self.present());
        let correlations = correlate_all(input.source, dir, people, rekeys);
        let keeps = correlations.iter().map(Correlation::account).collect();
        let mut ctx = SisPlanning {
            input,
            dir,
            people,
            taken: Taken::new(input.source, keeps),
        };
        let mut deciding = Deciding::new(self);
        for (i, correlation) in correlations.into_iter().enumerate() {
            deciding.person(&mut ctx, i, correlation, &mut sink);
        }
        // Linked people missing from a complete full pull (but for links a rekey just moved).
        if self.complete_full() {
            for item in absentees(&ctx, &deciding.moved, self.present()) {
                deciding.absent(item, &mut sink);
            }
        }
        deciding.finish(dir)
    }

    /// [`Intake::decide_all`] with the accounts read a chunk at a time
    /// ([`Intake::plan_by_chunks`]).
    fn decide_by_chunks<E>(
        &self,
        dir: &mut DirectoryView,
        chunk: usize,
        load: &mut dyn FnMut(&ViewKeys) -> Result<Accounts, E>,
        mut sink: impl FnMut(PlanItem, Option<SisRecord>),
    ) -> Result<Decided, E> {
        let input = self.input;
        let source = input.source;
        let complete_full = self.complete_full();
        let people = self.present();

        // Correlation first, for everyone, a chunk at a time: a linked person is their link
        // (found again below), an unlinked one is matched on the accounts their chunk's
        // keys reach; then claims are judged over the whole run. Only the correlations
        // that found something are kept, with the person's place: in a run this wide
        // most people are linked or new.
        let rekeys = complete_full.then_some(self.present());
        let mut found: Vec<(u32, Correlation<'static>)> = Vec::new();
        let mut keeps = Keeps::with_capacity(people.len());
        for start in (0..people.len()).step_by(chunk) {
            let chunk_people = (start..(start + chunk).min(people.len())).map(|i| people.get(i));
            let mut links = dir.link_walk();
            let linked: Vec<Option<AccountId>> = chunk_people
                .clone()
                .map(|p| links.find(p.sourced_id()).map(|l| l.user_id))
                .collect();
            let unlinked = chunk_people
                .clone()
                .zip(&linked)
                .filter(|(p, l)| l.is_none() && imported_type(&source.import, p).is_some())
                .map(|(p, _)| p);
            let keys = keys_of(source, unlinked, complete_full);
            if keys != ViewKeys::default() {
                read_into(dir, load, &keys)?;
            }
            for ((p, user), i) in chunk_people.zip(linked).zip(start..) {
                let c = match user {
                    Some(_) => Correlation::New,
                    None => correlate_person(source, dir, p, None, rekeys),
                };
                keeps.push(user.or_else(|| c.account()));
                if !matches!(c, Correlation::New) {
                    found.push((i as u32, c));
                }
            }
        }
        settle_claims(found.iter_mut().map(|(i, c)| (*i as usize, c)), people);
        for (i, c) in &found {
            if let Correlation::Disputed(_) = c {
                keeps.clear(*i as usize);
            }
        }
        // Handed out in the order of the people, as they are decided.
        let mut found = found.into_iter().peekable();
        let mut taken = Taken::new(source, keeps);
        let mut deciding = Deciding::new(self);
        let mut start = 0;
        while start < people.len() {
            let end = (start + chunk).min(people.len());
            self.read_chunk(dir, start..end, load)?;
            let mut ctx = SisPlanning {
                input,
                dir,
                people,
                taken,
            };
            let mut links = dir.link_walk();
            for i in start..end {
                // Unlinked people were correlated above; a linked one is their link (and
                // one linked since, which the view cannot be, would leave its match here).
                while found.next_if(|(at, _)| (*at as usize) < i).is_some() {}
                let correlation = match links.find(people.get(i).sourced_id()) {
                    Some(link) => Correlation::Linked(link),
                    None => match found.next_if(|(at, _)| *at as usize == i) {
                        Some((_, c)) => c,
                        None => Correlation::New,
                    },
                };
                deciding.person(&mut ctx, i, correlation, &mut sink);
            }
            taken = ctx.taken;
            start = end;
        }
        drop(found);
        if complete_full {
            // The active accounts of the linked people the pull no longer has, a chunk at
            // a time (but for links a rekey just moved), as their links tell (no account
            // of the last chunk held: the same answer for every link).
            dir.clear_accounts();
            let missing: Vec<String> = self
                .present()
                .absent(dir.links())
                .filter(|l| !deciding.moved.contains(&*l.sourced_id))
                .filter(|l| dir.link_account(l).is_none_or(|a| a.active))
                .map(|l| l.sourced_id.to_string())
                .collect();
            for ids in missing.chunks(chunk) {
                let keys = ViewKeys {
                    sourced_ids: ids.iter().cloned().collect(),
                    ..ViewKeys::default()
                };
                read_into(dir, load, &keys)?;
                let ctx = SisPlanning {
                    input,
                    dir,
                    people,
                    taken,
                };
                for id in ids {
                    if let Some(item) = dir.link(id).and_then(|link| absent(&ctx, link)) {
                        deciding.absent(item, &mut sink);
                    }
                }
                taken = ctx.taken;
            }
        }
        dir.clear_accounts();
        Ok(deciding.finish(dir))
    }

    /// Reads into `dir`, in place of the accounts it held, every account the changed
    /// people among `range` (indexes into the run's people in sourcedId order) reach: an
    /// unlinked person's every key (correlation and a creation look them up, as
    /// [`Intake::accounts_needed`] reads them); a linked person's account by the id their
    /// link holds, then the accounts holding an email or username the person would take
    /// that their account does not hold already (an update looks those up,
    /// `take_identity`), or any of theirs when the account is inactive or missing (one
    /// back after the grace period gets a new account, which looks them up).
    fn read_chunk<E>(
        &self,
        dir: &mut DirectoryView,
        range: std::ops::Range<usize>,
        load: &mut dyn FnMut(&ViewKeys) -> Result<Accounts, E>,
    ) -> Result<(), E> {
        let source = self.input.source;
        let mut linked = Vec::new();
        let mut unlinked = Vec::new();
        for (p, user) in self.changed(dir, range) {
            match user {
                Some(user) => linked.push((p, user)),
                None => unlinked.push(p),
            }
        }
        let mut keys = keys_of(source, unlinked, self.complete_full());
        keys.accounts = linked.iter().map(|(_, user)| *user).collect();
        read_into(dir, load, &keys)?;
        let mut identities = ViewKeys::default();
        for (p, user) in linked {
            let account = dir.user(user).filter(|a| a.active);
            for field in [Field::Email, Field::Username] {
                let Some(key) = identity_key(source, p, field) else {
                    continue;
                };
                let held = account
                    .and_then(|a| a.get(field))
                    .is_some_and(|v| MatchKey::same(v, key.as_str()));
                if !held {
                    match field {
                        Field::Email => identities.emails.insert(key),
                        _ => identities.usernames.insert(key),
                    };
                }
            }
        }
        if identities != ViewKeys::default() {
            let (users, aliases) = load(&identities)?;
            dir.add_accounts(users, aliases);
        }
        Ok(())
    }

    /// The people among `range` (indexes into the run's people in sourcedId order) whose
    /// accounts a plan reads, as [`Intake::accounts_needed`] tells them, each with the
    /// account their link names, if any.
    fn changed(
        &self,
        dir: &DirectoryView,
        range: std::ops::Range<usize>,
    ) -> Vec<(&SisPerson, Option<AccountId>)> {
        let input = self.input;
        let mut links = dir.link_walk();
        let mut changed = Vec::new();
        for (&i, hash) in self.order[range.clone()].iter().zip(&self.hashes[range]) {
            let p = &input.people[i as usize];
            let link = links.find(p.sourced_id());
            let unchanged = link.is_some_and(|link| dir.link_unchanged(link, *hash));
            // A person the source does not import and nobody linked is not matched
            // (`correlate_all`): no account to read for them.
            if !unchanged && (link.is_some() || imported_type(&input.source.import, p).is_some()) {
                changed.push((p, link.map(|l| l.user_id)));
            }
        }
        changed
    }
}

/// The people's decisions as they are made: counted, their items handed on, and what
/// the rest of the plan needs kept ([`Decided`]).
struct Deciding<'i> {
    intake: &'i Intake<'i>,
    counts: Counts,
    review: Vec<SisRecord>,
    imported: Vec<bool>,
    /// The old sourcedIds rekeys took over: not missing.
    moved: HashSet<String>,
    planned: memo::People,
    /// A complete full pull's skips, which the next one compares with.
    skips: Option<Vec<u64>>,
}

impl<'i> Deciding<'i> {
    fn new(intake: &'i Intake<'i>) -> Deciding<'i> {
        Deciding {
            intake,
            counts: Counts {
                seen: intake.order.len() as u64,
                ..Counts::default()
            },
            review: Vec::new(),
            imported: vec![false; intake.input.people.len()],
            moved: HashSet::new(),
            planned: memo::People::new(),
            skips: intake.complete_full().then(Vec::new),
        }
    }

    /// Decides person `i` (in sourcedId order) as they correlated.
    fn person(
        &mut self,
        ctx: &mut SisPlanning<'_>,
        i: usize,
        correlation: Correlation<'_>,
        sink: &mut impl FnMut(PlanItem, Option<SisRecord>),
    ) {
        let intake = self.intake;
        let input = intake.input;
        let (original, hash) = (ctx.people.place(i), intake.hashes[i]);
        let p = ctx.people.get(i);
        // What the roster gives the person, worked out once and only if asked for.
        let derived = std::cell::OnceCell::new();
        let d = || *derived.get_or_init(|| intake.derivations.of(input, original));
        // The item, or for a person whose role is not imported what it would say (made
        // only if the skip is listed).
        let (item, key) = match decide(ctx, i as u32, correlation, d, hash) {
            PersonPlan::Unchanged => {
                // Counted, nothing planned. Most of a re-sync's people.
                self.counts.add(Outcome::Unchanged, false);
                self.imported[original] = true;
                self.planned.add(original, true, hash);
                return;
            }
            PersonPlan::NotImported(skip, user) => {
                (Err((skip, user)), Some(skip.key(p.sourced_id(), user)))
            }
            PersonPlan::Item(item) => {
                let key = item.listed_skip_key();
                (Ok(item), key)
            }
        };
        if let Some(key) = key {
            if let Some(s) = &mut self.skips {
                s.push(key);
            }
            // A full pull lists only the skips an earlier one did not.
            let listed =
                input.kind == SyncKind::Full && ctx.dir.source_state().listed_skips.contains(key);
            if listed {
                // Counted; listed by the run that first skipped them so.
                self.counts.add(Outcome::Skipped, false);
                self.counts.skipped_listed_before += 1;
                self.planned.add(original, false, hash);
                return;
            }
        }
        let item = item.unwrap_or_else(|(skip, user)| {
            PlanItem::new(p.sourced_id(), user, Outcome::Skipped, skip.reason())
        });
        count(&mut self.counts, &item);
        let imported = !matches!(item.outcome, Outcome::Skipped | Outcome::Error);
        self.imported[original] = imported;
        self.planned.add(original, imported, hash);
        if item.reason.needs_review() {
            self.review.push(sis_record(p, &d()));
        }
        if item.outcome != Outcome::Unchanged || item.link.is_some() {
            if intake.complete_full()
                && let Some(old) = &item.replaces
            {
                self.moved.insert(old.clone());
            }
            let record = item.link.is_some().then(|| sis_record(p, &d()));
            sink(item, record);
        }
    }

    /// The item of a linked person a complete full pull no longer has.
    fn absent(&mut self, item: PlanItem, sink: &mut impl FnMut(PlanItem, Option<SisRecord>)) {
        count(&mut self.counts, &item);
        sink(item, None);
    }

    fn finish(self, dir: &DirectoryView) -> Decided {
        let intake = self.intake;
        Decided {
            counts: self.counts,
            review: self.review,
            imported: self.imported,
            planned: self.planned.finish(),
            gone_cases: if intake.complete_full() {
                gone_cases(dir, intake.present())
            } else {
                Vec::new()
            },
            // Kept as they are when they did not change (most days).
            listed_skips: self
                .skips
                .map(ListedSkips::new)
                .filter(|s| *s != dir.source_state().listed_skips),
        }
    }
}

/// Reads what `keys` reach into `dir`, in place of the accounts it held.
fn read_into<E>(
    dir: &mut DirectoryView,
    load: &mut dyn FnMut(&ViewKeys) -> Result<Accounts, E>,
    keys: &ViewKeys,
) -> Result<(), E> {
    dir.clear_accounts();
    let (users, aliases) = load(keys)?;
    dir.add_accounts(users, aliases);
    Ok(())
}

/// What deciding the people leaves for the rest of the plan.
struct Decided {
    counts: Counts,
    review: Vec<SisRecord>,
    /// By index into the input's people: whether the person has an account after the run.
    imported: Vec<bool>,
    /// The people as the roster plan sees them ([`memo::People`]).
    planned: u64,
    gone_cases: Vec<String>,
    /// A complete full pull's skips ([`ListedSkips`]).
    listed_skips: Option<ListedSkips>,
}

/// The plan: the people's items and records, and the roster planned for the people
/// `decided` imported (`order`: the intake's, [`roster::id_order`]).
fn finish(
    input: &PlanInput<'_>,
    dir: &DirectoryView,
    order: Vec<u32>,
    decided: Decided,
    items: Vec<PlanItem>,
    sis_records: Vec<SisRecord>,
) -> Plan {
    let Decided {
        mut counts,
        review,
        imported,
        planned,
        gone_cases,
        listed_skips,
    } = decided;
    let roster = match (input.kind, input.roster) {
        (SyncKind::Full, Some(r)) if input.complete => {
            Some(plan_roster(input, dir, r, &order, &imported, planned))
        }
        _ => None,
    };
    if let Some(r) = &roster {
        counts.groups = r.groups.len() as u64;
    }
    Plan {
        source: input.source.name.clone(),
        kind: input.kind,
        complete: input.complete,
        items,
        counts,
        sis_records,
        review,
        roster,
        watermark: None,
        gone_cases,
        listed_skips,
    }
}

/// The items for linked people missing from a complete full pull, in sourcedId order,
/// but for the links a rekey just moved (`moved`, their old sourcedIds).
fn absentees(
    ctx: &SisPlanning<'_>,
    moved: &HashSet<String>,
    present: Present<'_>,
) -> Vec<PlanItem> {
    present
        .absent(ctx.dir.links())
        .filter(|l| !moved.contains(&*l.sourced_id))
        .filter_map(|link| absent(ctx, link))
        .collect()
}

/// People with an open review case whom a complete full pull (`present`) no longer has,
/// sorted: their cases close.
fn gone_cases(dir: &DirectoryView, present: Present<'_>) -> Vec<String> {
    let mut gone: Vec<String> = dir
        .source_state()
        .open_cases
        .iter()
        .filter(|id| !present.contains(id.as_str()))
        .cloned()
        .collect();
    gone.sort();
    gone
}

/// Whether a linked person's account is as the last sync left it for the same record
/// hash: nothing to write, and nothing to read but the link and the account's revision.
fn count(counts: &mut Counts, item: &PlanItem) {
    counts.add(item.outcome, item.replaces.is_some());
}

/// The record hash, with what the run derives for the person: a new homeroom must not
/// hide behind an unchanged SIS record. `content`: the person's
/// [`SisPerson::content_hash`] under the run's settings.
fn person_hash(content: u64, d: &Derived) -> u64 {
    let mut h = Fnv::new();
    h.u64(content);
    for v in [d.location, d.homeroom] {
        match v {
            Some(v) => h.opt(v),
            None => h.bytes(&[2]),
        }
    }
    match d.classes {
        Some(c) => c.ids().for_each(|c| h.str(c)),
        None => h.bytes(&[3]),
    }
    h.finish()
}

fn sis_record(p: &SisPerson, d: &Derived) -> SisRecord {
    SisRecord::pack(
        [
            Some(p.sourced_id()),
            p.role().map(|r| r.as_str()),
            Some(p.status().as_str()),
            Some(p.username()),
            p.email(),
            Some(p.given_name()),
            Some(p.family_name()),
            p.identifier(),
            p.grade(),
            p.primary_org(),
            d.location.flatten(),
            d.homeroom.flatten(),
        ],
        d.classes.map(roster::Classes::ids),
        p.enabled(),
        p.modified(),
    )
}

/// The values the SIS wants, field by field. `None` means "the SIS has no value"; fields
/// this run does not know (homeroom on a delta) are left out.
fn desired(
    source: &SourceConfig,
    p: &SisPerson,
    user_type: UserType,
    d: &Derived,
) -> Vec<(Field, Option<String>)> {
    let mut out = vec![
        (
            Field::Username,
            (!p.username().is_empty()).then(|| p.username().to_owned()),
        ),
        (Field::Email, directory_email(source, p)),
        (
            Field::FirstName,
            (!p.given_name().is_empty()).then(|| p.given_name().to_owned()),
        ),
        (Field::MiddleName, p.middle_name().map(str::to_owned)),
        (
            Field::LastName,
            (!p.family_name().is_empty()).then(|| p.family_name().to_owned()),
        ),
        (
            Field::PreferredName,
            p.preferred_first_name().map(str::to_owned),
        ),
        (Field::Type, Some(user_type.as_str().to_owned())),
        (Field::Grade, p.grade().map(str::to_owned)),
        (Field::Identifier, p.identifier().map(str::to_owned)),
        (Field::Phone, p.phone().map(str::to_owned)),
    ];
    if let Some(location) = d.location {
        out.push((Field::Location, location.map(str::to_owned)));
    }
    if let Some(homeroom) = d.homeroom {
        out.push((Field::Homeroom, homeroom.map(str::to_owned)));
    }
    out
}

/// Identity keys the sync never blanks: a person without an SIS email keeps the one
/// single sign-on gave them.
fn never_blanked(f: Field) -> bool {
    matches!(f, Field::Username | Field::Email)
}

fn same_value(f: Field, a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) if f == Field::Email || f == Field::Username => MatchKey::same(a, b),
        (a, b) => a.filter(|s| !s.is_empty()) == b.filter(|s| !s.is_empty()),
    }
}

/// Field changes for an existing account, under the global switches and this source's
/// priorities.
fn field_changes(
    ctx: &SisPlanning<'_>,
    user: &Account,
    wanted: Vec<(Field, Option<String>)>,
) -> Vec<FieldChange> {
    let input = ctx.input;
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
                old.is_none_or(str::is_empty) || user.writer_of(field) == Some(&ctx.taken.me)
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

/// The access a synced person should have.
fn desired_access(source: &SourceConfig, user_type: UserType) -> Access {
    if user_type == UserType::Guardian && !source.features.guardian_logins {
        Access::NoAccess
    } else {
        Access::Requestor
    }
}

fn protected(access: Access) -> bool {
    matches!(access, Access::Agent | Access::Admin)
}

fn days_between(earlier: Timestamp, later: Timestamp) -> i64 {
    (later.as_second() - earlier.as_second()).div_euclid(86_400)
}

/// What [`decide`] makes of a person. Returned once per person and taken apart at once,
/// as the `Option<PlanItem>` before it was: boxing the item would add an allocation to
/// every item for nothing.
#[allow(clippy::large_enum_variant)]
enum PersonPlan<'p> {
    /// Linked, their record and account as the last sync left them: nothing to plan,
    /// nothing to write, and what the roster gives them never worked out.
    Unchanged,
    /// Their role is not imported: skipped so, with the account they are linked to. The
    /// item is made only if the skip is listed ([`ListedSkips`]).
    NotImported(SettingsSkip<'p>, Option<AccountId>),
    Item(PlanItem),
}

/// What to do with person `i` of the run, as it correlated.
fn decide<'d, 'p>(
    ctx: &mut SisPlanning<'p>,
    i: u32,
    correlation: Correlation<'_>,
    derive: impl FnOnce() -> Derived<'d>,
    hash: u64,
) -> PersonPlan<'p> {
    let (input, p) = (ctx.input, ctx.people.get(i as usize));
    let import = &input.source.import;
    let Some(user_type) = imported_type(import, p) else {
        let linked_user = match &correlation {
            Correlation::Linked(link) => Some(link.user_id),
            _ => None,
        };
        return PersonPlan::NotImported(not_imported(p), linked_user);
    };
    if let Correlation::Linked(link) = &correlation
        && ctx.dir.link_unchanged(link, hash)
    {
        return PersonPlan::Unchanged;
    }
    PersonPlan::Item(plan_person(ctx, i, correlation, user_type, &derive(), hash))
}

/// [`decide`]'s item for person `i`, whose role the source imports as `user_type` and who
/// is not linked unchanged.
fn plan_person(
    ctx: &mut SisPlanning<'_>,
    i: u32,
    correlation: Correlation<'_>,
    user_type: UserType,
    d: &Derived,
    hash: u64,
) -> PlanItem {
    let (input, p) = (ctx.input, ctx.people.get(i as usize));
    let import = &input.source.import;
    match correlation {
        Correlation::Disputed(reason) => {
            PlanItem::new(p.sourced_id(), None, Outcome::Skipped, *reason)
        }
        Correlation::New => create(ctx, i, user_type, d, hash, Reason::NewPerson, None),
        Correlation::Decided(Decision::Ignore) => PlanItem::new(
            p.sourced_id(),
            None,
            Outcome::Skipped,
            Reason::IgnoredByAdmin,
        ),
        Correlation::Decided(Decision::Create) => {
            create(ctx, i, user_type, d, hash, Reason::CreatedByDecision, None)
        }
        Correlation::Rekeyed(rekey) => {
            let Rekey {
                user: user_id,
                rule,
                old,
            } = *rekey;
            let dir = ctx.dir;
            let Some(user) = dir.user(user_id) else {
                return PlanItem::new(p.sourced_id(), None, Outcome::Skipped, Reason::NoChange);
            };
            let mut item = update(ctx, p, user, dir.link(&old), rule, user_type, d, hash, None);
            // The old link's state carries over; the link itself is new (a new key).
            let mut link = item.link.take().unwrap_or(LinkWrite {
                rule,
                record_hash: hash,
                is_new: true,
                misses: 0,
                deactivated_at: None,
                previous_access: None,
            });
            link.is_new = true;
            link.misses = 0;
            link.rule = rule;
            item.link = Some(link);
            if matches!(item.outcome, Outcome::Unchanged | Outcome::Updated) {
                item.outcome = Outcome::Linked;
                item.reason = Reason::Rekeyed {
                    old_sourced_id: old.clone(),
                    rule,
                };
            }
            item.replaces = Some(old);
            item
        }
        Correlation::Linked(link) => {
            let (dir, user_id) = (ctx.dir, link.user_id);
            let Some(user) = dir.user(user_id) else {
                // The link points at an account the view does not hold: nothing safe to do.
                return PlanItem::new(
                    p.sourced_id(),
                    Some(user_id),
                    Outcome::Skipped,
                    Reason::NoChange,
                );
            };
            // Back after the grace period: a new account; the old one keeps its history.
            if p.active()
                && !user.active
                && let Some(at) = link.deactivated_at()
            {
                let days = days_between(at, input.now);
                if days > i64::from(import.relink_grace_days) {
                    return create(
                        ctx,
                        i,
                        user_type,
                        d,
                        hash,
                        Reason::ReturnedAfterGrace {
                            old_user: user_id,
                            days,
                        },
                        Some(user_id),
                    );
                }
            }
            update(
                ctx,
                p,
                user,
                Some(link),
                link.rule,
                user_type,
                d,
                hash,
                None,
            )
        }
        Correlation::Matched(found) => {
            let Match {
                user: user_id,
                rule,
                key,
            } = *found;
            let Some(user) = ctx.dir.user(user_id) else {
                return PlanItem::new(p.sourced_id(), None, Outcome::Skipped, Reason::NoChange);
            };
            update(
                ctx,
                p,
                user,
                None,
                rule,
                user_type,
                d,
                hash,
                Some(Reason::Matched { rule, key }),
            )
        }
    }
}

/// The directory type of a person whose role the source imports; `None` for one it skips
/// ([`not_imported`] says why).
pub(super) fn imported_type(import: &ImportOptions, p: &SisPerson) -> Option<UserType> {
    let (user_type, category) = p.classification()?;
    let imported = match category {
        Category::Students => import.students,
        Category::Teachers => import.teachers,
        Category::Administrators => import.administrators,
        Category::OtherUsers => import.other_users,
    };
    imported.then_some(user_type)
}

/// Why the source skips a person [`imported_type`] gives no type.
fn not_imported(p: &SisPerson) -> SettingsSkip<'_> {
    match p.classification() {
        None => SettingsSkip::NoImportableRole {
            role: p.role().map(|r| r.as_str()),
        },
        Some((_, category)) => SettingsSkip::CategoryNotImported {
            role: p.role().map_or("", |r| r.as_str()),
            category: category.as_str(),
        },
    }
}

/// A new account for person `i` of the run. `retired` is the old account of someone back after the
/// grace period (its email may be taken again).
fn create(
    ctx: &mut SisPlanning<'_>,
    i: u32,
    user_type: UserType,
    d: &Derived,
    hash: u64,
    reason: Reason,
    retired: Option<AccountId>,
) -> PlanItem {
    let (input, p) = (ctx.input, ctx.people.get(i as usize));
    let import = &input.source.import;
    if !p.active() && !import.include_inactive {
        return PlanItem::new(
            p.sourced_id(),
            None,
            Outcome::Skipped,
            Reason::InactiveNotImported,
        );
    }
    let wanted = desired(input.source, p, user_type, d);
    let email = wanted
        .iter()
        .find(|(f, _)| *f == Field::Email)
        .and_then(|(_, v)| v.clone());
    if email.is_none() && p.username().is_empty() {
        return PlanItem::new(
            p.sourced_id(),
            None,
            Outcome::Error,
            Reason::NoEmailOrUsername,
        );
    }
    // One person, one account: a new account never takes an email or username another
    // account has, nor one another person of this run keeps or takes first. An admin who
    // decided the two are different people (kept apart, or *make a new account*) gets the
    // account without that value; otherwise the person waits (a review case, but for an
    // email another account has, which the email match would have linked were it on).
    let skip = |reason: Reason| PlanItem::new(p.sourced_id(), None, Outcome::Skipped, reason);
    // What a person of this run has for a field that [`NewIdentities`] keeps, to confirm a
    // hit: the same values `desired` gives a new account.
    let (source, people) = (input.source, ctx.people);
    let identity_of = |field: Field, i: u32| identity_key(source, people.get(i as usize), field);
    let apart = |user: AccountId| {
        reason == Reason::CreatedByDecision || ctx.dir.kept_apart(p.sourced_id(), user)
    };
    let mut dropped: Vec<Field> = Vec::new();
    let mut kept_apart: Option<Reason> = None;
    let mut keep_apart = |field: Field, value: &str, user: AccountId, dropped: &mut Vec<Field>| {
        dropped.push(field);
        kept_apart.get_or_insert(Reason::KeptApart {
            field,
            value: value.to_owned(),
            user,
        });
    };
    if let Some(e) = &email
        && input.config.field_enabled(Field::Email)
    {
        let key = MatchKey::new(e);
        let owner = ctx
            .dir
            .by_email(&key)
            .iter()
            .copied()
            .find(|&u| Some(u) != retired);
        let keeper = if retired.is_none() {
            ctx.kept_in_run(Field::Email, &key)
        } else {
            None
        };
        match (owner, keeper) {
            (Some(user), _) | (None, Some(user)) if apart(user) => {
                keep_apart(Field::Email, e, user, &mut dropped)
            }
            (Some(owner), _) => {
                return skip(Reason::EmailInUse(Box::new(EmailTaken {
                    email: e.clone(),
                    user: Some(owner),
                    sourced_id: None,
                })));
            }
            (None, Some(_)) => {
                return skip(Reason::EmailInUse(Box::new(EmailTaken {
                    email: e.clone(),
                    user: None,
                    sourced_id: None,
                })));
            }
            (None, None) => {
                if let Some(first) = ctx
                    .taken
                    .new_identities
                    .get(Field::Email, &key, identity_of)
                {
                    return skip(Reason::IdentityTakenInRun(Box::new(TakenInRun {
                        field: Field::Email,
                        value: e.clone(),
                        sourced_id: people.get(first as usize).sourced_id().to_owned(),
                    })));
                }
            }
        }
    }
    // Nor a username another account has: whether that account is active or not (an
    // account deactivated in this very run must not decide it).
    if let Some(key) = identity_of(Field::Username, i)
        && input.config.field_enabled(Field::Username)
    {
        let owner = ctx
            .dir
            .by_username(&key)
            .iter()
            .copied()
            .find(|&u| Some(u) != retired)
            .or_else(|| {
                ctx.taken
                    .claimed
                    .get(&(Field::Username, key.clone()))
                    .copied()
            })
            .or_else(|| {
                retired
                    .is_none()
                    .then(|| ctx.kept_in_run(Field::Username, &key))
                    .flatten()
            });
        match owner {
            Some(owner) if apart(owner) => {
                keep_apart(Field::Username, p.username(), owner, &mut dropped)
            }
            Some(owner) => {
                return skip(Reason::IdentityTaken {
                    field: Field::Username,
                    value: p.username().to_owned(),
                    user: owner,
                });
            }
            None => {
                if let Some(first) =
                    ctx.taken
                        .new_identities
                        .get(Field::Username, &key, identity_of)
                {
                    return skip(Reason::IdentityTakenInRun(Box::new(TakenInRun {
                        field: Field::Username,
                        value: p.username().to_owned(),
                        sourced_id: people.get(first as usize).sourced_id().to_owned(),
                    })));
                }
            }
        }
    }
    let identity_left = [
        (Field::Email, email.as_deref()),
        (Field::Username, Some(p.username())),
    ]
    .into_iter()
    .any(|(f, v)| !dropped.contains(&f) && v.is_some_and(|v| !v.is_empty()));
    if let Some(why) = &kept_apart
        && !identity_left
    {
        return skip(why.clone());
    }
    for (field, value) in [
        (Field::Email, email.as_deref()),
        (Field::Username, Some(p.username())),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty())
            && !dropped.contains(&field)
            && input.config.field_enabled(field)
        {
            ctx.taken
                .new_identities
                .insert(field, MatchKey::new(v), i, identity_of);
        }
    }
    let reason = match kept_apart {
        Some(why) if reason == Reason::NewPerson => why,
        _ => reason,
    };
    let changes: Changes = wanted
        .into_iter()
        .filter(|(f, v)| v.is_some() && input.config.field_enabled(*f) && !dropped.contains(f))
        .map(|(field, new)| FieldChange {
            field,
            old: None,
            new,
        })
        .collect();
    let mut item = PlanItem::new(p.sourced_id(), None, Outcome::Created, reason);
    item.changes = changes;
    item.new_account = Some(NewAccount {
        user_type: if input.config.field_enabled(Field::Type) {
            user_type
        } else {
            UserType::Other
        },
        access: if p.active() {
            desired_access(input.source, user_type)
        } else {
            Access::NoAccess
        },
        active: p.active(),
    });
    item.link = Some(LinkWrite::created(hash));
    item.retires = retired;
    item
}

/// An existing account: linked already (`link`), or matched now.
#[allow(clippy::too_many_arguments)]
fn update(
    ctx: &mut SisPlanning<'_>,
    p: &SisPerson,
    user: &Account,
    link: Option<&ViewLink>,
    rule: MatchRule,
    user_type: UserType,
    d: &Derived,
    hash: u64,
    matched: Option<Reason>,
) -> PlanItem {
    let input = ctx.input;
    let import = &input.source.import;
    let mut link_write = LinkWrite {
        rule,
        record_hash: hash,
        is_new: link.is_none(),
        misses: 0,
        deactivated_at: link.and_then(|l| l.deactivated_at()),
        previous_access: link.and_then(|l| l.previous_access),
    };
    let mut changes = field_changes(ctx, user, desired(input.source, p, user_type, d));
    let mut item = PlanItem::new(
        p.sourced_id(),
        Some(user.id),
        Outcome::Unchanged,
        Reason::NoChange,
    );
    item.planned_revision = Some(user.revision);

    if !p.active() {
        if user.active && import.deactivate_users {
            if protected(user.access) && !import.allow_role_downgrades {
                let mut skip = PlanItem::new(
                    p.sourced_id(),
                    Some(user.id),
                    Outcome::Skipped,
                    Reason::ProtectedAccess {
                        access: user.access,
                    },
                );
                skip.planned_revision = Some(user.revision);
                return skip;
            }
            item.outcome = Outcome::Deactivated;
            item.reason = Reason::InactiveInSis {
                status: p.status().as_str().to_owned(),
                enabled: p.enabled(),
            };
            item.active = Some((true, false));
            if user.access != Access::NoAccess {
                item.access = Some((user.access, Access::NoAccess));
            }
            link_write.deactivated_at = Some(input.now);
            link_write.previous_access = Some(user.access);
        }
    } else if !user.active {
        // Back: reactivate what this source deactivated; what an admin deactivated stays.
        if let Some(at) = link.and_then(|l| l.deactivated_at()) {
            let restored = link
                .and_then(|l| l.previous_access)
                .unwrap_or_else(|| desired_access(input.source, user_type));
            item.outcome = Outcome::Reactivated;
            item.reason = Reason::Returned {
                days: days_between(at, input.now),
            };
            item.active = Some((false, true));
            if restored != user.access {
                item.access = Some((user.access, restored));
            }
            link_write.deactivated_at = None;
            link_write.previous_access = None;
        }
    } else {
        let want = desired_access(input.source, user_type);
        if user.access != want && (!protected(user.access) || import.allow_role_downgrades) {
            item.access = Some((user.access, want));
        }
    }

    // One person, one account: an email or username another account has stays where it
    // is; the rest of the changes apply, and a review case asks whether the two accounts
    // are one person.
    let ends_active = item.active.map_or(user.active, |(_, now)| now);
    let taken = if ends_active {
        take_identity(ctx, p.sourced_id(), user.id, &mut changes)
    } else {
        None
    };
    item.changes = changes.into();
    if item.outcome == Outcome::Unchanged {
        match matched {
            Some(reason) => {
                item.outcome = Outcome::Linked;
                item.reason = reason;
            }
            None if !item.changes.is_empty() => {
                item.outcome = Outcome::Updated;
                item.reason = Reason::FieldsChanged;
            }
            None if item.access.is_some() => {
                item.outcome = Outcome::Updated;
                item.reason = Reason::AccessChanged;
            }
            None => {}
        }
    }
    if let Some(reason) = taken
        && matches!(item.outcome, Outcome::Unchanged | Outcome::Updated)
    {
        // A change that waits for a person is a skip; one an admin settled is not.
        if item.outcome == Outcome::Unchanged && reason.needs_review() {
            item.outcome = Outcome::Skipped;
        }
        item.reason = reason;
    }
    let link_unchanged = link.is_some_and(|l| {
        l.record_hash == link_write.record_hash
            && l.misses == link_write.misses
            && l.deactivated_at() == link_write.deactivated_at
            && l.previous_access == link_write.previous_access
            && l.synced_revision == user.revision
    });
    let writes = !item.changes.is_empty() || item.active.is_some() || item.access.is_some();
    if writes || !link_unchanged {
        item.link = Some(link_write);
    }
    item
}

/// Drops an email or username change whose new value another account already has (in
/// the directory, or claimed by another account earlier in this run), and says which:
/// `identity_taken` (a review case), or `kept_apart` when an admin decided that account is
/// another person's. Claims the values it keeps.
fn take_identity(
    ctx: &mut SisPlanning<'_>,
    sourced_id: &str,
    me: AccountId,
    changes: &mut Vec<FieldChange>,
) -> Option<Reason> {
    let mut taken: Option<Reason> = None;
    changes.retain(|c| {
        let Some(value) = c.new.as_deref().filter(|v| !v.is_empty()) else {
            return true;
        };
        if !matches!(c.field, Field::Email | Field::Username) {
            return true;
        }
        let value_key = MatchKey::new(value);
        let holders = match c.field {
            Field::Email => ctx.dir.by_email(&value_key),
            _ => ctx.dir.by_username(&value_key),
        };
        let key = (c.field, value_key);
        let other = holders
            .iter()
            .copied()
            .find(|&u| {
                // Active or not: an account deactivated in this very run must not decide
                // it (the plan would not settle), and an old account keeps its address
                // until an admin merges or changes it.
                u != me && ctx.dir.user(u).is_none_or(|o| o.merged_into.is_none())
            })
            .or_else(|| ctx.taken.claimed.get(&key).copied().filter(|&u| u != me));
        match other {
            Some(user) => {
                let why = if ctx.dir.kept_apart(sourced_id, user) {
                    Reason::KeptApart {
                        field: c.field,
                        value: value.to_owned(),
                        user,
                    }
                } else {
                    Reason::IdentityTaken {
                        field: c.field,
                        value: value.to_owned(),
                        user,
                    }
                };
                // A case to open wins over a decision already made.
                if taken
                    .as_ref()
                    .is_none_or(|t| !t.needs_review() && why.needs_review())
                {
                    taken = Some(why);
                }
                false
            }
            None => {
                ctx.taken.claimed.insert(key, me);
                true
            }
        }
    });
    taken
}

/// A linked person missing from a complete full pull.
fn absent(ctx: &SisPlanning<'_>, link: &ViewLink) -> Option<PlanItem> {
    let input = ctx.input;
    let import = &input.source.import;
    let user = ctx.dir.user(link.user_id)?;
    if !user.active {
        return None;
    }
    let misses = link.misses.saturating_add(1);
    let mut link_write = LinkWrite {
        rule: link.rule,
        record_hash: link.record_hash,
        is_new: false,
        misses,
        deactivated_at: link.deactivated_at(),
        previous_access: link.previous_access,
    };
    let needed = import.deactivate_after_misses.max(1);
    let mut item = PlanItem::new(
        &link.sourced_id,
        Some(user.id),
        Outcome::Unchanged,
        Reason::NoChange,
    );
    item.planned_revision = Some(user.revision);
    if misses >= needed && import.deactivate_users {
        if protected(user.access) && !import.allow_role_downgrades {
            item.outcome = Outcome::Skipped;
            item.reason = Reason::ProtectedAccess {
                access: user.access,
            };
        } else {
            item.outcome = Outcome::Deactivated;
            item.reason = Reason::AbsentFromCompletePull { misses };
            item.active = Some((true, false));
            if user.access != Access::NoAccess {
                item.access = Some((user.access, Access::NoAccess));
            }
            link_write.deactivated_at = Some(input.now);
            link_write.previous_access = Some(user.access);
        }
    } else {
        item.reason = Reason::Missing { misses, needed };
    }
    item.link = Some(link_write);
    Some(item)
}

/// Groups, relationships and calendars, from a complete full pull; the groups and the
/// relationships only if the memo says they may have changed ([`memo`]). `planned` is
/// the people as the roster plan sees them ([`memo::People`]).
fn plan_roster(
    input: &PlanInput<'_>,
    dir: &DirectoryView,
    r: &roster::Roster,
    order: &[u32],
    imported: &[bool],
    planned: u64,
) -> RosterPlan {
    let source = input.source;
    let state = dir.source_state();
    let mut out = RosterPlan {
        orgs: r.orgs.clone(),
        ..RosterPlan::default()
    };
    // The groups and the relationships are made from the same people, each without the
    // other: for a long roster the relationships on a second thread (`halves::both_for`).
    // Each returns its changes and the memo key the directory matches once they are
    // applied.
    let relationships = || {
        let key = memo::relationships_key(planned, state.relationships_hash);
        if state.roster_memo.relationships == Some(key) {
            return (None, key);
        }
        let pairs = roster::relationships(
            order
                .iter()
                .filter(|&&i| imported[i as usize])
                .map(|&i| &input.people[i as usize]),
        );
        let hash = pairs.hash();
        let changed =
            (state.relationships_hash != Some(hash)).then(|| roster::Pairs::new(pairs.iter()));
        (changed, memo::relationships_key(planned, Some(hash)))
    };
    let groups = || {
        let key = memo::GroupsKey::new(planned, r);
        let before = key.with(memo::GroupsHeld::of(&state.groups));
        if state.roster_memo.groups == Some(before) {
            return (Vec::new(), Vec::new(), before);
        }
        let mut keys: HashSet<String> = HashSet::new();
        let mut after = memo::GroupsHeld::default();
        let groups = roster::groups_where(r, input.people, order, imported, |key, hash| {
            if keys.insert(key.to_owned()) {
                after.add(key, hash);
            }
            state.groups.get(key) != Some(&hash)
        });
        let mut removed: Vec<String> = state
            .groups
            .keys()
            .filter(|k| !keys.contains(k.as_str()))
            .cloned()
            .collect();
        removed.sort();
        (groups, removed, key.with(after))
    };
    let (groups, relationships) = both_for(
        order.len(),
        || r.has_enrollments.then(groups),
        || (!source.import.skip_relationships).then(relationships),
    );
    if let Some((groups, removed, key)) = groups {
        out.groups = groups;
        out.removed_groups = removed;
        out.memo.groups = Some(key);
    }
    if let Some((relationships, key)) = relationships {
        out.relationships = relationships;
        out.memo.relationships = Some(key);
    }
    if !source.import.skip_calendars {
        let mut sessions = r.sessions.clone();
        sessions.sort_by(|a, b| a.sourced_id.cmp(&b.sourced_id));
        if state.calendars_hash != Some(roster::sessions_hash(&sessions)) {
            out.calendars = Some(sessions);
        }
    }
    out
}
