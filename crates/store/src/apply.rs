//! Applying a plan: the hot path of a sync, written once for both engines.
//!
//! The meaning is `rostersync_core::memory::MemoryDirectory::apply` (the reference), plus
//! what only a database can do: refuse items whose account moved since planning, record
//! a run item for every plan item, a revision for every field, `active` and `access`
//! change, and the run's counts. The work goes in chunks of plan items: for each chunk
//! the touched accounts are read in one go, every row to write is computed in memory,
//! then written table by table through the backend's bulk methods (prepared statements
//! on SQLite, COPY on PostgreSQL). Memory stays bounded by the chunk, and a plan with
//! nothing to write touches nothing but the run row.
//!
//! After the people: the SIS records (the SIS card; a plan applied as it is made,
//! [`Feed`], writes them after every ten chunks of people), what follows a link that moved to
//! another account, the roster (groups, relationships, calendars, orgs; see
//! [`crate::roster`]), the delta watermark, the rooms list, the review cases (opened or
//! refreshed for disputed people, closed for people now linked; see [`crate::review`]),
//! and older held runs of the source marked superseded.
//!
//! For undo, a run item keeps the link rows its item changed in a way only the old row
//! can undo (`link_before`, see [`crate::undo::keeps_link_before`]), and the run keeps the
//! highest revision id at its end (`revision_mark`): later revisions are later changes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use jiff::Timestamp;
use rostersync_core::directory::{Account, AccountId, AliasKind, Field, Link, MatchKey, Writer};
use rostersync_core::memory::alias_kind;
use rostersync_core::plan::{Outcome, Plan, PlanItem, Reason, SisRecord};
use rostersync_core::view::RETIRED;
use serde::Serialize;

use crate::sql::{Dialect, Keys, Rows, Tx, Value, concat, encode, query_opt, ts};
use crate::users::{LINK_SELECT, link_from_row};
use crate::users::{
    Locations, REVISION_COLUMNS, USER_INSERT_COLUMNS, USER_UPDATE_COLUMNS, created_json, field_bit,
    load_users, new_user_values, user_values,
};
use crate::{ApplySummary, Result, ReviewCaseId, RunId, StoreError, counts_json};
use crate::{held, review, roster, undo};

/// Plan items handled per round of reads and bulk writes.
const CHUNK: usize = 10_000;
/// SIS records a [`Feed`] holds before writing them (or ten chunks' worth, when its chunk
/// is smaller): written after every chunk of 10 000 people they made a 3 M first import
/// ~45 s slower (docs/performance.md); holding 100 000 raised its peak by 44 MB.
const RECORDS_CHUNK: usize = 100_000;

const LINK_KEY: [&str; 2] = ["source", "sourced_id"];
/// A refreshed link keeps `linked_at`: it was linked when it was first made.
const LINK_UPDATE: [&str; 7] = [
    "user_id",
    "rule",
    "record_hash",
    "synced_revision",
    "misses",
    "deactivated_at",
    "previous_access",
];
/// A new link replaces whatever the person had, `linked_at` included.
const NEW_LINK_UPDATE: [&str; 8] = concat(LINK_UPDATE, ["linked_at"]);
const LINK_COLUMNS: [&str; 10] = concat(LINK_KEY, NEW_LINK_UPDATE);

const REFUSAL_KEY: [&str; 3] = ["source", "sourced_id", "user_id"];
const REFUSAL_UPDATE: [&str; 2] = ["refused_at", "actor"];
const REFUSAL_COLUMNS: [&str; 5] = concat(REFUSAL_KEY, REFUSAL_UPDATE);
const ALIAS_COLUMNS: [&str; 3] = ["user_id", "kind", "value_lc"];

const PROVENANCE_KEY: [&str; 2] = ["user_id", "field"];
const PROVENANCE_UPDATE: [&str; 3] = ["writer", "run_id", "written_at"];
const PROVENANCE_COLUMNS: [&str; 5] = concat(PROVENANCE_KEY, PROVENANCE_UPDATE);

pub(crate) const RUN_ITEM_COLUMNS: [&str; 9] = [
    "run_id",
    "sourced_id",
    "user_id",
    "outcome",
    "reason_code",
    "reason",
    "reason_json",
    "changes",
    "link_before",
];

/// The reason code of an item refused because its account moved.
pub const CONFLICT_CODE: &str = "conflict";

/// Everything one chunk writes, by table.
struct Writes<'a> {
    new_users: Rows<'a>,
    updates: Rows<'a>,
    provenance: BTreeMap<(AccountId, Field), Vec<Value<'a>>>,
    /// Links refreshed, and links made new (which replace any old one, `linked_at` too).
    links: Rows<'a>,
    new_links: Rows<'a>,
    /// Links a rekey takes over, removed before the new ones are written.
    replaced_links: Rows<'a>,
    revisions: Rows<'a>,
    run_items: Rows<'a>,
    /// Accounts retired by a person back after the grace period.
    retired: BTreeSet<AccountId>,
    /// Old emails and usernames of renamed accounts: (account, kind, match key).
    aliases: BTreeSet<Alias>,
}

impl Writes<'_> {
    fn new() -> Self {
        Writes {
            new_users: Rows::new("users", &USER_INSERT_COLUMNS),
            updates: Rows::new("users", &USER_UPDATE_COLUMNS),
            provenance: BTreeMap::new(),
            links: Rows::new("sis_links", &LINK_COLUMNS),
            new_links: Rows::new("sis_links", &LINK_COLUMNS),
            replaced_links: Rows::new("sis_links", &LINK_KEY),
            revisions: Rows::new("revisions", &REVISION_COLUMNS),
            run_items: Rows::new("run_items", &RUN_ITEM_COLUMNS),
            retired: BTreeSet::new(),
            aliases: BTreeSet::new(),
        }
    }

    /// What an applied item leaves besides the account and its link: the refusal of the
    /// account it retires, the old emails and usernames of a renamed account.
    fn after_apply(&mut self, item: &PlanItem, user: AccountId) {
        if let Some(old) = item.retires {
            self.retired.insert(old);
        }
        for a in &item.aliases {
            self.aliases
                .insert((user, AliasKind::Email.as_str(), a.clone()));
        }
        if item.outcome == Outcome::Created {
            return;
        }
        for c in &item.changes {
            if let (Some(kind), Some(old)) = (alias_kind(c.field), &c.old) {
                self.aliases
                    .insert((user, kind.as_str(), MatchKey::new(old)));
            }
        }
    }

    /// Writes in foreign-key order. `aliases` are those the plan wrote so far.
    fn flush(self, tx: &mut dyn Tx, cx: &Context, aliases: &mut HashSet<Alias>) -> Result<()> {
        if !self.new_users.is_empty() {
            tx.insert_rows(&self.new_users)?;
        }
        if !self.updates.is_empty() {
            tx.update_rows(&self.updates)?;
        }
        if !self.provenance.is_empty() {
            let mut rows = Rows::new("field_provenance", &PROVENANCE_COLUMNS);
            rows.rows = self.provenance.into_values().collect();
            tx.upsert_rows(&rows, &PROVENANCE_KEY, &PROVENANCE_UPDATE)?;
        }
        if !self.replaced_links.is_empty() {
            tx.delete_rows(&self.replaced_links)?;
        }
        if !self.links.is_empty() {
            tx.upsert_rows(&self.links, &LINK_KEY, &LINK_UPDATE)?;
        }
        if !self.new_links.is_empty() {
            if cx.has_links {
                tx.upsert_rows(&self.new_links, &LINK_KEY, &NEW_LINK_UPDATE)?;
            } else {
                // None of the source's to replace (a plan has a sourcedId once): one `COPY`
                // on PostgreSQL instead of a staged upsert. A link another writer made for
                // this source meanwhile fails the apply (a unique key) rather than being
                // replaced.
                tx.insert_rows(&self.new_links)?;
            }
        }
        if !self.revisions.is_empty() {
            tx.insert_rows(&self.revisions)?;
        }
        if !self.run_items.is_empty() {
            crate::runs::insert_items(tx, &self.run_items)?;
        }
        if !self.retired.is_empty() {
            let mut rows = Rows::new("link_refusals", &REFUSAL_COLUMNS);
            for id in &self.retired {
                rows.push(vec![
                    cx.source.as_str().into(),
                    RETIRED.into(),
                    Value::from(*id),
                    cx.now.as_str().into(),
                    cx.writer.as_str().into(),
                ]);
            }
            tx.upsert_rows(&rows, &REFUSAL_KEY, &REFUSAL_UPDATE)?;
        }
        write_aliases(tx, self.aliases, aliases)
    }
}

/// An alias row: (account, kind, match key).
type Alias = (AccountId, &'static str, MatchKey);

/// Adds the aliases an account does not have yet; `written` are those this apply added.
fn write_aliases(
    tx: &mut dyn Tx,
    wanted: BTreeSet<Alias>,
    written: &mut HashSet<Alias>,
) -> Result<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let users: Vec<AccountId> = wanted
        .iter()
        .map(|(u, _, _)| *u)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut have: HashSet<(AccountId, String, MatchKey)> = HashSet::new();
    tx.for_each_in(
        "SELECT user_id, kind, value_lc FROM aliases WHERE user_id {keys}",
        &[],
        Keys::Accounts(&users),
        &mut |r| {
            have.insert((
                AccountId(r.i64(0)?),
                r.text(1)?,
                MatchKey::from_stored(r.text(2)?),
            ));
            Ok(())
        },
    )?;
    let mut rows = Rows::new("aliases", &ALIAS_COLUMNS);
    for alias in wanted {
        let (user, kind, value) = &alias;
        if have.contains(&(*user, (*kind).to_owned(), value.clone())) || written.contains(&alias) {
            continue;
        }
        rows.push(vec![
            Value::from(*user),
            (*kind).into(),
            value.clone().into(),
        ]);
        written.insert(alias);
    }
    if !rows.is_empty() {
        tx.insert_rows(&rows)?;
    }
    Ok(())
}

struct Context {
    run: RunId,
    source: String,
    writer: String,
    now: String,
    /// Whether the source had any link when the apply began (not on a first import).
    has_links: bool,
}

impl Context {
    /// Queues the item's link write, if it has one.
    fn push_link<'a>(
        &'a self,
        w: &mut Writes<'a>,
        item: &'a PlanItem,
        user_id: AccountId,
        revision: i64,
    ) {
        let Some(l) = item.link.as_ref() else { return };
        let row = vec![
            self.source.as_str().into(),
            item.sourced_id.as_str().into(),
            user_id.into(),
            l.rule.as_str().into(),
            // The u64 hash is stored as the i64 with the same bits.
            Value::Int(l.record_hash.cast_signed()),
            revision.into(),
            Value::Int(i64::from(l.misses)),
            l.deactivated_at.map(ts).into(),
            l.previous_access.map(|a| a.as_str()).into(),
            self.now.as_str().into(),
        ];
        if l.is_new {
            w.new_links.push(row);
        } else {
            w.links.push(row);
        }
    }

    fn revision_row<'a>(
        &'a self,
        user_id: AccountId,
        field: &'a str,
        old: Value<'a>,
        new: Value<'a>,
    ) -> Vec<Value<'a>> {
        vec![
            user_id.into(),
            self.run.into(),
            field.into(),
            old,
            new,
            self.writer.as_str().into(),
            self.now.as_str().into(),
        ]
    }
}

pub(crate) fn apply_plan(
    tx: &mut dyn Tx,
    run: RunId,
    plan: &Plan,
    now: Timestamp,
) -> Result<ApplySummary> {
    let mut applying = Applying::begin(tx, run, &plan.source, now)?;
    for chunk in plan.items.chunks(CHUNK) {
        applying.items(tx, chunk)?;
    }
    applying.records(tx, &plan.sis_records)?;
    applying.finish(tx, plan)
}

/// Applies the plan `make` makes as it makes it ([`crate::Store::apply_streamed`]).
pub(crate) fn apply_streamed(
    tx: &mut dyn Tx,
    run: RunId,
    source: &str,
    chunk: usize,
    now: Timestamp,
    make: impl FnOnce(&mut Feed<'_>) -> Result<Plan>,
) -> Result<ApplySummary> {
    let mut applying = Applying::begin(tx, run, source, now)?;
    let mut feed = Feed::new(tx, &mut applying, chunk);
    let rest = make(&mut feed)?;
    feed.end()?;
    applying.finish(tx, &rest)
}

/// Holds `run` with the plan `make` makes as it makes it ([`crate::Store::hold_streamed`]).
pub(crate) fn hold_streamed(
    tx: &mut dyn Tx,
    run: RunId,
    chunk: usize,
    make: impl FnOnce(&mut Feed<'_>) -> Result<Plan>,
    hold: held::Hold<'_>,
) -> Result<()> {
    let mut holding = held::Holding::begin(tx, run)?;
    let mut feed = Feed::new(tx, &mut holding, chunk);
    let rest = make(&mut feed)?;
    feed.end()?;
    holding.finish(tx, &rest, hold)
}

/// Applies a held run's stored plan a part at a time ([`crate::Store::apply_held`]).
pub(crate) fn apply_held(
    tx: &mut dyn Tx,
    run: RunId,
    chunk: usize,
    now: Timestamp,
) -> Result<ApplySummary> {
    let (mut head, _) = held::held_head(tx, run)?
        .ok_or_else(|| StoreError::Conflict(format!("run {run} keeps no held plan to apply")))?;
    let parts = held::part_count(tx, run)?;
    let mut applying = Applying::begin(tx, run, &head.source, now)?;
    let mut feed = Feed::new(tx, &mut applying, chunk);
    // A plan held before v17 keeps its items with the run.
    feed.push_part(held::Part {
        items: std::mem::take(&mut head.items),
        sis_records: std::mem::take(&mut head.sis_records),
    });
    for seq in 0..parts {
        match feed.read(|tx| held::read_part(tx, run, seq)) {
            Some(part) => feed.push_part(part),
            None => break,
        }
    }
    feed.end()?;
    applying.finish(tx, &head)
}

/// Where a [`Feed`] writes: an apply, or a run being held.
trait Sink {
    /// Writes a round of items, and the SIS records held when `records` is given (of
    /// these items or earlier ones).
    fn write(
        &mut self,
        tx: &mut dyn Tx,
        items: &[PlanItem],
        records: Option<&[SisRecord]>,
    ) -> Result<()>;

    /// How many SIS records are held before a round of `chunk` items writes them.
    fn records_per_write(&self, chunk: usize) -> usize;
}

impl Sink for Applying {
    fn write(
        &mut self,
        tx: &mut dyn Tx,
        items: &[PlanItem],
        records: Option<&[SisRecord]>,
    ) -> Result<()> {
        self.items(tx, items)?;
        match records {
            Some(records) => self.records(tx, records),
            None => Ok(()),
        }
    }

    fn records_per_write(&self, chunk: usize) -> usize {
        RECORDS_CHUNK.min(chunk * 10)
    }
}

impl Sink for held::Holding {
    fn write(
        &mut self,
        tx: &mut dyn Tx,
        items: &[PlanItem],
        records: Option<&[SisRecord]>,
    ) -> Result<()> {
        self.part(tx, items, records.unwrap_or_default())
    }

    /// A part keeps its items' records.
    fn records_per_write(&self, _chunk: usize) -> usize {
        0
    }
}

/// A plan written as it is made, or read: its items and SIS records handed over a chunk at
/// a time ([`Feed::push`]) to an apply or a run being held, all in the one transaction of
/// the caller. Memory holds a chunk, not the plan.
pub struct Feed<'a> {
    tx: &'a mut dyn Tx,
    sink: &'a mut dyn Sink,
    items: Vec<PlanItem>,
    records: Vec<SisRecord>,
    /// Items written per round: at most [`CHUNK`].
    chunk: usize,
    /// The first write that failed: the items after it are dropped, and
    /// [`Feed::end`] returns it (the caller's transaction then rolls back).
    failed: Option<StoreError>,
}

impl<'a> Feed<'a> {
    /// A feed writing `chunk` items a round (1 to [`CHUNK`]) to `sink`.
    fn new(tx: &'a mut dyn Tx, sink: &'a mut dyn Sink, chunk: usize) -> Feed<'a> {
        let chunk = chunk.clamp(1, CHUNK);
        Feed {
            tx,
            sink,
            items: Vec::with_capacity(chunk),
            records: Vec::new(),
            chunk,
            failed: None,
        }
    }

    /// Takes the plan's next item (in the plan's order) and, for a linked person, the SIS
    /// record the plan keeps for it.
    pub fn push(&mut self, item: PlanItem, record: Option<SisRecord>) {
        if self.failed.is_some() {
            return;
        }
        self.items.push(item);
        self.records.extend(record);
        if self.items.len() >= self.chunk {
            self.flush(self.records.len() >= self.sink.records_per_write(self.chunk));
        }
    }

    /// Takes a stored part of a held plan: its items, then its records.
    fn push_part(&mut self, part: held::Part) {
        for item in part.items {
            self.push(item, None);
        }
        if self.failed.is_none() {
            self.records.extend(part.sis_records);
        }
    }

    /// What `f` reads in the feed's transaction; `None` when a write failed before, or
    /// the read fails (its error is then the one [`Feed::end`] returns).
    fn read<T>(&mut self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Option<T> {
        if self.failed.is_some() {
            return None;
        }
        f(self.tx).map_err(|e| self.failed = Some(e)).ok()
    }

    /// Writes the items held, and the SIS records held if `records`. After a failure
    /// nothing is held (the transaction is lost: nothing more is sent to it).
    fn flush(&mut self, records: bool) {
        let held = records.then_some(self.records.as_slice());
        let written = self.sink.write(self.tx, &self.items, held);
        self.items.clear();
        if records || written.is_err() {
            self.records = Vec::new();
        }
        if let Err(e) = written {
            self.failed = Some(e);
        }
    }

    /// Writes what is left; the first failure, if any.
    fn end(mut self) -> Result<()> {
        if self.failed.is_none() && (!self.items.is_empty() || !self.records.is_empty()) {
            self.flush(true);
        }
        match self.failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// What the chunks of one apply share.
struct Applying {
    cx: Context,
    /// Whether the source had no SIS record before this apply wrote any (its records
    /// are then written as plain rows): asked when the first records come.
    first_records: Option<bool>,
    locations: Locations,
    /// Links that moved to another account: (old account, new account).
    moved: Vec<(AccountId, AccountId)>,
    rooms: BTreeSet<String>,
    /// The aliases this apply wrote.
    aliases: HashSet<Alias>,
    /// Review cases: the source's open ones, the disputed people (and the SIS records
    /// that are their evidence), the open cases of people now linked.
    open_cases: HashMap<String, ReviewCaseId>,
    disputed: Vec<PlanItem>,
    disputed_ids: HashSet<String>,
    evidence: Vec<SisRecord>,
    settled: Vec<ReviewCaseId>,
    /// People an account source found gone from the provider.
    gone: Vec<String>,
    /// Items refused because their account moved: (outcome, whether a rekey).
    refused: Vec<(Outcome, bool)>,
}

impl Applying {
    fn begin(tx: &mut dyn Tx, run: RunId, source: &str, now: Timestamp) -> Result<Applying> {
        // PostgreSQL: lock the run row, so two applies of one run cannot interleave.
        let lock = if tx.dialect() == Dialect::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let sql = format!("SELECT status, source FROM runs WHERE id = ?{lock}");
        let (status, run_source) =
            query_opt(tx, &sql, &[run.into()], |r| Ok((r.text(0)?, r.text(1)?)))?
                .ok_or_else(|| StoreError::NotFound(format!("run {run} does not exist")))?;
        if status != "running" {
            return Err(StoreError::Conflict(format!(
                "run {run} is already {status}: a plan is applied only to a running run"
            )));
        }
        if run_source != source {
            return Err(StoreError::Conflict(format!(
                "run {run} syncs source {run_source} but the plan is for source {source}"
            )));
        }
        // A first import replaces no links: skip looking for them, and write its new ones
        // as plain rows.
        let has_links = roster::source_has_rows(tx, "sis_links", source)?;
        // A held run being approved still lists the items it was held with: the apply's
        // own replace them.
        crate::runs::delete_items(tx, run)?;
        Ok(Applying {
            cx: Context {
                run,
                source: source.to_owned(),
                writer: Writer::Source(source.to_owned()).encode(),
                now: ts(now),
                has_links,
            },
            first_records: None,
            locations: Locations::default(),
            moved: Vec::new(),
            rooms: BTreeSet::new(),
            aliases: HashSet::new(),
            open_cases: review::open_cases(tx, source)?,
            disputed: Vec::new(),
            disputed_ids: HashSet::new(),
            evidence: Vec::new(),
            settled: Vec::new(),
            gone: Vec::new(),
            refused: Vec::new(),
        })
    }

    /// Applies a chunk of the plan's items.
    fn items(&mut self, tx: &mut dyn Tx, chunk: &[PlanItem]) -> Result<()> {
        let cx = &self.cx;
        let creations = chunk
            .iter()
            .filter(|i| i.outcome == Outcome::Created && i.new_account.is_some())
            .count();
        let mut new_ids = tx.allocate_ids("users", creations)?.into_iter();
        let mut w = Writes::new();
        let mut touched: Vec<AccountId> = chunk
            .iter()
            .filter(|i| i.writes() && i.outcome != Outcome::Created)
            .filter_map(|i| i.user_id)
            .collect();
        touched.sort_unstable();
        touched.dedup();
        let mut current = load_users(tx, &touched, true)?;
        let before = if cx.has_links {
            links_before(tx, &cx.source, chunk)?
        } else {
            HashMap::new()
        };
        let mut dirty = BTreeSet::new();

        for item in chunk {
            let mut user_id = item.user_id;
            let mut refused = None;
            let mut applied = false;
            if item.writes() {
                match (item.outcome, item.user_id) {
                    (Outcome::Created, _) => {
                        if let Some(id) =
                            create(tx, cx, item, &mut new_ids, &mut self.locations, &mut w)?
                        {
                            user_id = Some(id);
                            applied = true;
                        }
                    }
                    (_, Some(id)) => {
                        let cur = current.get_mut(&id).ok_or_else(|| {
                            StoreError::NotFound(format!(
                                "the plan's item for SIS person {} refers to account #{id}, which does not exist",
                                item.sourced_id
                            ))
                        })?;
                        match item.planned_revision {
                            Some(planned) if planned != cur.user.revision => {
                                // Only items that would write the account are refused; an
                                // unchanged or missing person's link refresh is just left
                                // out, so the next sync looks at them again.
                                if matches!(
                                    item.outcome,
                                    Outcome::Linked
                                        | Outcome::Updated
                                        | Outcome::Deactivated
                                        | Outcome::Reactivated
                                ) {
                                    refused = Some((planned, cur.user.revision));
                                }
                            }
                            _ => {
                                if update(cx, item, &mut cur.user, &mut w) {
                                    dirty.insert(id);
                                }
                                cx.push_link(&mut w, item, id, cur.user.revision);
                                applied = true;
                            }
                        }
                    }
                    (_, None) => {}
                }
            }
            let mut link_before = None;
            if applied && let Some(id) = user_id {
                w.after_apply(item, id);
                if item.link.as_ref().is_some_and(|l| l.is_new)
                    && let Some(old) = before.get(item.sourced_id.as_str())
                    && old.user_id != id
                {
                    self.moved.push((old.user_id, id));
                }
                if item.link.is_some()
                    && let Some(old) = &item.replaces
                {
                    w.replaced_links
                        .push(vec![cx.source.as_str().into(), old.as_str().into()]);
                }
                if undo::keeps_link_before(item) {
                    let replaced = item.replaces.as_deref().and_then(|o| before.get(o));
                    link_before = Some(undo::link_before_json(
                        before.get(item.sourced_id.as_str()),
                        replaced,
                    )?);
                }
                for c in item.changes.iter().filter(|c| c.field == Field::Homeroom) {
                    if let Some(room) = c.new.filter(|r| !r.is_empty())
                        && !self.rooms.contains(room)
                    {
                        self.rooms.insert(room.to_owned());
                    }
                }
            }
            if item.reason.needs_review() {
                self.disputed_ids.insert(item.sourced_id.clone());
                self.disputed.push(item.clone());
            }
            if roster::gone_from_provider(item) {
                self.gone.push(item.sourced_id.clone());
            }
            // An item that still needs a person (an update whose email waits) keeps its
            // case open, whatever else it applied.
            if refused.is_none()
                && user_id.is_some()
                && !item.reason.needs_review()
                && review::settles(item.outcome)
                && let Some(case) = self.open_cases.get(item.sourced_id.as_str())
            {
                self.settled.push(*case);
            }
            w.run_items.push(match (refused, user_id) {
                (Some((planned, now_at)), Some(id)) => {
                    self.refused.push((item.outcome, item.replaces.is_some()));
                    conflict_item(cx, item, id, planned, now_at)?
                }
                _ => run_item(cx.run, item, user_id, link_before)?,
            });
        }

        for id in dirty {
            if let Some(cur) = current.remove(&id) {
                let location = self.locations.id(tx, cur.user.location.as_deref())?;
                w.updates.push(user_values(cur.user, location, &cx.now));
            }
        }
        w.flush(tx, cx, &mut self.aliases)
    }

    /// Writes SIS records (the SIS card), after the items of the same people. Those of
    /// disputed people are kept as their review cases' evidence.
    fn records(&mut self, tx: &mut dyn Tx, records: &[SisRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let disputed = &self.disputed_ids;
        self.evidence.extend(
            records
                .iter()
                .filter(|r| disputed.contains(r.sourced_id()))
                .cloned(),
        );
        let first = match self.first_records {
            Some(first) => first,
            None => *self.first_records.insert(!roster::source_has_rows(
                tx,
                "sis_people",
                &self.cx.source,
            )?),
        };
        roster::write_sis_records(tx, &self.cx.source, records, &self.cx.now, first)
    }

    /// What follows the people: `plan`'s roster, watermark and review cases, and the run's
    /// end (its items and records were applied already).
    fn finish(self, tx: &mut dyn Tx, plan: &Plan) -> Result<ApplySummary> {
        let Applying {
            cx,
            moved,
            rooms,
            open_cases,
            disputed,
            evidence,
            settled,
            gone,
            refused,
            ..
        } = self;
        let mut summary = ApplySummary {
            counts: plan.counts,
            conflicts: 0,
        };
        for (outcome, rekey) in refused {
            summary.counts.refuse(outcome, rekey);
            summary.conflicts += 1;
        }
        roster::mark_gone(tx, &cx.source, &gone, &cx.now)?;
        for (old, new) in moved {
            roster::move_person(tx, &cx.source, old, new)?;
        }
        if let Some(r) = &plan.roster {
            roster::apply_roster(tx, &cx.source, r, &cx.now)?;
        }
        if let Some(at) = plan.watermark {
            roster::set_watermark(tx, &cx.source, at)?;
        }
        if let Some(skips) = &plan.listed_skips {
            roster::set_listed_skips(tx, &cx.source, skips)?;
        }
        let rooms: Vec<String> = rooms.into_iter().collect();
        roster::ensure_rooms(tx, &rooms)?;
        let disputed: Vec<&PlanItem> = disputed.iter().collect();
        let evidence: Vec<&SisRecord> = evidence.iter().chain(&plan.review).collect();
        let cases = review::CaseWork {
            gone_cases: &plan.gone_cases,
            disputed: &disputed,
            evidence: &evidence,
            settled: &settled,
            open: &open_cases,
        };
        review::maintain(tx, cx.run, &cx.source, cases, &cx.now)?;

        // A held plan is not needed once applied (its items and safeguards stay).
        tx.execute(
            "UPDATE runs SET status = 'succeeded', complete = ?, counts = ?, finished_at = ?, plan = NULL, \
             revision_mark = (SELECT COALESCE(MAX(id), 0) FROM revisions) WHERE id = ?",
            &[
                plan.complete.into(),
                counts_json(&summary.counts).into(),
                cx.now.as_str().into(),
                cx.run.into(),
            ],
        )?;
        held::forget_parts(tx, cx.run)?;
        // A later run's plan covers what an older held one planned — but for a SCIM
        // connection, whose runs are each one write: its held writes wait for a person.
        if plan.kind != rostersync_core::plan::SyncKind::Scim {
            held::supersede_older(tx, &cx.source, cx.run, "a later run that applied")?;
        }
        Ok(summary)
    }
}

/// The links, as they are before the chunk is applied, of the people whose link the plan
/// makes new (a new link to another account moves what hangs off the old one) or whose
/// link undo must be able to put back, and of the sourcedIds rekeys take over.
fn links_before(
    tx: &mut dyn Tx,
    source: &str,
    chunk: &[PlanItem],
) -> Result<HashMap<String, Link>> {
    let mut wanted: Vec<String> = Vec::new();
    for i in chunk.iter().filter(|i| i.writes()) {
        if i.link.as_ref().is_some_and(|l| l.is_new) || undo::keeps_link_before(i) {
            wanted.push(i.sourced_id.clone());
        }
        if let Some(old) = &i.replaces {
            wanted.push(old.clone());
        }
    }
    let mut by_id = HashMap::with_capacity(wanted.len());
    if wanted.is_empty() {
        return Ok(by_id);
    }
    wanted.sort_unstable();
    wanted.dedup();
    tx.for_each_in(
        &format!("{LINK_SELECT} WHERE source = ? AND sourced_id {{keys}}"),
        &[source.into()],
        Keys::Texts(&wanted),
        &mut |r| {
            let l = link_from_row(r)?;
            by_id.insert(l.sourced_id.clone(), l);
            Ok(())
        },
    )?;
    Ok(by_id)
}

/// A `Created` item: the new account, its `created` revision and its link. `None` when
/// the item has no account to make (the reference skips it too).
fn create<'a>(
    tx: &mut dyn Tx,
    cx: &'a Context,
    item: &'a PlanItem,
    ids: &mut impl Iterator<Item = i64>,
    locations: &mut Locations,
    w: &mut Writes<'a>,
) -> Result<Option<AccountId>> {
    let Some(new) = &item.new_account else {
        return Ok(None);
    };
    let id = AccountId(ids.next().ok_or_else(|| {
        StoreError::database("fewer account ids were reserved than the plan creates")
    })?);
    let mut u = Account::blank(id);
    u.user_type = new.user_type;
    u.access = new.access;
    u.active = new.active;
    u.provider = Some(item.provider.clone().unwrap_or_else(|| "sis".into()));
    let mut bits = 0;
    for c in &item.changes {
        u.set(c.field, c.new.map(str::to_owned));
        bits |= field_bit(c.field);
    }
    u.revision = 1;
    let location = locations.id(tx, u.location.as_deref())?;
    let initial = created_json(&u, item.changes.iter().map(|c| c.field));
    cx.push_link(w, item, id, u.revision);
    w.new_users.push(new_user_values(
        u,
        location,
        &cx.writer,
        bits,
        Some(cx.run),
        &cx.now,
    ));
    w.revisions
        .push(cx.revision_row(id, "created", Value::Null, initial.into()));
    Ok(Some(id))
}

/// Field, `active` and `access` changes on an existing account; true when it changed.
fn update<'a>(cx: &'a Context, item: &'a PlanItem, u: &mut Account, w: &mut Writes<'a>) -> bool {
    for c in &item.changes {
        let old = u.get(c.field).map(str::to_owned);
        u.set(c.field, c.new.map(str::to_owned));
        w.provenance.insert(
            (u.id, c.field),
            vec![
                u.id.into(),
                c.field.as_str().into(),
                cx.writer.as_str().into(),
                cx.run.into(),
                cx.now.as_str().into(),
            ],
        );
        w.revisions
            .push(cx.revision_row(u.id, c.field.as_str(), old.into(), c.new.into()));
    }
    if let Some((_, active)) = item.active {
        let old = bool_text(u.active);
        u.active = active;
        w.revisions
            .push(cx.revision_row(u.id, "active", old.into(), bool_text(active).into()));
    }
    if let Some((_, access)) = item.access {
        let old = u.access.as_str();
        u.access = access;
        w.revisions
            .push(cx.revision_row(u.id, "access", old.into(), access.as_str().into()));
    }
    let provider = item
        .provider
        .as_ref()
        .filter(|p| u.provider.as_ref() != Some(*p));
    if let Some(p) = provider {
        let old = u.provider.replace(p.clone());
        w.revisions
            .push(cx.revision_row(u.id, "provider", old.into(), p.as_str().into()));
    }
    if item.changes.is_empty()
        && item.active.is_none()
        && item.access.is_none()
        && provider.is_none()
    {
        return false;
    }
    u.revision += 1;
    true
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// A plan item's run item; `link_before` is what undo needs of its link (see
/// [`undo::keeps_link_before`]).
pub(crate) fn run_item(
    run: RunId,
    item: &PlanItem,
    user_id: Option<AccountId>,
    link_before: Option<String>,
) -> Result<Vec<Value<'_>>> {
    run_item_row(
        run,
        item.sourced_id.as_str().into(),
        user_id,
        item.outcome,
        &item.reason,
        &item.changes,
        link_before,
    )
}

/// A `run_items` row, in the order of [`RUN_ITEM_COLUMNS`]: what a sync's or a push's
/// item did to `sourced_id` (a SIS person, an account's id, `group:ID`).
pub(crate) fn run_item_row<'a>(
    run: RunId,
    sourced_id: Value<'a>,
    user_id: Option<AccountId>,
    outcome: Outcome,
    reason: &Reason,
    changes: &(impl Serialize + ?Sized),
    link_before: Option<String>,
) -> Result<Vec<Value<'a>>> {
    Ok(vec![
        run.into(),
        sourced_id,
        user_id.into(),
        outcome.as_str().into(),
        reason.code().into(),
        reason.to_string().into(),
        encode("a run item's reason", reason)?.into(),
        encode("a run item's changes", &changes)?.into(),
        link_before.into(),
    ])
}

fn conflict_item<'a>(
    cx: &Context,
    item: &'a PlanItem,
    user: AccountId,
    planned: i64,
    now_at: i64,
) -> Result<Vec<Value<'a>>> {
    let reason = serde_json::json!({
        "code": CONFLICT_CODE,
        "user": user,
        "planned_revision": planned,
        "revision": now_at,
        "planned": item.reason,
    });
    Ok(vec![
        cx.run.into(),
        item.sourced_id.as_str().into(),
        Some(user).into(),
        Outcome::Error.as_str().into(),
        CONFLICT_CODE.into(),
        format!("account #{user} changed while the run was planning; the next sync will retry")
            .into(),
        reason.to_string().into(),
        "[]".into(),
        Value::Null,
    ])
}
